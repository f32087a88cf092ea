//! Quantities and weights travel as decimal strings (`"12.345"`), never floats, so that a
//! quantity counted on the floor arrives in Odoo digit for digit. The type is
//! [`firmware_bridge::decimal::Decimal`], the same one the device codecs and stations use; this
//! module adds what only events need.

use serde::{Deserialize, Deserializer, Serialize};

pub(crate) use firmware_bridge::decimal::{Decimal, DecimalError};

/// A decimal that must not be negative (quantities).
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize)]
#[serde(transparent)]
pub(crate) struct Quantity(pub Decimal);

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

    #[test]
    fn quantities_refuse_negative_values() {
        assert!(serde_json::from_str::<Quantity>("\"-1\"").is_err());
        assert!(serde_json::from_str::<Quantity>("\"-0.0\"").is_ok());
    }
}
