//! [`ReplyPipeline`]: the inbound handler the daemon runs. For each stored
//! text it reads the sender's facts, decides ([`super::decide`]) and applies
//! the decision in one store transaction, which also marks the text
//! processed. A store failure leaves the text queued: it is decided again
//! from scratch later, and the replies' idempotency keys keep a second
//! apply from sending anything twice.
//!
//! Should deciding ever panic (a defect), the text still gets the crisis
//! check: [`fallback`] runs the built-in floor alone and sends the
//! settings' crisis text, and the text is marked processed with the error.

use std::collections::HashMap;
use std::panic::AssertUnwindSafe;
use std::sync::{Arc, Mutex};

use crate::config::reload::LiveRules;
use crate::domain::Phone;
use crate::domain::clock::Clock;
use crate::domain::clock::SystemClock;
use crate::domain::message::InboundRow;
use crate::rules::RuleSet;
use crate::settings::ReplySettings;
use crate::store::Backend;
use crate::store::traits::reply::{ReplyEffects, ReplyFacts};

use super::crisis::{CrisisMatcher, Screened};
use super::decide::{self, Decision, Setup};
use super::keywords::Keywords;
use super::{Handled, InboundHandler};
use crate::domain::normalize::normalize;

pub struct ReplyPipeline<S> {
    store: S,
    rules: Arc<LiveRules>,
    settings: Arc<ReplySettings>,
    keywords: Keywords,
    clock: Arc<dyn Clock>,
    /// The crisis matcher of the rule set it was built from.
    matcher: Mutex<Option<(Arc<RuleSet>, Arc<CrisisMatcher>)>>,
    /// Texts screened for crisis language (to hand them over first), by
    /// row id, with the matcher that screened them: deciding a text takes
    /// its screening rather than running the matcher again.
    screened: Mutex<HashMap<i64, (Arc<CrisisMatcher>, Screened)>>,
    /// Woken after a contact's command, so the escalation engine delivers
    /// the notices it queued at once.
    escalation_wake: Option<Arc<tokio::sync::Notify>>,
}

impl<S: Backend> ReplyPipeline<S> {
    pub fn new(store: S, rules: Arc<LiveRules>, settings: ReplySettings) -> ReplyPipeline<S> {
        let keywords = Keywords::with_additions(
            &settings.stop_words,
            &settings.start_words,
            &settings.help_words,
        );
        ReplyPipeline {
            store,
            rules,
            settings: Arc::new(settings),
            keywords,
            clock: Arc::new(SystemClock),
            matcher: Mutex::new(None),
            screened: Mutex::new(HashMap::new()),
            escalation_wake: None,
        }
    }

    /// Wakes this escalation engine after a contact's command.
    pub(crate) fn with_escalation_wake(
        mut self,
        wake: Arc<tokio::sync::Notify>,
    ) -> ReplyPipeline<S> {
        self.escalation_wake = Some(wake);
        self
    }

    /// Decides with this clock (tests).
    pub fn with_clock(mut self, clock: Arc<dyn Clock>) -> ReplyPipeline<S> {
        self.clock = clock;
        self
    }

    /// The live rules and their crisis matcher, built once per rule set.
    fn current(&self) -> (Arc<RuleSet>, Arc<CrisisMatcher>) {
        let rules = self.rules.current();
        let mut cached = self.matcher.lock().unwrap_or_else(|e| e.into_inner());
        if let Some((r, m)) = cached.as_ref()
            && Arc::ptr_eq(r, &rules)
        {
            return (rules, m.clone());
        }
        let m = Arc::new(CrisisMatcher::with_rules(Some(&rules)));
        *cached = Some((rules.clone(), m.clone()));
        (rules, m)
    }

    /// `row` screened for crisis language by the live matcher: the
    /// screening [`InboundHandler::is_urgent`] kept, if that matcher made
    /// it, else done now. `keep` keeps it for the decision to come.
    fn screen(&self, row: &InboundRow, keep: bool) -> (Arc<RuleSet>, Screened) {
        let (rules, matcher) = self.current();
        let lock = || self.screened.lock().unwrap_or_else(|e| e.into_inner());
        let kept = lock().remove(&row.id).and_then(|(m, s)| {
            (Arc::ptr_eq(&m, &matcher) && s.text.original == row.sms.body).then_some(s)
        });
        let screened = kept.unwrap_or_else(|| Screened::new(&matcher, &row.sms.body));
        if keep {
            let mut kept = lock();
            if kept.len() >= SCREENED_KEPT {
                kept.clear();
            }
            kept.insert(row.id, (matcher, screened.clone()));
        }
        (rules, screened)
    }

    /// Decides one text against the facts, without writing anything.
    pub(crate) fn decide_row(&self, row: &InboundRow, facts: ReplyFacts) -> Decision {
        let (rules, screened) = self.screen(row, false);
        let setup = Setup {
            rules: &rules,
            keywords: &self.keywords,
            settings: &self.settings,
        };
        decide::decide_row(&setup, row, facts, &screened, self.clock.now())
    }

    async fn process(&self, row: &InboundRow) -> Handled {
        let now = self.clock.now();
        let facts = match self.store.reply_facts(row, now).await {
            Ok(f) => f,
            Err(e) => {
                tracing::error!(inbound_id = row.id, error.cause_chain = ?e, "cannot read the sender's facts; the text stays queued");
                return Handled::Held;
            }
        };
        let member_id = facts.member.as_ref().map(|m| m.id);
        let decided = std::panic::catch_unwind(AssertUnwindSafe(|| self.decide_row(row, facts)));
        let mut command = None;
        let mut effects = match decided {
            Ok(d) => {
                if !d.crisis.matched
                    && let Some(cmd) = crate::escalate::command::parse(&row.sms.body)
                {
                    command = Some((
                        cmd,
                        d.sender.kind,
                        d.sender.contact.clone(),
                        d.sender.member_id,
                    ));
                }
                d.effects
            }
            Err(panic) => {
                let message = panic
                    .downcast_ref::<&str>()
                    .map(|s| (*s).to_owned())
                    .or_else(|| panic.downcast_ref::<String>().cloned())
                    .unwrap_or_default();
                tracing::error!(inbound_id = row.id, member_id, panic = %message, "the reply pipeline crashed on this text (a bug in hearth: please report it); the built-in crisis check ran instead");
                fallback(row, member_id, &self.settings, now)
            }
        };
        if let Some((cmd, kind, contact, member_id)) = command
            && self
                .command(row, cmd, kind, contact, member_id, &mut effects, now)
                .await
                .is_err()
        {
            return Handled::Held;
        }
        let outcome = effects.outcome.clone();
        match self.store.apply_reply(effects).await {
            Ok(applied) => {
                if let Some(incident) = applied.follow_up {
                    self.forward(row, incident, now).await;
                }
                if (!applied.hits.is_empty() || applied.follow_up.is_some())
                    && let Some(w) = &self.escalation_wake
                {
                    w.notify_one();
                }
                for h in &applied.hits {
                    tracing::info!(inbound_id = row.id, member_id, incident = h.incident, decision = %h.decision.reason(), "alert recorded");
                }
                tracing::info!(inbound_id = row.id, member_id, outcome = %outcome, replies = applied.messages.len(), "inbound text processed");
                Handled::Recorded(outcome)
            }
            Err(e) => {
                tracing::error!(inbound_id = row.id, member_id, error.cause_chain = ?e, "cannot apply the reply decision; the text stays queued");
                Handled::Held
            }
        }
    }
}

impl<S: Backend> ReplyPipeline<S> {
    /// Forwards a follow-up the store kept on an unresolved critical
    /// incident to a person ([`crate::escalate::follow_up`]). The text is
    /// processed already: a failure here is logged (the incident keeps the
    /// text, and its escalation goes on).
    async fn forward(&self, row: &InboundRow, incident: i64, now: chrono::DateTime<chrono::Utc>) {
        let rules = self.rules.current();
        if let Err(e) =
            crate::escalate::follow_up::forward(&self.store, &rules, incident, now).await
        {
            tracing::error!(inbound_id = row.id, incident, error.cause_chain = ?e, "cannot forward a follow-up text to a person; it is kept on the incident");
        }
    }

    /// A text that reads as `ACK 42`, `RESOLVE 42` or `ESC 42`. From a
    /// contact it is applied ([`crate::escalate::act::act`]) and
    /// answered in one line; from anyone else it is refused and audited,
    /// and the text goes on as it was decided (a member's "ack" is never
    /// an acknowledgement).
    #[allow(clippy::too_many_arguments)]
    async fn command(
        &self,
        row: &InboundRow,
        cmd: crate::escalate::command::Command,
        kind: &str,
        contact: Option<String>,
        member_id: Option<i64>,
        effects: &mut ReplyEffects,
        now: chrono::DateTime<chrono::Utc>,
    ) -> Result<(), crate::store::StoreError> {
        use crate::escalate::act::{ActError, Actor, act};
        match (kind, contact) {
            ("contact", Some(contact)) => {
                let (rules, actor) = (self.rules.current(), Actor::Contact(contact.clone()));
                let result = act(
                    &self.store,
                    Some(&rules),
                    cmd.incident,
                    cmd.action,
                    &actor,
                    now,
                )
                .await;
                if let Err(ActError::Store(e)) = result {
                    tracing::error!(inbound_id = row.id, contact = %contact, error.cause_chain = ?e, "cannot apply a contact's command; the text stays queued");
                    return Err(e);
                }
                let line = crate::escalate::command::confirmation(&cmd, &result);
                effects.outcome = match &result {
                    Ok(_) => format!("command {} from contact `{contact}`", cmd.action.as_str()),
                    Err(e) => format!(
                        "command {} from contact `{contact}` refused: {e}",
                        cmd.action.as_str()
                    ),
                };
                effects.messages.extend(command_reply(row, line, now));
                if let Some(w) = &self.escalation_wake {
                    w.notify_one();
                }
            }
            (kind, _) => {
                let actor = match member_id {
                    Some(id) => format!("member:{id}"),
                    None => "unknown-number".to_owned(),
                };
                self.store
                    .audit(
                        &actor,
                        "incident.refused",
                        cmd.incident.map(|i| format!("incident:{i}")).as_deref(),
                        serde_json::json!({
                            "action": cmd.action.as_str(),
                            "reason": format!("a {kind} cannot act on incidents"),
                            "inbound_id": row.id,
                        }),
                    )
                    .await?;
                tracing::info!(
                    inbound_id = row.id,
                    member_id,
                    sender = kind,
                    "a command from someone not a contact was refused"
                );
            }
        }
        Ok(())
    }
}

/// The one-line answer to a contact's command, to the number it came
/// from; `None` when that is no phone number.
fn command_reply(
    row: &InboundRow,
    line: String,
    now: chrono::DateTime<chrono::Utc>,
) -> Option<crate::domain::message::NewMessage> {
    let to = Phone::parse(&row.sms.from).ok()?;
    Some(crate::domain::message::NewMessage {
        idempotency_key: crate::domain::message::IdempotencyKey::reply(row.id, "command"),
        member_id: None,
        to: Some(to),
        body: line,
        kind: crate::domain::message::Kind::Escalation,
        not_before: now,
        expires_at: None,
        plan: None,
        suppressed: None,
    })
}

/// The most screenings kept for texts not yet decided: more than one
/// drain reads ahead; past it they are dropped (and redone if needed).
const SCREENED_KEPT: usize = 25_000;

/// What a text gets when deciding it crashed: the built-in crisis check
/// and the settings' crisis text, nothing else.
pub(crate) fn fallback(
    row: &InboundRow,
    member_id: Option<i64>,
    settings: &ReplySettings,
    now: chrono::DateTime<chrono::Utc>,
) -> ReplyEffects {
    use crate::domain::incident::{AlertHit, BUILTIN_CRISIS_ALERT, Subject};
    use crate::domain::message::{IdempotencyKey, Kind, NewMessage};
    let text = normalize(&row.sms.body);
    let mut effects = ReplyEffects {
        inbound_id: row.id,
        outcome: "pipeline error: only the built-in crisis check ran".into(),
        consent: None,
        survey: None,
        messages: Vec::new(),
        hits: Vec::new(),
        follow_up: None,
        now,
    };
    if let Some(m) = CrisisMatcher::floor().find(&text) {
        let key = IdempotencyKey::reply(row.id, "crisis");
        let to = match member_id {
            Some(_) => None,
            None => Phone::parse(&row.sms.from).ok(),
        };
        if member_id.is_some() || to.is_some() {
            effects.messages.push(NewMessage {
                idempotency_key: key.clone(),
                member_id,
                to,
                body: settings.crisis_text.clone(),
                kind: Kind::Crisis,
                not_before: now,
                expires_at: None,
                plan: None,
                suppressed: None,
            });
        }
        effects.hits.push(AlertHit {
            alert: BUILTIN_CRISIS_ALERT.into(),
            severity: m.severity.incident(),
            subject: member_id
                .map_or_else(|| Subject::Number(row.sms.from.clone()), Subject::Member),
            inbound_id: Some(row.id),
            evidence: format!(
                "{}; the pipeline crashed on this text",
                super::decide::crisis_evidence(&m)
            ),
            realert: None,
            escalate: None,
            reply_key: Some(key.as_str().to_owned()),
            quote: None,
        });
        effects.outcome = format!("crisis; {}", effects.outcome);
    }
    effects
}

impl<S: Backend> InboundHandler for ReplyPipeline<S> {
    fn handle<'a>(
        &'a self,
        row: &'a InboundRow,
    ) -> std::pin::Pin<Box<dyn std::future::Future<Output = Handled> + Send + 'a>> {
        Box::pin(self.process(row))
    }

    fn is_urgent(&self, row: &InboundRow) -> bool {
        self.screen(row, true).1.crisis.is_some()
    }
}
