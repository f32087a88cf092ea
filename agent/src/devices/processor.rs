//! What the agent does with what a device said, wherever the device is attached (a local port or
//! a firmware-bridge on another host): scans become `scan` events, a scale settling on a new
//! weight becomes a `weight` event, state changes become `device_status` events (which also keep
//! the `devices` table that `status` reads), and every reading and scan is offered to the live
//! readings topic (displays only).
//!
//! A device that works for a station hands its output over instead of making events: a scan is
//! committed to the station's durable input queue (before the caller acknowledges anything) and
//! the station is woken; a scale's readings and state go to the station's live slot
//! ([`crate::devices::handoff`]).

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
use crate::store::station_inputs::NewStationInput;
use crate::store::{Store, StoreError, until_stored};
use crate::timestamp::Timestamp;

/// Identical readings are republished at most this often (a display wants a heartbeat, not 4/s).
const REPEAT_EVERY: Duration = Duration::from_secs(1);

const HELD: &str = "a device event waits in memory and the device is not read meanwhile";

pub(crate) struct DeviceProcessor {
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
    station: Option<StationLink>,
    /// Scans kept raw because they lacked the configured prefix or were not UTF-8 (logged once
    /// per kind, then counted).
    warned_prefix: bool,
}

/// The station a device works for, and the hub that reaches it.
#[derive(Debug, Clone)]
pub(crate) struct StationLink {
    pub(crate) station: String,
    pub(crate) handoff: crate::devices::handoff::Handoff,
}

impl std::fmt::Debug for DeviceProcessor {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DeviceProcessor").field("name", &self.name).finish_non_exhaustive()
    }
}

impl DeviceProcessor {
    pub(crate) fn new(
        config: &DeviceConfig,
        transport: Transport,
        gateway: &str,
        site: &str,
        store: Store,
        live: LiveReadings,
        station: Option<StationLink>,
    ) -> Self {
        let settle = (config.kind == firmware_bridge::spec::DeviceKind::Scale
            && config.weight_events == WeightEvents::StableChange
            && station.is_none())
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
            station,
            warned_prefix: false,
        }
    }

    /// Records a state change. A new reason for the same state (the port hung up, then cannot be
    /// reopened) is logged but is not a new event: one event per change, not per retry.
    pub(crate) async fn state(&mut self, state: DeviceState, detail: Option<String>) -> Result<(), StoreError> {
        let current = (state, detail);
        if self.last_state.as_ref().is_some_and(|(s, _)| *s == current.0) {
            tracing::debug!(device = %self.name, detail = current.1.as_deref().unwrap_or(""), "Device state unchanged.");
            return Ok(());
        }
        let (state, detail) = current.clone();
        if let Some(link) = &self.station {
            link.handoff.scale_state(&self.name, state, detail.clone());
        }
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
    pub(crate) async fn output(
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
                if let Some(link) = &self.station {
                    link.handoff.scale_reading(&self.name, reading.clone());
                }
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
    pub(crate) async fn scan(
        &mut self,
        value: serde_json::Value,
        problem: Option<String>,
        id: Option<EventId>,
        at: Timestamp,
    ) -> Result<(), StoreError> {
        let raw = value.get("raw").and_then(|r| r.as_str()).unwrap_or("").to_owned();
        self.note_kept_raw(&value, problem.as_deref(), &raw);
        self.live.publish(&self.name, json!({"at": at, "scan": &value, "problem": &problem}).to_string());
        if let Some(link) = &self.station {
            let input = NewStationInput {
                station: link.station.clone(),
                device: self.name.clone(),
                id: id.unwrap_or_else(new_event_id),
                occurred_at: at,
                body: json!({"scan": &value, "problem": &problem}).to_string(),
            };
            if until_stored(HELD, || self.store.station_input(input.clone())).await.is_none() {
                return Err(StoreError::Closed);
            }
            link.handoff.scan_stored(&link.station);
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

    /// Logs and counts a scan that is kept as received. A missing prefix is a scanner setting,
    /// so it is logged once (then only counted); other problems are logged per scan.
    fn note_kept_raw(&mut self, value: &serde_json::Value, problem: Option<&str>, raw: &str) {
        if value.get("raw_hex").is_some() {
            crate::counters::SCANS_NOT_UTF8.add();
            info!(device = %self.name, %raw, "A scan is not valid UTF-8; its exact bytes are kept in raw_hex.");
        }
        let Some(problem) = problem else { return };
        if problem == firmware_bridge::device::PREFIX_MISSING {
            crate::counters::SCANS_WITHOUT_PREFIX.add();
            if !std::mem::replace(&mut self.warned_prefix, true) {
                warn!(device = %self.name, %raw, "A scan came without the configured prefix; it is kept as received. Check the scanner's prefix setting or the device's `prefix` key (further ones are only counted).");
            }
            return;
        }
        crate::counters::SCANS_UNDECODED.add();
        warn!(device = %self.name, %raw, %problem, "Scan stored as received: its data could not be interpreted.");
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
