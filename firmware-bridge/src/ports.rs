//! Which serial ports this host has, under the names a technician should configure: the stable
//! `/dev/serial/by-id/…` and `/dev/serial/by-path/…` links udev creates, each with the device node
//! it points at. `dockhand devices` and `firmware-bridge --list` print this.
//!
//! Read from the file system (no libudev, which breaks cross builds): the links, plus the tty
//! nodes serialport finds in sysfs for adapters that have no by-id link.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

/// A serial port present on this host.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PresentPort {
    /// The device node, e.g. `/dev/ttyUSB0`.
    pub node: PathBuf,
    /// Stable links to it (`/dev/serial/by-id/…`, `/dev/serial/by-path/…`).
    pub links: Vec<PathBuf>,
}

impl PresentPort {
    /// The name to put in a config file: the by-id link if there is one, else by-path, else the node.
    pub fn preferred_path(&self) -> &Path {
        self.links
            .iter()
            .find(|l| l.starts_with("/dev/serial/by-id"))
            .or_else(|| self.links.first())
            .map_or(self.node.as_path(), PathBuf::as_path)
    }

    /// Whether `configured` (a link or a node) names this port.
    pub fn matches(&self, configured: &Path) -> bool {
        let resolved = std::fs::canonicalize(configured).unwrap_or_else(|_| configured.to_path_buf());
        resolved == self.node || self.links.iter().any(|l| l == configured)
    }
}

/// The ports present now, sorted by node.
pub fn present_ports() -> Vec<PresentPort> {
    let mut by_node: BTreeMap<PathBuf, Vec<PathBuf>> = BTreeMap::new();
    for dir in ["/dev/serial/by-id", "/dev/serial/by-path"] {
        let Ok(entries) = std::fs::read_dir(dir) else { continue };
        for entry in entries.flatten() {
            let link = entry.path();
            if let Ok(node) = std::fs::canonicalize(&link) {
                by_node.entry(node).or_default().push(link);
            }
        }
    }
    if let Ok(found) = serialport::available_ports() {
        for port in found {
            by_node.entry(PathBuf::from(port.port_name)).or_default();
        }
    }
    by_node
        .into_iter()
        .map(|(node, mut links)| {
            links.sort();
            PresentPort { node, links }
        })
        .collect()
}
