//! The consent ledger as any backend offers it: grants and revocations,
//! append-only, current consent being the newest event.

use std::future::Future;

use crate::domain::member::{ConsentAction, ConsentEvent, ConsentSource, Recorded};
use crate::store::StoreError;

/// The consent ledger: append-only; current consent is its newest event.
/// A member's own STOP is only undone by the member (a keyword).
pub trait ConsentStore: Send + Sync {
    /// Records a grant or revocation (and its audit entry) unless it
    /// changes nothing or would override the member's own STOP.
    fn record_consent(
        &self,
        external_id: &str,
        action: ConsentAction,
        source: ConsentSource,
        text: &str,
        actor: &str,
    ) -> impl Future<Output = Result<Recorded, StoreError>> + Send;

    /// Every event for a member, oldest first.
    fn consent_history(
        &self,
        external_id: &str,
    ) -> impl Future<Output = Result<Vec<ConsentEvent>, StoreError>> + Send;
}
