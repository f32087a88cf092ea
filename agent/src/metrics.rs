//! What the local HTTP server ([`crate::web`], default 127.0.0.1:9464) answers for monitoring:
//!
//! - `GET /metrics`: Prometheus text — per-sink depth, oldest pending age, delivered / retried /
//!   dead-lettered counters and paused state, store size and fill, open dead letters, alarms, MQTT
//!   connection state, build info. Read from the store on each scrape, so it agrees with `status`.
//! - `GET /health`: `200 {"status":"ok"}` while every task reports in, `503` with the reasons
//!   otherwise (for a load balancer or a watchdog script).

use std::fmt::Write;
use std::sync::Arc;

use crate::health::Health;
use crate::status::{ConfigFile, ConfigState, config_state};
use crate::store::{DeviceCondition, StoreReader, StoreSummary};
use crate::timestamp::Timestamp;

/// What `/metrics` and `/health` read besides the store.
#[derive(Debug, Clone)]
pub(crate) struct Context {
    pub(crate) max_bytes: u64,
    pub(crate) health: Arc<Health>,
    /// The config file, compared with the config the daemon runs on every request.
    pub(crate) config_file: std::path::PathBuf,
}

/// An answer of this module: status, content type, body.
pub(crate) type Answer = (u16, &'static str, String);

/// `GET /metrics`.
pub(crate) async fn scrape(reader: &StoreReader, context: &Context) -> Answer {
    // The daemon answering is running by definition; only the file on disk can differ. The file
    // is read on the blocking pool with the store, never on the runtime's threads.
    let config_file = context.config_file.clone();
    match reader.run(move |r| Ok((r.summary()?, ConfigFile::digest_of(&config_file)))).await {
        Ok((s, file)) => {
            let config = config_state(s.running_config.as_ref(), true, &file);
            let text = render(&s, context.max_bytes, &context.health, &config, Timestamp::now());
            (200, "text/plain; version=0.0.4", text)
        }
        Err(e) => (503, "text/plain", format!("store unreadable: {e}\n")),
    }
}

/// `GET /health`.
pub(crate) async fn health(reader: &StoreReader, context: &Context) -> Answer {
    let config_file = context.config_file.clone();
    let mut problems = context.health.problems();
    let rule = context.health.device_rule();
    if rule != crate::health::DeviceRule::Ignored {
        match reader.run(|r| r.devices()).await {
            Ok(devices) => problems.extend(rule.problems(&devices)),
            Err(e) => problems.push(format!("store unreadable: {e}")),
        }
    }
    let (running, file) =
        reader.run(move |r| Ok((r.running_config()?, ConfigFile::digest_of(&config_file)))).await.unwrap_or_default();
    let warnings: Vec<String> = config_state(running.as_ref(), true, &file).problem().into_iter().collect();
    let mut body = serde_json::json!({"status": if problems.is_empty() { "ok" } else { "failing" }});
    if !problems.is_empty() {
        body["problems"] = problems.into();
    }
    // A config edit not applied is worth a look, not a failing check: the daemon works.
    if !warnings.is_empty() {
        body["warnings"] = warnings.into();
    }
    let status = if body["status"] == "ok" { 200 } else { 503 };
    (status, "application/json", body.to_string())
}

/// The Prometheus text exposition of one store summary.
pub(crate) fn render(
    s: &StoreSummary,
    max_bytes: u64,
    health: &Health,
    config: &ConfigState,
    now: Timestamp,
) -> String {
    let mut out = String::with_capacity(4096);
    // A family with no series (no devices configured, no MQTT) is left out rather than announced
    // empty: `promtool check metrics` and most dashboards read an empty family as a broken exporter.
    let mut family = |name: &str, kind: &str, help: &str, samples: Vec<(String, f64)>| {
        if samples.is_empty() {
            return;
        }
        let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} {kind}");
        for (labels, value) in samples {
            let _ = writeln!(out, "{name}{labels} {value}");
        }
    };
    let sinks: Vec<_> = s.sinks.iter().filter(|k| k.state.retired_at.is_none()).collect();
    let per_sink = |f: &dyn Fn(&crate::store::SinkSummary) -> f64| -> Vec<(String, f64)> {
        sinks.iter().map(|k| (format!("{{sink=\"{}\"}}", escape(&k.state.name)), f(k))).collect()
    };
    family(
        "dockhand_sink_pending_events",
        "gauge",
        "Events the sink has not settled yet.",
        per_sink(&|k| k.pending as f64),
    );
    family(
        "dockhand_sink_oldest_pending_age_seconds",
        "gauge",
        "Age of the oldest event the sink has not settled (0 when none).",
        per_sink(&|k| k.oldest_pending_at.map_or(0.0, |t| t.millis_until(now) as f64 / 1000.0)),
    );
    family("dockhand_sink_delivered_total", "counter", "Events delivered.", per_sink(&|k| k.state.delivered as f64));
    family(
        "dockhand_sink_retried_total",
        "counter",
        "Failed delivery attempts.",
        per_sink(&|k| k.state.retried as f64),
    );
    family(
        "dockhand_sink_dead_lettered_total",
        "counter",
        "Events the sink refused for good.",
        per_sink(&|k| k.state.dead_lettered as f64),
    );
    family(
        "dockhand_sink_paused",
        "gauge",
        "1 while the sink is paused (credentials, TLS).",
        per_sink(&|k| f64::from(u8::from(k.state.paused.is_some()))),
    );
    family(
        "dockhand_sink_last_success_timestamp_seconds",
        "gauge",
        "When the sink last delivered (0: never).",
        per_sink(&|k| k.state.last_success_at.map_or(0.0, |t| t.as_millis() as f64 / 1000.0)),
    );
    family(
        "dockhand_store_used_bytes",
        "gauge",
        "Bytes of data in the store (what store.max_bytes limits).",
        vec![(String::new(), s.used_bytes as f64)],
    );
    family("dockhand_store_max_bytes", "gauge", "store.max_bytes.", vec![(String::new(), max_bytes as f64)]);
    family(
        "dockhand_store_file_bytes",
        "gauge",
        "Store file plus WAL on disk.",
        vec![(String::new(), s.file_bytes as f64)],
    );
    family("dockhand_store_events", "gauge", "Events kept in the store.", vec![(String::new(), s.events as f64)]);
    family(
        "dockhand_store_last_seq",
        "gauge",
        "Highest event sequence number assigned (a high-water mark, never decreases).",
        vec![(String::new(), s.last_seq as f64)],
    );
    family(
        "dockhand_dead_letters_open",
        "gauge",
        "Dead letters waiting for a decision, by sink (`ingest`: refused input).",
        // Every active sink and `ingest` has a series, 0 when nothing waits, so an alert on
        // `> 0` has a value to compare before the first dead letter.
        std::iter::once("ingest")
            .chain(sinks.iter().map(|k| k.state.name.as_str()))
            .map(|name| {
                let open = s
                    .dead_letters
                    .iter()
                    .find(|(sink, _)| sink.as_deref().unwrap_or("ingest") == name)
                    .map_or(0, |(_, n)| *n);
                (format!("{{sink=\"{}\"}}", escape(name)), open as f64)
            })
            .collect(),
    );
    family(
        "dockhand_print_jobs",
        "gauge",
        "Print jobs kept, by state (queued, sending, uncertain, printed).",
        crate::store::print_jobs::PrintJobState::ALL
            .iter()
            .map(|state| {
                let n = s.print_job_counts.iter().find(|(k, _)| k == state).map_or(0, |(_, n)| *n);
                (format!("{{state=\"{state}\"}}"), n as f64)
            })
            .collect(),
    );
    family(
        "dockhand_station_scans_waiting",
        "gauge",
        "Scans stored for a station and not processed yet.",
        s.stations
            .iter()
            .map(|st| {
                let n = s.station_backlog.iter().find(|(name, _)| *name == st.station).map_or(0, |(_, n)| *n);
                (format!("{{station=\"{}\"}}", escape(&st.station)), n as f64)
            })
            .collect(),
    );
    family(
        "dockhand_station_last_step_timestamp_seconds",
        "gauge",
        "When the station last took a step.",
        s.stations
            .iter()
            .map(|st| (format!("{{station=\"{}\"}}", escape(&st.station)), st.updated_at.as_millis() as f64 / 1000.0))
            .collect(),
    );
    family(
        "dockhand_config_applied",
        "gauge",
        "1 when the daemon runs the config file as it is on disk; 0 after an edit not reloaded or refused.",
        vec![(String::new(), f64::from(u8::from(*config == ConfigState::Applied)))],
    );
    family(
        "dockhand_config_reload_refused",
        "gauge",
        "1 while the daemon runs its previous config because it refused the file on disk.",
        vec![(String::new(), f64::from(u8::from(matches!(config, ConfigState::Refused { .. }))))],
    );
    family(
        "dockhand_alarms_active",
        "gauge",
        "Alarms shown by `dockhand status`.",
        vec![(String::new(), s.alarms.len() as f64)],
    );
    family(
        "dockhand_device_connected",
        "gauge",
        "1 while the device is connected and answering, 0 otherwise.",
        s.devices
            .iter()
            .map(|d| {
                (
                    format!("{{device=\"{}\"}}", escape(&d.name)),
                    f64::from(u8::from(d.state == DeviceCondition::Connected)),
                )
            })
            .collect(),
    );
    family(
        "dockhand_mqtt_connected",
        "gauge",
        "1 while connected to the MQTT broker.",
        health.mqtt_connected().map(|c| vec![(String::new(), f64::from(u8::from(c)))]).unwrap_or_default(),
    );
    let counters = crate::counters::rows();
    for (name, help) in [
        ("dockhand_scans_kept_raw_total", "Scans stored as received, by reason (see docs/DEVICES.md)."),
        (
            "dockhand_station_cycles_restarted_total",
            "Station cycles interrupted by a restart or reload, by what became of them.",
        ),
        ("dockhand_odoo_notes_failed_total", "Chatter notes an Odoo sink could not post (the transfers were applied)."),
        ("dockhand_mqtt_messages_received_total", "PUBLISH packets the handheld source received from the broker."),
        (
            "dockhand_mqtt_own_replies_received_total",
            "dockhand's own answers the broker echoed back (replies = \"v1\" only; 0 with v2).",
        ),
    ] {
        let samples = counters
            .iter()
            .filter(|(n, _, _)| *n == name)
            .map(|(_, label, value)| {
                (if label.is_empty() { String::new() } else { format!("{{{label}}}") }, *value as f64)
            })
            .collect();
        family(name, "counter", help, samples);
    }
    family(
        "dockhand_build_info",
        "gauge",
        "Build of the running dockhand.",
        vec![(format!("{{version=\"{}\"}}", env!("CARGO_PKG_VERSION")), 1.0)],
    );
    out
}

fn escape(v: &str) -> String {
    v.replace('\\', "\\\\").replace('"', "\\\"").replace('\n', "\\n")
}
