//! Forwarding a follow-up: a further text from a member (or an unknown
//! number) whose critical incident is unresolved goes to a person, as a
//! notice on the incident's own channels (SMS, email, webhook) that names
//! the incident and carries the text for `phi: true` contacts (as pages
//! do). It goes to whoever acknowledged the incident, on every channel
//! the policy pages them on; when nobody has, or the acknowledgement came
//! through the API or the CLI (no address), to the contacts of the step
//! paged last (the first step when none has been paged yet). An incident
//! whose escalation the timer has not started yet has its policy pinned
//! first ([`super::start`]).

use chrono::{DateTime, Utc};

use super::compose::{about, build_notice, unchanged};
use super::notice::Event;
use super::pinned::{Pinned, PinnedContact, PinnedStep};
use super::start::start;
use crate::domain::Channel;
use crate::domain::incident::IncidentState;
use crate::rules::RuleSet;
use crate::store::Backend;
use crate::store::StoreError;
use crate::store::traits::escalation::EscalationRow;

/// Forwards the newest text on incident `id` (the follow-up the store has
/// just kept on it); returns how many contacts are told. Nobody is told
/// (and it is logged) when the incident follows no policy or its step
/// reaches nobody.
pub(crate) async fn forward(
    store: &impl Backend,
    rules: &RuleSet,
    id: i64,
    now: DateTime<Utc>,
) -> Result<usize, StoreError> {
    // A guarded write can lose to the timer or an ACK; read again.
    for _ in 0..8 {
        let Some(inc) = store.incident(id).await? else {
            return Ok(0);
        };
        if inc.state == IncidentState::Resolved {
            return Ok(0);
        }
        if store.escalation(id).await?.is_none() {
            start(store, rules, &inc, now).await?;
        }
        let Some(row) = store.escalation(id).await? else {
            return Ok(0);
        };
        let pinned = Pinned::from_json(&row.pinned).unwrap_or_default();
        let targets = targets(&row, &pinned, now);
        if targets.is_empty() {
            tracing::warn!(
                incident = id,
                "a follow-up text on a critical incident reached nobody (no escalation policy, or no one on its step); it is kept on the incident"
            );
            return Ok(0);
        }
        let about = about(store, &inc, &pinned).await?;
        let event = Event::FollowUp {
            acknowledged: row.state == IncidentState::Acknowledged,
        };
        let mut w = unchanged(&row, now);
        w.seq = row.seq + 1;
        let mut told: Vec<String> = Vec::new();
        for (c, channels) in &targets {
            for ch in channels {
                if let Some(n) = build_notice(&about, &event, c, *ch, w.seq, None, now) {
                    w.notices.push(n);
                    if !told.contains(&c.id) {
                        told.push(c.id.clone());
                    }
                }
            }
        }
        w.audit.push((
            "escalation.follow_up".into(),
            serde_json::json!({ "contacts": told, "seq": w.seq }),
        ));
        if store.write_escalation(w).await? {
            tracing::info!(incident = id, told = told.len(), "follow-up text forwarded");
            return Ok(told.len());
        }
    }
    Err(StoreError::Busy(format!(
        "incident #{id} kept changing; the follow-up was kept on it but not forwarded"
    )))
}

/// Who is told, on which channels: the contact who acknowledged, else the
/// recipients of the step paged last.
fn targets<'p>(
    row: &EscalationRow,
    pinned: &'p Pinned,
    now: DateTime<Utc>,
) -> Vec<(&'p PinnedContact, Vec<Channel>)> {
    let acknowledger = (row.state == IncidentState::Acknowledged)
        .then_some(row.acknowledged_by.as_deref())
        .flatten()
        .and_then(|a| a.strip_prefix("contact:"))
        .and_then(|c| pinned.contacts.get(c));
    if let Some(c) = acknowledger {
        let channels = pinned.channels_of(c);
        if !channels.is_empty() {
            return vec![(c, channels)];
        }
    }
    let Some(step) = current_step(row, pinned) else {
        return Vec::new();
    };
    pinned
        .recipients(step, now)
        .into_iter()
        .map(|c| (c, step.via.clone()))
        .collect()
}

/// The step paged last (the first when none has been; past the end of a
/// finite sequence, its last).
fn current_step<'p>(row: &EscalationRow, pinned: &'p Pinned) -> Option<&'p PinnedStep> {
    let entry = pinned
        .entry(row.next_position.saturating_sub(1))
        .or_else(|| pinned.last_entry().map(|(e, _)| e))?;
    pinned.step(&entry)
}
