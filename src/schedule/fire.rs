//! Fire instants: cron patterns and local wall times resolved to UTC, with
//! daylight saving handled as Vixie cron does (see `docs/SCHEDULING.md`).
//!
//! - A **fixed-time** pattern (a fixed hour field) whose local time falls
//!   in a spring-forward gap fires once, at the first valid instant after
//!   the gap (02:30 → 03:00); one in a fall-back overlap fires once, at
//!   its first occurrence.
//! - An **interval** pattern (hour field `*`, `*/n` or any step) fires at
//!   every real occurrence: 23 hourly fires on a spring-forward day, 25 on
//!   a fall-back day.
//!
//! Nothing here reads the clock: every function takes the instant it
//! starts from.

use chrono::{DateTime, LocalResult, NaiveDateTime, TimeDelta, TimeZone, Utc};
use chrono_tz::Tz;

use crate::domain::CronSpec;

/// How a pattern meets a daylight-saving change.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum DstPolicy {
    /// A fixed hour: gap → first instant after it, overlap → first occurrence.
    Fixed,
    /// A wildcard or stepped hour: every real occurrence, none invented.
    Interval,
}

/// The policy of a pattern, from its hour field: `*` or a step (`/`)
/// anywhere in it is [`DstPolicy::Interval`], anything else (a number, a
/// list, a range) is [`DstPolicy::Fixed`]. Of the `@` shorthands only
/// `@hourly` is an interval.
pub(crate) fn dst_policy(spec: &CronSpec) -> DstPolicy {
    let pattern = spec.pattern().trim();
    let interval = if pattern.starts_with('@') {
        pattern.eq_ignore_ascii_case("@hourly")
    } else {
        pattern
            .split_whitespace()
            .nth(1)
            .is_some_and(|hour| hour.contains('*') || hour.contains('/'))
    };
    if interval {
        DstPolicy::Interval
    } else {
        DstPolicy::Fixed
    }
}

use crate::domain::local_time::{MARGIN, after_gap};

/// How far [`next_cron_fire`] looks before it says a pattern never fires.
const SEARCH_YEARS: i64 = 8;

/// Every fire of `spec` in `tz` strictly after `after` and at or before
/// `until`, in order, each instant once.
pub(crate) fn cron_fires(
    spec: &CronSpec,
    tz: Tz,
    after: DateTime<Utc>,
    until: DateTime<Utc>,
) -> Vec<DateTime<Utc>> {
    if until <= after {
        return Vec::new();
    }
    let policy = dst_policy(spec);
    let last = until.with_timezone(&tz).naive_local() + MARGIN;
    let mut out = Vec::new();
    for naive in local_matches(spec, after.with_timezone(&tz).naive_local() - MARGIN) {
        if naive > last {
            break;
        }
        out.extend(
            instants(tz, naive, policy)
                .into_iter()
                .filter(|t| *t > after && *t <= until),
        );
    }
    out.sort_unstable();
    out.dedup();
    out
}

/// The first fire of `spec` in `tz` strictly after `after`; `None` when
/// the pattern never fires again (within the years the search looks).
pub(crate) fn next_cron_fire(
    spec: &CronSpec,
    tz: Tz,
    after: DateTime<Utc>,
) -> Option<DateTime<Utc>> {
    next_fire_with(spec, tz, after, dst_policy(spec))
}

/// [`next_cron_fire`] under a given policy: session calendars are always
/// [`DstPolicy::Fixed`], whatever their hour field.
pub(crate) fn next_fire_with(
    spec: &CronSpec,
    tz: Tz,
    after: DateTime<Utc>,
    policy: DstPolicy,
) -> Option<DateTime<Utc>> {
    let start = after.with_timezone(&tz).naive_local();
    let give_up = start + TimeDelta::days(366 * SEARCH_YEARS);
    let mut best: Option<(DateTime<Utc>, NaiveDateTime)> = None;
    for naive in local_matches(spec, start - MARGIN) {
        // A later wall time can still be an earlier instant in an overlap,
        // but never once it is more than a shift past the best so far.
        if best.is_some_and(|(_, best_naive)| naive > best_naive + MARGIN) || naive > give_up {
            break;
        }
        for t in instants(tz, naive, policy) {
            if t > after && best.is_none_or(|(b, _)| t < b) {
                best = Some((t, naive));
            }
        }
    }
    best.map(|(t, _)| t)
}

/// The instants a matching naive local time stands for under `policy`.
fn instants(tz: Tz, naive: NaiveDateTime, policy: DstPolicy) -> Vec<DateTime<Utc>> {
    match (tz.from_local_datetime(&naive), policy) {
        (LocalResult::Single(t), _) => vec![t.with_timezone(&Utc)],
        (LocalResult::Ambiguous(first, _), DstPolicy::Fixed) => vec![first.with_timezone(&Utc)],
        (LocalResult::Ambiguous(first, second), DstPolicy::Interval) => {
            vec![first.with_timezone(&Utc), second.with_timezone(&Utc)]
        }
        (LocalResult::None, DstPolicy::Fixed) => vec![after_gap(tz, naive).with_timezone(&Utc)],
        (LocalResult::None, DstPolicy::Interval) => Vec::new(),
    }
}

/// The naive local wall times matching `spec`, at or after `from`, in
/// order: croner evaluated in UTC sees a calendar with no daylight saving.
fn local_matches(spec: &CronSpec, from: NaiveDateTime) -> impl Iterator<Item = NaiveDateTime> + '_ {
    let mut cursor = spec.next_naive(from, true);
    std::iter::from_fn(move || {
        let current = cursor?;
        cursor = spec.next_naive(current, false);
        Some(current)
    })
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeSet;

    use chrono::{NaiveDate, NaiveTime};

    use crate::domain::local_time::resolve_local;
    use crate::testing::Rng;

    use chrono::{Datelike, Timelike};
    use chrono_tz::America::{New_York, Santiago};
    use chrono_tz::Australia::{Lord_Howe, Sydney};

    use super::*;

    fn spec(pattern: &str) -> CronSpec {
        CronSpec::parse(pattern).unwrap()
    }

    /// The fires of `pattern` on one local day in `tz`, as RFC 3339 in `tz`.
    fn day(pattern: &str, tz: Tz, y: i32, m: u32, d: u32) -> Vec<String> {
        let date = NaiveDate::from_ymd_opt(y, m, d).unwrap();
        let start = resolve_local(tz, date, NaiveTime::MIN).with_timezone(&Utc);
        let next = date.succ_opt().unwrap();
        let end = resolve_local(tz, next, NaiveTime::MIN).with_timezone(&Utc);
        cron_fires(
            &spec(pattern),
            tz,
            start - TimeDelta::seconds(1),
            end - TimeDelta::seconds(1),
        )
        .into_iter()
        .map(|t| t.with_timezone(&tz).to_rfc3339())
        .collect()
    }

    fn utc(text: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(text)
            .unwrap()
            .with_timezone(&Utc)
    }

    #[test]
    fn the_hour_field_decides_the_policy() {
        for p in [
            "30 2 * * *",
            "0 1-3 * * *",
            "0 2,3 * * *",
            "*/15 1 * * *",
            "@daily",
        ] {
            assert_eq!(dst_policy(&spec(p)), DstPolicy::Fixed, "{p}");
        }
        for p in ["0 * * * *", "30 */2 * * *", "0 1-5/2 * * *", "@hourly"] {
            assert_eq!(dst_policy(&spec(p)), DstPolicy::Interval, "{p}");
        }
    }

    #[test]
    fn a_daily_0230_fires_at_0300_on_the_spring_forward_day_once() {
        assert_eq!(
            day("30 2 * * *", New_York, 2026, 3, 8),
            ["2026-03-08T03:00:00-04:00"]
        );
        assert_eq!(
            day("30 2 * * *", New_York, 2026, 3, 9),
            ["2026-03-09T02:30:00-04:00"]
        );
        assert_eq!(
            day("30 2 * * *", New_York, 2026, 11, 1),
            ["2026-11-01T02:30:00-05:00"]
        );
    }

    #[test]
    fn a_daily_0130_fires_once_on_the_fall_back_day_at_its_first_occurrence() {
        assert_eq!(
            day("30 1 * * *", New_York, 2026, 11, 1),
            ["2026-11-01T01:30:00-04:00"]
        );
        let next = next_cron_fire(&spec("30 1 * * *"), New_York, utc("2026-11-01T00:00:00Z"));
        assert_eq!(next, Some(utc("2026-11-01T05:30:00Z")));
        // From inside the overlap's second half, the next is the next day's.
        let next = next_cron_fire(&spec("30 1 * * *"), New_York, utc("2026-11-01T05:45:00Z"));
        assert_eq!(next, Some(utc("2026-11-02T06:30:00Z")));
        assert_eq!(
            day("30 1 * * *", New_York, 2026, 3, 8),
            ["2026-03-08T01:30:00-05:00"]
        );
    }

    #[test]
    fn an_hourly_pattern_fires_at_every_real_hour_23_and_25_times() {
        for pattern in ["0 * * * *", "30 * * * *"] {
            let spring = day(pattern, New_York, 2026, 3, 8);
            assert_eq!(spring.len(), 23, "{pattern}: {spring:?}");
            assert!(!spring.iter().any(|t| t.contains("T02:")), "{spring:?}");
            let fall = day(pattern, New_York, 2026, 11, 1);
            assert_eq!(fall.len(), 25, "{pattern}: {fall:?}");
            let ones: Vec<&String> = fall.iter().filter(|t| t.contains("T01:")).collect();
            assert_eq!(ones.len(), 2, "{ones:?}");
            assert!(ones[0].ends_with("-04:00") && ones[1].ends_with("-05:00"));
        }
    }

    #[test]
    fn a_stepped_minute_in_a_fixed_hour_fires_four_times_in_the_first_occurrence() {
        assert_eq!(
            day("*/15 1 * * *", New_York, 2026, 11, 1),
            [
                "2026-11-01T01:00:00-04:00",
                "2026-11-01T01:15:00-04:00",
                "2026-11-01T01:30:00-04:00",
                "2026-11-01T01:45:00-04:00",
            ]
        );
    }

    #[test]
    fn two_fixed_hours_that_meet_in_a_gap_fire_once() {
        assert_eq!(
            day("0 2,3 * * *", New_York, 2026, 3, 8),
            ["2026-03-08T03:00:00-04:00"]
        );
        assert_eq!(day("0 2,3 * * *", New_York, 2026, 3, 9).len(), 2);
    }

    #[test]
    fn a_thirty_minute_shift_works_the_same_way() {
        // Lord Howe: 02:00 +11 → 01:30 +10:30 on 2026-04-05, 02:00 +10:30 → 02:30 +11 on 2026-10-04.
        assert_eq!(
            day("45 1 * * *", Lord_Howe, 2026, 4, 5),
            ["2026-04-05T01:45:00+11:00"]
        );
        assert_eq!(day("45 1 * * *", Lord_Howe, 2026, 4, 5).len(), 1);
        assert_eq!(
            day("15 2 * * *", Lord_Howe, 2026, 10, 4),
            ["2026-10-04T02:30:00+11:00"]
        );
        // Hourly at :15 and :45: the half hour repeated in autumn gives one more of one.
        assert_eq!(day("15 * * * *", Lord_Howe, 2026, 4, 5).len(), 24);
        assert_eq!(day("45 * * * *", Lord_Howe, 2026, 4, 5).len(), 25);
        assert_eq!(day("15 * * * *", Lord_Howe, 2026, 10, 4).len(), 23);
        assert_eq!(day("45 * * * *", Lord_Howe, 2026, 10, 4).len(), 24);
        assert_eq!(
            resolve_local(
                Lord_Howe,
                NaiveDate::from_ymd_opt(2026, 10, 4).unwrap(),
                NaiveTime::from_hms_opt(2, 0, 0).unwrap()
            )
            .to_rfc3339(),
            "2026-10-04T02:30:00+11:00"
        );
    }

    #[test]
    fn the_southern_hemisphere_falls_back_in_april_and_springs_forward_in_october() {
        assert_eq!(
            day("30 2 * * *", Sydney, 2026, 4, 5),
            ["2026-04-05T02:30:00+11:00"]
        );
        assert_eq!(
            day("30 2 * * *", Sydney, 2026, 10, 4),
            ["2026-10-04T03:00:00+11:00"]
        );
        assert_eq!(day("0 * * * *", Sydney, 2026, 4, 5).len(), 25);
        assert_eq!(day("0 * * * *", Sydney, 2026, 10, 4).len(), 23);
        // Santiago changes at midnight: 2026-04-05 00:00 -03 → 23:00 -04 the day
        // before; 2026-09-06 00:00 -04 → 01:00 -03.
        assert_eq!(
            day("0 0 * * *", Santiago, 2026, 9, 6),
            ["2026-09-06T01:00:00-03:00"]
        );
        assert_eq!(
            day("30 23 * * *", Santiago, 2026, 4, 4),
            ["2026-04-04T23:30:00-03:00"]
        );
        assert_eq!(day("30 * * * *", Santiago, 2026, 4, 4).len(), 25);
    }

    #[test]
    fn a_pattern_that_never_fires_ends_the_search() {
        let now = utc("2026-01-01T00:00:00Z");
        assert_eq!(next_cron_fire(&spec("0 0 30 2 *"), New_York, now), None);
        assert!(
            cron_fires(
                &spec("0 0 30 2 *"),
                New_York,
                now,
                now + TimeDelta::days(800)
            )
            .is_empty()
        );
        // Once in four years is within the search.
        let leap = next_cron_fire(&spec("0 12 29 2 *"), New_York, now).unwrap();
        assert_eq!(leap.with_timezone(&New_York).year(), 2028);
    }

    #[test]
    fn resolve_local_takes_the_first_occurrence_and_the_end_of_a_gap() {
        let d = |m, d| NaiveDate::from_ymd_opt(2026, m, d).unwrap();
        let t = |h, m| NaiveTime::from_hms_opt(h, m, 0).unwrap();
        assert_eq!(
            resolve_local(New_York, d(3, 8), t(2, 30)).to_rfc3339(),
            "2026-03-08T03:00:00-04:00"
        );
        assert_eq!(
            resolve_local(New_York, d(11, 1), t(1, 30)).to_rfc3339(),
            "2026-11-01T01:30:00-04:00"
        );
        assert_eq!(
            resolve_local(New_York, d(7, 1), t(17, 0)).to_rfc3339(),
            "2026-07-01T17:00:00-04:00"
        );
    }

    #[test]
    fn resolve_local_is_the_wall_time_when_it_exists_and_the_jump_when_it_does_not() {
        let zones = [
            New_York,
            Sydney,
            Lord_Howe,
            Santiago,
            chrono_tz::Europe::London,
            chrono_tz::Antarctica::Troll,
            chrono_tz::Pacific::Chatham,
            chrono_tz::UTC,
        ];
        let mut rng = Rng::new(0x2545_f491_4f6c_dd1d);
        let base = NaiveDate::from_ymd_opt(2026, 1, 1).unwrap();
        // The 2026 change days of these zones, where the early hours are
        // picked most.
        let changes = [
            "2026-03-08",
            "2026-11-01",
            "2026-04-05",
            "2026-10-04",
            "2026-03-29",
            "2026-10-25",
            "2026-09-06",
            "2026-04-04",
            "2026-09-27",
        ];
        let (mut gaps, mut overlaps) = (0, 0);
        for _ in 0..3000 {
            let tz = *rng.pick(&zones);
            let (date, minute) = if rng.next().is_multiple_of(2) {
                let change: &&str = rng.pick(&changes[..]);
                let change = super::super::parse_date(change).unwrap();
                (change, (rng.next() % 240) as u32)
            } else {
                (
                    base + TimeDelta::days((rng.next() % 730) as i64),
                    (rng.next() % 1440) as u32,
                )
            };
            let time = NaiveTime::from_hms_opt(minute / 60, minute % 60, 0).unwrap();
            let naive = date.and_time(time);
            let got = resolve_local(tz, date, time);
            let case = format!("{naive} in {tz}: {got}");
            match tz.from_local_datetime(&naive) {
                LocalResult::Single(t) => assert_eq!(got, t, "{case}"),
                LocalResult::Ambiguous(first, _) => {
                    overlaps += 1;
                    assert_eq!(got, first, "{case}");
                }
                LocalResult::None => {
                    gaps += 1;
                    // The jump: its wall time is past `naive`, a second
                    // earlier is before the gap.
                    assert!(got.naive_local() > naive, "{case}");
                    let before = (got - TimeDelta::seconds(1)).naive_local();
                    assert!(before < naive, "{case}: {before}");
                }
            }
        }
        assert!(
            gaps > 20 && overlaps > 20,
            "{gaps} gaps, {overlaps} overlaps"
        );
    }

    #[test]
    fn fires_are_increasing_in_range_agree_with_next_and_fixed_ones_fire_once_per_wall_time() {
        let patterns = [
            "0 * * * *",
            "30 * * * *",
            "*/15 * * * *",
            "0 */2 * * *",
            "30 2 * * *",
            "30 1 * * *",
            "0 2,3 * * *",
            "*/20 1 * * *",
            "0 0 * * *",
            "45 1-3 * * SUN",
            "0 18 * * TUE",
            "15 0 1 * *",
            "0 12 29 2 *",
            "5 23 * * 6",
        ];
        let zones = [
            New_York,
            Sydney,
            Lord_Howe,
            Santiago,
            chrono_tz::Europe::London,
            chrono_tz::Asia::Kolkata,
            chrono_tz::UTC,
            chrono_tz::Antarctica::Troll,
            chrono_tz::Pacific::Chatham,
        ];
        // Instants around the 2026 changes and ordinary days.
        let anchors = [
            "2026-03-08T00:00:00Z",
            "2026-11-01T00:00:00Z",
            "2026-04-04T10:00:00Z",
            "2026-10-03T10:00:00Z",
            "2026-03-29T00:00:00Z",
            "2026-09-05T20:00:00Z",
            "2026-06-15T12:00:00Z",
        ];
        let mut rng = Rng::new(0x9e37_79b9_7f4a_7c15);
        for _ in 0..500 {
            let pattern = *rng.pick(&patterns);
            let tz = *rng.pick(&zones);
            let anchor = rng.pick(&anchors[..]).to_string();
            let after = utc(&anchor) + TimeDelta::seconds((rng.next() % 172_800) as i64);
            let until = after + TimeDelta::seconds((rng.next() % 259_200) as i64);
            let s = spec(pattern);
            let all = cron_fires(&s, tz, after, until);
            let case = format!("{pattern} in {tz} after {after} until {until}");
            assert!(all.windows(2).all(|w| w[0] < w[1]), "{case}: {all:?}");
            assert!(all.iter().all(|t| *t > after && *t <= until), "{case}");
            let horizon = after + TimeDelta::days(10);
            let far = cron_fires(&s, tz, after, horizon);
            let next = next_cron_fire(&s, tz, after);
            match far.first() {
                Some(first) => assert_eq!(next, Some(*first), "{case}"),
                None => assert!(next.is_none_or(|n| n > horizon), "{case}: {next:?}"),
            }
            if let (Some(first), Some(last)) = (all.first(), all.last()) {
                // Split at a fire: the halves join to the whole.
                let mut joined = cron_fires(&s, tz, after, *first);
                joined.extend(cron_fires(&s, tz, *first, until));
                assert_eq!(joined, all, "{case}");
                if let Some(after_last) = far.iter().find(|t| *t > last) {
                    assert_eq!(next_cron_fire(&s, tz, *last), Some(*after_last), "{case}");
                }
            }
            if dst_policy(&s) == DstPolicy::Fixed {
                let mut walls = BTreeSet::new();
                for t in &all {
                    let local = t.with_timezone(&tz).naive_local();
                    assert!(walls.insert(local), "{case}: {local} twice");
                }
            }
            for t in &all {
                let local = t.with_timezone(&tz);
                assert!(local.second() == 0, "{case}: {local}");
            }
        }
    }
}
