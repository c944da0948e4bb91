//! `schedules:`: who, what, and when (cron or session-relative).

use std::path::Path;

use super::lint::fixed_times;
use super::{Compiler, rule};
use crate::config::diag::Place;
use crate::config::raw::RawSchedule;
use crate::config::rules::{ALL_SEGMENT, Content, Schedule, Timing};
use crate::domain;
use crate::schedule::CronSpec;

impl Compiler<'_> {
    pub(super) fn schedule(&mut self, s: &RawSchedule, path: &Path) -> Option<Schedule> {
        let owner = rule("schedule", &s.id.value);
        let at_id = Place::of(path, &s.id);
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
        let content = match (&s.template, &s.survey) {
            (Some(t), None) => {
                ok &= self.reference("template", t, path, &owner);
                Some(Content::Template(t.value.clone()))
            }
            (None, Some(v)) => {
                ok &= self.reference("survey", v, path, &owner);
                Some(Content::Survey(v.value.clone()))
            }
            (Some(_), Some(v)) => {
                self.diags
                    .error(
                        Place::of(path, v),
                        Some(&owner),
                        format!("schedule `{}` has both `template` and `survey`", s.id.value),
                    )
                    .with_hint("a schedule sends one thing; split it into two schedules");
                None
            }
            (None, None) => {
                self.diags
                    .error(
                        at_id.clone(),
                        Some(&owner),
                        format!("schedule `{}` sends nothing", s.id.value),
                    )
                    .with_hint("give `template:` or `survey:`");
                None
            }
        };

        let timings = [
            s.cron.is_some(),
            s.before_session.is_some(),
            s.after_session.is_some(),
        ];
        let timing = match timings.iter().filter(|t| **t).count() {
            0 => {
                self.diags
                    .error(
                        at_id.clone(),
                        Some(&owner),
                        format!("schedule `{}` has no timing", s.id.value),
                    )
                    .with_hint("give one of `cron:`, `before_session:` or `after_session:`");
                None
            }
            1 => self.timing(s, path, &owner),
            _ => {
                self.diags
                    .error(
                        at_id.clone(),
                        Some(&owner),
                        format!("schedule `{}` has more than one timing", s.id.value),
                    )
                    .with_hint("give only one of `cron:`, `before_session:` or `after_session:`");
                None
            }
        };
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
        Some(Schedule {
            id: s.id.value.clone(),
            segment,
            groups: s.groups.iter().map(|g| g.value.clone()).collect(),
            content: content?,
            timing: timing?,
            expires_after,
            window: None,
            catch_up: crate::config::rules::DEFAULT_CATCH_UP,
            enabled: s.enabled,
        })
        .filter(|_| ok)
    }

    pub(super) fn timing(&mut self, s: &RawSchedule, path: &Path, owner: &str) -> Option<Timing> {
        if let Some(cron) = &s.cron {
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
            if let Some(time) = fixed_times(spec.pattern())
                .into_iter()
                .find(|t| !self.window.contains(*t))
            {
                self.diags
                    .warning(
                        Place::of(path, cron),
                        Some(owner),
                        format!(
                            "schedule `{}` fires at {}, inside quiet hours ({})",
                            s.id.value,
                            time.format("%H:%M"),
                            self.window.quiet_hours()
                        ),
                    )
                    .with_hint(
                        "routine messages are held until quiet hours end; pick a daytime hour",
                    );
            }
            return Some(Timing::Cron {
                spec: Box::new(spec),
                timezone,
            });
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
        let at = match &s.at {
            Some(at) => {
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
                        .with_hint(
                            "`before_session: 1d` with `at: \"17:00\"` means 17:00 the day before",
                        );
                    return None;
                }
                if !self.window.contains(time) {
                    self.diags
                        .warning(
                            Place::of(path, at),
                            Some(owner),
                            format!(
                                "schedule `{}`: `at: {}` is inside quiet hours ({})",
                                s.id.value,
                                at.value,
                                self.window.quiet_hours()
                            ),
                        )
                        .with_hint(
                            "routine messages are held until quiet hours end; pick a daytime hour",
                        );
                }
                Some(time)
            }
            None => None,
        };
        Some(if before {
            Timing::BeforeSession { offset, at }
        } else {
            Timing::AfterSession { offset, at }
        })
    }
}
