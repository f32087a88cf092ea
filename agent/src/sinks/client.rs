//! The one HTTP client builder of the sinks: dockhand's TLS settings (CA file or system roots,
//! client certificate), timeouts, no redirects, the user agent. Deliveries, probes and
//! `check-config --connect` all build their client here, so what the check proves is what the
//! sink will do.

use std::time::Duration;

use crate::tls::TlsFiles;

/// A client for one sink.
pub(crate) fn build(
    tls: &Option<TlsFiles>,
    connect_timeout: Duration,
    request_timeout: Duration,
    idle_per_host: usize,
) -> Result<reqwest::Client, String> {
    let tls = crate::tls::client_config(&tls.clone().unwrap_or_default())?;
    reqwest::Client::builder()
        .use_preconfigured_tls((*tls).clone())
        .connect_timeout(connect_timeout)
        .timeout(request_timeout)
        .redirect(reqwest::redirect::Policy::none())
        .pool_max_idle_per_host(idle_per_host)
        .user_agent(concat!("dockhand/", env!("CARGO_PKG_VERSION")))
        .build()
        .map_err(|e| format!("cannot build the HTTP client: {e}"))
}
