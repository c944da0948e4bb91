//! The SQLite store behind the backend-neutral traits: each method is the
//! inherent one of the same name.

use super::SqliteStore;
use crate::domain::Phone;
use crate::domain::member::{
    AuditEntry, AuditVerified, ConsentAction, ConsentEvent, ConsentSource, Member, Recorded,
};
use crate::store::StoreError;
use crate::store::import::{ImportOptions, ImportReport, ImportRow, RowError};
use crate::store::traits::{AuditStore, ConsentStore, MemberStore};

impl MemberStore for SqliteStore {
    async fn member(&self, external_id: &str) -> Result<Option<Member>, StoreError> {
        SqliteStore::member(self, external_id).await
    }
    async fn member_by_phone(&self, phone: &Phone) -> Result<Option<Member>, StoreError> {
        SqliteStore::member_by_phone(self, phone).await
    }
    async fn members(&self, group: Option<&str>) -> Result<Vec<Member>, StoreError> {
        SqliteStore::members(self, group).await
    }
    async fn sendable_member_ids(&self) -> Result<Vec<i64>, StoreError> {
        SqliteStore::sendable_member_ids(self).await
    }
    async fn deactivate(&self, external_id: &str, actor: &str) -> Result<bool, StoreError> {
        SqliteStore::deactivate(self, external_id, actor).await
    }
    async fn import_members(
        &self,
        rows: Vec<ImportRow>,
        invalid: Vec<RowError>,
        opts: ImportOptions,
    ) -> Result<ImportReport, StoreError> {
        SqliteStore::import_members(self, rows, invalid, opts).await
    }
}

impl ConsentStore for SqliteStore {
    async fn record_consent(
        &self,
        external_id: &str,
        action: ConsentAction,
        source: ConsentSource,
        text: &str,
        actor: &str,
    ) -> Result<Recorded, StoreError> {
        SqliteStore::record_consent(self, external_id, action, source, text, actor).await
    }
    async fn consent_history(&self, external_id: &str) -> Result<Vec<ConsentEvent>, StoreError> {
        SqliteStore::consent_history(self, external_id).await
    }
}

impl AuditStore for SqliteStore {
    async fn audit(
        &self,
        actor: &str,
        action: &str,
        subject: Option<&str>,
        detail: serde_json::Value,
    ) -> Result<i64, StoreError> {
        SqliteStore::audit(self, actor, action, subject, detail).await
    }
    async fn audit_verify(&self) -> Result<AuditVerified, StoreError> {
        SqliteStore::audit_verify(self).await
    }
    async fn audit_verify_since_checkpoint(&self) -> Result<AuditVerified, StoreError> {
        SqliteStore::audit_verify_since_checkpoint(self).await
    }
    async fn audit_tail(&self, n: usize) -> Result<Vec<AuditEntry>, StoreError> {
        SqliteStore::audit_tail(self, n).await
    }
}
