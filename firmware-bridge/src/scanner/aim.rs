//! AIM symbology identifiers (ISO/IEC 15424): the three-character `]Fm` prefix a scanner puts in
//! front of the data when "AIM Code ID transmission" is on. `F` names the symbology, `m` the
//! modifier. This module splits the prefix off and maps it to a symbology name and to whether the
//! data is a GS1 element string (`]C1`, `]e0`, `]d2`, `]Q3`, `]J1`).

use serde::{Serialize, Serializer};

/// The symbology a scan came from, as named in the `scan` payload's `symbology` field.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Symbology {
    /// `]C1` Code 128 with FNC1 in first position.
    Gs1_128,
    /// `]C0`, `]C2`, `]C4` plain Code 128.
    Code128,
    /// `]E0` EAN-13, UPC-A and UPC-E (transmitted as 13 digits).
    Ean13,
    /// `]E3` EAN-13/UPC with a 2- or 5-digit add-on in one packet.
    Ean13AddOn,
    /// `]E1`/`]E2` an add-on transmitted on its own.
    EanAddOn,
    /// `]E4` EAN-8.
    Ean8,
    /// `]e0`…`]e3` GS1 DataBar (and its composites).
    Gs1DataBar,
    /// `]d0`, `]d1`, `]d3`… Data Matrix.
    DataMatrix,
    /// `]d2` GS1 DataMatrix.
    Gs1DataMatrix,
    /// `]Q0`, `]Q1`, `]Q2`, `]Q4`… QR Code.
    Qr,
    /// `]Q3` GS1 QR Code.
    Gs1Qr,
    /// `]I0` Interleaved 2 of 5.
    Itf,
    /// `]I1` Interleaved 2 of 5 with check digit (ITF-14 on cartons).
    Itf14,
    /// `]J0` DotCode.
    DotCode,
    /// `]J1` GS1 DotCode.
    Gs1DotCode,
    /// `]A` Code 39.
    Code39,
    /// `]G` Code 93.
    Code93,
    /// `]F` Codabar.
    Codabar,
    /// `]L` PDF417 / MicroPDF417.
    Pdf417,
    /// `]z` Aztec.
    Aztec,
    /// `]U` MaxiCode.
    MaxiCode,
    /// A well-formed AIM id this table does not know.
    Unknown,
}

impl Symbology {
    /// The name used in the `scan` payload.
    pub fn as_str(self) -> &'static str {
        match self {
            Symbology::Gs1_128 => "gs1-128",
            Symbology::Code128 => "code-128",
            Symbology::Ean13 => "ean-13",
            Symbology::Ean13AddOn => "ean-13-addon",
            Symbology::EanAddOn => "ean-addon",
            Symbology::Ean8 => "ean-8",
            Symbology::Gs1DataBar => "gs1-databar",
            Symbology::DataMatrix => "datamatrix",
            Symbology::Gs1DataMatrix => "gs1-datamatrix",
            Symbology::Qr => "qr",
            Symbology::Gs1Qr => "gs1-qr",
            Symbology::Itf => "itf",
            Symbology::Itf14 => "itf-14",
            Symbology::DotCode => "dotcode",
            Symbology::Gs1DotCode => "gs1-dotcode",
            Symbology::Code39 => "code-39",
            Symbology::Code93 => "code-93",
            Symbology::Codabar => "codabar",
            Symbology::Pdf417 => "pdf417",
            Symbology::Aztec => "aztec",
            Symbology::MaxiCode => "maxicode",
            Symbology::Unknown => "unknown",
        }
    }

    /// `true` when the symbology always carries a GS1 element string (FNC1 in first position).
    pub fn implies_gs1(self) -> bool {
        matches!(
            self,
            Symbology::Gs1_128
                | Symbology::Gs1DataBar
                | Symbology::Gs1DataMatrix
                | Symbology::Gs1Qr
                | Symbology::Gs1DotCode
        )
    }
}

impl std::fmt::Display for Symbology {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

impl Serialize for Symbology {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.as_str())
    }
}

/// A parsed AIM identifier: symbology code character and modifier.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct AimId {
    /// The symbology code character (`C` in `]C1`).
    pub code: u8,
    /// The modifier character (`1` in `]C1`).
    pub modifier: u8,
}

impl AimId {
    /// The identifier as sent, e.g. `"]C1"`.
    pub fn as_string(&self) -> String {
        let mut s = String::with_capacity(3);
        s.push(']');
        s.push(char::from(self.code));
        s.push(char::from(self.modifier));
        s
    }

    /// The symbology this identifier names.
    pub fn symbology(&self) -> Symbology {
        match (self.code, self.modifier) {
            (b'C', b'1') => Symbology::Gs1_128,
            (b'C', _) => Symbology::Code128,
            (b'E', b'0') => Symbology::Ean13,
            (b'E', b'1' | b'2') => Symbology::EanAddOn,
            (b'E', b'3') => Symbology::Ean13AddOn,
            (b'E', b'4') => Symbology::Ean8,
            (b'e', _) => Symbology::Gs1DataBar,
            (b'd', b'2') => Symbology::Gs1DataMatrix,
            (b'd', _) => Symbology::DataMatrix,
            (b'Q', b'3') => Symbology::Gs1Qr,
            (b'Q', _) => Symbology::Qr,
            (b'I', b'1') => Symbology::Itf14,
            (b'I', _) => Symbology::Itf,
            (b'J', b'1') => Symbology::Gs1DotCode,
            (b'J', _) => Symbology::DotCode,
            (b'A', _) => Symbology::Code39,
            (b'G', _) => Symbology::Code93,
            (b'F', _) => Symbology::Codabar,
            (b'L', _) => Symbology::Pdf417,
            (b'z', _) => Symbology::Aztec,
            (b'U', _) => Symbology::MaxiCode,
            _ => Symbology::Unknown,
        }
    }
}

/// Splits a leading AIM identifier (`]` + letter + letter-or-digit) off `raw`.
/// Returns `None` when `raw` does not start with one.
pub fn split_aim(raw: &[u8]) -> Option<(AimId, &[u8])> {
    match raw {
        [b']', code, modifier, rest @ ..] if code.is_ascii_alphabetic() && modifier.is_ascii_alphanumeric() => {
            Some((AimId { code: *code, modifier: *modifier }, rest))
        }
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn sym(raw: &str) -> Symbology {
        split_aim(raw.as_bytes()).unwrap().0.symbology()
    }

    #[test]
    fn reference_identifiers_map_to_symbologies() {
        assert_eq!(sym("]C1x"), Symbology::Gs1_128);
        assert_eq!(sym("]C0x"), Symbology::Code128);
        assert_eq!(sym("]E0x"), Symbology::Ean13);
        assert_eq!(sym("]E4x"), Symbology::Ean8);
        assert_eq!(sym("]E3x"), Symbology::Ean13AddOn);
        assert_eq!(sym("]e0x"), Symbology::Gs1DataBar);
        assert_eq!(sym("]d1x"), Symbology::DataMatrix);
        assert_eq!(sym("]d2x"), Symbology::Gs1DataMatrix);
        assert_eq!(sym("]Q1x"), Symbology::Qr);
        assert_eq!(sym("]Q3x"), Symbology::Gs1Qr);
        assert_eq!(sym("]I1x"), Symbology::Itf14);
        assert_eq!(sym("]J1x"), Symbology::Gs1DotCode);
        assert_eq!(sym("]X0x"), Symbology::Unknown);
    }

    #[test]
    fn gs1_symbologies_imply_gs1_data() {
        for raw in ["]C1", "]e0", "]d2", "]Q3", "]J1"] {
            assert!(sym(raw).implies_gs1(), "{raw}");
        }
        for raw in ["]C0", "]E0", "]E4", "]d1", "]Q1", "]I1"] {
            assert!(!sym(raw).implies_gs1(), "{raw}");
        }
    }

    #[test]
    fn names_match_the_scan_contract() {
        assert_eq!(Symbology::Gs1_128.as_str(), "gs1-128");
        assert_eq!(Symbology::Ean13.as_str(), "ean-13");
        assert_eq!(Symbology::Qr.as_str(), "qr");
    }

    #[test]
    fn split_aim_keeps_the_data_and_rejects_non_prefixes() {
        let (id, rest) = split_aim(b"]C100106141411234567897").unwrap();
        assert_eq!(id.as_string(), "]C1");
        assert_eq!(rest, b"00106141411234567897");
        assert_eq!(split_aim(b"]C"), None);
        assert_eq!(split_aim(b"]1C"), None);
        assert_eq!(split_aim(b"0109506000134352"), None);
    }

    proptest! {
        #[test]
        fn split_aim_never_panics(raw in prop::collection::vec(any::<u8>(), 0..8)) {
            if let Some((id, rest)) = split_aim(&raw) {
                prop_assert_eq!(rest.len() + 3, raw.len());
                let _ = id.symbology().as_str();
            }
        }
    }
}
