//! Process-wide counters of things that happen outside the store (a scan kept raw, a station
//! cycle resumed after a restart), for `/metrics`. Everything that is stored is counted from the
//! store instead, so it survives restarts and agrees with `status`.

use std::sync::atomic::{AtomicU64, Ordering};

/// One monotonically increasing counter.
#[derive(Debug)]
pub(crate) struct Counter(AtomicU64);

impl Counter {
    const fn new() -> Counter {
        Counter(AtomicU64::new(0))
    }

    pub(crate) fn add(&self) {
        self.0.fetch_add(1, Ordering::Relaxed);
    }

    pub(crate) fn get(&self) -> u64 {
        self.0.load(Ordering::Relaxed)
    }
}

/// Scans stored without their configured prefix.
pub(crate) static SCANS_WITHOUT_PREFIX: Counter = Counter::new();
/// Scans whose bytes were not UTF-8 (kept in `raw_hex`).
pub(crate) static SCANS_NOT_UTF8: Counter = Counter::new();
/// Scans stored as received because their data could not be interpreted.
pub(crate) static SCANS_UNDECODED: Counter = Counter::new();
/// Station cycles resumed after a restart or reload.
pub(crate) static STATION_CYCLES_RESUMED: Counter = Counter::new();
/// Station cycles cancelled because they could not be resumed (the workflow changed).
pub(crate) static STATION_CYCLES_CANCELLED: Counter = Counter::new();

/// MQTT PUBLISH packets the handheld source received (handheld messages, print jobs, echoes).
pub(crate) static MQTT_MESSAGES_RECEIVED: Counter = Counter::new();
/// Of those, dockhand's own answers echoed back by the broker (only with `replies = "v1"`).
pub(crate) static MQTT_OWN_REPLIES_RECEIVED: Counter = Counter::new();

/// Chatter notes an Odoo sink could not post (the transfers themselves were applied).
pub(crate) static ODOO_NOTES_FAILED: Counter = Counter::new();

/// `(metric, label, value)` rows for `/metrics`.
pub(crate) fn rows() -> [(&'static str, &'static str, u64); 8] {
    [
        ("dockhand_scans_kept_raw_total", "reason=\"prefix_missing\"", SCANS_WITHOUT_PREFIX.get()),
        ("dockhand_scans_kept_raw_total", "reason=\"not_utf8\"", SCANS_NOT_UTF8.get()),
        ("dockhand_scans_kept_raw_total", "reason=\"undecodable\"", SCANS_UNDECODED.get()),
        ("dockhand_station_cycles_restarted_total", "outcome=\"resumed\"", STATION_CYCLES_RESUMED.get()),
        ("dockhand_station_cycles_restarted_total", "outcome=\"cancelled\"", STATION_CYCLES_CANCELLED.get()),
        ("dockhand_odoo_notes_failed_total", "", ODOO_NOTES_FAILED.get()),
        ("dockhand_mqtt_messages_received_total", "", MQTT_MESSAGES_RECEIVED.get()),
        ("dockhand_mqtt_own_replies_received_total", "", MQTT_OWN_REPLIES_RECEIVED.get()),
    ]
}
