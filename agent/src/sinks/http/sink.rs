//! Delivers one batch over HTTP(S) with reqwest + rustls and turns the result into an
//! [`Outcome`], and probes a receiver that was failing. Secrets are read when the sink is built:
//! at start, and on every reload whose secret files changed (the supervisor compares their
//! digests); a sink whose token cannot be read is paused with the reason, not crashed.

use std::sync::Arc;
use std::time::Duration;

use reqwest::header::{AUTHORIZATION, CONTENT_ENCODING, CONTENT_TYPE, HeaderMap, HeaderValue, RETRY_AFTER};
use tracing::warn;

use super::config::{HttpSinkConfig, SignatureOver};
use super::{request, response};
use crate::sinks::{Batch, Outcome};
use crate::timestamp::Timestamp;

/// Most of a response body that is read (to classify it); the rest is ignored.
const MAX_RESPONSE: usize = 256 << 10;

/// A probe slower than this counts as "still down". Shorter than the probe interval, so probes
/// never overlap and one sent just before the receiver recovered does not delay the resume.
const PROBE_TIMEOUT: Duration = Duration::from_millis(900);

#[derive(Debug)]
pub(crate) struct HttpSink {
    config: HttpSinkConfig,
    ready: Result<Ready, String>,
}

#[derive(Debug)]
struct Ready {
    client: reqwest::Client,
    encoder: Arc<Encoder>,
}

/// Turns a batch into the bytes and headers of its POST. Separate from the sink so that the
/// dispatcher can encode the next batch (gzip, signature) while the current one is in flight.
#[derive(Debug)]
pub(crate) struct Encoder {
    gateway: String,
    gzip: bool,
    signature_over: SignatureOver,
    token: Option<String>,
    secret: Option<Vec<u8>>,
    /// The compressor, made on first use and kept between batches (see [`request::gzip_with`]).
    /// A second encode while one runs (a probe) makes its own.
    deflate: std::sync::Mutex<Option<flate2::Compress>>,
}

/// A batch's POST, encoded: everything but the URL.
#[derive(Debug)]
pub(crate) struct Encoded {
    /// The batch's key, so that an encoding is only ever sent for its own batch.
    key: String,
    headers: HeaderMap,
    wire: Vec<u8>,
}

impl Encoded {
    pub(crate) fn key(&self) -> &str {
        &self.key
    }
}

impl Encoder {
    /// Body, key, credentials and signature of `batch`'s POST. `Err` is the outcome to report
    /// instead (a token a header cannot carry pauses the sink).
    pub(crate) fn encode(&self, batch: &Batch) -> Result<Encoded, Outcome> {
        let json = request::body(&self.gateway, &batch.key, &batch.items);
        let mut headers = HeaderMap::new();
        headers.insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
        let mut put = |name: &'static str, value: &str| {
            if let Ok(v) = HeaderValue::from_str(value) {
                headers.insert(name, v);
            }
        };
        put("idempotency-key", &batch.key);
        put("x-dockhand-gateway", &self.gateway);
        if let Some(token) = &self.token {
            match HeaderValue::from_str(&format!("Bearer {token}")) {
                Ok(mut v) => {
                    v.set_sensitive(true);
                    headers.insert(AUTHORIZATION, v);
                }
                Err(_) => {
                    return Err(Outcome::Pause {
                        error: "the token file holds characters a header cannot carry".into(),
                    });
                }
            }
        }
        let wire = if self.gzip {
            let z = match self.deflate.try_lock() {
                Ok(mut state) => request::gzip_with(state.get_or_insert_with(request::deflate_state), &json),
                Err(_) => request::gzip_with(&mut request::deflate_state(), &json),
            };
            let z = z.map_err(|e| Outcome::Retry {
                error: format!("cannot compress the batch: {e}"),
                after: None,
                unreachable: false,
            })?;
            headers.insert(CONTENT_ENCODING, HeaderValue::from_static("gzip"));
            z
        } else {
            json.clone()
        };
        if let Some(secret) = &self.secret {
            let signed = match self.signature_over {
                SignatureOver::Wire => &wire,
                SignatureOver::Decoded => &json,
            };
            if let Ok(v) = HeaderValue::from_str(&request::signature(secret, signed)) {
                headers.insert("x-dockhand-signature", v);
            }
        }
        Ok(Encoded { key: batch.key.clone(), headers, wire })
    }
}

impl HttpSink {
    pub(crate) fn new(config: HttpSinkConfig, gateway: &str) -> Self {
        let ready = Self::prepare(&config, gateway);
        if let Err(e) = &ready {
            warn!(sink = %config.name, error = %e, "The HTTP sink cannot start; it is paused until this is fixed and dockhand is reloaded.");
        }
        Self { config, ready }
    }

    fn prepare(c: &HttpSinkConfig, gateway: &str) -> Result<Ready, String> {
        let read = |p: &Option<std::path::PathBuf>| p.as_deref().map(crate::secrets::read_secret_file).transpose();
        let token = read(&c.token_file)?;
        let secret = read(&c.signing_secret_file)?.map(String::into_bytes);
        let client = crate::sinks::client::build(&c.tls, c.connect_timeout.0, c.request_timeout.0, 4)?;
        let encoder = Encoder {
            gateway: gateway.to_string(),
            gzip: c.gzip,
            signature_over: c.signature_over,
            token,
            secret,
            deflate: std::sync::Mutex::default(),
        };
        Ok(Ready { client, encoder: Arc::new(encoder) })
    }

    /// The encoder of this sink's requests (none while the sink cannot start).
    pub(crate) fn encoder(&self) -> Option<Arc<Encoder>> {
        self.ready.as_ref().ok().map(|r| r.encoder.clone())
    }

    /// The POST for `batch`. `Err` is the outcome to report instead (a reason to pause).
    fn request(&self, ready: &Ready, batch: &Batch) -> Result<reqwest::RequestBuilder, Outcome> {
        Ok(self.post(ready, ready.encoder.encode(batch)?))
    }

    fn post(&self, ready: &Ready, encoded: Encoded) -> reqwest::RequestBuilder {
        ready.client.post(&self.config.url).headers(encoded.headers).body(encoded.wire)
    }

    /// Sends `batch`, using `encoded` when it was encoded ahead for this very batch.
    pub(crate) async fn deliver(&mut self, batch: &Batch, encoded: Option<Encoded>) -> Outcome {
        let ready = match &self.ready {
            Ok(r) => r,
            Err(e) => return Outcome::Pause { error: e.clone() },
        };
        let request = match encoded.filter(|e| e.key == batch.key) {
            Some(e) => self.post(ready, e),
            None => match self.request(ready, batch) {
                Ok(r) => r,
                Err(outcome) => return outcome,
            },
        };
        let mut resp = match request.send().await {
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
        let ids: Vec<uuid::Uuid> = batch.items.iter().map(|b| b.id).collect();
        response::classify(status, retry_after.as_deref(), &body, &ids, Timestamp::now())
    }

    /// Does the receiver take requests again? A real request over the sink's own client and TLS
    /// (never a bare TCP connect): `GET health_url` when configured, else the head event of the
    /// waiting batch alone under the key `<batch key>/probe`. Any 2xx means up; the waiting batch
    /// is then sent again whole, with its own key (the receiver dedups the head event by id).
    pub(crate) async fn probe(&self, batch: &Batch) -> bool {
        let Ok(ready) = &self.ready else { return false };
        let request = match &self.config.health_url {
            Some(url) => ready.client.get(url),
            None => {
                let head = Batch {
                    key: format!("{}/probe", batch.key),
                    items: batch.items[..1.min(batch.items.len())].to_vec(),
                };
                match self.request(ready, &head) {
                    Ok(r) => r,
                    Err(_) => return false,
                }
            }
        };
        let timeout = self.config.request_timeout.0.min(PROBE_TIMEOUT);
        matches!(request.timeout(timeout).send().await, Ok(r) if r.status().is_success())
    }

    /// For `check-config --connect`: can the receiver be reached and does it accept our TLS?
    pub(crate) async fn check(&self) -> Result<String, String> {
        let ready = self.ready.as_ref().map_err(Clone::clone)?;
        let url = self.config.health_url.as_deref().unwrap_or(&self.config.url);
        let request = match &self.config.health_url {
            Some(url) => ready.client.get(url),
            None => ready.client.head(url),
        };
        match request.send().await {
            Ok(r) => Ok(format!("{url} answered HTTP {}", r.status().as_u16())),
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
