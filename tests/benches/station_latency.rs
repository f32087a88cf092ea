//! Stations and devices: scan → stored event latency, local and through a firmware-bridge, and
//! what the idle daemon costs with four devices and two stations.
//!
//!     cargo bench -p dockhand-tests --bench station_latency            # 20 s at 20 scans/s per scanner
//!     cargo bench -p dockhand-tests --bench station_latency -- 60      # a longer run
//!
//! Real parts: the daemon (release build), mosquitto, a firmware-bridge process, scanners and
//! MT-SICS scales on pseudo-terminals. Two `scan` stations: one fed by a local scanner, one by a
//! scanner behind the bridge, each with a polled scale. A scan's latency is from the moment its
//! bytes are written to the scanner's pty to the moment its event is visible in the store file
//! (a reader polls every millisecond), so it covers framing, the durable hand-off to the station,
//! the station's step commit — and, bridged, the bridge and the broker. The floor it is compared
//! with is one durable commit of this store on this disk, measured in the same run.

#![allow(clippy::unwrap_used)] // a benchmark harness: a panic is the failure report

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use dockhand_tests::Site;
use dockhand_tests::mqtt::{Mosquitto, mosquitto_available};
use dockhand_tests::pty::{SimulatedScale, VirtualPort};

const EXE: &str = env!("CARGO_BIN_EXE_dockhand-e2e");
const BRIDGE: &str = env!("CARGO_BIN_EXE_firmware-bridge-e2e");
const RATE_PER_S: u64 = 20;

fn main() {
    let seconds: u64 = std::env::args().skip(1).find_map(|a| a.parse().ok()).unwrap_or(20);
    if !mosquitto_available() {
        eprintln!("mosquitto is not installed; the bridged path cannot be measured");
        std::process::exit(1);
    }
    let site = Site::new(EXE);
    let broker = Mosquitto::start(site.dir.path());
    let mut local = VirtualPort::start(site.dir.path(), "scanner-local");
    let mut remote = VirtualPort::start(site.dir.path(), "scanner-remote");
    let scale_a_port = VirtualPort::start(site.dir.path(), "scale-a");
    let scale_b_port = VirtualPort::start(site.dir.path(), "scale-b");
    let _scale_a = SimulatedScale::mt_sics(&scale_a_port);
    let _scale_b = SimulatedScale::mt_sics(&scale_b_port);
    site.write_config(&format!(
        r#"
[mqtt]
host = "127.0.0.1"
port = {}

[[sink]]
name = "file"
type = "file"
path = "events.ndjson"

[[device]]
name = "scanner-local"
kind = "scanner"
path = "{}"

[[device]]
name = "scanner-remote"
kind = "scanner"
transport = "mqtt"

[[device]]
name = "scale-a"
kind = "scale"
path = "{}"
protocol = "mt-sics"

[[device]]
name = "scale-b"
kind = "scale"
path = "{}"
protocol = "mt-sics"

[[station]]
name = "local"
workflow = "scan"
scanner = "scanner-local"
scale = "scale-a"

[[station]]
name = "bridged"
workflow = "scan"
scanner = "scanner-remote"
scale = "scale-b"
"#,
        broker.port,
        local.path.display(),
        scale_a_port.path.display(),
        scale_b_port.path.display()
    ));
    let floor = commit_floor(&site.path("floor.db"));
    let daemon = site.start();
    let mut bridge = std::process::Command::new(BRIDGE)
        .args(["--broker", &format!("127.0.0.1:{}", broker.port), "--site", "T1"])
        .args(["--device", "scanner-remote", "--kind", "scanner", "--path"])
        .arg(&remote.path)
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    std::thread::sleep(Duration::from_secs(3));

    // 1. Idle: four devices (two scales polled 4 times a second), two stations, the MQTT links.
    let pid = daemon.pid() as u32;
    let idle_s = 30;
    let before = cpu_seconds(pid);
    std::thread::sleep(Duration::from_secs(idle_s));
    let idle_pct = (cpu_seconds(pid) - before) / idle_s as f64 * 100.0;

    // 2. 20 scans a second into each scanner, each timed until its event is in the store.
    let seen: Arc<Mutex<HashMap<String, Instant>>> = Arc::default();
    let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let watcher = watch_store(site.store_path(), seen.clone(), stop.clone());
    let mut written: Vec<(String, Instant)> = Vec::new();
    let n = seconds * RATE_PER_S;
    let started = Instant::now();
    for i in 0..n {
        let due = started + Duration::from_millis(i * 1000 / RATE_PER_S);
        std::thread::sleep(due.saturating_duration_since(Instant::now()));
        for (port, path) in [(&mut local, "L"), (&mut remote, "R")] {
            let raw = format!("{path}-{i:06}");
            port.write(format!("{raw}\r\n").as_bytes());
            written.push((raw, Instant::now()));
        }
    }
    let deadline = Instant::now() + Duration::from_secs(30);
    while seen.lock().unwrap().len() < written.len() && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(50));
    }
    stop.store(true, std::sync::atomic::Ordering::SeqCst);
    watcher.join().unwrap();
    let seen = seen.lock().unwrap();
    let rss_mb = rss_kb(pid) as f64 / 1024.0;
    println!("commit floor (one durable append on this disk): p50 {:.2} ms", floor.as_secs_f64() * 1000.0);
    for (path, name, target) in [("L", "local scanner", 20.0), ("R", "through a firmware-bridge", 50.0)] {
        let mut ms: Vec<f64> = written
            .iter()
            .filter(|(raw, _)| raw.starts_with(path))
            .filter_map(|(raw, at)| seen.get(raw).map(|t| t.duration_since(*at).as_secs_f64() * 1000.0))
            .collect();
        let total = written.iter().filter(|(raw, _)| raw.starts_with(path)).count();
        ms.sort_by(f64::total_cmp);
        let q = |p: f64| ms.get(((ms.len() as f64 - 1.0) * p).round() as usize).copied().unwrap_or(f64::NAN);
        println!(
            "scan → stored event, {name}: {}/{total} stored, p50 {:.1} ms, p99 {:.1} ms, max {:.1} ms (target p99 ≤ {target} ms; p99 = {:.1}× the commit floor)",
            ms.len(),
            q(0.5),
            q(0.99),
            q(1.0),
            q(0.99) / (floor.as_secs_f64() * 1000.0)
        );
    }
    println!(
        "idle daemon with 4 devices and 2 stations: {idle_pct:.2}% of one core over {idle_s} s (target < 1%); RSS after the run {rss_mb:.1} MB"
    );
    daemon.stop();
    let _ = bridge.kill();
    let _ = bridge.wait();
}

/// The median of 200 single-event durable commits through the store API on this disk.
fn commit_floor(path: &std::path::Path) -> Duration {
    let (store, _) = dockhand::store::Store::open(dockhand::store::StoreOptions::new(path)).unwrap();
    let rt = tokio::runtime::Runtime::new().unwrap();
    let mut took: Vec<Duration> = rt.block_on(async {
        let mut took = Vec::new();
        for _ in 0..200 {
            let event = dockhand::event::sample_event("floor", 100);
            let t = Instant::now();
            store.append_one(event).await.unwrap();
            took.push(t.elapsed());
        }
        took
    });
    store.close();
    took.sort();
    took[took.len() / 2]
}

/// Records when each scan's event first appears in the store.
fn watch_store(
    path: std::path::PathBuf,
    seen: Arc<Mutex<HashMap<String, Instant>>>,
    stop: Arc<std::sync::atomic::AtomicBool>,
) -> std::thread::JoinHandle<()> {
    std::thread::spawn(move || {
        let conn = rusqlite::Connection::open_with_flags(&path, rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY).unwrap();
        conn.busy_timeout(Duration::from_secs(1)).unwrap();
        let mut after = 0i64;
        while !stop.load(std::sync::atomic::Ordering::SeqCst) {
            let mut stmt = conn.prepare_cached("SELECT seq, body FROM events WHERE seq > ?1 ORDER BY seq").unwrap();
            let rows: Vec<(i64, String)> = stmt
                .query_map([after], |r| Ok((r.get(0)?, r.get(1)?)))
                .map(|rows| rows.filter_map(Result::ok).collect())
                .unwrap_or_default();
            let now = Instant::now();
            for (seq, body) in rows {
                after = seq;
                let event: serde_json::Value = serde_json::from_str(&body).unwrap();
                if event["kind"] == "scan"
                    && let Some(raw) = event["payload"]["raw"].as_str()
                {
                    seen.lock().unwrap().entry(raw.to_owned()).or_insert(now);
                }
            }
            std::thread::sleep(Duration::from_millis(1));
        }
    })
}

fn cpu_seconds(pid: u32) -> f64 {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    let fields: Vec<&str> = stat.rsplit(')').next().unwrap_or("").split_whitespace().collect();
    let ticks = |i: usize| fields.get(i).and_then(|v| v.parse::<f64>().ok()).unwrap_or(0.0);
    // utime and stime are fields 14 and 15 of stat(5); after the ")" they are the 12th and 13th.
    (ticks(11) + ticks(12)) / 100.0
}

fn rss_kb(pid: u32) -> u64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .ok()
        .and_then(|s| {
            s.lines().find(|l| l.starts_with("VmRSS:")).and_then(|l| l.split_whitespace().nth(1)?.parse().ok())
        })
        .unwrap_or(0)
}
