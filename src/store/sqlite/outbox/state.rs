//! The one transition: every change of a message's state (claims
//! excepted) goes through [`set_state`], checked against
//! [`OutState::may_move`] and written as a compare-and-set on the state it
//! read.

use chrono::{DateTime, Utc};
use rusqlite::{Connection, OptionalExtension, params};

use super::ts;
use crate::domain::bookkeeping;
use crate::domain::message::{Kind, OutState};
use crate::store::StoreError;

/// What else changes with a state.
#[derive(Default)]
pub(crate) struct Change<'a> {
    pub(super) reason: Option<&'a str>,
    pub(super) provider: Option<(&'a str, Option<&'a str>)>,
    pub(super) next_attempt_at: Option<DateTime<Utc>>,
    /// Added to `attempts` (a deferral gives its attempt back).
    pub(super) attempts: i64,
    pub(super) possibly_sent: bool,
    pub(super) clear_expiry: bool,
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
        crate::store::sqlite::incident::note_not_texted(conn, &key, &why, now)?;
    }
    Ok(())
}

pub(super) fn state_of(conn: &Connection, id: i64) -> Result<OutState, StoreError> {
    let s: Option<String> = conn
        .query_row("SELECT state FROM outbox WHERE id = ?1", [id], |r| r.get(0))
        .optional()?;
    let s = s.ok_or_else(|| StoreError::NotFound(format!("outbox message #{id}")))?;
    OutState::parse(&s)
        .ok_or_else(|| StoreError::Invalid(format!("outbox message #{id} has unknown state `{s}`")))
}
