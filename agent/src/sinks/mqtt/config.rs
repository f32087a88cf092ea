//! `type = "mqtt"`: the fleet's MQTT broker (EMQX, HiveMQ, VerneMQ, AWS IoT Core, Azure IoT Hub
//! or Event Grid, mosquitto). docs/MQTT_UPLINK.md has the settings each of them needs.

use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::Deserialize;

use super::topic::TopicTemplate;
use crate::event::Kind;
use crate::mqtt::{Endpoint, MqttProtocol};
use crate::sinks::{BatchConfig, RateLimit, RetryConfig};
use crate::tls::TlsFiles;
use crate::units::{ByteSize, ConfigIssue, HumanDuration};

#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct MqttSinkConfig {
    pub(crate) name: String,
    #[serde(rename = "type")]
    pub(crate) kind: String,
    pub(crate) host: String,
    /// Default 8883 with `tls`, 1883 without.
    pub(crate) port: Option<u16>,
    /// Present (even empty, `tls = {}`: the system's CA certificates): connect with TLS.
    pub(crate) tls: Option<TlsFiles>,
    /// TLS ALPN protocol names, e.g. `["x-amzn-mqtt-ca"]` for AWS IoT Core on port 443.
    #[serde(default)]
    pub(crate) alpn: Vec<String>,
    pub(crate) username: Option<String>,
    /// File holding the password (never the password itself in this file).
    pub(crate) password_file: Option<PathBuf>,
    /// Default `dockhand-<gateway id>-<sink name>`: stable, so the broker keeps the session.
    pub(crate) client_id: Option<String>,
    #[serde(default)]
    pub(crate) protocol: MqttProtocol,
    #[serde(default = "default_keep_alive")]
    pub(crate) keep_alive: HumanDuration,
    /// MQTT 5: how long the broker keeps the session while dockhand is away.
    #[serde(default = "default_session_expiry")]
    pub(crate) session_expiry: HumanDuration,
    /// Where each message goes; `{site}`, `{gateway}`, `{kind}`, `{partition}`, `{device}`
    /// are taken from the event (only `{site}` and `{gateway}` with `messages = "batch"`).
    #[serde(default = "default_topic")]
    pub(crate) topic: String,
    /// `"event"` (default): one message per event, the envelope as JSON. `"batch"`: one message
    /// per delivery, a JSON array of envelopes (`batch.max_events` of them at most).
    #[serde(default)]
    pub(crate) messages: MessageShape,
    /// Messages published and not yet PUBACKed at most.
    #[serde(default = "default_max_inflight")]
    pub(crate) max_inflight: u16,
    /// How long to wait for the broker's PUBACKs of one delivery before trying again.
    #[serde(default = "default_ack_timeout")]
    pub(crate) ack_timeout: HumanDuration,
    /// MQTT 5: the broker drops a message nobody took within this long (Message Expiry Interval).
    pub(crate) message_expiry: Option<HumanDuration>,
    /// MQTT 5: `id`, `schema` and `kind` as user properties on each message (default on).
    #[serde(default = "default_true")]
    pub(crate) user_properties: bool,
    /// The largest message the broker takes (AWS IoT Core: 128 KB); a larger one is dead-lettered.
    #[serde(default = "default_max_message_bytes")]
    pub(crate) max_message_bytes: ByteSize,
    /// Mirror the gateway's retained status to this topic on the fleet's broker, with a last
    /// will that says `offline` (`{site}` and `{gateway}` are filled in).
    pub(crate) status_topic: Option<String>,
    /// Only these kinds go to this sink (default: all).
    pub(crate) kinds: Option<Vec<Kind>>,
    #[serde(default)]
    pub(crate) rate_limit: RateLimit,
    #[serde(default)]
    pub(crate) batch: BatchConfig,
    #[serde(default)]
    pub(crate) retry: RetryConfig,
}

/// What one MQTT message carries.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub(crate) enum MessageShape {
    #[default]
    Event,
    Batch,
}

fn default_keep_alive() -> HumanDuration {
    HumanDuration(Duration::from_secs(30))
}

fn default_session_expiry() -> HumanDuration {
    HumanDuration(Duration::from_secs(7 * 86_400))
}

fn default_topic() -> String {
    "dockhand/{site}/{gateway}/{kind}".into()
}

fn default_max_inflight() -> u16 {
    100
}

fn default_ack_timeout() -> HumanDuration {
    HumanDuration(Duration::from_secs(30))
}

fn default_true() -> bool {
    true
}

fn default_max_message_bytes() -> ByteSize {
    ByteSize(256 << 10)
}

impl MqttSinkConfig {
    pub(crate) fn secret_files(&self) -> Vec<&Path> {
        self.password_file.iter().map(PathBuf::as_path).collect()
    }

    pub(crate) fn port(&self) -> u16 {
        self.port.unwrap_or(if self.tls.is_some() { 8883 } else { 1883 })
    }

    pub(crate) fn client_id(&self, gateway: &str) -> String {
        self.client_id.clone().unwrap_or_else(|| format!("dockhand-{gateway}-{}", self.name))
    }

    /// The broker as [`crate::mqtt::connect_to`] takes it.
    pub(crate) fn endpoint(&self) -> Endpoint<'_> {
        Endpoint {
            host: &self.host,
            port: self.port(),
            username: self.username.as_deref(),
            password_file: self.password_file.as_deref(),
            tls: self.tls.as_ref(),
            alpn: &self.alpn,
            keep_alive: self.keep_alive.0,
            protocol: self.protocol,
            session_expiry: self.session_expiry.0,
            // Room for the largest message plus the packet's own bytes (topic, properties).
            max_packet: self.max_message_bytes.as_usize().saturating_add(64 << 10),
            section: format!("sink {}", self.name),
        }
    }

    pub(crate) fn topic_template(&self) -> Result<TopicTemplate, String> {
        TopicTemplate::parse(&self.topic, self.messages == MessageShape::Batch)
    }

    pub(crate) fn resolved(mut self, base: &Path) -> Result<Self, ConfigIssue> {
        if self.host.trim().is_empty() {
            return Err(ConfigIssue::new("host", "must name the broker (a host name or an address)"));
        }
        self.topic_template().map_err(|e| ConfigIssue::new("topic", e))?;
        if let Some(status) = &self.status_topic {
            TopicTemplate::parse(status, true).map_err(|e| ConfigIssue::new("status_topic", e))?;
        }
        if self.max_inflight == 0 {
            return Err(ConfigIssue::new("max_inflight", "must be at least 1"));
        }
        if self.keep_alive.0 < Duration::from_secs(5) {
            return Err(ConfigIssue::new("keep_alive", "must be at least 5s"));
        }
        if self.username.is_none() && self.password_file.is_some() {
            return Err(ConfigIssue::new("password_file", "a password needs `username` too"));
        }
        if self.message_expiry.is_some() && self.protocol != MqttProtocol::V5 {
            return Err(ConfigIssue::new(
                "message_expiry",
                "needs protocol = \"5\" (MQTT 3.1.1 has no message expiry)",
            ));
        }
        if let Some(tls) = &self.tls {
            tls.validate("tls")?;
        }
        if let Some(f) = &mut self.password_file {
            *f = crate::units::resolve(base, f);
        }
        if let Some(tls) = &mut self.tls {
            tls.resolve(base);
        }
        Ok(self)
    }
}
