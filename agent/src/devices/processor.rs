//! What the agent does with what a device said, wherever the device is attached (a local port or
//! a firmware-bridge on another host): scans become `scan` events, a scale settling on a new
//! weight becomes a `weight` event, state changes become `device_status` events (which also keep
//! the `devices` table that `status` reads), and every reading and scan is offered to the live
//! readings topic.

use std::time::{Duration, Instant};

use firmware_bridge::ScaleReading;
use firmware_bridge::device::DeviceOutput;
use firmware_bridge::scale::settle::SettleDetector;
use serde_json::json;
use tracing::{info, warn};

use super::config::{DeviceConfig, WeightEvents};
use super::live::LiveReadings;
use crate::event::{
    DeviceState, DeviceStatusPayload, Event, EventId, Kind, Payload, Source, Text, Transport, new_event_id,
};
use crate::store::{Store, StoreError, until_stored};
use crate::timestamp::Timestamp;

/// Identical readings are republished at most this often (a display wants a heartbeat, not 4/s).
const REPEAT_EVERY: Duration = Duration::from_secs(1);

const HELD: &str = "a device event waits in memory and the device is not read meanwhile";

pub struct DeviceProcessor {
    name: String,
    transport: Transport,
    gateway: String,
    site: String,
    store: Store,
    live: LiveReadings,
    settle: Option<SettleDetector>,
    last_state: Option<(DeviceState, Option<String>)>,
    last_published: Option<(ScaleReading, Instant)>,
    /// Part of a station: scans and weights go to the station, which makes the events.
    in_station: bool,
}

impl std::fmt::Debug for DeviceProcessor {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DeviceProcessor").field("name", &self.name).finish_non_exhaustive()
    }
}

impl DeviceProcessor {
    pub fn new(
        config: &DeviceConfig,
        transport: Transport,
        gateway: &str,
        site: &str,
        store: Store,
        live: LiveReadings,
        in_station: bool,
    ) -> Self {
        let settle = (config.kind == firmware_bridge::spec::DeviceKind::Scale
            && config.weight_events == WeightEvents::StableChange
            && !in_station)
            .then(|| SettleDetector::new(config.stable_readings));
        DeviceProcessor {
            name: config.name.clone(),
            transport,
            gateway: gateway.to_owned(),
            site: site.to_owned(),
            store,
            live,
            settle,
            last_state: None,
            last_published: None,
            in_station,
        }
    }

    /// Records a state change. A new reason for the same state (the port hung up, then cannot be
    /// reopened) is logged but is not a new event: one event per change, not per retry.
    pub async fn state(&mut self, state: DeviceState, detail: Option<String>) -> Result<(), StoreError> {
        let current = (state, detail);
        if self.last_state.as_ref().is_some_and(|(s, _)| *s == current.0) {
            tracing::debug!(device = %self.name, detail = current.1.as_deref().unwrap_or(""), "Device state unchanged.");
            return Ok(());
        }
        let (state, detail) = current.clone();
        match state {
            DeviceState::Connected => {
                info!(device = %self.name, detail = detail.as_deref().unwrap_or(""), "Device connected.")
            }
            DeviceState::Disconnected => {
                warn!(device = %self.name, reason = detail.as_deref().unwrap_or(""), "Device disconnected.")
            }
            DeviceState::Error => {
                warn!(device = %self.name, reason = detail.as_deref().unwrap_or(""), "Device not answering.")
            }
        }
        let payload = Payload::DeviceStatus(DeviceStatusPayload { device: Text(self.name.clone()), state, detail });
        self.store_event(new_event_id(), Timestamp::now(), payload).await?;
        self.last_state = Some(current);
        Ok(())
    }

    /// Handles one output. `id` and `at` come from a firmware-bridge (its scan id and clock);
    /// a local device gets a fresh id and the current time.
    pub async fn output(
        &mut self,
        output: DeviceOutput,
        id: Option<EventId>,
        at: Option<Timestamp>,
    ) -> Result<(), StoreError> {
        let at = at.unwrap_or_else(Timestamp::now);
        match output {
            DeviceOutput::Scan { scan, problem } => {
                let value = serde_json::to_value(&scan).unwrap_or_default();
                self.scan(value, problem, id, at).await?;
            }
            DeviceOutput::Reading(reading) => {
                self.publish_reading(&reading, at);
                self.live.signal(&self.name, super::live::Signal::Reading(reading.clone()));
                if let Some(weight) = self.settle.as_mut().and_then(|s| s.feed(&reading)) {
                    let value = serde_json::to_value(&weight).unwrap_or_default();
                    match Payload::from_json(Kind::Weight, value) {
                        Ok(payload) => self.store_event(new_event_id(), at, payload).await?,
                        Err(e) => warn!(device = %self.name, error = %e, "A weight could not be turned into an event."),
                    }
                }
            }
            DeviceOutput::Garbled(reason) => {
                tracing::debug!(device = %self.name, %reason, "Undecodable frame from the device.");
            }
            // The printer task reads these itself.
            DeviceOutput::Printer(_) => {}
        }
        Ok(())
    }

    /// Stores a scan given as its payload JSON (a local scan, or one a firmware-bridge sent).
    pub async fn scan(
        &mut self,
        value: serde_json::Value,
        problem: Option<String>,
        id: Option<EventId>,
        at: Timestamp,
    ) -> Result<(), StoreError> {
        let raw = value.get("raw").and_then(|r| r.as_str()).unwrap_or("").to_owned();
        if let Some(problem) = &problem {
            warn!(device = %self.name, %raw, %problem, "Scan stored as received: its data could not be interpreted.");
        }
        self.live.publish(&self.name, json!({"at": at, "scan": &value, "problem": &problem}).to_string());
        self.live.signal(&self.name, super::live::Signal::Scan(value.clone()));
        if self.in_station {
            return Ok(());
        }
        match Payload::from_json(Kind::Scan, value) {
            Ok(payload) => self.store_event(id.unwrap_or_else(new_event_id), at, payload).await,
            Err(e) => {
                warn!(device = %self.name, %raw, error = %e, "A scan could not be turned into an event.");
                Ok(())
            }
        }
    }

    fn publish_reading(&mut self, reading: &ScaleReading, at: Timestamp) {
        let repeat = self.last_published.as_ref().is_some_and(|(r, t)| r == reading && t.elapsed() < REPEAT_EVERY);
        if repeat {
            return;
        }
        self.last_published = Some((reading.clone(), Instant::now()));
        self.live.publish(&self.name, json!({"at": at, "reading": reading}).to_string());
    }

    async fn store_event(&self, id: EventId, at: Timestamp, payload: Payload) -> Result<(), StoreError> {
        let event = Event {
            id,
            gateway: self.gateway.clone(),
            site: self.site.clone(),
            source: Source { transport: self.transport, device: self.name.clone(), station: None },
            partition: self.name.clone(),
            occurred_at: at,
            received_at: Timestamp::now(),
            correlation_id: None,
            payload,
        };
        match until_stored(HELD, || self.store.append_one(event.clone())).await {
            Some(_) => Ok(()),
            None => Err(StoreError::Closed),
        }
    }
}
