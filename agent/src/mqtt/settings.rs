//! What an MQTT connection of dockhand needs from the config ([`MqttSettings`]): the broker and
//! its options and the topic layout (prefix, replies, status, print jobs). The connection itself
//! is made by [`super::connect`].

use serde_json::json;

use super::config::{MqttConfig, ReplyLayout};

/// What the source needs to know, from the config.
#[derive(Debug, Clone)]
pub(crate) struct MqttSettings {
    pub(crate) mqtt: MqttConfig,
    pub(crate) gateway: String,
    pub(crate) site: String,
    pub(crate) prefix: String,
    /// Printers that take jobs on `…/gateway/<id>/print/<printer>`.
    pub(crate) printers: Vec<String>,
    pub(crate) labels: Vec<crate::printing::LabelConfig>,
}

impl MqttSettings {
    /// `…/gateway/<id>/print`: print jobs arrive on `<this>/<printer>`, answers go to
    /// `<this>/<printer>/ack`.
    pub(crate) fn print_prefix(&self) -> String {
        format!("{}/gateway/{}/print", self.prefix, self.gateway)
    }

    pub(crate) fn status_topic(&self) -> String {
        format!("{}/gateway/{}/status", self.prefix, self.gateway)
    }

    /// Where answers of kind `which` (`ack`, `rejected`) for `device` go when the message named
    /// no Response Topic (contracts.md §2).
    pub(crate) fn reply_topic(&self, device: &str, which: &str) -> String {
        match self.mqtt.replies {
            ReplyLayout::V2 => format!("{}/reply/{device}/{which}", self.prefix),
            ReplyLayout::V1 => format!("{}/handheld/{device}/{which}", self.prefix),
        }
    }

    /// The filter a handheld (or a simulator) subscribes to for its answers.
    pub(crate) fn reply_filter(&self, device: &str) -> String {
        self.reply_topic(device, "+")
    }
}

/// The retained status a gateway leaves behind when it goes away (its last will, and a clean stop).
pub(crate) fn offline_payload(gateway: &str) -> String {
    json!({"state": "offline", "gateway": gateway}).to_string()
}
