//! The queue: claiming the most urgent due message under a lease,
//! renewing and releasing leases, and when the next message falls due.
//! Both queries walk the `outbox_due` index one priority at a time.

use chrono::{DateTime, Utc};
use rusqlite::{Connection, OptionalExtension, params};

use super::rows::{AFTER, RETURNING, message, with_survey};
use super::state::{Change, set_state};
use super::{immediate, parse_ts, subject, ts};
use crate::domain::Phone;
use crate::domain::message::{Kind, OutState};
use crate::store::StoreError;
use crate::store::sqlite::{audit, members};
use crate::store::traits::outbox::{ClaimedMessage, InstanceId, Lease, MemberGate};

/// Returns lapsed leases' messages to the queue (those of `only` when
/// given, whatever their lease): possibly sent, in their old place in the
/// queue, audited.
pub(super) fn release(
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

/// When the next queued message falls due, if any.
pub(crate) fn next_due(conn: &Connection) -> Result<Option<DateTime<Utc>>, StoreError> {
    let t: Option<String> = conn
        .query_row(&next_due_sql(), [], |r| r.get(0))
        .optional()?
        .flatten();
    Ok(t.as_deref().and_then(parse_ts))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fresh() -> (tempfile::TempDir, Connection) {
        let dir = tempfile::tempdir().unwrap();
        let key = crate::store::sqlite::open::KeySource::Generated(dir.path().join("h.db.key"));
        let (conn, _) =
            crate::store::sqlite::open::open_connection(&dir.path().join("h.db"), &key).unwrap();
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
            let secret =
                crate::store::sqlite::open::generate_key_file(&dir.path().join("h.db.key"))
                    .unwrap();
            let mut conn = Connection::open(&path).unwrap();
            crate::store::sqlite::open::apply_key(&conn, &secret).unwrap();
            crate::store::sqlite::migrations::to_version(&mut conn, 3).unwrap();
            conn.execute(
                "INSERT INTO outbox (idempotency_key, to_phone, body, kind, priority, not_before, next_attempt_at,
                                     state, segments, created_at, updated_at)
                 VALUES ('k', '+15555550199', 'hi', 'escalation', 2, '2026-01-01T00:00:00.000Z',
                         '2026-01-01T00:00:00.000Z', 'sending', 1, '2026-01-01T00:00:00.000Z', '2026-01-01T00:00:00.000Z')",
                [],
            )
            .unwrap();
        }
        let key = crate::store::sqlite::open::KeySource::Generated(dir.path().join("h.db.key"));
        let (mut conn, _) = crate::store::sqlite::open::open_connection(&path, &key).unwrap();
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
