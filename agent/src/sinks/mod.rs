//! Sinks: where stored events go. Each sink type has a folder with its config and the code that
//! delivers one batch and classifies the result into an [`Outcome`]; everything else — reading
//! batches, retries and backoff, dead letters, progress — is the shared
//! [`crate::dispatcher::Dispatcher`], so every sink behaves the same way.

pub(crate) mod client;
pub(crate) mod file;
pub mod http;
pub(crate) mod mqtt;
pub mod odoo;

use std::path::Path;

use serde::Deserialize;

use crate::store::BatchItem;
use crate::units::{ByteSize, ConfigIssue, HumanDuration, SerdeProblem};

/// How a sink groups events into deliveries.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub(crate) struct BatchConfig {
    /// The most events in one delivery.
    pub(crate) max_events: usize,
    /// The most bytes of event JSON in one delivery (a single larger event still goes alone).
    pub(crate) max_bytes: ByteSize,
    /// How long to wait for a batch to fill before sending a partial one.
    pub(crate) linger: HumanDuration,
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

/// Caps that keep a drained backlog from flooding the receiver (none by default); the dispatcher
/// spaces deliveries by them (`rate_limit = { requests_per_second, events_per_second }`).
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RateLimit {
    /// Deliveries (batches) per second at most.
    pub(crate) requests_per_second: Option<f64>,
    /// Events per second at most, counted over the batches sent.
    pub(crate) events_per_second: Option<f64>,
}

/// How a sink retries: exponential backoff with full jitter between `initial` and `max`.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub(crate) struct RetryConfig {
    pub(crate) initial: HumanDuration,
    pub(crate) max: HumanDuration,
    /// How often a paused sink (bad credentials) tries again on its own.
    pub(crate) paused_interval: HumanDuration,
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
pub(crate) enum SinkConfig {
    File(file::FileSinkConfig),
    Http(Box<http::HttpSinkConfig>),
    Odoo(Box<odoo::config::OdooSinkConfig>),
    Mqtt(Box<mqtt::config::MqttSinkConfig>),
}

const SINK_TYPES: &str = "\"file\", \"http\", \"mqtt\", \"odoo\"";

impl SinkConfig {
    pub(crate) fn name(&self) -> &str {
        match self {
            SinkConfig::File(c) => &c.name,
            SinkConfig::Http(c) => &c.name,
            SinkConfig::Odoo(c) => &c.name,
            SinkConfig::Mqtt(c) => &c.name,
        }
    }

    /// The `type` it was written with.
    pub(crate) fn type_name(&self) -> &'static str {
        match self {
            SinkConfig::File(_) => "file",
            SinkConfig::Http(_) => "http",
            SinkConfig::Odoo(_) => "odoo",
            SinkConfig::Mqtt(_) => "mqtt",
        }
    }

    /// Only these kinds go to the sink (`None`: all).
    pub(crate) fn kinds(&self) -> Option<&[crate::event::Kind]> {
        match self {
            SinkConfig::File(_) => None,
            SinkConfig::Http(c) => c.kinds.as_deref(),
            SinkConfig::Odoo(_) => Some(&odoo::KINDS),
            SinkConfig::Mqtt(c) => c.kinds.as_deref(),
        }
    }

    pub(crate) fn rate_limit(&self) -> RateLimit {
        match self {
            SinkConfig::File(_) => RateLimit::default(),
            SinkConfig::Http(c) => c.rate_limit.clone(),
            // The Odoo sink paces its own calls (several per batch).
            SinkConfig::Odoo(_) => RateLimit::default(),
            SinkConfig::Mqtt(c) => c.rate_limit.clone(),
        }
    }

    pub(crate) fn batch(&self) -> &BatchConfig {
        match self {
            SinkConfig::File(c) => &c.batch,
            SinkConfig::Http(c) => &c.batch,
            SinkConfig::Odoo(c) => &c.batch,
            SinkConfig::Mqtt(c) => &c.batch,
        }
    }

    /// Files the sink reads secrets from; a reload restarts the sink when their contents changed.
    pub(crate) fn secret_files(&self) -> Vec<&Path> {
        match self {
            SinkConfig::File(_) => Vec::new(),
            SinkConfig::Http(c) => c.secret_files(),
            SinkConfig::Odoo(c) => vec![c.api_key_file.as_path()],
            SinkConfig::Mqtt(c) => c.secret_files(),
        }
    }

    pub(crate) fn retry(&self) -> &RetryConfig {
        match self {
            SinkConfig::File(c) => &c.retry,
            SinkConfig::Http(c) => &c.retry,
            SinkConfig::Odoo(c) => &c.retry,
            SinkConfig::Mqtt(c) => &c.retry,
        }
    }

    /// Parses one `[[sink]]` table; errors carry the key path inside the table.
    pub(crate) fn from_toml(value: toml::Value, base: &Path) -> Result<SinkConfig, ConfigIssue> {
        let Some(table) = value.as_table() else {
            return Err(ConfigIssue::new(String::new(), "each [[sink]] must be a table"));
        };
        let kind = match table.get("type") {
            Some(toml::Value::String(s)) => s.clone(),
            Some(_) => return Err(ConfigIssue::new("type", format!("must be a string, one of {SINK_TYPES}"))),
            None => return Err(ConfigIssue::new("type", format!("this required key is missing: one of {SINK_TYPES}"))),
        };
        let sink = match kind.as_str() {
            "file" => SinkConfig::File(typed::<file::FileSinkConfig>(value)?.resolved(base)),
            "http" => SinkConfig::Http(Box::new(typed::<http::HttpSinkConfig>(value)?.resolved(base)?)),
            "odoo" => SinkConfig::Odoo(Box::new(typed::<odoo::config::OdooSinkConfig>(value)?.resolved(base)?)),
            "mqtt" => SinkConfig::Mqtt(Box::new(typed::<mqtt::config::MqttSinkConfig>(value)?.resolved(base)?)),
            other => {
                return Err(ConfigIssue::new(
                    "type",
                    format!("unknown sink type `{other}`; this dockhand knows {SINK_TYPES}"),
                ));
            }
        };
        if !crate::units::is_identifier(sink.name()) {
            return Err(ConfigIssue::new(
                "name",
                format!("`{}` is not a usable sink name: use letters, digits, `-`, `_` or `.`", sink.name()),
            ));
        }
        if sink.batch().max_events == 0 {
            return Err(ConfigIssue::new("batch.max_events", "must be at least 1"));
        }
        if sink.retry().initial.0.is_zero() || sink.retry().max < sink.retry().initial {
            return Err(ConfigIssue::new("retry", "needs 0 < initial <= max"));
        }
        Ok(sink)
    }
}

fn typed<T: serde::de::DeserializeOwned>(value: toml::Value) -> Result<T, ConfigIssue> {
    serde_path_to_error::deserialize(value).map_err(|e| {
        let message = e.inner().message().trim().to_string();
        match crate::units::serde_error_key(&e.path().to_string(), &message) {
            (key, SerdeProblem::Missing) => ConfigIssue::new(key, "this required key is missing"),
            (key, _) => ConfigIssue::new(key, message),
        }
    })
}

/// One delivery: the events and the key that names them to the receiver. Formed once by the
/// dispatcher and sent unchanged on every retry (contracts.md §3).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Batch {
    /// `Idempotency-Key` and `batch_id`; see [`crate::dispatcher::batches`] for how it is named.
    pub(crate) key: String,
    pub(crate) items: Vec<BatchItem>,
}

impl Batch {
    /// Bytes of event JSON (what `batch.max_bytes` counts).
    pub(crate) fn bytes(&self) -> usize {
        self.items.iter().map(|i| i.body.len()).sum()
    }
}

/// Encodes batches of one sink ahead of their delivery; cheap to clone, usable off the sink's task.
#[derive(Debug, Clone)]
pub(crate) enum Encoder {
    Http(std::sync::Arc<http::sink::Encoder>),
    /// Nothing to encode ahead: the next batch is only read from the store while this one is in
    /// flight (the MQTT uplink, whose per-message work happens as it publishes).
    ReadOnly,
}

/// A batch encoded by an [`Encoder`].
#[derive(Debug)]
pub(crate) enum Encoded {
    Http(http::sink::Encoded),
}

impl Encoded {
    /// The key of the batch it encodes.
    pub(crate) fn key(&self) -> &str {
        match self {
            Encoded::Http(e) => e.key(),
        }
    }
}

impl Encoder {
    /// `None` when the batch cannot be encoded ahead; the sink then encodes it (and reports why
    /// not) when it is delivered.
    pub(crate) fn encode(&self, batch: &Batch) -> Option<Encoded> {
        match self {
            Encoder::Http(e) => e.encode(batch).ok().map(Encoded::Http),
            Encoder::ReadOnly => None,
        }
    }
}

/// What became of one delivery attempt.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// The receiver took the batch. `rejected` (index, reason) are refused for good and go to the
    /// dead-letter store; from `retry_from` (an index) on, events must be sent again.
    Accepted { rejected: Vec<(usize, String)>, retry_from: Option<usize> },
    /// Nothing was taken; try the whole batch again later (after `after` if the receiver said so).
    /// `unreachable`: no connection could be made (see [`Sink::probes`]).
    Retry { error: String, after: Option<std::time::Duration>, unreachable: bool },
    /// A problem retries cannot fix (credentials, permissions): stop and raise an alarm; nothing
    /// is dead-lettered.
    Pause { error: String },
    /// The batch is too large for the receiver: split it.
    TooLarge { error: String },
}

impl Outcome {
    pub(crate) fn delivered() -> Self {
        Outcome::Accepted { rejected: Vec::new(), retry_from: None }
    }
}

/// A configured sink, ready to deliver.
#[derive(Debug)]
pub(crate) enum Sink {
    File(file::FileSink),
    Http(Box<http::HttpSink>),
    Odoo(Box<odoo::OdooSink>),
    Mqtt(Box<mqtt::MqttSink>),
    /// Answers from a script; for the dispatcher's own tests.
    #[cfg(test)]
    Scripted(crate::dispatcher::tests::ScriptedSink),
}

impl Sink {
    pub(crate) fn build(config: &SinkConfig, gateway: &str, site: &str) -> Self {
        match config {
            SinkConfig::File(c) => Sink::File(file::FileSink::new(c.clone())),
            SinkConfig::Http(c) => Sink::Http(Box::new(http::HttpSink::new((**c).clone(), gateway))),
            SinkConfig::Odoo(c) => Sink::Odoo(Box::new(odoo::OdooSink::new((**c).clone(), gateway))),
            SinkConfig::Mqtt(c) => Sink::Mqtt(Box::new(mqtt::MqttSink::new((**c).clone(), gateway, site))),
        }
    }

    /// Whether the dispatcher should probe while it backs off after a failed attempt
    /// (`unreachable`: no connection could be made). The HTTP sink probes after every kind of
    /// outage; the Odoo sink only when the server could not be reached (a 5xx from Odoo is an
    /// answer about the batch, not about the server).
    pub(crate) fn probes(&self, unreachable: bool) -> bool {
        match self {
            Sink::File(_) => false,
            Sink::Http(_) => true,
            Sink::Odoo(_) => unreachable,
            // Connecting is cheap and says all: probe after every kind of outage.
            Sink::Mqtt(_) => true,
            #[cfg(test)]
            Sink::Scripted(s) => s.probe_answers.is_some(),
        }
    }

    /// Whether the destination takes requests again, for `batch` that is waiting to be resent.
    pub(crate) async fn probe(&mut self, batch: &Batch) -> bool {
        match self {
            Sink::File(_) => true,
            Sink::Http(s) => s.probe(batch).await,
            Sink::Odoo(s) => s.probe().await,
            Sink::Mqtt(s) => s.probe().await,
            #[cfg(test)]
            Sink::Scripted(s) => s.probe(),
        }
    }

    /// Gives a sink that reads the store (the MQTT uplink mirrors the gateway's status from it)
    /// its read connection; the others need none.
    pub(crate) fn attach_store(&mut self, store: &crate::store::Store) -> Result<(), crate::store::StoreError> {
        if let Sink::Mqtt(s) = self
            && s.wants_store()
        {
            s.attach_store(store.reader()?);
        }
        Ok(())
    }

    /// What `check-config --connect` reports for this sink: what it found, or why delivery will
    /// not work. It sends no event. `writable` judges whether the daemon could create or append a
    /// file at a path (the CLI judges it for the service user, without writing anything).
    pub(crate) async fn check(&mut self, writable: &dyn Fn(&Path) -> Result<String, String>) -> Result<String, String> {
        match self {
            Sink::File(s) => {
                let path = s.path();
                writable(path).map(|how| format!("{}: {how}", path.display()))
            }
            Sink::Http(s) => s.check().await,
            Sink::Odoo(s) => s.check().await,
            Sink::Mqtt(s) => s.check().await,
            #[cfg(test)]
            Sink::Scripted(_) => Ok("scripted".into()),
        }
    }

    /// What encodes this sink's batches ahead of their delivery, if that is worth doing (the HTTP
    /// sink's gzip and signature; for the MQTT uplink only the read of the next batch); the
    /// dispatcher runs it on the next batch while one is in flight.
    pub(crate) fn encoder(&self) -> Option<Encoder> {
        match self {
            Sink::Http(s) => s.encoder().map(Encoder::Http),
            Sink::Mqtt(_) => Some(Encoder::ReadOnly),
            _ => None,
        }
    }

    /// Delivers `batch`; `ahead` is its encoding from [`Encoder::encode`], if it was made.
    pub(crate) async fn deliver(&mut self, batch: &Batch, ahead: Option<Encoded>) -> Outcome {
        match self {
            Sink::File(s) => s.deliver(&batch.items).await,
            Sink::Http(s) => s.deliver(batch, ahead.map(|Encoded::Http(e)| e)).await,
            Sink::Odoo(s) => s.deliver(&batch.items).await,
            Sink::Mqtt(s) => s.deliver(batch).await,
            #[cfg(test)]
            Sink::Scripted(s) => s.deliver(batch),
        }
    }
}
