//! The MQTT messages between a `firmware-bridge` process (a device on another small host) and
//! the agent, which treats that device as its own. Topics, under the site prefix
//! (`warehouse/<site>`):
//!
//! | topic | direction | QoS | body |
//! | --- | --- | --- | --- |
//! | `<prefix>/bridge/<device>/state` | bridge → agent, retained; last will `offline` | 1 | [`StateMessage`] |
//! | `<prefix>/bridge/<device>/scan` | bridge → agent | 1 | [`ScanMessage`] |
//! | `<prefix>/bridge/<device>/reading` | bridge → agent | 0 | [`ReadingMessage`] |
//!
//! A scan carries an id made by the bridge, so a scan the broker delivers twice (the agent was
//! killed before its PUBACK) is stored once. Readings are live values: a lost one is replaced by
//! the next a moment later, so they go at QoS 0 and are never queued for an absent agent.

use serde::{Deserialize, Serialize};

use crate::ScaleReading;
use crate::scanner::Scan;

/// The state leaf.
pub const STATE: &str = "state";
/// The scan leaf.
pub const SCAN: &str = "scan";
/// The reading leaf.
pub const READING: &str = "reading";

/// `<prefix>/bridge/<device>/<leaf>`.
pub fn topic(prefix: &str, device: &str, leaf: &str) -> String {
    format!("{prefix}/bridge/{device}/{leaf}")
}

/// The device as the bridge sees it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum RemoteState {
    /// The port is open and the device answers.
    Connected,
    /// The port is gone or cannot be opened.
    Disconnected,
    /// The port is open but a polled device does not answer.
    Unresponsive,
    /// The device answers and reports a problem (a printer out of paper).
    Error,
    /// The bridge process itself is gone (its last will).
    Offline,
}

/// Body of `…/state`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StateMessage {
    /// The state.
    pub state: RemoteState,
    /// Why, in words a technician can act on.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub detail: Option<String>,
}

/// Body of `…/scan`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ScanMessage<'a> {
    /// A UUID made by the bridge when the scan was read: the event id.
    pub id: String,
    /// When the scan was read, in ms since the Unix epoch (the bridge host's clock).
    pub at_ms: u64,
    /// The scan payload.
    pub scan: &'a Scan,
    /// Why the scan could not be interpreted, if it could not.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub problem: Option<&'a str>,
}

/// Body of `…/reading`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ReadingMessage {
    /// When it was read, in ms since the Unix epoch.
    pub at_ms: u64,
    /// The reading.
    pub reading: ScaleReading,
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::scale::{Weight, WeightUnit};

    #[test]
    fn readings_round_trip_through_json() {
        let m = ReadingMessage {
            at_ms: 1,
            reading: ScaleReading::Weight(Weight::new("1.250".into(), WeightUnit::Kg, true).with_net(false)),
        };
        let text = serde_json::to_string(&m).unwrap();
        assert_eq!(serde_json::from_str::<ReadingMessage>(&text).unwrap(), m);
        let s: StateMessage = serde_json::from_str(r#"{"state":"offline"}"#).unwrap();
        assert_eq!(s.state, RemoteState::Offline);
    }
}
