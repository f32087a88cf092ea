//! Durable before acknowledged: a real process appends through the public store API and is
//! SIGKILLed at random moments; every append it reported "stored" must be in the store exactly
//! once afterwards, and ids re-sent after a crash must be answered "duplicate".

#![allow(clippy::unwrap_used)] // test code: a panic is the failure report

use std::collections::HashSet;
use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::time::Duration;

const KILLS: usize = 24;

#[test]
fn every_acknowledged_append_survives_kill_9_exactly_once() {
    let dir = tempfile::tempdir().unwrap();
    let store = dir.path().join("crash.db");
    let resend_file = dir.path().join("resend.txt");
    let mut acked: Vec<uuid::Uuid> = Vec::new();
    let mut duplicates_answered = 0;
    for round in 0..KILLS {
        // Re-send a few ids acknowledged in earlier rounds, as a broker redelivers after a crash.
        let resend: Vec<String> = acked.iter().rev().take(5).map(|id| id.to_string()).collect();
        std::fs::write(&resend_file, resend.join("\n")).unwrap();
        let mut child = Command::new(env!("CARGO_BIN_EXE_store-writer"))
            .arg(&store)
            .arg("48")
            .arg(&resend_file)
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let stdout = child.stdout.take().unwrap();
        let reader = std::thread::spawn(move || {
            let mut lines = Vec::new();
            let mut r = BufReader::new(stdout);
            let mut buf = String::new();
            // read_line keeps a final line without its newline: that one was cut by the kill.
            while r.read_line(&mut buf).unwrap_or(0) > 0 {
                if buf.ends_with('\n') {
                    lines.push(buf.trim_end().to_string());
                }
                buf.clear();
            }
            lines
        });
        // Let it get going, then kill it at a random moment of heavy appending.
        std::thread::sleep(Duration::from_millis(150 + fastrand::u64(0..350)));
        child.kill().unwrap(); // SIGKILL
        child.wait().unwrap();
        let lines = reader.join().unwrap();
        assert_eq!(lines.first().map(String::as_str), Some("ready"), "round {round}: {lines:?}");
        let mut stored_this_round = 0;
        for line in &lines[1..] {
            let mut parts = line.split(' ');
            match (parts.next(), parts.next().and_then(|s| s.parse::<uuid::Uuid>().ok())) {
                (Some("stored"), Some(id)) => {
                    assert!(!resend.contains(&id.to_string()), "round {round}: re-sent id {id} was stored again");
                    acked.push(id);
                    stored_this_round += 1;
                }
                (Some("duplicate"), Some(id)) => {
                    assert!(resend.contains(&id.to_string()), "round {round}: fresh id {id} answered duplicate");
                    duplicates_answered += 1;
                }
                _ => panic!("round {round}: unexpected line {line:?}"),
            }
        }
        assert!(stored_this_round > 0, "round {round}: nothing was acknowledged before the kill");
    }
    assert!(
        duplicates_answered >= (KILLS - 1) * 5 - 5,
        "re-sent ids were answered duplicate {duplicates_answered} times"
    );

    // Reopen the file the way the daemon would and check every acknowledged event.
    let conn = rusqlite::Connection::open(&store).unwrap();
    let integrity: String = conn.query_row("PRAGMA integrity_check", [], |r| r.get(0)).unwrap();
    assert_eq!(integrity, "ok");
    let unique: HashSet<_> = acked.iter().collect();
    assert_eq!(unique.len(), acked.len(), "an id was acknowledged as stored twice");
    let mut stmt = conn.prepare("SELECT count(*) FROM events WHERE id = ?1").unwrap();
    for id in &acked {
        let n: i64 = stmt.query_row([&id.as_bytes()[..]], |r| r.get(0)).unwrap();
        assert_eq!(n, 1, "acknowledged event {id} is stored {n} times");
    }
    // seq has no gaps and no repeats.
    let (count, min, max): (i64, i64, i64) = conn
        .query_row("SELECT count(*), min(seq), max(seq) FROM events", [], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))
        .unwrap();
    assert_eq!((min, max), (1, count), "seq must run 1..=count without gaps");
    assert!(count as usize >= acked.len());
    eprintln!("{KILLS} kills, {} acknowledged appends all present once, {count} stored in all", acked.len());
}
