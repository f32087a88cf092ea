//! Serial barcode scanners: the byte stream → frames (`firmware_bridge::scanner::Framer`) and
//! each frame → the `scan` payload (`firmware_bridge::scanner::decode_scan`: AIM id, EAN/UPC
//! check digits, GS1 element strings and Digital Links).
//!
//! Input layout: byte 0 picks the framer configuration, byte 1 the chunk size and clock step;
//! the rest is the byte stream. The whole stream is also decoded as one scan, as a scanner with
//! timeout framing would deliver it.
//!
//! Invariants checked besides "no panic" (the framing module's documented contract): frames are
//! never empty and never longer than `max_frame_len`, and `stats().frames` counts exactly the
//! frames emitted.
#![no_main]

use firmware_bridge::scanner::{Framer, FramerConfig, ScanOptions, Suffix, decode_scan};
use libfuzzer_sys::fuzz_target;

fn config(selector: u8) -> FramerConfig {
    let mut config = match selector % 6 {
        0 => FramerConfig::line(),
        1 => FramerConfig::timeout(50),
        2 => FramerConfig {
            prefix: Some(vec![0x02]),
            suffix: Some(Suffix::Sequence(vec![0x03])),
            inter_char_timeout_ms: Some(100),
            max_frame_len: FramerConfig::DEFAULT_MAX_FRAME_LEN,
        },
        3 => FramerConfig {
            prefix: Some(b"]]".to_vec()),
            suffix: None,
            inter_char_timeout_ms: None,
            max_frame_len: FramerConfig::DEFAULT_MAX_FRAME_LEN,
        },
        4 => FramerConfig {
            prefix: None,
            suffix: Some(Suffix::Sequence(b"\r\n".to_vec())),
            inter_char_timeout_ms: Some(30),
            max_frame_len: FramerConfig::DEFAULT_MAX_FRAME_LEN,
        },
        _ => FramerConfig {
            prefix: Some(b"\x1b[".to_vec()),
            suffix: Some(Suffix::AnyOf(b"\r\n\t".to_vec())),
            inter_char_timeout_ms: Some(20),
            max_frame_len: FramerConfig::DEFAULT_MAX_FRAME_LEN,
        },
    };
    // Small limits too, so that overflow and skipping are reached with short inputs.
    if selector & 0x80 != 0 {
        config.max_frame_len = usize::from((selector >> 3) & 0x0F) + 1;
    }
    config
}

fuzz_target!(|data: &[u8]| {
    let opts = ScanOptions::new(2026);
    let _ = decode_scan(data, &opts);

    let [selector, step, stream @ ..] = data else { return };
    let config = config(*selector);
    let max = config.max_frame_len;
    let mut framer = Framer::new(config).expect("the fuzz configurations are valid");
    let chunk = usize::from(step & 0x0F) + 1;
    let tick = u64::from(step >> 4) * 10;
    let mut now = 0u64;
    let mut frames = Vec::new();
    for part in stream.chunks(chunk) {
        frames.extend(framer.push(part, now));
        now += tick;
        if let Some(deadline) = framer.deadline() {
            if now >= deadline {
                frames.extend(framer.poll(now));
            }
        }
    }
    // End of input: let every timeout pass.
    if let Some(deadline) = framer.deadline() {
        frames.extend(framer.poll(deadline.saturating_add(1)));
    }
    assert_eq!(framer.stats().frames, frames.len() as u64, "stats().frames disagrees with the frames emitted");
    for frame in &frames {
        let bytes = &frame.bytes;
        assert!(!bytes.is_empty(), "the framer emitted an empty frame");
        assert!(bytes.len() <= max, "the framer emitted {} bytes with max_frame_len {max}", bytes.len());
        let _ = decode_scan(bytes, &opts);
    }
});
