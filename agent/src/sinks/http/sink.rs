//! Delivers one batch over HTTP(S) with reqwest + rustls and turns the result into an
//! [`Outcome`]. Secrets are read when the sink is built (at start and on reload); a sink whose
//! token cannot be read is paused with the reason, not crashed.

use std::time::Duration;

use reqwest::header::{AUTHORIZATION, CONTENT_ENCODING, CONTENT_TYPE, HeaderMap, HeaderValue, RETRY_AFTER};
use tracing::warn;

use super::config::HttpSinkConfig;
use super::{request, response};
use crate::sinks::Outcome;
use crate::store::BatchItem;
use crate::timestamp::Timestamp;

/// Most of a response body that is read (to classify it); the rest is ignored.
const MAX_RESPONSE: usize = 256 << 10;

#[derive(Debug)]
pub struct HttpSink {
    config: HttpSinkConfig,
    gateway: String,
    ready: Result<Ready, String>,
}

#[derive(Debug)]
struct Ready {
    client: reqwest::Client,
    token: Option<String>,
    secret: Option<Vec<u8>>,
}

impl HttpSink {
    pub fn new(config: HttpSinkConfig, gateway: &str) -> Self {
        let ready = Self::prepare(&config);
        if let Err(e) = &ready {
            warn!(sink = %config.name, error = %e, "The HTTP sink cannot start; it is paused until this is fixed and dockhand is reloaded.");
        }
        Self { config, gateway: gateway.to_string(), ready }
    }

    fn prepare(c: &HttpSinkConfig) -> Result<Ready, String> {
        let read = |p: &Option<std::path::PathBuf>| p.as_deref().map(crate::secrets::read_secret_file).transpose();
        let token = read(&c.token_file)?;
        let secret = read(&c.signing_secret_file)?.map(String::into_bytes);
        let tls = crate::tls::client_config(&c.tls.clone().unwrap_or_default())?;
        let client = reqwest::Client::builder()
            .use_preconfigured_tls((*tls).clone())
            .connect_timeout(c.connect_timeout.0)
            .timeout(c.request_timeout.0)
            .redirect(reqwest::redirect::Policy::none())
            .pool_max_idle_per_host(4)
            .user_agent(concat!("dockhand/", env!("CARGO_PKG_VERSION")))
            .build()
            .map_err(|e| format!("cannot build the HTTP client: {e}"))?;
        Ok(Ready { client, token, secret })
    }

    pub async fn deliver(&mut self, batch: &[BatchItem]) -> Outcome {
        let ready = match &self.ready {
            Ok(r) => r,
            Err(e) => return Outcome::Pause { error: e.clone() },
        };
        let batch_id = request::batch_id(&self.gateway, &self.config.name, batch);
        let json = request::body(&self.gateway, &batch_id, batch);
        let mut headers = HeaderMap::new();
        headers.insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
        let mut put = |name: &'static str, value: &str| {
            if let Ok(v) = HeaderValue::from_str(value) {
                headers.insert(name, v);
            }
        };
        put("idempotency-key", &batch_id);
        put("x-dockhand-gateway", &self.gateway);
        if let Some(secret) = &ready.secret {
            put("x-dockhand-signature", &request::signature(secret, &json));
        }
        if let Some(token) = &ready.token {
            match HeaderValue::from_str(&format!("Bearer {token}")) {
                Ok(mut v) => {
                    v.set_sensitive(true);
                    headers.insert(AUTHORIZATION, v);
                }
                Err(_) => {
                    return Outcome::Pause { error: "the token file holds characters a header cannot carry".into() };
                }
            }
        }
        let body = if self.config.gzip {
            match request::gzip(&json) {
                Ok(z) => {
                    headers.insert(CONTENT_ENCODING, HeaderValue::from_static("gzip"));
                    z
                }
                Err(e) => {
                    return Outcome::Retry {
                        error: format!("cannot compress the batch: {e}"),
                        after: None,
                        unreachable: false,
                    };
                }
            }
        } else {
            json
        };
        let sent = ready.client.post(&self.config.url).headers(headers).body(body).send().await;
        let mut resp = match sent {
            Ok(r) => r,
            Err(e) => return transport_error(&e),
        };
        let status = resp.status().as_u16();
        let retry_after = resp.headers().get(RETRY_AFTER).and_then(|v| v.to_str().ok()).map(str::to_string);
        let mut body = Vec::new();
        loop {
            match resp.chunk().await {
                Ok(Some(chunk)) if body.len() < MAX_RESPONSE => {
                    body.extend_from_slice(&chunk[..chunk.len().min(MAX_RESPONSE - body.len())])
                }
                Ok(Some(_)) => {}
                Ok(None) => break,
                // The status arrived; a body cut short only loses detail for a success, but a
                // dropped connection before the answer was complete is ambiguous: retry.
                Err(e) if (200..300).contains(&status) => {
                    warn!(sink = %self.config.name, error = %e, "The receiver's answer was cut short after a success status.");
                    break;
                }
                Err(e) => return transport_error(&e),
            }
        }
        let ids: Vec<uuid::Uuid> = batch.iter().map(|b| b.id).collect();
        response::classify(status, retry_after.as_deref(), &body, &ids, Timestamp::now())
    }

    /// Can a connection be opened right now? Used while backing off after the receiver was
    /// unreachable, so delivery resumes within a second of it coming back.
    pub async fn probe(&self) -> bool {
        let Ok(url) = reqwest::Url::parse(&self.config.url) else { return false };
        let (Some(host), Some(port)) = (url.host_str(), url.port_or_known_default()) else { return false };
        let host = host.trim_start_matches('[').trim_end_matches(']').to_string();
        matches!(
            tokio::time::timeout(Duration::from_secs(1), tokio::net::TcpStream::connect((host.as_str(), port))).await,
            Ok(Ok(_))
        )
    }

    /// For `check-config --connect`: can the receiver be reached and does it accept our TLS?
    pub async fn check(&self) -> Result<String, String> {
        let ready = self.ready.as_ref().map_err(Clone::clone)?;
        match ready.client.head(&self.config.url).send().await {
            Ok(r) => Ok(format!("{} answered HTTP {}", self.config.url, r.status().as_u16())),
            Err(e) => Err(describe(&e)),
        }
    }
}

fn describe(e: &reqwest::Error) -> String {
    let mut text = e.to_string();
    let mut source = std::error::Error::source(e);
    while let Some(s) = source {
        text.push_str(": ");
        text.push_str(&s.to_string());
        source = s.source();
    }
    match crate::tls::explain(&text) {
        Some(hint) => format!("{text} — {hint}"),
        None => text,
    }
}

/// A request that got no HTTP answer. An untrusted certificate will not fix itself: pause.
fn transport_error(e: &reqwest::Error) -> Outcome {
    let error = describe(e);
    if crate::tls::explain(&error).is_some() {
        return Outcome::Pause { error: format!("TLS: {error}") };
    }
    Outcome::Retry { unreachable: e.is_connect(), error, after: None }
}
