//! The store: one SQLite file that is the single source of truth for every event dockhand has
//! acknowledged, each sink's progress, dead letters and alarms.
//!
//! # The file
//!
//! One SQLite database in WAL mode with `synchronous=FULL` and incremental auto-vacuum, plus its
//! `-wal` and `-shm` companions. Tables (see `schema.rs`):
//!
//! - `events(seq, id, kind, partition, received_at, body)`: one row per accepted event. `seq` is
//!   assigned by the writer, strictly increasing and without gaps in store order; `id` (16-byte
//!   UUID) is unique and is the dedup key; `body` is the envelope JSON exactly as sinks deliver it.
//! - `sinks(name, cursor, counters, retry state, paused, retired_at)`: a sink has settled (delivered
//!   or dead-lettered) every event with `seq <= cursor`. Its backlog is `max(seq) - cursor`.
//! - `dead_letters`: events a sink refused for good (`sink` set, body = envelope) and input refused
//!   at ingest (`sink` NULL, body = the raw bytes as received), each with its reason.
//! - `redeliveries`: events queued for one sink again by `dockhand dlq retry`; delivered before
//!   the sink's main stream.
//! - `sink_batches`: per sink, the batch its last failed attempt sent (key and seq range), so a
//!   restart resends exactly that batch with the same `Idempotency-Key`.
//! - `station_inputs`, `station_state`: scans handed to a station, committed before they are
//!   acknowledged and consumed in one transaction with what they caused, and each station's state
//!   after its last step (see `station_inputs.rs`).
//! - `alarms`: conditions a technician must see in `dockhand status` (a damaged store moved aside).
//! - `meta`: schema version, creation time, the daemon's heartbeat, the config it runs (see
//!   `running_config.rs`).
//!
//! # Invariants
//!
//! - **Durable before acknowledged.** One writer thread owns all writes of the daemon. It takes
//!   every request waiting in its queue (up to `max_group_events`), applies them in one
//!   transaction, commits — one fsync for the whole group — and only then answers each request.
//!   A `kill -9` at any instant loses nothing that was answered; an unanswered append may or may
//!   not be stored, and its retry is answered `duplicate` if it was.
//! - **Dedup by id.** Appending a known id stores nothing and answers `Duplicate` with the seq of
//!   the stored event; the stored event is never replaced.
//! - **Nothing is dropped to make room.** When the used pages would exceed `max_bytes`, appends are
//!   refused with [`StoreError::Full`]; stored events stay until every active sink has settled them
//!   *and* they are older than the retention, then they are pruned in small batches. Freed pages are
//!   returned to the file system by incremental vacuum.
//! - **Streaming, not loading.** Sinks read bounded batches by `seq` range; start-up reads a handful
//!   of rows. Neither memory nor start-up time grows with the backlog.
//!
//! # Failures
//!
//! - Crash: SQLite's WAL makes every committed transaction survive; nothing else is needed.
//! - Full disk: the transaction fails, every request in it is answered with the error, nothing is
//!   acknowledged, and the next group tries again. Sources hold their input ([`until_stored`]:
//!   MQTT messages stay unacknowledged at the broker, a device is not read) and sinks wait to
//!   record their progress, so the daemon keeps running and resumes by itself when space returns
//!   (the soak test fills a real tmpfs to prove it).
//! - Damage (bad header, unreadable schema, failed integrity check, or `SQLITE_CORRUPT` while
//!   running): the file is moved aside as `<name>.corrupt-<time>` (never deleted) and a fresh store
//!   starts with an alarm; see `recovery.rs`. Files larger than 64 MiB are fully verified in the
//!   background after start-up instead of before it.

mod admin;
mod checkpoint;
pub(crate) mod print_jobs;
mod reader;
mod recovery;
pub(crate) mod running_config;
mod schema;
pub mod station_inputs;
mod throttle;
mod writer;

use std::path::{Path, PathBuf};
use std::sync::mpsc;
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;

use tokio::sync::{oneshot, watch};
use tracing::{error, info};
use uuid::Uuid;

pub(crate) use admin::{Admin, DeadLetterRow};
pub use reader::StoreReader;
pub(crate) use reader::{AlarmRow, BatchItem, DeviceCondition, DeviceRow, SinkSummary, StoreSummary};
pub(crate) use recovery::{Damage, VERIFY_AT_OPEN_MAX_BYTES};

use crate::event::Event;
use crate::timestamp::Timestamp;
use writer::{Request, Writer};

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error(
        "the store is full ({used} bytes used of the {max} allowed by store.max_bytes); new events are refused until delivered events are pruned"
    )]
    Full { used: u64, max: u64 },
    #[error("store I/O error: {0}")]
    Sqlite(#[from] rusqlite::Error),
    #[error("cannot set up the store: {0}")]
    Setup(String),
    #[error("the store file is damaged: {0}")]
    Damaged(String),
    #[error("cannot move the damaged store aside: {0}")]
    Io(#[from] std::io::Error),
    #[error("the store could not commit: {0}")]
    Commit(String),
    #[error("the store is shut down")]
    Closed,
}

impl StoreError {
    /// True for errors that mean the file itself is damaged.
    pub(crate) fn is_damage(&self) -> bool {
        match self {
            StoreError::Damaged(_) => true,
            StoreError::Sqlite(rusqlite::Error::SqliteFailure(e, _)) => {
                matches!(e.code, rusqlite::ErrorCode::DatabaseCorrupt | rusqlite::ErrorCode::NotADatabase)
            }
            _ => false,
        }
    }
}

/// How one appended event was taken.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Appended {
    /// Newly stored at `seq`.
    Stored { seq: u64 },
    /// The id was already stored at `seq`; nothing changed.
    Duplicate { seq: u64 },
}

/// A dead-letter entry to record.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct NewDeadLetter {
    /// The sink that refused the event; `None` for input refused before it became an event.
    pub(crate) sink: Option<String>,
    pub(crate) event_id: Option<Uuid>,
    pub(crate) event_seq: Option<u64>,
    /// Where it came from: `sink:cloud`, `mqtt:warehouse/WH1/handheld/hh-17/count`, …
    pub(crate) origin: String,
    pub(crate) reason: String,
    /// The envelope JSON, or the raw input bytes.
    pub(crate) body: Vec<u8>,
}

/// What a sink achieved with one batch, recorded in one transaction with its dead letters.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub(crate) struct SinkProgress {
    pub(crate) sink: String,
    /// The cursor the batch was read after; if it moved meanwhile (an operator ran `replay`), the
    /// cursor is left alone.
    pub(crate) expected_cursor: u64,
    pub(crate) new_cursor: u64,
    pub(crate) delivered: u64,
    pub(crate) dead_letters: Vec<NewDeadLetter>,
    /// Redelivery rows that are now settled.
    pub(crate) redeliveries_done: Vec<i64>,
    /// Set when part of the batch must be tried again (counts as a retry).
    pub(crate) retry_error: Option<String>,
}

/// A failed attempt.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct SinkFailure {
    pub(crate) sink: String,
    pub(crate) error: String,
    /// Consecutive failed attempts so far, this one included.
    pub(crate) attempts: u32,
    pub(crate) next_attempt_at: Timestamp,
    /// Paused for a reason a retry cannot fix (bad credentials): shown as an alarm.
    pub(crate) paused: bool,
    /// The main-stream batch that failed, kept so that it is sent again unchanged after a restart.
    pub(crate) batch: Option<FormedBatch>,
}

/// A batch a sink has sent and must send again with the same events and key until it is settled
/// (contracts.md §3, Idempotency-Key).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct FormedBatch {
    /// The `Idempotency-Key` / `batch_id`.
    pub(crate) key: String,
    /// The sink's cursor when the batch was formed: its events all have `seq > after`.
    pub(crate) after: u64,
    /// The seq of its last event.
    pub(crate) last_seq: u64,
    /// How many events it holds.
    pub(crate) events: u64,
}

/// What one station step caused, committed in one transaction (see [`station_inputs`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct StationStep {
    pub(crate) station: String,
    /// The waiting scan this step consumed, if it was a scan, and what the operator was told
    /// (JSON), kept with it.
    pub(crate) consumed: Option<(u64, String)>,
    pub(crate) events: Vec<Event>,
    pub(crate) print_jobs: Vec<print_jobs::NewPrintJob>,
    /// The station's state after the step.
    pub(crate) saved: Option<station_inputs::SavedStation>,
}

/// A sink's row, as the daemon and `status` see it.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct SinkState {
    pub(crate) name: String,
    pub cursor: u64,
    pub(crate) delivered: u64,
    pub retried: u64,
    pub dead_lettered: u64,
    pub attempts: u32,
    pub(crate) next_attempt_at: Option<Timestamp>,
    pub(crate) last_success_at: Option<Timestamp>,
    pub last_error: Option<String>,
    pub(crate) last_error_at: Option<Timestamp>,
    pub paused: Option<String>,
    pub(crate) retired_at: Option<Timestamp>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoreOptions {
    pub path: PathBuf,
    pub max_bytes: u64,
    pub retention_ms: u64,
    /// The most events one group commit takes.
    pub max_group_events: usize,
    /// Files up to this size are fully verified before the store opens.
    pub verify_at_open_max_bytes: u64,
}

impl StoreOptions {
    pub fn new(path: impl Into<PathBuf>) -> Self {
        Self {
            path: path.into(),
            max_bytes: 1 << 30,
            retention_ms: 7 * 86_400_000,
            max_group_events: 4096,
            verify_at_open_max_bytes: VERIFY_AT_OPEN_MAX_BYTES,
        }
    }
}

/// What opening found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OpenReport {
    /// Set when a damaged file was moved aside: (where it went, why).
    pub(crate) moved_aside: Option<(PathBuf, String)>,
    pub(crate) last_seq: u64,
}

/// The answer to a write: resolves once the writer thread committed it (or refused it). Every
/// write joins the writer's queue when its method is called, not when the answer is first
/// awaited, so writes made one after another commit in that order (and get rising seqs) however
/// their answers are then awaited: the MQTT source relies on it to acknowledge in order.
pub(crate) type Answer<T> = std::pin::Pin<Box<dyn std::future::Future<Output = Result<T, StoreError>> + Send>>;

/// A handle on the open store; cheap to clone. Dropping the last handle (or [`Store::close`])
/// lets the writer finish what it has and stop.
#[derive(Debug, Clone)]
pub struct Store {
    shared: Arc<Shared>,
}

#[derive(Debug)]
struct Shared {
    path: PathBuf,
    tx: Mutex<Option<mpsc::Sender<Request>>>,
    last_seq: watch::Receiver<u64>,
    damage: watch::Receiver<Option<String>>,
    writer: Mutex<Option<JoinHandle<()>>>,
    checkpointer: Mutex<Option<checkpoint::Checkpointer>>,
    /// When the writer last went round its loop (ms since `opened`).
    writer_beat: Arc<std::sync::atomic::AtomicU64>,
    opened: std::time::Instant,
}

impl Store {
    /// Opens (or creates) the store, moving a damaged file aside first.
    pub fn open(options: StoreOptions) -> Result<(Store, OpenReport), StoreError> {
        if let Some(dir) = options.path.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir)
                .map_err(|e| StoreError::Setup(format!("cannot create the store folder {}: {e}", dir.display())))?;
        }
        let mut moved_aside = None;
        if options.path.exists()
            && let Err(damage) = recovery::inspect(&options.path, options.verify_at_open_max_bytes)
        {
            let aside = recovery::move_aside(&options.path, &damage)?;
            moved_aside = Some((aside, damage.0));
        }
        let conn = open_connection(&options.path)?;
        schema::prepare(&conn)?;
        if let Some((aside, reason)) = &moved_aside {
            conn.execute(
                "INSERT INTO alarms (kind, message, raised_at) VALUES ('store_damaged', ?1, ?2)",
                rusqlite::params![
                    format!(
                        "The store file was damaged ({reason}) and was moved to {}; a fresh store was started. Events still in the old file were not delivered: keep that file for salvage.",
                        aside.display()
                    ),
                    Timestamp::now().as_millis()
                ],
            )?;
        }
        let (damage_tx, damage_rx) = watch::channel(None);
        let size = std::fs::metadata(&options.path).map(|m| m.len()).unwrap_or(0);
        if moved_aside.is_none() && size > options.verify_at_open_max_bytes {
            spawn_background_check(options.path.clone(), damage_tx.clone());
        }
        // Checkpoints run on their own connection so that copying the WAL into the file (and its
        // fsync) never stalls an append.
        conn.pragma_update(None, "wal_autocheckpoint", 0)?;
        let checkpointer = checkpoint::Checkpointer::start(&options.path)?;
        let opened = std::time::Instant::now();
        let writer_beat = Arc::new(std::sync::atomic::AtomicU64::new(0));
        let writer = Writer::new(conn, &options, damage_tx, writer_beat.clone(), opened)?;
        let last_seq = writer.last_seq();
        let (seq_tx, seq_rx) = watch::channel(last_seq);
        let (tx, rx) = mpsc::channel();
        let handle = std::thread::Builder::new()
            .name("store-writer".into())
            .spawn(move || writer.run(rx, seq_tx))
            .map_err(|e| StoreError::Setup(format!("cannot start the writer thread: {e}")))?;
        info!(store = %options.path.display(), last_seq, "Store open.");
        let store = Store {
            shared: Arc::new(Shared {
                path: options.path.clone(),
                tx: Mutex::new(Some(tx)),
                last_seq: seq_rx,
                damage: damage_rx,
                writer: Mutex::new(Some(handle)),
                checkpointer: Mutex::new(Some(checkpointer)),
                writer_beat,
                opened,
            }),
        };
        Ok((store, OpenReport { moved_aside, last_seq }))
    }

    #[cfg(test)]
    pub(crate) fn path(&self) -> &Path {
        &self.shared.path
    }

    /// Stores `events` durably. Answers only after the transaction holding them is committed.
    /// The whole request is refused with [`StoreError::Full`] when it does not fit.
    pub fn append(&self, events: Vec<Event>) -> Answer<Vec<Appended>> {
        let events = events.into_iter().map(crate::event::PreparedEvent::new).collect();
        self.request(|reply| Request::Append { events, reply })
    }

    pub fn append_one(&self, event: Event) -> Answer<Appended> {
        let answer = self.append(vec![event]);
        Box::pin(async move { answer.await?.pop().ok_or(StoreError::Closed) })
    }

    /// Records input refused before it became an event (malformed MQTT payload, serial garbage).
    pub(crate) fn dead_letter(&self, entry: NewDeadLetter) -> Answer<()> {
        self.request(|reply| Request::DeadLetter { entry, reply })
    }

    pub(crate) fn record_progress(&self, progress: SinkProgress) -> Answer<()> {
        self.request(|reply| Request::Progress { progress, reply })
    }

    pub(crate) fn record_failure(&self, failure: SinkFailure) -> Answer<()> {
        self.request(|reply| Request::Failure { failure, reply })
    }

    /// Makes `names` the active sinks: new names get a row, names no longer configured are retired
    /// (kept for history, no longer holding back pruning), names that come back are reactivated.
    pub(crate) fn register_sinks(&self, names: Vec<String>) -> Answer<()> {
        self.request(|reply| Request::RegisterSinks { names, reply })
    }

    /// A change to the print-job queue, committed before it is answered.
    pub(crate) fn print_job(&self, change: print_jobs::PrintJobChange) -> Answer<print_jobs::PrintJobAnswer> {
        self.request(|reply| Request::PrintJob { change, reply })
    }

    /// Stores a scan for a station before it is acknowledged; `false` when its id is already
    /// stored (a firmware-bridge resending after a lost PUBACK).
    pub fn station_input(&self, input: station_inputs::NewStationInput) -> Answer<bool> {
        self.request(|reply| Request::StationInput { input, reply })
    }

    /// Commits a station step: its events, labels, the consumed scan and the new state, together.
    pub(crate) fn station_step(&self, step: StationStep) -> Answer<Vec<Appended>> {
        self.request(|reply| Request::StationStep { step, reply })
    }

    /// Makes `names` the configured devices for `status` (rows of removed devices go).
    pub(crate) fn register_devices(&self, names: Vec<String>) -> Answer<()> {
        self.request(|reply| Request::RegisterDevices { names, reply })
    }

    /// Records which config the daemon runs, or an edit it refused (for `status`).
    pub(crate) fn running_config(&self, change: running_config::ConfigChange) -> Answer<()> {
        self.request(|reply| Request::RunningConfig { change, reply })
    }

    /// The highest committed seq; changes after every commit that stored events.
    pub(crate) fn subscribe(&self) -> watch::Receiver<u64> {
        self.shared.last_seq.clone()
    }

    /// Fires with a reason when the file turns out to be damaged while running.
    pub(crate) fn damage(&self) -> watch::Receiver<Option<String>> {
        self.shared.damage.clone()
    }

    /// How long since the writer thread last went round its loop (it does at least every second).
    pub(crate) fn writer_idle(&self) -> std::time::Duration {
        let beat = self.shared.writer_beat.load(std::sync::atomic::Ordering::Relaxed);
        let now = self.shared.opened.elapsed().as_millis() as u64;
        std::time::Duration::from_millis(now.saturating_sub(beat))
    }

    /// A read connection for a sink or a tool.
    pub(crate) fn reader(&self) -> Result<StoreReader, StoreError> {
        StoreReader::open(&self.shared.path)
    }

    /// Stops taking requests, lets the writer commit what it has, and waits for it.
    pub fn close(&self) {
        if let Some(c) = self.shared.checkpointer.lock().unwrap_or_else(|p| p.into_inner()).take() {
            c.stop();
        }
        self.shared.tx.lock().unwrap_or_else(|p| p.into_inner()).take();
        let handle = self.shared.writer.lock().unwrap_or_else(|p| p.into_inner()).take();
        if let Some(h) = handle
            && h.join().is_err()
        {
            error!("The store writer thread panicked.");
        }
    }

    /// Hands a request to the writer thread now (see [`Answer`]).
    fn request<T: Send + 'static>(
        &self,
        make: impl FnOnce(oneshot::Sender<Result<T, StoreError>>) -> Request,
    ) -> Answer<T> {
        let answer = self.queue(make);
        Box::pin(async move { answered(answer?).await })
    }

    fn queue<T>(
        &self,
        make: impl FnOnce(oneshot::Sender<Result<T, StoreError>>) -> Request,
    ) -> Result<oneshot::Receiver<Result<T, StoreError>>, StoreError> {
        let (reply, answer) = oneshot::channel();
        let tx = self.shared.tx.lock().unwrap_or_else(|p| p.into_inner());
        let tx = tx.as_ref().ok_or(StoreError::Closed)?;
        tx.send(make(reply)).map_err(|_| StoreError::Closed)?;
        Ok(answer)
    }
}

async fn answered<T>(answer: oneshot::Receiver<Result<T, StoreError>>) -> Result<T, StoreError> {
    answer.await.map_err(|_| StoreError::Closed)?
}

pub(crate) fn open_connection(path: &Path) -> Result<rusqlite::Connection, StoreError> {
    let conn = rusqlite::Connection::open(path)?;
    schema::configure(&conn)?;
    Ok(conn)
}

fn spawn_background_check(path: PathBuf, damage: watch::Sender<Option<String>>) {
    let spawned = std::thread::Builder::new().name("store-verify".into()).spawn(move || {
        let result = rusqlite::Connection::open_with_flags(&path, rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY)
            .map_err(|e| Damage(e.to_string()))
            .and_then(|c| recovery::quick_check(&c));
        match result {
            Ok(()) => info!(store = %path.display(), "Background integrity check passed."),
            Err(d) => report_damage(&path, &damage, &d.0),
        }
    });
    if let Err(e) = spawned {
        error!(error = %e, "Cannot start the background integrity check.");
    }
}

/// Leaves the marker that makes the next open move the file aside, and tells the daemon.
pub(crate) fn report_damage(path: &Path, damage: &watch::Sender<Option<String>>, reason: &str) {
    error!(store = %path.display(), reason, "The store file is damaged; dockhand will stop so that the next start moves it aside.");
    if let Err(e) = std::fs::write(recovery::marker_path(path), reason) {
        error!(error = %e, "Cannot write the damage marker next to the store.");
    }
    damage.send_replace(Some(reason.to_string()));
}

#[cfg(test)]
mod tests;

/// Retries a store write until it is durable, for sources that cannot refuse their input (an MQTT
/// message not yet acknowledged, a scan already read off a serial port). A full store holds the
/// input — `held` says where it waits, for the log — and other errors are retried too, with a
/// backoff up to 5 s. `None` means the store closed (shutdown): the input was not stored.
pub(crate) async fn until_stored<T, F, Fut>(held: &str, mut write: F) -> Option<T>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Result<T, StoreError>>,
{
    static RETRYING: throttle::WarnThrottle = throttle::WarnThrottle::new();
    let mut waited = std::time::Duration::from_millis(100);
    loop {
        match write().await {
            Ok(v) => return Some(v),
            Err(StoreError::Closed) => return None,
            Err(e) => match RETRYING.allow() {
                Some(n) if matches!(e, StoreError::Full { .. }) => {
                    tracing::warn!(error = %e, similar_not_logged = n, "Store full: {held}.")
                }
                Some(n) => {
                    tracing::warn!(error = %e, similar_not_logged = n, "Cannot store; {held}, and the write is retried.")
                }
                None => tracing::debug!(error = %e, "Cannot store yet; {held}."),
            },
        }
        tokio::time::sleep(waited).await;
        waited = (waited * 2).min(std::time::Duration::from_secs(5));
    }
}
