//! The outbox and delivery reports, in SQLite.
//!
//! Every outbound text is a row here before any provider is called,
//! unique on its idempotency key. A dispatcher claims the most urgent due
//! row under a lease (`claimed_by`, `lease_until`) with one
//! `UPDATE … RETURNING`, and settles it with what the provider said.
//! Every state change goes through [`set_state`], which checks the move
//! against [`OutState::may_move`] and writes it as a compare-and-set on
//! the state it read, so nothing moves backwards and two writers cannot
//! both move one row. A lease that lapses returns the row to `queued`,
//! marked possibly sent, with an audit entry.
//!
//! Write transactions are `IMMEDIATE`: they take the write lock up front,
//! so a concurrent writer (a staff command, another daemon) waits on the
//! busy timeout instead of failing half-way.
//!
//! This file holds the [`OutboxStore`] impl and what every part shares
//! (the audit subject, the `IMMEDIATE` transaction); the parts:
//!
//! - [`rows`]: timestamps as stored, and a row read as an [`OutboxMessage`].
//! - [`state`]: the one transition, [`set_state`].
//! - [`enqueue`](mod@enqueue): insert-or-skip of one message or a batch.
//! - [`claim`](mod@claim): claims, leases (renew, release, expire), the next due time.
//! - [`settle`](mod@settle): recording what the provider said about a claimed send.
//! - [`reports`]: delivery reports, applied or kept until their send is known.
//! - [`staff`]: list and show, retry, cancel.

mod claim;
mod enqueue;
mod reports;
mod rows;
mod settle;
mod staff;
mod state;

use chrono::{DateTime, Utc};
use rusqlite::{Connection, OptionalExtension, TransactionBehavior};

use super::{SqliteStore, audit};
use crate::domain::message::{
    Enqueued, Kind, NewMessage, OutState, OutboxMessage, Report, ReportFor,
};
use crate::store::StoreError;
use crate::store::traits::outbox::{
    ClaimedMessage, InstanceId, Lease, ListFilter, OutboxStore, Outcome, RetryFilter, Settled,
};

use claim::{claim, next_due, release, renew};
pub(crate) use enqueue::enqueue;
use enqueue::enqueue_batch;
use reports::apply_report;
pub(crate) use rows::{get_opt_ts, get_ts, parse_ts, ts};
use settle::settle;
use staff::{cancel, get, list, retry};
pub(crate) use state::{Change, set_state};

/// `member:<external id>` for audit subjects, as everywhere else.
pub(crate) fn subject(
    conn: &Connection,
    member_id: Option<i64>,
) -> Result<Option<String>, StoreError> {
    let Some(m) = member_id else { return Ok(None) };
    let ext: Option<String> = conn
        .query_row("SELECT external_id FROM members WHERE id = ?1", [m], |r| {
            r.get(0)
        })
        .optional()?;
    Ok(Some(format!(
        "member:{}",
        ext.unwrap_or_else(|| format!("#{m}"))
    )))
}

/// A write transaction that takes the write lock at `BEGIN`.
pub(crate) fn immediate(conn: &mut Connection) -> Result<rusqlite::Transaction<'_>, StoreError> {
    Ok(conn.transaction_with_behavior(TransactionBehavior::Immediate)?)
}

impl OutboxStore for SqliteStore {
    fn enqueued(&self) -> std::sync::Arc<tokio::sync::Notify> {
        self.inner.enqueued.clone()
    }

    async fn enqueue_audited(
        &self,
        m: NewMessage,
        actor: &str,
        action: &str,
        mut detail: serde_json::Value,
    ) -> Result<Enqueued, StoreError> {
        let (actor, action) = (actor.to_owned(), action.to_owned());
        let q = self
            .call(move |c| {
                let tx = c.transaction()?;
                let q = enqueue(&tx, &m)?;
                if let Enqueued::New(id) = q {
                    if let Some(d) = detail.as_object_mut() {
                        d.insert("outbox".into(), id.into());
                    }
                    audit::append(
                        &tx,
                        &actor,
                        &action,
                        subject(&tx, m.member_id)?.as_deref(),
                        detail,
                    )?;
                }
                tx.commit()?;
                Ok(q)
            })
            .await?;
        if let Enqueued::New(_) = q {
            self.enqueued().notify_one();
        }
        Ok(q)
    }

    async fn enqueue(&self, m: NewMessage) -> Result<Enqueued, StoreError> {
        let q = self
            .call(move |c| {
                let tx = immediate(c)?;
                let q = enqueue(&tx, &m)?;
                tx.commit()?;
                Ok(q)
            })
            .await?;
        if let Enqueued::New(_) = q {
            self.enqueued().notify_one();
        }
        Ok(q)
    }

    async fn enqueue_batch(&self, batch: Vec<NewMessage>) -> Result<usize, StoreError> {
        let n = self.call(move |c| enqueue_batch(c, &batch)).await?;
        if n > 0 {
            self.enqueued().notify_one();
        }
        Ok(n)
    }

    async fn claim(
        &self,
        holder: &InstanceId,
        now: DateTime<Utc>,
        lease_for: chrono::TimeDelta,
    ) -> Result<Option<ClaimedMessage>, StoreError> {
        let holder = holder.clone();
        self.call(move |c| claim(c, &holder, now, lease_for, &Kind::ALL))
            .await
    }

    async fn claim_of_kinds(
        &self,
        holder: &InstanceId,
        now: DateTime<Utc>,
        lease_for: chrono::TimeDelta,
        kinds: &[Kind],
    ) -> Result<Option<ClaimedMessage>, StoreError> {
        let holder = holder.clone();
        let kinds = kinds.to_vec();
        self.call(move |c| claim(c, &holder, now, lease_for, &kinds))
            .await
    }

    async fn renew(
        &self,
        lease: &Lease,
        until: DateTime<Utc>,
    ) -> Result<Option<Lease>, StoreError> {
        let lease = lease.clone();
        self.call(move |c| renew(c, &lease, until)).await
    }

    async fn settle_claim(&self, lease: &Lease, outcome: Outcome) -> Result<Settled, StoreError> {
        let lease = lease.clone();
        self.call(move |c| settle(c, &lease, &outcome, Utc::now()))
            .await
    }

    async fn release_own_claims(&self, holder: &InstanceId) -> Result<usize, StoreError> {
        let holder = holder.clone();
        self.call(move |c| {
            let tx = immediate(c)?;
            let n = release(&tx, Utc::now(), Some(&holder))?;
            tx.commit()?;
            Ok(n)
        })
        .await
    }

    async fn expire_leases(&self, now: DateTime<Utc>) -> Result<usize, StoreError> {
        self.call(move |c| {
            let tx = immediate(c)?;
            let n = release(&tx, now, None)?;
            tx.commit()?;
            Ok(n)
        })
        .await
    }

    async fn apply_report(
        &self,
        target: ReportFor,
        report: Report,
        detail: Option<String>,
    ) -> Result<Option<OutState>, StoreError> {
        self.call(move |c| apply_report(c, &target, report, detail.as_deref()))
            .await
    }

    async fn next_due(&self) -> Result<Option<DateTime<Utc>>, StoreError> {
        self.call(|c| next_due(c)).await
    }

    async fn list_messages(&self, filter: ListFilter) -> Result<Vec<OutboxMessage>, StoreError> {
        self.call(move |c| list(c, &filter)).await
    }

    async fn message(&self, id: i64) -> Result<Option<OutboxMessage>, StoreError> {
        self.call(move |c| get(c, id)).await
    }

    async fn retry(&self, filter: RetryFilter, actor: &str) -> Result<usize, StoreError> {
        let actor = actor.to_owned();
        let n = self
            .call(move |c| retry(c, &filter, &actor, Utc::now()))
            .await?;
        if n > 0 {
            self.enqueued().notify_one();
        }
        Ok(n)
    }

    async fn cancel(&self, id: i64, actor: &str) -> Result<(), StoreError> {
        let actor = actor.to_owned();
        self.call(move |c| cancel(c, id, &actor)).await
    }
}
