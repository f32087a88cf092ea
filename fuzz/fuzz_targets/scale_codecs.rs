//! Every scale protocol decoder in `firmware_bridge::scale`: MT-SICS lines, Toledo continuous
//! frames (whole-frame `decode_frame` and the streaming `ContinuousDecoder`), Toledo 8217
//! replies, SMA, NCI/Weigh-Tronix, CAS, and the configurable `pattern` protocol, each followed by
//! `reading()` where the reply type has one.
//!
//! Input layout: byte 0 picks the Toledo 8217 unit mode (bits 0-2), the streaming chunk size
//! (bits 3-5) and, with bit 7 set, switches the pattern step to "compile the text up to the first
//! NUL as a template, match the rest" (a template comes from the configuration file). The rest is
//! given to every decoder.
#![no_main]

use std::sync::OnceLock;

use firmware_bridge::scale::pattern::{Pattern, PatternConfig};
use firmware_bridge::scale::toledo_8217::UnitMode;
use firmware_bridge::scale::toledo_continuous::{ContinuousDecoder, FRAME_LEN, decode_frame};
use firmware_bridge::scale::{cas, mt_sics, nci, sma, toledo_8217};
use firmware_bridge::WeightUnit;
use libfuzzer_sys::fuzz_target;

/// Templates from the pattern module's documentation and tests, compiled once.
fn patterns() -> &'static [Pattern] {
    static PATTERNS: OnceLock<Vec<Pattern>> = OnceLock::new();
    PATTERNS.get_or_init(|| {
        [
            ("{weight}kg", Some(WeightUnit::Kg), true),
            ("S {stable:S}{_}{weight} {unit}", None, false),
            ("{skip}{net:N}{any}{_}{weight}{_}{unit}\\r", Some(WeightUnit::Lb), false),
            ("\\x02{motion:M}{weight}\\{{unit}\\}", None, true),
        ]
        .into_iter()
        .map(|(template, default_unit, stable_by_default)| {
            Pattern::compile(&PatternConfig { template: template.into(), default_unit, stable_by_default })
                .expect("the fixed templates compile")
        })
        .collect()
    })
}

const UNIT_MODES: [UnitMode; 6] = [
    UnitMode::Infer,
    UnitMode::Fixed(WeightUnit::Kg),
    UnitMode::Fixed(WeightUnit::G),
    UnitMode::Fixed(WeightUnit::Lb),
    UnitMode::Fixed(WeightUnit::Oz),
    UnitMode::Fixed(WeightUnit::T),
];

fuzz_target!(|data: &[u8]| {
    let Some((&selector, line)) = data.split_first() else { return };

    if let Ok(reply) = mt_sics::parse_line(line) {
        let _ = reply.reading();
    }
    if let Ok(reply) = toledo_8217::parse_reply(line, UNIT_MODES[usize::from(selector & 7) % UNIT_MODES.len()]) {
        let _ = reply.reading();
    }
    let _ = toledo_8217::is_probe_reply(line, "hello");
    if let Ok(reply) = sma::parse_reply(line) {
        let _ = reply.reading();
    }
    if let Ok(reply) = nci::parse_reply(line) {
        let _ = reply.reading();
    }
    if let Ok(reply) = cas::parse_line(line) {
        let _ = reply.reading();
    }

    // Toledo continuous: every 18-byte window as a frame, then the stream in chunks.
    for window in line.windows(FRAME_LEN).take(64) {
        if let Ok(frame) = decode_frame(window) {
            let _ = frame.reading();
        }
    }
    let _ = decode_frame(line);
    let chunk = usize::from((selector >> 3) & 7) * 5 + 1;
    let mut decoder = ContinuousDecoder::new();
    for part in line.chunks(chunk) {
        for frame in decoder.push(part).into_iter().flatten() {
            let _ = frame.reading();
        }
    }
    while let Some(frame) = decoder.next_frame() {
        if let Ok(frame) = frame {
            let _ = frame.reading();
        }
    }
    let _ = (decoder.discarded_bytes(), decoder.bad_frames());

    // Pattern protocol.
    if selector & 0x80 == 0 {
        for pattern in patterns() {
            let _ = pattern.parse(line);
        }
    } else {
        let (template, frame) = match line.iter().position(|&b| b == 0) {
            Some(nul) => (&line[..nul], &line[nul + 1..]),
            None => (line, &b""[..]),
        };
        if let Ok(template) = std::str::from_utf8(template) {
            let unit = [None, Some(WeightUnit::Kg)][usize::from(selector & 1)];
            let config = PatternConfig { template: template.into(), default_unit: unit, stable_by_default: selector & 2 != 0 };
            if let Ok(pattern) = Pattern::compile(&config) {
                let _ = pattern.parse(frame);
            }
        }
    }
});
