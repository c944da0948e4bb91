//! Warnings that look across rules: quiet hours.

use std::collections::BTreeMap;
use std::path::PathBuf;

use super::{Compiler, rule};
use crate::config::diag::Place;
use crate::config::raw::RawFile;
use crate::config::rules::*;
use crate::schedule::calendar;

impl Compiler<'_> {
    /// Warns when a session-relative schedule lands inside quiet hours for
    /// a group it serves, judged on that group's first session after
    /// [`calendar::sample_now`], never the wall clock, so `check` says the
    /// same whenever it runs.
    pub(super) fn check_session_times(
        &mut self,
        files: &[(PathBuf, RawFile)],
        groups: &BTreeMap<String, Group>,
        schedules: &BTreeMap<String, Schedule>,
    ) {
        let now = calendar::sample_now();
        for (path, f) in files {
            for raw in &f.schedules {
                let Some(s) = schedules.get(&raw.value.id.value) else {
                    continue;
                };
                let (offset, before) = match &s.timing {
                    Timing::BeforeSession { offset, at: None } => (offset, true),
                    Timing::AfterSession { offset, at: None } => (offset, false),
                    _ => continue,
                };
                let Some(at) = raw
                    .value
                    .before_session
                    .as_ref()
                    .or(raw.value.after_session.as_ref())
                else {
                    continue;
                };
                for g in groups
                    .values()
                    .filter(|g| s.groups.is_empty() || s.groups.contains(&g.id))
                {
                    let Some(start) = calendar::sessions(g, now).next().map(|s| s.local_starts_at)
                    else {
                        continue;
                    };
                    let fire = if before {
                        start - offset.chrono()
                    } else {
                        start + g.duration.chrono() + offset.chrono()
                    };
                    if !self.window.contains(fire.time()) {
                        self.diags
                            .warning(
                                Place::of(path, at),
                                Some(&rule("schedule", &s.id)),
                                format!(
                                    "schedule `{}` lands at {} for group `{}`, inside quiet hours ({})",
                                    s.id,
                                    fire.format("%H:%M"),
                                    g.id,
                                    self.window.quiet_hours()
                                ),
                            )
                            .with_hint("it would be held until morning; use `at:` to pick a daytime hour, or a shorter offset");
                    }
                }
            }
        }
    }
}

/// The local times a cron pattern fires at, when its hour field is plain
/// numbers: each hour at each plain minute (or at minute 0 when the minute
/// field is a range or step). Empty when the hours are not plain.
pub(super) fn fixed_times(pattern: &str) -> Vec<chrono::NaiveTime> {
    let mut fields = pattern.split_whitespace();
    let (Some(minutes), Some(hours)) = (fields.next(), fields.next()) else {
        return Vec::new();
    };
    let plain = |field: &str, max: u32| -> Option<Vec<u32>> {
        field
            .split(',')
            .map(|v| v.parse::<u32>().ok().filter(|v| *v <= max))
            .collect()
    };
    let Some(hours) = plain(hours, 23) else {
        return Vec::new();
    };
    let minutes = plain(minutes, 59).unwrap_or_else(|| vec![0]);
    hours
        .iter()
        .flat_map(|h| {
            minutes
                .iter()
                .filter_map(move |m| chrono::NaiveTime::from_hms_opt(*h, *m, 0))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fixed_times_read_plain_hour_fields_only() {
        let t = |h, m| chrono::NaiveTime::from_hms_opt(h, m, 0).expect("a time");
        assert_eq!(fixed_times("0 12 * * THU"), vec![t(12, 0)]);
        assert_eq!(fixed_times("30 3,15 * * *"), vec![t(3, 30), t(15, 30)]);
        assert_eq!(fixed_times("*/5 9 * * *"), vec![t(9, 0)]);
        assert!(fixed_times("0 */2 * * *").is_empty());
        assert!(fixed_times("0 25 * * *").is_empty());
    }
}
