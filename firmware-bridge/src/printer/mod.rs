//! Printers: status replies of ZPL, TSPL, ESC/POS and EPL2 printers decoded into one
//! [`PrinterStatus`] ([`status`]), and framed as they arrive on a link ([`replies`]);
//! labels rendered from ZPL templates with escaped field data ([`label`]).

pub mod label;
pub mod replies;
pub mod status;

pub use status::{PrinterProblem, PrinterStatus, PrinterStatusError};
