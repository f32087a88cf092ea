//! How a supervised task (a sink's dispatcher, the MQTT source, a device, a station) ends when it
//! cannot go on. The supervisor stops the daemon on any of these; the exit code tells systemd and
//! the technician which kind it was (contracts.md §5: 74 for the store, 1 for anything else).

use crate::store::StoreError;

#[derive(Debug, thiserror::Error)]
pub(crate) enum TaskError {
    /// The store failed a write or a read; a damaged file is among these.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// The task cannot run with what it was given (a device entry the decoder refuses, a sink
    /// the store has no row for); says what is wrong in plain words.
    #[error("{0}")]
    Setup(String),
    /// The task panicked or was cancelled by the runtime.
    #[error("the task failed: {0}")]
    Crashed(String),
}
