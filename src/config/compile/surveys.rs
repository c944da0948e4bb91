//! `surveys:`: questions, answer expectations, re-prompts, reminders;
//! a survey's `score:` and item `alerts:` compile in `scoring`.

use std::collections::BTreeSet;
use std::path::Path;

use serde_saphyr::Spanned;

use super::templates::Bodies;
use super::{Compiler, rule};
use crate::config::diag::Place;
use crate::config::raw::{RawExpect, RawQuestion, RawSurvey};
use crate::domain::Duration;
use crate::rules::{Expect, Question, Survey};

impl Compiler<'_> {
    pub(super) fn survey(
        &mut self,
        id_at: &Spanned<String>,
        raw: &RawSurvey,
        path: &Path,
        bodies: &mut Bodies,
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
        let (questions, seen) = self.questions(id, raw, path, bodies, &mut ok);
        let reprompt = self.survey_text(id, "reprompt", &raw.reprompt, path, bodies, &mut ok);
        let thanks = self.survey_text(id, "thanks", &raw.thanks, path, bodies, &mut ok);
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
                    self.warn_late_reminder(id, raw, r, expires, path);
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

    /// The survey's questions that compiled, and every question id seen
    /// (a broken question's too, so it is not also "unknown").
    fn questions(
        &mut self,
        id: &str,
        raw: &RawSurvey,
        path: &Path,
        bodies: &mut Bodies,
        ok: &mut bool,
    ) -> (Vec<Question>, BTreeSet<String>) {
        let owner = rule("survey", id);
        let mut seen = BTreeSet::new();
        let mut questions = Vec::new();
        for q in &raw.questions {
            let q = &q.value;
            if q.id.value.trim().is_empty() || !super::valid_id(&q.id.value) {
                *ok = false;
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
                *ok = false;
                self.diags.error(
                    Place::of(path, &q.id),
                    Some(&owner),
                    format!("duplicate question id `{}` in survey `{id}`", q.id.value),
                );
                continue;
            }
            let name = format!("survey/{id}/{}", q.id.value);
            let qowner = format!("question `{}` of survey `{id}`", q.id.value);
            *ok &= self.add_body(bodies, &name, &q.ask, path, &qowner);
            let expect = self.expect(q, path, &owner, ok);
            let (item, labels) = self.item_wording(q, &expect, path, &owner, ok);
            questions.push(Question {
                id: q.id.value.clone(),
                ask: name,
                expect,
                item,
                labels,
            });
        }
        (questions, seen)
    }

    /// What a question accepts: a number range that is not empty, or
    /// distinct, non-empty choices.
    fn expect(&mut self, q: &RawQuestion, path: &Path, owner: &str, ok: &mut bool) -> Expect {
        match &q.expect.value {
            RawExpect::Number { min, max, integer } => {
                if let (Some(lo), Some(hi)) = (min, max)
                    && lo > hi
                {
                    *ok = false;
                    self.diags
                        .error(
                            Place::of(path, &q.expect),
                            Some(owner),
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
                if options.is_empty() || distinct.len() != options.len() || distinct.contains("") {
                    *ok = false;
                    self.diags.error(
                        Place::of(path, &q.expect),
                        Some(owner),
                        format!("choices of question `{}` must be distinct, non-empty, and at least one", q.id.value),
                    );
                }
                Expect::Choice(options.clone())
            }
            RawExpect::YesNo => Expect::YesNo,
            RawExpect::FreeText => Expect::FreeText,
        }
    }

    /// `item:` and `labels:`: the item's published wording (not empty)
    /// and one label per whole number from `min` to `max` of a number
    /// question.
    fn item_wording(
        &mut self,
        q: &RawQuestion,
        expect: &Expect,
        path: &Path,
        owner: &str,
        ok: &mut bool,
    ) -> (Option<String>, Vec<String>) {
        let item = q.item.as_ref().map(|i| i.value.trim().to_owned());
        if let (Some(raw), Some("")) = (&q.item, item.as_deref()) {
            *ok = false;
            self.diags
                .error(
                    Place::of(path, raw),
                    Some(owner),
                    format!("`item:` of question `{}` is empty", q.id.value),
                )
                .with_hint("write the item as published, like `item 9 — Thoughts that you would be better off dead or of hurting yourself in some way`, or leave `item:` out");
        }
        let Some(labels) = &q.labels else {
            return (item, Vec::new());
        };
        let want = match expect {
            Expect::Number {
                min: Some(lo),
                max: Some(hi),
                integer: true,
            } => Some((hi - lo) as usize + 1),
            _ => None,
        };
        let fits =
            want == Some(labels.value.len()) && labels.value.iter().all(|l| !l.trim().is_empty());
        if !fits {
            *ok = false;
            self.diags
                .error(
                    Place::of(path, labels),
                    Some(owner),
                    format!(
                        "`labels:` of question `{}` must name each whole number from `min` to `max`, in order, none empty ({} given{})",
                        q.id.value,
                        labels.value.len(),
                        want.map(|w| format!(", {w} wanted")).unwrap_or_else(|| "; the question is not `number` with `integer: true`, `min` and `max`".into())
                    ),
                )
                .with_hint("like `labels: [not at all, several days, more than half the days, nearly every day]` for `number: { min: 0, max: 3, integer: true }`");
        }
        (
            item,
            labels.value.iter().map(|l| l.trim().to_owned()).collect(),
        )
    }

    /// `reprompt:` or `thanks:`: a template body named `survey/ID/KEY`.
    fn survey_text(
        &mut self,
        id: &str,
        key: &str,
        value: &Option<Spanned<String>>,
        path: &Path,
        bodies: &mut Bodies,
        ok: &mut bool,
    ) -> Option<String> {
        let v = value.as_ref()?;
        let name = format!("survey/{id}/{key}");
        if self.add_body(bodies, &name, v, path, &format!("{key} of survey `{id}`")) {
            Some(name)
        } else {
            *ok = false;
            None
        }
    }

    /// `remind_after` not shorter than `expires_after`: never sent.
    fn warn_late_reminder(
        &mut self,
        id: &str,
        raw: &RawSurvey,
        r: &Spanned<String>,
        expires: Duration,
        path: &Path,
    ) {
        let expires_text = raw.expires_after.as_ref().map_or_else(
            || "`expires_after` (24h by default)".to_owned(),
            |e| format!("`expires_after: {}`", e.value),
        );
        self.diags
            .warning(
                Place::of(path, r),
                Some(&rule("survey", id)),
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
