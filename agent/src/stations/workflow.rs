//! The station workflows as pure state machines: scans, scale readings, the scale's state and
//! the clock in; events to store, labels to print and operator feedback out. No I/O, so every
//! path — a full cycle, a cancel, a timeout, a restart by a new picking scan, an off-tolerance
//! weight, a scale that is not connected, a resume after a restart — is a unit test.
//!
//! Weights stay exact decimals end to end ([`Decimal`]): a reading is converted to kilograms by
//! exact multiplication, compared and divided as scaled integers, and written to the event and
//! the label as the same text.

use std::collections::BTreeMap;

use firmware_bridge::ScaleReading;
use firmware_bridge::decimal::Decimal;
use firmware_bridge::scale::stable::{CaptureOutcome, StableCapture, StableCaptureConfig};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use crate::event::Kind;

/// Which workflow a station runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub(crate) enum Workflow {
    /// Scan a picking, weigh the parcel, print its label: a `pack` event.
    Pack,
    /// Scan a location, then products; quantity from the scale or the label: `count` events.
    Count,
    /// Scan an incoming picking, then GS1 labels, then "done": a `receipt` event.
    Receive,
    /// Every scan forwarded as a `scan` event.
    Scan,
}

impl Workflow {
    pub(crate) fn as_str(self) -> &'static str {
        match self {
            Workflow::Pack => "pack",
            Workflow::Count => "count",
            Workflow::Receive => "receive",
            Workflow::Scan => "scan",
        }
    }
}

/// What a picking barcode looks like: a regular expression over the scanned data.
#[derive(Debug, Clone)]
pub(crate) struct PickingPattern(pub regex::Regex);

impl PickingPattern {
    /// Odoo's picking names: a warehouse code, an operation type and a sequence number, separated
    /// by slashes (`WH/OUT/00042`, `WH2/PICK/2026/0001`).
    pub(crate) const DEFAULT: &'static str = r"^[A-Za-z0-9_.-]+(/[A-Za-z0-9_.-]+)+/[0-9]+$";

    pub(crate) fn new(source: &str) -> Result<PickingPattern, String> {
        regex::Regex::new(source).map(PickingPattern).map_err(|e| e.to_string())
    }

    fn matches(&self, data: &str) -> bool {
        self.0.is_match(data)
    }
}

impl Default for PickingPattern {
    fn default() -> Self {
        PickingPattern::new(Self::DEFAULT).expect("the default picking pattern compiles")
    }
}

impl PartialEq for PickingPattern {
    fn eq(&self, other: &Self) -> bool {
        self.0.as_str() == other.0.as_str()
    }
}

/// The settings the workflows need (from `[[station]]`).
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Rules {
    pub(crate) workflow: Workflow,
    pub(crate) cancel_barcode: String,
    pub(crate) done_barcode: String,
    pub(crate) weight_timeout_ms: u64,
    pub(crate) stable_readings: usize,
    /// Pack: weights below this (kg) are not a parcel (an empty scale).
    pub(crate) min_weight: Decimal,
    /// Count: how far from a whole number of units a weight may be, as a fraction of a unit.
    pub(crate) tolerance: Decimal,
    /// Count: kg per unit, by product barcode (GTIN or plain).
    pub(crate) unit_weights: BTreeMap<String, Decimal>,
    /// Pack/receive: barcodes that stand for a picking name (always pickings, whatever the
    /// pattern says).
    pub(crate) picking_barcodes: BTreeMap<String, String>,
    /// Pack/receive: what else is a picking.
    pub(crate) picking_pattern: PickingPattern,
    /// Whether a label is printed (pack).
    pub(crate) prints: bool,
    /// Whether an SSCC pallet label is printed when a pallet is scanned (receive).
    pub(crate) pallet_label: bool,
}

/// One scan as the workflow sees it.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct ScanInput {
    /// The scan payload JSON.
    pub(crate) payload: Value,
}

impl ScanInput {
    fn data(&self) -> String {
        let raw = self.payload["raw"].as_str().unwrap_or("");
        let aim = self.payload["aim"].as_str().unwrap_or("");
        raw.strip_prefix(aim).unwrap_or(raw).trim().to_owned()
    }

    fn parsed(&self, field: &str) -> Option<String> {
        self.payload["parsed"][field].as_str().map(str::to_owned)
    }

    /// The product: its GTIN when the scan carries one, else the data as a barcode.
    fn product(&self) -> String {
        self.parsed("gtin").unwrap_or_else(|| self.data())
    }

    /// The ways this product may be written in a table: the GTIN-14, the data as scanned (an
    /// EAN-13 reads as 13 digits), and the GTIN without its leading zero.
    fn product_keys(&self) -> Vec<String> {
        let mut keys = vec![self.product(), self.data()];
        if let Some(g) = self.parsed("gtin").and_then(|g| g.strip_prefix('0').map(str::to_owned)) {
            keys.push(g);
        }
        keys
    }
}

/// How an operator message is meant: it drives the log level, so a normal cycle logs no warning.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Tone {
    /// The step worked.
    Ok,
    /// The operator's input was not what the step expects (a wrong barcode, a timeout, an
    /// off-tolerance weight): normal on a busy floor.
    Refused,
    /// The station cannot work (its scale is not connected): a technician should look.
    Blocked,
}

/// What the station must do.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Action {
    /// Store an event of this kind with this payload, in the current cycle.
    Store(Kind, Value),
    /// Print the station's label with these fields.
    PrintLabel(BTreeMap<String, String>),
    /// Print a short error label (when the station has one).
    PrintError(String),
    /// Print the SSCC pallet label with these fields (receive).
    PrintPallet(BTreeMap<String, String>),
    /// Tell the operator (on the station's feedback topic): step, tone, message.
    Feedback { step: &'static str, tone: Tone, message: String },
}

impl Action {
    fn ok(step: &'static str, message: String) -> Action {
        Action::Feedback { step, tone: Tone::Ok, message }
    }

    fn refused(step: &'static str, message: String) -> Action {
        Action::Feedback { step, tone: Tone::Refused, message }
    }
}

#[derive(Debug, Clone)]
enum State {
    Idle,
    /// Pack: waiting for the parcel's stable weight.
    Weighing {
        picking: String,
        sscc: Option<String>,
        capture: StableCapture,
    },
    /// Count: a location is open.
    Location {
        location: String,
    },
    /// Count: weighing a product at the location.
    Counting {
        location: String,
        product: String,
        unit: Decimal,
        capture: StableCapture,
    },
    /// Count: a product without a unit weight; the next scan is its quantity.
    Quantity {
        location: String,
        product: String,
    },
    /// Receive: lines so far.
    Receiving {
        picking: String,
        lines: Vec<Value>,
    },
}

/// A station's state as it is saved with each step (the weighing in progress restarts from the
/// next readings after a restart: a parcel on the scale is weighed again).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "step", rename_all = "snake_case")]
pub(crate) enum Saved {
    Idle,
    Weighing { picking: String, sscc: Option<String> },
    Location { location: String },
    Counting { location: String, product: String, unit: Decimal },
    Quantity { location: String, product: String },
    Receiving { picking: String, lines: Vec<Value> },
}

impl Saved {
    /// One line for `status` and the operator: what the station waits for.
    pub(crate) fn summary(&self) -> String {
        match self {
            Saved::Idle => "idle: waiting for a scan".into(),
            Saved::Weighing { picking, .. } => format!("waiting for the weight of {picking}"),
            Saved::Location { location } => format!("counting at {location}: waiting for a product"),
            Saved::Counting { location, product, .. } => {
                format!("counting {product} at {location}: waiting for the weight")
            }
            Saved::Quantity { location, product } => {
                format!("counting {product} at {location}: waiting for the quantity")
            }
            Saved::Receiving { picking, lines } => format!("receiving {picking}: {} line(s) so far", lines.len()),
        }
    }

    /// Which workflow this state belongs to (`None`: any).
    fn workflow(&self) -> Option<Workflow> {
        match self {
            Saved::Idle => None,
            Saved::Weighing { .. } => Some(Workflow::Pack),
            Saved::Location { .. } | Saved::Counting { .. } | Saved::Quantity { .. } => Some(Workflow::Count),
            Saved::Receiving { .. } => Some(Workflow::Receive),
        }
    }
}

/// A station's workflow.
#[derive(Debug, Clone)]
pub(crate) struct Station {
    rules: Rules,
    state: State,
    /// Bumped at the start of each cycle: events of one cycle share a correlation id.
    pub(crate) cycle: u64,
    /// Why the scale cannot weigh now (`None`: connected).
    scale_problem: Option<String>,
}

/// A scanned quantity: digits only, at most 7 of them.
fn is_quantity(data: &str) -> bool {
    !data.is_empty() && data.len() <= 7 && data.bytes().all(|b| b.is_ascii_digit())
}

/// The weight a station records, in kg, exact: the gross weight when the scale reports a net
/// weight with its tare (a parcel ships with its box), else the value. Readings in kg, g or t
/// keep every digit the scale sent; pounds and ounces are rounded to the gram.
pub(crate) fn station_kg(w: &firmware_bridge::Weight) -> Option<Decimal> {
    let base = match (&w.gross, w.net) {
        (Some(g), Some(true)) => Decimal::parse(g).ok()?,
        _ => w.decimal()?,
    };
    let kg = base.checked_mul(&w.unit.kg_per_unit())?;
    // kg, g and t convert exactly with the scale's resolution (`2480 g` is `2.480 kg`).
    match w.unit {
        firmware_bridge::WeightUnit::Kg | firmware_bridge::WeightUnit::G | firmware_bridge::WeightUnit::T => Some(kg),
        firmware_bridge::WeightUnit::Lb | firmware_bridge::WeightUnit::Oz => kg.with_decimals(3),
    }
}

impl Station {
    pub(crate) fn new(rules: Rules) -> Station {
        Station { rules, state: State::Idle, cycle: 0, scale_problem: None }
    }

    /// A station resumed from its saved state; `None` when the state belongs to another workflow
    /// (the config changed): the caller cancels that cycle visibly.
    pub(crate) fn resume(rules: Rules, saved: Saved, cycle: u64, now_ms: u64) -> Option<Station> {
        if saved.workflow().is_some_and(|w| w != rules.workflow) {
            return None;
        }
        let mut station = Station::new(rules);
        station.cycle = cycle;
        station.state = match saved {
            Saved::Idle => State::Idle,
            Saved::Weighing { picking, sscc } => State::Weighing { picking, sscc, capture: station.capture(now_ms) },
            Saved::Location { location } => State::Location { location },
            Saved::Counting { location, product, unit } => {
                State::Counting { location, product, unit, capture: station.capture(now_ms) }
            }
            Saved::Quantity { location, product } => State::Quantity { location, product },
            Saved::Receiving { picking, lines } => State::Receiving { picking, lines },
        };
        Some(station)
    }

    /// The state to save.
    pub(crate) fn saved(&self) -> Saved {
        match &self.state {
            State::Idle => Saved::Idle,
            State::Weighing { picking, sscc, .. } => Saved::Weighing { picking: picking.clone(), sscc: sscc.clone() },
            State::Location { location } => Saved::Location { location: location.clone() },
            State::Counting { location, product, unit, .. } => {
                Saved::Counting { location: location.clone(), product: product.clone(), unit: unit.clone() }
            }
            State::Quantity { location, product } => {
                Saved::Quantity { location: location.clone(), product: product.clone() }
            }
            State::Receiving { picking, lines } => Saved::Receiving { picking: picking.clone(), lines: lines.clone() },
        }
    }

    /// The scale's condition: `None` when it is connected, else why it is not.
    pub(crate) fn set_scale_problem(&mut self, problem: Option<String>) {
        self.scale_problem = problem;
    }

    /// Why the station cannot start a cycle that needs the scale, if it cannot.
    pub(crate) fn scale_problem(&self) -> Option<&str> {
        self.scale_problem.as_deref()
    }

    fn capture(&self, now_ms: u64) -> StableCapture {
        StableCapture::start(
            StableCaptureConfig { required: self.rules.stable_readings, timeout_ms: self.rules.weight_timeout_ms },
            now_ms,
        )
    }

    /// The picking a scan names, if it names one: a mapped barcode, or data matching the pattern.
    fn picking_of(&self, scan: &ScanInput) -> Option<String> {
        let data = scan.data();
        if let Some(p) = self.rules.picking_barcodes.get(&data) {
            return Some(p.clone());
        }
        self.rules.picking_pattern.matches(&data).then_some(data)
    }

    fn not_a_picking(&self, data: &str, waiting: Option<&str>) -> Action {
        let hint = match waiting {
            Some(w) => format!("; still {w}"),
            None => {
                format!("; scan a picking such as WH/OUT/00042 (pattern {})", self.rules.picking_pattern.0.as_str())
            }
        };
        Action::refused("not_a_picking", format!("{data} is not a picking{hint}."))
    }

    fn refuse_without_scale(&self, what: &str) -> Option<Vec<Action>> {
        let problem = self.scale_problem.as_ref()?;
        Some(vec![Action::Feedback {
            step: "scale_not_ready",
            tone: Tone::Blocked,
            message: format!("The scale is not ready ({problem}): connect it, then scan {what} again."),
        }])
    }

    /// A scan arrived.
    pub(crate) fn scan(&mut self, scan: &ScanInput, now_ms: u64) -> Vec<Action> {
        let data = scan.data();
        if self.rules.workflow == Workflow::Scan {
            self.cycle += 1;
            return vec![Action::Store(Kind::Scan, scan.payload.clone())];
        }
        if data == self.rules.cancel_barcode {
            let busy = !matches!(self.state, State::Idle);
            self.state = State::Idle;
            return vec![if busy {
                Action::ok("cancelled", "Cancelled.".into())
            } else {
                Action::refused("cancelled", "Nothing to cancel.".into())
            }];
        }
        let state = std::mem::replace(&mut self.state, State::Idle);
        match (self.rules.workflow, state) {
            (Workflow::Pack, State::Weighing { picking, capture, sscc }) => {
                if let Some(code) = scan.parsed("sscc") {
                    let message = format!("Package {code} for {picking}; put the parcel on the scale.");
                    self.state = State::Weighing { picking, sscc: Some(code), capture };
                    return vec![Action::ok("package", message)];
                }
                let Some(new) = self.picking_of(scan) else {
                    let waiting = format!("waiting for the weight of {picking}");
                    let out = vec![self.not_a_picking(&data, Some(&waiting))];
                    self.state = State::Weighing { picking, sscc, capture };
                    return out;
                };
                if let Some(refused) = self.refuse_without_scale(&new) {
                    self.state = State::Weighing { picking, sscc, capture };
                    return refused;
                }
                let mut out =
                    vec![Action::refused("restarted", format!("{picking} was not finished; starting {new} instead."))];
                out.extend(self.start_pack(new, now_ms));
                out
            }
            (Workflow::Pack, _) => match self.picking_of(scan) {
                Some(picking) => match self.refuse_without_scale(&picking) {
                    Some(refused) => refused,
                    None => self.start_pack(picking, now_ms),
                },
                None => vec![self.not_a_picking(&data, None)],
            },
            (Workflow::Count, State::Idle) => {
                self.cycle += 1;
                self.state = State::Location { location: data.clone() };
                vec![Action::ok("location", format!("Counting at {data}; scan a product."))]
            }
            (Workflow::Count, State::Quantity { location, product }) if is_quantity(&data) => {
                self.state = State::Location { location: location.clone() };
                let quantity = data.trim_start_matches('0');
                self.count_event(&location, &product, if quantity.is_empty() { "0" } else { quantity })
            }
            (
                Workflow::Count,
                State::Location { location } | State::Counting { location, .. } | State::Quantity { location, .. },
            ) => {
                let keys = scan.product_keys();
                let known = keys.iter().find(|k| self.rules.unit_weights.contains_key(*k)).cloned();
                let product = known.clone().unwrap_or_else(|| scan.product());
                if let Some(count) =
                    scan.parsed("count").or_else(|| scan.payload["parsed"]["count"].as_u64().map(|c| c.to_string()))
                {
                    self.state = State::Location { location: location.clone() };
                    return self.count_event(&location, &product, &count);
                }
                let Some(unit) = known.as_ref().and_then(|k| self.rules.unit_weights.get(k)).cloned() else {
                    // No unit weight to count by: the operator scans the quantity instead.
                    let message = format!("{product} at {location}: scan the quantity.");
                    self.state = State::Quantity { location, product };
                    return vec![Action::ok("product", message)];
                };
                if let Some(problem) = self.scale_problem.clone() {
                    let message = format!(
                        "The scale is not ready ({problem}): {product} at {location} cannot be weighed; scan the quantity instead."
                    );
                    self.state = State::Quantity { location, product };
                    return vec![Action::Feedback { step: "scale_not_ready", tone: Tone::Blocked, message }];
                }
                let message = format!("{product} at {location}: put them on the scale.");
                self.state = State::Counting { location, product, unit, capture: self.capture(now_ms) };
                vec![Action::ok("product", message)]
            }
            (Workflow::Receive, State::Receiving { picking, mut lines }) => {
                if data == self.rules.done_barcode {
                    let n = lines.len();
                    let payload = json!({"picking": picking, "lines": lines, "complete": true});
                    return vec![
                        Action::Store(Kind::Receipt, payload),
                        Action::ok("done", format!("{picking} received: {n} line(s).")),
                    ];
                }
                let Some(gtin) = scan.parsed("gtin") else {
                    if let Some(sscc) = scan.parsed("sscc") {
                        let mut out = vec![Action::ok("pallet", format!("Pallet {sscc} for {picking}."))];
                        if self.rules.pallet_label {
                            let fields =
                                BTreeMap::from([("picking".to_owned(), picking.clone()), ("sscc".to_owned(), sscc)]);
                            out.push(Action::PrintPallet(fields));
                        }
                        self.state = State::Receiving { picking, lines };
                        return out;
                    }
                    let message = format!(
                        "{data} is not a GS1 product label; scan the label, or {} to finish.",
                        self.rules.done_barcode
                    );
                    self.state = State::Receiving { picking, lines };
                    return vec![Action::refused("line", message)];
                };
                let quantity = scan
                    .parsed("count")
                    .or_else(|| scan.payload["parsed"]["count"].as_u64().map(|c| c.to_string()))
                    .or_else(|| scan.payload["parsed"]["net_weight"]["value"].as_str().map(str::to_owned))
                    .unwrap_or_else(|| "1".into());
                let lot = scan.parsed("lot");
                let expiry = scan.parsed("expiry").or_else(|| scan.parsed("best_before"));
                let mut line = json!({"product": {"barcode": gtin}, "quantity": quantity});
                if let Some(l) = &lot {
                    line["lot"] = json!(l);
                }
                if let Some(e) = &expiry {
                    line["expiry"] = json!(e);
                }
                let message = format!("{gtin} × {quantity}{}", lot.map_or(String::new(), |l| format!(", lot {l}")));
                lines.push(line);
                self.state = State::Receiving { picking, lines };
                vec![Action::ok("line", message)]
            }
            (Workflow::Receive, _) => {
                let Some(picking) = self.picking_of(scan) else {
                    return vec![self.not_a_picking(&data, None)];
                };
                self.cycle += 1;
                let message =
                    format!("Receiving {picking}: scan the product labels, then {}.", self.rules.done_barcode);
                self.state = State::Receiving { picking, lines: Vec::new() };
                vec![Action::ok("picking", message)]
            }
            (Workflow::Count, State::Weighing { .. } | State::Receiving { .. }) | (Workflow::Scan, _) => Vec::new(),
        }
    }

    fn start_pack(&mut self, picking: String, now_ms: u64) -> Vec<Action> {
        self.cycle += 1;
        let message = format!("{picking}: put the parcel on the scale.");
        self.state = State::Weighing { picking, sscc: None, capture: self.capture(now_ms) };
        vec![Action::ok("picking", message)]
    }

    fn count_event(&mut self, location: &str, product: &str, quantity: &str) -> Vec<Action> {
        let payload = json!({"product": {"barcode": product}, "location": location, "quantity": quantity});
        vec![
            Action::Store(Kind::Count, payload),
            Action::ok("counted", format!("{product}: {quantity} at {location}.")),
        ]
    }

    /// A scale reading arrived.
    pub(crate) fn reading(&mut self, reading: &ScaleReading, now_ms: u64) -> Vec<Action> {
        let outcome = match &mut self.state {
            State::Weighing { capture, .. } | State::Counting { capture, .. } => capture.feed(reading, now_ms),
            _ => return Vec::new(),
        };
        self.settle(outcome, now_ms)
    }

    /// Time passes (timeouts).
    pub(crate) fn tick(&mut self, now_ms: u64) -> Vec<Action> {
        let outcome = match &mut self.state {
            State::Weighing { capture, .. } | State::Counting { capture, .. } => capture.poll(now_ms),
            _ => return Vec::new(),
        };
        self.settle(outcome, now_ms)
    }

    fn settle(&mut self, outcome: CaptureOutcome, now_ms: u64) -> Vec<Action> {
        match outcome {
            CaptureOutcome::Pending { .. } => Vec::new(),
            CaptureOutcome::TimedOut { .. } => {
                let state = std::mem::replace(&mut self.state, State::Idle);
                let message =
                    format!("No stable weight within {} s; scan again to retry.", self.rules.weight_timeout_ms / 1000);
                if let State::Counting { location, .. } = state {
                    self.state = State::Location { location };
                }
                vec![Action::refused("timeout", message.clone()), Action::PrintError(message)]
            }
            CaptureOutcome::Captured(weight) => {
                let Some(kg) = station_kg(&weight) else { return Vec::new() };
                let state = std::mem::replace(&mut self.state, State::Idle);
                match state {
                    State::Weighing { picking, sscc, .. } => {
                        if kg.cmp_value(&self.rules.min_weight) == Some(std::cmp::Ordering::Less) {
                            // An empty scale right after the picking scan: the parcel is on its way.
                            self.state = State::Weighing { picking, sscc, capture: self.capture(now_ms) };
                            return Vec::new();
                        }
                        let mut payload = json!({"picking": picking, "weight": kg, "label_printed": self.rules.prints});
                        if let Some(s) = &sscc {
                            payload["package"] = json!(s);
                        }
                        let mut out = vec![Action::Store(Kind::Pack, payload)];
                        if self.rules.prints {
                            let fields: BTreeMap<String, String> = [
                                ("picking", picking.clone()),
                                ("weight", kg.to_string()),
                                ("sscc", sscc.unwrap_or_default()),
                            ]
                            .into_iter()
                            .map(|(k, v)| (k.to_owned(), v))
                            .collect();
                            out.push(Action::PrintLabel(fields));
                        }
                        out.push(Action::ok("packed", format!("{picking}: {kg} kg.")));
                        out
                    }
                    State::Counting { location, product, unit, .. } => {
                        self.state = State::Location { location: location.clone() };
                        match whole_units(&kg, &unit, &self.rules.tolerance) {
                            Ok(whole) => self.count_event(&location, &product, whole.as_str()),
                            Err(units) => {
                                let message = format!(
                                    "{kg} kg is not a whole number of {product} ({units} × {unit} kg); check the scale and weigh again."
                                );
                                vec![Action::refused("weight", message.clone()), Action::PrintError(message)]
                            }
                        }
                    }
                    other => {
                        self.state = other;
                        Vec::new()
                    }
                }
            }
        }
    }
}

/// How many units `kg` is, when it is within `tolerance` (a fraction of one unit) of a whole
/// number of at least one; else the units to two decimals, for the operator. Exact arithmetic.
pub(crate) fn whole_units(kg: &Decimal, unit: &Decimal, tolerance: &Decimal) -> Result<Decimal, String> {
    let shown = || kg.div_rounded(unit, 2).map_or_else(|| "?".into(), |u| u.to_string());
    let Some(whole) = kg.div_rounded(unit, 0) else { return Err(shown()) };
    let off = whole.checked_mul(unit).and_then(|w| kg.checked_sub(&w)).map(|d| d.abs());
    let allowed = tolerance.checked_mul(unit);
    let within = matches!((off, allowed), (Some(o), Some(a)) if o.cmp_value(&a) != Some(std::cmp::Ordering::Greater));
    if whole.cmp_value(&Decimal::from_int(1)) == Some(std::cmp::Ordering::Less) || !within {
        return Err(shown());
    }
    Ok(whole)
}

#[cfg(test)]
mod tests {
    use firmware_bridge::{Weight, WeightUnit};

    use super::*;

    fn rules(workflow: Workflow) -> Rules {
        Rules {
            workflow,
            cancel_barcode: "CANCEL".into(),
            done_barcode: "DONE".into(),
            weight_timeout_ms: 10_000,
            stable_readings: 2,
            min_weight: dec("0.05"),
            tolerance: dec("0.2"),
            unit_weights: [("4006381333931".to_owned(), dec("0.012"))].into_iter().collect(),
            picking_barcodes: [("PK42".to_owned(), "WH/OUT/00042".to_owned())].into_iter().collect(),
            picking_pattern: PickingPattern::default(),
            prints: true,
            pallet_label: true,
        }
    }

    fn dec(t: &str) -> Decimal {
        Decimal::parse(t).unwrap()
    }

    fn scan(raw: &str) -> ScanInput {
        ScanInput { payload: json!({"raw": raw}) }
    }

    fn stable(v: &str) -> ScaleReading {
        ScaleReading::Weight(Weight::new(v.into(), WeightUnit::Kg, true))
    }

    fn stored(actions: &[Action]) -> Vec<(Kind, Value)> {
        actions.iter().filter_map(|a| if let Action::Store(k, v) = a { Some((*k, v.clone())) } else { None }).collect()
    }

    #[test]
    fn pack_cycle_with_a_mapped_picking_barcode() {
        let mut s = Station::new(rules(Workflow::Pack));
        s.scan(&scan("PK42"), 0);
        assert!(s.reading(&ScaleReading::Weight(Weight::new("2.4".into(), WeightUnit::Kg, false)), 10).is_empty());
        assert!(s.reading(&stable("2.480"), 20).is_empty());
        let out = s.reading(&stable("2.480"), 30);
        let events = stored(&out);
        assert_eq!(
            events,
            vec![(Kind::Pack, json!({"picking": "WH/OUT/00042", "weight": "2.480", "label_printed": true}))]
        );
        assert!(out.iter().any(|a| matches!(a, Action::PrintLabel(f) if f["weight"] == "2.480")));
        // Back to idle: more readings do nothing.
        assert!(s.reading(&stable("2.480"), 40).is_empty());
    }

    #[test]
    fn pack_cancel_timeout_minimum_and_restart() {
        let mut s = Station::new(rules(Workflow::Pack));
        s.scan(&scan("WH/OUT/1"), 0);
        assert!(matches!(
            &s.scan(&scan("CANCEL"), 5)[..],
            [Action::Feedback { step: "cancelled", tone: Tone::Ok, .. }]
        ));
        assert!(s.reading(&stable("1.0"), 6).is_empty() && s.reading(&stable("1.0"), 7).is_empty());
        s.scan(&scan("WH/OUT/2"), 100);
        let out = s.tick(10_200);
        assert!(out.iter().any(|a| matches!(a, Action::Feedback { step: "timeout", .. })));
        assert!(out.iter().any(|a| matches!(a, Action::PrintError(_))));
        s.scan(&scan("WH/OUT/3"), 20_000);
        s.reading(&stable("0.010"), 20_001);
        let out = s.reading(&stable("0.010"), 20_002);
        // An empty scale right after the picking scan is normal: no event, no complaint.
        assert!(out.is_empty(), "below the minimum: {out:?}");
        let out = s.scan(&scan("WH/OUT/4"), 20_003);
        assert!(matches!(&out[0], Action::Feedback { step: "restarted", tone: Tone::Refused, .. }));
        s.reading(&stable("3.0"), 20_004);
        let events = stored(&s.reading(&stable("3.0"), 20_005));
        assert_eq!(events[0].1["picking"], "WH/OUT/4");
    }

    #[test]
    fn count_by_weight_whole_units_only() {
        let mut s = Station::new(rules(Workflow::Count));
        s.scan(&scan("WH-A-01-02"), 0);
        s.scan(&scan("4006381333931"), 1);
        s.reading(&stable("1.200"), 2);
        let events = stored(&s.reading(&stable("1.200"), 3));
        assert_eq!(
            events[0].1,
            json!({"product": {"barcode": "4006381333931"}, "location": "WH-A-01-02", "quantity": "100"})
        );
        // Off tolerance: 1.206 kg is 100.5 units.
        s.scan(&scan("4006381333931"), 4);
        s.reading(&stable("1.206"), 5);
        let out = s.reading(&stable("1.206"), 6);
        assert!(stored(&out).is_empty());
        assert!(out.iter().any(
            |a| matches!(a, Action::Feedback { tone: Tone::Refused, message, .. } if message.contains("not a whole number"))
        ));
        // No unit weight: the next scan is the quantity.
        let out = s.scan(&scan("5901234123457"), 7);
        assert!(out.iter().any(
            |a| matches!(a, Action::Feedback { tone: Tone::Ok, message, .. } if message.contains("scan the quantity"))
        ));
        let events = stored(&s.scan(&scan("012"), 8));
        assert_eq!(
            events[0].1,
            json!({"product": {"barcode": "5901234123457"}, "location": "WH-A-01-02", "quantity": "12"})
        );
        // A GS1 label with a count needs no scale.
        let out =
            s.scan(&ScanInput { payload: json!({"raw": "x", "parsed": {"gtin": "09506000134352", "count": "12"}}) }, 8);
        assert_eq!(stored(&out)[0].1["quantity"], "12");
    }

    #[test]
    fn receive_lines_with_lot_and_expiry() {
        let mut s = Station::new(rules(Workflow::Receive));
        s.scan(&scan("WH/IN/00007"), 0);
        let label = json!({"raw": "]C1...", "aim": "]C1", "parsed": {"gtin": "09506000134352", "lot": "ABC123", "expiry": "2027-03-31", "count": "24"}});
        s.scan(&ScanInput { payload: label }, 1);
        let sscc = json!({"raw": "]C100106141411234567897", "parsed": {"sscc": "106141411234567897"}});
        let pallet = s.scan(&ScanInput { payload: sscc }, 2);
        assert!(pallet.iter().any(|a| matches!(a, Action::PrintPallet(f) if f["sscc"] == "106141411234567897")));
        let out = s.scan(&scan("DONE"), 2);
        assert_eq!(
            stored(&out),
            vec![(
                Kind::Receipt,
                json!({"picking": "WH/IN/00007", "complete": true, "lines": [
                    {"product": {"barcode": "09506000134352"}, "quantity": "24", "lot": "ABC123", "expiry": "2027-03-31"}
                ]})
            )]
        );
    }

    fn feedback(actions: &[Action]) -> Vec<(&'static str, Tone)> {
        actions
            .iter()
            .filter_map(|a| if let Action::Feedback { step, tone, .. } = a { Some((*step, *tone)) } else { None })
            .collect()
    }

    #[test]
    fn only_pickings_start_a_pack_cycle() {
        let mut s = Station::new(rules(Workflow::Pack));
        // An EAN is not a picking: refused, nothing started.
        assert_eq!(feedback(&s.scan(&scan("4006381333931"), 0)), vec![("not_a_picking", Tone::Refused)]);
        assert!(matches!(s.saved(), Saved::Idle));
        s.scan(&scan("WH/OUT/00007"), 1);
        // While weighing, an EAN does not restart the cycle either.
        let out = s.scan(&scan("4006381333931"), 2);
        assert_eq!(feedback(&out), vec![("not_a_picking", Tone::Refused)]);
        assert_eq!(s.saved(), Saved::Weighing { picking: "WH/OUT/00007".into(), sscc: None });
        // A custom pattern.
        let mut r = rules(Workflow::Pack);
        r.picking_pattern = PickingPattern::new("^PICK-[0-9]{4}$").unwrap();
        let mut s = Station::new(r);
        assert_eq!(feedback(&s.scan(&scan("WH/OUT/00007"), 0)), vec![("not_a_picking", Tone::Refused)]);
        assert_eq!(feedback(&s.scan(&scan("PICK-0042"), 1)), vec![("picking", Tone::Ok)]);
    }

    #[test]
    fn no_cycle_starts_while_the_scale_is_not_connected() {
        let mut s = Station::new(rules(Workflow::Pack));
        s.set_scale_problem(Some("scale-1 is disconnected: /dev/ttyUSB1 is gone".into()));
        let out = s.scan(&scan("WH/OUT/00042"), 0);
        assert_eq!(feedback(&out), vec![("scale_not_ready", Tone::Blocked)]);
        assert!(matches!(&out[0], Action::Feedback { message, .. } if message.contains("/dev/ttyUSB1")));
        assert!(matches!(s.saved(), Saved::Idle));
        s.set_scale_problem(None);
        assert_eq!(feedback(&s.scan(&scan("WH/OUT/00042"), 1)), vec![("picking", Tone::Ok)]);
    }

    #[test]
    fn a_normal_pack_cycle_has_no_refusal() {
        let mut s = Station::new(rules(Workflow::Pack));
        let mut out = s.scan(&scan("WH/OUT/00042"), 0);
        // The scale is empty at first, then the parcel lands and settles.
        for (i, w) in ["0.000", "0.000", "1.9", "2.480", "2.480"].iter().enumerate() {
            out.extend(s.reading(&stable(w), 10 + i as u64));
        }
        let tones: Vec<Tone> = feedback(&out).into_iter().map(|(_, t)| t).collect();
        assert_eq!(tones, vec![Tone::Ok, Tone::Ok], "{out:?}");
        assert_eq!(stored(&out)[0].1["weight"], "2.480");
    }

    #[test]
    fn gross_weights_and_unit_conversions_are_exact() {
        let net = |v: &str, tare: &str, unit| {
            let mut w = Weight::new(v.into(), unit, true);
            w.tare = Some(tare.into());
            w.with_net(true)
        };
        assert_eq!(station_kg(&net("0.1", "0.2", WeightUnit::Kg)).unwrap().as_str(), "0.3");
        assert_eq!(station_kg(&Weight::new("2480".into(), WeightUnit::G, true)).unwrap().as_str(), "2.480");
        assert_eq!(station_kg(&Weight::new("5.00".into(), WeightUnit::Lb, true)).unwrap().as_str(), "2.268");
        assert_eq!(station_kg(&Weight::new("1.5".into(), WeightUnit::T, true)).unwrap().as_str(), "1500.0");
        // 1.206 kg of 12 g parts is 100.5 units: off by half a unit, refused; 1.2012 is 100.1.
        assert!(whole_units(&dec("1.206"), &dec("0.012"), &dec("0.2")).is_err());
        assert_eq!(whole_units(&dec("1.2012"), &dec("0.012"), &dec("0.2")).unwrap().as_str(), "100");
        assert_eq!(whole_units(&dec("0.3"), &dec("0.1"), &dec("0")).unwrap().as_str(), "3");
    }

    #[test]
    fn a_saved_state_resumes_the_cycle_or_is_refused_by_another_workflow() {
        let mut s = Station::new(rules(Workflow::Receive));
        s.scan(&scan("WH/IN/00007"), 0);
        let label = json!({"raw": "x", "parsed": {"gtin": "09506000134352", "count": "24"}});
        s.scan(&ScanInput { payload: label }, 1);
        let saved: Saved = serde_json::from_str(&serde_json::to_string(&s.saved()).unwrap()).unwrap();
        assert_eq!(saved.summary(), "receiving WH/IN/00007: 1 line(s) so far");
        let mut resumed = Station::resume(rules(Workflow::Receive), saved.clone(), s.cycle, 5).unwrap();
        let out = resumed.scan(&scan("DONE"), 6);
        assert_eq!(stored(&out)[0].1["lines"].as_array().unwrap().len(), 1);
        assert!(Station::resume(rules(Workflow::Pack), saved, 1, 5).is_none());
        // A pack cycle resumes waiting for the weight.
        let mut p = Station::new(rules(Workflow::Pack));
        p.scan(&scan("WH/OUT/1"), 0);
        let mut p = Station::resume(rules(Workflow::Pack), p.saved(), p.cycle, 100).unwrap();
        p.reading(&stable("3.0"), 101);
        assert_eq!(stored(&p.reading(&stable("3.0"), 102))[0].1["picking"], "WH/OUT/1");
    }

    proptest::proptest! {
        /// Whatever the weight, the event and the label carry the same exact decimal, equal to
        /// the integer arithmetic of net + tare.
        #[test]
        fn station_weights_never_pass_through_a_float(net in 0u32..100_000, tare in 0u32..10_000, decimals in 0u32..4) {
            let text = |v: u32| Decimal::from_scaled_int(i128::from(v), decimals).unwrap().to_string();
            let mut r = rules(Workflow::Pack);
            r.min_weight = dec("0");
            let mut s = Station::new(r);
            s.scan(&scan("WH/OUT/9"), 0);
            let mut w = Weight::new(text(net), WeightUnit::Kg, true);
            w.tare = Some(text(tare));
            let w = w.with_net(true);
            s.reading(&ScaleReading::Weight(w.clone()), 1);
            let out = s.reading(&ScaleReading::Weight(w), 2);
            let want = text(net + tare);
            let event = stored(&out);
            proptest::prop_assert_eq!(event[0].1["weight"].as_str().unwrap(), want.as_str());
            let label = out.iter().find_map(|a| if let Action::PrintLabel(f) = a { Some(f["weight"].clone()) } else { None });
            proptest::prop_assert_eq!(label.unwrap(), want);
        }
    }
}
