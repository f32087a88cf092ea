//! One delivery as bytes (contracts.md §3): the body is the stored envelopes spliced into
//! `{"gateway", "batch_id", "events": [...]}` without re-serialising them, optionally gzipped, and
//! signed over the bytes chosen by `signature_over`. The `batch_id` is the batch's key, named by
//! the dispatcher (`crate::dispatcher::batches`).

use std::io::Write;

use crate::store::BatchItem;

pub(crate) fn body(gateway: &str, batch_id: &str, items: &[BatchItem]) -> Vec<u8> {
    let size: usize = items.iter().map(|i| i.body.len() + 1).sum();
    let mut out = Vec::with_capacity(size + 128);
    let head = serde_json::json!({"gateway": gateway, "batch_id": batch_id}).to_string();
    // `{"batch_id":…,"gateway":…` + `,"events":[` … `]}`
    out.extend_from_slice(&head.as_bytes()[..head.len() - 1]);
    out.extend_from_slice(b",\"events\":[");
    for (i, item) in items.iter().enumerate() {
        if i > 0 {
            out.push(b',');
        }
        out.extend_from_slice(item.body.as_bytes());
    }
    out.extend_from_slice(b"]}");
    out
}

/// `sha256=<hex>`: HMAC-SHA256 of `bytes` — the body as sent by default, or the JSON before gzip
/// with `signature_over = "decoded"`.
pub(crate) fn signature(secret: &[u8], body: &[u8]) -> String {
    let key = ring::hmac::Key::new(ring::hmac::HMAC_SHA256, secret);
    let tag = ring::hmac::sign(&key, body);
    let mut hex = String::with_capacity(71);
    hex.push_str("sha256=");
    for b in tag.as_ref() {
        hex.push_str(&format!("{b:02x}"));
    }
    hex
}

pub(crate) fn gzip(body: &[u8]) -> std::io::Result<Vec<u8>> {
    let mut enc = flate2::write::GzEncoder::new(Vec::with_capacity(body.len() / 4), flate2::Compression::fast());
    enc.write_all(body)?;
    enc.finish()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn item(seq: u64, body: &str) -> BatchItem {
        BatchItem { seq, id: uuid::Uuid::nil(), body: body.into(), redelivery: None }
    }

    fn key(items: &[BatchItem]) -> String {
        crate::dispatcher::batches::natural_key("gw", "cloud", items)
    }

    #[test]
    fn body_splices_the_stored_envelopes_unchanged() {
        let items = [item(7, r#"{"id":"a","seq":7}"#), item(8, r#"{"id":"b","seq":8}"#)];
        let id = key(&items);
        assert_eq!(id, "gw:cloud:7-8-n2");
        let b = body("gw", &id, &items);
        let v: serde_json::Value = serde_json::from_slice(&b).unwrap();
        assert_eq!(v["gateway"], "gw");
        assert_eq!(v["batch_id"], "gw:cloud:7-8-n2");
        assert_eq!(v["events"][1]["seq"], 8);
        assert!(String::from_utf8(b).unwrap().ends_with(r#"[{"id":"a","seq":7},{"id":"b","seq":8}]}"#));
    }

    #[test]
    fn signature_is_the_rfc_4231_hmac() {
        // RFC 4231 test case 2.
        assert_eq!(
            signature(b"Jefe", b"what do ya want for nothing?"),
            "sha256=5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"
        );
    }

    #[test]
    fn gzip_round_trips() {
        let data = b"{\"events\":[]}".repeat(100);
        let z = gzip(&data).unwrap();
        let mut out = Vec::new();
        std::io::Read::read_to_end(&mut flate2::read::GzDecoder::new(&z[..]), &mut out).unwrap();
        assert_eq!(out, data);
    }
}
