//! Messages in and out: kinds, states and the one transition rule,
//! idempotency keys, a new outbound message, an inbound text, delivery
//! reports.
//!
//! No I/O and no SQL here: the store converts these to and from rows.

use std::fmt;

use chrono::{DateTime, SecondsFormat, Utc};

use super::{Invalid, Phone};

/// What kind of message, which fixes its priority and which gates apply.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Kind {
    /// Crisis resources: first, exempt from consent and quiet hours.
    Crisis,
    /// STOP/START/HELP answers: exempt from consent and quiet hours.
    Compliance,
    /// Facilitators' escalation notices: exempt from quiet hours.
    Escalation,
    /// A reply to a member's text (survey follow-ups).
    Reply,
    /// Scheduled reminders, check-ins, surveys.
    Scheduled,
    /// Sent by staff with `hearth send`.
    Staff,
}

impl Kind {
    pub(crate) const ALL: [Kind; 6] = [
        Kind::Crisis,
        Kind::Compliance,
        Kind::Escalation,
        Kind::Reply,
        Kind::Scheduled,
        Kind::Staff,
    ];

    /// The kinds exempt from quiet hours and consent, which a dispatcher
    /// sends in their own lane.
    pub const URGENT: [Kind; 3] = [Kind::Crisis, Kind::Compliance, Kind::Escalation];

    pub(crate) fn as_str(self) -> &'static str {
        match self {
            Kind::Crisis => "crisis",
            Kind::Compliance => "compliance",
            Kind::Escalation => "escalation",
            Kind::Reply => "reply",
            Kind::Scheduled => "scheduled",
            Kind::Staff => "staff",
        }
    }

    pub(crate) fn parse(s: &str) -> Option<Kind> {
        Kind::ALL.into_iter().find(|k| k.as_str() == s)
    }

    /// Lower goes first: crisis > compliance > escalation > replies > the rest.
    pub(crate) fn priority(self) -> i64 {
        match self {
            Kind::Crisis => 0,
            Kind::Compliance => 1,
            Kind::Escalation => 2,
            Kind::Reply => 3,
            Kind::Staff => 4,
            Kind::Scheduled => 5,
        }
    }

    /// Sent even without current consent (a STOP confirmation, crisis
    /// resources in answer to the person's own text).
    pub(crate) fn exempt_from_consent(self) -> bool {
        matches!(self, Kind::Crisis | Kind::Compliance | Kind::Escalation)
    }

    /// Sent even in the recipient's quiet hours.
    pub(crate) fn exempt_from_quiet_hours(self) -> bool {
        matches!(self, Kind::Crisis | Kind::Compliance | Kind::Escalation)
    }
}

impl fmt::Display for Kind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Where an outbound message stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum OutState {
    Queued,
    /// Claimed under a lease; the provider may be being called.
    Sending,
    /// The provider accepted it.
    Sent,
    Delivered,
    Undelivered,
    Failed,
    /// Its moment passed before it could go (`expires_after`).
    Expired,
    /// The last gate stopped it (no consent, inactive, cancelled).
    Suppressed,
}

impl OutState {
    pub(crate) const ALL: [OutState; 8] = [
        OutState::Queued,
        OutState::Sending,
        OutState::Sent,
        OutState::Delivered,
        OutState::Undelivered,
        OutState::Failed,
        OutState::Expired,
        OutState::Suppressed,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            OutState::Queued => "queued",
            OutState::Sending => "sending",
            OutState::Sent => "sent",
            OutState::Delivered => "delivered",
            OutState::Undelivered => "undelivered",
            OutState::Failed => "failed",
            OutState::Expired => "expired",
            OutState::Suppressed => "suppressed",
        }
    }

    pub(crate) fn parse(s: &str) -> Option<OutState> {
        OutState::ALL.into_iter().find(|k| k.as_str() == s)
    }

    /// The state names, for hints.
    pub(crate) fn names() -> String {
        OutState::ALL.map(OutState::as_str).join(", ")
    }

    /// How far along a message is.
    pub(crate) fn rank(self) -> u8 {
        match self {
            OutState::Queued => 0,
            OutState::Sending => 1,
            OutState::Sent => 2,
            OutState::Delivered
            | OutState::Undelivered
            | OutState::Failed
            | OutState::Expired
            | OutState::Suppressed => 3,
        }
    }

    /// The one transition rule: may a message in `self` move to `to`?
    /// Every state change the store makes is checked against it.
    ///
    /// Forward moves only, with two ways back to `queued`:
    /// - `sending → queued`: an automatic retry, a deferral, or a lease
    ///   that lapsed (the row is then marked "possibly sent");
    /// - `failed | undelivered | expired | suppressed → queued`: staff's
    ///   `outbox retry`.
    ///
    /// `sent` and `delivered` never go back. `queued → sent | delivered |
    /// undelivered | failed` record evidence that arrived after a lease
    /// lapsed (the send's own answer, or a delivery report): the message
    /// went out, so it must not be sent again.
    pub fn may_move(self, to: OutState) -> bool {
        use OutState::*;
        matches!(
            (self, to),
            (
                Queued,
                Sending | Sent | Delivered | Undelivered | Failed | Expired | Suppressed
            ) | (
                Sending,
                Queued | Sent | Delivered | Undelivered | Failed | Expired | Suppressed
            ) | (Sent, Delivered | Undelivered | Failed)
                | (Failed | Undelivered | Expired | Suppressed, Queued)
        )
    }

    /// Finished and not held by anyone, but staff may queue it again.
    pub(crate) fn retryable(self) -> bool {
        self != OutState::Sending && self.may_move(OutState::Queued)
    }
}

impl fmt::Display for OutState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// What makes a message unique: a second message with the same key is
/// skipped, so a retried fan-out, reply or command never texts twice.
///
/// Built only by the named constructors (or read back from the store);
/// each part is escaped, so two different inputs never make one key.
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct IdempotencyKey(String);

/// Escapes `%` and `:` so the parts of a key cannot run into each other.
fn part(s: &str) -> String {
    s.replace('%', "%25").replace(':', "%3A")
}

fn instant(t: DateTime<Utc>) -> String {
    t.to_rfc3339_opts(SecondsFormat::Secs, true)
}

impl IdempotencyKey {
    /// One scheduled fire for one member:
    /// `schedule:<schedule>:<fire instant, UTC>:member:<member id>`.
    pub fn scheduled(schedule: &str, fire: DateTime<Utc>, member_id: i64) -> IdempotencyKey {
        IdempotencyKey(format!(
            "schedule:{}:{}:member:{member_id}",
            part(schedule),
            instant(fire)
        ))
    }

    /// A reply to one inbound text, for one purpose (`crisis`, `stop`,
    /// `survey:mood-checkin:2`, …): `reply:<inbound id>:<purpose>`.
    pub fn reply(inbound_id: i64, purpose: &str) -> IdempotencyKey {
        IdempotencyKey(format!("reply:{inbound_id}:{}", part(purpose)))
    }

    /// The one reminder (`remind_after:`) of a survey run's question, by
    /// its index: `survey-reminder:<run id>:<question index>`.
    pub(crate) fn survey_reminder(run_id: i64, question: u32) -> IdempotencyKey {
        IdempotencyKey(format!("survey-reminder:{run_id}:{question}"))
    }

    /// One escalation notice to a contact: incident, the escalation's
    /// notification number, purpose and contact:
    /// `escalation:<incident>:<seq>:<purpose>:<contact>`.
    pub(crate) fn escalation(
        incident: i64,
        seq: u64,
        purpose: &str,
        contact: &str,
    ) -> IdempotencyKey {
        IdempotencyKey(format!(
            "escalation:{incident}:{seq}:{}:{}",
            part(purpose),
            part(contact)
        ))
    }

    /// A staff message: the caller's own key (so a script can retry
    /// safely), else a fresh random one (every call is a new message).
    pub fn staff(caller_key: Option<&str>) -> Result<IdempotencyKey, Invalid> {
        match caller_key {
            Some(k) => {
                if k.trim().is_empty() {
                    return Err(Invalid::new("an idempotency key cannot be empty"));
                }
                if k.len() > 200 || k.chars().any(char::is_control) {
                    return Err(Invalid::new(format!(
                        "idempotency key `{}` is not usable: at most 200 characters, no control characters",
                        k.escape_debug()
                    )));
                }
                Ok(IdempotencyKey(format!("staff:key:{}", part(k))))
            }
            None => {
                let mut bytes = [0u8; 16];
                getrandom::fill(&mut bytes).map_err(|e| {
                    Invalid::new(format!("no randomness for an idempotency key: {e}"))
                })?;
                Ok(IdempotencyKey(format!(
                    "staff:random:{}",
                    hex::encode(bytes)
                )))
            }
        }
    }

    /// A key as stored (reading a row back).
    pub(crate) fn from_stored(s: String) -> IdempotencyKey {
        IdempotencyKey(s)
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// A key already formed elsewhere (tests, a key read back). New code uses
/// the named constructors.
impl From<&str> for IdempotencyKey {
    fn from(s: &str) -> IdempotencyKey {
        IdempotencyKey(s.to_owned())
    }
}

impl From<String> for IdempotencyKey {
    fn from(s: String) -> IdempotencyKey {
        IdempotencyKey(s)
    }
}

impl fmt::Display for IdempotencyKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl fmt::Debug for IdempotencyKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "IdempotencyKey({:?})", self.0)
    }
}

impl serde::Serialize for IdempotencyKey {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.0)
    }
}

/// A message to put in the outbox.
#[derive(Clone)]
pub struct NewMessage {
    pub idempotency_key: IdempotencyKey,
    /// The member it goes to; `None` for a contact or an unknown sender.
    pub member_id: Option<i64>,
    /// The number, when it does not go to a member.
    pub to: Option<Phone>,
    pub body: String,
    pub kind: Kind,
    pub not_before: DateTime<Utc>,
    pub expires_at: Option<DateTime<Utc>>,
    /// The schedule fire that planned it (scheduled messages only).
    pub plan: Option<Plan>,
    /// Written already suppressed, with this reason (a frequency cap at
    /// fan-out): on record, never sent.
    pub suppressed: Option<String>,
}

/// Which schedule fire planned a message, under which rules.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Plan {
    pub schedule: String,
    /// The fire instant (the one in the idempotency key).
    pub fire: DateTime<Utc>,
    /// The rule-set generation that was live at the fire.
    pub generation: u64,
    /// The schedule's version (a fingerprint of its definition and what it
    /// depends on): a reload that changes it cancels what it queued.
    pub version: String,
    /// The survey the message starts (it carries the first question).
    pub survey: Option<SurveyStart>,
}

/// A survey a scheduled message opens.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct SurveyStart {
    pub survey: String,
    /// When it stops accepting answers (the survey's `expires_after`
    /// from the planned send time).
    pub expires_at: DateTime<Utc>,
}

impl fmt::Debug for NewMessage {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("NewMessage")
            .field("idempotency_key", &self.idempotency_key)
            .field("member_id", &self.member_id)
            .field("kind", &self.kind)
            .finish_non_exhaustive()
    }
}

/// One outbox message as stored.
#[derive(Clone, serde::Serialize)]
pub struct OutboxMessage {
    pub id: i64,
    pub idempotency_key: IdempotencyKey,
    pub member_id: Option<i64>,
    /// The member's external id (what staff know them by).
    pub member_external_id: Option<String>,
    pub kind: Kind,
    pub state: OutState,
    pub reason: Option<String>,
    /// Provider calls made (deferrals do not count).
    pub attempts: i64,
    pub(crate) segments: i64,
    pub not_before: DateTime<Utc>,
    pub next_attempt_at: DateTime<Utc>,
    pub expires_at: Option<DateTime<Utc>>,
    pub provider: Option<String>,
    pub provider_message_id: Option<String>,
    /// A lease on it lapsed while it was being sent: the provider may
    /// have it already (reconcile before sending again where possible).
    pub possibly_sent: bool,
    /// Who holds (or last held) a claim on it.
    pub(crate) claimed_by: Option<String>,
    pub(crate) lease_until: Option<DateTime<Utc>>,
    pub(crate) created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    #[serde(skip)]
    pub body: String,
    /// The schedule fire that planned it, if a schedule did (its survey
    /// read back from the survey it opened).
    pub plan: Option<Plan>,
}

impl fmt::Debug for OutboxMessage {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("OutboxMessage")
            .field("id", &self.id)
            .field("member_id", &self.member_id)
            .field("kind", &self.kind)
            .field("state", &self.state)
            .field("reason", &self.reason)
            .field("attempts", &self.attempts)
            .field("possibly_sent", &self.possibly_sent)
            .finish_non_exhaustive()
    }
}

/// An inbound text as a provider handed it over.
#[derive(Clone)]
pub struct InboundSms {
    /// `twilio`, `kannel`, `inject`.
    pub provider: String,
    /// The provider's id for it; retries of one webhook carry the same.
    pub provider_message_id: String,
    /// The sender as the provider gave it (E.164 normally, but short codes
    /// and alphanumeric senders exist).
    pub from: String,
    pub to: String,
    pub body: String,
    /// The provider's own reading of a compliance keyword, upper-case
    /// (`STOP`, `START`, `HELP`): Twilio's `OptOutType` when its Advanced
    /// Opt-Out handled the text. `None` when the provider says nothing.
    pub keyword: Option<String>,
}

impl fmt::Debug for InboundSms {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("InboundSms")
            .field("provider", &self.provider)
            .field("provider_message_id", &self.provider_message_id)
            .field("keyword", &self.keyword)
            .finish_non_exhaustive()
    }
}

/// A stored inbound text waiting for the pipeline.
#[derive(Clone)]
pub struct InboundRow {
    pub id: i64,
    pub sms: InboundSms,
    /// The member whose phone sent it, if any.
    pub member_id: Option<i64>,
    pub received_at: DateTime<Utc>,
}

impl fmt::Debug for InboundRow {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("InboundRow")
            .field("id", &self.id)
            .field("member_id", &self.member_id)
            .finish_non_exhaustive()
    }
}

/// The outcome of storing an inbound text.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Received {
    New(i64),
    /// The provider sent it before (a retried webhook): nothing stored.
    Duplicate(i64),
}

/// The outcome of putting a message in the outbox.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Enqueued {
    New(i64),
    /// A message with that idempotency key was already there.
    Duplicate(i64),
}

impl Enqueued {
    pub fn id(self) -> i64 {
        match self {
            Enqueued::New(id) | Enqueued::Duplicate(id) => id,
        }
    }
}

/// A delivery report from a provider, in Hearth's terms.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Report {
    Sent,
    Delivered,
    Undelivered,
    Failed,
    /// Failed because the number opted out at the provider (Twilio
    /// 21610 in a status callback): the member's consent is revoked too.
    OptedOut,
}

impl Report {
    pub(crate) fn state(self) -> OutState {
        match self {
            Report::Sent => OutState::Sent,
            Report::Delivered => OutState::Delivered,
            Report::Undelivered => OutState::Undelivered,
            Report::Failed | Report::OptedOut => OutState::Failed,
        }
    }

    pub(crate) fn as_str(self) -> &'static str {
        match self {
            Report::OptedOut => "opted_out",
            other => other.state().as_str(),
        }
    }

    pub(crate) fn parse(s: &str) -> Option<Report> {
        Some(match s {
            "sent" => Report::Sent,
            "delivered" => Report::Delivered,
            "undelivered" => Report::Undelivered,
            "failed" => Report::Failed,
            "opted_out" => Report::OptedOut,
            _ => return None,
        })
    }
}

/// Which message a report is about.
#[derive(Debug, Clone)]
pub enum ReportFor {
    /// Our outbox id (Kannel puts it in the DLR URL).
    Outbox(i64),
    /// The provider's message id (Twilio's MessageSid).
    ProviderId { provider: String, id: String },
}

#[cfg(test)]
mod tests {
    use super::*;
    use OutState::*;

    /// The whole table, written out: every pair not listed is refused.
    const ALLOWED: &[(OutState, OutState)] = &[
        (Queued, Sending),
        (Queued, Sent),
        (Queued, Delivered),
        (Queued, Undelivered),
        (Queued, Failed),
        (Queued, Expired),
        (Queued, Suppressed),
        (Sending, Queued),
        (Sending, Sent),
        (Sending, Delivered),
        (Sending, Undelivered),
        (Sending, Failed),
        (Sending, Expired),
        (Sending, Suppressed),
        (Sent, Delivered),
        (Sent, Undelivered),
        (Sent, Failed),
        (Failed, Queued),
        (Undelivered, Queued),
        (Expired, Queued),
        (Suppressed, Queued),
    ];

    #[test]
    fn every_pair_of_states_is_allowed_exactly_as_the_table_says() {
        let mut checked = 0;
        for from in OutState::ALL {
            for to in OutState::ALL {
                assert_eq!(
                    from.may_move(to),
                    ALLOWED.contains(&(from, to)),
                    "{from} → {to}"
                );
                checked += 1;
            }
        }
        assert_eq!(checked, 64);
    }

    #[test]
    fn sent_and_delivered_never_go_back_to_the_queue_or_to_sending() {
        for from in [Sent, Delivered] {
            assert!(!from.may_move(Queued), "{from}");
            assert!(!from.may_move(Sending), "{from}");
            assert!(!from.retryable(), "{from}");
        }
        assert!(!Delivered.may_move(Undelivered));
        assert!(!Delivered.may_move(Failed));
    }

    #[test]
    fn only_finished_unsent_states_are_retryable_by_staff() {
        let retryable: Vec<OutState> = OutState::ALL
            .into_iter()
            .filter(|s| s.retryable())
            .collect();
        assert_eq!(retryable, vec![Undelivered, Failed, Expired, Suppressed]);
    }

    #[test]
    fn no_state_moves_to_itself() {
        for s in OutState::ALL {
            assert!(!s.may_move(s), "{s}");
        }
    }

    #[test]
    fn states_and_kinds_read_back_what_they_write() {
        for s in OutState::ALL {
            assert_eq!(OutState::parse(s.as_str()), Some(s));
        }
        for k in Kind::ALL {
            assert_eq!(Kind::parse(k.as_str()), Some(k));
        }
        assert_eq!(OutState::parse("sendng"), None);
    }

    #[test]
    fn keys_name_their_origin_and_parts_cannot_run_together() {
        let fire = DateTime::parse_from_rfc3339("2026-03-05T17:00:00-05:00")
            .unwrap()
            .with_timezone(&Utc);
        assert_eq!(
            IdempotencyKey::scheduled("reminder-day-before", fire, 42).as_str(),
            "schedule:reminder-day-before:2026-03-05T22:00:00Z:member:42"
        );
        assert_eq!(
            IdempotencyKey::reply(7, "crisis").as_str(),
            "reply:7:crisis"
        );
        assert_eq!(
            IdempotencyKey::escalation(3, 1, "page", "dr-lee").as_str(),
            "escalation:3:1:page:dr-lee"
        );
        assert_ne!(
            IdempotencyKey::reply(7, "a:b"),
            IdempotencyKey::from("reply:7:a:b"),
            "a colon inside a part is escaped"
        );
        assert_ne!(
            IdempotencyKey::escalation(1, 2, "page", "x:4"),
            IdempotencyKey::escalation(1, 2, "page", "x%3A4")
        );
    }

    #[test]
    fn a_staff_key_is_the_callers_when_given_and_fresh_otherwise() {
        let a = IdempotencyKey::staff(Some("batch-7/M1")).unwrap();
        assert_eq!(a, IdempotencyKey::staff(Some("batch-7/M1")).unwrap());
        assert_eq!(a.as_str(), "staff:key:batch-7/M1");
        let r1 = IdempotencyKey::staff(None).unwrap();
        let r2 = IdempotencyKey::staff(None).unwrap();
        assert_ne!(r1, r2);
        assert!(r1.as_str().starts_with("staff:random:"));
        let err = IdempotencyKey::staff(Some("  ")).unwrap_err();
        assert!(err.message.contains("empty"), "{err}");
        let err = IdempotencyKey::staff(Some("a\nb")).unwrap_err();
        assert!(err.message.contains("`a\\nb`"), "{err}");
    }
}
