#!/usr/bin/env bash
# Prometheus /metrics and the embedded console on real node processes (city → district → town →
# village on real nats-servers): every node's exposition passes `promtool check metrics`, the
# figures say what the network is doing (uplinks up, outboxes drained after a case, children
# heard recently, the case counted by item and state, HTTP requests by route pattern), a real
# Prometheus scrapes every node through ops/prometheus.yml and the targets file network.sh
# writes, and the console's files are served with their content types.
#   tests/integration/metrics.sh TONGBAN_BINARY SOURCE_DIR
set -euo pipefail
TB="$1"; SRC="$2"
for tool in promtool prometheus jq curl; do
  command -v "$tool" > /dev/null || { echo "metrics: $tool missing (bash ops/setup.sh installs it)" >&2; exit 1; }
done
source "$SRC/tests/integration/lib.sh"
NET_HEARTBEAT_MS=500
it_begin metrics
PROM_PID=""
it_on_cleanup() { [ -z "$PROM_PID" ] || { kill "$PROM_PID" 2>/dev/null; wait "$PROM_PID" 2>/dev/null; }; }
# value FILE 'name{labels}' → the sample's value (empty if absent); labels exactly as rendered.
value() { awk -v k="$2" '$1 == k { print $2; exit }' "$1"; }

CITY=440600000000 DISTRICT=440604000000 TOWN=440604001000 VILLAGE=440604001001
it_network 1 1 1
net_wait_catalogue "$VILLAGE" 90 || die "catalogue did not reach the village"

# One immediate case at the district (concluded on the spot), so its events travel up.
net_staff "$DISTRICT"
CLERK=$(net_login "$DISTRICT" clerk)
ID=11010519491231002X
hash=$(curl -s -X POST -H "Authorization: Bearer $CLERK" --data-binary "scan of id_card" \
  "$(net_url $DISTRICT)/api/materials?kind=id_card&holder=$ID" | jq -r .hash)
code=$(curl -s -o "$NET/case.json" -w '%{http_code}' -X POST -H "Authorization: Bearer $CLERK" \
  -H 'Content-Type: application/json' "$(net_url $DISTRICT)/api/cases" --data-binary \
  "{\"item_code\":\"SI-0001\",\"applicant_id\":\"$ID\",\"applicant_name\":\"张三\",\"contact\":\"1\",\"materials\":[{\"kind\":\"id_card\",\"hash\":\"$hash\"}]}")
[ "$code" = 201 ] && ok || fail "intake answered $code: $(cat "$NET/case.json")"
curl -s -o /dev/null "$(net_url $DISTRICT)/no/such/path"   # counted as route "unmatched", 4xx

# Outboxes drain once the case's events are acknowledged all the way up (bounded).
scrape() { curl -s --max-time 5 "$(net_url "$1")/metrics" > "$NET/$1.prom"; }
deadline=$(( $(date +%s) + 30 ))
while :; do
  drained=1
  for c in $CITY $DISTRICT $TOWN $VILLAGE; do
    scrape "$c" || drained=0
    [ "$(value "$NET/$c.prom" tongban_outbox_depth)" = 0 ] || drained=0
  done
  [ $drained = 1 ] && break
  [ "$(date +%s)" -lt "$deadline" ] || { fail "outboxes not drained within 30 s"; break; }
  sleep 0.5
done
[ $drained = 1 ] && ok

for c in $CITY $DISTRICT $TOWN $VILLAGE; do
  f="$NET/$c.prom"
  if promtool check metrics < "$f" > "$NET/$c.promtool" 2>&1; then ok; else fail "promtool rejects $c's metrics: $(cat "$NET/$c.promtool")"; fi
  [ "$(curl -s -o /dev/null -w '%{content_type}' "$(net_url $c)/metrics")" = "text/plain; version=0.0.4; charset=utf-8" ] \
    && ok || fail "$c: /metrics content type"
  [ "$(value "$f" tongban_up)" = 1 ] && ok || fail "$c: tongban_up"
  [ "$(value "$f" tongban_bus_connected)" = 1 ] && ok || fail "$c: bus not connected"
  [ "$(value "$f" tongban_catalogue_version)" -ge 1 ] && ok || fail "$c: no catalogue version"
  grep -q "^tongban_node_info{division=\"$c\"," "$f" && ok || fail "$c: node_info does not name the division"
  if [ $c = $CITY ]; then
    [ "$(value "$f" 'tongban_uplink_state{state="none"}')" = 1 ] && ok || fail "city: uplink state should be none"
  else
    [ "$(value "$f" 'tongban_uplink_state{state="up"}')" = 1 ] && ok || fail "$c: uplink not up: $(grep '^tongban_uplink_state' "$f" | tr '\n' ' ')"
    [ "$(value "$f" 'tongban_uplink_state{state="down"}')" = 0 ] && ok || fail "$c: uplink also down"
  fi
done
# Children and how recently each was heard (heartbeats every 0.5 s here).
for pair in "$CITY:$DISTRICT" "$DISTRICT:$TOWN" "$TOWN:$VILLAGE"; do
  parent=${pair%%:*} child=${pair#*:}
  f="$NET/$parent.prom"
  [ "$(value "$f" tongban_children)" = 1 ] && ok || fail "$parent: children $(value "$f" tongban_children), expected 1"
  age=$(grep "^tongban_child_last_heard_seconds{child=\"$child\"," "$f" | awk '{print $2}')
  awk -v a="${age:-x}" 'BEGIN { exit !(a != "x" && a + 0 < 10) }' && ok || fail "$parent: child $child last heard '${age}' s ago"
done
[ "$(value "$NET/$VILLAGE.prom" tongban_children)" = 0 ] && ok || fail "village has children"

# This node's own cases by item and state; the others have none.
f="$NET/$DISTRICT.prom"
[ "$(value "$f" "tongban_cases{division=\"$DISTRICT\",item=\"SI-0001\",state=\"concluded\"}")" = 1 ] && ok \
  || fail "district's concluded SI-0001 case not counted: $(grep '^tongban_cases' "$f" | tr '\n' ' ')"
[ "$(value "$f" "tongban_cases{division=\"$DISTRICT\",item=\"SI-0001\",state=\"accepted\"}")" = 0 ] && ok || fail "zero states missing"
[ "$(value "$f" "tongban_cases_received_total{division=\"$DISTRICT\",item=\"SI-0001\"}")" = 1 ] && ok || fail "received_total"
! grep -q '^tongban_cases{' "$NET/$TOWN.prom" && ok || fail "the town counts cases it did not take in"

# HTTP requests by route pattern and status class, with a latency histogram.
[ "$(value "$f" 'tongban_http_requests_total{route="/api/cases",method="POST",code="2xx"}')" = 1 ] && ok \
  || fail "POST /api/cases not counted: $(grep '^tongban_http_requests_total' "$f" | tr '\n' ' ')"
[ "$(value "$f" 'tongban_http_requests_total{route="unmatched",method="GET",code="4xx"}')" = 1 ] && ok || fail "unmatched path"
[ "$(value "$f" 'tongban_http_request_duration_seconds_count{route="/api/cases",method="POST",code="2xx"}')" = 1 ] && ok \
  || fail "histogram count"
[ "$(value "$f" 'tongban_http_request_duration_seconds_bucket{route="/api/cases",method="POST",code="2xx",le="+Inf"}')" = 1 ] \
  && ok || fail "histogram +Inf bucket"
! grep -q 'no/such/path' "$f" && ok || fail "a raw path became a label"

# The console, embedded in the binary.
D=$(net_url $DISTRICT)
[ "$(curl -s -o /dev/null -w '%{http_code} %{redirect_url}' "$D/")" = "302 $D/console/" ] && ok || fail "/ does not redirect to /console/"
[ "$(curl -s -o /dev/null -w '%{http_code} %{content_type}' "$D/console/")" = "200 text/html; charset=utf-8" ] && ok || fail "/console/"
[ "$(curl -s -o /dev/null -w '%{http_code} %{content_type}' "$D/console/app.js")" = "200 text/javascript; charset=utf-8" ] && ok || fail "app.js"
[ "$(curl -s -o /dev/null -w '%{http_code} %{content_type}' "$D/console/style.css")" = "200 text/css; charset=utf-8" ] && ok || fail "style.css"
cmp -s <(curl -s "$D/console/app.js") "$SRC/node/http/console/app.js" && ok || fail "served app.js differs from the source"
! grep -Eq 'https?://' <(curl -s "$D/console/" "$D/console/style.css") && ok || fail "the console refers to another host"

# A real Prometheus with ops/prometheus.yml, laid out as in the repo (the config reads
# ../run/demo/prometheus-targets.json), scrapes every node.
mkdir -p "$NET/repo/ops" "$NET/repo/run/demo"
cp "$SRC/ops/prometheus.yml" "$NET/repo/ops/"
cp "$NET/prometheus-targets.json" "$NET/repo/run/demo/"
promtool check config "$NET/repo/ops/prometheus.yml" > "$NET/promtool-config.txt" 2>&1 && ok || fail "promtool check config: $(cat "$NET/promtool-config.txt")"
PROM_PORT=$(net_free_port)
prometheus --config.file="$NET/repo/ops/prometheus.yml" --storage.tsdb.path="$NET/prom" \
  --web.listen-address="127.0.0.1:$PROM_PORT" > "$NET/prometheus.log" 2>&1 &
PROM_PID=$!
deadline=$(( $(date +%s) + 40 ))
up=0
while [ "$(date +%s)" -lt "$deadline" ]; do
  up=$(curl -s --max-time 2 "http://127.0.0.1:$PROM_PORT/api/v1/query?query=sum(tongban_up)" | jq -r '.data.result[0].value[1] // 0' 2>/dev/null || echo 0)
  [ "$up" = 4 ] && break
  sleep 1
done
[ "$up" = 4 ] && ok || fail "Prometheus sees $up of 4 nodes up (log: $NET/prometheus.log)"

