//! SMA standard serial protocol (Scale Manufacturers Association; not NCI): requests are
//! `<LF><cmd><CR>`, the weight reply is one line `<LF> s r n m f <10-char weight> <3-char unit>
//! <CR>`, and an unknown command is answered `<LF>?<CR>`.
//!
//! s: `Z` centre of zero, `O` over, `U` under, `E` zero error, `T` tare error, space OK;
//! r: range (`1`…); n: `G`/`N`/`T` gross, net, tare (lower case = high resolution); m: `M` motion;
//! f: reserved. The weight and unit are split by content, not by offset, so a reply with a
//! different field width still decodes. Parity bits are masked.

use super::{ScaleCondition, ScaleError, ScaleReading, Weight, WeightUnit};

const PROTOCOL: &str = "SMA";

/// Commands dockhand sends.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SmaCommand {
    /// `W`: weight.
    Weigh,
    /// `S`: status.
    Status,
    /// `Z`: zero.
    Zero,
    /// `T`: tare.
    Tare,
}

impl SmaCommand {
    /// The bytes to send, e.g. `b"\nW\r"`.
    pub fn encode(self) -> Vec<u8> {
        let c = match self {
            SmaCommand::Weigh => b'W',
            SmaCommand::Status => b'S',
            SmaCommand::Zero => b'Z',
            SmaCommand::Tare => b'T',
        };
        vec![b'\n', c, b'\r']
    }
}

/// Field `s`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SmaStatus {
    /// Space.
    Ok,
    /// `Z`.
    CentreOfZero,
    /// `O`.
    Over,
    /// `U`.
    Under,
    /// `E`.
    ZeroError,
    /// `T`.
    TareError,
}

/// Field `n`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SmaMode {
    /// `G`.
    Gross,
    /// `N`.
    Net,
    /// `T`: the weight field holds the tare.
    Tare,
}

/// A decoded weight/status line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SmaLine {
    /// Field `s`.
    pub status: SmaStatus,
    /// Field `r`.
    pub range: u8,
    /// Field `n`.
    pub mode: SmaMode,
    /// Lower-case `n`.
    pub high_resolution: bool,
    /// Field `m`.
    pub motion: bool,
    /// The weight, when the field holds a number.
    pub weight: Option<String>,
    /// The unit, when present.
    pub unit: Option<WeightUnit>,
}

/// A decoded reply.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SmaReply {
    /// A weight or status line.
    Line(SmaLine),
    /// `<LF>?<CR>`: the scale did not understand the command.
    UnknownCommand,
}

impl SmaReply {
    /// The common reading. A tare line gives a weight whose `tare` is its value.
    pub fn reading(&self) -> Option<ScaleReading> {
        let SmaReply::Line(l) = self else { return None };
        let condition = match l.status {
            SmaStatus::Over => Some(ScaleCondition::Overload),
            SmaStatus::Under => Some(ScaleCondition::Underload),
            SmaStatus::ZeroError => Some(ScaleCondition::DeviceError("zero error".to_owned())),
            SmaStatus::TareError => Some(ScaleCondition::DeviceError("tare error".to_owned())),
            SmaStatus::Ok | SmaStatus::CentreOfZero => None,
        };
        if let Some(c) = condition {
            return Some(ScaleReading::Condition(c));
        }
        let (Some(value), Some(unit)) = (l.weight.clone(), l.unit) else {
            return l.motion.then_some(ScaleReading::Condition(ScaleCondition::Motion));
        };
        let w = Weight::new(value, unit, !l.motion);
        Some(ScaleReading::Weight(match l.mode {
            SmaMode::Gross => w.with_net(false),
            SmaMode::Net => w.with_net(true),
            SmaMode::Tare => Weight { tare: Some(w.value.clone()), ..w },
        }))
    }
}

fn malformed(pos: usize, reason: &'static str) -> ScaleError {
    ScaleError::Malformed { protocol: PROTOCOL, pos, reason }
}

/// Decodes one reply line; the leading LF and trailing CR are optional.
pub fn parse_reply(reply: &[u8]) -> Result<SmaReply, ScaleError> {
    let r = super::mask7(reply);
    let (body, off) = match r.strip_prefix(b"\n") {
        Some(b) => (b, 1),
        None => (&r[..], 0),
    };
    let body = body.strip_suffix(b"\r").unwrap_or(body);
    if body.is_empty() {
        return Err(ScaleError::Empty { protocol: PROTOCOL });
    }
    if body == b"?" {
        return Ok(SmaReply::UnknownCommand);
    }
    let [s, r, n, m, _f, rest @ ..] = body else {
        return Err(malformed(off + body.len(), "line too short"));
    };
    let status = match s {
        b' ' => SmaStatus::Ok,
        b'Z' => SmaStatus::CentreOfZero,
        b'O' => SmaStatus::Over,
        b'U' => SmaStatus::Under,
        b'E' => SmaStatus::ZeroError,
        b'T' => SmaStatus::TareError,
        _ => return Err(malformed(off, "unknown status")),
    };
    if !r.is_ascii_digit() {
        return Err(malformed(off + 1, "range is not a digit"));
    }
    let mode = match n.to_ascii_uppercase() {
        b'G' => SmaMode::Gross,
        b'N' => SmaMode::Net,
        b'T' => SmaMode::Tare,
        _ => return Err(malformed(off + 2, "unknown weight mode")),
    };
    let motion = match m {
        b'M' => true,
        b' ' => false,
        _ => return Err(malformed(off + 3, "unknown motion flag")),
    };
    let text = super::ascii(rest);
    let text = text.trim_end_matches(' ');
    let number_end = text.trim_end_matches(|c: char| c.is_ascii_alphabetic()).len();
    let (number, unit_text) = text.split_at(number_end);
    let unit = if unit_text.is_empty() { None } else { Some(super::unit(PROTOCOL, unit_text)?) };
    let weight = match crate::decimal::normalize(number) {
        Some(v) => Some(v),
        // Over/under/error lines may carry dashes or blanks instead of a number.
        None if status != SmaStatus::Ok && status != SmaStatus::CentreOfZero => None,
        None if number.trim().is_empty() && unit.is_none() => None,
        None => return Err(ScaleError::InvalidWeight { protocol: PROTOCOL, text: number.to_owned() }),
    };
    Ok(SmaReply::Line(SmaLine {
        status,
        range: r - b'0',
        mode,
        high_resolution: n.is_ascii_lowercase(),
        motion,
        weight,
        unit,
    }))
}

/// Formats a gross/net weight line as the scale sends it, for simulators.
pub fn encode_weight_reply(weight: &Weight) -> Vec<u8> {
    let n = if weight.net == Some(true) { 'N' } else { 'G' };
    let m = if weight.stable { ' ' } else { 'M' };
    format!("\n 1{n}{m} {:>10}{:<3}\r", weight.value, weight.unit.as_str()).into_bytes()
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn stable_gross_vector() {
        let r = parse_reply(b"\n 1G       1.250kg \r").unwrap();
        assert_eq!(
            r.reading(),
            Some(ScaleReading::Weight(Weight::new("1.250".into(), WeightUnit::Kg, true).with_net(false)))
        );
    }

    #[test]
    fn moving_vector() {
        let r = parse_reply(b"\n 1GM      1.250kg \r").unwrap();
        let Some(ScaleReading::Weight(w)) = r.reading() else { panic!() };
        assert!(!w.stable);
        assert_eq!(w.value, "1.250");
    }

    #[test]
    fn unknown_command_vector() {
        assert_eq!(parse_reply(b"\n?\r").unwrap(), SmaReply::UnknownCommand);
        assert_eq!(SmaReply::UnknownCommand.reading(), None);
    }

    #[test]
    fn status_letters_become_conditions() {
        let cond = |line: &[u8]| parse_reply(line).unwrap().reading();
        assert_eq!(cond(b"\nO1G   ---------- kg\r"), Some(ScaleReading::Condition(ScaleCondition::Overload)));
        assert_eq!(cond(b"\nU1G          -1.0kg \r"), Some(ScaleReading::Condition(ScaleCondition::Underload)));
        assert!(matches!(
            cond(b"\nE1G       0.000kg \r"),
            Some(ScaleReading::Condition(ScaleCondition::DeviceError(_)))
        ));
        assert!(matches!(cond(b"\nZ1G       0.000kg \r"), Some(ScaleReading::Weight(_))));
    }

    #[test]
    fn net_tare_and_high_resolution() {
        let Some(ScaleReading::Weight(w)) = parse_reply(b"\n 1N       0.750lb \r").unwrap().reading() else { panic!() };
        assert_eq!((w.net, w.unit), (Some(true), WeightUnit::Lb));
        let Some(ScaleReading::Weight(w)) = parse_reply(b"\n 1T       0.500kg \r").unwrap().reading() else { panic!() };
        assert_eq!(w.tare.as_deref(), Some("0.500"));
        let SmaReply::Line(l) = parse_reply(b"\n 2g       1.2505kg\r").unwrap() else { panic!() };
        assert!(l.high_resolution);
        assert_eq!(l.range, 2);
    }

    #[test]
    fn malformed_lines() {
        assert_eq!(parse_reply(b"\n\r"), Err(ScaleError::Empty { protocol: PROTOCOL }));
        assert!(matches!(parse_reply(b"\n 1G\r"), Err(ScaleError::Malformed { .. })));
        assert!(matches!(parse_reply(b"\nX1G       1.250kg \r"), Err(ScaleError::Malformed { pos: 1, .. })));
        assert!(matches!(parse_reply(b"\n 1G       1.2x0kg \r"), Err(ScaleError::InvalidWeight { .. })));
        assert!(matches!(parse_reply(b"\n 1G       1.250zz \r"), Err(ScaleError::UnknownUnit { .. })));
    }

    #[test]
    fn commands_are_framed_with_lf_and_cr() {
        assert_eq!(SmaCommand::Weigh.encode(), b"\nW\r");
        assert_eq!(SmaCommand::Zero.encode(), b"\nZ\r");
    }

    #[test]
    fn encoder_reproduces_the_vectors() {
        let w = Weight::new("1.250".into(), WeightUnit::Kg, true).with_net(false);
        assert_eq!(encode_weight_reply(&w), b"\n 1G       1.250kg \r");
        let w = Weight::new("1.250".into(), WeightUnit::Kg, false).with_net(false);
        assert_eq!(encode_weight_reply(&w), b"\n 1GM      1.250kg \r");
    }

    proptest! {
        #[test]
        fn arbitrary_bytes_never_panic(r in prop::collection::vec(any::<u8>(), 0..30)) {
            let _ = parse_reply(&r).map(|x| x.reading());
        }

        #[test]
        fn weight_reply_round_trips(v in any::<i32>(), places in 0usize..4, net in any::<bool>(), stable in any::<bool>(),
                                    unit in prop::sample::select(vec![WeightUnit::Kg, WeightUnit::G, WeightUnit::Lb, WeightUnit::Oz, WeightUnit::T])) {
            let value = crate::decimal::from_scaled(&(v.unsigned_abs() % 1_000_000).to_string(), places, v < 0).unwrap();
            let w = Weight::new(value, unit, stable).with_net(net);
            prop_assert_eq!(parse_reply(&encode_weight_reply(&w)).unwrap().reading(), Some(ScaleReading::Weight(w)));
        }
    }
}
