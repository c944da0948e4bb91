//! The store's interface, one trait per aggregate, in domain types and
//! `DateTime<Utc>`. A backend (SQLite today, PostgreSQL later) implements
//! every trait; nothing here names a database crate, and every failure is
//! a backend-neutral [`StoreError`](crate::store::StoreError).
//!
//! - [`MemberStore`]: members, groups, the roster import.
//! - [`ConsentStore`]: the append-only consent ledger.
//! - [`AuditStore`]: the hash-chained audit trail and its checkpoint.
//!
//! - [`OutboxStore`]: outbound messages, leases, delivery reports.
//! - [`InboundStore`]: the queue of received texts.
//! - [`ScheduleStore`]: schedule marks, fire records, fan-out recipients,
//!   frequency-cap counts, surveys opened by a fire.
//! - [`IncidentStore`]: alert hits folded into incidents.
//! - [`ReplyStore`]: the reply pipeline's reads and its one write.
//! - [`EscalationStore`]: incidents' pinned policies, timers and notices.
//!
//! The methods return `Send` futures so a daemon can hold the store as a
//! generic parameter and spawn work on it.
//!
//! [`Backend`] is all of them together: the one bound every subsystem
//! (scheduler, dispatcher, reply pipeline, escalations, intake, CLI) is
//! generic over. Generic rather than `Arc<dyn …>`: the traits return
//! `impl Future` (no boxing on every store call, no `async_trait`), which
//! makes them not object-safe; a daemon is built for one backend, chosen
//! once at start-up, so monomorphising costs one copy per backend.

mod audit;
mod consent;
pub mod escalation;
pub(crate) mod inbound;
pub mod incident;
mod members;
pub mod outbox;
pub mod reply;
pub mod schedule;

pub use audit::AuditStore;
pub use consent::ConsentStore;
pub use escalation::EscalationStore;
pub use inbound::InboundStore;
pub use incident::IncidentStore;
pub use members::MemberStore;
pub use outbox::OutboxStore;
pub use reply::ReplyStore;
pub use schedule::ScheduleStore;

/// Every aggregate's trait at once: what a subsystem holds. A handle is
/// cheap to clone (clones share one database) and lives as long as the
/// daemon. Implemented for every type that implements all the traits.
pub trait Backend:
    MemberStore
    + ConsentStore
    + AuditStore
    + OutboxStore
    + InboundStore
    + ScheduleStore
    + IncidentStore
    + ReplyStore
    + EscalationStore
    + Clone
    + Send
    + Sync
    + 'static
{
}

impl<T> Backend for T where
    T: MemberStore
        + ConsentStore
        + AuditStore
        + OutboxStore
        + InboundStore
        + ScheduleStore
        + IncidentStore
        + ReplyStore
        + EscalationStore
        + Clone
        + Send
        + Sync
        + 'static
{
}
