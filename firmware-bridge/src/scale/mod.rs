//! Scales: one decoder (and command encoder) per serial protocol, all producing the common
//! [`ScaleReading`] — a [`Weight`] (the `weight` event payload of `design/contracts.md` §1) or a
//! [`ScaleCondition`] (motion, overload, underload, device error).
//!
//! - [`mt_sics`]: Mettler Toledo MT-SICS level 0/1 (`S`, `SI`, `SIR`, `Z`, `T`…).
//! - [`toledo_continuous`]: Toledo 8142-style 18-byte continuous frames (streaming decoder).
//! - [`toledo_8217`]: Toledo 8217 demand mode (`W` → `<STX>01.250<CR>`).
//! - [`sma`]: SMA standard serial protocol (`<LF>W<CR>`).
//! - [`nci`]: NCI / Weigh-Tronix SCP-01 and SCP-02.
//! - [`cas`]: CAS 22- and 18-byte continuous lines.
//! - [`pattern`]: a configurable template for everything else.
//! - [`stable`]: stable-weight capture (N equal stable readings within a timeout).
//! - [`settle`]: "the scale settled on a new weight" (weight events outside stations).
//! - [`stream`]: a scale's byte stream → frames → readings, for any protocol above.
//!
//! Weights are decimal strings; every byte is masked to 7 bits where the protocol is 7-bit, so a
//! 7E1 device read as 8N1 decodes the same.

pub mod cas;
pub mod mt_sics;
pub mod nci;
pub mod pattern;
pub mod settle;
pub mod sma;
pub mod stable;
pub mod stream;
pub mod toledo_8217;
pub mod toledo_continuous;

use serde::{Deserialize, Serialize};
use thiserror::Error;

use crate::decimal;

/// A weight unit of the `weight` payload.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum WeightUnit {
    /// Kilogram.
    Kg,
    /// Gram.
    G,
    /// Pound.
    Lb,
    /// Ounce (avoirdupois).
    Oz,
    /// Metric tonne.
    T,
}

impl WeightUnit {
    /// The payload spelling: `kg`, `g`, `lb`, `oz`, `t`.
    pub fn as_str(self) -> &'static str {
        match self {
            WeightUnit::Kg => "kg",
            WeightUnit::G => "g",
            WeightUnit::Lb => "lb",
            WeightUnit::Oz => "oz",
            WeightUnit::T => "t",
        }
    }

    /// Parses a unit as scales print it, case-insensitively and ignoring surrounding spaces:
    /// `kg`, `g`, `lb`/`lbs`, `oz`, `t`.
    pub fn parse(text: &str) -> Option<WeightUnit> {
        let t = text.trim_matches(' ');
        let unit = if t.eq_ignore_ascii_case("kg") {
            WeightUnit::Kg
        } else if t.eq_ignore_ascii_case("g") {
            WeightUnit::G
        } else if t.eq_ignore_ascii_case("lb") || t.eq_ignore_ascii_case("lbs") {
            WeightUnit::Lb
        } else if t.eq_ignore_ascii_case("oz") {
            WeightUnit::Oz
        } else if t.eq_ignore_ascii_case("t") {
            WeightUnit::T
        } else {
            return None;
        };
        Some(unit)
    }

    /// How many kilograms one of this unit is, exactly (the pound is defined as 0.45359237 kg,
    /// the ounce as 1/16 of it).
    pub fn kg_per_unit(self) -> decimal::Decimal {
        let text = match self {
            WeightUnit::Kg => "1",
            WeightUnit::G => "0.001",
            WeightUnit::Lb => "0.45359237",
            WeightUnit::Oz => "0.028349523125",
            WeightUnit::T => "1000",
        };
        decimal::Decimal::parse(text).expect("a constant decimal")
    }
}

impl std::fmt::Display for WeightUnit {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A weight: the `weight` event payload.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Weight {
    /// Decimal string, e.g. `"12.345"` or `"-0.89"`.
    pub value: String,
    /// Unit.
    pub unit: WeightUnit,
    /// `false` while the scale reports motion.
    pub stable: bool,
    /// `Some(true)` for a net weight, `Some(false)` for gross, `None` when the protocol does not say.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub net: Option<bool>,
    /// Tare, when the protocol sends it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tare: Option<String>,
    /// Gross, when known (the value of a gross reading, or net + tare).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub gross: Option<String>,
}

impl Weight {
    /// A weight with only value, unit and stability known.
    pub fn new(value: String, unit: WeightUnit, stable: bool) -> Weight {
        Weight { value, unit, stable, net: None, tare: None, gross: None }
    }

    /// The value as a [`decimal::Decimal`] (`None` only if a codec built a malformed value).
    pub fn decimal(&self) -> Option<decimal::Decimal> {
        decimal::Decimal::parse(&self.value).ok()
    }

    /// The value in kilograms, exact (a pound reading gives all its digits: `5.00 lb` is
    /// `2.2679618500 kg`); round for display with [`decimal::Decimal::with_decimals`].
    pub fn in_kg(&self) -> Option<decimal::Decimal> {
        self.decimal()?.checked_mul(&self.unit.kg_per_unit())
    }

    /// Marks the weight gross (`gross` = `value`) or net (`gross` = `value` + `tare` when the
    /// tare is known).
    pub fn with_net(mut self, net: bool) -> Weight {
        self.net = Some(net);
        self.gross = if net {
            self.tare.as_deref().and_then(|t| decimal::add(&self.value, t))
        } else {
            Some(self.value.clone())
        };
        self
    }
}

/// A state in which the scale gives no usable weight.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ScaleCondition {
    /// The load is moving; no stable weight.
    Motion,
    /// Above capacity.
    Overload,
    /// Below zero / under range.
    Underload,
    /// The scale reports an error (text from the protocol, e.g. `"EEPROM error"`).
    DeviceError(String),
}

/// What a scale said, in protocol-independent terms.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ScaleReading {
    /// A weight (possibly unstable).
    Weight(Weight),
    /// No weight, because of this condition.
    Condition(ScaleCondition),
}

/// Why bytes from a scale could not be decoded.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum ScaleError {
    /// Nothing to decode.
    #[error("{protocol}: empty reply")]
    Empty {
        /// Protocol name.
        protocol: &'static str,
    },
    /// The bytes do not have the protocol's shape.
    #[error("{protocol}: malformed reply at byte {pos}: {reason}")]
    Malformed {
        /// Protocol name.
        protocol: &'static str,
        /// Offset of the problem.
        pos: usize,
        /// What is wrong.
        reason: &'static str,
    },
    /// A frame whose checksum does not add up.
    #[error("{protocol}: checksum mismatch (sum {sum:#04x})")]
    Checksum {
        /// Protocol name.
        protocol: &'static str,
        /// The 7-bit sum that should have been 0.
        sum: u8,
    },
    /// A weight field that is not a number.
    #[error("{protocol}: invalid weight {text:?}")]
    InvalidWeight {
        /// Protocol name.
        protocol: &'static str,
        /// The field.
        text: String,
    },
    /// A unit this crate does not know.
    #[error("{protocol}: unknown unit {unit:?}")]
    UnknownUnit {
        /// Protocol name.
        protocol: &'static str,
        /// The unit text.
        unit: String,
    },
}

/// Masks the parity bit off every byte (7-bit protocols read as 8N1).
pub(crate) fn mask7(bytes: &[u8]) -> Vec<u8> {
    bytes.iter().map(|b| b & 0x7F).collect()
}

/// Text of 7-bit bytes (lossless after [`mask7`]).
pub(crate) fn ascii(bytes: &[u8]) -> String {
    bytes.iter().map(|&b| char::from(b & 0x7F)).collect()
}

/// Normalises a weight field or fails with [`ScaleError::InvalidWeight`].
pub(crate) fn weight_value(protocol: &'static str, text: &str) -> Result<String, ScaleError> {
    decimal::normalize(text).ok_or_else(|| ScaleError::InvalidWeight { protocol, text: text.to_owned() })
}

/// Parses a unit or fails with [`ScaleError::UnknownUnit`].
pub(crate) fn unit(protocol: &'static str, text: &str) -> Result<WeightUnit, ScaleError> {
    WeightUnit::parse(text).ok_or_else(|| ScaleError::UnknownUnit { protocol, unit: text.to_owned() })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn units_parse_case_insensitively() {
        assert_eq!(WeightUnit::parse("kg"), Some(WeightUnit::Kg));
        assert_eq!(WeightUnit::parse("KG "), Some(WeightUnit::Kg));
        assert_eq!(WeightUnit::parse("LB"), Some(WeightUnit::Lb));
        assert_eq!(WeightUnit::parse("lbs"), Some(WeightUnit::Lb));
        assert_eq!(WeightUnit::parse("g"), Some(WeightUnit::G));
        assert_eq!(WeightUnit::parse("oz"), Some(WeightUnit::Oz));
        assert_eq!(WeightUnit::parse("t"), Some(WeightUnit::T));
        assert_eq!(WeightUnit::parse("ct"), None);
    }

    #[test]
    fn weight_serializes_as_the_contract_payload() {
        let w =
            Weight { tare: Some("6.00".into()), ..Weight::new("-0.89".into(), WeightUnit::Kg, true) }.with_net(true);
        assert_eq!(
            serde_json::to_value(&w).unwrap(),
            serde_json::json!({"value": "-0.89", "unit": "kg", "stable": true, "net": true, "tare": "6.00", "gross": "5.11"})
        );
        let w = Weight::new("12.345".into(), WeightUnit::G, false);
        assert_eq!(
            serde_json::to_value(&w).unwrap(),
            serde_json::json!({"value": "12.345", "unit": "g", "stable": false})
        );
    }
}
