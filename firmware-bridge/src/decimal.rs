//! Decimal strings: dockhand never turns a quantity or weight into a float. This module
//! normalises the numbers devices send (`"0001.25"`, `"+  4.876"`, `"-0.89"`) into canonical
//! decimal strings (`"1.25"`, `"4.876"`, `"-0.89"`), builds them from scaled integers
//! (`"001250"` with 3 decimals → `"1.250"`), and compares or adds them exactly.
//!
//! Canonical form: optional `-`, integer part without leading zeros (at least one digit), and a
//! fractional part that keeps every digit the device sent (trailing zeros carry the scale's
//! resolution, so `"1.250"` stays `"1.250"`). Zero is never negative.

/// Longest digit string accepted (integer + fraction); keeps every value inside `i128`.
const MAX_DIGITS: usize = 30;

/// Normalises a device's decimal text: surrounding spaces, an optional `+`/`-` sign that may be
/// followed by spaces (`"+  4.876"`), digits with at most one `.`. Returns `None` for anything
/// else (no digits, letters, two points, more than 30 digits).
pub fn normalize(text: &str) -> Option<String> {
    let t = text.trim_matches(' ');
    let (negative, rest) = match t.as_bytes().first() {
        Some(b'-') => (true, &t[1..]),
        Some(b'+') => (false, &t[1..]),
        _ => (false, t),
    };
    let rest = rest.trim_start_matches(' ');
    let (int, frac) = match rest.split_once('.') {
        Some((i, f)) => (i, f),
        None => (rest, ""),
    };
    if int.is_empty() && frac.is_empty() {
        return None;
    }
    if !int.bytes().all(|b| b.is_ascii_digit()) || !frac.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    if int.len() + frac.len() > MAX_DIGITS {
        return None;
    }
    Some(compose(negative, int, frac))
}

/// Builds a decimal from an unsigned digit string and a number of decimals:
/// `from_scaled("001250", 3, false)` → `"1.250"`, `from_scaled("5", 3, false)` → `"0.005"`.
pub fn from_scaled(digits: &str, decimals: usize, negative: bool) -> Option<String> {
    if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) || digits.len() > MAX_DIGITS {
        return None;
    }
    if decimals > MAX_DIGITS {
        return None;
    }
    if decimals == 0 {
        return Some(compose(negative, digits, ""));
    }
    let padded;
    let d = if digits.len() <= decimals {
        padded = format!("{}{digits}", "0".repeat(decimals + 1 - digits.len()));
        padded.as_str()
    } else {
        digits
    };
    let (int, frac) = d.split_at(d.len() - decimals);
    Some(compose(negative, int, frac))
}

fn compose(negative: bool, int: &str, frac: &str) -> String {
    let int = int.trim_start_matches('0');
    let int = if int.is_empty() { "0" } else { int };
    let zero = int == "0" && frac.bytes().all(|b| b == b'0');
    let mut out = String::with_capacity(int.len() + frac.len() + 2);
    if negative && !zero {
        out.push('-');
    }
    out.push_str(int);
    if !frac.is_empty() {
        out.push('.');
        out.push_str(frac);
    }
    out
}

/// Splits a canonical (or merely valid) decimal into a scaled integer and its number of decimals:
/// `"-1.250"` → `(-1250, 3)`.
pub fn to_scaled(text: &str) -> Option<(i128, u32)> {
    let n = normalize(text)?;
    let (negative, body) = match n.strip_prefix('-') {
        Some(b) => (true, b),
        None => (false, n.as_str()),
    };
    let (int, frac) = body.split_once('.').unwrap_or((body, ""));
    let mut v: i128 = 0;
    for b in int.bytes().chain(frac.bytes()) {
        v = v.checked_mul(10)?.checked_add(i128::from(b - b'0'))?;
    }
    let scale = u32::try_from(frac.len()).ok()?;
    Some((if negative { -v } else { v }, scale))
}

fn rescale(v: i128, from: u32, to: u32) -> Option<i128> {
    v.checked_mul(10i128.checked_pow(to.checked_sub(from)?)?)
}

/// Numeric equality of two decimal strings (`"1.25"` equals `"1.250"`). Invalid input is unequal.
pub fn numeric_eq(a: &str, b: &str) -> bool {
    match (to_scaled(a), to_scaled(b)) {
        (Some((va, sa)), Some((vb, sb))) => {
            let s = sa.max(sb);
            matches!((rescale(va, sa, s), rescale(vb, sb, s)), (Some(x), Some(y)) if x == y)
        }
        _ => false,
    }
}

/// Exact sum of two decimal strings, with the larger number of decimals (`"-0.89" + "6.00"` →
/// `"5.11"`).
pub fn add(a: &str, b: &str) -> Option<String> {
    let (va, sa) = to_scaled(a)?;
    let (vb, sb) = to_scaled(b)?;
    let s = sa.max(sb);
    let sum = rescale(va, sa, s)?.checked_add(rescale(vb, sb, s)?)?;
    let digits = sum.unsigned_abs().to_string();
    from_scaled(&digits, usize::try_from(s).ok()?, sum < 0)
}

/// Why a text is not a [`Decimal`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DecimalError {
    /// Not `-`? digits (`.` digits)?.
    Syntax(String),
    /// A negative value where only zero or more is allowed.
    Negative,
}

impl std::fmt::Display for DecimalError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            DecimalError::Syntax(t) => write!(f, "`{t}` is not a decimal number (expected e.g. \"12.5\")"),
            DecimalError::Negative => f.write_str("must not be negative"),
        }
    }
}

impl std::error::Error for DecimalError {}

/// A base-10 number kept as its text: the one decimal type of dockhand, shared by the device
/// codecs, the stations and the event envelope (the agent re-exports it). Exact arithmetic goes
/// through scaled `i128`s; nothing here ever passes through a float.
///
/// Equality (`==`) compares the text, so `"1.250"` (a scale's resolution) and `"1.25"` are
/// different values on a label; [`Decimal::cmp_value`] compares numbers.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Decimal(String);

impl Decimal {
    /// Parses strict decimal text: optional `-`, 1–30 digits, optionally `.` and 1–30 digits.
    pub fn parse(text: &str) -> Result<Decimal, DecimalError> {
        let body = text.strip_prefix('-').unwrap_or(text);
        let (int, frac) = match body.split_once('.') {
            Some((i, f)) => (i, Some(f)),
            None => (body, None),
        };
        let digits = |s: &str| !s.is_empty() && s.len() <= MAX_DIGITS && s.bytes().all(|b| b.is_ascii_digit());
        if !digits(int) || frac.is_some_and(|f| !digits(f)) {
            return Err(DecimalError::Syntax(text.chars().take(40).collect()));
        }
        Ok(Decimal(text.to_owned()))
    }

    /// A number a person wrote in a TOML file (`min_weight = 0.05`). TOML hands it over as a
    /// float; Rust prints a float as the shortest text that reads back to it, which is the text
    /// the person wrote for every value with up to 15 significant digits.
    pub fn from_written_float(v: f64) -> Result<Decimal, DecimalError> {
        if !v.is_finite() {
            return Err(DecimalError::Syntax(v.to_string()));
        }
        let text = format!("{v}");
        Decimal::parse(&text)
    }

    /// An integer.
    pub fn from_int(v: i64) -> Decimal {
        Decimal(v.to_string())
    }

    /// `v / 10^scale`: `from_scaled_int(-1250, 3)` is `"-1.250"`.
    pub fn from_scaled_int(v: i128, scale: u32) -> Option<Decimal> {
        from_scaled(&v.unsigned_abs().to_string(), usize::try_from(scale).ok()?, v < 0).map(Decimal)
    }

    /// The text.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// Below zero (`"-0.0"` is not).
    pub fn is_negative(&self) -> bool {
        self.0.starts_with('-') && self.0.bytes().any(|b| (b'1'..=b'9').contains(&b))
    }

    /// The value as a scaled integer and its number of decimals.
    pub fn scaled(&self) -> Option<(i128, u32)> {
        to_scaled(&self.0)
    }

    /// Numeric comparison (`"1.25"` equals `"1.250"`); `None` only past `i128`.
    pub fn cmp_value(&self, other: &Decimal) -> Option<std::cmp::Ordering> {
        let ((a, sa), (b, sb)) = (self.scaled()?, other.scaled()?);
        let s = sa.max(sb);
        Some(rescale(a, sa, s)?.cmp(&rescale(b, sb, s)?))
    }

    /// Exact sum, with the larger number of decimals.
    pub fn checked_add(&self, other: &Decimal) -> Option<Decimal> {
        add(&self.0, &other.0).map(Decimal)
    }

    /// Exact difference, with the larger number of decimals.
    pub fn checked_sub(&self, other: &Decimal) -> Option<Decimal> {
        let ((a, sa), (b, sb)) = (self.scaled()?, other.scaled()?);
        let s = sa.max(sb);
        Decimal::from_scaled_int(rescale(a, sa, s)?.checked_sub(rescale(b, sb, s)?)?, s)
    }

    /// The value without its sign.
    pub fn abs(&self) -> Decimal {
        Decimal(self.0.strip_prefix('-').unwrap_or(&self.0).to_owned())
    }

    /// How many digits follow the point.
    pub fn decimals(&self) -> usize {
        self.0.split_once('.').map_or(0, |(_, f)| f.len())
    }

    /// Exact product (the decimals add up: `0.5 × 0.25 = 0.125`).
    pub fn checked_mul(&self, other: &Decimal) -> Option<Decimal> {
        let ((a, sa), (b, sb)) = (self.scaled()?, other.scaled()?);
        Decimal::from_scaled_int(a.checked_mul(b)?, sa.checked_add(sb)?)
    }

    /// Rounded (half away from zero) or padded with zeros to exactly `decimals` decimals.
    pub fn with_decimals(&self, decimals: u32) -> Option<Decimal> {
        let (v, s) = self.scaled()?;
        let v = round_to(v, s, decimals)?;
        Decimal::from_scaled_int(v, decimals)
    }

    /// `self / other`, rounded half away from zero to `decimals` decimals; `None` for a zero
    /// divisor.
    pub fn div_rounded(&self, other: &Decimal, decimals: u32) -> Option<Decimal> {
        let ((a, sa), (b, sb)) = (self.scaled()?, other.scaled()?);
        if b == 0 {
            return None;
        }
        // a/10^sa ÷ b/10^sb = (a × 10^(sb + decimals)) / (b × 10^sa), in units of 10^-decimals.
        let num = a.checked_mul(10i128.checked_pow(sb.checked_add(decimals)?)?)?;
        let den = b.checked_mul(10i128.checked_pow(sa)?)?;
        let (q, r) = (num / den, num % den);
        let q = if r.unsigned_abs() * 2 >= den.unsigned_abs() { q + num.signum() * den.signum() } else { q };
        Decimal::from_scaled_int(q, decimals)
    }
}

/// `v / 10^from` rounded half away from zero to `to` decimals, as an integer of `10^-to` units.
fn round_to(v: i128, from: u32, to: u32) -> Option<i128> {
    if to >= from {
        return rescale(v, from, to);
    }
    let div = 10i128.checked_pow(from - to)?;
    let (q, r) = (v / div, v % div);
    Some(if r.unsigned_abs() * 2 >= div.unsigned_abs() { q + v.signum() } else { q })
}

impl std::fmt::Display for Decimal {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::str::FromStr for Decimal {
    type Err = DecimalError;
    fn from_str(s: &str) -> Result<Decimal, DecimalError> {
        Decimal::parse(s)
    }
}

impl serde::Serialize for Decimal {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.0)
    }
}

impl<'de> serde::Deserialize<'de> for Decimal {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Decimal, D::Error> {
        struct V;
        impl serde::de::Visitor<'_> for V {
            type Value = Decimal;
            fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
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

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn d(t: &str) -> Decimal {
        Decimal::parse(t).unwrap()
    }

    #[test]
    fn decimal_accepts_decimal_text_and_whole_numbers() {
        assert_eq!(d("12.345").as_str(), "12.345");
        assert_eq!(d("-0.5").as_str(), "-0.5");
        let v: Decimal = serde_json::from_str("12").unwrap();
        assert_eq!(v.as_str(), "12");
        assert!(serde_json::from_str::<Decimal>("1.5").is_err());
        for bad in ["", ".5", "5.", "1e3", "1,5", "--1", "NaN", " 1"] {
            assert!(Decimal::parse(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn decimal_arithmetic_is_exact() {
        assert_eq!(d("0.1").checked_add(&d("0.2")).unwrap().as_str(), "0.3");
        assert_eq!(d("5.00").checked_mul(&d("0.45359237")).unwrap().with_decimals(3).unwrap().as_str(), "2.268");
        assert_eq!(d("2.48").with_decimals(3).unwrap().as_str(), "2.480");
        assert_eq!(d("-0.0005").with_decimals(3).unwrap().as_str(), "-0.001");
        assert_eq!(d("1.206").div_rounded(&d("0.012"), 2).unwrap().as_str(), "100.50");
        assert_eq!(d("1.200").div_rounded(&d("0.012"), 0).unwrap().as_str(), "100");
        assert_eq!(d("1").div_rounded(&d("0"), 0), None);
        assert_eq!(d("1.2").checked_sub(&d("1.206")).unwrap().as_str(), "-0.006");
        assert_eq!(d("-0.006").abs().as_str(), "0.006");
        assert_eq!(d("1.25").cmp_value(&d("1.250")), Some(std::cmp::Ordering::Equal));
        assert_eq!(d("-2").cmp_value(&d("1")), Some(std::cmp::Ordering::Less));
        assert_eq!(Decimal::from_written_float(0.05).unwrap().as_str(), "0.05");
        assert_eq!(Decimal::from_written_float(0.012).unwrap().as_str(), "0.012");
        assert_eq!(Decimal::from_written_float(3.0).unwrap().as_str(), "3");
    }

    #[test]
    fn normalize_strips_leading_zeros_and_keeps_resolution() {
        assert_eq!(normalize("0001.25").as_deref(), Some("1.25"));
        assert_eq!(normalize("  1.250").as_deref(), Some("1.250"));
        assert_eq!(normalize("+  4.876").as_deref(), Some("4.876"));
        assert_eq!(normalize("-0.89").as_deref(), Some("-0.89"));
        assert_eq!(normalize("-0.00").as_deref(), Some("0.00"));
        assert_eq!(normalize(".5").as_deref(), Some("0.5"));
        assert_eq!(normalize("12.").as_deref(), Some("12"));
        assert_eq!(normalize("000013.5").as_deref(), Some("13.5"));
    }

    #[test]
    fn normalize_rejects_non_numbers() {
        for bad in ["", " ", "-", ".", "1.2.3", "12a", "1 2", "--1", "^^^^"] {
            assert_eq!(normalize(bad), None, "{bad:?}");
        }
    }

    #[test]
    fn from_scaled_places_the_decimal_point() {
        assert_eq!(from_scaled("001250", 3, false).as_deref(), Some("1.250"));
        assert_eq!(from_scaled("000500", 2, false).as_deref(), Some("5.00"));
        assert_eq!(from_scaled("000089", 2, true).as_deref(), Some("-0.89"));
        assert_eq!(from_scaled("5", 3, false).as_deref(), Some("0.005"));
        assert_eq!(from_scaled("001250", 0, false).as_deref(), Some("1250"));
        assert_eq!(from_scaled("000000", 2, true).as_deref(), Some("0.00"));
    }

    #[test]
    fn add_and_compare_are_exact() {
        assert_eq!(add("-0.89", "6.00").as_deref(), Some("5.11"));
        assert_eq!(add("3.67", "6.00").as_deref(), Some("9.67"));
        assert_eq!(add("1.5", "0.25").as_deref(), Some("1.75"));
        assert!(numeric_eq("1.25", "1.250"));
        assert!(numeric_eq("-0", "0.0"));
        assert!(!numeric_eq("1.25", "1.26"));
    }

    proptest! {
        #[test]
        fn decimal_parse_never_panics_and_round_trips(s in ".{0,40}") {
            if let Ok(v) = Decimal::parse(&s) {
                prop_assert_eq!(v.as_str(), s.as_str());
            }
        }

        #[test]
        fn decimal_sums_are_exact(a in 0i64..1_000_000, b in 0i64..1_000_000, sa in 0u32..4, sb in 0u32..4) {
            let x = Decimal::from_scaled_int(i128::from(a), sa).unwrap();
            let y = Decimal::from_scaled_int(i128::from(b), sb).unwrap();
            let s = sa.max(sb);
            let want = i128::from(a) * 10i128.pow(s - sa) + i128::from(b) * 10i128.pow(s - sb);
            prop_assert_eq!(x.checked_add(&y).unwrap().scaled().unwrap(), (want, s));
        }

        #[test]
        fn normalize_never_panics_and_is_idempotent(s in ".{0,40}") {
            if let Some(n) = normalize(&s) {
                prop_assert_eq!(normalize(&n), Some(n.clone()));
            }
        }

        #[test]
        fn scaled_round_trip(v in any::<i64>(), scale in 0u32..8) {
            let digits = v.unsigned_abs().to_string();
            let text = from_scaled(&digits, scale as usize, v < 0).unwrap();
            prop_assert_eq!(to_scaled(&text), Some((i128::from(v), scale)));
        }
    }
}
