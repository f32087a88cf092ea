//! `type = "odoo"`: stock events applied straight to an Odoo database (16, 17, 18, 19).

use std::path::{Path, PathBuf};

use serde::Deserialize;

use crate::sinks::{BatchConfig, RetryConfig};
use crate::tls::TlsFiles;
use crate::units::{ConfigIssue, HumanDuration};

/// Which external API to speak.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub(crate) enum OdooProtocol {
    /// Ask the server its version: JSON-2 on 19 and later, JSON-RPC before.
    #[default]
    Auto,
    /// `POST /json/2/<model>/<method>` with a bearer API key (Odoo 19+).
    Json2,
    /// `POST /jsonrpc` `execute_kw` (Odoo 16-18; deprecated in 19).
    Jsonrpc,
}

/// What to do with the rest of a picking validated with less than its demand.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub(crate) enum BackorderPolicy {
    /// Create a backorder for what was not picked (Odoo's default answer).
    #[default]
    Create,
    /// Close the picking without a backorder.
    None,
}

/// What to do with a count that reaches Odoo after stock moved at its quant (docs/ODOO.md,
/// "Stale counts").
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Default)]
#[serde(rename_all = "kebab-case")]
pub(crate) enum StaleCounts {
    /// Apply the counted quantity plus the net done moves at that product/location/lot since the
    /// count was taken (what the shelf holds now, if the count was right).
    #[default]
    Adjust,
    /// Apply the counted quantity as it is (Odoo's own behaviour).
    Apply,
    /// Refuse the count, listing the moves, for a person to decide.
    DeadLetter,
}

#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct OdooSinkConfig {
    pub(crate) name: String,
    #[serde(rename = "type")]
    pub(crate) kind: String,
    /// The Odoo server, e.g. `https://erp.example.com`.
    pub(crate) url: String,
    /// The database name.
    pub(crate) database: String,
    /// The user the API key belongs to (JSON-RPC authenticates with it).
    pub(crate) login: String,
    /// File holding the API key (never the key itself in this file).
    pub(crate) api_key_file: PathBuf,
    #[serde(default)]
    pub(crate) protocol: OdooProtocol,
    pub(crate) tls: Option<TlsFiles>,
    #[serde(default = "defaults::connect_timeout")]
    pub(crate) connect_timeout: HumanDuration,
    #[serde(default = "defaults::request_timeout")]
    pub(crate) request_timeout: HumanDuration,
    /// A pick or receipt without its own `backorder` field follows this.
    #[serde(default)]
    pub(crate) backorder: BackorderPolicy,
    /// Counts applied after stock moved at their quant: `adjust` (default), `apply`, `dead-letter`.
    #[serde(default)]
    pub(crate) stale_counts: StaleCounts,
    /// The most Odoo calls per second, so that draining a backlog never overloads the server.
    #[serde(default = "defaults::calls_per_second")]
    pub(crate) calls_per_second: f64,
    /// How long product, location and lot look-ups are reused.
    #[serde(default = "defaults::cache_ttl")]
    pub(crate) cache_ttl: HumanDuration,
    #[serde(default = "defaults::batch")]
    pub(crate) batch: BatchConfig,
    #[serde(default)]
    pub(crate) retry: RetryConfig,
}

mod defaults {
    use crate::sinks::BatchConfig;
    use crate::units::HumanDuration;
    use std::time::Duration;

    pub(crate) fn connect_timeout() -> HumanDuration {
        HumanDuration(Duration::from_secs(5))
    }
    pub(crate) fn request_timeout() -> HumanDuration {
        HumanDuration(Duration::from_secs(60))
    }
    pub(crate) fn calls_per_second() -> f64 {
        10.0
    }
    pub(crate) fn cache_ttl() -> HumanDuration {
        HumanDuration(Duration::from_secs(300))
    }
    pub(crate) fn batch() -> BatchConfig {
        // Counts are applied a batch at a time (two Odoo calls per batch); larger batches mean
        // longer transactions on the Odoo side.
        BatchConfig { max_events: 200, ..BatchConfig::default() }
    }
}

impl OdooSinkConfig {
    pub(crate) fn resolved(mut self, base: &Path) -> Result<Self, ConfigIssue> {
        let lower = self.url.to_ascii_lowercase();
        if !(lower.starts_with("https://") || lower.starts_with("http://")) || reqwest::Url::parse(&self.url).is_err() {
            return Err(ConfigIssue::new("url", format!("`{}` is not an http:// or https:// URL", self.url)));
        }
        self.api_key_file = crate::units::resolve(base, &self.api_key_file);
        if let Some(tls) = &mut self.tls {
            tls.resolve(base);
            tls.validate("tls")?;
        }
        if !(self.calls_per_second > 0.0 && self.calls_per_second.is_finite()) {
            return Err(ConfigIssue::new("calls_per_second", "must be a positive number"));
        }
        if self.database.trim().is_empty() {
            return Err(ConfigIssue::new("database", "must name the Odoo database"));
        }
        Ok(self)
    }
}
