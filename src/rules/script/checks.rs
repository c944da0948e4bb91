//! What compiles but cannot work, found in the source (on its
//! [`tokens`](super::tokens), so outside strings and comments) and so
//! caught however the script branches: `answer()` where there are no
//! survey answers, a `member.NAME`, `score.NAME` or `engagement.NAME`
//! that is not a field, and a member field or an answer compared with a
//! literal of another type.

use rhai::Map;

use super::tokens::{is_word, tokens};
use super::{CONTEXT_FIELDS, ScriptError, ScriptKind};

/// Functions that exist only where their context does: `answer(id)` reads
/// the survey answers an alert is evaluated with.
const ALERT_ONLY_FUNCTIONS: &[&str] = &["answer"];

/// What compiles but cannot work, found in the source (outside strings
/// and comments) so it is caught however the script branches: a call to a
/// function the kind's context does not define (`answer("mood")` in a
/// segment, which has no survey), and a member field that does not exist.
pub(super) fn static_check(kind: ScriptKind, source: &str) -> Option<ScriptError> {
    if kind != ScriptKind::Alert
        && let Some((name, line, column)) = calls(source)
            .into_iter()
            .find(|(name, _, _)| ALERT_ONLY_FUNCTIONS.contains(&name.as_str()))
    {
        return Some(ScriptError {
            message: format!("`{name}()` reads survey answers, and a segment's `when:` has none"),
            hint: Some(
                "survey answers reach alerts only; select members here by roster fields and attributes, like `member.attributes.progress_level`"
                    .to_owned(),
            ),
            line: Some(line),
            column: Some(column),
        });
    }
    if let Some(found) = mismatched_comparison(source) {
        return Some(found);
    }
    if kind == ScriptKind::Alert
        && let Some((var, name, line, column)) = unknown_context_fields(source).into_iter().next()
    {
        let fields = CONTEXT_FIELDS
            .iter()
            .find(|(v, _)| *v == var)
            .map_or(&[][..], |(_, f)| *f);
        return Some(ScriptError {
            message: format!(
                "`{var}.{name}` is not a field of `{var}`, so it would always be `()`"
            ),
            hint: crate::text::did_you_mean(&name, fields.iter().copied())
                .or_else(|| Some(format!("`{var}` has: {}", fields.join(", ")))),
            line: Some(line),
            column: Some(column),
        });
    }
    let (name, line, column) = unknown_member_fields(source).into_iter().next()?;
    Some(ScriptError {
        message: format!("`member.{name}` is not a member field, so it would always be `()`"),
        hint: crate::text::did_you_mean(&name, member_view_fields()).or_else(|| {
            Some(format!(
                "for a roster attribute write `member.attributes.{name}`"
            ))
        }),
        line: Some(line),
        column: Some(column),
    })
}

/// Every plain function call in Rhai source (`name(`, not `.name(` and not
/// `fn name(`), with its 1-based line and column, outside strings and
/// comments.
fn calls(source: &str) -> Vec<(String, usize, usize)> {
    let tokens = tokens(source);
    tokens
        .iter()
        .enumerate()
        .filter(|(i, t)| {
            let before = i.checked_sub(1).and_then(|b| tokens.get(b));
            is_word(t)
                && tokens.get(i + 1).is_some_and(|n| n.text == "(")
                && !before.is_some_and(|b| b.text == "." || b.text == "fn")
        })
        .map(|(_, t)| (t.text.clone(), t.line, t.column))
        .collect()
}

/// The questions named by `answer("id")` calls in Rhai source, outside
/// strings and comments, each with the 1-based line and column of its
/// `answer`.
pub(crate) fn answer_calls(source: &str) -> Vec<(String, usize, usize)> {
    let tokens = tokens(source);
    let text = |i: usize| tokens.get(i).map_or("", |t| t.text.as_str());
    tokens
        .iter()
        .enumerate()
        .filter(|(i, t)| {
            t.text == "answer"
                && (*i == 0 || !matches!(text(i - 1), "." | "fn"))
                && text(i + 1) == "("
                && text(i + 2).starts_with('"')
                && text(i + 3) == ")"
        })
        .map(|(i, t)| (text(i + 2)[1..].to_owned(), t.line, t.column))
        .collect()
}

/// `member.NAME` where NAME is not a field of the member view: Rhai reads
/// it as `()`, so the script would quietly compare nothing. With the name
/// and the place of NAME.
fn unknown_member_fields(source: &str) -> Vec<(String, usize, usize)> {
    let tokens = tokens(source);
    tokens
        .windows(3)
        .enumerate()
        .filter(|(i, w)| {
            let before = i.checked_sub(1).and_then(|b| tokens.get(b));
            w[0].text == "member"
                && before.is_none_or(|b| b.text != ".")
                && w[1].text == "."
                && is_word(&w[2])
                && !is_member_view_field(&w[2].text)
                // `member.x(` is a method call, like `member.keys()`.
                && tokens.get(i + 3).is_none_or(|n| n.text != "(")
        })
        .map(|(_, w)| (w[2].text.clone(), w[2].line, w[2].column))
        .collect()
}

/// `score.NAME` or `engagement.NAME` where NAME is not one of the map's
/// keys ([`CONTEXT_FIELDS`]): `(variable, NAME, line, column)`.
fn unknown_context_fields(source: &str) -> Vec<(&'static str, String, usize, usize)> {
    let tokens = tokens(source);
    let mut found = Vec::new();
    for (i, w) in tokens.windows(3).enumerate() {
        let before = i.checked_sub(1).and_then(|b| tokens.get(b));
        let Some((var, fields)) = CONTEXT_FIELDS.iter().find(|(v, _)| *v == w[0].text) else {
            continue;
        };
        if before.is_some_and(|b| b.text == ".")
            || w[1].text != "."
            || !is_word(&w[2])
            || fields.contains(&w[2].text.as_str())
            || tokens.get(i + 3).is_some_and(|n| n.text == "(")
        {
            continue;
        }
        found.push((*var, w[2].text.clone(), w[2].line, w[2].column));
    }
    found
}

/// `member.FIELD OP LITERAL` where the literal's type cannot compare with
/// the field's: Rhai answers `false` to a comparison across types (`"2026-01-05"
/// < 30`), so the script would quietly never hold.
fn mismatched_comparison(source: &str) -> Option<ScriptError> {
    use crate::rules::segment::{FieldType, field_type};
    let tokens = tokens(source);
    let text = |i: usize| tokens.get(i).map_or("", |t| t.text.as_str());
    for (i, t) in tokens.iter().enumerate() {
        if t.text != "member" || (i > 0 && text(i - 1) == ".") || text(i + 1) != "." {
            continue;
        }
        let field = text(i + 2);
        if field == "attributes" || !is_member_view_field(field) {
            continue;
        }
        // `member.FIELD OP LITERAL`, or `LITERAL OP member.FIELD`.
        let after = match (text(i + 3), text(i + 4)) {
            ("<" | ">", "=") | ("=" | "!", "=") => {
                Some((format!("{}{}", text(i + 3), text(i + 4)), i + 5))
            }
            ("<" | ">", _) => Some((text(i + 3).to_owned(), i + 4)),
            _ => None,
        };
        let before = || {
            if matches!(text(i + 3), "." | "(" | "[") {
                return None;
            }
            let j = i.checked_sub(1)?;
            match (text(j.checked_sub(1)?), text(j)) {
                ("<" | ">" | "=" | "!", "=") => {
                    Some((format!("{}=", text(j - 1)), j.checked_sub(2)?))
                }
                (_, "<" | ">") => Some((text(j).to_owned(), j.checked_sub(1)?)),
                _ => None,
            }
        };
        let (fragment, op, rhs) = match after
            .map(|a| (true, a))
            .or_else(|| before().map(|b| (false, b)))
        {
            Some((true, (op, rhs))) => (format!("member.{field} {op} ..."), op, rhs),
            Some((false, (op, rhs))) => (format!("... {op} member.{field}"), op, rhs),
            None => continue,
        };
        let literal = match text(rhs) {
            t if t.starts_with('"') => "text",
            "true" | "false" => "a boolean",
            t if t.starts_with(|c: char| c.is_ascii_digit()) => "a number",
            _ => continue,
        };
        let ordering = op.starts_with(['<', '>']);
        let Some(ty) = field_type(&crate::rules::Field::Member(field.to_owned())) else {
            continue;
        };
        let (noun, hint) = match (ty, literal) {
            (FieldType::Number, "a number") | (FieldType::Date | FieldType::Text, "text") => continue,
            (FieldType::Date, _) => (
                "a date",
                "for a number of days compare `member.days_since_joined`; for a date write it in quotes, like `\"2026-01-31\"`".to_owned(),
            ),
            (FieldType::Number, _) => ("a number", "write the number without quotes, like `30`".to_owned()),
            (FieldType::Text, _) => ("text", "write the text in quotes, like `\"en\"`".to_owned()),
            (FieldType::TextList, _) => (
                "a list",
                format!("to test membership write `member.{field}.contains(\"...\")`"),
            ),
        };
        // A list compares with nothing, and equals no text; `==` with a
        // number or boolean is left to the other checks.
        if ty == FieldType::TextList && !ordering && literal != "text" {
            continue;
        }
        return Some(ScriptError {
            message: format!(
                "`{fragment}` compares {noun} with {literal}, which Rhai answers `false` every time"
            ),
            hint: Some(hint),
            line: Some(t.line),
            column: Some(t.column),
        });
    }
    None
}

/// `answer("id") OP LITERAL` where the question's answers (as the samples
/// give them: a number, the text of a choice or free text, `true`/`false`
/// for yes/no) cannot compare with the literal.
pub(super) fn mismatched_answer(source: &str, answer_samples: &[Map]) -> Option<ScriptError> {
    let tokens = tokens(source);
    let text = |i: usize| tokens.get(i).map_or("", |t| t.text.as_str());
    for (i, t) in tokens.iter().enumerate() {
        if t.text != "answer" || (i > 0 && text(i - 1) == ".") || text(i + 1) != "(" {
            continue;
        }
        let Some(id) = text(i + 2).strip_prefix('"') else {
            continue;
        };
        if text(i + 3) != ")" {
            continue;
        }
        let (op, rhs) = match (text(i + 4), text(i + 5)) {
            ("<" | ">", "=") | ("=" | "!", "=") => {
                (format!("{}{}", text(i + 4), text(i + 5)), i + 6)
            }
            ("<" | ">", _) => (text(i + 4).to_owned(), i + 5),
            _ => continue,
        };
        let literal = match text(rhs) {
            r if r.starts_with('"') => "text",
            "true" | "false" => "a boolean",
            r if r.starts_with(|c: char| c.is_ascii_digit()) => "a number",
            _ => continue,
        };
        let Some(sample) = answer_samples.iter().find_map(|m| m.get(id)) else {
            continue;
        };
        let (answer, hint) = if sample.is_int() || sample.is_float() {
            ("a number", "compare it with a number, like `3`")
        } else if sample.is_bool() {
            ("a boolean", "a yes/no answer is `true` or `false`")
        } else if sample.is_string() {
            (
                "text",
                "compare it with text in quotes, like one of the question's choices",
            )
        } else {
            continue;
        };
        if answer == literal {
            continue;
        }
        return Some(ScriptError {
            message: format!(
                "`answer(\"{id}\") {op} ...` compares {answer} (how question `{id}` is answered) with {literal}, which Rhai answers `false` every time"
            ),
            hint: Some(hint.to_owned()),
            line: Some(t.line),
            column: Some(t.column),
        });
    }
    None
}

/// The fields of the member a script sees: the member fields segments
/// match on ([`MEMBER_FIELDS`](crate::rules::MEMBER_FIELDS)), and
/// `attributes`.
fn member_view_fields() -> impl Iterator<Item = &'static str> {
    crate::rules::MEMBER_FIELDS
        .iter()
        .copied()
        .chain(["attributes"])
}

fn is_member_view_field(name: &str) -> bool {
    member_view_fields().any(|f| f == name)
}

#[cfg(test)]
mod tests {
    use rhai::{Dynamic, Map};

    use super::*;
    use crate::rules::script::testing::sandbox;

    #[test]
    fn answer_in_a_segment_is_an_error_however_the_script_branches() {
        let s = sandbox();
        let err = s
            .compile_expression(
                ScriptKind::Segment,
                "member.days_since_joined > 9999 && answer(\"mood\") <= 3",
            )
            .unwrap_err();
        assert_eq!(
            err.message,
            "`answer()` reads survey answers, and a segment's `when:` has none"
        );
        assert_eq!((err.line, err.column), (Some(1), Some(36)));
        assert!(
            s.compile_expression(ScriptKind::Alert, "answer(\"mood\") <= 3")
                .is_ok()
        );
        // Strings, comments and methods named `answer` are not calls of it.
        for ok in [
            "member.first_name == \"answer(x)\"",
            "member.attributes.answer == 1 // answer(\"mood\")",
            "member.groups.contains(\"answer\")",
        ] {
            assert!(
                s.compile_expression(ScriptKind::Segment, ok).is_ok(),
                "{ok}"
            );
        }
    }

    #[test]
    fn a_member_field_that_does_not_exist_is_an_error() {
        let s = sandbox();
        for kind in [ScriptKind::Segment, ScriptKind::Alert] {
            let err = s
                .compile_expression(
                    kind,
                    "member.language == \"es\" || member.days_since_join < 30",
                )
                .unwrap_err();
            assert_eq!(
                err.message,
                "`member.days_since_join` is not a member field, so it would always be `()`"
            );
            assert_eq!(
                err.hint.as_deref(),
                Some("did you mean `days_since_joined`?")
            );
            assert_eq!((err.line, err.column), (Some(1), Some(35)));
        }
        let err = s
            .compile_expression(ScriptKind::Segment, "member.progress_level < 3")
            .unwrap_err();
        assert_eq!(
            err.hint.as_deref(),
            Some("for a roster attribute write `member.attributes.progress_level`")
        );
        for ok in [
            "member.attributes.anything > 2",
            "member.groups.contains(\"tuesday\")",
            "member.keys().len() > 0",
            "\"member.nope\" != member.first_name",
        ] {
            assert!(
                s.compile_expression(ScriptKind::Segment, ok).is_ok(),
                "{ok}"
            );
        }
    }

    #[test]
    fn a_comparison_across_types_with_a_member_field_is_an_error() {
        let s = sandbox();
        for (source, message) in [
            (
                "member.joined_on < 30",
                "`member.joined_on < ...` compares a date with a number, which Rhai answers `false` every time",
            ),
            (
                "member.language == \"es\" && member.days_since_joined >= \"30\"",
                "`member.days_since_joined >= ...` compares a number with text, which Rhai answers `false` every time",
            ),
            (
                "member.external_id == 1001",
                "`member.external_id == ...` compares text with a number, which Rhai answers `false` every time",
            ),
            (
                "member.groups == \"tuesday\"",
                "`member.groups == ...` compares a list with text, which Rhai answers `false` every time",
            ),
            (
                "30 >= member.joined_on",
                "`... >= member.joined_on` compares a date with a number, which Rhai answers `false` every time",
            ),
            (
                "member.language == \"es\" && \"30\" < member.days_since_joined",
                "`... < member.days_since_joined` compares a number with text, which Rhai answers `false` every time",
            ),
        ] {
            let err = s
                .compile_expression(ScriptKind::Segment, source)
                .unwrap_err();
            assert_eq!(err.message, message, "{source}");
        }
        // The premise: plain Rhai answers such a comparison `false`, no error.
        let plain = rhai::Engine::new();
        assert!(!plain.eval::<bool>("\"2026-01-05\" < 30").unwrap());
        assert!(!plain.eval::<bool>("12 >= \"30\"").unwrap());
        for ok in [
            "member.joined_on < \"2026-01-31\"",
            "member.days_since_joined < 30",
            "member.language != \"en\"",
            "member.groups.contains(\"tuesday\")",
            "member.attributes.level < 3",
            "30 > member.days_since_joined",
            "3 < member.groups.len()",
            "\"2026-01-01\" <= member.joined_on",
        ] {
            assert!(
                s.compile_expression(ScriptKind::Segment, ok).is_ok(),
                "{ok}"
            );
        }
    }

    #[test]
    fn an_answer_compared_with_a_literal_of_another_type_is_an_error() {
        let s = sandbox();
        let samples = [Map::from_iter([
            ("mood".into(), Dynamic::from(1_i64)),
            ("feeling".into(), Dynamic::from("good".to_owned())),
            ("ok".into(), Dynamic::from(true)),
        ])];
        for (source, message) in [
            (
                "answer(\"feeling\") <= 3",
                "`answer(\"feeling\") <= ...` compares text (how question `feeling` is answered) with a number, which Rhai answers `false` every time",
            ),
            (
                "member.days_since_joined < 30 && answer(\"mood\") == \"3\"",
                "`answer(\"mood\") == ...` compares a number (how question `mood` is answered) with text, which Rhai answers `false` every time",
            ),
            (
                "answer(\"ok\") == \"yes\"",
                "`answer(\"ok\") == ...` compares a boolean (how question `ok` is answered) with text, which Rhai answers `false` every time",
            ),
        ] {
            let ast = s.compile_expression(ScriptKind::Alert, source).unwrap();
            let err = s
                .probe(ScriptKind::Alert, &ast, source, &samples)
                .unwrap_or_else(|| panic!("not caught: {source}"));
            assert_eq!(err.message, message);
        }
        for ok in [
            "answer(\"mood\") <= 3",
            "answer(\"feeling\") == \"good\"",
            "answer(\"ok\") == false",
            "answer(\"unasked\") == 3",
        ] {
            let ast = s.compile_expression(ScriptKind::Alert, ok).unwrap();
            assert!(
                s.probe(ScriptKind::Alert, &ast, ok, &samples).is_none(),
                "{ok}"
            );
        }
    }

    #[test]
    fn the_source_checks_never_panic_on_arbitrary_text() {
        const PIECES: &[&str] = &[
            "member",
            ".",
            "answer",
            "(",
            ")",
            "\"",
            "'",
            "`",
            "\\",
            "<",
            ">",
            "=",
            "!",
            "30",
            "joined_on",
            "groups",
            "fn",
            " ",
            "\n",
            "/",
            "*",
            "é",
            "🙂",
            "x",
            "\"mood\"",
        ];
        let samples = [Map::from_iter([("mood".into(), Dynamic::from(1_i64))])];
        let mut state: u64 = 0xD1B5_4A32_D192_ED03;
        let mut next = || {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            state
        };
        let mut found = 0;
        for _ in 0..5_000 {
            let n = next() % 12;
            let source: String = (0..n)
                .map(|_| PIECES[(next() % PIECES.len() as u64) as usize])
                .collect();
            for kind in [ScriptKind::Segment, ScriptKind::Alert] {
                found += usize::from(static_check(kind, &source).is_some());
            }
            found += usize::from(mismatched_answer(&source, &samples).is_some());
        }
        assert!(found > 0, "no input was flagged at all");
    }

    #[test]
    fn calls_are_found_outside_strings_comments_and_definitions() {
        let found: Vec<(String, usize, usize)> =
            calls("fn helper(x) { x }\n/* answer(1) */ let a = 'a';\nhelper (\"f(\") + x.len()");
        assert_eq!(found, vec![("helper".to_owned(), 3, 1)]);
    }

    #[test]
    fn a_score_or_engagement_field_that_does_not_exist_is_an_error() {
        let s = sandbox();
        let err = s
            .compile_expression(ScriptKind::Alert, "engagement.replies_30 > 2")
            .unwrap_err();
        assert_eq!(
            err.message,
            "`engagement.replies_30` is not a field of `engagement`, so it would always be `()`"
        );
        assert_eq!(err.hint.as_deref(), Some("did you mean `replies_30d`?"));
        assert_eq!((err.line, err.column), (Some(1), Some(12)));
        let err = s
            .compile_expression(ScriptKind::Alert, "score.sum > 9")
            .unwrap_err();
        assert_eq!(
            err.hint.as_deref(),
            Some("`score` has: total, band, complete")
        );
        for ok in [
            "score.total >= 10 && score.band == \"severe\" && score.complete",
            "engagement.days_since_last_reply > 14.0",
            "score.keys().len() == 3",
        ] {
            assert!(s.compile_expression(ScriptKind::Alert, ok).is_ok(), "{ok}");
        }
    }
}
