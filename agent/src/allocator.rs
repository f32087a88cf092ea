//! The process's memory allocator: mimalloc, for every binary that links dockhand (the daemon,
//! the CLI, the test builds of both), so tests measure what ships.
//!
//! Why not the C library's: in a profile of full MQTT ingest glibc's malloc and free took about
//! 30% of the daemon's CPU samples (docs/PERFORMANCE.md, "Later on 12-07: the allocator and the
//! event channel"); with mimalloc the CPU per message fell from 31 to 25–30 µs.
//!
//! Why these settings: a gateway has a few tens of MB. With mimalloc's defaults the uplink
//! drain of `dockhand bench mqtt-sink` peaked at 51 MB resident against glibc's 27 MB; built
//! without transparent huge pages (`no_thp` in Cargo.toml) and returning freed memory after
//! 10 ms instead of 1 s, it peaks at 24–26 MB.

#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// `mi_option_purge_delay` in mimalloc's `enum mi_option_e` (mimalloc.h; the bindings of
/// libmimalloc-sys name it only for mimalloc v2, the index is the same in v3).
const MI_OPTION_PURGE_DELAY: libmimalloc_sys::mi_option_t = 15;
/// Milliseconds before freed pages are returned to the OS.
const PURGE_DELAY_MS: std::ffi::c_long = 10;

/// Applies the settings above; called first thing by the CLI.
pub(crate) fn configure() {
    // SAFETY: `mi_option_set` only stores the value; purging reads it each time it runs. It is
    // not thread-safe, and this runs before the CLI starts any thread.
    #[allow(unsafe_code)]
    unsafe {
        libmimalloc_sys::mi_option_set(MI_OPTION_PURGE_DELAY, PURGE_DELAY_MS)
    };
}

#[cfg(test)]
mod tests {
    #[test]
    fn the_purge_delay_index_is_mimallocs_purge_delay() {
        // mimalloc's default purge delay is 1000 ms and no other numeric option defaults to
        // 1000: reading it through the index proves the index names that option.
        #[allow(unsafe_code)]
        let default = unsafe { libmimalloc_sys::mi_option_get(super::MI_OPTION_PURGE_DELAY) };
        assert!(default == 1000 || default == super::PURGE_DELAY_MS, "option 15 reads {default}");
    }
}
