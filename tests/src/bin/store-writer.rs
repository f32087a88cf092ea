//! A process that appends to a store through the public `Store` API as fast as it can and prints
//! one line per answer, for the crash tests to kill at random moments:
//!
//! - `ready` once the store is open;
//! - `stored <id> <seq>` after an append was answered "stored" (i.e. it is durable);
//! - `duplicate <id> <seq>` after a re-sent id was answered "duplicate".
//!
//! Usage: `store-writer STORE_PATH APPENDERS [RESEND_FILE]`. Ids listed in RESEND_FILE (one per
//! line) are appended again first, as a broker would redeliver them after a crash.

use std::io::Write;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use dockhand::event::sample_event;
use dockhand::store::{Appended, Store, StoreOptions};

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    let args: Vec<String> = std::env::args().collect();
    let path = args.get(1).expect("usage: store-writer STORE_PATH APPENDERS [RESEND_FILE]");
    let appenders: usize = args.get(2).and_then(|s| s.parse().ok()).unwrap_or(32);
    let resend: Vec<uuid::Uuid> = args
        .get(3)
        .and_then(|f| std::fs::read_to_string(f).ok())
        .map(|t| t.lines().filter_map(|l| l.parse().ok()).collect())
        .unwrap_or_default();
    let (store, _) = Store::open(StoreOptions::new(path)).expect("open the store");
    say(&"ready".to_string());
    for id in resend {
        let mut e = sample_event("resend", 200);
        e.id = id;
        match store.append_one(e).await.expect("append") {
            Appended::Duplicate { seq } => say(&format!("duplicate {id} {seq}")),
            Appended::Stored { seq } => say(&format!("stored {id} {seq}")),
        }
    }
    let counter = Arc::new(AtomicU64::new(0));
    let mut tasks = tokio::task::JoinSet::new();
    for a in 0..appenders {
        let store = store.clone();
        let counter = counter.clone();
        tasks.spawn(async move {
            loop {
                let n = counter.fetch_add(1, Ordering::Relaxed);
                let e = sample_event(&format!("dev-{}", (a as u64 + n) % 5), 200);
                let id = e.id;
                match store.append_one(e).await {
                    Ok(Appended::Stored { seq }) => say(&format!("stored {id} {seq}")),
                    Ok(Appended::Duplicate { seq }) => say(&format!("duplicate {id} {seq}")),
                    Err(e) => {
                        say(&format!("error {e}"));
                        return;
                    }
                }
            }
        });
    }
    while tasks.join_next().await.is_some() {}
}

/// One whole line per answer; a line cut short by the kill has no newline and is ignored.
fn say(line: &String) {
    let mut out = std::io::stdout().lock();
    let _ = out.write_all(format!("{line}\n").as_bytes());
    let _ = out.flush();
}
