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
    if let Some(rest) = raw.strip_prefix("duplicate mapping key: ") {
        let key = rest
            .split(", set DuplicateKeyPolicy")
            .next()
            .unwrap_or(rest);
        return (
            format!("duplicate key `{key}`"),
            Some("each key may appear once in a mapping; remove or rename one".to_owned()),
            column,
        );
    }
    if let Some(rest) = raw.strip_prefix("unknown field `")
        && let Some((field, expected)) = rest.split_once("`, expected one of ")
    {
        let hint = did_you_mean(field, expected.split(", "));
        return (raw.to_owned(), hint, column);
    }
    if raw.contains("tabs disallowed") {
        // The parser names the column after the tab.
        return (
            raw.to_owned(),
            Some("indent YAML with spaces, not tabs".to_owned()),
            column.saturating_sub(1).max(1),
        );
    }
    if raw.contains("found a tab") {
        return (
            raw.to_owned(),
            Some("indent YAML with spaces, not tabs; the tab may be on the next line".to_owned()),
            column,
        );
    }
    if raw.contains("illegal placement of ':'") || raw.contains("mapping values are not allowed") {
        return (
            raw.to_owned(),
            Some("check the indentation of this line and the one above; an unclosed `[` or `{` earlier in the file has the same effect".to_owned()),
            column,
        );
    }
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
        return (
            format!("invalid value `{value}` for `{key}`: expected {expected}"),
            None,
            column,
        );
    }
    if let Some(expected) = expected {
        return (format!("invalid value: expected {expected}"), None, column);
    }
    (raw.to_owned(), None, column)
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
