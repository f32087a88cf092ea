//! A configurable protocol for scales no built-in decoder covers (Adam and other model-specific
//! formats). There is no regex engine in the build, so a frame is described by a small
//! *template*: literal text with placeholders, matched against the whole frame (a trailing CR/LF
//! is stripped first).
//!
//! Placeholders:
//!
//! | placeholder       | matches                                                             |
//! | ----------------- | ------------------------------------------------------------------- |
//! | `{weight}`        | spaces, an optional `+`/`-`, spaces, digits with at most one `.` (required, once) |
//! | `{unit}`          | one or more ASCII letters: `kg`, `g`, `lb`, `oz`, `t` (any case)     |
//! | `{stable:CHARS}`  | one byte; the weight is stable when it is one of CHARS              |
//! | `{motion:CHARS}`  | one byte; the weight is moving when it is one of CHARS              |
//! | `{net:CHARS}`     | one byte; the weight is net when it is one of CHARS, gross otherwise |
//! | `{any}`           | exactly one byte, ignored                                           |
//! | `{_}`             | zero or more spaces                                                 |
//! | `{skip}`          | any bytes (as few as possible), ignored                             |
//!
//! Literal text matches itself; `\\`, `\{`, `\}`, `\r`, `\n`, `\t` and `\xHH` are escapes.
//! Without `{unit}` the configured default unit is used; without `{stable}`/`{motion}` the
//! configured default stability. Examples: Adam AZExtra (`\s*([0-9.]+)kg`) is `{weight}kg` with
//! default unit kg (or `{weight}{unit}`);
//! MT-SICS would be `S {stable:S}{_}{weight} {unit}`.
//!
//! Matching backtracks with memoisation, so the cost is bounded by template length × frame length²
//! (frames longer than [`MAX_FRAME`] bytes are rejected).

use std::collections::HashSet;

use thiserror::Error;

use super::{ScaleError, Weight, WeightUnit};

const PROTOCOL: &str = "pattern";
/// Longest frame matched.
pub const MAX_FRAME: usize = 256;

/// A template that cannot be compiled.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum PatternError {
    /// `{` without `}`.
    #[error("pattern: unterminated placeholder at {pos}")]
    Unterminated {
        /// Offset of the `{`.
        pos: usize,
    },
    /// A `}` outside a placeholder.
    #[error("pattern: unexpected '}}' at {pos} (write \\}} for a literal brace)")]
    StrayBrace {
        /// Offset.
        pos: usize,
    },
    /// A placeholder name that is not in the table.
    #[error("pattern: unknown placeholder {{{name}}} at {pos}")]
    UnknownPlaceholder {
        /// Offset of the `{`.
        pos: usize,
        /// The name.
        name: String,
    },
    /// A bad `\` escape.
    #[error("pattern: invalid escape at {pos}")]
    BadEscape {
        /// Offset of the `\`.
        pos: usize,
    },
    /// `{weight}` missing.
    #[error("pattern: the template needs exactly one {{weight}}")]
    MissingWeight,
    /// A placeholder that may appear once appears twice.
    #[error("pattern: {{{name}}} appears more than once")]
    Duplicate {
        /// The name.
        name: &'static str,
    },
    /// Neither `{unit}` nor a default unit.
    #[error("pattern: the template has no {{unit}} and no default unit is configured")]
    NoUnit,
}

/// Configuration of a pattern protocol.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PatternConfig {
    /// The template (see the module documentation).
    pub template: String,
    /// Unit when the template has no `{unit}`.
    pub default_unit: Option<WeightUnit>,
    /// Stability when the template has no `{stable}`/`{motion}` (a scale that only sends stable
    /// weights, like Adam AZExtra, is `true`).
    pub stable_by_default: bool,
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Token {
    Literal(Vec<u8>),
    Weight,
    Unit,
    Stable(Vec<u8>),
    Motion(Vec<u8>),
    Net(Vec<u8>),
    Any,
    Spaces,
    Skip,
}

#[derive(Debug, Clone, Default)]
struct Captures {
    weight: Option<String>,
    unit: Option<String>,
    stable: Option<bool>,
    net: Option<bool>,
}

#[derive(Debug, Clone)]
enum Capture {
    None,
    Weight(String),
    Unit(String),
    Stable(bool),
    Net(bool),
}

/// A compiled template.
#[derive(Debug, Clone)]
pub struct Pattern {
    tokens: Vec<Token>,
    default_unit: Option<WeightUnit>,
    stable_by_default: bool,
}

fn unescape(text: &str, base: usize) -> Result<Vec<u8>, PatternError> {
    let b = text.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] != b'\\' {
            out.push(b[i]);
            i += 1;
            continue;
        }
        let pos = base + i;
        match b.get(i + 1) {
            Some(b'\\') => out.push(b'\\'),
            Some(b'{') => out.push(b'{'),
            Some(b'}') => out.push(b'}'),
            Some(b'r') => out.push(b'\r'),
            Some(b'n') => out.push(b'\n'),
            Some(b't') => out.push(b'\t'),
            Some(b'x') => {
                let hex = text.get(i + 2..i + 4).ok_or(PatternError::BadEscape { pos })?;
                out.push(u8::from_str_radix(hex, 16).map_err(|_| PatternError::BadEscape { pos })?);
                i += 4;
                continue;
            }
            _ => return Err(PatternError::BadEscape { pos }),
        }
        i += 2;
    }
    Ok(out)
}

/// Finds the next unescaped `{` or `}` at or after `from`.
fn next_brace(b: &[u8], from: usize) -> Option<usize> {
    let mut i = from;
    while i < b.len() {
        match b[i] {
            b'\\' => i += 2,
            b'{' | b'}' => return Some(i),
            _ => i += 1,
        }
    }
    None
}

impl Pattern {
    /// Compiles a configuration.
    pub fn compile(config: &PatternConfig) -> Result<Pattern, PatternError> {
        let t = config.template.as_str();
        let b = t.as_bytes();
        let mut tokens = Vec::new();
        let mut i = 0;
        while i < b.len() {
            let brace = next_brace(b, i).unwrap_or(b.len());
            if brace > i {
                tokens.push(Token::Literal(unescape(&t[i..brace], i)?));
            }
            if brace >= b.len() {
                break;
            }
            if b[brace] == b'}' {
                return Err(PatternError::StrayBrace { pos: brace });
            }
            let close = match next_brace(b, brace + 1) {
                Some(c) if b[c] == b'}' => c,
                _ => return Err(PatternError::Unterminated { pos: brace }),
            };
            let inner = &t[brace + 1..close];
            let (name, arg) = match inner.split_once(':') {
                Some((n, a)) => (n, Some(unescape(a, brace + 1 + n.len() + 1)?)),
                None => (inner, None),
            };
            let token = match (name, arg) {
                ("weight", None) => Token::Weight,
                ("unit", None) => Token::Unit,
                ("any", None) => Token::Any,
                ("_", None) => Token::Spaces,
                ("skip", None) => Token::Skip,
                ("stable", Some(a)) if !a.is_empty() => Token::Stable(a),
                ("motion", Some(a)) if !a.is_empty() => Token::Motion(a),
                ("net", Some(a)) if !a.is_empty() => Token::Net(a),
                _ => return Err(PatternError::UnknownPlaceholder { pos: brace, name: inner.to_owned() }),
            };
            tokens.push(token);
            i = close + 1;
        }
        let count = |f: fn(&Token) -> bool| tokens.iter().filter(|t| f(t)).count();
        match count(|t| matches!(t, Token::Weight)) {
            0 => return Err(PatternError::MissingWeight),
            1 => {}
            _ => return Err(PatternError::Duplicate { name: "weight" }),
        }
        if count(|t| matches!(t, Token::Unit)) > 1 {
            return Err(PatternError::Duplicate { name: "unit" });
        }
        if count(|t| matches!(t, Token::Stable(_) | Token::Motion(_))) > 1 {
            return Err(PatternError::Duplicate { name: "stable/motion" });
        }
        if count(|t| matches!(t, Token::Net(_))) > 1 {
            return Err(PatternError::Duplicate { name: "net" });
        }
        if count(|t| matches!(t, Token::Unit)) == 0 && config.default_unit.is_none() {
            return Err(PatternError::NoUnit);
        }
        Ok(Pattern { tokens, default_unit: config.default_unit, stable_by_default: config.stable_by_default })
    }

    /// Matches one frame and returns its weight.
    pub fn parse(&self, frame: &[u8]) -> Result<Weight, ScaleError> {
        let end = frame.iter().rposition(|&b| b != b'\r' && b != b'\n').map_or(0, |i| i + 1);
        let frame = &frame[..end];
        if frame.is_empty() {
            return Err(ScaleError::Empty { protocol: PROTOCOL });
        }
        if frame.len() > MAX_FRAME {
            return Err(ScaleError::Malformed { protocol: PROTOCOL, pos: MAX_FRAME, reason: "frame too long" });
        }
        let mut failed = HashSet::new();
        let caps = self.match_from(0, 0, frame, &mut failed).ok_or(ScaleError::Malformed {
            protocol: PROTOCOL,
            pos: 0,
            reason: "frame does not match the pattern",
        })?;
        let value = caps.weight.ok_or(ScaleError::Malformed { protocol: PROTOCOL, pos: 0, reason: "no weight" })?;
        let unit = match (caps.unit, self.default_unit) {
            (Some(u), _) => super::unit(PROTOCOL, &u)?,
            (None, Some(u)) => u,
            (None, None) => return Err(ScaleError::UnknownUnit { protocol: PROTOCOL, unit: String::new() }),
        };
        let w = Weight::new(value, unit, caps.stable.unwrap_or(self.stable_by_default));
        Ok(match caps.net {
            Some(net) => w.with_net(net),
            None => w,
        })
    }

    fn match_from(
        &self,
        ti: usize,
        pos: usize,
        input: &[u8],
        failed: &mut HashSet<(usize, usize)>,
    ) -> Option<Captures> {
        let Some(token) = self.tokens.get(ti) else {
            return (pos == input.len()).then(Captures::default);
        };
        if failed.contains(&(ti, pos)) {
            return None;
        }
        for (end, cap) in candidates(token, input, pos) {
            if let Some(mut caps) = self.match_from(ti + 1, end, input, failed) {
                match cap {
                    Capture::None => {}
                    Capture::Weight(w) => caps.weight = Some(w),
                    Capture::Unit(u) => caps.unit = Some(u),
                    Capture::Stable(s) => caps.stable = Some(s),
                    Capture::Net(n) => caps.net = Some(n),
                }
                return Some(caps);
            }
        }
        failed.insert((ti, pos));
        None
    }
}

fn candidates(token: &Token, input: &[u8], pos: usize) -> Vec<(usize, Capture)> {
    let rest = &input[pos..];
    let one = |f: &dyn Fn(u8) -> Capture| rest.first().map(|&b| vec![(pos + 1, f(b))]).unwrap_or_default();
    match token {
        Token::Literal(l) => {
            if rest.starts_with(l) {
                vec![(pos + l.len(), Capture::None)]
            } else {
                vec![]
            }
        }
        Token::Any => one(&|_| Capture::None),
        Token::Stable(set) => one(&|b| Capture::Stable(set.contains(&b))),
        Token::Motion(set) => one(&|b| Capture::Stable(!set.contains(&b))),
        Token::Net(set) => one(&|b| Capture::Net(set.contains(&b))),
        Token::Spaces => {
            let n = rest.iter().take_while(|&&b| b == b' ').count();
            (0..=n).rev().map(|k| (pos + k, Capture::None)).collect()
        }
        Token::Skip => (pos..=input.len()).map(|e| (e, Capture::None)).collect(),
        Token::Unit => {
            let n = rest.iter().take_while(|b| b.is_ascii_alphabetic()).count();
            (1..=n).rev().map(|k| (pos + k, Capture::Unit(super::ascii(&rest[..k])))).collect()
        }
        Token::Weight => {
            let mut i = rest.iter().take_while(|&&b| b == b' ').count();
            if matches!(rest.get(i), Some(b'+' | b'-')) {
                i += 1;
                i += rest[i..].iter().take_while(|&&b| b == b' ').count();
            }
            let body = rest[i..].iter().take_while(|b| b.is_ascii_digit() || **b == b'.').count();
            let mut out = Vec::new();
            for k in (1..=body).rev() {
                let text = super::ascii(&rest[..i + k]);
                if let Some(v) = crate::decimal::normalize(&text) {
                    out.push((pos + i + k, Capture::Weight(v)));
                }
            }
            out
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn pattern(template: &str, default_unit: Option<WeightUnit>, stable: bool) -> Pattern {
        Pattern::compile(&PatternConfig { template: template.into(), default_unit, stable_by_default: stable }).unwrap()
    }

    #[test]
    fn adam_azextra_weight() {
        let p = pattern("{weight}kg", Some(WeightUnit::Kg), true);
        let w = p.parse(b"   12.345kg\r\n").unwrap();
        assert_eq!(w, Weight::new("12.345".into(), WeightUnit::Kg, true));
        let p = pattern("{weight}{unit}", None, true);
        assert_eq!(p.parse(b"  0.5kg").unwrap().unit, WeightUnit::Kg);
    }

    #[test]
    fn mt_sics_like_template_with_stability_flag() {
        let p = pattern("S {stable:S}{_}{weight} {unit}", None, false);
        assert_eq!(p.parse(b"S S      12.345 g\r\n").unwrap(), Weight::new("12.345".into(), WeightUnit::G, true));
        assert_eq!(p.parse(b"S D      12.340 g").unwrap(), Weight::new("12.340".into(), WeightUnit::G, false));
        assert!(p.parse(b"S +").is_err());
    }

    #[test]
    fn motion_net_any_skip_and_escapes() {
        let p = pattern("\\x02{skip},{net:N}{motion:M}{any}{weight}{_}\\{{unit}\\}", None, true);
        let w = p.parse(b"\x02ID42,NM?  -1.5 {lb}").unwrap();
        assert_eq!((w.value.as_str(), w.unit, w.stable, w.net), ("-1.5", WeightUnit::Lb, false, Some(true)));
        let w = p.parse(b"\x02,G 0003 {kg}").unwrap();
        assert_eq!((w.value.as_str(), w.stable, w.net), ("3", true, Some(false)));
    }

    #[test]
    fn backtracking_splits_weight_and_following_digits() {
        // The weight must leave one digit for the literal `0`.
        let p = pattern("{weight}0kg", Some(WeightUnit::Kg), true);
        assert_eq!(p.parse(b"12.50kg").unwrap().value, "12.5");
    }

    #[test]
    fn non_matching_frames_and_bad_units_are_errors() {
        let p = pattern("{weight}{unit}", None, true);
        assert!(matches!(p.parse(b"abc"), Err(ScaleError::Malformed { .. })));
        assert!(matches!(p.parse(b"1.0xy"), Err(ScaleError::UnknownUnit { .. })));
        assert!(matches!(p.parse(b"\r\n"), Err(ScaleError::Empty { .. })));
        assert!(matches!(p.parse(&[b'1'; 300]), Err(ScaleError::Malformed { .. })));
    }

    #[test]
    fn template_errors_are_reported() {
        let compile = |t: &str, u: Option<WeightUnit>| {
            Pattern::compile(&PatternConfig { template: t.into(), default_unit: u, stable_by_default: true })
        };
        assert_eq!(compile("kg", Some(WeightUnit::Kg)).unwrap_err(), PatternError::MissingWeight);
        assert_eq!(compile("{weight}", None).unwrap_err(), PatternError::NoUnit);
        assert_eq!(
            compile("{weight}{weight}", Some(WeightUnit::Kg)).unwrap_err(),
            PatternError::Duplicate { name: "weight" }
        );
        assert_eq!(compile("{weight", Some(WeightUnit::Kg)).unwrap_err(), PatternError::Unterminated { pos: 0 });
        assert_eq!(compile("{weight}}", Some(WeightUnit::Kg)).unwrap_err(), PatternError::StrayBrace { pos: 8 });
        assert!(matches!(
            compile("{wait}", Some(WeightUnit::Kg)),
            Err(PatternError::UnknownPlaceholder { pos: 0, .. })
        ));
        assert!(matches!(
            compile("{stable:}{weight}", Some(WeightUnit::Kg)),
            Err(PatternError::UnknownPlaceholder { .. })
        ));
        assert_eq!(compile("\\q{weight}", Some(WeightUnit::Kg)).unwrap_err(), PatternError::BadEscape { pos: 0 });
        assert_eq!(compile("\\x4{weight}", Some(WeightUnit::Kg)).unwrap_err(), PatternError::BadEscape { pos: 0 });
    }

    proptest! {
        #[test]
        fn arbitrary_templates_never_panic(t in "[{}a-z:_\\\\x0-9 ]{0,30}") {
            let _ = Pattern::compile(&PatternConfig { template: t, default_unit: Some(WeightUnit::Kg), stable_by_default: true });
        }

        #[test]
        fn arbitrary_unicode_templates_never_panic(t in "(\\PC|[{}:\\\\])*") {
            if let Ok(p) = Pattern::compile(&PatternConfig { template: t, default_unit: Some(WeightUnit::Kg), stable_by_default: true }) {
                let _ = p.parse("é1.5 kg".as_bytes());
            }
        }

        #[test]
        fn arbitrary_frames_never_panic(frame in prop::collection::vec(any::<u8>(), 0..80)) {
            let p = pattern("{skip}{_}{weight}{_}{unit}{skip}{stable:S}", None, true);
            let _ = p.parse(&frame);
        }

        #[test]
        fn formatted_weights_round_trip(v in any::<i32>(), places in 0usize..4, pad in 0usize..5) {
            let value = crate::decimal::from_scaled(&v.unsigned_abs().to_string(), places, v < 0).unwrap();
            let p = pattern("W:{weight} {unit}", None, true);
            let frame = format!("W:{}{value} kg\r\n", " ".repeat(pad));
            prop_assert_eq!(p.parse(frame.as_bytes()).unwrap().value, value);
        }
    }
}
