#!/usr/bin/env bash
# Credentials (证照, issue #6) over real nats-servers and node processes, two districts:
# a business licence (SC-0001, decided at district level) issued at 禅城区 with key facts,
# verified at a village of the OTHER district (南海区) over HTTP and with `tongban verify --url`,
# offline with `tongban verify --root`; tampered and truncated texts are invalid with a reason;
# a renewal supersedes the old version there; a revocation at the district reaches that village
# (bounded poll, short feed poll interval); identity records; a key revocation published through a
# hall reaches a node of the other subtree. Every bad input gets a clear error and the node keeps
# serving.
#   tests/integration/credentials.sh TONGBAN_BINARY SOURCE_DIR
set -euo pipefail
TB="$1"; SRC="$2"
source "$SRC/tests/integration/lib.sh"
NET_HEARTBEAT_MS=500
NET_FEED_POLL_MS=500
it_begin credentials

it_network 2 1 1
ISSUER=440604000000         # 禅城区
VB=440605001001             # a village of 南海区
VA=440604001001             # a village of 禅城区
net_wait_catalogue "$VB" 90 || die "catalogue did not reach $VB"
net_wait_catalogue "$VA" 90 || die "catalogue did not reach $VA"
D=$(net_url $ISSUER); V=$(net_url $VB)
net_staff $ISSUER
net_staff $VB
echo "tongban-demo-admin" | "$TB" user add --data-dir "$NET/data/$ISSUER" --username admin --name "admin of $ISSUER" \
  --roles admin --password-stdin > /dev/null
CLERK=$(net_login $ISSUER clerk); UNDER=$(net_login $ISSUER undertaker); REVIEW=$(net_login $ISSUER reviewer)
APPROVE=$(net_login $ISSUER approver); ADMIN=$(net_login $ISSUER admin)
V_CLERK=$(net_login $VB clerk)
SHOP=91350100M000100Y43

verify_at() {  # verify_at URL TEXT -> BODY_OUT
  call POST "$1" /api/credentials/verify "" "$(jq -cn --arg t "$2" '{text: $t}')"
}
# wait_verdict URL TEXT VERDICT SECONDS -> 0 when the station says VERDICT; sets WAITED_MS
wait_verdict() {
  local t0 deadline; t0=$(date +%s%3N); deadline=$(( $(date +%s) + $4 ))
  while :; do
    verify_at "$1" "$2"
    [ "$(jq -r .verdict <<< "$BODY_OUT")" = "$3" ] && { WAITED_MS=$(( $(date +%s%3N) - t0 )); return 0; }
    [ "$(date +%s)" -lt "$deadline" ] || return 1
    sleep 0.2
  done
}

# --- a business licence issued at the district, with key facts ---
M=$(for k in id_card articles_of_association address_proof; do
  h=$(curl -s -X POST -H "Authorization: Bearer $CLERK" --data-binary "scan of $k" "$D/api/materials?kind=$k&holder=$SHOP" | jq -r .hash)
  printf '{"kind":"%s","hash":"%s"},' "$k" "$h"; done)
call POST "$D" /api/cases "$CLERK" "{\"item_code\":\"SC-0001\",\"applicant_id\":\"$SHOP\",\"applicant_name\":\"某某商店\",\"contact\":\"075712345678\",\"materials\":[${M%,}],\"facts\":{\"address\":\"祖庙路1号\",\"legal_representative\":\"张三\"}}"
expect 201 "" "intake of a company registration with facts"
NUM=$(jq -r .number <<< "$BODY_OUT")
check '.facts.address == "祖庙路1号" and .credential == null' "the case shows its facts and no credential yet"
call POST "$D" /api/cases "$CLERK" "{\"item_code\":\"SC-0001\",\"applicant_id\":\"$SHOP\",\"applicant_name\":\"x\",\"contact\":\"1\",\"facts\":[\"a\"]}"
expect 400 INVALID_ARGUMENT "facts that are not an object"
for pair in "undertake:$UNDER" "review:$REVIEW" "approve:$APPROVE" "conclude:$CLERK"; do
  call POST "$D" "/api/cases/$NUM/steps" "${pair#*:}" "{\"step\":\"${pair%%:*}\"}"
  expect 200 "" "step ${pair%%:*}"
done
CRED=$(jq -r .credential <<< "$BODY_OUT")
[[ "$CRED" =~ ^440604000000-L[0-9]{8}$ ]] && ok || fail "concluding did not issue a credential: $BODY_OUT"

call GET "$D" "/api/credentials/$CRED" "$CLERK"
expect 200 "" "the issuer shows the credential"
check '.kind == "business_license" and .facts.address == "祖庙路1号" and .holder_id == "'$SHOP'" and .verdict == "valid" and .status == null' "credential fields"
TEXT=$(jq -r .text <<< "$BODY_OUT")
[[ "$TEXT" == TBC1.* ]] && ok || fail "no text form: $BODY_OUT"
call GET "$D" "/api/credentials?holder=$SHOP" "$CLERK"
expect 200 "" "credentials of a holder"
check '.credentials | length == 1' "one credential for the shop"
[ "$("$TB" credential show --url "$D" --token "$CLERK" --number "$CRED" --text-only)" = "$TEXT" ] && ok || fail "credential show --text-only"

# --- verified at a village of the other district: HTTP, CLI online, CLI offline ---
verify_at "$V" "$TEXT"
expect 200 "" "verify at $VB"
check '.verdict == "valid" and .credential.number == "'$CRED'" and .chain[0].division == "440604000000" and (.root | contains("440600000000"))' "valid at the other district's village"
check '.status_fresh_as_of_ms > 0 and (.status_fresh_as_of | endswith("CST"))' "freshness in the answer"
# A business licence is long-term in data/catalog.json (validity_days 0): no end date.
check '.credential.valid_until == null and .credential.valid_until_ms == 0 and .credential.long_term == true and (.reason | contains("no end date"))' "a long-term licence has no end date"
call POST "$V" /api/credentials/verify "" "$TEXT" text/plain
check '.verdict == "valid"' "raw text/plain body"
out=$("$TB" verify --url "$V" --text "$TEXT") && rc=0 || rc=$?
[ "$rc" = 0 ] && grep -q '^VALID' <<< "$out" && grep -q '禅城区 (440604000000, district)' <<< "$out" && grep -q 'has reached this station' <<< "$out" \
  && grep -q '^valid .* \.\. long-term (长期)' <<< "$out" && ok || fail "tongban verify --url: rc $rc: $out"
echo "$TEXT" > "$NET/licence.txt"
out=$("$TB" verify --root "$NET/root.cert" --file "$NET/licence.txt" --catalogue "$NET_DATA/catalog.json") && rc=0 || rc=$?
[ "$rc" = 0 ] && grep -q 'NOT checked' <<< "$out" && grep -q 'with authority for SC-0001' <<< "$out" && grep -q 'no end date' <<< "$out" \
  && ok || fail "offline verify: rc $rc: $out"
out=$("$TB" verify --keys "$NET/keys/$VB" --text "$TEXT" --json) && rc=0 || rc=$?
[ "$rc" = 4 ] && jq -e '.verdict == "valid" and .status_checked == false and .authority_checked == false' <<< "$out" > /dev/null \
  && ok || fail "offline verify --keys without --catalogue: exit 4 (authority not checked): rc $rc: $out"
out=$("$TB" verify --root "$NET/root.cert" --text "$TEXT") && rc=0 || rc=$?
[ "$rc" = 4 ] && grep -q "authority NOT checked" <<< "$out" && ok || fail "offline verify without --catalogue: rc $rc: $out"

# --- tampered, truncated, garbage ---
mid=$(( ${#TEXT} / 2 )); c=${TEXT:$mid:1}; [ "$c" = A ] && r=B || r=A
TAMPERED="${TEXT:0:$mid}$r${TEXT:$((mid + 1))}"
verify_at "$V" "$TAMPERED"
expect 200 "" "a tampered credential is a verdict"
check '.verdict == "invalid" and (.reason | length) > 10' "tampered credential invalid with a reason"
out=$("$TB" verify --url "$V" --text "$TAMPERED") && rc=0 || rc=$?
[ "$rc" = 3 ] && grep -q '^INVALID' <<< "$out" && ok || fail "tongban verify of a tampered text: rc $rc: $out"
out=$("$TB" verify --root "$NET/root.cert" --text "$TAMPERED") && rc=0 || rc=$?
[ "$rc" = 3 ] && ok || fail "offline verify of a tampered text: rc $rc: $out"
verify_at "$V" "${TEXT:0:$(( ${#TEXT} - 40 ))}"
check '.verdict == "invalid" and (.reason | test("cut short|garbled|base64"))' "truncated credential"
verify_at "$V" "hello, I am a licence"
check '.verdict == "invalid" and (.reason | contains("TBC1."))' "garbage text"
call POST "$V" /api/credentials/verify "" ""
expect 400 INVALID_ARGUMENT "empty body"
call POST "$V" /api/credentials/verify "" '{"text": 5}'
expect 400 INVALID_ARGUMENT "text that is not a string"
call POST "$V" /api/credentials/verify "" '{"text": "TBC1.abc'
expect 400 INVALID_ARGUMENT "malformed JSON"
head -c 200000 /dev/zero | tr '\0' 'A' > "$NET/big.txt"
CODE=$(curl -s -o "$NET/out.json" -w '%{http_code}' -X POST -H 'Content-Type: text/plain' --data-binary @"$NET/big.txt" "$V/api/credentials/verify"); BODY_OUT=$(cat "$NET/out.json")
expect 400 INVALID_ARGUMENT "oversized body"
"$TB" verify --text "$TEXT" > /dev/null 2>&1 && rc=0 || rc=$?
[ "$rc" = 1 ] && ok || fail "verify without --url/--root should be a usage error (1), got $rc"

# --- renewal supersedes the old version, everywhere the status reaches ---
call POST "$D" "/api/credentials/$CRED/renew" "$CLERK" '{"valid_until":"2031-12-31"}'
expect 403 FORBIDDEN "a clerk renewing"
call POST "$D" "/api/credentials/$CRED/renew" "$APPROVE" '{"valid_until":"31/12/2031"}'
expect 400 INVALID_ARGUMENT "a renewal date that is not YYYY-MM-DD"
call POST "$D" "/api/credentials/$CRED/renew" "$APPROVE" '{"valid_until":"2031-12-31","facts":{"address":"祖庙路2号"}}'
expect 200 "" "renewal"
check '.version == 2 and .valid_until == "2031-12-31" and .facts.address == "祖庙路2号"' "renewed fields"
TEXT2=$(jq -r .text <<< "$BODY_OUT")
wait_verdict "$V" "$TEXT" superseded 30 && ok || fail "the old version is not superseded at $VB: $BODY_OUT"
verify_at "$V" "$TEXT2"
check '.verdict == "valid" and .credential.version == 2' "the renewed version is valid at $VB"
call POST "$D" "/api/credentials/$CRED/renew" "$APPROVE" '{}'
expect 200 "" "renewal without a date"
check '.version == 3 and .valid_until == null and .long_term == true' "a renewal without a date restarts the item's period: long-term again"

# --- revocation at the district reaches the other district's village ---
call POST "$D" "/api/credentials/$CRED/status" "$CLERK" '{"status":"revoked","reason":"closed"}'
expect 403 FORBIDDEN "a clerk revoking"
call POST "$D" "/api/credentials/$CRED/status" "$APPROVE" '{"status":"revoked"}'
expect 400 INVALID_ARGUMENT "revoking without a reason"
call POST "$D" "/api/credentials/$CRED/status" "$APPROVE" '{"status":"cancelled","reason":"x"}'
expect 400 INVALID_ARGUMENT "an unknown status"
call POST "$D" "/api/credentials/not-a-number/status" "$APPROVE" '{"status":"revoked","reason":"x"}'
expect 400 INVALID_ARGUMENT "a malformed credential number"
call POST "$D" "/api/credentials/440604000000-L09999999/status" "$APPROVE" '{"status":"revoked","reason":"x"}'
expect 404 NOT_FOUND "an unknown credential"
call POST "$D" "/api/credentials/$CRED/status" "$APPROVE" '{"status":"active","reason":"x"}'
expect 409 FAILED_PRECONDITION "reinstating a credential that is not suspended"
call POST "$D" "/api/credentials/$CRED/status" "$APPROVE" '{"status":"revoked","reason":"营业执照吊销 (licence withdrawn)"}'
expect 200 "" "revocation at the issuer"
check '.status == "revoked" and .by == "440604000000"' "revocation record"
call POST "$D" "/api/credentials/$CRED/status" "$APPROVE" '{"status":"suspended","reason":"x"}'
expect 409 FAILED_PRECONDITION "revoked is final"
if wait_verdict "$V" "$TEXT2" revoked 30; then
  ok; echo "revocation reached $VB in $WAITED_MS ms"
else
  fail "the revocation did not reach $VB within 30 s: $BODY_OUT"
fi
# Fresh past the revocation once the city's completeness watermark (a few heartbeats behind its
# clock) has passed it and the feed carried that down (protocol.md "Completeness watermark").
for _ in $(seq 1 150); do
  jq -e '.status_fresh_as_of_ms >= .status.at_ms' <<< "$BODY_OUT" > /dev/null && break
  sleep 0.2; verify_at "$V" "$TEXT2"
done
check '.status.status == "revoked" and (.reason | contains("licence withdrawn")) and .status_fresh_as_of_ms >= .status.at_ms' "revoked with the reason, and fresh data"
out=$("$TB" verify --url "$V" --text "$TEXT2") && rc=0 || rc=$?
[ "$rc" = 3 ] && grep -q '^REVOKED' <<< "$out" && ok || fail "tongban verify of a revoked credential: rc $rc: $out"
call GET "$V" /health ""
check '.revocations_fresh_as_of_ms > 0' "/health shows the feed's freshness"

# --- identity records ---
call POST "$V" /api/identities "$V_CLERK" '{"id_number":"11010519491231002X","name":"张三","contacts":{"phone":"13800000000"}}'
expect 201 "" "register an identity"
check '.version == 1 and .kind == "person" and .registered_by == "'$VB'"' "identity record"
call POST "$V" /api/identities "$V_CLERK" '{"id_number":"110105194912310021","name":"张三"}'
expect 400 INVALID_ARGUMENT "an ID with a wrong check digit"
call POST "$V" /api/identities "$V_CLERK" '{"id_number":"11010519491231002X","name":"张三","contacts":{"phone":1}}'
expect 400 INVALID_ARGUMENT "a contact that is not a string"
call GET "$V" /api/identities/11010519491231002X "$V_CLERK"
expect 200 "" "show an identity"
call GET "$V" /api/identities/440604199001010579 "$V_CLERK"
expect 404 NOT_FOUND "an identity not registered"
C_CLERK=""; net_staff 440600000000; C_CLERK=$(net_login 440600000000 clerk)
deadline=$(( $(date +%s) + 30 ))
until call GET "$(net_url 440600000000)" /api/identities/11010519491231002X "$C_CLERK"; [ "$CODE" = 200 ]; do
  [ "$(date +%s)" -lt "$deadline" ] || { fail "the identity record did not reach the city: $BODY_OUT"; break; }
  sleep 0.3
done
[ "$CODE" = 200 ] && ok

# --- a key revocation published through a hall reaches the other subtree ---
"$TB" keys revoke --issuer "$NET/keys/440605001000" --holder "$NET/keys/$VB" --reason "laptop lost" --out "$NET/vb.rev" > /dev/null
call POST "$D" /api/revocations/keys "$APPROVE" "x" application/octet-stream
expect 403 FORBIDDEN "a non-admin publishing a key revocation"
call POST "$D" /api/revocations/keys "$ADMIN" "not a revocation" application/octet-stream
expect 400 INVALID_ARGUMENT "garbage as a key revocation"
out=$("$TB" keys publish-revocation --url "$D" --token "$ADMIN" --file "$NET/vb.rev") && ok || fail "keys publish-revocation: $out"
CODE=$(curl -s -o "$NET/out.json" -w '%{http_code}' -X POST -H "Authorization: Bearer $ADMIN" -H 'Content-Type: application/octet-stream' \
  --data-binary @"$NET/vb.rev" "$D/api/revocations/keys"); BODY_OUT=$(cat "$NET/out.json")
expect 409 ALREADY_EXISTS "publishing the same key revocation twice"
deadline=$(( $(date +%s) + 30 ))
until [ "$(sqlite3 "$NET/data/$VA/node.db" 'SELECT COUNT(*) FROM key_revocations' 2>/dev/null || echo 0)" -ge 1 ]; do
  [ "$(date +%s)" -lt "$deadline" ] || { fail "the key revocation did not reach $VA (other subtree) within 30 s"; break; }
  sleep 0.3
done
[ "$(sqlite3 "$NET/data/$VA/node.db" 'SELECT COUNT(*) FROM key_revocations')" -ge 1 ] && ok

call GET "$V" /health ""
expect 200 "" "the village still serves after all that"
call GET "$D" /health ""
expect 200 "" "the district still serves after all that"

