//! `schedules:`: who, what, and when (cron or session-relative).

use std::path::Path;

use chrono::NaiveTime;
use serde_saphyr::Spanned;

use super::{Compiler, rule};
use crate::config::diag::Place;
use crate::config::raw::{RawSchedule, RawWindow};
use crate::domain::CronSpec;
use crate::domain::{self, Duration};
use crate::rules::{ALL_SEGMENT, Content, DEFAULT_CATCH_UP, Schedule, Timing, Window};

/// The longest `before_session:` / `after_session:` offset: a year.
const MAX_SESSION_OFFSET: Duration = Duration::from_secs(366 * 86_400);

impl Compiler<'_> {
    pub(super) fn schedule(&mut self, s: &RawSchedule, path: &Path) -> Option<Schedule> {
        let owner = rule("schedule", &s.id.value);
        let mut ok = true;

        let segment = match &s.segment {
            Some(seg) => {
                ok &= self.reference("segment", seg, path, &owner);
                seg.value.clone()
            }
            None => ALL_SEGMENT.to_owned(),
        };
        for g in &s.groups {
            ok &= self.reference("group", g, path, &owner);
        }
        let (content, content_ok) = self.content(s, path, &owner);
        ok &= content_ok;

        let timing = self.one_timing(s, path, &owner);
        let expires_after = match &s.expires_after {
            Some(e) => match self.duration(e, path, &owner) {
                Some(d) => Some(d),
                None => {
                    ok = false;
                    None
                }
            },
            None => None,
        };
        let window = match &s.window {
            Some(w) => match self.window(&s.id.value, &w.value, path, &owner) {
                Some(w) => Some(w),
                None => {
                    ok = false;
                    None
                }
            },
            None => None,
        };
        let catch_up = match &s.catch_up {
            Some(c) => match self.catch_up(&s.id.value, c, path, &owner) {
                Some(c) => c,
                None => {
                    ok = false;
                    DEFAULT_CATCH_UP
                }
            },
            None => DEFAULT_CATCH_UP,
        };
        Some(Schedule {
            id: s.id.value.clone(),
            segment,
            groups: s.groups.iter().map(|g| g.value.clone()).collect(),
            content: content?,
            timing: timing?,
            expires_after,
            window,
            catch_up,
            enabled: s.enabled,
        })
        .filter(|_| ok)
    }

    /// What a schedule sends: one `template:` or one `survey:`, known;
    /// `None` when it names neither or both. With whether its reference
    /// is good.
    fn content(&mut self, s: &RawSchedule, path: &Path, owner: &str) -> (Option<Content>, bool) {
        let mut ok = true;
        let content = match (&s.template, &s.survey) {
            (Some(t), None) => {
                ok &= self.reference("template", t, path, owner);
                Some(Content::Template(t.value.clone()))
            }
            (None, Some(v)) => {
                ok &= self.reference("survey", v, path, owner);
                Some(Content::Survey(v.value.clone()))
            }
            (Some(_), Some(v)) => {
                self.diags
                    .error(
                        Place::of(path, v),
                        Some(owner),
                        format!("schedule `{}` has both `template` and `survey`", s.id.value),
                    )
                    .with_hint("a schedule sends one thing; split it into two schedules");
                None
            }
            (None, None) => {
                self.diags
                    .error(
                        Place::of(path, &s.id),
                        Some(owner),
                        format!("schedule `{}` sends nothing", s.id.value),
                    )
                    .with_hint("give `template:` or `survey:`");
                None
            }
        };
        (content, ok)
    }

    /// Exactly one of `cron:`, `before_session:` and `after_session:`.
    fn one_timing(&mut self, s: &RawSchedule, path: &Path, owner: &str) -> Option<Timing> {
        let timings = [
            s.cron.is_some(),
            s.before_session.is_some(),
            s.after_session.is_some(),
        ];
        match timings.iter().filter(|t| **t).count() {
            0 => {
                self.diags
                    .error(
                        Place::of(path, &s.id),
                        Some(owner),
                        format!("schedule `{}` has no timing", s.id.value),
                    )
                    .with_hint("give one of `cron:`, `before_session:` or `after_session:`");
                None
            }
            1 => self.timing(s, path, owner),
            _ => {
                self.diags
                    .error(
                        Place::of(path, &s.id),
                        Some(owner),
                        format!("schedule `{}` has more than one timing", s.id.value),
                    )
                    .with_hint("give only one of `cron:`, `before_session:` or `after_session:`");
                None
            }
        }
    }

    pub(super) fn timing(&mut self, s: &RawSchedule, path: &Path, owner: &str) -> Option<Timing> {
        if let Some(cron) = &s.cron {
            return self.cron_timing(s, cron, path, owner);
        }
        if let Some(tz) = &s.timezone {
            self.diags
                .error(
                    Place::of(path, tz),
                    Some(owner),
                    "`timezone` goes with `cron`",
                )
                .with_hint("session-relative schedules use each group's own timezone");
            return None;
        }
        let (offset_text, before) = match (&s.before_session, &s.after_session) {
            (Some(b), _) => (b, true),
            (_, Some(a)) => (a, false),
            // Called with exactly one timing; with none there is nothing to build.
            _ => return None,
        };
        let offset = self.duration(offset_text, path, owner)?;
        if offset.as_secs() > MAX_SESSION_OFFSET.as_secs() {
            self.diags
                .error(
                    Place::of(path, offset_text),
                    Some(owner),
                    format!(
                        "schedule `{}`: `{}: {}` is more than a year from the session",
                        s.id.value,
                        if before {
                            "before_session"
                        } else {
                            "after_session"
                        },
                        offset_text.value
                    ),
                )
                .with_hint(
                    "a session-relative offset is at most `52w`; use `cron:` for a yearly message",
                );
            return None;
        }
        let at = match &s.at {
            Some(at) => Some(self.session_at(at, offset_text, offset, path, owner)?),
            None => None,
        };
        Some(if before {
            Timing::BeforeSession { offset, at }
        } else {
            Timing::AfterSession { offset, at }
        })
    }

    /// `cron:` with its optional `timezone:`; `at:` does not go with it.
    fn cron_timing(
        &mut self,
        s: &RawSchedule,
        cron: &Spanned<String>,
        path: &Path,
        owner: &str,
    ) -> Option<Timing> {
        if let Some(at) = &s.at {
            self.diags
                .error(
                    Place::of(path, at),
                    Some(owner),
                    "`at` goes with `before_session` or `after_session`, not `cron`",
                )
                .with_hint("put the time of day in the cron pattern, like `0 12 * * THU`");
            return None;
        }
        let spec = CronSpec::parse(&cron.value)
            .map_err(|e| self.invalid(Place::of(path, cron), owner, e))
            .ok();
        let timezone = match &s.timezone {
            Some(tz) => Some(self.timezone(tz, path, owner)?),
            None => None,
        };
        let spec = spec?;
        Some(Timing::Cron {
            spec: Box::new(spec),
            timezone,
        })
    }

    /// `at:` of a session-relative schedule: a time of day, on an offset
    /// of whole days.
    fn session_at(
        &mut self,
        at: &Spanned<String>,
        offset_text: &Spanned<String>,
        offset: Duration,
        path: &Path,
        owner: &str,
    ) -> Option<NaiveTime> {
        let time = domain::parse_time_of_day(&at.value)
            .map_err(|e| self.invalid(Place::of(path, at), owner, e))
            .ok()?;
        if offset.whole_days().is_none() {
            self.diags
                .error(
                    Place::of(path, offset_text),
                    Some(owner),
                    format!(
                        "with `at`, the offset must be whole days, not `{}`",
                        offset_text.value
                    ),
                )
                .with_hint("`before_session: 1d` with `at: \"17:00\"` means 17:00 the day before");
            return None;
        }
        Some(time)
    }

    /// `window: { from, to }`: two local times of one day, `from < to`.
    fn window(&mut self, id: &str, w: &RawWindow, path: &Path, owner: &str) -> Option<Window> {
        let from = domain::parse_time_of_day(&w.from.value)
            .map_err(|e| self.invalid(Place::of(path, &w.from), owner, e))
            .ok();
        let to = domain::parse_time_of_day(&w.to.value)
            .map_err(|e| self.invalid(Place::of(path, &w.to), owner, e))
            .ok();
        let (from, to) = (from?, to?);
        if from >= to {
            let hint = if from > to {
                format!(
                    "a window lies within one local day; did you mean `{{ from: \"{}\", to: \"{}\" }}`?",
                    w.to.value, w.from.value
                )
            } else {
                "give the window some length, like `{ from: \"10:00\", to: \"14:00\" }`".to_owned()
            };
            self.diags
                .error(
                    Place::of(path, &w.to),
                    Some(owner),
                    format!(
                        "schedule `{id}`: window `to: {}` is not after `from: {}`",
                        w.to.value, w.from.value
                    ),
                )
                .with_hint(hint);
            return None;
        }
        Some(Window { from, to })
    }

    /// `catch_up:` a duration, or `0` for never.
    fn catch_up(
        &mut self,
        id: &str,
        c: &serde_saphyr::Spanned<String>,
        path: &Path,
        owner: &str,
    ) -> Option<Duration> {
        let text = c.value.trim();
        if text == "0" {
            return Some(Duration::from_secs(0));
        }
        match Duration::parse(text) {
            Ok(d) => Some(d),
            Err(e) => {
                let zero = text.contains('0')
                    && text.chars().all(|ch| ch == '0' || ch.is_ascii_alphabetic());
                let hint = if zero {
                    Some("write `catch_up: 0` to never process a missed fire".to_owned())
                } else {
                    e.hint
                };
                let d = self.diags.error(
                    Place::of(path, c),
                    Some(owner),
                    format!("schedule `{id}`: `catch_up`: {}", e.message),
                );
                if let Some(hint) = hint {
                    d.with_hint(hint);
                }
                None
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use chrono::NaiveTime;

    use super::super::groups::tests::{compile_yaml, lines};
    use crate::rules::DEFAULT_CATCH_UP;

    fn with_schedule(keys: &str) -> String {
        format!(
            "templates:\n  note:\n    body: \"Hi {{{{ member.first_name }}}}\"\nschedules:\n  - id: daily\n    template: note\n    cron: \"0 9 * * *\"\n    timezone: America/New_York\n{keys}"
        )
    }

    #[test]
    fn window_and_catch_up_compile() {
        let c = compile_yaml(&with_schedule(
            "    window: { from: \"10:00\", to: \"14:00\" }\n    catch_up: 2h\n",
        ));
        let shown = lines(&c);
        let rules = c.rules.unwrap_or_else(|| panic!("{shown:?}"));
        let s = &rules.schedules["daily"];
        let w = s.window.expect("a window");
        assert_eq!(w.from, NaiveTime::from_hms_opt(10, 0, 0).unwrap());
        assert_eq!(w.to, NaiveTime::from_hms_opt(14, 0, 0).unwrap());
        assert_eq!(s.catch_up.as_secs(), 7200);
    }

    #[test]
    fn catch_up_defaults_to_an_hour_and_a_bare_zero_means_never() {
        let c = compile_yaml(&with_schedule(""));
        assert_eq!(
            c.rules.expect("rules").schedules["daily"].catch_up,
            DEFAULT_CATCH_UP
        );
        for zero in ["0", "\"0\""] {
            let c = compile_yaml(&with_schedule(&format!("    catch_up: {zero}\n")));
            let shown = lines(&c);
            let rules = c.rules.unwrap_or_else(|| panic!("{zero}: {shown:?}"));
            assert_eq!(rules.schedules["daily"].catch_up.as_secs(), 0);
        }
        let c = compile_yaml(&with_schedule("    catch_up: 0m\n"));
        assert!(c.rules.is_none());
        assert!(
            lines(&c).iter().any(|l| l
                .starts_with("error: schedule `daily`: `catch_up`: invalid duration `0m`")
                && l.ends_with("hint: write `catch_up: 0` to never process a missed fire")),
            "{:?}",
            lines(&c)
        );
        let c = compile_yaml(&with_schedule("    catch_up: soon\n"));
        assert!(c.rules.is_none());
    }

    #[test]
    fn a_session_offset_over_a_year_is_an_error_not_a_hang() {
        let c = compile_yaml(
            "templates:\n  note:\n    body: hi\nschedules:\n  - id: far\n    template: note\n    before_session: 99999999w\n",
        );
        assert!(c.rules.is_none());
        assert_eq!(
            lines(&c),
            [
                "error: schedule `far`: `before_session: 99999999w` is more than a year from the session | hint: a session-relative offset is at most `52w`; use `cron:` for a yearly message"
            ]
        );
        let c = compile_yaml(
            "templates:\n  note:\n    body: hi\nschedules:\n  - id: far\n    template: note\n    after_session: 52w\n",
        );
        assert!(c.rules.is_some(), "{:?}", lines(&c));
    }

    #[test]
    fn a_window_that_does_not_run_forward_is_an_error_with_a_hint() {
        let c = compile_yaml(&with_schedule(
            "    window: { from: \"14:00\", to: \"10:00\" }\n",
        ));
        assert!(c.rules.is_none());
        assert_eq!(
            lines(&c),
            [
                "error: schedule `daily`: window `to: 10:00` is not after `from: 14:00` | hint: a window lies within one local day; did you mean `{ from: \"10:00\", to: \"14:00\" }`?"
            ]
        );
        let c = compile_yaml(&with_schedule(
            "    window: { from: \"10:00\", to: \"10:00\" }\n",
        ));
        assert!(c.rules.is_none());
        let c = compile_yaml(&with_schedule(
            "    window: { from: \"10am\", to: \"14:00\", every: 5 }\n",
        ));
        assert!(c.rules.is_none());
        let c = compile_yaml(&with_schedule(
            "    window: { from: \"10am\", to: \"14:00\" }\n",
        ));
        assert!(
            lines(&c)
                .iter()
                .any(|l| l.contains("`10am`") && l.ends_with("hint: write `10:00`")),
            "{:?}",
            lines(&c)
        );
    }
}
