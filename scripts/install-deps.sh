#!/usr/bin/env bash
# Install every Debian package Flint needs to build, test and run (Debian bookworm).
# Idempotent. With --if-missing it only calls apt-get when a package is missing (used by make).
set -euo pipefail

PACKAGES=(
  build-essential pkg-config
  libevent-dev libprotobuf-c-dev protobuf-c-compiler
  librdkafka-dev librocksdb-dev libyaml-dev libjansson-dev libxxhash-dev liblz4-dev
  check
  # tests and scripts
  curl jq iproute2 procps psmisc kcat openssh-client
  # the dashboard's browser test (tests/cluster/test_dashboard.sh): headless chromium driven by node
  chromium nodejs
)

missing=()
for p in "${PACKAGES[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done

if [ "${1:-}" = "--if-missing" ] && [ ${#missing[@]} -eq 0 ]; then
  exit 0
fi
if [ ${#missing[@]} -eq 0 ]; then
  echo "install-deps: all ${#PACKAGES[@]} packages are installed"
  exit 0
fi

if [ "$(id -u)" -ne 0 ]; then
  echo "install-deps: missing packages: ${missing[*]}" >&2
  echo "install-deps: run as root (or: sudo $0) to install them" >&2
  exit 1
fi

echo "install-deps: installing ${missing[*]}"
export DEBIAN_FRONTEND=noninteractive
apt-get update -q
apt-get install -y -q --no-install-recommends "${missing[@]}"
