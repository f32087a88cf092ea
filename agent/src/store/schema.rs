//! Tables, indexes and connection settings of the store file. See the module doc of
//! [`crate::store`] for what each table means and when rows appear and disappear.

use rusqlite::Connection;

use super::StoreError;

/// Bumped when the schema changes; a file with a newer version is refused rather than misread.
pub(crate) const SCHEMA_VERSION: i64 = 1;

const DDL: &str = "
CREATE TABLE IF NOT EXISTS meta (
    key   TEXT PRIMARY KEY,
    value TEXT NOT NULL
) WITHOUT ROWID;

CREATE TABLE IF NOT EXISTS events (
    seq         INTEGER PRIMARY KEY,
    id          BLOB NOT NULL UNIQUE,
    kind        TEXT NOT NULL,
    partition   TEXT NOT NULL,
    received_at INTEGER NOT NULL,
    body        TEXT NOT NULL
);

CREATE TABLE IF NOT EXISTS sinks (
    name            TEXT PRIMARY KEY,
    cursor          INTEGER NOT NULL,
    delivered       INTEGER NOT NULL DEFAULT 0,
    retried         INTEGER NOT NULL DEFAULT 0,
    dead_lettered   INTEGER NOT NULL DEFAULT 0,
    attempts        INTEGER NOT NULL DEFAULT 0,
    next_attempt_at INTEGER,
    last_success_at INTEGER,
    last_error      TEXT,
    last_error_at   INTEGER,
    paused          TEXT,
    retired_at      INTEGER,
    created_at      INTEGER NOT NULL
) WITHOUT ROWID;

CREATE TABLE IF NOT EXISTS dead_letters (
    id         INTEGER PRIMARY KEY AUTOINCREMENT,
    sink       TEXT,
    event_id   BLOB,
    event_seq  INTEGER,
    origin     TEXT NOT NULL,
    reason     TEXT NOT NULL,
    body       BLOB NOT NULL,
    created_at INTEGER NOT NULL,
    retried_at INTEGER
);
CREATE INDEX IF NOT EXISTS dead_letters_by_time ON dead_letters (created_at);

CREATE TABLE IF NOT EXISTS redeliveries (
    id             INTEGER PRIMARY KEY AUTOINCREMENT,
    sink           TEXT NOT NULL,
    event_seq      INTEGER,
    body           TEXT NOT NULL,
    dead_letter_id INTEGER,
    created_at     INTEGER NOT NULL
);
CREATE INDEX IF NOT EXISTS redeliveries_by_sink ON redeliveries (sink, id);

-- The last known state of each configured device, kept in step with its device_status events
-- (the writer updates a row in the transaction that stores the event). Added without a schema
-- bump: an older dockhand ignores the table.
CREATE TABLE IF NOT EXISTS devices (
    name      TEXT PRIMARY KEY,
    state     TEXT NOT NULL,
    detail    TEXT,
    since     INTEGER NOT NULL,
    event_seq INTEGER
) WITHOUT ROWID;

-- The batch a sink sent and has to send again unchanged (same events, same Idempotency-Key,
-- contracts.md §3), written with each failed attempt so a restart or a reload resends it as it
-- was. One row per sink; a row whose `after` is no longer the sink's cursor is stale and ignored.
-- Added without a schema bump: an older dockhand ignores the table.
CREATE TABLE IF NOT EXISTS sink_batches (
    sink     TEXT PRIMARY KEY,
    key      TEXT NOT NULL,
    after    INTEGER NOT NULL,
    last_seq INTEGER NOT NULL,
    events   INTEGER NOT NULL
) WITHOUT ROWID;

CREATE TABLE IF NOT EXISTS alarms (
    id         INTEGER PRIMARY KEY AUTOINCREMENT,
    kind       TEXT NOT NULL,
    message    TEXT NOT NULL,
    raised_at  INTEGER NOT NULL,
    cleared_at INTEGER
);
";

/// Settings every connection gets. `synchronous=FULL` in WAL mode is what makes a commit survive
/// power loss, not just a process crash.
pub(crate) fn configure(conn: &Connection) -> Result<(), StoreError> {
    conn.busy_timeout(std::time::Duration::from_secs(10))?;
    conn.pragma_update(None, "synchronous", "FULL")?;
    conn.pragma_update(None, "foreign_keys", "OFF")?;
    // A small page cache per connection: the store streams, it never needs the backlog in memory.
    conn.pragma_update(None, "cache_size", -2048)?;
    Ok(())
}

/// Creates the tables in a new file, or checks the version of an existing one.
pub(crate) fn prepare(conn: &Connection) -> Result<(), StoreError> {
    // auto_vacuum must be chosen before the first table exists; it is ignored afterwards.
    conn.pragma_update(None, "auto_vacuum", "INCREMENTAL")?;
    let mode: String = conn.pragma_update_and_check(None, "journal_mode", "WAL", |r| r.get(0))?;
    if !mode.eq_ignore_ascii_case("wal") {
        return Err(StoreError::Setup(format!("the file system refused WAL mode (got `{mode}`)")));
    }
    conn.execute_batch(DDL)?;
    conn.execute_batch(super::print_jobs::DDL)?;
    conn.execute_batch(super::station_inputs::DDL)?;
    let version: Option<String> =
        conn.query_row("SELECT value FROM meta WHERE key = 'schema_version'", [], |r| r.get(0)).ok();
    match version.as_deref().map(str::parse::<i64>) {
        None => {
            conn.execute(
                "INSERT INTO meta (key, value) VALUES ('schema_version', ?1), ('created_at', ?2)",
                rusqlite::params![
                    SCHEMA_VERSION.to_string(),
                    crate::timestamp::Timestamp::now().as_millis().to_string()
                ],
            )?;
        }
        Some(Ok(SCHEMA_VERSION)) => {}
        Some(Ok(v)) if v > SCHEMA_VERSION => {
            return Err(StoreError::Setup(format!(
                "the store was written by a newer dockhand (schema {v}, this one reads {SCHEMA_VERSION}); upgrade dockhand"
            )));
        }
        Some(_) => return Err(StoreError::Setup(format!("unknown schema version {version:?}"))),
    }
    Ok(())
}
