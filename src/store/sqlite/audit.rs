//! The audit trail (HIPAA §164.312(b) audit controls, (c) integrity).
//!
//! Append-only, and hash-chained: each entry stores the previous entry's
//! hash and a hash over its own canonical content plus that previous hash.
//! Editing or deleting any entry but the newest breaks the chain, and
//! [`verify`] names the first broken entry. Start-up checks only the
//! entries written since its last checkpoint (work proportional to new
//! entries) and then moves the checkpoint; `hearth audit verify` walks
//! everything. Cutting entries off the end is seen up to the checkpoint;
//! the daemon also logs the head hash at each start so a copy exists
//! outside the database.
//!
//! Entries carry ids, never names, phone numbers or message bodies.

use chrono::Utc;
use rusqlite::{Connection, OptionalExtension, params};

use super::SqliteStore;
use super::consent::parse_time;
use crate::domain::member::{AuditEntry as Entry, AuditVerified as Verified};
use crate::store::StoreError;
use crate::store::traits::AuditStore;
use crate::text::sha256_hex;

/// The `prev_hash` of the first entry.
pub(crate) const GENESIS: &str = "0000000000000000000000000000000000000000000000000000000000000000";

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

/// A stored row: the entry and the exact text its hash covers.
struct Raw {
    id: i64,
    at: String,
    actor: String,
    action: String,
    subject: Option<String>,
    detail: String,
    prev_hash: String,
    hash: String,
}

const SELECT: &str = "SELECT id, at, actor, action, subject, detail, prev_hash, hash FROM audit";

fn raw(row: &rusqlite::Row<'_>) -> rusqlite::Result<Raw> {
    Ok(Raw {
        id: row.get(0)?,
        at: row.get(1)?,
        actor: row.get(2)?,
        action: row.get(3)?,
        subject: row.get(4)?,
        detail: row.get(5)?,
        prev_hash: row.get(6)?,
        hash: row.get(7)?,
    })
}

impl Raw {
    fn entry(self) -> Result<Entry, StoreError> {
        Ok(Entry {
            id: self.id,
            at: parse_time(&self.at)
                .map_err(|e| StoreError::Corrupt(format!("audit entry {}: {e}", self.id)))?,
            actor: self.actor,
            action: self.action,
            subject: self.subject,
            detail: serde_json::from_str(&self.detail).unwrap_or(serde_json::Value::Null),
            prev_hash: self.prev_hash,
            hash: self.hash,
        })
    }
}

/// Walks entries after `from` (whose hash is `prev`), checking each link.
fn walk(conn: &Connection, from: i64, prev: &str) -> Result<Verified, StoreError> {
    let mut stmt = conn.prepare(&format!("{SELECT} WHERE id > ?1 ORDER BY id"))?;
    let mut rows = stmt.query([from])?;
    let mut prev = prev.to_owned();
    let mut expected_id = from + 1;
    let mut n = 0;
    while let Some(row) = rows.next()? {
        let e = raw(row)?;
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
            &e.detail,
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

/// The last entry start-up verified, and its hash.
fn checkpoint(conn: &Connection) -> Result<Option<(i64, String)>, StoreError> {
    // `hearth db check` reads a database as it is, possibly not yet
    // migrated to having a checkpoint.
    let table: Option<i64> = conn
        .query_row(
            "SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'audit_checkpoint'",
            [],
            |r| r.get(0),
        )
        .optional()?;
    if table.is_none() {
        return Ok(None);
    }
    Ok(conn
        .query_row(
            "SELECT entry, hash FROM audit_checkpoint WHERE id = 1",
            [],
            |r| Ok((r.get(0)?, r.get(1)?)),
        )
        .optional()?)
}

/// Walks the whole chain from the first entry (`hearth audit verify`,
/// `hearth db check`), and checks that nothing the checkpoint vouched for
/// was cut off the end.
pub(crate) fn verify(conn: &Connection) -> Result<Verified, StoreError> {
    let v = walk(conn, 0, GENESIS)?;
    if let (Verified::Intact { entries, .. }, Some((entry, _))) = (&v, checkpoint(conn)?)
        && entry > *entries as i64
    {
        return Ok(Verified::Broken {
            entry: *entries as i64 + 1,
            reason: format!(
                "entries {} to {entry} were verified at an earlier start and are gone (cut off the end)",
                entries + 1
            ),
            checked: *entries,
        });
    }
    Ok(v)
}

/// Start-up's check: the checkpointed entry still has the hash it had,
/// and every entry after it links on. Work is proportional to the entries
/// written since the last start. Moves the checkpoint to the head when
/// intact; `entries` counts the entries walked.
pub(crate) fn verify_since_checkpoint(conn: &mut Connection) -> Result<Verified, StoreError> {
    let tx = conn.transaction()?;
    let (from, prev) = match checkpoint(&tx)? {
        None => (0, GENESIS.to_owned()),
        Some((entry, hash)) => {
            let stored: Option<String> = tx
                .query_row("SELECT hash FROM audit WHERE id = ?1", [entry], |r| {
                    r.get(0)
                })
                .optional()?;
            match stored {
                None => {
                    return Ok(Verified::Broken {
                        entry,
                        reason: format!(
                            "entry {entry}, verified at an earlier start, is gone (cut off the end)"
                        ),
                        checked: 0,
                    });
                }
                Some(h) if h != hash => {
                    return Ok(Verified::Broken {
                        entry,
                        reason: "its hash changed since an earlier start verified it".into(),
                        checked: 0,
                    });
                }
                Some(_) => (entry, hash),
            }
        }
    };
    let v = walk(&tx, from, &prev)?;
    if let Verified::Intact { entries, head } = &v
        && *entries > 0
    {
        tx.execute(
            "INSERT INTO audit_checkpoint (id, entry, hash, at) VALUES (1, ?1, ?2, ?3)
             ON CONFLICT (id) DO UPDATE SET entry = excluded.entry, hash = excluded.hash, at = excluded.at",
            params![from + *entries as i64, head, Utc::now().to_rfc3339()],
        )?;
    }
    tx.commit()?;
    Ok(v)
}

pub(crate) fn tail(conn: &Connection, n: usize) -> Result<Vec<Entry>, StoreError> {
    let mut stmt = conn.prepare(&format!(
        "SELECT * FROM ({SELECT} ORDER BY id DESC LIMIT ?1) ORDER BY id"
    ))?;
    let rows = stmt
        .query_map([n as i64], raw)?
        .collect::<Result<Vec<_>, _>>()?;
    rows.into_iter().map(Raw::entry).collect()
}

impl AuditStore for SqliteStore {
    /// Appends one audit entry in its own transaction.
    async fn audit(
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

    /// Full `integrity_check` on a read connection.
    async fn integrity_check(&self) -> Result<Vec<String>, StoreError> {
        self.read(|c| Ok(super::integrity(c, "integrity_check")?))
            .await
    }

    /// Walks the whole chain (on a read connection).
    async fn audit_verify(&self) -> Result<Verified, StoreError> {
        self.read(verify).await
    }

    /// Verifies only what was written since the last checkpoint, then
    /// moves the checkpoint: start-up's check.
    async fn audit_verify_since_checkpoint(&self) -> Result<Verified, StoreError> {
        self.call(verify_since_checkpoint).await
    }

    async fn audit_tail(&self, n: usize) -> Result<Vec<Entry>, StoreError> {
        self.read(move |c| tail(c, n)).await
    }
}
