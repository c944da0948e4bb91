//! How an outbox row is read from SQLite: timestamps as stored (RFC 3339,
//! milliseconds, UTC), the column list in order, and the mapping of a row
//! (with its plan and the survey it started) to an [`OutboxMessage`].

use chrono::{DateTime, Utc};
use rusqlite::{Connection, OptionalExtension};

use crate::domain::message::{IdempotencyKey, Kind, OutState, OutboxMessage, Plan, SurveyStart};
use crate::store::StoreError;
use crate::store::sqlite::bad;

pub(crate) fn ts(t: DateTime<Utc>) -> String {
    t.to_rfc3339_opts(chrono::SecondsFormat::Millis, true)
}

pub(crate) fn parse_ts(s: &str) -> Option<DateTime<Utc>> {
    DateTime::parse_from_rfc3339(s)
        .ok()
        .map(|t| t.with_timezone(&Utc))
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
pub(super) const COLUMNS: &str = "outbox.id, outbox.idempotency_key, outbox.member_id, outbox.kind, outbox.state, outbox.reason,
    outbox.attempts, outbox.segments, outbox.not_before, outbox.next_attempt_at, outbox.expires_at,
    outbox.provider, outbox.provider_message_id, outbox.possibly_sent, outbox.claimed_by, outbox.lease_until,
    outbox.created_at, outbox.updated_at, outbox.body, outbox.to_phone,
    outbox.schedule_id, outbox.fire_at, outbox.generation, outbox.schedule_version";

/// `RETURNING` cannot name the table; the same columns bare.
pub(super) const RETURNING: &str = "id, idempotency_key, member_id, kind, state, reason, attempts, segments, not_before,
    next_attempt_at, expires_at, provider, provider_message_id, possibly_sent, claimed_by, lease_until,
    created_at, updated_at, body, to_phone, schedule_id, fire_at, generation, schedule_version";

/// The index of the first column after [`COLUMNS`] / [`RETURNING`].
pub(super) const AFTER: usize = 24;

/// A row as read with [`COLUMNS`], plus its own number (`to_phone`).
pub(super) fn message(r: &rusqlite::Row<'_>) -> rusqlite::Result<(OutboxMessage, Option<String>)> {
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
pub(super) fn with_survey(
    conn: &Connection,
    mut m: OutboxMessage,
) -> Result<OutboxMessage, StoreError> {
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
