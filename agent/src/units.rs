//! Values as field technicians write them in the config file: durations (`"250ms"`, `"30s"`,
//! `"7d"`), byte sizes (`"512MiB"`, `"2GB"`, or a plain integer of bytes), names (what is safe in
//! a topic, a file name and a log line) and relative paths. They are written by hand, so the errors
//! say what was expected. [`ConfigIssue`] is what every section's validation answers with, and
//! [`serde_error_key`] the one place that turns a serde error's path into the key to name.
//! A leaf: every feature's config type uses it, it uses nothing of the crate.

use std::fmt;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// Letters, digits and `-_.`; what is safe in an MQTT topic level, a file name and a log line.
pub(crate) fn is_identifier(s: &str) -> bool {
    !s.is_empty() && s.len() <= 64 && s.bytes().all(|b| b.is_ascii_alphanumeric() || b"-_.".contains(&b))
}

/// Relative paths in the config are relative to the config file, wherever the daemon runs from.
pub(crate) fn resolve(base: &Path, path: &Path) -> PathBuf {
    if path.is_absolute() { path.to_path_buf() } else { base.join(path) }
}

/// A problem with one key of a config section, in words a technician can act on. A section
/// names the key inside itself (`batch.max_events`); `config` puts the section in front
/// (`sink[2].batch.max_events`) and finds the line and column.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct ConfigIssue {
    /// Dotted path of the key inside the section; empty for the section as a whole.
    pub(crate) key: String,
    /// What is wrong and what to write instead.
    pub(crate) message: String,
}

impl ConfigIssue {
    pub(crate) fn new(key: impl Into<String>, message: impl Into<String>) -> Self {
        Self { key: key.into(), message: message.into() }
    }

    /// The same issue seen from the enclosing section: `within("sink[2]")` turns `name` into
    /// `sink[2].name` (and an issue of the whole section into `sink[2]`).
    pub(crate) fn within(self, section: &str) -> Self {
        let key = if self.key.is_empty() { section.to_string() } else { format!("{section}.{}", self.key) };
        Self { key, message: self.message }
    }
}

impl fmt::Display for ConfigIssue {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.key.is_empty() { f.write_str(&self.message) } else { write!(f, "{}: {}", self.key, self.message) }
    }
}

/// What a serde error said about the key it names.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum SerdeProblem {
    /// A required key is absent.
    Missing,
    /// A key the type does not have (often a typo).
    Unknown,
    /// A value of the wrong type or out of range.
    Value,
}

/// The key a serde error is about, from `serde_path_to_error`'s path and the error's message.
/// serde reports a missing field at its parent, and puts an unknown key in the path or not
/// depending on the format; either way the answer names the key itself (`batch.max_events`).
pub(crate) fn serde_error_key(path: &str, message: &str) -> (String, SerdeProblem) {
    let path = if path == "." { "" } else { path };
    let join = |name: &str| if path.is_empty() { name.to_string() } else { format!("{path}.{name}") };
    if let Some(name) = message.strip_prefix("missing field `").and_then(|r| r.split('`').next()) {
        return (join(name), SerdeProblem::Missing);
    }
    if let Some(rest) = message.strip_prefix("unknown field `") {
        let name = rest.split('`').next().unwrap_or_default();
        let key = if path == name || path.ends_with(&format!(".{name}")) { path.to_string() } else { join(name) };
        return (key, SerdeProblem::Unknown);
    }
    (path.to_string(), SerdeProblem::Value)
}

/// A duration written as a number and a unit: `ms`, `s`, `m`, `h`, `d` (e.g. `"1h30m"`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub(crate) struct HumanDuration(pub Duration);

/// A size in bytes: a plain integer, or a number with `B`, `KB`, `MB`, `GB` (powers of 1000) or
/// `KiB`, `MiB`, `GiB` (powers of 1024).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub(crate) struct ByteSize(pub u64);

impl ByteSize {
    /// As a memory size: saturates at `usize::MAX` on a 32-bit gateway instead of wrapping (a
    /// limit of "8GiB" on armv7 means "no limit this process could reach", not 0 bytes).
    pub(crate) fn as_usize(self) -> usize {
        usize::try_from(self.0).unwrap_or(usize::MAX)
    }
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub(crate) enum UnitError {
    #[error("invalid duration `{0}`: write a number and a unit, e.g. \"500ms\", \"30s\", \"5m\", \"7d\"")]
    Duration(String),
    #[error("invalid size `{0}`: write bytes or a number and a unit, e.g. \"64KiB\", \"512MiB\", \"2GB\"")]
    Size(String),
}

impl HumanDuration {
    pub(crate) fn parse(text: &str) -> Result<Self, UnitError> {
        let err = || UnitError::Duration(text.to_string());
        let s = text.trim();
        if s.is_empty() {
            return Err(err());
        }
        let mut total: u128 = 0;
        let mut rest = s;
        while !rest.is_empty() {
            let digits = rest.find(|c: char| !c.is_ascii_digit()).unwrap_or(rest.len());
            if digits == 0 {
                return Err(err());
            }
            let n: u128 = rest[..digits].parse().map_err(|_| err())?;
            rest = &rest[digits..];
            let unit_len = rest.find(|c: char| c.is_ascii_digit()).unwrap_or(rest.len());
            let unit_ms: u128 = match rest[..unit_len].trim() {
                "ms" => 1,
                "s" => 1_000,
                "m" | "min" => 60_000,
                "h" => 3_600_000,
                "d" => 86_400_000,
                _ => return Err(err()),
            };
            rest = &rest[unit_len..];
            total = total.checked_add(n.checked_mul(unit_ms).ok_or_else(err)?).ok_or_else(err)?;
        }
        let ms = u64::try_from(total).map_err(|_| err())?;
        Ok(Self(Duration::from_millis(ms)))
    }

    pub(crate) fn as_millis(self) -> u64 {
        self.0.as_millis().min(u128::from(u64::MAX)) as u64
    }
}

impl fmt::Display for HumanDuration {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt_millis(self.as_millis(), f)
    }
}

/// Writes a millisecond count in the largest unit that divides it evenly ("90s", "7d", "250ms").
pub(crate) fn fmt_millis(ms: u64, f: &mut fmt::Formatter<'_>) -> fmt::Result {
    for (unit, size) in [("d", 86_400_000), ("h", 3_600_000), ("m", 60_000), ("s", 1_000)] {
        if ms >= size && ms.is_multiple_of(size) {
            return write!(f, "{}{unit}", ms / size);
        }
    }
    write!(f, "{ms}ms")
}

/// An age for people: "0.4s", "12s", "3m12s", "5h02m", "2d03h".
pub(crate) fn describe_age(ms: u64) -> String {
    let s = ms / 1000;
    match s {
        0..=9 => format!("{:.1}s", ms as f64 / 1000.0),
        10..=59 => format!("{s}s"),
        60..=3599 => format!("{}m{:02}s", s / 60, s % 60),
        3600..=86_399 => format!("{}h{:02}m", s / 3600, (s % 3600) / 60),
        _ => format!("{}d{:02}h", s / 86_400, (s % 86_400) / 3600),
    }
}

impl ByteSize {
    pub(crate) fn parse(text: &str) -> Result<Self, UnitError> {
        let err = || UnitError::Size(text.to_string());
        let s = text.trim();
        let split = s.find(|c: char| !c.is_ascii_digit()).unwrap_or(s.len());
        if split == 0 {
            return Err(err());
        }
        let n: u64 = s[..split].parse().map_err(|_| err())?;
        let mult: u64 = match s[split..].trim() {
            "" | "B" => 1,
            "KB" | "kB" => 1_000,
            "MB" => 1_000_000,
            "GB" => 1_000_000_000,
            "KiB" => 1 << 10,
            "MiB" => 1 << 20,
            "GiB" => 1 << 30,
            _ => return Err(err()),
        };
        n.checked_mul(mult).map(Self).ok_or_else(err)
    }
}

impl fmt::Display for ByteSize {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let b = self.0;
        if b >= 1 << 30 {
            write!(f, "{:.1} GiB", b as f64 / f64::from(1u32 << 30))
        } else if b >= 1 << 20 {
            write!(f, "{:.1} MiB", b as f64 / f64::from(1u32 << 20))
        } else if b >= 1 << 10 {
            write!(f, "{:.1} KiB", b as f64 / 1024.0)
        } else {
            write!(f, "{b} B")
        }
    }
}

/// Either a string with a unit or a bare integer in the file.
#[derive(Deserialize)]
#[serde(untagged)]
enum StringOrInt {
    Int(u64),
    Str(String),
}

impl<'de> Deserialize<'de> for HumanDuration {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        match StringOrInt::deserialize(d)
            .map_err(|_| serde::de::Error::custom("expected a duration string such as \"30s\""))?
        {
            StringOrInt::Str(s) => HumanDuration::parse(&s).map_err(serde::de::Error::custom),
            StringOrInt::Int(_) => {
                Err(serde::de::Error::custom("a duration needs a unit: write e.g. \"30s\" or \"500ms\""))
            }
        }
    }
}

impl Serialize for HumanDuration {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for ByteSize {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        match StringOrInt::deserialize(d)
            .map_err(|_| serde::de::Error::custom("expected a size such as \"512MiB\" or a number of bytes"))?
        {
            StringOrInt::Str(s) => ByteSize::parse(&s).map_err(serde::de::Error::custom),
            StringOrInt::Int(n) => Ok(ByteSize(n)),
        }
    }
}

impl Serialize for ByteSize {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_u64(self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_serde_error_names_the_key_itself() {
        // serde reports a missing key at its parent.
        assert_eq!(
            serde_error_key("batch", "missing field `max_events`"),
            ("batch.max_events".into(), SerdeProblem::Missing)
        );
        assert_eq!(serde_error_key(".", "missing field `url`"), ("url".into(), SerdeProblem::Missing));
        // An unknown key may or may not already be in the path.
        let unknown = "unknown field `urll`, expected one of `url`, `name`";
        assert_eq!(serde_error_key("urll", unknown), ("urll".into(), SerdeProblem::Unknown));
        assert_eq!(serde_error_key("retry.urll", unknown), ("retry.urll".into(), SerdeProblem::Unknown));
        assert_eq!(serde_error_key("retry", unknown), ("retry.urll".into(), SerdeProblem::Unknown));
        assert_eq!(
            serde_error_key("lines[0].quantity", "invalid type: integer"),
            ("lines[0].quantity".into(), SerdeProblem::Value)
        );
    }

    #[test]
    fn an_issue_seen_from_its_section_carries_the_section_in_its_key() {
        assert_eq!(ConfigIssue::new("name", "bad").within("sink[2]").key, "sink[2].name");
        assert_eq!(ConfigIssue::new("", "bad").within("sink[2]").key, "sink[2]");
        assert_eq!(
            ConfigIssue::new("retry", "needs 0 < initial <= max").to_string(),
            "retry: needs 0 < initial <= max"
        );
    }

    #[test]
    fn durations() {
        assert_eq!(HumanDuration::parse("250ms").unwrap().as_millis(), 250);
        assert_eq!(HumanDuration::parse("7d").unwrap().as_millis(), 7 * 86_400_000);
        assert_eq!(HumanDuration::parse("1h30m").unwrap().as_millis(), 5_400_000);
        for bad in ["", "10", "s", "5 parsecs", "-1s", "1.5s", "99999999999999999999d"] {
            assert!(HumanDuration::parse(bad).is_err(), "{bad} should be refused");
        }
        assert_eq!(HumanDuration::parse("90s").unwrap().to_string(), "90s");
        assert_eq!(HumanDuration::parse("1h30m").unwrap().to_string(), "90m");
    }

    #[test]
    fn sizes() {
        assert_eq!(ByteSize::parse("64KiB").unwrap().0, 65_536);
        assert_eq!(ByteSize::parse("2GB").unwrap().0, 2_000_000_000);
        assert_eq!(ByteSize::parse("512 MiB").unwrap().0, 512 << 20);
        assert_eq!(ByteSize::parse("100").unwrap().0, 100);
        for bad in ["", "MiB", "12 parsecs", "-5", "99999999999999999999GiB"] {
            assert!(ByteSize::parse(bad).is_err(), "{bad} should be refused");
        }
    }

    #[test]
    fn sizes_past_four_gib_stay_exact_and_saturate_as_memory_sizes_on_32_bit() {
        let eight = ByteSize::parse("8GiB").unwrap();
        assert_eq!(eight.0, 8 << 30, "kept as u64 everywhere");
        #[cfg(target_pointer_width = "32")]
        assert_eq!(eight.as_usize(), usize::MAX, "a limit this process cannot reach, not 0");
        #[cfg(target_pointer_width = "64")]
        assert_eq!(eight.as_usize(), 8 << 30);
        assert_eq!(ByteSize::parse("4MiB").unwrap().as_usize(), 4 << 20);
    }

    #[test]
    fn ages_read_well() {
        assert_eq!(describe_age(400), "0.4s");
        assert_eq!(describe_age(192_000), "3m12s");
        assert_eq!(describe_age(2 * 86_400_000 + 3 * 3_600_000), "2d03h");
    }
}
