//! The Odoo sink against the fake Odoo of `dockhand_tests::fake_odoo` (no real Odoo can run
//! here): every kind on every version (16-19, JSON-RPC and JSON-2), the version differences,
//! commit-then-drop, Odoo's refusals, a rotated API key, and 2 000 mixed events through an outage
//! and two SIGKILLs of the daemon, checked against the state computed by applying each event once.

#![allow(clippy::unwrap_used)] // test code: a panic is the failure report

use std::collections::HashMap;
use std::time::Duration;

use dockhand_tests::fake_odoo::{FakeOdoo, Fault};
use dockhand_tests::{Site, append_events, wait_until};
use serde_json::{Value, json};

const EXE: &str = env!("CARGO_BIN_EXE_dockhand-e2e");
const KEY: &str = "0123456789abcdef0123456789abcdef01234567";

fn site_for(odoo: &FakeOdoo, extra: &str) -> Site {
    let site = Site::new(EXE);
    site.write_config(&odoo.sink_table(
        &site.path(""),
        &format!(
            "calls_per_second = 1000.0\n\
             batch = {{ max_events = 200, linger = \"0ms\" }}\n\
             retry = {{ initial = \"100ms\", max = \"500ms\", paused_interval = \"1s\" }}\n{extra}"
        ),
    ));
    site
}

fn sink(site: &Site) -> dockhand::store::SinkState {
    dockhand::store::StoreReader::open(&site.store_path()).unwrap().sink_state("odoo").unwrap().unwrap()
}

fn settled(site: &Site, n: u64) -> bool {
    dockhand::store::StoreReader::open(&site.store_path())
        .ok()
        .and_then(|r| r.sink_state("odoo").ok().flatten())
        .is_some_and(|s| s.cursor >= n)
}

fn dead_letters(site: &Site) -> Vec<String> {
    let out = site.cli(&["dlq", "list"]);
    String::from_utf8_lossy(&out.stdout).lines().map(str::to_owned).collect()
}

fn count(barcode: &str, qty: &str) -> (&'static str, Value) {
    ("count", json!({"product": {"barcode": barcode}, "location": "WH/Stock", "quantity": qty}))
}

#[test]
fn counts_are_batched_and_absolute_on_every_version() {
    for version in [16, 17, 18, 19] {
        let odoo = FakeOdoo::start(version, "wh", "dockhand@example.com", KEY);
        let a = odoo.add_product("4006381333931", "PEN-BLUE", "none");
        let b = odoo.add_product("5901234123457", "PEN-RED", "none");
        odoo.set_stock(a, 7.0);
        let site = site_for(&odoo, "");
        // Counted twice (the later count is the truth), the other by its location barcode, and
        // a scan that is not for Odoo in the middle.
        let ids = append_events(
            &site.store_path(),
            vec![
                count("4006381333931", "12"),
                ("scan", json!({"raw": "]E04006381333931"})),
                ("count", json!({"product": {"default_code": "PEN-RED"}, "location": "WH-STOCK", "quantity": "3"})),
                count("4006381333931", "10"),
            ],
        );
        let daemon = site.start();
        wait_until(Duration::from_secs(15), "the counts applied", || settled(&site, 4));
        daemon.stop();
        assert_eq!(odoo.stock(a, None), 10.0, "v{version}");
        assert_eq!(odoo.stock(b, None), 3.0, "v{version}");
        let moves = odoo.moves_of(a);
        assert_eq!(moves.len(), 1, "v{version}: one run, one move per quant: {moves:?}");
        assert!(
            moves[0].name.contains(&ids[0].to_string()),
            "v{version}: the event id names the move: {}",
            moves[0].name
        );
        if version >= 18 {
            assert!(moves[0].name.ends_with(" - Mitchell Admin"), "{}", moves[0].name);
        }
        let calls = odoo.calls();
        let protocol = if version >= 19 { "json2" } else { "jsonrpc" };
        assert!(calls.iter().all(|c| c.0 == protocol), "v{version}: {calls:?}");
        let applies = calls.iter().filter(|c| c.2 == "action_apply_inventory").count();
        assert_eq!(applies, 1, "v{version}: one apply for the batch");
        assert!(dead_letters(&site).iter().all(|l| !l.contains("odoo")), "{:?}", dead_letters(&site));
    }
}

#[test]
fn picks_validate_with_and_without_backorders_on_16_and_17() {
    for version in [16, 17] {
        let odoo = FakeOdoo::start(version, "wh", "dockhand@example.com", KEY);
        let pen = odoo.add_product("4006381333931", "PEN-BLUE", "none");
        odoo.set_stock(pen, 100.0);
        odoo.add_picking("WH/OUT/00001", false, &[(pen, 5.0)]);
        odoo.add_picking("WH/OUT/00002", false, &[(pen, 5.0)]);
        odoo.add_picking("WH/OUT/00003", false, &[(pen, 4.0)]);
        let site = site_for(&odoo, "");
        let line = |q: &str| json!([{"product": {"barcode": "4006381333931"}, "quantity": q}]);
        let ids = append_events(
            &site.store_path(),
            vec![
                (
                    "pick",
                    json!({"picking": "WH/OUT/00001", "lines": line("3"), "complete": true, "backorder": "create"}),
                ),
                ("pick", json!({"picking": "WH/OUT/00002", "lines": line("3"), "complete": true, "backorder": "none"})),
                ("pick", json!({"picking": "WH/OUT/00003", "lines": line("4"), "complete": true})),
            ],
        );
        let daemon = site.start();
        wait_until(Duration::from_secs(15), "the picks applied", || settled(&site, 3));
        daemon.stop();
        for name in ["WH/OUT/00001", "WH/OUT/00002", "WH/OUT/00003"] {
            assert_eq!(odoo.picking(name).unwrap().state, "done", "v{version} {name}");
        }
        let bo = odoo.backorders_of("WH/OUT/00001");
        assert_eq!(bo.len(), 1, "v{version}: a backorder for the 2 not picked");
        assert!(odoo.backorders_of("WH/OUT/00002").is_empty(), "v{version}: backorder = none");
        assert!(odoo.backorders_of("WH/OUT/00003").is_empty(), "v{version}: fully picked");
        assert_eq!(odoo.stock(pen, None), 100.0 - 3.0 - 3.0 - 4.0, "v{version}");
        let notes = odoo.messages("WH/OUT/00001");
        assert!(
            notes.len() == 1 && notes[0].contains(&ids[0].to_string()),
            "v{version}: the event in the chatter: {notes:?}"
        );
        let fields: Vec<String> = odoo.calls().into_iter().filter(|c| c.1 == "stock.move.line").map(|c| c.2).collect();
        assert!(fields.contains(&"write".to_owned()), "v{version}");
    }
}

#[test]
fn receipts_create_lots_with_expiry_dates() {
    for version in [17, 19] {
        let odoo = FakeOdoo::start(version, "wh", "dockhand@example.com", KEY);
        let milk = odoo.add_product("09506000134352", "MILK-1L", "lot");
        odoo.add_picking("WH/IN/00007", true, &[(milk, 24.0)]);
        let site = site_for(&odoo, "");
        append_events(
            &site.store_path(),
            vec![(
                "receipt",
                json!({"picking": "WH/IN/00007", "complete": true, "lines": [
                    {"product": {"barcode": "09506000134352"}, "quantity": "24", "lot": "ABC123", "expiry": "2027-03-31"}
                ]}),
            )],
        );
        let daemon = site.start();
        wait_until(Duration::from_secs(15), "the receipt applied", || settled(&site, 1));
        daemon.stop();
        assert_eq!(odoo.picking("WH/IN/00007").unwrap().state, "done");
        let lots = odoo.lots();
        assert_eq!(lots.len(), 1, "v{version}: {lots:?}");
        assert_eq!((lots[0].name.as_str(), lots[0].product), ("ABC123", milk));
        assert_eq!(lots[0].expiration_date.as_deref(), Some("2027-03-31 00:00:00"));
        assert_eq!(odoo.stock(milk, Some("ABC123")), 24.0);
    }
}

#[test]
fn pack_weights_go_to_the_picking_and_the_package_of_the_version() {
    for version in [18, 19] {
        let odoo = FakeOdoo::start(version, "wh", "dockhand@example.com", KEY);
        let pen = odoo.add_product("4006381333931", "PEN-BLUE", "none");
        odoo.add_picking("WH/OUT/00009", false, &[(pen, 1.0)]);
        odoo.add_package("00106141411234567897");
        let site = site_for(&odoo, "");
        append_events(
            &site.store_path(),
            vec![("pack", json!({"picking": "WH/OUT/00009", "package": "00106141411234567897", "weight": "2.480"}))],
        );
        let daemon = site.start();
        wait_until(Duration::from_secs(15), "the pack applied", || settled(&site, 1));
        daemon.stop();
        assert_eq!(odoo.picking("WH/OUT/00009").unwrap().shipping_weight, 2.48);
        assert_eq!(odoo.package_weight("00106141411234567897"), Some(2.48), "v{version}");
        let model = if version >= 19 { "stock.package" } else { "stock.quant.package" };
        assert!(odoo.calls().iter().any(|c| c.1 == model), "v{version}");
    }
}

#[test]
fn commit_then_drop_is_not_applied_twice() {
    let odoo = FakeOdoo::start(17, "wh", "dockhand@example.com", KEY);
    let pen = odoo.add_product("4006381333931", "PEN-BLUE", "none");
    odoo.set_stock(pen, 50.0);
    odoo.add_picking("WH/OUT/00011", false, &[(pen, 5.0)]);
    // Both writes that are not naturally repeatable commit in Odoo and lose their answer.
    odoo.inject_on("action_apply_inventory", Fault::CommitThenDrop);
    odoo.inject_on("button_validate", Fault::CommitThenDrop);
    let site = site_for(&odoo, "");
    append_events(
        &site.store_path(),
        vec![
            count("4006381333931", "40"),
            (
                "pick",
                json!({"picking": "WH/OUT/00011", "lines": [{"product": {"barcode": "4006381333931"}, "quantity": "5"}], "complete": true}),
            ),
        ],
    );
    let daemon = site.start();
    wait_until(Duration::from_secs(20), "both events settled", || settled(&site, 2));
    daemon.stop();
    assert!(sink(&site).retried > 0 || odoo.calls().iter().filter(|c| c.2 == "action_apply_inventory").count() == 1);
    // The count: quantity 40, then the pick of 5; and exactly one inventory move and one delivery.
    assert_eq!(odoo.stock(pen, None), 35.0);
    let moves = odoo.moves_of(pen);
    assert_eq!(moves.iter().filter(|m| m.picking.is_none()).count(), 1, "one inventory move: {moves:?}");
    assert_eq!(moves.iter().filter(|m| m.picking.is_some()).count(), 1, "one delivery move: {moves:?}");
    assert_eq!(odoo.calls().iter().filter(|c| c.2 == "action_apply_inventory").count(), 1, "not applied again");
    assert_eq!(odoo.calls().iter().filter(|c| c.2 == "button_validate").count(), 1, "not validated again");
    assert!(
        dead_letters(&site).iter().all(|l| !l.contains("odoo")),
        "nothing dead-lettered: {:?}",
        dead_letters(&site)
    );
}

#[test]
fn odoo_refusals_are_dead_lettered_with_the_reason() {
    let odoo = FakeOdoo::start(17, "wh", "dockhand@example.com", KEY);
    let milk = odoo.add_product("09506000134352", "MILK-1L", "lot");
    let pen = odoo.add_product("4006381333931", "PEN-BLUE", "none");
    odoo.add_picking("WH/IN/00020", true, &[(milk, 5.0)]);
    let site = site_for(&odoo, "");
    append_events(
        &site.store_path(),
        vec![
            count("0000000000000", "1"),
            (
                "pick",
                json!({"picking": "WH/OUT/99999", "lines": [{"product": {"barcode": "4006381333931"}, "quantity": "1"}], "complete": true}),
            ),
            // A lot-tracked product received without a lot: Odoo's own UserError.
            (
                "receipt",
                json!({"picking": "WH/IN/00020", "complete": true, "lines": [{"product": {"barcode": "09506000134352"}, "quantity": "5"}]}),
            ),
            count("4006381333931", "9"),
        ],
    );
    let daemon = site.start();
    wait_until(Duration::from_secs(15), "all settled", || settled(&site, 4));
    daemon.stop();
    let dlq = dead_letters(&site).join("\n");
    assert!(dlq.contains("no product with barcode 0000000000000"), "{dlq}");
    assert!(dlq.contains("no picking named `WH/OUT/99999`"), "{dlq}");
    assert!(dlq.contains("You need to supply a Lot/Serial number"), "{dlq}");
    assert_eq!(sink(&site).dead_lettered, 3);
    assert_eq!(odoo.stock(pen, None), 9.0, "the good count after the refused ones is applied");
}

#[test]
fn a_refused_api_key_pauses_the_sink_and_a_reload_with_the_new_key_resumes() {
    for version in [17, 19] {
        let odoo = FakeOdoo::start(version, "wh", "dockhand@example.com", KEY);
        let pen = odoo.add_product("4006381333931", "PEN-BLUE", "none");
        let site = site_for(&odoo, "");
        // Odoo's key was rotated; the gateway still has the old one.
        odoo.set_key("rotated-key-0000000000000000000000000000");
        append_events(&site.store_path(), vec![count("4006381333931", "4")]);
        let daemon = site.start();
        wait_until(Duration::from_secs(15), "the sink paused", || {
            dockhand::store::StoreReader::open(&site.store_path())
                .ok()
                .and_then(|r| r.sink_state("odoo").ok().flatten())
                .is_some_and(|s| s.paused.is_some())
        });
        let state = sink(&site);
        assert!(state.paused.as_deref().unwrap().contains("api_key_file"), "{:?}", state.paused);
        assert_eq!(state.dead_lettered, 0);
        let status = String::from_utf8(site.cli(&["status"]).stdout).unwrap();
        assert!(status.contains("sink odoo is paused"), "{status}");
        std::fs::write(site.path("odoo.key"), "rotated-key-0000000000000000000000000000").unwrap();
        daemon.signal(libc::SIGHUP);
        wait_until(Duration::from_secs(15), "applied after the reload", || settled(&site, 1));
        daemon.stop();
        assert_eq!(odoo.stock(pen, None), 4.0, "v{version}");
    }
}

/// The state the events should leave: counts set, picks take, receipts add; each once.
fn expected(events: &[(&'static str, Value)]) -> HashMap<String, f64> {
    let mut stock: HashMap<String, f64> = HashMap::new();
    for (kind, e) in events {
        match *kind {
            "count" => {
                stock.insert(
                    e["product"]["barcode"].as_str().unwrap().into(),
                    e["quantity"].as_str().unwrap().parse().unwrap(),
                );
            }
            "pick" | "receipt" => {
                for l in e["lines"].as_array().unwrap() {
                    let q: f64 = l["quantity"].as_str().unwrap().parse().unwrap();
                    *stock.entry(l["product"]["barcode"].as_str().unwrap().into()).or_default() +=
                        if *kind == "pick" { -q } else { q };
                }
            }
            _ => {}
        }
    }
    stock
}

#[test]
fn two_thousand_mixed_events_through_an_outage_and_two_kills() {
    let odoo = FakeOdoo::start(17, "wh", "dockhand@example.com", KEY);
    let barcodes: Vec<String> = (0..20).map(|i| format!("40063813{i:05}")).collect();
    let mut products = HashMap::new();
    for (i, b) in barcodes.iter().enumerate() {
        let id = odoo.add_product(b, &format!("P-{i}"), "none");
        odoo.set_stock(id, 1000.0);
        products.insert(b.clone(), id);
    }
    let mut rng = fastrand::Rng::with_seed(7);
    let mut events: Vec<(&'static str, Value)> = Vec::new();
    let mut pickings = 0;
    for _ in 0..2000 {
        let b = barcodes[rng.usize(..barcodes.len())].clone();
        match rng.u8(..10) {
            0..=5 => events.push(count(&b, &rng.u32(100..900).to_string())),
            6..=7 => {
                pickings += 1;
                let name = format!("WH/OUT/{pickings:05}");
                let q = rng.u32(1..5);
                odoo.add_picking(&name, false, &[(products[&b], f64::from(q))]);
                events.push(("pick", json!({"picking": name, "lines": [{"product": {"barcode": b}, "quantity": q.to_string()}], "complete": true})));
            }
            _ => {
                pickings += 1;
                let name = format!("WH/IN/{pickings:05}");
                let q = rng.u32(1..20);
                odoo.add_picking(&name, true, &[(products[&b], f64::from(q))]);
                events.push(("receipt", json!({"picking": name, "lines": [{"product": {"barcode": b}, "quantity": q.to_string()}], "complete": true})));
            }
        }
    }
    // Count barcodes are mixed into `events` through `count()` which uses WH/Stock.
    let site = site_for(&odoo, "");
    append_events(&site.store_path(), events.clone());
    let mut daemon = site.start();
    for round in 0..2 {
        // An outage: Odoo answers 503 to the next 40 calls; then commit-then-drop on the next apply.
        std::thread::sleep(Duration::from_millis(400));
        odoo.inject(&vec![Fault::Unavailable; 40]);
        odoo.inject_on("button_validate", Fault::CommitThenDrop);
        std::thread::sleep(Duration::from_millis(600 + round * 300));
        daemon.kill9();
        daemon = site.start();
    }
    // The fake answers each call by scanning its whole database (a real Odoo uses indexes):
    // with 2 000 pickings' worth of records it serves ~25 events/s on this machine.
    wait_until(Duration::from_secs(240), "all 2 000 events settled", || settled(&site, 2000));
    daemon.stop();
    let want = expected(&events);
    for (barcode, qty) in want {
        let have = odoo.stock(products[&barcode], None);
        // Barcodes only picked or received start from 1000.
        let counted = events.iter().any(|(k, e)| *k == "count" && e["product"]["barcode"] == barcode.as_str());
        let want = if counted { qty } else { 1000.0 + qty };
        assert_eq!(have, want, "product {barcode}");
    }
    for i in 1..=pickings {
        let name = if odoo.picking(&format!("WH/OUT/{i:05}")).is_some() {
            format!("WH/OUT/{i:05}")
        } else {
            format!("WH/IN/{i:05}")
        };
        assert_eq!(odoo.picking(&name).unwrap().state, "done", "{name}");
        assert!(odoo.backorders_of(&name).is_empty(), "{name} validated once, fully");
    }
    assert_eq!(sink(&site).dead_lettered, 0, "{:?}", dead_letters(&site));
}

fn calls_of(odoo: &FakeOdoo, method: &str) -> usize {
    odoo.calls().iter().filter(|(_, _, m)| m == method).count()
}

#[test]
fn one_bad_count_never_takes_its_neighbours_down() {
    for version in [16, 17, 19] {
        let odoo = FakeOdoo::start(version, "wh", "dockhand@example.com", KEY);
        let mut products = Vec::new();
        for i in 0..20 {
            let barcode = format!("40063813{i:05}");
            let id = match i {
                5 => odoo.add_product_of("consumable", &barcode, &format!("P-{i}"), "none"),
                _ => odoo.add_product(&barcode, &format!("P-{i}"), "none"),
            };
            products.push((barcode, id));
        }
        odoo.archive(products[15].1);
        // The middle of the run: a consumable, a barcode Odoo does not know, an archived product.
        let events: Vec<_> = (0..20)
            .map(|i| if i == 10 { count("0000000000000", "7") } else { count(&products[i].0, &format!("{}", 100 + i)) })
            .collect();
        let site = site_for(&odoo, "");
        append_events(&site.store_path(), events);
        let daemon = site.start();
        wait_until(Duration::from_secs(15), "all settled", || settled(&site, 20));
        daemon.stop();
        for (i, (_, id)) in products.iter().enumerate() {
            let want = if [5, 10, 15].contains(&i) { 0.0 } else { (100 + i) as f64 };
            assert_eq!(odoo.stock(*id, None), want, "v{version} count {i}");
        }
        assert_eq!(calls_of(&odoo, "action_apply_inventory"), 1, "v{version}: the 17 good counts in one apply");
        let dlq = dead_letters(&site).join("\n");
        assert_eq!(sink(&site).dead_lettered, 3, "v{version}: {dlq}");
        assert!(dlq.contains("is a consumable in Odoo"), "v{version}: {dlq}");
        assert!(dlq.contains("no product with barcode 0000000000000"), "v{version}: {dlq}");
        assert!(dlq.contains("is archived in Odoo"), "v{version}: {dlq}");

        // A product turned consumable in Odoo after dockhand cached it: only Odoo knows, the
        // grouped create fails, and halving finds the one count it is about.
        odoo.set_kind(products[3].1, "consumable");
        let site2 = site;
        append_events(&site2.store_path(), (0..8).map(|i| count(&products[i].0, "50")).filter(|_| true).collect());
        let daemon = site2.start();
        wait_until(Duration::from_secs(15), "the second run settled", || settled(&site2, 28));
        daemon.stop();
        let dlq = dead_letters(&site2).join("\n");
        assert!(dlq.contains("Quants cannot be created for consumables or services"), "v{version}: {dlq}");
        for (i, (_, id)) in products.iter().enumerate().take(8) {
            let want = match i {
                3 => 103.0,
                5 => 0.0,
                _ => 50.0,
            };
            assert_eq!(odoo.stock(*id, None), want, "v{version} second run, count {i}");
        }
    }
}

#[test]
fn lots_repeated_across_a_run_are_created_once() {
    for version in [16, 17, 19] {
        let odoo = FakeOdoo::start(version, "wh", "dockhand@example.com", KEY);
        let milk = odoo.add_product("09506000134352", "MILK-1L", "lot");
        let shelf = odoo.add_location("WH-A-01", "WH/Stock/A-01");
        let lot = |l: &str, loc: &str, q: &str| {
            ("count", json!({"product": {"barcode": "09506000134352"}, "location": loc, "quantity": q, "lot": l}))
        };
        let site = site_for(&odoo, "");
        append_events(
            &site.store_path(),
            vec![
                lot("LOT-N1", "WH/Stock", "10"),
                lot("LOT-N2", "WH/Stock", "20"),
                lot("LOT-N1", "WH-A-01", "5"),
                lot("LOT-N3", "WH-A-01", "7"),
                lot("LOT-N2", "WH-A-01", "2"),
            ],
        );
        let daemon = site.start();
        wait_until(Duration::from_secs(15), "all settled", || settled(&site, 5));
        daemon.stop();
        assert_eq!(sink(&site).dead_lettered, 0, "v{version}: {:?}", dead_letters(&site));
        let mut names: Vec<String> = odoo.lots().into_iter().map(|l| l.name).collect();
        names.sort();
        assert_eq!(names, vec!["LOT-N1", "LOT-N2", "LOT-N3"], "v{version}: each lot once");
        assert_eq!(odoo.stock_at(milk, 1, Some("LOT-N1")), 10.0);
        assert_eq!(odoo.stock_at(milk, 1, Some("LOT-N2")), 20.0);
        assert_eq!(odoo.stock_at(milk, shelf, Some("LOT-N1")), 5.0);
        assert_eq!(odoo.stock_at(milk, shelf, Some("LOT-N3")), 7.0);
        assert_eq!(odoo.stock_at(milk, shelf, Some("LOT-N2")), 2.0);
        assert_eq!(calls_of(&odoo, "action_apply_inventory"), 1, "v{version}");
    }
}

#[test]
fn a_pack_weight_odoo_cannot_store_is_refused_before_any_write() {
    for version in [16, 17, 19] {
        let odoo = FakeOdoo::start_with_modules(version, "wh", "dockhand@example.com", KEY, &[]);
        odoo.add_picking("WH/OUT/00042", false, &[]);
        odoo.add_package("PACK0001");
        let site = site_for(&odoo, "");
        let ids = append_events(
            &site.store_path(),
            vec![("pack", json!({"picking": "WH/OUT/00042", "package": "PACK0001", "weight": "2.480"}))],
        );
        let daemon = site.start();
        wait_until(Duration::from_secs(15), "settled", || settled(&site, 1));
        daemon.stop();
        // The dead letter can be opened by its number or by the event's id.
        for key in [ids[0].to_string(), "#1".into(), "1".into()] {
            let out = site.cli(&["dlq", "show", &key]);
            let text = String::from_utf8_lossy(&out.stdout).into_owned();
            assert!(out.status.success() && text.contains("install the Delivery Costs module"), "{key}: {text}");
        }
        let out = site.cli(&["dlq", "show", "WH/OUT/00042"]);
        assert!(!out.status.success() && String::from_utf8_lossy(&out.stderr).contains("nor an event id"));
        let dlq = dead_letters(&site).join("\n");
        let module = dockhand_tests::fake_odoo::delivery_module(version);
        assert!(dlq.contains(&format!("install the Delivery Costs module (`{module}`)")), "v{version}: {dlq}");
        assert_eq!(calls_of(&odoo, "write"), 0, "v{version}: nothing written");
    }
}

#[test]
fn a_stale_count_is_adjusted_applied_or_refused_as_configured() {
    let cases =
        [16, 17, 19].into_iter().flat_map(|v| [(v, "adjust", 95.0), (v, "apply", 100.0), (v, "dead-letter", 95.0)]);
    for (version, policy, want) in cases {
        let odoo = FakeOdoo::start(version, "wh", "dockhand@example.com", KEY);
        let pen = odoo.add_product("4006381333931", "PEN-BLUE", "none");
        odoo.set_stock(pen, 100.0);
        let site = site_for(&odoo, &format!("stale_counts = \"{policy}\""));
        // Counted 100 at T; a delivery of 5 is validated in Odoo at T+1; the count arrives at T+2.
        append_events(&site.store_path(), vec![count("4006381333931", "100")]);
        std::thread::sleep(Duration::from_millis(1100));
        let delivery = odoo.deliver_now(pen, 5.0);
        assert_eq!(odoo.stock(pen, None), 95.0);
        std::thread::sleep(Duration::from_millis(1100));
        let daemon = site.start();
        wait_until(Duration::from_secs(15), "settled", || settled(&site, 1));
        daemon.stop();
        assert_eq!(odoo.stock(pen, None), want, "v{version}: stale_counts = {policy}");
        let dlq = dead_letters(&site).join("\n");
        if policy == "dead-letter" {
            assert!(dlq.contains(&delivery) && dlq.contains("-5"), "the dead letter lists the move: {dlq}");
        } else {
            assert_eq!(sink(&site).dead_lettered, 0, "v{version} {policy}: {dlq}");
        }
    }
}

#[test]
fn a_chatter_note_odoo_refuses_never_fails_the_pick_and_is_reported_once() {
    let odoo = FakeOdoo::start(17, "wh", "dockhand@example.com", KEY);
    let pen = odoo.add_product("4006381333931", "PEN-BLUE", "none");
    odoo.set_stock(pen, 100.0);
    odoo.refuse_notes();
    let names: Vec<String> = (1..=3).map(|i| format!("WH/OUT/{i:05}")).collect();
    for name in &names {
        odoo.add_picking(name, false, &[(pen, 2.0)]);
    }
    let site = site_for(&odoo, "");
    let line = json!([{"product": {"barcode": "4006381333931"}, "quantity": "2"}]);
    append_events(
        &site.store_path(),
        names.iter().map(|n| ("pick", json!({"picking": n, "lines": line, "complete": true}))).collect(),
    );
    let daemon = site.start();
    wait_until(Duration::from_secs(15), "the picks applied", || settled(&site, 3));
    let log = daemon.log();
    daemon.stop();
    for name in &names {
        assert_eq!(odoo.picking(name).unwrap().state, "done");
    }
    assert_eq!(sink(&site).dead_lettered, 0);
    assert_eq!(odoo.stock(pen, None), 94.0);
    assert_eq!(log.matches("Cannot add a note to the picking's chatter").count(), 1, "{log}");
}

#[test]
fn an_https_odoo_with_a_private_ca_is_checked_probed_and_used_with_the_sinks_tls_settings() {
    let dir = tempfile::tempdir().unwrap();
    let pki = dockhand_tests::mqtt::TestPki::generate(dir.path(), "odoo");
    let odoo = FakeOdoo::start_tls(17, "wh", "dockhand@example.com", KEY, &pki.server_cert, &pki.server_key);
    assert!(odoo.url().starts_with("https://"));
    let pen = odoo.add_product("4006381333931", "PEN-BLUE", "none");
    let site = site_for(&odoo, &format!("tls = {{ ca_file = \"{}\" }}", pki.ca.display()));
    let check = site.cli(&["check-config", "--connect"]);
    let text = format!("{}{}", String::from_utf8_lossy(&check.stdout), String::from_utf8_lossy(&check.stderr));
    assert!(check.status.success() && text.contains("Odoo 17"), "{text}");
    // An outage, then the probe (over the same TLS client) brings the sink back quickly.
    append_events(&site.store_path(), vec![count("4006381333931", "3")]);
    odoo.set_down(true);
    let daemon = site.start();
    std::thread::sleep(Duration::from_secs(2));
    odoo.set_down(false);
    wait_until(Duration::from_secs(15), "applied over HTTPS", || settled(&site, 1));
    daemon.stop();
    assert_eq!(odoo.stock(pen, None), 3.0);
}
