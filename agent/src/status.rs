//! `dockhand status`: "is it working, and what's stuck?" at a glance. Reads the store file
//! directly, so it answers while the daemon is down too.

use std::fmt::Write;

use serde::Serialize;

use crate::store::{SinkSummary, StoreSummary};
use crate::timestamp::Timestamp;
use crate::units::{ByteSize, describe_age};

/// A heartbeat older than this means the daemon is not running.
const HEARTBEAT_STALE_MS: u64 = 20_000;

#[derive(Debug, Serialize)]
pub struct StatusReport {
    pub verdict: Verdict,
    pub problems: Vec<String>,
    pub daemon: DaemonState,
    pub max_bytes: u64,
    #[serde(flatten)]
    pub store: StoreSummary,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Verdict {
    Ok,
    Attention,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "state", rename_all = "snake_case")]
pub enum DaemonState {
    Running {
        pid: Option<u32>,
        heartbeat_age_ms: u64,
    },
    Stopped {
        at: Timestamp,
    },
    /// No clean stop recorded and no recent heartbeat: crashed, killed, or never started.
    NotRunning {
        last_heartbeat: Option<Timestamp>,
    },
}

/// A station this many scans behind is worth a look (a stuck printer, a slow disk).
const STATION_BEHIND: u64 = 100;

/// Whether the daemon runs on this store, from its heartbeat and its clean-stop mark.
pub fn daemon_state(store: &StoreSummary, now: Timestamp) -> DaemonState {
    match (store.heartbeat_at, store.stopped_at) {
        (Some(hb), stopped) if stopped.is_none_or(|s| s < hb) && hb.millis_until(now) < HEARTBEAT_STALE_MS => {
            DaemonState::Running { pid: store.pid, heartbeat_age_ms: hb.millis_until(now) }
        }
        (hb, Some(s)) if hb.is_none_or(|h| h <= s) => DaemonState::Stopped { at: s },
        (hb, _) => DaemonState::NotRunning { last_heartbeat: hb },
    }
}

pub fn report(store: StoreSummary, max_bytes: u64, now: Timestamp) -> StatusReport {
    let daemon = daemon_state(&store, now);
    let mut problems = Vec::new();
    if !matches!(daemon, DaemonState::Running { .. }) {
        problems
            .push("the daemon is not running: events are not being delivered (systemctl status dockhand)".to_string());
    }
    for alarm in &store.alarms {
        problems.push(format!("alarm {}: {}", alarm.kind, alarm.message));
    }
    for sink in store.sinks.iter().filter(|s| s.state.retired_at.is_none()) {
        if let Some(reason) = &sink.state.paused {
            problems.push(format!("sink {} is paused: {reason}", sink.state.name));
        } else if sink.state.attempts > 0 && sink.pending > 0 {
            problems.push(format!(
                "sink {} is failing ({} attempts): {}",
                sink.state.name,
                sink.state.attempts,
                sink.state.last_error.as_deref().unwrap_or("unknown error")
            ));
        }
    }
    // While the daemon is down its devices' states are stale; the daemon itself is the problem.
    let watching = matches!(daemon, DaemonState::Running { .. });
    for device in store.devices.iter().filter(|d| watching && d.state != "connected") {
        problems.push(format!(
            "device {} is {}{}",
            device.name,
            device.state,
            device.detail.as_deref().map_or(String::new(), |d| format!(": {d}"))
        ));
    }
    let mut waiting: std::collections::BTreeMap<&str, usize> = std::collections::BTreeMap::new();
    for job in store.print_jobs.iter().filter(|j| j.state == "queued") {
        *waiting.entry(job.printer.as_str()).or_default() += 1;
    }
    for (printer, n) in waiting {
        let state = store.devices.iter().find(|d| d.name == printer);
        if state.is_none_or(|d| d.state != "connected") {
            let why = state.map_or("unknown".to_owned(), |d| {
                format!("{}{}", d.state, d.detail.as_deref().map_or(String::new(), |x| format!(": {x}")))
            });
            problems.push(format!("{n} print job(s) wait for printer {printer}, which is {why}"));
        }
    }
    for station in &store.stations {
        if station.summary.contains("refusing new cycles") {
            problems.push(format!("station {}: {}", station.station, station.summary));
        }
    }
    for (station, waiting) in &store.station_backlog {
        if *waiting >= STATION_BEHIND {
            problems
                .push(format!("station {station} is {waiting} scans behind its scanner (none is lost; it catches up)"));
        }
    }
    let used_pct = store.used_bytes as f64 * 100.0 / max_bytes.max(1) as f64;
    if used_pct >= 90.0 {
        problems.push(format!("the store is {used_pct:.0}% full: new events will be refused at 100%"));
    }
    let open_dead: u64 = store.dead_letters.iter().map(|(_, n)| n).sum();
    if open_dead > 0 {
        problems.push(format!("{open_dead} dead letters wait for a decision (dockhand dlq list)"));
    }
    let verdict = if problems.is_empty() { Verdict::Ok } else { Verdict::Attention };
    StatusReport { verdict, problems, daemon, max_bytes, store }
}

impl StatusReport {
    pub fn to_text(&self, now: Timestamp) -> String {
        let mut out = String::new();
        let s = &self.store;
        let _ = match self.verdict {
            Verdict::Ok => writeln!(out, "OK: dockhand is running and nothing is stuck."),
            Verdict::Attention => writeln!(out, "ATTENTION: {} problem(s)", self.problems.len()),
        };
        for p in &self.problems {
            let _ = writeln!(out, "  ! {p}");
        }
        let _ = writeln!(out);
        let daemon = match &self.daemon {
            DaemonState::Running { pid, heartbeat_age_ms } => format!(
                "running (pid {}, heartbeat {} ago)",
                pid.map_or("?".into(), |p| p.to_string()),
                describe_age(*heartbeat_age_ms)
            ),
            DaemonState::Stopped { at } => format!("stopped cleanly {} ago", describe_age(at.millis_until(now))),
            DaemonState::NotRunning { last_heartbeat: Some(hb) } => {
                format!("not running (last heartbeat {} ago; crashed or killed?)", describe_age(hb.millis_until(now)))
            }
            DaemonState::NotRunning { last_heartbeat: None } => "not running (never started on this store)".into(),
        };
        let _ = writeln!(out, "daemon  {daemon}");
        let _ = writeln!(
            out,
            "store   {} — {} events kept, {} of {} used ({:.0}%), last seq {}",
            s.path.display(),
            s.events,
            ByteSize(s.used_bytes),
            ByteSize(self.max_bytes),
            s.used_bytes as f64 * 100.0 / self.max_bytes.max(1) as f64,
            s.last_seq
        );
        let dead: Vec<String> = s
            .dead_letters
            .iter()
            .map(|(sink, n)| format!("{}: {n}", sink.as_deref().unwrap_or("refused at ingest")))
            .collect();
        let _ = writeln!(out, "dead    {}", if dead.is_empty() { "none".to_string() } else { dead.join(", ") });
        // A device's state is only known while the daemon watches it; after a stop the last
        // state would read as current ("connected for 11m29s") and its age would keep growing.
        let watched_until = match &self.daemon {
            DaemonState::Running { .. } => None,
            DaemonState::Stopped { at } => Some(format!("the daemon stopped at {at}")),
            DaemonState::NotRunning { last_heartbeat: Some(hb) } => {
                Some(format!("the daemon's last heartbeat at {hb}"))
            }
            DaemonState::NotRunning { last_heartbeat: None } => Some("the daemon has not run on this store".into()),
        };
        for d in &s.devices {
            let detail = d.detail.as_deref().map_or(String::new(), |x| format!(" — {x}"));
            let _ = match &watched_until {
                None => writeln!(
                    out,
                    "device  {} {} for {}{detail}",
                    d.name,
                    d.state,
                    describe_age(d.since.millis_until(now))
                ),
                Some(since) => writeln!(out, "device  {} unknown since {since} (then: {}{detail})", d.name, d.state),
            };
        }
        for st in &s.stations {
            let waiting = s.station_backlog.iter().find(|(n, _)| *n == st.station).map_or(0, |(_, n)| *n);
            let waiting = if waiting > 0 { format!("; {waiting} scan(s) waiting") } else { String::new() };
            let _ = writeln!(
                out,
                "station {} ({}) {} — last step {} ago{waiting}",
                st.station,
                st.workflow,
                st.summary,
                describe_age(st.updated_at.millis_until(now))
            );
        }
        for j in &s.print_jobs {
            let _ = writeln!(
                out,
                "print   {} {} for {}, {} old{}",
                j.state,
                j.id,
                j.printer,
                describe_age(j.created_at.millis_until(now)),
                j.last_error.as_deref().map_or(String::new(), |e| format!(" — {e}"))
            );
        }
        let _ = writeln!(out);
        if s.sinks.is_empty() {
            let _ = writeln!(out, "no sinks configured: events are stored but go nowhere");
            return out;
        }
        let rows: Vec<[String; 8]> = s.sinks.iter().map(|k| sink_row(k, now)).collect();
        let header = ["SINK", "STATE", "PENDING", "OLDEST", "DELIVERED", "RETRIED", "DEAD", "LAST SUCCESS"];
        let mut widths = header.map(str::len);
        for row in &rows {
            for (w, cell) in widths.iter_mut().zip(row) {
                *w = (*w).max(cell.chars().count());
            }
        }
        let line = |cells: &[String]| {
            cells
                .iter()
                .zip(widths)
                .map(|(c, w)| format!("{c:<w$}"))
                .collect::<Vec<_>>()
                .join("  ")
                .trim_end()
                .to_string()
        };
        let _ = writeln!(out, "{}", line(&header.map(String::from)));
        for (row, sink) in rows.iter().zip(&s.sinks) {
            let _ = writeln!(out, "{}", line(row));
            if let (Some(err), Some(at)) = (&sink.state.last_error, sink.state.last_error_at)
                && (sink.state.attempts > 0 || sink.state.paused.is_some())
            {
                let next = sink
                    .state
                    .next_attempt_at
                    .map_or(String::new(), |n| format!("; next attempt in {}", describe_age(now.millis_until(n))));
                let _ = writeln!(out, "  └ last error {} ago: {err}{next}", describe_age(at.millis_until(now)));
            }
        }
        out
    }
}

fn sink_row(k: &SinkSummary, now: Timestamp) -> [String; 8] {
    let state = if k.state.retired_at.is_some() {
        "retired"
    } else if k.state.paused.is_some() {
        "PAUSED"
    } else if k.state.attempts > 0 {
        "RETRYING"
    } else if k.pending > 0 {
        "sending"
    } else {
        "ok"
    };
    let pending =
        if k.redeliveries > 0 { format!("{} (+{} again)", k.pending, k.redeliveries) } else { k.pending.to_string() };
    [
        k.state.name.clone(),
        state.into(),
        pending,
        k.oldest_pending_at.map_or("-".into(), |t| describe_age(t.millis_until(now))),
        k.state.delivered.to_string(),
        k.state.retried.to_string(),
        k.state.dead_lettered.to_string(),
        k.state.last_success_at.map_or("never".into(), |t| format!("{} ago", describe_age(t.millis_until(now)))),
    ]
}
