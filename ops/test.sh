#!/usr/bin/env bash
# THE TEST COMMAND: sets up a fresh Debian machine and runs every test.
#   1. installs the Debian packages (ops/setup.sh)
#   2. builds Release and runs every test: unit, sim (64 seeds + a determinism check), integration
#   3. builds the unit suites with ASan+UBSan and runs them again under it (they include the
#      outbox protocol on real nodes in the simulated world)
# Exits non-zero if anything fails. .ci/run calls exactly this.
set -euo pipefail
cd "$(dirname "$0")/.."
start=$(date +%s)
bash ops/setup.sh

bash ops/build.sh release
(cd build/release && ctest --output-on-failure --timeout 900 -j2)

# Only the unit suites under the sanitizers: the whole tree again would double the build time.
bash ops/build.sh asan unit_tests
(cd build/asan && ASAN_OPTIONS=detect_leaks=1 UBSAN_OPTIONS=print_stacktrace=1 \
   ctest --output-on-failure --timeout 900 -j2 -L unit)

echo "test.sh: everything passed in $(( $(date +%s) - start )) s"
