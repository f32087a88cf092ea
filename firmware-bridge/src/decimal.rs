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

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

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
