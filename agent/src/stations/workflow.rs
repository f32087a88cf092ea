//! The station workflows as pure state machines: scans, scale readings and the clock in; events
//! to store, labels to print and operator feedback out. No I/O, so every path — a full cycle, a
//! cancel, a timeout, a restart by a new picking scan, an off-tolerance weight — is a unit test.

use std::collections::BTreeMap;

use firmware_bridge::ScaleReading;
use firmware_bridge::scale::stable::{CaptureOutcome, StableCapture, StableCaptureConfig};
use serde_json::{Value, json};

use crate::event::Kind;

/// Which workflow a station runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Workflow {
    /// Scan a picking, weigh the parcel, print its label: a `pack` event.
    Pack,
    /// Scan a location, then products; quantity from the scale or the label: `count` events.
    Count,
    /// Scan an incoming picking, then GS1 labels, then "done": a `receipt` event.
    Receive,
    /// Every scan forwarded as a `scan` event.
    Scan,
}

/// The settings the workflows need (from `[[station]]`).
#[derive(Debug, Clone, PartialEq)]
pub struct Rules {
    pub workflow: Workflow,
    pub cancel_barcode: String,
    pub done_barcode: String,
    pub weight_timeout_ms: u64,
    pub stable_readings: usize,
    /// Pack: weights below this (kg) are not a parcel.
    pub min_weight: f64,
    /// Count: how far from a whole number of units a weight may be, as a fraction of a unit.
    pub tolerance: f64,
    /// Count: kg per unit, by product barcode (GTIN or plain).
    pub unit_weights: BTreeMap<String, f64>,
    /// Pack/receive: barcodes that stand for a picking name.
    pub picking_barcodes: BTreeMap<String, String>,
    /// Whether a label is printed (pack).
    pub prints: bool,
    /// Whether an SSCC pallet label is printed when a pallet is scanned (receive).
    pub pallet_label: bool,
}

/// One scan as the workflow sees it.
#[derive(Debug, Clone, PartialEq)]
pub struct ScanInput {
    /// The scan payload JSON.
    pub payload: Value,
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

/// What the station must do.
#[derive(Debug, Clone, PartialEq)]
pub enum Action {
    /// Store an event of this kind with this payload, in the current cycle.
    Store(Kind, Value),
    /// Print the station's label with these fields.
    PrintLabel(BTreeMap<String, String>),
    /// Print a short error label (when the station has one).
    PrintError(String),
    /// Print the SSCC pallet label with these fields (receive).
    PrintPallet(BTreeMap<String, String>),
    /// Tell the operator (on the station's feedback topic): step, ok, message.
    Feedback { step: &'static str, ok: bool, message: String },
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
        unit: f64,
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

/// A station's workflow.
#[derive(Debug, Clone)]
pub struct Station {
    rules: Rules,
    state: State,
    /// Bumped at the start of each cycle: events of one cycle share a correlation id.
    pub cycle: u64,
}

/// A scanned quantity: digits only, at most 7 of them.
fn is_quantity(data: &str) -> bool {
    !data.is_empty() && data.len() <= 7 && data.bytes().all(|b| b.is_ascii_digit())
}

fn fmt_kg(w: f64) -> String {
    format!("{w:.3}")
}

fn weight_kg(w: &firmware_bridge::Weight) -> Option<f64> {
    let v: f64 = w.value.parse().ok()?;
    Some(match w.unit {
        firmware_bridge::WeightUnit::Kg => v,
        firmware_bridge::WeightUnit::G => v / 1000.0,
        firmware_bridge::WeightUnit::T => v * 1000.0,
        firmware_bridge::WeightUnit::Lb => v * 0.453_592_37,
        firmware_bridge::WeightUnit::Oz => v * 0.028_349_523_125,
    })
}

impl Station {
    pub fn new(rules: Rules) -> Station {
        Station { rules, state: State::Idle, cycle: 0 }
    }

    fn capture(&self, now_ms: u64) -> StableCapture {
        StableCapture::start(
            StableCaptureConfig { required: self.rules.stable_readings, timeout_ms: self.rules.weight_timeout_ms },
            now_ms,
        )
    }

    fn picking_of(&self, scan: &ScanInput) -> String {
        let data = scan.data();
        self.rules.picking_barcodes.get(&data).cloned().unwrap_or(data)
    }

    /// A scan arrived.
    pub fn scan(&mut self, scan: &ScanInput, now_ms: u64) -> Vec<Action> {
        let data = scan.data();
        if self.rules.workflow == Workflow::Scan {
            self.cycle += 1;
            return vec![Action::Store(Kind::Scan, scan.payload.clone())];
        }
        if data == self.rules.cancel_barcode {
            let busy = !matches!(self.state, State::Idle);
            self.state = State::Idle;
            let message = if busy { "Cancelled." } else { "Nothing to cancel." };
            return vec![Action::Feedback { step: "cancelled", ok: busy, message: message.into() }];
        }
        let state = std::mem::replace(&mut self.state, State::Idle);
        match (self.rules.workflow, state) {
            (Workflow::Pack, State::Weighing { picking, capture, .. }) => {
                if let Some(code) = scan.parsed("sscc") {
                    let message = format!("Package {code} for {picking}; put the parcel on the scale.");
                    self.state = State::Weighing { picking, sscc: Some(code), capture };
                    return vec![Action::Feedback { step: "package", ok: true, message }];
                }
                let new = self.picking_of(scan);
                let mut out = vec![Action::Feedback {
                    step: "restarted",
                    ok: false,
                    message: format!("{picking} was not finished; starting {new} instead."),
                }];
                out.extend(self.start_pack(new, now_ms));
                out
            }
            (Workflow::Pack, _) => {
                let picking = self.picking_of(scan);
                self.start_pack(picking, now_ms)
            }
            (Workflow::Count, State::Idle) => {
                self.cycle += 1;
                self.state = State::Location { location: data.clone() };
                vec![Action::Feedback {
                    step: "location",
                    ok: true,
                    message: format!("Counting at {data}; scan a product."),
                }]
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
                let Some(&unit) = known.as_ref().and_then(|k| self.rules.unit_weights.get(k)) else {
                    // No unit weight to count by: the operator scans the quantity instead.
                    let message = format!("{product} at {location}: scan the quantity.");
                    self.state = State::Quantity { location, product };
                    return vec![Action::Feedback { step: "product", ok: true, message }];
                };
                let message = format!("{product} at {location}: put them on the scale.");
                self.state = State::Counting { location, product, unit, capture: self.capture(now_ms) };
                vec![Action::Feedback { step: "product", ok: true, message }]
            }
            (Workflow::Receive, State::Receiving { picking, mut lines }) => {
                if data == self.rules.done_barcode {
                    let n = lines.len();
                    let payload = json!({"picking": picking, "lines": lines, "complete": true});
                    return vec![
                        Action::Store(Kind::Receipt, payload),
                        Action::Feedback {
                            step: "done",
                            ok: true,
                            message: format!("{picking} received: {n} line(s)."),
                        },
                    ];
                }
                let Some(gtin) = scan.parsed("gtin") else {
                    if let Some(sscc) = scan.parsed("sscc") {
                        let message = format!("Pallet {sscc} for {picking}.");
                        let mut out = vec![Action::Feedback { step: "pallet", ok: true, message }];
                        if self.rules.pallet_label {
                            let fields =
                                BTreeMap::from([("picking".to_owned(), picking.clone()), ("sscc".to_owned(), sscc)]);
                            out.push(Action::PrintPallet(fields));
                        }
                        self.state = State::Receiving { picking, lines };
                        return out;
                    }
                    self.state = State::Receiving { picking: picking.clone(), lines };
                    return vec![Action::Feedback {
                        step: "line",
                        ok: false,
                        message: format!(
                            "{data} is not a GS1 product label; scan the label, or {} to finish.",
                            self.rules.done_barcode
                        ),
                    }];
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
                vec![Action::Feedback { step: "line", ok: true, message }]
            }
            (Workflow::Receive, _) => {
                self.cycle += 1;
                let picking = self.picking_of(scan);
                let message =
                    format!("Receiving {picking}: scan the product labels, then {}.", self.rules.done_barcode);
                self.state = State::Receiving { picking, lines: Vec::new() };
                vec![Action::Feedback { step: "picking", ok: true, message }]
            }
            (Workflow::Count, State::Weighing { .. } | State::Receiving { .. }) | (Workflow::Scan, _) => Vec::new(),
        }
    }

    fn start_pack(&mut self, picking: String, now_ms: u64) -> Vec<Action> {
        self.cycle += 1;
        let message = format!("{picking}: put the parcel on the scale.");
        self.state = State::Weighing { picking, sscc: None, capture: self.capture(now_ms) };
        vec![Action::Feedback { step: "picking", ok: true, message }]
    }

    fn count_event(&mut self, location: &str, product: &str, quantity: &str) -> Vec<Action> {
        let payload = json!({"product": {"barcode": product}, "location": location, "quantity": quantity});
        vec![
            Action::Store(Kind::Count, payload),
            Action::Feedback { step: "counted", ok: true, message: format!("{product}: {quantity} at {location}.") },
        ]
    }

    /// A scale reading arrived.
    pub fn reading(&mut self, reading: &ScaleReading, now_ms: u64) -> Vec<Action> {
        let outcome = match &mut self.state {
            State::Weighing { capture, .. } | State::Counting { capture, .. } => capture.feed(reading, now_ms),
            _ => return Vec::new(),
        };
        self.settle(outcome, now_ms)
    }

    /// Time passes (timeouts).
    pub fn tick(&mut self, now_ms: u64) -> Vec<Action> {
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
                vec![
                    Action::Feedback { step: "timeout", ok: false, message: message.clone() },
                    Action::PrintError(message),
                ]
            }
            CaptureOutcome::Captured(weight) => {
                let Some(kg) = weight_kg(&weight) else { return Vec::new() };
                let state = std::mem::replace(&mut self.state, State::Idle);
                match state {
                    State::Weighing { picking, sscc, .. } => {
                        if kg < self.rules.min_weight {
                            let message = format!(
                                "{} kg is below the minimum of {} kg; put the parcel on the scale.",
                                fmt_kg(kg),
                                self.rules.min_weight
                            );
                            self.state = State::Weighing { picking, sscc, capture: self.capture(now_ms) };
                            return vec![Action::Feedback { step: "weight", ok: false, message }];
                        }
                        let mut payload =
                            json!({"picking": picking, "weight": fmt_kg(kg), "label_printed": self.rules.prints});
                        if let Some(s) = &sscc {
                            payload["package"] = json!(s);
                        }
                        let mut out = vec![Action::Store(Kind::Pack, payload)];
                        if self.rules.prints {
                            let fields: BTreeMap<String, String> = [
                                ("picking", picking.clone()),
                                ("weight", fmt_kg(kg)),
                                ("sscc", sscc.unwrap_or_default()),
                            ]
                            .into_iter()
                            .map(|(k, v)| (k.to_owned(), v))
                            .collect();
                            out.push(Action::PrintLabel(fields));
                        }
                        out.push(Action::Feedback {
                            step: "packed",
                            ok: true,
                            message: format!("{picking}: {} kg.", fmt_kg(kg)),
                        });
                        out
                    }
                    State::Counting { location, product, unit, .. } => {
                        let units = kg / unit;
                        let whole = units.round();
                        self.state = State::Location { location: location.clone() };
                        if whole < 1.0 || (units - whole).abs() > self.rules.tolerance {
                            let message = format!(
                                "{} kg is not a whole number of {product} ({units:.2} × {unit} kg); check the scale and weigh again.",
                                fmt_kg(kg)
                            );
                            return vec![
                                Action::Feedback { step: "weight", ok: false, message: message.clone() },
                                Action::PrintError(message),
                            ];
                        }
                        self.count_event(&location, &product, &format!("{whole:.0}"))
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
            min_weight: 0.05,
            tolerance: 0.2,
            unit_weights: [("4006381333931".to_owned(), 0.012)].into_iter().collect(),
            picking_barcodes: [("PK42".to_owned(), "WH/OUT/00042".to_owned())].into_iter().collect(),
            prints: true,
            pallet_label: true,
        }
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
        assert!(matches!(&s.scan(&scan("CANCEL"), 5)[..], [Action::Feedback { step: "cancelled", ok: true, .. }]));
        assert!(s.reading(&stable("1.0"), 6).is_empty() && s.reading(&stable("1.0"), 7).is_empty());
        s.scan(&scan("WH/OUT/2"), 100);
        let out = s.tick(10_200);
        assert!(out.iter().any(|a| matches!(a, Action::Feedback { step: "timeout", .. })));
        assert!(out.iter().any(|a| matches!(a, Action::PrintError(_))));
        s.scan(&scan("WH/OUT/3"), 20_000);
        s.reading(&stable("0.010"), 20_001);
        let out = s.reading(&stable("0.010"), 20_002);
        assert!(stored(&out).is_empty(), "below the minimum");
        let out = s.scan(&scan("WH/OUT/4"), 20_003);
        assert!(matches!(&out[0], Action::Feedback { step: "restarted", ok: false, .. }));
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
            |a| matches!(a, Action::Feedback { ok: false, message, .. } if message.contains("not a whole number"))
        ));
        // No unit weight: the next scan is the quantity.
        let out = s.scan(&scan("5901234123457"), 7);
        assert!(
            out.iter().any(
                |a| matches!(a, Action::Feedback { ok: true, message, .. } if message.contains("scan the quantity"))
            )
        );
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
}
