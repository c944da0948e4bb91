//! What a store writes besides the row it was asked to write: the rules of
//! record every backend applies inside the transaction that writes the row,
//! so that a second backend persists the same facts without restating the
//! rules.
//!
//! - [`check_new`]: what makes a message queueable (refused otherwise).
//! - [`crisis_not_texted`]: a crisis reply that ends without reaching the
//!   member is noted on the incident it answered, with the reason masked
//!   ([`mask_numbers`]).
//! - [`provider_opt_out`]: the provider saying the number opted out
//!   revokes the member's consent as if they had texted STOP.

use crate::domain::member::{ConsentAction, ConsentSource, PROVIDER_OPT_OUT};
use crate::domain::message::{Kind, NewMessage, OutState};

/// Why a message cannot be queued; the text names its idempotency key.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub(crate) struct NotQueueable(String);

/// A message goes to a member or to a number, and only a member can be
/// asked a survey.
pub(crate) fn check_new(m: &NewMessage) -> Result<(), NotQueueable> {
    if m.member_id.is_none() && m.to.is_none() {
        return Err(NotQueueable(format!(
            "message `{}` needs a member or a number",
            m.idempotency_key
        )));
    }
    if m.plan.as_ref().is_some_and(|p| p.survey.is_some()) && m.member_id.is_none() {
        return Err(NotQueueable(format!(
            "message `{}` starts a survey but goes to no member",
            m.idempotency_key
        )));
    }
    Ok(())
}

/// A message in this state will not reach its recipient.
pub(crate) fn ends_unsent(state: OutState) -> bool {
    matches!(
        state,
        OutState::Failed | OutState::Undelivered | OutState::Expired | OutState::Suppressed
    )
}

/// The note for the incident a crisis reply answered when that reply ends
/// in `to` without reaching the member (failed, undelivered, expired,
/// suppressed); `None` for any other kind or state. The provider's reason
/// goes along with anything like a number masked.
pub(crate) fn crisis_not_texted(
    kind: Kind,
    outbox_id: i64,
    to: OutState,
    reason: Option<&str>,
) -> Option<String> {
    if kind != Kind::Crisis || !ends_unsent(to) {
        return None;
    }
    let what = match to {
        OutState::Undelivered => "was not delivered",
        OutState::Expired => "expired before it was sent",
        OutState::Suppressed => "was not sent (suppressed)",
        _ => "failed",
    };
    let mut why = format!("the crisis reply (outbox #{outbox_id}) {what}");
    if let Some(r) = reason.filter(|r| !r.trim().is_empty()) {
        why.push_str(": ");
        why.push_str(&mask_numbers(r));
    }
    Some(why)
}

/// A consent event a store appends to the member's ledger.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct ConsentChange {
    pub action: ConsentAction,
    pub(crate) source: ConsentSource,
    pub text: String,
    pub(crate) actor: &'static str,
}

/// The provider reported the number opted out (a refused send, or a
/// delivery report): the member's consent is revoked, recorded as their
/// own keyword would be, so only their START grants it again.
pub(crate) fn provider_opt_out(reason: &str) -> ConsentChange {
    ConsentChange {
        action: ConsentAction::Revoked,
        source: ConsentSource::Keyword,
        text: format!("{PROVIDER_OPT_OUT}: {reason}"),
        actor: "hearth",
    }
}

/// Masks anything that looks like a phone number (seven or more digits
/// written together, with `+`, spaces, dashes, dots or parentheses between
/// them) in a provider's failure reason, so a reason can go on an incident
/// that people read. Error codes (five digits) stay.
pub(crate) fn mask_numbers(reason: &str) -> String {
    let sep = |c: char| matches!(c, ' ' | '-' | '.' | '(' | ')');
    let chars: Vec<char> = reason.chars().collect();
    let mut out = String::with_capacity(reason.len());
    let mut i = 0;
    while i < chars.len() {
        let starts = chars[i] == '+' || chars[i] == '(' || chars[i].is_ascii_digit();
        if !starts {
            out.push(chars[i]);
            i += 1;
            continue;
        }
        let mut j = i + 1;
        while j < chars.len() && (chars[j].is_ascii_digit() || sep(chars[j])) {
            j += 1;
        }
        // Separators after the last digit are not part of the number.
        let mut end = j;
        while end > i && !chars[end - 1].is_ascii_digit() {
            end -= 1;
        }
        let digits = chars[i..end].iter().filter(|c| c.is_ascii_digit()).count();
        if digits >= 7 {
            out.push_str("[number]");
            i = end;
        } else {
            out.push(chars[i]);
            i += 1;
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::member::{ConsentAction, ConsentSource};

    #[test]
    fn numbers_in_a_failure_reason_are_masked_and_error_codes_kept() {
        assert_eq!(
            mask_numbers("HTTP 400: twilio error 21610: unsubscribed"),
            "HTTP 400: twilio error 21610: unsubscribed"
        );
        for reason in [
            "The 'To' number +1 555-555-0123 is not valid",
            "The 'To' number +1 (555) 555.0123 is not valid",
            "to 15555550123: unreachable",
        ] {
            let masked = mask_numbers(reason);
            assert!(!masked.contains("555"), "{masked}");
            assert!(
                masked.contains("[number] is") || masked.contains("[number]:"),
                "{masked}"
            );
        }
        assert_eq!(
            mask_numbers("see https://www.twilio.com/docs/errors/21610)"),
            "see https://www.twilio.com/docs/errors/21610)"
        );
    }

    fn message(member: Option<i64>, to: Option<&str>, survey: bool) -> NewMessage {
        use crate::domain::message::{IdempotencyKey, Plan, SurveyStart};
        let now = chrono::Utc::now();
        NewMessage {
            idempotency_key: IdempotencyKey::reply(1, "k"),
            member_id: member,
            to: to.map(|t| crate::domain::Phone::parse(t).unwrap()),
            body: "hello".into(),
            kind: Kind::Reply,
            not_before: now,
            expires_at: None,
            plan: survey.then(|| Plan {
                schedule: "s".into(),
                fire: now,
                generation: 1,
                version: "v".into(),
                survey: Some(SurveyStart {
                    survey: "mood".into(),
                    expires_at: now,
                }),
            }),
            suppressed: None,
        }
    }

    #[test]
    fn a_message_needs_a_member_or_a_number_and_a_survey_needs_a_member() {
        assert!(check_new(&message(Some(1), None, true)).is_ok());
        assert!(check_new(&message(None, Some("+15555550123"), false)).is_ok());
        let e = check_new(&message(None, None, false)).unwrap_err();
        assert_eq!(
            e.to_string(),
            "message `reply:1:k` needs a member or a number"
        );
        let e = check_new(&message(None, Some("+15555550123"), true)).unwrap_err();
        assert_eq!(
            e.to_string(),
            "message `reply:1:k` starts a survey but goes to no member"
        );
    }

    #[test]
    fn only_a_crisis_reply_that_ends_unsent_is_noted_with_its_reason_masked() {
        assert_eq!(
            crisis_not_texted(Kind::Reply, 7, OutState::Failed, None),
            None
        );
        assert_eq!(
            crisis_not_texted(Kind::Crisis, 7, OutState::Delivered, None),
            None
        );
        assert_eq!(
            crisis_not_texted(Kind::Crisis, 7, OutState::Expired, None).as_deref(),
            Some("the crisis reply (outbox #7) expired before it was sent")
        );
        assert_eq!(
            crisis_not_texted(
                Kind::Crisis,
                7,
                OutState::Failed,
                Some("to +1 555 555 0123: refused")
            )
            .as_deref(),
            Some("the crisis reply (outbox #7) failed: to [number]: refused")
        );
        assert_eq!(
            crisis_not_texted(Kind::Crisis, 7, OutState::Undelivered, Some("  ")).as_deref(),
            Some("the crisis reply (outbox #7) was not delivered")
        );
    }

    #[test]
    fn a_provider_opt_out_revokes_consent_as_a_stop_would() {
        let c = provider_opt_out("21610");
        assert_eq!(c.action, ConsentAction::Revoked);
        assert_eq!(c.source, ConsentSource::Keyword);
        assert_eq!(c.text, "provider reported the number opted out: 21610");
        assert_eq!(c.actor, "hearth");
    }
}
