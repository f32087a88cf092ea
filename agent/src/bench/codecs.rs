//! `dockhand bench codecs`: single-thread throughput of the device codecs in firmware-bridge on
//! real test vectors (devices.md) — scans with GS1 parsing, and each scale protocol's frames.

use std::hint::black_box;
use std::time::Instant;

use firmware_bridge::scale::toledo_8217::UnitMode;
use firmware_bridge::scale::{cas, mt_sics, nci, sma, toledo_8217, toledo_continuous};
use firmware_bridge::{ScanOptions, WeightUnit, decode_scan};

/// A named decode of one vector; true when it decoded.
type Case = (&'static str, Box<dyn Fn() -> bool>);

pub(crate) fn run(iterations: u64) -> Result<(), String> {
    let opts = ScanOptions::new(2026);
    let gs1: &[u8] = b"]C101095011015300031714112310AB-123\x1d21SER42";
    let ean: &[u8] = b"]E04006381333931";
    let frame = toledo_continuous::encode_frame([0x22, 0x30, 0x20], b"001250", b"000000");
    let cases: Vec<Case> = vec![
        ("scan: GS1-128 (GTIN, expiry, lot, serial)", Box::new(move || decode_scan(black_box(gs1), &opts).is_ok())),
        ("scan: EAN-13 with check digit", Box::new(move || decode_scan(black_box(ean), &opts).is_ok())),
        (
            "scale: MT-SICS `S S 12.345 g`",
            Box::new(|| mt_sics::parse_line(black_box(b"S S      12.345 g\r\n")).is_ok()),
        ),
        (
            "scale: Toledo continuous 18-byte frame",
            Box::new(move || toledo_continuous::decode_frame(black_box(&frame)).is_ok()),
        ),
        (
            "scale: Toledo 8217 `W` reply",
            Box::new(|| toledo_8217::parse_reply(black_box(b"\x02001.25\r"), UnitMode::Fixed(WeightUnit::Kg)).is_ok()),
        ),
        ("scale: SMA `1G 1.250kg`", Box::new(|| sma::parse_reply(black_box(b"\n 1G       1.250kg \r")).is_ok())),
        ("scale: NCI SCP-01 weight", Box::new(|| nci::parse_reply(black_box(b"\n0001.25LB\r\n00\r\x03")).is_ok())),
        ("scale: CAS 18-byte line", Box::new(|| cas::parse_line(black_box(b"ST,GS,+0001.23kg\r\n")).is_ok())),
    ];
    println!("single thread, {iterations} decodes each (release build)");
    for (name, decode) in cases {
        if !decode() {
            return Err(format!("{name}: the vector does not decode"));
        }
        let started = Instant::now();
        for _ in 0..iterations {
            black_box(decode());
        }
        let rate = iterations as f64 / started.elapsed().as_secs_f64();
        println!("{name:<46} {rate:>12.0} /s");
    }
    Ok(())
}
