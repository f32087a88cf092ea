//! Toledo 8217 demand mode (Ariva, Viva, DIVA — Odoo's "Toledo 8217"): commands are single
//! letters without terminator; `W` is answered `<STX>01.250<CR>` (weight, `N` suffix = net) or,
//! when no weight can be given, `<STX>?<status><CR>`.
//!
//! Status byte: bit0 motion, bit1 over capacity, bit2 under zero, bit3 outside zero-capture
//! range, bit4 centre of zero, bit5 net, bit6 always 1. The parity bit (7E1) is masked off.
//!
//! The unit is not in the reply. [`UnitMode::Infer`] follows the reference: three decimals
//! (`01.250`) is kg, two (`001.25`) is lb; set [`UnitMode::Fixed`] when the scale's unit is known.

use super::{ScaleCondition, ScaleError, ScaleReading, Weight, WeightUnit};

const PROTOCOL: &str = "Toledo 8217";
const STX: u8 = 0x02;
const CR: u8 = 0x0D;

/// Commands (sent as one byte, no terminator).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Command8217 {
    /// `W`: weight.
    Weigh,
    /// `Z`: zero.
    Zero,
    /// `T`: tare.
    Tare,
    /// `C`: clear tare.
    ClearTare,
    /// `E<text>`: echo probe; a Toledo 8217 answers `<STX>E<CR><text>`.
    Probe(String),
}

impl Command8217 {
    /// The bytes to send.
    pub fn encode(&self) -> Vec<u8> {
        match self {
            Command8217::Weigh => b"W".to_vec(),
            Command8217::Zero => b"Z".to_vec(),
            Command8217::Tare => b"T".to_vec(),
            Command8217::ClearTare => b"C".to_vec(),
            Command8217::Probe(text) => {
                let mut v = b"E".to_vec();
                v.extend_from_slice(text.as_bytes());
                v
            }
        }
    }
}

/// How the weight unit is determined.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum UnitMode {
    /// Three decimals → kg, otherwise lb.
    Infer,
    /// Always this unit.
    Fixed(WeightUnit),
}

/// The status byte of a `?` reply.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Status8217 {
    /// The raw 7-bit byte.
    pub byte: u8,
}

impl Status8217 {
    /// Bit 0.
    pub fn motion(self) -> bool {
        self.byte & 0x01 != 0
    }
    /// Bit 1.
    pub fn over_capacity(self) -> bool {
        self.byte & 0x02 != 0
    }
    /// Bit 2.
    pub fn under_zero(self) -> bool {
        self.byte & 0x04 != 0
    }
    /// Bit 3.
    pub fn outside_zero_capture(self) -> bool {
        self.byte & 0x08 != 0
    }
    /// Bit 4.
    pub fn centre_of_zero(self) -> bool {
        self.byte & 0x10 != 0
    }
    /// Bit 5.
    pub fn net(self) -> bool {
        self.byte & 0x20 != 0
    }

    /// Why no weight was given (over capacity first, then under zero, then motion); `None` when
    /// the status only reports zero/net state (e.g. after `Z`, `T`, `C`).
    pub fn condition(self) -> Option<ScaleCondition> {
        if self.over_capacity() {
            Some(ScaleCondition::Overload)
        } else if self.under_zero() {
            Some(ScaleCondition::Underload)
        } else if self.motion() {
            Some(ScaleCondition::Motion)
        } else if self.outside_zero_capture() {
            Some(ScaleCondition::DeviceError("outside zero-capture range".to_owned()))
        } else {
            None
        }
    }
}

/// A decoded reply.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Reply8217 {
    /// A weight (always stable: the scale answers `?` while in motion).
    Weight(Weight),
    /// `<STX>?<status><CR>`.
    Status(Status8217),
}

impl Reply8217 {
    /// The common reading; `None` for a status that reports no problem.
    pub fn reading(&self) -> Option<ScaleReading> {
        match self {
            Reply8217::Weight(w) => Some(ScaleReading::Weight(w.clone())),
            Reply8217::Status(s) => s.condition().map(ScaleReading::Condition),
        }
    }
}

/// Decodes one reply `<STX>…<CR>` (the CR is optional; parity bits are masked).
pub fn parse_reply(reply: &[u8], unit_mode: UnitMode) -> Result<Reply8217, ScaleError> {
    let r = super::mask7(reply);
    let Some((&first, rest)) = r.split_first() else {
        return Err(ScaleError::Empty { protocol: PROTOCOL });
    };
    if first != STX {
        return Err(ScaleError::Malformed { protocol: PROTOCOL, pos: 0, reason: "no STX" });
    }
    let body = rest.strip_suffix(&[CR]).unwrap_or(rest);
    match body {
        [b'?', status] => return Ok(Reply8217::Status(Status8217 { byte: *status })),
        [] => return Err(ScaleError::Malformed { protocol: PROTOCOL, pos: 1, reason: "empty reply" }),
        _ => {}
    }
    let (number, net) = match body.strip_suffix(b"N") {
        Some(n) => (n, true),
        None => (body, false),
    };
    if let Some(i) = number.iter().position(|b| !(b.is_ascii_digit() || *b == b'.' || *b == b' ' || *b == b'-')) {
        return Err(ScaleError::Malformed { protocol: PROTOCOL, pos: 1 + i, reason: "unexpected character" });
    }
    let text = super::ascii(number);
    let value = super::weight_value(PROTOCOL, &text)?;
    let unit = match unit_mode {
        UnitMode::Fixed(u) => u,
        UnitMode::Infer => match text.split_once('.') {
            Some((_, frac)) if frac.len() == 3 => WeightUnit::Kg,
            _ => WeightUnit::Lb,
        },
    };
    Ok(Reply8217::Weight(Weight::new(value, unit, true).with_net(net)))
}

/// `true` when `reply` is the answer to [`Command8217::Probe`] with this text.
pub fn is_probe_reply(reply: &[u8], text: &str) -> bool {
    let r = super::mask7(reply);
    r.strip_prefix(&[STX, b'E', CR]).is_some_and(|rest| rest == text.as_bytes())
}

/// Formats a weight reply as the scale sends it (`<STX>01.250<CR>`) for simulators: the value
/// is zero-padded to six characters.
pub fn encode_weight_reply(weight: &Weight) -> Vec<u8> {
    let mut v = vec![STX];
    v.extend_from_slice(format!("{:0>6}", weight.value).as_bytes());
    if weight.net == Some(true) {
        v.push(b'N');
    }
    v.push(CR);
    v
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn parse(r: &[u8]) -> Result<Reply8217, ScaleError> {
        parse_reply(r, UnitMode::Infer)
    }

    #[test]
    fn gross_kilograms() {
        assert_eq!(
            parse(b"\x0201.250\r").unwrap(),
            Reply8217::Weight(Weight::new("1.250".into(), WeightUnit::Kg, true).with_net(false))
        );
    }

    #[test]
    fn pounds_have_two_decimals() {
        let Reply8217::Weight(w) = parse(b"\x02001.25\r").unwrap() else { panic!() };
        assert_eq!((w.value.as_str(), w.unit), ("1.25", WeightUnit::Lb));
    }

    #[test]
    fn net_suffix() {
        let Reply8217::Weight(w) = parse(b"\x0201.250N\r").unwrap() else { panic!() };
        assert_eq!((w.value.as_str(), w.net), ("1.250", Some(true)));
    }

    #[test]
    fn fixed_unit_overrides_inference() {
        let Reply8217::Weight(w) = parse_reply(b"\x02001.25\r", UnitMode::Fixed(WeightUnit::Kg)).unwrap() else {
            panic!()
        };
        assert_eq!(w.unit, WeightUnit::Kg);
    }

    #[test]
    fn status_motion() {
        let r = parse(&[0x02, 0x3F, 0x41, 0x0D]).unwrap();
        assert_eq!(r.reading(), Some(ScaleReading::Condition(ScaleCondition::Motion)));
    }

    #[test]
    fn status_over_capacity() {
        let r = parse(&[0x02, 0x3F, 0x42, 0x0D]).unwrap();
        assert_eq!(r.reading(), Some(ScaleReading::Condition(ScaleCondition::Overload)));
    }

    #[test]
    fn status_under_zero() {
        let r = parse(&[0x02, 0x3F, 0x44, 0x0D]).unwrap();
        assert_eq!(r.reading(), Some(ScaleReading::Condition(ScaleCondition::Underload)));
    }

    #[test]
    fn status_q_is_motion_at_centre_of_zero() {
        let Reply8217::Status(s) = parse(b"\x02?Q\r").unwrap() else { panic!() };
        assert!(s.motion() && s.centre_of_zero() && !s.net());
        assert_eq!(s.condition(), Some(ScaleCondition::Motion));
    }

    #[test]
    fn status_after_zero_without_problem_is_no_reading() {
        // 0x50: bit6 + centre of zero.
        assert_eq!(parse(b"\x02?P\r").unwrap().reading(), None);
    }

    #[test]
    fn parity_bits_are_masked() {
        let r: Vec<u8> = b"\x0201.250\r".iter().map(|b| b | 0x80).collect();
        assert!(matches!(parse(&r), Ok(Reply8217::Weight(_))));
    }

    #[test]
    fn malformed_replies() {
        assert_eq!(parse(b""), Err(ScaleError::Empty { protocol: PROTOCOL }));
        assert!(matches!(parse(b"01.250\r"), Err(ScaleError::Malformed { pos: 0, .. })));
        assert!(matches!(parse(b"\x02\r"), Err(ScaleError::Malformed { .. })));
        assert!(matches!(parse(b"\x0201.2X0\r"), Err(ScaleError::Malformed { pos: 5, .. })));
        assert!(matches!(parse(b"\x02..\r"), Err(ScaleError::InvalidWeight { .. })));
    }

    #[test]
    fn commands_and_probe() {
        assert_eq!(Command8217::Weigh.encode(), b"W");
        assert_eq!(Command8217::Zero.encode(), b"Z");
        assert_eq!(Command8217::Tare.encode(), b"T");
        assert_eq!(Command8217::ClearTare.encode(), b"C");
        assert_eq!(Command8217::Probe("hello".into()).encode(), b"Ehello");
        assert!(is_probe_reply(b"\x02E\rhello", "hello"));
        assert!(!is_probe_reply(b"\x02E\rhellx", "hello"));
    }

    proptest! {
        #[test]
        fn arbitrary_bytes_never_panic(r in prop::collection::vec(any::<u8>(), 0..20)) {
            let _ = parse(&r).map(|x| x.reading());
            let _ = is_probe_reply(&r, "hello");
        }

        #[test]
        fn weight_reply_round_trips(v in 0u32..100_000, kg in any::<bool>(), net in any::<bool>()) {
            let (places, unit) = if kg { (3, WeightUnit::Kg) } else { (2, WeightUnit::Lb) };
            let value = crate::decimal::from_scaled(&v.to_string(), places, false).unwrap();
            let w = Weight::new(value, unit, true).with_net(net);
            prop_assert_eq!(parse(&encode_weight_reply(&w)).unwrap(), Reply8217::Weight(w));
        }
    }
}
