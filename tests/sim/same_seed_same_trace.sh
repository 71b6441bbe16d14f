#!/usr/bin/env bash
# Non-determinism is a bug found early: run one seed in two separate processes (each of which
# also runs it twice in-process with --check-determinism) and require the same trace hash.
#   tests/sim/same_seed_same_trace.sh TONGBAN_BINARY SEED [sim options...]
set -euo pipefail
TB="$1"; SEED="$2"; shift 2
first="$("$TB" sim --seed "$SEED" --check-determinism "$@")" || { echo "$first"; exit 1; }
second="$("$TB" sim --seed "$SEED" --check-determinism "$@")" || { echo "$second"; exit 1; }
echo "$first"
a="$(grep -o 'trace [0-9a-f]\{16\}' <<< "$first")"
b="$(grep -o 'trace [0-9a-f]\{16\}' <<< "$second")"
if [ -z "$a" ] || [ "$a" != "$b" ]; then
  echo "NON-DETERMINISTIC across processes: '$a' then '$b'"
  echo "replay: $TB sim --seed $SEED --check-determinism $*"
  exit 1
fi
echo "same seed, same $a in two processes"
