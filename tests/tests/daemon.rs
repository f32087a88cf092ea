//! The daemon as a real process: per-sink independence, crash-safe delivery to file sinks,
//! a damaged store moved aside, config errors, and `status` while the daemon is down.

#![allow(clippy::unwrap_used)] // test code: a panic is the failure report

use std::time::Duration;

use dockhand_tests::{Site, check_delivery, fill_store, read_ndjson, wait_until};

const EXE: &str = env!("CARGO_BIN_EXE_dockhand-e2e");

fn sink_state(site: &Site, name: &str) -> dockhand::store::SinkState {
    dockhand::store::StoreReader::open(&site.store_path()).unwrap().sink_state(name).unwrap().unwrap()
}

#[test]
fn a_failing_sink_never_holds_back_another_and_catches_up_when_fixed() {
    let site = Site::new(EXE);
    site.write_config(
        r#"
[[sink]]
name = "good"
type = "file"
path = "good.ndjson"
batch = { max_events = 200, linger = "0ms" }

[[sink]]
name = "bad"
type = "file"
path = "missing-folder/bad.ndjson"
retry = { initial = "100ms", max = "2s" }
"#,
    );
    let mut ids = fill_store(&site.store_path(), 2000);
    let daemon = site.start();
    wait_until(Duration::from_secs(20), "the good sink to deliver everything", || {
        read_ndjson(&site.path("good.ndjson")).len() >= 2000
    });

    // Events keep flowing to the good sink while the bad one fails.
    ids.extend(fill_store(&site.store_path(), 500));
    wait_until(Duration::from_secs(20), "the good sink to deliver the second wave", || {
        read_ndjson(&site.path("good.ndjson")).len() >= 2500
    });
    let first = sink_state(&site, "bad");
    std::thread::sleep(Duration::from_secs(5));
    let later = sink_state(&site, "bad");
    assert!(later.last_error.as_deref().unwrap_or("").contains("missing-folder"), "{later:?}");
    let tries = later.attempts - first.attempts;
    // A fixed 100 ms delay would have made ~50 attempts in 5 s; growing delays (capped at 2 s,
    // with full jitter) make far fewer.
    assert!((2..=25).contains(&tries), "{tries} attempts in 5 s");
    let status = String::from_utf8(site.cli(&["status"]).stdout).unwrap();
    assert!(status.contains("sink bad is failing"), "{status}");
    assert!(status.contains("RETRYING"), "{status}");

    // Fix the path: the bad sink catches up on its own.
    std::fs::create_dir(site.path("missing-folder")).unwrap();
    wait_until(Duration::from_secs(20), "the fixed sink to catch up", || {
        read_ndjson(&site.path("missing-folder/bad.ndjson")).len() >= 2500
    });
    assert_eq!(daemon.stop().code(), Some(0));

    for file in ["good.ndjson", "missing-folder/bad.ndjson"] {
        let received = read_ndjson(&site.path(file));
        let repeats = check_delivery(&ids, &received);
        assert_eq!(repeats, 0, "{file}: no crash, so no repeats");
    }
    let status = String::from_utf8(site.cli(&["status"]).stdout).unwrap();
    assert!(status.contains("stopped cleanly"), "{status}");
    assert_eq!(sink_state(&site, "bad").attempts, 0);
}

#[test]
fn kill_9_during_a_drain_loses_nothing_and_keeps_order() {
    let site = Site::new(EXE);
    site.write_config(
        r#"
[[sink]]
name = "archive"
type = "file"
path = "archive.ndjson"
batch = { max_events = 50, linger = "0ms" }
"#,
    );
    let ids = fill_store(&site.store_path(), 20_000);
    let mut kills = 0;
    while kills < 3 {
        let daemon = site.start();
        // The cursor is a cheap read; parsing the growing archive on every poll was slow enough
        // that the whole drain could finish between two polls and leave nothing to kill.
        let before = sink_state(&site, "archive").cursor;
        assert!(before < 19_000, "the drain finished before kill {}: nothing left to interrupt", kills + 1);
        wait_until(Duration::from_secs(30), "some progress", || sink_state(&site, "archive").cursor > before + 500);
        daemon.kill9();
        kills += 1;
    }
    let daemon = site.start();
    wait_until(Duration::from_secs(60), "the drain to finish", || sink_state(&site, "archive").cursor >= 20_000);
    assert_eq!(daemon.stop().code(), Some(0));
    let received = read_ndjson(&site.path("archive.ndjson"));
    let repeats = check_delivery(&ids, &received);
    // At-least-once: only the batch in flight at each kill and the two before it, whose progress
    // commits may still have been running (contracts §3), can repeat.
    assert!(repeats <= kills * 3 * 50, "{repeats} repeats after {kills} kills");
    let json: serde_json::Value = serde_json::from_slice(&site.cli(&["status", "--json"]).stdout).unwrap();
    assert_eq!(json["sinks"][0]["pending"], 0, "{json}");
}

#[test]
fn a_damaged_store_is_moved_aside_and_status_shows_the_alarm() {
    let site = Site::new(EXE);
    site.write_config("[[sink]]\nname = \"archive\"\ntype = \"file\"\npath = \"archive.ndjson\"\n");
    fill_store(&site.store_path(), 3000);
    // Garbage in the middle of the file.
    {
        use std::io::{Seek, SeekFrom, Write};
        let len = std::fs::metadata(site.store_path()).unwrap().len();
        let mut f = std::fs::OpenOptions::new().write(true).open(site.store_path()).unwrap();
        f.seek(SeekFrom::Start(len / 2 / 4096 * 4096)).unwrap();
        f.write_all(&[0x5A; 16384]).unwrap();
    }
    // `status` reads only the pages it needs, so it may not notice; it must not crash either way.
    let status = site.cli(&["status"]);
    assert!(matches!(status.status.code(), Some(0 | 74)), "status on a damaged store: {status:?}");

    let daemon = site.start();
    assert!(daemon.log().contains("moved aside"), "{}", daemon.log());
    let aside: Vec<_> = std::fs::read_dir(site.dir.path())
        .unwrap()
        .filter_map(|e| e.ok())
        .map(|e| e.file_name().to_string_lossy().to_string())
        .filter(|n| n.starts_with("store.db.corrupt-") && !n.ends_with("-wal") && !n.ends_with("-shm"))
        .collect();
    assert_eq!(aside.len(), 1, "the damaged file is kept: {aside:?}");
    let out = site.cli(&["status"]);
    assert_eq!(out.status.code(), Some(0));
    let text = String::from_utf8(out.stdout).unwrap();
    assert!(text.contains("ATTENTION") && text.contains("store_damaged") && text.contains(&aside[0]), "{text}");
    // The fresh store works.
    fill_store(&site.store_path(), 10);
    wait_until(Duration::from_secs(10), "delivery from the fresh store", || {
        read_ndjson(&site.path("archive.ndjson")).len() >= 10
    });
    assert_eq!(daemon.stop().code(), Some(0));
    // Once seen, the alarm can be cleared.
    site.cli(&["status", "--clear-alarms"]);
    let text = String::from_utf8(site.cli(&["status"]).stdout).unwrap();
    assert!(!text.contains("store_damaged"), "{text}");
}

#[test]
fn config_errors_name_line_column_and_key_and_exit_78() {
    let site = Site::new(EXE);
    let cases = [
        (
            "[store]\nmax_byte = \"1GiB\"\n",
            "dockhand.toml:12:1: `store.max_byte`",
            "unknown key `max_byte`; did you mean `max_bytes`?",
        ),
        (
            "[[device]]\nname = \"s\"\nkind = \"scale\"\npath = \"/dev/null\"\nprotocol = \"mt-sics\"\nbaud = \"9600\"\n",
            "`device[0].baud`",
            "write a whole number without quotes here, not the text \"9600\"",
        ),
        ("[store]\nretention = 7\n", "dockhand.toml:12:13: `store.retention`", "needs a unit"),
        ("[[sink]]\nname = \"a\"\ntype = \"file\"\n", "dockhand.toml:11:1: `sink[0].path`", "required key is missing"),
    ];
    for (extra, place, message) in cases {
        // The helper writes [gateway], [store] and [log]; put the case in a file of its own.
        let text = format!("[gateway]\nid = \"gw\"\nsite = \"S\"\n\n[log]\nlevel = \"info\"\n\n\n\n\n{extra}");
        std::fs::write(site.config(), &text).unwrap();
        for args in [&["check-config"][..], &["run"][..]] {
            let out = site.cli(args);
            let stderr = String::from_utf8_lossy(&out.stderr);
            assert_eq!(out.status.code(), Some(78), "{args:?} on {extra:?}: {stderr}");
            assert!(stderr.contains(place), "{args:?}: expected {place:?} in:\n{stderr}");
            assert!(stderr.contains(message), "{args:?}: expected {message:?} in:\n{stderr}");
        }
    }
    let out = std::process::Command::new(EXE)
        .args(["--config", "/nonexistent/dockhand.toml", "check-config"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(78));
    assert!(String::from_utf8_lossy(&out.stderr).contains("cannot read the config file"));
    let out = site.cli(&["no-such-command"]);
    assert_eq!(out.status.code(), Some(2));
}

#[test]
fn replay_delivers_again_with_the_same_ids() {
    let site = Site::new(EXE);
    site.write_config(
        "[[sink]]\nname = \"archive\"\ntype = \"file\"\npath = \"archive.ndjson\"\nbatch = { linger = \"0ms\" }\n",
    );
    let ids = fill_store(&site.store_path(), 300);
    let daemon = site.start();
    wait_until(Duration::from_secs(20), "first delivery", || read_ndjson(&site.path("archive.ndjson")).len() >= 300);
    let out = site.cli(&["replay", "--sink", "archive", "--since", "1h"]);
    assert!(out.status.success(), "{out:?}");
    assert!(String::from_utf8_lossy(&out.stdout).contains("300 event(s) again"));
    wait_until(Duration::from_secs(20), "the replay", || read_ndjson(&site.path("archive.ndjson")).len() >= 600);
    assert_eq!(daemon.stop().code(), Some(0));
    let received = read_ndjson(&site.path("archive.ndjson"));
    assert_eq!(check_delivery(&ids, &received), 300, "every event exactly once more");
    let second: Vec<_> = received[300..].iter().map(|e| e["id"].as_str().unwrap().to_string()).collect();
    let first: Vec<_> = received[..300].iter().map(|e| e["id"].as_str().unwrap().to_string()).collect();
    assert_eq!(first, second, "same ids, same order");
    let out = site.cli(&["replay", "--sink", "nope", "--since", "1h"]);
    assert_eq!(out.status.code(), Some(2));
}
