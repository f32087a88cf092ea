//! Printers: status replies of ZPL, TSPL, ESC/POS and EPL2 printers decoded into one
//! [`PrinterStatus`]. Label rendering and transport live elsewhere.

pub mod status;

pub use status::{PrinterProblem, PrinterStatus, PrinterStatusError};
