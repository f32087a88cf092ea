//! `[mqtt]`: the broker dockhand connects to for handheld traffic, and `[broker]`: the optional
//! broker dockhand runs itself for small sites and demos.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use serde::Deserialize;

use crate::units::{ByteSize, HumanDuration};

#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct MqttConfig {
    pub host: String,
    pub port: u16,
    /// Default `dockhand-<gateway id>`: stable, so the broker keeps this session across restarts.
    pub client_id: Option<String>,
    /// Default `warehouse/<site>`.
    pub topic_prefix: Option<String>,
    pub keep_alive: HumanDuration,
    /// Larger payloads are dead-lettered and answered on `…/rejected`.
    pub max_payload_bytes: ByteSize,
    pub username: Option<String>,
    /// File holding the password (never the password itself in this file).
    pub password_file: Option<PathBuf>,
    /// Present: connect with TLS (certificates verified against `host` as the server name).
    pub tls: Option<crate::tls::TlsFiles>,
    /// How often the retained gateway status is refreshed.
    pub status_interval: HumanDuration,
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
        }
    }
}

impl MqttConfig {
    pub fn client_id(&self, gateway: &str) -> String {
        self.client_id.clone().unwrap_or_else(|| format!("dockhand-{gateway}"))
    }

    pub fn prefix(&self, site: &str) -> String {
        self.topic_prefix.clone().unwrap_or_else(|| format!("warehouse/{site}"))
    }

    pub(crate) fn resolve(&mut self, base: &Path) {
        let fix = |p: &mut Option<PathBuf>| {
            if let Some(path) = p {
                *path = crate::config::resolve(base, path);
            }
        };
        fix(&mut self.password_file);
        if let Some(tls) = &mut self.tls {
            tls.resolve(base);
        }
    }

    pub(crate) fn validate(&self) -> Result<(), (String, String)> {
        if let Some(prefix) = &self.topic_prefix
            && (prefix.is_empty() || prefix.contains(['+', '#']) || prefix.ends_with('/'))
        {
            return Err(("mqtt.topic_prefix".into(), "must be a topic without wildcards or a trailing `/`".into()));
        }
        if self.password_file.is_some() && self.username.is_none() {
            return Err(("mqtt.password_file".into(), "a password needs `username` too".into()));
        }
        if let Some(tls) = &self.tls {
            tls.validate("mqtt.tls")?;
        }
        if self.keep_alive.0.as_secs() < 5 {
            return Err(("mqtt.keep_alive".into(), "must be at least 5s".into()));
        }
        Ok(())
    }
}

/// `[broker]`: an MQTT broker inside dockhand (rumqttd), for small sites and the demo. Sessions
/// live in memory: across a gateway restart, messages the handhelds have not had acknowledged
/// are re-sent by the handhelds, not by this broker. Large sites should run mosquitto.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct BrokerConfig {
    pub listen: SocketAddr,
    /// Unacknowledged QoS 1 messages the broker sends one client before waiting for acks. dockhand
    /// acks only after its commit, so this window bounds ingest throughput.
    pub max_inflight: usize,
    pub max_payload_bytes: ByteSize,
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
