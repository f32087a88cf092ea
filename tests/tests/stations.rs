//! Stations end to end: the real daemon with a scanner, an MT-SICS scale and a ZPL printer on
//! pseudo-terminals (simulated firmware on the other side) and a file sink; operator feedback
//! read from a real mosquitto.

#![allow(clippy::unwrap_used)] // test code: a panic is the failure report

use std::time::Duration;

use dockhand_tests::mqtt::{Mosquitto, ReplyListener, mosquitto_available};
use dockhand_tests::printer::{PrinterState, SimulatedPrinter};
use dockhand_tests::pty::{Display, SimulatedScale, VirtualPort};
use dockhand_tests::{Site, read_ndjson, wait_until};
use serde_json::Value;

const EXE: &str = env!("CARGO_BIN_EXE_dockhand-e2e");

struct Bench {
    site: Site,
    scanner: VirtualPort,
    scale: SimulatedScale,
    printer: SimulatedPrinter,
    _ports: Vec<VirtualPort>,
}

/// A station with scanner, scale and printer; `station` is the rest of its [[station]] table.
fn bench(workflow: &str, station: &str, extra: &str) -> Bench {
    let site = Site::new(EXE);
    let scanner = VirtualPort::start(site.dir.path(), "scanner");
    let scale_port = VirtualPort::start(site.dir.path(), "scale");
    let printer_port = VirtualPort::start(site.dir.path(), "printer");
    let scale = SimulatedScale::mt_sics(&scale_port);
    let printer = SimulatedPrinter::on_pty(&printer_port);
    site.write_config(&format!(
        r#"
[[sink]]
name = "file"
type = "file"
path = "events.ndjson"
batch = {{ max_events = 100, linger = "0ms" }}

[[device]]
name = "scanner"
kind = "scanner"
path = "{}"

[[device]]
name = "scale"
kind = "scale"
path = "{}"
protocol = "mt-sics"
poll_interval = "50ms"

[[device]]
name = "printer"
kind = "printer"
path = "{}"
status_interval = "100ms"

[[label]]
name = "parcel"
zpl = "^XA^FO50,50^A0N,40,40^FD{{{{picking}}}}^FS^FO50,100^A0N,30,30^FD{{{{weight}}}} kg {{{{date}}}}^FS^FO50,150^FD{{{{gateway}}}} {{{{sscc}}}}^FS^XZ"

[[label]]
name = "pallet"
zpl = "^XA^FO50,50^FD{{{{picking}}}}^FS^FO50,100^FD{{{{sscc}}}}^FS^XZ"

[[label]]
name = "oops"
zpl = "^XA^FO20,20^A0N,30,30^FD{{{{message}}}}^FS^XZ"

[[station]]
name = "st1"
workflow = "{workflow}"
scanner = "scanner"
scale = "scale"
printer = "printer"
error_label = "oops"
stable_readings = 3
{station}

{extra}
"#,
        scanner.path.display(),
        scale_port.path.display(),
        printer_port.path.display()
    ));
    Bench { site, scanner, scale, printer, _ports: vec![scale_port, printer_port] }
}

fn events(site: &Site, kind: &str) -> Vec<Value> {
    read_ndjson(&site.path("events.ndjson")).into_iter().filter(|e| e["kind"] == kind).collect()
}

fn connected(site: &Site) -> bool {
    let out = site.cli(&["status", "--json"]);
    let status: Value = serde_json::from_slice(&out.stdout).unwrap_or(Value::Null);
    status["devices"].as_array().is_some_and(|d| d.len() == 3 && d.iter().all(|d| d["state"] == "connected"))
}

#[test]
fn a_pack_cycle_weighs_prints_and_stores_even_while_the_printer_is_out_of_paper() {
    if !mosquitto_available() {
        return;
    }
    let mut b = bench("pack", "label = \"parcel\"", "");
    let broker = Mosquitto::start(b.site.dir.path());
    let mut text = std::fs::read_to_string(b.site.config()).unwrap();
    text.push_str(&format!("\n[mqtt]\nhost = \"127.0.0.1\"\nport = {}\n", broker.port));
    std::fs::write(b.site.config(), text).unwrap();
    let rt = tokio::runtime::Runtime::new().unwrap();
    let feedback =
        rt.block_on(ReplyListener::listen(broker.port, vec!["warehouse/T1/gateway/test-gw/station/st1".into()]));
    let daemon = b.site.start();
    wait_until(Duration::from_secs(10), "all devices connected", || connected(&b.site));
    wait_until(Duration::from_secs(10), "the MQTT source up", || daemon.log().contains("Subscribed"));

    // 1. Scan the picking; the parcel goes on the scale, moving, then still.
    b.scanner.write(b"WH/OUT/00042\r\n");
    b.scale.show(Display::Weight("1.900".into(), false));
    std::thread::sleep(Duration::from_millis(400));
    assert!(events(&b.site, "pack").is_empty(), "no event while the weight moves");
    b.scale.show(Display::Weight("2.480".into(), true));
    wait_until(Duration::from_secs(10), "the pack event", || !events(&b.site, "pack").is_empty());
    wait_until(Duration::from_secs(10), "the label", || b.printer.count(b"^XZ") == 1);
    let label = String::from_utf8(b.printer.received()).unwrap();
    assert!(label.contains("^FH^FDWH/OUT/00042^FS") && label.contains("2.480 kg"), "{label}");
    let pack = &events(&b.site, "pack")[0];
    assert_eq!(pack["payload"]["picking"], "WH/OUT/00042");
    assert_eq!(pack["payload"]["weight"], "2.480");
    assert_eq!(pack["payload"]["label_printed"], true);
    assert_eq!(pack["source"]["station"], "st1");
    assert!(pack["correlation_id"].is_string());
    assert!(events(&b.site, "scan").is_empty(), "a station's scans are not forwarded as scan events");
    assert!(events(&b.site, "weight").is_empty(), "a station's scale makes no weight events");
    wait_until(Duration::from_secs(10), "the operator feedback", || {
        let steps: Vec<String> =
            feedback.replies().iter().map(|(_, v)| v["step"].as_str().unwrap_or("").to_owned()).collect();
        steps.contains(&"picking".to_owned()) && steps.contains(&"packed".to_owned())
    });
    let packed = feedback.replies().into_iter().find(|(_, v)| v["step"] == "packed").unwrap().1;
    assert_eq!(packed["correlation_id"], pack["correlation_id"]);

    // 2. The parcel leaves; the printer runs out of paper; the next parcel is packed anyway.
    b.scale.show(Display::Weight("0.000".into(), true));
    b.printer.set(PrinterState::PaperOut);
    std::thread::sleep(Duration::from_millis(400));
    b.scanner.write(b"WH/OUT/00043\r\n");
    std::thread::sleep(Duration::from_millis(200));
    b.scale.show(Display::Weight("3.105".into(), true));
    wait_until(Duration::from_secs(10), "the second pack event", || events(&b.site, "pack").len() == 2);
    std::thread::sleep(Duration::from_millis(500));
    assert_eq!(b.printer.count(b"^XZ"), 1, "the label waits for paper");
    b.printer.set(PrinterState::Ready);
    wait_until(Duration::from_secs(10), "the held label", || b.printer.count(b"^XZ") == 2);
    std::thread::sleep(Duration::from_millis(500));
    assert_eq!(b.printer.count(b"^XZ"), 2, "printed once");
    assert!(String::from_utf8(b.printer.received()).unwrap().contains("WH/OUT/00043"));
    daemon.stop();
}

#[test]
fn pack_timeout_and_cancel() {
    let mut b = bench("pack", "label = \"parcel\"\nweight_timeout = \"1s\"", "");
    let daemon = b.site.start();
    wait_until(Duration::from_secs(10), "all devices connected", || connected(&b.site));
    // The parcel never settles: a timeout, an error label, no event.
    b.scale.show(Display::Motion);
    b.scanner.write(b"WH/OUT/00050\r\n");
    wait_until(Duration::from_secs(10), "the error label", || b.printer.count(b"No stable weight") == 1);
    assert!(daemon.log().contains("No stable weight within 1 s"));
    // Cancelled before the weight: no event either.
    b.scanner.write(b"WH/OUT/00051\r\n");
    std::thread::sleep(Duration::from_millis(200));
    b.scanner.write(b"CANCEL\r\n");
    std::thread::sleep(Duration::from_millis(200));
    b.scale.show(Display::Weight("1.000".into(), true));
    std::thread::sleep(Duration::from_millis(800));
    assert!(events(&b.site, "pack").is_empty(), "{:?}", events(&b.site, "pack"));
    assert!(daemon.log().contains("Cancelled."));
    daemon.stop();
}

#[test]
fn count_by_weight_gives_whole_units_and_refuses_the_rest() {
    let mut b = bench("count", "unit_weights = { \"4006381333931\" = 0.012 }\ntolerance = 0.2", "");
    let daemon = b.site.start();
    wait_until(Duration::from_secs(10), "all devices connected", || connected(&b.site));
    b.scanner.write(b"WH-A-01-02\r\n");
    std::thread::sleep(Duration::from_millis(200));
    b.scale.show(Display::Weight("1.200".into(), true));
    b.scanner.write(b"]E04006381333931\r\n");
    wait_until(Duration::from_secs(10), "the count", || !events(&b.site, "count").is_empty());
    let c = &events(&b.site, "count")[0]["payload"];
    assert_eq!((c["quantity"].as_str(), c["location"].as_str()), (Some("100"), Some("WH-A-01-02")));
    assert_eq!(c["product"]["barcode"], "4006381333931");
    // 1.206 kg is 100.5 units: refused, with an error label.
    b.scale.show(Display::Weight("0.000".into(), true));
    std::thread::sleep(Duration::from_millis(300));
    b.scale.show(Display::Weight("1.206".into(), true));
    b.scanner.write(b"]E04006381333931\r\n");
    wait_until(Duration::from_secs(10), "the refusal", || daemon.log().contains("not a whole number"));
    wait_until(Duration::from_secs(10), "the error label", || b.printer.count(b"not a whole number") == 1);
    std::thread::sleep(Duration::from_millis(300));
    assert_eq!(events(&b.site, "count").len(), 1);
    daemon.stop();
}

#[test]
fn receiving_with_gs1_lot_and_expiry() {
    let mut b = bench("receive", "pallet_label = \"pallet\"", "");
    let daemon = b.site.start();
    wait_until(Duration::from_secs(10), "all devices connected", || connected(&b.site));
    b.scanner.write(b"WH/IN/00007\r\n");
    // GTIN, count 24 (AI 37 needs the GS separator), lot, expiry 2027-03-31.
    b.scanner.write(b"]C1010950600013435217270331");
    b.scanner.write(b"10ABC123\x1d3724\r\n");
    b.scanner.write(b"]C100106141411234567897\r\n");
    std::thread::sleep(Duration::from_millis(200));
    b.scanner.write(b"DONE\r\n");
    wait_until(Duration::from_secs(10), "the receipt", || !events(&b.site, "receipt").is_empty());
    let r = &events(&b.site, "receipt")[0];
    assert_eq!(r["payload"]["picking"], "WH/IN/00007");
    assert_eq!(r["payload"]["complete"], true);
    let lines = r["payload"]["lines"].as_array().unwrap();
    assert_eq!(lines.len(), 1, "the pallet SSCC is not a line: {lines:?}");
    assert_eq!(lines[0]["product"]["barcode"], "09506000134352");
    assert_eq!(lines[0]["lot"], "ABC123");
    assert_eq!(lines[0]["expiry"], "2027-03-31");
    assert_eq!(lines[0]["quantity"], "24");
    // The pallet's SSCC label went to the printer.
    wait_until(Duration::from_secs(10), "the pallet label", || b.printer.count(b"106141411234567897") == 1);
    assert!(String::from_utf8(b.printer.received()).unwrap().contains("WH/IN/00007"));
    daemon.stop();
}

#[test]
fn station_mistakes_are_config_errors_that_name_the_key() {
    let b = bench("pack", "label = \"parcel\"\n", "");
    let text = std::fs::read_to_string(b.site.config()).unwrap();
    // An error label that needs fields the station does not give.
    std::fs::write(b.site.config(), text.replace("error_label = \"oops\"", "error_label = \"parcel\"")).unwrap();
    let out = b.site.cli(&["check-config"]);
    assert_eq!(out.status.code(), Some(78));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("station[0].error_label") && err.contains("{{picking}}"), "{err}");
    // A scale that is not a scale.
    std::fs::write(b.site.config(), text.replace("scale = \"scale\"", "scale = \"printer\"")).unwrap();
    let err = String::from_utf8_lossy(&b.site.cli(&["check-config"]).stderr).into_owned();
    assert!(err.contains("station[0].scale") && err.contains("not a Scale"), "{err}");
}

#[test]
fn only_pickings_start_cycles_no_cycle_without_the_scale_and_a_normal_cycle_warns_nothing() {
    let mut b = bench("pack", "label = \"parcel\"", "");
    let daemon = b.site.start();
    wait_until(Duration::from_secs(10), "all devices connected", || connected(&b.site));

    // An EAN scanned by mistake is not a picking: answered, nothing started.
    b.scale.show(Display::Weight("2.000".into(), true));
    b.scanner.write(b"]E04006381333931\r\n");
    wait_until(Duration::from_secs(10), "the refusal", || daemon.log().contains("is not a picking"));
    std::thread::sleep(Duration::from_millis(500));
    assert!(events(&b.site, "pack").is_empty(), "an EAN started a pack cycle");

    // A normal cycle: the scale is empty right after the picking scan, then the parcel settles.
    b.scale.show(Display::Weight("0.000".into(), true));
    let before = daemon.log().len();
    b.scanner.write(b"WH/OUT/00060\r\n");
    std::thread::sleep(Duration::from_millis(500));
    b.scale.show(Display::Weight("2.480".into(), true));
    wait_until(Duration::from_secs(10), "the pack event", || !events(&b.site, "pack").is_empty());
    std::thread::sleep(Duration::from_millis(300));
    let cycle_log = daemon.log()[before..].to_owned();
    let warnings: Vec<&str> = cycle_log.lines().filter(|l| l.contains("WARN")).collect();
    assert!(warnings.is_empty(), "a normal cycle logged warnings: {warnings:#?}");

    // The scale's cable is pulled: the station refuses to start a cycle, and says why.
    b._ports[0].unplug();
    wait_until(Duration::from_secs(10), "the scale disconnected", || {
        let out = b.site.cli(&["status", "--json"]);
        let status: Value = serde_json::from_slice(&out.stdout).unwrap_or(Value::Null);
        status["devices"]
            .as_array()
            .is_some_and(|d| d.iter().any(|d| d["name"] == "scale" && d["state"] == "disconnected"))
    });
    b.scanner.write(b"WH/OUT/00061\r\n");
    wait_until(Duration::from_secs(10), "the refusal", || daemon.log().contains("The scale is not ready"));
    let refusal = daemon.log().lines().find(|l| l.contains("The scale is not ready")).unwrap().to_owned();
    assert!(refusal.contains("WARN") && refusal.contains("scale is disconnected"), "{refusal}");
    wait_until(Duration::from_secs(10), "status names the refusing station", || {
        String::from_utf8_lossy(&b.site.cli(&["status"]).stdout).contains("refusing new cycles")
    });
    let status = String::from_utf8_lossy(&b.site.cli(&["status"]).stdout).into_owned();
    assert!(status.contains("station st1 (pack)") && status.contains("idle"), "{status}");
    assert_eq!(events(&b.site, "pack").len(), 1, "no cycle started without the scale");
    daemon.stop();
}
