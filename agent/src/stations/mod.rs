//! Stations (`[[station]]`): a scanner, a scale and a label printer at a fixed place working
//! together. A station task takes its scanner's scans from the store (committed there by the
//! device task before anything was acknowledged, see [`handoff`] and
//! [`crate::store::station_inputs`]), follows its scale's live readings, and runs one
//! [`workflow`]: pack, count-by-weight, receive, or plain scan forwarding.
//!
//! Each step — one scan, or the reading or timeout that completes a weighing — is committed in one
//! transaction: the events it produced (one `correlation_id` per cycle), the labels it queued on
//! the durable print queue, the scan it consumed and the station's new state. Only then is the
//! operator told the outcome on `…/gateway/<id>/station/<name>`. After a kill or a reload the
//! station resumes from its last commit (a weighing in progress weighs again); a saved cycle that
//! does not fit the new config is cancelled visibly (log, feedback, counter).

pub(crate) mod workflow;

use std::cmp::Ordering;
use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use firmware_bridge::decimal::Decimal;
use serde::{Deserialize, Deserializer};
use serde_json::json;
use tokio::sync::watch;
use tracing::{error, info, warn};

use self::workflow::{Action, PickingPattern, Rules, Saved, ScanInput, Station, Tone, Workflow};
use crate::devices::handoff::{Handoff, ScaleFeed};
use crate::devices::live::LiveReadings;
use crate::event::{DeviceState, Event, EventId, Payload, Source, Transport, new_event_id};
use crate::printing::LabelConfig;
use crate::shutdown::Shutdown;
use crate::store::print_jobs::NewPrintJob;
use crate::store::station_inputs::{SavedStation, StationInput};
use crate::store::{StationStep, Store, StoreError, StoreReader, until_stored};
use crate::task::TaskError;
use crate::timestamp::Timestamp;
use crate::units::{ConfigIssue, HumanDuration};

#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct StationConfig {
    pub(crate) name: String,
    pub(crate) workflow: Workflow,
    /// The `[[device]]` names of its scanner, scale and printer.
    pub(crate) scanner: String,
    pub(crate) scale: Option<String>,
    pub(crate) printer: Option<String>,
    /// The `[[label]]` printed for a packed parcel (fields: picking, weight, sscc, date, gateway).
    pub(crate) label: Option<String>,
    /// A `[[label]]` printed when a step fails (field: message).
    pub(crate) error_label: Option<String>,
    /// Receive: a `[[label]]` printed when a pallet's SSCC is scanned (fields: picking, sscc,
    /// date, gateway).
    pub(crate) pallet_label: Option<String>,
    #[serde(default = "defaults::cancel")]
    pub(crate) cancel_barcode: String,
    #[serde(default = "defaults::done")]
    pub(crate) done_barcode: String,
    #[serde(default = "defaults::weight_timeout")]
    pub(crate) weight_timeout: HumanDuration,
    #[serde(default = "defaults::stable_readings")]
    pub(crate) stable_readings: usize,
    /// Pack: lighter than this (kg) is not a parcel.
    #[serde(default = "defaults::min_weight", deserialize_with = "written_decimal")]
    pub(crate) min_weight: Decimal,
    /// Count: how far from a whole number of units a weight may be, as a fraction of one unit.
    #[serde(default = "defaults::tolerance", deserialize_with = "written_decimal")]
    pub(crate) tolerance: Decimal,
    /// Count: kg per unit, by product barcode.
    #[serde(default, deserialize_with = "written_decimals")]
    pub(crate) unit_weights: BTreeMap<String, Decimal>,
    /// Barcodes that stand for a picking (a label on a tote: `"TOTE-17" = "WH/OUT/00042"`).
    #[serde(default)]
    pub(crate) picking_barcodes: BTreeMap<String, String>,
    /// Pack/receive: a regular expression a scanned picking name matches (default: Odoo's
    /// `WH/OUT/00042` shape, see [`PickingPattern::DEFAULT`]). Other scans are answered
    /// "not a picking" instead of starting a cycle.
    pub(crate) picking_pattern: Option<String>,
}

/// A number as a technician writes it in TOML (`0.05`, `3`, or `"0.05"`), kept as the exact
/// decimal they wrote.
#[derive(Deserialize)]
#[serde(untagged)]
enum WrittenNumber {
    Int(i64),
    Float(f64),
    Text(String),
}

impl WrittenNumber {
    fn decimal<E: serde::de::Error>(self) -> Result<Decimal, E> {
        match self {
            WrittenNumber::Int(i) => Ok(Decimal::from_int(i)),
            WrittenNumber::Float(f) => Decimal::from_written_float(f).map_err(E::custom),
            WrittenNumber::Text(t) => Decimal::parse(&t).map_err(E::custom),
        }
    }
}

fn written_decimal<'de, D: Deserializer<'de>>(d: D) -> Result<Decimal, D::Error> {
    WrittenNumber::deserialize(d)?.decimal()
}

fn written_decimals<'de, D: Deserializer<'de>>(d: D) -> Result<BTreeMap<String, Decimal>, D::Error> {
    BTreeMap::<String, WrittenNumber>::deserialize(d)?.into_iter().map(|(k, v)| Ok((k, v.decimal()?))).collect()
}

mod defaults {
    use crate::units::HumanDuration;
    use std::time::Duration;

    pub(crate) fn cancel() -> String {
        "CANCEL".into()
    }
    pub(crate) fn done() -> String {
        "DONE".into()
    }
    pub(crate) fn weight_timeout() -> HumanDuration {
        HumanDuration(Duration::from_secs(30))
    }
    pub(crate) fn stable_readings() -> usize {
        3
    }
    pub(crate) fn min_weight() -> firmware_bridge::decimal::Decimal {
        firmware_bridge::decimal::Decimal::parse("0.05").expect("a constant decimal")
    }
    pub(crate) fn tolerance() -> firmware_bridge::decimal::Decimal {
        firmware_bridge::decimal::Decimal::parse("0.2").expect("a constant decimal")
    }
}

impl StationConfig {
    /// Checks the station against the devices and labels of the config; errors name the key.
    pub(crate) fn validate(
        &self,
        devices: &[crate::devices::DeviceConfig],
        labels: &[LabelConfig],
    ) -> Result<(), ConfigIssue> {
        self.validate_own(devices)?;
        self.validate_labels(labels)
    }

    /// Each label gets these fields from the station. A placeholder it cannot fill is either the
    /// wrong label in a slot (`{{picking}}` in the error label: the field exists, for another slot)
    /// and reported at the station's key, or a mistake in the `[[label]]` itself (`{{pickng}}`, no
    /// slot has it) and reported at the label's `zpl`/`file`. Each message names the other place.
    fn validate_labels(&self, labels: &[LabelConfig]) -> Result<(), ConfigIssue> {
        let offered: [(&'static str, &Option<String>, &[&str]); 3] = [
            ("label", &self.label, &["picking", "weight", "sscc", "date", "gateway"]),
            ("error_label", &self.error_label, &["message"]),
            ("pallet_label", &self.pallet_label, &["picking", "sscc", "date", "gateway"]),
        ];
        for (key, label, fields) in offered {
            let Some(name) = label else { continue };
            let Some((index, template)) = labels.iter().enumerate().find(|(_, x)| &x.name == name) else {
                return Err(ConfigIssue::new(key, format!("there is no [[label]] named `{name}`")));
            };
            let placeholders = firmware_bridge::printer::label::placeholders(template.template()).unwrap_or_default();
            let Some(unknown) = placeholders.iter().find(|p| !fields.contains(&p.as_str())) else { continue };
            let written_in = format!("label[{index}].{}", if template.file.is_some() { "file" } else { "zpl" });
            let other_slot = offered.iter().find(|(_, _, f)| f.contains(&unknown.as_str())).map(|(k, _, _)| *k);
            return Err(match other_slot {
                Some(slot) => ConfigIssue::new(
                    key,
                    format!(
                        "[[label]] `{name}` uses {{{{{unknown}}}}}, which a station fills for its {slot} but not its {key} (it offers {}): choose another label here, or change {written_in}",
                        fields.join(", ")
                    ),
                ),
                None => ConfigIssue::new(
                    written_in,
                    format!(
                        "{{{{{unknown}}}}} is not a field any station fills; station `{}` prints this label as its {key}, which offers {}",
                        self.name,
                        fields.join(", ")
                    ),
                ),
            });
        }
        Ok(())
    }

    fn validate_own(&self, devices: &[crate::devices::DeviceConfig]) -> Result<(), ConfigIssue> {
        use firmware_bridge::spec::DeviceKind;
        let device = |key: &'static str, name: &str, kind: DeviceKind| -> Result<(), ConfigIssue> {
            match devices.iter().find(|d| d.name == name) {
                Some(d) if d.kind == kind => Ok(()),
                Some(d) => Err(ConfigIssue::new(key, format!("device `{name}` is a {:?}, not a {kind:?}", d.kind))),
                None => Err(ConfigIssue::new(key, format!("there is no [[device]] named `{name}`"))),
            }
        };
        device("scanner", &self.scanner, DeviceKind::Scanner)?;
        if let Some(s) = &self.scale {
            device("scale", s, DeviceKind::Scale)?;
        }
        if let Some(p) = &self.printer {
            device("printer", p, DeviceKind::Printer)?;
        }
        if self.workflow == Workflow::Pack && self.scale.is_none() {
            return Err(ConfigIssue::new("scale", "a pack station needs a scale"));
        }
        if self.workflow == Workflow::Pack && self.printer.is_some() && self.label.is_none() {
            return Err(ConfigIssue::new("label", "a pack station with a printer needs the [[label]] to print"));
        }
        let zero = Decimal::from_int(0);
        if let Some((product, _)) =
            self.unit_weights.iter().find(|(_, w)| w.cmp_value(&zero) != Some(Ordering::Greater))
        {
            return Err(ConfigIssue::new(
                "unit_weights",
                format!("the unit weight of `{product}` must be a positive number of kg"),
            ));
        }
        let half = Decimal::parse("0.5").expect("a constant decimal");
        if self.tolerance.is_negative() || self.tolerance.cmp_value(&half) != Some(Ordering::Less) {
            return Err(ConfigIssue::new("tolerance", "must be at least 0 and below 0.5 (a fraction of one unit)"));
        }
        if self.min_weight.is_negative() {
            return Err(ConfigIssue::new("min_weight", "must be 0 or more kg"));
        }
        if let Some(p) = &self.picking_pattern {
            PickingPattern::new(p)
                .map_err(|e| ConfigIssue::new("picking_pattern", format!("not a valid regular expression: {e}")))?;
        }
        Ok(())
    }

    fn rules(&self) -> Result<Rules, String> {
        let picking_pattern = match &self.picking_pattern {
            Some(p) => PickingPattern::new(p)?,
            None => PickingPattern::default(),
        };
        Ok(Rules {
            workflow: self.workflow,
            cancel_barcode: self.cancel_barcode.clone(),
            done_barcode: self.done_barcode.clone(),
            weight_timeout_ms: self.weight_timeout.as_millis(),
            stable_readings: self.stable_readings,
            min_weight: self.min_weight.clone(),
            tolerance: self.tolerance.clone(),
            unit_weights: self.unit_weights.clone(),
            picking_barcodes: self.picking_barcodes.clone(),
            picking_pattern,
            prints: self.printer.is_some() && self.label.is_some(),
            pallet_label: self.printer.is_some() && self.pallet_label.is_some(),
        })
    }
}

/// One running station.
#[derive(Debug, Clone)]
pub(crate) struct StationTask {
    pub(crate) config: StationConfig,
    pub(crate) labels: Vec<LabelConfig>,
    pub(crate) gateway: String,
    pub(crate) site: String,
}

const HELD: &str = "a station step waits in memory";
/// How long a starting station waits for its scale to report before it takes scans.
const SCALE_GRACE: Duration = Duration::from_secs(5);
/// Scans read from the store at a time: what bounds a station's memory however far behind it is.
const PAGE: usize = 64;

/// The saved form of a station: its workflow state plus the cycle it is in.
#[derive(Debug, serde::Serialize, Deserialize)]
struct SavedCycle {
    cycle: u64,
    correlation: String,
    state: Saved,
}

/// What one step produced, before it is committed.
struct Effects {
    events: Vec<Event>,
    print_jobs: Vec<NewPrintJob>,
    feedback: Vec<(&'static str, Tone, String)>,
}

/// The station task's running state.
struct Running {
    station: Station,
    correlation: String,
    /// The cycle `correlation` belongs to.
    correlation_cycle: u64,
    errors: u32,
    epoch: Instant,
}

impl StationTask {
    pub(crate) async fn run(
        self,
        store: Store,
        live: LiveReadings,
        handoff: Handoff,
        mut shutdown: Shutdown,
    ) -> Result<(), TaskError> {
        let name = self.config.name.clone();
        let rules = match self.config.rules() {
            Ok(r) => r,
            Err(e) => {
                error!(station = %name, error = %e, "The station cannot start: fix its [[station]] entry.");
                shutdown.wait().await;
                return Ok(());
            }
        };
        let reader = store.reader()?;
        let mut run = self.resume(&reader, rules, &live).await?;
        let doorbell = handoff.scans(&name);
        let mut scale = self.config.scale.as_ref().map(|s| handoff.scale(s));
        let mut seen_readings = 0;
        if let Some(rx) = &mut scale {
            // Just after a start the scale's device task has not reported yet; scans that waited
            // through the restart are better weighed than refused, so give it a moment.
            let reported = tokio::time::timeout(SCALE_GRACE, rx.wait_for(|f| f.state.is_some()));
            tokio::select! {
                _ = reported => {}
                _ = shutdown.wait() => return Ok(()),
            }
            let feed = rx.borrow_and_update().clone();
            seen_readings = feed.readings;
            run.station.set_scale_problem(self.scale_problem(&feed));
        }
        // The state is saved at once, so `status` shows the station from its start.
        self.commit(&store, &live, &mut run, None, Vec::new()).await?;
        let mut tick = tokio::time::interval(Duration::from_millis(200));
        let mut heartbeat = tokio::time::interval(Duration::from_secs(5));
        let mut more = true;
        info!(station = %name, workflow = ?self.config.workflow, "Station started.");
        loop {
            if more {
                let station = name.clone();
                let page = reader.run(move |r| r.station_inputs(&station, PAGE)).await?;
                more = page.len() == PAGE;
                for input in page {
                    self.consume(&store, &live, &mut run, input).await?;
                    shutdown.beat();
                }
            }
            tokio::select! {
                biased;
                _ = shutdown.wait() => break,
                _ = std::future::ready(()), if more => {}
                _ = doorbell.notified() => more = true,
                feed = scale_changed(&mut scale) => {
                    let Some(feed) = feed else { continue };
                    let problem = self.scale_problem(&feed);
                    let changed = problem.as_deref() != run.station.scale_problem();
                    run.station.set_scale_problem(problem);
                    let mut actions = Vec::new();
                    if feed.readings != seen_readings {
                        seen_readings = feed.readings;
                        if let Some(reading) = &feed.reading {
                            let now = run.now();
                            actions = run.station.reading(reading, now);
                        }
                    }
                    if changed || !actions.is_empty() {
                        self.commit(&store, &live, &mut run, None, actions).await?;
                    }
                }
                _ = tick.tick() => {
                    let now = run.now();
                    let actions = run.station.tick(now);
                    if !actions.is_empty() {
                        self.commit(&store, &live, &mut run, None, actions).await?;
                    }
                }
                _ = heartbeat.tick() => shutdown.beat(),
            }
        }
        info!(station = %name, "Station stopped.");
        Ok(())
    }

    /// Picks up where the last commit left the station.
    async fn resume(&self, reader: &StoreReader, rules: Rules, live: &LiveReadings) -> Result<Running, StoreError> {
        let name = self.config.name.clone();
        let saved = reader.run(move |r| r.station_state(&name)).await?;
        let epoch = Instant::now();
        let fresh = |rules: Rules| Running {
            station: Station::new(rules),
            correlation: new_event_id().to_string(),
            correlation_cycle: 0,
            errors: 0,
            epoch,
        };
        let Some(saved) = saved else { return Ok(fresh(rules)) };
        let name = &self.config.name;
        let parsed: Option<SavedCycle> = serde_json::from_str(&saved.state).ok();
        let Some(cycle) = parsed else {
            warn!(station = %name, state = %saved.state, "The station's saved state cannot be read; starting idle.");
            return Ok(fresh(rules));
        };
        if cycle.state == Saved::Idle {
            let mut run = fresh(rules);
            run.station.cycle = cycle.cycle;
            run.correlation_cycle = cycle.cycle;
            run.correlation = cycle.correlation;
            return Ok(run);
        }
        let summary = cycle.state.summary();
        match Station::resume(rules.clone(), cycle.state, cycle.cycle, 0) {
            Some(station) => {
                crate::counters::STATION_CYCLES_RESUMED.add();
                info!(station = %name, %summary, "The station resumed the cycle it was in before the restart.");
                let run = Running {
                    station,
                    correlation: cycle.correlation,
                    correlation_cycle: cycle.cycle,
                    errors: 0,
                    epoch,
                };
                let message = format!("Resumed after a restart: {summary}.");
                publish(live, name, "resumed", Tone::Ok, &message, &run.correlation);
                Ok(run)
            }
            None => {
                crate::counters::STATION_CYCLES_CANCELLED.add();
                warn!(station = %name, %summary, was = %saved.workflow, now = self.config.workflow.as_str(), state = %saved.state, "A cycle interrupted by a restart was cancelled: the station's workflow changed. Scan it again.");
                let message = format!(
                    "The cycle in progress ({summary}) was cancelled: the station now runs {}. Scan again.",
                    self.config.workflow.as_str()
                );
                publish(live, name, "cancelled", Tone::Refused, &message, &cycle.correlation);
                Ok(fresh(rules))
            }
        }
    }

    /// One waiting scan: run it through the workflow and commit what it caused with it.
    async fn consume(
        &self,
        store: &Store,
        live: &LiveReadings,
        run: &mut Running,
        input: StationInput,
    ) -> Result<(), StoreError> {
        let body: serde_json::Value = serde_json::from_str(&input.body).unwrap_or_default();
        let payload = body.get("scan").cloned().unwrap_or_default();
        let now = run.now();
        let actions = run.station.scan(&ScanInput { payload }, now);
        self.commit(store, live, run, Some(&input), actions).await
    }

    /// Turns actions into one committed step, then tells the operator.
    async fn commit(
        &self,
        store: &Store,
        live: &LiveReadings,
        run: &mut Running,
        input: Option<&StationInput>,
        actions: Vec<Action>,
    ) -> Result<(), StoreError> {
        let effects = self.effects(run, input.map(|i| i.id), actions);
        let saved_state = run.station.saved();
        let mut summary = saved_state.summary();
        if let Some(problem) = run.station.scale_problem() {
            summary = format!("{summary} (refusing new cycles: the scale is not ready — {problem})");
        }
        let cycle = SavedCycle { cycle: run.station.cycle, correlation: run.correlation.clone(), state: saved_state };
        let step = StationStep {
            station: self.config.name.clone(),
            consumed: input.map(|i| {
                let told: Vec<_> = effects
                    .feedback
                    .iter()
                    .map(|(step, _, message)| json!({"step": step, "message": message}))
                    .collect();
                (i.seq, serde_json::Value::Array(told).to_string())
            }),
            events: effects.events,
            print_jobs: effects.print_jobs,
            saved: Some(SavedStation {
                station: self.config.name.clone(),
                workflow: self.config.workflow.as_str().to_owned(),
                state: serde_json::to_string(&cycle).unwrap_or_default(),
                summary,
                updated_at: Timestamp::now(),
            }),
        };
        if until_stored(HELD, || store.station_step(step.clone())).await.is_none() {
            return Err(StoreError::Closed);
        }
        for (step, tone, message) in effects.feedback {
            publish(live, &self.config.name, step, tone, &message, &run.correlation);
        }
        Ok(())
    }

    fn effects(&self, run: &mut Running, input_id: Option<EventId>, actions: Vec<Action>) -> Effects {
        let name = &self.config.name;
        let mut effects = Effects { events: Vec::new(), print_jobs: Vec::new(), feedback: Vec::new() };
        // A new cycle gets a new correlation id before its events are built.
        if run.station.cycle != run.correlation_cycle {
            run.correlation = new_event_id().to_string();
            run.correlation_cycle = run.station.cycle;
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
                    // A forwarded scan keeps the scan's own id (a bridge's id stays the event's).
                    let id = if kind == crate::event::Kind::Scan {
                        input_id.unwrap_or_else(new_event_id)
                    } else {
                        new_event_id()
                    };
                    effects.events.push(Event {
                        id,
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
                        correlation_id: Some(run.correlation.clone()),
                        payload,
                    });
                }
                Action::PrintLabel(fields) => {
                    let label = self.config.label.clone();
                    self.print(&mut effects, label, fields, format!("{}-label", run.correlation));
                }
                Action::PrintPallet(fields) => {
                    let id = format!("{}-pallet-{}", run.correlation, fields.get("sscc").cloned().unwrap_or_default());
                    self.print(&mut effects, self.config.pallet_label.clone(), fields, id);
                }
                Action::PrintError(message) => {
                    if self.config.error_label.is_some() {
                        run.errors += 1;
                        let fields = BTreeMap::from([("message".to_owned(), message)]);
                        let id = format!("{}-error-{}", run.correlation, run.errors);
                        self.print(&mut effects, self.config.error_label.clone(), fields, id);
                    }
                }
                Action::Feedback { step, tone, message } => effects.feedback.push((step, tone, message)),
            }
        }
        effects
    }

    fn print(&self, effects: &mut Effects, label: Option<String>, mut fields: BTreeMap<String, String>, id: String) {
        let (Some(printer), Some(label)) = (&self.config.printer, label) else { return };
        let Some(template) = self.labels.iter().find(|l| l.name == label) else { return };
        fields.entry("date".into()).or_insert_with(|| Timestamp::now().to_string()[..10].to_owned());
        fields.entry("gateway".into()).or_insert_with(|| self.gateway.clone());
        match template.render(&fields) {
            Ok(body) => effects.print_jobs.push(NewPrintJob {
                id,
                printer: printer.clone(),
                body,
                origin: "station".into(),
                reprint_of: None,
            }),
            Err(e) => warn!(station = %self.config.name, %label, error = %e, "The station's label cannot be rendered."),
        }
    }

    /// Why the scale cannot weigh, from what its device task reported.
    fn scale_problem(&self, feed: &ScaleFeed) -> Option<String> {
        let scale = self.config.scale.as_deref()?;
        match &feed.state {
            None => Some(format!("{scale} has not reported yet")),
            Some((DeviceState::Connected, _)) => None,
            Some((DeviceState::Disconnected, detail)) => {
                Some(format!("{scale} is disconnected{}", detail_suffix(detail)))
            }
            Some((DeviceState::Error, detail)) => Some(format!("{scale} is not answering{}", detail_suffix(detail))),
        }
    }
}

impl Running {
    fn now(&self) -> u64 {
        self.epoch.elapsed().as_millis() as u64
    }
}

fn detail_suffix(detail: &Option<String>) -> String {
    detail.as_deref().map_or(String::new(), |d| format!(": {d}"))
}

/// The next change of the scale's slot (`None` when it has no more sender; never for no scale).
async fn scale_changed(scale: &mut Option<watch::Receiver<ScaleFeed>>) -> Option<ScaleFeed> {
    match scale {
        Some(rx) => match rx.changed().await {
            Ok(()) => Some(rx.borrow_and_update().clone()),
            Err(_) => {
                *scale = None;
                None
            }
        },
        None => std::future::pending().await,
    }
}

/// Tells the operator, and logs at the level the tone calls for (a normal cycle logs no warning).
fn publish(live: &LiveReadings, station: &str, step: &str, tone: Tone, message: &str, correlation: &str) {
    match tone {
        Tone::Ok => info!(%station, step, told = %message, "Station step."),
        Tone::Refused => info!(%station, step, told = %message, "Station step refused; the operator was told why."),
        Tone::Blocked => warn!(%station, step, told = %message, "The station cannot start a cycle."),
    }
    let body = json!({"station": station, "step": step, "ok": tone == Tone::Ok, "tone": tone_name(tone), "message": message, "correlation_id": correlation, "at": Timestamp::now()});
    live.publish_at(format!("station/{station}"), body.to_string());
}

fn tone_name(tone: Tone) -> &'static str {
    match tone {
        Tone::Ok => "ok",
        Tone::Refused => "refused",
        Tone::Blocked => "blocked",
    }
}
