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

use chrono::{DateTime, TimeDelta, Utc};

use super::email::Mailer;
use super::notice::{self, About, Event};
use super::pinned::{Pinned, PinnedContact};
use super::webhook::Webhooks;
use crate::config::reload::LiveRules;
use crate::domain::Channel;
use crate::domain::Phone;
use crate::domain::clock::Clock;
use crate::domain::clock::SystemClock;
use crate::domain::incident::{Incident, IncidentState, Subject};
use crate::domain::message::{IdempotencyKey, Kind, NewMessage};
use crate::settings::NotifySettings;
use crate::store::Backend;
use crate::store::StoreError;
use crate::store::traits::escalation::{
    EscalationRow, EscalationWrite, NewNotice, Notice, Purpose, Transition,
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
pub async fn act(
    store: &impl Backend,
    incident: Option<i64>,
    action: Action,
    actor: &Actor,
    now: DateTime<Utc>,
) -> Result<Acted, ActError> {
    let result = act_inner(store, incident, action, actor, now).await;
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
        let Some(inc) = store.incident(id).await? else {
            return Err(ActError::NotFound(id));
        };
        let row = match store.escalation(id).await? {
            Some(r) => r,
            None => {
                // An incident without a policy: give it an empty
                // escalation so its state can move like any other.
                store
                    .mark_escalation_unstartable(id, inc.escalate.as_deref().unwrap_or(""), now)
                    .await?;
                match store.escalation(id).await? {
                    Some(r) => r,
                    None => return Err(ActError::NotFound(id)),
                }
            }
        };
        let pinned = Pinned::from_json(&row.pinned).unwrap_or_default();
        let notices = store.notices(id).await?;
        if let Actor::Contact(c) = actor
            && !pinned.on_chain(c)
            && !notices.iter().any(|n| &n.contact == c)
        {
            return Err(ActError::NotOnChain(id));
        }
        if row.state == IncidentState::Resolved {
            return match action {
                Action::Resolve => Ok(Acted::Already {
                    incident: id,
                    state: IncidentState::Resolved,
                    by: inc.resolved_by.clone(),
                }),
                _ => Err(ActError::Resolved(id)),
            };
        }
        let by = actor_display(&pinned, actor);
        let mut w = unchanged(&row, now);
        let transition = |to: IncidentState, action: &str| Transition {
            to,
            actor: actor.label(),
            how: how_of(actor).as_str().into(),
            action: action.into(),
        };
        let mut tell: Option<Event> = None;
        let state = match action {
            Action::Ack if row.state == IncidentState::Acknowledged && row.next_due.is_some() => {
                // Reminded under resolve_within and about to escalate
                // again: a second ACK says "still on it" and restarts the
                // clock.
                w.next_due = None;
                w.lapse_due = pinned.resolve_within().map(|d| now + d);
                w.audit.push((
                    "escalation.reacknowledged".into(),
                    serde_json::json!({ "by": actor.label(), "how": how_of(actor).as_str() }),
                ));
                IncidentState::Acknowledged
            }
            Action::Ack => {
                if row.state == IncidentState::Acknowledged {
                    return Ok(Acted::Already {
                        incident: id,
                        state: row.state,
                        by: row.acknowledged_by.clone(),
                    });
                }
                w.transition = Some(transition(
                    IncidentState::Acknowledged,
                    "incident.acknowledged",
                ));
                w.next_due = None;
                w.lapse_due = pinned.resolve_within().map(|d| now + d);
                tell = Some(Event::Acknowledged {
                    by: format!("{by} ({})", how_of(actor).as_str()),
                });
                IncidentState::Acknowledged
            }
            Action::Resolve => {
                w.transition = Some(transition(IncidentState::Resolved, "incident.resolved"));
                w.next_due = None;
                w.lapse_due = None;
                if row.state == IncidentState::Open {
                    tell = Some(Event::Resolved {
                        by: format!("{by} ({})", how_of(actor).as_str()),
                    });
                }
                IncidentState::Resolved
            }
            Action::Escalate => {
                if row.state == IncidentState::Acknowledged {
                    w.transition = Some(transition(IncidentState::Open, "incident.reopened"));
                }
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
                IncidentState::Open
            }
        };
        let mut told = 0;
        if let Some(event) = tell {
            let about = about(store, &inc, &pinned).await?;
            w.seq = row.seq + 1;
            let skip = match actor {
                Actor::Contact(c) => Some(c.as_str()),
                _ => None,
            };
            for (contact, channel) in paged(&notices) {
                if Some(contact.as_str()) == skip {
                    continue;
                }
                let Some(c) = pinned.contacts.get(&contact) else {
                    continue;
                };
                if let Some(n) = build_notice(&about, &event, c, channel, w.seq, None, now) {
                    if !w.notices.iter().any(|m| m.contact == n.contact) {
                        told += 1;
                    }
                    w.notices.push(n);
                }
            }
        }
        if store.write_escalation(w).await? {
            tracing::info!(incident = id, action = action.as_str(), actor = %actor.label(), told, "incident {}", state.as_str());
            return Ok(Acted::Done {
                incident: id,
                state,
                told,
            });
        }
    }
    Err(ActError::Store(StoreError::Busy(
        "the incident kept changing; try again".into(),
    )))
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

/// What notices say about an incident: read at the moment they are made.
async fn about(store: &impl Backend, inc: &Incident, pinned: &Pinned) -> Result<About, StoreError> {
    let who = match (&inc.subject, &inc.member_external_id) {
        (Subject::Member(_), Some(ext)) => match store.member(ext).await? {
            Some(m) => notice::member_display(&m.first_name, m.last_name.as_deref()),
            None => "a member".into(),
        },
        (Subject::Member(_), None) => "a member".into(),
        (Subject::Number(_), _) => "a sender not on the roster".into(),
    };
    let mut words = None;
    if let Some(inbound) = inc.evidence.iter().rev().find_map(|e| e.inbound_id)
        && let Some(row) = store.inbound(inbound).await?
    {
        words = Some(row.sms.body);
    }
    Ok(About {
        incident: inc.id,
        alert: inc.alert.clone(),
        severity: inc.severity,
        who,
        groups: pinned.groups.clone(),
        words,
    })
}

/// One notice for one contact on one channel; `None` when the contact has
/// no address there.
fn build_notice(
    about: &About,
    event: &Event,
    c: &PinnedContact,
    channel: Channel,
    seq: u64,
    page: Option<super::Entry>,
    now: DateTime<Utc>,
) -> Option<NewNotice> {
    let address = c.address(channel)?.to_owned();
    let purpose = match event {
        Event::Page { .. } => Purpose::Page,
        Event::Acknowledged { .. } | Event::Resolved { .. } => Purpose::Acknowledged,
        Event::Reminder { .. } => Purpose::Reminder,
    };
    let (subject, body, message) = match channel {
        Channel::Sms => {
            let body = notice::sms(about, event, c.phi);
            let to = Phone::parse(&address).ok()?;
            let message = NewMessage {
                idempotency_key: IdempotencyKey::escalation(
                    about.incident,
                    seq,
                    purpose.as_str(),
                    &c.id,
                ),
                member_id: None,
                to: Some(to),
                body: body.clone(),
                kind: Kind::Escalation,
                not_before: now,
                expires_at: None,
                plan: None,
                suppressed: None,
            };
            (None, body, Some(message))
        }
        Channel::Email => {
            let (s, b) = notice::email(about, event, c.phi, c.sms.is_some());
            (Some(s), b, None)
        }
        Channel::Webhook => (
            None,
            notice::webhook(about, event, c.phi, now).to_string(),
            None,
        ),
    };
    Some(NewNotice {
        purpose,
        seq,
        step: page.map(|e| e.step),
        round: page.map(|e| e.round),
        contact: c.id.clone(),
        channel,
        address,
        subject,
        body,
        message,
    })
}

/// What one pass of the engine did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize)]
pub struct Tick {
    /// Escalations started (policies pinned).
    pub started: usize,
    /// Pages made (one per step notified, whatever the recipients).
    pub paged: usize,
    /// Email and webhook notices delivered, and attempts that failed.
    pub delivered: usize,
    pub failed: usize,
}

/// How many unstarted incidents, due escalations and pending notices one
/// pass reads.
const BATCH: usize = 200;
/// The longest the engine sleeps before it reads the database again.
const MAX_SLEEP: std::time::Duration = std::time::Duration::from_secs(30);
/// How soon it tries again when something stayed due after a pass.
const STUCK_RETRY: std::time::Duration = std::time::Duration::from_secs(1);

/// The engine the daemon runs.
pub struct Escalator<S> {
    store: S,
    rules: Arc<LiveRules>,
    clock: Arc<dyn Clock>,
    wake: Arc<tokio::sync::Notify>,
    mailer: Option<Arc<Mailer>>,
    webhooks: Option<Arc<Webhooks>>,
}

impl<S: Backend> Escalator<S> {
    /// Builds the channels from the settings; an error names the setting.
    pub fn new(
        store: S,
        rules: Arc<LiveRules>,
        notify: &NotifySettings,
    ) -> Result<Escalator<S>, String> {
        let mailer = notify
            .email
            .as_ref()
            .map(Mailer::new)
            .transpose()?
            .map(Arc::new);
        let webhooks = notify
            .webhook
            .as_ref()
            .map(Webhooks::new)
            .transpose()?
            .map(Arc::new);
        Ok(Escalator {
            store,
            rules,
            clock: Arc::new(SystemClock),
            wake: Arc::new(tokio::sync::Notify::new()),
            mailer,
            webhooks,
        })
    }

    pub fn with_clock(mut self, clock: Arc<dyn Clock>) -> Escalator<S> {
        self.clock = clock;
        self
    }

    /// Shares a waker made elsewhere (the intake's, so the admin API wakes
    /// this engine).
    pub fn with_waker(mut self, wake: Arc<tokio::sync::Notify>) -> Escalator<S> {
        self.wake = wake;
        self
    }

    /// Wakes the engine (an incident opened, someone acknowledged).
    pub fn waker(&self) -> Arc<tokio::sync::Notify> {
        self.wake.clone()
    }

    /// One pass: start new incidents' policies, make every notification
    /// due, attempt every email and webhook notice due.
    pub async fn tick(&self) -> Result<Tick, StoreError> {
        let now = self.clock.now();
        let mut t = Tick {
            started: self.start_new(now).await?,
            ..Tick::default()
        };
        // Each pass moves every due row past `now` (or ends it); the bound
        // only guards against a row that somehow stays due.
        for _ in 0..64 {
            let due = self.store.due_escalations(now, BATCH).await?;
            if due.is_empty() {
                break;
            }
            let mut moved = 0;
            for row in due {
                match self.advance(row, now).await {
                    Ok(Some(n)) => {
                        t.paged += n;
                        moved += 1;
                    }
                    Ok(None) => {}
                    Err(e) => {
                        tracing::error!(error.cause_chain = ?e, "cannot advance an escalation; it stays due");
                    }
                }
            }
            if moved == 0 {
                break;
            }
        }
        let (d, f) = self.deliver(now).await?;
        t.delivered = d;
        t.failed = f;
        Ok(t)
    }

    /// Runs until `cancel`: a pass, then sleep until the earliest due
    /// instant, a wake, or at most [`MAX_SLEEP`].
    pub async fn run(self, cancel: tokio_util::sync::CancellationToken) {
        loop {
            match self.tick().await {
                Ok(t) if t != Tick::default() => {
                    tracing::debug!(
                        started = t.started,
                        paged = t.paged,
                        delivered = t.delivered,
                        failed = t.failed,
                        "escalation pass"
                    );
                }
                Ok(_) => {}
                Err(e) => {
                    tracing::error!(error.cause_chain = ?e, "escalation pass failed; retrying")
                }
            }
            // Whatever is still due after a pass could not be moved (a
            // store error, a lost race): try again in a second rather than
            // at once, so a stuck row never spins the engine.
            let sleep = match self.store.next_escalation_due().await {
                Ok(Some(at)) => (at - self.clock.now())
                    .to_std()
                    .unwrap_or(STUCK_RETRY)
                    .clamp(std::time::Duration::from_millis(1), MAX_SLEEP),
                _ => MAX_SLEEP,
            };
            tokio::select! {
                _ = cancel.cancelled() => break,
                _ = self.wake.notified() => {}
                _ = tokio::time::sleep(sleep) => {}
            }
        }
    }

    async fn start_new(&self, now: DateTime<Utc>) -> Result<usize, StoreError> {
        let rules = self.rules.current();
        let mut started = 0;
        for u in self.store.unstarted_escalations(BATCH).await? {
            let groups = match self.store.incident(u.incident_id).await? {
                Some(Incident {
                    member_external_id: Some(ext),
                    ..
                }) => self
                    .store
                    .member(&ext)
                    .await?
                    .map(|m| m.groups)
                    .unwrap_or_default(),
                _ => Vec::new(),
            };
            match Pinned::pin(&rules, &u.policy, &groups) {
                Some(p) => {
                    if self
                        .store
                        .start_escalation(
                            u.incident_id,
                            &p.policy,
                            &p.version,
                            &p.to_json(),
                            now,
                            now,
                        )
                        .await?
                    {
                        tracing::info!(incident = u.incident_id, policy = %p.policy, "escalation started");
                        started += 1;
                    }
                }
                None => {
                    tracing::error!(incident = u.incident_id, policy = %u.policy, "escalation `{}` is not in the rules: nobody is notified of this incident; acknowledge it with `hearth incidents ack {}`", u.policy, u.incident_id);
                    self.store
                        .mark_escalation_unstartable(u.incident_id, &u.policy, now)
                        .await?;
                }
            }
        }
        Ok(started)
    }

    /// Makes what is due on one escalation in one guarded write; `None`
    /// when another writer moved it first (it is read again next pass).
    async fn advance(
        &self,
        row: EscalationRow,
        now: DateTime<Utc>,
    ) -> Result<Option<usize>, StoreError> {
        let pinned = match Pinned::from_json(&row.pinned) {
            Ok(p) => p,
            Err(e) => {
                tracing::error!(incident = row.incident_id, error = %e, "the pinned escalation policy cannot be read; the escalation stops");
                let w = EscalationWrite {
                    next_due: None,
                    lapse_due: None,
                    exhausted: true,
                    audit: vec![("escalation.unreadable".into(), serde_json::json!({}))],
                    ..unchanged(&row, now)
                };
                return Ok(self.store.write_escalation(w).await?.then_some(0));
            }
        };
        let Some(inc) = self.store.incident(row.incident_id).await? else {
            return Ok(None);
        };
        let about = about(&self.store, &inc, &pinned).await?;
        let mut w = unchanged(&row, now);
        let mut pages = 0;
        // An acknowledgement not resolved in time: remind whoever
        // acknowledged, and escalate again after the step's wait.
        if row.state == IncidentState::Acknowledged
            && let Some(lapse) = row.lapse_due
            && lapse <= now
        {
            w.lapse_due = None;
            w.seq += 1;
            let since = row.acknowledged_at.unwrap_or(now);
            if let Some(c) = row
                .acknowledged_by
                .as_deref()
                .and_then(|a| a.strip_prefix("contact:"))
                .and_then(|c| pinned.contacts.get(c))
            {
                for channel in reminder_channels(&pinned, c) {
                    if let Some(n) = build_notice(
                        &about,
                        &Event::Reminder { since },
                        c,
                        channel,
                        w.seq,
                        None,
                        now,
                    ) {
                        w.notices.push(n);
                    }
                }
            }
            let wait = pinned
                .entry(row.next_position.saturating_sub(1))
                .and_then(|e| pinned.step(&e).map(|s| s.ack_within_secs))
                .or_else(|| pinned.steps.first().map(|s| s.ack_within_secs))
                .unwrap_or(0);
            w.next_due = Some(now + secs(wait));
            w.audit.push((
                "escalation.lapsed".into(),
                serde_json::json!({ "acknowledged_by": row.acknowledged_by, "escalates_at": w.next_due }),
            ));
            return Ok(self.store.write_escalation(w).await?.then_some(0));
        }
        let Some(mut due) = row.next_due.filter(|d| *d <= now) else {
            return Ok(None);
        };
        if row.state == IncidentState::Acknowledged {
            w.transition = Some(Transition {
                to: IncidentState::Open,
                actor: "system".into(),
                how: "timer".into(),
                action: "incident.reopened".into(),
            });
        }
        // Catch up what fell due while the daemon was down, in order, but
        // never more than one full round at once.
        let cap = pinned.steps.len() + 1;
        while due <= now && pages < cap {
            let Some(entry) = pinned.entry(w.next_position) else {
                w.exhausted = true;
                w.next_due = None;
                w.audit.push((
                    "escalation.exhausted".into(),
                    serde_json::json!({ "position": w.next_position }),
                ));
                tracing::warn!(
                    incident = row.incident_id,
                    "escalation ran out of steps with nobody acknowledging; the incident stays open"
                );
                break;
            };
            let Some(step) = pinned.step(&entry) else {
                break;
            };
            w.seq += 1;
            let event = Event::Page {
                step: Pinned::step_number(&entry),
                round: entry.round,
                backup: entry.backup,
            };
            let recipients = pinned.recipients(step, now);
            let mut reached: Vec<String> = Vec::new();
            for c in &recipients {
                for channel in &step.via {
                    if let Some(n) =
                        build_notice(&about, &event, c, *channel, w.seq, Some(entry), now)
                    {
                        w.notices.push(n);
                        if !reached.contains(&c.id) {
                            reached.push(c.id.clone());
                        }
                    }
                }
            }
            if reached.is_empty() {
                tracing::warn!(
                    incident = row.incident_id,
                    step = entry.step + 1,
                    "an escalation step reached nobody (no one on call, or no facilitator); going on to the next step"
                );
            }
            w.audit.push((
                "escalation.paged".into(),
                serde_json::json!({ "step": entry.step + 1, "round": entry.round, "backup": entry.backup, "contacts": reached, "seq": w.seq }),
            ));
            pages += 1;
            w.next_position += 1;
            due += secs(step.ack_within_secs);
            w.next_due = Some(due);
        }
        if let Some(d) = w.next_due
            && d <= now
            && !w.exhausted
        {
            // Still behind after a full round: go on from now.
            let wait = pinned
                .entry(w.next_position.saturating_sub(1))
                .and_then(|e| pinned.step(&e).map(|s| s.ack_within_secs))
                .unwrap_or(0);
            w.next_due = Some(now + secs(wait.max(1)));
        }
        Ok(self.store.write_escalation(w).await?.then_some(pages))
    }

    /// Attempts the pending email and webhook notices that are due, each
    /// on its own (a slow or failing one does not hold the others up).
    async fn deliver(&self, now: DateTime<Utc>) -> Result<(usize, usize), StoreError> {
        let pending = self.store.pending_notices(now, BATCH).await?;
        if pending.is_empty() {
            return Ok((0, 0));
        }
        let mut set = tokio::task::JoinSet::new();
        for n in pending {
            let mailer = self.mailer.clone();
            let webhooks = self.webhooks.clone();
            set.spawn(async move {
                let outcome: Result<(), super::email::ChannelError> = match n.channel {
                    Channel::Email => match &mailer {
                        Some(m) => {
                            m.send(
                                &n.address,
                                n.subject.as_deref().unwrap_or("Hearth"),
                                &n.body,
                            )
                            .await
                        }
                        None => Err(not_configured("email")),
                    },
                    Channel::Webhook => match &webhooks {
                        Some(h) => match serde_json::from_str::<serde_json::Value>(&n.body) {
                            Ok(body) => h.post(&n.address, &body, now).await,
                            Err(e) => Err(super::email::ChannelError {
                                retryable: false,
                                message: format!("stored webhook body is not JSON: {e}"),
                            }),
                        },
                        None => Err(not_configured("webhook")),
                    },
                    Channel::Sms => Ok(()),
                };
                (n, outcome)
            });
        }
        let (mut ok, mut failed) = (0, 0);
        while let Some(joined) = set.join_next().await {
            let Ok((n, outcome)) = joined else { continue };
            let settle = match outcome {
                Ok(()) => {
                    ok += 1;
                    Ok(())
                }
                Err(e) => {
                    failed += 1;
                    let retry = if e.retryable {
                        super::webhook::backoff(n.attempts + 1)
                            .map(|d| now + TimeDelta::from_std(d).unwrap_or(TimeDelta::zero()))
                    } else {
                        None
                    };
                    tracing::warn!(incident = n.incident_id, contact = %n.contact, channel = ?n.channel, attempt = n.attempts + 1, retry = retry.is_some(), error = %e.message, "escalation notice not delivered");
                    Err((e.message, retry))
                }
            };
            self.store.settle_notice(n.id, settle, now).await?;
        }
        Ok((ok, failed))
    }
}

/// A write that leaves `row` as it is (guarded by its revision), to
/// change from.
fn unchanged(row: &EscalationRow, now: DateTime<Utc>) -> EscalationWrite {
    EscalationWrite {
        incident_id: row.incident_id,
        expect_rev: row.rev,
        next_position: row.next_position,
        next_due: row.next_due,
        seq: row.seq,
        lapse_due: row.lapse_due,
        exhausted: row.exhausted,
        transition: None,
        notices: Vec::new(),
        audit: Vec::new(),
        now,
    }
}

fn not_configured(channel: &str) -> super::email::ChannelError {
    super::email::ChannelError {
        retryable: false,
        message: format!("{channel} is not configured (settings `notify.{channel}`)"),
    }
}

/// Every channel a reminder goes to: those the policy pages this contact
/// on that it has an address for.
fn reminder_channels(pinned: &Pinned, c: &PinnedContact) -> Vec<Channel> {
    let mut out: Vec<Channel> = Vec::new();
    for s in pinned.steps.iter().chain(pinned.backup.iter()) {
        for ch in &s.via {
            if c.address(*ch).is_some() && !out.contains(ch) {
                out.push(*ch);
            }
        }
    }
    out
}

fn secs(s: u64) -> TimeDelta {
    TimeDelta::seconds(i64::try_from(s).unwrap_or(i64::MAX / 2_000))
}

/// What the daemon warns about at start: policies that notify by a
/// channel the settings do not configure (those notices will be recorded
/// as failed), and contacts a policy can reach by nothing that works.
pub fn channel_warnings(rules: &crate::rules::RuleSet, notify: &NotifySettings) -> Vec<String> {
    let mut out = Vec::new();
    for (id, p) in &rules.escalations {
        for s in p.steps.iter().chain(p.backup.iter()) {
            for ch in &s.via {
                let missing = match ch {
                    Channel::Email => notify.email.is_none().then_some("email"),
                    Channel::Webhook => notify.webhook.is_none().then_some("webhook"),
                    Channel::Sms => None,
                };
                if let Some(m) = missing {
                    let w = format!(
                        "escalation `{id}` notifies by {m}, but the settings have no `notify.{m}`: those notices will be recorded as failed\n  hint: add `notify: {{ {m}: ... }}` to the settings (see docs/OPERATIONS.md), or remove `{m}` from the step's `via`"
                    );
                    if !out.contains(&w) {
                        out.push(w);
                    }
                }
            }
        }
    }
    out
}
