//! The sender stage: whom the text came from (a member, a contact, or a
//! number that is nobody's), what the sender verdict says of them, and
//! the member's template context. Only members go on to the survey and
//! alerts; an unknown number gets the settings' one reply.

use chrono::{DateTime, Utc};

use super::builder::Builder;
use super::verdict::SenderVerdict;
use crate::domain::Phone;
use crate::domain::member::Member;
use crate::domain::message::Kind;
use crate::rules::RuleSet;
use crate::rules::template;
use crate::store::traits::reply::ReplyFacts;

/// Whom the text came from, as the pipeline sees it.
pub(super) enum Sender<'a> {
    Member(&'a Member),
    Contact(&'a str),
    Unknown,
}

impl<'a> Sender<'a> {
    pub(super) fn of(facts: &'a ReplyFacts) -> Sender<'a> {
        match (&facts.member, &facts.contact) {
            (Some(m), _) => Sender::Member(m),
            (None, Some(c)) => Sender::Contact(c),
            (None, None) => Sender::Unknown,
        }
    }

    pub(super) fn member(&self) -> Option<&'a Member> {
        match self {
            Sender::Member(m) => Some(m),
            _ => None,
        }
    }

    pub(super) fn verdict(&self) -> SenderVerdict {
        match self {
            Sender::Member(m) => SenderVerdict {
                kind: "member",
                member_id: Some(m.id),
                external_id: Some(m.external_id.clone()),
                contact: None,
                opted_out: !m.consent.granted(),
            },
            Sender::Contact(c) => SenderVerdict {
                kind: "contact",
                member_id: None,
                external_id: None,
                contact: Some((*c).to_owned()),
                opted_out: false,
            },
            Sender::Unknown => SenderVerdict {
                kind: "unknown",
                member_id: None,
                external_id: None,
                contact: None,
                opted_out: false,
            },
        }
    }
}

/// The contact (facilitator) whose SMS number sent a text, if any.
pub(super) fn contact_for(rules: &RuleSet, from: &str) -> Option<String> {
    let phone = Phone::parse(from).ok()?;
    rules
        .contacts
        .values()
        .find(|c| c.sms.as_ref() == Some(&phone))
        .map(|c| c.id.clone())
}

/// A number that is nobody's gets the settings' reply, unless it sent
/// crisis language (the crisis reply went already) or has an unresolved
/// critical incident (it is in a crisis conversation: the follow-up stage
/// answers it, and "not monitored" would be untrue).
pub(super) fn answer_unknown(b: &mut Builder<'_>, crisis_matched: bool) {
    let settings = b.input.settings;
    let in_crisis = b.input.facts.open_critical.is_some();
    if !crisis_matched
        && !in_crisis
        && let Some(text) = &settings.unknown_sender_reply
    {
        b.reply("unknown-sender", Kind::Reply, None, Some(text), None);
    }
}

/// The member's local date (their own timezone; UTC if it is not one).
pub(super) fn local_today(member: &Member, now: DateTime<Utc>) -> chrono::NaiveDate {
    member
        .timezone
        .parse::<chrono_tz::Tz>()
        .map(|tz| now.with_timezone(&tz).date_naive())
        .unwrap_or_else(|_| now.date_naive())
}

/// A member's template context: their view and their first group in the
/// rules.
pub fn member_context(rules: &RuleSet, member: &Member, now: DateTime<Utc>) -> minijinja::Value {
    let view = member.view(local_today(member, now));
    let group = member.groups.iter().find_map(|g| rules.groups.get(g));
    template::member_context(&view, group, None, now)
}
