//! The outbox, as any backend offers it: enqueue (one or a batch,
//! insert-or-skip on the idempotency key), claim under a lease, renew,
//! settle through the one transition rule, delivery reports, staff's list,
//! retry and cancel.
//!
//! A claim is a lease: the row is `sending`, held by one [`InstanceId`]
//! until `lease_until`. The holder renews it while the provider call runs
//! and settles it once with an [`Outcome`]. Settling is idempotent (the
//! same outcome twice records once), so a caller whose store call failed
//! simply tries again; if it never manages to, the lease lapses and the
//! row goes back to `queued`, marked *possibly sent* and audited. Nothing
//! stays `sending` for good.

use std::fmt;
use std::future::Future;
use std::sync::Arc;

use tokio::sync::Notify;

use chrono::{DateTime, Utc};

use crate::domain::Invalid;
use crate::domain::Phone;
use crate::domain::message::{
    Enqueued, Kind, NewMessage, OutState, OutboxMessage, Report, ReportFor,
};
use crate::store::StoreError;

/// Who holds a lease: one running daemon. Stable across restarts of the
/// same daemon, so at start it can take back what its previous run held
/// ([`OutboxStore::release_own_claims`]); distinct per daemon when several
/// share one database.
#[derive(Clone, PartialEq, Eq, Hash)]
pub struct InstanceId(String);

impl InstanceId {
    pub fn new(id: impl Into<String>) -> Result<InstanceId, Invalid> {
        let id = id.into();
        if id.trim().is_empty() || id.len() > 100 || id.chars().any(char::is_control) {
            return Err(Invalid::new(format!(
                "instance id `{}` is not usable: 1 to 100 characters, no control characters",
                id.escape_debug()
            )));
        }
        Ok(InstanceId(id))
    }

    /// This machine's host name (`/proc/sys/kernel/hostname`), or
    /// `hearth` when it cannot be read: right for one daemon per host.
    pub(crate) fn for_this_host() -> InstanceId {
        std::fs::read_to_string("/proc/sys/kernel/hostname")
            .ok()
            .and_then(|h| InstanceId::new(h.trim()).ok())
            .unwrap_or_else(|| InstanceId("hearth".into()))
    }

    pub(crate) fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for InstanceId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl fmt::Debug for InstanceId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "InstanceId({:?})", self.0)
    }
}

/// One claim on one message: who, which claim of it (a message claimed
/// again after a lapse gets a new token), and until when.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Lease {
    pub(crate) outbox_id: i64,
    pub holder: InstanceId,
    /// Counts claims of this message; a stale lease's token is older.
    pub token: i64,
    pub(crate) until: DateTime<Utc>,
}

/// A member as the last gate sees them, read in the claim's transaction.
#[derive(Debug, Clone)]
pub struct MemberGate {
    pub id: i64,
    pub(crate) active: bool,
    pub consent: bool,
    pub(crate) timezone: String,
}

/// A claimed message with everything the last gate needs.
#[derive(Clone)]
pub struct ClaimedMessage {
    pub lease: Lease,
    /// The message after the claim (`sending`, attempts counted).
    pub message: OutboxMessage,
    /// The number to send to: the member's current phone, or the row's own.
    pub to: Option<Phone>,
    /// The member: the row's own, or for a number-only message the member
    /// who holds that number, if any (so consent is checked for them too).
    pub member: Option<MemberGate>,
}

impl fmt::Debug for ClaimedMessage {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ClaimedMessage")
            .field("lease", &self.lease)
            .field("message", &self.message)
            .field("member", &self.member)
            .finish_non_exhaustive()
    }
}

/// What became of a claimed message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// The provider accepted it (`provider_message_id` when it gave one).
    Sent {
        provider: String,
        provider_message_id: Option<String>,
    },
    /// A transient failure: queued again for `at`, the attempt counted.
    Retry {
        at: DateTime<Utc>,
        reason: String,
    },
    /// Not now (quiet hours, a paused provider): queued again for `until`,
    /// the attempt not counted.
    Defer {
        until: DateTime<Utc>,
        reason: String,
    },
    Failed {
        reason: String,
    },
    /// The provider says the number opted out: failed, and the member's
    /// consent revoked as if they texted STOP.
    OptedOut {
        reason: String,
    },
    Suppressed {
        reason: String,
    },
    Expired {
        reason: String,
    },
}

impl Outcome {
    /// The state this outcome moves a message to.
    pub(crate) fn state(&self) -> OutState {
        match self {
            Outcome::Sent { .. } => OutState::Sent,
            Outcome::Retry { .. } | Outcome::Defer { .. } => OutState::Queued,
            Outcome::Failed { .. } | Outcome::OptedOut { .. } => OutState::Failed,
            Outcome::Suppressed { .. } => OutState::Suppressed,
            Outcome::Expired { .. } => OutState::Expired,
        }
    }
}

/// What settling a claim did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Settled {
    /// Recorded now; the message is in this state.
    Recorded(OutState),
    /// This same outcome was recorded before (a retried call), or a
    /// delivery report had already moved the message further: nothing
    /// more to do. The message is in this state.
    AlreadyRecorded(OutState),
    /// The lease lapsed and the message moved on without this outcome
    /// (queued again, claimed by another, cancelled). Only `Sent` is
    /// recorded regardless, since the provider has it.
    LeaseLost(OutState),
}

/// Which messages `outbox list` shows (newest first).
#[derive(Debug, Clone, Default)]
pub struct ListFilter {
    pub state: Option<OutState>,
    pub kind: Option<Kind>,
    pub limit: usize,
}

/// Which messages `outbox retry` queues again: the given ids, or every
/// message matching all the given conditions. Only retryable states
/// ([`OutState::retryable`]) are ever touched; `sent` and `delivered`
/// never go back.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RetryFilter {
    pub ids: Vec<i64>,
    pub state: Option<OutState>,
    pub kind: Option<Kind>,
    /// Last changed at or after this instant.
    pub since: Option<DateTime<Utc>>,
}

impl RetryFilter {
    pub(crate) fn is_empty(&self) -> bool {
        self.ids.is_empty() && self.state.is_none() && self.kind.is_none() && self.since.is_none()
    }
}

/// The outbox operations, in domain types.
pub trait OutboxStore: Send + Sync {
    /// Notified each time this handle (or a clone of it) queues a new
    /// message, so the dispatcher wakes without polling.
    fn enqueued(&self) -> Arc<Notify>;

    /// Queues a message unless one with its key exists.
    fn enqueue(&self, m: NewMessage) -> impl Future<Output = Result<Enqueued, StoreError>> + Send;

    /// A staff send: queues `m` and, when it is new, appends `action` to
    /// the audit trail (subject the member, `detail` plus the outbox id)
    /// in the same transaction. A duplicate key writes nothing.
    fn enqueue_audited(
        &self,
        m: NewMessage,
        actor: &str,
        action: &str,
        detail: serde_json::Value,
    ) -> impl Future<Output = Result<Enqueued, StoreError>> + Send;

    /// Queues many messages in one transaction, skipping keys already
    /// there; returns how many were new. All or nothing: an invalid
    /// message fails the whole batch and writes nothing.
    fn enqueue_batch(
        &self,
        batch: Vec<NewMessage>,
    ) -> impl Future<Output = Result<usize, StoreError>> + Send;

    /// Claims the most urgent due message (`queued → sending`, one attempt
    /// more) under a lease until `now + lease_for`. Lapsed leases are
    /// returned to the queue first (possibly sent, audited).
    fn claim(
        &self,
        holder: &InstanceId,
        now: DateTime<Utc>,
        lease_for: chrono::TimeDelta,
    ) -> impl Future<Output = Result<Option<ClaimedMessage>, StoreError>> + Send;

    /// [`claim`](OutboxStore::claim), but only messages of these kinds
    /// (e.g. [`Kind::URGENT`] for a lane that never waits behind routine
    /// sends): one query, so two daemons cannot both take one message.
    fn claim_of_kinds(
        &self,
        holder: &InstanceId,
        now: DateTime<Utc>,
        lease_for: chrono::TimeDelta,
        kinds: &[Kind],
    ) -> impl Future<Output = Result<Option<ClaimedMessage>, StoreError>> + Send;

    /// Extends a lease while the provider call runs; `None` if it is no
    /// longer held (lapsed and taken back).
    fn renew(
        &self,
        lease: &Lease,
        until: DateTime<Utc>,
    ) -> impl Future<Output = Result<Option<Lease>, StoreError>> + Send;

    /// Records what became of a claimed message, through the transition
    /// rule, with its audit entry. Idempotent: call it again after a store
    /// error until it returns `Ok`.
    fn settle_claim(
        &self,
        lease: &Lease,
        outcome: Outcome,
    ) -> impl Future<Output = Result<Settled, StoreError>> + Send;

    /// At start: messages this instance's previous run left `sending` go
    /// back to the queue, marked possibly sent and audited; returns how
    /// many. Other instances' claims are left to their leases.
    fn release_own_claims(
        &self,
        holder: &InstanceId,
    ) -> impl Future<Output = Result<usize, StoreError>> + Send;

    /// Returns every lapsed lease's message to the queue (possibly sent,
    /// audited); returns how many.
    fn expire_leases(
        &self,
        now: DateTime<Utc>,
    ) -> impl Future<Output = Result<usize, StoreError>> + Send;

    /// Applies a delivery report; the message's state afterwards, or
    /// `None` when no such message is known (yet: a report by provider id
    /// is kept and applied when the send is recorded).
    fn apply_report(
        &self,
        target: ReportFor,
        report: Report,
        detail: Option<String>,
    ) -> impl Future<Output = Result<Option<OutState>, StoreError>> + Send;

    /// When the next queued message falls due, if any.
    fn next_due(&self) -> impl Future<Output = Result<Option<DateTime<Utc>>, StoreError>> + Send;

    fn list_messages(
        &self,
        filter: ListFilter,
    ) -> impl Future<Output = Result<Vec<OutboxMessage>, StoreError>> + Send;

    fn message(
        &self,
        id: i64,
    ) -> impl Future<Output = Result<Option<OutboxMessage>, StoreError>> + Send;

    /// Staff: queue matching retryable messages again, now, one audit
    /// entry each; returns how many. Never touches sent or delivered ones.
    fn retry(
        &self,
        filter: RetryFilter,
        actor: &str,
    ) -> impl Future<Output = Result<usize, StoreError>> + Send;

    /// Staff: stop a queued message (audited).
    fn cancel(&self, id: i64, actor: &str) -> impl Future<Output = Result<(), StoreError>> + Send;
}
