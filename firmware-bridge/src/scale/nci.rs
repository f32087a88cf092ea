//! NCI / Weigh-Tronix SCP-01 and SCP-02: `W<CR>` → `<LF>0001.25LB<CR><LF>00<CR><ETX>`,
//! `S<CR>` → `<LF>00<CR><ETX>`, unknown command → `<LF>?<CR><ETX>`. SCP-02 prefixes the status
//! with `S` (`S00`).
//!
//! Status byte 1: bit0 motion, bit1 at zero, bit2 RAM error, bit3 EEPROM error. Byte 2: bit0
//! under capacity, bit1 over capacity, bit2 ROM error, bit3 calibration error, bit6 another byte
//! follows. Optional byte 3: bits 0–1 range, bit2 net. Bits 4–5 are always 1 (so "motion" is
//! `'1'`) and bit 7 is parity, masked off. A weight field of `^` means over capacity, `_` under
//! capacity, `-` zero error.

use super::{ScaleCondition, ScaleError, ScaleReading, Weight, WeightUnit};

const PROTOCOL: &str = "NCI SCP";
const ETX: u8 = 0x03;

/// Commands dockhand sends.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NciCommand {
    /// `W`: weight and status.
    Weigh,
    /// `S`: status only.
    Status,
    /// `Z`: zero.
    Zero,
}

impl NciCommand {
    /// The bytes to send, e.g. `b"W\r"`.
    pub fn encode(self) -> Vec<u8> {
        let c = match self {
            NciCommand::Weigh => b'W',
            NciCommand::Status => b'S',
            NciCommand::Zero => b'Z',
        };
        vec![c, b'\r']
    }
}

/// The status bytes (7-bit).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct NciStatus {
    /// Byte 1.
    pub byte1: u8,
    /// Byte 2.
    pub byte2: u8,
    /// Byte 3, when byte 2 bit 6 announced it.
    pub byte3: Option<u8>,
}

impl NciStatus {
    /// Byte 1 bit 0.
    pub fn motion(&self) -> bool {
        self.byte1 & 0x01 != 0
    }
    /// Byte 1 bit 1.
    pub fn at_zero(&self) -> bool {
        self.byte1 & 0x02 != 0
    }
    /// Byte 2 bit 0.
    pub fn under_capacity(&self) -> bool {
        self.byte2 & 0x01 != 0
    }
    /// Byte 2 bit 1.
    pub fn over_capacity(&self) -> bool {
        self.byte2 & 0x02 != 0
    }
    /// Byte 3 bit 2, when byte 3 is present.
    pub fn net(&self) -> Option<bool> {
        self.byte3.map(|b| b & 0x04 != 0)
    }
    /// Byte 3 bits 0–1, when present.
    pub fn range(&self) -> Option<u8> {
        self.byte3.map(|b| b & 0x03)
    }

    /// Hardware errors reported, as text.
    pub fn errors(&self) -> Vec<&'static str> {
        let mut e = Vec::new();
        if self.byte1 & 0x04 != 0 {
            e.push("RAM error");
        }
        if self.byte1 & 0x08 != 0 {
            e.push("EEPROM error");
        }
        if self.byte2 & 0x04 != 0 {
            e.push("ROM error");
        }
        if self.byte2 & 0x08 != 0 {
            e.push("calibration error");
        }
        e
    }
}

/// The weight field.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum NciWeight {
    /// A number and unit.
    Value {
        /// Decimal string.
        value: String,
        /// Unit.
        unit: WeightUnit,
    },
    /// `^` characters.
    OverCapacity,
    /// `_` characters.
    UnderCapacity,
    /// `-` characters.
    ZeroError,
}

/// A decoded reply.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum NciReply {
    /// Status, with the weight for `W`.
    Status {
        /// The weight line, when present.
        weight: Option<NciWeight>,
        /// The status bytes.
        status: NciStatus,
    },
    /// `?`: unknown command.
    UnknownCommand,
}

impl NciReply {
    /// The common reading: hardware errors first, then over/under, then the weight (or motion for
    /// a status-only reply).
    pub fn reading(&self) -> Option<ScaleReading> {
        let NciReply::Status { weight, status } = self else { return None };
        let errors = status.errors();
        let condition = if !errors.is_empty() {
            Some(ScaleCondition::DeviceError(errors.join(", ")))
        } else if status.over_capacity() || weight.as_ref() == Some(&NciWeight::OverCapacity) {
            Some(ScaleCondition::Overload)
        } else if status.under_capacity() || weight.as_ref() == Some(&NciWeight::UnderCapacity) {
            Some(ScaleCondition::Underload)
        } else if weight.as_ref() == Some(&NciWeight::ZeroError) {
            Some(ScaleCondition::DeviceError("zero error".to_owned()))
        } else {
            None
        };
        if let Some(c) = condition {
            return Some(ScaleReading::Condition(c));
        }
        match weight {
            Some(NciWeight::Value { value, unit }) => {
                let w = Weight::new(value.clone(), *unit, !status.motion());
                Some(ScaleReading::Weight(match status.net() {
                    Some(net) => w.with_net(net),
                    None => w,
                }))
            }
            _ => status.motion().then_some(ScaleReading::Condition(ScaleCondition::Motion)),
        }
    }
}

fn malformed(pos: usize, reason: &'static str) -> ScaleError {
    ScaleError::Malformed { protocol: PROTOCOL, pos, reason }
}

fn parse_status(line: &[u8], pos: usize) -> Result<NciStatus, ScaleError> {
    let (bytes, pos) = match line.strip_prefix(b"S") {
        Some(rest) => (rest, pos + 1),
        None => (line, pos),
    };
    let status_byte = |b: u8| (0x30..=0x7F).contains(&b);
    match bytes {
        [b1, b2, rest @ ..] if status_byte(*b1) && status_byte(*b2) => {
            let byte3 = match rest {
                [] => None,
                [b3] if *b2 & 0x40 != 0 && status_byte(*b3) => Some(*b3),
                _ => return Err(malformed(pos + 2, "unexpected status byte")),
            };
            Ok(NciStatus { byte1: *b1, byte2: *b2, byte3 })
        }
        _ => Err(malformed(pos, "status needs two bytes")),
    }
}

fn parse_weight(line: &[u8], pos: usize) -> Result<NciWeight, ScaleError> {
    let text = super::ascii(line);
    let number_end = text.trim_end_matches(|c: char| c.is_ascii_alphabetic()).len();
    let (field, unit_text) = text.split_at(number_end);
    let only = |c: char| field.trim().chars().all(|x| x == c || x == '.') && field.contains(c);
    if !field.bytes().any(|b| b.is_ascii_digit()) {
        if only('^') {
            return Ok(NciWeight::OverCapacity);
        }
        if only('_') {
            return Ok(NciWeight::UnderCapacity);
        }
        if only('-') {
            return Ok(NciWeight::ZeroError);
        }
    }
    if unit_text.is_empty() {
        return Err(malformed(pos + line.len(), "weight without unit"));
    }
    let value = super::weight_value(PROTOCOL, field)?;
    Ok(NciWeight::Value { value, unit: super::unit(PROTOCOL, unit_text)? })
}

/// Decodes one reply, up to and including the ETX (optional). Parity bits are masked.
pub fn parse_reply(reply: &[u8]) -> Result<NciReply, ScaleError> {
    let r = super::mask7(reply);
    let body = r.strip_suffix(&[ETX]).unwrap_or(&r);
    // Split into lines `<LF>…<CR>`, remembering where each starts.
    let mut lines = Vec::new();
    let mut start = 0;
    for (i, &b) in body.iter().enumerate() {
        if b == b'\r' {
            lines.push((start, &body[start..i]));
            start = i + 1;
        }
    }
    if start < body.len() {
        lines.push((start, &body[start..]));
    }
    let lines: Vec<(usize, &[u8])> = lines
        .into_iter()
        .map(|(p, l)| match l.strip_prefix(b"\n") {
            Some(rest) => (p + 1, rest),
            None => (p, l),
        })
        .filter(|(_, l)| !l.is_empty())
        .collect();
    match lines.as_slice() {
        [] => Err(ScaleError::Empty { protocol: PROTOCOL }),
        [(_, b"?")] => Ok(NciReply::UnknownCommand),
        [(p, status)] => Ok(NciReply::Status { weight: None, status: parse_status(status, *p)? }),
        [(pw, weight), (ps, status)] => {
            Ok(NciReply::Status { weight: Some(parse_weight(weight, *pw)?), status: parse_status(status, *ps)? })
        }
        [.., (p, _)] => Err(malformed(*p, "too many lines")),
    }
}

/// Formats a `W` reply for simulators: `<LF>0001.25LB<CR><LF>00<CR><ETX>` (weight zero-padded to
/// seven characters, unit in upper case, status bytes as given).
pub fn encode_weight_reply(value: &str, unit: WeightUnit, status: &[u8]) -> Vec<u8> {
    let mut v = format!("\n{value:0>7}{}\r\n", unit.as_str().to_ascii_uppercase()).into_bytes();
    v.extend_from_slice(status);
    v.extend_from_slice(b"\r\x03");
    v
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn weight_reply_vector() {
        let r = parse_reply(b"\n0001.25LB\r\n00\r\x03").unwrap();
        assert_eq!(
            r,
            NciReply::Status {
                weight: Some(NciWeight::Value { value: "1.25".into(), unit: WeightUnit::Lb }),
                status: NciStatus { byte1: b'0', byte2: b'0', byte3: None },
            }
        );
        assert_eq!(r.reading(), Some(ScaleReading::Weight(Weight::new("1.25".into(), WeightUnit::Lb, true))));
    }

    #[test]
    fn status_only_vector() {
        let r = parse_reply(b"\n00\r\x03").unwrap();
        assert_eq!(r, NciReply::Status { weight: None, status: NciStatus { byte1: b'0', byte2: b'0', byte3: None } });
        assert_eq!(r.reading(), None);
    }

    #[test]
    fn unknown_command_vector() {
        assert_eq!(parse_reply(b"\n?\r\x03").unwrap(), NciReply::UnknownCommand);
    }

    #[test]
    fn scp_02_status_has_s_prefix() {
        let r = parse_reply(b"\n0001.25LB\r\nS00\r\x03").unwrap();
        assert!(matches!(r.reading(), Some(ScaleReading::Weight(_))));
    }

    #[test]
    fn motion_is_ascii_one() {
        let r = parse_reply(b"\n0001.25LB\r\n10\r\x03").unwrap();
        let Some(ScaleReading::Weight(w)) = r.reading() else { panic!() };
        assert!(!w.stable);
        assert_eq!(
            parse_reply(b"\n10\r\x03").unwrap().reading(),
            Some(ScaleReading::Condition(ScaleCondition::Motion))
        );
    }

    #[test]
    fn over_under_and_zero_error_fields() {
        let reading = |r: &[u8]| parse_reply(r).unwrap().reading();
        assert_eq!(reading(b"\n^^^^^^^LB\r\n02\r\x03"), Some(ScaleReading::Condition(ScaleCondition::Overload)));
        assert_eq!(reading(b"\n^^^^^^^LB\r\n00\r\x03"), Some(ScaleReading::Condition(ScaleCondition::Overload)));
        assert_eq!(reading(b"\n_______LB\r\n01\r\x03"), Some(ScaleReading::Condition(ScaleCondition::Underload)));
        assert!(matches!(
            reading(b"\n-------LB\r\n00\r\x03"),
            Some(ScaleReading::Condition(ScaleCondition::DeviceError(_)))
        ));
        // A negative weight is not a zero error.
        assert!(matches!(reading(b"\n-001.25LB\r\n00\r\x03"), Some(ScaleReading::Weight(w)) if w.value == "-1.25"));
    }

    #[test]
    fn hardware_errors_are_device_errors() {
        let Some(ScaleReading::Condition(ScaleCondition::DeviceError(text))) =
            parse_reply(b"\n0001.25LB\r\n48\r\x03").unwrap().reading()
        else {
            panic!()
        };
        assert_eq!(text, "RAM error, calibration error");
    }

    #[test]
    fn third_status_byte_carries_net_and_range() {
        // byte2 = 0x70 ('p'): bit6 set, byte3 = '5' (0x35): net + range 1.
        let r = parse_reply(b"\n0001.25KG\r\n0p5\r\x03").unwrap();
        let NciReply::Status { status, .. } = &r else { panic!() };
        assert_eq!((status.net(), status.range()), (Some(true), Some(1)));
        let Some(ScaleReading::Weight(w)) = r.reading() else { panic!() };
        assert_eq!(w.net, Some(true));
    }

    #[test]
    fn parity_bits_are_masked() {
        let r: Vec<u8> = b"\n0001.25LB\r\n10\r\x03".iter().map(|b| b | 0x80).collect();
        assert!(matches!(parse_reply(&r).unwrap().reading(), Some(ScaleReading::Weight(w)) if !w.stable));
    }

    #[test]
    fn malformed_replies() {
        assert_eq!(parse_reply(b"\x03"), Err(ScaleError::Empty { protocol: PROTOCOL }));
        assert!(matches!(parse_reply(b"\n0\r\x03"), Err(ScaleError::Malformed { .. })));
        assert!(matches!(parse_reply(b"\n0001.25\r\n00\r\x03"), Err(ScaleError::Malformed { .. })));
        assert!(matches!(parse_reply(b"\n0001.25XX\r\n00\r\x03"), Err(ScaleError::UnknownUnit { .. })));
        assert!(matches!(parse_reply(b"\na\r\nb\r\nc\r\x03"), Err(ScaleError::Malformed { .. })));
    }

    #[test]
    fn commands() {
        assert_eq!(NciCommand::Weigh.encode(), b"W\r");
        assert_eq!(NciCommand::Status.encode(), b"S\r");
        assert_eq!(NciCommand::Zero.encode(), b"Z\r");
    }

    #[test]
    fn encoder_reproduces_the_vector() {
        assert_eq!(encode_weight_reply("1.25", WeightUnit::Lb, b"00"), b"\n0001.25LB\r\n00\r\x03");
    }

    proptest! {
        #[test]
        fn arbitrary_bytes_never_panic(r in prop::collection::vec(any::<u8>(), 0..30)) {
            let _ = parse_reply(&r).map(|x| x.reading());
        }

        #[test]
        fn weight_reply_round_trips(v in 0u32..1_000_000, places in 0usize..3, motion in any::<bool>(),
                                    unit in prop::sample::select(vec![WeightUnit::Kg, WeightUnit::G, WeightUnit::Lb, WeightUnit::Oz, WeightUnit::T])) {
            let value = crate::decimal::from_scaled(&v.to_string(), places, false).unwrap();
            let status = if motion { b"10" } else { b"00" };
            let r = parse_reply(&encode_weight_reply(&value, unit, status)).unwrap();
            prop_assert_eq!(r.reading(), Some(ScaleReading::Weight(Weight::new(value, unit, !motion))));
        }
    }
}
