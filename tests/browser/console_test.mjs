// Drives the web console every node serves (node/http/console/) in Debian's headless Chromium
// with playwright-core, against real node processes started by run.sh:
//   1. a clerk at the district logs in, sees the catalogue, takes in an application through the
//      form (uploading its four scans), sees the case in the list with a green light, and is
//      told why a step outside the clerk's role is refused;
//   2. a supervisor at the city opens the dashboard, sees the tree of divisions, and drills down
//      into the district by clicking it;
//   3. the dashboard drawn from answers shaped exactly like the supervision API's contract
//      (served by page.route, so the rendering is checked whatever the node has installed).
// Every request must go to the node itself (loopback); a page error fails the test.
// Env: CLERK_URL, CITY_URL, DISTRICT, TOWN, SHOTS (screenshot directory).
import { chromium } from 'playwright-core';
import { mkdirSync } from 'node:fs';

const env = (k) => { if (!process.env[k]) throw new Error('missing env ' + k); return process.env[k]; };
const CLERK_URL = env('CLERK_URL'), CITY_URL = env('CITY_URL'), DISTRICT = env('DISTRICT'), TOWN = env('TOWN');
const SHOTS = env('SHOTS');
mkdirSync(SHOTS, { recursive: true });

const started = Date.now();
const problems = [];
let lastPage = null;  // screenshotted when a check fails
const step = (what) => console.log(`[browser ${((Date.now() - started) / 1000).toFixed(1)}s] ${what}`);
function check(cond, what) { if (!cond) throw new Error('check failed: ' + what); }

const browser = await chromium.launch({
  executablePath: process.env.CHROMIUM || '/usr/bin/chromium',
  headless: true,
  timeout: 30000,
  // Playwright gives every launch a fresh, empty profile directory of its own.
  args: ['--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking',
         '--disable-component-update', '--disable-sync'],
});

async function newPage() {
  const context = await browser.newContext({ viewport: { width: 1280, height: 900 }, deviceScaleFactor: 1 });
  const page = await context.newPage();
  lastPage = page;
  page.setDefaultTimeout(15000);
  page.setDefaultNavigationTimeout(15000);
  page.on('pageerror', (e) => problems.push('page error: ' + e.message));
  page.on('console', (m) => { if (m.type() === 'error' && !/status of 40[34]/.test(m.text())) problems.push('console error: ' + m.text()); });
  // Offline by design: anything not addressed to this machine is refused and recorded.
  await context.route('**/*', (route) => {
    const host = new URL(route.request().url()).hostname;
    if (host === '127.0.0.1' || host === 'localhost') return route.continue();
    problems.push('request to another host: ' + route.request().url());
    return route.abort();
  });
  return { context, page };
}

async function login(page, username, password) {
  await page.getByTestId('login-form').waitFor();
  await page.getByTestId('login-username').fill(username);
  await page.getByTestId('login-password').fill(password);
  await page.getByTestId('login-submit').click();
}

try {
  // ---- 1. the window ----------------------------------------------------------------------
  {
    const { context, page } = await newPage();
    step('clerk: open ' + CLERK_URL + '/ (redirects to the console)');
    await page.goto(CLERK_URL + '/');
    check(new URL(page.url()).pathname === '/console/', 'redirected to /console/, got ' + page.url());
    await login(page, 'clerk', 'tongban-demo-clerk');
    await page.waitForURL(/#\/clerk/);
    const itemRow = page.locator('[data-testid=catalogue] tr[data-item="CG-0101"]');
    await itemRow.waitFor();
    const rows = await page.locator('[data-testid=catalogue] tbody tr').count();
    check(rows >= 10, 'catalogue lists the items, saw ' + rows);
    check((await page.getByTestId('node-name').textContent()).includes(DISTRICT), 'header names the district');
    await page.screenshot({ path: `${SHOTS}/clerk-catalogue.png`, fullPage: true });

    step('clerk: take in CG-0101 through the form with four uploaded scans');
    await itemRow.click();  // picks the item in the form
    check(await page.getByTestId('new-item').inputValue() === 'CG-0101', 'clicking the catalogue row picks the item');
    await page.getByTestId('new-applicant-id').fill('91350100M000100Y43');
    await page.getByTestId('new-applicant-name').fill('某某商店');
    await page.getByTestId('new-contact').fill('0757-12345678');
    await page.getByTestId('new-note').fill('from the browser test');
    const inputs = page.locator('[data-testid=new-materials] input[type=file]');
    check(await inputs.count() === 4, 'four material inputs for CG-0101');
    for (let i = 0; i < 4; ++i) {
      const kind = await inputs.nth(i).getAttribute('data-kind');
      await inputs.nth(i).setInputFiles({ name: kind + '.jpg', mimeType: 'image/jpeg', buffer: Buffer.from('browser scan of ' + kind) });
    }
    await page.getByTestId('new-submit').click();
    const accepted = page.getByTestId('new-accepted');
    await accepted.waitFor();
    const number = (await accepted.locator('strong').textContent()).trim();
    check(number.startsWith(DISTRICT + '-'), 'case number at the district: ' + number);
    const row = page.locator(`[data-testid=case-row][data-number="${number}"]`);
    await row.waitFor();
    check((await row.getByTestId('case-state').textContent()) === 'accepted', 'new case listed as accepted');
    check(await row.locator('.light-green').count() === 1, 'new case has a green light');
    const listed = await page.getByTestId('case-row').count();
    check(listed >= 2, 'the cases submitted with curl are listed too, saw ' + listed);

    step('clerk: a step outside the role is refused with the reason');
    await row.locator('button[data-step=undertake]').click();
    await page.locator('#flash.error').waitFor();
    const flash = await page.locator('#flash').textContent();
    check(/undertaker/.test(flash), 'refusal names the role: ' + flash);
    await page.screenshot({ path: `${SHOTS}/clerk-cases.png`, fullPage: true });
    await context.close();
  }

  // ---- 2. the supervision dashboard on the real node --------------------------------------
  let realSummary = false;
  {
    const { context, page } = await newPage();
    step('supervisor: open the city dashboard');
    await page.goto(CITY_URL + '/console/#/supervision');
    await login(page, 'supervisor', 'tongban-demo-supervisor');
    await page.waitForURL(/#\/supervision/);
    const district = page.locator(`[data-testid=division][data-division="${DISTRICT}"]`);
    await district.waitFor();
    realSummary = await page.getByTestId('not-available').count() === 0;
    check(realSummary, 'the city answers the supervision summary');
    step('supervision summary answered: real figures');
    await page.getByTestId('trend').waitFor();
    check(await page.getByTestId('rate-accepted').count() === 1, 'headline figures shown');
    // run.sh submitted three applications in the subtree and waited for them to reach the city.
    const accepted_here = parseInt((await page.getByTestId('rate-accepted').locator('.v').textContent()).replace(/[^0-9]/g, ''), 10);
    check(accepted_here >= 3, 'the city counts the three applications made below it, saw ' + accepted_here);
    await page.screenshot({ path: `${SHOTS}/dashboard-city.png`, fullPage: true });

    step('supervisor: click the district to drill down');
    await district.click();
    await page.waitForURL(new RegExp('division=' + DISTRICT));
    await page.getByTestId('dash-title').filter({ hasText: DISTRICT }).waitFor();
    check((await page.getByTestId('crumbs').textContent()).includes(DISTRICT), 'breadcrumb shows the district');
    // The tree's root is now the district (its children depend on what the figures hold).
    if (realSummary) await page.getByTestId('tree-root').filter({ hasText: DISTRICT }).waitFor();
    await page.screenshot({ path: `${SHOTS}/dashboard-district.png`, fullPage: true });
    await context.close();
  }

  // ---- 3. every rendering state, from fixed answers in the API's shape -----------------------
  // A fresh network has no red lights, stale districts or month of history; this part checks
  // that the dashboard draws them, from answers shaped exactly like the API's. Its screenshot is
  // a rendering check, not a picture of real figures (docs/console.png is the real city page).
  {
    const { context, page } = await newPage();
    step('contract: dashboard drawn from contract-shaped answers');
    const totals = (a, c, r) => ({ accepted: a, refused: 2, concluded: c, on_time: c - 1, early: Math.floor(c / 2), overdue: 1,
      immediate: 3, forwarded_up: 1, supplements: 1, yellow: 2, red: r, satisfied: 8, basically_satisfied: 1, unsatisfied: 1,
      complaints: r, working_days_total: c * 3, on_time_rate: (c - 1) / c, early_rate: 0.5, on_site_rate: 0.3,
      satisfaction_rate: 0.8, avg_working_days: 3.2 });
    const days = Array.from({ length: 14 }, (_, i) => ({ day: `2026-11-${String(i + 1).padStart(2, '0')}`,
      accepted: 3 + (i % 5), concluded: 2 + (i % 4), overdue: i % 6 === 0 ? 1 : 0 }));
    const children = (code) => code === DISTRICT
      ? [{ division: TOWN, name: '祖庙街道', level: 'town', totals: totals(30, 25, 1), open_yellow: 1, open_red: 1, stale: false, last_heard_ms: Date.now() - 2000 }]
      : [{ division: DISTRICT, name: '禅城区', level: 'district', totals: totals(60, 50, 1), open_yellow: 2, open_red: 1, stale: false, last_heard_ms: Date.now() - 1000 },
         { division: '440605000000', name: '南海区', level: 'district', totals: totals(40, 36, 0), open_yellow: 1, open_red: 0, stale: false, last_heard_ms: Date.now() - 1500 },
         { division: '440606000000', name: '顺德区', level: 'district', totals: totals(20, 18, 0), open_yellow: 0, open_red: 0, stale: true, last_heard_ms: Date.now() - 3600000 }];
    await context.route('**/api/supervision/**', (route) => {
      const url = new URL(route.request().url());
      const division = url.searchParams.get('division');
      let body;
      if (url.pathname.endsWith('/summary')) {
        body = { division, name: division === DISTRICT ? '禅城区' : '佛山市', level: division === DISTRICT ? 'district' : 'city',
          from: url.searchParams.get('from'), to: url.searchParams.get('to'), totals: totals(120, 104, 2), children: children(division),
          by_item: [{ item_code: 'CG-0101', department: '城管 city management', totals: totals(40, 35, 1) },
                    { item_code: 'SI-0001', department: '社保 social insurance', totals: totals(80, 80, 0) }],
          daily: days, stale: division === DISTRICT ? [] : [{ division: '440606000000', last_heard_ms: Date.now() - 3600000 }] };
      } else if (url.pathname.endsWith('/warnings')) {
        body = { warnings: [{ case_number: TOWN + '-00000007', origin: TOWN, item_code: 'CG-0101', department: '城管 city management', light: 'red', deadline_ms: Date.now() - 86400000, since_ms: Date.now() - 3600000 },
                            { case_number: DISTRICT + '-00000003', origin: DISTRICT, item_code: 'SC-0001', department: '市场监管 market regulation', light: 'yellow', deadline_ms: Date.now() + 86400000, since_ms: Date.now() - 600000 }] };
      } else {
        body = { month: url.searchParams.get('month'), formula: '40×on-time + 20×early + 30×satisfaction − 2×complaints − 5×red',
          ranking: [{ unit: '440605000000', kind: 'division', name: '南海区', score: 91.5, on_time_rate: 0.97, early_rate: 0.5, satisfaction_rate: 0.9, complaints: 0, red: 0 },
                    { unit: DISTRICT, kind: 'division', name: '禅城区', score: 84.2, on_time_rate: 0.98, early_rate: 0.5, satisfaction_rate: 0.8, complaints: 1, red: 1 }] };
      }
      return route.fulfill({ status: 200, contentType: 'application/json', body: JSON.stringify(body) });
    });
    await page.goto(CITY_URL + '/console/#/supervision');
    await login(page, 'supervisor', 'tongban-demo-supervisor');
    await page.locator('[data-testid=division]').nth(2).waitFor();
    check(await page.locator('[data-testid=division].red').count() === 1, 'a division with an open red case is red');
    check(await page.locator('[data-testid=division].yellow').count() === 1, 'a division with only yellow is yellow');
    check(await page.locator('[data-testid=division].stale').count() === 1, 'a stale division is marked');
    check(await page.locator('[data-testid=trend-svg] polyline').count() === 3, 'trend chart has three series');
    check((await page.getByTestId('rate-on-time').textContent()).includes('%'), 'on-time rate shown');
    check(await page.locator('[data-testid=ranking-table] tbody tr').count() === 2, 'ranking table');
    check(await page.locator('[data-testid=warnings-table] tbody tr').count() === 2, 'warnings listed');
    check(await page.getByTestId('stale').count() === 1, 'stale divisions named');
    await page.screenshot({ path: `${SHOTS}/dashboard-contract.png`, fullPage: true });
    await page.locator(`[data-testid=division][data-division="${DISTRICT}"]`).click();
    await page.locator(`[data-testid=division][data-division="${TOWN}"]`).waitFor();
    check((await page.getByTestId('dash-title').textContent()).includes('禅城区'), 'drilled into the district');
    await context.close();
  }
  check(problems.length === 0, 'no page errors or foreign requests:\n  ' + problems.join('\n  '));
  step(`passed; screenshots in ${SHOTS}`);
} catch (e) {
  console.error('browser test FAILED: ' + e.message);
  if (lastPage) await lastPage.screenshot({ path: `${SHOTS}/failure.png`, fullPage: true }).catch(() => {});
  if (problems.length) console.error('also seen:\n  ' + problems.join('\n  '));
  process.exitCode = 1;
} finally {
  await browser.close();
}
