//! firmware-bridge: everything that speaks to device firmware — serial scanners, scales and
//! label printers. Pure codecs (`&[u8] -> Result<Frame, Error>`) are kept apart from the thin I/O
//! shell so that every protocol can be unit-tested and fuzzed byte by byte.
//!
//! This crate knows nothing of SQLite, MQTT topics or sinks; the agent turns what it decodes into
//! events. The codecs arrive with the serial-device work; until then the crate only fixes the
//! workspace layout.
