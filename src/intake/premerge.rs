//! TEMPORARY, deleted when `main` has the escalation store (issue 10):
//! stand-ins for the store's additions the admin API is written against
//! (`IncidentStore::incident_counts`, `IncidentFilter::unresolved`, the
//! SQLite `EscalationStore`), so the branch compiles before they land.

use std::future::Future;

use chrono::{DateTime, Utc};

use crate::store::traits::EscalationStore;
use crate::store::traits::escalation::{EscalationRow, EscalationWrite, Notice, Unstarted};
use crate::store::traits::incident::IncidentFilter;
use crate::store::{Store, StoreError};

pub struct IncidentCounts {
    pub open: u64,
    pub acknowledged: u64,
    pub critical_unresolved: u64,
}

pub trait CountsShim {
    fn incident_counts(&self) -> impl Future<Output = Result<IncidentCounts, StoreError>> + Send;
}

impl CountsShim for Store {
    async fn incident_counts(&self) -> Result<IncidentCounts, StoreError> {
        let (open, critical) = self.open_incident_counts().await?;
        Ok(IncidentCounts {
            open,
            acknowledged: 0,
            critical_unresolved: critical,
        })
    }
}

/// `IncidentFilter { unresolved, .. }` once it exists; until then an
/// unresolved listing reads everything and the caller filters.
pub fn incident_filter(
    unresolved: bool,
    open_only: bool,
    member: Option<String>,
    limit: Option<usize>,
) -> IncidentFilter {
    IncidentFilter {
        open_only,
        member,
        limit: if unresolved { None } else { limit },
    }
}

impl EscalationStore for Store {
    async fn unstarted_escalations(&self, _: usize) -> Result<Vec<Unstarted>, StoreError> {
        todo!("store")
    }
    async fn start_escalation(
        &self,
        _: i64,
        _: &str,
        _: &str,
        _: &str,
        _: DateTime<Utc>,
        _: DateTime<Utc>,
    ) -> Result<bool, StoreError> {
        todo!("store")
    }
    async fn mark_escalation_unstartable(
        &self,
        _: i64,
        _: &str,
        _: DateTime<Utc>,
    ) -> Result<bool, StoreError> {
        todo!("store")
    }
    async fn due_escalations(
        &self,
        _: DateTime<Utc>,
        _: usize,
    ) -> Result<Vec<EscalationRow>, StoreError> {
        todo!("store")
    }
    async fn next_escalation_due(&self) -> Result<Option<DateTime<Utc>>, StoreError> {
        todo!("store")
    }
    async fn escalation(&self, _: i64) -> Result<Option<EscalationRow>, StoreError> {
        Ok(None)
    }
    async fn open_escalations(&self) -> Result<Vec<EscalationRow>, StoreError> {
        Ok(Vec::new())
    }
    async fn write_escalation(&self, _: EscalationWrite) -> Result<bool, StoreError> {
        todo!("store")
    }
    async fn notices(&self, _: i64) -> Result<Vec<Notice>, StoreError> {
        Ok(Vec::new())
    }
    async fn pending_notices(&self, _: DateTime<Utc>, _: usize) -> Result<Vec<Notice>, StoreError> {
        todo!("store")
    }
    async fn settle_notice(
        &self,
        _: i64,
        _: Result<(), (String, Option<DateTime<Utc>>)>,
        _: DateTime<Utc>,
    ) -> Result<(), StoreError> {
        todo!("store")
    }
}
