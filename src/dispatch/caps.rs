//! The frequency caps (`limits:`), checked once more at the last gate: a
//! routine message to a member already sent their day's or week's share
//! is suppressed with the reason.

use chrono::Utc;

use super::gate::Verdict;
use super::worker::Inner;
use crate::domain::message::Kind;
use crate::store::Backend;
use crate::store::traits::outbox::ClaimedMessage;

impl<S: Backend> Inner<S> {
    /// The frequency caps, checked again at the last gate: a routine
    /// (scheduled) message to a member already sent their day's or
    /// week's share is suppressed with the reason. Other kinds pass. A
    /// count that cannot be read holds nothing back (the fan-out applied
    /// the caps already) and is logged.
    pub(super) async fn frequency_cap(&self, claimed: &ClaimedMessage) -> Verdict {
        let Some(limits) = self.limits.as_ref().and_then(|l| l()) else {
            return Verdict::Send;
        };
        let Some(member) = claimed.member.as_ref() else {
            return Verdict::Send;
        };
        // The gate has already held a member whose timezone does not parse.
        let Ok(tz) = member.timezone.parse::<chrono_tz::Tz>() else {
            return Verdict::Send;
        };
        if claimed.message.kind != Kind::Scheduled {
            return Verdict::Send;
        }
        let now = Utc::now();
        for (cap, days, key, span) in [
            (limits.per_day, 0, "per_day", "today"),
            (limits.per_week, 6, "per_week", "in these 7 days"),
        ] {
            let Some(cap) = cap else { continue };
            let Some((from, to)) = crate::domain::local_time::local_day(tz, now, days) else {
                continue;
            };
            match self
                .store
                .routine_sent(member.id, from, to, claimed.message.id)
                .await
            {
                Ok(n) if n >= u64::from(cap) => {
                    return Verdict::Suppress(format!(
                        "frequency cap: the member was already sent {n} routine message{} {span} (limits.{key} is {cap})",
                        if n == 1 { "" } else { "s" }
                    ));
                }
                Ok(_) => {}
                Err(e) => {
                    tracing::warn!(error.cause_chain = ?e, member_id = member.id, "cannot count routine messages for the frequency cap; sending");
                }
            }
        }
        Verdict::Send
    }
}
