//! `[[device]]`: a serial scanner or scale, where it is attached and how it talks. Checked at
//! load time so a technician sees a bad baud rate or an unknown protocol with its line number,
//! not at the first scan.

use std::path::{Path, PathBuf};
use std::time::Duration;

use firmware_bridge::link::{FlowControl, Parity, SerialSettings, Transport};
use firmware_bridge::spec::{DeviceKind, DeviceSpec, ScaleProtocolName, ScaleSpec, ScannerSpec};
use firmware_bridge::{WeightUnit, device::DeviceDecoder};
use serde::Deserialize;

use crate::units::{ConfigIssue, HumanDuration};

/// Where the device is attached.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub(crate) enum Attachment {
    /// A serial port on this gateway (`path`).
    #[default]
    Serial,
    /// A serial-device server reached over TCP (`address`).
    Tcp,
    /// A `firmware-bridge` process on another host, through the MQTT broker of `[mqtt]`.
    Mqtt,
}

/// What a scale's readings turn into outside a station.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Default)]
#[serde(rename_all = "kebab-case")]
pub(crate) enum WeightEvents {
    /// A `weight` event each time the scale settles on a new non-zero weight.
    #[default]
    StableChange,
    /// No `weight` events (live readings only; stations ask for weights themselves).
    Off,
}

#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct DeviceConfig {
    /// Unique name: in events (`source.device`), topics and `status`.
    pub(crate) name: String,
    pub(crate) kind: DeviceKind,
    #[serde(default)]
    pub(crate) transport: Attachment,
    /// Serial: the device path; prefer `/dev/serial/by-id/…` (see `dockhand devices`).
    pub(crate) path: Option<PathBuf>,
    /// TCP: `host:port` of the serial-device server.
    pub(crate) address: Option<String>,
    #[serde(default = "defaults::baud")]
    pub(crate) baud: u32,
    #[serde(default = "defaults::data_bits")]
    pub(crate) data_bits: u8,
    #[serde(default)]
    pub(crate) parity: Parity,
    #[serde(default = "defaults::stop_bits")]
    pub(crate) stop_bits: u8,
    #[serde(default)]
    pub(crate) flow_control: FlowControl,
    /// Scales: `mt-sics`, `toledo-continuous`, `toledo-8217`, `sma`, `nci`, `cas`, `pattern`.
    pub(crate) protocol: Option<String>,
    /// Scales: fixed unit (Toledo 8217, pattern without `{unit}`).
    pub(crate) unit: Option<String>,
    /// `protocol = "pattern"`: the frame template.
    pub(crate) pattern: Option<String>,
    /// `protocol = "pattern"`: what to send to ask for a weight (absent: the scale streams).
    pub(crate) request: Option<String>,
    /// Demand-mode scales: how often to ask.
    #[serde(default = "defaults::poll_interval")]
    pub(crate) poll_interval: HumanDuration,
    /// A polled scale silent this long is reported in error.
    #[serde(default = "defaults::answer_timeout")]
    pub(crate) answer_timeout: HumanDuration,
    #[serde(default)]
    pub(crate) weight_events: WeightEvents,
    /// Equal stable readings in a row before a weight counts as settled.
    #[serde(default = "defaults::stable_readings")]
    pub(crate) stable_readings: usize,
    /// Scanners: bytes after each scan (default `"\r\n"`: CR, LF or CRLF); `""` for none.
    pub(crate) suffix: Option<String>,
    /// Scanners: bytes before each scan.
    pub(crate) prefix: Option<String>,
    /// Scanners: a scan ends after this much silence (needed without a suffix).
    pub(crate) inter_char_timeout: Option<HumanDuration>,
    /// Scanners: a character accepted as GS1 FNC1 besides `<GS>` (keyboard-wedge setups).
    pub(crate) fnc1: Option<String>,
    /// Printers: `zpl` (default), `tspl`, `escpos`, `epl`.
    pub(crate) language: Option<firmware_bridge::printer::replies::PrinterLanguage>,
    /// Printers: how often the status is asked (and a waiting job looked at).
    #[serde(default = "defaults::status_interval")]
    pub(crate) status_interval: HumanDuration,
}

mod defaults {
    use crate::units::HumanDuration;
    use std::time::Duration;

    pub(crate) fn baud() -> u32 {
        9600
    }
    pub(crate) fn data_bits() -> u8 {
        8
    }
    pub(crate) fn stop_bits() -> u8 {
        1
    }
    pub(crate) fn poll_interval() -> HumanDuration {
        HumanDuration(Duration::from_millis(250))
    }
    pub(crate) fn answer_timeout() -> HumanDuration {
        HumanDuration(Duration::from_secs(3))
    }
    pub(crate) fn stable_readings() -> usize {
        3
    }
    pub(crate) fn status_interval() -> HumanDuration {
        HumanDuration(Duration::from_secs(1))
    }
}

/// The rates serial scales, scanners and printers are set to; anything else is almost always a
/// typo, and a wrong rate reads as silence or garbage rather than an error.
pub(crate) const STANDARD_BAUD_RATES: [u32; 10] = [1200, 2400, 4800, 9600, 14400, 19200, 38400, 57600, 115200, 230400];

impl DeviceConfig {
    /// Settings that are valid but probably wrong, with advice, for `check-config`.
    pub(crate) fn warnings(&self) -> Vec<ConfigIssue> {
        let mut out = Vec::new();
        if self.transport == Attachment::Serial && !STANDARD_BAUD_RATES.contains(&self.baud) {
            let list: Vec<String> = STANDARD_BAUD_RATES.iter().map(u32::to_string).collect();
            out.push(ConfigIssue::new(
                "baud",
                format!(
                    "{} is not a standard rate (standard: {}); check the device's setup menu or label",
                    self.baud,
                    list.join(", ")
                ),
            ));
        }
        out
    }

    /// The device as firmware-bridge sees it. Errors name the key at fault.
    pub(crate) fn spec(&self) -> Result<DeviceSpec, ConfigIssue> {
        match self.kind {
            DeviceKind::Scanner => {
                for (key, set) in [("protocol", self.protocol.is_some()), ("pattern", self.pattern.is_some())] {
                    if set {
                        return Err(ConfigIssue::new(key, "is a scale setting; this device is a scanner"));
                    }
                }
                let fnc1 = match self.fnc1.as_deref().map(str::as_bytes) {
                    None => None,
                    Some([b]) => Some(*b),
                    Some(_) => return Err(ConfigIssue::new("fnc1", "must be exactly one character")),
                };
                let suffix = match self.suffix.as_deref() {
                    None => Some(b"\r\n".to_vec()),
                    Some(s) => delimiter("suffix", s)?,
                };
                let prefix = match self.prefix.as_deref() {
                    None => None,
                    Some(p) => delimiter("prefix", p)?,
                };
                Ok(DeviceSpec::Scanner(ScannerSpec {
                    prefix,
                    suffix,
                    inter_char_timeout: self.inter_char_timeout.map(|d| d.0),
                    fnc1,
                }))
            }
            DeviceKind::Printer => Ok(DeviceSpec::Printer(firmware_bridge::spec::PrinterSpec {
                language: self.language.unwrap_or_default(),
                status_interval: self.status_interval.0.max(Duration::from_millis(100)),
                answer_timeout: self.answer_timeout.0,
            })),
            DeviceKind::Scale => {
                let name = self.protocol.as_deref().ok_or_else(|| {
                    ConfigIssue::new(
                        "protocol",
                        format!("a scale needs a protocol: one of {}", ScaleProtocolName::NAMES),
                    )
                })?;
                let protocol = ScaleProtocolName::parse(name).ok_or_else(|| {
                    ConfigIssue::new(
                        "protocol",
                        format!("`{name}` is not a scale protocol: use one of {}", ScaleProtocolName::NAMES),
                    )
                })?;
                let unit = match &self.unit {
                    None => None,
                    Some(u) => Some(WeightUnit::parse(u).ok_or_else(|| {
                        ConfigIssue::new("unit", format!("`{u}` is not a unit (kg, g, lb, oz or t)"))
                    })?),
                };
                if self.poll_interval.0 < Duration::from_millis(20) {
                    return Err(ConfigIssue::new("poll_interval", "must be at least 20ms"));
                }
                Ok(DeviceSpec::Scale(ScaleSpec {
                    protocol,
                    unit,
                    pattern: self.pattern.clone(),
                    request: self.request.as_ref().map(|r| r.as_bytes().to_vec()),
                    stable_by_default: true,
                    poll_interval: self.poll_interval.0,
                    answer_timeout: self.answer_timeout.0,
                }))
            }
        }
    }

    /// Where to open the device; `None` for devices behind a firmware-bridge.
    pub(crate) fn transport(&self) -> Result<Option<Transport>, ConfigIssue> {
        match self.transport {
            Attachment::Serial => {
                let path = self.path.clone().ok_or_else(|| {
                    ConfigIssue::new(
                        "path",
                        "a serial device needs `path` (e.g. /dev/serial/by-id/...; `dockhand devices` lists them)",
                    )
                })?;
                if !(5..=8).contains(&self.data_bits) {
                    return Err(ConfigIssue::new("data_bits", "must be 5, 6, 7 or 8"));
                }
                if !(1..=2).contains(&self.stop_bits) {
                    return Err(ConfigIssue::new("stop_bits", "must be 1 or 2"));
                }
                if self.baud == 0 {
                    return Err(ConfigIssue::new("baud", "must be greater than 0"));
                }
                Ok(Some(Transport::Serial(SerialSettings {
                    path,
                    baud: self.baud,
                    data_bits: self.data_bits,
                    parity: self.parity,
                    stop_bits: self.stop_bits,
                    flow_control: self.flow_control,
                })))
            }
            Attachment::Tcp => {
                let address = self
                    .address
                    .clone()
                    .ok_or_else(|| ConfigIssue::new("address", "a tcp device needs `address` (host:port)"))?;
                if address.rsplit_once(':').is_none_or(|(_, port)| port.parse::<u16>().is_err()) {
                    return Err(ConfigIssue::new("address", format!("`{address}` is not host:port")));
                }
                Ok(Some(Transport::Tcp(address)))
            }
            Attachment::Mqtt => Ok(None),
        }
    }

    /// Checks everything that can be checked without opening the device.
    pub(crate) fn validate(&self) -> Result<(), ConfigIssue> {
        if self.transport == Attachment::Mqtt {
            // Port, protocol and framing are the firmware-bridge's settings, not the agent's.
            if self.path.is_some() || self.address.is_some() || self.protocol.is_some() {
                return Err(ConfigIssue::new(
                    "transport",
                    "a device behind a firmware-bridge takes its path and protocol from the bridge's command line; remove them here",
                ));
            }
            return Ok(());
        }
        let spec = self.spec()?;
        // Building the decoder compiles a pattern template and checks scanner framing.
        let key = match self.kind {
            DeviceKind::Scanner => "suffix",
            DeviceKind::Printer => "language",
            DeviceKind::Scale if self.pattern.is_some() => "pattern",
            DeviceKind::Scale => "protocol",
        };
        let _: DeviceDecoder = spec.decoder().map_err(|e| ConfigIssue::new(key, e))?;
        self.transport()?;
        Ok(())
    }

    pub(crate) fn resolve(&mut self, base: &Path) {
        if let Some(p) = &mut self.path {
            *p = crate::units::resolve(base, p);
        }
    }
}

/// Control characters by the names scanner manuals print. `suffix = "CR"` is the carriage
/// return, not the two letters C and R.
const NAMED: [(&str, &[u8]); 6] =
    [("CR", b"\r"), ("LF", b"\n"), ("CRLF", b"\r\n"), ("TAB", b"\t"), ("STX", b"\x02"), ("ETX", b"\x03")];

/// Other control-character names: refused, with the escape to write instead.
const OTHER_CONTROLS: [(&str, u8); 26] = [
    ("NUL", 0x00),
    ("SOH", 0x01),
    ("EOT", 0x04),
    ("ENQ", 0x05),
    ("ACK", 0x06),
    ("BEL", 0x07),
    ("BS", 0x08),
    ("VT", 0x0B),
    ("FF", 0x0C),
    ("SO", 0x0E),
    ("SI", 0x0F),
    ("DLE", 0x10),
    ("DC1", 0x11),
    ("DC2", 0x12),
    ("DC3", 0x13),
    ("DC4", 0x14),
    ("NAK", 0x15),
    ("SYN", 0x16),
    ("ETB", 0x17),
    ("CAN", 0x18),
    ("EM", 0x19),
    ("SUB", 0x1A),
    ("ESC", 0x1B),
    ("GS", 0x1D),
    ("RS", 0x1E),
    ("US", 0x1F),
];

/// A scanner's `prefix` or `suffix`: a name (CR, LF, CRLF, TAB, STX, ETX, NONE; any case), `""`
/// for none, or the exact characters.
fn delimiter(key: &'static str, text: &str) -> Result<Option<Vec<u8>>, ConfigIssue> {
    if text.is_empty() || text.eq_ignore_ascii_case("NONE") {
        return Ok(None);
    }
    if let Some((_, bytes)) = NAMED.iter().find(|(name, _)| text.eq_ignore_ascii_case(name)) {
        return Ok(Some(bytes.to_vec()));
    }
    if let Some((name, byte)) = OTHER_CONTROLS.iter().find(|(name, _)| text.eq_ignore_ascii_case(name)) {
        return Err(ConfigIssue::new(
            key,
            format!(
                "`{text}` would be the letters {text:?}; for the {name} control character write \"\\u{byte:04X}\" (the names CR, LF, CRLF, TAB, STX, ETX and NONE are understood)"
            ),
        ));
    }
    Ok(Some(text.as_bytes().to_vec()))
}
