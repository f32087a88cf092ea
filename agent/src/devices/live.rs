//! What devices say, live, for whoever listens inside the process:
//!
//! - local consumers over MQTT (a display at a pack station, a commissioning laptop): every scale
//!   reading and scan is published by the MQTT source on
//!   `<prefix>/gateway/<gateway>/reading/<device>`, and a station's step-by-step feedback on
//!   `…/station/<name>`, at QoS 0 (contracts.md §2). Not stored: a reading nobody listens for,
//!   or lost while the broker is away, is simply replaced by the next one;
//!
//! Displays only: nothing that is acknowledged or stored travels through it (stations get their
//! scans and readings through [`crate::devices::handoff`]).
//!
//! The hub lives as long as the process, so device tasks, stations and the MQTT source can each
//! be restarted by a reload without losing their connection to it.

use tokio::sync::broadcast;

/// One message to publish under `…/gateway/<id>/`.
#[derive(Debug, Clone)]
pub(crate) struct LiveReading {
    /// `reading/<device>` or `station/<name>`.
    pub(crate) leaf: String,
    /// JSON body.
    pub(crate) body: String,
}

/// The hub: device tasks and stations send, the MQTT source receives.
#[derive(Debug, Clone)]
pub(crate) struct LiveReadings {
    tx: broadcast::Sender<LiveReading>,
}

impl Default for LiveReadings {
    fn default() -> Self {
        // A few seconds of readings from a handful of scales; a slow publisher skips the oldest.
        let (tx, _) = broadcast::channel(256);
        LiveReadings { tx }
    }
}

impl LiveReadings {
    /// Offers a device's reading or scan for `…/reading/<device>`; dropped when nothing listens.
    pub(crate) fn publish(&self, device: &str, body: String) {
        let _ = self.tx.send(LiveReading { leaf: format!("reading/{device}"), body });
    }

    /// Offers a message for `…/gateway/<id>/<leaf>`.
    pub(crate) fn publish_at(&self, leaf: String, body: String) {
        let _ = self.tx.send(LiveReading { leaf, body });
    }

    /// A listener that gets every reading offered from now on.
    pub(crate) fn listen(&self) -> LiveListener {
        LiveListener { rx: self.tx.subscribe(), _hub: self.tx.clone() }
    }
}

/// One listener of the hub (the MQTT source; later the web page's live view).
#[derive(Debug)]
pub(crate) struct LiveListener {
    rx: broadcast::Receiver<LiveReading>,
    /// Keeps the hub open, so `next` never sees it closed.
    _hub: broadcast::Sender<LiveReading>,
}

impl LiveListener {
    /// The next reading. Readings this listener was too slow for are skipped: the newer ones
    /// say more, and nothing acknowledged travels here.
    pub(crate) async fn next(&mut self) -> LiveReading {
        loop {
            match self.rx.recv().await {
                Ok(reading) => return reading,
                Err(broadcast::error::RecvError::Lagged(_)) => continue,
                // Cannot happen while `_hub` lives; wait forever rather than spin.
                Err(broadcast::error::RecvError::Closed) => std::future::pending::<()>().await,
            }
        }
    }
}
