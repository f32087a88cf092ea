//! One dispatcher per sink: read a batch after the sink's cursor, hand it to the sink, and record
//! the outcome per event — delivered, dead-lettered with the reason, retried later, or paused —
//! in the store. A dispatcher owns only its own sink's progress, so a sink that is down never holds
//! another back.
//!
//! Order: one batch is in flight per sink and batches are read in `seq` order, so every partition's
//! events reach the sink in store order. A retry resends from the first unsettled event.

use std::time::Duration;

use backon::{BackoffBuilder, ExponentialBuilder};
use tracing::{debug, info, warn};

use crate::event::Kind;
use crate::shutdown::Shutdown;
use crate::sinks::http::config::RateLimit;
use crate::sinks::{BatchConfig, Outcome, RetryConfig, Sink, SinkConfig};
use crate::store::{BatchItem, NewDeadLetter, SinkFailure, SinkProgress, Store, StoreError, StoreReader};
use crate::timestamp::Timestamp;

pub struct Dispatcher {
    name: String,
    sink: Sink,
    store: Store,
    reader: StoreReader,
    batch: BatchConfig,
    retry: RetryConfig,
    kinds: Option<Vec<Kind>>,
    pace: Pace,
}

/// Spaces deliveries so that neither requests/s nor events/s exceed the sink's rate limit.
#[derive(Debug)]
struct Pace {
    limit: RateLimit,
    next: tokio::time::Instant,
}

impl Pace {
    fn new(limit: RateLimit) -> Self {
        Self { limit, next: tokio::time::Instant::now() }
    }

    /// Waits for the next slot, then books it for a batch of `events`.
    async fn wait_for(&mut self, events: usize, shutdown: &mut Shutdown) -> bool {
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

impl std::fmt::Debug for Dispatcher {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Dispatcher").field("name", &self.name).finish_non_exhaustive()
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

/// A dispatcher's pacing between batches.
#[derive(Debug)]
struct Flow {
    schedule: RetrySchedule,
    /// Consecutive failed attempts.
    attempts: u32,
    /// Events per batch: lowered while a batch the receiver found too large goes out in halves.
    limit: usize,
    /// The last seq of that batch.
    split_until: Option<u64>,
    /// Events delivered since the last progress line in the log.
    delivered_since_log: u64,
    last_log: std::time::Instant,
}

/// How often a busy sink says how it is doing.
const PROGRESS_LOG_EVERY: Duration = Duration::from_secs(10);

impl Dispatcher {
    /// A dispatcher for `config`'s sink, as built for `gateway`.
    pub fn for_sink(config: &SinkConfig, gateway: &str, store: Store) -> Result<Self, StoreError> {
        let mut d = Self::new(
            config.name().to_string(),
            Sink::build(config, gateway),
            store,
            config.batch().clone(),
            config.retry().clone(),
        )?;
        d.kinds = config.kinds().map(<[Kind]>::to_vec);
        d.pace = Pace::new(config.rate_limit());
        Ok(d)
    }

    pub fn new(
        name: String,
        sink: Sink,
        store: Store,
        batch: BatchConfig,
        retry: RetryConfig,
    ) -> Result<Self, StoreError> {
        let reader = store.reader()?;
        Ok(Self { name, sink, store, reader, batch, retry, kinds: None, pace: Pace::new(RateLimit::default()) })
    }

    /// Delivers until shutdown. Returns an error only if the store itself fails.
    pub async fn run(mut self, mut shutdown: Shutdown) -> Result<(), StoreError> {
        let mut flow = Flow {
            schedule: RetrySchedule::new(self.retry.clone()),
            attempts: 0,
            limit: self.batch.max_events,
            split_until: None,
            delivered_since_log: 0,
            last_log: std::time::Instant::now(),
        };
        let mut new_events = self.store.subscribe();
        info!(sink = %self.name, "Sink started.");
        while !shutdown.is_triggered() {
            shutdown.beat();
            let limit = flow.limit;
            let Some((cursor, batch)) = self.next_batch(limit).await? else {
                // Nothing to do: wait for the writer to commit new events.
                new_events.borrow_and_update();
                tokio::select! {
                    _ = new_events.changed() => {}
                    _ = shutdown.wait() => break,
                    // Redeliveries and operator replays do not notify; look again now and then.
                    _ = tokio::time::sleep(Duration::from_secs(2)) => {}
                }
                continue;
            };
            let (cursor, batch) =
                if batch.len() < limit && !self.batch.linger.0.is_zero() && batch[0].redelivery.is_none() {
                    // Give a small batch a moment to fill, unless shutdown comes first.
                    if !shutdown.sleep(self.batch.linger.0).await {
                        break;
                    }
                    match self.next_batch(limit).await? {
                        Some(fuller) => fuller,
                        None => continue,
                    }
                } else {
                    (cursor, batch)
                };
            self.deliver_one(cursor, batch, &mut flow, &mut shutdown).await?;
        }
        info!(sink = %self.name, "Sink stopped.");
        Ok(())
    }

    /// The next batch: operator redeliveries first, then the main stream after the cursor. Events
    /// of kinds this sink does not take are stepped over (recorded as settled) on the way.
    async fn next_batch(&self, limit: usize) -> Result<Option<(u64, Vec<BatchItem>)>, StoreError> {
        let name = self.name.clone();
        let max_bytes = self.batch.max_bytes.0 as usize;
        let kinds = self.kinds.clone();
        loop {
            let name = name.clone();
            let kinds = kinds.clone();
            let (cursor, batch, scanned_to) = self
                .reader
                .run(move |r| {
                    let Some(state) = r.sink_state(&name)? else {
                        return Err(StoreError::Setup(format!("sink `{name}` is not registered in the store")));
                    };
                    let redeliveries = r.redeliveries(&name, limit)?;
                    if !redeliveries.is_empty() {
                        return Ok((state.cursor, redeliveries, state.cursor));
                    }
                    let (batch, scanned_to) = r.batch_after(state.cursor, limit, max_bytes, kinds.as_deref())?;
                    Ok((state.cursor, batch, scanned_to))
                })
                .await?;
            if !batch.is_empty() {
                return Ok(Some((cursor, batch)));
            }
            if scanned_to <= cursor {
                return Ok(None);
            }
            // Only other kinds in this stretch: move past them and look further.
            let skip = SinkProgress {
                sink: self.name.clone(),
                expected_cursor: cursor,
                new_cursor: scanned_to,
                ..Default::default()
            };
            self.record(skip).await?;
        }
    }

    async fn deliver_one(
        &mut self,
        cursor: u64,
        batch: Vec<BatchItem>,
        flow: &mut Flow,
        shutdown: &mut Shutdown,
    ) -> Result<(), StoreError> {
        let Flow { schedule, attempts, limit, split_until, delivered_since_log, last_log } = flow;
        if !self.pace.wait_for(batch.len(), shutdown).await {
            return Ok(());
        }
        // A delivery in hand is finished even when asked to stop (it is bounded by the sink's
        // timeouts), so a reload or a clean stop does not send the batch twice.
        let outcome = self.sink.deliver(&batch).await;
        match outcome {
            Outcome::Accepted { rejected, retry_from } => {
                let settled = retry_from.unwrap_or(batch.len()).min(batch.len());
                let progress = self.progress(
                    cursor,
                    &batch[..settled],
                    rejected,
                    retry_from.map(|_| "the receiver asked to retry part of the batch".to_string()),
                );
                *delivered_since_log += progress.delivered;
                self.record(progress).await?;
                if last_log.elapsed() >= PROGRESS_LOG_EVERY && *delivered_since_log > 0 {
                    info!(
                        sink = %self.name,
                        delivered = *delivered_since_log,
                        seconds = last_log.elapsed().as_secs(),
                        "Delivering."
                    );
                    *delivered_since_log = 0;
                    *last_log = std::time::Instant::now();
                }
                // Back to full batches once the events of a split batch are all through.
                if split_until.is_none_or(|last| batch[settled.saturating_sub(1)].seq >= last) {
                    *split_until = None;
                    *limit = self.batch.max_events;
                }
                if retry_from.is_some() {
                    *attempts += 1;
                    let delay = schedule.next_delay();
                    warn!(sink = %self.name, retry_in_ms = delay.as_millis() as u64, "Part of a batch must be retried.");
                    shutdown.sleep(delay).await;
                } else {
                    if *attempts > 0 {
                        info!(sink = %self.name, after_attempts = *attempts, "Delivery recovered.");
                    }
                    *attempts = 0;
                    schedule.reset();
                }
            }
            Outcome::Retry { error, after, unreachable } => {
                *attempts += 1;
                // The receiver's Retry-After wins over our own schedule (which still advances).
                let ours = schedule.next_delay();
                let delay = after.map_or(ours, |a| a.min(self.retry.max.0));
                warn!(sink = %self.name, %error, attempt = *attempts, retry_in_ms = delay.as_millis() as u64, "Delivery failed; retrying.");
                self.fail(error, *attempts, delay, false).await?;
                if unreachable {
                    self.wait_for_return(delay, shutdown).await;
                } else {
                    shutdown.sleep(delay).await;
                }
            }
            Outcome::Pause { error } => {
                *attempts += 1;
                let delay = self.retry.paused_interval.0;
                tracing::error!(sink = %self.name, %error, retry_in_s = delay.as_secs(), "The sink is paused: fix its credentials or settings, then reload dockhand. Nothing is dead-lettered.");
                self.fail(error, *attempts, delay, true).await?;
                shutdown.sleep(delay).await;
            }
            Outcome::TooLarge { error } if batch.len() > 1 => {
                *limit = (batch.len() / 2).max(1);
                *split_until = Some(split_until.unwrap_or(0).max(batch[batch.len() - 1].seq));
                warn!(sink = %self.name, %error, events = batch.len(), "The receiver refused the batch as too large; splitting it.");
            }
            Outcome::TooLarge { error } => {
                let progress =
                    self.progress(cursor, &batch, vec![(0, format!("too large for the receiver: {error}"))], None);
                self.record(progress).await?;
                if split_until.is_none_or(|last| batch[0].seq >= last) {
                    *split_until = None;
                    *limit = self.batch.max_events;
                }
            }
        }
        Ok(())
    }

    /// Sleeps out `delay`, but looks every half second whether the destination answers again, so
    /// a backlog starts draining within a second of it coming back, however long the backoff grew.
    async fn wait_for_return(&self, delay: Duration, shutdown: &mut Shutdown) {
        let until = tokio::time::Instant::now() + delay;
        while tokio::time::Instant::now() < until {
            let step = (until - tokio::time::Instant::now()).min(Duration::from_millis(500));
            if !shutdown.sleep(step).await {
                return;
            }
            if self.sink.probe().await {
                info!(sink = %self.name, "The destination answers again; retrying now.");
                return;
            }
        }
    }

    fn progress(
        &self,
        cursor: u64,
        settled: &[BatchItem],
        rejected: Vec<(usize, String)>,
        retry_error: Option<String>,
    ) -> SinkProgress {
        let dead_letters: Vec<NewDeadLetter> = rejected
            .into_iter()
            .filter(|(i, _)| *i < settled.len())
            .map(|(i, reason)| NewDeadLetter {
                sink: Some(self.name.clone()),
                event_id: Some(settled[i].id),
                event_seq: Some(settled[i].seq),
                origin: format!("sink:{}", self.name),
                reason,
                body: settled[i].body.clone().into_bytes(),
            })
            .collect();
        let main: Vec<&BatchItem> = settled.iter().filter(|b| b.redelivery.is_none()).collect();
        SinkProgress {
            sink: self.name.clone(),
            expected_cursor: cursor,
            new_cursor: main.last().map_or(cursor, |b| b.seq),
            delivered: (settled.len() - dead_letters.len()) as u64,
            redeliveries_done: settled.iter().filter_map(|b| b.redelivery).collect(),
            dead_letters,
            retry_error,
        }
    }

    /// Records a delivery, retrying while the store cannot write (a full disk): the sink waits
    /// rather than stopping, and if dockhand stops first the batch is simply delivered again
    /// (receivers dedup by id). `Err` only when the store closed.
    async fn record(&self, progress: SinkProgress) -> Result<(), StoreError> {
        crate::store::until_stored("the sink waits until its progress is recorded", || {
            self.store.record_progress(progress.clone())
        })
        .await
        .ok_or(StoreError::Closed)
    }

    /// Records a failed attempt for `status`. Losing that note to a full disk is harmless (the
    /// sink retries anyway), so only a closed store ends the sink.
    async fn fail(&self, error: String, attempts: u32, delay: Duration, paused: bool) -> Result<(), StoreError> {
        let next_attempt_at = Timestamp::now().saturating_add_millis(delay.as_millis() as u64);
        match self
            .store
            .record_failure(SinkFailure { sink: self.name.clone(), error, attempts, next_attempt_at, paused })
            .await
        {
            Err(StoreError::Closed) => Err(StoreError::Closed),
            Err(e) => {
                debug!(sink = %self.name, error = %e, "Cannot record the failed attempt; retrying the delivery anyway.");
                Ok(())
            }
            Ok(()) => Ok(()),
        }
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use std::collections::VecDeque;
    use std::sync::{Arc, Mutex};

    use super::*;
    use crate::bench::sample_event;
    use crate::shutdown::ShutdownSwitch;
    use crate::store::{Admin, StoreOptions};
    use crate::units::HumanDuration;

    /// A sink that answers from a script and records what it was sent.
    #[derive(Debug, Clone, Default)]
    pub struct ScriptedSink {
        pub script: Arc<Mutex<VecDeque<Outcome>>>,
        pub received: Arc<Mutex<Vec<Vec<u64>>>>,
    }

    impl ScriptedSink {
        pub fn deliver(&mut self, batch: &[BatchItem]) -> Outcome {
            self.received.lock().unwrap().push(batch.iter().map(|b| b.seq).collect());
            self.script.lock().unwrap().pop_front().unwrap_or_else(Outcome::delivered)
        }
    }

    struct Harness {
        _dir: tempfile::TempDir,
        store: Store,
        sink: ScriptedSink,
        rt: tokio::runtime::Runtime,
    }

    fn harness(events: usize, script: Vec<Outcome>) -> Harness {
        let dir = tempfile::tempdir().unwrap();
        let (store, _) = Store::open(StoreOptions::new(dir.path().join("q.db"))).unwrap();
        let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap();
        rt.block_on(async {
            store.register_sinks(vec!["s".into()]).await.unwrap();
            let evs = (0..events).map(|i| sample_event(&format!("d{}", i % 2), 100)).collect();
            store.append(evs).await.unwrap();
        });
        let sink = ScriptedSink { script: Arc::new(Mutex::new(script.into())), ..Default::default() };
        Harness { _dir: dir, store, sink, rt }
    }

    impl Harness {
        /// Runs the dispatcher until `done` holds for the sink's row, then stops it.
        fn run_until(&self, max_events: usize, done: impl Fn(&crate::store::SinkState) -> bool) {
            let batch = BatchConfig { max_events, linger: HumanDuration(Duration::ZERO), ..Default::default() };
            let retry = RetryConfig {
                initial: HumanDuration(Duration::from_millis(20)),
                max: HumanDuration(Duration::from_millis(50)),
                paused_interval: HumanDuration(Duration::from_millis(50)),
            };
            let d = Dispatcher::new("s".into(), Sink::Scripted(self.sink.clone()), self.store.clone(), batch, retry)
                .unwrap();
            let (switch, shutdown) = ShutdownSwitch::new();
            let reader = self.store.reader().unwrap();
            self.rt.block_on(async {
                let task = tokio::spawn(d.run(shutdown));
                let deadline = std::time::Instant::now() + Duration::from_secs(10);
                while !done(&reader.sink_state("s").unwrap().unwrap()) {
                    assert!(std::time::Instant::now() < deadline, "timed out: {:?}", reader.sink_state("s"));
                    tokio::time::sleep(Duration::from_millis(10)).await;
                }
                switch.trigger();
                task.await.unwrap().unwrap();
            });
        }

        fn sent(&self) -> Vec<Vec<u64>> {
            self.sink.received.lock().unwrap().clone()
        }
    }

    #[test]
    fn rejected_events_are_dead_lettered_with_the_reason_and_the_rest_delivered() {
        let h =
            harness(5, vec![Outcome::Accepted { rejected: vec![(1, "unknown product 123".into())], retry_from: None }]);
        h.run_until(10, |s| s.cursor == 5);
        let state = h.store.reader().unwrap().sink_state("s").unwrap().unwrap();
        assert_eq!((state.delivered, state.dead_lettered), (4, 1));
        let dl = Admin::open(h.store.path()).unwrap().dead_letters(false, 10).unwrap();
        assert_eq!(dl.len(), 1);
        assert_eq!(dl[0].event_seq, Some(2));
        assert_eq!(dl[0].reason, "unknown product 123");
        assert!(String::from_utf8_lossy(&dl[0].body).contains("\"seq\":2"));
    }

    #[test]
    fn a_partial_retry_settles_the_prefix_and_resends_from_the_first_retry() {
        let h = harness(6, vec![Outcome::Accepted { rejected: vec![], retry_from: Some(2) }]);
        h.run_until(10, |s| s.cursor == 6);
        assert_eq!(h.sent(), vec![vec![1, 2, 3, 4, 5, 6], vec![3, 4, 5, 6]]);
        let state = h.store.reader().unwrap().sink_state("s").unwrap().unwrap();
        assert_eq!((state.delivered, state.retried), (6, 1));
    }

    #[test]
    fn transient_failures_retry_the_same_batch_in_order() {
        let retry = || Outcome::Retry { error: "503".into(), after: None, unreachable: false };
        let h = harness(4, vec![retry(), retry(), retry()]);
        h.run_until(2, |s| s.cursor == 4);
        assert_eq!(h.sent(), vec![vec![1, 2], vec![1, 2], vec![1, 2], vec![1, 2], vec![3, 4]]);
        let state = h.store.reader().unwrap().sink_state("s").unwrap().unwrap();
        assert_eq!((state.retried, state.attempts, state.dead_lettered), (3, 0, 0));
        assert_eq!(state.last_error.as_deref(), Some("503"));
    }

    #[test]
    fn a_pause_dead_letters_nothing_and_shows_the_reason_until_it_recovers() {
        let h = harness(3, vec![Outcome::Pause { error: "401: bad token".into() }]);
        h.run_until(10, |s| s.paused.is_some());
        let state = h.store.reader().unwrap().sink_state("s").unwrap().unwrap();
        assert_eq!(state.paused.as_deref(), Some("401: bad token"));
        assert_eq!((state.cursor, state.dead_lettered), (0, 0));
        h.run_until(10, |s| s.cursor == 3);
        let state = h.store.reader().unwrap().sink_state("s").unwrap().unwrap();
        assert_eq!(state.paused, None);
    }

    #[test]
    fn too_large_splits_the_batch_and_dead_letters_a_single_oversized_event() {
        let big = || Outcome::TooLarge { error: "413".into() };
        let h = harness(4, vec![big(), big(), Outcome::delivered(), big()]);
        h.run_until(4, |s| s.cursor == 4);
        // 4 → halves of 2 → [1, 2] too large → 1 at a time until seq 4 is through.
        assert_eq!(h.sent(), vec![vec![1, 2, 3, 4], vec![1, 2], vec![1], vec![2], vec![3], vec![4]]);
        let state = h.store.reader().unwrap().sink_state("s").unwrap().unwrap();
        assert_eq!((state.delivered, state.dead_lettered), (3, 1));
    }

    #[test]
    fn redeliveries_go_first_and_leave_the_cursor_alone() {
        let h = harness(3, vec![Outcome::Accepted { rejected: vec![(0, "bad".into())], retry_from: None }]);
        h.run_until(1, |s| s.cursor == 3);
        let mut admin = Admin::open(h.store.path()).unwrap();
        assert_eq!(admin.retry_dead_letters(None).unwrap().queued, 1);
        h.run_until(10, |s| s.delivered == 3);
        assert_eq!(h.sent(), vec![vec![1], vec![2], vec![3], vec![1]]);
        assert!(h.store.reader().unwrap().redeliveries("s", 10).unwrap().is_empty());
        assert_eq!(h.store.reader().unwrap().sink_state("s").unwrap().unwrap().cursor, 3);
    }

    #[test]
    fn full_jitter_stays_within_the_growing_cap() {
        let config = RetryConfig {
            initial: HumanDuration(Duration::from_millis(100)),
            max: HumanDuration(Duration::from_secs(2)),
            paused_interval: HumanDuration(Duration::from_secs(1)),
        };
        let mut s = RetrySchedule::new(config);
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
