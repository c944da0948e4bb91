//! Segment evaluation: which members a segment selects.
//!
//! A member's view (no phone number) is matched against the static
//! `match:` conditions first, in Rust; the Rhai `when:` runs only for
//! members that pass them. A `when:` that fails (a limit, a runtime error)
//! excludes that member and is reported, never silently included.

use rhai::{Dynamic, Map};
use serde_json::Value;

use super::model::{ALL_SEGMENT, Condition, Field, Op, Segment};
use super::script::{EvalError, Sandbox};

/// Whether the segment selects the member described by `view`
/// (see [`crate::domain::member::Member::view`]).
pub fn matches(segment: &Segment, view: &Value, sandbox: &Sandbox) -> Result<bool, EvalError> {
    if !segment.conditions.iter().all(|c| holds(c, view)) {
        return Ok(false);
    }
    match &segment.when {
        None => Ok(true),
        Some(ast) => sandbox.eval_bool(ast, vec![("member", to_dynamic(view))], Map::new()),
    }
}

/// Whether a segment id names the built-in `all`.
pub(crate) fn is_all(id: &str) -> bool {
    id == ALL_SEGMENT
}

fn field<'a>(view: &'a Value, f: &Field) -> Option<&'a Value> {
    let v = match f {
        Field::Member(name) => view.get(name),
        Field::Attribute(name) => view.get("attributes").and_then(|a| a.get(name)),
    };
    v.filter(|v| !v.is_null())
}

/// One condition against one member. A missing field satisfies only
/// `exists: false`.
pub(crate) fn holds(c: &Condition, view: &Value) -> bool {
    let value = field(view, &c.field);
    match (&c.op, value) {
        (Op::Exists(want), v) => v.is_some() == *want,
        (_, None) => false,
        (Op::Eq(x), Some(v)) => elements(v).any(|e| same(e, x)),
        (Op::In(list), Some(v)) | (Op::AnyOf(list), Some(v)) => {
            elements(v).any(|e| list.iter().any(|x| same(e, x)))
        }
        (Op::AllOf(list), Some(v)) => list.iter().all(|x| elements(v).any(|e| same(e, x))),
        (Op::Lt(x), Some(v)) => compare(v, x).is_some_and(|o| o.is_lt()),
        (Op::Lte(x), Some(v)) => compare(v, x).is_some_and(|o| o.is_le()),
        (Op::Gt(x), Some(v)) => compare(v, x).is_some_and(|o| o.is_gt()),
        (Op::Gte(x), Some(v)) => compare(v, x).is_some_and(|o| o.is_ge()),
    }
}

/// What a member field holds, as [`crate::domain::member::Member::view`]
/// writes it. Roster attributes have no type the rules can know: each
/// cell is typed on import.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum FieldType {
    Number,
    /// `YYYY-MM-DD`.
    Date,
    Text,
    /// A list of text (`groups`).
    TextList,
}

impl FieldType {
    fn noun(self) -> &'static str {
        match self {
            FieldType::Number => "a number",
            FieldType::Date => "a date",
            FieldType::Text => "text",
            FieldType::TextList => "a list of text",
        }
    }
}

/// The type of a member field; `None` for roster attributes.
pub(crate) fn field_type(field: &Field) -> Option<FieldType> {
    let Field::Member(name) = field else {
        return None;
    };
    Some(match name.as_str() {
        "id" | "days_since_joined" => FieldType::Number,
        "joined_on" => FieldType::Date,
        "groups" => FieldType::TextList,
        _ => FieldType::Text,
    })
}

/// A condition that can never hold because its value cannot compare with
/// its field (a date field against a number, text ordered with `lt`, a
/// number field against a word), known before any member is seen. Returns
/// the message (naming operator, field and value) and a hint.
pub(crate) fn never_holds(c: &Condition) -> Option<(String, String)> {
    let name = match &c.field {
        Field::Member(n) | Field::Attribute(n) => n.as_str(),
    };
    let (op, values) = op_and_values(&c.op)?;
    if let Some(found) = not_a_single_value(op, name, &values) {
        return Some(found);
    }
    let ty = field_type(&c.field)?;
    type_mismatch(op, name, ty, &values).or_else(|| all_of_on_one_value(op, name, ty, &values))
}

/// The operator's name and the values it compares with; `None` for
/// `exists`, which compares with nothing.
fn op_and_values(op: &Op) -> Option<(&'static str, Vec<&Value>)> {
    Some(match op {
        Op::Eq(v) => ("eq", vec![v]),
        Op::In(l) => ("in", l.iter().collect()),
        Op::AnyOf(l) => ("any_of", l.iter().collect()),
        Op::AllOf(l) => ("all_of", l.iter().collect()),
        Op::Lt(v) => ("lt", vec![v]),
        Op::Lte(v) => ("lte", vec![v]),
        Op::Gt(v) => ("gt", vec![v]),
        Op::Gte(v) => ("gte", vec![v]),
        Op::Exists(_) => return None,
    })
}

/// Any field: a list, a map or nothing is no value to compare with.
fn not_a_single_value(op: &str, name: &str, values: &[&Value]) -> Option<(String, String)> {
    let v = values
        .iter()
        .find(|v| v.is_array() || v.is_object() || v.is_null())?;
    let hint = match v {
        Value::Null => "to select members without it, write `exists: false`",
        Value::Array(_) if op == "eq" => "to match any of several values, use `in` or `any_of`",
        _ => "compare with a single number, date or word",
    };
    Some((
        format!("`{op}` on `{name}` compares with `{v}`, which is not a single value"),
        hint.to_owned(),
    ))
}

fn is_date(v: &Value) -> bool {
    v.as_str()
        .is_some_and(|s| chrono::NaiveDate::parse_from_str(s.trim(), "%Y-%m-%d").is_ok())
}

fn is_number(v: &Value) -> bool {
    as_number(v).is_some()
}

/// A value of a type the member field of type `ty` never equals or
/// orders against (a number for a date, a word for a number, any ordering
/// of text).
fn type_mismatch(
    op: &str,
    name: &str,
    ty: FieldType,
    values: &[&Value],
) -> Option<(String, String)> {
    let ordering = matches!(op, "lt" | "lte" | "gt" | "gte");
    let mismatch = |v: &Value, hint: &str| {
        Some((
            format!(
                "`{op}` on `{name}` compares {} with `{v}`, so it never matches",
                ty.noun()
            ),
            hint.to_owned(),
        ))
    };
    match ty {
        FieldType::Date => {
            let v = values.iter().find(|v| !is_date(v))?;
            let hint = if is_number(v) && ordering {
                format!(
                    "write a date, like `2026-01-31`; for a number of days use `days_since_joined: {{ {op}: {v} }}`"
                )
            } else {
                "write a date, like `2026-01-31`".to_owned()
            };
            mismatch(v, &hint)
        }
        FieldType::Number => {
            let v = values.iter().find(|v| !is_number(v))?;
            let hint = if is_date(v) && name == "days_since_joined" {
                format!("write a number of days; for a date use `joined_on: {{ {op}: {v} }}`")
            } else {
                "write a number, like `30`".to_owned()
            };
            mismatch(v, &hint)
        }
        FieldType::Text | FieldType::TextList => {
            if ordering {
                return Some((
                    format!(
                        "`{op}` on `{name}` orders {}, so it never matches",
                        ty.noun()
                    ),
                    "match text with `eq`, `in`, `any_of` or `all_of`".to_owned(),
                ));
            }
            let v = values.iter().find(|v| v.is_boolean())?;
            mismatch(v, "write the text to match, like `en`")
        }
    }
}

/// A member has one value of a scalar field, so `all_of` two different
/// ones can never hold.
fn all_of_on_one_value(
    op: &str,
    name: &str,
    ty: FieldType,
    values: &[&Value],
) -> Option<(String, String)> {
    if op != "all_of" || ty == FieldType::TextList {
        return None;
    }
    let mut distinct: Vec<&Value> = Vec::new();
    for v in values {
        if !distinct.iter().any(|d| same(d, v)) {
            distinct.push(v);
        }
    }
    (distinct.len() > 1).then(|| {
        (
            format!(
                "`all_of` on `{name}` asks for several values of a field a member has one of, so it never matches"
            ),
            format!("to select members with any of them, use `in` on `{name}`"),
        )
    })
}

/// A name the writer probably meant as a member field (`joined` for
/// `joined_on`); without `attributes.` in front, a name that is not a
/// member field is read as a roster attribute.
pub(crate) fn near_member_field(name: &str) -> Option<&'static str> {
    use super::model::MEMBER_FIELDS;
    if MEMBER_FIELDS.contains(&name) {
        return None;
    }
    MEMBER_FIELDS
        .iter()
        .copied()
        .filter(|f| strsim::jaro_winkler(name, f) >= 0.85 || f.starts_with(&format!("{name}_")))
        .max_by(|a, b| strsim::jaro_winkler(name, a).total_cmp(&strsim::jaro_winkler(name, b)))
}

/// A list field's elements, or a scalar as a list of one.
fn elements(v: &Value) -> Box<dyn Iterator<Item = &Value> + '_> {
    match v {
        Value::Array(items) => Box::new(items.iter()),
        other => Box::new(std::iter::once(other)),
    }
}

/// Equality that treats `2` and `2.0`, and `"2"` and `2`, as the same,
/// since roster values arrive as text.
fn same(a: &Value, b: &Value) -> bool {
    match (as_number(a), as_number(b)) {
        (Some(x), Some(y)) => x == y,
        _ => match (a, b) {
            (Value::String(x), Value::String(y)) => x == y,
            _ => a == b,
        },
    }
}

fn as_number(v: &Value) -> Option<f64> {
    match v {
        Value::Number(n) => n.as_f64(),
        Value::String(s) => s.trim().parse().ok(),
        _ => None,
    }
}

fn compare(v: &Value, x: &Value) -> Option<std::cmp::Ordering> {
    if let (Some(a), Some(b)) = (as_number(v), as_number(x)) {
        return a.partial_cmp(&b);
    }
    let date = |v: &Value| {
        v.as_str()
            .and_then(|s| chrono::NaiveDate::parse_from_str(s, "%Y-%m-%d").ok())
    };
    Some(date(v)?.cmp(&date(x)?))
}

/// JSON → Rhai, for the read-only member view.
pub(crate) fn to_dynamic(v: &Value) -> Dynamic {
    match v {
        Value::Null => Dynamic::UNIT,
        Value::Bool(b) => Dynamic::from(*b),
        Value::Number(n) => match n.as_i64() {
            Some(i) => Dynamic::from(i),
            None => Dynamic::from(n.as_f64().unwrap_or(0.0)),
        },
        Value::String(s) => Dynamic::from(s.clone()),
        Value::Array(items) => Dynamic::from_array(items.iter().map(to_dynamic).collect()),
        Value::Object(map) => {
            let mut m = Map::new();
            for (k, v) in map {
                m.insert(k.as_str().into(), to_dynamic(v));
            }
            Dynamic::from_map(m)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn view() -> Value {
        json!({
            "id": 7, "external_id": "M7", "language": "es", "days_since_joined": 12,
            "joined_on": "2026-11-15", "groups": ["tuesday-anxiety"],
            "attributes": { "progress_level": 2, "diagnosis": ["PTSD", "GAD"], "cohort": "2026-A" }
        })
    }

    fn cond(field: Field, op: Op) -> Condition {
        Condition { field, op }
    }

    fn attr(name: &str) -> Field {
        Field::Attribute(name.into())
    }

    #[test]
    fn every_operator_against_a_member() {
        let v = view();
        let cases: Vec<(Condition, bool)> = vec![
            (
                cond(Field::Member("language".into()), Op::Eq(json!("es"))),
                true,
            ),
            (
                cond(Field::Member("language".into()), Op::Eq(json!("en"))),
                false,
            ),
            (cond(attr("progress_level"), Op::Eq(json!(2.0))), true),
            (
                cond(
                    Field::Member("language".into()),
                    Op::In(vec![json!("en"), json!("es")]),
                ),
                true,
            ),
            (
                cond(
                    attr("diagnosis"),
                    Op::AnyOf(vec![json!("PTSD"), json!("C-PTSD")]),
                ),
                true,
            ),
            (
                cond(attr("diagnosis"), Op::AnyOf(vec![json!("OCD")])),
                false,
            ),
            (
                cond(
                    attr("diagnosis"),
                    Op::AllOf(vec![json!("PTSD"), json!("GAD")]),
                ),
                true,
            ),
            (
                cond(
                    attr("diagnosis"),
                    Op::AllOf(vec![json!("PTSD"), json!("OCD")]),
                ),
                false,
            ),
            (cond(attr("progress_level"), Op::Lt(json!(3))), true),
            (cond(attr("progress_level"), Op::Lte(json!(2))), true),
            (cond(attr("progress_level"), Op::Gt(json!(2))), false),
            (cond(attr("progress_level"), Op::Gte(json!(2))), true),
            (
                cond(
                    Field::Member("joined_on".into()),
                    Op::Gte(json!("2026-11-01")),
                ),
                true,
            ),
            (
                cond(
                    Field::Member("joined_on".into()),
                    Op::Lt(json!("2026-11-01")),
                ),
                false,
            ),
            (cond(attr("cohort"), Op::Exists(true)), true),
            (cond(attr("missing"), Op::Exists(false)), true),
            (cond(attr("missing"), Op::Exists(true)), false),
            (cond(attr("missing"), Op::Eq(json!("x"))), false),
            (cond(attr("missing"), Op::Lt(json!(3))), false),
            (cond(attr("cohort"), Op::Lt(json!(3))), false),
        ];
        for (i, (c, want)) in cases.iter().enumerate() {
            assert_eq!(holds(c, &v), *want, "case {i}: {c:?}");
        }
    }

    #[test]
    fn comparisons_that_cannot_hold_are_named_before_any_member_is_seen() {
        let member = |n: &str| Field::Member(n.into());
        for (c, message) in [
            (
                cond(member("joined_on"), Op::Lt(json!(30))),
                "`lt` on `joined_on` compares a date with `30`, so it never matches",
            ),
            (
                cond(member("joined_on"), Op::Eq(json!("last year"))),
                "`eq` on `joined_on` compares a date with `\"last year\"`, so it never matches",
            ),
            (
                cond(member("days_since_joined"), Op::Gte(json!("2026-01-01"))),
                "`gte` on `days_since_joined` compares a number with `\"2026-01-01\"`, so it never matches",
            ),
            (
                cond(
                    member("days_since_joined"),
                    Op::In(vec![json!("new"), json!("old")]),
                ),
                "`in` on `days_since_joined` compares a number with `\"new\"`, so it never matches",
            ),
            (
                cond(member("language"), Op::Lt(json!(3))),
                "`lt` on `language` orders text, so it never matches",
            ),
            (
                cond(member("groups"), Op::Gt(json!(1))),
                "`gt` on `groups` orders a list of text, so it never matches",
            ),
            (
                cond(member("language"), Op::Eq(json!(true))),
                "`eq` on `language` compares text with `true`, so it never matches",
            ),
            (
                cond(
                    member("language"),
                    Op::AllOf(vec![json!("en"), json!("es")]),
                ),
                "`all_of` on `language` asks for several values of a field a member has one of, so it never matches",
            ),
            (
                cond(attr("diagnosis"), Op::Eq(json!(["PTSD", "GAD"]))),
                "`eq` on `diagnosis` compares with `[\"PTSD\",\"GAD\"]`, which is not a single value",
            ),
            (
                cond(attr("cohort"), Op::Eq(Value::Null)),
                "`eq` on `cohort` compares with `null`, which is not a single value",
            ),
        ] {
            let (got, _hint) = never_holds(&c).unwrap_or_else(|| panic!("passed: {c:?}"));
            assert_eq!(got, message);
            // What never holds at compile time never holds on a member.
            assert!(!holds(&c, &view()), "{c:?}");
        }
        let (_, hint) = never_holds(&cond(member("joined_on"), Op::Lt(json!(30)))).unwrap();
        assert_eq!(
            hint,
            "write a date, like `2026-01-31`; for a number of days use `days_since_joined: { lt: 30 }`"
        );
    }

    #[test]
    fn comparisons_that_can_hold_pass() {
        let member = |n: &str| Field::Member(n.into());
        for c in [
            cond(member("joined_on"), Op::Gte(json!("2026-11-01"))),
            cond(member("days_since_joined"), Op::Lt(json!(30))),
            cond(member("days_since_joined"), Op::Eq(json!("12"))),
            cond(member("external_id"), Op::Eq(json!(1001))),
            cond(member("groups"), Op::AllOf(vec![json!("a"), json!("b")])),
            cond(
                member("language"),
                Op::AllOf(vec![json!("es"), json!("es")]),
            ),
            cond(attr("progress_level"), Op::Lt(json!(3))),
            cond(attr("cohort"), Op::Eq(json!(true))),
            cond(attr("missing"), Op::Exists(false)),
        ] {
            assert_eq!(never_holds(&c), None, "{c:?}");
        }
    }

    #[test]
    fn names_close_to_a_member_field_are_found() {
        assert_eq!(near_member_field("joined"), Some("joined_on"));
        assert_eq!(
            near_member_field("days_since_join"),
            Some("days_since_joined")
        );
        assert_eq!(near_member_field("langauge"), Some("language"));
        assert_eq!(near_member_field("progress_level"), None);
        assert_eq!(near_member_field("language"), None);
    }

    #[test]
    fn when_runs_after_match_and_errors_are_errors() {
        let sandbox = Sandbox::new(Default::default());
        let kind = crate::rules::script::ScriptKind::Segment;
        let seg = Segment {
            id: "new".into(),
            conditions: vec![cond(Field::Member("language".into()), Op::Eq(json!("es")))],
            when: Some(
                sandbox
                    .compile_expression(kind, "member.days_since_joined < 30")
                    .unwrap(),
            ),
        };
        assert!(matches(&seg, &view(), &sandbox).unwrap());
        let mut old = view();
        old["days_since_joined"] = json!(90);
        assert!(!matches(&seg, &old, &sandbox).unwrap());
        let looping = Segment {
            id: "bad".into(),
            conditions: vec![],
            when: Some(
                sandbox
                    .compile_expression(kind, "member.attributes.nope.len() > 0")
                    .unwrap(),
            ),
        };
        assert!(matches(&looping, &view(), &sandbox).is_err());
    }
}
