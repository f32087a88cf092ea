//! One dispatcher per sink: form a batch after the sink's cursor, hand it to the sink, and record
//! the outcome per event — delivered, dead-lettered with the reason, retried later, or paused —
//! in the store. A dispatcher owns only its own sink's progress, so a sink that is down never holds
//! another back.
//!
//! Order: one batch is in flight per sink and batches are read in `seq` order, so every partition's
//! events reach the sink in store order.
//!
//! Batches ([`batches`]): a batch is formed once and resent unchanged — same events, same key —
//! until it is settled; only a 413 splits it into halves with derived keys. The batch of a failed
//! attempt is recorded in the store, so a restart resends it as it was. Sizes ([`sizing`]) are
//! learned from 413 answers. Timing ([`pacing`]): the rate limit, the retry backoff, and the resume
//! probes sent while a long backoff runs, so delivery resumes within about a second of the
//! receiver answering again. Progress ([`recording`]): each accepted batch's outcome is committed
//! while the next batches are sent, in order.

pub(crate) mod batches;
mod pacing;
mod recording;
mod sizing;

use std::collections::VecDeque;
use std::time::{Duration, Instant};

use tracing::{debug, info, warn};

use self::batches::{Pending, natural_key};
use self::pacing::Pace;
use self::recording::Recordings;
use self::sizing::Sizing;
use crate::backoff::Backoff;
use crate::event::Kind;
use crate::shutdown::Shutdown;
use crate::sinks::{Batch, BatchConfig, Encoded, Encoder, Outcome, RateLimit, RetryConfig, Sink, SinkConfig};
use crate::store::{BatchItem, FormedBatch, NewDeadLetter, SinkFailure, SinkProgress, Store, StoreError, StoreReader};
use crate::task::TaskError;
use crate::timestamp::Timestamp;

pub(crate) struct Dispatcher {
    name: String,
    /// The gateway id, the first part of every batch key.
    gateway: String,
    sink: Sink,
    store: Store,
    reader: StoreReader,
    batch: BatchConfig,
    retry: RetryConfig,
    kinds: Option<Vec<Kind>>,
    pace: Pace,
}

impl std::fmt::Debug for Dispatcher {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Dispatcher").field("name", &self.name).finish_non_exhaustive()
    }
}

/// A dispatcher's state between batches.
#[derive(Debug)]
struct Flow {
    schedule: Backoff,
    /// Consecutive failed attempts.
    attempts: u32,
    sizing: Sizing,
    /// Batches formed and not yet settled, in order: one, or the halves of a split batch.
    queue: VecDeque<Pending>,
    /// The head's request, encoded ahead while the batch before it was in flight.
    encoded: Option<Encoded>,
    /// The progress commits of the last accepted batches, running while the next ones are sent
    /// (at most [`COMMITS_BEHIND`] when an answer is handled); all are awaited before anything
    /// else is recorded or read from the sink's row.
    recording: Recordings,
    /// Events delivered since the last progress line in the log.
    delivered_since_log: u64,
    last_log: Instant,
}

/// What the store holds for a sink next.
enum Next {
    /// The store has no row for this sink (it was not registered before the sink started).
    Unregistered,
    /// A batch to deliver; `fresh`: newly formed from the main stream (it may linger to fill).
    Batch {
        pending: Pending,
        fresh: bool,
    },
    /// Only events of kinds the sink does not take, up to `to`: step over them.
    Skip {
        cursor: u64,
        to: u64,
    },
    Nothing,
}

/// What to read and encode ahead: the full batch after `after`.
struct Ahead {
    encoder: Encoder,
    after: u64,
    max_events: usize,
    max_bytes: usize,
}

/// The next full batch of the main stream after `ahead.after`, encoded on a blocking thread.
/// `None` when there is no full batch yet (the normal path forms it, lingering if configured).
async fn read_ahead(
    reader: &StoreReader,
    name: &str,
    gateway: &str,
    kinds: Option<Vec<Kind>>,
    ahead: Option<Ahead>,
) -> Option<(Pending, Option<Encoded>)> {
    let Ahead { encoder, after, max_events, max_bytes } = ahead?;
    let (items, _) = reader.run(move |r| r.batch_after(after, max_events, max_bytes, kinds.as_deref())).await.ok()?;
    if items.len() < max_events {
        return None;
    }
    let pending = Pending { batch: Batch { key: natural_key(gateway, name, &items), items }, after, sent: false };
    tokio::task::spawn_blocking(move || {
        let encoded = encoder.encode(&pending.batch);
        (pending, encoded)
    })
    .await
    .ok()
}

/// Progress commits of accepted batches that may still be running when the next batch's answer
/// is handled: the previous batch's. With one, a commit slower than a round trip (the store's
/// writer is busy, the disk is slow) would still make the receiver wait; with two it has a
/// whole further round trip. A crash then sends at most the last two accepted batches again.
const COMMITS_BEHIND: usize = 1;

/// How often a busy sink says how it is doing.
const PROGRESS_LOG_EVERY: Duration = Duration::from_secs(10);

impl Dispatcher {
    /// A dispatcher for `config`'s sink, as built for `gateway`.
    pub(crate) fn for_sink(config: &SinkConfig, gateway: &str, site: &str, store: Store) -> Result<Self, StoreError> {
        let mut d = Self::new(
            config.name().to_string(),
            gateway.to_string(),
            Sink::build(config, gateway, site),
            store.clone(),
            config.batch().clone(),
            config.retry().clone(),
        )?;
        d.kinds = config.kinds().map(<[Kind]>::to_vec);
        d.pace = Pace::new(config.rate_limit());
        d.sink.attach_store(&store)?;
        Ok(d)
    }

    pub(crate) fn new(
        name: String,
        gateway: String,
        sink: Sink,
        store: Store,
        batch: BatchConfig,
        retry: RetryConfig,
    ) -> Result<Self, StoreError> {
        let reader = store.reader()?;
        Ok(Self {
            name,
            gateway,
            sink,
            store,
            reader,
            batch,
            retry,
            kinds: None,
            pace: Pace::new(RateLimit::default()),
        })
    }

    /// Delivers until shutdown. Returns an error only if the store itself fails.
    pub(crate) async fn run(mut self, mut shutdown: Shutdown) -> Result<(), TaskError> {
        let mut flow = Flow {
            schedule: Backoff::new(self.retry.initial.0, self.retry.max.0),
            attempts: 0,
            sizing: Sizing::new(self.batch.max_events, self.batch.max_bytes.as_usize()),
            queue: VecDeque::new(),
            encoded: None,
            recording: Recordings::default(),
            delivered_since_log: 0,
            last_log: Instant::now(),
        };
        let mut new_events = self.store.subscribe();
        info!(sink = %self.name, "Sink started.");
        while !shutdown.is_triggered() {
            shutdown.beat();
            if flow.queue.is_empty() {
                flow.recording.settle().await?;
                let (max_events, max_bytes) = flow.sizing.limits(Instant::now());
                let pending = match self.next_batch(max_events, max_bytes).await? {
                    None => {
                        // Nothing to do: wait for the writer to commit new events.
                        new_events.borrow_and_update();
                        tokio::select! {
                            _ = new_events.changed() => {}
                            _ = shutdown.wait() => break,
                            // Redeliveries and operator replays do not notify; look again now and then.
                            _ = tokio::time::sleep(Duration::from_secs(2)) => {}
                        }
                        continue;
                    }
                    Some((pending, fresh)) => {
                        if fresh && pending.batch.items.len() < max_events && !self.batch.linger.0.is_zero() {
                            // Give a small batch a moment to fill (it is formed only afterwards,
                            // so the batch that is sent is the one that is kept).
                            if !shutdown.sleep(self.batch.linger.0).await {
                                break;
                            }
                            match self.next_batch(max_events, max_bytes).await? {
                                Some((fuller, _)) => fuller,
                                None => continue,
                            }
                        } else {
                            pending
                        }
                    }
                };
                flow.queue.push_back(pending);
            }
            // Halves formed before the receiver's limit was learned lower are split again before
            // they are sent; a batch the receiver has seen is split only by the receiver's 413.
            if let Some(head) = flow.queue.front()
                && !head.sent
                && flow.sizing.too_big(head.batch.items.len(), head.batch.bytes(), Instant::now())
            {
                let head = flow.queue.pop_front().expect("the queue has a head");
                let [first, second] = head.halves();
                flow.queue.push_front(second);
                flow.queue.push_front(first);
                continue;
            }
            self.deliver_head(&mut flow, &mut shutdown).await?;
        }
        flow.recording.settle().await?;
        info!(sink = %self.name, "Sink stopped.");
        Ok(())
    }

    /// The next batch: the one a failed attempt left (after a restart), then operator
    /// redeliveries, then the main stream after the cursor. Events of kinds this sink does not take
    /// are stepped over (recorded as settled) on the way. `true` with a newly formed main-stream
    /// batch.
    async fn next_batch(&self, max_events: usize, max_bytes: usize) -> Result<Option<(Pending, bool)>, TaskError> {
        loop {
            let name = self.name.clone();
            let gateway = self.gateway.clone();
            let kinds = self.kinds.clone();
            let next = self
                .reader
                .run(move |r| {
                    let Some(state) = r.sink_state(&name)? else {
                        return Ok(Next::Unregistered);
                    };
                    if let Some(formed) = r.formed_batch(&name)? {
                        let (items, _) = r.batch_after(
                            formed.after,
                            usize::try_from(formed.events).unwrap_or(usize::MAX),
                            usize::MAX,
                            kinds.as_deref(),
                        )?;
                        if let Some(pending) = Pending::restored(formed, items) {
                            return Ok(Next::Batch { pending, fresh: false });
                        }
                    }
                    let fresh = |items: Vec<BatchItem>, fresh: bool| Next::Batch {
                        pending: Pending {
                            batch: Batch { key: natural_key(&gateway, &name, &items), items },
                            after: state.cursor,
                            sent: false,
                        },
                        fresh,
                    };
                    let redeliveries = r.redeliveries(&name, max_events)?;
                    if !redeliveries.is_empty() {
                        return Ok(fresh(redeliveries, false));
                    }
                    let (items, scanned_to) = r.batch_after(state.cursor, max_events, max_bytes, kinds.as_deref())?;
                    if !items.is_empty() {
                        return Ok(fresh(items, true));
                    }
                    if scanned_to <= state.cursor {
                        return Ok(Next::Nothing);
                    }
                    Ok(Next::Skip { cursor: state.cursor, to: scanned_to })
                })
                .await?;
            match next {
                Next::Unregistered => {
                    return Err(TaskError::Setup(format!("sink `{}` is not registered in the store", self.name)));
                }
                Next::Batch { pending, fresh } => return Ok(Some((pending, fresh))),
                Next::Nothing => return Ok(None),
                Next::Skip { cursor, to } => {
                    // Only other kinds in this stretch: move past them and look further.
                    let skip = SinkProgress {
                        sink: self.name.clone(),
                        expected_cursor: cursor,
                        new_cursor: to,
                        ..Default::default()
                    };
                    self.record(skip).await?;
                }
            }
        }
    }

    /// Sends the batch at the head of the queue once and acts on the answer.
    async fn deliver_head(&mut self, flow: &mut Flow, shutdown: &mut Shutdown) -> Result<(), StoreError> {
        let alone = flow.queue.len() == 1;
        let Some(head) = flow.queue.front_mut() else { return Ok(()) };
        if !self.pace.wait_for(head.batch.items.len(), shutdown).await {
            return Ok(());
        }
        // A delivery in hand is finished even when asked to stop (it is bounded by the sink's
        // timeouts), so a reload or a clean stop does not send the batch twice.
        head.sent = true;
        let encoded = flow.encoded.take().filter(|e| e.key() == head.batch.key);
        // While a full batch of the main stream is in flight, the next one is read and encoded,
        // so that the store, gzip and the signature overlap the receiver's work instead of
        // adding to it. It is used only if this one is accepted whole; operator redeliveries
        // then wait for one more batch.
        let (limit, max_bytes) = flow.sizing.limits(Instant::now());
        let ahead =
            (alone && head.batch.items.len() >= limit && head.batch.items.iter().all(|i| i.redelivery.is_none()))
                .then(|| self.sink.encoder())
                .flatten()
                .map(|encoder| Ahead {
                    encoder,
                    after: head.batch.items[head.batch.items.len() - 1].seq,
                    max_events: limit,
                    max_bytes,
                });
        let (outcome, ahead, recorded) = tokio::join!(
            self.sink.deliver(&head.batch, encoded),
            read_ahead(&self.reader, &self.name, &self.gateway, self.kinds.clone(), ahead),
            flow.recording.settle_to(COMMITS_BEHIND),
        );
        recorded?;
        if !matches!(outcome, Outcome::Accepted { retry_from: None, .. }) {
            // Whatever is recorded next (a failure, a partial delivery) comes after them.
            flow.recording.settle().await?;
        }
        let (events, bytes) = (head.batch.items.len(), head.batch.bytes());
        match outcome {
            Outcome::Accepted { rejected, retry_from } => {
                let head = flow.queue.pop_front().expect("the queue has a head");
                let items = &head.batch.items;
                let settled = retry_from.unwrap_or(items.len()).min(items.len());
                let progress = self.progress(
                    head.after,
                    &items[..settled],
                    rejected,
                    retry_from.map(|_| "the receiver asked to retry part of the batch".to_string()),
                );
                flow.delivered_since_log += progress.delivered;
                if retry_from.is_none() {
                    // Committed while the next batches are sent (see `COMMITS_BEHIND`). A crash
                    // before the commit sends them again: receivers dedup by id.
                    flow.recording.start(&self.store, progress);
                } else {
                    self.record(progress).await?;
                }
                if flow.last_log.elapsed() >= PROGRESS_LOG_EVERY && flow.delivered_since_log > 0 {
                    let (delivered, seconds) = (flow.delivered_since_log, flow.last_log.elapsed().as_secs());
                    info!(
                        sink = %self.name,
                        delivered,
                        in_last_seconds = seconds,
                        "Delivering: {delivered} event(s) in the last {seconds} s."
                    );
                    flow.delivered_since_log = 0;
                    flow.last_log = Instant::now();
                }
                if retry_from.is_some() {
                    // What is left is a new batch (the receiver took the rest): formed again from
                    // the store, after the part just recorded.
                    flow.queue.clear();
                    flow.attempts += 1;
                    let delay = flow.schedule.next_delay();
                    warn!(sink = %self.name, retry_in_ms = delay.as_millis() as u64, "Part of a batch must be retried.");
                    shutdown.sleep(delay).await;
                } else {
                    if let Some((next, encoded)) = ahead
                        && flow.queue.is_empty()
                    {
                        flow.queue.push_back(next);
                        flow.encoded = encoded;
                    }
                    flow.sizing.accepted(events, bytes, Instant::now());
                    if flow.attempts > 0 {
                        info!(sink = %self.name, after_attempts = flow.attempts, "Delivery recovered.");
                    }
                    flow.attempts = 0;
                    flow.schedule.reset();
                }
            }
            Outcome::Retry { error, after, unreachable } => {
                flow.attempts += 1;
                // The receiver's Retry-After wins over our own schedule (which still advances).
                let ours = flow.schedule.next_delay();
                let delay = after.map_or(ours, |a| a.min(self.retry.max.0));
                warn!(sink = %self.name, %error, attempt = flow.attempts, key = %head.batch.key, retry_in_ms = delay.as_millis() as u64, "Delivery failed; retrying.");
                let formed = head.formed();
                self.fail(error, flow.attempts, delay, false, formed).await?;
                let head = flow.queue.front().expect("the queue has a head");
                if after.is_none() && self.sink.probes(unreachable) {
                    self.wait_for_return(&head.batch, delay, shutdown).await;
                } else {
                    shutdown.sleep(delay).await;
                }
            }
            Outcome::Pause { error } => {
                flow.attempts += 1;
                let delay = self.retry.paused_interval.0;
                tracing::error!(sink = %self.name, %error, retry_in_s = delay.as_secs(), "The sink is paused: fix its credentials or settings, then reload dockhand. Nothing is dead-lettered.");
                let formed = head.formed();
                self.fail(error, flow.attempts, delay, true, formed).await?;
                shutdown.sleep(delay).await;
            }
            Outcome::TooLarge { error } if events > 1 => {
                flow.sizing.refused(events, bytes, Instant::now());
                let (max_events, max_bytes) = flow.sizing.limits(Instant::now());
                warn!(sink = %self.name, %error, events, bytes, key = %head.batch.key, max_events, max_bytes, "The receiver refused the batch as too large; sending it in halves and keeping later batches under the size it accepts.");
                let head = flow.queue.pop_front().expect("the queue has a head");
                let [first, second] = head.halves();
                flow.queue.push_front(second);
                flow.queue.push_front(first);
            }
            Outcome::TooLarge { error } => {
                let head = flow.queue.pop_front().expect("the queue has a head");
                let progress = self.progress(
                    head.after,
                    &head.batch.items,
                    vec![(0, format!("too large for the receiver: {error}"))],
                    None,
                );
                self.record(progress).await?;
            }
        }
        Ok(())
    }

    /// Sleeps out `delay`, but while it runs asks the receiver now and then whether it takes
    /// requests again ([`Sink::probe`], spaced by [`pacing::probe_gap`] start to start), so a
    /// backlog starts draining within about a second of it coming back, however long the backoff
    /// grew.
    async fn wait_for_return(&mut self, batch: &Batch, delay: Duration, shutdown: &mut Shutdown) {
        let until = tokio::time::Instant::now() + delay;
        let mut last_probe = None;
        let mut next_probe = tokio::time::Instant::now() + pacing::probe_gap();
        loop {
            let now = tokio::time::Instant::now();
            if now >= until {
                // The retry that follows is a request too: keep it a probe's gap after the last one.
                if let Some(last) = last_probe
                    && now < last + pacing::PROBE_EVERY
                {
                    shutdown.sleep(last + pacing::PROBE_EVERY - now).await;
                }
                return;
            }
            if now < next_probe {
                if !shutdown.sleep(next_probe.min(until) - now).await {
                    return;
                }
                continue;
            }
            last_probe = Some(now);
            next_probe = now + pacing::probe_gap();
            if self.sink.probe(batch).await {
                info!(sink = %self.name, key = %batch.key, "The receiver answers again; resending the waiting batch now.");
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
        let mut recording = Recordings::default();
        recording.start(&self.store, progress);
        recording.settle().await
    }

    /// Records a failed attempt for `status`. Losing that note to a full disk is harmless (the
    /// sink retries anyway), so only a closed store ends the sink.
    /// `batch`: the main-stream batch that failed, to be resent unchanged after a restart.
    async fn fail(
        &self,
        error: String,
        attempts: u32,
        delay: Duration,
        paused: bool,
        batch: Option<FormedBatch>,
    ) -> Result<(), StoreError> {
        let next_attempt_at = Timestamp::now().saturating_add_millis(delay.as_millis() as u64);
        match self
            .store
            .record_failure(SinkFailure { sink: self.name.clone(), error, attempts, next_attempt_at, paused, batch })
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
    use crate::event::sample_event;
    use crate::shutdown::ShutdownSwitch;
    use crate::store::{Admin, StoreOptions};
    use crate::units::HumanDuration;

    /// A delivery the scripted sink saw: its key and the seqs of its events.
    pub(crate) type Delivery = (String, Vec<u64>);

    /// A sink that answers from a script and records what it was sent.
    #[derive(Debug, Clone, Default)]
    pub(crate) struct ScriptedSink {
        pub(crate) script: Arc<Mutex<VecDeque<Outcome>>>,
        /// Each delivery: its key and the seqs of its events.
        pub(crate) received: Arc<Mutex<Vec<Delivery>>>,
        /// When set, the dispatcher probes while it backs off, and each probe pops an answer
        /// (`false` once they run out); probes are counted in `probes`.
        pub(crate) probe_answers: Option<Arc<Mutex<VecDeque<bool>>>>,
        pub(crate) probes: Arc<Mutex<Vec<Instant>>>,
    }

    impl ScriptedSink {
        pub(crate) fn deliver(&mut self, batch: &Batch) -> Outcome {
            self.received.lock().unwrap().push((batch.key.clone(), batch.items.iter().map(|b| b.seq).collect()));
            self.script.lock().unwrap().pop_front().unwrap_or_else(Outcome::delivered)
        }

        pub(crate) fn probe(&self) -> bool {
            self.probes.lock().unwrap().push(Instant::now());
            self.probe_answers.as_ref().is_some_and(|a| a.lock().unwrap().pop_front().unwrap_or(false))
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
            self.run_with(max_events, retry_within(20, 50), done);
        }

        /// A dispatcher of sink `s` on gateway `gw` over the scripted sink, without linger.
        fn dispatcher(&self, max_events: usize, retry: RetryConfig) -> Dispatcher {
            let batch = BatchConfig { max_events, linger: HumanDuration(Duration::ZERO), ..Default::default() };
            Dispatcher::new(
                "s".into(),
                "gw".into(),
                Sink::Scripted(self.sink.clone()),
                self.store.clone(),
                batch,
                retry,
            )
            .unwrap()
        }

        /// [`Harness::run_until`] with `retry` as the sink's backoff.
        fn run_with(&self, max_events: usize, retry: RetryConfig, done: impl Fn(&crate::store::SinkState) -> bool) {
            let d = self.dispatcher(max_events, retry);
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
            self.sink.received.lock().unwrap().iter().map(|(_, seqs)| seqs.clone()).collect()
        }

        fn keys(&self) -> Vec<String> {
            self.sink.received.lock().unwrap().iter().map(|(key, _)| key.clone()).collect()
        }
    }

    fn retry_within(initial_ms: u64, max_ms: u64) -> RetryConfig {
        RetryConfig {
            initial: HumanDuration(Duration::from_millis(initial_ms)),
            max: HumanDuration(Duration::from_millis(max_ms)),
            paused_interval: HumanDuration(Duration::from_millis(50)),
        }
    }

    fn retry() -> Outcome {
        Outcome::Retry { error: "503".into(), after: None, unreachable: false }
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
        let h = harness(4, vec![retry(), retry(), retry()]);
        h.run_until(2, |s| s.cursor == 4);
        assert_eq!(h.sent(), vec![vec![1, 2], vec![1, 2], vec![1, 2], vec![1, 2], vec![3, 4]]);
        assert_eq!(h.keys(), ["gw:s:1-2-n2", "gw:s:1-2-n2", "gw:s:1-2-n2", "gw:s:1-2-n2", "gw:s:3-4-n2"]);
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
        // 4 → halves of 2 → [1, 2] too large → the learned limit is 1, so [3, 4] is split before
        // it is ever sent; every half is named after its parent.
        assert_eq!(h.sent(), vec![vec![1, 2, 3, 4], vec![1, 2], vec![1], vec![2], vec![3], vec![4]]);
        assert_eq!(
            h.keys(),
            [
                "gw:s:1-4-n4",
                "gw:s:1-4-n4/1",
                "gw:s:1-4-n4/1/1",
                "gw:s:1-4-n4/1/2",
                "gw:s:1-4-n4/2/1",
                "gw:s:1-4-n4/2/2"
            ]
        );
        let state = h.store.reader().unwrap().sink_state("s").unwrap().unwrap();
        assert_eq!((state.delivered, state.dead_lettered), (3, 1));
    }

    #[test]
    fn a_retried_batch_keeps_its_events_while_new_ones_arrive() {
        let h = harness(3, vec![retry(), retry()]);
        let d = h.dispatcher(10, retry_within(200, 300));
        let (switch, shutdown) = ShutdownSwitch::new();
        let reader = h.store.reader().unwrap();
        h.rt.block_on(async {
            let task = tokio::spawn(d.run(shutdown));
            while h.sink.received.lock().unwrap().is_empty() {
                tokio::time::sleep(Duration::from_millis(1)).await;
            }
            h.store.append((0..5).map(|_| sample_event("d9", 100)).collect()).await.unwrap();
            while reader.sink_state("s").unwrap().unwrap().cursor < 8 {
                tokio::time::sleep(Duration::from_millis(10)).await;
            }
            switch.trigger();
            task.await.unwrap().unwrap();
        });
        assert_eq!(h.sent(), vec![vec![1, 2, 3], vec![1, 2, 3], vec![1, 2, 3], vec![4, 5, 6, 7, 8]]);
        assert_eq!(h.keys()[..3], ["gw:s:1-3-n3", "gw:s:1-3-n3", "gw:s:1-3-n3"]);
    }

    #[test]
    fn after_a_restart_the_failed_batch_is_resent_with_its_key() {
        let h = harness(3, vec![retry()]);
        // A long backoff: the first dispatcher stops while it waits to retry.
        h.run_with(10, retry_within(5_000, 5_000), |s| s.attempts >= 1);
        h.rt.block_on(h.store.append((0..2).map(|_| sample_event("d9", 100)).collect())).unwrap();
        h.run_until(10, |s| s.cursor == 5);
        assert_eq!(h.sent(), vec![vec![1, 2, 3], vec![1, 2, 3], vec![4, 5]]);
        assert_eq!(h.keys(), ["gw:s:1-3-n3", "gw:s:1-3-n3", "gw:s:4-5-n2"]);
    }

    #[test]
    fn probes_end_a_long_backoff_as_soon_as_the_receiver_answers() {
        let mut h = harness(0, vec![]);
        h.sink.probe_answers = Some(Arc::new(Mutex::new(VecDeque::from([false, true]))));
        let mut d = h.dispatcher(10, retry_within(30_000, 30_000));
        let (_switch, mut shutdown) = ShutdownSwitch::new();
        let batch = Batch { key: "gw:s:1-3-n3".into(), items: Vec::new() };
        let started = Instant::now();
        h.rt.block_on(d.wait_for_return(&batch, Duration::from_secs(30), &mut shutdown));
        let elapsed = started.elapsed();
        let probes = h.sink.probes.lock().unwrap().clone();
        assert_eq!(probes.len(), 2, "one failed probe, one that found the receiver back");
        let gap = probes[1] - probes[0];
        let most = pacing::PROBE_EVERY + pacing::PROBE_JITTER + Duration::from_millis(100);
        assert!(gap >= pacing::PROBE_EVERY && gap <= most, "probes {gap:?} apart");
        assert!(elapsed < 2 * most, "the 30 s backoff ended after {elapsed:?}");
    }

    #[test]
    fn retry_after_wins_over_probing() {
        let mut h = harness(
            2,
            vec![Outcome::Retry { error: "429".into(), after: Some(Duration::from_millis(1500)), unreachable: false }],
        );
        h.sink.probe_answers = Some(Arc::new(Mutex::new(VecDeque::from([true, true]))));
        let started = Instant::now();
        h.run_with(10, retry_within(30_000, 30_000), |s| s.cursor == 2);
        assert!(started.elapsed() >= Duration::from_millis(1500));
        assert!(h.sink.probes.lock().unwrap().is_empty(), "the receiver said when to come back");
    }

    #[test]
    fn after_a_413_later_batches_fit_the_learned_size() {
        let big = || Outcome::TooLarge { error: "413".into() };
        let h = harness(40, vec![big()]);
        h.run_until(20, |s| s.cursor == 40);
        let sizes: Vec<usize> = h.sent().iter().map(Vec::len).collect();
        assert_eq!(sizes, [20, 10, 10, 10, 10]);
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
}
