//! What devices say, live, for whoever listens inside the process:
//!
//! - local consumers over MQTT (a display at a pack station, a commissioning laptop): every scale
//!   reading and scan is published by the MQTT source on
//!   `<prefix>/gateway/<gateway>/reading/<device>`, and a station's step-by-step feedback on
//!   `…/station/<name>`, at QoS 0 (contracts.md §2). Not stored: a reading nobody listens for,
//!   or lost while the broker is away, is simply replaced by the next one;
//! - stations ([`crate::stations`]), which turn their devices' scans and readings into events.
//!
//! The hub lives as long as the process, so device tasks, stations and the MQTT source can each
//! be restarted by a reload without losing their connection to it.

use firmware_bridge::ScaleReading;
use tokio::sync::broadcast;

/// One message to publish under `…/gateway/<id>/`.
#[derive(Debug, Clone)]
pub struct LiveReading {
    /// `reading/<device>` or `station/<name>`.
    pub leaf: String,
    /// JSON body.
    pub body: String,
}

/// What a device said, for stations.
#[derive(Debug, Clone)]
pub enum Signal {
    /// A scan: its payload JSON (raw, aim, gs1, parsed).
    Scan(serde_json::Value),
    /// A scale reading.
    Reading(ScaleReading),
}

/// The hub: device tasks and stations send, the MQTT source and stations receive.
#[derive(Debug, Clone)]
pub struct LiveReadings {
    tx: broadcast::Sender<LiveReading>,
    signals: broadcast::Sender<(String, Signal)>,
}

impl Default for LiveReadings {
    fn default() -> Self {
        // A few seconds of readings from a handful of scales; a slow publisher skips the oldest.
        let (tx, _) = broadcast::channel(256);
        let (signals, _) = broadcast::channel(256);
        LiveReadings { tx, signals }
    }
}

impl LiveReadings {
    /// Offers a device's reading or scan for `…/reading/<device>`; dropped when nothing listens.
    pub fn publish(&self, device: &str, body: String) {
        let _ = self.tx.send(LiveReading { leaf: format!("reading/{device}"), body });
    }

    /// Offers a message for `…/gateway/<id>/<leaf>`.
    pub fn publish_at(&self, leaf: String, body: String) {
        let _ = self.tx.send(LiveReading { leaf, body });
    }

    pub fn subscribe(&self) -> broadcast::Receiver<LiveReading> {
        self.tx.subscribe()
    }

    /// Hands a device's scan or reading to the stations.
    pub fn signal(&self, device: &str, signal: Signal) {
        let _ = self.signals.send((device.to_owned(), signal));
    }

    pub fn signals(&self) -> broadcast::Receiver<(String, Signal)> {
        self.signals.subscribe()
    }
}
