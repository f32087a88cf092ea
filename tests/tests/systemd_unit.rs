//! The shipped unit passes `systemd-analyze verify`, and its exposure score stays at or below 3.0
//! ("OK" on systemd's scale). CI installs systemd's tools (scripts/test-packages.txt).

#![allow(clippy::unwrap_used)] // test code: a panic is the failure report

use std::process::Command;

#[test]
fn the_unit_verifies_and_its_exposure_is_at_most_3() {
    let unit = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../systemd/dockhand.service")).unwrap();
    // Point the unit at the binary built here (verify checks that ExecStart exists).
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("dockhand.service");
    std::fs::write(&path, unit.replace("/usr/bin/dockhand", env!("CARGO_BIN_EXE_dockhand-e2e"))).unwrap();
    let verify = Command::new("systemd-analyze")
        .arg("verify")
        .arg(&path)
        .output()
        .expect("systemd-analyze (apt-get install systemd)");
    let complaints = String::from_utf8_lossy(&verify.stderr);
    assert!(verify.status.success() && complaints.trim().is_empty(), "systemd-analyze verify: {complaints}");
    let security = Command::new("systemd-analyze").args(["security", "--offline=true"]).arg(&path).output().unwrap();
    let text = String::from_utf8_lossy(&security.stdout);
    let score: f64 = text
        .lines()
        .find_map(|l| l.split("Overall exposure level for dockhand.service: ").nth(1))
        .and_then(|rest| rest.split_whitespace().next())
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("no exposure level in:\n{text}"));
    assert!(score <= 3.0, "exposure {score} > 3.0");
    // Hardening must not hide the serial ports.
    let directives: Vec<&str> = unit.lines().map(str::trim).filter(|l| !l.starts_with('#')).collect();
    assert!(!directives.contains(&"PrivateDevices=yes") && directives.contains(&"DeviceAllow=char-ttyUSB rw"));
    assert!(unit.contains("RestartPreventExitStatus=78") && unit.contains("Type=notify"));
}

/// Every `DeviceAllow=char-<class>` rule for USB serial ports has the driver that registers the
/// class loaded before the service starts (systemd resolves the rule from /proc/devices at start
/// and drops it when the class is not registered yet: hot-plugged adapters would be refused).
#[test]
fn every_usb_serial_device_class_has_its_driver_loaded_before_the_service() {
    let unit = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../systemd/dockhand.service")).unwrap();
    let directives: Vec<&str> = unit.lines().map(str::trim).filter(|l| !l.starts_with('#')).collect();
    let values = |key: &str| -> Vec<String> {
        directives
            .iter()
            .filter_map(|l| l.strip_prefix(key))
            .flat_map(|v| v.split_whitespace().map(str::to_string).collect::<Vec<_>>())
            .collect()
    };
    let (wants, after) = (values("Wants="), values("After="));
    // The kernel module that registers each class's major (Documentation/admin-guide/devices.txt:
    // 188 ttyUSB by usbserial, 166 ttyACM by cdc_acm); ttyS comes from the built-in 8250 driver.
    let drivers = [("char-ttyUSB", Some("usbserial")), ("char-ttyACM", Some("cdc_acm")), ("char-ttyS", None)];
    let allowed: Vec<String> = values("DeviceAllow=").into_iter().filter(|v| v.starts_with("char-")).collect();
    assert!(!allowed.is_empty(), "no device class is allowed");
    for class in &allowed {
        let (_, module) = drivers
            .iter()
            .find(|(c, _)| c == class)
            .unwrap_or_else(|| panic!("{class}: which driver registers it? add it to this test"));
        if let Some(module) = module {
            let unit = format!("modprobe@{module}.service");
            assert!(wants.contains(&unit) && after.contains(&unit), "{class} needs Wants= and After= {unit}");
        }
    }
}
