//! `dockhand print list | reprint ID`: the print queue for an operator. Works on the store
//! directly, whether the daemon runs or not; the running daemon picks new jobs up within a
//! fraction of a second. Reprinting and `print-test` are [`crate::actions`], shared with the web
//! page.

use clap::Subcommand;

use crate::store::{StoreError, StoreReader};
use crate::timestamp::Timestamp;
use crate::units::describe_age;

#[derive(Debug, Subcommand)]
pub(crate) enum PrintCommand {
    /// Jobs not printed yet, then the most recent printed ones.
    List {
        #[arg(long, default_value_t = 30)]
        limit: usize,
    },
    /// Print a job's label again (as a new job `<ID>-reprint-<n>`).
    Reprint { id: String },
}

pub(crate) fn run(store: &std::path::Path, command: PrintCommand) -> Result<i32, StoreError> {
    match command {
        PrintCommand::List { limit } => {
            let reader = StoreReader::open(store)?;
            let now = Timestamp::now();
            let jobs = reader.print_jobs(limit)?;
            if jobs.is_empty() {
                println!("No print jobs.");
            }
            for j in jobs {
                let age = describe_age(j.created_at.millis_until(now));
                let extra = j.last_error.map_or(String::new(), |e| format!(" — {e}"));
                let reprint = j.reprint_of.map_or(String::new(), |o| format!(" (reprint of {o})"));
                println!(
                    "{:<10} {:<36} printer {:<12} {age} ago, {} bytes{reprint}{extra}",
                    j.state, j.id, j.printer, j.bytes
                );
            }
            Ok(crate::exit::OK)
        }
        PrintCommand::Reprint { id } => crate::actions::reprint(store, &id, &mut crate::actions::to_terminal),
    }
}
