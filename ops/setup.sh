#!/usr/bin/env bash
# Installs everything Tongban needs on a fresh Debian 12 machine (Debian packages only).
# Idempotent: re-running it only checks. Needs root (or sudo).
set -euo pipefail

PACKAGES=(
  # build
  cmake ninja-build g++ pkg-config ccache
  # libraries
  libboost-dev libnats-dev libsodium-dev capnproto libcapnp-dev libssl-dev libspdlog-dev libsqlite3-dev
  libgtest-dev nlohmann-json3-dev libcli11-dev libtomlplusplus-dev
  # runtime and scripts
  nats-server sqlite3 jq curl iproute2 procps
  # metrics and console tests: promtool (and prometheus, for ops/prometheus.yml); headless
  # Chromium driven by npm playwright-core (tests/browser; Node.js and npm come with the machine),
  # with a CJK font so its screenshots show the Chinese names
  prometheus chromium fonts-wqy-microhei
)

# The browser test needs Node.js and npm. Machines of this project's kind ship them (newer than
# Debian's, whose npm package would conflict); anywhere else, take Debian's.
if ! command -v node > /dev/null || ! command -v npm > /dev/null; then
  PACKAGES+=(nodejs npm)
fi

missing=()
for p in "${PACKAGES[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -eq 0 ]; then
  echo "setup: all ${#PACKAGES[@]} packages present"
  exit 0
fi
SUDO=""
[ "$(id -u)" -eq 0 ] || SUDO="sudo"
echo "setup: installing ${missing[*]}"
$SUDO apt-get update -q
DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -q --no-install-recommends "${missing[@]}"
