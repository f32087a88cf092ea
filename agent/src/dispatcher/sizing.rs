//! How big a sink's batches may be, learned from the receiver's 413 answers (AIMD).
//!
//! Without a 413 the configured `batch.max_events` / `batch.max_bytes` apply. After a 413 the
//! dispatcher remembers the smallest refused batch and the largest accepted one and forms later
//! batches under the largest accepted size (or half the refused one when nothing larger was ever
//! accepted), so a receiver's limit costs one split, not one per batch. The cap grows back slowly:
//! by one event after every [`GROW_AFTER`] full batches the receiver accepted, never up to a size
//! it refused within the last [`REMEMBER_REFUSAL`]; once that is forgotten, by an eighth at a time
//! back to the configured maximum.

use std::time::{Duration, Instant};

/// Full batches accepted in a row before the cap grows one step.
pub(crate) const GROW_AFTER: u32 = 32;
/// How long a refused size is never tried again.
pub(crate) const REMEMBER_REFUSAL: Duration = Duration::from_secs(3600);

#[derive(Debug)]
pub(crate) struct Sizing {
    max_events: usize,
    max_bytes: usize,
    cap: Option<Cap>,
    /// The largest batch the receiver accepted (events, bytes), whenever.
    accepted: (usize, usize),
}

#[derive(Debug)]
struct Cap {
    events: usize,
    bytes: usize,
    /// The smallest batch refused with 413 (events, bytes) and when.
    refused: Option<(usize, usize, Instant)>,
    full_in_a_row: u32,
}

impl Sizing {
    pub(crate) fn new(max_events: usize, max_bytes: usize) -> Self {
        Self { max_events, max_bytes, cap: None, accepted: (0, 0) }
    }

    /// (events, bytes) a new batch may hold now.
    pub(crate) fn limits(&mut self, now: Instant) -> (usize, usize) {
        match &mut self.cap {
            None => (self.max_events, self.max_bytes),
            Some(cap) => {
                if cap.refused.is_some_and(|(_, _, at)| now.duration_since(at) >= REMEMBER_REFUSAL) {
                    cap.refused = None;
                }
                (cap.events, cap.bytes)
            }
        }
    }

    /// Whether a batch formed earlier no longer fits (it is split before it is sent).
    pub(crate) fn too_big(&mut self, events: usize, bytes: usize, now: Instant) -> bool {
        let (max_events, max_bytes) = self.limits(now);
        events > 1 && (events > max_events || bytes > max_bytes)
    }

    /// The receiver answered 413 for a batch of `events` (> 1) and `bytes`.
    pub(crate) fn refused(&mut self, events: usize, bytes: usize, now: Instant) {
        let refused = match self.cap.as_ref().and_then(|c| c.refused) {
            Some((e, b, _)) => (e.min(events), b.min(bytes), now),
            None => (events, bytes, now),
        };
        let (events_cap, bytes_cap) = if self.accepted.0 > 0 && self.accepted.0 < events && self.accepted.1 < bytes {
            self.accepted
        } else {
            // Half the events, and their share of the bytes with a tenth to spare (events differ
            // in size), so both halves of the refused batch fit without another split.
            let half = events.div_ceil(2);
            let share = (bytes as u128 * half as u128 / events.max(1) as u128) as usize;
            (half, (share + share / 10).min(bytes.saturating_sub(1)))
        };
        self.cap =
            Some(Cap { events: events_cap.max(1), bytes: bytes_cap.max(1), refused: Some(refused), full_in_a_row: 0 });
    }

    /// The receiver accepted a batch of `events` and `bytes`.
    pub(crate) fn accepted(&mut self, events: usize, bytes: usize, now: Instant) {
        self.accepted = (self.accepted.0.max(events), self.accepted.1.max(bytes));
        let (max_events, max_bytes) = (self.max_events, self.max_bytes);
        self.limits(now);
        let Some(cap) = &mut self.cap else { return };
        // Only a batch formed up to the cap says anything about a bigger one.
        if events < cap.events && bytes < cap.bytes * 3 / 4 {
            return;
        }
        cap.full_in_a_row += 1;
        if cap.full_in_a_row < GROW_AFTER {
            return;
        }
        cap.full_in_a_row = 0;
        match cap.refused {
            Some((refused_events, refused_bytes, _)) => {
                let per_event = cap.bytes / cap.events.max(1);
                cap.events = (cap.events + 1).min(refused_events.saturating_sub(1)).max(cap.events);
                cap.bytes = (cap.bytes + per_event.max(1)).min(refused_bytes.saturating_sub(1)).max(cap.bytes);
            }
            None => {
                let grown = (cap.events + (cap.events / 8).max(1)).min(max_events);
                cap.bytes = ((cap.bytes as u128 * grown as u128 / cap.events.max(1) as u128) as usize).min(max_bytes);
                cap.events = grown;
                if cap.events >= max_events {
                    self.cap = None;
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A receiver that refuses more than `limit` events; returns how many 413s `events` cost.
    fn drain(sizing: &mut Sizing, limit: usize, events: usize, now: Instant) -> usize {
        let mut refusals = 0;
        let mut left = events;
        let mut queue: Vec<usize> = Vec::new();
        while left > 0 || !queue.is_empty() {
            let n = match queue.pop() {
                Some(n) => n,
                None => {
                    let n = sizing.limits(now).0.min(left);
                    left -= n;
                    n
                }
            };
            if sizing.too_big(n, n * 200, now) {
                queue.push(n / 2);
                queue.push(n.div_ceil(2));
            } else if n > limit {
                refusals += 1;
                sizing.refused(n, n * 200, now);
                queue.push(n / 2);
                queue.push(n.div_ceil(2));
            } else {
                sizing.accepted(n, n * 200, now);
            }
        }
        refusals
    }

    #[test]
    fn a_receiver_limit_costs_one_split_not_one_per_batch() {
        let now = Instant::now();
        let mut sizing = Sizing::new(500, 1 << 20);
        let first = drain(&mut sizing, 40, 500, now);
        assert_eq!(first, 4, "500 → 250 → 125 → 63 refused, 32 accepted");
        assert_eq!(sizing.limits(now).0, 32);
        assert_eq!(drain(&mut sizing, 40, 5000, now), 0, "no 413 for the next 5000 events");
        // Growth finds the limit once more, then stays under it for good.
        let later = drain(&mut sizing, 40, 50_000, now);
        assert!(later <= 1, "{later} more 413s");
        assert!(sizing.limits(now).0 <= 40 && sizing.limits(now).0 >= 36, "{:?}", sizing.limits(now));
        assert_eq!(drain(&mut sizing, 40, 50_000, now), 0);
    }

    #[test]
    fn without_a_413_the_configured_size_holds_and_after_the_memory_fades_it_grows_back() {
        let now = Instant::now();
        let mut sizing = Sizing::new(500, 1 << 20);
        sizing.accepted(500, 100_000, now);
        assert_eq!(sizing.limits(now), (500, 1 << 20));
        sizing.refused(500, 100_000, now);
        assert_eq!(sizing.limits(now), (250, 55_000));
        let later = now + REMEMBER_REFUSAL;
        // The receiver raised its limit: the cap grows back to the configured size.
        drain(&mut sizing, 1000, 200_000, later);
        assert_eq!(sizing.limits(later), (500, 1 << 20));
    }
}
