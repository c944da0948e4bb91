//! Roster import into SQLite: one transaction, prepared statements, the
//! stored roster read once up front, and one audit chain step for the
//! whole batch (it lists every member whose record or consent changed).

use std::collections::HashMap;

use chrono::Utc;
use rusqlite::{Connection, Transaction};

use super::{SqliteStore, audit, consent, members};
use crate::domain::member::{
    ConsentAction, ConsentSource, ConsentState, Member, Recorded, RevokedBy, Upserted,
};
use crate::store::StoreError;
use crate::store::import::{ImportOptions, ImportReport, ImportRow, RowError};

/// The roster as last read: its [`roster_version`] and its members.
type Snapshot = ((i64, Option<String>, i64, i64), Vec<Member>);

/// Imports parsed rows in one transaction (all or nothing).
pub(super) async fn import_members(
    store: &SqliteStore,
    rows: Vec<ImportRow>,
    invalid: Vec<RowError>,
    opts: ImportOptions,
) -> Result<ImportReport, StoreError> {
    check_consent_text(&rows, &opts)?;
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
            import_in(tx, rows, invalid, &opts, snapshot)
        })
        .await
}

/// Refuses rows that grant consent when no consent text was given.
fn check_consent_text(rows: &[ImportRow], opts: &ImportOptions) -> Result<(), StoreError> {
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
    Ok(())
}

/// The import inside its transaction: stops before writing when rows are
/// invalid (unless told to skip them), else applies the valid rows,
/// audits the batch and commits.
fn import_in(
    tx: Transaction<'_>,
    rows: Vec<ImportRow>,
    mut invalid: Vec<RowError>,
    opts: &ImportOptions,
    snapshot: Snapshot,
) -> Result<ImportReport, StoreError> {
    let mut report = ImportReport {
        rows: rows.len() + invalid.len(),
        ..ImportReport::default()
    };
    let stored = current_roster(&tx, snapshot)?;
    let by_phone: HashMap<&str, &Member> = stored.iter().map(|m| (m.phone.as_str(), m)).collect();
    let by_ext: HashMap<&str, &Member> =
        stored.iter().map(|m| (m.external_id.as_str(), m)).collect();
    let valid = without_taken_phones(rows, &by_phone, &mut invalid);
    invalid.sort_by_key(|e| e.line);
    report.invalid = invalid;
    if !report.invalid.is_empty() && !opts.skip_invalid {
        return Ok(report);
    }
    let changed = apply_rows(&tx, &valid, &by_ext, opts, &mut report)?;
    let anything =
        report.inserted + report.updated + report.consent_granted + report.consent_revoked > 0;
    if anything || !report.invalid.is_empty() {
        audit_import(&tx, opts, &report, &changed)?;
    }
    tx.commit()?;
    report.applied = true;
    Ok(report)
}

/// The snapshot's members if the roster has not changed since, else the
/// roster read again inside the transaction.
fn current_roster(conn: &Connection, snapshot: Snapshot) -> Result<Vec<Member>, StoreError> {
    let (version, stored) = snapshot;
    if roster_version(conn)? == version {
        Ok(stored)
    } else {
        members::list(conn, None)
    }
}

/// A phone number may belong to one member only: a row whose number is
/// another member's becomes an invalid row; the rest are returned.
fn without_taken_phones(
    rows: Vec<ImportRow>,
    by_phone: &HashMap<&str, &Member>,
    invalid: &mut Vec<RowError>,
) -> Vec<ImportRow> {
    let mut valid = Vec::with_capacity(rows.len());
    for row in rows {
        match by_phone.get(row.record.phone.as_str()) {
            Some(other) if other.external_id != row.record.external_id => invalid.push(RowError {
                line: row.line,
                external_id: Some(row.record.external_id.clone()),
                reason: format!(
                    "duplicate phone number (already member `{}`)",
                    other.external_id
                ),
            }),
            _ => valid.push(row),
        }
    }
    valid
}

/// The member ids the batch's audit entry lists.
#[derive(Default)]
struct Changed {
    members: Vec<i64>,
    granted: Vec<i64>,
    revoked: Vec<i64>,
}

/// Upserts each valid row and records its consent column, counting both
/// in `report`.
fn apply_rows(
    conn: &Connection,
    valid: &[ImportRow],
    by_ext: &HashMap<&str, &Member>,
    opts: &ImportOptions,
    report: &mut ImportReport,
) -> Result<Changed, StoreError> {
    let now = Utc::now().to_rfc3339();
    let mut changed = Changed::default();
    for row in valid {
        let existing = by_ext.get(row.record.external_id.as_str()).copied();
        let up = members::upsert(conn, &row.record, existing, &now)?;
        match up {
            Upserted::Inserted(id) => {
                report.inserted += 1;
                changed.members.push(id);
            }
            Upserted::Updated(id) => {
                report.updated += 1;
                changed.members.push(id);
            }
            Upserted::Unchanged(_) => report.unchanged += 1,
        }
        record_consent(conn, row, up.id(), existing, opts, report, &mut changed)?;
    }
    Ok(changed)
}

/// Records what a row's consent column says (nothing when it is empty):
/// a grant with the given consent text, a revocation with the import's
/// own words.
fn record_consent(
    conn: &Connection,
    row: &ImportRow,
    id: i64,
    existing: Option<&Member>,
    opts: &ImportOptions,
    report: &mut ImportReport,
    changed: &mut Changed,
) -> Result<(), StoreError> {
    let (action, text) = match row.consent {
        Some(true) => (
            ConsentAction::Granted,
            opts.consent_text.as_deref().unwrap_or_default(),
        ),
        Some(false) => (
            ConsentAction::Revoked,
            "roster import: consent column says no",
        ),
        None => return Ok(()),
    };
    let none = ConsentState::default();
    let current = existing.map(|m| &m.consent).unwrap_or(&none);
    match consent::record_unaudited(
        conn,
        id,
        current,
        action,
        ConsentSource::Import,
        text,
        &opts.actor,
    )? {
        Recorded::Changed if action == ConsentAction::Granted => {
            report.consent_granted += 1;
            changed.granted.push(id);
        }
        Recorded::Changed => {
            report.consent_revoked += 1;
            changed.revoked.push(id);
        }
        Recorded::RefusedAfterOptOut | Recorded::RefusedAfterRevocation => {
            let kept = &mut report.kept_revoked;
            match current.revoked_by() {
                Some(RevokedBy::Provider) => kept.provider += 1,
                Some(RevokedBy::Staff) => kept.staff += 1,
                _ => kept.stop += 1,
            }
        }
        Recorded::AlreadySo => {}
    }
    Ok(())
}

/// One chain step for the batch: counts and member ids, never names.
fn audit_import(
    conn: &Connection,
    opts: &ImportOptions,
    report: &ImportReport,
    changed: &Changed,
) -> Result<(), StoreError> {
    audit::append(
        conn,
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
            "consent_kept_revoked": report.kept_revoked,
            "members": changed.members,
            "consent_granted_members": changed.granted,
            "consent_revoked_members": changed.revoked,
        }),
    )?;
    Ok(())
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
