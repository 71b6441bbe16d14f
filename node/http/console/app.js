// Tongban web console: plain JavaScript, no build step, no external resources. Everything it
// shows comes from this node's own JSON API (docs/api.md); the node serves this file from its
// binary, so the console works offline on a hall's LAN.
//
// Pages (hash routing): #/login, #/clerk (the window: catalogue, intake, case list and steps),
// #/supervision?division=&from=&to= (the subtree dashboard). DOM is built with h(), never with
// innerHTML, so text from the API can never become markup.
'use strict';

const session = {
  get token() { return sessionStorage.getItem('tb.token') || ''; },
  get username() { return sessionStorage.getItem('tb.username') || ''; },
  set(token, username) { sessionStorage.setItem('tb.token', token); sessionStorage.setItem('tb.username', username); },
  clear() { sessionStorage.removeItem('tb.token'); sessionStorage.removeItem('tb.username'); },
};
const cache = { health: null, catalogue: null };
let renderSeq = 0;  // a page render that finishes after the user moved on must not draw

// ------------------------------------------------------------------------------------------
// Helpers

function h(tag, attrs, ...kids) {
  const ns = ['svg', 'line', 'polyline', 'text', 'circle', 'g', 'rect', 'title'].includes(tag) ? 'http://www.w3.org/2000/svg' : null;
  const el = ns ? document.createElementNS(ns, tag) : document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) {
    if (v === undefined || v === null || v === false) continue;
    if (k.startsWith('on')) el.addEventListener(k.slice(2), v);
    else if (k === 'class') el.setAttribute('class', v);
    else el.setAttribute(k, v === true ? '' : String(v));
  }
  for (const kid of kids.flat(Infinity)) {
    if (kid === undefined || kid === null || kid === false) continue;
    el.appendChild(kid instanceof Node ? kid : document.createTextNode(String(kid)));
  }
  return el;
}

// Never throws: a network failure is {status: 0, data: {error}} like any other error.
async function api(method, path, body, raw) {
  const headers = {};
  if (session.token) headers.Authorization = 'Bearer ' + session.token;
  let payload;
  if (raw !== undefined) { payload = raw; headers['Content-Type'] = raw.type || 'application/octet-stream'; }
  else if (body !== undefined) { payload = JSON.stringify(body); headers['Content-Type'] = 'application/json'; }
  let res;
  try {
    res = await fetch(path, { method, headers, body: payload, cache: 'no-store' });
  } catch (e) {
    return { status: 0, ok: false, data: { error: { code: 'NETWORK', message: 'the node did not answer (' + e.message + ')' } } };
  }
  let data = null;
  const text = await res.text();
  try { data = text ? JSON.parse(text) : null; } catch (e) { data = { error: { code: 'MALFORMED', message: text.slice(0, 200) } }; }
  if (res.status === 401 && path !== '/api/login') {
    session.clear();
    flash('Your session has ended; please log in again.', true);
    go('#/login?next=' + encodeURIComponent(location.hash));
  }
  return { status: res.status, ok: res.ok, data };
}

function errorText(r) {
  const e = r.data && r.data.error;
  return e ? e.message + ' (' + e.code + ', HTTP ' + r.status + ')' : 'HTTP ' + r.status;
}

function flash(text, isError) {
  const el = document.getElementById('flash');
  el.textContent = text;
  el.className = 'flash' + (isError ? ' error' : '');
  el.hidden = !text;
}

function go(hash) { if (location.hash !== hash) location.hash = hash; else render(); }

function parseHash() {
  const hash = location.hash || '#/';
  const q = hash.indexOf('?');
  const page = (q < 0 ? hash : hash.slice(0, q)).replace(/^#\/?/, '') || '';
  const params = new URLSearchParams(q < 0 ? '' : hash.slice(q + 1));
  return { page, params };
}

const pad = (n) => String(n).padStart(2, '0');
// Days are China Standard Time civil dates (UTC+8, no daylight saving), as on the nodes, whatever
// the browser's own time zone: a case accepted at 00:30 in Foshan belongs to that day.
const CST_OFFSET_MS = 8 * 3600 * 1000;
const isoDate = (d) => {
  const c = new Date(d.getTime() + CST_OFFSET_MS);
  return c.getUTCFullYear() + '-' + pad(c.getUTCMonth() + 1) + '-' + pad(c.getUTCDate());
};
const dateOfMs = (ms) => (ms ? isoDate(new Date(ms)) : '—');
function ago(ms) {
  if (!ms) return 'never';
  const s = Math.max(0, Math.round((Date.now() - ms) / 1000));
  if (s < 120) return s + ' s ago';
  if (s < 7200) return Math.round(s / 60) + ' min ago';
  if (s < 172800) return Math.round(s / 3600) + ' h ago';
  return Math.round(s / 86400) + ' days ago';
}
// Rates are fractions (0..1) in docs/supervision.md; a value above 1 is taken as a percentage.
function pct(v) {
  if (v === undefined || v === null || Number.isNaN(Number(v))) return '—';
  const p = Number(v) <= 1 ? Number(v) * 100 : Number(v);
  return p.toFixed(1) + '%';
}
const num = (v) => (v === undefined || v === null ? '—' : String(v));
const lightDot = (light) => h('span', { class: 'light light-' + (light || 'none'), title: light || 'none' });

// ------------------------------------------------------------------------------------------
// Frame

async function loadHealth() {
  const r = await api('GET', '/health');
  if (r.ok) {
    cache.health = r.data;
    document.getElementById('node-name').textContent = r.data.name + ' · ' + r.data.division + ' · ' + r.data.level;
  } else {
    document.getElementById('node-name').textContent = 'node not answering: ' + errorText(r);
  }
}

function frame(page) {
  const loggedIn = !!session.token;
  document.getElementById('nav').hidden = !loggedIn;
  document.getElementById('who').hidden = !loggedIn;
  document.getElementById('who-name').textContent = session.username;
  for (const a of document.querySelectorAll('#nav a')) a.classList.toggle('active', a.getAttribute('href') === '#/' + page);
}

function mount(...kids) {
  const app = document.getElementById('app');
  app.replaceChildren(...kids);
  return app;
}

async function render() {
  const seq = ++renderSeq;
  const { page, params } = parseHash();
  if (page !== 'login' && !session.token) return go('#/login?next=' + encodeURIComponent(location.hash || '#/'));
  frame(page);
  if (page === 'login') return renderLogin(params);
  if (page === 'clerk') return renderClerk(seq);
  if (page === 'supervision') return renderSupervision(seq, params);
  return landing();
}
const stale = (seq) => seq !== renderSeq;

// After log-in without a target: whoever may read the subtree's summary (supervisor, admin)
// lands on the dashboard, everyone else at the window (the nav reaches both).
async function landing() {
  const r = await api('GET', '/api/supervision/summary');
  go(r.ok ? '#/supervision' : '#/clerk');
}

// ------------------------------------------------------------------------------------------
// Log-in

function renderLogin(params) {
  const msg = h('div', { class: 'notice error', hidden: true, 'data-testid': 'login-error' });
  const user = h('input', { name: 'username', autocomplete: 'username', required: true, 'data-testid': 'login-username' });
  const pass = h('input', { name: 'password', type: 'password', autocomplete: 'current-password', required: true, 'data-testid': 'login-password' });
  const form = h('form', { class: 'stack panel login', 'data-testid': 'login-form' },
    h('h1', {}, 'Log in 登录'), msg,
    h('label', {}, 'Username'), user, h('label', {}, 'Password'), pass,
    h('button', { class: 'primary', type: 'submit', 'data-testid': 'login-submit' }, 'Log in'));
  form.addEventListener('submit', async (ev) => {
    ev.preventDefault();
    const r = await api('POST', '/api/login', { username: user.value.trim(), password: pass.value });
    if (!r.ok) { msg.textContent = errorText(r); msg.hidden = false; return; }
    session.set(r.data.token, r.data.username);
    flash('');
    const next = params.get('next');
    go(next && next !== '#/' && !next.startsWith('#/login') ? next : '#/');
  });
  mount(form);
  user.focus();
}

async function logout() {
  if (session.token) await api('POST', '/api/logout');
  session.clear();
  go('#/login');
}

// ------------------------------------------------------------------------------------------
// The window (clerk page)

// The steps a case in each state can take next (docs/api.md); the node decides who may.
const NEXT_STEPS = {
  accepted: ['undertake', 'supplement'], undertaken: ['review', 'supplement'], reviewed: ['approve', 'deny'],
  approved: ['conclude'], denied: ['conclude'], supplement: ['resume'],
};

async function renderClerk(seq) {
  const catalogueBox = h('div', { 'data-testid': 'catalogue' }, h('p', { class: 'muted' }, 'Loading the catalogue…'));
  const formBox = h('div', {});
  const casesBox = h('div', { 'data-testid': 'cases' }, h('p', { class: 'muted' }, 'Loading cases…'));
  const stateSel = h('select', { 'data-testid': 'filter-state' }, h('option', { value: '' }, 'any state'),
    ['accepted', 'undertaken', 'reviewed', 'approved', 'denied', 'concluded', 'supplement', 'refused'].map((s) => h('option', { value: s }, s)));
  const lightSel = h('select', { 'data-testid': 'filter-light' }, h('option', { value: '' }, 'any light'),
    ['green', 'yellow', 'red', 'none'].map((s) => h('option', { value: s }, s)));
  const reload = () => loadCases(casesBox, stateSel.value, lightSel.value);
  stateSel.addEventListener('change', reload);
  lightSel.addEventListener('change', reload);
  mount(
    h('h1', {}, 'Window 窗口'),
    h('div', { class: 'grid2' },
      h('section', { class: 'panel' }, h('h2', {}, 'New application 受理'), formBox),
      h('section', { class: 'panel' }, h('h2', {}, 'Cases 办件'), h('div', { class: 'filters' }, stateSel, lightSel,
        h('button', { type: 'button', onclick: reload }, 'Refresh')), casesBox)),
    h('section', { class: 'panel' }, h('h2', {}, 'Catalogue 事项目录'), catalogueBox));

  const [cat] = await Promise.all([api('GET', '/api/catalogue'), reload()]);
  if (stale(seq)) return;
  if (!cat.ok) {
    catalogueBox.replaceChildren(h('div', { class: 'notice' }, 'No catalogue: ' + errorText(cat)));
    formBox.replaceChildren(h('p', { class: 'muted' }, 'Intake needs the catalogue.'));
    return;
  }
  cache.catalogue = cat.data;
  const level = cache.health ? cache.health.level : '';
  const acceptsHere = (it) => !level || (it.accept_levels || []).includes(level);
  const form = newCaseForm(cat.data, acceptsHere, reload);
  formBox.replaceChildren(form.el);
  catalogueBox.replaceChildren(h('p', { class: 'muted' }, 'Catalogue version ' + cat.data.version + '; greyed items are not accepted at this ' + (level || 'node') + ' hall. Click an item to start an application.'),
    h('table', {},
      h('thead', {}, h('tr', {}, ['Code', 'Item', 'Department', 'Kind', 'Accepted at', 'Decided at', 'Days', 'Materials'].map((t) => h('th', {}, t)))),
      h('tbody', {}, cat.data.items.map((it) => h('tr', { class: acceptsHere(it) ? '' : 'off', 'data-item': it.code, onclick: () => form.pick(it.code) },
        h('td', {}, it.code), h('td', {}, it.name), h('td', {}, it.department), h('td', {}, it.kind),
        h('td', {}, (it.accept_levels || []).join(', ')), h('td', {}, it.decide_level),
        h('td', { class: 'num' }, it.committed_days + ' / ' + it.legal_days),
        h('td', {}, (it.materials || []).map((m) => cat.data.material_kinds[m] || m).join('; ')))))));
}

function newCaseForm(catalogue, acceptsHere, onCreated) {
  const items = catalogue.items.filter(acceptsHere);
  const itemSel = h('select', { name: 'item_code', required: true, 'data-testid': 'new-item' },
    items.map((it) => h('option', { value: it.code }, it.code + ' ' + it.name)));
  const applicant = h('input', { name: 'applicant_id', required: true, placeholder: 'resident ID or credit code', 'data-testid': 'new-applicant-id' });
  const name = h('input', { name: 'applicant_name', required: true, 'data-testid': 'new-applicant-name' });
  const contact = h('input', { name: 'contact', required: true, 'data-testid': 'new-contact' });
  const note = h('input', { name: 'note', 'data-testid': 'new-note' });
  const mats = h('div', { class: 'materials', 'data-testid': 'new-materials' });
  const result = h('div', { 'data-testid': 'new-result' });
  const showMaterials = () => {
    const it = catalogue.items.find((x) => x.code === itemSel.value);
    mats.replaceChildren(...(it && it.materials.length ? it.materials.map((k) => h('div', { class: 'mat' },
      h('span', {}, catalogue.material_kinds[k] || k), h('input', { type: 'file', 'data-kind': k }))) :
      [h('p', { class: 'muted' }, 'No materials required.')]),
    h('p', { class: 'muted' }, 'A material without a file reuses the applicant\'s newest one of that kind at this hall.'));
  };
  itemSel.addEventListener('change', showMaterials);
  showMaterials();
  const el = h('form', { class: 'stack', 'data-testid': 'new-case-form' },
    h('label', {}, 'Item 事项'), itemSel, h('label', {}, 'Applicant ID 证件号'), applicant,
    h('label', {}, 'Applicant name 申请人'), name, h('label', {}, 'Contact 联系方式'), contact,
    h('label', {}, 'Note'), note, h('label', {}, 'Materials 材料'), mats,
    h('button', { class: 'primary', type: 'submit', 'data-testid': 'new-submit' }, 'Take in 受理'), result);
  el.addEventListener('submit', async (ev) => {
    ev.preventDefault();
    result.replaceChildren(h('p', { class: 'muted' }, 'Submitting…'));
    const materials = [];
    for (const input of mats.querySelectorAll('input[type=file]')) {
      const kind = input.getAttribute('data-kind');
      if (!input.files.length) { materials.push({ kind }); continue; }
      const up = await api('POST', '/api/materials?kind=' + encodeURIComponent(kind) + '&holder=' + encodeURIComponent(applicant.value.trim()), undefined, input.files[0]);
      if (!up.ok) { result.replaceChildren(h('div', { class: 'notice error' }, 'Upload of ' + kind + ' failed: ' + errorText(up))); return; }
      materials.push({ kind, hash: up.data.hash });
    }
    const r = await api('POST', '/api/cases', { item_code: itemSel.value, applicant_id: applicant.value.trim(),
      applicant_name: name.value.trim(), contact: contact.value.trim(), note: note.value, materials });
    if (r.status === 201) {
      result.replaceChildren(h('div', { class: 'notice', 'data-testid': 'new-accepted' }, 'Accepted 已受理: ',
        h('strong', {}, r.data.number), ' — deadline ' + (r.data.deadline || '—') + ', state ' + r.data.state));
      onCreated();
    } else if (r.status === 422) {
      result.replaceChildren(h('div', { class: 'notice error', 'data-testid': 'new-refused' }, 'Refused 不予受理 (' + r.data.number + '): ' + r.data.refusal_notice));
      onCreated();
    } else {
      result.replaceChildren(h('div', { class: 'notice error', 'data-testid': 'new-error' }, errorText(r)));
    }
  });
  return { el, pick: (code) => { if (items.some((x) => x.code === code)) { itemSel.value = code; showMaterials(); applicant.focus(); } } };
}

async function loadCases(box, state, light) {
  const q = new URLSearchParams({ limit: '100' });
  if (state) q.set('state', state);
  if (light) q.set('light', light);
  const r = await api('GET', '/api/cases?' + q);
  if (!r.ok) { box.replaceChildren(h('div', { class: 'notice error' }, errorText(r))); return; }
  if (!r.data.cases.length) { box.replaceChildren(h('p', { class: 'muted' }, 'No cases.')); return; }
  const reload = () => loadCases(box, state, light);
  box.replaceChildren(h('table', {},
    h('thead', {}, h('tr', {}, ['', 'Number', 'Item', 'Applicant', 'State', 'Deadline', 'Next step'].map((t) => h('th', {}, t)))),
    h('tbody', {}, r.data.cases.map((c) => h('tr', { 'data-number': c.number, 'data-testid': 'case-row' },
      h('td', {}, lightDot(c.light)), h('td', {}, c.number), h('td', {}, c.item_code + ' ' + c.item_name),
      h('td', {}, c.applicant_name), h('td', { 'data-testid': 'case-state' }, c.state), h('td', {}, c.deadline || '—'),
      h('td', {}, (NEXT_STEPS[c.state] || []).map((step) => h('button', { type: 'button', class: 'step', 'data-step': step,
        onclick: () => doStep(c, step, reload) }, step))))))));
}

async function doStep(c, step, reload) {
  const body = { step };
  if (step === 'review' && c.kind === 'joint') {
    // A joint item is reviewed once per department (docs/api.md).
    body.department = window.prompt('Reviewing department for ' + c.number) || '';
    body.decision = window.confirm('Approve? (Cancel = deny)') ? 'approve' : 'deny';
  }
  const r = await api('POST', '/api/cases/' + encodeURIComponent(c.number) + '/steps', body);
  if (r.ok) flash(c.number + ': ' + step + ' → ' + r.data.state);
  else flash(c.number + ': ' + step + ' refused: ' + errorText(r), true);
  reload();
}

// ------------------------------------------------------------------------------------------
// Supervision dashboard

// Division codes: 2 province, 2 city, 2 county, 3 town, 3 village digits. The parent zeroes the
// lowest non-zero part.
function parentCode(code) {
  if (!/^\d{12}$/.test(code)) return '';
  if (code.slice(9) !== '000') return code.slice(0, 9) + '000';
  if (code.slice(6, 9) !== '000') return code.slice(0, 6) + '000000';
  if (code.slice(4, 6) !== '00') return code.slice(0, 4) + '00000000';
  return '';
}

function renderSupervision(seq, params) {
  const own = cache.health ? cache.health.division : '';
  const division = params.get('division') || own;
  // "Today" is the node's, not the browser's (a rehearsal network may run ahead of the calendar).
  const today = new Date(cache.health && cache.health.now_ms ? cache.health.now_ms : Date.now());
  const monthAgo = new Date(today.getTime() - 29 * 86400000);
  const from = params.get('from') || isoDate(monthAgo);
  const to = params.get('to') || isoDate(today);
  const fromIn = h('input', { type: 'date', value: from, 'data-testid': 'from' });
  const toIn = h('input', { type: 'date', value: to, 'data-testid': 'to' });
  const drill = (code) => go('#/supervision?' + new URLSearchParams({ division: code, from: fromIn.value, to: toIn.value }));
  const crumbs = [];
  for (let c = division; c; c = c === own ? '' : parentCode(c)) crumbs.unshift(c);
  const boxes = {
    title: h('h1', { 'data-testid': 'dash-title' }, 'Supervision 电子监察 · ' + division),
    notice: h('div', {}), rates: h('div', { class: 'cards', 'data-testid': 'rates' }),
    tree: h('div', { class: 'tree', 'data-testid': 'tree' }), chart: h('div', { 'data-testid': 'trend' }),
    items: h('div', { 'data-testid': 'by-item' }), ranking: h('div', { 'data-testid': 'ranking' }),
    warnings: h('div', { 'data-testid': 'warnings' }),
  };
  mount(
    boxes.title,
    h('div', { class: 'toolbar' },
      h('div', { class: 'crumbs', 'data-testid': 'crumbs' }, crumbs.map((c, i) => [i ? ' › ' : '', c === division ? h('strong', {}, c) : h('a', { onclick: () => drill(c) }, c)])),
      h('label', {}, 'From', fromIn), h('label', {}, 'To', toIn),
      h('button', { type: 'button', 'data-testid': 'refresh', onclick: () => drill(division) }, 'Show')),
    boxes.notice, h('div', { class: 'panel' }, h('h2', {}, 'Headline figures'), boxes.rates),
    h('div', { class: 'grid2' },
      h('section', { class: 'panel' }, h('h2', {}, 'Divisions 下级单位'), boxes.tree),
      h('section', { class: 'panel' }, h('h2', {}, 'Daily trend 每日趋势'), boxes.chart)),
    h('div', { class: 'grid2 even' },
      h('section', { class: 'panel' }, h('h2', {}, 'Ranking 绩效排名 ' + to.slice(0, 7)), boxes.ranking),
      h('section', { class: 'panel' }, h('h2', {}, 'Warnings 预警 (yellow/red)'), boxes.warnings)),
    h('section', { class: 'panel' }, h('h2', {}, 'By item 按事项'), boxes.items));
  return loadDashboard(seq, { division, own, from, to, drill, boxes });
}

const unavailable = (what, r) => h('div', { class: 'notice', 'data-testid': 'not-available' },
  r.status === 404 ? what + ' not available on this node yet (the supervision figures are not installed: HTTP 404).' :
  r.status === 403 ? what + ': your account lacks the supervisor role. ' + errorText(r) : what + ': ' + errorText(r));

async function loadDashboard(seq, ctx) {
  const { division, from, to, boxes } = ctx;
  const q = (o) => new URLSearchParams(o).toString();
  const [summary, warnings, scores] = await Promise.all([
    api('GET', '/api/supervision/summary?' + q({ division, from, to })),
    api('GET', '/api/supervision/warnings?' + q({ division })),
    api('GET', '/api/supervision/scores?' + q({ month: to.slice(0, 7), division })),
  ]);
  if (stale(seq)) return;
  if (summary.ok) {
    const s = summary.data;
    boxes.title.textContent = 'Supervision 电子监察 · ' + s.name + ' (' + s.division + ', ' + s.level + ') · ' + s.from + ' – ' + s.to;
    drawRates(boxes.rates, s.totals || {});
    drawTree(boxes.tree, s, ctx.drill);
    drawChart(boxes.chart, s.daily || []);
    drawItems(boxes.items, s.by_item || []);
    if ((s.stale || []).length) {
      boxes.notice.replaceChildren(h('div', { class: 'notice', 'data-testid': 'stale' }, 'Figures may be behind for: ' +
        s.stale.map((x) => x.division + ' (last heard ' + ago(x.last_heard_ms) + ')').join(', ')));
    }
  } else {
    boxes.notice.replaceChildren(unavailable('Supervision summary', summary));
    boxes.rates.replaceChildren(h('p', { class: 'muted' }, 'No figures.'));
    boxes.chart.replaceChildren(h('p', { class: 'muted' }, 'No figures.'));
    boxes.items.replaceChildren(h('p', { class: 'muted' }, 'No figures.'));
    await drawTreeFromStatus(seq, boxes.tree, ctx);
  }
  if (stale(seq)) return;
  if (scores.ok) drawRanking(boxes.ranking, scores.data);
  else boxes.ranking.replaceChildren(unavailable('Scores', scores));
  if (warnings.ok) drawWarnings(boxes.warnings, warnings.data.warnings || []);
  else boxes.warnings.replaceChildren(unavailable('Warnings', warnings));
}

function drawRates(box, t) {
  const card = (k, v, id) => h('div', { class: 'card', 'data-testid': 'rate-' + id }, h('div', { class: 'v' }, v), h('div', { class: 'k' }, k));
  box.replaceChildren(
    card('Accepted 受理', num(t.accepted), 'accepted'), card('Concluded 办结', num(t.concluded), 'concluded'),
    card('On time 按时办结率', pct(t.on_time_rate), 'on-time'), card('Early 提前办结率', pct(t.early_rate), 'early'),
    card('On site 现场办结率', pct(t.on_site_rate), 'on-site'), card('Satisfaction 满意率', pct(t.satisfaction_rate), 'satisfaction'),
    card('Avg working days 平均用时', t.avg_working_days === undefined || t.avg_working_days === null ? '—' : Number(t.avg_working_days).toFixed(1), 'avg-days'),
    card('Overdue 超期', num(t.overdue), 'overdue'), card('Yellow / red 黄牌/红牌', num(t.yellow) + ' / ' + num(t.red), 'lights'),
    card('Complaints 投诉', num(t.complaints), 'complaints'));
}

function divisionBox(d, onClick) {
  const colour = d.open_red > 0 ? 'red' : d.open_yellow > 0 ? 'yellow' : 'green';
  const t = d.totals || {};
  return h('div', { class: 'division ' + colour + (d.stale ? ' stale' : ''), 'data-testid': 'division', 'data-division': d.division,
    role: 'button', tabindex: '0', title: 'Drill down into ' + d.division, onclick: onClick,
    onkeydown: (e) => { if (e.key === 'Enter') onClick(); } },
  h('div', { class: 'name' }, d.name || d.division), h('div', { class: 'code' }, d.division + (d.level ? ' · ' + d.level : '')),
  d.open_yellow !== undefined ? h('div', { class: 'meta' }, 'open yellow ' + d.open_yellow + ' · red ' + d.open_red) : null,
  t.accepted !== undefined ? h('div', { class: 'meta' }, 'accepted ' + t.accepted + ' · on time ' + pct(t.on_time_rate)) : null,
  h('div', { class: 'meta' }, d.stale ? 'stale: last heard ' + ago(d.last_heard_ms) : d.last_heard_ms ? 'heard ' + ago(d.last_heard_ms) : ''));
}

function drawTree(box, s, drill) {
  const kids = s.children || [];
  box.replaceChildren(
    h('div', { class: 'root', 'data-testid': 'tree-root' }, h('strong', {}, s.name), ' ', h('span', { class: 'muted' }, s.division + ' · ' + s.level)),
    kids.length ? h('div', { class: 'kids' }, kids.map((d) => divisionBox(d, () => drill(d.division)))) :
      h('p', { class: 'muted' }, 'No divisions below ' + s.name + '.'));
}

// Without the supervision figures the tree can still show who is below this node and when each
// was last heard (GET /api/status), for this node's own division only.
async function drawTreeFromStatus(seq, box, ctx) {
  if (ctx.division !== ctx.own) { box.replaceChildren(h('p', { class: 'muted' }, 'The tree below ' + ctx.division + ' needs the supervision figures.')); return; }
  const r = await api('GET', '/api/status');
  if (stale(seq)) return;
  if (!r.ok) { box.replaceChildren(h('div', { class: 'notice error' }, errorText(r))); return; }
  const staleAfter = 60000;
  drawTree(box, { name: r.data.name, division: r.data.division, level: r.data.level,
    children: (r.data.children || []).map((c) => ({ division: c.division, name: c.name, last_heard_ms: c.last_seen_ms,
      stale: !c.last_seen_ms || Date.now() - c.last_seen_ms > staleAfter })) }, ctx.drill);
}

function drawChart(box, daily) {
  if (!daily.length) { box.replaceChildren(h('p', { class: 'muted' }, 'No activity in this period.')); return; }
  const W = 640, H = 220, L = 36, R = 10, T = 10, B = 28;
  const series = [['accepted', '#2563eb'], ['concluded', '#16a34a'], ['overdue', '#dc2626']];
  const max = Math.max(1, ...daily.flatMap((d) => series.map(([k]) => Number(d[k]) || 0)));
  const x = (i) => L + (daily.length === 1 ? (W - L - R) / 2 : (i * (W - L - R)) / (daily.length - 1));
  const y = (v) => T + (H - T - B) * (1 - v / max);
  const svg = h('svg', { class: 'chart', viewBox: '0 0 ' + W + ' ' + H, role: 'img', 'aria-label': 'daily accepted, concluded and overdue', 'data-testid': 'trend-svg' },
    h('line', { class: 'axis', x1: L, y1: y(0), x2: W - R, y2: y(0) }), h('line', { class: 'axis', x1: L, y1: T, x2: L, y2: y(0) }),
    h('text', { x: L - 4, y: y(max) + 4, 'text-anchor': 'end' }, String(max)), h('text', { x: L - 4, y: y(0) + 4, 'text-anchor': 'end' }, '0'),
    h('text', { x: L, y: H - 8 }, daily[0].day), h('text', { x: W - R, y: H - 8, 'text-anchor': 'end' }, daily[daily.length - 1].day),
    series.map(([k, colour]) => [
      h('polyline', { fill: 'none', stroke: colour, 'stroke-width': 2, points: daily.map((d, i) => x(i).toFixed(1) + ',' + y(Number(d[k]) || 0).toFixed(1)).join(' ') }),
      daily.map((d, i) => h('circle', { cx: x(i).toFixed(1), cy: y(Number(d[k]) || 0).toFixed(1), r: 2.5, fill: colour }, h('title', {}, d.day + ' ' + k + ': ' + (d[k] || 0)))),
    ]));
  box.replaceChildren(svg, h('div', { class: 'legend' }, series.map(([k]) => h('span', {}, h('i', { class: 'c-' + k }), k))));
}

function drawItems(box, items) {
  if (!items.length) { box.replaceChildren(h('p', { class: 'muted' }, 'No cases in this period.')); return; }
  box.replaceChildren(h('table', {},
    h('thead', {}, h('tr', {}, ['Item', 'Department', 'Accepted', 'Concluded', 'On time', 'Overdue', 'Satisfaction', 'Complaints'].map((t) => h('th', {}, t)))),
    h('tbody', {}, items.map((it) => { const t = it.totals || {}; return h('tr', {}, h('td', {}, it.item_code), h('td', {}, it.department),
      h('td', { class: 'num' }, num(t.accepted)), h('td', { class: 'num' }, num(t.concluded)), h('td', { class: 'num' }, pct(t.on_time_rate)),
      h('td', { class: 'num' }, num(t.overdue)), h('td', { class: 'num' }, pct(t.satisfaction_rate)), h('td', { class: 'num' }, num(t.complaints))); }))));
}

function drawRanking(box, scores) {
  const rows = scores.ranking || [];
  box.replaceChildren(
    scores.formula ? h('p', { class: 'muted' }, 'Formula: ' + scores.formula) : null,
    rows.length ? h('table', { 'data-testid': 'ranking-table' },
      h('thead', {}, h('tr', {}, ['#', 'Unit', 'Score', 'On time', 'Early', 'Satisfaction', 'Complaints', 'Red'].map((t) => h('th', {}, t)))),
      h('tbody', {}, rows.map((r, i) => h('tr', {}, h('td', { class: 'num' }, i + 1), h('td', {}, (r.name || r.unit) + ' ', h('span', { class: 'muted' }, r.kind || '')),
        h('td', { class: 'num' }, r.score === undefined ? '—' : Number(r.score).toFixed(1)), h('td', { class: 'num' }, pct(r.on_time_rate)),
        h('td', { class: 'num' }, pct(r.early_rate)), h('td', { class: 'num' }, pct(r.satisfaction_rate)),
        h('td', { class: 'num' }, num(r.complaints)), h('td', { class: 'num' }, num(r.red)))))) :
      h('p', { class: 'muted' }, 'No units scored for ' + scores.month + '.'));
}

function drawWarnings(box, list) {
  if (!list.length) { box.replaceChildren(h('p', { class: 'muted' }, 'No yellow or red cases. 无预警')); return; }
  box.replaceChildren(h('table', { 'data-testid': 'warnings-table' },
    h('thead', {}, h('tr', {}, ['', 'Case', 'Where', 'Item', 'Department', 'Deadline', 'Since'].map((t) => h('th', {}, t)))),
    h('tbody', {}, list.map((w) => h('tr', {}, h('td', {}, lightDot(w.light)), h('td', {}, w.case_number), h('td', {}, w.origin),
      h('td', {}, w.item_code), h('td', {}, w.department), h('td', {}, dateOfMs(w.deadline_ms - 1)), h('td', {}, ago(w.since_ms)))))));
}

// ------------------------------------------------------------------------------------------

document.getElementById('logout').addEventListener('click', logout);
window.addEventListener('hashchange', render);
loadHealth().then(render);
