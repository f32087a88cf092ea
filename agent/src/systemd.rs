//! Talking to systemd (`Type=notify`): READY once the config is valid and the store is open,
//! WATCHDOG only while every task's heartbeat is fresh, a one-line STATUS, RELOADING and STOPPING.
//! Without `$NOTIFY_SOCKET` (not started by systemd) every call is a no-op.

use std::time::Duration;

use sd_notify::NotifyState;
use tracing::debug;

fn send(states: &[NotifyState<'_>]) {
    if std::env::var_os("NOTIFY_SOCKET").is_none() {
        return;
    }
    if let Err(e) = sd_notify::notify(states) {
        debug!(error = %e, "Cannot notify systemd.");
    }
}

pub(crate) fn ready(status: &str) {
    send(&[NotifyState::Ready, NotifyState::Status(status)]);
}

pub(crate) fn status(line: &str) {
    send(&[NotifyState::Status(line)]);
}

pub(crate) fn watchdog() {
    send(&[NotifyState::Watchdog]);
}

pub(crate) fn reloading() {
    send(&[NotifyState::Reloading, NotifyState::Status("Reloading the config.")]);
}

pub(crate) fn stopping() {
    send(&[NotifyState::Stopping, NotifyState::Status("Stopping.")]);
}

/// How often to ping the watchdog: half of `WatchdogSec`, or never.
pub(crate) fn watchdog_interval() -> Option<Duration> {
    sd_notify::watchdog_enabled().map(|d| d / 2)
}
