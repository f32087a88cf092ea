//! Stations (`[[station]]`): a scanner, a scale and a label printer at a fixed place working
//! together. A station task listens to its devices (through the live hub, [`crate::devices::live`])
//! and runs one [`workflow`]: pack, count-by-weight, receive, or plain scan forwarding. It stores
//! the events of each cycle with one `correlation_id`, queues labels on its printer (the durable
//! print queue: a printer out of paper holds the label, the event is stored either way), and tells
//! the operator each step's outcome on `…/gateway/<id>/station/<name>`.

pub mod workflow;

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use serde::Deserialize;
use serde_json::json;
use tokio::sync::broadcast::error::RecvError;
use tracing::{info, warn};

use self::workflow::{Action, Rules, ScanInput, Station, Workflow};
use crate::devices::live::{LiveReadings, Signal};
use crate::event::{Event, Payload, Source, Transport, new_event_id};
use crate::printing::LabelConfig;
use crate::shutdown::Shutdown;
use crate::store::print_jobs::{NewPrintJob, PrintJobChange};
use crate::store::{Store, StoreError, until_stored};
use crate::timestamp::Timestamp;
use crate::units::HumanDuration;

#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StationConfig {
    pub name: String,
    pub workflow: Workflow,
    /// The `[[device]]` names of its scanner, scale and printer.
    pub scanner: String,
    pub scale: Option<String>,
    pub printer: Option<String>,
    /// The `[[label]]` printed for a packed parcel (fields: picking, weight, sscc, date, gateway).
    pub label: Option<String>,
    /// A `[[label]]` printed when a step fails (field: message).
    pub error_label: Option<String>,
    /// Receive: a `[[label]]` printed when a pallet's SSCC is scanned (fields: picking, sscc,
    /// date, gateway).
    pub pallet_label: Option<String>,
    #[serde(default = "defaults::cancel")]
    pub cancel_barcode: String,
    #[serde(default = "defaults::done")]
    pub done_barcode: String,
    #[serde(default = "defaults::weight_timeout")]
    pub weight_timeout: HumanDuration,
    #[serde(default = "defaults::stable_readings")]
    pub stable_readings: usize,
    /// Pack: lighter than this (kg) is not a parcel.
    #[serde(default = "defaults::min_weight")]
    pub min_weight: f64,
    /// Count: how far from a whole number of units a weight may be, as a fraction of one unit.
    #[serde(default = "defaults::tolerance")]
    pub tolerance: f64,
    /// Count: kg per unit, by product barcode.
    #[serde(default)]
    pub unit_weights: BTreeMap<String, f64>,
    /// Barcodes that stand for a picking (a label on a tote: `"TOTE-17" = "WH/OUT/00042"`).
    #[serde(default)]
    pub picking_barcodes: BTreeMap<String, String>,
}

mod defaults {
    use crate::units::HumanDuration;
    use std::time::Duration;

    pub fn cancel() -> String {
        "CANCEL".into()
    }
    pub fn done() -> String {
        "DONE".into()
    }
    pub fn weight_timeout() -> HumanDuration {
        HumanDuration(Duration::from_secs(30))
    }
    pub fn stable_readings() -> usize {
        3
    }
    pub fn min_weight() -> f64 {
        0.05
    }
    pub fn tolerance() -> f64 {
        0.2
    }
}

impl StationConfig {
    /// Checks the station against the devices and labels of the config; errors name the key.
    pub fn validate(
        &self,
        devices: &[crate::devices::DeviceConfig],
        labels: &[LabelConfig],
    ) -> Result<(), (&'static str, String)> {
        use firmware_bridge::spec::DeviceKind;
        let device = |key: &'static str, name: &str, kind: DeviceKind| -> Result<(), (&'static str, String)> {
            match devices.iter().find(|d| d.name == name) {
                Some(d) if d.kind == kind => Ok(()),
                Some(d) => Err((key, format!("device `{name}` is a {:?}, not a {kind:?}", d.kind))),
                None => Err((key, format!("there is no [[device]] named `{name}`"))),
            }
        };
        device("scanner", &self.scanner, DeviceKind::Scanner)?;
        if let Some(s) = &self.scale {
            device("scale", s, DeviceKind::Scale)?;
        }
        if let Some(p) = &self.printer {
            device("printer", p, DeviceKind::Printer)?;
        }
        // Each label gets these fields from the station; a placeholder it cannot fill is a mistake.
        let offered: [(&'static str, &Option<String>, &[&str]); 3] = [
            ("label", &self.label, &["picking", "weight", "sscc", "date", "gateway"]),
            ("error_label", &self.error_label, &["message"]),
            ("pallet_label", &self.pallet_label, &["picking", "sscc", "date", "gateway"]),
        ];
        for (key, label, fields) in offered {
            let Some(name) = label else { continue };
            let Some(template) = labels.iter().find(|x| &x.name == name) else {
                return Err((key, format!("there is no [[label]] named `{name}`")));
            };
            let placeholders = firmware_bridge::printer::label::placeholders(template.template()).unwrap_or_default();
            if let Some(unknown) = placeholders.iter().find(|p| !fields.contains(&p.as_str())) {
                return Err((
                    key,
                    format!(
                        "[[label]] `{name}` uses {{{{{unknown}}}}}, which this station does not fill (it offers {})",
                        fields.join(", ")
                    ),
                ));
            }
        }
        if self.workflow == Workflow::Pack && self.scale.is_none() {
            return Err(("scale", "a pack station needs a scale".into()));
        }
        if self.workflow == Workflow::Pack && self.printer.is_some() && self.label.is_none() {
            return Err(("label", "a pack station with a printer needs the [[label]] to print".into()));
        }
        if self.unit_weights.values().any(|w| !(*w > 0.0 && w.is_finite())) {
            return Err(("unit_weights", "unit weights must be positive numbers of kg".into()));
        }
        if !(0.0..0.5).contains(&self.tolerance) {
            return Err(("tolerance", "must be at least 0 and below 0.5 (a fraction of one unit)".into()));
        }
        Ok(())
    }

    fn rules(&self) -> Rules {
        Rules {
            workflow: self.workflow,
            cancel_barcode: self.cancel_barcode.clone(),
            done_barcode: self.done_barcode.clone(),
            weight_timeout_ms: self.weight_timeout.as_millis(),
            stable_readings: self.stable_readings,
            min_weight: self.min_weight,
            tolerance: self.tolerance,
            unit_weights: self.unit_weights.clone(),
            picking_barcodes: self.picking_barcodes.clone(),
            prints: self.printer.is_some() && self.label.is_some(),
            pallet_label: self.printer.is_some() && self.pallet_label.is_some(),
        }
    }
}

/// One running station.
#[derive(Debug, Clone)]
pub struct StationTask {
    pub config: StationConfig,
    pub labels: Vec<LabelConfig>,
    pub gateway: String,
    pub site: String,
}

const HELD: &str = "a station event waits in memory";

impl StationTask {
    pub async fn run(self, store: Store, live: LiveReadings, mut shutdown: Shutdown) -> Result<(), StoreError> {
        let name = self.config.name.clone();
        let mut station = Station::new(self.config.rules());
        let mut signals = live.signals();
        let epoch = Instant::now();
        let mut cycle_seen = 0;
        let mut correlation = new_event_id().to_string();
        let mut errors = 0u32;
        let mut tick = tokio::time::interval(Duration::from_millis(200));
        let mut heartbeat = tokio::time::interval(Duration::from_secs(5));
        info!(station = %name, workflow = ?self.config.workflow, "Station started.");
        loop {
            let now = epoch.elapsed().as_millis() as u64;
            let actions = tokio::select! {
                signal = signals.recv() => match signal {
                    Ok((device, Signal::Scan(payload))) if device == self.config.scanner => station.scan(&ScanInput { payload }, now),
                    Ok((device, Signal::Reading(r))) if Some(&device) == self.config.scale.as_ref() => station.reading(&r, now),
                    Ok(_) => continue,
                    Err(RecvError::Lagged(n)) => {
                        warn!(station = %name, skipped = n, "The station fell behind its devices; some readings were skipped.");
                        continue;
                    }
                    Err(RecvError::Closed) => break,
                },
                _ = tick.tick() => station.tick(now),
                _ = heartbeat.tick() => { shutdown.beat(); continue; }
                _ = shutdown.wait() => break,
            };
            if station.cycle != cycle_seen {
                cycle_seen = station.cycle;
                correlation = new_event_id().to_string();
            }
            for action in actions {
                match action {
                    Action::Store(kind, payload) => {
                        let payload = match Payload::from_json(kind, payload) {
                            Ok(p) => p,
                            Err(e) => {
                                warn!(station = %name, error = %e, "A station event is not valid; not stored.");
                                continue;
                            }
                        };
                        let now = Timestamp::now();
                        let event = Event {
                            id: new_event_id(),
                            gateway: self.gateway.clone(),
                            site: self.site.clone(),
                            source: Source {
                                transport: Transport::Station,
                                device: self.config.scanner.clone(),
                                station: Some(name.clone()),
                            },
                            partition: name.clone(),
                            occurred_at: now,
                            received_at: now,
                            correlation_id: Some(correlation.clone()),
                            payload,
                        };
                        if until_stored(HELD, || store.append_one(event.clone())).await.is_none() {
                            return Err(StoreError::Closed);
                        }
                    }
                    Action::PrintLabel(mut fields) => {
                        let (Some(printer), Some(label)) = (&self.config.printer, &self.config.label) else { continue };
                        fields.insert("date".into(), Timestamp::now().to_string()[..10].to_owned());
                        fields.insert("gateway".into(), self.gateway.clone());
                        self.print(&store, printer, label, &fields, format!("{correlation}-label")).await?;
                    }
                    Action::PrintPallet(mut fields) => {
                        let (Some(printer), Some(label)) = (&self.config.printer, &self.config.pallet_label) else {
                            continue;
                        };
                        let id = format!("{correlation}-pallet-{}", fields.get("sscc").cloned().unwrap_or_default());
                        fields.insert("date".into(), Timestamp::now().to_string()[..10].to_owned());
                        fields.insert("gateway".into(), self.gateway.clone());
                        self.print(&store, printer, label, &fields, id).await?;
                    }
                    Action::PrintError(message) => {
                        let (Some(printer), Some(label)) = (&self.config.printer, &self.config.error_label) else {
                            continue;
                        };
                        errors += 1;
                        let fields = BTreeMap::from([("message".to_owned(), message)]);
                        self.print(&store, printer, label, &fields, format!("{correlation}-error-{errors}")).await?;
                    }
                    Action::Feedback { step, ok, message } => {
                        if ok {
                            info!(station = %name, step, %message, "Station step.");
                        } else {
                            warn!(station = %name, step, %message, "Station step failed.");
                        }
                        let body = json!({"station": name, "step": step, "ok": ok, "message": message, "correlation_id": correlation, "at": Timestamp::now()});
                        live.publish_at(format!("station/{name}"), body.to_string());
                    }
                }
            }
        }
        info!(station = %name, "Station stopped.");
        Ok(())
    }

    async fn print(
        &self,
        store: &Store,
        printer: &str,
        label: &str,
        fields: &BTreeMap<String, String>,
        id: String,
    ) -> Result<(), StoreError> {
        let Some(template) = self.labels.iter().find(|l| l.name == label) else { return Ok(()) };
        let body = match template.render(fields) {
            Ok(b) => b,
            Err(e) => {
                warn!(station = %self.config.name, %label, error = %e, "The station's label cannot be rendered.");
                return Ok(());
            }
        };
        let job = NewPrintJob { id, printer: printer.to_owned(), body, origin: "station".into(), reprint_of: None };
        match until_stored(HELD, || store.print_job(PrintJobChange::Enqueue(job.clone()))).await {
            Some(_) => Ok(()),
            None => Err(StoreError::Closed),
        }
    }
}
