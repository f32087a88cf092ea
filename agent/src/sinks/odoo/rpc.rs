//! The connection to one Odoo server: version detection (`protocol = "auto"`), authentication
//! (JSON-RPC `common.authenticate`, again after a session expiry), the pace limit
//! (`calls_per_second`), and one [`OdooRpc::call`] for both protocols. Every call is counted, so
//! the benchmark can report calls per applied event.

use std::time::Duration;

use serde_json::{Value, json};
use tracing::{debug, info};

use super::config::{OdooProtocol, OdooSinkConfig};
use super::wire::{self, Call, Fault};

/// Why a call did not give an answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum RpcError {
    /// See [`Fault`].
    Fault(Fault),
    /// No connection could be made: the server is down or unreachable.
    Unreachable(String),
    /// The request may have reached Odoo and committed, but no answer came back (timeout, the
    /// connection dropped). Writes are designed so that repeating them is harmless.
    Ambiguous(String),
}

impl From<Fault> for RpcError {
    fn from(f: Fault) -> Self {
        RpcError::Fault(f)
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Protocol {
    Json2,
    JsonRpc,
}

#[derive(Debug)]
pub(crate) struct OdooRpc {
    client: reqwest::Client,
    base: String,
    database: String,
    login: String,
    key: String,
    wanted: OdooProtocol,
    protocol: Option<Protocol>,
    /// Major version (16, 17, …), once known.
    pub(crate) version: Option<u32>,
    uid: Option<i64>,
    next_id: u64,
    min_interval: Duration,
    next_call: tokio::time::Instant,
    /// Calls made (every HTTP request to Odoo).
    pub(crate) calls: u64,
}

impl OdooRpc {
    pub(crate) fn new(config: &OdooSinkConfig) -> Result<OdooRpc, String> {
        let key = crate::secrets::read_secret_file(&config.api_key_file)?;
        let client = crate::sinks::client::build(&config.tls, config.connect_timeout.0, config.request_timeout.0, 2)?;
        Ok(OdooRpc {
            client,
            base: config.url.trim_end_matches('/').to_owned(),
            database: config.database.clone(),
            login: config.login.clone(),
            key,
            wanted: config.protocol,
            protocol: None,
            version: None,
            uid: None,
            next_id: 1,
            min_interval: Duration::from_secs_f64(1.0 / config.calls_per_second),
            next_call: tokio::time::Instant::now(),
            calls: 0,
        })
    }

    /// The login dockhand works as.
    pub(crate) fn login(&self) -> &str {
        &self.login
    }

    /// Version 17 and later name the done quantity `quantity` (+ `picked`); 16 `qty_done`.
    pub(crate) fn is_16(&self) -> bool {
        self.version.is_some_and(|v| v <= 16)
    }

    /// The package model: `stock.package` from 19, `stock.quant.package` before.
    pub(crate) fn package_model(&self) -> &'static str {
        if self.version.is_some_and(|v| v >= 19) { "stock.package" } else { "stock.quant.package" }
    }

    async fn pace(&mut self) {
        let now = tokio::time::Instant::now();
        if self.next_call > now {
            tokio::time::sleep(self.next_call - now).await;
        }
        self.next_call = tokio::time::Instant::now() + self.min_interval;
        self.calls += 1;
    }

    async fn post(
        &mut self,
        url: &str,
        body: &Value,
        bearer: bool,
    ) -> Result<(u16, Option<String>, Vec<u8>), RpcError> {
        self.pace().await;
        let mut request = self
            .client
            .post(url)
            .header(reqwest::header::CONTENT_TYPE, "application/json")
            .body(serde_json::to_vec(body).unwrap_or_default());
        if bearer {
            request = request.bearer_auth(&self.key).header("X-Odoo-Database", &self.database);
        }
        let response = request.send().await.map_err(|e| {
            if e.is_connect() {
                RpcError::Unreachable(format!("cannot connect to {}: {e}", self.base))
            } else {
                RpcError::Ambiguous(format!(
                    "no answer from {} ({e}); the call is checked before it is repeated",
                    self.base
                ))
            }
        })?;
        let status = response.status().as_u16();
        let retry = response.headers().get("retry-after").and_then(|v| v.to_str().ok()).map(str::to_owned);
        let bytes = response
            .bytes()
            .await
            .map_err(|e| RpcError::Ambiguous(format!("the answer from {} was cut off: {e}", self.base)))?;
        Ok((status, retry, bytes.to_vec()))
    }

    async fn common(&mut self, method: &str, args: Value) -> Result<Value, RpcError> {
        let id = self.next_id;
        self.next_id += 1;
        let url = format!("{}/jsonrpc", self.base);
        let (status, retry, body) = self.post(&url, &wire::jsonrpc_common(id, method, args), false).await?;
        Ok(wire::classify_jsonrpc(status, retry.as_deref(), &body)?)
    }

    /// Whether the server answers at all: `version_info` over the sink's own client (its TLS
    /// settings), with a short timeout. Any HTTP answer counts (a 5xx is about a call, not the
    /// connection).
    pub(crate) async fn reachable(&self, timeout: Duration) -> bool {
        let url = format!("{}/web/webclient/version_info", self.base);
        let request = self.client.post(url).header(reqwest::header::CONTENT_TYPE, "application/json").body("{}");
        request.timeout(timeout).send().await.is_ok()
    }

    /// Detects the version and logs in, if not done yet; the major version.
    pub(crate) async fn connect(&mut self) -> Result<u32, RpcError> {
        self.ready().await?;
        Ok(self.version.unwrap_or(0))
    }

    /// Detects the version and protocol, and logs in (JSON-RPC), once.
    async fn ready(&mut self) -> Result<Protocol, RpcError> {
        if self.version.is_none() {
            let answer = self.common("version", json!([])).await?;
            let version = answer
                .get("server_version_info")
                .and_then(|v| v.get(0))
                .and_then(Value::as_u64)
                .or_else(|| {
                    answer
                        .get("server_version")
                        .and_then(Value::as_str)
                        .and_then(|s| s.trim_start_matches("saas~").split('.').next().and_then(|m| m.parse().ok()))
                })
                .ok_or_else(|| Fault::Permanent(format!("cannot read the Odoo version from {answer}")))?;
            self.version = Some(version as u32);
            info!(url = %self.base, version, "Odoo server found.");
        }
        let protocol = match self.wanted {
            OdooProtocol::Json2 => Protocol::Json2,
            OdooProtocol::Jsonrpc => Protocol::JsonRpc,
            OdooProtocol::Auto if self.version.is_some_and(|v| v >= 19) => Protocol::Json2,
            OdooProtocol::Auto => Protocol::JsonRpc,
        };
        self.protocol = Some(protocol);
        if protocol == Protocol::JsonRpc && self.uid.is_none() {
            let args = json!([self.database, self.login, self.key, {}]);
            let uid = self.common("authenticate", args).await?;
            match uid.as_i64() {
                Some(uid) => {
                    debug!(uid, "Authenticated with Odoo.");
                    self.uid = Some(uid);
                }
                None => {
                    return Err(Fault::Auth(format!(
                        "Odoo refused login `{}` with the API key on database `{}`: check login, database and api_key_file (keys expire), then reload",
                        self.login, self.database
                    ))
                    .into());
                }
            }
        }
        Ok(protocol)
    }

    /// One method call on a model.
    pub(crate) async fn call(&mut self, call: &Call) -> Result<Value, RpcError> {
        let mut relogged = false;
        loop {
            let protocol = self.ready().await?;
            let result = match protocol {
                Protocol::Json2 => {
                    let url = format!("{}/json/2/{}/{}", self.base, call.model, call.method);
                    let (status, retry, body) = self.post(&url, &wire::json2_body(call), true).await?;
                    wire::classify_json2(status, retry.as_deref(), &body)
                }
                Protocol::JsonRpc => {
                    let id = self.next_id;
                    self.next_id += 1;
                    let uid = self.uid.unwrap_or_default();
                    let body = wire::jsonrpc_call(id, &self.database, uid, &self.key, call);
                    let url = format!("{}/jsonrpc", self.base);
                    let (status, retry, answer) = self.post(&url, &body, false).await?;
                    wire::classify_jsonrpc(status, retry.as_deref(), &answer)
                }
            };
            match result {
                Err(Fault::SessionExpired) if !relogged => {
                    relogged = true;
                    self.uid = None;
                }
                Err(Fault::Auth(m)) => {
                    // Log in again next time: a reload with a new key must not reuse the old uid.
                    self.uid = None;
                    return Err(RpcError::Fault(Fault::Auth(m)));
                }
                other => return other.map_err(RpcError::Fault),
            }
        }
    }
}
