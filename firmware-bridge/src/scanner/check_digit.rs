//! GS1 mod-10 check digits (EAN-8, EAN-13, UPC-A, GTIN-14, SSCC, GLN): weights 3, 1, 3, …
//! starting from the rightmost data digit; check = (10 − sum mod 10) mod 10
//! (GS1 General Specifications §7.9).

use thiserror::Error;

/// Why a digit string failed check-digit validation.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum CheckDigitError {
    /// Fewer than two characters: there is no data digit to check.
    #[error("too short for a check digit ({len} digits)")]
    TooShort {
        /// Length received.
        len: usize,
    },
    /// A character that is not an ASCII digit, at this index.
    #[error("not a digit at index {index}")]
    NotDigit {
        /// Index within the checked string.
        index: usize,
    },
    /// The last digit is not the computed check digit.
    #[error("check digit is {found}, expected {expected}")]
    Mismatch {
        /// The computed check digit.
        expected: u8,
        /// The check digit that was sent.
        found: u8,
    },
}

/// Computes the check digit for `data` (the digits *without* the check digit).
/// Returns `None` when `data` is empty or holds a non-digit.
pub fn compute(data: &[u8]) -> Option<u8> {
    if data.is_empty() {
        return None;
    }
    let mut sum: u32 = 0;
    for (i, &b) in data.iter().rev().enumerate() {
        if !b.is_ascii_digit() {
            return None;
        }
        let d = u32::from(b - b'0');
        sum += if i % 2 == 0 { d * 3 } else { d };
    }
    // sum % 10 < 10, so the result fits in u8.
    Some(((10 - sum % 10) % 10) as u8)
}

/// Validates a full digit string whose last digit is the check digit.
pub fn validate(digits: &str) -> Result<(), CheckDigitError> {
    let bytes = digits.as_bytes();
    if let Some(index) = bytes.iter().position(|b| !b.is_ascii_digit()) {
        return Err(CheckDigitError::NotDigit { index });
    }
    let Some((&last, data)) = bytes.split_last() else {
        return Err(CheckDigitError::TooShort { len: 0 });
    };
    if data.is_empty() {
        return Err(CheckDigitError::TooShort { len: bytes.len() });
    }
    let expected = compute(data).ok_or(CheckDigitError::TooShort { len: bytes.len() })?;
    let found = last - b'0';
    if expected == found { Ok(()) } else { Err(CheckDigitError::Mismatch { expected, found }) }
}

/// `true` when `digits` is all digits and ends with a correct check digit.
pub fn is_valid(digits: &str) -> bool {
    validate(digits).is_ok()
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn reference_codes_are_valid() {
        for code in ["5901234123457", "09506000134352", "106141411234567897", "24012345678905", "02345673"] {
            assert_eq!(validate(code), Ok(()), "{code}");
        }
    }

    #[test]
    fn wrong_check_digit_reports_expected_digit() {
        assert_eq!(validate("5901234123458"), Err(CheckDigitError::Mismatch { expected: 7, found: 8 }));
        // `]E02112345678901` from the must-fail vectors.
        assert!(matches!(validate("2112345678901"), Err(CheckDigitError::Mismatch { .. })));
    }

    #[test]
    fn non_digits_and_short_input_are_rejected() {
        assert_eq!(validate("59012341234x7"), Err(CheckDigitError::NotDigit { index: 11 }));
        assert_eq!(validate(""), Err(CheckDigitError::TooShort { len: 0 }));
        assert_eq!(validate("7"), Err(CheckDigitError::TooShort { len: 1 }));
    }

    #[test]
    fn gtin_of_the_gs1_datamatrix_vector_is_valid() {
        assert!(is_valid("12312312312333"));
    }

    proptest! {
        #[test]
        fn appending_the_computed_digit_validates(data in "[0-9]{1,30}") {
            let c = compute(data.as_bytes()).unwrap();
            let full = format!("{data}{c}");
            prop_assert!(is_valid(&full));
        }

        #[test]
        fn changing_one_digit_is_detected(data in "[0-9]{7,17}", pos in any::<prop::sample::Index>(), delta in 1u8..10) {
            let c = compute(data.as_bytes()).unwrap();
            let mut full = format!("{data}{c}").into_bytes();
            let i = pos.index(full.len());
            full[i] = b'0' + (full[i] - b'0' + delta) % 10;
            prop_assert!(!is_valid(std::str::from_utf8(&full).unwrap()));
        }

        #[test]
        fn validate_never_panics(s in "\\PC{0,30}") {
            let _ = validate(&s);
        }
    }
}
