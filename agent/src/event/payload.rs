//! The `payload` of each event kind (contracts.md §1), with the required fields enforced by the
//! types themselves: a payload that deserialises is a valid payload.

use std::collections::BTreeMap;
use std::fmt;

use serde::{Deserialize, Deserializer, Serialize};

use super::decimal::{Decimal, Quantity};
use super::error::FieldError;

/// What an event is about. The string forms are the `kind` field and the last MQTT topic level.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Kind {
    Scan,
    Weight,
    Count,
    Pick,
    Receipt,
    Pack,
    DeviceStatus,
}

impl Kind {
    pub const ALL: [Kind; 7] =
        [Kind::Scan, Kind::Weight, Kind::Count, Kind::Pick, Kind::Receipt, Kind::Pack, Kind::DeviceStatus];

    pub fn as_str(self) -> &'static str {
        match self {
            Kind::Scan => "scan",
            Kind::Weight => "weight",
            Kind::Count => "count",
            Kind::Pick => "pick",
            Kind::Receipt => "receipt",
            Kind::Pack => "pack",
            Kind::DeviceStatus => "device_status",
        }
    }

    pub fn parse(s: &str) -> Option<Kind> {
        Kind::ALL.into_iter().find(|k| k.as_str() == s)
    }
}

impl fmt::Display for Kind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A string that must carry something: an empty picking name or location is a bug upstream.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize)]
#[serde(transparent)]
pub struct Text(pub String);

impl<'de> Deserialize<'de> for Text {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        if s.trim().is_empty() {
            return Err(serde::de::Error::custom("must not be empty"));
        }
        Ok(Text(s))
    }
}

impl fmt::Display for Text {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// A calendar date, `YYYY-MM-DD`.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize)]
#[serde(transparent)]
pub struct Date(pub String);

impl<'de> Deserialize<'de> for Date {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        let format = time::macros::format_description!("[year]-[month]-[day]");
        time::Date::parse(&s, &format)
            .map_err(|_| serde::de::Error::custom(format!("`{s}` is not a date (expected YYYY-MM-DD)")))?;
        Ok(Date(s))
    }
}

/// A product, by barcode or by internal reference. A bare string is taken as a barcode.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize)]
pub struct ProductRef {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub barcode: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub default_code: Option<String>,
}

impl<'de> Deserialize<'de> for ProductRef {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        #[derive(Deserialize)]
        #[serde(untagged)]
        enum Raw {
            Barcode(String),
            Fields { barcode: Option<String>, default_code: Option<String> },
        }
        let bad =
            || serde::de::Error::custom("expected {\"barcode\": \"...\"} or {\"default_code\": \"...\"} (exactly one)");
        let product = match Raw::deserialize(d).map_err(|_| bad())? {
            Raw::Barcode(b) => ProductRef { barcode: Some(b), default_code: None },
            Raw::Fields { barcode, default_code } => ProductRef { barcode, default_code },
        };
        let filled = |o: &Option<String>| o.as_ref().is_some_and(|s| !s.trim().is_empty());
        if filled(&product.barcode) == filled(&product.default_code) {
            return Err(bad());
        }
        Ok(product)
    }
}

/// The one weight unit type, shared with the device codecs.
pub use firmware_bridge::WeightUnit;

#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Measure {
    pub value: Decimal,
    pub unit: String,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ScanParsed {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub gtin: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sscc: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub lot: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub serial: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub expiry: Option<Date>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub best_before: Option<Date>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub net_weight: Option<Measure>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub count: Option<Quantity>,
}

#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ScanPayload {
    pub raw: String,
    /// The exact bytes in hex when they are not valid UTF-8 (`raw` is then a lossy rendering).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub raw_hex: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub aim: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub symbology: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub gs1: Option<BTreeMap<String, String>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub parsed: Option<ScanParsed>,
}

#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WeightPayload {
    pub value: Decimal,
    pub unit: WeightUnit,
    pub stable: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub net: Option<bool>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tare: Option<Decimal>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub gross: Option<Decimal>,
}

#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CountPayload {
    pub product: ProductRef,
    pub location: Text,
    pub quantity: Quantity,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub lot: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub package: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub uom: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub operator: Option<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Backorder {
    Create,
    None,
}

/// A non-empty list: a pick or receipt without lines means nothing.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize)]
#[serde(transparent)]
pub struct Lines<T>(pub Vec<T>);

impl<'de, T: Deserialize<'de>> Deserialize<'de> for Lines<T> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let v = Vec::<T>::deserialize(d)?;
        if v.is_empty() {
            return Err(serde::de::Error::custom("needs at least one line"));
        }
        Ok(Lines(v))
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PickLine {
    pub product: ProductRef,
    pub quantity: Quantity,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub lot: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub serial: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PickPayload {
    pub picking: Text,
    pub lines: Lines<PickLine>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub complete: Option<bool>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub backorder: Option<Backorder>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub weight: Option<Decimal>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub operator: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ReceiptLine {
    pub product: ProductRef,
    pub quantity: Quantity,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub lot: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub expiry: Option<Date>,
}

#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ReceiptPayload {
    pub picking: Text,
    pub lines: Lines<ReceiptLine>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub complete: Option<bool>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub operator: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PackPayload {
    pub picking: Text,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub package: Option<String>,
    pub weight: Decimal,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub label_printed: Option<bool>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum DeviceState {
    Connected,
    Disconnected,
    Error,
}

#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DeviceStatusPayload {
    pub device: Text,
    pub state: DeviceState,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub detail: Option<String>,
}

/// A validated payload; its variant always matches the event's `kind`.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize)]
#[serde(untagged)]
pub enum Payload {
    Scan(ScanPayload),
    Weight(WeightPayload),
    Count(CountPayload),
    Pick(PickPayload),
    Receipt(ReceiptPayload),
    Pack(PackPayload),
    DeviceStatus(DeviceStatusPayload),
}

impl Payload {
    pub fn kind(&self) -> Kind {
        match self {
            Payload::Scan(_) => Kind::Scan,
            Payload::Weight(_) => Kind::Weight,
            Payload::Count(_) => Kind::Count,
            Payload::Pick(_) => Kind::Pick,
            Payload::Receipt(_) => Kind::Receipt,
            Payload::Pack(_) => Kind::Pack,
            Payload::DeviceStatus(_) => Kind::DeviceStatus,
        }
    }

    /// Validates `value` as the payload of `kind`; the error names the offending field.
    pub fn from_json(kind: Kind, value: serde_json::Value) -> Result<Payload, FieldError> {
        fn typed<T: serde::de::DeserializeOwned>(v: serde_json::Value) -> Result<T, FieldError> {
            serde_path_to_error::deserialize(v).map_err(FieldError::from_path_error)
        }
        if !value.is_object() {
            return Err(FieldError::new("", "the payload must be a JSON object"));
        }
        Ok(match kind {
            Kind::Scan => Payload::Scan(typed(value)?),
            Kind::Weight => Payload::Weight(typed(value)?),
            Kind::Count => Payload::Count(typed(value)?),
            Kind::Pick => Payload::Pick(typed(value)?),
            Kind::Receipt => Payload::Receipt(typed(value)?),
            Kind::Pack => Payload::Pack(typed(value)?),
            Kind::DeviceStatus => Payload::DeviceStatus(typed(value)?),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn err(kind: Kind, v: serde_json::Value) -> FieldError {
        Payload::from_json(kind, v).unwrap_err()
    }

    #[test]
    fn valid_pick_round_trips() {
        let v = json!({"picking": "WH/OUT/00042", "lines": [{"product": {"barcode": "4006381333931"}, "quantity": "2"}], "complete": true, "backorder": "none"});
        let p = Payload::from_json(Kind::Pick, v.clone()).unwrap();
        assert_eq!(serde_json::to_value(&p).unwrap(), v);
    }

    #[test]
    fn errors_name_the_field_path() {
        let e = err(Kind::Pick, json!({"picking": "WH/OUT/1", "lines": [{"product": "123", "quantity": "-2"}]}));
        assert_eq!(e.field, "lines[0].quantity");
        assert!(e.message.contains("negative"), "{e}");

        let e = err(Kind::Pick, json!({"picking": "WH/OUT/1", "lines": [{"product": "123"}]}));
        assert_eq!(e.field, "lines[0].quantity");
        assert_eq!(e.message, "required field is missing");

        let e = err(Kind::Count, json!({"product": {"barcode": "1"}, "location": "WH/Stock", "quantity": 1.5}));
        assert_eq!(e.field, "quantity");
        assert!(e.message.contains("strings"), "{e}");

        let e = err(Kind::Count, json!({"product": {"barcode": "1"}, "location": "WH/Stock", "quantiy": "1"}));
        assert_eq!(e.field, "quantiy");

        let e = err(Kind::Receipt, json!({"picking": "WH/IN/7", "lines": []}));
        assert_eq!(e.field, "lines");

        let e = err(
            Kind::Receipt,
            json!({"picking": "WH/IN/7", "lines": [{"product": "1", "quantity": "1", "expiry": "2026-13-40"}]}),
        );
        assert_eq!(e.field, "lines[0].expiry");

        let e = err(Kind::Weight, json!({"value": "1.2", "unit": "stone", "stable": true}));
        assert_eq!(e.field, "unit");

        let e = err(Kind::Pack, json!({"picking": "", "weight": "1"}));
        assert_eq!(e.field, "picking");

        let e = err(Kind::Count, json!({"product": {}, "location": "A", "quantity": "1"}));
        assert_eq!(e.field, "product");

        let e = err(Kind::Scan, json!("just a string"));
        assert_eq!(e.field, "");
    }

    #[test]
    fn bare_string_product_is_a_barcode() {
        let p =
            Payload::from_json(Kind::Count, json!({"product": "4006381333931", "location": "WH/Stock", "quantity": 3}))
                .unwrap();
        let Payload::Count(c) = p else { panic!("wrong variant") };
        assert_eq!(c.product.barcode.as_deref(), Some("4006381333931"));
        assert_eq!(c.quantity.0.as_str(), "3");
    }
}

#[cfg(test)]
mod properties {
    use super::*;
    use proptest::prelude::*;

    fn json_value() -> impl Strategy<Value = serde_json::Value> {
        let leaf = prop_oneof![
            Just(serde_json::Value::Null),
            any::<bool>().prop_map(serde_json::Value::from),
            any::<i64>().prop_map(serde_json::Value::from),
            any::<f64>().prop_map(serde_json::Value::from),
            ".{0,12}".prop_map(serde_json::Value::from),
            prop_oneof![Just("WH/OUT/1"), Just("-1"), Just("2026-02-30"), Just("12.5")]
                .prop_map(serde_json::Value::from),
        ];
        leaf.prop_recursive(4, 40, 6, |inner| {
            let keys = prop_oneof![
                Just("product".to_string()),
                Just("quantity".to_string()),
                Just("lines".to_string()),
                Just("picking".to_string()),
                Just("barcode".to_string()),
                Just("value".to_string()),
                "[a-z_]{1,8}",
            ];
            prop_oneof![
                prop::collection::vec(inner.clone(), 0..4).prop_map(serde_json::Value::from),
                prop::collection::btree_map(keys, inner, 0..6)
                    .prop_map(|m| serde_json::Value::Object(m.into_iter().collect())),
            ]
        })
    }

    proptest! {
        /// Whatever a handheld sends, validation answers with a payload or a field error.
        #[test]
        fn arbitrary_json_never_panics_and_valid_payloads_round_trip(v in json_value(), k in 0usize..7) {
            let kind = Kind::ALL[k];
            if let Ok(p) = Payload::from_json(kind, v) {
                let again = Payload::from_json(kind, serde_json::to_value(&p).unwrap()).unwrap();
                prop_assert_eq!(again, p);
            }
        }
    }
}
