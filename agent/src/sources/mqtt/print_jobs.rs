//! Print jobs over MQTT: `…/gateway/<id>/print/<printer>` requests become queued jobs (parsed
//! by [`crate::printing::job`]) or dead letters, answered on `…/print/<printer>/ack`.

use std::sync::Arc;

use serde_json::json;
use tracing::warn;

use super::ordering::{Turn, Written};
use super::source::answer;
use crate::mqtt::{Inbound, MqttSettings};
use crate::store::{NewDeadLetter, Store};

/// Stores a print job (or dead-letters the request); the reply goes to `…/print/<printer>/ack`
/// (or the request's Response Topic): `{"id", "status": "queued" | "duplicate" | "rejected",
/// "error"}`. Jobs are queued in arrival order (see [`Turn`]), so a printer prints them in the
/// order they came.
pub(super) fn ingest_print_job(
    settings: &Arc<MqttSettings>,
    store: &Store,
    message: &Arc<Inbound>,
    turn: Turn,
) -> Written {
    let printer = message.topic.rsplit('/').next().unwrap_or("").to_owned();
    let id = serde_json::from_slice::<serde_json::Value>(&message.payload)
        .ok()
        .and_then(|v| v.get("id").and_then(|i| i.as_str()).map(str::to_owned));
    let outcome = if settings.printers.contains(&printer) {
        crate::printing::job::from_request(&printer, &message.payload, &settings.labels)
    } else {
        let mut known: Vec<&str> = settings.printers.iter().map(String::as_str).collect();
        known.sort_unstable();
        Err(format!(
            "no printer named `{printer}` on this gateway (its printers: {})",
            if known.is_empty() { "none".to_owned() } else { known.join(", ") }
        ))
    };
    let topic = format!("{}/{printer}/ack", settings.print_prefix());
    let store = store.clone();
    let settings = settings.clone();
    let message = message.clone();
    match outcome {
        Ok(job) => {
            let change = crate::store::print_jobs::PrintJobChange::Enqueue(job);
            let queued = store.print_job(change.clone());
            Box::pin(async move {
                let stored = turn.write(queued, || store.print_job(change.clone())).await?;
                let status = match stored {
                    crate::store::print_jobs::PrintJobAnswer::Stored(false) => "duplicate",
                    _ => "queued",
                };
                Some(answer(&settings, &message, Some(topic), json!({"id": id, "status": status}).to_string()))
            })
        }
        Err(reason) => {
            let entry = NewDeadLetter {
                sink: None,
                event_id: None,
                event_seq: None,
                origin: format!("mqtt:{}", message.topic),
                reason: reason.clone(),
                body: message.payload.to_vec(),
            };
            warn!(topic = %message.topic, %reason, "Rejected a print job; it is in the dead-letter store.");
            let queued = store.dead_letter(entry.clone());
            Box::pin(async move {
                turn.write(queued, || store.dead_letter(entry.clone())).await?;
                let body = json!({"id": id, "status": "rejected", "error": reason}).to_string();
                Some(answer(&settings, &message, Some(topic), body))
            })
        }
    }
}
