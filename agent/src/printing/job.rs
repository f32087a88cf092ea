//! A print request as it arrives on `…/gateway/<id>/print/<printer>`:
//! `{"id": "...", "template": "name", "data": {...}}` or `{"id": "...", "zpl": "^XA...^XZ"}`.
//! Rendered at once, so the stored job is exactly what the printer will get, whatever happens to
//! the template afterwards.

use std::collections::BTreeMap;

use serde::Deserialize;
use serde_json::Value;

use super::LabelConfig;
use crate::store::print_jobs::NewPrintJob;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Request {
    id: String,
    template: Option<String>,
    #[serde(default)]
    data: BTreeMap<String, Value>,
    zpl: Option<String>,
}

/// Why a request was refused (goes to the dead-letter store with the raw bytes).
pub(crate) type Refusal = String;

/// Turns a request into a job for `printer`.
pub(crate) fn from_request(printer: &str, body: &[u8], labels: &[LabelConfig]) -> Result<NewPrintJob, Refusal> {
    let request: Request = serde_json::from_slice(body).map_err(|e| format!("not a print job: {e}"))?;
    let id = request.id.trim().to_owned();
    if id.is_empty() || id.len() > 128 {
        return Err("`id` must be 1 to 128 characters".into());
    }
    let bytes = match (request.template, request.zpl) {
        (Some(name), None) => {
            let label = labels
                .iter()
                .find(|l| l.name == name)
                .ok_or_else(|| format!("no [[label]] named `{name}` in the gateway's config"))?;
            let data: BTreeMap<String, String> = request
                .data
                .into_iter()
                .map(|(k, v)| {
                    let text = match v {
                        Value::String(s) => s,
                        other => other.to_string(),
                    };
                    (k, text)
                })
                .collect();
            label.render(&data).map_err(|e| e.to_string())?
        }
        (None, Some(zpl)) => {
            let trimmed = zpl.trim();
            if !(trimmed.starts_with("^XA") && trimmed.ends_with("^XZ")) {
                return Err("`zpl` must be one or more ^XA...^XZ formats".into());
            }
            zpl.into_bytes()
        }
        _ => return Err("give `template` (with `data`) or `zpl`, not both".into()),
    };
    Ok(NewPrintJob { id, printer: printer.to_owned(), body: bytes, origin: "mqtt".into(), reprint_of: None })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn labels() -> Vec<LabelConfig> {
        vec![LabelConfig {
            name: "parcel".into(),
            zpl: Some("^XA^FO10,10^FD{{picking}}^FS^XZ".into()),
            file: None,
            store_as: None,
        }]
    }

    #[test]
    fn templates_are_rendered_with_escaped_data() {
        let job =
            from_request("p1", br#"{"id": "j1", "template": "parcel", "data": {"picking": "WH/OUT/1^XZ"}}"#, &labels())
                .unwrap();
        assert_eq!(job.body, b"^XA^FO10,10^FH^FDWH/OUT/1_5EXZ^FS^XZ");
        assert_eq!((job.id.as_str(), job.printer.as_str()), ("j1", "p1"));
    }

    #[test]
    fn refusals_say_why() {
        let r = |b: &str| from_request("p1", b.as_bytes(), &labels()).unwrap_err();
        assert!(r(r#"{"id": "j", "template": "nope"}"#).contains("no [[label]] named `nope`"));
        assert!(r(r#"{"id": "j", "template": "parcel", "data": {}}"#).contains("picking"));
        assert!(r(r#"{"id": "j", "zpl": "hello"}"#).contains("^XA"));
        assert!(r(r#"{"template": "parcel"}"#).contains("id"));
        assert!(r("not json").contains("not a print job"));
        let ok = from_request("p1", br#"{"id": "j2", "zpl": "^XA^FDx^FS^XZ"}"#, &labels()).unwrap();
        assert_eq!(ok.body, b"^XA^FDx^FS^XZ");
    }
}
