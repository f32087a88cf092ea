//! Events → Odoo operations (shared/reference/odoo.md, "Stock operations"). Every write is
//! absolute (a counted quantity, a done quantity, a weight), so repeating one after an ambiguous
//! failure changes nothing; what is not naturally repeatable is checked first: a picking already
//! `done` is an applied pick or receipt, and a count run whose stock moves already exist (found by
//! the event id in the move name) is an applied count.
//!
//! Look-ups (products, locations, lots) are cached for `cache_ttl`; a miss is a permanent error
//! for that event, with the value that was not found.
//!
//! **One bad event never fails its neighbours.** Counts are checked against the cached product
//! data before anything is written (unknown, archived, consumable or service products are
//! refused with their own reason, the way Odoo would refuse them); if a grouped call still fails
//! for a reason Odoo gives, the group is split in halves and retried until the event it belongs
//! to is alone, so only that one is dead-lettered. Lots are resolved once per (product, name) per
//! run. What a server can store (a pack weight needs the Delivery module) is read once with
//! `fields_get` and checked before the first write of an event.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use serde_json::{Value, json};

use super::config::{BackorderPolicy, StaleCounts};
use super::rpc::{OdooRpc, RpcError};
use super::wire::{Call, Fault, many2one_id};
use crate::event::{Backorder, CountPayload, Decimal, PackPayload, PickPayload, ProductRef, ReceiptPayload};

/// Why an event was not applied.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum NotApplied {
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
    /// Odoo keeps stock for it (16/17: `type = "product"`; 18+: `is_storable`).
    storable: bool,
    /// `consu`, `service`, `combo`: what it is when not storable, for the message.
    kind: String,
    active: bool,
}

struct Cached<T> {
    value: T,
    at: Instant,
}

/// One count of a run: its position in the batch, id, seq and payload.
#[derive(Debug, Clone)]
pub(crate) struct CountItem {
    pub(crate) index: usize,
    pub(crate) id: String,
    pub(crate) seq: u64,
    /// When it was counted (the gateway's clock), for stale-count detection.
    pub(crate) occurred_at: crate::timestamp::Timestamp,
    pub(crate) payload: CountPayload,
}

/// What this server can store, read once per connection with `fields_get`.
#[derive(Debug, Clone, Copy)]
struct Capabilities {
    /// `stock.picking.shipping_weight` (module `delivery` on 16, `stock_delivery` on 17+).
    picking_weight: bool,
    /// `shipping_weight` on the package model (`stock.quant.package` ≤ 18, `stock.package` 19).
    package_weight: bool,
}

pub(crate) struct Applier {
    pub(crate) rpc: OdooRpc,
    gateway: String,
    backorder: BackorderPolicy,
    ttl: Duration,
    products: HashMap<String, Cached<Option<Product>>>,
    locations: HashMap<String, Cached<Option<i64>>>,
    stale: StaleCounts,
    capabilities: Option<Capabilities>,
    /// The chatter note failed once already (logged then; counted since).
    note_failed: bool,
    /// The id of the Odoo user dockhand works as (its own moves are not "moves since a count").
    uid: Option<i64>,
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

/// The name of one applied group of a run: the whole run keeps [`run_name`]'s form (so a repeat
/// is recognised); a part after a refusal names its own first event.
fn group_name(gateway: &str, items: &[&CountItem], run_len: usize) -> String {
    let owned: Vec<CountItem> = items.iter().map(|c| (*c).clone()).collect();
    let mut sorted = owned;
    sorted.sort_by_key(|c| c.index);
    if sorted.len() == run_len {
        return run_name(gateway, &sorted);
    }
    format!(
        "dockhand {gateway} seq {}-{}: {} part of {run_len}",
        sorted[0].seq,
        sorted[sorted.len() - 1].seq,
        sorted[0].id
    )
}

/// A time as Odoo's domains and `date` fields write it: `YYYY-MM-DD HH:MM:SS`, UTC.
fn odoo_datetime(t: crate::timestamp::Timestamp) -> String {
    let text = t.to_string();
    text.get(..19).unwrap_or(&text).replace('T', " ")
}

/// One quant to set, and the counts of the run it settles.
#[derive(Debug, Clone)]
struct QuantCount {
    product: i64,
    location: i64,
    lot: Option<i64>,
    /// Indexes into the run; the last one's quantity is the truth.
    items: Vec<usize>,
    quantity: String,
    since: crate::timestamp::Timestamp,
}

/// How many events of a run an existing move name says were applied (`… +N`).
fn applied_count(name: &str) -> Option<usize> {
    let after = name.rsplit_once(" +")?.1;
    let digits: String = after.chars().take_while(char::is_ascii_digit).collect();
    digits.parse().ok()
}

impl Applier {
    pub(crate) fn new(
        rpc: OdooRpc,
        gateway: &str,
        backorder: BackorderPolicy,
        ttl: Duration,
        stale: StaleCounts,
    ) -> Applier {
        Applier {
            rpc,
            gateway: gateway.to_owned(),
            backorder,
            ttl,
            products: HashMap::new(),
            locations: HashMap::new(),
            stale,
            capabilities: None,
            note_failed: false,
            uid: None,
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
        if barcodes.is_empty() && codes.is_empty() {
            return Ok(());
        }
        // 18 replaced `type = "product"` by the `is_storable` flag (and `type` lost `product`).
        let modern = self.rpc.connect().await? >= 18;
        let mut fields = vec!["id", "barcode", "default_code", "type", "active"];
        if modern {
            fields.push("is_storable");
        }
        for (field, values, prefix) in [("barcode", barcodes, "barcode:"), ("default_code", codes, "code:")] {
            if values.is_empty() {
                continue;
            }
            // Archived products too, so that the refusal can say so.
            let call = Call::new("product.product", "search_read")
                .param("domain", json!([[field, "in", values]]))
                .param("fields", json!(fields))
                .param("context", json!({"active_test": false}));
            let rows = self.rpc.call(&call).await?;
            let now = Instant::now();
            for v in &values {
                self.products.insert(format!("{prefix}{v}"), Cached { value: None, at: now });
            }
            let mut rows: Vec<&Value> = rows.as_array().into_iter().flatten().collect();
            // An active product wins over an archived one with the same barcode.
            rows.sort_by_key(|r| r.get("active").and_then(Value::as_bool).unwrap_or(true));
            for row in rows {
                let (Some(id), Some(v)) =
                    (row.get("id").and_then(Value::as_i64), row.get(field).and_then(Value::as_str))
                else {
                    continue;
                };
                let kind = row.get("type").and_then(Value::as_str).unwrap_or("").to_owned();
                let storable = if modern {
                    row.get("is_storable").and_then(Value::as_bool).unwrap_or(false)
                } else {
                    kind == "product"
                };
                let active = row.get("active").and_then(Value::as_bool).unwrap_or(true);
                let product = Product { id, storable, kind, active };
                self.products.insert(format!("{prefix}{v}"), Cached { value: Some(product), at: now });
            }
        }
        Ok(())
    }

    /// A product that can be counted: found, active, storable; else why not, in Odoo's terms.
    fn countable(&self, p: &ProductRef) -> Result<i64, NotApplied> {
        let product = self
            .products
            .get(&product_key(p))
            .and_then(|c| c.value.as_ref())
            .ok_or_else(|| NotApplied::Permanent(format!("Odoo has no product with {}", describe(p))))?;
        if !product.active {
            return Err(NotApplied::Permanent(format!(
                "the product with {} is archived in Odoo: restore it (Inventory → Products → Archived) or stop counting it",
                describe(p)
            )));
        }
        if !product.storable {
            let what = match product.kind.as_str() {
                "service" => "a service",
                "combo" => "a combo",
                _ => "a consumable",
            };
            return Err(NotApplied::Permanent(format!(
                "the product with {} is {what} in Odoo, which keeps no stock for it (\"Quants cannot be created for consumables or services\"): make it a storable product (\"Track Inventory\") or stop counting it",
                describe(p)
            )));
        }
        Ok(product.id)
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
        let mut found = self.existing_lots(wanted).await?;
        // Each (name, product) once, however often the run repeats it: Odoo refuses a lot
        // created twice ("must be unique across a company").
        let mut create: Vec<(String, i64)> = wanted.iter().filter(|k| !found.contains_key(*k)).cloned().collect();
        create.sort();
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
    pub(crate) async fn counts(&mut self, run: &[CountItem]) -> Vec<Applied> {
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
        // Each count is checked on its own first: a bad one is refused with its own reason and
        // never reaches the grouped call.
        let mut results: Vec<Applied> = Vec::with_capacity(run.len());
        let mut resolved = Vec::with_capacity(run.len());
        for item in run {
            let r =
                self.countable(&item.payload.product).and_then(|p| Ok((p, self.location(&item.payload.location.0)?)));
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
        // Already applied as a whole? The moves of an applied run carry its first event's id
        // and its size. (A run applied in parts is applied again: every write is absolute.)
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
            .unwrap_or(0);
        if already >= run.len() {
            return Ok(results);
        }
        let todo: Vec<usize> = (0..run.len()).filter(|&i| resolved[i].is_some()).collect();
        if todo.is_empty() {
            return Ok(results);
        }
        let lot_keys: Vec<(String, i64)> =
            todo.iter().filter_map(|&i| Some((run[i].payload.lot.clone()?, resolved[i]?.0))).collect();
        let lots = self.lots(&lot_keys).await?;
        // One quant per (product, location, lot): for the same quant the later count is the
        // truth, and the earlier one shares its fate.
        let mut quants: Vec<(String, QuantCount)> = Vec::new();
        for &i in &todo {
            let Some((product, location)) = resolved[i] else { continue };
            let lot = run[i].payload.lot.as_ref().and_then(|l| lots.get(&(l.clone(), product)).copied());
            let key = format!("{product}/{location}/{lot:?}");
            let mut items =
                quants.iter().position(|(k, _)| *k == key).map_or_else(Vec::new, |at| quants.remove(at).1.items);
            items.push(i);
            let counted = run[i].payload.quantity.0.to_string();
            quants.push((
                key,
                QuantCount { product, location, lot, items, quantity: counted, since: run[i].occurred_at },
            ));
        }
        let mut quants: Vec<QuantCount> = quants.into_iter().map(|(_, q)| q).collect();
        self.stale_moves(&mut quants, &mut results).await?;
        quants.retain(|q| q.items.iter().all(|&i| results[i].is_ok()));
        // Apply in one call; if Odoo refuses the group for one count's fault, halve until the
        // culprit is alone.
        let mut groups: Vec<Vec<QuantCount>> = vec![quants];
        while let Some(group) = groups.pop() {
            if group.is_empty() {
                continue;
            }
            let items: Vec<&CountItem> = group.iter().flat_map(|q| q.items.iter().map(|&i| &run[i])).collect();
            let name = group_name(&self.gateway, &items, run.len());
            match self.apply_quants(&group, &name).await {
                Ok(None) => {}
                Ok(Some(message)) => {
                    for q in &group {
                        for &i in &q.items {
                            results[i] = Err(NotApplied::Permanent(message.clone()));
                        }
                    }
                }
                Err(NotApplied::Permanent(message)) if group.len() == 1 => {
                    for &i in &group[0].items {
                        results[i] = Err(NotApplied::Permanent(message.clone()));
                    }
                }
                Err(NotApplied::Permanent(message)) => {
                    tracing::debug!(counts = group.len(), odoo_said = %message, "Odoo refused a group of counts; looking for the one it is about.");
                    let mut group = group;
                    let second = group.split_off(group.len() / 2);
                    // The first half is tried first (the stack is last in, first out).
                    groups.push(second);
                    groups.push(group);
                }
                Err(stop) => return Err(stop),
            }
        }
        Ok(results)
    }

    /// One `create` of inventory-mode quants and one `action_apply_inventory`. `Ok(Some(_))`:
    /// Odoo asked for a decision instead of applying.
    async fn apply_quants(&mut self, group: &[QuantCount], name: &str) -> Result<Option<String>, NotApplied> {
        let vals: Vec<Value> = group
            .iter()
            .map(|q| {
                let mut v = json!({"product_id": q.product, "location_id": q.location, "inventory_quantity": number(&q.quantity)});
                if let Some(lot) = q.lot {
                    v["lot_id"] = json!(lot);
                }
                v
            })
            .collect();
        let created = self
            .rpc
            .call(
                &Call::new("stock.quant", "create")
                    .param("vals_list", json!(vals))
                    .param("context", json!({"inventory_mode": true})),
            )
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
        Ok(answer.get("res_model").and_then(Value::as_str).map(|model| format!(
            "Odoo did not apply the counts: it asks for a decision ({model}), usually because the quantities changed in Odoo since they were counted; apply them in Odoo, or count again"
        )))
    }

    /// dockhand's Odoo user, looked up once.
    async fn own_uid(&mut self) -> Result<i64, NotApplied> {
        if let Some(uid) = self.uid {
            return Ok(uid);
        }
        let call = Call::new("res.users", "search_read")
            .param("domain", json!([["login", "=", self.rpc.login()]]))
            .param("fields", json!(["id"]))
            .param("limit", json!(1));
        let rows = self.rpc.call(&call).await?;
        let uid =
            rows.as_array().and_then(|r| r.first()).and_then(|r| r.get("id")).and_then(Value::as_i64).unwrap_or(0);
        self.uid = Some(uid);
        Ok(uid)
    }

    /// Stock moved at a counted quant after the count was taken: adjust, apply or refuse the
    /// count (`stale_counts`). One read for the whole run. Only moves made by other Odoo users
    /// count: dockhand's own picks and receipts come from events the store orders with the
    /// count (and its own inventory moves must not change a re-applied count).
    async fn stale_moves(&mut self, quants: &mut [QuantCount], results: &mut [Applied]) -> Result<(), NotApplied> {
        if self.stale == StaleCounts::Apply || quants.is_empty() {
            return Ok(());
        }
        let since = quants.iter().map(|q| q.since).min().unwrap_or_else(crate::timestamp::Timestamp::now);
        let products: Vec<i64> = quants.iter().map(|q| q.product).collect();
        let locations: Vec<i64> = quants.iter().map(|q| q.location).collect();
        let qty_field = if self.rpc.is_16() { "qty_done" } else { "quantity" };
        let own = self.own_uid().await?;
        let call = Call::new("stock.move.line", "search_read")
            .param(
                "domain",
                json!([
                    ["product_id", "in", products],
                    ["state", "=", "done"],
                    ["date", ">", odoo_datetime(since)],
                    "|",
                    ["location_id", "in", locations.clone()],
                    ["location_dest_id", "in", locations]
                ]),
            )
            .param(
                "fields",
                json!([
                    "product_id",
                    "location_id",
                    "location_dest_id",
                    "lot_id",
                    qty_field,
                    "date",
                    "reference",
                    "write_uid"
                ]),
            );
        let rows = self.rpc.call(&call).await?;
        for q in quants.iter_mut() {
            let after = odoo_datetime(q.since);
            let mut net = Decimal::from_int(0);
            let mut listed = Vec::new();
            for row in rows.as_array().into_iter().flatten() {
                let reference = row.get("reference").and_then(Value::as_str).unwrap_or("");
                let date = row.get("date").and_then(Value::as_str).unwrap_or("");
                if reference.starts_with("dockhand ")
                    || row.get("write_uid").and_then(many2one_id) == Some(own)
                    || date <= after.as_str()
                    || row.get("product_id").and_then(many2one_id) != Some(q.product)
                    || row.get("lot_id").and_then(many2one_id) != q.lot
                {
                    continue;
                }
                let qty = row.get(qty_field).and_then(Value::as_f64).and_then(|f| Decimal::from_written_float(f).ok());
                let Some(qty) = qty else { continue };
                let into = row.get("location_dest_id").and_then(many2one_id) == Some(q.location);
                let out_of = row.get("location_id").and_then(many2one_id) == Some(q.location);
                let signed = match (into, out_of) {
                    (true, false) => qty.clone(),
                    (false, true) => Decimal::from_int(0).checked_sub(&qty).unwrap_or(qty.clone()),
                    _ => continue,
                };
                net = net.checked_add(&signed).unwrap_or(net);
                listed.push(format!(
                    "{} {signed} at {date} UTC",
                    if reference.is_empty() { "a move" } else { reference }
                ));
            }
            if listed.is_empty() {
                continue;
            }
            match self.stale {
                StaleCounts::Adjust => {
                    let counted = Decimal::parse(&q.quantity).unwrap_or(Decimal::from_int(0));
                    let adjusted = counted.checked_add(&net).unwrap_or(counted);
                    tracing::info!(product = q.product, location = q.location, counted = %q.quantity, %adjusted, moves = %listed.join("; "), "Stock moved at a counted quant after the count; applying the count adjusted by those moves.");
                    q.quantity = adjusted.to_string();
                }
                StaleCounts::DeadLetter => {
                    let message = format!(
                        "stock moved at this product and location after it was counted ({}): the count may be stale; count again, or apply it in Odoo (stale_counts = \"dead-letter\")",
                        listed.join("; ")
                    );
                    for &i in &q.items {
                        results[i] = Err(NotApplied::Permanent(message.clone()));
                    }
                }
                StaleCounts::Apply => {}
            }
        }
        Ok(())
    }

    /// Existing lots by (name, product), without creating any (receipts let Odoo create theirs).
    async fn existing_lots(&mut self, wanted: &[(String, i64)]) -> Result<HashMap<(String, i64), i64>, NotApplied> {
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
        Ok(found)
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
        // Lots: every line's lot resolved once. A receipt names a new lot (Odoo creates it, with
        // its expiry, at validation) but reuses one that exists: naming an existing lot again
        // would create it twice, which Odoo refuses.
        let mut lot_keys: Vec<(String, i64)> = Vec::new();
        for line in lines {
            if let (Some(lot), Ok(product)) = (&line.lot, self.product(&line.product)) {
                lot_keys.push((lot.clone(), product));
            }
        }
        let incoming = lines.iter().any(|l| l.incoming);
        let lots = if incoming { self.existing_lots(&lot_keys).await? } else { self.lots(&lot_keys).await? };
        let mut used: Vec<i64> = Vec::new();
        for line in lines {
            let product = self.product(&line.product)?;
            let mut vals = json!({qty_field: number(&line.quantity)});
            if !is_16 {
                vals["picked"] = json!(true);
            }
            if let Some(lot) = &line.lot {
                match lots.get(&(lot.clone(), product)) {
                    Some(lot_id) => vals["lot_id"] = json!(lot_id),
                    None if line.incoming => {
                        vals["lot_name"] = json!(lot);
                        if let Some(expiry) = &line.expiry {
                            vals["expiration_date"] = json!(format!("{expiry} 00:00:00"));
                        }
                    }
                    None => {}
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
        self.note(id, picking, event).await;
        Ok(())
    }

    /// Notes the event in the picking's chatter. Traceability only: it never fails or delays an
    /// applied event; a failure is logged once per connection, then counted.
    async fn note(&mut self, id: i64, picking: &str, event: &str) {
        let note = format!("Validated by dockhand gateway {}, event {event}.", self.gateway);
        let post = Call::new("stock.picking", "message_post").ids(vec![id]).param("body", json!(note));
        if let Err(e) = self.rpc.call(&post).await {
            crate::counters::ODOO_NOTES_FAILED.add();
            if !std::mem::replace(&mut self.note_failed, true) {
                tracing::warn!(%picking, error = ?e, "Cannot add a note to the picking's chatter; the transfer itself is applied. Further failures are only counted (dockhand_odoo_notes_failed_total).");
            }
        }
    }

    /// What this server can store, read once per connection.
    async fn capabilities(&mut self) -> Result<Capabilities, NotApplied> {
        if let Some(c) = self.capabilities {
            return Ok(c);
        }
        let has_weight = |answer: &Value| answer.get("shipping_weight").is_some();
        let picking =
            self.rpc.call(&Call::new("stock.picking", "fields_get").param("attributes", json!(["type"]))).await?;
        let model = self.rpc.package_model();
        // A server without the package model answers with an error: no package weights there.
        let package = match self.rpc.call(&Call::new(model, "fields_get").param("attributes", json!(["type"]))).await {
            Ok(answer) => has_weight(&answer),
            Err(RpcError::Fault(Fault::Permanent(_))) => false,
            Err(e) => return Err(e.into()),
        };
        let c = Capabilities { picking_weight: has_weight(&picking), package_weight: package };
        tracing::info!(
            picking_weight = c.picking_weight,
            package_weight = c.package_weight,
            "Read what this Odoo can store."
        );
        self.capabilities = Some(c);
        Ok(c)
    }

    /// Refuses a weight this server cannot store, before anything is written.
    async fn check_weight(&mut self, package: bool) -> Result<(), NotApplied> {
        let c = self.capabilities().await?;
        let module = if self.rpc.is_16() { "delivery" } else { "stock_delivery" };
        let missing = if !c.picking_weight {
            Some("stock.picking")
        } else if package && !c.package_weight {
            Some(self.rpc.package_model())
        } else {
            None
        };
        match missing {
            Some(model) => Err(NotApplied::Permanent(format!(
                "this Odoo cannot store a shipping weight ({model} has no `shipping_weight` field): install the Delivery Costs module (`{module}`) and retry this dead letter; nothing was written"
            ))),
            None => Ok(()),
        }
    }

    pub(crate) async fn pick(&mut self, event: &str, p: &PickPayload) -> Applied {
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
        if p.weight.is_some() {
            self.check_weight(false).await?;
        }
        self.transfer(event, &p.picking.0, &lines, p.complete.unwrap_or(false), policy).await?;
        if let Some(weight) = &p.weight {
            let (id, _) = self.picking(&p.picking.0).await?;
            self.write_weight("stock.picking", id, weight.as_str()).await?;
        }
        Ok(())
    }

    pub(crate) async fn receipt(&mut self, event: &str, r: &ReceiptPayload) -> Applied {
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

    /// The weight goes on the picking and, when named, its package — both found and both
    /// writable on this server before either is written.
    pub(crate) async fn pack(&mut self, p: &PackPayload) -> Applied {
        self.check_weight(p.package.is_some()).await?;
        let (id, _) = self.picking(&p.picking.0).await?;
        let package = match &p.package {
            Some(package) => {
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
                    .ok_or_else(|| {
                        NotApplied::Permanent(format!("Odoo has no package named `{package}`; nothing was written"))
                    })?;
                Some((model, pkg))
            }
            None => None,
        };
        self.write_weight("stock.picking", id, p.weight.as_str()).await?;
        if let Some((model, pkg)) = package {
            match self.write_weight(model, pkg, p.weight.as_str()).await {
                Err(NotApplied::Permanent(message)) => {
                    return Err(NotApplied::Permanent(format!(
                        "the weight was written on picking `{}` but not on its package: {message}",
                        p.picking.0
                    )));
                }
                other => other?,
            }
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
