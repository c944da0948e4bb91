//! What a decision writes as the stages go: the replies it queues and the
//! alert hits it records, for the one sender the text came from.

use chrono::{DateTime, Utc};

use super::Input;
use super::sender::{self, Sender};
use super::verdict::ReplyVerdict;
use crate::domain::Phone;
use crate::domain::incident::{AlertHit, Severity, Subject};
use crate::domain::message::{IdempotencyKey, Kind, NewMessage};
use crate::rules::template;

pub(super) struct Builder<'a> {
    pub(super) input: &'a Input<'a>,
    subject: Subject,
    /// The member's template context (or the unknown sender's).
    context: minijinja::Value,
    pub(super) replies: Vec<ReplyVerdict>,
    pub(super) messages: Vec<NewMessage>,
    pub(super) hits: Vec<AlertHit>,
}

/// An alert or survey item alert that fired.
pub(super) struct Fired<'a> {
    pub(super) id: &'a str,
    pub(super) severity: Severity,
    pub(super) reply: Option<&'a str>,
    pub(super) realert: Option<crate::domain::Duration>,
    pub(super) escalate: Option<&'a str>,
    /// A survey item alert's item and answer as they read, for pages.
    pub(super) quote: Option<String>,
}

/// How a hit is followed up: realert, escalation, the reply sent with it.
pub(super) struct HitSpec<'a> {
    pub(super) realert: Option<crate::domain::Duration>,
    pub(super) escalate: Option<&'a str>,
    pub(super) reply_key: Option<String>,
}

impl<'a> Builder<'a> {
    /// Replies and hits are about `from`: a member by id, anyone else by
    /// the number the text came from.
    pub(super) fn new(input: &'a Input<'a>, from: &Sender<'_>) -> Builder<'a> {
        let (subject, context) = match from {
            Sender::Member(m) => (
                Subject::Member(m.id),
                sender::member_context(input.rules, m, input.now),
            ),
            _ => (
                Subject::Number(input.row.sms.from.clone()),
                template::unknown_sender_context(),
            ),
        };
        Builder {
            input,
            subject,
            context,
            replies: Vec::new(),
            messages: Vec::new(),
            hits: Vec::new(),
        }
    }

    /// Queues a reply to the sender. `None` when there is no number to
    /// reply to (a short code or alphanumeric sender that is no member).
    pub(super) fn reply(
        &mut self,
        purpose: &str,
        kind: Kind,
        template_id: Option<&str>,
        fallback: Option<&str>,
        expires_at: Option<DateTime<Utc>>,
    ) -> Option<String> {
        let rendered = template_id.and_then(|t| self.render(t));
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
            body,
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
        });
        Some(key.as_str().to_owned())
    }

    /// The template rendered for the sender; `None` when it renders empty
    /// or fails (logged without its detail, which may quote a name).
    fn render(&self, template_id: &str) -> Option<String> {
        match self.input.rules.renderer.render(template_id, &self.context) {
            Ok(body) if !body.trim().is_empty() => Some(body),
            Ok(_) => None,
            Err(e) => {
                // The error may quote rendered values (a name), so its
                // detail stays at debug.
                tracing::warn!(
                    template = template_id,
                    inbound_id = self.input.row.id,
                    "reply template failed to render; using the fallback"
                );
                tracing::debug!(template = template_id, error = ?e, "reply template error");
                None
            }
        }
    }

    pub(super) fn hit(
        &mut self,
        alert: &str,
        severity: Severity,
        evidence: String,
        spec: HitSpec<'_>,
    ) {
        self.hit_quoted(alert, severity, evidence, spec, None);
    }

    /// [`Builder::hit`], with what a page quotes instead of the text.
    fn hit_quoted(
        &mut self,
        alert: &str,
        severity: Severity,
        evidence: String,
        spec: HitSpec<'_>,
        quote: Option<String>,
    ) {
        self.hits.push(AlertHit {
            alert: alert.to_owned(),
            severity,
            subject: self.subject.clone(),
            inbound_id: Some(self.input.row.id),
            evidence,
            realert: spec.realert,
            escalate: spec.escalate.map(str::to_owned),
            reply_key: spec.reply_key,
            quote,
        });
    }

    /// Sends the alert's `reply:` (at crisis priority for a critical alert;
    /// not to a member who opted out) and records its hit.
    pub(super) fn fired(&mut self, f: Fired<'_>, evidence: String, opted_out: bool) {
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
        self.hit_quoted(
            f.id,
            f.severity,
            evidence,
            HitSpec {
                realert: f.realert,
                escalate: f.escalate,
                reply_key,
            },
            f.quote,
        );
    }
}
