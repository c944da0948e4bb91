//! Putting messages into the outbox: one row per idempotency key
//! (insert-or-skip), with the survey run a planned message starts.

use chrono::Utc;
use rusqlite::{Connection, params};

use super::{immediate, ts};
use crate::domain::Phone;
use crate::domain::bookkeeping;
use crate::domain::message::{Enqueued, NewMessage};
use crate::store::StoreError;

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
