//! `dockhand bench`: measurements a technician can run on the gateway itself (an SD card behaves
//! nothing like a laptop SSD), and that `docs/PERFORMANCE.md` quotes.
//!
//! - `append`: durable appends per second for a range of group-commit sizes (the curve).
//! - `drain`: fills a store with a backlog, then runs the real daemon against a file sink and
//!   measures start-up, drain rate, peak memory, and how fast `status` answers.
//! - `ingest`, `http`, `mqtt-sink`: the MQTT source, the HTTP sink and the MQTT uplink, each
//!   against the ceiling of a plain client doing the same work, measured in the same run.
//! - `codecs`, `devices`: device codec throughput and the idle cost of serial devices.
//! - `web`: the status page's load time from the running daemon with a backlog, against an empty
//!   store in the same run.

mod codecs;
mod devices;
mod http;
mod ingest;
mod mqtt_sink;
mod web;

use std::io::BufRead;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use clap::Subcommand;

use crate::event::{new_event_id, sample_event};
use crate::exit;
use crate::store::{Store, StoreOptions, StoreReader};

#[derive(Debug, Subcommand)]
pub(crate) enum BenchCommand {
    /// Durable append throughput against group-commit size.
    Append {
        /// Folder for the scratch stores (use the gateway's real disk, not a tmpfs).
        #[arg(long, default_value = "dockhand-bench")]
        dir: PathBuf,
        /// Group-commit sizes to measure.
        #[arg(long, value_delimiter = ',', default_value = "1,10,100,1000,4096")]
        groups: Vec<usize>,
        #[arg(long, default_value_t = 200)]
        payload_bytes: usize,
        /// Seconds per measurement.
        #[arg(long, default_value_t = 3.0)]
        seconds: f64,
    },
    /// Handheld messages through a real mosquitto into the daemon: throughput against the broker's
    /// own ceiling, and publish-to-ack latency at 1 000 messages/s (needs mosquitto installed).
    Ingest {
        #[arg(long, default_value = "dockhand-bench")]
        dir: PathBuf,
        #[arg(long, default_value_t = 80_000)]
        messages: u64,
        /// The broker's max_inflight_messages (per client).
        #[arg(long, default_value_t = 100)]
        inflight: u16,
    },
    /// The HTTP sink against a local receiver: drain rate with batches and with one event per
    /// request, RSS, and how fast delivery resumes after an outage.
    Http {
        #[arg(long, default_value = "dockhand-bench")]
        dir: PathBuf,
        #[arg(long, default_value_t = 1_000_000)]
        events: u64,
        /// Backlog for the one-event-per-request run.
        #[arg(long, default_value_t = 20_000)]
        single: u64,
    },
    /// The MQTT sink draining a backlog into a local mosquitto, against a plain QoS 1 publisher
    /// with the same in-flight window, measured in the same run; peak RSS (needs mosquitto).
    MqttSink {
        #[arg(long, default_value = "dockhand-bench")]
        dir: PathBuf,
        #[arg(long, default_value_t = 1_000_000)]
        events: u64,
        /// Messages in flight (not yet PUBACKed), for both.
        #[arg(long, default_value_t = 100)]
        inflight: u16,
    },
    /// CPU and memory of the whole daemon with idle serial devices on pseudo-terminals (two
    /// scanners, a streaming scale, a polled scale answering "0.000 kg").
    Devices {
        /// Scratch folder for the config and store.
        #[arg(long, default_value = "target/bench-devices")]
        dir: PathBuf,
        /// Seconds measured (after a 3 s settling time).
        #[arg(long, default_value_t = 60)]
        seconds: u64,
    },
    /// Device codec throughput on one core (scanner + GS1, every scale protocol).
    Codecs {
        #[arg(long, default_value_t = 2_000_000)]
        iterations: u64,
    },
    /// The status page from the running daemon: page-load latency with a backlog pending (p99
    /// target 100 ms) against the same on an empty store.
    Web {
        #[arg(long, default_value = "dockhand-bench")]
        dir: PathBuf,
        #[arg(long, default_value_t = 1_000_000)]
        events: u64,
        /// Page loads measured per store.
        #[arg(long, default_value_t = 500)]
        loads: usize,
    },
    /// Drain a backlog through the real daemon to a file sink.
    Drain {
        #[arg(long, default_value = "dockhand-bench")]
        dir: PathBuf,
        #[arg(long, default_value_t = 1_000_000)]
        events: u64,
        #[arg(long, default_value_t = 200)]
        payload_bytes: usize,
        /// Events per delivery.
        #[arg(long, default_value_t = 2000)]
        batch: usize,
    },
}

pub(crate) fn run(command: BenchCommand) -> i32 {
    let result = match command {
        BenchCommand::Append { dir, groups, payload_bytes, seconds } => append(&dir, &groups, payload_bytes, seconds),
        BenchCommand::Drain { dir, events, payload_bytes, batch } => drain(&dir, events, payload_bytes, batch),
        BenchCommand::Ingest { dir, messages, inflight } => ingest::run(&dir, messages, inflight),
        BenchCommand::Http { dir, events, single } => http::run(&dir, events, single),
        BenchCommand::MqttSink { dir, events, inflight } => mqtt_sink::run(&dir, events, inflight),
        BenchCommand::Codecs { iterations } => codecs::run(iterations),
        BenchCommand::Devices { dir, seconds } => devices::run(&dir, seconds),
        BenchCommand::Web { dir, events, loads } => web::run(&dir, events, loads),
    };
    match result {
        Ok(()) => exit::OK,
        Err(e) => {
            eprintln!("error: {e}");
            exit::FAILURE
        }
    }
}

fn fresh(dir: &Path, name: &str) -> Result<PathBuf, String> {
    std::fs::create_dir_all(dir).map_err(|e| format!("cannot create {}: {e}", dir.display()))?;
    let path = dir.join(name);
    for suffix in ["", "-wal", "-shm"] {
        let _ = std::fs::remove_file(format!("{}{suffix}", path.display()));
    }
    Ok(path)
}

fn runtime() -> Result<tokio::runtime::Runtime, String> {
    tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().map_err(|e| e.to_string())
}

fn append(dir: &Path, groups: &[usize], payload_bytes: usize, seconds: f64) -> Result<(), String> {
    let rt = runtime()?;
    println!(
        "durable appends (WAL, synchronous=FULL), {payload_bytes}-byte payloads, {seconds}s per point, store in {}",
        dir.display()
    );
    println!("{:>12}  {:>12}  {:>14}  {:>12}", "group size", "appenders", "events/s", "commits/s");
    for &group in groups {
        let path = fresh(dir, "append.db")?;
        let options = StoreOptions { max_group_events: group, max_bytes: u64::MAX / 2, ..StoreOptions::new(&path) };
        let (store, _) = Store::open(options).map_err(|e| e.to_string())?;
        // Enough concurrent appenders to fill every group (each waits for its own commit).
        let appenders = (group * 2).clamp(8, 8192);
        let template = sample_event("bench-1", payload_bytes);
        let done = Arc::new(AtomicU64::new(0));
        let stop = Arc::new(AtomicBool::new(false));
        let started = Instant::now();
        rt.block_on(async {
            let mut tasks = tokio::task::JoinSet::new();
            for _ in 0..appenders {
                let (store, done, stop, template) = (store.clone(), done.clone(), stop.clone(), template.clone());
                tasks.spawn(async move {
                    while !stop.load(Ordering::Relaxed) {
                        let mut e = template.clone();
                        e.id = new_event_id();
                        if store.append_one(e).await.is_err() {
                            break;
                        }
                        done.fetch_add(1, Ordering::Relaxed);
                    }
                });
            }
            tokio::time::sleep(Duration::from_secs_f64(seconds)).await;
            stop.store(true, Ordering::Relaxed);
            while tasks.join_next().await.is_some() {}
        });
        let elapsed = started.elapsed().as_secs_f64();
        store.close();
        let n = done.load(Ordering::Relaxed) as f64;
        println!("{group:>12}  {appenders:>12}  {:>14.0}  {:>12.0}", n / elapsed, n / elapsed / group as f64);
    }
    let _ = fresh(dir, "append.db");
    Ok(())
}

fn drain(dir: &Path, events: u64, payload_bytes: usize, batch: usize) -> Result<(), String> {
    let store_path = fresh(dir, "drain.db")?;
    let out = dir.join("drain.ndjson");
    let _ = std::fs::remove_file(&out);
    let config = dir.join("drain.toml");
    std::fs::write(
        &config,
        format!(
            "[gateway]\nid = \"bench-gw\"\nsite = \"BENCH\"\n\n[store]\npath = \"drain.db\"\nmax_bytes = \"64GiB\"\n\n[log]\nlevel = \"info\"\n\n[[sink]]\nname = \"file\"\ntype = \"file\"\npath = \"drain.ndjson\"\nbatch = {{ max_events = {batch}, max_bytes = \"8MiB\", linger = \"0ms\" }}\n"
        ),
    )
    .map_err(|e| e.to_string())?;

    // 1. The backlog, written in large groups (this part is not what is measured).
    let fill_started = Instant::now();
    fill_backlog(&store_path, events, payload_bytes)?;
    let file_mb = std::fs::metadata(&store_path).map(|m| m.len()).unwrap_or(0) as f64 / 1e6;
    eprintln!(
        "\rbacklog: {events} events, {file_mb:.0} MB store file, filled in {:.1}s",
        fill_started.elapsed().as_secs_f64()
    );

    let exe = std::env::current_exe().map_err(|e| e.to_string())?;
    // 2. `status` on the full backlog, with the daemon down.
    let status_ms = time_status(&exe, &config, 5)?;

    // 3. The daemon: ready time, drain time, memory.
    let started = Instant::now();
    let mut child = start_daemon(&config, "dockhand is ready.")?;
    let ready_at = Instant::now();
    let pid = child.id();
    let ready_ms = (ready_at - started).as_secs_f64() * 1000.0;
    let reader = StoreReader::open(&store_path).map_err(|e| e.to_string())?;
    let mut peak_rss_kb = 0;
    let drained_at = loop {
        peak_rss_kb = peak_rss_kb.max(rss_kb(pid).unwrap_or(0));
        let cursor = reader.sink_state("file").map_err(|e| e.to_string())?.map_or(0, |s| s.cursor);
        if cursor >= events {
            break Instant::now();
        }
        if started.elapsed() > Duration::from_secs(1800) {
            return Err("the drain did not finish in 30 minutes".into());
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    let hwm_kb = hwm_kb(pid).unwrap_or(0);
    // SIGTERM: a clean stop.
    let _ = std::process::Command::new("kill").arg("-TERM").arg(pid.to_string()).status();
    let _ = child.wait();
    let drain_s = (drained_at - ready_at).as_secs_f64();
    let lines = std::fs::File::open(&out).map(|f| std::io::BufReader::new(f).lines().count() as u64).unwrap_or(0);
    println!("backlog                      {events} events of {payload_bytes}-byte payloads, {batch} per delivery");
    println!("daemon ready after           {ready_ms:.0} ms (process start to `dockhand is ready.`)");
    println!("drain rate                   {:.0} events/s ({drain_s:.2} s)", events as f64 / drain_s);
    println!(
        "peak RSS while draining      {:.1} MB (sampled every 20 ms); VmHWM {:.1} MB",
        peak_rss_kb as f64 / 1024.0,
        hwm_kb as f64 / 1024.0
    );
    println!("`dockhand status`            {status_ms:.0} ms (median of 5, backlog full, daemon down)");
    println!("lines in the output file     {lines}");
    if lines < events {
        return Err(format!("the file sink holds {lines} lines, fewer than the {events} events"));
    }
    Ok(())
}

/// Writes `events` sample events (8 partitions) into a new store at `path`, in large groups.
pub(crate) fn fill_backlog(path: &Path, events: u64, payload_bytes: usize) -> Result<(), String> {
    for suffix in ["", "-wal", "-shm"] {
        let _ = std::fs::remove_file(format!("{}{suffix}", path.display()));
    }
    let rt = runtime()?;
    let options = StoreOptions { max_group_events: 10_000, max_bytes: u64::MAX / 2, ..StoreOptions::new(path) };
    let (store, _) = Store::open(options).map_err(|e| e.to_string())?;
    let template = sample_event("bench-1", payload_bytes);
    let result = rt.block_on(async {
        let mut written = 0;
        while written < events {
            let n = (events - written).min(5000);
            let chunk = (0..n)
                .map(|i| {
                    let mut e = template.clone();
                    e.id = new_event_id();
                    e.partition = format!("dev-{}", i % 8);
                    e
                })
                .collect();
            store.append(chunk).await.map_err(|e| e.to_string())?;
            written += n;
            if written % 100_000 == 0 {
                eprint!("\rfilling backlog: {written}/{events}");
            }
        }
        Ok::<_, String>(())
    });
    store.close();
    result
}

fn time_status(exe: &Path, config: &Path, runs: usize) -> Result<f64, String> {
    let mut times = Vec::with_capacity(runs);
    for _ in 0..runs {
        let t = Instant::now();
        let out = std::process::Command::new(exe)
            .arg("--config")
            .arg(config)
            .arg("status")
            .output()
            .map_err(|e| e.to_string())?;
        times.push(t.elapsed().as_secs_f64() * 1000.0);
        if !out.status.success() {
            return Err(format!("status failed: {}", String::from_utf8_lossy(&out.stderr)));
        }
    }
    times.sort_by(f64::total_cmp);
    Ok(times[runs / 2])
}

fn proc_status_kb(pid: u32, field: &str) -> Option<u64> {
    let text = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let line = text.lines().find(|l| l.starts_with(field))?;
    line.split_whitespace().nth(1)?.parse().ok()
}

/// User + system CPU seconds of a process, from /proc.
pub(crate) fn cpu_seconds(pid: u32) -> f64 {
    let Ok(stat) = std::fs::read_to_string(format!("/proc/{pid}/stat")) else { return 0.0 };
    // Fields after the command name (which may contain spaces) start after the last ')'.
    let rest = stat.rsplit_once(')').map_or("", |(_, r)| r);
    let f: Vec<&str> = rest.split_whitespace().collect();
    let ticks: f64 = f.get(11).and_then(|v| v.parse::<f64>().ok()).unwrap_or(0.0)
        + f.get(12).and_then(|v| v.parse::<f64>().ok()).unwrap_or(0.0);
    // USER_HZ is 100 on Linux.
    ticks / 100.0
}

/// Starts `dockhand run` on `config` and waits (30 s at most) until it logs `marker`; its log
/// is drained on a thread and warnings and errors are echoed.
pub(crate) fn start_daemon(config: &Path, marker: &'static str) -> Result<std::process::Child, String> {
    let exe = std::env::current_exe().map_err(|e| e.to_string())?;
    let mut child = std::process::Command::new(exe)
        .arg("--config")
        .arg(config)
        .arg("run")
        .env("RUST_LOG", "info")
        .stderr(std::process::Stdio::piped())
        .spawn()
        .map_err(|e| format!("cannot start the daemon: {e}"))?;
    let stderr = child.stderr.take().ok_or("no stderr")?;
    let (ready_tx, ready_rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in std::io::BufReader::new(stderr).lines().map_while(Result::ok) {
            if line.contains(marker) {
                let _ = ready_tx.send(());
            }
            if line.contains("ERROR") {
                eprintln!("dockhand: {line}");
            }
        }
    });
    if ready_rx.recv_timeout(Duration::from_secs(30)).is_err() {
        let _ = child.kill();
        return Err(format!("the daemon did not log \"{marker}\" within 30 s"));
    }
    Ok(child)
}

pub(crate) fn rss_kb(pid: u32) -> Option<u64> {
    proc_status_kb(pid, "VmRSS:")
}

fn hwm_kb(pid: u32) -> Option<u64> {
    proc_status_kb(pid, "VmHWM:")
}
