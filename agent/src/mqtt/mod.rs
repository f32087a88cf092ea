//! The one MQTT client module: a connection to dockhand's broker in MQTT 3.1.1 or MQTT 5, chosen
//! by `[mqtt] protocol`, behind one small API.
//!
//! rumqttc has a separate client for each protocol version (`rumqttc` and `rumqttc::v5`) with
//! different packet types. Everything above this module — the handheld source, and later every
//! other MQTT user — sees only [`Client`], [`Events`], [`Received`] and [`Inbound`], so protocol
//! differences are decided here once: session persistence (clean session off in 3.1.1, clean
//! start off plus a session expiry in 5), Response Topic and Correlation Data (5 only), reason
//! codes in CONNACK, SUBACK and DISCONNECT (named in logs), TCP_NODELAY, how long to wait before
//! reconnecting and when to say so ([`Reconnect`]), and what a connection error means for a
//! technician (`explain_in`). rumqttc does not restore subscriptions: every user subscribes again
//! on each [`Received::Connected`].

pub(crate) mod config;
mod settings;

pub(crate) use config::{BrokerConfig, MqttConfig, MqttProtocol, ReplyLayout};
pub(crate) use settings::{MqttSettings, offline_payload};

use std::time::Duration;

use bytes::Bytes;
use rumqttc::v5::mqttbytes::v5 as p5;
use rumqttc::{TlsConfiguration, Transport};

/// When to poll a dropped connection again: a full-jitter backoff ([`crate::backoff::Backoff`]),
/// and which failures are worth a log line (the first, then the 2nd, 4th, 8th…: an outage of an
/// hour leaves a dozen lines, not thousands).
#[derive(Debug)]
pub(crate) struct Reconnect {
    backoff: crate::backoff::Backoff,
    failures: u32,
}

impl Reconnect {
    pub(crate) fn new(initial: Duration, max: Duration) -> Self {
        Self { backoff: crate::backoff::Backoff::new(initial, max), failures: 0 }
    }

    /// The connection is up: the next failure starts from the shortest delay again.
    pub(crate) fn connected(&mut self) {
        self.backoff.reset();
        self.failures = 0;
    }

    /// A poll failed: how long to wait before polling again, and the attempt number when this
    /// failure should be logged.
    pub(crate) fn failed(&mut self) -> (Duration, Option<u32>) {
        self.failures = self.failures.saturating_add(1);
        let worth_a_line = self.failures == 1 || self.failures.is_power_of_two();
        (self.backoff.next_delay(), worth_a_line.then_some(self.failures))
    }
}

/// How a connection behaves, beyond the `[mqtt]` settings.
#[derive(Debug, Clone)]
pub(crate) struct Session {
    pub(crate) client_id: String,
    /// Keep the session across disconnects (the broker queues QoS 1 messages while we are away).
    pub(crate) persistent: bool,
    /// PUBACKs only when [`Client::ack`] is called (after the store committed).
    pub(crate) manual_acks: bool,
    /// Unacknowledged QoS 1 publishes of ours in flight (MQTT 5: capped by the broker's Receive
    /// Maximum).
    pub(crate) inflight: u16,
    /// Publish `(topic, payload)` retained at QoS 1 when the connection dies.
    pub(crate) last_will: Option<(String, String)>,
    /// Capacity of the request queue between [`Client`] and [`Events`].
    pub(crate) queue: usize,
    /// Whether [`Events`] reports [`Received::Sent`] and [`Received::Acked`]. Only a publisher
    /// that counts its PUBACKs needs them; for the handheld source they were two more hops
    /// through the event channel per message (about a tenth of its CPU per message at full load).
    pub(crate) delivery_reports: bool,
}

impl Session {
    /// A short-lived client with automatic acks (checks, simulators, device links).
    pub(crate) fn plain(client_id: impl Into<String>) -> Session {
        Session {
            client_id: client_id.into(),
            persistent: false,
            manual_acks: false,
            inflight: 100,
            last_will: None,
            queue: 64,
            delivery_reports: false,
        }
    }
}

/// The sending half of a connection.
#[derive(Clone)]
pub(crate) enum Client {
    V4(rumqttc::AsyncClient),
    V5(rumqttc::v5::AsyncClient),
}

impl std::fmt::Debug for Client {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Client::V4(_) => "Client(MQTT 3.1.1)",
            Client::V5(_) => "Client(MQTT 5)",
        })
    }
}

/// The receiving half: what happened on the connection, in order. Polling again after an error
/// reconnects.
///
/// rumqttc's own poll must not be dropped halfway: cancelled while it connects, it leaves a
/// connection the broker sees die (and publishes the last will for), and a caller that races it
/// against a timer or a stream of live readings in `select!` may never finish connecting. So a
/// task of its own drives rumqttc and hands on what it yields over a channel, which is safe to
/// race; after an error the task waits until [`Events::poll`] is called again, so the caller's
/// backoff still decides when to reconnect. Dropping `Events` ends the task and the connection.
pub(crate) struct Events {
    rx: tokio::sync::mpsc::Receiver<Result<Received, ConnectionFailure>>,
    /// Lets the task reconnect after an error, once the caller polls again.
    resume: std::sync::Arc<tokio::sync::Notify>,
    after_error: bool,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for Events {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// rumqttc's event loop for one connection, polled only by the task [`Events`] starts.
struct Connection {
    inner: EventsInner,
    /// The config section named in error hints.
    hints: String,
}

enum EventsInner {
    V4(Box<rumqttc::EventLoop>),
    V5(Box<rumqttc::v5::EventLoop>),
}

/// Why a connection failed, for a caller that acts on the kind (an MQTT sink pauses on
/// [`FailureKind::Refused`] and [`FailureKind::Tls`], retries on the rest).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct ConnectionFailure {
    pub(crate) kind: FailureKind,
    /// The error with what to check, for a technician.
    pub(crate) text: String,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum FailureKind {
    /// The broker refused who we are (CONNACK: bad user name or password, not authorized, client
    /// id not valid, banned) or the protocol version.
    Refused,
    /// The TLS handshake failed: an unknown CA, a name mismatch, a refused client certificate.
    Tls,
    /// Anything else: no answer, a reset, a timeout, the broker went away.
    Network,
}

impl std::fmt::Display for ConnectionFailure {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.text)
    }
}

/// A PUBLISH from the broker.
#[derive(Debug, Clone)]
pub(crate) struct Inbound {
    pub(crate) topic: String,
    pub(crate) payload: Bytes,
    /// MQTT 5 request/response: where the sender wants the answer.
    pub(crate) response_topic: Option<String>,
    /// MQTT 5: echoed on the answer so the sender can match it.
    pub(crate) correlation: Option<Bytes>,
    packet: Packet,
}

#[derive(Debug, Clone)]
enum Packet {
    V4(rumqttc::Publish),
    V5(p5::Publish),
}

/// What one poll of the connection produced.
#[derive(Debug)]
pub(crate) enum Received {
    Connected {
        session_present: bool,
    },
    /// A SUBACK; `refused` names the reason code of a filter the broker did not grant.
    Subscribed {
        refused: Option<String>,
    },
    Message(Box<Inbound>),
    /// A PUBACK for our publish `pkid`; `refused` names an MQTT 5 reason code of failure.
    Acked {
        pkid: u16,
        refused: Option<String>,
    },
    /// Our QoS 1 publish left with packet id `pkid` (they leave in the order they were queued).
    Sent {
        pkid: u16,
    },
    /// Our DISCONNECT has left (a clean goodbye).
    DisconnectSent,
    /// MQTT 5: the broker closed the connection and said why.
    DisconnectedByBroker {
        reason: String,
    },
    /// Anything else (PINGRESP, our own PUBACKs leaving, …): dropped by the connection task,
    /// never handed to a reader.
    Other,
}

fn qos4(qos: u8) -> rumqttc::QoS {
    if qos == 0 { rumqttc::QoS::AtMostOnce } else { rumqttc::QoS::AtLeastOnce }
}

fn qos5(qos: u8) -> rumqttc::v5::mqttbytes::QoS {
    if qos == 0 { rumqttc::v5::mqttbytes::QoS::AtMostOnce } else { rumqttc::v5::mqttbytes::QoS::AtLeastOnce }
}

/// A broker to connect to, from `[mqtt]` ([`MqttConfig::endpoint`]) or from an MQTT sink.
#[derive(Debug, Clone)]
pub(crate) struct Endpoint<'a> {
    pub(crate) host: &'a str,
    pub(crate) port: u16,
    pub(crate) username: Option<&'a str>,
    pub(crate) password_file: Option<&'a std::path::Path>,
    pub(crate) tls: Option<&'a crate::tls::TlsFiles>,
    /// TLS ALPN protocol names (AWS IoT Core on port 443 wants `x-amzn-mqtt-ca`).
    pub(crate) alpn: &'a [String],
    pub(crate) keep_alive: Duration,
    pub(crate) protocol: MqttProtocol,
    pub(crate) session_expiry: Duration,
    /// The largest packet either side may send.
    pub(crate) max_packet: usize,
    /// Where these settings are written, for the hints in error messages (`mqtt`, `sink[2]`).
    pub(crate) section: String,
}

/// Opens (lazily: the first poll connects) a connection as `[mqtt]` says.
pub(crate) fn connect(settings: &MqttSettings, session: &Session) -> Result<(Client, Events), String> {
    connect_to(&settings.mqtt.endpoint(), session)
}

/// Opens (lazily: the first poll connects) a connection to `m`.
pub(crate) fn connect_to(m: &Endpoint<'_>, session: &Session) -> Result<(Client, Events), String> {
    let credentials = match m.username {
        Some(user) => {
            let password = match m.password_file {
                Some(f) => crate::secrets::read_secret_file(f)?,
                None => String::new(),
            };
            Some((user.to_owned(), password))
        }
        None => None,
    };
    let transport = match m.tls {
        Some(tls) => {
            let mut config = crate::tls::client_config(tls)?;
            if !m.alpn.is_empty() {
                std::sync::Arc::make_mut(&mut config).alpn_protocols =
                    m.alpn.iter().map(|p| p.as_bytes().to_vec()).collect();
            }
            Some(Transport::tls_with_config(TlsConfiguration::Rustls(config)))
        }
        None => None,
    };
    let incoming = m.max_packet;
    let hints = m.section.clone();
    let mut network = rumqttc::NetworkOptions::new();
    // Small packets (acks, replies) must leave at once: Nagle's algorithm would hold them back
    // for milliseconds, and every held PUBACK stalls the broker's in-flight window.
    network.set_tcp_nodelay(true);
    match m.protocol {
        MqttProtocol::V311 => {
            let mut o = rumqttc::MqttOptions::new(&session.client_id, m.host, m.port);
            o.set_keep_alive(m.keep_alive);
            o.set_max_packet_size(incoming, incoming);
            o.set_clean_session(!session.persistent);
            o.set_manual_acks(session.manual_acks);
            o.set_inflight(session.inflight.max(1));
            if let Some((topic, payload)) = &session.last_will {
                o.set_last_will(rumqttc::LastWill::new(topic, payload.clone(), rumqttc::QoS::AtLeastOnce, true));
            }
            if let Some((user, password)) = credentials {
                o.set_credentials(user, password);
            }
            if let Some(t) = transport {
                o.set_transport(t);
            }
            let (client, mut events) = rumqttc::AsyncClient::new(o, session.queue);
            events.set_network_options(network);
            Ok((
                Client::V4(client),
                Events::start(Connection { inner: EventsInner::V4(Box::new(events)), hints }, session.delivery_reports),
            ))
        }
        MqttProtocol::V5 => {
            let mut o = rumqttc::v5::MqttOptions::new(&session.client_id, m.host, m.port);
            o.set_keep_alive(m.keep_alive);
            o.set_max_packet_size(Some(u32::try_from(incoming).unwrap_or(u32::MAX)));
            o.set_clean_start(!session.persistent);
            if session.persistent {
                let expiry = u32::try_from(m.session_expiry.as_secs()).unwrap_or(u32::MAX - 1);
                o.set_session_expiry_interval(Some(expiry));
            }
            o.set_manual_acks(session.manual_acks);
            o.set_outgoing_inflight_upper_limit(session.inflight.max(1));
            if let Some((topic, payload)) = &session.last_will {
                o.set_last_will(p5::LastWill::new(
                    topic,
                    payload.clone().into_bytes(),
                    rumqttc::v5::mqttbytes::QoS::AtLeastOnce,
                    true,
                    None,
                ));
            }
            if let Some((user, password)) = credentials {
                o.set_credentials(user, password);
            }
            if let Some(t) = transport {
                o.set_transport(t);
            }
            o.set_network_options(network);
            let (client, events) = rumqttc::v5::AsyncClient::new(o, session.queue);
            Ok((
                Client::V5(client),
                Events::start(Connection { inner: EventsInner::V5(Box::new(events)), hints }, session.delivery_reports),
            ))
        }
    }
}

impl Events {
    fn start(mut connection: Connection, delivery_reports: bool) -> Events {
        // Room for a burst; when the caller falls behind, the task waits and rumqttc stops
        // reading the socket, so the broker's flow control applies as before.
        let (tx, rx) = tokio::sync::mpsc::channel(1024);
        let resume = std::sync::Arc::new(tokio::sync::Notify::new());
        let wait = resume.clone();
        let task = tokio::spawn(async move {
            loop {
                let polled = connection.next().await;
                match polled {
                    Ok(Received::Other) => continue,
                    Ok(Received::Sent { .. } | Received::Acked { .. }) if !delivery_reports => continue,
                    _ => {}
                }
                let failed = polled.is_err();
                if tx.send(polled).await.is_err() {
                    return;
                }
                if failed {
                    wait.notified().await;
                }
            }
        });
        Events { rx, resume, after_error: false, task }
    }

    /// The next thing that happened on the connection. An error is explained for a technician;
    /// polling again reconnects. Safe to cancel (in `select!`): nothing is lost.
    pub(crate) async fn poll(&mut self) -> Result<Received, String> {
        self.poll_classified().await.map_err(|f| f.text)
    }

    /// Like [`Events::poll`], with the kind of failure.
    pub(crate) async fn poll_classified(&mut self) -> Result<Received, ConnectionFailure> {
        if std::mem::take(&mut self.after_error) {
            self.resume.notify_one();
        }
        let polled = self.rx.recv().await.unwrap_or_else(|| {
            Err(ConnectionFailure { kind: FailureKind::Network, text: "the MQTT connection task ended".into() })
        });
        self.after_error = polled.is_err();
        polled
    }

    /// Waits until our DISCONNECT has left (or `limit` passed): a clean goodbye, so the broker
    /// does not publish the last will.
    pub(crate) async fn drain_until_disconnected(&mut self, limit: Duration) {
        let _ = tokio::time::timeout(limit, async {
            loop {
                match self.rx.recv().await {
                    Some(Ok(Received::DisconnectSent)) | Some(Err(_)) | None => return,
                    Some(Ok(_)) => {}
                }
            }
        })
        .await;
    }
}

impl Connection {
    async fn next(&mut self) -> Result<Received, ConnectionFailure> {
        let hints = &self.hints;
        match &mut self.inner {
            EventsInner::V4(events) => match events.poll().await {
                Ok(rumqttc::Event::Incoming(packet)) => Ok(match packet {
                    rumqttc::Packet::ConnAck(ack) => Received::Connected { session_present: ack.session_present },
                    rumqttc::Packet::SubAck(ack) => Received::Subscribed {
                        refused: ack
                            .return_codes
                            .iter()
                            .find(|c| matches!(c, rumqttc::SubscribeReasonCode::Failure))
                            .map(|c| format!("{c:?}")),
                    },
                    rumqttc::Packet::Publish(p) => Received::Message(Box::new(Inbound {
                        topic: p.topic.clone(),
                        payload: p.payload.clone(),
                        response_topic: None,
                        correlation: None,
                        packet: Packet::V4(p),
                    })),
                    rumqttc::Packet::PubAck(ack) => Received::Acked { pkid: ack.pkid, refused: None },
                    _ => Received::Other,
                }),
                Ok(rumqttc::Event::Outgoing(rumqttc::Outgoing::Publish(pkid))) if pkid != 0 => {
                    Ok(Received::Sent { pkid })
                }
                Ok(rumqttc::Event::Outgoing(_)) => Ok(Received::Other),
                Err(e) => Err(failure(
                    match &e {
                        rumqttc::ConnectionError::ConnectionRefused(_) => FailureKind::Refused,
                        rumqttc::ConnectionError::Tls(_) => FailureKind::Tls,
                        _ => FailureKind::Network,
                    },
                    &e.to_string(),
                    hints,
                )),
            },
            EventsInner::V5(events) => match events.poll().await {
                Ok(rumqttc::v5::Event::Incoming(packet)) => Ok(match packet {
                    p5::Packet::ConnAck(ack) => Received::Connected { session_present: ack.session_present },
                    p5::Packet::SubAck(ack) => Received::Subscribed {
                        refused: ack
                            .return_codes
                            .iter()
                            .find(|c| !matches!(c, p5::SubscribeReasonCode::Success(_)))
                            .map(|c| format!("{c:?}")),
                    },
                    p5::Packet::Publish(p) => {
                        let (response_topic, correlation) = match &p.properties {
                            Some(props) => (props.response_topic.clone(), props.correlation_data.clone()),
                            None => (None, None),
                        };
                        Received::Message(Box::new(Inbound {
                            topic: String::from_utf8_lossy(&p.topic).into_owned(),
                            payload: p.payload.clone(),
                            response_topic,
                            correlation,
                            packet: Packet::V5(p),
                        }))
                    }
                    p5::Packet::PubAck(ack) => Received::Acked {
                        pkid: ack.pkid,
                        refused: (!matches!(
                            ack.reason,
                            p5::PubAckReason::Success | p5::PubAckReason::NoMatchingSubscribers
                        ))
                        .then(|| {
                            let detail = ack.properties.and_then(|p| p.reason_string).map(|r| format!(": {r}"));
                            format!("{:?}{}", ack.reason, detail.unwrap_or_default())
                        }),
                    },
                    p5::Packet::Disconnect(d) => {
                        let detail =
                            d.properties.and_then(|p| p.reason_string).map(|r| format!(": {r}")).unwrap_or_default();
                        Received::DisconnectedByBroker { reason: format!("{:?}{detail}", d.reason_code) }
                    }
                    _ => Received::Other,
                }),
                Ok(rumqttc::v5::Event::Outgoing(rumqttc::Outgoing::Publish(pkid))) if pkid != 0 => {
                    Ok(Received::Sent { pkid })
                }
                Ok(rumqttc::v5::Event::Outgoing(rumqttc::Outgoing::Disconnect)) => Ok(Received::DisconnectSent),
                Ok(rumqttc::v5::Event::Outgoing(_)) => Ok(Received::Other),
                Err(e) => Err(failure(
                    match &e {
                        rumqttc::v5::ConnectionError::ConnectionRefused(_) => FailureKind::Refused,
                        rumqttc::v5::ConnectionError::Tls(_) => FailureKind::Tls,
                        _ => FailureKind::Network,
                    },
                    &e.to_string(),
                    hints,
                )),
            },
        }
    }
}

/// An answer to an [`Inbound`] message, or any other publish.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Outbound {
    pub(crate) topic: String,
    pub(crate) body: String,
    pub(crate) qos: u8,
    pub(crate) retain: bool,
    /// MQTT 5: the request's Correlation Data, echoed.
    pub(crate) correlation: Option<Bytes>,
}

/// A message with MQTT 5 properties (an MQTT 3.1.1 connection sends the message without them).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Message {
    pub(crate) topic: String,
    pub(crate) body: String,
    pub(crate) qos: u8,
    pub(crate) retain: bool,
    /// MQTT 5 user properties, in order.
    pub(crate) user_properties: Vec<(String, String)>,
    /// MQTT 5 Message Expiry Interval, in seconds.
    pub(crate) expiry_secs: Option<u32>,
}

impl Client {
    /// Queues `message` if there is room in the request queue now.
    pub(crate) fn try_send(&self, message: Message) -> Result<(), String> {
        match self {
            Client::V4(c) => {
                c.try_publish(message.topic, qos4(message.qos), message.retain, message.body).map_err(|e| e.to_string())
            }
            Client::V5(c) => {
                let props = p5::PublishProperties {
                    user_properties: message.user_properties,
                    message_expiry_interval: message.expiry_secs,
                    ..Default::default()
                };
                c.try_publish_with_properties(message.topic, qos5(message.qos), message.retain, message.body, props)
                    .map_err(|e| e.to_string())
            }
        }
    }

    /// Queues a publish, waiting for room in the request queue.
    pub(crate) async fn publish(&self, out: Outbound) -> Result<(), String> {
        match self {
            Client::V4(c) => c.publish(out.topic, qos4(out.qos), out.retain, out.body).await.map_err(|e| e.to_string()),
            Client::V5(c) => match out.correlation {
                Some(data) => {
                    let props = p5::PublishProperties { correlation_data: Some(data), ..Default::default() };
                    c.publish_with_properties(out.topic, qos5(out.qos), out.retain, out.body, props).await
                }
                None => c.publish(out.topic, qos5(out.qos), out.retain, out.body).await,
            }
            .map_err(|e| e.to_string()),
        }
    }

    /// Queues a publish if there is room now (live readings, status: the next one replaces it).
    pub(crate) fn try_publish(&self, topic: String, qos: u8, retain: bool, body: String) -> Result<(), String> {
        match self {
            Client::V4(c) => c.try_publish(topic, qos4(qos), retain, body).map_err(|e| e.to_string()),
            Client::V5(c) => c.try_publish(topic, qos5(qos), retain, body).map_err(|e| e.to_string()),
        }
    }

    /// Sends the PUBACK of a message received with manual acks.
    pub(crate) async fn ack(&self, message: &Inbound) -> Result<(), String> {
        match (self, &message.packet) {
            (Client::V4(c), Packet::V4(p)) => c.ack(p).await.map_err(|e| e.to_string()),
            (Client::V5(c), Packet::V5(p)) => c.ack(p).await.map_err(|e| e.to_string()),
            _ => Err("a message acknowledged on a connection of another protocol version".into()),
        }
    }

    pub(crate) fn try_subscribe(&self, filter: String, qos: u8) -> Result<(), String> {
        match self {
            Client::V4(c) => c.try_subscribe(filter, qos4(qos)).map_err(|e| e.to_string()),
            Client::V5(c) => c.try_subscribe(filter, qos5(qos)).map_err(|e| e.to_string()),
        }
    }

    pub(crate) fn try_disconnect(&self) -> Result<(), String> {
        match self {
            Client::V4(c) => c.try_disconnect().map_err(|e| e.to_string()),
            Client::V5(c) => c.try_disconnect().map_err(|e| e.to_string()),
        }
    }
}

fn failure(kind: FailureKind, text: &str, section: &str) -> ConnectionFailure {
    ConnectionFailure { kind, text: explain_in(text, section) }
}

/// A connection error's text, with what to check for the common cases; `section` is where the
/// settings are written (`mqtt`, `sink[2]`).
fn explain_in(text: &str, section: &str) -> String {
    if let Some(hint) = crate::tls::explain(text) {
        return format!("{text}; {hint} ({section}.tls.ca_file)");
    }
    let hint = if text.contains("BadUserNamePassword") || text.contains("NotAuthorized") {
        format!("; the broker refused the credentials: check {section}.username and {section}.password_file")
    } else if text.contains("UnsupportedProtocolVersion") || text.contains("RefusedProtocolVersion") {
        format!(
            "; the broker does not speak this MQTT version: set {section}.protocol = \"3.1.1\" (or upgrade the broker)"
        )
    } else if text.contains("ClientIdentifierNotValid") || text.contains("BadClientId") {
        format!("; the broker refused the client id: set {section}.client_id to one it accepts")
    } else if text.contains("refused") {
        format!("; nothing answers at {section}.host:{section}.port — is the broker running?")
    } else {
        String::new()
    };
    format!("{text}{hint}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn connection_errors_say_what_to_check() {
        assert!(explain_in("I/O: Connection refused (os error 111)", "mqtt").contains("is the broker running?"));
        assert!(
            explain_in("Connection refused, return code: `BadUserNamePassword`", "mqtt").contains("mqtt.password_file")
        );
        assert!(
            explain_in("Connection refused, return code: `UnsupportedProtocolVersion`", "mqtt")
                .contains("mqtt.protocol")
        );
        assert_eq!(explain_in("Timeout", "mqtt"), "Timeout");
        assert!(
            explain_in("Connection refused, return code: `NotAuthorized`", "sink[1]").contains("sink[1].password_file")
        );
    }
}
