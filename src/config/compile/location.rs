//! Where things are: places inside YAML values, tokens, and the
//! translation of serde-saphyr's messages into ones for a rules author.

use std::path::Path;

use serde_saphyr::Spanned;

use super::Compiler;
use crate::config::diag::Place;
use crate::text::did_you_mean;

impl Compiler<'_> {
    /// Where line/column `(line, column)` of a YAML string value's own text
    /// stands in the file.
    ///
    /// For plain, single-quoted-free and literal (`|`) values the mapping is
    /// arithmetic: a quoted value's text starts one column after the quote,
    /// a literal block's span is its first content line and its lines
    /// share that indentation. Folded (`>`) and multi-line quoted values,
    /// and escapes (`\"`), break that arithmetic, so the result is checked:
    /// the offending token must stand there in the file; if it does not, it
    /// is looked for in the value's own source text, and failing that the
    /// value's start is named.
    pub(super) fn place_in_value(
        &self,
        path: &Path,
        value: &Spanned<String>,
        line: usize,
        column: usize,
    ) -> Place {
        let start_line = value.referenced.line();
        let start_col = value.referenced.column();
        let text = self.texts.get(path).copied().unwrap_or("");
        // From line and column rather than the span's byte offset: a rule
        // parsed on its own ([`super::items`]) keeps its lines and columns
        // but not its byte offsets.
        let offset = byte_of(text, start_line, start_col);
        let quoted = offset
            .and_then(|o| text.get(o..))
            .and_then(|rest| rest.chars().next())
            .is_some_and(|c| c == '"' || c == '\'');
        let (l, c) = (line.max(1) as u64, column.max(1) as u64);
        let naive = match (l, quoted) {
            (1, true) => Place::new(path, start_line, start_col + c),
            (1, false) => Place::new(path, start_line, start_col + c - 1),
            (_, _) => Place::new(path, start_line + l - 1, (start_col + c).saturating_sub(1)),
        };
        let token = token_at(&value.value, line.max(1), column.max(1));
        if token.is_empty() || source_at(text, &naive).is_some_and(|s| s.starts_with(token)) {
            return naive;
        }
        // Search the value's source: it spans at most its own length plus
        // escapes and indentation, so look a little further than that.
        let Some(start) = offset else {
            return Place::of(path, value);
        };
        let window_end = text.len().min(start + value.value.len() * 2 + 200);
        let window = text.get(start..window_end).unwrap_or("");
        // The n-th occurrence of the token in the value is the n-th in its source.
        let nth = occurrences_before(&value.value, token, line.max(1), column.max(1));
        match window.match_indices(token).nth(nth) {
            Some((i, _)) => position_of(text, path, start + i),
            None => Place::of(path, value),
        }
    }
}

/// The word (or single symbol) at a 1-based line and column of `text`.
pub(super) fn token_at(text: &str, line: usize, column: usize) -> &str {
    let Some(l) = line.checked_sub(1).and_then(|n| text.lines().nth(n)) else {
        return "";
    };
    let Some((start, _)) = column.checked_sub(1).and_then(|n| l.char_indices().nth(n)) else {
        return "";
    };
    let rest = &l[start..];
    let word = |c: char| c.is_alphanumeric() || c == '_' || c == '.';
    let end = match rest.chars().next() {
        Some(c) if word(c) => rest.find(|c: char| !word(c)).unwrap_or(rest.len()),
        Some(c) => c.len_utf8(),
        None => 0,
    };
    &rest[..end]
}

/// How many times `token` occurs in `text` before the 1-based place.
pub(super) fn occurrences_before(text: &str, token: &str, line: usize, column: usize) -> usize {
    let mut byte = 0;
    for (i, l) in text.split_inclusive('\n').enumerate() {
        if i + 1 == line {
            byte += column
                .checked_sub(1)
                .and_then(|n| l.char_indices().nth(n))
                .map_or(l.len(), |(b, _)| b);
            break;
        }
        byte += l.len();
    }
    text[..byte.min(text.len())].matches(token).count()
}

/// The file text from a place onwards.
pub(super) fn source_at<'t>(text: &'t str, at: &Place) -> Option<&'t str> {
    let line = text.lines().nth((at.line as usize).checked_sub(1)?)?;
    let (b, _) = line
        .char_indices()
        .nth((at.column as usize).checked_sub(1)?)?;
    Some(&line[b..])
}

/// The byte offset of a 1-based line and (character) column.
pub(super) fn byte_of(text: &str, line: u64, column: u64) -> Option<usize> {
    let line_index = usize::try_from(line).ok()?.checked_sub(1)?;
    let line_start = if line_index == 0 {
        0
    } else {
        text.match_indices('\n').nth(line_index - 1)?.0 + 1
    };
    let rest = text.get(line_start..)?;
    let column_index = usize::try_from(column).ok()?.checked_sub(1)?;
    match rest.char_indices().nth(column_index) {
        Some((b, _)) => Some(line_start + b),
        None if column_index == rest.chars().count() => Some(text.len()),
        None => None,
    }
}

/// The 1-based line and column of a byte offset.
pub(super) fn position_of(text: &str, path: &Path, byte: usize) -> Place {
    let before = &text[..byte.min(text.len())];
    let line = before.matches('\n').count() as u64 + 1;
    let column = before.rsplit('\n').next().map_or(0, |l| l.chars().count()) as u64 + 1;
    Place::new(path, line, column)
}

/// Turns serde-saphyr's message into one for a rules author: names the
/// key and echoes the value where the parser only named a type, adds a
/// hint where one helps, and mends the column where it is known to be off.
/// Returns the message, the hint and the column.
pub(crate) fn yaml_message(
    raw: &str,
    source: &str,
    line: u64,
    column: u64,
) -> (String, Option<String>, u64) {
    layout_message(raw, source, line, column)
        .or_else(|| value_message(raw, source, line, column))
        .unwrap_or_else(|| (raw.to_owned(), None, column))
}

/// Messages about the document's shape: duplicate or unknown keys, tabs,
/// misplaced list items and colons.
fn layout_message(
    raw: &str,
    source: &str,
    line: u64,
    column: u64,
) -> Option<(String, Option<String>, u64)> {
    if let Some(rest) = raw.strip_prefix("duplicate mapping key: ") {
        let key = rest
            .split(", set DuplicateKeyPolicy")
            .next()
            .unwrap_or(rest);
        return Some((
            format!("duplicate key `{key}`"),
            Some("each key may appear once in a mapping; remove or rename one".to_owned()),
            column,
        ));
    }
    if let Some(rest) = raw.strip_prefix("unknown field `")
        && let Some((field, expected)) = rest.split_once("`, expected one of ")
    {
        let hint = did_you_mean(field, expected.split(", "));
        return Some((raw.to_owned(), hint, column));
    }
    if raw.contains("tabs disallowed") {
        // The parser names the column after the tab.
        return Some((
            raw.to_owned(),
            Some("indent YAML with spaces, not tabs".to_owned()),
            column.saturating_sub(1).max(1),
        ));
    }
    if raw.contains("found a tab") {
        return Some((
            raw.to_owned(),
            Some("indent YAML with spaces, not tabs; the tab may be on the next line".to_owned()),
            column,
        ));
    }
    if raw.contains("did not find expected '-' indicator")
        && let Some(found) = key_beside_list_item(source, line)
    {
        return Some(found);
    }
    if raw.contains("illegal placement of ':'") || raw.contains("mapping values are not allowed") {
        if let Some(found) = misindented_key(source, line) {
            return Some(found);
        }
        return Some((
            raw.to_owned(),
            Some("check the indentation of this line and the one above; an unclosed `[` or `{` earlier in the file has the same effect".to_owned()),
            column,
        ));
    }
    None
}

/// Messages about a value of the wrong type: they name the key and echo
/// the value where the parser only named a type.
fn value_message(
    raw: &str,
    source: &str,
    line: u64,
    column: u64,
) -> Option<(String, Option<String>, u64)> {
    let expected = match raw {
        "invalid boolean" => Some("true or false"),
        "expected string scalar" => Some("text"),
        "invalid u8" | "invalid u16" | "invalid u32" | "invalid u64" | "invalid i8"
        | "invalid i16" | "invalid i32" | "invalid i64" => Some("a whole number"),
        "invalid f32" | "invalid f64" => Some("a number"),
        "expected sequence start" => Some("a list, like `[a, b]` or `- a` lines"),
        "expected mapping start" => Some("a mapping of `key: value` lines"),
        _ => None,
    };
    if let Some(expected) = expected
        && let Some((key, value)) = key_and_value(source, line, column)
    {
        return Some((
            format!("invalid value `{value}` for `{key}`: expected {expected}"),
            None,
            column,
        ));
    }
    if let Some(expected) = expected {
        if matches!(raw, "expected mapping start" | "expected sequence start")
            && let Some(found) = nothing_nested(source, line, expected)
        {
            return Some(found);
        }
        return Some((format!("invalid value: expected {expected}"), None, column));
    }
    None
}

/// `key:` with nothing after it, and the next line level with it rather
/// than indented under it: YAML read the key as empty.
fn nothing_nested(
    source: &str,
    line: u64,
    expected: &str,
) -> Option<(String, Option<String>, u64)> {
    let lines: Vec<&str> = source.lines().collect();
    let index = (line as usize).checked_sub(1)?;
    let text = *lines.get(index)?;
    let indent = text.len() - text.trim_start_matches(' ').len();
    let key = text.trim().strip_suffix(':')?;
    if key.is_empty() || key.contains(':') {
        return None;
    }
    let (next_index, next) = lines
        .iter()
        .enumerate()
        .skip(index + 1)
        .find(|(_, l)| !l.trim().is_empty() && !l.trim_start().starts_with('#'))?;
    let next_indent = next.len() - next.trim_start_matches(' ').len();
    if next_indent != indent {
        return None;
    }
    let fixed = format!("{}{}", " ".repeat(indent + 2), next.trim_start());
    Some((
        format!(
            "`{key}:` has nothing under it: line {} is level with it, not indented under it, so YAML found no value where it expected {expected}",
            next_index + 1
        ),
        Some(format!(
            "indent what belongs to `{key}:` further, like `{fixed}`"
        )),
        indent as u64 + 1,
    ))
}

/// The `key:` line a YAML error points at (1-based `line`), with the
/// lines around it; `None` when that line is not a plain `key:`.
struct KeyLine<'s> {
    lines: Vec<&'s str>,
    index: usize,
    text: &'s str,
    indent: usize,
    key: &'s str,
}

impl<'s> KeyLine<'s> {
    fn at(source: &'s str, line: u64) -> Option<KeyLine<'s>> {
        let lines: Vec<&str> = source.lines().collect();
        let index = (line as usize).checked_sub(1)?;
        let text = *lines.get(index)?;
        let indent = text.len() - text.trim_start_matches(' ').len();
        let (key, _) = text.trim_start().split_once(':')?;
        if key.is_empty() || key.contains(char::is_whitespace) || key.starts_with(['-', '#']) {
            return None;
        }
        Some(KeyLine {
            lines,
            index,
            text,
            indent,
            key,
        })
    }
}

/// A `key:` line indented deeper than the key above it, which YAML reads
/// as the continuation of that key's value: the message says in words
/// what was found and what the parser expected, the hint shows the line
/// lined up. `None` when the line above does not explain it.
fn misindented_key(source: &str, line: u64) -> Option<(String, Option<String>, u64)> {
    let KeyLine {
        lines,
        index,
        text,
        indent,
        key,
    } = KeyLine::at(source, line)?;
    let (above_index, above) = lines[..index]
        .iter()
        .enumerate()
        .rev()
        .find(|(_, l)| !l.trim().is_empty() && !l.trim_start().starts_with('#'))?;
    let above_indent = above.len() - above.trim_start_matches(' ').len();
    // The key above starts after any `- ` of a list item.
    let above_rest = &above[above_indent..];
    let (key_column, above_key) = match above_rest.strip_prefix("- ") {
        Some(item) => (above_indent + 2, item),
        None => (above_indent, above_rest),
    };
    let (above_key, above_value) = above_key.split_once(':')?;
    // A plain value continues onto deeper lines; a bracket, block scalar or
    // quote left open is a different fault.
    let value = above_value.trim();
    let plain = !value.is_empty()
        && !value.starts_with(['[', '{', '|', '>', '&', '*', '!'])
        && !((value.starts_with('"') || value.starts_with('\''))
            && (value.len() < 2 || !value.ends_with(&value[..1])));
    if indent <= key_column || !plain || above_key.contains(' ') {
        return None;
    }
    let spaces = |n: usize| {
        if n == 1 {
            "1 space".to_owned()
        } else {
            format!("{n} spaces")
        }
    };
    let message = format!(
        "`{key}:` is indented {}, deeper than `{above_key}:` on line {} ({}), so YAML reads it as part of `{above_key}`'s value",
        spaces(indent),
        above_index + 1,
        spaces(key_column),
    );
    let fixed = format!("{}{}", " ".repeat(key_column), text.trim_start());
    Some((
        message,
        Some(format!("line the keys of one mapping up: `{fixed}`")),
        indent as u64 + 1,
    ))
}

/// A `key:` line in a block list that lines up neither with the `-` of
/// the item above (a new item) nor with that item's keys: what the parser
/// expected, in words, and the line lined up with the item's keys.
fn key_beside_list_item(source: &str, line: u64) -> Option<(String, Option<String>, u64)> {
    let KeyLine {
        lines,
        index,
        text,
        indent,
        key,
    } = KeyLine::at(source, line)?;
    let (item_index, item) = lines[..index].iter().enumerate().rev().find(|(_, l)| {
        let dash = l.len() - l.trim_start_matches(' ').len();
        dash <= indent && l[dash..].starts_with("- ")
    })?;
    let dash = item.len() - item.trim_start_matches(' ').len();
    let keys = dash + 2;
    if indent >= keys {
        return None;
    }
    let spaces = |n: usize| {
        if n == 1 {
            "1 space".to_owned()
        } else {
            format!("{n} spaces")
        }
    };
    let message = if indent == dash {
        format!(
            "`{key}:` is indented {}, level with the `-` of the list item on line {}, where YAML expected the next item to start with `- `",
            spaces(indent),
            item_index + 1
        )
    } else {
        format!(
            "`{key}:` is indented {}, between the `-` of the list item on line {} ({}) and its keys ({}): YAML expected a new item `- ` or a key lined up with the others",
            spaces(indent),
            item_index + 1,
            spaces(dash),
            spaces(keys)
        )
    };
    let fixed = format!("{}{}", " ".repeat(keys), text.trim_start());
    Some((
        message,
        Some(format!(
            "to keep it in that item, line it up with its keys: `{fixed}`"
        )),
        indent as u64 + 1,
    ))
}

/// The key a value belongs to and the value's text on its line, read from
/// the source: `    max_reprompts: twice` at the `t` gives
/// (`max_reprompts`, `twice`).
pub(super) fn key_and_value(source: &str, line: u64, column: u64) -> Option<(String, String)> {
    let text = source.lines().nth((line as usize).checked_sub(1)?)?;
    let (at, _) = text.char_indices().nth((column as usize).checked_sub(1)?)?;
    let before = &text[..at];
    let colon = before.rfind(':')?;
    let key = before[..colon].rsplit(['{', ',', ' ', '-']).next()?.trim();
    let value = text[at..].split(" #").next()?.trim_end();
    let value = value.strip_suffix(['}', ',']).unwrap_or(value).trim_end();
    (!key.is_empty() && !value.is_empty()).then(|| (key.to_owned(), value.to_owned()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_and_positions_inside_values() {
        assert_eq!(token_at("Hi {{ member.frist }}", 1, 7), "member.frist");
        assert_eq!(token_at("a\nb and c", 2, 3), "and");
        assert_eq!(token_at("x == (", 1, 6), "(");
        assert_eq!(occurrences_before("a and b and c", "and", 1, 9), 1);
        let p = position_of("one\ntwo three", Path::new("f"), 8);
        assert_eq!((p.line, p.column), (2, 5));
        assert_eq!(byte_of("one\ntwo three", 2, 5), Some(8));
        assert_eq!(byte_of("é\nab", 1, 2), Some(2));
        assert_eq!(byte_of("one", 0, 1), None);
    }

    #[test]
    fn a_key_indented_deeper_than_the_one_above_says_what_yaml_expected() {
        let src = "schedules:\n  - id: weekly-hello\n    template: weekly-hello\n     cron: \"0 12 * * MON\"\n";
        let (message, hint, column) =
            yaml_message("mapping values are not allowed in this context", src, 4, 10);
        assert_eq!(
            message,
            "`cron:` is indented 5 spaces, deeper than `template:` on line 3 (4 spaces), so YAML reads it as part of `template`'s value"
        );
        assert_eq!(
            hint.as_deref(),
            Some("line the keys of one mapping up: `    cron: \"0 12 * * MON\"`")
        );
        assert_eq!(column, 6);
        // Under a list item, the keys line up after the `- `.
        let src = "groups:\n  - id: tuesday\n      name: Tuesday\n";
        let (message, hint, _) =
            yaml_message("mapping values are not allowed in this context", src, 3, 11);
        assert!(
            message.contains("deeper than `id:` on line 2 (4 spaces)"),
            "{message}"
        );
        assert_eq!(
            hint.as_deref(),
            Some("line the keys of one mapping up: `    name: Tuesday`")
        );
        // An unclosed bracket above is a different fault.
        let (message, _, _) = yaml_message(
            "mapping values are not allowed in this context",
            "a:\n  b: [1,\n    c: 2\n",
            3,
            6,
        );
        assert_eq!(message, "mapping values are not allowed in this context");
    }

    #[test]
    fn a_key_beside_a_list_item_says_what_yaml_expected() {
        let raw = "while parsing a block collection, did not find expected '-' indicator";
        let src = "schedules:\n  - id: weekly-hello\n    template: weekly-hello\n   cron: \"0 12 * * MON\"\n";
        let (message, hint, column) = yaml_message(raw, src, 4, 4);
        assert_eq!(
            message,
            "`cron:` is indented 3 spaces, between the `-` of the list item on line 2 (2 spaces) and its keys (4 spaces): YAML expected a new item `- ` or a key lined up with the others"
        );
        assert_eq!(
            hint.as_deref(),
            Some("to keep it in that item, line it up with its keys: `    cron: \"0 12 * * MON\"`")
        );
        assert_eq!(column, 4);
        let src = "schedules:\n  - id: weekly-hello\n  template: weekly-hello\n";
        let (message, hint, _) = yaml_message(raw, src, 3, 3);
        assert_eq!(
            message,
            "`template:` is indented 2 spaces, level with the `-` of the list item on line 2, where YAML expected the next item to start with `- `"
        );
        assert_eq!(
            hint.as_deref(),
            Some("to keep it in that item, line it up with its keys: `    template: weekly-hello`")
        );
    }

    #[test]
    fn a_key_with_its_contents_level_with_it_says_what_yaml_expected() {
        let src = "templates:\n  weekly-hello:\n  body: \"Hi\"\n";
        let (message, hint, column) = yaml_message("expected mapping start", src, 2, 15);
        assert_eq!(
            message,
            "`weekly-hello:` has nothing under it: line 3 is level with it, not indented under it, so YAML found no value where it expected a mapping of `key: value` lines"
        );
        assert_eq!(
            hint.as_deref(),
            Some("indent what belongs to `weekly-hello:` further, like `    body: \"Hi\"`")
        );
        assert_eq!(column, 3);
    }

    #[test]
    fn type_errors_name_the_key_and_echo_the_value() {
        let src = "surveys:\n  s:\n    max_reprompts: twice  # no\n  t: { enabled: maybe }\n";
        assert_eq!(
            yaml_message("invalid u32", src, 3, 20).0,
            "invalid value `twice` for `max_reprompts`: expected a whole number"
        );
        assert_eq!(
            yaml_message("invalid boolean", src, 4, 17).0,
            "invalid value `maybe` for `enabled`: expected true or false"
        );
        let (_, hint, _) = yaml_message(
            "unknown field `expire_after`, expected one of id, expires_after",
            "",
            1,
            1,
        );
        assert_eq!(hint.as_deref(), Some("did you mean `expires_after`?"));
    }
}
