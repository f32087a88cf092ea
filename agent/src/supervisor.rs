//! The daemon (`dockhand run`): opens the store, starts one dispatcher per sink, and handles
//! signals — SIGTERM/SIGINT stop cleanly, SIGHUP re-reads the config (a bad one is refused and
//! the running one kept). It also stops when the store reports damage, so that the next start
//! moves the file aside.

use std::sync::Arc;
use std::time::{Duration, Instant};

use std::collections::BTreeMap;
use tokio::signal::unix::{SignalKind, signal};

use tokio::task::JoinHandle;
use tracing::{error, info, warn};

use crate::config::Config;
use crate::dispatcher::Dispatcher;
use crate::health::Health;
use crate::mqtt::MqttSettings;
use crate::shutdown::ShutdownSwitch;
use crate::simulate::SimulateConfig;
use crate::sinks::SinkConfig;
use crate::sources::mqtt::MqttSource;
use crate::store::running_config::ConfigChange;
use crate::store::{Store, StoreError};
use crate::task::TaskError;

/// How long a clean stop may take before the remaining tasks are abandoned (their work is
/// redone after the restart; nothing acknowledged is lost).
const STOP_DEADLINE: Duration = Duration::from_secs(15);

#[derive(Debug, thiserror::Error)]
pub(crate) enum RunError {
    #[error(transparent)]
    Store(#[from] StoreError),
    /// A task that ended on a setup error or a crash (a store error is [`RunError::Store`]).
    #[error("task {task}: {error}")]
    Task { task: String, error: TaskError },
    #[error("cannot install signal handlers: {0}")]
    Signals(std::io::Error),
}

/// A task to run, and what it is built from: a reload restarts a task only when this changed.
enum Plan {
    Sink(SinkConfig),
    Mqtt(MqttSettings),
    Simulate(MqttSettings, SimulateConfig),
    Device(Box<crate::devices::DeviceTask>),
    Station(Box<crate::stations::StationTask>),
}

struct Task {
    /// The plan's settings as text; equal text means nothing to restart.
    fingerprint: String,
    switch: ShutdownSwitch,
    handle: JoinHandle<Result<(), TaskError>>,
}

/// The running sources and sinks, by name (`sink cloud`, `mqtt`, `simulate`).
struct Pipeline {
    tasks: BTreeMap<String, Task>,
    /// Lives as long as the process, so restarting a device or the MQTT source keeps them linked.
    live: crate::devices::live::LiveReadings,
    /// Likewise: devices and their stations find each other through it across reloads.
    handoff: crate::devices::handoff::Handoff,
}

impl Pipeline {
    /// Makes the running tasks match `config`: stops what was removed or changed, starts what is
    /// new or changed, and leaves everything else running untouched.
    async fn apply(&mut self, config: &Config, store: &Store, health: &Health) -> Result<(), StoreError> {
        health.set_device_rule(config.health.devices.clone());
        let mut plans: BTreeMap<String, (String, Plan)> = BTreeMap::new();
        for sink in &config.sinks {
            // The secret files' digests are part of the fingerprint, so a reload re-reads every
            // secret file and restarts exactly the sinks whose token or key changed.
            let fingerprint =
                format!("{}|{sink:?}|{}", config.gateway.id, crate::secrets::digest(&sink.secret_files()));
            plans.insert(format!("sink {}", sink.name()), (fingerprint, Plan::Sink(sink.clone())));
        }
        let mqtt = config.mqtt_settings();
        for device in &config.devices {
            let task = crate::devices::DeviceTask {
                config: device.clone(),
                gateway: config.gateway.id.clone(),
                site: config.gateway.site.clone(),
                mqtt: mqtt.clone(),
                station: config
                    .stations
                    .iter()
                    .find(|s| s.scanner == device.name || s.scale.as_ref() == Some(&device.name))
                    .map(|s| s.name.clone()),
                labels: if device.kind == firmware_bridge::spec::DeviceKind::Printer {
                    config.labels.clone()
                } else {
                    Vec::new()
                },
            };
            plans.insert(format!("device {}", device.name), (format!("{task:?}"), Plan::Device(Box::new(task))));
        }
        for station in &config.stations {
            let task = crate::stations::StationTask {
                config: station.clone(),
                labels: config.labels.clone(),
                gateway: config.gateway.id.clone(),
                site: config.gateway.site.clone(),
            };
            plans.insert(format!("station {}", station.name), (format!("{task:?}"), Plan::Station(Box::new(task))));
        }
        if let Some(settings) = mqtt {
            plans.insert("mqtt".into(), (format!("{settings:?}"), Plan::Mqtt(settings.clone())));
            if let Some(sim) = config.simulate.clone() {
                let fingerprint = format!("{settings:?}|{sim:?}");
                plans.insert("simulate".into(), (fingerprint, Plan::Simulate(settings, sim)));
            }
        }
        // A paused sink (credentials, certificate) is rebuilt even when its settings did not change:
        // that re-reads its secret files, which is how a reload resumes it.
        let names: Vec<String> = config.sinks.iter().map(|s| s.name().to_string()).collect();
        let paused: Vec<String> = store
            .reader()?
            .run(move |r| {
                let mut paused = Vec::new();
                for name in names {
                    if r.sink_state(&name)?.is_some_and(|s| s.paused.is_some()) {
                        paused.push(format!("sink {name}"));
                    }
                }
                Ok(paused)
            })
            .await?;
        let stale: Vec<String> = self
            .tasks
            .iter()
            .filter(|(name, task)| {
                paused.contains(name) || plans.get(*name).is_none_or(|(fp, _)| *fp != task.fingerprint)
            })
            .map(|(name, _)| name.clone())
            .collect();
        for name in stale {
            if let Some(task) = self.tasks.remove(&name) {
                info!(task = %name, "Stopping a task whose settings changed or that was removed.");
                stop(name, task).await;
            }
        }
        // Registering clears the paused state of every configured sink; after the paused check.
        store.register_sinks(config.sinks.iter().map(|s| s.name().to_string()).collect()).await?;
        store.register_devices(config.devices.iter().map(|d| d.name.clone()).collect()).await?;
        for (name, (fingerprint, plan)) in plans {
            if self.tasks.contains_key(&name) {
                continue;
            }
            let (switch, _) = ShutdownSwitch::new();
            let shutdown = switch.subscribe().with_heartbeat(health.register(&name));
            let handle = match plan {
                Plan::Sink(sink) => {
                    let dispatcher =
                        Dispatcher::for_sink(&sink, &config.gateway.id, &config.gateway.site, store.clone())?;
                    tokio::spawn(dispatcher.run(shutdown))
                }
                Plan::Mqtt(settings) => {
                    let source = MqttSource::new(settings, store.clone(), self.live.clone());
                    health.set_mqtt(Some(source.health()));
                    tokio::spawn(source.run(shutdown))
                }
                Plan::Device(task) => {
                    tokio::spawn(task.run(store.clone(), self.live.clone(), self.handoff.clone(), shutdown))
                }
                Plan::Station(task) => {
                    tokio::spawn(task.run(store.clone(), self.live.clone(), self.handoff.clone(), shutdown))
                }
                Plan::Simulate(settings, sim) => {
                    warn!("Simulated handhelds are on ([simulate] in the config): for demos and commissioning only.");
                    tokio::spawn(async move {
                        if let Err(e) = crate::simulate::run(settings, sim, shutdown, false).await {
                            warn!(error = %e, "The handheld simulator stopped.");
                        }
                        Ok(())
                    })
                }
            };
            self.tasks.insert(name, Task { fingerprint, switch, handle });
        }
        if !self.tasks.contains_key("mqtt") {
            health.set_mqtt(None);
        }
        health.retain(&self.tasks.keys().cloned().collect::<Vec<_>>());
        Ok(())
    }

    /// A task that has ended on its own, with its result.
    async fn take_finished(&mut self) -> Option<(String, Result<(), TaskError>)> {
        let name = self.tasks.iter().find(|(_, t)| t.handle.is_finished()).map(|(n, _)| n.clone())?;
        let task = self.tasks.remove(&name)?;
        let result = task.handle.await.unwrap_or_else(|e| Err(TaskError::Crashed(e.to_string())));
        Some((name, result))
    }

    async fn stop_all(&mut self) {
        let tasks = std::mem::take(&mut self.tasks);
        for task in tasks.values() {
            task.switch.trigger();
        }
        for (name, task) in tasks {
            stop(name, task).await;
        }
    }
}

/// Asks a task to stop and waits for it (a sink finishes the delivery it has in hand).
async fn stop(name: String, task: Task) {
    task.switch.trigger();
    let abort = task.handle.abort_handle();
    match tokio::time::timeout(STOP_DEADLINE, task.handle).await {
        Ok(Ok(Err(e))) => warn!(task = %name, error = %e, "A task stopped with an error."),
        Ok(_) => {}
        Err(_) => {
            warn!(task = %name, "A task did not stop in time; its work is redone after the restart.");
            abort.abort();
        }
    }
}

/// Runs the daemon until SIGTERM/SIGINT. Returns an error for store failures (exit code 74).
pub(crate) async fn run(mut config: Config) -> Result<(), RunError> {
    let started = Instant::now();
    let mut sigterm = signal(SignalKind::terminate()).map_err(RunError::Signals)?;
    let mut sigint = signal(SignalKind::interrupt()).map_err(RunError::Signals)?;
    let mut sighup = signal(SignalKind::hangup()).map_err(RunError::Signals)?;

    let options = config.store.options();
    let (store, report) = tokio::task::block_in_place(|| Store::open(options))?;
    if let Some((aside, reason)) = &report.moved_aside {
        error!(moved_to = %aside.display(), %reason, "Started on a fresh store; see `dockhand status`.");
    }
    let mut damage = store.damage();
    let health = Arc::new(Health::default());
    health.watch_store(store.clone());
    // Tasks that live as long as the process (not restarted on reload).
    let (process_switch, _) = ShutdownSwitch::new();
    // The live readings hub outlives reloads: the page's live view and the MQTT source listen to
    // it while device tasks come and go.
    let live = crate::devices::live::LiveReadings::default();
    if config.web.enabled {
        let context = crate::web::Context {
            metrics: crate::metrics::Context {
                max_bytes: config.store.max_bytes.0,
                health: health.clone(),
                config_file: config.file.clone(),
            },
            store_path: config.store.path.clone(),
            gateway: config.gateway.id.clone(),
            site: config.gateway.site.clone(),
            printers: config.print_test_target().printers,
            print_test_target: {
                let file = config.file.clone();
                Arc::new(move || Config::load(&file).map(|c| c.print_test_target()).map_err(|e| e.to_string()))
            },
            live: live.clone(),
        };
        tokio::spawn(crate::web::serve(config.web.clone(), store.clone(), context, process_switch.subscribe()));
    }
    if let Some(broker) = &config.broker {
        // A broker that cannot start is a setup problem the technician must see, not a crash loop:
        // log it and carry on storing from the other sources.
        if let Err(e) = tokio::task::block_in_place(|| crate::sources::mqtt::broker::start(broker)) {
            error!(error = %e, "The embedded MQTT broker could not start.");
        }
    }
    let mut pipeline = Pipeline { tasks: BTreeMap::new(), live, handoff: Default::default() };
    pipeline.apply(&config, &store, &health).await?;
    store.running_config(ConfigChange::Loaded { digest: config.digest.clone() }).await?;
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
                    Err(e) => {
                        error!(error = %e, "The new config is invalid; keeping the running one.");
                        // `status` shows the refusal until a valid edit is loaded.
                        let digest = crate::status::config_file_digest(&config.file).unwrap_or_default();
                        store.running_config(ConfigChange::Refused { digest, error: e.to_string() }).await?;
                    }
                    Ok(new) => {
                        if new.store != config.store || new.broker != config.broker || new.web != config.web || new.log != config.log {
                            warn!("[store], [broker], [web] and [log] changes take effect at the next restart; the rest is applied now.");
                        }
                        config = Config { store: config.store.clone(), broker: config.broker.clone(), web: config.web.clone(), log: config.log.clone(), ..new };
                        pipeline.apply(&config, &store, &health).await?;
                        store.running_config(ConfigChange::Loaded { digest: config.digest.clone() }).await?;
                        info!(sinks = config.sinks.len(), "Config reloaded.");
                    }
                }
                crate::systemd::ready("Running.");
            }
            _ = damage.changed() => {
                let reason = damage.borrow().clone().unwrap_or_default();
                break Err(RunError::Store(StoreError::Damaged(reason)));
            }
            _ = tokio::time::sleep(Duration::from_secs(1)) => {
                if let Some((name, result)) = pipeline.take_finished().await {
                    match result {
                        Err(TaskError::Store(e)) => {
                            error!(task = %name, error = %e, "A task stopped on a store error; dockhand is stopping.");
                            break Err(RunError::Store(e));
                        }
                        Err(error) => {
                            error!(task = %name, %error, "A task cannot go on; dockhand is stopping.");
                            break Err(RunError::Task { task: name, error });
                        }
                        Ok(()) => info!(task = %name, "A task finished."),
                    }
                }
            }
        }
    };
    crate::systemd::stopping();
    process_switch.trigger();
    pipeline.stop_all().await;
    tokio::task::block_in_place(|| store.close());
    info!("dockhand stopped.");
    result
}

/// Pings systemd's watchdog while every task is healthy, and keeps a one-line STATUS current:
/// what `systemctl status dockhand` shows a technician.
async fn report_to_systemd(store: Store, health: Arc<Health>, mut shutdown: crate::shutdown::Shutdown) {
    let every = crate::systemd::watchdog_interval().unwrap_or(Duration::from_secs(10)).min(Duration::from_secs(10));
    let reader = store.reader();
    loop {
        let problems = health.problems();
        if problems.is_empty() {
            crate::systemd::watchdog();
        } else {
            warn!(problems = %problems.join("; "), "A task stopped reporting; not pinging the watchdog.");
        }
        let line = match &reader {
            Ok(r) => r
                .run(|r| r.summary())
                .await
                .map(|s| crate::status::systemd_line(&s, health.mqtt_connected(), crate::timestamp::Timestamp::now()))
                .unwrap_or_else(|e| format!("Store unreadable: {e}")),
            Err(e) => format!("Store unreadable: {e}"),
        };
        crate::systemd::status(&line);
        if !shutdown.sleep(every).await {
            return;
        }
    }
}
