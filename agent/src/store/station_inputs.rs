//! The durable hand-off from a station's scanner to the station, and the station's saved state.
//!
//! A scan that belongs to a station is committed here (`station_inputs`) before it is
//! acknowledged to anyone (a firmware-bridge gets its PUBACK after this commit), then the station
//! consumes the rows in `seq` order. Consuming a scan is one transaction with everything it
//! caused: the events it produced, the labels it queued, and the station's new state
//! (`station_state`). So after a kill the station restarts exactly where its last commit left
//! it: every scan is either still waiting, or its effects and the state it led to are stored.
//!
//! Rows are kept for a day after they were consumed, so a firmware-bridge that sends a scan again
//! (its PUBACK was lost in the kill) finds its id and the scan is not applied twice; then pruned.

use rusqlite::{Connection, OptionalExtension, params};

use super::StoreError;
use crate::timestamp::Timestamp;

pub(super) const DDL: &str = "
CREATE TABLE IF NOT EXISTS station_inputs (
    seq         INTEGER PRIMARY KEY AUTOINCREMENT,
    station     TEXT NOT NULL,
    device      TEXT NOT NULL,
    id          BLOB NOT NULL UNIQUE,
    occurred_at INTEGER NOT NULL,
    body        TEXT NOT NULL,
    consumed_at INTEGER,
    -- What the station told the operator when it consumed the scan (JSON list of
    -- {step, message}): the durable answer to 'what became of this scan?'.
    outcome     TEXT
);
CREATE INDEX IF NOT EXISTS station_inputs_waiting ON station_inputs (station, seq) WHERE consumed_at IS NULL;
CREATE INDEX IF NOT EXISTS station_inputs_consumed ON station_inputs (consumed_at) WHERE consumed_at IS NOT NULL;

CREATE TABLE IF NOT EXISTS station_state (
    station    TEXT PRIMARY KEY,
    workflow   TEXT NOT NULL,
    state      TEXT NOT NULL,
    summary    TEXT NOT NULL,
    updated_at INTEGER NOT NULL
) WITHOUT ROWID;
";

/// How long a consumed scan's id is remembered (a bridge resends within seconds of a restart).
const KEEP_CONSUMED_MS: u64 = 24 * 3600 * 1000;

/// A scan for a station, to store before it is acknowledged.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewStationInput {
    pub station: String,
    pub device: String,
    /// The scan's id: the firmware-bridge's, or a fresh one for a local scanner.
    pub id: uuid::Uuid,
    pub occurred_at: Timestamp,
    /// `{"scan": <scan payload>, "problem": <why it could not be interpreted, or null>}`.
    pub body: String,
}

/// A scan waiting for its station.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct StationInput {
    pub(crate) seq: u64,
    pub(crate) device: String,
    pub(crate) id: uuid::Uuid,
    pub(crate) occurred_at: Timestamp,
    pub(crate) body: String,
}

/// The station's state after a step, saved with the step's effects.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub(crate) struct SavedStation {
    pub(crate) station: String,
    pub(crate) workflow: String,
    /// The workflow's state as JSON (see `stations::workflow::Saved`).
    pub(crate) state: String,
    /// One line for `status`: what the station waits for.
    pub(crate) summary: String,
    pub(crate) updated_at: Timestamp,
}

pub(super) fn insert(conn: &Connection, input: &NewStationInput) -> Result<bool, StoreError> {
    let n = conn
        .prepare_cached(
            "INSERT INTO station_inputs (station, device, id, occurred_at, body) VALUES (?1, ?2, ?3, ?4, ?5)
             ON CONFLICT (id) DO NOTHING",
        )?
        .execute(params![
            input.station,
            input.device,
            &input.id.as_bytes()[..],
            input.occurred_at.as_millis(),
            input.body
        ])?;
    Ok(n == 1)
}

pub(super) fn consume(conn: &Connection, station: &str, seq: u64, outcome: &str) -> Result<(), StoreError> {
    conn.prepare_cached(
        "UPDATE station_inputs SET consumed_at = ?3, outcome = ?4
         WHERE seq = ?1 AND station = ?2 AND consumed_at IS NULL",
    )?
    .execute(params![seq as i64, station, Timestamp::now().as_millis(), outcome])?;
    Ok(())
}

pub(super) fn save(conn: &Connection, saved: &SavedStation) -> Result<(), StoreError> {
    conn.prepare_cached(
        "INSERT OR REPLACE INTO station_state (station, workflow, state, summary, updated_at)
         VALUES (?1, ?2, ?3, ?4, ?5)",
    )?
    .execute(params![saved.station, saved.workflow, saved.state, saved.summary, saved.updated_at.as_millis()])?;
    Ok(())
}

/// Forgets consumed scans older than a day, a bounded number per call.
pub(super) fn prune(conn: &Connection, limit: i64) -> Result<usize, StoreError> {
    let cutoff = Timestamp::now().saturating_sub_millis(KEEP_CONSUMED_MS).as_millis();
    Ok(conn.execute(
        "DELETE FROM station_inputs WHERE seq IN (
            SELECT seq FROM station_inputs WHERE consumed_at IS NOT NULL AND consumed_at < ?1 LIMIT ?2)",
        params![cutoff, limit],
    )?)
}

fn has_table(conn: &Connection) -> rusqlite::Result<bool> {
    conn.query_row("SELECT count(*) FROM sqlite_master WHERE name = 'station_inputs'", [], |r| r.get::<_, i64>(0))
        .map(|n| n > 0)
}

/// Up to `limit` scans waiting for `station`, oldest first.
pub(super) fn waiting(conn: &Connection, station: &str, limit: usize) -> rusqlite::Result<Vec<StationInput>> {
    if !has_table(conn)? {
        return Ok(Vec::new());
    }
    let mut stmt = conn.prepare_cached(
        "SELECT seq, device, id, occurred_at, body FROM station_inputs
         WHERE station = ?1 AND consumed_at IS NULL ORDER BY seq LIMIT ?2",
    )?;
    let rows = stmt.query_map(params![station, limit as i64], |r| {
        let id: Vec<u8> = r.get(2)?;
        Ok(StationInput {
            seq: r.get::<_, i64>(0)? as u64,
            device: r.get(1)?,
            id: uuid::Uuid::from_slice(&id).unwrap_or_default(),
            occurred_at: Timestamp::from_millis(r.get(3)?),
            body: r.get(4)?,
        })
    })?;
    rows.collect()
}

/// How many scans wait for each station.
pub(super) fn backlog(conn: &Connection) -> rusqlite::Result<Vec<(String, u64)>> {
    if !has_table(conn)? {
        return Ok(Vec::new());
    }
    let mut stmt = conn.prepare_cached(
        "SELECT station, count(*) FROM station_inputs WHERE consumed_at IS NULL GROUP BY station ORDER BY station",
    )?;
    let rows = stmt.query_map([], |r| Ok((r.get(0)?, r.get::<_, i64>(1)? as u64)))?;
    rows.collect()
}

pub(super) fn saved(conn: &Connection, station: &str) -> rusqlite::Result<Option<SavedStation>> {
    if !has_table(conn)? {
        return Ok(None);
    }
    conn.query_row(
        "SELECT station, workflow, state, summary, updated_at FROM station_state WHERE station = ?1",
        params![station],
        saved_row,
    )
    .optional()
}

pub(super) fn all_saved(conn: &Connection) -> rusqlite::Result<Vec<SavedStation>> {
    if !has_table(conn)? {
        return Ok(Vec::new());
    }
    let mut stmt = conn
        .prepare_cached("SELECT station, workflow, state, summary, updated_at FROM station_state ORDER BY station")?;
    let rows = stmt.query_map([], saved_row)?;
    rows.collect()
}

fn saved_row(r: &rusqlite::Row<'_>) -> rusqlite::Result<SavedStation> {
    Ok(SavedStation {
        station: r.get(0)?,
        workflow: r.get(1)?,
        state: r.get(2)?,
        summary: r.get(3)?,
        updated_at: Timestamp::from_millis(r.get(4)?),
    })
}
