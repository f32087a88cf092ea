#!/usr/bin/env bash
# The chaos soak (tests/tests/soak.rs): real mosquitto, a pty scanner, the HTTPS receiver and the
# fake Odoo under a rotating fault schedule — receiver and Odoo outages, broker restarts, scanner
# unplugs, SIGKILLs of the agent, a full disk (the store on a small tmpfs), slow sinks — then an
# oracle over every acknowledged event. Needs root (it mounts the tmpfs).
#
#   scripts/soak.sh            # 10 minutes
#   scripts/soak.sh 120        # seconds (the test suite runs this 2-minute version)
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/install-test-deps.sh
export DOCKHAND_SOAK_SECS="${1:-600}" DOCKHAND_REQUIRE_MOSQUITTO=1 DOCKHAND_REQUIRE_SOAK=1
echo "== soak for ${DOCKHAND_SOAK_SECS} s"
exec cargo test -p dockhand-tests --test soak -- --nocapture
