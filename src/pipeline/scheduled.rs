//! Scheduled alerts (`every:`): alerts evaluated for every active member
//! at each fire of their cron pattern, in the member's timezone, for
//! patterns of non-reply ("no reply in 14 days"). Hits go to
//! [`crate::store::traits::IncidentStore::record_hits`].

use chrono::{DateTime, Utc};

use crate::engine::rules::RuleSet;
use crate::store::{Store, StoreError};

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ScheduledTick {
    /// (alert, member) evaluations run.
    pub evaluated: u64,
    pub fired: u64,
    pub failed: u64,
}

/// Runs the `every:` alerts whose fires fell due since the last tick
/// (marks kept in the store) up to `now`.
pub async fn tick(
    store: &Store,
    rules: &RuleSet,
    now: DateTime<Utc>,
) -> Result<ScheduledTick, StoreError> {
    todo!(
        "{} {now}",
        rules.alerts.len() + store.path().as_os_str().len()
    )
}
