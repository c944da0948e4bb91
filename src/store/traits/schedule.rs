//! What the scheduler keeps: the last processed fire of every schedule,
//! a record of each fire, the recipients of a fan-out, the counts that
//! frequency caps need, and the surveys a fire opened.

use std::collections::HashMap;
use std::future::Future;

use chrono::{DateTime, Utc};

use crate::domain::member::Member;
use crate::store::StoreError;

/// How far a schedule's fires have been processed, under which version.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ScheduleMark {
    pub schedule: String,
    pub version: String,
    /// Every fire at or before this instant has been processed (or
    /// recorded missed).
    pub last_fire: DateTime<Utc>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum FireStatus {
    /// Fan-out began; a restart finishes it (the idempotency keys make
    /// that safe).
    Started,
    Done,
    /// Older than the schedule's `catch_up:` when the daemon got to it.
    Missed,
}

impl FireStatus {
    pub(crate) fn as_str(self) -> &'static str {
        match self {
            FireStatus::Started => "started",
            FireStatus::Done => "done",
            FireStatus::Missed => "missed",
        }
    }
}

/// One fire of one schedule for one scope (`all`, `tz:ZONE`, `group:ID`).
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct FireRecord {
    pub schedule: String,
    pub fire: DateTime<Utc>,
    pub scope: String,
    pub status: FireStatus,
    /// Messages this fire wrote to the outbox (new rows only).
    pub enqueued: u64,
    /// Of those, written suppressed (a frequency cap).
    pub suppressed: u64,
    pub generation: u64,
    pub version: String,
    pub note: Option<String>,
}

/// A survey a scheduled message started: open once that message has gone
/// out, until it expires or the reply pipeline closes it.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct SurveyRun {
    pub id: i64,
    pub member_id: i64,
    pub survey: String,
    pub schedule: Option<String>,
    /// The message carrying the first question.
    pub outbox_id: i64,
    /// Index of the question being asked (0 = the first).
    pub question: u32,
    pub opened_at: DateTime<Utc>,
    pub expires_at: Option<DateTime<Utc>>,
}

/// Which recipients a fan-out page holds. Empty lists do not filter.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RecipientFilter {
    /// Members of at least one of these groups.
    pub groups: Vec<String>,
    /// Members whose timezone is stored as one of these.
    pub timezones: Vec<String>,
}

pub trait ScheduleStore: Send + Sync {
    /// Every schedule's mark.
    fn schedule_marks(&self) -> impl Future<Output = Result<Vec<ScheduleMark>, StoreError>> + Send;

    /// Inserts or replaces one schedule's mark.
    fn set_schedule_mark(
        &self,
        mark: ScheduleMark,
    ) -> impl Future<Output = Result<(), StoreError>> + Send;

    /// Forgets a removed schedule's mark.
    fn remove_schedule_mark(
        &self,
        schedule: &str,
    ) -> impl Future<Output = Result<(), StoreError>> + Send;

    /// Inserts or updates the record of `(schedule, fire, scope)`.
    fn record_fire(
        &self,
        record: FireRecord,
    ) -> impl Future<Output = Result<(), StoreError>> + Send;

    /// The newest fire records (of one schedule), newest first.
    fn fire_records(
        &self,
        schedule: Option<&str>,
        limit: usize,
    ) -> impl Future<Output = Result<Vec<FireRecord>, StoreError>> + Send;

    /// Suppresses, with `reason`, the still-queued messages `schedule`
    /// planned under any version other than `keep_version` (every version
    /// when `None`); returns how many. Messages a provider may already
    /// have (sending, sent, ...) are left alone. One audit entry
    /// (`schedule.cancel`), written only when something was cancelled.
    fn cancel_planned(
        &self,
        schedule: &str,
        keep_version: Option<&str>,
        reason: &str,
    ) -> impl Future<Output = Result<usize, StoreError>> + Send;

    /// Active members with current SMS consent, with groups and
    /// attributes, ordered by id: who a fan-out may reach.
    fn recipients(&self) -> impl Future<Output = Result<Vec<Member>, StoreError>> + Send;

    /// [`ScheduleStore::recipients`] one page at a time: those with an id
    /// above `after` that match `filter`, at most `limit`, in id order (a
    /// fan-out reads the next page while it renders and writes this one).
    fn recipients_page(
        &self,
        filter: &RecipientFilter,
        after: i64,
        limit: usize,
    ) -> impl Future<Output = Result<Vec<Member>, StoreError>> + Send;

    /// The distinct timezones of active members, as stored.
    fn member_zones(&self) -> impl Future<Output = Result<Vec<String>, StoreError>> + Send;

    /// For frequency caps at fan-out: per member, the instants of the
    /// routine (scheduled) messages that count against a cap (queued,
    /// sending, sent, delivered, undelivered) at or after `since`, each
    /// at its send time if sent, else its planned time.
    fn routine_times(
        &self,
        since: DateTime<Utc>,
    ) -> impl Future<Output = Result<HashMap<i64, Vec<DateTime<Utc>>>, StoreError>> + Send;

    /// For frequency caps at the last gate: how many routine messages
    /// the member has been sent (or are being sent) with a send time in
    /// `[from, to)`, not counting message `except`.
    fn routine_sent(
        &self,
        member_id: i64,
        from: DateTime<Utc>,
        to: DateTime<Utc>,
        except: i64,
    ) -> impl Future<Output = Result<u64, StoreError>> + Send;

    /// The member's newest survey whose first message has gone out
    /// (sent or delivered) and that has not expired at `now`.
    fn open_survey(
        &self,
        member_id: i64,
        now: DateTime<Utc>,
    ) -> impl Future<Output = Result<Option<SurveyRun>, StoreError>> + Send;

    /// The distinct `(schedule, fire)` of planned messages still queued,
    /// ordered: what a reload checks against the live rules' fires.
    fn planned_fires(
        &self,
    ) -> impl Future<Output = Result<Vec<(String, DateTime<Utc>)>, StoreError>> + Send;

    /// Suppresses, with `reason`, the still-queued messages of one fire of
    /// one schedule (a session cancelled or moved); returns how many.
    /// Like [`ScheduleStore::cancel_planned`]: through the one transition
    /// rule, one `schedule.cancel` audit entry when any were cancelled.
    fn cancel_planned_fire(
        &self,
        schedule: &str,
        fire: DateTime<Utc>,
        reason: &str,
    ) -> impl Future<Output = Result<usize, StoreError>> + Send;

    /// For reload: the distinct `(schedule, version, count)` of planned
    /// messages still queued, ordered by schedule and version.
    fn planned_versions(
        &self,
    ) -> impl Future<Output = Result<Vec<(String, String, u64)>, StoreError>> + Send;
}
