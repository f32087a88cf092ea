//! GS1 data: element strings (`0109506000134352` `3103001250` `10ABC123<GS>2112345`) and GS1
//! Digital Link URIs (`https://id.gs1.org/01/09506000134352/10/ABC123?17=261231`), turned into
//! the `gs1` map (AI → value, values as sent) and the `parsed` fields of the `scan` payload.
//!
//! - AIs with a predefined length (00, 01–03, 11–19, 20, 31xx–36xx, 41x) need no separator;
//!   every other AI ends at FNC1 (`<GS>`, 0x1D, or a configured alternative separator) or at the
//!   end of the data. Separators at the start, end or doubled are ignored.
//! - Values are checked against a dictionary of the AIs used in logistics (length, numeric or
//!   not), GTIN/SSCC/GLN check digits, and YYMMDD dates (DD = 00 is the last day of the month;
//!   the century follows GS1 General Specifications §7.12 relative to a reference year).
//! - 310n (kg), 320n (lb) and 357n (oz): the fourth digit is the number of decimals; the
//!   weight becomes a decimal string (`3103001250` → `"1.250"` kg).
//!
//! Positions in errors are byte offsets into the input given (the caller adds the AIM prefix).

use std::collections::BTreeMap;

use serde::Serialize;
use thiserror::Error;

use super::check_digit;
use crate::decimal;
use crate::scale::WeightUnit;

/// FNC1 as transmitted by scanners: ASCII GS.
pub const GS: u8 = 0x1D;

/// Why GS1 data was rejected. `pos` is a byte offset into the scan.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum Gs1Error {
    /// The symbology promises GS1 data but there is none.
    #[error("empty GS1 data at byte {pos}")]
    Empty {
        /// Where the data should have started.
        pos: usize,
    },
    /// Fewer than the digits an AI needs, or a non-digit where an AI must be.
    #[error("invalid application identifier at byte {pos}")]
    InvalidAi {
        /// Start of the would-be AI.
        pos: usize,
    },
    /// An AI this parser does not know (so its length and end are unknown).
    #[error("unknown application identifier ({ai}) at byte {pos}")]
    UnknownAi {
        /// Start of the AI.
        pos: usize,
        /// The AI digits.
        ai: String,
    },
    /// A predefined-length value is cut short (end of data or a separator).
    #[error("({ai}) at byte {pos} needs {expected} characters, found {found}")]
    Truncated {
        /// Start of the value.
        pos: usize,
        /// The AI.
        ai: String,
        /// Required length.
        expected: usize,
        /// Characters present.
        found: usize,
    },
    /// A value is outside the AI's allowed length.
    #[error("({ai}) at byte {pos} must be {min}..={max} characters, found {found}")]
    BadLength {
        /// Start of the value.
        pos: usize,
        /// The AI.
        ai: String,
        /// Minimum length.
        min: usize,
        /// Maximum length.
        max: usize,
        /// Actual length.
        found: usize,
    },
    /// A character not allowed in this AI's value (a non-digit in a numeric AI, a control byte…).
    #[error("({ai}) has an invalid character {byte:#04x} at byte {pos}")]
    InvalidCharacter {
        /// Offset of the character.
        pos: usize,
        /// The AI.
        ai: String,
        /// The offending byte.
        byte: u8,
    },
    /// A GTIN, SSCC or GLN with a wrong check digit.
    #[error("({ai}) at byte {pos} has check digit {found}, expected {expected}")]
    CheckDigit {
        /// Start of the value.
        pos: usize,
        /// The AI.
        ai: String,
        /// Computed check digit.
        expected: u8,
        /// Received check digit.
        found: u8,
    },
    /// A YYMMDD value that is not a date (month 13, 31 February…).
    #[error("({ai}) at byte {pos} is not a valid YYMMDD date: {value}")]
    InvalidDate {
        /// Start of the value.
        pos: usize,
        /// The AI.
        ai: String,
        /// The value.
        value: String,
    },
    /// A date-and-time value (7003, 8008) or a date range (7007) that is not one; `pos` is the
    /// byte of the offending field (the hour of `2612312500` is at `pos` + 6).
    #[error("({ai}) at byte {pos} is not a valid {format}: {field} {found} in {value}")]
    InvalidDateTime {
        /// The byte where the offending field starts.
        pos: usize,
        /// The AI.
        ai: String,
        /// The expected layout, e.g. `YYMMDDHHMM date and time`.
        format: &'static str,
        /// `date`, `hour`, `minute` or `second`.
        field: &'static str,
        /// The field's digits as received.
        found: String,
        /// The whole value.
        value: String,
    },
    /// The same AI twice with different values.
    #[error("({ai}) at byte {pos} repeats with a different value")]
    Conflict {
        /// Start of the second occurrence.
        pos: usize,
        /// The AI.
        ai: String,
    },
    /// A Digital Link URI that cannot be read.
    #[error("GS1 Digital Link at byte {pos}: {reason}")]
    DigitalLink {
        /// Offset in the URI.
        pos: usize,
        /// What is wrong.
        reason: &'static str,
    },
}

/// Options for GS1 parsing.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Gs1Options {
    /// An extra byte accepted as FNC1 besides `<GS>` (keyboard-wedge setups often map FNC1 to
    /// another character, e.g. `b'|'`).
    pub alt_separator: Option<u8>,
    /// The year the century rule for YYMMDD dates is applied against (normally the current year;
    /// passed in so that parsing stays pure).
    pub reference_year: u16,
}

impl Gs1Options {
    /// Options with `<GS>` as the only separator.
    pub fn new(reference_year: u16) -> Self {
        Gs1Options { alt_separator: None, reference_year }
    }

    fn is_separator(&self, b: u8) -> bool {
        b == GS || self.alt_separator == Some(b)
    }
}

/// One AI and its value, in the order found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Element {
    /// The application identifier, e.g. `"3103"`.
    pub ai: String,
    /// The value as sent (`"001250"`); GTINs from Digital Link are padded to 14 digits.
    pub value: String,
    /// Byte offset of the AI.
    pub pos: usize,
}

/// A weight carried in the data (AI 310n, 320n, 357n).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct NetWeight {
    /// Decimal string, e.g. `"1.250"`.
    pub value: String,
    /// Unit of the AI family.
    pub unit: WeightUnit,
}

/// The `parsed` object of the `scan` payload: the fields a warehouse flow needs.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct ScanParsed {
    /// GTIN-14 (AI 01, or an EAN/UPC/ITF-14 left-padded to 14 digits).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub gtin: Option<String>,
    /// SSCC (AI 00), 18 digits.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub sscc: Option<String>,
    /// Batch/lot (AI 10).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub lot: Option<String>,
    /// Serial number (AI 21).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub serial: Option<String>,
    /// Expiry date (AI 17), `YYYY-MM-DD`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub expiry: Option<String>,
    /// Best-before date (AI 15), `YYYY-MM-DD`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub best_before: Option<String>,
    /// Net weight (AI 310n kg, 320n lb, 357n oz).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub net_weight: Option<NetWeight>,
    /// Count (AI 30 variable count, else AI 37 count of trade items), decimal string.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub count: Option<String>,
}

impl ScanParsed {
    /// `true` when no field is set.
    pub fn is_empty(&self) -> bool {
        *self == ScanParsed::default()
    }
}

/// The result of GS1 parsing: the `gs1` map and the `parsed` fields.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Gs1Data {
    /// Every element in the order found.
    pub elements: Vec<Element>,
    /// AI → value.
    pub map: BTreeMap<String, String>,
    /// The interpreted fields.
    pub parsed: ScanParsed,
}

// ---------------------------------------------------------------------------------------------
// AI dictionary
// ---------------------------------------------------------------------------------------------

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Check {
    None,
    /// Mod-10 check digit over the whole value.
    Mod10,
    /// YYMMDD date.
    Date,
    /// YYMMDDHHMM (7003 expiration date and time).
    DateTime,
    /// YYMMDD, optionally followed by a second YYMMDD (7007 harvest date range).
    DateRange,
    /// YYMMDDHH, optionally MM and SS (8008 production date and time).
    DateHour,
}

#[derive(Debug, Clone, Copy)]
struct AiSpec {
    min: usize,
    max: usize,
    /// Length of the leading all-digit part (the whole value for numeric AIs).
    numeric_prefix: usize,
    /// Predefined length: no separator needed after the value.
    predefined: bool,
    check: Check,
}

const fn n(len: usize) -> AiSpec {
    AiSpec { min: len, max: len, numeric_prefix: len, predefined: false, check: Check::None }
}
const fn n_var(max: usize) -> AiSpec {
    AiSpec { min: 1, max, numeric_prefix: max, predefined: false, check: Check::None }
}
const fn x_var(max: usize) -> AiSpec {
    AiSpec { min: 1, max, numeric_prefix: 0, predefined: false, check: Check::None }
}
/// `digits` leading digits then up to `rest` more (numeric or not).
const fn mixed(digits: usize, rest: usize, numeric: bool) -> AiSpec {
    AiSpec {
        min: digits,
        max: digits + rest,
        numeric_prefix: if numeric { digits + rest } else { digits },
        predefined: false,
        check: Check::None,
    }
}
const fn predefined(spec: AiSpec) -> AiSpec {
    AiSpec { predefined: true, ..spec }
}
const fn checked(spec: AiSpec, check: Check) -> AiSpec {
    AiSpec { check, ..spec }
}

/// Number of digits of the AI that starts with these two digits (GS1 guarantees the first two
/// digits determine the AI length).
fn ai_length(first_two: u8) -> Option<usize> {
    match first_two {
        0..=22 | 30 | 37 | 90..=99 => Some(2),
        23..=29 | 40..=42 | 71 => Some(3),
        31..=36 | 39 | 70 | 72 | 80..=82 => Some(4),
        _ => None,
    }
}

fn digit_at(ai: &[u8], i: usize) -> u8 {
    ai.get(i).map_or(0, |b| b.wrapping_sub(b'0'))
}

/// The dictionary: `ai` is 2–4 ASCII digits as returned by [`ai_length`].
fn ai_spec(ai: &[u8]) -> Option<AiSpec> {
    let d = |i| digit_at(ai, i);
    let spec = match ai.len() {
        2 => match d(0) * 10 + d(1) {
            0 => predefined(checked(n(18), Check::Mod10)),
            1..=3 => predefined(checked(n(14), Check::Mod10)),
            10 | 21 | 22 => x_var(20),
            11 | 12 | 13 | 15 | 16 | 17 => predefined(checked(n(6), Check::Date)),
            20 => predefined(n(2)),
            30 | 37 => n_var(8),
            90 => x_var(30),
            91..=99 => x_var(90),
            _ => return None,
        },
        3 => match u16::from(d(0)) * 100 + u16::from(d(1)) * 10 + u16::from(d(2)) {
            235 => x_var(28),
            240 | 241 | 250 | 251 | 400 | 401 | 403 => x_var(30),
            242 => n_var(6),
            243 | 254 | 420 => x_var(20),
            253 => mixed(13, 17, false),
            255 => mixed(13, 12, true),
            402 => n(17),
            410..=417 => predefined(checked(n(13), Check::Mod10)),
            421 => mixed(3, 9, false),
            422 | 424 | 426 => n(3),
            423 | 425 => mixed(3, 12, true),
            427 => x_var(3),
            710..=717 => x_var(20),
            _ => return None,
        },
        4 => {
            let head = u16::from(d(0)) * 100 + u16::from(d(1)) * 10 + u16::from(d(2));
            let last = d(3);
            match head {
                310..=316 | 320..=369 if last <= 5 => predefined(n(6)),
                390 | 392 => n_var(15),
                391 | 393 => mixed(3, 15, true),
                394 if last <= 3 => n(4),
                395 if last <= 5 => n(6),
                _ => match head * 10 + u16::from(last) {
                    7001 => n(13),
                    7002 => x_var(30),
                    7003 => checked(n(10), Check::DateTime),
                    7004 => n_var(4),
                    7005 => x_var(12),
                    7006 => checked(n(6), Check::Date),
                    7007 => checked(AiSpec { min: 6, ..n(12) }, Check::DateRange),
                    7008 => x_var(3),
                    7009 => x_var(10),
                    7010 => x_var(2),
                    7020..=7023 | 7240 => x_var(20),
                    7030..=7039 => mixed(3, 27, false),
                    7040 => AiSpec { min: 4, ..x_var(4) },
                    8001 => n(14),
                    8002 | 8012 => x_var(20),
                    8003 => mixed(14, 16, false),
                    8004 | 8010 => x_var(30),
                    8005 => n(6),
                    8006 | 8017 | 8018 | 8026 => n(18),
                    8007 => x_var(34),
                    8008 => checked(mixed(8, 4, true), Check::DateHour),
                    8009 => x_var(50),
                    8011 => n_var(12),
                    8013 | 8020 => x_var(25),
                    8019 => n_var(10),
                    8030 => x_var(90),
                    8110 | 8112 | 8200 => x_var(70),
                    8111 => n(4),
                    _ => return None,
                },
            }
        }
        _ => return None,
    };
    Some(spec)
}

/// AIs that identify something on their own and may start a Digital Link path.
fn is_primary_key(ai: &str) -> bool {
    matches!(ai, "00" | "01" | "253" | "255" | "401" | "402" | "414" | "417" | "8003" | "8004" | "8006")
        || matches!(ai, "8010" | "8013" | "8017" | "8018")
}

// ---------------------------------------------------------------------------------------------
// Dates
// ---------------------------------------------------------------------------------------------

fn is_leap(year: u32) -> bool {
    (year.is_multiple_of(4) && !year.is_multiple_of(100)) || year.is_multiple_of(400)
}

fn days_in_month(year: u32, month: u32) -> u32 {
    match month {
        2 if is_leap(year) => 29,
        2 => 28,
        4 | 6 | 9 | 11 => 30,
        _ => 31,
    }
}

/// Full year for a two-digit `yy` (GS1 General Specifications §7.12): a year 51–99 ahead of the
/// reference year is in the previous century, one 50–99 behind in the next century.
pub fn expand_year(yy: u32, reference_year: u16) -> u32 {
    let reference = u32::from(reference_year);
    let century = reference - reference % 100;
    let diff = i64::from(yy) - i64::from(reference % 100);
    match diff {
        51..=99 => century.saturating_sub(100) + yy,
        -99..=-50 => century + 100 + yy,
        _ => century + yy,
    }
}

/// Converts GS1 `YYMMDD` to `YYYY-MM-DD`; `DD = 00` is the last day of the month.
/// Returns `None` when the value is not a date.
pub fn gs1_date(value: &str, reference_year: u16) -> Option<String> {
    let b = value.as_bytes();
    if b.len() != 6 || !b.iter().all(u8::is_ascii_digit) {
        return None;
    }
    let two = |i: usize| u32::from(b[i] - b'0') * 10 + u32::from(b[i + 1] - b'0');
    let (yy, month, day) = (two(0), two(2), two(4));
    if !(1..=12).contains(&month) {
        return None;
    }
    let year = expand_year(yy, reference_year);
    let last = days_in_month(year, month);
    let day = if day == 0 { last } else { day };
    if day > last {
        return None;
    }
    Some(format!("{year:04}-{month:02}-{day:02}"))
}

// ---------------------------------------------------------------------------------------------
// Validation shared by element strings and Digital Link
// ---------------------------------------------------------------------------------------------

fn validate_value(ai: &str, spec: &AiSpec, value: &[u8], pos: usize, reference_year: u16) -> Result<(), Gs1Error> {
    if value.len() < spec.min || value.len() > spec.max {
        return Err(Gs1Error::BadLength { pos, ai: ai.to_owned(), min: spec.min, max: spec.max, found: value.len() });
    }
    for (i, &b) in value.iter().enumerate() {
        let ok = if i < spec.numeric_prefix { b.is_ascii_digit() } else { b.is_ascii_graphic() };
        if !ok {
            return Err(Gs1Error::InvalidCharacter { pos: pos + i, ai: ai.to_owned(), byte: b });
        }
    }
    match spec.check {
        Check::None => {}
        Check::Mod10 => {
            let text = String::from_utf8_lossy(value);
            if let Err(check_digit::CheckDigitError::Mismatch { expected, found }) = check_digit::validate(&text) {
                return Err(Gs1Error::CheckDigit { pos, ai: ai.to_owned(), expected, found });
            }
        }
        Check::Date => {
            let text = String::from_utf8_lossy(value);
            if gs1_date(&text, reference_year).is_none() {
                return Err(Gs1Error::InvalidDate { pos, ai: ai.to_owned(), value: text.into_owned() });
            }
        }
        Check::DateTime => check_date_time(
            ai,
            value,
            pos,
            reference_year,
            "YYMMDDHHMM date and time",
            &[("hour", 23), ("minute", 59)],
        )?,
        Check::DateHour => {
            // YYMMDDHH, then optionally minutes, then optionally seconds (2 digits each).
            let fields: &[(&'static str, u32)] = &[("hour", 23), ("minute", 59), ("second", 59)];
            let parts = (value.len().saturating_sub(6) / 2).min(3);
            if !value.len().is_multiple_of(2) || !(8..=12).contains(&value.len()) {
                return Err(Gs1Error::BadLength { pos, ai: ai.to_owned(), min: 8, max: 12, found: value.len() });
            }
            check_date_time(ai, value, pos, reference_year, "YYMMDDHH[MM[SS]] date and time", &fields[..parts])?;
        }
        Check::DateRange => {
            if value.len() != 6 && value.len() != 12 {
                return Err(Gs1Error::BadLength { pos, ai: ai.to_owned(), min: 6, max: 12, found: value.len() });
            }
            for (i, chunk) in value.chunks(6).enumerate() {
                check_date_time(ai, chunk, pos + 6 * i, reference_year, "YYMMDD[YYMMDD] date range", &[])?;
            }
        }
    }
    Ok(())
}

/// A strict YYMMDD date (day 00 is not a day here: that rule belongs to 11–17) followed by
/// two-digit `fields` with their maxima.
fn check_date_time(
    ai: &str,
    value: &[u8],
    pos: usize,
    reference_year: u16,
    format: &'static str,
    fields: &[(&'static str, u32)],
) -> Result<(), Gs1Error> {
    let text = String::from_utf8_lossy(value);
    let fail = |at: usize, field: &'static str, len: usize| Gs1Error::InvalidDateTime {
        pos: pos + at,
        ai: ai.to_owned(),
        format,
        field,
        found: text.get(at..at + len).unwrap_or("").to_owned(),
        value: text.clone().into_owned(),
    };
    let date = text.get(..6).unwrap_or("");
    if date.len() != 6 || date.ends_with("00") || gs1_date(date, reference_year).is_none() {
        return Err(fail(0, "date", 6));
    }
    for (i, &(field, max)) in fields.iter().enumerate() {
        let at = 6 + 2 * i;
        let v = text.get(at..at + 2).and_then(|t| t.parse::<u32>().ok());
        if v.is_none_or(|v| v > max) {
            return Err(fail(at, field, 2));
        }
    }
    Ok(())
}

fn push_element(elements: &mut Vec<Element>, element: Element) -> Result<(), Gs1Error> {
    match elements.iter().find(|e| e.ai == element.ai) {
        Some(existing) if existing.value == element.value => Ok(()),
        Some(_) => Err(Gs1Error::Conflict { pos: element.pos, ai: element.ai }),
        None => {
            elements.push(element);
            Ok(())
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Element strings
// ---------------------------------------------------------------------------------------------

/// Parses a GS1 element string (the data after the AIM prefix). `base` is added to every
/// position reported in errors and elements (pass the AIM prefix length).
pub fn parse_element_string(data: &[u8], opts: &Gs1Options, base: usize) -> Result<Vec<Element>, Gs1Error> {
    let mut elements = Vec::new();
    let mut i = 0;
    while i < data.len() {
        if opts.is_separator(data[i]) {
            i += 1;
            continue;
        }
        let start = i;
        let first_two = match data.get(i..i + 2) {
            Some([a, b]) if a.is_ascii_digit() && b.is_ascii_digit() => (a - b'0') * 10 + (b - b'0'),
            _ => return Err(Gs1Error::InvalidAi { pos: base + start }),
        };
        let Some(ai_len) = ai_length(first_two) else {
            let ai = String::from_utf8_lossy(&data[i..i + 2]).into_owned();
            return Err(Gs1Error::UnknownAi { pos: base + start, ai });
        };
        let ai_bytes = match data.get(i..i + ai_len) {
            Some(a) if a.iter().all(u8::is_ascii_digit) => a,
            _ => return Err(Gs1Error::InvalidAi { pos: base + start }),
        };
        let ai = String::from_utf8_lossy(ai_bytes).into_owned();
        let Some(spec) = ai_spec(ai_bytes) else {
            return Err(Gs1Error::UnknownAi { pos: base + start, ai });
        };
        i += ai_len;
        let value_start = i;
        let value = if spec.predefined {
            let available = data[i..].iter().take(spec.max).take_while(|&&b| !opts.is_separator(b)).count();
            if available < spec.max {
                return Err(Gs1Error::Truncated { pos: base + value_start, ai, expected: spec.max, found: available });
            }
            i += spec.max;
            &data[value_start..i]
        } else {
            let len = data[i..].iter().take_while(|&&b| !opts.is_separator(b)).count();
            i += len;
            &data[value_start..i]
        };
        validate_value(&ai, &spec, value, base + value_start, opts.reference_year)?;
        let value = String::from_utf8_lossy(value).into_owned();
        push_element(&mut elements, Element { ai, value, pos: base + start })?;
    }
    if elements.is_empty() {
        return Err(Gs1Error::Empty { pos: base });
    }
    Ok(elements)
}

// ---------------------------------------------------------------------------------------------
// Digital Link
// ---------------------------------------------------------------------------------------------

fn percent_decode(s: &str, pos: usize) -> Result<Vec<u8>, Gs1Error> {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'%' {
            let hex = |c: u8| char::from(c).to_digit(16);
            match (b.get(i + 1).and_then(|&c| hex(c)), b.get(i + 2).and_then(|&c| hex(c))) {
                (Some(h), Some(l)) => {
                    // h, l < 16, so the byte fits.
                    out.push((h * 16 + l) as u8);
                    i += 3;
                }
                _ => return Err(Gs1Error::DigitalLink { pos: pos + i, reason: "bad percent escape" }),
            }
        } else {
            out.push(b[i]);
            i += 1;
        }
    }
    Ok(out)
}

fn dl_element(ai: &str, raw_value: &str, pos: usize, value_pos: usize, opts: &Gs1Options) -> Result<Element, Gs1Error> {
    if !(2..=4).contains(&ai.len()) || !ai.bytes().all(|b| b.is_ascii_digit()) {
        return Err(Gs1Error::InvalidAi { pos });
    }
    let spec = ai_spec(ai.as_bytes())
        .filter(|_| ai_length(digit_at(ai.as_bytes(), 0) * 10 + digit_at(ai.as_bytes(), 1)) == Some(ai.len()));
    let Some(spec) = spec else {
        return Err(Gs1Error::UnknownAi { pos, ai: ai.to_owned() });
    };
    let mut value = percent_decode(raw_value, value_pos)?;
    // Digital Link allows GTIN-8/12/13 in /01/; the element string form is always GTIN-14.
    if ai == "01" && matches!(value.len(), 8 | 12 | 13) {
        let mut padded = vec![b'0'; 14 - value.len()];
        padded.extend_from_slice(&value);
        value = padded;
    }
    validate_value(ai, &spec, &value, value_pos, opts.reference_year)?;
    Ok(Element { ai: ai.to_owned(), value: String::from_utf8_lossy(&value).into_owned(), pos })
}

/// Parses a GS1 Digital Link URI. Returns `Ok(None)` when `uri` is not one (not http(s), or no
/// primary-key AI such as `/01/` in its path) so that plain URLs in QR codes stay plain data.
/// Query parameters whose names are not all digits (`linkType`…) are ignored.
pub fn parse_digital_link(uri: &str, opts: &Gs1Options, base: usize) -> Result<Option<Vec<Element>>, Gs1Error> {
    let has_scheme = |scheme: &str| uri.get(..scheme.len()).is_some_and(|s| s.eq_ignore_ascii_case(scheme));
    let after_scheme = if has_scheme("https://") {
        8
    } else if has_scheme("http://") {
        7
    } else {
        return Ok(None);
    };
    let rest = &uri[after_scheme..];
    let end_of_uri = rest.find('#').unwrap_or(rest.len());
    let rest = &rest[..end_of_uri];
    let (path_part, query) = match rest.split_once('?') {
        Some((p, q)) => (p, Some(q)),
        None => (rest, None),
    };
    let Some(path_start) = path_part.find('/') else {
        return Ok(None);
    };
    // Collect path segments with their byte offsets in `uri`.
    let mut segments = Vec::new();
    let mut offset = after_scheme + path_start + 1;
    for seg in path_part[path_start + 1..].split('/') {
        segments.push((seg, offset));
        offset += seg.len() + 1;
    }
    let Some(k) = segments.iter().position(|(s, _)| is_primary_key(s)) else {
        return Ok(None);
    };
    let pairs = &segments[k..];
    let pairs = match pairs.last() {
        Some(("", _)) => &pairs[..pairs.len() - 1],
        _ => pairs,
    };
    if pairs.len() % 2 != 0 {
        let pos = pairs.last().map_or(offset, |(_, p)| *p);
        return Err(Gs1Error::DigitalLink { pos: base + pos, reason: "path ends with an AI without a value" });
    }
    let mut elements = Vec::new();
    for pair in pairs.chunks_exact(2) {
        let ((ai, ai_pos), (value, value_pos)) = (pair[0], pair[1]);
        if value.is_empty() {
            return Err(Gs1Error::DigitalLink { pos: base + value_pos, reason: "empty path value" });
        }
        push_element(&mut elements, dl_element(ai, value, base + ai_pos, base + value_pos, opts)?)?;
    }
    if let Some(query) = query {
        let mut offset = after_scheme + path_part.len() + 1;
        for param in query.split('&') {
            let here = offset;
            offset += param.len() + 1;
            let (key, value) = param.split_once('=').unwrap_or((param, ""));
            if key.is_empty() || !key.bytes().all(|b| b.is_ascii_digit()) {
                continue;
            }
            let value_pos = base + here + key.len() + 1;
            push_element(&mut elements, dl_element(key, value, base + here, value_pos, opts)?)?;
        }
    }
    Ok(Some(elements))
}

// ---------------------------------------------------------------------------------------------
// Interpretation
// ---------------------------------------------------------------------------------------------

fn weight_of(ai: &str, value: &str) -> Option<NetWeight> {
    let b = ai.as_bytes();
    if b.len() != 4 {
        return None;
    }
    let unit = match &b[..3] {
        b"310" => WeightUnit::Kg,
        b"320" => WeightUnit::Lb,
        b"357" => WeightUnit::Oz,
        _ => return None,
    };
    let decimals = usize::from(b[3].wrapping_sub(b'0'));
    Some(NetWeight { value: decimal::from_scaled(value, decimals, false)?, unit })
}

/// Builds the `gs1` map and the `parsed` fields from validated elements.
pub fn interpret(elements: Vec<Element>, reference_year: u16) -> Gs1Data {
    let mut parsed = ScanParsed::default();
    let mut map = BTreeMap::new();
    let mut count_30 = None;
    let mut count_37 = None;
    for e in &elements {
        let v = &e.value;
        match e.ai.as_str() {
            "01" => parsed.gtin = Some(v.clone()),
            "00" => parsed.sscc = Some(v.clone()),
            "10" => parsed.lot = Some(v.clone()),
            "21" => parsed.serial = Some(v.clone()),
            "17" => parsed.expiry = gs1_date(v, reference_year),
            "15" => parsed.best_before = gs1_date(v, reference_year),
            "30" => count_30 = decimal::normalize(v),
            "37" => count_37 = decimal::normalize(v),
            ai => {
                if parsed.net_weight.is_none() {
                    parsed.net_weight = weight_of(ai, v);
                }
            }
        }
        map.insert(e.ai.clone(), v.clone());
    }
    parsed.count = count_30.or(count_37);
    Gs1Data { elements, map, parsed }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    const YEAR: u16 = 2026;

    fn opts() -> Gs1Options {
        Gs1Options::new(YEAR)
    }

    fn parse(data: &[u8]) -> Result<Gs1Data, Gs1Error> {
        parse_element_string(data, &opts(), 0).map(|e| interpret(e, YEAR))
    }

    #[test]
    fn gs1_128_vector_with_weight_best_before_lot_and_serial() {
        let d = parse(b"010950600013435231030012501526030010ABC123\x1d2112345").unwrap();
        assert_eq!(d.parsed.gtin.as_deref(), Some("09506000134352"));
        assert_eq!(d.parsed.net_weight, Some(NetWeight { value: "1.250".into(), unit: WeightUnit::Kg }));
        assert_eq!(d.parsed.best_before.as_deref(), Some("2026-03-31"));
        assert_eq!(d.parsed.lot.as_deref(), Some("ABC123"));
        assert_eq!(d.parsed.serial.as_deref(), Some("12345"));
        assert_eq!(d.map.get("3103").map(String::as_str), Some("001250"));
        assert_eq!(d.map.get("15").map(String::as_str), Some("260300"));
    }

    #[test]
    fn sscc_is_parsed() {
        let d = parse(b"00106141411234567897").unwrap();
        assert_eq!(d.parsed.sscc.as_deref(), Some("106141411234567897"));
    }

    #[test]
    fn ai_422_needs_the_separator_before_the_weight() {
        let d = parse(b"0109506000134352422528\x1d3103001250").unwrap();
        assert_eq!(d.map.get("422").map(String::as_str), Some("528"));
        assert_eq!(d.parsed.net_weight.unwrap().value, "1.250");
        // Without the separator 422 swallows the weight and is too long.
        assert!(matches!(
            parse(b"01095060001343524225283103001250"),
            Err(Gs1Error::BadLength { ai, found: 13, .. }) if ai == "422"
        ));
    }

    #[test]
    fn datamatrix_vector_with_company_internal_ai_99() {
        let d = parse(b"011231231231233310ABC123\x1d99TESTING").unwrap();
        assert_eq!(d.parsed.gtin.as_deref(), Some("12312312312333"));
        assert_eq!(d.parsed.lot.as_deref(), Some("ABC123"));
        assert_eq!(d.map.get("99").map(String::as_str), Some("TESTING"));
    }

    #[test]
    fn databar_vector() {
        let d = parse(b"010950600013435215260300").unwrap();
        assert_eq!(d.parsed.gtin.as_deref(), Some("09506000134352"));
        assert_eq!(d.parsed.best_before.as_deref(), Some("2026-03-31"));
    }

    #[test]
    fn trailing_and_leading_fnc1_are_ignored() {
        let d = parse(b"\x1d10ABC\x1d\x1d").unwrap();
        assert_eq!(d.parsed.lot.as_deref(), Some("ABC"));
    }

    #[test]
    fn alternative_separator_is_accepted() {
        let o = Gs1Options { alt_separator: Some(b'|'), reference_year: YEAR };
        let e = parse_element_string(b"10ABC|2112", &o, 0).unwrap();
        assert_eq!(e[0].value, "ABC");
        assert_eq!(e[1].value, "12");
    }

    #[test]
    fn bad_gtin_check_digit_is_reported_with_position() {
        assert_eq!(
            parse_element_string(b"0109506000134353", &opts(), 3),
            Err(Gs1Error::CheckDigit { pos: 5, ai: "01".into(), expected: 2, found: 3 })
        );
    }

    #[test]
    fn truncated_predefined_value_is_an_error() {
        assert_eq!(
            parse(b"01095060001343"),
            Err(Gs1Error::Truncated { pos: 2, ai: "01".into(), expected: 14, found: 12 })
        );
        assert!(matches!(parse(b"0109506\x1d0001343"), Err(Gs1Error::Truncated { found: 5, .. })));
    }

    #[test]
    fn unknown_and_invalid_ais_are_errors() {
        assert!(matches!(parse(b"0512345"), Err(Gs1Error::UnknownAi { pos: 0, .. })));
        assert!(matches!(parse(b"3106001250"), Err(Gs1Error::UnknownAi { .. })));
        assert_eq!(parse(b"AB123"), Err(Gs1Error::InvalidAi { pos: 0 }));
        assert_eq!(parse(b"1"), Err(Gs1Error::InvalidAi { pos: 0 }));
        assert_eq!(parse(b""), Err(Gs1Error::Empty { pos: 0 }));
        assert_eq!(parse(b"\x1d"), Err(Gs1Error::Empty { pos: 0 }));
    }

    #[test]
    fn lot_longer_than_twenty_characters_is_rejected() {
        assert!(matches!(parse(b"10ABCDEFGHIJKLMNOPQRSTU"), Err(Gs1Error::BadLength { max: 20, found: 21, .. })));
        assert!(matches!(parse(b"10\x1d21X"), Err(Gs1Error::BadLength { min: 1, found: 0, .. })));
    }

    #[test]
    fn non_digit_in_numeric_ai_is_reported_where_it_is() {
        assert_eq!(parse(b"30 12"), Err(Gs1Error::InvalidCharacter { pos: 2, ai: "30".into(), byte: b' ' }));
    }

    #[test]
    fn conflicting_duplicate_ai_is_rejected_but_identical_repeat_is_not() {
        assert!(matches!(parse(b"10A\x1d10B"), Err(Gs1Error::Conflict { pos: 4, .. })));
        assert_eq!(parse(b"10A\x1d10A").unwrap().elements.len(), 1);
    }

    #[test]
    fn date_and_time_ais_are_validated() {
        assert!(parse(b"70032612312359").is_ok());
        let err = parse(b"70032612312500").unwrap_err();
        assert!(
            matches!(&err, Gs1Error::InvalidDateTime { pos: 10, field: "hour", found, .. } if found == "25"),
            "{err:?}"
        );
        assert_eq!(err.to_string(), "(7003) at byte 10 is not a valid YYMMDDHHMM date and time: hour 25 in 2612312500");
        assert!(matches!(parse(b"70032612311260"), Err(Gs1Error::InvalidDateTime { field: "minute", .. })));
        assert!(matches!(parse(b"70032613311200"), Err(Gs1Error::InvalidDateTime { pos: 4, field: "date", .. })));
        assert!(parse(b"7007261201261231").is_ok());
        assert!(matches!(parse(b"7007261201261331"), Err(Gs1Error::InvalidDateTime { pos: 10, .. })));
        assert!(parse(b"80082612311405").is_ok());
        assert!(matches!(parse(b"8008261231145961"), Err(Gs1Error::InvalidDateTime { field: "second", .. })));
        assert!(matches!(parse(b"8008261231241"), Err(Gs1Error::BadLength { .. })));
    }

    #[test]
    fn day_zero_means_last_day_of_month() {
        assert_eq!(gs1_date("260300", YEAR).as_deref(), Some("2026-03-31"));
        assert_eq!(gs1_date("280200", YEAR).as_deref(), Some("2028-02-29"));
        assert_eq!(gs1_date("270200", YEAR).as_deref(), Some("2027-02-28"));
        assert_eq!(gs1_date("260400", YEAR).as_deref(), Some("2026-04-30"));
        assert_eq!(gs1_date("261231", YEAR).as_deref(), Some("2026-12-31"));
    }

    #[test]
    fn invalid_dates_are_rejected() {
        for bad in ["261301", "260001", "260230", "270229", "26013", "2601AA"] {
            assert_eq!(gs1_date(bad, YEAR), None, "{bad}");
        }
        assert!(matches!(parse(b"17261301"), Err(Gs1Error::InvalidDate { pos: 2, .. })));
    }

    #[test]
    fn century_rule_follows_gs1_7_12() {
        assert_eq!(expand_year(26, 2026), 2026);
        assert_eq!(expand_year(76, 2026), 2076); // 50 ahead: current century
        assert_eq!(expand_year(77, 2026), 1977); // 51 ahead: previous century
        assert_eq!(expand_year(99, 2026), 1999);
        assert_eq!(expand_year(20, 2080), 2120); // 60 behind: next century
        assert_eq!(expand_year(30, 2080), 2130); // 50 behind: next century
        assert_eq!(expand_year(31, 2080), 2031); // 49 behind: current century
    }

    #[test]
    fn count_prefers_ai_30_and_strips_leading_zeros() {
        let d = parse(b"37000012\x1d3024").unwrap();
        assert_eq!(d.parsed.count.as_deref(), Some("24"));
        let d = parse(b"37000012").unwrap();
        assert_eq!(d.parsed.count.as_deref(), Some("12"));
    }

    #[test]
    fn pound_and_ounce_weights() {
        let d = parse(b"3202000150").unwrap();
        assert_eq!(d.parsed.net_weight, Some(NetWeight { value: "1.50".into(), unit: WeightUnit::Lb }));
        let d = parse(b"3571000123").unwrap();
        assert_eq!(d.parsed.net_weight, Some(NetWeight { value: "12.3".into(), unit: WeightUnit::Oz }));
    }

    #[test]
    fn digital_link_vector_parses_path_and_query() {
        let uri = "https://id.gs1.org/01/09506000134352/10/ABC123?17=261231";
        let e = parse_digital_link(uri, &opts(), 3).unwrap().unwrap();
        let d = interpret(e, YEAR);
        assert_eq!(d.parsed.gtin.as_deref(), Some("09506000134352"));
        assert_eq!(d.parsed.lot.as_deref(), Some("ABC123"));
        assert_eq!(d.parsed.expiry.as_deref(), Some("2026-12-31"));
        assert_eq!(d.map.len(), 3);
        assert_eq!(d.elements[0].pos, 3 + 19);
    }

    #[test]
    fn digital_link_pads_short_gtins_and_decodes_percent_escapes() {
        let uri = "https://example.com/some/prefix/01/5901234123457/21/A%2FB?linkType=gs1:pip&3103=001250#frag";
        let d = interpret(parse_digital_link(uri, &opts(), 0).unwrap().unwrap(), YEAR);
        assert_eq!(d.parsed.gtin.as_deref(), Some("05901234123457"));
        assert_eq!(d.parsed.serial.as_deref(), Some("A/B"));
        assert_eq!(d.parsed.net_weight.unwrap().value, "1.250");
    }

    #[test]
    fn plain_urls_are_not_digital_links() {
        assert_eq!(parse_digital_link("https://example.com/products/42", &opts(), 0), Ok(None));
        assert_eq!(parse_digital_link("ftp://id.gs1.org/01/09506000134352", &opts(), 0), Ok(None));
        assert_eq!(parse_digital_link("https://example.com", &opts(), 0), Ok(None));
    }

    #[test]
    fn broken_digital_links_are_errors() {
        let o = opts();
        assert!(matches!(
            parse_digital_link("https://id.gs1.org/01/09506000134353", &o, 0),
            Err(Gs1Error::CheckDigit { .. })
        ));
        assert!(matches!(
            parse_digital_link("https://id.gs1.org/01/09506000134352/10", &o, 0),
            Err(Gs1Error::DigitalLink { .. })
        ));
        assert!(matches!(
            parse_digital_link("https://id.gs1.org/01/09506000134352/10/A%zz", &o, 0),
            Err(Gs1Error::DigitalLink { reason: "bad percent escape", .. })
        ));
        assert!(matches!(
            parse_digital_link("https://id.gs1.org/01/09506000134352?17=261399", &o, 0),
            Err(Gs1Error::InvalidDate { .. })
        ));
        assert!(matches!(
            parse_digital_link("https://id.gs1.org/01/09506000134352?999=1", &o, 0),
            Err(Gs1Error::UnknownAi { .. })
        ));
    }

    /// Encodes elements as an element string, inserting `<GS>` after variable-length values.
    fn encode(elements: &[(String, String)]) -> Vec<u8> {
        let mut out = Vec::new();
        for (ai, value) in elements {
            out.extend_from_slice(ai.as_bytes());
            out.extend_from_slice(value.as_bytes());
            let spec = ai_spec(ai.as_bytes()).unwrap();
            if !spec.predefined {
                out.push(GS);
            }
        }
        out
    }

    fn element() -> impl Strategy<Value = (String, String)> {
        prop_oneof![
            "[0-9]{13}".prop_map(|d| {
                let c = check_digit::compute(d.as_bytes()).unwrap();
                ("01".to_owned(), format!("{d}{c}"))
            }),
            "[A-Z0-9]{1,20}".prop_map(|v| ("10".to_owned(), v)),
            "[A-Za-z0-9]{1,20}".prop_map(|v| ("21".to_owned(), v)),
            "[0-9]{6}".prop_map(|v| ("3103".to_owned(), v)),
            "[0-9]{1,8}".prop_map(|v| ("30".to_owned(), v)),
            "[0-9]{3}".prop_map(|v| ("422".to_owned(), v)),
            (0u32..100, 1u32..13, 0u32..29).prop_map(|(y, m, d)| ("17".to_owned(), format!("{y:02}{m:02}{d:02}"))),
        ]
    }

    proptest! {
        #[test]
        fn element_string_parser_never_panics(data in prop::collection::vec(any::<u8>(), 0..64)) {
            let _ = parse_element_string(&data, &opts(), 3);
        }

        #[test]
        fn gs1_looking_bytes_never_panic(data in prop::collection::vec(prop_oneof![Just(0x1du8), 0x30u8..0x3a, 0x41u8..0x44], 0..64)) {
            let _ = parse(&data);
        }

        #[test]
        fn digital_link_parser_never_panics(s in "(https?://)?[a-z./0-9?=&%#A-Z]{0,60}") {
            let _ = parse_digital_link(&s, &opts(), 0);
        }

        #[test]
        fn unicode_digital_links_never_panic(s in "https://\\PC{0,10}/01/\\PC{0,20}(\\?\\PC{0,20})?") {
            let _ = parse_digital_link(&s, &opts(), 0);
        }

        #[test]
        fn encoded_elements_round_trip(elements in prop::collection::vec(element(), 1..6)) {
            let mut unique: Vec<(String, String)> = Vec::new();
            for (ai, v) in elements {
                if !unique.iter().any(|(a, _)| *a == ai) {
                    unique.push((ai, v));
                }
            }
            let parsed = parse_element_string(&encode(&unique), &opts(), 0).unwrap();
            let got: Vec<(String, String)> = parsed.into_iter().map(|e| (e.ai, e.value)).collect();
            prop_assert_eq!(got, unique);
        }
    }
}
