//! What staff see and do to the outbox: list and show messages, retry
//! the failed, cancel the queued; each change audited in the staff
//! member's name.

use chrono::{DateTime, Utc};
use rusqlite::{Connection, OptionalExtension, params};

use super::rows::{AFTER, COLUMNS, message, with_survey};
use super::state::{Change, set_state};
use super::{immediate, subject, ts};
use crate::domain::message::{Kind, OutState, OutboxMessage};
use crate::store::StoreError;
use crate::store::sqlite::audit;
use crate::store::traits::outbox::{ListFilter, RetryFilter};

/// `'a', 'b'` for an SQL `IN` list of states.
fn in_list(states: impl Iterator<Item = OutState>) -> String {
    states
        .map(|s| format!("'{}'", s.as_str()))
        .collect::<Vec<_>>()
        .join(", ")
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

/// Staff's retry: every retryable message matching the filter goes back
/// to the queue, due now, its expiry lifted; one audit entry each. Named
/// ids must exist and be retryable, or nothing is written.
pub(crate) fn retry(
    conn: &mut Connection,
    filter: &RetryFilter,
    actor: &str,
    now: DateTime<Utc>,
) -> Result<usize, StoreError> {
    check_retry_filter(filter)?;
    let tx = immediate(conn)?;
    let chosen = if filter.ids.is_empty() {
        retryable_matching(&tx, filter)?
    } else {
        named_for_retry(&tx, filter)?
    };
    let n = requeue(&tx, chosen, actor, now)?;
    tx.commit()?;
    Ok(n)
}

/// A message a retry takes: its id, its state, its member.
type Chosen = (i64, OutState, Option<i64>);

/// The filter's conditions (`?1` state, `?2` kind, `?3` since), each
/// ignored when not given; see [`filter_args`].
const RETRY_CONDITIONS: &str =
    "(?1 IS NULL OR state = ?1) AND (?2 IS NULL OR kind = ?2) AND (?3 IS NULL OR updated_at >= ?3)";

/// Refuses a retry that names nothing, or names a state never retried.
fn check_retry_filter(filter: &RetryFilter) -> Result<(), StoreError> {
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
    Ok(())
}

/// The values of [`RETRY_CONDITIONS`]' parameters.
fn filter_args(filter: &RetryFilter) -> (Option<&str>, Option<&str>, Option<String>) {
    (
        filter.state.map(OutState::as_str),
        filter.kind.map(Kind::as_str),
        filter.since.map(ts),
    )
}

fn chosen_row(r: &rusqlite::Row<'_>) -> rusqlite::Result<(i64, String, Option<i64>)> {
    Ok((r.get(0)?, r.get(1)?, r.get(2)?))
}

/// With no ids named: every retryable message the filter matches, in id
/// order.
fn retryable_matching(conn: &Connection, filter: &RetryFilter) -> Result<Vec<Chosen>, StoreError> {
    let retryable = in_list(OutState::ALL.into_iter().filter(|s| s.retryable()));
    let args = filter_args(filter);
    let mut stmt = conn.prepare(&format!(
        "SELECT id, state, member_id FROM outbox WHERE state IN ({retryable}) AND {RETRY_CONDITIONS} ORDER BY id"
    ))?;
    let mut chosen = Vec::new();
    for r in stmt.query_map(params![args.0, args.1, args.2], chosen_row)? {
        let (id, state, member) = r?;
        chosen.extend(OutState::parse(&state).map(|s| (id, s, member)));
    }
    Ok(chosen)
}

/// The named ids that match the rest of the filter: each must exist, and
/// each that matches must be retryable.
fn named_for_retry(conn: &Connection, filter: &RetryFilter) -> Result<Vec<Chosen>, StoreError> {
    let args = filter_args(filter);
    let mut stmt = conn.prepare(&format!(
        "SELECT id, state, member_id FROM outbox WHERE id = ?4 AND {RETRY_CONDITIONS}"
    ))?;
    let mut chosen = Vec::new();
    for &id in &filter.ids {
        let found = stmt
            .query_row(params![args.0, args.1, args.2, id], chosen_row)
            .optional()?;
        let Some((_, state, member)) = found else {
            if get(conn, id)?.is_none() {
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
    Ok(chosen)
}

/// Moves each chosen message back to the queue, due now, its expiry
/// lifted, audited in `actor`'s name; how many moved.
fn requeue(
    conn: &Connection,
    chosen: Vec<Chosen>,
    actor: &str,
    now: DateTime<Utc>,
) -> Result<usize, StoreError> {
    let reason = format!("retried by {actor}");
    let mut n = 0;
    for (id, from, member) in chosen {
        let change = Change {
            reason: Some(&reason),
            next_attempt_at: Some(now),
            clear_expiry: true,
            ..Change::default()
        };
        if set_state(conn, id, from, OutState::Queued, &change, now)? {
            audit::append(
                conn,
                actor,
                "outbox.retry",
                subject(conn, member)?.as_deref(),
                serde_json::json!({ "outbox": id, "from": from.as_str() }),
            )?;
            n += 1;
        }
    }
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
