//! Config errors a field technician can act on: the file, line and column, the key path
//! (`sink[1].batch.max_events`), what is wrong, and the offending line with a caret.

use std::fmt;
use std::ops::Range;
use std::path::{Path, PathBuf};

use crate::units::ConfigIssue;
use toml::Spanned;
use toml::de::{DeTable, DeValue};

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigError {
    pub(crate) file: PathBuf,
    /// 1-based line and column, when the problem has a place in the file.
    pub(crate) location: Option<(usize, usize)>,
    /// Key path such as `store.max_bytes` or `sink[0].name`; empty for the file as a whole.
    pub(crate) key: String,
    pub(crate) message: String,
    /// The line of the file the location points into.
    pub(crate) snippet: Option<String>,
}

impl ConfigError {
    /// An error about the file itself (cannot be read, not TOML at all).
    pub(crate) fn whole_file(file: &Path, message: impl Into<String>) -> Self {
        Self { file: file.to_path_buf(), location: None, key: String::new(), message: message.into(), snippet: None }
    }

    /// An error at `key`, located in `text` by its byte span.
    pub(crate) fn at_span(
        file: &Path,
        text: &str,
        span: Option<Range<usize>>,
        key: &str,
        message: impl Into<String>,
    ) -> Self {
        let (location, snippet) = match span {
            Some(span) => {
                let (line, col) = line_col(text, span.start);
                (Some((line, col)), text.lines().nth(line - 1).map(str::to_string))
            }
            None => (None, None),
        };
        let message = plain_words(&message.into());
        Self { file: file.to_path_buf(), location, key: key.to_string(), message, snippet }
    }

    /// An error at `key`, located by looking the key path up in the parsed document. A key that
    /// is not in the file (a missing field) points at its closest parent that is.
    pub(crate) fn at_key(file: &Path, text: &str, key: &str, message: impl Into<String>) -> Self {
        let span = DeTable::parse(text).ok().and_then(|doc| span_of(doc.get_ref(), key));
        Self::at_span(file, text, span, key, message)
    }

    /// A section's [`ConfigIssue`], located in the file.
    pub(crate) fn from_issue(file: &Path, text: &str, issue: ConfigIssue) -> Self {
        Self::at_key(file, text, &issue.key, issue.message)
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
    fn unquoted_values_are_explained_by_what_was_written() {
        let at = |text: &str, value: &str| unquoted_value(text, text.find(value).expect("value in text"));
        let two = at("[station]\nmin_weight = 0.05 0.1\n", "0.05").expect("explained");
        assert!(two.contains("takes one value") && two.contains("`min_weight = 0.05`"), "{two}");
        let unit = at("[store]\nmax_bytes = 1 GiB # big\n", "1 GiB").expect("explained");
        assert!(unit.contains("`max_bytes = \"1GiB\"`"), "{unit}");
        let word = at("[gateway]\nid = gw1\n", "gw1").expect("explained");
        assert_eq!(word, "text must be in double quotes: `id = \"gw1\"`");
    }

    #[test]
    fn display_shows_the_line_and_a_caret() {
        let e = ConfigError::at_key(Path::new("x.toml"), DOC, "gateway.id", "must not be empty");
        assert_eq!(e.to_string(), "x.toml:2:1: `gateway.id`: must not be empty\n  |\n2 | id = \"gw\"\n  | ^");
    }
}

/// serde's messages in a field technician's words: "a whole number without quotes" instead of
/// `invalid type: string "9600", expected u32`, and "did you mean `poll_interval`?" before the
/// list of known keys. Messages it does not recognise are kept as they are.
pub(crate) fn plain_words(message: &str) -> String {
    for (prefix, what) in [("unknown field `", "key"), ("unknown variant `", "value")] {
        if let Some(rest) = message.strip_prefix(prefix) {
            let (name, rest) = rest.split_once('`').unwrap_or((rest, ""));
            let known: Vec<&str> = rest.split('`').skip(1).step_by(2).collect();
            let mut text = format!("unknown {what} `{name}`");
            if let Some(best) = closest(name, &known) {
                text.push_str(&format!("; did you mean `{best}`?"));
            }
            if !known.is_empty() {
                let label = if what == "key" { "known keys" } else { "use one of" };
                text.push_str(&format!(" ({label}: {})", known.join(", ")));
            }
            return text;
        }
    }
    if let Some(rest) = message.strip_prefix("invalid type: ") {
        let (found, expected) = rest.split_once(", expected ").unwrap_or((rest, ""));
        let wanted = match expected.trim() {
            "u8" | "u16" | "u32" | "u64" | "usize" | "i8" | "i16" | "i32" | "i64" => "a whole number without quotes",
            "f32" | "f64" => "a number without quotes, like 0.05",
            "a boolean" => "true or false, without quotes",
            "a string" | "a borrowed string" => "text in double quotes",
            "a sequence" => "a list in square brackets, like [\"a\", \"b\"]",
            other if other.contains("map") || other.contains("struct") => "a table (a [section] or { key = value })",
            _ => return message.to_string(),
        };
        let found = match found.split_once(' ') {
            Some(("string", value)) => format!("the text {value} (in quotes)"),
            Some(("integer", value)) => format!("the number {}", value.trim_matches('`')),
            Some(("floating", value)) => format!("the number {}", value.trim_start_matches("point ").trim_matches('`')),
            Some(("boolean", value)) => value.trim_matches('`').to_string(),
            _ => found.to_string(),
        };
        return format!("write {wanted} here, not {found}");
    }
    message.to_string()
}

/// What TOML's "string values must be quoted" means for the value written at `offset`: several
/// values where one is expected, a number with a unit that must be quoted text, or a bare word.
pub(crate) fn unquoted_value(text: &str, offset: usize) -> Option<String> {
    let line_start = text[..offset.min(text.len())].rfind('\n').map_or(0, |i| i + 1);
    let line = text[line_start..].lines().next()?;
    let (key, _) = line.split_once('=')?;
    let key = key.trim();
    let value = text.get(offset..)?.lines().next()?.split(" #").next()?.trim();
    let tokens: Vec<&str> = value.split_whitespace().collect();
    let number = |t: &str| t.parse::<f64>().is_ok();
    Some(match tokens.as_slice() {
        [first, rest @ ..] if !rest.is_empty() && number(first) && rest.iter().all(|t| number(t)) => format!(
            "`{key}` takes one value, but `{value}` is {} numbers: write one (`{key} = {first}`), or a list in square brackets if the key takes several",
            tokens.len()
        ),
        [amount, unit] if number(amount) && unit.chars().all(|c| c.is_ascii_alphabetic()) => format!(
            "a value with a unit is text: write it in double quotes without a space, `{key} = \"{amount}{unit}\"`"
        ),
        _ => format!("text must be in double quotes: `{key} = \"{value}\"`"),
    })
}

/// The known name nearest to `name`, if it is near enough to be a typo.
fn closest<'a>(name: &str, known: &[&'a str]) -> Option<&'a str> {
    let limit = (name.chars().count() / 3).clamp(1, 3);
    known
        .iter()
        .map(|k| (edit_distance(name, k), *k))
        .filter(|(d, _)| *d <= limit)
        .min_by_key(|(d, _)| *d)
        .map(|(_, k)| k)
}

fn edit_distance(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut row: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.chars().enumerate() {
        let mut prev = row[0];
        row[0] = i + 1;
        for (j, cb) in b.iter().enumerate() {
            let here = row[j + 1];
            row[j + 1] = (prev + usize::from(ca != *cb)).min(row[j] + 1).min(here + 1);
            prev = here;
        }
    }
    row[b.len()]
}

#[cfg(test)]
mod plain_words_tests {
    use super::*;

    #[test]
    fn typos_get_a_suggestion_then_the_list() {
        let m = plain_words("unknown field `pol_interval`, expected one of `name`, `poll_interval`, `baud`");
        assert_eq!(
            m,
            "unknown key `pol_interval`; did you mean `poll_interval`? (known keys: name, poll_interval, baud)"
        );
        let m = plain_words("unknown field `zzz`, expected one of `name`, `baud`");
        assert_eq!(m, "unknown key `zzz` (known keys: name, baud)");
        let m = plain_words("unknown variant `mettler`, expected one of `mt-sics`, `sma`");
        assert!(m.starts_with("unknown value `mettler`"), "{m}");
    }

    #[test]
    fn type_errors_say_what_to_write() {
        assert_eq!(
            plain_words("invalid type: string \"9600\", expected u32"),
            "write a whole number without quotes here, not the text \"9600\" (in quotes)"
        );
        assert!(plain_words("invalid type: string \"0.05\", expected f64").contains("like 0.05"));
        assert!(plain_words("invalid type: integer `5`, expected a string").contains("text in double quotes"));
        assert_eq!(plain_words("needs a unit"), "needs a unit");
    }
}
