//! Config errors a field technician can act on: the file, line and column, the key path
//! (`sink[1].batch.max_events`), what is wrong, and the offending line with a caret.

use std::fmt;
use std::ops::Range;
use std::path::{Path, PathBuf};

use toml::Spanned;
use toml::de::{DeTable, DeValue};

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigError {
    pub file: PathBuf,
    /// 1-based line and column, when the problem has a place in the file.
    pub location: Option<(usize, usize)>,
    /// Key path such as `store.max_bytes` or `sink[0].name`; empty for the file as a whole.
    pub key: String,
    pub message: String,
    /// The line of the file the location points into.
    pub snippet: Option<String>,
}

impl ConfigError {
    /// An error about the file itself (cannot be read, not TOML at all).
    pub fn whole_file(file: &Path, message: impl Into<String>) -> Self {
        Self { file: file.to_path_buf(), location: None, key: String::new(), message: message.into(), snippet: None }
    }

    /// An error at `key`, located in `text` by its byte span.
    pub fn at_span(file: &Path, text: &str, span: Option<Range<usize>>, key: &str, message: impl Into<String>) -> Self {
        let (location, snippet) = match span {
            Some(span) => {
                let (line, col) = line_col(text, span.start);
                (Some((line, col)), text.lines().nth(line - 1).map(str::to_string))
            }
            None => (None, None),
        };
        Self { file: file.to_path_buf(), location, key: key.to_string(), message: message.into(), snippet }
    }

    /// An error at `key`, located by looking the key path up in the parsed document. A key that
    /// is not in the file (a missing field) points at its closest parent that is.
    pub fn at_key(file: &Path, text: &str, key: &str, message: impl Into<String>) -> Self {
        let span = DeTable::parse(text).ok().and_then(|doc| span_of(doc.get_ref(), key));
        Self::at_span(file, text, span, key, message)
    }
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.file.display())?;
        if let Some((line, col)) = self.location {
            write!(f, ":{line}:{col}")?;
        }
        if !self.key.is_empty() {
            write!(f, ": `{}`", self.key)?;
        }
        write!(f, ": {}", self.message)?;
        if let (Some((line, col)), Some(snippet)) = (self.location, &self.snippet) {
            let gutter = line.to_string().len();
            write!(f, "\n{:gutter$} |\n{line} | {snippet}\n{:gutter$} | {:>col$}", "", "", "^")?;
        }
        Ok(())
    }
}

impl std::error::Error for ConfigError {}

fn line_col(text: &str, offset: usize) -> (usize, usize) {
    let offset = offset.min(text.len());
    let before = &text.as_bytes()[..offset];
    let line = before.iter().filter(|&&b| b == b'\n').count() + 1;
    let line_start = before.iter().rposition(|&b| b == b'\n').map_or(0, |i| i + 1);
    let col = String::from_utf8_lossy(&before[line_start..]).chars().count() + 1;
    (line, col)
}

/// Splits `sink[1].batch.max_events` into `sink`, `[1]`, `batch`, `max_events`.
fn segments(key: &str) -> Vec<Segment<'_>> {
    let mut out = Vec::new();
    for part in key.split('.').filter(|p| !p.is_empty()) {
        let (name, mut rest) = match part.find('[') {
            Some(i) => (&part[..i], &part[i..]),
            None => (part, ""),
        };
        if !name.is_empty() {
            out.push(Segment::Key(name));
        }
        while let Some(close) = rest.find(']') {
            if let Ok(i) = rest[1..close].parse() {
                out.push(Segment::Index(i));
            }
            rest = &rest[close + 1..];
        }
    }
    out
}

enum Segment<'a> {
    Key(&'a str),
    Index(usize),
}

/// The span of the deepest part of `key` present in the document: the key itself when found
/// (a table key points at its header), else its closest parent.
fn span_of(doc: &DeTable<'_>, key: &str) -> Option<Range<usize>> {
    let mut span: Option<Range<usize>> = None;
    let mut table: Option<&DeTable<'_>> = Some(doc);
    let mut value: Option<&Spanned<DeValue<'_>>> = None;
    for seg in segments(key) {
        match seg {
            Segment::Key(name) => {
                let Some(t) = table else { break };
                let Some((k, v)) = t.iter().find(|(k, _)| k.get_ref().as_ref() == name) else { break };
                span = Some(k.span());
                value = Some(v);
            }
            Segment::Index(i) => {
                let Some(DeValue::Array(items)) = value.map(Spanned::get_ref) else { break };
                let Some(item) = items.get(i) else { break };
                span = Some(item.span());
                value = Some(item);
            }
        }
        table = match value.map(Spanned::get_ref) {
            Some(DeValue::Table(t)) => Some(t),
            _ => None,
        };
    }
    span
}

#[cfg(test)]
mod tests {
    use super::*;

    const DOC: &str =
        "[gateway]\nid = \"gw\"\n\n[[sink]]\nname = \"a\"\n\n[[sink]]\nname = \"b\"\nbatch = { max_events = 5 }\n";

    #[test]
    fn finds_keys_inside_arrays_of_tables() {
        let e = ConfigError::at_key(Path::new("x.toml"), DOC, "sink[1].batch.max_events", "bad");
        assert_eq!(e.location, Some((9, 11)));
        let e = ConfigError::at_key(Path::new("x.toml"), DOC, "sink[0].name", "bad");
        assert_eq!(e.location, Some((5, 1)));
    }

    #[test]
    fn missing_keys_point_at_their_parent() {
        let e = ConfigError::at_key(Path::new("x.toml"), DOC, "gateway.site", "missing");
        assert_eq!(e.location, Some((1, 2)));
    }

    #[test]
    fn display_shows_the_line_and_a_caret() {
        let e = ConfigError::at_key(Path::new("x.toml"), DOC, "gateway.id", "must not be empty");
        assert_eq!(e.to_string(), "x.toml:2:1: `gateway.id`: must not be empty\n  |\n2 | id = \"gw\"\n  | ^");
    }
}
