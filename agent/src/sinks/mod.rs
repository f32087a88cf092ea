//! Sinks: where stored events go. Each sink type has a folder with its config and the code that
//! delivers one batch and classifies the result into an [`Outcome`]; everything else — reading
//! batches, retries and backoff, dead letters, progress — is the shared
//! [`crate::dispatcher::Dispatcher`], so every sink behaves the same way.

pub mod file;
pub mod http;
pub mod odoo;

use std::path::Path;

use serde::Deserialize;

use crate::store::BatchItem;
use crate::units::{ByteSize, HumanDuration};

/// How a sink groups events into deliveries.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct BatchConfig {
    /// The most events in one delivery.
    pub max_events: usize,
    /// The most bytes of event JSON in one delivery (a single larger event still goes alone).
    pub max_bytes: ByteSize,
    /// How long to wait for a batch to fill before sending a partial one.
    pub linger: HumanDuration,
}

impl Default for BatchConfig {
    fn default() -> Self {
        Self {
            max_events: 500,
            max_bytes: ByteSize(1 << 20),
            linger: HumanDuration::parse("100ms").unwrap_or(HumanDuration(std::time::Duration::from_millis(100))),
        }
    }
}

/// How a sink retries: exponential backoff with full jitter between `initial` and `max`.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RetryConfig {
    pub initial: HumanDuration,
    pub max: HumanDuration,
    /// How often a paused sink (bad credentials) tries again on its own.
    pub paused_interval: HumanDuration,
}

impl Default for RetryConfig {
    fn default() -> Self {
        Self {
            initial: HumanDuration(std::time::Duration::from_secs(1)),
            max: HumanDuration(std::time::Duration::from_secs(300)),
            paused_interval: HumanDuration(std::time::Duration::from_secs(300)),
        }
    }
}

/// One `[[sink]]` table, by `type`.
#[derive(Debug, Clone, PartialEq)]
pub enum SinkConfig {
    File(file::FileSinkConfig),
    Http(Box<http::HttpSinkConfig>),
    Odoo(Box<odoo::config::OdooSinkConfig>),
}

const SINK_TYPES: &str = "\"file\", \"http\", \"odoo\"";

impl SinkConfig {
    pub fn name(&self) -> &str {
        match self {
            SinkConfig::File(c) => &c.name,
            SinkConfig::Http(c) => &c.name,
            SinkConfig::Odoo(c) => &c.name,
        }
    }

    /// Only these kinds go to the sink (`None`: all).
    pub fn kinds(&self) -> Option<&[crate::event::Kind]> {
        match self {
            SinkConfig::File(_) => None,
            SinkConfig::Http(c) => c.kinds.as_deref(),
            SinkConfig::Odoo(_) => Some(&odoo::KINDS),
        }
    }

    pub fn rate_limit(&self) -> http::config::RateLimit {
        match self {
            SinkConfig::File(_) => http::config::RateLimit::default(),
            SinkConfig::Http(c) => c.rate_limit.clone(),
            // The Odoo sink paces its own calls (several per batch).
            SinkConfig::Odoo(_) => http::config::RateLimit::default(),
        }
    }

    pub fn batch(&self) -> &BatchConfig {
        match self {
            SinkConfig::File(c) => &c.batch,
            SinkConfig::Http(c) => &c.batch,
            SinkConfig::Odoo(c) => &c.batch,
        }
    }

    pub fn retry(&self) -> &RetryConfig {
        match self {
            SinkConfig::File(c) => &c.retry,
            SinkConfig::Http(c) => &c.retry,
            SinkConfig::Odoo(c) => &c.retry,
        }
    }

    /// Parses one `[[sink]]` table; errors carry the key path inside the table.
    pub(crate) fn from_toml(value: toml::Value, base: &Path) -> Result<SinkConfig, (String, String)> {
        let Some(table) = value.as_table() else {
            return Err((String::new(), "each [[sink]] must be a table".into()));
        };
        let kind = match table.get("type") {
            Some(toml::Value::String(s)) => s.clone(),
            Some(_) => return Err(("type".into(), format!("must be a string, one of {SINK_TYPES}"))),
            None => return Err(("type".into(), format!("this required key is missing: one of {SINK_TYPES}"))),
        };
        let sink = match kind.as_str() {
            "file" => SinkConfig::File(typed::<file::FileSinkConfig>(value)?.resolved(base)),
            "http" => SinkConfig::Http(Box::new(typed::<http::HttpSinkConfig>(value)?.resolved(base)?)),
            "odoo" => SinkConfig::Odoo(Box::new(typed::<odoo::config::OdooSinkConfig>(value)?.resolved(base)?)),
            other => {
                return Err(("type".into(), format!("unknown sink type `{other}`; this dockhand knows {SINK_TYPES}")));
            }
        };
        if !crate::config::is_identifier(sink.name()) {
            return Err((
                "name".into(),
                format!("`{}` is not a usable sink name: use letters, digits, `-`, `_` or `.`", sink.name()),
            ));
        }
        if sink.batch().max_events == 0 {
            return Err(("batch.max_events".into(), "must be at least 1".into()));
        }
        if sink.retry().initial.0.is_zero() || sink.retry().max < sink.retry().initial {
            return Err(("retry".into(), "needs 0 < initial <= max".into()));
        }
        Ok(sink)
    }
}

fn typed<T: serde::de::DeserializeOwned>(value: toml::Value) -> Result<T, (String, String)> {
    serde_path_to_error::deserialize(value).map_err(|e| {
        let path = e.path().to_string();
        let path = if path == "." { String::new() } else { path };
        let message = e.inner().message().trim().to_string();
        let join = |name: &str| if path.is_empty() { name.to_string() } else { format!("{path}.{name}") };
        if let Some(name) = message.strip_prefix("missing field `").and_then(|r| r.strip_suffix('`')) {
            return (join(name), "this required key is missing".into());
        }
        if let Some(rest) = message.strip_prefix("unknown field `") {
            let name = rest.split('`').next().unwrap_or_default();
            let key = if path == name || path.ends_with(&format!(".{name}")) { path.clone() } else { join(name) };
            return (key, message.clone());
        }
        (path, message)
    })
}

/// What became of one delivery attempt.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// The receiver took the batch. `rejected` (index, reason) are refused for good and go to the
    /// dead-letter store; from `retry_from` (an index) on, events must be sent again.
    Accepted { rejected: Vec<(usize, String)>, retry_from: Option<usize> },
    /// Nothing was taken; try the whole batch again later (after `after` if the receiver said so).
    /// `unreachable`: no connection could be made, so the dispatcher probes for the receiver's
    /// return instead of sleeping out the whole backoff.
    Retry { error: String, after: Option<std::time::Duration>, unreachable: bool },
    /// A problem retries cannot fix (credentials, permissions): stop and raise an alarm; nothing
    /// is dead-lettered.
    Pause { error: String },
    /// The batch is too large for the receiver: split it.
    TooLarge { error: String },
}

impl Outcome {
    pub fn delivered() -> Self {
        Outcome::Accepted { rejected: Vec::new(), retry_from: None }
    }
}

/// A configured sink, ready to deliver.
#[derive(Debug)]
pub enum Sink {
    File(file::FileSink),
    Http(Box<http::HttpSink>),
    Odoo(Box<odoo::OdooSink>),
    /// Answers from a script; for the dispatcher's own tests.
    #[cfg(test)]
    Scripted(crate::dispatcher::tests::ScriptedSink),
}

impl Sink {
    pub fn build(config: &SinkConfig, gateway: &str) -> Self {
        match config {
            SinkConfig::File(c) => Sink::File(file::FileSink::new(c.clone())),
            SinkConfig::Http(c) => Sink::Http(Box::new(http::HttpSink::new((**c).clone(), gateway))),
            SinkConfig::Odoo(c) => Sink::Odoo(Box::new(odoo::OdooSink::new((**c).clone(), gateway))),
        }
    }

    /// Whether the destination can be reached now (after it was unreachable).
    pub async fn probe(&self) -> bool {
        match self {
            Sink::File(_) => true,
            Sink::Http(s) => s.probe().await,
            Sink::Odoo(s) => s.probe().await,
            #[cfg(test)]
            Sink::Scripted(_) => true,
        }
    }

    pub async fn deliver(&mut self, batch: &[BatchItem]) -> Outcome {
        match self {
            Sink::File(s) => s.deliver(batch).await,
            Sink::Http(s) => s.deliver(batch).await,
            Sink::Odoo(s) => s.deliver(batch).await,
            #[cfg(test)]
            Sink::Scripted(s) => s.deliver(batch),
        }
    }
}
