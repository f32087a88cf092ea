//! `firmware-bridge`: bridges one serial device on a remote host to the gateway's MQTT broker.

use std::process::ExitCode;

fn main() -> ExitCode {
    eprintln!(
        "firmware-bridge {}: this build bridges no devices yet; serial scanners and scales arrive in a later release.",
        env!("CARGO_PKG_VERSION")
    );
    // EX_UNAVAILABLE: a service unit using this binary fails visibly instead of looping silently.
    ExitCode::from(69)
}
