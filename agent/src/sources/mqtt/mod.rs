//! Handheld scanners over MQTT (contracts.md §2).
//!
//! - [`message`]: pure classification of one message (topic + bytes → message or rejection).
//! - [`source`]: the connection's loop: handheld ingest, subscriptions, reconnects, live readings.
//! - `ordering`: arrival order kept from the broker to the store to the PUBACKs.
//! - `print_jobs`: print-job requests over MQTT.
//! - `gateway_status`: the retained gateway status.
//! - [`broker`]: the optional embedded broker (its `[broker]` settings are [`crate::mqtt::BrokerConfig`]).

pub(crate) mod broker;
mod gateway_status;
pub mod message;
mod ordering;
mod print_jobs;
pub(crate) mod source;

pub(crate) use source::MqttSource;
