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
    /// `scan`: a barcode read, as the scanner sent it and as dockhand could interpret it.
    Scan,
    /// `weight`: a scale reading.
    Weight,
    /// `count`: an inventory count of one product at one location.
    Count,
    /// `pick`: quantities picked for a transfer, which it may also validate.
    Pick,
    /// `receipt`: quantities received for an incoming transfer, which it may also validate.
    Receipt,
    /// `pack`: a parcel of a transfer weighed (and optionally labelled).
    Pack,
    /// `device_status`: a device connected, disconnected or in error.
    DeviceStatus,
}

impl Kind {
    pub const ALL: [Kind; 7] =
        [Kind::Scan, Kind::Weight, Kind::Count, Kind::Pick, Kind::Receipt, Kind::Pack, Kind::DeviceStatus];

    pub(crate) fn as_str(self) -> &'static str {
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
pub(crate) struct Text(pub String);

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
pub(crate) struct Date(pub String);

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
pub(crate) struct ProductRef {
    /// The product's barcode (e.g. an EAN-13). Exactly one of `barcode` and `default_code` must be
    /// non-blank; the other is omitted (or blank).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) barcode: Option<String>,
    /// The product's internal reference (Odoo's `default_code`), when it is named that way instead.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) default_code: Option<String>,
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
pub(crate) use firmware_bridge::WeightUnit;

/// A quantity carried in the scanned data with its unit (the scan's `parsed.net_weight`).
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct Measure {
    /// Decimal string with the digits the data encodes (`"1.250"`).
    pub(crate) value: Decimal,
    /// `kg`, `lb` or `oz` from the GS1 AI family (310n, 320n, 357n); free text, not checked on input.
    pub(crate) unit: String,
}

/// The fields a warehouse flow needs, read from the scanned data (the scan's `parsed` object).
/// Each is omitted when the data does not carry it.
#[derive(Debug, Clone, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct ScanParsed {
    /// GTIN-14: AI 01, or an EAN/UPC/ITF-14 left-padded to 14 digits.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) gtin: Option<String>,
    /// SSCC of a logistic unit (AI 00), 18 digits.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) sscc: Option<String>,
    /// Batch or lot number (AI 10).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) lot: Option<String>,
    /// Serial number (AI 21).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) serial: Option<String>,
    /// Expiry date (AI 17), `YYYY-MM-DD`; must be a real calendar date.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) expiry: Option<Date>,
    /// Best-before date (AI 15), `YYYY-MM-DD`; must be a real calendar date.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) best_before: Option<Date>,
    /// Net weight with its unit (AI 310n in kg, 320n in lb, 357n in oz).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) net_weight: Option<Measure>,
    /// Count of items (AI 30, else AI 37) as a decimal string; never negative.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) count: Option<Quantity>,
}

/// The `scan` payload: one barcode read.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ScanPayload {
    /// The scan as received, AIM prefix included (`"]C10109501101530003"`).
    pub(crate) raw: String,
    /// The exact bytes in hex when they are not valid UTF-8 (`raw` is then a lossy rendering).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) raw_hex: Option<String>,
    /// The AIM symbology identifier the scanner prefixed (`"]C1"`); omitted when the scan had none.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) aim: Option<String>,
    /// The symbology by name (`"gs1-128"`, `"ean-13"`, `"qr"`…); omitted when not known.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) symbology: Option<String>,
    /// GS1 application identifier → value as scanned (`{"01": "09501101530003", "17": "271231"}`),
    /// when the data is a GS1 element string or Digital Link; omitted otherwise.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) gs1: Option<BTreeMap<String, String>>,
    /// What dockhand read from the data (GTIN, lot, dates…); omitted when it recognised nothing.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) parsed: Option<ScanParsed>,
}

/// The `weight` payload: one scale reading.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WeightPayload {
    /// The weight as a decimal string (`"12.345"`, trailing zeros kept as the scale's resolution); may be negative.
    pub(crate) value: Decimal,
    /// The unit of `value`, `tare` and `gross`: `kg`, `g`, `lb`, `oz` or `t`.
    pub(crate) unit: WeightUnit,
    /// `false` while the scale reports motion.
    pub(crate) stable: bool,
    /// `true` when `value` is a net weight, `false` when gross; omitted when the scale does not say.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) net: Option<bool>,
    /// The tare as a decimal string; omitted when the scale does not send it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) tare: Option<Decimal>,
    /// The gross weight as a decimal string (a gross reading, or net + tare); omitted when not known.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) gross: Option<Decimal>,
}

/// The `count` payload: how much of a product a location holds.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CountPayload {
    /// The product counted: `{"barcode": …}` or `{"default_code": …}` (a bare string is a barcode).
    pub(crate) product: ProductRef,
    /// The location counted, by barcode or full name (`WH/Stock/A1`); must not be blank.
    pub(crate) location: Text,
    /// The quantity found there, an absolute count (not a change) as a decimal string; never negative.
    pub(crate) quantity: Quantity,
    /// The lot or serial number counted; omitted for a product without lots.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) lot: Option<String>,
    /// The package (name or SSCC) the counted stock is in; omitted when loose.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) package: Option<String>,
    /// The unit of measure `quantity` is in, as the handheld names it; passed on as is (nothing is converted).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) uom: Option<String>,
    /// Who counted, as the handheld names them; free text.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) operator: Option<String>,
}

/// What happens to the rest of a transfer validated with less than its demand (a pick's `backorder`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub(crate) enum Backorder {
    /// `create`: a backorder is made for what was not picked.
    Create,
    /// `none`: the transfer is closed without a backorder.
    None,
}

/// A non-empty list: a pick or receipt without lines means nothing.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize)]
#[serde(transparent)]
pub(crate) struct Lines<T>(pub Vec<T>);

impl<'de, T: Deserialize<'de>> Deserialize<'de> for Lines<T> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let v = Vec::<T>::deserialize(d)?;
        if v.is_empty() {
            return Err(serde::de::Error::custom("needs at least one line"));
        }
        Ok(Lines(v))
    }
}

/// One line of a `pick`: a product and how much of it was picked.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct PickLine {
    /// The product picked: `{"barcode": …}` or `{"default_code": …}` (a bare string is a barcode).
    pub(crate) product: ProductRef,
    /// The quantity picked, absolute (not added to what the line had), as a decimal string; never negative.
    pub(crate) quantity: Quantity,
    /// The lot picked from; omitted for a product without lots.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) lot: Option<String>,
    /// The serial number picked; the Odoo sink takes it as the lot name when `lot` is omitted.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) serial: Option<String>,
}

/// The `pick` payload: what was picked for a transfer.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PickPayload {
    /// The transfer's name (`WH/OUT/00042`); must not be blank.
    pub(crate) picking: Text,
    /// The lines picked; at least one.
    pub(crate) lines: Lines<PickLine>,
    /// `true` to validate the transfer once the lines are set; omitted or `false` only records them.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) complete: Option<bool>,
    /// What becomes of the rest when `complete` validates the transfer short: `"create"` or `"none"`;
    /// omitted, the Odoo sink's own `backorder` setting decides.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) backorder: Option<Backorder>,
    /// The shipping weight of the transfer as a decimal string; no unit travels with it (Odoo takes it in
    /// its weight unit). Omitted when not weighed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) weight: Option<Decimal>,
    /// Who picked, as the handheld names them; free text.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) operator: Option<String>,
}

/// One line of a `receipt`: a product and how much of it arrived.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct ReceiptLine {
    /// The product received: `{"barcode": …}` or `{"default_code": …}` (a bare string is a barcode).
    pub(crate) product: ProductRef,
    /// The quantity received, absolute (not added to what the line had), as a decimal string; never negative.
    pub(crate) quantity: Quantity,
    /// The lot received, new or existing; omitted for a product without lots.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) lot: Option<String>,
    /// The expiry date of `lot`, `YYYY-MM-DD` (a real calendar date); the Odoo sink sets it on a lot it creates.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) expiry: Option<Date>,
}

/// The `receipt` payload: what arrived for an incoming transfer.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ReceiptPayload {
    /// The transfer's name (`WH/IN/00007`); must not be blank.
    pub(crate) picking: Text,
    /// The lines received; at least one.
    pub(crate) lines: Lines<ReceiptLine>,
    /// `true` to validate the transfer once the lines are set; omitted or `false` only records them.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) complete: Option<bool>,
    /// Who received, as the handheld names them; free text.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) operator: Option<String>,
}

/// The `pack` payload: a parcel of a transfer, weighed.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PackPayload {
    /// The transfer's name (`WH/OUT/00042`); must not be blank.
    pub(crate) picking: Text,
    /// The package weighed, by SSCC or name; omitted when the weight is the transfer's alone.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) package: Option<String>,
    /// The weight as a decimal string (`"2.480"`); no unit travels with it: stations send kg, and Odoo
    /// takes it in its weight unit.
    pub(crate) weight: Decimal,
    /// Whether a parcel label goes with it (a pack station sets `true` when it queues one); omitted when
    /// not known.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) label_printed: Option<bool>,
}

/// A device's state in a `device_status` event.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub(crate) enum DeviceState {
    /// `connected`: the device is reachable and working.
    Connected,
    /// `disconnected`: the port or connection is gone (unplugged, refused, closed).
    Disconnected,
    /// `error`: the link is up but the device does not answer, or it reports a fault (a printer out of paper).
    Error,
}

/// The `device_status` payload: a device's state changed.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DeviceStatusPayload {
    /// The device whose state changed, by name (dockhand's own devices: as configured); must not be blank.
    pub(crate) device: Text,
    /// `connected`, `disconnected` or `error`.
    pub(crate) state: DeviceState,
    /// Why, in plain words (the port's error, the printer's problems, `ready`); omitted when there is none.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) detail: Option<String>,
}

/// A validated payload; its variant always matches the event's `kind`.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize)]
#[serde(untagged)]
pub enum Payload {
    /// The payload of a `scan` event.
    Scan(ScanPayload),
    /// The payload of a `weight` event.
    Weight(WeightPayload),
    /// The payload of a `count` event.
    Count(CountPayload),
    /// The payload of a `pick` event.
    Pick(PickPayload),
    /// The payload of a `receipt` event.
    Receipt(ReceiptPayload),
    /// The payload of a `pack` event.
    Pack(PackPayload),
    /// The payload of a `device_status` event.
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
