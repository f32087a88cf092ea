//! Label/receipt printer status replies → [`PrinterStatus`] (ready, or a list of problems):
//!
//! - ZPL `~HS`: three `<STX>…<ETX><CR><LF>` strings of comma-separated fields (parsed by field,
//!   not offset) → [`ZplHostStatus`];
//! - ZPL `~HQES`: the `ERRORS:` / `WARNINGS:` flag groups → [`HqesStatus`];
//! - TSPL `<ESC>!?`: one status byte;
//! - ESC/POS `DLE EOT n`: one status byte per request `n` (1–4);
//! - EPL2 `^ee`: a two-digit error code line.
//!
//! Some printers stay silent while the media is out or the head is open: a missing answer is a
//! status too ([`PrinterStatus::no_response`]).

use serde::Serialize;
use thiserror::Error;

/// Something that stops (or, as a warning, soon stops) printing.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum PrinterProblem {
    /// Media/paper out.
    PaperOut,
    /// Paper near end (a warning).
    PaperNearEnd,
    /// Paper jam.
    PaperJam,
    /// Ribbon out.
    RibbonOut,
    /// Print head open / up.
    HeadOpen,
    /// Cover open.
    CoverOpen,
    /// Paused.
    Paused,
    /// Receive buffer full.
    BufferFull,
    /// RAM corrupt.
    CorruptRam,
    /// Head under temperature.
    UnderTemperature,
    /// Head (or motor) over temperature.
    OverTemperature,
    /// Cutter fault.
    CutterFault,
    /// Offline.
    Offline,
    /// No answer to a status request.
    NoResponse,
    /// Anything else, described.
    Other(String),
}

/// A printer's state: ready when `problems` is empty.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct PrinterStatus {
    /// What prevents printing.
    pub problems: Vec<PrinterProblem>,
    /// Conditions that do not prevent printing yet.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub warnings: Vec<PrinterProblem>,
    /// The printer reports it is printing.
    pub busy: bool,
}

impl std::fmt::Display for PrinterProblem {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            PrinterProblem::PaperOut => "paper out",
            PrinterProblem::PaperNearEnd => "paper near end",
            PrinterProblem::PaperJam => "paper jam",
            PrinterProblem::RibbonOut => "ribbon out",
            PrinterProblem::HeadOpen => "head open",
            PrinterProblem::CoverOpen => "cover open",
            PrinterProblem::Paused => "paused",
            PrinterProblem::BufferFull => "buffer full",
            PrinterProblem::CorruptRam => "corrupt ram",
            PrinterProblem::UnderTemperature => "under temperature",
            PrinterProblem::OverTemperature => "over temperature",
            PrinterProblem::CutterFault => "cutter fault",
            PrinterProblem::Offline => "offline",
            PrinterProblem::NoResponse => "no response",
            PrinterProblem::Other(s) => s,
        })
    }
}

impl PrinterStatus {
    /// `true` when nothing prevents printing.
    pub fn is_ready(&self) -> bool {
        self.problems.is_empty()
    }

    /// The problems in words, comma-separated (`"paper out, head open"`); empty when ready.
    pub fn problems_text(&self) -> String {
        self.problems.iter().map(ToString::to_string).collect::<Vec<_>>().join(", ")
    }

    /// The status of a printer that did not answer.
    pub fn no_response() -> PrinterStatus {
        PrinterStatus { problems: vec![PrinterProblem::NoResponse], ..PrinterStatus::default() }
    }

    fn flag(&mut self, on: bool, problem: PrinterProblem) {
        if on {
            self.problems.push(problem);
        }
    }
}

/// A status reply that cannot be read.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum PrinterStatusError {
    /// Fewer strings/fields than the format has.
    #[error("{format}: expected at least {expected} {what}, found {found}")]
    Incomplete {
        /// `"~HS"`…
        format: &'static str,
        /// `"strings"` or `"fields in string N"`.
        what: &'static str,
        /// Needed.
        expected: usize,
        /// Present.
        found: usize,
    },
    /// A field that should be a number is not.
    #[error("{format}: field {field} of string {string} is not a number: {text:?}")]
    NotNumeric {
        /// `"~HS"`…
        format: &'static str,
        /// 1-based string number.
        string: usize,
        /// 0-based field index.
        field: usize,
        /// The field.
        text: String,
    },
    /// `~HQES` reply without the `ERRORS:` group or with malformed flags.
    #[error("~HQES: {reason}")]
    Hqes {
        /// What is wrong.
        reason: &'static str,
    },
    /// An ESC/POS status byte without its fixed bits (bit1 and bit4 set, bit0 and bit7 clear).
    #[error("ESC/POS: {byte:#04x} is not a status byte")]
    NotAStatusByte {
        /// The byte.
        byte: u8,
    },
    /// An ESC/POS request other than n = 1…4.
    #[error("ESC/POS: unknown status request n={n}")]
    UnknownRequest {
        /// The request.
        n: u8,
    },
    /// An EPL2 `^ee` reply that is not a two-digit code.
    #[error("EPL2: malformed error report {text:?}")]
    Epl {
        /// The reply.
        text: String,
    },
}

// ---------------------------------------------------------------------------------------------
// ZPL ~HS
// ---------------------------------------------------------------------------------------------

/// The fields of a ZPL `~HS` reply that matter to dockhand.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ZplHostStatus {
    /// String 1 field b.
    pub paper_out: bool,
    /// String 1 field c.
    pub paused: bool,
    /// String 1 field dddd (dots).
    pub label_length: u32,
    /// String 1 field eee.
    pub formats_in_buffer: u32,
    /// String 1 field f.
    pub buffer_full: bool,
    /// String 1 field g.
    pub diagnostic_mode: bool,
    /// String 1 field h.
    pub partial_format: bool,
    /// String 1 field j.
    pub corrupt_ram: bool,
    /// String 1 field k.
    pub under_temperature: bool,
    /// String 1 field l.
    pub over_temperature: bool,
    /// String 2 field o.
    pub head_up: bool,
    /// String 2 field p.
    pub ribbon_out: bool,
    /// String 2 field q.
    pub thermal_transfer: bool,
    /// String 2 field r.
    pub print_mode: u32,
    /// String 2 field t (peel-off: a label waits to be taken).
    pub label_waiting: bool,
    /// String 2 field uuuuuuuu.
    pub labels_remaining: u32,
    /// String 3 field y, when string 3 was received.
    pub static_ram_installed: Option<bool>,
}

impl ZplHostStatus {
    /// The common status.
    pub fn status(&self) -> PrinterStatus {
        let mut s = PrinterStatus::default();
        s.flag(self.paper_out, PrinterProblem::PaperOut);
        s.flag(self.head_up, PrinterProblem::HeadOpen);
        s.flag(self.ribbon_out, PrinterProblem::RibbonOut);
        s.flag(self.paused, PrinterProblem::Paused);
        s.flag(self.buffer_full, PrinterProblem::BufferFull);
        s.flag(self.corrupt_ram, PrinterProblem::CorruptRam);
        s.flag(self.under_temperature, PrinterProblem::UnderTemperature);
        s.flag(self.over_temperature, PrinterProblem::OverTemperature);
        s.flag(self.diagnostic_mode, PrinterProblem::Other("diagnostic mode".to_owned()));
        if self.label_waiting {
            s.warnings.push(PrinterProblem::Other("label waiting to be taken".to_owned()));
        }
        s.busy = self.formats_in_buffer > 0 || self.labels_remaining > 0;
        s
    }
}

/// Splits a `~HS` reply into its strings: `<STX>…<ETX>` segments, or lines when the transport
/// dropped STX/ETX.
fn hs_strings(reply: &[u8]) -> Vec<String> {
    let text: String = reply.iter().map(|&b| char::from(b)).collect();
    if text.contains('\x02') {
        text.split('\x02')
            .skip(1)
            .map(|s| s.split(['\x03', '\r', '\n']).next().unwrap_or("").trim().to_owned())
            .filter(|s| !s.is_empty())
            .collect()
    } else {
        text.split(['\r', '\n', '\x03']).map(|s| s.trim().to_owned()).filter(|s| !s.is_empty()).collect()
    }
}

/// Parses a `~HS` reply.
pub fn parse_zpl_hs(reply: &[u8]) -> Result<ZplHostStatus, PrinterStatusError> {
    const F: &str = "~HS";
    let strings = hs_strings(reply);
    if strings.len() < 2 {
        return Err(PrinterStatusError::Incomplete { format: F, what: "strings", expected: 2, found: strings.len() });
    }
    let fields = |i: usize| -> Vec<&str> { strings[i].split(',').map(str::trim).collect() };
    let (s1, s2) = (fields(0), fields(1));
    if s1.len() < 12 {
        return Err(PrinterStatusError::Incomplete {
            format: F,
            what: "fields in string 1",
            expected: 12,
            found: s1.len(),
        });
    }
    if s2.len() < 9 {
        return Err(PrinterStatusError::Incomplete {
            format: F,
            what: "fields in string 2",
            expected: 9,
            found: s2.len(),
        });
    }
    let num = |s: &[&str], string: usize, field: usize| -> Result<u32, PrinterStatusError> {
        s[field].parse::<u32>().map_err(|_| PrinterStatusError::NotNumeric {
            format: F,
            string,
            field,
            text: s[field].to_owned(),
        })
    };
    let static_ram_installed = match strings.get(2) {
        Some(s3) => {
            let f: Vec<&str> = s3.split(',').map(str::trim).collect();
            match f.get(1) {
                Some(_) => Some(num(&f, 3, 1)? != 0),
                None => None,
            }
        }
        None => None,
    };
    Ok(ZplHostStatus {
        paper_out: num(&s1, 1, 1)? != 0,
        paused: num(&s1, 1, 2)? != 0,
        label_length: num(&s1, 1, 3)?,
        formats_in_buffer: num(&s1, 1, 4)?,
        buffer_full: num(&s1, 1, 5)? != 0,
        diagnostic_mode: num(&s1, 1, 6)? != 0,
        partial_format: num(&s1, 1, 7)? != 0,
        corrupt_ram: num(&s1, 1, 9)? != 0,
        under_temperature: num(&s1, 1, 10)? != 0,
        over_temperature: num(&s1, 1, 11)? != 0,
        head_up: num(&s2, 2, 2)? != 0,
        ribbon_out: num(&s2, 2, 3)? != 0,
        thermal_transfer: num(&s2, 2, 4)? != 0,
        print_mode: num(&s2, 2, 5)?,
        label_waiting: num(&s2, 2, 7)? != 0,
        labels_remaining: num(&s2, 2, 8)?,
        static_ram_installed,
    })
}

// ---------------------------------------------------------------------------------------------
// ZPL ~HQES
// ---------------------------------------------------------------------------------------------

/// The flag groups of a `~HQES` reply (second group in the low 32 bits).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct HqesStatus {
    /// Error flags.
    pub errors: u64,
    /// Warning flags.
    pub warnings: u64,
}

impl HqesStatus {
    /// The common status. Error bits: 0x1 media out, 0x2 ribbon out, 0x4 head open, 0x8 cutter
    /// fault, 0x10/0x20 printhead/motor over temperature; warning 0x8 paper near end. Other bits
    /// are reported by value.
    pub fn status(&self) -> PrinterStatus {
        let mut s = PrinterStatus::default();
        let e = self.errors;
        s.flag(e & 0x1 != 0, PrinterProblem::PaperOut);
        s.flag(e & 0x2 != 0, PrinterProblem::RibbonOut);
        s.flag(e & 0x4 != 0, PrinterProblem::HeadOpen);
        s.flag(e & 0x8 != 0, PrinterProblem::CutterFault);
        s.flag(e & 0x30 != 0, PrinterProblem::OverTemperature);
        let other = e & !0x3F;
        s.flag(other != 0, PrinterProblem::Other(format!("error flags {other:#x}")));
        let w = self.warnings;
        if w & 0x8 != 0 {
            s.warnings.push(PrinterProblem::PaperNearEnd);
        }
        if w & !0x8 != 0 {
            s.warnings.push(PrinterProblem::Other(format!("warning flags {:#x}", w & !0x8)));
        }
        s
    }
}

fn hqes_group(text: &str, label: &str) -> Result<Option<u64>, PrinterStatusError> {
    let Some(start) = text.find(label) else { return Ok(None) };
    let mut tokens = text[start + label.len()..].split_whitespace();
    let flag = tokens.next().ok_or(PrinterStatusError::Hqes { reason: "missing flag" })?;
    if flag != "0" && flag != "1" {
        return Err(PrinterStatusError::Hqes { reason: "flag is not 0 or 1" });
    }
    let mut value: u64 = 0;
    for _ in 0..2 {
        let group = tokens.next().ok_or(PrinterStatusError::Hqes { reason: "missing flag group" })?;
        if group.len() != 8 {
            return Err(PrinterStatusError::Hqes { reason: "flag group is not 8 hex digits" });
        }
        let g =
            u32::from_str_radix(group, 16).map_err(|_| PrinterStatusError::Hqes { reason: "flag group is not hex" })?;
        value = (value << 32) | u64::from(g);
    }
    Ok(Some(value))
}

/// Parses a `~HQES` reply (`PRINTER STATUS / ERRORS: 1 00000000 00000005 / WARNINGS: …`) by
/// tokens. `ERRORS:` is required; `WARNINGS:` defaults to none.
pub fn parse_zpl_hqes(reply: &[u8]) -> Result<HqesStatus, PrinterStatusError> {
    let text: String = reply.iter().map(|&b| char::from(b)).collect::<String>().to_ascii_uppercase();
    let errors = hqes_group(&text, "ERRORS:")?.ok_or(PrinterStatusError::Hqes { reason: "no ERRORS: group" })?;
    let warnings = hqes_group(&text, "WARNINGS:")?.unwrap_or(0);
    Ok(HqesStatus { errors, warnings })
}

// ---------------------------------------------------------------------------------------------
// TSPL, ESC/POS, EPL2
// ---------------------------------------------------------------------------------------------

/// The TSPL status request (`ESC ! ?`).
pub const TSPL_STATUS_REQUEST: [u8; 3] = [0x1B, 0x21, 0x3F];

/// Decodes the TSPL status byte: bit0 head open, bit1 paper jam, bit2 paper out, bit3 ribbon
/// out, bit4 pause, bit5 printing, bit6 cover open, bit7 over temperature.
pub fn parse_tspl_status(byte: u8) -> PrinterStatus {
    let mut s = PrinterStatus::default();
    s.flag(byte & 0x01 != 0, PrinterProblem::HeadOpen);
    s.flag(byte & 0x02 != 0, PrinterProblem::PaperJam);
    s.flag(byte & 0x04 != 0, PrinterProblem::PaperOut);
    s.flag(byte & 0x08 != 0, PrinterProblem::RibbonOut);
    s.flag(byte & 0x10 != 0, PrinterProblem::Paused);
    s.flag(byte & 0x40 != 0, PrinterProblem::CoverOpen);
    s.flag(byte & 0x80 != 0, PrinterProblem::OverTemperature);
    s.busy = byte & 0x20 != 0;
    s
}

/// The ESC/POS real-time status request `DLE EOT n`.
pub fn escpos_status_request(n: u8) -> [u8; 3] {
    [0x10, 0x04, n]
}

/// Decodes the reply to `DLE EOT n` (n = 1 printer, 2 offline cause, 3 error cause, 4 paper
/// sensor). The fixed bits (bit1, bit4 set; bit0, bit7 clear) are checked so that a stray byte is
/// not taken for a status.
pub fn parse_escpos_status(n: u8, byte: u8) -> Result<PrinterStatus, PrinterStatusError> {
    if !(1..=4).contains(&n) {
        return Err(PrinterStatusError::UnknownRequest { n });
    }
    if byte & 0x93 != 0x12 {
        return Err(PrinterStatusError::NotAStatusByte { byte });
    }
    let mut s = PrinterStatus::default();
    match n {
        1 => {
            s.flag(byte & 0x08 != 0, PrinterProblem::Offline);
        }
        2 => {
            s.flag(byte & 0x04 != 0, PrinterProblem::CoverOpen);
            s.flag(byte & 0x20 != 0, PrinterProblem::PaperOut);
            s.flag(byte & 0x40 != 0, PrinterProblem::Other("error".to_owned()));
        }
        3 => {
            s.flag(byte & 0x04 != 0, PrinterProblem::Other("recoverable error".to_owned()));
            s.flag(byte & 0x08 != 0, PrinterProblem::CutterFault);
            s.flag(byte & 0x20 != 0, PrinterProblem::Other("unrecoverable error".to_owned()));
            s.flag(byte & 0x40 != 0, PrinterProblem::Other("auto-recoverable error".to_owned()));
        }
        _ => {
            if byte & 0x0C != 0 {
                s.warnings.push(PrinterProblem::PaperNearEnd);
            }
            s.flag(byte & 0x60 != 0, PrinterProblem::PaperOut);
        }
    }
    Ok(s)
}

/// Decodes an EPL2 `^ee` reply (`"00\r\n"` = no error). Code 07 is "paper or ribbon empty";
/// other codes are reported by number.
pub fn parse_epl_status(reply: &[u8]) -> Result<PrinterStatus, PrinterStatusError> {
    let text: String = reply.iter().map(|&b| char::from(b)).collect();
    let code = text.trim();
    if code.len() != 2 || !code.bytes().all(|b| b.is_ascii_digit()) {
        return Err(PrinterStatusError::Epl { text });
    }
    let mut s = PrinterStatus::default();
    match code {
        "00" => {}
        "07" => s.problems.push(PrinterProblem::Other("paper or ribbon empty (EPL 07)".to_owned())),
        other => s.problems.push(PrinterProblem::Other(format!("EPL error {other}"))),
    }
    Ok(s)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    const HS_VECTOR: &[u8] =
        b"\x02030,1,0,1245,000,0,0,0,000,0,0,0\x03\r\n\x02001,0,1,0,1,2,4,0,00000000,1,000\x03\r\n\x021234,0\x03\r\n";

    #[test]
    fn hs_vector_is_paper_out_and_head_up() {
        let hs = parse_zpl_hs(HS_VECTOR).unwrap();
        assert!(hs.paper_out && hs.head_up);
        assert!(!hs.paused && !hs.ribbon_out && !hs.buffer_full);
        assert_eq!(hs.label_length, 1245);
        assert!(hs.thermal_transfer);
        assert_eq!(hs.static_ram_installed, Some(false));
        let s = hs.status();
        assert_eq!(s.problems, vec![PrinterProblem::PaperOut, PrinterProblem::HeadOpen]);
        assert!(!s.is_ready());
    }

    #[test]
    fn hs_ready_printer() {
        let reply = b"\x02030,0,0,1245,000,0,0,0,000,0,0,0\x03\r\n\x02001,0,0,0,1,2,4,0,00000000,1,000\x03\r\n\x021234,0\x03\r\n";
        let s = parse_zpl_hs(reply).unwrap().status();
        assert!(s.is_ready());
        assert!(!s.busy);
    }

    #[test]
    fn hs_paused_ribbon_out_and_busy() {
        let reply = b"\x02030,0,1,1245,002,1,0,0,000,0,0,1\x03\r\n\x02001,0,0,1,1,2,4,0,00000005,1,000\x03\r\n";
        let hs = parse_zpl_hs(reply).unwrap();
        assert_eq!(hs.labels_remaining, 5);
        assert_eq!(hs.static_ram_installed, None);
        let s = hs.status();
        assert_eq!(
            s.problems,
            vec![
                PrinterProblem::RibbonOut,
                PrinterProblem::Paused,
                PrinterProblem::BufferFull,
                PrinterProblem::OverTemperature
            ]
        );
        assert!(s.busy);
    }

    #[test]
    fn hs_without_stx_etx_is_read_by_lines() {
        let reply = b"030,1,0,1245,000,0,0,0,000,0,0,0\r\n001,0,1,0,1,2,4,0,00000000,1,000\r\n1234,0\r\n";
        assert!(parse_zpl_hs(reply).unwrap().paper_out);
    }

    #[test]
    fn hs_incomplete_or_garbled_replies_are_errors() {
        assert!(matches!(parse_zpl_hs(b""), Err(PrinterStatusError::Incomplete { found: 0, .. })));
        assert!(matches!(
            parse_zpl_hs(b"\x02030,1,0\x03\r\n\x02001,0,1,0,1,2,4,0,00000000,1,000\x03"),
            Err(PrinterStatusError::Incomplete { expected: 12, found: 3, .. })
        ));
        assert!(matches!(
            parse_zpl_hs(b"\x02030,X,0,1245,000,0,0,0,000,0,0,0\x03\x02001,0,1,0,1,2,4,0,00000000,1,000\x03"),
            Err(PrinterStatusError::NotNumeric { string: 1, field: 1, .. })
        ));
    }

    #[test]
    fn hqes_head_open_and_media_out() {
        let reply = b"\r\n  PRINTER STATUS                            \r\n   ERRORS:         1 00000000 00000005      \r\n   WARNINGS:       0 00000000 00000000      \r\n";
        let q = parse_zpl_hqes(reply).unwrap();
        assert_eq!(q, HqesStatus { errors: 5, warnings: 0 });
        assert_eq!(q.status().problems, vec![PrinterProblem::PaperOut, PrinterProblem::HeadOpen]);
    }

    #[test]
    fn hqes_ribbon_cutter_warnings_and_unknown_bits() {
        let reply = b"PRINTER STATUS ERRORS: 1 00000001 0000000A WARNINGS: 1 00000000 00000008";
        let s = parse_zpl_hqes(reply).unwrap().status();
        assert_eq!(
            s.problems,
            vec![
                PrinterProblem::RibbonOut,
                PrinterProblem::CutterFault,
                PrinterProblem::Other("error flags 0x100000000".into())
            ]
        );
        assert_eq!(s.warnings, vec![PrinterProblem::PaperNearEnd]);
        assert!(parse_zpl_hqes(b"ERRORS: 0 00000000 00000000").unwrap().status().is_ready());
    }

    #[test]
    fn hqes_malformed() {
        assert!(matches!(parse_zpl_hqes(b"PRINTER STATUS"), Err(PrinterStatusError::Hqes { .. })));
        assert!(matches!(parse_zpl_hqes(b"ERRORS: 1 0000000G 00000000"), Err(PrinterStatusError::Hqes { .. })));
        assert!(matches!(parse_zpl_hqes(b"ERRORS: 1 00000000"), Err(PrinterStatusError::Hqes { .. })));
        assert!(matches!(parse_zpl_hqes(b"ERRORS: x 00000000 00000000"), Err(PrinterStatusError::Hqes { .. })));
    }

    #[test]
    fn tspl_status_bits() {
        assert!(parse_tspl_status(0x00).is_ready());
        assert_eq!(parse_tspl_status(0x01).problems, vec![PrinterProblem::HeadOpen]);
        assert_eq!(parse_tspl_status(0x02).problems, vec![PrinterProblem::PaperJam]);
        assert_eq!(parse_tspl_status(0x04).problems, vec![PrinterProblem::PaperOut]);
        assert_eq!(parse_tspl_status(0x08).problems, vec![PrinterProblem::RibbonOut]);
        assert_eq!(parse_tspl_status(0x10).problems, vec![PrinterProblem::Paused]);
        let printing = parse_tspl_status(0x20);
        assert!(printing.is_ready() && printing.busy);
        assert_eq!(parse_tspl_status(0x40).problems, vec![PrinterProblem::CoverOpen]);
        assert_eq!(parse_tspl_status(0x80).problems, vec![PrinterProblem::OverTemperature]);
        assert_eq!(TSPL_STATUS_REQUEST, [0x1B, 0x21, 0x3F]);
    }

    #[test]
    fn escpos_status_bytes() {
        assert_eq!(escpos_status_request(2), [0x10, 0x04, 0x02]);
        assert!(parse_escpos_status(1, 0x12).unwrap().is_ready());
        assert!(parse_escpos_status(2, 0x12).unwrap().is_ready());
        assert_eq!(parse_escpos_status(1, 0x1A).unwrap().problems, vec![PrinterProblem::Offline]);
        assert_eq!(parse_escpos_status(2, 0x16).unwrap().problems, vec![PrinterProblem::CoverOpen]);
        assert_eq!(parse_escpos_status(2, 0x32).unwrap().problems, vec![PrinterProblem::PaperOut]);
        assert!(matches!(parse_escpos_status(2, 0x52).unwrap().problems[..], [PrinterProblem::Other(_)]));
        assert_eq!(parse_escpos_status(3, 0x1A).unwrap().problems, vec![PrinterProblem::CutterFault]);
        let near_end = parse_escpos_status(4, 0x1E).unwrap();
        assert!(near_end.is_ready());
        assert_eq!(near_end.warnings, vec![PrinterProblem::PaperNearEnd]);
        assert_eq!(parse_escpos_status(4, 0x72).unwrap().problems, vec![PrinterProblem::PaperOut]);
        assert_eq!(parse_escpos_status(1, 0x00), Err(PrinterStatusError::NotAStatusByte { byte: 0x00 }));
        assert_eq!(parse_escpos_status(5, 0x12), Err(PrinterStatusError::UnknownRequest { n: 5 }));
    }

    #[test]
    fn epl_error_report() {
        assert!(parse_epl_status(b"00\r\n").unwrap().is_ready());
        assert!(!parse_epl_status(b"07\r\n").unwrap().is_ready());
        assert!(matches!(parse_epl_status(b"OK"), Err(PrinterStatusError::Epl { .. })));
    }

    #[test]
    fn no_response_is_a_status() {
        let s = PrinterStatus::no_response();
        assert_eq!(s.problems, vec![PrinterProblem::NoResponse]);
    }

    #[test]
    fn status_serializes_for_device_status_detail() {
        let s = parse_zpl_hs(HS_VECTOR).unwrap().status();
        assert_eq!(
            serde_json::to_value(&s).unwrap(),
            serde_json::json!({"problems": ["paper_out", "head_open"], "busy": false})
        );
    }

    proptest! {
        #[test]
        fn arbitrary_bytes_never_panic(reply in prop::collection::vec(any::<u8>(), 0..120), n in any::<u8>(), byte in any::<u8>()) {
            let _ = parse_zpl_hs(&reply).map(|h| h.status());
            let _ = parse_zpl_hqes(&reply).map(|h| h.status());
            let _ = parse_epl_status(&reply);
            let _ = parse_escpos_status(n, byte);
            let _ = parse_tspl_status(byte);
        }

        #[test]
        fn hs_shaped_replies_never_panic(fields in prop::collection::vec("[0-9,X ]{0,6}", 0..30)) {
            let reply = format!("\x02{}\x03\r\n\x02{}\x03\r\n", fields.join(","), fields.join(","));
            let _ = parse_zpl_hs(reply.as_bytes());
        }

        #[test]
        fn tspl_problem_count_matches_bits(byte in any::<u8>()) {
            let s = parse_tspl_status(byte);
            prop_assert_eq!(s.problems.len() as u32, (byte & !0x20).count_ones());
        }
    }
}
