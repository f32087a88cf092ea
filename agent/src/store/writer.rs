//! The single writer: group commit of every write the daemon makes, plus the housekeeping
//! (pruning, incremental vacuum, heartbeat) between groups.

use std::path::PathBuf;
use std::sync::mpsc::{Receiver, RecvTimeoutError};
use std::time::{Duration, Instant};

use rusqlite::{Connection, params};
use tokio::sync::{oneshot, watch};
use tracing::{debug, warn};

use super::{Appended, NewDeadLetter, SinkFailure, SinkProgress, StoreError, StoreOptions};
use crate::event::{DeviceStatusPayload, Payload, PreparedEvent};
use crate::timestamp::Timestamp;

type Reply<T> = oneshot::Sender<Result<T, StoreError>>;

pub(super) enum Request {
    Append { events: Vec<PreparedEvent>, reply: Reply<Vec<Appended>> },
    DeadLetter { entry: NewDeadLetter, reply: Reply<()> },
    Progress { progress: SinkProgress, reply: Reply<()> },
    Failure { failure: SinkFailure, reply: Reply<()> },
    RegisterSinks { names: Vec<String>, reply: Reply<()> },
    RegisterDevices { names: Vec<String>, reply: Reply<()> },
    RunningConfig { change: super::running_config::ConfigChange, reply: Reply<()> },
    PrintJob { change: super::print_jobs::PrintJobChange, reply: Reply<super::print_jobs::PrintJobAnswer> },
    StationInput { input: super::station_inputs::NewStationInput, reply: Reply<bool> },
    StationStep { step: super::StationStep, reply: Reply<Vec<Appended>> },
}

impl Request {
    fn weight(&self) -> usize {
        match self {
            Request::Append { events, .. } => events.len(),
            Request::StationStep { step, .. } => step.events.len().max(1),
            _ => 1,
        }
    }
}

/// An answer held back until the transaction it belongs to is committed.
enum Answer {
    Append(Reply<Vec<Appended>>, Result<Vec<Appended>, StoreError>),
    Unit(Reply<()>, Result<(), StoreError>),
    PrintJob(Reply<super::print_jobs::PrintJobAnswer>, Result<super::print_jobs::PrintJobAnswer, StoreError>),
    Bool(Reply<bool>, Result<bool, StoreError>),
}

impl Answer {
    fn send(self) {
        // A caller that stopped waiting (shutdown, timeout) is not an error for the writer.
        match self {
            Answer::Append(r, v) => drop(r.send(v)),
            Answer::Unit(r, v) => drop(r.send(v)),
            Answer::PrintJob(r, v) => drop(r.send(v)),
            Answer::Bool(r, v) => drop(r.send(v)),
        }
    }

    fn fail(self, message: &str) {
        let err = || StoreError::Commit(message.to_string());
        match self {
            Answer::Append(r, _) => drop(r.send(Err(err()))),
            Answer::Unit(r, _) => drop(r.send(Err(err()))),
            Answer::PrintJob(r, _) => drop(r.send(Err(err()))),
            Answer::Bool(r, _) => drop(r.send(Err(err()))),
        }
    }
}

/// Rows pruned per housekeeping step: small, so an append never waits long behind a prune.
const PRUNE_BATCH: i64 = 1000;
/// Free pages returned to the file system per housekeeping step.
const VACUUM_PAGES: i64 = 2048;
/// Fewer free pages than this are left for new rows to reuse.
const VACUUM_MIN_FREE_PAGES: i64 = 64;
const HOUSEKEEPING_EVERY: Duration = Duration::from_secs(1);
const HEARTBEAT_EVERY: Duration = Duration::from_secs(5);
/// A group commit slower than this is logged: it delays every acknowledgement in the group.
const SLOW_COMMIT: Duration = Duration::from_millis(50);
/// Pruning or vacuum that holds appends up this long is logged.
const SLOW_HOUSEKEEPING: Duration = Duration::from_millis(250);
/// Estimated bytes a row costs beyond its body (row header, id index entry, page slack).
const ROW_OVERHEAD: u64 = 96;

pub(super) struct Writer {
    conn: Connection,
    path: PathBuf,
    next_seq: u64,
    max_bytes: u64,
    retention_ms: u64,
    max_group_events: usize,
    page_size: u64,
    damage: watch::Sender<Option<String>>,
    last_housekeeping: Instant,
    last_heartbeat: Option<Instant>,
    beat: std::sync::Arc<std::sync::atomic::AtomicU64>,
    opened: Instant,
}

impl Writer {
    pub(super) fn new(
        conn: Connection,
        options: &StoreOptions,
        damage: watch::Sender<Option<String>>,
        beat: std::sync::Arc<std::sync::atomic::AtomicU64>,
        opened: Instant,
    ) -> Result<Self, StoreError> {
        // The high-water mark survives pruning of every event: seq never goes backwards.
        let last = super::reader::last_seq(&conn)?;
        let page_size: i64 = conn.query_row("PRAGMA page_size", [], |r| r.get(0))?;
        Ok(Self {
            conn,
            path: options.path.clone(),
            next_seq: last + 1,
            max_bytes: options.max_bytes,
            retention_ms: options.retention_ms,
            max_group_events: options.max_group_events.max(1),
            page_size: page_size as u64,
            damage,
            last_housekeeping: Instant::now(),
            last_heartbeat: None,
            beat,
            opened,
        })
    }

    pub(super) fn last_seq(&self) -> u64 {
        self.next_seq - 1
    }

    pub(super) fn run(mut self, rx: Receiver<Request>, last_seq: watch::Sender<u64>) {
        self.heartbeat(false);
        loop {
            self.beat.store(self.opened.elapsed().as_millis() as u64, std::sync::atomic::Ordering::Relaxed);
            let first = match rx.recv_timeout(HOUSEKEEPING_EVERY) {
                Ok(r) => r,
                Err(RecvTimeoutError::Timeout) => {
                    self.housekeeping();
                    continue;
                }
                Err(RecvTimeoutError::Disconnected) => break,
            };
            let mut weight = first.weight();
            let mut group = vec![first];
            while weight < self.max_group_events {
                match rx.try_recv() {
                    Ok(r) => {
                        weight += r.weight();
                        group.push(r);
                    }
                    Err(_) => break,
                }
            }
            let before = self.next_seq;
            let started = Instant::now();
            let requests = group.len();
            self.commit_group(group);
            let took = started.elapsed();
            if took >= SLOW_COMMIT {
                warn!(
                    ms = took.as_millis() as u64,
                    requests,
                    events = weight,
                    "Slow commit: the disk took long to make a group durable."
                );
            }
            if self.next_seq != before {
                last_seq.send_replace(self.next_seq - 1);
            }
            if self.last_housekeeping.elapsed() >= HOUSEKEEPING_EVERY {
                self.housekeeping();
            }
        }
        self.heartbeat(true);
        if let Err(e) = self.conn.execute_batch("PRAGMA wal_checkpoint(TRUNCATE)") {
            debug!(error = %e, "Final checkpoint skipped.");
        }
        debug!("Store writer stopped.");
    }

    fn commit_group(&mut self, group: Vec<Request>) {
        let seq_before = self.next_seq;
        let mut answers = Vec::with_capacity(group.len());
        let result = (|| -> Result<(), StoreError> {
            let mut budget = self.max_bytes.saturating_sub(self.used_bytes()?);
            self.conn.execute_batch("BEGIN IMMEDIATE")?;
            for request in group {
                match request {
                    Request::Append { events, reply } => {
                        let need: u64 = events.iter().map(estimated_size).sum();
                        if need > budget {
                            let used = self.max_bytes - budget;
                            answers.push(Answer::Append(reply, Err(StoreError::Full { used, max: self.max_bytes })));
                            continue;
                        }
                        budget -= need;
                        let stored = self.append(&events)?;
                        answers.push(Answer::Append(reply, Ok(stored)));
                    }
                    Request::DeadLetter { entry, reply } => {
                        let need = entry.body.len() as u64 + ROW_OVERHEAD;
                        if need > budget {
                            let used = self.max_bytes - budget;
                            answers.push(Answer::Unit(reply, Err(StoreError::Full { used, max: self.max_bytes })));
                            continue;
                        }
                        budget -= need;
                        insert_dead_letter(&self.conn, &entry)?;
                        answers.push(Answer::Unit(reply, Ok(())));
                    }
                    Request::Progress { progress, reply } => {
                        // Never refused for space: settling events is what frees space.
                        apply_progress(&self.conn, &progress)?;
                        answers.push(Answer::Unit(reply, Ok(())));
                    }
                    Request::Failure { failure, reply } => {
                        apply_failure(&self.conn, &failure)?;
                        answers.push(Answer::Unit(reply, Ok(())));
                    }
                    Request::RegisterSinks { names, reply } => {
                        register_sinks(&self.conn, &names)?;
                        answers.push(Answer::Unit(reply, Ok(())));
                    }
                    Request::RegisterDevices { names, reply } => {
                        register_devices(&self.conn, &names)?;
                        answers.push(Answer::Unit(reply, Ok(())));
                    }
                    Request::RunningConfig { change, reply } => {
                        super::running_config::apply(&self.conn, &change)?;
                        answers.push(Answer::Unit(reply, Ok(())));
                    }
                    Request::PrintJob { change, reply } => {
                        let need = match &change {
                            super::print_jobs::PrintJobChange::Enqueue(job) => job.body.len() as u64 + ROW_OVERHEAD,
                            _ => 0,
                        };
                        if need > budget {
                            let used = self.max_bytes - budget;
                            answers.push(Answer::PrintJob(reply, Err(StoreError::Full { used, max: self.max_bytes })));
                            continue;
                        }
                        budget -= need;
                        let answer = super::print_jobs::apply(&self.conn, change)?;
                        answers.push(Answer::PrintJob(reply, Ok(answer)));
                    }
                    Request::StationInput { input, reply } => {
                        let need = input.body.len() as u64 + ROW_OVERHEAD;
                        if need > budget {
                            let used = self.max_bytes - budget;
                            answers.push(Answer::Bool(reply, Err(StoreError::Full { used, max: self.max_bytes })));
                            continue;
                        }
                        budget -= need;
                        let new = super::station_inputs::insert(&self.conn, &input)?;
                        answers.push(Answer::Bool(reply, Ok(new)));
                    }
                    Request::StationStep { step, reply } => {
                        let events: Vec<PreparedEvent> = step.events.into_iter().map(PreparedEvent::new).collect();
                        let need: u64 = events.iter().map(estimated_size).sum::<u64>()
                            + step.print_jobs.iter().map(|j| j.body.len() as u64 + ROW_OVERHEAD).sum::<u64>();
                        if need > budget {
                            let used = self.max_bytes - budget;
                            answers.push(Answer::Append(reply, Err(StoreError::Full { used, max: self.max_bytes })));
                            continue;
                        }
                        budget -= need;
                        // Everything the step caused, or nothing: the scan stays waiting.
                        let stored = self.append(&events)?;
                        for job in step.print_jobs {
                            super::print_jobs::apply(&self.conn, super::print_jobs::PrintJobChange::Enqueue(job))?;
                        }
                        if let Some((seq, outcome)) = &step.consumed {
                            super::station_inputs::consume(&self.conn, &step.station, *seq, outcome)?;
                        }
                        if let Some(saved) = &step.saved {
                            super::station_inputs::save(&self.conn, saved)?;
                        }
                        answers.push(Answer::Append(reply, Ok(stored)));
                    }
                }
            }
            if self.next_seq != seq_before {
                // The high-water mark outlives the events themselves once they are pruned.
                self.conn
                    .prepare_cached("INSERT OR REPLACE INTO meta (key, value) VALUES ('last_seq', ?1)")?
                    .execute(params![(self.next_seq - 1).to_string()])?;
            }
            self.conn.execute_batch("COMMIT")?;
            Ok(())
        })();
        match result {
            Ok(()) => answers.into_iter().for_each(Answer::send),
            Err(e) => {
                let _ = self.conn.execute_batch("ROLLBACK");
                self.next_seq = seq_before;
                if e.is_damage() {
                    super::report_damage(&self.path, &self.damage, &e.to_string());
                }
                static FAILED: super::throttle::WarnThrottle = super::throttle::WarnThrottle::new();
                if let Some(held_back) = FAILED.allow() {
                    warn!(error = %e, requests = answers.len(), similar_not_logged = held_back, "A store transaction failed; nothing in it was acknowledged.");
                }
                let message = e.to_string();
                answers.into_iter().for_each(|a| a.fail(&message));
            }
        }
    }

    fn append(&mut self, events: &[PreparedEvent]) -> Result<Vec<Appended>, StoreError> {
        let mut insert = self.conn.prepare_cached(
            "INSERT INTO events (seq, id, kind, partition, received_at, body) VALUES (?1, ?2, ?3, ?4, ?5, ?6)
             ON CONFLICT (id) DO NOTHING",
        )?;
        let mut existing = self.conn.prepare_cached("SELECT seq FROM events WHERE id = ?1")?;
        let mut out = Vec::with_capacity(events.len());
        for prepared in events {
            let event = &prepared.event;
            let seq = self.next_seq;
            let body = prepared.body(seq);
            let id = event.id.as_bytes();
            let inserted = insert.execute(params![
                seq as i64,
                &id[..],
                event.kind().as_str(),
                event.partition,
                event.received_at.as_millis(),
                body
            ])?;
            if inserted == 1 {
                if let Payload::DeviceStatus(status) = &event.payload {
                    record_device_state(&self.conn, status, event.occurred_at, seq)?;
                }
                self.next_seq += 1;
                out.push(Appended::Stored { seq });
            } else {
                let seq: i64 = existing.query_row(params![&id[..]], |r| r.get(0))?;
                out.push(Appended::Duplicate { seq: seq as u64 });
            }
        }
        Ok(out)
    }

    /// Bytes in pages that hold data (free pages are reusable and do not count).
    fn used_bytes(&self) -> Result<u64, StoreError> {
        let pages: i64 = self.conn.query_row("PRAGMA page_count", [], |r| r.get(0))?;
        let free: i64 = self.conn.query_row("PRAGMA freelist_count", [], |r| r.get(0))?;
        Ok((pages - free).max(0) as u64 * self.page_size)
    }

    fn housekeeping(&mut self) {
        let started = Instant::now();
        self.last_housekeeping = started;
        if self.last_heartbeat.is_none_or(|t| t.elapsed() >= HEARTBEAT_EVERY) {
            self.heartbeat(false);
        }
        // `(events and scans pruned, pages vacuumed)`.
        let result = (|| -> Result<(usize, i64), StoreError> {
            let pruned = self.prune()? + super::station_inputs::prune(&self.conn, PRUNE_BATCH)?;
            if pruned > 0 {
                debug!(pruned, "Pruned delivered events past retention.");
            }
            let free: i64 = self.conn.query_row("PRAGMA freelist_count", [], |r| r.get(0))?;
            let mut vacuumed = 0;
            if free >= VACUUM_MIN_FREE_PAGES {
                // The pragma frees pages as it is stepped: run it to completion.
                let mut stmt = self.conn.prepare_cached(&format!("PRAGMA incremental_vacuum({VACUUM_PAGES})"))?;
                let mut rows = stmt.query([])?;
                while rows.next()?.is_some() {}
                vacuumed = free.min(VACUUM_PAGES);
            }
            Ok((pruned, vacuumed))
        })();
        let took = started.elapsed();
        match result {
            Err(e) => {
                if e.is_damage() {
                    super::report_damage(&self.path, &self.damage, &e.to_string());
                }
                warn!(error = %e, "Store housekeeping failed; it will be tried again.");
            }
            // Only pruning and vacuum hold appends up long enough to matter; a heartbeat alone
            // that takes 100 ms is the disk's usual fsync time, not news for the journal.
            Ok((pruned, vacuumed)) if took >= SLOW_HOUSEKEEPING && (pruned > 0 || vacuumed > 0) => warn!(
                ms = took.as_millis() as u64,
                pruned,
                pages_vacuumed = vacuumed,
                "Slow housekeeping: new events waited while delivered ones were pruned."
            ),
            Ok(_) if took >= SLOW_COMMIT => debug!(ms = took.as_millis() as u64, "Slow heartbeat write."),
            Ok(_) => {}
        }
    }

    /// Deletes up to `PRUNE_BATCH` events that every active sink has settled and that are older
    /// than the retention. With no active sink nothing is pruned: those events were never delivered.
    fn prune(&self) -> Result<usize, StoreError> {
        let settled: Option<i64> =
            self.conn.query_row("SELECT min(cursor) FROM sinks WHERE retired_at IS NULL", [], |r| r.get(0))?;
        let Some(settled) = settled else { return Ok(0) };
        let cutoff = Timestamp::now().saturating_sub_millis(self.retention_ms).as_millis();
        Ok(prune_events(&self.conn, settled, cutoff, PRUNE_BATCH)?)
    }

    fn heartbeat(&mut self, stopping: bool) {
        self.last_heartbeat = Some(Instant::now());
        let now = Timestamp::now().as_millis().to_string();
        let result = if stopping {
            self.conn.execute("INSERT OR REPLACE INTO meta (key, value) VALUES ('stopped_at', ?1)", params![now])
        } else {
            self.conn.execute(
                "INSERT OR REPLACE INTO meta (key, value) VALUES ('heartbeat_at', ?1), ('pid', ?2)",
                params![now, std::process::id().to_string()],
            )
        };
        if let Err(e) = result {
            warn!(error = %e, "Cannot record the daemon heartbeat in the store.");
        }
    }
}

/// Deletes up to `limit` events settled by every sink (seq ≤ `settled`) and received before
/// `cutoff`, looking at the `limit` oldest events only. Seqs are given in the order events are
/// received, so once the oldest are within retention, so is what follows them; a query that
/// searched further would read every delivered event still within retention on each
/// housekeeping step — on a gateway keeping a week of events, a stall of every append (and of
/// every acknowledgement) for 100 ms and more, once a second. After the clock went back, an
/// event received before the step blocks those after it only until it expires itself.
pub(super) fn prune_events(conn: &Connection, settled: i64, cutoff: i64, limit: i64) -> rusqlite::Result<usize> {
    conn.prepare_cached(PRUNE_EVENTS)?.execute(params![settled, cutoff, limit])
}

/// The statement of [`prune_events`].
pub(super) const PRUNE_EVENTS: &str = "DELETE FROM events WHERE received_at < ?2 AND seq IN (
    SELECT seq FROM events WHERE seq <= ?1 ORDER BY seq LIMIT ?3)";

fn estimated_size(prepared: &PreparedEvent) -> u64 {
    // The body, plus the partition again in its column and its index.
    (prepared.body_len() + prepared.event.partition.len() * 2) as u64 + ROW_OVERHEAD
}

fn insert_dead_letter(conn: &Connection, d: &NewDeadLetter) -> Result<(), StoreError> {
    conn.prepare_cached(
        "INSERT INTO dead_letters (sink, event_id, event_seq, origin, reason, body, created_at)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
    )?
    .execute(params![
        d.sink,
        d.event_id.map(|id| id.as_bytes().to_vec()),
        d.event_seq.map(|s| s as i64),
        d.origin,
        d.reason,
        d.body,
        Timestamp::now().as_millis()
    ])?;
    Ok(())
}

fn apply_progress(conn: &Connection, p: &SinkProgress) -> Result<(), StoreError> {
    let now = Timestamp::now().as_millis();
    if p.new_cursor != p.expected_cursor {
        let moved = conn.execute(
            "UPDATE sinks SET cursor = ?1 WHERE name = ?2 AND cursor = ?3",
            params![p.new_cursor as i64, p.sink, p.expected_cursor as i64],
        )?;
        if moved == 0 {
            warn!(sink = %p.sink, "The sink's cursor was moved by an operator while a batch was out; keeping the operator's position.");
        }
    }
    for d in &p.dead_letters {
        insert_dead_letter(conn, d)?;
    }
    for id in &p.redeliveries_done {
        conn.execute("DELETE FROM redeliveries WHERE id = ?1", params![id])?;
    }
    let retry = p.retry_error.is_some();
    conn.execute(
        "UPDATE sinks SET
            delivered = delivered + ?2,
            dead_lettered = dead_lettered + ?3,
            retried = retried + ?4,
            attempts = CASE WHEN ?4 = 1 THEN attempts + 1 ELSE 0 END,
            next_attempt_at = NULL,
            paused = NULL,
            last_success_at = CASE WHEN ?2 + ?3 > 0 THEN ?5 ELSE last_success_at END,
            last_error = CASE WHEN ?4 = 1 THEN ?6 ELSE last_error END,
            last_error_at = CASE WHEN ?4 = 1 THEN ?5 ELSE last_error_at END
         WHERE name = ?1",
        params![p.sink, p.delivered as i64, p.dead_letters.len() as i64, i64::from(retry), now, p.retry_error],
    )?;
    Ok(())
}

fn apply_failure(conn: &Connection, f: &SinkFailure) -> Result<(), StoreError> {
    conn.execute(
        "UPDATE sinks SET retried = retried + 1, attempts = ?2, next_attempt_at = ?3,
            last_error = ?4, last_error_at = ?5, paused = CASE WHEN ?6 = 1 THEN ?4 ELSE NULL END
         WHERE name = ?1",
        params![
            f.sink,
            i64::from(f.attempts),
            f.next_attempt_at.as_millis(),
            f.error,
            Timestamp::now().as_millis(),
            i64::from(f.paused)
        ],
    )?;
    if let Some(b) = &f.batch {
        conn.execute(
            "INSERT INTO sink_batches (sink, key, after, last_seq, events) VALUES (?1, ?2, ?3, ?4, ?5)
             ON CONFLICT (sink) DO UPDATE SET key = ?2, after = ?3, last_seq = ?4, events = ?5",
            params![f.sink, b.key, b.after as i64, b.last_seq as i64, b.events as i64],
        )?;
    }
    Ok(())
}

/// A new sink starts where the existing ones stand: it receives every event that some sink still
/// has to deliver, and every event stored before any sink existed, but not the delivered history
/// (use `dockhand replay` for that).
fn register_sinks(conn: &Connection, names: &[String]) -> Result<(), StoreError> {
    let now = Timestamp::now().as_millis();
    let active: Option<i64> =
        conn.query_row("SELECT min(cursor) FROM sinks WHERE retired_at IS NULL", [], |r| r.get(0))?;
    let any: Option<i64> = conn.query_row("SELECT min(cursor) FROM sinks", [], |r| r.get(0))?;
    let start = active.or(any).unwrap_or(0);
    for name in names {
        conn.execute(
            "INSERT INTO sinks (name, cursor, created_at) VALUES (?1, ?2, ?3)
             ON CONFLICT (name) DO UPDATE SET retired_at = NULL, paused = NULL, attempts = 0, next_attempt_at = NULL",
            params![name, start, now],
        )?;
    }
    let mut retire = conn.prepare("SELECT name FROM sinks WHERE retired_at IS NULL")?;
    let current: Vec<String> = retire.query_map([], |r| r.get(0))?.collect::<Result<_, _>>()?;
    for name in current.iter().filter(|n| !names.contains(n)) {
        conn.execute("UPDATE sinks SET retired_at = ?2 WHERE name = ?1", params![name, now])?;
        warn!(sink = %name, "A sink is no longer in the config; it is retired and its backlog is no longer delivered.");
    }
    Ok(())
}

fn record_device_state(
    conn: &Connection,
    status: &DeviceStatusPayload,
    at: Timestamp,
    seq: u64,
) -> Result<(), StoreError> {
    let state = serde_json::to_value(status.state).ok().and_then(|v| v.as_str().map(str::to_owned)).unwrap_or_default();
    conn.prepare_cached(
        "INSERT INTO devices (name, state, detail, since, event_seq) VALUES (?1, ?2, ?3, ?4, ?5)
         ON CONFLICT (name) DO UPDATE SET state = ?2, detail = ?3, since = ?4, event_seq = ?5",
    )?
    .execute(params![status.device.0, state, status.detail, at.as_millis(), seq as i64])?;
    Ok(())
}

/// Keeps device rows only for configured devices; new ones start as `unknown` until their task
/// reports.
fn register_devices(conn: &Connection, names: &[String]) -> Result<(), StoreError> {
    let now = Timestamp::now().as_millis();
    for name in names {
        conn.execute(
            "INSERT INTO devices (name, state, since) VALUES (?1, 'unknown', ?2) ON CONFLICT (name) DO NOTHING",
            params![name, now],
        )?;
    }
    let mut stmt = conn.prepare("SELECT name FROM devices")?;
    let current: Vec<String> = stmt.query_map([], |r| r.get(0))?.collect::<Result<_, _>>()?;
    for name in current.iter().filter(|n| !names.contains(n)) {
        conn.execute("DELETE FROM devices WHERE name = ?1", params![name])?;
    }
    Ok(())
}
