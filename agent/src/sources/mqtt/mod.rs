//! Handheld scanners over MQTT (contracts.md §2).
//!
//! - [`message`]: pure classification of one message (topic + bytes → message or rejection).
//! - [`source`]: the connection, ingest, ordered acks, gateway status.
//! - [`config`]: `[mqtt]` and `[broker]`; [`broker`]: the optional embedded broker.

pub mod broker;
pub mod config;
pub mod message;
pub mod source;

pub use config::{BrokerConfig, MqttConfig, MqttProtocol, ReplyLayout};
pub use source::{MqttSettings, MqttSource};
