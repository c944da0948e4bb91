//! What a store backend offers, one trait per aggregate, in domain types
//! and `DateTime<Utc>` with the backend-neutral [`StoreError`](super::StoreError).
//! The SQLite [`Store`](super::Store) implements them all today.

pub mod inbound;
pub mod outbox;

pub use inbound::InboundStore;
pub use outbox::OutboxStore;
