//! Incidents: hits folded into incidents, evidence, listing.
//!
//! [`record_hit`] is the one way a hit is written: it reads what the
//! subject has open inside the caller's write transaction, decides with
//! [`fold`] and writes the incident (or not) and one evidence row, then one
//! audit entry naming the incident, alert, severity, member id and inbound
//! id, never the evidence text (audit entries carry no PHI). The reply
//! transaction (`ReplyStore::apply_reply`) and scheduled alerts
//! ([`IncidentStore::record_hits`]) both go through it, so they decide
//! alike. A crisis reply that cannot be sent is noted on its incident by
//! [`note_not_texted`], from the outbox's one state-change function.

use chrono::{DateTime, Utc};
use rusqlite::{Connection, OptionalExtension, params};

use super::SqliteStore;
use super::audit;
use super::outbox::{get_opt_ts, get_ts, immediate, ts};
use crate::domain::incident::{
    AlertHit, Evidence, HitDecision, Incident, IncidentState, Severity, Subject, SubjectIncidents,
    fold,
};
use crate::store::StoreError;
use crate::store::sqlite::bad;
use crate::store::traits::IncidentStore;
use crate::store::traits::incident::{HitOutcome, IncidentCounts, IncidentFilter};
use crate::store::traits::reply::{FollowUp, OpenCritical};

/// What the subject has unresolved (open or acknowledged), oldest first,
/// and the newest incident per alert.
pub(crate) fn subject_facts(
    conn: &Connection,
    subject: &Subject,
) -> Result<SubjectIncidents, StoreError> {
    let key = subject.key();
    let open = conn
        .prepare_cached(
            "SELECT id, alert, severity FROM incidents
             WHERE subject = ?1 AND state IN ('open', 'acknowledged') ORDER BY id",
        )?
        .query_map([&key], |r| {
            let severity: String = r.get(2)?;
            Ok((r.get(0)?, r.get(1)?, severity_of(2, &severity)?))
        })?
        .collect::<Result<Vec<_>, _>>()?;
    // SQLite takes the bare columns from the row holding max(opened_at).
    let last_opened = conn
        .prepare_cached(
            "SELECT alert, id, max(opened_at) FROM incidents WHERE subject = ?1 GROUP BY alert ORDER BY alert",
        )?
        .query_map([&key], |r| Ok((r.get(0)?, r.get(1)?, get_ts(r, 2)?)))?
        .collect::<Result<Vec<_>, _>>()?;
    Ok(SubjectIncidents { open, last_opened })
}

fn severity_of(i: usize, s: &str) -> rusqlite::Result<Severity> {
    Severity::parse(s).ok_or_else(|| {
        rusqlite::Error::FromSqlConversionFailure(
            i,
            rusqlite::types::Type::Text,
            format!("unknown severity `{s}`").into(),
        )
    })
}

fn kind_of(decision: HitDecision) -> &'static str {
    match decision {
        HitDecision::Open => "opened",
        HitDecision::Join { .. } => "joined",
        HitDecision::Realert { .. } => "realert",
    }
}

/// Folds one hit against what its subject has open (read here, inside the
/// caller's write transaction) and records it: a new incident or evidence
/// on an existing one, and an audit entry without the evidence text.
pub(crate) fn record_hit(
    conn: &Connection,
    hit: &AlertHit,
    now: DateTime<Utc>,
) -> Result<HitOutcome, StoreError> {
    let facts = subject_facts(conn, &hit.subject)?;
    let decision = fold(hit, &facts, now);
    let at = ts(now);
    let incident = match decision.incident() {
        Some(id) => {
            conn.prepare_cached("UPDATE incidents SET updated_at = ?2 WHERE id = ?1")?
                .execute(params![id, at])?;
            id
        }
        None => {
            conn.prepare_cached(
                "INSERT INTO incidents (subject, member_id, alert, severity, state, escalate, opened_at, updated_at)
                 VALUES (?1, ?2, ?3, ?4, 'open', ?5, ?6, ?6)",
            )?
            .execute(params![
                hit.subject.key(),
                hit.subject.member_id(),
                hit.alert,
                hit.severity.as_str(),
                hit.escalate,
                at
            ])?;
            conn.last_insert_rowid()
        }
    };
    let kind = kind_of(decision);
    conn.prepare_cached(
        "INSERT INTO incident_evidence (incident_id, at, alert, inbound_id, text, kind, reply_key, quote)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
    )?
    .execute(params![
        incident,
        at,
        hit.alert,
        hit.inbound_id,
        hit.evidence,
        kind,
        hit.reply_key,
        hit.quote
    ])?;
    audit::append(
        conn,
        "hearth",
        &format!("incident.{kind}"),
        Some(&format!("incident:{incident}")),
        serde_json::json!({
            "alert": hit.alert,
            "severity": hit.severity.as_str(),
            "member": hit.subject.member_id(),
            "inbound": hit.inbound_id,
        }),
    )?;
    Ok(HitOutcome { decision, incident })
}

/// Notes on the incident whose evidence carries `reply_key` (the crisis
/// reply's idempotency key) that the member could not be texted, once per
/// failure of that reply. `why` must hold no PHI. Nothing happens when no
/// incident names the key.
pub(crate) fn note_not_texted(
    conn: &Connection,
    reply_key: &str,
    why: &str,
    now: DateTime<Utc>,
) -> Result<Option<i64>, StoreError> {
    let found: Option<(i64, String, Option<i64>)> = conn
        .prepare_cached(
            "SELECT incident_id, alert, inbound_id FROM incident_evidence
             WHERE reply_key = ?1 AND kind <> 'not_texted' ORDER BY id LIMIT 1",
        )?
        .query_row([reply_key], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))
        .optional()?;
    let Some((incident, alert, inbound)) = found else {
        return Ok(None);
    };
    let at = ts(now);
    conn.prepare_cached(
        "INSERT INTO incident_evidence (incident_id, at, alert, inbound_id, text, kind, reply_key)
         VALUES (?1, ?2, ?3, ?4, ?5, 'not_texted', ?6)",
    )?
    .execute(params![
        incident,
        at,
        alert,
        inbound,
        format!("the member could not be texted: {why}"),
        reply_key
    ])?;
    conn.prepare_cached("UPDATE incidents SET updated_at = ?2 WHERE id = ?1")?
        .execute(params![incident, at])?;
    audit::append(
        conn,
        "hearth",
        "incident.not_texted",
        Some(&format!("incident:{incident}")),
        serde_json::json!({ "alert": alert, "inbound": inbound }),
    )?;
    Ok(Some(incident))
}

/// The subject's oldest unresolved critical incident, whether someone
/// acknowledged it, and when its follow-up reply last went out.
pub(crate) fn open_critical(
    conn: &Connection,
    subject: &Subject,
) -> Result<Option<OpenCritical>, StoreError> {
    Ok(conn
        .prepare_cached(
            "SELECT i.id, i.state = 'acknowledged',
                    (SELECT max(e.at) FROM incident_evidence e
                     WHERE e.incident_id = i.id AND e.kind = 'follow_up' AND e.reply_key IS NOT NULL)
             FROM incidents i
             WHERE i.subject = ?1 AND i.severity = 'critical' AND i.state IN ('open', 'acknowledged')
             ORDER BY i.id LIMIT 1",
        )?
        .query_row([subject.key()], |r| {
            Ok(OpenCritical {
                incident: r.get(0)?,
                acknowledged: r.get(1)?,
                last_reply_at: get_opt_ts(r, 2)?,
            })
        })
        .optional()?)
}

/// Keeps a follow-up text on its incident (evidence `follow_up`, audited
/// `incident.follow_up` without the text) if the incident is still
/// unresolved; returns the incident then, `None` when it was resolved
/// meanwhile.
pub(crate) fn follow_up(
    conn: &Connection,
    f: &FollowUp,
    inbound_id: i64,
    now: DateTime<Utc>,
) -> Result<Option<i64>, StoreError> {
    let alert: Option<String> = conn
        .prepare_cached(
            "SELECT alert FROM incidents WHERE id = ?1 AND state IN ('open', 'acknowledged')",
        )?
        .query_row([f.incident], |r| r.get(0))
        .optional()?;
    let Some(alert) = alert else {
        return Ok(None);
    };
    let Some(text) = &f.evidence else {
        return Ok(Some(f.incident));
    };
    let at = ts(now);
    conn.prepare_cached(
        "INSERT INTO incident_evidence (incident_id, at, alert, inbound_id, text, kind, reply_key)
         VALUES (?1, ?2, ?3, ?4, ?5, 'follow_up', ?6)",
    )?
    .execute(params![
        f.incident,
        at,
        alert,
        inbound_id,
        text,
        f.reply_key
    ])?;
    conn.prepare_cached("UPDATE incidents SET updated_at = ?2 WHERE id = ?1")?
        .execute(params![f.incident, at])?;
    audit::append(
        conn,
        "hearth",
        "incident.follow_up",
        Some(&format!("incident:{}", f.incident)),
        serde_json::json!({ "inbound": inbound_id, "replied": f.reply_key.is_some() }),
    )?;
    Ok(Some(f.incident))
}

const INCIDENT_COLUMNS: &str =
    "i.id, i.subject, i.member_id, m.external_id, i.alert, i.severity, i.state, i.escalate,
     i.opened_at, i.updated_at, i.acknowledged_by, i.acknowledged_how, i.acknowledged_at,
     i.resolved_by, i.resolved_how, i.resolved_at";

fn incident_row(r: &rusqlite::Row<'_>) -> rusqlite::Result<Incident> {
    let subject: String = r.get(1)?;
    let severity: String = r.get(5)?;
    let state: String = r.get(6)?;
    Ok(Incident {
        id: r.get(0)?,
        subject: Subject::from_key(&subject)
            .ok_or_else(|| bad(1, format!("unknown incident subject `{subject}`")))?,
        member_id: r.get(2)?,
        member_external_id: r.get(3)?,
        alert: r.get(4)?,
        severity: severity_of(5, &severity)?,
        state: IncidentState::parse(&state)
            .ok_or_else(|| bad(6, format!("unknown incident state `{state}`")))?,
        escalate: r.get(7)?,
        opened_at: get_ts(r, 8)?,
        updated_at: get_ts(r, 9)?,
        acknowledged_by: r.get(10)?,
        acknowledged_how: r.get(11)?,
        acknowledged_at: get_opt_ts(r, 12)?,
        resolved_by: r.get(13)?,
        resolved_how: r.get(14)?,
        resolved_at: get_opt_ts(r, 15)?,
        evidence: Vec::new(),
    })
}

fn evidence(conn: &Connection, incident: i64) -> Result<Vec<Evidence>, StoreError> {
    Ok(conn
        .prepare_cached(
            "SELECT at, alert, inbound_id, text, kind, quote FROM incident_evidence
             WHERE incident_id = ?1 ORDER BY id",
        )?
        .query_map([incident], |r| {
            Ok(Evidence {
                at: get_ts(r, 0)?,
                alert: r.get(1)?,
                inbound_id: r.get(2)?,
                text: r.get(3)?,
                kind: r.get(4)?,
                quote: r.get(5)?,
            })
        })?
        .collect::<Result<Vec<_>, _>>()?)
}

pub(crate) fn list(
    conn: &Connection,
    filter: &IncidentFilter,
) -> Result<Vec<Incident>, StoreError> {
    let limit = filter
        .limit
        .map_or(-1, |l| i64::try_from(l).unwrap_or(i64::MAX));
    let mut out = conn
        .prepare_cached(&format!(
            "SELECT {INCIDENT_COLUMNS} FROM incidents i LEFT JOIN members m ON m.id = i.member_id
             WHERE (?1 = 0 OR i.state = 'open') AND (?4 = 0 OR i.state IN ('open', 'acknowledged'))
               AND (?2 IS NULL OR m.external_id = ?2)
             ORDER BY i.id DESC LIMIT ?3"
        ))?
        .query_map(
            params![filter.open_only, filter.member, limit, filter.unresolved],
            incident_row,
        )?
        .collect::<Result<Vec<_>, _>>()?;
    for i in &mut out {
        i.evidence = evidence(conn, i.id)?;
    }
    Ok(out)
}

pub(crate) fn get(conn: &Connection, id: i64) -> Result<Option<Incident>, StoreError> {
    let found = conn
        .prepare_cached(&format!(
            "SELECT {INCIDENT_COLUMNS} FROM incidents i LEFT JOIN members m ON m.id = i.member_id
             WHERE i.id = ?1"
        ))?
        .query_row([id], incident_row)
        .optional()?;
    match found {
        Some(mut i) => {
            i.evidence = evidence(conn, i.id)?;
            Ok(Some(i))
        }
        None => Ok(None),
    }
}

fn counts(conn: &Connection) -> Result<IncidentCounts, StoreError> {
    let count = |r: &rusqlite::Row<'_>, i: usize| -> rusqlite::Result<u64> {
        Ok(u64::try_from(r.get::<_, i64>(i)?).unwrap_or(0))
    };
    Ok(conn
        .prepare_cached(
            "SELECT coalesce(sum(state = 'open'), 0), coalesce(sum(state = 'acknowledged'), 0),
                    coalesce(sum(severity = 'critical'), 0)
             FROM incidents WHERE state IN ('open', 'acknowledged')",
        )?
        .query_row([], |r| {
            Ok(IncidentCounts {
                open: count(r, 0)?,
                acknowledged: count(r, 1)?,
                critical_unresolved: count(r, 2)?,
            })
        })?)
}

impl SqliteStore {
    /// How many incidents are open (not acknowledged), and how many of
    /// those are critical: `/status`'s counts, in one query rather than
    /// every incident read. [`IncidentStore::incident_counts`] also counts
    /// the acknowledged ones.
    pub async fn open_incident_counts(&self) -> Result<(u64, u64), StoreError> {
        self.read(|c| {
            Ok(c.prepare_cached(
                "SELECT count(*), coalesce(sum(severity = 'critical'), 0) FROM incidents WHERE state = 'open'",
            )?
            .query_row([], |r| {
                Ok((
                    u64::try_from(r.get::<_, i64>(0)?).unwrap_or(0),
                    u64::try_from(r.get::<_, i64>(1)?).unwrap_or(0),
                ))
            })?)
        })
        .await
    }
}

impl IncidentStore for SqliteStore {
    async fn record_hits(
        &self,
        hits: Vec<AlertHit>,
        now: DateTime<Utc>,
    ) -> Result<Vec<HitOutcome>, StoreError> {
        self.call(move |c| {
            let tx = immediate(c)?;
            let out = hits
                .iter()
                .map(|h| record_hit(&tx, h, now))
                .collect::<Result<Vec<_>, _>>()?;
            tx.commit()?;
            Ok(out)
        })
        .await
    }

    async fn subject_incidents(&self, subject: &Subject) -> Result<SubjectIncidents, StoreError> {
        let subject = subject.clone();
        self.read(move |c| subject_facts(c, &subject)).await
    }

    async fn incidents(&self, filter: &IncidentFilter) -> Result<Vec<Incident>, StoreError> {
        let filter = filter.clone();
        self.read(move |c| list(c, &filter)).await
    }

    async fn incident(&self, id: i64) -> Result<Option<Incident>, StoreError> {
        self.read(move |c| get(c, id)).await
    }

    async fn incident_counts(&self) -> Result<IncidentCounts, StoreError> {
        self.read(counts).await
    }
}
