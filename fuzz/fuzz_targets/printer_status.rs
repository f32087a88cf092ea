//! Label printer status replies: ZPL `~HS` and `~HQES`, TSPL, ESC/POS and EPL2
//! (`firmware_bridge::printer::status`), plus the summaries (`status()`) built from them.
//!
//! Input: the whole input is the reply for ZPL and EPL; byte 0 and 1 are the ESC/POS request
//! number and reply byte; byte 0 is the TSPL status byte. Then the whole input goes through the
//! link framing (`printer::replies::StatusReplies`, every language, split at byte 0's value),
//! which must not depend on the split, and, as UTF-8, into a label field
//! (`printer::label::render`), which must stay one label with no `~` command in it.
#![no_main]

use firmware_bridge::printer::status::{
    parse_epl_status, parse_escpos_status, parse_tspl_status, parse_zpl_hqes, parse_zpl_hs,
};
use firmware_bridge::printer::label;
use firmware_bridge::printer::replies::{PrinterLanguage, StatusReplies};
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
    // As the printer link frames them: every language, the stream split in two.
    let cut = data.first().map_or(0, |&b| usize::from(b)).min(data.len());
    for language in [PrinterLanguage::Zpl, PrinterLanguage::Tspl, PrinterLanguage::Escpos, PrinterLanguage::Epl] {
        let mut replies = StatusReplies::new(language);
        let mut all = replies.push(&data[..cut]);
        all.extend(replies.push(&data[cut..]));
        let mut whole = StatusReplies::new(language);
        assert_eq!(all, whole.push(data), "framing depends on how the bytes were split");
    }
    // Label rendering: the input as field data never escapes its field.
    if let Ok(text) = std::str::from_utf8(data) {
        let values = std::collections::BTreeMap::from([("v".to_owned(), text.to_owned())]);
        if let Ok(zpl) = label::render("^XA^FO10,10^FD{{v}}^FS^XZ", &values) {
            assert_eq!(label::count_formats(&zpl), 1);
            assert_eq!(zpl.iter().filter(|&&b| b == b'~').count(), 0);
        }
    }
});
