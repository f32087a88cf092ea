//! Operator actions on the store, run by the CLI while the daemon may be running: dead-letter
//! handling, replay, and clearing alarms. Each action is one short transaction; the daemon's
//! dispatchers notice the change at their next batch (they re-read their sink row every time).

use std::path::Path;

use rusqlite::{Connection, OpenFlags, OptionalExtension, params};
use serde::Serialize;
use uuid::Uuid;

use super::StoreError;
use super::reader::uuid_of;
use crate::timestamp::Timestamp;

#[derive(Debug, Clone, Serialize)]
pub(crate) struct DeadLetterRow {
    pub(crate) id: i64,
    /// `None`: refused at ingest, never became an event.
    pub(crate) sink: Option<String>,
    pub(crate) event_id: Option<Uuid>,
    pub(crate) event_seq: Option<u64>,
    pub(crate) origin: String,
    pub(crate) reason: String,
    pub(crate) created_at: Timestamp,
    pub(crate) retried_at: Option<Timestamp>,
    pub(crate) body_bytes: usize,
    #[serde(skip)]
    pub(crate) body: Vec<u8>,
}

impl DeadLetterRow {
    /// The body as `dlq show` and the page show one that is not UTF-8: hex bytes, space-separated.
    pub(crate) fn body_hex(&self) -> String {
        self.body.iter().map(|b| format!("{b:02x}")).collect::<Vec<_>>().join(" ")
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub(crate) struct RetryReport {
    pub(crate) queued: u64,
    /// Ingest rejections cannot be retried: they never were valid events.
    pub(crate) not_retryable: Vec<i64>,
    pub(crate) missing: Vec<i64>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub(crate) struct ReplayReport {
    /// The sink will deliver again from this seq on.
    pub(crate) from_seq: u64,
    pub(crate) events: u64,
    /// Set when the requested time lies before the oldest event still stored.
    pub(crate) oldest_available: Option<Timestamp>,
}

#[derive(Debug)]
pub(crate) struct Admin {
    conn: Connection,
}

impl Admin {
    pub(crate) fn open(path: &Path) -> Result<Self, StoreError> {
        if !path.exists() {
            return Err(StoreError::Setup(format!("there is no store at {}", path.display())));
        }
        let conn =
            Connection::open_with_flags(path, OpenFlags::SQLITE_OPEN_READ_WRITE | OpenFlags::SQLITE_OPEN_NO_MUTEX)?;
        super::schema::configure(&conn)?;
        Ok(Self { conn })
    }

    /// Dead letters, newest first; retried ones only when `all`.
    pub(crate) fn dead_letters(&self, all: bool, limit: usize) -> Result<Vec<DeadLetterRow>, StoreError> {
        Ok(dead_letters_in(&self.conn, all, limit)?)
    }

    pub(crate) fn dead_letter(&self, id: i64) -> Result<Option<DeadLetterRow>, StoreError> {
        Ok(dead_letter_in(&self.conn, id)?)
    }

    /// The dead letters of one event (one per sink that refused it), oldest first.
    pub(crate) fn dead_letters_of_event(&self, event: uuid::Uuid) -> Result<Vec<DeadLetterRow>, StoreError> {
        let mut stmt =
            self.conn.prepare(&format!("SELECT {DL_COLUMNS} FROM dead_letters WHERE event_id = ?1 ORDER BY id"))?;
        let rows = stmt.query_map(params![&event.as_bytes()[..]], dead_letter_row)?;
        Ok(rows.collect::<Result<_, _>>()?)
    }

    /// Queues dead letters for delivery to their sink again (`ids = None`: every open one).
    pub(crate) fn retry_dead_letters(&mut self, ids: Option<&[i64]>) -> Result<RetryReport, StoreError> {
        let tx = self.conn.transaction()?;
        let wanted: Vec<i64> = match ids {
            Some(ids) => ids.to_vec(),
            None => {
                let mut stmt = tx.prepare("SELECT id FROM dead_letters WHERE retried_at IS NULL ORDER BY id")?;
                stmt.query_map([], |r| r.get(0))?.collect::<Result<_, _>>()?
            }
        };
        let mut report = RetryReport { queued: 0, not_retryable: Vec::new(), missing: Vec::new() };
        let now = Timestamp::now().as_millis();
        for id in wanted {
            let row: Option<(Option<String>, Option<i64>, Vec<u8>)> = tx
                .query_row("SELECT sink, event_seq, body FROM dead_letters WHERE id = ?1", params![id], |r| {
                    Ok((r.get(0)?, r.get(1)?, r.get(2)?))
                })
                .optional()?;
            match row {
                None => report.missing.push(id),
                Some((None, _, _)) => report.not_retryable.push(id),
                Some((Some(sink), seq, body)) => {
                    tx.execute(
                        "INSERT INTO redeliveries (sink, event_seq, body, dead_letter_id, created_at) VALUES (?1, ?2, ?3, ?4, ?5)",
                        params![sink, seq, String::from_utf8_lossy(&body), id, now],
                    )?;
                    tx.execute("UPDATE dead_letters SET retried_at = ?2 WHERE id = ?1", params![id, now])?;
                    report.queued += 1;
                }
            }
        }
        tx.commit()?;
        Ok(report)
    }

    /// Deletes dead letters recorded before `cutoff`. Returns how many.
    pub(crate) fn purge_dead_letters(&self, cutoff: Timestamp) -> Result<usize, StoreError> {
        Ok(self.conn.execute("DELETE FROM dead_letters WHERE created_at < ?1", params![cutoff.as_millis()])?)
    }

    /// Moves `sink` back so that it delivers again every stored event that arrived at or after
    /// `since`, with unchanged ids. Events already pruned cannot be replayed.
    pub(crate) fn replay(&mut self, sink: &str, since: Timestamp) -> Result<ReplayReport, StoreError> {
        let tx = self.conn.transaction()?;
        let cursor: Option<i64> =
            tx.query_row("SELECT cursor FROM sinks WHERE name = ?1", params![sink], |r| r.get(0)).optional()?;
        let Some(cursor) = cursor else {
            return Err(StoreError::Setup(format!("no sink named `{sink}` in this store")));
        };
        let bounds: (Option<i64>, Option<i64>) =
            tx.query_row("SELECT min(seq), max(seq) FROM events", [], |r| Ok((r.get(0)?, r.get(1)?)))?;
        let (Some(first), Some(last)) = bounds else {
            return Ok(ReplayReport { from_seq: 0, events: 0, oldest_available: None });
        };
        let received = |seq: i64| -> Result<i64, rusqlite::Error> {
            tx.query_row("SELECT received_at FROM events WHERE seq >= ?1 ORDER BY seq LIMIT 1", params![seq], |r| {
                r.get(0)
            })
        };
        // Events are appended as they arrive, so received_at follows seq: binary search instead of
        // scanning a large store.
        let oldest = received(first)?;
        let (mut lo, mut hi) = (first, last + 1);
        while lo < hi {
            let mid = lo + (hi - lo) / 2;
            if received(mid)? >= since.as_millis() { hi = mid } else { lo = mid + 1 }
        }
        let from = lo;
        let new_cursor = (from - 1).min(cursor);
        tx.execute("UPDATE sinks SET cursor = ?2 WHERE name = ?1", params![sink, new_cursor])?;
        tx.commit()?;
        Ok(ReplayReport {
            from_seq: from as u64,
            events: (last - new_cursor).max(0) as u64,
            oldest_available: (since.as_millis() < oldest).then(|| Timestamp::from_millis(oldest)),
        })
    }

    /// A change to the print queue from a command-line tool (SQLite serialises it with the
    /// daemon's writer).
    pub(crate) fn print_job(
        &self,
        change: super::print_jobs::PrintJobChange,
    ) -> Result<super::print_jobs::PrintJobAnswer, StoreError> {
        super::print_jobs::apply(&self.conn, change)
    }

    /// Queues a job's label again as a new job `<id>-reprint-<n>` (the running daemon picks it up
    /// within a second). Returns the new job's id.
    pub(crate) fn reprint(&self, id: &str) -> Result<String, StoreError> {
        let Some((job, body)) = super::print_jobs::find(&self.conn, id)? else {
            return Err(StoreError::Setup(format!("there is no print job `{id}` (dockhand print list shows them)")));
        };
        let original = job.reprint_of.unwrap_or(job.id);
        let earlier: i64 =
            self.conn
                .query_row("SELECT count(*) FROM print_jobs WHERE reprint_of = ?1", params![original], |r| r.get(0))?;
        let new_id = format!("{original}-reprint-{}", earlier + 1);
        let change = super::print_jobs::PrintJobChange::Enqueue(super::print_jobs::NewPrintJob {
            id: new_id.clone(),
            printer: job.printer,
            body,
            origin: "reprint".into(),
            reprint_of: Some(original),
        });
        super::print_jobs::apply(&self.conn, change)?;
        Ok(new_id)
    }

    pub(crate) fn clear_alarms(&self) -> Result<usize, StoreError> {
        Ok(self.conn.execute(
            "UPDATE alarms SET cleared_at = ?1 WHERE cleared_at IS NULL",
            params![Timestamp::now().as_millis()],
        )?)
    }
}

/// Dead letters, newest first; retried ones only when `all` (shared with [`super::StoreReader`]).
pub(super) fn dead_letters_in(
    conn: &Connection,
    all: bool,
    limit: usize,
) -> Result<Vec<DeadLetterRow>, rusqlite::Error> {
    let sql = format!(
        "SELECT {DL_COLUMNS} FROM dead_letters {} ORDER BY id DESC LIMIT ?1",
        if all { "" } else { "WHERE retried_at IS NULL" }
    );
    let mut stmt = conn.prepare_cached(&sql)?;
    let rows = stmt.query_map(params![limit as i64], dead_letter_row)?;
    rows.collect()
}

pub(super) fn dead_letter_in(conn: &Connection, id: i64) -> Result<Option<DeadLetterRow>, rusqlite::Error> {
    conn.query_row(&format!("SELECT {DL_COLUMNS} FROM dead_letters WHERE id = ?1"), params![id], dead_letter_row)
        .optional()
}

const DL_COLUMNS: &str = "id, sink, event_id, event_seq, origin, reason, created_at, retried_at, body";

fn dead_letter_row(r: &rusqlite::Row<'_>) -> Result<DeadLetterRow, rusqlite::Error> {
    let body: Vec<u8> = r.get(8)?;
    Ok(DeadLetterRow {
        id: r.get(0)?,
        sink: r.get(1)?,
        event_id: r.get::<_, Option<Vec<u8>>>(2)?.map(|b| uuid_of(&b)),
        event_seq: r.get::<_, Option<i64>>(3)?.map(|s| s as u64),
        origin: r.get(4)?,
        reason: r.get(5)?,
        created_at: Timestamp::from_millis(r.get(6)?),
        retried_at: r.get::<_, Option<i64>>(7)?.map(Timestamp::from_millis),
        body_bytes: body.len(),
        body,
    })
}
