//! Escalations in SQLite: one `escalations` row per incident that follows
//! a policy, one `escalation_notices` row per notice.
//!
//! Every write is one `IMMEDIATE` transaction. [`write`](fn@write)
//! applies an [`EscalationWrite`] only while the row's `rev` is what the
//! caller read and the incident is not resolved (one
//! `UPDATE … WHERE rev = ?`), so of two writers that read the same row
//! only the first applies. An SMS notice's message goes into the outbox
//! in the same transaction, through the outbox's own insert-or-skip
//! ([`outbox::enqueue`](super::outbox::enqueue)), so it is sent at
//! escalation priority past quiet hours and caps; email and webhook
//! notices wait here (`pending`) for the delivery worker, which reports
//! each attempt with [`settle`]. Audit entries name the incident and
//! contact ids, never a number, an address or a body.
//!
//! This file holds the [`EscalationStore`] impl and what the parts share;
//! the parts:
//!
//! - [`rows`]: the column lists and row mapping.
//! - [`start`](mod@start): which incidents need an escalation, and starting one.
//! - [`read`](mod@read): what is due, when next, one, and all open.
//! - [`write`](mod@write): one engine step under its `rev` guard.
//! - [`notices`](mod@notices): notice lists and the delivery worker's settle.

mod notices;
mod read;
mod rows;
mod start;
mod write;

use chrono::{DateTime, Utc};

use super::SqliteStore;
use crate::store::StoreError;
use crate::store::traits::EscalationStore;
use crate::store::traits::OutboxStore;
use crate::store::traits::escalation::{EscalationRow, EscalationWrite, Notice, Unstarted};

use notices::{notices, pending, settle};
use read::{due, get, next_due, open};
use start::{start, unstartable, unstarted};
use write::write;

/// The actor of the audit entries the escalation engine writes itself.
const SYSTEM: &str = "system";

/// A count or position as SQLite stores it (saturating).
fn i64_of(v: u64) -> i64 {
    i64::try_from(v).unwrap_or(i64::MAX)
}

/// A `LIMIT` as SQLite takes it (saturating).
fn limit_of(limit: usize) -> i64 {
    i64::try_from(limit).unwrap_or(i64::MAX)
}

/// `incident:<id>`, the audit subject of everything here.
fn incident_subject(id: i64) -> String {
    format!("incident:{id}")
}

impl EscalationStore for SqliteStore {
    async fn unstarted_escalations(&self, limit: usize) -> Result<Vec<Unstarted>, StoreError> {
        self.read(move |c| unstarted(c, limit)).await
    }

    async fn start_escalation(
        &self,
        incident_id: i64,
        policy: &str,
        version: &str,
        pinned: &str,
        first_due: DateTime<Utc>,
        now: DateTime<Utc>,
    ) -> Result<bool, StoreError> {
        let (policy, version, pinned) = (policy.to_owned(), version.to_owned(), pinned.to_owned());
        self.call(move |c| start(c, incident_id, &policy, &version, &pinned, first_due, now))
            .await
    }

    async fn mark_escalation_unstartable(
        &self,
        incident_id: i64,
        policy: &str,
        now: DateTime<Utc>,
    ) -> Result<bool, StoreError> {
        let policy = policy.to_owned();
        self.call(move |c| unstartable(c, incident_id, &policy, now))
            .await
    }

    async fn due_escalations(
        &self,
        now: DateTime<Utc>,
        limit: usize,
    ) -> Result<Vec<EscalationRow>, StoreError> {
        // On the writer's connection: the engine writes after each read,
        // and reads what it wrote just before.
        self.call(move |c| due(c, now, limit)).await
    }

    async fn next_escalation_due(&self) -> Result<Option<DateTime<Utc>>, StoreError> {
        self.call(|c| next_due(c)).await
    }

    async fn escalation(&self, incident_id: i64) -> Result<Option<EscalationRow>, StoreError> {
        self.call(move |c| get(c, incident_id)).await
    }

    async fn open_escalations(&self) -> Result<Vec<EscalationRow>, StoreError> {
        self.read(open).await
    }

    async fn write_escalation(&self, w: EscalationWrite) -> Result<bool, StoreError> {
        let (applied, enqueued) = self.call(move |c| write(c, &w)).await?;
        if enqueued {
            self.enqueued().notify_one();
        }
        Ok(applied)
    }

    async fn notices(&self, incident_id: i64) -> Result<Vec<Notice>, StoreError> {
        self.read(move |c| notices(c, incident_id)).await
    }

    async fn pending_notices(
        &self,
        now: DateTime<Utc>,
        limit: usize,
    ) -> Result<Vec<Notice>, StoreError> {
        self.call(move |c| pending(c, now, limit)).await
    }

    async fn settle_notice(
        &self,
        notice_id: i64,
        outcome: Result<(), (String, Option<DateTime<Utc>>)>,
        now: DateTime<Utc>,
    ) -> Result<(), StoreError> {
        self.call(move |c| settle(c, notice_id, &outcome, now))
            .await
    }
}
