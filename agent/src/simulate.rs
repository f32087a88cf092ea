//! `dockhand simulate handhelds`: realistic handheld traffic for commissioning and demos. Each
//! simulated handheld is its own MQTT client; it publishes scans (real GS1 strings), counts and
//! picks with ids at QoS 1 — plus, on purpose, some malformed messages — and listens on its reply
//! topics (`<prefix>/reply/<device>/#`, or the v1 layout when configured), so the report says
//! what the gateway made of every message.
//!
//! Client ids are unique per process (`dockhand-sim-<pid>-<device>`): a second simulator — the
//! CLI's next to the demo daemon's own — must not take over the first one's connections (a broker
//! disconnects the older client of a reused id, and its answers are lost).

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde::Deserialize;
use serde_json::json;
use tracing::info;

use crate::mqtt::MqttSettings;
use crate::mqtt::{Outbound, Received, Session};
use crate::shutdown::Shutdown;

/// `[simulate]` in the config: the daemon runs simulated handhelds itself (demo only).
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub(crate) struct SimulateConfig {
    pub(crate) handhelds: usize,
    /// Messages per second, all handhelds together.
    pub(crate) rate: f64,
    /// Every n-th message is malformed on purpose (0: never).
    pub(crate) malformed_every: u64,
    /// Stop after this many messages (0: run until dockhand stops).
    pub(crate) count: u64,
}

impl Default for SimulateConfig {
    fn default() -> Self {
        Self { handhelds: 3, rate: 5.0, malformed_every: 20, count: 0 }
    }
}

/// What became of the simulated traffic.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub(crate) struct SimReport {
    pub(crate) sent: u64,
    /// Messages the broker acknowledged (PUBACK).
    pub(crate) pubacked: u64,
    pub(crate) stored: u64,
    pub(crate) duplicate: u64,
    pub(crate) rejected: u64,
    /// Malformed messages sent on purpose.
    pub(crate) malformed_sent: u64,
    /// Valid messages still without an answer from the gateway.
    pub(crate) unanswered: u64,
}

impl std::fmt::Display for SimReport {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "sent {} (broker acked {}) | stored {} | duplicate {} | rejected {} ({} malformed on purpose) | waiting for an answer {}",
            self.sent, self.pubacked, self.stored, self.duplicate, self.rejected, self.malformed_sent, self.unanswered
        )
    }
}

#[derive(Debug, Default)]
struct Tally {
    report: SimReport,
    /// Valid message ids not answered yet.
    waiting: HashMap<String, Instant>,
}

const PRODUCTS: [&str; 5] = ["4006381333931", "5901234123457", "9501101530003", "0012345678905", "4000417025005"];
const LOCATIONS: [&str; 4] = ["WH/Stock/A-01-01", "WH/Stock/A-01-02", "WH/Stock/B-03-07", "WH/Stock/C-12-01"];

/// Message `n`: (kind, JSON payload, id if valid).
fn message(n: u64, malformed_every: u64) -> (String, Vec<u8>, Option<String>) {
    let id = crate::event::new_event_id().to_string();
    let product = PRODUCTS[(n % 5) as usize];
    if malformed_every > 0 && n % malformed_every == malformed_every - 1 {
        let bad: (&str, Vec<u8>) = match (n / malformed_every) % 5 {
            0 => ("count", br#"{"product": {"barcode": "4006381333931"}, "location": "#.to_vec()),
            1 => (
                "count",
                json!({"id": id, "product": product, "location": "WH/Stock", "quantity": "-3"})
                    .to_string()
                    .into_bytes(),
            ),
            2 => (
                "pick",
                json!({"id": id, "picking": "WH/OUT/00042", "lines": [{"product": product, "quantity": 2.5}]})
                    .to_string()
                    .into_bytes(),
            ),
            3 => ("count", json!({"id": id, "product": product, "quantity": "1"}).to_string().into_bytes()),
            _ => ("teleport", json!({"id": id}).to_string().into_bytes()),
        };
        return (bad.0.into(), bad.1, None);
    }
    let ts = crate::timestamp::Timestamp::now();
    let (kind, body) = match n % 3 {
        0 => {
            let lot = format!("L{:05}", n % 100_000);
            let gtin = format!("0{product}");
            (
                "scan",
                json!({"id": id, "ts": ts, "raw": format!("]C101{gtin}17271231\u{1d}10{lot}"), "aim": "]C1", "symbology": "gs1-128",
                       "gs1": {"01": gtin, "17": "271231", "10": lot},
                       "parsed": {"gtin": gtin, "expiry": "2027-12-31", "lot": lot}}),
            )
        }
        1 => (
            "count",
            json!({"id": id, "ts": ts, "product": {"barcode": product}, "location": LOCATIONS[(n % 4) as usize],
                   "quantity": ((n % 40) + 1).to_string(), "operator": "sim"}),
        ),
        _ => (
            "pick",
            json!({"id": id, "ts": ts, "picking": format!("WH/OUT/{:05}", n % 500), "complete": n.is_multiple_of(9),
                   "lines": [{"product": {"barcode": product}, "quantity": ((n % 3) + 1).to_string()}]}),
        ),
    };
    (kind.into(), body.to_string().into_bytes(), Some(id))
}

/// Runs `handhelds` simulated devices until `count` messages are sent and answered (or shutdown).
/// With `progress`, prints a line every second (for the command line).
pub(crate) async fn run(
    settings: MqttSettings,
    config: SimulateConfig,
    mut shutdown: Shutdown,
    progress: bool,
) -> Result<SimReport, String> {
    let tally = Arc::new(Mutex::new(Tally::default()));
    let mut clients = Vec::new();
    let mut waiting_for_subscriptions = Vec::new();
    for d in 0..config.handhelds.max(1) {
        let device = format!("sim-hh-{:02}", d + 1);
        let mut session = Session::plain(format!("dockhand-sim-{}-{device}", std::process::id()));
        session.queue = 256;
        session.delivery_reports = true;
        let (client, mut events) = crate::mqtt::connect(&settings, &session)?;
        let (subscribed_tx, subscribed) = tokio::sync::oneshot::channel();
        let filter = settings.reply_filter(&device);
        let tally = tally.clone();
        let sub_client = client.clone();
        tokio::spawn(async move {
            let mut subscribed_tx = Some(subscribed_tx);
            loop {
                match events.poll().await {
                    // A clean session: subscribe again on every connection.
                    Ok(Received::Connected { .. }) => {
                        let _ = sub_client.try_subscribe(filter.clone(), 1);
                    }
                    Ok(Received::Subscribed { .. }) => {
                        if let Some(tx) = subscribed_tx.take() {
                            let _ = tx.send(());
                        }
                    }
                    Ok(Received::Acked { .. }) => lock(&tally).report.pubacked += 1,
                    Ok(Received::Message(p)) => record_reply(&tally, &p.topic, &p.payload),
                    Ok(_) => {}
                    Err(_) => tokio::time::sleep(Duration::from_millis(500)).await,
                }
            }
        });
        waiting_for_subscriptions.push(subscribed);
        clients.push((device, client));
    }
    // Publishing before the reply subscriptions hold would lose the first answers.
    let _ = tokio::time::timeout(Duration::from_secs(5), async {
        for subscribed in waiting_for_subscriptions {
            let _ = subscribed.await;
        }
    })
    .await;
    let interval = Duration::from_secs_f64(1.0 / config.rate.max(0.1));
    let mut ticker = tokio::time::interval(interval);
    let mut last_progress = Instant::now();
    let mut n: u64 = 0;
    loop {
        if config.count > 0 && n >= config.count {
            break;
        }
        tokio::select! {
            _ = ticker.tick() => {}
            _ = shutdown.wait() => break,
        }
        // The daemon's watchdog counts this task as alive only while it beats.
        shutdown.beat();
        let (device, client) = &clients[(n % clients.len() as u64) as usize];
        let (kind, body, id) = message(n, config.malformed_every);
        let topic = format!("{}/handheld/{device}/{kind}", settings.prefix);
        let body = String::from_utf8_lossy(&body).into_owned();
        client.publish(Outbound { topic, body, qos: 1, retain: false, correlation: None }).await?;
        {
            let mut t = lock(&tally);
            t.report.sent += 1;
            match id {
                Some(id) => {
                    t.waiting.insert(id, Instant::now());
                }
                None => t.report.malformed_sent += 1,
            }
        }
        n += 1;
        if last_progress.elapsed() >= Duration::from_secs(if progress { 1 } else { 5 }) {
            last_progress = Instant::now();
            say(progress, &snapshot(&tally));
        }
    }
    // Give the gateway a moment to answer what is still in flight.
    let deadline = Instant::now() + Duration::from_secs(10);
    while Instant::now() < deadline && !lock(&tally).waiting.is_empty() && !shutdown.is_triggered() {
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let report = snapshot(&tally);
    say(progress, &report);
    for (_, client) in clients {
        let _ = client.try_disconnect();
    }
    Ok(report)
}

fn say(progress: bool, report: &SimReport) {
    if progress {
        println!("{report}");
    } else {
        info!(%report, "Simulated handhelds.");
    }
}

fn lock(t: &Mutex<Tally>) -> std::sync::MutexGuard<'_, Tally> {
    t.lock().unwrap_or_else(|p| p.into_inner())
}

fn snapshot(t: &Mutex<Tally>) -> SimReport {
    let t = lock(t);
    SimReport { unanswered: t.waiting.len() as u64, ..t.report.clone() }
}

fn record_reply(tally: &Mutex<Tally>, topic: &str, payload: &[u8]) {
    #[derive(Deserialize)]
    struct Reply {
        id: Option<String>,
        status: Option<String>,
    }
    let Ok(reply) = serde_json::from_slice::<Reply>(payload) else { return };
    let mut t = lock(tally);
    if topic.ends_with("/rejected") {
        t.report.rejected += 1;
    } else if reply.status.as_deref() == Some("duplicate") {
        t.report.duplicate += 1;
    } else {
        t.report.stored += 1;
    }
    if let Some(id) = reply.id {
        t.waiting.remove(&id);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sources::mqtt::message::{Incoming, classify};

    /// The simulator's valid messages are valid, and its malformed ones are refused.
    #[test]
    fn generated_traffic_is_what_it_claims() {
        let mut malformed = 0;
        for n in 0..200 {
            let (kind, body, id) = message(n, 7);
            let topic = format!("warehouse/S/handheld/sim-hh-01/{kind}");
            match (classify("warehouse/S", &topic, &body, 65_536), id) {
                (Incoming::Message(m), Some(id)) => assert_eq!(m.id.unwrap().to_string(), id),
                (Incoming::Rejected(_), None) => malformed += 1,
                (other, id) => panic!("message {n} ({kind}, id {id:?}): {other:?}"),
            }
        }
        assert_eq!(malformed, 200 / 7);
    }
}
