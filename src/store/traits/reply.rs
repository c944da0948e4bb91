//! The reply pipeline's store: what it reads about a text's sender before
//! deciding, and the one transaction that applies the decision.
//!
//! Reading and deciding write nothing, so a crash before
//! [`ReplyStore::apply_reply`] commits leaves the text queued and it is
//! decided again from scratch; the replies' idempotency keys
//! (`reply:<inbound id>:<purpose>`) make a second apply of the same
//! decision change nothing.

use std::collections::BTreeMap;
use std::future::Future;

use chrono::{DateTime, Utc};

use crate::domain::incident::AlertHit;
use crate::domain::member::{ConsentAction, Member};
use crate::domain::message::{Enqueued, InboundRow, NewMessage};
use crate::store::StoreError;
use crate::store::traits::incident::HitOutcome;
use crate::store::traits::schedule::SurveyRun;

/// Everything the pipeline needs to know about a text's sender.
#[derive(Debug, Clone, Default)]
pub struct ReplyFacts {
    /// The member whose number sent it (by the row's member id, else by
    /// the number as it is now), active or not. A sender that is not a
    /// phone number (a short code, an alphanumeric id) is unknown.
    pub member: Option<Member>,
    /// The contact (facilitator) id whose number sent it, when no member's.
    /// Contacts live in the rules, not the store: the store leaves this
    /// `None` and the handler fills it in.
    pub contact: Option<String>,
    /// The member's open survey (as `ScheduleStore::open_survey`: its
    /// first message sent or delivered, open, not expired at `now`), with
    /// its answers so far.
    pub survey: Option<OpenSurvey>,
    /// The member's earlier answers: the newest [`HISTORY_PER_QUESTION`]
    /// per survey and question, answered by `now`, oldest first.
    pub history: Vec<PastAnswer>,
    pub engagement: Engagement,
    /// The sender's oldest unresolved critical incident (the member's, or
    /// for a number that is no member's, the number's): further texts are
    /// follow-ups on it.
    pub(crate) open_critical: Option<OpenCritical>,
}

/// An unresolved critical incident a text may follow up on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OpenCritical {
    pub(crate) incident: i64,
    /// Someone has acknowledged it.
    pub(crate) acknowledged: bool,
    /// When the sender was last sent the follow-up reply about it.
    pub(crate) last_reply_at: Option<DateTime<Utc>>,
}

/// A text that follows up on an unresolved critical incident.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FollowUp {
    pub(crate) incident: i64,
    /// Kept on the incident as `follow_up` evidence with this text; `None`
    /// when a hit of the same text already puts it there (a crisis match
    /// joins the incident).
    pub(crate) evidence: Option<String>,
    /// The idempotency key of the follow-up reply queued with it, if one
    /// was (at most one an hour per incident).
    pub(crate) reply_key: Option<String>,
}

/// How many earlier answers per question the history holds.
pub(crate) const HISTORY_PER_QUESTION: usize = 10;

#[derive(Debug, Clone, PartialEq)]
pub struct OpenSurvey {
    pub run: SurveyRun,
    /// Answers given in this run, by question id (as JSON values:
    /// numbers, strings, booleans).
    pub answers: BTreeMap<String, serde_json::Value>,
    /// Re-prompts already sent for the current question.
    pub reprompts: u32,
}

#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct PastAnswer {
    pub survey: String,
    pub question: String,
    pub value: serde_json::Value,
    pub at: DateTime<Utc>,
}

/// Engagement counts scripts may read.
#[derive(Debug, Clone, Default, PartialEq, serde::Serialize)]
pub struct Engagement {
    /// Days (fractional) from the member's previous text (before this
    /// one) to `now`; `None` if this is their first.
    pub days_since_last_reply: Option<f64>,
    /// Surveys sent to the member in a row, newest back, that got no
    /// answer: runs whose first message went out with no answer recorded,
    /// open (the one this text may answer included) or closed `expired` or
    /// `gave_up`, counted up to the first run with an answer.
    pub unanswered_in_a_row: u32,
    /// Texts from the member in the last 30 days, this one included.
    pub replies_30d: u32,
}

/// A change of consent from a keyword.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConsentChange {
    pub external_id: String,
    pub action: ConsentAction,
    /// The text that carried it (the ledger keeps it).
    pub text: String,
}

/// How a survey run moves on.
#[derive(Debug, Clone, PartialEq)]
pub struct SurveyUpdate {
    pub run_id: i64,
    /// The answer given to the current question, validated.
    pub answer: Option<AnswerRecord>,
    /// The question asked next (index), when the run stays open.
    pub question: u32,
    /// Re-prompts sent for `question` so far (0 after a valid answer).
    pub reprompts: u32,
    /// Closes the run with this state.
    pub close: Option<SurveyClose>,
    /// The run's score once complete: `{"total": 14, "band": "moderate"}`.
    pub score: Option<serde_json::Value>,
    /// The idempotency key of the message in [`ReplyEffects::messages`]
    /// that asks `question` (the next question or its re-prompt): the run
    /// remembers it as the message a reminder and `asked_at` follow. When
    /// the survey part is skipped (the run closed meanwhile), this message
    /// is not queued either.
    pub ask_key: Option<String>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct AnswerRecord {
    pub question: String,
    /// The question's index in the survey.
    pub position: u32,
    pub value: serde_json::Value,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum SurveyClose {
    /// Every question answered.
    Completed,
    /// Re-prompted `max_reprompts` times without a valid answer.
    GaveUp,
    /// The member opted out (STOP) mid-survey.
    Stopped,
    /// Past `expires_after` (housekeeping).
    Expired,
}

impl SurveyClose {
    pub(crate) fn as_str(self) -> &'static str {
        match self {
            SurveyClose::Completed => "completed",
            SurveyClose::GaveUp => "gave_up",
            SurveyClose::Stopped => "stopped",
            SurveyClose::Expired => "expired",
        }
    }
}

/// Everything one text's decision writes, in one transaction.
#[derive(Debug, Clone)]
pub struct ReplyEffects {
    pub inbound_id: i64,
    /// The inbound row's outcome (`crisis`, `stop`, `answer`, `unknown
    /// sender`, …); marks it processed.
    pub outcome: String,
    /// Applied first, so messages below are judged against it.
    pub consent: Option<ConsentChange>,
    pub survey: Option<SurveyUpdate>,
    /// Insert-or-skip on their keys.
    pub messages: Vec<NewMessage>,
    /// Folded into incidents, in order.
    pub hits: Vec<AlertHit>,
    /// A follow-up on an unresolved critical incident: its evidence, kept
    /// only while the incident is unresolved.
    pub follow_up: Option<FollowUp>,
    pub now: DateTime<Utc>,
}

#[derive(Debug, Clone)]
pub struct Applied {
    pub messages: Vec<Enqueued>,
    pub hits: Vec<HitOutcome>,
    /// `Unchanged` when the consent change changed nothing (already so).
    pub consent: Option<crate::domain::member::Recorded>,
    /// The incident a follow-up was applied to (still unresolved), to be
    /// forwarded to a person.
    pub(crate) follow_up: Option<i64>,
}

/// A survey run waiting for an answer, for reminders and expiry.
#[derive(Debug, Clone, PartialEq)]
pub struct WaitingRun {
    pub run: SurveyRun,
    /// The member it is for.
    pub(crate) member: Member,
    /// When the message asking the current question went out (sent), if
    /// it has.
    pub asked_at: Option<DateTime<Utc>>,
    pub reminded: bool,
}

pub trait ReplyStore: Send + Sync {
    /// Reads the facts about `row`'s sender at `now`. Writes nothing.
    fn reply_facts(
        &self,
        row: &InboundRow,
        now: DateTime<Utc>,
    ) -> impl Future<Output = Result<ReplyFacts, StoreError>> + Send;

    /// Applies a decision and marks the text processed, all or nothing,
    /// in one transaction: the consent change (the ledger's own rules;
    /// source `keyword`, actor `member`), the messages (insert-or-skip on
    /// their keys), the survey update, the hits (as
    /// [`IncidentStore::record_hits`](crate::store::traits::IncidentStore::record_hits)
    /// folds them; a hit's `reply_key` is kept on its evidence). A text
    /// already processed changes nothing and returns an empty `Applied`;
    /// an unknown inbound id is `NotFound`. The survey update is skipped
    /// (and the rest applied) if the run is no longer open or has moved
    /// past the question answered; the message named by its `ask_key` is
    /// then not queued either.
    fn apply_reply(
        &self,
        effects: ReplyEffects,
    ) -> impl Future<Output = Result<Applied, StoreError>> + Send;

    /// Up to `limit` open runs with an id above `after`, whose asking
    /// message (the current question's, else the first) has gone out (sent
    /// or delivered), by id, with when it went out and whether this
    /// question was reminded. Page with the last id seen; start from 0.
    fn waiting_runs(
        &self,
        after: i64,
        limit: usize,
    ) -> impl Future<Output = Result<Vec<WaitingRun>, StoreError>> + Send;

    /// Enqueues a reminder for a run and marks it reminded, once; false
    /// (and nothing enqueued) when it was reminded already or is closed.
    fn remind_run(
        &self,
        run_id: i64,
        message: NewMessage,
    ) -> impl Future<Output = Result<bool, StoreError>> + Send;

    /// Closes open runs past their expiry at `now` (state and reason
    /// `expired`); how many.
    fn expire_runs(
        &self,
        now: DateTime<Utc>,
    ) -> impl Future<Output = Result<u64, StoreError>> + Send;

    /// A member's earlier answers (the newest [`HISTORY_PER_QUESTION`] per
    /// question, oldest first) and engagement at `now`: what a scheduled
    /// alert reads.
    fn member_history(
        &self,
        member_id: i64,
        now: DateTime<Utc>,
    ) -> impl Future<Output = Result<(Vec<PastAnswer>, Engagement), StoreError>> + Send;

    /// A survey run's recorded answers, by question id, in question order.
    fn run_answers(
        &self,
        run_id: i64,
    ) -> impl Future<Output = Result<Vec<AnswerRecord>, StoreError>> + Send;
}
