//! Incidents: hits folded into incidents, evidence, listing.

use chrono::{DateTime, Utc};

use super::Store;
use crate::domain::incident::{AlertHit, Incident, Subject, SubjectIncidents};
use crate::store::StoreError;
use crate::store::traits::IncidentStore;
use crate::store::traits::incident::{HitOutcome, IncidentFilter};

impl IncidentStore for Store {
    async fn record_hits(
        &self,
        hits: Vec<AlertHit>,
        now: DateTime<Utc>,
    ) -> Result<Vec<HitOutcome>, StoreError> {
        todo!("{hits:?} {now}")
    }

    async fn subject_incidents(&self, subject: &Subject) -> Result<SubjectIncidents, StoreError> {
        todo!("{subject:?}")
    }

    async fn incidents(&self, filter: &IncidentFilter) -> Result<Vec<Incident>, StoreError> {
        todo!("{filter:?}")
    }

    async fn incident(&self, id: i64) -> Result<Option<Incident>, StoreError> {
        todo!("{id}")
    }
}
