//! Read access to the store for dispatchers, `status` and tools. Each reader owns one SQLite
//! connection; WAL lets it read while the writer commits. Async callers run queries on tokio's
//! blocking pool so a slow disk never stalls the runtime.

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use rusqlite::{Connection, OpenFlags, OptionalExtension, params};
use serde::Serialize;
use uuid::Uuid;

use super::{SinkState, StoreError};
use crate::timestamp::Timestamp;

/// One event handed to a sink.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BatchItem {
    pub seq: u64,
    pub(crate) id: Uuid,
    /// The envelope JSON, delivered as is.
    pub body: String,
    /// Set when this comes from the redelivery queue (`dlq retry`) rather than the main stream.
    pub(crate) redelivery: Option<i64>,
}

#[derive(Debug, Clone, Serialize)]
pub(crate) struct SinkSummary {
    #[serde(flatten)]
    pub(crate) state: SinkState,
    /// Events this sink has not settled yet.
    pub(crate) pending: u64,
    /// Arrival time of the oldest of them.
    pub(crate) oldest_pending_at: Option<Timestamp>,
    /// Events queued again by `dlq retry`.
    pub(crate) redeliveries: u64,
}

#[derive(Debug, Clone, Serialize)]
pub(crate) struct AlarmRow {
    pub(crate) id: i64,
    pub(crate) kind: String,
    pub(crate) message: String,
    pub(crate) raised_at: Timestamp,
}

/// A device's last recorded state, as the store keeps it (`devices.state`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub(crate) enum DeviceCondition {
    Connected,
    Disconnected,
    Error,
    /// Configured, but it has not reported yet.
    Unknown,
}

impl DeviceCondition {
    /// The column's text; anything unexpected reads as `Unknown`.
    pub(crate) fn parse(text: &str) -> DeviceCondition {
        match text {
            "connected" => DeviceCondition::Connected,
            "disconnected" => DeviceCondition::Disconnected,
            "error" => DeviceCondition::Error,
            _ => DeviceCondition::Unknown,
        }
    }

    pub(crate) fn as_str(self) -> &'static str {
        match self {
            DeviceCondition::Connected => "connected",
            DeviceCondition::Disconnected => "disconnected",
            DeviceCondition::Error => "error",
            DeviceCondition::Unknown => "unknown",
        }
    }
}

impl std::fmt::Display for DeviceCondition {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.pad(self.as_str())
    }
}

/// A configured device's last known state (from its newest `device_status` event).
#[derive(Debug, Clone, Serialize)]
pub(crate) struct DeviceRow {
    pub(crate) name: String,
    pub(crate) state: DeviceCondition,
    pub(crate) detail: Option<String>,
    pub(crate) since: Timestamp,
}

/// Everything `dockhand status` shows, read in one transaction.
#[derive(Debug, Clone, Serialize)]
pub(crate) struct StoreSummary {
    pub(crate) path: PathBuf,
    /// Bytes on disk: the file plus its WAL.
    pub(crate) file_bytes: u64,
    /// Bytes in pages holding data (what `store.max_bytes` limits).
    pub(crate) used_bytes: u64,
    pub(crate) last_seq: u64,
    /// Events still in the store (not yet pruned).
    pub(crate) events: u64,
    pub(crate) sinks: Vec<SinkSummary>,
    /// Dead letters not yet retried, by sink (`None` for input refused at ingest).
    pub(crate) dead_letters: Vec<(Option<String>, u64)>,
    pub(crate) alarms: Vec<AlarmRow>,
    pub(crate) devices: Vec<DeviceRow>,
    /// Print jobs not printed yet (queued, sending, uncertain), oldest first.
    pub(crate) print_jobs: Vec<super::print_jobs::PrintJobRow>,
    /// Every print job kept, counted by state (`printed` included).
    pub(crate) print_job_counts: Vec<(super::print_jobs::PrintJobState, u64)>,
    /// Each station's saved state (what it waits for), by name.
    pub(crate) stations: Vec<super::station_inputs::SavedStation>,
    /// Scans waiting for each station (a station that falls behind shows here).
    pub(crate) station_backlog: Vec<(String, u64)>,
    pub(crate) heartbeat_at: Option<Timestamp>,
    pub(crate) stopped_at: Option<Timestamp>,
    pub(crate) pid: Option<u32>,
    /// The config the daemon last ran (absent before its first start with this version).
    pub(crate) running_config: Option<super::running_config::RunningConfig>,
}

#[derive(Debug, Clone)]
pub struct StoreReader {
    conn: Arc<Mutex<Connection>>,
}

impl StoreReader {
    /// Opens an existing store for reading; refuses to create one.
    pub fn open(path: &Path) -> Result<Self, StoreError> {
        if !path.exists() {
            return Err(StoreError::Setup(format!(
                "there is no store at {} yet (it is created when the daemon first starts)",
                path.display()
            )));
        }
        let conn =
            Connection::open_with_flags(path, OpenFlags::SQLITE_OPEN_READ_WRITE | OpenFlags::SQLITE_OPEN_NO_MUTEX)?;
        super::schema::configure(&conn)?;
        conn.pragma_update(None, "query_only", true)?;
        Ok(Self { conn: Arc::new(Mutex::new(conn)) })
    }

    /// Runs `f` with the connection on tokio's blocking pool.
    pub(crate) async fn run<T: Send + 'static>(
        &self,
        f: impl FnOnce(&StoreReader) -> Result<T, StoreError> + Send + 'static,
    ) -> Result<T, StoreError> {
        let this = self.clone();
        tokio::task::spawn_blocking(move || f(&this))
            .await
            .map_err(|e| StoreError::Setup(format!("a store read was cancelled: {e}")))?
    }

    fn with<T>(&self, f: impl FnOnce(&Connection) -> Result<T, rusqlite::Error>) -> Result<T, StoreError> {
        let conn = self.conn.lock().unwrap_or_else(|p| p.into_inner());
        Ok(f(&conn)?)
    }

    /// Up to `max_events` events after `cursor`, stopping before `max_bytes` of bodies (but always
    /// at least one event, so an oversized event still moves). With `kinds`, other kinds are
    /// skipped. Also returns the last seq examined: a sink that settles the whole batch has
    /// settled everything up to there (skipped kinds included).
    pub fn batch_after(
        &self,
        cursor: u64,
        max_events: usize,
        max_bytes: usize,
        kinds: Option<&[crate::event::Kind]>,
    ) -> Result<(Vec<BatchItem>, u64), StoreError> {
        // How far one read may look for events of the wanted kinds.
        let scan = if kinds.is_some() { max_events.saturating_mul(20).max(1000) } else { max_events };
        self.with(|c| {
            let mut stmt =
                c.prepare_cached("SELECT seq, id, body, kind FROM events WHERE seq > ?1 ORDER BY seq LIMIT ?2")?;
            let mut rows = stmt.query(params![cursor as i64, scan as i64])?;
            let mut out = Vec::new();
            let mut bytes = 0;
            let mut scanned_to = cursor;
            while let Some(row) = rows.next()? {
                let seq = row.get::<_, i64>(0)? as u64;
                if let Some(kinds) = kinds {
                    let kind = row.get_ref(3)?.as_str()?;
                    if !kinds.iter().any(|k| k.as_str() == kind) {
                        scanned_to = seq;
                        continue;
                    }
                }
                let body: String = row.get(2)?;
                if !out.is_empty() && (bytes + body.len() > max_bytes || out.len() >= max_events) {
                    break;
                }
                bytes += body.len();
                scanned_to = seq;
                out.push(BatchItem { seq, id: uuid_of(row.get_ref(1)?.as_blob()?), body, redelivery: None });
            }
            Ok((out, scanned_to))
        })
    }

    /// Events queued again for `sink` by an operator, oldest first.
    pub(crate) fn redeliveries(&self, sink: &str, max_events: usize) -> Result<Vec<BatchItem>, StoreError> {
        self.with(|c| {
            let mut stmt = c.prepare_cached(
                "SELECT id, coalesce(event_seq, 0), body FROM redeliveries WHERE sink = ?1 ORDER BY id LIMIT ?2",
            )?;
            let rows = stmt.query_map(params![sink, max_events as i64], |r| {
                let body: String = r.get(2)?;
                let id = serde_json::from_str::<serde_json::Value>(&body)
                    .ok()
                    .and_then(|v| v.get("id").and_then(|v| v.as_str()).and_then(|s| s.parse().ok()))
                    .unwrap_or_default();
                Ok(BatchItem { seq: r.get::<_, i64>(1)? as u64, id, body, redelivery: Some(r.get(0)?) })
            })?;
            rows.collect()
        })
    }

    /// The oldest queued print job of `printer`: id and bytes.
    pub(crate) fn next_print_job(&self, printer: &str) -> Result<Option<(String, Vec<u8>)>, StoreError> {
        self.with(|c| super::print_jobs::next_queued(c, printer))
    }

    /// Jobs of `printer` in `state`, oldest first: id and bytes.
    pub(crate) fn print_jobs_in(
        &self,
        printer: &str,
        state: super::print_jobs::PrintJobState,
    ) -> Result<Vec<(String, Vec<u8>)>, StoreError> {
        self.with(|c| super::print_jobs::in_state(c, printer, state.as_str()))
    }

    /// Print jobs: unprinted ones first, then the most recent printed.
    pub(crate) fn print_jobs(&self, limit: usize) -> Result<Vec<super::print_jobs::PrintJobRow>, StoreError> {
        self.with(|c| super::print_jobs::recent(c, limit))
    }

    /// Up to `limit` scans waiting for `station`, oldest first.
    pub(crate) fn station_inputs(
        &self,
        station: &str,
        limit: usize,
    ) -> Result<Vec<super::station_inputs::StationInput>, StoreError> {
        self.with(|c| super::station_inputs::waiting(c, station, limit))
    }

    /// The state `station` saved with its last step.
    pub(crate) fn station_state(
        &self,
        station: &str,
    ) -> Result<Option<super::station_inputs::SavedStation>, StoreError> {
        self.with(|c| super::station_inputs::saved(c, station))
    }

    /// One print job and its bytes.
    pub fn print_job(&self, id: &str) -> Result<Option<(super::print_jobs::PrintJobRow, Vec<u8>)>, StoreError> {
        self.with(|c| super::print_jobs::find(c, id))
    }

    /// Every configured device's last state (for `/health`, without a full summary).
    pub(crate) fn devices(&self) -> Result<Vec<DeviceRow>, StoreError> {
        self.with(device_rows)
    }

    /// The config the daemon runs, as it recorded it (for `/health`, without a full summary).
    pub(crate) fn running_config(&self) -> Result<Option<super::running_config::RunningConfig>, StoreError> {
        self.with(super::running_config::read)
    }

    /// The batch `sink` last failed to deliver, if it still starts at the sink's cursor.
    pub(crate) fn formed_batch(&self, sink: &str) -> Result<Option<super::FormedBatch>, StoreError> {
        self.with(|c| {
            c.query_row(
                "SELECT b.key, b.after, b.last_seq, b.events FROM sink_batches b JOIN sinks s ON s.name = b.sink
                 WHERE b.sink = ?1 AND b.after = s.cursor",
                params![sink],
                |r| {
                    Ok(super::FormedBatch {
                        key: r.get(0)?,
                        after: r.get::<_, i64>(1)? as u64,
                        last_seq: r.get::<_, i64>(2)? as u64,
                        events: r.get::<_, i64>(3)? as u64,
                    })
                },
            )
            .optional()
        })
    }

    pub fn sink_state(&self, name: &str) -> Result<Option<SinkState>, StoreError> {
        self.with(|c| {
            c.query_row(&format!("SELECT {SINK_COLUMNS} FROM sinks WHERE name = ?1"), params![name], sink_row)
                .optional()
        })
    }

    /// The highest seq ever assigned (survives pruning).
    #[cfg(test)]
    pub(crate) fn last_seq(&self) -> Result<u64, StoreError> {
        self.with(last_seq)
    }

    /// Dead letters, newest first; retried ones only when `all` (what `dlq list` shows).
    pub(crate) fn dead_letters(&self, all: bool, limit: usize) -> Result<Vec<super::DeadLetterRow>, StoreError> {
        self.with(|c| super::admin::dead_letters_in(c, all, limit))
    }

    /// One dead letter in full (what `dlq show` shows).
    pub(crate) fn dead_letter(&self, id: i64) -> Result<Option<super::DeadLetterRow>, StoreError> {
        self.with(|c| super::admin::dead_letter_in(c, id))
    }

    pub(crate) fn summary(&self) -> Result<StoreSummary, StoreError> {
        let path = {
            let conn = self.conn.lock().unwrap_or_else(|p| p.into_inner());
            conn.path().map(PathBuf::from).unwrap_or_default()
        };
        let file_bytes =
            [path.clone(), wal_path(&path)].iter().filter_map(|p| std::fs::metadata(p).ok()).map(|m| m.len()).sum();
        self.with(|c| {
            c.execute_batch("BEGIN")?;
            let result = summary_in(c, path, file_bytes);
            c.execute_batch("COMMIT")?;
            result
        })
    }
}

fn summary_in(c: &Connection, path: PathBuf, file_bytes: u64) -> Result<StoreSummary, rusqlite::Error> {
    let last_seq = last_seq(c)?;
    let first: Option<i64> = c.query_row("SELECT min(seq) FROM events", [], |r| r.get(0))?;
    let events = first.map_or(0, |f| last_seq.saturating_sub(f as u64) + 1);
    let pages: i64 = c.query_row("PRAGMA page_count", [], |r| r.get(0))?;
    let free: i64 = c.query_row("PRAGMA freelist_count", [], |r| r.get(0))?;
    let page_size: i64 = c.query_row("PRAGMA page_size", [], |r| r.get(0))?;
    let mut stmt = c.prepare(&format!("SELECT {SINK_COLUMNS} FROM sinks ORDER BY retired_at IS NOT NULL, name"))?;
    let states: Vec<SinkState> = stmt.query_map([], sink_row)?.collect::<Result<_, _>>()?;
    let mut sinks = Vec::with_capacity(states.len());
    for state in states {
        let oldest_pending_at = c
            .query_row(
                "SELECT received_at FROM events WHERE seq > ?1 ORDER BY seq LIMIT 1",
                params![state.cursor as i64],
                |r| r.get::<_, i64>(0),
            )
            .optional()?
            .map(Timestamp::from_millis);
        let redeliveries: i64 =
            c.query_row("SELECT count(*) FROM redeliveries WHERE sink = ?1", params![state.name], |r| r.get(0))?;
        let pending = last_seq.saturating_sub(state.cursor);
        sinks.push(SinkSummary { state, pending, oldest_pending_at, redeliveries: redeliveries as u64 });
    }
    let mut stmt =
        c.prepare("SELECT sink, count(*) FROM dead_letters WHERE retried_at IS NULL GROUP BY sink ORDER BY sink")?;
    let dead_letters = stmt
        .query_map([], |r| Ok((r.get::<_, Option<String>>(0)?, r.get::<_, i64>(1)? as u64)))?
        .collect::<Result<_, _>>()?;
    let mut stmt = c.prepare("SELECT id, kind, message, raised_at FROM alarms WHERE cleared_at IS NULL ORDER BY id")?;
    let alarms = stmt
        .query_map([], |r| {
            Ok(AlarmRow {
                id: r.get(0)?,
                kind: r.get(1)?,
                message: r.get(2)?,
                raised_at: Timestamp::from_millis(r.get(3)?),
            })
        })?
        .collect::<Result<_, _>>()?;
    let devices = device_rows(c)?;
    let meta = |key: &str| -> Result<Option<String>, rusqlite::Error> {
        c.query_row("SELECT value FROM meta WHERE key = ?1", params![key], |r| r.get(0)).optional()
    };
    let ts = |v: Option<String>| v.and_then(|s| s.parse().ok()).map(Timestamp::from_millis);
    Ok(StoreSummary {
        path,
        file_bytes,
        used_bytes: ((pages - free).max(0) * page_size) as u64,
        last_seq,
        events,
        sinks,
        dead_letters,
        alarms,
        devices,
        print_jobs: super::print_jobs::recent(c, 200)?
            .into_iter()
            .filter(|j| j.state != super::print_jobs::PrintJobState::Printed)
            .rev()
            .collect(),
        print_job_counts: super::print_jobs::counts(c)?,
        stations: super::station_inputs::all_saved(c)?,
        station_backlog: super::station_inputs::backlog(c)?,
        heartbeat_at: ts(meta("heartbeat_at")?),
        stopped_at: ts(meta("stopped_at")?),
        pid: meta("pid")?.and_then(|s| s.parse().ok()),
        running_config: super::running_config::read(c)?,
    })
}

fn device_rows(c: &Connection) -> Result<Vec<DeviceRow>, rusqlite::Error> {
    // A store last opened by a dockhand without devices has no such table.
    let has_devices: bool =
        c.query_row("SELECT count(*) FROM sqlite_master WHERE type = 'table' AND name = 'devices'", [], |r| r.get(0))?;
    if !has_devices {
        return Ok(Vec::new());
    }
    let mut stmt = c.prepare("SELECT name, state, detail, since FROM devices ORDER BY name")?;
    stmt.query_map([], |r| {
        Ok(DeviceRow {
            name: r.get(0)?,
            state: DeviceCondition::parse(&r.get::<_, String>(1)?),
            detail: r.get(2)?,
            since: Timestamp::from_millis(r.get(3)?),
        })
    })?
    .collect()
}

/// The highest seq ever assigned: the recorded high-water mark, or the newest event.
pub(super) fn last_seq(c: &Connection) -> Result<u64, rusqlite::Error> {
    let high: Option<i64> =
        c.query_row("SELECT CAST(value AS INTEGER) FROM meta WHERE key = 'last_seq'", [], |r| r.get(0)).optional()?;
    let max: Option<i64> = c.query_row("SELECT max(seq) FROM events", [], |r| r.get(0))?;
    Ok(high.unwrap_or(0).max(max.unwrap_or(0)).max(0) as u64)
}

pub(super) fn wal_path(path: &Path) -> PathBuf {
    let mut s = path.as_os_str().to_os_string();
    s.push("-wal");
    PathBuf::from(s)
}

pub(super) const SINK_COLUMNS: &str = "name, cursor, delivered, retried, dead_lettered, attempts, next_attempt_at,
    last_success_at, last_error, last_error_at, paused, retired_at";

pub(super) fn sink_row(r: &rusqlite::Row<'_>) -> Result<SinkState, rusqlite::Error> {
    let ts = |i: usize| -> Result<Option<Timestamp>, rusqlite::Error> {
        Ok(r.get::<_, Option<i64>>(i)?.map(Timestamp::from_millis))
    };
    Ok(SinkState {
        name: r.get(0)?,
        cursor: r.get::<_, i64>(1)? as u64,
        delivered: r.get::<_, i64>(2)? as u64,
        retried: r.get::<_, i64>(3)? as u64,
        dead_lettered: r.get::<_, i64>(4)? as u64,
        attempts: r.get::<_, i64>(5)?.clamp(0, i64::from(u32::MAX)) as u32,
        next_attempt_at: ts(6)?,
        last_success_at: ts(7)?,
        last_error: r.get(8)?,
        last_error_at: ts(9)?,
        paused: r.get(10)?,
        retired_at: ts(11)?,
    })
}

pub(super) fn uuid_of(bytes: &[u8]) -> Uuid {
    Uuid::from_slice(bytes).unwrap_or_default()
}
