//! Quantities and weights travel as decimal strings (`"12.345"`), never floats, so that a
//! quantity counted on the floor arrives in Odoo digit for digit.

use std::fmt;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// A base-10 number kept as its canonical text: optional `-`, digits, optional `.` and digits.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Decimal(String);

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum DecimalError {
    #[error("`{0}` is not a decimal number (expected e.g. \"12.5\")")]
    Syntax(String),
    #[error("must not be negative")]
    Negative,
}

impl Decimal {
    pub fn parse(text: &str) -> Result<Self, DecimalError> {
        let body = text.strip_prefix('-').unwrap_or(text);
        let (int, frac) = match body.split_once('.') {
            Some((i, f)) => (i, Some(f)),
            None => (body, None),
        };
        let digits = |s: &str| !s.is_empty() && s.len() <= 30 && s.bytes().all(|b| b.is_ascii_digit());
        if !digits(int) || frac.is_some_and(|f| !digits(f)) {
            return Err(DecimalError::Syntax(text.chars().take(40).collect()));
        }
        Ok(Self(text.to_string()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    pub fn is_negative(&self) -> bool {
        self.0.starts_with('-') && self.0.bytes().any(|b| (b'1'..=b'9').contains(&b))
    }

    /// The value as f64, for display and tolerance checks only; never for stored quantities.
    pub fn to_f64(&self) -> f64 {
        self.0.parse().unwrap_or(f64::NAN)
    }
}

impl fmt::Display for Decimal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl Serialize for Decimal {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.0)
    }
}

impl<'de> Deserialize<'de> for Decimal {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl serde::de::Visitor<'_> for V {
            type Value = Decimal;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a decimal string such as \"12.5\"")
            }
            fn visit_str<E: serde::de::Error>(self, v: &str) -> Result<Decimal, E> {
                Decimal::parse(v).map_err(E::custom)
            }
            // Whole JSON numbers are exact, so they are accepted and kept as text.
            fn visit_u64<E: serde::de::Error>(self, v: u64) -> Result<Decimal, E> {
                Ok(Decimal(v.to_string()))
            }
            fn visit_i64<E: serde::de::Error>(self, v: i64) -> Result<Decimal, E> {
                Ok(Decimal(v.to_string()))
            }
            fn visit_f64<E: serde::de::Error>(self, v: f64) -> Result<Decimal, E> {
                Err(E::custom(format!("send decimals as strings (\"{v}\"), not JSON floats, so no digit is lost")))
            }
        }
        d.deserialize_any(V)
    }
}

/// A decimal that must not be negative (quantities).
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize)]
#[serde(transparent)]
pub struct Quantity(pub Decimal);

impl<'de> Deserialize<'de> for Quantity {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let v = Decimal::deserialize(d)?;
        if v.is_negative() {
            return Err(serde::de::Error::custom(DecimalError::Negative));
        }
        Ok(Quantity(v))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn accepts_decimal_text_and_whole_numbers() {
        assert_eq!(Decimal::parse("12.345").unwrap().as_str(), "12.345");
        assert_eq!(Decimal::parse("-0.5").unwrap().as_str(), "-0.5");
        let d: Decimal = serde_json::from_str("12").unwrap();
        assert_eq!(d.as_str(), "12");
    }

    #[test]
    fn refuses_floats_and_junk() {
        assert!(serde_json::from_str::<Decimal>("1.5").is_err());
        for bad in ["", ".5", "5.", "1e3", "1,5", "--1", "NaN", " 1"] {
            assert!(Decimal::parse(bad).is_err(), "{bad:?}");
        }
        assert!(serde_json::from_str::<Quantity>("\"-1\"").is_err());
        assert!(serde_json::from_str::<Quantity>("\"-0.0\"").is_ok());
    }

    proptest! {
        #[test]
        fn parse_never_panics_and_round_trips(s in ".{0,40}") {
            if let Ok(d) = Decimal::parse(&s) {
                prop_assert_eq!(d.as_str(), s.as_str());
            }
        }
    }
}
