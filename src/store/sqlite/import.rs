//! Roster import into SQLite: one transaction, prepared statements, the
//! stored roster read once up front, and one audit chain step for the
//! whole batch (it lists every member whose record or consent changed).

use std::collections::HashMap;

use chrono::Utc;
use rusqlite::Connection;

use super::{SqliteStore, audit, consent, members};
use crate::domain::member::{ConsentAction, ConsentSource, Member, Recorded, Upserted};
use crate::store::StoreError;
use crate::store::import::{ImportOptions, ImportReport, ImportRow, RowError};

/// Imports parsed rows in one transaction (all or nothing).
pub(super) async fn import_members(
    store: &SqliteStore,
    rows: Vec<ImportRow>,
    mut invalid: Vec<RowError>,
    opts: ImportOptions,
) -> Result<ImportReport, StoreError> {
    let grants = rows.iter().any(|r| r.consent == Some(true));
    if grants
        && opts
            .consent_text
            .as_deref()
            .is_none_or(|t| t.trim().is_empty())
    {
        return Err(StoreError::Invalid(
                "rows grant consent, but no consent text was given\n  hint: pass --consent-text with the exact words members agreed to".into(),
            ));
    }
    // The stored roster, read once on a read connection before the
    // write transaction, so the write lock is held only for writing
    // (a re-import of an unchanged roster writes almost nothing). If
    // anything changed in between, the transaction reads it again.
    let snapshot = store
        .read(|c| Ok((roster_version(c)?, members::list(c, None)?)))
        .await?;
    store
        .call(move |conn| {
            let tx = conn.transaction()?;
            let mut report = ImportReport {
                rows: rows.len() + invalid.len(),
                ..ImportReport::default()
            };
            let (version, stored) = snapshot;
            let stored = if roster_version(&tx)? == version {
                stored
            } else {
                members::list(&tx, None)?
            };
            let by_phone: HashMap<&str, &Member> =
                stored.iter().map(|m| (m.phone.as_str(), m)).collect();
            let by_ext: HashMap<&str, &Member> =
                stored.iter().map(|m| (m.external_id.as_str(), m)).collect();
            // A phone number may belong to one member only.
            let mut valid = Vec::with_capacity(rows.len());
            for row in rows {
                match by_phone.get(row.record.phone.as_str()) {
                    Some(other) if other.external_id != row.record.external_id => {
                        invalid.push(RowError {
                            line: row.line,
                            external_id: Some(row.record.external_id.clone()),
                            reason: format!(
                                "duplicate phone number (already member `{}`)",
                                other.external_id
                            ),
                        })
                    }
                    _ => valid.push(row),
                }
            }
            invalid.sort_by_key(|e| e.line);
            report.invalid = invalid;
            if !report.invalid.is_empty() && !opts.skip_invalid {
                return Ok(report);
            }
            let now = Utc::now().to_rfc3339();
            let none = Default::default();
            let mut changed_ids = Vec::new();
            let mut granted_ids = Vec::new();
            let mut revoked_ids = Vec::new();
            for row in &valid {
                let existing = by_ext.get(row.record.external_id.as_str()).copied();
                let up = members::upsert(&tx, &row.record, existing, &now)?;
                match up {
                    Upserted::Inserted(id) => {
                        report.inserted += 1;
                        changed_ids.push(id);
                    }
                    Upserted::Updated(id) => {
                        report.updated += 1;
                        changed_ids.push(id);
                    }
                    Upserted::Unchanged(_) => report.unchanged += 1,
                }
                let (action, text) = match row.consent {
                    Some(true) => (
                        ConsentAction::Granted,
                        opts.consent_text.as_deref().unwrap_or_default(),
                    ),
                    Some(false) => (
                        ConsentAction::Revoked,
                        "roster import: consent column says no",
                    ),
                    None => continue,
                };
                let current = existing.map(|m| &m.consent).unwrap_or(&none);
                match consent::record_unaudited(
                    &tx,
                    up.id(),
                    current,
                    action,
                    ConsentSource::Import,
                    text,
                    &opts.actor,
                )? {
                    Recorded::Changed if action == ConsentAction::Granted => {
                        report.consent_granted += 1;
                        granted_ids.push(up.id());
                    }
                    Recorded::Changed => {
                        report.consent_revoked += 1;
                        revoked_ids.push(up.id());
                    }
                    Recorded::RefusedAfterOptOut => report.consent_kept_opted_out += 1,
                    Recorded::AlreadySo => {}
                }
            }
            let anything =
                report.inserted + report.updated + report.consent_granted + report.consent_revoked
                    > 0;
            if anything || !report.invalid.is_empty() {
                // One chain step for the batch: member ids, never names.
                audit::append(
                    &tx,
                    &opts.actor,
                    "members.import",
                    None,
                    serde_json::json!({
                        "file": opts.source_name,
                        "rows": report.rows,
                        "inserted": report.inserted,
                        "updated": report.updated,
                        "unchanged": report.unchanged,
                        "invalid": report.invalid.len(),
                        "consent_granted": report.consent_granted,
                        "consent_revoked": report.consent_revoked,
                        "members": changed_ids,
                        "consent_granted_members": granted_ids,
                        "consent_revoked_members": revoked_ids,
                    }),
                )?;
            }
            tx.commit()?;
            report.applied = true;
            Ok(report)
        })
        .await
}

/// What changes whenever the roster or anyone's consent does: the member
/// count and newest update, the group rows, the newest consent event.
fn roster_version(conn: &Connection) -> Result<(i64, Option<String>, i64, i64), StoreError> {
    Ok(conn.query_row(
        "SELECT (SELECT count(*) FROM members), (SELECT max(updated_at) FROM members),
                (SELECT count(*) FROM group_members), (SELECT coalesce(max(id), 0) FROM consent_events)",
        [],
        |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?)),
    )?)
}
