//! A backend that stores nothing, compiled only in tests: the proof that
//! the store seam holds. It implements every store trait (each method
//! unreachable), and `daemon_and_cli_compile_over_any_backend` builds the
//! daemon, every subsystem and the CLI's store commands over it. A method
//! added to a trait, or a subsystem that reaches past the traits for
//! something only SQLite has, fails this file's compilation.
#![allow(unused_variables)]

use std::collections::HashMap;
use std::sync::Arc;

use chrono::{DateTime, Utc};
use tokio::sync::Notify;

use crate::domain::Phone;
use crate::domain::incident::*;
use crate::domain::member::*;
use crate::domain::message::*;
use crate::store::StoreError;
use crate::store::import::{ImportOptions, ImportReport, ImportRow, RowError};
use crate::store::traits::escalation::*;
use crate::store::traits::incident::*;
use crate::store::traits::outbox::*;
use crate::store::traits::reply::*;
use crate::store::traits::schedule::*;
use crate::store::traits::*;

/// Stores nothing; every method is unreachable.
#[derive(Clone, Default)]
pub(crate) struct Dummy;

impl AuditStore for Dummy {
    async fn audit(
        &self,
        actor: &str,
        action: &str,
        subject: Option<&str>,
        detail: serde_json::Value,
    ) -> Result<i64, StoreError> {
        unreachable!("the dummy backend only proves the seam compiles")
    }
    async fn audit_verify(&self) -> Result<AuditVerified, StoreError> {
        unreachable!("the dummy backend only proves the seam compiles")
    }
    async fn audit_verify_since_checkpoint(&self) -> Result<AuditVerified, StoreError> {
        unreachable!("the dummy backend only proves the seam compiles")
    }
    async fn audit_tail(&self, n: usize) -> Result<Vec<AuditEntry>, StoreError> {
        unreachable!("the dummy backend only proves the seam compiles")
    }
    async fn integrity_check(&self) -> Result<Vec<String>, StoreError> {
        unreachable!("the dummy backend only proves the seam compiles")
    }
}

impl ConsentStore for Dummy {
    async fn record_consent(
        &self,
        external_id: &str,
        action: ConsentAction,
        source: ConsentSource,
        text: &str,
        actor: &str,
    ) -> Result<Recorded, StoreError> {
        unreachable!("the dummy backend only proves the seam compiles")
    }
    async fn consent_history(&self, external_id: &str) -> Result<Vec<ConsentEvent>, StoreError> {
        unreachable!("the dummy backend only proves the seam compiles")
    }
}

impl EscalationStore for Dummy {
    async fn unstarted_escalations(&self, limit: usize) -> Result<Vec<Unstarted>, StoreError> {
        unreachable!("the dummy backend only proves the seam compiles")
    }
    async fn start_escalation(
        &self,
        incident_id: i64,
        policy: &str,
        version: &str,
        pinned: &str,
        first_due: DateTime<Utc>,
        now: DateTime<Utc>,
    ) -> Result<bool, StoreError> {
        unreachable!("the dummy backend only proves the seam compiles")
    }
    async fn mark_escalation_unstartable(
        &self,
        incident_id: i64,
        policy: &str,
        now: DateTime<Utc>,
    ) -> Result<bool, StoreError> {
        unreachable!("the dummy backend only proves the seam compiles")
    }
    async fn due_escalations(
        &self,
        now: DateTime<Utc>,
        limit: usize,
    ) -> Result<Vec<EscalationRow>, StoreError> {
        unreachable!("the dummy backend only proves the seam compiles")
    }
    async fn next_escalation_due(&self) -> Result<Option<DateTime<Utc>>, StoreError> {
        unreachable!("the dummy backend only proves the seam compiles")
    }
    async fn escalation(&self, incident_id: i64) -> Result<Option<EscalationRow>, StoreError> {
        unreachable!("the dummy backend only proves the seam compiles")
    }
    async fn open_escalations(&self) -> Result<Vec<EscalationRow>, StoreError> {
        unreachable!("the dummy backend only proves the seam compiles")
    }
    async fn write_escalation(&self, w: EscalationWrite) -> Result<bool, StoreError> {
        unreachable!("the dummy backend only proves the seam compiles")
    }
    async fn notices(&self, incident_id: i64) -> Result<Vec<Notice>, StoreError> {
        unreachable!("the dummy backend only proves the seam compiles")
    }
    async fn pending_notices(
        &self,
        now: DateTime<Utc>,
        limit: usize,
    ) -> Result<Vec<Notice>, StoreError> {
        unreachable!("the dummy backend only proves the seam compiles")
    }
    async fn settle_notice(
        &self,
        notice_id: i64,
        outcome: Result<(), (String, Option<DateTime<Utc>>)>,
        now: DateTime<Utc>,
    ) -> Result<(), StoreError> {
        unreachable!("the dummy backend only proves the seam compiles")
    }
}

impl InboundStore for Dummy {
    async fn record_inbound(&self, sms: InboundSms) -> Result<Received, StoreError> {
        unreachable!("the dummy backend only proves the seam compiles")
    }
    async fn unprocessed_after(
        &self,
        after: i64,
        limit: usize,
    ) -> Result<Vec<InboundRow>, StoreError> {
        unreachable!("the dummy backend only proves the seam compiles")
    }
    async fn mark_inbound_processed(&self, id: i64, outcome: &str) -> Result<(), StoreError> {
        unreachable!("the dummy backend only proves the seam compiles")
    }
    async fn inbound(&self, id: i64) -> Result<Option<InboundRow>, StoreError> {
        unreachable!("the dummy backend only proves the seam compiles")
    }
    async fn inbound_texts(
        &self,
        limit: usize,
    ) -> Result<Vec<(InboundRow, Option<String>)>, StoreError> {
        unreachable!("the dummy backend only proves the seam compiles")
    }
}

impl IncidentStore for Dummy {
    async fn record_hits(
        &self,
        hits: Vec<AlertHit>,
        now: DateTime<Utc>,
    ) -> Result<Vec<HitOutcome>, StoreError> {
        unreachable!("the dummy backend only proves the seam compiles")
    }
    async fn subject_incidents(&self, subject: &Subject) -> Result<SubjectIncidents, StoreError> {
        unreachable!("the dummy backend only proves the seam compiles")
    }
    async fn incidents(&self, filter: &IncidentFilter) -> Result<Vec<Incident>, StoreError> {
        unreachable!("the dummy backend only proves the seam compiles")
    }
    async fn incident(&self, id: i64) -> Result<Option<Incident>, StoreError> {
        unreachable!("the dummy backend only proves the seam compiles")
    }
    async fn incident_counts(&self) -> Result<IncidentCounts, StoreError> {
        unreachable!("the dummy backend only proves the seam compiles")
    }
}

impl MemberStore for Dummy {
    async fn member(&self, external_id: &str) -> Result<Option<Member>, StoreError> {
        unreachable!("the dummy backend only proves the seam compiles")
    }
    async fn member_by_phone(&self, phone: &Phone) -> Result<Option<Member>, StoreError> {
        unreachable!("the dummy backend only proves the seam compiles")
    }
    async fn members(&self, group: Option<&str>) -> Result<Vec<Member>, StoreError> {
        unreachable!("the dummy backend only proves the seam compiles")
    }
    async fn sendable_member_ids(&self) -> Result<Vec<i64>, StoreError> {
        unreachable!("the dummy backend only proves the seam compiles")
    }
    async fn deactivate(&self, external_id: &str, actor: &str) -> Result<bool, StoreError> {
        unreachable!("the dummy backend only proves the seam compiles")
    }
    async fn import_members(
        &self,
        rows: Vec<ImportRow>,
        invalid: Vec<RowError>,
        opts: ImportOptions,
    ) -> Result<ImportReport, StoreError> {
        unreachable!("the dummy backend only proves the seam compiles")
    }
}

impl OutboxStore for Dummy {
    fn enqueued(&self) -> Arc<Notify> {
        Arc::new(Notify::new())
    }
    async fn enqueue(&self, m: NewMessage) -> Result<Enqueued, StoreError> {
        unreachable!("the dummy backend only proves the seam compiles")
    }
    async fn enqueue_audited(
        &self,
        m: NewMessage,
        actor: &str,
        action: &str,
        detail: serde_json::Value,
    ) -> Result<Enqueued, StoreError> {
        unreachable!("the dummy backend only proves the seam compiles")
    }
    async fn enqueue_batch(&self, batch: Vec<NewMessage>) -> Result<usize, StoreError> {
        unreachable!("the dummy backend only proves the seam compiles")
    }
    async fn claim(
        &self,
        holder: &InstanceId,
        now: DateTime<Utc>,
        lease_for: chrono::TimeDelta,
    ) -> Result<Option<ClaimedMessage>, StoreError> {
        unreachable!("the dummy backend only proves the seam compiles")
    }
    async fn claim_of_kinds(
        &self,
        holder: &InstanceId,
        now: DateTime<Utc>,
        lease_for: chrono::TimeDelta,
        kinds: &[Kind],
    ) -> Result<Option<ClaimedMessage>, StoreError> {
        unreachable!("the dummy backend only proves the seam compiles")
    }
    async fn renew(
        &self,
        lease: &Lease,
        until: DateTime<Utc>,
    ) -> Result<Option<Lease>, StoreError> {
        unreachable!("the dummy backend only proves the seam compiles")
    }
    async fn settle_claim(&self, lease: &Lease, outcome: Outcome) -> Result<Settled, StoreError> {
        unreachable!("the dummy backend only proves the seam compiles")
    }
    async fn release_own_claims(&self, holder: &InstanceId) -> Result<usize, StoreError> {
        unreachable!("the dummy backend only proves the seam compiles")
    }
    async fn expire_leases(&self, now: DateTime<Utc>) -> Result<usize, StoreError> {
        unreachable!("the dummy backend only proves the seam compiles")
    }
    async fn apply_report(
        &self,
        target: ReportFor,
        report: Report,
        detail: Option<String>,
    ) -> Result<Option<OutState>, StoreError> {
        unreachable!("the dummy backend only proves the seam compiles")
    }
    async fn next_due(&self) -> Result<Option<DateTime<Utc>>, StoreError> {
        unreachable!("the dummy backend only proves the seam compiles")
    }
    async fn list_messages(&self, filter: ListFilter) -> Result<Vec<OutboxMessage>, StoreError> {
        unreachable!("the dummy backend only proves the seam compiles")
    }
    async fn message(&self, id: i64) -> Result<Option<OutboxMessage>, StoreError> {
        unreachable!("the dummy backend only proves the seam compiles")
    }
    async fn retry(&self, filter: RetryFilter, actor: &str) -> Result<usize, StoreError> {
        unreachable!("the dummy backend only proves the seam compiles")
    }
    async fn cancel(&self, id: i64, actor: &str) -> Result<(), StoreError> {
        unreachable!("the dummy backend only proves the seam compiles")
    }
}

impl ReplyStore for Dummy {
    async fn reply_facts(
        &self,
        row: &InboundRow,
        now: DateTime<Utc>,
    ) -> Result<ReplyFacts, StoreError> {
        unreachable!("the dummy backend only proves the seam compiles")
    }
    async fn apply_reply(&self, effects: ReplyEffects) -> Result<Applied, StoreError> {
        unreachable!("the dummy backend only proves the seam compiles")
    }
    async fn waiting_runs(&self, after: i64, limit: usize) -> Result<Vec<WaitingRun>, StoreError> {
        unreachable!("the dummy backend only proves the seam compiles")
    }
    async fn remind_run(&self, run_id: i64, message: NewMessage) -> Result<bool, StoreError> {
        unreachable!("the dummy backend only proves the seam compiles")
    }
    async fn expire_runs(&self, now: DateTime<Utc>) -> Result<u64, StoreError> {
        unreachable!("the dummy backend only proves the seam compiles")
    }
    async fn member_history(
        &self,
        member_id: i64,
        now: DateTime<Utc>,
    ) -> Result<(Vec<PastAnswer>, Engagement), StoreError> {
        unreachable!("the dummy backend only proves the seam compiles")
    }
    async fn run_answers(&self, run_id: i64) -> Result<Vec<AnswerRecord>, StoreError> {
        unreachable!("the dummy backend only proves the seam compiles")
    }
}

impl ScheduleStore for Dummy {
    async fn schedule_marks(&self) -> Result<Vec<ScheduleMark>, StoreError> {
        unreachable!("the dummy backend only proves the seam compiles")
    }
    async fn set_schedule_mark(&self, mark: ScheduleMark) -> Result<(), StoreError> {
        unreachable!("the dummy backend only proves the seam compiles")
    }
    async fn remove_schedule_mark(&self, schedule: &str) -> Result<(), StoreError> {
        unreachable!("the dummy backend only proves the seam compiles")
    }
    async fn record_fire(&self, record: FireRecord) -> Result<(), StoreError> {
        unreachable!("the dummy backend only proves the seam compiles")
    }
    async fn fire_records(
        &self,
        schedule: Option<&str>,
        limit: usize,
    ) -> Result<Vec<FireRecord>, StoreError> {
        unreachable!("the dummy backend only proves the seam compiles")
    }
    async fn cancel_planned(
        &self,
        schedule: &str,
        keep_version: Option<&str>,
        reason: &str,
    ) -> Result<usize, StoreError> {
        unreachable!("the dummy backend only proves the seam compiles")
    }
    async fn recipients(&self) -> Result<Vec<Member>, StoreError> {
        unreachable!("the dummy backend only proves the seam compiles")
    }
    async fn recipients_page(
        &self,
        filter: &RecipientFilter,
        after: i64,
        limit: usize,
    ) -> Result<Vec<Member>, StoreError> {
        unreachable!("the dummy backend only proves the seam compiles")
    }
    async fn member_zones(&self) -> Result<Vec<String>, StoreError> {
        unreachable!("the dummy backend only proves the seam compiles")
    }
    async fn routine_times(
        &self,
        since: DateTime<Utc>,
    ) -> Result<HashMap<i64, Vec<DateTime<Utc>>>, StoreError> {
        unreachable!("the dummy backend only proves the seam compiles")
    }
    async fn routine_sent(
        &self,
        member_id: i64,
        from: DateTime<Utc>,
        to: DateTime<Utc>,
        except: i64,
    ) -> Result<u64, StoreError> {
        unreachable!("the dummy backend only proves the seam compiles")
    }
    async fn open_survey(
        &self,
        member_id: i64,
        now: DateTime<Utc>,
    ) -> Result<Option<SurveyRun>, StoreError> {
        unreachable!("the dummy backend only proves the seam compiles")
    }
    async fn planned_fires(&self) -> Result<Vec<(String, DateTime<Utc>)>, StoreError> {
        unreachable!("the dummy backend only proves the seam compiles")
    }
    async fn cancel_planned_fire(
        &self,
        schedule: &str,
        fire: DateTime<Utc>,
        reason: &str,
    ) -> Result<usize, StoreError> {
        unreachable!("the dummy backend only proves the seam compiles")
    }
    async fn planned_versions(&self) -> Result<Vec<(String, String, u64)>, StoreError> {
        unreachable!("the dummy backend only proves the seam compiles")
    }
}

/// Never called: compiling it builds the daemon (every subsystem,
/// spawned as the daemon spawns them) over [`Dummy`].
#[allow(dead_code)]
async fn daemon_over_any_backend(
    settings: crate::settings::Settings,
    shutdown: tokio_util::sync::CancellationToken,
) -> anyhow::Result<()> {
    let app = crate::daemon::App::assemble(settings, Dummy).await?;
    tokio::spawn(app.run_until_stopped(shutdown)).await?
}
