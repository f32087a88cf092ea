//! `dockhand bench http`: the HTTP sink against a local receiver that accepts every batch at once.
//!
//! 1. A backlog drained through the real daemon with normal batches, then a smaller one with one
//!    event per request — what batching buys.
//! 2. Recovery: the receiver is down long enough for the backoff to grow, then comes back; the
//!    time from its return to the first accepted batch.

use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper_util::rt::TokioIo;

use crate::store::StoreReader;

pub(crate) fn run(dir: &Path, events: u64, single: u64) -> Result<(), String> {
    std::fs::create_dir_all(dir).map_err(|e| e.to_string())?;
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .map_err(|e| e.to_string())?;
    let received = Arc::new(AtomicU64::new(0));
    let first_ok = Arc::new(AtomicU64::new(0));
    let listener = rt.block_on(tokio::net::TcpListener::bind("127.0.0.1:0")).map_err(|e| e.to_string())?;
    let addr = listener.local_addr().map_err(|e| e.to_string())?;
    let server = rt.spawn(serve(listener, received.clone(), first_ok.clone()));
    let url = format!("http://{addr}/ingest");

    let batched = drain(dir, &url, events, 1000, &received)?;
    let one = drain(dir, &url, single, 1, &received)?;
    println!("HTTP sink -> local receiver that accepts at once (plain HTTP on loopback, 200-byte payloads)");
    println!(
        "batches of 1000: {events} events in {:.2} s = {:.0} events/s, peak RSS {:.1} MB",
        batched.0,
        events as f64 / batched.0,
        batched.1 as f64 / 1024.0
    );
    println!(
        "one per request: {single} events in {:.2} s = {:.0} events/s, peak RSS {:.1} MB",
        one.0,
        single as f64 / one.0,
        one.1 as f64 / 1024.0
    );

    // Recovery after an outage.
    server.abort();
    let recovered = recovery(dir, addr, &rt)?;
    println!(
        "receiver back after a 20 s outage (backoff 1 s doubling, max 5 min): first accepted batch {recovered:.2} s later"
    );
    Ok(())
}

async fn serve(listener: tokio::net::TcpListener, received: Arc<AtomicU64>, first_ok: Arc<AtomicU64>) {
    loop {
        let Ok((tcp, _)) = listener.accept().await else { continue };
        let (received, first_ok) = (received.clone(), first_ok.clone());
        tokio::spawn(async move {
            let service = hyper::service::service_fn(move |req: hyper::Request<hyper::body::Incoming>| {
                let (received, first_ok) = (received.clone(), first_ok.clone());
                async move {
                    let body = req.into_body().collect().await.map(|b| b.to_bytes()).unwrap_or_default();
                    // Events in the batch: one `"schema":` per envelope.
                    let n = body.windows(9).filter(|w| w == b"\"schema\":").count() as u64;
                    received.fetch_add(n, Ordering::Relaxed);
                    let _ = first_ok.compare_exchange(0, now_ms(), Ordering::Relaxed, Ordering::Relaxed);
                    Ok::<_, std::convert::Infallible>(hyper::Response::new(Full::new(Bytes::from_static(b"{}"))))
                }
            });
            let _ = hyper::server::conn::http1::Builder::new().serve_connection(TokioIo::new(tcp), service).await;
        });
    }
}

fn now_ms() -> u64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_millis() as u64).unwrap_or(1)
}

fn config(dir: &Path, url: &str, max_events: usize, retry: &str) -> Result<std::path::PathBuf, String> {
    let path = dir.join("http.toml");
    std::fs::write(
        &path,
        format!(
            "[gateway]\nid = \"bench-gw\"\nsite = \"BENCH\"\n\n[store]\npath = \"http.db\"\nmax_bytes = \"64GiB\"\n\n\
             [[sink]]\nname = \"cloud\"\ntype = \"http\"\nurl = \"{url}\"\nbatch = {{ max_events = {max_events}, max_bytes = \"8MiB\", linger = \"0ms\" }}\n{retry}\n"
        ),
    )
    .map_err(|e| e.to_string())?;
    Ok(path)
}

fn fill(dir: &Path, events: u64) -> Result<(), String> {
    super::fill_backlog(&dir.join("http.db"), events, 200)
}

fn spawn_daemon(config: &Path) -> Result<std::process::Child, String> {
    let exe = std::env::current_exe().map_err(|e| e.to_string())?;
    std::process::Command::new(exe)
        .arg("--config")
        .arg(config)
        .arg("run")
        .stderr(std::process::Stdio::null())
        .spawn()
        .map_err(|e| e.to_string())
}

/// Drains `events` with batches of `max_events`; returns (seconds, peak RSS in KiB).
fn drain(dir: &Path, url: &str, events: u64, max_events: usize, received: &AtomicU64) -> Result<(f64, u64), String> {
    fill(dir, events)?;
    let config = config(dir, url, max_events, "")?;
    received.store(0, Ordering::Relaxed);
    let started = Instant::now();
    let mut child = spawn_daemon(&config)?;
    let pid = child.id();
    let reader = loop {
        if let Ok(r) = StoreReader::open(&dir.join("http.db")) {
            break r;
        }
        std::thread::sleep(Duration::from_millis(10));
    };
    let mut peak = 0;
    let result = loop {
        peak = peak.max(rss_kb(pid));
        let cursor = reader.sink_state("cloud").ok().flatten().map_or(0, |s| s.cursor);
        if cursor >= events {
            break Ok((started.elapsed().as_secs_f64(), peak));
        }
        if started.elapsed() > Duration::from_secs(1200) {
            break Err("the drain did not finish in 20 minutes".to_string());
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    let _ = std::process::Command::new("kill").arg("-TERM").arg(pid.to_string()).status();
    let _ = child.wait();
    if result.is_ok() && received.load(Ordering::Relaxed) < events {
        return Err(format!("the receiver counted {} of {events} events", received.load(Ordering::Relaxed)));
    }
    result
}

fn recovery(dir: &Path, addr: std::net::SocketAddr, rt: &tokio::runtime::Runtime) -> Result<f64, String> {
    fill(dir, 1000)?;
    let config = config(dir, &format!("http://{addr}/ingest"), 1000, "retry = { initial = \"1s\", max = \"5m\" }")?;
    let mut child = spawn_daemon(&config)?;
    std::thread::sleep(Duration::from_secs(20));
    let received = Arc::new(AtomicU64::new(0));
    let first_ok = Arc::new(AtomicU64::new(0));
    let back = now_ms();
    let listener = rt.block_on(tokio::net::TcpListener::bind(addr)).map_err(|e| e.to_string())?;
    rt.spawn(serve(listener, received, first_ok.clone()));
    let deadline = Instant::now() + Duration::from_secs(600);
    while first_ok.load(Ordering::Relaxed) == 0 && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(5));
    }
    let _ = std::process::Command::new("kill").arg("-TERM").arg(child.id().to_string()).status();
    let _ = child.wait();
    let at = first_ok.load(Ordering::Relaxed);
    if at == 0 {
        return Err("no delivery after the receiver came back".into());
    }
    Ok(at.saturating_sub(back) as f64 / 1000.0)
}

fn rss_kb(pid: u32) -> u64 {
    super::rss_kb(pid).unwrap_or(0)
}
