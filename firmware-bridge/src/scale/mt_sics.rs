//! Mettler Toledo MT-SICS, level 0/1: command encoders and a reply-line decoder.
//!
//! Every command and reply ends with CRLF. Weight replies are `S S <weight> <unit>` (stable) or
//! `S D <weight> <unit>` (dynamic); the weight field is right-aligned in a width that varies by
//! model, so replies are split on runs of spaces rather than by offset. `S I` (busy / no stable
//! weight in time), `S +` (overload), `S -` (underload); `ES`, `ET`, `EL` are the generic syntax,
//! transmission and logical errors. The same status letters apply to `Z`, `T`, `TA`, `TAC`, `I4`.

use super::{ScaleCondition, ScaleError, ScaleReading, Weight, WeightUnit, unit, weight_value};

const PROTOCOL: &str = "MT-SICS";

/// Commands dockhand sends.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SicsCommand {
    /// `S`: send the next stable weight.
    Stable,
    /// `SI`: send the weight now, stable or not.
    Immediate,
    /// `SIR`: send the weight immediately and repeat until `@`.
    ImmediateRepeat,
    /// `Z`: zero (waits for stability).
    Zero,
    /// `ZI`: zero immediately.
    ZeroImmediate,
    /// `T`: tare (waits for stability).
    Tare,
    /// `TA`: query the tare value.
    TareValue,
    /// `TAC`: clear the tare.
    ClearTare,
    /// `I4`: serial number.
    SerialNumber,
    /// `@`: reset (also ends `SIR`).
    Reset,
}

impl SicsCommand {
    /// The command word without terminator.
    pub fn as_str(self) -> &'static str {
        match self {
            SicsCommand::Stable => "S",
            SicsCommand::Immediate => "SI",
            SicsCommand::ImmediateRepeat => "SIR",
            SicsCommand::Zero => "Z",
            SicsCommand::ZeroImmediate => "ZI",
            SicsCommand::Tare => "T",
            SicsCommand::TareValue => "TA",
            SicsCommand::ClearTare => "TAC",
            SicsCommand::SerialNumber => "I4",
            SicsCommand::Reset => "@",
        }
    }

    /// The bytes to send, e.g. `b"S\r\n"`.
    pub fn encode(self) -> Vec<u8> {
        let mut v = self.as_str().as_bytes().to_vec();
        v.extend_from_slice(b"\r\n");
        v
    }
}

/// The generic command errors.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SicsCommandError {
    /// `ES`: the command was not recognised.
    Syntax,
    /// `ET`: parity error or line too long.
    Transmission,
    /// `EL`: the command cannot be executed.
    Logical,
}

/// One decoded reply line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SicsResponse {
    /// `S S …` / `S D …` (also `SI`, `SIR` lines, which start with `S` too).
    Weight(Weight),
    /// `T S <w> <u>` or `TA A <w> <u>`: the tare now in use.
    Tare {
        /// `"T"` or `"TA"`.
        command: String,
        /// The tare weight.
        tare: Weight,
    },
    /// `<cmd> A [data…]`: done (`Z A`, `TAC A`, `I4 A "serial"`); quotes are stripped from data.
    Ack {
        /// The command echoed.
        command: String,
        /// Remaining fields.
        data: Vec<String>,
    },
    /// `<cmd> I`: not executable now (busy, or no stable weight within the timeout).
    Busy {
        /// The command echoed.
        command: String,
    },
    /// `<cmd> +`: overload (or above the zero/tare range).
    Overload {
        /// The command echoed.
        command: String,
    },
    /// `<cmd> -`: underload (or below the zero/tare range).
    Underload {
        /// The command echoed.
        command: String,
    },
    /// `<cmd> L`: logical error for this command (e.g. bad parameter).
    Rejected {
        /// The command echoed.
        command: String,
    },
    /// `ES`, `ET`, `EL`.
    CommandError(SicsCommandError),
}

impl SicsResponse {
    /// The reading this reply carries, if it is a reply to a weight command. `S I` (no stable
    /// weight in time) counts as motion.
    pub fn reading(&self) -> Option<ScaleReading> {
        let is_weight_cmd = |c: &str| matches!(c, "S" | "SI" | "SIR");
        match self {
            SicsResponse::Weight(w) => Some(ScaleReading::Weight(w.clone())),
            SicsResponse::Busy { command } if is_weight_cmd(command) => {
                Some(ScaleReading::Condition(ScaleCondition::Motion))
            }
            SicsResponse::Overload { command } if is_weight_cmd(command) => {
                Some(ScaleReading::Condition(ScaleCondition::Overload))
            }
            SicsResponse::Underload { command } if is_weight_cmd(command) => {
                Some(ScaleReading::Condition(ScaleCondition::Underload))
            }
            SicsResponse::CommandError(e) => {
                let text = match e {
                    SicsCommandError::Syntax => "MT-SICS syntax error (ES)",
                    SicsCommandError::Transmission => "MT-SICS transmission error (ET)",
                    SicsCommandError::Logical => "MT-SICS logical error (EL)",
                };
                Some(ScaleReading::Condition(ScaleCondition::DeviceError(text.to_owned())))
            }
            _ => None,
        }
    }
}

fn weight_from(tokens: &[&str], stable: bool) -> Result<Weight, ScaleError> {
    let Some((unit_text, number)) = tokens.split_last() else {
        return Err(ScaleError::Malformed { protocol: PROTOCOL, pos: 0, reason: "missing weight" });
    };
    if number.is_empty() {
        return Err(ScaleError::Malformed { protocol: PROTOCOL, pos: 0, reason: "missing unit" });
    }
    let value = weight_value(PROTOCOL, &number.concat())?;
    let unit: WeightUnit = unit(PROTOCOL, unit_text)?;
    Ok(Weight::new(value, unit, stable))
}

/// Decodes one reply line (the trailing CRLF is optional). Bytes are masked to 7 bits.
pub fn parse_line(line: &[u8]) -> Result<SicsResponse, ScaleError> {
    let text = super::ascii(line);
    let text = text.trim_end_matches(['\r', '\n']);
    if text.trim().is_empty() {
        return Err(ScaleError::Empty { protocol: PROTOCOL });
    }
    if let Some(pos) = text.find(|c: char| c.is_ascii_control()) {
        return Err(ScaleError::Malformed { protocol: PROTOCOL, pos, reason: "control character" });
    }
    let tokens: Vec<&str> = text.split(' ').filter(|t| !t.is_empty()).collect();
    let (command, status, rest) = match tokens.as_slice() {
        ["ES"] => return Ok(SicsResponse::CommandError(SicsCommandError::Syntax)),
        ["ET"] => return Ok(SicsResponse::CommandError(SicsCommandError::Transmission)),
        ["EL"] => return Ok(SicsResponse::CommandError(SicsCommandError::Logical)),
        [command, status, rest @ ..] => (*command, *status, rest),
        _ => return Err(ScaleError::Malformed { protocol: PROTOCOL, pos: 0, reason: "no status field" }),
    };
    let cmd = command.to_owned();
    let response = match (command, status) {
        ("S" | "SI" | "SIR", "S") => SicsResponse::Weight(weight_from(rest, true)?),
        ("S" | "SI" | "SIR", "D") => SicsResponse::Weight(weight_from(rest, false)?),
        ("T", "S") | ("TA", "A") if !rest.is_empty() => {
            SicsResponse::Tare { command: cmd, tare: weight_from(rest, true)? }
        }
        (_, "A") => {
            let data = rest.iter().map(|t| t.trim_matches('"').to_owned()).collect();
            SicsResponse::Ack { command: cmd, data }
        }
        (_, "I") => SicsResponse::Busy { command: cmd },
        (_, "+") => SicsResponse::Overload { command: cmd },
        (_, "-") => SicsResponse::Underload { command: cmd },
        (_, "L") => SicsResponse::Rejected { command: cmd },
        _ => {
            let pos = text.find(status).unwrap_or(0);
            return Err(ScaleError::Malformed { protocol: PROTOCOL, pos, reason: "unknown status" });
        }
    };
    Ok(response)
}

/// Formats a weight reply as a balance sends it (`S S      12.345 g\r\n`), for simulators.
pub fn encode_weight_reply(weight: &Weight) -> Vec<u8> {
    let status = if weight.stable { 'S' } else { 'D' };
    format!("S {status} {:>10} {}\r\n", weight.value, weight.unit).into_bytes()
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn stable_weight_vector() {
        let r = parse_line(b"S S      12.345 g\r\n").unwrap();
        assert_eq!(r, SicsResponse::Weight(Weight::new("12.345".into(), WeightUnit::G, true)));
        assert_eq!(r.reading(), Some(ScaleReading::Weight(Weight::new("12.345".into(), WeightUnit::G, true))));
    }

    #[test]
    fn dynamic_weight_vector_is_moving() {
        let r = parse_line(b"S D      12.340 g\r\n").unwrap();
        assert_eq!(r, SicsResponse::Weight(Weight::new("12.340".into(), WeightUnit::G, false)));
    }

    #[test]
    fn overload_vector() {
        let r = parse_line(b"S +\r\n").unwrap();
        assert_eq!(r, SicsResponse::Overload { command: "S".into() });
        assert_eq!(r.reading(), Some(ScaleReading::Condition(ScaleCondition::Overload)));
    }

    #[test]
    fn syntax_error_vector() {
        let r = parse_line(b"ES\r\n").unwrap();
        assert_eq!(r, SicsResponse::CommandError(SicsCommandError::Syntax));
        assert!(matches!(r.reading(), Some(ScaleReading::Condition(ScaleCondition::DeviceError(_)))));
        assert_eq!(parse_line(b"ET\r\n").unwrap(), SicsResponse::CommandError(SicsCommandError::Transmission));
        assert_eq!(parse_line(b"EL\r\n").unwrap(), SicsResponse::CommandError(SicsCommandError::Logical));
    }

    #[test]
    fn underload_and_busy_replies() {
        assert_eq!(parse_line(b"S -\r\n").unwrap().reading(), Some(ScaleReading::Condition(ScaleCondition::Underload)));
        assert_eq!(parse_line(b"S I\r\n").unwrap().reading(), Some(ScaleReading::Condition(ScaleCondition::Motion)));
    }

    #[test]
    fn immediate_and_repeat_replies_and_negative_weights() {
        let r = parse_line(b"SI D     -0.005 kg").unwrap();
        assert_eq!(r, SicsResponse::Weight(Weight::new("-0.005".into(), WeightUnit::Kg, false)));
        let r = parse_line(b"SIR S   1.5 lb\r\n").unwrap();
        assert_eq!(r, SicsResponse::Weight(Weight::new("1.5".into(), WeightUnit::Lb, true)));
        // A sign separated from its digits by padding.
        let r = parse_line(b"S S -    12.345 g\r\n").unwrap();
        assert_eq!(r, SicsResponse::Weight(Weight::new("-12.345".into(), WeightUnit::G, true)));
    }

    #[test]
    fn zero_tare_and_identity_replies() {
        assert_eq!(parse_line(b"Z A\r\n").unwrap(), SicsResponse::Ack { command: "Z".into(), data: vec![] });
        assert_eq!(parse_line(b"Z I\r\n").unwrap(), SicsResponse::Busy { command: "Z".into() });
        assert_eq!(parse_line(b"Z +\r\n").unwrap(), SicsResponse::Overload { command: "Z".into() });
        assert_eq!(parse_line(b"Z -\r\n").unwrap(), SicsResponse::Underload { command: "Z".into() });
        assert_eq!(parse_line(b"Z +\r\n").unwrap().reading(), None);
        assert_eq!(
            parse_line(b"T S     100.00 g\r\n").unwrap(),
            SicsResponse::Tare { command: "T".into(), tare: Weight::new("100.00".into(), WeightUnit::G, true) }
        );
        assert_eq!(
            parse_line(b"TA A     100.00 g\r\n").unwrap(),
            SicsResponse::Tare { command: "TA".into(), tare: Weight::new("100.00".into(), WeightUnit::G, true) }
        );
        assert_eq!(parse_line(b"TAC A\r\n").unwrap(), SicsResponse::Ack { command: "TAC".into(), data: vec![] });
        assert_eq!(
            parse_line(b"I4 A \"0123456789\"\r\n").unwrap(),
            SicsResponse::Ack { command: "I4".into(), data: vec!["0123456789".into()] }
        );
    }

    #[test]
    fn malformed_lines_are_errors() {
        assert_eq!(parse_line(b"\r\n"), Err(ScaleError::Empty { protocol: PROTOCOL }));
        assert!(matches!(parse_line(b"S S abc g"), Err(ScaleError::InvalidWeight { .. })));
        assert!(matches!(parse_line(b"S S 1.0 furlong"), Err(ScaleError::UnknownUnit { .. })));
        assert!(matches!(parse_line(b"S S 1.0"), Err(ScaleError::Malformed { .. })));
        assert!(matches!(parse_line(b"S Q"), Err(ScaleError::Malformed { pos: 2, .. })));
        assert!(matches!(parse_line(b"S"), Err(ScaleError::Malformed { .. })));
    }

    #[test]
    fn parity_bit_is_ignored() {
        let line: Vec<u8> = b"S S 1.000 kg\r\n".iter().map(|b| b | 0x80).collect();
        assert_eq!(parse_line(&line).unwrap(), SicsResponse::Weight(Weight::new("1.000".into(), WeightUnit::Kg, true)));
    }

    #[test]
    fn commands_encode_with_crlf() {
        assert_eq!(SicsCommand::Stable.encode(), b"S\r\n");
        assert_eq!(SicsCommand::Immediate.encode(), b"SI\r\n");
        assert_eq!(SicsCommand::ImmediateRepeat.encode(), b"SIR\r\n");
        assert_eq!(SicsCommand::Zero.encode(), b"Z\r\n");
        assert_eq!(SicsCommand::Tare.encode(), b"T\r\n");
        assert_eq!(SicsCommand::ClearTare.encode(), b"TAC\r\n");
        assert_eq!(SicsCommand::SerialNumber.encode(), b"I4\r\n");
        assert_eq!(SicsCommand::Reset.encode(), b"@\r\n");
    }

    #[test]
    fn encoded_reply_matches_the_vector() {
        assert_eq!(encode_weight_reply(&Weight::new("12.345".into(), WeightUnit::G, true)), b"S S     12.345 g\r\n");
    }

    proptest! {
        #[test]
        fn arbitrary_bytes_never_panic(line in prop::collection::vec(any::<u8>(), 0..40)) {
            let _ = parse_line(&line).map(|r| r.reading());
        }

        #[test]
        fn weight_reply_round_trips(
            v in any::<i32>(),
            scale in 0usize..5,
            unit in prop::sample::select(vec![WeightUnit::Kg, WeightUnit::G, WeightUnit::Lb, WeightUnit::Oz, WeightUnit::T]),
            stable in any::<bool>(),
        ) {
            let value = crate::decimal::from_scaled(&v.unsigned_abs().to_string(), scale, v < 0).unwrap();
            let w = Weight::new(value, unit, stable);
            prop_assert_eq!(parse_line(&encode_weight_reply(&w)).unwrap(), SicsResponse::Weight(w));
        }
    }
}
