//! The process's memory allocator: mimalloc, for every binary that links dockhand (the daemon,
//! the CLI, the test builds of both), so tests measure what ships.
//!
//! Why not the C library's: at full MQTT ingest glibc's malloc and free took about a quarter of
//! the daemon's CPU per message (docs/PERFORMANCE.md, "MQTT ingest under contract v2"), mostly
//! in `malloc_consolidate` and cross-thread frees between the tokio workers and the store's
//! writer thread; musl's allocator, in the static builds, is slower still.
//!
//! Why these settings: a gateway has a few tens of MB. mimalloc is built without transparent
//! huge pages (`no_thp` in Cargo.toml: a 2 MiB page per heap region inflates a small daemon's
//! resident memory), and freed memory goes back to the OS after 10 ms instead of mimalloc's
//! default of 1 s, which kept a drained batch resident after each delivery.

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
