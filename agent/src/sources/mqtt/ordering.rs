//! Arrival order, end to end: every message's first store write is queued in the order the
//! broker delivered it ([`Turn`]), and its reply and PUBACK leave in that order too
//! ([`send_acks_in_order`], MQTT 3.1.1 §4.6), only after the store committed it.

use std::sync::Arc;

use tokio::sync::{mpsc, oneshot};
use tracing::debug;

use crate::mqtt::{Client, Inbound, Outbound};
use crate::store::{StoreError, until_stored};

/// What waits while the store cannot take a message.
const HELD: &str = "the MQTT message is held unacknowledged; the broker keeps it";

/// The answer to a handheld.
pub(super) type Reply = Outbound;

/// One message waiting for its outcome: the reply to publish (if any), then its PUBACK. A dropped
/// sender means "not stored": no ack.
pub(super) type PendingAck = (Arc<Inbound>, oneshot::Receiver<Option<Reply>>);
/// A message's store write, already queued: yields its reply (if any) once durable, or `None`
/// when the store closed first.
pub(super) type Written = std::pin::Pin<Box<dyn Future<Output = Option<Option<Reply>>> + Send>>;

/// Publishes each message's reply, then its PUBACK, in arrival order. One task sends everything so
/// that rumqttc's request queue never has more than one waiting sender (each waiting sender costs
/// time linear in their number when the queue is full).
pub(super) async fn send_acks_in_order(client: Client, mut pending: mpsc::UnboundedReceiver<PendingAck>) {
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
pub(super) struct Turn {
    pub(super) previous: Option<oneshot::Receiver<()>>,
    pub(super) next: oneshot::Sender<()>,
}

impl Turn {
    /// Awaits the write queued in arrival order; if the store refused it, waits for the previous
    /// message's turn and retries until it is written. `None`: the store closed.
    pub(super) async fn write<T, F, Fut>(
        self,
        queued: impl Future<Output = Result<T, StoreError>>,
        retry: F,
    ) -> Option<T>
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
