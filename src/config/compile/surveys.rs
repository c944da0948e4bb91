//! `surveys:`: questions, answer expectations, re-prompts, reminders,
//! scores and per-item alerts.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use serde_saphyr::Spanned;

use super::{Compiler, rule};
use crate::config::diag::Place;
use crate::config::raw::{RawExpect, RawItemAlert, RawScore, RawSurvey};
use crate::config::rules::{Band, Expect, ItemAlert, Question, Scoring, Severity, Survey};
use crate::domain::Duration;
use crate::text::did_you_mean;

impl Compiler<'_> {
    pub(super) fn survey(
        &mut self,
        id_at: &Spanned<String>,
        raw: &RawSurvey,
        path: &Path,
        env: &mut minijinja::Environment<'static>,
        places: &mut Vec<(String, PathBuf, Spanned<String>)>,
    ) -> Option<Survey> {
        let id = id_at.value.as_str();
        let owner = rule("survey", id);
        let mut ok = true;
        if raw.questions.is_empty() {
            ok = false;
            let at = Place::of(path, id_at);
            self.diags
                .error(at, Some(&owner), format!("survey `{id}` has no questions"));
        }
        let mut seen = BTreeSet::new();
        let mut questions = Vec::new();
        for q in &raw.questions {
            let q = &q.value;
            if q.id.value.trim().is_empty() || !super::valid_id(&q.id.value) {
                ok = false;
                let what = if q.id.value.trim().is_empty() {
                    "a question id must not be empty".to_owned()
                } else {
                    format!("invalid question id `{}`", q.id.value)
                };
                self.diags
                    .error(
                        Place::of(path, &q.id),
                        Some(&owner),
                        format!("survey `{id}`: {what}"),
                    )
                    .with_hint(
                        "ids are letters, digits, `-` and `_`, like `mood` or `sleep_hours`",
                    );
                continue;
            }
            if !seen.insert(q.id.value.clone()) {
                ok = false;
                self.diags.error(
                    Place::of(path, &q.id),
                    Some(&owner),
                    format!("duplicate question id `{}` in survey `{id}`", q.id.value),
                );
                continue;
            }
            let name = format!("survey/{id}/{}", q.id.value);
            let qowner = format!("question `{}` of survey `{id}`", q.id.value);
            if self.add_template(env, &name, &q.ask, path, &qowner) {
                places.push((name.clone(), path.to_path_buf(), q.ask.clone()));
            } else {
                ok = false;
            }
            let expect = match &q.expect.value {
                RawExpect::Number { min, max, integer } => {
                    if let (Some(lo), Some(hi)) = (min, max)
                        && lo > hi
                    {
                        ok = false;
                        self.diags
                            .error(
                                Place::of(path, &q.expect),
                                Some(&owner),
                                format!("number range of question `{}` is empty: min {lo} is above max {hi}", q.id.value),
                            )
                            .with_hint(format!("swap them: `min: {hi}, max: {lo}`"));
                    }
                    Expect::Number {
                        min: *min,
                        max: *max,
                        integer: *integer,
                    }
                }
                RawExpect::Choice(options) => {
                    let distinct: BTreeSet<String> =
                        options.iter().map(|o| o.trim().to_lowercase()).collect();
                    if options.is_empty()
                        || distinct.len() != options.len()
                        || distinct.contains("")
                    {
                        ok = false;
                        self.diags.error(
                            Place::of(path, &q.expect),
                            Some(&owner),
                            format!("choices of question `{}` must be distinct, non-empty, and at least one", q.id.value),
                        );
                    }
                    Expect::Choice(options.clone())
                }
                RawExpect::YesNo => Expect::YesNo,
                RawExpect::FreeText => Expect::FreeText,
            };
            questions.push(Question {
                id: q.id.value.clone(),
                ask: name,
                expect,
            });
        }
        let mut extra =
            |key: &str, value: &Option<Spanned<String>>, this: &mut Self| -> Option<String> {
                let v = value.as_ref()?;
                let name = format!("survey/{id}/{key}");
                if this.add_template(env, &name, v, path, &format!("{key} of survey `{id}`")) {
                    places.push((name.clone(), path.to_path_buf(), v.clone()));
                    Some(name)
                } else {
                    ok = false;
                    None
                }
            };
        let reprompt = extra("reprompt", &raw.reprompt, self);
        let thanks = extra("thanks", &raw.thanks, self);
        let expires_after = match &raw.expires_after {
            Some(e) => self.duration(e, path, &owner),
            None => Some(Duration::from_secs(24 * 3600)),
        };
        if raw.max_reprompts.unwrap_or(0) > 0 && raw.reprompt.is_none() {
            self.diags
                .warning(
                    Place::of(path, id_at),
                    Some(&owner),
                    format!("survey `{id}` re-prompts but has no `reprompt` text; the question is asked again instead"),
                );
        }
        let remind_after = match &raw.remind_after {
            Some(r) => {
                let d = self.duration(r, path, &owner);
                ok &= d.is_some();
                if let (Some(remind), Some(expires)) = (d, expires_after)
                    && remind >= expires
                {
                    let expires_text = raw.expires_after.as_ref().map_or_else(
                        || "`expires_after` (24h by default)".to_owned(),
                        |e| format!("`expires_after: {}`", e.value),
                    );
                    self.diags
                        .warning(
                            Place::of(path, r),
                            Some(&owner),
                            format!(
                                "survey `{id}`: `remind_after: {}` is not shorter than {expires_text}; the reminder is never sent",
                                r.value
                            ),
                        )
                        .with_hint(format!(
                            "remind before the survey closes, e.g. `remind_after: {}`",
                            Duration::from_secs(expires.as_secs() / 2)
                        ));
                }
                d
            }
            None => None,
        };
        let known: Vec<&Question> = questions.iter().collect();
        let score = match &raw.score {
            Some(s) => {
                let scoring = self.scoring(id, s, &known, &seen, path);
                ok &= scoring.is_some();
                scoring
            }
            None => None,
        };
        let mut item_alerts = Vec::new();
        for a in &raw.alerts {
            match self.item_alert(id, &a.value, &known, &seen, path) {
                Some(alert) => item_alerts.push(alert),
                None => ok = false,
            }
        }
        Some(Survey {
            id: id.to_owned(),
            questions,
            reprompt,
            max_reprompts: raw.max_reprompts.unwrap_or(1),
            expires_after: expires_after?,
            thanks,
            remind_after,
            score,
            item_alerts,
        })
        .filter(|_| ok)
    }

    /// `score:`: items and reverse items that are scored questions of the
    /// survey, bands ascending with labels.
    fn scoring(
        &mut self,
        id: &str,
        raw: &Spanned<RawScore>,
        questions: &[&Question],
        seen: &BTreeSet<String>,
        path: &Path,
    ) -> Option<Scoring> {
        let owner = rule("survey", id);
        let mut ok = true;
        let items: Vec<String> = match &raw.value.items {
            Some(list) => {
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
                        .with_hint("list the questions to sum, or leave `items` out to sum every number question");
                }
                items
            }
            None => {
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
                items
            }
        };
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
        ok.then_some(Scoring {
            items,
            reverse,
            bands,
        })
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
    fn item_alert(
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
        if let Some(r) = &a.reply {
            ok &= self.reference("template", r, path, &owner);
        }
        if let Some(e) = &a.escalate {
            ok &= self.reference("escalation", e, path, &owner);
        }
        let realert = match &a.realert {
            Some(r) => {
                let d = self.duration(r, path, &owner);
                ok &= d.is_some();
                d
            }
            None => None,
        };
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

/// A typed answer at the low or high end of what a question accepts.
pub(super) fn sample_answer(expect: &Expect, low: bool) -> rhai::Dynamic {
    use rhai::Dynamic;
    match expect {
        Expect::Number { min, max, .. } => {
            let v = if low {
                min.unwrap_or(0.0)
            } else {
                max.unwrap_or(10.0)
            };
            if v.fract() == 0.0 {
                Dynamic::from(v as i64)
            } else {
                Dynamic::from(v)
            }
        }
        Expect::Choice(options) => {
            let pick = if low { options.first() } else { options.last() };
            Dynamic::from(pick.cloned().unwrap_or_default())
        }
        Expect::YesNo => Dynamic::from(low),
        Expect::FreeText => Dynamic::from(if low {
            String::new()
        } else {
            "sample answer".to_owned()
        }),
    }
}
