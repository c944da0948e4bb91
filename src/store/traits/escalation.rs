//! Escalations, as any backend keeps them: one row per incident that
//! follows a policy (the policy pinned as it was when the incident
//! opened, where the sequence stands, when the next notification falls
//! due), and one row per notice sent to a contact on one channel.
//!
//! Every write is one transaction guarded by the row's revision
//! ([`EscalationRow::rev`]): two writers (the daemon's timer and a
//! facilitator's `ACK`, or two daemons) never both apply, and the loser
//! reads again. SMS notices go into the outbox in the same transaction
//! (kind `escalation`, so past quiet hours and caps); email and webhook
//! notices wait in the notices table for the delivery worker.

use std::future::Future;

use chrono::{DateTime, Utc};

use crate::domain::Channel;
use crate::domain::incident::{IncidentState, Severity, Subject};
use crate::domain::message::NewMessage;
use crate::store::StoreError;

/// An incident whose policy has not been started yet (no escalation row):
/// not resolved, with `escalate` set.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Unstarted {
    pub incident_id: i64,
    pub subject: Subject,
    pub(crate) member_id: Option<i64>,
    pub policy: String,
    pub opened_at: DateTime<Utc>,
}

/// One incident's escalation as stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EscalationRow {
    pub incident_id: i64,
    /// The policy's id and version (its fingerprint) when pinned.
    pub policy: String,
    pub version: String,
    /// The pinned policy, JSON ([`crate::escalate::pinned::Pinned`]).
    pub pinned: String,
    /// The position in the policy's sequence of the next notification.
    pub next_position: u64,
    /// When it falls due; `None` while acknowledged, and once the
    /// sequence is exhausted.
    pub next_due: Option<DateTime<Utc>>,
    /// Notification rounds made so far; the next one's number, for
    /// idempotency keys.
    pub seq: u64,
    /// While acknowledged under `resolve_within`: when the
    /// acknowledgement lapses.
    pub lapse_due: Option<DateTime<Utc>>,
    /// The sequence ran out with nobody acknowledging.
    pub exhausted: bool,
    /// Bumped by every write; the guard of the next.
    pub rev: i64,
    pub(crate) started_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    // The incident's own columns, read with it:
    pub state: IncidentState,
    pub alert: String,
    pub severity: Severity,
    pub(crate) subject: Subject,
    pub(crate) member_id: Option<i64>,
    pub(crate) opened_at: DateTime<Utc>,
    /// Who acknowledged (an actor string: `contact:dana`, `api`,
    /// `cli:alex`) and how (`sms`, `api`, `cli`).
    pub acknowledged_by: Option<String>,
    pub acknowledged_at: Option<DateTime<Utc>>,
}

/// What a notice is for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Purpose {
    /// A step's notification: "incident 42 needs someone".
    Page,
    /// "Dana Reyes acknowledged incident 42", to everyone paged before.
    Acknowledged,
    /// `resolve_within` lapsed: to whoever acknowledged.
    Reminder,
    /// The one-line answer to a contact's command (`ACK 42` → "Acknowledged
    /// #42"), or its refusal.
    Confirm,
    /// The member texted again while the incident is unresolved: to
    /// whoever acknowledged it, else to the current step's contacts.
    FollowUp,
}

impl Purpose {
    pub(crate) fn as_str(self) -> &'static str {
        match self {
            Purpose::Page => "page",
            Purpose::Acknowledged => "acknowledged",
            Purpose::Reminder => "reminder",
            Purpose::Confirm => "confirm",
            Purpose::FollowUp => "follow_up",
        }
    }
    pub(crate) fn parse(s: &str) -> Option<Purpose> {
        match s {
            "page" => Some(Purpose::Page),
            "acknowledged" => Some(Purpose::Acknowledged),
            "reminder" => Some(Purpose::Reminder),
            "confirm" => Some(Purpose::Confirm),
            "follow_up" => Some(Purpose::FollowUp),
            _ => None,
        }
    }
}

/// Where a notice is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum NoticeState {
    /// An SMS notice: in the outbox (its state is the outbox row's).
    Queued,
    /// Email or webhook, waiting for (another) attempt.
    Pending,
    Sent,
    /// Gave up (attempts exhausted, or refused for good); `last_error`
    /// says why.
    Failed,
}

impl NoticeState {
    pub fn as_str(self) -> &'static str {
        match self {
            NoticeState::Queued => "queued",
            NoticeState::Pending => "pending",
            NoticeState::Sent => "sent",
            NoticeState::Failed => "failed",
        }
    }
}

/// A notice to write.
#[derive(Debug, Clone)]
pub struct NewNotice {
    pub purpose: Purpose,
    /// The notification round (`EscalationRow::seq` when it was made).
    pub seq: u64,
    /// The step (0-based; the backup step is `steps.len()`) and round,
    /// for pages.
    pub step: Option<u32>,
    pub round: Option<u32>,
    /// Contact id.
    pub contact: String,
    pub channel: Channel,
    /// Email address or webhook URL (for SMS: the number, for the record).
    pub address: String,
    /// Email subject; `None` otherwise.
    pub subject: Option<String>,
    /// Email body, webhook JSON, or the SMS text.
    pub body: String,
    /// For SMS: the outbox message, written in the same transaction
    /// (insert-or-skip on its key); the notice records its id. `None`
    /// for email and webhook (state `pending`, first attempt at `now`).
    pub message: Option<NewMessage>,
}

/// A notice as stored.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Notice {
    pub id: i64,
    pub(crate) incident_id: i64,
    pub purpose: Purpose,
    pub(crate) seq: u64,
    pub(crate) step: Option<u32>,
    pub(crate) round: Option<u32>,
    pub contact: String,
    pub channel: Channel,
    #[serde(skip)]
    pub address: String,
    #[serde(skip)]
    pub subject: Option<String>,
    #[serde(skip)]
    pub(crate) body: String,
    /// For SMS, the outbox row's state (`queued`, `sent`, `delivered`,
    /// `failed`, …) rather than `queued`.
    pub state: String,
    pub outbox_id: Option<i64>,
    pub attempts: u32,
    pub next_attempt: Option<DateTime<Utc>>,
    pub last_error: Option<String>,
    pub(crate) created_at: DateTime<Utc>,
    pub(crate) updated_at: DateTime<Utc>,
}

/// A change of the incident's state, with who and how (audited as
/// `incident.acknowledged`, `.resolved`, `.reopened`, `.escalated`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Transition {
    pub to: IncidentState,
    /// `contact:dana`, `api:<token label>`, `cli:alex`, `system`.
    pub actor: String,
    /// `sms`, `api`, `cli`, `timer`.
    pub how: String,
    /// The audit action (`incident.acknowledged`, `incident.resolved`,
    /// `incident.reopened`: acknowledgement lapsed or `ESC` after an ACK).
    pub action: String,
}

/// One guarded write to an escalation.
#[derive(Debug, Clone)]
pub struct EscalationWrite {
    pub incident_id: i64,
    /// Applies only if the row's `rev` is still this; else nothing is
    /// written and [`EscalationStore::write_escalation`] returns false.
    pub expect_rev: i64,
    pub next_position: u64,
    pub next_due: Option<DateTime<Utc>>,
    pub seq: u64,
    pub lapse_due: Option<DateTime<Utc>>,
    pub exhausted: bool,
    /// Sets the incident's state (and `acknowledged_by/how/at`, or
    /// `resolved_by/how/at`; a move back to `open` clears the
    /// acknowledgement; resolving also clears the row's `next_due` and
    /// `lapse_due`, whatever this write says) and audits it: actor
    /// `actor`, action `action`, detail `{from, to, how}`.
    pub transition: Option<Transition>,
    /// Inserted or ignored on their key (incident, `seq`, contact,
    /// channel, purpose): a notice already written stays as it is, and an
    /// SMS notice's outbox message is written only with a new notice.
    pub notices: Vec<NewNotice>,
    /// Further audit entries `(action, detail)`, subject `incident:<id>`,
    /// actor `system` (e.g. `escalation.paged` with step, round and
    /// contact ids; `escalation.exhausted`). Ids only, never PHI.
    pub audit: Vec<(String, serde_json::Value)>,
    pub now: DateTime<Utc>,
}

pub trait EscalationStore: Send + Sync {
    /// Up to `limit` incidents to start (not resolved, `escalate` set, no
    /// escalation row), oldest first.
    fn unstarted_escalations(
        &self,
        limit: usize,
    ) -> impl Future<Output = Result<Vec<Unstarted>, StoreError>> + Send;

    /// Creates the escalation row (first notification at position 0, due
    /// `first_due`, rev 0) and audits `escalation.started` with policy
    /// and version; false (nothing written) if it exists already.
    fn start_escalation(
        &self,
        incident_id: i64,
        policy: &str,
        version: &str,
        pinned: &str,
        first_due: DateTime<Utc>,
        now: DateTime<Utc>,
    ) -> impl Future<Output = Result<bool, StoreError>> + Send;

    /// Records that an incident's policy could not be started (the policy
    /// is gone from the rules), once: audit `escalation.no_policy`, and an
    /// escalation row with `exhausted` set and an empty pinned policy
    /// (`{}`) so it is not tried again. False if a row exists.
    fn mark_escalation_unstartable(
        &self,
        incident_id: i64,
        policy: &str,
        now: DateTime<Utc>,
    ) -> impl Future<Output = Result<bool, StoreError>> + Send;

    /// Escalations of unresolved incidents with `next_due` or `lapse_due`
    /// at or before `now`, earliest first, up to `limit`.
    fn due_escalations(
        &self,
        now: DateTime<Utc>,
        limit: usize,
    ) -> impl Future<Output = Result<Vec<EscalationRow>, StoreError>> + Send;

    /// The earliest instant anything falls due: an unresolved incident's
    /// `next_due` or `lapse_due`, or a pending notice's `next_attempt`.
    fn next_escalation_due(
        &self,
    ) -> impl Future<Output = Result<Option<DateTime<Utc>>, StoreError>> + Send;

    /// One incident's escalation; `None` when it has none.
    fn escalation(
        &self,
        incident_id: i64,
    ) -> impl Future<Output = Result<Option<EscalationRow>, StoreError>> + Send;

    /// The escalations of every unresolved incident, by incident id (for
    /// `/status`, the API and a contact's bare `ACK`).
    fn open_escalations(
        &self,
    ) -> impl Future<Output = Result<Vec<EscalationRow>, StoreError>> + Send;

    /// Applies `w` in one transaction if the row's rev is still
    /// `w.expect_rev` (then bumps it): the row's new position, due times
    /// and seq, the incident's transition, the notices (SMS ones with
    /// their outbox message), the audit entries. False, and nothing
    /// written, when the rev moved, the row does not exist, or the
    /// incident is already resolved (a resolved incident takes no more
    /// writes).
    fn write_escalation(
        &self,
        w: EscalationWrite,
    ) -> impl Future<Output = Result<bool, StoreError>> + Send;

    /// An incident's notices, oldest first.
    fn notices(
        &self,
        incident_id: i64,
    ) -> impl Future<Output = Result<Vec<Notice>, StoreError>> + Send;

    /// Up to `limit` pending email and webhook notices whose
    /// `next_attempt` is at or before `now`, oldest first.
    fn pending_notices(
        &self,
        now: DateTime<Utc>,
        limit: usize,
    ) -> impl Future<Output = Result<Vec<Notice>, StoreError>> + Send;

    /// Records one delivery attempt of a pending notice: `Ok` marks it
    /// sent; `Err((error, retry_at))` counts the attempt, keeps the error,
    /// and either schedules the next attempt (`Some`) or marks it failed
    /// (`None`, audited as `escalation.notice_failed` with channel and
    /// contact id). A notice no longer pending (settled already) is left
    /// as it is; an unknown id is `StoreError::NotFound`.
    fn settle_notice(
        &self,
        notice_id: i64,
        outcome: Result<(), (String, Option<DateTime<Utc>>)>,
        now: DateTime<Utc>,
    ) -> impl Future<Output = Result<(), StoreError>> + Send;
}
