//! Liveness of the daemon's tasks. Each long-running task holds a [`Heartbeat`] and beats it from
//! its loop; the supervisor tells systemd's watchdog only while every heartbeat is fresh, and
//! `/health` lists the tasks that went quiet. A task that is merely waiting (no events) still
//! beats: its loop wakes at least every few seconds.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// A task is considered stuck after this long without a beat.
pub const STALE_AFTER: Duration = Duration::from_secs(90);

#[derive(Debug)]
pub struct Health {
    started: Instant,
    beats: Mutex<BTreeMap<String, Arc<AtomicU64>>>,
    mqtt: Mutex<Option<Arc<crate::sources::mqtt::source::MqttHealth>>>,
    store: Mutex<Option<crate::store::Store>>,
}

/// One task's heartbeat.
#[derive(Debug, Clone)]
pub struct Heartbeat {
    started: Instant,
    last: Arc<AtomicU64>,
}

impl Heartbeat {
    pub fn beat(&self) {
        self.last.store(self.started.elapsed().as_millis() as u64, Ordering::Relaxed);
    }
}

impl Default for Health {
    fn default() -> Self {
        Self { started: Instant::now(), beats: Mutex::default(), mqtt: Mutex::default(), store: Mutex::default() }
    }
}

impl Health {
    /// Registers (or re-registers, after a reload) a task and returns its heartbeat.
    pub fn register(&self, task: &str) -> Heartbeat {
        let last = Arc::new(AtomicU64::new(self.started.elapsed().as_millis() as u64));
        self.beats.lock().unwrap_or_else(|p| p.into_inner()).insert(task.to_string(), last.clone());
        Heartbeat { started: self.started, last }
    }

    /// Forgets tasks that are gone (after a reload removed them).
    pub fn retain(&self, tasks: &[String]) {
        self.beats.lock().unwrap_or_else(|p| p.into_inner()).retain(|k, _| tasks.contains(k));
    }

    pub fn watch_store(&self, store: crate::store::Store) {
        *self.store.lock().unwrap_or_else(|p| p.into_inner()) = Some(store);
    }

    pub fn set_mqtt(&self, mqtt: Option<Arc<crate::sources::mqtt::source::MqttHealth>>) {
        *self.mqtt.lock().unwrap_or_else(|p| p.into_inner()) = mqtt;
    }

    /// `None` without an MQTT source.
    pub fn mqtt_connected(&self) -> Option<bool> {
        self.mqtt.lock().unwrap_or_else(|p| p.into_inner()).as_ref().map(|m| m.connected.load(Ordering::Relaxed))
    }

    /// Tasks that have not beaten within [`STALE_AFTER`], and a store writer that went quiet.
    pub fn problems(&self) -> Vec<String> {
        let now = self.started.elapsed().as_millis() as u64;
        let mut problems: Vec<String> = self
            .store
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .as_ref()
            .map(|s| s.writer_idle())
            .filter(|idle| *idle > STALE_AFTER)
            .map(|idle| format!("store writer: no heartbeat for {} s (disk stalled?)", idle.as_secs()))
            .into_iter()
            .collect();
        let tasks: Vec<String> = self
            .beats
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .iter()
            .filter(|(_, last)| now.saturating_sub(last.load(Ordering::Relaxed)) > STALE_AFTER.as_millis() as u64)
            .map(|(task, last)| format!("{task}: no heartbeat for {} s", (now - last.load(Ordering::Relaxed)) / 1000))
            .collect();
        problems.extend(tasks);
        problems
    }
}
