//! The progress commits of accepted batches, running while later batches are already being sent.
//!
//! A commit waits for the store's writer, which on a busy 2-core gateway can take longer than
//! the next batch's round trip; awaiting each before the next answer is handled would make the
//! receiver wait for our disk. So commits run behind: each starts only once the one before it is
//! committed (the cursor moves forward one batch at a time, in order, also when a commit is
//! retried), and the dispatcher bounds how many are still running ([`Recordings::settle_to`]).
//! A crash loses at most those commits; their batches are sent again and the receiver dedups by
//! event id (contracts.md §3).

use std::collections::VecDeque;

use tokio::sync::oneshot;
use tokio::task::JoinHandle;

use crate::store::{SinkProgress, Store, StoreError, until_stored};

/// Commits started and not yet awaited, oldest first.
#[derive(Debug, Default)]
pub(super) struct Recordings {
    running: VecDeque<JoinHandle<Result<(), StoreError>>>,
    /// Fires when the newest commit is durable; the next one waits for it.
    newest_done: Option<oneshot::Receiver<()>>,
}

impl Recordings {
    /// Starts committing `progress` once every commit started before it is durable. Retries while
    /// the store cannot write (a full disk): the sink waits rather than stopping.
    pub(super) fn start(&mut self, store: &Store, progress: SinkProgress) {
        let store = store.clone();
        let previous = self.newest_done.take();
        let (done, newest_done) = oneshot::channel();
        self.newest_done = Some(newest_done);
        self.running.push_back(tokio::spawn(async move {
            // A previous commit that failed reports its own error when it is settled; this one
            // must not move the cursor past it.
            if let Some(previous) = previous
                && previous.await.is_err()
            {
                return Err(StoreError::Closed);
            }
            until_stored("the sink waits until its progress is recorded", || store.record_progress(progress.clone()))
                .await
                .ok_or(StoreError::Closed)?;
            let _ = done.send(());
            Ok(())
        }));
    }

    /// Waits until at most `open` commits are still running. `Err`: the first that failed (only
    /// when the store closed or its task was lost).
    pub(super) async fn settle_to(&mut self, open: usize) -> Result<(), StoreError> {
        while self.running.len() > open {
            let Some(oldest) = self.running.front_mut() else { break };
            let result = oldest.await.unwrap_or(Err(StoreError::Closed));
            self.running.pop_front();
            result?;
        }
        Ok(())
    }

    /// Waits for every commit started: before anything else is recorded or read from the sink's
    /// row.
    pub(super) async fn settle(&mut self) -> Result<(), StoreError> {
        self.settle_to(0).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::StoreOptions;

    fn step(from: u64, to: u64) -> SinkProgress {
        SinkProgress {
            sink: "s".into(),
            expected_cursor: from,
            new_cursor: to,
            delivered: to - from,
            ..Default::default()
        }
    }

    /// Commits started back to back land in the order they were started: each moves the cursor
    /// from where the one before left it. Started as independent tasks they would race to the
    /// writer, and one arriving early would find the cursor elsewhere and be dropped.
    #[test]
    fn commits_run_behind_in_order_and_all_land() {
        let dir = tempfile::tempdir().unwrap();
        let (store, _) = Store::open(StoreOptions::new(dir.path().join("q.db"))).unwrap();
        let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap();
        rt.block_on(async {
            store.register_sinks(vec!["s".into()]).await.unwrap();
            let mut recordings = Recordings::default();
            // As the dispatcher does (the newest commit may still run), then many at once.
            for i in 0..100 {
                recordings.start(&store, step(i * 10, (i + 1) * 10));
                recordings.settle_to(1).await.unwrap();
                assert!(recordings.running.len() <= 1);
            }
            for i in 100..200 {
                recordings.start(&store, step(i * 10, (i + 1) * 10));
            }
            recordings.settle().await.unwrap();
            assert!(recordings.running.is_empty());
        });
        let state = store.reader().unwrap().sink_state("s").unwrap().unwrap();
        assert_eq!(state.cursor, 2_000);
        assert_eq!(state.delivered, 2_000);
        store.close();
    }

    /// A closed store ends the sink with an error instead of losing track of what was recorded.
    #[test]
    fn a_closed_store_is_reported() {
        let dir = tempfile::tempdir().unwrap();
        let (store, _) = Store::open(StoreOptions::new(dir.path().join("q.db"))).unwrap();
        let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
        rt.block_on(async {
            store.register_sinks(vec!["s".into()]).await.unwrap();
            store.close();
            let mut recordings = Recordings::default();
            recordings.start(&store, step(0, 10));
            recordings.start(&store, step(10, 20));
            assert!(matches!(recordings.settle().await, Err(StoreError::Closed)));
        });
    }
}
