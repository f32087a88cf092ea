//! What an MQTT connection of dockhand needs from the config ([`MqttSettings`]): the broker and
//! its options, the topic layout (prefix, replies, status, print jobs), and rumqttc options.

use rumqttc::{LastWill, MqttOptions, QoS, TlsConfiguration, Transport};
use serde_json::json;

use super::config::{MqttConfig, ReplyLayout};

/// What the source needs to know, from the config.
#[derive(Debug, Clone)]
pub struct MqttSettings {
    pub mqtt: MqttConfig,
    pub gateway: String,
    pub site: String,
    pub prefix: String,
    /// Printers that take jobs on `…/gateway/<id>/print/<printer>`.
    pub printers: Vec<String>,
    pub labels: Vec<crate::printing::LabelConfig>,
}

impl MqttSettings {
    /// `…/gateway/<id>/print`: print jobs arrive on `<this>/<printer>`, answers go to
    /// `<this>/<printer>/ack`.
    pub fn print_prefix(&self) -> String {
        format!("{}/gateway/{}/print", self.prefix, self.gateway)
    }

    pub fn status_topic(&self) -> String {
        format!("{}/gateway/{}/status", self.prefix, self.gateway)
    }

    /// Where answers of kind `which` (`ack`, `rejected`) for `device` go when the message named
    /// no Response Topic (contracts.md §2).
    pub fn reply_topic(&self, device: &str, which: &str) -> String {
        match self.mqtt.replies {
            ReplyLayout::V2 => format!("{}/reply/{device}/{which}", self.prefix),
            ReplyLayout::V1 => format!("{}/handheld/{device}/{which}", self.prefix),
        }
    }

    /// The filter a handheld (or a simulator) subscribes to for its answers.
    pub fn reply_filter(&self, device: &str) -> String {
        self.reply_topic(device, "+")
    }

    /// rumqttc options for this connection. `client_id` overrides the configured one (the
    /// simulator connects as the handhelds).
    pub fn options(&self, client_id: &str, last_will: bool) -> Result<MqttOptions, String> {
        let m = &self.mqtt;
        let mut o = MqttOptions::new(client_id, m.host.clone(), m.port);
        o.set_keep_alive(m.keep_alive.0);
        // Oversized payloads must reach us so they can be dead-lettered and answered; rumqttc
        // drops the whole connection on a packet over its limit, so its limit is set higher.
        let incoming = (m.max_payload_bytes.0 as usize).saturating_mul(4).max(2 << 20);
        o.set_max_packet_size(incoming, incoming);
        if last_will {
            o.set_last_will(LastWill::new(self.status_topic(), offline_payload(&self.gateway), QoS::AtLeastOnce, true));
        }
        if let Some(user) = &m.username {
            let password = match &m.password_file {
                Some(f) => crate::secrets::read_secret_file(f)?,
                None => String::new(),
            };
            o.set_credentials(user.clone(), password);
        }
        if let Some(tls) = &m.tls {
            let config = crate::tls::client_config(tls)?;
            o.set_transport(Transport::tls_with_config(TlsConfiguration::Rustls(config)));
        }
        Ok(o)
    }
}

/// Small MQTT packets (acks, replies) must leave at once: Nagle's algorithm would hold them back
/// for milliseconds, and every held PUBACK stalls the broker's in-flight window.
pub fn no_delay(events: &mut rumqttc::EventLoop) {
    let mut network = events.network_options();
    network.set_tcp_nodelay(true);
    events.set_network_options(network);
}

/// The retained status a gateway leaves behind when it goes away (its last will, and a clean stop).
pub fn offline_payload(gateway: &str) -> String {
    json!({"state": "offline", "gateway": gateway}).to_string()
}
