//! The MQTT source: one rumqttc connection with a persistent session (clean session off, a stable
//! client id), subscribed at QoS 1 to `<prefix>/handheld/#`.
//!
//! Every PUBLISH is classified ([`super::message::classify`]), stored (or dead-lettered), answered
//! (on `<prefix>/reply/<device>/ack` or `…/rejected`, or — MQTT 5 — on the message's Response
//! Topic with its Correlation Data), and only then acknowledged to the broker. The connection
//! itself (protocol version, TLS, session) is [`crate::mqtt`]'s. Messages
//! are committed in the order they arrived (so each handheld's events keep its publish order in
//! the store and at every sink), and PUBACKs leave in that order too (MQTT 3.1.1 §4.6): an acker
//! task waits for each message's outcome in arrival order. When the store is full, the message is held unacknowledged
//! and retried; the broker keeps it and, once its in-flight window is used up, stops sending more —
//! back-pressure instead of loss.

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use serde_json::json;
use tokio::sync::{mpsc, oneshot};
use tracing::{debug, error, info, warn};

use super::message::{Incoming, RejectedReply, Rejection, classify};
use crate::dispatcher::RetrySchedule;
use crate::event::{Event as DhEvent, Source, Transport as DhTransport, new_event_id};
use crate::mqtt::{Client, Inbound, Outbound, Received, Session};
use crate::mqtt::{MqttSettings, ReplyLayout, offline_payload};
use crate::shutdown::Shutdown;
use crate::sinks::RetryConfig;
use crate::store::{Appended, NewDeadLetter, Store, StoreError, StoreReader, until_stored};

/// What waits while the store cannot take a message.
const HELD: &str = "the MQTT message is held unacknowledged; the broker keeps it";
use crate::timestamp::Timestamp;
use crate::units::HumanDuration;

const REPLY_WINDOW: u16 = 4096;

pub use crate::health::MqttHealth;

pub struct MqttSource {
    settings: Arc<MqttSettings>,
    store: Store,
    health: Arc<MqttHealth>,
    live: crate::devices::live::LiveReadings,
}

impl std::fmt::Debug for MqttSource {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MqttSource").field("prefix", &self.settings.prefix).finish_non_exhaustive()
    }
}

/// The answer to a handheld.
type Reply = Outbound;

/// One message waiting for its outcome: the reply to publish (if any), then its PUBACK. A dropped
/// sender means "not stored": no ack.
type PendingAck = (Arc<Inbound>, oneshot::Receiver<Option<Reply>>);
/// A message's store write, already queued: yields its reply (if any) once durable, or `None`
/// when the store closed first.
type Written = std::pin::Pin<Box<dyn Future<Output = Option<Option<Reply>>> + Send>>;

impl MqttSource {
    pub fn new(settings: MqttSettings, store: Store, live: crate::devices::live::LiveReadings) -> Self {
        Self { settings: Arc::new(settings), store, health: Arc::default(), live }
    }

    pub fn health(&self) -> Arc<MqttHealth> {
        self.health.clone()
    }

    pub async fn run(self, mut shutdown: Shutdown) -> Result<(), StoreError> {
        let client_id = self.settings.mqtt.client_id(&self.settings.gateway);
        let session = Session {
            client_id: client_id.clone(),
            persistent: true,
            manual_acks: true,
            // Replies to handhelds are QoS 1: with rumqttc's default window of 100 unacknowledged
            // publishes it stops reading its request queue — PUBACKs included — whenever 100
            // replies wait for the broker, which throttles ingest to the broker's reply round trip.
            inflight: REPLY_WINDOW,
            last_will: Some((self.settings.status_topic(), offline_payload(&self.settings.gateway))),
            // Room for every reply and ack the broker's in-flight window can cause, so queuing one
            // never waits: a waiting sender on rumqttc's channel costs CPU linear in the number
            // waiting.
            queue: 16 * 1024,
        };
        let (client, mut events) = match crate::mqtt::connect(&self.settings, &session) {
            Ok(c) => c,
            Err(e) => {
                error!(%e, "The MQTT source cannot start: fix [mqtt] in the config.");
                shutdown.wait().await;
                return Ok(());
            }
        };
        let (ack_tx, ack_rx) = mpsc::unbounded_channel::<PendingAck>();
        let acker = tokio::spawn(send_acks_in_order(client.clone(), ack_rx));
        let filter = format!("{}/handheld/#", self.settings.prefix);
        let mut reconnect = RetrySchedule::new(RetryConfig {
            initial: HumanDuration(Duration::from_millis(500)),
            max: HumanDuration(Duration::from_secs(30)),
            paused_interval: HumanDuration(Duration::from_secs(30)),
        });
        let mut status_tick = tokio::time::interval(self.settings.mqtt.status_interval.0);
        // One read connection for every status refresh.
        let status_reader = self.store.reader();
        let mut heartbeat_tick = tokio::time::interval(Duration::from_secs(5));
        let mut failures: u32 = 0;
        let mut subacks: u32 = 0;
        let mut readings = self.live.subscribe();
        let mut previous_turn: Option<oneshot::Receiver<()>> = None;
        let live_prefix = format!("{}/gateway/{}", self.settings.prefix, self.settings.gateway);
        let print_prefix = self.settings.print_prefix();
        info!(
            broker = %format!("{}:{}", self.settings.mqtt.host, self.settings.mqtt.port),
            protocol = %self.settings.mqtt.protocol,
            %client_id,
            %filter,
            replies = %self.settings.reply_filter("<device>"),
            "MQTT source started."
        );
        if self.settings.mqtt.replies == ReplyLayout::V1 {
            warn!(
                "[mqtt] replies = \"v1\" is deprecated: every answer comes back to dockhand through its own subscription. Move the handheld apps to warehouse/<site>/reply/<device>/#, then remove the setting."
            );
        }
        loop {
            tokio::select! {
                polled = events.poll() => match polled {
                    Ok(Received::Connected { session_present }) => {
                        failures = 0;
                        subacks = 0;
                        reconnect.reset();
                        self.health.connected.store(true, Ordering::Relaxed);
                        info!(session_present, "Connected to the MQTT broker.");
                        if !session_present {
                            warn!("The broker holds no session for dockhand: normal on the first start; otherwise the broker lost it, and messages sent while dockhand was away may be missing.");
                        }
                        // Subscriptions are not restored by rumqttc: ask again on every connection.
                        if let Err(e) = client.try_subscribe(filter.clone(), 1) {
                            warn!(error = %e, "Cannot queue the MQTT subscription.");
                        }
                        if !self.settings.printers.is_empty()
                            && let Err(e) = client.try_subscribe(format!("{print_prefix}/+"), 1)
                        {
                            warn!(error = %e, "Cannot queue the print job subscription.");
                        }
                        self.publish_status(&client, &status_reader).await;
                    }
                    // SubAcks come back in the order of the requests: handhelds first, then print jobs.
                    Ok(Received::Subscribed { refused }) => {
                        subacks += 1;
                        let topic = if subacks == 1 { filter.clone() } else { format!("{print_prefix}/+") };
                        match refused {
                            Some(reason) => error!(%topic, %reason, "The broker refused dockhand's subscription: check the broker's ACL for this client."),
                            None if subacks == 1 => info!(%topic, "Subscribed to handheld topics."),
                            None => info!(%topic, "Subscribed to print job topics."),
                        }
                    }
                    Ok(Received::Message(message)) => {
                        let message: Arc<Inbound> = Arc::from(message);
                        crate::counters::MQTT_MESSAGES_RECEIVED.add();
                        let (done, outcome) = oneshot::channel();
                        if ack_tx.send((message.clone(), outcome)).is_err() {
                            break;
                        }
                        let (next, turn) = oneshot::channel();
                        let turn = Turn { previous: previous_turn.replace(turn), next };
                        // The first store write is queued here, in arrival order; see `Turn`.
                        let written = if message.topic.starts_with(&print_prefix) {
                            ingest_print_job(&self.settings, &self.store, &message, turn)
                        } else {
                            ingest(&self.settings, &self.store, &message, turn)
                        };
                        tokio::spawn(async move {
                            // None: the store closed (shutting down); the message stays unacknowledged.
                            if let Some(reply) = written.await {
                                let _ = done.send(reply);
                            }
                        });
                    }
                    Ok(Received::DisconnectedByBroker { reason }) => {
                        warn!(%reason, "The MQTT broker closed the connection; reconnecting.");
                    }
                    Ok(_) => {}
                    Err(error) => {
                        self.health.connected.store(false, Ordering::Relaxed);
                        failures += 1;
                        let delay = reconnect.next_delay();
                        if failures == 1 || failures.is_power_of_two() {
                            warn!(%error, attempt = failures, retry_in_ms = delay.as_millis() as u64, "MQTT connection failed; reconnecting.");
                        }
                        if !shutdown.sleep(delay).await {
                            break;
                        }
                    }
                },
                reading = readings.recv() => match reading {
                    Ok(r) => {
                        // QoS 0 and never waiting: a reading that cannot go now is replaced by the next.
                        let _ = client.try_publish(format!("{live_prefix}/{}", r.leaf), 0, false, r.body);
                    }
                    Err(tokio::sync::broadcast::error::RecvError::Lagged(_)) => {}
                    Err(tokio::sync::broadcast::error::RecvError::Closed) => readings = self.live.subscribe(),
                },
                _ = status_tick.tick() => self.publish_status(&client, &status_reader).await,
                _ = heartbeat_tick.tick() => shutdown.beat(),
                _ = shutdown.wait() => break,
            }
        }
        // Leave cleanly: say offline (retained), then disconnect. Messages still being stored are
        // not acknowledged, so the broker sends them again next time.
        drop(ack_tx);
        acker.abort();
        let _ = client.try_publish(self.settings.status_topic(), 1, true, offline_payload(&self.settings.gateway));
        let _ = client.try_disconnect();
        events.drain_until_disconnected(Duration::from_secs(2)).await;
        self.health.connected.store(false, Ordering::Relaxed);
        info!("MQTT source stopped.");
        Ok(())
    }

    async fn publish_status(&self, client: &Client, reader: &Result<StoreReader, StoreError>) {
        let gateway = self.settings.gateway.clone();
        let read = match reader {
            Ok(reader) => reader.run(move |r| gateway_status(r, &gateway)).await,
            Err(e) => Err(StoreError::Setup(e.to_string())),
        };
        let payload = match read {
            Ok(p) => p,
            Err(e) => {
                debug!(error = %e, "Cannot read the store for the gateway status.");
                return;
            }
        };
        if let Err(e) = client.try_publish(self.settings.status_topic(), 1, true, payload) {
            debug!(error = %e, "Cannot queue the gateway status.");
        }
    }
}

/// The retained `…/gateway/<id>/status` payload: online, and each sink's queue.
fn gateway_status(reader: &StoreReader, gateway: &str) -> Result<String, StoreError> {
    let summary = reader.summary()?;
    Ok(crate::status::gateway_status(&summary, gateway, Timestamp::now()).to_string())
}

/// Publishes each message's reply, then its PUBACK, in arrival order. One task sends everything so
/// that rumqttc's request queue never has more than one waiting sender (each waiting sender costs
/// time linear in their number when the queue is full).
async fn send_acks_in_order(client: Client, mut pending: mpsc::UnboundedReceiver<PendingAck>) {
    while let Some((message, outcome)) = pending.recv().await {
        let Ok(reply) = outcome.await else {
            // The message was not stored (shutting down): no ack, and none after it either.
            return;
        };
        if let Some(reply) = reply
            && let Err(e) = client.publish(reply).await
        {
            debug!(error = %e, "Cannot queue the reply to the handheld.");
        }
        if let Err(e) = client.ack(&message).await {
            debug!(error = %e, "Cannot send a PUBACK (disconnected); the broker will redeliver.");
            return;
        }
    }
}

/// A message's place in the arrival order. Every message's first store write is queued to the
/// writer from the poll loop, so events commit — and get their seqs, the order sinks deliver
/// them in — in the order the broker delivered them: a handheld's count, then its pick, reach
/// Odoo in that order. Only a write the store refused (full, or an I/O error) is retried, and
/// that retry first waits until the message before it has been written, so retries cannot
/// overtake each other either.
struct Turn {
    previous: Option<oneshot::Receiver<()>>,
    next: oneshot::Sender<()>,
}

impl Turn {
    /// Awaits the write queued in arrival order; if the store refused it, waits for the previous
    /// message's turn and retries until it is written. `None`: the store closed.
    async fn write<T, F, Fut>(self, queued: impl Future<Output = Result<T, StoreError>>, retry: F) -> Option<T>
    where
        F: FnMut() -> Fut,
        Fut: Future<Output = Result<T, StoreError>>,
    {
        let written = match queued.await {
            Ok(v) => Some(v),
            Err(StoreError::Closed) => None,
            Err(error) => {
                debug!(%error, "Cannot store an MQTT message yet; it is retried in arrival order.");
                if let Some(previous) = self.previous {
                    let _ = previous.await;
                }
                until_stored(HELD, retry).await
            }
        };
        // Dropped unsent when the store closed: the next one's wait ends either way.
        let _ = self.next.send(());
        written
    }
}

/// Where the answer to `message` goes: its Response Topic with its Correlation Data (MQTT 5
/// request/response), else `fallback` (the contract's reply topic), else nowhere.
fn answer(settings: &MqttSettings, message: &Inbound, fallback: Option<String>, body: String) -> Option<Outbound> {
    let qos = settings.mqtt.reply_qos;
    match &message.response_topic {
        Some(topic) => {
            Some(Outbound { topic: topic.clone(), body, qos, retain: false, correlation: message.correlation.clone() })
        }
        None => fallback.map(|topic| Outbound { topic, body, qos, retain: false, correlation: None }),
    }
}

/// Stores or dead-letters one message; the reply is for the handheld. The store write is queued
/// before this returns (see [`Turn`]); the returned future waits for it.
fn ingest(settings: &Arc<MqttSettings>, store: &Store, message: &Arc<Inbound>, turn: Turn) -> Written {
    let received_at = Timestamp::now();
    let max = settings.mqtt.max_payload_bytes.0 as usize;
    let store = store.clone();
    match classify(&settings.prefix, &message.topic, &message.payload, max) {
        Incoming::OwnReply => Box::pin(async move {
            crate::counters::MQTT_OWN_REPLIES_RECEIVED.add();
            let _ = turn.next.send(());
            Some(None)
        }),
        Incoming::Message(m) => {
            let event = DhEvent {
                id: m.id.unwrap_or_else(new_event_id),
                gateway: settings.gateway.clone(),
                site: settings.site.clone(),
                source: Source { transport: DhTransport::Mqtt, device: m.device.clone(), station: None },
                partition: m.device.clone(),
                occurred_at: m.ts.unwrap_or(received_at),
                received_at,
                correlation_id: None,
                payload: m.payload,
            };
            let settings = settings.clone();
            let message = message.clone();
            let device = m.device;
            let queued = store.append_one_queued(event.clone());
            Box::pin(async move {
                let id = event.id;
                let outcome = turn.write(queued, || store.append_one(event.clone())).await?;
                let status = match outcome {
                    Appended::Stored { .. } => "stored",
                    Appended::Duplicate { .. } => "duplicate",
                };
                let body = json!({"id": id, "status": status}).to_string();
                Some(answer(&settings, &message, Some(settings.reply_topic(&device, "ack")), body))
            })
        }
        Incoming::Rejected(r) => {
            let entry = NewDeadLetter {
                sink: None,
                event_id: r.id,
                event_seq: None,
                origin: format!("mqtt:{}", message.topic),
                reason: rejection_text(&r),
                body: message.payload.to_vec(),
            };
            warn!(topic = %message.topic, reason = %entry.reason, "Rejected a handheld message; it is in the dead-letter store.");
            let queued = store.dead_letter_queued(entry.clone());
            let settings = settings.clone();
            let message = message.clone();
            Box::pin(async move {
                turn.write(queued, || store.dead_letter(entry.clone())).await?;
                let body = RejectedReply { id: r.id, error: &r.error, field: r.field.as_deref() };
                let body = serde_json::to_string(&body).unwrap_or_default();
                let fallback = r.device.as_ref().map(|device| settings.reply_topic(device, "rejected"));
                Some(answer(&settings, &message, fallback, body))
            })
        }
    }
}

/// Stores a print job (or dead-letters the request); the reply goes to `…/print/<printer>/ack`
/// (or the request's Response Topic): `{"id", "status": "queued" | "duplicate" | "rejected",
/// "error"}`. Jobs are queued in arrival order (see [`Turn`]), so a printer prints them in the
/// order they came.
fn ingest_print_job(settings: &Arc<MqttSettings>, store: &Store, message: &Arc<Inbound>, turn: Turn) -> Written {
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
            let queued = store.print_job_queued(change.clone());
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
            let queued = store.dead_letter_queued(entry.clone());
            Box::pin(async move {
                turn.write(queued, || store.dead_letter(entry.clone())).await?;
                let body = json!({"id": id, "status": "rejected", "error": reason}).to_string();
                Some(answer(&settings, &message, Some(topic), body))
            })
        }
    }
}

fn rejection_text(r: &Rejection) -> String {
    match &r.field {
        Some(field) => format!("{field}: {}", r.error),
        None => r.error.clone(),
    }
}
