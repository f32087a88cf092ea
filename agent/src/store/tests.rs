//! Store behaviour on real SQLite files in a temporary folder.

use super::*;
use crate::event::sample_event;

fn rt() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap()
}

fn open(dir: &tempfile::TempDir, f: impl FnOnce(&mut StoreOptions)) -> (Store, OpenReport) {
    let mut o = StoreOptions::new(dir.path().join("q.db"));
    f(&mut o);
    Store::open(o).unwrap()
}

/// A sink reporting that it delivered every event from `from + 1` to `to`.
fn delivered(sink: &str, from: u64, to: u64) -> SinkProgress {
    SinkProgress {
        sink: sink.into(),
        expected_cursor: from,
        new_cursor: to,
        delivered: to - from,
        ..Default::default()
    }
}

fn events(n: usize) -> Vec<Event> {
    (0..n).map(|i| sample_event(&format!("dev-{}", i % 3), 200)).collect()
}

#[test]
fn appends_get_consecutive_seqs_and_duplicates_keep_the_first() {
    let dir = tempfile::tempdir().unwrap();
    let (store, _) = open(&dir, |_| {});
    rt().block_on(async {
        let batch = events(3);
        let first = store.append(batch.clone()).await.unwrap();
        assert_eq!(first, vec![Appended::Stored { seq: 1 }, Appended::Stored { seq: 2 }, Appended::Stored { seq: 3 }]);
        // The same id again, even with other content: a duplicate, nothing replaced.
        let mut again = batch[1].clone();
        again.partition = "changed".into();
        assert_eq!(store.append_one(again).await.unwrap(), Appended::Duplicate { seq: 2 });
        // Two copies in one request: the second is a duplicate of the first.
        let e = events(1).remove(0);
        let r = store.append(vec![e.clone(), e]).await.unwrap();
        assert_eq!(r, vec![Appended::Stored { seq: 4 }, Appended::Duplicate { seq: 4 }]);
    });
    let reader = store.reader().unwrap();
    let stored = reader.batch_after(0, 100, usize::MAX, None).unwrap().0;
    assert_eq!(stored.len(), 4);
    assert!(stored[1].body.contains("\"partition\":\"dev-1\""), "the original is kept");
    assert_eq!(reader.last_seq().unwrap(), 4);
    store.close();
}

#[test]
fn seq_never_goes_back_after_everything_is_pruned() {
    let dir = tempfile::tempdir().unwrap();
    let (store, _) = open(&dir, |o| o.retention_ms = 0);
    rt().block_on(async {
        store.register_sinks(vec!["a".into()]).await.unwrap();
        store.append(events(5)).await.unwrap();
        let progress = delivered("a", 0, 5);
        store.record_progress(progress).await.unwrap();
    });
    // Housekeeping runs after a second of idleness.
    std::thread::sleep(std::time::Duration::from_millis(2500));
    let reader = store.reader().unwrap();
    assert_eq!(reader.summary().unwrap().events, 0, "delivered events past retention are pruned");
    store.close();
    let (store, report) = open(&dir, |_| {});
    assert_eq!(report.last_seq, 5);
    let r = rt().block_on(store.append(events(1))).unwrap();
    assert_eq!(r, vec![Appended::Stored { seq: 6 }]);
    store.close();
}

#[test]
fn pending_events_are_never_pruned() {
    let dir = tempfile::tempdir().unwrap();
    let (store, _) = open(&dir, |o| o.retention_ms = 0);
    rt().block_on(async {
        store.register_sinks(vec!["a".into(), "b".into()]).await.unwrap();
        store.append(events(10)).await.unwrap();
        let progress = delivered("a", 0, 10);
        store.record_progress(progress).await.unwrap();
        let progress = delivered("b", 0, 4);
        store.record_progress(progress).await.unwrap();
    });
    std::thread::sleep(std::time::Duration::from_millis(2500));
    let reader = store.reader().unwrap();
    let left = reader.batch_after(0, 100, usize::MAX, None).unwrap().0;
    assert_eq!(left.first().map(|b| b.seq), Some(5), "only what both sinks settled is pruned");
    assert_eq!(left.len(), 6);
    store.close();
}

#[test]
fn full_store_refuses_appends_keeps_events_and_recovers_after_pruning() {
    let dir = tempfile::tempdir().unwrap();
    let (store, _) = open(&dir, |o| {
        o.max_bytes = 1 << 20;
        o.retention_ms = 0;
    });
    let rt = rt();
    let stored = rt.block_on(async {
        store.register_sinks(vec!["a".into()]).await.unwrap();
        let mut stored = 0u64;
        loop {
            match store.append(events(50)).await {
                Ok(r) => stored += r.len() as u64,
                Err(StoreError::Full { used, max }) => {
                    assert!(used <= max, "used {used} > max {max}");
                    break stored;
                }
                Err(e) => panic!("unexpected {e}"),
            }
        }
    });
    // Top up with single events until even one no longer fits.
    let stored = stored
        + rt.block_on(async {
            let mut n = 0;
            while store.append(events(1)).await.is_ok() {
                n += 1;
            }
            n
        });
    assert!(stored > 500, "a 1 MiB store holds more than {stored} events");
    // Everything stored is still there and deliverable.
    let reader = store.reader().unwrap();
    let all = reader.batch_after(0, 100_000, usize::MAX, None).unwrap().0;
    assert_eq!(all.len() as u64, stored);
    assert!(matches!(rt.block_on(store.append(events(1))), Err(StoreError::Full { .. })));
    // Closing checkpoints the WAL into the file, so its size is the store's size.
    store.close();
    let full_size = std::fs::metadata(dir.path().join("q.db")).unwrap().len();
    let (store, _) = open(&dir, |o| {
        o.max_bytes = 1 << 20;
        o.retention_ms = 0;
    });
    // Deliver everything; pruning frees the space and appends succeed again.
    rt.block_on(store.record_progress(delivered("a", 0, stored))).unwrap();
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
    loop {
        if rt.block_on(store.append(events(1))).is_ok() {
            break;
        }
        assert!(std::time::Instant::now() < deadline, "appends never succeeded again after pruning");
        std::thread::sleep(std::time::Duration::from_millis(200));
    }
    // Incremental vacuum (in the writer's housekeeping) gives the freed pages back to the file system.
    std::thread::sleep(std::time::Duration::from_millis(2500));
    store.close();
    let size = std::fs::metadata(dir.path().join("q.db")).unwrap().len();
    assert!(size < full_size / 2, "the file is {size} bytes, it was {full_size} when full");
}

#[test]
fn new_sinks_start_where_existing_ones_stand_and_removed_ones_retire() {
    let dir = tempfile::tempdir().unwrap();
    let (store, _) = open(&dir, |_| {});
    let rt = rt();
    rt.block_on(async {
        // Events stored before any sink exists go to the first sink.
        store.append(events(3)).await.unwrap();
        store.register_sinks(vec!["a".into()]).await.unwrap();
        store.append(events(3)).await.unwrap();
        store.record_progress(delivered("a", 0, 4)).await.unwrap();
        store.register_sinks(vec!["a".into(), "b".into()]).await.unwrap();
        store.register_sinks(vec!["b".into()]).await.unwrap();
    });
    let reader = store.reader().unwrap();
    assert_eq!(reader.sink_state("a").unwrap().unwrap().cursor, 4);
    assert!(reader.sink_state("a").unwrap().unwrap().retired_at.is_some());
    let b = reader.sink_state("b").unwrap().unwrap();
    assert_eq!(b.cursor, 4, "b gets what a had not delivered yet");
    assert!(b.retired_at.is_none());
    store.close();
}

#[test]
fn progress_with_a_moved_cursor_keeps_the_operators_position() {
    let dir = tempfile::tempdir().unwrap();
    let (store, _) = open(&dir, |_| {});
    let rt = rt();
    rt.block_on(async {
        store.register_sinks(vec!["a".into()]).await.unwrap();
        store.append(events(10)).await.unwrap();
        store.record_progress(delivered("a", 0, 10)).await.unwrap();
    });
    let mut admin = Admin::open(&dir.path().join("q.db")).unwrap();
    let report = admin.replay("a", Timestamp::from_millis(0)).unwrap();
    assert_eq!(report.from_seq, 1);
    assert_eq!(report.events, 10);
    // A batch read before the replay reports its progress afterwards: the replay wins.
    rt.block_on(store.record_progress(delivered("a", 10, 12))).unwrap();
    assert_eq!(store.reader().unwrap().sink_state("a").unwrap().unwrap().cursor, 0);
    store.close();
}

#[test]
fn dead_letters_are_recorded_listed_retried_and_purged() {
    let dir = tempfile::tempdir().unwrap();
    let (store, _) = open(&dir, |_| {});
    let rt = rt();
    let ev = events(1).remove(0);
    rt.block_on(async {
        store.register_sinks(vec!["a".into()]).await.unwrap();
        store.append(vec![ev.clone()]).await.unwrap();
        store
            .dead_letter(NewDeadLetter {
                sink: None,
                event_id: None,
                event_seq: None,
                origin: "mqtt:warehouse/WH1/handheld/hh-1/count".into(),
                reason: "invalid JSON".into(),
                body: vec![0xff, 0x00, b'{'],
            })
            .await
            .unwrap();
        store
            .record_progress(SinkProgress {
                sink: "a".into(),
                expected_cursor: 0,
                new_cursor: 1,
                delivered: 0,
                dead_letters: vec![NewDeadLetter {
                    sink: Some("a".into()),
                    event_id: Some(ev.id),
                    event_seq: Some(1),
                    origin: "sink:a".into(),
                    reason: "unknown product".into(),
                    body: ev.to_envelope_json(1).into_bytes(),
                }],
                ..Default::default()
            })
            .await
            .unwrap();
    });
    let path = dir.path().join("q.db");
    let mut admin = Admin::open(&path).unwrap();
    let rows = admin.dead_letters(false, 10).unwrap();
    assert_eq!(rows.len(), 2);
    assert_eq!(rows[1].body, vec![0xff, 0x00, b'{'], "raw bytes are kept exactly");
    let report = admin.retry_dead_letters(None).unwrap();
    assert_eq!(report.queued, 1);
    assert_eq!(report.not_retryable, vec![rows[1].id]);
    let again = store.reader().unwrap().redeliveries("a", 10).unwrap();
    assert_eq!(again.len(), 1);
    assert_eq!(again[0].id, ev.id);
    assert_eq!(admin.dead_letters(false, 10).unwrap().len(), 1, "the retried one is no longer open");
    assert_eq!(admin.purge_dead_letters(Timestamp::now().saturating_add_millis(1000)).unwrap(), 2);
    store.close();
}

#[test]
fn garbage_in_the_middle_of_the_file_is_moved_aside_with_an_alarm() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("q.db");
    let (store, _) = open(&dir, |_| {});
    rt().block_on(store.append(events(2000))).unwrap();
    store.close();
    corrupt_middle(&path);
    let (store, report) = open(&dir, |_| {});
    let (aside, reason) = report.moved_aside.expect("damage detected");
    assert!(aside.exists(), "the damaged file is kept");
    assert!(aside.file_name().unwrap().to_string_lossy().starts_with("q.db.corrupt-"));
    assert!(!reason.is_empty());
    let summary = store.reader().unwrap().summary().unwrap();
    assert_eq!(summary.alarms.len(), 1);
    assert_eq!(summary.alarms[0].kind, "store_damaged");
    assert_eq!(summary.last_seq, 0, "a fresh store");
    store.close();
}

#[test]
fn large_files_are_checked_in_the_background_and_damage_is_reported() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("q.db");
    let (store, _) = open(&dir, |_| {});
    rt().block_on(store.append(events(2000))).unwrap();
    store.close();
    corrupt_middle(&path);
    // Pretend the file is too big to verify before opening.
    let (store, report) = open(&dir, |o| o.verify_at_open_max_bytes = 0);
    assert!(report.moved_aside.is_none());
    let mut damage = store.damage();
    rt().block_on(async {
        tokio::time::timeout(std::time::Duration::from_secs(10), damage.wait_for(|d| d.is_some()))
            .await
            .unwrap()
            .unwrap();
    });
    store.close();
    assert!(recovery::marker_path(&path).exists(), "the next start will move it aside");
    let (store, report) = open(&dir, |o| o.verify_at_open_max_bytes = 0);
    assert!(report.moved_aside.is_some());
    assert!(!recovery::marker_path(&path).exists());
    store.close();
}

#[test]
fn a_file_that_is_not_sqlite_is_moved_aside() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("q.db"), b"this is not a database, it is a shopping list").unwrap();
    let (store, report) = open(&dir, |_| {});
    assert!(report.moved_aside.unwrap().1.contains("header"));
    store.close();
}

/// Overwrites 8 KiB in the middle of the file with a pattern that is not a valid b-tree page.
pub(crate) fn corrupt_middle(path: &std::path::Path) {
    use std::io::{Seek, SeekFrom, Write};
    let len = std::fs::metadata(path).unwrap().len();
    let mut f = std::fs::OpenOptions::new().write(true).open(path).unwrap();
    f.seek(SeekFrom::Start(len / 2 / 4096 * 4096)).unwrap();
    f.write_all(&[0xA5; 8192]).unwrap();
    f.sync_all().unwrap();
}

#[test]
fn a_print_job_caught_sending_by_a_crash_is_never_resent_on_its_own() {
    use print_jobs::{NewPrintJob, PrintJobAnswer, PrintJobChange};
    let dir = tempfile::tempdir().unwrap();
    let job = |id: &str| NewPrintJob {
        id: id.into(),
        printer: "zebra".into(),
        body: b"^XA^FDx^FS^XZ".to_vec(),
        origin: "mqtt".into(),
        reprint_of: None,
    };
    {
        let (store, _) = open(&dir, |_| {});
        rt().block_on(async {
            assert_eq!(store.print_job(PrintJobChange::Enqueue(job("a"))).await.unwrap(), PrintJobAnswer::Stored(true));
            assert_eq!(
                store.print_job(PrintJobChange::Enqueue(job("a"))).await.unwrap(),
                PrintJobAnswer::Stored(false)
            );
            store.print_job(PrintJobChange::Enqueue(job("b"))).await.unwrap();
            store.print_job(PrintJobChange::Sending { id: "a".into() }).await.unwrap();
        });
        // The process dies here: `a` was being written when it did.
    }
    let (store, _) = open(&dir, |_| {});
    let reader = store.reader().unwrap();
    rt().block_on(async {
        let recovered = store.print_job(PrintJobChange::RecoverInterrupted { printer: "zebra".into() }).await.unwrap();
        assert_eq!(recovered, PrintJobAnswer::Recovered(vec!["a".into()]));
    });
    // `b` is next; `a` waits for an operator, with an alarm that says what to do.
    assert_eq!(reader.next_print_job("zebra").unwrap().map(|(id, _)| id), Some("b".into()));
    let summary = reader.summary().unwrap();
    assert!(summary.alarms.iter().any(|a| a.kind == "print_uncertain" && a.message.contains("print reprint a")));
    let reprint = Admin::open(&dir.path().join("q.db")).unwrap().reprint("a").unwrap();
    assert_eq!(reprint, "a-reprint-1");
    assert_eq!(reader.print_job("a-reprint-1").unwrap().unwrap().0.reprint_of.as_deref(), Some("a"));
}

/// A gateway that has run for years has seq numbers past 2^32 and a store limit past 4 GiB; on a
/// 32-bit board (armv7, where this runs under qemu in CI) neither may wrap.
#[test]
fn seqs_past_four_billion_and_limits_past_four_gib_do_not_wrap() {
    const SEQ: u64 = (1 << 32) + 10;
    const LIMIT: u64 = 6 << 30;
    let dir = tempfile::tempdir().unwrap();
    let (store, _) = open(&dir, |_| {});
    store.close();
    {
        let conn = rusqlite::Connection::open(dir.path().join("q.db")).unwrap();
        conn.execute("INSERT OR REPLACE INTO meta (key, value) VALUES ('last_seq', ?1)", [SEQ.to_string()]).unwrap();
    }
    let (store, report) = open(&dir, |o| o.max_bytes = LIMIT);
    assert_eq!(report.last_seq, SEQ);
    rt().block_on(async {
        store.register_sinks(vec!["a".into()]).await.unwrap();
        let r = store.append(events(3)).await.unwrap();
        assert_eq!(r[2], Appended::Stored { seq: SEQ + 3 }, "appends under a 6 GiB limit are taken");
        // A sink new to this store starts at its beginning; it has settled all but the last two.
        store.record_progress(delivered("a", 0, SEQ + 1)).await.unwrap();
    });
    let reader = store.reader().unwrap();
    let summary = reader.summary().unwrap();
    assert_eq!(summary.last_seq, SEQ + 3);
    let sink = summary.sinks.iter().find(|s| s.state.name == "a").unwrap();
    assert_eq!(sink.pending, 2, "the depth is last_seq - cursor above 2^32");
    let (batch, _) = reader.batch_after(SEQ + 1, 100, usize::MAX, None).unwrap();
    assert_eq!(batch.iter().map(|b| b.seq).collect::<Vec<_>>(), vec![SEQ + 2, SEQ + 3]);
    store.close();
}

/// A week of delivered events is the normal state of a gateway (the default retention): pruning
/// must look at the oldest events only, not read all of them on every housekeeping step while it
/// holds up appends.
#[test]
fn pruning_reads_only_the_oldest_events() {
    let dir = tempfile::tempdir().unwrap();
    let conn = open_connection(&dir.path().join("q.db")).unwrap();
    schema::prepare(&conn).unwrap();
    // 50 000 events: the first 10 received at t=1 000, the rest at t=5 000.
    conn.execute_batch("BEGIN").unwrap();
    for seq in 1..=50_000_i64 {
        let received_at = if seq <= 10 { 1_000 } else { 5_000 };
        conn.execute(
            "INSERT INTO events (seq, id, kind, partition, received_at, body) VALUES (?1, ?2, 'scan', 'p', ?3, '{}')",
            rusqlite::params![seq, seq.to_be_bytes().to_vec(), received_at],
        )
        .unwrap();
    }
    conn.execute_batch("COMMIT").unwrap();
    // SQLite counts the virtual machine steps of each statement: work done, deterministically.
    let prune = |settled, cutoff| {
        let pruned = writer::prune_events(&conn, settled, cutoff, 1_000).unwrap();
        let steps = conn.prepare_cached(writer::PRUNE_EVENTS).unwrap().reset_status(rusqlite::StatementStatus::VmStep);
        (pruned, steps)
    };
    let count = || conn.query_row("SELECT count(*) FROM events", [], |r| r.get::<_, i64>(0)).unwrap();
    // Everything delivered, only the first 10 past retention: those go.
    let (pruned, first) = prune(50_000, 2_000);
    assert_eq!(pruned, 10);
    assert_eq!(count(), 49_990);
    // Again: nothing is old enough. A step costs about what reading the 1 000 oldest rows does;
    // the search it replaced (for old events among all those settled) read all 50 000.
    let (pruned, again) = prune(50_000, 2_000);
    assert_eq!(pruned, 0);
    let mut search = conn
        .prepare(
            "DELETE FROM events WHERE seq IN (
                SELECT seq FROM events WHERE seq <= ?1 AND received_at < ?2 ORDER BY seq LIMIT ?3)",
        )
        .unwrap();
    assert_eq!(search.execute(rusqlite::params![50_000, 2_000, 1_000]).unwrap(), 0);
    let whole = search.get_status(rusqlite::StatementStatus::VmStep);
    assert!(first * 10 < whole && again * 10 < whole, "prune steps cost {first} and {again}, the search {whole}");
    drop(search);

    // Only what every sink settled, and at most `limit` per step.
    assert_eq!(prune(15, 9_000).0, 5, "seq 11-15 settled and past retention");
    assert_eq!(prune(50_000, 9_000).0, 1_000);
    assert_eq!(count(), 49_990 - 5 - 1_000);
}
