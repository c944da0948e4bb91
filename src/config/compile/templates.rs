//! `templates:` and every other template body (survey questions,
//! re-prompts, thanks): compiling them into one environment, rendering
//! and measuring each once every rule is compiled, checking each against
//! the context of every schedule that sends it, and warning about those
//! nobody sends.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

use minijinja::Value;
use serde_saphyr::Spanned;

use super::{Compiler, MAX_SEGMENTS, rule};
use crate::config::diag::Place;
use crate::config::raw::RawFile;
use crate::domain::sms;
use crate::rules::template::{self, Templates};
use crate::rules::{Content, Schedule, Survey, TemplateInfo, Timing};

/// A template compiled into the environment: its name, file and body.
pub(super) type TemplatePlace = (String, PathBuf, Spanned<String>);

/// The template environment, and where each body compiled into it is
/// written (to render and measure it once every rule is compiled).
pub(super) struct Bodies {
    pub(crate) env: minijinja::Environment<'static>,
    pub(crate) places: Vec<TemplatePlace>,
}

/// A critical alert's `reply:`: its file, the template it names, the alert.
pub(super) type CrisisReply = (PathBuf, Spanned<String>, String);

impl Compiler<'_> {
    /// Compiles a body into `bodies` under `name`; false (reported) when
    /// it is empty or does not compile.
    pub(super) fn add_body(
        &mut self,
        bodies: &mut Bodies,
        name: &str,
        body: &Spanned<String>,
        path: &Path,
        owner: &str,
    ) -> bool {
        let added = self.add_template(&mut bodies.env, name, body, path, owner);
        if added {
            bodies
                .places
                .push((name.to_owned(), path.to_path_buf(), body.clone()));
        }
        added
    }

    fn add_template(
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

impl Compiler<'_> {
    /// Renders each template against the sample context and measures it:
    /// the compiled rule set's [`TemplateInfo`] for every `templates:`
    /// entry; an error where one fails, a warning where one runs long.
    pub(super) fn render_templates(
        &mut self,
        renderer: &Templates,
        places: &[TemplatePlace],
    ) -> BTreeMap<String, TemplateInfo> {
        let sample = template::sample_context();
        let mut templates = BTreeMap::new();
        for (name, path, body) in places {
            let owner = owner_of_template(name);
            match renderer.render(name, &sample) {
                Ok(text) => {
                    let len = sms::measure(&text);
                    if len.segments > MAX_SEGMENTS {
                        self.warn_long(path, body, &owner, &len);
                    }
                    if !name.contains('/') {
                        templates.insert(
                            name.clone(),
                            TemplateInfo {
                                id: name.clone(),
                                sample_segments: len.segments,
                            },
                        );
                    }
                }
                Err(e) => {
                    let place = match e.line {
                        Some(line) => self.place_in_value(path, body, line, e.column.unwrap_or(1)),
                        None => Place::of(path, body),
                    };
                    let d =
                        self.diags
                            .error(place, Some(&owner), format!("{owner}: {}", e.message));
                    if let Some(hint) = e.hint {
                        d.with_hint(hint);
                    }
                }
            }
        }
        templates
    }

    /// A template whose sample renders to more than [`MAX_SEGMENTS`].
    fn warn_long(
        &mut self,
        path: &Path,
        body: &Spanned<String>,
        owner: &str,
        len: &sms::SmsLength,
    ) {
        self.diags
            .warning(
                Place::of(path, body),
                Some(owner),
                format!(
                    "{owner} renders to {} SMS segments ({} {} characters); keep it to {MAX_SEGMENTS} or fewer",
                    len.segments,
                    len.units,
                    match len.encoding {
                        sms::Encoding::Gsm7 => "GSM-7",
                        sms::Encoding::Ucs2 => "UCS-2",
                    }
                ),
            )
            .with_hint("long texts cost more, may arrive out of order, and lose readers; an emoji or curly quote forces UCS-2 (70 characters a segment)");
    }

    /// A crisis reply goes out before the sender is looked up, so it may
    /// go to a number not on the roster: it cannot use member variables.
    pub(super) fn check_crisis_replies(&mut self, renderer: &Templates, replies: &[CrisisReply]) {
        let no_member = template::unknown_sender_context();
        for (path, reply, alert) in replies {
            if !renderer.contains(&reply.value) {
                continue;
            }
            if let Err(e) = renderer.render(&reply.value, &no_member) {
                self.diags
                    .error(
                        Place::of(path, reply),
                        Some(&rule("alert", alert)),
                        format!(
                            "critical alert `{alert}` replies with template `{}`, which fails for a sender not on the roster: {}",
                            reply.value, e.message
                        ),
                    )
                    .with_hint("a crisis reply must reach anyone who texts; write it without member, group or session variables");
            }
        }
    }

    /// A template nobody sends is probably a typo elsewhere; unless a
    /// schedule or alert that may send it could not be read.
    pub(super) fn warn_unused_templates(
        &mut self,
        files: &[(PathBuf, RawFile)],
        used: &BTreeSet<String>,
    ) {
        let senders_unread = !self.unparsed.is_empty()
            || self.items_failed.contains("schedule")
            || self.items_failed.contains("alert");
        for (path, f) in files.iter().filter(|_| !senders_unread) {
            for (id, _) in &f.templates.0 {
                if !used.contains(&id.value) {
                    self.diags.warning(
                        Place::of(path, id),
                        Some(&rule("template", &id.value)),
                        format!(
                            "template `{}` is not used by any schedule or alert",
                            id.value
                        ),
                    );
                }
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
