//! The timing of a dispatcher's attempts: the rate limit between batches ([`Pace`]), the
//! retry backoff with full jitter ([`RetrySchedule`], also used by the MQTT source to reconnect),
//! and the spacing of resume probes while a sink backs off ([`probe_gap`]).

use std::time::Duration;

use backon::{BackoffBuilder, ExponentialBuilder};

use crate::shutdown::Shutdown;
use crate::sinks::RetryConfig;
use crate::sinks::http::config::RateLimit;

/// Resume probes are this far apart at least, start to start (contracts.md §3: at most one a second).
pub(crate) const PROBE_EVERY: Duration = Duration::from_secs(1);
/// Plus up to this much uniform jitter, so gateways that lost the same receiver do not probe it in
/// step when it recovers.
pub(crate) const PROBE_JITTER: Duration = Duration::from_millis(400);

/// The time from one probe's start to the next: 1.0–1.4 s, uniformly.
pub(crate) fn probe_gap() -> Duration {
    PROBE_EVERY + Duration::from_millis(fastrand::u64(0..=PROBE_JITTER.as_millis() as u64))
}

/// Spaces deliveries so that neither requests/s nor events/s exceed the sink's rate limit.
#[derive(Debug)]
pub(crate) struct Pace {
    limit: RateLimit,
    next: tokio::time::Instant,
}

impl Pace {
    pub fn new(limit: RateLimit) -> Self {
        Self { limit, next: tokio::time::Instant::now() }
    }

    /// Waits for the next slot, then books it for a batch of `events`.
    pub async fn wait_for(&mut self, events: usize, shutdown: &mut Shutdown) -> bool {
        let now = tokio::time::Instant::now();
        if self.next > now && !shutdown.sleep(self.next - now).await {
            return false;
        }
        let per_request = self.limit.requests_per_second.map_or(0.0, |r| 1.0 / r);
        let per_events = self.limit.events_per_second.map_or(0.0, |r| events as f64 / r);
        self.next = tokio::time::Instant::now() + Duration::from_secs_f64(per_request.max(per_events));
        true
    }
}

/// The growing delays between attempts: exponential from `initial`, capped at `max`, each one
/// drawn uniformly from zero to the current step ("full jitter"), so gateways that lost the same
/// uplink do not all come back in the same second.
#[derive(Debug)]
pub struct RetrySchedule {
    config: RetryConfig,
    steps: backon::ExponentialBackoff,
}

impl RetrySchedule {
    pub fn new(config: RetryConfig) -> Self {
        let steps = Self::steps(&config);
        Self { config, steps }
    }

    fn steps(c: &RetryConfig) -> backon::ExponentialBackoff {
        ExponentialBuilder::default()
            .with_min_delay(c.initial.0)
            .with_max_delay(c.max.0)
            .with_factor(2.0)
            .without_max_times()
            .build()
    }

    /// The delay before the next attempt.
    pub fn next_delay(&mut self) -> Duration {
        let step = self.steps.next().unwrap_or(self.config.max.0);
        let millis = step.as_millis().max(1) as u64;
        Duration::from_millis(fastrand::u64(0..=millis)).max(Duration::from_millis(10))
    }

    /// Back to the first step, after a success.
    pub fn reset(&mut self) {
        self.steps = Self::steps(&self.config);
    }
}
