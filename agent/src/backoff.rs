//! The growing delays between attempts, for everything that retries: a sink's deliveries (from its
//! `retry` settings) and every MQTT connection's reconnects. Exponential from `initial`, capped at
//! `max`, each delay drawn uniformly from zero to the current step ("full jitter"), so gateways that
//! lost the same uplink or broker do not all come back in the same second. A leaf.

use std::time::Duration;

use backon::{BackoffBuilder, ExponentialBuilder};

/// The shortest delay handed out: a zero draw must not turn a retry loop into a busy loop.
const FLOOR: Duration = Duration::from_millis(10);

#[derive(Debug)]
pub(crate) struct Backoff {
    initial: Duration,
    max: Duration,
    steps: backon::ExponentialBackoff,
}

impl Backoff {
    pub(crate) fn new(initial: Duration, max: Duration) -> Self {
        Self { initial, max, steps: Self::steps(initial, max) }
    }

    fn steps(initial: Duration, max: Duration) -> backon::ExponentialBackoff {
        ExponentialBuilder::default()
            .with_min_delay(initial)
            .with_max_delay(max)
            .with_factor(2.0)
            .without_max_times()
            .build()
    }

    /// The delay before the next attempt.
    pub(crate) fn next_delay(&mut self) -> Duration {
        let step = self.steps.next().unwrap_or(self.max);
        let millis = step.as_millis().max(1) as u64;
        Duration::from_millis(fastrand::u64(0..=millis)).max(FLOOR)
    }

    /// Back to the first step, after a success.
    pub(crate) fn reset(&mut self) {
        self.steps = Self::steps(self.initial, self.max);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn full_jitter_stays_within_the_growing_cap() {
        let mut s = Backoff::new(Duration::from_millis(100), Duration::from_secs(2));
        let caps = [100, 200, 400, 800, 1600, 2000, 2000, 2000];
        for cap in caps {
            let d = s.next_delay().as_millis() as u64;
            assert!(d <= cap.max(10), "delay {d} ms above the cap {cap} ms");
        }
        s.reset();
        assert!(s.next_delay() <= Duration::from_millis(100));
        // Full jitter: over many draws the delays spread over the whole range.
        let draws: Vec<u64> = (0..200)
            .map(|_| {
                s.reset();
                s.next_delay().as_millis() as u64
            })
            .collect();
        assert!(draws.iter().any(|&d| d < 40) && draws.iter().any(|&d| d > 60), "{draws:?}");
    }
}
