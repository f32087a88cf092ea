//! `dockhand bench web`: how fast the status page loads from the running daemon while its store
//! holds a large backlog, against the same page on an empty store measured in the same run (the
//! ceiling: everything but the backlog is equal).
//!
//! For each store the real daemon runs with one HTTP sink whose receiver is down (so every event
//! stays pending and the sink shows a last error) and one page open on `/api/events`, as a
//! technician's phone would be. A page load is what a browser fetches: `/`, `/app.js`,
//! `/app.css`, `/api/session` and `/api/status`, one after the other on one keep-alive
//! connection (a browser would fetch some of them in parallel: this is the slower case).

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::path::Path;
use std::time::{Duration, Instant};

use super::ingest::free_port;
use super::{fill_backlog, fresh, rss_kb, start_daemon};

/// What a page load fetches, in order.
const PAGE: [&str; 5] = ["/", "/app.js", "/app.css", "/api/session", "/api/status"];

struct Run {
    pending: u64,
    page_ms: Vec<f64>,
    status_ms: Vec<f64>,
    page_bytes: usize,
    live_events: usize,
    rss_mb: f64,
}

pub(crate) fn run(dir: &Path, events: u64, loads: usize) -> Result<(), String> {
    let empty = measure(dir, "web-empty", 0, loads)?;
    let full = measure(dir, "web-backlog", events, loads)?;
    let p = |v: &[f64], q: f64| percentile(v, q);
    println!("page load = GET {} on one connection, {loads} loads each", PAGE.join(", "));
    println!("                              empty store      {events} pending     ratio (p99)");
    println!(
        "page load p50 / p99 / max     {:.1} / {:.1} / {:.1} ms   {:.1} / {:.1} / {:.1} ms   {:.2}",
        p(&empty.page_ms, 0.5),
        p(&empty.page_ms, 0.99),
        p(&empty.page_ms, 1.0),
        p(&full.page_ms, 0.5),
        p(&full.page_ms, 0.99),
        p(&full.page_ms, 1.0),
        p(&full.page_ms, 0.99) / p(&empty.page_ms, 0.99).max(0.001)
    );
    println!(
        "/api/status p50 / p99         {:.1} / {:.1} ms          {:.1} / {:.1} ms",
        p(&empty.status_ms, 0.5),
        p(&empty.status_ms, 0.99),
        p(&full.status_ms, 0.5),
        p(&full.status_ms, 0.99)
    );
    println!("bytes per page load           {}              {}", empty.page_bytes, full.page_bytes);
    println!("daemon RSS after the loads    {:.1} MB          {:.1} MB", empty.rss_mb, full.rss_mb);
    println!("live view (one page open)     {} status events   {} status events", empty.live_events, full.live_events);
    println!("pending shown by the page     {}                {}", empty.pending, full.pending);
    if full.pending != events {
        return Err(format!("the page showed {} pending, not the {events} in the store", full.pending));
    }
    let p99 = p(&full.page_ms, 0.99);
    if p99 > 100.0 {
        return Err(format!("p99 page load {p99:.1} ms with the backlog is above the 100 ms target"));
    }
    Ok(())
}

fn measure(dir: &Path, name: &str, events: u64, loads: usize) -> Result<Run, String> {
    let store = fresh(dir, &format!("{name}.db"))?;
    fill_backlog(&store, events, 200)?;
    if events > 0 {
        eprintln!();
    }
    let port = free_port()?;
    let nowhere = free_port()?;
    let config = dir.join(format!("{name}.toml"));
    std::fs::write(
        &config,
        format!(
            "[gateway]\nid = \"bench-gw\"\nsite = \"BENCH\"\n\n[store]\npath = \"{name}.db\"\nmax_bytes = \"64GiB\"\n\n[log]\nlevel = \"info\"\n\n[web]\nlisten = \"127.0.0.1:{port}\"\n\n[[sink]]\nname = \"cloud\"\ntype = \"http\"\nurl = \"http://127.0.0.1:{nowhere}/ingest\"\nretry = {{ initial = \"1s\", max = \"5s\" }}\n"
        ),
    )
    .map_err(|e| e.to_string())?;
    let mut child = start_daemon(&config, "dockhand is ready.")?;
    let result = (|| {
        // One page open, as on a technician's phone: its stream runs during the measurement.
        let live = std::thread::spawn(move || count_live_events(port, Duration::from_secs(4)));
        let mut conn = Connection::open(port)?;
        let mut page_ms = Vec::with_capacity(loads);
        let mut status_ms = Vec::with_capacity(loads);
        let mut page_bytes = 0;
        let mut last_status = Vec::new();
        // A few loads to warm up (first connection, page cache), not counted.
        for i in 0..loads + 10 {
            let started = Instant::now();
            let mut bytes = 0;
            for path in PAGE {
                let t = Instant::now();
                let body = conn.get(path)?;
                if path == "/api/status" {
                    if i >= 10 {
                        status_ms.push(t.elapsed().as_secs_f64() * 1000.0);
                    }
                    last_status = body.clone();
                }
                bytes += body.len();
            }
            if i >= 10 {
                page_ms.push(started.elapsed().as_secs_f64() * 1000.0);
            }
            page_bytes = bytes;
        }
        let status: serde_json::Value = serde_json::from_slice(&last_status).map_err(|e| e.to_string())?;
        let pending = status["status"]["sinks"][0]["pending"].as_u64().unwrap_or(0);
        let live_events = live.join().map_err(|_| "the live view thread panicked")??;
        let rss_mb = rss_kb(child.id()).unwrap_or(0) as f64 / 1024.0;
        Ok(Run { pending, page_ms, status_ms, page_bytes, live_events, rss_mb })
    })();
    let _ = std::process::Command::new("kill").arg("-TERM").arg(child.id().to_string()).status();
    let _ = child.wait();
    result
}

fn percentile(values: &[f64], q: f64) -> f64 {
    let mut v = values.to_vec();
    v.sort_by(f64::total_cmp);
    if v.is_empty() {
        return 0.0;
    }
    let i = ((v.len() as f64 * q).ceil() as usize).clamp(1, v.len()) - 1;
    v[i]
}

/// Reads `/api/events` for `for_how_long`; how many `status` events came.
fn count_live_events(port: u16, for_how_long: Duration) -> Result<usize, String> {
    let mut s = TcpStream::connect(("127.0.0.1", port)).map_err(|e| e.to_string())?;
    s.set_read_timeout(Some(Duration::from_millis(200))).map_err(|e| e.to_string())?;
    write!(s, "GET /api/events HTTP/1.1\r\nHost: bench\r\n\r\n").map_err(|e| e.to_string())?;
    let started = Instant::now();
    let mut text = Vec::new();
    let mut buf = [0u8; 65536];
    while started.elapsed() < for_how_long {
        match s.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => text.extend_from_slice(&buf[..n]),
            Err(_) => {}
        }
    }
    Ok(String::from_utf8_lossy(&text).matches("event: status").count())
}

/// A keep-alive HTTP/1.1 connection that GETs bodies with a Content-Length.
struct Connection {
    reader: BufReader<TcpStream>,
}

impl Connection {
    fn open(port: u16) -> Result<Connection, String> {
        let s = TcpStream::connect(("127.0.0.1", port)).map_err(|e| format!("cannot reach the page: {e}"))?;
        s.set_read_timeout(Some(Duration::from_secs(10))).map_err(|e| e.to_string())?;
        s.set_nodelay(true).map_err(|e| e.to_string())?;
        Ok(Connection { reader: BufReader::new(s) })
    }

    fn get(&mut self, path: &str) -> Result<Vec<u8>, String> {
        write!(self.reader.get_mut(), "GET {path} HTTP/1.1\r\nHost: bench\r\n\r\n").map_err(|e| e.to_string())?;
        let mut length = 0;
        let mut status = String::new();
        loop {
            let mut line = String::new();
            self.reader.read_line(&mut line).map_err(|e| e.to_string())?;
            if status.is_empty() {
                status = line.trim().to_owned();
                continue;
            }
            if line.trim().is_empty() {
                break;
            }
            if let Some((k, v)) = line.split_once(':')
                && k.eq_ignore_ascii_case("content-length")
            {
                length = v.trim().parse().map_err(|_| "a bad Content-Length")?;
            }
        }
        if !status.contains(" 200 ") {
            return Err(format!("GET {path}: {status}"));
        }
        let mut body = vec![0; length];
        self.reader.read_exact(&mut body).map_err(|e| e.to_string())?;
        Ok(body)
    }
}
