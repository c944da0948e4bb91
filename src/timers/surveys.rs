//! Survey housekeeping, run every few seconds by the daemon: a reminder
//! (`remind_after:`) once for a question left unanswered, and closing runs
//! past their expiry.
//!
//! [`reminder`] decides (pure, from one waiting run, the rules and the
//! clock); [`tick`] reads the waiting runs and applies what it decides.

use chrono::{DateTime, Utc};

use crate::domain::message::{IdempotencyKey, Kind, NewMessage};
use crate::rules::RuleSet;
use crate::rules::template;
use crate::store::Backend;
use crate::store::StoreError;
use crate::store::traits::reply::WaitingRun;

/// How many waiting runs one tick looks at.
const WAITING_PAGE: usize = 5_000;

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct SurveyTick {
    pub reminded: u64,
    pub expired: u64,
}

/// Expires runs past their window, then sends due reminders, at `now`.
pub async fn tick(
    store: &impl Backend,
    rules: &RuleSet,
    now: DateTime<Utc>,
) -> Result<SurveyTick, StoreError> {
    let expired = store.expire_runs(now).await?;
    let mut reminded = 0;
    let mut after = 0;
    loop {
        let page = store.waiting_runs(after, WAITING_PAGE).await?;
        let Some(last) = page.last() else { break };
        after = last.run.id;
        let full = page.len() == WAITING_PAGE;
        for waiting in page {
            let Some(message) = reminder(&waiting, rules, now) else {
                continue;
            };
            if store.remind_run(waiting.run.id, message).await? {
                tracing::debug!(
                    member_id = waiting.member.id,
                    survey = %waiting.run.survey,
                    run = waiting.run.id,
                    "survey reminder queued"
                );
                reminded += 1;
            }
        }
        if !full {
            break;
        }
    }
    Ok(SurveyTick { reminded, expired })
}

/// The reminder due for `waiting` at `now`, if any: the survey (still in
/// the rules) has `remind_after:`, the current question (still in the
/// rules) went out at least that long ago, the run was not reminded yet
/// and has not expired. The question's template is rendered afresh for
/// the member, as a reply that expires with the run.
pub(crate) fn reminder(
    waiting: &WaitingRun,
    rules: &RuleSet,
    now: DateTime<Utc>,
) -> Option<NewMessage> {
    let run = &waiting.run;
    let survey = rules.surveys.get(&run.survey)?;
    let remind_after = survey.remind_after?;
    if waiting.reminded || run.expires_at.is_some_and(|at| now >= at) {
        return None;
    }
    if now < waiting.asked_at? + remind_after.chrono() {
        return None;
    }
    let question = survey.questions.get(usize::try_from(run.question).ok()?)?;
    let member = &waiting.member;
    let today = member
        .timezone
        .parse::<chrono_tz::Tz>()
        .map_or(now.date_naive(), |tz| now.with_timezone(&tz).date_naive());
    let group = member.groups.iter().find_map(|g| rules.groups.get(g));
    let context = template::member_context(&member.view(today), group, None, now);
    let body = match rules.renderer.render(&question.ask, &context) {
        Ok(body) => body,
        Err(e) => {
            tracing::warn!(
                member_id = member.id,
                survey = %run.survey,
                question = %question.id,
                error = %e.message,
                "survey reminder not sent: the question does not render"
            );
            return None;
        }
    };
    Some(NewMessage {
        idempotency_key: IdempotencyKey::survey_reminder(run.id, run.question),
        member_id: Some(member.id),
        to: None,
        body,
        kind: Kind::Reply,
        not_before: now,
        expires_at: run.expires_at,
        plan: None,
        suppressed: None,
    })
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;
    use std::path::PathBuf;

    use chrono::{NaiveDate, TimeZone};

    use super::*;
    use crate::config::CompileOptions;
    use crate::config::compile::{Source, compile};
    use crate::domain::Phone;
    use crate::domain::member::{ConsentState, Member, MemberStatus};
    use crate::store::traits::schedule::SurveyRun;

    const RULES: &str = r#"
groups:
  - id: tuesday
    name: Tuesday Group
    timezone: America/New_York
    sessions: { cron: "0 17 * * TUE", duration: 90m }
surveys:
  mood:
    questions:
      - id: mood
        ask: "Hi {{ member.first_name }}, how is your mood from 1 to 10?"
        expect: { number: { min: 1, max: 10, integer: true } }
      - id: sleep
        ask: "{{ group.name }}: how many hours did you sleep?"
        expect: { number: { min: 0, max: 24 } }
    remind_after: 4h
    expires_after: 24h
  plain:
    questions:
      - id: q
        ask: "How are you?"
        expect: free_text
"#;

    fn rules() -> RuleSet {
        let compiled = compile(
            &[Source {
                path: PathBuf::from("rules.yaml"),
                text: RULES.to_owned(),
            }],
            &BTreeMap::new(),
            &CompileOptions::default(),
        );
        compiled.rules.unwrap_or_else(|| {
            panic!("{:?}", compiled.diagnostics);
        })
    }

    fn at(h: u32, m: u32) -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2026, 3, 5, h, m, 0).unwrap()
    }

    fn waiting(survey: &str, question: u32) -> WaitingRun {
        WaitingRun {
            run: SurveyRun {
                id: 42,
                member_id: 7,
                survey: survey.into(),
                schedule: Some("midweek".into()),
                outbox_id: 100,
                question,
                opened_at: at(12, 0),
                expires_at: Some(at(12, 0) + chrono::TimeDelta::hours(24)),
            },
            member: Member {
                id: 7,
                external_id: "M-7".into(),
                first_name: "Ana".into(),
                last_name: None,
                phone: Phone::parse("+15555550123").expect("a phone"),
                timezone: "America/New_York".into(),
                language: "en".into(),
                joined_on: NaiveDate::from_ymd_opt(2025, 1, 1).unwrap(),
                status: MemberStatus::Active,
                groups: vec!["gone".into(), "tuesday".into()],
                attributes: serde_json::Map::new(),
                consent: ConsentState { last: None },
            },
            asked_at: Some(at(12, 1)),
            reminded: false,
        }
    }

    #[test]
    fn a_question_unanswered_for_remind_after_is_asked_again_as_a_reply_expiring_with_the_run() {
        let rules = rules();
        let w = waiting("mood", 0);
        assert!(reminder(&w, &rules, at(16, 0)).is_none(), "not yet 4h");
        let m = reminder(&w, &rules, at(16, 1)).expect("due at 4h");
        assert_eq!(m.body, "Hi Ana, how is your mood from 1 to 10?");
        assert_eq!(m.kind, Kind::Reply);
        assert_eq!(m.member_id, Some(7));
        assert_eq!(m.to, None);
        assert_eq!(m.not_before, at(16, 1));
        assert_eq!(m.expires_at, w.run.expires_at);
        assert_eq!(m.idempotency_key.as_str(), "survey-reminder:42:0");
        assert!(m.plan.is_none() && m.suppressed.is_none());
    }

    #[test]
    fn the_reminder_renders_the_current_question_with_the_members_first_group_in_the_rules() {
        let m = reminder(&waiting("mood", 1), &rules(), at(20, 0)).expect("due");
        assert_eq!(m.body, "Tuesday Group: how many hours did you sleep?");
        assert_eq!(m.idempotency_key.as_str(), "survey-reminder:42:1");
    }

    #[test]
    fn no_reminder_once_reminded_expired_unsent_or_without_remind_after() {
        let rules = rules();
        let mut w = waiting("mood", 0);
        w.reminded = true;
        assert!(
            reminder(&w, &rules, at(20, 0)).is_none(),
            "reminded already"
        );
        let w = waiting("mood", 0);
        let expiry = w.run.expires_at.expect("expires");
        assert!(reminder(&w, &rules, expiry).is_none(), "expired");
        let mut w = waiting("mood", 0);
        w.asked_at = None;
        assert!(reminder(&w, &rules, at(20, 0)).is_none(), "never sent");
        assert!(
            reminder(&waiting("plain", 0), &rules, at(20, 0)).is_none(),
            "no remind_after"
        );
    }

    #[test]
    fn a_survey_or_question_gone_from_the_rules_gets_no_reminder() {
        let rules = rules();
        assert!(reminder(&waiting("retired", 0), &rules, at(20, 0)).is_none());
        assert!(reminder(&waiting("mood", 2), &rules, at(20, 0)).is_none());
    }
}
