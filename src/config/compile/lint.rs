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
                    let hour = chrono::Timelike::hour(&fire);
                    if !(8..21).contains(&hour) {
                        self.diags
                            .warning(
                                Place::of(path, at),
                                Some(&rule("schedule", &s.id)),
                                format!(
                                    "schedule `{}` lands at {} for group `{}`, inside quiet hours (21:00–08:00)",
                                    s.id,
                                    fire.format("%H:%M"),
                                    g.id
                                ),
                            )
                            .with_hint("it would be held until morning; use `at:` to pick a daytime hour, or a shorter offset");
                    }
                }
            }
        }
    }
}

/// The hours a cron pattern fires at, when its hour field is plain numbers.
pub(super) fn fixed_hours(pattern: &str) -> Vec<u32> {
    let Some(hours) = pattern.split_whitespace().nth(1) else {
        return Vec::new();
    };
    hours
        .split(',')
        .map(|h| h.parse::<u32>())
        .collect::<Result<Vec<_>, _>>()
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fixed_hours_reads_plain_hour_fields_only() {
        assert_eq!(fixed_hours("0 12 * * THU"), vec![12]);
        assert_eq!(fixed_hours("0 3,15 * * *"), vec![3, 15]);
        assert!(fixed_hours("0 */2 * * *").is_empty());
    }
}
