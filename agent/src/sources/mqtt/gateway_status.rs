//! The retained gateway status on `…/gateway/<id>/status`: online with each sink's queue, a
//! rendering of [`crate::status`]'s read model, refreshed every `[mqtt] status_interval` and on
//! each connection. The last will and a clean stop leave `offline` there.

use tracing::{debug, warn};

use crate::mqtt::{Client, MqttSettings};
use crate::store::{Store, StoreReader};

/// Publishes the status from one read connection of its own.
pub(super) struct GatewayStatus {
    reader: Option<StoreReader>,
    topic: String,
    gateway: String,
}

impl GatewayStatus {
    pub(crate) fn new(settings: &MqttSettings, store: &Store) -> Self {
        let reader = match store.reader() {
            Ok(r) => Some(r),
            Err(error) => {
                warn!(%error, "Cannot open the store for reading; the gateway status will not be published.");
                None
            }
        };
        Self { reader, topic: settings.status_topic(), gateway: settings.gateway.clone() }
    }

    /// Queues the current status (retained, QoS 1); skipped when the store cannot be read or the
    /// client's queue is full (the next refresh brings it).
    pub(crate) async fn publish(&self, client: &Client) {
        let Some(reader) = &self.reader else { return };
        let gateway = self.gateway.clone();
        let payload = match reader.run(move |r| crate::status::gateway_status_payload(r, &gateway)).await {
            Ok(p) => p,
            Err(e) => {
                debug!(error = %e, "Cannot read the store for the gateway status.");
                return;
            }
        };
        if let Err(e) = client.try_publish(self.topic.clone(), 1, true, payload) {
            debug!(error = %e, "Cannot queue the gateway status.");
        }
    }
}
