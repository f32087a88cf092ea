//! The canonical event envelope (`dockhand.event/1`, contracts.md §1): what every source produces,
//! what the store keeps byte for byte, and what every sink delivers.
//!
//! An [`Event`] is built by a source before it is stored; the store assigns `seq` and serialises
//! it once into the envelope JSON that sinks deliver unchanged ([`Envelope`] is the parsed form).

mod decimal;
mod error;
mod payload;
mod sample;

pub(crate) use decimal::Decimal;
pub(crate) use error::FieldError;
pub use payload::*;
pub use sample::sample_event;

use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::timestamp::Timestamp;

pub(crate) const SCHEMA: &str = "dockhand.event/1";

/// The idempotency key of an event: supplied by a handheld (any UUID) or a UUIDv7 from dockhand.
pub(crate) type EventId = Uuid;

/// A fresh, time-ordered event id.
pub(crate) fn new_event_id() -> EventId {
    Uuid::now_v7()
}

/// How an event reached dockhand: the `source.transport` value, in lowercase (`"mqtt"`, `"serial"`…).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub(crate) enum Transport {
    /// `mqtt`: a handheld's MQTT message, or a device attached through a firmware-bridge (which talks MQTT).
    Mqtt,
    /// `serial`: a device on one of the gateway's own serial ports.
    Serial,
    /// `tcp`: a device the gateway reaches over TCP (a networked scale, scanner or printer).
    Tcp,
    /// `station`: made by a station from its devices' input; `source.station` names the station.
    Station,
    /// `internal`: made by dockhand itself rather than received (e.g. the sample events of `dockhand bench`).
    Internal,
}

#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
/// Where an event came from (the envelope's `source` object).
pub(crate) struct Source {
    /// How it reached dockhand (`"mqtt"`, `"serial"`, `"tcp"`, `"station"`, `"internal"`).
    pub(crate) transport: Transport,
    /// The device it came from: the `<device>` level of a handheld's MQTT topic, the configured device
    /// name, or the scanner of the station that made it.
    pub(crate) device: String,
    /// The station whose cycle made the event; `null` (the key is always present) for any other event.
    pub(crate) station: Option<String>,
}

/// An event before the store has given it a place (`seq`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Event {
    /// The idempotency key: the UUID a handheld (or firmware-bridge) sent with it, else a UUIDv7 from
    /// dockhand. It stays the same across retries and replays; receivers dedup by it.
    pub id: EventId,
    /// The id of the gateway that stored the event (`[gateway] id`, e.g. `wh1-gw01`).
    pub(crate) gateway: String,
    /// The site (warehouse) code of that gateway (`[gateway] site`, e.g. `WH1`).
    pub(crate) site: String,
    /// Where the event came from.
    pub(crate) source: Source,
    /// The ordering key: the device name, or the station name for a station's events.
    pub(crate) partition: String,
    /// When it happened, RFC 3339 UTC with milliseconds: a handheld's `ts` or a firmware-bridge's clock
    /// when given (any offset is converted to UTC), else the time dockhand got it.
    pub(crate) occurred_at: Timestamp,
    /// When dockhand got it (for a station's event, when the station made it), RFC 3339 UTC with milliseconds.
    pub(crate) received_at: Timestamp,
    /// Shared by every event of one station cycle (a UUID per cycle); `null` (the key is always present)
    /// for events not made by a station.
    pub(crate) correlation_id: Option<String>,
    /// The payload of the event's `kind` (which the envelope derives from it).
    pub payload: Payload,
}

impl Event {
    pub(crate) fn kind(&self) -> Kind {
        self.payload.kind()
    }

    /// The envelope JSON for this event at position `seq`, exactly as sinks will receive it.
    pub fn to_envelope_json(&self, seq: u64) -> String {
        let view = EnvelopeRef {
            id: &self.id,
            schema: SCHEMA,
            kind: self.kind(),
            gateway: &self.gateway,
            site: &self.site,
            source: &self.source,
            partition: &self.partition,
            seq,
            occurred_at: self.occurred_at,
            received_at: self.received_at,
            correlation_id: self.correlation_id.as_deref(),
            payload: &self.payload,
        };
        // Serialising plain data with string keys into a String cannot fail.
        serde_json::to_string(&view).unwrap_or_default()
    }
}

/// An event serialised once, on the thread that produced it, before it reaches the store's
/// single writer thread: the writer only splices in the seq it assigns. Serialising there was a
/// third of the writer's time per event, and the writer is the one part of ingest that cannot run
/// on both cores.
#[derive(Debug, Clone)]
pub(crate) struct PreparedEvent {
    pub(crate) event: Event,
    /// The envelope JSON before and after the seq number; `None` when the split point was not
    /// found (the writer then serialises in full).
    parts: Option<(String, String)>,
}

impl PreparedEvent {
    pub(crate) fn new(event: Event) -> PreparedEvent {
        let text = event.to_envelope_json(0);
        // The first `,"seq":0,` is the envelope's own: every field before it is typed with fixed
        // keys, and a string value cannot hold an unescaped quote.
        const MARK: &str = ",\"seq\":0,";
        let parts = text.find(MARK).map(|at| {
            let head = text[..at + MARK.len() - 2].to_owned();
            let tail = text[at + MARK.len() - 1..].to_owned();
            (head, tail)
        });
        PreparedEvent { event, parts }
    }

    /// The envelope JSON at `seq`, byte for byte what [`Event::to_envelope_json`] gives.
    pub(crate) fn body(&self, seq: u64) -> String {
        match &self.parts {
            Some((head, tail)) => {
                let mut body = String::with_capacity(head.len() + tail.len() + 20);
                body.push_str(head);
                body.push_str(&seq.to_string());
                body.push_str(tail);
                body
            }
            None => self.event.to_envelope_json(seq),
        }
    }

    /// Bytes of the envelope JSON, give or take the seq's digits.
    pub(crate) fn body_len(&self) -> usize {
        self.parts.as_ref().map_or(512, |(h, t)| h.len() + t.len() + 20)
    }
}

/// Field order follows contracts.md so the JSON reads the way the contract shows it.
#[derive(Serialize)]
struct EnvelopeRef<'a> {
    id: &'a Uuid,
    schema: &'static str,
    kind: Kind,
    gateway: &'a str,
    site: &'a str,
    source: &'a Source,
    partition: &'a str,
    seq: u64,
    occurred_at: Timestamp,
    received_at: Timestamp,
    correlation_id: Option<&'a str>,
    payload: &'a Payload,
}

/// A stored event read back and parsed (for sinks that need the fields, and for tools).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Envelope {
    /// The event's place in this gateway's store: starts at 1, strictly increasing, never reused.
    pub seq: u64,
    /// The event itself; parsing checked `schema` and validated its payload against `kind`.
    pub event: Event,
}

#[derive(Debug, thiserror::Error)]
pub enum EnvelopeError {
    #[error("envelope is not valid JSON: {0}")]
    Json(#[from] serde_json::Error),
    #[error("unsupported schema `{0}` (this dockhand reads {SCHEMA})")]
    Schema(String),
    #[error("invalid payload: {0}")]
    Payload(#[from] FieldError),
}

impl Envelope {
    pub fn parse(json: &str) -> Result<Envelope, EnvelopeError> {
        #[derive(Deserialize)]
        struct Raw {
            id: Uuid,
            schema: String,
            kind: Kind,
            gateway: String,
            site: String,
            source: Source,
            partition: String,
            seq: u64,
            occurred_at: Timestamp,
            received_at: Timestamp,
            correlation_id: Option<String>,
            payload: serde_json::Value,
        }
        let raw: Raw = serde_json::from_str(json)?;
        if raw.schema != SCHEMA {
            return Err(EnvelopeError::Schema(raw.schema));
        }
        let payload = Payload::from_json(raw.kind, raw.payload)?;
        Ok(Envelope {
            seq: raw.seq,
            event: Event {
                id: raw.id,
                gateway: raw.gateway,
                site: raw.site,
                source: raw.source,
                partition: raw.partition,
                occurred_at: raw.occurred_at,
                received_at: raw.received_at,
                correlation_id: raw.correlation_id,
                payload,
            },
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    pub(crate) fn sample_count() -> Event {
        Event {
            id: "0193a5c2-7d1e-7c4a-9f0e-5b2d8c1a3e47".parse().unwrap(),
            gateway: "wh1-gw01".into(),
            site: "WH1".into(),
            source: Source { transport: Transport::Mqtt, device: "hh-17".into(), station: None },
            partition: "hh-17".into(),
            occurred_at: Timestamp::parse("2026-11-23T15:02:11.120Z").unwrap(),
            received_at: Timestamp::parse("2026-11-23T15:02:11.131Z").unwrap(),
            correlation_id: None,
            payload: Payload::from_json(
                Kind::Count,
                json!({"product": {"barcode": "4006381333931"}, "location": "WH/Stock/A1", "quantity": "12"}),
            )
            .unwrap(),
        }
    }

    #[test]
    fn a_prepared_event_is_byte_for_byte_the_envelope_at_any_seq() {
        let mut event = sample_count();
        // Strings that look like the split point must not fool it.
        event.partition = r#"p,"seq":0,x"#.into();
        event.source.device = "seq".into();
        let prepared = PreparedEvent::new(event.clone());
        for seq in [0, 1, 9, 10, 12_345, u64::MAX] {
            assert_eq!(prepared.body(seq), event.to_envelope_json(seq));
        }
        assert!(prepared.body_len() >= event.to_envelope_json(0).len());
    }

    #[test]
    fn envelope_matches_the_contract_example() {
        let text = sample_count().to_envelope_json(18231);
        let v: serde_json::Value = serde_json::from_str(&text).unwrap();
        assert_eq!(v["schema"], "dockhand.event/1");
        assert_eq!(v["kind"], "count");
        assert_eq!(v["seq"], 18231);
        assert_eq!(v["occurred_at"], "2026-11-23T15:02:11.120Z");
        assert_eq!(v["source"], json!({"transport": "mqtt", "device": "hh-17", "station": null}));
        assert_eq!(v["correlation_id"], serde_json::Value::Null);
        assert_eq!(v["payload"]["quantity"], "12");
        // The key order of the contract is kept.
        assert!(text.starts_with("{\"id\":\"0193a5c2-7d1e-7c4a-9f0e-5b2d8c1a3e47\",\"schema\""));
    }

    #[test]
    fn envelope_parses_back_to_the_same_event() {
        let event = sample_count();
        let parsed = Envelope::parse(&event.to_envelope_json(7)).unwrap();
        assert_eq!(parsed.seq, 7);
        assert_eq!(parsed.event, event);
    }

    #[test]
    fn new_ids_are_version_7_and_increase() {
        let a = new_event_id();
        let b = new_event_id();
        assert_eq!(a.get_version_num(), 7);
        assert!(b > a);
    }
}
