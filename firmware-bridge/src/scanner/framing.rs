//! Splitting a serial scanner's byte stream into scans. Scanners send each symbol's data followed
//! by a suffix (CR, LF, CRLF…) and optionally preceded by a prefix; scanners with no suffix are
//! framed on an inter-character timeout. [`Framer`] is a pure state machine: feed it bytes with a
//! timestamp in milliseconds (from any monotonic clock) and call [`Framer::poll`] when
//! [`Framer::deadline`] passes. Frames come out without prefix and suffix; empty frames are
//! dropped.
//!
//! Boundaries, by configuration:
//! - suffix: a frame ends at the suffix. A partial frame older than the timeout (when one is set)
//!   is discarded as a fragment and counted.
//! - prefix: bytes before the prefix on the same line are noise (counted). A whole line (or,
//!   without a suffix, a burst ended by the timeout) that never shows the prefix is still an
//!   operator's scan: it comes out as a [`Frame`] with `prefix_missing` set, so the agent keeps it
//!   raw with the reason instead of dropping it (counted in [`FramerStats::unprefixed`]). Bytes
//!   with nothing printable in them (XON/XOFF, line noise) stay noise. With a prefix and no
//!   suffix, a frame ends at the next prefix or at the timeout.
//! - timeout only: a frame ends when no byte arrived for the timeout.
//!
//! The buffer is bounded: a frame longer than `max_frame_len` is discarded, counted in
//! [`FramerStats::overflows`], and the rest of it is skipped up to the next boundary.

use thiserror::Error;

/// How a frame ends.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Suffix {
    /// An exact byte sequence, e.g. `b"\r\n"`.
    Sequence(Vec<u8>),
    /// Any one of these bytes; with `b"\r\n"` this frames CR, LF and CRLF scanners alike
    /// (CRLF makes an empty frame, which is dropped).
    AnyOf(Vec<u8>),
}

/// One frame: the scan's bytes without prefix and suffix.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Frame {
    /// The data.
    pub bytes: Vec<u8>,
    /// A prefix is configured and this frame came without it.
    pub prefix_missing: bool,
}

impl Frame {
    fn with_prefix(bytes: Vec<u8>) -> Frame {
        Frame { bytes, prefix_missing: false }
    }
}

/// Framer configuration.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FramerConfig {
    /// Bytes that start every frame (stripped).
    pub prefix: Option<Vec<u8>>,
    /// How a frame ends (stripped).
    pub suffix: Option<Suffix>,
    /// Inter-character timeout in milliseconds.
    pub inter_char_timeout_ms: Option<u64>,
    /// Longest frame kept, in bytes (prefix and suffix excluded).
    pub max_frame_len: usize,
}

impl FramerConfig {
    /// Default maximum frame length: big enough for a 2D code with a long Digital Link.
    pub const DEFAULT_MAX_FRAME_LEN: usize = 4096;

    /// Frames on CR, LF or CRLF — the usual serial scanner setup.
    pub fn line() -> Self {
        FramerConfig {
            prefix: None,
            suffix: Some(Suffix::AnyOf(b"\r\n".to_vec())),
            inter_char_timeout_ms: None,
            max_frame_len: Self::DEFAULT_MAX_FRAME_LEN,
        }
    }

    /// Frames on an inter-character timeout only.
    pub fn timeout(ms: u64) -> Self {
        FramerConfig {
            prefix: None,
            suffix: None,
            inter_char_timeout_ms: Some(ms),
            max_frame_len: Self::DEFAULT_MAX_FRAME_LEN,
        }
    }
}

/// A configuration that cannot frame anything.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum FramerConfigError {
    /// Neither suffix, prefix nor timeout: frames would never end.
    #[error("scanner framing needs a suffix, a prefix or an inter-character timeout")]
    NoBoundary,
    /// An empty prefix or suffix.
    #[error("scanner framing prefix/suffix must not be empty")]
    EmptyDelimiter,
    /// `max_frame_len` of 0, or a timeout of 0 ms.
    #[error("scanner framing max_frame_len and timeout must be greater than zero")]
    Zero,
}

/// Counters for what the framer threw away.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct FramerStats {
    /// Frames emitted.
    pub frames: u64,
    /// Frames discarded for exceeding `max_frame_len`.
    pub overflows: u64,
    /// Partial frames discarded because the timeout passed before their suffix arrived.
    pub fragments: u64,
    /// Bytes discarded while waiting for a prefix.
    pub noise_bytes: u64,
    /// Frames emitted although they lacked the configured prefix.
    pub unprefixed: u64,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    /// Waiting for the prefix (`buf` holds what came since the last boundary, bounded).
    Hunting,
    /// Collecting a frame.
    InFrame,
    /// Dropping an overflowing frame up to the next boundary (`buf` holds a possible partial
    /// boundary).
    Skipping,
}

/// The framing state machine. See the module documentation.
#[derive(Debug, Clone)]
pub struct Framer {
    config: FramerConfig,
    buf: Vec<u8>,
    state: State,
    last_byte_ms: Option<u64>,
    stats: FramerStats,
}

impl Framer {
    /// Checks the configuration and builds a framer.
    pub fn new(config: FramerConfig) -> Result<Framer, FramerConfigError> {
        let empty = |d: &[u8]| d.is_empty();
        if config.prefix.as_deref().is_some_and(empty)
            || matches!(&config.suffix, Some(Suffix::Sequence(s) | Suffix::AnyOf(s)) if s.is_empty())
        {
            return Err(FramerConfigError::EmptyDelimiter);
        }
        if config.max_frame_len == 0 || config.inter_char_timeout_ms == Some(0) {
            return Err(FramerConfigError::Zero);
        }
        if config.prefix.is_none() && config.suffix.is_none() && config.inter_char_timeout_ms.is_none() {
            return Err(FramerConfigError::NoBoundary);
        }
        let state = Self::start_state(&config);
        Ok(Framer { config, buf: Vec::new(), state, last_byte_ms: None, stats: FramerStats::default() })
    }

    fn start_state(config: &FramerConfig) -> State {
        if config.prefix.is_some() { State::Hunting } else { State::InFrame }
    }

    /// Drops a partial frame (the port was reopened: the rest of it will never come).
    pub fn reset(&mut self) {
        self.buf.clear();
        self.state = Self::start_state(&self.config);
        self.last_byte_ms = None;
    }

    /// What has been emitted and discarded so far.
    pub fn stats(&self) -> FramerStats {
        self.stats
    }

    /// Bytes currently held.
    pub fn buffered(&self) -> usize {
        self.buf.len()
    }

    /// When [`Framer::poll`] should be called next (ms), if a timeout is pending.
    pub fn deadline(&self) -> Option<u64> {
        let timeout = self.config.inter_char_timeout_ms?;
        let last = self.last_byte_ms?;
        Some(last.saturating_add(timeout))
    }

    /// Feeds bytes received at `now_ms`; returns the frames they complete (a frame completed by
    /// a timeout that expired before these bytes comes first).
    pub fn push(&mut self, bytes: &[u8], now_ms: u64) -> Vec<Frame> {
        let mut out = Vec::new();
        if bytes.is_empty() {
            return out;
        }
        if let Some(frame) = self.poll(now_ms) {
            out.push(frame);
        }
        for &b in bytes {
            self.push_byte(b, &mut out);
        }
        self.last_byte_ms = Some(now_ms);
        out
    }

    /// Applies the inter-character timeout at `now_ms`; returns the frame it completes, if any.
    pub fn poll(&mut self, now_ms: u64) -> Option<Frame> {
        let deadline = self.deadline()?;
        if now_ms < deadline {
            return None;
        }
        self.last_byte_ms = None;
        let pending = std::mem::take(&mut self.buf);
        let state = std::mem::replace(&mut self.state, Self::start_state(&self.config));
        match state {
            State::InFrame if !pending.is_empty() => {
                if pending.len() > self.config.max_frame_len {
                    // Possible with a prefix-only setup: a partial prefix sat at the end.
                    self.stats.overflows += 1;
                    None
                } else if self.config.suffix.is_none() {
                    self.finish(Frame::with_prefix(pending))
                } else {
                    self.stats.fragments += 1;
                    None
                }
            }
            State::Hunting => self.unprefixed(pending),
            _ => None,
        }
    }

    /// What came without the prefix: a scan when it has something printable, else noise.
    fn unprefixed(&mut self, bytes: Vec<u8>) -> Option<Frame> {
        let printable = bytes.iter().any(|b| b.is_ascii_graphic() || *b >= 0x80);
        if !printable || bytes.len() > self.config.max_frame_len {
            self.stats.noise_bytes += bytes.len() as u64;
            return None;
        }
        self.stats.unprefixed += 1;
        self.finish(Frame { bytes, prefix_missing: true })
    }

    fn finish(&mut self, frame: Frame) -> Option<Frame> {
        if frame.bytes.is_empty() {
            return None;
        }
        self.stats.frames += 1;
        Some(frame)
    }

    fn emit(&mut self, frame: Vec<u8>, out: &mut Vec<Frame>) {
        if let Some(f) = self.finish(Frame::with_prefix(frame)) {
            out.push(f);
        }
    }

    /// Bytes of a boundary that may sit at the end of `buf` without counting as frame data.
    fn boundary_tail(&self) -> usize {
        match (&self.config.suffix, &self.config.prefix) {
            (Some(Suffix::Sequence(s)), _) => s.len(),
            (Some(Suffix::AnyOf(_)), _) => 0,
            (None, Some(p)) => p.len(),
            (None, None) => 0,
        }
    }

    fn push_byte(&mut self, b: u8, out: &mut Vec<Frame>) {
        match self.state {
            State::Hunting => self.hunt(b, out),
            State::InFrame => self.collect(b, out),
            State::Skipping => self.skip(b),
        }
    }

    fn hunt(&mut self, b: u8, out: &mut Vec<Frame>) {
        let Some(prefix) = self.config.prefix.clone() else {
            self.state = State::InFrame;
            return;
        };
        // A suffix before any prefix ends a line that came without its prefix.
        let line_end = match &self.config.suffix {
            Some(Suffix::AnyOf(set)) => set.contains(&b).then_some(0),
            Some(Suffix::Sequence(seq)) => {
                self.buf.push(b);
                self.buf.ends_with(seq).then_some(seq.len())
            }
            None => None,
        };
        if let Some(suffix_len) = line_end {
            let mut line = std::mem::take(&mut self.buf);
            line.truncate(line.len() - suffix_len);
            if let Some(frame) = self.unprefixed(line) {
                out.push(frame);
            }
            return;
        }
        if !matches!(self.config.suffix, Some(Suffix::Sequence(_))) {
            self.buf.push(b);
        }
        if self.buf.ends_with(&prefix) {
            self.stats.noise_bytes += (self.buf.len() - prefix.len()) as u64;
            self.buf.clear();
            self.state = State::InFrame;
        } else if self.buf.len() > self.config.max_frame_len + prefix.len() {
            // Longer than any scan: whatever it is, it is not kept.
            let drop = self.buf.len() + 1 - prefix.len();
            self.buf.drain(..drop);
            self.stats.noise_bytes += drop as u64;
        }
    }

    fn collect(&mut self, b: u8, out: &mut Vec<Frame>) {
        match &self.config.suffix {
            Some(Suffix::AnyOf(set)) => {
                if set.contains(&b) {
                    let frame = std::mem::take(&mut self.buf);
                    self.state = Self::start_state(&self.config);
                    self.emit(frame, out);
                    return;
                }
                self.buf.push(b);
            }
            Some(Suffix::Sequence(s)) => {
                self.buf.push(b);
                if self.buf.ends_with(s) {
                    let keep = self.buf.len() - s.len();
                    self.buf.truncate(keep);
                    let frame = std::mem::take(&mut self.buf);
                    self.state = Self::start_state(&self.config);
                    self.emit(frame, out);
                    return;
                }
            }
            None => {
                self.buf.push(b);
                if let Some(p) = self.config.prefix.as_deref()
                    && self.buf.ends_with(p)
                {
                    let keep = self.buf.len() - p.len();
                    self.buf.truncate(keep);
                    let frame = std::mem::take(&mut self.buf);
                    self.emit(frame, out);
                    return;
                }
            }
        }
        if self.buf.len() > self.config.max_frame_len + self.boundary_tail().saturating_sub(1) {
            self.stats.overflows += 1;
            let tail = self.boundary_tail();
            let start = self.buf.len().saturating_sub(tail);
            self.buf.drain(..start);
            self.state = State::Skipping;
        }
    }

    fn skip(&mut self, b: u8) {
        let boundary: Option<&[u8]> = match (&self.config.suffix, &self.config.prefix) {
            (Some(Suffix::AnyOf(set)), _) => {
                if set.contains(&b) {
                    self.buf.clear();
                    self.state = Self::start_state(&self.config);
                }
                return;
            }
            (Some(Suffix::Sequence(s)), _) => Some(s),
            (None, Some(p)) => Some(p),
            // Timeout-only framing: only a timeout ends the skip (see `poll`).
            (None, None) => None,
        };
        let Some(boundary) = boundary else { return };
        self.buf.push(b);
        if self.buf.ends_with(boundary) {
            self.buf.clear();
            // After a suffix, hunt for the prefix again; after a prefix, a frame has begun.
            self.state = if self.config.suffix.is_some() { Self::start_state(&self.config) } else { State::InFrame };
        } else if self.buf.len() >= boundary.len() {
            let drop = self.buf.len() + 1 - boundary.len();
            self.buf.drain(..drop);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    /// The existing assertions compare data; `prefix_missing` has tests of its own.
    impl PartialEq<Vec<u8>> for Frame {
        fn eq(&self, other: &Vec<u8>) -> bool {
            &self.bytes == other
        }
    }

    fn framer(config: FramerConfig) -> Framer {
        Framer::new(config).unwrap()
    }

    fn seq(s: &[u8]) -> Option<Suffix> {
        Some(Suffix::Sequence(s.to_vec()))
    }

    #[test]
    fn cr_lf_and_crlf_suffixes_all_frame_with_any_of() {
        let mut f = framer(FramerConfig::line());
        let frames = f.push(b"A1\rB2\nC3\r\nD4", 0);
        assert_eq!(frames, vec![b"A1".to_vec(), b"B2".to_vec(), b"C3".to_vec()]);
        assert_eq!(f.push(b"\r", 5), vec![b"D4".to_vec()]);
        assert_eq!(f.stats().frames, 4);
    }

    #[test]
    fn exact_crlf_suffix_keeps_a_lone_cr_in_the_data() {
        let mut f = framer(FramerConfig { suffix: seq(b"\r\n"), ..FramerConfig::line() });
        assert_eq!(f.push(b"A\rB\r", 0), Vec::<Vec<u8>>::new());
        assert_eq!(f.push(b"\n", 1), vec![b"A\rB".to_vec()]);
    }

    #[test]
    fn frames_split_across_pushes_are_joined() {
        let mut f = framer(FramerConfig::line());
        assert!(f.push(b"]C1010950", 0).is_empty());
        assert_eq!(f.push(b"6000134352\r", 3), vec![b"]C10109506000134352".to_vec()]);
    }

    #[test]
    fn inter_character_timeout_ends_a_frame() {
        let mut f = framer(FramerConfig::timeout(50));
        assert!(f.push(b"ABC", 0).is_empty());
        assert!(f.push(b"DEF", 30).is_empty());
        assert_eq!(f.deadline(), Some(80));
        assert_eq!(f.poll(79).map(|fr| fr.bytes), None);
        assert_eq!(f.poll(80).map(|fr| fr.bytes), Some(b"ABCDEF".to_vec()));
        assert_eq!(f.poll(500).map(|fr| fr.bytes), None);
        assert_eq!(f.deadline(), None);
    }

    #[test]
    fn late_bytes_first_flush_the_timed_out_frame() {
        let mut f = framer(FramerConfig::timeout(50));
        f.push(b"ONE", 0);
        assert_eq!(f.push(b"TWO", 100), vec![b"ONE".to_vec()]);
        assert_eq!(f.poll(150).map(|fr| fr.bytes), Some(b"TWO".to_vec()));
    }

    #[test]
    fn partial_frame_past_timeout_is_a_fragment_when_a_suffix_is_expected() {
        let mut f = framer(FramerConfig { inter_char_timeout_ms: Some(50), ..FramerConfig::line() });
        f.push(b"GARB", 0);
        assert_eq!(f.push(b"GOOD\r", 200), vec![b"GOOD".to_vec()]);
        assert_eq!(f.stats().fragments, 1);
    }

    #[test]
    fn prefix_is_stripped_and_noise_before_it_counted() {
        let mut f = framer(FramerConfig { prefix: Some(b"\x02".to_vec()), ..FramerConfig::line() });
        assert_eq!(f.push(b"xx\x02ABC\r\x02DEF\r", 0), vec![b"ABC".to_vec(), b"DEF".to_vec()]);
        assert_eq!(f.stats().noise_bytes, 2);
    }

    #[test]
    fn a_line_without_the_prefix_is_kept_and_marked() {
        let mut f = framer(FramerConfig { prefix: Some(b"\x02".to_vec()), ..FramerConfig::line() });
        let frames = f.push(b"\x02ABC\rNOPREFIX\r\x11\x13\r\x02DEF\r", 0);
        let got: Vec<(&[u8], bool)> = frames.iter().map(|fr| (&fr.bytes[..], fr.prefix_missing)).collect();
        assert_eq!(got, vec![(&b"ABC"[..], false), (&b"NOPREFIX"[..], true), (&b"DEF"[..], false)]);
        // XON/XOFF alone is noise, not a scan.
        assert_eq!(f.stats().unprefixed, 1);
        assert_eq!(f.stats().noise_bytes, 2);
        let mut seq =
            framer(FramerConfig { prefix: Some(b"<<".to_vec()), suffix: seq(b"\r\n"), ..FramerConfig::line() });
        let frames = seq.push(b"BARE\r\n<<OK\r\n", 0);
        assert_eq!((frames[0].bytes.as_slice(), frames[0].prefix_missing), (&b"BARE"[..], true));
        assert_eq!((frames[1].bytes.as_slice(), frames[1].prefix_missing), (&b"OK"[..], false));
    }

    #[test]
    fn multi_byte_prefix_split_across_pushes() {
        let mut f = framer(FramerConfig { prefix: Some(b"<<".to_vec()), ..FramerConfig::line() });
        assert!(f.push(b"z<", 0).is_empty());
        assert_eq!(f.push(b"<DATA\n", 1), vec![b"DATA".to_vec()]);
        assert_eq!(f.stats().noise_bytes, 1);
    }

    #[test]
    fn prefix_without_suffix_ends_at_next_prefix_or_timeout() {
        let mut f = framer(FramerConfig {
            prefix: Some(b"#".to_vec()),
            suffix: None,
            inter_char_timeout_ms: Some(20),
            max_frame_len: 64,
        });
        assert_eq!(f.push(b"#AB#CD", 0), vec![b"AB".to_vec()]);
        assert_eq!(f.poll(20).map(|fr| fr.bytes), Some(b"CD".to_vec()));
    }

    #[test]
    fn overflow_discards_the_frame_and_resyncs_on_the_next_suffix() {
        let mut f = framer(FramerConfig { max_frame_len: 4, ..FramerConfig::line() });
        assert_eq!(f.push(b"1234\r", 0), vec![b"1234".to_vec()]);
        assert_eq!(f.push(b"123456789\rOK\r", 1), vec![b"OK".to_vec()]);
        assert_eq!(f.stats().overflows, 1);
        assert!(f.buffered() <= 4);
    }

    #[test]
    fn overflow_with_sequence_suffix_resyncs() {
        let mut f = framer(FramerConfig { max_frame_len: 3, suffix: seq(b"\r\n"), ..FramerConfig::line() });
        assert_eq!(f.push(b"ABC\r\nTOOLONG\r\nXY\r\n", 0), vec![b"ABC".to_vec(), b"XY".to_vec()]);
        assert_eq!(f.stats().overflows, 1);
    }

    #[test]
    fn overflow_in_timeout_mode_skips_until_the_gap() {
        let mut f = framer(FramerConfig { max_frame_len: 3, ..FramerConfig::timeout(10) });
        f.push(b"ABCDEFG", 0);
        assert_eq!(f.poll(10).map(|fr| fr.bytes), None);
        f.push(b"XY", 20);
        assert_eq!(f.poll(30).map(|fr| fr.bytes), Some(b"XY".to_vec()));
        assert_eq!(f.stats().overflows, 1);
    }

    #[test]
    fn invalid_configurations_are_rejected() {
        let none = FramerConfig { prefix: None, suffix: None, inter_char_timeout_ms: None, max_frame_len: 10 };
        assert_eq!(Framer::new(none).unwrap_err(), FramerConfigError::NoBoundary);
        let empty = FramerConfig { suffix: seq(b""), ..FramerConfig::line() };
        assert_eq!(Framer::new(empty).unwrap_err(), FramerConfigError::EmptyDelimiter);
        let zero = FramerConfig { max_frame_len: 0, ..FramerConfig::line() };
        assert_eq!(Framer::new(zero).unwrap_err(), FramerConfigError::Zero);
    }

    fn any_config() -> impl Strategy<Value = FramerConfig> {
        (
            prop::option::of(prop::collection::vec(any::<u8>(), 1..3)),
            prop::option::of(prop_oneof![
                prop::collection::vec(any::<u8>(), 1..3).prop_map(Suffix::Sequence),
                prop::collection::vec(any::<u8>(), 1..3).prop_map(Suffix::AnyOf),
            ]),
            prop::option::of(1u64..100),
            1usize..16,
        )
            .prop_map(|(prefix, suffix, timeout, max)| FramerConfig {
                prefix,
                suffix,
                inter_char_timeout_ms: timeout.or(Some(10)),
                max_frame_len: max,
            })
    }

    proptest! {
        #[test]
        fn arbitrary_bytes_never_panic_and_stay_bounded(
            config in any_config(),
            chunks in prop::collection::vec((prop::collection::vec(any::<u8>(), 0..40), 0u64..50), 0..20),
        ) {
            let max = config.max_frame_len;
            let mut f = framer(config);
            let mut now = 0;
            for (bytes, dt) in chunks {
                now += dt;
                for frame in f.push(&bytes, now) {
                    prop_assert!(!frame.bytes.is_empty() && frame.bytes.len() <= max);
                }
                prop_assert!(f.buffered() <= max + 3);
                if let Some(frame) = f.poll(now + 5).map(|fr| fr.bytes) {
                    prop_assert!(frame.len() <= max);
                }
            }
        }

        #[test]
        fn suffix_framed_data_round_trips(frames in prop::collection::vec("[ -~]{1,30}", 0..10), split in 1usize..50) {
            let mut wire = Vec::new();
            for fr in &frames {
                wire.extend_from_slice(fr.as_bytes());
                wire.extend_from_slice(b"\r\n");
            }
            let mut f = framer(FramerConfig::line());
            let mut got = Vec::new();
            for (i, chunk) in wire.chunks(split).enumerate() {
                got.extend(f.push(chunk, i as u64).into_iter().map(|fr| fr.bytes));
            }
            let want: Vec<Vec<u8>> = frames.iter().map(|s| s.as_bytes().to_vec()).collect();
            prop_assert_eq!(got, want);
        }
    }
}
