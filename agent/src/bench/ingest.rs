//! `dockhand bench ingest`: handheld traffic through a real mosquitto into the real daemon.
//!
//! In one run, on one broker:
//! 1. **Ceiling**: 8 publishers send QoS 1 messages that a plain subscriber receives and acks at
//!    once — how fast this broker and machine move QoS 1 messages at all.
//! 2. **Relays**: the same handheld traffic through a subscriber that stores nothing and answers
//!    each message at once, subscribed like dockhand (`…/handheld/#`, QoS 1) and acking as the
//!    contract orders (manual acks: the PUBACK after the answer, in arrival order): the MQTT work
//!    of the contract without a store — for v2 answers (`…/reply/<device>/ack`, no echo) at QoS 1
//!    and 0, and v1 answers (`…/handheld/<device>/ack`, echoed back to the relay). One more relay
//!    acks on receipt (rumqttc's automatic acks, the reference of earlier runs), for comparison.
//! 3. **dockhand**, for each reply layout, reply QoS and protocol version: throughput counts a
//!    message when dockhand's `ack` answer arrives, i.e. after the event is durable, and each
//!    variant is compared with the relay doing the same MQTT work.
//! 4. **Latency**: at a steady 1 000 messages/s, the time from publish to the `ack` answer.
//!
//! The load generators, the ceiling's subscriber and the relays are plain rumqttc clients on
//! purpose, not [`crate::mqtt`]'s: the reference must not share dockhand's code path.

use std::collections::HashMap;
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use rumqttc::{AsyncClient, Event, MqttOptions, Packet, QoS};
use serde_json::json;

const PUBLISHERS: usize = 8;

/// One way dockhand can be set up to answer handhelds.
#[derive(Debug, Clone, Copy)]
struct Variant {
    /// `[mqtt] replies`: true for the v2 layout.
    v2: bool,
    reply_qos: u8,
    mqtt5: bool,
}

impl Variant {
    const DEFAULT: Variant = Variant { v2: true, reply_qos: 1, mqtt5: false };

    fn label(self) -> String {
        format!("replies {}, QoS {}, MQTT {}", self.layout(), self.reply_qos, self.protocol())
    }

    fn config(self) -> String {
        format!("replies = \"{}\"\nreply_qos = {}\nprotocol = \"{}\"\n", self.layout(), self.reply_qos, self.protocol())
    }

    fn layout(self) -> &'static str {
        if self.v2 { "v2" } else { "v1" }
    }

    fn protocol(self) -> &'static str {
        if self.mqtt5 { "5" } else { "3.1.1" }
    }

    /// Where the answers of `prefix`'s handhelds go.
    fn answers(self, prefix: &str) -> String {
        if self.v2 { format!("{prefix}/reply/+/ack") } else { format!("{prefix}/handheld/+/ack") }
    }
}

pub(crate) fn run(dir: &Path, messages: u64, inflight: u16) -> Result<(), String> {
    std::fs::create_dir_all(dir).map_err(|e| e.to_string())?;
    let port = free_port()?;
    let mut broker = start_mosquitto(dir, port, inflight)?;
    let result = (|| {
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .map_err(|e| e.to_string())?;
        println!(
            "broker: mosquitto, max_inflight_messages {inflight}; {PUBLISHERS} publishers, QoS 1, {messages} messages per phase"
        );
        let ceiling = rt.block_on(ceiling(port, messages))?;
        println!("ceiling (plain subscriber, acks at once)        {ceiling:>9.0} msg/s");
        let variants = [
            Variant::DEFAULT,
            Variant { reply_qos: 0, ..Variant::DEFAULT },
            Variant { v2: false, ..Variant::DEFAULT },
            Variant { mqtt5: true, ..Variant::DEFAULT },
        ];
        let mut relays: HashMap<(bool, u8), f64> = HashMap::new();
        for v in variants {
            if let std::collections::hash_map::Entry::Vacant(slot) = relays.entry((v.v2, v.reply_qos)) {
                let rate = rt.block_on(relay_ceiling(port, messages, v, RelayAcks::Contract))?;
                println!(
                    "relay, {:<28} {rate:>9.0} msg/s = {:.0}% of the ceiling",
                    format!("replies {}, QoS {}:", if v.v2 { "v2" } else { "v1" }, v.reply_qos),
                    rate * 100.0 / ceiling
                );
                slot.insert(rate);
            }
        }
        let on_receipt = rt.block_on(relay_ceiling(port, messages, Variant::DEFAULT, RelayAcks::OnReceipt))?;
        println!(
            "relay, replies v2, QoS 1, acks on receipt: {on_receipt:>9.0} msg/s = {:.0}% of the ceiling (not the contract's order; the reference before 12-07 evening)",
            on_receipt * 100.0 / ceiling
        );
        for (n, v) in variants.into_iter().enumerate() {
            let mut daemon = start_daemon(dir, port, v)?;
            let outcome = rt.block_on(async {
                // Latency once, for the default, on a fresh store, before any backlog.
                let latency = if n == 0 { Some(through_dockhand(port, 10_000, Some(1000.0), v).await?) } else { None };
                let cpu_before = (super::cpu_seconds(daemon.id()), super::cpu_seconds(broker.id()));
                let started = Instant::now();
                let ingest = through_dockhand(port, messages, None, v).await?;
                let wall = started.elapsed().as_secs_f64();
                let cpu_after = (super::cpu_seconds(daemon.id()), super::cpu_seconds(broker.id()));
                let cpu = ((cpu_after.0 - cpu_before.0) * 100.0 / wall, (cpu_after.1 - cpu_before.1) * 100.0 / wall);
                let per_message_us = (cpu_after.0 - cpu_before.0) * 1e6 / ingest.latencies_ms.len().max(1) as f64;
                Ok::<_, String>((ingest, latency, cpu, per_message_us))
            });
            let _ = std::process::Command::new("kill").arg("-TERM").arg(daemon.id().to_string()).status();
            let _ = daemon.wait();
            let (ingest, latency, cpu, per_message_us) = outcome?;
            let relay = relays[&(v.v2, v.reply_qos)];
            println!(
                "dockhand, {:<29} {:>9.0} msg/s = {:.0}% of the ceiling, {:.0}% of its relay (dockhand {:.0}% of a core, {per_message_us:.0} µs CPU per message; mosquitto {:.0}%)",
                format!("{}:", v.label()),
                ingest.rate,
                ingest.rate * 100.0 / ceiling,
                ingest.rate * 100.0 / relay,
                cpu.0,
                cpu.1
            );
            if let Some(latency) = latency {
                let mut lat = latency.latencies_ms;
                lat.sort_by(f64::total_cmp);
                let pct = |p: f64| {
                    lat.get(((lat.len() as f64 * p) as usize).min(lat.len().saturating_sub(1)))
                        .copied()
                        .unwrap_or(f64::NAN)
                };
                println!(
                    "latency at 1000 msg/s ({}), publish -> ack: p50 {:.1} ms, p99 {:.1} ms, max {:.1} ms ({} messages)",
                    v.label(),
                    pct(0.50),
                    pct(0.99),
                    lat.last().copied().unwrap_or(f64::NAN),
                    lat.len()
                );
            }
        }
        Ok(())
    })();
    let _ = broker.kill();
    let _ = broker.wait();
    result
}

pub(super) fn free_port() -> Result<u16, String> {
    std::net::TcpListener::bind("127.0.0.1:0").and_then(|l| l.local_addr()).map(|a| a.port()).map_err(|e| e.to_string())
}

pub(super) fn start_mosquitto(dir: &Path, port: u16, inflight: u16) -> Result<std::process::Child, String> {
    let conf = dir.join("mosquitto.conf");
    let store = dir.join("mosquitto");
    let _ = std::fs::remove_dir_all(&store);
    std::fs::create_dir_all(&store).map_err(|e| e.to_string())?;
    std::fs::write(
        &conf,
        format!(
            "listener {port} 127.0.0.1\nallow_anonymous true\npersistence true\npersistence_location {}/\nmax_queued_messages 0\nmax_inflight_messages {inflight}\nset_tcp_nodelay true\nuser root\nlog_dest none\n",
            store.display()
        ),
    )
    .map_err(|e| e.to_string())?;
    let child = std::process::Command::new("mosquitto")
        .arg("-c")
        .arg(&conf)
        .stderr(std::process::Stdio::null())
        .spawn()
        .map_err(|e| format!("cannot start mosquitto (apt-get install mosquitto): {e}"))?;
    let deadline = Instant::now() + Duration::from_secs(5);
    while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
        if Instant::now() > deadline {
            return Err("mosquitto did not start".into());
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    Ok(child)
}

fn start_daemon(dir: &Path, port: u16, variant: Variant) -> Result<std::process::Child, String> {
    let _ = std::fs::remove_file(dir.join("ingest.db"));
    let _ = std::fs::remove_file(dir.join("ingest.db-wal"));
    let config = dir.join("ingest.toml");
    std::fs::write(
        &config,
        format!(
            "[gateway]\nid = \"bench-gw\"\nsite = \"BENCH\"\n\n[store]\npath = \"ingest.db\"\nmax_bytes = \"8GiB\"\n\n[mqtt]\nhost = \"127.0.0.1\"\nport = {port}\n{}",
            variant.config()
        ),
    )
    .map_err(|e| e.to_string())?;
    let exe = std::env::current_exe().map_err(|e| e.to_string())?;
    let mut child = std::process::Command::new(exe)
        .arg("--config")
        .arg(&config)
        .arg("run")
        .env("RUST_LOG", "info")
        .stderr(std::process::Stdio::piped())
        .spawn()
        .map_err(|e| e.to_string())?;
    let stderr = child.stderr.take().ok_or("no stderr")?;
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        use std::io::BufRead;
        for line in std::io::BufReader::new(stderr).lines().map_while(Result::ok) {
            if line.contains("Subscribed to handheld topics.") {
                let _ = tx.send(());
            }
            if line.contains("WARN") || line.contains("ERROR") {
                eprintln!("dockhand: {line}");
            }
        }
    });
    rx.recv_timeout(Duration::from_secs(20)).map_err(|_| "dockhand did not subscribe within 20 s")?;
    Ok(child)
}

fn client(port: u16, id: &str) -> (AsyncClient, rumqttc::EventLoop) {
    let mut o = MqttOptions::new(id, "127.0.0.1", port);
    o.set_keep_alive(Duration::from_secs(30));
    o.set_inflight(1000);
    connected(o, 10_000)
}

/// A client for `o` with a request queue of `queue`.
fn connected(o: MqttOptions, queue: usize) -> (AsyncClient, rumqttc::EventLoop) {
    let (c, mut events) = AsyncClient::new(o, queue);
    // TCP_NODELAY, as crate::mqtt::connect sets it for dockhand's own connections.
    let mut network = events.network_options();
    network.set_tcp_nodelay(true);
    events.set_network_options(network);
    (c, events)
}

/// Spawns 8 publishers sending `messages` in total on topics from `topic(n)`, `rate` per second
/// overall (None: as fast as possible). Returns when all are queued.
async fn publish_all(
    port: u16,
    messages: u64,
    rate: Option<f64>,
    sent: Arc<Mutex<HashMap<String, Instant>>>,
    topic: impl Fn(usize) -> String + Send + Sync + Clone + 'static,
) {
    let per = messages / PUBLISHERS as u64;
    let mut tasks = Vec::new();
    for p in 0..PUBLISHERS {
        let (c, mut ev) = client(port, &format!("bench-pub-{p}-{}", fastrand::u32(..)));
        tokio::spawn(async move { while ev.poll().await.is_ok() {} });
        let sent = sent.clone();
        let topic = topic.clone();
        tasks.push(tokio::spawn(async move {
            let gap = rate.map(|r| Duration::from_secs_f64(PUBLISHERS as f64 / r));
            let mut tick = gap.map(tokio::time::interval);
            for n in 0..per {
                if let Some(t) = tick.as_mut() {
                    t.tick().await;
                }
                let id = crate::event::new_event_id().to_string();
                let body = json!({"id": id, "product": {"barcode": "4006381333931"}, "location": "WH/Stock", "quantity": (n % 9 + 1).to_string()});
                sent.lock().unwrap_or_else(|e| e.into_inner()).insert(id, Instant::now());
                let _ = c.publish(topic(p), QoS::AtLeastOnce, false, body.to_string()).await;
            }
            c
        }));
    }
    for t in tasks {
        let _ = t.await;
    }
}

async fn ceiling(port: u16, messages: u64) -> Result<f64, String> {
    let (sub, events) = client(port, "bench-ceiling-sub");
    sub.subscribe("bench/ceiling/#", QoS::AtLeastOnce).await.map_err(|e| e.to_string())?;
    let received = Arc::new(Mutex::new(0u64));
    let r = received.clone();
    let _ = subscriber(events, move |_| *r.lock().unwrap_or_else(|e| e.into_inner()) += 1).await;
    let start = Instant::now();
    let want = messages / PUBLISHERS as u64 * PUBLISHERS as u64;
    publish_all(port, messages, None, Arc::default(), |p| format!("bench/ceiling/{p}")).await;
    wait_for(|| *received.lock().unwrap_or_else(|e| e.into_inner()) >= want, Duration::from_secs(300)).await?;
    let rate = want as f64 / start.elapsed().as_secs_f64();
    let _ = sub.disconnect().await;
    Ok(rate)
}

/// How the relay acknowledges the handheld messages it answers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum RelayAcks {
    /// As the contract orders it (contracts.md §2): manual acks, each PUBACK sent after the
    /// message's answer, in arrival order — the MQTT work dockhand must do, minus the store.
    Contract,
    /// rumqttc's automatic acks, sent as each message is read: cheaper than the contract allows
    /// (the PUBACKs leave with the read batch, not as requests of their own). The reference of the
    /// runs before 12-07 evening, printed for comparison.
    OnReceipt,
}

/// The relay: subscribes like dockhand (`…/handheld/#`, QoS 1) and answers every handheld message
/// at once, as `how` says (v2: on `…/reply/<device>/ack`; v1: on `…/handheld/<device>/ack`, which
/// its own subscription echoes back), without storing anything; a listener counts the answers.
async fn relay_ceiling(port: u16, messages: u64, how: Variant, acks: RelayAcks) -> Result<f64, String> {
    const PREFIX: &str = "warehouse/RELAY";
    let mut o = MqttOptions::new(format!("bench-relay-{}", fastrand::u32(..)), "127.0.0.1", port);
    o.set_keep_alive(Duration::from_secs(30));
    // dockhand's window for its own answers (sources/mqtt/source.rs), so that answers waiting for
    // their PUBACKs never hold the relay's acks back either.
    o.set_inflight(4096);
    o.set_manual_acks(acks == RelayAcks::Contract);
    let (relay, events) = connected(o, 16 * 1024);
    let (answers_tx, mut answers) = tokio::sync::mpsc::unbounded_channel::<(String, String, rumqttc::Publish)>();
    let ready = on_publish(events, move |p| {
        let Some((device, kind)) =
            p.topic.strip_prefix(PREFIX).and_then(|t| t.strip_prefix("/handheld/")).and_then(|t| t.split_once('/'))
        else {
            return;
        };
        // v1: its own answers come back through `#`, as dockhand's do; they are acked, not
        // answered.
        let topic = (kind != "ack").then(|| {
            if how.v2 { format!("{PREFIX}/reply/{device}/ack") } else { format!("{PREFIX}/handheld/{device}/ack") }
        });
        let id = serde_json::from_slice::<serde_json::Value>(&p.payload)
            .ok()
            .and_then(|v| v["id"].as_str().map(str::to_owned));
        let body = json!({"id": id, "status": "stored"}).to_string();
        let _ = answers_tx.send((topic.unwrap_or_default(), body, p));
    });
    relay.subscribe(format!("{PREFIX}/handheld/#"), QoS::AtLeastOnce).await.map_err(|e| e.to_string())?;
    let answering = relay.clone();
    let qos = if how.reply_qos == 0 { QoS::AtMostOnce } else { QoS::AtLeastOnce };
    tokio::spawn(async move {
        // One task answers and acks, in arrival order, as dockhand's acker does.
        while let Some((topic, body, publish)) = answers.recv().await {
            if !topic.is_empty() && answering.publish(topic, qos, false, body).await.is_err() {
                return;
            }
            if acks == RelayAcks::Contract && answering.ack(&publish).await.is_err() {
                return;
            }
        }
    });
    let _ = ready.await;
    let (listener, events) = client(port, &format!("bench-relay-listener-{}", fastrand::u32(..)));
    listener.subscribe(how.answers(PREFIX), QoS::AtMostOnce).await.map_err(|e| e.to_string())?;
    let answered = Arc::new(Mutex::new(0u64));
    let a = answered.clone();
    let _ = subscriber(events, move |_| *a.lock().unwrap_or_else(|e| e.into_inner()) += 1).await;
    let want = messages / PUBLISHERS as u64 * PUBLISHERS as u64;
    let start = Instant::now();
    publish_all(port, messages, None, Arc::default(), |p| format!("{PREFIX}/handheld/relay-hh-{p}/count")).await;
    wait_for(|| *answered.lock().unwrap_or_else(|e| e.into_inner()) >= want, Duration::from_secs(300)).await?;
    let rate = want as f64 / start.elapsed().as_secs_f64();
    // Leave the broker as found: a relay still subscribed would answer the next phase too.
    let _ = relay.disconnect().await;
    let _ = listener.disconnect().await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    Ok(rate)
}

#[derive(Debug)]
struct Ingest {
    rate: f64,
    latencies_ms: Vec<f64>,
}

async fn through_dockhand(port: u16, messages: u64, rate: Option<f64>, variant: Variant) -> Result<Ingest, String> {
    let (sub, events) = client(port, &format!("bench-acks-{}", fastrand::u32(..)));
    sub.subscribe(variant.answers("warehouse/BENCH"), QoS::AtMostOnce).await.map_err(|e| e.to_string())?;
    let sent: Arc<Mutex<HashMap<String, Instant>>> = Arc::default();
    let latencies = Arc::new(Mutex::new(Vec::new()));
    let (s, l) = (sent.clone(), latencies.clone());
    let _ = subscriber(events, move |payload| {
        let Ok(v) = serde_json::from_slice::<serde_json::Value>(payload) else { return };
        let Some(id) = v["id"].as_str() else { return };
        if let Some(t) = s.lock().unwrap_or_else(|e| e.into_inner()).get(id) {
            l.lock().unwrap_or_else(|e| e.into_inner()).push(t.elapsed().as_secs_f64() * 1000.0);
        }
    })
    .await;
    let want = (messages / PUBLISHERS as u64 * PUBLISHERS as u64) as usize;
    let start = Instant::now();
    publish_all(port, messages, rate, sent, |p| format!("warehouse/BENCH/handheld/bench-hh-{p}/count")).await;
    wait_for(|| latencies.lock().unwrap_or_else(|e| e.into_inner()).len() >= want, Duration::from_secs(600)).await?;
    let elapsed = start.elapsed().as_secs_f64();
    let latencies_ms = latencies.lock().unwrap_or_else(|e| e.into_inner()).clone();
    Ok(Ingest { rate: want as f64 / elapsed, latencies_ms })
}

/// Drives a subscriber's event loop, handing each message's payload to `on_message`; completes
/// once the broker has confirmed the subscription.
fn subscriber(
    events: rumqttc::EventLoop,
    mut on_message: impl FnMut(&[u8]) + Send + 'static,
) -> tokio::sync::oneshot::Receiver<()> {
    on_publish(events, move |p| on_message(&p.payload))
}

/// [`subscriber`], handing on each PUBLISH whole (a client with manual acks acks it later).
fn on_publish(
    mut events: rumqttc::EventLoop,
    mut handle: impl FnMut(rumqttc::Publish) + Send + 'static,
) -> tokio::sync::oneshot::Receiver<()> {
    let (ready_tx, ready_rx) = tokio::sync::oneshot::channel();
    tokio::spawn(async move {
        let mut ready = Some(ready_tx);
        while let Ok(ev) = events.poll().await {
            match ev {
                Event::Incoming(Packet::SubAck(_)) => {
                    if let Some(tx) = ready.take() {
                        let _ = tx.send(());
                    }
                }
                Event::Incoming(Packet::Publish(p)) => handle(p),
                _ => {}
            }
        }
    });
    ready_rx
}

async fn wait_for(mut done: impl FnMut() -> bool, limit: Duration) -> Result<(), String> {
    let deadline = Instant::now() + limit;
    while !done() {
        if Instant::now() > deadline {
            return Err(format!("not finished within {limit:?}"));
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    Ok(())
}
