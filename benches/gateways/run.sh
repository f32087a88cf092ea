#!/usr/bin/env bash
# Side-by-side benchmark: dockhand vs a mosquitto bridge, Node-RED and ThingsBoard IoT Gateway
# on one scenario (handhelds publish, the uplink drops, the gateway is SIGKILLed, the uplink
# returns). Installs the peers at pinned versions under target/gateway-bench/, builds dockhand,
# and prints a Markdown table (docs/BENCHMARKS.md explains it).
#
#   benches/gateways/run.sh                       # 10 000 events at 500/s, every system
#   benches/gateways/run.sh --events 2000 --only dockhand,node-red
set -euo pipefail
cd "$(dirname "$0")/../.."

NODE_RED_VERSION=4.1.15
THINGSBOARD_GATEWAY_VERSION=3.8.5
PAHO_VERSION=2.2.0
work=target/gateway-bench
mkdir -p "$work"

need() { command -v "$1" >/dev/null 2>&1; }
if ! need mosquitto; then
    echo "Installing mosquitto…"
    apt-get update -qq && apt-get install -y -qq mosquitto >/dev/null
fi
need node && need npm || { echo "Node.js and npm are needed for Node-RED." >&2; exit 1; }

if [ ! -x "$work/node-red/node_modules/.bin/node-red" ]; then
    echo "Installing Node-RED $NODE_RED_VERSION (npm)…"
    mkdir -p "$work/node-red"
    (cd "$work/node-red" && npm install --silent --no-audit --no-fund "node-red@$NODE_RED_VERSION" >/dev/null)
fi
# Two virtualenvs: ThingsBoard's gateway brings its own fork of paho-mqtt.
if [ ! -x "$work/venv-tb/bin/python" ]; then
    echo "Installing ThingsBoard IoT Gateway $THINGSBOARD_GATEWAY_VERSION (PyPI)…"
    python3 -m venv "$work/venv-tb"
    "$work/venv-tb/bin/pip" install -q "thingsboard-gateway==$THINGSBOARD_GATEWAY_VERSION"
fi
if [ ! -x "$work/venv-bench/bin/python" ]; then
    echo "Installing paho-mqtt $PAHO_VERSION for the harness (PyPI)…"
    python3 -m venv "$work/venv-bench"
    "$work/venv-bench/bin/pip" install -q "paho-mqtt==$PAHO_VERSION"
fi

echo "Building dockhand (release)…"
cargo build --release -q -p dockhand

exec "$work/venv-bench/bin/python" benches/gateways/bench.py \
    --dockhand target/release/dockhand \
    --node-red-dir "$work/node-red" \
    --tb-python "$work/venv-tb/bin/python" \
    --work "$work/runs" \
    --json "$work/results.json" \
    "$@"
