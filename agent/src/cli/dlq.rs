//! `dockhand dlq`: list, inspect, retry and purge dead letters.

use clap::Subcommand;

use crate::exit;
use crate::store::{Admin, StoreError};
use crate::timestamp::Timestamp;
use crate::units::{HumanDuration, describe_age};

#[derive(Debug, Subcommand)]
pub(crate) enum DlqCommand {
    /// Dead letters not yet retried, newest first.
    List {
        /// Include the ones already retried.
        #[arg(long)]
        all: bool,
        #[arg(long, default_value_t = 50)]
        limit: usize,
        #[arg(long)]
        json: bool,
    },
    /// One dead letter with its reason and the full event (or the raw input): its number as
    /// `dlq list` prints it (`12` or `#12`), or the id of the event (every sink's dead letter of it).
    Show { id: String },
    /// Queue dead letters for delivery to their sink again.
    Retry {
        ids: Vec<i64>,
        #[arg(long, conflicts_with = "ids")]
        all: bool,
    },
    /// Delete dead letters older than a duration (e.g. 30d).
    Purge {
        #[arg(long)]
        older_than: String,
    },
}

pub(crate) fn run(store: &std::path::Path, command: DlqCommand) -> Result<i32, StoreError> {
    let admin = Admin::open(store)?;
    let now = Timestamp::now();
    match command {
        DlqCommand::List { all, limit, json } => {
            let rows = admin.dead_letters(all, limit)?;
            if json {
                println!("{}", serde_json::to_string_pretty(&rows).unwrap_or_default());
                return Ok(exit::OK);
            }
            if rows.is_empty() {
                println!("No dead letters.");
            }
            for r in rows {
                let retried = r
                    .retried_at
                    .map_or(String::new(), |t| format!(" [retried {} ago]", describe_age(t.millis_until(now))));
                println!(
                    "#{:<6} {:>8} ago  {:<20} {}{retried}\n         {}",
                    r.id,
                    describe_age(r.created_at.millis_until(now)),
                    r.sink.as_deref().map_or("(ingest)".to_string(), |s| format!("sink {s}")),
                    r.event_id.map_or(r.origin.clone(), |id| format!("event {id}")),
                    r.reason
                );
            }
        }
        DlqCommand::Show { id } => {
            let rows = if let Ok(n) = id.trim_start_matches('#').parse::<i64>() {
                admin.dead_letter(n)?.into_iter().collect()
            } else if let Ok(event) = id.parse::<uuid::Uuid>() {
                admin.dead_letters_of_event(event)?
            } else {
                eprintln!(
                    "error: `{id}` is neither a dead-letter number (as `dockhand dlq list` prints it, e.g. 12) nor an event id (a UUID)"
                );
                return Ok(exit::USAGE);
            };
            if rows.is_empty() {
                eprintln!("error: no dead letter {id} (dockhand dlq list --all shows them all)");
                return Ok(exit::FAILURE);
            }
            for (i, r) in rows.into_iter().enumerate() {
                if i > 0 {
                    println!();
                }
                show(&r);
            }
        }
        DlqCommand::Retry { ids, all } => {
            return crate::actions::retry_dead_letters(
                store,
                if all { None } else { Some(&ids) },
                &mut crate::actions::to_terminal,
            );
        }
        DlqCommand::Purge { older_than } => {
            let age = match HumanDuration::parse(&older_than) {
                Ok(d) => d,
                Err(e) => {
                    eprintln!("error: {e}");
                    return Ok(exit::USAGE);
                }
            };
            let n = admin.purge_dead_letters(now.saturating_sub_millis(age.as_millis()))?;
            println!("{n} dead letter(s) older than {age} deleted.");
        }
    }
    Ok(exit::OK)
}

/// Prints one dead letter in full.
fn show(r: &crate::store::DeadLetterRow) {
    println!("dead letter #{}", r.id);
    println!("recorded  {}", r.created_at);
    println!("sink      {}", r.sink.as_deref().unwrap_or("(refused at ingest)"));
    println!("origin    {}", r.origin);
    if let Some(id) = r.event_id {
        println!("event     {id} (seq {})", r.event_seq.map_or("?".into(), |s| s.to_string()));
    }
    println!("reason    {}", r.reason);
    if let Some(t) = r.retried_at {
        println!("retried   {t}");
    }
    match std::str::from_utf8(&r.body) {
        Ok(text) => println!("body ({} bytes):\n{text}", r.body_bytes),
        Err(_) => println!("body ({} bytes, not UTF-8, hex):\n{}", r.body_bytes, r.body_hex()),
    }
}
