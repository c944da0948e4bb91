//! Starting escalations: the incidents that follow a policy but have no
//! escalation yet, and the row that starts one (or marks it unstartable
//! when its policy is gone), audited.

use chrono::{DateTime, Utc};
use rusqlite::{Connection, params};

use super::{SYSTEM, incident_subject, limit_of};
use crate::domain::incident::Subject;
use crate::store::StoreError;
use crate::store::sqlite::audit;
use crate::store::sqlite::bad;
use crate::store::sqlite::outbox::{get_ts, immediate, ts};
use crate::store::traits::escalation::Unstarted;

pub(crate) fn unstarted(conn: &Connection, limit: usize) -> Result<Vec<Unstarted>, StoreError> {
    Ok(conn
        .prepare_cached(
            "SELECT i.id, i.subject, i.member_id, i.escalate, i.opened_at FROM incidents i
             WHERE i.state IN ('open', 'acknowledged') AND i.escalate IS NOT NULL
               AND NOT EXISTS (SELECT 1 FROM escalations e WHERE e.incident_id = i.id)
             ORDER BY i.opened_at, i.id LIMIT ?1",
        )?
        .query_map([limit_of(limit)], |r| {
            let subject: String = r.get(1)?;
            Ok(Unstarted {
                incident_id: r.get(0)?,
                subject: Subject::from_key(&subject)
                    .ok_or_else(|| bad(1, format!("unknown incident subject `{subject}`")))?,
                member_id: r.get(2)?,
                policy: r.get(3)?,
                opened_at: get_ts(r, 4)?,
            })
        })?
        .collect::<Result<Vec<_>, _>>()?)
}

/// Inserts an escalation row unless one exists; returns whether it did.
#[allow(clippy::too_many_arguments)]
fn insert_row(
    conn: &Connection,
    incident_id: i64,
    policy: &str,
    version: &str,
    pinned: &str,
    first_due: Option<DateTime<Utc>>,
    exhausted: bool,
    now: DateTime<Utc>,
) -> Result<bool, StoreError> {
    let n = conn
        .prepare_cached(
            "INSERT INTO escalations (incident_id, policy, version, pinned, next_position, next_due, seq,
                                      lapse_due, exhausted, rev, started_at, updated_at)
             VALUES (?1, ?2, ?3, ?4, 0, ?5, 0, NULL, ?6, 0, ?7, ?7)
             ON CONFLICT (incident_id) DO NOTHING",
        )?
        .execute(params![
            incident_id,
            policy,
            version,
            pinned,
            first_due.map(ts),
            exhausted,
            ts(now)
        ])?;
    Ok(n == 1)
}

pub(crate) fn start(
    conn: &mut Connection,
    incident_id: i64,
    policy: &str,
    version: &str,
    pinned: &str,
    first_due: DateTime<Utc>,
    now: DateTime<Utc>,
) -> Result<bool, StoreError> {
    let tx = immediate(conn)?;
    if !insert_row(
        &tx,
        incident_id,
        policy,
        version,
        pinned,
        Some(first_due),
        false,
        now,
    )? {
        return Ok(false);
    }
    audit::append(
        &tx,
        SYSTEM,
        "escalation.started",
        Some(&incident_subject(incident_id)),
        serde_json::json!({ "policy": policy, "version": version }),
    )?;
    tx.commit()?;
    Ok(true)
}

pub(crate) fn unstartable(
    conn: &mut Connection,
    incident_id: i64,
    policy: &str,
    now: DateTime<Utc>,
) -> Result<bool, StoreError> {
    let tx = immediate(conn)?;
    if !insert_row(&tx, incident_id, policy, "", "{}", None, true, now)? {
        return Ok(false);
    }
    audit::append(
        &tx,
        SYSTEM,
        "escalation.no_policy",
        Some(&incident_subject(incident_id)),
        serde_json::json!({ "policy": policy }),
    )?;
    tx.commit()?;
    Ok(true)
}
