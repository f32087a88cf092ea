//! Process exit codes (contracts.md §5). systemd's `RestartPreventExitStatus=78` stops a restart
//! loop on a config error.

pub(crate) const OK: i32 = 0;
/// Anything else.
pub(crate) const FAILURE: i32 = 1;
/// Bad command line (clap's own code for usage errors).
pub(crate) const USAGE: i32 = 2;
/// EX_IOERR: the store could not be opened, read or written.
pub(crate) const STORE_IO: i32 = 74;
/// EX_CONFIG: the config file is missing or invalid.
pub(crate) const CONFIG: i32 = 78;
