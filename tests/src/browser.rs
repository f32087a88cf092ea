//! A real browser for the web page's tests: headless Chromium (Debian's `chromium` package)
//! driven over the Chrome DevTools Protocol on a pipe (`--remote-debugging-pipe`: JSON messages
//! separated by NUL bytes, commands on fd 3, answers on fd 4), so no WebSocket client is needed.
//!
//! Only what the tests use: open a page, evaluate JavaScript in it (to read the DOM, type, click),
//! and take a screenshot.

use std::collections::HashMap;
use std::fs::File;
use std::io::{BufRead, BufReader, Write};
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::os::unix::process::CommandExt;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Condvar, Mutex};
use std::time::{Duration, Instant};

use serde_json::{Value, json};

/// Whether Chromium is installed (the test command installs it).
pub fn chromium_available() -> bool {
    Command::new("chromium").arg("--version").stdout(Stdio::null()).stderr(Stdio::null()).status().is_ok()
}

#[derive(Debug, Default)]
struct Answers {
    by_id: HashMap<u64, Value>,
    closed: bool,
}

/// One headless Chromium with one page open.
#[derive(Debug)]
pub struct Browser {
    child: Child,
    commands: File,
    answers: Arc<(Mutex<Answers>, Condvar)>,
    next_id: u64,
    session: String,
    _profile: tempfile::TempDir,
}

// The pipes Chromium reads and writes as fds 3 and 4: std has no pipe of its own here.
#[allow(unsafe_code)]
fn pipe() -> (OwnedFd, OwnedFd) {
    let mut fds = [0; 2];
    // SAFETY: `fds` has room for the two descriptors pipe2 writes.
    let rc = unsafe { libc::pipe2(fds.as_mut_ptr(), libc::O_CLOEXEC) };
    assert_eq!(rc, 0, "pipe2: {}", std::io::Error::last_os_error());
    // SAFETY: both descriptors were just opened and are owned by nobody else.
    unsafe { (OwnedFd::from_raw_fd(fds[0]), OwnedFd::from_raw_fd(fds[1])) }
}

impl Browser {
    /// Starts Chromium with a phone-sized window (412×915) and opens `url`. Chromium's own log
    /// goes to `log`.
    pub fn open(url: &str, log: &Path) -> Browser {
        let profile = tempfile::tempdir().expect("profile dir");
        let (cmd_read, cmd_write) = pipe();
        let (ans_read, ans_write) = pipe();
        let (child_in, child_out) = (cmd_read.as_raw_fd(), ans_write.as_raw_fd());
        let mut command = Command::new("chromium");
        command
            .args([
                "--headless",
                "--no-sandbox",
                "--disable-gpu",
                "--disable-dev-shm-usage",
                "--disable-background-networking",
                "--disable-extensions",
                "--disable-sync",
                "--no-first-run",
                "--no-default-browser-check",
                "--remote-debugging-pipe",
                "--window-size=412,915",
            ])
            .arg(format!("--user-data-dir={}", profile.path().display()))
            .arg("about:blank")
            .stdin(Stdio::null())
            .stdout(File::create(log).expect("browser log"))
            .stderr(File::create(log.with_extension("err.log")).expect("browser log"));
        // SAFETY: only async-signal-safe calls (dup2) between fork and exec.
        #[allow(unsafe_code)]
        unsafe {
            command.pre_exec(move || {
                if libc::dup2(child_in, 3) < 0 || libc::dup2(child_out, 4) < 0 {
                    return Err(std::io::Error::last_os_error());
                }
                Ok(())
            });
        }
        let child = command.spawn().expect("start chromium (Debian package `chromium`)");
        drop((cmd_read, ans_write));
        let answers: Arc<(Mutex<Answers>, Condvar)> = Arc::default();
        let sink = answers.clone();
        std::thread::spawn(move || {
            let mut reader = BufReader::new(File::from(ans_read));
            loop {
                let mut message = Vec::new();
                match reader.read_until(0, &mut message) {
                    Ok(0) | Err(_) => break,
                    Ok(_) => {}
                }
                message.pop_if(|b| *b == 0);
                let Ok(value) = serde_json::from_slice::<Value>(&message) else { continue };
                if let Some(id) = value["id"].as_u64() {
                    sink.0.lock().unwrap_or_else(|p| p.into_inner()).by_id.insert(id, value);
                    sink.1.notify_all();
                }
            }
            sink.0.lock().unwrap_or_else(|p| p.into_inner()).closed = true;
            sink.1.notify_all();
        });
        let mut browser = Browser {
            child,
            commands: File::from(cmd_write),
            answers,
            next_id: 0,
            session: String::new(),
            _profile: profile,
        };
        let target = browser.call("Target.createTarget", json!({ "url": url }), false);
        let target_id = target["targetId"].as_str().expect("targetId").to_owned();
        let attached = browser.call("Target.attachToTarget", json!({ "targetId": target_id, "flatten": true }), false);
        browser.session = attached["sessionId"].as_str().expect("sessionId").to_owned();
        browser.call("Page.enable", json!({}), true);
        browser
    }

    fn call(&mut self, method: &str, params: Value, in_page: bool) -> Value {
        self.next_id += 1;
        let id = self.next_id;
        let mut message = json!({ "id": id, "method": method, "params": params });
        if in_page {
            message["sessionId"] = self.session.clone().into();
        }
        let mut bytes = serde_json::to_vec(&message).expect("JSON");
        bytes.push(0);
        self.commands.write_all(&bytes).expect("send to chromium");
        let deadline = Instant::now() + Duration::from_secs(30);
        let (lock, cv) = &*self.answers;
        let mut answers = lock.lock().unwrap_or_else(|p| p.into_inner());
        loop {
            if let Some(answer) = answers.by_id.remove(&id) {
                assert!(answer.get("error").is_none(), "{method} failed: {answer}");
                return answer["result"].clone();
            }
            assert!(!answers.closed, "chromium closed its pipe during {method}");
            let left = deadline.saturating_duration_since(Instant::now());
            assert!(!left.is_zero(), "chromium did not answer {method} within 30 s");
            answers = cv.wait_timeout(answers, left).unwrap_or_else(|p| p.into_inner()).0;
        }
    }

    /// The value of a JavaScript expression in the page (promises awaited). An exception in it
    /// fails the test.
    pub fn eval(&mut self, expression: &str) -> Value {
        let result = self.call(
            "Runtime.evaluate",
            json!({ "expression": expression, "returnByValue": true, "awaitPromise": true }),
            true,
        );
        assert!(result.get("exceptionDetails").is_none(), "`{expression}` threw: {result}");
        result["result"]["value"].clone()
    }

    /// Evaluates `expression` every 50 ms until it is truthy; returns its value and how long it
    /// took.
    pub fn wait_for(&mut self, timeout: Duration, what: &str, expression: &str) -> (Value, Duration) {
        let started = Instant::now();
        loop {
            let value = self.eval(expression);
            let truthy = match &value {
                Value::Null => false,
                Value::Bool(b) => *b,
                Value::String(s) => !s.is_empty(),
                Value::Number(n) => n.as_f64() != Some(0.0),
                _ => true,
            };
            if truthy {
                return (value, started.elapsed());
            }
            let page = self.eval("document.body ? document.body.innerText : ''");
            assert!(
                started.elapsed() < timeout,
                "timed out after {timeout:?} waiting for {what}; the page shows:\n{page}"
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// A PNG of the page as shown (the whole page, not only the window).
    pub fn screenshot(&mut self) -> Vec<u8> {
        let shot = self.call("Page.captureScreenshot", json!({ "format": "png", "captureBeyondViewport": true }), true);
        base64_decode(shot["data"].as_str().expect("screenshot data"))
    }
}

impl Drop for Browser {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn base64_decode(text: &str) -> Vec<u8> {
    let value = |c: u8| match c {
        b'A'..=b'Z' => Some(c - b'A'),
        b'a'..=b'z' => Some(c - b'a' + 26),
        b'0'..=b'9' => Some(c - b'0' + 52),
        b'+' => Some(62),
        b'/' => Some(63),
        _ => None,
    };
    let mut out = Vec::with_capacity(text.len() * 3 / 4);
    let (mut acc, mut bits) = (0u32, 0);
    for v in text.bytes().filter_map(value) {
        acc = (acc << 6) | u32::from(v);
        bits += 6;
        if bits >= 8 {
            bits -= 8;
            out.push((acc >> bits) as u8);
        }
    }
    out
}

/// How much of a PNG is not its background: the share of pixels that differ from the most common
/// colour, and the number of distinct colours. A blank page is (0.0, 1).
pub fn png_ink(png_bytes: &[u8]) -> (f64, usize) {
    let decoder = png::Decoder::new(std::io::Cursor::new(png_bytes));
    let mut reader = decoder.read_info().expect("a PNG");
    let mut buf = vec![0; reader.output_buffer_size()];
    let info = reader.next_frame(&mut buf).expect("PNG frame");
    let channels = info.color_type.samples();
    let mut counts: HashMap<&[u8], usize> = HashMap::new();
    for px in buf[..info.buffer_size()].chunks_exact(channels) {
        *counts.entry(px).or_default() += 1;
    }
    let total: usize = counts.values().sum();
    let background = counts.values().copied().max().unwrap_or(0);
    ((total - background) as f64 / total.max(1) as f64, counts.len())
}

#[cfg(test)]
mod tests {
    #[test]
    fn base64_of_known_text() {
        assert_eq!(super::base64_decode("aGVsbG8gd29ybGQ="), b"hello world");
        assert_eq!(super::base64_decode("YQ=="), b"a");
    }
}
