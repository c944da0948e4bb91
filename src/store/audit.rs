//! The audit trail (HIPAA §164.312(b) audit controls, (c) integrity).
//!
//! Append-only, and hash-chained: each entry stores the previous entry's
//! hash and a hash over its own canonical content plus that previous hash.
//! Editing or deleting any entry but the newest breaks the chain, and
//! [`verify`] names the first broken entry. (Cutting entries off the end
//! cannot be seen from the chain alone; the daemon logs the head hash at
//! each start so a copy exists outside the database.)
//!
//! Entries carry ids, never names, phone numbers or message bodies.

use chrono::Utc;
use rusqlite::{Connection, OptionalExtension, params};
use serde::Serialize;

use super::{Store, StoreError};
use crate::config::compile::sha256_hex;

/// The `prev_hash` of the first entry.
pub const GENESIS: &str = "0000000000000000000000000000000000000000000000000000000000000000";

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Entry {
    pub id: i64,
    pub at: String,
    pub actor: String,
    pub action: String,
    pub subject: Option<String>,
    pub detail: serde_json::Value,
    pub prev_hash: String,
    pub hash: String,
}

/// The hash of an entry: SHA-256 over the previous hash and the entry's
/// fields as a JSON array (a canonical, unambiguous encoding).
fn entry_hash(
    id: i64,
    at: &str,
    actor: &str,
    action: &str,
    subject: Option<&str>,
    detail: &str,
    prev: &str,
) -> String {
    let canonical = serde_json::json!([id, at, actor, action, subject, detail]).to_string();
    sha256_hex(format!("{prev}\n{canonical}").as_bytes())
}

/// Appends an entry inside the caller's transaction.
pub(crate) fn append(
    conn: &Connection,
    actor: &str,
    action: &str,
    subject: Option<&str>,
    detail: serde_json::Value,
) -> Result<i64, StoreError> {
    let (last_id, prev): (i64, String) = conn
        .query_row(
            "SELECT id, hash FROM audit ORDER BY id DESC LIMIT 1",
            [],
            |r| Ok((r.get(0)?, r.get(1)?)),
        )
        .optional()?
        .unwrap_or((0, GENESIS.to_owned()));
    let id = last_id + 1;
    let at = Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Micros, true);
    let detail = detail.to_string();
    let hash = entry_hash(id, &at, actor, action, subject, &detail, &prev);
    conn.execute(
        "INSERT INTO audit (id, at, actor, action, subject, detail, prev_hash, hash) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
        params![id, at, actor, action, subject, detail, prev, hash],
    )?;
    Ok(id)
}

fn read(row: &rusqlite::Row<'_>) -> rusqlite::Result<(Entry, String)> {
    let detail: String = row.get(5)?;
    Ok((
        Entry {
            id: row.get(0)?,
            at: row.get(1)?,
            actor: row.get(2)?,
            action: row.get(3)?,
            subject: row.get(4)?,
            detail: serde_json::from_str(&detail).unwrap_or(serde_json::Value::Null),
            prev_hash: row.get(6)?,
            hash: row.get(7)?,
        },
        detail,
    ))
}

/// The outcome of walking the chain.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verified {
    /// Every entry checks out; `head` is the newest hash.
    Intact { entries: u64, head: String },
    /// The first entry that does not.
    Broken {
        entry: i64,
        reason: String,
        checked: u64,
    },
}

pub(crate) fn verify(conn: &Connection) -> Result<Verified, StoreError> {
    let mut stmt = conn.prepare(
        "SELECT id, at, actor, action, subject, detail, prev_hash, hash FROM audit ORDER BY id",
    )?;
    let mut rows = stmt.query([])?;
    let mut prev = GENESIS.to_owned();
    let mut expected_id = 1;
    let mut n = 0;
    while let Some(row) = rows.next()? {
        let (e, detail) = read(row)?;
        let broken = |reason: String| Verified::Broken {
            entry: e.id,
            reason,
            checked: n,
        };
        if e.id != expected_id {
            return Ok(Verified::Broken {
                entry: expected_id,
                reason: format!("entry {expected_id} is missing (next is {})", e.id),
                checked: n,
            });
        }
        if e.prev_hash != prev {
            return Ok(broken(
                "its previous-hash does not match the entry before it".into(),
            ));
        }
        let want = entry_hash(
            e.id,
            &e.at,
            &e.actor,
            &e.action,
            e.subject.as_deref(),
            &detail,
            &prev,
        );
        if e.hash != want {
            return Ok(broken(
                "its content does not match its hash (edited after it was written)".into(),
            ));
        }
        prev = e.hash;
        expected_id += 1;
        n += 1;
    }
    Ok(Verified::Intact {
        entries: n,
        head: prev,
    })
}

pub(crate) fn tail(conn: &Connection, n: usize) -> Result<Vec<Entry>, StoreError> {
    let mut stmt = conn.prepare(
        "SELECT id, at, actor, action, subject, detail, prev_hash, hash FROM
           (SELECT * FROM audit ORDER BY id DESC LIMIT ?1) ORDER BY id",
    )?;
    Ok(stmt
        .query_map([n as i64], |r| read(r).map(|(e, _)| e))?
        .collect::<Result<Vec<_>, _>>()?)
}

impl Store {
    /// Appends one audit entry in its own transaction.
    pub async fn audit(
        &self,
        actor: &str,
        action: &str,
        subject: Option<&str>,
        detail: serde_json::Value,
    ) -> Result<i64, StoreError> {
        let (actor, action, subject) = (
            actor.to_owned(),
            action.to_owned(),
            subject.map(str::to_owned),
        );
        self.call(move |c| {
            let tx = c.transaction()?;
            let id = append(&tx, &actor, &action, subject.as_deref(), detail)?;
            tx.commit()?;
            Ok(id)
        })
        .await
    }

    pub async fn audit_verify(&self) -> Result<Verified, StoreError> {
        self.call(|c| verify(c)).await
    }

    pub async fn audit_tail(&self, n: usize) -> Result<Vec<Entry>, StoreError> {
        self.call(move |c| tail(c, n)).await
    }
}
