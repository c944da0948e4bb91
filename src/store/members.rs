//! Members: who they are, which groups they belong to, their attributes.
//!
//! A member's public handle is the clinic's external id (from the EHR or
//! roster); logs and the audit trail use the internal numeric id. Names and
//! phone numbers are PHI: `Debug` on [`Member`] shows neither.

use std::collections::BTreeMap;
use std::fmt;

use chrono::{NaiveDate, Utc};
use rusqlite::{Connection, OptionalExtension, Row, params};

use super::consent::{self, ConsentState};
use super::{Store, StoreError};
use crate::domain::Phone;

#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum MemberStatus {
    Active,
    Inactive,
}

impl MemberStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            MemberStatus::Active => "active",
            MemberStatus::Inactive => "inactive",
        }
    }

    pub fn parse(s: &str) -> Result<MemberStatus, String> {
        match s.trim().to_lowercase().as_str() {
            "active" | "" => Ok(MemberStatus::Active),
            "inactive" => Ok(MemberStatus::Inactive),
            other => Err(format!(
                "invalid status `{other}`: expected `active` or `inactive`"
            )),
        }
    }
}

/// A member as stored, with current consent derived from the ledger.
#[derive(Clone, PartialEq)]
pub struct Member {
    pub id: i64,
    pub external_id: String,
    pub first_name: String,
    pub last_name: Option<String>,
    pub phone: Phone,
    pub timezone: String,
    pub language: String,
    pub joined_on: NaiveDate,
    pub status: MemberStatus,
    pub groups: Vec<String>,
    pub attributes: serde_json::Map<String, serde_json::Value>,
    pub consent: ConsentState,
}

impl fmt::Debug for Member {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Member")
            .field("id", &self.id)
            .field("external_id", &self.external_id)
            .field("status", &self.status)
            .finish_non_exhaustive()
    }
}

impl Member {
    pub fn days_since_joined(&self, today: NaiveDate) -> i64 {
        (today - self.joined_on).num_days()
    }

    /// Everything rules and scripts may see: no phone number.
    pub fn view(&self, today: NaiveDate) -> serde_json::Value {
        serde_json::json!({
            "id": self.id,
            "external_id": self.external_id,
            "first_name": self.first_name,
            "last_name": self.last_name,
            "timezone": self.timezone,
            "language": self.language,
            "joined_on": self.joined_on.to_string(),
            "days_since_joined": self.days_since_joined(today),
            "status": self.status.as_str(),
            "groups": self.groups,
            "attributes": self.attributes,
        })
    }
}

/// A member's fields as an import or staff edit gives them.
#[derive(Clone, PartialEq)]
pub struct MemberRecord {
    pub external_id: String,
    pub first_name: String,
    pub last_name: Option<String>,
    pub phone: Phone,
    pub timezone: String,
    pub language: String,
    pub joined_on: NaiveDate,
    pub status: MemberStatus,
    pub groups: Vec<String>,
    pub attributes: serde_json::Map<String, serde_json::Value>,
}

impl fmt::Debug for MemberRecord {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("MemberRecord")
            .field("external_id", &self.external_id)
            .finish_non_exhaustive()
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Upserted {
    Inserted(i64),
    Updated(i64),
    Unchanged(i64),
}

impl Upserted {
    pub fn id(self) -> i64 {
        match self {
            Upserted::Inserted(id) | Upserted::Updated(id) | Upserted::Unchanged(id) => id,
        }
    }
}

const COLUMNS: &str = "id, external_id, first_name, last_name, phone, timezone, language, joined_on, status, attributes";

fn from_row(row: &Row<'_>) -> rusqlite::Result<Member> {
    let phone: String = row.get(4)?;
    let joined: String = row.get(7)?;
    let status: String = row.get(8)?;
    let attrs: String = row.get(9)?;
    let bad = |i: usize, e: String| {
        rusqlite::Error::FromSqlConversionFailure(i, rusqlite::types::Type::Text, e.into())
    };
    Ok(Member {
        id: row.get(0)?,
        external_id: row.get(1)?,
        first_name: row.get(2)?,
        last_name: row.get(3)?,
        phone: phone.parse().map_err(|e| bad(4, e))?,
        timezone: row.get(5)?,
        language: row.get(6)?,
        joined_on: NaiveDate::parse_from_str(&joined, "%Y-%m-%d")
            .map_err(|e| bad(7, e.to_string()))?,
        status: MemberStatus::parse(&status).map_err(|e| bad(8, e))?,
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
pub(crate) fn upsert(conn: &Connection, rec: &MemberRecord) -> Result<Upserted, StoreError> {
    let now = Utc::now().to_rfc3339();
    let attrs = serde_json::Value::Object(rec.attributes.clone()).to_string();
    let existing = by_external_id(conn, &rec.external_id)?;
    if let Some(m) = &existing {
        let same = m.first_name == rec.first_name
            && m.last_name == rec.last_name
            && m.phone == rec.phone
            && m.timezone == rec.timezone
            && m.language == rec.language
            && m.joined_on == rec.joined_on
            && m.status == rec.status
            && m.attributes == rec.attributes
            && m.groups == sorted(&rec.groups);
        if same {
            return Ok(Upserted::Unchanged(m.id));
        }
    }
    let id: i64 = conn.query_row(
        "INSERT INTO members (external_id, first_name, last_name, phone, timezone, language, joined_on, status, attributes, created_at, updated_at)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?10)
         ON CONFLICT (external_id) DO UPDATE SET
             first_name = excluded.first_name, last_name = excluded.last_name, phone = excluded.phone,
             timezone = excluded.timezone, language = excluded.language, joined_on = excluded.joined_on,
             status = excluded.status, attributes = excluded.attributes, updated_at = excluded.updated_at
         RETURNING id",
        params![
            rec.external_id,
            rec.first_name,
            rec.last_name,
            rec.phone.as_str(),
            rec.timezone,
            rec.language,
            rec.joined_on.to_string(),
            rec.status.as_str(),
            attrs,
            now
        ],
        |r| r.get(0),
    )?;
    if existing.is_some() {
        conn.execute("DELETE FROM group_members WHERE member_id = ?1", [id])?;
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

impl Store {
    pub async fn member(&self, external_id: &str) -> Result<Option<Member>, StoreError> {
        let id = external_id.to_owned();
        self.call(move |c| by_external_id(c, &id)).await
    }

    pub async fn member_by_phone(&self, phone: &Phone) -> Result<Option<Member>, StoreError> {
        let phone = phone.clone();
        self.call(move |c| by_phone(c, &phone)).await
    }

    pub async fn members(&self, group: Option<&str>) -> Result<Vec<Member>, StoreError> {
        let group = group.map(str::to_owned);
        self.call(move |c| list(c, group.as_deref())).await
    }

    /// Ids of active members with current consent.
    pub async fn sendable_member_ids(&self) -> Result<Vec<i64>, StoreError> {
        self.call(|c| sendable_ids(c)).await
    }

    /// Marks a member inactive (audited). False when already inactive.
    pub async fn deactivate(&self, external_id: &str, actor: &str) -> Result<bool, StoreError> {
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
                    Some(&format!("member:{}", m.id)),
                    serde_json::json!({}),
                )?;
            }
            tx.commit()?;
            Ok(changed)
        })
        .await
    }
}
