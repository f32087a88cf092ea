//! The one TOML file a field technician edits: its shape, defaults, and validation.
//!
//! Loading is strict: unknown keys, wrong types and missing required keys are errors that name
//! the file, line, column and key path (see [`ConfigError`]); the daemon exits with code 78 on
//! them. Every option is documented in `config/dockhand.example.toml`.

#[cfg(test)]
mod documented;
mod error;
pub(crate) mod on_disk;

use std::collections::HashSet;
use std::path::{Path, PathBuf};

use serde::Deserialize;

pub(crate) use error::ConfigError;

use crate::mqtt::{BrokerConfig, MqttConfig};
use crate::simulate::SimulateConfig;
use crate::sinks::SinkConfig;
use crate::telemetry::LogConfig;
use crate::units::{ByteSize, ConfigIssue, HumanDuration};

pub(crate) const DEFAULT_PATH: &str = "/etc/dockhand/dockhand.toml";

#[derive(Debug, Clone, PartialEq)]
pub struct Config {
    /// The file this was loaded from; relative paths inside it are resolved against its folder.
    pub(crate) file: PathBuf,
    /// [`crate::status::config_text_digest`] of the text this was loaded from (recorded in the store, so
    /// `status` can tell when the file on disk is not what the daemon runs).
    pub(crate) digest: String,
    pub(crate) gateway: GatewayConfig,
    pub(crate) store: StoreConfig,
    pub(crate) log: LogConfig,
    /// The broker handhelds publish to; absent: no MQTT source.
    pub(crate) mqtt: Option<MqttConfig>,
    /// Run an MQTT broker inside dockhand.
    pub(crate) broker: Option<BrokerConfig>,
    /// Simulated handheld traffic (demos and commissioning only).
    pub(crate) simulate: Option<SimulateConfig>,
    /// The local HTTP server: `/metrics`, `/health` and the status page (`[web]`, formerly
    /// `[metrics]`).
    pub(crate) web: crate::web::WebConfig,
    /// What `/health` checks besides the daemon's own tasks.
    pub(crate) health: crate::health::HealthConfig,
    pub(crate) sinks: Vec<SinkConfig>,
    /// Serial scanners, scales and printers (`[[device]]`).
    pub(crate) devices: Vec<crate::devices::DeviceConfig>,
    /// Label templates (`[[label]]`).
    pub(crate) labels: Vec<crate::printing::LabelConfig>,
    /// Stations (`[[station]]`).
    pub(crate) stations: Vec<crate::stations::StationConfig>,
}

#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct GatewayConfig {
    /// This gateway's id (`wh1-gw01`): in every event, the MQTT client id and the status topic.
    pub(crate) id: String,
    /// The site (warehouse) code (`WH1`): in every event and in MQTT topics.
    pub(crate) site: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub(crate) struct StoreConfig {
    /// The SQLite file. Relative paths are resolved against the config file's folder.
    pub(crate) path: PathBuf,
    /// New events are refused once the store holds this much; stored events are never dropped.
    pub(crate) max_bytes: ByteSize,
    /// How long events delivered to every sink are kept (for `replay`) before they are pruned.
    pub(crate) retention: HumanDuration,
}

impl StoreConfig {
    /// The store's options for this section (the store itself knows nothing of the config file).
    pub(crate) fn options(&self) -> crate::store::StoreOptions {
        crate::store::StoreOptions {
            max_bytes: self.max_bytes.0,
            retention_ms: self.retention.as_millis(),
            ..crate::store::StoreOptions::new(&self.path)
        }
    }
}

impl Default for StoreConfig {
    fn default() -> Self {
        Self {
            path: PathBuf::from("/var/lib/dockhand/dockhand.db"),
            max_bytes: ByteSize(1 << 30),
            retention: HumanDuration(std::time::Duration::from_secs(7 * 86_400)),
        }
    }
}

/// The file as serde sees it; sinks are kept raw and parsed per `type` afterwards so that their
/// errors keep exact key paths.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawConfig {
    gateway: GatewayConfig,
    #[serde(default)]
    store: StoreConfig,
    #[serde(default)]
    log: LogConfig,
    mqtt: Option<MqttConfig>,
    broker: Option<BrokerConfig>,
    simulate: Option<SimulateConfig>,
    web: Option<crate::web::WebConfig>,
    /// The old name of `[web]`.
    metrics: Option<crate::web::OldMetricsSection>,
    #[serde(default)]
    health: crate::health::HealthConfig,
    #[serde(default)]
    sink: Vec<toml::Value>,
    #[serde(default)]
    device: Vec<crate::devices::DeviceConfig>,
    #[serde(default)]
    label: Vec<crate::printing::LabelConfig>,
    #[serde(default)]
    station: Vec<crate::stations::StationConfig>,
}

impl Config {
    /// Reads and validates `file`.
    pub(crate) fn load(file: &Path) -> Result<Config, ConfigError> {
        let text = std::fs::read_to_string(file).map_err(|e| {
            ConfigError::whole_file(
                file,
                format!("cannot read the config file: {e} (pass another one with --config PATH)"),
            )
        })?;
        Self::parse(file, &text)
    }

    /// Validates `text` as if it were the contents of `file`.
    pub fn parse(file: &Path, text: &str) -> Result<Config, ConfigError> {
        let de = toml::Deserializer::parse(text).map_err(|e| toml_error(file, text, "", e))?;
        let raw: RawConfig = serde_path_to_error::deserialize(de).map_err(|e| {
            let path = e.path().to_string();
            toml_error(file, text, &path, e.into_inner())
        })?;
        let base = file.parent().unwrap_or(Path::new(".")).to_path_buf();
        let mut sinks = Vec::with_capacity(raw.sink.len());
        for (i, value) in raw.sink.into_iter().enumerate() {
            let sink = SinkConfig::from_toml(value, &base)
                .map_err(|issue| ConfigError::from_issue(file, text, issue.within(&format!("sink[{i}]"))))?;
            sinks.push(sink);
        }
        let mut store = raw.store;
        store.path = resolve(&base, &store.path);
        let mut mqtt = raw.mqtt;
        if let Some(m) = &mut mqtt {
            m.resolve(&base);
        }
        let mut devices = raw.device;
        for d in &mut devices {
            d.resolve(&base);
        }
        let mut web = crate::web::WebConfig::from_sections(raw.web, raw.metrics)
            .map_err(|issue| ConfigError::from_issue(file, text, issue))?;
        web.resolve(&base);
        let mut labels = raw.label;
        for (i, label) in labels.iter_mut().enumerate() {
            label
                .load(&base)
                .map_err(|issue| ConfigError::from_issue(file, text, issue.within(&format!("label[{i}]"))))?;
        }
        let config = Config {
            file: file.to_path_buf(),
            digest: crate::status::config_text_digest(text),
            gateway: raw.gateway,
            store,
            log: raw.log,
            mqtt,
            broker: raw.broker,
            simulate: raw.simulate,
            web,
            health: raw.health,
            sinks,
            devices,
            labels,
            stations: raw.station,
        };
        config.validate().map_err(|issue| ConfigError::from_issue(file, text, issue))?;
        Ok(config)
    }

    /// What `print-test` needs from this config (the CLI's and the web page's).
    pub(crate) fn print_test_target(&self) -> crate::actions::PrintTestTarget {
        crate::actions::PrintTestTarget {
            config_file: self.file.clone(),
            store: self.store.path.clone(),
            gateway: self.gateway.id.clone(),
            printers: self
                .devices
                .iter()
                .filter(|d| d.kind == firmware_bridge::spec::DeviceKind::Printer)
                .map(|d| d.name.clone())
                .collect(),
        }
    }

    /// What the MQTT source needs from this config; `None` without `[mqtt]`.
    pub(crate) fn mqtt_settings(&self) -> Option<crate::mqtt::MqttSettings> {
        let mqtt = self.mqtt.clone()?;
        let prefix = mqtt.prefix(&self.gateway.site);
        let printers = self
            .devices
            .iter()
            .filter(|d| d.kind == firmware_bridge::spec::DeviceKind::Printer)
            .map(|d| d.name.clone())
            .collect();
        Some(crate::mqtt::MqttSettings {
            mqtt,
            gateway: self.gateway.id.clone(),
            site: self.gateway.site.clone(),
            prefix,
            printers,
            labels: self.labels.clone(),
        })
    }

    fn validate(&self) -> Result<(), ConfigIssue> {
        for (key, value) in [("gateway.id", &self.gateway.id), ("gateway.site", &self.gateway.site)] {
            if !is_identifier(value) {
                return Err(ConfigIssue::new(
                    key,
                    format!(
                        "`{value}` is not usable here: use letters, digits, `-`, `_` or `.` (it goes into MQTT topics)"
                    ),
                ));
            }
        }
        if self.store.max_bytes.0 < 1 << 20 {
            return Err(ConfigIssue::new("store.max_bytes", "must be at least 1MiB"));
        }
        if tracing_subscriber::EnvFilter::try_new(&self.log.level).is_err() {
            return Err(ConfigIssue::new(
                "log.level",
                format!("`{}` is not a log level (use error, warn, info, debug or trace)", self.log.level),
            ));
        }
        if let Some(m) = &self.mqtt {
            m.validate()?;
        }
        self.web.validate()?;
        if let Some(s) = &self.simulate {
            if self.mqtt.is_none() {
                return Err(ConfigIssue::new("simulate", "simulated handhelds need an [mqtt] section to publish to"));
            }
            if !(s.rate > 0.0 && s.rate <= 10_000.0) || s.handhelds == 0 {
                return Err(ConfigIssue::new("simulate", "needs 1 or more handhelds and 0 < rate <= 10000"));
            }
        }
        let mut device_names = HashSet::new();
        for (i, device) in self.devices.iter().enumerate() {
            if !is_identifier(&device.name) {
                return Err(ConfigIssue::new(
                    format!("device[{i}].name"),
                    format!("`{}` is not usable here: use letters, digits, `-`, `_` or `.`", device.name),
                ));
            }
            if !device_names.insert(device.name.as_str()) {
                return Err(ConfigIssue::new(
                    format!("device[{i}].name"),
                    format!("another device is already named `{}`", device.name),
                ));
            }
            device.validate().map_err(|issue| issue.within(&format!("device[{i}]")))?;
            if device.transport == crate::devices::config::Attachment::Mqtt && self.mqtt.is_none() {
                return Err(ConfigIssue::new(
                    format!("device[{i}].transport"),
                    "a device behind a firmware-bridge needs an [mqtt] section (the broker the bridge publishes to)",
                ));
            }
        }
        if let crate::health::DeviceRule::Named(names) = &self.health.devices
            && let Some(name) = names.iter().find(|n| !device_names.contains(n.as_str()))
        {
            let mut known: Vec<&str> = device_names.iter().copied().collect();
            known.sort_unstable();
            return Err(ConfigIssue::new(
                "health.devices",
                format!("`{name}` is not a configured device (devices: {})", known.join(", ")),
            ));
        }
        let mut station_names = HashSet::new();
        for (i, station) in self.stations.iter().enumerate() {
            if !is_identifier(&station.name) || !station_names.insert(station.name.as_str()) {
                return Err(ConfigIssue::new(
                    format!("station[{i}].name"),
                    format!("`{}` is taken or not usable (letters, digits, `-`, `_`, `.`)", station.name),
                ));
            }
            station.validate(&self.devices, &self.labels).map_err(|issue| {
                // A label's own mistake is reported at the [[label]] (`label[j]…`).
                if issue.key.starts_with("label[") { issue } else { issue.within(&format!("station[{i}]")) }
            })?;
            let earlier = self.stations[..i]
                .iter()
                .find(|s| s.scanner == station.scanner || (station.scale.is_some() && s.scale == station.scale));
            if let Some(other) = earlier {
                return Err(ConfigIssue::new(
                    format!("station[{i}].scanner"),
                    format!("station `{}` already uses this scanner or scale", other.name),
                ));
            }
        }
        let mut names = HashSet::new();
        for (i, sink) in self.sinks.iter().enumerate() {
            if !names.insert(sink.name()) {
                return Err(ConfigIssue::new(
                    format!("sink[{i}].name"),
                    format!("another sink is already named `{}`", sink.name()),
                ));
            }
        }
        Ok(())
    }
}

use crate::units::{is_identifier, resolve};

fn toml_error(file: &Path, text: &str, path: &str, err: toml::de::Error) -> ConfigError {
    let message = err.message().trim().to_string();
    let (key, problem) = crate::units::serde_error_key(path, &message);
    if problem == crate::units::SerdeProblem::Missing {
        return ConfigError::at_key(file, text, &key, "this required key is missing");
    }
    // The span, when toml has one, is more exact than the key path.
    let path = if path == "." { "" } else { path };
    match err.span() {
        Some(span) if message.starts_with("string values must be quoted") => {
            let message = error::unquoted_value(text, span.start).unwrap_or(message);
            ConfigError::at_span(file, text, Some(span), path, message)
        }
        Some(span) => ConfigError::at_span(file, text, Some(span), path, message),
        None => ConfigError::at_key(file, text, path, message),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> Result<Config, ConfigError> {
        Config::parse(Path::new("/etc/dockhand/dockhand.toml"), text)
    }

    const MINIMAL: &str = "[gateway]\nid = \"wh1-gw01\"\nsite = \"WH1\"\n";

    #[test]
    fn a_label_field_no_station_fills_is_reported_at_the_label() {
        let text = format!(
            "{MINIMAL}\n[[device]]\nname = \"s\"\nkind = \"scanner\"\npath = \"/dev/ttyACM0\"\n\
             [[device]]\nname = \"w\"\nkind = \"scale\"\npath = \"/dev/ttyUSB0\"\nprotocol = \"mt-sics\"\n\
             [[device]]\nname = \"p\"\nkind = \"printer\"\npath = \"/dev/ttyUSB1\"\n\
             [[label]]\nname = \"parcel\"\nzpl = \"^XA^FD{{{{customer}}}}^FS^XZ\"\n\
             [[station]]\nname = \"pack1\"\nworkflow = \"pack\"\nscanner = \"s\"\nscale = \"w\"\nprinter = \"p\"\nlabel = \"parcel\"\n"
        );
        let e = parse(&text).unwrap_err();
        let zpl_line = text.lines().position(|l| l.starts_with("zpl =")).unwrap() + 1;
        assert_eq!(e.location.map(|(line, _)| line), Some(zpl_line), "{e}");
        let shown = e.to_string();
        assert!(
            shown.contains("`label[0].zpl`") && shown.contains("{{customer}}") && shown.contains("pack1"),
            "{shown}"
        );
    }

    #[test]
    fn minimal_config_gets_defaults() {
        let c = parse(MINIMAL).unwrap();
        assert_eq!(c.store.path, PathBuf::from("/var/lib/dockhand/dockhand.db"));
        assert_eq!(c.store.retention.as_millis(), 7 * 86_400_000);
        assert!(c.sinks.is_empty());
    }

    #[test]
    fn relative_store_path_is_relative_to_the_config_file() {
        let c = parse(&format!("{MINIMAL}[store]\npath = \"state/q.db\"\n")).unwrap();
        assert_eq!(c.store.path, PathBuf::from("/etc/dockhand/state/q.db"));
    }

    #[test]
    fn misspelled_key_reports_line_column_and_path() {
        let e = parse(&format!("{MINIMAL}[store]\nmax_byte = \"1GiB\"\n")).unwrap_err();
        assert_eq!(e.location, Some((5, 1)), "{e}");
        assert_eq!(e.key, "store.max_byte");
        assert!(e.message.contains("unknown key"), "{e}");
    }

    #[test]
    fn wrong_type_reports_line_column_and_path() {
        let e = parse(&format!("{MINIMAL}[store]\nretention = 7\n")).unwrap_err();
        assert_eq!(e.location, Some((5, 13)), "{e}");
        assert_eq!(e.key, "store.retention");
    }

    #[test]
    fn missing_required_key_is_named() {
        let e = parse("[gateway]\nid = \"gw\"\n").unwrap_err();
        assert_eq!(e.key, "gateway.site");
        assert_eq!(e.location, Some((1, 2)));
        let e = parse("").unwrap_err();
        assert_eq!(e.key, "gateway");
    }

    #[test]
    fn sink_errors_keep_their_path() {
        let e = parse(&format!("{MINIMAL}[[sink]]\nname = \"a\"\ntype = \"file\"\npath = \"a.ndjson\"\n[sink.batch]\nmax_events = \"many\"\n")).unwrap_err();
        assert_eq!(e.key, "sink[0].batch.max_events", "{e}");
        assert_eq!(e.location, Some((9, 1)), "{e}");
        let e = parse(&format!("{MINIMAL}[[sink]]\nname = \"a\"\ntype = \"carrier-pigeon\"\n")).unwrap_err();
        assert_eq!(e.key, "sink[0].type", "{e}");
        let e = parse(&format!("{MINIMAL}[[sink]]\nname = \"a\"\ntype = \"file\"\npath = \"x\"\nurl = \"http://x\"\n"))
            .unwrap_err();
        assert_eq!(e.key, "sink[0].url", "{e}");
        assert_eq!(e.location, Some((8, 1)), "{e}");
    }

    #[test]
    fn duplicate_sink_names_are_refused() {
        let sink = "[[sink]]\nname = \"a\"\ntype = \"file\"\npath = \"x\"\n";
        let e = parse(&format!("{MINIMAL}{sink}{sink}")).unwrap_err();
        assert_eq!(e.key, "sink[1].name");
    }

    #[test]
    fn syntax_errors_have_a_location() {
        let e = parse("[gateway\nid = 1\n").unwrap_err();
        assert!(e.location.is_some(), "{e}");
    }
}

#[cfg(test)]
mod shipped_files {
    use super::*;

    /// The shipped example documents every option: it must stay a valid config.
    #[test]
    fn example_and_demo_configs_are_valid() {
        for (name, text) in [
            ("dockhand.example.toml", include_str!("../../../config/dockhand.example.toml")),
            ("demo.toml", include_str!("../../../config/demo.toml")),
        ] {
            let c = Config::parse(Path::new(name), text).unwrap_or_else(|e| panic!("{e}"));
            assert!(!c.sinks.is_empty(), "{name}");
        }
    }

    proptest::proptest! {
        #[test]
        fn arbitrary_text_never_panics(text in "(?s).{0,300}") {
            let _ = Config::parse(Path::new("fuzz.toml"), &text);
        }

        #[test]
        fn mutated_example_never_panics(cut in 0usize..2000, insert in "[\\[\\]=\"a-z0-9 \n.{}]{0,8}") {
            let text = include_str!("../../../config/dockhand.example.toml");
            let cut = cut.min(text.len());
            let cut = (0..=cut).rev().find(|&i| text.is_char_boundary(i)).unwrap_or(0);
            let mutated = format!("{}{insert}{}", &text[..cut], &text[cut..]);
            let _ = Config::parse(Path::new("fuzz.toml"), &mutated);
        }
    }
}
