//! `type = "mqtt"`: events published to the fleet's MQTT broker, QoS 1, over one connection with
//! a persistent session ([`crate::mqtt::connect_to`]).
//!
//! **Delivered means PUBACKed.** A delivery publishes the batch's messages (one per event, or one
//! JSON array per batch) with up to `max_inflight` unacknowledged at a time, and is over when the
//! broker has acknowledged every one. Only then does the dispatcher record the events delivered.
//! When the connection drops halfway, the events whose messages were acknowledged in an unbroken
//! run from the start count as delivered and the rest are sent again.
//!
//! **Order per partition, across reconnects.** Messages are published in seq order on one
//! connection, so the broker receives them in that order. After a connection failure the MQTT
//! client is thrown away with everything it had in flight, rather than let it retransmit those
//! messages after the reconnect: a retransmitted message could then arrive after newer ones. The
//! dispatcher sends the unacknowledged rest again, in seq order, on the new connection, with the
//! same event ids; a subscriber sees a repeat only of an id it already has, never an overtaking.
//!
//! Failures: a broker that refuses the credentials or the client certificate pauses the sink
//! (alarm, nothing dead-lettered, retried every `retry.paused_interval` and on SIGHUP); no answer,
//! a reset or a missing PUBACK is retried with backoff, and probed at most once a second while
//! the backoff is long. An event larger than `max_message_bytes`, or one the broker refuses by
//! its MQTT 5 reason code as malformed, is dead-lettered alone.

pub(crate) mod config;
pub(crate) mod topic;

use std::borrow::Cow;
use std::collections::HashMap;
use std::time::Duration;

use serde::Deserialize;
use tokio::sync::mpsc;
use tokio::time::Instant;

use self::config::{MessageShape, MqttSinkConfig};
use self::topic::{TopicFields, TopicTemplate};
use crate::mqtt::{Client, ConnectionFailure, Events, FailureKind, Message, Received, Session};
use crate::sinks::{Batch, Outcome};
use crate::store::{BatchItem, StoreReader};

/// How long a connection attempt may take, CONNACK included.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);

pub(crate) struct MqttSink {
    config: MqttSinkConfig,
    gateway: String,
    site: String,
    topic: Option<TopicTemplate>,
    /// `status_topic` filled in for this gateway, parsed once.
    status_topic: Option<String>,
    connection: Option<Link>,
    /// Where the mirrored gateway status is read from (see [`MqttSink::attach_store`]).
    status_reader: Option<StoreReader>,
}

/// How often the mirrored status is refreshed, as `[mqtt] status_interval` does by default.
const STATUS_EVERY: Duration = Duration::from_secs(30);

/// The gateway's retained status, mirrored to the fleet's broker by the connection's task.
#[derive(Clone)]
struct StatusMirror {
    topic: String,
    gateway: String,
    reader: StoreReader,
}

impl StatusMirror {
    /// Queues the status read from the store now (QoS 0 retained: the next one replaces it, and
    /// a QoS 1 publish would take a packet id among a delivery's).
    async fn publish(&self, client: &Client) {
        let gateway = self.gateway.clone();
        match self.reader.run(move |r| crate::status::gateway_status_payload(r, &gateway)).await {
            Ok(body) => {
                let message = Message {
                    topic: self.topic.clone(),
                    body,
                    qos: 0,
                    retain: true,
                    user_properties: Vec::new(),
                    expiry_secs: None,
                };
                let _ = client.try_send(message);
            }
            Err(error) => tracing::debug!(%error, "Cannot read the store for the mirrored gateway status."),
        }
    }
}

/// An open connection: the client, and a task that polls it all the time, so that pings keep
/// the connection (and the gateway's `online` status) alive while the sink has nothing to send.
/// The task hands on what a delivery needs; dropping the link ends it and closes the socket.
struct Link {
    client: Client,
    events: mpsc::UnboundedReceiver<Result<Received, ConnectionFailure>>,
    poller: tokio::task::JoinHandle<()>,
    /// Refreshes the mirrored status every [`STATUS_EVERY`], when there is one.
    refresher: Option<tokio::task::JoinHandle<()>>,
}

impl Drop for Link {
    fn drop(&mut self) {
        self.poller.abort();
        if let Some(r) = &self.refresher {
            r.abort();
        }
    }
}

/// Polls `events` until the connection fails, passing on everything but pings and the like, and
/// publishes the mirrored status once connected. Never cancelled mid-poll: rumqttc's poll is not
/// safe to drop halfway (a CONNECT interrupted that way is a connection the broker sees die,
/// and it publishes the last will).
async fn poll_connection(
    mut events: Events,
    tx: mpsc::UnboundedSender<Result<Received, ConnectionFailure>>,
    client: Client,
    status: Option<StatusMirror>,
) {
    loop {
        let polled = events.poll_classified().await;
        if let (Ok(Received::Connected { .. }), Some(status)) = (&polled, &status) {
            status.publish(&client).await;
        }
        let failed = polled.is_err();
        if matches!(polled, Ok(Received::Subscribed { .. } | Received::Message(_))) {
            continue;
        }
        if tx.send(polled).is_err() || failed {
            return;
        }
    }
}

impl std::fmt::Debug for MqttSink {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MqttSink").field("name", &self.config.name).finish_non_exhaustive()
    }
}

/// The envelope fields a message needs, read from the stored JSON (borrowed where the JSON has
/// no escapes, which is nearly always).
#[derive(Deserialize)]
struct Head<'a> {
    #[serde(borrow)]
    id: Cow<'a, str>,
    #[serde(borrow)]
    schema: Cow<'a, str>,
    #[serde(borrow)]
    kind: Cow<'a, str>,
    #[serde(borrow)]
    partition: Cow<'a, str>,
    #[serde(default, borrow)]
    source: HeadSource<'a>,
}

#[derive(Deserialize, Default)]
struct HeadSource<'a> {
    #[serde(default, borrow)]
    device: Cow<'a, str>,
}

/// One message of a delivery and the events it carries (`first..end`, indexes in the batch).
struct Planned {
    message: Message,
    first: usize,
    end: usize,
}

/// Where a delivery stands: which messages the broker acknowledged.
struct Progress {
    acked: Vec<bool>,
    /// Per message, the broker's refusal (MQTT 5 reason code).
    refused: Vec<Option<String>>,
    /// Messages by packet id, from the order they left in.
    by_pkid: HashMap<u16, usize>,
    next_sent: usize,
    done: usize,
}

impl MqttSink {
    pub(crate) fn new(config: MqttSinkConfig, gateway: &str, site: &str) -> Self {
        let topic = config.topic_template().ok();
        let status_topic = config
            .status_topic
            .as_deref()
            .and_then(|t| TopicTemplate::parse(t, true).ok())
            .map(|t| t.render(&TopicFields { site, gateway, kind: "", partition: "", device: "" }));
        Self {
            config,
            gateway: gateway.to_owned(),
            site: site.to_owned(),
            topic,
            status_topic,
            connection: None,
            status_reader: None,
        }
    }

    /// Gives the sink a read connection to the store, for the gateway status it mirrors to the
    /// fleet's broker (`status_topic`); without one it mirrors only `online` and its last will.
    pub(crate) fn attach_store(&mut self, reader: StoreReader) {
        self.status_reader = Some(reader);
    }

    /// Whether it mirrors the gateway status (and so reads the store).
    pub(crate) fn wants_store(&self) -> bool {
        self.config.status_topic.is_some()
    }

    fn status_mirror(&self) -> Option<StatusMirror> {
        Some(StatusMirror {
            topic: self.status_topic.clone()?,
            gateway: self.gateway.clone(),
            reader: self.status_reader.clone()?,
        })
    }

    fn session(&self) -> Session {
        let will = self.status_topic.clone().map(|t| (t, crate::mqtt::offline_payload(&self.gateway)));
        Session {
            persistent: true,
            manual_acks: false,
            inflight: self.config.max_inflight,
            last_will: will,
            // Every message of a delivery is queued at once (rumqttc sends `inflight` of them at
            // a time), so the queue holds a whole batch and queuing never waits.
            queue: self.config.batch.max_events.saturating_add(64),
            delivery_reports: true,
            ..Session::plain(self.config.client_id(&self.gateway))
        }
    }

    /// The open connection, or a new one once the broker's CONNACK came back. A connection that
    /// failed while the sink was idle is replaced.
    async fn connected(&mut self) -> Result<&mut Link, ConnectionFailure> {
        if let Some(link) = &mut self.connection {
            let mut broken = link.poller.is_finished();
            while let Ok(item) = link.events.try_recv() {
                broken |= matches!(item, Err(_) | Ok(Received::DisconnectedByBroker { .. }));
            }
            if broken {
                tracing::info!(sink = %self.config.name, "The fleet's broker connection was lost while idle; reconnecting.");
                self.connection = None;
            }
        }
        if self.connection.is_none() {
            let session = self.session();
            // Reads the password and certificate files: on the blocking pool, not the runtime (a
            // sink probing a dead broker connects once a second).
            let config = self.config.clone();
            let (client, events) =
                tokio::task::spawn_blocking(move || crate::mqtt::connect_to(&config.endpoint(), &session))
                    .await
                    .map_err(|e| ConnectionFailure {
                        kind: FailureKind::Network,
                        text: format!("the connect task failed: {e}"),
                    })?
                    .map_err(|text| ConnectionFailure { kind: FailureKind::Refused, text })?;
            let (tx, rx) = mpsc::unbounded_channel();
            let mirror = self.status_mirror();
            let refresher = mirror.clone().map(|status| {
                let client = client.clone();
                tokio::spawn(async move {
                    loop {
                        tokio::time::sleep(STATUS_EVERY).await;
                        status.publish(&client).await;
                    }
                })
            });
            let poller = tokio::spawn(poll_connection(events, tx, client.clone(), mirror));
            let mut link = Link { client, events: rx, poller, refresher };
            let session_present = tokio::time::timeout(CONNECT_TIMEOUT, async {
                loop {
                    match link.events.recv().await {
                        Some(Ok(Received::Connected { session_present })) => return Ok(session_present),
                        Some(Ok(_)) => {}
                        Some(Err(failure)) => return Err(failure),
                        None => return Err(closed()),
                    }
                }
            })
            .await
            .map_err(|_| ConnectionFailure {
                kind: FailureKind::Network,
                text: format!("the broker at {}:{} did not answer within 10 s", self.config.host, self.config.port()),
            })??;
            tracing::info!(sink = %self.config.name, session_present, "Connected to the fleet's MQTT broker.");
            if let (Some(topic), None) = (self.status_topic.clone(), &self.status_reader) {
                let body = serde_json::json!({"state": "online", "gateway": self.gateway}).to_string();
                // QoS 0: the retained status is replaced by the next one, and a QoS 1 publish
                // would take a packet id among the delivery's.
                let status =
                    Message { topic, body, qos: 0, retain: true, user_properties: Vec::new(), expiry_secs: None };
                let _ = link.client.try_send(status);
            }
            self.connection = Some(link);
        }
        self.connection.as_mut().ok_or_else(closed)
    }

    /// The messages for `items`, and the events refused before sending (too large, unreadable).
    fn plan(&self, items: &[BatchItem]) -> (Vec<Planned>, Vec<(usize, String)>) {
        let max = self.config.max_message_bytes.as_usize();
        let Some(topic) = &self.topic else {
            let reason = "the topic template does not parse".to_owned();
            return (Vec::new(), (0..items.len()).map(|i| (i, reason.clone())).collect());
        };
        let mut rejected = Vec::new();
        let mut planned = Vec::new();
        let too_large = |len: usize| {
            format!("the event is {len} bytes, over this sink's max_message_bytes ({max}); the broker would refuse it")
        };
        match self.config.messages {
            MessageShape::Event => {
                for (i, item) in items.iter().enumerate() {
                    let head: Head = match serde_json::from_str(&item.body) {
                        Ok(h) => h,
                        Err(e) => {
                            rejected.push((i, format!("the stored envelope does not parse: {e}")));
                            continue;
                        }
                    };
                    if item.body.len() > max {
                        rejected.push((i, too_large(item.body.len())));
                        continue;
                    }
                    let fields = TopicFields {
                        site: &self.site,
                        gateway: &self.gateway,
                        kind: &head.kind,
                        partition: &head.partition,
                        device: &head.source.device,
                    };
                    let message = self.message(topic.render(&fields), item.body.clone(), Some(&head));
                    planned.push(Planned { message, first: i, end: i + 1 });
                }
            }
            MessageShape::Batch => {
                let fields =
                    TopicFields { site: &self.site, gateway: &self.gateway, kind: "", partition: "", device: "" };
                // As many events per message as fit; an event alone over the limit is refused.
                let mut start = 0;
                while start < items.len() {
                    let mut end = start;
                    let mut bytes = 2;
                    while end < items.len() && (end == start || bytes + items[end].body.len() < max) {
                        bytes += items[end].body.len() + 1;
                        end += 1;
                    }
                    if end == start + 1 && bytes > max {
                        rejected.push((start, too_large(items[start].body.len())));
                    } else {
                        let bodies: Vec<&str> = items[start..end].iter().map(|i| i.body.as_str()).collect();
                        let body = format!("[{}]", bodies.join(","));
                        let message = self.message(topic.render(&fields), body, None);
                        planned.push(Planned { message, first: start, end });
                    }
                    start = end;
                }
            }
        }
        (planned, rejected)
    }

    fn message(&self, topic: String, body: String, head: Option<&Head<'_>>) -> Message {
        // MQTT 3.1.1 has no properties: nothing to build for it.
        let v5 = self.config.protocol == crate::mqtt::MqttProtocol::V5;
        let mut user_properties = Vec::new();
        if v5
            && self.config.user_properties
            && let Some(h) = head
        {
            user_properties = vec![
                ("id".to_owned(), h.id.to_string()),
                ("schema".to_owned(), h.schema.to_string()),
                ("kind".to_owned(), h.kind.to_string()),
            ];
        }
        let expiry_secs = self.config.message_expiry.map(|d| u32::try_from(d.0.as_secs().max(1)).unwrap_or(u32::MAX));
        Message { topic, body, qos: 1, retain: false, user_properties, expiry_secs }
    }

    /// Publishes `batch` and waits for the broker's PUBACKs.
    pub(crate) async fn deliver(&mut self, batch: &Batch) -> Outcome {
        let (planned, mut rejected) = self.plan(&batch.items);
        if planned.is_empty() {
            return Outcome::Accepted { rejected, retry_from: None };
        }
        let ack_timeout = self.config.ack_timeout.0;
        let link = match self.connected().await {
            Ok(link) => link,
            Err(failure) => return failed(failure),
        };
        let mut progress = Progress {
            acked: vec![false; planned.len()],
            refused: vec![None; planned.len()],
            by_pkid: HashMap::new(),
            next_sent: 0,
            done: 0,
        };
        for p in &planned {
            if let Err(e) = link.client.try_send(p.message.clone()) {
                self.connection = None;
                return Outcome::Retry {
                    error: format!("cannot queue a message: {e}"),
                    after: None,
                    unreachable: false,
                };
            }
        }
        let mut deadline = Instant::now() + ack_timeout;
        let failure = loop {
            if progress.done == planned.len() {
                break None;
            }
            let polled = match tokio::time::timeout_at(deadline, link.events.recv()).await {
                Ok(Some(p)) => p,
                Ok(None) => break Some(closed()),
                Err(_) => {
                    break Some(ConnectionFailure {
                        kind: FailureKind::Network,
                        text: format!(
                            "the broker acknowledged {} of {} messages within ack_timeout ({})",
                            progress.done,
                            planned.len(),
                            self.config.ack_timeout
                        ),
                    });
                }
            };
            match polled {
                Ok(Received::Sent { pkid }) => {
                    if progress.next_sent < planned.len() {
                        progress.by_pkid.insert(pkid, progress.next_sent);
                        progress.next_sent += 1;
                    }
                }
                Ok(Received::Acked { pkid, refused }) => {
                    if let Some(i) = progress.by_pkid.remove(&pkid)
                        && !progress.acked[i]
                    {
                        progress.acked[i] = true;
                        progress.refused[i] = refused;
                        progress.done += 1;
                        deadline = Instant::now() + ack_timeout;
                    }
                }
                Ok(Received::DisconnectedByBroker { reason }) => {
                    break Some(ConnectionFailure {
                        kind: FailureKind::Network,
                        text: format!("the broker closed the connection: {reason}"),
                    });
                }
                Ok(_) => {}
                Err(failure) => break Some(failure),
            }
        };
        // The messages acknowledged from the start, in an unbroken run.
        let run = progress.acked.iter().take_while(|a| **a).count();
        for (p, refused) in planned.iter().zip(&progress.refused).take(run) {
            if let Some(reason) = refused {
                if let Some(outcome) = refusal_outcome(reason, &self.config.name) {
                    self.connection = None;
                    return outcome;
                }
                for i in p.first..p.end {
                    rejected.push((i, format!("the broker refused the message: {reason}")));
                }
            }
        }
        rejected.sort_unstable();
        match failure {
            None => Outcome::Accepted { rejected, retry_from: None },
            Some(failure) => {
                self.connection = None;
                tracing::warn!(sink = %self.config.name, error = %failure, acknowledged = run, of = planned.len(), "The fleet's broker connection failed during a delivery.");
                match planned.get(run) {
                    Some(p) if run > 0 => {
                        rejected.retain(|(i, _)| *i < p.first);
                        Outcome::Accepted { rejected, retry_from: Some(p.first) }
                    }
                    _ => failed(failure),
                }
            }
        }
    }

    /// While backing off: whether the broker takes a connection again.
    pub(crate) async fn probe(&mut self) -> bool {
        match self.connected().await {
            Ok(_) => true,
            Err(_) => {
                self.connection = None;
                false
            }
        }
    }

    /// For `check-config --connect`: connects and reports the broker's answer.
    pub(crate) async fn check(&mut self) -> Result<String, String> {
        let endpoint = self.config.endpoint();
        let what = format!("{}:{} (MQTT {})", endpoint.host, endpoint.port, self.config.protocol);
        // A short-lived client id of its own: the daemon's session is left alone.
        let session = Session::plain(format!("{}-check-{}", self.config.client_id(&self.gateway), std::process::id()));
        let (client, mut events) = crate::mqtt::connect_to(&endpoint, &session)?;
        let answer = tokio::time::timeout(CONNECT_TIMEOUT, async {
            loop {
                match events.poll_classified().await {
                    Ok(Received::Connected { .. }) => return Ok(()),
                    Ok(_) => {}
                    Err(f) => return Err(f.text),
                }
            }
        })
        .await
        .map_err(|_| format!("{what} did not answer within 10 s"))?;
        answer?;
        let _ = client.try_disconnect();
        events.drain_until_disconnected(Duration::from_secs(2)).await;
        let example = self.topic.as_ref().map(|t| {
            t.render(&TopicFields {
                site: &self.site,
                gateway: &self.gateway,
                kind: "count",
                partition: "hh-01",
                device: "hh-01",
            })
        });
        Ok(format!("{what} accepted the connection (CONNACK); events go to {}", example.unwrap_or_default()))
    }
}

fn closed() -> ConnectionFailure {
    ConnectionFailure { kind: FailureKind::Network, text: "the connection to the broker closed".into() }
}

/// What a failed connection means for the delivery.
fn failed(failure: ConnectionFailure) -> Outcome {
    match failure.kind {
        FailureKind::Refused | FailureKind::Tls => Outcome::Pause { error: failure.text },
        FailureKind::Network => Outcome::Retry { error: failure.text, after: None, unreachable: true },
    }
}

/// What an MQTT 5 PUBACK refusal means beyond its own message: a reason code that says the
/// sink's settings are wrong (every message would be refused) pauses the sink instead of
/// dead-lettering the backlog one event at a time; a busy broker is retried; `None` for a
/// refusal of that message alone (it is dead-lettered).
fn refusal_outcome(reason: &str, sink: &str) -> Option<Outcome> {
    if reason.starts_with("NotAuthorized") || reason.starts_with("TopicNameInvalid") {
        return Some(Outcome::Pause {
            error: format!(
                "the broker refused to take messages on this topic ({reason}): check the broker's ACL for this client, and sink {sink}'s topic"
            ),
        });
    }
    if reason.starts_with("QuotaExceeded") || reason.starts_with("ServerBusy") {
        return Some(Outcome::Retry {
            error: format!("the broker is over its quota: {reason}"),
            after: None,
            unreachable: false,
        });
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sink(extra: &str) -> MqttSink {
        let text = format!("name = \"fleet\"\ntype = \"mqtt\"\nhost = \"broker\"\n{extra}");
        let config: MqttSinkConfig = toml::from_str(&text).unwrap();
        MqttSink::new(config.resolved(std::path::Path::new("/")).unwrap(), "wh1-gw01", "WH1")
    }

    fn items(sizes: &[usize]) -> Vec<BatchItem> {
        sizes
            .iter()
            .enumerate()
            .map(|(i, &size)| {
                let mut event = crate::event::sample_event(&format!("hh-{}", i % 2), size);
                event.id = uuid::Uuid::from_u128(i as u128 + 1);
                BatchItem {
                    seq: i as u64 + 1,
                    id: event.id,
                    body: event.to_envelope_json(i as u64 + 1),
                    redelivery: None,
                }
            })
            .collect()
    }

    #[test]
    fn each_event_is_a_message_on_its_own_topic_with_its_properties() {
        let s = sink("topic = \"d/{site}/{gateway}/{partition}/{kind}\"\nprotocol = \"5\"\nmessage_expiry = \"1h\"");
        let items = items(&[100, 100]);
        let (planned, rejected) = s.plan(&items);
        assert!(rejected.is_empty());
        assert_eq!(planned.len(), 2);
        let m = &planned[1].message;
        assert_eq!(m.topic, "d/WH1/wh1-gw01/hh-1/scan");
        assert_eq!(m.body, items[1].body);
        assert_eq!((m.qos, m.retain, m.expiry_secs), (1, false, Some(3600)));
        let id = items[1].id.to_string();
        assert_eq!(m.user_properties[0], ("id".to_owned(), id));
        assert_eq!(m.user_properties[1], ("schema".to_owned(), "dockhand.event/1".to_owned()));
    }

    #[test]
    fn an_event_over_the_size_limit_is_refused_alone() {
        let s = sink("max_message_bytes = 2000");
        let (planned, rejected) = s.plan(&items(&[100, 5000, 100]));
        assert_eq!(planned.iter().map(|p| p.first).collect::<Vec<_>>(), vec![0, 2]);
        assert_eq!(rejected.len(), 1);
        assert_eq!(rejected[0].0, 1);
        assert!(rejected[0].1.contains("max_message_bytes"), "{}", rejected[0].1);
    }

    #[test]
    fn batch_messages_are_json_arrays_that_fit_the_size_limit() {
        let s = sink("messages = \"batch\"\ntopic = \"d/{gateway}\"\nmax_message_bytes = 2000");
        let items = items(&[300, 300, 300, 300, 5000, 300]);
        let (planned, rejected) = s.plan(&items);
        assert_eq!(rejected.iter().map(|r| r.0).collect::<Vec<_>>(), vec![4]);
        // Every event but the refused one is in exactly one message, in order.
        let covered: Vec<usize> = planned.iter().flat_map(|p| p.first..p.end).collect();
        assert_eq!(covered, vec![0, 1, 2, 3, 5]);
        for p in &planned {
            assert!(p.message.body.len() <= 2000, "{} bytes", p.message.body.len());
            let array: Vec<serde_json::Value> = serde_json::from_str(&p.message.body).unwrap();
            assert_eq!(array.len(), p.end - p.first);
            assert_eq!(p.message.topic, "d/wh1-gw01");
        }
    }
}
