//! A scale's byte stream, whatever its protocol: [`ScaleStream`] cuts the bytes read from a port
//! into the protocol's frames, decodes each with the protocol's codec and yields
//! [`ScaleReading`]s; [`ScaleProtocol::poll_request`] says what to send to ask for a weight (demand
//! mode scales) or `None` for scales that stream on their own.
//!
//! Pure: no clock, no I/O. The serial shell ([`crate::link`]) feeds it whatever `read` returned,
//! which may be half a frame or three frames and some noise.

use super::pattern::Pattern;
use super::toledo_8217::UnitMode;
use super::toledo_continuous::ContinuousDecoder;
use super::{ScaleError, ScaleReading, cas, mt_sics, nci, sma, toledo_8217};

/// The longest frame kept while waiting for its end; longer runs are noise and are dropped.
const MAX_FRAME: usize = 512;

const STX: u8 = 0x02;
const ETX: u8 = 0x03;
const LF: u8 = b'\n';
const CR: u8 = b'\r';

/// A scale protocol with its settings.
#[derive(Debug, Clone)]
pub enum ScaleProtocol {
    /// Mettler Toledo MT-SICS; polled with `SI` (immediate weight, stable or not).
    MtSics,
    /// Toledo 8142-style continuous 18-byte frames; the scale streams.
    ToledoContinuous,
    /// Toledo 8217 demand mode; polled with `W`.
    Toledo8217(UnitMode),
    /// SMA standard; polled with `<LF>W<CR>`.
    Sma,
    /// NCI / Weigh-Tronix SCP-01/02; polled with `W<CR>`.
    Nci,
    /// CAS 22- or 18-byte lines; the scale streams.
    Cas,
    /// A configured template, one frame per line; `request` is sent to poll, if set.
    Pattern {
        /// The compiled template.
        pattern: Box<Pattern>,
        /// Bytes that ask for a weight (`None`: the scale streams).
        request: Option<Vec<u8>>,
    },
}

impl ScaleProtocol {
    /// The protocol's name in configuration files and logs.
    pub fn name(&self) -> &'static str {
        match self {
            ScaleProtocol::MtSics => "mt-sics",
            ScaleProtocol::ToledoContinuous => "toledo-continuous",
            ScaleProtocol::Toledo8217(_) => "toledo-8217",
            ScaleProtocol::Sma => "sma",
            ScaleProtocol::Nci => "nci",
            ScaleProtocol::Cas => "cas",
            ScaleProtocol::Pattern { .. } => "pattern",
        }
    }

    /// What to send to ask for a weight, or `None` when the scale sends on its own.
    pub fn poll_request(&self) -> Option<Vec<u8>> {
        match self {
            ScaleProtocol::MtSics => Some(mt_sics::SicsCommand::Immediate.encode()),
            ScaleProtocol::Toledo8217(_) => Some(toledo_8217::Command8217::Weigh.encode()),
            ScaleProtocol::Sma => Some(sma::SmaCommand::Weigh.encode()),
            ScaleProtocol::Nci => Some(nci::NciCommand::Weigh.encode()),
            ScaleProtocol::ToledoContinuous | ScaleProtocol::Cas => None,
            ScaleProtocol::Pattern { request, .. } => request.clone(),
        }
    }

    /// Where a frame of this protocol can start inside a line: the decoder resynchronises on
    /// these when junk (line noise, a stray command echo) sits in front of a frame.
    fn start_markers(&self) -> &'static [&'static [u8]] {
        match self {
            ScaleProtocol::MtSics => &[b"S ", b"SI ", b"SU ", b"SIU "],
            ScaleProtocol::Cas => &[b"ST,", b"US,", b"OL,"],
            _ => &[],
        }
    }

    /// Whether bytes are 7-bit (parity in bit 7 is masked before framing). CAS sends its lamp
    /// byte with bit 7 set, so it is the exception.
    fn seven_bit(&self) -> bool {
        !matches!(self, ScaleProtocol::Cas)
    }
}

/// How frames are delimited on the wire.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Framing {
    /// A line ending in CR, LF or CRLF (blank lines skipped).
    Line,
    /// From `start` up to and including `end`; bytes before `start` are noise.
    Delimited { start: u8, end: u8 },
    /// Up to and including `end` (NCI: several CR-terminated lines closed by ETX).
    UpTo(u8),
    /// Fixed-length frames handled by the Toledo continuous decoder.
    Continuous,
}

/// One decoded frame: a reading, or why the frame could not be read (kept for diagnostics).
pub type FrameResult = Result<ScaleReading, ScaleError>;

/// Frames and decodes one scale's byte stream.
#[derive(Debug)]
pub struct ScaleStream {
    protocol: ScaleProtocol,
    framing: Framing,
    buf: Vec<u8>,
    continuous: ContinuousDecoder,
    discarded: u64,
}

impl ScaleStream {
    /// A stream decoder for `protocol`.
    pub fn new(protocol: ScaleProtocol) -> ScaleStream {
        let framing = match protocol {
            ScaleProtocol::MtSics | ScaleProtocol::Cas | ScaleProtocol::Pattern { .. } => Framing::Line,
            ScaleProtocol::ToledoContinuous => Framing::Continuous,
            ScaleProtocol::Toledo8217(_) => Framing::Delimited { start: STX, end: CR },
            ScaleProtocol::Sma => Framing::Delimited { start: LF, end: CR },
            ScaleProtocol::Nci => Framing::UpTo(ETX),
        };
        ScaleStream { protocol, framing, buf: Vec::new(), continuous: ContinuousDecoder::new(), discarded: 0 }
    }

    /// The protocol.
    pub fn protocol(&self) -> &ScaleProtocol {
        &self.protocol
    }

    /// Bytes thrown away as noise or over-long frames so far.
    pub fn discarded_bytes(&self) -> u64 {
        self.discarded + self.continuous.discarded_bytes()
    }

    /// Forgets a partial frame (after a reconnect, the rest of it will never come).
    pub fn reset(&mut self) {
        self.buf.clear();
        self.continuous = ContinuousDecoder::new();
    }

    /// Feeds bytes as read; returns every frame completed by them, in order. Frames that decode
    /// to nothing useful (an acknowledgement of a command) are left out.
    pub fn push(&mut self, bytes: &[u8]) -> Vec<FrameResult> {
        if self.framing == Framing::Continuous {
            return self.continuous.push(bytes).into_iter().map(|r| r.map(|f| f.reading())).collect();
        }
        let mut out = Vec::new();
        for &raw in bytes {
            let b = if self.protocol.seven_bit() { raw & 0x7F } else { raw };
            // Flow control (XON/XOFF) and other control bytes are never part of a line
            // protocol's frame; dropping them keeps the frame they were pushed into.
            if self.framing == Framing::Line && is_line_noise(b) {
                self.discarded += 1;
                continue;
            }
            if let Some(frame) = self.take_byte(b)
                && let Some(result) = self.decode_resync(&frame)
            {
                out.push(result);
            }
        }
        out
    }

    /// Decodes a frame; when it does not decode, tries again from each start marker inside it
    /// (junk in front of a frame), counting the skipped bytes.
    fn decode_resync(&mut self, frame: &[u8]) -> Option<FrameResult> {
        let first = self.decode(frame);
        if !matches!(first, Some(Err(_))) {
            return first;
        }
        let markers = self.protocol.start_markers();
        for start in 1..frame.len() {
            let rest = &frame[start..];
            if !markers.iter().any(|m| rest.starts_with(m)) {
                continue;
            }
            if let Some(Ok(reading)) = self.decode(rest) {
                self.discarded += start as u64;
                return Some(Ok(reading));
            }
        }
        first
    }

    /// Adds one byte; returns a complete frame when this byte ends one.
    fn take_byte(&mut self, b: u8) -> Option<Vec<u8>> {
        match self.framing {
            Framing::Line => {
                if b == CR || b == LF {
                    if self.buf.is_empty() {
                        return None;
                    }
                    return Some(std::mem::take(&mut self.buf));
                }
            }
            Framing::Delimited { start, end } => {
                if b == start {
                    // A new start inside a frame means the previous one was cut short.
                    self.discarded += self.buf.len() as u64;
                    self.buf.clear();
                } else if self.buf.is_empty() {
                    self.discarded += 1;
                    return None;
                } else if b == end {
                    self.buf.push(b);
                    return Some(std::mem::take(&mut self.buf));
                }
            }
            Framing::UpTo(end) => {
                if b == end {
                    self.buf.push(b);
                    return Some(std::mem::take(&mut self.buf));
                }
            }
            Framing::Continuous => return None,
        }
        if self.buf.len() >= MAX_FRAME {
            self.discarded += self.buf.len() as u64;
            self.buf.clear();
        }
        self.buf.push(b);
        None
    }

    fn decode(&self, frame: &[u8]) -> Option<FrameResult> {
        if frame.is_empty() {
            return None;
        }
        let result = match &self.protocol {
            ScaleProtocol::MtSics => mt_sics::parse_line(frame).map(|r| r.reading()),
            ScaleProtocol::Toledo8217(mode) => toledo_8217::parse_reply(frame, *mode).map(|r| r.reading()),
            ScaleProtocol::Sma => sma::parse_reply(frame).map(|r| r.reading()),
            ScaleProtocol::Nci => nci::parse_reply(frame).map(|r| r.reading()),
            ScaleProtocol::Cas => cas::parse_line(frame).map(|r| r.reading()),
            ScaleProtocol::Pattern { pattern, .. } => pattern.parse(frame).map(|w| Some(ScaleReading::Weight(w))),
            ScaleProtocol::ToledoContinuous => return None,
        };
        result.transpose()
    }
}

/// A control byte inside a line (CR and LF end lines; TAB may separate fields).
fn is_line_noise(b: u8) -> bool {
    (b < 0x20 && b != CR && b != LF && b != b'\t') || b == 0x7F
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;
    use crate::scale::{ScaleCondition, Weight, WeightUnit};

    fn weights(results: Vec<FrameResult>) -> Vec<Weight> {
        results
            .into_iter()
            .filter_map(|r| match r {
                Ok(ScaleReading::Weight(w)) => Some(w),
                _ => None,
            })
            .collect()
    }

    #[test]
    fn mt_sics_lines_split_across_reads() {
        let mut s = ScaleStream::new(ScaleProtocol::MtSics);
        assert!(s.push(b"S S     12.").is_empty());
        let out = weights(s.push(b"345 g\r\nS D      12.340 g\r\n"));
        assert_eq!(out.len(), 2);
        assert_eq!((out[0].value.as_str(), out[0].unit, out[0].stable), ("12.345", WeightUnit::G, true));
        assert!(!out[1].stable);
        assert_eq!(s.push(b"S +\r\n"), vec![Ok(ScaleReading::Condition(ScaleCondition::Overload))]);
        // A syntax error (wrong protocol configured?) is the scale's own complaint.
        assert!(matches!(&s.push(b"ES\r\n")[..], [Ok(ScaleReading::Condition(ScaleCondition::DeviceError(_)))]));
    }

    #[test]
    fn toledo_8217_frames_from_stx_to_cr_with_parity_and_noise() {
        let mut s = ScaleStream::new(ScaleProtocol::Toledo8217(UnitMode::Infer));
        // Noise, a motion status, then a weight whose bytes carry even parity in bit 7.
        let mut bytes = b"zz\x02?A\r".to_vec();
        bytes.extend([0x02, 0x30, 0xB1, 0x2E, 0xB2, 0x35, 0x30, 0x8D]);
        let out = s.push(&bytes);
        assert_eq!(out[0], Ok(ScaleReading::Condition(ScaleCondition::Motion)));
        let w = weights(out);
        assert_eq!((w[0].value.as_str(), w[0].unit), ("1.250", WeightUnit::Kg));
        assert_eq!(s.discarded_bytes(), 2);
    }

    #[test]
    fn toledo_8217_restarts_on_stx_inside_a_cut_frame() {
        let mut s = ScaleStream::new(ScaleProtocol::Toledo8217(UnitMode::Infer));
        let w = weights(s.push(b"\x0201.2\x0202.500\r"));
        assert_eq!(w.len(), 1);
        assert_eq!(w[0].value, "2.500");
    }

    #[test]
    fn sma_and_nci_frames() {
        let mut sma = ScaleStream::new(ScaleProtocol::Sma);
        let w = weights(sma.push(b"\n 1G       1.250kg \r\n 1GM      1.250kg \r"));
        assert_eq!(w.iter().map(|w| w.stable).collect::<Vec<_>>(), vec![true, false]);

        let mut nci = ScaleStream::new(ScaleProtocol::Nci);
        let w = weights(nci.push(b"\n0001.25LB\r\n00\r\x03"));
        assert_eq!((w[0].value.as_str(), w[0].unit), ("1.25", WeightUnit::Lb));
    }

    #[test]
    fn cas_keeps_the_lamp_bit() {
        let mut s = ScaleStream::new(ScaleProtocol::Cas);
        let line = [
            0x53, 0x54, 0x2C, 0x47, 0x53, 0x2C, 0x31, 0xC4, 0x2C, 0x30, 0x30, 0x30, 0x30, 0x31, 0x33, 0x2E, 0x35, 0x20,
            0x6B, 0x67, 0x0D, 0x0A,
        ];
        let w = weights(s.push(&line));
        assert_eq!((w[0].value.as_str(), w[0].stable), ("13.5", true));
    }

    #[test]
    fn continuous_frames_resync_after_truncation() {
        let good = [
            0x82, 0xAC, 0xF0, 0x60, 0x30, 0x30, 0x30, 0x35, 0x30, 0x30, 0x30, 0x30, 0x30, 0x30, 0x30, 0x30, 0x8D, 0x30,
        ];
        let mut bytes = good[..11].to_vec();
        bytes.extend_from_slice(&good);
        bytes.extend_from_slice(b"garbage");
        bytes.extend_from_slice(&good);
        let mut s = ScaleStream::new(ScaleProtocol::ToledoContinuous);
        let w = weights(s.push(&bytes));
        assert_eq!(w.len(), 2);
        assert_eq!(w[0].value, "5.00");
    }

    #[test]
    fn a_frame_behind_xon_xoff_or_line_noise_is_still_decoded() {
        let mut s = ScaleStream::new(ScaleProtocol::MtSics);
        let w = weights(s.push(b"\x11\x13S S      1.250 kg\r\n"));
        assert_eq!(w.iter().map(|w| w.value.as_str()).collect::<Vec<_>>(), vec!["1.250"]);
        let w = weights(s.push(b"#~zS S      2.500 kg\r\n"));
        assert_eq!(w.iter().map(|w| w.value.as_str()).collect::<Vec<_>>(), vec!["2.500"]);
        assert_eq!(s.discarded_bytes(), 5);
        let mut cas = ScaleStream::new(ScaleProtocol::Cas);
        let w = weights(cas.push(b"\x13@@ST,GS,+0001.23kg\r\n"));
        assert_eq!(w.iter().map(|w| w.value.as_str()).collect::<Vec<_>>(), vec!["1.23"]);
    }

    #[test]
    fn over_long_lines_are_dropped_not_buffered_forever() {
        let mut s = ScaleStream::new(ScaleProtocol::MtSics);
        s.push(&[b'x'; 4000]);
        let w = weights(s.push(b"\r\nS S 1.000 kg\r\n"));
        assert_eq!(w.len(), 1);
        assert!(s.discarded_bytes() >= 3000);
    }

    #[test]
    fn demand_protocols_have_poll_requests_and_streaming_ones_do_not() {
        assert_eq!(ScaleProtocol::MtSics.poll_request(), Some(b"SI\r\n".to_vec()));
        assert_eq!(ScaleProtocol::Toledo8217(UnitMode::Infer).poll_request(), Some(b"W".to_vec()));
        assert_eq!(ScaleProtocol::Sma.poll_request(), Some(b"\nW\r".to_vec()));
        assert_eq!(ScaleProtocol::Nci.poll_request(), Some(b"W\r".to_vec()));
        assert_eq!(ScaleProtocol::ToledoContinuous.poll_request(), None);
        assert_eq!(ScaleProtocol::Cas.poll_request(), None);
    }

    proptest! {
        #[test]
        fn arbitrary_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..600), split in 0usize..600) {
            for protocol in [
                ScaleProtocol::MtSics,
                ScaleProtocol::ToledoContinuous,
                ScaleProtocol::Toledo8217(UnitMode::Infer),
                ScaleProtocol::Sma,
                ScaleProtocol::Nci,
                ScaleProtocol::Cas,
            ] {
                let mut s = ScaleStream::new(protocol);
                let cut = split.min(bytes.len());
                s.push(&bytes[..cut]);
                s.push(&bytes[cut..]);
            }
        }
    }
}
