//! Serial devices without hardware: a pair of pseudo-terminals joined by `socat`, one end at a
//! path the agent opens as its device (`<dir>/<name>`), the other held by the test as the
//! simulated device. Killing socat is unplugging the cable: the agent's end hangs up and the path
//! disappears; starting it again with the same links is plugging it back in.
//!
//! Simulated devices ([`MtSicsScale`], [`Toledo8217Scale`]) answer polls from a thread, the way
//! the firmware does; streaming devices are driven by the test through [`VirtualPort::write`].

// Test support: a broken test set-up should fail loudly where it breaks.
#![allow(clippy::unwrap_used)]

use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// A socat-joined pty pair.
#[derive(Debug)]
pub struct VirtualPort {
    /// What the agent opens.
    pub path: PathBuf,
    control: PathBuf,
    socat: Option<Child>,
    device: Option<serialport::TTYPort>,
}

impl VirtualPort {
    /// Creates `<dir>/<name>` (the agent's end) and plugs it in.
    pub fn start(dir: &Path, name: &str) -> VirtualPort {
        let mut port = VirtualPort {
            path: dir.join(name),
            control: dir.join(format!("{name}.device")),
            socat: None,
            device: None,
        };
        port.plug();
        port
    }

    /// Plugs the device in: socat creates both links, the test opens the device end.
    pub fn plug(&mut self) {
        assert!(self.socat.is_none(), "already plugged in");
        let child = Command::new("socat")
            .arg(format!("pty,raw,echo=0,link={}", self.path.display()))
            .arg(format!("pty,raw,echo=0,link={}", self.control.display()))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("socat must be installed for the serial device tests (scripts/test.sh installs it)");
        self.socat = Some(child);
        let deadline = Instant::now() + Duration::from_secs(10);
        while !(self.path.exists() && self.control.exists()) {
            assert!(Instant::now() < deadline, "socat did not create {}", self.path.display());
            std::thread::sleep(Duration::from_millis(10));
        }
        let device = serialport::new(self.control.to_string_lossy(), 9600)
            .timeout(Duration::from_millis(50))
            .open_native()
            .expect("open the device end of the pty pair");
        self.device = Some(device);
    }

    /// Pulls the cable: socat dies, both ptys close, the links disappear.
    pub fn unplug(&mut self) {
        self.device = None;
        if let Some(mut child) = self.socat.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
        // socat removes its links on a clean exit only; a killed one leaves them dangling.
        let _ = std::fs::remove_file(&self.path);
        let _ = std::fs::remove_file(&self.control);
    }

    /// Writes bytes as the device.
    pub fn write(&mut self, bytes: &[u8]) {
        let device = self.device.as_mut().expect("plugged in");
        device.write_all(bytes).unwrap();
        device.flush().unwrap();
    }

    /// A second handle on the device end, for a simulator thread.
    pub fn device_handle(&self) -> serialport::TTYPort {
        self.device.as_ref().expect("plugged in").try_clone_native().unwrap()
    }
}

impl Drop for VirtualPort {
    fn drop(&mut self) {
        self.unplug();
    }
}

/// What a simulated scale shows: a value in kg and whether it is stable, or motion only.
#[derive(Debug, Clone, PartialEq)]
pub enum Display {
    /// A weight (`"1.250"`) and whether it is stable.
    Weight(String, bool),
    /// Nothing but motion (8217 answers `?A`).
    Motion,
}

/// A scale firmware answering polls on a pty from its own thread, until dropped.
#[derive(Debug)]
pub struct SimulatedScale {
    pub display: Arc<Mutex<Display>>,
    /// Polls received.
    pub polls: Arc<Mutex<u64>>,
    stop: Arc<AtomicBool>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl SimulatedScale {
    fn spawn(mut port: serialport::TTYPort, answer: fn(&[u8], &Display) -> Option<Vec<u8>>) -> SimulatedScale {
        let display = Arc::new(Mutex::new(Display::Weight("0.000".into(), true)));
        let polls = Arc::new(Mutex::new(0));
        let stop = Arc::new(AtomicBool::new(false));
        let (d, p, s) = (display.clone(), polls.clone(), stop.clone());
        let thread = std::thread::spawn(move || {
            let mut pending = Vec::new();
            let mut buf = [0u8; 64];
            while !s.load(Ordering::SeqCst) {
                match port.read(&mut buf) {
                    Ok(0) => return,
                    Ok(n) => pending.extend_from_slice(&buf[..n]),
                    Err(e) if e.kind() == std::io::ErrorKind::TimedOut => continue,
                    Err(_) => return,
                }
                let shown = d.lock().unwrap().clone();
                if let Some(reply) = answer(&pending, &shown) {
                    pending.clear();
                    *p.lock().unwrap() += 1;
                    if port.write_all(&reply).is_err() {
                        return;
                    }
                }
            }
        });
        SimulatedScale { display, polls, stop, thread: Some(thread) }
    }

    /// An MT-SICS balance: `SI\r\n` → `S S      1.250 kg\r\n` (or `S D` while moving).
    pub fn mt_sics(port: &VirtualPort) -> SimulatedScale {
        Self::spawn(port.device_handle(), |pending, shown| {
            if !pending.ends_with(b"\r\n") {
                return None;
            }
            Some(match shown {
                Display::Weight(v, stable) => {
                    format!("S {} {v:>10} kg\r\n", if *stable { 'S' } else { 'D' }).into_bytes()
                }
                Display::Motion => b"S I\r\n".to_vec(),
            })
        })
    }

    /// A Toledo 8217 (demand mode): `W` → `<STX>01.250<CR>`, or `<STX>?A<CR>` in motion. Replies
    /// carry even parity in bit 7, as a 7E1 scale read at 8N1 does.
    pub fn toledo_8217(port: &VirtualPort) -> SimulatedScale {
        Self::spawn(port.device_handle(), |pending, shown| {
            if !pending.contains(&b'W') {
                return None;
            }
            let body = match shown {
                Display::Weight(v, true) => format!("{v:0>6}"),
                _ => "?A".to_owned(),
            };
            let mut reply = vec![0x02];
            reply.extend(body.bytes().map(even_parity));
            reply.push(even_parity(b'\r'));
            Some(reply)
        })
    }

    pub fn show(&self, display: Display) {
        *self.display.lock().unwrap() = display;
    }
}

impl Drop for SimulatedScale {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

/// Sets bit 7 so that the byte has an even number of ones.
pub fn even_parity(b: u8) -> u8 {
    let b = b & 0x7F;
    if b.count_ones() % 2 == 1 { b | 0x80 } else { b }
}

/// A Toledo continuous 18-byte frame for a weight in hundredths of a kg (`500` = 5.00 kg).
pub fn toledo_continuous_frame(hundredths: u32, moving: bool) -> Vec<u8> {
    // Status A: decimal point X.XX (4), count by 1 (bit 3 set); B: kg (bit 4), motion (bit 3).
    let a = 0x20 | 0x08 | 0x04;
    let b = 0x20 | 0x10 | if moving { 0x08 } else { 0 };
    let c = 0x20;
    let mut frame = vec![0x02, a, b, c];
    frame.extend(format!("{hundredths:06}").bytes());
    frame.extend(b"000000");
    frame.push(0x0D);
    let sum: u32 = frame.iter().map(|&x| u32::from(x)).sum();
    frame.push(((0x80 - (sum & 0x7F)) & 0x7F) as u8);
    frame
}
