//! The page's live view: the latest reading of every device (so a page opened now shows the last
//! scan at once) and a server-sent event stream of readings as they happen, with a fresh status
//! every [`STATUS_EVERY`]. One long-lived connection per open page, no polling.

use std::collections::BTreeMap;
use std::convert::Infallible;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::Duration;

use bytes::Bytes;
use hyper::body::Frame;
use tokio::sync::mpsc;

use crate::devices::live::{LiveListener, LiveReadings};

/// How often an open page gets the whole status again (devices, sinks, dead letters).
pub(crate) const STATUS_EVERY: Duration = Duration::from_secs(2);

/// Open live views at most: each costs a task and a status read every [`STATUS_EVERY`].
pub(crate) const MAX_VIEWERS: usize = 16;

/// The latest reading of each device and station (`reading/<device>` → its JSON).
#[derive(Debug, Clone, Default)]
pub(crate) struct Latest {
    readings: Arc<Mutex<BTreeMap<String, String>>>,
}

impl Latest {
    /// Keeps the latest reading of each device, for as long as the process runs.
    pub(crate) fn follow(live: &LiveReadings) -> Latest {
        let latest = Latest::default();
        let mut listener = live.listen();
        let kept = latest.clone();
        tokio::spawn(async move {
            loop {
                let reading = listener.next().await;
                kept.readings.lock().unwrap_or_else(|p| p.into_inner()).insert(reading.leaf, reading.body);
            }
        });
        latest
    }

    /// `{"reading/scale-1": {...}, ...}`.
    pub(crate) fn snapshot(&self) -> serde_json::Value {
        let readings = self.readings.lock().unwrap_or_else(|p| p.into_inner());
        readings
            .iter()
            .map(|(leaf, body)| (leaf.clone(), serde_json::from_str(body).unwrap_or(serde_json::Value::Null)))
            .collect::<serde_json::Map<_, _>>()
            .into()
    }
}

/// One server-sent event (`event: <name>`, one `data:` line of JSON).
pub(crate) fn sse_event(name: &str, json: &str) -> Bytes {
    // JSON as serde_json writes it has no raw line breaks; one `data:` line per line keeps the
    // frame valid even if a body ever had one.
    let mut out = format!("event: {name}\n");
    for line in json.lines() {
        out.push_str("data: ");
        out.push_str(line);
        out.push('\n');
    }
    out.push('\n');
    Bytes::from(out)
}

/// A reading as the page receives it: `{"leaf": "reading/scale-1", "body": {...}}`.
pub(crate) fn reading_json(leaf: &str, body: &str) -> String {
    let body: serde_json::Value = serde_json::from_str(body).unwrap_or(serde_json::Value::Null);
    serde_json::json!({"leaf": leaf, "body": body}).to_string()
}

/// A response body fed by a channel: what the viewer's task sends, as it sends it.
#[derive(Debug)]
pub(crate) struct ChannelBody {
    rx: mpsc::Receiver<Bytes>,
}

impl ChannelBody {
    pub(crate) fn new(rx: mpsc::Receiver<Bytes>) -> Self {
        Self { rx }
    }
}

impl hyper::body::Body for ChannelBody {
    type Data = Bytes;
    type Error = Infallible;

    fn poll_frame(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Result<Frame<Bytes>, Infallible>>> {
        self.rx.poll_recv(cx).map(|chunk| chunk.map(|b| Ok(Frame::data(b))))
    }
}

/// The readings a viewer gets, as server-sent events.
pub(crate) async fn next_reading_event(listener: &mut LiveListener) -> Bytes {
    let reading = listener.next().await;
    sse_event("reading", &reading_json(&reading.leaf, &reading.body))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_event_is_one_frame_whatever_its_text() {
        assert_eq!(&sse_event("status", "{\"a\":1}")[..], b"event: status\ndata: {\"a\":1}\n\n");
        assert_eq!(&sse_event("x", "a\nb")[..], b"event: x\ndata: a\ndata: b\n\n");
        let json = reading_json("reading/s1", r#"{"scan":"<script>x</script>\n"}"#);
        assert!(!json.contains('\n'), "{json}");
        assert_eq!(serde_json::from_str::<serde_json::Value>(&json).unwrap()["body"]["scan"], "<script>x</script>\n");
    }

    #[tokio::test]
    async fn the_latest_reading_of_each_device_is_kept() {
        let live = LiveReadings::default();
        let latest = Latest::follow(&live);
        tokio::task::yield_now().await;
        live.publish("scale-1", r#"{"reading":"1.0"}"#.into());
        live.publish("scale-1", r#"{"reading":"2.0"}"#.into());
        live.publish("scanner-1", r#"{"scan":"A"}"#.into());
        for _ in 0..100 {
            if latest.snapshot().as_object().is_some_and(|m| m.len() == 2) {
                break;
            }
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        let snap = latest.snapshot();
        assert_eq!(snap["reading/scale-1"]["reading"], "2.0", "{snap}");
        assert_eq!(snap["reading/scanner-1"]["scan"], "A", "{snap}");
    }
}
