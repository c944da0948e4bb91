//! Escalations (issue 10; **groundwork, not wired in**): when an open
//! incident's policy notifies whom.
//!
//! Only the pure timeline exists so far: [`timeline`] lists a policy's
//! notifications for an incident opened at a given instant, as if nobody
//! acknowledged, and [`due`] picks the ones that fall due up to `now` after
//! the last one done, so a daemon restarted mid-escalation continues from
//! the right step, neither skipping nor repeating one. Nothing calls them
//! yet: incidents are opened by the reply pipeline and nobody is notified
//! (README says so).

use chrono::{DateTime, Utc};

use crate::engine::rules::Escalation;

/// One notification round of one step: step `step` (0-based) of round
/// `round` (0 is the first pass; `repeat: 2` adds rounds 1 and 2), due
/// at `at`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
pub struct Notification {
    pub step: u32,
    pub round: u32,
    pub at: DateTime<Utc>,
}

impl Notification {
    /// Its place in the timeline, for comparing with the last one done.
    pub fn position(&self, steps: u32) -> u64 {
        u64::from(self.round) * u64::from(steps) + u64::from(self.step)
    }
}

/// Every notification the policy makes for an incident opened at
/// `opened_at` if nobody acknowledges: the first step at once, each next
/// step when the one before has waited its `ack_within`, and the whole
/// sequence again `repeat` more times. A policy without steps makes none.
pub fn timeline(policy: &Escalation, opened_at: DateTime<Utc>) -> Vec<Notification> {
    let mut out = Vec::with_capacity(policy.steps.len() * (policy.repeat as usize + 1));
    let mut at = opened_at;
    for round in 0..=policy.repeat {
        for (step, s) in policy.steps.iter().enumerate() {
            out.push(Notification {
                step: step as u32,
                round,
                at,
            });
            at += s.ack_within.chrono();
        }
    }
    out
}

/// The notifications due at `now` that come after `done` (the position of
/// the last one made, `None` when none was), oldest first. After a
/// restart this is every one the daemon missed, in order.
pub fn due(
    policy: &Escalation,
    opened_at: DateTime<Utc>,
    done: Option<u64>,
    now: DateTime<Utc>,
) -> Vec<Notification> {
    let steps = policy.steps.len() as u32;
    timeline(policy, opened_at)
        .into_iter()
        .filter(|n| n.at <= now && done.is_none_or(|d| n.position(steps) > d))
        .collect()
}

/// When the next notification after `done` falls due, if any is left.
pub fn next_at(
    policy: &Escalation,
    opened_at: DateTime<Utc>,
    done: Option<u64>,
) -> Option<DateTime<Utc>> {
    let steps = policy.steps.len() as u32;
    timeline(policy, opened_at)
        .into_iter()
        .find(|n| done.is_none_or(|d| n.position(steps) > d))
        .map(|n| n.at)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::Duration;
    use crate::engine::rules::{Channel, Step, Target};

    fn policy(minutes: &[u64], repeat: u32) -> Escalation {
        Escalation {
            id: "crisis".into(),
            steps: minutes
                .iter()
                .map(|m| Step {
                    targets: vec![Target::GroupFacilitators],
                    via: vec![Channel::Sms],
                    ack_within: Duration::from_secs(m * 60),
                })
                .collect(),
            repeat,
        }
    }

    fn at(minutes: i64) -> DateTime<Utc> {
        DateTime::from_timestamp(1_800_000_000 + minutes * 60, 0).unwrap()
    }

    #[test]
    fn the_starter_crisis_policy_pages_every_ten_minutes_for_an_hour() {
        // Two 10-minute steps, the whole sequence twice more.
        let t = timeline(&policy(&[10, 10], 2), at(0));
        let when: Vec<(u32, u32, DateTime<Utc>)> =
            t.iter().map(|n| (n.round, n.step, n.at)).collect();
        assert_eq!(
            when,
            vec![
                (0, 0, at(0)),
                (0, 1, at(10)),
                (1, 0, at(20)),
                (1, 1, at(30)),
                (2, 0, at(40)),
                (2, 1, at(50)),
            ]
        );
        assert_eq!(timeline(&policy(&[], 3), at(0)), vec![]);
    }

    #[test]
    fn a_restart_continues_from_the_step_after_the_last_one_done() {
        let p = policy(&[120, 240], 0);
        // Nothing done yet, 5 hours later: both steps are due, in order.
        let d = due(&p, at(0), None, at(300));
        assert_eq!(d.iter().map(|n| n.step).collect::<Vec<_>>(), vec![0, 1]);
        // Step 0 done before the restart: only step 1, once.
        let d = due(&p, at(0), Some(0), at(300));
        assert_eq!(d.iter().map(|n| n.step).collect::<Vec<_>>(), vec![1]);
        // Everything done: nothing due, and nothing left.
        assert!(due(&p, at(0), Some(1), at(10_000)).is_empty());
        assert_eq!(next_at(&p, at(0), Some(1)), None);
        // Step 0 done at once: step 1 waits for its ack_within.
        assert!(due(&p, at(0), Some(0), at(119)).is_empty());
        assert_eq!(next_at(&p, at(0), Some(0)), Some(at(120)));
    }
}
