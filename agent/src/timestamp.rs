//! Wall-clock timestamps as they appear in the event envelope: RFC 3339, UTC, milliseconds
//! (`2026-11-23T15:02:11.120Z`). Stored as milliseconds since the Unix epoch so the store can
//! index and compare them as integers.

use std::fmt;
use std::time::{SystemTime, UNIX_EPOCH};

use serde::{Deserialize, Deserializer, Serialize, Serializer};
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

/// Milliseconds since 1970-01-01T00:00:00Z.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Timestamp(i64);

/// A timestamp that is not RFC 3339 or lies outside years 0000–9999.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[error("not an RFC 3339 timestamp (expected e.g. 2026-11-23T15:02:11.120Z): {0}")]
pub struct TimestampError(String);

impl Timestamp {
    pub const fn from_millis(ms: i64) -> Self {
        Self(ms)
    }

    pub(crate) const fn as_millis(self) -> i64 {
        self.0
    }

    pub fn now() -> Self {
        let ms = SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_millis() as i64).unwrap_or(0);
        Self(ms)
    }

    /// Parses any RFC 3339 timestamp (any offset, any sub-second precision); sub-millisecond
    /// digits are truncated.
    pub fn parse(text: &str) -> Result<Self, TimestampError> {
        let dt = OffsetDateTime::parse(text, &Rfc3339).map_err(|e| TimestampError(e.to_string()))?;
        // The range is checked in UTC, the form the timestamp is printed in: year 0000 at +01:00
        // is still year -1 in UTC and could not be printed back as RFC 3339.
        let Some(dt) = dt.checked_to_offset(time::UtcOffset::UTC).filter(|d| (0..=9999).contains(&d.year())) else {
            return Err(TimestampError("year out of range (0000 to 9999 in UTC)".into()));
        };
        Ok(Self((dt.unix_timestamp_nanos() / 1_000_000) as i64))
    }

    /// Milliseconds elapsed from `self` until `later` (zero if `later` is earlier).
    pub(crate) fn millis_until(self, later: Timestamp) -> u64 {
        later.0.saturating_sub(self.0).max(0) as u64
    }

    pub(crate) fn saturating_sub_millis(self, ms: u64) -> Self {
        Self(self.0.saturating_sub(ms.min(i64::MAX as u64) as i64))
    }

    pub(crate) fn saturating_add_millis(self, ms: u64) -> Self {
        Self(self.0.saturating_add(ms.min(i64::MAX as u64) as i64))
    }
}

/// Milliseconds of 0000-01-01T00:00:00Z and of 10000-01-01T00:00:00Z: the printable range.
const FIRST_PRINTABLE_MS: i64 = -62_167_219_200_000;
const END_PRINTABLE_MS: i64 = 253_402_300_800_000;

impl Timestamp {
    /// The RFC 3339 text (`2026-11-23T15:02:11.120Z`), written digit by digit: every event is
    /// serialised with two of these, so this sits on the ingest path of every message. `None`
    /// outside years 0000–9999.
    fn rfc3339(self) -> Option<[u8; 24]> {
        if !(FIRST_PRINTABLE_MS..END_PRINTABLE_MS).contains(&self.0) {
            return None;
        }
        let days = self.0.div_euclid(86_400_000);
        let in_day = self.0.rem_euclid(86_400_000);
        let (year, month, day) = firmware_bridge::device::civil_from_days(days);
        let mut out = *b"0000-00-00T00:00:00.000Z";
        let mut put = |at: usize, width: usize, mut value: i64| {
            for i in (at..at + width).rev() {
                out[i] = b'0' + (value % 10) as u8;
                value /= 10;
            }
        };
        put(0, 4, year);
        put(5, 2, month);
        put(8, 2, day);
        put(11, 2, in_day / 3_600_000);
        put(14, 2, in_day / 60_000 % 60);
        put(17, 2, in_day / 1000 % 60);
        put(20, 3, in_day % 1000);
        Some(out)
    }
}

impl fmt::Display for Timestamp {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.rfc3339() {
            // The buffer holds ASCII digits and punctuation only.
            Some(text) => f.write_str(std::str::from_utf8(&text).unwrap_or_default()),
            // Only reachable for values no parser here produces; still print something honest.
            None => write!(f, "@{}ms", self.0),
        }
    }
}

impl Serialize for Timestamp {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        match self.rfc3339() {
            Some(text) => s.serialize_str(std::str::from_utf8(&text).unwrap_or_default()),
            None => s.collect_str(self),
        }
    }
}

impl<'de> Deserialize<'de> for Timestamp {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let text = <std::borrow::Cow<'de, str>>::deserialize(d)?;
        Timestamp::parse(&text).map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    proptest::proptest! {
        /// The hand-written formatter agrees with the `time` crate over the whole printable range.
        #[test]
        fn fast_formatting_matches_the_time_crate(ms in FIRST_PRINTABLE_MS..END_PRINTABLE_MS) {
            let dt = OffsetDateTime::from_unix_timestamp_nanos(i128::from(ms) * 1_000_000).unwrap();
            let expected = format!(
                "{:04}-{:02}-{:02}T{:02}:{:02}:{:02}.{:03}Z",
                dt.year(), u8::from(dt.month()), dt.day(), dt.hour(), dt.minute(), dt.second(), dt.millisecond()
            );
            proptest::prop_assert_eq!(Timestamp::from_millis(ms).to_string(), expected);
        }
    }

    #[test]
    fn the_edges_of_the_printable_range() {
        assert_eq!(Timestamp::from_millis(FIRST_PRINTABLE_MS).to_string(), "0000-01-01T00:00:00.000Z");
        assert_eq!(Timestamp::from_millis(END_PRINTABLE_MS - 1).to_string(), "9999-12-31T23:59:59.999Z");
        assert_eq!(Timestamp::from_millis(END_PRINTABLE_MS).to_string(), format!("@{END_PRINTABLE_MS}ms"));
        assert_eq!(Timestamp::from_millis(-1).to_string(), "1969-12-31T23:59:59.999Z");
        assert_eq!(Timestamp::from_millis(951_782_400_000).to_string(), "2000-02-29T00:00:00.000Z");
    }
    use proptest::prelude::*;

    #[test]
    fn formats_with_milliseconds_in_utc() {
        let t = Timestamp::parse("2026-11-23T16:02:11.120+01:00").unwrap();
        assert_eq!(t.to_string(), "2026-11-23T15:02:11.120Z");
        assert_eq!(Timestamp::from_millis(0).to_string(), "1970-01-01T00:00:00.000Z");
    }

    #[test]
    fn truncates_sub_millisecond_digits() {
        let t = Timestamp::parse("2026-01-02T03:04:05.123999Z").unwrap();
        assert_eq!(t.to_string(), "2026-01-02T03:04:05.123Z");
    }

    #[test]
    fn rejects_times_that_leave_years_0000_to_9999_in_utc() {
        // Found by the fuzzer: accepted, then printed in a form nothing can parse back.
        assert!(Timestamp::parse("0000-01-01T00:00:00+01:00").is_err());
        assert!(Timestamp::parse("9999-12-31T23:59:59.999-01:00").is_err());
        let edge = Timestamp::parse("0000-01-01T00:00:00Z").unwrap();
        assert_eq!(Timestamp::parse(&edge.to_string()).unwrap(), edge);
    }

    #[test]
    fn rejects_non_rfc3339() {
        assert!(Timestamp::parse("2026-11-23 15:02:11").is_err());
        assert!(Timestamp::parse("yesterday").is_err());
        assert!(Timestamp::parse("").is_err());
    }

    proptest! {
        #[test]
        fn display_round_trips(ms in 0i64..253_402_300_799_999) {
            let t = Timestamp::from_millis(ms);
            prop_assert_eq!(Timestamp::parse(&t.to_string()).unwrap(), t);
        }

        #[test]
        fn parse_never_panics(s in ".{0,40}") {
            let _ = Timestamp::parse(&s);
        }
    }
}
