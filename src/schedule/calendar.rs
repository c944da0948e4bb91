//! The one session calendar: when a group meets.
//!
//! A group's sessions are its `sessions:` cron pattern evaluated in the
//! group's IANA timezone (so an 18:00 session stays 18:00 local across a
//! daylight-saving change), each lasting the group's duration, minus the
//! dates listed under `cancelled:`, plus the one-off `extra:` sessions.
//! [`sessions`] is the only place that works this out: `hearth check`,
//! `hearth send`, `hearth preview` and the scheduler all ask it, so they
//! never disagree about when a group meets.
//!
//! Session starts follow the fixed-time daylight-saving rule of
//! [`super::fire`] whatever the pattern's hour field: a session in a
//! spring-forward gap starts at the first instant after it, one in a
//! fall-back overlap at its first occurrence.

use std::iter::Peekable;

use chrono::{DateTime, NaiveDate, NaiveTime, TimeDelta, TimeZone, Utc};
use chrono_tz::Tz;

use super::fire::{self, DstPolicy};
use crate::domain::CronSpec;
use crate::domain::session::Session;
use crate::rules::{ExtraSession, Group};

/// The group's sessions that start at or after `from`, in start order:
/// the pattern's, skipping cancelled dates, merged with the `extra:`
/// sessions (which `cancelled:` never removes). An extra session starting
/// at the same instant as a regular one is that session, listed once (as
/// the regular one). Ends only if the pattern has no further fire and no
/// extra session is left.
pub fn sessions(group: &Group, from: DateTime<Utc>) -> impl Iterator<Item = Session> + '_ {
    let regular = occurrences(&group.sessions, group.timezone, from)
        .filter(|start| !group.cancelled.contains(&start.date_naive()))
        .map(|start| session(group, start, super::span(group.duration), false))
        .peekable();
    let mut extra: Vec<Session> = group
        .extra
        .iter()
        .map(|e| extra_session(group, e))
        .filter(|s| s.starts_at >= from)
        .collect();
    extra.sort_by_key(|s| s.starts_at);
    Merge {
        regular,
        extra: extra.into_iter().peekable(),
    }
}

/// An `extra:` session: its local date and time resolved in the group's
/// timezone as a fixed-time job is, lasting its own duration or the
/// group's.
pub(crate) fn extra_session(group: &Group, extra: &ExtraSession) -> Session {
    let start = crate::domain::local_time::resolve_local(group.timezone, extra.date, extra.at);
    let length = super::span(extra.duration.unwrap_or(group.duration));
    session(group, start, length, true)
}

fn session(group: &Group, start: DateTime<Tz>, length: TimeDelta, extra: bool) -> Session {
    let end = start + length;
    Session {
        starts_at: start.with_timezone(&Utc),
        ends_at: end.with_timezone(&Utc),
        local_starts_at: start,
        local_ends_at: end.with_timezone(&group.timezone),
        extra,
    }
}

/// Regular and extra sessions in start order, one per start instant.
struct Merge<R: Iterator<Item = Session>, E: Iterator<Item = Session>> {
    regular: Peekable<R>,
    extra: Peekable<E>,
}

impl<R: Iterator<Item = Session>, E: Iterator<Item = Session>> Iterator for Merge<R, E> {
    type Item = Session;

    fn next(&mut self) -> Option<Session> {
        let take_extra = match (self.regular.peek(), self.extra.peek()) {
            (Some(r), Some(e)) if e.starts_at == r.starts_at => {
                self.extra.next();
                false
            }
            (Some(r), Some(e)) => e.starts_at < r.starts_at,
            (None, Some(_)) => true,
            (_, None) => false,
        };
        if take_extra {
            self.extra.next()
        } else {
            self.regular.next()
        }
    }
}

/// Every start of `spec` in `tz` at or after `from`, cancelled or not,
/// resolved with the fixed-time daylight-saving rule.
pub(crate) fn occurrences(
    spec: &CronSpec,
    tz: Tz,
    from: DateTime<Utc>,
) -> impl Iterator<Item = DateTime<Tz>> + '_ {
    // Fires are strictly after: start a second early so a session starting
    // exactly at `from` counts, and drop anything before `from` (a `from`
    // with a fraction of a second).
    let mut cursor = Some(from - TimeDelta::seconds(1));
    std::iter::from_fn(move || {
        let next = fire::next_fire_with(spec, tz, cursor?, DstPolicy::Fixed);
        cursor = next;
        next
    })
    .filter(move |t| *t >= from)
    .map(move |t| t.with_timezone(&tz))
}

/// Whether the pattern has a session on `date` (local to `tz`), cancelled
/// or not.
pub(crate) fn meets_on(spec: &CronSpec, tz: Tz, date: NaiveDate) -> bool {
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

    use crate::domain::session::{sample_now, sample_session};

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

    fn extra(date: &str, at: &str, duration: Option<&str>) -> ExtraSession {
        ExtraSession {
            date: super::super::parse_date(date).unwrap(),
            at: NaiveTime::parse_from_str(at, "%H:%M").unwrap(),
            duration: duration.map(|d| d.parse().unwrap()),
        }
    }

    #[test]
    fn a_session_in_the_spring_forward_gap_starts_when_the_clocks_have_jumped() {
        let g = group("30 2 * * SUN", &[]);
        let s: Vec<Session> = sessions(&g, at(2026, 3, 1, 12, 0)).take(2).collect();
        assert_eq!(
            s[0].local_starts_at.to_rfc3339(),
            "2026-03-08T03:00:00-04:00"
        );
        assert_eq!(s[0].local_ends_at.to_rfc3339(), "2026-03-08T04:30:00-04:00");
        assert_eq!(
            s[1].local_starts_at.to_rfc3339(),
            "2026-03-15T02:30:00-04:00"
        );
        // In the fall-back overlap: the first 01:30, once.
        let g = group("30 1 * * SUN", &[]);
        let s: Vec<Session> = sessions(&g, at(2026, 10, 31, 12, 0)).take(2).collect();
        assert_eq!(
            s[0].local_starts_at.to_rfc3339(),
            "2026-11-01T01:30:00-04:00"
        );
        assert_eq!(s[1].local_date().to_string(), "2026-11-08");
    }

    #[test]
    fn extra_sessions_merge_in_start_order_and_take_the_group_duration_by_default() {
        let mut g = group("0 18 * * TUE", &[]);
        g.extra = vec![
            extra("2026-01-08", "12:00", Some("45m")),
            extra("2026-01-07", "18:00", None),
        ];
        let s: Vec<Session> = sessions(&g, at(2026, 1, 1, 0, 0)).take(4).collect();
        let starts: Vec<(String, bool)> = s
            .iter()
            .map(|s| (s.local_starts_at.to_rfc3339(), s.extra))
            .collect();
        assert_eq!(
            starts,
            [
                ("2026-01-06T18:00:00-05:00".to_owned(), false),
                ("2026-01-07T18:00:00-05:00".to_owned(), true),
                ("2026-01-08T12:00:00-05:00".to_owned(), true),
                ("2026-01-13T18:00:00-05:00".to_owned(), false),
            ]
        );
        assert_eq!(s[1].ends_at - s[1].starts_at, TimeDelta::minutes(90));
        assert_eq!(s[2].ends_at - s[2].starts_at, TimeDelta::minutes(45));
        // Past extra sessions are not listed.
        let later: Vec<bool> = sessions(&g, at(2026, 1, 9, 0, 0))
            .take(2)
            .map(|s| s.extra)
            .collect();
        assert_eq!(later, [false, false]);
    }

    #[test]
    fn a_cancelled_date_never_removes_an_extra_session_that_day() {
        let mut g = group("0 18 * * TUE", &["2026-01-06"]);
        g.extra = vec![extra("2026-01-06", "19:00", None)];
        let s: Vec<Session> = sessions(&g, at(2026, 1, 1, 0, 0)).take(2).collect();
        assert_eq!(
            s[0].local_starts_at.to_rfc3339(),
            "2026-01-06T19:00:00-05:00"
        );
        assert!(s[0].extra);
        assert_eq!(s[1].local_date().to_string(), "2026-01-13");
    }

    #[test]
    fn an_extra_session_at_a_regular_start_is_listed_once() {
        let mut g = group("0 18 * * TUE", &[]);
        g.extra = vec![extra("2026-01-06", "18:00", None)];
        let s: Vec<Session> = sessions(&g, at(2026, 1, 1, 0, 0)).take(2).collect();
        assert_eq!(s[0].local_date().to_string(), "2026-01-06");
        assert!(!s[0].extra);
        assert_eq!(s[1].local_date().to_string(), "2026-01-13");
    }

    #[test]
    fn a_group_whose_pattern_never_fires_still_has_its_extra_sessions() {
        let mut g = group("0 18 30 2 *", &[]);
        g.extra = vec![extra("2026-02-28", "10:00", None)];
        let s: Vec<Session> = sessions(&g, at(2026, 1, 1, 0, 0)).collect();
        assert_eq!(s.len(), 1);
        assert!(s[0].extra);
    }
}
