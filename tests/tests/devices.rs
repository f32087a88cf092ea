//! Serial scanners and scales end to end: the real daemon opens pseudo-terminals (socat) where a
//! simulated firmware answers, and the events land in a file sink. Unplugging is killing socat.

#![allow(clippy::unwrap_used)] // test code: a panic is the failure report

use std::time::Duration;

use dockhand_tests::pty::{Display, SimulatedScale, VirtualPort, toledo_continuous_frame};
use dockhand_tests::{Site, read_ndjson, wait_until};
use serde_json::Value;

const EXE: &str = env!("CARGO_BIN_EXE_dockhand-e2e");

const FILE_SINK: &str = r#"
[[sink]]
name = "file"
type = "file"
path = "events.ndjson"
batch = { max_events = 100, linger = "0ms" }
"#;

fn events(site: &Site, kind: &str) -> Vec<Value> {
    read_ndjson(&site.path("events.ndjson")).into_iter().filter(|e| e["kind"] == kind).collect()
}

fn device_states(site: &Site, device: &str) -> Vec<String> {
    events(site, "device_status")
        .into_iter()
        .filter(|e| e["payload"]["device"] == device)
        .map(|e| e["payload"]["state"].as_str().unwrap().to_owned())
        .collect()
}

fn status_json(site: &Site) -> Value {
    let out = site.cli(&["status", "--json"]);
    serde_json::from_slice(&out.stdout).unwrap_or_else(|e| panic!("status --json: {e}: {out:?}"))
}

fn device_row(site: &Site, device: &str) -> Value {
    let status = status_json(site);
    status["devices"].as_array().and_then(|a| a.iter().find(|d| d["name"] == device).cloned()).unwrap_or(Value::Null)
}

#[test]
fn an_mt_sics_scale_gives_one_weight_event_per_settled_load() {
    let site = Site::new(EXE);
    let port = VirtualPort::start(site.dir.path(), "scale0");
    let scale = SimulatedScale::mt_sics(&port);
    site.write_config(&format!(
        r#"{FILE_SINK}
[[device]]
name = "scale-1"
kind = "scale"
path = "{}"
protocol = "mt-sics"
poll_interval = "50ms"
stable_readings = 3
"#,
        port.path.display()
    ));
    let daemon = site.start();
    wait_until(Duration::from_secs(10), "the scale to be connected", || {
        device_states(&site, "scale-1").contains(&"connected".to_owned())
    });
    // A parcel goes on: moving, then stable for a while, then it stays there.
    scale.show(Display::Weight("0.840".into(), false));
    std::thread::sleep(Duration::from_millis(300));
    scale.show(Display::Weight("1.250".into(), true));
    wait_until(Duration::from_secs(10), "a weight event", || !events(&site, "weight").is_empty());
    std::thread::sleep(Duration::from_millis(600));
    let weights = events(&site, "weight");
    assert_eq!(weights.len(), 1, "one settled load, one event: {weights:?}");
    let w = &weights[0]["payload"];
    assert_eq!(
        (w["value"].as_str(), w["unit"].as_str(), w["stable"].as_bool()),
        (Some("1.250"), Some("kg"), Some(true))
    );
    assert_eq!(weights[0]["source"]["device"], "scale-1");
    assert_eq!(weights[0]["source"]["transport"], "serial");
    assert!(*scale.polls.lock().unwrap() >= 5, "the scale was polled");

    // Taken off and put back: a second weighing.
    scale.show(Display::Weight("0.000".into(), true));
    std::thread::sleep(Duration::from_millis(500));
    scale.show(Display::Weight("1.250".into(), true));
    wait_until(Duration::from_secs(10), "a second weight event", || events(&site, "weight").len() == 2);

    let row = device_row(&site, "scale-1");
    assert_eq!(row["state"], "connected", "{row}");
    let text = String::from_utf8(site.cli(&["status"]).stdout).unwrap();
    assert!(text.contains("device  scale-1 connected"), "{text}");
    daemon.stop();
    // After a clean stop nobody watches the scale: its state is unknown, not "connected for …".
    let text = String::from_utf8(site.cli(&["status"]).stdout).unwrap();
    assert!(text.contains("device  scale-1 unknown since the daemon stopped at "), "{text}");
    assert!(text.contains("(then: connected") && !text.contains("scale-1 connected for"), "{text}");
}

#[test]
fn a_toledo_8217_scale_in_motion_then_stable() {
    let site = Site::new(EXE);
    let port = VirtualPort::start(site.dir.path(), "scale8217");
    let scale = SimulatedScale::toledo_8217(&port);
    scale.show(Display::Motion);
    site.write_config(&format!(
        r#"{FILE_SINK}
[[device]]
name = "scale-8217"
kind = "scale"
path = "{}"
protocol = "toledo-8217"
data_bits = 7
parity = "even"
poll_interval = "50ms"
"#,
        port.path.display()
    ));
    let daemon = site.start();
    wait_until(Duration::from_secs(10), "polls answered with motion", || *scale.polls.lock().unwrap() >= 5);
    assert!(events(&site, "weight").is_empty(), "no weight while in motion");
    scale.show(Display::Weight("01.250".into(), true));
    wait_until(Duration::from_secs(10), "the stable weight", || !events(&site, "weight").is_empty());
    let w = &events(&site, "weight")[0]["payload"];
    assert_eq!((w["value"].as_str(), w["unit"].as_str()), (Some("1.250"), Some("kg")), "{w}");
    daemon.stop();
}

#[test]
fn toledo_continuous_frames_survive_garbage_and_truncation() {
    let site = Site::new(EXE);
    let mut port = VirtualPort::start(site.dir.path(), "toledo");
    site.write_config(&format!(
        r#"{FILE_SINK}
[[device]]
name = "floor-scale"
kind = "scale"
path = "{}"
protocol = "toledo-continuous"
stable_readings = 3
"#,
        port.path.display()
    ));
    let daemon = site.start();
    wait_until(Duration::from_secs(10), "the scale to be connected", || {
        device_states(&site, "floor-scale").contains(&"connected".to_owned())
    });
    let moving = toledo_continuous_frame(3845, true);
    let stable = toledo_continuous_frame(500, false);
    for _ in 0..3 {
        port.write(&moving);
    }
    // Line noise, a frame cut after 11 bytes, a corrupted checksum: none of it may count.
    port.write(b"\x00\xff noise \r\n");
    port.write(&stable[..11]);
    let mut corrupt = stable.clone();
    corrupt[17] ^= 0x01;
    port.write(&corrupt);
    for _ in 0..2 {
        port.write(&stable);
    }
    std::thread::sleep(Duration::from_millis(300));
    assert!(events(&site, "weight").is_empty(), "two good frames are not yet three: {:?}", events(&site, "weight"));
    port.write(&stable);
    port.write(&stable);
    wait_until(Duration::from_secs(10), "the weight", || !events(&site, "weight").is_empty());
    std::thread::sleep(Duration::from_millis(300));
    let weights = events(&site, "weight");
    assert_eq!(weights.len(), 1, "{weights:?}");
    assert_eq!(weights[0]["payload"]["value"], "5.00");
    daemon.stop();
}

#[test]
fn scanners_with_and_without_a_suffix() {
    let site = Site::new(EXE);
    let mut with_suffix = VirtualPort::start(site.dir.path(), "scanner-cr");
    let mut no_suffix = VirtualPort::start(site.dir.path(), "scanner-quiet");
    site.write_config(&format!(
        r#"{FILE_SINK}
[[device]]
name = "dock-scanner"
kind = "scanner"
path = "{}"

[[device]]
name = "quiet-scanner"
kind = "scanner"
path = "{}"
suffix = ""
inter_char_timeout = "80ms"
"#,
        with_suffix.path.display(),
        no_suffix.path.display()
    ));
    let daemon = site.start();
    wait_until(Duration::from_secs(10), "both scanners connected", || {
        device_states(&site, "dock-scanner").contains(&"connected".to_owned())
            && device_states(&site, "quiet-scanner").contains(&"connected".to_owned())
    });
    // GS1-128 with FNC1 as <GS>, split across two writes as a slow UART would deliver it.
    with_suffix.write(b"]C10109506000134352310300125015260300");
    std::thread::sleep(Duration::from_millis(30));
    with_suffix.write(b"10ABC123\x1d2112345\r\n]E05901234123457\r\n");
    no_suffix.write(b"]C100106141411234567897");
    std::thread::sleep(Duration::from_millis(300));
    no_suffix.write(b"]E02112345678901");
    wait_until(Duration::from_secs(10), "four scans", || events(&site, "scan").len() == 4);
    let scans = events(&site, "scan");
    let by = |device: &str| -> Vec<Value> {
        scans.iter().filter(|e| e["source"]["device"] == device).map(|e| e["payload"].clone()).collect()
    };
    let dock = by("dock-scanner");
    assert_eq!(dock[0]["parsed"]["gtin"], "09506000134352");
    assert_eq!(dock[0]["parsed"]["lot"], "ABC123");
    assert_eq!(dock[0]["parsed"]["serial"], "12345");
    assert_eq!(dock[0]["parsed"]["best_before"], "2026-03-31");
    assert_eq!(dock[0]["parsed"]["net_weight"]["value"], "1.250");
    assert_eq!(dock[1]["symbology"], "ean-13");
    let quiet = by("quiet-scanner");
    assert_eq!(quiet[0]["parsed"]["sscc"], "106141411234567897");
    // A bad check digit is kept as received (raw, AIM), not dropped and not "interpreted".
    assert_eq!(quiet[1]["raw"], "]E02112345678901");
    assert!(quiet[1].get("parsed").is_none(), "{}", quiet[1]);
    assert!(daemon.log().contains("could not be interpreted"), "{}", daemon.log());
    daemon.stop();
}

#[test]
fn unplug_and_replug_reports_the_device_and_decodes_everything_after_it() {
    let site = Site::new(EXE);
    let mut port = VirtualPort::start(site.dir.path(), "usb-scanner");
    site.write_config(&format!(
        r#"{FILE_SINK}
[[device]]
name = "scanner-1"
kind = "scanner"
path = "{}"
"#,
        port.path.display()
    ));
    let daemon = site.start();
    wait_until(Duration::from_secs(10), "connected", || device_states(&site, "scanner-1") == ["connected"]);
    port.write(b"]E05901234123457\r");
    wait_until(Duration::from_secs(10), "the first scan", || events(&site, "scan").len() == 1);

    // Mid-frame: half a scan, then the cable is pulled.
    port.write(b"]E0590123");
    std::thread::sleep(Duration::from_millis(100));
    port.unplug();
    wait_until(Duration::from_secs(10), "disconnected", || {
        device_states(&site, "scanner-1").last().map(String::as_str) == Some("disconnected")
    });
    let row = device_row(&site, "scanner-1");
    assert_eq!(row["state"], "disconnected");
    let status = String::from_utf8(site.cli(&["status"]).stdout).unwrap();
    assert!(status.contains("ATTENTION") && status.contains("device scanner-1 is disconnected"), "{status}");

    // Plugged back in at the same path: reopened with backoff, and every complete frame decoded.
    std::thread::sleep(Duration::from_millis(700));
    port.plug();
    wait_until(Duration::from_secs(15), "connected again", || {
        device_states(&site, "scanner-1").last().map(String::as_str) == Some("connected")
    });
    let codes: Vec<String> = (0..20).map(|i| format!("]C0PARCEL-{i:04}")).collect();
    for code in &codes {
        port.write(format!("{code}\r\n").as_bytes());
    }
    wait_until(Duration::from_secs(10), "all scans after the replug", || events(&site, "scan").len() == 21);
    let raws: Vec<String> =
        events(&site, "scan").iter().skip(1).map(|e| e["payload"]["raw"].as_str().unwrap().to_owned()).collect();
    assert_eq!(raws, codes, "every frame after the reconnect, in order, and nothing from the half frame");
    let states = device_states(&site, "scanner-1");
    assert_eq!(states, ["connected", "disconnected", "connected"], "one event per change, not per retry");
    daemon.stop();
}

#[test]
fn a_missing_device_is_named_and_the_others_keep_working() {
    let site = Site::new(EXE);
    let mut good = VirtualPort::start(site.dir.path(), "good");
    let missing = site.path("serial/by-id/usb-Datalogic_QD2430-if00");
    site.write_config(&format!(
        r#"{FILE_SINK}
[[device]]
name = "gone"
kind = "scanner"
path = "{}"

[[device]]
name = "present"
kind = "scanner"
path = "{}"
"#,
        missing.display(),
        good.path.display()
    ));
    let check = site.cli(&["check-config", "--connect"]);
    let text = String::from_utf8_lossy(&check.stdout);
    assert!(!check.status.success());
    assert!(text.contains("✗ device gone") && text.contains("usb-Datalogic_QD2430-if00"), "{text}");
    assert!(text.contains("✓ device present"), "{text}");
    let list = site.cli(&["devices"]);
    let text = String::from_utf8_lossy(&list.stdout);
    assert!(text.contains("✗ gone") && text.contains("is not there"), "{text}");

    let daemon = site.start();
    wait_until(Duration::from_secs(10), "the missing device reported", || {
        device_states(&site, "gone") == ["disconnected"]
    });
    let row = device_row(&site, "gone");
    assert!(row["detail"].as_str().unwrap().contains("usb-Datalogic_QD2430-if00"), "{row}");
    assert!(daemon.log().contains("does not exist"), "{}", daemon.log());
    wait_until(Duration::from_secs(10), "the present device connected", || {
        device_states(&site, "present") == ["connected"]
    });
    good.write(b"]E05901234123457\r\n");
    wait_until(Duration::from_secs(10), "the other scanner's scan", || events(&site, "scan").len() == 1);
    daemon.stop();
}

#[test]
fn wrong_device_settings_are_config_errors_with_their_line() {
    let site = Site::new(EXE);
    site.write_config(
        r#"
[[device]]
name = "scale-1"
kind = "scale"
path = "/dev/ttyUSB0"
protocol = "mt-sics"
data_bits = 9
"#,
    );
    let out = site.cli(&["check-config"]);
    assert_eq!(out.status.code(), Some(78));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("device[0].data_bits") && err.contains("5, 6, 7 or 8"), "{err}");
    site.write_config(
        r#"
[[device]]
name = "scale-1"
kind = "scale"
path = "/dev/ttyUSB0"
protocol = "mettler"
"#,
    );
    let err = String::from_utf8_lossy(&site.cli(&["check-config"]).stderr).into_owned();
    assert!(err.contains("device[0].protocol") && err.contains("toledo-8217"), "{err}");
    // A valid but non-standard rate passes, with a warning that lists the standard ones.
    site.write_config(
        r#"
[[device]]
name = "scale-1"
kind = "scale"
path = "/dev/ttyUSB0"
protocol = "mt-sics"
baud = 9601
"#,
    );
    let out = site.cli(&["check-config"]);
    let text = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(0), "{text}");
    assert!(
        text.contains("! device[0].baud (scale-1): 9601 is not a standard rate") && text.contains("9600, 14400, 19200"),
        "{text}"
    );
}

const BRIDGE: &str = env!("CARGO_BIN_EXE_firmware-bridge-e2e");

/// A firmware-bridge process for one device on `port`.
fn start_bridge(broker: u16, device: &str, port: &VirtualPort, extra: &[&str]) -> std::process::Child {
    std::process::Command::new(BRIDGE)
        .args(["--broker", &format!("127.0.0.1:{broker}"), "--site", "T1", "--device", device, "--path"])
        .arg(&port.path)
        .args(extra)
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .expect("start firmware-bridge")
}

fn kill9(child: &mut std::process::Child) {
    let _ = child.kill();
    let _ = child.wait();
}

#[test]
fn devices_behind_a_firmware_bridge_behave_like_local_ones() {
    if !dockhand_tests::mqtt::mosquitto_available() {
        return;
    }
    let site = Site::new(EXE);
    let broker = dockhand_tests::mqtt::Mosquitto::start(site.dir.path());
    // The same scale and scanner models twice: one pair local, one pair behind bridges.
    let local_scale_port = VirtualPort::start(site.dir.path(), "local-scale");
    let remote_scale_port = VirtualPort::start(site.dir.path(), "remote-scale");
    let mut local_scanner = VirtualPort::start(site.dir.path(), "local-scanner");
    let mut remote_scanner = VirtualPort::start(site.dir.path(), "remote-scanner");
    let local_scale = SimulatedScale::mt_sics(&local_scale_port);
    let remote_scale = SimulatedScale::mt_sics(&remote_scale_port);
    site.write_config(&format!(
        r#"{FILE_SINK}
[mqtt]
host = "127.0.0.1"
port = {}
status_interval = "1s"

[[device]]
name = "scale-local"
kind = "scale"
path = "{}"
protocol = "mt-sics"
poll_interval = "50ms"

[[device]]
name = "scale-remote"
kind = "scale"
transport = "mqtt"

[[device]]
name = "scanner-local"
kind = "scanner"
path = "{}"

[[device]]
name = "scanner-remote"
kind = "scanner"
transport = "mqtt"
"#,
        broker.port,
        local_scale_port.path.display(),
        local_scanner.path.display()
    ));
    let rt = tokio::runtime::Runtime::new().unwrap();
    let readings = rt.block_on(dockhand_tests::mqtt::ReplyListener::listen(
        broker.port,
        vec!["warehouse/T1/gateway/test-gw/reading/#".into(), "warehouse/T1/gateway/test-gw/status".into()],
    ));
    let daemon = site.start();
    let mut scale_bridge = start_bridge(
        broker.port,
        "scale-remote",
        &remote_scale_port,
        &["--kind", "scale", "--protocol", "mt-sics", "--poll-interval-ms", "50"],
    );
    let mut scanner_bridge = start_bridge(broker.port, "scanner-remote", &remote_scanner, &["--kind", "scanner"]);
    for device in ["scale-local", "scale-remote", "scanner-local", "scanner-remote"] {
        wait_until(Duration::from_secs(15), &format!("{device} connected"), || {
            device_states(&site, device).last().map(String::as_str) == Some("connected")
        });
    }

    // The same load on both scales, the same label under both scanners.
    for scale in [&local_scale, &remote_scale] {
        scale.show(Display::Weight("2.480".into(), false));
    }
    std::thread::sleep(Duration::from_millis(300));
    for scale in [&local_scale, &remote_scale] {
        scale.show(Display::Weight("2.480".into(), true));
    }
    let label = b"]C10109506000134352310300125015260300\r\n";
    local_scanner.write(label);
    remote_scanner.write(label);
    wait_until(Duration::from_secs(15), "two weights and two scans", || {
        events(&site, "weight").len() == 2 && events(&site, "scan").len() == 2
    });
    for kind in ["weight", "scan"] {
        let evs = events(&site, kind);
        assert_eq!(evs[0]["payload"], evs[1]["payload"], "{kind}: bridged and local payloads differ");
        let transports: Vec<&str> = evs.iter().map(|e| e["source"]["transport"].as_str().unwrap()).collect();
        assert!(transports.contains(&"serial") && transports.contains(&"mqtt"), "{transports:?}");
    }
    // Live readings of both scales reach local consumers; the retained status lists the devices.
    wait_until(Duration::from_secs(10), "live readings and device status", || {
        let r = readings.replies();
        r.iter().any(|(t, v)| t.ends_with("/reading/scale-remote") && v["reading"]["weight"]["value"] == "2.480")
            && r.iter().any(|(t, _)| t.ends_with("/reading/scale-local"))
            && r.iter().any(|(t, v)| t.ends_with("/status") && v["devices"]["scanner-remote"]["state"] == "connected")
    });

    // Killing the bridge shows the device disconnected (its last will); a restart reconnects.
    kill9(&mut scanner_bridge);
    wait_until(Duration::from_secs(30), "the bridged scanner disconnected", || {
        device_states(&site, "scanner-remote").last().map(String::as_str) == Some("disconnected")
    });
    assert!(device_row(&site, "scanner-remote")["detail"].as_str().unwrap().contains("firmware-bridge is offline"));
    scanner_bridge = start_bridge(broker.port, "scanner-remote", &remote_scanner, &["--kind", "scanner"]);
    wait_until(Duration::from_secs(15), "the bridged scanner reconnected", || {
        device_states(&site, "scanner-remote").last().map(String::as_str) == Some("connected")
    });

    // Scans through the bridge while the agent is killed: each stored exactly once.
    let codes: Vec<String> = (0..40).map(|i| format!("]C0BRIDGED-{i:03}")).collect();
    for code in &codes[..20] {
        remote_scanner.write(format!("{code}\r\n").as_bytes());
    }
    std::thread::sleep(Duration::from_millis(50));
    daemon.kill9();
    for code in &codes[20..] {
        remote_scanner.write(format!("{code}\r\n").as_bytes());
    }
    let daemon = site.start();
    wait_until(Duration::from_secs(20), "every bridged scan", || {
        let raws: Vec<Value> = events(&site, "scan").iter().map(|e| e["payload"]["raw"].clone()).collect();
        codes.iter().all(|c| raws.contains(&Value::String(c.clone())))
    });
    std::thread::sleep(Duration::from_millis(500));
    let reader = dockhand::store::StoreReader::open(&site.store_path()).unwrap();
    let stored: Vec<Value> = reader
        .batch_after(0, 100_000, usize::MAX, None)
        .unwrap()
        .0
        .iter()
        .map(|item| serde_json::from_str::<Value>(&item.body).unwrap())
        .filter(|e| e["kind"] == "scan")
        .collect();
    for code in &codes {
        let n = stored.iter().filter(|e| e["payload"]["raw"] == code.as_str()).count();
        assert_eq!(n, 1, "{code} stored {n} times");
    }
    daemon.stop();
    kill9(&mut scanner_bridge);
    kill9(&mut scale_bridge);
}

/// The bridge's link to the gateway's broker over TLS with a test CA and a client certificate —
/// the same certificate checks as the agent's. A bridge that trusts another CA is refused and
/// says which flag to fix.
#[test]
fn a_firmware_bridge_over_tls_with_a_client_certificate_and_an_unknown_ca_refused() {
    if !dockhand_tests::mqtt::mosquitto_available() {
        return;
    }
    use dockhand_tests::mqtt::{Mosquitto, TestPki};
    let site = Site::new(EXE);
    let pki = TestPki::generate(site.dir.path(), "gw");
    let broker = Mosquitto::start_with(site.dir.path(), Some(pki.clone()));
    let tls_port = broker.tls_port.unwrap();
    let mut scanner = VirtualPort::start(site.dir.path(), "tls-scanner");
    site.write_config(&format!(
        "{FILE_SINK}\n[mqtt]\nhost = \"127.0.0.1\"\nport = {}\n\n[[device]]\nname = \"scanner-tls\"\nkind = \"scanner\"\ntransport = \"mqtt\"\n",
        broker.port
    ));
    let daemon = site.start();
    let bridge_log = site.path("bridge.log");
    let scanner_path = scanner.path.clone();
    let spawn = |ca: &std::path::Path, log: &std::path::Path| {
        std::process::Command::new(BRIDGE)
            .args(["--broker", &format!("127.0.0.1:{tls_port}"), "--site", "T1", "--device", "scanner-tls"])
            .arg("--path")
            .arg(&scanner_path)
            .args(["--kind", "scanner", "--ca-file"])
            .arg(ca)
            .arg("--client-cert-file")
            .arg(&pki.client_cert)
            .arg("--client-key-file")
            .arg(&pki.client_key)
            .stdout(std::process::Stdio::null())
            .stderr(std::fs::File::create(log).unwrap())
            .spawn()
            .expect("start firmware-bridge")
    };
    let mut bridge = spawn(&pki.ca, &bridge_log);
    wait_until(Duration::from_secs(15), "the bridged scanner connected over TLS", || {
        device_states(&site, "scanner-tls").last().map(String::as_str) == Some("connected")
    });
    scanner.write(b"]C0OVER-TLS-001\r\n");
    wait_until(Duration::from_secs(15), "the scan through the TLS bridge", || {
        events(&site, "scan").iter().any(|e| e["payload"]["raw"] == "]C0OVER-TLS-001")
    });
    assert!(std::fs::read_to_string(&bridge_log).unwrap().contains("connected to the broker."));
    kill9(&mut bridge);

    // Another CA: the broker's certificate is refused, and the bridge says what to give it.
    let other = TestPki::generate(site.dir.path(), "other");
    let refused_log = site.path("bridge-refused.log");
    let mut refused = spawn(&other.ca, &refused_log);
    wait_until(Duration::from_secs(15), "the bridge to report the refusal", || {
        std::fs::read_to_string(&refused_log).unwrap_or_default().contains("cannot reach the broker")
    });
    let text = std::fs::read_to_string(&refused_log).unwrap();
    assert!(text.contains("UnknownIssuer") && text.contains("give --ca-file the CA that signed it"), "{text}");
    assert!(!text.contains("connected to the broker."), "{text}");
    kill9(&mut refused);
    daemon.stop();
}

/// A serial-device server (a Moxa NPort in TCP server mode) with an MT-SICS scale behind it.
fn serial_device_server(weight: &'static str) -> (u16, std::thread::JoinHandle<()>) {
    use std::io::{Read, Write};
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let handle = std::thread::spawn(move || {
        // One connection, as such servers allow by default; it ends when the test ends.
        let Ok((mut conn, _)) = listener.accept() else { return };
        let mut buf = [0u8; 64];
        let mut pending = Vec::new();
        while let Ok(n) = conn.read(&mut buf) {
            if n == 0 {
                return;
            }
            pending.extend_from_slice(&buf[..n]);
            while let Some(end) = pending.windows(2).position(|w| w == b"\r\n") {
                pending.drain(..end + 2);
                if conn.write_all(format!("S S {weight:>10} kg\r\n").as_bytes()).is_err() {
                    return;
                }
            }
        }
    });
    (port, handle)
}

#[test]
fn a_scale_behind_a_serial_device_server_over_tcp() {
    let site = Site::new(EXE);
    let (port, _server) = serial_device_server("7.125");
    site.write_config(&format!(
        r#"{FILE_SINK}
[[device]]
name = "dock-scale"
kind = "scale"
transport = "tcp"
address = "127.0.0.1:{port}"
protocol = "mt-sics"
poll_interval = "50ms"
"#
    ));
    let daemon = site.start();
    wait_until(Duration::from_secs(10), "the weight over TCP", || !events(&site, "weight").is_empty());
    let w = &events(&site, "weight")[0];
    assert_eq!(w["payload"]["value"], "7.125");
    assert_eq!(w["source"]["transport"], "tcp");
    assert_eq!(device_row(&site, "dock-scale")["state"], "connected");
    daemon.stop();
}

#[test]
fn a_reload_restarts_only_the_devices_whose_settings_changed() {
    let site = Site::new(EXE);
    let mut first = VirtualPort::start(site.dir.path(), "first");
    let mut second = VirtualPort::start(site.dir.path(), "second");
    let device = |name: &str, port: &VirtualPort, extra: &str| {
        format!("[[device]]\nname = \"{name}\"\nkind = \"scanner\"\npath = \"{}\"\n{extra}\n", port.path.display())
    };
    site.write_config(&format!("{FILE_SINK}\n{}", device("first", &first, "")));
    let daemon = site.start();
    wait_until(Duration::from_secs(10), "first connected", || device_states(&site, "first") == ["connected"]);

    // Add a device: the running one is left alone (no second "connected"), the new one starts.
    site.write_config(&format!("{FILE_SINK}\n{}\n{}", device("first", &first, ""), device("second", &second, "")));
    daemon.signal(libc::SIGHUP);
    wait_until(Duration::from_secs(10), "second connected", || device_states(&site, "second") == ["connected"]);
    first.write(b"]C0KEPT-OPEN\r\n");
    second.write(b"]C0NEW-DEVICE\r\n");
    wait_until(Duration::from_secs(10), "both scans", || events(&site, "scan").len() == 2);
    assert_eq!(device_states(&site, "first"), ["connected"], "an unchanged device is not restarted");

    // Change the first one's framing: only it restarts, and the new framing applies.
    site.write_config(&format!(
        "{FILE_SINK}\n{}\n{}",
        device("first", &first, "suffix = \"#\""),
        device("second", &second, "")
    ));
    daemon.signal(libc::SIGHUP);
    wait_until(Duration::from_secs(10), "the first device restarted", || {
        daemon.log().matches("Device task started").count() == 3
    });
    std::thread::sleep(Duration::from_millis(300));
    first.write(b"]C0HASH-FRAMED#");
    wait_until(Duration::from_secs(10), "the hash-framed scan", || {
        events(&site, "scan").iter().any(|e| e["payload"]["raw"] == "]C0HASH-FRAMED")
    });
    assert_eq!(device_states(&site, "second"), ["connected"]);

    // Remove the second: its row leaves `status`.
    site.write_config(&format!("{FILE_SINK}\n{}", device("first", &first, "suffix = \"#\"")));
    daemon.signal(libc::SIGHUP);
    wait_until(Duration::from_secs(10), "the removed device gone from status", || {
        status_json(&site)["devices"].as_array().is_some_and(|d| d.len() == 1)
    });
    daemon.stop();
}

fn metrics(port: u16) -> String {
    use std::io::{Read, Write};
    let mut s = std::net::TcpStream::connect(("127.0.0.1", port)).unwrap();
    write!(s, "GET /metrics HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n").unwrap();
    let mut text = String::new();
    s.read_to_string(&mut text).unwrap();
    text
}

#[test]
fn everyday_input_is_kept_exactly_unprefixed_scans_invalid_utf8_bad_dates_and_noisy_scale_lines() {
    let site = Site::new(EXE);
    let mut scanner = VirtualPort::start(site.dir.path(), "scanner");
    let mut scale = VirtualPort::start(site.dir.path(), "scale");
    site.write_config(&format!(
        r##"{FILE_SINK}
[[device]]
name = "scanner"
kind = "scanner"
path = "{}"
prefix = "#"

[[device]]
name = "scale"
kind = "scale"
path = "{}"
protocol = "mt-sics"
poll_interval = "10s"
"##,
        scanner.path.display(),
        scale.path.display()
    ));
    let daemon = site.start();
    for device in ["scanner", "scale"] {
        wait_until(Duration::from_secs(10), &format!("{device} connected"), || {
            device_states(&site, device).last().map(String::as_str) == Some("connected")
        });
    }
    scanner.write(b"#]C0WITH-PREFIX\r\n");
    // Two scans from a scanner that lost its prefix setting: both kept, one warning.
    scanner.write(b"NO-PREFIX-1\r\nNO-PREFIX-2\r\n");
    // A valid UTF-8 e-acute next to one stray byte.
    scanner.write(b"#]C0caf\xc3\xa9 \xff\r\n");
    // AI 7003 (expiry date and time) with hour 25.
    scanner.write(b"#]C170032612312500\r\n");
    wait_until(Duration::from_secs(10), "five scans", || events(&site, "scan").len() == 5);
    let scans = events(&site, "scan");
    let raws: Vec<&str> = scans.iter().map(|e| e["payload"]["raw"].as_str().unwrap()).collect();
    assert_eq!(
        raws,
        vec!["]C0WITH-PREFIX", "NO-PREFIX-1", "NO-PREFIX-2", "]C0caf\u{e9} \u{fffd}", "]C170032612312500"]
    );
    assert_eq!(scans[3]["payload"]["raw_hex"], "5d4330636166c3a920ff", "the exact bytes are kept");
    assert!(scans[0]["payload"].get("raw_hex").is_none());
    assert!(scans[4]["payload"].get("parsed").is_none(), "an invalid date is not interpreted");
    let log = daemon.log();
    assert_eq!(log.matches("without the configured prefix").count(), 1, "one warning, then counted:\n{log}");
    assert!(log.contains("(7003) at byte 13 is not a valid YYMMDDHHMM date and time: hour 25"), "{log}");
    let text = metrics(site.metrics_port);
    assert!(text.contains("dockhand_scans_kept_raw_total{reason=\"prefix_missing\"} 2"), "{text}");
    assert!(text.contains("dockhand_scans_kept_raw_total{reason=\"not_utf8\"} 1"), "{text}");

    // A scale line behind XON/XOFF and line noise is still decoded.
    for _ in 0..4 {
        scale.write(b"\x11\x13~#S S      1.250 kg\r\n");
        std::thread::sleep(Duration::from_millis(50));
    }
    wait_until(Duration::from_secs(10), "the weight", || !events(&site, "weight").is_empty());
    assert_eq!(events(&site, "weight")[0]["payload"]["value"], "1.250");
    daemon.stop();
}

#[test]
fn scanner_delimiters_by_name_are_the_control_characters_not_letters() {
    let site = Site::new(EXE);
    let mut scanner = VirtualPort::start(site.dir.path(), "scanner");
    let config = |suffix: &str, prefix: &str| {
        format!(
            "{FILE_SINK}\n[[device]]\nname = \"scanner\"\nkind = \"scanner\"\npath = \"{}\"\nsuffix = \"{suffix}\"\nprefix = \"{prefix}\"\n",
            scanner.path.display()
        )
    };
    // A misleading name is refused with the escape to write.
    site.write_config(&config("ESC", "stx"));
    let out = site.cli(&["check-config"]);
    let err = String::from_utf8_lossy(&out.stderr).into_owned();
    assert!(!out.status.success() && err.contains("suffix") && err.contains("\\u001B"), "{err}");
    // CR ends a scan; stx (any case) starts one.
    site.write_config(&config("CR", "stx"));
    let out = site.cli(&["check-config"]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let daemon = site.start();
    wait_until(Duration::from_secs(10), "scanner connected", || {
        device_states(&site, "scanner").last().map(String::as_str) == Some("connected")
    });
    scanner.write(b"\x02WH/OUT/00042\r\x02CRATE-7\r");
    wait_until(Duration::from_secs(10), "two scans", || events(&site, "scan").len() == 2);
    let raws: Vec<String> =
        events(&site, "scan").iter().map(|e| e["payload"]["raw"].as_str().unwrap().to_owned()).collect();
    assert_eq!(raws, vec!["WH/OUT/00042", "CRATE-7"]);
    daemon.stop();
}
