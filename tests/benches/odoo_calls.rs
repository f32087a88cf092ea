//! Odoo calls per counted item: 500 counts waiting in the store, drained by the real daemon into
//! the fake Odoo, batched (one run of up to 500 counts per delivery) and one event per delivery;
//! then batched again with 5% bad counts mixed in (unknown barcodes, consumables, an archived
//! product), each of which must be dead-lettered alone while its neighbours are applied.
//!
//!     cargo bench -p dockhand-tests --bench odoo_calls

#![allow(clippy::unwrap_used)] // a benchmark harness: a panic is the failure report

use std::time::Duration;

use dockhand_tests::fake_odoo::FakeOdoo;
use dockhand_tests::{Site, append_events, wait_until};
use serde_json::json;

const EXE: &str = env!("CARGO_BIN_EXE_dockhand-e2e");
const KEY: &str = "0123456789abcdef0123456789abcdef01234567";
const COUNTS: u64 = 500;

/// Odoo calls, and the dead letters left.
fn run(max_events: usize, bad: bool) -> (usize, u64) {
    let odoo = FakeOdoo::start(17, "wh", "bench@example.com", KEY);
    for i in 0..50 {
        odoo.add_product(&format!("40063813{i:05}"), &format!("P-{i}"), "none");
    }
    let consumable = odoo.add_product_of("consumable", "5901234123457", "CUP", "none");
    let archived = odoo.add_product("4006381399999", "OLD", "none");
    odoo.archive(archived);
    let _ = consumable;
    let site = Site::new(EXE);
    site.write_config(&odoo.sink_table(
        &site.path(""),
        &format!("calls_per_second = 100000.0\nbatch = {{ max_events = {max_events}, linger = \"0ms\" }}"),
    ));
    let barcode = |i: u64| match i % 20 {
        // One count in twenty is bad: 25 of 500.
        7 if bad => ["0000000000000", "5901234123457", "4006381399999"][(i / 20 % 3) as usize].to_owned(),
        _ => format!("40063813{:05}", i % 50),
    };
    let events = (0..COUNTS)
        .map(|i| {
            (
                "count",
                json!({"product": {"barcode": barcode(i)}, "location": "WH/Stock", "quantity": (i % 97).to_string()}),
            )
        })
        .collect();
    append_events(&site.store_path(), events);
    let daemon = site.start();
    wait_until(Duration::from_secs(300), "the counts drained", || {
        dockhand::store::StoreReader::open(&site.store_path())
            .ok()
            .and_then(|r| r.sink_state("odoo").ok().flatten())
            .is_some_and(|s| s.cursor >= COUNTS)
    });
    daemon.stop();
    let dead = dockhand::store::StoreReader::open(&site.store_path())
        .unwrap()
        .sink_state("odoo")
        .unwrap()
        .unwrap()
        .dead_lettered;
    // Object calls, plus version detection and login (once per daemon start).
    (odoo.calls().len() + 2, dead)
}

fn main() {
    for (label, max_events, bad) in [
        ("batched (max_events = 500)", 500, false),
        ("one event per delivery", 1, false),
        ("batched, 5% bad counts", 500, true),
    ] {
        let (calls, dead) = run(max_events, bad);
        println!(
            "{label:<28} {COUNTS} counts: {calls} Odoo calls = {:.3} calls per counted item; {dead} dead-lettered (target ≤ 0.05)",
            calls as f64 / COUNTS as f64
        );
    }
}
