#!/usr/bin/env bash
# Forwarded cases (上报件) end to end over real processes: one nats-server per level (leaf-linked
# village → town → district → city) and one tongban node per division of a city → district →
# town → 2 villages tree.
#   A. A birth approval (HW-0012) accepted at a village travels up to the district, is decided
#      there by district staff and shows concluded back at the village with the district's steps.
#   B. A homestead application (NR-0062) accepted at the other village is decided at its town.
#   C. With the town's bus stopped (village ↔ town ↔ district severed at the town) a second birth
#      approval waits at the village; it arrives when the bus is back. Cut again, the district
#      decides it, the village keeps the previous state; restored, the village shows it concluded
#      with exactly the district's five steps, and the district holds it exactly once.
#   tests/integration/e2e_forward.sh TONGBAN_BINARY SOURCE_DIR
# KEEP=1 keeps the network's files; a failure always keeps them.
set -euo pipefail
TB="$1"
SRC="$2"
source "$SRC/tests/integration/lib.sh"
NET_HEARTBEAT_MS=500
it_begin e2e_forward

# get CODE NUMBER TOKEN -> the case as that hall's GET /api/cases/{number} returns it (HTTP code
# in HTTP, body in BODY).
get_case() {
  HTTP=$(curl -s -o "$NET/get.json" -w '%{http_code}' -H "Authorization: Bearer $3" "$(net_url "$1")/api/cases/$2" || echo 000)
  BODY=$(cat "$NET/get.json" 2>/dev/null || true)
}
# upload CODE TOKEN HOLDER KIND TEXT -> the material's hash
upload() {
  curl -s -X POST -H "Authorization: Bearer $2" -H 'Content-Type: image/jpeg' --data-binary "$5" \
    "$(net_url "$1")/api/materials?kind=$4&holder=$3" | jq -r .hash
}
# submit CODE TOKEN ITEM HOLDER NAME LABEL KIND... -> sets NUMBER (uploads every material first)
submit() {
  local code="$1" token="$2" item="$3" holder="$4" name="$5" label="$6" kind hash mats=""; shift 6
  for kind in "$@"; do
    hash=$(upload "$code" "$token" "$holder" "$kind" "scan of $kind for $label")
    [[ "$hash" =~ ^[0-9a-f]{64}$ ]] || die "upload of $kind at $code: no hash ($hash)"
    mats+="{\"kind\":\"$kind\",\"hash\":\"$hash\"},"
  done
  local http
  http=$(curl -s -o "$NET/submit.json" -w '%{http_code}' -X POST -H "Authorization: Bearer $token" \
    -H 'Content-Type: application/json' "$(net_url "$code")/api/cases" --data-binary \
    "{\"item_code\":\"$item\",\"applicant_id\":\"$holder\",\"applicant_name\":\"$name\",\"contact\":\"13800000000\",\"materials\":[${mats%,}]}")
  [ "$http" = 201 ] || die "$item at $code: HTTP $http, expected 201: $(cat "$NET/submit.json")"
  NUMBER=$(jq -r .number "$NET/submit.json")
  [ "$(jq -r '.forwarded // false' "$NET/submit.json")" = true ] && ok "$label: $item accepted at $code as $NUMBER, forwarded" \
    || fail "$label: $item accepted at $code but not marked forwarded: $(cat "$NET/submit.json")"
}
# step CODE NUMBER STEP TOKEN -> 200 expected
step() {
  local http
  http=$(curl -s -o "$NET/step.json" -w '%{http_code}' -X POST -H "Authorization: Bearer $4" \
    -H 'Content-Type: application/json' "$(net_url "$1")/api/cases/$2/steps" --data-binary "{\"step\":\"$3\"}")
  [ "$http" = 200 ] || die "$3 of $2 at $1: HTTP $http, expected 200: $(cat "$NET/step.json")"
}
decide() {  # decide CODE NUMBER (undertake, review, approve, conclude by four people)
  local code="$1" number="$2"
  step "$code" "$number" undertake "$(tok "$code" undertaker)"
  step "$code" "$number" review "$(tok "$code" reviewer)"
  step "$code" "$number" approve "$(tok "$code" approver)"
  step "$code" "$number" conclude "$(tok "$code" clerk)"
  [ "$(jq -r .state "$NET/step.json")" = concluded ] && ok "$number decided and concluded at $code" \
    || die "$number not concluded at $code: $(cat "$NET/step.json")"
}

# Checks for wait_for / holds_for (they set SEEN).
held_at() {  # held_at DECIDER NUMBER ORIGIN: the decider holds the case for the origin
  get_case "$1" "$2" "$(tok "$1" clerk)"
  SEEN="HTTP $HTTP $(jq -c '{state, held_for}' <<< "$BODY" 2>/dev/null || echo "$BODY")"
  [ "$HTTP" = 200 ] && [ "$(jq -r .held_for <<< "$BODY")" = "$3" ]
}
not_held_at() {  # not_held_at DECIDER NUMBER
  get_case "$1" "$2" "$(tok "$1" clerk)"
  SEEN="HTTP $HTTP $BODY"
  [ "$HTTP" = 404 ]
}
origin_shows() {  # origin_shows ORIGIN NUMBER STATE DECIDER_STEPS: state and number of decider steps
  get_case "$1" "$2" "$(tok "$1" clerk)"
  SEEN="HTTP $HTTP $(jq -c '{state, location, n: (.decider_steps | length)}' <<< "$BODY" 2>/dev/null || echo "$BODY")"
  [ "$HTTP" = 200 ] && [ "$(jq -r .state <<< "$BODY")" = "$3" ] && [ "$(jq -r '.decider_steps | length' <<< "$BODY")" = "$4" ]
}

# fetch_file CODE HASH HOLDER TOKEN: GET /api/materials/{hash}/file at a hall -> HTTP, SOURCE
# (X-Tongban-Source), the file in $NET/file.bin, the body of an error in BODY.
fetch_file() {
  HTTP=$(curl -s --max-time 60 -D "$NET/file.hdr" -o "$NET/file.bin" -w '%{http_code}' -H "Authorization: Bearer $4" \
    "$(net_url "$1")/api/materials/$2/file?holder=$3" || echo 000)
  SOURCE=$(grep -i '^x-tongban-source:' "$NET/file.hdr" 2>/dev/null | tr -d '\r' | awk '{print $2}' || true)
  BODY=$(head -c 300 "$NET/file.bin" 2>/dev/null || true)
}

declare -A TOKENS
tok() { echo "${TOKENS[$1.$2]}"; }
login_all() {
  local code="$1" role
  net_staff "$code"
  for role in clerk undertaker reviewer approver; do TOKENS[$code.$role]=$(net_login "$code" "$role"); done
}

# --- the network -----------------------------------------------------------------------------
CITY=440600000000 DISTRICT=440604000000 TOWN=440604001000 VILLAGE1=440604001001 VILLAGE2=440604001002
it_network 1 1 2 90
ok "tree of 5 nodes joined"
for code in $VILLAGE1 $VILLAGE2; do net_wait_catalogue "$code" 90 || die "no catalogue at $code within 90 s"; done
for code in $DISTRICT $TOWN $VILLAGE1 $VILLAGE2; do login_all "$code"; done
HW_MATERIALS=(id_card household_register marriage_certificate birth_certificate)
NR_MATERIALS=(id_card household_register homestead_application village_collective_opinion)

# --- A and B: village → district, village → town --------------------------------------------
submit $VILLAGE1 "$(tok $VILLAGE1 clerk)" HW-0012 440604198803152048 陈美玲 "A (birth approval)" "${HW_MATERIALS[@]}"
CASE_A=$NUMBER
submit $VILLAGE2 "$(tok $VILLAGE2 clerk)" NR-0062 440604199001010579 李四 "B (homestead)" "${NR_MATERIALS[@]}"
CASE_B=$NUMBER

# The origin may not move a forwarded case.
http=$(curl -s -o "$NET/out.json" -w '%{http_code}' -X POST -H "Authorization: Bearer $(tok $VILLAGE1 undertaker)" \
  -H 'Content-Type: application/json' "$(net_url $VILLAGE1)/api/cases/$CASE_A/steps" --data-binary '{"step":"undertake"}')
[ "$http" = 409 ] && ok "a step at the origin on a forwarded case is refused (409)" \
  || fail "undertake at the origin: HTTP $http, expected 409: $(cat "$NET/out.json")"

wait_for 90 "A is taken in at the district, held for $VILLAGE1" held_at $DISTRICT "$CASE_A" $VILLAGE1
wait_for 90 "B is taken in at the town, held for $VILLAGE2" held_at $TOWN "$CASE_B" $VILLAGE2
# The district's staff open A's scans: fetched from the village on demand and checked, then kept.
get_case $DISTRICT "$CASE_A" "$(tok $DISTRICT undertaker)"
HASH_A=$(jq -r '.materials[0]' <<< "$BODY")
fetch_file $DISTRICT "$HASH_A" 440604198803152048 "$(tok $DISTRICT undertaker)"
if [ "$HTTP" = 200 ] && [ "$SOURCE" = fetched ] && [ "$(sha256sum < "$NET/file.bin" | cut -d' ' -f1)" = "$HASH_A" ]; then
  ok "the district fetched A's scan ${HASH_A:0:12}… from the village; its SHA-256 matches"
else
  fail "the district's fetch of A's scan: HTTP $HTTP, source '$SOURCE': $BODY"
fi
fetch_file $DISTRICT "$HASH_A" 440604198803152048 "$(tok $DISTRICT undertaker)"
[ "$HTTP" = 200 ] && [ "$SOURCE" = cached ] && ok "asked again, the district serves A's scan from its cache" \
  || fail "the district's second fetch of A's scan: HTTP $HTTP, source '$SOURCE': $BODY"
get_case $TOWN "$CASE_A" "$(tok $TOWN clerk)"
[ "$HTTP" = 404 ] && ok "the town only passed A on (it does not hold it)" || fail "the town answers $HTTP for A: $BODY"
decide $DISTRICT "$CASE_A"
decide $TOWN "$CASE_B"
wait_for 90 "A shows concluded at $VILLAGE1 with the district's 5 steps" origin_shows $VILLAGE1 "$CASE_A" concluded 5
get_case $VILLAGE1 "$CASE_A" "$(tok $VILLAGE1 clerk)"
jq -e --arg d $DISTRICT '.forwarded == true and .decider == $d and (.location | startswith("decided at")) and (.location | contains($d))' \
  <<< "$BODY" > /dev/null && ok "A's location at the village: $(jq -r .location <<< "$BODY")" \
  || fail "A at the village: $(jq -c '{forwarded, decider, location}' <<< "$BODY")"
[ "$(jq -r '[.decider_steps[].step] | join(",")' <<< "$BODY")" = "receive,undertake,review,approve,conclude" ] \
  && ok "A's decider steps at the village: receive, undertake, review, approve, conclude" \
  || fail "A's decider steps at the village: $(jq -c '[.decider_steps[].step]' <<< "$BODY")"
jq -e '[.passages[].action] | index("sent up") != null and index("delivered") != null' <<< "$BODY" > /dev/null \
  && ok "the village's passages of A: $(jq -r '[.passages[].action] | unique | join(", ")' <<< "$BODY")" \
  || fail "the village's passages of A: $(jq -c .passages <<< "$BODY")"
wait_for 90 "B shows concluded at $VILLAGE2 with the town's 5 steps" origin_shows $VILLAGE2 "$CASE_B" concluded 5
get_case $VILLAGE2 "$CASE_B" "$(tok $VILLAGE2 clerk)"
[ "$(jq -r .decider <<< "$BODY")" = $TOWN ] && ok "B was decided at the town: $(jq -r .location <<< "$BODY")" \
  || fail "B's decider: $(jq -c '{decider, location}' <<< "$BODY")"
echo "--- A as the village clerk sees it (tongban case show) ---"
"$TB" case show --url "$(net_url $VILLAGE1)" --number "$CASE_A" --token "$(tok $VILLAGE1 clerk)" || fail "tongban case show A"

# --- C: the town's link cut while the case travels ------------------------------------------
net_bus_stop town
submit $VILLAGE1 "$(tok $VILLAGE1 clerk)" HW-0012 440604199207073620 黄丽华 "C (birth approval, town cut)" "${HW_MATERIALS[@]}"
CASE_C=$NUMBER
get_case $VILLAGE1 "$CASE_C" "$(tok $VILLAGE1 clerk)"
if jq -e '.waiting_for_uplink == true and (.location | startswith("waiting for the uplink"))' <<< "$BODY" > /dev/null; then
  ok "C at the village while cut: $(jq -r .location <<< "$BODY")"
else
  fail "C at the village while cut: expected waiting for the uplink, got $(jq -c '{waiting_for_uplink, location}' <<< "$BODY")"
fi
holds_for 8 "the district does not hold C while the town is cut" not_held_at $DISTRICT "$CASE_C"
net_bus_start town || die "the town's bus did not start again"
wait_for 120 "C arrives at the district once the town's bus is back" held_at $DISTRICT "$CASE_C" $VILLAGE1
wait_for 90 "the district's receipt of C reaches the village" origin_shows $VILLAGE1 "$CASE_C" accepted 1
get_case $VILLAGE1 "$CASE_C" "$(tok $VILLAGE1 clerk)"
BEFORE=$(jq -r .location <<< "$BODY")
[[ "$BEFORE" == "at "*"($DISTRICT): accepted since"* ]] && ok "C at the village: $BEFORE" \
  || fail "C's location at the village after arrival: $BEFORE"

net_bus_stop town
decide $DISTRICT "$CASE_C"
# A scan of C cannot be fetched from the village now: a clear error, not a hang.
get_case $DISTRICT "$CASE_C" "$(tok $DISTRICT undertaker)"
HASH_C=$(jq -r '.materials[0]' <<< "$BODY")
t0=$(date +%s)
fetch_file $DISTRICT "$HASH_C" 440604199207073620 "$(tok $DISTRICT undertaker)"
if [[ "$HTTP" =~ ^50[34]$ ]] && grep -q $VILLAGE1 <<< "$BODY"; then
  ok "fetching C's scan at the district while the town is cut: HTTP $HTTP in $(( $(date +%s) - t0 )) s: $(jq -r .error.message <<< "$BODY" 2>/dev/null || echo "$BODY")"
else
  fail "fetching C's scan at the district while the town is cut: HTTP $HTTP, expected 503/504 naming $VILLAGE1: $BODY"
fi
holds_for 6 "the village keeps C's previous state while the town is cut" origin_shows $VILLAGE1 "$CASE_C" accepted 1
get_case $VILLAGE1 "$CASE_C" "$(tok $VILLAGE1 clerk)"
[ "$(jq -r .location <<< "$BODY")" = "$BEFORE" ] && ok "C's location at the village is unchanged" \
  || fail "C's location changed while cut: $(jq -r .location <<< "$BODY")"
net_bus_start town || die "the town's bus did not start again"
wait_for 120 "C shows concluded at the village with 5 decider steps once the town is back" origin_shows $VILLAGE1 "$CASE_C" concluded 5

fetch_file $DISTRICT "$HASH_C" 440604199207073620 "$(tok $DISTRICT undertaker)"
[ "$HTTP" = 200 ] && [ "$(sha256sum < "$NET/file.bin" | cut -d' ' -f1)" = "$HASH_C" ] \
  && ok "with the town back, the district fetches C's scan (source $SOURCE)" \
  || fail "the district's fetch of C's scan after the cut: HTTP $HTTP, source '$SOURCE': $BODY"

# --- exactly once ----------------------------------------------------------------------------
get_case $VILLAGE1 "$CASE_C" "$(tok $VILLAGE1 clerk)"
ORIGIN_VIEW="$BODY"
get_case $DISTRICT "$CASE_C" "$(tok $DISTRICT clerk)"
DECIDER_VIEW="$BODY"
[ "$(jq -r .state <<< "$DECIDER_VIEW")" = concluded ] && ok "the district's C is concluded" || fail "district's C: $(jq -r .state <<< "$DECIDER_VIEW")"
steps_at_origin=$(jq -c '[.decider_steps[] | {index, step, at_ms}]' <<< "$ORIGIN_VIEW")
steps_at_decider=$(jq -c '[.steps[] | {index, step, at_ms}]' <<< "$DECIDER_VIEW")
[ "$steps_at_origin" = "$steps_at_decider" ] && ok "the village's copy of C's steps equals the district's ($(jq length <<< "$steps_at_decider") steps)" \
  || fail "C's steps differ: village $steps_at_origin, district $steps_at_decider"
curl -s -H "Authorization: Bearer $(tok $DISTRICT clerk)" "$(net_url $DISTRICT)/api/cases?limit=1000" > "$NET/list.json"
n=$(jq --arg n "$CASE_C" '[.cases[] | select(.number == $n)] | length' "$NET/list.json")
[ "$n" = 1 ] && ok "the district lists C exactly once" || fail "the district lists C $n times: $(head -c 400 "$NET/list.json")"
n=$(sqlite3 "$NET/data/$DISTRICT/node.db" "SELECT COUNT(*) FROM cases WHERE number = '$CASE_C'")
[ "$n" = 1 ] && ok "the district's database has one row for C" || fail "the district's database has $n rows for C"
n=$(jq '[.passages[] | select(.action == "taken in")] | length' <<< "$DECIDER_VIEW")
[ "$n" = 1 ] && ok "the district took C in once" || fail "the district took C in $n times: $(jq -c .passages <<< "$DECIDER_VIEW")"
n=$(jq '[.passages[] | select(.action == "delivered")] | length' <<< "$ORIGIN_VIEW")
[ "$n" = 5 ] && ok "the village applied each of C's 5 steps once" || fail "the village delivered $n progress messages of C: $(jq -c .passages <<< "$ORIGIN_VIEW")"
# The town does not hold C (GET answers 404 there); its audit trail is in its database.
passed=$(sqlite3 "$NET/data/$TOWN/node.db" "SELECT action || ':' || COUNT(*) FROM case_passages WHERE number = '$CASE_C' GROUP BY action ORDER BY action" | paste -sd' ')
[ "$passed" = "passed down:5 passed up:1" ] && ok "the town passed C up once and its 5 steps down once each" \
  || fail "the town's passages of C: '$passed', expected 'passed down:5 passed up:1'"
echo "--- C as the village clerk sees it (tongban case show) ---"
"$TB" case show --url "$(net_url $VILLAGE1)" --number "$CASE_C" --token "$(tok $VILLAGE1 clerk)" || fail "tongban case show C"
