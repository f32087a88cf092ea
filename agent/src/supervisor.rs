//! The daemon (`dockhand run`): opens the store, starts one dispatcher per sink, and handles
//! signals — SIGTERM/SIGINT stop cleanly, SIGHUP re-reads the config (a bad one is refused and
//! the running one kept). It also stops when the store reports damage, so that the next start
//! moves the file aside.

use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::signal::unix::{SignalKind, signal};
use tokio::task::JoinSet;
use tracing::{error, info, warn};

use crate::config::Config;
use crate::dispatcher::Dispatcher;
use crate::health::Health;
use crate::shutdown::ShutdownSwitch;
use crate::sources::mqtt::{MqttSettings, MqttSource};
use crate::store::{Store, StoreError, StoreOptions};

/// How long a clean stop may take before the remaining tasks are abandoned (their work is
/// redone after the restart; nothing acknowledged is lost).
const STOP_DEADLINE: Duration = Duration::from_secs(10);

#[derive(Debug, thiserror::Error)]
pub enum RunError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("cannot install signal handlers: {0}")]
    Signals(std::io::Error),
}

/// The running sources and sinks: replaced as a whole on reload.
struct Pipeline {
    switch: ShutdownSwitch,
    tasks: JoinSet<(String, Result<(), StoreError>)>,
}

impl Pipeline {
    async fn start(config: &Config, store: &Store, health: &Health) -> Result<Pipeline, StoreError> {
        let mut pipeline = Self::start_sinks(config, store, health).await?;
        let mut tasks: Vec<String> = config.sinks.iter().map(|s| format!("sink {}", s.name())).collect();
        health.set_mqtt(None);
        if let Some(settings) = MqttSettings::from_config(config) {
            let source = MqttSource::new(settings.clone(), store.clone());
            health.set_mqtt(Some(source.health()));
            tasks.push("mqtt".into());
            let shutdown = pipeline.switch.subscribe().with_heartbeat(health.register("mqtt"));
            pipeline.tasks.spawn(async move { ("mqtt".to_string(), source.run(shutdown).await) });
            if let Some(sim) = config.simulate.clone() {
                let shutdown = pipeline.switch.subscribe();
                warn!("Simulated handhelds are on ([simulate] in the config): for demos and commissioning only.");
                pipeline.tasks.spawn(async move {
                    if let Err(e) = crate::simulate::run(settings, sim, shutdown, false).await {
                        warn!(error = %e, "The handheld simulator stopped.");
                    }
                    ("simulate".to_string(), Ok(()))
                });
            }
        }
        health.retain(&tasks);
        Ok(pipeline)
    }

    async fn start_sinks(config: &Config, store: &Store, health: &Health) -> Result<Pipeline, StoreError> {
        store.register_sinks(config.sinks.iter().map(|s| s.name().to_string()).collect()).await?;
        let (switch, _) = ShutdownSwitch::new();
        let mut tasks = JoinSet::new();
        for sink_config in &config.sinks {
            let name = sink_config.name().to_string();
            let dispatcher = Dispatcher::for_sink(sink_config, &config.gateway.id, store.clone())?;
            let shutdown = switch.subscribe().with_heartbeat(health.register(&format!("sink {name}")));
            tasks.spawn(async move { (name, dispatcher.run(shutdown).await) });
        }
        Ok(Pipeline { switch, tasks })
    }

    async fn stop(mut self) {
        self.switch.trigger();
        let drained =
            tokio::time::timeout(STOP_DEADLINE, async { while self.tasks.join_next().await.is_some() {} }).await;
        if drained.is_err() {
            warn!("Some sinks did not stop in time; their batches will be sent again after the restart.");
            self.tasks.abort_all();
        }
    }
}

/// Runs the daemon until SIGTERM/SIGINT. Returns an error for store failures (exit code 74).
pub async fn run(mut config: Config) -> Result<(), RunError> {
    let started = Instant::now();
    let mut sigterm = signal(SignalKind::terminate()).map_err(RunError::Signals)?;
    let mut sigint = signal(SignalKind::interrupt()).map_err(RunError::Signals)?;
    let mut sighup = signal(SignalKind::hangup()).map_err(RunError::Signals)?;

    let options = StoreOptions::from_config(&config.store);
    let (store, report) = tokio::task::block_in_place(|| Store::open(options))?;
    if let Some((aside, reason)) = &report.moved_aside {
        error!(moved_to = %aside.display(), %reason, "Started on a fresh store; see `dockhand status`.");
    }
    let mut damage = store.damage();
    let health = Arc::new(Health::default());
    health.watch_store(store.clone());
    // Tasks that live as long as the process (not restarted on reload).
    let (process_switch, _) = ShutdownSwitch::new();
    if config.metrics.enabled {
        tokio::spawn(crate::metrics::serve(
            config.metrics.clone(),
            store.clone(),
            config.store.max_bytes.0,
            health.clone(),
            process_switch.subscribe(),
        ));
    }
    if let Some(broker) = &config.broker {
        // A broker that cannot start is a setup problem the technician must see, not a crash loop:
        // log it and carry on storing from the other sources.
        if let Err(e) = tokio::task::block_in_place(|| crate::sources::mqtt::broker::start(broker)) {
            error!(error = %e, "The embedded MQTT broker could not start.");
        }
    }
    let mut pipeline = Pipeline::start(&config, &store, &health).await?;
    tokio::spawn(report_to_systemd(store.clone(), health.clone(), process_switch.subscribe()));
    info!(
        gateway = %config.gateway.id,
        site = %config.gateway.site,
        sinks = config.sinks.len(),
        last_seq = report.last_seq,
        startup_ms = started.elapsed().as_millis() as u64,
        "dockhand is ready."
    );
    crate::systemd::ready(&format!("Ready: {} sink(s), last seq {}.", config.sinks.len(), report.last_seq));

    let result = loop {
        tokio::select! {
            _ = sigterm.recv() => { info!("SIGTERM received; stopping."); break Ok(()); }
            _ = sigint.recv() => { info!("SIGINT received; stopping."); break Ok(()); }
            _ = sighup.recv() => {
                crate::systemd::reloading();
                match Config::load(&config.file) {
                    Err(e) => error!(error = %e, "The new config is invalid; keeping the running one."),
                    Ok(new) if new.store != config.store => {
                        warn!("Store settings changed; they take effect at the next restart. Reloading sinks only.");
                        pipeline.stop().await;
                        config = Config { store: config.store.clone(), ..new };
                        pipeline = Pipeline::start(&config, &store, &health).await?;
                    }
                    Ok(new) => {
                        pipeline.stop().await;
                        config = new;
                        pipeline = Pipeline::start(&config, &store, &health).await?;
                        info!(sinks = config.sinks.len(), "Config reloaded.");
                    }
                }
                crate::systemd::ready("Running.");
            }
            _ = damage.changed() => {
                let reason = damage.borrow().clone().unwrap_or_default();
                break Err(RunError::Store(StoreError::Damaged(reason)));
            }
            Some(joined) = pipeline.tasks.join_next() => {
                match joined {
                    Ok((name, Err(e))) => {
                        error!(sink = %name, error = %e, "A sink stopped on a store error; dockhand is stopping.");
                        break Err(RunError::Store(e));
                    }
                    Ok((name, Ok(()))) => info!(task = %name, "A task finished."),
                    Err(e) => { error!(error = %e, "A sink task failed."); break Err(RunError::Store(StoreError::Setup(e.to_string()))); }
                }
            }
        }
    };
    crate::systemd::stopping();
    process_switch.trigger();
    pipeline.stop().await;
    tokio::task::block_in_place(|| store.close());
    info!("dockhand stopped.");
    result
}

/// Pings systemd's watchdog while every task is healthy, and keeps a one-line STATUS current:
/// what `systemctl status dockhand` shows a technician.
async fn report_to_systemd(store: Store, health: Arc<Health>, mut shutdown: crate::shutdown::Shutdown) {
    let every = crate::systemd::watchdog_interval().unwrap_or(Duration::from_secs(10)).min(Duration::from_secs(10));
    loop {
        let problems = health.problems();
        if problems.is_empty() {
            crate::systemd::watchdog();
        } else {
            warn!(problems = %problems.join("; "), "A task stopped reporting; not pinging the watchdog.");
        }
        let line = match store.reader() {
            Ok(r) => r
                .run(|r| r.summary())
                .await
                .map(|s| status_line(&s, &health))
                .unwrap_or_else(|e| format!("Store unreadable: {e}")),
            Err(e) => format!("Store unreadable: {e}"),
        };
        crate::systemd::status(&line);
        if !shutdown.sleep(every).await {
            return;
        }
    }
}

/// `12 pending (cloud 12, archive 0), oldest 3m12s; MQTT connected` — or what is wrong.
pub fn status_line(s: &crate::store::StoreSummary, health: &Health) -> String {
    let now = crate::timestamp::Timestamp::now();
    let active: Vec<_> = s.sinks.iter().filter(|k| k.state.retired_at.is_none()).collect();
    let pending: u64 = active.iter().map(|k| k.pending).sum();
    let oldest = active.iter().filter_map(|k| k.oldest_pending_at).min();
    let per_sink: Vec<String> = active
        .iter()
        .map(|k| match (&k.state.paused, k.state.attempts) {
            (Some(_), _) => format!("{} PAUSED", k.state.name),
            (None, a) if a > 0 => format!("{} {} retrying", k.state.name, k.pending),
            _ => format!("{} {}", k.state.name, k.pending),
        })
        .collect();
    let mut line = format!("{pending} pending ({})", per_sink.join(", "));
    if let Some(t) = oldest {
        line.push_str(&format!(", oldest {}", crate::units::describe_age(t.millis_until(now))));
    }
    match health.mqtt_connected() {
        Some(true) => line.push_str("; MQTT connected"),
        Some(false) => line.push_str("; MQTT DISCONNECTED"),
        None => {}
    }
    if !s.alarms.is_empty() {
        line.push_str(&format!("; {} alarm(s)", s.alarms.len()));
    }
    line
}
