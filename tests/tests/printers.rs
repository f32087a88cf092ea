//! Label printers end to end: jobs over MQTT into the durable queue, a simulated ZPL printer on a
//! pty or on TCP 9100 that reports paper out, head open or nothing at all, and the real daemon
//! killed between accepting a job and printing it. Every label is counted at the printer.

#![allow(clippy::unwrap_used)] // test code: a panic is the failure report

use std::time::Duration;

use dockhand_tests::mqtt::{Mosquitto, Publisher, ReplyListener, mosquitto_available};
use dockhand_tests::printer::{PrinterState, SimulatedPrinter};
use dockhand_tests::pty::VirtualPort;
use dockhand_tests::{Site, wait_until};
use serde_json::{Value, json};

const EXE: &str = env!("CARGO_BIN_EXE_dockhand-e2e");

const LABEL: &str = r#"
[[label]]
name = "parcel"
zpl = "^XA^FO50,50^A0N,40,40^FD{{picking}}^FS^FO50,100^A0N,30,30^FDWeight: {{weight}} kg^FS^XZ"
"#;

fn mqtt(port: u16) -> String {
    format!("[mqtt]\nhost = \"127.0.0.1\"\nport = {port}\n")
}

fn printer(name: &str, at: &str) -> String {
    format!(
        "[[device]]\nname = \"{name}\"\nkind = \"printer\"\n{at}\nstatus_interval = \"100ms\"\nanswer_timeout = \"1s\"\n"
    )
}

fn job(id: &str, picking: &str) -> Vec<u8> {
    json!({"id": id, "template": "parcel", "data": {"picking": picking, "weight": "2.480"}}).to_string().into_bytes()
}

fn device(site: &Site, name: &str) -> Value {
    let out = site.cli(&["status", "--json"]);
    let status: Value = serde_json::from_slice(&out.stdout).unwrap();
    status["devices"].as_array().and_then(|d| d.iter().find(|d| d["name"] == name).cloned()).unwrap_or(Value::Null)
}

fn job_state(site: &Site, id: &str) -> Option<String> {
    let reader = dockhand::store::StoreReader::open(&site.store_path()).ok()?;
    reader.print_job(id).ok()?.map(|(j, _)| j.state.to_string())
}

struct Rig {
    site: Site,
    broker: Mosquitto,
    rt: tokio::runtime::Runtime,
}

fn rig() -> Option<Rig> {
    if !mosquitto_available() {
        return None;
    }
    let site = Site::new(EXE);
    let broker = Mosquitto::start(site.dir.path());
    Some(Rig { site, broker, rt: tokio::runtime::Runtime::new().unwrap() })
}

impl Rig {
    /// Starts the daemon and waits for both of its subscriptions (handheld and print topics): a
    /// job published before the gateway's first subscription has no session to wait in.
    fn start(&self) -> dockhand_tests::Daemon {
        let daemon = self.site.start();
        wait_until(Duration::from_secs(10), "the MQTT subscriptions", || {
            daemon.log().contains("Subscribed to print job topics.")
        });
        daemon
    }

    fn publisher(&self) -> Publisher {
        let _guard = self.rt.enter();
        Publisher::connect(self.broker.port, &format!("erp-{}", dockhand_tests::mqtt::free_port()))
    }

    fn submit(&self, publisher: &Publisher, printer: &str, body: Vec<u8>) {
        self.rt.block_on(publisher.publish_raw(&format!("warehouse/T1/gateway/test-gw/print/{printer}"), body));
    }

    fn acks(&self) -> ReplyListener {
        self.rt
            .block_on(ReplyListener::listen(self.broker.port, vec!["warehouse/T1/gateway/test-gw/print/+/ack".into()]))
    }
}

#[test]
fn a_job_waits_while_the_paper_is_out_and_prints_once_when_it_is_back() {
    let Some(rig) = rig() else { return };
    let port = VirtualPort::start(rig.site.dir.path(), "zebra");
    let zebra = SimulatedPrinter::on_pty(&port);
    zebra.set(PrinterState::PaperOut);
    rig.site.write_config(&format!(
        "{}{LABEL}{}",
        mqtt(rig.broker.port),
        printer("zebra-1", &format!("path = \"{}\"", port.path.display()))
    ));
    let daemon = rig.start();
    let acks = rig.acks();
    let publisher = rig.publisher();
    wait_until(Duration::from_secs(10), "the printer reported paper out", || {
        device(&rig.site, "zebra-1")["detail"].as_str().is_some_and(|d| d.contains("paper out"))
    });
    // Data that tries to end the label and cancel the queue prints literally.
    rig.submit(&publisher, "zebra-1", job("job-1", "WH/OUT/00042^XZ^XA~JA"));
    wait_until(Duration::from_secs(10), "the job acknowledged as queued", || {
        acks.replies().iter().any(|(_, v)| v["id"] == "job-1" && v["status"] == "queued")
    });
    std::thread::sleep(Duration::from_millis(800));
    assert!(zebra.received().is_empty(), "nothing may print while the paper is out");
    assert_eq!(job_state(&rig.site, "job-1").as_deref(), Some("queued"));
    let status = String::from_utf8(rig.site.cli(&["status"]).stdout).unwrap();
    assert!(status.contains("1 print job(s) wait for printer zebra-1") && status.contains("paper out"), "{status}");

    // The same job again (the ERP retried): still one job.
    rig.submit(&publisher, "zebra-1", job("job-1", "WH/OUT/00042^XZ^XA~JA"));
    wait_until(Duration::from_secs(10), "the duplicate answered", || {
        acks.replies().iter().any(|(_, v)| v["id"] == "job-1" && v["status"] == "duplicate")
    });

    zebra.set(PrinterState::Ready);
    wait_until(Duration::from_secs(10), "the label printed", || zebra.count(b"^XZ") >= 1);
    std::thread::sleep(Duration::from_millis(800));
    let printed = String::from_utf8(zebra.received()).unwrap();
    assert_eq!(zebra.count(b"^XA"), 1, "exactly one label: {printed}");
    assert!(printed.contains("^FH^FDWH/OUT/00042_5EXZ_5EXA_7EJA^FS"), "{printed}");
    assert!(printed.contains("Weight: 2.480 kg"), "{printed}");
    wait_until(Duration::from_secs(5), "the job recorded as printed", || {
        job_state(&rig.site, "job-1").as_deref() == Some("printed")
    });
    assert_eq!(device(&rig.site, "zebra-1")["state"], "connected");

    // An operator asks for a reprint: exactly one more label.
    let out = rig.site.cli(&["print", "reprint", "job-1"]);
    assert!(out.status.success(), "{out:?}");
    wait_until(Duration::from_secs(10), "the reprint", || zebra.count(b"^XA") == 2);
    let list = String::from_utf8(rig.site.cli(&["print", "list"]).stdout).unwrap();
    assert!(list.contains("job-1-reprint-1") && list.contains("reprint of job-1"), "{list}");
    daemon.stop();
}

#[test]
fn tcp_9100_printer_head_open_then_closed() {
    let Some(rig) = rig() else { return };
    let zebra = SimulatedPrinter::on_tcp();
    zebra.set(PrinterState::HeadOpen);
    let address = format!("transport = \"tcp\"\naddress = \"127.0.0.1:{}\"", zebra.port.unwrap());
    rig.site.write_config(&format!("{}{LABEL}{}", mqtt(rig.broker.port), printer("net-1", &address)));
    let daemon = rig.start();
    let publisher = rig.publisher();
    wait_until(Duration::from_secs(10), "head open reported", || {
        device(&rig.site, "net-1")["detail"].as_str().is_some_and(|d| d.contains("head open"))
    });
    for i in 0..3 {
        rig.submit(&publisher, "net-1", job(&format!("tcp-{i}"), &format!("WH/OUT/{i:05}")));
    }
    wait_until(Duration::from_secs(10), "three jobs queued", || {
        (0..3).all(|i| job_state(&rig.site, &format!("tcp-{i}")).as_deref() == Some("queued"))
    });
    assert!(zebra.received().is_empty());
    zebra.set(PrinterState::Ready);
    wait_until(Duration::from_secs(10), "three labels", || zebra.count(b"^XA") == 3);
    std::thread::sleep(Duration::from_millis(500));
    let printed = String::from_utf8(zebra.received()).unwrap();
    assert_eq!(zebra.count(b"^XA"), 3, "{printed}");
    // Oldest first.
    let pos = |s: &str| printed.find(s).unwrap();
    assert!(pos("WH/OUT/00000") < pos("WH/OUT/00001") && pos("WH/OUT/00001") < pos("WH/OUT/00002"));
    // The commissioning check: a test label, and the printer's state.
    let out = rig.site.cli(&["print-test", "net-1"]);
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success() && text.contains("✓ sent to net-1") && text.contains("connected (ready)"), "{text}");
    assert!(String::from_utf8(zebra.received()).unwrap().contains("dockhand test label"));
    // A misspelt printer: the error lists the printers that exist.
    let out = rig.site.cli(&["print-test", "net1"]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success() && err.contains("no printer named `net1`") && err.contains("net-1"), "{err}");
    // A test label that cannot print within 15 s is taken back: it never prints later with an
    // old timestamp.
    zebra.set(PrinterState::HeadOpen);
    wait_until(Duration::from_secs(10), "head open reported", || {
        device(&rig.site, "net-1")["detail"].as_str().is_some_and(|d| d.contains("head open"))
    });
    let out = rig.site.cli(&["print-test", "net-1"]);
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(!out.status.success() && text.contains("head open") && text.contains("taken back"), "{text}");
    zebra.set(PrinterState::Ready);
    std::thread::sleep(Duration::from_secs(2));
    assert_eq!(zebra.count(b"dockhand test label"), 1, "the withdrawn test label printed after all");
    daemon.stop();
    // With the daemon stopped: said at once, and nothing is queued.
    let started = std::time::Instant::now();
    let out = rig.site.cli(&["print-test", "net-1"]);
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        !out.status.success() && text.contains("daemon is not running") && text.contains("Nothing was queued"),
        "{text}"
    );
    assert!(started.elapsed() < Duration::from_secs(5), "took {:?}", started.elapsed());
    let list = String::from_utf8_lossy(&rig.site.cli(&["print", "list"]).stdout).into_owned();
    assert!(!list.lines().any(|l| l.starts_with("queued") && l.contains("test-net-1")), "{list}");
}

#[test]
fn a_job_accepted_before_a_kill_9_prints_once_after_the_restart() {
    let Some(rig) = rig() else { return };
    let port = VirtualPort::start(rig.site.dir.path(), "zebra");
    let zebra = SimulatedPrinter::on_pty(&port);
    zebra.set(PrinterState::PaperOut);
    rig.site.write_config(&format!(
        "{}{LABEL}{}",
        mqtt(rig.broker.port),
        printer("zebra-1", &format!("path = \"{}\"", port.path.display()))
    ));
    let daemon = rig.start();
    let acks = rig.acks();
    let publisher = rig.publisher();
    rig.submit(&publisher, "zebra-1", job("crash-1", "WH/OUT/00077"));
    wait_until(Duration::from_secs(10), "the job acknowledged", || {
        acks.replies().iter().any(|(_, v)| v["id"] == "crash-1" && v["status"] == "queued")
    });
    daemon.kill9();
    zebra.set(PrinterState::Ready);
    std::thread::sleep(Duration::from_millis(300));
    assert!(zebra.received().is_empty(), "nothing printed while dockhand was down");
    let daemon = rig.start();
    wait_until(Duration::from_secs(10), "the label after the restart", || zebra.count(b"^XA") == 1);
    std::thread::sleep(Duration::from_millis(1000));
    assert_eq!(zebra.count(b"^XA"), 1, "printed exactly once");
    assert_eq!(job_state(&rig.site, "crash-1").as_deref(), Some("printed"));
    daemon.stop();
}

#[test]
fn a_printer_that_never_answers_holds_its_jobs_and_not_the_others() {
    let Some(rig) = rig() else { return };
    let mute_port = VirtualPort::start(rig.site.dir.path(), "mute");
    let good_port = VirtualPort::start(rig.site.dir.path(), "good");
    let mute = SimulatedPrinter::on_pty(&mute_port);
    mute.set(PrinterState::Silent);
    let good = SimulatedPrinter::on_pty(&good_port);
    rig.site.write_config(&format!(
        "{}{LABEL}{}{}",
        mqtt(rig.broker.port),
        printer("mute-1", &format!("path = \"{}\"", mute_port.path.display())),
        printer("good-1", &format!("path = \"{}\"", good_port.path.display()))
    ));
    let daemon = rig.start();
    let acks = rig.acks();
    let publisher = rig.publisher();
    rig.submit(&publisher, "mute-1", job("to-mute", "WH/OUT/1"));
    rig.submit(&publisher, "good-1", job("to-good", "WH/OUT/2"));
    // A job for a printer that does not exist is refused with the reason, and kept.
    rig.submit(&publisher, "nope", job("to-nowhere", "WH/OUT/3"));
    wait_until(Duration::from_secs(10), "the good printer printed", || good.count(b"^XA") == 1);
    wait_until(Duration::from_secs(10), "the mute printer reported offline", || {
        device(&rig.site, "mute-1")["state"] == "error"
    });
    assert!(mute.received().is_empty());
    assert!(*mute.status_requests.lock().unwrap() >= 3, "it kept asking");
    assert_eq!(job_state(&rig.site, "to-mute").as_deref(), Some("queued"));
    let status = String::from_utf8(rig.site.cli(&["status"]).stdout).unwrap();
    assert!(status.contains("print job(s) wait for printer mute-1") && status.contains("offline"), "{status}");
    wait_until(Duration::from_secs(10), "the refusal", || {
        acks.replies().iter().any(|(_, v)| v["id"] == "to-nowhere" && v["status"] == "rejected")
    });
    let dlq = String::from_utf8(rig.site.cli(&["dlq", "list"]).stdout).unwrap();
    assert!(dlq.contains("no printer named `nope`") && dlq.contains("its printers:"), "{dlq}");
    // It comes back: the waiting job prints.
    mute.set(PrinterState::Ready);
    wait_until(Duration::from_secs(10), "the waiting job", || mute.count(b"^XA") == 1);
    daemon.stop();
}

#[test]
fn a_stored_format_is_defined_once_per_connection_and_labels_carry_only_data() {
    let Some(rig) = rig() else { return };
    let port = VirtualPort::start(rig.site.dir.path(), "zebra");
    let zebra = SimulatedPrinter::on_pty(&port);
    let stored = LABEL.replace("name = \"parcel\"", "name = \"parcel\"\nstore_as = \"PARCEL\"");
    rig.site.write_config(&format!(
        "{}{stored}{}",
        mqtt(rig.broker.port),
        printer("zebra-1", &format!("path = \"{}\"", port.path.display()))
    ));
    let daemon = rig.start();
    let publisher = rig.publisher();
    rig.submit(&publisher, "zebra-1", job("sf-1", "WH/OUT/00100"));
    rig.submit(&publisher, "zebra-1", job("sf-2", "WH/OUT/00101~JA"));
    wait_until(Duration::from_secs(10), "two recalls", || zebra.count(b"^XFR:PARCEL.ZPL") == 2);
    let printed = String::from_utf8(zebra.received()).unwrap();
    assert_eq!(zebra.count(b"^DFR:PARCEL.ZPL"), 1, "{printed}");
    assert!(printed.find("^DFR:PARCEL.ZPL").unwrap() < printed.find("^XFR:PARCEL.ZPL").unwrap(), "defined first");
    assert!(printed.contains("^FN1^FH^FDWH/OUT/00100^FS^FN2^FH^FDWeight: 2.480 kg^FS"), "{printed}");
    assert!(printed.contains("WH/OUT/00101_7EJA"), "escaped in recalls too: {printed}");
    daemon.stop();
}

const BRIDGE: &str = env!("CARGO_BIN_EXE_firmware-bridge-e2e");

fn start_printer_bridge(rig: &Rig, port: &VirtualPort) -> std::process::Child {
    std::process::Command::new(BRIDGE)
        .args(["--broker", &format!("127.0.0.1:{}", rig.broker.port), "--site", "T1", "--device", "remote-zebra"])
        .args(["--kind", "printer", "--status-interval-ms", "100", "--state-dir"])
        .arg(rig.site.path("bridge-state"))
        .arg("--path")
        .arg(&port.path)
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap()
}

#[test]
fn a_printer_behind_a_firmware_bridge_prints_each_job_once() {
    let Some(rig) = rig() else { return };
    let port = VirtualPort::start(rig.site.dir.path(), "remote-zebra");
    let zebra = SimulatedPrinter::on_pty(&port);
    zebra.set(PrinterState::PaperOut);
    rig.site.write_config(&format!(
        "{}{LABEL}[[device]]\nname = \"remote-zebra\"\nkind = \"printer\"\ntransport = \"mqtt\"\n",
        mqtt(rig.broker.port)
    ));
    let mut bridge = start_printer_bridge(&rig, &port);
    let daemon = rig.start();
    let publisher = rig.publisher();
    wait_until(Duration::from_secs(15), "paper out reported through the bridge", || {
        device(&rig.site, "remote-zebra")["detail"].as_str().is_some_and(|d| d.contains("paper out"))
    });
    rig.submit(&publisher, "remote-zebra", job("rb-1", "WH/OUT/00200"));
    std::thread::sleep(Duration::from_millis(800));
    assert!(zebra.received().is_empty(), "held while the paper is out");
    zebra.set(PrinterState::Ready);
    wait_until(Duration::from_secs(10), "printed through the bridge", || zebra.count(b"^XA") == 1);
    wait_until(Duration::from_secs(10), "recorded as printed", || {
        job_state(&rig.site, "rb-1").as_deref() == Some("printed")
    });

    // The bridge hangs (SIGSTOP: its connection stays up, so dockhand still sees it ready) while a
    // job is sent to it; dockhand is killed and restarted, so the job is published a second time;
    // then the bridge resumes with both copies waiting: one label.
    let signal = |sig: i32| {
        #[allow(unsafe_code)]
        // SAFETY: kill(2) touches no memory of ours; the pid is our own child.
        unsafe {
            libc::kill(bridge.id() as i32, sig);
        }
    };
    signal(libc::SIGSTOP);
    rig.submit(&publisher, "remote-zebra", job("rb-2", "WH/OUT/00201"));
    wait_until(Duration::from_secs(10), "the job sent to the bridge", || {
        job_state(&rig.site, "rb-2").as_deref() == Some("sending")
    });
    daemon.kill9();
    let daemon = rig.start();
    std::thread::sleep(Duration::from_millis(800));
    signal(libc::SIGCONT);
    wait_until(Duration::from_secs(15), "the second label", || zebra.count(b"^XA") == 2);
    wait_until(Duration::from_secs(10), "recorded as printed", || {
        job_state(&rig.site, "rb-2").as_deref() == Some("printed")
    });
    std::thread::sleep(Duration::from_millis(1000));
    assert_eq!(zebra.count(b"WH/OUT/00201"), 1, "printed once: {}", String::from_utf8_lossy(&zebra.received()));
    daemon.stop();
    let _ = bridge.kill();
    let _ = bridge.wait();
}

/// `check-config --connect` asks a printer for its status the way the daemon does: a ready ZPL
/// printer on TCP passes, one out of paper passes with the problem named, a silent one fails with
/// a hint for a network port (no baud rate). The check writes nothing: the missing store folder and
/// sink folder are judged, not created.
#[test]
fn check_config_connect_asks_each_printer_for_its_status_and_creates_nothing() {
    let site = Site::new(EXE);
    let ready = SimulatedPrinter::on_tcp();
    let no_paper = SimulatedPrinter::on_tcp();
    no_paper.set(PrinterState::PaperOut);
    let silent = SimulatedPrinter::on_tcp();
    silent.set(PrinterState::Silent);
    let at = |p: &SimulatedPrinter| format!("transport = \"tcp\"\naddress = \"127.0.0.1:{}\"", p.port.unwrap());
    std::fs::write(
        site.config(),
        format!(
            "[gateway]\nid = \"test-gw\"\nsite = \"T1\"\n[store]\npath = \"state/dockhand/store.db\"\n\
             [[sink]]\nname = \"file\"\ntype = \"file\"\npath = \"spool/events.jsonl\"\n{}{}{}",
            printer("zebra-ready", &at(&ready)),
            printer("zebra-paper", &at(&no_paper)),
            printer("zebra-silent", &at(&silent)),
        ),
    )
    .unwrap();
    let out = site.cli(&["check-config", "--connect"]);
    let text = String::from_utf8_lossy(&out.stdout);
    let line = |start: &str| text.lines().find(|l| l.starts_with(start)).unwrap_or_else(|| panic!("{start}: {text}"));
    assert_eq!(
        line("✓ device zebra-ready"),
        format!("✓ device zebra-ready: tcp://127.0.0.1:{} answers: ready", ready.port.unwrap())
    );
    assert!(
        line("✓ device zebra-paper").ends_with("answers, but is not ready: paper out (fix it at the printer)"),
        "{text}"
    );
    let silent_line = line("✗ device zebra-silent");
    assert!(silent_line.contains("no answer to \"~HS\"") && silent_line.contains("9100"), "{text}");
    assert!(!silent_line.contains("baud"), "a TCP printer has no baud rate: {text}");
    assert!(line("✓ store").contains("not created yet"), "{text}");
    assert!(line("✓ sink file (file)").contains("not created yet"), "{text}");
    assert!(!out.status.success(), "the silent printer fails the check");
    assert!(!site.path("state").exists() && !site.path("spool").exists(), "the check created folders");
}
