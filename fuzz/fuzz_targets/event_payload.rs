//! Event payloads and stored envelopes: `dockhand::event::Payload::from_json` (the validation of
//! every handheld payload kind) and `dockhand::event::Envelope::parse` (what sinks and tools read
//! back from the store, and what `dlq`/`replay` read from files).
//!
//! Input layout: byte 0 picks the kind (`Kind::ALL[b % 7]`); the rest is JSON. The rest is parsed
//! as a `serde_json::Value` and validated as that kind's payload, and (when it is UTF-8) parsed as
//! a whole envelope.
//!
//! Invariants checked besides "no panic": a payload that validates has the kind it was validated
//! as, and an envelope that parses serialises (`Event::to_envelope_json`, byte for byte what the
//! store keeps) to JSON that parses back to the same envelope.
#![no_main]

use dockhand::event::{Envelope, Kind, Payload};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Some((&selector, json)) = data.split_first() else { return };
    let kind = Kind::ALL[usize::from(selector) % Kind::ALL.len()];
    if let Ok(value) = serde_json::from_slice::<serde_json::Value>(json) {
        if let Ok(payload) = Payload::from_json(kind, value) {
            assert_eq!(payload.kind(), kind);
        }
    }
    if let Ok(text) = std::str::from_utf8(json) {
        if let Ok(envelope) = Envelope::parse(text) {
            let again = envelope.event.to_envelope_json(envelope.seq);
            match Envelope::parse(&again) {
                Ok(back) => assert_eq!(back, envelope, "envelope changed on a round trip through `{again}`"),
                Err(e) => panic!("envelope accepted from `{text}` serialises to `{again}`, which does not parse: {e}"),
            }
        }
    }
});
