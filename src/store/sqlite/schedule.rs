//! The scheduler's tables: schedule marks, fire records, survey runs, and
//! the fan-out and frequency-cap queries.
//!
//! Planned messages live in the outbox (its `schedule_id`, `fire_at`,
//! `generation`, `schedule_version` and `sent_at` columns); cancelling
//! them moves each through the outbox's one state rule, like any other
//! state change.

use std::collections::HashMap;

use chrono::{DateTime, Utc};
use rusqlite::{Connection, OptionalExtension, params};

use super::outbox::{Change, get_opt_ts, get_ts, immediate, set_state, ts};
use super::{SqliteStore, audit, members};
use crate::domain::member::{
    ConsentAction, ConsentEvent, ConsentSource, ConsentState, Member, MemberStatus,
};
use crate::domain::message::{Kind, OutState};
use crate::store::StoreError;
use crate::store::sqlite::bad;
use crate::store::traits::ScheduleStore;
use crate::store::traits::schedule::{
    FireRecord, FireStatus, RecipientFilter, ScheduleMark, SurveyRun,
};

fn to_i64(n: u64) -> i64 {
    i64::try_from(n).unwrap_or(i64::MAX)
}

fn to_u64(n: i64) -> u64 {
    u64::try_from(n).unwrap_or(0)
}

pub(crate) fn marks(conn: &Connection) -> Result<Vec<ScheduleMark>, StoreError> {
    let mut stmt = conn.prepare_cached(
        "SELECT schedule, version, last_fire FROM schedule_marks ORDER BY schedule",
    )?;
    Ok(stmt
        .query_map([], |r| {
            Ok(ScheduleMark {
                schedule: r.get(0)?,
                version: r.get(1)?,
                last_fire: get_ts(r, 2)?,
            })
        })?
        .collect::<Result<Vec<_>, _>>()?)
}

pub(crate) fn set_mark(conn: &Connection, mark: &ScheduleMark) -> Result<(), StoreError> {
    conn.prepare_cached(
        "INSERT INTO schedule_marks (schedule, version, last_fire, updated_at) VALUES (?1, ?2, ?3, ?4)
         ON CONFLICT (schedule) DO UPDATE SET version = excluded.version,
             last_fire = excluded.last_fire, updated_at = excluded.updated_at",
    )?
    .execute(params![
        mark.schedule,
        mark.version,
        ts(mark.last_fire),
        ts(Utc::now())
    ])?;
    Ok(())
}

pub(crate) fn record_fire(conn: &Connection, f: &FireRecord) -> Result<(), StoreError> {
    let now = ts(Utc::now());
    conn.prepare_cached(
        "INSERT INTO schedule_fires (schedule, fire, scope, status, enqueued, suppressed, generation, version,
                                     note, started_at, updated_at)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?10)
         ON CONFLICT (schedule, fire, scope) DO UPDATE SET status = excluded.status,
             enqueued = excluded.enqueued, suppressed = excluded.suppressed,
             generation = excluded.generation, version = excluded.version, note = excluded.note,
             updated_at = excluded.updated_at",
    )?
    .execute(params![
        f.schedule,
        ts(f.fire),
        f.scope,
        f.status.as_str(),
        to_i64(f.enqueued),
        to_i64(f.suppressed),
        to_i64(f.generation),
        f.version,
        f.note,
        now
    ])?;
    Ok(())
}

fn fire_status(s: &str) -> Option<FireStatus> {
    [FireStatus::Started, FireStatus::Done, FireStatus::Missed]
        .into_iter()
        .find(|f| f.as_str() == s)
}

pub(crate) fn fire_records(
    conn: &Connection,
    schedule: Option<&str>,
    limit: usize,
) -> Result<Vec<FireRecord>, StoreError> {
    let mut stmt = conn.prepare_cached(
        "SELECT schedule, fire, scope, status, enqueued, suppressed, generation, version, note
         FROM schedule_fires WHERE ?1 IS NULL OR schedule = ?1
         ORDER BY fire DESC, schedule, scope LIMIT ?2",
    )?;
    Ok(stmt
        .query_map(
            params![schedule, i64::try_from(limit).unwrap_or(i64::MAX)],
            |r| {
                let status: String = r.get(3)?;
                Ok(FireRecord {
                    schedule: r.get(0)?,
                    fire: get_ts(r, 1)?,
                    scope: r.get(2)?,
                    status: fire_status(&status)
                        .ok_or_else(|| bad(3, format!("unknown fire status `{status}`")))?,
                    enqueued: to_u64(r.get(4)?),
                    suppressed: to_u64(r.get(5)?),
                    generation: to_u64(r.get(6)?),
                    version: r.get(7)?,
                    note: r.get(8)?,
                })
            },
        )?
        .collect::<Result<Vec<_>, _>>()?)
}

/// A schedule's queued messages of any version but `?2` (every version
/// when NULL).
const CANCELLABLE: &str = "SELECT id FROM outbox
     WHERE schedule_id = ?1 AND state = 'queued' AND (?2 IS NULL OR schedule_version IS NOT ?2)
     ORDER BY id";

/// One fire's queued messages of a schedule.
const CANCELLABLE_FIRE: &str = "SELECT id FROM outbox
     WHERE schedule_id = ?1 AND state = 'queued' AND fire_at = ?2
     ORDER BY id";

/// Moves each of `ids` from `queued` to `suppressed` with `reason`, one
/// [`set_state`] each; returns how many moved (a row claimed meanwhile
/// stays with its claimer).
fn suppress_queued(
    conn: &Connection,
    ids: &[i64],
    reason: &str,
    now: DateTime<Utc>,
) -> Result<usize, StoreError> {
    let change = Change::reason(reason);
    let mut n = 0;
    for &id in ids {
        if set_state(
            conn,
            id,
            OutState::Queued,
            OutState::Suppressed,
            &change,
            now,
        )? {
            n += 1;
        }
    }
    Ok(n)
}

/// Suppresses `schedule`'s queued messages of other versions and audits
/// the lot once (when there were any).
pub(crate) fn cancel_planned(
    conn: &mut Connection,
    schedule: &str,
    keep_version: Option<&str>,
    reason: &str,
    now: DateTime<Utc>,
) -> Result<usize, StoreError> {
    let tx = immediate(conn)?;
    let ids: Vec<i64> = {
        let mut stmt = tx.prepare_cached(CANCELLABLE)?;
        stmt.query_map(params![schedule, keep_version], |r| r.get(0))?
            .collect::<Result<_, _>>()?
    };
    let n = suppress_queued(&tx, &ids, reason, now)?;
    if n > 0 {
        audit::append(
            &tx,
            "hearth",
            "schedule.cancel",
            Some(&format!("schedule:{schedule}")),
            serde_json::json!({
                "schedule": schedule,
                "count": n,
                "reason": reason,
                "kept_version": keep_version,
            }),
        )?;
    }
    tx.commit()?;
    Ok(n)
}

/// Suppresses one fire's queued messages of `schedule` and audits the lot
/// once (when there were any).
pub(crate) fn cancel_planned_fire(
    conn: &mut Connection,
    schedule: &str,
    fire: DateTime<Utc>,
    reason: &str,
    now: DateTime<Utc>,
) -> Result<usize, StoreError> {
    let tx = immediate(conn)?;
    let ids: Vec<i64> = {
        let mut stmt = tx.prepare_cached(CANCELLABLE_FIRE)?;
        stmt.query_map(params![schedule, ts(fire)], |r| r.get(0))?
            .collect::<Result<_, _>>()?
    };
    let n = suppress_queued(&tx, &ids, reason, now)?;
    if n > 0 {
        audit::append(
            &tx,
            "hearth",
            "schedule.cancel",
            Some(&format!("schedule:{schedule}")),
            serde_json::json!({
                "schedule": schedule,
                "fire": fire,
                "count": n,
                "cancelled": n,
                "reason": reason,
            }),
        )?;
    }
    tx.commit()?;
    Ok(n)
}

/// The distinct fires of queued planned messages.
const PLANNED_FIRES: &str = "SELECT DISTINCT schedule_id, fire_at FROM outbox
     WHERE state = 'queued' AND schedule_id IS NOT NULL AND fire_at IS NOT NULL
     ORDER BY schedule_id, fire_at";

pub(crate) fn planned_fires(conn: &Connection) -> Result<Vec<(String, DateTime<Utc>)>, StoreError> {
    let mut stmt = conn.prepare_cached(PLANNED_FIRES)?;
    Ok(stmt
        .query_map([], |r| Ok((r.get(0)?, get_ts(r, 1)?)))?
        .collect::<Result<Vec<_>, _>>()?)
}

/// Separates the group ids `group_concat` joins (a control character no
/// group id contains).
const GROUP_SEP: &str = "\u{1f}";

/// Active members whose newest SMS consent event is a grant, with groups
/// and that event, in one query.
pub(crate) fn recipients(conn: &Connection) -> Result<Vec<Member>, StoreError> {
    recipients_page(conn, &RecipientFilter::default(), 0, None)
}

/// [`recipients`] with an id above `after`, matching `filter`, at most
/// `limit` of them, in id order.
pub(crate) fn recipients_page(
    conn: &Connection,
    filter: &RecipientFilter,
    after: i64,
    limit: Option<usize>,
) -> Result<Vec<Member>, StoreError> {
    let mut params: Vec<rusqlite::types::Value> = vec![after.into()];
    let mut conditions = String::new();
    let list = |values: &[String], params: &mut Vec<rusqlite::types::Value>| {
        let marks: Vec<String> = values
            .iter()
            .map(|v| {
                params.push(v.clone().into());
                format!("?{}", params.len())
            })
            .collect();
        marks.join(", ")
    };
    if !filter.groups.is_empty() {
        let marks = list(&filter.groups, &mut params);
        conditions.push_str(&format!(
            " AND EXISTS (SELECT 1 FROM group_members g WHERE g.member_id = m.id AND g.group_id IN ({marks}))"
        ));
    }
    if !filter.timezones.is_empty() {
        let marks = list(&filter.timezones, &mut params);
        conditions.push_str(&format!(" AND m.timezone IN ({marks})"));
    }
    let limit = limit
        .filter(|n| *n < i64::MAX as usize)
        .map(|n| format!(" LIMIT {n}"))
        .unwrap_or_default();
    let mut stmt = conn.prepare_cached(&format!(
        "SELECT m.id, m.external_id, m.first_name, m.last_name, m.phone, m.timezone, m.language,
                m.joined_on, m.status, m.attributes,
                (SELECT group_concat(g.group_id, char(31)) FROM group_members g WHERE g.member_id = m.id),
                c.id, c.action, c.source, c.text, c.actor, c.at
         FROM members m
         JOIN consent_events c
           ON c.id = (SELECT max(d.id) FROM consent_events d WHERE d.member_id = m.id AND d.channel = 'sms')
         WHERE m.status = 'active' AND c.action = 'granted' AND m.id > ?1{conditions}
         ORDER BY m.id{limit}"
    ))?;
    Ok(stmt
        .query_map(rusqlite::params_from_iter(params), |r| {
            let mut m = members::from_row(r)?;
            let groups: Option<String> = r.get(10)?;
            m.groups = groups
                .map(|g| g.split(GROUP_SEP).map(str::to_owned).collect())
                .unwrap_or_default();
            m.groups.sort();
            let action: String = r.get(12)?;
            let source: String = r.get(13)?;
            let at: String = r.get(16)?;
            m.consent = ConsentState {
                last: Some(ConsentEvent {
                    id: r.get(11)?,
                    action: ConsentAction::parse(&action).map_err(|e| bad(12, e.into()))?,
                    source: ConsentSource::parse(&source).map_err(|e| bad(13, e.into()))?,
                    text: r.get(14)?,
                    actor: r.get(15)?,
                    at: super::consent::parse_time(&at).map_err(|e| bad(16, e))?,
                }),
            };
            debug_assert_eq!(m.status, MemberStatus::Active);
            Ok(m)
        })?
        .collect::<Result<Vec<_>, _>>()?)
}

pub(crate) fn member_zones(conn: &Connection) -> Result<Vec<String>, StoreError> {
    let mut stmt = conn.prepare_cached(
        "SELECT DISTINCT timezone FROM members WHERE status = 'active' ORDER BY timezone",
    )?;
    Ok(stmt
        .query_map([], |r| r.get(0))?
        .collect::<Result<Vec<_>, _>>()?)
}

/// The states a routine message counts against a cap in at fan-out.
const CAP_STATES: &str = "'queued', 'sending', 'sent', 'delivered', 'undelivered'";
/// The states it counts in at the last gate (it went or is going out).
const SENT_STATES: &str = "'sending', 'sent', 'delivered', 'undelivered'";

fn routine_times_sql() -> String {
    format!(
        "SELECT member_id, coalesce(sent_at, not_before) FROM outbox
         WHERE state IN ({CAP_STATES}) AND priority = ?1 AND kind = ?2
           AND member_id IS NOT NULL AND coalesce(sent_at, not_before) >= ?3
         ORDER BY member_id, 2"
    )
}

fn routine_sent_sql() -> String {
    format!(
        "SELECT count(*) FROM outbox
         WHERE member_id = ?1 AND kind = ?2 AND state IN ({SENT_STATES})
           AND coalesce(sent_at, updated_at) >= ?3 AND coalesce(sent_at, updated_at) < ?4
           AND id <> ?5"
    )
}

pub(crate) fn routine_times(
    conn: &Connection,
    since: DateTime<Utc>,
) -> Result<HashMap<i64, Vec<DateTime<Utc>>>, StoreError> {
    // `priority` as well as `kind`: lets SQLite walk `outbox_due` (state,
    // priority, …) for the scheduled rows of each state.
    let mut stmt = conn.prepare_cached(&routine_times_sql())?;
    let mut out: HashMap<i64, Vec<DateTime<Utc>>> = HashMap::new();
    let rows = stmt.query_map(
        params![
            Kind::Scheduled.priority(),
            Kind::Scheduled.as_str(),
            ts(since)
        ],
        |r| Ok((r.get::<_, i64>(0)?, get_ts(r, 1)?)),
    )?;
    for row in rows {
        let (member, t) = row?;
        out.entry(member).or_default().push(t);
    }
    Ok(out)
}

pub(crate) fn routine_sent(
    conn: &Connection,
    member_id: i64,
    from: DateTime<Utc>,
    to: DateTime<Utc>,
    except: i64,
) -> Result<u64, StoreError> {
    let n: i64 = conn.prepare_cached(&routine_sent_sql())?.query_row(
        params![
            member_id,
            Kind::Scheduled.as_str(),
            ts(from),
            ts(to),
            except
        ],
        |r| r.get(0),
    )?;
    Ok(to_u64(n))
}

pub(crate) fn open_survey(
    conn: &Connection,
    member_id: i64,
    now: DateTime<Utc>,
) -> Result<Option<SurveyRun>, StoreError> {
    Ok(conn
        .prepare_cached(
            "SELECT s.id, s.member_id, s.survey, s.schedule, s.outbox_id, s.question, s.opened_at, s.expires_at
             FROM survey_runs s JOIN outbox o ON o.id = s.outbox_id
             WHERE s.member_id = ?1 AND s.state = 'open' AND o.state IN ('sent', 'delivered')
               AND (s.expires_at IS NULL OR s.expires_at > ?2)
             ORDER BY s.opened_at DESC, s.id DESC LIMIT 1",
        )?
        .query_row(params![member_id, ts(now)], |r| {
            Ok(SurveyRun {
                id: r.get(0)?,
                member_id: r.get(1)?,
                survey: r.get(2)?,
                schedule: r.get(3)?,
                outbox_id: r.get(4)?,
                question: u32::try_from(r.get::<_, i64>(5)?).unwrap_or(0),
                opened_at: get_ts(r, 6)?,
                expires_at: get_opt_ts(r, 7)?,
            })
        })
        .optional()?)
}

const PLANNED_VERSIONS: &str =
    "SELECT schedule_id, coalesce(schedule_version, ''), count(*) FROM outbox
     WHERE schedule_id IS NOT NULL AND state = 'queued'
     GROUP BY 1, 2 ORDER BY 1, 2";

pub(crate) fn planned_versions(
    conn: &Connection,
) -> Result<Vec<(String, String, u64)>, StoreError> {
    let mut stmt = conn.prepare_cached(PLANNED_VERSIONS)?;
    Ok(stmt
        .query_map([], |r| Ok((r.get(0)?, r.get(1)?, to_u64(r.get(2)?))))?
        .collect::<Result<Vec<_>, _>>()?)
}

impl ScheduleStore for SqliteStore {
    async fn schedule_marks(&self) -> Result<Vec<ScheduleMark>, StoreError> {
        self.read(marks).await
    }

    async fn set_schedule_mark(&self, mark: ScheduleMark) -> Result<(), StoreError> {
        self.call(move |c| set_mark(c, &mark)).await
    }

    async fn remove_schedule_mark(&self, schedule: &str) -> Result<(), StoreError> {
        let schedule = schedule.to_owned();
        self.call(move |c| {
            c.prepare_cached("DELETE FROM schedule_marks WHERE schedule = ?1")?
                .execute([schedule])?;
            Ok(())
        })
        .await
    }

    async fn record_fire(&self, record: FireRecord) -> Result<(), StoreError> {
        self.call(move |c| record_fire(c, &record)).await
    }

    async fn fire_records(
        &self,
        schedule: Option<&str>,
        limit: usize,
    ) -> Result<Vec<FireRecord>, StoreError> {
        let schedule = schedule.map(str::to_owned);
        self.read(move |c| fire_records(c, schedule.as_deref(), limit))
            .await
    }

    async fn cancel_planned(
        &self,
        schedule: &str,
        keep_version: Option<&str>,
        reason: &str,
    ) -> Result<usize, StoreError> {
        let (schedule, keep, reason) = (
            schedule.to_owned(),
            keep_version.map(str::to_owned),
            reason.to_owned(),
        );
        self.call(move |c| cancel_planned(c, &schedule, keep.as_deref(), &reason, Utc::now()))
            .await
    }

    async fn recipients(&self) -> Result<Vec<Member>, StoreError> {
        self.read(recipients).await
    }

    async fn recipients_page(
        &self,
        filter: &RecipientFilter,
        after: i64,
        limit: usize,
    ) -> Result<Vec<Member>, StoreError> {
        let filter = filter.clone();
        self.read(move |c| recipients_page(c, &filter, after, Some(limit)))
            .await
    }

    async fn member_zones(&self) -> Result<Vec<String>, StoreError> {
        self.read(member_zones).await
    }

    async fn routine_times(
        &self,
        since: DateTime<Utc>,
    ) -> Result<HashMap<i64, Vec<DateTime<Utc>>>, StoreError> {
        self.read(move |c| routine_times(c, since)).await
    }

    async fn routine_sent(
        &self,
        member_id: i64,
        from: DateTime<Utc>,
        to: DateTime<Utc>,
        except: i64,
    ) -> Result<u64, StoreError> {
        self.read(move |c| routine_sent(c, member_id, from, to, except))
            .await
    }

    async fn open_survey(
        &self,
        member_id: i64,
        now: DateTime<Utc>,
    ) -> Result<Option<SurveyRun>, StoreError> {
        self.read(move |c| open_survey(c, member_id, now)).await
    }

    async fn planned_versions(&self) -> Result<Vec<(String, String, u64)>, StoreError> {
        self.read(planned_versions).await
    }

    async fn planned_fires(&self) -> Result<Vec<(String, DateTime<Utc>)>, StoreError> {
        self.read(planned_fires).await
    }

    async fn cancel_planned_fire(
        &self,
        schedule: &str,
        fire: DateTime<Utc>,
        reason: &str,
    ) -> Result<usize, StoreError> {
        let (schedule, reason) = (schedule.to_owned(), reason.to_owned());
        self.call(move |c| cancel_planned_fire(c, &schedule, fire, &reason, Utc::now()))
            .await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn plan_of(conn: &Connection, sql: &str, args: usize) -> String {
        let mut stmt = conn.prepare(&format!("EXPLAIN QUERY PLAN {sql}")).unwrap();
        let nulls = vec![rusqlite::types::Null; args];
        stmt.query_map(rusqlite::params_from_iter(nulls), |r| r.get::<_, String>(3))
            .unwrap()
            .collect::<Result<Vec<_>, _>>()
            .unwrap()
            .join("\n")
    }

    #[test]
    fn cancelling_and_cap_counts_use_their_indexes_not_a_scan_of_the_outbox() {
        let dir = tempfile::tempdir().unwrap();
        let key = super::super::open::KeySource::Generated(dir.path().join("h.db.key"));
        let (conn, _) =
            super::super::open::open_connection(&dir.path().join("h.db"), &key).unwrap();
        let p = plan_of(&conn, CANCELLABLE, 2);
        assert!(p.contains("outbox_by_schedule"), "{p}");
        let p = plan_of(&conn, CANCELLABLE_FIRE, 2);
        assert!(p.contains("outbox_by_schedule"), "{p}");
        // Only the queued rows, not every planned message ever sent.
        for sql in [PLANNED_FIRES, PLANNED_VERSIONS] {
            let p = plan_of(&conn, sql, 0);
            assert!(p.contains("(state=?)"), "{p}");
            assert!(!p.contains("SCAN outbox"), "{p}");
        }
        let p = plan_of(&conn, &routine_sent_sql(), 5);
        assert!(p.contains("outbox_caps"), "{p}");
        let p = plan_of(&conn, &routine_times_sql(), 3);
        assert!(!p.contains("SCAN outbox"), "{p}");
    }
}
