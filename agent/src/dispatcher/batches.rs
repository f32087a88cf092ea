//! How a dispatcher names and splits batches (contracts.md §3, Idempotency-Key).
//!
//! A batch is formed once — read from the store after the sink's cursor, or from the redelivery
//! queue — and from then on keeps its events and its key on every retry, across restarts too (the
//! failed batch is recorded in the store's `sink_batches` row), until it is settled. Keys:
//!
//! - `<gateway>:<sink>:<first seq>-<last seq>-n<events>` for a batch of the main stream;
//! - `<gateway>:<sink>:redelivery-<first redelivery id>-n<events>` for events queued by `dlq retry`;
//! - `<parent key>/1` and `<parent key>/2` for the halves of a batch the receiver refused with 413
//!   (or that no longer fits the size learned from a 413 before it was ever sent), recursively:
//!   `…-n500/2/1`;
//! - `<key>/probe` for the one-event probe sent while waiting to resend the batch `<key>`.

use crate::sinks::Batch;
use crate::store::{BatchItem, FormedBatch};

/// The key of a newly formed batch: the same events in the same batch always get the same key.
pub(crate) fn natural_key(gateway: &str, sink: &str, items: &[BatchItem]) -> String {
    let first = items.first();
    let last = items.last();
    match first.and_then(|f| f.redelivery) {
        Some(r) => format!("{gateway}:{sink}:redelivery-{r}-n{}", items.len()),
        None => {
            format!("{gateway}:{sink}:{}-{}-n{}", first.map_or(0, |b| b.seq), last.map_or(0, |b| b.seq), items.len())
        }
    }
}

/// A batch waiting to be delivered, and where the sink's cursor stands when it is settled.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Pending {
    pub(crate) batch: Batch,
    /// The sink's cursor when this batch is recorded (its events all come after it).
    pub(crate) after: u64,
    /// Whether the receiver has seen this batch (then it may only be split by a 413).
    pub(crate) sent: bool,
}

impl Pending {
    /// The two halves, with derived keys. The first half is the larger one, so both fit a cap of
    /// `(n + 1) / 2` events.
    pub(crate) fn halves(self) -> [Pending; 2] {
        let Pending { batch, after, .. } = self;
        let mid = batch.items.len().div_ceil(2);
        let mut first = batch.items;
        let second = first.split_off(mid);
        let second_after = first.iter().rev().find(|i| i.redelivery.is_none()).map_or(after, |i| i.seq);
        [
            Pending { batch: Batch { key: format!("{}/1", batch.key), items: first }, after, sent: false },
            Pending {
                batch: Batch { key: format!("{}/2", batch.key), items: second },
                after: second_after,
                sent: false,
            },
        ]
    }

    /// What the store keeps of a failed batch of the main stream, to resend it unchanged after a
    /// restart. Redeliveries are not kept (their queue re-forms the same batch).
    pub(crate) fn formed(&self) -> Option<FormedBatch> {
        let items = &self.batch.items;
        if items.is_empty() || items.iter().any(|i| i.redelivery.is_some()) {
            return None;
        }
        Some(FormedBatch {
            key: self.batch.key.clone(),
            after: self.after,
            last_seq: items[items.len() - 1].seq,
            events: items.len() as u64,
        })
    }

    /// The batch recorded by [`Pending::formed`], if `items` (read again after `formed.after`,
    /// at most `formed.events`) are still exactly its events.
    pub(crate) fn restored(formed: FormedBatch, items: Vec<BatchItem>) -> Option<Pending> {
        let whole = items.len() as u64 == formed.events && items.last().is_some_and(|l| l.seq == formed.last_seq);
        whole.then_some(Pending { batch: Batch { key: formed.key, items }, after: formed.after, sent: true })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn item(seq: u64) -> BatchItem {
        BatchItem { seq, id: uuid::Uuid::from_u128(seq.into()), body: format!("{{\"seq\":{seq}}}"), redelivery: None }
    }

    fn pending(seqs: std::ops::RangeInclusive<u64>) -> Pending {
        let items: Vec<BatchItem> = seqs.map(item).collect();
        let after = items[0].seq - 1;
        Pending { batch: Batch { key: natural_key("gw", "cloud", &items), items }, after, sent: true }
    }

    #[test]
    fn keys_name_the_events_and_halves_derive_from_the_parent() {
        let p = pending(11..=15);
        assert_eq!(p.batch.key, "gw:cloud:11-15-n5");
        let [a, b] = p.halves();
        assert_eq!((a.batch.key.as_str(), a.after, a.batch.items.len()), ("gw:cloud:11-15-n5/1", 10, 3));
        assert_eq!((b.batch.key.as_str(), b.after, b.batch.items.len()), ("gw:cloud:11-15-n5/2", 13, 2));
        assert!(!a.sent && !b.sent);
        let [ba, _] = b.halves();
        assert_eq!(ba.batch.key, "gw:cloud:11-15-n5/2/1");
        let mut redelivered = item(3);
        redelivered.redelivery = Some(42);
        assert_eq!(natural_key("gw", "cloud", &[redelivered]), "gw:cloud:redelivery-42-n1");
    }

    #[test]
    fn a_failed_batch_is_restored_only_when_its_events_are_unchanged() {
        let p = pending(11..=15);
        let formed = p.formed().unwrap();
        assert_eq!((formed.after, formed.last_seq, formed.events), (10, 15, 5));
        let restored = Pending::restored(formed.clone(), (11..=15).map(item).collect()).unwrap();
        assert_eq!(restored, p);
        assert_eq!(Pending::restored(formed.clone(), (11..=14).map(item).collect()), None);
        assert_eq!(Pending::restored(formed, (11..=14).chain(16..=16).map(item).collect()), None);
        let mut r = pending(1..=1);
        r.batch.items[0].redelivery = Some(7);
        assert_eq!(r.formed(), None, "redeliveries are re-formed from their own queue");
    }
}
