//! Handhelds over MQTT, end to end: the daemon as a real process, against its embedded broker
//! (rumqttd, hermetic) and against a real mosquitto with persistence — with SIGKILLs of the
//! daemon, a broker restart, malformed input, and TLS with a test CA.

#![allow(clippy::unwrap_used)] // test code: a panic is the failure report

use std::collections::HashSet;
use std::time::Duration;

use dockhand_tests::mqtt::{
    Mosquitto, Publisher, ReplyListener, TestPki, V5Handheld, count_message, free_port, mosquitto_available,
    stored_counts,
};
use dockhand_tests::{Site, wait_until};

const EXE: &str = env!("CARGO_BIN_EXE_dockhand-e2e");
const PREFIX: &str = "warehouse/T1";

fn config(site: &Site, port: u16, extra: &str) {
    site.write_config(&format!(
        "[mqtt]\nhost = \"127.0.0.1\"\nport = {port}\nkeep_alive = \"5s\"\n{extra}\n\
         [[sink]]\nname = \"archive\"\ntype = \"file\"\npath = \"archive.ndjson\"\n"
    ));
}

/// A site whose daemon listens to a fresh mosquitto and has subscribed (None: no mosquitto here).
fn site_on_mosquitto() -> Option<(Site, Mosquitto, dockhand_tests::Daemon)> {
    site_on_mosquitto_with("")
}

/// The same, with extra lines in `[mqtt]` (`protocol = "5"`, `replies = "v1"`).
fn site_on_mosquitto_with(mqtt: &str) -> Option<(Site, Mosquitto, dockhand_tests::Daemon)> {
    if !mosquitto_available() {
        return None;
    }
    let site = Site::new(EXE);
    let broker = Mosquitto::start(site.dir.path());
    config(&site, broker.port, mqtt);
    let daemon = site.start();
    subscribed(&daemon);
    Some((site, broker, daemon))
}

/// A site whose daemon runs its embedded broker (rumqttd) and has subscribed to it.
fn site_on_embedded_broker() -> (Site, u16, dockhand_tests::Daemon) {
    let site = Site::new(EXE);
    let port = free_port();
    config(&site, port, &format!("[broker]\nlisten = \"127.0.0.1:{port}\"\n"));
    let daemon = site.start();
    subscribed(&daemon);
    (site, port, daemon)
}

fn subscribed(daemon: &dockhand_tests::Daemon) {
    wait_until(Duration::from_secs(20), "the MQTT subscription", || {
        daemon.log().contains("Subscribed to handheld topics.")
    });
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn embedded_broker_stores_acks_dedups_and_rejects_with_precise_reasons() {
    let (site, port, daemon) = site_on_embedded_broker();
    let replies = ReplyListener::connect(port, PREFIX).await;
    let handheld = Publisher::connect(port, "hh-1");

    // A valid message: stored, answered "stored".
    let id = uuid::Uuid::new_v4();
    handheld.publish(&format!("{PREFIX}/handheld/hh-1/count"), id, count_message(id, 1)).await;
    let ack = replies.wait_for("/hh-1/ack", Some(&id.to_string()), 1).await;
    assert_eq!(ack[0].1["status"], "stored");
    // The same id again (a redelivery): answered "duplicate", stored once.
    handheld.publish(&format!("{PREFIX}/handheld/hh-1/count"), id, count_message(id, 1)).await;
    let acks = replies.wait_for("/hh-1/ack", Some(&id.to_string()), 2).await;
    assert_eq!(acks[1].1["status"], "duplicate");
    assert_eq!(stored_counts(&site.store_path(), &[id])[&id], 1);

    // Malformed input: each is dead-lettered with a precise reason and answered on `rejected`.
    let cases: Vec<(String, Vec<u8>, &str, Option<&str>)> = vec![
        (format!("{PREFIX}/handheld/hh-1/count"), b"\xff\xfe{}".to_vec(), "not UTF-8", None),
        (format!("{PREFIX}/handheld/hh-1/count"), b"{\"product\": ".to_vec(), "not valid JSON", None),
        (format!("{PREFIX}/handheld/hh-1/count"), vec![b' '; 1_000_000], "over the 65536-byte limit", None),
        (
            format!("{PREFIX}/handheld/hh-1/count"),
            br#"{"product":"1","location":"A","quantity":1.5}"#.to_vec(),
            "not JSON floats",
            Some("quantity"),
        ),
        (
            format!("{PREFIX}/handheld/hh-1/pick"),
            br#"{"picking":"WH/OUT/1","lines":[{"product":"1"}]}"#.to_vec(),
            "required field is missing",
            Some("lines[0].quantity"),
        ),
        (
            format!("{PREFIX}/handheld/hh-1/count"),
            br#"{"product":"1","location":"A","quantity":true}"#.to_vec(),
            "invalid type",
            Some("quantity"),
        ),
        (format!("{PREFIX}/handheld/hh-1/teleport"), b"{}".to_vec(), "unknown kind `teleport`", None),
        (format!("{PREFIX}/handheld/hh-1"), b"{}".to_vec(), "is not warehouse/T1/handheld/<device>/<kind>", None),
    ];
    for (n, (topic, payload, reason, field)) in cases.iter().enumerate() {
        handheld.publish_raw(topic, payload.clone()).await;
        let rejected = replies.wait_for("/hh-1/rejected", None, n + 1).await;
        let reply = &rejected[n].1;
        assert!(reply["error"].as_str().unwrap().contains(reason), "case {n}: {reply}");
        assert_eq!(reply["field"].as_str(), *field, "case {n}: {reply}");
    }
    let out = site.cli(&["dlq", "list", "--json"]);
    let dead: Vec<serde_json::Value> = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(dead.len(), cases.len());
    for (entry, (topic, payload, reason, _)) in dead.iter().rev().zip(&cases) {
        assert!(entry["reason"].as_str().unwrap().contains(reason), "{entry}");
        assert_eq!(entry["origin"].as_str().unwrap(), format!("mqtt:{topic}"));
        assert_eq!(entry["body_bytes"].as_u64().unwrap() as usize, payload.len(), "the raw bytes are kept");
    }

    // Still running and storing.
    let id2 = uuid::Uuid::new_v4();
    handheld.publish(&format!("{PREFIX}/handheld/hh-2/count"), id2, count_message(id2, 2)).await;
    replies.wait_for("/hh-2/ack", Some(&id2.to_string()), 1).await;
    assert_eq!(daemon.stop().code(), Some(0));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn each_handhelds_messages_are_stored_in_the_order_it_published_them() {
    // A count and then a pick must reach Odoo in that order: the store's seq, which sinks
    // deliver by, has to follow each handheld's publish order even when messages arrive faster
    // than they are committed.
    let (site, port, daemon) = site_on_embedded_broker();
    let mut handhelds = Vec::new();
    for h in 0..3 {
        handhelds.push(tokio::spawn(async move {
            let publisher = Publisher::connect(port, &format!("order-hh-{h}"));
            let mut ids = Vec::new();
            for n in 0..1500u64 {
                let id = uuid::Uuid::new_v4();
                publisher.publish(&format!("{PREFIX}/handheld/hh-{h}/count"), id, count_message(id, n)).await;
                ids.push(id);
            }
            wait_until_async(Duration::from_secs(60), || publisher.acked().len() == ids.len()).await;
            ids
        }));
    }
    let mut published = Vec::new();
    for h in handhelds {
        published.push(h.await.unwrap());
    }
    let store = site.store_path();
    wait_until_async(Duration::from_secs(30), || dockhand_tests::mqtt::stored_total(&store) == 4500).await;
    for (h, ids) in published.iter().enumerate() {
        let stored = dockhand_tests::mqtt::stored_order(&store, &format!("hh-{h}"));
        let first_difference = ids.iter().zip(&stored).position(|(a, b)| a != b);
        assert_eq!(stored.len(), ids.len(), "hh-{h}: every message stored once");
        assert_eq!(first_difference, None, "hh-{h}: stored out of publish order");
    }
    assert_eq!(daemon.stop().code(), Some(0));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kill_9_five_times_while_handhelds_publish_10000_messages_loses_nothing() {
    kill_9_five_times_while_handhelds_publish_10000_messages("").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kill_9_five_times_on_mqtt_5_loses_nothing_either() {
    // MQTT 5 keeps the session by a session expiry instead of clean-session=false; the broker must
    // still hold every unacknowledged message across each kill.
    kill_9_five_times_while_handhelds_publish_10000_messages("protocol = \"5\"").await;
}

async fn kill_9_five_times_while_handhelds_publish_10000_messages(mqtt: &str) {
    let Some((site, broker, daemon)) = site_on_mosquitto_with(mqtt) else { return };
    if mqtt.contains("\"5\"") {
        assert!(daemon.log().contains("protocol=5"), "not on MQTT 5:\n{}", daemon.log());
    }

    let mut handhelds = Vec::new();
    for h in 0..4 {
        let port = broker.port;
        handhelds.push(tokio::spawn(async move {
            let publisher = Publisher::connect(port, &format!("crash-hh-{h}"));
            let mut ids = Vec::new();
            for n in 0..2500u64 {
                let id = uuid::Uuid::new_v4();
                publisher.publish(&format!("{PREFIX}/handheld/hh-{h}/count"), id, count_message(id, n)).await;
                ids.push(id);
                if n % 10 == 9 {
                    tokio::time::sleep(Duration::from_millis(30)).await;
                }
            }
            wait_until_async(Duration::from_secs(30), || publisher.acked().len() == ids.len()).await;
            assert!(!publisher.broken());
            publisher.acked()
        }));
    }
    // Kill the daemon at random moments while the messages flow, and start it again.
    let mut daemon = Some(daemon);
    for _ in 0..5 {
        tokio::time::sleep(Duration::from_millis(600 + fastrand::u64(0..600))).await;
        if let Some(d) = daemon.take() {
            d.kill9();
        }
        tokio::time::sleep(Duration::from_millis(fastrand::u64(0..300))).await;
        daemon = Some(site.start());
    }
    let mut acked: HashSet<uuid::Uuid> = HashSet::new();
    for h in handhelds {
        acked.extend(h.await.unwrap());
    }
    assert_eq!(acked.len(), 10_000, "the broker acknowledged every message");
    let ids: Vec<uuid::Uuid> = acked.into_iter().collect();
    let store = site.store_path();
    // The broker delivers what it queued while dockhand was down; give it time, then count.
    let deadline = std::time::Instant::now() + Duration::from_secs(60);
    while dockhand_tests::mqtt::stored_total(&store) < 10_000 && std::time::Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let counts = stored_counts(&store, &ids);
    let missing = counts.values().filter(|n| **n == 0).count();
    assert_eq!(missing, 0, "{missing} messages the broker acknowledged never reached the store");
    let wrong: Vec<_> = counts.iter().filter(|(_, n)| **n != 1).collect();
    assert!(wrong.is_empty(), "{} ids not stored exactly once, e.g. {:?}", wrong.len(), wrong.first());
    assert_eq!(dockhand_tests::mqtt::stored_total(&store), 10_000);
    assert_eq!(daemon.take().unwrap().stop().code(), Some(0));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_broker_restart_mid_stream_loses_nothing() {
    let Some((site, mut broker, daemon)) = site_on_mosquitto() else { return };
    let ids: Vec<uuid::Uuid> = (0..1000).map(|_| uuid::Uuid::new_v4()).collect();
    let first = Publisher::connect(broker.port, "restart-hh");
    for (n, id) in ids.iter().enumerate().take(500) {
        first.publish(&format!("{PREFIX}/handheld/hh-r/count"), *id, count_message(*id, n as u64)).await;
    }
    tokio::time::sleep(Duration::from_millis(300)).await;
    broker.restart();
    // A handheld resends whatever its broker did not acknowledge, then goes on.
    let acked_before = first.acked();
    let second = Publisher::connect(broker.port, "restart-hh-2");
    for (n, id) in ids.iter().enumerate() {
        if !acked_before.contains(id) {
            second.publish(&format!("{PREFIX}/handheld/hh-r/count"), *id, count_message(*id, n as u64)).await;
        }
    }
    wait_until(Duration::from_secs(60), "all 1000 messages stored", || {
        dockhand_tests::mqtt::stored_total(&site.store_path()) >= 1000
    });
    let counts = stored_counts(&site.store_path(), &ids);
    assert!(counts.values().all(|n| *n == 1), "every message stored exactly once");
    let log = daemon.log();
    assert!(log.matches("Subscribed to handheld topics.").count() >= 2, "resubscribed after the restart:\n{log}");
    assert_eq!(daemon.stop().code(), Some(0));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tls_with_a_test_ca_and_client_certificate_and_refusal_of_an_unknown_ca() {
    if !mosquitto_available() {
        return;
    }
    let site = Site::new(EXE);
    let pki = TestPki::generate(site.dir.path(), "site");
    let broker = Mosquitto::start_with(site.dir.path(), Some(pki.clone()));
    let tls_port = broker.tls_port.unwrap();
    config(
        &site,
        tls_port,
        &format!(
            "[mqtt.tls]\nca_file = \"{}\"\nclient_cert_file = \"{}\"\nclient_key_file = \"{}\"\n",
            pki.ca.display(),
            pki.client_cert.display(),
            pki.client_key.display()
        ),
    );
    let daemon = site.start();
    subscribed(&daemon);
    // A handheld on the plain listener; dockhand receives it over TLS.
    let replies = ReplyListener::connect(broker.port, PREFIX).await;
    let id = uuid::Uuid::new_v4();
    Publisher::connect(broker.port, "tls-hh")
        .publish(&format!("{PREFIX}/handheld/hh-t/count"), id, count_message(id, 1))
        .await;
    replies.wait_for("/hh-t/ack", Some(&id.to_string()), 1).await;
    assert_eq!(stored_counts(&site.store_path(), &[id])[&id], 1);
    assert_eq!(daemon.stop().code(), Some(0));

    // The same broker, but dockhand trusts another CA: refused, with a clear reason.
    let other = TestPki::generate(site.dir.path(), "other");
    config(
        &site,
        tls_port,
        &format!(
            "[mqtt.tls]\nca_file = \"{}\"\nclient_cert_file = \"{}\"\nclient_key_file = \"{}\"\n",
            other.ca.display(),
            pki.client_cert.display(),
            pki.client_key.display()
        ),
    );
    let daemon = site.start();
    wait_until(Duration::from_secs(20), "the TLS refusal", || daemon.log().contains("MQTT connection failed"));
    let log = daemon.log();
    assert!(log.contains("UnknownIssuer") && log.contains("mqtt.tls.ca_file"), "{log}");
    assert!(!log.contains("Subscribed to handheld topics."));
    let out = site.cli(&["check-config", "--connect"]);
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains("✗ mqtt broker") && text.contains("UnknownIssuer"), "{text}");
    assert_eq!(out.status.code(), Some(1));
    assert_eq!(daemon.stop().code(), Some(0));
}

async fn wait_until_async(timeout: Duration, mut check: impl FnMut() -> bool) {
    let deadline = tokio::time::Instant::now() + timeout;
    while !check() {
        assert!(tokio::time::Instant::now() < deadline, "timed out after {timeout:?}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// Subscribes to the retained gateway status and returns the payloads seen so far.
async fn watch_status(port: u16) -> std::sync::Arc<std::sync::Mutex<Vec<serde_json::Value>>> {
    let seen = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
    let mut options = rumqttc::MqttOptions::new(format!("status-watch-{}", free_port()), "127.0.0.1", port);
    options.set_keep_alive(Duration::from_secs(10));
    let (client, mut events) = rumqttc::AsyncClient::new(options, 10);
    client.subscribe(format!("{PREFIX}/gateway/test-gw/status"), rumqttc::QoS::AtLeastOnce).await.unwrap();
    let s = seen.clone();
    tokio::spawn(async move {
        let _client = client;
        loop {
            match events.poll().await {
                Ok(rumqttc::Event::Incoming(rumqttc::Packet::Publish(p))) => {
                    s.lock().unwrap().push(serde_json::from_slice(&p.payload).unwrap_or(serde_json::Value::Null));
                }
                Ok(_) => {}
                Err(_) => tokio::time::sleep(Duration::from_millis(100)).await,
            }
        }
    });
    seen
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_retained_gateway_status_says_online_with_queue_figures_then_offline_when_killed() {
    let Some((_site, broker, daemon)) = site_on_mosquitto() else { return };
    // A watcher that connects later still gets the status: it is retained.
    tokio::time::sleep(Duration::from_millis(300)).await;
    let seen = watch_status(broker.port).await;
    wait_until_async(Duration::from_secs(10), || seen.lock().unwrap().iter().any(|v| v["state"] == "online")).await;
    let online = seen.lock().unwrap().iter().find(|v| v["state"] == "online").cloned().unwrap();
    assert_eq!(online["gateway"], "test-gw");
    assert!(online["queue"]["archive"]["pending"].is_u64(), "{online}");
    // kill -9: no goodbye, so the broker publishes the last will after the keep-alive runs out.
    daemon.kill9();
    wait_until_async(Duration::from_secs(20), || seen.lock().unwrap().last().is_some_and(|v| v["state"] == "offline"))
        .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn simulate_handhelds_reports_every_message_answered() {
    let (site, _, daemon) = site_on_embedded_broker();
    let out = site.cli(&[
        "simulate",
        "handhelds",
        "--count",
        "60",
        "--rate",
        "200",
        "--devices",
        "3",
        "--malformed-every",
        "10",
    ]);
    let text = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(0), "{text}");
    assert!(
        text.contains("sent 60") && text.contains("stored 54") && text.contains("rejected 6 (6 malformed on purpose)"),
        "{text}"
    );
    assert!(text.contains("Every valid message was stored and every malformed one rejected."), "{text}");
    assert_eq!(dockhand_tests::mqtt::stored_total(&site.store_path()), 54);
    assert_eq!(daemon.stop().code(), Some(0));
    // Without a daemon nobody answers: the report says so and the exit code is not 0.
    let out = site.cli(&["simulate", "handhelds", "--count", "3", "--rate", "100"]);
    assert_ne!(out.status.code(), Some(0));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reload_under_load_adds_a_sink_refuses_a_bad_file_and_changes_broker_without_loss_or_repeats() {
    if !mosquitto_available() {
        return;
    }
    let site = Site::new(EXE);
    let first = Mosquitto::start(site.dir.path());
    let second = Mosquitto::start(site.dir.path());
    config(&site, first.port, "");
    let daemon = site.start();
    subscribed(&daemon);
    let publish = |port: u16, from: u64, to: u64| async move {
        let handheld = Publisher::connect(port, &format!("reload-hh-{port}"));
        let mut ids = Vec::new();
        for n in from..to {
            let id = uuid::Uuid::new_v4();
            handheld.publish(&format!("{PREFIX}/handheld/hh-r/count"), id, count_message(id, n)).await;
            ids.push(id);
            if n % 20 == 19 {
                tokio::time::sleep(Duration::from_millis(25)).await;
            }
        }
        wait_until_async(Duration::from_secs(30), || handheld.acked().len() == ids.len()).await;
        ids
    };
    // Messages flow while a second sink is added.
    let load = tokio::spawn(publish(first.port, 0, 1500));
    tokio::time::sleep(Duration::from_millis(400)).await;
    let sinks = "[[sink]]\nname = \"archive\"\ntype = \"file\"\npath = \"archive.ndjson\"\n\n[[sink]]\nname = \"audit\"\ntype = \"file\"\npath = \"audit.ndjson\"\n";
    let mqtt = |port: u16| format!("[mqtt]\nhost = \"127.0.0.1\"\nport = {port}\nkeep_alive = \"5s\"\n");
    site.write_config(&format!("{}\n{sinks}", mqtt(first.port)));
    daemon.signal(libc::SIGHUP);
    wait_until_async(Duration::from_secs(10), || daemon.log().contains("Config reloaded.")).await;
    // A broken file is refused; everything keeps running.
    std::fs::write(
        site.config(),
        "[gateway]\nid = \"test-gw\"\nsite = \"T1\"\n[store]\npath = \"store.db\"\nmax_byte = 1\n",
    )
    .unwrap();
    daemon.signal(libc::SIGHUP);
    wait_until_async(Duration::from_secs(10), || {
        daemon.log().contains("The new config is invalid; keeping the running one.")
    })
    .await;
    let mut ids = load.await.unwrap();
    // Move to the other broker; the handhelds follow.
    site.write_config(&format!("{}\n{sinks}", mqtt(second.port)));
    daemon.signal(libc::SIGHUP);
    wait_until_async(Duration::from_secs(15), || daemon.log().matches("Subscribed to handheld topics.").count() >= 2)
        .await;
    ids.extend(publish(second.port, 1500, 2500).await);
    let store = site.store_path();
    wait_until_async(Duration::from_secs(30), || dockhand_tests::mqtt::stored_total(&store) >= 2500).await;
    wait_until_async(Duration::from_secs(30), || {
        dockhand_tests::read_ndjson(&site.path("archive.ndjson")).len() >= 2500
    })
    .await;
    let counts = stored_counts(&store, &ids);
    assert!(counts.values().all(|n| *n == 1), "every message stored exactly once");
    // The sink that did not change was never restarted, so it delivered everything exactly once.
    let archive = dockhand_tests::read_ndjson(&site.path("archive.ndjson"));
    assert_eq!(dockhand_tests::check_delivery(&ids, &archive), 0, "no repeats in the untouched sink");
    let log = daemon.log();
    assert!(!log.contains("task=sink archive"), "the unchanged sink was left alone:\n{log}");
    assert!(log.contains("task=mqtt"), "the MQTT source was restarted for the new broker");
    // The new sink got everything from when it was added.
    wait_until_async(Duration::from_secs(30), || !dockhand_tests::read_ndjson(&site.path("audit.ndjson")).is_empty())
        .await;
    assert_eq!(daemon.stop().code(), Some(0));
}

/// Publishes `valid` counts and `malformed` broken messages from one handheld and waits until
/// every one is answered on the listener; returns the ids of the valid ones.
async fn publish_and_wait_for_answers(
    port: u16,
    replies: &ReplyListener,
    valid: usize,
    malformed: usize,
) -> Vec<uuid::Uuid> {
    let handheld = Publisher::connect(port, &format!("echo-hh-{}", free_port()));
    let mut ids = Vec::new();
    for n in 0..valid {
        let id = uuid::Uuid::new_v4();
        handheld.publish(&format!("{PREFIX}/handheld/hh-e/count"), id, count_message(id, n as u64)).await;
        ids.push(id);
    }
    for _ in 0..malformed {
        handheld.publish_raw(&format!("{PREFIX}/handheld/hh-e/count"), b"{\"product\": ".to_vec()).await;
    }
    replies.wait_for("/hh-e/ack", None, valid).await;
    replies.wait_for("/hh-e/rejected", None, malformed).await;
    ids
}

/// The contract's v2 layout: answers go to `…/reply/<device>/…`, outside the `handheld/#`
/// subscription, so the broker sends dockhand exactly the messages the handhelds sent — on a
/// real mosquitto and on the embedded rumqttd.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn v2_replies_never_come_back_to_dockhand_on_mosquitto_or_the_embedded_broker() {
    let (site, port, daemon) = site_on_embedded_broker();
    let replies = ReplyListener::connect(port, PREFIX).await;
    let v1_topics = ReplyListener::connect_v1(port, PREFIX).await;
    let ids = publish_and_wait_for_answers(port, &replies, 300, 7).await;
    assert_eq!(stored_counts(&site.store_path(), &ids).values().filter(|n| **n == 1).count(), 300);
    assert!(replies.replies().iter().all(|(t, _)| t.starts_with("warehouse/T1/reply/hh-e/")));
    assert!(v1_topics.replies().is_empty(), "nothing is published on the v1 topics: {:?}", v1_topics.replies());
    assert_eq!(site.metric("dockhand_mqtt_messages_received_total"), Some(307.0), "one PUBLISH per message sent");
    assert_eq!(site.metric("dockhand_mqtt_own_replies_received_total"), Some(0.0));
    assert_eq!(daemon.stop().code(), Some(0));

    let Some((site, broker, daemon)) = site_on_mosquitto() else { return };
    let replies = ReplyListener::connect(broker.port, PREFIX).await;
    publish_and_wait_for_answers(broker.port, &replies, 300, 7).await;
    assert_eq!(site.metric("dockhand_mqtt_messages_received_total"), Some(307.0), "one PUBLISH per message sent");
    assert_eq!(site.metric("dockhand_mqtt_own_replies_received_total"), Some(0.0));
    assert_eq!(daemon.stop().code(), Some(0));
}

/// `replies = "v1"` keeps the old layout for handheld apps built against it (with QoS 0 answers
/// here): answers under `…/handheld/<device>/`, echoed back to dockhand and ignored there.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn v1_replies_still_work_behind_the_switch() {
    let site = Site::new(EXE);
    let port = free_port();
    config(&site, port, &format!("replies = \"v1\"\nreply_qos = 0\n[broker]\nlisten = \"127.0.0.1:{port}\"\n"));
    let daemon = site.start();
    subscribed(&daemon);
    assert!(daemon.log().contains("replies = \"v1\" is deprecated"), "{}", daemon.log());
    let replies = ReplyListener::connect_v1(port, PREFIX).await;
    let ids = publish_and_wait_for_answers(port, &replies, 100, 3).await;
    assert_eq!(stored_counts(&site.store_path(), &ids).values().filter(|n| **n == 1).count(), 100);
    // Every answer came back through dockhand's own subscription (the reason for v2).
    wait_until(Duration::from_secs(10), "the echoes to be counted", || {
        site.metric("dockhand_mqtt_own_replies_received_total") == Some(103.0)
    });
    assert_eq!(site.metric("dockhand_mqtt_messages_received_total"), Some(206.0));
    assert_eq!(daemon.stop().code(), Some(0));
}

/// MQTT 5 request/response: a handheld that names a Response Topic and Correlation Data gets its
/// answer there, with the same correlation data — stored, duplicate and rejected alike. One
/// that names none is answered on the contract's reply topic.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mqtt_5_answers_on_the_response_topic_with_the_correlation_data() {
    let Some((site, broker, daemon)) = site_on_mosquitto_with("protocol = \"5\"") else { return };
    assert!(daemon.log().contains("protocol=5"), "{}", daemon.log());
    let handheld = V5Handheld::connect(broker.port, "v5-hh", "apps/scanner-7/inbox").await;
    let replies = ReplyListener::connect(broker.port, PREFIX).await;
    let topic = format!("{PREFIX}/handheld/hh-5/count");
    let id = uuid::Uuid::new_v4();
    handheld.request(&topic, count_message(id, 1), Some(b"corr-1")).await;
    handheld.request(&topic, count_message(id, 1), Some(b"corr-2")).await;
    handheld.request(&topic, br#"{"product":"1","location":"A","quantity":1.5}"#.to_vec(), Some(&[0, 255, 7])).await;
    let other = uuid::Uuid::new_v4();
    handheld.request(&topic, count_message(other, 2), None).await;
    wait_until(Duration::from_secs(15), "three answers on the response topic", || handheld.answers().len() >= 3);
    let answers = handheld.answers();
    assert_eq!(answers.len(), 3, "{answers:?}");
    assert!(answers.iter().all(|(t, _, _)| t == "apps/scanner-7/inbox"));
    assert_eq!(answers[0].1["status"], "stored");
    assert_eq!(answers[0].2.as_deref(), Some(&b"corr-1"[..]));
    assert_eq!(answers[1].1["status"], "duplicate");
    assert_eq!(answers[1].2.as_deref(), Some(&b"corr-2"[..]));
    assert!(answers[2].1["error"].as_str().unwrap().contains("not JSON floats"), "{answers:?}");
    assert_eq!(answers[2].2.as_deref(), Some(&[0u8, 255, 7][..]), "binary correlation data is echoed as is");
    // Without a Response Topic: the v2 reply topic, as for an MQTT 3.1.1 handheld.
    replies.wait_for("/reply/hh-5/ack", Some(&other.to_string()), 1).await;
    assert!(replies.replies().iter().all(|(_, v)| v["id"] == other.to_string()), "{:?}", replies.replies());
    assert_eq!(stored_counts(&site.store_path(), &[id, other]).values().sum::<i64>(), 2);
    assert_eq!(site.metric("dockhand_mqtt_own_replies_received_total"), Some(0.0));
    assert_eq!(daemon.stop().code(), Some(0));
}

/// The demo's daemon runs its own simulated handhelds; `dockhand simulate` run next to it uses
/// client ids of its own, so neither takes over the other's connections and every message of
/// both is answered.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn simulate_next_to_the_demos_own_simulator_gets_every_message_answered() {
    let site = Site::new(EXE);
    let port = free_port();
    let demo = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../config/demo.toml")).unwrap();
    assert!(demo.contains("18830") && demo.contains("[simulate]"), "the demo config changed: update this test");
    std::fs::write(site.config(), demo.replace("18830", &port.to_string()).replace("../target/demo/", "demo/"))
        .unwrap();
    let daemon = site.start();
    subscribed(&daemon);
    let out = site.cli(&["simulate", "handhelds", "--count", "300", "--rate", "100", "--devices", "3"]);
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains("Every valid message was stored and every malformed one rejected."), "{text}");
    assert_eq!(out.status.code(), Some(0), "{text}");
    let log = daemon.log();
    assert!(!log.contains("got no answer"), "the demo's own simulator lost answers:\n{log}");
    assert_eq!(daemon.stop().code(), Some(0));
}
