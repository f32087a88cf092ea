//! A fake Odoo for the Odoo sink's tests — no real Odoo can run here, so this is the test bed,
//! written to behave like Odoo 16-19 where the sink can tell (shared/reference/odoo.md):
//!
//! - **Wire**: `POST /jsonrpc` (`common.version`, `common.authenticate` → uid or `false`,
//!   `object.execute_kw`; errors as HTTP 200 `{"error": {"code": 200, "message": "Odoo Server
//!   Error", "data": {"name", "message", "arguments", "debug"}}}`) and, on 19 only, `POST
//!   /json/2/<model>/<method>` with `Authorization: bearer <key>`, named parameters, bare results
//!   and real statuses (401 `werkzeug.exceptions.Unauthorized` "Invalid apikey", 422 UserError,
//!   404 unknown model, 409 LockError, 500 other).
//! - **Quants in inventory mode**: `create` accepts only product/location/lot/package/owner and
//!   `inventory_quantity` (anything else is Odoo's "Quant's creation is restricted" UserError),
//!   reuses the quant of the same keys, takes a list; `action_apply_inventory` makes one stock
//!   move per quant — even for a zero difference — named from the context's `inventory_name`
//!   (Odoo 18+ appends the user's name) and sets the quantity absolutely.
//! - **Pickings**: move lines with `qty_done` on 16 and `quantity` + `picked` on 17+ (the other
//!   version's field is an "Invalid field" error); `button_validate` answers the immediate-
//!   transfer wizard on 16 when nothing is done (unless `skip_immediate`), the backorder wizard
//!   when less than the demand is done (unless `skip_backorder`; with
//!   `picking_ids_not_to_backorder` no backorder is made, otherwise one is), refuses lot-tracked
//!   products without a lot and a picking already done; receipts create lots (with
//!   `expiration_date`) and move stock.
//! - **Transactions**: a call that raises changes nothing (Odoo rolls the request's transaction
//!   back), so a refused grouped `create` leaves no half of it behind.
//! - **Products by version** (`product/models/product_template.py`, `stock/models/product.py`):
//!   16/17 have `type` `product`/`consu`/`service` (and `detailed_type`); 18+ have `type`
//!   `consu`/`service`/`combo` and the `is_storable` flag — asking 18 for `detailed_type` is
//!   "Invalid field". Searches skip archived records unless the context says `active_test: false`.
//!   `search_read` refuses fields the model does not have.
//! - **Constraints** (`stock/models/stock_quant.py` `check_product_id`, `stock/models/stock_lot.py`
//!   `_check_unique_lot`): a quant of a consumable or service is refused ("Quants cannot be
//!   created for consumables or services."); a lot name twice for one product and company —
//!   already stored, or twice in one `create` — is refused ("The combination of serial number and
//!   product must be unique across a company. …").
//! - **Modules**: `shipping_weight` on `stock.picking` and on the package model exists only with
//!   the Delivery module (`delivery` on 16, `stock_delivery` on 17+), which [`FakeOdoo::start`]
//!   installs and [`FakeOdoo::start_with_modules`] may leave out; `fields_get` answers what the
//!   installed modules define; writing an absent field is "Invalid field".
//! - **Done move lines** carry `date`, `state`, `reference` and their locations, for inventory
//!   adjustments and transfers alike (stale-count detection reads them).
//! - **Faults**, switched at run time: 503 with Retry-After, lock errors, added latency, and
//!   commit-then-drop (the call takes effect, then the connection closes without an answer); a
//!   rotated API key.
//!
//! Simplified: one company, one warehouse (`WH/Stock`, vendors, customers), units are the
//! product's, no reservation logic (move lines exist from the start), search domains support
//! the operators the sink uses (`=`, `in`, `ilike`, and a leading `|` of two terms).

// Test support: a broken test set-up should fail loudly where it breaks.
#![allow(clippy::unwrap_used)]

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper::{Request, Response};
use hyper_util::rt::TokioIo;
use serde_json::{Map, Value, json};

/// One injected failure, used by the next object call.
#[derive(Debug, Clone, PartialEq)]
pub enum Fault {
    /// HTTP 503 with `Retry-After: 1`, nothing done.
    Unavailable,
    /// A lock/serialization error, nothing done.
    Lock,
    /// Do the call, then close the connection without answering.
    CommitThenDrop,
    /// Wait this long, then answer normally.
    Latency(Duration),
}

#[derive(Debug, Clone)]
pub struct Product {
    pub id: i64,
    pub barcode: String,
    pub default_code: String,
    pub tracking: &'static str,
    /// `storable`, `consumable` or `service`.
    pub kind: &'static str,
    pub active: bool,
}

#[derive(Debug, Clone)]
struct Quant {
    id: i64,
    product: i64,
    location: i64,
    lot: Option<i64>,
    quantity: f64,
    inventory_quantity: Option<f64>,
}

#[derive(Debug, Clone)]
pub struct Move {
    pub id: i64,
    pub name: String,
    pub product: i64,
    pub picking: Option<i64>,
    pub demand: f64,
    pub done: f64,
    pub state: String,
    location: i64,
    location_dest: i64,
    /// When it was done (`YYYY-MM-DD HH:MM:SS`, UTC).
    pub date: String,
}

#[derive(Debug, Clone)]
struct MoveLine {
    id: i64,
    move_id: i64,
    picking: i64,
    product: i64,
    lot: Option<i64>,
    lot_name: Option<String>,
    expiration_date: Option<String>,
    quantity: f64,
    picked: bool,
    /// The user who last wrote it: the API user (2) for everything done through the API; a
    /// warehouse user (6) for what [`FakeOdoo::deliver_now`] does in the UI.
    write_uid: i64,
}

/// The API user's id (`common.authenticate` answers it).
const API_USER: i64 = 2;
/// A person working in Odoo's UI.
const UI_USER: i64 = 6;

#[derive(Debug, Clone)]
pub struct Picking {
    pub id: i64,
    pub name: String,
    pub state: String,
    pub incoming: bool,
    pub shipping_weight: f64,
    pub backorder_of: Option<i64>,
}

#[derive(Debug, Clone)]
pub struct Lot {
    pub id: i64,
    pub name: String,
    pub product: i64,
    pub expiration_date: Option<String>,
}

#[derive(Debug, Default, Clone)]
struct Db {
    /// Installed modules that change the models the sink uses (`delivery` / `stock_delivery`).
    modules: Vec<String>,
    version: u32,
    database: String,
    login: String,
    key: String,
    next_id: i64,
    products: Vec<Product>,
    locations: Vec<(i64, String, String)>,
    lots: Vec<Lot>,
    quants: Vec<Quant>,
    moves: Vec<Move>,
    lines: Vec<MoveLine>,
    pickings: Vec<Picking>,
    packages: Vec<(i64, String, f64)>,
    messages: Vec<(i64, String)>,
    faults: Vec<(Option<String>, Fault)>,
    calls: Vec<(String, String, String)>,
    /// Every request answered 503 (Odoo behind its proxy during maintenance).
    down: bool,
    /// `message_post` refused (a user without rights on the chatter, a mail module error).
    notes_refused: bool,
}

const STOCK: i64 = 1;
const VENDORS: i64 = 2;
const CUSTOMERS: i64 = 3;
/// `Virtual Locations/Inventory adjustment`, the other side of every inventory move.
const INVENTORY_LOSS: i64 = 4;

/// The Delivery module's technical name in `version`.
pub fn delivery_module(version: u32) -> &'static str {
    if version >= 17 { "stock_delivery" } else { "delivery" }
}

/// Now, as Odoo writes datetimes.
fn odoo_now() -> String {
    let t = dockhand::timestamp::Timestamp::now().to_string();
    t.get(..19).unwrap_or(&t).replace('T', " ")
}

/// An Odoo error: its exception class and message.
#[derive(Debug)]
struct OdooError {
    name: &'static str,
    message: String,
}

fn user_error(message: impl Into<String>) -> OdooError {
    OdooError { name: "odoo.exceptions.UserError", message: message.into() }
}

type Answer = Result<Value, OdooError>;

/// The fake server and its state.
#[derive(Debug)]
pub struct FakeOdoo {
    pub addr: SocketAddr,
    db: Arc<Mutex<Db>>,
    runtime: Option<tokio::runtime::Runtime>,
    https: bool,
}

impl FakeOdoo {
    /// Starts an Odoo of `version` (16-19) with database `db`, user `login` and API key `key`,
    /// holding the locations `WH/Stock` (barcode `WH-STOCK`), `Partners/Vendors`,
    /// `Partners/Customers`. Call from a plain (non-async) test.
    pub fn start(version: u32, database: &str, login: &str, key: &str) -> FakeOdoo {
        FakeOdoo::start_with_modules(version, database, login, key, &[delivery_module(version)])
    }

    /// Like [`FakeOdoo::start`], with only these optional modules installed.
    pub fn start_with_modules(version: u32, database: &str, login: &str, key: &str, modules: &[&str]) -> FakeOdoo {
        FakeOdoo::serve(version, database, login, key, modules, None)
    }

    /// Like [`FakeOdoo::start`], over HTTPS with this certificate and key (PEM files).
    pub fn start_tls(
        version: u32,
        database: &str,
        login: &str,
        key: &str,
        cert: &std::path::Path,
        cert_key: &std::path::Path,
    ) -> FakeOdoo {
        let tls = crate::tls_server_config(cert, cert_key);
        FakeOdoo::serve(version, database, login, key, &[delivery_module(version)], Some(tls))
    }

    fn serve(
        version: u32,
        database: &str,
        login: &str,
        key: &str,
        modules: &[&str],
        tls: Option<Arc<rustls::ServerConfig>>,
    ) -> FakeOdoo {
        let runtime = tokio::runtime::Builder::new_multi_thread().worker_threads(1).enable_all().build().unwrap();
        let db = Arc::new(Mutex::new(Db {
            version,
            database: database.into(),
            login: login.into(),
            key: key.into(),
            next_id: 100,
            modules: modules.iter().map(|m| (*m).to_owned()).collect(),
            locations: vec![
                (STOCK, "WH-STOCK".into(), "WH/Stock".into()),
                (VENDORS, String::new(), "Partners/Vendors".into()),
                (CUSTOMERS, String::new(), "Partners/Customers".into()),
                (INVENTORY_LOSS, String::new(), "Virtual Locations/Inventory adjustment".into()),
            ],
            ..Db::default()
        }));
        let listener = runtime.block_on(tokio::net::TcpListener::bind("127.0.0.1:0")).unwrap();
        let addr = listener.local_addr().unwrap();
        let state = db.clone();
        let https = tls.is_some();
        let acceptor = tls.map(tokio_rustls::TlsAcceptor::from);
        runtime.spawn(async move {
            loop {
                let Ok((tcp, _)) = listener.accept().await else { continue };
                let state = state.clone();
                let acceptor = acceptor.clone();
                tokio::spawn(async move {
                    let service = hyper::service::service_fn(move |req| handle(state.clone(), req));
                    let builder = hyper::server::conn::http1::Builder::new();
                    match acceptor {
                        Some(acceptor) => {
                            if let Ok(stream) = acceptor.accept(tcp).await {
                                let _ = builder.serve_connection(TokioIo::new(stream), service).await;
                            }
                        }
                        None => {
                            let _ = builder.serve_connection(TokioIo::new(tcp), service).await;
                        }
                    }
                });
            }
        });
        FakeOdoo { addr, db, runtime: Some(runtime), https }
    }

    pub fn url(&self) -> String {
        format!("{}://{}", if self.https { "https" } else { "http" }, self.addr)
    }

    /// The `[[sink]]` table that points dockhand at this Odoo (sink `odoo`, its database, user
    /// and URL), with the API key written to `odoo.key` in `dir`, the config file's folder.
    /// `extra` is appended to the table: `batch`, `retry`, `calls_per_second`, `tls`…
    pub fn sink_table(&self, dir: &std::path::Path, extra: &str) -> String {
        let (database, login, key) = self.with(|db| (db.database.clone(), db.login.clone(), db.key.clone()));
        std::fs::write(dir.join("odoo.key"), key).unwrap();
        format!(
            "[[sink]]\nname = \"odoo\"\ntype = \"odoo\"\nurl = \"{}\"\ndatabase = \"{database}\"\nlogin = \"{login}\"\napi_key_file = \"odoo.key\"\n{extra}\n",
            self.url()
        )
    }

    fn with<T>(&self, f: impl FnOnce(&mut Db) -> T) -> T {
        f(&mut self.db.lock().unwrap())
    }

    /// A storable product.
    pub fn add_product(&self, barcode: &str, default_code: &str, tracking: &'static str) -> i64 {
        self.add_product_of("storable", barcode, default_code, tracking)
    }

    /// A product of `kind`: `storable`, `consumable` or `service`.
    pub fn add_product_of(&self, kind: &'static str, barcode: &str, default_code: &str, tracking: &'static str) -> i64 {
        self.with(|db| {
            let id = db.id();
            db.products.push(Product {
                id,
                barcode: barcode.into(),
                default_code: default_code.into(),
                tracking,
                kind,
                active: true,
            });
            id
        })
    }

    /// Changes a product's kind in Odoo (`storable`, `consumable`, `service`).
    pub fn set_kind(&self, product: i64, kind: &'static str) {
        self.with(|db| db.products.iter_mut().filter(|p| p.id == product).for_each(|p| p.kind = kind));
    }

    /// An internal location with this barcode and full name; its id.
    pub fn add_location(&self, barcode: &str, name: &str) -> i64 {
        self.with(|db| {
            let id = db.id();
            db.locations.push((id, barcode.into(), name.into()));
            id
        })
    }

    /// Quantity of `product` in `location` (one lot by name, or without a lot).
    pub fn stock_at(&self, product: i64, location: i64, lot: Option<&str>) -> f64 {
        self.with(|db| {
            let lot_id = lot.and_then(|l| db.lots.iter().find(|x| x.name == l && x.product == product).map(|x| x.id));
            db.quants
                .iter()
                .filter(|q| q.product == product && q.location == location && q.lot == lot_id)
                .map(|q| q.quantity)
                .sum()
        })
    }

    /// Makes every `message_post` fail with an AccessError, as for a user without chatter rights.
    pub fn refuse_notes(&self) {
        self.with(|db| db.notes_refused = true);
    }

    /// Archives a product (it disappears from searches).
    pub fn archive(&self, product: i64) {
        self.with(|db| db.products.iter_mut().filter(|p| p.id == product).for_each(|p| p.active = false));
    }

    /// Someone in Odoo ships `quantity` of `product` from `WH/Stock` now: an outgoing picking,
    /// validated. Its name.
    pub fn deliver_now(&self, product: i64, quantity: f64) -> String {
        self.with(|db| {
            let name = format!("WH/OUT/{:05}", db.next_id + 1);
            let id = db.picking(&name, false, &[(product, quantity)], None);
            for l in db.lines.iter_mut().filter(|l| l.picking == id) {
                l.quantity = quantity;
                l.picked = true;
                l.write_uid = UI_USER;
            }
            let context = json!({"skip_backorder": true, "skip_immediate": true});
            validate(db, &[id], context.as_object().unwrap()).unwrap();
            name
        })
    }

    /// Sets the on-hand quantity of a product in `WH/Stock`.
    pub fn set_stock(&self, product: i64, quantity: f64) {
        self.with(|db| {
            let id = db.quant(product, STOCK, None);
            db.quants.iter_mut().find(|q| q.id == id).unwrap().quantity = quantity;
        });
    }

    /// A picking in state `assigned` with one move (and one move line) per `(product, demand)`:
    /// incoming from vendors to `WH/Stock`, or outgoing from `WH/Stock` to customers.
    pub fn add_picking(&self, name: &str, incoming: bool, lines: &[(i64, f64)]) -> i64 {
        self.with(|db| db.picking(name, incoming, lines, None))
    }

    /// Rotates the API key: the old one is refused from now on.
    pub fn set_key(&self, key: &str) {
        self.with(|db| db.key = key.into());
    }

    /// Takes Odoo down (every request, version and login included, gets the proxy's 503) or
    /// brings it back.
    pub fn set_down(&self, down: bool) {
        self.with(|db| db.down = down);
    }

    /// Queues faults for the next object calls, in order.
    pub fn inject(&self, faults: &[Fault]) {
        self.with(|db| db.faults.extend(faults.iter().map(|f| (None, f.clone()))));
    }

    /// Queues a fault for the next call of `method` (whatever calls come before it).
    pub fn inject_on(&self, method: &str, fault: Fault) {
        self.with(|db| db.faults.push((Some(method.to_owned()), fault)));
    }

    /// Quantity on hand of `product` in `WH/Stock` (all lots, or one lot by name).
    pub fn stock(&self, product: i64, lot: Option<&str>) -> f64 {
        self.with(|db| {
            let lot_id = lot.map(|l| db.lots.iter().find(|x| x.name == l && x.product == product).map(|x| x.id));
            db.quants
                .iter()
                .filter(|q| q.product == product && q.location == STOCK)
                .filter(|q| lot_id.is_none_or(|l| q.lot == l))
                .map(|q| q.quantity)
                .sum()
        })
    }

    /// Stock moves of a product that are done (inventory adjustments and transfers).
    pub fn moves_of(&self, product: i64) -> Vec<Move> {
        self.with(|db| db.moves.iter().filter(|m| m.product == product && m.state == "done").cloned().collect())
    }

    pub fn picking(&self, name: &str) -> Option<Picking> {
        self.with(|db| db.pickings.iter().find(|p| p.name == name).cloned())
    }

    /// Backorders made from the picking `name`.
    pub fn backorders_of(&self, name: &str) -> Vec<Picking> {
        self.with(|db| {
            let Some(id) = db.pickings.iter().find(|p| p.name == name).map(|p| p.id) else { return Vec::new() };
            db.pickings.iter().filter(|p| p.backorder_of == Some(id)).cloned().collect()
        })
    }

    pub fn lots(&self) -> Vec<Lot> {
        self.with(|db| db.lots.clone())
    }

    pub fn add_package(&self, name: &str) {
        self.with(|db| {
            let id = db.id();
            db.packages.push((id, name.into(), 0.0));
        });
    }

    pub fn package_weight(&self, name: &str) -> Option<f64> {
        self.with(|db| db.packages.iter().find(|p| p.1 == name).map(|p| p.2))
    }

    /// Chatter messages posted on the picking `name`.
    pub fn messages(&self, name: &str) -> Vec<String> {
        self.with(|db| {
            let Some(id) = db.pickings.iter().find(|p| p.name == name).map(|p| p.id) else { return Vec::new() };
            db.messages.iter().filter(|m| m.0 == id).map(|m| m.1.clone()).collect()
        })
    }

    /// Every object call so far: (protocol, model, method).
    pub fn calls(&self) -> Vec<(String, String, String)> {
        self.with(|db| db.calls.clone())
    }
}

impl Drop for FakeOdoo {
    fn drop(&mut self) {
        if let Some(rt) = self.runtime.take() {
            rt.shutdown_background();
        }
    }
}

impl Db {
    fn id(&mut self) -> i64 {
        self.next_id += 1;
        self.next_id
    }

    fn quant(&mut self, product: i64, location: i64, lot: Option<i64>) -> i64 {
        if let Some(q) = self.quants.iter().find(|q| q.product == product && q.location == location && q.lot == lot) {
            return q.id;
        }
        let id = self.id();
        self.quants.push(Quant { id, product, location, lot, quantity: 0.0, inventory_quantity: None });
        id
    }

    fn picking(&mut self, name: &str, incoming: bool, lines: &[(i64, f64)], backorder_of: Option<i64>) -> i64 {
        let id = self.id();
        let (location, location_dest) = if incoming { (VENDORS, STOCK) } else { (STOCK, CUSTOMERS) };
        self.pickings.push(Picking {
            id,
            name: name.into(),
            state: "assigned".into(),
            incoming,
            shipping_weight: 0.0,
            backorder_of,
        });
        for &(product, demand) in lines {
            let move_id = self.id();
            self.moves.push(Move {
                id: move_id,
                name: name.into(),
                product,
                picking: Some(id),
                demand,
                done: 0.0,
                state: "assigned".into(),
                location,
                location_dest,
                date: String::new(),
            });
            let line = self.id();
            self.lines.push(MoveLine {
                id: line,
                move_id,
                picking: id,
                product,
                lot: None,
                lot_name: None,
                expiration_date: None,
                // 17+: the reserved quantity; 16: nothing done yet.
                quantity: if self.version >= 17 { demand } else { 0.0 },
                picked: false,
                write_uid: API_USER,
            });
        }
        id
    }

    fn has_delivery(&self) -> bool {
        self.modules.iter().any(|m| m == delivery_module(self.version))
    }

    /// The fields of `model` on this server (for `fields_get` and strict reads).
    fn fields_of(&self, model: &str) -> Vec<String> {
        let package_model = if self.version >= 19 { "stock.package" } else { "stock.quant.package" };
        let mut fields: Vec<&str> = match model {
            "stock.picking" => vec!["id", "name", "state", "picking_type_code", "backorder_id"],
            m if m == package_model => vec!["id", "name"],
            _ => {
                return records(self, model)
                    .ok()
                    .and_then(|r| r.first().map(|r| r.keys().cloned().collect()))
                    .unwrap_or_default();
            }
        };
        if self.has_delivery() {
            fields.push("shipping_weight");
        }
        fields.into_iter().map(str::to_owned).collect()
    }

    fn location_name(&self, id: i64) -> Value {
        self.locations.iter().find(|l| l.0 == id).map_or(json!(false), |l| json!([l.0, l.2]))
    }

    fn product_code(&self, id: i64) -> String {
        self.products.iter().find(|p| p.id == id).map(|p| p.default_code.clone()).unwrap_or_default()
    }

    fn product_name(&self, id: i64) -> Value {
        self.products.iter().find(|p| p.id == id).map_or(json!(false), |p| json!([p.id, p.default_code]))
    }
}

// ---------------------------------------------------------------------------------------------
// Domains.

fn matches(domain: &Value, record: &Map<String, Value>) -> bool {
    let Some(terms) = domain.as_array() else { return true };
    let mut i = 0;
    let mut all = true;
    while i < terms.len() {
        if terms[i] == json!("|") && i + 2 < terms.len() {
            all &= term(&terms[i + 1], record) || term(&terms[i + 2], record);
            i += 3;
        } else {
            all &= term(&terms[i], record);
            i += 1;
        }
    }
    all
}

fn scalar(v: &Value) -> Value {
    match v {
        Value::Array(a) if a.len() == 2 && a[0].is_i64() => a[0].clone(),
        other => other.clone(),
    }
}

fn term(t: &Value, record: &Map<String, Value>) -> bool {
    let Some([field, op, value]) = t.as_array().map(|a| a.as_slice()).and_then(|a| <&[Value; 3]>::try_from(a).ok())
    else {
        return true;
    };
    let actual = scalar(record.get(field.as_str().unwrap_or("")).unwrap_or(&Value::Null));
    match op.as_str().unwrap_or("") {
        "=" => actual == *value,
        "!=" => actual != *value,
        ">" => match (actual.as_str(), value.as_str()) {
            (Some(a), Some(b)) => a > b,
            _ => actual.as_f64().zip(value.as_f64()).is_some_and(|(a, b)| a > b),
        },
        "in" => value.as_array().is_some_and(|v| v.contains(&actual)),
        "ilike" => {
            let needle = value.as_str().unwrap_or("").to_lowercase();
            actual.as_str().is_some_and(|s| s.to_lowercase().contains(&needle))
        }
        _ => false,
    }
}

// ---------------------------------------------------------------------------------------------
// Models.

fn f(v: Option<&Value>) -> f64 {
    v.and_then(Value::as_f64).unwrap_or(0.0)
}

fn records(db: &Db, model: &str) -> Result<Vec<Map<String, Value>>, OdooError> {
    let qty_field = if db.version >= 17 { "quantity" } else { "qty_done" };
    let package_model = if db.version >= 19 { "stock.package" } else { "stock.quant.package" };
    let rows: Vec<Value> = match model {
        "product.product" => db
            .products
            .iter()
            .map(|p| {
                let mut v = json!({"id": p.id, "barcode": p.barcode, "default_code": p.default_code, "display_name": p.default_code, "tracking": p.tracking, "active": p.active});
                if db.version >= 18 {
                    v["type"] = json!(if p.kind == "service" { "service" } else { "consu" });
                    v["is_storable"] = json!(p.kind == "storable");
                } else {
                    let t = match p.kind {
                        "storable" => "product",
                        "service" => "service",
                        _ => "consu",
                    };
                    v["type"] = json!(t);
                    v["detailed_type"] = json!(t);
                }
                v
            })
            .collect(),
        "res.users" => vec![
            json!({"id": API_USER, "login": db.login, "name": "dockhand", "active": true}),
            json!({"id": UI_USER, "login": "marc@example.com", "name": "Marc Demo", "active": true}),
        ],
        "stock.location" => db
            .locations
            .iter()
            .map(|l| json!({"id": l.0, "barcode": if l.1.is_empty() { json!(false) } else { json!(l.1) }, "complete_name": l.2}))
            .collect(),
        "stock.lot" => db
            .lots
            .iter()
            .map(|l| json!({"id": l.id, "name": l.name, "product_id": db.product_name(l.product), "expiration_date": l.expiration_date.clone().map_or(json!(false), |d| json!(d))}))
            .collect(),
        "stock.quant" => db
            .quants
            .iter()
            .map(|q| json!({"id": q.id, "product_id": db.product_name(q.product), "location_id": db.location_name(q.location), "lot_id": q.lot.map_or(json!(false), |l| json!(l)), "quantity": q.quantity, "inventory_quantity": q.inventory_quantity.unwrap_or(0.0)}))
            .collect(),
        "stock.move" => db
            .moves
            .iter()
            .map(|m| json!({"id": m.id, "name": m.name, "product_id": db.product_name(m.product), "picking_id": m.picking.map_or(json!(false), |p| json!(p)), "product_uom_qty": m.demand, "quantity": m.done, "state": m.state, "location_id": db.location_name(m.location), "location_dest_id": db.location_name(m.location_dest)}))
            .collect(),
        "stock.move.line" => {
            let moves: std::collections::HashMap<i64, &Move> = db.moves.iter().map(|m| (m.id, m)).collect();
            db.lines
            .iter()
            .map(|l| {
                let m = moves.get(&l.move_id).copied();
                let mut v = json!({"id": l.id, "move_id": l.move_id, "picking_id": l.picking, "product_id": db.product_name(l.product), "lot_id": l.lot.map_or(json!(false), |x| json!(x)), "lot_name": l.lot_name.clone().map_or(json!(false), |x| json!(x)),
                    "state": m.map_or("draft", |m| m.state.as_str()), "date": m.map_or(String::new(), |m| m.date.clone()), "reference": m.map_or(String::new(), |m| m.name.clone()),
                    "location_id": m.map_or(json!(false), |m| db.location_name(m.location)), "location_dest_id": m.map_or(json!(false), |m| db.location_name(m.location_dest)),
                    "write_uid": [l.write_uid, if l.write_uid == API_USER { "dockhand" } else { "Marc Demo" }]});
                v[qty_field] = json!(l.quantity);
                if db.version >= 17 {
                    v["picked"] = json!(l.picked);
                }
                v
            })
            .collect()
        },
        "stock.picking" => db
            .pickings
            .iter()
            .map(|p| {
                let mut v = json!({"id": p.id, "name": p.name, "state": p.state, "picking_type_code": if p.incoming { "incoming" } else { "outgoing" }, "backorder_id": p.backorder_of.map_or(json!(false), |b| json!(b))});
                if db.has_delivery() {
                    v["shipping_weight"] = json!(p.shipping_weight);
                }
                v
            })
            .collect(),
        m if m == package_model => db
            .packages
            .iter()
            .map(|p| {
                let mut v = json!({"id": p.0, "name": p.1});
                if db.has_delivery() {
                    v["shipping_weight"] = json!(p.2);
                }
                v
            })
            .collect(),
        _ => return Err(OdooError { name: "builtins.KeyError", message: format!("Object {model} doesn't exist") }),
    };
    Ok(rows.into_iter().filter_map(|v| v.as_object().cloned()).collect())
}

fn search_read(db: &Db, model: &str, p: &Map<String, Value>) -> Answer {
    let domain = p.get("domain").cloned().unwrap_or(json!([]));
    let fields: Option<Vec<String>> = p
        .get("fields")
        .and_then(Value::as_array)
        .map(|a| a.iter().filter_map(|f| f.as_str().map(str::to_owned)).collect());
    let limit = p.get("limit").and_then(Value::as_u64).map_or(usize::MAX, |l| l as usize);
    let all = records(db, model)?;
    if let (Some(fields), Some(first)) = (&fields, all.first())
        && let Some(bad) = fields.iter().find(|f| !first.contains_key(*f))
    {
        return Err(invalid_field(model, bad));
    }
    let active_test = p.get("context").and_then(|c| c.get("active_test")).and_then(Value::as_bool).unwrap_or(true);
    let rows: Vec<Value> = all
        .into_iter()
        .filter(|r| !active_test || r.get("active").and_then(Value::as_bool).unwrap_or(true))
        .filter(|r| matches(&domain, r))
        .take(limit)
        .map(|r| match &fields {
            Some(fields) => {
                let mut out = Map::new();
                out.insert("id".into(), r["id"].clone());
                for field in fields {
                    out.insert(field.clone(), r.get(field).cloned().unwrap_or(json!(false)));
                }
                Value::Object(out)
            }
            None => Value::Object(r),
        })
        .collect();
    Ok(json!(rows))
}

fn invalid_field(model: &str, field: &str) -> OdooError {
    OdooError { name: "builtins.ValueError", message: format!("Invalid field '{field}' on model '{model}'") }
}

fn call(db: &mut Db, model: &str, method: &str, ids: Vec<i64>, p: &Map<String, Value>) -> Answer {
    let context = p.get("context").and_then(Value::as_object).cloned().unwrap_or_default();
    let package_model = if db.version >= 19 { "stock.package" } else { "stock.quant.package" };
    match (model, method) {
        (_, "search_read") => search_read(db, model, p),
        (_, "search_count") => {
            let domain = p.get("domain").cloned().unwrap_or(json!([]));
            Ok(json!(records(db, model)?.iter().filter(|r| matches(&domain, r)).count()))
        }
        (_, "search") => {
            let domain = p.get("domain").cloned().unwrap_or(json!([]));
            Ok(json!(
                records(db, model)?.iter().filter(|r| matches(&domain, r)).map(|r| r["id"].clone()).collect::<Vec<_>>()
            ))
        }
        (_, "fields_get") => {
            records(db, model)?;
            let fields: Map<String, Value> =
                db.fields_of(model).into_iter().map(|f| (f, json!({"type": "char"}))).collect();
            Ok(Value::Object(fields))
        }
        (_, "read") => {
            let mut q = p.clone();
            q.insert("domain".into(), json!([["id", "in", ids]]));
            search_read(db, model, &q)
        }
        ("stock.lot", "create") => {
            let (vals, single) = vals_list(p);
            let mut ids = Vec::new();
            for v in vals {
                let name = v.get("name").and_then(Value::as_str).unwrap_or("").to_owned();
                let product = v.get("product_id").and_then(Value::as_i64).unwrap_or(0);
                let id = db.id();
                db.lots.push(Lot { id, name, product, expiration_date: None });
                ids.push(id);
            }
            // `_check_unique_lot` runs on the created records, against everything stored:
            // a name twice in one call is refused like one that already existed.
            let mut lines = Vec::new();
            for lot in db.lots.iter().filter(|l| ids.contains(&l.id)) {
                let n = db.lots.iter().filter(|x| x.name == lot.name && x.product == lot.product).count();
                let line = format!(" - Product: {}, Serial Number: {}", db.product_code(lot.product), lot.name);
                if n != 1 && !lines.contains(&line) {
                    lines.push(line);
                }
            }
            if !lines.is_empty() {
                return Err(OdooError {
                    name: "odoo.exceptions.ValidationError",
                    message: format!(
                        "The combination of serial number and product must be unique across a company.\nFollowing combination contains duplicates:\n{}",
                        lines.join("\n")
                    ),
                });
            }
            Ok(if single { json!(ids[0]) } else { json!(ids) })
        }
        ("stock.quant", "create") => {
            if context.get("inventory_mode") != Some(&json!(true)) {
                return Err(OdooError {
                    name: "odoo.exceptions.AccessError",
                    message: "Quants cannot be created outside inventory mode".into(),
                });
            }
            let (vals, single) = vals_list(p);
            let allowed = ["product_id", "location_id", "lot_id", "package_id", "owner_id", "inventory_quantity"];
            let mut ids = Vec::new();
            for v in vals {
                if let Some(bad) = v.keys().find(|k| !allowed.contains(&k.as_str())) {
                    let _ = bad;
                    return Err(user_error("Quant's creation is restricted, you can't do this operation."));
                }
                let product = v.get("product_id").and_then(Value::as_i64).unwrap_or(0);
                if !db.products.iter().any(|x| x.id == product) {
                    return Err(OdooError {
                        name: "odoo.exceptions.MissingError",
                        message: "Record does not exist or has been deleted.".into(),
                    });
                }
                let location = v.get("location_id").and_then(Value::as_i64).unwrap_or(0);
                let lot = v.get("lot_id").and_then(Value::as_i64);
                let id = db.quant(product, location, lot);
                let qty = f(v.get("inventory_quantity"));
                db.quants.iter_mut().find(|q| q.id == id).unwrap().inventory_quantity = Some(qty);
                ids.push(id);
            }
            // `check_product_id`, a constraint on the created quants: the whole call fails.
            let stockless = ids.iter().any(|id| {
                let product = db.quants.iter().find(|q| q.id == *id).map_or(0, |q| q.product);
                db.products.iter().any(|p| p.id == product && p.kind != "storable")
            });
            if stockless {
                return Err(OdooError {
                    name: "odoo.exceptions.ValidationError",
                    message: "Quants cannot be created for consumables or services.".into(),
                });
            }
            Ok(if single { json!(ids[0]) } else { json!(ids) })
        }
        ("stock.quant", "action_apply_inventory") => {
            let name = match context.get("inventory_name").and_then(Value::as_str) {
                Some(n) if db.version >= 18 => format!("{n} - Mitchell Admin"),
                Some(n) => n.to_owned(),
                None => "Product Quantity Updated".to_owned(),
            };
            for id in ids {
                let Some(q) = db.quants.iter().find(|q| q.id == id).cloned() else {
                    return Err(OdooError {
                        name: "odoo.exceptions.MissingError",
                        message: "Record does not exist or has been deleted.".into(),
                    });
                };
                let counted = q.inventory_quantity.unwrap_or(q.quantity);
                let diff = counted - q.quantity;
                let move_id = db.id();
                let name = if context.get("inventory_name").is_none() && diff == 0.0 {
                    "Product Quantity Confirmed".into()
                } else {
                    name.clone()
                };
                db.moves.push(Move {
                    id: move_id,
                    name,
                    product: q.product,
                    picking: None,
                    demand: diff.abs(),
                    done: diff.abs(),
                    state: "done".into(),
                    location: if diff >= 0.0 { INVENTORY_LOSS } else { q.location },
                    location_dest: if diff >= 0.0 { q.location } else { INVENTORY_LOSS },
                    date: odoo_now(),
                });
                // Odoo makes a done move line per inventory move too.
                let line = db.id();
                db.lines.push(MoveLine {
                    id: line,
                    move_id,
                    picking: 0,
                    product: q.product,
                    lot: q.lot,
                    lot_name: None,
                    expiration_date: None,
                    quantity: diff.abs(),
                    picked: true,
                    write_uid: API_USER,
                });
                let quant = db.quants.iter_mut().find(|x| x.id == id).unwrap();
                quant.quantity = counted;
                quant.inventory_quantity = None;
            }
            Ok(Value::Null)
        }
        ("stock.move.line", "write") => {
            let vals = p.get("vals").and_then(Value::as_object).cloned().unwrap_or_default();
            write_lines(db, &ids, &vals)?;
            Ok(json!(true))
        }
        ("stock.move.line", "create") => {
            let (vals, single) = vals_list(p);
            let mut out = Vec::new();
            for v in vals {
                let id = db.id();
                let move_id = v.get("move_id").and_then(Value::as_i64).unwrap_or(0);
                let picking = v.get("picking_id").and_then(Value::as_i64).unwrap_or(0);
                let product = v.get("product_id").and_then(Value::as_i64).unwrap_or(0);
                db.lines.push(MoveLine {
                    id,
                    move_id,
                    picking,
                    product,
                    lot: None,
                    lot_name: None,
                    expiration_date: None,
                    quantity: 0.0,
                    picked: false,
                    write_uid: API_USER,
                });
                let mut rest = v.clone();
                for k in ["move_id", "picking_id", "product_id", "location_id", "location_dest_id"] {
                    rest.remove(k);
                }
                write_lines(db, &[id], &rest)?;
                out.push(id);
            }
            Ok(if single { json!(out[0]) } else { json!(out) })
        }
        ("stock.picking", "write") | (_, "write") if model == "stock.picking" || model == package_model => {
            let vals = p.get("vals").and_then(Value::as_object).cloned().unwrap_or_default();
            if let Some(bad) = vals.keys().find(|k| !db.fields_of(model).contains(k)) {
                return Err(invalid_field(model, bad));
            }
            let w = f(vals.get("shipping_weight"));
            for id in ids {
                if let Some(pk) = db.pickings.iter_mut().find(|x| x.id == id) {
                    pk.shipping_weight = w;
                } else if let Some(pkg) = db.packages.iter_mut().find(|x| x.0 == id) {
                    pkg.2 = w;
                } else {
                    return Err(OdooError {
                        name: "odoo.exceptions.MissingError",
                        message: "Record does not exist or has been deleted.".into(),
                    });
                }
            }
            Ok(json!(true))
        }
        ("stock.picking", "button_validate") => validate(db, &ids, &context),
        ("stock.picking", "message_post") if db.notes_refused => Err(OdooError {
            name: "odoo.exceptions.AccessError",
            message: "You are not allowed to post on this document (Transfer).".into(),
        }),
        ("stock.picking", "message_post") => {
            let body = p.get("body").and_then(Value::as_str).unwrap_or("").to_owned();
            let id = db.id();
            for picking in ids {
                db.messages.push((picking, body.clone()));
            }
            Ok(json!(id))
        }
        _ => Err(OdooError {
            name: "builtins.AttributeError",
            message: format!("The method '{method}' does not exist on the model '{model}'"),
        }),
    }
}

/// One call in its own transaction: an error leaves the database as it was (the call log stays).
fn transaction(db: &mut Db, model: &str, method: &str, ids: Vec<i64>, p: &Map<String, Value>) -> Answer {
    if matches!(method, "search_read" | "search" | "search_count" | "read" | "fields_get") {
        return call(db, model, method, ids, p);
    }
    // The call log is not part of the database (and is the largest thing to copy).
    let calls = std::mem::take(&mut db.calls);
    let before = db.clone();
    db.calls = calls;
    let answer = call(db, model, method, ids, p);
    if answer.is_err() {
        let calls = std::mem::take(&mut db.calls);
        *db = before;
        db.calls = calls;
    }
    answer
}

fn vals_list(p: &Map<String, Value>) -> (Vec<Map<String, Value>>, bool) {
    match p.get("vals_list").or_else(|| p.get("vals")) {
        Some(Value::Array(a)) => (a.iter().filter_map(|v| v.as_object().cloned()).collect(), false),
        Some(Value::Object(o)) => (vec![o.clone()], true),
        _ => (Vec::new(), false),
    }
}

fn write_lines(db: &mut Db, ids: &[i64], vals: &Map<String, Value>) -> Result<(), OdooError> {
    for key in vals.keys() {
        let known = match key.as_str() {
            "quantity" | "picked" => db.version >= 17,
            "qty_done" => db.version <= 16,
            "lot_id" | "lot_name" | "expiration_date" => true,
            _ => false,
        };
        if !known {
            return Err(invalid_field("stock.move.line", key));
        }
    }
    for id in ids {
        let line = db.lines.iter_mut().find(|l| l.id == *id).ok_or(OdooError {
            name: "odoo.exceptions.MissingError",
            message: "Record does not exist or has been deleted.".into(),
        })?;
        for (k, v) in vals {
            match k.as_str() {
                "quantity" | "qty_done" => line.quantity = f(Some(v)),
                "picked" => line.picked = v.as_bool().unwrap_or(false),
                "lot_id" => line.lot = v.as_i64(),
                "lot_name" => line.lot_name = v.as_str().map(str::to_owned),
                "expiration_date" => line.expiration_date = v.as_str().map(str::to_owned),
                _ => {}
            }
        }
    }
    Ok(())
}

fn wizard(model: &str, picking: i64) -> Value {
    json!({"type": "ir.actions.act_window", "res_model": model, "view_mode": "form", "target": "new", "context": {"default_pick_ids": [[4, picking]], "button_validate_picking_ids": [picking]}})
}

fn validate(db: &mut Db, ids: &[i64], context: &Map<String, Value>) -> Answer {
    let flag = |k: &str| context.get(k).is_some_and(|v| v.as_bool().unwrap_or(false));
    for &id in ids {
        let picking = db.pickings.iter().find(|p| p.id == id).cloned().ok_or(OdooError {
            name: "odoo.exceptions.MissingError",
            message: "Record does not exist or has been deleted.".into(),
        })?;
        if picking.state == "done" {
            // The wording differs per version; it is a UserError in all of them.
            return Err(user_error(if db.version >= 17 {
                "You cannot validate a transfer if no quantities are reserved nor done. To force the transfer, encode quantities."
            } else {
                "You cannot validate a transfer if no quantities are reserved nor done. To force the transfer, switch in edit more and encode the done quantities."
            }));
        }
        let lines: Vec<MoveLine> = db.lines.iter().filter(|l| l.picking == id).cloned().collect();
        let any_picked = lines.iter().any(|l| l.picked);
        // Done quantity per line, by version.
        let version = db.version;
        let done_of = |l: &MoveLine| -> f64 {
            if version >= 17 { if !any_picked || l.picked { l.quantity } else { 0.0 } } else { l.quantity }
        };
        let total: f64 = lines.iter().map(done_of).sum();
        let mut immediate = false;
        if db.version <= 16 && total == 0.0 {
            if !flag("skip_immediate") {
                return Ok(wizard("stock.immediate.transfer", id));
            }
            immediate = true;
        }
        if db.version >= 17 && total == 0.0 {
            return Err(user_error("You cannot validate a transfer if no quantities are reserved nor done."));
        }
        let moves: Vec<Move> = db.moves.iter().filter(|m| m.picking == Some(id)).cloned().collect();
        let done_by_move = |m: &Move| -> f64 {
            if immediate { m.demand } else { lines.iter().filter(|l| l.move_id == m.id).map(done_of).sum() }
        };
        // Lots on tracked products.
        for l in &lines {
            let tracked = db.products.iter().find(|p| p.id == l.product).is_some_and(|p| p.tracking != "none");
            if tracked && done_of(l) > 0.0 && l.lot.is_none() && l.lot_name.is_none() {
                let code =
                    db.products.iter().find(|p| p.id == l.product).map(|p| p.default_code.clone()).unwrap_or_default();
                return Err(user_error(format!("You need to supply a Lot/Serial number for product:\n- {code}")));
            }
        }
        let short: Vec<(i64, f64)> = moves
            .iter()
            .filter(|m| done_by_move(m) < m.demand)
            .map(|m| (m.product, m.demand - done_by_move(m)))
            .collect();
        let no_backorder = context
            .get("picking_ids_not_to_backorder")
            .and_then(Value::as_array)
            .is_some_and(|a| a.contains(&json!(id)));
        if !short.is_empty() && !flag("skip_backorder") {
            return Ok(wizard("stock.backorder.confirmation", id));
        }
        // Done: stock moves.
        for l in &lines {
            let qty =
                if immediate { moves.iter().find(|m| m.id == l.move_id).map_or(0.0, |m| m.demand) } else { done_of(l) };
            if qty == 0.0 {
                continue;
            }
            let lot = match (&l.lot_name, l.lot) {
                (_, Some(lot)) => Some(lot),
                (Some(name), None) => {
                    let existing = db.lots.iter().find(|x| x.name == *name && x.product == l.product).map(|x| x.id);
                    Some(existing.unwrap_or_else(|| {
                        let lot_id = db.id();
                        db.lots.push(Lot {
                            id: lot_id,
                            name: name.clone(),
                            product: l.product,
                            expiration_date: l.expiration_date.clone(),
                        });
                        lot_id
                    }))
                }
                (None, None) => None,
            };
            let q = db.quant(l.product, STOCK, lot);
            let quant = db.quants.iter_mut().find(|x| x.id == q).unwrap();
            quant.quantity += if picking.incoming { qty } else { -qty };
        }
        for m in db.moves.iter_mut().filter(|m| m.picking == Some(id)) {
            m.done = if immediate { m.demand } else { lines.iter().filter(|l| l.move_id == m.id).map(done_of).sum() };
            m.state = "done".into();
            m.date = odoo_now();
        }
        db.pickings.iter_mut().find(|p| p.id == id).unwrap().state = "done".into();
        if !short.is_empty() && !no_backorder {
            let count = db.pickings.iter().filter(|p| p.backorder_of == Some(id)).count() + 1;
            let name = format!("{}-BO{count}", picking.name);
            db.picking(&name, picking.incoming, &short, Some(id));
        }
    }
    Ok(json!(true))
}

// ---------------------------------------------------------------------------------------------
// HTTP.

fn reply(status: u16, body: Value, retry_after: bool) -> Response<Full<Bytes>> {
    let mut r = Response::builder().status(status).header("content-type", "application/json");
    if retry_after {
        r = r.header("retry-after", "1");
    }
    r.body(Full::new(Bytes::from(body.to_string()))).unwrap()
}

fn jsonrpc_error(id: &Value, e: &OdooError) -> Value {
    json!({"jsonrpc": "2.0", "id": id, "error": {"code": 200, "message": "Odoo Server Error", "data": {
        "name": e.name, "debug": format!("Traceback (most recent call last):\n  ...\n{}: {}", e.name, e.message),
        "message": e.message, "arguments": [e.message], "context": {}}}})
}

fn json2_status(e: &OdooError) -> u16 {
    match e.name {
        "odoo.exceptions.UserError" | "odoo.exceptions.ValidationError" => 422,
        "odoo.exceptions.AccessError" | "odoo.exceptions.AccessDenied" => 403,
        "odoo.exceptions.MissingError" => 404,
        "odoo.exceptions.LockError" => 409,
        _ => 500,
    }
}

async fn handle(db: Arc<Mutex<Db>>, req: Request<Incoming>) -> Result<Response<Full<Bytes>>, std::io::Error> {
    let path = req.uri().path().to_owned();
    let auth = req.headers().get("authorization").and_then(|v| v.to_str().ok()).map(str::to_owned);
    let body = req.into_body().collect().await.map_err(std::io::Error::other)?.to_bytes();
    let parsed: Value = serde_json::from_slice(&body).unwrap_or(Value::Null);
    if db.lock().unwrap().down {
        return Ok(reply(503, json!({"message": "Service Unavailable"}), true));
    }

    // Faults apply to object calls only (not to version or login).
    let is_object = path.starts_with("/json/2/") || parsed["params"]["service"] == "object";
    let method = if path.starts_with("/json/2/") {
        path.rsplit('/').next().unwrap_or("").to_owned()
    } else {
        parsed["params"]["args"][4].as_str().unwrap_or("").to_owned()
    };
    let fault = if is_object {
        let mut db = db.lock().unwrap();
        let at = db.faults.iter().position(|(m, _)| m.as_deref().is_none_or(|m| m == method));
        at.map(|i| db.faults.remove(i).1)
    } else {
        None
    };
    if let Some(Fault::Latency(d)) = &fault {
        tokio::time::sleep(*d).await;
    }
    let json2 = path.starts_with("/json/2/");
    match fault {
        Some(Fault::Unavailable) => return Ok(reply(503, json!({"message": "Service Unavailable"}), true)),
        Some(Fault::Lock) => {
            let e = OdooError {
                name: "odoo.exceptions.LockError",
                message: "could not obtain lock on row in relation \"stock_quant\"".into(),
            };
            return Ok(if json2 {
                reply(
                    409,
                    json!({"name": e.name, "message": e.message, "arguments": [e.message], "context": {}, "debug": ""}),
                    false,
                )
            } else {
                let e = OdooError { name: "psycopg2.errors.LockNotAvailable", message: e.message };
                reply(200, jsonrpc_error(&parsed["id"], &e), false)
            });
        }
        _ => {}
    }
    let response = if json2 {
        handle_json2(&db, &path, auth.as_deref(), &parsed)
    } else if path == "/jsonrpc" {
        handle_jsonrpc(&db, &parsed)
    } else {
        reply(404, json!({"message": "Not Found"}), false)
    };
    if fault == Some(Fault::CommitThenDrop) {
        return Err(std::io::Error::other("committed, then the connection dropped"));
    }
    Ok(response)
}

fn handle_jsonrpc(db: &Arc<Mutex<Db>>, req: &Value) -> Response<Full<Bytes>> {
    let mut db = db.lock().unwrap();
    let id = req["id"].clone();
    let params = &req["params"];
    let args = params["args"].as_array().cloned().unwrap_or_default();
    let ok = |result: Value| reply(200, json!({"jsonrpc": "2.0", "id": id, "result": result}), false);
    match (params["service"].as_str(), params["method"].as_str()) {
        (Some("common"), Some("version")) => ok(json!({
            "server_version": format!("{}.0", db.version),
            "server_version_info": [db.version, 0, 0, "final", 0, ""],
            "server_serie": format!("{}.0", db.version),
            "protocol_version": 1
        })),
        (Some("common"), Some("authenticate")) => {
            let good = args.first().and_then(Value::as_str) == Some(db.database.as_str())
                && args.get(1).and_then(Value::as_str) == Some(db.login.as_str())
                && args.get(2).and_then(Value::as_str) == Some(db.key.as_str());
            ok(if good { json!(API_USER) } else { json!(false) })
        }
        (Some("object"), Some("execute_kw")) => {
            let key_ok = args.first().and_then(Value::as_str) == Some(db.database.as_str())
                && args.get(1).and_then(Value::as_i64) == Some(2)
                && args.get(2).and_then(Value::as_str) == Some(db.key.as_str());
            if !key_ok {
                let e = OdooError { name: "odoo.exceptions.AccessDenied", message: "Access Denied".into() };
                return reply(200, jsonrpc_error(&id, &e), false);
            }
            let model = args.get(3).and_then(Value::as_str).unwrap_or("").to_owned();
            let method = args.get(4).and_then(Value::as_str).unwrap_or("").to_owned();
            let positional = args.get(5).and_then(Value::as_array).cloned().unwrap_or_default();
            let mut named = args.get(6).and_then(Value::as_object).cloned().unwrap_or_default();
            db.calls.push(("jsonrpc".into(), model.clone(), method.clone()));
            // Record methods take the ids first; model methods their first parameter.
            let record_method = matches!(
                method.as_str(),
                "write" | "read" | "button_validate" | "action_apply_inventory" | "unlink" | "message_post"
            );
            let mut ids = Vec::new();
            if let Some(first) = positional.first() {
                if record_method {
                    ids = first.as_array().map(|a| a.iter().filter_map(Value::as_i64).collect()).unwrap_or_default();
                    if let Some(vals) = positional.get(1) {
                        named.insert("vals".into(), vals.clone());
                    }
                } else if method == "create" {
                    named.insert("vals_list".into(), first.clone());
                } else {
                    named.insert("domain".into(), first.clone());
                }
            }
            match transaction(&mut db, &model, &method, ids, &named) {
                Ok(v) => ok(v),
                Err(e) => reply(200, jsonrpc_error(&id, &e), false),
            }
        }
        _ => reply(
            200,
            json!({"jsonrpc": "2.0", "id": id, "error": {"code": 404, "message": "404: Not Found", "data": {"name": "werkzeug.exceptions.NotFound", "message": "Not Found"}}}),
            false,
        ),
    }
}

fn handle_json2(db: &Arc<Mutex<Db>>, path: &str, auth: Option<&str>, body: &Value) -> Response<Full<Bytes>> {
    let mut db = db.lock().unwrap();
    let error = |status: u16, name: &str, message: &str| {
        reply(
            status,
            json!({"name": name, "message": message, "arguments": [message], "context": {}, "debug": ""}),
            false,
        )
    };
    if db.version < 19 {
        return error(404, "werkzeug.exceptions.NotFound", "404 Not Found");
    }
    let expected = format!("bearer {}", db.key);
    if auth.map(str::to_lowercase) != Some(expected.to_lowercase()) {
        return error(401, "werkzeug.exceptions.Unauthorized", "Invalid apikey");
    }
    let mut parts = path.trim_start_matches("/json/2/").split('/');
    let (Some(model), Some(method)) = (parts.next(), parts.next()) else {
        return error(404, "werkzeug.exceptions.NotFound", "404 Not Found");
    };
    let (model, method) = (model.to_owned(), method.to_owned());
    db.calls.push(("json2".into(), model.clone(), method.clone()));
    let mut named = body.as_object().cloned().unwrap_or_default();
    let ids: Vec<i64> = named
        .remove("ids")
        .and_then(|v| v.as_array().map(|a| a.iter().filter_map(Value::as_i64).collect()))
        .unwrap_or_default();
    match transaction(&mut db, &model, &method, ids, &named) {
        Ok(v) => reply(200, v, false),
        Err(e) if e.name == "builtins.KeyError" || e.name == "builtins.AttributeError" => {
            error(404, "werkzeug.exceptions.NotFound", &e.message)
        }
        Err(e) => error(json2_status(&e), e.name, &e.message),
    }
}
