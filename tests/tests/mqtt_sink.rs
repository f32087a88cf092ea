//! The `type = "mqtt"` sink against a real mosquitto started by the test: 20 000 events drained
//! through a broker outage, a broker restart (persistence on) and three SIGKILLs of dockhand, as
//! a cloud subscriber with a persistent session sees them; credentials refused and fixed; TLS
//! with a test CA and a client certificate; MQTT 5 user properties and expiry on the wire.

#![allow(clippy::unwrap_used)] // test code: a panic is the failure report

use std::time::Duration;

use dockhand_tests::mqtt::{Mosquitto, Recorder, TestPki, mosquitto_available};
use dockhand_tests::{Site, check_delivery, fill_store, wait_until};

const EXE: &str = env!("CARGO_BIN_EXE_dockhand-e2e");

fn sink_state(site: &Site) -> Option<dockhand::store::SinkState> {
    dockhand::store::StoreReader::open(&site.store_path()).ok()?.sink_state("fleet").ok()?
}

fn settled(site: &Site, n: u64) -> bool {
    sink_state(site).is_some_and(|s| s.cursor >= n)
}

fn pending(site: &Site) -> u64 {
    let out = site.cli(&["status", "--json"]);
    let json: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    json["sinks"].as_array().unwrap().iter().find(|s| s["name"] == "fleet").unwrap()["pending"].as_u64().unwrap()
}

fn sink_table(port: u16, extra: &str) -> String {
    format!(
        "[[sink]]\nname = \"fleet\"\ntype = \"mqtt\"\nhost = \"127.0.0.1\"\nport = {port}\n\
         topic = \"dockhand/{{site}}/{{gateway}}/{{partition}}\"\n\
         batch = {{ max_events = 500, linger = \"0ms\" }}\n\
         retry = {{ initial = \"100ms\", max = \"1s\", paused_interval = \"1s\" }}\n{extra}\n"
    )
}

#[test]
fn every_event_reaches_the_fleet_broker_through_an_outage_a_restart_and_three_kills() {
    if !mosquitto_available() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let mut broker = Mosquitto::start(dir.path());
    let recorder = Recorder::start(broker.port, "cloud-consumer", "dockhand/#");
    let fleet_status = Recorder::start(broker.port, "fleet-dashboard", "fleet-status/#");
    let site = Site::new(EXE);
    site.write_config(&sink_table(broker.port, "status_topic = \"fleet-status/{site}/{gateway}\""));
    const N: usize = 20_000;
    let ids = fill_store(&site.store_path(), N);
    let mut daemon = site.start();
    // Faults while the backlog drains: each waits for some progress first, so it lands mid-drain.
    let progress = |site: &Site| sink_state(site).map_or(0, |s| s.cursor);
    for (round, at) in [2_000u64, 5_000, 8_000, 11_000, 14_000].into_iter().enumerate() {
        wait_until(Duration::from_secs(60), &format!("{at} events delivered"), || progress(&site) >= at);
        let now = progress(&site);
        assert!(now < N as u64, "fault {round} came after the drain (cursor {now}): it tests nothing");
        eprintln!("fault {round} at cursor {now}");
        match round {
            // The broker goes away for 3 s (refused connections), then comes back.
            0 => {
                broker.stop();
                std::thread::sleep(Duration::from_secs(3));
                broker.restart();
            }
            // A broker restart: mosquitto saves its sessions and queued messages, and reloads them.
            1 => broker.restart(),
            // SIGKILL of dockhand mid-delivery, and a start again.
            _ => {
                daemon.kill9();
                daemon = site.start();
            }
        }
    }
    wait_until(Duration::from_secs(120), "all 20 000 events delivered", || settled(&site, N as u64));
    // The subscriber's queue drains shortly after the last PUBACK.
    wait_until(Duration::from_secs(30), "the subscriber received every event", || {
        let got: std::collections::HashSet<String> =
            recorder.received().iter().filter_map(|e| e["id"].as_str().map(str::to_owned)).collect();
        got.len() >= N
    });
    // The fleet saw the gateway go offline at each SIGKILL (the last will) and come back online.
    let states: Vec<String> =
        fleet_status.received().iter().filter_map(|s| s["state"].as_str().map(str::to_owned)).collect();
    let offline_then_online = states.windows(2).filter(|w| w[0] == "offline" && w[1] == "online").count();
    assert!(offline_then_online >= 3, "the gateway's status on the fleet broker: {states:?}");
    assert!(fleet_status.received().iter().all(|s| s["gateway"] == "test-gw"));
    daemon.stop();
    let received = recorder.received();
    // Every stored event arrived; first arrivals in seq order per partition; repeats are of ids
    // already seen (check_delivery asserts both).
    let repeats = check_delivery(&ids, &received);
    let known: std::collections::HashSet<String> = ids.iter().map(|i| i.to_string()).collect();
    assert!(received.iter().all(|e| known.contains(e["id"].as_str().unwrap())), "an event nobody stored arrived");
    assert_eq!(pending(&site), 0, "nothing pending at the end");
    eprintln!("{N} events delivered through 5 faults; {repeats} repeats at the subscriber");
}

#[test]
fn refused_credentials_pause_the_sink_until_the_password_file_is_fixed_and_reloaded() {
    if !mosquitto_available() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let broker = Mosquitto::start_with_users(dir.path(), &[("gw", "right-password"), ("cloud", "cloud-password")]);
    let site = Site::new(EXE);
    std::fs::write(site.path("fleet.password"), "wrong-password\n").unwrap();
    site.write_config(&sink_table(broker.port, "username = \"gw\"\npassword_file = \"fleet.password\""));
    let ids = fill_store(&site.store_path(), 50);
    let daemon = site.start();
    wait_until(Duration::from_secs(15), "the sink paused", || sink_state(&site).is_some_and(|s| s.paused.is_some()));
    let state = sink_state(&site).unwrap();
    let reason = state.paused.unwrap();
    assert!(reason.contains("NotAuthorized") || reason.contains("BadUserNamePassword"), "{reason}");
    assert!(reason.contains("password_file"), "the reason says what to fix: {reason}");
    assert_eq!(state.dead_lettered, 0, "nothing is dead-lettered for bad credentials");
    let status = String::from_utf8(site.cli(&["status"]).stdout).unwrap();
    assert!(status.contains("sink fleet is paused"), "{status}");
    let recorder = Recorder::start_as(broker.port, "cloud-consumer", "dockhand/#", Some(("cloud", "cloud-password")));
    std::fs::write(site.path("fleet.password"), "right-password\n").unwrap();
    daemon.signal(libc::SIGHUP);
    wait_until(Duration::from_secs(15), "delivered after the reload", || settled(&site, 50));
    wait_until(Duration::from_secs(10), "the subscriber has them", || recorder.received().len() >= 50);
    daemon.stop();
    check_delivery(&ids, &recorder.received());
}

#[test]
fn tls_with_a_client_certificate_is_accepted_and_an_unknown_ca_refused_with_a_clear_error() {
    if !mosquitto_available() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let pki = TestPki::generate(dir.path(), "fleet");
    let other = TestPki::generate(dir.path(), "other");
    let broker = Mosquitto::start_with(dir.path(), Some(pki.clone()));
    let tls_port = broker.tls_port.unwrap();
    let recorder = Recorder::start(broker.port, "cloud-consumer", "dockhand/#");

    // A CA that did not sign the broker's certificate: paused, and the reason names the CA file.
    let site = Site::new(EXE);
    site.write_config(&sink_table(
        tls_port,
        &format!(
            "tls = {{ ca_file = \"{}\", client_cert_file = \"{}\", client_key_file = \"{}\" }}",
            other.ca.display(),
            pki.client_cert.display(),
            pki.client_key.display()
        ),
    ));
    fill_store(&site.store_path(), 20);
    let check = site.cli(&["check-config", "--connect"]);
    let text = String::from_utf8_lossy(&check.stdout).to_string();
    assert!(!check.status.success() && text.contains("✗ sink fleet (mqtt)"), "{text}");
    assert!(text.contains("tls.ca_file"), "the failure points at the CA file: {text}");
    let daemon = site.start();
    wait_until(Duration::from_secs(15), "the sink paused", || sink_state(&site).is_some_and(|s| s.paused.is_some()));
    let reason = sink_state(&site).unwrap().paused.unwrap();
    assert!(reason.contains("tls.ca_file"), "{reason}");
    daemon.stop();

    // The right CA and the client certificate the broker requires: delivered.
    let site = Site::new(EXE);
    site.write_config(&sink_table(
        tls_port,
        &format!(
            "tls = {{ ca_file = \"{}\", client_cert_file = \"{}\", client_key_file = \"{}\" }}",
            pki.ca.display(),
            pki.client_cert.display(),
            pki.client_key.display()
        ),
    ));
    let ids = fill_store(&site.store_path(), 20);
    let check = site.cli(&["check-config", "--connect"]);
    let text = String::from_utf8_lossy(&check.stdout).to_string();
    assert!(check.status.success() && text.contains("accepted the connection (CONNACK)"), "{text}");
    let daemon = site.start();
    wait_until(Duration::from_secs(15), "delivered over TLS", || settled(&site, 20));
    wait_until(Duration::from_secs(10), "the subscriber has them", || recorder.received().len() >= 20);
    daemon.stop();
    check_delivery(&ids, &recorder.received());
}

/// One MQTT 5 message as the consumer saw it: user properties, expiry interval, body.
type SeenV5 = (Vec<(String, String)>, Option<u32>, serde_json::Value);

#[test]
fn mqtt5_messages_carry_the_event_id_schema_kind_and_expiry_as_properties() {
    if !mosquitto_available() {
        return;
    }
    use rumqttc::v5::mqttbytes::v5::Packet;
    use rumqttc::v5::{AsyncClient, Event, MqttOptions, mqttbytes::QoS};
    let dir = tempfile::tempdir().unwrap();
    let broker = Mosquitto::start(dir.path());
    // A cloud consumer speaking MQTT 5, recording each message's properties.
    let seen: std::sync::Arc<std::sync::Mutex<Vec<SeenV5>>> = Default::default();
    let record = seen.clone();
    let port = broker.port;
    let (subscribed_tx, subscribed) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
        rt.block_on(async move {
            let (client, mut events) = AsyncClient::new(MqttOptions::new("cloud-v5", "127.0.0.1", port), 100);
            client.subscribe("dockhand/#", QoS::AtLeastOnce).await.unwrap();
            loop {
                match events.poll().await {
                    Ok(Event::Incoming(Packet::SubAck(_))) => {
                        let _ = subscribed_tx.send(());
                    }
                    Ok(Event::Incoming(Packet::Publish(p))) => {
                        let props = p.properties.clone().unwrap_or_default();
                        let body = serde_json::from_slice(&p.payload).unwrap_or_default();
                        record.lock().unwrap().push((props.user_properties, props.message_expiry_interval, body));
                    }
                    Ok(_) => {}
                    Err(_) => tokio::time::sleep(Duration::from_millis(100)).await,
                }
            }
        });
    });
    subscribed.recv_timeout(Duration::from_secs(10)).unwrap();
    let site = Site::new(EXE);
    site.write_config(&sink_table(broker.port, "protocol = \"5\"\nmessage_expiry = \"1h\""));
    let ids = fill_store(&site.store_path(), 10);
    let daemon = site.start();
    wait_until(Duration::from_secs(15), "delivered over MQTT 5", || settled(&site, 10));
    wait_until(Duration::from_secs(10), "the consumer has them", || seen.lock().unwrap().len() >= 10);
    daemon.stop();
    let seen = seen.lock().unwrap().clone();
    for (props, expiry, body) in &seen {
        let get = |k: &str| props.iter().find(|(key, _)| key == k).map(|(_, v)| v.as_str());
        assert_eq!(get("id"), body["id"].as_str(), "{props:?}");
        assert_eq!(get("schema"), Some("dockhand.event/1"));
        assert_eq!(get("kind"), body["kind"].as_str());
        // The broker passes on the interval less the time the message waited (at most a few s).
        assert!(expiry.is_some_and(|e| e > 3500 && e <= 3600), "message expiry {expiry:?}");
    }
    check_delivery(&ids, &seen.iter().map(|(_, _, b)| b.clone()).collect::<Vec<_>>());
}

#[test]
fn an_idle_sink_keeps_its_connection_and_the_gateway_stays_online() {
    if !mosquitto_available() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let broker = Mosquitto::start(dir.path());
    let recorder = Recorder::start(broker.port, "cloud-consumer", "dockhand/#");
    let fleet_status = Recorder::start(broker.port, "fleet-dashboard", "fleet-status/#");
    let site = Site::new(EXE);
    // The broker drops a client that sends nothing for 1.5 keep-alives (7.5 s here).
    site.write_config(&sink_table(broker.port, "keep_alive = \"5s\"\nstatus_topic = \"fleet-status/{gateway}\""));
    let mut ids = fill_store(&site.store_path(), 10);
    let daemon = site.start();
    wait_until(Duration::from_secs(15), "the first events delivered", || settled(&site, 10));
    std::thread::sleep(Duration::from_secs(12));
    ids.extend(fill_store(&site.store_path(), 10));
    wait_until(Duration::from_secs(15), "the later events delivered", || settled(&site, 20));
    wait_until(Duration::from_secs(10), "the subscriber has them", || recorder.received().len() >= 20);
    let states: Vec<String> =
        fleet_status.received().iter().filter_map(|s| s["state"].as_str().map(str::to_owned)).collect();
    assert!(
        !states.is_empty() && states.iter().all(|s| s == "online"),
        "idle for longer than the keep-alive, the gateway stayed online: {states:?}"
    );
    // The mirror carries what the local status carries: each sink's queue, from the store.
    let last = fleet_status.received().last().cloned().unwrap();
    assert!(last["queue"]["fleet"]["pending"].is_u64(), "{last}");
    assert_eq!(last["gateway"], "test-gw");
    assert!(!daemon.log().contains("lost while idle"), "the connection was kept");
    daemon.stop();
    check_delivery(&ids, &recorder.received());
}

#[test]
fn the_configured_alpn_protocol_is_offered_in_the_tls_handshake() {
    // AWS IoT Core on port 443 picks MQTT by ALPN. A TLS server that speaks only
    // `x-amzn-mqtt-ca` records what the sink negotiated (it speaks no MQTT afterwards).
    let dir = tempfile::tempdir().unwrap();
    let pki = TestPki::generate(dir.path(), "alpn");
    let mut server = (*dockhand_tests::tls_server_config(&pki.server_cert, &pki.server_key)).clone();
    server.alpn_protocols = vec![b"x-amzn-mqtt-ca".to_vec()];
    let acceptor = tokio_rustls::TlsAcceptor::from(std::sync::Arc::new(server));
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let negotiated: std::sync::Arc<std::sync::Mutex<Option<Vec<u8>>>> = Default::default();
    let record = negotiated.clone();
    std::thread::spawn(move || {
        let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
        rt.block_on(async move {
            listener.set_nonblocking(true).unwrap();
            let listener = tokio::net::TcpListener::from_std(listener).unwrap();
            let (tcp, _) = listener.accept().await.unwrap();
            if let Ok(stream) = acceptor.accept(tcp).await {
                *record.lock().unwrap() = stream.get_ref().1.alpn_protocol().map(<[u8]>::to_vec);
            }
        });
    });
    let site = Site::new(EXE);
    site.write_config(&sink_table(
        port,
        &format!("tls = {{ ca_file = \"{}\" }}\nalpn = [\"x-amzn-mqtt-ca\"]", pki.ca.display()),
    ));
    let _ = site.cli(&["check-config", "--connect"]);
    assert_eq!(negotiated.lock().unwrap().as_deref(), Some(&b"x-amzn-mqtt-ca"[..]));
}
