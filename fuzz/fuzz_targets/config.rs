//! The configuration file: `dockhand::config::Config::parse` (TOML, then validation of every
//! section and sink), on any UTF-8 input. Nothing is read from disk: `parse` takes the text, and
//! the path only names the file in messages and anchors relative paths.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(text) = std::str::from_utf8(data) {
        let _ = dockhand::config::Config::parse(std::path::Path::new("fuzz.toml"), text);
    }
});
