//! Fire instants: cron patterns and local wall times resolved to UTC, with
//! daylight saving handled as Vixie cron does (see `docs/SCHEDULING.md`).
//!
//! - A **fixed-time** pattern (a fixed hour field) whose local time falls
//!   in a spring-forward gap fires once, at the first valid instant after
//!   the gap (02:30 → 03:00); one in a fall-back overlap fires once, at
//!   its first occurrence.
//! - An **interval** pattern (hour field `*`, `*/n` or any step) fires at
//!   every real occurrence: 23 hourly fires on a spring-forward day, 25 on
//!   a fall-back day.
//!
//! Nothing here reads the clock: every function takes the instant it
//! starts from.

use chrono::{DateTime, NaiveDate, NaiveTime, Utc};
use chrono_tz::Tz;

use super::CronSpec;

/// How a pattern meets a daylight-saving change.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DstPolicy {
    /// A fixed hour: gap → first instant after it, overlap → first occurrence.
    Fixed,
    /// A wildcard or stepped hour: every real occurrence, none invented.
    Interval,
}

/// The policy of a pattern, from its hour field.
pub fn dst_policy(spec: &CronSpec) -> DstPolicy {
    let _ = spec;
    todo!("fire::dst_policy")
}

/// Every fire of `spec` in `tz` strictly after `after` and at or before
/// `until`, in order, each instant once.
pub fn cron_fires(
    spec: &CronSpec,
    tz: Tz,
    after: DateTime<Utc>,
    until: DateTime<Utc>,
) -> Vec<DateTime<Utc>> {
    let _ = (spec, tz, after, until);
    todo!("fire::cron_fires")
}

/// The first fire of `spec` in `tz` strictly after `after`; `None` when
/// the pattern never fires again (within the years the search looks).
pub fn next_cron_fire(spec: &CronSpec, tz: Tz, after: DateTime<Utc>) -> Option<DateTime<Utc>> {
    let _ = (spec, tz, after);
    todo!("fire::next_cron_fire")
}

/// A local wall time on a local date, resolved as a fixed-time job is:
/// in a gap, the first valid instant after it; in an overlap, the first
/// occurrence.
pub fn resolve_local(tz: Tz, date: NaiveDate, time: NaiveTime) -> DateTime<Tz> {
    let _ = (tz, date, time);
    todo!("fire::resolve_local")
}
