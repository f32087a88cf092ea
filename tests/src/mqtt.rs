//! MQTT test parts: a real mosquitto on a free port (start, SIGTERM, SIGKILL, restart), a test CA
//! with server and client certificates, publishers that know which messages the broker
//! acknowledged, and a listener for dockhand's replies to the handhelds.

use std::collections::{HashMap, HashSet, VecDeque};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use rumqttc::{AsyncClient, Event, MqttOptions, Outgoing, Packet, QoS};

/// A port nothing listens on right now.
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0").and_then(|l| l.local_addr()).map(|a| a.port()).expect("free port")
}

/// Whether mosquitto tests can run. CI sets `DOCKHAND_REQUIRE_MOSQUITTO=1`, which turns a missing
/// mosquitto into a failure instead of a skip.
pub fn mosquitto_available() -> bool {
    let found = Command::new("mosquitto").arg("-h").stdout(Stdio::null()).stderr(Stdio::null()).status().is_ok();
    if !found {
        assert!(
            std::env::var_os("DOCKHAND_REQUIRE_MOSQUITTO").is_none(),
            "mosquitto is not installed but DOCKHAND_REQUIRE_MOSQUITTO is set (apt-get install mosquitto)"
        );
        eprintln!("SKIPPED: mosquitto is not installed (scripts/test.sh installs it)");
    }
    found
}

/// Server TLS material for mosquitto, plus what a client needs.
#[derive(Debug, Clone)]
pub struct TestPki {
    pub ca: PathBuf,
    pub server_cert: PathBuf,
    pub server_key: PathBuf,
    pub client_cert: PathBuf,
    pub client_key: PathBuf,
}

impl TestPki {
    /// A fresh CA (named `name`) with a server certificate for 127.0.0.1/localhost and a client certificate.
    pub fn generate(dir: &Path, name: &str) -> TestPki {
        use rcgen::{BasicConstraints, CertificateParams, DnType, IsCa, KeyPair, KeyUsagePurpose};
        let ca_key = KeyPair::generate().expect("ca key");
        let mut ca_params = CertificateParams::new(Vec::<String>::new()).expect("ca params");
        ca_params.distinguished_name.push(DnType::CommonName, format!("{name} test CA"));
        ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        ca_params.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
        let ca_cert = ca_params.self_signed(&ca_key).expect("ca cert");
        let issuer = rcgen::Issuer::new(ca_params, ca_key);
        let leaf = |sans: Vec<String>, cn: &str| {
            let key = KeyPair::generate().expect("key");
            let mut p = CertificateParams::new(sans).expect("params");
            p.distinguished_name.push(DnType::CommonName, cn);
            let cert = p.signed_by(&key, &issuer).expect("sign");
            (cert.pem(), key.serialize_pem())
        };
        let (server_cert, server_key) = leaf(vec!["localhost".into(), "127.0.0.1".into()], "mosquitto");
        let (client_cert, client_key) = leaf(vec![], "dockhand-test-gw");
        let write = |file: &str, text: &str| {
            let p = dir.join(format!("{name}-{file}"));
            std::fs::write(&p, text).expect("write pem");
            p
        };
        TestPki {
            ca: write("ca.pem", &ca_cert.pem()),
            server_cert: write("server.pem", &server_cert),
            server_key: write("server.key", &server_key),
            client_cert: write("client.pem", &client_cert),
            client_key: write("client.key", &client_key),
        }
    }
}

/// A mosquitto process with persistence, on its own port and folder.
#[derive(Debug)]
pub struct Mosquitto {
    /// The plain listener (test publishers use it).
    pub port: u16,
    /// The TLS listener, when started with TLS (client certificate required).
    pub tls_port: Option<u16>,
    dir: PathBuf,
    tls: Option<TestPki>,
    /// `(user, password)`; empty: anonymous clients allowed.
    users: Vec<(String, String)>,
    child: Option<Child>,
}

impl Mosquitto {
    pub fn start(dir: &Path) -> Mosquitto {
        Self::start_with(dir, None)
    }

    /// With `tls`, a second listener requires TLS and a client certificate signed by the CA.
    pub fn start_with(dir: &Path, tls: Option<TestPki>) -> Mosquitto {
        let dir = dir.join(format!("mosquitto-{}", free_port()));
        std::fs::create_dir_all(&dir).expect("mosquitto dir");
        let tls_port = tls.as_ref().map(|_| free_port());
        let mut m = Mosquitto { port: free_port(), tls_port, dir, tls, users: Vec::new(), child: None };
        m.launch();
        m
    }

    /// Anonymous clients refused on every listener; these `(user, password)` accepted.
    pub fn start_with_users(dir: &Path, users: &[(&str, &str)]) -> Mosquitto {
        let dir = dir.join(format!("mosquitto-{}", free_port()));
        std::fs::create_dir_all(&dir).expect("mosquitto dir");
        let users = users.iter().map(|(u, p)| (u.to_string(), p.to_string())).collect();
        let mut m = Mosquitto { port: free_port(), tls_port: None, dir, tls: None, users, child: None };
        m.launch();
        m
    }

    fn launch(&mut self) {
        let mut conf = format!(
            "listener {} 127.0.0.1\nallow_anonymous true\npersistence true\npersistence_location {}/\nautosave_interval 1\n\
             max_queued_messages 0\nmax_inflight_messages 20\nset_tcp_nodelay true\nmessage_size_limit 4194304\nlog_dest stderr\nlog_type error\nlog_type warning\n",
            self.port,
            self.dir.display()
        );
        // As root, mosquitto would switch to its own user and lose access to the test folder.
        conf.push_str("user root\n");
        if !self.users.is_empty() {
            let file = self.dir.join("passwords");
            let _ = std::fs::remove_file(&file);
            for (user, password) in &self.users {
                let status = Command::new("mosquitto_passwd")
                    .args(if file.exists() { vec!["-b"] } else { vec!["-c", "-b"] })
                    .arg(&file)
                    .args([user, password])
                    .stdout(Stdio::null())
                    .status()
                    .expect("mosquitto_passwd");
                assert!(status.success(), "mosquitto_passwd failed");
            }
            conf = conf.replace("allow_anonymous true", "allow_anonymous false");
            conf.push_str(&format!("password_file {}\n", file.display()));
        }
        if let (Some(t), Some(port)) = (&self.tls, self.tls_port) {
            conf.push_str(&format!(
                "listener {port} 127.0.0.1\ncafile {}\ncertfile {}\nkeyfile {}\nrequire_certificate true\n",
                t.ca.display(),
                t.server_cert.display(),
                t.server_key.display()
            ));
        }
        let conf_path = self.dir.join("mosquitto.conf");
        std::fs::write(&conf_path, conf).expect("write mosquitto.conf");
        let child = Command::new("mosquitto")
            .arg("-c")
            .arg(&conf_path)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start mosquitto");
        self.child = Some(child);
        crate::wait_until(Duration::from_secs(10), "mosquitto to listen", || {
            std::net::TcpStream::connect(("127.0.0.1", self.port)).is_ok()
        });
    }

    fn signal(&mut self, sig: i32) {
        if let Some(mut child) = self.child.take() {
            #[allow(unsafe_code)]
            // SAFETY: kill(2) touches no memory of ours; the pid is our own child.
            unsafe {
                libc::kill(child.id() as i32, sig);
            }
            let _ = child.wait();
        }
    }

    /// SIGTERM (mosquitto saves its persistence file) and start again on the same port.
    pub fn restart(&mut self) {
        self.signal(libc::SIGTERM);
        self.launch();
    }

    pub fn stop(&mut self) {
        self.signal(libc::SIGTERM);
    }
}

impl Drop for Mosquitto {
    fn drop(&mut self) {
        self.signal(libc::SIGKILL);
    }
}

fn options(port: u16, client_id: &str) -> MqttOptions {
    let mut o = MqttOptions::new(client_id, "127.0.0.1", port);
    o.set_keep_alive(Duration::from_secs(10));
    o.set_max_packet_size(4 << 20, 4 << 20);
    o
}

#[derive(Default)]
struct PubState {
    queued: VecDeque<uuid::Uuid>,
    by_pkid: HashMap<u16, uuid::Uuid>,
    acked: HashSet<uuid::Uuid>,
    broken: bool,
}

/// A handheld that knows which of its messages the broker acknowledged (PUBACK). After a
/// connection error it stops counting (packet ids could be reused) and says so.
pub struct Publisher {
    client: AsyncClient,
    state: Arc<Mutex<PubState>>,
}

impl std::fmt::Debug for Publisher {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Publisher").finish_non_exhaustive()
    }
}

impl Publisher {
    pub fn connect(port: u16, client_id: &str) -> Publisher {
        let (client, mut events) = AsyncClient::new(options(port, client_id), 1000);
        let state = Arc::new(Mutex::new(PubState::default()));
        let s = state.clone();
        tokio::spawn(async move {
            loop {
                match events.poll().await {
                    Ok(Event::Outgoing(Outgoing::Publish(pkid))) => {
                        let mut st = s.lock().unwrap_or_else(|p| p.into_inner());
                        if let Some(id) = st.queued.pop_front() {
                            st.by_pkid.insert(pkid, id);
                        }
                    }
                    Ok(Event::Incoming(Packet::PubAck(ack))) => {
                        let mut st = s.lock().unwrap_or_else(|p| p.into_inner());
                        if let Some(id) = st.by_pkid.remove(&ack.pkid) {
                            st.acked.insert(id);
                        }
                    }
                    Ok(_) => {}
                    Err(_) => {
                        s.lock().unwrap_or_else(|p| p.into_inner()).broken = true;
                        return;
                    }
                }
            }
        });
        Publisher { client, state }
    }

    pub async fn publish(&self, topic: &str, id: uuid::Uuid, payload: Vec<u8>) {
        self.state.lock().unwrap_or_else(|p| p.into_inner()).queued.push_back(id);
        self.client.publish(topic, QoS::AtLeastOnce, false, payload).await.expect("queue publish");
    }

    /// Publishes raw bytes whose PUBACK is not tracked.
    pub async fn publish_raw(&self, topic: &str, payload: Vec<u8>) {
        self.client.publish(topic, QoS::AtLeastOnce, false, payload).await.expect("queue publish");
    }

    pub fn acked(&self) -> HashSet<uuid::Uuid> {
        self.state.lock().unwrap_or_else(|p| p.into_inner()).acked.clone()
    }

    pub fn broken(&self) -> bool {
        self.state.lock().unwrap_or_else(|p| p.into_inner()).broken
    }
}

/// Collects dockhand's replies (`…/reply/+/ack` and `…/reply/+/rejected`, the v2 layout).
pub struct ReplyListener {
    replies: Arc<Mutex<Vec<(String, serde_json::Value)>>>,
}

impl std::fmt::Debug for ReplyListener {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ReplyListener").finish_non_exhaustive()
    }
}

impl ReplyListener {
    pub async fn connect(port: u16, prefix: &str) -> ReplyListener {
        Self::listen(port, vec![format!("{prefix}/reply/+/ack"), format!("{prefix}/reply/+/rejected")]).await
    }

    /// Collects replies in the deprecated v1 layout (`…/handheld/+/ack`, `…/handheld/+/rejected`).
    pub async fn connect_v1(port: u16, prefix: &str) -> ReplyListener {
        Self::listen(port, vec![format!("{prefix}/handheld/+/ack"), format!("{prefix}/handheld/+/rejected")]).await
    }

    /// Collects every message on these topic filters.
    pub async fn listen(port: u16, filters: Vec<String>) -> ReplyListener {
        let (client, mut events) = AsyncClient::new(options(port, &format!("listener-{}", free_port())), 100);
        let replies = Arc::new(Mutex::new(Vec::new()));
        let (subscribed_tx, subscribed_rx) = tokio::sync::oneshot::channel();
        let r = replies.clone();
        let wanted = filters.len();
        for f in &filters {
            client.subscribe(f, QoS::AtLeastOnce).await.expect("subscribe");
        }
        tokio::spawn(async move {
            let _client = client;
            let mut subscribed_tx = Some(subscribed_tx);
            let mut subacks = 0;
            loop {
                match events.poll().await {
                    Ok(Event::Incoming(Packet::SubAck(_))) => {
                        subacks += 1;
                        if subacks == wanted
                            && let Some(tx) = subscribed_tx.take()
                        {
                            let _ = tx.send(());
                        }
                    }
                    Ok(Event::Incoming(Packet::Publish(p))) => {
                        let v = serde_json::from_slice(&p.payload).unwrap_or(serde_json::Value::Null);
                        r.lock().unwrap_or_else(|p| p.into_inner()).push((p.topic.clone(), v));
                    }
                    Ok(_) => {}
                    Err(_) => tokio::time::sleep(Duration::from_millis(200)).await,
                }
            }
        });
        let _ = tokio::time::timeout(Duration::from_secs(10), subscribed_rx).await;
        ReplyListener { replies }
    }

    pub fn replies(&self) -> Vec<(String, serde_json::Value)> {
        self.replies.lock().unwrap_or_else(|p| p.into_inner()).clone()
    }

    /// Waits until a reply on a topic ending with `suffix` mentions `id` (or, with `None`, until
    /// `count` replies end with `suffix`).
    pub async fn wait_for(&self, suffix: &str, id: Option<&str>, count: usize) -> Vec<(String, serde_json::Value)> {
        let deadline = tokio::time::Instant::now() + Duration::from_secs(15);
        loop {
            let found: Vec<_> = self
                .replies()
                .into_iter()
                .filter(|(t, v)| t.ends_with(suffix) && id.is_none_or(|id| v["id"].as_str() == Some(id)))
                .collect();
            if found.len() >= count {
                return found;
            }
            assert!(tokio::time::Instant::now() < deadline, "no {suffix} reply for {id:?} (have {:?})", self.replies());
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
}

/// How many times each of `ids` is stored (read straight from the SQLite file).
pub fn stored_counts(store: &Path, ids: &[uuid::Uuid]) -> HashMap<uuid::Uuid, i64> {
    let conn = rusqlite::Connection::open(store).expect("open store");
    conn.busy_timeout(Duration::from_secs(10)).expect("busy timeout");
    let mut stmt = conn.prepare("SELECT count(*) FROM events WHERE id = ?1").expect("prepare");
    ids.iter().map(|id| (*id, stmt.query_row([&id.as_bytes()[..]], |r| r.get(0)).expect("count"))).collect()
}

/// Ids of one partition's events in store order (seq: the order sinks deliver them in).
pub fn stored_order(store: &Path, partition: &str) -> Vec<uuid::Uuid> {
    let conn = rusqlite::Connection::open(store).expect("open store");
    conn.busy_timeout(Duration::from_secs(10)).expect("busy timeout");
    let mut stmt = conn.prepare("SELECT id FROM events WHERE partition = ?1 ORDER BY seq").expect("prepare");
    stmt.query_map([partition], |r| r.get::<_, Vec<u8>>(0))
        .expect("query")
        .map(|b| uuid::Uuid::from_slice(&b.expect("row")).expect("uuid"))
        .collect()
}

/// Number of events in the store.
pub fn stored_total(store: &Path) -> i64 {
    let Ok(conn) = rusqlite::Connection::open_with_flags(store, rusqlite::OpenFlags::SQLITE_OPEN_READ_WRITE) else {
        return 0;
    };
    let _ = conn.busy_timeout(Duration::from_secs(10));
    conn.query_row("SELECT count(*) FROM events", [], |r| r.get(0)).unwrap_or(0)
}

/// A valid count message with its id.
pub fn count_message(id: uuid::Uuid, n: u64) -> Vec<u8> {
    serde_json::json!({"id": id, "product": {"barcode": "4006381333931"}, "location": "WH/Stock/A1", "quantity": (n % 50 + 1).to_string()})
        .to_string()
        .into_bytes()
}

/// An answer a [`V5Handheld`] received: topic, JSON body, Correlation Data.
pub type V5Answer = (String, serde_json::Value, Option<bytes::Bytes>);

/// An MQTT 5 handheld using request/response: it names a Response Topic and Correlation Data on
/// each request and collects what arrives on its response topic.
pub struct V5Handheld {
    client: rumqttc::v5::AsyncClient,
    answers: Arc<Mutex<Vec<V5Answer>>>,
    pub response_topic: String,
}

impl std::fmt::Debug for V5Handheld {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("V5Handheld").field("response_topic", &self.response_topic).finish_non_exhaustive()
    }
}

impl V5Handheld {
    /// Connects (MQTT 5) and subscribes to `response_topic` before returning.
    pub async fn connect(port: u16, client_id: &str, response_topic: &str) -> V5Handheld {
        use rumqttc::v5::mqttbytes::v5::Packet as P5;
        let mut o = rumqttc::v5::MqttOptions::new(client_id, "127.0.0.1", port);
        o.set_keep_alive(Duration::from_secs(10));
        let (client, mut events) = rumqttc::v5::AsyncClient::new(o, 100);
        client.subscribe(response_topic, rumqttc::v5::mqttbytes::QoS::AtLeastOnce).await.expect("subscribe");
        let answers = Arc::new(Mutex::new(Vec::new()));
        let a = answers.clone();
        let (subscribed_tx, subscribed_rx) = tokio::sync::oneshot::channel();
        tokio::spawn(async move {
            let mut subscribed_tx = Some(subscribed_tx);
            loop {
                match events.poll().await {
                    Ok(rumqttc::v5::Event::Incoming(P5::SubAck(_))) => {
                        if let Some(tx) = subscribed_tx.take() {
                            let _ = tx.send(());
                        }
                    }
                    Ok(rumqttc::v5::Event::Incoming(P5::Publish(p))) => {
                        let v = serde_json::from_slice(&p.payload).unwrap_or(serde_json::Value::Null);
                        let correlation = p.properties.and_then(|p| p.correlation_data);
                        a.lock().unwrap_or_else(|p| p.into_inner()).push((
                            String::from_utf8_lossy(&p.topic).into_owned(),
                            v,
                            correlation,
                        ));
                    }
                    Ok(_) => {}
                    Err(_) => tokio::time::sleep(Duration::from_millis(200)).await,
                }
            }
        });
        tokio::time::timeout(Duration::from_secs(10), subscribed_rx).await.expect("subscribed").expect("suback");
        V5Handheld { client, answers, response_topic: response_topic.to_owned() }
    }

    /// Publishes at QoS 1; with `correlation`, names the response topic and the data.
    pub async fn request(&self, topic: &str, payload: Vec<u8>, correlation: Option<&[u8]>) {
        let qos = rumqttc::v5::mqttbytes::QoS::AtLeastOnce;
        match correlation {
            Some(c) => {
                let props = rumqttc::v5::mqttbytes::v5::PublishProperties {
                    response_topic: Some(self.response_topic.clone()),
                    correlation_data: Some(bytes::Bytes::copy_from_slice(c)),
                    ..Default::default()
                };
                self.client.publish_with_properties(topic, qos, false, payload, props).await.expect("publish")
            }
            None => self.client.publish(topic, qos, false, payload).await.expect("publish"),
        }
    }

    pub fn answers(&self) -> Vec<V5Answer> {
        self.answers.lock().unwrap_or_else(|p| p.into_inner()).clone()
    }
}

/// A subscriber on the fleet's broker, as a cloud consumer would run it: a persistent session
/// (clean session off, QoS 1), so messages published while it is away wait for it at the
/// broker. Records every event it receives, in arrival order (a JSON array message counts as
/// its events, in order).
pub struct Recorder {
    received: Arc<Mutex<Vec<serde_json::Value>>>,
    _client: AsyncClient,
}

impl std::fmt::Debug for Recorder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Recorder").finish_non_exhaustive()
    }
}

impl Recorder {
    /// Connects as `client_id` and subscribes to `filter`; returns once the broker granted it.
    pub fn start(port: u16, client_id: &str, filter: &str) -> Recorder {
        Self::start_as(port, client_id, filter, None)
    }

    /// Like [`Recorder::start`], logging in with `(user, password)`.
    pub fn start_as(port: u16, client_id: &str, filter: &str, login: Option<(&str, &str)>) -> Recorder {
        let mut o = options(port, client_id);
        o.set_clean_session(false);
        if let Some((user, password)) = login {
            o.set_credentials(user, password);
        }
        let (client, mut events) = AsyncClient::new(o, 100);
        let received: Arc<Mutex<Vec<serde_json::Value>>> = Arc::default();
        let r = received.clone();
        let c = client.clone();
        let filter = filter.to_owned();
        let (subscribed_tx, subscribed) = std::sync::mpsc::channel();
        let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().expect("runtime");
        std::thread::spawn(move || {
            rt.block_on(async move {
                loop {
                    match events.poll().await {
                        Ok(Event::Incoming(Packet::ConnAck(_))) => {
                            let _ = c.subscribe(filter.clone(), QoS::AtLeastOnce).await;
                        }
                        Ok(Event::Incoming(Packet::SubAck(_))) => {
                            let _ = subscribed_tx.send(());
                        }
                        Ok(Event::Incoming(Packet::Publish(p))) => {
                            let value: serde_json::Value =
                                serde_json::from_slice(&p.payload).unwrap_or(serde_json::Value::Null);
                            let mut list = r.lock().unwrap_or_else(|e| e.into_inner());
                            match value {
                                serde_json::Value::Array(events) => list.extend(events),
                                other => list.push(other),
                            }
                        }
                        Ok(_) => {}
                        // The broker restarts in some tests: poll again, which reconnects.
                        Err(_) => tokio::time::sleep(Duration::from_millis(200)).await,
                    }
                }
            });
        });
        subscribed.recv_timeout(Duration::from_secs(10)).expect("the recorder subscribed");
        Recorder { received, _client: client }
    }

    pub fn received(&self) -> Vec<serde_json::Value> {
        self.received.lock().unwrap_or_else(|e| e.into_inner()).clone()
    }
}
