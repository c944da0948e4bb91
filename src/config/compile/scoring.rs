//! A survey's `score:` (items, reverse items, bands) and its per-item
//! `alerts:`: both name questions that have a numeric value.

use std::collections::BTreeSet;
use std::path::Path;

use serde_saphyr::Spanned;

use super::{Compiler, rule};
use crate::config::diag::Place;
use crate::config::raw::{RawItemAlert, RawScore};
use crate::rules::{Band, Expect, ItemAlert, Question, Scoring, Severity};
use crate::text::did_you_mean;

impl Compiler<'_> {
    /// `score:`: items and reverse items that are scored questions of the
    /// survey, bands ascending with labels.
    pub(super) fn scoring(
        &mut self,
        id: &str,
        raw: &Spanned<RawScore>,
        questions: &[&Question],
        seen: &BTreeSet<String>,
        path: &Path,
    ) -> Option<Scoring> {
        let (items, items_ok) = self.score_items(id, raw, questions, seen, path);
        let (reverse, reverse_ok) = self.score_reverse(id, raw, &items, questions, seen, path);
        let (bands, bands_ok) = self.score_bands(id, raw, path);
        (items_ok && reverse_ok && bands_ok).then_some(Scoring {
            items,
            reverse,
            bands,
        })
    }

    /// `score.items`, each listed once and scored; every number question
    /// when absent. With whether they are all good.
    fn score_items(
        &mut self,
        id: &str,
        raw: &Spanned<RawScore>,
        questions: &[&Question],
        seen: &BTreeSet<String>,
        path: &Path,
    ) -> (Vec<String>, bool) {
        let owner = rule("survey", id);
        let mut ok = true;
        let Some(list) = &raw.value.items else {
            let items: Vec<String> = questions
                .iter()
                .filter(|q| matches!(q.expect, Expect::Number { .. }))
                .map(|q| q.id.clone())
                .collect();
            if items.is_empty() && seen.len() == questions.len() {
                ok = false;
                self.diags
                    .error(
                        Place::of(path, raw),
                        Some(&owner),
                        format!("survey `{id}` has `score:` but no number questions to sum"),
                    )
                    .with_hint("list the scored questions in `score.items`");
            }
            return (items, ok);
        };
        let mut items = Vec::new();
        for item in list {
            if items.contains(&item.value) {
                ok = false;
                self.diags.error(
                    Place::of(path, item),
                    Some(&owner),
                    format!("survey `{id}`: `score.items` lists `{}` twice", item.value),
                );
                continue;
            }
            ok &= self.scored_question(id, "`score.items`", item, questions, seen, path);
            items.push(item.value.clone());
        }
        if list.is_empty() {
            ok = false;
            self.diags
                .error(
                    Place::of(path, raw),
                    Some(&owner),
                    format!("survey `{id}`: `score.items` is empty"),
                )
                .with_hint(
                    "list the questions to sum, or leave `items` out to sum every number question",
                );
        }
        (items, ok)
    }

    /// `score.reverse`: scored items with a range (`min + max - answer`).
    fn score_reverse(
        &mut self,
        id: &str,
        raw: &Spanned<RawScore>,
        items: &[String],
        questions: &[&Question],
        seen: &BTreeSet<String>,
        path: &Path,
    ) -> (Vec<String>, bool) {
        let owner = rule("survey", id);
        let mut ok = true;
        let mut reverse = Vec::new();
        for r in &raw.value.reverse {
            if !self.scored_question(id, "`score.reverse`", r, questions, seen, path) {
                ok = false;
                continue;
            }
            if !items.contains(&r.value) {
                ok = false;
                self.diags
                    .error(
                        Place::of(path, r),
                        Some(&owner),
                        format!(
                            "survey `{id}`: `score.reverse` names `{}`, which is not one of `score.items`",
                            r.value
                        ),
                    )
                    .with_hint(format!("add `{}` to `score.items`", r.value));
                continue;
            }
            if let Some(q) = questions.iter().find(|q| q.id == r.value)
                && let Expect::Number { min, max, .. } = q.expect
                && (min.is_none() || max.is_none())
            {
                ok = false;
                self.diags
                    .error(
                        Place::of(path, r),
                        Some(&owner),
                        format!(
                            "survey `{id}`: reverse item `{}` has no `min` and `max`, so `min + max - answer` has no value",
                            r.value
                        ),
                    )
                    .with_hint("give the question a range, like `expect: { number: { min: 0, max: 3, integer: true } }`");
                continue;
            }
            reverse.push(r.value.clone());
        }
        (reverse, ok)
    }

    /// `score.bands`: labelled, with finite `from`s that ascend.
    fn score_bands(&mut self, id: &str, raw: &Spanned<RawScore>, path: &Path) -> (Vec<Band>, bool) {
        let owner = rule("survey", id);
        let mut ok = true;
        let mut bands: Vec<Band> = Vec::new();
        for b in &raw.value.bands {
            let label = b.value.label.trim();
            if label.is_empty() {
                ok = false;
                self.diags
                    .error(
                        Place::of(path, b),
                        Some(&owner),
                        format!(
                            "survey `{id}`: the band from {} in `score.bands` has an empty label",
                            b.value.from
                        ),
                    )
                    .with_hint("name it, like `{ from: 5, label: mild }`");
            }
            if !b.value.from.is_finite() {
                ok = false;
                self.diags.error(
                    Place::of(path, b),
                    Some(&owner),
                    format!(
                        "survey `{id}`: `from: {}` in `score.bands` is not a number",
                        b.value.from
                    ),
                );
                continue;
            }
            if let Some(prev) = bands.last()
                && b.value.from <= prev.from
            {
                ok = false;
                self.diags
                    .error(
                        Place::of(path, b),
                        Some(&owner),
                        format!(
                            "survey `{id}`: `score.bands` must ascend by `from`, but `from: {}` (`{label}`) follows `from: {}` (`{}`)",
                            b.value.from, prev.from, prev.label
                        ),
                    )
                    .with_hint("list the bands from the lowest `from` up, each higher than the one before");
            }
            bands.push(Band {
                from: b.value.from,
                label: label.to_owned(),
            });
        }
        (bands, ok)
    }

    /// Checks that `target` names a question of the survey that has a
    /// numeric value: a number question, or a choice (its 0-based index).
    fn scored_question(
        &mut self,
        id: &str,
        key: &str,
        target: &Spanned<String>,
        questions: &[&Question],
        seen: &BTreeSet<String>,
        path: &Path,
    ) -> bool {
        let owner = rule("survey", id);
        let Some(q) = questions.iter().find(|q| q.id == target.value) else {
            if seen.contains(&target.value) {
                // Defined but broken: already reported.
                return false;
            }
            let ids: Vec<&str> = questions.iter().map(|q| q.id.as_str()).collect();
            let hint = did_you_mean(&target.value, ids.iter().copied())
                .unwrap_or_else(|| format!("the questions of `{id}` are: {}", ids.join(", ")));
            self.diags
                .error(
                    Place::of(path, target),
                    Some(&owner),
                    format!(
                        "survey `{id}`: {key} names unknown question `{}`",
                        target.value
                    ),
                )
                .with_hint(hint);
            return false;
        };
        let kind = match q.expect {
            Expect::Number { .. } | Expect::Choice(_) => return true,
            Expect::YesNo => "yes_no",
            Expect::FreeText => "free_text",
        };
        self.diags
            .error(
                Place::of(path, target),
                Some(&owner),
                format!(
                    "survey `{id}`: {key} names `{}`, a {kind} question; only number and choice questions have a value to score",
                    target.value
                ),
            )
            .with_hint("give it a number range, like `expect: { number: { min: 0, max: 3, integer: true } }`");
        false
    }

    /// One `alerts:` entry of a survey. Its id is registered (and checked
    /// unique among every alert id) with the other alerts.
    pub(super) fn item_alert(
        &mut self,
        id: &str,
        a: &RawItemAlert,
        questions: &[&Question],
        seen: &BTreeSet<String>,
        path: &Path,
    ) -> Option<ItemAlert> {
        let owner = format!("alert `{}` of survey `{id}`", a.id.value);
        let mut ok = super::valid_id(&a.id.value) && !a.id.value.trim().is_empty();
        ok &= self.scored_question(
            id,
            &format!("alert `{}`", a.id.value),
            &a.question,
            questions,
            seen,
            path,
        );
        if !a.above.is_finite() {
            ok = false;
            self.diags.error(
                Place::of(path, &a.id),
                Some(&owner),
                format!("`above: {}` is not a number", a.above),
            );
        }
        let (targets_ok, realert) = self.alert_targets(
            a.reply.as_ref(),
            a.escalate.as_ref(),
            a.realert.as_ref(),
            path,
            &owner,
        );
        ok &= targets_ok;
        if a.severity == Severity::Critical && a.escalate.is_none() {
            self.diags
                .warning(
                    Place::of(path, &a.id),
                    Some(&owner),
                    format!(
                        "critical alert `{}` of survey `{id}` escalates to nobody",
                        a.id.value
                    ),
                )
                .with_hint("add `escalate:` so a person is told");
        }
        ok.then(|| ItemAlert {
            id: a.id.value.clone(),
            question: a.question.value.clone(),
            above: a.above,
            severity: a.severity,
            reply: a.reply.as_ref().map(|r| r.value.clone()),
            escalate: a.escalate.as_ref().map(|e| e.value.clone()),
            realert,
        })
    }
}
