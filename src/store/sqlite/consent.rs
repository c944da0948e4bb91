//! The consent ledger: append-only, one row per grant or revocation.
//!
//! Current consent is derived from the newest event for the member and
//! channel, never kept as a flag that could drift from its history. A
//! revocation stays until a grant at least as explicit
//! ([`ConsentState::may_grant`]): a STOP or the provider's opt-out only by
//! the member's START; staff's revocation by the member or by staff
//! recording new consent, never by a roster import.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use rusqlite::{Connection, OptionalExtension, params};

use super::{SqliteStore, audit, members};
use crate::domain::member::{ConsentAction, ConsentEvent, ConsentSource, ConsentState, Recorded};
use crate::store::StoreError;
use crate::store::sqlite::bad;
use crate::store::traits::ConsentStore;

fn event(row: &rusqlite::Row<'_>) -> rusqlite::Result<(i64, ConsentEvent)> {
    let action: String = row.get(2)?;
    let source: String = row.get(3)?;
    let at: String = row.get(6)?;
    Ok((
        row.get(1)?,
        ConsentEvent {
            id: row.get(0)?,
            action: ConsentAction::parse(&action).map_err(|e| bad(2, e.into()))?,
            source: ConsentSource::parse(&source).map_err(|e| bad(3, e.into()))?,
            text: row.get(4)?,
            actor: row.get(5)?,
            at: parse_time(&at).map_err(|e| bad(6, e))?,
        },
    ))
}

/// A stored RFC 3339 timestamp.
pub(crate) fn parse_time(s: &str) -> Result<DateTime<Utc>, String> {
    DateTime::parse_from_rfc3339(s)
        .map(|t| t.with_timezone(&Utc))
        .map_err(|e| format!("invalid timestamp `{s}`: {e}"))
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

/// Appends a consent event (and an audit entry) unless it changes nothing.
pub(crate) fn record(
    conn: &Connection,
    member_id: i64,
    action: ConsentAction,
    source: ConsentSource,
    text: &str,
    actor: &str,
) -> Result<Recorded, StoreError> {
    let now = current(conn, member_id)?;
    let r = record_unaudited(conn, member_id, &now, action, source, text, actor)?;
    if r == Recorded::Changed {
        audit::append(
            conn,
            actor,
            match action {
                ConsentAction::Granted => "consent.grant",
                ConsentAction::Revoked => "consent.revoke",
            },
            super::outbox::subject(conn, Some(member_id))?.as_deref(),
            serde_json::json!({ "channel": "sms", "source": source.as_str() }),
        )?;
    }
    Ok(r)
}

/// Appends a consent event given the member's current consent, without an
/// audit entry: a batch (roster import) audits all its changes in one
/// entry.
pub(crate) fn record_unaudited(
    conn: &Connection,
    member_id: i64,
    now: &ConsentState,
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
    if action == ConsentAction::Granted && !now.may_grant(source) {
        return Ok(if now.revoked_by_member() {
            Recorded::RefusedAfterOptOut
        } else {
            Recorded::RefusedAfterRevocation
        });
    }
    conn.prepare_cached(
        "INSERT INTO consent_events (member_id, action, channel, source, text, actor, at)
         VALUES (?1, ?2, 'sms', ?3, ?4, ?5, ?6)",
    )?
    .execute(params![
        member_id,
        action.as_str(),
        source.as_str(),
        text,
        actor,
        Utc::now().to_rfc3339()
    ])?;
    Ok(Recorded::Changed)
}

impl ConsentStore for SqliteStore {
    /// Records a grant or revocation for a member by external id.
    async fn record_consent(
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

    async fn consent_history(&self, external_id: &str) -> Result<Vec<ConsentEvent>, StoreError> {
        let ext = external_id.to_owned();
        self.read(move |c| {
            let m = members::by_external_id(c, &ext)?
                .ok_or_else(|| StoreError::NotFound(format!("member `{ext}`")))?;
            history(c, m.id)
        })
        .await
    }
}
