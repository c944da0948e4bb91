//! `surveys:`: questions, answer expectations, re-prompts.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use serde_saphyr::Spanned;

use super::{Compiler, rule};
use crate::config::diag::Place;
use crate::config::raw::{RawExpect, RawSurvey};
use crate::config::rules::{Expect, Question, Survey};
use crate::domain::Duration;

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
        Some(Survey {
            id: id.to_owned(),
            questions,
            reprompt,
            max_reprompts: raw.max_reprompts.unwrap_or(1),
            expires_after: expires_after?,
            thanks,
            remind_after: None,
            score: None,
            item_alerts: Vec::new(),
        })
        .filter(|_| ok)
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
