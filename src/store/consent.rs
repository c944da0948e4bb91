//! The consent ledger: append-only, one row per grant or revocation.
//!
//! Current consent is derived from the newest event for the member and
//! channel, never kept as a flag that could drift from its history. A
//! revocation by text (STOP) can only be undone by the member (START): a
//! roster import or staff grant does not override it.

use std::collections::BTreeMap;
use std::fmt;

use chrono::Utc;
use rusqlite::{Connection, OptionalExtension, params};

use super::{Store, StoreError, audit, members};

#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum ConsentAction {
    Granted,
    Revoked,
}

/// Where a consent event came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum ConsentSource {
    /// The clinic's roster import.
    Import,
    /// The member texted a keyword (STOP, START).
    Keyword,
    /// A staff member recorded it.
    Staff,
}

impl ConsentSource {
    pub fn as_str(self) -> &'static str {
        match self {
            ConsentSource::Import => "import",
            ConsentSource::Keyword => "keyword",
            ConsentSource::Staff => "staff",
        }
    }

    pub fn parse(s: &str) -> Result<ConsentSource, String> {
        match s {
            "import" => Ok(ConsentSource::Import),
            "keyword" => Ok(ConsentSource::Keyword),
            "staff" => Ok(ConsentSource::Staff),
            _ => Err(format!(
                "invalid consent source `{s}`: expected import, keyword or staff"
            )),
        }
    }
}

impl ConsentAction {
    fn as_str(self) -> &'static str {
        match self {
            ConsentAction::Granted => "granted",
            ConsentAction::Revoked => "revoked",
        }
    }
}

/// A member's current SMS consent, derived from the ledger.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize)]
pub struct ConsentState {
    /// The newest event, if any; no event means no consent.
    pub last: Option<ConsentEvent>,
}

impl ConsentState {
    pub fn granted(&self) -> bool {
        self.last
            .as_ref()
            .is_some_and(|e| e.action == ConsentAction::Granted)
    }

    /// Revoked by the member's own text: only the member can undo it.
    pub fn revoked_by_member(&self) -> bool {
        self.last.as_ref().is_some_and(|e| {
            e.action == ConsentAction::Revoked && e.source == ConsentSource::Keyword
        })
    }
}

impl fmt::Display for ConsentState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.last {
            None => f.write_str("none"),
            Some(e) => write!(
                f,
                "{} ({}, {})",
                e.action.as_str(),
                e.source.as_str(),
                &e.at[..10.min(e.at.len())]
            ),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct ConsentEvent {
    pub id: i64,
    pub action: ConsentAction,
    pub source: ConsentSource,
    pub text: String,
    pub actor: String,
    pub at: String,
}

fn event(row: &rusqlite::Row<'_>) -> rusqlite::Result<(i64, ConsentEvent)> {
    let action: String = row.get(2)?;
    let source: String = row.get(3)?;
    Ok((
        row.get(1)?,
        ConsentEvent {
            id: row.get(0)?,
            action: if action == "granted" {
                ConsentAction::Granted
            } else {
                ConsentAction::Revoked
            },
            source: ConsentSource::parse(&source).unwrap_or(ConsentSource::Staff),
            text: row.get(4)?,
            actor: row.get(5)?,
            at: row.get(6)?,
        },
    ))
}

pub(crate) fn current(conn: &Connection, member_id: i64) -> Result<ConsentState, StoreError> {
    let last = conn
        .query_row(
            "SELECT id, member_id, action, source, text, actor, at FROM consent_events
             WHERE member_id = ?1 AND channel = 'sms' ORDER BY id DESC LIMIT 1",
            [member_id],
            event,
        )
        .optional()?;
    Ok(ConsentState {
        last: last.map(|(_, e)| e),
    })
}

pub(crate) fn current_all(conn: &Connection) -> Result<BTreeMap<i64, ConsentState>, StoreError> {
    let mut stmt = conn.prepare(
        "SELECT id, member_id, action, source, text, actor, at FROM consent_events c
         WHERE channel = 'sms' AND id = (SELECT max(id) FROM consent_events d WHERE d.member_id = c.member_id AND d.channel = 'sms')",
    )?;
    let rows = stmt.query_map([], event)?;
    let mut out = BTreeMap::new();
    for r in rows {
        let (member, e) = r?;
        out.insert(member, ConsentState { last: Some(e) });
    }
    Ok(out)
}

pub(crate) fn history(conn: &Connection, member_id: i64) -> Result<Vec<ConsentEvent>, StoreError> {
    let mut stmt = conn.prepare(
        "SELECT id, member_id, action, source, text, actor, at FROM consent_events
         WHERE member_id = ?1 ORDER BY id",
    )?;
    Ok(stmt
        .query_map([member_id], event)?
        .map(|r| r.map(|(_, e)| e))
        .collect::<Result<Vec<_>, _>>()?)
}

/// What recording a consent change did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Recorded {
    /// A new ledger row.
    Changed,
    /// Consent already stood that way; nothing written.
    AlreadySo,
    /// A grant that would override the member's own STOP; refused.
    RefusedAfterOptOut,
}

/// Appends a consent event (and an audit entry) unless it changes nothing.
pub(crate) fn record(
    conn: &Connection,
    member_id: i64,
    action: ConsentAction,
    source: ConsentSource,
    text: &str,
    actor: &str,
) -> Result<Recorded, StoreError> {
    if text.trim().is_empty() {
        return Err(StoreError::Invalid(
            "consent needs the exact text the member agreed to or sent\n  hint: pass --text \"…\""
                .into(),
        ));
    }
    let now = current(conn, member_id)?;
    let already = match action {
        ConsentAction::Granted => now.granted(),
        ConsentAction::Revoked => now
            .last
            .as_ref()
            .is_some_and(|e| e.action == ConsentAction::Revoked),
    };
    if already {
        return Ok(Recorded::AlreadySo);
    }
    if action == ConsentAction::Granted
        && source != ConsentSource::Keyword
        && now.revoked_by_member()
    {
        return Ok(Recorded::RefusedAfterOptOut);
    }
    conn.execute(
        "INSERT INTO consent_events (member_id, action, channel, source, text, actor, at)
         VALUES (?1, ?2, 'sms', ?3, ?4, ?5, ?6)",
        params![
            member_id,
            action.as_str(),
            source.as_str(),
            text,
            actor,
            Utc::now().to_rfc3339()
        ],
    )?;
    audit::append(
        conn,
        actor,
        match action {
            ConsentAction::Granted => "consent.grant",
            ConsentAction::Revoked => "consent.revoke",
        },
        Some(&format!("member:{member_id}")),
        serde_json::json!({ "channel": "sms", "source": source.as_str() }),
    )?;
    Ok(Recorded::Changed)
}

impl Store {
    /// Records a grant or revocation for a member by external id.
    pub async fn record_consent(
        &self,
        external_id: &str,
        action: ConsentAction,
        source: ConsentSource,
        text: &str,
        actor: &str,
    ) -> Result<Recorded, StoreError> {
        let (ext, text, actor) = (external_id.to_owned(), text.to_owned(), actor.to_owned());
        self.call(move |c| {
            let tx = c.transaction()?;
            let m = members::by_external_id(&tx, &ext)?
                .ok_or_else(|| StoreError::NotFound(format!("member `{ext}`")))?;
            let r = record(&tx, m.id, action, source, &text, &actor)?;
            tx.commit()?;
            Ok(r)
        })
        .await
    }

    pub async fn consent_history(
        &self,
        external_id: &str,
    ) -> Result<Vec<ConsentEvent>, StoreError> {
        let ext = external_id.to_owned();
        self.call(move |c| {
            let m = members::by_external_id(c, &ext)?
                .ok_or_else(|| StoreError::NotFound(format!("member `{ext}`")))?;
            history(c, m.id)
        })
        .await
    }
}
