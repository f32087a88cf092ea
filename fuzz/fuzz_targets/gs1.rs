//! GS1 data on its own: `firmware_bridge::scanner::gs1::parse_element_string` (AIs, fixed and
//! variable lengths, FNC1/`<GS>` separators, dates, check digits) and `parse_digital_link` (GS1
//! Digital Link URIs in QR/DataMatrix codes), then `interpret` on what parsed.
//!
//! Input layout: byte 0 picks the alternative FNC1 separator (none, `|`, `~` or `^`) and the
//! reference year for two-digit years; the rest is the element string, and, when it is UTF-8,
//! the URI.
#![no_main]

use firmware_bridge::scanner::gs1::{Gs1Options, interpret, parse_digital_link, parse_element_string};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Some((&selector, rest)) = data.split_first() else { return };
    let mut opts = Gs1Options::new([2026, 1999, 2050, 9999][usize::from(selector >> 2) & 3]);
    opts.alt_separator = [None, Some(b'|'), Some(b'~'), Some(b'^')][usize::from(selector & 3)];
    let base = 3; // as after an AIM prefix such as `]C1`
    if let Ok(elements) = parse_element_string(rest, &opts, base) {
        let _ = interpret(elements, opts.reference_year);
    }
    if let Ok(uri) = std::str::from_utf8(rest) {
        if let Ok(Some(elements)) = parse_digital_link(uri, &opts, base) {
            let _ = interpret(elements, opts.reference_year);
        }
    }
});
