//! Warnings about when schedules land, judged once every rule is
//! compiled: quiet hours (a fixed cron time, an `at:`, a session-relative
//! time per group, a `window:`), local times that a daylight-saving change
//! skips or repeats, and windows that cannot take effect.

use std::collections::BTreeMap;
use std::path::PathBuf;

use chrono::{NaiveTime, Offset, TimeDelta, TimeZone, Timelike};
use chrono_tz::Tz;
use serde_saphyr::Spanned;

use super::{Compiler, rule};
use crate::config::diag::Place;
use crate::config::raw::{RawFile, RawSchedule};
use crate::rules::*;
use crate::schedule::fire::{DstPolicy, dst_policy};
use crate::schedule::{calendar, plan};

/// Local times a daylight-saving change may skip or repeat: 01:00–03:00.
const DST_FROM: u32 = 1;
const DST_TO: u32 = 3;

impl Compiler<'_> {
    /// Every timing warning of every compiled schedule. Session-relative
    /// times are judged on each group's sessions in the week after
    /// [`calendar::sample_now`], never the wall clock, so `check` says the
    /// same whenever it runs.
    pub(super) fn check_schedule_times(
        &mut self,
        files: &[(PathBuf, RawFile)],
        groups: &BTreeMap<String, Group>,
        schedules: &BTreeMap<String, Schedule>,
    ) {
        for (path, f) in files {
            for raw in &f.schedules {
                let Some(s) = schedules.get(&raw.value.id.value) else {
                    continue;
                };
                let at =
                    |value: &Option<Spanned<String>>| value.as_ref().map(|v| Place::of(path, v));
                let raw = &raw.value;
                match &s.timing {
                    Timing::Cron { spec, timezone } => {
                        if let Some(place) = at(&raw.cron) {
                            self.check_cron_times(s, spec, *timezone, place);
                        }
                    }
                    Timing::BeforeSession { at: Some(time), .. }
                    | Timing::AfterSession { at: Some(time), .. } => {
                        if let Some(place) = at(&raw.at) {
                            self.check_at(s, *time, served(s, groups), place);
                        }
                    }
                    Timing::BeforeSession { at: None, .. }
                    | Timing::AfterSession { at: None, .. } => {
                        if let Some(place) =
                            at(&raw.before_session).or_else(|| at(&raw.after_session))
                        {
                            self.check_session_relative(s, served(s, groups), place);
                        }
                    }
                }
                if let (Some(w), Some(place)) = (&s.window, window_place(path, raw)) {
                    self.check_window(s, w, place);
                }
            }
        }
    }

    /// A fixed-hour cron: quiet hours (unless a window moves the send),
    /// daylight saving, a window that ends before it fires.
    fn check_cron_times(
        &mut self,
        s: &Schedule,
        spec: &crate::domain::CronSpec,
        tz: Option<Tz>,
        place: Place,
    ) {
        let owner = rule("schedule", &s.id);
        let times = fixed_times(spec.pattern());
        if let Some(time) = times
            .iter()
            .copied()
            .find(|t| !self.window.contains(*t) && s.window.is_none_or(|w| *t >= w.to))
        {
            self.diags
                .warning(
                    place.clone(),
                    Some(&owner),
                    format!(
                        "schedule `{}` fires at {}, inside quiet hours ({})",
                        s.id,
                        time.format("%H:%M"),
                        self.window.quiet_hours()
                    ),
                )
                .with_hint("routine messages are held until quiet hours end; pick a daytime hour");
        }
        if dst_policy(spec) == DstPolicy::Fixed
            && tz.is_none_or(has_dst)
            && let Some(hour) = fixed_hours(spec.pattern())
                .into_iter()
                .find(|h| (DST_FROM..DST_TO).contains(h))
        {
            let time = times.iter().find(|t| t.hour() == hour).map_or_else(
                || format!("{hour:02}:xx"),
                |t| t.format("%H:%M").to_string(),
            );
            self.dst_warning(s, &format!("fires at {time}"), place.clone());
        }
        if let Some(w) = &s.window
            && let Some(time) = times.iter().find(|t| **t >= w.to)
        {
            self.window_too_early(s, w, *time, "it fires", place);
        }
    }

    /// `at:` of a session-relative schedule.
    fn check_at(&mut self, s: &Schedule, time: NaiveTime, groups: Vec<&Group>, place: Place) {
        let owner = rule("schedule", &s.id);
        if !self.window.contains(time) && s.window.is_none_or(|w| time >= w.to) {
            self.diags
                .warning(
                    place.clone(),
                    Some(&owner),
                    format!(
                        "schedule `{}`: `at: {}` is inside quiet hours ({})",
                        s.id,
                        time.format("%H:%M"),
                        self.window.quiet_hours()
                    ),
                )
                .with_hint("routine messages are held until quiet hours end; pick a daytime hour");
        }
        if (DST_FROM..DST_TO).contains(&time.hour()) && groups.iter().any(|g| has_dst(g.timezone)) {
            self.dst_warning(
                s,
                &format!("fires at {}", time.format("%H:%M")),
                place.clone(),
            );
        }
        if let Some(w) = &s.window
            && time >= w.to
        {
            self.window_too_early(s, w, time, "`at:`", place);
        }
    }

    /// A session-relative schedule without `at:`, per group: the local
    /// times it lands at over a week of that group's sessions (any of
    /// them in quiet hours is warned, with the first such time).
    fn check_session_relative(&mut self, s: &Schedule, groups: Vec<&Group>, place: Place) {
        let now = crate::domain::session::sample_now();
        for g in groups {
            let times: Vec<NaiveTime> = calendar::sessions(g, now)
                .take_while(|session| session.starts_at < now + TimeDelta::days(7))
                .take(50)
                .filter_map(|session| plan::session_fire(&s.timing, &session))
                .map(|fire| fire.with_timezone(&g.timezone).time())
                .collect();
            // With a window, messages go inside it: `check_window` judges it.
            if s.window.is_none()
                && let Some(quiet) = times.iter().find(|t| !self.window.contains(**t))
            {
                self.diags
                    .warning(
                        place.clone(),
                        Some(&rule("schedule", &s.id)),
                        format!(
                            "schedule `{}` lands at {} for group `{}`, inside quiet hours ({})",
                            s.id,
                            quiet.format("%H:%M"),
                            g.id,
                            self.window.quiet_hours()
                        ),
                    )
                    .with_hint("it would be held until morning; use `at:` to pick a daytime hour, or a shorter offset");
            }
            if has_dst(g.timezone)
                && let Some(t) = times
                    .iter()
                    .find(|t| (DST_FROM..DST_TO).contains(&t.hour()))
            {
                self.dst_warning(
                    s,
                    &format!("lands at {} for group `{}`", t.format("%H:%M"), g.id),
                    place.clone(),
                );
            }
            if let Some(w) = &s.window
                && let Some(t) = times.iter().find(|t| **t >= w.to)
            {
                self.window_too_early(
                    s,
                    w,
                    *t,
                    &format!("for group `{}` it lands", g.id),
                    place.clone(),
                );
            }
        }
    }

    /// A window every instant of which is quiet.
    fn check_window(&mut self, s: &Schedule, w: &Window, place: Place) {
        let q = self.window;
        let overlaps = q.contains(w.from) || (w.from <= q.start && q.start < w.to);
        if !overlaps {
            self.diags
                .warning(
                    place,
                    Some(&rule("schedule", &s.id)),
                    format!(
                        "schedule `{}`: window {}–{} is wholly inside quiet hours ({})",
                        s.id,
                        w.from.format("%H:%M"),
                        w.to.format("%H:%M"),
                        q.quiet_hours()
                    ),
                )
                .with_hint("every message would be held until quiet hours end; move the window into the day");
        }
    }

    fn dst_warning(&mut self, s: &Schedule, what: &str, place: Place) {
        self.diags
            .warning(
                place,
                Some(&rule("schedule", &s.id)),
                format!(
                    "schedule `{}` {what}, a DST-sensitive local time: a daylight-saving day skips or repeats it",
                    s.id
                ),
            )
            .with_hint(format!(
                "pick a time outside {DST_FROM:02}:00–{DST_TO:02}:00 (a skipped time fires when the clocks have jumped, a repeated one at its first occurrence)"
            ));
    }

    fn window_too_early(
        &mut self,
        s: &Schedule,
        w: &Window,
        time: NaiveTime,
        what: &str,
        place: Place,
    ) {
        self.diags
            .warning(
                place,
                Some(&rule("schedule", &s.id)),
                format!(
                    "schedule `{}`: {what} at {}, at or after its window ends ({}): the window has no effect",
                    s.id,
                    time.format("%H:%M"),
                    w.to.format("%H:%M")
                ),
            )
            .with_hint("a message is never sent before its fire; fire before the window, or drop `window:`");
    }
}

/// The groups a schedule follows: its `groups:`, or every group.
fn served<'a>(s: &Schedule, groups: &'a BTreeMap<String, Group>) -> Vec<&'a Group> {
    groups
        .values()
        .filter(|g| s.groups.is_empty() || s.groups.contains(&g.id))
        .collect()
}

fn window_place(path: &std::path::Path, raw: &RawSchedule) -> Option<Place> {
    raw.window.as_ref().map(|w| Place::of(path, w))
}

/// Whether `tz` changes its clocks: its offsets in January and July 2026
/// differ.
fn has_dst(tz: Tz) -> bool {
    let offset = |m| {
        tz.with_ymd_and_hms(2026, m, 15, 12, 0, 0)
            .earliest()
            .map(|t| t.offset().fix().local_minus_utc())
    };
    offset(1) != offset(7)
}

/// The hours of a fixed hour field (numbers, lists and ranges); empty when
/// it holds `*` or a step, or does not read.
pub(super) fn fixed_hours(pattern: &str) -> Vec<u32> {
    let Some(field) = pattern.split_whitespace().nth(1) else {
        return Vec::new();
    };
    if field.contains('*') || field.contains('/') {
        return Vec::new();
    }
    let mut hours = Vec::new();
    for part in field.split(',') {
        let (lo, hi) = part.split_once('-').unwrap_or((part, part));
        let (Ok(lo), Ok(hi)) = (lo.parse::<u32>(), hi.parse::<u32>()) else {
            return Vec::new();
        };
        hours.extend(lo..=hi.min(23));
    }
    hours.sort_unstable();
    hours.dedup();
    hours
}

/// The local times a cron pattern fires at, when its hour field is fixed
/// (numbers, lists, ranges): each hour at each plain minute (or at minute
/// 0 when the minute field is a range or step). Empty when the hours are
/// not fixed.
pub(super) fn fixed_times(pattern: &str) -> Vec<chrono::NaiveTime> {
    let Some(minutes) = pattern.split_whitespace().next() else {
        return Vec::new();
    };
    let minutes: Vec<u32> = minutes
        .split(',')
        .map(|v| v.parse::<u32>().ok().filter(|v| *v <= 59))
        .collect::<Option<Vec<u32>>>()
        .unwrap_or_else(|| vec![0]);
    fixed_hours(pattern)
        .into_iter()
        .flat_map(|h| {
            minutes
                .iter()
                .filter_map(move |m| chrono::NaiveTime::from_hms_opt(h, *m, 0))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fixed_times_read_fixed_hour_fields_only() {
        let t = |h, m| chrono::NaiveTime::from_hms_opt(h, m, 0).expect("a time");
        assert_eq!(fixed_times("0 12 * * THU"), vec![t(12, 0)]);
        assert_eq!(fixed_times("30 3,15 * * *"), vec![t(3, 30), t(15, 30)]);
        assert_eq!(fixed_times("*/5 9 * * *"), vec![t(9, 0)]);
        assert_eq!(fixed_times("15 1-2 * * *"), vec![t(1, 15), t(2, 15)]);
        assert!(fixed_times("0 */2 * * *").is_empty());
        assert!(fixed_times("0 25 * * *").is_empty());
    }

    #[test]
    fn fixed_hours_read_lists_and_ranges() {
        assert_eq!(fixed_hours("0 1-3,9 * * *"), vec![1, 2, 3, 9]);
        assert_eq!(fixed_hours("30 2 * * *"), vec![2]);
        assert!(fixed_hours("0 */2 * * *").is_empty());
        assert!(fixed_hours("0 * * * *").is_empty());
        assert!(fixed_hours("@daily").is_empty());
    }

    #[test]
    fn zones_without_clock_changes_have_no_dst() {
        assert!(has_dst(chrono_tz::America::New_York));
        assert!(has_dst(chrono_tz::Australia::Sydney));
        assert!(!has_dst(chrono_tz::UTC));
        assert!(!has_dst(chrono_tz::Asia::Kolkata));
    }
}

#[cfg(test)]
mod check_tests {
    use super::super::groups::tests::{compile_yaml, lines};

    const GROUP: &str = "groups:\n  - id: tuesday\n    name: Tuesday\n    timezone: America/New_York\n    sessions: { cron: \"0 18 * * TUE\", duration: 90m }\n  - id: kolkata\n    name: Kolkata\n    timezone: Asia/Kolkata\n    sessions: { cron: \"0 18 * * TUE\", duration: 90m }\ntemplates:\n  note:\n    body: \"Hi {{ member.first_name }}\"\nschedules:\n";

    fn warnings(schedules: &str) -> Vec<String> {
        let c = compile_yaml(&format!("{GROUP}{schedules}"));
        assert!(c.rules.is_some(), "{:?}", lines(&c));
        lines(&c)
    }

    fn dst(l: &[String]) -> Vec<&String> {
        l.iter().filter(|l| l.contains("DST-sensitive")).collect()
    }

    #[test]
    fn fixed_times_between_one_and_three_are_dst_sensitive_where_clocks_change() {
        let l = warnings(
            "  - id: a\n    template: note\n    cron: \"0 1-2 * * *\"\n    timezone: America/New_York\n",
        );
        assert_eq!(dst(&l).len(), 1, "{l:?}");
        assert!(dst(&l)[0].contains("fires at 01:00"), "{l:?}");
        // Members' own zones may change their clocks.
        let l = warnings("  - id: a\n    template: note\n    cron: \"45 2 * * *\"\n");
        assert_eq!(dst(&l).len(), 1, "{l:?}");
        // A zone without daylight saving, an hour outside, an interval pattern.
        for cron in [
            "    cron: \"30 2 * * *\"\n    timezone: Asia/Kolkata\n",
            "    cron: \"0 3 * * *\"\n    timezone: America/New_York\n",
            "    cron: \"0 0 * * *\"\n    timezone: America/New_York\n",
            "    cron: \"0 */2 * * *\"\n    timezone: America/New_York\n",
        ] {
            let l = warnings(&format!("  - id: a\n    template: note\n{cron}"));
            assert!(dst(&l).is_empty(), "{cron}: {l:?}");
        }
    }

    #[test]
    fn an_at_or_a_session_relative_time_in_the_dst_hours_is_warned_per_group() {
        let l = warnings(
            "  - id: a\n    template: note\n    groups: [tuesday]\n    before_session: 1d\n    at: \"02:15\"\n",
        );
        assert_eq!(dst(&l).len(), 1, "{l:?}");
        let l = warnings(
            "  - id: a\n    template: note\n    groups: [kolkata]\n    before_session: 1d\n    at: \"02:15\"\n",
        );
        assert!(dst(&l).is_empty(), "{l:?}");
        // 18:00 − 16h = 02:00 in New York, not in Kolkata.
        let l = warnings("  - id: a\n    template: note\n    before_session: 16h\n");
        assert_eq!(dst(&l).len(), 1, "{l:?}");
        assert!(dst(&l)[0].contains("for group `tuesday`"), "{l:?}");
        assert!(
            l.iter()
                .any(|w| w.contains("lands at 02:00 for group `kolkata`, inside quiet hours")),
            "{l:?}"
        );
    }

    #[test]
    fn a_window_moves_the_quiet_hours_judgement_to_when_messages_go() {
        // 07:00 is quiet, but the window sends between 10:00 and 14:00.
        let l = warnings(
            "  - id: a\n    template: note\n    cron: \"0 7 * * *\"\n    timezone: America/New_York\n    window: { from: \"10:00\", to: \"14:00\" }\n",
        );
        assert!(l.is_empty(), "{l:?}");
        let l = warnings(
            "  - id: a\n    template: note\n    before_session: 1d\n    at: \"06:00\"\n    window: { from: \"10:00\", to: \"14:00\" }\n",
        );
        assert!(l.is_empty(), "{l:?}");
        let l = warnings(
            "  - id: a\n    template: note\n    cron: \"0 7 * * *\"\n    timezone: America/New_York\n    window: { from: \"06:00\", to: \"07:30\" }\n",
        );
        assert!(
            l.iter()
                .any(|w| w.contains("window 06:00–07:30 is wholly inside quiet hours")),
            "{l:?}"
        );
        // A window overlapping the day by a minute is not wholly quiet.
        let l = warnings(
            "  - id: a\n    template: note\n    cron: \"0 7 * * *\"\n    timezone: America/New_York\n    window: { from: \"07:00\", to: \"08:01\" }\n",
        );
        assert!(!l.iter().any(|w| w.contains("wholly")), "{l:?}");
    }

    #[test]
    fn a_window_ending_at_or_before_the_fire_has_no_effect() {
        let l = warnings(
            "  - id: a\n    template: note\n    groups: [tuesday]\n    after_session: 1d\n    at: \"14:00\"\n    window: { from: \"10:00\", to: \"14:00\" }\n",
        );
        assert!(
            l.iter()
                .any(|w| w.contains("`at:` at 14:00, at or after its window ends (14:00)")),
            "{l:?}"
        );
        let l = warnings(
            "  - id: a\n    template: note\n    groups: [tuesday]\n    after_session: 30m\n    window: { from: \"10:00\", to: \"14:00\" }\n",
        );
        assert!(
            l.iter()
                .any(|w| w.contains("for group `tuesday` it lands at 20:00")),
            "{l:?}"
        );
    }
}
