//! Settling a claim: recording what the provider said about a send, under
//! the lease that claimed it (or, for a send, whoever holds the row now),
//! with its audit entry.

use chrono::{DateTime, Utc};
use rusqlite::{Connection, OptionalExtension, params};

use super::reports::{apply_pending, revoke_for_provider_opt_out};
use super::state::{Change, set_state};
use super::{immediate, subject, ts};
use crate::domain::message::OutState;
use crate::store::StoreError;
use crate::store::sqlite::audit;
use crate::store::traits::outbox::{Lease, Outcome, Settled};

fn audit_outcome(
    conn: &Connection,
    id: i64,
    member: Option<i64>,
    state: OutState,
    reason: Option<&str>,
    provider: Option<&str>,
) -> Result<(), StoreError> {
    audit::append(
        conn,
        "hearth",
        &format!("sms.{}", state.as_str()),
        subject(conn, member)?.as_deref(),
        serde_json::json!({ "outbox": id, "reason": reason, "provider": provider }),
    )?;
    Ok(())
}

/// Records `outcome` for a message now in `from` (a `sending` row under
/// this lease, or, for a send, any row the rule lets become `sent`).
fn record(
    conn: &Connection,
    id: i64,
    member: Option<i64>,
    from: OutState,
    outcome: &Outcome,
    now: DateTime<Utc>,
) -> Result<bool, StoreError> {
    let to = outcome.state();
    let moved = set_state(conn, id, from, to, &change_for(outcome), now)?;
    if moved {
        after_recorded(conn, id, member, to, outcome)?;
    }
    Ok(moved)
}

/// What else changes with the state `outcome` moves a message to: who
/// took a send, when a retry or deferral is due (a deferral gives its
/// attempt back), why it ended.
fn change_for(outcome: &Outcome) -> Change<'_> {
    match outcome {
        Outcome::Sent {
            provider,
            provider_message_id,
        } => Change {
            provider: Some((provider, provider_message_id.as_deref())),
            ..Change::default()
        },
        Outcome::Retry { at, reason } => Change {
            reason: Some(reason),
            next_attempt_at: Some(*at),
            ..Change::default()
        },
        Outcome::Defer { until, reason } => Change {
            reason: Some(reason),
            next_attempt_at: Some(*until),
            attempts: -1,
            ..Change::default()
        },
        Outcome::Failed { reason }
        | Outcome::OptedOut { reason }
        | Outcome::Suppressed { reason }
        | Outcome::Expired { reason } => Change {
            reason: Some(reason),
            ..Change::default()
        },
    }
}

/// What follows a recorded move: a send applies the reports that came
/// before it, a provider's opt-out revokes consent, and a send or an end
/// is audited (a retry or deferral is not).
fn after_recorded(
    conn: &Connection,
    id: i64,
    member: Option<i64>,
    to: OutState,
    outcome: &Outcome,
) -> Result<(), StoreError> {
    match outcome {
        Outcome::Sent {
            provider,
            provider_message_id,
        } => {
            if let Some(pmid) = provider_message_id {
                apply_pending(conn, id, provider, pmid)?;
            }
            audit_outcome(conn, id, member, to, None, Some(provider))
        }
        Outcome::Retry { .. } | Outcome::Defer { .. } => Ok(()),
        Outcome::Failed { reason }
        | Outcome::OptedOut { reason }
        | Outcome::Suppressed { reason }
        | Outcome::Expired { reason } => {
            if let (Outcome::OptedOut { reason }, Some(m)) = (outcome, member) {
                revoke_for_provider_opt_out(conn, m, reason)?;
            }
            audit_outcome(conn, id, member, to, Some(reason), None)
        }
    }
}

pub(crate) fn settle(
    conn: &mut Connection,
    lease: &Lease,
    outcome: &Outcome,
    now: DateTime<Utc>,
) -> Result<Settled, StoreError> {
    let tx = immediate(conn)?;
    let id = lease.outbox_id;
    type Row = (String, Option<String>, i64, Option<String>, Option<i64>);
    let row: Option<Row> = tx
        .query_row(
            "SELECT state, claimed_by, claims, provider, member_id FROM outbox WHERE id = ?1",
            [id],
            |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?, r.get(4)?)),
        )
        .optional()?;
    let (state, holder, token, provider, member) =
        row.ok_or_else(|| StoreError::NotFound(format!("outbox message #{id}")))?;
    let state = OutState::parse(&state).ok_or_else(|| {
        StoreError::Invalid(format!("outbox message #{id} has unknown state `{state}`"))
    })?;
    let ours = holder.as_deref() == Some(lease.holder.as_str()) && token == lease.token;
    let to = outcome.state();
    let settled = match outcome {
        // The provider has it: record that whoever holds the row now, so
        // it is not sent again.
        Outcome::Sent {
            provider: p,
            provider_message_id: pmid,
        } => {
            if state.may_move(to) {
                record(&tx, id, member, state, outcome, now)?;
                Settled::Recorded(to)
            } else if provider.is_none() && state.rank() > OutState::Sent.rank() {
                // A delivery report overtook the record of the send: the
                // state stays where the report put it; note who took it.
                tx.execute(
                    "UPDATE outbox SET provider = ?2, provider_message_id = coalesce(?3, provider_message_id), updated_at = ?4 WHERE id = ?1",
                    params![id, p, pmid, ts(now)],
                )?;
                if let Some(pmid) = pmid {
                    apply_pending(&tx, id, p, pmid)?;
                }
                audit_outcome(&tx, id, member, to, None, Some(p))?;
                Settled::Recorded(state)
            } else {
                Settled::AlreadyRecorded(state)
            }
        }
        _ if ours && state == OutState::Sending => {
            record(&tx, id, member, state, outcome, now)?;
            Settled::Recorded(to)
        }
        _ if ours => Settled::AlreadyRecorded(state),
        _ => Settled::LeaseLost(state),
    };
    tx.commit()?;
    Ok(settled)
}
