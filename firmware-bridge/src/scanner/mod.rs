//! Barcode scans: from a framed scan (bytes as the scanner sent them, AIM prefix included) to the
//! typed [`Scan`] that the agent emits as the `scan` event payload.
//!
//! - [`framing`]: byte stream → frames (suffix, prefix, inter-character timeout).
//! - [`aim`]: `]C1` → symbology, and whether the data is GS1.
//! - [`gs1`]: GS1 element strings and Digital Link URIs → `gs1` map and `parsed` fields.
//! - [`check_digit`]: GS1 mod-10 check digits.
//!
//! [`decode_scan`] picks the interpretation from the AIM identifier: GS1 symbologies (`]C1`,
//! `]e0`, `]d2`, `]Q3`, `]J1`) must hold a valid element string; EAN/UPC (`]E0`, `]E3`, `]E4`)
//! must have the right length and check digit and yield a GTIN; an `http(s)://` URI with a GS1
//! primary key (`/01/…`) in any other symbology — or without AIM prefix — is read as a Digital
//! Link. Anything else is kept as raw data with no `gs1`/`parsed` content.

pub mod aim;
pub mod check_digit;
pub mod framing;
pub mod gs1;

use std::collections::BTreeMap;

use serde::Serialize;
use thiserror::Error;

pub use aim::{AimId, Symbology};
pub use framing::{Frame, Framer, FramerConfig, FramerConfigError, FramerStats, Suffix};
pub use gs1::{Gs1Error, Gs1Options, NetWeight, ScanParsed};

/// Options for [`decode_scan`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ScanOptions {
    /// GS1 parsing: alternative FNC1 separator and the reference year for two-digit years.
    pub gs1: Gs1Options,
}

impl ScanOptions {
    /// `<GS>` as FNC1, dates resolved against `reference_year` (pass the current year).
    pub fn new(reference_year: u16) -> Self {
        ScanOptions { gs1: Gs1Options::new(reference_year) }
    }
}

/// A decoded scan: the `scan` event payload of `design/contracts.md` §1.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Scan {
    /// The scan as received, AIM prefix included. When the bytes are not valid UTF-8, each
    /// invalid sequence is shown as U+FFFD (valid characters around it are kept) and
    /// [`Scan::raw_hex`] holds the exact bytes (contracts.md §1).
    pub raw: String,
    /// The exact bytes in lowercase hex, present only when they are not valid UTF-8.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub raw_hex: Option<String>,
    /// The AIM identifier, e.g. `"]C1"`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub aim: Option<String>,
    /// The symbology named by the AIM identifier.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub symbology: Option<Symbology>,
    /// AI → value, for GS1 element strings and Digital Link URIs.
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub gs1: BTreeMap<String, String>,
    /// Interpreted fields.
    #[serde(skip_serializing_if = "ScanParsed::is_empty")]
    pub parsed: ScanParsed,
    /// The data without the AIM prefix (not part of the payload).
    #[serde(skip)]
    pub data: String,
}

/// Why a scan could not be decoded. Positions are byte offsets into the raw scan.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum ScanError {
    /// No bytes at all.
    #[error("empty scan")]
    Empty,
    /// Invalid GS1 data in a GS1 symbology or Digital Link.
    #[error(transparent)]
    Gs1(#[from] Gs1Error),
    /// EAN/UPC data of the wrong length.
    #[error("{symbology} data must be {expected} digits, found {found} characters")]
    BadLength {
        /// The symbology.
        symbology: Symbology,
        /// Allowed lengths, e.g. `"13"`.
        expected: &'static str,
        /// Length received.
        found: usize,
    },
    /// A non-digit in EAN/UPC data.
    #[error("{symbology} data has a non-digit at byte {pos}")]
    NotNumeric {
        /// The symbology.
        symbology: Symbology,
        /// Offset of the character.
        pos: usize,
    },
    /// EAN/UPC check digit mismatch.
    #[error("{symbology} check digit at byte {pos} is {found}, expected {expected}")]
    CheckDigit {
        /// The symbology.
        symbology: Symbology,
        /// Offset of the check digit.
        pos: usize,
        /// Computed.
        expected: u8,
        /// Received.
        found: u8,
    },
}

pub(crate) fn bytes_to_string(raw: &[u8]) -> String {
    String::from_utf8_lossy(raw).into_owned()
}

/// The bytes in lowercase hex when they are not valid UTF-8 (the `raw_hex` of a scan).
pub(crate) fn hex_unless_utf8(raw: &[u8]) -> Option<String> {
    if std::str::from_utf8(raw).is_ok() {
        return None;
    }
    Some(raw.iter().map(|b| format!("{b:02x}")).collect())
}

/// Validates an EAN/UPC digit string (length in `lengths`, check digit over the first
/// `check_len` digits) and returns the GTIN-14.
fn ean_gtin(
    symbology: Symbology,
    data: &[u8],
    base: usize,
    lengths: &[usize],
    expected: &'static str,
    check_len: usize,
) -> Result<String, ScanError> {
    if !lengths.contains(&data.len()) {
        return Err(ScanError::BadLength { symbology, expected, found: data.len() });
    }
    if let Some(i) = data.iter().position(|b| !b.is_ascii_digit()) {
        return Err(ScanError::NotNumeric { symbology, pos: base + i });
    }
    let code = &data[..check_len];
    let text = bytes_to_string(code);
    if let Err(check_digit::CheckDigitError::Mismatch { expected, found }) = check_digit::validate(&text) {
        return Err(ScanError::CheckDigit { symbology, pos: base + check_len - 1, expected, found });
    }
    Ok(format!("{text:0>14}"))
}

/// Decodes one framed scan. See the module documentation for the rules.
pub fn decode_scan(raw: &[u8], opts: &ScanOptions) -> Result<Scan, ScanError> {
    if raw.is_empty() {
        return Err(ScanError::Empty);
    }
    let (aim, data, base) = match aim::split_aim(raw) {
        Some((id, rest)) => (Some(id), rest, 3),
        None => (None, raw, 0),
    };
    let symbology = aim.map(|id| id.symbology());
    let mut scan = Scan {
        raw: bytes_to_string(raw),
        raw_hex: hex_unless_utf8(raw),
        aim: aim.map(|id| id.as_string()),
        symbology,
        gs1: BTreeMap::new(),
        parsed: ScanParsed::default(),
        data: bytes_to_string(data),
    };
    let year = opts.gs1.reference_year;
    match symbology {
        Some(s) if s.implies_gs1() => {
            let elements = gs1::parse_element_string(data, &opts.gs1, base)?;
            let d = gs1::interpret(elements, year);
            scan.gs1 = d.map;
            scan.parsed = d.parsed;
        }
        Some(s @ Symbology::Ean13) => {
            scan.parsed.gtin = Some(ean_gtin(s, data, base, &[13], "13", 13)?);
        }
        Some(s @ Symbology::Ean13AddOn) => {
            scan.parsed.gtin = Some(ean_gtin(s, data, base, &[15, 18], "15 or 18", 13)?);
        }
        Some(s @ Symbology::Ean8) => {
            scan.parsed.gtin = Some(ean_gtin(s, data, base, &[8], "8", 8)?);
        }
        Some(Symbology::Itf14) => {
            // Interleaved 2 of 5 carries more than ITF-14; only a valid 14-digit code is a GTIN.
            if data.len() == 14 && check_digit::is_valid(&scan.data) {
                scan.parsed.gtin = Some(scan.data.clone());
            }
        }
        _ => {
            if let Some(elements) = gs1::parse_digital_link(&scan.data, &opts.gs1, base)? {
                let d = gs1::interpret(elements, year);
                scan.gs1 = d.map;
                scan.parsed = d.parsed;
            }
        }
    }
    Ok(scan)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::scale::WeightUnit;
    use proptest::prelude::*;

    fn decode(raw: &[u8]) -> Result<Scan, ScanError> {
        decode_scan(raw, &ScanOptions::new(2026))
    }

    #[test]
    fn gs1_128_vector_decodes_to_the_contract_fields() {
        let raw = b"]C1010950600013435231030012501526030010ABC123\x1d2112345";
        let scan = decode(raw).unwrap();
        assert_eq!(scan.aim.as_deref(), Some("]C1"));
        assert_eq!(scan.symbology, Some(Symbology::Gs1_128));
        assert_eq!(scan.raw.as_bytes(), raw);
        let p = &scan.parsed;
        assert_eq!(p.gtin.as_deref(), Some("09506000134352"));
        assert_eq!(p.net_weight, Some(NetWeight { value: "1.250".into(), unit: WeightUnit::Kg }));
        assert_eq!(p.best_before.as_deref(), Some("2026-03-31"));
        assert_eq!(p.lot.as_deref(), Some("ABC123"));
        assert_eq!(p.serial.as_deref(), Some("12345"));
        assert_eq!(scan.gs1.len(), 5);
    }

    #[test]
    fn scan_serializes_as_the_contract_payload() {
        let scan = decode(b"]C1010950600013435231030012501526030010ABC123\x1d2112345").unwrap();
        let json = serde_json::to_value(&scan).unwrap();
        assert_eq!(
            json,
            serde_json::json!({
                "raw": "]C1010950600013435231030012501526030010ABC123\u{1d}2112345",
                "aim": "]C1",
                "symbology": "gs1-128",
                "gs1": {"01": "09506000134352", "3103": "001250", "15": "260300", "10": "ABC123", "21": "12345"},
                "parsed": {
                    "gtin": "09506000134352",
                    "lot": "ABC123",
                    "serial": "12345",
                    "best_before": "2026-03-31",
                    "net_weight": {"value": "1.250", "unit": "kg"}
                }
            })
        );
    }

    #[test]
    fn plain_code_128_serializes_only_raw_aim_and_symbology() {
        let scan = decode(b"]C0LOC-A-01-02").unwrap();
        let json = serde_json::to_value(&scan).unwrap();
        assert_eq!(json, serde_json::json!({"raw": "]C0LOC-A-01-02", "aim": "]C0", "symbology": "code-128"}));
        assert_eq!(scan.data, "LOC-A-01-02");
    }

    #[test]
    fn sscc_vector() {
        let scan = decode(b"]C100106141411234567897").unwrap();
        assert_eq!(scan.parsed.sscc.as_deref(), Some("106141411234567897"));
    }

    #[test]
    fn ai_422_vector_needs_separator() {
        let scan = decode(b"]C10109506000134352422528\x1d3103001250").unwrap();
        assert_eq!(scan.gs1.get("422").map(String::as_str), Some("528"));
        assert_eq!(scan.parsed.net_weight.unwrap().value, "1.250");
    }

    #[test]
    fn gs1_datamatrix_vector() {
        let scan = decode(b"]d2011231231231233310ABC123\x1d99TESTING").unwrap();
        assert_eq!(scan.symbology, Some(Symbology::Gs1DataMatrix));
        assert_eq!(scan.parsed.gtin.as_deref(), Some("12312312312333"));
        assert_eq!(scan.parsed.lot.as_deref(), Some("ABC123"));
        assert_eq!(scan.gs1.get("99").map(String::as_str), Some("TESTING"));
    }

    #[test]
    fn gs1_databar_vector() {
        let scan = decode(b"]e0010950600013435215260300").unwrap();
        assert_eq!(scan.symbology, Some(Symbology::Gs1DataBar));
        assert_eq!(scan.parsed.gtin.as_deref(), Some("09506000134352"));
        assert_eq!(scan.parsed.best_before.as_deref(), Some("2026-03-31"));
    }

    #[test]
    fn ean_13_with_bad_check_digit_fails() {
        assert_eq!(
            decode(b"]E02112345678901"),
            Err(ScanError::CheckDigit { symbology: Symbology::Ean13, pos: 15, expected: 0, found: 1 })
        );
    }

    #[test]
    fn ean_13_too_short_fails() {
        assert_eq!(
            decode(b"]E0123456789012"),
            Err(ScanError::BadLength { symbology: Symbology::Ean13, expected: "13", found: 12 })
        );
    }

    #[test]
    fn ean_13_and_ean_8_yield_gtin_14() {
        assert_eq!(decode(b"]E05901234123457").unwrap().parsed.gtin.as_deref(), Some("05901234123457"));
        assert_eq!(decode(b"]E402345673").unwrap().parsed.gtin.as_deref(), Some("00000002345673"));
        assert_eq!(decode(b"]E3590123412345712").unwrap().parsed.gtin.as_deref(), Some("05901234123457"));
        assert!(matches!(decode(b"]E059012341234x7"), Err(ScanError::NotNumeric { pos: 14, .. })));
    }

    #[test]
    fn itf_14_with_valid_check_digit_is_a_gtin() {
        assert_eq!(decode(b"]I124012345678905").unwrap().parsed.gtin.as_deref(), Some("24012345678905"));
        assert_eq!(decode(b"]I1123456").unwrap().parsed.gtin, None);
    }

    #[test]
    fn digital_link_in_plain_qr_vector() {
        let scan = decode(b"]Q1https://id.gs1.org/01/09506000134352/10/ABC123?17=261231").unwrap();
        assert_eq!(scan.symbology, Some(Symbology::Qr));
        assert_eq!(scan.gs1.get("01").map(String::as_str), Some("09506000134352"));
        assert_eq!(scan.gs1.get("10").map(String::as_str), Some("ABC123"));
        assert_eq!(scan.parsed.expiry.as_deref(), Some("2026-12-31"));
    }

    #[test]
    fn digital_link_without_aim_prefix_and_plain_urls() {
        let scan = decode(b"https://id.gs1.org/00/106141411234567897").unwrap();
        assert_eq!(scan.aim, None);
        assert_eq!(scan.parsed.sscc.as_deref(), Some("106141411234567897"));
        let scan = decode(b"]Q1https://example.com/help").unwrap();
        assert!(scan.gs1.is_empty() && scan.parsed.is_empty());
    }

    #[test]
    fn broken_gs1_data_reports_position_in_the_raw_scan() {
        assert_eq!(
            decode(b"]C10109506000134353"),
            Err(ScanError::Gs1(Gs1Error::CheckDigit { pos: 5, ai: "01".into(), expected: 2, found: 3 }))
        );
        assert_eq!(decode(b"]C1"), Err(ScanError::Gs1(Gs1Error::Empty { pos: 3 })));
        assert_eq!(decode(b""), Err(ScanError::Empty));
    }

    #[test]
    fn alternative_separator_from_options() {
        let mut opts = ScanOptions::new(2026);
        opts.gs1.alt_separator = Some(b'~');
        let scan = decode_scan(b"]C110LOT1~21SER", &opts).unwrap();
        assert_eq!(scan.parsed.lot.as_deref(), Some("LOT1"));
        assert_eq!(scan.parsed.serial.as_deref(), Some("SER"));
    }

    #[test]
    fn invalid_utf8_keeps_the_valid_characters_and_the_exact_bytes() {
        // A valid é (c3 a9) next to one stray byte: the é survives, the stray byte is marked.
        let scan = decode(b"]C0caf\xc3\xa9 \xff").unwrap();
        assert_eq!(scan.raw, "]C0caf\u{e9} \u{fffd}");
        assert_eq!(scan.raw_hex.as_deref(), Some("5d4330636166c3a920ff"));
        assert!(decode("]C0café".as_bytes()).unwrap().raw_hex.is_none());
    }

    proptest! {
        #[test]
        fn arbitrary_bytes_never_panic(raw in prop::collection::vec(any::<u8>(), 0..80)) {
            if let Ok(scan) = decode(&raw) {
                // Whatever the bytes, the event can give them back exactly.
                let exact = match &scan.raw_hex {
                    Some(hex) => (0..hex.len()).step_by(2).map(|i| u8::from_str_radix(&hex[i..i + 2], 16).unwrap()).collect(),
                    None => scan.raw.as_bytes().to_vec(),
                };
                prop_assert_eq!(exact, raw);
            }
        }

        #[test]
        fn aim_prefixed_bytes_never_panic(
            aim in prop::sample::select(vec!["]C1", "]E0", "]E3", "]E4", "]e0", "]d2", "]Q1", "]Q3", "]I1", "]J1"]),
            data in prop::collection::vec(prop_oneof![Just(0x1du8), 0x20u8..0x7f], 0..60),
        ) {
            let mut raw = aim.as_bytes().to_vec();
            raw.extend_from_slice(&data);
            if let Ok(scan) = decode(&raw) {
                prop_assert_eq!(scan.raw.as_bytes(), &raw[..]);
            }
        }

        #[test]
        fn valid_ean_13_round_trips_to_gtin(data in "[0-9]{12}") {
            let c = check_digit::compute(data.as_bytes()).unwrap();
            let raw = format!("]E0{data}{c}");
            let scan = decode(raw.as_bytes()).unwrap();
            prop_assert_eq!(scan.parsed.gtin, Some(format!("0{data}{c}")));
        }
    }
}
