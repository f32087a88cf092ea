//! TLS client settings for every outgoing connection of dockhand's programs — the agent's MQTT
//! broker and HTTPS receivers, and the firmware-bridge's link to the gateway's broker: the
//! system's roots or a CA file, and an optional client certificate. One implementation, so the
//! bridge and the agent accept and refuse the same certificates. There is deliberately no way to
//! skip certificate verification.

use std::path::Path;
use std::sync::Arc;

use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};

/// Which files a TLS client uses (all optional).
#[derive(Debug, Clone, Copy, Default)]
pub struct TlsPaths<'a> {
    /// PEM CA certificate(s) that signed the server's certificate; `None`: the system's roots.
    pub ca_file: Option<&'a Path>,
    /// PEM client certificate and key, for servers that require mutual TLS.
    pub client_cert_file: Option<&'a Path>,
    pub client_key_file: Option<&'a Path>,
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

/// A rustls client configuration for `tls`, with errors that name the file at fault.
pub fn client_config(tls: TlsPaths<'_>) -> Result<Arc<rustls::ClientConfig>, String> {
    install_crypto_provider();
    let mut roots = rustls::RootCertStore::empty();
    match tls.ca_file {
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
    let config = match (tls.client_cert_file, tls.client_key_file) {
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
