//! Escalation notices after they are written: an incident's notices, the
//! email and webhook notices waiting for the delivery worker, and the
//! worker's report of each attempt.

use chrono::{DateTime, Utc};
use rusqlite::{Connection, OptionalExtension, params};

use super::rows::{NOTICE_COLUMNS, notice};
use super::{SYSTEM, incident_subject, limit_of};
use crate::store::StoreError;
use crate::store::sqlite::audit;
use crate::store::sqlite::outbox::{immediate, ts};
use crate::store::traits::escalation::{Notice, NoticeState};

pub(crate) fn notices(conn: &Connection, incident_id: i64) -> Result<Vec<Notice>, StoreError> {
    Ok(conn
        .prepare_cached(&format!(
            "SELECT {NOTICE_COLUMNS} FROM escalation_notices n LEFT JOIN outbox o ON o.id = n.outbox_id
             WHERE n.incident_id = ?1 ORDER BY n.id"
        ))?
        .query_map([incident_id], notice)?
        .collect::<Result<Vec<_>, _>>()?)
}

pub(crate) fn pending(
    conn: &Connection,
    now: DateTime<Utc>,
    limit: usize,
) -> Result<Vec<Notice>, StoreError> {
    Ok(conn
        .prepare_cached(&format!(
            "SELECT {NOTICE_COLUMNS} FROM escalation_notices n LEFT JOIN outbox o ON o.id = n.outbox_id
             WHERE n.state = 'pending' AND n.next_attempt <= ?1
             ORDER BY n.next_attempt, n.id LIMIT ?2"
        ))?
        .query_map(params![ts(now), limit_of(limit)], notice)?
        .collect::<Result<Vec<_>, _>>()?)
}

pub(crate) fn settle(
    conn: &mut Connection,
    notice_id: i64,
    outcome: &Result<(), (String, Option<DateTime<Utc>>)>,
    now: DateTime<Utc>,
) -> Result<(), StoreError> {
    let tx = immediate(conn)?;
    let found: Option<(i64, String, String, String)> = tx
        .prepare_cached(
            "SELECT incident_id, state, channel, contact FROM escalation_notices WHERE id = ?1",
        )?
        .query_row([notice_id], |r| {
            Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?))
        })
        .optional()?;
    let Some((incident_id, state, channel, contact)) = found else {
        return Err(StoreError::NotFound(format!(
            "escalation notice #{notice_id}"
        )));
    };
    // Only a pending notice takes an attempt: a late second report of
    // one already settled changes nothing.
    if state != NoticeState::Pending.as_str() {
        return Ok(());
    }
    let at = ts(now);
    match outcome {
        Ok(()) => {
            tx.prepare_cached(
                "UPDATE escalation_notices SET state = 'sent', attempts = attempts + 1,
                     next_attempt = NULL, updated_at = ?2 WHERE id = ?1",
            )?
            .execute(params![notice_id, at])?;
        }
        Err((error, Some(retry_at))) => {
            tx.prepare_cached(
                "UPDATE escalation_notices SET attempts = attempts + 1, last_error = ?2,
                     next_attempt = ?3, updated_at = ?4 WHERE id = ?1",
            )?
            .execute(params![notice_id, error, ts(*retry_at), at])?;
        }
        Err((error, None)) => {
            tx.prepare_cached(
                "UPDATE escalation_notices SET state = 'failed', attempts = attempts + 1, last_error = ?2,
                     next_attempt = NULL, updated_at = ?3 WHERE id = ?1",
            )?
            .execute(params![notice_id, error, at])?;
            audit::append(
                &tx,
                SYSTEM,
                "escalation.notice_failed",
                Some(&incident_subject(incident_id)),
                serde_json::json!({ "notice": notice_id, "channel": channel, "contact": contact }),
            )?;
        }
    }
    tx.commit()?;
    Ok(())
}
