//! The checkpointer: copies committed pages from the WAL back into the database file on its own
//! thread and connection. SQLite's automatic checkpoint would do this inside a commit, adding the
//! main file's fsync to that commit's latency; here a PASSIVE checkpoint runs beside the writer
//! and never blocks it. The writer runs a final TRUNCATE checkpoint when the store closes.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread::JoinHandle;
use std::time::Duration;

use tracing::debug;

use super::StoreError;

/// A checkpoint starts once the WAL holds this much.
const WAL_CHECKPOINT_BYTES: u64 = 4 << 20;
const POLL_EVERY: Duration = Duration::from_millis(250);

#[derive(Debug)]
pub(super) struct Checkpointer {
    stop: Arc<AtomicBool>,
    thread: JoinHandle<()>,
}

impl Checkpointer {
    pub(super) fn start(path: &Path) -> Result<Self, StoreError> {
        let conn = super::open_connection(path)?;
        let wal = super::reader::wal_path(path);
        let stop = Arc::new(AtomicBool::new(false));
        let flag = stop.clone();
        let thread = std::thread::Builder::new()
            .name("store-checkpoint".into())
            .spawn(move || run(conn, wal, flag))
            .map_err(|e| StoreError::Setup(format!("cannot start the checkpoint thread: {e}")))?;
        Ok(Self { stop, thread })
    }

    pub(super) fn stop(self) {
        self.stop.store(true, Ordering::Relaxed);
        let _ = self.thread.join();
    }
}

fn run(conn: rusqlite::Connection, wal: PathBuf, stop: Arc<AtomicBool>) {
    while !stop.load(Ordering::Relaxed) {
        std::thread::sleep(POLL_EVERY);
        let size = std::fs::metadata(&wal).map(|m| m.len()).unwrap_or(0);
        if size < WAL_CHECKPOINT_BYTES {
            continue;
        }
        // PASSIVE: copy what no reader still needs, without waiting for anyone. The writer starts
        // the WAL over from its beginning once a checkpoint has caught up.
        match conn.query_row("PRAGMA wal_checkpoint(PASSIVE)", [], |r| Ok((r.get::<_, i64>(1)?, r.get::<_, i64>(2)?))) {
            Ok((log, done)) => debug!(wal_frames = log, checkpointed = done, "Checkpoint."),
            Err(e) => debug!(error = %e, "Checkpoint skipped."),
        }
    }
}
