//! The HTTPS sink against the test receiver (tests/src/receiver.rs), with the daemon as a real
//! process: outages, SIGKILLs, every failure answer, credentials, per-event rejections, TLS.

#![allow(clippy::unwrap_used)] // test code: a panic is the failure report

use std::collections::HashSet;
use std::time::{Duration, Instant};

use dockhand_tests::mqtt::TestPki;
use dockhand_tests::receiver::{Mode, Receiver};
use dockhand_tests::{Daemon, Site, check_delivery, fill_store, fill_store_kinds};

const EXE: &str = env!("CARGO_BIN_EXE_dockhand-e2e");

/// The TOML of an HTTPS sink `name` posting to `url` with the test CA, a token and a signature.
fn sink_toml(name: &str, url: &str, pki: &TestPki, retry: &str, batch: &str, extra: &str) -> String {
    format!(
        r#"[[sink]]
name = "{name}"
type = "http"
url = "{url}"
token_file = "token"
signing_secret_file = "signing.key"
tls = {{ ca_file = "{}" }}
request_timeout = "1s"
batch = {batch}
retry = {retry}
{extra}
"#,
        pki.ca.display()
    )
}

const RETRY: &str = r#"{ initial = "100ms", max = "2s" }"#;
const BATCH: &str = r#"{ max_events = 100, linger = "0ms" }"#;

/// A site with the token and signing secret files every test sink reads.
fn site_with_secrets() -> Site {
    let site = Site::new(EXE);
    std::fs::write(site.path("token"), "s3cret-token\n").unwrap();
    std::fs::write(site.path("signing.key"), "signing-secret\n").unwrap();
    site
}

/// A site whose `cloud` sink posts to `receiver` over HTTPS with a test CA, a token and a signature.
fn https_site(receiver_url: &str, pki: &TestPki, extra: &str) -> Site {
    let site = site_with_secrets();
    site.write_config(&sink_toml("cloud", receiver_url, pki, RETRY, BATCH, extra));
    site
}

async fn https_receiver(site_dir: &std::path::Path) -> (Receiver, TestPki) {
    let pki = TestPki::generate(site_dir, "cloud");
    let receiver = Receiver::start(Some((&pki.server_cert, &pki.server_key))).await;
    receiver.require_token("s3cret-token");
    receiver.verify_with(b"signing-secret");
    (receiver, pki)
}

fn cloud(site: &Site) -> dockhand::store::SinkState {
    sink(site, "cloud")
}

fn sink(site: &Site, name: &str) -> dockhand::store::SinkState {
    dockhand::store::StoreReader::open(&site.store_path()).unwrap().sink_state(name).unwrap().unwrap()
}

/// Stores a few events, starts the daemon and waits until the `cloud` sink pauses; its reason.
async fn start_until_paused(site: &Site) -> (Daemon, String) {
    fill_store(&site.store_path(), 5);
    let daemon = site.start();
    wait_async(Duration::from_secs(10), "the pause", || cloud(site).paused.is_some()).await;
    (daemon, cloud(site).paused.unwrap())
}

async fn wait_async(timeout: Duration, what: &str, mut check: impl FnMut() -> bool) {
    let deadline = Instant::now() + timeout;
    while !check() {
        assert!(Instant::now() < deadline, "timed out after {timeout:?} waiting for {what}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_outage_and_three_kills_during_a_20000_event_drain_lose_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let (mut receiver, pki) = https_receiver(dir.path()).await;
    let site = https_site(&receiver.url(), &pki, "gzip = true");
    let ids = fill_store(&site.store_path(), 20_000);
    // The uplink is down when the gateway starts.
    receiver.go_down();
    let daemon = site.start();
    wait_async(Duration::from_secs(20), "failed attempts while the receiver is down", || cloud(&site).attempts >= 2)
        .await;
    receiver.set_mode(Mode::Slow(Duration::from_millis(15)));
    receiver.come_back().await;
    let mut daemon = Some(daemon);
    for _ in 0..3 {
        let before = receiver.accepted_events().len();
        wait_async(Duration::from_secs(30), "progress", || receiver.accepted_events().len() > before + 1500).await;
        daemon.take().unwrap().kill9();
        daemon = Some(site.start());
    }
    wait_async(Duration::from_secs(120), "the drain to finish", || cloud(&site).cursor >= 20_000).await;
    assert_eq!(daemon.take().unwrap().stop().code(), Some(0));

    let received = receiver.accepted_events();
    let repeats = check_delivery(&ids, &received);
    // Per kill: the batch in flight, and the two before it whose progress commits run while the
    // next ones are sent (contracts §3); plus batches cut off by the outage.
    assert!(repeats <= 3 * 3 * 100 + 200, "{repeats} repeats: only batches in flight at a kill or cut off may repeat");
    let deliveries = receiver.deliveries();
    assert!(deliveries.iter().all(|d| d.signature_ok == Some(true)), "every body carries a valid signature");
    assert!(deliveries.iter().all(|d| d.gzip));
    assert!(deliveries.iter().filter(|d| d.status == 200).all(|d| d.idempotency_key.is_some()));
    let status: serde_json::Value = serde_json::from_slice(&site.cli(&["status", "--json"]).stdout).unwrap();
    assert_eq!(status["sinks"][0]["pending"], 0, "{status}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_failure_answer_is_retried_until_everything_is_delivered() {
    let dir = tempfile::tempdir().unwrap();
    let (receiver, pki) = https_receiver(dir.path()).await;
    let site = https_site(&receiver.url(), &pki, "");
    let mut ids = Vec::new();
    receiver.set_mode(Mode::Status { status: 503, retry_after: Some("1".into()), body: "maintenance".into() });
    ids.extend(fill_store(&site.store_path(), 30));
    let daemon = site.start();
    let failures = |r: &Receiver, status: u16| r.deliveries().iter().filter(|d| d.status == status).count();
    wait_async(Duration::from_secs(10), "two 503s", || failures(&receiver, 503) >= 2).await;
    let at: Vec<Instant> = receiver.deliveries().iter().filter(|d| d.status == 503).map(|d| d.at).collect();
    assert!(at[1] - at[0] >= Duration::from_millis(950), "Retry-After: 1 honoured ({:?} apart)", at[1] - at[0]);
    for (mode, what) in [
        (Mode::Status { status: 429, retry_after: None, body: "slow down".into() }, "429"),
        (Mode::Status { status: 500, retry_after: None, body: "oops".into() }, "500"),
        (Mode::Slow(Duration::from_secs(3)), "slower than the 1 s timeout"),
        (Mode::DropAfterBody, "connection dropped after the body"),
    ] {
        receiver.set_mode(mode);
        let before = cloud(&site).retried;
        wait_async(Duration::from_secs(15), what, || cloud(&site).retried >= before + 2).await;
        let status = String::from_utf8(site.cli(&["status"]).stdout).unwrap();
        assert!(status.contains("RETRYING"), "{what}: {status}");
    }
    // 413: the sink splits until batches fit.
    let before_413 = receiver.deliveries().len();
    receiver.set_mode(Mode::TooLargeAbove(7));
    ids.extend(fill_store(&site.store_path(), 40));
    wait_async(Duration::from_secs(20), "delivery in smaller batches", || cloud(&site).cursor >= 70).await;
    let split = &receiver.deliveries()[before_413..];
    assert!(split.iter().any(|d| d.status == 413));
    assert!(split.iter().filter(|d| d.status == 200).all(|d| d.ids.len() <= 7), "accepted batches fit the limit");
    receiver.set_mode(Mode::Accept);
    ids.extend(fill_store(&site.store_path(), 10));
    wait_async(Duration::from_secs(20), "the rest", || cloud(&site).cursor >= 80).await;
    assert_eq!(daemon.stop().code(), Some(0));
    check_delivery(&ids, &receiver.accepted_events());
    assert_eq!(cloud(&site).dead_lettered, 0, "nothing was dead-lettered by transient failures");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_401_pauses_the_sink_without_dead_letters_and_sighup_with_a_fixed_token_resumes() {
    let dir = tempfile::tempdir().unwrap();
    let (receiver, pki) = https_receiver(dir.path()).await;
    let site =
        https_site(&receiver.url(), &pki, "retry = { initial = \"100ms\", max = \"2s\", paused_interval = \"30s\" }\n");
    // `retry` was given twice: the extra table above would be a duplicate key, so rewrite the file.
    let text =
        std::fs::read_to_string(site.config()).unwrap().replace("retry = { initial = \"100ms\", max = \"2s\" }\n", "");
    std::fs::write(site.config(), text).unwrap();
    std::fs::write(site.path("token"), "expired-token\n").unwrap();
    let ids = fill_store(&site.store_path(), 50);
    let daemon = site.start();
    wait_async(Duration::from_secs(10), "the pause", || cloud(&site).paused.is_some()).await;
    let status = String::from_utf8(site.cli(&["status"]).stdout).unwrap();
    assert!(status.contains("PAUSED") && status.contains("refused the credentials"), "{status}");
    assert!(!status.contains("expired-token"), "the token never shows: {status}");
    let dlq: Vec<serde_json::Value> = serde_json::from_slice(&site.cli(&["dlq", "list", "--json"]).stdout).unwrap();
    assert!(dlq.is_empty(), "nothing dead-lettered: {dlq:?}");
    // The technician fixes the token and reloads.
    std::fs::write(site.path("token"), "s3cret-token\n").unwrap();
    daemon.signal(libc::SIGHUP);
    wait_async(Duration::from_secs(10), "delivery after the reload", || cloud(&site).cursor >= 50).await;
    assert!(cloud(&site).paused.is_none());
    assert_eq!(daemon.stop().code(), Some(0));
    assert_eq!(check_delivery(&ids, &receiver.accepted_events()), 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rejected_events_are_dead_lettered_with_the_reason_and_dlq_retry_redelivers_them() {
    let dir = tempfile::tempdir().unwrap();
    let (receiver, pki) = https_receiver(dir.path()).await;
    let site = https_site(&receiver.url(), &pki, "");
    let ids = fill_store(&site.store_path(), 20);
    let refused: HashSet<String> = [3, 11, 17].iter().map(|&i| ids[i].to_string()).collect();
    receiver.set_mode(Mode::RejectIds {
        ids: refused.clone(),
        reason: "unknown product 4006381333931".into(),
        retry: false,
    });
    let daemon = site.start();
    wait_async(Duration::from_secs(10), "the batch", || cloud(&site).cursor >= 20).await;
    let dlq: Vec<serde_json::Value> = serde_json::from_slice(&site.cli(&["dlq", "list", "--json"]).stdout).unwrap();
    assert_eq!(dlq.len(), 3);
    for entry in &dlq {
        assert_eq!(entry["reason"], "unknown product 4006381333931");
        assert!(refused.contains(entry["event_id"].as_str().unwrap()));
    }
    assert_eq!(cloud(&site).dead_lettered, 3);
    // The product was created on the other side: send them again.
    receiver.set_mode(Mode::Accept);
    let out = site.cli(&["dlq", "retry", "--all"]);
    assert!(String::from_utf8_lossy(&out.stdout).contains("3 dead letter(s) queued"), "{out:?}");
    wait_async(Duration::from_secs(10), "the redelivery", || {
        receiver.accepted_events().iter().filter(|e| refused.contains(e["id"].as_str().unwrap())).count() == 3
    })
    .await;
    assert_eq!(daemon.stop().code(), Some(0));
    // A retried dead letter comes after newer events (an operator's decision), so only count.
    let got: Vec<String> = receiver.accepted_events().iter().map(|e| e["id"].as_str().unwrap().to_string()).collect();
    let unique: HashSet<&String> = got.iter().collect();
    assert_eq!((got.len(), unique.len()), (20, 20), "every event arrived exactly once");
    let open: Vec<serde_json::Value> = serde_json::from_slice(&site.cli(&["dlq", "list", "--json"]).stdout).unwrap();
    assert!(open.is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unknown_ca_is_refused_with_a_clear_error() {
    let dir = tempfile::tempdir().unwrap();
    let (receiver, _pki) = https_receiver(dir.path()).await;
    let other = TestPki::generate(dir.path(), "other");
    let site = https_site(&receiver.url(), &other, "");
    let (daemon, reason) = start_until_paused(&site).await;
    assert!(reason.contains("not signed by a CA dockhand trusts") && reason.contains("tls.ca_file"), "{reason}");
    assert!(receiver.accepted_events().is_empty());
    let out = site.cli(&["check-config", "--connect"]);
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains("✗ sink cloud (http)") && text.contains("tls.ca_file"), "{text}");
    assert_eq!(daemon.stop().code(), Some(0));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn after_90_s_of_any_outage_delivery_resumes_within_2_seconds_without_bare_tcp_probes() {
    let dir = tempfile::tempdir().unwrap();
    let pki = TestPki::generate(dir.path(), "cloud");
    let tls = Some((pki.server_cert.as_path(), pki.server_key.as_path()));
    // One receiver per kind of outage, each behind its own sink of one gateway.
    let outages: [(&str, Option<Mode>); 4] = [
        ("unavailable", Some(Mode::Status { status: 503, retry_after: None, body: "no healthy upstream".into() })),
        ("refused", None),
        ("reset", Some(Mode::Reset)),
        ("timeout", Some(Mode::Slow(Duration::from_secs(5)))),
    ];
    let mut receivers = Vec::new();
    let site = site_with_secrets();
    let mut config = String::new();
    for (name, mode) in &outages {
        let mut r = Receiver::start(tls).await;
        r.require_token("s3cret-token");
        r.verify_with(b"signing-secret");
        match mode {
            Some(mode) => r.set_mode(mode.clone()),
            None => r.go_down(),
        }
        // A backoff that has grown past a minute: without probes the next attempt could be minutes away.
        config.push_str(&sink_toml(name, &r.url(), &pki, r#"{ initial = "60s", max = "10m" }"#, BATCH, ""));
        receivers.push(r);
    }
    site.write_config(&config);
    fill_store(&site.store_path(), 10);
    let daemon = site.start();
    tokio::time::sleep(Duration::from_secs(90)).await;
    for (name, _) in &outages {
        assert_eq!(sink(&site, name).cursor, 0, "{name}: nothing delivered during the outage");
    }
    let back = Instant::now();
    for (r, (_, mode)) in receivers.iter_mut().zip(&outages) {
        match mode {
            Some(_) => r.set_mode(Mode::Accept),
            None => r.come_back().await,
        }
    }
    let mut resumed = vec![None; outages.len()];
    while resumed.iter().any(Option::is_none) && back.elapsed() < Duration::from_secs(30) {
        for (i, (name, _)) in outages.iter().enumerate() {
            if resumed[i].is_none() && sink(&site, name).cursor >= 10 {
                resumed[i] = Some(back.elapsed());
            }
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert_eq!(daemon.stop().code(), Some(0));
    for ((name, _), took) in outages.iter().zip(&resumed) {
        let took = took.unwrap_or_else(|| panic!("{name}: not delivered 30 s after the receiver came back"));
        assert!(took <= Duration::from_secs(2), "{name}: the whole batch was delivered {took:?} after recovery");
    }
    for (r, (name, _)) in receivers.iter().zip(&outages) {
        assert_eq!(r.handshake_failures(), 0, "{name}: every probe is a real TLS request");
    }
    // The 503 receiver saw the probes: real requests, at most one a second.
    let during: Vec<_> = receivers[0].deliveries().into_iter().filter(|d| d.at < back).collect();
    assert!(during.len() >= 40 && during.len() <= 92, "{} requests in 90 s", during.len());
    for w in during.windows(2) {
        assert!(w[1].at - w[0].at >= Duration::from_millis(950), "requests {:?} apart", w[1].at - w[0].at);
    }
    assert!(during.iter().all(|d| d.signature_ok == Some(true) && d.token.as_deref() == Some("s3cret-token")));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn retries_carry_the_key_and_the_events_of_the_batch_first_sent() {
    let dir = tempfile::tempdir().unwrap();
    let (receiver, pki) = https_receiver(dir.path()).await;
    let site = https_site(&receiver.url(), &pki, "gzip = true");
    receiver.set_mode(Mode::Status { status: 503, retry_after: None, body: "upstream down".into() });
    let mut ids = fill_store(&site.store_path(), 30);
    let daemon = site.start();
    let requests = |r: &Receiver| r.deliveries().len();
    wait_async(Duration::from_secs(10), "two 503s", || requests(&receiver) >= 2).await;
    // New events arrive during the outage; they must not join the waiting batch.
    ids.extend(fill_store(&site.store_path(), 150));
    // A SIGKILL while the batch waits: the restarted daemon resends it as it was.
    let killed_at = requests(&receiver);
    daemon.kill9();
    let daemon = site.start();
    wait_async(Duration::from_secs(10), "a request after the restart", || requests(&receiver) > killed_at).await;
    receiver.set_mode(Mode::DropAfterBody);
    let before = requests(&receiver);
    wait_async(Duration::from_secs(10), "two dropped connections", || requests(&receiver) >= before + 2).await;
    receiver.set_mode(Mode::Status { status: 500, retry_after: None, body: "oops".into() });
    let before = requests(&receiver);
    wait_async(Duration::from_secs(10), "two 500s", || requests(&receiver) >= before + 2).await;
    receiver.set_mode(Mode::Accept);
    wait_async(Duration::from_secs(20), "the drain", || cloud(&site).cursor >= 180).await;
    assert_eq!(daemon.stop().code(), Some(0));
    check_delivery(&ids, &receiver.accepted_events());

    let deliveries = receiver.deliveries();
    let first = &deliveries[0];
    assert_eq!(first.ids.len(), 30, "the first batch holds what was there");
    let mut by_key: std::collections::HashMap<String, Vec<String>> = std::collections::HashMap::new();
    for d in &deliveries {
        let key = d.idempotency_key.clone().expect("every request carries an Idempotency-Key");
        match key.strip_suffix("/probe") {
            // A probe sends the head event of the waiting batch alone.
            Some(parent) => {
                assert_eq!(d.ids.len(), 1, "{key}");
                if let Some(parent_ids) = by_key.get(parent) {
                    assert_eq!(d.ids[0], parent_ids[0], "{key} carries the head event of {parent}");
                }
            }
            None => {
                let ids = by_key.entry(key.clone()).or_insert_with(|| d.ids.clone());
                assert_eq!(ids, &d.ids, "request {key} resent with other events");
            }
        }
    }
    let first_key = first.idempotency_key.as_deref().unwrap();
    let after_kill = &deliveries[killed_at];
    assert_eq!(after_kill.idempotency_key.as_deref(), Some(first_key), "after the SIGKILL, the same batch");
    assert_eq!(after_kill.ids, first.ids);
    let resent = deliveries.iter().filter(|d| d.idempotency_key.as_deref() == Some(first_key)).count();
    assert!(resent >= 4, "the first batch was retried under its own key ({resent} times)");
    assert!(deliveries.iter().all(|d| d.signature_ok == Some(true) && d.gzip));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn gzip_bodies_are_signed_over_the_wire_bytes_or_over_the_json_when_asked() {
    use dockhand_tests::receiver::SignedOver;
    let dir = tempfile::tempdir().unwrap();
    for (over, setting) in [(SignedOver::Wire, ""), (SignedOver::Decoded, "signature_over = \"decoded\"")] {
        let (receiver, pki) = https_receiver(dir.path()).await;
        receiver.verify_over(b"signing-secret", over);
        let site = https_site(&receiver.url(), &pki, &format!("gzip = true\n{setting}"));
        let ids = fill_store(&site.store_path(), 250);
        let daemon = site.start();
        wait_async(Duration::from_secs(10), "the drain", || cloud(&site).cursor >= 250).await;
        assert_eq!(daemon.stop().code(), Some(0));
        assert_eq!(check_delivery(&ids, &receiver.accepted_events()), 0, "{over:?}");
        assert!(receiver.deliveries().iter().all(|d| d.gzip && d.signature_ok == Some(true)), "{over:?}");
    }
    // A receiver of the other convention refuses the signature: the pause names the right settings.
    let (receiver, pki) = https_receiver(dir.path()).await;
    receiver.verify_over(b"signing-secret", SignedOver::Decoded);
    let site = https_site(&receiver.url(), &pki, "gzip = true");
    let (daemon, reason) = start_until_paused(&site).await;
    assert!(reason.contains("signing_secret_file") && reason.contains("signature_over"), "{reason}");
    assert!(!reason.contains("token_file"), "not the token's fault: {reason}");
    assert_eq!(daemon.stop().code(), Some(0));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_rotated_token_is_used_from_the_next_request_after_one_sighup() {
    let dir = tempfile::tempdir().unwrap();
    let (receiver, pki) = https_receiver(dir.path()).await;
    // The grace period of a rotation: both tokens are valid, so the sink stays healthy throughout.
    receiver.accept_tokens(&["s3cret-token", "rotated-token"]);
    let site = https_site(&receiver.url(), &pki, "");
    fill_store(&site.store_path(), 20);
    let daemon = site.start();
    wait_async(Duration::from_secs(10), "the first batch", || cloud(&site).cursor >= 20).await;
    std::fs::write(site.path("token"), "rotated-token\n").unwrap();
    daemon.signal(libc::SIGHUP);
    wait_async(Duration::from_secs(10), "the reload", || daemon.log().contains("Config reloaded.")).await;
    let before = receiver.deliveries().len();
    fill_store(&site.store_path(), 20);
    wait_async(Duration::from_secs(10), "the next batch", || cloud(&site).cursor >= 40).await;
    assert_eq!(daemon.stop().code(), Some(0));
    let deliveries = receiver.deliveries();
    assert!(deliveries[..before].iter().all(|d| d.token.as_deref() == Some("s3cret-token")));
    assert!(deliveries.len() > before);
    assert!(
        deliveries[before..].iter().all(|d| d.token.as_deref() == Some("rotated-token")),
        "{:?}",
        deliveries[before..].iter().map(|d| d.token.clone()).collect::<Vec<_>>()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_receiver_limit_costs_one_split_not_one_per_batch() {
    let dir = tempfile::tempdir().unwrap();
    let (receiver, pki) = https_receiver(dir.path()).await;
    receiver.set_mode(Mode::TooLargeAbove(40));
    let site = site_with_secrets();
    site.write_config(&sink_toml("cloud", &receiver.url(), &pki, RETRY, r#"{ max_events = 500, linger = "0ms" }"#, ""));
    let ids = fill_store(&site.store_path(), 5_500);
    let daemon = site.start();
    wait_async(Duration::from_secs(60), "the drain", || cloud(&site).cursor >= 5_500).await;
    assert_eq!(daemon.stop().code(), Some(0));
    assert_eq!(check_delivery(&ids, &receiver.accepted_events()), 0);
    let deliveries = receiver.deliveries();
    let first_ok = deliveries.iter().position(|d| d.status == 200).unwrap();
    // 500 → 250 → 125 → 63 → 32: the halving of the first batch is the only cost.
    assert!(first_ok <= 4, "{first_ok} refusals before the first accepted half");
    let later_events: usize = deliveries[first_ok..].iter().map(|d| d.ids.len()).sum();
    assert!(later_events >= 5_000);
    let refused_later = deliveries[first_ok..].iter().filter(|d| d.status == 413).count();
    assert_eq!(refused_later, 0, "no 413 once the limit is learned");
    assert!(deliveries[first_ok..].iter().all(|d| d.ids.len() <= 40));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kind_filters_and_rate_limits_shape_what_the_receiver_sees() {
    let dir = tempfile::tempdir().unwrap();
    let (receiver, pki) = https_receiver(dir.path()).await;
    let site = https_site(
        &receiver.url(),
        &pki,
        "kinds = [\"count\", \"pick\"]\nrate_limit = { events_per_second = 100.0, requests_per_second = 5.0 }",
    );
    let ids = fill_store_kinds(&site.store_path(), 600, &["count", "scan", "pick"]);
    let started = Instant::now();
    let daemon = site.start();
    wait_async(Duration::from_secs(30), "the drain", || cloud(&site).cursor >= 600).await;
    let took = started.elapsed();
    assert_eq!(daemon.stop().code(), Some(0));
    let received = receiver.accepted_events();
    assert_eq!(received.len(), 400, "only counts and picks");
    assert!(received.iter().all(|e| e["kind"] == "count" || e["kind"] == "pick"));
    let wanted: Vec<uuid::Uuid> = ids.iter().enumerate().filter(|(i, _)| i % 3 != 1).map(|(_, id)| *id).collect();
    check_delivery(&wanted, &received);
    // 400 events at 100/s: about 4 s, and never faster than 5 requests per second.
    assert!(took >= Duration::from_secs(3), "rate limit: the drain took {took:?}");
    let at: Vec<Instant> = receiver.deliveries().iter().map(|d| d.at).collect();
    for w in at.windows(2) {
        assert!(w[1] - w[0] >= Duration::from_millis(180), "requests {:?} apart", w[1] - w[0]);
    }
    let status: serde_json::Value = serde_json::from_slice(&site.cli(&["status", "--json"]).stdout).unwrap();
    assert_eq!(status["sinks"][0]["pending"], 0, "skipped kinds do not count as pending: {status}");
}
