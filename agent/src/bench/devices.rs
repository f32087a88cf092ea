//! `dockhand bench devices`: what serial devices cost while nothing happens — the whole daemon's
//! CPU and memory with four idle devices on pseudo-terminals: two scanners (suffix framing and
//! inter-character timeout framing), a streaming Toledo continuous scale that sends nothing, and
//! an MT-SICS scale polled four times a second that answers "0.000 kg" (the answers come from a
//! thread of this benchmark process, which is not measured).

use std::io::{Read, Write};
use std::path::Path;
use std::time::{Duration, Instant};

use serialport::TTYPort;

pub(crate) fn run(dir: &Path, seconds: u64) -> Result<(), String> {
    std::fs::create_dir_all(dir).map_err(|e| e.to_string())?;
    for file in ["devices.db", "devices.db-wal", "devices.db-shm", "devices.ndjson"] {
        let _ = std::fs::remove_file(dir.join(file));
    }
    // The benchmark keeps the device ends; the daemon opens the others by name.
    let mut devices = Vec::new();
    let mut paths = Vec::new();
    for _ in 0..4 {
        let (device, agent_end) = TTYPort::pair().map_err(|e| format!("cannot create a pseudo-terminal: {e}"))?;
        let name = serialport::SerialPort::name(&agent_end).ok_or("the pseudo-terminal has no name")?;
        paths.push(name);
        // Closing our copy of the agent's end lets the daemon open it exclusively.
        drop(agent_end);
        devices.push(device);
    }
    let scale = devices.pop().ok_or("no pty")?;
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let answering = answer_polls(scale, stop.clone());
    let config = dir.join("devices.toml");
    std::fs::write(
        &config,
        format!(
            r#"[gateway]
id = "bench-gw"
site = "BENCH"

[store]
path = "devices.db"

[[sink]]
name = "file"
type = "file"
path = "devices.ndjson"

[[device]]
name = "scanner-cr"
kind = "scanner"
path = "{}"

[[device]]
name = "scanner-timeout"
kind = "scanner"
path = "{}"
suffix = ""
inter_char_timeout = "50ms"

[[device]]
name = "scale-streaming"
kind = "scale"
protocol = "toledo-continuous"
path = "{}"

[[device]]
name = "scale-polled"
kind = "scale"
protocol = "mt-sics"
path = "{}"
"#,
            paths[0], paths[1], paths[2], paths[3]
        ),
    )
    .map_err(|e| e.to_string())?;
    let mut child = super::start_daemon(&config, "dockhand is ready.")?;
    let pid = child.id();
    let result = measure(pid, seconds);
    let _ = std::process::Command::new("kill").arg("-TERM").arg(pid.to_string()).status();
    let _ = child.wait();
    stop.store(true, std::sync::atomic::Ordering::SeqCst);
    let _ = answering.join();
    drop(devices);
    result
}

fn measure(pid: u32, seconds: u64) -> Result<(), String> {
    std::thread::sleep(Duration::from_secs(3));
    let cpu_before = super::cpu_seconds(pid);
    let started = Instant::now();
    std::thread::sleep(Duration::from_secs(seconds));
    let cpu = super::cpu_seconds(pid) - cpu_before;
    let wall = started.elapsed().as_secs_f64();
    let rss_mb = super::rss_kb(pid).unwrap_or(0) as f64 / 1024.0;
    let threads = std::fs::read_to_string(format!("/proc/{pid}/status"))
        .ok()
        .and_then(|s| {
            s.lines().find(|l| l.starts_with("Threads:")).and_then(|l| l.split_whitespace().nth(1)?.parse::<u32>().ok())
        })
        .unwrap_or(0);
    println!(
        "idle daemon with 4 serial devices: {:.2}% of one core over {wall:.0} s ({cpu:.2} CPU s), RSS {rss_mb:.1} MB, {threads} threads",
        cpu / wall * 100.0
    );
    Ok(())
}

/// An MT-SICS balance at zero: answers every `SI` with a stable 0.000 kg.
fn answer_polls(mut port: TTYPort, stop: std::sync::Arc<std::sync::atomic::AtomicBool>) -> std::thread::JoinHandle<()> {
    std::thread::spawn(move || {
        let _ = serialport::SerialPort::set_timeout(&mut port, Duration::from_millis(200));
        let mut buf = [0u8; 64];
        while !stop.load(std::sync::atomic::Ordering::SeqCst) {
            match port.read(&mut buf) {
                Ok(n) if buf[..n].contains(&b'\n') => {
                    let _ = port.write_all(b"S S      0.000 kg\r\n");
                }
                Ok(_) => {}
                Err(e) if e.kind() == std::io::ErrorKind::TimedOut => {}
                // EIO until the daemon has opened its end: keep the master (and the pty) alive.
                Err(_) => std::thread::sleep(Duration::from_millis(50)),
            }
        }
    })
}
