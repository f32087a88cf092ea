//! Support for dockhand's end-to-end tests: scratch folders with a config, the daemon as a real
//! child process (start, wait until ready, SIGTERM, SIGKILL), CLI runs, and polling helpers.

pub mod browser;
pub mod fake_odoo;
pub mod mqtt;
pub mod printer;
pub mod pty;
pub mod receiver;

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Output, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// A scratch folder holding a config file and everything the daemon writes.
#[derive(Debug)]
pub struct Site {
    pub dir: tempfile::TempDir,
    pub exe: PathBuf,
    /// Where this site's daemon serves /metrics and /health.
    pub metrics_port: u16,
}

impl Site {
    /// `exe` is `env!("CARGO_BIN_EXE_dockhand-e2e")` from the test.
    pub fn new(exe: &str) -> Site {
        Site { dir: tempfile::tempdir().expect("temp dir"), exe: PathBuf::from(exe), metrics_port: mqtt::free_port() }
    }

    pub fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    pub fn config(&self) -> PathBuf {
        self.path("dockhand.toml")
    }

    /// Writes `dockhand.toml`: a gateway, a store in the folder, and the given extra TOML.
    pub fn write_config(&self, extra: &str) {
        self.write_config_with_web("", extra);
    }

    /// [`Site::write_config`] with more keys in `[web]` (`token_file = …`).
    pub fn write_config_with_web(&self, web: &str, extra: &str) {
        let text = format!(
            "[gateway]\nid = \"test-gw\"\nsite = \"T1\"\n\n[store]\npath = \"store.db\"\n\n[log]\nlevel = \"info\"\n\n[web]\nlisten = \"127.0.0.1:{}\"\n{web}\n\n{extra}",
            self.metrics_port
        );
        std::fs::write(self.config(), text).expect("write config");
    }

    /// One sample of the running daemon's `/metrics` (`name` with its labels, as printed), or
    /// `None` when the daemon does not answer or has no such sample.
    pub fn metric(&self, name: &str) -> Option<f64> {
        use std::io::{Read, Write};
        let mut s = std::net::TcpStream::connect(("127.0.0.1", self.metrics_port)).ok()?;
        write!(s, "GET /metrics HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n").ok()?;
        let mut text = String::new();
        s.read_to_string(&mut text).ok()?;
        text.lines().find_map(|l| l.strip_prefix(name)?.strip_prefix(' ')?.trim().parse().ok())
    }

    pub fn store_path(&self) -> PathBuf {
        self.path("store.db")
    }

    /// Runs a CLI command against this site's config.
    pub fn cli(&self, args: &[&str]) -> Output {
        Command::new(&self.exe).arg("--config").arg(self.config()).args(args).output().expect("run dockhand")
    }

    /// Starts `dockhand run` and waits until it says it is ready.
    pub fn start(&self) -> Daemon {
        self.start_with_env(&[])
    }

    pub fn start_with_env(&self, env: &[(&str, &str)]) -> Daemon {
        let mut child = Command::new(&self.exe)
            .arg("--config")
            .arg(self.config())
            .arg("run")
            .env("RUST_LOG", "info")
            .envs(env.iter().copied())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("start dockhand");
        let log = Arc::new(Mutex::new(String::new()));
        let stderr = child.stderr.take().expect("stderr");
        let sink = log.clone();
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                let mut l = sink.lock().unwrap_or_else(|p| p.into_inner());
                l.push_str(&line);
                l.push('\n');
            }
        });
        let daemon = Daemon { child, log };
        let deadline = Instant::now() + Duration::from_secs(30);
        while !daemon.log().contains("dockhand is ready.") {
            assert!(Instant::now() < deadline, "the daemon was not ready within 30 s; its log:\n{}", daemon.log());
            std::thread::sleep(Duration::from_millis(20));
        }
        daemon
    }
}

/// A running `dockhand run`.
#[derive(Debug)]
pub struct Daemon {
    pub child: Child,
    log: Arc<Mutex<String>>,
}

impl Daemon {
    /// Everything it has logged so far.
    pub fn log(&self) -> String {
        self.log.lock().unwrap_or_else(|p| p.into_inner()).clone()
    }

    pub fn pid(&self) -> i32 {
        self.child.id() as i32
    }

    pub fn signal(&self, sig: i32) {
        // SAFETY: kill(2) touches no memory of ours; the pid is our own child.
        #[allow(unsafe_code)]
        unsafe {
            libc::kill(self.pid(), sig);
        }
    }

    /// SIGKILL: no chance to flush or clean up.
    pub fn kill9(mut self) {
        self.signal(libc::SIGKILL);
        let _ = self.child.wait();
    }

    /// SIGTERM and wait for the exit status.
    pub fn stop(mut self) -> ExitStatus {
        self.signal(libc::SIGTERM);
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            if let Ok(Some(status)) = self.child.try_wait() {
                return status;
            }
            assert!(Instant::now() < deadline, "dockhand did not stop within 20 s of SIGTERM:\n{}", self.log());
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

impl Drop for Daemon {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Polls `check` every 20 ms until it holds; panics with `what` after `timeout`.
pub fn wait_until(timeout: Duration, what: &str, mut check: impl FnMut() -> bool) {
    let deadline = Instant::now() + timeout;
    while !check() {
        assert!(Instant::now() < deadline, "timed out after {timeout:?} waiting for {what}");
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// Lines of an NDJSON file parsed as JSON (a missing file is empty).
/// Only complete lines count: read while the daemon appends, the file may end in the middle of
/// a line it is still writing (that line must parse once it is complete).
pub fn read_ndjson(path: &Path) -> Vec<serde_json::Value> {
    let Ok(mut text) = std::fs::read_to_string(path) else { return Vec::new() };
    text.truncate(text.rfind('\n').map_or(0, |i| i + 1));
    text.lines().map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("bad NDJSON line {l:?}: {e}"))).collect()
}

/// Stores `n` events through the public store API (on a thread of its own, so async tests can call it) (the daemon may be running: SQLite serialises
/// the two writers).
pub fn fill_store(path: &Path, n: usize) -> Vec<uuid::Uuid> {
    let path = path.to_path_buf();
    std::thread::spawn(move || fill_store_now(&path, n)).join().expect("fill thread")
}

fn fill_store_now(path: &Path, n: usize) -> Vec<uuid::Uuid> {
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().expect("runtime");
    rt.block_on(async {
        let (store, _) = dockhand::store::Store::open(dockhand::store::StoreOptions::new(path)).expect("open store");
        let events: Vec<_> = (0..n).map(|i| dockhand::event::sample_event(&format!("dev-{}", i % 4), 200)).collect();
        let ids = events.iter().map(|e| e.id).collect();
        for chunk in events.chunks(1000) {
            store.append(chunk.to_vec()).await.expect("append");
        }
        store.close();
        ids
    })
}

/// Checks at-least-once delivery with order: every id arrived; the first arrival of each id keeps
/// store (seq) order within its partition. Returns the number of repeats.
pub fn check_delivery(expected: &[uuid::Uuid], received: &[serde_json::Value]) -> usize {
    use std::collections::{HashMap, HashSet};
    let mut seen = HashSet::new();
    let mut last_seq: HashMap<String, u64> = HashMap::new();
    let mut repeats = 0;
    for e in received {
        let id: uuid::Uuid = e["id"].as_str().and_then(|s| s.parse().ok()).expect("event id");
        if !seen.insert(id) {
            repeats += 1;
            continue;
        }
        let partition = e["partition"].as_str().expect("partition").to_string();
        let seq = e["seq"].as_u64().expect("seq");
        let prev = last_seq.insert(partition.clone(), seq);
        assert!(prev.is_none_or(|p| p < seq), "partition {partition}: seq {seq} arrived first after {prev:?}");
    }
    let missing: Vec<_> = expected.iter().filter(|id| !seen.contains(id)).collect();
    assert!(missing.is_empty(), "{} events never arrived, e.g. {:?}", missing.len(), missing.first());
    repeats
}

/// Stores events of the given kinds (cycling through them) and returns their ids in order.
pub fn fill_store_kinds(path: &Path, n: usize, kinds: &[&str]) -> Vec<uuid::Uuid> {
    let path = path.to_path_buf();
    let kinds: Vec<String> = kinds.iter().map(|k| k.to_string()).collect();
    std::thread::spawn(move || fill_store_kinds_now(&path, n, &kinds)).join().expect("fill thread")
}

fn fill_store_kinds_now(path: &Path, n: usize, kinds: &[String]) -> Vec<uuid::Uuid> {
    use dockhand::event::{Kind, Payload};
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().expect("runtime");
    rt.block_on(async {
        let (store, _) = dockhand::store::Store::open(dockhand::store::StoreOptions::new(path)).expect("open store");
        let events: Vec<_> = (0..n)
            .map(|i| {
                let mut e = dockhand::event::sample_event(&format!("dev-{}", i % 4), 100);
                let kind = Kind::parse(&kinds[i % kinds.len()]).expect("kind");
                let json = match kind {
                    Kind::Count => serde_json::json!({"product": {"barcode": "4006381333931"}, "location": "WH/Stock", "quantity": "3"}),
                    Kind::Pick => serde_json::json!({"picking": "WH/OUT/00001", "lines": [{"product": "4006381333931", "quantity": "1"}]}),
                    _ => serde_json::json!({"raw": format!("scan {i}")}),
                };
                e.payload = Payload::from_json(kind, json).expect("payload");
                e
            })
            .collect();
        let ids = events.iter().map(|e| e.id).collect();
        store.append(events).await.expect("append");
        store.close();
        ids
    })
}

/// Stores events with these kinds and payloads (JSON), in order, and returns their ids. Works
/// while the daemon runs (SQLite serialises the two writers).
pub fn append_events(path: &Path, events: Vec<(&str, serde_json::Value)>) -> Vec<uuid::Uuid> {
    let path = path.to_path_buf();
    let events: Vec<(String, serde_json::Value)> = events.into_iter().map(|(k, v)| (k.to_owned(), v)).collect();
    std::thread::spawn(move || {
        use dockhand::event::{Kind, Payload};
        let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().expect("runtime");
        rt.block_on(async {
            let (store, _) =
                dockhand::store::Store::open(dockhand::store::StoreOptions::new(&path)).expect("open store");
            let events: Vec<_> = events
                .into_iter()
                .map(|(kind, json)| {
                    let mut e = dockhand::event::sample_event("hh-1", 100);
                    e.payload = Payload::from_json(Kind::parse(&kind).expect("kind"), json).expect("payload");
                    e
                })
                .collect();
            let ids = events.iter().map(|e| e.id).collect();
            store.append(events).await.expect("append");
            store.close();
            ids
        })
    })
    .join()
    .expect("append thread")
}

/// A TLS server configuration (ring) from a certificate chain and key in PEM files: what the test
/// servers (the HTTPS receiver, the fake Odoo) present.
pub fn tls_server_config(cert: &Path, key: &Path) -> Arc<rustls::ServerConfig> {
    use rustls::pki_types::pem::PemObject;
    let certs: Vec<_> =
        rustls::pki_types::CertificateDer::pem_file_iter(cert).expect("cert file").map(|c| c.expect("cert")).collect();
    let key = rustls::pki_types::PrivateKeyDer::from_pem_file(key).expect("key file");
    let config = rustls::ServerConfig::builder_with_provider(Arc::new(rustls::crypto::ring::default_provider()))
        .with_safe_default_protocol_versions()
        .expect("TLS versions")
        .with_no_client_auth()
        .with_single_cert(certs, key)
        .expect("certificate and key");
    Arc::new(config)
}
