//! The daemon (`dockhand run`): opens the store, starts one dispatcher per sink, and handles
//! signals — SIGTERM/SIGINT stop cleanly, SIGHUP re-reads the config (a bad one is refused and
//! the running one kept). It also stops when the store reports damage, so that the next start
//! moves the file aside.

use std::time::{Duration, Instant};

use tokio::signal::unix::{SignalKind, signal};
use tokio::task::JoinSet;
use tracing::{error, info, warn};

use crate::config::Config;
use crate::dispatcher::Dispatcher;
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
    async fn start(config: &Config, store: &Store) -> Result<Pipeline, StoreError> {
        let mut pipeline = Self::start_sinks(config, store).await?;
        if let Some(settings) = MqttSettings::from_config(config) {
            let source = MqttSource::new(settings.clone(), store.clone());
            let shutdown = pipeline.switch.subscribe();
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
        Ok(pipeline)
    }

    async fn start_sinks(config: &Config, store: &Store) -> Result<Pipeline, StoreError> {
        store.register_sinks(config.sinks.iter().map(|s| s.name().to_string()).collect()).await?;
        let (switch, _) = ShutdownSwitch::new();
        let mut tasks = JoinSet::new();
        for sink_config in &config.sinks {
            let name = sink_config.name().to_string();
            let dispatcher = Dispatcher::for_sink(sink_config, &config.gateway.id, store.clone())?;
            let shutdown = switch.subscribe();
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
    if let Some(broker) = &config.broker {
        // A broker that cannot start is a setup problem the technician must see, not a crash loop:
        // log it and carry on storing from the other sources.
        if let Err(e) = tokio::task::block_in_place(|| crate::sources::mqtt::broker::start(broker)) {
            error!(error = %e, "The embedded MQTT broker could not start.");
        }
    }
    let mut pipeline = Pipeline::start(&config, &store).await?;
    info!(
        gateway = %config.gateway.id,
        site = %config.gateway.site,
        sinks = config.sinks.len(),
        last_seq = report.last_seq,
        startup_ms = started.elapsed().as_millis() as u64,
        "dockhand is ready."
    );

    let result = loop {
        tokio::select! {
            _ = sigterm.recv() => { info!("SIGTERM received; stopping."); break Ok(()); }
            _ = sigint.recv() => { info!("SIGINT received; stopping."); break Ok(()); }
            _ = sighup.recv() => {
                match Config::load(&config.file) {
                    Err(e) => error!(error = %e, "The new config is invalid; keeping the running one."),
                    Ok(new) if new.store != config.store => {
                        warn!("Store settings changed; they take effect at the next restart. Reloading sinks only.");
                        pipeline.stop().await;
                        config = Config { store: config.store.clone(), ..new };
                        pipeline = Pipeline::start(&config, &store).await?;
                    }
                    Ok(new) => {
                        pipeline.stop().await;
                        config = new;
                        pipeline = Pipeline::start(&config, &store).await?;
                        info!(sinks = config.sinks.len(), "Config reloaded.");
                    }
                }
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
    pipeline.stop().await;
    tokio::task::block_in_place(|| store.close());
    info!("dockhand stopped.");
    result
}
