# Shared by ops/demo.sh and tests/integration/e2e_tree.sh: build and run a local Tongban
# network on loopback. Source it, set TB (the tongban binary) and NET (a work directory), then:
#   net_plan TOPOLOGY DISTRICTS TOWNS VILLAGES   pick the divisions
#   net_keys                                     the key ceremony, one key dir per node
#   net_start_buses                              one nats-server per level, leaf-linked upward
#   net_start_nodes                              one tongban node process per division
#   net_wait_joined SECONDS                      until every node has joined its parent
#   net_bus_stop LEVEL / net_bus_start LEVEL     cut one level's bus and bring it back (drills)
#   net_stop                                     stops everything it started (also on EXIT)
# net_start_nodes also writes NET/prometheus-targets.json (Prometheus file_sd, ops/prometheus.yml).
# Every port is a free loopback port; every wait is bounded.

NET_PIDS=()
# The project's data directory (catalogue, calendar, topology) unless the caller set one.
NET_DATA="${NET_DATA:-$(cd "$(dirname "${BASH_SOURCE[0]}")/../../data" && pwd)}"

net_log() { printf '[net] %s\n' "$*" >&2; }

# A loopback port below the kernel's ephemeral range: ports inside it are handed out to outgoing
# connections (the leaf links, our own probes), so a port that answers nobody now can still be
# taken by a connect() a moment later and the server's bind would then fail. Below the range
# only another listener can take it, and the bus start retries on fresh ports if one does.
net_free_port() {
  local low=32768 port i
  [ -r /proc/sys/net/ipv4/ip_local_port_range ] && read -r low _ < /proc/sys/net/ipv4/ip_local_port_range
  [ "$low" -gt 12000 ] || low=32768
  for i in $(seq 1 100); do
    port=$(( 10000 + RANDOM % (low - 10000) ))
    if ! (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; then
      echo "$port"
      return 0
    fi
  done
  echo "no free port found" >&2
  return 1
}

# Fills NET/divisions.txt with "code level parent name" lines, parents first.
net_plan() {
  local topology="$1" districts="$2" towns="$3" villages="$4"
  mkdir -p "$NET"
  "$TB" topology sample --topology "$topology" --districts "$districts" --towns "$towns" \
    --villages "$villages" > "$NET/divisions.txt"
  net_log "$(wc -l < "$NET/divisions.txt") divisions planned"
}

net_keys() {
  local code level parent name
  while read -r code level parent name; do
    if [ "$level" = city ]; then
      "$TB" keys init-root --division "$code" --name "$name" --out "$NET/keys/$code" > /dev/null
    else
      "$TB" keys issue --parent "$NET/keys/$parent" --division "$code" --name "$name" \
        --out "$NET/keys/$code" > /dev/null
    fi
  done < "$NET/divisions.txt"
  cp "$NET/keys/$(head -1 "$NET/divisions.txt" | cut -d' ' -f1)/root.cert" "$NET/root.cert"
  net_log "keys issued for every node; root certificate at $NET/root.cert"
}

# One nats-server per level: village → town → district → city, each a leaf of the one above
# (as a real deployment would run one bus per hall). Writes NET/bus-<level>.url.
# Levels start one at a time, top down, each waited for before the next: a level's leaf remote
# needs the port the level above really listens on, and a server that lost its port to another
# process is started again on fresh ports (up to 5 tries) instead of failing the whole run.
net_start_buses() {
  local level above="" port leaf conf pid try started offset
  mkdir -p "$NET/bus"
  for level in city district town village; do
    started=0
    for try in 1 2 3 4 5; do
      port=$(net_free_port) && leaf=$(net_free_port) || return 1
      [ "$port" != "$leaf" ] || continue
      conf="$NET/bus/$level.conf"
      {
        echo "server_name: tongban-$level"
        echo "listen: 127.0.0.1:$port"
        echo "ping_interval: \"1s\""
        echo "ping_max: 3"
        echo "leafnodes {"
        echo "  listen: 127.0.0.1:$leaf"
        [ -n "$above" ] && echo "  remotes: [ { url: \"nats-leaf://127.0.0.1:$above\" } ]"
        echo "  reconnect: 1"
        echo "}"
      } > "$conf"
      offset=$(stat -c %s "$NET/bus/$level.log" 2>/dev/null || echo 0)
      nats-server -c "$conf" >> "$NET/bus/$level.log" 2>&1 &
      pid=$!
      NET_PIDS+=("$pid")
      if net_wait_bus_ready "$pid" "$NET/bus/$level.log" "$offset" 200; then started=1; break; fi
      kill -KILL "$pid" 2>/dev/null || true
      wait "$pid" 2>/dev/null || true
      net_forget_pid "$pid"
      net_log "nats-server for $level did not come up on ports $port/$leaf (try $try of 5): $(tail -n 2 "$NET/bus/$level.log" | tr '\n' ' ')"
    done
    [ $started -eq 1 ] || { net_log "nats-server for $level did not start; see $NET/bus/$level.log"; return 1; }
    echo "$pid" > "$NET/bus/$level.pid"
    echo "nats://127.0.0.1:$port" > "$NET/bus-$level.url"
    echo "$leaf" > "$NET/bus/$level.leafport"
    above=$leaf
  done
  net_log "buses up: city $(cat "$NET/bus-city.url") <- district <- town <- village (leaf links)"
}

# net_wait_bus_ready PID LOG OFFSET TENTHS: true once the nats-server PID has written "Server is
# ready" to LOG after byte OFFSET (it then listens on every port of its config; a port that merely
# answers could be somebody else's), false as soon as it has exited (a port was taken, say) or
# after TENTHS tenths of a second.
net_wait_bus_ready() {
  local pid="$1" log="$2" offset="$3" tenths="$4" _
  for _ in $(seq 1 "$tenths"); do
    kill -0 "$pid" 2>/dev/null || return 1
    tail -c +"$(( offset + 1 ))" "$log" 2>/dev/null | grep -q "Server is ready" && return 0
    sleep 0.1
  done
  return 1
}

# Cutting one level's links for a drill: net_bus_stop LEVEL stops that level's nats-server, which
# severs its halls from their bus and the levels above and below from each other at that level;
# net_bus_start LEVEL starts it again on the same config (same client and leaf ports). The leaf
# remotes of the level below retry every second (reconnect: 1) and the nodes' nats.c connections
# reconnect by themselves, so nothing else needs restarting.
net_bus_stop() {
  local level="$1" pid
  pid=$(cat "$NET/bus/$level.pid")
  kill -TERM "$pid" 2>/dev/null || true
  local i stopped=0
  for i in $(seq 1 100); do kill -0 "$pid" 2>/dev/null || { stopped=1; break; }; sleep 0.1; done
  if [ $stopped -eq 1 ]; then net_log "$level bus stopped"; else kill -KILL "$pid" 2>/dev/null || true; net_log "$level bus killed (did not stop within 10 s)"; fi
  wait "$pid" 2>/dev/null || true
  net_forget_pid "$pid"
}

# Forgets a process that has ended, so net_stop never signals a later process reusing its pid.
net_forget_pid() {
  local kept=() p
  for p in "${NET_PIDS[@]}"; do [ "$p" = "$1" ] || kept+=("$p"); done
  NET_PIDS=("${kept[@]}")
}

net_bus_start() {
  local level="$1" pid offset
  offset=$(stat -c %s "$NET/bus/$level.log" 2>/dev/null || echo 0)
  nats-server -c "$NET/bus/$level.conf" >> "$NET/bus/$level.log" 2>&1 &
  pid=$!
  NET_PIDS+=("$pid")
  echo "$pid" > "$NET/bus/$level.pid"
  if net_wait_bus_ready "$pid" "$NET/bus/$level.log" "$offset" 100; then net_log "$level bus started again"; return 0; fi
  net_log "nats-server for $level did not start again on $(cat "$NET/bus-$level.url"); see $NET/bus/$level.log"
  return 1
}

# A node's session lifetime: NET_SESSION_S_<code> if set (a test that lets sessions expire on one
# node only, so the others' sessions never race the clock), else NET_SESSION_S, else 8 hours.
net_session_seconds() {
  local var="NET_SESSION_S_$1"
  echo "${!var:-${NET_SESSION_S:-28800}}"
}

# NET_DATA: the project's data directory (calendar, catalogue). Each node gets an HTTP port,
# written to NET/http/<code>.url.
net_start_nodes() {
  local code level parent name conf port extra
  mkdir -p "$NET/nodes" "$NET/logs" "$NET/http"
  while read -r code level parent name; do
    conf="$NET/nodes/$code.toml"
    port=$(net_free_port)
    echo "http://127.0.0.1:$port" > "$NET/http/$code.url"
    extra=""
    [ "$level" = city ] && extra="catalogue_file = \"$NET_DATA/catalog.json\""
    cat > "$conf" <<TOML
division = "$code"
name = "$name"
data_dir = "$NET/data/$code"
key_dir = "$NET/keys/$code"
root_cert = "$NET/root.cert"
nats_urls = ["$(cat "$NET/bus-$level.url")"]
heartbeat_interval_ms = ${NET_HEARTBEAT_MS:-2000}
retry_max_ms = 5000
log_level = "info"
http_listen = "127.0.0.1:$port"
calendar_files = ["$NET_DATA/calendar-2026.json"]
session_lifetime_s = $(net_session_seconds "$code")
supervision_interval_ms = ${NET_SUPERVISION_MS:-2000}
light_scan_interval_ms = ${NET_LIGHT_SCAN_MS:-2000}
clock_offset_days = ${NET_CLOCK_OFFSET_DAYS:-0}
catalogue_poll_ms = ${NET_CATALOGUE_POLL_MS:-2000}
feed_poll_ms = ${NET_FEED_POLL_MS:-2000}
expected_children = [$(awk -v p="$code" '$3 == p { printf "%s\"%s\"", (n++ ? ", " : ""), $1 }' "$NET/divisions.txt")]
$extra
TOML
    "$TB" node --config "$conf" > "$NET/logs/$code.log" 2>&1 &
    NET_PIDS+=($!)
    echo $! > "$NET/nodes/$code.pid"
  done < "$NET/divisions.txt"
  net_log "$(wc -l < "$NET/divisions.txt") node processes started; logs in $NET/logs"
  net_prometheus_targets
}

# Every node's /metrics as Prometheus file_sd targets, labelled with the node's division. The
# label is "node", not "division": tongban_cases already has a division label of its own.
net_prometheus_targets() {
  local code level parent name
  while read -r code level parent name; do
    jq -n --arg t "$(sed 's#^http://##' "$NET/http/$code.url")" --arg c "$code" --arg l "$level" --arg n "$name" \
      '{targets: [$t], labels: {node: $c, level: $l, node_name: $n}}'
  done < "$NET/divisions.txt" | jq -s . > "$NET/prometheus-targets.json"
}

net_root_code() { head -1 "$NET/divisions.txt" | cut -d' ' -f1; }

net_url() { cat "$NET/http/$1.url"; }

# Staff for one hall: one account per role, password "tongban-demo-<role>" (a demo only), and
# TOKEN_<role> variables holding logged-in sessions. Accounts are created in the node's own
# database while it runs (SQLite WAL allows the second writer).
net_staff() {
  local code="$1" role
  for role in clerk undertaker reviewer approver supervisor; do
    echo "tongban-demo-$role" | "$TB" user add --data-dir "$NET/data/$code" --username "$role" \
      --name "$role of $code" --roles "$role" --password-stdin > /dev/null
  done
}

net_login() {
  local code="$1" role="$2"
  echo "tongban-demo-$role" | "$TB" login --url "$(net_url "$code")" --username "$role"
}

# Waits (bounded) until a node's HTTP API answers /health with a catalogue.
net_wait_catalogue() {
  local code="$1" seconds="$2" deadline
  deadline=$(( $(date +%s) + seconds ))
  while [ "$(date +%s)" -lt "$deadline" ]; do
    if out=$( (exec 3<>"/dev/tcp/127.0.0.1/$(sed 's#.*:##' "$NET/http/$code.url")" && printf 'GET /health HTTP/1.0\r\n\r\n' >&3 && cat <&3) 2>/dev/null ) \
       && grep -q '"catalogue_version":[1-9]' <<< "$out"; then
      return 0
    fi
    sleep 0.5
  done
  net_log "$code has no catalogue after ${seconds}s"
  return 1
}

net_tree() {
  "$TB" status --nats "$(cat "$NET/bus-city.url")" --division "$(net_root_code)" --root "$NET/root.cert" --tree \
    --clock-offset-days "${NET_CLOCK_OFFSET_DAYS:-0}" "$@"
}

net_wait_joined() {
  local seconds="$1" total
  total=$(wc -l < "$NET/divisions.txt")
  local deadline=$(( $(date +%s) + seconds ))
  while [ "$(date +%s)" -lt "$deadline" ]; do
    if net_tree --json --expect-joined "$total" --timeout-ms 1500 > /dev/null 2>&1; then
      net_log "all $total nodes joined their parents"
      return 0
    fi
    sleep 1
  done
  net_log "not every node joined within ${seconds}s"
  net_report_dead_nodes
  return 1
}

# Names every node process that has exited, with the end of its log (a port taken, a bad key...).
net_report_dead_nodes() {
  local code level parent name pid
  while read -r code level parent name; do
    pid=$(cat "$NET/nodes/$code.pid" 2>/dev/null) || continue
    kill -0 "$pid" 2>/dev/null && continue
    net_log "node $code ($name) has exited; the end of $NET/logs/$code.log:"
    tail -n 5 "$NET/logs/$code.log" | sed 's/^/[net]   /' >&2
  done < "$NET/divisions.txt"
}

# Stops the node processes only (the buses keep running) and starts them again on their data,
# re-reading their configs: for a restart with other settings (e.g. NET_CLOCK_OFFSET_DAYS).
net_restart_nodes() {
  local code level parent name pid
  for pid in $(pgrep -f "tongban node --config $NET/nodes/" || true); do kill -TERM "$pid" 2>/dev/null || true; done
  for _ in $(seq 1 50); do pgrep -f "tongban node --config $NET/nodes/" > /dev/null || break; sleep 0.1; done
  while read -r code level parent name; do
    sed -i "s/^clock_offset_days = .*/clock_offset_days = ${NET_CLOCK_OFFSET_DAYS:-0}/" "$NET/nodes/$code.toml"
    "$TB" node --config "$NET/nodes/$code.toml" >> "$NET/logs/$code.log" 2>&1 &
    NET_PIDS+=($!)
    echo $! > "$NET/nodes/$code.pid"
  done < "$NET/divisions.txt"
}

net_stop() {
  local pid
  [ ${#NET_PIDS[@]} -eq 0 ] && return 0
  for pid in "${NET_PIDS[@]}"; do kill -TERM "$pid" 2>/dev/null || true; done
  for _ in $(seq 1 50); do
    local alive=0
    for pid in "${NET_PIDS[@]}"; do kill -0 "$pid" 2>/dev/null && alive=1; done
    [ $alive -eq 0 ] && break
    sleep 0.1
  done
  for pid in "${NET_PIDS[@]}"; do kill -KILL "$pid" 2>/dev/null || true; done
  wait 2>/dev/null || true
  NET_PIDS=()
}
