//! The config the daemon runs, as `meta` rows: the digest of the text it loaded and when, and the
//! last edit it refused (its digest, when, and why). Written by the daemon at start and at each
//! reload; read into the store summary, where `status` compares it with the file on disk.

use rusqlite::{Connection, OptionalExtension, params};
use serde::{Deserialize, Serialize};

use crate::timestamp::Timestamp;

/// What the daemon tells the store about its config.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum ConfigChange {
    /// It runs the config whose text has this digest (a start or a successful reload).
    Loaded { digest: String },
    /// It refused an edit (a reload of an invalid file) and keeps the running config.
    Refused { digest: String, error: String },
}

/// The config the daemon runs, read back.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub(crate) struct RunningConfig {
    /// Digest of the text the daemon loaded (`status::config_text_digest`).
    pub(crate) digest: String,
    pub(crate) loaded_at: Timestamp,
    /// The last edit refused since then, if any.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) refused: Option<RefusedEdit>,
}

/// An edit the daemon refused.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct RefusedEdit {
    /// Digest of the refused text.
    pub(crate) digest: String,
    pub(crate) at: Timestamp,
    /// The config error, as the technician would read it from `check-config`.
    pub(crate) error: String,
}

pub(super) fn apply(conn: &Connection, change: &ConfigChange) -> Result<(), rusqlite::Error> {
    let now = Timestamp::now();
    match change {
        ConfigChange::Loaded { digest } => {
            conn.execute(
                "INSERT OR REPLACE INTO meta (key, value) VALUES ('config_digest', ?1), ('config_loaded_at', ?2)",
                params![digest, now.as_millis().to_string()],
            )?;
            conn.execute("DELETE FROM meta WHERE key = 'config_refused'", [])?;
        }
        ConfigChange::Refused { digest, error } => {
            let edit = RefusedEdit { digest: digest.clone(), at: now, error: error.clone() };
            conn.execute(
                "INSERT OR REPLACE INTO meta (key, value) VALUES ('config_refused', ?1)",
                params![serde_json::to_string(&edit).unwrap_or_default()],
            )?;
        }
    }
    Ok(())
}

pub(super) fn read(conn: &Connection) -> Result<Option<RunningConfig>, rusqlite::Error> {
    let meta = |key: &str| -> Result<Option<String>, rusqlite::Error> {
        conn.query_row("SELECT value FROM meta WHERE key = ?1", params![key], |r| r.get(0)).optional()
    };
    let (Some(digest), Some(loaded_at)) = (meta("config_digest")?, meta("config_loaded_at")?) else {
        return Ok(None);
    };
    let loaded_at = Timestamp::from_millis(loaded_at.parse().unwrap_or(0));
    let refused = meta("config_refused")?.and_then(|json| serde_json::from_str(&json).ok());
    Ok(Some(RunningConfig { digest, loaded_at, refused }))
}
