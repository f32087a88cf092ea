//! The I/O shell around a [`DeviceDecoder`]: one thread per device that opens the port (serial,
//! or raw TCP to a serial-device server), reads with a timeout, writes poll requests and queued
//! commands, and reopens with backoff when the device goes away. Everything it learns goes to a
//! callback as [`LinkEvent`]s, in order.
//!
//! Why a thread and not async: `serialport` is blocking, and a thread per port that sleeps in
//! `poll(2)` costs nothing while the device is idle. The read timeout bounds how late the thread
//! notices a stop request or a queued command (a quarter of a second).
//!
//! Unplug shows up as a read error (`EIO`, or `BrokenPipe` from POLLHUP) or a zero-byte read; a
//! polled scale that stops answering is reported as unresponsive without closing the port.

use std::io::{self, Read, Write};
use std::net::{TcpStream, ToSocketAddrs};
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, mpsc};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};

use crate::device::{DeviceDecoder, DeviceOutput};

/// The longest the thread sleeps in a read before it looks at its stop flag and command queue.
const IDLE_WAKE: Duration = Duration::from_millis(250);

/// Parity of a serial line.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum Parity {
    /// No parity bit.
    #[default]
    None,
    /// Odd parity.
    Odd,
    /// Even parity.
    Even,
}

/// Flow control of a serial line.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum FlowControl {
    /// None.
    #[default]
    None,
    /// XON/XOFF.
    Software,
    /// RTS/CTS.
    Hardware,
}

/// Serial port settings.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SerialSettings {
    /// The device path; prefer `/dev/serial/by-id/…`, which survives re-plugging in another socket.
    pub path: PathBuf,
    /// Baud rate.
    pub baud: u32,
    /// 5 to 8.
    pub data_bits: u8,
    /// Parity.
    pub parity: Parity,
    /// 1 or 2.
    pub stop_bits: u8,
    /// Flow control.
    pub flow_control: FlowControl,
}

impl SerialSettings {
    /// 9600 8N1, no flow control.
    pub fn new(path: impl Into<PathBuf>) -> SerialSettings {
        SerialSettings {
            path: path.into(),
            baud: 9600,
            data_bits: 8,
            parity: Parity::None,
            stop_bits: 1,
            flow_control: FlowControl::None,
        }
    }

    /// `9600 8N1`-style summary for logs and status.
    pub fn summary(&self) -> String {
        let parity = match self.parity {
            Parity::None => 'N',
            Parity::Odd => 'O',
            Parity::Even => 'E',
        };
        format!("{} {}{}{}", self.baud, self.data_bits, parity, self.stop_bits)
    }

    fn open(&self) -> Result<Box<dyn Port>, String> {
        let data_bits = match self.data_bits {
            5 => serialport::DataBits::Five,
            6 => serialport::DataBits::Six,
            7 => serialport::DataBits::Seven,
            8 => serialport::DataBits::Eight,
            n => return Err(format!("data_bits must be 5 to 8, not {n}")),
        };
        let stop_bits = match self.stop_bits {
            1 => serialport::StopBits::One,
            2 => serialport::StopBits::Two,
            n => return Err(format!("stop_bits must be 1 or 2, not {n}")),
        };
        let parity = match self.parity {
            Parity::None => serialport::Parity::None,
            Parity::Odd => serialport::Parity::Odd,
            Parity::Even => serialport::Parity::Even,
        };
        let flow = match self.flow_control {
            FlowControl::None => serialport::FlowControl::None,
            FlowControl::Software => serialport::FlowControl::Software,
            FlowControl::Hardware => serialport::FlowControl::Hardware,
        };
        let port = serialport::new(self.path.to_string_lossy(), self.baud)
            .data_bits(data_bits)
            .stop_bits(stop_bits)
            .parity(parity)
            .flow_control(flow)
            .timeout(IDLE_WAKE)
            .open_native()
            .map_err(|e| explain_open_error(&self.path, &e))?;
        Ok(Box::new(port))
    }
}

fn explain_open_error(path: &std::path::Path, error: &serialport::Error) -> String {
    let shown = path.display();
    match error.kind() {
        serialport::ErrorKind::NoDevice => format!("{shown} is not there (unplugged, or the path is wrong)"),
        serialport::ErrorKind::Io(io::ErrorKind::NotFound) => {
            format!(
                "{shown} does not exist (unplugged, or the path is wrong; `dockhand devices` lists the ports present)"
            )
        }
        serialport::ErrorKind::Io(io::ErrorKind::PermissionDenied) => {
            format!("permission denied on {shown} (the service user must be in the `dialout` group)")
        }
        serialport::ErrorKind::InvalidInput => format!("{shown} refused the settings: {error}"),
        _ => format!("cannot open {shown}: {error}"),
    }
}

/// Where a device is reached.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Transport {
    /// A local serial port.
    Serial(SerialSettings),
    /// Raw TCP to a serial-device server (`host:port`).
    Tcp(String),
}

impl Transport {
    /// The path or address, for messages.
    pub fn describe(&self) -> String {
        match self {
            Transport::Serial(s) => format!("{} ({})", s.path.display(), s.summary()),
            Transport::Tcp(addr) => format!("tcp://{addr}"),
        }
    }

    /// Opens the port once (used by the link and by `check-config --connect`).
    pub fn open(&self) -> Result<Box<dyn Port>, String> {
        match self {
            Transport::Serial(s) => s.open(),
            Transport::Tcp(addr) => {
                let target = addr
                    .to_socket_addrs()
                    .map_err(|e| format!("cannot resolve {addr}: {e}"))?
                    .next()
                    .ok_or_else(|| format!("{addr} resolves to no address"))?;
                let stream = TcpStream::connect_timeout(&target, Duration::from_secs(5))
                    .map_err(|e| format!("cannot connect to {addr}: {e}"))?;
                let _ = stream.set_nodelay(true);
                Ok(Box::new(TcpPort(stream)))
            }
        }
    }
}

/// A byte pipe with a read timeout.
pub trait Port: Read + Write + Send {
    /// Sets how long a read waits for the first byte.
    fn set_read_timeout(&mut self, timeout: Duration) -> io::Result<()>;
}

impl Port for serialport::TTYPort {
    fn set_read_timeout(&mut self, timeout: Duration) -> io::Result<()> {
        serialport::SerialPort::set_timeout(self, timeout).map_err(io::Error::other)
    }
}

struct TcpPort(TcpStream);

impl Read for TcpPort {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        self.0.read(buf)
    }
}

impl Write for TcpPort {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.0.write(buf)
    }
    fn flush(&mut self) -> io::Result<()> {
        self.0.flush()
    }
}

impl Port for TcpPort {
    fn set_read_timeout(&mut self, timeout: Duration) -> io::Result<()> {
        self.0.set_read_timeout(Some(timeout.max(Duration::from_millis(1))))
    }
}

/// Timing of a link.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LinkOptions {
    /// How often to send the poll request (demand-mode scales); `None` never polls.
    pub poll_interval: Option<Duration>,
    /// A polled device that has not answered for this long is reported unresponsive.
    pub answer_timeout: Duration,
    /// First reopen delay; doubles up to `reopen_max`.
    pub reopen_initial: Duration,
    /// Longest reopen delay.
    pub reopen_max: Duration,
}

impl Default for LinkOptions {
    fn default() -> Self {
        LinkOptions {
            poll_interval: None,
            answer_timeout: Duration::from_secs(3),
            reopen_initial: Duration::from_millis(250),
            reopen_max: Duration::from_secs(5),
        }
    }
}

/// What the link reports.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LinkEvent {
    /// The port is open (again) and, for polled devices, answering.
    Connected {
        /// Path and settings.
        detail: String,
    },
    /// The port is gone or cannot be opened. Reported once per outage, not once per retry.
    Disconnected {
        /// Why, in words a technician can act on.
        reason: String,
    },
    /// The port is open but a polled device does not answer.
    Unresponsive {
        /// What was asked and for how long.
        reason: String,
    },
    /// Something the device said.
    Output(DeviceOutput),
    /// Every byte of the command sent with this tag was written.
    Written {
        /// The tag given to [`DeviceLink::send_tagged`].
        tag: u64,
    },
    /// Writing the command sent with this tag failed; part of it may have gone out.
    NotWritten {
        /// The tag.
        tag: u64,
        /// Why.
        error: String,
    },
}

/// A running device thread. Dropping it stops the thread (and waits for it).
#[derive(Debug)]
pub struct DeviceLink {
    stop: Arc<AtomicBool>,
    commands: mpsc::Sender<(Vec<u8>, Option<u64>)>,
    thread: Option<JoinHandle<()>>,
}

impl DeviceLink {
    /// Starts the device thread. `on_event` runs on that thread and should hand events off
    /// quickly (into a channel).
    pub fn spawn(
        name: &str,
        transport: Transport,
        decoder: DeviceDecoder,
        options: LinkOptions,
        on_event: impl FnMut(LinkEvent) + Send + 'static,
    ) -> io::Result<DeviceLink> {
        let stop = Arc::new(AtomicBool::new(false));
        let (commands, queue) = mpsc::channel();
        let worker = Worker { transport, decoder, options, on_event, queue, stop: stop.clone(), epoch: Instant::now() };
        let thread = std::thread::Builder::new().name(format!("device-{name}")).spawn(move || worker.run())?;
        Ok(DeviceLink { stop, commands, thread: Some(thread) })
    }

    /// Queues bytes to write to the device (a tare command, a label). Written in order, after
    /// the current read returns (within a quarter of a second).
    pub fn send(&self, bytes: Vec<u8>) {
        let _ = self.commands.send((bytes, None));
    }

    /// Like [`DeviceLink::send`], and reports [`LinkEvent::Written`] or [`LinkEvent::NotWritten`]
    /// with `tag` (a label: the caller must know whether it went out). Commands queued while the
    /// device is away are written when it is back.
    pub fn send_tagged(&self, bytes: Vec<u8>, tag: u64) {
        let _ = self.commands.send((bytes, Some(tag)));
    }

    /// Stops the thread and waits for it.
    pub fn stop(mut self) {
        self.shutdown();
    }

    fn shutdown(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

impl Drop for DeviceLink {
    fn drop(&mut self) {
        self.shutdown();
    }
}

struct Worker<F> {
    transport: Transport,
    decoder: DeviceDecoder,
    options: LinkOptions,
    on_event: F,
    queue: mpsc::Receiver<(Vec<u8>, Option<u64>)>,
    stop: Arc<AtomicBool>,
    epoch: Instant,
}

/// Why a session with an open port ended.
enum SessionEnd {
    Stopped,
    Lost(String),
}

impl<F: FnMut(LinkEvent)> Worker<F> {
    fn run(mut self) {
        let mut delay = self.options.reopen_initial;
        // The last outage reason reported, so a device that stays away is reported once.
        let mut reported: Option<String> = None;
        while !self.stopped() {
            match self.transport.open() {
                Ok(port) => {
                    delay = self.options.reopen_initial;
                    self.decoder.reset();
                    (self.on_event)(LinkEvent::Connected { detail: self.transport.describe() });
                    match self.session(port) {
                        SessionEnd::Stopped => return,
                        SessionEnd::Lost(reason) => {
                            (self.on_event)(LinkEvent::Disconnected { reason: reason.clone() });
                            reported = Some(reason);
                        }
                    }
                }
                Err(reason) => {
                    if reported.as_deref() != Some(reason.as_str()) {
                        (self.on_event)(LinkEvent::Disconnected { reason: reason.clone() });
                        reported = Some(reason);
                    }
                    if !self.sleep(delay) {
                        return;
                    }
                    delay = (delay * 2).min(self.options.reopen_max);
                }
            }
        }
    }

    fn stopped(&self) -> bool {
        self.stop.load(Ordering::SeqCst)
    }

    fn now_ms(&self) -> u64 {
        self.epoch.elapsed().as_millis() as u64
    }

    /// Sleeps in short steps so a stop request is seen; `false` when stopped.
    fn sleep(&self, total: Duration) -> bool {
        let end = Instant::now() + total;
        while Instant::now() < end {
            if self.stopped() {
                return false;
            }
            std::thread::sleep(IDLE_WAKE.min(end.saturating_duration_since(Instant::now())));
        }
        !self.stopped()
    }

    fn session(&mut self, mut port: Box<dyn Port>) -> SessionEnd {
        let request = self.options.poll_interval.and(self.decoder.poll_request());
        let mut next_poll = Instant::now();
        let mut last_answer = Instant::now();
        let mut unresponsive = false;
        let mut buf = [0u8; 1024];
        loop {
            if self.stopped() {
                return SessionEnd::Stopped;
            }
            while let Ok((bytes, tag)) = self.queue.try_recv() {
                match port.write_all(&bytes).and_then(|()| port.flush()) {
                    Ok(()) => {
                        if let Some(tag) = tag {
                            (self.on_event)(LinkEvent::Written { tag });
                        }
                    }
                    Err(e) => {
                        if let Some(tag) = tag {
                            (self.on_event)(LinkEvent::NotWritten { tag, error: e.to_string() });
                        }
                        return SessionEnd::Lost(format!("write failed: {e}"));
                    }
                }
            }
            let now = Instant::now();
            if let (Some(req), Some(interval)) = (&request, self.options.poll_interval) {
                if now >= next_poll {
                    if let Err(e) = port.write_all(req).and_then(|()| port.flush()) {
                        return SessionEnd::Lost(format!("write failed: {e}"));
                    }
                    next_poll = now + interval;
                }
                if !unresponsive && now.duration_since(last_answer) > self.options.answer_timeout {
                    unresponsive = true;
                    let reason = format!(
                        "no answer to {:?} for {} ms (scale off, wrong protocol or wrong settings)",
                        String::from_utf8_lossy(req),
                        self.options.answer_timeout.as_millis()
                    );
                    (self.on_event)(LinkEvent::Unresponsive { reason });
                }
            }
            let mut wait = IDLE_WAKE;
            if request.is_some() {
                wait = wait.min(next_poll.saturating_duration_since(now));
            }
            if let Some(deadline) = self.decoder.deadline() {
                wait = wait.min(Duration::from_millis(deadline.saturating_sub(self.now_ms())));
            }
            if let Err(e) = port.set_read_timeout(wait.max(Duration::from_millis(1))) {
                return SessionEnd::Lost(format!("cannot set the read timeout: {e}"));
            }
            match port.read(&mut buf) {
                Ok(0) => return SessionEnd::Lost("the device closed the connection".to_owned()),
                Ok(n) => {
                    let outputs = self.decoder.push(&buf[..n], self.now_ms());
                    if outputs.iter().any(|o| !matches!(o, DeviceOutput::Garbled(_))) {
                        last_answer = Instant::now();
                        if unresponsive {
                            unresponsive = false;
                            (self.on_event)(LinkEvent::Connected { detail: self.transport.describe() });
                        }
                    }
                    for output in outputs {
                        (self.on_event)(LinkEvent::Output(output));
                    }
                }
                Err(e) if matches!(e.kind(), io::ErrorKind::TimedOut | io::ErrorKind::WouldBlock) => {}
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) if e.kind() == io::ErrorKind::BrokenPipe => {
                    return SessionEnd::Lost("the device hung up (unplugged)".to_owned());
                }
                Err(e) => return SessionEnd::Lost(format!("read failed: {e}")),
            }
            for output in self.decoder.poll(self.now_ms()) {
                (self.on_event)(LinkEvent::Output(output));
            }
        }
    }
}
