//! Which fires a schedule has, and when each recipient's message goes.
//!
//! A fire is one instant of one schedule for one scope: everyone (a cron
//! in the schedule's own timezone), the members living in one timezone (a
//! cron in each recipient's own timezone), or one group's session (a
//! session-relative schedule). The fire instant is what the idempotency
//! key records, so processing a fire twice enqueues nothing new.

use chrono::{DateTime, Duration as TimeDelta, NaiveTime, Utc};
use chrono_tz::Tz;

use super::calendar;
use super::fire::{cron_fires, next_cron_fire};
use super::span;
use crate::domain::local_time::resolve_local;
use crate::domain::session::Session;
use crate::rules::{Group, RuleSet, Schedule, Timing, Window};

/// One fire of one schedule.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Fire {
    pub(crate) schedule: String,
    /// The instant, the key of everything the fire enqueues.
    pub(crate) at: DateTime<Utc>,
    /// `at` in the fire's timezone (schedule's, recipients', or group's).
    pub(crate) local: DateTime<Tz>,
    pub(crate) scope: Scope,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Scope {
    /// A cron with its own `timezone:`: the schedule's groups' members
    /// (every member when it names no group).
    Everyone,
    /// A cron in each recipient's own timezone: the members in this one.
    MembersIn(Tz),
    /// A session-relative fire: this group's members, about this session.
    Session { group: String, session: Session },
}

impl Scope {
    /// A short stable name for records: `all`, `tz:Europe/Paris`, `group:ID`.
    pub(crate) fn key(&self) -> String {
        match self {
            Scope::Everyone => "all".to_owned(),
            Scope::MembersIn(tz) => format!("tz:{}", tz.name()),
            Scope::Session { group, .. } => format!("group:{group}"),
        }
    }
}

/// The fires of `schedule` strictly after `after` and at or before
/// `until`, ordered by instant, then scope key. A cron without a
/// `timezone:` fires once per zone in `member_zones`. A disabled schedule
/// has none. Two sessions of one group whose fires fall on the same
/// instant make one fire (about the earlier session): the fire instant is
/// the idempotency key, so a member gets one message.
pub fn fires(
    rules: &RuleSet,
    schedule: &Schedule,
    after: DateTime<Utc>,
    until: DateTime<Utc>,
    member_zones: &[Tz],
) -> Vec<Fire> {
    if !schedule.enabled || until <= after {
        return Vec::new();
    }
    let mut out = Vec::new();
    match &schedule.timing {
        Timing::Cron {
            spec,
            timezone: Some(tz),
        } => {
            out.extend(
                cron_fires(spec, *tz, after, until)
                    .into_iter()
                    .map(|at| fire(schedule, at, *tz, Scope::Everyone)),
            );
        }
        Timing::Cron {
            spec,
            timezone: None,
        } => {
            for tz in distinct(member_zones) {
                out.extend(
                    cron_fires(spec, tz, after, until)
                        .into_iter()
                        .map(|at| fire(schedule, at, tz, Scope::MembersIn(tz))),
                );
            }
        }
        timing => {
            for group in schedule_groups(rules, schedule) {
                let (earliest, latest) = session_span(timing, group);
                for session in calendar::sessions(group, earlier(after, latest))
                    .take_while(|s| s.starts_at <= later(until, earliest))
                {
                    let Some(at) = session_fire(timing, &session) else {
                        continue;
                    };
                    if at > after && at <= until {
                        let scope = Scope::Session {
                            group: group.id.clone(),
                            session,
                        };
                        out.push(fire(schedule, at, group.timezone, scope));
                    }
                }
            }
        }
    }
    out.sort_by_cached_key(|f| (f.at, f.scope.key()));
    out.dedup_by(|later, earlier| {
        later.at == earlier.at && later.scope.key() == earlier.scope.key()
    });
    out
}

/// The first fire instant of `schedule` strictly after `after`, over the
/// same scopes as [`fires`].
pub fn next_fire(
    rules: &RuleSet,
    schedule: &Schedule,
    after: DateTime<Utc>,
    member_zones: &[Tz],
) -> Option<DateTime<Utc>> {
    if !schedule.enabled {
        return None;
    }
    match &schedule.timing {
        Timing::Cron {
            spec,
            timezone: Some(tz),
        } => next_cron_fire(spec, *tz, after),
        Timing::Cron {
            spec,
            timezone: None,
        } => distinct(member_zones)
            .into_iter()
            .filter_map(|tz| next_cron_fire(spec, tz, after))
            .min(),
        timing => schedule_groups(rules, schedule)
            .filter_map(|group| {
                let (earliest, latest) = session_span(timing, group);
                let mut best: Option<DateTime<Utc>> = None;
                for session in calendar::sessions(group, earlier(after, latest)) {
                    // No later session can fire before the best so far.
                    if best.is_some_and(|b| earlier(session.starts_at, earliest) > b) {
                        break;
                    }
                    if let Some(at) = session_fire(timing, &session)
                        && at > after
                        && best.is_none_or(|b| at < b)
                    {
                        best = Some(at);
                    }
                }
                best
            })
            .min(),
    }
}

/// When a session-relative `timing` fires for `session` (`None` for a
/// cron timing). Whole days of the offset move the session's local date,
/// keeping its local time of day (or taking `at`), resolved as a
/// fixed-time job is; the rest of the offset is absolute time.
/// `before_session` counts back from the session's start,
/// `after_session` forward from its end (with `at`, from its date).
pub(crate) fn session_fire(timing: &Timing, session: &Session) -> Option<DateTime<Utc>> {
    let tz = session.local_starts_at.timezone();
    let (offset, at, before) = match timing {
        Timing::Cron { .. } => return None,
        Timing::BeforeSession { offset, at } => (offset, at, true),
        Timing::AfterSession { offset, at } => (offset, at, false),
    };
    let secs = offset.as_secs();
    let days = i64::try_from(secs / 86_400).ok()?;
    let rest = TimeDelta::seconds(i64::try_from(secs % 86_400).ok()?);
    let days = chrono::Days::new(u64::try_from(days).ok()?);
    let at_time = |date: chrono::NaiveDate, time: NaiveTime| resolve_local(tz, date, time);
    let instant = match (before, at) {
        (true, Some(t)) => at_time(session.local_date().checked_sub_days(days)?, *t),
        (false, Some(t)) => at_time(session.local_date().checked_add_days(days)?, *t),
        (true, None) => {
            let start = session.local_starts_at;
            at_time(start.date_naive().checked_sub_days(days)?, start.time()) - rest
        }
        (false, None) => {
            let end = session.local_ends_at;
            at_time(end.date_naive().checked_add_days(days)?, end.time()) + rest
        }
    };
    Some(instant.with_timezone(&Utc))
}

/// When one recipient's message of a fire goes: with a `window:`, an
/// instant in `[from, to)` on the fire's local date in the fire's
/// timezone, derived from a hash of schedule, member and date (so a re-run
/// picks the same instant), never before the fire itself; without one,
/// the fire instant.
pub(crate) fn send_at(fire: &Fire, window: Option<&Window>, member_id: i64) -> DateTime<Utc> {
    let Some(window) = window else {
        return fire.at;
    };
    let length = (window.to - window.from).num_seconds();
    if length <= 0 {
        return fire.at;
    }
    let date = fire.local.date_naive();
    let key = format!("{}\u{0}{member_id}\u{0}{date}", fire.schedule);
    let offset = (fnv1a(key.as_bytes()) % length as u64) as i64;
    let time = window.from + TimeDelta::seconds(offset);
    let spread = resolve_local(fire.local.timezone(), date, time).with_timezone(&Utc);
    spread.max(fire.at)
}

/// When a message sent at `send_at` stops being worth sending:
/// `send_at + expires_after`, and for a `before_session` fire never later
/// than the session's start (a reminder never arrives after the session,
/// with or without `expires_after`). `None`: it does not expire.
pub(crate) fn expires_at(
    schedule: &Schedule,
    fire: &Fire,
    send_at: DateTime<Utc>,
) -> Option<DateTime<Utc>> {
    let by_duration = schedule
        .expires_after
        .and_then(|d| send_at.checked_add_signed(span(d)));
    let session_start = match (&schedule.timing, &fire.scope) {
        (Timing::BeforeSession { .. }, Scope::Session { session, .. }) => Some(session.starts_at),
        _ => None,
    };
    match (by_duration, session_start) {
        (Some(d), Some(s)) => Some(d.min(s)),
        (d, s) => d.or(s),
    }
}

fn fire(schedule: &Schedule, at: DateTime<Utc>, tz: Tz, scope: Scope) -> Fire {
    Fire {
        schedule: schedule.id.clone(),
        at,
        local: at.with_timezone(&tz),
        scope,
    }
}

/// The groups whose sessions a session-relative schedule follows: its
/// `groups:`, or every group when it names none.
fn schedule_groups<'a>(
    rules: &'a RuleSet,
    schedule: &'a Schedule,
) -> Box<dyn Iterator<Item = &'a Group> + 'a> {
    if schedule.groups.is_empty() {
        Box::new(rules.groups.values())
    } else {
        Box::new(schedule.groups.iter().filter_map(|id| rules.groups.get(id)))
    }
}

/// How far before a session's start its fire can be (`earliest`), and
/// how far after (`latest`): bounds for which sessions to look at. Whole
/// days move local dates, so a day and a shift of slack on each side.
fn session_span(timing: &Timing, group: &Group) -> (TimeDelta, TimeDelta) {
    let slack = TimeDelta::days(2);
    let longest = group
        .extra
        .iter()
        .filter_map(|e| e.duration)
        .chain([group.duration])
        .map(span)
        .max()
        .unwrap_or_default();
    match timing {
        Timing::BeforeSession { offset, .. } => (span(*offset) + slack, slack),
        Timing::AfterSession { offset, .. } => (slack, span(*offset) + longest + slack),
        Timing::Cron { .. } => (slack, slack),
    }
}

/// `t - d`, or the earliest instant there is.
fn earlier(t: DateTime<Utc>, d: TimeDelta) -> DateTime<Utc> {
    t.checked_sub_signed(d).unwrap_or(DateTime::<Utc>::MIN_UTC)
}

/// `t + d`, or the latest instant there is.
fn later(t: DateTime<Utc>, d: TimeDelta) -> DateTime<Utc> {
    t.checked_add_signed(d).unwrap_or(DateTime::<Utc>::MAX_UTC)
}

fn distinct(zones: &[Tz]) -> Vec<Tz> {
    let mut out: Vec<Tz> = Vec::with_capacity(zones.len());
    for tz in zones {
        if !out.contains(tz) {
            out.push(*tz);
        }
    }
    out
}

/// 64-bit FNV-1a: stable across builds and platforms, unlike `DefaultHasher`.
fn fnv1a(bytes: &[u8]) -> u64 {
    bytes.iter().fold(0xcbf2_9ce4_8422_2325, |hash, b| {
        (hash ^ u64::from(*b)).wrapping_mul(0x0000_0100_0000_01b3)
    })
}

#[cfg(test)]
mod tests {
    use std::collections::{BTreeMap, BTreeSet};
    use std::path::PathBuf;

    use chrono::{NaiveTime, TimeZone, Timelike};
    use chrono_tz::America::New_York;
    use chrono_tz::Europe::Paris;

    use super::*;
    use crate::config::{CompileOptions, Source, compile::compile};

    /// A rule set from one YAML text; panics with the diagnostics if it
    /// does not compile.
    fn rules(yaml: &str) -> RuleSet {
        let c = compile(
            &[Source {
                path: PathBuf::from("rules.yaml"),
                text: yaml.to_owned(),
            }],
            &BTreeMap::new(),
            &CompileOptions::default(),
        );
        let shown: Vec<String> = c.diagnostics.iter().map(|d| d.to_string()).collect();
        c.rules.unwrap_or_else(|| panic!("{shown:#?}"))
    }

    /// Groups meeting Mondays 18:00 and Tuesdays 18:00 in New York, a
    /// template, and `schedules` appended.
    fn with_schedules(schedules: &str) -> RuleSet {
        rules(&format!(
            r#"groups:
  - id: monday
    name: Monday Group
    timezone: America/New_York
    sessions:
      cron: "0 18 * * MON"
      duration: 90m
      cancelled: ["2026-03-16"]
      extra:
        - {{ date: "2026-03-19", at: "12:00", duration: 60m }}
  - id: tuesday
    name: Tuesday Group
    timezone: America/New_York
    sessions: {{ cron: "0 18 * * TUE", duration: 90m }}
templates:
  note:
    body: "Hi {{{{ member.first_name }}}}"
schedules:
{schedules}"#
        ))
    }

    fn utc(text: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(text)
            .unwrap()
            .with_timezone(&Utc)
    }

    fn locals(fires: &[Fire]) -> Vec<String> {
        fires.iter().map(|f| f.local.to_rfc3339()).collect()
    }

    fn fires_of(r: &RuleSet, id: &str, after: &str, until: &str, zones: &[Tz]) -> Vec<Fire> {
        fires(r, &r.schedules[id], utc(after), utc(until), zones)
    }

    #[test]
    fn a_cron_with_a_timezone_fires_for_everyone_in_that_zone() {
        let r = with_schedules(
            "  - id: daily\n    template: note\n    cron: \"0 12 * * *\"\n    timezone: Europe/Paris\n",
        );
        let f = fires_of(
            &r,
            "daily",
            "2026-03-28T00:00:00Z",
            "2026-03-30T00:00:00Z",
            &[New_York],
        );
        assert_eq!(
            locals(&f),
            ["2026-03-28T12:00:00+01:00", "2026-03-29T12:00:00+02:00"]
        );
        assert!(
            f.iter()
                .all(|f| f.scope == Scope::Everyone && f.schedule == "daily")
        );
        assert_eq!(
            next_fire(&r, &r.schedules["daily"], utc("2026-03-28T11:00:00Z"), &[]),
            Some(utc("2026-03-29T10:00:00Z"))
        );
    }

    #[test]
    fn a_cron_without_a_timezone_fires_once_per_member_zone() {
        let r = with_schedules("  - id: daily\n    template: note\n    cron: \"0 12 * * *\"\n");
        let f = fires_of(
            &r,
            "daily",
            "2026-06-01T00:00:00Z",
            "2026-06-01T23:59:59Z",
            &[New_York, Paris, New_York],
        );
        let got: Vec<(String, String)> = f
            .iter()
            .map(|f| (f.at.to_rfc3339(), f.scope.key()))
            .collect();
        assert_eq!(
            got,
            [
                ("2026-06-01T10:00:00+00:00".into(), "tz:Europe/Paris".into()),
                (
                    "2026-06-01T16:00:00+00:00".into(),
                    "tz:America/New_York".into()
                ),
            ]
        );
        assert_eq!(
            next_fire(
                &r,
                &r.schedules["daily"],
                utc("2026-06-01T11:00:00Z"),
                &[New_York, Paris]
            ),
            Some(utc("2026-06-01T16:00:00Z"))
        );
        assert_eq!(
            next_fire(&r, &r.schedules["daily"], utc("2026-06-01T11:00:00Z"), &[]),
            None
        );
    }

    #[test]
    fn the_day_before_a_monday_session_at_1700_is_1700_local_on_both_sides_of_each_change() {
        let r = with_schedules(
            "  - id: eve\n    template: note\n    groups: [monday]\n    before_session: 1d\n    at: \"17:00\"\n",
        );
        let spring = fires_of(
            &r,
            "eve",
            "2026-03-01T00:00:00Z",
            "2026-03-09T00:00:00Z",
            &[],
        );
        assert_eq!(
            locals(&spring),
            ["2026-03-01T17:00:00-05:00", "2026-03-08T17:00:00-04:00"]
        );
        let fall = fires_of(
            &r,
            "eve",
            "2026-10-25T00:00:00Z",
            "2026-11-02T00:00:00Z",
            &[],
        );
        assert_eq!(
            locals(&fall),
            ["2026-10-25T17:00:00-04:00", "2026-11-01T17:00:00-05:00"]
        );
        let Scope::Session { group, session } = &fall[1].scope else {
            panic!("a session fire");
        };
        assert_eq!(group, "monday");
        assert_eq!(
            session.local_starts_at.to_rfc3339(),
            "2026-11-02T18:00:00-05:00"
        );
        assert_eq!(fall[1].at - fall[0].at, TimeDelta::hours(7 * 24 + 1));
    }

    #[test]
    fn a_whole_day_offset_keeps_the_session_time_and_the_rest_is_absolute() {
        let r = with_schedules(
            "  - id: day\n    template: note\n    groups: [monday]\n    before_session: 1d\n  - id: day-and-hour\n    template: note\n    groups: [monday]\n    before_session: 1d2h\n  - id: hours\n    template: note\n    groups: [monday]\n    before_session: 26h\n",
        );
        let window = ("2026-03-07T00:00:00Z", "2026-03-09T00:00:00Z");
        // The Monday after the spring change: 18:00 local the day before,
        // 23 real hours earlier.
        let day = fires_of(&r, "day", window.0, window.1, &[]);
        assert_eq!(locals(&day), ["2026-03-08T18:00:00-04:00"]);
        let day_hour = fires_of(&r, "day-and-hour", window.0, window.1, &[]);
        assert_eq!(locals(&day_hour), ["2026-03-08T16:00:00-04:00"]);
        // `26h` is whole days too (one of them), then two hours.
        let hours = fires_of(&r, "hours", window.0, window.1, &[]);
        assert_eq!(locals(&hours), ["2026-03-08T16:00:00-04:00"]);
    }

    #[test]
    fn after_session_counts_from_the_session_end() {
        let r = with_schedules(
            "  - id: after\n    template: note\n    groups: [tuesday]\n    after_session: 2h\n  - id: next-day\n    template: note\n    groups: [tuesday]\n    after_session: 1d\n    at: \"10:00\"\n",
        );
        let f = fires_of(
            &r,
            "after",
            "2026-01-05T00:00:00Z",
            "2026-01-08T00:00:00Z",
            &[],
        );
        assert_eq!(locals(&f), ["2026-01-06T21:30:00-05:00"]);
        let f = fires_of(
            &r,
            "next-day",
            "2026-01-05T00:00:00Z",
            "2026-01-08T00:00:00Z",
            &[],
        );
        assert_eq!(locals(&f), ["2026-01-07T10:00:00-05:00"]);
        assert_eq!(
            next_fire(
                &r,
                &r.schedules["next-day"],
                utc("2026-01-05T00:00:00Z"),
                &[]
            ),
            Some(f[0].at)
        );
    }

    #[test]
    fn a_cancelled_session_has_no_fire_and_an_extra_session_has_one() {
        let r = with_schedules(
            "  - id: remind\n    template: note\n    groups: [monday]\n    before_session: 2h\n",
        );
        let f = fires_of(
            &r,
            "remind",
            "2026-03-14T00:00:00Z",
            "2026-03-24T00:00:00Z",
            &[],
        );
        // 03-16 is cancelled; 03-19 12:00 is extra; 03-23 is regular.
        assert_eq!(
            locals(&f),
            ["2026-03-19T10:00:00-04:00", "2026-03-23T16:00:00-04:00"]
        );
        let Scope::Session { session, .. } = &f[0].scope else {
            panic!("a session fire");
        };
        assert!(session.extra);
        assert_eq!(session.ends_at - session.starts_at, TimeDelta::hours(1));
        assert_eq!(
            next_fire(&r, &r.schedules["remind"], utc("2026-03-14T00:00:00Z"), &[]),
            Some(f[0].at)
        );
    }

    #[test]
    fn a_session_schedule_without_groups_follows_every_group_ordered_by_instant_then_group() {
        let r = with_schedules(
            "  - id: remind\n    template: note\n    before_session: 1d\n    at: \"17:00\"\n  - id: off\n    template: note\n    before_session: 1d\n    enabled: false\n",
        );
        let f = fires_of(
            &r,
            "remind",
            "2026-01-04T00:00:00Z",
            "2026-01-06T00:00:00Z",
            &[],
        );
        let got: Vec<(String, String)> = f
            .iter()
            .map(|f| (f.local.to_rfc3339(), f.scope.key()))
            .collect();
        assert_eq!(
            got,
            [
                ("2026-01-04T17:00:00-05:00".into(), "group:monday".into()),
                ("2026-01-05T17:00:00-05:00".into(), "group:tuesday".into()),
            ]
        );
        assert!(
            fires_of(
                &r,
                "off",
                "2026-01-01T00:00:00Z",
                "2026-02-01T00:00:00Z",
                &[]
            )
            .is_empty()
        );
        assert_eq!(
            next_fire(&r, &r.schedules["off"], utc("2026-01-01T00:00:00Z"), &[]),
            None
        );
    }

    #[test]
    fn fires_are_strictly_after_and_at_or_before_until() {
        let r = with_schedules(
            "  - id: daily\n    template: note\n    cron: \"0 12 * * *\"\n    timezone: UTC\n",
        );
        let f = fires_of(
            &r,
            "daily",
            "2026-01-01T12:00:00Z",
            "2026-01-02T12:00:00Z",
            &[],
        );
        assert_eq!(f.len(), 1);
        assert_eq!(f[0].at, utc("2026-01-02T12:00:00Z"));
    }

    fn a_fire(r: &RuleSet, id: &str) -> Fire {
        fires_of(
            r,
            id,
            "2026-01-04T00:00:00Z",
            "2026-01-12T00:00:00Z",
            &[New_York],
        )
        .into_iter()
        .next()
        .expect("a fire")
    }

    #[test]
    fn without_a_window_a_message_goes_at_the_fire() {
        let r = with_schedules("  - id: daily\n    template: note\n    cron: \"0 12 * * *\"\n");
        let f = a_fire(&r, "daily");
        assert_eq!(send_at(&f, None, 7), f.at);
    }

    #[test]
    fn a_window_spreads_members_inside_it_stably() {
        let r = with_schedules("  - id: daily\n    template: note\n    cron: \"0 8 * * *\"\n");
        let f = a_fire(&r, "daily");
        let window = Window {
            from: NaiveTime::from_hms_opt(10, 0, 0).unwrap(),
            to: NaiveTime::from_hms_opt(14, 0, 0).unwrap(),
        };
        let times: Vec<DateTime<Utc>> = (1..=100).map(|m| send_at(&f, Some(&window), m)).collect();
        for t in &times {
            let local = t.with_timezone(&New_York);
            assert_eq!(local.date_naive(), f.local.date_naive());
            assert!((10..14).contains(&local.hour()), "{local}");
        }
        let distinct: BTreeSet<_> = times.iter().collect();
        assert!(
            distinct.len() > 50,
            "only {} distinct instants",
            distinct.len()
        );
        // Stable: the same member, fire and window give the same instant.
        let again: Vec<DateTime<Utc>> = (1..=100).map(|m| send_at(&f, Some(&window), m)).collect();
        assert_eq!(times, again);
        // Pinned: a re-run after an upgrade must pick the same instant, so
        // a change of hash shows here.
        assert_eq!(
            send_at(&f, Some(&window), 1).to_rfc3339(),
            "2026-01-04T18:54:14+00:00"
        );
        // Another day gives another spread for the same member.
        let next = fires_of(
            &r,
            "daily",
            "2026-01-04T00:00:00Z",
            "2026-01-20T00:00:00Z",
            &[New_York],
        );
        let per_day: BTreeSet<_> = next
            .iter()
            .map(|f| send_at(f, Some(&window), 1).with_timezone(&New_York).time())
            .collect();
        assert!(per_day.len() > 1, "{per_day:?}");
    }

    #[test]
    fn a_window_never_sends_before_the_fire() {
        let r = with_schedules("  - id: daily\n    template: note\n    cron: \"0 15 * * *\"\n");
        let f = a_fire(&r, "daily");
        let window = Window {
            from: NaiveTime::from_hms_opt(10, 0, 0).unwrap(),
            to: NaiveTime::from_hms_opt(14, 0, 0).unwrap(),
        };
        for m in 1..=20 {
            assert_eq!(send_at(&f, Some(&window), m), f.at);
        }
    }

    #[test]
    fn expiry_is_send_plus_expires_after_capped_at_the_session_start() {
        let r = with_schedules(
            "  - id: remind\n    template: note\n    groups: [tuesday]\n    before_session: 1d\n    at: \"17:00\"\n    expires_after: 2d\n  - id: short\n    template: note\n    groups: [tuesday]\n    before_session: 1d\n    at: \"17:00\"\n    expires_after: 2h\n  - id: plain\n    template: note\n    groups: [tuesday]\n    before_session: 3h\n  - id: daily\n    template: note\n    cron: \"0 12 * * *\"\n    expires_after: 4h\n  - id: open\n    template: note\n    cron: \"0 12 * * *\"\n",
        );
        let f = a_fire(&r, "remind");
        let start = New_York
            .with_ymd_and_hms(2026, 1, 6, 18, 0, 0)
            .unwrap()
            .with_timezone(&Utc);
        assert_eq!(expires_at(&r.schedules["remind"], &f, f.at), Some(start));
        let f = a_fire(&r, "short");
        assert_eq!(
            expires_at(&r.schedules["short"], &f, f.at),
            Some(f.at + TimeDelta::hours(2))
        );
        let f = a_fire(&r, "plain");
        assert_eq!(expires_at(&r.schedules["plain"], &f, f.at), Some(start));
        let f = a_fire(&r, "daily");
        let later = f.at + TimeDelta::minutes(30);
        assert_eq!(
            expires_at(&r.schedules["daily"], &f, later),
            Some(later + TimeDelta::hours(4))
        );
        let f = a_fire(&r, "open");
        assert_eq!(expires_at(&r.schedules["open"], &f, f.at), None);
    }

    #[test]
    fn next_fire_agrees_with_the_first_of_fires() {
        let r = with_schedules(
            "  - id: a\n    template: note\n    before_session: 1d\n    at: \"17:00\"\n  - id: b\n    template: note\n    after_session: 30m\n  - id: c\n    template: note\n    cron: \"30 2 * * *\"\n  - id: d\n    template: note\n    cron: \"0 * * * *\"\n    timezone: America/New_York\n  - id: e\n    template: note\n    groups: [monday]\n    before_session: 2d3h\n",
        );
        let zones = [New_York, Paris];
        let mut after = utc("2026-02-20T00:00:00Z");
        for step in 0..60 {
            for (id, s) in &r.schedules {
                let all = fires(&r, s, after, after + TimeDelta::days(15), &zones);
                assert_eq!(
                    next_fire(&r, s, after, &zones),
                    all.first().map(|f| f.at),
                    "{id} after {after} (step {step})"
                );
            }
            after += TimeDelta::hours(7) + TimeDelta::minutes(13);
        }
    }
}
