//! Members in SQLite: who they are, which groups they belong to, their
//! attributes. The types are [`crate::domain::member`]'s.

use std::collections::BTreeMap;

use chrono::{NaiveDate, Utc};
use rusqlite::{Connection, OptionalExtension, Row, params};

use super::SqliteStore;
use super::consent;
use crate::domain::Phone;
use crate::domain::member::{ConsentState, Member, MemberRecord, MemberStatus, Upserted};
use crate::store::StoreError;
use crate::store::import::{ImportOptions, ImportReport, ImportRow, RowError};
use crate::store::sqlite::bad;
use crate::store::traits::MemberStore;

const COLUMNS: &str = "id, external_id, first_name, last_name, phone, timezone, language, joined_on, status, attributes";

pub(crate) fn from_row(row: &Row<'_>) -> rusqlite::Result<Member> {
    let phone: String = row.get(4)?;
    let joined: String = row.get(7)?;
    let status: String = row.get(8)?;
    let attrs: String = row.get(9)?;
    Ok(Member {
        id: row.get(0)?,
        external_id: row.get(1)?,
        first_name: row.get(2)?,
        last_name: row.get(3)?,
        phone: phone
            .parse()
            .map_err(|e: crate::domain::Invalid| bad(4, e.into()))?,
        timezone: row.get(5)?,
        language: row.get(6)?,
        joined_on: NaiveDate::parse_from_str(&joined, "%Y-%m-%d")
            .map_err(|e| bad(7, e.to_string()))?,
        status: MemberStatus::parse(&status).map_err(|e| bad(8, e.into()))?,
        groups: Vec::new(),
        attributes: serde_json::from_str(&attrs).map_err(|e| bad(9, e.to_string()))?,
        consent: ConsentState::default(),
    })
}

fn fill(conn: &Connection, mut m: Member) -> Result<Member, StoreError> {
    let mut stmt = conn.prepare_cached(
        "SELECT group_id FROM group_members WHERE member_id = ?1 ORDER BY group_id",
    )?;
    m.groups = stmt
        .query_map([m.id], |r| r.get(0))?
        .collect::<Result<Vec<String>, _>>()?;
    m.consent = consent::current(conn, m.id)?;
    Ok(m)
}

pub(crate) fn by_external_id(
    conn: &Connection,
    external_id: &str,
) -> Result<Option<Member>, StoreError> {
    let m = conn
        .query_row(
            &format!("SELECT {COLUMNS} FROM members WHERE external_id = ?1"),
            [external_id],
            from_row,
        )
        .optional()?;
    m.map(|m| fill(conn, m)).transpose()
}

pub(crate) fn by_id(conn: &Connection, id: i64) -> Result<Option<Member>, StoreError> {
    let m = conn
        .query_row(
            &format!("SELECT {COLUMNS} FROM members WHERE id = ?1"),
            [id],
            from_row,
        )
        .optional()?;
    m.map(|m| fill(conn, m)).transpose()
}

pub(crate) fn by_phone(conn: &Connection, phone: &Phone) -> Result<Option<Member>, StoreError> {
    let m = conn
        .query_row(
            &format!("SELECT {COLUMNS} FROM members WHERE phone = ?1"),
            [phone.as_str()],
            from_row,
        )
        .optional()?;
    m.map(|m| fill(conn, m)).transpose()
}

/// Every member (or only those in `group`), ordered by external id, with
/// groups and current consent.
pub(crate) fn list(conn: &Connection, group: Option<&str>) -> Result<Vec<Member>, StoreError> {
    let sql = match group {
        Some(_) => format!(
            "SELECT {COLUMNS} FROM members WHERE id IN (SELECT member_id FROM group_members WHERE group_id = ?1) ORDER BY external_id"
        ),
        None => format!("SELECT {COLUMNS} FROM members ORDER BY external_id"),
    };
    let mut stmt = conn.prepare(&sql)?;
    let rows = match group {
        Some(g) => stmt
            .query_map([g], from_row)?
            .collect::<Result<Vec<_>, _>>()?,
        None => stmt
            .query_map([], from_row)?
            .collect::<Result<Vec<_>, _>>()?,
    };
    // Groups and consent in two passes rather than two queries a member.
    let mut groups: BTreeMap<i64, Vec<String>> = BTreeMap::new();
    let mut g = conn.prepare("SELECT member_id, group_id FROM group_members ORDER BY group_id")?;
    for r in g.query_map([], |r| Ok((r.get::<_, i64>(0)?, r.get::<_, String>(1)?)))? {
        let (m, gid) = r?;
        groups.entry(m).or_default().push(gid);
    }
    let consents = consent::current_all(conn)?;
    Ok(rows
        .into_iter()
        .map(|mut m| {
            m.groups = groups.remove(&m.id).unwrap_or_default();
            m.consent = consents.get(&m.id).cloned().unwrap_or_default();
            m
        })
        .collect())
}

/// Inserts or updates by external id; reports whether anything changed.
/// `existing` is the member as stored (looked up by the caller), if any. A
/// record without a status keeps the stored one (new members are active).
pub(crate) fn upsert(
    conn: &Connection,
    rec: &MemberRecord,
    existing: Option<&Member>,
    now: &str,
) -> Result<Upserted, StoreError> {
    let status = rec
        .status
        .or(existing.map(|m| m.status))
        .unwrap_or(MemberStatus::Active);
    if let Some(m) = existing {
        let same = m.first_name == rec.first_name
            && m.last_name == rec.last_name
            && m.phone == rec.phone
            && m.timezone == rec.timezone
            && m.language == rec.language
            && m.joined_on == rec.joined_on
            && m.status == status
            && m.attributes == rec.attributes
            && m.groups == sorted(&rec.groups);
        if same {
            return Ok(Upserted::Unchanged(m.id));
        }
    }
    let attrs = serde_json::to_string(&rec.attributes)
        .map_err(|e| StoreError::Invalid(format!("member {}: {e}", rec.external_id)))?;
    let mut up = conn.prepare_cached(
        "INSERT INTO members (external_id, first_name, last_name, phone, timezone, language, joined_on, status, attributes, created_at, updated_at)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?10)
         ON CONFLICT (external_id) DO UPDATE SET
             first_name = excluded.first_name, last_name = excluded.last_name, phone = excluded.phone,
             timezone = excluded.timezone, language = excluded.language, joined_on = excluded.joined_on,
             status = excluded.status, attributes = excluded.attributes, updated_at = excluded.updated_at
         RETURNING id",
    )?;
    let id: i64 = up.query_row(
        params![
            rec.external_id,
            rec.first_name,
            rec.last_name,
            rec.phone.as_str(),
            rec.timezone,
            rec.language,
            rec.joined_on.to_string(),
            status.as_str(),
            attrs,
            now
        ],
        |r| r.get(0),
    )?;
    if existing.is_some() {
        conn.prepare_cached("DELETE FROM group_members WHERE member_id = ?1")?
            .execute([id])?;
    }
    let mut ins = conn.prepare_cached(
        "INSERT OR IGNORE INTO group_members (member_id, group_id) VALUES (?1, ?2)",
    )?;
    for g in &rec.groups {
        ins.execute(params![id, g])?;
    }
    Ok(match existing {
        None => Upserted::Inserted(id),
        Some(_) => Upserted::Updated(id),
    })
}

fn sorted(v: &[String]) -> Vec<String> {
    let mut v = v.to_vec();
    v.sort();
    v.dedup();
    v
}

pub(crate) fn set_status(
    conn: &Connection,
    id: i64,
    status: MemberStatus,
) -> Result<bool, StoreError> {
    let n = conn.execute(
        "UPDATE members SET status = ?2, updated_at = ?3 WHERE id = ?1 AND status <> ?2",
        params![id, status.as_str(), Utc::now().to_rfc3339()],
    )?;
    Ok(n > 0)
}

/// Ids of active members with current SMS consent: the only people who may
/// be selected for sending. The dispatcher asks again at its last gate.
pub(crate) fn sendable_ids(conn: &Connection) -> Result<Vec<i64>, StoreError> {
    let mut stmt = conn.prepare(
        "SELECT m.id FROM members m
         WHERE m.status = 'active'
           AND (SELECT c.action FROM consent_events c
                WHERE c.member_id = m.id AND c.channel = 'sms'
                ORDER BY c.id DESC LIMIT 1) = 'granted'
         ORDER BY m.id",
    )?;
    Ok(stmt
        .query_map([], |r| r.get(0))?
        .collect::<Result<Vec<i64>, _>>()?)
}

impl MemberStore for SqliteStore {
    async fn member(&self, external_id: &str) -> Result<Option<Member>, StoreError> {
        let id = external_id.to_owned();
        self.read(move |c| by_external_id(c, &id)).await
    }

    async fn member_by_phone(&self, phone: &Phone) -> Result<Option<Member>, StoreError> {
        let phone = phone.clone();
        self.read(move |c| by_phone(c, &phone)).await
    }

    async fn members(&self, group: Option<&str>) -> Result<Vec<Member>, StoreError> {
        let group = group.map(str::to_owned);
        self.read(move |c| list(c, group.as_deref())).await
    }

    /// Ids of active members with current consent.
    async fn sendable_member_ids(&self) -> Result<Vec<i64>, StoreError> {
        self.read(sendable_ids).await
    }

    /// Marks a member inactive (audited). False when already inactive.
    async fn deactivate(&self, external_id: &str, actor: &str) -> Result<bool, StoreError> {
        let (ext, actor) = (external_id.to_owned(), actor.to_owned());
        self.call(move |c| {
            let tx = c.transaction()?;
            let m = by_external_id(&tx, &ext)?
                .ok_or_else(|| StoreError::NotFound(format!("member `{ext}`")))?;
            let changed = set_status(&tx, m.id, MemberStatus::Inactive)?;
            if changed {
                super::audit::append(
                    &tx,
                    &actor,
                    "member.deactivate",
                    Some(&format!("member:{}", m.external_id)),
                    serde_json::json!({}),
                )?;
            }
            tx.commit()?;
            Ok(changed)
        })
        .await
    }

    async fn import_members(
        &self,
        rows: Vec<ImportRow>,
        invalid: Vec<RowError>,
        opts: ImportOptions,
    ) -> Result<ImportReport, StoreError> {
        super::import::import_members(self, rows, invalid, opts).await
    }
}
