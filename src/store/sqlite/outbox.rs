//! The outbox and delivery reports, in SQLite.
//!
//! Every outbound text is a row here before any provider is called,
//! unique on its idempotency key. A dispatcher claims the most urgent due
//! row under a lease (`claimed_by`, `lease_until`) with one
//! `UPDATE … RETURNING`, and settles it with what the provider said.
//! Every state change goes through [`set_state`], which checks the move
//! against [`OutState::may_move`] and writes it as a compare-and-set on
//! the state it read, so nothing moves backwards and two writers cannot
//! both move one row. A lease that lapses returns the row to `queued`,
//! marked possibly sent, with an audit entry.
//!
//! Write transactions are `IMMEDIATE`: they take the write lock up front,
//! so a concurrent writer (a staff command, another daemon) waits on the
//! busy timeout instead of failing half-way.

use chrono::{DateTime, Utc};
use rusqlite::{Connection, OptionalExtension, TransactionBehavior, params};

use super::{SqliteStore, audit, consent, members};
use crate::domain::Phone;
use crate::domain::bookkeeping;
use crate::domain::message::{
    Enqueued, IdempotencyKey, Kind, NewMessage, OutState, OutboxMessage, Plan, Report, ReportFor,
    SurveyStart,
};
use crate::store::StoreError;
use crate::store::traits::outbox::MemberGate;
use crate::store::traits::outbox::{
    ClaimedMessage, InstanceId, Lease, ListFilter, OutboxStore, Outcome, RetryFilter, Settled,
};

pub(crate) fn ts(t: DateTime<Utc>) -> String {
    t.to_rfc3339_opts(chrono::SecondsFormat::Millis, true)
}

pub(crate) fn parse_ts(s: &str) -> Option<DateTime<Utc>> {
    DateTime::parse_from_rfc3339(s)
        .ok()
        .map(|t| t.with_timezone(&Utc))
}

fn bad(i: usize, what: String) -> rusqlite::Error {
    rusqlite::Error::FromSqlConversionFailure(i, rusqlite::types::Type::Text, what.into())
}

pub(crate) fn get_ts(r: &rusqlite::Row<'_>, i: usize) -> rusqlite::Result<DateTime<Utc>> {
    let s: String = r.get(i)?;
    parse_ts(&s).ok_or_else(|| bad(i, format!("not a timestamp: `{s}`")))
}

pub(crate) fn get_opt_ts(
    r: &rusqlite::Row<'_>,
    i: usize,
) -> rusqlite::Result<Option<DateTime<Utc>>> {
    let s: Option<String> = r.get(i)?;
    s.map(|s| parse_ts(&s).ok_or_else(|| bad(i, format!("not a timestamp: `{s}`"))))
        .transpose()
}

/// The columns [`message`] reads, in order; the one after them
/// ([`AFTER`]) is the member's external id (from a join, or NULL).
const COLUMNS: &str = "outbox.id, outbox.idempotency_key, outbox.member_id, outbox.kind, outbox.state, outbox.reason,
    outbox.attempts, outbox.segments, outbox.not_before, outbox.next_attempt_at, outbox.expires_at,
    outbox.provider, outbox.provider_message_id, outbox.possibly_sent, outbox.claimed_by, outbox.lease_until,
    outbox.created_at, outbox.updated_at, outbox.body, outbox.to_phone,
    outbox.schedule_id, outbox.fire_at, outbox.generation, outbox.schedule_version";

/// `RETURNING` cannot name the table; the same columns bare.
const RETURNING: &str = "id, idempotency_key, member_id, kind, state, reason, attempts, segments, not_before,
    next_attempt_at, expires_at, provider, provider_message_id, possibly_sent, claimed_by, lease_until,
    created_at, updated_at, body, to_phone, schedule_id, fire_at, generation, schedule_version";

/// The index of the first column after [`COLUMNS`] / [`RETURNING`].
const AFTER: usize = 24;

/// A row as read with [`COLUMNS`], plus its own number (`to_phone`).
fn message(r: &rusqlite::Row<'_>) -> rusqlite::Result<(OutboxMessage, Option<String>)> {
    let kind: String = r.get(3)?;
    let state: String = r.get(4)?;
    Ok((
        OutboxMessage {
            id: r.get(0)?,
            idempotency_key: IdempotencyKey::from_stored(r.get(1)?),
            member_id: r.get(2)?,
            member_external_id: None,
            kind: Kind::parse(&kind).ok_or_else(|| bad(3, format!("unknown kind `{kind}`")))?,
            state: OutState::parse(&state)
                .ok_or_else(|| bad(4, format!("unknown state `{state}`")))?,
            reason: r.get(5)?,
            attempts: r.get(6)?,
            segments: r.get(7)?,
            not_before: get_ts(r, 8)?,
            next_attempt_at: get_ts(r, 9)?,
            expires_at: get_opt_ts(r, 10)?,
            provider: r.get(11)?,
            provider_message_id: r.get(12)?,
            possibly_sent: r.get(13)?,
            claimed_by: r.get(14)?,
            lease_until: get_opt_ts(r, 15)?,
            created_at: get_ts(r, 16)?,
            updated_at: get_ts(r, 17)?,
            body: r.get(18)?,
            plan: plan(r)?,
        },
        r.get(19)?,
    ))
}

/// The plan columns of a row (20–23); its survey is filled in by
/// [`with_survey`].
fn plan(r: &rusqlite::Row<'_>) -> rusqlite::Result<Option<Plan>> {
    let Some(schedule) = r.get::<_, Option<String>>(20)? else {
        return Ok(None);
    };
    let fire =
        get_opt_ts(r, 21)?.ok_or_else(|| bad(21, "a planned message without a fire".into()))?;
    let generation: i64 = r.get::<_, Option<i64>>(22)?.unwrap_or(0);
    Ok(Some(Plan {
        schedule,
        fire,
        generation: generation.max(0) as u64,
        version: r.get::<_, Option<String>>(23)?.unwrap_or_default(),
        survey: None,
    }))
}

/// Fills in the survey a planned message started, from `survey_runs`.
fn with_survey(conn: &Connection, mut m: OutboxMessage) -> Result<OutboxMessage, StoreError> {
    if let Some(plan) = m.plan.as_mut() {
        plan.survey = conn
            .prepare_cached("SELECT survey, expires_at FROM survey_runs WHERE outbox_id = ?1")?
            .query_row([m.id], |r| Ok((r.get::<_, String>(0)?, get_opt_ts(r, 1)?)))
            .optional()?
            .and_then(|(survey, expires_at)| {
                expires_at.map(|expires_at| SurveyStart { survey, expires_at })
            });
    }
    Ok(m)
}

/// `member:<external id>` for audit subjects, as everywhere else.
pub(crate) fn subject(
    conn: &Connection,
    member_id: Option<i64>,
) -> Result<Option<String>, StoreError> {
    let Some(m) = member_id else { return Ok(None) };
    let ext: Option<String> = conn
        .query_row("SELECT external_id FROM members WHERE id = ?1", [m], |r| {
            r.get(0)
        })
        .optional()?;
    Ok(Some(format!(
        "member:{}",
        ext.unwrap_or_else(|| format!("#{m}"))
    )))
}

pub(crate) fn immediate(conn: &mut Connection) -> Result<rusqlite::Transaction<'_>, StoreError> {
    Ok(conn.transaction_with_behavior(TransactionBehavior::Immediate)?)
}

/// `'a', 'b'` for an SQL `IN` list of states.
fn in_list(states: impl Iterator<Item = OutState>) -> String {
    states
        .map(|s| format!("'{}'", s.as_str()))
        .collect::<Vec<_>>()
        .join(", ")
}

/// What else changes with a state.
#[derive(Default)]
pub(crate) struct Change<'a> {
    reason: Option<&'a str>,
    provider: Option<(&'a str, Option<&'a str>)>,
    next_attempt_at: Option<DateTime<Utc>>,
    /// Added to `attempts` (a deferral gives its attempt back).
    attempts: i64,
    possibly_sent: bool,
    clear_expiry: bool,
}

impl<'a> Change<'a> {
    /// Only a reason (a cancellation).
    pub(crate) fn reason(reason: &'a str) -> Change<'a> {
        Change {
            reason: Some(reason),
            ..Change::default()
        }
    }
}

/// The one place a message's state changes (claims excepted, which are
/// one `UPDATE … RETURNING` of `queued → sending` checked against the same
/// rule): refuses a move the rule does not allow, and writes only if the
/// row is still in `from`. Returns whether it moved. The first move to
/// `sent`, `delivered` or `undelivered` records the send time.
pub(crate) fn set_state(
    conn: &Connection,
    id: i64,
    from: OutState,
    to: OutState,
    change: &Change<'_>,
    now: DateTime<Utc>,
) -> Result<bool, StoreError> {
    if !from.may_move(to) {
        return Err(StoreError::Invalid(format!(
            "outbox message #{id} cannot move from {from} to {to}"
        )));
    }
    let n = conn.prepare_cached(
        "UPDATE outbox SET state = ?3, reason = ?4, updated_at = ?5,
                provider = coalesce(?6, provider), provider_message_id = coalesce(?7, provider_message_id),
                next_attempt_at = coalesce(?8, next_attempt_at), attempts = max(attempts + ?9, 0),
                lease_until = NULL, possibly_sent = possibly_sent OR ?10,
                expires_at = CASE WHEN ?11 THEN NULL ELSE expires_at END,
                sent_at = CASE WHEN sent_at IS NULL AND ?3 IN ('sent', 'delivered', 'undelivered')
                               THEN ?5 ELSE sent_at END
         WHERE id = ?1 AND state = ?2",
    )?.execute(
        params![
            id,
            from.as_str(),
            to.as_str(),
            change.reason,
            ts(now),
            change.provider.map(|p| p.0),
            change.provider.and_then(|p| p.1),
            change.next_attempt_at.map(ts),
            change.attempts,
            change.possibly_sent,
            change.clear_expiry,
        ],
    )?;
    if n == 1 && bookkeeping::ends_unsent(to) {
        note_crisis_not_texted(conn, id, to, change.reason, now)?;
    }
    Ok(n == 1)
}

/// Notes a crisis reply that ended without reaching the member on the
/// incident it answered, in the same transaction as the move
/// ([`bookkeeping::crisis_not_texted`] says when and what).
fn note_crisis_not_texted(
    conn: &Connection,
    id: i64,
    to: OutState,
    reason: Option<&str>,
    now: DateTime<Utc>,
) -> Result<(), StoreError> {
    let (kind, key): (String, String) = conn
        .prepare_cached("SELECT kind, idempotency_key FROM outbox WHERE id = ?1")?
        .query_row([id], |r| Ok((r.get(0)?, r.get(1)?)))?;
    let Some(kind) = Kind::parse(&kind) else {
        return Ok(());
    };
    if let Some(why) = bookkeeping::crisis_not_texted(kind, id, to, reason) {
        super::incident::note_not_texted(conn, &key, &why, now)?;
    }
    Ok(())
}

fn state_of(conn: &Connection, id: i64) -> Result<OutState, StoreError> {
    let s: Option<String> = conn
        .query_row("SELECT state FROM outbox WHERE id = ?1", [id], |r| r.get(0))
        .optional()?;
    let s = s.ok_or_else(|| StoreError::NotFound(format!("outbox message #{id}")))?;
    OutState::parse(&s)
        .ok_or_else(|| StoreError::Invalid(format!("outbox message #{id} has unknown state `{s}`")))
}

fn check(m: &NewMessage) -> Result<(), StoreError> {
    bookkeeping::check_new(m).map_err(|e| StoreError::Invalid(e.to_string()))
}

/// A new row: `queued`, or `suppressed` with its reason when the message
/// was capped at fan-out (on record, holding its key, never claimable).
const INSERT: &str = "INSERT INTO outbox (idempotency_key, member_id, to_phone, body, kind, priority, not_before, expires_at,
                             attempts, next_attempt_at, state, reason, segments, created_at, updated_at,
                             schedule_id, fire_at, generation, schedule_version)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, 0, ?7, CASE WHEN ?11 IS NULL THEN 'queued' ELSE 'suppressed' END,
                 ?11, ?9, ?10, ?10, ?12, ?13, ?14, ?15)
         ON CONFLICT (idempotency_key) DO NOTHING";

const INSERT_SURVEY: &str = "INSERT INTO survey_runs (member_id, survey, schedule, outbox_id, question, opened_at, expires_at, state)
         VALUES (?1, ?2, ?3, ?4, 0, ?5, ?6, 'open')";

/// Inserts one message unless its key exists (with the survey run it
/// starts, when new); returns whether it was new.
fn insert(
    conn: &Connection,
    stmt: &mut rusqlite::CachedStatement<'_>,
    m: &NewMessage,
    now: &str,
) -> Result<bool, StoreError> {
    let segments = crate::domain::sms::measure(&m.body).segments as i64;
    let not_before = ts(m.not_before);
    let plan = m.plan.as_ref();
    let n = stmt.execute(params![
        m.idempotency_key.as_str(),
        m.member_id,
        m.to.as_ref().map(Phone::as_str),
        m.body,
        m.kind.as_str(),
        m.kind.priority(),
        not_before,
        m.expires_at.map(ts),
        segments,
        now,
        m.suppressed,
        plan.map(|p| p.schedule.as_str()),
        plan.map(|p| ts(p.fire)),
        plan.map(|p| i64::try_from(p.generation).unwrap_or(i64::MAX)),
        plan.map(|p| p.version.as_str()),
    ])?;
    if n == 0 {
        return Ok(false);
    }
    if let Some((p, survey)) = plan.and_then(|p| p.survey.as_ref().map(|s| (p, s))) {
        let id = conn.last_insert_rowid();
        conn.prepare_cached(INSERT_SURVEY)?.execute(params![
            m.member_id,
            survey.survey,
            p.schedule,
            id,
            not_before,
            ts(survey.expires_at),
        ])?;
    }
    Ok(true)
}

/// Inserts one message (within the caller's transaction: a survey run
/// goes with it).
pub(crate) fn enqueue(conn: &Connection, m: &NewMessage) -> Result<Enqueued, StoreError> {
    check(m)?;
    let inserted = insert(conn, &mut conn.prepare_cached(INSERT)?, m, &ts(Utc::now()))?;
    let id: i64 = conn
        .prepare_cached("SELECT id FROM outbox WHERE idempotency_key = ?1")?
        .query_row([m.idempotency_key.as_str()], |r| r.get(0))?;
    Ok(if inserted {
        Enqueued::New(id)
    } else {
        Enqueued::Duplicate(id)
    })
}

/// Inserts a batch in one transaction, skipping existing keys; returns
/// how many were new.
pub(crate) fn enqueue_batch(
    conn: &mut Connection,
    batch: &[NewMessage],
) -> Result<usize, StoreError> {
    for m in batch {
        check(m)?;
    }
    let tx = immediate(conn)?;
    let now = ts(Utc::now());
    let mut new = 0;
    {
        let mut stmt = tx.prepare_cached(INSERT)?;
        for m in batch {
            new += usize::from(insert(&tx, &mut stmt, m, &now)?);
        }
    }
    tx.commit()?;
    Ok(new)
}

/// Returns lapsed leases' messages to the queue (those of `only` when
/// given, whatever their lease): possibly sent, in their old place in the
/// queue, audited.
fn release(
    conn: &Connection,
    now: DateTime<Utc>,
    only: Option<&InstanceId>,
) -> Result<usize, StoreError> {
    debug_assert!(OutState::Sending.may_move(OutState::Queued));
    let lapsed: Vec<(i64, Option<i64>, Option<String>)> = {
        let mut stmt = conn.prepare_cached(
            "SELECT id, member_id, claimed_by FROM outbox
             WHERE state = 'sending'
               AND CASE WHEN ?2 IS NULL THEN lease_until IS NULL OR lease_until < ?1 ELSE claimed_by = ?2 END",
        )?;
        stmt.query_map(params![ts(now), only.map(InstanceId::as_str)], |r| {
            Ok((r.get(0)?, r.get(1)?, r.get(2)?))
        })?
        .collect::<Result<_, _>>()?
    };
    let mut n = 0;
    for (id, member, holder) in lapsed {
        let holder = holder.unwrap_or_else(|| "an earlier version".into());
        let reason = format!(
            "the claim by {holder} ended before the send was recorded; it may have been sent"
        );
        // It keeps its place in the queue (it was due when claimed).
        let change = Change {
            reason: Some(&reason),
            possibly_sent: true,
            ..Change::default()
        };
        if set_state(conn, id, OutState::Sending, OutState::Queued, &change, now)? {
            audit::append(
                conn,
                "hearth",
                "outbox.lease_lapsed",
                subject(conn, member)?.as_deref(),
                serde_json::json!({ "outbox": id, "claimed_by": holder }),
            )?;
            n += 1;
        }
    }
    Ok(n)
}

/// The claim: `priority IN (…)` lets SQLite walk `outbox_due` (state,
/// priority, next_attempt_at) one priority at a time and stop at the first
/// due row, with no sort: flat however many rows wait for later.
fn claim_sql(kinds: &[Kind]) -> String {
    let mut priorities: Vec<i64> = kinds.iter().map(|k| k.priority()).collect();
    priorities.sort_unstable();
    priorities.dedup();
    let priorities = priorities
        .iter()
        .map(i64::to_string)
        .collect::<Vec<_>>()
        .join(", ");
    format!(
        "UPDATE outbox SET state = 'sending', attempts = attempts + 1, claims = claims + 1,
                claimed_by = ?1, lease_until = ?2, updated_at = ?3
         WHERE id = (SELECT id FROM outbox
                     WHERE state = 'queued' AND priority IN ({priorities}) AND next_attempt_at <= ?3
                     ORDER BY priority, next_attempt_at, id LIMIT 1)
         RETURNING {RETURNING}, claims"
    )
}

/// When the next queued message is due: one indexed lookup per priority
/// (a plain min() over every queued row would walk all of them).
fn next_due_sql() -> String {
    let per_priority = Kind::ALL
        .map(|k| {
            format!(
                "SELECT (SELECT min(next_attempt_at) FROM outbox WHERE state = 'queued' AND priority = {}) AS t",
                k.priority()
            )
        })
        .join(" UNION ALL ");
    format!("SELECT min(t) FROM ({per_priority})")
}

/// Claims the most urgent due message under a lease: one
/// `UPDATE … RETURNING` on the best `queued` row, then the gate's reads,
/// in one transaction.
pub(crate) fn claim(
    conn: &mut Connection,
    holder: &InstanceId,
    now: DateTime<Utc>,
    lease_for: chrono::TimeDelta,
    kinds: &[Kind],
) -> Result<Option<ClaimedMessage>, StoreError> {
    if kinds.is_empty() {
        return Ok(None);
    }
    debug_assert!(OutState::Queued.may_move(OutState::Sending));
    let tx = immediate(conn)?;
    release(&tx, now, None)?;
    let until = now + lease_for;
    let claimed = tx
        .query_row(
            &claim_sql(kinds),
            params![holder.as_str(), ts(until), ts(now)],
            |r| Ok((message(r)?, r.get::<_, i64>(AFTER)?)),
        )
        .optional()?;
    let Some(((message, own), token)) = claimed else {
        tx.commit()?;
        return Ok(None);
    };
    let mut message = with_survey(&tx, message)?;
    // The member: the row's own, or whoever holds a number-only row's number.
    let member = match message.member_id {
        Some(mid) => members::by_id(&tx, mid)?,
        None => match own.as_deref().map(str::parse::<Phone>) {
            Some(Ok(p)) => members::by_phone(&tx, &p)?,
            _ => None,
        },
    };
    let to = match (message.member_id, &member) {
        (Some(_), Some(m)) => Some(m.phone.clone()),
        (Some(_), None) => None,
        (None, _) => own.and_then(|p| p.parse().ok()),
    };
    if message.member_id.is_some() {
        message.member_external_id = member.as_ref().map(|m| m.external_id.clone());
    }
    tx.commit()?;
    Ok(Some(ClaimedMessage {
        lease: Lease {
            outbox_id: message.id,
            holder: holder.clone(),
            token,
            until,
        },
        message,
        to,
        member: member.map(|m| MemberGate {
            id: m.id,
            active: m.status == crate::domain::member::MemberStatus::Active,
            consent: m.consent.granted(),
            timezone: m.timezone.clone(),
        }),
    }))
}

pub(crate) fn renew(
    conn: &Connection,
    lease: &Lease,
    until: DateTime<Utc>,
) -> Result<Option<Lease>, StoreError> {
    let n = conn.execute(
        "UPDATE outbox SET lease_until = ?4
         WHERE id = ?1 AND state = 'sending' AND claimed_by = ?2 AND claims = ?3",
        params![
            lease.outbox_id,
            lease.holder.as_str(),
            lease.token,
            ts(until)
        ],
    )?;
    Ok((n == 1).then(|| Lease {
        until,
        ..lease.clone()
    }))
}

fn audit_outcome(
    conn: &Connection,
    id: i64,
    member: Option<i64>,
    state: OutState,
    reason: Option<&str>,
    provider: Option<&str>,
) -> Result<(), StoreError> {
    audit::append(
        conn,
        "hearth",
        &format!("sms.{}", state.as_str()),
        subject(conn, member)?.as_deref(),
        serde_json::json!({ "outbox": id, "reason": reason, "provider": provider }),
    )?;
    Ok(())
}

/// Records `outcome` for a message now in `from` (a `sending` row under
/// this lease, or, for a send, any row the rule lets become `sent`).
fn record(
    conn: &Connection,
    id: i64,
    member: Option<i64>,
    from: OutState,
    outcome: &Outcome,
    now: DateTime<Utc>,
) -> Result<bool, StoreError> {
    let to = outcome.state();
    let moved = match outcome {
        Outcome::Sent {
            provider,
            provider_message_id,
        } => {
            let moved = set_state(
                conn,
                id,
                from,
                to,
                &Change {
                    provider: Some((provider, provider_message_id.as_deref())),
                    ..Change::default()
                },
                now,
            )?;
            if moved {
                if let Some(pmid) = provider_message_id {
                    apply_pending(conn, id, provider, pmid)?;
                }
                audit_outcome(conn, id, member, to, None, Some(provider))?;
            }
            moved
        }
        Outcome::Retry { at, reason } => set_state(
            conn,
            id,
            from,
            to,
            &Change {
                reason: Some(reason),
                next_attempt_at: Some(*at),
                ..Change::default()
            },
            now,
        )?,
        Outcome::Defer { until, reason } => set_state(
            conn,
            id,
            from,
            to,
            &Change {
                reason: Some(reason),
                next_attempt_at: Some(*until),
                attempts: -1,
                ..Change::default()
            },
            now,
        )?,
        Outcome::Failed { reason }
        | Outcome::OptedOut { reason }
        | Outcome::Suppressed { reason }
        | Outcome::Expired { reason } => {
            let moved = set_state(
                conn,
                id,
                from,
                to,
                &Change {
                    reason: Some(reason),
                    ..Change::default()
                },
                now,
            )?;
            if moved {
                if let (Outcome::OptedOut { reason }, Some(m)) = (outcome, member) {
                    revoke_for_provider_opt_out(conn, m, reason)?;
                }
                audit_outcome(conn, id, member, to, Some(reason), None)?;
            }
            moved
        }
    };
    Ok(moved)
}

/// Appends the consent revocation a provider's opt-out means
/// ([`bookkeeping::provider_opt_out`]).
fn revoke_for_provider_opt_out(
    conn: &Connection,
    member: i64,
    reason: &str,
) -> Result<(), StoreError> {
    let c = bookkeeping::provider_opt_out(reason);
    consent::record(conn, member, c.action, c.source, &c.text, c.actor)?;
    Ok(())
}

pub(crate) fn settle(
    conn: &mut Connection,
    lease: &Lease,
    outcome: &Outcome,
    now: DateTime<Utc>,
) -> Result<Settled, StoreError> {
    let tx = immediate(conn)?;
    let id = lease.outbox_id;
    type Row = (String, Option<String>, i64, Option<String>, Option<i64>);
    let row: Option<Row> = tx
        .query_row(
            "SELECT state, claimed_by, claims, provider, member_id FROM outbox WHERE id = ?1",
            [id],
            |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?, r.get(4)?)),
        )
        .optional()?;
    let (state, holder, token, provider, member) =
        row.ok_or_else(|| StoreError::NotFound(format!("outbox message #{id}")))?;
    let state = OutState::parse(&state).ok_or_else(|| {
        StoreError::Invalid(format!("outbox message #{id} has unknown state `{state}`"))
    })?;
    let ours = holder.as_deref() == Some(lease.holder.as_str()) && token == lease.token;
    let to = outcome.state();
    let settled = match outcome {
        // The provider has it: record that whoever holds the row now, so
        // it is not sent again.
        Outcome::Sent {
            provider: p,
            provider_message_id: pmid,
        } => {
            if state.may_move(to) {
                record(&tx, id, member, state, outcome, now)?;
                Settled::Recorded(to)
            } else if provider.is_none() && state.rank() > OutState::Sent.rank() {
                // A delivery report overtook the record of the send: the
                // state stays where the report put it; note who took it.
                tx.execute(
                    "UPDATE outbox SET provider = ?2, provider_message_id = coalesce(?3, provider_message_id), updated_at = ?4 WHERE id = ?1",
                    params![id, p, pmid, ts(now)],
                )?;
                if let Some(pmid) = pmid {
                    apply_pending(&tx, id, p, pmid)?;
                }
                audit_outcome(&tx, id, member, to, None, Some(p))?;
                Settled::Recorded(state)
            } else {
                Settled::AlreadyRecorded(state)
            }
        }
        _ if ours && state == OutState::Sending => {
            record(&tx, id, member, state, outcome, now)?;
            Settled::Recorded(to)
        }
        _ if ours => Settled::AlreadyRecorded(state),
        _ => Settled::LeaseLost(state),
    };
    tx.commit()?;
    Ok(settled)
}

/// Applies a delivery report. Returns the message's state afterwards, or
/// `None` when no such message exists (yet: a report by provider id for a
/// message whose send is not recorded is kept and applied when it is).
pub(crate) fn apply_report(
    conn: &mut Connection,
    target: &ReportFor,
    report: Report,
    detail: Option<&str>,
) -> Result<Option<OutState>, StoreError> {
    let tx = immediate(conn)?;
    let id: Option<i64> = match target {
        ReportFor::Outbox(id) => tx
            .query_row("SELECT id FROM outbox WHERE id = ?1", [id], |r| r.get(0))
            .optional()?,
        ReportFor::ProviderId { provider, id } => tx
            .query_row(
                "SELECT id FROM outbox WHERE provider = ?1 AND provider_message_id = ?2",
                params![provider, id],
                |r| r.get(0),
            )
            .optional()?,
    };
    let Some(id) = id else {
        if let ReportFor::ProviderId { provider, id } = target {
            tx.execute(
                "INSERT INTO pending_reports (provider, provider_message_id, report, detail, at) VALUES (?1, ?2, ?3, ?4, ?5)",
                params![provider, id, report.as_str(), detail, ts(Utc::now())],
            )?;
        }
        tx.commit()?;
        return Ok(None);
    };
    apply_to(&tx, id, report, detail)?;
    let state = state_of(&tx, id)?;
    tx.commit()?;
    Ok(Some(state))
}

/// Records a report and moves the message if the rule allows; a report
/// that would move it backwards is kept in `delivery_events` only.
fn apply_to(
    conn: &Connection,
    id: i64,
    report: Report,
    detail: Option<&str>,
) -> Result<(), StoreError> {
    let now = Utc::now();
    conn.execute(
        "INSERT INTO delivery_events (outbox_id, report, detail, at) VALUES (?1, ?2, ?3, ?4)",
        params![id, report.as_str(), detail, ts(now)],
    )?;
    let from = state_of(conn, id)?;
    if from.may_move(report.state()) {
        set_state(
            conn,
            id,
            from,
            report.state(),
            &Change {
                reason: detail,
                ..Change::default()
            },
            now,
        )?;
    }
    if report == Report::OptedOut {
        let member: Option<i64> =
            conn.query_row("SELECT member_id FROM outbox WHERE id = ?1", [id], |r| {
                r.get(0)
            })?;
        if let Some(m) = member {
            revoke_for_provider_opt_out(conn, m, detail.unwrap_or("opted out"))?;
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
    let mut stmt = conn.prepare_cached(
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
    filter: &ListFilter,
) -> Result<Vec<OutboxMessage>, StoreError> {
    let mut stmt = conn.prepare(&format!(
        "SELECT {COLUMNS}, members.external_id FROM outbox LEFT JOIN members ON members.id = outbox.member_id
         WHERE (?1 IS NULL OR outbox.state = ?1) AND (?2 IS NULL OR outbox.kind = ?2)
         ORDER BY outbox.id DESC LIMIT ?3"
    ))?;
    stmt.query_map(
        params![
            filter.state.map(OutState::as_str),
            filter.kind.map(Kind::as_str),
            filter.limit as i64
        ],
        |r| {
            let (mut m, _) = message(r)?;
            m.member_external_id = r.get(AFTER)?;
            Ok(m)
        },
    )?
    .map(|m| with_survey(conn, m?))
    .collect()
}

pub(crate) fn get(conn: &Connection, id: i64) -> Result<Option<OutboxMessage>, StoreError> {
    conn.query_row(
            &format!(
                "SELECT {COLUMNS}, members.external_id FROM outbox LEFT JOIN members ON members.id = outbox.member_id
                 WHERE outbox.id = ?1"
            ),
            [id],
            |r| {
                let (mut m, _) = message(r)?;
                m.member_external_id = r.get(AFTER)?;
                Ok(m)
            },
        )
        .optional()?
        .map(|m| with_survey(conn, m))
        .transpose()
}

/// When the next queued message falls due, if any.
pub(crate) fn next_due(conn: &Connection) -> Result<Option<DateTime<Utc>>, StoreError> {
    let t: Option<String> = conn
        .query_row(&next_due_sql(), [], |r| r.get(0))
        .optional()?
        .flatten();
    Ok(t.as_deref().and_then(parse_ts))
}

/// Staff's retry: every retryable message matching the filter goes back
/// to the queue, due now, its expiry lifted; one audit entry each. Named
/// ids must exist and be retryable, or nothing is written.
pub(crate) fn retry(
    conn: &mut Connection,
    filter: &RetryFilter,
    actor: &str,
    now: DateTime<Utc>,
) -> Result<usize, StoreError> {
    if filter.is_empty() {
        return Err(StoreError::Invalid(
            "name the messages to retry: ids, or a filter (state, kind, since)".into(),
        ));
    }
    if let Some(s) = filter.state
        && !s.retryable()
    {
        return Err(StoreError::Invalid(format!(
            "{s} messages are never retried; only failed, undelivered, expired or suppressed messages can be"
        )));
    }
    let tx = immediate(conn)?;
    let retryable = in_list(OutState::ALL.into_iter().filter(|s| s.retryable()));
    let mut chosen: Vec<(i64, OutState, Option<i64>)> = Vec::new();
    let matches = |r: &rusqlite::Row<'_>| -> rusqlite::Result<(i64, String, Option<i64>)> {
        Ok((r.get(0)?, r.get(1)?, r.get(2)?))
    };
    let conditions = "(?1 IS NULL OR state = ?1) AND (?2 IS NULL OR kind = ?2) AND (?3 IS NULL OR updated_at >= ?3)";
    let args = (
        filter.state.map(OutState::as_str),
        filter.kind.map(Kind::as_str),
        filter.since.map(ts),
    );
    if filter.ids.is_empty() {
        let mut stmt = tx.prepare(&format!(
            "SELECT id, state, member_id FROM outbox WHERE state IN ({retryable}) AND {conditions} ORDER BY id"
        ))?;
        for r in stmt.query_map(params![args.0, args.1, args.2], matches)? {
            let (id, state, member) = r?;
            chosen.extend(OutState::parse(&state).map(|s| (id, s, member)));
        }
    } else {
        let mut stmt = tx.prepare(&format!(
            "SELECT id, state, member_id FROM outbox WHERE id = ?4 AND {conditions}"
        ))?;
        for &id in &filter.ids {
            let found = stmt
                .query_row(params![args.0, args.1, args.2, id], matches)
                .optional()?;
            let Some((_, state, member)) = found else {
                if get(&tx, id)?.is_none() {
                    return Err(StoreError::NotFound(format!("outbox message #{id}")));
                }
                continue; // exists, but not matching the other conditions
            };
            let state = OutState::parse(&state).ok_or_else(|| {
                StoreError::Invalid(format!("outbox message #{id} has unknown state `{state}`"))
            })?;
            if !state.retryable() {
                return Err(StoreError::Invalid(format!(
                    "message #{id} is {state}; only failed, undelivered, expired or suppressed messages can be retried"
                )));
            }
            chosen.push((id, state, member));
        }
    }
    let reason = format!("retried by {actor}");
    let mut n = 0;
    for (id, from, member) in chosen {
        let change = Change {
            reason: Some(&reason),
            next_attempt_at: Some(now),
            clear_expiry: true,
            ..Change::default()
        };
        if set_state(&tx, id, from, OutState::Queued, &change, now)? {
            audit::append(
                &tx,
                actor,
                "outbox.retry",
                subject(&tx, member)?.as_deref(),
                serde_json::json!({ "outbox": id, "from": from.as_str() }),
            )?;
            n += 1;
        }
    }
    tx.commit()?;
    Ok(n)
}

pub(crate) fn cancel(conn: &mut Connection, id: i64, actor: &str) -> Result<(), StoreError> {
    let tx = immediate(conn)?;
    let r = get(&tx, id)?.ok_or_else(|| StoreError::NotFound(format!("outbox message #{id}")))?;
    if r.state != OutState::Queued {
        return Err(StoreError::Invalid(format!(
            "message #{id} is {}; only queued messages can be cancelled",
            r.state
        )));
    }
    let reason = format!("cancelled by {actor}");
    let change = Change {
        reason: Some(&reason),
        ..Change::default()
    };
    set_state(
        &tx,
        id,
        OutState::Queued,
        OutState::Suppressed,
        &change,
        Utc::now(),
    )?;
    audit::append(
        &tx,
        actor,
        "outbox.cancel",
        subject(&tx, r.member_id)?.as_deref(),
        serde_json::json!({ "outbox": id }),
    )?;
    tx.commit()?;
    Ok(())
}

impl OutboxStore for SqliteStore {
    fn enqueued(&self) -> std::sync::Arc<tokio::sync::Notify> {
        self.inner.enqueued.clone()
    }

    async fn enqueue_audited(
        &self,
        m: NewMessage,
        actor: &str,
        action: &str,
        mut detail: serde_json::Value,
    ) -> Result<Enqueued, StoreError> {
        let (actor, action) = (actor.to_owned(), action.to_owned());
        let q = self
            .call(move |c| {
                let tx = c.transaction()?;
                let q = enqueue(&tx, &m)?;
                if let Enqueued::New(id) = q {
                    if let Some(d) = detail.as_object_mut() {
                        d.insert("outbox".into(), id.into());
                    }
                    audit::append(
                        &tx,
                        &actor,
                        &action,
                        subject(&tx, m.member_id)?.as_deref(),
                        detail,
                    )?;
                }
                tx.commit()?;
                Ok(q)
            })
            .await?;
        if let Enqueued::New(_) = q {
            self.enqueued().notify_one();
        }
        Ok(q)
    }

    async fn enqueue(&self, m: NewMessage) -> Result<Enqueued, StoreError> {
        let q = self
            .call(move |c| {
                let tx = immediate(c)?;
                let q = enqueue(&tx, &m)?;
                tx.commit()?;
                Ok(q)
            })
            .await?;
        if let Enqueued::New(_) = q {
            self.enqueued().notify_one();
        }
        Ok(q)
    }

    async fn enqueue_batch(&self, batch: Vec<NewMessage>) -> Result<usize, StoreError> {
        let n = self.call(move |c| enqueue_batch(c, &batch)).await?;
        if n > 0 {
            self.enqueued().notify_one();
        }
        Ok(n)
    }

    async fn claim(
        &self,
        holder: &InstanceId,
        now: DateTime<Utc>,
        lease_for: chrono::TimeDelta,
    ) -> Result<Option<ClaimedMessage>, StoreError> {
        let holder = holder.clone();
        self.call(move |c| claim(c, &holder, now, lease_for, &Kind::ALL))
            .await
    }

    async fn claim_of_kinds(
        &self,
        holder: &InstanceId,
        now: DateTime<Utc>,
        lease_for: chrono::TimeDelta,
        kinds: &[Kind],
    ) -> Result<Option<ClaimedMessage>, StoreError> {
        let holder = holder.clone();
        let kinds = kinds.to_vec();
        self.call(move |c| claim(c, &holder, now, lease_for, &kinds))
            .await
    }

    async fn renew(
        &self,
        lease: &Lease,
        until: DateTime<Utc>,
    ) -> Result<Option<Lease>, StoreError> {
        let lease = lease.clone();
        self.call(move |c| renew(c, &lease, until)).await
    }

    async fn settle_claim(&self, lease: &Lease, outcome: Outcome) -> Result<Settled, StoreError> {
        let lease = lease.clone();
        self.call(move |c| settle(c, &lease, &outcome, Utc::now()))
            .await
    }

    async fn release_own_claims(&self, holder: &InstanceId) -> Result<usize, StoreError> {
        let holder = holder.clone();
        self.call(move |c| {
            let tx = immediate(c)?;
            let n = release(&tx, Utc::now(), Some(&holder))?;
            tx.commit()?;
            Ok(n)
        })
        .await
    }

    async fn expire_leases(&self, now: DateTime<Utc>) -> Result<usize, StoreError> {
        self.call(move |c| {
            let tx = immediate(c)?;
            let n = release(&tx, now, None)?;
            tx.commit()?;
            Ok(n)
        })
        .await
    }

    async fn apply_report(
        &self,
        target: ReportFor,
        report: Report,
        detail: Option<String>,
    ) -> Result<Option<OutState>, StoreError> {
        self.call(move |c| apply_report(c, &target, report, detail.as_deref()))
            .await
    }

    async fn next_due(&self) -> Result<Option<DateTime<Utc>>, StoreError> {
        self.call(|c| next_due(c)).await
    }

    async fn list_messages(&self, filter: ListFilter) -> Result<Vec<OutboxMessage>, StoreError> {
        self.call(move |c| list(c, &filter)).await
    }

    async fn message(&self, id: i64) -> Result<Option<OutboxMessage>, StoreError> {
        self.call(move |c| get(c, id)).await
    }

    async fn retry(&self, filter: RetryFilter, actor: &str) -> Result<usize, StoreError> {
        let actor = actor.to_owned();
        let n = self
            .call(move |c| retry(c, &filter, &actor, Utc::now()))
            .await?;
        if n > 0 {
            self.enqueued().notify_one();
        }
        Ok(n)
    }

    async fn cancel(&self, id: i64, actor: &str) -> Result<(), StoreError> {
        let actor = actor.to_owned();
        self.call(move |c| cancel(c, id, &actor)).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fresh() -> (tempfile::TempDir, Connection) {
        let dir = tempfile::tempdir().unwrap();
        let key = super::super::KeySource::Generated(dir.path().join("h.db.key"));
        let (conn, _) = super::super::open_connection(&dir.path().join("h.db"), &key).unwrap();
        (dir, conn)
    }

    fn plan(conn: &Connection, sql: &str, args: usize) -> String {
        let mut stmt = conn.prepare(&format!("EXPLAIN QUERY PLAN {sql}")).unwrap();
        let nulls = vec![rusqlite::types::Null; args];
        stmt.query_map(rusqlite::params_from_iter(nulls), |r| r.get::<_, String>(3))
            .unwrap()
            .collect::<Result<Vec<_>, _>>()
            .unwrap()
            .join("\n")
    }

    #[test]
    fn claiming_walks_the_due_index_without_sorting_the_queue() {
        let (_dir, conn) = fresh();
        let p = plan(&conn, &claim_sql(&Kind::ALL), 3);
        assert!(
            p.contains("INDEX outbox_due (state=? AND priority=? AND next_attempt_at<?)"),
            "{p}"
        );
        assert!(!p.contains("TEMP B-TREE"), "no sort of the due rows:\n{p}");
        let p = plan(&conn, &next_due_sql(), 0);
        assert!(
            p.contains("INDEX outbox_due (state=? AND priority=?)"),
            "{p}"
        );
        assert!(!p.contains("SCAN outbox"), "{p}");
    }

    #[test]
    fn a_row_left_sending_by_a_version_without_leases_returns_to_the_queue_possibly_sent() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("h.db");
        {
            let secret = super::super::generate_key_file(&dir.path().join("h.db.key")).unwrap();
            let mut conn = Connection::open(&path).unwrap();
            super::super::apply_key(&conn, &secret).unwrap();
            super::super::migrations::to_version(&mut conn, 3).unwrap();
            conn.execute(
                "INSERT INTO outbox (idempotency_key, to_phone, body, kind, priority, not_before, next_attempt_at,
                                     state, segments, created_at, updated_at)
                 VALUES ('k', '+15555550199', 'hi', 'escalation', 2, '2026-01-01T00:00:00.000Z',
                         '2026-01-01T00:00:00.000Z', 'sending', 1, '2026-01-01T00:00:00.000Z', '2026-01-01T00:00:00.000Z')",
                [],
            )
            .unwrap();
        }
        let key = super::super::KeySource::Generated(dir.path().join("h.db.key"));
        let (mut conn, _) = super::super::open_connection(&path, &key).unwrap();
        let holder = InstanceId::new("after-upgrade").unwrap();
        let c = claim(
            &mut conn,
            &holder,
            Utc::now(),
            chrono::TimeDelta::seconds(30),
            &Kind::ALL,
        )
        .unwrap()
        .expect("the interrupted row is claimable again");
        assert!(c.message.possibly_sent);
        assert_eq!(c.message.attempts, 1);
        assert!(c.message.reason.unwrap().contains("an earlier version"));
    }
}
