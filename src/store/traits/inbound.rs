//! The inbound queue, as any backend offers it: every inbound text is
//! stored (once per provider message id) before the webhook answers; the
//! rows not yet processed are the reply pipeline's queue, read in pages by
//! a cursor so a held row never hides newer ones.

use std::future::Future;

use crate::domain::message::{InboundRow, InboundSms, Received};
use crate::store::StoreError;

pub trait InboundStore: Send + Sync {
    /// Stores a text (and its audit entry) unless the provider sent it
    /// before.
    fn record_inbound(
        &self,
        sms: InboundSms,
    ) -> impl Future<Output = Result<Received, StoreError>> + Send;

    /// Up to `limit` unprocessed texts with an id above `after`, oldest
    /// first. Page with the last id seen; start again from 0.
    fn unprocessed_after(
        &self,
        after: i64,
        limit: usize,
    ) -> impl Future<Output = Result<Vec<InboundRow>, StoreError>> + Send;

    /// Marks a text processed with its outcome; a second call changes
    /// nothing.
    fn mark_inbound_processed(
        &self,
        id: i64,
        outcome: &str,
    ) -> impl Future<Output = Result<(), StoreError>> + Send;

    /// One stored text by id, processed or not.
    fn inbound(
        &self,
        id: i64,
    ) -> impl Future<Output = Result<Option<InboundRow>, StoreError>> + Send;

    /// Every stored text, processed or not, oldest first (at most
    /// `limit`), with its outcome (`None` while queued): staff's view.
    fn inbound_texts(
        &self,
        limit: usize,
    ) -> impl Future<Output = Result<Vec<(InboundRow, Option<String>)>, StoreError>> + Send;

    /// The oldest `limit` unprocessed texts (the first page).
    fn unprocessed_inbound(
        &self,
        limit: usize,
    ) -> impl Future<Output = Result<Vec<InboundRow>, StoreError>> + Send {
        self.unprocessed_after(0, limit)
    }
}
