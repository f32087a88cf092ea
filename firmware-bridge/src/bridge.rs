//! The `firmware-bridge` program: bridges one serial scanner or scale on a small remote host to the gateway's
//! MQTT broker, where the dockhand agent treats it as one of its own devices (`transport =
//! "mqtt"` in its `[[device]]`). The device settings are the same keys as the agent's
//! `[[device]]`, as flags. Topics and messages: the `remote` module of the library.
//!
//! Exit codes: 0 after `--list`; 2 bad flags; 78 settings that cannot work (the same meaning as
//! the agent's, so `RestartPreventExitStatus=78` applies).

use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::mpsc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use crate::device::DeviceOutput;
use crate::link::{DeviceLink, FlowControl, LinkEvent, Parity, SerialSettings, Transport};
use crate::remote::{self, ReadingMessage, RemoteState, ScanMessage, StateMessage};
use crate::spec::{DeviceKind, DeviceSpec, ScaleProtocolName, ScaleSpec, ScannerSpec};
use crate::{WeightUnit, ports};
use clap::Parser;
use rumqttc::{Client, Event, LastWill, MqttOptions, Packet, QoS};

const EX_CONFIG: u8 = 78;

#[derive(Debug, Parser)]
#[command(version, about = "Bridge one serial scanner or scale to the dockhand gateway's MQTT broker.")]
struct Args {
    /// List the serial ports of this host and exit.
    #[arg(long)]
    list: bool,
    /// The gateway's broker, host:port.
    #[arg(long, default_value = "127.0.0.1:1883")]
    broker: String,
    #[arg(long)]
    username: Option<String>,
    /// File holding the broker password.
    #[arg(long)]
    password_file: Option<PathBuf>,
    /// Connect with TLS, verifying the broker's certificate against the system's CA certificates
    /// (implied by --ca-file and --client-cert-file).
    #[arg(long)]
    tls: bool,
    /// PEM file of the CA that signed the broker's certificate (TLS).
    #[arg(long)]
    ca_file: Option<PathBuf>,
    /// PEM client certificate, for a broker that requires one (TLS; with --client-key-file).
    #[arg(long, requires = "client_key_file")]
    client_cert_file: Option<PathBuf>,
    /// PEM key of the client certificate.
    #[arg(long, requires = "client_cert_file")]
    client_key_file: Option<PathBuf>,
    /// Site code (topics go under warehouse/<site>), as in the agent's [gateway] site.
    #[arg(long, required_unless_present = "list")]
    site: Option<String>,
    /// Topic prefix, when the agent's [mqtt] topic_prefix is set.
    #[arg(long)]
    topic_prefix: Option<String>,
    /// The device's name: the same as its [[device]] name in the agent's config.
    #[arg(long, required_unless_present = "list")]
    device: Option<String>,
    #[arg(long, value_parser = parse_kind, required_unless_present = "list")]
    kind: Option<DeviceKind>,
    /// Serial port (prefer /dev/serial/by-id/...).
    #[arg(long)]
    path: Option<PathBuf>,
    /// Or a serial-device server, host:port.
    #[arg(long)]
    address: Option<String>,
    #[arg(long, default_value_t = 9600)]
    baud: u32,
    #[arg(long, default_value_t = 8)]
    data_bits: u8,
    /// none, odd or even.
    #[arg(long, default_value = "none", value_parser = parse_parity)]
    parity: Parity,
    #[arg(long, default_value_t = 1)]
    stop_bits: u8,
    /// none, software or hardware.
    #[arg(long, default_value = "none", value_parser = parse_flow)]
    flow_control: FlowControl,
    /// Scales: mt-sics, toledo-continuous, toledo-8217, sma, nci, cas, pattern.
    #[arg(long)]
    protocol: Option<String>,
    /// Scales: fixed unit (kg, g, lb, oz, t).
    #[arg(long)]
    unit: Option<String>,
    /// protocol = pattern: the frame template.
    #[arg(long)]
    pattern: Option<String>,
    /// protocol = pattern: bytes that ask for a weight (C escapes \r \n allowed).
    #[arg(long)]
    request: Option<String>,
    #[arg(long, default_value_t = 250)]
    poll_interval_ms: u64,
    #[arg(long, default_value_t = 3000)]
    answer_timeout_ms: u64,
    /// Scanners: suffix ("\r\n" by default; "" for none). C escapes allowed.
    #[arg(long)]
    suffix: Option<String>,
    /// Scanners: prefix. C escapes allowed.
    #[arg(long)]
    prefix: Option<String>,
    #[arg(long)]
    inter_char_timeout_ms: Option<u64>,
    /// Scanners: a character accepted as FNC1 besides <GS>.
    #[arg(long)]
    fnc1: Option<char>,
    /// Printers: zpl, tspl, escpos or epl (how the status is asked).
    #[arg(long, default_value = "zpl", value_parser = parse_language)]
    language: crate::printer::replies::PrinterLanguage,
    /// Printers: how often the status is asked.
    #[arg(long, default_value_t = 1000)]
    status_interval_ms: u64,
    /// Printers: where the job journal is kept (job ids already printed).
    #[arg(long, default_value = "/var/lib/firmware-bridge")]
    state_dir: PathBuf,
}

fn parse_language(s: &str) -> Result<crate::printer::replies::PrinterLanguage, String> {
    use crate::printer::replies::PrinterLanguage;
    match s {
        "zpl" => Ok(PrinterLanguage::Zpl),
        "tspl" => Ok(PrinterLanguage::Tspl),
        "escpos" => Ok(PrinterLanguage::Escpos),
        "epl" => Ok(PrinterLanguage::Epl),
        _ => Err("zpl, tspl, escpos or epl".into()),
    }
}

fn parse_kind(s: &str) -> Result<DeviceKind, String> {
    match s {
        "scanner" => Ok(DeviceKind::Scanner),
        "scale" => Ok(DeviceKind::Scale),
        "printer" => Ok(DeviceKind::Printer),
        _ => Err("scanner, scale or printer".into()),
    }
}

fn parse_parity(s: &str) -> Result<Parity, String> {
    match s {
        "none" => Ok(Parity::None),
        "odd" => Ok(Parity::Odd),
        "even" => Ok(Parity::Even),
        _ => Err("none, odd or even".into()),
    }
}

fn parse_flow(s: &str) -> Result<FlowControl, String> {
    match s {
        "none" => Ok(FlowControl::None),
        "software" => Ok(FlowControl::Software),
        "hardware" => Ok(FlowControl::Hardware),
        _ => Err("none, software or hardware".into()),
    }
}

/// `\r`, `\n`, `\t`, `\\` and `\xHH` in a flag value (shells make control bytes awkward).
fn unescape(s: &str) -> Vec<u8> {
    let mut out = Vec::new();
    let bytes = s.as_bytes();
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'\\' && i + 1 < bytes.len() {
            let next = bytes[i + 1];
            let simple = match next {
                b'r' => Some(b'\r'),
                b'n' => Some(b'\n'),
                b't' => Some(b'\t'),
                b'\\' => Some(b'\\'),
                _ => None,
            };
            if let Some(b) = simple {
                out.push(b);
                i += 2;
                continue;
            }
            if next == b'x'
                && let Some(b) = s.get(i + 2..i + 4).and_then(|h| u8::from_str_radix(h, 16).ok())
            {
                out.push(b);
                i += 4;
                continue;
            }
        }
        out.push(bytes[i]);
        i += 1;
    }
    out
}

/// The program: parses the command line, runs until killed.
pub fn main() -> ExitCode {
    let args = Args::parse();
    if args.list {
        for port in ports::present_ports() {
            println!("{}  → {}", port.preferred_path().display(), port.node.display());
        }
        return ExitCode::SUCCESS;
    }
    match run(args) {
        Ok(()) => ExitCode::SUCCESS,
        Err(message) => {
            eprintln!("error: {message}");
            ExitCode::from(EX_CONFIG)
        }
    }
}

fn spec(args: &Args) -> Result<DeviceSpec, String> {
    match args.kind {
        Some(DeviceKind::Scanner) | None => Ok(DeviceSpec::Scanner(ScannerSpec {
            prefix: args.prefix.as_deref().map(unescape).filter(|p| !p.is_empty()),
            suffix: match args.suffix.as_deref() {
                None => Some(b"\r\n".to_vec()),
                Some("") => None,
                Some(s) => Some(unescape(s)),
            },
            inter_char_timeout: args.inter_char_timeout_ms.map(Duration::from_millis),
            fnc1: args.fnc1.and_then(|c| u8::try_from(c).ok()),
        })),
        Some(DeviceKind::Printer) => Ok(DeviceSpec::Printer(crate::spec::PrinterSpec {
            language: args.language,
            status_interval: Duration::from_millis(args.status_interval_ms.max(100)),
            answer_timeout: Duration::from_millis(args.answer_timeout_ms),
        })),
        Some(DeviceKind::Scale) => {
            let name = args.protocol.as_deref().ok_or("a scale needs --protocol")?;
            let protocol = ScaleProtocolName::parse(name)
                .ok_or_else(|| format!("--protocol {name}: use one of {}", ScaleProtocolName::NAMES))?;
            let unit = match &args.unit {
                None => None,
                Some(u) => Some(WeightUnit::parse(u).ok_or_else(|| format!("--unit {u}: use kg, g, lb, oz or t"))?),
            };
            Ok(DeviceSpec::Scale(ScaleSpec {
                unit,
                pattern: args.pattern.clone(),
                request: args.request.as_deref().map(unescape),
                poll_interval: Duration::from_millis(args.poll_interval_ms.max(20)),
                answer_timeout: Duration::from_millis(args.answer_timeout_ms),
                ..ScaleSpec::new(protocol)
            }))
        }
    }
}

fn run(args: Args) -> Result<(), String> {
    let site = args.site.clone().unwrap_or_default();
    let device = args.device.clone().unwrap_or_default();
    let prefix = args.topic_prefix.clone().unwrap_or_else(|| format!("warehouse/{site}"));
    let spec = spec(&args)?;
    let decoder = spec.decoder()?;
    let transport = match (&args.path, &args.address) {
        (Some(path), None) => Transport::Serial(SerialSettings {
            path: path.clone(),
            baud: args.baud,
            data_bits: args.data_bits,
            parity: args.parity,
            stop_bits: args.stop_bits,
            flow_control: args.flow_control,
        }),
        (None, Some(address)) => Transport::Tcp(address.clone()),
        _ => return Err("give exactly one of --path (serial) or --address (TCP)".into()),
    };
    let (host, port) = args
        .broker
        .rsplit_once(':')
        .and_then(|(h, p)| Some((h.to_owned(), p.parse::<u16>().ok()?)))
        .ok_or_else(|| format!("--broker {}: expected host:port", args.broker))?;

    let state_topic = remote::topic(&prefix, &device, remote::STATE);
    let offline = serde_json::to_string(&StateMessage { state: RemoteState::Offline, detail: None })
        .map_err(|e| e.to_string())?;
    let mut options = MqttOptions::new(format!("firmware-bridge-{site}-{device}"), host, port);
    options.set_keep_alive(Duration::from_secs(15));
    // A persistent session: scans published while the broker link was down are resent.
    options.set_clean_session(false);
    options.set_last_will(LastWill::new(&state_topic, offline, QoS::AtLeastOnce, true));
    if let Some(user) = &args.username {
        let password = match &args.password_file {
            Some(f) => std::fs::read_to_string(f)
                .map_err(|e| format!("cannot read --password-file {}: {e}", f.display()))?
                .trim_end()
                .to_owned(),
            None => String::new(),
        };
        options.set_credentials(user, password);
    }
    if args.tls || args.ca_file.is_some() || args.client_cert_file.is_some() {
        let tls = crate::tls::client_config(crate::tls::TlsPaths {
            ca_file: args.ca_file.as_deref(),
            client_cert_file: args.client_cert_file.as_deref(),
            client_key_file: args.client_key_file.as_deref(),
        })?;
        options.set_transport(rumqttc::Transport::tls_with_config(rumqttc::TlsConfiguration::Rustls(tls)));
    }
    if spec.kind() == DeviceKind::Printer {
        // Jobs are acknowledged to the broker only once printed (or answered).
        options.set_manual_acks(true);
        let (client, connection) = Client::new(options, 256);
        eprintln!("firmware-bridge: printer {device} at {} ← {prefix}/bridge/{device}/job", transport.describe());
        return crate::bridge_printer::run(
            client,
            connection,
            &prefix,
            &device,
            transport,
            decoder,
            spec.link_options(),
            &args.state_dir,
        );
    }
    // Room for a burst of scans while the broker is away; beyond it the device thread waits.
    let (client, mut connection) = Client::new(options, 1024);

    let (events_tx, events_rx) = mpsc::sync_channel::<LinkEvent>(1024);
    eprintln!("firmware-bridge: {device} ({:?}) at {} → {prefix}/bridge/{device}/", spec.kind(), transport.describe());
    let _link = DeviceLink::spawn(&device, transport, decoder, spec.link_options(), move |event| {
        let _ = events_tx.send(event);
    })
    .map_err(|e| format!("cannot start the device thread: {e}"))?;

    // The MQTT connection runs on its own thread; it reconnects by being polled again.
    std::thread::Builder::new()
        .name("mqtt".into())
        .spawn(move || {
            let mut failures: u32 = 0;
            for event in connection.iter() {
                match event {
                    Ok(Event::Incoming(Packet::ConnAck(_))) => {
                        failures = 0;
                        eprintln!("firmware-bridge: connected to the broker.");
                    }
                    Ok(_) => {}
                    Err(e) => {
                        failures += 1;
                        if failures == 1 || failures.is_power_of_two() {
                            eprintln!("firmware-bridge: {}; retrying.", explain_connection_error(&e.to_string()));
                        }
                        std::thread::sleep(Duration::from_secs(1));
                    }
                }
            }
        })
        .map_err(|e| format!("cannot start the MQTT thread: {e}"))?;

    let scan_topic = remote::topic(&prefix, &device, remote::SCAN);
    let reading_topic = remote::topic(&prefix, &device, remote::READING);
    // The last state, republished when the connection comes back is the broker's job (retained).
    for event in events_rx {
        let (topic, qos, retain, body) = match event {
            LinkEvent::Connected { detail } => state(&state_topic, RemoteState::Connected, detail),
            LinkEvent::Disconnected { reason } => {
                eprintln!("firmware-bridge: device disconnected: {reason}");
                state(&state_topic, RemoteState::Disconnected, reason)
            }
            LinkEvent::Unresponsive { reason } => {
                eprintln!("firmware-bridge: device not answering: {reason}");
                state(&state_topic, RemoteState::Unresponsive, reason)
            }
            LinkEvent::Output(DeviceOutput::Scan { scan, problem }) => {
                let message = ScanMessage {
                    id: uuid::Uuid::now_v7().to_string(),
                    at_ms: now_ms(),
                    scan: &scan,
                    problem: problem.as_deref(),
                };
                (scan_topic.clone(), QoS::AtLeastOnce, false, serde_json::to_string(&message).unwrap_or_default())
            }
            LinkEvent::Output(DeviceOutput::Reading(reading)) => {
                let message = ReadingMessage { at_ms: now_ms(), reading };
                (reading_topic.clone(), QoS::AtMostOnce, false, serde_json::to_string(&message).unwrap_or_default())
            }
            LinkEvent::Output(DeviceOutput::Garbled(_) | DeviceOutput::Printer(_))
            | LinkEvent::Written { .. }
            | LinkEvent::NotWritten { .. } => {
                continue;
            }
        };
        if qos == QoS::AtMostOnce {
            // Live readings never wait for a slow broker.
            let _ = client.try_publish(topic, qos, retain, body);
        } else if let Err(e) = client.publish(topic, qos, retain, body) {
            return Err(format!("the MQTT client stopped: {e}"));
        }
    }
    Ok(())
}

/// A broker connection error, with what to change on the command line.
pub(crate) fn explain_connection_error(text: &str) -> String {
    let hint = if text.contains("UnknownIssuer") || text.contains("invalid peer certificate") {
        ": the broker's certificate is not signed by a CA this bridge trusts — give --ca-file the CA that signed it"
    } else if text.contains("NotValidForName") {
        ": the broker's certificate does not name the host in --broker"
    } else if text.contains("CertificateRequired") || text.contains("certificate required") {
        ": the broker asks for a client certificate — give --client-cert-file and --client-key-file"
    } else if text.contains("BadUserNamePassword") || text.contains("NotAuthorized") {
        ": the broker refused the credentials — check --username and --password-file"
    } else if text.contains("refused") {
        ": nothing answers at --broker — is the broker running, and is this its port?"
    } else {
        ""
    };
    format!("cannot reach the broker ({text}){hint}")
}

fn state(topic: &str, state: RemoteState, detail: String) -> (String, QoS, bool, String) {
    let body = serde_json::to_string(&StateMessage { state, detail: Some(detail) }).unwrap_or_default();
    (topic.to_owned(), QoS::AtLeastOnce, true, body)
}

fn now_ms() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_millis() as u64)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unescape_handles_control_bytes() {
        assert_eq!(unescape(r"\r\n"), b"\r\n");
        assert_eq!(unescape(r"P\x0D\x0a"), b"P\r\n");
        assert_eq!(unescape(r"a\qb\"), b"a\\qb\\");
    }
}
