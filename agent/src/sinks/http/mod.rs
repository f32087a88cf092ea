//! The HTTP sink: batches of envelopes POSTed to the cloud integration layer (contracts.md §3).
//!
//! - [`config`]: the `[[sink]] type = "http"` table.
//! - [`request`]: body, `Idempotency-Key`, signature, gzip.
//! - [`response`]: what each answer means (pure, unit-tested).
//! - [`sink`]: the reqwest client that sends one batch.

pub(crate) mod config;
pub(crate) mod request;
pub mod response;
pub(crate) mod sink;

pub(crate) use config::HttpSinkConfig;
pub(crate) use sink::HttpSink;
