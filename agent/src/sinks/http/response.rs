//! What the receiver's answer means (contracts.md §3), as a pure function of the status, the
//! `Retry-After` header and the body, so every answer — including hostile ones — is unit-tested.

use std::time::Duration;

use serde::Deserialize;
use uuid::Uuid;

use crate::sinks::Outcome;
use crate::timestamp::Timestamp;

/// At most this much of a body is quoted in errors and dead letters.
const EXCERPT: usize = 300;

pub fn classify(status: u16, retry_after: Option<&str>, body: &[u8], ids: &[Uuid], now: Timestamp) -> Outcome {
    let excerpt = || excerpt(body);
    match status {
        200..=299 => accepted(body, ids),
        408 | 425 | 429 | 500 | 502 | 503 | 504 => Outcome::Retry {
            error: format!("HTTP {status}: {}", excerpt()),
            after: retry_after.and_then(|v| parse_retry_after(v, now)),
            unreachable: false,
        },
        413 => Outcome::TooLarge { error: format!("HTTP 413: {}", excerpt()) },
        401 | 403 if String::from_utf8_lossy(body).to_ascii_lowercase().contains("signature") => Outcome::Pause {
            error: format!(
                "HTTP {status}: the receiver refused the signature (check signing_secret_file, and signature_over: \"wire\" signs the bytes as sent, \"decoded\" the JSON before gzip; then reload): {}",
                excerpt()
            ),
        },
        401 | 403 => Outcome::Pause {
            error: format!(
                "HTTP {status}: the receiver refused the credentials (check token_file, then reload): {}",
                excerpt()
            ),
        },
        400..=499 => Outcome::Accepted {
            rejected: (0..ids.len()).map(|i| (i, format!("HTTP {status}: {}", excerpt()))).collect(),
            retry_from: None,
        },
        500..=599 => Outcome::Retry { error: format!("HTTP {status}: {}", excerpt()), after: None, unreachable: false },
        _ => Outcome::Pause {
            error: format!(
                "unexpected HTTP {status} (a redirect? dockhand does not follow them): check the sink's url"
            ),
        },
    }
}

fn accepted(body: &[u8], ids: &[Uuid]) -> Outcome {
    #[derive(Deserialize)]
    struct Answer {
        #[serde(default)]
        rejected: Vec<Rejected>,
    }
    #[derive(Deserialize)]
    struct Rejected {
        id: String,
        #[serde(default)]
        reason: Option<String>,
        #[serde(default)]
        retry: bool,
    }
    // A 2xx means the receiver took the batch; a body it could not explain does not undo that.
    let Ok(answer) = serde_json::from_slice::<Answer>(body) else { return Outcome::delivered() };
    let mut rejected = Vec::new();
    let mut retry_from: Option<usize> = None;
    for r in answer.rejected {
        let Some(i) = r.id.parse::<Uuid>().ok().and_then(|id| ids.iter().position(|x| *x == id)) else { continue };
        if r.retry {
            retry_from = Some(retry_from.map_or(i, |f| f.min(i)));
        } else {
            let reason: String =
                r.reason.unwrap_or_else(|| "rejected by the receiver".into()).chars().take(EXCERPT).collect();
            rejected.push((i, reason));
        }
    }
    Outcome::Accepted { rejected, retry_from }
}

fn excerpt(body: &[u8]) -> String {
    let text = String::from_utf8_lossy(&body[..body.len().min(EXCERPT * 4)]);
    let text: String = text.chars().filter(|c| !c.is_control()).take(EXCERPT).collect();
    if text.trim().is_empty() { "(empty body)".into() } else { text }
}

/// `Retry-After`: delay-seconds or an HTTP date (IMF-fixdate).
pub(crate) fn parse_retry_after(value: &str, now: Timestamp) -> Option<Duration> {
    let v = value.trim();
    if let Ok(secs) = v.parse::<u64>() {
        return Some(Duration::from_secs(secs.min(86_400)));
    }
    let format = time::macros::format_description!(
        "[weekday repr:short], [day] [month repr:short] [year] [hour]:[minute]:[second] GMT"
    );
    let at = time::PrimitiveDateTime::parse(v, &format).ok()?.assume_utc();
    let at_ms = (at.unix_timestamp_nanos() / 1_000_000) as i64;
    Some(Duration::from_millis(now.millis_until(Timestamp::from_millis(at_ms)).min(86_400_000)))
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn ids(n: usize) -> Vec<Uuid> {
        (0..n).map(|i| Uuid::from_u128(i as u128 + 1)).collect()
    }

    const NOW: Timestamp = Timestamp::from_millis(1_445_412_480_000); // 2015-10-21T07:28:00Z

    #[test]
    fn success_with_and_without_rejections() {
        assert_eq!(classify(200, None, b"", &ids(3), NOW), Outcome::delivered());
        assert_eq!(classify(202, None, b"{}", &ids(3), NOW), Outcome::delivered());
        let body = format!(
            r#"{{"rejected":[{{"id":"{}","reason":"unknown product","retry":false}},{{"id":"{}","reason":"busy","retry":true}},{{"id":"not-ours"}}]}}"#,
            Uuid::from_u128(1),
            Uuid::from_u128(3)
        );
        assert_eq!(
            classify(200, None, body.as_bytes(), &ids(3), NOW),
            Outcome::Accepted { rejected: vec![(0, "unknown product".into())], retry_from: Some(2) }
        );
        // A 2xx with a body we cannot read still means "taken".
        assert_eq!(classify(200, None, b"<html>ok</html>", &ids(2), NOW), Outcome::delivered());
    }

    #[test]
    fn transient_statuses_retry_and_honour_retry_after() {
        for s in [408, 425, 429, 500, 502, 503, 504] {
            assert!(matches!(classify(s, None, b"", &ids(1), NOW), Outcome::Retry { after: None, .. }), "{s}");
        }
        let Outcome::Retry { after, .. } = classify(503, Some("120"), b"", &ids(1), NOW) else { panic!() };
        assert_eq!(after, Some(Duration::from_secs(120)));
        let Outcome::Retry { after, .. } = classify(429, Some("Wed, 21 Oct 2015 07:28:30 GMT"), b"", &ids(1), NOW)
        else {
            panic!()
        };
        assert_eq!(after, Some(Duration::from_secs(30)));
        assert_eq!(parse_retry_after("soon", NOW), None);
        assert_eq!(parse_retry_after("Wed, 21 Oct 2015 07:00:00 GMT", NOW), Some(Duration::ZERO), "a past date: now");
    }

    #[test]
    fn credentials_pause_too_large_splits_other_4xx_reject_all() {
        assert!(matches!(classify(401, None, b"", &ids(1), NOW), Outcome::Pause { .. }));
        assert!(matches!(classify(403, None, b"", &ids(1), NOW), Outcome::Pause { .. }));
        let Outcome::Pause { error } = classify(401, None, br#"{"error":"bad signature"}"#, &ids(1), NOW) else {
            panic!()
        };
        assert!(error.contains("signing_secret_file") && error.contains("signature_over"), "{error}");
        assert!(!error.contains("token_file"), "a bad signature is not a token problem: {error}");
        let Outcome::Pause { error } = classify(401, None, br#"{"error":"invalid token"}"#, &ids(1), NOW) else {
            panic!()
        };
        assert!(error.contains("token_file"), "{error}");
        assert!(matches!(classify(413, None, b"", &ids(1), NOW), Outcome::TooLarge { .. }));
        let Outcome::Accepted { rejected, retry_from: None } = classify(422, None, b"schema mismatch", &ids(2), NOW)
        else {
            panic!()
        };
        assert_eq!(rejected, vec![(0, "HTTP 422: schema mismatch".into()), (1, "HTTP 422: schema mismatch".into())]);
        assert!(matches!(classify(301, None, b"", &ids(1), NOW), Outcome::Pause { .. }));
    }

    proptest! {
        #[test]
        fn hostile_answers_never_panic(status in 0u16..1000, ra in ".{0,40}", body in prop::collection::vec(any::<u8>(), 0..300)) {
            let _ = classify(status, Some(&ra), &body, &ids(4), NOW);
        }
    }
}
