//! The timing of a dispatcher's attempts: the rate limit between batches ([`Pace`]) and the
//! spacing of resume probes while a sink backs off ([`probe_gap`]). The retry backoff itself is
//! [`crate::backoff::Backoff`], shared with the MQTT reconnects.

use std::time::Duration;

use crate::shutdown::Shutdown;
use crate::sinks::RateLimit;

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
    pub(crate) fn new(limit: RateLimit) -> Self {
        Self { limit, next: tokio::time::Instant::now() }
    }

    /// Waits for the next slot, then books it for a batch of `events`.
    pub(crate) async fn wait_for(&mut self, events: usize, shutdown: &mut Shutdown) -> bool {
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
