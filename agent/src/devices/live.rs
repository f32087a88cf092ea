//! Live device readings for local consumers (a display at a pack station, a commissioning
//! laptop): every scale reading and scan from a device, published by the MQTT source on
//! `<prefix>/gateway/<gateway>/reading/<device>` at QoS 0 (contracts.md §2). Not stored: a
//! reading that nobody is listening for, or that is lost while the broker is away, is simply
//! replaced by the next one.
//!
//! The hub lives as long as the process, so device tasks and the MQTT source can each be
//! restarted by a reload without losing their connection to it.

use tokio::sync::broadcast;

/// One reading to publish.
#[derive(Debug, Clone)]
pub struct LiveReading {
    pub device: String,
    /// JSON body.
    pub body: String,
}

/// The hub: device tasks send, the MQTT source receives.
#[derive(Debug, Clone)]
pub struct LiveReadings {
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
    /// Offers a reading; dropped when nothing listens.
    pub fn publish(&self, device: &str, body: String) {
        let _ = self.tx.send(LiveReading { device: device.to_owned(), body });
    }

    pub fn subscribe(&self) -> broadcast::Receiver<LiveReading> {
        self.tx.subscribe()
    }
}
