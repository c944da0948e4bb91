//! `templates:` and every other template body (survey questions,
//! re-prompts, thanks): compiling them into one environment, and checking
//! each against the context of every schedule that sends it.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use minijinja::Value;
use serde_saphyr::Spanned;

use super::{Compiler, rule};
use crate::config::diag::Place;
use crate::config::raw::RawFile;
use crate::config::rules::{Content, Schedule, Survey, Timing};
use crate::engine::template::{self, Templates};

impl Compiler<'_> {
    pub(super) fn add_template(
        &mut self,
        env: &mut minijinja::Environment<'static>,
        name: &str,
        body: &Spanned<String>,
        path: &Path,
        owner: &str,
    ) -> bool {
        if body.value.trim().is_empty() {
            self.diags.error(
                Place::of(path, body),
                Some(owner),
                format!("{owner} has an empty body"),
            );
            return false;
        }
        match Templates::add(env, name, &body.value) {
            Ok(()) => true,
            Err(e) => {
                let place = match e.line {
                    Some(line) => self.place_in_value(path, body, line, e.column.unwrap_or(1)),
                    None => Place::of(path, body),
                };
                let d = self
                    .diags
                    .error(place, Some(owner), format!("{owner}: {}", e.message));
                if let Some(hint) = e.hint {
                    d.with_hint(hint);
                }
                false
            }
        }
    }
}

impl Compiler<'_> {
    /// Renders what each schedule sends against the context that schedule
    /// gives it: a cron with no `groups:` has a member and nothing else, so
    /// a template (or a survey's first question) that mentions `group` or
    /// `session` is an error at that schedule. Schedules with groups, and
    /// session-relative ones, give member, group and session: the sample
    /// context every template is already rendered against.
    pub(super) fn check_template_places(
        &mut self,
        files: &[(PathBuf, RawFile)],
        schedules: &BTreeMap<String, Schedule>,
        surveys: &BTreeMap<String, Survey>,
        renderer: &Templates,
    ) {
        let full = template::sample_context();
        let part = |keys: &[&str]| -> Value {
            Value::from(
                keys.iter()
                    .map(|k| (k.to_string(), full.get_attr(k).unwrap_or_default()))
                    .collect::<BTreeMap<String, Value>>(),
            )
        };
        let member_only = part(&["member"]);
        for (path, f) in files {
            for raw in &f.schedules {
                let Some(s) = schedules.get(&raw.value.id.value) else {
                    continue;
                };
                let group_less = s.groups.is_empty() && matches!(s.timing, Timing::Cron { .. });
                if !group_less {
                    continue;
                }
                let (name, what, place) = match &s.content {
                    Content::Template(t) => (
                        t.clone(),
                        format!("template `{t}`"),
                        raw.value.template.as_ref(),
                    ),
                    Content::Survey(v) => {
                        let Some(first) = surveys.get(v).and_then(|sv| sv.questions.first()) else {
                            continue;
                        };
                        (
                            first.ask.clone(),
                            format!("survey `{v}` (its first question `{}`)", first.id),
                            raw.value.survey.as_ref(),
                        )
                    }
                };
                let Some(place) = place else { continue };
                let renders = |ctx: &Value| renderer.render(&name, ctx).is_ok();
                // A template that fails everywhere is reported where it is defined.
                if !renderer.contains(&name) || !renders(&full) || renders(&member_only) {
                    continue;
                }
                let uses = match (
                    renders(&part(&["member", "group"])),
                    renders(&part(&["member", "session"])),
                ) {
                    (true, _) => "`group`",
                    (false, true) => "`session`",
                    (false, false) => "`group` and `session`",
                };
                self.diags
                    .error(
                        Place::of(path, place),
                        Some(&rule("schedule", &s.id)),
                        format!(
                            "schedule `{}`: {what} uses {uses}, which a schedule with no group does not have",
                            s.id
                        ),
                    )
                    .with_hint("give the schedule `groups:`, or make it session-relative (`before_session:` or `after_session:`)");
            }
        }
    }
}

pub(super) fn owner_of_template(name: &str) -> String {
    match name.split('/').collect::<Vec<_>>()[..] {
        ["survey", survey, "reprompt"] => format!("reprompt of survey `{survey}`"),
        ["survey", survey, "thanks"] => format!("thanks of survey `{survey}`"),
        ["survey", survey, question] => format!("question `{question}` of survey `{survey}`"),
        _ => format!("template `{name}`"),
    }
}

#[cfg(test)]
mod tests {
    use super::super::groups::tests::{compile_yaml, lines};

    const BASE: &str = "groups:\n  - id: g\n    name: G\n    timezone: America/New_York\n    sessions: { cron: \"0 18 * * TUE\", duration: 90m }\ntemplates:\n  both:\n    body: \"{{ group.name }} meets {{ session.when }}\"\n  plain:\n    body: \"Hi {{ member.first_name }}\"\nschedules:\n";

    #[test]
    fn a_group_less_cron_gets_a_member_only_context() {
        let c = compile_yaml(&format!(
            "{BASE}  - id: a\n    template: both\n    cron: \"0 10 * * MON\"\n  - id: b\n    template: plain\n    cron: \"0 10 * * MON\"\n"
        ));
        assert!(c.rules.is_none());
        assert_eq!(
            lines(&c),
            [
                "error: schedule `a`: template `both` uses `group` and `session`, which a schedule with no group does not have | hint: give the schedule `groups:`, or make it session-relative (`before_session:` or `after_session:`)"
            ]
        );
    }

    #[test]
    fn schedules_with_groups_or_sessions_give_the_whole_context() {
        let c = compile_yaml(&format!(
            "{BASE}  - id: a\n    template: both\n    groups: [g]\n    cron: \"0 10 * * MON\"\n  - id: b\n    template: both\n    before_session: 1d\n    at: \"10:00\"\n  - id: c\n    template: plain\n    cron: \"0 10 * * MON\"\n"
        ));
        assert!(c.rules.is_some(), "{:?}", lines(&c));
    }
}
