//! The escalation engine: starts incidents' policies, makes the
//! notifications that fall due, delivers email and webhook notices, and
//! applies acknowledgements.
//!
//! Everything it needs is in the database (the pinned policy, the next
//! position and when it falls due), so there is nothing to rebuild at
//! start but a read of the earliest due instant: a restart mid-escalation
//! makes exactly the notifications that fell due while it was down, in
//! order, once each.

use std::sync::Arc;

use chrono::{DateTime, Utc};

use crate::domain::incident::IncidentState;
use crate::store::{Store, StoreError};

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
    pub fn as_str(self) -> &'static str {
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
pub enum How {
    Sms,
    Api,
    Cli,
}

impl How {
    pub fn as_str(self) -> &'static str {
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
    pub fn label(&self) -> String {
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
    /// Applied: the incident's state now, and how many notices went to
    /// others about it (those already paged, told who acknowledged).
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
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// Applies `action` to `incident` (or, when `None`, to the one open
/// incident the contact is on the chain of) for `actor` at `now`: the
/// state change with who and how, the escalation paused (ACK), stopped
/// (RESOLVE) or moved on now (ESC), and the notices (a confirmation to a
/// texting contact; to everyone already paged, who acknowledged), in one
/// guarded write. Used alike by the text pipeline, the API and the CLI;
/// the daemon's engine delivers what it queued.
pub async fn act(
    store: &Store,
    incident: Option<i64>,
    action: Action,
    actor: &Actor,
    now: DateTime<Utc>,
) -> Result<Acted, ActError> {
    let _ = (store, incident, action, actor, now);
    todo!("coordinator")
}

/// The engine the daemon runs.
#[allow(dead_code)] // the coordinator wires it in
pub struct Escalator {
    pub(crate) store: Store,
    pub(crate) rules: Arc<crate::config::reload::LiveRules>,
    pub(crate) clock: Arc<dyn crate::scheduler::Clock>,
    pub(crate) wake: Arc<tokio::sync::Notify>,
}

impl Escalator {
    /// Wakes the engine (an incident opened, someone acknowledged).
    pub fn waker(&self) -> Arc<tokio::sync::Notify> {
        self.wake.clone()
    }
}
