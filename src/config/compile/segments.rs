//! `segments:`: `match:` conditions and `when:` expressions.

use std::path::Path;

use serde_saphyr::Spanned;

use super::{Compiler, rule};
use crate::config::diag::Place;
use crate::config::raw::{RawCondition, RawSegment};
use crate::rules::script::ScriptKind;
use crate::rules::segment;
use crate::rules::{Condition, Field, MEMBER_FIELDS, Op, Segment};
use crate::schedule::parse_date;

impl Compiler<'_> {
    pub(super) fn segment(&mut self, s: &RawSegment, path: &Path) -> Option<Segment> {
        let owner = rule("segment", &s.id.value);
        let mut ok = true;
        if s.match_.is_none() && s.when.is_none() {
            self.diags
                .error(Place::of(path, &s.id), Some(&owner), format!("segment `{}` selects nobody in particular", s.id.value))
                .with_hint("give `match:` conditions, a `when:` expression, or both; `all` already means everyone");
            ok = false;
        }
        let mut conditions = Vec::new();
        if let Some(m) = &s.match_ {
            for (name, cond) in &m.value {
                match self.condition(name, cond, path, &owner) {
                    Some(mut c) => conditions.append(&mut c),
                    None => ok = false,
                }
            }
        }
        let when = match &s.when {
            Some(w) => match self.expression(ScriptKind::Segment, w, path, &owner) {
                Some(ast) => Some(ast),
                None => {
                    ok = false;
                    None
                }
            },
            None => None,
        };
        ok.then(|| Segment {
            id: s.id.value.clone(),
            conditions,
            when,
        })
    }

    pub(super) fn condition(
        &mut self,
        name: &str,
        cond: &Spanned<RawCondition>,
        path: &Path,
        owner: &str,
    ) -> Option<Vec<Condition>> {
        let at = Place::of(path, cond);
        let field = self.field(name, &at, owner)?;
        let (ops, mut ok) = self.operators(name, &cond.value, &at, owner);
        if ops.is_empty() {
            self.diags
                .error(
                    at,
                    Some(owner),
                    format!("condition on `{name}` has no operator"),
                )
                .with_hint("use one of eq, in, any_of, all_of, lt, lte, gt, gte, exists");
            return None;
        }
        let conditions: Vec<Condition> = ops
            .into_iter()
            .map(|op| Condition {
                field: field.clone(),
                op,
            })
            .collect();
        // Values that cannot compare with the field (a date field against a
        // number): checked once each value has the right shape.
        if ok {
            for c in &conditions {
                if let Some((message, hint)) = segment::never_holds(c) {
                    ok = false;
                    self.diags
                        .error(at.clone(), Some(owner), message)
                        .with_hint(hint);
                }
            }
        }
        if let Field::Attribute(attr) = &field
            && attr == name
            && let Some(meant) = segment::near_member_field(name)
        {
            self.diags
                .warning(
                    at,
                    Some(owner),
                    format!("`{name}` is not a member field, so it is read as a roster attribute"),
                )
                .with_hint(format!(
                    "did you mean `{meant}`? write `attributes.{name}` if the roster has a `{name}` column"
                ));
        }
        ok.then_some(conditions)
    }

    /// The member field or roster attribute a condition reads; never the
    /// phone number.
    fn field(&mut self, name: &str, at: &Place, owner: &str) -> Option<Field> {
        if name == "phone" || name.starts_with("phone") {
            self.diags
                .error(at.clone(), Some(owner), format!("segments cannot match on `{name}`"))
                .with_hint("phone numbers are kept out of rules and scripts; match on a roster attribute instead");
            None
        } else if let Some(attr) = name.strip_prefix("attributes.") {
            Some(Field::Attribute(attr.to_owned()))
        } else if MEMBER_FIELDS.contains(&name) {
            Some(Field::Member(name.to_owned()))
        } else {
            Some(Field::Attribute(name.to_owned()))
        }
    }

    /// The operators of one condition, with whether every value has the
    /// right shape.
    fn operators(
        &mut self,
        name: &str,
        c: &RawCondition,
        at: &Place,
        owner: &str,
    ) -> (Vec<Op>, bool) {
        let mut ops = Vec::new();
        let mut ok = true;
        if let Some(v) = &c.eq {
            ops.push(Op::Eq(v.clone()));
        }
        for (op_name, list, make) in [
            ("in", &c.in_, Op::In as fn(Vec<serde_json::Value>) -> Op),
            ("any_of", &c.any_of, Op::AnyOf),
            ("all_of", &c.all_of, Op::AllOf),
        ] {
            if let Some(list) = list {
                if list.is_empty() {
                    ok = false;
                    self.diags.error(
                        at.clone(),
                        Some(owner),
                        format!("`{op_name}` on `{name}` needs at least one value"),
                    );
                }
                ops.push(make(list.clone()));
            }
        }
        for (op_name, value, make) in [
            ("lt", &c.lt, Op::Lt as fn(serde_json::Value) -> Op),
            ("lte", &c.lte, Op::Lte),
            ("gt", &c.gt, Op::Gt),
            ("gte", &c.gte, Op::Gte),
        ] {
            if let Some(v) = value {
                let comparable = v.is_number() || v.as_str().is_some_and(|s| parse_date(s).is_ok());
                if !comparable {
                    ok = false;
                    self.diags
                        .error(
                            at.clone(),
                            Some(owner),
                            format!("`{op_name}` on `{name}` compares with `{v}`, which is not a number or a date"),
                        )
                        .with_hint("write a number (`2`) or a date (`2026-01-31`)");
                }
                ops.push(make(v.clone()));
            }
        }
        if let Some(e) = c.exists {
            ops.push(Op::Exists(e));
        }
        (ops, ok)
    }
}
