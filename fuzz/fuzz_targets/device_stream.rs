//! A device's byte stream as the serial thread sees it (`firmware_bridge::device`): the per-
//! protocol scale framing of `ScaleStream` (STX..CR, LF..CR, up to ETX, lines, 18-byte frames)
//! and the scanner framer plus scan decoder, fed in arbitrary pieces with advancing timestamps.
//!
//! Beyond "never panics", it checks that framing does not depend on how `read` split the bytes:
//! for the delimiter-framed scale protocols, the readings from one piece equal the readings from
//! many pieces.
//!
//! Input layout: byte 0 picks the protocol (bits 0-2; 7 = scanner) and the piece size (bits
//! 3-6); the rest is the stream.
#![no_main]

use firmware_bridge::device::{DeviceDecoder, DeviceOutput};
use firmware_bridge::scale::stream::ScaleProtocol;
use firmware_bridge::scale::toledo_8217::UnitMode;
use firmware_bridge::scanner::{FramerConfig, ScanOptions};
use libfuzzer_sys::fuzz_target;

fn protocol(selector: u8) -> Option<ScaleProtocol> {
    Some(match selector & 7 {
        0 => ScaleProtocol::MtSics,
        1 => ScaleProtocol::ToledoContinuous,
        2 => ScaleProtocol::Toledo8217(UnitMode::Infer),
        3 => ScaleProtocol::Sma,
        4 => ScaleProtocol::Nci,
        5 => ScaleProtocol::Cas,
        6 => ScaleProtocol::MtSics,
        _ => return None,
    })
}

fn readings(outputs: Vec<DeviceOutput>) -> Vec<DeviceOutput> {
    outputs.into_iter().filter(|o| matches!(o, DeviceOutput::Reading(_))).collect()
}

fuzz_target!(|data: &[u8]| {
    let Some((&selector, stream)) = data.split_first() else { return };
    let piece = usize::from((selector >> 3) & 15) + 1;
    match protocol(selector) {
        Some(p) => {
            let chunk_independent = !matches!(p, ScaleProtocol::ToledoContinuous);
            let mut whole = DeviceDecoder::scale(p.clone());
            let at_once = readings(whole.push(stream, 0));
            let mut pieces = DeviceDecoder::scale(p);
            let mut split = Vec::new();
            for (i, part) in stream.chunks(piece).enumerate() {
                split.extend(readings(pieces.push(part, i as u64)));
            }
            if chunk_independent {
                assert_eq!(at_once, split, "framing depends on how the bytes were split");
            }
        }
        None => {
            let config = if selector & 0x80 == 0 { FramerConfig::line() } else { FramerConfig::timeout(30) };
            let Ok(mut scanner) = DeviceDecoder::scanner(config, ScanOptions::new(2026)) else { return };
            let mut now = 0;
            for part in stream.chunks(piece) {
                now += u64::from(part[0] % 64);
                let _ = scanner.push(part, now);
                if let Some(deadline) = scanner.deadline() {
                    if deadline <= now + 10 {
                        let _ = scanner.poll(deadline);
                    }
                }
            }
            let _ = scanner.poll(u64::MAX / 2);
            scanner.reset();
        }
    }
});
