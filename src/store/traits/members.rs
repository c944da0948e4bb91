//! The roster as any backend offers it: members by external id or phone,
//! with their groups, attributes and consent, and the roster import that
//! adds, updates and deactivates them.

use std::future::Future;

use crate::domain::Phone;
use crate::domain::member::Member;
use crate::store::StoreError;
use crate::store::import::{ImportOptions, ImportReport, ImportRow, RowError};

/// Members, their groups and attributes. Reads never wait behind a long
/// write (an import): a backend serves them from their own connections.
pub trait MemberStore: Send + Sync {
    /// One member by the clinic's external id, with groups and consent.
    fn member(
        &self,
        external_id: &str,
    ) -> impl Future<Output = Result<Option<Member>, StoreError>> + Send;

    /// The member a phone number belongs to, if any.
    fn member_by_phone(
        &self,
        phone: &Phone,
    ) -> impl Future<Output = Result<Option<Member>, StoreError>> + Send;

    /// Every member (or those in `group`), ordered by external id.
    fn members(
        &self,
        group: Option<&str>,
    ) -> impl Future<Output = Result<Vec<Member>, StoreError>> + Send;

    /// Ids of active members with current SMS consent.
    fn sendable_member_ids(&self) -> impl Future<Output = Result<Vec<i64>, StoreError>> + Send;

    /// Marks a member inactive, audited; false when already inactive.
    fn deactivate(
        &self,
        external_id: &str,
        actor: &str,
    ) -> impl Future<Output = Result<bool, StoreError>> + Send;

    /// Upserts a parsed roster in one transaction, all or nothing (unless
    /// `skip_invalid`), with one audit entry for the batch. A row without
    /// a status keeps the member's current one.
    fn import_members(
        &self,
        rows: Vec<ImportRow>,
        invalid: Vec<RowError>,
        opts: ImportOptions,
    ) -> impl Future<Output = Result<ImportReport, StoreError>> + Send;
}
