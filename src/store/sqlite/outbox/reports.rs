//! Delivery reports: applied to their message when it is known, kept in
//! `pending_reports` when it is not (yet), and applied when its send is
//! recorded. A provider's opt-out revokes the member's consent.

use chrono::Utc;
use rusqlite::{Connection, OptionalExtension, params};

use super::state::{Change, set_state, state_of};
use super::{immediate, ts};
use crate::domain::bookkeeping;
use crate::domain::message::{OutState, Report, ReportFor};
use crate::store::StoreError;
use crate::store::sqlite::consent;

/// Applies a delivery report. Returns the message's state afterwards, or
/// `None` when no such message exists (yet: a report by provider id for a
/// message whose send is not recorded is kept and applied when it is).
pub(crate) fn apply_report(
    conn: &mut Connection,
    target: &ReportFor,
    report: Report,
    detail: Option<&str>,
) -> Result<Option<OutState>, StoreError> {
    let tx = immediate(conn)?;
    let id: Option<i64> = match target {
        ReportFor::Outbox(id) => tx
            .query_row("SELECT id FROM outbox WHERE id = ?1", [id], |r| r.get(0))
            .optional()?,
        ReportFor::ProviderId { provider, id } => tx
            .query_row(
                "SELECT id FROM outbox WHERE provider = ?1 AND provider_message_id = ?2",
                params![provider, id],
                |r| r.get(0),
            )
            .optional()?,
    };
    let Some(id) = id else {
        if let ReportFor::ProviderId { provider, id } = target {
            tx.execute(
                "INSERT INTO pending_reports (provider, provider_message_id, report, detail, at) VALUES (?1, ?2, ?3, ?4, ?5)",
                params![provider, id, report.as_str(), detail, ts(Utc::now())],
            )?;
        }
        tx.commit()?;
        return Ok(None);
    };
    apply_to(&tx, id, report, detail)?;
    let state = state_of(&tx, id)?;
    tx.commit()?;
    Ok(Some(state))
}

/// Records a report and moves the message if the rule allows; a report
/// that would move it backwards is kept in `delivery_events` only.
fn apply_to(
    conn: &Connection,
    id: i64,
    report: Report,
    detail: Option<&str>,
) -> Result<(), StoreError> {
    let now = Utc::now();
    conn.execute(
        "INSERT INTO delivery_events (outbox_id, report, detail, at) VALUES (?1, ?2, ?3, ?4)",
        params![id, report.as_str(), detail, ts(now)],
    )?;
    let from = state_of(conn, id)?;
    if from.may_move(report.state()) {
        set_state(
            conn,
            id,
            from,
            report.state(),
            &Change {
                reason: detail,
                ..Change::default()
            },
            now,
        )?;
    }
    if report == Report::OptedOut {
        let member: Option<i64> =
            conn.query_row("SELECT member_id FROM outbox WHERE id = ?1", [id], |r| {
                r.get(0)
            })?;
        if let Some(m) = member {
            revoke_for_provider_opt_out(conn, m, detail.unwrap_or("opted out"))?;
        }
    }
    Ok(())
}

/// Applies reports that arrived before this message's send was recorded.
pub(super) fn apply_pending(
    conn: &Connection,
    id: i64,
    provider: &str,
    provider_message_id: &str,
) -> Result<(), StoreError> {
    let mut stmt = conn.prepare_cached(
        "SELECT report, detail FROM pending_reports WHERE provider = ?1 AND provider_message_id = ?2 ORDER BY id",
    )?;
    let pending = stmt
        .query_map(params![provider, provider_message_id], |r| {
            Ok((r.get::<_, String>(0)?, r.get::<_, Option<String>>(1)?))
        })?
        .collect::<Result<Vec<_>, _>>()?;
    for (report, detail) in pending {
        if let Some(report) = Report::parse(&report) {
            apply_to(conn, id, report, detail.as_deref())?;
        }
    }
    conn.execute(
        "DELETE FROM pending_reports WHERE provider = ?1 AND provider_message_id = ?2",
        params![provider, provider_message_id],
    )?;
    Ok(())
}

/// Appends the consent revocation a provider's opt-out means
/// ([`bookkeeping::provider_opt_out`]).
pub(super) fn revoke_for_provider_opt_out(
    conn: &Connection,
    member: i64,
    reason: &str,
) -> Result<(), StoreError> {
    let c = bookkeeping::provider_opt_out(reason);
    consent::record(conn, member, c.action, c.source, &c.text, c.actor)?;
    Ok(())
}
