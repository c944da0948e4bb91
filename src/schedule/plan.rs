//! Which fires a schedule has, and when each recipient's message goes.
//!
//! A fire is one instant of one schedule for one scope: everyone (a cron
//! in the schedule's own timezone), the members living in one timezone (a
//! cron in each recipient's own timezone), or one group's session (a
//! session-relative schedule). The fire instant is what the idempotency
//! key records, so processing a fire twice enqueues nothing new.

use chrono::{DateTime, Utc};
use chrono_tz::Tz;

use super::Session;
use crate::engine::rules::{RuleSet, Schedule, Window};

/// One fire of one schedule.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Fire {
    pub schedule: String,
    /// The instant, the key of everything the fire enqueues.
    pub at: DateTime<Utc>,
    /// `at` in the fire's timezone (schedule's, recipients', or group's).
    pub local: DateTime<Tz>,
    pub scope: Scope,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Scope {
    /// A cron with its own `timezone:`: the schedule's groups' members
    /// (every member when it names no group).
    Everyone,
    /// A cron in each recipient's own timezone: the members in this one.
    MembersIn(Tz),
    /// A session-relative fire: this group's members, about this session.
    Session { group: String, session: Session },
}

impl Scope {
    /// A short stable name for records: `all`, `tz:Europe/Paris`, `group:ID`.
    pub fn key(&self) -> String {
        match self {
            Scope::Everyone => "all".to_owned(),
            Scope::MembersIn(tz) => format!("tz:{}", tz.name()),
            Scope::Session { group, .. } => format!("group:{group}"),
        }
    }
}

/// The fires of `schedule` strictly after `after` and at or before
/// `until`, ordered by instant, then scope key. A cron without a
/// `timezone:` fires once per zone in `member_zones`. A disabled schedule
/// has none.
pub fn fires(
    rules: &RuleSet,
    schedule: &Schedule,
    after: DateTime<Utc>,
    until: DateTime<Utc>,
    member_zones: &[Tz],
) -> Vec<Fire> {
    let _ = (rules, schedule, after, until, member_zones);
    todo!("plan::fires")
}

/// The first fire instant of `schedule` strictly after `after`, over the
/// same scopes as [`fires`].
pub fn next_fire(
    rules: &RuleSet,
    schedule: &Schedule,
    after: DateTime<Utc>,
    member_zones: &[Tz],
) -> Option<DateTime<Utc>> {
    let _ = (rules, schedule, after, member_zones);
    todo!("plan::next_fire")
}

/// When one recipient's message of a fire goes: with a `window:`, an
/// instant in `[from, to)` on the fire's local date in the fire's
/// timezone, derived from a hash of schedule, member and date (so a re-run
/// picks the same instant), never before the fire itself; without one,
/// the fire instant.
pub fn send_at(fire: &Fire, window: Option<&Window>, member_id: i64) -> DateTime<Utc> {
    let _ = (fire, window, member_id);
    todo!("plan::send_at")
}

/// When a message planned for `send_at` stops being worth sending:
/// `send_at + expires_after`, and for a `before_session` fire never later
/// than the session's start.
pub fn expires_at(
    schedule: &Schedule,
    fire: &Fire,
    send_at: DateTime<Utc>,
) -> Option<DateTime<Utc>> {
    let _ = (schedule, fire, send_at);
    todo!("plan::expires_at")
}
