//! Odoo calls per counted item: 500 counts waiting in the store, drained by the real daemon into
//! the fake Odoo, batched (one run of up to 500 counts per delivery) and one event per delivery.
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

fn run(max_events: usize) -> usize {
    let odoo = FakeOdoo::start(17, "wh", "bench@example.com", KEY);
    for i in 0..50 {
        odoo.add_product(&format!("40063813{i:05}"), &format!("P-{i}"), "none");
    }
    let site = Site::new(EXE);
    std::fs::write(site.path("odoo.key"), KEY).unwrap();
    site.write_config(&format!(
        r#"
[[sink]]
name = "odoo"
type = "odoo"
url = "{}"
database = "wh"
login = "bench@example.com"
api_key_file = "odoo.key"
calls_per_second = 100000.0
batch = {{ max_events = {max_events}, linger = "0ms" }}
"#,
        odoo.url()
    ));
    let events = (0..COUNTS)
        .map(|i| ("count", json!({"product": {"barcode": format!("40063813{:05}", i % 50)}, "location": "WH/Stock", "quantity": (i % 97).to_string()})))
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
    // Object calls, plus version detection and login (once per daemon start).
    odoo.calls().len() + 2
}

fn main() {
    for (label, max_events) in [("batched (max_events = 500)", 500), ("one event per delivery", 1)] {
        let calls = run(max_events);
        println!(
            "{label:<28} {COUNTS} counts: {calls} Odoo calls = {:.3} calls per counted item",
            calls as f64 / COUNTS as f64
        );
    }
}
