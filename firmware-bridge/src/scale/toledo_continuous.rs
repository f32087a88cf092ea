//! Toledo continuous output (8142 style): 18-byte frames
//! `<STX> A B C wwwwww tttttt <CR> <checksum>` sent over and over, decoded by a streaming
//! [`ContinuousDecoder`] that resynchronises on the next STX after truncated or corrupt frames.
//!
//! - Weight and tare: six digits each, no point, no sign; status A bits 0–2 place the decimal
//!   point (0 = ×100, 1 = ×10, 2 = ×1, 3 = X.X … 7 = X.XXXXX).
//! - Status B: bit0 net, bit1 negative, bit2 out of range, bit3 motion, bit4 kg (1) / lb (0).
//!   Status C bits 0–2: unit override (1 g, 2 t, 3 oz; 0 = per B bit4).
//! - Checksum: the 7-bit sum of all 18 bytes is 0.
//! - The parity bit (7E1 read as 8N1) is masked off every byte; "always 1/0" bits are not checked
//!   because real scales differ from the manuals.
//! - Out of range is reported as underload when the negative bit is set, overload otherwise.

use super::{ScaleCondition, ScaleError, ScaleReading, Weight, WeightUnit};
use crate::decimal;

const PROTOCOL: &str = "Toledo continuous";
/// Frame length in bytes.
pub const FRAME_LEN: usize = 18;
const STX: u8 = 0x02;
const CR: u8 = 0x0D;

/// The decoded status bytes and fields of one frame.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ContinuousFrame {
    /// Displayed weight (net when `net`), decimal string, signed.
    pub weight: String,
    /// Tare, decimal string.
    pub tare: String,
    /// Unit.
    pub unit: WeightUnit,
    /// Net weight (a tare is in use).
    pub net: bool,
    /// Motion.
    pub motion: bool,
    /// Over capacity or under zero.
    pub out_of_range: bool,
    /// Status B bit 6: not zeroed since power-up.
    pub not_zeroed: bool,
    /// Status C bit 3: print request.
    pub print_request: bool,
}

impl ContinuousFrame {
    /// The common reading.
    pub fn reading(&self) -> ScaleReading {
        if self.out_of_range {
            let negative = self.weight.starts_with('-');
            return ScaleReading::Condition(if negative {
                ScaleCondition::Underload
            } else {
                ScaleCondition::Overload
            });
        }
        let w = Weight {
            tare: if self.net { Some(self.tare.clone()) } else { None },
            ..Weight::new(self.weight.clone(), self.unit, !self.motion)
        };
        ScaleReading::Weight(w.with_net(self.net))
    }
}

fn decimals(status_a: u8) -> (usize, usize) {
    // (decimals, zeros appended)
    match status_a & 0x07 {
        0 => (0, 2),
        1 => (0, 1),
        2 => (0, 0),
        n => (usize::from(n - 2), 0),
    }
}

fn field(digits: &[u8], status_a: u8, negative: bool) -> Result<String, ScaleError> {
    if let Some(i) = digits.iter().position(|b| !b.is_ascii_digit()) {
        return Err(ScaleError::Malformed { protocol: PROTOCOL, pos: i, reason: "non-digit in weight or tare" });
    }
    let mut text: String = digits.iter().map(|&b| char::from(b)).collect();
    let (places, zeros) = decimals(status_a);
    text.push_str(&"0".repeat(zeros));
    decimal::from_scaled(&text, places, negative)
        .ok_or_else(|| ScaleError::InvalidWeight { protocol: PROTOCOL, text: text.clone() })
}

/// Decodes one complete 18-byte frame (parity bits allowed).
pub fn decode_frame(frame: &[u8]) -> Result<ContinuousFrame, ScaleError> {
    if frame.is_empty() {
        return Err(ScaleError::Empty { protocol: PROTOCOL });
    }
    if frame.len() != FRAME_LEN {
        return Err(ScaleError::Malformed {
            protocol: PROTOCOL,
            pos: frame.len().min(FRAME_LEN),
            reason: "not 18 bytes",
        });
    }
    let f = super::mask7(frame);
    if f[0] != STX {
        return Err(ScaleError::Malformed { protocol: PROTOCOL, pos: 0, reason: "no STX" });
    }
    if f[16] != CR {
        return Err(ScaleError::Malformed { protocol: PROTOCOL, pos: 16, reason: "no CR" });
    }
    let sum = f.iter().fold(0u8, |acc, &b| acc.wrapping_add(b)) & 0x7F;
    if sum != 0 {
        return Err(ScaleError::Checksum { protocol: PROTOCOL, sum });
    }
    let (a, b, c) = (f[1], f[2], f[3]);
    let negative = b & 0x02 != 0;
    let unit = match c & 0x07 {
        1 => WeightUnit::G,
        2 => WeightUnit::T,
        3 => WeightUnit::Oz,
        _ if b & 0x10 != 0 => WeightUnit::Kg,
        _ => WeightUnit::Lb,
    };
    Ok(ContinuousFrame {
        weight: field(&f[4..10], a, negative)?,
        tare: field(&f[10..16], a, false)?,
        unit,
        net: b & 0x01 != 0,
        motion: b & 0x08 != 0,
        out_of_range: b & 0x04 != 0,
        not_zeroed: b & 0x40 != 0,
        print_request: c & 0x08 != 0,
    })
}

/// Builds a frame (with checksum, without parity) for simulators. `weight` and `tare` are the
/// six-digit fields; `status` are the A, B, C bytes.
pub fn encode_frame(status: [u8; 3], weight: &[u8; 6], tare: &[u8; 6]) -> [u8; FRAME_LEN] {
    let mut f = [0u8; FRAME_LEN];
    f[0] = STX;
    f[1..4].copy_from_slice(&status);
    f[4..10].copy_from_slice(weight);
    f[10..16].copy_from_slice(tare);
    f[16] = CR;
    let sum = f[..17].iter().fold(0u8, |acc, &b| acc.wrapping_add(b & 0x7F));
    f[17] = sum.wrapping_neg() & 0x7F;
    f
}

/// Streaming decoder: feed bytes as they arrive, take frames out.
#[derive(Debug, Clone, Default)]
pub struct ContinuousDecoder {
    buf: Vec<u8>,
    discarded_bytes: u64,
    bad_frames: u64,
}

impl ContinuousDecoder {
    /// An empty decoder.
    pub fn new() -> Self {
        Self::default()
    }

    /// Appends received bytes.
    pub fn extend(&mut self, bytes: &[u8]) {
        self.buf.extend_from_slice(bytes);
        // Keep the buffer bounded: nothing useful is ever more than one frame behind.
        if self.buf.len() > 4 * FRAME_LEN {
            let cut = self.buf.len() - 2 * FRAME_LEN;
            self.buf.drain(..cut);
            self.discarded_bytes += cut as u64;
        }
    }

    /// Bytes skipped while looking for STX.
    pub fn discarded_bytes(&self) -> u64 {
        self.discarded_bytes
    }

    /// Frames rejected (truncated, bad checksum…).
    pub fn bad_frames(&self) -> u64 {
        self.bad_frames
    }

    /// The next decoded frame or error; `None` when more bytes are needed.
    pub fn next_frame(&mut self) -> Option<Result<ContinuousFrame, ScaleError>> {
        let Some(start) = self.buf.iter().position(|b| b & 0x7F == STX) else {
            self.discarded_bytes += self.buf.len() as u64;
            self.buf.clear();
            return None;
        };
        if start > 0 {
            self.buf.drain(..start);
            self.discarded_bytes += start as u64;
        }
        if self.buf.len() < FRAME_LEN {
            return None;
        }
        match decode_frame(&self.buf[..FRAME_LEN]) {
            Ok(frame) => {
                self.buf.drain(..FRAME_LEN);
                Some(Ok(frame))
            }
            Err(e) => {
                // A truncated or corrupt frame: resynchronise on the next STX after this one.
                self.bad_frames += 1;
                self.buf.drain(..1);
                let next = self.buf.iter().position(|b| b & 0x7F == STX).unwrap_or(self.buf.len());
                self.buf.drain(..next);
                self.discarded_bytes += 1 + next as u64;
                Some(Err(e))
            }
        }
    }

    /// Appends bytes and returns everything decodable now.
    pub fn push(&mut self, bytes: &[u8]) -> Vec<Result<ContinuousFrame, ScaleError>> {
        self.extend(bytes);
        std::iter::from_fn(|| self.next_frame()).collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn hex(s: &str) -> Vec<u8> {
        s.split(' ').map(|h| u8::from_str_radix(h, 16).unwrap()).collect()
    }

    const GROSS_5: &str = "82 AC F0 60 30 30 30 35 30 30 30 30 30 30 30 30 8D 30";
    const MOTION_38: &str = "82 AC 78 60 30 30 33 B8 B4 35 30 30 30 30 30 30 8D 99";
    const NET_NEG: &str = "82 AC F3 60 30 30 30 30 B8 39 30 30 30 36 30 30 8D 1B";
    const NET_367: &str = "82 AC 71 60 30 30 30 33 36 B7 30 30 30 36 30 30 8D 1E";
    const OUT_OF_RANGE: &str = "82 AC 74 60 30 30 B7 30 39 B4 30 30 30 30 30 30 8D 1D";

    fn reading(s: &str) -> ScaleReading {
        decode_frame(&hex(s)).unwrap().reading()
    }

    #[test]
    fn gross_five_kilograms_stable() {
        let w =
            Weight { gross: Some("5.00".into()), net: Some(false), ..Weight::new("5.00".into(), WeightUnit::Kg, true) };
        assert_eq!(reading(GROSS_5), ScaleReading::Weight(w));
    }

    #[test]
    fn weight_in_motion() {
        let ScaleReading::Weight(w) = reading(MOTION_38) else { panic!() };
        assert_eq!((w.value.as_str(), w.unit, w.stable), ("38.45", WeightUnit::Kg, false));
    }

    #[test]
    fn negative_net_with_tare() {
        let ScaleReading::Weight(w) = reading(NET_NEG) else { panic!() };
        assert_eq!(w.value, "-0.89");
        assert_eq!(w.net, Some(true));
        assert_eq!(w.tare.as_deref(), Some("6.00"));
        assert_eq!(w.gross.as_deref(), Some("5.11"));
        assert!(w.stable);
    }

    #[test]
    fn net_with_tare() {
        let ScaleReading::Weight(w) = reading(NET_367) else { panic!() };
        assert_eq!((w.value.as_str(), w.net, w.tare.as_deref()), ("3.67", Some(true), Some("6.00")));
    }

    #[test]
    fn out_of_range_is_a_condition() {
        assert_eq!(reading(OUT_OF_RANGE), ScaleReading::Condition(ScaleCondition::Overload));
        let f = decode_frame(&hex(OUT_OF_RANGE)).unwrap();
        assert!(f.out_of_range);
    }

    #[test]
    fn bad_checksum_and_shape_are_rejected() {
        let mut f = hex(GROSS_5);
        f[17] ^= 0x01;
        assert!(matches!(decode_frame(&f), Err(ScaleError::Checksum { .. })));
        let mut f = hex(GROSS_5);
        f[16] = b'0';
        assert!(matches!(decode_frame(&f), Err(ScaleError::Malformed { pos: 16, .. })));
        assert!(matches!(decode_frame(&hex(GROSS_5)[..11]), Err(ScaleError::Malformed { .. })));
    }

    #[test]
    fn decimal_position_codes() {
        let cases = [(0u8, "50000"), (1, "5000"), (2, "500"), (3, "50.0"), (4, "5.00"), (5, "0.500"), (7, "0.00500")];
        for (code, want) in cases {
            let frame = encode_frame([0x28 | code, 0x30, 0x20], b"000500", b"000000");
            assert_eq!(decode_frame(&frame).unwrap().weight, want, "code {code}");
        }
    }

    #[test]
    fn unit_from_status_b_and_c() {
        let unit = |b: u8, c: u8| decode_frame(&encode_frame([0x2A, b, c], b"000001", b"000000")).unwrap().unit;
        assert_eq!(unit(0x30, 0x20), WeightUnit::Kg);
        assert_eq!(unit(0x20, 0x20), WeightUnit::Lb);
        assert_eq!(unit(0x20, 0x21), WeightUnit::G);
        assert_eq!(unit(0x20, 0x22), WeightUnit::T);
        assert_eq!(unit(0x20, 0x23), WeightUnit::Oz);
    }

    #[test]
    fn encoder_reproduces_the_real_frames_without_parity() {
        let real = hex(GROSS_5);
        let masked: Vec<u8> = real.iter().map(|b| b & 0x7F).collect();
        let built = encode_frame([masked[1], masked[2], masked[3]], b"000500", b"000000");
        assert_eq!(built.to_vec(), masked);
    }

    #[test]
    fn stream_resyncs_after_truncated_frames() {
        // An 11-byte truncated frame, a good frame, a 25-byte run (a good frame followed by
        // 7 bytes of a truncated one), then another good frame.
        let mut stream = hex(GROSS_5)[..11].to_vec();
        stream.extend(hex(MOTION_38));
        stream.extend(hex(NET_367));
        stream.extend(&hex(NET_NEG)[..7]);
        stream.extend(hex(GROSS_5));
        let mut d = ContinuousDecoder::new();
        let results = d.push(&stream);
        let ok: Vec<String> = results.iter().filter_map(|r| r.as_ref().ok()).map(|f| f.weight.clone()).collect();
        assert_eq!(ok, ["38.45", "3.67", "5.00"]);
        assert_eq!(results.iter().filter(|r| r.is_err()).count(), 2);
        assert_eq!(d.bad_frames(), 2);
    }

    #[test]
    fn stream_handles_byte_by_byte_delivery_and_leading_noise() {
        let mut stream = b"\xff\x00noise".to_vec();
        for f in [GROSS_5, MOTION_38, NET_NEG, NET_367, OUT_OF_RANGE] {
            stream.extend(hex(f));
        }
        let mut d = ContinuousDecoder::new();
        let mut frames = Vec::new();
        for b in stream {
            frames.extend(d.push(&[b]));
        }
        assert_eq!(frames.len(), 5);
        assert!(frames.iter().all(Result::is_ok));
        assert_eq!(d.discarded_bytes(), 7);
    }

    proptest! {
        #[test]
        fn arbitrary_bytes_never_panic(chunks in prop::collection::vec(prop::collection::vec(any::<u8>(), 0..40), 0..10)) {
            let mut d = ContinuousDecoder::new();
            for c in chunks {
                for r in d.push(&c) {
                    let _ = r.map(|f| f.reading());
                }
                prop_assert!(d.buf.len() <= 4 * FRAME_LEN);
            }
        }

        #[test]
        fn decode_frame_never_panics(frame in prop::collection::vec(any::<u8>(), 18)) {
            let _ = decode_frame(&frame);
        }

        #[test]
        fn encoded_frames_round_trip(w in 0u32..1_000_000, t in 0u32..1_000_000, a in 0u8..8, b in 0u8..0x80, c in 0u8..8) {
            let weight = format!("{w:06}");
            let tare = format!("{t:06}");
            let wb: [u8; 6] = weight.as_bytes().try_into().unwrap();
            let tb: [u8; 6] = tare.as_bytes().try_into().unwrap();
            let frame = encode_frame([0x20 | a, b, 0x20 | c], &wb, &tb);
            let f = decode_frame(&frame).unwrap();
            prop_assert_eq!(f.net, b & 1 != 0);
            prop_assert_eq!(f.motion, b & 8 != 0);
            let (places, zeros) = decimals(a);
            let want = crate::decimal::from_scaled(&format!("{weight}{}", "0".repeat(zeros)), places, b & 2 != 0).unwrap();
            prop_assert_eq!(f.weight, want);
            // With parity bits set the frame decodes the same.
            let parity: Vec<u8> = frame.iter().map(|x| x | 0x80).collect();
            prop_assert!(decode_frame(&parity).is_ok());
        }
    }
}
