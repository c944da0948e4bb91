//! How escalation rows and notices are read from SQLite: the column
//! lists in order and the mapping of a row to an [`EscalationRow`] or a
//! [`Notice`], with the checked conversions they need.

use crate::domain::Channel;
use crate::domain::incident::{IncidentState, Severity, Subject};
use crate::store::sqlite::bad;
use crate::store::sqlite::outbox::{get_opt_ts, get_ts};
use crate::store::traits::escalation::{EscalationRow, Notice, Purpose};

pub(super) fn channel_str(c: Channel) -> &'static str {
    match c {
        Channel::Sms => "sms",
        Channel::Email => "email",
        Channel::Webhook => "webhook",
    }
}

fn channel_of(i: usize, s: &str) -> rusqlite::Result<Channel> {
    match s {
        "sms" => Ok(Channel::Sms),
        "email" => Ok(Channel::Email),
        "webhook" => Ok(Channel::Webhook),
        other => Err(bad(i, format!("unknown notice channel `{other}`"))),
    }
}

fn u64_of(r: &rusqlite::Row<'_>, i: usize) -> rusqlite::Result<u64> {
    let v: i64 = r.get(i)?;
    u64::try_from(v).map_err(|_| bad(i, format!("a negative count: {v}")))
}

fn opt_u32_of(r: &rusqlite::Row<'_>, i: usize) -> rusqlite::Result<Option<u32>> {
    let v: Option<i64> = r.get(i)?;
    v.map(|v| u32::try_from(v).map_err(|_| bad(i, format!("out of range: {v}"))))
        .transpose()
}

/// The columns [`row`] reads, `e` the escalation, `i` its incident.
pub(super) const ROW_COLUMNS: &str =
    "e.incident_id, e.policy, e.version, e.pinned, e.next_position, e.next_due,
     e.seq, e.lapse_due, e.exhausted, e.rev, e.started_at, e.updated_at,
     i.state, i.alert, i.severity, i.subject, i.member_id, i.opened_at,
     i.acknowledged_by, i.acknowledged_at";

pub(super) fn row(r: &rusqlite::Row<'_>) -> rusqlite::Result<EscalationRow> {
    let state: String = r.get(12)?;
    let severity: String = r.get(14)?;
    let subject: String = r.get(15)?;
    Ok(EscalationRow {
        incident_id: r.get(0)?,
        policy: r.get(1)?,
        version: r.get(2)?,
        pinned: r.get(3)?,
        next_position: u64_of(r, 4)?,
        next_due: get_opt_ts(r, 5)?,
        seq: u64_of(r, 6)?,
        lapse_due: get_opt_ts(r, 7)?,
        exhausted: r.get(8)?,
        rev: r.get(9)?,
        started_at: get_ts(r, 10)?,
        updated_at: get_ts(r, 11)?,
        state: IncidentState::parse(&state)
            .ok_or_else(|| bad(12, format!("unknown incident state `{state}`")))?,
        alert: r.get(13)?,
        severity: Severity::parse(&severity)
            .ok_or_else(|| bad(14, format!("unknown severity `{severity}`")))?,
        subject: Subject::from_key(&subject)
            .ok_or_else(|| bad(15, format!("unknown incident subject `{subject}`")))?,
        member_id: r.get(16)?,
        opened_at: get_ts(r, 17)?,
        acknowledged_by: r.get(18)?,
        acknowledged_at: get_opt_ts(r, 19)?,
    })
}

/// The columns [`notice`] reads, `n` the notice, `o` its outbox row (a
/// left join).
pub(super) const NOTICE_COLUMNS: &str =
    "n.id, n.incident_id, n.purpose, n.seq, n.step, n.round, n.contact, n.channel,
     n.address, n.subject, n.body, coalesce(o.state, n.state), n.outbox_id, n.attempts,
     n.next_attempt, n.last_error, n.created_at, n.updated_at";

pub(super) fn notice(r: &rusqlite::Row<'_>) -> rusqlite::Result<Notice> {
    let purpose: String = r.get(2)?;
    let channel: String = r.get(7)?;
    let attempts: i64 = r.get(13)?;
    Ok(Notice {
        id: r.get(0)?,
        incident_id: r.get(1)?,
        purpose: Purpose::parse(&purpose)
            .ok_or_else(|| bad(2, format!("unknown notice purpose `{purpose}`")))?,
        seq: u64_of(r, 3)?,
        step: opt_u32_of(r, 4)?,
        round: opt_u32_of(r, 5)?,
        contact: r.get(6)?,
        channel: channel_of(7, &channel)?,
        address: r.get(8)?,
        subject: r.get(9)?,
        body: r.get(10)?,
        state: r.get(11)?,
        outbox_id: r.get(12)?,
        attempts: u32::try_from(attempts).unwrap_or(0),
        next_attempt: get_opt_ts(r, 14)?,
        last_error: r.get(15)?,
        created_at: get_ts(r, 16)?,
        updated_at: get_ts(r, 17)?,
    })
}
