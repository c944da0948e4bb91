//! Applying one step of the escalation engine: the row's new position
//! under its `rev` guard, the incident's transition, the notices (an SMS
//! notice's message into the outbox), and the audit entries, in one
//! transaction.

use chrono::{DateTime, Utc};
use rusqlite::{Connection, params};

use super::rows::channel_str;
use super::{SYSTEM, i64_of, incident_subject};
use crate::domain::incident::IncidentState;
use crate::domain::message::Enqueued;
use crate::store::StoreError;
use crate::store::sqlite::audit;
use crate::store::sqlite::outbox::{self, immediate, ts};
use crate::store::traits::escalation::{EscalationWrite, NewNotice, NoticeState, Transition};

/// Moves the incident to `t.to` with who and how, and audits it.
fn transition(
    conn: &Connection,
    incident_id: i64,
    t: &Transition,
    now: DateTime<Utc>,
) -> Result<(), StoreError> {
    let from: String = conn
        .prepare_cached("SELECT state FROM incidents WHERE id = ?1")?
        .query_row([incident_id], |r| r.get(0))?;
    let at = ts(now);
    match t.to {
        IncidentState::Acknowledged => conn
            .prepare_cached(
                "UPDATE incidents SET state = 'acknowledged', acknowledged_by = ?2,
                     acknowledged_how = ?3, acknowledged_at = ?4, updated_at = ?4 WHERE id = ?1",
            )?
            .execute(params![incident_id, t.actor, t.how, at])?,
        IncidentState::Resolved => conn
            .prepare_cached(
                "UPDATE incidents SET state = 'resolved', resolved_by = ?2, resolved_how = ?3,
                     resolved_at = ?4, updated_at = ?4 WHERE id = ?1",
            )?
            .execute(params![incident_id, t.actor, t.how, at])?,
        IncidentState::Open => conn
            .prepare_cached(
                "UPDATE incidents SET state = 'open', acknowledged_by = NULL, acknowledged_how = NULL,
                     acknowledged_at = NULL, updated_at = ?2 WHERE id = ?1",
            )?
            .execute(params![incident_id, at])?,
    };
    if t.to == IncidentState::Resolved {
        conn.prepare_cached(
            "UPDATE escalations SET next_due = NULL, lapse_due = NULL WHERE incident_id = ?1",
        )?
        .execute([incident_id])?;
    }
    audit::append(
        conn,
        &t.actor,
        &t.action,
        Some(&incident_subject(incident_id)),
        serde_json::json!({ "from": from, "to": t.to.as_str(), "how": t.how }),
    )?;
    Ok(())
}

/// Writes one notice unless its key exists; an SMS notice's message goes
/// into the outbox with it. Returns the message's enqueueing, if any.
fn insert_notice(
    conn: &Connection,
    incident_id: i64,
    n: &NewNotice,
    now: DateTime<Utc>,
) -> Result<Option<Enqueued>, StoreError> {
    let at = ts(now);
    let (state, next_attempt) = match n.message {
        Some(_) => (NoticeState::Queued, None),
        None => (NoticeState::Pending, Some(at.as_str())),
    };
    let inserted = conn
        .prepare_cached(
            "INSERT INTO escalation_notices (incident_id, purpose, seq, step, round, contact, channel, state,
                                             address, subject, body, attempts, next_attempt, created_at, updated_at)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, 0, ?12, ?13, ?13)
             ON CONFLICT (incident_id, seq, contact, channel, purpose) DO NOTHING",
        )?
        .execute(params![
            incident_id,
            n.purpose.as_str(),
            i64_of(n.seq),
            n.step,
            n.round,
            n.contact,
            channel_str(n.channel),
            state.as_str(),
            n.address,
            n.subject,
            n.body,
            next_attempt,
            at
        ])?;
    if inserted == 0 {
        return Ok(None);
    }
    let Some(m) = &n.message else {
        return Ok(None);
    };
    let id = conn.last_insert_rowid();
    let queued = outbox::enqueue(conn, m)?;
    conn.prepare_cached("UPDATE escalation_notices SET outbox_id = ?2 WHERE id = ?1")?
        .execute(params![id, queued.id()])?;
    Ok(Some(queued))
}

/// Applies `w` if its guard holds; returns whether it did and whether a
/// new message went into the outbox.
pub(crate) fn write(
    conn: &mut Connection,
    w: &EscalationWrite,
) -> Result<(bool, bool), StoreError> {
    let tx = immediate(conn)?;
    let at = ts(w.now);
    let n = tx
        .prepare_cached(
            "UPDATE escalations SET next_position = ?3, next_due = ?4, seq = ?5, lapse_due = ?6,
                 exhausted = ?7, rev = rev + 1, updated_at = ?8
             WHERE incident_id = ?1 AND rev = ?2
               AND EXISTS (SELECT 1 FROM incidents WHERE id = ?1 AND state <> 'resolved')",
        )?
        .execute(params![
            w.incident_id,
            w.expect_rev,
            i64_of(w.next_position),
            w.next_due.map(ts),
            i64_of(w.seq),
            w.lapse_due.map(ts),
            w.exhausted,
            at
        ])?;
    if n == 0 {
        return Ok((false, false));
    }
    if let Some(t) = &w.transition {
        transition(&tx, w.incident_id, t, w.now)?;
    }
    let mut enqueued = false;
    for notice in &w.notices {
        enqueued |= matches!(
            insert_notice(&tx, w.incident_id, notice, w.now)?,
            Some(Enqueued::New(_))
        );
    }
    let subject = incident_subject(w.incident_id);
    for (action, detail) in &w.audit {
        audit::append(&tx, SYSTEM, action, Some(&subject), detail.clone())?;
    }
    tx.commit()?;
    Ok((true, enqueued))
}
