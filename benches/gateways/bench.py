#!/usr/bin/env python3
"""Side-by-side: what happens to handheld scans when the uplink drops and the gateway is killed.

One scenario, run against each system in turn, all on this machine:

1. handhelds publish N QoS 1 `count` messages (unique ids) to the gateway's MQTT broker at a
   steady rate; a message counts as *acknowledged* when the broker PUBACKs it to the handheld;
2. half way through, the uplink goes down (a TCP relay between the gateway and the cloud
   closes its connections and refuses new ones);
3. once every message is acknowledged, the gateway process is SIGKILLed and restarted;
4. the uplink returns; the run ends when the cloud has every acknowledged id or nothing new has
   arrived for `--quiet` seconds.

Per system: acknowledged ids that never reached the cloud (lost), extra deliveries (duplicates),
drain time (uplink back → last arrival), peak RSS and CPU seconds of the gateway process(es)
(exact, from wait4 when each process ends, summed over the killed and the restarted process), and
the same for the gateway's MQTT broker.

Peers, each configured as its documentation suggests for reliable delivery:
- dockhand: MQTT source (persistent session) → SQLite store → HTTP sink.
- mosquitto bridge: the gateway broker itself bridges `warehouse/#` out at QoS 1 to the cloud
  broker, persistence on, clean session off; once with mosquitto's defaults and once tuned
  (unlimited queue, snapshot after every change).
- Node-RED: `mqtt in` (QoS 1, clean session off) → `http request` (POST to the cloud).
- ThingsBoard IoT Gateway: MQTT connector (QoS 1, clean session off) → SQLite storage →
  ThingsBoard's MQTT gateway API (the cloud here is a mosquitto standing in for ThingsBoard).

The cloud is an HTTP receiver answering 200 (dockhand, Node-RED) or a mosquitto broker with a
persistent QoS 1 subscriber (bridge, ThingsBoard); both record every id they receive.
"""

import argparse
import http.server
import json
import os
import pwd
import re
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
import uuid

import paho.mqtt.client as mqtt

SITE = "bench"
TOPIC = f"warehouse/{SITE}/handheld/{{device}}/count"
UUID_RE = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$")


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_port(port, timeout=20):
    deadline = time.time() + timeout
    while time.time() < deadline:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                return
        except OSError:
            time.sleep(0.05)
    raise RuntimeError(f"nothing listens on port {port} after {timeout} s")


def wait_for(what, check, timeout=60):
    deadline = time.time() + timeout
    while not check():
        if time.time() > deadline:
            raise RuntimeError(f"timed out after {timeout} s waiting for {what}")
        time.sleep(0.1)


class Usage:
    """Peak RSS (VmHWM, read just before each end) and CPU seconds (wait4) over a process's lives."""

    def __init__(self):
        self.peak_rss_kb = 0
        self.cpu_s = 0.0

    def note_peak(self, proc):
        """The peak RSS of the running program (VmHWM). Read before the process ends, because
        wait4's ru_maxrss also counts the forked Python parent's pages from before exec."""
        try:
            with open(f"/proc/{proc.pid}/status") as f:
                for line in f:
                    if line.startswith("VmHWM:"):
                        self.peak_rss_kb = max(self.peak_rss_kb, int(line.split()[1]))
        except OSError:
            pass

    def reap(self, proc):
        _, status, ru = os.wait4(proc.pid, 0)
        # Reaped here (for the rusage), so Popen must not wait for it again.
        proc.returncode = status
        self.cpu_s += ru.ru_utime + ru.ru_stime


class Process:
    """A child process whose resource use is accounted when it ends (killed or stopped)."""

    def __init__(self, argv, log_path, cwd=None, env=None):
        self.argv, self.log_path, self.cwd, self.env = argv, log_path, cwd, env
        self.proc = None
        self.usage = Usage()

    def start(self):
        log = open(self.log_path, "ab")
        self.proc = subprocess.Popen(self.argv, stdout=log, stderr=subprocess.STDOUT, cwd=self.cwd, env=self.env)
        log.close()

    def log(self):
        if not os.path.exists(self.log_path):
            return ""
        with open(self.log_path, "rb") as f:
            return f.read().decode("utf-8", "replace")

    def start_and_wait_for(self, line, what):
        """Starts the process and waits until its log shows `line` once more than before."""
        before = self.log().count(line)
        self.start()
        wait_for(what, lambda: self.log().count(line) > before)

    def kill9(self):
        self.usage.note_peak(self.proc)
        self.proc.send_signal(signal.SIGKILL)
        self.usage.reap(self.proc)

    def stop_and_reap(self):
        """SIGTERM, then wait (SIGKILL after 20 s), recording resource use either way."""
        self.usage.note_peak(self.proc)
        self.proc.send_signal(signal.SIGTERM)
        timer = threading.Timer(20, lambda: self.proc.send_signal(signal.SIGKILL))
        timer.start()
        self.usage.reap(self.proc)
        timer.cancel()


# --- the uplink: a TCP relay that can be cut ---------------------------------------------------


class Uplink:
    def __init__(self, target_port):
        self.target = target_port
        self.port = free_port()
        self.lock = threading.Lock()
        self.conns = []
        self.listener = None
        self.up()

    def up(self):
        s = socket.socket()
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        s.bind(("127.0.0.1", self.port))
        s.listen(64)
        self.listener = s
        threading.Thread(target=self._accept, args=(s,), daemon=True).start()

    def down(self):
        # shutdown() wakes the thread blocked in accept(); close() alone would leave it accepting.
        try:
            self.listener.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass
        self.listener.close()
        with self.lock:
            for c in self.conns:
                try:
                    c.shutdown(socket.SHUT_RDWR)
                except OSError:
                    pass
                c.close()
            self.conns.clear()

    def _accept(self, listener):
        while True:
            try:
                client, _ = listener.accept()
            except OSError:
                return
            try:
                server = socket.create_connection(("127.0.0.1", self.target))
            except OSError:
                client.close()
                continue
            for s in (client, server):
                s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            with self.lock:
                self.conns += [client, server]
            threading.Thread(target=self._pipe, args=(client, server), daemon=True).start()
            threading.Thread(target=self._pipe, args=(server, client), daemon=True).start()

    @staticmethod
    def _pipe(src, dst):
        try:
            while True:
                data = src.recv(65536)
                if not data:
                    break
                dst.sendall(data)
        except OSError:
            pass
        for s in (src, dst):
            try:
                s.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass


# --- the cloud ---------------------------------------------------------------------------------


class Arrivals:
    """Every id the cloud received, how often, and when the last one came."""

    def __init__(self):
        self.lock = threading.Lock()
        self.counts = {}
        self.first = {}
        self.last = 0.0

    def record(self, ids):
        now = time.time()
        with self.lock:
            for i in ids:
                self.counts[i] = self.counts.get(i, 0) + 1
                self.first.setdefault(i, now)
            if ids:
                self.last = now

    def snapshot(self):
        with self.lock:
            return dict(self.counts), self.last


def ids_in(value, found):
    """Ids anywhere in a JSON document: values of keys named `id` that are UUIDs."""
    if isinstance(value, dict):
        for k, v in value.items():
            if k == "id" and isinstance(v, str) and UUID_RE.match(v):
                found.add(v)
            else:
                ids_in(v, found)
    elif isinstance(value, list):
        for v in value:
            ids_in(v, found)
    return found


class HttpCloud:
    def __init__(self):
        self.arrivals = Arrivals()
        arrivals = self.arrivals

        class Handler(http.server.BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_POST(self):
                body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
                try:
                    arrivals.record(ids_in(json.loads(body), set()))
                except ValueError:
                    pass
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", "2")
                self.end_headers()
                self.wfile.write(b"{}")

            def log_message(self, *args):
                pass

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.port = self.server.server_address[1]
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self):
        self.server.shutdown()


class MqttCloud:
    """A mosquitto standing in for the cloud broker, and a persistent QoS 1 subscriber."""

    def __init__(self, work):
        self.arrivals = Arrivals()
        self.port = free_port()
        conf = os.path.join(work, "cloud-mosquitto.conf")
        with open(conf, "w") as f:
            f.write(f"listener {self.port} 127.0.0.1\nallow_anonymous true\nmax_queued_messages 0\n{run_as()}")
        self.broker = Process(["mosquitto", "-c", conf], os.path.join(work, "cloud-mosquitto.log"))
        self.broker.start()
        wait_port(self.port)
        self.client = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id="cloud-recorder", clean_session=False)
        self.client.on_message = lambda c, u, m: self._message(m)
        self.client.connect("127.0.0.1", self.port)
        self.client.subscribe("#", qos=1)
        self.client.loop_start()

    def _message(self, m):
        # ThingsBoard's gateway holds back all data until the platform answers its session-limits
        # RPC; answer as a ThingsBoard without rate limits would.
        request = re.fullmatch(r"v1/devices/me/rpc/request/(\d+)", m.topic)
        if request:
            limits = {"rateLimits": {}, "gatewayRateLimits": {}, "maxInflightMessages": 100, "maxPayloadSize": 65536}
            self.client.publish(f"v1/devices/me/rpc/response/{request.group(1)}", json.dumps(limits), qos=1)
            return
        try:
            self.arrivals.record(ids_in(json.loads(m.payload), set()))
        except ValueError:
            pass

    def close(self):
        self.client.loop_stop()
        self.client.disconnect()
        self.broker.stop_and_reap()


# --- the handhelds -----------------------------------------------------------------------------


class Handhelds:
    """`clients` handhelds publishing `n` QoS 1 messages in all at `rate` per second."""

    def __init__(self, broker_port, clients=4, inflight=20):
        self.sent = []  # (paho MessageInfo, id): published once the broker's PUBACK arrived
        self.clients = []
        for k in range(clients):
            c = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id=f"handheld-{k}", clean_session=True)
            c.max_inflight_messages_set(inflight)
            c.connect("127.0.0.1", broker_port)
            c.loop_start()
            self.clients.append(c)

    @property
    def acked(self):
        return {ident for info, ident in self.sent if info.is_published()}

    def publish(self, n, rate, at_half=None):
        start = time.time()
        for i in range(n):
            if at_half and i == n // 2:
                at_half()
            k = i % len(self.clients)
            ident = str(uuid.uuid4())
            payload = json.dumps(
                {"id": ident, "product": {"barcode": "4006381333931"}, "location": "WH/Stock", "quantity": str(i % 7 + 1)}
            )
            self.sent.append((self.clients[k].publish(TOPIC.format(device=f"hh-{k}"), payload, qos=1), ident))
            delay = start + (i + 1) / rate - time.time()
            if delay > 0:
                time.sleep(delay)
        wait_for("every handheld message to be PUBACKed", lambda: all(i.is_published() for i, _ in self.sent), 120)

    def close(self):
        for c in self.clients:
            c.loop_stop()
            c.disconnect()


# --- the systems -------------------------------------------------------------------------------


def run_as():
    """mosquitto started as root drops to user `mosquitto`, which cannot write our folders."""
    return f"user {pwd.getpwuid(os.geteuid()).pw_name}\n"


def gateway_broker(work, port, extra=""):
    """The gateway's own mosquitto (persistence on, as a site would run it)."""
    data = os.path.join(work, "gateway-broker")
    os.makedirs(data, exist_ok=True)
    conf = os.path.join(work, "gateway-mosquitto.conf")
    with open(conf, "w") as f:
        f.write(
            f"listener {port} 127.0.0.1\nallow_anonymous true\npersistence true\n"
            f"persistence_location {data}/\nset_tcp_nodelay true\n{run_as()}{extra}"
        )
    return Process(["mosquitto", "-c", conf], os.path.join(work, "gateway-mosquitto.log"))


class Dockhand:
    name = "dockhand"

    def __init__(self, work, broker_port, uplink_port, exe):
        config = os.path.join(work, "dockhand.toml")
        with open(config, "w") as f:
            f.write(
                f"""[gateway]
id = "bench-gw"
site = "{SITE}"

[store]
path = "dockhand.db"

[mqtt]
host = "127.0.0.1"
port = {broker_port}

[[sink]]
name = "cloud"
type = "http"
url = "http://127.0.0.1:{uplink_port}/events"
batch = {{ max_events = 500, linger = "100ms" }}
"""
            )
        self.proc = Process([exe, "--config", config, "run"], os.path.join(work, "dockhand.log"))

    def start(self):
        self.proc.start_and_wait_for("Subscribed to handheld topics.", "dockhand to subscribe")


class MosquittoBridge:

    def __init__(self, work, broker_port, uplink_port, tuned):
        self.name = "mosquitto bridge (tuned)" if tuned else "mosquitto bridge (defaults)"
        extra = (
            f"connection cloud\naddress 127.0.0.1:{uplink_port}\ntopic warehouse/# out 1\n"
            "cleansession false\nbridge_protocol_version mqttv311\nrestart_timeout 1\n"
        )
        if tuned:
            # Unlimited queue and a snapshot after every change: the most durable mosquitto allows.
            extra = "max_queued_messages 0\nautosave_on_changes true\nautosave_interval 1\n" + extra
        self.proc = gateway_broker(work, broker_port, extra)
        self.port = broker_port

    def start(self):
        self.proc.start_and_wait_for("Connecting bridge", "the bridge to start")
        wait_port(self.port)


class NodeRed:
    name = "Node-RED"

    def __init__(self, work, broker_port, uplink_port, node_red_dir):
        user_dir = os.path.join(work, "node-red")
        os.makedirs(user_dir, exist_ok=True)
        flows = [
            {"id": "tab", "type": "tab", "label": "handhelds"},
            {
                "id": "broker",
                "type": "mqtt-broker",
                "name": "gateway broker",
                "broker": "127.0.0.1",
                "port": str(broker_port),
                "clientid": "node-red-gateway",
                "autoConnect": True,
                "usetls": False,
                "protocolVersion": "4",
                "keepalive": "60",
                "cleansession": False,
            },
            {
                "id": "in",
                "type": "mqtt in",
                "z": "tab",
                "topic": f"warehouse/{SITE}/handheld/+/count",
                "qos": "1",
                "datatype": "json",
                "broker": "broker",
                "nl": False,
                "rap": True,
                "inputs": 0,
                "wires": [["post"]],
            },
            {
                "id": "post",
                "type": "http request",
                "z": "tab",
                "method": "POST",
                "ret": "txt",
                "paytoqs": "ignore",
                "url": f"http://127.0.0.1:{uplink_port}/events",
                "wires": [[]],
            },
        ]
        with open(os.path.join(user_dir, "flows.json"), "w") as f:
            json.dump(flows, f)
        with open(os.path.join(user_dir, "settings.js"), "w") as f:
            f.write(
                "module.exports = { flowFile: 'flows.json', uiPort: %d, uiHost: '127.0.0.1', "
                "httpAdminRoot: false, httpNodeRoot: false, logging: { console: { level: 'info' } } };\n"
                % free_port()
            )
        red = os.path.join(node_red_dir, "node_modules", "node-red", "red.js")
        self.proc = Process(["node", red, "--userDir", user_dir], os.path.join(work, "node-red.log"))

    def start(self):
        self.proc.start_and_wait_for("Connected to broker", "Node-RED to connect")
        time.sleep(0.5)  # it subscribes right after connecting


class ThingsBoardGateway:
    name = "ThingsBoard IoT Gateway"

    def __init__(self, work, broker_port, uplink_port, python):
        home = os.path.join(work, "tb-gateway")
        config_dir = os.path.join(home, "config")
        os.makedirs(config_dir, exist_ok=True)
        os.makedirs(os.path.join(home, "logs"), exist_ok=True)
        package = subprocess.run(
            [python, "-c", "import os, thingsboard_gateway as t; print(os.path.dirname(t.__file__))"],
            check=True,
            capture_output=True,
            text=True,
        ).stdout.strip()
        shutil.copy(os.path.join(package, "config", "logs.json"), config_dir)
        gateway = {
            "thingsboard": {
                "host": "127.0.0.1",
                "port": uplink_port,
                "remoteShell": False,
                "remoteConfiguration": False,
                "statistics": {"enable": False, "statsSendPeriodInSeconds": 3600},
                "deviceFiltering": {"enable": False},
                "checkConnectorsConfigurationInSeconds": 3600,
                "security": {"type": "accessToken", "accessToken": "bench-token"},
                "qos": 1,
                "reportStrategy": {"type": "ON_RECEIVED"},
            },
            "storage": {
                "type": "sqlite",
                "data_file_path": os.path.join(home, "data") + "/",
                "messages_ttl_check_in_hours": 1,
                "messages_ttl_in_days": 7,
                "max_read_records_count": 1000,
            },
            "grpc": {"enabled": False},
            "connectors": [{"type": "mqtt", "name": "handhelds", "configuration": "mqtt.json"}],
        }
        os.makedirs(os.path.join(home, "data"), exist_ok=True)
        connector = {
            "broker": {
                "host": "127.0.0.1",
                "port": broker_port,
                "clientId": "tb-gateway",
                "version": 4,
                "cleanSession": False,
                "security": {"type": "anonymous"},
            },
            "mapping": [
                {
                    "topicFilter": f"warehouse/{SITE}/handheld/+/count",
                    "subscriptionQos": 1,
                    "converter": {
                        "type": "json",
                        "deviceInfo": {
                            "deviceNameExpressionSource": "topic",
                            "deviceNameExpression": "(?<=handheld/)(.*?)(?=/count)",
                            "deviceProfileExpressionSource": "constant",
                            "deviceProfileExpression": "handheld",
                        },
                        "sendDataOnlyOnChange": False,
                        "timeout": 60000,
                        "attributes": [],
                        "timeseries": [
                            {"type": "string", "key": "id", "value": "${id}"},
                            {"type": "string", "key": "quantity", "value": "${quantity}"},
                        ],
                    },
                }
            ],
        }
        with open(os.path.join(config_dir, "tb_gateway.json"), "w") as f:
            json.dump(gateway, f, indent=2)
        with open(os.path.join(config_dir, "mqtt.json"), "w") as f:
            json.dump(connector, f, indent=2)
        env = dict(os.environ, TB_GW_CONFIG_DIR=config_dir)
        self.proc = Process(
            [python, "-c", "from thingsboard_gateway.tb_gateway import daemon; daemon()"],
            os.path.join(work, "tb-gateway.log"),
            cwd=home,
            env=env,
        )
        self.connector_log = os.path.join(home, "logs", "connector.log")

    def start(self):
        # Its connectors start a few seconds in; no log line can be awaited instead, because
        # after the restart it logs "Gateway started." only once the (still cut) uplink is back.
        self.proc.start()
        time.sleep(6)


# --- the scenario ------------------------------------------------------------------------------


def run(system_factory, cloud_kind, args, work):
    shutil.rmtree(work, ignore_errors=True)
    os.makedirs(work)
    broker_port = free_port()
    cloud = HttpCloud() if cloud_kind == "http" else MqttCloud(work)
    uplink = Uplink(cloud.port)
    system = system_factory(work, broker_port, uplink.port)
    shared_broker = None
    if not isinstance(system, MosquittoBridge):
        shared_broker = gateway_broker(work, broker_port)
        shared_broker.start()
        wait_port(broker_port)
    system.start()

    handhelds = Handhelds(broker_port)
    print(f"  {system.name}: publishing {args.events} messages at {args.rate}/s; uplink down half way", flush=True)
    cut = {}

    def uplink_down():
        uplink.down()
        cut["at"] = time.time()

    handhelds.publish(args.events, args.rate, at_half=uplink_down)
    acked = set(handhelds.acked)
    time.sleep(args.kill_after)
    print(f"  {system.name}: {len(acked)} acknowledged; SIGKILL of the gateway process, restart", flush=True)
    system.proc.kill9()
    time.sleep(1)
    system.start()
    time.sleep(3)
    uplink.up()
    back = time.time()
    print(f"  {system.name}: uplink back; waiting for the drain", flush=True)

    def settled():
        counts, last = cloud.arrivals.snapshot()
        if acked <= counts.keys():
            return True
        return time.time() - max(last, back) > args.quiet

    wait_for("the drain to settle", settled, timeout=args.max_drain)
    counts, last = cloud.arrivals.snapshot()
    handhelds.close()
    system.proc.stop_and_reap()
    if shared_broker:
        shared_broker.stop_and_reap()
    cloud.close()

    with cloud.arrivals.lock:
        first = dict(cloud.arrivals.first)
    during_outage = sum(1 for t in first.values() if cut["at"] < t < back)
    lost = len(acked - counts.keys())
    duplicates = sum(c - 1 for c in counts.values())
    drained = last > back and lost == 0
    return {
        "system": system.name,
        "acknowledged": len(acked),
        "delivered": len(acked & counts.keys()),
        "lost": lost,
        "duplicates": duplicates,
        "drain_s": round(last - back, 2) if last > back else None,
        # Only bytes already past the relay when it was cut can land here (a sanity check).
        "arrived_during_outage": during_outage,
        "complete": drained,
        "peak_rss_mb": round(system.proc.usage.peak_rss_kb / 1024, 1),
        "cpu_s": round(system.proc.usage.cpu_s, 2),
        "broker_peak_rss_mb": round(shared_broker.usage.peak_rss_kb / 1024, 1) if shared_broker else None,
        "broker_cpu_s": round(shared_broker.usage.cpu_s, 2) if shared_broker else None,
    }


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--events", type=int, default=10000)
    parser.add_argument("--rate", type=float, default=500.0, help="messages per second from all handhelds")
    parser.add_argument("--quiet", type=float, default=20.0, help="end the drain after this long with no arrivals")
    parser.add_argument("--max-drain", type=float, default=300.0)
    parser.add_argument("--kill-after", type=float, default=0.5, help="seconds from the last PUBACK to the SIGKILL")
    parser.add_argument("--work", default="target/gateway-bench")
    parser.add_argument("--dockhand", default="target/release/dockhand")
    parser.add_argument("--node-red-dir", help="folder with node_modules/node-red")
    parser.add_argument("--tb-python", help="python of a virtualenv with thingsboard-gateway")
    parser.add_argument("--only", help="comma-separated: dockhand,bridge,bridge-tuned,node-red,thingsboard")
    parser.add_argument("--json", help="write the results here as JSON")
    args = parser.parse_args()

    # Each system with the cloud it speaks to: an HTTP receiver, or a broker standing in for
    # the MQTT cloud (the bridge's remote end, ThingsBoard).
    systems = {
        "dockhand": ("http", lambda w, b, u: Dockhand(w, b, u, os.path.abspath(args.dockhand))),
        "bridge": ("mqtt", lambda w, b, u: MosquittoBridge(w, b, u, tuned=False)),
        "bridge-tuned": ("mqtt", lambda w, b, u: MosquittoBridge(w, b, u, tuned=True)),
        "node-red": ("http", lambda w, b, u: NodeRed(w, b, u, os.path.abspath(args.node_red_dir))),
        "thingsboard": ("mqtt", lambda w, b, u: ThingsBoardGateway(w, b, u, os.path.abspath(args.tb_python))),
    }
    chosen = args.only.split(",") if args.only else list(systems)
    results = []
    for key in chosen:
        cloud_kind, factory = systems[key]
        print(f"== {key}", flush=True)
        results.append(run(factory, cloud_kind, args, os.path.abspath(os.path.join(args.work, key))))
        print(f"  {json.dumps(results[-1])}", flush=True)

    print()
    print("| system | acknowledged | lost | duplicates | drain after uplink returns | peak RSS | CPU s | broker peak RSS | broker CPU s |")
    print("| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |")
    for r in results:
        drain = f"{r['drain_s']} s" if r["drain_s"] is not None else "—"
        if not r["complete"]:
            drain += " (incomplete)"
        broker_rss = f"{r['broker_peak_rss_mb']} MB" if r["broker_peak_rss_mb"] is not None else "(is the gateway)"
        broker_cpu = r["broker_cpu_s"] if r["broker_cpu_s"] is not None else "—"
        print(
            f"| {r['system']} | {r['acknowledged']} | {r['lost']} | {r['duplicates']} | {drain} | "
            f"{r['peak_rss_mb']} MB | {r['cpu_s']} | {broker_rss} | {broker_cpu} |"
        )
    if args.json:
        with open(args.json, "w") as f:
            json.dump(results, f, indent=2)


if __name__ == "__main__":
    sys.exit(main())
