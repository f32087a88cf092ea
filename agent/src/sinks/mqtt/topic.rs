//! The MQTT sink's topic template (`dockhand/{site}/{gateway}/{kind}`): checked once when the
//! config loads, filled in per message from the event's envelope. Pure.

/// A field of the envelope a topic can carry.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Field {
    Site,
    Gateway,
    Kind,
    Partition,
    Device,
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Piece {
    Text(String),
    Field(Field),
}

/// A parsed topic template.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct TopicTemplate {
    pieces: Vec<Piece>,
}

/// The envelope fields a topic is filled from.
#[derive(Debug, Clone, Copy)]
pub(crate) struct TopicFields<'a> {
    pub(crate) site: &'a str,
    pub(crate) gateway: &'a str,
    pub(crate) kind: &'a str,
    pub(crate) partition: &'a str,
    pub(crate) device: &'a str,
}

impl TopicTemplate {
    /// `whole_batch`: one message carries many events, so only the gateway's own fields make sense.
    pub(crate) fn parse(text: &str, whole_batch: bool) -> Result<TopicTemplate, String> {
        if text.is_empty() || text.starts_with('$') {
            return Err(
                "must be a topic name such as \"dockhand/{site}/{gateway}/{kind}\" (not empty, not starting with `$`)"
                    .into(),
            );
        }
        if text.contains(['+', '#', '\0']) {
            return Err("a topic to publish to cannot hold the wildcards `+` or `#`".into());
        }
        let mut pieces = Vec::new();
        let mut rest = text;
        while let Some(open) = rest.find('{') {
            if open > 0 {
                pieces.push(Piece::Text(rest[..open].to_owned()));
            }
            let Some(close) = rest[open..].find('}') else {
                return Err(format!("`{}` opens a field without closing it", &rest[open..]));
            };
            let name = &rest[open + 1..open + close];
            let field = match name {
                "site" => Field::Site,
                "gateway" => Field::Gateway,
                "kind" => Field::Kind,
                "partition" => Field::Partition,
                "device" => Field::Device,
                other => {
                    return Err(format!(
                        "`{{{other}}}` is not a field; use {{site}}, {{gateway}}, {{kind}}, {{partition}} or {{device}}"
                    ));
                }
            };
            if whole_batch && !matches!(field, Field::Site | Field::Gateway) {
                return Err(format!(
                    "`{{{name}}}` differs between the events of one message with messages = \"batch\"; use {{site}} and {{gateway}} only"
                ));
            }
            pieces.push(Piece::Field(field));
            rest = &rest[open + close + 1..];
        }
        if rest.contains('}') {
            return Err("a `}` closes no field".into());
        }
        if !rest.is_empty() {
            pieces.push(Piece::Text(rest.to_owned()));
        }
        Ok(TopicTemplate { pieces })
    }

    /// The topic for these fields. A value that would change the topic's shape (a `/`, a
    /// wildcard, an empty level) is written with `_` in its place.
    pub(crate) fn render(&self, f: &TopicFields<'_>) -> String {
        let mut out = String::new();
        for piece in &self.pieces {
            match piece {
                Piece::Text(t) => out.push_str(t),
                Piece::Field(field) => {
                    let value = match field {
                        Field::Site => f.site,
                        Field::Gateway => f.gateway,
                        Field::Kind => f.kind,
                        Field::Partition => f.partition,
                        Field::Device => f.device,
                    };
                    if value.is_empty() {
                        out.push('_');
                    }
                    out.extend(value.chars().map(|c| if matches!(c, '/' | '+' | '#' | '\0') { '_' } else { c }));
                }
            }
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fields<'a>(partition: &'a str, device: &'a str) -> TopicFields<'a> {
        TopicFields { site: "WH1", gateway: "wh1-gw01", kind: "count", partition, device }
    }

    #[test]
    fn a_template_is_filled_from_the_envelope() {
        let t = TopicTemplate::parse("dockhand/{site}/{gateway}/{kind}", false).unwrap();
        assert_eq!(t.render(&fields("hh-17", "hh-17")), "dockhand/WH1/wh1-gw01/count");
        let t = TopicTemplate::parse("fleet/{gateway}/by-device/{device}/events", false).unwrap();
        assert_eq!(t.render(&fields("hh-17", "hh-17")), "fleet/wh1-gw01/by-device/hh-17/events");
    }

    #[test]
    fn a_value_cannot_change_the_topics_shape() {
        let t = TopicTemplate::parse("d/{partition}/x", false).unwrap();
        assert_eq!(t.render(&fields("a/b+#", "")), "d/a_b__/x");
        assert_eq!(t.render(&fields("", "")), "d/_/x");
    }

    #[test]
    fn bad_templates_are_refused_with_the_reason() {
        assert!(TopicTemplate::parse("d/+/x", false).unwrap_err().contains("wildcards"));
        assert!(TopicTemplate::parse("d/{kin}/x", false).unwrap_err().contains("not a field"));
        assert!(TopicTemplate::parse("d/{kind", false).unwrap_err().contains("without closing"));
        assert!(TopicTemplate::parse("$SYS/x", false).is_err());
        assert!(TopicTemplate::parse("d/{kind}", true).unwrap_err().contains("messages = \"batch\""));
        assert!(TopicTemplate::parse("d/{site}/{gateway}", true).is_ok());
    }
}
