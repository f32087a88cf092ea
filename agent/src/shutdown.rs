//! Shutdown as a value: every long-running task holds a [`Shutdown`] and selects on it; the
//! supervisor flips one switch and waits for the tasks to finish.

use tokio::sync::watch;

/// The receiving side of the shutdown switch.
#[derive(Debug, Clone)]
pub(crate) struct Shutdown {
    rx: watch::Receiver<bool>,
    heartbeat: Option<Heartbeat>,
}

/// The switch itself, held by the supervisor.
#[derive(Debug)]
pub(crate) struct ShutdownSwitch {
    tx: watch::Sender<bool>,
}

impl ShutdownSwitch {
    pub(crate) fn new() -> (ShutdownSwitch, Shutdown) {
        let (tx, rx) = watch::channel(false);
        (ShutdownSwitch { tx }, Shutdown { rx, heartbeat: None })
    }

    pub(crate) fn trigger(&self) {
        self.tx.send_replace(true);
    }

    pub(crate) fn subscribe(&self) -> Shutdown {
        Shutdown { rx: self.tx.subscribe(), heartbeat: None }
    }
}

impl Shutdown {
    pub(crate) fn is_triggered(&self) -> bool {
        *self.rx.borrow()
    }

    /// Completes when shutdown has been asked for (at once if it already has).
    pub(crate) async fn wait(&mut self) {
        // An error means the switch is gone, which also means: stop.
        let _ = self.rx.wait_for(|v| *v).await;
    }

    /// Sleeps for `d` unless shutdown comes first; returns false if it did. A long sleep (a
    /// backoff of minutes) keeps beating `heartbeat`, so the watchdog knows the task is alive.
    pub(crate) async fn sleep(&mut self, d: std::time::Duration) -> bool {
        let until = tokio::time::Instant::now() + d;
        loop {
            if let Some(hb) = &self.heartbeat {
                hb.beat();
            }
            let now = tokio::time::Instant::now();
            if now >= until {
                return true;
            }
            let step = (until - now).min(std::time::Duration::from_secs(5));
            tokio::select! {
                _ = tokio::time::sleep(step) => {}
                _ = self.wait() => return false,
            }
        }
    }

    /// The same shutdown signal, with a heartbeat that every sleep beats.
    pub(crate) fn with_heartbeat(mut self, heartbeat: Heartbeat) -> Self {
        self.heartbeat = Some(heartbeat);
        self
    }

    pub(crate) fn beat(&self) {
        if let Some(hb) = &self.heartbeat {
            hb.beat();
        }
    }
}

/// One task's heartbeat: the task beats it from its loop; [`crate::health::Health`] reads it.
#[derive(Debug, Clone)]
pub(crate) struct Heartbeat {
    started: std::time::Instant,
    last: std::sync::Arc<std::sync::atomic::AtomicU64>,
}

impl Heartbeat {
    /// A heartbeat that writes the milliseconds since `started` into `last`.
    pub(crate) fn new(started: std::time::Instant, last: std::sync::Arc<std::sync::atomic::AtomicU64>) -> Self {
        Self { started, last }
    }

    pub(crate) fn beat(&self) {
        self.last.store(self.started.elapsed().as_millis() as u64, std::sync::atomic::Ordering::Relaxed);
    }
}
