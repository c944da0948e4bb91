//! Escalations in SQLite: one `escalations` row per incident that follows
//! a policy, one `escalation_notices` row per notice.
//!
//! Every write is one `IMMEDIATE` transaction. [`write`] applies an
//! [`EscalationWrite`] only while the row's `rev` is what the caller read
//! and the incident is not resolved (one `UPDATE … WHERE rev = ?`), so of
//! two writers that read the same row only the first applies. An SMS
//! notice's message goes into the outbox in the same transaction, through
//! the outbox's own insert-or-skip ([`outbox::enqueue`]), so it is sent at
//! escalation priority past quiet hours and caps; email and webhook
//! notices wait here (`pending`) for the delivery worker, which reports
//! each attempt with [`settle`]. Audit entries name the incident and
//! contact ids, never a number, an address or a body.

use chrono::{DateTime, Utc};
use rusqlite::{Connection, OptionalExtension, params};

use super::outbox::{self, get_opt_ts, get_ts, immediate, ts};
use super::{SqliteStore, audit};
use crate::domain::Channel;
use crate::domain::incident::{IncidentState, Severity, Subject};
use crate::domain::message::Enqueued;
use crate::store::StoreError;
use crate::store::traits::EscalationStore;
use crate::store::traits::OutboxStore;
use crate::store::traits::escalation::{
    EscalationRow, EscalationWrite, NewNotice, Notice, NoticeState, Purpose, Transition, Unstarted,
};

/// The actor of the audit entries the escalation engine writes itself.
const SYSTEM: &str = "system";

fn bad(i: usize, what: String) -> rusqlite::Error {
    rusqlite::Error::FromSqlConversionFailure(i, rusqlite::types::Type::Text, what.into())
}

fn channel_str(c: Channel) -> &'static str {
    match c {
        Channel::Sms => "sms",
        Channel::Email => "email",
        Channel::Webhook => "webhook",
    }
}

fn channel_of(i: usize, s: &str) -> rusqlite::Result<Channel> {
    match s {
        "sms" => Ok(Channel::Sms),
        "email" => Ok(Channel::Email),
        "webhook" => Ok(Channel::Webhook),
        other => Err(bad(i, format!("unknown notice channel `{other}`"))),
    }
}

fn u64_of(r: &rusqlite::Row<'_>, i: usize) -> rusqlite::Result<u64> {
    let v: i64 = r.get(i)?;
    u64::try_from(v).map_err(|_| bad(i, format!("a negative count: {v}")))
}

fn opt_u32_of(r: &rusqlite::Row<'_>, i: usize) -> rusqlite::Result<Option<u32>> {
    let v: Option<i64> = r.get(i)?;
    v.map(|v| u32::try_from(v).map_err(|_| bad(i, format!("out of range: {v}"))))
        .transpose()
}

fn i64_of(v: u64) -> i64 {
    i64::try_from(v).unwrap_or(i64::MAX)
}

fn limit_of(limit: usize) -> i64 {
    i64::try_from(limit).unwrap_or(i64::MAX)
}

fn incident_subject(id: i64) -> String {
    format!("incident:{id}")
}

/// The columns [`row`] reads, `e` the escalation, `i` its incident.
const ROW_COLUMNS: &str =
    "e.incident_id, e.policy, e.version, e.pinned, e.next_position, e.next_due,
     e.seq, e.lapse_due, e.exhausted, e.rev, e.started_at, e.updated_at,
     i.state, i.alert, i.severity, i.subject, i.member_id, i.opened_at,
     i.acknowledged_by, i.acknowledged_at";

fn row(r: &rusqlite::Row<'_>) -> rusqlite::Result<EscalationRow> {
    let state: String = r.get(12)?;
    let severity: String = r.get(14)?;
    let subject: String = r.get(15)?;
    Ok(EscalationRow {
        incident_id: r.get(0)?,
        policy: r.get(1)?,
        version: r.get(2)?,
        pinned: r.get(3)?,
        next_position: u64_of(r, 4)?,
        next_due: get_opt_ts(r, 5)?,
        seq: u64_of(r, 6)?,
        lapse_due: get_opt_ts(r, 7)?,
        exhausted: r.get(8)?,
        rev: r.get(9)?,
        started_at: get_ts(r, 10)?,
        updated_at: get_ts(r, 11)?,
        state: IncidentState::parse(&state)
            .ok_or_else(|| bad(12, format!("unknown incident state `{state}`")))?,
        alert: r.get(13)?,
        severity: Severity::parse(&severity)
            .ok_or_else(|| bad(14, format!("unknown severity `{severity}`")))?,
        subject: Subject::from_key(&subject)
            .ok_or_else(|| bad(15, format!("unknown incident subject `{subject}`")))?,
        member_id: r.get(16)?,
        opened_at: get_ts(r, 17)?,
        acknowledged_by: r.get(18)?,
        acknowledged_at: get_opt_ts(r, 19)?,
    })
}

/// The columns [`notice`] reads, `n` the notice, `o` its outbox row (a
/// left join).
const NOTICE_COLUMNS: &str =
    "n.id, n.incident_id, n.purpose, n.seq, n.step, n.round, n.contact, n.channel,
     n.address, n.subject, n.body, coalesce(o.state, n.state), n.outbox_id, n.attempts,
     n.next_attempt, n.last_error, n.created_at, n.updated_at";

fn notice(r: &rusqlite::Row<'_>) -> rusqlite::Result<Notice> {
    let purpose: String = r.get(2)?;
    let channel: String = r.get(7)?;
    let attempts: i64 = r.get(13)?;
    Ok(Notice {
        id: r.get(0)?,
        incident_id: r.get(1)?,
        purpose: Purpose::parse(&purpose)
            .ok_or_else(|| bad(2, format!("unknown notice purpose `{purpose}`")))?,
        seq: u64_of(r, 3)?,
        step: opt_u32_of(r, 4)?,
        round: opt_u32_of(r, 5)?,
        contact: r.get(6)?,
        channel: channel_of(7, &channel)?,
        address: r.get(8)?,
        subject: r.get(9)?,
        body: r.get(10)?,
        state: r.get(11)?,
        outbox_id: r.get(12)?,
        attempts: u32::try_from(attempts).unwrap_or(0),
        next_attempt: get_opt_ts(r, 14)?,
        last_error: r.get(15)?,
        created_at: get_ts(r, 16)?,
        updated_at: get_ts(r, 17)?,
    })
}

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

impl EscalationStore for SqliteStore {
    async fn unstarted_escalations(&self, limit: usize) -> Result<Vec<Unstarted>, StoreError> {
        self.read(move |c| unstarted(c, limit)).await
    }

    async fn start_escalation(
        &self,
        incident_id: i64,
        policy: &str,
        version: &str,
        pinned: &str,
        first_due: DateTime<Utc>,
        now: DateTime<Utc>,
    ) -> Result<bool, StoreError> {
        let (policy, version, pinned) = (policy.to_owned(), version.to_owned(), pinned.to_owned());
        self.call(move |c| start(c, incident_id, &policy, &version, &pinned, first_due, now))
            .await
    }

    async fn mark_escalation_unstartable(
        &self,
        incident_id: i64,
        policy: &str,
        now: DateTime<Utc>,
    ) -> Result<bool, StoreError> {
        let policy = policy.to_owned();
        self.call(move |c| unstartable(c, incident_id, &policy, now))
            .await
    }

    async fn due_escalations(
        &self,
        now: DateTime<Utc>,
        limit: usize,
    ) -> Result<Vec<EscalationRow>, StoreError> {
        // On the writer's connection: the engine writes after each read,
        // and reads what it wrote just before.
        self.call(move |c| due(c, now, limit)).await
    }

    async fn next_escalation_due(&self) -> Result<Option<DateTime<Utc>>, StoreError> {
        self.call(|c| next_due(c)).await
    }

    async fn escalation(&self, incident_id: i64) -> Result<Option<EscalationRow>, StoreError> {
        self.call(move |c| get(c, incident_id)).await
    }

    async fn open_escalations(&self) -> Result<Vec<EscalationRow>, StoreError> {
        self.read(open).await
    }

    async fn write_escalation(&self, w: EscalationWrite) -> Result<bool, StoreError> {
        let (applied, enqueued) = self.call(move |c| write(c, &w)).await?;
        if enqueued {
            self.enqueued().notify_one();
        }
        Ok(applied)
    }

    async fn notices(&self, incident_id: i64) -> Result<Vec<Notice>, StoreError> {
        self.read(move |c| notices(c, incident_id)).await
    }

    async fn pending_notices(
        &self,
        now: DateTime<Utc>,
        limit: usize,
    ) -> Result<Vec<Notice>, StoreError> {
        self.call(move |c| pending(c, now, limit)).await
    }

    async fn settle_notice(
        &self,
        notice_id: i64,
        outcome: Result<(), (String, Option<DateTime<Utc>>)>,
        now: DateTime<Utc>,
    ) -> Result<(), StoreError> {
        self.call(move |c| settle(c, notice_id, &outcome, now))
            .await
    }
}
