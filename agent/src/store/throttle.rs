//! Rate limit for warnings that would otherwise repeat once per message: while the disk is full,
//! every held MQTT message and every retried commit fails the same way, and a log line for each
//! would bury the one line a technician needs (and, on a full disk, grow the journal).

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{SystemTime, UNIX_EPOCH};

/// How often a throttled warning may appear.
const EVERY_MS: u64 = 10_000;

/// The first warning goes out at once, then at most one per 10 s, each saying how many were
/// held back since the previous one.
#[derive(Debug, Default)]
pub(crate) struct WarnThrottle {
    last_ms: AtomicU64,
    held_back: AtomicU64,
}

impl WarnThrottle {
    pub(crate) const fn new() -> WarnThrottle {
        WarnThrottle { last_ms: AtomicU64::new(0), held_back: AtomicU64::new(0) }
    }

    /// `Some(n)` when this warning should be logged (`n` warnings were held back before it);
    /// `None` when it should not.
    pub(crate) fn allow(&self) -> Option<u64> {
        let now = SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_millis() as u64);
        let last = self.last_ms.load(Ordering::Relaxed);
        if now.saturating_sub(last) >= EVERY_MS
            && self.last_ms.compare_exchange(last, now, Ordering::Relaxed, Ordering::Relaxed).is_ok()
        {
            return Some(self.held_back.swap(0, Ordering::Relaxed));
        }
        self.held_back.fetch_add(1, Ordering::Relaxed);
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_first_warning_passes_and_the_next_ones_are_counted() {
        let t = WarnThrottle::new();
        assert_eq!(t.allow(), Some(0));
        assert_eq!(t.allow(), None);
        assert_eq!(t.allow(), None);
        // As if 10 s had passed: the next one passes and reports the two held back.
        t.last_ms.store(0, Ordering::Relaxed);
        assert_eq!(t.allow(), Some(2));
    }
}
