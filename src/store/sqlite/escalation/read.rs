//! Reading escalations: those due now, when the next falls due (a step,
//! a lapse, or a pending notice), one by incident, and all still open.

use chrono::{DateTime, Utc};
use rusqlite::{Connection, OptionalExtension, params};

use super::limit_of;
use super::rows::{ROW_COLUMNS, row};
use crate::store::StoreError;
use crate::store::sqlite::outbox::{self, ts};
use crate::store::traits::escalation::EscalationRow;

pub(crate) fn due(
    conn: &Connection,
    now: DateTime<Utc>,
    limit: usize,
) -> Result<Vec<EscalationRow>, StoreError> {
    // Each timer through its own partial index; the earlier of a row's two
    // times orders it (min() of a NULL is NULL, hence the coalesces).
    Ok(conn
        .prepare_cached(&format!(
            "SELECT {ROW_COLUMNS} FROM escalations e JOIN incidents i ON i.id = e.incident_id
             WHERE e.incident_id IN (SELECT incident_id FROM escalations WHERE next_due <= ?1
                                     UNION SELECT incident_id FROM escalations WHERE lapse_due <= ?1)
               AND i.state <> 'resolved'
             ORDER BY min(coalesce(e.next_due, e.lapse_due), coalesce(e.lapse_due, e.next_due)), e.incident_id
             LIMIT ?2"
        ))?
        .query_map(params![ts(now), limit_of(limit)], row)?
        .collect::<Result<Vec<_>, _>>()?)
}

pub(crate) fn next_due(conn: &Connection) -> Result<Option<DateTime<Utc>>, StoreError> {
    // Walks each index from its earliest entry to the first unresolved
    // incident's (resolving clears both timers, so that is the first).
    let found: Option<String> = conn
        .prepare_cached(
            "SELECT min(t) FROM (
                 SELECT (SELECT e.next_due FROM escalations e JOIN incidents i ON i.id = e.incident_id
                         WHERE e.next_due IS NOT NULL AND i.state <> 'resolved'
                         ORDER BY e.next_due LIMIT 1) AS t
                 UNION ALL
                 SELECT (SELECT e.lapse_due FROM escalations e JOIN incidents i ON i.id = e.incident_id
                         WHERE e.lapse_due IS NOT NULL AND i.state <> 'resolved'
                         ORDER BY e.lapse_due LIMIT 1)
                 UNION ALL
                 SELECT (SELECT min(next_attempt) FROM escalation_notices WHERE state = 'pending'))",
        )?
        .query_row([], |r| r.get(0))?;
    found
        .map(|s| {
            outbox::parse_ts(&s)
                .ok_or_else(|| StoreError::Backend(format!("not a timestamp: `{s}`")))
        })
        .transpose()
}

pub(crate) fn get(
    conn: &Connection,
    incident_id: i64,
) -> Result<Option<EscalationRow>, StoreError> {
    Ok(conn
        .prepare_cached(&format!(
            "SELECT {ROW_COLUMNS} FROM escalations e JOIN incidents i ON i.id = e.incident_id
             WHERE e.incident_id = ?1"
        ))?
        .query_row([incident_id], row)
        .optional()?)
}

pub(crate) fn open(conn: &Connection) -> Result<Vec<EscalationRow>, StoreError> {
    Ok(conn
        .prepare_cached(&format!(
            "SELECT {ROW_COLUMNS} FROM incidents i JOIN escalations e ON e.incident_id = i.id
             WHERE i.state IN ('open', 'acknowledged') ORDER BY i.id"
        ))?
        .query_map([], row)?
        .collect::<Result<Vec<_>, _>>()?)
}
