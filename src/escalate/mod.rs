//! Escalations: an incident's policy notifies contacts step by step until
//! someone acknowledges, and its state moves open → acknowledged →
//! resolved with who and how on record.
//!
//! - [`pinned`]: the policy as it was when the incident's escalation
//!   started (a reload never changes or orphans a running one), and its
//!   sequence of notifications ([`Entry`]).
//! - [`act`]: ACK, RESOLVE and ESC from a text, the admin API or the CLI
//!   ([`act::act`]).
//! - `compose`: what a notice carries when it is made (what it says
//!   about the incident, its address and outbox message), for `act` and
//!   the timer.
//! - [`notice`]: what a notice says (the minimum necessary).
//! - [`queries`]: the incident listing and JSON the admin API and
//!   `hearth incidents` share.
//! - [`command`]: `ACK 42`, `RESOLVE 42`, `ESC 42` in a contact's text.
//! - [`rotation`]: who is on call when.
//! - [`email`], [`webhook`]: the channels besides SMS.
//!
//! The timer that makes the notifications as they fall due and delivers
//! email and webhook notices is [`crate::timers::escalations`] (timers
//! know escalations; escalations do not know timers).

pub mod act;
pub(crate) mod command;
pub(crate) mod compose;
pub mod email;
pub(crate) mod follow_up;
pub(crate) mod notice;
pub mod pinned;
pub(crate) mod queries;
pub(crate) mod rotation;
pub(crate) mod start;
pub mod webhook;

use crate::rules::Repeat;

/// One notification of a policy's sequence: which step, in which round.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
pub(crate) struct Entry {
    /// 0-based index into the steps; the backup step is `steps.len()`.
    pub(crate) step: u32,
    /// 0 is the first pass; the backup step's round is the one it follows.
    pub(crate) round: u32,
    pub(crate) backup: bool,
}

/// The entry at `position` of the sequence of a policy with `steps`
/// ordinary steps, `repeat`, and a backup step or not; `None` past the
/// end. With `repeat: N` the ordinary steps run `N + 1` times and the
/// backup step once after them. With `until_acknowledged` the backup step
/// comes once after the first round, and the rounds go on without end.
pub(crate) fn entry_at(steps: u32, repeat: Repeat, backup: bool, position: u64) -> Option<Entry> {
    let n = u64::from(steps);
    if n == 0 {
        return (backup && position == 0).then_some(Entry {
            step: 0,
            round: 0,
            backup: true,
        });
    }
    let ordinary = |pos: u64, round_offset: u64| {
        let round = round_offset + pos / n;
        Some(Entry {
            step: (pos % n) as u32,
            round: u32::try_from(round).unwrap_or(u32::MAX),
            backup: false,
        })
    };
    match repeat {
        Repeat::Times(r) => {
            let total = n * (u64::from(r) + 1);
            if position < total {
                ordinary(position, 0)
            } else if backup && position == total {
                Some(Entry {
                    step: steps,
                    round: r,
                    backup: true,
                })
            } else {
                None
            }
        }
        Repeat::UntilAcknowledged => {
            if position < n {
                ordinary(position, 0)
            } else if backup && position == n {
                Some(Entry {
                    step: steps,
                    round: 0,
                    backup: true,
                })
            } else {
                let after = position - n - u64::from(backup);
                ordinary(after, 1)
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn seq(steps: u32, repeat: Repeat, backup: bool, upto: u64) -> Vec<(u32, u32, bool)> {
        (0..upto)
            .map_while(|p| entry_at(steps, repeat, backup, p))
            .map(|e| (e.round, e.step, e.backup))
            .collect()
    }

    #[test]
    fn a_finite_repeat_runs_the_steps_again_then_the_backup_once() {
        assert_eq!(
            seq(2, Repeat::Times(1), true, 100),
            vec![
                (0, 0, false),
                (0, 1, false),
                (1, 0, false),
                (1, 1, false),
                (1, 2, true)
            ]
        );
        assert_eq!(
            seq(2, Repeat::Times(0), false, 100),
            vec![(0, 0, false), (0, 1, false)]
        );
        assert_eq!(seq(0, Repeat::Times(3), false, 100), vec![]);
    }

    #[test]
    fn until_acknowledged_never_ends_and_pages_the_backup_after_the_first_round() {
        let s = seq(2, Repeat::UntilAcknowledged, true, 7);
        assert_eq!(
            s,
            vec![
                (0, 0, false),
                (0, 1, false),
                (0, 2, true),
                (1, 0, false),
                (1, 1, false),
                (2, 0, false),
                (2, 1, false)
            ]
        );
        let far = entry_at(3, Repeat::UntilAcknowledged, false, 3_000_000_000).unwrap();
        assert_eq!((far.round, far.step), (1_000_000_000, 0));
    }
}
