//! The outbox, the inbound queue, and delivery reports.
//!
//! Every outbound text is a row here before any provider is called,
//! unique on its idempotency key; the dispatcher claims due rows one at a
//! time (`queued → sending`), and records what the provider said. States
//! only move forward ([`OutState::rank`]), so a late or repeated delivery
//! report cannot undo a later one. Every inbound text is a row before the
//! webhook answers, unique on the provider's message id; rows not yet
//! processed are the pipeline's queue and survive restarts.

use std::fmt;

use chrono::{DateTime, Utc};
use rusqlite::{Connection, OptionalExtension, params};

use super::{Store, StoreError, audit, consent, members};
use crate::domain::Phone;

/// What kind of message, which fixes its priority and which gates apply.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
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
    pub fn as_str(self) -> &'static str {
        match self {
            Kind::Crisis => "crisis",
            Kind::Compliance => "compliance",
            Kind::Escalation => "escalation",
            Kind::Reply => "reply",
            Kind::Scheduled => "scheduled",
            Kind::Staff => "staff",
        }
    }

    pub fn parse(s: &str) -> Option<Kind> {
        Some(match s {
            "crisis" => Kind::Crisis,
            "compliance" => Kind::Compliance,
            "escalation" => Kind::Escalation,
            "reply" => Kind::Reply,
            "scheduled" => Kind::Scheduled,
            "staff" => Kind::Staff,
            _ => return None,
        })
    }

    /// Lower goes first: crisis > compliance > escalation > replies > the rest.
    pub fn priority(self) -> i64 {
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
    pub fn exempt_from_consent(self) -> bool {
        matches!(self, Kind::Crisis | Kind::Compliance | Kind::Escalation)
    }

    /// Sent even in the recipient's quiet hours.
    pub fn exempt_from_quiet_hours(self) -> bool {
        matches!(self, Kind::Crisis | Kind::Compliance | Kind::Escalation)
    }
}

/// Where an outbound message stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum OutState {
    Queued,
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

    pub fn parse(s: &str) -> Option<OutState> {
        Some(match s {
            "queued" => OutState::Queued,
            "sending" => OutState::Sending,
            "sent" => OutState::Sent,
            "delivered" => OutState::Delivered,
            "undelivered" => OutState::Undelivered,
            "failed" => OutState::Failed,
            "expired" => OutState::Expired,
            "suppressed" => OutState::Suppressed,
            _ => return None,
        })
    }

    /// How far along a message is; a report may only raise it.
    pub fn rank(self) -> u8 {
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
}

impl fmt::Display for OutState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A message to put in the outbox.
#[derive(Clone)]
pub struct NewMessage {
    /// Unique: `schedule:ID:INSTANT:member:N`, `reply:INBOUND_ID:…`, …
    pub idempotency_key: String,
    /// The member it goes to; `None` for a contact or an unknown sender.
    pub member_id: Option<i64>,
    /// The number, when it does not go to a member.
    pub to: Option<Phone>,
    pub body: String,
    pub kind: Kind,
    pub not_before: DateTime<Utc>,
    pub expires_at: Option<DateTime<Utc>>,
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

/// One outbox row, as listed.
#[derive(Clone, serde::Serialize)]
pub struct OutboxRow {
    pub id: i64,
    pub idempotency_key: String,
    pub member_id: Option<i64>,
    pub kind: Kind,
    pub state: OutState,
    pub reason: Option<String>,
    pub attempts: i64,
    pub segments: i64,
    pub not_before: String,
    pub next_attempt_at: String,
    pub expires_at: Option<String>,
    pub provider: Option<String>,
    pub provider_message_id: Option<String>,
    pub created_at: String,
    pub updated_at: String,
    #[serde(skip)]
    pub body: String,
}

impl fmt::Debug for OutboxRow {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("OutboxRow")
            .field("id", &self.id)
            .field("member_id", &self.member_id)
            .field("kind", &self.kind)
            .field("state", &self.state)
            .field("reason", &self.reason)
            .field("attempts", &self.attempts)
            .finish_non_exhaustive()
    }
}

/// A claimed message with everything the last gate needs, read in the
/// same transaction that claimed it.
#[derive(Clone)]
pub struct Claimed {
    pub row: OutboxRow,
    /// The number to send to: the member's current phone, or the row's own.
    pub to: Option<Phone>,
    /// For a member: active, consent now, and timezone.
    pub member: Option<MemberGate>,
}

impl fmt::Debug for Claimed {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Claimed")
            .field("row", &self.row)
            .field("member", &self.member)
            .finish_non_exhaustive()
    }
}

#[derive(Debug, Clone)]
pub struct MemberGate {
    pub id: i64,
    pub active: bool,
    pub consent: bool,
    pub timezone: String,
}

fn ts(t: DateTime<Utc>) -> String {
    t.to_rfc3339_opts(chrono::SecondsFormat::Millis, true)
}

const ROW_COLUMNS: &str = "id, idempotency_key, member_id, kind, state, reason, attempts, segments, not_before, next_attempt_at, expires_at, provider, provider_message_id, created_at, updated_at, body";

fn row(r: &rusqlite::Row<'_>) -> rusqlite::Result<OutboxRow> {
    let kind: String = r.get(3)?;
    let state: String = r.get(4)?;
    Ok(OutboxRow {
        id: r.get(0)?,
        idempotency_key: r.get(1)?,
        member_id: r.get(2)?,
        kind: Kind::parse(&kind).unwrap_or(Kind::Staff),
        state: OutState::parse(&state).unwrap_or(OutState::Failed),
        reason: r.get(5)?,
        attempts: r.get(6)?,
        segments: r.get(7)?,
        not_before: r.get(8)?,
        next_attempt_at: r.get(9)?,
        expires_at: r.get(10)?,
        provider: r.get(11)?,
        provider_message_id: r.get(12)?,
        created_at: r.get(13)?,
        updated_at: r.get(14)?,
        body: r.get(15)?,
    })
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

pub(crate) fn enqueue(conn: &Connection, m: &NewMessage) -> Result<Enqueued, StoreError> {
    if m.member_id.is_none() && m.to.is_none() {
        return Err(StoreError::Invalid(
            "a message needs a member or a number".into(),
        ));
    }
    let now = ts(Utc::now());
    let segments = crate::engine::sms::measure(&m.body).segments as i64;
    let inserted = conn.execute(
        "INSERT INTO outbox (idempotency_key, member_id, to_phone, body, kind, priority, not_before, expires_at,
                             attempts, next_attempt_at, state, segments, created_at, updated_at)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, 0, ?7, 'queued', ?9, ?10, ?10)
         ON CONFLICT (idempotency_key) DO NOTHING",
        params![
            m.idempotency_key,
            m.member_id,
            m.to.as_ref().map(Phone::as_str),
            m.body,
            m.kind.as_str(),
            m.kind.priority(),
            ts(m.not_before),
            m.expires_at.map(ts),
            segments,
            now
        ],
    )?;
    let id: i64 = conn.query_row(
        "SELECT id FROM outbox WHERE idempotency_key = ?1",
        [&m.idempotency_key],
        |r| r.get(0),
    )?;
    Ok(if inserted == 1 {
        Enqueued::New(id)
    } else {
        Enqueued::Duplicate(id)
    })
}

/// Claims the most urgent due message: `queued → sending`, one attempt more.
pub(crate) fn claim_next(
    conn: &mut Connection,
    now: DateTime<Utc>,
) -> Result<Option<Claimed>, StoreError> {
    let tx = conn.transaction()?;
    let found = tx
        .query_row(
            &format!(
                "SELECT {ROW_COLUMNS}, to_phone FROM outbox WHERE state = 'queued' AND next_attempt_at <= ?1
                 ORDER BY priority, next_attempt_at, id LIMIT 1"
            ),
            [ts(now)],
            |x| Ok((row(x)?, x.get::<_, Option<String>>(16)?)),
        )
        .optional()?;
    let Some((mut r, own)) = found else {
        return Ok(None);
    };
    tx.execute(
        "UPDATE outbox SET state = 'sending', attempts = attempts + 1, updated_at = ?2 WHERE id = ?1",
        params![r.id, ts(now)],
    )?;
    r.state = OutState::Sending;
    r.attempts += 1;

    let (to, member) = match r.member_id {
        Some(mid) => match members::by_id(&tx, mid)? {
            Some(m) => (
                Some(m.phone.clone()),
                Some(MemberGate {
                    id: m.id,
                    active: m.status == members::MemberStatus::Active,
                    consent: m.consent.granted(),
                    timezone: m.timezone.clone(),
                }),
            ),
            None => (None, None),
        },
        None => (own.and_then(|p| p.parse().ok()), None),
    };
    tx.commit()?;
    Ok(Some(Claimed { row: r, to, member }))
}

/// Moves a message on, recording why; returns false if it had already
/// moved past `state` (never backwards).
pub(crate) fn transition(
    conn: &Connection,
    id: i64,
    state: OutState,
    reason: Option<&str>,
    provider: Option<(&str, Option<&str>)>,
    next_attempt: Option<DateTime<Utc>>,
) -> Result<bool, StoreError> {
    let now = ts(Utc::now());
    let current: Option<String> = conn
        .query_row("SELECT state FROM outbox WHERE id = ?1", [id], |r| r.get(0))
        .optional()?;
    let Some(current) = current.and_then(|s| OutState::parse(&s)) else {
        return Err(StoreError::NotFound(format!("outbox message #{id}")));
    };
    // Requeueing (retry) is the one move back, and only from `sending`
    // or by staff from a final state; everything else only moves forward.
    let allowed = match state {
        OutState::Queued => true,
        _ => state.rank() > current.rank() || (current == OutState::Sent && state.rank() == 3),
    };
    if !allowed {
        return Ok(false);
    }
    conn.execute(
        "UPDATE outbox SET state = ?2, reason = ?3, updated_at = ?4,
                provider = coalesce(?5, provider), provider_message_id = coalesce(?6, provider_message_id),
                next_attempt_at = coalesce(?7, next_attempt_at)
         WHERE id = ?1",
        params![
            id,
            state.as_str(),
            reason,
            now,
            provider.map(|p| p.0),
            provider.and_then(|p| p.1),
            next_attempt.map(ts)
        ],
    )?;
    Ok(true)
}

/// Messages left in `sending` by a crash go back to the queue.
pub(crate) fn requeue_interrupted(conn: &Connection) -> Result<usize, StoreError> {
    Ok(conn.execute(
        "UPDATE outbox SET state = 'queued', reason = 'interrupted while sending; sent again', updated_at = ?1
         WHERE state = 'sending'",
        [ts(Utc::now())],
    )?)
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
    fn state(self) -> OutState {
        match self {
            Report::Sent => OutState::Sent,
            Report::Delivered => OutState::Delivered,
            Report::Undelivered => OutState::Undelivered,
            Report::Failed | Report::OptedOut => OutState::Failed,
        }
    }

    fn as_str(self) -> &'static str {
        match self {
            Report::OptedOut => "opted_out",
            other => other.state().as_str(),
        }
    }

    fn parse(s: &str) -> Option<Report> {
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

/// Applies a delivery report. Returns the message's state afterwards, or
/// `None` when no such message exists (yet: a report by provider id for a
/// message whose send is not recorded is kept and applied when it is).
pub(crate) fn apply_report(
    conn: &Connection,
    target: &ReportFor,
    report: Report,
    detail: Option<&str>,
) -> Result<Option<OutState>, StoreError> {
    let id: Option<i64> = match target {
        ReportFor::Outbox(id) => conn
            .query_row("SELECT id FROM outbox WHERE id = ?1", [id], |r| r.get(0))
            .optional()?,
        ReportFor::ProviderId { provider, id } => conn
            .query_row(
                "SELECT id FROM outbox WHERE provider = ?1 AND provider_message_id = ?2",
                params![provider, id],
                |r| r.get(0),
            )
            .optional()?,
    };
    let Some(id) = id else {
        if let ReportFor::ProviderId { provider, id } = target {
            conn.execute(
                "INSERT INTO pending_reports (provider, provider_message_id, report, detail, at) VALUES (?1, ?2, ?3, ?4, ?5)",
                params![provider, id, report.as_str(), detail, ts(Utc::now())],
            )?;
        }
        return Ok(None);
    };
    apply_to(conn, id, report, detail)?;
    let state: String =
        conn.query_row("SELECT state FROM outbox WHERE id = ?1", [id], |r| r.get(0))?;
    Ok(OutState::parse(&state))
}

fn apply_to(
    conn: &Connection,
    id: i64,
    report: Report,
    detail: Option<&str>,
) -> Result<(), StoreError> {
    conn.execute(
        "INSERT INTO delivery_events (outbox_id, report, detail, at) VALUES (?1, ?2, ?3, ?4)",
        params![id, report.as_str(), detail, ts(Utc::now())],
    )?;
    transition(conn, id, report.state(), detail, None, None)?;
    if report == Report::OptedOut {
        let member: Option<i64> =
            conn.query_row("SELECT member_id FROM outbox WHERE id = ?1", [id], |r| {
                r.get(0)
            })?;
        if let Some(m) = member {
            consent::record(
                conn,
                m,
                consent::ConsentAction::Revoked,
                consent::ConsentSource::Keyword,
                &format!(
                    "provider reported the number opted out: {}",
                    detail.unwrap_or("opted out")
                ),
                "hearth",
            )?;
        }
    }
    Ok(())
}

/// Applies reports that arrived before this message's send was recorded.
fn apply_pending(
    conn: &Connection,
    id: i64,
    provider: &str,
    provider_message_id: &str,
) -> Result<(), StoreError> {
    let mut stmt = conn.prepare(
        "SELECT report, detail FROM pending_reports WHERE provider = ?1 AND provider_message_id = ?2 ORDER BY id",
    )?;
    let pending = stmt
        .query_map(params![provider, provider_message_id], |r| {
            Ok((r.get::<_, String>(0)?, r.get::<_, Option<String>>(1)?))
        })?
        .collect::<Result<Vec<_>, _>>()?;
    for (report, detail) in pending {
        if let Some(report) = Report::parse(&report) {
            apply_to(conn, id, report, detail.as_deref())?;
        }
    }
    conn.execute(
        "DELETE FROM pending_reports WHERE provider = ?1 AND provider_message_id = ?2",
        params![provider, provider_message_id],
    )?;
    Ok(())
}

pub(crate) fn list(
    conn: &Connection,
    state: Option<OutState>,
    limit: usize,
) -> Result<Vec<OutboxRow>, StoreError> {
    let mut stmt = conn.prepare(&format!(
        "SELECT {ROW_COLUMNS} FROM outbox WHERE (?1 IS NULL OR state = ?1) ORDER BY id DESC LIMIT ?2"
    ))?;
    Ok(stmt
        .query_map(params![state.map(OutState::as_str), limit as i64], row)?
        .collect::<Result<Vec<_>, _>>()?)
}

pub(crate) fn get(conn: &Connection, id: i64) -> Result<Option<OutboxRow>, StoreError> {
    Ok(conn
        .query_row(
            &format!("SELECT {ROW_COLUMNS} FROM outbox WHERE id = ?1"),
            [id],
            row,
        )
        .optional()?)
}

/// When the next queued message falls due, if any.
pub(crate) fn next_due(conn: &Connection) -> Result<Option<DateTime<Utc>>, StoreError> {
    let t: Option<String> = conn
        .query_row(
            "SELECT min(next_attempt_at) FROM outbox WHERE state = 'queued'",
            [],
            |r| r.get(0),
        )
        .optional()?
        .flatten();
    Ok(t.and_then(|t| DateTime::parse_from_rfc3339(&t).ok())
        .map(|t| t.with_timezone(&Utc)))
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
}

impl fmt::Debug for InboundSms {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("InboundSms")
            .field("provider", &self.provider)
            .field("provider_message_id", &self.provider_message_id)
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
    pub received_at: String,
}

impl fmt::Debug for InboundRow {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("InboundRow")
            .field("id", &self.id)
            .field("member_id", &self.member_id)
            .finish_non_exhaustive()
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Received {
    New(i64),
    /// The provider sent it before (a retried webhook): nothing stored.
    Duplicate(i64),
}

pub(crate) fn record_inbound(conn: &Connection, m: &InboundSms) -> Result<Received, StoreError> {
    let member_id: Option<i64> = match m.from.parse::<Phone>() {
        Ok(p) => conn
            .query_row(
                "SELECT id FROM members WHERE phone = ?1",
                [p.as_str()],
                |r| r.get(0),
            )
            .optional()?,
        Err(_) => None,
    };
    let n = conn.execute(
        "INSERT INTO inbound (provider, provider_message_id, from_phone, to_phone, body, member_id, received_at)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)
         ON CONFLICT (provider, provider_message_id) DO NOTHING",
        params![m.provider, m.provider_message_id, m.from, m.to, m.body, member_id, ts(Utc::now())],
    )?;
    let id: i64 = conn.query_row(
        "SELECT id FROM inbound WHERE provider = ?1 AND provider_message_id = ?2",
        params![m.provider, m.provider_message_id],
        |r| r.get(0),
    )?;
    if n == 1 {
        audit::append(
            conn,
            "hearth",
            "sms.receive",
            member_id.map(|m| format!("member:{m}")).as_deref(),
            serde_json::json!({ "inbound": id, "provider": m.provider }),
        )?;
        Ok(Received::New(id))
    } else {
        Ok(Received::Duplicate(id))
    }
}

pub(crate) fn unprocessed(conn: &Connection, limit: usize) -> Result<Vec<InboundRow>, StoreError> {
    let mut stmt = conn.prepare(
        "SELECT id, provider, provider_message_id, from_phone, to_phone, body, member_id, received_at
         FROM inbound WHERE processed_at IS NULL ORDER BY id LIMIT ?1",
    )?;
    Ok(stmt
        .query_map([limit as i64], |r| {
            Ok(InboundRow {
                id: r.get(0)?,
                sms: InboundSms {
                    provider: r.get(1)?,
                    provider_message_id: r.get(2)?,
                    from: r.get(3)?,
                    to: r.get(4)?,
                    body: r.get(5)?,
                },
                member_id: r.get(6)?,
                received_at: r.get(7)?,
            })
        })?
        .collect::<Result<Vec<_>, _>>()?)
}

pub(crate) fn mark_processed(conn: &Connection, id: i64, outcome: &str) -> Result<(), StoreError> {
    conn.execute(
        "UPDATE inbound SET processed_at = ?2, outcome = ?3 WHERE id = ?1 AND processed_at IS NULL",
        params![id, ts(Utc::now()), outcome],
    )?;
    Ok(())
}

impl Store {
    /// Queues a message and wakes the dispatcher.
    pub async fn enqueue(&self, m: NewMessage) -> Result<Enqueued, StoreError> {
        let q = self.call(move |c| enqueue(c, &m)).await?;
        if let Enqueued::New(_) = q {
            self.enqueued().notify_one();
        }
        Ok(q)
    }

    pub async fn claim_next(&self, now: DateTime<Utc>) -> Result<Option<Claimed>, StoreError> {
        self.call(move |c| claim_next(c, now)).await
    }

    /// Records the dispatcher's outcome for a claimed message (and, for a
    /// send, the audit entry).
    pub async fn settle(
        &self,
        id: i64,
        state: OutState,
        reason: Option<String>,
        provider: Option<(String, Option<String>)>,
        next_attempt: Option<DateTime<Utc>>,
    ) -> Result<bool, StoreError> {
        self.call(move |c| {
            let tx = c.transaction()?;
            let moved = transition(
                &tx,
                id,
                state,
                reason.as_deref(),
                provider.as_ref().map(|(p, m)| (p.as_str(), m.as_deref())),
                next_attempt,
            )?;
            // A delivery report can overtake the dispatcher's record of the send
            // (Kannel's DLR races its own sendsms answer). The state stays
            // where the report put it, but the send happened: record who
            // took it and audit it all the same.
            let overtaken = !moved && state == OutState::Sent && {
                let now: String = tx.query_row("SELECT state FROM outbox WHERE id = ?1", [id], |r| r.get(0))?;
                OutState::parse(&now).is_some_and(|s| s.rank() >= OutState::Sent.rank())
            };
            if overtaken && let Some((p, pmid)) = &provider {
                tx.execute(
                    "UPDATE outbox SET provider = ?2, provider_message_id = coalesce(?3, provider_message_id) WHERE id = ?1",
                    params![id, p, pmid],
                )?;
            }
            if moved
                && state == OutState::Sent
                && let Some((p, Some(pmid))) = &provider
            {
                apply_pending(&tx, id, p, pmid)?;
            }
            if (moved || overtaken) && matches!(state, OutState::Sent | OutState::Failed | OutState::Suppressed | OutState::Expired) {
                let member: Option<i64> = tx.query_row("SELECT member_id FROM outbox WHERE id = ?1", [id], |r| r.get(0))?;
                audit::append(
                    &tx,
                    "hearth",
                    &format!("sms.{}", state.as_str()),
                    member.map(|m| format!("member:{m}")).as_deref(),
                    serde_json::json!({ "outbox": id, "reason": reason, "provider": provider.as_ref().map(|p| &p.0) }),
                )?;
            }
            tx.commit()?;
            Ok(moved || overtaken)
        })
        .await
    }

    /// A provider said the number opted out (Twilio 21610): fail the
    /// message and revoke the member's consent, as if they texted STOP.
    pub async fn provider_opt_out(&self, id: i64, reason: String) -> Result<(), StoreError> {
        self.call(move |c| {
            let tx = c.transaction()?;
            transition(&tx, id, OutState::Failed, Some(&reason), None, None)?;
            let member: Option<i64> =
                tx.query_row("SELECT member_id FROM outbox WHERE id = ?1", [id], |r| {
                    r.get(0)
                })?;
            if let Some(m) = member {
                consent::record(
                    &tx,
                    m,
                    consent::ConsentAction::Revoked,
                    consent::ConsentSource::Keyword,
                    &format!("provider reported the number opted out: {reason}"),
                    "hearth",
                )?;
            }
            tx.commit()?;
            Ok(())
        })
        .await
    }

    /// Puts a claimed message back for later without counting the attempt
    /// (quiet hours are not a failure).
    pub async fn defer(
        &self,
        id: i64,
        until: DateTime<Utc>,
        reason: String,
    ) -> Result<(), StoreError> {
        self.call(move |c| {
            c.execute(
                "UPDATE outbox SET state = 'queued', attempts = max(attempts - 1, 0), reason = ?2, next_attempt_at = ?3, updated_at = ?4
                 WHERE id = ?1 AND state = 'sending'",
                params![id, reason, ts(until), ts(Utc::now())],
            )?;
            Ok(())
        })
        .await
    }

    pub async fn requeue_interrupted(&self) -> Result<usize, StoreError> {
        self.call(|c| requeue_interrupted(c)).await
    }

    pub async fn apply_report(
        &self,
        target: ReportFor,
        report: Report,
        detail: Option<String>,
    ) -> Result<Option<OutState>, StoreError> {
        self.call(move |c| apply_report(c, &target, report, detail.as_deref()))
            .await
    }

    pub async fn outbox(
        &self,
        state: Option<OutState>,
        limit: usize,
    ) -> Result<Vec<OutboxRow>, StoreError> {
        self.call(move |c| list(c, state, limit)).await
    }

    pub async fn outbox_message(&self, id: i64) -> Result<Option<OutboxRow>, StoreError> {
        self.call(move |c| get(c, id)).await
    }

    pub async fn next_due(&self) -> Result<Option<DateTime<Utc>>, StoreError> {
        self.call(|c| next_due(c)).await
    }

    /// Staff: send a failed, expired or suppressed message again (audited).
    pub async fn outbox_retry(&self, id: i64, actor: &str) -> Result<(), StoreError> {
        let actor = actor.to_owned();
        self.call(move |c| {
            let tx = c.transaction()?;
            let r = get(&tx, id)?.ok_or_else(|| StoreError::NotFound(format!("outbox message #{id}")))?;
            if !matches!(r.state, OutState::Failed | OutState::Expired | OutState::Suppressed | OutState::Undelivered) {
                return Err(StoreError::Invalid(format!("message #{id} is {}; only failed, undelivered, expired or suppressed messages can be retried", r.state)));
            }
            tx.execute(
                "UPDATE outbox SET state = 'queued', reason = ?2, next_attempt_at = ?3, expires_at = NULL, updated_at = ?3 WHERE id = ?1",
                params![id, format!("retried by {actor}"), ts(Utc::now())],
            )?;
            audit::append(&tx, &actor, "outbox.retry", r.member_id.map(|m| format!("member:{m}")).as_deref(), serde_json::json!({ "outbox": id }))?;
            tx.commit()?;
            Ok(())
        })
        .await
    }

    /// Staff: stop a queued message (audited).
    pub async fn outbox_cancel(&self, id: i64, actor: &str) -> Result<(), StoreError> {
        let actor = actor.to_owned();
        self.call(move |c| {
            let tx = c.transaction()?;
            let r = get(&tx, id)?
                .ok_or_else(|| StoreError::NotFound(format!("outbox message #{id}")))?;
            if r.state != OutState::Queued {
                return Err(StoreError::Invalid(format!(
                    "message #{id} is {}; only queued messages can be cancelled",
                    r.state
                )));
            }
            transition(
                &tx,
                id,
                OutState::Suppressed,
                Some(&format!("cancelled by {actor}")),
                None,
                None,
            )?;
            audit::append(
                &tx,
                &actor,
                "outbox.cancel",
                r.member_id.map(|m| format!("member:{m}")).as_deref(),
                serde_json::json!({ "outbox": id }),
            )?;
            tx.commit()?;
            Ok(())
        })
        .await
    }

    pub async fn record_inbound(&self, m: InboundSms) -> Result<Received, StoreError> {
        self.call(move |c| record_inbound(c, &m)).await
    }

    pub async fn unprocessed_inbound(&self, limit: usize) -> Result<Vec<InboundRow>, StoreError> {
        self.call(move |c| unprocessed(c, limit)).await
    }

    pub async fn mark_inbound_processed(&self, id: i64, outcome: &str) -> Result<(), StoreError> {
        let outcome = outcome.to_owned();
        self.call(move |c| mark_processed(c, id, &outcome)).await
    }
}
