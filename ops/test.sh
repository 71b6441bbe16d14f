#!/usr/bin/env bash
# THE TEST COMMAND: sets up a fresh Debian machine and runs every test.
#   1. installs the Debian packages (ops/setup.sh)
#   2. builds Release and runs every test: unit, sim (100 seeds + a determinism check), integration
#   3. builds with ASan+UBSan and runs the unit tests and a few simulator seeds again under it
# Exits non-zero if anything fails. .ci/run calls exactly this.
set -euo pipefail
cd "$(dirname "$0")/.."
start=$(date +%s)
bash ops/setup.sh

bash ops/build.sh release
(cd build/release && ctest --output-on-failure --timeout 900 -j2)

bash ops/build.sh asan
# The sanitizer build reruns the fast tests and a handful of seeds (each seed is ~10x slower there).
(cd build/asan && ASAN_OPTIONS=detect_leaks=1 UBSAN_OPTIONS=print_stacktrace=1 \
   ctest --output-on-failure --timeout 900 -j2 -L unit)
ASAN_OPTIONS=detect_leaks=1 build/asan/tongban sim --seeds 1:5 --districts 2 --towns 2 --villages 2 --hours 1

echo "test.sh: everything passed in $(( $(date +%s) - start )) s"
