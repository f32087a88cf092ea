//! HTTP sink drain over TLS + gzip + HMAC, as a share of the receiver's own ceiling.
//!
//!     cargo bench -p dockhand-tests --bench http_drain            # 1 000 000 events
//!     cargo bench -p dockhand-tests --bench http_drain -- 200000  # a shorter run
//!     cargo bench -p dockhand-tests --bench http_drain -- --split-cpus
//!
//! `--split-cpus` gives the receiver CPU 0 to itself and puts the sender side (the plain client,
//! then the daemon) on CPU 1, in both runs: the nearest this machine comes to a receiver on a
//! machine of its own, as in production. Without it, the receiver and the sender share both cores.
//!
//! The strict test receiver (tests/src/receiver.rs: TLS with the test CA, gunzip, HMAC over the
//! wire bytes, bearer token, JSON parsed) runs in this process. The ceiling is what it accepts
//! from a plain client — reqwest over the same TLS, one request in flight, keep-alive — posting
//! the very batches dockhand will send (the same events, 1 000 per batch, gzipped and signed
//! before the clock starts), timed once before dockhand's run and once after it; the mean of the two
//! is the ceiling, so that a machine whose speed drifts during the run does not decide the ratio.
//! Between them the real daemon drains the same store through its `http` sink
//! with `gzip = true` and a signing secret, timed from the daemon's ready line to the sink's
//! cursor reaching the last event. Both runs share this machine's cores with the receiver (unless
//! `--split-cpus`).

#![allow(clippy::unwrap_used)] // a benchmark harness: a panic is the failure report

use std::sync::Arc;
use std::time::{Duration, Instant};

use dockhand_tests::Site;
use dockhand_tests::mqtt::TestPki;
use dockhand_tests::receiver::Receiver;

const EXE: &str = env!("CARGO_BIN_EXE_dockhand-e2e");
const BATCH: usize = 1000;
const TOKEN: &str = "bench-token";
const SECRET: &[u8] = b"bench-signing-secret";

fn main() {
    let events: u64 = std::env::args().skip(1).find_map(|a| a.parse().ok()).unwrap_or(1_000_000);
    let split = std::env::args().any(|a| a == "--split-cpus");
    if split {
        // The sender side (this thread: the plain client, and the daemon it spawns, which
        // inherits the mask) on CPU 1; the receiver's worker alone on CPU 0.
        pin_current_thread(1);
    }
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .on_thread_start(move || {
            if split {
                pin_current_thread(0);
            }
        })
        .enable_all()
        .build()
        .unwrap();
    let site = Site::new(EXE);
    let pki = TestPki::generate(site.dir.path(), "cloud");
    let receiver = rt.block_on(Receiver::start(Some((&pki.server_cert, &pki.server_key))));
    receiver.require_token(TOKEN);
    receiver.verify_with(SECRET);
    receiver.count_only();

    eprintln!("filling a store with {events} events …");
    fill(&site.store_path(), events);
    let batches = prepare(&site.store_path());

    // 1. The ceiling: a plain client posting the prepared batches — before dockhand's run and
    // again after it, so that a machine that speeds up or slows down during the run does not
    // decide the ratio (the mean of the two is the ceiling).
    let client = plain_client(&pki);
    let url = receiver.url();
    let post_all = || {
        let started = Instant::now();
        rt.block_on(async {
            for (key, body) in &batches {
                let response = client
                    .post(&url)
                    .header("content-type", "application/json")
                    .header("content-encoding", "gzip")
                    .header("authorization", format!("Bearer {TOKEN}"))
                    .header("idempotency-key", key)
                    .header("x-dockhand-signature", signature(body))
                    .body(body.clone())
                    .send()
                    .await
                    .unwrap();
                assert!(response.status().is_success(), "{}", response.status());
                response.bytes().await.unwrap();
            }
        });
        let took = started.elapsed().as_secs_f64();
        assert_eq!(receiver.counts().1, events, "the receiver took every event from the plain client");
        receiver.reset_counts();
        took
    };
    let plain_before = post_all();

    // 2. dockhand's HTTP sink, same receiver, same events.
    std::fs::write(site.path("token"), TOKEN).unwrap();
    std::fs::write(site.path("signing.key"), SECRET).unwrap();
    site.write_config(&format!(
        r#"[[sink]]
name = "cloud"
type = "http"
url = "{url}"
token_file = "token"
signing_secret_file = "signing.key"
gzip = true
tls = {{ ca_file = "{}" }}
batch = {{ max_events = {BATCH}, max_bytes = "8MiB", linger = "0ms" }}
"#,
        pki.ca.display()
    ));
    let store = site.store_path();
    let text = std::fs::read_to_string(site.config())
        .unwrap()
        .replace("[store]\npath = \"store.db\"\n", "[store]\npath = \"store.db\"\nmax_bytes = \"64GiB\"\n");
    std::fs::write(site.config(), text).unwrap();
    let daemon = site.start();
    let started = Instant::now();
    let reader = dockhand::store::StoreReader::open(&store).unwrap();
    while reader.sink_state("cloud").unwrap().is_none_or(|s| s.cursor < events) {
        assert!(started.elapsed() < Duration::from_secs(1800), "the drain did not finish in 30 minutes");
        std::thread::sleep(Duration::from_millis(10));
    }
    let sink = started.elapsed().as_secs_f64();
    daemon.stop();
    let (requests, accepted) = receiver.counts();
    assert!(accepted >= events, "the receiver took {accepted} of {events} events from dockhand");
    receiver.reset_counts();
    let plain_after = post_all();

    let plain = (plain_before + plain_after) / 2.0;
    let (plain_rate, sink_rate) = (events as f64 / plain, events as f64 / sink);
    println!("strict receiver over TLS (gzip, HMAC over the wire bytes, token, JSON parsed), {BATCH} events per batch");
    println!(
        "plain client, prepared batches: {events} events in {plain_before:.2} s before and {plain_after:.2} s after dockhand = {plain_rate:.0} events/s"
    );
    println!(
        "dockhand http sink:             {events} events in {sink:.2} s = {sink_rate:.0} events/s ({requests} requests)"
    );
    println!("ratio: {:.1} % of the receiver's ceiling (target ≥ 95 %)", 100.0 * sink_rate / plain_rate);
}

/// Stores `events` events of ~200-byte payloads, as a gateway's backlog.
fn fill(path: &std::path::Path, events: u64) {
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    rt.block_on(async {
        let options = dockhand::store::StoreOptions { max_bytes: 64 << 30, ..dockhand::store::StoreOptions::new(path) };
        let (store, _) = dockhand::store::Store::open(options).unwrap();
        let mut written = 0;
        while written < events {
            let n = (events - written).min(5000);
            let chunk = (0..n).map(|i| dockhand::event::sample_event(&format!("dev-{}", i % 8), 200)).collect();
            store.append(chunk).await.unwrap();
            written += n;
        }
        store.close();
    });
}

/// The batches dockhand will send, as the contract defines them (contracts.md §3): keys, bodies of
/// the stored envelopes, gzipped.
fn prepare(path: &std::path::Path) -> Vec<(String, Vec<u8>)> {
    use std::io::Write;
    let reader = dockhand::store::StoreReader::open(path).unwrap();
    let mut batches = Vec::new();
    let mut cursor = 0;
    loop {
        let (items, _) = reader.batch_after(cursor, BATCH, usize::MAX, None).unwrap();
        let Some(last) = items.last() else { break };
        let key = format!("bench-gw:cloud:{}-{}-n{}", items[0].seq, last.seq, items.len());
        let events: Vec<&str> = items.iter().map(|i| i.body.as_str()).collect();
        let json = format!(r#"{{"gateway":"test-gw","batch_id":"{key}","events":[{}]}}"#, events.join(","));
        let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        gz.write_all(json.as_bytes()).unwrap();
        batches.push((key, gz.finish().unwrap()));
        cursor = last.seq;
    }
    batches
}

/// Restricts the calling thread (and every thread or process it starts later) to `cpu`.
#[allow(unsafe_code)]
fn pin_current_thread(cpu: usize) {
    // SAFETY: a zeroed cpu_set_t is a valid empty set; CPU_SET writes inside it; pid 0 is this thread.
    let result = unsafe {
        let mut set: libc::cpu_set_t = std::mem::zeroed();
        libc::CPU_SET(cpu, &mut set);
        libc::sched_setaffinity(0, std::mem::size_of::<libc::cpu_set_t>(), &set)
    };
    assert_eq!(result, 0, "cannot pin a thread to CPU {cpu}: {}", std::io::Error::last_os_error());
}

fn signature(body: &[u8]) -> String {
    let key = ring::hmac::Key::new(ring::hmac::HMAC_SHA256, SECRET);
    let tag = ring::hmac::sign(&key, body);
    format!("sha256={}", tag.as_ref().iter().map(|b| format!("{b:02x}")).collect::<String>())
}

fn plain_client(pki: &TestPki) -> reqwest::Client {
    use rustls::pki_types::pem::PemObject;
    let mut roots = rustls::RootCertStore::empty();
    for cert in rustls::pki_types::CertificateDer::pem_file_iter(&pki.ca).unwrap() {
        roots.add(cert.unwrap()).unwrap();
    }
    let tls = rustls::ClientConfig::builder_with_provider(Arc::new(rustls::crypto::ring::default_provider()))
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_root_certificates(roots)
        .with_no_client_auth();
    reqwest::Client::builder().use_preconfigured_tls(tls).build().unwrap()
}
