#!/usr/bin/env bash
# Benchmarks (not tests): starts a nats-server on a free loopback port, runs tongban-bench
# against it and this machine's own limits, and stops the server. tongban-bench's lookups section
# starts (and stops) four leaf-linked nats-servers of its own, one per level, and four nodes.
#   ops/bench.sh [tongban-bench options]       e.g. --lookup-rounds 1000, or 0 to skip lookups
set -euo pipefail
cd "$(dirname "$0")/.."
bash ops/setup.sh > /dev/null
mkdir -p build
bash ops/build.sh release tongban-bench > build/bench-build.log 2>&1 || { cat build/bench-build.log; exit 1; }
source ops/lib/network.sh
port=$(net_free_port)
nats-server -a 127.0.0.1 -p "$port" > /dev/null 2>&1 &
server=$!
trap 'kill $server 2>/dev/null || true; wait $server 2>/dev/null || true' EXIT
for _ in $(seq 1 50); do (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null && break; sleep 0.1; done
build/release/tongban-bench --nats "nats://127.0.0.1:$port" --dir "$PWD/build/bench-data" "$@"
