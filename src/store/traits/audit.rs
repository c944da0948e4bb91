//! The audit trail and storage integrity as any backend offers them: a
//! hash-chained, append-only trail of who did what (ids, never PHI), its
//! verification, and the backend's own check of its storage.

use std::future::Future;

use crate::domain::member::{AuditEntry, AuditVerified};
use crate::store::StoreError;

/// The hash-chained audit trail. Entries carry ids, never PHI.
pub trait AuditStore: Send + Sync {
    /// Appends one entry in its own transaction; its id.
    fn audit(
        &self,
        actor: &str,
        action: &str,
        subject: Option<&str>,
        detail: serde_json::Value,
    ) -> impl Future<Output = Result<i64, StoreError>> + Send;

    /// Walks the whole chain from the first entry.
    fn audit_verify(&self) -> impl Future<Output = Result<AuditVerified, StoreError>> + Send;

    /// Walks only the entries after the stored checkpoint (start-up), then
    /// moves the checkpoint to the head.
    fn audit_verify_since_checkpoint(
        &self,
    ) -> impl Future<Output = Result<AuditVerified, StoreError>> + Send;

    /// The newest `n` entries, oldest first.
    fn audit_tail(
        &self,
        n: usize,
    ) -> impl Future<Output = Result<Vec<AuditEntry>, StoreError>> + Send;

    /// The backend's own full check of its storage (SQLite: `PRAGMA
    /// integrity_check`, every page and index); the problems it finds,
    /// none when the storage is sound. For `hearth db check`.
    fn integrity_check(&self) -> impl Future<Output = Result<Vec<String>, StoreError>> + Send;
}
