//! What a technician can do to a gateway besides looking at it: queue dead letters for delivery
//! again, print a test label, print a label again, mark alarms as seen.
//!
//! One implementation for both front ends: the CLI (`dockhand dlq retry`, `print-test`,
//! `print reprint`, `status --clear-alarms`) and the buttons of the web page ([`crate::web`]).
//! Each action works on the store file the way a separate process does (SQLite serialises it with
//! the daemon's writer), says what it did as it goes through `say` — the terminal prints those
//! lines, the page shows them — and returns the exit code the CLI ends with.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use serde::Serialize;

use crate::exit;
use crate::store::print_jobs::{NewPrintJob, PrintJobAnswer, PrintJobChange, PrintJobState};
use crate::store::{Admin, StoreError, StoreReader};
use crate::timestamp::Timestamp;

/// One line an action says: to standard output, or (a refusal, a warning) to standard error.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "to", content = "text", rename_all = "snake_case")]
pub(crate) enum Said {
    Out(String),
    Err(String),
}

/// Where an action's lines go.
pub(crate) type Say<'a> = &'a mut dyn FnMut(Said);

/// `say` for a terminal.
pub(crate) fn to_terminal(line: Said) {
    match line {
        Said::Out(text) => println!("{text}"),
        Said::Err(text) => eprintln!("{text}"),
    }
}

/// How long `print-test` waits for its label to go out before taking it back.
const PRINT_TEST_WAIT: Duration = Duration::from_secs(15);

/// Queues dead letters (`None`: every open one) for delivery to their sink again.
pub(crate) fn retry_dead_letters(store: &Path, ids: Option<&[i64]>, say: Say<'_>) -> Result<i32, StoreError> {
    if ids.is_some_and(<[i64]>::is_empty) {
        say(Said::Err("error: name dead letter ids or pass --all".into()));
        return Ok(exit::USAGE);
    }
    let report = Admin::open(store)?.retry_dead_letters(ids)?;
    say(Said::Out(format!("{} dead letter(s) queued for delivery again.", report.queued)));
    for id in &report.not_retryable {
        say(Said::Out(format!(
            "#{id} was refused at ingest (never a valid event): fix the sender; it cannot be retried."
        )));
    }
    for id in &report.missing {
        say(Said::Out(format!("#{id} does not exist.")));
    }
    Ok(if report.missing.is_empty() { exit::OK } else { exit::FAILURE })
}

/// Prints a job's label again, as a new job `<id>-reprint-<n>`.
pub(crate) fn reprint(store: &Path, id: &str, say: Say<'_>) -> Result<i32, StoreError> {
    let new_id = Admin::open(store)?.reprint(id)?;
    say(Said::Out(format!("Queued {new_id}: the label of {id} prints again when its printer is ready.")));
    Ok(exit::OK)
}

/// Marks every open alarm as seen (they leave `status` and its verdict).
pub(crate) fn clear_alarms(store: &Path, say: Say<'_>) -> Result<i32, StoreError> {
    let n = Admin::open(store)?.clear_alarms()?;
    say(Said::Err(format!("{n} alarm(s) marked as seen.")));
    Ok(exit::OK)
}

/// What `print-test` needs from the config (built by `Config::print_test_target`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct PrintTestTarget {
    /// The config file, named in errors.
    pub(crate) config_file: PathBuf,
    pub(crate) store: PathBuf,
    pub(crate) gateway: String,
    /// The configured printers' names.
    pub(crate) printers: Vec<String>,
}

/// Queues a test label for `printer` and waits up to 15 s for it to go out, saying the printer's
/// state as the daemon sees it. With the daemon down it says so at once and queues nothing; a
/// label still queued after 15 s is taken back, so it never prints later with a stale timestamp.
pub(crate) fn print_test(target: &PrintTestTarget, printer: &str, say: Say<'_>) -> Result<i32, StoreError> {
    let printers = &target.printers;
    if !printers.iter().any(|p| p == printer) {
        let known = if printers.is_empty() {
            "it has no printer ([[device]] with kind = \"printer\")".to_owned()
        } else {
            format!("its printers are: {}", printers.join(", "))
        };
        say(Said::Err(format!("error: no printer named `{printer}` in {}; {known}", target.config_file.display())));
        return Ok(exit::USAGE);
    }
    let now = Timestamp::now();
    let reader = StoreReader::open(&target.store)?;
    match crate::status::daemon_state(&reader.summary()?, now) {
        crate::status::DaemonState::Running { .. } => {}
        crate::status::DaemonState::Stopped { at } => {
            say(Said::Out(format!(
                "✗ the dockhand daemon is not running (stopped at {at}): start it (systemctl start dockhand), then run print-test again. Nothing was queued."
            )));
            return Ok(exit::FAILURE);
        }
        crate::status::DaemonState::NotRunning { .. } => {
            say(Said::Out(
                "✗ the dockhand daemon is not running (systemctl status dockhand): start it, then run print-test again. Nothing was queued.".into(),
            ));
            return Ok(exit::FAILURE);
        }
    }
    let id = format!("test-{printer}-{}", now.as_millis());
    let body = firmware_bridge::printer::label::test_label(printer, &target.gateway, &now.to_string());
    let job =
        NewPrintJob { id: id.clone(), printer: printer.to_owned(), body, origin: "test".into(), reprint_of: None };
    Admin::open(&target.store)?.print_job(PrintJobChange::Enqueue(job))?;
    say(Said::Out(format!("Test label {id} queued for {printer}.")));
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
                say(Said::Out(format!(
                    "✓ sent to {printer} in {:.1} s; printer status: {shown}",
                    started.elapsed().as_secs_f64()
                )));
                return Ok(exit::OK);
            }
            Some(PrintJobState::Uncertain) => {
                say(Said::Out(format!("✗ sending failed part-way; printer status: {shown}")));
                return Ok(exit::FAILURE);
            }
            _ if started.elapsed() > PRINT_TEST_WAIT => {
                let running = summary.heartbeat_at.is_some_and(|h| h.millis_until(Timestamp::now()) < 30_000);
                let why = if running {
                    format!("the printer is {shown}")
                } else {
                    "the dockhand daemon is not running".into()
                };
                let withdrawn = Admin::open(&target.store)?.print_job(PrintJobChange::Withdraw { id: id.clone() })?;
                let fate = if withdrawn == PrintJobAnswer::Withdrawn(true) {
                    "The test label was taken back: it will not print later."
                } else {
                    "The label is being sent now; `dockhand print list` shows what became of it."
                };
                say(Said::Out(format!("✗ not printed after 15 s: {why}. {fate}")));
                return Ok(exit::FAILURE);
            }
            _ => std::thread::sleep(Duration::from_millis(200)),
        }
    }
}
