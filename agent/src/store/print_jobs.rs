//! The durable print-job queue: labels waiting for their printer, and what became of each.
//!
//! A job is stored (rendered, as the exact bytes for the printer) before it is acknowledged to
//! whoever sent it, and goes through `queued` → `sending` → `printed`. `sending` is committed
//! *before* the bytes are written, so after a crash a job is never sent twice on its own: a job
//! found in `sending` at start-up may or may not have printed, becomes `uncertain`, and raises an
//! alarm; only an operator's `dockhand print reprint ID` prints it again (as a new job that
//! names the original). A job id is unique: the same job submitted twice is stored once.
//!
//! The writer thread runs the mutations (one transaction group with everything else); the
//! printer task and the CLI read with their own connections.

use rusqlite::{Connection, OptionalExtension, params};
use serde::Serialize;

use super::StoreError;
use crate::timestamp::Timestamp;

pub(super) const DDL: &str = "
CREATE TABLE IF NOT EXISTS print_jobs (
    id          TEXT PRIMARY KEY,
    printer     TEXT NOT NULL,
    body        BLOB NOT NULL,
    origin      TEXT NOT NULL,
    state       TEXT NOT NULL,
    reprint_of  TEXT,
    attempts    INTEGER NOT NULL DEFAULT 0,
    last_error  TEXT,
    created_at  INTEGER NOT NULL,
    sent_at     INTEGER,
    printed_at  INTEGER
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS print_jobs_queue ON print_jobs (printer, state, created_at);
";

/// A job to store.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct NewPrintJob {
    pub(crate) id: String,
    pub(crate) printer: String,
    /// The bytes for the printer, rendered.
    pub(crate) body: Vec<u8>,
    /// `mqtt`, `station`, `test`, `reprint`.
    pub(crate) origin: String,
    pub(crate) reprint_of: Option<String>,
}

/// What the writer did with a job request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum PrintJobChange {
    /// Store a new job (answer: `Stored(true)`, or `Stored(false)` for a known id).
    Enqueue(NewPrintJob),
    /// About to write it to the printer.
    Sending { id: String },
    /// The printer took every byte.
    Printed { id: String },
    /// Writing failed part-way: it may or may not have printed.
    Uncertain { id: String, error: String },
    /// Take a job back while it is still only queued (answer: `Withdrawn(true)`); one already
    /// being sent or printed stays. `print-test` uses it so a test label never prints late.
    Withdraw { id: String },
    /// At a printer task's start: jobs left in `sending` by a crash become `uncertain` (answer:
    /// their ids), each with an alarm.
    RecoverInterrupted { printer: String },
}

/// The writer's answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum PrintJobAnswer {
    Stored(bool),
    Done,
    Recovered(Vec<String>),
    Withdrawn(bool),
}

pub(super) fn apply(conn: &Connection, change: PrintJobChange) -> Result<PrintJobAnswer, StoreError> {
    let now = Timestamp::now().as_millis();
    Ok(match change {
        PrintJobChange::Enqueue(job) => {
            let n = conn
                .prepare_cached(
                    "INSERT INTO print_jobs (id, printer, body, origin, state, reprint_of, created_at)
                 VALUES (?1, ?2, ?3, ?4, 'queued', ?5, ?6) ON CONFLICT (id) DO NOTHING",
                )?
                .execute(params![job.id, job.printer, job.body, job.origin, job.reprint_of, now])?;
            PrintJobAnswer::Stored(n == 1)
        }
        PrintJobChange::Sending { id } => {
            conn.prepare_cached(
                "UPDATE print_jobs SET state = 'sending', sent_at = ?2, attempts = attempts + 1 WHERE id = ?1",
            )?
            .execute(params![id, now])?;
            PrintJobAnswer::Done
        }
        PrintJobChange::Printed { id } => {
            conn.prepare_cached(
                "UPDATE print_jobs SET state = 'printed', printed_at = ?2, last_error = NULL WHERE id = ?1",
            )?
            .execute(params![id, now])?;
            PrintJobAnswer::Done
        }
        PrintJobChange::Uncertain { id, error } => {
            conn.prepare_cached("UPDATE print_jobs SET state = 'uncertain', last_error = ?2 WHERE id = ?1")?
                .execute(params![id, error])?;
            raise_uncertain_alarm(conn, &id, &error, now)?;
            PrintJobAnswer::Done
        }
        PrintJobChange::Withdraw { id } => {
            let n = conn
                .prepare_cached("DELETE FROM print_jobs WHERE id = ?1 AND state = 'queued'")?
                .execute(params![id])?;
            PrintJobAnswer::Withdrawn(n == 1)
        }
        PrintJobChange::RecoverInterrupted { printer } => {
            let mut stmt = conn.prepare("SELECT id FROM print_jobs WHERE printer = ?1 AND state = 'sending'")?;
            let ids: Vec<String> = stmt.query_map(params![printer], |r| r.get(0))?.collect::<Result<_, _>>()?;
            for id in &ids {
                let why = "dockhand stopped while sending it";
                conn.execute(
                    "UPDATE print_jobs SET state = 'uncertain', last_error = ?2 WHERE id = ?1",
                    params![id, why],
                )?;
                raise_uncertain_alarm(conn, id, why, now)?;
            }
            PrintJobAnswer::Recovered(ids)
        }
    })
}

fn raise_uncertain_alarm(conn: &Connection, id: &str, why: &str, now: i64) -> Result<(), StoreError> {
    conn.execute(
        "INSERT INTO alarms (kind, message, raised_at) VALUES ('print_uncertain', ?1, ?2)",
        params![
            format!(
                "print job {id} may or may not have printed ({why}); check the printer, then `dockhand print reprint {id}` if the label is missing"
            ),
            now
        ],
    )?;
    Ok(())
}

/// Where a job is (`print_jobs.state`): waiting, being sent, sent, or cut off part-way.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum PrintJobState {
    Queued,
    Sending,
    Printed,
    /// The connection dropped while the job was being sent: it may or may not have printed.
    Uncertain,
}

impl PrintJobState {
    pub(crate) const ALL: [PrintJobState; 4] =
        [PrintJobState::Queued, PrintJobState::Sending, PrintJobState::Uncertain, PrintJobState::Printed];

    pub(crate) fn as_str(self) -> &'static str {
        match self {
            PrintJobState::Queued => "queued",
            PrintJobState::Sending => "sending",
            PrintJobState::Printed => "printed",
            PrintJobState::Uncertain => "uncertain",
        }
    }

    fn parse(text: &str) -> rusqlite::Result<PrintJobState> {
        PrintJobState::ALL.into_iter().find(|s| s.as_str() == text).ok_or_else(|| {
            rusqlite::Error::FromSqlConversionFailure(
                3,
                rusqlite::types::Type::Text,
                format!("`{text}` is not a print job state").into(),
            )
        })
    }
}

impl std::fmt::Display for PrintJobState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.pad(self.as_str())
    }
}

/// A job as the queue and `status` see it.
#[derive(Debug, Clone, Serialize)]
pub struct PrintJobRow {
    pub(crate) id: String,
    pub(crate) printer: String,
    pub origin: String,
    pub state: PrintJobState,
    pub(crate) reprint_of: Option<String>,
    pub(crate) attempts: i64,
    pub(crate) last_error: Option<String>,
    pub(crate) created_at: Timestamp,
    pub(crate) printed_at: Option<Timestamp>,
    pub(crate) bytes: usize,
}

const COLUMNS: &str =
    "id, printer, origin, state, reprint_of, attempts, last_error, created_at, printed_at, length(body)";

fn row(r: &rusqlite::Row<'_>) -> rusqlite::Result<PrintJobRow> {
    Ok(PrintJobRow {
        id: r.get(0)?,
        printer: r.get(1)?,
        origin: r.get(2)?,
        state: PrintJobState::parse(&r.get::<_, String>(3)?)?,
        reprint_of: r.get(4)?,
        attempts: r.get(5)?,
        last_error: r.get(6)?,
        created_at: Timestamp::from_millis(r.get(7)?),
        printed_at: r.get::<_, Option<i64>>(8)?.map(Timestamp::from_millis),
        bytes: r.get::<_, i64>(9)? as usize,
    })
}

fn has_table(conn: &Connection) -> rusqlite::Result<bool> {
    conn.query_row("SELECT count(*) FROM sqlite_master WHERE type = 'table' AND name = 'print_jobs'", [], |r| {
        r.get::<_, i64>(0)
    })
    .map(|n| n > 0)
}

/// The oldest queued job of `printer`, with its bytes.
pub(super) fn next_queued(conn: &Connection, printer: &str) -> rusqlite::Result<Option<(String, Vec<u8>)>> {
    if !has_table(conn)? {
        return Ok(None);
    }
    conn.query_row(
        "SELECT id, body FROM print_jobs WHERE printer = ?1 AND state = 'queued' ORDER BY created_at, id LIMIT 1",
        params![printer],
        |r| Ok((r.get(0)?, r.get(1)?)),
    )
    .optional()
}

/// Jobs of `printer` in `state`, oldest first.
pub(super) fn in_state(conn: &Connection, printer: &str, state: &str) -> rusqlite::Result<Vec<(String, Vec<u8>)>> {
    if !has_table(conn)? {
        return Ok(Vec::new());
    }
    let mut stmt =
        conn.prepare("SELECT id, body FROM print_jobs WHERE printer = ?1 AND state = ?2 ORDER BY created_at, id")?;
    stmt.query_map(params![printer, state], |r| Ok((r.get(0)?, r.get(1)?)))?.collect()
}

/// Jobs not printed yet (queued, sending, uncertain), then the most recent printed ones.
pub(super) fn recent(conn: &Connection, limit: usize) -> rusqlite::Result<Vec<PrintJobRow>> {
    if !has_table(conn)? {
        return Ok(Vec::new());
    }
    let mut stmt = conn
        .prepare(&format!("SELECT {COLUMNS} FROM print_jobs ORDER BY state = 'printed', created_at DESC LIMIT ?1"))?;
    stmt.query_map(params![limit as i64], row)?.collect()
}

/// How many jobs are in each state (`printed` included), by state name.
pub(super) fn counts(conn: &Connection) -> rusqlite::Result<Vec<(PrintJobState, u64)>> {
    if !has_table(conn)? {
        return Ok(Vec::new());
    }
    let mut stmt = conn.prepare("SELECT state, count(*) FROM print_jobs GROUP BY state ORDER BY state")?;
    stmt.query_map([], |r| Ok((PrintJobState::parse(&r.get::<_, String>(0)?)?, r.get::<_, i64>(1)? as u64)))?.collect()
}

pub(super) fn find(conn: &Connection, id: &str) -> rusqlite::Result<Option<(PrintJobRow, Vec<u8>)>> {
    if !has_table(conn)? {
        return Ok(None);
    }
    conn.query_row(&format!("SELECT {COLUMNS}, body FROM print_jobs WHERE id = ?1"), params![id], |r| {
        Ok((row(r)?, r.get(10)?))
    })
    .optional()
}
