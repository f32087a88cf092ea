//! `dockhand bench ingest`: handheld traffic through a real mosquitto into the real daemon.
//!
//! In one run, on one broker:
//! 1. **Ceiling**: 8 publishers send QoS 1 messages that a plain subscriber receives and acks at
//!    once — how fast this broker and machine move QoS 1 messages at all.
//! 2. **dockhand**: the same 8 publishers send handheld messages; throughput counts a message when
//!    dockhand's `ack` reply arrives, i.e. after the event is durable.
//! 3. **Relay ceiling**: the same handheld traffic through a subscriber that stores nothing and
//!    answers each message on its `ack` topic at once (QoS 1, the same `…/handheld/#` subscription
//!    that echoes the answers back): the broker work of dockhand's contract, without its store.
//! 4. **Latency**: at a steady 1 000 messages/s, the time from publish to the `ack` reply.

use std::collections::HashMap;
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use rumqttc::{AsyncClient, Event, MqttOptions, Packet, QoS};
use serde_json::json;

const PUBLISHERS: usize = 8;

pub fn run(dir: &Path, messages: u64, inflight: u16) -> Result<(), String> {
    std::fs::create_dir_all(dir).map_err(|e| e.to_string())?;
    let port = free_port()?;
    let mut broker = start_mosquitto(dir, port, inflight)?;
    let result = (|| {
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .map_err(|e| e.to_string())?;
        let ceiling = rt.block_on(ceiling(port, messages))?;
        let relay = rt.block_on(relay_ceiling(port, messages, Relay::AS_CONTRACTED))?;
        // What each contract change would buy: no echo (subscribing to known kinds only, so
        // unknown kinds and wrong topic shapes would get no answer), or answers at QoS 0.
        let relay_no_echo =
            rt.block_on(relay_ceiling(port, messages, Relay { echo: false, ..Relay::AS_CONTRACTED }))?;
        let relay_qos0 =
            rt.block_on(relay_ceiling(port, messages, Relay { answer_qos: QoS::AtMostOnce, ..Relay::AS_CONTRACTED }))?;
        let mut daemon = start_daemon(dir, port)?;
        let cpu_before = (crate::bench::cpu_seconds(daemon.id()), crate::bench::cpu_seconds(broker.id()));
        let outcome = rt.block_on(async {
            // Latency first, on a fresh store, so the throughput run's backlog does not colour it.
            let latency = through_dockhand(port, 10_000, Some(1000.0)).await?;
            let cpu_mid = (crate::bench::cpu_seconds(daemon.id()), crate::bench::cpu_seconds(broker.id()));
            let started = Instant::now();
            let ingest = through_dockhand(port, messages, None).await?;
            let wall = started.elapsed().as_secs_f64();
            let cpu_after = (crate::bench::cpu_seconds(daemon.id()), crate::bench::cpu_seconds(broker.id()));
            println!(
                "CPU during the throughput run: dockhand {:.0}% of one core, mosquitto {:.0}% (wall {wall:.1} s)",
                (cpu_after.0 - cpu_mid.0) * 100.0 / wall,
                (cpu_after.1 - cpu_mid.1) * 100.0 / wall
            );
            Ok::<_, String>((ingest, latency))
        });
        let _ = cpu_before;
        let _ = std::process::Command::new("kill").arg("-TERM").arg(daemon.id().to_string()).status();
        let _ = daemon.wait();
        let (ingest, latency) = outcome?;
        let mut lat = latency.latencies_ms;
        lat.sort_by(f64::total_cmp);
        let pct = |p: f64| {
            lat.get(((lat.len() as f64 * p) as usize).min(lat.len().saturating_sub(1))).copied().unwrap_or(f64::NAN)
        };
        println!(
            "broker: mosquitto, max_inflight_messages {inflight}; {PUBLISHERS} publishers, QoS 1, {messages} messages per phase"
        );
        println!("ceiling (plain subscriber, acks at once)   {:>9.0} msg/s", ceiling);
        println!(
            "relay (same packets as dockhand, no store) {:>9.0} msg/s  = {:.0}% of the ceiling",
            relay,
            relay * 100.0 / ceiling
        );
        println!(
            "  relay without the echo (known kinds only) {:>8.0} msg/s  = {:.0}% of the ceiling",
            relay_no_echo,
            relay_no_echo * 100.0 / ceiling
        );
        println!(
            "  relay answering at QoS 0                 {:>8.0} msg/s  = {:.0}% of the ceiling",
            relay_qos0,
            relay_qos0 * 100.0 / ceiling
        );
        println!(
            "dockhand (publish -> durable -> ack reply) {:>9.0} msg/s  = {:.0}% of the ceiling, {:.0}% of the relay",
            ingest.rate,
            ingest.rate * 100.0 / ceiling,
            ingest.rate * 100.0 / relay
        );
        println!(
            "latency at 1000 msg/s, publish -> ack reply: p50 {:.1} ms, p99 {:.1} ms, max {:.1} ms ({} messages)",
            pct(0.50),
            pct(0.99),
            lat.last().copied().unwrap_or(f64::NAN),
            lat.len()
        );
        Ok(())
    })();
    let _ = broker.kill();
    let _ = broker.wait();
    result
}

fn free_port() -> Result<u16, String> {
    std::net::TcpListener::bind("127.0.0.1:0").and_then(|l| l.local_addr()).map(|a| a.port()).map_err(|e| e.to_string())
}

fn start_mosquitto(dir: &Path, port: u16, inflight: u16) -> Result<std::process::Child, String> {
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

fn start_daemon(dir: &Path, port: u16) -> Result<std::process::Child, String> {
    let _ = std::fs::remove_file(dir.join("ingest.db"));
    let _ = std::fs::remove_file(dir.join("ingest.db-wal"));
    let config = dir.join("ingest.toml");
    std::fs::write(
        &config,
        format!("[gateway]\nid = \"bench-gw\"\nsite = \"BENCH\"\n\n[store]\npath = \"ingest.db\"\nmax_bytes = \"8GiB\"\n\n[mqtt]\nhost = \"127.0.0.1\"\nport = {port}\n"),
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
    let (c, mut events) = AsyncClient::new(o, 10_000);
    crate::sources::mqtt::source::no_delay(&mut events);
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

/// How the relay subscribes and answers.
#[derive(Debug, Clone, Copy)]
struct Relay {
    /// Subscribe to `…/handheld/#` (its own answers come back) rather than `…/handheld/+/count`.
    echo: bool,
    answer_qos: QoS,
}

impl Relay {
    /// What dockhand does under contracts.md §2.
    const AS_CONTRACTED: Relay = Relay { echo: true, answer_qos: QoS::AtLeastOnce };
}

/// The relay: subscribes like dockhand (`…/handheld/#`, QoS 1), and answers every handheld
/// message on its `ack` topic at once without storing anything; a listener counts the answers.
async fn relay_ceiling(port: u16, messages: u64, how: Relay) -> Result<f64, String> {
    const PREFIX: &str = "warehouse/RELAY/handheld";
    let (relay, events) = client(port, &format!("bench-relay-{}", fastrand::u32(..)));
    let filter = if how.echo { format!("{PREFIX}/#") } else { format!("{PREFIX}/+/count") };
    relay.subscribe(filter, QoS::AtLeastOnce).await.map_err(|e| e.to_string())?;
    let (answers_tx, mut answers) = tokio::sync::mpsc::unbounded_channel::<(String, String)>();
    let _ = subscriber_with_topic(events, move |topic, payload| {
        // Its own answers come back through `#`, as dockhand's do; they are not answered.
        let Some(device) = topic.strip_prefix(PREFIX).and_then(|t| t.strip_prefix('/')).and_then(|t| t.split_once('/'))
        else {
            return;
        };
        if device.1 == "ack" {
            return;
        }
        let id =
            serde_json::from_slice::<serde_json::Value>(payload).ok().and_then(|v| v["id"].as_str().map(str::to_owned));
        let _ =
            answers_tx.send((format!("{PREFIX}/{}/ack", device.0), json!({"id": id, "status": "stored"}).to_string()));
    })
    .await;
    let answering = relay.clone();
    tokio::spawn(async move {
        while let Some((topic, body)) = answers.recv().await {
            if answering.publish(topic, how.answer_qos, false, body).await.is_err() {
                return;
            }
        }
    });
    let (listener, events) = client(port, &format!("bench-relay-listener-{}", fastrand::u32(..)));
    listener.subscribe(format!("{PREFIX}/+/ack"), QoS::AtMostOnce).await.map_err(|e| e.to_string())?;
    let answered = Arc::new(Mutex::new(0u64));
    let a = answered.clone();
    let _ = subscriber(events, move |_| *a.lock().unwrap_or_else(|e| e.into_inner()) += 1).await;
    let want = messages / PUBLISHERS as u64 * PUBLISHERS as u64;
    let start = Instant::now();
    publish_all(port, messages, None, Arc::default(), |p| format!("{PREFIX}/relay-hh-{p}/count")).await;
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

async fn through_dockhand(port: u16, messages: u64, rate: Option<f64>) -> Result<Ingest, String> {
    let (sub, events) = client(port, &format!("bench-acks-{}", fastrand::u32(..)));
    sub.subscribe("warehouse/BENCH/handheld/+/ack", QoS::AtMostOnce).await.map_err(|e| e.to_string())?;
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
    subscriber_with_topic(events, move |_, payload| on_message(payload))
}

/// [`subscriber`], with each message's topic.
fn subscriber_with_topic(
    mut events: rumqttc::EventLoop,
    mut on_message: impl FnMut(&str, &[u8]) + Send + 'static,
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
                Event::Incoming(Packet::Publish(p)) => on_message(&p.topic, &p.payload),
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
