//! The incident queries and their JSON that the admin API and
//! `hearth incidents` share: the listing by state and member, where an
//! escalation's sequence stands, and an escalation and a notice as people
//! read them (never an address or a notice body).

use serde_json::{Value, json};

use super::Entry;
use super::pinned::Pinned;
use crate::domain::incident::{Incident, IncidentState};
use crate::store::Backend;
use crate::store::StoreError;
use crate::store::traits::escalation::{EscalationRow, Notice};
use crate::store::traits::incident::IncidentFilter;

/// Which incidents a listing holds, by state.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum StateFilter {
    Open,
    Acknowledged,
    Resolved,
    /// Open or acknowledged.
    Unresolved,
}

impl StateFilter {
    pub(crate) const NAMES: &'static str = "open, acknowledged, resolved or unresolved";

    pub(crate) fn parse(s: &str) -> Option<StateFilter> {
        match s {
            "open" => Some(StateFilter::Open),
            "acknowledged" => Some(StateFilter::Acknowledged),
            "resolved" => Some(StateFilter::Resolved),
            "unresolved" => Some(StateFilter::Unresolved),
            _ => None,
        }
    }

    pub(crate) fn admits(self, state: IncidentState) -> bool {
        match self {
            StateFilter::Open => state == IncidentState::Open,
            StateFilter::Acknowledged => state == IncidentState::Acknowledged,
            StateFilter::Resolved => state == IncidentState::Resolved,
            StateFilter::Unresolved => state != IncidentState::Resolved,
        }
    }
}

/// Incidents, newest first, in `state` (`None`: any), of `member`
/// (external id; an unknown one matches nothing), at most `limit`. The
/// one listing the API and `hearth incidents list` share.
///
/// The store filters open and unresolved incidents itself. Acknowledged
/// ones are the unresolved ones read whole and filtered here (few: they
/// wait for someone); resolved ones are the newest `limit + unresolved`
/// incidents filtered here, which hold at least `limit` resolved ones if
/// there are that many (ids grow with time, so nothing older is needed;
/// an incident opened between the count and the read can only shorten
/// the page by one).
pub(crate) async fn list_incidents(
    store: &impl Backend,
    state: Option<StateFilter>,
    member: Option<String>,
    limit: usize,
) -> Result<Vec<Incident>, StoreError> {
    let filter = |unresolved: bool, open_only: bool, limit: Option<usize>| IncidentFilter {
        open_only,
        unresolved,
        member: member.clone(),
        limit,
    };
    let mut rows = match state {
        None => store.incidents(&filter(false, false, Some(limit))).await?,
        Some(StateFilter::Open) => store.incidents(&filter(false, true, Some(limit))).await?,
        Some(StateFilter::Unresolved) => store.incidents(&filter(true, false, Some(limit))).await?,
        Some(StateFilter::Acknowledged) => store.incidents(&filter(true, false, None)).await?,
        Some(StateFilter::Resolved) => {
            let counts = store.incident_counts().await?;
            let unresolved = usize::try_from(counts.open + counts.acknowledged).unwrap_or(0);
            store
                .incidents(&filter(
                    false,
                    false,
                    Some(limit.saturating_add(unresolved)),
                ))
                .await?
        }
    };
    if let Some(s) = state {
        rows.retain(|i| s.admits(i.state));
    }
    rows.truncate(limit);
    Ok(rows)
}

/// The entry of the pinned policy's sequence an escalation will notify
/// next: which step, in which round; `None` past the sequence's end or
/// when the pinned policy cannot be read.
pub(crate) fn next_entry(e: &EscalationRow) -> Option<Entry> {
    Pinned::from_json(&e.pinned).ok()?.entry(e.next_position)
}

/// The next step as people read it: `step` 1-based (the backup step
/// numbered after the others), `round` 1-based, `backup`; nulls past the
/// sequence's end.
pub(crate) fn next_step_json(e: &EscalationRow) -> [(&'static str, Value); 3] {
    let entry = next_entry(e);
    [
        ("step", entry.map(|x| Pinned::step_number(&x)).into()),
        ("round", entry.map(|x| x.round + 1).into()),
        ("backup", entry.is_some_and(|x| x.backup).into()),
    ]
}

/// An incident's escalation as the API, `/status` and the CLI's JSON
/// show it: the pinned policy and where its sequence stands.
pub(crate) fn escalation_json(e: &EscalationRow) -> Value {
    let mut v = json!({
        "policy": e.policy,
        "version": e.version,
        "next_position": e.next_position,
        "next_due": e.next_due,
        "seq": e.seq,
        "lapse_due": e.lapse_due,
        "exhausted": e.exhausted,
    });
    for (k, x) in next_step_json(e) {
        v[k] = x;
    }
    v
}

/// A notice as the API and the CLI's JSON show it: whom (contact id), by
/// which channel, for what, and how delivery went; never the address or
/// the body.
pub(crate) fn notice_json(n: &Notice) -> Value {
    json!({
        "id": n.id,
        "purpose": n.purpose,
        "step": n.step,
        "round": n.round,
        "contact": n.contact,
        "channel": n.channel,
        "state": n.state,
        "attempts": n.attempts,
        "next_attempt": n.next_attempt,
        "last_error": n.last_error,
        "created_at": n.created_at,
        "updated_at": n.updated_at,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn state_filters_parse_their_names_and_admit_their_states() {
        use IncidentState::*;
        let f = |s| StateFilter::parse(s).unwrap();
        assert!(f("open").admits(Open) && !f("open").admits(Acknowledged));
        assert!(f("acknowledged").admits(Acknowledged) && !f("acknowledged").admits(Open));
        assert!(f("resolved").admits(Resolved) && !f("resolved").admits(Open));
        assert!(f("unresolved").admits(Open) && f("unresolved").admits(Acknowledged));
        assert!(!f("unresolved").admits(Resolved));
        assert_eq!(StateFilter::parse("closed"), None);
        assert_eq!(StateFilter::parse("Open"), None);
    }
}
