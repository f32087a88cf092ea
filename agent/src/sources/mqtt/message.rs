//! Handheld messages (contracts.md §2), pure: a topic and payload bytes in, a validated message or
//! a precise rejection out. No I/O, so it is unit-tested, property-tested and fuzzed directly.
//!
//! Topic: `<prefix>/handheld/<device>/<kind>`. Payload: UTF-8 JSON object holding the kind's
//! payload fields plus optional `id` (UUID) and `ts` (RFC 3339).

use serde::Serialize;
use uuid::Uuid;

use crate::event::{FieldError, Kind, Payload};
use crate::timestamp::Timestamp;

/// A valid handheld message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HandheldMessage {
    pub(crate) device: String,
    pub(crate) kind: Kind,
    pub(crate) id: Option<Uuid>,
    pub ts: Option<Timestamp>,
    pub(crate) payload: Payload,
}

/// Why a message was refused, and what the handheld is told on `…/rejected`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rejection {
    /// The device named in the topic, when the topic has one (where the answer goes).
    pub(crate) device: Option<String>,
    /// The message's id, when it had a readable one.
    pub(crate) id: Option<Uuid>,
    /// The payload field at fault (`lines[0].quantity`), if one is.
    pub(crate) field: Option<String>,
    pub(crate) error: String,
}

/// The answer published on `…/handheld/<device>/rejected`.
#[derive(Debug, Serialize)]
pub(crate) struct RejectedReply<'a> {
    pub(crate) id: Option<Uuid>,
    pub(crate) error: &'a str,
    pub(crate) field: Option<&'a str>,
}

/// What one incoming MQTT message is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Incoming {
    Message(Box<HandheldMessage>),
    Rejected(Rejection),
    /// dockhand's own replies (`ack`, `rejected`), which the `#` subscription also delivers.
    OwnReply,
}

/// Reply kinds dockhand publishes under the handheld's topic.
pub(crate) const REPLY_KINDS: [&str; 2] = ["ack", "rejected"];

/// Classifies one message received on `<prefix>/handheld/#`.
pub fn classify(prefix: &str, topic: &str, payload: &[u8], max_payload: usize) -> Incoming {
    let rest = topic.strip_prefix(prefix).and_then(|r| r.strip_prefix("/handheld/"));
    let levels: Vec<&str> = rest.map(|r| r.split('/').collect()).unwrap_or_default();
    let device = levels.first().filter(|d| !d.is_empty()).map(|d| d.to_string());
    let reject = |field: Option<String>, error: String, id: Option<Uuid>| {
        Incoming::Rejected(Rejection { device: device.clone(), id, field, error })
    };
    let [dev, kind] = levels.as_slice() else {
        return reject(None, format!("topic `{topic}` is not {prefix}/handheld/<device>/<kind>"), None);
    };
    if REPLY_KINDS.contains(kind) {
        return Incoming::OwnReply;
    }
    if !crate::units::is_identifier(dev) {
        return reject(None, format!("device `{dev}` in the topic: use letters, digits, `-`, `_` or `.`"), None);
    }
    let Some(kind) = Kind::parse(kind) else {
        let known: Vec<&str> = Kind::ALL.iter().map(|k| k.as_str()).collect();
        return reject(None, format!("unknown kind `{kind}` in the topic; expected one of {}", known.join(", ")), None);
    };
    if payload.len() > max_payload {
        return reject(None, format!("payload of {} bytes is over the {max_payload}-byte limit", payload.len()), None);
    }
    let text = match std::str::from_utf8(payload) {
        Ok(t) => t,
        Err(e) => {
            return reject(None, format!("payload is not UTF-8 (invalid byte at offset {})", e.valid_up_to()), None);
        }
    };
    let value: serde_json::Value = match serde_json::from_str(text) {
        Ok(v) => v,
        Err(e) => return reject(None, format!("payload is not valid JSON: {e}"), None),
    };
    let serde_json::Value::Object(mut map) = value else {
        return reject(None, "payload must be a JSON object".into(), None);
    };
    let id = match map.remove("id") {
        None | Some(serde_json::Value::Null) => None,
        Some(serde_json::Value::String(s)) => match s.parse::<Uuid>() {
            Ok(id) if !id.is_nil() => Some(id),
            _ => return reject(Some("id".into()), format!("`{s}` is not a UUID"), None),
        },
        Some(_) => return reject(Some("id".into()), "must be a UUID string".into(), None),
    };
    let ts = match map.remove("ts") {
        None | Some(serde_json::Value::Null) => None,
        Some(serde_json::Value::String(s)) => match Timestamp::parse(&s) {
            Ok(t) => Some(t),
            Err(e) => return reject(Some("ts".into()), e.to_string(), id),
        },
        Some(_) => return reject(Some("ts".into()), "must be an RFC 3339 string".into(), id),
    };
    match Payload::from_json(kind, serde_json::Value::Object(map)) {
        Ok(payload) => Incoming::Message(Box::new(HandheldMessage { device: dev.to_string(), kind, id, ts, payload })),
        Err(FieldError { field, message }) => reject((!field.is_empty()).then_some(field), message, id),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    const P: &str = "warehouse/WH1";

    fn rejected(topic: &str, payload: &[u8]) -> Rejection {
        match classify(P, topic, payload, 65_536) {
            Incoming::Rejected(r) => r,
            other => panic!("expected a rejection, got {other:?}"),
        }
    }

    #[test]
    fn a_valid_count_with_id_and_ts() {
        let msg = br#"{"id":"0193a5c2-7d1e-7c4a-9f0e-5b2d8c1a3e47","ts":"2026-11-23T15:02:11.120Z","product":{"barcode":"4006381333931"},"location":"WH/Stock/A1","quantity":"12"}"#;
        let Incoming::Message(m) = classify(P, "warehouse/WH1/handheld/hh-17/count", msg, 65_536) else { panic!() };
        assert_eq!(m.device, "hh-17");
        assert_eq!(m.kind, Kind::Count);
        assert_eq!(m.id.unwrap().to_string(), "0193a5c2-7d1e-7c4a-9f0e-5b2d8c1a3e47");
        assert_eq!(m.ts.unwrap().to_string(), "2026-11-23T15:02:11.120Z");
    }

    #[test]
    fn own_replies_are_ignored() {
        assert_eq!(classify(P, "warehouse/WH1/handheld/hh-1/ack", b"{}", 10), Incoming::OwnReply);
        assert_eq!(classify(P, "warehouse/WH1/handheld/hh-1/rejected", b"x", 10), Incoming::OwnReply);
    }

    #[test]
    fn every_kind_of_bad_input_gets_a_precise_reason() {
        let r = rejected("warehouse/WH1/handheld/hh-1/count", b"\xff\xfe{}");
        assert!(r.error.contains("not UTF-8"), "{r:?}");
        assert_eq!(r.device.as_deref(), Some("hh-1"));

        let r = rejected("warehouse/WH1/handheld/hh-1/count", b"{\"product\": ");
        assert!(r.error.contains("not valid JSON"), "{r:?}");

        let r = rejected("warehouse/WH1/handheld/hh-1/count", &vec![b' '; 70_000]);
        assert!(r.error.contains("70000 bytes"), "{r:?}");

        let r = rejected(
            "warehouse/WH1/handheld/hh-1/pick",
            br#"{"picking":"WH/OUT/1","lines":[{"product":"1","quantity":2.5}]}"#,
        );
        assert_eq!(r.field.as_deref(), Some("lines[0].quantity"));

        let r = rejected("warehouse/WH1/handheld/hh-1/count", br#"{"product":"1","location":"A"}"#);
        assert_eq!(r.field.as_deref(), Some("quantity"));
        assert_eq!(r.error, "required field is missing");

        let r = rejected("warehouse/WH1/handheld/hh-1/teleport", b"{}");
        assert!(r.error.contains("unknown kind `teleport`"), "{r:?}");

        let r = rejected("warehouse/WH1/handheld/hh-1", b"{}");
        assert!(r.error.contains("is not warehouse/WH1/handheld/<device>/<kind>"), "{r:?}");
        assert_eq!(r.device.as_deref(), Some("hh-1"));

        let r = rejected("warehouse/WH1/handheld/hh-1/count/extra", b"{}");
        assert!(r.error.contains("topic"), "{r:?}");

        let r = rejected("warehouse/WH1/handheld/hh-1/count", br#"{"id":"not-a-uuid"}"#);
        assert_eq!(r.field.as_deref(), Some("id"));

        let id = "0193a5c2-7d1e-7c4a-9f0e-5b2d8c1a3e47";
        let r =
            rejected("warehouse/WH1/handheld/hh-1/count", format!(r#"{{"id":"{id}","ts":"yesterday"}}"#).as_bytes());
        assert_eq!(r.field.as_deref(), Some("ts"));
        assert_eq!(r.id.unwrap().to_string(), id, "the id is echoed so the handheld can match the answer");

        let r = rejected("warehouse/WH1/handheld/hh-1/count", b"[1,2]");
        assert!(r.error.contains("JSON object"));
    }

    proptest! {
        #[test]
        fn arbitrary_bytes_never_panic(topic in "[a-zA-Z0-9/+#_-]{0,40}", payload in prop::collection::vec(any::<u8>(), 0..200)) {
            let _ = classify(P, &topic, &payload, 100);
            let _ = classify(P, &format!("warehouse/WH1/handheld/{topic}"), &payload, 100);
        }
    }
}
