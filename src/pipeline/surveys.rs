//! Survey housekeeping, run every few seconds by the daemon: a reminder
//! (`remind_after:`) once for a question left unanswered, and closing runs
//! past their expiry.

use chrono::{DateTime, Utc};

use crate::engine::rules::RuleSet;
use crate::store::{Store, StoreError};

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct SurveyTick {
    pub reminded: u64,
    pub expired: u64,
}

/// Sends due reminders and expires runs at `now`.
pub async fn tick(
    store: &Store,
    rules: &RuleSet,
    now: DateTime<Utc>,
) -> Result<SurveyTick, StoreError> {
    todo!(
        "{} {now}",
        rules.surveys.len() + store.path().as_os_str().len()
    )
}
