#!/usr/bin/env bash
# Installs the system packages the end-to-end tests start for real (scripts/test-packages.txt)
# when they are missing. Used by scripts/test.sh and scripts/soak.sh.
set -euo pipefail
cd "$(dirname "$0")/.."
need=()
for pkg in $(grep -v '^#' scripts/test-packages.txt); do
  dpkg -s "$pkg" >/dev/null 2>&1 || need+=("$pkg")
done
if [ ${#need[@]} -gt 0 ]; then
  echo "== installing ${need[*]}"
  if [ "$(id -u)" = 0 ]; then SUDO=""; else SUDO="sudo"; fi
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
fi
