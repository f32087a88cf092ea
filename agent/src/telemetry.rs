//! Logging set-up: structured `tracing` events to stderr, as readable text or as JSON lines
//! (`log.format`). `RUST_LOG`, when set, overrides `log.level` for one-off debugging.

use tracing_subscriber::EnvFilter;

use crate::config::{LogConfig, LogFormat};

pub fn init(log: &LogConfig) {
    let filter = std::env::var("RUST_LOG").ok().and_then(|v| EnvFilter::try_new(v).ok()).unwrap_or_else(|| {
        // The embedded broker logs ordinary disconnects as errors; dockhand reports the broker's
        // real problems itself. `log.level = "info,rumqttd=info"` shows its own logs again.
        let level =
            if log.level.contains("rumqttd") { log.level.clone() } else { format!("{},rumqttd=off", log.level) };
        EnvFilter::try_new(level).unwrap_or_else(|_| EnvFilter::new("info"))
    });
    let builder = tracing_subscriber::fmt().with_env_filter(filter).with_writer(std::io::stderr);
    // try_init: a second call (tests, reload) keeps the first subscriber.
    let _ = match log.format {
        LogFormat::Json => builder.json().flatten_event(true).try_init(),
        LogFormat::Text => builder.with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr())).try_init(),
    };
}
