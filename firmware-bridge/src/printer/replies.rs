//! A printer's answers to status requests, framed per printer language: what the serial or TCP
//! 9100 link sends to ask ([`PrinterLanguage::status_request`]) and a [`StatusReplies`] stream
//! that turns the bytes that come back — whole, split across reads, or after stray bytes — into
//! [`PrinterStatus`]es. A request with no answer in time is the caller's to decide
//! ([`PrinterStatus::no_response`]).

use serde::{Deserialize, Serialize};

use super::status::{self, PrinterStatus};

const STX: u8 = 0x02;
const ETX: u8 = 0x03;
/// Longest reply kept while waiting for its end.
const MAX_REPLY: usize = 1024;

/// The command language of a label or receipt printer.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum PrinterLanguage {
    /// Zebra ZPL II: `~HS`.
    #[default]
    Zpl,
    /// TSC/Gprinter TSPL: `<ESC>!?`, one byte back.
    Tspl,
    /// ESC/POS: `DLE EOT 2` (offline cause) and `DLE EOT 4` (paper sensor), one byte each.
    Escpos,
    /// Eltron/Zebra EPL2: `^ee`, a code line back.
    Epl,
}

impl PrinterLanguage {
    /// The bytes that ask for the status.
    pub fn status_request(self) -> Vec<u8> {
        match self {
            PrinterLanguage::Zpl => b"~HS".to_vec(),
            PrinterLanguage::Tspl => vec![0x1B, b'!', b'?'],
            PrinterLanguage::Escpos => [status::escpos_status_request(2), status::escpos_status_request(4)].concat(),
            PrinterLanguage::Epl => b"^ee\r\n".to_vec(),
        }
    }
}

/// Frames status replies. See the module documentation.
#[derive(Debug, Clone)]
pub struct StatusReplies {
    language: PrinterLanguage,
    buf: Vec<u8>,
}

impl StatusReplies {
    /// An empty stream for `language`.
    pub fn new(language: PrinterLanguage) -> StatusReplies {
        StatusReplies { language, buf: Vec::new() }
    }

    /// The language.
    pub fn language(&self) -> PrinterLanguage {
        self.language
    }

    /// Forgets a partial reply.
    pub fn reset(&mut self) {
        self.buf.clear();
    }

    /// Feeds bytes; returns every complete status they finish, in order. Replies that cannot be
    /// read are dropped (the next request asks again).
    pub fn push(&mut self, bytes: &[u8]) -> Vec<PrinterStatus> {
        self.buf.extend_from_slice(bytes);
        let mut out = Vec::new();
        loop {
            let taken = match self.language {
                PrinterLanguage::Zpl => self.take_zpl(),
                PrinterLanguage::Tspl => self.take_bytes(1).map(|b| Some(status::parse_tspl_status(b[0]))),
                PrinterLanguage::Escpos => self.take_bytes(2).map(|b| {
                    let a = status::parse_escpos_status(2, b[0]).ok()?;
                    let c = status::parse_escpos_status(4, b[1]).ok()?;
                    Some(merge(a, c))
                }),
                PrinterLanguage::Epl => self.take_line().map(|line| status::parse_epl_status(&line).ok()),
            };
            match taken {
                Some(Some(s)) => out.push(s),
                Some(None) => {}
                None => break,
            }
        }
        if self.buf.len() > MAX_REPLY {
            self.buf.clear();
        }
        out
    }

    fn take_bytes(&mut self, n: usize) -> Option<Vec<u8>> {
        (self.buf.len() >= n).then(|| self.buf.drain(..n).collect())
    }

    fn take_line(&mut self) -> Option<Vec<u8>> {
        let end = self.buf.iter().position(|&b| b == b'\n')?;
        let line: Vec<u8> = self.buf.drain(..=end).collect();
        Some(line)
    }

    /// `~HS`: three `<STX>…<ETX>` strings (each followed by CR LF).
    fn take_zpl(&mut self) -> Option<Option<PrinterStatus>> {
        let start = self.buf.iter().position(|&b| b == STX)?;
        self.buf.drain(..start);
        let mut seen = 0;
        let mut end = None;
        for (i, &b) in self.buf.iter().enumerate() {
            if b == ETX {
                seen += 1;
                if seen == 3 {
                    end = Some(i + 1);
                    break;
                }
            }
        }
        let mut end = end?;
        while end < self.buf.len() && matches!(self.buf[end], b'\r' | b'\n') {
            end += 1;
        }
        let reply: Vec<u8> = self.buf.drain(..end).collect();
        Some(status::parse_zpl_hs(&reply).ok().map(|s| s.status()))
    }
}

fn merge(mut a: PrinterStatus, b: PrinterStatus) -> PrinterStatus {
    for p in b.problems {
        if !a.problems.contains(&p) {
            a.problems.push(p);
        }
    }
    a.warnings.extend(b.warnings);
    a.busy |= b.busy;
    a
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;
    use crate::printer::PrinterProblem;

    const HS_PAPER_OUT: &[u8] =
        b"\x02030,1,0,1245,000,0,0,0,000,0,0,0\x03\r\n\x02001,0,1,0,1,2,4,0,00000000,1,000\x03\r\n\x021234,0\x03\r\n";
    const HS_READY: &[u8] =
        b"\x02030,0,0,1245,000,0,0,0,000,0,0,0\x03\r\n\x02001,0,0,0,1,2,4,0,00000000,1,000\x03\r\n\x021234,0\x03\r\n";

    #[test]
    fn zpl_host_status_split_across_reads_and_after_noise() {
        let mut r = StatusReplies::new(PrinterLanguage::Zpl);
        let mut bytes = b"noise".to_vec();
        bytes.extend_from_slice(HS_PAPER_OUT);
        let (a, b) = bytes.split_at(30);
        assert!(r.push(a).is_empty());
        let out = r.push(b);
        assert_eq!(out.len(), 1);
        assert!(out[0].problems.contains(&PrinterProblem::PaperOut));
        assert!(out[0].problems.contains(&PrinterProblem::HeadOpen));
        let out = r.push(HS_READY);
        assert!(out[0].is_ready(), "{out:?}");
    }

    #[test]
    fn tspl_escpos_and_epl() {
        let mut t = StatusReplies::new(PrinterLanguage::Tspl);
        assert!(t.push(&[0x00])[0].is_ready());
        assert!(t.push(&[0x04])[0].problems.contains(&PrinterProblem::PaperOut));
        let mut e = StatusReplies::new(PrinterLanguage::Escpos);
        assert!(e.push(&[0x12]).is_empty());
        assert!(e.push(&[0x12])[0].is_ready());
        assert!(e.push(&[0x12, 0x72])[0].problems.contains(&PrinterProblem::PaperOut));
        assert_eq!(PrinterLanguage::Escpos.status_request(), vec![0x10, 0x04, 0x02, 0x10, 0x04, 0x04]);
        let mut p = StatusReplies::new(PrinterLanguage::Epl);
        assert!(p.push(b"00\r\n")[0].is_ready());
    }

    proptest! {
        #[test]
        fn arbitrary_bytes_never_panic_and_chunking_does_not_matter(bytes in proptest::collection::vec(any::<u8>(), 0..400), cut in 0usize..400) {
            for language in [PrinterLanguage::Zpl, PrinterLanguage::Tspl, PrinterLanguage::Escpos, PrinterLanguage::Epl] {
                let mut whole = StatusReplies::new(language);
                let a = whole.push(&bytes);
                let mut split = StatusReplies::new(language);
                let cut = cut.min(bytes.len());
                let mut b = split.push(&bytes[..cut]);
                b.extend(split.push(&bytes[cut..]));
                prop_assert_eq!(a, b);
            }
        }
    }
}
