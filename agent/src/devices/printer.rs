//! One printer: its status asked every `status_interval` (ZPL `~HS`, …), its jobs sent one at a
//! time, oldest first, only while it answers and reports nothing wrong (paper out, head open,
//! paused…), and each outcome committed: `sending` before the first byte goes out, `printed`
//! once every byte was written. Nothing is sent twice on its own: see
//! [`crate::store::print_jobs`] for what happens to a job caught in `sending` by a crash.

use std::time::Duration;

use firmware_bridge::device::DeviceOutput;
use firmware_bridge::link::{DeviceLink, LinkEvent, Transport as LinkTransport};
use firmware_bridge::printer::PrinterStatus;
use tokio::sync::mpsc;
use tracing::{info, warn};

use crate::devices::DeviceConfig;
use crate::devices::live::LiveReadings;
use crate::devices::processor::DeviceProcessor;
use crate::event::{DeviceState, Transport};
use crate::shutdown::Shutdown;
use crate::store::print_jobs::{PrintJobAnswer, PrintJobChange};
use crate::store::{Store, StoreError};
use crate::task::TaskError;

/// How often the queue is looked at while the printer is ready and idle (jobs can also arrive
/// from `dockhand print reprint`, another process).
const QUEUE_POLL: Duration = Duration::from_millis(200);

#[derive(Debug)]
pub(crate) struct PrinterTask {
    pub(crate) config: DeviceConfig,
    /// Labels kept in the printer as stored formats are defined at each connection.
    pub(crate) labels: Vec<crate::printing::LabelConfig>,
    pub(crate) gateway: String,
    pub(crate) site: String,
}

impl PrinterTask {
    pub(crate) async fn run(
        self,
        transport: LinkTransport,
        store: Store,
        live: LiveReadings,
        mut shutdown: Shutdown,
    ) -> Result<(), TaskError> {
        let name = self.config.name.clone();
        let kind = if matches!(transport, LinkTransport::Tcp(_)) { Transport::Tcp } else { Transport::Serial };
        let mut processor =
            DeviceProcessor::new(&self.config, kind, &self.gateway, &self.site, store.clone(), live, None);
        let spec = self.config.spec().map_err(|issue| TaskError::Setup(format!("printer {name}: {issue}")))?;
        let decoder = spec.decoder().map_err(|m| TaskError::Setup(format!("printer {name}: {m}")))?;
        if let PrintJobAnswer::Recovered(ids) =
            store.print_job(PrintJobChange::RecoverInterrupted { printer: name.clone() }).await?
        {
            for id in ids {
                warn!(printer = %name, job = %id, "A print job was being sent when dockhand stopped; it is not sent again on its own (see `dockhand status`).");
            }
        }
        let reader = store.reader()?;
        let (tx, mut rx) = mpsc::channel::<LinkEvent>(64);
        info!(printer = %name, port = %transport.describe(), "Printer task started.");
        let link = DeviceLink::spawn(&name, transport, decoder, spec.link_options(), move |event| {
            let _ = tx.blocking_send(event);
        })
        .map_err(|e| TaskError::Setup(format!("cannot start the thread for printer {name}: {e}")))?;
        let mut connected = false;
        let mut status: Option<PrinterStatus> = None;
        let mut in_flight: Option<(String, u64)> = None;
        let mut next_tag: u64 = 1;
        let mut queue_tick = tokio::time::interval(QUEUE_POLL);
        let mut heartbeat = tokio::time::interval(Duration::from_secs(5));
        let result: Result<(), StoreError> = loop {
            tokio::select! {
                event = rx.recv() => {
                    let Some(event) = event else { break Ok(()) };
                    let step = match event {
                        LinkEvent::Connected { detail } => {
                            connected = true;
                            // The printer may have lost its RAM (power cycle): define the stored
                            // formats again before any job (commands are written in order).
                            for definition in self.labels.iter().filter_map(crate::printing::LabelConfig::definition) {
                                link.send(definition);
                            }
                            // "Connected" waits for the first status answer; the port alone says little.
                            tracing::debug!(printer = %name, %detail, "Printer port open.");
                            Ok(())
                        }
                        LinkEvent::Disconnected { reason } => {
                            connected = false;
                            status = None;
                            processor.state(DeviceState::Disconnected, Some(reason)).await
                        }
                        LinkEvent::Unresponsive { reason } => {
                            status = Some(PrinterStatus::no_response());
                            processor.state(DeviceState::Error, Some(format!("offline: {reason}"))).await
                        }
                        LinkEvent::Output(DeviceOutput::Printer(s)) => {
                            let step = if s.is_ready() {
                                processor.state(DeviceState::Connected, Some("ready".into())).await
                            } else {
                                processor.state(DeviceState::Error, Some(PrinterStatus::problems_text(&s))).await
                            };
                            status = Some(s);
                            step
                        }
                        LinkEvent::Written { tag } => match in_flight.take() {
                            Some((id, t)) if t == tag => {
                                info!(printer = %name, job = %id, "Label sent to the printer.");
                                store.print_job(PrintJobChange::Printed { id }).await.map(drop)
                            }
                            other => {
                                in_flight = other;
                                Ok(())
                            }
                        },
                        LinkEvent::NotWritten { tag, error } => match in_flight.take() {
                            Some((id, t)) if t == tag => {
                                warn!(printer = %name, job = %id, %error, "Sending a label failed part-way; it may or may not print. Not sent again on its own.");
                                store.print_job(PrintJobChange::Uncertain { id, error }).await.map(drop)
                            }
                            other => {
                                in_flight = other;
                                Ok(())
                            }
                        },
                        LinkEvent::Output(_) => Ok(()),
                    };
                    if let Err(e) = step {
                        break Err(e);
                    }
                }
                _ = queue_tick.tick() => {
                    let ready = connected && status.as_ref().is_some_and(PrinterStatus::is_ready);
                    if !ready || in_flight.is_some() {
                        continue;
                    }
                    let printer = name.clone();
                    let next = match reader.run(move |r| r.next_print_job(&printer)).await {
                        Ok(next) => next,
                        Err(e) => break Err(e),
                    };
                    if let Some((id, body)) = next {
                        // Committed before the first byte leaves: a crash from here on never resends it.
                        if let Err(e) = store.print_job(PrintJobChange::Sending { id: id.clone() }).await {
                            break Err(e);
                        }
                        let tag = next_tag;
                        next_tag += 1;
                        link.send_tagged(body, tag);
                        in_flight = Some((id, tag));
                    }
                }
                _ = heartbeat.tick() => shutdown.beat(),
                _ = shutdown.wait() => break Ok(()),
            }
        };
        drop(rx);
        let _ = tokio::task::spawn_blocking(move || link.stop()).await;
        info!(printer = %name, "Printer task stopped.");
        Ok(result?)
    }
}
