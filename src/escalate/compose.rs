//! What escalation notices carry when they are made: what they say about
//! the incident ([`about`], read from the store at that moment), one
//! [`NewNotice`] per contact and channel ([`build_notice`]: address,
//! wording, and for SMS the outbox message), and the guarded write they
//! travel in ([`unchanged`]). Shared by the actions on an incident
//! ([`super::act`]) and the escalation timer
//! ([`crate::timers::escalations`]); the wording itself is in
//! [`super::notice`].

use chrono::{DateTime, Utc};

use super::Entry;
use super::notice::{self, About, Event};
use super::pinned::{Pinned, PinnedContact};
use crate::domain::Channel;
use crate::domain::Phone;
use crate::domain::incident::{Incident, Subject};
use crate::domain::message::{IdempotencyKey, Kind, NewMessage};
use crate::store::Backend;
use crate::store::StoreError;
use crate::store::traits::escalation::{EscalationRow, EscalationWrite, NewNotice, Purpose};

/// What notices say about an incident: read at the moment they are made.
pub(crate) async fn about(
    store: &impl Backend,
    inc: &Incident,
    pinned: &Pinned,
) -> Result<About, StoreError> {
    let who = match (&inc.subject, &inc.member_external_id) {
        (Subject::Member(_), Some(ext)) => match store.member(ext).await? {
            Some(m) => notice::member_display(&m.first_name, m.last_name.as_deref()),
            None => "a member".into(),
        },
        (Subject::Member(_), None) => "a member".into(),
        (Subject::Number(_), _) => "a sender not on the roster".into(),
    };
    let mut words = None;
    let newest = inc.evidence.iter().rev().find(|e| e.inbound_id.is_some());
    if let Some(inbound) = newest.and_then(|e| e.inbound_id)
        && let Some(row) = store.inbound(inbound).await?
    {
        words = Some(row.sms.body);
    }
    Ok(About {
        incident: inc.id,
        alert: inc.alert.clone(),
        severity: inc.severity,
        who,
        groups: pinned.groups.clone(),
        words,
        quote: newest.and_then(|e| e.quote.clone()),
    })
}

/// One notice for one contact on one channel; `None` when the contact has
/// no address there.
pub(crate) fn build_notice(
    about: &About,
    event: &Event,
    c: &PinnedContact,
    channel: Channel,
    seq: u64,
    page: Option<Entry>,
    now: DateTime<Utc>,
) -> Option<NewNotice> {
    let address = c.address(channel)?.to_owned();
    let purpose = match event {
        Event::Page { .. } => Purpose::Page,
        Event::Acknowledged { .. } | Event::Resolved { .. } => Purpose::Acknowledged,
        Event::Reminder { .. } => Purpose::Reminder,
        Event::FollowUp { .. } => Purpose::FollowUp,
    };
    let (subject, body, message) = match channel {
        Channel::Sms => {
            let body = notice::sms(about, event, c.phi);
            let to = Phone::parse(&address).ok()?;
            let message = NewMessage {
                idempotency_key: IdempotencyKey::escalation(
                    about.incident,
                    seq,
                    purpose.as_str(),
                    &c.id,
                ),
                member_id: None,
                to: Some(to),
                body: body.clone(),
                kind: Kind::Escalation,
                not_before: now,
                expires_at: None,
                plan: None,
                suppressed: None,
            };
            (None, body, Some(message))
        }
        Channel::Email => {
            let (s, b) = notice::email(about, event, c.phi, c.sms.is_some());
            (Some(s), b, None)
        }
        Channel::Webhook => (
            None,
            notice::webhook(about, event, c.phi, now).to_string(),
            None,
        ),
    };
    Some(NewNotice {
        purpose,
        seq,
        step: page.map(|e| e.step),
        round: page.map(|e| e.round),
        contact: c.id.clone(),
        channel,
        address,
        subject,
        body,
        message,
    })
}

/// A write that leaves `row` as it is (guarded by its revision), to
/// change from.
pub(crate) fn unchanged(row: &EscalationRow, now: DateTime<Utc>) -> EscalationWrite {
    EscalationWrite {
        incident_id: row.incident_id,
        expect_rev: row.rev,
        next_position: row.next_position,
        next_due: row.next_due,
        seq: row.seq,
        lapse_due: row.lapse_due,
        exhausted: row.exhausted,
        transition: None,
        notices: Vec::new(),
        audit: Vec::new(),
        now,
    }
}
