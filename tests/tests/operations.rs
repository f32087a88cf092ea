//! Running dockhand as a service: the metrics endpoint scraped and parsed, the systemd notify
//! protocol over a real datagram socket, and secrets that never leak into logs, status or errors.

#![allow(clippy::unwrap_used)] // test code: a panic is the failure report

use std::collections::HashMap;
use std::io::{Read, Write};
use std::os::unix::net::UnixDatagram;
use std::time::Duration;

use dockhand_tests::{Site, fill_store, read_ndjson, wait_until};

const EXE: &str = env!("CARGO_BIN_EXE_dockhand-e2e");

fn get(port: u16, path: &str) -> (u16, String) {
    let mut s = std::net::TcpStream::connect(("127.0.0.1", port)).unwrap();
    write!(s, "GET {path} HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n").unwrap();
    let mut text = String::new();
    s.read_to_string(&mut text).unwrap();
    let status = text.split(' ').nth(1).and_then(|c| c.parse().ok()).unwrap_or(0);
    let body = text.split_once("\r\n\r\n").map(|(_, b)| b.to_string()).unwrap_or_default();
    (status, body)
}

/// Parses the Prometheus text format into `name{labels}` → value, checking every line's shape.
fn parse_prometheus(text: &str) -> HashMap<String, f64> {
    let mut out = HashMap::new();
    for line in text.lines().filter(|l| !l.is_empty()) {
        if let Some(rest) = line.strip_prefix("# ") {
            assert!(rest.starts_with("HELP ") || rest.starts_with("TYPE "), "bad comment line {line:?}");
            continue;
        }
        let (key, value) = line.rsplit_once(' ').unwrap_or_else(|| panic!("bad sample line {line:?}"));
        let value: f64 = value.parse().unwrap_or_else(|_| panic!("bad value in {line:?}"));
        let name = key.split('{').next().unwrap();
        assert!(name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_'), "bad metric name in {line:?}");
        out.insert(key.to_string(), value);
    }
    out
}

#[test]
fn metrics_are_scraped_and_parse_and_health_reports_ok() {
    let site = Site::new(EXE);
    site.write_config("[[sink]]\nname = \"archive\"\ntype = \"file\"\npath = \"archive.ndjson\"\nbatch = { linger = \"0ms\" }\n\n[[sink]]\nname = \"stuck\"\ntype = \"file\"\npath = \"missing/out.ndjson\"\n");
    fill_store(&site.store_path(), 120);
    let daemon = site.start();
    wait_until(Duration::from_secs(10), "delivery", || read_ndjson(&site.path("archive.ndjson")).len() >= 120);
    let mut metrics = HashMap::new();
    wait_until(Duration::from_secs(10), "the failing sink's first retries", || {
        let (status, body) = get(site.metrics_port, "/metrics");
        assert_eq!(status, 200);
        metrics = parse_prometheus(&body);
        metrics.get("dockhand_sink_retried_total{sink=\"stuck\"}").is_some_and(|v| *v >= 1.0)
    });
    assert_eq!(metrics["dockhand_sink_delivered_total{sink=\"archive\"}"], 120.0);
    assert_eq!(metrics["dockhand_sink_pending_events{sink=\"archive\"}"], 0.0);
    assert_eq!(metrics["dockhand_sink_pending_events{sink=\"stuck\"}"], 120.0);
    assert!(metrics["dockhand_sink_oldest_pending_age_seconds{sink=\"stuck\"}"] >= 0.0);
    assert_eq!(metrics["dockhand_store_events"], 120.0);
    assert!(metrics["dockhand_store_used_bytes"] > 0.0);
    assert_eq!(metrics["dockhand_build_info{version=\"0.1.0\"}"], 1.0);
    let (status, body) = get(site.metrics_port, "/health");
    assert_eq!((status, body.as_str()), (200, r#"{"status":"ok"}"#));
    assert_eq!(get(site.metrics_port, "/nope").0, 404);
    assert_eq!(daemon.stop().code(), Some(0));
}

#[test]
fn systemd_hears_ready_status_watchdog_and_stopping() {
    let site = Site::new(EXE);
    site.write_config("[[sink]]\nname = \"archive\"\ntype = \"file\"\npath = \"archive.ndjson\"\n");
    fill_store(&site.store_path(), 5);
    let socket_path = site.path("notify.sock");
    let socket = UnixDatagram::bind(&socket_path).unwrap();
    socket.set_read_timeout(Some(Duration::from_secs(20))).unwrap();
    let daemon = site.start_with_env(&[
        ("NOTIFY_SOCKET", socket_path.to_str().unwrap()),
        // WatchdogSec=2s as systemd would pass it: pings every second.
        ("WATCHDOG_USEC", "2000000"),
        ("WATCHDOG_PID", "0"),
    ]);
    let mut seen = Vec::new();
    let mut buf = [0u8; 4096];
    while !(seen.iter().any(|m: &String| m.contains("READY=1"))
        && seen.iter().filter(|m| m.contains("WATCHDOG=1")).count() >= 2
        && seen.iter().any(|m| m.contains("STATUS=") && m.contains("pending (archive")))
    {
        let n = socket.recv(&mut buf).expect("a notification within 20 s");
        seen.push(String::from_utf8_lossy(&buf[..n]).to_string());
    }
    daemon.signal(libc::SIGTERM);
    loop {
        let n = socket.recv(&mut buf).expect("STOPPING within 20 s");
        if String::from_utf8_lossy(&buf[..n]).contains("STOPPING=1") {
            break;
        }
    }
    assert_eq!(daemon.stop().code(), Some(0));
}

#[test]
fn secrets_never_appear_in_logs_status_or_errors() {
    let site = Site::new(EXE);
    let token = "tok-9f8e7d6c5b4a-SECRET";
    let signing = "sig-0a1b2c3d4e5f-SECRET";
    let password = "pw-1122334455-SECRET";
    std::fs::write(site.path("token"), token).unwrap();
    std::fs::write(site.path("signing"), signing).unwrap();
    std::fs::write(site.path("password"), password).unwrap();
    let port = dockhand_tests::mqtt::free_port();
    // The receiver URL answers nothing (connection refused) and the broker refuses the login:
    // errors mention the files and what to check, never their contents.
    site.write_config(&format!(
        "[mqtt]\nport = {port}\nusername = \"gw\"\npassword_file = \"password\"\n\n\
         [[sink]]\nname = \"cloud\"\ntype = \"http\"\nurl = \"http://127.0.0.1:{}/ingest\"\ntoken_file = \"token\"\nsigning_secret_file = \"signing\"\nretry = {{ initial = \"100ms\", max = \"200ms\" }}\n",
        dockhand_tests::mqtt::free_port()
    ));
    fill_store(&site.store_path(), 3);
    let daemon = site.start_with_env(&[("RUST_LOG", "trace")]);
    wait_until(Duration::from_secs(10), "a few failed attempts", || {
        daemon.log().matches("Delivery failed").count() >= 3
    });
    let mut outputs = vec![daemon.log()];
    for args in [&["status"][..], &["status", "--json"], &["check-config", "--connect"], &["dlq", "list"]] {
        let out = site.cli(args);
        outputs.push(String::from_utf8_lossy(&out.stdout).into_owned());
        outputs.push(String::from_utf8_lossy(&out.stderr).into_owned());
    }
    let (_, metrics) = get(site.metrics_port, "/metrics");
    outputs.push(metrics);
    assert_eq!(daemon.stop().code(), Some(0));
    for text in &outputs {
        for secret in [token, signing, password] {
            assert!(!text.contains(secret), "a secret leaked:\n{text}");
        }
    }
    // The token file readable by everyone is called out.
    assert!(outputs[0].contains("readable by every user"), "{}", outputs[0]);
}

#[test]
fn logs_fall_back_to_stderr_when_the_journal_is_not_there() {
    let site = Site::new(EXE);
    site.write_config("[[sink]]\nname = \"archive\"\ntype = \"file\"\npath = \"archive.ndjson\"\n");
    // As under systemd, but this machine has no journal socket: nothing may be lost.
    if std::path::Path::new("/run/systemd/journal/socket").exists() {
        eprintln!("a journal is running here; the fallback path is not exercised");
    }
    let daemon = site.start_with_env(&[("JOURNAL_STREAM", "8:12345")]);
    assert!(daemon.log().contains("dockhand is ready."));
    assert_eq!(daemon.stop().code(), Some(0));
}
