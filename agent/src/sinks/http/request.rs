//! One delivery as bytes (contracts.md §3): the body is the stored envelopes spliced into
//! `{"gateway", "batch_id", "events": [...]}` without re-serialising them, optionally gzipped, and
//! signed over the bytes chosen by `signature_over`. The `batch_id` is the batch's key, named by
//! the dispatcher (`crate::dispatcher::batches`).

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

/// A gzip member (RFC 1952) of `body`, at the fastest level. `deflate` is a raw-deflate state to
/// reuse: a new one allocates and zeroes ~300 KB of window and hash tables, which on a gateway
/// costs as much as compressing a small batch. It is reset first, so a state left mid-stream by
/// an earlier error is harmless.
pub(crate) fn gzip_with(deflate: &mut flate2::Compress, body: &[u8]) -> std::io::Result<Vec<u8>> {
    // Fixed header, as flate2's GzEncoder writes it: deflate, no name or time, XFL 4 (fastest
    // level), "unknown" OS.
    const HEADER: [u8; 10] = [0x1f, 0x8b, 8, 0, 0, 0, 0, 0, 4, 0xff];
    deflate.reset();
    let mut out = Vec::with_capacity(body.len() / 4 + 64);
    out.extend_from_slice(&HEADER);
    let mut consumed = 0;
    loop {
        if out.capacity() - out.len() < 1024 {
            out.reserve(out.capacity() / 2 + 1024);
        }
        let before = deflate.total_in();
        let status = deflate
            .compress_vec(&body[consumed..], &mut out, flate2::FlushCompress::Finish)
            .map_err(std::io::Error::other)?;
        consumed += usize::try_from(deflate.total_in() - before).unwrap_or(0);
        if status == flate2::Status::StreamEnd {
            break;
        }
    }
    let mut crc = flate2::Crc::new();
    crc.update(body);
    out.extend_from_slice(&crc.sum().to_le_bytes());
    // ISIZE: the input's length modulo 2^32.
    out.extend_from_slice(&(body.len() as u32).to_le_bytes());
    Ok(out)
}

/// A raw-deflate state for [`gzip_with`].
pub(crate) fn deflate_state() -> flate2::Compress {
    flate2::Compress::new(flate2::Compression::fast(), false)
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
        let mut state = deflate_state();
        // Twice with one state (it is reset in between), and a body larger than the window.
        for data in [data.clone(), data.repeat(200), Vec::new()] {
            let z = gzip_with(&mut state, &data).unwrap();
            let mut out = Vec::new();
            std::io::Read::read_to_end(&mut flate2::read::GzDecoder::new(&z[..]), &mut out).unwrap();
            assert_eq!(out, data);
            // The same header as flate2's own encoder at this level; no second member.
            let mut reference = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
            std::io::Write::write_all(&mut reference, &data).unwrap();
            assert_eq!(z[..10], reference.finish().unwrap()[..10]);
            let mut decoder = flate2::read::GzDecoder::new(&z[..]);
            std::io::Read::read_to_end(&mut decoder, &mut Vec::new()).unwrap();
            assert!(decoder.into_inner().is_empty(), "bytes after the gzip member");
        }
    }
}
