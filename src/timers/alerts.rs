//! Scheduled alerts (`every:`): alerts evaluated for every active member
//! at each fire of their cron pattern, in the member's timezone, for
//! patterns of non-reply ("no reply in 14 days"). Hits go to
//! [`crate::store::traits::IncidentStore::record_hits`].
//!
//! Each alert keeps a mark in the store (`alert:<id>`, beside the
//! schedules' marks): every fire at or before it has been evaluated. A
//! tick evaluates each member whose zone had a fire in (mark, now] once,
//! however many fires that was (a daemon down for a week catches up with
//! one evaluation, not seven), then moves the mark to now. An alert seen
//! for the first time, or whose pattern changed, starts from now and
//! evaluates nothing: it does not fire for the past.

use std::collections::HashMap;

use chrono::{DateTime, Utc};
use chrono_tz::Tz;

use crate::domain::incident::{AlertHit, Subject};
use crate::domain::member::Member;
use crate::pipeline::alerts::{AlertContext, evaluate_alert};
use crate::rules::{Alert, RuleSet};
use crate::schedule::fire::cron_fires;
use crate::store::Backend;
use crate::store::StoreError;
use crate::store::traits::schedule::ScheduleMark;

/// The prefix of a scheduled alert's mark among the schedule marks.
pub(crate) const MARK_PREFIX: &str = "alert:";

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ScheduledTick {
    /// (alert, member) evaluations run.
    pub evaluated: u64,
    pub fired: u64,
    pub failed: u64,
}

/// Runs the `every:` alerts whose fires fell due since the last tick
/// (marks kept in the store) up to `now`.
pub async fn tick(
    store: &impl Backend,
    rules: &RuleSet,
    now: DateTime<Utc>,
) -> Result<ScheduledTick, StoreError> {
    let mut report = ScheduledTick::default();
    let scheduled: Vec<&Alert> = rules.alerts.iter().filter(|a| a.every.is_some()).collect();
    let marks = forget_removed(store, &scheduled).await?;
    let mut members = None;
    for alert in scheduled {
        let Some(spec) = &alert.every else { continue };
        let name = format!("{MARK_PREFIX}{}", alert.id);
        let version = spec.pattern().to_owned();
        let since = match marks.get(&name) {
            Some(m) if m.version == version && m.last_fire <= now => m.last_fire,
            // New, changed, or a mark from the future (the clock went
            // back): start from now.
            _ => {
                store
                    .set_schedule_mark(ScheduleMark {
                        schedule: name,
                        version,
                        last_fire: now,
                    })
                    .await?;
                continue;
            }
        };
        if members.is_none() {
            members = Some(store.recipients().await?);
        }
        let members = members.as_deref().unwrap_or_default();
        let hits = evaluate_due(store, rules, alert, members, since, now, &mut report).await?;
        if !hits.is_empty() {
            store.record_hits(hits, now).await?;
        }
        // Only once its hits are recorded: a crash before this evaluates
        // the same fires again, and the incidents fold a repeat into the
        // open incident.
        store
            .set_schedule_mark(ScheduleMark {
                schedule: name,
                version,
                last_fire: now,
            })
            .await?;
    }
    Ok(report)
}

/// The scheduled alerts' marks; a removed alert's mark goes, so one added
/// back later starts from then rather than catching up.
async fn forget_removed(
    store: &impl Backend,
    scheduled: &[&Alert],
) -> Result<HashMap<String, ScheduleMark>, StoreError> {
    let marks: HashMap<String, ScheduleMark> = store
        .schedule_marks()
        .await?
        .into_iter()
        .filter(|m| m.schedule.starts_with(MARK_PREFIX))
        .map(|m| (m.schedule.clone(), m))
        .collect();
    for name in marks.keys() {
        let id = &name[MARK_PREFIX.len()..];
        if !scheduled.iter().any(|a| a.id == id) {
            store.remove_schedule_mark(name).await?;
        }
    }
    Ok(marks)
}

/// Evaluates `alert` for each member whose timezone saw one of its fires
/// in `(since, now]`; the hits, counted into `report`.
async fn evaluate_due(
    store: &impl Backend,
    rules: &RuleSet,
    alert: &Alert,
    members: &[Member],
    since: DateTime<Utc>,
    now: DateTime<Utc>,
    report: &mut ScheduledTick,
) -> Result<Vec<AlertHit>, StoreError> {
    let mut hits = Vec::new();
    let mut zones: HashMap<String, bool> = HashMap::new();
    for member in members {
        let due = *zones
            .entry(member.timezone.clone())
            .or_insert_with(|| fell_due(alert, member, since, now));
        if !due {
            continue;
        }
        let today = match member.timezone.parse::<Tz>() {
            Ok(tz) => now.with_timezone(&tz).date_naive(),
            Err(_) => now.date_naive(),
        };
        let view = member.view(today);
        let (history, engagement) = store.member_history(member.id, now).await?;
        let cx = AlertContext {
            member: Some(&view),
            history: &history,
            engagement: Some(&engagement),
            ..AlertContext::default()
        };
        let considered = evaluate_alert(rules, alert, &cx, Some(member.id));
        report.evaluated += 1;
        if considered.error.is_some() {
            report.failed += 1;
        }
        if considered.fired {
            report.fired += 1;
            hits.push(AlertHit {
                alert: alert.id.clone(),
                severity: alert.severity,
                subject: Subject::Member(member.id),
                inbound_id: None,
                evidence: considered
                    .evidence
                    .unwrap_or_else(|| format!("scheduled alert `{}`", alert.id)),
                realert: alert.realert,
                escalate: alert.escalate.clone(),
                reply_key: None,
                quote: None,
            });
        }
    }
    Ok(hits)
}

/// Whether one of `alert`'s fires fell in `(since, now]` where `member`
/// lives; a member whose timezone is not one is skipped (warned).
fn fell_due(alert: &Alert, member: &Member, since: DateTime<Utc>, now: DateTime<Utc>) -> bool {
    let Some(spec) = &alert.every else {
        return false;
    };
    match member.timezone.parse::<Tz>() {
        Ok(tz) => !cron_fires(spec, tz, since, now).is_empty(),
        Err(_) => {
            tracing::warn!(
                member_id = member.id,
                alert = %alert.id,
                "a member's timezone is not an IANA timezone; scheduled alerts skip them"
            );
            false
        }
    }
}
