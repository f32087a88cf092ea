//! The MQTT source: one connection ([`crate::mqtt`]) with a persistent session (a stable client
//! id), subscribed at QoS 1 to `<prefix>/handheld/#` (and to the print-job topics when the
//! gateway has printers). Its loop reconnects, resubscribes, and forwards live readings; each
//! PUBLISH goes to its job:
//!
//! - a handheld message is classified ([`super::message::classify`]), stored (or dead-lettered),
//!   answered (on `<prefix>/reply/<device>/ack` or `…/rejected`, or — MQTT 5 — on the message's
//!   Response Topic with its Correlation Data), and only then acknowledged to the broker;
//! - a print job is [`super::print_jobs`]'s;
//! - the retained gateway status is [`super::gateway_status`]'s.
//!
//! Messages are committed and acknowledged in the order they arrived ([`super::ordering`]), so
//! each handheld's events keep its publish order in the store and at every sink. When the store
//! is full, the message is held unacknowledged and retried; the broker keeps it and, once its
//! in-flight window is used up, stops sending more — back-pressure instead of loss.

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use serde_json::json;
use tokio::sync::{mpsc, oneshot};
use tracing::{error, info, warn};

use super::gateway_status::GatewayStatus;
use super::message::{Incoming, RejectedReply, Rejection, classify};
use super::ordering::{PendingAck, Turn, Written, send_acks_in_order};
use super::print_jobs::ingest_print_job;
use crate::event::{Event as DhEvent, Source, Transport as DhTransport, new_event_id};
use crate::mqtt::{Inbound, Outbound, Received, Reconnect, Session};
use crate::mqtt::{MqttSettings, ReplyLayout, offline_payload};
use crate::shutdown::Shutdown;
use crate::store::{Appended, NewDeadLetter, Store};
use crate::task::TaskError;
use crate::timestamp::Timestamp;

const REPLY_WINDOW: u16 = 4096;

pub(crate) use crate::health::MqttHealth;

pub(crate) struct MqttSource {
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

impl MqttSource {
    pub(crate) fn new(settings: MqttSettings, store: Store, live: crate::devices::live::LiveReadings) -> Self {
        Self { settings: Arc::new(settings), store, health: Arc::default(), live }
    }

    pub(crate) fn health(&self) -> Arc<MqttHealth> {
        self.health.clone()
    }

    pub(crate) async fn run(self, mut shutdown: Shutdown) -> Result<(), TaskError> {
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
            delivery_reports: false,
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
        let mut reconnect = Reconnect::new(Duration::from_millis(500), Duration::from_secs(30));
        let mut status_tick = tokio::time::interval(self.settings.mqtt.status_interval.0);
        let status = GatewayStatus::new(&self.settings, &self.store);
        let mut heartbeat_tick = tokio::time::interval(Duration::from_secs(5));
        let mut subacks: u32 = 0;
        let mut readings = self.live.listen();
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
                        subacks = 0;
                        reconnect.connected();
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
                        status.publish(&client).await;
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
                        let (delay, attempt) = reconnect.failed();
                        if let Some(attempt) = attempt {
                            warn!(%error, attempt, retry_in_ms = delay.as_millis() as u64, "MQTT connection failed; reconnecting.");
                        }
                        if !shutdown.sleep(delay).await {
                            break;
                        }
                    }
                },
                r = readings.next() => {
                    // QoS 0 and never waiting: a reading that cannot go now is replaced by the next.
                    let _ = client.try_publish(format!("{live_prefix}/{}", r.leaf), 0, false, r.body);
                }
                _ = status_tick.tick() => status.publish(&client).await,
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
}

/// Where the answer to `message` goes: its Response Topic with its Correlation Data (MQTT 5
/// request/response), else `fallback` (the contract's reply topic), else nowhere.
pub(super) fn answer(
    settings: &MqttSettings,
    message: &Inbound,
    fallback: Option<String>,
    body: String,
) -> Option<Outbound> {
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
    let max = settings.mqtt.max_payload_bytes.as_usize();
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
            let queued = store.append_one(event.clone());
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
            let queued = store.dead_letter(entry.clone());
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

fn rejection_text(r: &Rejection) -> String {
    match &r.field {
        Some(field) => format!("{field}: {}", r.error),
        None => r.error.clone(),
    }
}
