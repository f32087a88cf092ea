//! Logging set-up: structured `tracing` events to the systemd journal (fields become journal
//! fields) when running under systemd, else to stderr as readable text or JSON lines
//! (`log.format`). `RUST_LOG`, when set, overrides `log.level` for one-off debugging.

use serde::Deserialize;
use tracing_subscriber::EnvFilter;
use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::util::SubscriberInitExt;

/// How log lines are written (`log.format`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub(crate) enum LogFormat {
    /// journald when the service runs under systemd with the journal, text otherwise.
    #[default]
    Auto,
    Text,
    Json,
    /// Structured entries straight to the journal (fields become journal fields).
    Journald,
}

/// `[log]` in the config.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub(crate) struct LogConfig {
    /// `error`, `warn`, `info`, `debug` or `trace`, or a tracing filter (`info,dockhand::store=debug`).
    pub(crate) level: String,
    pub(crate) format: LogFormat,
}

impl Default for LogConfig {
    fn default() -> Self {
        Self { level: "info".into(), format: LogFormat::Auto }
    }
}

pub(crate) fn init(log: &LogConfig) {
    let stderr_text = || {
        let _ = tracing_subscriber::fmt()
            .with_env_filter(filter(log))
            .with_writer(std::io::stderr)
            .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
            .try_init();
    };
    // try_init everywhere: a second call (tests) keeps the first subscriber.
    match choose(log.format, std::env::var_os("JOURNAL_STREAM").is_some()) {
        LogFormat::Json => {
            let _ = tracing_subscriber::fmt()
                .with_env_filter(filter(log))
                .with_writer(std::io::stderr)
                .json()
                .flatten_event(true)
                .try_init();
        }
        LogFormat::Journald => match tracing_journald::layer() {
            Ok(journal) => {
                let journal = journal.with_syslog_identifier("dockhand".into());
                let _ = tracing_subscriber::registry().with(filter(log)).with(journal).try_init();
            }
            // No journal socket: keep logging, to stderr.
            Err(_) => stderr_text(),
        },
        _ => stderr_text(),
    }
}

/// `log.level`, or `RUST_LOG` when set. The embedded broker logs ordinary disconnects as errors;
/// dockhand reports the broker's real problems itself, so it is silenced unless asked for
/// (`log.level = "info,rumqttd=info"`).
fn filter(log: &LogConfig) -> EnvFilter {
    std::env::var("RUST_LOG").ok().and_then(|v| EnvFilter::try_new(v).ok()).unwrap_or_else(|| {
        let level =
            if log.level.contains("rumqttd") { log.level.clone() } else { format!("{},rumqttd=off", log.level) };
        EnvFilter::try_new(level).unwrap_or_else(|_| EnvFilter::new("info"))
    })
}

/// `auto` means the journal when systemd connected our output to it (`$JOURNAL_STREAM`).
fn choose(format: LogFormat, under_journal: bool) -> LogFormat {
    match (format, under_journal) {
        (LogFormat::Auto, true) => LogFormat::Journald,
        (LogFormat::Auto, false) => LogFormat::Text,
        (f, _) => f,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn auto_picks_the_journal_only_under_systemd() {
        assert_eq!(choose(LogFormat::Auto, true), LogFormat::Journald);
        assert_eq!(choose(LogFormat::Auto, false), LogFormat::Text);
        assert_eq!(choose(LogFormat::Json, true), LogFormat::Json, "an explicit format wins");
        assert_eq!(choose(LogFormat::Text, true), LogFormat::Text);
    }
}
