//! The `firmware-bridge` program for a label printer on a remote host: it takes print jobs from
//! `<prefix>/bridge/<printer>/job` (QoS 1, persistent session), prints each one once — only while
//! the printer reports ready — and answers on `…/printed` with `{"id", "status": "printed" |
//! "uncertain", "error"}`. The printer's state goes to the retained `…/state` as for scanners and
//! scales (`connected` with detail `ready`, or `error` with the problems).
//!
//! Once only, across redeliveries and restarts: a journal file (`--state-dir`) records each job
//! id as `sending` (fsync'ed before the first byte is written) and then `printed`. A job whose id
//! is already in the journal is answered again, never printed again; a job caught in `sending`
//! by a crash is answered `uncertain` (the operator decides on a reprint, which is a new job). The
//! MQTT message is acknowledged only after the answer is queued.

use std::collections::{HashMap, VecDeque};
use std::fs::OpenOptions;
use std::io::{BufRead, Write};
use std::path::{Path, PathBuf};
use std::sync::mpsc;

use rumqttc::{Client, Connection, Event, Packet, Publish, QoS};
use serde_json::json;

use crate::device::{DeviceDecoder, DeviceOutput};
use crate::link::{DeviceLink, LinkEvent, LinkOptions, Transport};
use crate::printer::PrinterStatus;
use crate::remote::{self, RemoteState, StateMessage};

/// The leaf jobs arrive on.
pub const JOB: &str = "job";
/// The leaf answers go to.
pub const PRINTED: &str = "printed";

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Recorded {
    Sending,
    Printed,
    Uncertain,
}

/// The job journal: one line per change, `<state> <id>`.
#[derive(Debug)]
struct Journal {
    path: PathBuf,
    jobs: HashMap<String, Recorded>,
}

impl Journal {
    fn open(path: PathBuf) -> Result<Journal, String> {
        let mut jobs = HashMap::new();
        if let Ok(file) = std::fs::File::open(&path) {
            for line in std::io::BufReader::new(file).lines().map_while(Result::ok) {
                let Some((state, id)) = line.split_once(' ') else { continue };
                let state = match state {
                    "sending" => Recorded::Sending,
                    "printed" => Recorded::Printed,
                    _ => Recorded::Uncertain,
                };
                jobs.insert(id.to_owned(), state);
            }
        }
        // A job still `sending` was interrupted: it may or may not have printed.
        let interrupted: Vec<String> =
            jobs.iter().filter(|(_, s)| **s == Recorded::Sending).map(|(id, _)| id.clone()).collect();
        let mut journal = Journal { path, jobs };
        for id in interrupted {
            journal.record(&id, Recorded::Uncertain)?;
        }
        Ok(journal)
    }

    fn record(&mut self, id: &str, state: Recorded) -> Result<(), String> {
        let word = match state {
            Recorded::Sending => "sending",
            Recorded::Printed => "printed",
            Recorded::Uncertain => "uncertain",
        };
        let mut file = OpenOptions::new()
            .create(true)
            .append(true)
            .open(&self.path)
            .map_err(|e| format!("cannot write the job journal {}: {e}", self.path.display()))?;
        file.write_all(format!("{word} {id}\n").as_bytes())
            .and_then(|()| file.sync_data())
            .map_err(|e| format!("cannot write the job journal {}: {e}", self.path.display()))?;
        self.jobs.insert(id.to_owned(), state);
        Ok(())
    }
}

enum Input {
    Link(LinkEvent),
    Job(Publish),
}

/// Runs until the MQTT client stops. `state_dir` holds the job journal.
#[allow(clippy::too_many_arguments)]
pub fn run(
    client: Client,
    mut connection: Connection,
    prefix: &str,
    device: &str,
    transport: Transport,
    decoder: DeviceDecoder,
    options: LinkOptions,
    state_dir: &Path,
) -> Result<(), String> {
    std::fs::create_dir_all(state_dir)
        .map_err(|e| format!("cannot create --state-dir {}: {e}", state_dir.display()))?;
    let mut journal = Journal::open(state_dir.join(format!("{device}.jobs")))?;
    let (tx, rx) = mpsc::sync_channel::<Input>(256);
    let link_tx = tx.clone();
    let link = DeviceLink::spawn(device, transport, decoder, options, move |event| {
        let _ = link_tx.send(Input::Link(event));
    })
    .map_err(|e| format!("cannot start the printer thread: {e}"))?;
    let job_topic = remote::topic(prefix, device, JOB);
    let subscriber = client.clone();
    let filter = job_topic.clone();
    std::thread::Builder::new()
        .name("mqtt".into())
        .spawn(move || {
            let mut failures: u32 = 0;
            for event in connection.iter() {
                match event {
                    Ok(Event::Incoming(Packet::ConnAck(_))) => {
                        failures = 0;
                        eprintln!("firmware-bridge: connected to the broker.");
                        let _ = subscriber.try_subscribe(filter.clone(), QoS::AtLeastOnce);
                    }
                    Ok(Event::Incoming(Packet::Publish(p))) => {
                        if tx.send(Input::Job(p)).is_err() {
                            return;
                        }
                    }
                    Ok(_) => {}
                    Err(e) => {
                        failures += 1;
                        if failures == 1 || failures.is_power_of_two() {
                            let error = crate::bridge::explain_connection_error(&e.to_string());
                            eprintln!("firmware-bridge: {error}; retrying.");
                        }
                        std::thread::sleep(std::time::Duration::from_secs(1));
                    }
                }
            }
        })
        .map_err(|e| format!("cannot start the MQTT thread: {e}"))?;

    let state_topic = remote::topic(prefix, device, remote::STATE);
    let printed_topic = remote::topic(prefix, device, PRINTED);
    let publish_state = |state: RemoteState, detail: String| {
        let body = serde_json::to_string(&StateMessage { state, detail: Some(detail) }).unwrap_or_default();
        client.publish(&state_topic, QoS::AtLeastOnce, true, body).map_err(|e| e.to_string())
    };
    let answer = |id: &str, status: &str, error: Option<&str>| {
        let body = json!({"id": id, "status": status, "error": error}).to_string();
        client.publish(&printed_topic, QoS::AtLeastOnce, false, body).map_err(|e| e.to_string())
    };
    let mut connected = false;
    let mut status: Option<PrinterStatus> = None;
    let mut pending: VecDeque<(String, Vec<u8>, Publish)> = VecDeque::new();
    let mut in_flight: Option<(String, u64, Publish)> = None;
    let mut tag = 0u64;
    for input in rx {
        match input {
            Input::Link(LinkEvent::Connected { .. }) => connected = true,
            Input::Link(LinkEvent::Disconnected { reason }) => {
                connected = false;
                status = None;
                publish_state(RemoteState::Disconnected, reason)?;
            }
            Input::Link(LinkEvent::Unresponsive { reason }) => {
                status = Some(PrinterStatus::no_response());
                publish_state(RemoteState::Unresponsive, format!("offline: {reason}"))?;
            }
            Input::Link(LinkEvent::Output(DeviceOutput::Printer(s))) => {
                let changed = status.as_ref().is_none_or(|old| old.problems != s.problems);
                if changed {
                    if s.is_ready() {
                        publish_state(RemoteState::Connected, "ready".into())?;
                    } else {
                        let words: Vec<String> = s
                            .problems
                            .iter()
                            .map(|p| {
                                serde_json::to_value(p)
                                    .ok()
                                    .and_then(|v| v.as_str().map(|x| x.replace('_', " ")))
                                    .unwrap_or_default()
                            })
                            .collect();
                        publish_state(RemoteState::Error, words.join(", "))?;
                    }
                }
                status = Some(s);
            }
            Input::Link(LinkEvent::Written { tag: t }) => {
                if let Some((id, expected, publish)) = in_flight.take() {
                    if expected == t {
                        journal.record(&id, Recorded::Printed)?;
                        answer(&id, "printed", None)?;
                        let _ = client.ack(&publish);
                    } else {
                        in_flight = Some((id, expected, publish));
                    }
                }
            }
            Input::Link(LinkEvent::NotWritten { tag: t, error }) => {
                if let Some((id, expected, publish)) = in_flight.take() {
                    if expected == t {
                        journal.record(&id, Recorded::Uncertain)?;
                        answer(&id, "uncertain", Some(&error))?;
                        let _ = client.ack(&publish);
                    } else {
                        in_flight = Some((id, expected, publish));
                    }
                }
            }
            Input::Link(_) => {}
            Input::Job(publish) => {
                let parsed: serde_json::Value = serde_json::from_slice(&publish.payload).unwrap_or_default();
                let (Some(id), Some(zpl)) = (parsed["id"].as_str(), parsed["zpl"].as_str()) else {
                    eprintln!("firmware-bridge: a job without id or zpl was ignored.");
                    let _ = client.ack(&publish);
                    continue;
                };
                let already = journal.jobs.get(id).copied();
                let queued =
                    pending.iter().any(|(p, _, _)| p == id) || in_flight.as_ref().is_some_and(|(p, _, _)| p == id);
                match already {
                    Some(Recorded::Printed) => {
                        answer(id, "printed", None)?;
                        let _ = client.ack(&publish);
                    }
                    Some(_) => {
                        answer(id, "uncertain", Some("the bridge stopped while sending it"))?;
                        let _ = client.ack(&publish);
                    }
                    None if queued => {
                        let _ = client.ack(&publish);
                    }
                    None => pending.push_back((id.to_owned(), zpl.as_bytes().to_vec(), publish)),
                }
            }
        }
        let ready = connected && status.as_ref().is_some_and(PrinterStatus::is_ready);
        if ready
            && in_flight.is_none()
            && let Some((id, bytes, publish)) = pending.pop_front()
        {
            journal.record(&id, Recorded::Sending)?;
            tag += 1;
            link.send_tagged(bytes, tag);
            in_flight = Some((id, tag, publish));
        }
    }
    Ok(())
}
