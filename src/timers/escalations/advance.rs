//! What falls due on one escalation, made in one guarded write: the
//! reminder when an acknowledgement was not resolved in time, the pages
//! of the steps due (catching up, in order, what fell due while the
//! daemon was down, never more than one round at once), and the end of
//! the sequence: a critical incident nobody has acknowledged then repeats
//! its last step every `notify.critical_repeat`; any other stops.

use chrono::{DateTime, TimeDelta, Utc};

use crate::domain::incident::{IncidentState, Severity};
use crate::escalate::Entry;
use crate::escalate::compose::{about, build_notice, unchanged};
use crate::escalate::notice::{About, Event};
use crate::escalate::pinned::{Pinned, PinnedStep};
use crate::store::Backend;
use crate::store::StoreError;
use crate::store::traits::escalation::{EscalationRow, EscalationWrite, Transition};

/// Makes what is due on one escalation in one guarded write; `None`
/// when another writer moved it first (it is read again next pass).
pub(super) async fn advance<S: Backend>(
    store: &S,
    row: EscalationRow,
    now: DateTime<Utc>,
    critical_repeat: std::time::Duration,
) -> Result<Option<usize>, StoreError> {
    let pinned = match Pinned::from_json(&row.pinned) {
        Ok(p) => p,
        Err(e) => {
            tracing::error!(incident = row.incident_id, error = %e, "the pinned escalation policy cannot be read; the escalation stops");
            let w = EscalationWrite {
                next_due: None,
                lapse_due: None,
                exhausted: true,
                audit: vec![("escalation.unreadable".into(), serde_json::json!({}))],
                ..unchanged(&row, now)
            };
            return Ok(store.write_escalation(w).await?.then_some(0));
        }
    };
    let Some(inc) = store.incident(row.incident_id).await? else {
        return Ok(None);
    };
    let about = about(store, &inc, &pinned).await?;
    let mut w = unchanged(&row, now);
    if acknowledgement_lapsed(&row, now) {
        remind(&row, &pinned, &about, &mut w, now);
        return Ok(store.write_escalation(w).await?.then_some(0));
    }
    let Some(due) = row.next_due.filter(|d| *d <= now) else {
        return Ok(None);
    };
    if row.state == IncidentState::Acknowledged {
        w.transition = Some(Transition {
            to: IncidentState::Open,
            actor: "system".into(),
            how: "timer".into(),
            action: "incident.reopened".into(),
        });
    }
    let repeat = TimeDelta::from_std(critical_repeat).unwrap_or(TimeDelta::minutes(15));
    let pages = page_due(&row, &pinned, &about, &mut w, (due, now), repeat);
    go_on_from_now_if_behind(&pinned, &mut w, now);
    Ok(store.write_escalation(w).await?.then_some(pages))
}

/// An acknowledgement not resolved within `resolve_within`, by `now`.
fn acknowledgement_lapsed(row: &EscalationRow, now: DateTime<Utc>) -> bool {
    row.state == IncidentState::Acknowledged && row.lapse_due.is_some_and(|lapse| lapse <= now)
}

/// An acknowledgement not resolved in time: remind whoever acknowledged,
/// and escalate again after the step's wait.
fn remind(
    row: &EscalationRow,
    pinned: &Pinned,
    about: &About,
    w: &mut EscalationWrite,
    now: DateTime<Utc>,
) {
    w.lapse_due = None;
    w.seq += 1;
    let since = row.acknowledged_at.unwrap_or(now);
    if let Some(c) = row
        .acknowledged_by
        .as_deref()
        .and_then(|a| a.strip_prefix("contact:"))
        .and_then(|c| pinned.contacts.get(c))
    {
        for channel in pinned.channels_of(c) {
            if let Some(n) = build_notice(
                about,
                &Event::Reminder { since },
                c,
                channel,
                w.seq,
                None,
                now,
            ) {
                w.notices.push(n);
            }
        }
    }
    let wait = pinned
        .entry(row.next_position.saturating_sub(1))
        .and_then(|e| pinned.step(&e).map(|s| s.ack_within_secs))
        .or_else(|| pinned.steps.first().map(|s| s.ack_within_secs))
        .unwrap_or(0);
    w.next_due = Some(now + secs(wait));
    w.audit.push((
        "escalation.lapsed".into(),
        serde_json::json!({ "acknowledged_by": row.acknowledged_by, "escalates_at": w.next_due }),
    ));
}

/// Pages every step due from `due` on, in order, but never more than one
/// full round at once (catching up what fell due while the daemon was
/// down). When the sequence runs out, a critical incident repeats its
/// last step every `repeat` (one repeat at once, however long the daemon
/// was down); any other ends its escalation. Returns the pages made.
fn page_due(
    row: &EscalationRow,
    pinned: &Pinned,
    about: &About,
    w: &mut EscalationWrite,
    (mut due, now): (DateTime<Utc>, DateTime<Utc>),
    repeat: TimeDelta,
) -> usize {
    let mut pages = 0;
    let cap = pinned.steps.len() + 1;
    while due <= now && pages < cap {
        let Some(entry) = pinned.entry(w.next_position) else {
            if row.severity == Severity::Critical && repeat_last(row, pinned, about, w, now) {
                pages += 1;
                w.next_position += 1;
                w.next_due = Some(now + repeat);
            } else {
                exhaust(row, w);
            }
            break;
        };
        let Some(step) = pinned.step(&entry) else {
            break;
        };
        page_step(row, pinned, about, w, entry, step, (now, None));
        pages += 1;
        w.next_position += 1;
        due += secs(step.ack_within_secs);
        w.next_due = Some(due);
    }
    pages
}

/// A critical incident's policy ran out with nobody acknowledging: its
/// final step (the backup step, if it has one) is paged again, saying
/// how long the incident has gone unacknowledged. False when the policy
/// has no step to repeat.
fn repeat_last(
    row: &EscalationRow,
    pinned: &Pinned,
    about: &About,
    w: &mut EscalationWrite,
    now: DateTime<Utc>,
) -> bool {
    let Some((last, len)) = pinned.last_entry() else {
        return false;
    };
    let Some(step) = pinned.step(&last) else {
        return false;
    };
    let extra = w.next_position.saturating_sub(len);
    let entry = Entry {
        round: last
            .round
            .saturating_add(1)
            .saturating_add(u32::try_from(extra).unwrap_or(u32::MAX)),
        ..last
    };
    let minutes = (now - row.opened_at).num_minutes().max(0);
    page_step(row, pinned, about, w, entry, step, (now, Some(minutes)));
    w.audit.push((
        "escalation.repeated".into(),
        serde_json::json!({ "step": last.step + 1, "backup": last.backup, "unacknowledged_minutes": minutes }),
    ));
    tracing::warn!(
        incident = row.incident_id,
        unacknowledged_minutes = minutes,
        "a critical incident's escalation ran out with nobody acknowledging; paging its last step again"
    );
    true
}

/// The sequence ran out with nobody acknowledging: no more timer; the
/// incident stays open.
fn exhaust(row: &EscalationRow, w: &mut EscalationWrite) {
    w.exhausted = true;
    w.next_due = None;
    w.audit.push((
        "escalation.exhausted".into(),
        serde_json::json!({ "position": w.next_position }),
    ));
    tracing::warn!(
        incident = row.incident_id,
        "escalation ran out of steps with nobody acknowledging; the incident stays open"
    );
}

/// One step's page: a notice to each recipient on call now on each of the
/// step's channels they have an address for, and its audit record.
/// `repeat`: a critical incident's repeat page, with the minutes it has
/// gone unacknowledged.
fn page_step(
    row: &EscalationRow,
    pinned: &Pinned,
    about: &About,
    w: &mut EscalationWrite,
    entry: Entry,
    step: &PinnedStep,
    (now, repeat): (DateTime<Utc>, Option<i64>),
) {
    w.seq += 1;
    let event = Event::Page {
        step: Pinned::step_number(&entry),
        round: entry.round,
        backup: entry.backup,
        repeat,
    };
    let recipients = pinned.recipients(step, now);
    let mut reached: Vec<String> = Vec::new();
    for c in &recipients {
        for channel in &step.via {
            if let Some(n) = build_notice(about, &event, c, *channel, w.seq, Some(entry), now) {
                w.notices.push(n);
                if !reached.contains(&c.id) {
                    reached.push(c.id.clone());
                }
            }
        }
    }
    if reached.is_empty() {
        tracing::warn!(
            incident = row.incident_id,
            step = entry.step + 1,
            "an escalation step reached nobody (no one on call, or no facilitator); going on to the next step"
        );
    }
    w.audit.push((
        "escalation.paged".into(),
        serde_json::json!({ "step": entry.step + 1, "round": entry.round, "backup": entry.backup, "contacts": reached, "seq": w.seq }),
    ));
}

/// Still behind after a full round: the next step falls due one wait
/// from now (at least a second), not in the past.
fn go_on_from_now_if_behind(pinned: &Pinned, w: &mut EscalationWrite, now: DateTime<Utc>) {
    if let Some(d) = w.next_due
        && d <= now
        && !w.exhausted
    {
        let wait = pinned
            .entry(w.next_position.saturating_sub(1))
            .and_then(|e| pinned.step(&e).map(|s| s.ack_within_secs))
            .unwrap_or(0);
        w.next_due = Some(now + secs(wait.max(1)));
    }
}

fn secs(s: u64) -> TimeDelta {
    TimeDelta::seconds(i64::try_from(s).unwrap_or(i64::MAX / 2_000))
}
