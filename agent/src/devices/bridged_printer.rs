//! A printer behind a `firmware-bridge` on another host ([`firmware_bridge::bridge_printer`]):
//! jobs go to `<prefix>/bridge/<printer>/job` as `{"id", "zpl"}` (QoS 1, one at a time, only
//! while the bridge reports the printer `connected`/`ready`), and the bridge's answers on
//! `…/printed` settle them. The same once-only rule as a local printer, split across the two
//! hosts: the job is committed `sending` before it is published, the bridge journals the id
//! before printing and never prints an id twice, so a job still `sending` when dockhand starts
//! is simply published again — the bridge either prints it (it never got it) or answers what
//! became of it.

use std::time::Duration;

use tracing::{info, warn};

use crate::devices::DeviceConfig;
use crate::devices::live::LiveReadings;
use crate::devices::processor::DeviceProcessor;
use crate::event::{DeviceState, Transport};
use crate::mqtt::{Client, MqttSettings, Received};
use crate::shutdown::Shutdown;
use crate::store::Store;
use crate::store::print_jobs::PrintJobChange;
use crate::task::TaskError;

#[derive(Debug)]
pub(crate) struct BridgedPrinter {
    pub(crate) config: DeviceConfig,
    pub(crate) gateway: String,
    pub(crate) site: String,
    pub(crate) settings: MqttSettings,
}

impl BridgedPrinter {
    pub(crate) async fn run(self, store: Store, live: LiveReadings, mut shutdown: Shutdown) -> Result<(), TaskError> {
        let name = self.config.name.clone();
        let mut processor =
            DeviceProcessor::new(&self.config, Transport::Mqtt, &self.gateway, &self.site, store.clone(), live, None);
        // A persistent session: a printed answer the bridge sent while dockhand was restarting
        // waits at the broker.
        let session = crate::mqtt::Session {
            persistent: true,
            ..crate::mqtt::Session::plain(format!(
                "{}-printer-{name}",
                self.settings.mqtt.client_id(&self.settings.gateway)
            ))
        };
        let (client, mut events) = match crate::mqtt::connect(&self.settings, &session) {
            Ok(c) => c,
            Err(e) => {
                tracing::error!(printer = %name, %e, "The printer's MQTT connection cannot start: fix [mqtt].");
                shutdown.wait().await;
                return Ok(());
            }
        };
        let mut reconnect = crate::mqtt::Reconnect::new(Duration::from_millis(250), Duration::from_secs(10));
        let prefix = self.settings.prefix.clone();
        let state_topic = firmware_bridge::remote::topic(&prefix, &name, firmware_bridge::remote::STATE);
        let printed_topic = firmware_bridge::remote::topic(&prefix, &name, firmware_bridge::bridge_printer::PRINTED);
        let job_topic = firmware_bridge::remote::topic(&prefix, &name, firmware_bridge::bridge_printer::JOB);
        let reader = store.reader()?;
        // Jobs left `sending` by a previous run: published again (the bridge dedupes by id).
        let printer = name.clone();
        let mut in_flight: Option<String> = None;
        let resend: Vec<(String, Vec<u8>)> =
            reader.run(move |r| r.print_jobs_in(&printer, crate::store::print_jobs::PrintJobState::Sending)).await?;
        let mut ready = false;
        let mut queue_tick = tokio::time::interval(Duration::from_millis(200));
        let mut heartbeat = tokio::time::interval(Duration::from_secs(5));
        let mut resend = resend.into_iter();
        info!(printer = %name, "Printer task started (through a firmware-bridge).");
        loop {
            tokio::select! {
                polled = events.poll() => match polled {
                    Ok(Received::Connected { .. }) => {
                        reconnect.connected();
                        for topic in [&state_topic, &printed_topic] {
                            if let Err(e) = client.try_subscribe(topic.clone(), 1) {
                                warn!(printer = %name, error = %e, "Cannot queue the bridge subscription.");
                            }
                        }
                    }
                    Ok(Received::Subscribed { refused: Some(reason) }) => {
                        tracing::error!(printer = %name, %reason, "The broker refused the bridge subscription: check the broker's ACL for this client.");
                    }
                    Ok(Received::Message(p)) => {
                        let body: serde_json::Value = serde_json::from_slice(&p.payload).unwrap_or_default();
                        if p.topic == state_topic {
                            let detail = body["detail"].as_str().map(str::to_owned);
                            let (state, ok) = match body["state"].as_str() {
                                Some("connected") => (DeviceState::Connected, detail.as_deref() == Some("ready")),
                                Some("error" | "unresponsive") => (DeviceState::Error, false),
                                Some("offline") => (DeviceState::Disconnected, false),
                                _ => (DeviceState::Disconnected, false),
                            };
                            ready = ok;
                            let detail = if body["state"] == "offline" {
                                Some("its firmware-bridge is offline (process stopped, host down or network cut)".to_owned())
                            } else {
                                detail
                            };
                            processor.state(state, detail).await?;
                        } else if p.topic == printed_topic {
                            let id = body["id"].as_str().unwrap_or("").to_owned();
                            match body["status"].as_str() {
                                Some("printed") => {
                                    info!(printer = %name, job = %id, "The bridge printed the label.");
                                    store.print_job(PrintJobChange::Printed { id: id.clone() }).await?;
                                }
                                _ => {
                                    let error = body["error"].as_str().unwrap_or("the bridge could not tell").to_owned();
                                    warn!(printer = %name, job = %id, %error, "The bridge is not sure the label printed; not sent again on its own.");
                                    store.print_job(PrintJobChange::Uncertain { id: id.clone(), error }).await?;
                                }
                            }
                            if in_flight.as_deref() == Some(id.as_str()) {
                                in_flight = None;
                            }
                        }
                    }
                    Ok(_) => {}
                    Err(e) => {
                        ready = false;
                        processor.state(DeviceState::Disconnected, Some(format!("cannot reach the MQTT broker of its firmware-bridge: {e}"))).await?;
                        let (delay, _) = reconnect.failed();
                        if !shutdown.sleep(delay).await {
                            break;
                        }
                    }
                },
                _ = queue_tick.tick() => {
                    if let Some((id, body)) = resend.next() {
                        publish_job(&client, &job_topic, &id, &body);
                        in_flight = Some(id);
                        continue;
                    }
                    if !ready || in_flight.is_some() {
                        continue;
                    }
                    let printer = name.clone();
                    if let Some((id, body)) = reader.run(move |r| r.next_print_job(&printer)).await? {
                        store.print_job(PrintJobChange::Sending { id: id.clone() }).await?;
                        publish_job(&client, &job_topic, &id, &body);
                        in_flight = Some(id);
                    }
                }
                _ = heartbeat.tick() => shutdown.beat(),
                _ = shutdown.wait() => break,
            }
        }
        let _ = client.try_disconnect();
        info!(printer = %name, "Printer task stopped.");
        Ok(())
    }
}

fn publish_job(client: &Client, topic: &str, id: &str, body: &[u8]) {
    let job = serde_json::json!({"id": id, "zpl": String::from_utf8_lossy(body)}).to_string();
    if let Err(e) = client.try_publish(topic.to_owned(), 1, false, job) {
        warn!(job = %id, error = %e, "Cannot queue a print job for the bridge; it is sent again at the next start.");
    }
}
