//! `[mqtt]`: the broker dockhand connects to for handheld traffic, and `[broker]`: the optional
//! broker dockhand runs itself for small sites and demos.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use serde::Deserialize;

use crate::units::{ByteSize, ConfigIssue, HumanDuration};

#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub(crate) struct MqttConfig {
    pub(crate) host: String,
    pub(crate) port: u16,
    /// Default `dockhand-<gateway id>`: stable, so the broker keeps this session across restarts.
    pub(crate) client_id: Option<String>,
    /// Default `warehouse/<site>`.
    pub(crate) topic_prefix: Option<String>,
    pub(crate) keep_alive: HumanDuration,
    /// Larger payloads are dead-lettered and answered on `…/rejected`.
    pub(crate) max_payload_bytes: ByteSize,
    pub(crate) username: Option<String>,
    /// File holding the password (never the password itself in this file).
    pub(crate) password_file: Option<PathBuf>,
    /// Present: connect with TLS (certificates verified against `host` as the server name).
    pub(crate) tls: Option<crate::tls::TlsFiles>,
    /// How often the retained gateway status is refreshed.
    pub(crate) status_interval: HumanDuration,
    /// Where answers to handhelds go (contracts.md §2): `v2` under `<prefix>/reply/<device>/`,
    /// `v1` (deprecated) under `<prefix>/handheld/<device>/`, inside the subscribed tree.
    pub(crate) replies: ReplyLayout,
    /// QoS of the answers to handhelds: 1 (default) or 0. A lost answer is harmless: the handheld
    /// resends with the same id and is told `duplicate`.
    pub(crate) reply_qos: u8,
    /// `"3.1.1"` (default) or `"5"`.
    pub(crate) protocol: MqttProtocol,
    /// MQTT 5: how long the broker keeps dockhand's session (and its queued messages) while
    /// dockhand is away. MQTT 3.1.1 sessions last until the broker drops them.
    pub(crate) session_expiry: HumanDuration,
}

/// Where dockhand publishes its answers to handhelds.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize)]
#[serde(rename_all = "lowercase")]
pub(crate) enum ReplyLayout {
    /// Deprecated: `<prefix>/handheld/<device>/ack`, which the `handheld/#` subscription echoes
    /// back to dockhand (MQTT 3.1.1 has no "no local").
    V1,
    /// `<prefix>/reply/<device>/ack`, outside the subscription.
    #[default]
    V2,
}

/// The MQTT protocol version dockhand speaks to its broker.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize)]
pub(crate) enum MqttProtocol {
    #[default]
    #[serde(rename = "3.1.1")]
    V311,
    #[serde(rename = "5")]
    V5,
}

impl std::fmt::Display for MqttProtocol {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            MqttProtocol::V311 => "3.1.1",
            MqttProtocol::V5 => "5",
        })
    }
}

impl Default for MqttConfig {
    fn default() -> Self {
        Self {
            host: "127.0.0.1".into(),
            port: 1883,
            client_id: None,
            topic_prefix: None,
            keep_alive: HumanDuration(std::time::Duration::from_secs(30)),
            max_payload_bytes: ByteSize(64 << 10),
            username: None,
            password_file: None,
            tls: None,
            status_interval: HumanDuration(std::time::Duration::from_secs(30)),
            replies: ReplyLayout::V2,
            reply_qos: 1,
            protocol: MqttProtocol::V311,
            session_expiry: HumanDuration(std::time::Duration::from_secs(7 * 86_400)),
        }
    }
}

impl MqttConfig {
    /// The broker as [`super::connect_to`] takes it.
    pub(crate) fn endpoint(&self) -> super::Endpoint<'_> {
        super::Endpoint {
            host: &self.host,
            port: self.port,
            username: self.username.as_deref(),
            password_file: self.password_file.as_deref(),
            tls: self.tls.as_ref(),
            alpn: &[],
            keep_alive: self.keep_alive.0,
            protocol: self.protocol,
            session_expiry: self.session_expiry.0,
            // Oversized payloads must reach us so they can be dead-lettered and answered; rumqttc
            // drops the whole connection on a packet over its limit, so its limit is set higher.
            max_packet: self.max_payload_bytes.as_usize().saturating_mul(4).max(2 << 20),
            section: "mqtt".into(),
        }
    }

    pub(crate) fn client_id(&self, gateway: &str) -> String {
        self.client_id.clone().unwrap_or_else(|| format!("dockhand-{gateway}"))
    }

    pub(crate) fn prefix(&self, site: &str) -> String {
        self.topic_prefix.clone().unwrap_or_else(|| format!("warehouse/{site}"))
    }

    pub(crate) fn resolve(&mut self, base: &Path) {
        let fix = |p: &mut Option<PathBuf>| {
            if let Some(path) = p {
                *path = crate::units::resolve(base, path);
            }
        };
        fix(&mut self.password_file);
        if let Some(tls) = &mut self.tls {
            tls.resolve(base);
        }
    }

    pub(crate) fn validate(&self) -> Result<(), ConfigIssue> {
        if let Some(prefix) = &self.topic_prefix
            && (prefix.is_empty() || prefix.contains(['+', '#']) || prefix.ends_with('/'))
        {
            return Err(ConfigIssue::new("mqtt.topic_prefix", "must be a topic without wildcards or a trailing `/`"));
        }
        if self.password_file.is_some() && self.username.is_none() {
            return Err(ConfigIssue::new("mqtt.password_file", "a password needs `username` too"));
        }
        if let Some(tls) = &self.tls {
            tls.validate("mqtt.tls")?;
        }
        if self.keep_alive.0.as_secs() < 5 {
            return Err(ConfigIssue::new("mqtt.keep_alive", "must be at least 5s"));
        }
        if self.reply_qos > 1 {
            return Err(ConfigIssue::new(
                "mqtt.reply_qos",
                "must be 0 or 1 (an answer is cheap to lose: the handheld resends and is told `duplicate`)",
            ));
        }
        let expiry = self.session_expiry.0.as_secs();
        if expiry < 60 || expiry >= u64::from(u32::MAX) {
            return Err(ConfigIssue::new(
                "mqtt.session_expiry",
                "must be at least 1m (the broker drops a shorter session, and the messages in it, during a restart) and under 136 years",
            ));
        }
        Ok(())
    }
}

/// `[broker]`: an MQTT broker inside dockhand (rumqttd), for small sites and the demo. Sessions
/// live in memory: across a gateway restart, messages the handhelds have not had acknowledged
/// are re-sent by the handhelds, not by this broker. Large sites should run mosquitto.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub(crate) struct BrokerConfig {
    pub(crate) listen: SocketAddr,
    /// Unacknowledged QoS 1 messages the broker sends one client before waiting for acks. dockhand
    /// acks only after its commit, so this window bounds ingest throughput.
    pub(crate) max_inflight: usize,
    pub(crate) max_payload_bytes: ByteSize,
}

impl Default for BrokerConfig {
    fn default() -> Self {
        Self {
            listen: SocketAddr::from(([127, 0, 0, 1], 1883)),
            max_inflight: 100,
            max_payload_bytes: ByteSize(1 << 20),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> Result<MqttConfig, String> {
        let c: MqttConfig = toml::from_str(text).map_err(|e| e.to_string())?;
        c.validate().map_err(|issue| issue.to_string())?;
        Ok(c)
    }

    #[test]
    fn replies_default_to_v2_at_qos_1_on_mqtt_3_1_1() {
        let c = parse("").unwrap();
        assert_eq!((c.replies, c.reply_qos, c.protocol), (ReplyLayout::V2, 1, MqttProtocol::V311));
        let c = parse("replies = \"v1\"\nreply_qos = 0\nprotocol = \"5\"\nsession_expiry = \"1h\"").unwrap();
        assert_eq!((c.replies, c.reply_qos, c.protocol), (ReplyLayout::V1, 0, MqttProtocol::V5));
    }

    #[test]
    fn impossible_reply_and_session_settings_are_refused_with_the_key() {
        assert!(parse("reply_qos = 2").unwrap_err().starts_with("mqtt.reply_qos: must be 0 or 1"));
        assert!(parse("session_expiry = \"10s\"").unwrap_err().starts_with("mqtt.session_expiry"));
        assert!(parse("protocol = \"4\"").unwrap_err().contains("unknown variant"));
        assert!(parse("replies = \"v3\"").unwrap_err().contains("unknown variant"));
    }
}
