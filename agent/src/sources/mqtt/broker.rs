//! The embedded broker (`[broker]`): rumqttd on its own thread, for small sites and the demo.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use rumqttd::{Broker, Config, ConnectionSettings, RouterConfig, ServerSettings};
use tracing::{error, info};

use crate::mqtt::BrokerConfig;

/// Starts the broker and waits until it accepts connections.
pub(crate) fn start(config: &BrokerConfig) -> Result<(), String> {
    let listen = config.listen;
    // Probing by binding, not connecting: a probe connection would be logged by the broker as a
    // failed client.
    if let Err(e) = std::net::TcpListener::bind(listen) {
        return Err(format!("cannot listen on {listen} ({e}): stop what uses it or change [broker] listen"));
    }
    let server = ServerSettings {
        name: "dockhand".into(),
        listen,
        tls: None,
        next_connection_delay_ms: 1,
        connections: ConnectionSettings {
            connection_timeout_ms: 60_000,
            max_payload_size: config.max_payload_bytes.as_usize(),
            max_inflight_count: config.max_inflight,
            auth: None,
            external_auth: None,
            dynamic_filters: true,
        },
    };
    let broker_config = Config {
        id: 0,
        router: RouterConfig {
            max_connections: 1000,
            max_outgoing_packet_count: 200,
            max_segment_size: 100 << 20,
            max_segment_count: 10,
            custom_segment: None,
            initialized_filters: None,
            shared_subscriptions_strategy: Default::default(),
        },
        v4: Some(HashMap::from([("dockhand".to_string(), server)])),
        v5: None,
        ws: None,
        cluster: None,
        console: None,
        bridge: None,
        prometheus: None,
        metrics: None,
    };
    std::thread::Builder::new()
        .name("mqtt-broker".into())
        .spawn(move || {
            let mut broker = Broker::new(broker_config);
            if let Err(e) = broker.start() {
                error!(error = %e, "The embedded MQTT broker stopped.");
            }
        })
        .map_err(|e| format!("cannot start the broker thread: {e}"))?;
    let deadline = Instant::now() + Duration::from_secs(5);
    while std::net::TcpListener::bind(listen).is_ok() {
        if Instant::now() > deadline {
            return Err(format!("the embedded broker did not start listening on {listen}"));
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    info!(%listen, max_inflight = config.max_inflight, "Embedded MQTT broker listening.");
    Ok(())
}
