//! One dispatcher per sink: read a batch after the sink's cursor, hand it to the sink, and record
//! the outcome per event — delivered, dead-lettered with the reason, retried later, or paused —
//! in the store. A dispatcher owns only its own sink's progress, so a sink that is down never holds
//! another back.
//!
//! Order: one batch is in flight per sink and batches are read in `seq` order, so every partition's
//! events reach the sink in store order. A retry resends from the first unsettled event.

use std::time::Duration;

use backon::{BackoffBuilder, ExponentialBuilder};
use tracing::{info, warn};

use crate::shutdown::Shutdown;
use crate::sinks::{BatchConfig, Outcome, RetryConfig, Sink};
use crate::store::{BatchItem, NewDeadLetter, SinkFailure, SinkProgress, Store, StoreError, StoreReader};
use crate::timestamp::Timestamp;

pub struct Dispatcher {
    name: String,
    sink: Sink,
    store: Store,
    reader: StoreReader,
    batch: BatchConfig,
    retry: RetryConfig,
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

impl Dispatcher {
    pub fn new(name: String, sink: Sink, store: Store, batch: BatchConfig, retry: RetryConfig) -> Result<Self, StoreError> {
        let reader = store.reader()?;
        Ok(Self { name, sink, store, reader, batch, retry })
    }

    /// Delivers until shutdown. Returns an error only if the store itself fails.
    pub async fn run(mut self, mut shutdown: Shutdown) -> Result<(), StoreError> {
        let mut schedule = RetrySchedule::new(self.retry.clone());
        let mut new_events = self.store.subscribe();
        let mut attempts: u32 = 0;
        // Lowered after a "too large" answer, back to the configured size after a success.
        let mut limit = self.batch.max_events;
        info!(sink = %self.name, "Sink started.");
        while !shutdown.is_triggered() {
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
            let (cursor, batch) = if batch.len() < limit && !self.batch.linger.0.is_zero() && batch[0].redelivery.is_none() {
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
            self.deliver_one(cursor, batch, &mut schedule, &mut attempts, &mut limit, &mut shutdown).await?;
        }
        info!(sink = %self.name, "Sink stopped.");
        Ok(())
    }

    /// The next batch: operator redeliveries first, then the main stream after the cursor.
    async fn next_batch(&self, limit: usize) -> Result<Option<(u64, Vec<BatchItem>)>, StoreError> {
        let name = self.name.clone();
        let max_bytes = self.batch.max_bytes.0 as usize;
        self.reader
            .run(move |r| {
                let Some(state) = r.sink_state(&name)? else {
                    return Err(StoreError::Setup(format!("sink `{name}` is not registered in the store")));
                };
                let redeliveries = r.redeliveries(&name, limit)?;
                if !redeliveries.is_empty() {
                    return Ok(Some((state.cursor, redeliveries)));
                }
                let batch = r.batch_after(state.cursor, limit, max_bytes)?;
                Ok((!batch.is_empty()).then_some((state.cursor, batch)))
            })
            .await
    }

    async fn deliver_one(
        &mut self,
        cursor: u64,
        batch: Vec<BatchItem>,
        schedule: &mut RetrySchedule,
        attempts: &mut u32,
        limit: &mut usize,
        shutdown: &mut Shutdown,
    ) -> Result<(), StoreError> {
        let outcome = tokio::select! {
            o = self.sink.deliver(&batch) => o,
            // Abandoning an attempt is safe: nothing was recorded, so the batch goes out again.
            _ = shutdown.wait() => return Ok(()),
        };
        match outcome {
            Outcome::Accepted { rejected, retry_from } => {
                let settled = retry_from.unwrap_or(batch.len()).min(batch.len());
                let progress = self.progress(cursor, &batch[..settled], rejected, retry_from.map(|_| "the receiver asked to retry part of the batch".to_string()));
                self.store.record_progress(progress).await?;
                *limit = self.batch.max_events;
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
            Outcome::Retry { error, after } => {
                *attempts += 1;
                // The receiver's Retry-After wins over our own schedule (which still advances).
                let ours = schedule.next_delay();
                let delay = after.map_or(ours, |a| a.min(self.retry.max.0));
                warn!(sink = %self.name, %error, attempt = *attempts, retry_in_ms = delay.as_millis() as u64, "Delivery failed; retrying.");
                self.fail(error, *attempts, delay, false).await?;
                shutdown.sleep(delay).await;
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
                warn!(sink = %self.name, %error, events = batch.len(), "The receiver refused the batch as too large; splitting it.");
            }
            Outcome::TooLarge { error } => {
                let progress = self.progress(cursor, &batch, vec![(0, format!("too large for the receiver: {error}"))], None);
                self.store.record_progress(progress).await?;
                *limit = self.batch.max_events;
            }
        }
        Ok(())
    }

    fn progress(&self, cursor: u64, settled: &[BatchItem], rejected: Vec<(usize, String)>, retry_error: Option<String>) -> SinkProgress {
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

    async fn fail(&self, error: String, attempts: u32, delay: Duration, paused: bool) -> Result<(), StoreError> {
        let next_attempt_at = Timestamp::now().saturating_add_millis(delay.as_millis() as u64);
        self.store
            .record_failure(SinkFailure { sink: self.name.clone(), error, attempts, next_attempt_at, paused })
            .await
    }
}
