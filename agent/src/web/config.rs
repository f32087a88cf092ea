//! `[web]`: where the local HTTP server listens and whether its page may act.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use serde::Deserialize;

use crate::units::ConfigIssue;

#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub(crate) struct WebConfig {
    /// Serve anything at all (`/metrics`, `/health` and the page).
    pub(crate) enabled: bool,
    /// Loopback by default. `/metrics`, `/health` and the read-only page have no authentication:
    /// open it to the LAN only where the figures may be seen.
    pub(crate) listen: SocketAddr,
    /// A file holding the token that unlocks the page's buttons (dead-letter retry, test label,
    /// reprint, clear alarms). Without it the page is read-only.
    pub(crate) token_file: Option<PathBuf>,
    /// Serve HTTPS with this PEM certificate chain and `tls_key_file` (both or neither).
    pub(crate) tls_cert_file: Option<PathBuf>,
    pub(crate) tls_key_file: Option<PathBuf>,
    /// Allow the token and the session cookie over plain HTTP on a non-loopback address (anyone
    /// on the network path can read them). Without it, or HTTPS, such a config is refused.
    pub(crate) allow_insecure: bool,
}

impl Default for WebConfig {
    fn default() -> Self {
        Self {
            enabled: true,
            listen: SocketAddr::from(([127, 0, 0, 1], 9464)),
            token_file: None,
            tls_cert_file: None,
            tls_key_file: None,
            allow_insecure: false,
        }
    }
}

/// The section as dockhand 0.x wrote it (`[metrics]`): the same server, before it had a page.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct OldMetricsSection {
    #[serde(default = "yes")]
    pub(crate) enabled: bool,
    #[serde(default = "default_listen")]
    pub(crate) listen: SocketAddr,
}

fn yes() -> bool {
    true
}

fn default_listen() -> SocketAddr {
    WebConfig::default().listen
}

impl WebConfig {
    /// `[web]`, or the older `[metrics]` (same keys, no page settings); both is an error.
    pub(crate) fn from_sections(
        web: Option<WebConfig>,
        metrics: Option<OldMetricsSection>,
    ) -> Result<WebConfig, ConfigIssue> {
        match (web, metrics) {
            (Some(_), Some(_)) => Err(ConfigIssue::new(
                "metrics",
                "[metrics] is the old name of [web]: move its keys into [web] and delete [metrics]",
            )),
            (Some(web), None) => Ok(web),
            (None, Some(old)) => Ok(WebConfig { enabled: old.enabled, listen: old.listen, ..WebConfig::default() }),
            (None, None) => Ok(WebConfig::default()),
        }
    }

    pub(crate) fn resolve(&mut self, base: &Path) {
        for p in [&mut self.token_file, &mut self.tls_cert_file, &mut self.tls_key_file].into_iter().flatten() {
            *p = crate::units::resolve(base, p);
        }
    }

    /// The certificate and key, when the page is served over HTTPS.
    pub(crate) fn tls(&self) -> Option<(&Path, &Path)> {
        Some((self.tls_cert_file.as_deref()?, self.tls_key_file.as_deref()?))
    }

    /// Checks the section, reading the certificate and key (so `check-config` finds a bad one).
    pub(crate) fn validate(&self) -> Result<(), ConfigIssue> {
        if self.tls_cert_file.is_some() != self.tls_key_file.is_some() {
            return Err(ConfigIssue::new("web", "set both tls_cert_file and tls_key_file, or neither"));
        }
        if let Some((cert, key)) = self.tls() {
            crate::tls::server_config(cert, key).map_err(|e| ConfigIssue::new("web.tls_cert_file", e))?;
        }
        if self.token_file.is_some() && !self.listen.ip().is_loopback() && self.tls().is_none() && !self.allow_insecure
        {
            return Err(ConfigIssue::new(
                "web.listen",
                format!(
                    "with token_file set, the page's login would cross the network in clear text on {}: set tls_cert_file and tls_key_file (HTTPS), or listen on 127.0.0.1 (and use an SSH tunnel), or write allow_insecure = true to accept that",
                    self.listen
                ),
            ));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_token_on_a_lan_address_needs_allow_insecure_written_out() {
        let lan = WebConfig {
            listen: "0.0.0.0:9464".parse().unwrap(),
            token_file: Some("web.token".into()),
            ..WebConfig::default()
        };
        let issue = lan.validate().unwrap_err();
        assert!(issue.to_string().contains("allow_insecure"), "{issue}");
        assert_eq!(WebConfig { allow_insecure: true, ..lan.clone() }.validate(), Ok(()));
        assert_eq!(WebConfig { token_file: None, ..lan.clone() }.validate(), Ok(()), "read-only on the LAN is fine");
        assert_eq!(WebConfig { listen: "[::1]:9464".parse().unwrap(), ..lan.clone() }.validate(), Ok(()));
        let half = WebConfig { tls_cert_file: Some("cert.pem".into()), ..lan.clone() };
        assert!(half.validate().unwrap_err().message.contains("both tls_cert_file and tls_key_file"));
        let missing = WebConfig { tls_key_file: Some("key.pem".into()), ..half };
        assert!(missing.validate().unwrap_err().message.contains("cannot read the certificate cert.pem"));
    }

    #[test]
    fn the_old_metrics_section_still_works_but_not_next_to_web() {
        let old = OldMetricsSection { enabled: false, listen: "127.0.0.1:9000".parse().unwrap() };
        let web = WebConfig::from_sections(None, Some(old.clone())).unwrap();
        assert_eq!((web.enabled, web.listen.port(), web.token_file), (false, 9000, None));
        assert!(WebConfig::from_sections(Some(WebConfig::default()), Some(old)).is_err());
    }
}
