//! One bad rule never hides the others: when a file does not deserialize
//! as a whole, it is parsed again rule by rule.
//!
//! The file's YAML syntax is read first (granit's event parser, the one
//! serde-saphyr uses). If the syntax is broken the file is skipped. If it
//! is sound, each top-level section and then each rule in it is
//! deserialized on its own, from a document holding only that rule at its
//! own lines and columns, so every place reported is right. A rule
//! that fails is reported at its place; the others are kept and compiled.

use std::collections::BTreeSet;
use std::path::Path;

use serde::Deserialize;
use serde::de::{DeserializeOwned, IgnoredAny};
use serde_saphyr::Spanned;
use serde_saphyr::granit_parser::{Event, Parser, Span, StructureStyle};

use super::Compiler;
use crate::config::diag::Place;
use crate::config::raw::*;

/// A node of the YAML tree: its byte range and shape.
struct Node {
    start: usize,
    end: usize,
    kind: Kind,
}

enum Kind {
    Scalar(String),
    Seq(Vec<Node>),
    Map(Vec<(Node, Node)>),
    Other,
}

/// An id read from a rule that failed, so references to it are not
/// reported as unknown.
#[derive(Deserialize)]
struct IdOnly {
    id: Spanned<String>,
}

/// Byte offset of a parser position.
fn byte_at(text: &str, m: serde_saphyr::granit_parser::Marker) -> usize {
    m.byte_offset()
        .unwrap_or_else(|| {
            text.char_indices()
                .nth(m.index())
                .map_or(text.len(), |(b, _)| b)
        })
        .min(text.len())
}

/// The document's tree, or `None` when its syntax is broken (or it holds
/// more than one document).
fn tree(text: &str) -> Option<Option<Node>> {
    let mut events: Vec<(Event<'_>, Span)> = Vec::new();
    let mut parser = Parser::new_from_str(text);
    while let Some(next) = parser.next_event() {
        let (event, span) = next.ok()?;
        if !matches!(event, Event::Anchor(..)) {
            events.push((event, span));
        }
    }
    let documents = events
        .iter()
        .filter(|(e, _)| matches!(e, Event::DocumentStart(..)))
        .count();
    if documents > 1 {
        return None;
    }
    let mut at = events
        .iter()
        .position(|(e, _)| matches!(e, Event::DocumentStart(..)))
        .map_or(events.len(), |i| i + 1);
    if at >= events.len() || matches!(events[at].0, Event::DocumentEnd | Event::StreamEnd) {
        return Some(None);
    }
    node(text, &events, &mut at).map(Some)
}

fn node(text: &str, events: &[(Event<'_>, Span)], at: &mut usize) -> Option<Node> {
    let (event, span) = events.get(*at)?;
    *at += 1;
    let start = byte_at(text, span.start);
    match event {
        Event::Scalar(value, ..) => Some(Node {
            start,
            end: byte_at(text, span.end),
            kind: Kind::Scalar(value.to_string()),
        }),
        Event::SequenceStart(style, ..) => {
            let mut items = Vec::new();
            let mut end = start;
            loop {
                let (e, s) = events.get(*at)?;
                if matches!(e, Event::SequenceEnd) {
                    *at += 1;
                    if *style == StructureStyle::Flow {
                        end = byte_at(text, s.end);
                    }
                    break;
                }
                let item = node(text, events, at)?;
                end = end.max(item.end);
                items.push(item);
            }
            Some(Node {
                start,
                end,
                kind: Kind::Seq(items),
            })
        }
        Event::MappingStart(style, ..) => {
            let mut pairs = Vec::new();
            let mut end = start;
            loop {
                let (e, s) = events.get(*at)?;
                if matches!(e, Event::MappingEnd) {
                    *at += 1;
                    if *style == StructureStyle::Flow {
                        end = byte_at(text, s.end);
                    }
                    break;
                }
                let key = node(text, events, at)?;
                let value = node(text, events, at)?;
                end = end.max(value.end).max(key.end);
                pairs.push((key, value));
            }
            Some(Node {
                start,
                end,
                kind: Kind::Map(pairs),
            })
        }
        Event::Alias(..) => Some(Node {
            start,
            end: byte_at(text, span.end),
            kind: Kind::Other,
        }),
        _ => None,
    }
}

/// A document holding only `start..end` of the file, at the same lines
/// and columns: as many newlines as come before it, then one space for
/// every character before it on its line. Its size is the rule's, not the
/// file's, so parsing every rule of a large file stays linear.
fn masked(text: &str, start: usize, end: usize) -> String {
    let (Some(before), Some(part)) = (text.get(..start), text.get(start..end)) else {
        return String::new();
    };
    let line_start = before.rfind('\n').map_or(0, |i| i + 1);
    let newlines = before.matches('\n').count();
    let columns = before[line_start..].chars().count();
    let mut out = String::with_capacity(newlines + columns + part.len());
    out.extend(std::iter::repeat_n('\n', newlines));
    out.extend(std::iter::repeat_n(' ', columns));
    out.push_str(part);
    out
}

fn parse_part<T: DeserializeOwned>(
    text: &str,
    start: usize,
    end: usize,
) -> Result<T, serde_saphyr::Error> {
    serde_saphyr::from_str::<T>(&masked(text, start, end))
}

impl Compiler<'_> {
    /// Parses a file that failed as a whole rule by rule. `None` when its
    /// YAML syntax is broken: the caller reports the parser's error.
    /// Reports every failing rule and returns the rules that parsed.
    pub(super) fn parse_items(&mut self, path: &Path, text: &str) -> Option<RawFile> {
        let root = tree(text)?;
        let Some(root) = root else {
            return Some(RawFile::default());
        };
        let Kind::Map(sections) = root.kind else {
            return None;
        };
        let mut file = RawFile::default();
        for (key, value) in &sections {
            let Kind::Scalar(name) = &key.kind else {
                self.part_error(path, text, key.start, value.end);
                continue;
            };
            let (start, end) = (key.start, value.end);
            match name.as_str() {
                "groups" => self.list(path, text, value, start, end, "group", &mut file.groups),
                "segments" => {
                    self.list(path, text, value, start, end, "segment", &mut file.segments)
                }
                "schedules" => self.list(
                    path,
                    text,
                    value,
                    start,
                    end,
                    "schedule",
                    &mut file.schedules,
                ),
                "alerts" => self.list(path, text, value, start, end, "alert", &mut file.alerts),
                "tests" => self.list(path, text, value, start, end, "test", &mut file.tests),
                "templates" => self.keyed(
                    path,
                    text,
                    value,
                    start,
                    end,
                    "template",
                    &mut file.templates,
                ),
                "surveys" => self.keyed(path, text, value, start, end, "survey", &mut file.surveys),
                "escalations" => self.keyed(
                    path,
                    text,
                    value,
                    start,
                    end,
                    "escalation",
                    &mut file.escalations,
                ),
                "contacts" => {
                    self.keyed(path, text, value, start, end, "contact", &mut file.contacts)
                }
                "rotations" => self.keyed(
                    path,
                    text,
                    value,
                    start,
                    end,
                    "rotation",
                    &mut file.rotations,
                ),
                // One document, not a list of rules: kept when it parses.
                "limits" => match parse_part::<Option<RawFile>>(text, start, end) {
                    Ok(part) => file.limits = part.and_then(|f| f.limits),
                    Err(_) => self.part_error(path, text, start, end),
                },
                // An unknown section: the whole-file parser's message,
                // with its hint, for this section alone.
                _ => self.part_error(path, text, start, end),
            }
        }
        Some(file)
    }

    /// Reports why `start..end` of the file does not deserialize as a
    /// rules file, if it does not.
    fn part_error(&mut self, path: &Path, text: &str, start: usize, end: usize) {
        if let Err(e) = parse_part::<Option<RawFile>>(text, start, end) {
            self.yaml_error(path, text, &e, None);
        }
    }

    /// A section that is a list of rules (`- id: …`).
    #[allow(clippy::too_many_arguments)]
    fn list<T: DeserializeOwned>(
        &mut self,
        path: &Path,
        text: &str,
        value: &Node,
        start: usize,
        end: usize,
        kind: &'static str,
        into: &mut Vec<Spanned<T>>,
    ) {
        let Kind::Seq(items) = &value.kind else {
            // `schedules:` with nothing, or not a list: the section as a whole.
            self.part_error(path, text, start, end);
            return;
        };
        for item in items {
            match parse_part::<Spanned<T>>(text, item.start, item.end) {
                Ok(rule) => into.push(rule),
                Err(e) => {
                    self.items_failed.insert(kind);
                    let id = parse_part::<IdOnly>(text, item.start, item.end)
                        .ok()
                        .map(|i| i.id.value);
                    let owner = id.as_ref().map(|id| super::rule(kind, id));
                    self.yaml_error(path, text, &e, owner.as_deref());
                    if let Some(id) = id {
                        self.failed_ids.insert((kind, id));
                    }
                }
            }
        }
    }

    /// A section that is a mapping from id to rule (`templates:` …).
    #[allow(clippy::too_many_arguments)]
    fn keyed<T: DeserializeOwned>(
        &mut self,
        path: &Path,
        text: &str,
        value: &Node,
        start: usize,
        end: usize,
        kind: &'static str,
        into: &mut Entries<T>,
    ) {
        let Kind::Map(pairs) = &value.kind else {
            self.part_error(path, text, start, end);
            return;
        };
        for (k, v) in pairs {
            match parse_part::<Entries<T>>(text, k.start, v.end) {
                Ok(entries) => into.0.extend(entries.0),
                Err(e) => {
                    self.items_failed.insert(kind);
                    let ids = parse_part::<Entries<IgnoredAny>>(text, k.start, v.end)
                        .map(|ids| ids.0)
                        .unwrap_or_default();
                    let owner = ids.first().map(|(id, _)| super::rule(kind, &id.value));
                    self.yaml_error(path, text, &e, owner.as_deref());
                    for (id, _) in ids {
                        self.failed_ids.insert((kind, id.value));
                    }
                }
            }
        }
    }

    /// Reports a serde-saphyr error at its place, in words for a rules
    /// author, naming the rule it is in when that is known.
    pub(super) fn yaml_error(
        &mut self,
        path: &Path,
        text: &str,
        e: &serde_saphyr::Error,
        owner: Option<&str>,
    ) {
        use serde_saphyr::MessageFormatter;
        let (line, column) = e
            .location()
            .map(|l| (l.line(), l.column()))
            .unwrap_or((0, 0));
        let raw = serde_saphyr::DefaultMessageFormatter
            .format_message(e.without_snippet())
            .into_owned();
        let (message, hint, column) = super::location::yaml_message(&raw, text, line, column);
        let d = self
            .diags
            .error(Place::new(path, line, column), owner, message);
        if let Some(hint) = hint {
            d.with_hint(hint);
        }
    }
}

/// Ids of rules that failed to parse, by kind.
pub(super) type FailedIds = BTreeSet<(&'static str, String)>;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_part_keeps_its_lines_and_columns() {
        let text = "a: é\nbb: 2\nc: [x, é, y]\n";
        assert_eq!(masked(text, 6, 11), "\nbb: 2");
        let y = text.rfind('y').expect("a y");
        assert_eq!(masked(text, y, y + 1), "\n\n          y");
    }

    #[test]
    fn the_tree_gives_each_rule_its_own_range() {
        let text = "schedules:\n  - id: a\n    cron: x\n  - id: b\nflow: [ {a: 1}, {b: 2} ]\n";
        let Some(Some(Node {
            kind: Kind::Map(sections),
            ..
        })) = tree(text)
        else {
            panic!("a mapping");
        };
        let Kind::Seq(items) = &sections[0].1.kind else {
            panic!("a list");
        };
        assert_eq!(&text[items[0].start..items[0].end], "id: a\n    cron: x");
        assert_eq!(&text[items[1].start..items[1].end], "id: b");
        let Kind::Seq(flow) = &sections[1].1.kind else {
            panic!("a flow list");
        };
        assert_eq!(&text[flow[1].start..flow[1].end], "{b: 2}");
        assert!(tree("a: [1, 2\n").is_none());
    }
}
