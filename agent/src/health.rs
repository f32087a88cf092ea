//! Liveness of the daemon's tasks. Each long-running task holds a [`Heartbeat`] and beats it from
//! its loop; the supervisor tells systemd's watchdog only while every heartbeat is fresh, and
//! `/health` lists the tasks that went quiet. A task that is merely waiting (no events) still
//! beats: its loop wakes at least every few seconds.
//!
//! `/health` can also hold the devices to account (`[health] devices`): a load balancer or a
//! monitoring check then sees a station whose scale is unplugged as unhealthy. The watchdog never
//! does: restarting the daemon does not plug a scale back in.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// A task is considered stuck after this long without a beat.
pub(crate) const STALE_AFTER: Duration = Duration::from_secs(90);

#[derive(Debug)]
pub(crate) struct Health {
    started: Instant,
    beats: Mutex<BTreeMap<String, Arc<AtomicU64>>>,
    mqtt: Mutex<Option<Arc<MqttHealth>>>,
    store: Mutex<Option<crate::store::Store>>,
    devices: Mutex<DeviceRule>,
}

/// `[health]`: what `/health` checks besides the daemon's own tasks.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Deserialize)]
#[serde(deny_unknown_fields, default)]
pub(crate) struct HealthConfig {
    /// `"ignored"` (default), `"required"` (every configured device), or a list of device names.
    pub(crate) devices: DeviceRule,
}

/// Which devices must be connected for `/health` to answer 200.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Deserialize)]
#[serde(try_from = "toml::Value")]
pub(crate) enum DeviceRule {
    /// Devices do not count (the default: `/health` is about the daemon).
    #[default]
    Ignored,
    /// Every configured device must be connected.
    Required,
    /// These devices must be connected.
    Named(Vec<String>),
}

impl TryFrom<toml::Value> for DeviceRule {
    type Error = String;

    fn try_from(value: toml::Value) -> Result<Self, String> {
        const WORDS: &str = "write \"ignored\", \"required\" or a list of device names like [\"scale-1\"]";
        match value {
            toml::Value::String(s) if s.eq_ignore_ascii_case("ignored") => Ok(DeviceRule::Ignored),
            toml::Value::String(s) if s.eq_ignore_ascii_case("required") => Ok(DeviceRule::Required),
            toml::Value::String(s) => Err(format!("`{s}` is not a rule: {WORDS}")),
            toml::Value::Array(items) => items
                .into_iter()
                .map(|v| match v {
                    toml::Value::String(s) => Ok(s),
                    other => Err(format!("a {} is not a device name in quotes: {WORDS}", other.type_str())),
                })
                .collect::<Result<_, _>>()
                .map(DeviceRule::Named),
            other => Err(format!("a {} is not a rule: {WORDS}", other.type_str())),
        }
    }
}

impl DeviceRule {
    /// The devices (`name`, `state`, `detail`) that break the rule, as `/health` problems.
    pub(crate) fn problems(&self, devices: &[crate::store::DeviceRow]) -> Vec<String> {
        let wanted = |name: &str| match self {
            DeviceRule::Ignored => false,
            DeviceRule::Required => true,
            DeviceRule::Named(names) => names.iter().any(|n| n == name),
        };
        devices
            .iter()
            .filter(|d| wanted(&d.name) && d.state != crate::store::DeviceCondition::Connected)
            .map(|d| {
                format!(
                    "device {} is {}{}",
                    d.name,
                    d.state,
                    d.detail.as_deref().map_or(String::new(), |x| format!(": {x}"))
                )
            })
            .collect()
    }
}

pub(crate) use crate::shutdown::Heartbeat;

/// The MQTT source's connection state, shared with the status publisher and `/metrics`.
#[derive(Debug, Default)]
pub(crate) struct MqttHealth {
    pub(crate) connected: std::sync::atomic::AtomicBool,
}

impl Default for Health {
    fn default() -> Self {
        Self {
            started: Instant::now(),
            beats: Mutex::default(),
            mqtt: Mutex::default(),
            store: Mutex::default(),
            devices: Mutex::default(),
        }
    }
}

impl Health {
    /// Registers (or re-registers, after a reload) a task and returns its heartbeat.
    pub(crate) fn register(&self, task: &str) -> Heartbeat {
        let last = Arc::new(AtomicU64::new(self.started.elapsed().as_millis() as u64));
        self.beats.lock().unwrap_or_else(|p| p.into_inner()).insert(task.to_string(), last.clone());
        Heartbeat::new(self.started, last)
    }

    /// Forgets tasks that are gone (after a reload removed them).
    pub(crate) fn retain(&self, tasks: &[String]) {
        self.beats.lock().unwrap_or_else(|p| p.into_inner()).retain(|k, _| tasks.contains(k));
    }

    pub(crate) fn watch_store(&self, store: crate::store::Store) {
        *self.store.lock().unwrap_or_else(|p| p.into_inner()) = Some(store);
    }

    pub(crate) fn set_mqtt(&self, mqtt: Option<Arc<MqttHealth>>) {
        *self.mqtt.lock().unwrap_or_else(|p| p.into_inner()) = mqtt;
    }

    /// The `[health] devices` rule (set at start and at each reload).
    pub(crate) fn set_device_rule(&self, rule: DeviceRule) {
        *self.devices.lock().unwrap_or_else(|p| p.into_inner()) = rule;
    }

    pub(crate) fn device_rule(&self) -> DeviceRule {
        self.devices.lock().unwrap_or_else(|p| p.into_inner()).clone()
    }

    /// `None` without an MQTT source.
    pub(crate) fn mqtt_connected(&self) -> Option<bool> {
        self.mqtt.lock().unwrap_or_else(|p| p.into_inner()).as_ref().map(|m| m.connected.load(Ordering::Relaxed))
    }

    /// Tasks that have not beaten within [`STALE_AFTER`], and a store writer that went quiet.
    pub(crate) fn problems(&self) -> Vec<String> {
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::DeviceRow;
    use crate::timestamp::Timestamp;

    fn row(name: &str, state: &str) -> DeviceRow {
        DeviceRow {
            name: name.into(),
            state: crate::store::DeviceCondition::parse(state),
            detail: Some("/dev/ttyUSB0 is not there".into()),
            since: Timestamp::from_millis(0),
        }
    }

    #[test]
    fn the_device_rule_names_only_the_devices_it_holds_to_account() {
        let devices = [row("scale-1", "disconnected"), row("scanner-1", "connected"), row("printer-1", "error")];
        assert!(DeviceRule::Ignored.problems(&devices).is_empty());
        assert_eq!(
            DeviceRule::Required.problems(&devices),
            [
                "device scale-1 is disconnected: /dev/ttyUSB0 is not there",
                "device printer-1 is error: /dev/ttyUSB0 is not there"
            ]
        );
        assert_eq!(DeviceRule::Named(vec!["scanner-1".into(), "scale-1".into()]).problems(&devices).len(), 1);
    }

    #[test]
    fn the_rule_is_read_from_words_or_a_list_with_a_plain_error_otherwise() {
        let parse = |text: &str| toml::from_str::<HealthConfig>(text).map(|c| c.devices).map_err(|e| e.to_string());
        assert_eq!(parse("devices = \"required\"").unwrap(), DeviceRule::Required);
        assert_eq!(parse("").unwrap(), DeviceRule::Ignored);
        assert_eq!(parse("devices = [\"scale-1\"]").unwrap(), DeviceRule::Named(vec!["scale-1".into()]));
        let error = parse("devices = \"all\"").unwrap_err();
        assert!(error.contains("`all` is not a rule") && error.contains("required"), "{error}");
    }
}
