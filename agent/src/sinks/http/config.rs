//! `type = "http"`: the cloud integration layer (contracts.md §3).

use std::path::{Path, PathBuf};

use serde::Deserialize;

use crate::event::Kind;
use crate::sinks::{BatchConfig, RateLimit, RetryConfig};
use crate::tls::TlsFiles;
use crate::units::{ConfigIssue, HumanDuration};

#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct HttpSinkConfig {
    pub(crate) name: String,
    #[serde(rename = "type")]
    pub(crate) kind: String,
    /// `https://…` (or `http://…` on a trusted local network).
    pub(crate) url: String,
    /// File holding the bearer token (never the token itself in this file).
    pub(crate) token_file: Option<PathBuf>,
    /// File holding the HMAC-SHA256 key for `X-Dockhand-Signature`.
    pub(crate) signing_secret_file: Option<PathBuf>,
    /// Which bytes the signature covers: the body as sent (default) or the JSON before gzip.
    #[serde(default)]
    pub(crate) signature_over: SignatureOver,
    /// Optional `GET` URL that answers 2xx when the receiver is up; probed while backing off.
    /// Without it the probe is the head event of the waiting batch alone.
    pub(crate) health_url: Option<String>,
    /// Compress request bodies (`Content-Encoding: gzip`).
    #[serde(default)]
    pub(crate) gzip: bool,
    pub(crate) tls: Option<TlsFiles>,
    #[serde(default = "default_connect_timeout")]
    pub(crate) connect_timeout: HumanDuration,
    #[serde(default = "default_request_timeout")]
    pub(crate) request_timeout: HumanDuration,
    /// Only these kinds go to this sink (default: all).
    pub(crate) kinds: Option<Vec<Kind>>,
    #[serde(default)]
    pub(crate) rate_limit: RateLimit,
    #[serde(default)]
    pub(crate) batch: BatchConfig,
    #[serde(default)]
    pub(crate) retry: RetryConfig,
}

/// What `X-Dockhand-Signature` is computed over (contracts.md §3).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub(crate) enum SignatureOver {
    /// The bytes on the wire, after gzip: what GitHub, Stripe and Shopify verify.
    #[default]
    Wire,
    /// The JSON before compression, for receivers that verify after their framework decoded it.
    Decoded,
}

fn default_connect_timeout() -> HumanDuration {
    HumanDuration(std::time::Duration::from_secs(5))
}

fn default_request_timeout() -> HumanDuration {
    HumanDuration(std::time::Duration::from_secs(30))
}

impl HttpSinkConfig {
    /// The files whose contents the sink holds in memory (re-read on every reload).
    pub(crate) fn secret_files(&self) -> Vec<&Path> {
        [&self.token_file, &self.signing_secret_file].into_iter().flatten().map(PathBuf::as_path).collect()
    }

    pub(crate) fn resolved(mut self, base: &Path) -> Result<Self, ConfigIssue> {
        let lower = self.url.to_ascii_lowercase();
        if !(lower.starts_with("https://") || lower.starts_with("http://")) || reqwest::Url::parse(&self.url).is_err() {
            return Err(ConfigIssue::new("url", format!("`{}` is not an http:// or https:// URL", self.url)));
        }
        if let Some(h) = &self.health_url {
            let lower = h.to_ascii_lowercase();
            if !(lower.starts_with("https://") || lower.starts_with("http://")) || reqwest::Url::parse(h).is_err() {
                return Err(ConfigIssue::new("health_url", format!("`{h}` is not an http:// or https:// URL")));
            }
        }
        for p in [&mut self.token_file, &mut self.signing_secret_file].into_iter().flatten() {
            *p = crate::units::resolve(base, p);
        }
        if let Some(tls) = &mut self.tls {
            tls.resolve(base);
            tls.validate("tls")?;
        }
        for (key, v) in [
            ("rate_limit.requests_per_second", self.rate_limit.requests_per_second),
            ("rate_limit.events_per_second", self.rate_limit.events_per_second),
        ] {
            if v.is_some_and(|v| !(v > 0.0 && v.is_finite())) {
                return Err(ConfigIssue::new(key, "must be a positive number"));
            }
        }
        if self.kinds.as_ref().is_some_and(Vec::is_empty) {
            return Err(ConfigIssue::new("kinds", "list at least one kind, or leave it out for all"));
        }
        Ok(self)
    }
}
