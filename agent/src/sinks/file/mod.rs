//! The file sink: appends each event as one line of NDJSON (the envelope exactly as stored) and
//! fsyncs once per batch. For demos, debugging, and a local audit trail on the gateway.
//!
//! After a crash between the fsync and the store recording progress, the last batch is written
//! again: readers dedup by `id` like every other receiver.

use std::io::Write;
use std::path::{Path, PathBuf};

use serde::Deserialize;

use super::{BatchConfig, Outcome, RetryConfig};
use crate::store::BatchItem;

#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FileSinkConfig {
    pub name: String,
    #[serde(rename = "type")]
    pub kind: String,
    /// The NDJSON file to append to (created if missing; relative to the config file's folder).
    pub path: PathBuf,
    #[serde(default)]
    pub batch: BatchConfig,
    #[serde(default)]
    pub retry: RetryConfig,
}

impl FileSinkConfig {
    pub(crate) fn resolved(mut self, base: &Path) -> Self {
        self.path = crate::config::resolve(base, &self.path);
        self
    }
}

#[derive(Debug)]
pub struct FileSink {
    config: FileSinkConfig,
}

impl FileSink {
    pub fn new(config: FileSinkConfig) -> Self {
        Self { config }
    }

    pub async fn deliver(&mut self, batch: &[BatchItem]) -> Outcome {
        let mut bytes = Vec::with_capacity(batch.iter().map(|b| b.body.len() + 1).sum());
        for item in batch {
            bytes.extend_from_slice(item.body.as_bytes());
            bytes.push(b'\n');
        }
        let path = self.config.path.clone();
        let result = tokio::task::spawn_blocking(move || append_durably(&path, &bytes)).await;
        match result {
            Ok(Ok(())) => Outcome::delivered(),
            Ok(Err(e)) => Outcome::Retry {
                error: format!("cannot write {}: {e}", self.config.path.display()),
                after: None,
                unreachable: false,
            },
            Err(e) => {
                Outcome::Retry { error: format!("the write was interrupted: {e}"), after: None, unreachable: false }
            }
        }
    }

    /// Checks the file can be opened for appending (for `check-config --connect`).
    pub fn probe(&self) -> Result<(), String> {
        open_append(&self.config.path)
            .map(drop)
            .map_err(|e| format!("cannot open {} for appending: {e}", self.config.path.display()))
    }
}

fn open_append(path: &Path) -> std::io::Result<std::fs::File> {
    std::fs::OpenOptions::new().create(true).append(true).open(path)
}

fn append_durably(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    let mut file = open_append(path)?;
    file.write_all(bytes)?;
    file.sync_data()
}
