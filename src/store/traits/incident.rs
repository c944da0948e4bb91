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
    /// Only unresolved ones (open or acknowledged).
    pub unresolved: bool,
    /// Only this member's (external id).
    pub member: Option<String>,
    pub limit: Option<usize>,
}

/// How many incidents are unresolved, for `/status` and `hearth incidents`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize)]
pub struct IncidentCounts {
    /// Open: nobody has acknowledged them yet.
    pub open: u64,
    /// Acknowledged, not yet resolved.
    pub acknowledged: u64,
    /// Critical ones among both.
    pub critical_unresolved: u64,
}

pub trait IncidentStore: Send + Sync {
    /// Records hits (a scheduled alert's; the reply pipeline records its
    /// own through `ReplyStore::apply_reply`), in order, in one
    /// transaction. Each is folded with [`crate::domain::incident::fold`]
    /// against what its subject has open as read inside that transaction
    /// (so a hit sees the ones before it), becomes one evidence row
    /// whatever the decision, and one audit entry (`incident.opened`,
    /// `.joined`, `.realert`; subject `incident:<id>`; alert, severity,
    /// member id, inbound id, never the evidence text).
    fn record_hits(
        &self,
        hits: Vec<AlertHit>,
        now: DateTime<Utc>,
    ) -> impl Future<Output = Result<Vec<HitOutcome>, StoreError>> + Send;

    /// What is unresolved (open or acknowledged) for a subject, and the
    /// newest incident opened per alert (resolved or not): the facts [`crate::domain::incident::fold`]
    /// decides from.
    fn subject_incidents(
        &self,
        subject: &Subject,
    ) -> impl Future<Output = Result<SubjectIncidents, StoreError>> + Send;

    /// Incidents, newest first (by id), each with its evidence oldest
    /// first and its member's external id. An unknown `member` in the
    /// filter matches nothing.
    fn incidents(
        &self,
        filter: &IncidentFilter,
    ) -> impl Future<Output = Result<Vec<Incident>, StoreError>> + Send;

    /// One incident with its evidence; `None` for an unknown id.
    fn incident(
        &self,
        id: i64,
    ) -> impl Future<Output = Result<Option<Incident>, StoreError>> + Send;

    /// How many incidents are open, acknowledged, and critical among
    /// those, in one query.
    fn incident_counts(&self) -> impl Future<Output = Result<IncidentCounts, StoreError>> + Send;
}
