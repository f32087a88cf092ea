//! The status page (`[web]`, docs/WEB.md) from outside: the real daemon with pty devices and
//! HTTP sinks against the fake receiver, the page loaded in headless Chromium (Debian's
//! `chromium`, installed by the test command), and the API hit with plain HTTP requests the way
//! a hostile page or a script on the LAN would.

#![allow(clippy::unwrap_used)] // test code: a panic is the failure report

use std::io::{Read, Write};
use std::time::Duration;

use dockhand_tests::browser::{Browser, chromium_available, png_ink};
use dockhand_tests::mqtt::free_port;
use dockhand_tests::pty::{Display, SimulatedScale, VirtualPort};
use dockhand_tests::receiver::{Mode, Receiver};
use dockhand_tests::{Site, append_events, wait_until};
use serde_json::{Value, json};

const EXE: &str = env!("CARGO_BIN_EXE_dockhand-e2e");
const TOKEN: &str = "correct-horse-battery-staple";
/// What the hostile scanner and device path try to run in the page.
const HOSTILE_SCAN: &str = "<img src=x onerror=window.__pwned=1><script>window.__pwned=2</script>";
const HOSTILE_PATH: &str = "<img src=x onerror=window.__pwned=3>";

fn require_chromium() {
    assert!(
        chromium_available(),
        "these tests need headless Chromium: install Debian's `chromium` (scripts/install-test-deps.sh does)"
    );
}

/// One HTTP/1.1 request to the daemon: status, headers (lower-cased names), body.
fn http(port: u16, method: &str, path: &str, headers: &[(&str, &str)], body: &str) -> (u16, String, String) {
    let s = std::net::TcpStream::connect(("127.0.0.1", port)).expect("connect to the web server");
    s.set_read_timeout(Some(Duration::from_secs(30))).unwrap();
    exchange(s, port, method, path, headers, body)
}

/// The same over HTTPS, trusting only `ca`.
fn https(ca: &std::path::Path, port: u16, method: &str, path: &str, headers: &[(&str, &str)]) -> (u16, String, String) {
    use rustls::pki_types::CertificateDer;
    use rustls::pki_types::pem::PemObject;
    let mut roots = rustls::RootCertStore::empty();
    for cert in CertificateDer::pem_file_iter(ca).unwrap() {
        roots.add(cert.unwrap()).unwrap();
    }
    let config =
        rustls::ClientConfig::builder_with_provider(std::sync::Arc::new(rustls::crypto::ring::default_provider()))
            .with_safe_default_protocol_versions()
            .unwrap()
            .with_root_certificates(roots)
            .with_no_client_auth();
    let conn = rustls::ClientConnection::new(std::sync::Arc::new(config), "localhost".try_into().unwrap()).unwrap();
    let tcp = std::net::TcpStream::connect(("127.0.0.1", port)).expect("connect to the web server");
    tcp.set_read_timeout(Some(Duration::from_secs(30))).unwrap();
    let body = if method == "POST" { json!({"token": TOKEN}).to_string() } else { String::new() };
    exchange(rustls::StreamOwned::new(conn, tcp), port, method, path, headers, &body)
}

fn exchange(
    mut s: impl Read + Write,
    port: u16,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: &str,
) -> (u16, String, String) {
    let mut request = format!(
        "{method} {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nConnection: close\r\nContent-Length: {}\r\n",
        body.len()
    );
    for (k, v) in headers {
        request.push_str(&format!("{k}: {v}\r\n"));
    }
    request.push_str("\r\n");
    request.push_str(body);
    s.write_all(request.as_bytes()).unwrap();
    let mut answer = Vec::new();
    // A TLS peer may close without close_notify after `Connection: close`: what came is the answer.
    let _ = s.read_to_end(&mut answer);
    let answer = String::from_utf8_lossy(&answer).to_string();
    let (head, body) = answer.split_once("\r\n\r\n").unwrap_or((&answer, ""));
    let status = head.split(' ').nth(1).and_then(|c| c.parse().ok()).unwrap_or(0);
    (status, head.to_ascii_lowercase(), body.to_owned())
}

fn post_json(port: u16, path: &str, headers: &[(&str, &str)], body: &Value) -> (u16, String, Value) {
    let mut all = vec![("Content-Type", "application/json")];
    all.extend_from_slice(headers);
    let (status, head, body) = http(port, "POST", path, &all, &body.to_string());
    (status, head, serde_json::from_str(&body).unwrap_or(Value::Null))
}

fn page_status(port: u16) -> Value {
    let (status, _, body) = http(port, "GET", "/api/status", &[], "");
    assert_eq!(status, 200, "{body}");
    serde_json::from_str(&body).unwrap()
}

fn http_sink(name: &str, url: &str) -> String {
    format!(
        r#"[[sink]]
name = "{name}"
type = "http"
url = "{url}"
request_timeout = "2s"
batch = {{ max_events = 1, linger = "20ms" }}
retry = {{ initial = "200ms", max = "1s" }}
"#
    )
}

fn token_file(site: &Site) -> String {
    let path = site.path("web.token");
    std::fs::write(&path, format!("{TOKEN}\n")).unwrap();
    format!("token_file = \"{}\"", path.display())
}

/// A JavaScript expression: the text of `selector`, or "" when absent.
fn text_of(selector: &str) -> String {
    format!("(document.querySelector({}) || {{textContent: ''}}).textContent", json!(selector))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_page_shows_devices_live_weights_a_failing_sink_and_dead_letters_and_retries_one() {
    require_chromium();
    let site = Site::new(EXE);
    let scale_port = VirtualPort::start(site.dir.path(), "scale0");
    let scale = SimulatedScale::mt_sics(&scale_port);
    scale.show(Display::Weight("1.250".into(), true));
    let mut scanner = VirtualPort::start(site.dir.path(), "scanner0");
    let archive = Receiver::start(None).await;
    archive.set_mode(Mode::Status { status: 422, retry_after: None, body: "schema mismatch".into() });
    let nowhere = format!("http://127.0.0.1:{}/ingest", free_port());
    site.write_config_with_web(
        &token_file(&site),
        &format!(
            r#"{}
{}
[[device]]
name = "scale-1"
kind = "scale"
path = "{}"
protocol = "mt-sics"
poll_interval = "100ms"

[[device]]
name = "scanner-1"
kind = "scanner"
path = "{}"

[[device]]
name = "ghost"
kind = "scanner"
path = "{}"
"#,
            http_sink("cloud", &nowhere),
            http_sink("archive", &archive.url()),
            scale_port.path.display(),
            scanner.path.display(),
            site.dir.path().join(HOSTILE_PATH).display(),
        ),
    );
    let daemon = site.start();
    let port = site.metrics_port;
    let mut browser = Browser::open(&format!("http://127.0.0.1:{port}/"), &site.path("chromium.log"));

    // Device states, as `status` has them.
    let row = |device: &str, cell: &str| text_of(&format!("#devices tr[data-device=\"{device}\"] .{cell}"));
    browser.wait_for(
        Duration::from_secs(15),
        "the scale and the scanner connected",
        &format!("{} === 'connected' && {} === 'connected'", row("scale-1", "state"), row("scanner-1", "state")),
    );
    let (ghost_detail, _) = browser.wait_for(
        Duration::from_secs(15),
        "the missing device's reason",
        &format!("{} !== 'connected' && {}", row("ghost", "state"), row("ghost", "detail")),
    );
    assert!(
        ghost_detail.as_str().unwrap().contains(HOSTILE_PATH),
        "the device detail is shown as written: {ghost_detail}"
    );

    // The live weight follows the scale's answer within a second.
    browser.wait_for(
        Duration::from_secs(10),
        "the first weight",
        &format!("{}.includes('1.250 kg')", row("scale-1", "live-value")),
    );
    scale.show(Display::Weight("2.500".into(), true));
    let (_, took) = browser.wait_for(
        Duration::from_secs(5),
        "the new weight",
        &format!("{}.includes('2.500 kg')", row("scale-1", "live-value")),
    );
    assert!(took < Duration::from_secs(1), "the page showed the new weight after {took:?}");

    // A scan holding markup is shown as its characters, and nothing in it runs.
    scanner.write(format!("{HOSTILE_SCAN}\r\n").as_bytes());
    browser.wait_for(
        Duration::from_secs(10),
        "the hostile scan as text",
        &format!("{}.includes({})", row("scanner-1", "live-value"), json!(HOSTILE_SCAN)),
    );

    // The failing sink's last error and next attempt.
    let sink = |cell: &str| text_of(&format!("#sinks tr[data-sink=\"cloud\"] .{cell}"));
    let (error, _) = browser.wait_for(Duration::from_secs(15), "the failing sink's error", &sink("last-error"));
    assert!(error.as_str().unwrap().to_lowercase().contains("connect"), "{error}");
    assert_eq!(browser.eval(&sink("state")), "retrying");

    // The scan's dead letter (the archive refuses everything), listed and shown in full.
    let scan_letter = || {
        let status = page_status(port);
        status["dead_letters"].as_array().unwrap().iter().find_map(|d| {
            let id = d["id"].as_i64()?;
            let (_, _, body) = http(port, "GET", &format!("/api/dead-letters/{id}"), &[], "");
            let full: Value = serde_json::from_str(&body).ok()?;
            full["body"].as_str()?.contains("onerror").then_some((id, full))
        })
    };
    wait_until(Duration::from_secs(15), "the scan's dead letter", || scan_letter().is_some());
    let (letter, full) = scan_letter().unwrap();
    let event_id = full["event_id"].as_str().unwrap().to_owned();
    let item = format!("#dead-letters li[data-dead-letter=\"{letter}\"]");
    browser.wait_for(
        Duration::from_secs(5),
        "the dead letter in the list",
        &format!("!!document.querySelector('{item}')"),
    );
    browser.eval(&format!("document.querySelector('{item} button.show').click()"));
    let (body, _) = browser.wait_for(
        Duration::from_secs(5),
        "the dead letter in full",
        "document.getElementById('dead-letter-body').textContent.includes('onerror') && document.getElementById('dead-letter-body').textContent",
    );
    assert!(body.as_str().unwrap().contains(&event_id), "{body}");
    assert_eq!(
        browser.eval("[window.__pwned === undefined, document.images.length, document.scripts.length]"),
        json!([true, 0, 1]),
        "markup from a scan or a device ran or was inserted"
    );

    // The screenshot is kept next to the test's output and shows something.
    let shot = browser.screenshot();
    let dir = std::path::Path::new(env!("CARGO_TARGET_TMPDIR")).join("web");
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(dir.join("status-page.png"), &shot).unwrap();
    let (ink, colours) = png_ink(&shot);
    assert!(ink > 0.02 && colours > 16, "the screenshot looks blank: {ink:.3} of it drawn, {colours} colours");

    // No buttons before the login; a wrong token is refused.
    assert_eq!(browser.eval("document.querySelectorAll('button.retry').length"), 0);
    let login = |token: &str| {
        format!(
            "document.getElementById('token').value = {}; document.getElementById('login').requestSubmit(); true",
            json!(token)
        )
    };
    browser.eval(&login("not-the-token"));
    browser.wait_for(
        Duration::from_secs(5),
        "the refusal",
        &format!("{}.includes('wrong token')", text_of("#action-result")),
    );
    assert_eq!(browser.eval("document.getElementById('controls').hidden"), true);

    // Logged in, the dead letter's Retry redelivers the event to the archive, once.
    archive.set_mode(Mode::Accept);
    browser.eval(&login(TOKEN));
    browser.wait_for(Duration::from_secs(5), "the controls", "!document.getElementById('controls').hidden");
    browser.wait_for(
        Duration::from_secs(5),
        "the retry button",
        &format!("!!document.querySelector('{item} button.retry')"),
    );
    browser.eval(&format!("document.querySelector('{item} button.retry').click()"));
    browser.wait_for(
        Duration::from_secs(5),
        "the action's answer",
        &format!("{}.includes('1 dead letter(s) queued for delivery again.')", text_of("#action-result")),
    );
    let delivered = || archive.accepted_events().iter().filter(|e| e["id"] == event_id.as_str()).count();
    wait_until(Duration::from_secs(10), "the retried event at the archive", || delivered() >= 1);
    std::thread::sleep(Duration::from_millis(500));
    assert_eq!(delivered(), 1, "redelivered exactly once");
    assert_eq!(browser.eval("window.__pwned === undefined"), true);
    drop(browser);
    daemon.stop();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_a_token_the_page_is_read_only() {
    require_chromium();
    let site = Site::new(EXE);
    let archive = Receiver::start(None).await;
    archive.set_mode(Mode::Status { status: 422, retry_after: None, body: "no".into() });
    site.write_config(&http_sink("archive", &archive.url()));
    append_events(&site.store_path(), vec![("scan", json!({"raw": "ABC"}))]);
    let daemon = site.start();
    let port = site.metrics_port;
    wait_until(Duration::from_secs(10), "a dead letter", || {
        !page_status(port)["dead_letters"].as_array().unwrap().is_empty()
    });

    for (path, body) in [
        ("/api/actions/dlq-retry", json!({"all": true})),
        ("/api/actions/clear-alarms", json!({})),
        ("/api/login", json!({"token": ""})),
    ] {
        let (status, _, answer) = post_json(port, path, &[], &body);
        assert_eq!(status, 403, "{path}: {answer}");
    }
    let mut browser = Browser::open(&format!("http://127.0.0.1:{port}/"), &site.path("chromium.log"));
    browser.wait_for(
        Duration::from_secs(10),
        "the dead letter on the page",
        "!!document.querySelector('#dead-letters li')",
    );
    assert_eq!(
        browser.eval(
            "[document.getElementById('actions-off').hidden, document.getElementById('login').hidden, \
             document.getElementById('controls').hidden, document.querySelectorAll('button.retry, button.reprint').length]"
        ),
        json!([false, true, true, 0])
    );
    drop(browser);
    daemon.stop();
}

#[test]
fn with_a_token_only_a_logged_in_page_with_its_csrf_token_may_act() {
    let site = Site::new(EXE);
    site.write_config_with_web(&token_file(&site), "");
    let daemon = site.start();
    let port = site.metrics_port;

    let (status, _, body) = post_json(port, "/api/login", &[], &json!({"token": "guess"}));
    assert_eq!((status, body["error"].as_str()), (403, Some("wrong token")));
    // A form on another site posts form data, not JSON.
    let (status, _, _) =
        http(port, "POST", "/api/login", &[("Content-Type", "application/x-www-form-urlencoded")], "token=x");
    assert_eq!(status, 415);

    let (cookie, csrf, cookie_line) = log_in(port);
    assert!(cookie_line.contains("httponly") && cookie_line.contains("samesite=strict"), "{cookie_line}");

    let act = |headers: &[(&str, &str)]| post_json(port, "/api/actions/clear-alarms", headers, &json!({}));
    assert_eq!(act(&[("Cookie", &cookie)]).0, 403, "no CSRF token");
    assert_eq!(act(&[("Cookie", &cookie), ("X-CSRF-Token", "0000")]).0, 403, "a wrong CSRF token");
    assert_eq!(act(&[("X-CSRF-Token", &csrf)]).0, 403, "no session");
    let (status, _, done) = act(&[("Cookie", &cookie), ("X-CSRF-Token", &csrf)]);
    assert_eq!((status, done["exit"].as_i64()), (200, Some(0)), "{done}");
    assert_eq!(done["said"][0]["text"], "0 alarm(s) marked as seen.", "the CLI's own words");

    // The session knows its CSRF token; after logout it is gone.
    let (_, _, session) = http(port, "GET", "/api/session", &[("Cookie", &cookie)], "");
    assert_eq!(serde_json::from_str::<Value>(&session).unwrap()["csrf"], csrf.as_str());
    post_json(port, "/api/logout", &[("Cookie", &cookie)], &json!({}));
    assert_eq!(act(&[("Cookie", &cookie), ("X-CSRF-Token", &csrf)]).0, 403, "logged out");
    daemon.stop();

    // On a LAN address, the token needs HTTPS in front or allow_insecure written out.
    site.write_config_with_web(&token_file(&site), "");
    let text = std::fs::read_to_string(site.config()).unwrap();
    std::fs::write(site.config(), text.replace("listen = \"127.0.0.1:", "listen = \"0.0.0.0:")).unwrap();
    let out = site.cli(&["check-config"]);
    let said = String::from_utf8_lossy(&out.stderr).to_string() + &String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(78), "{said}");
    assert!(said.contains("web.listen") && said.contains("allow_insecure = true"), "{said}");
}

/// Logs in over HTTP: the `Cookie` and `X-CSRF-Token` header values, and the `Set-Cookie`
/// line as received (lower-cased).
fn log_in(port: u16) -> (String, String, String) {
    let (status, head, body) = post_json(port, "/api/login", &[], &json!({"token": TOKEN}));
    assert_eq!(status, 200, "{body}");
    let line = head.lines().find(|l| l.starts_with("set-cookie:")).expect("a session cookie").to_owned();
    let cookie = line["set-cookie:".len()..].trim().split(';').next().unwrap().to_owned();
    (cookie, body["csrf"].as_str().unwrap().to_owned(), line)
}

#[test]
fn the_page_prints_a_test_label_and_reprints_it_as_the_cli_does() {
    let zebra = dockhand_tests::printer::SimulatedPrinter::on_tcp();
    let site = Site::new(EXE);
    site.write_config_with_web(
        &token_file(&site),
        &format!(
            "[[device]]\nname = \"zebra-1\"\nkind = \"printer\"\ntransport = \"tcp\"\naddress = \"127.0.0.1:{}\"\nstatus_interval = \"100ms\"\nanswer_timeout = \"1s\"\n",
            zebra.port.unwrap()
        ),
    );
    let daemon = site.start();
    let port = site.metrics_port;
    assert_eq!(page_status(port)["printers"], json!(["zebra-1"]), "the page offers the configured printer");
    let (cookie, csrf, _) = log_in(port);
    let act = |action: &str, body: Value| {
        post_json(port, &format!("/api/actions/{action}"), &[("Cookie", &cookie), ("X-CSRF-Token", &csrf)], &body)
    };
    wait_until(Duration::from_secs(10), "the printer connected", || {
        page_status(port)["status"]["devices"][0]["state"] == "connected"
    });

    let (status, _, done) = act("print-test", json!({"printer": "zebra-1"}));
    assert_eq!(status, 200, "{done}");
    let said: Vec<&str> = done["said"].as_array().unwrap().iter().map(|l| l["text"].as_str().unwrap()).collect();
    assert!(said[0].starts_with("Test label test-zebra-1-") && said[1].starts_with("✓ sent to zebra-1"), "{said:?}");
    let job = said[0].trim_start_matches("Test label ").split(' ').next().unwrap().to_owned();
    assert_eq!(zebra.count(b"dockhand test label"), 1);

    let (status, _, done) = act("reprint", json!({"id": job}));
    assert_eq!(status, 200, "{done}");
    assert_eq!(
        done["said"][0]["text"],
        format!("Queued {job}-reprint-1: the label of {job} prints again when its printer is ready.")
    );
    wait_until(Duration::from_secs(10), "the reprint", || zebra.count(b"dockhand test label") == 2);

    // A misspelt printer: the CLI's refusal and exit code, as the CLI gives them.
    let (status, _, done) = act("print-test", json!({"printer": "zebra1"}));
    assert_eq!((status, done["exit"].as_i64()), (422, Some(2)), "{done}");
    assert_eq!(done["said"][0]["to"], "err");
    assert!(done["said"][0]["text"].as_str().unwrap().contains("no printer named `zebra1`"), "{done}");
    let cli = site.cli(&["print-test", "zebra1"]);
    assert_eq!(cli.status.code(), Some(2));
    assert_eq!(String::from_utf8_lossy(&cli.stderr).trim_end(), done["said"][0]["text"].as_str().unwrap());
    // An unknown job: the same words as `dockhand print reprint`.
    let (status, _, done) = act("reprint", json!({"id": "nope"}));
    assert_eq!(status, 422, "{done}");
    assert!(done["error"].as_str().unwrap().contains("there is no print job `nope`"), "{done}");
    daemon.stop();
}

#[test]
fn over_https_the_page_may_listen_on_the_lan_with_a_token_and_its_cookie_is_secure() {
    let site = Site::new(EXE);
    let pki = dockhand_tests::mqtt::TestPki::generate(site.dir.path(), "web");
    site.write_config_with_web(
        &format!(
            "{}\ntls_cert_file = \"{}\"\ntls_key_file = \"{}\"",
            token_file(&site),
            pki.server_cert.display(),
            pki.server_key.display()
        ),
        "",
    );
    // On every address, which a token over plain HTTP would not be allowed.
    let text = std::fs::read_to_string(site.config()).unwrap();
    std::fs::write(site.config(), text.replace("listen = \"127.0.0.1:", "listen = \"0.0.0.0:")).unwrap();
    let daemon = site.start();
    let port = site.metrics_port;
    let (status, _, body) = https(&pki.ca, port, "GET", "/api/status", &[]);
    assert_eq!(status, 200, "{body}");
    assert_eq!(serde_json::from_str::<Value>(&body).unwrap()["actions"], true);
    let (status, head, _) = https(&pki.ca, port, "POST", "/api/login", &[("Content-Type", "application/json")]);
    assert_eq!(status, 200);
    let cookie = head.lines().find(|l| l.starts_with("set-cookie:")).unwrap();
    assert!(cookie.ends_with("; secure") && cookie.contains("httponly"), "{cookie}");
    // Plain HTTP on the HTTPS port gets no page.
    let (status, _, _) = http(port, "GET", "/api/status", &[], "");
    assert_eq!(status, 0, "plain HTTP was answered");
    daemon.stop();

    // A key that does not belong to the certificate: check-config says so, with the key's line.
    let text = std::fs::read_to_string(site.config()).unwrap();
    std::fs::write(
        site.config(),
        text.replace(&pki.server_key.display().to_string(), &pki.client_key.display().to_string()),
    )
    .unwrap();
    let out = site.cli(&["check-config"]);
    let said = String::from_utf8_lossy(&out.stderr).to_string() + &String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(78), "{said}");
    assert!(said.contains("web.tls_cert_file") && said.contains("do not fit"), "{said}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_retry_the_page_was_told_is_queued_survives_a_kill_9() {
    let site = Site::new(EXE);
    let mut archive = Receiver::start(None).await;
    archive.set_mode(Mode::Status { status: 422, retry_after: None, body: "not yet".into() });
    site.write_config_with_web(&token_file(&site), &http_sink("archive", &archive.url()));
    let ids = append_events(&site.store_path(), vec![("scan", json!({"raw": "KILL-9"}))]);
    let daemon = site.start();
    let port = site.metrics_port;
    wait_until(Duration::from_secs(10), "the dead letter", || {
        !page_status(port)["dead_letters"].as_array().unwrap().is_empty()
    });
    let letter = page_status(port)["dead_letters"][0]["id"].as_i64().unwrap();
    // The receiver is away: the retried event can only wait in the store.
    archive.go_down();
    let (cookie, csrf, _) = log_in(port);
    let (status, _, done) = post_json(
        port,
        "/api/actions/dlq-retry",
        &[("Cookie", &cookie), ("X-CSRF-Token", &csrf)],
        &json!({"ids": [letter]}),
    );
    assert_eq!(status, 200, "{done}");
    daemon.kill9();

    archive.set_mode(Mode::Accept);
    archive.come_back().await;
    let daemon = site.start();
    let delivered = || archive.accepted_events().iter().filter(|e| e["id"] == ids[0].to_string().as_str()).count();
    wait_until(Duration::from_secs(15), "the retried event after the restart", || delivered() >= 1);
    std::thread::sleep(Duration::from_millis(500));
    assert_eq!(delivered(), 1, "delivered once");
    assert!(page_status(port)["dead_letters"].as_array().unwrap().is_empty(), "the dead letter is settled");
    daemon.stop();
}

#[test]
fn an_unreadable_token_file_leaves_the_page_read_only_and_says_why() {
    let site = Site::new(EXE);
    site.write_config_with_web(&format!("token_file = \"{}\"", site.path("missing.token").display()), "");
    let daemon = site.start();
    let port = site.metrics_port;
    let (_, _, body) = http(port, "GET", "/api/session", &[], "");
    let session: Value = serde_json::from_str(&body).unwrap();
    assert_eq!(session["actions"], false, "{session}");
    assert!(session["actions_off_reason"].as_str().unwrap().contains("missing.token"), "{session}");
    let (status, _, _) = post_json(port, "/api/login", &[], &json!({"token": TOKEN}));
    assert_eq!(status, 403);
    daemon.stop();
}
