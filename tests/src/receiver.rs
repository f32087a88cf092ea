//! A faithful stand-in for the cloud integration layer (contracts.md §3): an HTTP(S) receiver that
//! dedups nothing itself but records every event id it accepted, in order, checks the bearer
//! token and the HMAC signature over the exact body, and can be switched at run time to each
//! failure the sink must survive: refusing connections, 503 with Retry-After, 429, 500, answering
//! slower than the client's timeout, dropping the connection after reading the body, rejecting
//! chosen ids, 401, and 413 above a batch size.

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
}

/// One request as received.
#[derive(Debug, Clone)]
pub struct Delivery {
    pub at: Instant,
    pub status: u16,
    pub ids: Vec<String>,
    pub events: Vec<serde_json::Value>,
    pub idempotency_key: Option<String>,
    pub signature_ok: Option<bool>,
    pub gzip: bool,
}

#[derive(Debug)]
struct State {
    mode: Mode,
    token: Option<String>,
    secret: Option<Vec<u8>>,
    deliveries: Vec<Delivery>,
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
        let tls = tls.map(|(cert, key)| {
            use rustls::pki_types::pem::PemObject;
            let certs: Vec<_> =
                rustls::pki_types::CertificateDer::pem_file_iter(cert).unwrap().map(Result::unwrap).collect();
            let key = rustls::pki_types::PrivateKeyDer::from_pem_file(key).unwrap();
            let config =
                rustls::ServerConfig::builder_with_provider(Arc::new(rustls::crypto::ring::default_provider()))
                    .with_safe_default_protocol_versions()
                    .unwrap()
                    .with_no_client_auth()
                    .with_single_cert(certs, key)
                    .unwrap();
            Arc::new(config)
        });
        let state =
            Arc::new(Mutex::new(State { mode: Mode::Accept, token: None, secret: None, deliveries: Vec::new() }));
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
                let state = state.clone();
                let tls = tls.clone();
                tokio::spawn(async move {
                    let service = hyper::service::service_fn(move |req| handle(state.clone(), req));
                    let builder = hyper::server::conn::http1::Builder::new();
                    match tls {
                        Some(acceptor) => {
                            // A client that refuses our certificate ends the handshake: nothing to serve.
                            if let Ok(stream) = acceptor.accept(tcp).await {
                                let _ = builder.serve_connection(TokioIo::new(stream), service).await;
                            }
                        }
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
        self.state.lock().unwrap().token = Some(token.into());
    }

    /// Check `X-Dockhand-Signature` against this key.
    pub fn verify_with(&self, secret: &[u8]) {
        self.state.lock().unwrap().secret = Some(secret.to_vec());
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
    let (mode, token, secret) = {
        let s = state.lock().unwrap();
        (s.mode.clone(), s.token.clone(), s.secret.clone())
    };
    let signature_ok = secret.map(|secret| {
        let key = ring::hmac::Key::new(ring::hmac::HMAC_SHA256, &secret);
        let expected: String = ring::hmac::sign(&key, &body).as_ref().iter().map(|b| format!("{b:02x}")).collect();
        signature.as_deref() == Some(&format!("sha256={expected}"))
    });
    let record = |status: u16, events: Vec<serde_json::Value>| {
        let ids = events.iter().filter_map(|e| e["id"].as_str().map(str::to_string)).collect();
        state.lock().unwrap().deliveries.push(Delivery {
            at: Instant::now(),
            status,
            ids,
            events,
            idempotency_key: key.clone(),
            signature_ok,
            gzip,
        });
    };
    if let Some(token) = token
        && auth.as_deref() != Some(&format!("Bearer {token}"))
    {
        record(401, Vec::new());
        return Ok(answer(401, r#"{"error":"invalid token"}"#.into(), None));
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
        Mode::TooLargeAbove(_) => {
            record(200, events);
            Ok(answer(200, "{}".into(), None))
        }
    }
}
