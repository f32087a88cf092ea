//! `dockhand status`: "is it working, and what's stuck?" at a glance. Reads the store file
//! directly, so it answers while the daemon is down too.

use std::fmt::Write;
use std::path::Path;

use serde::Serialize;

use crate::store::running_config::RunningConfig;
use crate::store::{DeviceCondition, SinkSummary, StoreSummary};
use crate::timestamp::Timestamp;
use crate::units::{ByteSize, describe_age};

/// A heartbeat older than this means the daemon is not running.
const HEARTBEAT_STALE_MS: u64 = 20_000;

/// Everything `status` shows: the store summary and what it means. Rendered as text
/// ([`StatusReport::to_text`]) and as JSON ([`StatusReport::to_json`], shape in docs/CONTRACTS.md §5).
#[derive(Debug)]
pub(crate) struct StatusReport {
    pub(crate) verdict: Verdict,
    pub(crate) problems: Vec<String>,
    pub(crate) daemon: DaemonState,
    pub(crate) config: ConfigState,
    pub(crate) max_bytes: u64,
    pub(crate) store: StoreSummary,
}

/// The config file on disk compared with the config the daemon runs.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "state", rename_all = "snake_case")]
pub(crate) enum ConfigState {
    /// The daemon runs the file as it is on disk.
    Applied,
    /// The file changed after the daemon loaded it and was not reloaded yet; `error` when the
    /// file as it is now does not load.
    Edited {
        loaded_at: Timestamp,
        #[serde(skip_serializing_if = "Option::is_none")]
        error: Option<String>,
    },
    /// The daemon refused the file on disk at a reload and runs the config it had.
    Refused { at: Timestamp, error: String },
    /// The file does not load and the daemon is not running: it would not start with it.
    Invalid { error: String },
    /// Nothing to compare: the daemon is not running (or never recorded its config).
    Unknown,
}

/// A short digest of a config text (the first 16 hex digits of its SHA-256): enough to tell two
/// edits apart, short enough to read in `status --json`.
pub(crate) fn config_text_digest(text: &str) -> String {
    let digest = ring::digest::digest(&ring::digest::SHA256, text.as_bytes());
    digest.as_ref().iter().take(8).map(|b| format!("{b:02x}")).collect()
}

/// The digest of the file as it is now, or why it cannot be read.
pub(crate) fn config_file_digest(file: &Path) -> Result<String, String> {
    std::fs::read_to_string(file)
        .map(|t| config_text_digest(&t))
        .map_err(|e| format!("cannot read {}: {e}", file.display()))
}

/// The config file as the caller found it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct ConfigFile {
    /// [`config_text_digest`] of the file; `None` when it cannot be read.
    pub(crate) digest: Option<String>,
    /// Why the file does not load, when the caller tried (the daemon only compares digests).
    pub(crate) error: Option<String>,
}

impl ConfigFile {
    /// The file at `path`, digest only.
    pub(crate) fn digest_of(path: &std::path::Path) -> ConfigFile {
        ConfigFile { digest: config_file_digest(path).ok(), error: None }
    }
}

/// Compares the file with what the daemon recorded; see [`ConfigState`].
pub(crate) fn config_state(running: Option<&RunningConfig>, daemon_running: bool, file: &ConfigFile) -> ConfigState {
    let Some(running) = running.filter(|_| daemon_running) else {
        return file.error.clone().map_or(ConfigState::Unknown, |error| ConfigState::Invalid { error });
    };
    match &file.digest {
        Some(d) if *d == running.digest => ConfigState::Applied,
        Some(d) => match &running.refused {
            Some(r) if r.digest == *d => ConfigState::Refused { at: r.at, error: r.error.clone() },
            _ => ConfigState::Edited { loaded_at: running.loaded_at, error: file.error.clone() },
        },
        None => ConfigState::Edited { loaded_at: running.loaded_at, error: file.error.clone() },
    }
}

impl ConfigState {
    /// The line for `status` and `/health`, when there is something to say.
    pub(crate) fn problem(&self) -> Option<String> {
        match self {
            ConfigState::Applied | ConfigState::Unknown => None,
            ConfigState::Edited { loaded_at, error: None } => Some(format!(
                "the config file changed after the daemon loaded it at {loaded_at}; `systemctl reload dockhand` applies it (check it first with `dockhand check-config`)"
            )),
            ConfigState::Edited { error: Some(error), .. } => Some(format!(
                "the config file on disk has an error and is not applied (the daemon runs the previous one); fix it before reloading: {error}"
            )),
            ConfigState::Refused { at, error } => {
                Some(format!("the daemon refused the config file at {at} and runs the previous one: {error}"))
            }
            ConfigState::Invalid { error } => {
                Some(format!("the config file has an error; the daemon will not start with it: {error}"))
            }
        }
    }
}

/// A sink's state in one word, as `status`, its JSON and `/metrics` show it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub(crate) enum SinkHealth {
    /// Nothing pending, nothing failing.
    Ok,
    /// Events pending, the last attempt succeeded (or none was made yet).
    Sending,
    /// The last attempt failed; retrying with backoff.
    Retrying,
    /// Stopped until the setup is fixed (bad credentials, refused certificate…).
    Paused,
    /// No longer configured; kept for history.
    Retired,
}

impl SinkHealth {
    pub(crate) fn of(k: &SinkSummary) -> SinkHealth {
        if k.state.retired_at.is_some() {
            SinkHealth::Retired
        } else if k.state.paused.is_some() {
            SinkHealth::Paused
        } else if k.state.attempts > 0 {
            SinkHealth::Retrying
        } else if k.pending > 0 {
            SinkHealth::Sending
        } else {
            SinkHealth::Ok
        }
    }

    fn word(self) -> &'static str {
        match self {
            SinkHealth::Ok => "ok",
            SinkHealth::Sending => "sending",
            SinkHealth::Retrying => "RETRYING",
            SinkHealth::Paused => "PAUSED",
            SinkHealth::Retired => "retired",
        }
    }

    /// Whether the sink's last error describes now (it is retrying or paused), not the past.
    fn failing(self) -> bool {
        matches!(self, SinkHealth::Retrying | SinkHealth::Paused)
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub(crate) enum Verdict {
    Ok,
    Attention,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "state", rename_all = "snake_case")]
pub(crate) enum DaemonState {
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
pub(crate) fn daemon_state(store: &StoreSummary, now: Timestamp) -> DaemonState {
    match (store.heartbeat_at, store.stopped_at) {
        (Some(hb), stopped) if stopped.is_none_or(|s| s < hb) && hb.millis_until(now) < HEARTBEAT_STALE_MS => {
            DaemonState::Running { pid: store.pid, heartbeat_age_ms: hb.millis_until(now) }
        }
        (hb, Some(s)) if hb.is_none_or(|h| h <= s) => DaemonState::Stopped { at: s },
        (hb, _) => DaemonState::NotRunning { last_heartbeat: hb },
    }
}

pub(crate) fn report(store: StoreSummary, max_bytes: u64, now: Timestamp, file: &ConfigFile) -> StatusReport {
    let daemon = daemon_state(&store, now);
    let running = matches!(daemon, DaemonState::Running { .. });
    let config = config_state(store.running_config.as_ref(), running, file);
    let mut problems = Vec::new();
    if !running {
        problems
            .push("the daemon is not running: events are not being delivered (systemctl status dockhand)".to_string());
    }
    problems.extend(config.problem());
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
    for device in store.devices.iter().filter(|d| watching && d.state != DeviceCondition::Connected) {
        problems.push(format!(
            "device {} is {}{}",
            device.name,
            device.state,
            device.detail.as_deref().map_or(String::new(), |d| format!(": {d}"))
        ));
    }
    let mut waiting: std::collections::BTreeMap<&str, usize> = std::collections::BTreeMap::new();
    for job in store.print_jobs.iter().filter(|j| j.state == crate::store::print_jobs::PrintJobState::Queued) {
        *waiting.entry(job.printer.as_str()).or_default() += 1;
    }
    for (printer, n) in waiting {
        let state = store.devices.iter().find(|d| d.name == printer);
        if state.is_none_or(|d| d.state != DeviceCondition::Connected) {
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
    StatusReport { verdict, problems, daemon, config, max_bytes, store }
}

impl StatusReport {
    pub(crate) fn to_text(&self, now: Timestamp) -> String {
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
                && SinkHealth::of(sink).failing()
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
    let state = SinkHealth::of(k).word();
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

/// The one-line STATUS systemd shows (`systemctl status dockhand`): pending per sink, the oldest,
/// MQTT, devices, alarms — `12 pending (cloud 12, archive 0), oldest 3m12s; MQTT connected`.
/// `mqtt` is `None` without an MQTT source.
pub(crate) fn systemd_line(s: &StoreSummary, mqtt: Option<bool>, now: Timestamp) -> String {
    let active: Vec<&SinkSummary> = s.sinks.iter().filter(|k| SinkHealth::of(k) != SinkHealth::Retired).collect();
    let pending: u64 = active.iter().map(|k| k.pending).sum();
    let oldest = active.iter().filter_map(|k| k.oldest_pending_at).min();
    let per_sink: Vec<String> = active
        .iter()
        .map(|k| match SinkHealth::of(k) {
            SinkHealth::Paused => format!("{} PAUSED", k.state.name),
            SinkHealth::Retrying => format!("{} {} retrying", k.state.name, k.pending),
            _ => format!("{} {}", k.state.name, k.pending),
        })
        .collect();
    let mut line = format!("{pending} pending ({})", per_sink.join(", "));
    if let Some(t) = oldest {
        line.push_str(&format!(", oldest {}", describe_age(t.millis_until(now))));
    }
    match mqtt {
        Some(true) => line.push_str("; MQTT connected"),
        Some(false) => line.push_str("; MQTT DISCONNECTED"),
        None => {}
    }
    if !s.devices.is_empty() {
        let down: Vec<&str> =
            s.devices.iter().filter(|d| d.state != DeviceCondition::Connected).map(|d| d.name.as_str()).collect();
        let up = s.devices.len() - down.len();
        if down.is_empty() {
            line.push_str(&format!("; devices {up}/{} OK", s.devices.len()));
        } else {
            line.push_str(&format!("; devices {up}/{} OK, NOT OK: {}", s.devices.len(), down.join(", ")));
        }
    }
    if !s.alarms.is_empty() {
        line.push_str(&format!("; {} alarm(s)", s.alarms.len()));
    }
    line
}

/// The gateway's retained status payload, read from the store now: what the local broker's
/// `…/gateway/<id>/status` and an MQTT uplink's `status_topic` carry.
pub(crate) fn gateway_status_payload(
    reader: &crate::store::StoreReader,
    gateway: &str,
) -> Result<String, crate::store::StoreError> {
    let summary = reader.summary()?;
    Ok(gateway_status(&summary, gateway, Timestamp::now()).to_string())
}

/// The gateway's retained status message on MQTT (`…/gateway/<id>/status`, contracts.md §2).
pub(crate) fn gateway_status(s: &StoreSummary, gateway: &str, now: Timestamp) -> serde_json::Value {
    let queue: serde_json::Map<String, serde_json::Value> = s
        .sinks
        .iter()
        .filter(|k| SinkHealth::of(k) != SinkHealth::Retired)
        .map(|k| {
            let health = SinkHealth::of(k);
            (
                k.state.name.clone(),
                serde_json::json!({
                    "pending": k.pending,
                    "oldest_pending_age_s": k.oldest_pending_at.map(|t| t.millis_until(now) / 1000),
                    "paused": health == SinkHealth::Paused,
                    "failing": health.failing(),
                }),
            )
        })
        .collect();
    let devices: serde_json::Map<String, serde_json::Value> = s
        .devices
        .iter()
        .map(|d| (d.name.clone(), serde_json::json!({"state": d.state, "detail": d.detail, "since": d.since})))
        .collect();
    serde_json::json!({"state": "online", "gateway": gateway, "at": now, "last_seq": s.last_seq, "queue": queue, "devices": devices})
}

/// The JSON of `status --json`: each thing once, the store's figures under `store`, the daemon's
/// ids under `daemon`, a sink's `last_error` only while it describes the present.
#[derive(Serialize)]
struct StatusJson<'a> {
    verdict: Verdict,
    problems: &'a [String],
    daemon: &'a DaemonState,
    config: &'a ConfigState,
    store: StoreFigures<'a>,
    sinks: Vec<SinkJson<'a>>,
    dead_letters: Vec<DeadLetterCount<'a>>,
    alarms: &'a [crate::store::AlarmRow],
    devices: Vec<DeviceJson<'a>>,
    /// Jobs not printed yet (queued, sending, uncertain), oldest first.
    print_queue: &'a [crate::store::print_jobs::PrintJobRow],
    /// Every job kept, by state (`printed` included): what `print list` counts.
    print_jobs_by_state: std::collections::BTreeMap<&'static str, u64>,
    stations: Vec<StationJson<'a>>,
}

#[derive(Serialize)]
struct StoreFigures<'a> {
    path: &'a std::path::Path,
    file_bytes: u64,
    used_bytes: u64,
    max_bytes: u64,
    events: u64,
    last_seq: u64,
}

#[derive(Serialize)]
struct SinkJson<'a> {
    name: &'a str,
    state: SinkHealth,
    pending: u64,
    redeliveries: u64,
    oldest_pending_at: Option<Timestamp>,
    delivered: u64,
    retried: u64,
    dead_lettered: u64,
    attempts: u32,
    last_success_at: Option<Timestamp>,
    /// Set only while the sink is retrying or paused.
    last_error: Option<&'a str>,
    last_error_at: Option<Timestamp>,
    next_attempt_at: Option<Timestamp>,
    paused: Option<&'a str>,
    retired_at: Option<Timestamp>,
}

#[derive(Serialize)]
struct DeadLetterCount<'a> {
    /// `null`: input refused at ingest.
    sink: Option<&'a str>,
    open: u64,
}

#[derive(Serialize)]
struct DeviceJson<'a> {
    name: &'a str,
    /// The last state the daemon recorded.
    state: DeviceCondition,
    detail: Option<&'a str>,
    since: Timestamp,
    /// `false` while the daemon is not running: `state` is then the last one known, not the present.
    current: bool,
}

#[derive(Serialize)]
struct StationJson<'a> {
    name: &'a str,
    workflow: &'a str,
    waiting_for: &'a str,
    updated_at: Timestamp,
    scans_waiting: u64,
}

impl StatusReport {
    /// `status --json`.
    pub(crate) fn to_json(&self) -> serde_json::Value {
        let s = &self.store;
        let current = matches!(self.daemon, DaemonState::Running { .. });
        let view = StatusJson {
            verdict: self.verdict,
            problems: &self.problems,
            daemon: &self.daemon,
            config: &self.config,
            store: StoreFigures {
                path: &s.path,
                file_bytes: s.file_bytes,
                used_bytes: s.used_bytes,
                max_bytes: self.max_bytes,
                events: s.events,
                last_seq: s.last_seq,
            },
            sinks: s
                .sinks
                .iter()
                .map(|k| {
                    let health = SinkHealth::of(k);
                    let failing = health.failing();
                    SinkJson {
                        name: &k.state.name,
                        state: health,
                        pending: k.pending,
                        redeliveries: k.redeliveries,
                        oldest_pending_at: k.oldest_pending_at,
                        delivered: k.state.delivered,
                        retried: k.state.retried,
                        dead_lettered: k.state.dead_lettered,
                        attempts: k.state.attempts,
                        last_success_at: k.state.last_success_at,
                        last_error: k.state.last_error.as_deref().filter(|_| failing),
                        last_error_at: k.state.last_error_at.filter(|_| failing),
                        next_attempt_at: k.state.next_attempt_at.filter(|_| failing),
                        paused: k.state.paused.as_deref(),
                        retired_at: k.state.retired_at,
                    }
                })
                .collect(),
            dead_letters: s
                .dead_letters
                .iter()
                .map(|(sink, n)| DeadLetterCount { sink: sink.as_deref(), open: *n })
                .collect(),
            alarms: &s.alarms,
            devices: s
                .devices
                .iter()
                .map(|d| DeviceJson {
                    name: &d.name,
                    state: d.state,
                    detail: d.detail.as_deref(),
                    since: d.since,
                    current,
                })
                .collect(),
            print_queue: &s.print_jobs,
            print_jobs_by_state: s.print_job_counts.iter().map(|(k, n)| (k.as_str(), *n)).collect(),
            stations: s
                .stations
                .iter()
                .map(|st| StationJson {
                    name: &st.station,
                    workflow: &st.workflow,
                    waiting_for: &st.summary,
                    updated_at: st.updated_at,
                    scans_waiting: s.station_backlog.iter().find(|(n, _)| *n == st.station).map_or(0, |(_, n)| *n),
                })
                .collect(),
        };
        serde_json::to_value(view).unwrap_or_default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::running_config::RefusedEdit;

    fn running(digest: &str, refused: Option<&str>) -> RunningConfig {
        RunningConfig {
            digest: digest.into(),
            loaded_at: Timestamp::from_millis(1_000),
            refused: refused.map(|d| RefusedEdit {
                digest: d.into(),
                at: Timestamp::from_millis(2_000),
                error: "line 3: bad".into(),
            }),
        }
    }

    fn file(digest: &str, error: Option<&str>) -> ConfigFile {
        ConfigFile { digest: Some(digest.into()), error: error.map(Into::into) }
    }

    #[test]
    fn digests_tell_edits_apart_and_are_stable() {
        assert_eq!(config_text_digest("a = 1\n"), config_text_digest("a = 1\n"));
        assert_ne!(config_text_digest("a = 1\n"), config_text_digest("a = 2\n"));
        assert_eq!(config_text_digest("").len(), 16);
    }

    #[test]
    fn the_status_line_names_devices_that_are_not_ok() {
        let dir = tempfile::tempdir().unwrap();
        let (store, _) = crate::store::Store::open(crate::store::StoreOptions::new(dir.path().join("s.db"))).unwrap();
        let mut summary = store.reader().unwrap().summary().unwrap();
        let row = |name: &str, state: &str| crate::store::DeviceRow {
            name: name.into(),
            state: DeviceCondition::parse(state),
            detail: None,
            since: crate::timestamp::Timestamp::now(),
        };
        summary.devices = vec![row("scale-1", "connected"), row("zebra-1", "error"), row("scanner-1", "connected")];
        let line = systemd_line(&summary, None, Timestamp::now());
        assert!(line.ends_with("; devices 2/3 OK, NOT OK: zebra-1"), "{line}");
        store.close();
    }

    #[test]
    fn the_file_on_disk_is_compared_with_what_the_daemon_runs() {
        assert_eq!(config_state(Some(&running("a", None)), true, &file("a", None)), ConfigState::Applied);
        assert_eq!(
            config_state(Some(&running("a", None)), true, &file("b", None)),
            ConfigState::Edited { loaded_at: Timestamp::from_millis(1_000), error: None }
        );
        assert_eq!(
            config_state(Some(&running("a", Some("b"))), true, &file("b", Some("line 3: bad"))),
            ConfigState::Refused { at: Timestamp::from_millis(2_000), error: "line 3: bad".into() }
        );
        // Edited again after the refusal, still broken: not the refused text any more.
        assert_eq!(
            config_state(Some(&running("a", Some("b"))), true, &file("c", Some("line 9: worse"))),
            ConfigState::Edited { loaded_at: Timestamp::from_millis(1_000), error: Some("line 9: worse".into()) }
        );
    }

    #[test]
    fn with_the_daemon_down_only_a_broken_file_is_worth_saying() {
        assert_eq!(config_state(Some(&running("a", None)), false, &file("b", None)), ConfigState::Unknown);
        assert_eq!(
            config_state(Some(&running("a", None)), false, &file("b", Some("line 1: x"))),
            ConfigState::Invalid { error: "line 1: x".into() }
        );
        assert_eq!(config_state(None, true, &file("b", None)), ConfigState::Unknown);
    }

    #[test]
    fn every_state_but_applied_and_unknown_is_a_problem_that_says_what_to_do() {
        let edited = ConfigState::Edited { loaded_at: Timestamp::from_millis(0), error: None };
        assert!(edited.problem().is_some_and(|p| p.contains("systemctl reload dockhand")));
        let refused = ConfigState::Refused { at: Timestamp::from_millis(0), error: "line 3: bad".into() };
        assert!(refused.problem().is_some_and(|p| p.contains("refused") && p.contains("line 3: bad")));
        assert_eq!(ConfigState::Applied.problem(), None);
        assert_eq!(ConfigState::Unknown.problem(), None);
    }
}
