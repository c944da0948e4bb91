//! Segment evaluation: which members a segment selects.
//!
//! A member's view (no phone number) is matched against the static
//! `match:` conditions first, in Rust; the Rhai `when:` runs only for
//! members that pass them. A `when:` that fails (a limit, a runtime error)
//! excludes that member and is reported, never silently included.

use rhai::{Dynamic, Map};
use serde_json::Value;

use super::rules::{ALL_SEGMENT, Condition, Field, Op, Segment};
use super::script::Sandbox;

/// Whether the segment selects the member described by `view`
/// (see [`crate::store::members::Member::view`]).
pub fn matches(segment: &Segment, view: &Value, sandbox: &Sandbox) -> Result<bool, String> {
    if !segment.conditions.iter().all(|c| holds(c, view)) {
        return Ok(false);
    }
    match &segment.when {
        None => Ok(true),
        Some(ast) => sandbox.eval_bool(ast, vec![("member", to_dynamic(view))], Map::new()),
    }
}

/// Whether a segment id names the built-in `all`.
pub fn is_all(id: &str) -> bool {
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
pub fn holds(c: &Condition, view: &Value) -> bool {
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
pub fn to_dynamic(v: &Value) -> Dynamic {
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
    fn when_runs_after_match_and_errors_are_errors() {
        let sandbox = Sandbox::new(Default::default());
        let kind = crate::engine::script::ScriptKind::Segment;
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
