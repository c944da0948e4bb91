//! The reply pipeline's decision for one text, without I/O.
//!
//! [`decide`] takes the text, what the store knows about its sender
//! ([`ReplyFacts`]) and the live rules, and returns a [`Decision`]: every
//! stage's verdict, for people (`hearth explain` prints it), and the
//! [`ReplyEffects`] the store applies in one transaction. The daemon and
//! `hearth explain` both call it, so explain shows what the daemon does.
//!
//! The stages, in order (DESIGN §2):
//! 1. normalise (the original is kept);
//! 2. **crisis** — the rules' critical keywords and the built-in floor.
//!    A match queues the crisis reply (crisis priority: through quiet
//!    hours, caps and consent) and a critical hit, for members, opted-out
//!    members, contacts and unknown numbers alike;
//! 3. **compliance** — STOP (and synonyms), START/UNSTOP, YES from a member
//!    who opted out, HELP/INFO; also the provider's own reading (Twilio's
//!    `OptOutType`). A keyword ends the pipeline (after crisis);
//! 4. **sender** — member, contact or unknown; only members go on;
//! 5. **survey** — an open survey's current question is answered,
//!    re-prompted or given up on; crisis and keywords pre-empt it;
//! 6. **alerts** — every other alert, and the survey's per-item alerts.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use serde::Serialize;

use super::alerts::{self, AlertContext, Considered, Trigger};
use super::answer;
use super::crisis::{CrisisMatch, CrisisMatcher, Source};
use super::keywords::{Keyword, Keywords};
use crate::domain::Phone;
use crate::domain::incident::{AlertHit, BUILTIN_CRISIS_ALERT, Severity, Subject};
use crate::domain::member::{ConsentAction, Member};
use crate::domain::message::{IdempotencyKey, InboundRow, Kind, NewMessage};
use crate::domain::normalize::Normalized;
use crate::engine::rules::{Alert, RuleSet, Survey};
use crate::engine::template;
use crate::settings::ReplySettings;
use crate::store::traits::reply::{
    AnswerRecord, ConsentChange, ReplyEffects, ReplyFacts, SurveyClose, SurveyUpdate,
};

/// What `decide` needs besides the facts.
pub struct Input<'a> {
    pub rules: &'a RuleSet,
    pub crisis: &'a CrisisMatcher,
    pub keywords: &'a Keywords,
    pub settings: &'a ReplySettings,
    pub row: &'a InboundRow,
    pub text: &'a Normalized,
    pub facts: &'a ReplyFacts,
    pub now: DateTime<Utc>,
}

/// Every stage's verdict, and what to write.
#[derive(Debug, Clone, Serialize)]
pub struct Decision {
    pub original: String,
    pub normalised: String,
    pub words: Vec<String>,
    pub crisis: CrisisVerdict,
    /// What the crisis hit does to incidents (`hearth explain` only).
    pub crisis_incident: Option<String>,
    /// `stop`, `start`, `yes`, `help`, or null.
    pub compliance: Option<Keyword>,
    /// What the keyword did ("consent revoked", "already opted out: no
    /// second confirmation", …); null without a keyword.
    pub compliance_action: Option<String>,
    pub sender: SenderVerdict,
    pub survey: SurveyVerdict,
    pub alerts: Vec<AlertVerdict>,
    pub replies: Vec<ReplyVerdict>,
    /// The inbound row's outcome.
    pub outcome: String,
    #[serde(skip)]
    pub effects: ReplyEffects,
}

#[derive(Debug, Clone, Default, Serialize)]
pub struct CrisisVerdict {
    pub matched: bool,
    /// The alert the incident is filed under.
    pub alert: Option<String>,
    pub phrase: Option<String>,
    /// `rule` (a critical alert's keyword) or `floor` (built in).
    pub source: Option<&'static str>,
    /// The floor's category, for a floor match.
    pub category: Option<super::crisis::Category>,
}

#[derive(Debug, Clone, Serialize)]
pub struct SenderVerdict {
    /// `member`, `contact` or `unknown`.
    pub kind: &'static str,
    pub member_id: Option<i64>,
    pub external_id: Option<String>,
    pub contact: Option<String>,
    /// The member has no current consent (opted out or never consented).
    pub opted_out: bool,
}

#[derive(Debug, Clone, Default, Serialize)]
pub struct SurveyVerdict {
    /// `none`, `preempted`, `answered`, `completed`, `reprompted`,
    /// `gave_up`, `stopped`, `not_in_rules`.
    pub state: &'static str,
    pub survey: Option<String>,
    pub question: Option<String>,
    pub answer: Option<serde_json::Value>,
    pub reason: Option<String>,
    pub next_question: Option<String>,
    pub score: Option<serde_json::Value>,
}

#[derive(Debug, Clone, Serialize)]
pub struct AlertVerdict {
    pub id: String,
    pub severity: Severity,
    pub fired: bool,
    pub reason: String,
    pub evidence: Option<String>,
    pub error: Option<String>,
    /// What the hit does to incidents (`hearth explain` fills it from the
    /// facts it is given; the daemon's store decides it when applying).
    pub incident: Option<String>,
}

#[derive(Debug, Clone, Serialize)]
pub struct ReplyVerdict {
    /// `crisis`, `stop`, `start`, `help`, `survey:<id>:<n>`, `alert:<id>`, …
    pub purpose: String,
    pub kind: Kind,
    /// The template rendered, or null for a text from the settings.
    pub template: Option<String>,
    #[serde(skip)]
    pub body: String,
}

impl From<Considered> for AlertVerdict {
    fn from(c: Considered) -> AlertVerdict {
        AlertVerdict {
            id: c.id,
            severity: c.severity,
            fired: c.fired,
            reason: c.reason,
            evidence: c.evidence,
            error: c.error,
            incident: None,
        }
    }
}

/// Whom the text came from, as the pipeline sees it.
enum Sender<'a> {
    Member(&'a Member),
    Contact(&'a str),
    Unknown,
}

struct Builder<'a> {
    input: &'a Input<'a>,
    subject: Subject,
    /// The member's template context (or the unknown sender's).
    context: minijinja::Value,
    replies: Vec<ReplyVerdict>,
    messages: Vec<NewMessage>,
    hits: Vec<AlertHit>,
}

impl Builder<'_> {
    /// Queues a reply to the sender. `None` when there is no number to
    /// reply to (a short code or alphanumeric sender that is no member).
    fn reply(
        &mut self,
        purpose: &str,
        kind: Kind,
        template_id: Option<&str>,
        fallback: Option<&str>,
        expires_at: Option<DateTime<Utc>>,
    ) -> Option<String> {
        let rendered = template_id.and_then(|t| {
            match self.input.rules.renderer.render(t, &self.context) {
                Ok(body) if !body.trim().is_empty() => Some(body),
                Ok(_) => None,
                Err(e) => {
                    // The error may quote rendered values (a name), so its
                    // detail stays at debug.
                    tracing::warn!(
                        template = t,
                        inbound_id = self.input.row.id,
                        "reply template failed to render; using the fallback"
                    );
                    tracing::debug!(template = t, error = ?e, "reply template error");
                    None
                }
            }
        });
        let (body, template) = match (rendered, fallback) {
            (Some(b), _) => (b, template_id.map(str::to_owned)),
            (None, Some(f)) => (f.to_owned(), None),
            (None, None) => return None,
        };
        let (member_id, to) = match self.subject {
            Subject::Member(id) => (Some(id), None),
            Subject::Number(ref n) => match Phone::parse(n) {
                Ok(p) => (None, Some(p)),
                Err(_) => return None,
            },
        };
        let key = IdempotencyKey::reply(self.input.row.id, purpose);
        self.messages.push(NewMessage {
            idempotency_key: key.clone(),
            member_id,
            to,
            body: body.clone(),
            kind,
            not_before: self.input.now,
            expires_at,
            plan: None,
            suppressed: None,
        });
        self.replies.push(ReplyVerdict {
            purpose: purpose.to_owned(),
            kind,
            template,
            body,
        });
        Some(key.as_str().to_owned())
    }

    fn hit(&mut self, alert: &str, severity: Severity, evidence: String, spec: HitSpec<'_>) {
        self.hits.push(AlertHit {
            alert: alert.to_owned(),
            severity,
            subject: self.subject.clone(),
            inbound_id: Some(self.input.row.id),
            evidence,
            realert: spec.realert,
            escalate: spec.escalate.map(str::to_owned),
            reply_key: spec.reply_key,
        });
    }
}

/// An alert or survey item alert that fired.
struct Fired<'a> {
    id: &'a str,
    severity: Severity,
    reply: Option<&'a str>,
    realert: Option<crate::domain::Duration>,
    escalate: Option<&'a str>,
}

impl Builder<'_> {
    /// Sends the alert's `reply:` (at crisis priority for a critical alert;
    /// not to a member who opted out) and records its hit.
    fn fired(&mut self, f: Fired<'_>, evidence: String, opted_out: bool) {
        let reply_key = if opted_out {
            None
        } else {
            let kind = if f.severity == Severity::Critical {
                Kind::Crisis
            } else {
                Kind::Reply
            };
            self.reply(&format!("alert:{}", f.id), kind, f.reply, None, None)
        };
        self.hit(
            f.id,
            f.severity,
            evidence,
            HitSpec {
                realert: f.realert,
                escalate: f.escalate,
                reply_key,
            },
        );
    }
}

struct HitSpec<'a> {
    realert: Option<crate::domain::Duration>,
    escalate: Option<&'a str>,
    reply_key: Option<String>,
}

/// Decides what one text does. Pure: reads nothing but its input.
pub fn decide(input: &Input<'_>) -> Decision {
    let rules = input.rules;
    let facts = input.facts;
    let text = input.text;
    let from = match (&facts.member, &facts.contact) {
        (Some(m), _) => Sender::Member(m),
        (None, Some(c)) => Sender::Contact(c),
        (None, None) => Sender::Unknown,
    };
    let opted_out = facts.member.as_ref().is_some_and(|m| !m.consent.granted());
    let sender = match &from {
        Sender::Member(m) => SenderVerdict {
            kind: "member",
            member_id: Some(m.id),
            external_id: Some(m.external_id.clone()),
            contact: None,
            opted_out,
        },
        Sender::Contact(c) => SenderVerdict {
            kind: "contact",
            member_id: None,
            external_id: None,
            contact: Some((*c).to_owned()),
            opted_out: false,
        },
        Sender::Unknown => SenderVerdict {
            kind: "unknown",
            member_id: None,
            external_id: None,
            contact: None,
            opted_out: false,
        },
    };
    let (subject, context) = match &from {
        Sender::Member(m) => (Subject::Member(m.id), member_context(rules, m, input.now)),
        _ => (
            Subject::Number(input.row.sms.from.clone()),
            template::unknown_sender_context(),
        ),
    };
    let mut b = Builder {
        input,
        subject,
        context,
        replies: Vec::new(),
        messages: Vec::new(),
        hits: Vec::new(),
    };
    let mut outcome: Vec<String> = Vec::new();

    // 2. Crisis, before anything else.
    let found = input.crisis.find(text);
    let crisis = crisis_stage(&mut b, found.as_ref());
    if crisis.matched {
        outcome.push("crisis".into());
    }

    // 3. Compliance keywords.
    let provider_said = provider_reading(input.row).and_then(provider_keyword);
    let ours = input.keywords.classify(text);
    let keyword = provider_said.or(ours).filter(|k| match k {
        // YES only re-subscribes someone who opted out; otherwise it is an
        // ordinary answer.
        Keyword::Yes => facts.member.as_ref().is_some_and(|m| {
            m.consent
                .last
                .as_ref()
                .is_some_and(|e| e.action == ConsentAction::Revoked)
        }),
        _ => true,
    });
    let mut consent = None;
    let mut compliance_action = None;
    let mut survey = SurveyVerdict {
        state: "none",
        ..SurveyVerdict::default()
    };
    let mut survey_update = None;
    if let Some(k) = keyword {
        let answered_by_provider = provider_said.is_some();
        let (action, change) = compliance_stage(&mut b, k, &from, answered_by_provider);
        compliance_action = Some(action);
        consent = change;
        outcome.push(format!("{k:?}").to_lowercase());
        if let Some(open) = &facts.survey {
            survey.survey = Some(open.run.survey.clone());
            if k == Keyword::Stop && matches!(from, Sender::Member(_)) {
                survey.state = "stopped";
                survey_update = Some(SurveyUpdate {
                    run_id: open.run.id,
                    answer: None,
                    question: open.run.question,
                    reprompts: open.reprompts,
                    close: Some(SurveyClose::Stopped),
                    score: None,
                    ask_key: None,
                });
            } else {
                survey.state = "preempted";
                survey.reason = Some("a compliance keyword is never a survey answer".into());
            }
        }
    }

    let mut alerts_out: Vec<AlertVerdict> = Vec::new();
    match (&from, keyword) {
        (_, Some(_)) => {}
        (Sender::Contact(c), None) => {
            outcome.push(format!("from contact `{c}`"));
        }
        (Sender::Unknown, None) => {
            outcome.push("unknown sender".into());
            if !crisis.matched
                && let Some(text) = &input.settings.unknown_sender_reply
            {
                b.reply("unknown-sender", Kind::Reply, None, Some(text), None);
            }
        }
        (Sender::Member(member), None) => {
            // 5. The open survey.
            let mut answers_now: Option<(String, BTreeMap<String, serde_json::Value>)> = None;
            let mut score_now: Option<serde_json::Value> = None;
            let mut item_hits: Vec<AlertVerdict> = Vec::new();
            if let Some(open) = &facts.survey {
                survey.survey = Some(open.run.survey.clone());
                if crisis.matched {
                    survey.state = "preempted";
                    survey.reason = Some(
                        "crisis language is never a survey answer; the question stays open".into(),
                    );
                } else if let Some(def) = rules.surveys.get(&open.run.survey) {
                    let step = survey_stage(&mut b, def, open, member, opted_out);
                    survey = step.verdict;
                    survey_update = step.update;
                    if let Some((q, value)) = step.answered {
                        let mut answers = open.answers.clone();
                        answers.insert(q.clone(), value.clone());
                        score_now = survey.score.clone();
                        for (ia, evidence) in answer::item_alerts(def, &q, &value) {
                            b.fired(
                                Fired {
                                    id: &ia.id,
                                    severity: ia.severity,
                                    reply: ia.reply.as_deref(),
                                    realert: ia.realert,
                                    escalate: ia.escalate.as_deref(),
                                },
                                evidence.clone(),
                                opted_out,
                            );
                            item_hits.push(AlertVerdict {
                                id: ia.id.clone(),
                                severity: ia.severity,
                                fired: true,
                                reason: format!("survey item alert: {evidence}"),
                                evidence: Some(evidence),
                                error: None,
                                incident: None,
                            });
                        }
                        answers_now = Some((open.run.survey.clone(), answers));
                    }
                } else {
                    survey.state = "not_in_rules";
                    survey.reason = Some(format!(
                        "survey `{}` is no longer in the rules; the text is read as ordinary text",
                        open.run.survey
                    ));
                }
            }
            outcome.push(match survey.state {
                "none" | "not_in_rules" | "preempted" => "text".into(),
                s => format!("survey {s}"),
            });

            // 6. Alerts.
            let view = member.view(local_today(member, input.now));
            let cx = AlertContext {
                member: Some(&view),
                reply: Some(text),
                survey: answers_now.as_ref().map(|(s, _)| s.as_str()),
                answers: answers_now.as_ref().map(|(_, a)| a),
                score: score_now.as_ref(),
                history: &facts.history,
                engagement: Some(&facts.engagement),
            };
            let skip = crisis.alert.as_deref();
            for c in alerts::evaluate(rules, &cx, Trigger::Reply, skip, Some(member.id)) {
                if c.fired
                    && let Some(alert) = rules.alerts.iter().find(|a| a.id == c.id)
                {
                    b.fired(
                        Fired {
                            id: &alert.id,
                            severity: alert.severity,
                            reply: alert.reply.as_deref(),
                            realert: alert.realert,
                            escalate: alert.escalate.as_deref(),
                        },
                        c.evidence.clone().unwrap_or_else(|| c.reason.clone()),
                        opted_out,
                    );
                }
                alerts_out.push(c.into());
            }
            alerts_out.extend(item_hits);
            let fired: Vec<&str> = alerts_out
                .iter()
                .filter(|a| a.fired)
                .map(|a| a.id.as_str())
                .collect();
            if !fired.is_empty() {
                outcome.push(format!("alerts {}", fired.join(",")));
            }
        }
    }

    let outcome = outcome.join("; ");
    let effects = ReplyEffects {
        inbound_id: input.row.id,
        outcome: outcome.clone(),
        consent,
        survey: survey_update,
        messages: b.messages,
        hits: b.hits,
        now: input.now,
    };
    Decision {
        original: text.original.clone(),
        normalised: text.folded.clone(),
        words: text.words.clone(),
        crisis,
        crisis_incident: None,
        compliance: keyword,
        compliance_action,
        sender,
        survey,
        alerts: alerts_out,
        replies: b.replies,
        outcome,
        effects,
    }
}

/// The provider's own reading of the text as a keyword (Twilio's
/// `OptOutType`).
fn provider_reading(row: &InboundRow) -> Option<&str> {
    row.sms.keyword.as_deref()
}

/// Twilio's `OptOutType` values.
fn provider_keyword(v: &str) -> Option<Keyword> {
    match v.trim().to_ascii_uppercase().as_str() {
        "STOP" => Some(Keyword::Stop),
        "START" => Some(Keyword::Start),
        "HELP" => Some(Keyword::Help),
        _ => None,
    }
}

/// The alert a crisis match is filed under: the rule's own for a rule
/// keyword; for a floor phrase, the rules' first critical keyword alert
/// (so its reply and escalation apply), else the built-in one.
fn crisis_alert<'r>(rules: &'r RuleSet, m: &CrisisMatch) -> Option<&'r Alert> {
    match &m.source {
        Source::Rule { alert } => rules.alerts.iter().find(|a| a.id == *alert),
        Source::Floor { .. } => rules
            .alerts
            .iter()
            .find(|a| a.severity == Severity::Critical && !a.keywords.is_empty()),
    }
}

fn crisis_stage(b: &mut Builder<'_>, found: Option<&CrisisMatch>) -> CrisisVerdict {
    let Some(m) = found else {
        return CrisisVerdict::default();
    };
    let alert = crisis_alert(b.input.rules, m);
    let alert_id = alert
        .map_or(BUILTIN_CRISIS_ALERT, |a| a.id.as_str())
        .to_owned();
    let (source, category) = match &m.source {
        Source::Rule { .. } => ("rule", None),
        Source::Floor { category } => ("floor", Some(*category)),
    };
    let fallback = b.input.settings.crisis_text.clone();
    let reply_key = b.reply(
        "crisis",
        Kind::Crisis,
        alert.and_then(|a| a.reply.as_deref()),
        Some(&fallback),
        None,
    );
    let mut evidence = match category {
        Some(c) => format!(
            "crisis phrase `{}` (built-in floor: {})",
            m.phrase,
            serde_json::to_value(c)
                .ok()
                .and_then(|v| v.as_str().map(str::to_owned))
                .unwrap_or_default()
        ),
        None => format!("crisis phrase `{}`", m.phrase),
    };
    if reply_key.is_none() {
        evidence.push_str("; no crisis reply: the sender is not a phone number that can be texted");
    }
    b.hit(
        &alert_id,
        Severity::Critical,
        evidence,
        HitSpec {
            realert: alert.and_then(|a| a.realert),
            escalate: alert.and_then(|a| a.escalate.as_deref()),
            reply_key,
        },
    );
    CrisisVerdict {
        matched: true,
        alert: Some(alert_id),
        phrase: Some(m.phrase.clone()),
        source: Some(source),
        category,
    }
}

/// STOP/START/YES/HELP: the consent change and the one confirmation.
fn compliance_stage(
    b: &mut Builder<'_>,
    k: Keyword,
    from: &Sender<'_>,
    answered_by_provider: bool,
) -> (String, Option<ConsentChange>) {
    let s = b.input.settings;
    let member = match from {
        Sender::Member(m) => Some(*m),
        _ => None,
    };
    let original = b.input.text.original.clone();
    let note = if answered_by_provider {
        " (the provider already answered the member, so Hearth sends no confirmation of its own)"
    } else {
        ""
    };
    match k {
        Keyword::Stop => {
            let Some(m) = member else {
                return (
                    "opt-out from a number that is no member's: nothing to revoke".into(),
                    None,
                );
            };
            if !m.consent.granted() {
                return (
                    "already opted out: no second confirmation".into(),
                    Some(ConsentChange {
                        external_id: m.external_id.clone(),
                        action: ConsentAction::Revoked,
                        text: original,
                    }),
                );
            }
            if !answered_by_provider {
                b.reply("stop", Kind::Compliance, None, Some(&stop_text(s)), None);
            }
            (
                format!("consent revoked; one confirmation{note}"),
                Some(ConsentChange {
                    external_id: m.external_id.clone(),
                    action: ConsentAction::Revoked,
                    text: original,
                }),
            )
        }
        Keyword::Start | Keyword::Yes => {
            let Some(m) = member else {
                return (
                    "opt-in from a number that is no member's: nothing to grant".into(),
                    None,
                );
            };
            if m.consent.granted() {
                return ("already subscribed: nothing to change".into(), None);
            }
            if !answered_by_provider {
                b.reply("start", Kind::Compliance, None, Some(&start_text(s)), None);
            }
            (
                format!("consent granted again; one confirmation{note}"),
                Some(ConsentChange {
                    external_id: m.external_id.clone(),
                    action: ConsentAction::Granted,
                    text: original,
                }),
            )
        }
        Keyword::Help => {
            if answered_by_provider {
                return (format!("help{note}"), None);
            }
            match b.reply("help", Kind::Compliance, None, Some(&help_text(s)), None) {
                Some(_) => ("help text sent".into(), None),
                None => (
                    "help asked by a sender that is not a phone number: no reply possible".into(),
                    None,
                ),
            }
        }
    }
}

/// The one confirmation of an opt-out.
pub fn stop_text(s: &ReplySettings) -> String {
    format!(
        "{}: you are unsubscribed and will get no more messages. Reply START to subscribe again.",
        s.program
    )
}

pub fn start_text(s: &ReplySettings) -> String {
    format!(
        "{}: you are subscribed again, {}. Reply HELP for help, STOP to opt out.",
        s.program, s.frequency
    )
}

/// HELP: program, contact, frequency, rates, how to stop (CTIA).
pub fn help_text(s: &ReplySettings) -> String {
    format!(
        "{}: {}. For help contact {}. Msg & data rates may apply. Reply STOP to opt out.",
        s.program, s.frequency, s.contact
    )
}

struct SurveyStep {
    verdict: SurveyVerdict,
    update: Option<SurveyUpdate>,
    /// `(question id, stored value)` of a valid answer.
    answered: Option<(String, serde_json::Value)>,
}

fn survey_stage(
    b: &mut Builder<'_>,
    def: &Survey,
    open: &crate::store::traits::reply::OpenSurvey,
    member: &Member,
    opted_out: bool,
) -> SurveyStep {
    let index = open.run.question as usize;
    let mut verdict = SurveyVerdict {
        state: "none",
        survey: Some(def.id.clone()),
        ..SurveyVerdict::default()
    };
    let Some(question) = def.questions.get(index) else {
        verdict.state = "not_in_rules";
        verdict.reason = Some(format!(
            "survey `{}` has no question {} any more; the text is read as ordinary text",
            def.id,
            index + 1
        ));
        return SurveyStep {
            verdict,
            update: None,
            answered: None,
        };
    };
    verdict.question = Some(question.id.clone());
    let expires = open.run.expires_at;
    let _ = member;
    match answer::parse_answer(&question.expect, b.input.text) {
        Ok(a) => {
            let value = a.to_json();
            verdict.answer = Some(value.clone());
            let mut answers = open.answers.clone();
            answers.insert(question.id.clone(), value.clone());
            let next = index + 1;
            let record = AnswerRecord {
                question: question.id.clone(),
                position: open.run.question,
                value: value.clone(),
            };
            if let Some(nq) = def.questions.get(next) {
                verdict.state = "answered";
                verdict.next_question = Some(nq.id.clone());
                let ask_key = if opted_out {
                    None
                } else {
                    b.reply(
                        &format!("survey:{}:{next}", def.id),
                        Kind::Reply,
                        Some(&nq.ask),
                        None,
                        expires,
                    )
                };
                SurveyStep {
                    verdict,
                    update: Some(SurveyUpdate {
                        run_id: open.run.id,
                        answer: Some(record),
                        question: next as u32,
                        reprompts: 0,
                        close: None,
                        score: None,
                        ask_key,
                    }),
                    answered: Some((question.id.clone(), value)),
                }
            } else {
                verdict.state = "completed";
                let scored = answer::score(def, &answers).map(|s| s.to_json());
                verdict.score = scored.clone();
                if !opted_out {
                    b.reply(
                        &format!("survey:{}:thanks", def.id),
                        Kind::Reply,
                        def.thanks.as_deref(),
                        None,
                        None,
                    );
                }
                SurveyStep {
                    verdict,
                    update: Some(SurveyUpdate {
                        run_id: open.run.id,
                        answer: Some(record),
                        question: open.run.question,
                        reprompts: 0,
                        close: Some(SurveyClose::Completed),
                        score: scored,
                        ask_key: None,
                    }),
                    answered: Some((question.id.clone(), value)),
                }
            }
        }
        Err(why) => {
            verdict.reason = Some(why.0);
            if open.reprompts < def.max_reprompts {
                verdict.state = "reprompted";
                let purpose = format!(
                    "survey:{}:{}:reprompt:{}",
                    def.id,
                    index,
                    open.reprompts + 1
                );
                let template = def.reprompt.as_deref().unwrap_or(&question.ask);
                let ask_key = if opted_out {
                    None
                } else {
                    b.reply(&purpose, Kind::Reply, Some(template), None, expires)
                };
                SurveyStep {
                    verdict,
                    update: Some(SurveyUpdate {
                        run_id: open.run.id,
                        answer: None,
                        question: open.run.question,
                        reprompts: open.reprompts + 1,
                        close: None,
                        score: None,
                        ask_key,
                    }),
                    answered: None,
                }
            } else {
                verdict.state = "gave_up";
                SurveyStep {
                    verdict,
                    update: Some(SurveyUpdate {
                        run_id: open.run.id,
                        answer: None,
                        question: open.run.question,
                        reprompts: open.reprompts,
                        close: Some(SurveyClose::GaveUp),
                        score: None,
                        ask_key: None,
                    }),
                    answered: None,
                }
            }
        }
    }
}

/// The member's local date (their own timezone; UTC if it is not one).
fn local_today(member: &Member, now: DateTime<Utc>) -> chrono::NaiveDate {
    member
        .timezone
        .parse::<chrono_tz::Tz>()
        .map(|tz| now.with_timezone(&tz).date_naive())
        .unwrap_or_else(|_| now.date_naive())
}

/// A member's template context: their view and their first group in the
/// rules.
pub fn member_context(rules: &RuleSet, member: &Member, now: DateTime<Utc>) -> minijinja::Value {
    let view = member.view(local_today(member, now));
    let group = member.groups.iter().find_map(|g| rules.groups.get(g));
    template::member_context(&view, group, None, now)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::member::{ConsentEvent, ConsentSource, ConsentState, MemberStatus};
    use crate::store::traits::reply::OpenSurvey;
    use crate::store::traits::schedule::SurveyRun;

    /// A small xorshift: the same cases on every run.
    struct Rng(u64);
    impl Rng {
        fn next(&mut self) -> u64 {
            self.0 ^= self.0 << 13;
            self.0 ^= self.0 >> 7;
            self.0 ^= self.0 << 17;
            self.0
        }
        fn pick<'a>(&mut self, xs: &[&'a str]) -> &'a str {
            xs[(self.next() % xs.len() as u64) as usize]
        }
    }

    const PIECES: &[&str] = &[
        "stop",
        "STOP",
        "start",
        "yes",
        "help",
        "4",
        "10",
        "-3",
        "4.5",
        "banana",
        "very",
        "not really",
        "i want to die",
        "end it all",
        "kms",
        "sui cide",
        "d i e",
        " ",
        "",
        "!!!",
        "\u{0}",
        "\u{202e}",
        "ＳＴＯＰ",
        "🙂",
        "ñ",
        "é",
        "1e308",
        "NaN",
        "999999999999999999999",
        "my self",
        "skill",
        "kill",
        "no",
        "yep",
        "\n",
        "'",
        "\"",
        "{{ member.first_name }}",
        "ALTO",
        "ayuda",
        "one",
        "seven out of 10",
        "7/10",
        "0x10",
    ];

    fn member(opted_out: bool) -> Member {
        Member {
            id: 7,
            external_id: "M-7".into(),
            first_name: "Alex".into(),
            last_name: None,
            phone: Phone::parse("+15555550107").unwrap(),
            timezone: "America/New_York".into(),
            language: "en".into(),
            joined_on: chrono::NaiveDate::from_ymd_opt(2026, 1, 1).unwrap(),
            status: MemberStatus::Active,
            groups: vec!["weekly-support".into()],
            attributes: Default::default(),
            consent: ConsentState {
                last: Some(ConsentEvent {
                    id: 1,
                    action: if opted_out {
                        ConsentAction::Revoked
                    } else {
                        ConsentAction::Granted
                    },
                    source: ConsentSource::Keyword,
                    text: String::new(),
                    actor: "test".into(),
                    at: Utc::now(),
                }),
            },
        }
    }

    #[test]
    fn no_text_from_any_sender_in_any_survey_state_makes_deciding_panic() {
        let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("rules");
        let rules = crate::config::load_dir(&dir)
            .unwrap()
            .rules
            .expect("the starter rules compile");
        let crisis = CrisisMatcher::with_rules(Some(&rules));
        let settings = ReplySettings {
            stop_words: vec!["alto".into()],
            help_words: vec!["ayuda".into()],
            ..ReplySettings::default()
        };
        let keywords = Keywords::with_additions(&settings.stop_words, &[], &settings.help_words);
        // Every question of every survey, and no survey.
        let mut states: Vec<Option<(String, u32)>> = vec![None];
        for s in rules.surveys.values() {
            for i in 0..s.questions.len() {
                states.push(Some((s.id.clone(), i as u32)));
            }
        }
        let now = Utc::now();
        let mut rng = Rng(0x9e37_79b9_7f4a_7c15);
        for case in 0..3_000 {
            let words = 1 + rng.next() % 6;
            let body: String = (0..words)
                .map(|_| rng.pick(PIECES))
                .collect::<Vec<_>>()
                .join(" ");
            let sender = rng.next() % 4;
            let state = &states[(rng.next() % states.len() as u64) as usize];
            let facts = ReplyFacts {
                member: (sender < 3).then(|| member(sender == 1)),
                contact: (sender == 3 && case % 2 == 0).then(|| "facilitator".to_owned()),
                survey: match (sender < 3, state) {
                    (true, Some((survey, question))) => Some(OpenSurvey {
                        run: SurveyRun {
                            id: 1,
                            member_id: 7,
                            survey: survey.clone(),
                            schedule: None,
                            outbox_id: 1,
                            question: *question,
                            opened_at: now,
                            expires_at: Some(now + chrono::Duration::hours(1)),
                        },
                        answers: BTreeMap::new(),
                        reprompts: (rng.next() % 3) as u32,
                    }),
                    _ => None,
                },
                history: Vec::new(),
                engagement: Default::default(),
            };
            let row = InboundRow {
                id: case,
                sms: crate::domain::message::InboundSms {
                    provider: "test".into(),
                    provider_message_id: format!("p{case}"),
                    from: if sender == 2 {
                        "SHORTCODE".into()
                    } else {
                        "+15555550107".into()
                    },
                    to: String::new(),
                    body: body.clone(),
                    keyword: (case % 17 == 0)
                        .then(|| rng.pick(&["STOP", "START", "HELP", "??"]).to_owned()),
                },
                member_id: None,
                received_at: now,
            };
            let text = crate::domain::normalize::normalize(&body);
            let d = decide(&Input {
                rules: &rules,
                crisis: &crisis,
                keywords: &keywords,
                settings: &settings,
                row: &row,
                text: &text,
                facts: &facts,
                now,
            });
            // What must hold whatever the text.
            if d.crisis.matched {
                assert!(
                    d.effects
                        .hits
                        .iter()
                        .any(|h| h.severity == Severity::Critical),
                    "{body:?}"
                );
            }
            if d.sender.opted_out {
                assert!(
                    d.replies
                        .iter()
                        .all(|r| matches!(r.kind, Kind::Crisis | Kind::Compliance)),
                    "{body:?}: {:?}",
                    d.replies
                );
            }
            let stops = d.replies.iter().filter(|r| r.purpose == "stop").count();
            assert!(stops <= 1, "{body:?}");
        }
    }
}
