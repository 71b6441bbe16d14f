# What every integration script on real processes shares. Source it after setting TB (the
# tongban binary) and SRC (the source tree), then call `it_begin NAME`:
#   - NET is a fresh work directory, NET_DATA the project's data, ops/lib/network.sh is loaded
#     (set NET_* settings such as NET_HEARTBEAT_MS before net_start_nodes);
#   - ok [WHAT] / fail WHAT count checks; die WHAT fails and stops the script;
#   - on exit (normal, die, or an unexpected error under set -e) the network is stopped, the
#     script's own it_on_cleanup runs if it defines one, the last node log lines are printed if
#     anything failed, one summary line "NAME: P passed, F failed in S s: PASS|FAIL" is printed,
#     NET is removed unless something failed or KEEP=1, and the exit status says whether all
#     checks passed;
#   - call/expect/check speak to a node's HTTP API; wait_for/holds_for poll with a bound.
# Every wait is bounded; nothing here touches anything but loopback and NET.

it_begin() {
  IT_NAME="$1"
  NET="$(mktemp -d "${TMPDIR:-/tmp}/tongban-$IT_NAME-XXXXXX")"
  NET_DATA="${NET_DATA:-$SRC/data}"
  # shellcheck source=../../ops/lib/network.sh
  source "$SRC/ops/lib/network.sh"
  IT_START=$(date +%s)
  passes=0
  failures=0
  trap it_end EXIT
}

ok() { passes=$((passes + 1)); [ $# -eq 0 ] || echo "ok   $*"; }
fail() { failures=$((failures + 1)); KEEP=1; echo "FAIL $*" >&2; }
# A failure the rest of the script cannot go on from.
die() { fail "$*"; exit 1; }

it_end() {
  local rc=$?
  if declare -F it_on_cleanup > /dev/null; then it_on_cleanup || true; fi
  net_stop
  if [ "$rc" -ne 0 ] && [ "$failures" -eq 0 ]; then
    failures=1; KEEP=1; echo "FAIL the script stopped (exit $rc)" >&2
  fi
  if [ "$failures" -ne 0 ]; then
    echo "--- last log lines ---" >&2
    tail -n 15 "$NET"/logs/*.log >&2 2>/dev/null || true
  fi
  echo "$IT_NAME: $passes passed, $failures failed in $(( $(date +%s) - IT_START )) s: $([ "$failures" -eq 0 ] && echo PASS || echo FAIL)"
  if [ "${KEEP:-0}" = 1 ]; then echo "kept $NET"; else rm -rf "$NET"; fi
  [ "$failures" -eq 0 ] && exit 0 || exit 1
}

# it_network DISTRICTS TOWNS VILLAGES [SECONDS]: plans the divisions (as net_plan, on the Foshan
# topology), issues keys, starts one bus per level and a node per division, and waits (60 s
# unless told) until every node joined its parent, or dies naming why.
it_network() {
  net_plan "$NET_DATA/foshan.json" "$1" "$2" "$3"
  net_keys
  net_start_buses || die "the buses did not start"
  net_start_nodes
  net_wait_joined "${4:-60}" || die "the tree did not form within ${4:-60} s"
}

# call METHOD URL PATH TOKEN [BODY [CONTENT_TYPE]] -> CODE (HTTP status), BODY_OUT (the answer)
call() {
  local method="$1" base="$2" path="$3" token="$4" body="${5:-}" ct="${6:-application/json}"
  local args=(-s --max-time 30 -o "$NET/out.json" -w '%{http_code}' -X "$method" "$base$path")
  [ -n "$token" ] && args+=(-H "Authorization: Bearer $token")
  [ -n "$body" ] && args+=(-H "Content-Type: $ct" --data-binary "$body")
  CODE=$(curl "${args[@]}") || CODE="${CODE:-000}"
  BODY_OUT=$(cat "$NET/out.json" 2>/dev/null || true)
}

# expect HTTP_CODE ERROR_CODE_OR_EMPTY WHAT: the last call answered that status (and error code).
expect() {
  if [ "$CODE" != "$1" ]; then fail "$3: HTTP $CODE, expected $1: $BODY_OUT"; return; fi
  if [ -n "$2" ] && [ "$(jq -r .error.code <<< "$BODY_OUT")" != "$2" ]; then
    fail "$3: error code $(jq -r .error.code <<< "$BODY_OUT"), expected $2"; return
  fi
  ok
}

# check JQ_TEST WHAT: the last call's answer passes the jq test.
check() {
  if jq -e "$1" <<< "$BODY_OUT" > /dev/null 2>&1; then ok; else fail "$2: $BODY_OUT"; fi
}

# wait_for SECONDS "what is expected" CHECK...: polls CHECK (a command) every 0.5 s until it
# succeeds; on timeout stops the script naming what was expected and what was last seen ($SEEN,
# which CHECK may set).
SEEN=""
wait_for() {
  local seconds="$1" what="$2" t0 deadline; shift 2
  t0=$(date +%s); deadline=$(( t0 + seconds ))
  while ! "$@"; do
    [ "$(date +%s)" -lt "$deadline" ] || die "$what: not within ${seconds}s (last seen: $SEEN)"
    sleep 0.5
  done
  ok "$what (after $(( $(date +%s) - t0 )) s)"
}

# holds_for SECONDS "what must stay true" CHECK...: CHECK must succeed at every poll of the window.
holds_for() {
  local seconds="$1" what="$2" deadline; shift 2
  deadline=$(( $(date +%s) + seconds ))
  while [ "$(date +%s)" -lt "$deadline" ]; do
    "$@" || die "$what: stopped being true (seen: $SEEN)"
    sleep 0.5
  done
  ok "$what (for ${seconds} s)"
}
