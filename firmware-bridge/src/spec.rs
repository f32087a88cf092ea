//! What a configured device is, independent of where the settings came from: the agent's
//! `[[device]]` entries and the firmware-bridge command line both produce a [`DeviceSpec`], and
//! both build their decoder and link from it, so a device bridged from another host decodes
//! exactly like a local one.

use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::device::DeviceDecoder;
use crate::link::LinkOptions;
use crate::scale::WeightUnit;
use crate::scale::pattern::{Pattern, PatternConfig};
use crate::scale::stream::ScaleProtocol;
use crate::scale::toledo_8217::UnitMode;
use crate::scanner::{FramerConfig, ScanOptions, Suffix};

/// What kind of device.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum DeviceKind {
    /// A serial barcode scanner.
    Scanner,
    /// A scale.
    Scale,
    /// A label printer.
    Printer,
}

/// A scale protocol by name (`protocol = "mt-sics"`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum ScaleProtocolName {
    /// Mettler Toledo MT-SICS.
    MtSics,
    /// Toledo continuous 18-byte frames.
    ToledoContinuous,
    /// Toledo 8217 demand mode.
    Toledo8217,
    /// SMA standard.
    Sma,
    /// NCI / Weigh-Tronix.
    Nci,
    /// CAS 22/18-byte.
    Cas,
    /// A configured template.
    Pattern,
}

impl ScaleProtocolName {
    /// Every name, as written in a config file.
    pub const NAMES: &'static str = "mt-sics, toledo-continuous, toledo-8217, sma, nci, cas, pattern";

    /// Parses a config or command-line spelling.
    pub fn parse(text: &str) -> Option<ScaleProtocolName> {
        Some(match text {
            "mt-sics" => ScaleProtocolName::MtSics,
            "toledo-continuous" => ScaleProtocolName::ToledoContinuous,
            "toledo-8217" => ScaleProtocolName::Toledo8217,
            "sma" => ScaleProtocolName::Sma,
            "nci" => ScaleProtocolName::Nci,
            "cas" => ScaleProtocolName::Cas,
            "pattern" => ScaleProtocolName::Pattern,
            _ => return None,
        })
    }

    /// Whether the scale only answers when asked.
    pub fn is_polled(self) -> bool {
        matches!(self, Self::MtSics | Self::Toledo8217 | Self::Sma | Self::Nci)
    }
}

/// Scanner settings.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ScannerSpec {
    /// Bytes before each scan (stripped).
    pub prefix: Option<Vec<u8>>,
    /// Bytes after each scan. `\r\n`, `\r` or `\n` frame on any of CR and LF; anything else is an
    /// exact sequence; `None` frames on the inter-character timeout alone.
    pub suffix: Option<Vec<u8>>,
    /// A scan ends after this much silence (needed without a suffix).
    pub inter_char_timeout: Option<Duration>,
    /// A byte accepted as FNC1 besides `<GS>` (keyboard-wedge setups).
    pub fnc1: Option<u8>,
}

impl Default for ScannerSpec {
    fn default() -> Self {
        ScannerSpec { prefix: None, suffix: Some(b"\r\n".to_vec()), inter_char_timeout: None, fnc1: None }
    }
}

/// Scale settings.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ScaleSpec {
    /// The protocol.
    pub protocol: ScaleProtocolName,
    /// Toledo 8217: the unit (otherwise inferred from the decimals); pattern: the unit when the
    /// template has none.
    pub unit: Option<WeightUnit>,
    /// Pattern protocol: the template.
    pub pattern: Option<String>,
    /// Pattern protocol: what to send to ask for a weight (`None`: the scale streams).
    pub request: Option<Vec<u8>>,
    /// Pattern protocol: whether weights without a stability flag are stable.
    pub stable_by_default: bool,
    /// How often a demand-mode scale is asked.
    pub poll_interval: Duration,
    /// A polled scale silent for this long is reported unresponsive.
    pub answer_timeout: Duration,
}

impl ScaleSpec {
    /// Defaults for `protocol`: polled four times a second, unresponsive after 3 s.
    pub fn new(protocol: ScaleProtocolName) -> ScaleSpec {
        ScaleSpec {
            protocol,
            unit: None,
            pattern: None,
            request: None,
            stable_by_default: true,
            poll_interval: Duration::from_millis(250),
            answer_timeout: Duration::from_secs(3),
        }
    }
}

/// Printer settings.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PrinterSpec {
    /// Its command language (status requests).
    pub language: crate::printer::replies::PrinterLanguage,
    /// How often its status is asked.
    pub status_interval: Duration,
    /// No answer for this long: the printer is offline.
    pub answer_timeout: Duration,
}

/// A device, by role.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DeviceSpec {
    /// A scanner.
    Scanner(ScannerSpec),
    /// A scale.
    Scale(ScaleSpec),
    /// A label printer.
    Printer(PrinterSpec),
}

impl DeviceSpec {
    /// The kind.
    pub fn kind(&self) -> DeviceKind {
        match self {
            DeviceSpec::Scanner(_) => DeviceKind::Scanner,
            DeviceSpec::Scale(_) => DeviceKind::Scale,
            DeviceSpec::Printer(_) => DeviceKind::Printer,
        }
    }

    /// Builds the decoder, or says what is wrong with the settings.
    pub fn decoder(&self) -> Result<DeviceDecoder, String> {
        match self {
            DeviceSpec::Scanner(s) => {
                let suffix = s.suffix.as_ref().map(|bytes| {
                    if !bytes.is_empty() && bytes.iter().all(|b| *b == b'\r' || *b == b'\n') {
                        Suffix::AnyOf(b"\r\n".to_vec())
                    } else {
                        Suffix::Sequence(bytes.clone())
                    }
                });
                let framing = FramerConfig {
                    prefix: s.prefix.clone(),
                    suffix,
                    inter_char_timeout_ms: s.inter_char_timeout.map(|d| d.as_millis() as u64),
                    max_frame_len: FramerConfig::DEFAULT_MAX_FRAME_LEN,
                };
                let mut options = ScanOptions::new(crate::device::current_year());
                options.gs1.alt_separator = s.fnc1;
                DeviceDecoder::scanner(framing, options).map_err(|e| e.to_string())
            }
            DeviceSpec::Scale(s) => Ok(DeviceDecoder::scale(scale_protocol(s)?)),
            DeviceSpec::Printer(p) => {
                Ok(DeviceDecoder::Printer(crate::printer::replies::StatusReplies::new(p.language)))
            }
        }
    }

    /// Timing for the link.
    pub fn link_options(&self) -> LinkOptions {
        let mut options = LinkOptions::default();
        if let DeviceSpec::Scale(s) = self {
            let polled = s.protocol.is_polled() || s.request.is_some();
            options.poll_interval = polled.then_some(s.poll_interval);
            options.answer_timeout = s.answer_timeout;
        }
        if let DeviceSpec::Printer(p) = self {
            options.poll_interval = Some(p.status_interval);
            options.answer_timeout = p.answer_timeout;
        }
        options
    }
}

fn scale_protocol(s: &ScaleSpec) -> Result<ScaleProtocol, String> {
    Ok(match s.protocol {
        ScaleProtocolName::MtSics => ScaleProtocol::MtSics,
        ScaleProtocolName::ToledoContinuous => ScaleProtocol::ToledoContinuous,
        ScaleProtocolName::Toledo8217 => ScaleProtocol::Toledo8217(s.unit.map_or(UnitMode::Infer, UnitMode::Fixed)),
        ScaleProtocolName::Sma => ScaleProtocol::Sma,
        ScaleProtocolName::Nci => ScaleProtocol::Nci,
        ScaleProtocolName::Cas => ScaleProtocol::Cas,
        ScaleProtocolName::Pattern => {
            let template = s.pattern.clone().ok_or("protocol \"pattern\" needs a `pattern` template")?;
            let config = PatternConfig { template, default_unit: s.unit, stable_by_default: s.stable_by_default };
            let pattern = Pattern::compile(&config).map_err(|e| e.to_string())?;
            ScaleProtocol::Pattern { pattern: Box::new(pattern), request: s.request.clone() }
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::device::DeviceOutput;

    #[test]
    fn scanner_defaults_frame_on_cr_or_lf() {
        let mut d = DeviceSpec::Scanner(ScannerSpec::default()).decoder().unwrap();
        assert_eq!(d.push(b"]E05901234123457\n]E05901234123457\r\n", 0).len(), 2);
    }

    #[test]
    fn scanner_without_suffix_or_timeout_is_refused() {
        let spec = ScannerSpec { suffix: None, ..ScannerSpec::default() };
        let e = DeviceSpec::Scanner(spec).decoder().unwrap_err();
        assert!(e.contains("needs a suffix"), "{e}");
    }

    #[test]
    fn pattern_needs_a_template_and_polls_only_with_a_request() {
        let spec = ScaleSpec::new(ScaleProtocolName::Pattern);
        assert!(DeviceSpec::Scale(spec.clone()).decoder().unwrap_err().contains("pattern"));
        let spec = ScaleSpec { pattern: Some("{weight}kg".into()), unit: Some(WeightUnit::Kg), ..spec };
        let mut d = DeviceSpec::Scale(spec.clone()).decoder().unwrap();
        assert!(matches!(&d.push(b"  1.250kg\r\n", 0)[..], [DeviceOutput::Reading(_)]));
        assert_eq!(DeviceSpec::Scale(spec.clone()).link_options().poll_interval, None);
        let polled = ScaleSpec { request: Some(b"P\r\n".to_vec()), ..spec };
        assert!(DeviceSpec::Scale(polled).link_options().poll_interval.is_some());
    }

    #[test]
    fn names_round_trip() {
        for name in ScaleProtocolName::NAMES.split(", ") {
            assert!(ScaleProtocolName::parse(name).is_some(), "{name}");
        }
    }
}
