//! What the delivery destinations answer — outside input like any other: the HTTP receiver's
//! status, `Retry-After` and body (`dockhand::sinks::http::response::classify`, contracts.md §3)
//! and Odoo's JSON-RPC and JSON-2 answers (`dockhand::sinks::odoo::wire`).
//!
//! Input layout: bytes 0-1 the HTTP status (mod 600), byte 2 the batch size (mod 8 ids) and the
//! length of a `Retry-After` value taken from the next bytes (bits 3-7, up to 31 bytes, lossy
//! UTF-8); the rest is the body.
//!
//! Invariants: an HTTP answer never names an event outside the batch (rejected indexes and
//! `retry_from` stay below the batch size); Odoo answers never panic.
#![no_main]

use dockhand::sinks::Outcome;
use dockhand::sinks::http::response::classify;
use dockhand::sinks::odoo::wire::{classify_json2, classify_jsonrpc, many2one_id};
use dockhand::timestamp::Timestamp;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let [a, b, c, rest @ ..] = data else { return };
    let status = u16::from_be_bytes([*a, *b]) % 600;
    let n = usize::from(c % 8);
    let retry_len = usize::from(c >> 3).min(rest.len());
    let (retry, body) = rest.split_at(retry_len);
    let retry = String::from_utf8_lossy(retry).into_owned();
    let ids: Vec<uuid::Uuid> = (0..n).map(|i| uuid::Uuid::from_u128(i as u128 + 1)).collect();
    let retry = (!retry.is_empty()).then_some(retry.as_str());
    match classify(status, retry, body, &ids, Timestamp::from_millis(1_764_000_000_000)) {
        Outcome::Accepted { rejected, retry_from } => {
            assert!(rejected.iter().all(|(i, _)| *i < n), "rejected index outside the batch");
            assert!(retry_from.is_none_or(|r| r <= n), "retry_from outside the batch");
        }
        Outcome::Retry { .. } | Outcome::Pause { .. } | Outcome::TooLarge { .. } => {}
    }
    if let Ok(value) = classify_jsonrpc(status, retry, body) {
        let _ = many2one_id(&value);
    }
    let _ = classify_json2(status, retry, body);
});
