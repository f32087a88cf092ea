//! One delivery as bytes and headers (contracts.md §3): the body is the stored envelopes spliced
//! into `{"gateway", "batch_id", "events": [...]}` without re-serialising them, signed, and
//! optionally gzipped.

use std::io::Write;

use crate::store::BatchItem;

/// The `batch_id` and `Idempotency-Key`: the same events in the same batch always get the same
/// key, across retries and restarts.
pub fn batch_id(gateway: &str, sink: &str, items: &[BatchItem]) -> String {
    let first = items.first();
    let last = items.last();
    match first.and_then(|f| f.redelivery.map(|r| (f, r))) {
        Some((_, r)) => format!("{gateway}:{sink}:redelivery-{r}-n{}", items.len()),
        None => {
            format!("{gateway}:{sink}:{}-{}-n{}", first.map_or(0, |b| b.seq), last.map_or(0, |b| b.seq), items.len())
        }
    }
}

pub fn body(gateway: &str, batch_id: &str, items: &[BatchItem]) -> Vec<u8> {
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

/// `sha256=<hex>`: HMAC-SHA256 of the JSON body (before any gzip), so a receiver that lets its
/// framework decompress can still verify it.
pub fn signature(secret: &[u8], body: &[u8]) -> String {
    let key = ring::hmac::Key::new(ring::hmac::HMAC_SHA256, secret);
    let tag = ring::hmac::sign(&key, body);
    let mut hex = String::with_capacity(71);
    hex.push_str("sha256=");
    for b in tag.as_ref() {
        hex.push_str(&format!("{b:02x}"));
    }
    hex
}

pub fn gzip(body: &[u8]) -> std::io::Result<Vec<u8>> {
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

    #[test]
    fn body_splices_the_stored_envelopes_unchanged() {
        let items = [item(7, r#"{"id":"a","seq":7}"#), item(8, r#"{"id":"b","seq":8}"#)];
        let id = batch_id("gw", "cloud", &items);
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
