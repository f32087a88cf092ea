//! Stations under faults, with real parts only: the daemon killed with SIGKILL while two pack
//! stations run cycles fed by scanners behind real firmware-bridge processes (real mosquitto) and
//! pseudo-terminal scales; a station thousands of scans behind; a reload in a burst of scans.
//! The verdicts are read from the store file and the events the daemon stored.

#![allow(clippy::unwrap_used)] // test code: a panic is the failure report

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use dockhand_tests::mqtt::{Mosquitto, mosquitto_available};
use dockhand_tests::pty::{Display, SimulatedScale, VirtualPort};
use dockhand_tests::{Site, wait_until};
use serde_json::Value;

const EXE: &str = env!("CARGO_BIN_EXE_dockhand-e2e");
const BRIDGE: &str = env!("CARGO_BIN_EXE_firmware-bridge-e2e");

fn start_bridge(broker: u16, device: &str, port: &VirtualPort) -> std::process::Child {
    std::process::Command::new(BRIDGE)
        .args(["--broker", &format!("127.0.0.1:{broker}"), "--site", "T1", "--device", device, "--kind", "scanner"])
        .arg("--path")
        .arg(&port.path)
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .expect("start firmware-bridge")
}

/// Every stored event of `kind`, from the store itself (the sink may repeat after a kill; the
/// store must not).
fn stored(site: &Site, kind: &str) -> Vec<Value> {
    let reader = dockhand::store::StoreReader::open(&site.store_path()).unwrap();
    reader
        .batch_after(0, 1_000_000, usize::MAX, None)
        .unwrap()
        .0
        .iter()
        .map(|item| serde_json::from_str::<Value>(&item.body).unwrap())
        .filter(|e| e["kind"] == kind)
        .collect()
}

/// `(station, raw scan, consumed?, outcome)` of every scan handed to a station.
fn station_inputs(site: &Site) -> Vec<(String, String, bool, String)> {
    let conn =
        rusqlite::Connection::open_with_flags(site.store_path(), rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY).unwrap();
    conn.busy_timeout(Duration::from_secs(5)).unwrap();
    let mut stmt = conn
        .prepare(
            "SELECT station, body, consumed_at IS NOT NULL, coalesce(outcome, '') FROM station_inputs ORDER BY seq",
        )
        .unwrap();
    stmt.query_map([], |r| {
        let body: String = r.get(1)?;
        let body: Value = serde_json::from_str(&body).unwrap();
        Ok((r.get(0)?, body["scan"]["raw"].as_str().unwrap_or("").to_owned(), r.get(2)?, r.get(3)?))
    })
    .unwrap()
    .collect::<Result<_, _>>()
    .unwrap()
}

fn device_connected(site: &Site, device: &str) -> bool {
    let out = site.cli(&["status", "--json"]);
    let status: Value = serde_json::from_slice(&out.stdout).unwrap_or(Value::Null);
    status["store"]["devices"]
        .as_array()
        .or(status["devices"].as_array())
        .is_some_and(|d| d.iter().any(|d| d["name"] == device && d["state"] == "connected"))
}

#[test]
fn kill_9_during_station_cycles_loses_no_acknowledged_scan_and_stores_nothing_twice() {
    if !mosquitto_available() {
        return;
    }
    let site = Site::new(EXE);
    let broker = Mosquitto::start(site.dir.path());
    let scanner_a = VirtualPort::start(site.dir.path(), "scanner-a");
    let scanner_b = VirtualPort::start(site.dir.path(), "scanner-b");
    let scale_a_port = VirtualPort::start(site.dir.path(), "scale-a");
    let scale_b_port = VirtualPort::start(site.dir.path(), "scale-b");
    let scale_a = SimulatedScale::mt_sics(&scale_a_port);
    let scale_b = SimulatedScale::mt_sics(&scale_b_port);
    // The parcels sit still on the scales: every cycle that gets to weigh completes.
    scale_a.show(Display::Weight("1.250".into(), true));
    scale_b.show(Display::Weight("2.500".into(), true));
    site.write_config(&format!(
        r#"
[mqtt]
host = "127.0.0.1"
port = {}

[[sink]]
name = "file"
type = "file"
path = "events.ndjson"
batch = {{ max_events = 100, linger = "0ms" }}

[[device]]
name = "scanner-a"
kind = "scanner"
transport = "mqtt"

[[device]]
name = "scanner-b"
kind = "scanner"
transport = "mqtt"

[[device]]
name = "scale-a"
kind = "scale"
path = "{}"
protocol = "mt-sics"
poll_interval = "50ms"

[[device]]
name = "scale-b"
kind = "scale"
path = "{}"
protocol = "mt-sics"
poll_interval = "50ms"

[[station]]
name = "pack-a"
workflow = "pack"
scanner = "scanner-a"
scale = "scale-a"
stable_readings = 3

[[station]]
name = "pack-b"
workflow = "pack"
scanner = "scanner-b"
scale = "scale-b"
stable_readings = 3
"#,
        broker.port,
        scale_a_port.path.display(),
        scale_b_port.path.display()
    ));
    let mut daemon = site.start();
    let mut bridges =
        [start_bridge(broker.port, "scanner-a", &scanner_a), start_bridge(broker.port, "scanner-b", &scanner_b)];
    for device in ["scanner-a", "scanner-b", "scale-a", "scale-b"] {
        wait_until(Duration::from_secs(20), &format!("{device} connected"), || device_connected(&site, device));
    }

    // Operators scan a picking every 300 ms at each station, whatever happens to the daemon.
    const PER_STATION: usize = 40;
    let writer = std::thread::spawn(move || {
        let (mut a, mut b) = (scanner_a, scanner_b);
        let mut written = Vec::new();
        for i in 0..PER_STATION {
            for (port, line) in [(&mut a, "A"), (&mut b, "B")] {
                let picking = format!("WH/OUT{line}/{i:04}");
                port.write(format!("{picking}\r\n").as_bytes());
                written.push(picking);
            }
            std::thread::sleep(Duration::from_millis(300));
        }
        (written, a, b)
    });
    let mut kills = 0;
    let started = Instant::now();
    while kills < 5 {
        std::thread::sleep(Duration::from_millis(700 + fastrand::u64(0..900)));
        daemon.kill9();
        kills += 1;
        std::thread::sleep(Duration::from_millis(200));
        daemon = site.start();
    }
    let (written, _a, _b) = writer.join().unwrap();
    assert!(started.elapsed() < Duration::from_secs(60));

    // Everything settles: no scan waits, and the last cycles complete.
    wait_until(Duration::from_secs(60), "every scan consumed and every last cycle weighed", || {
        let inputs = station_inputs(&site);
        let packs = stored(&site, "pack");
        inputs.len() == written.len()
            && inputs.iter().all(|(_, _, consumed, _)| *consumed)
            && ["WH/OUTA/0039", "WH/OUTB/0039"].iter().all(|p| packs.iter().any(|e| e["payload"]["picking"] == *p))
    });
    let inputs = station_inputs(&site);
    let packs = stored(&site, "pack");
    let mut packed: BTreeMap<String, usize> = BTreeMap::new();
    for e in &packs {
        *packed.entry(e["payload"]["picking"].as_str().unwrap().to_owned()).or_default() += 1;
    }
    let restarted: String = inputs.iter().map(|(_, _, _, outcome)| outcome.as_str()).collect();
    let mut cut_short = 0;
    for picking in &written {
        // Each scan was handed to its station exactly once, whatever was killed when.
        let handed = inputs.iter().filter(|(_, raw, _, _)| raw == picking).count();
        assert_eq!(handed, 1, "{picking} handed to its station {handed} times");
        match packed.get(picking) {
            Some(1) => {}
            Some(n) => panic!("{picking} packed {n} times"),
            // Scans that queued while the daemon was down arrive together: each but the last
            // restarts the cycle before it weighs, and the operator is told so, durably.
            // A scan refused on its own (the scale not ready yet) says so in its outcome.
            None => {
                let own = inputs.iter().find(|(_, raw, _, _)| raw == picking).map_or("", |i| i.3.as_str());
                assert!(
                    restarted.contains(&format!("{picking} was not finished")) || own.contains("scale_not_ready"),
                    "{picking} vanished: {inputs:#?}\npacked: {packed:?}\nlog of the last run:\n{}",
                    daemon.log()
                );
                cut_short += 1;
            }
        }
    }
    for e in &packs {
        let station = e["source"]["station"].as_str().unwrap();
        let want = if station == "pack-a" { "1.250" } else { "2.500" };
        assert_eq!(e["payload"]["weight"], want);
    }
    eprintln!(
        "{kills} kills: {} pickings, {} packed, {cut_short} restarted by a later scan, {} cycles resumed after a kill",
        written.len(),
        packs.len(),
        daemon.log().matches("resumed the cycle").count()
    );
    daemon.stop();
    for b in &mut bridges {
        let _ = b.kill();
        let _ = b.wait();
    }
}

#[test]
fn a_station_ten_thousand_scans_behind_loses_none_with_bounded_memory() {
    let site = Site::new(EXE);
    let mut scanner = VirtualPort::start(site.dir.path(), "scanner");
    site.write_config(&format!(
        r#"
[[sink]]
name = "file"
type = "file"
path = "events.ndjson"

[[device]]
name = "scanner"
kind = "scanner"
path = "{}"

[[station]]
name = "forward"
workflow = "scan"
scanner = "scanner"
"#,
        scanner.path.display()
    ));
    // The daemon ran once (the store exists), then 10 000 scans wait for the station: what a
    // restart finds after the station fell behind.
    let daemon = site.start();
    wait_until(Duration::from_secs(10), "the scanner connected", || device_connected(&site, "scanner"));
    daemon.stop();
    const BEHIND: usize = 10_000;
    let path = site.store_path();
    let (store, _) = dockhand::store::Store::open(dockhand::store::StoreOptions::new(&path)).unwrap();
    let rt = tokio::runtime::Runtime::new().unwrap();
    rt.block_on(async {
        let mut pending = Vec::new();
        for i in 0..BEHIND {
            let body = serde_json::json!({"scan": {"raw": format!("BEHIND-{i:05}")}, "problem": null}).to_string();
            let input = dockhand::store::station_inputs::NewStationInput {
                station: "forward".into(),
                device: "scanner".into(),
                id: uuid::Uuid::now_v7(),
                occurred_at: dockhand::timestamp::Timestamp::now(),
                body,
            };
            pending.push(store.station_input(input));
            if pending.len() == 500 {
                for p in pending.drain(..) {
                    assert!(p.await.unwrap());
                }
            }
        }
        for p in pending {
            assert!(p.await.unwrap());
        }
    });
    store.close();
    let daemon = site.start();
    // New scans keep coming while it catches up.
    for i in 0..50 {
        scanner.write(format!("LIVE-{i:03}\r\n").as_bytes());
    }
    let started = Instant::now();
    let mut peak_kb = 0u64;
    wait_until(Duration::from_secs(180), "the backlog drained", || {
        if let Ok(status) = std::fs::read_to_string(format!("/proc/{}/status", daemon.pid())) {
            let hwm = status
                .lines()
                .find(|l| l.starts_with("VmHWM:"))
                .and_then(|l| l.split_whitespace().nth(1)?.parse().ok());
            peak_kb = peak_kb.max(hwm.unwrap_or(0));
        }
        station_inputs(&site).iter().all(|(_, _, consumed, _)| *consumed) && stored(&site, "scan").len() == BEHIND + 50
    });
    let drained = started.elapsed();
    let scans = stored(&site, "scan");
    let raws: Vec<&str> = scans.iter().map(|e| e["payload"]["raw"].as_str().unwrap()).collect();
    let behind: Vec<&&str> = raws.iter().filter(|r| r.starts_with("BEHIND-")).collect();
    assert_eq!(behind.len(), BEHIND, "every waiting scan stored once");
    assert!(behind.windows(2).all(|w| w[0] < w[1]), "in the order they were scanned");
    for i in 0..50 {
        assert_eq!(raws.iter().filter(|r| **r == format!("LIVE-{i:03}")).count(), 1);
    }
    eprintln!("drained {BEHIND} waiting scans in {drained:?}; peak RSS {peak_kb} kB");
    assert!(peak_kb < 64 * 1024, "memory must stay bounded: peak RSS {peak_kb} kB");
    daemon.stop();
}

#[test]
fn a_reload_that_restarts_a_station_during_a_burst_loses_no_scan() {
    let site = Site::new(EXE);
    let scanner = VirtualPort::start(site.dir.path(), "scanner");
    let scanner_path = scanner.path.clone();
    let config = |done: &str| {
        format!(
            r#"
[[sink]]
name = "file"
type = "file"
path = "events.ndjson"

[[device]]
name = "scanner"
kind = "scanner"
path = "{}"

[[station]]
name = "forward"
workflow = "scan"
scanner = "scanner"
done_barcode = "{done}"
"#,
            scanner_path.display()
        )
    };
    site.write_config(&config("DONE"));
    let daemon = site.start();
    wait_until(Duration::from_secs(10), "the scanner connected", || device_connected(&site, "scanner"));
    let writer = std::thread::spawn(move || {
        let mut port = scanner;
        for i in 0..300 {
            port.write(format!("BURST-{i:04}\r\n").as_bytes());
            std::thread::sleep(Duration::from_millis(10));
        }
        port
    });
    std::thread::sleep(Duration::from_millis(800));
    // A changed station setting: the reload stops and restarts the station mid-burst.
    site.write_config(&config("FINISHED"));
    daemon.signal(libc::SIGHUP);
    let _port = writer.join().unwrap();
    wait_until(Duration::from_secs(30), "every scan of the burst", || stored(&site, "scan").len() >= 300);
    std::thread::sleep(Duration::from_millis(300));
    let scans = stored(&site, "scan");
    for i in 0..300 {
        let raw = format!("BURST-{i:04}");
        let n = scans.iter().filter(|e| e["payload"]["raw"] == raw.as_str()).count();
        assert_eq!(n, 1, "{raw} stored {n} times");
    }
    assert!(
        daemon.log().contains("Stopping a task whose settings changed")
            && daemon.log().matches("Station started.").count() >= 2,
        "the station was restarted by the reload:\n{}",
        daemon.log()
    );
    daemon.stop();
}
