//! TLS client settings shared by every outgoing connection (MQTT broker, HTTPS receiver): the
//! system's roots or a configured CA file, and an optional client certificate. There is
//! deliberately no way to skip certificate verification.

use std::path::PathBuf;
use std::sync::Arc;

use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use serde::Deserialize;

/// `tls = { ca_file = "...", client_cert_file = "...", client_key_file = "..." }`
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub struct TlsFiles {
    /// PEM file with the CA certificate(s) that signed the server's certificate; absent: the
    /// system's CA certificates.
    pub ca_file: Option<PathBuf>,
    /// PEM client certificate and key, for servers that require mutual TLS.
    pub client_cert_file: Option<PathBuf>,
    pub client_key_file: Option<PathBuf>,
}

impl TlsFiles {
    pub(crate) fn resolve(&mut self, base: &std::path::Path) {
        for p in [&mut self.ca_file, &mut self.client_cert_file, &mut self.client_key_file].into_iter().flatten() {
            *p = crate::config::resolve(base, p);
        }
    }

    pub(crate) fn validate(&self, key: &str) -> Result<(), (String, String)> {
        if self.client_cert_file.is_some() != self.client_key_file.is_some() {
            return Err((key.into(), "set both client_cert_file and client_key_file, or neither".into()));
        }
        Ok(())
    }
}

/// A rustls error, with what to check for the common cases.
pub fn explain(error_text: &str) -> Option<&'static str> {
    if error_text.contains("UnknownIssuer") || error_text.contains("invalid peer certificate") {
        Some("the server's certificate is not signed by a CA dockhand trusts: set tls.ca_file to the CA that signed it")
    } else if error_text.contains("NotValidForName") {
        Some("the server's certificate does not name the host dockhand connects to")
    } else if error_text.contains("Expired") {
        Some("the server's certificate has expired")
    } else {
        None
    }
}

/// Installs ring as the process-wide rustls provider (once; later calls are no-ops).
pub fn install_crypto_provider() {
    let _ = rustls::crypto::ring::default_provider().install_default();
}

pub fn client_config(tls: &TlsFiles) -> Result<Arc<rustls::ClientConfig>, String> {
    install_crypto_provider();
    let mut roots = rustls::RootCertStore::empty();
    match &tls.ca_file {
        Some(path) => {
            let certs = CertificateDer::pem_file_iter(path)
                .map_err(|e| format!("cannot read the CA file {}: {e}", path.display()))?;
            for cert in certs {
                let cert = cert.map_err(|e| format!("bad certificate in {}: {e}", path.display()))?;
                roots.add(cert).map_err(|e| format!("unusable CA certificate in {}: {e}", path.display()))?;
            }
            if roots.is_empty() {
                return Err(format!("the CA file {} holds no certificate", path.display()));
            }
        }
        None => {
            let found = rustls_native_certs::load_native_certs();
            for cert in found.certs {
                let _ = roots.add(cert);
            }
            if roots.is_empty() {
                return Err("no system CA certificates found (install ca-certificates or set tls.ca_file)".into());
            }
        }
    }
    let builder = rustls::ClientConfig::builder().with_root_certificates(roots);
    let config = match (&tls.client_cert_file, &tls.client_key_file) {
        (Some(cert), Some(key)) => {
            let chain: Vec<CertificateDer<'static>> = CertificateDer::pem_file_iter(cert)
                .and_then(|it| it.collect::<Result<_, _>>())
                .map_err(|e| format!("cannot read the client certificate {}: {e}", cert.display()))?;
            let key = PrivateKeyDer::from_pem_file(key)
                .map_err(|e| format!("cannot read the client key {}: {e}", key.display()))?;
            builder
                .with_client_auth_cert(chain, key)
                .map_err(|e| format!("the client certificate and key do not fit: {e}"))?
        }
        _ => builder.with_no_client_auth(),
    };
    Ok(Arc::new(config))
}
