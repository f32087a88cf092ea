//! MQTT handheld messages: `dockhand::sources::mqtt::message::classify`, which sees every topic
//! and payload a handheld (or anything else on the broker) publishes.
//!
//! Input layout: byte 0 picks the mode.
//! - `b % 8 < 7`: the topic is `warehouse/WH1/handheld/hh-1/<kind>` for the kind `b % 8` selects
//!   (scan, weight, count, pick, receipt, pack, device_status) and the payload is the rest, so
//!   nearly every execution reaches the JSON and payload validation.
//! - `b % 8 == 7`: byte 1 is the topic length `n`; the topic is the next `n` bytes (lossy UTF-8,
//!   since rumqttc hands topics over as `String`) and the payload the rest.
//!
//! Invariant checked besides "no panic": a timestamp accepted in `ts` prints back (as it will in
//! the stored envelope) to text that parses to the same timestamp.
#![no_main]

use dockhand::sources::mqtt::message::{Incoming, classify};
use dockhand::timestamp::Timestamp;
use libfuzzer_sys::fuzz_target;

const PREFIX: &str = "warehouse/WH1";
const MAX_PAYLOAD: usize = 65536;
const KINDS: [&str; 7] = ["scan", "weight", "count", "pick", "receipt", "pack", "device_status"];

fuzz_target!(|data: &[u8]| {
    let Some((&mode, rest)) = data.split_first() else { return };
    let (topic, payload) = match KINDS.get(usize::from(mode % 8)) {
        Some(kind) => (format!("{PREFIX}/handheld/hh-1/{kind}"), rest),
        None => {
            let Some((&len, rest)) = rest.split_first() else { return };
            let len = usize::from(len).min(rest.len());
            let (topic, payload) = rest.split_at(len);
            (String::from_utf8_lossy(topic).into_owned(), payload)
        }
    };
    if let Incoming::Message(msg) = classify(PREFIX, &topic, payload, MAX_PAYLOAD) {
        if let Some(ts) = msg.ts {
            let text = ts.to_string();
            assert_eq!(Timestamp::parse(&text).ok(), Some(ts), "accepted ts {ts:?} prints as `{text}`, which does not parse back");
        }
    }
});
