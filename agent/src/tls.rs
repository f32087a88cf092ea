//! TLS client settings shared by every outgoing connection (MQTT broker, HTTPS receiver): the
//! system's roots or a configured CA file, and an optional client certificate. There is
//! deliberately no way to skip certificate verification.

use std::path::PathBuf;
use std::sync::Arc;

use crate::units::ConfigIssue;
use serde::Deserialize;

/// `tls = { ca_file = "...", client_cert_file = "...", client_key_file = "..." }`
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub(crate) struct TlsFiles {
    /// PEM file with the CA certificate(s) that signed the server's certificate; absent: the
    /// system's CA certificates.
    pub(crate) ca_file: Option<PathBuf>,
    /// PEM client certificate and key, for servers that require mutual TLS.
    pub(crate) client_cert_file: Option<PathBuf>,
    pub(crate) client_key_file: Option<PathBuf>,
}

impl TlsFiles {
    pub(crate) fn resolve(&mut self, base: &std::path::Path) {
        for p in [&mut self.ca_file, &mut self.client_cert_file, &mut self.client_key_file].into_iter().flatten() {
            *p = crate::units::resolve(base, p);
        }
    }

    pub(crate) fn validate(&self, key: &str) -> Result<(), ConfigIssue> {
        if self.client_cert_file.is_some() != self.client_key_file.is_some() {
            return Err(ConfigIssue::new(key, "set both client_cert_file and client_key_file, or neither"));
        }
        Ok(())
    }
}

pub(crate) use firmware_bridge::tls::explain;

/// The rustls client configuration for these files ([`firmware_bridge::tls::client_config`]).
pub(crate) fn client_config(tls: &TlsFiles) -> Result<Arc<rustls::ClientConfig>, String> {
    firmware_bridge::tls::client_config(firmware_bridge::tls::TlsPaths {
        ca_file: tls.ca_file.as_deref(),
        client_cert_file: tls.client_cert_file.as_deref(),
        client_key_file: tls.client_key_file.as_deref(),
    })
}
