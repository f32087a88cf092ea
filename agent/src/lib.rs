//! dockhand: the edge agent for warehouse gateways.
//!
//! How an event travels, and where each step lives:
//!
//! - [`sources`]: where events come from (MQTT handhelds); each acknowledges its input only after
//!   the store has answered.
//! - [`event`]: the canonical envelope every source produces and every sink delivers.
//! - [`store`]: the SQLite store-and-forward queue; one writer thread group-commits appends and
//!   answers each only once it is durable; dedup by event id; dead letters; retention.
//! - [`dispatcher`]: one per sink; forms batches from the store (a batch keeps its events and key
//!   until settled), hands them to the sink, records each event's outcome (delivered,
//!   dead-lettered, retried, paused), learns the receiver's size limit, probes while backing off.
//! - [`devices`], [`stations`], [`printing`]: serial/TCP scanners, scales and printers (local or
//!   behind a firmware-bridge); a station's scans reach it through the store (committed before
//!   they are acknowledged), its scale's readings through a live slot.
//! - [`sinks`]: what a delivery is for each destination (`file`, `http`, `odoo`).
//! - [`supervisor`]: `dockhand run` — builds all of the above from [`config`], handles signals.
//! - [`status`], [`cli`], [`bench`], [`simulate`]: what a technician runs; `status` reads the
//!   store directly.
//!
//! Support: `mqtt` (the MQTT client: 3.1.1 or 5, TLS, session, error hints), [`timestamp`] (RFC 3339 ms UTC), [`units`] (durations and sizes in the config),
//! [`shutdown`], [`telemetry`] (logs), [`secrets`] (secret files), [`exit`] (exit codes),
//! `counters` (process-wide counters for `/metrics`).

pub mod bench;
mod bench_codecs;
mod bench_devices;
mod bench_http;
mod bench_ingest;
pub mod cli;
pub mod config;
pub(crate) mod counters;
pub mod devices;
pub mod dispatcher;
pub mod event;
pub mod exit;
pub mod health;
pub mod metrics;
pub(crate) mod mqtt;
pub mod printing;
pub mod secrets;
pub mod shutdown;
pub mod simulate;
pub mod sinks;
pub mod sources;
pub mod stations;
pub mod status;
pub mod store;
pub mod supervisor;
pub mod systemd;
pub mod telemetry;
pub mod timestamp;
pub mod tls;
pub mod units;
