//! What falls due on one escalation, made in one guarded write: the
//! reminder when an acknowledgement was not resolved in time, the pages
//! of the steps due (catching up, in order, what fell due while the
//! daemon was down, never more than one round at once), and the end of
//! the sequence.

use chrono::{DateTime, TimeDelta, Utc};

use crate::domain::Channel;
use crate::domain::incident::IncidentState;
use crate::escalate::Entry;
use crate::escalate::compose::{about, build_notice, unchanged};
use crate::escalate::notice::{About, Event};
use crate::escalate::pinned::{Pinned, PinnedContact, PinnedStep};
use crate::store::Backend;
use crate::store::StoreError;
use crate::store::traits::escalation::{EscalationRow, EscalationWrite, Transition};

/// Makes what is due on one escalation in one guarded write; `None`
/// when another writer moved it first (it is read again next pass).
pub(super) async fn advance<S: Backend>(
    store: &S,
    row: EscalationRow,
    now: DateTime<Utc>,
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
    let pages = page_due(&row, &pinned, &about, &mut w, due, now);
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
        for channel in reminder_channels(pinned, c) {
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
/// down); ends the escalation when the sequence runs out. Returns the
/// pages made.
fn page_due(
    row: &EscalationRow,
    pinned: &Pinned,
    about: &About,
    w: &mut EscalationWrite,
    mut due: DateTime<Utc>,
    now: DateTime<Utc>,
) -> usize {
    let mut pages = 0;
    let cap = pinned.steps.len() + 1;
    while due <= now && pages < cap {
        let Some(entry) = pinned.entry(w.next_position) else {
            exhaust(row, w);
            break;
        };
        let Some(step) = pinned.step(&entry) else {
            break;
        };
        page_step(row, pinned, about, w, entry, step, now);
        pages += 1;
        w.next_position += 1;
        due += secs(step.ack_within_secs);
        w.next_due = Some(due);
    }
    pages
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
fn page_step(
    row: &EscalationRow,
    pinned: &Pinned,
    about: &About,
    w: &mut EscalationWrite,
    entry: Entry,
    step: &PinnedStep,
    now: DateTime<Utc>,
) {
    w.seq += 1;
    let event = Event::Page {
        step: Pinned::step_number(&entry),
        round: entry.round,
        backup: entry.backup,
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

/// Every channel a reminder goes to: those the policy pages this contact
/// on that it has an address for.
fn reminder_channels(pinned: &Pinned, c: &PinnedContact) -> Vec<Channel> {
    let mut out: Vec<Channel> = Vec::new();
    for s in pinned.steps.iter().chain(pinned.backup.iter()) {
        for ch in &s.via {
            if c.address(*ch).is_some() && !out.contains(ch) {
                out.push(*ch);
            }
        }
    }
    out
}

fn secs(s: u64) -> TimeDelta {
    TimeDelta::seconds(i64::try_from(s).unwrap_or(i64::MAX / 2_000))
}
