//! The last gate: what is checked immediately before a provider is called.
//!
//! Consent and status are read in the same transaction that claimed the
//! message, so a STOP that arrived after the message was queued still stops
//! it. Routine messages wait out the recipient's quiet hours in their own
//! timezone; a time-bound message whose expiry would pass first is expired
//! with a record, never delivered stale.
//!
//! A message addressed only by number is checked against the member who
//! has that number (the worker resolves it before the gate); a routine one
//! with no member behind the number has no consent to check and is
//! suppressed. A member whose timezone cannot be read is held (fail
//! closed), never sent on UTC's clock.

use chrono::{DateTime, Duration, Utc};
use chrono_tz::Tz;

use crate::domain::SendWindow;
use crate::store::traits::outbox::ClaimedMessage;

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verdict {
    Send,
    /// Never to be sent (no consent, inactive, no number).
    Suppress(String),
    /// Not now; try again at `until`.
    Defer {
        until: DateTime<Utc>,
        reason: String,
    },
    /// Its moment has passed.
    Expire(String),
    /// The member's data cannot be trusted to send now (an unreadable
    /// timezone): held until `until`, counted and logged by member id.
    Hold {
        until: DateTime<Utc>,
        reason: String,
    },
}

/// How long a message held for bad member data waits before it is looked
/// at again.
pub(crate) const HOLD: Duration = Duration::hours(1);

/// Decides a claimed message's fate at `now`. `window` is the local send
/// window (default 08:00–21:00; an end of 00:00 means midnight, so
/// 00:00–00:00 is the whole day).
pub fn decide(c: &ClaimedMessage, now: DateTime<Utc>, window: SendWindow) -> Verdict {
    let expires = c.message.expires_at;
    if let Some(e) = expires
        && e <= now
    {
        return Verdict::Expire("expired before it could be sent".into());
    }
    if c.to.is_none() {
        return Verdict::Suppress("no phone number to send to".into());
    }
    let kind = c.message.kind;
    if let Some(m) = &c.member {
        // A crisis or compliance reply answers the member's own text, so
        // it goes even to a member staff have marked inactive.
        if !m.active && !kind.exempt_from_consent() {
            return Verdict::Suppress("member is inactive".into());
        }
        if !m.consent && !kind.exempt_from_consent() {
            return Verdict::Suppress("no current consent (opted out or never consented)".into());
        }
    } else if c.message.member_id.is_some() {
        return Verdict::Suppress("member no longer exists".into());
    } else if !kind.exempt_from_consent() {
        return Verdict::Suppress(format!(
            "no member has this number, so there is no consent to check for a {} message",
            kind.as_str()
        ));
    }
    if kind.exempt_from_quiet_hours() {
        return Verdict::Send;
    }
    let tz: Tz = match &c.member {
        Some(m) => match m.timezone.parse() {
            Ok(tz) => tz,
            Err(_) => {
                return Verdict::Hold {
                    until: now + HOLD,
                    reason: format!(
                        "member timezone `{}` is not a timezone, so quiet hours cannot be checked; held until it is fixed",
                        m.timezone
                    ),
                };
            }
        },
        // Only exempt kinds reach here without a member.
        None => chrono_tz::UTC,
    };
    match window.next_opening(now, tz) {
        None => Verdict::Send,
        Some(until) => match expires {
            Some(e) if e <= until => Verdict::Expire(format!(
                "would only go at {} in the recipient's quiet hours, after it expires",
                until.with_timezone(&tz).format("%H:%M")
            )),
            _ => Verdict::Defer {
                until,
                reason: format!(
                    "quiet hours for the recipient; waits until {}",
                    until.with_timezone(&tz).format("%Y-%m-%d %H:%M %Z")
                ),
            },
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::message::{IdempotencyKey, Kind, OutState, OutboxMessage};
    use crate::store::traits::outbox::{InstanceId, Lease, MemberGate};
    use chrono::NaiveTime;

    fn claimed(kind: Kind, consent: bool, active: bool, expires: Option<&str>) -> ClaimedMessage {
        let t0 = at("2026-01-01T00:00:00Z");
        ClaimedMessage {
            lease: Lease {
                outbox_id: 1,
                holder: InstanceId::new("test").unwrap(),
                token: 1,
                until: t0,
            },
            message: OutboxMessage {
                id: 1,
                idempotency_key: IdempotencyKey::from_stored("k".into()),
                member_id: Some(7),
                member_external_id: Some("M-7".into()),
                kind,
                state: OutState::Sending,
                reason: None,
                attempts: 1,
                segments: 1,
                not_before: t0,
                next_attempt_at: t0,
                expires_at: expires.map(at),
                provider: None,
                provider_message_id: None,
                possibly_sent: false,
                claimed_by: Some("test".into()),
                lease_until: Some(t0),
                created_at: t0,
                updated_at: t0,
                plan: None,
                body: "hi".into(),
            },
            to: Some("+15555550100".parse().unwrap()),
            member: Some(MemberGate {
                id: 7,
                active,
                consent,
                timezone: "America/New_York".into(),
            }),
        }
    }

    fn window() -> SendWindow {
        SendWindow::new(
            NaiveTime::from_hms_opt(8, 0, 0).unwrap(),
            NaiveTime::from_hms_opt(21, 0, 0).unwrap(),
        )
    }

    fn at(s: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(s).unwrap().with_timezone(&Utc)
    }

    #[test]
    fn a_routine_message_waits_out_the_recipients_night() {
        // 03:00 in New York (08:00 UTC): waits until 08:00 New York (13:00 UTC).
        let v = decide(
            &claimed(Kind::Scheduled, true, true, None),
            at("2026-01-06T08:00:00Z"),
            window(),
        );
        match v {
            Verdict::Defer { until, .. } => assert_eq!(until, at("2026-01-06T13:00:00Z")),
            other => panic!("{other:?}"),
        }
        // 21:30 New York: waits until 08:00 the next day.
        let v = decide(
            &claimed(Kind::Scheduled, true, true, None),
            at("2026-01-07T02:30:00Z"),
            window(),
        );
        assert!(matches!(v, Verdict::Defer { until, .. } if until == at("2026-01-07T13:00:00Z")));
        // Noon New York goes now.
        assert_eq!(
            decide(
                &claimed(Kind::Scheduled, true, true, None),
                at("2026-01-06T17:00:00Z"),
                window()
            ),
            Verdict::Send
        );
    }

    #[test]
    fn crisis_and_compliance_go_at_3am_and_without_consent() {
        for kind in [Kind::Crisis, Kind::Compliance] {
            assert_eq!(
                decide(
                    &claimed(kind, false, true, None),
                    at("2026-01-06T08:00:00Z"),
                    window()
                ),
                Verdict::Send
            );
        }
    }

    #[test]
    fn a_crisis_or_compliance_reply_reaches_an_inactive_member_and_nothing_else_does() {
        for (kind, sent) in [
            (Kind::Crisis, true),
            (Kind::Compliance, true),
            (Kind::Reply, false),
            (Kind::Staff, false),
        ] {
            let v = decide(
                &claimed(kind, true, false, None),
                at("2026-01-06T17:00:00Z"),
                window(),
            );
            assert_eq!(v == Verdict::Send, sent, "{kind:?}: {v:?}");
        }
    }

    #[test]
    fn no_consent_or_inactive_is_suppressed_at_the_last_gate() {
        assert!(matches!(
            decide(
                &claimed(Kind::Scheduled, false, true, None),
                at("2026-01-06T17:00:00Z"),
                window()
            ),
            Verdict::Suppress(_)
        ));
        assert!(matches!(
            decide(
                &claimed(Kind::Reply, true, false, None),
                at("2026-01-06T17:00:00Z"),
                window()
            ),
            Verdict::Suppress(_)
        ));
    }

    #[test]
    fn a_whole_day_window_never_defers() {
        let whole_day = SendWindow::new(NaiveTime::MIN, NaiveTime::MIN);
        for at_utc in [
            "2026-01-06T08:00:00Z",
            "2026-01-06T04:59:59Z",
            "2026-01-06T05:00:00Z",
        ] {
            assert_eq!(
                decide(
                    &claimed(Kind::Scheduled, true, true, None),
                    at(at_utc),
                    whole_day
                ),
                Verdict::Send,
                "{at_utc}"
            );
        }
        // 20:00 to midnight: 23:30 New York goes, 03:00 waits until 20:00.
        let evening = SendWindow::new(NaiveTime::from_hms_opt(20, 0, 0).unwrap(), NaiveTime::MIN);
        assert_eq!(
            decide(
                &claimed(Kind::Scheduled, true, true, None),
                at("2026-01-07T04:30:00Z"),
                evening
            ),
            Verdict::Send
        );
        assert!(matches!(
            decide(&claimed(Kind::Scheduled, true, true, None), at("2026-01-06T08:00:00Z"), evening),
            Verdict::Defer { until, .. } if until == at("2026-01-07T01:00:00Z")
        ));
    }

    #[test]
    fn an_unreadable_member_timezone_holds_the_message_instead_of_using_utc() {
        let mut c = claimed(Kind::Scheduled, true, true, None);
        c.member.as_mut().unwrap().timezone = "Mars/Olympus".into();
        let now = at("2026-01-06T17:00:00Z");
        match decide(&c, now, window()) {
            Verdict::Hold { until, reason } => {
                assert_eq!(until, now + HOLD);
                assert!(reason.contains("Mars/Olympus"), "{reason}");
            }
            other => panic!("{other:?}"),
        }
        // Crisis does not wait on quiet hours, so it does not need the zone.
        let mut c = claimed(Kind::Crisis, true, true, None);
        c.member.as_mut().unwrap().timezone = "Mars/Olympus".into();
        assert_eq!(decide(&c, now, window()), Verdict::Send);
    }

    #[test]
    fn a_routine_message_to_a_number_no_member_has_is_suppressed_but_crisis_goes() {
        let mut c = claimed(Kind::Reply, true, true, None);
        c.message.member_id = None;
        c.member = None;
        let now = at("2026-01-06T17:00:00Z");
        match decide(&c, now, window()) {
            Verdict::Suppress(reason) => {
                assert!(reason.contains("no member has this number"), "{reason}")
            }
            other => panic!("{other:?}"),
        }
        c.message.kind = Kind::Crisis;
        assert_eq!(decide(&c, now, window()), Verdict::Send);
    }

    #[test]
    fn a_stale_reminder_is_expired_not_sent() {
        let c = claimed(Kind::Scheduled, true, true, Some("2026-01-06T16:00:00Z"));
        assert!(matches!(
            decide(&c, at("2026-01-06T17:00:00Z"), window()),
            Verdict::Expire(_)
        ));
        // Deferring past its expiry expires it at once.
        let c = claimed(Kind::Scheduled, true, true, Some("2026-01-06T10:00:00Z"));
        assert!(matches!(
            decide(&c, at("2026-01-06T08:00:00Z"), window()),
            Verdict::Expire(_)
        ));
    }
}
