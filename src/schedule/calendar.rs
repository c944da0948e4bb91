//! The one session calendar: when a group meets.
//!
//! A group's sessions are its `sessions:` cron pattern evaluated in the
//! group's IANA timezone (so an 18:00 session stays 18:00 local across a
//! daylight-saving change), each lasting the group's duration, minus the
//! dates listed under `cancelled:`. [`sessions`] is the only place that
//! works this out: `hearth check`, `hearth send` and the scheduler all ask
//! it, so they never disagree about when a group meets.

use chrono::{DateTime, NaiveDate, NaiveTime, TimeDelta, TimeZone, Utc};
use chrono_tz::Tz;

use super::CronSpec;
use crate::engine::rules::Group;

/// One meeting of a group.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Session {
    pub starts_at: DateTime<Utc>,
    pub ends_at: DateTime<Utc>,
    /// `starts_at` in the group's timezone.
    pub local_starts_at: DateTime<Tz>,
    /// `ends_at` in the group's timezone.
    pub local_ends_at: DateTime<Tz>,
    /// A one-off `extra:` session.
    pub extra: bool,
}

impl Session {
    /// The session's calendar date where the group meets.
    pub fn local_date(&self) -> NaiveDate {
        self.local_starts_at.date_naive()
    }

    /// How a message sent at `now` names the session's day, judged by the
    /// calendar where the group meets: `today`, `tomorrow`, `on Thursday`
    /// (within the coming week) or `on Tuesday, January 13` (further off).
    /// A session already under way or past is still `today` on its day.
    pub fn when(&self, now: DateTime<Utc>) -> String {
        let today = now
            .with_timezone(&self.local_starts_at.timezone())
            .date_naive();
        match (self.local_date() - today).num_days() {
            ..=0 => "today".to_owned(),
            1 => "tomorrow".to_owned(),
            2..=6 => format!("on {}", self.local_starts_at.format("%A")),
            _ => format!("on {}", self.local_starts_at.format("%A, %B %-d")),
        }
    }
}

/// The "now" `hearth check` judges rules at, so its output never depends
/// on the wall clock: Monday 2026-01-05, 17:00 in New York.
pub fn sample_now() -> DateTime<Utc> {
    DateTime::from_timestamp(1_767_650_400, 0).unwrap_or_default()
}

/// A sample session, the Tuesday after [`sample_now`] at 18:00 in New
/// York for 90 minutes: what templates render against at check.
pub fn sample_session() -> Session {
    let tz = chrono_tz::America::New_York;
    let start = sample_now().with_timezone(&tz) + TimeDelta::hours(25);
    let end = start + TimeDelta::minutes(90);
    Session {
        starts_at: start.with_timezone(&Utc),
        ends_at: end.with_timezone(&Utc),
        local_starts_at: start,
        local_ends_at: end,
        extra: false,
    }
}

/// The group's sessions that start at or after `from`, in order, skipping
/// cancelled dates. Ends only if the cron pattern has no further fire.
pub fn sessions(group: &Group, from: DateTime<Utc>) -> impl Iterator<Item = Session> + '_ {
    let tz = group.timezone;
    let length = group.duration.chrono();
    occurrences(&group.sessions, tz, from)
        .filter(|start| !group.cancelled.contains(&start.date_naive()))
        .map(move |start| {
            let end = start + length;
            Session {
                starts_at: start.with_timezone(&Utc),
                ends_at: end.with_timezone(&Utc),
                local_starts_at: start,
                local_ends_at: end.with_timezone(&tz),
                extra: false,
            }
        })
}

/// Every fire of `spec` in `tz` at or after `from`, cancelled or not.
pub fn occurrences(
    spec: &CronSpec,
    tz: Tz,
    from: DateTime<Utc>,
) -> impl Iterator<Item = DateTime<Tz>> + '_ {
    // `next_after` is strictly after: start a second early so a session
    // starting exactly at `from` counts, and drop anything before `from`
    // (a `from` with a fraction of a second).
    let mut cursor = Some((from - TimeDelta::seconds(1)).with_timezone(&tz));
    std::iter::from_fn(move || {
        let next = spec.next_after(cursor.as_ref()?);
        cursor = next;
        next
    })
    .filter(move |t| *t >= from)
}

/// Whether the pattern has a session on `date` (local to `tz`), cancelled
/// or not.
pub fn meets_on(spec: &CronSpec, tz: Tz, date: NaiveDate) -> bool {
    let Some(midnight) = tz
        .from_local_datetime(&date.and_time(NaiveTime::MIN))
        .earliest()
    else {
        // No midnight that day (a zone that skips it): any hour counts.
        return true;
    };
    occurrences(spec, tz, midnight.with_timezone(&Utc))
        .next()
        .is_some_and(|next| next.date_naive() == date)
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeSet;

    use chrono::{Datelike, Timelike, Weekday};
    use chrono_tz::America::New_York;

    use super::*;

    fn group(cron: &str, cancelled: &[&str]) -> Group {
        Group {
            id: "tuesday-anxiety".into(),
            name: "Tuesday Anxiety Support".into(),
            timezone: New_York,
            sessions: CronSpec::parse(cron).unwrap(),
            duration: "90m".parse().unwrap(),
            extra: Vec::new(),
            cancelled: cancelled
                .iter()
                .map(|d| super::super::parse_date(d).unwrap())
                .collect::<BTreeSet<_>>(),
            facilitators: vec![],
        }
    }

    fn at(y: i32, m: u32, d: u32, h: u32, min: u32) -> DateTime<Utc> {
        New_York
            .with_ymd_and_hms(y, m, d, h, min, 0)
            .unwrap()
            .with_timezone(&Utc)
    }

    #[test]
    fn sessions_run_from_the_cron_pattern_with_their_duration() {
        let g = group("0 18 * * TUE", &[]);
        let s: Vec<Session> = sessions(&g, at(2026, 1, 1, 0, 0)).take(2).collect();
        assert_eq!(
            s[0].local_starts_at.to_rfc3339(),
            "2026-01-06T18:00:00-05:00"
        );
        assert_eq!(s[0].local_ends_at.to_rfc3339(), "2026-01-06T19:30:00-05:00");
        assert_eq!(s[0].starts_at.to_rfc3339(), "2026-01-06T23:00:00+00:00");
        assert_eq!(s[0].ends_at.to_rfc3339(), "2026-01-07T00:30:00+00:00");
        assert_eq!(s[1].local_date().to_string(), "2026-01-13");
    }

    #[test]
    fn a_session_starting_exactly_at_from_is_included_and_one_already_started_is_not() {
        let g = group("0 18 * * TUE", &[]);
        let first = sessions(&g, at(2026, 1, 6, 18, 0)).next().unwrap();
        assert_eq!(first.local_date().to_string(), "2026-01-06");
        let first = sessions(&g, at(2026, 1, 6, 18, 1)).next().unwrap();
        assert_eq!(first.local_date().to_string(), "2026-01-13");
    }

    #[test]
    fn a_cancelled_date_is_skipped() {
        let g = group("0 18 * * TUE", &["2026-01-06"]);
        let dates: Vec<String> = sessions(&g, at(2026, 1, 1, 0, 0))
            .take(2)
            .map(|s| s.local_date().to_string())
            .collect();
        assert_eq!(dates, ["2026-01-13", "2026-01-20"]);
    }

    #[test]
    fn across_a_daylight_saving_change_the_local_time_stays() {
        // New York springs forward on Sunday 2026-03-08.
        let g = group("0 18 * * *", &[]);
        let s: Vec<Session> = sessions(&g, at(2026, 3, 7, 12, 0)).take(2).collect();
        assert_eq!(
            s[0].local_starts_at.to_rfc3339(),
            "2026-03-07T18:00:00-05:00"
        );
        assert_eq!(
            s[1].local_starts_at.to_rfc3339(),
            "2026-03-08T18:00:00-04:00"
        );
        assert_eq!(s[1].starts_at - s[0].starts_at, TimeDelta::hours(23));
        assert_eq!(s[1].local_ends_at.hour(), 19);
        assert_eq!(s[1].local_ends_at.minute(), 30);
    }

    #[test]
    fn a_group_with_no_sessions_yields_nothing() {
        // February 30th never comes.
        let g = group("0 18 30 2 *", &[]);
        assert_eq!(sessions(&g, at(2026, 1, 1, 0, 0)).next(), None);
    }

    #[test]
    fn when_names_the_day_from_where_the_group_meets() {
        let g = group("0 18 * * TUE", &[]);
        let tuesday = sessions(&g, at(2026, 1, 1, 0, 0)).next().unwrap();
        assert_eq!(tuesday.local_starts_at.weekday(), Weekday::Tue);
        // The session day, in the morning: today, never tomorrow.
        assert_eq!(tuesday.when(at(2026, 1, 6, 9, 0)), "today");
        // 23:30 in New York is already Tuesday in UTC; it is still Monday there.
        assert_eq!(tuesday.when(at(2026, 1, 5, 23, 30)), "tomorrow");
        assert_eq!(tuesday.when(at(2026, 1, 5, 0, 5)), "tomorrow");
        assert_eq!(tuesday.when(at(2026, 1, 2, 12, 0)), "on Tuesday");
        assert_eq!(
            tuesday.when(at(2025, 12, 30, 12, 0)),
            "on Tuesday, January 6"
        );
    }

    #[test]
    fn the_day_before_a_cancelled_session_names_the_one_after() {
        let g = group("0 18 * * TUE", &["2026-01-06"]);
        let now = at(2026, 1, 5, 17, 0);
        let next = sessions(&g, now).next().unwrap();
        assert_eq!(next.local_date().to_string(), "2026-01-13");
        assert_eq!(next.when(now), "on Tuesday, January 13");
    }

    #[test]
    fn the_sample_session_is_the_tuesday_after_the_sample_now() {
        assert_eq!(sample_now().to_rfc3339(), "2026-01-05T22:00:00+00:00");
        let s = sample_session();
        assert_eq!(s.local_starts_at.to_rfc3339(), "2026-01-06T18:00:00-05:00");
        assert_eq!(s.local_ends_at.to_rfc3339(), "2026-01-06T19:30:00-05:00");
        assert_eq!(s.when(sample_now()), "tomorrow");
        let g = group("0 18 * * TUE", &[]);
        assert_eq!(sessions(&g, sample_now()).next(), Some(s));
    }

    #[test]
    fn meets_on_ignores_cancellations_and_knows_other_days() {
        let spec = CronSpec::parse("0 18 * * TUE").unwrap();
        let tue = NaiveDate::from_ymd_opt(2026, 1, 6).unwrap();
        assert!(meets_on(&spec, New_York, tue));
        assert!(!meets_on(&spec, New_York, tue.succ_opt().unwrap()));
        // A session at midnight counts for its own day.
        let midnight = CronSpec::parse("0 0 * * TUE").unwrap();
        assert!(meets_on(&midnight, New_York, tue));
    }
}
