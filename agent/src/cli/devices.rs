//! `dockhand devices`: which serial ports this gateway has, under the stable names to configure,
//! and which configured `[[device]]` each one is; and the device checks of
//! `check-config --connect` (open the port, ask a polled scale for a weight).

use std::io::{Read, Write};
use std::time::{Duration, Instant};

use firmware_bridge::device::DeviceOutput;
use firmware_bridge::ports::present_ports;

use crate::config::Config;
use crate::devices::DeviceConfig;

/// Prints the table; exit 0, or 1 when a configured serial device is missing.
pub(crate) fn list(config: Option<&Config>) -> i32 {
    let ports = present_ports();
    let devices: &[DeviceConfig] = config.map_or(&[], |c| &c.devices);
    if ports.is_empty() {
        println!("No serial ports found (no /dev/serial links and no tty with a driver in /sys/class/tty).");
    } else {
        println!("Serial ports on this gateway:");
    }
    for port in &ports {
        let used_by: Vec<&str> = devices
            .iter()
            .filter(|d| d.path.as_deref().is_some_and(|p| port.matches(p)))
            .map(|d| d.name.as_str())
            .collect();
        let role =
            if used_by.is_empty() { "not configured".to_owned() } else { format!("device {}", used_by.join(", ")) };
        println!("  {}  ({role})", port.preferred_path().display());
        if port.preferred_path() != port.node {
            println!("      → {}", port.node.display());
        }
    }
    let mut missing = 0;
    let serial: Vec<&DeviceConfig> = devices.iter().filter(|d| d.path.is_some()).collect();
    if !serial.is_empty() {
        println!();
        println!("Configured serial devices:");
    }
    for d in serial {
        let Some(path) = d.path.as_deref() else { continue };
        if path.exists() {
            println!("  ✓ {} ({:?}) at {}", d.name, d.kind, path.display());
        } else {
            missing += 1;
            println!(
                "  ✗ {} ({:?}): {} is not there — unplugged, or the path is wrong",
                d.name,
                d.kind,
                path.display()
            );
        }
    }
    if missing > 0 { crate::exit::FAILURE } else { crate::exit::OK }
}

/// Opens the device once; a polled scale is asked for a weight. Blocking (a few seconds at most).
pub(crate) fn check_device(device: &DeviceConfig) -> Result<String, String> {
    let Some(transport) = device.transport().map_err(|issue| issue.to_string())? else {
        return Ok("behind a firmware-bridge; its state shows in `dockhand status` once the daemon runs".into());
    };
    let spec = device.spec().map_err(|issue| issue.to_string())?;
    let mut decoder = spec.decoder()?;
    let mut port = transport.open().map_err(|e| {
        if e.contains("busy") || e.contains("Resource temporarily unavailable") {
            format!("{e} (is the dockhand daemon running and holding it?)")
        } else {
            e
        }
    })?;
    let Some(request) = spec.link_options().poll_interval.and(decoder.poll_request()) else {
        return Ok(format!("opened {}", transport.describe()));
    };
    port.write_all(&request).and_then(|()| port.flush()).map_err(|e| format!("write failed: {e}"))?;
    let deadline = Instant::now() + Duration::from_secs(2);
    let mut buf = [0u8; 256];
    let start = Instant::now();
    let mut garbled = None;
    while Instant::now() < deadline {
        let _ = port.set_read_timeout(Duration::from_millis(100));
        match port.read(&mut buf) {
            Ok(0) => return Err("the device closed the connection".into()),
            Ok(n) => {
                let now = start.elapsed().as_millis() as u64;
                for output in decoder.push(&buf[..n], now) {
                    match output {
                        DeviceOutput::Reading(reading) => {
                            return Ok(format!("{} answers: {}", transport.describe(), describe(&reading)));
                        }
                        DeviceOutput::Printer(status) => return Ok(printer_answer(&transport.describe(), &status)),
                        DeviceOutput::Garbled(why) => garbled = Some(why),
                        DeviceOutput::Scan { .. } => {}
                    }
                }
            }
            Err(e) if matches!(e.kind(), std::io::ErrorKind::TimedOut | std::io::ErrorKind::WouldBlock) => {}
            Err(e) => return Err(format!("read failed: {e}")),
        }
    }
    let check = no_answer_hint(&transport, device);
    Err(match garbled {
        Some(why) => format!(
            "{} answered {:?}, but the answer could not be read ({why}): {check}",
            transport.describe(),
            String::from_utf8_lossy(&request)
        ),
        None => format!(
            "{} opened, but no answer to {:?} within 2 s: {check}",
            transport.describe(),
            String::from_utf8_lossy(&request)
        ),
    })
}

/// A printer that answered its status request works with this configuration; whether it can print
/// right now is said, so a technician sees paper out before the first label.
fn printer_answer(port: &str, status: &firmware_bridge::printer::PrinterStatus) -> String {
    if status.is_ready() {
        format!("{port} answers: ready")
    } else {
        format!("{port} answers, but is not ready: {} (fix it at the printer)", status.problems_text())
    }
}

/// What to check when a device does not answer: the line settings only matter on a serial port.
fn no_answer_hint(transport: &firmware_bridge::link::Transport, device: &DeviceConfig) -> String {
    let what = match device.kind {
        firmware_bridge::spec::DeviceKind::Printer => "language",
        _ => "protocol",
    };
    match transport {
        firmware_bridge::link::Transport::Serial(_) => format!("check {what}, baud rate and parity"),
        firmware_bridge::link::Transport::Tcp(_) => {
            format!("check {what}, and that the port is the device's raw port (9100 for most printers)")
        }
    }
}

fn describe(reading: &firmware_bridge::ScaleReading) -> String {
    match reading {
        firmware_bridge::ScaleReading::Weight(w) => {
            format!("{} {}{}", w.value, w.unit, if w.stable { " stable" } else { " moving" })
        }
        firmware_bridge::ScaleReading::Condition(c) => format!("{c:?}"),
    }
}

/// For `check-config --connect`: each device's probe, with its name.
pub(crate) fn check_all(config: &Config) -> Vec<(String, Result<String, String>)> {
    config.devices.iter().map(|d| (format!("device {}", d.name), check_device(d))).collect()
}
