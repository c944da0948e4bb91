//! One fire's fan-out: who receives it, what each of them is sent, and
//! which of those messages a frequency cap suppresses.
//!
//! Pure: the members, the cap counts and the rules come in, outbox rows
//! go out. [`super::Scheduler`] reads the store and writes the rows.

use std::collections::HashMap;

use chrono::{DateTime, Utc};
use chrono_tz::Tz;

use crate::domain::local_time::local_day;
use crate::domain::member::Member;
use crate::domain::message::{IdempotencyKey, Kind, NewMessage, Plan, SurveyStart};
use crate::rules::{Content, Group, Limits, RuleSet, Schedule, Segment};
use crate::rules::{segment, template};
use crate::schedule::plan::{self, Fire, Scope};

/// What one fire's fan-out produced.
#[derive(Debug, Default)]
pub struct FanOut {
    /// One per recipient; capped ones carry `suppressed`.
    pub messages: Vec<NewMessage>,
    /// Members left out because their message could not be made (a
    /// segment script failed for them, the template failed to render):
    /// member id and why. Logged by member id, never by name.
    pub(crate) failed: Vec<(i64, String)>,
}

/// The routine messages each member already has, by send time: what the
/// caps count. A fan-out adds the messages it plans, so a second schedule
/// in the same pass sees them.
#[derive(Debug, Default)]
pub struct CapCounts {
    pub(crate) times: HashMap<i64, Vec<DateTime<Utc>>>,
}

impl CapCounts {
    /// Why a message to `member` at `at` (the member's zone `tz`) would
    /// break a cap, if it would.
    pub(crate) fn exceeded(
        &self,
        limits: &Limits,
        member: i64,
        tz: Tz,
        at: DateTime<Utc>,
    ) -> Option<String> {
        let times = self.times.get(&member)?;
        let (day_start, day_end) = local_day(tz, at, 0)?;
        if let Some(cap) = limits.per_day {
            let n = times
                .iter()
                .filter(|t| **t >= day_start && **t < day_end)
                .count();
            if n >= cap as usize {
                return Some(format!(
                    "frequency cap: the member already has {n} routine message{} on this day (limits.per_day is {cap})",
                    if n == 1 { "" } else { "s" }
                ));
            }
        }
        if let Some(cap) = limits.per_week {
            let (week_start, _) = local_day(tz, at, 6)?;
            let n = times
                .iter()
                .filter(|t| **t >= week_start && **t < day_end)
                .count();
            if n >= cap as usize {
                return Some(format!(
                    "frequency cap: the member already has {n} routine message{} in these 7 days (limits.per_week is {cap})",
                    if n == 1 { "" } else { "s" }
                ));
            }
        }
        None
    }

    pub(crate) fn add(&mut self, member: i64, at: DateTime<Utc>) {
        self.times.entry(member).or_default().push(at);
    }
}

/// The rules in force for one fan-out and where they came from.
pub struct Context<'a> {
    pub rules: &'a RuleSet,
    pub generation: u64,
    pub version: &'a str,
}

/// Builds the messages of one fire for `members` (the store's recipients:
/// active, with consent), in member order.
pub fn fan_out(
    cx: &Context<'_>,
    schedule: &Schedule,
    fire: &Fire,
    members: &[Member],
    caps: &mut CapCounts,
) -> FanOut {
    let segment = (!segment::is_all(&schedule.segment))
        .then(|| cx.rules.segments.get(&schedule.segment))
        .flatten();
    let mut out = FanOut::default();
    for member in members {
        match member_message(cx, schedule, fire, segment, member, caps) {
            Ok(Some(m)) => out.messages.push(m),
            Ok(None) => {}
            Err(why) => out.failed.push((member.id, why)),
        }
    }
    out
}

/// One member's message of a fire: `None` when the member is outside the
/// fire's scope or segment; an error says why no message could be made.
fn member_message(
    cx: &Context<'_>,
    schedule: &Schedule,
    fire: &Fire,
    segment: Option<&Segment>,
    member: &Member,
    caps: &mut CapCounts,
) -> Result<Option<NewMessage>, String> {
    let rules = cx.rules;
    let Some(group) = scope_group(rules, schedule, fire, member) else {
        return Ok(None);
    };
    let tz: Tz = member
        .timezone
        .parse()
        .map_err(|_| format!("timezone `{}` is not an IANA timezone", member.timezone))?;
    if let Scope::MembersIn(zone) = &fire.scope
        && *zone != tz
    {
        return Ok(None);
    }
    let send_at = plan::send_at(fire, schedule.window.as_ref(), member.id);
    let view = member.view(send_at.with_timezone(&tz).date_naive());
    if let Some(seg) = segment
        && !segment::matches(seg, &view, &rules.sandbox)
            .map_err(|e| format!("segment `{}`: {e}", seg.id))?
    {
        return Ok(None);
    }
    let session = match (&fire.scope, group) {
        (Scope::Session { session, .. }, _) => Some(session.clone()),
        (_, Some(g)) => crate::schedule::sessions(g, send_at).next(),
        (_, None) => None,
    };
    let ctx = template::member_context(&view, group, session.as_ref(), send_at);
    let (name, survey) = content(rules, schedule, send_at)?;
    let body = rules
        .renderer
        .render(name, &ctx)
        .map_err(|e| format!("template `{name}`: {}", e.message))?;
    let suppressed = rules
        .limits
        .as_ref()
        .and_then(|l| caps.exceeded(l, member.id, tz, send_at));
    if suppressed.is_none() {
        caps.add(member.id, send_at);
    }
    Ok(Some(NewMessage {
        idempotency_key: IdempotencyKey::scheduled(&schedule.id, fire.at, member.id),
        member_id: Some(member.id),
        to: None,
        body,
        kind: Kind::Scheduled,
        not_before: send_at,
        expires_at: plan::expires_at(schedule, fire, send_at),
        plan: Some(Plan {
            schedule: schedule.id.clone(),
            fire: fire.at,
            generation: cx.generation,
            version: cx.version.to_owned(),
            survey,
        }),
        suppressed,
    }))
}

/// The template a schedule's message renders, and the survey it opens:
/// a survey's message is its first question.
fn content<'r>(
    rules: &'r RuleSet,
    schedule: &'r Schedule,
    send_at: DateTime<Utc>,
) -> Result<(&'r str, Option<SurveyStart>), String> {
    match &schedule.content {
        Content::Template(t) => Ok((t.as_str(), None)),
        Content::Survey(s) => {
            let (survey, first) = rules
                .surveys
                .get(s)
                .and_then(|v| Some((v, v.questions.first()?)))
                .ok_or_else(|| format!("survey `{s}` has no question"))?;
            Ok((
                first.ask.as_str(),
                Some(SurveyStart {
                    survey: survey.id.clone(),
                    expires_at: send_at + survey.expires_after.chrono(),
                }),
            ))
        }
    }
}

/// Whether the member is in the fire's scope, and the group the message
/// concerns: `Some(None)` in scope with no group (a group-less cron),
/// `Some(Some(g))` in scope about `g`, `None` out of scope.
fn scope_group<'r>(
    rules: &'r RuleSet,
    schedule: &Schedule,
    fire: &Fire,
    member: &Member,
) -> Option<Option<&'r Group>> {
    match &fire.scope {
        Scope::Session { group, .. } => member
            .groups
            .iter()
            .any(|g| g == group)
            .then(|| rules.groups.get(group))
            .flatten()
            .map(Some),
        Scope::Everyone | Scope::MembersIn(_) => {
            if schedule.groups.is_empty() {
                return Some(None);
            }
            let g = member.groups.iter().find(|g| schedule.groups.contains(g))?;
            Some(rules.groups.get(g))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono_tz::America::New_York;

    fn t(s: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(s).unwrap().with_timezone(&Utc)
    }

    #[test]
    fn a_local_day_is_midnight_to_midnight_where_the_member_lives_even_when_it_is_23_hours() {
        let (from, to) = local_day(New_York, t("2026-03-08T15:00:00Z"), 0).unwrap();
        assert_eq!(from, t("2026-03-08T05:00:00Z"));
        assert_eq!(to, t("2026-03-09T04:00:00Z"));
        let (week, end) = local_day(New_York, t("2026-03-08T15:00:00Z"), 6).unwrap();
        assert_eq!(week, t("2026-03-02T05:00:00Z"));
        assert_eq!(end, to);
    }

    #[test]
    fn caps_count_the_local_day_and_the_seven_days_ending_with_it() {
        let limits = Limits {
            per_day: Some(1),
            per_week: Some(3),
        };
        let mut caps = CapCounts::default();
        // 23:30 New York on the 1st is already the 2nd in UTC.
        caps.add(7, t("2026-03-02T04:30:00Z"));
        let on_the_2nd = t("2026-03-02T15:00:00Z");
        assert_eq!(caps.exceeded(&limits, 7, New_York, on_the_2nd), None);
        assert!(
            caps.exceeded(&limits, 7, New_York, t("2026-03-01T20:00:00Z"))
                .unwrap()
                .contains("limits.per_day is 1")
        );
        caps.add(7, on_the_2nd);
        caps.add(7, t("2026-03-03T15:00:00Z"));
        let week = caps
            .exceeded(&limits, 7, New_York, t("2026-03-04T15:00:00Z"))
            .unwrap();
        assert!(
            week.contains("3 routine messages in these 7 days"),
            "{week}"
        );
        // Eight days on, the first three have aged out.
        assert_eq!(
            caps.exceeded(&limits, 7, New_York, t("2026-03-09T15:00:00Z")),
            None
        );
        assert_eq!(caps.exceeded(&limits, 8, New_York, on_the_2nd), None);
    }
}
