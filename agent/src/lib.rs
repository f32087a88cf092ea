//! dockhand: the edge agent for warehouse gateways.
//!
//! How an event travels, and where each step lives (docs/ARCHITECTURE.md has the import rules):
//!
//! - [`sources`]: where events come from over MQTT (handhelds); each message is acknowledged to
//!   the broker only after the store has answered.
//! - [`devices`]: serial/TCP scanners, scales and printers, local or behind a firmware-bridge;
//!   their output becomes events, device states and live readings; a printer's task sends each
//!   job once. [`stations`]: pack/count/receive workflows fed by their devices through the store.
//!   [`printing`]: label templates and print-job parsing (pure).
//! - [`event`]: the canonical envelope every source produces and every sink delivers.
//! - [`store`]: the SQLite store-and-forward queue; one writer thread group-commits appends and
//!   answers each only once it is durable; dedup by event id; dead letters; retention; print jobs;
//!   station inputs. A leaf below the features: it knows events, not the config.
//! - [`dispatcher`]: one per sink; forms batches from the store (a batch keeps its events and key
//!   until settled), hands them to the sink, records each event's outcome (delivered,
//!   dead-lettered, retried, paused), learns the receiver's size limit, probes while backing off.
//! - [`sinks`]: what a delivery is for each destination (`file`, `http`, `odoo`, `mqtt`).
//! - [`supervisor`]: `dockhand run`: builds all of the above from [`config`] (which composes
//!   each feature's own config type and validates the whole), handles signals and reloads; a
//!   task that cannot go on ends with a [`task`] error, which stops the daemon.
//! - [`status`]: the one read model of the store summary (verdict, problems, config state, sink,
//!   device and print-job states) that `dockhand status`, its JSON, the systemd STATUS line, the
//!   retained MQTT status, [`metrics`], [`health`] and the web page render.
//! - [`cli`], [`bench`], [`simulate`]: what a technician runs; [`web`]: the local HTTP server
//!   (`/metrics`, `/health`, the status page); [`actions`]: what the CLI and the page's buttons
//!   both do (retry dead letters, test label, reprint, clear alarms).
//!
//! Support: `mqtt` (the one MQTT client module: settings, 3.1.1 or 5, TLS, session, error
//! hints), [`tls`] (rustls client set-up), [`timestamp`] (RFC 3339 ms UTC), [`units`] (values as
//! written in the config), [`shutdown`] (stop signals and task heartbeats), [`telemetry`] (logs),
//! [`secrets`] (secret files), [`systemd`] (sd_notify), [`exit`] (exit codes), `counters`
//! (process-wide counters for `/metrics`), [`backoff`] (the full-jitter delays of every retry and
//! reconnect), [`allocator`] (mimalloc, the process's allocator, and its settings).

pub(crate) mod actions;
pub(crate) mod allocator;
#[cfg(test)]
mod architecture_tests;
pub(crate) mod backoff;
pub(crate) mod bench;
pub mod cli;
pub mod config;
pub(crate) mod counters;
pub(crate) mod devices;
pub(crate) mod dispatcher;
pub mod event;
pub(crate) mod exit;
pub(crate) mod health;
pub(crate) mod metrics;
pub(crate) mod mqtt;
pub(crate) mod printing;
pub(crate) mod secrets;
pub(crate) mod shutdown;
pub(crate) mod simulate;
pub mod sinks;
pub mod sources;
pub(crate) mod stations;
pub(crate) mod status;
pub mod store;
pub(crate) mod supervisor;
pub(crate) mod systemd;
pub(crate) mod task;
pub(crate) mod telemetry;
pub mod timestamp;
pub(crate) mod tls;
pub(crate) mod units;
pub(crate) mod web;
