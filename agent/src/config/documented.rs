//! The example config documents every option: each key of each config type must appear in
//! `config/dockhand.example.toml`, set or commented out, in its section. The keys are read from the
//! types themselves (the field list serde derives), so a new option without documentation fails
//! this test instead of drifting.

use std::collections::{BTreeMap, BTreeSet};

use serde::Deserialize;
use serde::de::{self, Visitor};

/// The keys serde accepts for `T` (its `deserialize_struct` field list).
fn keys_of<T: Deserialize<'static>>() -> &'static [&'static str] {
    let mut fields = None;
    let _ = T::deserialize(Recorder(&mut fields));
    fields.unwrap_or_else(|| panic!("{} is not a struct", std::any::type_name::<T>()))
}

struct Recorder<'a>(&'a mut Option<&'static [&'static str]>);

#[derive(Debug)]
struct Stop;

impl std::fmt::Display for Stop {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("recorded")
    }
}

impl std::error::Error for Stop {}

impl de::Error for Stop {
    fn custom<T: std::fmt::Display>(_: T) -> Self {
        Stop
    }
}

impl<'de> de::Deserializer<'de> for Recorder<'_> {
    type Error = Stop;

    fn deserialize_any<V: Visitor<'de>>(self, _: V) -> Result<V::Value, Stop> {
        Err(Stop)
    }

    fn deserialize_struct<V: Visitor<'de>>(
        self,
        _: &'static str,
        fields: &'static [&'static str],
        _: V,
    ) -> Result<V::Value, Stop> {
        *self.0 = Some(fields);
        Err(Stop)
    }

    serde::forward_to_deserialize_any! {
        bool i8 i16 i32 i64 i128 u8 u16 u32 u64 u128 f32 f64 char str string bytes byte_buf option
        unit unit_struct newtype_struct seq tuple tuple_struct map enum identifier ignored_any
    }
}

/// Keys written in each section of a TOML text, commented out or not (`# key = …` counts): the
/// section is the last `[name]`, `[[name]]` or `# [name]` line above.
fn keys_by_section(text: &str) -> BTreeMap<String, BTreeSet<String>> {
    let mut out: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    let mut section = String::new();
    for line in text.lines() {
        let line = line.trim_start_matches(|c: char| c == '#' || c.is_whitespace());
        if let Some(rest) = line.strip_prefix('[') {
            let name = rest.trim_start_matches('[');
            if let Some(end) = name.find(']') {
                section = name[..end].trim().to_string();
                out.entry(section.clone()).or_default();
                continue;
            }
        }
        // `key = value`, and the keys of an inline table: `rate_limit = { per_second = 50 }`.
        let mut rest = line;
        while let Some((left, right)) = rest.split_once('=') {
            let key = left.rsplit(|c: char| c == '{' || c == ',' || c.is_whitespace()).find(|k| !k.is_empty());
            if let Some(key) = key.filter(|k| k.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')) {
                out.entry(section.clone()).or_default().insert(key.to_string());
            }
            rest = right;
        }
    }
    out
}

#[test]
fn the_example_config_documents_every_key_of_every_section() {
    use crate::sinks::{BatchConfig, RetryConfig};
    let sections: Vec<(&str, Vec<&'static [&'static str]>)> = vec![
        ("gateway", vec![keys_of::<super::GatewayConfig>()]),
        ("store", vec![keys_of::<super::StoreConfig>()]),
        ("log", vec![keys_of::<super::LogConfig>()]),
        ("mqtt", vec![keys_of::<crate::mqtt::MqttConfig>()]),
        ("mqtt.tls", vec![keys_of::<crate::tls::TlsFiles>()]),
        ("broker", vec![keys_of::<crate::mqtt::BrokerConfig>()]),
        ("simulate", vec![keys_of::<crate::simulate::SimulateConfig>()]),
        ("web", vec![keys_of::<crate::web::WebConfig>()]),
        // The old name of [web], still read; not in the example any more.
        ("metrics", vec![]),
        ("health", vec![keys_of::<crate::health::HealthConfig>()]),
        (
            "sink",
            vec![
                keys_of::<crate::sinks::file::FileSinkConfig>(),
                keys_of::<crate::sinks::http::HttpSinkConfig>(),
                keys_of::<crate::sinks::odoo::config::OdooSinkConfig>(),
                keys_of::<crate::sinks::mqtt::config::MqttSinkConfig>(),
            ],
        ),
        ("sink.batch", vec![keys_of::<BatchConfig>()]),
        ("sink.retry", vec![keys_of::<RetryConfig>()]),
        ("sink.tls", vec![keys_of::<crate::tls::TlsFiles>()]),
        ("device", vec![keys_of::<crate::devices::DeviceConfig>()]),
        ("label", vec![keys_of::<crate::printing::LabelConfig>()]),
        ("station", vec![keys_of::<crate::stations::StationConfig>()]),
    ];
    // A new top-level section must be added to the list above.
    for top in keys_of::<super::RawConfig>() {
        assert!(sections.iter().any(|(s, _)| s == top), "[{top}] is not in this test's list of sections");
    }
    let written = keys_by_section(include_str!("../../../config/dockhand.example.toml"));
    let mut missing = Vec::new();
    for (section, types) in sections.iter().filter(|(_, types)| !types.is_empty()) {
        // A nested table may be written inline in its parent: `tls = { ca_file = … }`.
        let parent = section.rsplit_once('.').map(|(p, _)| p);
        let Some(keys) = written.get(*section).or_else(|| parent.and_then(|p| written.get(p))) else {
            missing.push(format!("[{section}] (the whole section)"));
            continue;
        };
        // A nested table (`batch`, `tls`) is documented by its own section.
        let nested: BTreeSet<&str> =
            sections.iter().filter_map(|(s, _)| s.strip_prefix(section).and_then(|r| r.strip_prefix('.'))).collect();
        for key in types.iter().flat_map(|t| t.iter()) {
            if !keys.contains(*key) && !nested.contains(key) {
                missing.push(format!("{section}.{key}"));
            }
        }
    }
    missing.dedup();
    assert!(missing.is_empty(), "config/dockhand.example.toml does not document: {}", missing.join(", "));
}

#[test]
fn the_recorder_reads_a_types_keys_and_the_scanner_finds_commented_ones() {
    assert_eq!(keys_of::<crate::tls::TlsFiles>(), ["ca_file", "client_cert_file", "client_key_file"]);
    let found = keys_by_section("[a]\nx = 1\n# y = 2\n# [b]\n#z = { w = 3, v = 4 }\n");
    assert_eq!(found["a"], BTreeSet::from(["x".to_string(), "y".to_string()]));
    assert_eq!(found["b"], ["v", "w", "z"].iter().map(|s| s.to_string()).collect());
}
