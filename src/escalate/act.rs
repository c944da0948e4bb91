//! Acting on an incident: ACK, RESOLVE and ESC from a contact's text, the
//! admin API or the CLI ([`act`]): who may, the state change with who and
//! how, the escalation paused, stopped or moved on, and the notices to
//! everyone already paged, in one guarded write. The timer that then
//! makes and delivers what falls due is [`crate::timers::escalations`].

use chrono::{DateTime, Utc};

use super::compose::{about, build_notice, unchanged};
use super::notice::{About, Event};
use super::pinned::{Pinned, PinnedContact};
use super::start::start;
use crate::domain::Channel;
use crate::domain::incident::{Incident, IncidentState};
use crate::rules::RuleSet;
use crate::store::Backend;
use crate::store::StoreError;
use crate::store::traits::escalation::{
    EscalationRow, EscalationWrite, Notice, Purpose, Transition,
};

/// What a person asks of an incident.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Action {
    Ack,
    Resolve,
    /// Notify the next step now (`ESC 42`); after an acknowledgement, it
    /// hands the incident back (state open) and pages on.
    Escalate,
}

impl Action {
    pub(crate) fn as_str(self) -> &'static str {
        match self {
            Action::Ack => "ack",
            Action::Resolve => "resolve",
            Action::Escalate => "escalate",
        }
    }
}

/// How the person reached Hearth.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub(crate) enum How {
    Sms,
    Api,
    Cli,
}

impl How {
    pub(crate) fn as_str(self) -> &'static str {
        match self {
            How::Sms => "sms",
            How::Api => "api",
            How::Cli => "cli",
        }
    }
}

/// Who acts.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Actor {
    /// A contact from the rules, texting from its number: must be on the
    /// incident's chain.
    Contact(String),
    /// The admin API (any valid bearer token).
    Api,
    /// `hearth incidents ack|resolve` run by this operating-system user.
    Cli(String),
}

impl Actor {
    /// As audited and stored: `contact:dana`, `api`, `cli:alex`.
    pub(crate) fn label(&self) -> String {
        match self {
            Actor::Contact(id) => format!("contact:{id}"),
            Actor::Api => "api".into(),
            Actor::Cli(user) => format!("cli:{user}"),
        }
    }
}

/// What an action did.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
#[serde(tag = "result", rename_all = "snake_case")]
pub enum Acted {
    /// Applied: the incident's state now, and how many contacts are told
    /// about it (those already paged, told who acknowledged).
    Done {
        incident: i64,
        state: IncidentState,
        told: usize,
    },
    /// Nothing to do: already in that state (a second `ACK 42`), by whom.
    Already {
        incident: i64,
        state: IncidentState,
        by: Option<String>,
    },
}

/// Why an action was refused. Each is audited (`incident.refused`) with
/// the actor, the action and the reason.
#[derive(Debug, thiserror::Error)]
pub enum ActError {
    #[error("no incident #{0}")]
    NotFound(i64),
    #[error("incident #{0} is resolved")]
    Resolved(i64),
    #[error("not on incident #{0}'s escalation chain")]
    NotOnChain(i64),
    /// A bare `ACK` from a contact with several open incidents.
    #[error("several open incidents ({}): say which, e.g. ACK {}", .0.iter().map(|i| format!("#{i}")).collect::<Vec<_>>().join(", "), .0.first().copied().unwrap_or_default())]
    Ambiguous(Vec<i64>),
    /// A bare `ACK` from a contact with none.
    #[error("no open incident for you")]
    NoneOpen,
    /// The incident's escalation has not started and there are no rules
    /// to pin its policy from (the CLI could not read them): refused, so
    /// the escalation stays startable rather than being lost.
    #[error(
        "incident #{0}'s escalation has not started yet and the rules could not be read to pin its policy"
    )]
    NotStarted(i64),
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// Applies `action` to `incident` (or, when `None`, to the one unresolved
/// incident whose chain the contact is on) for `actor` at `now`: the
/// state change with who and how, the escalation paused (ACK), stopped
/// (RESOLVE) or moved on now (ESC), and the notices to everyone already
/// paged (who acknowledged; who resolved it, when nobody had), in one
/// guarded write. Used alike by the text pipeline, the API and the CLI;
/// the daemon's engine delivers what it queued. A refusal is audited
/// (`incident.refused`).
///
/// An incident whose escalation the timer has not started yet (the
/// daemon is down, or the action came within milliseconds of the
/// incident) has its policy pinned here from `rules` first
/// ([`super::start`]), so the action never leaves it without one; with
/// no rules to pin from, the action is refused ([`ActError::NotStarted`])
/// and the escalation stays startable.
pub async fn act(
    store: &impl Backend,
    rules: Option<&RuleSet>,
    incident: Option<i64>,
    action: Action,
    actor: &Actor,
    now: DateTime<Utc>,
) -> Result<Acted, ActError> {
    let result = act_inner(store, rules, incident, action, actor, now).await;
    if let Err(e) = &result
        && !matches!(e, ActError::Store(_))
    {
        let subject = match (incident, e) {
            (Some(id), _) => Some(format!("incident:{id}")),
            _ => None,
        };
        store
            .audit(
                &actor.label(),
                "incident.refused",
                subject.as_deref(),
                serde_json::json!({ "action": action.as_str(), "reason": e.to_string() }),
            )
            .await?;
    }
    result
}

async fn act_inner(
    store: &impl Backend,
    rules: Option<&RuleSet>,
    incident: Option<i64>,
    action: Action,
    actor: &Actor,
    now: DateTime<Utc>,
) -> Result<Acted, ActError> {
    let id = match incident {
        Some(id) => id,
        None => bare_target(store, action, actor).await?,
    };
    // A guarded write can lose to the timer; read again and retry.
    for _ in 0..8 {
        if let Some(acted) = attempt(store, rules, id, action, actor, now).await? {
            return Ok(acted);
        }
    }
    Err(ActError::Store(StoreError::Busy(
        "the incident kept changing; try again".into(),
    )))
}

/// One read, decision and guarded write of `action` on incident `id`;
/// `None` when the write lost to another writer.
async fn attempt(
    store: &impl Backend,
    rules: Option<&RuleSet>,
    id: i64,
    action: Action,
    actor: &Actor,
    now: DateTime<Utc>,
) -> Result<Option<Acted>, ActError> {
    let Some(inc) = store.incident(id).await? else {
        return Err(ActError::NotFound(id));
    };
    let row = escalation_of(store, rules, &inc, now).await?;
    let pinned = Pinned::from_json(&row.pinned).unwrap_or_default();
    let notices = store.notices(id).await?;
    if let Actor::Contact(c) = actor
        && !pinned.on_chain(c)
        && !notices.iter().any(|n| &n.contact == c)
    {
        return Err(ActError::NotOnChain(id));
    }
    if let Some(settled) = already(action, id, &row, &inc) {
        return settled.map(Some);
    }
    let mut w = unchanged(&row, now);
    let by = actor_display(&pinned, actor);
    let (state, tell) = apply(action, actor, &by, &row, &pinned, &mut w, now);
    let mut told = 0;
    if let Some(event) = tell {
        let about = about(store, &inc, &pinned).await?;
        w.seq = row.seq + 1;
        told = tell_paged(&about, &event, actor, &pinned, &notices, &mut w, now);
    }
    if !store.write_escalation(w).await? {
        return Ok(None);
    }
    tracing::info!(incident = id, action = action.as_str(), actor = %actor.label(), told, "incident {}", state.as_str());
    Ok(Some(Acted::Done {
        incident: id,
        state,
        told,
    }))
}

/// The incident's escalation row, started first when the timer has not
/// reached it yet: its policy pinned from `rules` (or, with no policy,
/// an empty row, so its state can move like any other).
pub(crate) async fn escalation_of(
    store: &impl Backend,
    rules: Option<&RuleSet>,
    inc: &Incident,
    now: DateTime<Utc>,
) -> Result<EscalationRow, ActError> {
    if let Some(r) = store.escalation(inc.id).await? {
        return Ok(r);
    }
    match (rules, inc.escalate.is_some()) {
        (Some(rules), _) => {
            start(store, rules, inc, now).await?;
        }
        (None, false) => {
            store.mark_escalation_unstartable(inc.id, "", now).await?;
        }
        (None, true) => return Err(ActError::NotStarted(inc.id)),
    }
    store
        .escalation(inc.id)
        .await?
        .ok_or(ActError::NotFound(inc.id))
}

/// The answer when the incident is already where `action` would take it:
/// a second RESOLVE or ACK says who did it first; anything else on a
/// resolved incident is refused. `None` when there is something to do.
fn already(
    action: Action,
    id: i64,
    row: &EscalationRow,
    inc: &Incident,
) -> Option<Result<Acted, ActError>> {
    match (row.state, action) {
        (IncidentState::Resolved, Action::Resolve) => Some(Ok(Acted::Already {
            incident: id,
            state: IncidentState::Resolved,
            by: inc.resolved_by.clone(),
        })),
        (IncidentState::Resolved, _) => Some(Err(ActError::Resolved(id))),
        // Acknowledged and not about to escalate again (a reminder under
        // `resolve_within` sets `next_due`; a second ACK then restarts
        // the clock).
        (IncidentState::Acknowledged, Action::Ack) if row.next_due.is_none() => {
            Some(Ok(Acted::Already {
                incident: id,
                state: row.state,
                by: row.acknowledged_by.clone(),
            }))
        }
        _ => None,
    }
}

/// Writes into `w` what `action` changes (state with who and how, the
/// timers, the audit); returns the state after and what to tell those
/// already paged, if anything.
fn apply(
    action: Action,
    actor: &Actor,
    by: &str,
    row: &EscalationRow,
    pinned: &Pinned,
    w: &mut EscalationWrite,
    now: DateTime<Utc>,
) -> (IncidentState, Option<Event>) {
    let how = how_of(actor).as_str();
    let transition = |to: IncidentState, action: &str| Transition {
        to,
        actor: actor.label(),
        how: how.into(),
        action: action.into(),
    };
    let mut tell: Option<Event> = None;
    let state = match action {
        Action::Ack if row.state == IncidentState::Acknowledged => {
            // Reminded under resolve_within and about to escalate
            // again (otherwise `already` answered): a second ACK says
            // "still on it" and restarts the clock.
            w.next_due = None;
            w.lapse_due = pinned.resolve_within().map(|d| now + d);
            w.audit.push((
                "escalation.reacknowledged".into(),
                serde_json::json!({ "by": actor.label(), "how": how }),
            ));
            IncidentState::Acknowledged
        }
        Action::Ack => {
            w.transition = Some(transition(
                IncidentState::Acknowledged,
                "incident.acknowledged",
            ));
            w.next_due = None;
            w.lapse_due = pinned.resolve_within().map(|d| now + d);
            tell = Some(Event::Acknowledged {
                by: format!("{by} ({how})"),
            });
            IncidentState::Acknowledged
        }
        Action::Resolve => {
            w.transition = Some(transition(IncidentState::Resolved, "incident.resolved"));
            w.next_due = None;
            w.lapse_due = None;
            if row.state == IncidentState::Open {
                tell = Some(Event::Resolved {
                    by: format!("{by} ({how})"),
                });
            }
            IncidentState::Resolved
        }
        Action::Escalate => {
            if row.state == IncidentState::Acknowledged {
                w.transition = Some(transition(IncidentState::Open, "incident.reopened"));
            }
            escalate_now(actor, row, pinned, w, now);
            IncidentState::Open
        }
    };
    (state, tell)
}

/// ESC: the next step falls due now; a sequence that ran out starts
/// again.
fn escalate_now(
    actor: &Actor,
    row: &EscalationRow,
    pinned: &Pinned,
    w: &mut EscalationWrite,
    now: DateTime<Utc>,
) {
    if pinned.entry(row.next_position).is_none() {
        // The sequence ran out: start it again.
        w.next_position = 0;
        w.exhausted = false;
    }
    w.lapse_due = None;
    w.next_due = Some(now);
    w.audit.push((
        "escalation.escalated".into(),
        serde_json::json!({ "by": actor.label(), "how": how_of(actor).as_str(), "next_position": w.next_position }),
    ));
}

/// Queues `event` for every contact a page went to (on each channel it
/// was paged on), except the actor; returns how many contacts are told.
fn tell_paged(
    about: &About,
    event: &Event,
    actor: &Actor,
    pinned: &Pinned,
    notices: &[Notice],
    w: &mut EscalationWrite,
    now: DateTime<Utc>,
) -> usize {
    let skip = match actor {
        Actor::Contact(c) => Some(c.as_str()),
        _ => None,
    };
    let mut told = 0;
    for (contact, channel) in paged(notices) {
        if Some(contact.as_str()) == skip {
            continue;
        }
        let Some(c) = pinned.contacts.get(&contact) else {
            continue;
        };
        if let Some(n) = build_notice(about, event, c, channel, w.seq, None, now) {
            if !w.notices.iter().any(|m| m.contact == n.contact) {
                told += 1;
            }
            w.notices.push(n);
        }
    }
    told
}

/// The one incident a contact's bare command means: among the unresolved
/// incidents that paged this contact, for `ACK` the ones still open, for
/// `RESOLVE` and `ESC` any.
async fn bare_target(store: &impl Backend, action: Action, actor: &Actor) -> Result<i64, ActError> {
    let Actor::Contact(c) = actor else {
        return Err(ActError::NoneOpen);
    };
    let mut mine = Vec::new();
    for row in store.open_escalations().await? {
        if action == Action::Ack && row.state != IncidentState::Open {
            continue;
        }
        let paged = store
            .notices(row.incident_id)
            .await?
            .iter()
            .any(|n| &n.contact == c && n.purpose == Purpose::Page);
        if paged {
            mine.push(row.incident_id);
        }
    }
    match mine.as_slice() {
        [] => Err(ActError::NoneOpen),
        [one] => Ok(*one),
        _ => Err(ActError::Ambiguous(mine)),
    }
}

fn how_of(actor: &Actor) -> How {
    match actor {
        Actor::Contact(_) => How::Sms,
        Actor::Api => How::Api,
        Actor::Cli(_) => How::Cli,
    }
}

/// How others are told who acted: a contact by first name and initial,
/// else the actor label.
fn actor_display(pinned: &Pinned, actor: &Actor) -> String {
    match actor {
        Actor::Contact(c) => pinned
            .contacts
            .get(c)
            .map(PinnedContact::display)
            .unwrap_or_else(|| c.clone()),
        other => other.label(),
    }
}

/// Every (contact, channel) a page went to, in order, once.
fn paged(notices: &[Notice]) -> Vec<(String, Channel)> {
    let mut out: Vec<(String, Channel)> = Vec::new();
    for n in notices.iter().filter(|n| n.purpose == Purpose::Page) {
        if !out
            .iter()
            .any(|(c, ch)| *c == n.contact && *ch == n.channel)
        {
            out.push((n.contact.clone(), n.channel));
        }
    }
    out
}
