//! `dockhand print list | reprint ID` and `dockhand print-test PRINTER`: the print queue for an
//! operator. Works on the store directly, whether the daemon runs or not; the running daemon
//! picks new jobs up within a fraction of a second.

use std::time::{Duration, Instant};

use clap::Subcommand;

use crate::config::Config;
use crate::store::print_jobs::{NewPrintJob, PrintJobChange, PrintJobState};
use crate::store::{Admin, StoreError, StoreReader};
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
        PrintCommand::Reprint { id } => {
            let new_id = Admin::open(store)?.reprint(&id)?;
            println!("Queued {new_id}: the label of {id} prints again when its printer is ready.");
            Ok(crate::exit::OK)
        }
    }
}

/// Queues a test label for `printer` and waits up to 15 s for it to go out, showing the
/// printer's state as the daemon sees it. With the daemon down it says so at once and queues
/// nothing; a label still queued after 15 s is taken back, so it never prints later with a stale
/// timestamp.
pub(crate) fn test(config: &Config, printer: &str) -> Result<i32, StoreError> {
    let printers: Vec<&str> = config
        .devices
        .iter()
        .filter(|d| d.kind == firmware_bridge::spec::DeviceKind::Printer)
        .map(|d| d.name.as_str())
        .collect();
    if !printers.contains(&printer) {
        let known = if printers.is_empty() {
            "it has no printer ([[device]] with kind = \"printer\")".to_owned()
        } else {
            format!("its printers are: {}", printers.join(", "))
        };
        eprintln!("error: no printer named `{printer}` in {}; {known}", config.file.display());
        return Ok(crate::exit::USAGE);
    }
    let now = Timestamp::now();
    let reader = StoreReader::open(&config.store.path)?;
    match crate::status::daemon_state(&reader.summary()?, now) {
        crate::status::DaemonState::Running { .. } => {}
        crate::status::DaemonState::Stopped { at } => {
            println!(
                "✗ the dockhand daemon is not running (stopped at {at}): start it (systemctl start dockhand), then run print-test again. Nothing was queued."
            );
            return Ok(crate::exit::FAILURE);
        }
        crate::status::DaemonState::NotRunning { .. } => {
            println!(
                "✗ the dockhand daemon is not running (systemctl status dockhand): start it, then run print-test again. Nothing was queued."
            );
            return Ok(crate::exit::FAILURE);
        }
    }
    let id = format!("test-{printer}-{}", now.as_millis());
    let body = firmware_bridge::printer::label::test_label(printer, &config.gateway.id, &now.to_string());
    let job =
        NewPrintJob { id: id.clone(), printer: printer.to_owned(), body, origin: "test".into(), reprint_of: None };
    Admin::open(&config.store.path)?.print_job(PrintJobChange::Enqueue(job))?;
    println!("Test label {id} queued for {printer}.");
    let started = Instant::now();
    loop {
        let summary = reader.summary()?;
        let state = summary.devices.iter().find(|d| d.name == printer);
        let job = reader.print_job(&id)?.map(|(j, _)| j);
        let shown = state.map_or("unknown".to_owned(), |d| {
            format!("{}{}", d.state, d.detail.as_deref().map_or(String::new(), |x| format!(" ({x})")))
        });
        match job.as_ref().map(|j| j.state) {
            Some(PrintJobState::Printed) => {
                println!("✓ sent to {printer} in {:.1} s; printer status: {shown}", started.elapsed().as_secs_f64());
                return Ok(crate::exit::OK);
            }
            Some(PrintJobState::Uncertain) => {
                println!("✗ sending failed part-way; printer status: {shown}");
                return Ok(crate::exit::FAILURE);
            }
            _ if started.elapsed() > Duration::from_secs(15) => {
                let running = summary.heartbeat_at.is_some_and(|h| h.millis_until(Timestamp::now()) < 30_000);
                let why = if running {
                    format!("the printer is {shown}")
                } else {
                    "the dockhand daemon is not running".into()
                };
                let withdrawn =
                    Admin::open(&config.store.path)?.print_job(PrintJobChange::Withdraw { id: id.clone() })?;
                let fate = if withdrawn == crate::store::print_jobs::PrintJobAnswer::Withdrawn(true) {
                    "The test label was taken back: it will not print later."
                } else {
                    "The label is being sent now; `dockhand print list` shows what became of it."
                };
                println!("✗ not printed after 15 s: {why}. {fate}");
                return Ok(crate::exit::FAILURE);
            }
            _ => std::thread::sleep(Duration::from_millis(200)),
        }
    }
}
