//! What one device's bytes mean: [`DeviceDecoder`] wraps a scanner's framer and scan decoder or a
//! scale's [`ScaleStream`] behind one interface, so the I/O shell ([`crate::link`]) and the
//! firmware-bridge binary treat every device the same way.
//!
//! Pure: time comes in as milliseconds from the caller's monotonic clock.

use serde::Serialize;

use crate::scale::stream::{ScaleProtocol, ScaleStream};
use crate::scanner::{self, Framer, FramerConfig, FramerConfigError, Scan, ScanOptions};
use crate::{ScaleReading, decode_scan};

/// Something a device said.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum DeviceOutput {
    /// A scan. `problem` says why the data could not be interpreted (a bad check digit, a GS1
    /// string that does not parse); the scan then carries only what was received, so nothing the
    /// operator scanned is lost.
    Scan {
        /// The decoded scan.
        scan: Box<Scan>,
        /// Why interpretation failed, if it did.
        #[serde(skip_serializing_if = "Option::is_none")]
        problem: Option<String>,
    },
    /// A scale reading (live; weights and conditions).
    Reading(ScaleReading),
    /// A frame that could not be decoded (noise, a corrupt checksum); for diagnostics only.
    Garbled(String),
    /// A printer's answer to a status request.
    Printer(crate::printer::PrinterStatus),
}

/// The decoding half of a device.
#[derive(Debug)]
pub enum DeviceDecoder {
    /// A barcode scanner.
    Scanner {
        /// Frames the byte stream.
        framer: Framer,
        /// Alternative FNC1 and such.
        options: ScanOptions,
    },
    /// A scale.
    Scale(ScaleStream),
    /// A label printer (its status replies).
    Printer(crate::printer::replies::StatusReplies),
}

impl DeviceDecoder {
    /// A scanner decoder; `options.gs1.reference_year` is refreshed from the clock per scan.
    pub fn scanner(framing: FramerConfig, options: ScanOptions) -> Result<DeviceDecoder, FramerConfigError> {
        Ok(DeviceDecoder::Scanner { framer: Framer::new(framing)?, options })
    }

    /// A scale decoder.
    pub fn scale(protocol: ScaleProtocol) -> DeviceDecoder {
        DeviceDecoder::Scale(ScaleStream::new(protocol))
    }

    /// What to send to ask for a reading, if the device must be asked.
    pub fn poll_request(&self) -> Option<Vec<u8>> {
        match self {
            DeviceDecoder::Scanner { .. } => None,
            DeviceDecoder::Scale(s) => s.protocol().poll_request(),
            DeviceDecoder::Printer(p) => Some(p.language().status_request()),
        }
    }

    /// Feeds bytes read at `now_ms`.
    pub fn push(&mut self, bytes: &[u8], now_ms: u64) -> Vec<DeviceOutput> {
        match self {
            DeviceDecoder::Scanner { framer, options } => {
                framer.push(bytes, now_ms).iter().map(|frame| scan_output(frame, options)).collect()
            }
            DeviceDecoder::Scale(stream) => stream
                .push(bytes)
                .into_iter()
                .map(|r| match r {
                    Ok(reading) => DeviceOutput::Reading(reading),
                    Err(e) => DeviceOutput::Garbled(e.to_string()),
                })
                .collect(),
            DeviceDecoder::Printer(p) => p.push(bytes).into_iter().map(DeviceOutput::Printer).collect(),
        }
    }

    /// Applies timeouts at `now_ms` (a scanner framed on inter-character silence).
    pub fn poll(&mut self, now_ms: u64) -> Vec<DeviceOutput> {
        match self {
            DeviceDecoder::Scanner { framer, options } => {
                framer.poll(now_ms).iter().map(|frame| scan_output(frame, options)).collect()
            }
            DeviceDecoder::Scale(_) | DeviceDecoder::Printer(_) => Vec::new(),
        }
    }

    /// When [`DeviceDecoder::poll`] must be called next, in ms.
    pub fn deadline(&self) -> Option<u64> {
        match self {
            DeviceDecoder::Scanner { framer, .. } => framer.deadline(),
            DeviceDecoder::Scale(_) | DeviceDecoder::Printer(_) => None,
        }
    }

    /// Forgets partial frames (the port was reopened).
    pub fn reset(&mut self) {
        match self {
            DeviceDecoder::Scanner { framer, .. } => framer.reset(),
            DeviceDecoder::Scale(s) => s.reset(),
            DeviceDecoder::Printer(p) => p.reset(),
        }
    }
}

/// What a scan missing its configured prefix is stored with.
pub const PREFIX_MISSING: &str =
    "the scan did not start with the configured prefix; kept as received (check the scanner's prefix setting)";

fn scan_output(frame: &scanner::Frame, options: &ScanOptions) -> DeviceOutput {
    if frame.prefix_missing {
        return DeviceOutput::Scan {
            scan: Box::new(undecoded_scan(&frame.bytes)),
            problem: Some(PREFIX_MISSING.to_owned()),
        };
    }
    let frame = &frame.bytes[..];
    let mut options = *options;
    options.gs1.reference_year = current_year();
    match decode_scan(frame, &options) {
        Ok(scan) => DeviceOutput::Scan { scan: Box::new(scan), problem: None },
        Err(error) => DeviceOutput::Scan { scan: Box::new(undecoded_scan(frame)), problem: Some(error.to_string()) },
    }
}

/// A scan carrying only what was received: raw text and the AIM identifier.
fn undecoded_scan(raw: &[u8]) -> Scan {
    let (aim, data) = match scanner::aim::split_aim(raw) {
        Some((id, rest)) => (Some(id), rest),
        None => (None, raw),
    };
    Scan {
        raw: scanner::bytes_to_string(raw),
        raw_hex: scanner::hex_unless_utf8(raw),
        aim: aim.map(|id| id.as_string()),
        symbology: aim.map(|id| id.symbology()),
        gs1: Default::default(),
        parsed: Default::default(),
        data: scanner::bytes_to_string(data),
    }
}

/// The current calendar year (UTC), for the GS1 century rule.
pub fn current_year() -> u16 {
    let secs = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_secs());
    year_of_day((secs / 86_400) as i64)
}

/// The civil year of a day number counted from 1970-01-01.
fn year_of_day(days: i64) -> u16 {
    u16::try_from(civil_from_days(days).0).unwrap_or(u16::MAX)
}

/// The civil date `(year, month, day)` of a day number counted from 1970-01-01 (Howard Hinnant's
/// `civil_from_days`). The agent formats envelope timestamps with it too.
pub fn civil_from_days(days: i64) -> (i64, i64, i64) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    (yoe + era * 400 + i64::from(month <= 2), month, day)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::scale::WeightUnit;

    #[test]
    fn year_of_known_days() {
        assert_eq!(year_of_day(0), 1970);
        assert_eq!(year_of_day(20_453), 2025); // 2025-12-31
        assert_eq!(year_of_day(20_454), 2026); // 2026-01-01
    }

    #[test]
    fn scanner_with_suffix_decodes_gs1() {
        let mut d = DeviceDecoder::scanner(FramerConfig::line(), ScanOptions::new(2026)).unwrap();
        let out = d.push(b"]C10109506000134352310300125015260300\r\n", 0);
        let [DeviceOutput::Scan { scan, problem: None }] = out.as_slice() else { panic!("{out:?}") };
        assert_eq!(scan.parsed.gtin.as_deref(), Some("09506000134352"));
    }

    #[test]
    fn scanner_on_timeout_frames_after_silence() {
        let mut d = DeviceDecoder::scanner(FramerConfig::timeout(50), ScanOptions::new(2026)).unwrap();
        assert!(d.push(b"]E05901234123457", 1000).is_empty());
        assert_eq!(d.deadline(), Some(1050));
        let out = d.poll(1051);
        assert!(matches!(&out[..], [DeviceOutput::Scan { problem: None, .. }]));
    }

    #[test]
    fn a_scan_that_does_not_interpret_is_kept_raw_with_the_reason() {
        let mut d = DeviceDecoder::scanner(FramerConfig::line(), ScanOptions::new(2026)).unwrap();
        let out = d.push(b"]E02112345678901\r", 0);
        let [DeviceOutput::Scan { scan, problem: Some(problem) }] = out.as_slice() else { panic!("{out:?}") };
        assert_eq!(scan.raw, "]E02112345678901");
        assert_eq!(scan.aim.as_deref(), Some("]E0"));
        assert!(problem.contains("check digit"), "{problem}");
    }

    #[test]
    fn reset_drops_a_half_frame() {
        let mut d = DeviceDecoder::scanner(FramerConfig::line(), ScanOptions::new(2026)).unwrap();
        d.push(b"]E0590123", 0);
        d.reset();
        let out = d.push(b"]E05901234123457\r", 10);
        let [DeviceOutput::Scan { scan, .. }] = out.as_slice() else { panic!("{out:?}") };
        assert_eq!(scan.raw, "]E05901234123457");
    }

    #[test]
    fn scale_decoder_yields_readings_and_garbled_frames() {
        let mut d = DeviceDecoder::scale(ScaleProtocol::MtSics);
        assert_eq!(d.poll_request(), Some(b"SI\r\n".to_vec()));
        let out = d.push(b"S S 1.250 kg\r\n\x01\x02junk\r\n", 0);
        assert!(matches!(&out[0], DeviceOutput::Reading(ScaleReading::Weight(w)) if w.unit == WeightUnit::Kg));
        assert!(matches!(&out[1], DeviceOutput::Garbled(_)));
    }
}
