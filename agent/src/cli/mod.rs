//! The command line (contracts.md §5): argument parsing and one function per command. Commands
//! print for people by default and JSON with `--json`; errors go to stderr with an exit code from
//! [`crate::exit`].

mod check;
mod devices;
mod dlq;
mod print;

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};

use crate::config::{self, Config};
use crate::exit;
use crate::store::{StoreError, StoreReader};
use crate::timestamp::Timestamp;
use crate::units::HumanDuration;

#[derive(Debug, Parser)]
#[command(
    name = "dockhand",
    version,
    about = "Warehouse gateway agent: devices in, durable queue, delivery to the cloud and Odoo."
)]
pub(crate) struct Cli {
    /// The config file.
    #[arg(long, short = 'c', global = true, default_value = config::DEFAULT_PATH)]
    pub(crate) config: PathBuf,
    #[command(subcommand)]
    pub(crate) command: Command,
}

#[derive(Debug, Subcommand)]
pub(crate) enum Command {
    /// Run the daemon.
    Run,
    /// Validate the config file (line and column on errors; exit 78 if invalid).
    CheckConfig {
        /// Also try the store folder, the broker, every device and every sink.
        #[arg(long)]
        connect: bool,
    },
    /// Queue depth, oldest pending event, dead letters, errors and alarms per sink. Works while the daemon is down.
    Status {
        #[arg(long)]
        json: bool,
        /// Mark the alarms shown as seen.
        #[arg(long)]
        clear_alarms: bool,
    },
    /// Serial ports present (by-id paths) and which configured devices they are.
    Devices,
    /// Print jobs: list them, or print one again.
    Print {
        #[command(subcommand)]
        command: print::PrintCommand,
    },
    /// Print a test label on a configured printer and show its status.
    PrintTest { printer: String },
    /// Dead letters: events a sink refused for good, and input refused at ingest.
    Dlq {
        #[command(subcommand)]
        command: dlq::DlqCommand,
    },
    /// Deliver already-delivered events to a sink again (ids unchanged).
    Replay {
        #[arg(long)]
        sink: String,
        /// RFC 3339 time (2026-11-23T08:00:00Z) or an age (2h, 3d).
        #[arg(long)]
        since: String,
    },
    /// Publish realistic handheld traffic to the configured broker and report what the gateway answered.
    Simulate {
        #[command(subcommand)]
        command: SimulateCommand,
    },
    /// Measure this gateway: durable append throughput and drain speed.
    Bench {
        #[command(subcommand)]
        command: crate::bench::BenchCommand,
    },
}

#[derive(Debug, Subcommand)]
pub(crate) enum SimulateCommand {
    /// Simulated handheld scanners: scans with GS1 data, counts and picks, some malformed on purpose.
    Handhelds {
        /// Messages to send (all handhelds together).
        #[arg(long, default_value_t = 100)]
        count: u64,
        /// Messages per second.
        #[arg(long, default_value_t = 20.0)]
        rate: f64,
        /// Number of handhelds (each is its own MQTT client).
        #[arg(long, default_value_t = 3)]
        devices: usize,
        /// Every n-th message is malformed on purpose (0: none).
        #[arg(long, default_value_t = 20)]
        malformed_every: u64,
    },
}

/// Parses the command line and runs the command.
pub fn main() -> ExitCode {
    crate::allocator::configure();
    let cli = Cli::parse();
    ExitCode::from(run(cli) as u8)
}

fn run(cli: Cli) -> i32 {
    match cli.command {
        Command::Run => run_daemon(&cli.config),
        Command::CheckConfig { connect } => check::check_config(&cli.config, connect),
        Command::Status { json, clear_alarms } => with_store(&cli.config, |target| status(target, json, clear_alarms)),
        Command::Devices => {
            let config = Config::load(&cli.config);
            if let Err(e) = &config {
                eprintln!("note: configured devices are not shown: {e}");
            }
            devices::list(config.ok().as_ref())
        }
        Command::Dlq { command } => with_store(&cli.config, |target| dlq::run(&target.store, command)),
        Command::Print { command } => with_store(&cli.config, |target| print::run(&target.store, command)),
        Command::PrintTest { printer } => with_config(&cli.config, |c| {
            crate::actions::print_test(&c.print_test_target(), &printer, &mut crate::actions::to_terminal)
        }),
        Command::Replay { sink, since } => with_config(&cli.config, |c| replay(c, &sink, &since)),
        Command::Simulate { command } => simulate(&cli.config, command),
        Command::Bench { command } => crate::bench::run(command),
    }
}

fn load(path: &std::path::Path) -> Result<Config, i32> {
    Config::load(path).map_err(|e| {
        eprintln!("error: {e}");
        exit::CONFIG
    })
}

fn with_config(path: &std::path::Path, f: impl FnOnce(&Config) -> Result<i32, StoreError>) -> i32 {
    let config = match load(path) {
        Ok(c) => c,
        Err(code) => return code,
    };
    f(&config).unwrap_or_else(store_error)
}

fn store_error(e: StoreError) -> i32 {
    eprintln!("error: {e}");
    if e.is_damage() {
        eprintln!(
            "hint: start the daemon (systemctl start dockhand): it moves a damaged store aside and starts a fresh one."
        );
    }
    exit::STORE_IO
}

/// What the commands that only read or edit the store need. They work with a config that does not
/// load (a bad edit must not take away the tools to look at the gateway): the store is found
/// leniently and the error is shown as a warning.
struct StoreTarget {
    store: PathBuf,
    max_bytes: u64,
    file: crate::status::ConfigFile,
}

fn with_store(path: &std::path::Path, f: impl FnOnce(&StoreTarget) -> Result<i32, StoreError>) -> i32 {
    let target = match config::on_disk::load_for_reading(path) {
        config::on_disk::Loaded::Valid(c) => StoreTarget {
            store: c.store.path.clone(),
            max_bytes: c.store.max_bytes.0,
            file: crate::status::ConfigFile { digest: Some(c.digest.clone()), error: None },
        },
        config::on_disk::Loaded::Invalid { store, error } => {
            eprintln!("warning: {error}");
            eprintln!(
                "warning: the config above does not load; reading the store at {} anyway (a running daemon keeps the config it loaded).",
                store.display()
            );
            StoreTarget {
                store,
                max_bytes: config::StoreConfig::default().max_bytes.0,
                file: crate::status::ConfigFile {
                    digest: crate::status::config_file_digest(path).ok(),
                    error: Some(error.to_string()),
                },
            }
        }
    };
    f(&target).unwrap_or_else(store_error)
}

fn run_daemon(path: &std::path::Path) -> i32 {
    let config = match load(path) {
        Ok(c) => c,
        Err(code) => return code,
    };
    crate::telemetry::init(&config.log);
    let runtime = match tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build() {
        Ok(r) => r,
        Err(e) => {
            eprintln!("error: cannot start the async runtime: {e}");
            return exit::FAILURE;
        }
    };
    match runtime.block_on(crate::supervisor::run(config)) {
        Ok(()) => exit::OK,
        Err(crate::supervisor::RunError::Store(e)) => {
            tracing::error!(error = %e, "dockhand stopped on a store error.");
            exit::STORE_IO
        }
        Err(e) => {
            tracing::error!(error = %e, "dockhand stopped.");
            exit::FAILURE
        }
    }
}

fn status(target: &StoreTarget, json: bool, clear_alarms: bool) -> Result<i32, StoreError> {
    let reader = StoreReader::open(&target.store)?;
    let summary = reader.summary()?;
    let now = Timestamp::now();
    let report = crate::status::report(summary, target.max_bytes, now, &target.file);
    if json {
        println!("{}", serde_json::to_string_pretty(&report.to_json()).unwrap_or_default());
    } else {
        print!("{}", report.to_text(now));
    }
    if clear_alarms {
        crate::actions::clear_alarms(&target.store, &mut crate::actions::to_terminal)?;
    }
    Ok(exit::OK)
}

/// `2026-11-23T08:00:00Z` or an age such as `2h` (that long ago).
pub(crate) fn parse_since(text: &str, now: Timestamp) -> Result<Timestamp, String> {
    Timestamp::parse(text)
        .or_else(|_| HumanDuration::parse(text).map(|d| now.saturating_sub_millis(d.as_millis())))
        .map_err(|_| format!("`{text}` is neither an RFC 3339 time (2026-11-23T08:00:00Z) nor an age (2h, 3d)"))
}

fn replay(config: &Config, sink: &str, since: &str) -> Result<i32, StoreError> {
    let since = match parse_since(since, Timestamp::now()) {
        Ok(t) => t,
        Err(e) => {
            eprintln!("error: {e}");
            return Ok(exit::USAGE);
        }
    };
    if !config.sinks.iter().any(|s| s.name() == sink) {
        eprintln!("error: no sink named `{sink}` in {}", config.file.display());
        return Ok(exit::USAGE);
    }
    let report = crate::store::Admin::open(&config.store.path)?.replay(sink, since)?;
    if let Some(oldest) = report.oldest_available {
        eprintln!(
            "warning: events before {oldest} were already pruned (store.retention); replaying from the oldest kept."
        );
    }
    println!("Sink {sink} will deliver {} event(s) again, from seq {} on.", report.events, report.from_seq);
    Ok(exit::OK)
}

fn simulate(path: &std::path::Path, command: SimulateCommand) -> i32 {
    let config = match load(path) {
        Ok(c) => c,
        Err(code) => return code,
    };
    let Some(settings) = config.mqtt_settings() else {
        eprintln!("error: {} has no [mqtt] section: the simulator publishes to that broker", path.display());
        return exit::CONFIG;
    };
    let SimulateCommand::Handhelds { count, rate, devices, malformed_every } = command;
    let sim = crate::simulate::SimulateConfig { handhelds: devices, rate, malformed_every, count };
    let runtime = match tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build() {
        Ok(r) => r,
        Err(e) => {
            eprintln!("error: {e}");
            return exit::FAILURE;
        }
    };
    let (switch, shutdown) = crate::shutdown::ShutdownSwitch::new();
    let result = runtime.block_on(async {
        let run = crate::simulate::run(settings, sim, shutdown, true);
        tokio::pin!(run);
        tokio::select! {
            r = &mut run => r,
            _ = tokio::signal::ctrl_c() => { switch.trigger(); run.await }
        }
    });
    match result {
        Ok(report) if report.unanswered == 0 && report.rejected == report.malformed_sent => {
            println!("Every valid message was stored and every malformed one rejected.");
            exit::OK
        }
        Ok(report) if report.stored + report.duplicate + report.rejected == 0 => {
            println!(
                "None of the {} message(s) got an answer from the gateway: is dockhand running on this broker? (dockhand status)",
                report.sent
            );
            exit::FAILURE
        }
        Ok(report) => {
            println!(
                "{} message(s) got no answer from the gateway (it answered {} others): look for warnings in its log (journalctl -u dockhand) and at `dockhand status`.",
                report.unanswered,
                report.stored + report.duplicate + report.rejected
            );
            exit::FAILURE
        }
        Err(e) => {
            eprintln!("error: {e}");
            exit::FAILURE
        }
    }
}

#[cfg(test)]
mod tests {
    use clap::CommandFactory;

    /// The packaged man page (packaging/dockhand.1) lists every command `--help` lists.
    #[test]
    fn the_man_page_lists_every_command() {
        let page = include_str!("../../../packaging/dockhand.1");
        let listed: Vec<&str> = page
            .lines()
            .filter_map(|l| l.strip_prefix(".B ").or_else(|| l.strip_prefix(".BR ")).or_else(|| l.strip_prefix(".BI ")))
            .filter_map(|l| l.split_whitespace().next())
            .map(|w| w.trim_matches('"'))
            .collect();
        for command in super::Cli::command().get_subcommands() {
            let name = command.get_name();
            assert!(listed.contains(&name), "packaging/dockhand.1 does not describe `dockhand {name}`");
        }
    }
}
