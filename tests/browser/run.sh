#!/usr/bin/env bash
# The web console in headless Chromium on a small real network (city → district → town → two
# villages, real nats-servers and node processes on loopback): see console_test.mjs.
#   tests/browser/run.sh TONGBAN_BINARY SOURCE_DIR [SCREENSHOT_DIR]
# Screenshots go to SCREENSHOT_DIR, else $TB_SCREENSHOTS, else SOURCE_DIR/build/screenshots.
# Needs Debian chromium (ops/setup.sh) and Node.js with npm; installs the pinned playwright-core
# (package-lock.json) into tests/browser/node_modules on first use.
set -euo pipefail
TB="$1"; SRC="$2"
SHOTS="${3:-${TB_SCREENSHOTS:-$SRC/build/screenshots}}"
CHROMIUM="${CHROMIUM:-/usr/bin/chromium}"
[ -x "$CHROMIUM" ] || { echo "browser: $CHROMIUM missing (bash ops/setup.sh installs Debian chromium)" >&2; exit 1; }
command -v node > /dev/null && command -v npm > /dev/null || { echo "browser: node and npm are needed" >&2; exit 1; }
if [ ! -f "$SRC/tests/browser/node_modules/playwright-core/package.json" ]; then
  # npm ci: exactly the locked version. It downloads no browser (playwright-core has no hook).
  (cd "$SRC/tests/browser" && timeout 300 npm ci --no-audit --no-fund --loglevel=error)
fi

source "$SRC/tests/integration/lib.sh"
NET_HEARTBEAT_MS=500
it_begin browser
start=$(date +%s)

CITY=440600000000 DISTRICT=440604000000 TOWN=440604001000
it_network 1 1 2
net_wait_catalogue "$TOWN" 90 || die "no catalogue at the town within 90 s"
net_staff "$CITY"
net_staff "$DISTRICT"
net_staff "$TOWN"

# A few cases through the HTTP API, so the clerk's list and the city's figures are not empty.
submit() {  # submit CODE ITEM APPLICANT_ID NAME KIND... → prints the case number
  local code="$1" item="$2" id="$3" name="$4" token mats="" k hash; shift 4
  token=$(net_login "$code" clerk)
  for k in "$@"; do
    hash=$(curl -s --max-time 10 -X POST -H "Authorization: Bearer $token" --data-binary "scan of $k for $id" \
      "$(net_url "$code")/api/materials?kind=$k&holder=$id" | jq -r .hash)
    mats+="{\"kind\":\"$k\",\"hash\":\"$hash\"},"
  done
  curl -s --max-time 10 -X POST -H "Authorization: Bearer $token" -H 'Content-Type: application/json' \
    "$(net_url "$code")/api/cases" --data-binary \
    "{\"item_code\":\"$item\",\"applicant_id\":\"$id\",\"applicant_name\":\"$name\",\"contact\":\"13800000000\",\"materials\":[${mats%,}]}" \
    | jq -r .number
}
submit "$TOWN" SI-0001 11010519491231002X 张三 id_card > /dev/null
submit "$DISTRICT" SI-0001 11010519491231002X 张三 id_card > /dev/null
N=$(submit "$DISTRICT" SC-0001 440604199001010579 李四 id_card articles_of_association address_proof)
curl -s --max-time 10 -o /dev/null -X POST -H "Authorization: Bearer $(net_login "$DISTRICT" undertaker)" \
  -H 'Content-Type: application/json' "$(net_url "$DISTRICT")/api/cases/$N/steps" --data-binary '{"step":"undertake"}'
# The figures reach the city with the halls' next snapshots (every 2 s here): wait for them, so
# the dashboard shows what really happened (bounded).
SUP=$(net_login "$CITY" supervisor)
deadline=$(( $(date +%s) + 30 ))
until [ "$(curl -s --max-time 5 -H "Authorization: Bearer $SUP" "$(net_url "$CITY")/api/supervision/summary" | jq -r '.totals.accepted // 0')" -ge 3 ]; do
  [ "$(date +%s)" -lt "$deadline" ] || die "the city's figures never showed the 3 applications"
  sleep 0.5
done
echo "[browser] network of $(wc -l < "$NET/divisions.txt") nodes ready in $(( $(date +%s) - start )) s"

CLERK_URL="$(net_url "$DISTRICT")" CITY_URL="$(net_url "$CITY")" DISTRICT="$DISTRICT" TOWN="$TOWN" SHOTS="$SHOTS" \
  CHROMIUM="$CHROMIUM" timeout 180 node "$SRC/tests/browser/console_test.mjs" && ok "the console's checks in Chromium" \
  || fail "the console's checks in Chromium (console_test.mjs, exit $?)"
