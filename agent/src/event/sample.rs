//! A realistic event of a chosen size, for `dockhand bench` and the tests: a GS1-128 scan whose
//! payload is about the requested number of bytes of JSON.

use serde_json::json;

use super::{Event, Kind, Payload, Source, Transport, new_event_id};
use crate::timestamp::Timestamp;

/// A scan event whose payload is about `payload_bytes` of JSON.
pub fn sample_event(device: &str, payload_bytes: usize) -> Event {
    let filler = payload_bytes.saturating_sub(60).max(1);
    let raw = format!("]C10109501101530003172712311021{}", "7".repeat(filler.saturating_sub(30)));
    let payload = Payload::from_json(Kind::Scan, json!({"raw": raw, "aim": "]C1", "symbology": "gs1-128"}))
        .unwrap_or_else(|e| unreachable!("the sample payload is valid: {e}"));
    let now = Timestamp::now();
    Event {
        id: new_event_id(),
        gateway: "bench-gw".into(),
        site: "BENCH".into(),
        source: Source { transport: Transport::Internal, device: device.into(), station: None },
        partition: device.into(),
        occurred_at: now,
        received_at: now,
        correlation_id: None,
        payload,
    }
}
