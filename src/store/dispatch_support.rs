//! Store reads the dispatcher needs beyond the outbox's own API.

use chrono::{DateTime, Utc};

use super::{Store, StoreError};
use crate::store::outbox::Kind;

impl Store {
    /// Is a crisis, compliance or escalation message due now? With every
    /// routine slot busy the dispatcher claims only when one is, and
    /// `claim_next` (most urgent first) then hands it that message.
    pub async fn urgent_due(&self, now: DateTime<Utc>) -> Result<bool, StoreError> {
        let now = now.to_rfc3339_opts(chrono::SecondsFormat::Millis, true);
        let max = Kind::Escalation.priority();
        self.call(move |c| {
            Ok(c.query_row(
                "SELECT EXISTS (SELECT 1 FROM outbox WHERE state = 'queued' AND priority <= ?1 AND next_attempt_at <= ?2)",
                rusqlite::params![max, now],
                |r| r.get::<_, bool>(0),
            )?)
        })
        .await
    }
}
