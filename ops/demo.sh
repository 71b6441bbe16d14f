#!/usr/bin/env bash
# THE MAIN COMMAND: sets up a fresh Debian machine, builds Tongban, and brings up a local
# four-level network on loopback: one nats-server per level (leaf-linked), keys for every node
# from a key ceremony, one node process per division. It prints the tree as the city sees it,
# then keeps the network running until Ctrl-C (or exits at once with --once).
#
#   ops/demo.sh [--districts N] [--towns N] [--villages N] [--once]
set -euo pipefail
cd "$(dirname "$0")/.."
districts=1 towns=1 villages=2 once=0
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
for k in id_card business_license sign_design site_photo lease_contract; do echo "scan of $k" > "$scans/$k.jpg"; done
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

# --- More of the month's work, then ten days later ----------------------------------------
echo "6. More applications, a few concluded and evaluated, one complaint ..."
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
echo "7. Ten days later (the nodes restart with a rehearsal clock 10 days ahead) ..."
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
