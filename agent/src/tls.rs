//! TLS client settings shared by every outgoing connection (MQTT broker, HTTPS receiver): the
//! system's roots or a configured CA file, and an optional client certificate. There is
//! deliberately no way to skip certificate verification. Also the one server configuration
//! dockhand has: the status page over HTTPS ([`server_config`]).

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

/// The rustls server configuration for a PEM certificate chain and its key (the status page over
/// HTTPS): ring, TLS 1.2 and 1.3, HTTP/1.1 offered by ALPN.
pub(crate) fn server_config(
    cert: &std::path::Path,
    key: &std::path::Path,
) -> Result<Arc<rustls::ServerConfig>, String> {
    use rustls::pki_types::pem::PemObject;
    use rustls::pki_types::{CertificateDer, PrivateKeyDer};
    let chain: Vec<CertificateDer<'static>> = CertificateDer::pem_file_iter(cert)
        .and_then(|it| it.collect::<Result<_, _>>())
        .map_err(|e| format!("cannot read the certificate {}: {e}", cert.display()))?;
    if chain.is_empty() {
        return Err(format!("{} holds no PEM certificate", cert.display()));
    }
    let key = PrivateKeyDer::from_pem_file(key).map_err(|e| format!("cannot read the key {}: {e}", key.display()))?;
    let mut config = rustls::ServerConfig::builder_with_provider(Arc::new(rustls::crypto::ring::default_provider()))
        .with_safe_default_protocol_versions()
        .map_err(|e| e.to_string())?
        .with_no_client_auth()
        .with_single_cert(chain, key)
        .map_err(|e| format!("the certificate and key do not fit: {e}"))?;
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(Arc::new(config))
}
