//! Serial scanners, scales and printers (`[[device]]`): one task per device, started, stopped and restarted
//! by the supervisor like any other (so a reload touches only the devices whose settings changed).
//!
//! - [`config`]: the `[[device]]` section and its checks.
//! - [`processor`]: device output → events, device state, live readings (shared by both kinds of
//!   attachment below).
//! - [`live`]: the live-readings hub the MQTT source publishes from.
//! - [`handoff`]: how a device hands its scans and readings to the station it works for.
//! - [`printer`], [`bridged_printer`]: a printer's task (status polling, each job sent once when
//!   the printer is ready), local or behind a `firmware-bridge`; the templates are
//!   [`crate::printing`]'s.
//! - This module: the task itself — a local port (serial or TCP) read by a firmware-bridge
//!   [`DeviceLink`] thread, or a device on another host behind a `firmware-bridge` process,
//!   reached through the MQTT broker (see [`firmware_bridge::remote`] for its topics).
//!
//! A local scan is stored when it has been read off the port; a scan lost between the read and
//! the commit (the process killed in that instant) was never acknowledged to anyone. A bridged
//! scan is acknowledged to the broker only after its commit, with the bridge's id, so it is
//! stored exactly once whatever is killed when. For a device that works for a station, "its
//! commit" is the commit of the scan into the station's durable input queue
//! ([`crate::store::station_inputs`]).

pub(crate) mod bridged_printer;
pub(crate) mod config;
pub(crate) mod handoff;
pub(crate) mod live;
pub(crate) mod printer;
pub(crate) mod processor;

use std::time::Duration;

use firmware_bridge::device::DeviceOutput;
use firmware_bridge::link::{DeviceLink, LinkEvent, Transport as LinkTransport};
use firmware_bridge::remote::{self, ReadingMessage, RemoteState, StateMessage};
use tokio::sync::mpsc;
use tracing::{error, info, warn};

pub(crate) use config::DeviceConfig;
use live::LiveReadings;
use processor::{DeviceProcessor, StationLink};

use crate::devices::handoff::Handoff;
use crate::event::{DeviceState, Transport};
use crate::mqtt::{MqttSettings, Received};
use crate::shutdown::Shutdown;
use crate::store::{Store, StoreError};
use crate::task::TaskError;
use crate::timestamp::Timestamp;
use crate::units::ConfigIssue;

/// Everything one device task needs.
#[derive(Debug, Clone)]
pub(crate) struct DeviceTask {
    pub(crate) config: DeviceConfig,
    pub(crate) gateway: String,
    pub(crate) site: String,
    /// The broker, for devices behind a firmware-bridge.
    pub(crate) mqtt: Option<MqttSettings>,
    /// The station this device works for, if any.
    pub(crate) station: Option<String>,
    /// Label templates (printers define the stored ones).
    pub(crate) labels: Vec<crate::printing::LabelConfig>,
}

impl DeviceTask {
    pub(crate) async fn run(
        self,
        store: Store,
        live: LiveReadings,
        handoff: Handoff,
        mut shutdown: Shutdown,
    ) -> Result<(), TaskError> {
        let link = self.station.clone().map(|station| StationLink { station, handoff });
        let transport = match self.config.transport() {
            Ok(t) => t,
            Err(ConfigIssue { key, message: msg }) => {
                error!(device = %self.config.name, key, %msg, "The device cannot start: fix its [[device]] entry.");
                shutdown.wait().await;
                return Ok(());
            }
        };
        match transport {
            Some(link) if self.config.kind == firmware_bridge::spec::DeviceKind::Printer => {
                let task = crate::devices::printer::PrinterTask {
                    config: self.config,
                    labels: self.labels,
                    gateway: self.gateway,
                    site: self.site,
                };
                task.run(link, store, live, shutdown).await
            }
            Some(port) => self.run_local(port, store, live, link, shutdown).await,
            None if self.config.kind == firmware_bridge::spec::DeviceKind::Printer => {
                let Some(settings) = self.mqtt.clone() else {
                    error!(printer = %self.config.name, "The printer is behind a firmware-bridge but the config has no [mqtt] section.");
                    shutdown.wait().await;
                    return Ok(());
                };
                let task = crate::devices::bridged_printer::BridgedPrinter {
                    config: self.config,
                    gateway: self.gateway,
                    site: self.site,
                    settings,
                };
                task.run(store, live, shutdown).await
            }
            None => self.run_bridged(store, live, link, shutdown).await,
        }
    }

    async fn run_local(
        self,
        transport: LinkTransport,
        store: Store,
        live: LiveReadings,
        station: Option<StationLink>,
        mut shutdown: Shutdown,
    ) -> Result<(), TaskError> {
        let name = self.config.name.clone();
        let kind = if matches!(transport, LinkTransport::Tcp(_)) { Transport::Tcp } else { Transport::Serial };
        let mut processor = DeviceProcessor::new(&self.config, kind, &self.gateway, &self.site, store, live, station);
        let spec = self.config.spec().map_err(|issue| TaskError::Setup(format!("device {name}: {issue}")))?;
        let decoder = spec.decoder().map_err(|m| TaskError::Setup(format!("device {name}: {m}")))?;
        // Bounded: while the store cannot keep up, the device thread waits and the port's own
        // buffer holds the bytes.
        let (tx, mut rx) = mpsc::channel::<LinkEvent>(256);
        info!(device = %name, port = %transport.describe(), "Device task started.");
        let link = DeviceLink::spawn(&name, transport, decoder, spec.link_options(), move |event| {
            let _ = tx.blocking_send(event);
        })
        .map_err(|e| TaskError::Setup(format!("cannot start the thread for device {name}: {e}")))?;
        let mut heartbeat = tokio::time::interval(Duration::from_secs(5));
        let result = loop {
            tokio::select! {
                event = rx.recv() => {
                    let Some(event) = event else { break Ok(()) };
                    let handled = match event {
                        LinkEvent::Connected { detail } => processor.state(DeviceState::Connected, Some(detail)).await,
                        LinkEvent::Disconnected { reason } => processor.state(DeviceState::Disconnected, Some(reason)).await,
                        LinkEvent::Unresponsive { reason } => processor.state(DeviceState::Error, Some(reason)).await,
                        LinkEvent::Output(output) => processor.output(output, None, None).await,
                        LinkEvent::Written { .. } | LinkEvent::NotWritten { .. } => Ok(()),
                    };
                    if let Err(e) = handled {
                        break Err(e);
                    }
                }
                _ = heartbeat.tick() => shutdown.beat(),
                _ = shutdown.wait() => break Ok(()),
            }
        };
        // The thread may be waiting to hand over an event: closing the channel releases it.
        drop(rx);
        let _ = tokio::task::spawn_blocking(move || link.stop()).await;
        info!(device = %name, "Device task stopped.");
        Ok(result?)
    }

    async fn run_bridged(
        self,
        store: Store,
        live: LiveReadings,
        station: Option<StationLink>,
        mut shutdown: Shutdown,
    ) -> Result<(), TaskError> {
        let name = self.config.name.clone();
        let mut processor =
            DeviceProcessor::new(&self.config, Transport::Mqtt, &self.gateway, &self.site, store, live, station);
        let Some(settings) = self.mqtt.clone() else {
            error!(device = %name, "The device is attached through a firmware-bridge (transport = \"mqtt\") but the config has no [mqtt] section.");
            shutdown.wait().await;
            return Ok(());
        };
        // Its own persistent session: a scan the bridge published while dockhand was restarting
        // waits at the broker. Manual acks: a scan is acknowledged only once it is stored.
        let session = crate::mqtt::Session {
            persistent: true,
            manual_acks: true,
            ..crate::mqtt::Session::plain(format!("{}-device-{name}", settings.mqtt.client_id(&settings.gateway)))
        };
        let (client, mut events) = match crate::mqtt::connect(&settings, &session) {
            Ok(c) => c,
            Err(e) => {
                error!(device = %name, %e, "The device's MQTT connection cannot start: fix [mqtt] in the config.");
                shutdown.wait().await;
                return Ok(());
            }
        };
        let filter = remote::topic(&settings.prefix, &name, "+");
        let mut reconnect = crate::mqtt::Reconnect::new(Duration::from_millis(250), Duration::from_secs(10));
        let mut heartbeat = tokio::time::interval(Duration::from_secs(5));
        info!(device = %name, %filter, "Device task started (through a firmware-bridge).");
        loop {
            tokio::select! {
                polled = events.poll() => match polled {
                    Ok(Received::Connected { .. }) => {
                        reconnect.connected();
                        if let Err(e) = client.try_subscribe(filter.clone(), 1) {
                            warn!(device = %name, error = %e, "Cannot queue the bridge subscription.");
                        }
                    }
                    Ok(Received::Subscribed { refused: Some(reason) }) => {
                        error!(device = %name, %filter, %reason, "The broker refused the bridge subscription: check the broker's ACL for this client.");
                    }
                    Ok(Received::Message(message)) => {
                        handle_bridge_message(&mut processor, &name, &message.topic, &message.payload).await?;
                        if let Err(e) = client.ack(&message).await {
                            warn!(device = %name, error = %e, "Cannot acknowledge a bridge message; the broker will send it again.");
                        }
                    }
                    Ok(_) => {}
                    Err(e) => {
                        let reason = format!("cannot reach the MQTT broker the firmware-bridge publishes to: {e}");
                        processor.state(DeviceState::Disconnected, Some(reason)).await?;
                        let (delay, _) = reconnect.failed();
                        if !shutdown.sleep(delay).await {
                            break;
                        }
                    }
                },
                _ = heartbeat.tick() => shutdown.beat(),
                _ = shutdown.wait() => break,
            }
        }
        let _ = client.try_disconnect();
        info!(device = %name, "Device task stopped.");
        Ok(())
    }
}

/// One message from a firmware-bridge. Malformed ones are logged and acknowledged (the bridge is
/// dockhand's own software; repeating a broken message would not mend it).
async fn handle_bridge_message(
    processor: &mut DeviceProcessor,
    device: &str,
    topic: &str,
    payload: &[u8],
) -> Result<(), StoreError> {
    let leaf = topic.rsplit('/').next().unwrap_or("");
    let body: serde_json::Value = match serde_json::from_slice(payload) {
        Ok(v) => v,
        Err(e) => {
            warn!(%device, %topic, error = %e, "A firmware-bridge message is not JSON; ignored.");
            return Ok(());
        }
    };
    match leaf {
        remote::STATE => match serde_json::from_value::<StateMessage>(body) {
            Ok(m) => {
                let (state, detail) = match m.state {
                    RemoteState::Connected => (DeviceState::Connected, m.detail),
                    RemoteState::Disconnected => (DeviceState::Disconnected, m.detail),
                    RemoteState::Unresponsive | RemoteState::Error => (DeviceState::Error, m.detail),
                    RemoteState::Offline => (
                        DeviceState::Disconnected,
                        Some("its firmware-bridge is offline (process stopped, host down or network cut)".to_owned()),
                    ),
                };
                processor.state(state, detail).await?;
            }
            Err(e) => warn!(%device, error = %e, "A firmware-bridge state message is malformed; ignored."),
        },
        remote::SCAN => {
            let id = body.get("id").and_then(|v| v.as_str()).and_then(|s| s.parse::<uuid::Uuid>().ok());
            let at = body.get("at_ms").and_then(serde_json::Value::as_i64).map(Timestamp::from_millis);
            let problem = body.get("problem").and_then(|v| v.as_str()).map(str::to_owned);
            match (id, body.get("scan")) {
                (Some(id), Some(scan)) => {
                    processor.scan(scan.clone(), problem, Some(id), at.unwrap_or_else(Timestamp::now)).await?
                }
                _ => warn!(%device, "A firmware-bridge scan message has no id or no scan; ignored."),
            }
        }
        remote::READING => match serde_json::from_value::<ReadingMessage>(body) {
            Ok(m) => {
                let at = Timestamp::from_millis(i64::try_from(m.at_ms).unwrap_or(i64::MAX));
                processor.output(DeviceOutput::Reading(m.reading), None, Some(at)).await?;
            }
            Err(e) => warn!(%device, error = %e, "A firmware-bridge reading is malformed; ignored."),
        },
        _ => {}
    }
    Ok(())
}
