//! CAS continuous/demand lines, in both common layouts:
//!
//! - 22 bytes: `ST|US|OL , GS|NT , <id><lamp> , <8-char data> ␠ k g <CR><LF>`
//!   (lamp byte: bit6 stable, bit4 hold, bit2 gross, bit1 tare, bit0 zero);
//! - 18 bytes: `ST,GS,+0001.23kg<CR><LF>`, also space padded (`ST,GS,+  4.876kg`).
//!
//! `ST` stable, `US` unstable, `OL` overload; `GS` gross, `NT` net. Fields are split on commas
//! and the unit is read from the trailing letters, so either layout (and minor variations) decode
//! with the same function.

use super::{ScaleCondition, ScaleError, ScaleReading, Weight, WeightUnit};

const PROTOCOL: &str = "CAS";

/// The lamp byte of the 22-byte layout.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CasLamps {
    /// The raw byte.
    pub byte: u8,
}

impl CasLamps {
    /// Bit 6.
    pub fn stable(self) -> bool {
        self.byte & 0x40 != 0
    }
    /// Bit 4.
    pub fn hold(self) -> bool {
        self.byte & 0x10 != 0
    }
    /// Bit 2.
    pub fn gross(self) -> bool {
        self.byte & 0x04 != 0
    }
    /// Bit 1.
    pub fn tare(self) -> bool {
        self.byte & 0x02 != 0
    }
    /// Bit 0.
    pub fn zero(self) -> bool {
        self.byte & 0x01 != 0
    }
}

/// The state header.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CasState {
    /// `ST`.
    Stable,
    /// `US`.
    Unstable,
    /// `OL`.
    Overload,
}

/// A decoded line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CasLine {
    /// First header.
    pub state: CasState,
    /// `NT` (true) or `GS` (false).
    pub net: bool,
    /// Device id and lamps (22-byte layout only).
    pub id_lamps: Option<(u8, CasLamps)>,
    /// The weight (absent on overload lines with no number).
    pub weight: Option<String>,
    /// The unit (absent when the line has none).
    pub unit: Option<WeightUnit>,
}

impl CasLine {
    /// The common reading.
    pub fn reading(&self) -> Option<ScaleReading> {
        if self.state == CasState::Overload {
            return Some(ScaleReading::Condition(ScaleCondition::Overload));
        }
        let (Some(value), Some(unit)) = (self.weight.clone(), self.unit) else {
            return None;
        };
        Some(ScaleReading::Weight(Weight::new(value, unit, self.state == CasState::Stable).with_net(self.net)))
    }
}

fn malformed(pos: usize, reason: &'static str) -> ScaleError {
    ScaleError::Malformed { protocol: PROTOCOL, pos, reason }
}

/// Decodes one line (CR/LF optional).
pub fn parse_line(line: &[u8]) -> Result<CasLine, ScaleError> {
    let end = line.iter().rposition(|&b| b != b'\r' && b != b'\n').map_or(0, |i| i + 1);
    let line = &line[..end];
    if line.is_empty() {
        return Err(ScaleError::Empty { protocol: PROTOCOL });
    }
    let fields: Vec<&[u8]> = line.split(|&b| b == b',').collect();
    let (state_f, gross_f, id_f, data_f) = match fields.as_slice() {
        [s, g, d] => (*s, *g, None, *d),
        [s, g, i, d] => (*s, *g, Some(*i), *d),
        _ => return Err(malformed(0, "expected 3 or 4 comma-separated fields")),
    };
    let state = match state_f {
        b"ST" => CasState::Stable,
        b"US" => CasState::Unstable,
        b"OL" => CasState::Overload,
        _ => return Err(malformed(0, "unknown state (ST, US, OL)")),
    };
    let net = match gross_f {
        b"GS" => false,
        b"NT" => true,
        _ => return Err(malformed(3, "unknown mode (GS, NT)")),
    };
    let id_lamps = match id_f {
        None => None,
        Some([id, lamp]) => Some((*id, CasLamps { byte: *lamp })),
        Some(_) => return Err(malformed(6, "id/lamp field must be 2 bytes")),
    };
    let data_pos = line.len() - data_f.len();
    if let Some(i) = data_f.iter().position(|b| !b.is_ascii() || b.is_ascii_control()) {
        return Err(malformed(data_pos + i, "unexpected byte in data"));
    }
    let text = super::ascii(data_f);
    let text = text.trim_end_matches(' ');
    let number_end = text.trim_end_matches(|c: char| c.is_ascii_alphabetic()).len();
    let (number, unit_text) = text.split_at(number_end);
    let unit = if unit_text.is_empty() { None } else { Some(super::unit(PROTOCOL, unit_text)?) };
    let weight = match crate::decimal::normalize(number) {
        Some(v) => Some(v),
        None if state == CasState::Overload => None,
        None => return Err(ScaleError::InvalidWeight { protocol: PROTOCOL, text: number.to_owned() }),
    };
    Ok(CasLine { state, net, id_lamps, weight, unit })
}

/// Formats an 18-byte line (`ST,GS,+0001.23kg\r\n`) for simulators; the value (without sign)
/// must fit in seven characters.
pub fn encode_line(weight: &Weight) -> Vec<u8> {
    let state = if weight.stable { "ST" } else { "US" };
    let mode = if weight.net == Some(true) { "NT" } else { "GS" };
    let (sign, digits) = match weight.value.strip_prefix('-') {
        Some(d) => ('-', d),
        None => ('+', weight.value.as_str()),
    };
    format!("{state},{mode},{sign}{digits:0>7}{:<2}\r\n", weight.unit.as_str()).into_bytes()
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn twenty_two_byte_vector_is_stable_gross() {
        let line = [
            0x53, 0x54, 0x2C, 0x47, 0x53, 0x2C, 0x31, 0xC4, 0x2C, 0x30, 0x30, 0x30, 0x30, 0x31, 0x33, 0x2E, 0x35, 0x20,
            0x6B, 0x67, 0x0D, 0x0A,
        ];
        let l = parse_line(&line).unwrap();
        assert_eq!(
            l.reading(),
            Some(ScaleReading::Weight(Weight::new("13.5".into(), WeightUnit::Kg, true).with_net(false)))
        );
        let (id, lamps) = l.id_lamps.unwrap();
        assert_eq!(id, b'1');
        assert!(lamps.stable() && lamps.gross() && !lamps.hold() && !lamps.tare() && !lamps.zero());
    }

    #[test]
    fn eighteen_byte_vector() {
        let l = parse_line(b"ST,GS,+0001.23kg\r\n").unwrap();
        assert_eq!(
            l.reading(),
            Some(ScaleReading::Weight(Weight::new("1.23".into(), WeightUnit::Kg, true).with_net(false)))
        );
    }

    #[test]
    fn space_padded_vector() {
        let l = parse_line(b"ST,GS,+  4.876kg\r\n").unwrap();
        assert_eq!(l.weight.as_deref(), Some("4.876"));
    }

    #[test]
    fn unstable_overload_and_net() {
        let Some(ScaleReading::Weight(w)) = parse_line(b"US,GS,+0001.23kg\r\n").unwrap().reading() else { panic!() };
        assert!(!w.stable);
        assert_eq!(
            parse_line(b"OL,GS,+------kg\r\n").unwrap().reading(),
            Some(ScaleReading::Condition(ScaleCondition::Overload))
        );
        let Some(ScaleReading::Weight(w)) = parse_line(b"ST,NT,-0000.50lb\r\n").unwrap().reading() else { panic!() };
        assert_eq!((w.value.as_str(), w.net, w.unit), ("-0.50", Some(true), WeightUnit::Lb));
    }

    #[test]
    fn malformed_lines() {
        assert_eq!(parse_line(b"\r\n"), Err(ScaleError::Empty { protocol: PROTOCOL }));
        assert!(matches!(parse_line(b"XX,GS,+0001.23kg"), Err(ScaleError::Malformed { pos: 0, .. })));
        assert!(matches!(parse_line(b"ST,XX,+0001.23kg"), Err(ScaleError::Malformed { pos: 3, .. })));
        assert!(matches!(parse_line(b"ST,GS"), Err(ScaleError::Malformed { .. })));
        assert!(matches!(parse_line(b"ST,GS,+00a1.23kg"), Err(ScaleError::InvalidWeight { .. })));
        assert!(matches!(parse_line(b"ST,GS,+0001.23zz"), Err(ScaleError::UnknownUnit { .. })));
    }

    #[test]
    fn encoder_reproduces_the_vector() {
        let w = Weight::new("1.23".into(), WeightUnit::Kg, true).with_net(false);
        assert_eq!(encode_line(&w), b"ST,GS,+0001.23kg\r\n");
    }

    proptest! {
        #[test]
        fn arbitrary_bytes_never_panic(r in prop::collection::vec(any::<u8>(), 0..30)) {
            let _ = parse_line(&r).map(|l| l.reading());
        }

        #[test]
        fn line_round_trips(v in any::<i32>(), places in 0usize..4, net in any::<bool>(), stable in any::<bool>(),
                            unit in prop::sample::select(vec![WeightUnit::Kg, WeightUnit::G, WeightUnit::Lb, WeightUnit::Oz, WeightUnit::T])) {
            let value = crate::decimal::from_scaled(&(v.unsigned_abs() % 100_000).to_string(), places, v < 0).unwrap();
            let w = Weight::new(value, unit, stable).with_net(net);
            prop_assert_eq!(parse_line(&encode_line(&w)).unwrap().reading(), Some(ScaleReading::Weight(w)));
        }
    }
}
