#!/usr/bin/env bash
# The window's HTTP API on real node processes (a city → district → town chain on real
# nats-servers): a full case at the district, then bad requests, each with the answer a clerk
# or a program can act on. Also checks that the city's catalogue arrived everywhere and that the
# case's events reached the city.
#   tests/integration/http_api.sh TONGBAN_BINARY SOURCE_DIR
set -euo pipefail
TB="$1"; SRC="$2"
source "$SRC/tests/integration/lib.sh"
NET_HEARTBEAT_MS=500
VILLAGE=440604001001
# Sessions expire after 3 s at the village only (the expiry check below); everywhere else they
# keep the default, so a slow machine never turns a check into "session expired".
declare "NET_SESSION_S_$VILLAGE=3"
it_begin http_api

it_network 1 1 1
net_wait_catalogue 440604001001 90 || die "catalogue did not reach the village"
DISTRICT=$(net_url 440604000000)
TOWN=$(net_url 440604001000)
net_staff 440604000000
net_staff 440604001000
CLERK=$(net_login 440604000000 clerk)
UNDER=$(net_login 440604000000 undertaker)
REVIEW=$(net_login 440604000000 reviewer)
APPROVE=$(net_login 440604000000 approver)
TOWN_CLERK=$(net_login 440604001000 clerk)
ID=11010519491231002X

upload() {  # upload KIND -> hash
  curl -s -X POST -H "Authorization: Bearer $CLERK" --data-binary "scan of $1" \
    "$DISTRICT/api/materials?kind=$1&holder=$ID" | jq -r .hash
}

# --- a full case at the district ---
M=$(for k in business_license sign_design site_photo lease_contract; do printf '{"kind":"%s","hash":"%s"},' "$k" "$(upload $k)"; done)
call POST "$DISTRICT" /api/cases "$CLERK" "{\"item_code\":\"CG-0101\",\"applicant_id\":\"$ID\",\"applicant_name\":\"张三\",\"contact\":\"13800000000\",\"materials\":[${M%,}]}"
expect 201 "" "intake of a complete shop-sign application"
NUM=$(jq -r .number <<< "$BODY_OUT")
[ "$(jq -r .state <<< "$BODY_OUT")" = accepted ] && ok || fail "new case not accepted: $BODY_OUT"

call POST "$DISTRICT" "/api/cases/$NUM/steps" "$CLERK" '{"step":"approve"}'
expect 403 PERMISSION_DENIED "a clerk trying to approve"
call POST "$DISTRICT" "/api/cases/$NUM/steps" "$APPROVE" '{"step":"approve"}'
expect 409 FAILED_PRECONDITION "approving an accepted case"
for pair in "undertake:$UNDER" "review:$REVIEW" "approve:$APPROVE" "conclude:$CLERK"; do
  call POST "$DISTRICT" "/api/cases/$NUM/steps" "${pair#*:}" "{\"step\":\"${pair%%:*}\",\"actor\":\"someone-else\"}"
  expect 200 "" "step ${pair%%:*}"
done
[ "$(jq -r .state <<< "$BODY_OUT")" = concluded ] && ok || fail "case not concluded: $BODY_OUT"
[ "$(jq -r '.steps[1].actor' <<< "$BODY_OUT")" = undertaker ] && ok || fail "responsible person not the logged-in user"

call GET "$DISTRICT" "/api/cases/$NUM/status" ""
expect 200 "" "public status without a token"
jq -e '.applicant_id | contains("*")' <<< "$BODY_OUT" > /dev/null && ok || fail "public status shows the whole ID"
jq -e '.steps[0] | has("actor") | not' <<< "$BODY_OUT" > /dev/null && ok || fail "public status names staff"

call POST "$DISTRICT" "/api/cases/$NUM/evaluation" "" "{\"grade\":\"satisfied\",\"applicant_id\":\"$ID\"}"
expect 200 "" "citizen evaluation"
call POST "$DISTRICT" "/api/cases/$NUM/evaluation" "" "{\"grade\":\"satisfied\",\"applicant_id\":\"$ID\"}"
expect 409 ALREADY_EXISTS "a second evaluation"

# --- bad requests ---
call POST "$DISTRICT" /api/cases "$CLERK" '{"item_code": "CG-0101", '
expect 400 INVALID_ARGUMENT "malformed JSON"
head -c $((17 * 1024 * 1024)) /dev/zero > "$NET/big.bin"
CODE=$(curl -s -o "$NET/out.json" -w '%{http_code}' -X POST -H "Authorization: Bearer $CLERK" \
  --data-binary @"$NET/big.bin" "$DISTRICT/api/materials?kind=id_card&holder=$ID"); BODY_OUT=$(cat "$NET/out.json")
expect 413 "" "oversize body"
call POST "$DISTRICT" /api/cases "$CLERK" "{\"item_code\":\"XX-9999\",\"applicant_id\":\"$ID\",\"applicant_name\":\"张三\",\"contact\":\"1\"}"
expect 404 NOT_FOUND "unknown item"
call POST "$TOWN" /api/cases "$TOWN_CLERK" "{\"item_code\":\"CG-0133\",\"applicant_id\":\"$ID\",\"applicant_name\":\"张三\",\"contact\":\"1\"}"
expect 409 FAILED_PRECONDITION "an item the town may not accept"
grep -q "district" <<< "$(jq -r .error.message <<< "$BODY_OUT")" && ok || fail "wrong-level refusal does not say where to apply"
call POST "$DISTRICT" /api/cases "$CLERK" "{\"item_code\":\"CG-0131\",\"applicant_id\":\"440604199001010579\",\"applicant_name\":\"李四\",\"contact\":\"1\"}"
expect 422 "" "missing materials"
[ "$(jq -r .state <<< "$BODY_OUT")" = refused ] && ok || fail "missing materials not refused"
[ "$(grep -c "missing" <<< "$(jq -r .refusal_notice <<< "$BODY_OUT")")" -eq 3 ] && ok || fail "notice does not list all 3 materials"
call POST "$DISTRICT" /api/cases "$CLERK" "{\"item_code\":\"SI-0001\",\"applicant_id\":\"110105194912310021\",\"applicant_name\":\"张三\",\"contact\":\"1\"}"
expect 400 INVALID_ARGUMENT "bad ID check digit"
call GET "$DISTRICT" /api/cases ""
expect 401 UNAUTHORIZED "no token"
call GET "$DISTRICT" /api/cases "0000000000000000000000000000000000000000000000000000000000000000"
expect 401 UNAUTHORIZED "unknown token"
net_staff "$VILLAGE"
VILLAGE_CLERK=$(net_login "$VILLAGE" clerk)
sleep 4  # sessions live 3 s at the village
call GET "$(net_url "$VILLAGE")" /api/cases "$VILLAGE_CLERK"
expect 401 UNAUTHORIZED "expired token"
grep -q "expired" <<< "$(jq -r .error.message <<< "$BODY_OUT")" && ok || fail "an expired session is not called expired: $BODY_OUT"
call GET "$DISTRICT" /api/cases "$CLERK"
expect 200 "" "a district session still valid after the village's expired"
call GET "$DISTRICT" /health ""
expect 200 "" "the node still serves after all that"

# --- the events reached the city ---
CITY_DB="$NET/data/440600000000/node.db"
deadline=$(( $(date +%s) + 30 ))
while :; do
  n=$(sqlite3 "$CITY_DB" "SELECT COUNT(*) FROM subtree_case_events WHERE case_number = '$NUM'" 2>/dev/null || echo 0)
  [ "$n" -ge 6 ] && break  # accept, undertake, review, approve, conclude, evaluate
  [ "$(date +%s)" -lt "$deadline" ] || { fail "city holds $n of the case's 6 events"; break; }
  sleep 0.5
done
[ "$n" -ge 6 ] && ok

