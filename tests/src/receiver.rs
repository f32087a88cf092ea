//! A faithful stand-in for the cloud integration layer (contracts.md §3): an HTTP(S) receiver that
//! dedups nothing itself but records every event id it accepted, in order, and can be switched at
//! run time to each failure the sink must survive: refusing connections, resetting them, 503 with
//! Retry-After, 429, 500, answering slower than the client's timeout, dropping the connection after
//! reading the body, rejecting chosen ids, 401, and 413 above a batch size.
//!
//! It is as strict as the receivers dockhand meets in the field, written from their documented
//! behaviour rather than from dockhand's: the signature is verified the way GitHub, Stripe and
//! Shopify webhook receivers do — HMAC-SHA256 over the raw request body exactly as it arrived
//! (the gzip bytes when compressed), compared in constant time — and a wrong one is answered
//! `401 {"error":"bad signature"}` with nothing taken; the bearer token must be one of the tokens
//! it currently accepts; and it counts TLS handshakes that fail (a client that opens a connection
//! and closes it without TLS shows up there, as in a real load balancer's logs).

// Test support: a broken test set-up should fail loudly where it breaks.
#![allow(clippy::unwrap_used)]

use std::collections::HashSet;
use std::io::Read;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper::{Request, Response};
use hyper_util::rt::TokioIo;

/// How the receiver answers right now.
#[derive(Debug, Clone, PartialEq)]
pub enum Mode {
    Accept,
    /// Answer this status with this body (and `Retry-After` when given).
    Status {
        status: u16,
        retry_after: Option<String>,
        body: String,
    },
    /// Take this long before answering (then accept).
    Slow(Duration),
    /// Read the whole body, then close the connection without an answer.
    DropAfterBody,
    /// Accept the batch but reject these ids (with `retry` as given).
    RejectIds {
        ids: HashSet<String>,
        reason: String,
        retry: bool,
    },
    /// 413 for batches of more than this many events.
    TooLargeAbove(usize),
    /// Accept the TCP connection, then reset it at once (RST), before any TLS.
    Reset,
}

/// Which bytes the receiver's HMAC covers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SignedOver {
    /// The body exactly as received (the webhook convention).
    Wire,
    /// The JSON after removing `Content-Encoding: gzip`.
    Decoded,
}

/// One request as received.
#[derive(Debug, Clone)]
pub struct Delivery {
    pub at: Instant,
    pub status: u16,
    /// The ids of every event in the request, whatever the answer.
    pub ids: Vec<String>,
    /// The events the receiver took (none unless the answer was 2xx).
    pub events: Vec<serde_json::Value>,
    pub idempotency_key: Option<String>,
    /// Whether the signature verified (`None` when the receiver does not check signatures).
    pub signature_ok: Option<bool>,
    pub gzip: bool,
    /// The bearer token the request carried.
    pub token: Option<String>,
}

#[derive(Debug)]
struct State {
    mode: Mode,
    /// Bearer tokens accepted now (empty: no check).
    tokens: Vec<String>,
    secret: Option<(Vec<u8>, SignedOver)>,
    deliveries: Vec<Delivery>,
    /// `false` for benchmarks: count requests and accepted events instead of keeping them.
    keep: bool,
    requests: u64,
    accepted: u64,
    handshake_failures: u64,
}

#[derive(Debug)]
pub struct Receiver {
    pub addr: SocketAddr,
    tls: Option<Arc<rustls::ServerConfig>>,
    state: Arc<Mutex<State>>,
    server: Option<tokio::task::JoinHandle<()>>,
}

impl Receiver {
    /// Starts on a free port. With `tls` (server certificate and key PEM files), speaks HTTPS.
    pub async fn start(tls: Option<(&std::path::Path, &std::path::Path)>) -> Receiver {
        let tls = tls.map(|(cert, key)| crate::tls_server_config(cert, key));
        let state = Arc::new(Mutex::new(State {
            mode: Mode::Accept,
            tokens: Vec::new(),
            secret: None,
            deliveries: Vec::new(),
            keep: true,
            requests: 0,
            accepted: 0,
            handshake_failures: 0,
        }));
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let mut r = Receiver { addr, tls, state, server: None };
        r.serve(listener);
        r
    }

    pub fn url(&self) -> String {
        let scheme = if self.tls.is_some() { "https" } else { "http" };
        format!("{scheme}://{}/ingest", self.addr)
    }

    fn serve(&mut self, listener: tokio::net::TcpListener) {
        let state = self.state.clone();
        let tls = self.tls.clone().map(tokio_rustls::TlsAcceptor::from);
        self.server = Some(tokio::spawn(async move {
            loop {
                let Ok((tcp, _)) = listener.accept().await else { continue };
                if state.lock().unwrap().mode == Mode::Reset {
                    // SO_LINGER 0: closing sends RST instead of FIN.
                    let _ = tcp.set_zero_linger();
                    drop(tcp);
                    continue;
                }
                let state = state.clone();
                let tls = tls.clone();
                tokio::spawn(async move {
                    let handshakes = state.clone();
                    let service = hyper::service::service_fn(move |req| handle(state.clone(), req));
                    let builder = hyper::server::conn::http1::Builder::new();
                    match tls {
                        Some(acceptor) => match acceptor.accept(tcp).await {
                            Ok(stream) => {
                                let _ = builder.serve_connection(TokioIo::new(stream), service).await;
                            }
                            // A client that refuses our certificate, or one that connects and
                            // closes without TLS: what a real server logs as a failed handshake.
                            Err(_) => handshakes.lock().unwrap().handshake_failures += 1,
                        },
                        None => {
                            let _ = builder.serve_connection(TokioIo::new(tcp), service).await;
                        }
                    }
                });
            }
        }));
    }

    /// Stops listening: connections are refused until [`Receiver::come_back`].
    pub fn go_down(&mut self) {
        if let Some(s) = self.server.take() {
            s.abort();
        }
    }

    /// Listens again on the same port.
    pub async fn come_back(&mut self) {
        let deadline = Instant::now() + Duration::from_secs(5);
        let listener = loop {
            match tokio::net::TcpListener::bind(self.addr).await {
                Ok(l) => break l,
                Err(e) if Instant::now() < deadline => {
                    let _ = e;
                    tokio::time::sleep(Duration::from_millis(20)).await;
                }
                Err(e) => panic!("cannot listen on {} again: {e}", self.addr),
            }
        };
        self.serve(listener);
    }

    pub fn set_mode(&self, mode: Mode) {
        self.state.lock().unwrap().mode = mode;
    }

    /// Requests must carry `Authorization: Bearer <token>` (else 401).
    pub fn require_token(&self, token: &str) {
        self.accept_tokens(&[token]);
    }

    /// Any of these tokens is accepted (a rotation's grace period); others get 401.
    pub fn accept_tokens(&self, tokens: &[&str]) {
        self.state.lock().unwrap().tokens = tokens.iter().map(|t| t.to_string()).collect();
    }

    /// Verify `X-Dockhand-Signature` with this key over the wire bytes; a bad signature is 401.
    pub fn verify_with(&self, secret: &[u8]) {
        self.verify_over(secret, SignedOver::Wire);
    }

    /// Verify `X-Dockhand-Signature` with this key over the chosen bytes.
    pub fn verify_over(&self, secret: &[u8], over: SignedOver) {
        self.state.lock().unwrap().secret = Some((secret.to_vec(), over));
    }

    /// Count requests and accepted events only (a long benchmark would not fit in memory).
    pub fn count_only(&self) {
        self.state.lock().unwrap().keep = false;
    }

    /// (requests, events accepted with 2xx) since the start or the last [`Receiver::reset_counts`].
    pub fn counts(&self) -> (u64, u64) {
        let s = self.state.lock().unwrap();
        (s.requests, s.accepted)
    }

    pub fn reset_counts(&self) {
        let mut s = self.state.lock().unwrap();
        (s.requests, s.accepted) = (0, 0);
    }

    /// TLS handshakes that failed since the start.
    pub fn handshake_failures(&self) -> u64 {
        self.state.lock().unwrap().handshake_failures
    }

    pub fn deliveries(&self) -> Vec<Delivery> {
        self.state.lock().unwrap().deliveries.clone()
    }

    /// Ids of events in accepted (2xx) deliveries, in arrival order, repeats included, minus the
    /// ones the receiver rejected.
    pub fn accepted_events(&self) -> Vec<serde_json::Value> {
        let state = self.state.lock().unwrap();
        state.deliveries.iter().filter(|d| (200..300).contains(&d.status)).flat_map(|d| d.events.clone()).collect()
    }
}

impl Drop for Receiver {
    fn drop(&mut self) {
        self.go_down();
    }
}

fn from_hex(hex: &str) -> Option<Vec<u8>> {
    if !hex.len().is_multiple_of(2) {
        return None;
    }
    (0..hex.len()).step_by(2).map(|i| u8::from_str_radix(hex.get(i..i + 2)?, 16).ok()).collect()
}

fn answer(status: u16, body: String, retry_after: Option<String>) -> Response<Full<Bytes>> {
    let mut r = Response::builder().status(status).header("content-type", "application/json");
    if let Some(ra) = retry_after {
        r = r.header("retry-after", ra);
    }
    r.body(Full::new(Bytes::from(body))).unwrap()
}

async fn handle(state: Arc<Mutex<State>>, req: Request<Incoming>) -> Result<Response<Full<Bytes>>, std::io::Error> {
    let header = |name: &str| req.headers().get(name).and_then(|v| v.to_str().ok()).map(str::to_string);
    let auth = header("authorization");
    let key = header("idempotency-key");
    let signature = header("x-dockhand-signature");
    let gzip = header("content-encoding").as_deref() == Some("gzip");
    let raw = req.into_body().collect().await.map_err(std::io::Error::other)?.to_bytes();
    let body = if gzip {
        let mut out = Vec::new();
        flate2::read::GzDecoder::new(&raw[..]).read_to_end(&mut out)?;
        out
    } else {
        raw.to_vec()
    };
    let parsed: serde_json::Value = serde_json::from_slice(&body).unwrap_or(serde_json::Value::Null);
    let events: Vec<serde_json::Value> = parsed["events"].as_array().cloned().unwrap_or_default();
    let ids: Vec<String> = events.iter().filter_map(|e| e["id"].as_str().map(str::to_string)).collect();
    let (mode, tokens, secret) = {
        let s = state.lock().unwrap();
        (s.mode.clone(), s.tokens.clone(), s.secret.clone())
    };
    let signature_ok = secret.map(|(secret, over)| {
        let signed = match over {
            SignedOver::Wire => &raw[..],
            SignedOver::Decoded => &body[..],
        };
        let Some(mac) = signature.as_deref().and_then(|s| s.strip_prefix("sha256=")).and_then(from_hex) else {
            return false;
        };
        let key = ring::hmac::Key::new(ring::hmac::HMAC_SHA256, &secret);
        ring::hmac::verify(&key, signed, &mac).is_ok()
    });
    let token = auth.as_deref().and_then(|a| a.strip_prefix("Bearer ")).map(str::to_string);
    let record = |status: u16, events: Vec<serde_json::Value>| {
        let mut s = state.lock().unwrap();
        s.requests += 1;
        if (200..300).contains(&status) {
            s.accepted += events.len() as u64;
        }
        if !s.keep {
            return;
        }
        s.deliveries.push(Delivery {
            at: Instant::now(),
            status,
            ids: ids.clone(),
            events,
            idempotency_key: key.clone(),
            signature_ok,
            gzip,
            token: token.clone(),
        });
    };
    if !tokens.is_empty() && !token.as_ref().is_some_and(|t| tokens.contains(t)) {
        record(401, Vec::new());
        return Ok(answer(401, r#"{"error":"invalid token"}"#.into(), None));
    }
    if signature_ok == Some(false) {
        record(401, Vec::new());
        return Ok(answer(401, r#"{"error":"bad signature"}"#.into(), None));
    }
    match mode {
        Mode::Accept => {
            record(200, events);
            Ok(answer(200, "{}".into(), None))
        }
        Mode::Status { status, retry_after, body } => {
            record(status, Vec::new());
            Ok(answer(status, body, retry_after))
        }
        Mode::Slow(d) => {
            tokio::time::sleep(d).await;
            // The client gave up long ago; a real receiver would still have applied the batch.
            record(200, events);
            Ok(answer(200, "{}".into(), None))
        }
        Mode::DropAfterBody => {
            record(200, events);
            Err(std::io::Error::other("dropping the connection after reading the body"))
        }
        Mode::RejectIds { ids: reject, reason, retry } => {
            let rejected: Vec<serde_json::Value> = ids
                .iter()
                .filter(|id| reject.contains(*id))
                .map(|id| serde_json::json!({"id": id, "reason": reason, "retry": retry}))
                .collect();
            let kept: Vec<serde_json::Value> =
                events.into_iter().filter(|e| !reject.contains(e["id"].as_str().unwrap_or_default())).collect();
            record(200, kept);
            Ok(answer(200, serde_json::json!({"rejected": rejected}).to_string(), None))
        }
        Mode::TooLargeAbove(n) if ids.len() > n => {
            record(413, Vec::new());
            Ok(answer(413, r#"{"error":"batch too large"}"#.into(), None))
        }
        Mode::TooLargeAbove(_) | Mode::Reset => {
            record(200, events);
            Ok(answer(200, "{}".into(), None))
        }
    }
}
