//! Sources: where events come from. Each source turns outside input into [`crate::event::Event`]s,
//! appends them to the store, and acknowledges the input only once the store has answered.
//!
//! - [`mqtt`]: handheld scanners publishing to the gateway's broker.

pub mod mqtt;
