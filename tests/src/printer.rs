//! A Zebra-style label printer for tests: answers `~HS` with the three host-status strings for
//! its current state (ready, paper out, head open, or silent), and keeps every other byte it
//! receives — the labels — so a test can count exactly what would have been printed. It runs on
//! the device end of a pty pair or as a raw TCP 9100 listener.

// Test support: a broken test set-up should fail loudly where it breaks.
#![allow(clippy::unwrap_used)]

use std::io::{Read, Write};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// What the printer reports.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PrinterState {
    Ready,
    PaperOut,
    HeadOpen,
    /// Answers nothing (powered off behind a live adapter, or a model that stays mute).
    Silent,
}

fn host_status(state: PrinterState) -> Vec<u8> {
    let (paper, head) = match state {
        PrinterState::PaperOut => (1, 0),
        PrinterState::HeadOpen => (0, 1),
        _ => (0, 0),
    };
    format!(
        "\x02030,{paper},0,1245,000,0,0,0,000,0,0,0\x03\r\n\x02001,0,{head},0,1,2,4,0,00000000,1,000\x03\r\n\x021234,0\x03\r\n"
    )
    .into_bytes()
}

/// See the module documentation.
#[derive(Debug)]
pub struct SimulatedPrinter {
    state: Arc<Mutex<PrinterState>>,
    received: Arc<Mutex<Vec<u8>>>,
    pub status_requests: Arc<Mutex<u64>>,
    stop: Arc<AtomicBool>,
    threads: Vec<std::thread::JoinHandle<()>>,
    /// The TCP port, when listening on TCP.
    pub port: Option<u16>,
}

impl SimulatedPrinter {
    fn new() -> SimulatedPrinter {
        SimulatedPrinter {
            state: Arc::new(Mutex::new(PrinterState::Ready)),
            received: Arc::default(),
            status_requests: Arc::default(),
            stop: Arc::default(),
            threads: Vec::new(),
            port: None,
        }
    }

    fn serve<S: Read + Write + Send + 'static>(&mut self, mut stream: S) {
        let (state, received, requests, stop) =
            (self.state.clone(), self.received.clone(), self.status_requests.clone(), self.stop.clone());
        self.threads.push(std::thread::spawn(move || {
            let mut pending: Vec<u8> = Vec::new();
            let mut buf = [0u8; 4096];
            while !stop.load(Ordering::SeqCst) {
                match stream.read(&mut buf) {
                    Ok(0) => return,
                    Ok(n) => pending.extend_from_slice(&buf[..n]),
                    Err(e) if matches!(e.kind(), std::io::ErrorKind::TimedOut | std::io::ErrorKind::WouldBlock) => {
                        continue;
                    }
                    Err(_) => return,
                }
                // Status requests are answered; everything else is label data.
                while let Some(pos) = pending.windows(3).position(|w| w == b"~HS") {
                    received.lock().unwrap().extend_from_slice(&pending[..pos]);
                    pending.drain(..pos + 3);
                    *requests.lock().unwrap() += 1;
                    let s = *state.lock().unwrap();
                    if s != PrinterState::Silent && stream.write_all(&host_status(s)).is_err() {
                        return;
                    }
                }
                // Keep a possible partial "~H" for the next read.
                let keep = if pending.ends_with(b"~H") {
                    2
                } else if pending.ends_with(b"~") {
                    1
                } else {
                    0
                };
                let cut = pending.len() - keep;
                received.lock().unwrap().extend_from_slice(&pending[..cut]);
                pending.drain(..cut);
            }
        }));
    }

    /// On the device end of a pty pair.
    pub fn on_pty(port: &crate::pty::VirtualPort) -> SimulatedPrinter {
        let mut p = Self::new();
        p.serve(port.device_handle());
        p
    }

    /// A raw TCP 9100-style listener on a free port (accepts connections one after another).
    pub fn on_tcp() -> SimulatedPrinter {
        let mut p = Self::new();
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        p.port = Some(listener.local_addr().unwrap().port());
        listener.set_nonblocking(true).unwrap();
        let (state, received, requests, stop) =
            (p.state.clone(), p.received.clone(), p.status_requests.clone(), p.stop.clone());
        p.threads.push(std::thread::spawn(move || {
            let mut inner = SimulatedPrinter {
                state,
                received,
                status_requests: requests,
                stop: stop.clone(),
                threads: Vec::new(),
                port: None,
            };
            while !stop.load(Ordering::SeqCst) {
                match listener.accept() {
                    Ok((conn, _)) => {
                        conn.set_nonblocking(false).unwrap();
                        conn.set_read_timeout(Some(Duration::from_millis(100))).unwrap();
                        inner.serve(conn);
                    }
                    Err(_) => std::thread::sleep(Duration::from_millis(20)),
                }
            }
            inner.stop.store(true, Ordering::SeqCst);
            for t in inner.threads.drain(..) {
                let _ = t.join();
            }
        }));
        p
    }

    pub fn set(&self, state: PrinterState) {
        *self.state.lock().unwrap() = state;
    }

    /// Every label byte received so far.
    pub fn received(&self) -> Vec<u8> {
        self.received.lock().unwrap().clone()
    }

    /// How many times `needle` appears in what was received.
    pub fn count(&self, needle: &[u8]) -> usize {
        self.received().windows(needle.len()).filter(|w| *w == needle).count()
    }
}

impl Drop for SimulatedPrinter {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        for t in self.threads.drain(..) {
            let _ = t.join();
        }
    }
}
