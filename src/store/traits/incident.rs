//! Incidents, as any backend keeps them: hits recorded and folded into
//! incidents ([`crate::domain::incident::fold`]) in one transaction, every
//! hit kept as evidence and audited.

use std::future::Future;

use chrono::{DateTime, Utc};

use crate::domain::incident::{AlertHit, HitDecision, Incident, Subject, SubjectIncidents};
use crate::store::StoreError;

/// What recording one hit did.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
pub struct HitOutcome {
    pub decision: HitDecision,
    /// The incident it opened or was added to.
    pub incident: i64,
}

/// Which incidents a listing holds.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct IncidentFilter {
    /// Only open (not acknowledged or resolved) ones.
    pub open_only: bool,
    /// Only this member's (external id).
    pub member: Option<String>,
    pub limit: Option<usize>,
}

pub trait IncidentStore: Send + Sync {
    /// Records hits (a scheduled alert's; the reply pipeline records its
    /// own through `ReplyStore::apply_reply`), each folded against what
    /// its subject has open, in one transaction, audited.
    fn record_hits(
        &self,
        hits: Vec<AlertHit>,
        now: DateTime<Utc>,
    ) -> impl Future<Output = Result<Vec<HitOutcome>, StoreError>> + Send;

    /// What is open or lately opened for a subject.
    fn subject_incidents(
        &self,
        subject: &Subject,
    ) -> impl Future<Output = Result<SubjectIncidents, StoreError>> + Send;

    /// Incidents, newest first, with their evidence.
    fn incidents(
        &self,
        filter: &IncidentFilter,
    ) -> impl Future<Output = Result<Vec<Incident>, StoreError>> + Send;

    fn incident(
        &self,
        id: i64,
    ) -> impl Future<Output = Result<Option<Incident>, StoreError>> + Send;
}
