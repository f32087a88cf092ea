//! The file sink: appends each event as one line of NDJSON (the envelope exactly as stored) and
//! fsyncs once per batch. For demos, debugging, and a local audit trail on the gateway.
//!
//! After a crash between the fsync and the store recording progress, the last batch is written
//! again: readers dedup by `id` like every other receiver. A crash in the middle of a write
//! leaves a torn last line; the next append first cuts the file back to its last complete line
//! (that batch was never recorded as delivered, so it is written again whole), so every line of
//! the file is one whole event.

use std::io::Write;
use std::path::{Path, PathBuf};

use serde::Deserialize;

use super::{BatchConfig, Outcome, RetryConfig};
use crate::store::BatchItem;

#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct FileSinkConfig {
    pub(crate) name: String,
    #[serde(rename = "type")]
    pub(crate) kind: String,
    /// The NDJSON file to append to (created if missing; relative to the config file's folder).
    pub(crate) path: PathBuf,
    #[serde(default)]
    pub(crate) batch: BatchConfig,
    #[serde(default)]
    pub(crate) retry: RetryConfig,
}

impl FileSinkConfig {
    pub(crate) fn resolved(mut self, base: &Path) -> Self {
        self.path = crate::units::resolve(base, &self.path);
        self
    }
}

#[derive(Debug)]
pub(crate) struct FileSink {
    config: FileSinkConfig,
}

impl FileSink {
    pub(crate) fn new(config: FileSinkConfig) -> Self {
        Self { config }
    }

    /// The file events are appended to.
    pub(crate) fn path(&self) -> &std::path::Path {
        &self.config.path
    }

    pub(crate) async fn deliver(&mut self, batch: &[BatchItem]) -> Outcome {
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
}

fn append_durably(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    let mut file = std::fs::OpenOptions::new().create(true).read(true).append(true).open(path)?;
    cut_torn_tail(&file)?;
    file.write_all(bytes)?;
    file.sync_data()
}

/// Cuts a last line without its newline (a write interrupted by a crash) off the file.
fn cut_torn_tail(file: &std::fs::File) -> std::io::Result<()> {
    use std::os::unix::fs::FileExt;
    let len = file.metadata()?.len();
    let mut last = [0u8; 1];
    if len == 0 || (file.read_at(&mut last, len - 1)? == 1 && last[0] == b'\n') {
        return Ok(());
    }
    // Scan back for the last newline, a block at a time.
    let mut end = len;
    let mut block = vec![0u8; 64 * 1024];
    while end > 0 {
        let start = end.saturating_sub(block.len() as u64);
        let n = (end - start) as usize;
        file.read_exact_at(&mut block[..n], start)?;
        if let Some(i) = block[..n].iter().rposition(|&b| b == b'\n') {
            file.set_len(start + i as u64 + 1)?;
            return file.sync_data();
        }
        end = start;
    }
    file.set_len(0)?;
    file.sync_data()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_torn_last_line_is_cut_before_the_next_append() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("events.ndjson");
        std::fs::write(&path, b"{\"id\":1}\n{\"id\":2,\"sch").unwrap();
        append_durably(&path, b"{\"id\":2}\n").unwrap();
        assert_eq!(std::fs::read(&path).unwrap(), b"{\"id\":1}\n{\"id\":2}\n");
        // A whole file is left alone; a file that is one torn line is emptied first.
        append_durably(&path, b"{\"id\":3}\n").unwrap();
        assert_eq!(std::fs::read(&path).unwrap(), b"{\"id\":1}\n{\"id\":2}\n{\"id\":3}\n");
        std::fs::write(&path, b"{\"id\":9").unwrap();
        append_durably(&path, b"{\"id\":9}\n").unwrap();
        assert_eq!(std::fs::read(&path).unwrap(), b"{\"id\":9}\n");
    }
}
