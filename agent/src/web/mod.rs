//! The daemon's local HTTP server (`[web]`, default 127.0.0.1:9464; HTTPS with
//! `tls_cert_file`/`tls_key_file`), served with hyper:
//!
//! - `/metrics` and `/health` for monitoring ([`crate::metrics`]);
//! - `/`: the status page for a technician's phone or laptop — one HTML file, one script, one
//!   style sheet, all inside the binary (an offline site has no CDN), about 20 KB together;
//! - `/api/…`: what the page reads and does (docs/CONTRACTS.md §5b): the status (the same read
//!   model as `dockhand status --json`, [`crate::status`]), a dead letter in full, a live stream
//!   of readings (server-sent events), and, with `[web] token_file`, a login and the actions of
//!   [`crate::actions`] — the same code the CLI runs.
//!
//! Everything the page shows comes from the store or a device, so it is data, never markup: the
//! script only ever sets `textContent`, and the Content-Security-Policy forbids inline scripts,
//! so a barcode `<script>…` shows as those characters.

mod config;
mod live;
mod session;

use std::convert::Infallible;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use bytes::Bytes;
use http_body_util::combinators::BoxBody;
use http_body_util::{BodyExt, Full, Limited};
use hyper::header::{HeaderMap, HeaderValue};
use hyper_util::rt::TokioIo;
use serde::Deserialize;
use tokio::sync::mpsc;
use tracing::{debug, info, warn};

pub(crate) use config::{OldMetricsSection, WebConfig};

use crate::actions::Said;
use crate::devices::live::LiveReadings;
use crate::shutdown::Shutdown;
use crate::status::ConfigFile;
use crate::store::{Store, StoreError, StoreReader};
use crate::timestamp::Timestamp;
use session::{Refusal, Sessions};

const INDEX_HTML: &str = include_str!("assets/index.html");
const APP_JS: &str = include_str!("assets/app.js");
const APP_CSS: &str = include_str!("assets/app.css");

/// Only what the binary itself serves; no inline script, no frames, no other origin.
const CSP: &str = "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; connect-src 'self'; \
                   base-uri 'none'; form-action 'none'; frame-ancestors 'none'";

/// A POST body larger than this is refused: the page's requests are a few bytes.
const MAX_POST_BYTES: usize = 16 * 1024;

/// Dead letters listed on the page (newest first; `dockhand dlq list` shows more).
const DEAD_LETTERS_SHOWN: usize = 20;

/// What the server reads besides the store.
#[derive(Clone)]
pub(crate) struct Context {
    pub(crate) metrics: crate::metrics::Context,
    /// The store file, for the actions (they open it as the CLI does).
    pub(crate) store_path: std::path::PathBuf,
    pub(crate) gateway: String,
    pub(crate) site: String,
    /// The printers of the config the daemon started with (the page offers them a test label).
    pub(crate) printers: Vec<String>,
    /// Reads the config file as `dockhand print-test` does, when the page asks for a test label
    /// (the file on disk names the printers, as for the CLI).
    pub(crate) print_test_target: PrintTestTargetLoader,
    pub(crate) live: LiveReadings,
}

/// Loads what `print-test` needs from the config file, or says why it does not load.
pub(crate) type PrintTestTargetLoader = Arc<dyn Fn() -> Result<crate::actions::PrintTestTarget, String> + Send + Sync>;

type Body = BoxBody<Bytes, Infallible>;
type Response = hyper::Response<Body>;

/// Everything one server shares between its connections.
struct Server {
    reader: StoreReader,
    context: Context,
    sessions: Sessions,
    latest: live::Latest,
    viewers: AtomicUsize,
    shutdown: Shutdown,
    /// Served over HTTPS: the session cookie gets `Secure`.
    secure: bool,
    /// Why the buttons are off although `token_file` is set (the file could not be read).
    actions_off_reason: Option<String>,
}

pub(crate) async fn serve(config: WebConfig, store: Store, context: Context, mut shutdown: Shutdown) {
    let listener = match tokio::net::TcpListener::bind(config.listen).await {
        Ok(l) => l,
        Err(e) => {
            warn!(listen = %config.listen, error = %e, "Cannot serve the status page, /metrics and /health; change [web] listen or free the port.");
            return;
        }
    };
    // One read connection for every request, not one per request.
    let reader = match store.reader() {
        Ok(r) => r,
        Err(e) => {
            warn!(error = %e, "Cannot read the store; the status page, /metrics and /health are off.");
            return;
        }
    };
    // HTTPS or nothing when configured: falling back to plain HTTP would send the token in clear.
    let acceptor = match config.tls() {
        None => None,
        Some((cert, key)) => match crate::tls::server_config(cert, key) {
            Ok(tls) => Some(tokio_rustls::TlsAcceptor::from(tls)),
            Err(e) => {
                warn!(error = %e, "Cannot serve HTTPS; the status page, /metrics and /health are off. Fix [web] tls_cert_file and tls_key_file.");
                return;
            }
        },
    };
    let (token, actions_off_reason) = match &config.token_file {
        None => (None, None),
        Some(file) => match crate::secrets::read_secret_file(file) {
            Ok(t) => (Some(t), None),
            Err(e) => {
                warn!(error = %e, "Cannot read [web] token_file; the status page is read-only until the next restart.");
                (None, Some(e))
            }
        },
    };
    let server = Arc::new(Server {
        reader,
        latest: live::Latest::follow(&context.live),
        context,
        sessions: Sessions::new(token.as_deref()),
        viewers: AtomicUsize::new(0),
        shutdown: shutdown.clone(),
        secure: acceptor.is_some(),
        actions_off_reason,
    });
    info!(
        listen = %config.listen,
        https = server.secure,
        actions = server.sessions.actions_enabled(),
        "Serving the status page, /metrics and /health."
    );
    loop {
        let accepted = tokio::select! {
            a = listener.accept() => a,
            _ = shutdown.wait() => return,
        };
        let Ok((tcp, _)) = accepted else { continue };
        let (server, acceptor) = (server.clone(), acceptor.clone());
        tokio::spawn(async move {
            let Some(acceptor) = acceptor else { return serve_connection(tcp, server).await };
            // A client that connects and never finishes the handshake does not keep a task.
            match tokio::time::timeout(TLS_HANDSHAKE_TIMEOUT, acceptor.accept(tcp)).await {
                Ok(Ok(tls)) => serve_connection(tls, server).await,
                Ok(Err(e)) => debug!(error = %e, "A TLS handshake with the status page failed."),
                Err(_) => debug!("A TLS handshake with the status page timed out."),
            }
        });
    }
}

/// How long a client has to complete the TLS handshake.
const TLS_HANDSHAKE_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(10);

async fn serve_connection<I>(io: I, server: Arc<Server>)
where
    I: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send + 'static,
{
    let service = hyper::service::service_fn(move |req| {
        let server = server.clone();
        async move { Ok::<_, Infallible>(with_common_headers(server.respond(req).await)) }
    });
    let _ = hyper::server::conn::http1::Builder::new().serve_connection(TokioIo::new(io), service).await;
}

fn full(body: impl Into<Bytes>) -> Body {
    Full::new(body.into()).boxed()
}

fn reply(status: u16, kind: &'static str, body: impl Into<Bytes>) -> Response {
    hyper::Response::builder().status(status).header("content-type", kind).body(full(body)).unwrap_or_default()
}

fn json_reply(status: u16, value: &serde_json::Value) -> Response {
    reply(status, "application/json", value.to_string())
}

fn error_reply(status: u16, message: &str) -> Response {
    json_reply(status, &serde_json::json!({ "error": message }))
}

fn with_common_headers(mut response: Response) -> Response {
    let headers = response.headers_mut();
    for (name, value) in [
        ("content-security-policy", CSP),
        ("x-content-type-options", "nosniff"),
        ("referrer-policy", "no-referrer"),
        ("x-frame-options", "DENY"),
        ("cache-control", "no-store"),
    ] {
        headers.insert(name, HeaderValue::from_static(value));
    }
    response
}

fn header<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    headers.get(name).and_then(|v| v.to_str().ok())
}

/// The body of a POST as JSON (`{}` when empty), refused when too large or not JSON.
async fn json_body(req: hyper::Request<hyper::body::Incoming>) -> Result<serde_json::Value, Response> {
    let bytes = Limited::new(req.into_body(), MAX_POST_BYTES)
        .collect()
        .await
        .map_err(|_| error_reply(413, "the request body is too large"))?
        .to_bytes();
    if bytes.is_empty() {
        return Ok(serde_json::json!({}));
    }
    serde_json::from_slice(&bytes).map_err(|e| error_reply(400, &format!("the request body is not JSON: {e}")))
}

impl Server {
    async fn respond(self: &Arc<Self>, req: hyper::Request<hyper::body::Incoming>) -> Response {
        let path = req.uri().path().to_owned();
        let method = req.method().clone();
        if method == hyper::Method::POST {
            return self.post(&path, req).await;
        }
        if method != hyper::Method::GET && method != hyper::Method::HEAD {
            return error_reply(405, "only GET and POST are answered here");
        }
        match path.as_str() {
            "/metrics" | "/health" => {
                let (status, kind, body) = if path == "/metrics" {
                    crate::metrics::scrape(&self.reader, &self.context.metrics).await
                } else {
                    crate::metrics::health(&self.reader, &self.context.metrics).await
                };
                reply(status, kind, body)
            }
            "/" | "/index.html" => reply(200, "text/html; charset=utf-8", INDEX_HTML),
            "/app.js" => reply(200, "text/javascript; charset=utf-8", APP_JS),
            "/app.css" => reply(200, "text/css; charset=utf-8", APP_CSS),
            "/api/status" => match self.page_status().await {
                Ok(v) => json_reply(200, &v),
                Err(e) => error_reply(503, &format!("the store cannot be read: {e}")),
            },
            "/api/session" => {
                let csrf = self.sessions.csrf_of(header(req.headers(), "cookie"));
                json_reply(
                    200,
                    &serde_json::json!({
                        "actions": self.sessions.actions_enabled(),
                        "actions_off_reason": self.actions_off_reason,
                        "logged_in": csrf.is_some(),
                        "csrf": csrf,
                    }),
                )
            }
            "/api/events" => self.live_view(),
            _ => match path.strip_prefix("/api/dead-letters/").map(|n| n.trim_start_matches('#').parse::<i64>()) {
                Some(Ok(id)) => self.dead_letter(id).await,
                Some(Err(_)) => {
                    error_reply(400, "a dead letter is named by its number, as `dockhand dlq list` shows it")
                }
                None => reply(404, "text/plain", "not here: try /, /metrics or /health\n"),
            },
        }
    }

    /// The page's whole state: the status read model plus what only the page shows.
    async fn page_status(&self) -> Result<serde_json::Value, StoreError> {
        let config_file = self.context.metrics.config_file.clone();
        let (summary, file, dead) = self
            .reader
            .run(move |r| {
                Ok((r.summary()?, ConfigFile::digest_of(&config_file), r.dead_letters(false, DEAD_LETTERS_SHOWN)?))
            })
            .await?;
        let now = Timestamp::now();
        let report = crate::status::report(summary, self.context.metrics.max_bytes, now, &file);
        Ok(serde_json::json!({
            "gateway": {"id": self.context.gateway, "site": self.context.site, "version": env!("CARGO_PKG_VERSION")},
            "now": now,
            "status": report.to_json(),
            "dead_letters": dead,
            "live": self.latest.snapshot(),
            "printers": self.context.printers,
            "actions": self.sessions.actions_enabled(),
        }))
    }

    async fn dead_letter(&self, id: i64) -> Response {
        match self.reader.run(move |r| r.dead_letter(id)).await {
            Ok(Some(row)) => {
                let mut value = serde_json::to_value(&row).unwrap_or_default();
                match std::str::from_utf8(&row.body) {
                    Ok(text) => value["body"] = text.into(),
                    Err(_) => value["body_hex"] = row.body_hex().into(),
                }
                json_reply(200, &value)
            }
            Ok(None) => error_reply(404, &format!("there is no dead letter #{id}")),
            Err(e) => error_reply(503, &format!("the store cannot be read: {e}")),
        }
    }

    /// `GET /api/events`: the status now and every [`live::STATUS_EVERY`], readings as they come.
    fn live_view(self: &Arc<Self>) -> Response {
        if self.viewers.fetch_add(1, Ordering::SeqCst) >= live::MAX_VIEWERS {
            self.viewers.fetch_sub(1, Ordering::SeqCst);
            return error_reply(503, "too many open status pages; close one and reload");
        }
        let (tx, rx) = mpsc::channel::<Bytes>(64);
        let server = self.clone();
        let mut listener = self.context.live.listen();
        let mut shutdown = self.shutdown.clone();
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(live::STATUS_EVERY);
            loop {
                let event = tokio::select! {
                    _ = tick.tick() => match server.page_status().await {
                        Ok(v) => live::sse_event("status", &v.to_string()),
                        Err(e) => live::sse_event("failure", &serde_json::json!({"error": e.to_string()}).to_string()),
                    },
                    e = live::next_reading_event(&mut listener) => e,
                    _ = shutdown.wait() => break,
                };
                // The page went away: the send fails and the viewer's slot is freed.
                if tx.send(event).await.is_err() {
                    break;
                }
            }
            server.viewers.fetch_sub(1, Ordering::SeqCst);
        });
        hyper::Response::builder()
            .status(200)
            .header("content-type", "text/event-stream")
            .body(BoxBody::new(live::ChannelBody::new(rx)))
            .unwrap_or_default()
    }

    async fn post(&self, path: &str, req: hyper::Request<hyper::body::Incoming>) -> Response {
        // A form on another site can POST here, but cannot send JSON without a CORS preflight,
        // which this server never answers: JSON only, so every POST is the page's own script.
        let is_json = header(req.headers(), "content-type")
            .is_some_and(|t| t.split(';').next().is_some_and(|t| t.trim().eq_ignore_ascii_case("application/json")));
        if !is_json {
            return error_reply(415, "POST application/json");
        }
        let cookie = header(req.headers(), "cookie").map(str::to_owned);
        match path {
            "/api/login" => {
                let body = match json_body(req).await {
                    Ok(b) => b,
                    Err(r) => return r,
                };
                let offered = body["token"].as_str().unwrap_or_default();
                match self.sessions.login(offered) {
                    Ok(opened) => {
                        info!("The status page was logged in to.");
                        hyper::Response::builder()
                            .status(200)
                            .header("content-type", "application/json")
                            .header("set-cookie", session::set_cookie(&opened.id, self.secure))
                            .body(full(serde_json::json!({"csrf": opened.csrf}).to_string()))
                            .unwrap_or_default()
                    }
                    Err(refusal) => {
                        if refusal == Refusal::NotLoggedIn {
                            warn!("A login to the status page gave a wrong token.");
                            // Slows down guessing; the connection is the caller's, not the server's.
                            tokio::time::sleep(std::time::Duration::from_secs(1)).await;
                            return error_reply(403, "wrong token");
                        }
                        error_reply(403, &refusal.to_string())
                    }
                }
            }
            "/api/logout" => {
                self.sessions.logout(cookie.as_deref());
                hyper::Response::builder()
                    .status(200)
                    .header("content-type", "application/json")
                    .header("set-cookie", session::clear_cookie())
                    .body(full("{}"))
                    .unwrap_or_default()
            }
            _ => {
                let Some(action) = path.strip_prefix("/api/actions/").map(str::to_owned) else {
                    return error_reply(404, "no such action");
                };
                if let Err(refusal) = self.sessions.authorize(cookie.as_deref(), header(req.headers(), "x-csrf-token"))
                {
                    return error_reply(403, &refusal.to_string());
                }
                let body = match json_body(req).await {
                    Ok(b) => b,
                    Err(r) => return r,
                };
                self.act(&action, body).await
            }
        }
    }

    /// Runs one of [`crate::actions`] on the blocking pool (they use the store as the CLI does)
    /// and answers what it said and the exit code the CLI would have ended with.
    async fn act(&self, action: &str, body: serde_json::Value) -> Response {
        let request = match Action::parse(action, body) {
            Ok(a) => a,
            Err(message) => return error_reply(400, &message),
        };
        let store = self.context.store_path.clone();
        let load_target = self.context.print_test_target.clone();
        info!(action = ?request, "An action was started from the status page.");
        let done = tokio::task::spawn_blocking(move || {
            let mut said = Vec::new();
            let mut say = |line: Said| said.push(line);
            let exit = match request {
                Action::RetryDeadLetters { ids } => {
                    crate::actions::retry_dead_letters(&store, ids.as_deref(), &mut say)
                }
                Action::Reprint { id } => crate::actions::reprint(&store, &id, &mut say),
                Action::ClearAlarms => crate::actions::clear_alarms(&store, &mut say),
                // As `dockhand print-test` does: the config on disk names the printers.
                Action::PrintTest { printer } => match load_target() {
                    Ok(target) => crate::actions::print_test(&target, &printer, &mut say),
                    Err(e) => {
                        say(Said::Err(format!("error: {e}")));
                        Ok(crate::exit::CONFIG)
                    }
                },
            };
            (exit, said)
        })
        .await;
        match done {
            Ok((Ok(exit), said)) => {
                let status = if exit == crate::exit::OK { 200 } else { 422 };
                json_reply(status, &serde_json::json!({"exit": exit, "ok": exit == crate::exit::OK, "said": said}))
            }
            Ok((Err(e), _)) => error_reply(if matches!(e, StoreError::Setup(_)) { 422 } else { 503 }, &e.to_string()),
            Err(e) => error_reply(500, &format!("the action stopped: {e}")),
        }
    }
}

/// An action as the page asks for it.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Action {
    /// `ids: None` is `dlq retry --all`.
    RetryDeadLetters {
        ids: Option<Vec<i64>>,
    },
    PrintTest {
        printer: String,
    },
    Reprint {
        id: String,
    },
    ClearAlarms,
}

impl Action {
    fn parse(name: &str, body: serde_json::Value) -> Result<Action, String> {
        #[derive(Deserialize)]
        #[serde(deny_unknown_fields)]
        struct Retry {
            #[serde(default)]
            ids: Vec<i64>,
            #[serde(default)]
            all: bool,
        }
        #[derive(Deserialize)]
        #[serde(deny_unknown_fields)]
        struct Printer {
            printer: String,
        }
        #[derive(Deserialize)]
        #[serde(deny_unknown_fields)]
        struct Job {
            id: String,
        }
        let bad = |e: serde_json::Error| format!("{name}: {e}");
        match name {
            "dlq-retry" => {
                let r: Retry = serde_json::from_value(body).map_err(bad)?;
                match (r.all, r.ids.is_empty()) {
                    (true, true) => Ok(Action::RetryDeadLetters { ids: None }),
                    (false, false) => Ok(Action::RetryDeadLetters { ids: Some(r.ids) }),
                    (true, false) => Err("dlq-retry: give ids or all, not both".into()),
                    (false, true) => Err("dlq-retry: name dead letter ids or pass all".into()),
                }
            }
            "print-test" => {
                Ok(Action::PrintTest { printer: serde_json::from_value::<Printer>(body).map_err(bad)?.printer })
            }
            "reprint" => Ok(Action::Reprint { id: serde_json::from_value::<Job>(body).map_err(bad)?.id }),
            "clear-alarms" => Ok(Action::ClearAlarms),
            other => Err(format!("there is no action `{other}` (dlq-retry, print-test, reprint and clear-alarms are)")),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn actions_are_read_strictly() {
        assert_eq!(
            Action::parse("dlq-retry", json!({"ids": [3]})),
            Ok(Action::RetryDeadLetters { ids: Some(vec![3]) })
        );
        assert_eq!(Action::parse("dlq-retry", json!({"all": true})), Ok(Action::RetryDeadLetters { ids: None }));
        assert!(Action::parse("dlq-retry", json!({})).is_err());
        assert!(Action::parse("dlq-retry", json!({"ids": ["3"]})).is_err());
        assert!(Action::parse("reprint", json!({"id": "j1", "x": 1})).is_err());
        assert_eq!(Action::parse("clear-alarms", json!({})), Ok(Action::ClearAlarms));
        assert!(Action::parse("purge", json!({})).unwrap_err().contains("dlq-retry"));
    }

    #[test]
    fn the_page_stays_within_its_budget_and_loads_nothing_from_elsewhere() {
        let total = INDEX_HTML.len() + APP_JS.len() + APP_CSS.len();
        assert!(total <= 100 * 1024, "the page is {total} bytes; the budget is 100 KB (docs/WEB.md)");
        for asset in [INDEX_HTML, APP_JS, APP_CSS] {
            assert!(!asset.contains("http://") && !asset.contains("https://"), "an asset refers to another origin");
            assert!(!asset.contains("innerHTML") && !asset.contains("insertAdjacentHTML") && !asset.contains("eval("));
        }
        assert!(!INDEX_HTML.contains("<script>"), "no inline script: the CSP forbids it");
    }
}
