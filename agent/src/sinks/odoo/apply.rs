//! Events → Odoo operations (shared/reference/odoo.md, "Stock operations"). Every write is
//! absolute (a counted quantity, a done quantity, a weight), so repeating one after an ambiguous
//! failure changes nothing; what is not naturally repeatable is checked first: a picking already
//! `done` is an applied pick or receipt, and a count run whose stock moves already exist (found by
//! the event id in the move name) is an applied count.
//!
//! Look-ups (products, locations, lots) are cached for `cache_ttl`; a miss is a permanent error
//! for that event, with the value that was not found.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use serde_json::{Value, json};

use super::config::BackorderPolicy;
use super::rpc::{OdooRpc, RpcError};
use super::wire::{Call, Fault, many2one_id};
use crate::event::{Backorder, CountPayload, PackPayload, PickPayload, ProductRef, ReceiptPayload};

/// Why an event was not applied.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum NotApplied {
    /// Odoo refused it for good (or something it names does not exist): dead-letter it.
    Permanent(String),
    /// Stop here and retry this event and everything after it (or pause, for credentials).
    Stop(RpcError),
}

impl From<RpcError> for NotApplied {
    fn from(e: RpcError) -> Self {
        match e {
            RpcError::Fault(Fault::Permanent(m)) => NotApplied::Permanent(m),
            other => NotApplied::Stop(other),
        }
    }
}

type Applied = Result<(), NotApplied>;

#[derive(Debug, Clone)]
struct Product {
    id: i64,
}

struct Cached<T> {
    value: T,
    at: Instant,
}

/// One count of a run: its position in the batch, id, seq and payload.
#[derive(Debug, Clone)]
pub struct CountItem {
    pub index: usize,
    pub id: String,
    pub seq: u64,
    pub payload: CountPayload,
}

pub struct Applier {
    pub rpc: OdooRpc,
    gateway: String,
    backorder: BackorderPolicy,
    ttl: Duration,
    products: HashMap<String, Cached<Option<Product>>>,
    locations: HashMap<String, Cached<Option<i64>>>,
}

impl std::fmt::Debug for Applier {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Applier").field("gateway", &self.gateway).finish_non_exhaustive()
    }
}

fn product_key(p: &ProductRef) -> String {
    match (&p.barcode, &p.default_code) {
        (Some(b), _) => format!("barcode:{b}"),
        (None, Some(c)) => format!("code:{c}"),
        (None, None) => String::new(),
    }
}

fn describe(p: &ProductRef) -> String {
    match (&p.barcode, &p.default_code) {
        (Some(b), _) => format!("barcode {b}"),
        (None, Some(c)) => format!("internal reference {c}"),
        (None, None) => "no product reference".into(),
    }
}

fn number(text: &str) -> Value {
    text.parse::<f64>().map_or(Value::Null, |f| json!(f))
}

/// The name given to the stock moves of one count run; it carries the first event's id so a
/// repeated run can be recognised, and how many events the run held.
fn run_name(gateway: &str, run: &[CountItem]) -> String {
    let first = &run[0];
    let last = &run[run.len() - 1];
    format!("dockhand {gateway} seq {}-{}: {} +{}", first.seq, last.seq, first.id, run.len())
}

/// How many events of a run an existing move name says were applied (`… +N`).
fn applied_count(name: &str) -> Option<usize> {
    let after = name.rsplit_once(" +")?.1;
    let digits: String = after.chars().take_while(char::is_ascii_digit).collect();
    digits.parse().ok()
}

impl Applier {
    pub fn new(rpc: OdooRpc, gateway: &str, backorder: BackorderPolicy, ttl: Duration) -> Applier {
        Applier {
            rpc,
            gateway: gateway.to_owned(),
            backorder,
            ttl,
            products: HashMap::new(),
            locations: HashMap::new(),
        }
    }

    /// Looks up every product not cached, in at most two calls (barcodes, internal references).
    async fn load_products(&mut self, refs: &[&ProductRef]) -> Result<(), NotApplied> {
        let fresh = |c: &Cached<Option<Product>>| c.at.elapsed() < self.ttl;
        let mut barcodes = Vec::new();
        let mut codes = Vec::new();
        for p in refs {
            let key = product_key(p);
            if self.products.get(&key).is_some_and(fresh) {
                continue;
            }
            match (&p.barcode, &p.default_code) {
                (Some(b), _) if !barcodes.contains(b) => barcodes.push(b.clone()),
                (None, Some(c)) if !codes.contains(c) => codes.push(c.clone()),
                _ => {}
            }
        }
        for (field, values, prefix) in [("barcode", barcodes, "barcode:"), ("default_code", codes, "code:")] {
            if values.is_empty() {
                continue;
            }
            let call = Call::new("product.product", "search_read")
                .param("domain", json!([[field, "in", values]]))
                .param("fields", json!(["id", "barcode", "default_code"]));
            let rows = self.rpc.call(&call).await?;
            let now = Instant::now();
            for v in &values {
                self.products.insert(format!("{prefix}{v}"), Cached { value: None, at: now });
            }
            for row in rows.as_array().into_iter().flatten() {
                if let (Some(id), Some(v)) =
                    (row.get("id").and_then(Value::as_i64), row.get(field).and_then(Value::as_str))
                {
                    self.products.insert(format!("{prefix}{v}"), Cached { value: Some(Product { id }), at: now });
                }
            }
        }
        Ok(())
    }

    fn product(&self, p: &ProductRef) -> Result<i64, NotApplied> {
        self.products
            .get(&product_key(p))
            .and_then(|c| c.value.as_ref())
            .map(|p| p.id)
            .ok_or_else(|| NotApplied::Permanent(format!("Odoo has no product with {}", describe(p))))
    }

    /// Looks up every location not cached, by barcode or full name, in one call.
    async fn load_locations(&mut self, names: &[&str]) -> Result<(), NotApplied> {
        let missing: Vec<String> = names
            .iter()
            .filter(|n| self.locations.get(**n).is_none_or(|c| c.at.elapsed() >= self.ttl))
            .map(|n| (*n).to_owned())
            .collect();
        if missing.is_empty() {
            return Ok(());
        }
        let call = Call::new("stock.location", "search_read")
            .param("domain", json!(["|", ["barcode", "in", missing], ["complete_name", "in", missing]]))
            .param("fields", json!(["id", "barcode", "complete_name"]));
        let rows = self.rpc.call(&call).await?;
        let now = Instant::now();
        for name in &missing {
            let by = |field: &str| {
                rows.as_array()
                    .into_iter()
                    .flatten()
                    .find(|r| r.get(field).and_then(Value::as_str) == Some(name.as_str()))
                    .and_then(|r| r.get("id").and_then(Value::as_i64))
            };
            self.locations
                .insert(name.clone(), Cached { value: by("barcode").or_else(|| by("complete_name")), at: now });
        }
        Ok(())
    }

    fn location(&self, name: &str) -> Result<i64, NotApplied> {
        self.locations
            .get(name)
            .and_then(|c| c.value)
            .ok_or_else(|| NotApplied::Permanent(format!("Odoo has no location with barcode or full name `{name}`")))
    }

    /// Lot ids by (name, product), creating the lots that do not exist yet.
    async fn lots(&mut self, wanted: &[(String, i64)]) -> Result<HashMap<(String, i64), i64>, NotApplied> {
        let mut found = HashMap::new();
        if wanted.is_empty() {
            return Ok(found);
        }
        let names: Vec<&str> = wanted.iter().map(|(n, _)| n.as_str()).collect();
        let products: Vec<i64> = wanted.iter().map(|(_, p)| *p).collect();
        let call = Call::new("stock.lot", "search_read")
            .param("domain", json!([["name", "in", names], ["product_id", "in", products]]))
            .param("fields", json!(["id", "name", "product_id"]));
        for row in self.rpc.call(&call).await?.as_array().into_iter().flatten() {
            if let (Some(id), Some(name), Some(product)) = (
                row.get("id").and_then(Value::as_i64),
                row.get("name").and_then(Value::as_str),
                row.get("product_id").and_then(many2one_id),
            ) {
                found.insert((name.to_owned(), product), id);
            }
        }
        let mut create: Vec<(String, i64)> = wanted.iter().filter(|k| !found.contains_key(*k)).cloned().collect();
        create.dedup();
        if !create.is_empty() {
            let vals: Vec<Value> = create.iter().map(|(n, p)| json!({"name": n, "product_id": p})).collect();
            let ids = self.rpc.call(&Call::new("stock.lot", "create").param("vals_list", json!(vals))).await?;
            let ids: Vec<i64> = match ids {
                Value::Array(a) => a.iter().filter_map(Value::as_i64).collect(),
                Value::Number(n) => n.as_i64().into_iter().collect(),
                _ => Vec::new(),
            };
            for (key, id) in create.into_iter().zip(ids) {
                found.insert(key, id);
            }
        }
        Ok(found)
    }

    /// Applies a run of consecutive counts: one `create` of inventory-mode quants and one
    /// `action_apply_inventory` for all of them. Returns one result per item, in order; after a
    /// `Stop`, the remaining items are not attempted.
    pub async fn counts(&mut self, run: &[CountItem]) -> Vec<Applied> {
        match self.counts_inner(run).await {
            Ok(results) => results,
            Err(stop) => run.iter().map(|_| Err(stop.clone())).collect(),
        }
    }

    async fn counts_inner(&mut self, run: &[CountItem]) -> Result<Vec<Applied>, NotApplied> {
        let refs: Vec<&ProductRef> = run.iter().map(|c| &c.payload.product).collect();
        self.load_products(&refs).await?;
        let names: Vec<&str> = run.iter().map(|c| c.payload.location.0.as_str()).collect();
        self.load_locations(&names).await?;
        let mut results: Vec<Applied> = Vec::with_capacity(run.len());
        let mut resolved = Vec::with_capacity(run.len());
        for item in run {
            let r = self.product(&item.payload.product).and_then(|p| Ok((p, self.location(&item.payload.location.0)?)));
            match r {
                Ok(ids) => {
                    resolved.push(Some(ids));
                    results.push(Ok(()));
                }
                Err(e) => {
                    resolved.push(None);
                    results.push(Err(e));
                }
            }
        }
        // Already applied? The moves of an applied run carry its first event's id.
        let name = run_name(&self.gateway, run);
        let check = Call::new("stock.move", "search_read")
            .param("domain", json!([["name", "ilike", run[0].id]]))
            .param("fields", json!(["name"]))
            .param("limit", json!(1));
        let done = self.rpc.call(&check).await?;
        let already = done
            .as_array()
            .and_then(|rows| rows.first())
            .and_then(|r| r.get("name").and_then(Value::as_str))
            .and_then(applied_count)
            .unwrap_or(0)
            .min(run.len());
        let todo: Vec<usize> = (already..run.len()).filter(|&i| resolved[i].is_some()).collect();
        if todo.is_empty() {
            return Ok(results);
        }
        let lot_keys: Vec<(String, i64)> =
            todo.iter().filter_map(|&i| Some((run[i].payload.lot.clone()?, resolved[i]?.0))).collect();
        let lots = self.lots(&lot_keys).await?;
        // Counts are absolute: for the same quant, the later event is the truth.
        let mut vals: Vec<(String, Value)> = Vec::new();
        for &i in &todo {
            let Some((product, location)) = resolved[i] else { continue };
            let lot = run[i].payload.lot.as_ref().and_then(|l| lots.get(&(l.clone(), product)).copied());
            let key = format!("{product}/{location}/{lot:?}");
            let mut v = json!({"product_id": product, "location_id": location, "inventory_quantity": number(run[i].payload.quantity.0.as_str())});
            if let Some(lot) = lot {
                v["lot_id"] = json!(lot);
            }
            vals.retain(|(k, _)| *k != key);
            vals.push((key, v));
        }
        let vals: Vec<Value> = vals.into_iter().map(|(_, v)| v).collect();
        let context = json!({"inventory_mode": true});
        let created = self
            .rpc
            .call(&Call::new("stock.quant", "create").param("vals_list", json!(vals)).param("context", context.clone()))
            .await?;
        let quant_ids: Vec<i64> = match created {
            Value::Array(a) => a.iter().filter_map(Value::as_i64).collect(),
            Value::Number(n) => n.as_i64().into_iter().collect(),
            other => return Err(NotApplied::Permanent(format!("unexpected answer to stock.quant create: {other}"))),
        };
        let apply = Call::new("stock.quant", "action_apply_inventory")
            .ids(quant_ids)
            .param("context", json!({"inventory_mode": true, "inventory_name": name}));
        let answer = self.rpc.call(&apply).await?;
        if let Some(model) = answer.get("res_model").and_then(Value::as_str) {
            let message = format!(
                "Odoo did not apply the counts: it asks for a decision ({model}), usually because the quantities changed in Odoo since they were counted; apply them in Odoo, or count again"
            );
            for &i in &todo {
                results[i] = Err(NotApplied::Permanent(message.clone()));
            }
        }
        Ok(results)
    }

    /// The picking by name: id and state.
    async fn picking(&mut self, name: &str) -> Result<(i64, String), NotApplied> {
        let call = Call::new("stock.picking", "search_read")
            .param("domain", json!([["name", "=", name]]))
            .param("fields", json!(["id", "state"]))
            .param("limit", json!(1));
        let rows = self.rpc.call(&call).await?;
        let row = rows
            .as_array()
            .and_then(|r| r.first())
            .ok_or_else(|| NotApplied::Permanent(format!("Odoo has no picking named `{name}`")))?;
        let id =
            row.get("id").and_then(Value::as_i64).ok_or_else(|| NotApplied::Permanent("picking without id".into()))?;
        let state = row.get("state").and_then(Value::as_str).unwrap_or("").to_owned();
        Ok((id, state))
    }

    /// Sets the done quantities of a picking's lines (absolute), then validates it if asked, and
    /// notes the event in the picking's chatter (traceability; best effort).
    async fn transfer(
        &mut self,
        event: &str,
        picking: &str,
        lines: &[TransferLine],
        complete: bool,
        backorder: BackorderPolicy,
    ) -> Applied {
        let (id, state) = self.picking(picking).await?;
        match state.as_str() {
            // Validated by an earlier attempt whose answer was lost, or by someone in Odoo.
            "done" => return Ok(()),
            "cancel" => return Err(NotApplied::Permanent(format!("picking `{picking}` is cancelled in Odoo"))),
            _ => {}
        }
        let refs: Vec<&ProductRef> = lines.iter().map(|l| &l.product).collect();
        self.load_products(&refs).await?;
        let is_16 = self.rpc.is_16();
        let qty_field = if is_16 { "qty_done" } else { "quantity" };
        let move_lines = self
            .rpc
            .call(
                &Call::new("stock.move.line", "search_read")
                    .param("domain", json!([["picking_id", "=", id]]))
                    .param("fields", json!(["id", "product_id", "move_id", "lot_name", "lot_id"])),
            )
            .await?;
        let moves = self
            .rpc
            .call(
                &Call::new("stock.move", "search_read")
                    .param("domain", json!([["picking_id", "=", id]]))
                    .param("fields", json!(["id", "product_id", "location_id", "location_dest_id"])),
            )
            .await?;
        let mut used: Vec<i64> = Vec::new();
        for line in lines {
            let product = self.product(&line.product)?;
            let mut vals = json!({qty_field: number(&line.quantity)});
            if !is_16 {
                vals["picked"] = json!(true);
            }
            if let Some(lot) = &line.lot {
                if line.incoming {
                    vals["lot_name"] = json!(lot);
                    if let Some(expiry) = &line.expiry {
                        vals["expiration_date"] = json!(format!("{expiry} 00:00:00"));
                    }
                } else {
                    let lots = self.lots(&[(lot.clone(), product)]).await?;
                    if let Some(lot_id) = lots.get(&(lot.clone(), product)) {
                        vals["lot_id"] = json!(lot_id);
                    }
                }
            }
            let existing = move_lines.as_array().into_iter().flatten().find(|ml| {
                let id = ml.get("id").and_then(Value::as_i64).unwrap_or(0);
                ml.get("product_id").and_then(many2one_id) == Some(product) && !used.contains(&id)
            });
            match existing.and_then(|ml| ml.get("id").and_then(Value::as_i64)) {
                Some(ml) => {
                    used.push(ml);
                    self.rpc.call(&Call::new("stock.move.line", "write").ids(vec![ml]).param("vals", vals)).await?;
                }
                None => {
                    let Some(mv) = moves
                        .as_array()
                        .into_iter()
                        .flatten()
                        .find(|m| m.get("product_id").and_then(many2one_id) == Some(product))
                    else {
                        return Err(NotApplied::Permanent(format!(
                            "picking `{picking}` has no move for {}",
                            describe(&line.product)
                        )));
                    };
                    vals["move_id"] = mv.get("id").cloned().unwrap_or(Value::Null);
                    vals["picking_id"] = json!(id);
                    vals["product_id"] = json!(product);
                    for f in ["location_id", "location_dest_id"] {
                        vals[f] = json!(mv.get(f).and_then(many2one_id));
                    }
                    let created = self
                        .rpc
                        .call(&Call::new("stock.move.line", "create").param("vals_list", json!([vals])))
                        .await?;
                    if let Some(ml) = created.as_array().and_then(|a| a.first()).and_then(Value::as_i64) {
                        used.push(ml);
                    }
                }
            }
        }
        if !complete {
            return Ok(());
        }
        let mut context =
            json!({"skip_backorder": true, "skip_immediate": true, "skip_sms": true, "skip_expired": true});
        if backorder == BackorderPolicy::None {
            context["picking_ids_not_to_backorder"] = json!([id]);
        }
        let answer = self
            .rpc
            .call(&Call::new("stock.picking", "button_validate").ids(vec![id]).param("context", context))
            .await?;
        let (_, state) = self.picking(picking).await?;
        if state != "done" {
            let asked = answer.get("res_model").and_then(Value::as_str).unwrap_or("nothing");
            return Err(NotApplied::Permanent(format!(
                "picking `{picking}` is `{state}` after validation (Odoo asked for {asked})"
            )));
        }
        let note = format!("Validated by dockhand gateway {}, event {event}.", self.gateway);
        let post = Call::new("stock.picking", "message_post").ids(vec![id]).param("body", json!(note));
        if let Err(e) = self.rpc.call(&post).await {
            tracing::debug!(%picking, error = ?e, "Could not note the event in the picking's chatter.");
        }
        Ok(())
    }

    pub async fn pick(&mut self, event: &str, p: &PickPayload) -> Applied {
        let lines: Vec<TransferLine> = p
            .lines
            .0
            .iter()
            .map(|l| TransferLine {
                product: l.product.clone(),
                quantity: l.quantity.0.as_str().to_owned(),
                lot: l.lot.clone().or_else(|| l.serial.clone()),
                expiry: None,
                incoming: false,
            })
            .collect();
        let policy = match p.backorder {
            Some(Backorder::Create) => BackorderPolicy::Create,
            Some(Backorder::None) => BackorderPolicy::None,
            None => self.backorder,
        };
        self.transfer(event, &p.picking.0, &lines, p.complete.unwrap_or(false), policy).await?;
        if let Some(weight) = &p.weight {
            let (id, _) = self.picking(&p.picking.0).await?;
            self.write_weight("stock.picking", id, weight.as_str()).await?;
        }
        Ok(())
    }

    pub async fn receipt(&mut self, event: &str, r: &ReceiptPayload) -> Applied {
        let lines: Vec<TransferLine> = r
            .lines
            .0
            .iter()
            .map(|l| TransferLine {
                product: l.product.clone(),
                quantity: l.quantity.0.as_str().to_owned(),
                lot: l.lot.clone(),
                expiry: l.expiry.as_ref().map(|d| d.0.clone()),
                incoming: true,
            })
            .collect();
        let backorder = self.backorder;
        self.transfer(event, &r.picking.0, &lines, r.complete.unwrap_or(false), backorder).await
    }

    pub async fn pack(&mut self, p: &PackPayload) -> Applied {
        let (id, _) = self.picking(&p.picking.0).await?;
        self.write_weight("stock.picking", id, p.weight.as_str()).await?;
        if let Some(package) = &p.package {
            let model = self.rpc.package_model();
            let rows = self
                .rpc
                .call(
                    &Call::new(model, "search_read")
                        .param("domain", json!([["name", "=", package]]))
                        .param("fields", json!(["id"]))
                        .param("limit", json!(1)),
                )
                .await?;
            let pkg = rows
                .as_array()
                .and_then(|r| r.first())
                .and_then(|r| r.get("id").and_then(Value::as_i64))
                .ok_or_else(|| NotApplied::Permanent(format!("Odoo has no package named `{package}`")))?;
            self.write_weight(model, pkg, p.weight.as_str()).await?;
        }
        Ok(())
    }

    async fn write_weight(&mut self, model: &'static str, id: i64, weight: &str) -> Applied {
        let call = Call::new(model, "write").ids(vec![id]).param("vals", json!({"shipping_weight": number(weight)}));
        self.rpc.call(&call).await?;
        Ok(())
    }
}

/// A pick or receipt line, as the transfer code needs it.
#[derive(Debug, Clone)]
struct TransferLine {
    product: ProductRef,
    quantity: String,
    lot: Option<String>,
    expiry: Option<String>,
    incoming: bool,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn run_names_carry_the_first_id_and_the_count() {
        let name = "dockhand gw1 seq 10-19: 01a2b3c4-0000-7000-8000-000000000000 +10";
        assert_eq!(applied_count(name), Some(10));
        // Odoo 18 appends the user's name.
        assert_eq!(applied_count(&format!("{name} - Mitchell Admin")), Some(10));
        assert_eq!(applied_count("Product Quantity Updated"), None);
    }
}
