#!/usr/bin/env bash
# End to end over real processes: four nats-servers (one per level, leaf-linked) and one
# tongban node per division of a city → district → town → 2 villages tree. Checks that every
# node joins its parent, that the signed tree view shows the whole chain, and that a village
# killed with SIGKILL comes back on its own files without losing or repeating anything.
#   tests/integration/e2e_tree.sh TONGBAN_BINARY SOURCE_DIR
set -euo pipefail
TB="$1"
SRC="$2"
source "$SRC/tests/integration/lib.sh"
NET_HEARTBEAT_MS=500
it_begin e2e_tree
# Every check here is a precondition of the next: the first failure stops the script (die).

it_network 1 1 2

tree="$(net_tree)"
echo "$tree"
for code in 440600000000 440604000000 440604001000 440604001001 440604001002; do
  grep -q "$code" <<< "$tree" || die "$code missing from the tree view"
done
grep -q "NO ANSWER" <<< "$tree" && die "a node did not answer"
[ "$(grep -c "uplink up" <<< "$tree")" -eq 4 ] || die "expected 4 nodes with their uplink up"

# Kill a village hard, then restart it on the same data directory: it must not re-join (its
# join was acknowledged and is remembered) and must come back with an empty outbox.
village_pid=$(pgrep -f "nodes/440604001002.toml" | head -1)
[ -n "$village_pid" ] || die "village process not found"
kill -KILL "$village_pid"
sleep 1
"$TB" node --config "$NET/nodes/440604001002.toml" >> "$NET/logs/440604001002.log" 2>&1 &
NET_PIDS+=($!)
deadline=$(( $(date +%s) + 30 ))
while :; do
  status="$("$TB" status --nats "$(cat "$NET/bus-village.url")" --division 440604001002 --root "$NET/root.cert" --timeout-ms 1500 2>&1 || true)"
  grep -q "uplink up" <<< "$status" && grep -q "outbox 0" <<< "$status" && break
  [ "$(date +%s)" -lt "$deadline" ] || die "restarted village did not come back: $status"
  sleep 0.5
done
echo "$status"
grep -q ", joined" <<< "$status" || die "restarted village forgot it had joined"
joins=$(grep -c "child 440604001002 .* joined" "$NET/logs/440604001000.log" || true)
[ "$joins" -eq 1 ] || die "the town applied the village's join $joins times (expected exactly once)"

# A request for a division nobody serves answers clearly instead of hanging.
if out="$("$TB" status --nats "$(cat "$NET/bus-city.url")" --division 440605000000 --root "$NET/root.cert" --timeout-ms 1000 2>&1)"; then
  die "status of a division with no node succeeded: $out"
fi
grep -qE "NO_RESPONDERS|TIMEOUT" <<< "$out" || die "unexpected answer for an absent node: $out"

ok "the tree formed, a killed village came back without re-joining, an absent node answers clearly"
