//! How a station's devices reach it inside the process, without a lossy queue on the way.
//!
//! - **Scans** travel through the store (`station_inputs`): the device task commits the scan, then
//!   wakes the station here. The wake-up is only a doorbell (a [`Notify`] permit, never lost and
//!   never piling up); the data is in the file, so a station that is 10 000 scans behind, stopped
//!   by a reload, or killed, reads every one of them in order with bounded memory.
//! - **Scale readings** are a live measurement, not acknowledged data: the station needs the
//!   current weight, so each scale has a [`watch`] slot holding its latest reading and state. A
//!   station that is busy sees the newest reading when it looks again; nothing queues up.
//!
//! The hub lives as long as the process, so device tasks and stations restarted by a reload find
//! each other again.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use firmware_bridge::ScaleReading;
use tokio::sync::{Notify, watch};

use crate::event::DeviceState;

/// What a station knows about its scale.
#[derive(Debug, Clone, PartialEq, Default)]
pub(crate) struct ScaleFeed {
    /// The scale's state and why; `None` until the device task has reported it.
    pub(crate) state: Option<(DeviceState, Option<String>)>,
    /// The latest reading.
    pub(crate) reading: Option<ScaleReading>,
    /// Counts readings, so two equal readings in a row are two readings to a stability check.
    pub(crate) readings: u64,
}

#[derive(Debug, Default)]
struct Inner {
    scans: HashMap<String, Arc<Notify>>,
    scales: HashMap<String, watch::Sender<ScaleFeed>>,
}

/// The hub; cheap to clone.
#[derive(Debug, Clone, Default)]
pub(crate) struct Handoff {
    inner: Arc<Mutex<Inner>>,
}

impl Handoff {
    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Rings `station`'s doorbell: a scan for it has been committed.
    pub(crate) fn scan_stored(&self, station: &str) {
        self.scans(station).notify_one();
    }

    /// `station`'s doorbell.
    pub(crate) fn scans(&self, station: &str) -> Arc<Notify> {
        self.lock().scans.entry(station.to_owned()).or_default().clone()
    }

    fn scale_slot(&self, device: &str) -> watch::Sender<ScaleFeed> {
        self.lock().scales.entry(device.to_owned()).or_insert_with(|| watch::channel(ScaleFeed::default()).0).clone()
    }

    /// A new reading from scale `device`.
    pub(crate) fn scale_reading(&self, device: &str, reading: ScaleReading) {
        self.scale_slot(device).send_modify(|feed| {
            feed.reading = Some(reading);
            feed.readings += 1;
        });
    }

    /// Scale `device` changed state.
    pub(crate) fn scale_state(&self, device: &str, state: DeviceState, detail: Option<String>) {
        self.scale_slot(device).send_modify(|feed| {
            if state != DeviceState::Connected {
                feed.reading = None;
            }
            feed.state = Some((state, detail));
        });
    }

    /// Follows scale `device`.
    pub(crate) fn scale(&self, device: &str) -> watch::Receiver<ScaleFeed> {
        self.scale_slot(device).subscribe()
    }
}
