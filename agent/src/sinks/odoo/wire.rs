//! The two wire protocols of Odoo's external API, pure: request bodies, and every answer —
//! success, Odoo's error shapes, proxies' status pages — classified into what the sink does next.
//! Facts: `shared/reference/odoo.md` (JSON-RPC `execute_kw` with HTTP 200 error objects; JSON-2
//! with real status codes and `{name, message, …}` bodies).

use std::time::Duration;

use serde_json::{Map, Value, json};

/// What went wrong with a call, by what the sink must do about it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Fault {
    /// Credentials or access of the sink's own user, or the database: pause the sink.
    Auth(String),
    /// Try again later (after `after` when the server said so).
    Transient(String, Option<Duration>),
    /// Odoo refused this operation for good: dead-letter the event with Odoo's message.
    Permanent(String),
    /// JSON-RPC session expired: authenticate again and repeat.
    SessionExpired,
}

/// One call: model, method, the record ids it applies to, and the method's named parameters
/// (the context included, as `context`).
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Call {
    pub(crate) model: &'static str,
    pub(crate) method: &'static str,
    pub(crate) ids: Option<Vec<i64>>,
    pub(crate) params: Map<String, Value>,
}

impl Call {
    pub(crate) fn new(model: &'static str, method: &'static str) -> Call {
        Call { model, method, ids: None, params: Map::new() }
    }

    pub(crate) fn ids(mut self, ids: Vec<i64>) -> Call {
        self.ids = Some(ids);
        self
    }

    pub(crate) fn param(mut self, name: &str, value: Value) -> Call {
        self.params.insert(name.to_owned(), value);
        self
    }

    /// JSON-RPC positional arguments: the ids (for record methods) or the first parameter
    /// (`domain` for searches, `vals_list` for create), which every Odoo version accepts
    /// positionally; the rest go as keyword arguments.
    fn positional(&self) -> (Vec<Value>, Map<String, Value>) {
        let mut kwargs = self.params.clone();
        let args = match &self.ids {
            Some(ids) => vec![json!(ids)],
            None => ["domain", "vals_list"].iter().filter_map(|k| kwargs.remove(*k)).take(1).collect(),
        };
        (args, kwargs)
    }
}

/// `execute_kw` as JSON-RPC.
pub(crate) fn jsonrpc_call(id: u64, db: &str, uid: i64, key: &str, call: &Call) -> Value {
    let (args, kwargs) = call.positional();
    json!({
        "jsonrpc": "2.0",
        "method": "call",
        "params": {"service": "object", "method": "execute_kw", "args": [db, uid, key, call.model, call.method, args, kwargs]},
        "id": id,
    })
}

/// A `common` service call (`version`, `authenticate`).
pub(crate) fn jsonrpc_common(id: u64, method: &str, args: Value) -> Value {
    json!({"jsonrpc": "2.0", "method": "call", "params": {"service": "common", "method": method, "args": args}, "id": id})
}

/// The JSON-2 body: named parameters plus `ids`.
pub(crate) fn json2_body(call: &Call) -> Value {
    let mut body = call.params.clone();
    if let Some(ids) = &call.ids {
        body.insert("ids".into(), json!(ids));
    }
    Value::Object(body)
}

/// `Retry-After` in seconds (Odoo and its proxies send seconds).
fn retry_after(value: Option<&str>) -> Option<Duration> {
    value.and_then(|v| v.trim().parse::<u64>().ok()).map(Duration::from_secs)
}

fn excerpt(body: &[u8]) -> String {
    let text = String::from_utf8_lossy(body);
    let text = text.trim();
    if text.chars().count() > 200 {
        format!("{}…", text.chars().take(200).collect::<String>())
    } else {
        text.to_owned()
    }
}

/// Statuses any HTTP server or proxy in front of Odoo may answer.
fn transport_status(status: u16, retry: Option<&str>, body: &[u8]) -> Option<Fault> {
    match status {
        200..=299 => None,
        408 | 425 | 429 | 502 | 503 | 504 => {
            Some(Fault::Transient(format!("HTTP {status} from the Odoo server: {}", excerpt(body)), retry_after(retry)))
        }
        _ => None,
    }
}

/// Sorts an Odoo exception by its class name and message.
pub(crate) fn classify_exception(name: &str, message: &str) -> Fault {
    let text = if message.is_empty() { name.to_owned() } else { format!("{message} ({name})") };
    let lower = message.to_ascii_lowercase();
    if lower.contains("too many login failures") {
        // Odoo's login cooldown is 60 s by default.
        return Fault::Transient(text, Some(Duration::from_secs(60)));
    }
    if lower.contains("database") && (lower.contains("does not exist") || lower.contains("not found")) {
        return Fault::Auth(format!("{text}: check `database` in the sink's config"));
    }
    match name {
        "odoo.exceptions.AccessDenied" | "werkzeug.exceptions.Unauthorized" => Fault::Auth(format!(
            "{text}: the API key or login was refused (keys expire; make a new one and update api_key_file, then reload)"
        )),
        "odoo.exceptions.AccessError" => {
            Fault::Auth(format!("{text}: the Odoo user lacks access rights (give it the Inventory User group)"))
        }
        "odoo.exceptions.LockError"
        | "odoo.exceptions.ConcurrencyError"
        | "psycopg2.errors.SerializationFailure"
        | "psycopg2.errors.LockNotAvailable"
        | "psycopg2.extensions.TransactionRollbackError"
        | "psycopg2.OperationalError" => Fault::Transient(text, None),
        _ if lower.contains("could not serialize access") || lower.contains("concurrent update") => {
            Fault::Transient(text, None)
        }
        _ => Fault::Permanent(text),
    }
}

/// A JSON-RPC answer: the `result`, or the fault its `error` object describes.
pub fn classify_jsonrpc(status: u16, retry: Option<&str>, body: &[u8]) -> Result<Value, Fault> {
    if let Some(fault) = transport_status(status, retry, body) {
        return Err(fault);
    }
    let parsed: Value = serde_json::from_slice(body).map_err(|_| {
        let message = format!("HTTP {status}, not a JSON-RPC answer: {}", excerpt(body));
        if status >= 500 { Fault::Transient(message, None) } else { Fault::Permanent(message) }
    })?;
    if let Some(error) = parsed.get("error") {
        let code = error.get("code").and_then(Value::as_i64).unwrap_or(0);
        if code == 100 {
            return Err(Fault::SessionExpired);
        }
        let data = error.get("data").cloned().unwrap_or(Value::Null);
        let name = data.get("name").and_then(Value::as_str).unwrap_or("");
        let message = data
            .get("message")
            .and_then(Value::as_str)
            .or_else(|| error.get("message").and_then(Value::as_str))
            .unwrap_or("");
        if code == 404 {
            return Err(Fault::Permanent(format!("{message} (the Odoo server has no such route)")));
        }
        return Err(classify_exception(name, message));
    }
    if status != 200 {
        return Err(Fault::Transient(format!("HTTP {status}: {}", excerpt(body)), None));
    }
    match parsed.get("result") {
        Some(result) => Ok(result.clone()),
        None => Err(Fault::Permanent(format!("a JSON-RPC answer without result or error: {}", excerpt(body)))),
    }
}

/// A JSON-2 answer: the bare value on 200, or the fault from the status and `{name, message}`.
pub fn classify_json2(status: u16, retry: Option<&str>, body: &[u8]) -> Result<Value, Fault> {
    if let Some(fault) = transport_status(status, retry, body) {
        return Err(fault);
    }
    let parsed: Option<Value> = serde_json::from_slice(body).ok();
    if status == 200 {
        return parsed
            .ok_or_else(|| Fault::Permanent(format!("HTTP 200 with a body that is not JSON: {}", excerpt(body))));
    }
    let name = parsed.as_ref().and_then(|v| v.get("name")).and_then(Value::as_str).unwrap_or("");
    let message = parsed.as_ref().and_then(|v| v.get("message")).and_then(Value::as_str).unwrap_or("");
    let detail = if message.is_empty() { excerpt(body) } else { message.to_owned() };
    Err(match status {
        401 => Fault::Auth(format!(
            "{detail}: the API key was refused (keys expire; make a new one and update api_key_file, then reload)"
        )),
        403 => classify_exception(if name.is_empty() { "odoo.exceptions.AccessError" } else { name }, &detail),
        409 => Fault::Transient(format!("{detail} (HTTP 409, a concurrent update in Odoo)"), retry_after(retry)),
        404 | 422 => Fault::Permanent(format!(
            "{detail} (HTTP {status}{})",
            if name.is_empty() { String::new() } else { format!(", {name}") }
        )),
        500.. if parsed.is_none() => Fault::Transient(format!("HTTP {status}: {detail}"), None),
        _ => classify_exception(name, &format!("{detail} (HTTP {status})")),
    })
}

/// Odoo's answer for a many2one field: `[id, "name"]`, a bare id, or `false`.
pub fn many2one_id(value: &Value) -> Option<i64> {
    match value {
        Value::Array(a) => a.first().and_then(Value::as_i64),
        Value::Number(n) => n.as_i64(),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn jsonrpc_bodies_put_ids_or_the_first_parameter_first() {
        let call = Call::new("stock.picking", "button_validate")
            .ids(vec![7])
            .param("context", json!({"skip_backorder": true}));
        let body = jsonrpc_call(3, "db", 2, "key", &call);
        assert_eq!(
            body["params"]["args"],
            json!(["db", 2, "key", "stock.picking", "button_validate", [[7]], {"context": {"skip_backorder": true}}])
        );
        let search = Call::new("product.product", "search_read")
            .param("domain", json!([["barcode", "=", "1"]]))
            .param("fields", json!(["id"]));
        let body = jsonrpc_call(4, "db", 2, "key", &search);
        assert_eq!(body["params"]["args"][5], json!([[["barcode", "=", "1"]]]));
        assert_eq!(body["params"]["args"][6], json!({"fields": ["id"]}));
        assert_eq!(json2_body(&call), json!({"ids": [7], "context": {"skip_backorder": true}}));
    }

    #[test]
    fn jsonrpc_errors_by_exception() {
        let err = |name: &str, msg: &str| {
            let body = json!({"jsonrpc": "2.0", "id": 1, "error": {"code": 200, "message": "Odoo Server Error", "data": {"name": name, "message": msg, "arguments": [msg], "debug": "Traceback"}}});
            classify_jsonrpc(200, None, body.to_string().as_bytes())
        };
        assert!(
            matches!(err("odoo.exceptions.UserError", "No product"), Err(Fault::Permanent(m)) if m.contains("No product"))
        );
        assert!(matches!(err("odoo.exceptions.ValidationError", "x"), Err(Fault::Permanent(_))));
        assert!(matches!(err("odoo.exceptions.AccessDenied", "Access Denied"), Err(Fault::Auth(_))));
        assert!(matches!(err("odoo.exceptions.AccessError", "not allowed"), Err(Fault::Auth(_))));
        assert!(matches!(
            err("psycopg2.errors.SerializationFailure", "could not serialize access"),
            Err(Fault::Transient(..))
        ));
        assert!(matches!(
            err("odoo.exceptions.AccessDenied", "Too many login failures, please wait a bit before trying again."),
            Err(Fault::Transient(_, Some(_)))
        ));
        let expired = json!({"jsonrpc": "2.0", "id": 1, "error": {"code": 100, "message": "Odoo Session Expired"}});
        assert_eq!(classify_jsonrpc(200, None, expired.to_string().as_bytes()), Err(Fault::SessionExpired));
        let ok = json!({"jsonrpc": "2.0", "id": 1, "result": [1, 2]});
        assert_eq!(classify_jsonrpc(200, None, ok.to_string().as_bytes()), Ok(json!([1, 2])));
        assert!(
            matches!(classify_jsonrpc(502, Some("7"), b"<html>Bad Gateway</html>"), Err(Fault::Transient(_, Some(d))) if d.as_secs() == 7)
        );
        assert!(matches!(classify_jsonrpc(200, None, b"<html>login</html>"), Err(Fault::Permanent(_))));
    }

    #[test]
    fn json2_errors_by_status() {
        let body = |name: &str, msg: &str| {
            json!({"name": name, "message": msg, "arguments": [msg], "context": {}, "debug": ""}).to_string()
        };
        assert!(
            matches!(classify_json2(401, None, body("werkzeug.exceptions.Unauthorized", "Invalid apikey").as_bytes()), Err(Fault::Auth(m)) if m.contains("Invalid apikey"))
        );
        assert!(matches!(
            classify_json2(403, None, body("odoo.exceptions.AccessError", "no").as_bytes()),
            Err(Fault::Auth(_))
        ));
        assert!(
            matches!(classify_json2(422, None, body("odoo.exceptions.UserError", "Lot required").as_bytes()), Err(Fault::Permanent(m)) if m.contains("Lot required"))
        );
        assert!(matches!(
            classify_json2(404, None, body("odoo.exceptions.MissingError", "gone").as_bytes()),
            Err(Fault::Permanent(_))
        ));
        assert!(matches!(
            classify_json2(409, None, body("odoo.exceptions.LockError", "locked").as_bytes()),
            Err(Fault::Transient(..))
        ));
        assert!(
            matches!(classify_json2(503, Some("30"), b"maintenance"), Err(Fault::Transient(_, Some(d))) if d.as_secs() == 30)
        );
        assert!(matches!(classify_json2(500, None, b"Internal Server Error"), Err(Fault::Transient(..))));
        assert!(matches!(classify_json2(500, None, body("ValueError", "boom").as_bytes()), Err(Fault::Permanent(_))));
        assert_eq!(classify_json2(200, None, b"null"), Ok(Value::Null));
    }

    #[test]
    fn many2one_shapes() {
        assert_eq!(many2one_id(&json!([5, "WH/Stock"])), Some(5));
        assert_eq!(many2one_id(&json!(5)), Some(5));
        assert_eq!(many2one_id(&json!(false)), None);
    }

    proptest::proptest! {
        #[test]
        fn arbitrary_answers_never_panic(status in 100u16..600, body in proptest::collection::vec(proptest::prelude::any::<u8>(), 0..300)) {
            let _ = classify_jsonrpc(status, Some("x"), &body);
            let _ = classify_json2(status, None, &body);
        }
    }
}
