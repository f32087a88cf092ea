//! ZPL labels from templates, with field data that can never become commands.
//!
//! A template is ZPL with `{{name}}` placeholders, each inside a field's data:
//! `^FO50,50^A0N,40^FD{{picking}}^FS`. Rendering replaces the placeholder with the value
//! hex-escaped for `^FH` (`^` → `_5E`, `~` → `_7E`, `_` → `_5F`, control bytes → `_XX`) and turns
//! that field's `^FD` into `^FH^FD`, so a value such as `^XZ^XA~JA` prints literally. UTF-8 text
//! needs `^CI28` in the template (ZPL's UTF-8 code page); it is added after `^XA` when a value is
//! not ASCII and the template does not set a code page.
//!
//! A template can also be sent once as a stored format ([`define_format`], `^DF`): each field
//! holding placeholders becomes `^FN<n>`, and each label then carries only its data
//! ([`recall_format`], `^XF`), escaped the same way.

use std::collections::BTreeMap;

use thiserror::Error;

/// Why a template cannot be rendered.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum LabelError {
    /// `^XA` … `^XZ` missing.
    #[error("a ZPL template must start with ^XA and end with ^XZ")]
    NotAFormat,
    /// `{{` without `}}`, or an empty or odd name.
    #[error("bad placeholder at byte {pos}: write {{{{name}}}} with letters, digits, `_` or `-`")]
    BadPlaceholder {
        /// Where.
        pos: usize,
    },
    /// A placeholder that is not inside `^FD…^FS`, where escaping would not protect it.
    #[error("placeholder {{{{{name}}}}} is not inside a ^FD...^FS field")]
    OutsideField {
        /// The placeholder.
        name: String,
    },
    /// The job's data has no value for a placeholder.
    #[error("the label needs a value for `{name}`")]
    Missing {
        /// The field.
        name: String,
    },
}

/// Escapes a value for `^FH` field data.
pub fn escape_field(value: &str) -> String {
    let mut out = String::with_capacity(value.len());
    for c in value.chars() {
        match c {
            '^' | '~' | '_' => out.push_str(&format!("_{:02X}", c as u32)),
            c if (c as u32) < 0x20 || c as u32 == 0x7F => out.push_str(&format!("_{:02X}", c as u32)),
            c => out.push(c),
        }
    }
    out
}

/// The placeholders of a template, in order (checked).
pub fn placeholders(template: &str) -> Result<Vec<String>, LabelError> {
    Ok(parse(template)?.into_iter().filter_map(|p| p.name).collect())
}

struct Piece<'a> {
    text: &'a str,
    name: Option<String>,
}

fn parse(template: &str) -> Result<Vec<Piece<'_>>, LabelError> {
    let trimmed = template.trim();
    if !(trimmed.starts_with("^XA") && trimmed.ends_with("^XZ")) {
        return Err(LabelError::NotAFormat);
    }
    let mut pieces = Vec::new();
    let mut rest = template;
    let mut offset = 0;
    while let Some(start) = rest.find("{{") {
        let end = rest[start..].find("}}").ok_or(LabelError::BadPlaceholder { pos: offset + start })? + start;
        let name = rest[start + 2..end].trim();
        if name.is_empty() || !name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-') {
            return Err(LabelError::BadPlaceholder { pos: offset + start });
        }
        // Inside a field: the last ^FD before it is not closed by a ^FS.
        let before = &template[..offset + start];
        let in_field = before.rfind("^FD").is_some_and(|fd| !before[fd..].contains("^FS"));
        if !in_field {
            return Err(LabelError::OutsideField { name: name.to_owned() });
        }
        pieces.push(Piece { text: &rest[..start], name: None });
        pieces.push(Piece { text: "", name: Some(name.to_owned()) });
        offset += end + 2;
        rest = &rest[end + 2..];
    }
    pieces.push(Piece { text: rest, name: None });
    Ok(pieces)
}

/// Renders a template with `data`. Every field holding a placeholder gets `^FH`.
pub fn render(template: &str, data: &BTreeMap<String, String>) -> Result<Vec<u8>, LabelError> {
    let pieces = parse(template)?;
    let mut out = String::with_capacity(template.len() + 64);
    let mut non_ascii = false;
    for piece in pieces {
        match piece.name {
            None => out.push_str(piece.text),
            Some(name) => {
                let value = data.get(&name).ok_or(LabelError::Missing { name })?;
                non_ascii |= !value.is_ascii();
                // Make the field's ^FD a ^FH^FD (once per field).
                if let Some(fd) = out.rfind("^FD")
                    && !out[..fd].ends_with("^FH")
                {
                    out.insert_str(fd, "^FH");
                }
                out.push_str(&escape_field(value));
            }
        }
    }
    if non_ascii
        && !out.contains("^CI")
        && let Some(xa) = out.find("^XA")
    {
        out.insert_str(xa + 3, "^CI28");
    }
    Ok(out.into_bytes())
}

/// Number of formats (`^XA` … `^XZ`) in a job.
pub fn count_formats(zpl: &[u8]) -> usize {
    zpl.windows(3).filter(|w| w == b"^XZ").count()
}

/// A test label naming the printer, the gateway and the time.
pub fn test_label(printer: &str, gateway: &str, at: &str) -> Vec<u8> {
    let template = "^XA^CI28^FO40,40^A0N,50,50^FDdockhand test label^FS^FO40,110^A0N,35,35^FDPrinter: {{printer}}^FS^FO40,160^A0N,35,35^FDGateway: {{gateway}}^FS^FO40,210^A0N,30,30^FD{{at}}^FS^XZ";
    let data: BTreeMap<String, String> = [("printer", printer), ("gateway", gateway), ("at", at)]
        .into_iter()
        .map(|(k, v)| (k.into(), v.into()))
        .collect();
    render(template, &data).unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    fn data(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs.iter().map(|(k, v)| ((*k).into(), (*v).into())).collect()
    }

    #[test]
    fn values_are_escaped_and_fields_get_fh() {
        let t = "^XA^FO50,50^A0N,40^FD{{picking}}^FS^FO50,100^FDWeight: {{weight}} kg^FS^XZ";
        let out =
            String::from_utf8(render(t, &data(&[("picking", "WH/OUT/00042"), ("weight", "1.250")])).unwrap()).unwrap();
        assert_eq!(out, "^XA^FO50,50^A0N,40^FH^FDWH/OUT/00042^FS^FO50,100^FH^FDWeight: 1.250 kg^FS^XZ");
    }

    #[test]
    fn injected_commands_print_literally() {
        let t = "^XA^FO10,10^FD{{note}}^FS^XZ";
        let out = String::from_utf8(render(t, &data(&[("note", "^XZ^XA~JA_x\r\n")])).unwrap()).unwrap();
        assert_eq!(out, "^XA^FO10,10^FH^FD_5EXZ_5EXA_7EJA_5Fx_0D_0A^FS^XZ");
        assert_eq!(count_formats(out.as_bytes()), 1, "still one label");
        assert!(!out.contains("~JA"));
    }

    #[test]
    fn template_errors() {
        assert_eq!(render("^FD{{a}}^FS", &data(&[])), Err(LabelError::NotAFormat));
        assert!(matches!(
            render("^XA^FO{{x}},10^FDa^FS^XZ", &data(&[("x", "1")])),
            Err(LabelError::OutsideField { .. })
        ));
        assert!(matches!(render("^XA^FD{{a^FS^XZ", &data(&[])), Err(LabelError::BadPlaceholder { .. })));
        assert_eq!(render("^XA^FD{{a}}^FS^XZ", &data(&[])), Err(LabelError::Missing { name: "a".into() }));
        assert_eq!(placeholders("^XA^FD{{a}} {{b}}^FS^XZ").unwrap(), vec!["a", "b"]);
    }

    #[test]
    fn utf8_values_switch_to_ci28() {
        let out = render("^XA^FD{{n}}^FS^XZ", &data(&[("n", "Müller")])).unwrap();
        assert!(String::from_utf8(out).unwrap().starts_with("^XA^CI28"));
        assert_eq!(count_formats(&test_label("p", "g", "t")), 1);
    }

    proptest! {
        #[test]
        fn no_value_can_leave_its_field(value in "\\PC{0,40}") {
            let out = String::from_utf8(render("^XA^FD{{v}}^FS^XZ", &data(&[("v", &value)])).unwrap()).unwrap();
            let field = out.strip_prefix("^XA").unwrap_or(&out).trim_start_matches("^CI28");
            let inner = field.strip_prefix("^FH^FD").and_then(|f| f.strip_suffix("^FS^XZ")).unwrap();
            prop_assert!(!inner.contains('^') && !inner.contains('~'), "{}", inner);
        }
    }
}

/// The field that holds each placeholder: its `^FD` data (with the placeholders in it) and the
/// `^FN` number it gets in a stored format, in order of appearance.
fn variable_fields(template: &str) -> Result<Vec<(usize, usize, String)>, LabelError> {
    parse(template)?;
    let mut fields = Vec::new();
    let mut from = 0;
    while let Some(fd) = template[from..].find("^FD").map(|i| from + i) {
        let end = template[fd..].find("^FS").map_or(template.len(), |i| fd + i);
        let data = &template[fd + 3..end];
        if data.contains("{{") {
            fields.push((fd, end, data.to_owned()));
        }
        from = end.max(fd + 3);
    }
    Ok(fields)
}

/// Checks a stored-format name: 1 to 8 letters, digits or `_` (ZPL object names are 8.3).
pub fn valid_format_name(name: &str) -> bool {
    (1..=8).contains(&name.len()) && name.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_')
}

/// The stored-format definition (`^DF`) of a template: each field holding placeholders becomes
/// a variable field `^FN<n>`. Sent to the printer once per connection; labels then only carry
/// their data ([`recall_format`]).
pub fn define_format(name: &str, template: &str) -> Result<Vec<u8>, LabelError> {
    let fields = variable_fields(template)?;
    let offset = template.find("^XA").map_or(0, |i| i + 3);
    let mut out = format!("^XA^DFR:{name}.ZPL^FS");
    let mut cursor = offset;
    for (n, (fd, end, _)) in fields.iter().enumerate() {
        out.push_str(&template[cursor..*fd]);
        out.push_str(&format!("^FN{}", n + 1));
        cursor = *end;
    }
    let tail_end = template.rfind("^XZ").unwrap_or(template.len());
    out.push_str(&template[cursor..tail_end]);
    out.push_str("^XZ");
    Ok(out.into_bytes())
}

/// One label from a stored format: `^XA^XFR:<name>.ZPL^FS`, then `^FN<n>^FH^FD<escaped>^FS` per
/// variable field (literal text around a placeholder included), then `^XZ`.
pub fn recall_format(name: &str, template: &str, data: &BTreeMap<String, String>) -> Result<Vec<u8>, LabelError> {
    let fields = variable_fields(template)?;
    let mut out = format!("^XA^XFR:{name}.ZPL^FS");
    let mut non_ascii = false;
    for (n, (_, _, content)) in fields.iter().enumerate() {
        let mut value = String::new();
        for piece in parse_field(content)? {
            match piece {
                FieldPiece::Text(t) => value.push_str(t),
                FieldPiece::Name(name) => {
                    let v = data.get(name).ok_or_else(|| LabelError::Missing { name: name.to_owned() })?;
                    non_ascii |= !v.is_ascii();
                    value.push_str(v);
                }
            }
        }
        out.push_str(&format!("^FN{}^FH^FD{}^FS", n + 1, escape_field(&value)));
    }
    if non_ascii {
        out.insert_str(3, "^CI28");
    }
    out.push_str("^XZ");
    Ok(out.into_bytes())
}

enum FieldPiece<'a> {
    Text(&'a str),
    Name(&'a str),
}

fn parse_field(content: &str) -> Result<Vec<FieldPiece<'_>>, LabelError> {
    let mut pieces = Vec::new();
    let mut rest = content;
    while let Some(start) = rest.find("{{") {
        let end = rest[start..].find("}}").ok_or(LabelError::BadPlaceholder { pos: start })? + start;
        pieces.push(FieldPiece::Text(&rest[..start]));
        pieces.push(FieldPiece::Name(rest[start + 2..end].trim()));
        rest = &rest[end + 2..];
    }
    pieces.push(FieldPiece::Text(rest));
    Ok(pieces)
}

#[cfg(test)]
mod stored_format_tests {
    use super::*;

    const T: &str = "^XA^FO50,50^A0N,40^FD{{picking}}^FS^FO50,100^FDWeight: {{weight}} kg^FS^FO9,9^FDfixed^FS^XZ";

    #[test]
    fn definition_has_variable_fields_and_recall_carries_escaped_data() {
        let def = String::from_utf8(define_format("PARCEL", T).unwrap()).unwrap();
        assert_eq!(def, "^XA^DFR:PARCEL.ZPL^FS^FO50,50^A0N,40^FN1^FS^FO50,100^FN2^FS^FO9,9^FDfixed^FS^XZ");
        let data: BTreeMap<String, String> =
            [("picking", "WH/OUT/1^XZ"), ("weight", "2.480")].into_iter().map(|(k, v)| (k.into(), v.into())).collect();
        let recall = String::from_utf8(recall_format("PARCEL", T, &data).unwrap()).unwrap();
        assert_eq!(recall, "^XA^XFR:PARCEL.ZPL^FS^FN1^FH^FDWH/OUT/1_5EXZ^FS^FN2^FH^FDWeight: 2.480 kg^FS^XZ");
        assert_eq!(count_formats(recall.as_bytes()), 1);
        assert!(matches!(recall_format("PARCEL", T, &BTreeMap::new()), Err(LabelError::Missing { .. })));
        assert!(valid_format_name("PARCEL") && !valid_format_name("TOO_LONG_NAME") && !valid_format_name("a.b"));
    }
}
