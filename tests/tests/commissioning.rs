//! Commissioning a pack station the way a field technician does it from the README and
//! docs/DEVICES.md: a scanner and an MT-SICS scale on pseudo-terminals, a ZPL printer on TCP 9100
//! answering `~HS`. check-config, check-config --connect (every line ✓), devices, print-test, one
//! pack cycle, status while running and after the stop — asserting the lines the technician reads.

#![allow(clippy::unwrap_used)] // test code: a panic is the failure report

use std::time::Duration;

use dockhand_tests::printer::SimulatedPrinter;
use dockhand_tests::pty::{Display, SimulatedScale, VirtualPort};
use dockhand_tests::{Site, read_ndjson, wait_until};

const EXE: &str = env!("CARGO_BIN_EXE_dockhand-e2e");

fn stdout(out: &std::process::Output) -> String {
    String::from_utf8_lossy(&out.stdout).into_owned()
}

#[test]
fn commissioning_a_pack_station_from_first_check_to_status_after_stop() {
    let site = Site::new(EXE);
    let mut scanner = VirtualPort::start(site.dir.path(), "scanner");
    let scale_port = VirtualPort::start(site.dir.path(), "scale");
    let scale = SimulatedScale::mt_sics(&scale_port);
    let zebra = SimulatedPrinter::on_tcp();
    let zebra_port = zebra.port.unwrap();
    site.write_config(&format!(
        r#"
[[sink]]
name = "archive"
type = "file"
path = "events.ndjson"
batch = {{ linger = "0ms" }}

[[device]]
name = "scanner"
kind = "scanner"
path = "{scanner}"
suffix = "CRLF"

[[device]]
name = "scale"
kind = "scale"
path = "{scale}"
protocol = "mt-sics"
poll_interval = "100ms"

[[device]]
name = "printer"
kind = "printer"
transport = "tcp"
address = "127.0.0.1:{zebra_port}"
status_interval = "200ms"

[[label]]
name = "parcel"
zpl = "^XA^FO50,50^A0N,40,40^FD{{{{picking}}}}^FS^FO50,100^A0N,30,30^FD{{{{weight}}}} kg^FS^XZ"

[[station]]
name = "pack1"
workflow = "pack"
scanner = "scanner"
scale = "scale"
printer = "printer"
label = "parcel"
stable_readings = 2
"#,
        scanner = scanner.path.display(),
        scale = scale_port.path.display(),
    ));
    let config = site.config();
    let dir = site.dir.path();

    // 1. The file is valid.
    let check = site.cli(&["check-config"]);
    assert_eq!(check.status.code(), Some(0));
    assert_eq!(
        stdout(&check).lines().collect::<Vec<_>>(),
        [format!("✓ config {}: gateway test-gw at site T1, 1 sink(s), 3 device(s)", config.display())]
    );

    // 2. Every part answers; nothing is created by the check.
    let connect = site.cli(&["check-config", "--connect"]);
    let text = stdout(&connect);
    assert_eq!(connect.status.code(), Some(0), "{text}");
    assert!(text.lines().all(|l| l.starts_with('✓')), "{text}");
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines.len(), 6, "config, store, sink, 3 devices: {text}");
    // Who could create the files depends on the machine (root, or the service user): the rest is exact.
    assert!(lines[1].starts_with(&format!("✓ store {}: not created yet; ", dir.join("store.db").display())), "{text}");
    assert!(lines[1].ends_with(&format!("can create it in {}", dir.display())), "{text}");
    assert!(
        lines[2]
            .starts_with(&format!("✓ sink archive (file): {}: not created yet; ", dir.join("events.ndjson").display()))
    );
    assert_eq!(
        lines[3..],
        [
            format!("✓ device scanner: opened {} (9600 8N1)", scanner.path.display()),
            format!("✓ device scale: {} (9600 8N1) answers: 0.000 kg stable", scale_port.path.display()),
            format!("✓ device printer: tcp://127.0.0.1:{zebra_port} answers: ready"),
        ]
    );
    assert!(!dir.join("store.db").exists() && !dir.join("events.ndjson").exists(), "the check wrote files");

    // 3. The ports, by the names configured.
    let devices = stdout(&site.cli(&["devices"]));
    let configured: Vec<&str> = devices.lines().skip_while(|l| *l != "Configured serial devices:").collect();
    assert_eq!(
        configured,
        [
            "Configured serial devices:".to_string(),
            format!("  ✓ scanner (Scanner) at {}", scanner.path.display()),
            format!("  ✓ scale (Scale) at {}", scale_port.path.display()),
        ],
        "{devices}"
    );

    // 4. The daemon; a test label.
    let daemon = site.start();
    wait_until(Duration::from_secs(15), "all three devices connected", || {
        let json: serde_json::Value = serde_json::from_slice(&site.cli(&["status", "--json"]).stdout).unwrap();
        json["devices"].as_array().is_some_and(|d| d.len() == 3 && d.iter().all(|d| d["state"] == "connected"))
    });
    let test = site.cli(&["print-test", "printer"]);
    let test_text = stdout(&test);
    assert_eq!(test.status.code(), Some(0), "{test_text}");
    let test_lines: Vec<&str> = test_text.lines().collect();
    assert!(test_lines[0].starts_with("Test label test-printer-") && test_lines[0].ends_with(" queued for printer."));
    assert!(
        test_lines[1].starts_with("✓ sent to printer in ")
            && test_lines[1].ends_with(" s; printer status: connected (ready)"),
        "{test_text}"
    );
    wait_until(Duration::from_secs(5), "the test label at the printer", || zebra.count(b"^XZ") == 1);

    // 5. One pack cycle: scan the picking, the parcel settles on the scale, the label prints.
    scanner.write(b"WH/OUT/00042\r\n");
    std::thread::sleep(Duration::from_millis(300));
    scale.show(Display::Weight("2.480".into(), true));
    wait_until(Duration::from_secs(10), "the pack event delivered", || {
        read_ndjson(&dir.join("events.ndjson")).iter().any(|e| e["kind"] == "pack")
    });
    wait_until(Duration::from_secs(10), "the parcel label", || zebra.count(b"WH/OUT/00042") == 1);
    let pack = read_ndjson(&dir.join("events.ndjson")).into_iter().find(|e| e["kind"] == "pack").unwrap();
    assert_eq!(
        (pack["payload"]["picking"].as_str(), pack["payload"]["weight"].as_str()),
        (Some("WH/OUT/00042"), Some("2.480"))
    );

    // 6. status while running.
    let running = stdout(&site.cli(&["status"]));
    let lines: Vec<&str> = running.lines().collect();
    assert_eq!(lines[0], "OK: dockhand is running and nothing is stuck.", "{running}");
    let scale_detail = format!(" — {} (9600 8N1)", scale_port.path.display());
    let scanner_detail = format!(" — {} (9600 8N1)", scanner.path.display());
    for (device, detail) in
        [("printer", " — ready"), ("scale", scale_detail.as_str()), ("scanner", scanner_detail.as_str())]
    {
        assert!(
            lines.iter().any(|l| l.starts_with(&format!("device  {device} connected for ")) && l.ends_with(detail)),
            "{device}: {running}"
        );
    }
    assert!(
        lines.iter().any(|l| l.starts_with("station pack1 (pack) idle: waiting for a scan — last step ")),
        "{running}"
    );
    let sink = lines.iter().find(|l| l.starts_with("archive ")).unwrap();
    let cells: Vec<&str> = sink.split_whitespace().collect();
    assert_eq!(
        cells[..7],
        ["archive", "ok", "0", "-", "4", "0", "0"],
        "three device_status events and the pack event, all delivered: {running}"
    );

    // 7. After the stop: states are unknown since the stop, not "connected for" a growing time.
    assert_eq!(daemon.stop().code(), Some(0));
    let stopped = stdout(&site.cli(&["status"]));
    let lines: Vec<&str> = stopped.lines().collect();
    assert_eq!(lines[0], "ATTENTION: 1 problem(s)", "{stopped}");
    assert_eq!(lines[1], "  ! the daemon is not running: events are not being delivered (systemctl status dockhand)");
    let json: serde_json::Value = serde_json::from_slice(&site.cli(&["status", "--json"]).stdout).unwrap();
    let at = json["daemon"]["at"].as_str().unwrap().to_owned();
    for (device, detail) in
        [("printer", " — ready"), ("scale", scale_detail.as_str()), ("scanner", scanner_detail.as_str())]
    {
        let expected = format!("device  {device} unknown since the daemon stopped at {at} (then: connected{detail})");
        assert!(lines.contains(&expected.as_str()), "{expected}\n{stopped}");
    }
}
