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
if [ "$once" -eq 1 ]; then exit 0; fi
echo "Running. Ask again with:"
echo "  $TB status --nats $(cat "$NET/bus-city.url") --division $(net_root_code) --root $NET/root.cert --tree"
echo "Ctrl-C stops every node and bus."
while true; do sleep 3600; done
