//! Label printer status replies: ZPL `~HS` and `~HQES`, TSPL, ESC/POS and EPL2
//! (`firmware_bridge::printer::status`), plus the summaries (`status()`) built from them.
//!
//! Input: the whole input is the reply for ZPL and EPL; byte 0 and 1 are the ESC/POS request
//! number and reply byte; byte 0 is the TSPL status byte.
#![no_main]

use firmware_bridge::printer::status::{
    parse_epl_status, parse_escpos_status, parse_tspl_status, parse_zpl_hqes, parse_zpl_hs,
};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(hs) = parse_zpl_hs(data) {
        let _ = hs.status().is_ready();
    }
    if let Ok(hqes) = parse_zpl_hqes(data) {
        let _ = hqes.status().is_ready();
    }
    if let Ok(status) = parse_epl_status(data) {
        let _ = status.is_ready();
    }
    if let Some(&byte) = data.first() {
        let _ = parse_tspl_status(byte).is_ready();
    }
    if let [n, byte, ..] = data {
        let _ = parse_escpos_status(*n, *byte);
        let _ = parse_escpos_status(n % 4 + 1, *byte);
    }
});
