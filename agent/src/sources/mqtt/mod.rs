//! Handheld scanners over MQTT (contracts.md §2).
//!
//! - [`message`]: pure classification of one message (topic + bytes → message or rejection).
//! - [`source`]: the connection, ingest, ordered acks, gateway status.
//! - [`broker`]: the optional embedded broker (its `[broker]` settings are [`crate::mqtt::BrokerConfig`]).

pub mod broker;
pub mod message;
pub mod source;

pub use source::MqttSource;
