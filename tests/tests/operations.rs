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

fn status_json(site: &Site) -> serde_json::Value {
    let out = site.cli(&["status", "--json"]);
    assert_eq!(out.status.code(), Some(0), "{}", String::from_utf8_lossy(&out.stderr));
    serde_json::from_slice(&out.stdout).unwrap()
}

fn scrape(site: &Site) -> HashMap<String, f64> {
    parse_prometheus(&get(site.metrics_port, "/metrics").1)
}

/// A bad edit refused by SIGHUP keeps the daemon on its running config, and must not take away
/// the technician's tools: `status`, `print list` and `dlq list` read the store with a warning
/// naming the line. `status`, `/metrics` and `/health` say when the file on disk is not what runs.
#[test]
fn a_refused_edit_leaves_status_print_and_dlq_working_and_is_reported_until_fixed() {
    let site = Site::new(EXE);
    site.write_config("[[sink]]\nname = \"archive\"\ntype = \"file\"\npath = \"archive.ndjson\"\n");
    let good = std::fs::read_to_string(site.config()).unwrap();
    let daemon = site.start();
    assert_eq!(status_json(&site)["config"]["state"], "applied");
    assert_eq!(scrape(&site)["dockhand_config_applied"], 1.0);

    // A valid edit not reloaded yet.
    std::fs::write(site.config(), format!("{good}\n# pack station 2 added tomorrow\n")).unwrap();
    assert_eq!(status_json(&site)["config"]["state"], "edited");
    let text = String::from_utf8_lossy(&site.cli(&["status"]).stdout).into_owned();
    assert!(
        text.contains("changed after the daemon loaded it") && text.contains("systemctl reload dockhand"),
        "{text}"
    );
    assert_eq!(scrape(&site)["dockhand_config_applied"], 0.0);
    let (code, body) = get(site.metrics_port, "/health");
    assert_eq!(code, 200, "an edit not applied is a warning, not a failing gateway: {body}");
    assert!(body.contains("warnings") && body.contains("changed after the daemon loaded it"), "{body}");

    // A bad edit, refused at the reload.
    std::fs::write(
        site.config(),
        good.replace("[store]\npath = \"store.db\"", "[store]\npath = \"store.db\"\nmax_bytes = \"lots\""),
    )
    .unwrap();
    daemon.signal(libc::SIGHUP);
    wait_until(Duration::from_secs(10), "the refusal", || daemon.log().contains("keeping the running one"));
    wait_until(Duration::from_secs(10), "the refusal recorded", || status_json(&site)["config"]["state"] == "refused");
    let status = site.cli(&["status"]);
    let (out, err) = (String::from_utf8_lossy(&status.stdout), String::from_utf8_lossy(&status.stderr));
    assert_eq!(status.status.code(), Some(0), "{err}");
    assert!(
        err.contains("dockhand.toml:7:") && err.contains("max_bytes") && err.contains("reading the store"),
        "{err}"
    );
    assert!(out.contains("the daemon refused the config file") && out.contains("max_bytes"), "{out}");
    for args in [&["print", "list"][..], &["dlq", "list"]] {
        let out = site.cli(args);
        assert_eq!(out.status.code(), Some(0), "{args:?}: {}", String::from_utf8_lossy(&out.stderr));
        assert!(String::from_utf8_lossy(&out.stderr).contains("warning"), "{args:?}");
    }
    let metrics = scrape(&site);
    assert_eq!((metrics["dockhand_config_applied"], metrics["dockhand_config_reload_refused"]), (0.0, 1.0));

    // Fixed and reloaded: nothing to report any more.
    std::fs::write(site.config(), &good).unwrap();
    daemon.signal(libc::SIGHUP);
    wait_until(Duration::from_secs(10), "the fixed file applied", || {
        status_json(&site)["config"]["state"] == "applied"
    });
    assert_eq!(get(site.metrics_port, "/health"), (200, r#"{"status":"ok"}"#.to_string()));
    assert_eq!(daemon.stop().code(), Some(0));

    // Broken while the daemon is down: the next start would fail, and status says so.
    std::fs::write(site.config(), format!("{good}\nbogus_key = 1\n")).unwrap();
    let status = site.cli(&["status"]);
    assert_eq!(status.status.code(), Some(0));
    assert!(String::from_utf8_lossy(&status.stdout).contains("the daemon will not start with it"));
}

/// `status --json` has one place for each thing: the store's figures under `store`, the pid only
/// under `daemon`, a sink's `last_error` only while the sink fails, and print jobs counted by state
/// (the queue alone reads as "no jobs" once everything printed).
#[test]
fn status_json_shows_each_thing_once_and_forgets_an_error_once_the_sink_recovered() {
    let site = Site::new(EXE);
    site.write_config(
        "[[sink]]\nname = \"late\"\ntype = \"file\"\npath = \"later/out.ndjson\"\nbatch = { linger = \"0ms\" }\n",
    );
    fill_store(&site.store_path(), 10);
    let daemon = site.start();
    wait_until(Duration::from_secs(10), "the sink failing", || status_json(&site)["sinks"][0]["state"] == "retrying");
    let failing = status_json(&site);
    assert!(failing["sinks"][0]["last_error"].as_str().is_some_and(|e| e.contains("later")), "{failing}");
    std::fs::create_dir(site.path("later")).unwrap();
    wait_until(Duration::from_secs(30), "delivery after the folder appeared", || {
        read_ndjson(&site.path("later/out.ndjson")).len() == 10
    });
    wait_until(Duration::from_secs(10), "the sink ok", || status_json(&site)["sinks"][0]["state"] == "ok");
    let json = status_json(&site);
    let sink = &json["sinks"][0];
    assert!(sink["last_error"].is_null() && sink["next_attempt_at"].is_null(), "{json}");
    assert_eq!(sink["delivered"], 10);
    let text = String::from_utf8_lossy(&site.cli(&["status"]).stdout).into_owned();
    assert!(!text.contains("last error"), "{text}");
    let top: Vec<&str> = json.as_object().unwrap().keys().map(String::as_str).collect();
    for key in ["pid", "last_seq", "file_bytes", "heartbeat_at"] {
        assert!(!top.contains(&key), "{key} at the top level: {top:?}");
    }
    assert_eq!(json["store"]["last_seq"], 10);
    assert_eq!(json["daemon"]["state"], "running");
    assert!(json["daemon"]["pid"].is_u64(), "{json}");
    assert!(json["print_jobs_by_state"].is_object() && json["print_queue"].is_array(), "{json}");
    assert_eq!(daemon.stop().code(), Some(0));
}

/// A scrape of a daemon with every kind of series (sinks ok and failing, dead letters, a scanner,
/// a printer, print jobs) passes `promtool check metrics`, the linter Prometheus ships (Debian's
/// `prometheus` package, installed by scripts/test.sh).
#[test]
fn a_full_scrape_passes_promtool_check_metrics() {
    let site = Site::new(EXE);
    let scanner = dockhand_tests::pty::VirtualPort::start(site.dir.path(), "scanner");
    let zebra = dockhand_tests::printer::SimulatedPrinter::on_tcp();
    site.write_config(&format!(
        "[[sink]]\nname = \"archive\"\ntype = \"file\"\npath = \"archive.ndjson\"\n\n\
         [[sink]]\nname = \"stuck\"\ntype = \"file\"\npath = \"missing/out.ndjson\"\n\n\
         [[device]]\nname = \"scanner-1\"\nkind = \"scanner\"\npath = \"{}\"\n\n\
         [[device]]\nname = \"zebra-1\"\nkind = \"printer\"\ntransport = \"tcp\"\naddress = \"127.0.0.1:{}\"\n",
        scanner.path.display(),
        zebra.port.unwrap()
    ));
    fill_store(&site.store_path(), 20);
    let daemon = site.start();
    wait_until(Duration::from_secs(10), "devices and the failing sink in the metrics", || {
        let m = scrape(&site);
        m.get("dockhand_device_connected{device=\"scanner-1\"}") == Some(&1.0)
            && m.get("dockhand_sink_retried_total{sink=\"stuck\"}").is_some_and(|v| *v >= 1.0)
    });
    assert!(site.cli(&["print-test", "zebra-1"]).status.success());
    let (_, body) = get(site.metrics_port, "/metrics");
    let metrics = parse_prometheus(&body);
    assert_eq!(metrics["dockhand_print_jobs{state=\"printed\"}"], 1.0, "{body}");
    assert_eq!(metrics["dockhand_dead_letters_open{sink=\"stuck\"}"], 0.0, "{body}");
    let mut promtool = std::process::Command::new("promtool")
        .args(["check", "metrics"])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("promtool is not installed (apt-get install prometheus; scripts/test.sh installs it)");
    promtool.stdin.take().unwrap().write_all(body.as_bytes()).unwrap();
    let out = promtool.wait_with_output().unwrap();
    let report = format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    assert!(out.status.success() && report.trim().is_empty(), "promtool check metrics: {report}\n{body}");
    assert_eq!(daemon.stop().code(), Some(0));
}

/// `[health] devices = "required"` turns `/health` 503 while a device is unplugged, naming it, and
/// back to 200 once it is there; without the rule a missing device leaves `/health` at 200.
#[test]
fn health_holds_devices_to_account_only_when_configured() {
    let site = Site::new(EXE);
    let scanner = site.path("serial/by-id/usb-Honeywell_1900-if00");
    let device = format!(
        "[[sink]]\nname = \"archive\"\ntype = \"file\"\npath = \"archive.ndjson\"\n\n\
         [[device]]\nname = \"scanner-1\"\nkind = \"scanner\"\npath = \"{}\"\n",
        scanner.display()
    );
    site.write_config(&device);
    let daemon = site.start();
    wait_until(Duration::from_secs(10), "the device reported missing", || {
        scrape(&site).get("dockhand_device_connected{device=\"scanner-1\"}") == Some(&0.0)
    });
    assert_eq!(get(site.metrics_port, "/health").0, 200, "devices are ignored by default");
    site.write_config(&format!("{device}\n[health]\ndevices = \"required\"\n"));
    daemon.signal(libc::SIGHUP);
    wait_until(Duration::from_secs(10), "/health failing on the device", || get(site.metrics_port, "/health").0 == 503);
    let (_, body) = get(site.metrics_port, "/health");
    assert!(body.contains("device scanner-1 is disconnected") && body.contains("usb-Honeywell_1900-if00"), "{body}");
    // Plugged in: a pty appears at the configured path.
    std::fs::create_dir_all(scanner.parent().unwrap()).unwrap();
    let port = dockhand_tests::pty::VirtualPort::start(site.dir.path(), "honeywell");
    std::os::unix::fs::symlink(&port.path, &scanner).unwrap();
    wait_until(Duration::from_secs(15), "/health ok with the device connected", || {
        get(site.metrics_port, "/health").0 == 200
    });
    assert_eq!(daemon.stop().code(), Some(0));
}

/// The journal reads as sentences with their figures: the periodic delivery line says what its
/// number of seconds means, and with `format = "json"` every line is one object with exactly one
/// `"message"` (station lines used to carry two, which strict parsers reject).
#[test]
fn log_lines_say_what_their_figures_mean_and_json_lines_have_one_message() {
    let site = Site::new(EXE);
    let mut counter = dockhand_tests::pty::VirtualPort::start(site.dir.path(), "counter");
    let mut desk = dockhand_tests::pty::VirtualPort::start(site.dir.path(), "desk");
    site.write_config(&format!(
        "[[sink]]\nname = \"archive\"\ntype = \"file\"\npath = \"archive.ndjson\"\nbatch = {{ linger = \"0ms\" }}\n\n\
         [[device]]\nname = \"counter\"\nkind = \"scanner\"\npath = \"{}\"\n\n\
         [[device]]\nname = \"desk\"\nkind = \"scanner\"\npath = \"{}\"\n\n\
         [[station]]\nname = \"in1\"\nworkflow = \"receive\"\nscanner = \"desk\"\n",
        counter.path.display(),
        desk.path.display()
    ));
    let text = std::fs::read_to_string(site.config()).unwrap();
    std::fs::write(
        site.config(),
        text.replace("[log]\nlevel = \"info\"", "[log]\nlevel = \"info\"\nformat = \"json\""),
    )
    .unwrap();
    let daemon = site.start();
    wait_until(Duration::from_secs(10), "both scanners connected", || {
        let json = status_json(&site);
        json["devices"].as_array().is_some_and(|d| d.iter().filter(|d| d["state"] == "connected").count() == 2)
    });
    desk.write(b"WH/IN/00007\r\n");
    counter.write(b"]E05901234123457\r\n");
    wait_until(Duration::from_secs(10), "the station step", || daemon.log().contains("WH/IN/00007"));
    // The delivery line comes every 10 s while events flow.
    std::thread::sleep(Duration::from_millis(10_500));
    counter.write(b"]E05901234123457\r\n");
    wait_until(Duration::from_secs(10), "the delivery line", || daemon.log().contains("Delivering:"));
    let log = daemon.log();
    let lines: Vec<serde_json::Value> = log
        .lines()
        .filter(|l| l.starts_with('{'))
        .map(|l| {
            assert_eq!(l.matches("\"message\":").count(), 1, "one message per line: {l}");
            serde_json::from_str(l).unwrap_or_else(|e| panic!("{e}: {l}"))
        })
        .collect();
    let step = lines.iter().find(|l| l["told"].as_str().is_some_and(|t| t.contains("WH/IN/00007"))).unwrap();
    assert_eq!(step["message"], "Station step.", "{step}");
    let delivering =
        lines.iter().find(|l| l["message"].as_str().is_some_and(|m| m.starts_with("Delivering:"))).unwrap();
    let (n, s) = (delivering["delivered"].as_u64().unwrap(), delivering["in_last_seconds"].as_u64().unwrap());
    assert_eq!(delivering["message"], format!("Delivering: {n} event(s) in the last {s} s."), "{delivering}");
    assert!(s >= 10, "{delivering}");
    assert_eq!(daemon.stop().code(), Some(0));
}
