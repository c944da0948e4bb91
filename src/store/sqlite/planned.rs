//! Queued messages by the schedule fire that planned them: what the
//! scheduler checks after a reload, and cancels when the fire is gone.

use chrono::{DateTime, Utc};

use super::Store;
use super::audit;
use super::outbox::{parse_ts, ts};
use crate::domain::message::OutState;
use crate::store::StoreError;

impl Store {
    /// The distinct (schedule, fire) of still-queued planned messages.
    pub async fn planned_fires(&self) -> Result<Vec<(String, DateTime<Utc>)>, StoreError> {
        self.read(|c| {
            let mut stmt = c.prepare(
                "SELECT DISTINCT schedule_id, fire_at FROM outbox
                 WHERE state = 'queued' AND schedule_id IS NOT NULL AND fire_at IS NOT NULL
                 ORDER BY schedule_id, fire_at",
            )?;
            let rows = stmt
                .query_map([], |r| Ok((r.get::<_, String>(0)?, r.get::<_, String>(1)?)))?
                .collect::<Result<Vec<_>, _>>()?;
            Ok(rows
                .into_iter()
                .filter_map(|(s, f)| Some((s, parse_ts(&f)?)))
                .collect())
        })
        .await
    }

    /// Suppresses, with `reason`, the still-queued messages of one fire of
    /// one schedule; one audit entry; returns how many.
    pub async fn cancel_planned_fire(
        &self,
        schedule: &str,
        fire: DateTime<Utc>,
        reason: &str,
    ) -> Result<usize, StoreError> {
        debug_assert!(OutState::Queued.may_move(OutState::Suppressed));
        let (schedule, reason) = (schedule.to_owned(), reason.to_owned());
        self.call(move |c| {
            let tx = c.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?;
            let n = tx.execute(
                "UPDATE outbox SET state = 'suppressed', reason = ?3, updated_at = ?4
                 WHERE schedule_id = ?1 AND fire_at = ?2 AND state = 'queued'",
                rusqlite::params![schedule, ts(fire), reason, ts(Utc::now())],
            )?;
            if n > 0 {
                audit::append(
                    &tx,
                    crate::daemon::DAEMON_ACTOR,
                    "schedule.cancel",
                    Some(&format!("schedule:{schedule}")),
                    serde_json::json!({ "fire": fire, "cancelled": n, "reason": reason }),
                )?;
            }
            tx.commit()?;
            Ok(n)
        })
        .await
    }
}
