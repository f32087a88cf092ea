//! Stable-weight capture: a pure state machine that accepts a weight once the scale has reported
//! the same stable weight `required` times in a row, and gives up after a timeout. Feed it every
//! reading with a millisecond timestamp (any monotonic clock) and call [`StableCapture::poll`]
//! when no reading arrives.
//!
//! "The same" means equal value (numerically: `"1.25"` = `"1.250"`), unit and net/gross flag.
//! An unstable reading or a condition (motion, overload…) restarts the count. Once captured or
//! timed out the outcome is final; start a new capture for the next weighing.

use super::{ScaleReading, Weight};
use crate::decimal;

/// Capture settings.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct StableCaptureConfig {
    /// Consecutive equal stable readings needed (at least 1).
    pub required: usize,
    /// Give up this many milliseconds after the start.
    pub timeout_ms: u64,
}

/// Where a capture stands.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CaptureOutcome {
    /// Still waiting.
    Pending {
        /// Equal stable readings seen so far.
        count: usize,
    },
    /// The weight was captured.
    Captured(Weight),
    /// The timeout passed first; `last` is the last reading seen (to tell the operator why).
    TimedOut {
        /// The last reading, if any.
        last: Option<ScaleReading>,
    },
}

/// The capture state machine.
#[derive(Debug, Clone)]
pub struct StableCapture {
    config: StableCaptureConfig,
    deadline_ms: u64,
    candidate: Option<Weight>,
    count: usize,
    last: Option<ScaleReading>,
    outcome: Option<CaptureOutcome>,
}

fn same(a: &Weight, b: &Weight) -> bool {
    a.unit == b.unit && a.net == b.net && decimal::numeric_eq(&a.value, &b.value)
}

impl StableCapture {
    /// Starts a capture at `now_ms`.
    pub fn start(config: StableCaptureConfig, now_ms: u64) -> Self {
        StableCapture {
            config: StableCaptureConfig { required: config.required.max(1), ..config },
            deadline_ms: now_ms.saturating_add(config.timeout_ms),
            candidate: None,
            count: 0,
            last: None,
            outcome: None,
        }
    }

    /// When the capture times out (ms).
    pub fn deadline(&self) -> u64 {
        self.deadline_ms
    }

    /// Checks the timeout at `now_ms`.
    pub fn poll(&mut self, now_ms: u64) -> CaptureOutcome {
        if let Some(done) = &self.outcome {
            return done.clone();
        }
        if now_ms >= self.deadline_ms {
            let outcome = CaptureOutcome::TimedOut { last: self.last.clone() };
            self.outcome = Some(outcome.clone());
            return outcome;
        }
        CaptureOutcome::Pending { count: self.count }
    }

    /// Feeds a reading received at `now_ms`. A reading at or after the deadline does not count.
    pub fn feed(&mut self, reading: &ScaleReading, now_ms: u64) -> CaptureOutcome {
        let state = self.poll(now_ms);
        if !matches!(state, CaptureOutcome::Pending { .. }) {
            return state;
        }
        self.last = Some(reading.clone());
        match reading {
            ScaleReading::Weight(w) if w.stable => {
                if self.candidate.as_ref().is_some_and(|c| same(c, w)) {
                    self.count += 1;
                } else {
                    self.count = 1;
                }
                self.candidate = Some(w.clone());
                if self.count >= self.config.required {
                    let outcome = CaptureOutcome::Captured(w.clone());
                    self.outcome = Some(outcome.clone());
                    return outcome;
                }
            }
            _ => {
                self.candidate = None;
                self.count = 0;
            }
        }
        CaptureOutcome::Pending { count: self.count }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::scale::{ScaleCondition, WeightUnit};
    use proptest::prelude::*;

    fn w(value: &str, stable: bool) -> ScaleReading {
        ScaleReading::Weight(Weight::new(value.into(), WeightUnit::Kg, stable))
    }

    fn capture(required: usize) -> StableCapture {
        StableCapture::start(StableCaptureConfig { required, timeout_ms: 1000 }, 0)
    }

    #[test]
    fn three_equal_stable_readings_capture() {
        let mut c = capture(3);
        assert_eq!(c.feed(&w("1.250", true), 10), CaptureOutcome::Pending { count: 1 });
        assert_eq!(c.feed(&w("1.25", true), 20), CaptureOutcome::Pending { count: 2 });
        assert_eq!(
            c.feed(&w("1.250", true), 30),
            CaptureOutcome::Captured(Weight::new("1.250".into(), WeightUnit::Kg, true))
        );
        // Final: later readings do not change it.
        assert!(matches!(c.feed(&w("9.0", true), 40), CaptureOutcome::Captured(_)));
    }

    #[test]
    fn motion_or_a_different_weight_restarts_the_count() {
        let mut c = capture(2);
        c.feed(&w("1.0", true), 1);
        assert_eq!(c.feed(&w("1.0", false), 2), CaptureOutcome::Pending { count: 0 });
        c.feed(&w("1.0", true), 3);
        assert_eq!(c.feed(&w("1.1", true), 4), CaptureOutcome::Pending { count: 1 });
        assert_eq!(c.feed(&ScaleReading::Condition(ScaleCondition::Motion), 5), CaptureOutcome::Pending { count: 0 });
        c.feed(&w("1.1", true), 6);
        assert!(matches!(c.feed(&w("1.1", true), 7), CaptureOutcome::Captured(_)));
    }

    #[test]
    fn net_and_gross_of_the_same_value_differ() {
        let mut c = capture(2);
        let gross = ScaleReading::Weight(Weight::new("1.0".into(), WeightUnit::Kg, true).with_net(false));
        let net = ScaleReading::Weight(Weight::new("1.0".into(), WeightUnit::Kg, true).with_net(true));
        c.feed(&gross, 1);
        assert_eq!(c.feed(&net, 2), CaptureOutcome::Pending { count: 1 });
    }

    #[test]
    fn timeout_reports_the_last_reading() {
        let mut c = capture(2);
        c.feed(&ScaleReading::Condition(ScaleCondition::Motion), 500);
        assert_eq!(c.poll(999), CaptureOutcome::Pending { count: 0 });
        assert_eq!(
            c.poll(1000),
            CaptureOutcome::TimedOut { last: Some(ScaleReading::Condition(ScaleCondition::Motion)) }
        );
        assert!(matches!(c.feed(&w("1.0", true), 1001), CaptureOutcome::TimedOut { .. }));
        assert_eq!(c.deadline(), 1000);
    }

    #[test]
    fn a_reading_at_the_deadline_does_not_count() {
        let mut c = capture(1);
        assert!(matches!(c.feed(&w("1.0", true), 1000), CaptureOutcome::TimedOut { last: None }));
    }

    #[test]
    fn required_zero_behaves_as_one() {
        let mut c = capture(0);
        assert!(matches!(c.feed(&w("2.0", true), 1), CaptureOutcome::Captured(_)));
    }

    proptest! {
        #[test]
        fn captured_weight_was_seen_required_times_in_a_row(
            readings in prop::collection::vec((0u8..3, any::<bool>()), 0..40),
            required in 1usize..5,
        ) {
            let mut c = StableCapture::start(StableCaptureConfig { required, timeout_ms: 10_000 }, 0);
            let mut run: Vec<(u8, bool)> = Vec::new();
            for (i, (v, stable)) in readings.into_iter().enumerate() {
                run.push((v, stable));
                let r = w(&v.to_string(), stable);
                if let CaptureOutcome::Captured(got) = c.feed(&r, i as u64) {
                    let tail = &run[run.len() - required..];
                    prop_assert!(tail.iter().all(|&(x, s)| s && x == v));
                    prop_assert_eq!(got.value, v.to_string());
                    break;
                }
            }
        }
    }
}
