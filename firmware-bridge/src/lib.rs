//! firmware-bridge: everything that speaks to device firmware — serial scanners, scales and
//! label printers. Pure codecs (`&[u8] -> Result<Frame, Error>`) are kept apart from the thin I/O
//! shell so that every protocol can be unit-tested and fuzzed byte by byte.
//!
//! This crate knows nothing of SQLite, MQTT topics or sinks; the agent turns what it decodes into
//! events. Pure modules:
//!
//! - [`scanner`]: barcode scans — [`scanner::framing`] (byte stream → frames),
//!   [`scanner::aim`] (AIM symbology ids), [`scanner::gs1`] (element strings, Digital Link),
//!   [`scanner::check_digit`], and [`scanner::decode_scan`] → the `scan` payload.
//! - [`scale`]: one decoder per scale protocol (MT-SICS, Toledo continuous and 8217, SMA, NCI,
//!   CAS, configurable pattern) → the `weight` payload, plus [`scale::stable`] capture.
//! - [`printer`]: printer status replies (ZPL `~HS`/`~HQES`, TSPL, ESC/POS, EPL2).
//! - [`decimal`]: exact decimal strings (weights are never floats).
//! - [`device`]: one interface over a scanner's or a scale's decoder; [`spec`]: a configured
//!   device (from the agent's config or the bridge's command line) → decoder and link timing.
//! - [`remote`]: the MQTT messages between a firmware-bridge process and the agent.
//!
//! And the thin I/O shell: [`link`] (one thread per serial or TCP device, reopen with backoff)
//! and [`ports`] (which serial ports this host has); [`tls`] (TLS client settings, shared with the
//! agent); [`bridge`] is the `firmware-bridge` program.

pub mod bridge;
pub mod bridge_printer;
pub mod decimal;
pub mod device;
pub mod link;
pub mod ports;
pub mod printer;
pub mod remote;
pub mod scale;
pub mod scanner;
pub mod spec;
pub mod tls;

pub use scale::{ScaleCondition, ScaleError, ScaleReading, Weight, WeightUnit};
pub use scanner::{Scan, ScanError, ScanOptions, ScanParsed, decode_scan};
