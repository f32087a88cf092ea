//! `type = "odoo"`: count, pick, receipt and pack events applied straight to Odoo 16–19 through
//! its external API, without any Odoo add-on.
//!
//! - [`config`]: the `[[sink]]` keys.
//! - [`wire`]: JSON-RPC and JSON-2 bodies and answers (pure, unit-tested).
//! - [`rpc`]: the connection: version detection, login, pace limit, one `call`.
//! - [`apply`]: what each event does in Odoo, and how a repeat is recognised.
//!
//! A batch is applied in order. Consecutive counts go together (one `create`, one
//! `action_apply_inventory`); picks, receipts and packs one at a time. An event Odoo refuses for
//! good is dead-lettered with Odoo's message and the batch goes on; a transient failure stops the
//! batch there and the rest is retried; refused credentials or missing access rights pause the
//! sink with an alarm and dead-letter nothing. Other kinds (scan, weight, device_status) are not
//! for Odoo: the sink's kind filter steps over them.

pub(crate) mod apply;
pub(crate) mod config;
pub(crate) mod rpc;
pub mod wire;

use tracing::warn;

use self::apply::{Applier, CountItem, NotApplied};
use self::config::OdooSinkConfig;
use self::rpc::{OdooRpc, RpcError};
use self::wire::Fault;
use crate::event::{Envelope, Kind, Payload};
use crate::sinks::Outcome;
use crate::store::BatchItem;

/// The kinds this sink applies.
pub(crate) const KINDS: [Kind; 4] = [Kind::Count, Kind::Pick, Kind::Receipt, Kind::Pack];

#[derive(Debug)]
pub(crate) struct OdooSink {
    config: OdooSinkConfig,
    gateway: String,
    applier: Result<Applier, String>,
}

impl OdooSink {
    pub(crate) fn new(config: OdooSinkConfig, gateway: &str) -> Self {
        let applier = OdooRpc::new(&config)
            .map(|rpc| Applier::new(rpc, gateway, config.backorder, config.cache_ttl.0, config.stale_counts));
        if let Err(e) = &applier {
            warn!(sink = %config.name, error = %e, "The Odoo sink cannot start; it is paused until this is fixed and dockhand is reloaded.");
        }
        Self { config, gateway: gateway.to_owned(), applier }
    }

    /// Whether the server answers at all.
    pub(crate) async fn probe(&self) -> bool {
        let timeout = self.config.request_timeout.0.min(std::time::Duration::from_secs(3));
        match &self.applier {
            Ok(applier) => applier.rpc.reachable(timeout).await,
            Err(_) => false,
        }
    }

    /// `check-config --connect`: version, login, and read access to products.
    pub(crate) async fn check(&mut self) -> Result<String, String> {
        let applier = self.applier.as_mut().map_err(|e| e.clone())?;
        let call = wire::Call::new("product.product", "search_count").param("domain", serde_json::json!([]));
        match applier.rpc.call(&call).await {
            Ok(n) => Ok(format!(
                "Odoo {} at {}, database {}: logged in, {} products visible",
                applier.rpc.version.unwrap_or(0),
                self.config.url,
                self.config.database,
                n
            )),
            Err(e) => Err(describe(&e)),
        }
    }

    pub(crate) async fn deliver(&mut self, batch: &[BatchItem]) -> Outcome {
        let applier = match &mut self.applier {
            Ok(a) => a,
            Err(e) => return Outcome::Pause { error: e.clone() },
        };
        let mut rejected = Vec::new();
        let mut i = 0;
        while i < batch.len() {
            let envelope = match Envelope::parse(&batch[i].body) {
                Ok(e) => e,
                Err(e) => {
                    rejected.push((i, format!("not a readable event: {e}")));
                    i += 1;
                    continue;
                }
            };
            let result: Vec<(usize, Result<(), NotApplied>)> = match &envelope.event.payload {
                Payload::Count(_) => {
                    // The run of consecutive counts from here.
                    let mut run = Vec::new();
                    let mut j = i;
                    while j < batch.len() {
                        let Ok(env) = Envelope::parse(&batch[j].body) else { break };
                        let Payload::Count(payload) = env.event.payload else { break };
                        run.push(CountItem {
                            index: j,
                            id: env.event.id.to_string(),
                            seq: env.seq,
                            occurred_at: env.event.occurred_at,
                            payload,
                        });
                        j += 1;
                    }
                    let results = applier.counts(&run).await;
                    run.iter().map(|c| c.index).zip(results).collect()
                }
                Payload::Pick(p) => vec![(i, applier.pick(&envelope.event.id.to_string(), p).await)],
                Payload::Receipt(r) => vec![(i, applier.receipt(&envelope.event.id.to_string(), r).await)],
                Payload::Pack(p) => vec![(i, applier.pack(p).await)],
                // Not for Odoo (the kind filter normally keeps these away).
                _ => vec![(i, Ok(()))],
            };
            let last = result.last().map_or(i, |(idx, _)| *idx);
            for (index, r) in result {
                match r {
                    Ok(()) => {}
                    Err(NotApplied::Permanent(message)) => rejected.push((index, message)),
                    Err(NotApplied::Stop(e)) => return stop(e, rejected, index),
                }
            }
            i = last + 1;
        }
        let _ = &self.gateway;
        Outcome::Accepted { rejected, retry_from: None }
    }
}

fn describe(e: &RpcError) -> String {
    match e {
        RpcError::Fault(Fault::Auth(m) | Fault::Permanent(m) | Fault::Transient(m, _)) => m.clone(),
        RpcError::Fault(Fault::SessionExpired) => "the Odoo session expired".into(),
        RpcError::Unreachable(m) | RpcError::Ambiguous(m) => m.clone(),
    }
}

/// The outcome when event `index` could not be applied now: what came before it counts.
fn stop(e: RpcError, rejected: Vec<(usize, String)>, index: usize) -> Outcome {
    let partial = |outcome: Outcome| {
        if index == 0 && rejected.is_empty() {
            outcome
        } else {
            Outcome::Accepted { rejected: rejected.clone(), retry_from: Some(index) }
        }
    };
    match e {
        RpcError::Fault(Fault::Auth(error)) => {
            if index == 0 && rejected.is_empty() {
                Outcome::Pause { error }
            } else {
                // Settle what was done; the pause comes with the next attempt.
                Outcome::Accepted { rejected, retry_from: Some(index) }
            }
        }
        RpcError::Unreachable(error) => partial(Outcome::Retry { error, after: None, unreachable: true }),
        RpcError::Fault(Fault::Transient(error, after)) => partial(Outcome::Retry { error, after, unreachable: false }),
        other => partial(Outcome::Retry { error: describe(&other), after: None, unreachable: false }),
    }
}
