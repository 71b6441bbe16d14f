#!/usr/bin/env bash
# THE MAIN COMMAND: sets up a fresh Debian machine, builds Tongban, and brings up a local
# four-level network on loopback: one nats-server per level (leaf-linked), keys for every node
# from a key ceremony, one node process per division. It prints the tree as the city sees it,
# then keeps the network running until Ctrl-C (or exits at once with --once).
#
#   ops/demo.sh [--districts N] [--towns N] [--villages N] [--once]
set -euo pipefail
cd "$(dirname "$0")/.."
districts=2 towns=1 villages=2 once=0
while [ $# -gt 0 ]; do
  case "$1" in
    --districts) districts="$2"; shift 2 ;;
    --towns) towns="$2"; shift 2 ;;
    --villages) villages="$2"; shift 2 ;;
    --once) once=1; shift ;;
    -h|--help) sed -n '2,9p' "$0"; exit 0 ;;
    *) echo "unknown option $1 (see --help)" >&2; exit 2 ;;
  esac
done

bash ops/setup.sh
mkdir -p build
bash ops/build.sh release > build/demo-build.log 2>&1 || { cat build/demo-build.log; exit 1; }

TB="$PWD/build/release/tongban"
NET="$PWD/run/demo"
NET_DATA="$PWD/data"
rm -rf "$NET"
source ops/lib/network.sh
trap 'net_stop; echo "demo stopped; files kept in $NET"' EXIT
trap 'exit 130' INT TERM

net_plan data/foshan.json "$districts" "$towns" "$villages"
net_keys
net_start_buses
net_start_nodes
net_wait_joined 60
echo
echo "The network as the city (佛山市) sees it, every reply signed and verified:"
net_tree
echo

# --- A morning at the halls: staff log in, citizens apply ---------------------------------
DISTRICT=$(awk '$2=="district"{print $1; exit}' "$NET/divisions.txt")
TOWN=$(awk '$2=="town"{print $1; exit}' "$NET/divisions.txt")
net_wait_catalogue "$TOWN" 90
for code in $(cut -d' ' -f1 "$NET/divisions.txt"); do net_staff "$code"; done
T_CLERK=$(net_login "$TOWN" clerk)
D_CLERK=$(net_login "$DISTRICT" clerk)
D_UNDER=$(net_login "$DISTRICT" undertaker)
D_REVIEW=$(net_login "$DISTRICT" reviewer)
D_APPROVE=$(net_login "$DISTRICT" approver)
scans="$NET/scans"; mkdir -p "$scans"
for k in id_card business_license sign_design site_photo lease_contract household_register \
         marriage_certificate birth_certificate homestead_application village_collective_opinion \
         articles_of_association address_proof; do echo "scan of $k" > "$scans/$k.jpg"; done
ZHANG=11010519491231002X   # 张三, resident ID (GB 11643 sample)
SHOP=91350100M000100Y43    # 某某商店, unified social credit code (GB 32100 sample)

echo "1. 张三 prints his social-insurance certificate at the town hall (即办件, decided on the spot):"
"$TB" case submit --url "$(net_url "$TOWN")" --token "$T_CLERK" --item SI-0001 --applicant-id "$ZHANG" \
  --name 张三 --contact 13800000000 --material id_card="$scans/id_card.jpg"
echo
echo "2. A shop applies for a shop-sign permit at the district (承诺件, 5 working days):"
out=$("$TB" case submit --url "$(net_url "$DISTRICT")" --token "$D_CLERK" --item CG-0101 --applicant-id "$SHOP" \
  --name 某某商店 --contact 075712345678 --json \
  --material business_license="$scans/business_license.jpg" --material sign_design="$scans/sign_design.jpg" \
  --material site_photo="$scans/site_photo.jpg" --material lease_contract="$scans/lease_contract.jpg")
NUM=$(jq -r .number <<< "$out")
"$TB" case step --url "$(net_url "$DISTRICT")" --token "$D_UNDER" --number "$NUM" --step undertake > /dev/null
"$TB" case step --url "$(net_url "$DISTRICT")" --token "$D_REVIEW" --number "$NUM" --step review > /dev/null
"$TB" case step --url "$(net_url "$DISTRICT")" --token "$D_APPROVE" --number "$NUM" --step approve > /dev/null
"$TB" case step --url "$(net_url "$DISTRICT")" --token "$D_CLERK" --number "$NUM" --step conclude
echo
echo "3. Someone applies for road occupation at the town without the plans (不予受理, one notice):"
"$TB" case submit --url "$(net_url "$TOWN")" --token "$T_CLERK" --item CG-0131 --applicant-id 440604199001010579 \
  --name 李四 --contact 13900000000 || true
echo
echo "4. What a citizen sees with the receipt number (public, no log-in):"
"$TB" case show --url "$(net_url "$DISTRICT")" --number "$NUM"
echo
echo "5. Open cases and their lights at the district:"
"$TB" case submit --url "$(net_url "$DISTRICT")" --token "$D_CLERK" --item CG-0101 --applicant-id "$SHOP" \
  --name 某某商店 --contact 075712345678 --note "second sign" > /dev/null
"$TB" case list --url "$(net_url "$DISTRICT")" --token "$D_CLERK"
echo

# --- Applied at a village, decided above (上报件): the network does the travelling ----------
VILLAGE=$(awk -v t="$TOWN" '$2=="village" && $3==t {print $1}' "$NET/divisions.txt" | sed -n 1p)
VILLAGE_B=$(awk -v t="$TOWN" '$2=="village" && $3==t {print $1}' "$NET/divisions.txt" | sed -n 2p)
VILLAGE_B=${VILLAGE_B:-$VILLAGE}
name_of() { awk -v c="$1" '$1==c {print $4}' "$NET/divisions.txt"; }
V_CLERK=$(net_login "$VILLAGE" clerk)
VB_CLERK=$(net_login "$VILLAGE_B" clerk)
T_UNDER=$(net_login "$TOWN" undertaker)
T_REVIEW=$(net_login "$TOWN" reviewer)
T_APPROVE=$(net_login "$TOWN" approver)
# wait_case CODE TOKEN NUMBER JQ_TEST SECONDS WHAT: until the hall's view of the case passes the
# test (bounded; the demo stops and says what did not happen).
wait_case() {
  local deadline=$(( $(date +%s) + $5 ))
  until curl -s -H "Authorization: Bearer $2" "$(net_url "$1")/api/cases/$3" | jq -e "$4" > /dev/null 2>&1; do
    [ "$(date +%s)" -lt "$deadline" ] || { echo "demo: $6 did not happen within $5 s (logs: $NET/logs)" >&2; exit 1; }
    sleep 0.5
  done
}
where_is() { curl -s -H "Authorization: Bearer $2" "$(net_url "$1")/api/cases/$3" | jq -r .location; }
decide_at() {  # decide_at CODE NUMBER UNDERTAKER REVIEWER APPROVER CLERK
  "$TB" case step --url "$(net_url "$1")" --token "$3" --number "$2" --step undertake > /dev/null
  "$TB" case step --url "$(net_url "$1")" --token "$4" --number "$2" --step review > /dev/null
  "$TB" case step --url "$(net_url "$1")" --token "$5" --number "$2" --step approve > /dev/null
  "$TB" case step --url "$(net_url "$1")" --token "$6" --number "$2" --step conclude > /dev/null
}

echo "6. 李四 applies for a homestead at $(name_of "$VILLAGE_B") (village): the village accepts it, its town"
echo "   $(name_of "$TOWN") decides (宅基地审批, 上报件):"
out=$("$TB" case submit --url "$(net_url "$VILLAGE_B")" --token "$VB_CLERK" --item NR-0062 --applicant-id 440604199001010579 \
  --name 李四 --contact 13900000000 --json --material id_card="$scans/id_card.jpg" \
  --material household_register="$scans/household_register.jpg" --material homestead_application="$scans/homestead_application.jpg" \
  --material village_collective_opinion="$scans/village_collective_opinion.jpg")
HNUM=$(jq -r .number <<< "$out")
wait_case "$TOWN" "$T_CLERK" "$HNUM" '.held_for != null' 60 "the homestead application reaching the town"
decide_at "$TOWN" "$HNUM" "$T_UNDER" "$T_REVIEW" "$T_APPROVE" "$T_CLERK"
wait_case "$VILLAGE_B" "$VB_CLERK" "$HNUM" '.state == "concluded"' 60 "the town's decision reaching the village"
echo "   what the family sees at the village with the receipt number (public):"
"$TB" case show --url "$(net_url "$VILLAGE_B")" --number "$HNUM" | sed 's/^/   /'
echo
echo "7. 陈美玲 applies for approval of an additional birth at $(name_of "$VILLAGE") (village); the district"
echo "   $(name_of "$DISTRICT") decides (再生育审批, 上报件). This morning the town's link is down (a drill: its"
echo "   nats-server is stopped), so the case waits at the village until the link is back:"
net_bus_stop town 2> /dev/null
out=$("$TB" case submit --url "$(net_url "$VILLAGE")" --token "$V_CLERK" --item HW-0012 --applicant-id 440604198803152048 \
  --name 陈美玲 --contact 13700000000 --json --material id_card="$scans/id_card.jpg" \
  --material household_register="$scans/household_register.jpg" --material marriage_certificate="$scans/marriage_certificate.jpg" \
  --material birth_certificate="$scans/birth_certificate.jpg")
BNUM=$(jq -r .number <<< "$out")
echo "   accepted as $BNUM; where it is, as the village clerk reads it out:"
echo "     $(where_is "$VILLAGE" "$V_CLERK" "$BNUM")"
net_bus_start town 2> /dev/null || { echo "demo: the town's nats-server did not start again (see $NET/bus/town.log)" >&2; exit 1; }
echo "   (the town's nats-server is started again; its links re-form by themselves)"
wait_case "$VILLAGE" "$V_CLERK" "$BNUM" '(.decider_steps | length) >= 1' 60 "the birth approval reaching the district"
echo "     $(where_is "$VILLAGE" "$V_CLERK" "$BNUM")"
decide_at "$DISTRICT" "$BNUM" "$D_UNDER" "$D_REVIEW" "$D_APPROVE" "$D_CLERK"
wait_case "$VILLAGE" "$V_CLERK" "$BNUM" '.state == "concluded"' 60 "the district's decision reaching the village"
echo "     $(where_is "$VILLAGE" "$V_CLERK" "$BNUM")"
echo "   the case at the village (clerk's view: the district's steps and this hall's audit trail):"
"$TB" case show --url "$(net_url "$VILLAGE")" --number "$BNUM" --token "$V_CLERK" | sed 's/^/   /'
echo

OTHER_DISTRICT=$(awk '$2=="district"{print $1}' "$NET/divisions.txt" | sed -n 2p)
if [ -n "$OTHER_DISTRICT" ]; then
  NANHAI_SHOP=92440605MA4W3K5R11   # 某某五金店, a shop registered in the other district (GB 32100)
  echo "8. A clerk at $(name_of "$VILLAGE") asks what a shop of $(name_of "$OTHER_DISTRICT") holds; its business licence was"
  echo "   scanned at $(name_of "$OTHER_DISTRICT")'s hall, so only the city can answer (查询, signed by who answered):"
  O_CLERK=$(net_login "$OTHER_DISTRICT" clerk)
  curl -s -o /dev/null -X POST -H "Authorization: Bearer $O_CLERK" -H 'Content-Type: image/jpeg' \
    --data-binary @"$scans/business_license.jpg" \
    "$(net_url "$OTHER_DISTRICT")/api/materials?kind=business_license&holder=$NANHAI_SHOP"
  # The record goes up to the city with the district's outbox: wait (bounded) until the city has it.
  C_CLERK=$(net_login "$(net_root_code)" clerk)
  deadline=$(( $(date +%s) + 60 ))
  until curl -s -H "Authorization: Bearer $C_CLERK" "$(net_url "$(net_root_code)")/api/lookup?holder=$NANHAI_SHOP" \
      | jq -e '.outcome == "found"' > /dev/null 2>&1; do
    [ "$(date +%s)" -lt "$deadline" ] || { echo "demo: the licence's record did not reach the city within 60 s" >&2; exit 1; }
    sleep 0.5
  done
  "$TB" lookup --url "$(net_url "$VILLAGE")" --at "$VILLAGE" --holder "$NANHAI_SHOP" --token "$V_CLERK" | sed 's/^/   /' \
    || echo "   (the lookup did not get an answer: see $NET/logs)"
  echo
fi

# --- A business licence: issued at one district, checked in the other, revoked -------------
if [ -n "$OTHER_DISTRICT" ]; then
  OTHER_VILLAGE=$(awk -v d="${OTHER_DISTRICT:0:6}" '$2=="village" && substr($1,1,6)==d {print $1; exit}' "$NET/divisions.txt")
  OV=$(net_url "$OTHER_VILLAGE")
  echo "9. 某某商店 registers as a company at $(name_of "$DISTRICT") (企业设立登记 SC-0001, decided at district level);"
  echo "   concluding the case issues its business licence (营业执照), signed by the district's key:"
  out=$("$TB" case submit --url "$(net_url "$DISTRICT")" --token "$D_CLERK" --item SC-0001 --applicant-id "$SHOP" \
    --name 某某商店 --contact 075712345678 --json --fact address=禅城区祖庙路1号 --fact legal_representative=张三 \
    --material id_card="$scans/id_card.jpg" --material articles_of_association="$scans/articles_of_association.jpg" \
    --material address_proof="$scans/address_proof.jpg")
  SNUM=$(jq -r .number <<< "$out")
  decide_at "$DISTRICT" "$SNUM" "$D_UNDER" "$D_REVIEW" "$D_APPROVE" "$D_CLERK"
  LIC=$(curl -s -H "Authorization: Bearer $D_CLERK" "$(net_url "$DISTRICT")/api/cases/$SNUM" | jq -r .credential)
  "$TB" credential show --url "$(net_url "$DISTRICT")" --token "$D_CLERK" --number "$LIC" | grep -v '^text' | sed 's/^/   /'
  LIC_TEXT=$("$TB" credential show --url "$(net_url "$DISTRICT")" --token "$D_CLERK" --number "$LIC" --text-only)
  echo "   the citizen-held text (print it or put it in a QR code): ${LIC_TEXT:0:60}… (${#LIC_TEXT} characters)"
  echo "   At $(name_of "$OTHER_VILLAGE") ($OTHER_VILLAGE), a village of $(name_of "$OTHER_DISTRICT"), the owner shows the licence;"
  echo "   the station checks it with its own data, asking nobody (tongban verify --url):"
  "$TB" verify --url "$OV" --text "$LIC_TEXT" | sed 's/^/     /' || true
  echo "   The same check with no network at all, from the city's root certificate alone (tongban verify --root):"
  "$TB" verify --root "$NET/root.cert" --catalogue data/catalog.json --text "$LIC_TEXT" | sed -n '1p' | sed 's/^/     /' || true
  echo "   $(name_of "$DISTRICT") revokes the licence (an approver; revoked is final):"
  "$TB" credential revoke --url "$(net_url "$DISTRICT")" --token "$D_APPROVE" --number "$LIC" \
    --reason "营业执照吊销 (licence withdrawn: false registration)" | sed 's/^/     /'
  # The status record goes up to the city with the outbox and down every branch with the feed.
  t0=$(date +%s%3N); deadline=$(( $(date +%s) + 60 ))
  until [ "$(curl -s -X POST -H 'Content-Type: text/plain' --data-binary "$LIC_TEXT" "$OV/api/credentials/verify" | jq -r .verdict)" = revoked ]; do
    [ "$(date +%s)" -lt "$deadline" ] || { echo "demo: the revocation did not reach $OTHER_VILLAGE within 60 s (logs: $NET/logs)" >&2; exit 1; }
    sleep 0.2
  done
  echo "   $(name_of "$OTHER_VILLAGE") reports it revoked $(( $(date +%s%3N) - t0 )) ms later (district → city → $(name_of "$OTHER_DISTRICT") → town → village):"
  "$TB" verify --url "$OV" --text "$LIC_TEXT" | grep -E '^(REVOKED|status)' | sed 's/^/     /' || true
  echo
fi

# --- More of the month's work, then ten days later ----------------------------------------
echo "10. More applications, a few concluded and evaluated, one complaint ..."
for i in 1 2 3; do
  for at in "$DISTRICT" "$TOWN"; do
    token=$([ "$at" = "$DISTRICT" ] && echo "$D_CLERK" || echo "$T_CLERK")
    "$TB" case submit --url "$(net_url "$at")" --token "$token" --item CG-0101 --applicant-id "$SHOP" \
      --name 某某商店 --contact 075712345678 --note "sign $i" --material business_license="$scans/business_license.jpg" \
      --material sign_design="$scans/sign_design.jpg" --material site_photo="$scans/site_photo.jpg" \
      --material lease_contract="$scans/lease_contract.jpg" > /dev/null
    "$TB" case submit --url "$(net_url "$at")" --token "$token" --item SI-0001 --applicant-id "$ZHANG" \
      --name 张三 --contact 13800000000 --material id_card="$scans/id_card.jpg" --json > "$NET/print-$at-$i.json"
  done
done
for f in "$NET"/print-*.json; do
  at=$(jq -r .number "$f" | cut -d- -f1)
  grade=$(case $(( RANDOM % 4 )) in 0) echo basically_satisfied ;; 1) echo unsatisfied ;; *) echo satisfied ;; esac)
  curl -s -o /dev/null -X POST -H 'Content-Type: application/json' "$(net_url "$at")/api/cases/$(jq -r .number "$f")/evaluation" \
    --data-binary "{\"grade\":\"$grade\",\"applicant_id\":\"$ZHANG\"}"
done
curl -s -o /dev/null -X POST -H 'Content-Type: application/json' "$(net_url "$DISTRICT")/api/complaints" \
  --data-binary '{"department":"城管 city management","text":"招牌审批窗口午休无人 (no one at the window at noon)"}'

# A rehearsal network may run ahead of the calendar: restart the nodes ten days later, so the
# open permits pass their five-working-day limit and the lights and figures show it.
echo "11. Ten days later (the nodes restart with a rehearsal clock 10 days ahead) ..."
export NET_CLOCK_OFFSET_DAYS=10
net_restart_nodes
net_wait_joined 60
SUP=$(net_login "$(net_root_code)" supervisor)
# Figures are kept per China Standard Time day (UTC+8): name the days the same way.
FROM=$(date -u -d "+8 hours" +%Y-%m-01)
TO=$(date -u -d "+8 hours +10 days" +%Y-%m-%d)
summary_url="$(net_url "$(net_root_code)")/api/supervision/summary?from=$FROM&to=$TO"
deadline=$(( $(date +%s) + 60 ))
until [ "$(curl -s -H "Authorization: Bearer $SUP" "$summary_url" | jq -r '.totals.red // 0')" -gt 0 ]; do
  [ "$(date +%s)" -lt "$deadline" ] || { echo "(the red lights did not reach the city within 60 s)"; break; }
  sleep 1
done
echo
echo "The city's supervision summary, $FROM .. $TO (figures rolled up from every hall):"
curl -s -H "Authorization: Bearer $SUP" "$summary_url" | jq -r '
  def pct: if . == null then "-" else ((. * 1000 | round) / 10 | tostring) + "%" end;
  "  accepted \(.totals.accepted)  refused \(.totals.refused)  concluded \(.totals.concluded)  overdue \(.totals.overdue)  yellow \(.totals.yellow)  red \(.totals.red)  complaints \(.totals.complaints)",
  "  on time \(.totals.on_time_rate | pct)  on site \(.totals.on_site_rate | pct)  satisfaction \(.totals.satisfaction_rate | pct)",
  "  by division:",
  (.children[] | "    \(.name) \(.division): accepted \(.totals.accepted), concluded \(.totals.concluded), open yellow \(.open_yellow), open red \(.open_red)")'
echo "  ranking ${TO:0:7}:"
curl -s -H "Authorization: Bearer $SUP" "$(net_url "$(net_root_code)")/api/supervision/scores?month=${TO:0:7}" | jq -r '
  .ranking[] | "    \(.score | . * 10 | round / 10)  \(.name) (\(.kind))  red \(.red)  complaints \(.complaints)"'
echo "  red cases now (warnings):"
curl -s -H "Authorization: Bearer $SUP" "$(net_url "$(net_root_code)")/api/supervision/warnings" | jq -r '
  .warnings[] | "    \(.light)  \(.case_number)  \(.item_code)"' | head -8
echo
echo "Dashboard: $(net_url "$(net_root_code)")/console/#/supervision  (log in as supervisor / tongban-demo-supervisor)"
echo "HTTP APIs: $(for c in $(cut -d' ' -f1 "$NET/divisions.txt"); do printf '%s=%s ' "$c" "$(net_url "$c")"; done)"
echo "Staff accounts everywhere: clerk, undertaker, reviewer, approver, supervisor (password tongban-demo-<role>)"
if [ "$once" -eq 1 ]; then exit 0; fi
echo "Running. Ask again with:"
echo "  $TB status --nats $(cat "$NET/bus-city.url") --division $(net_root_code) --root $NET/root.cert --tree --clock-offset-days 10"
echo "Ctrl-C stops every node and bus."
while true; do sleep 3600; done
