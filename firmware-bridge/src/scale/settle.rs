//! When a scale "settles on a new weight": the event-worthy moment for a scale that is not part
//! of a station. [`SettleDetector`] is fed every reading and answers with a weight when the scale
//! has shown the same stable weight `required` times in a row and that weight differs from the
//! last one it settled on. Settling on zero re-arms the detector without answering, so putting
//! the same parcel on twice gives two weights, and leaving it on gives one.
//!
//! Pure: a reading in, maybe a weight out.

use super::{ScaleReading, Weight};
use crate::decimal;

/// See the module documentation.
#[derive(Debug, Clone)]
pub struct SettleDetector {
    required: usize,
    candidate: Option<Weight>,
    count: usize,
    settled: Option<Weight>,
}

fn same(a: &Weight, b: &Weight) -> bool {
    a.unit == b.unit && a.net == b.net && decimal::numeric_eq(&a.value, &b.value)
}

fn is_zero(w: &Weight) -> bool {
    w.value.bytes().all(|b| matches!(b, b'0' | b'.' | b'-' | b'+'))
}

impl SettleDetector {
    /// A detector needing `required` (at least 1) equal stable readings.
    pub fn new(required: usize) -> SettleDetector {
        SettleDetector { required: required.max(1), candidate: None, count: 0, settled: None }
    }

    /// Feeds one reading; returns the weight the scale just settled on, if it is a new one.
    pub fn feed(&mut self, reading: &ScaleReading) -> Option<Weight> {
        let ScaleReading::Weight(w) = reading else {
            self.candidate = None;
            self.count = 0;
            return None;
        };
        if !w.stable {
            self.candidate = None;
            self.count = 0;
            return None;
        }
        match &self.candidate {
            Some(c) if same(c, w) => self.count += 1,
            _ => {
                self.candidate = Some(w.clone());
                self.count = 1;
            }
        }
        if self.count != self.required {
            return None;
        }
        if self.settled.as_ref().is_some_and(|s| same(s, w)) {
            return None;
        }
        self.settled = Some(w.clone());
        (!is_zero(w)).then(|| w.clone())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::scale::{ScaleCondition, WeightUnit};

    fn stable(v: &str) -> ScaleReading {
        ScaleReading::Weight(Weight::new(v.into(), WeightUnit::Kg, true))
    }

    fn moving(v: &str) -> ScaleReading {
        ScaleReading::Weight(Weight::new(v.into(), WeightUnit::Kg, false))
    }

    fn run(d: &mut SettleDetector, readings: &[ScaleReading]) -> Vec<String> {
        readings.iter().filter_map(|r| d.feed(r)).map(|w| w.value).collect()
    }

    #[test]
    fn one_weight_per_settled_load() {
        let mut d = SettleDetector::new(3);
        let seq = [
            stable("0.000"),
            stable("0.000"),
            stable("0.000"),
            moving("0.800"),
            moving("1.240"),
            stable("1.250"),
            stable("1.250"),
            stable("1.25"),
            stable("1.250"),
            stable("1.250"),
        ];
        assert_eq!(run(&mut d, &seq), vec!["1.25"]);
    }

    #[test]
    fn the_same_load_again_after_zero_counts_again() {
        let mut d = SettleDetector::new(2);
        let seq =
            [stable("2.0"), stable("2.0"), moving("0.5"), stable("0.0"), stable("0.0"), stable("2.0"), stable("2.0")];
        assert_eq!(run(&mut d, &seq), vec!["2.0", "2.0"]);
    }

    #[test]
    fn motion_and_conditions_restart_the_count() {
        let mut d = SettleDetector::new(2);
        let seq = [
            stable("3.0"),
            ScaleReading::Condition(ScaleCondition::Motion),
            stable("3.0"),
            ScaleReading::Condition(ScaleCondition::Overload),
            stable("3.0"),
            stable("3.0"),
        ];
        assert_eq!(run(&mut d, &seq), vec!["3.0"]);
    }

    #[test]
    fn a_different_load_without_going_to_zero_counts() {
        let mut d = SettleDetector::new(1);
        assert_eq!(run(&mut d, &[stable("1.0"), stable("1.0"), stable("1.5")]), vec!["1.0", "1.5"]);
    }
}
