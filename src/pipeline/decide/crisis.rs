//! The crisis stage, before anything else: a match (found once by the
//! caller, [`super::super::crisis::Screened`]) queues the crisis reply at
//! crisis priority and records a hit under the alert it is filed under,
//! for members, opted-out members, contacts and unknown numbers alike.
//!
//! A critical match records a critical hit (a page). A warning match — a
//! construct negated, in the past, about someone else, asked about, or
//! hopelessness alone — records a warning hit under the same alert, its
//! evidence naming the constructs and words, and still sends the crisis
//! reply: a false alert costs less than a missed crisis, and the reply's
//! "a person has been told" is made true by the warning incident.

use super::super::crisis::{CrisisMatch, Source};
use super::builder::{Builder, HitSpec};
use super::verdict::CrisisVerdict;
use crate::domain::incident::{BUILTIN_CRISIS_ALERT, Severity};
use crate::domain::message::Kind;
use crate::rules::{Alert, RuleSet};

/// The alert a crisis match is filed under: the rule's own for a rule
/// keyword; for the detector, the rules' first critical keyword alert
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

/// What the audit trail and the page say about a match: the rule that
/// decided it and each construct with its words (no more of the message
/// than those words).
pub(crate) fn evidence(m: &CrisisMatch) -> String {
    let constructs = m
        .constructs
        .iter()
        .map(|f| format!("{} `{}`", f.name.as_str(), f.words.join(" ")))
        .collect::<Vec<_>>()
        .join(", ");
    let head = match &m.source {
        Source::Rule { .. } => format!("crisis phrase `{}` (rule keyword)", m.phrase),
        Source::Floor { .. } => format!(
            "crisis {} (built-in detector: {})",
            m.severity.as_str(),
            m.rule
        ),
    };
    if constructs.is_empty() {
        head
    } else {
        format!("{head}; constructs: {constructs}")
    }
}

pub(super) fn stage(b: &mut Builder<'_>, found: Option<&CrisisMatch>) -> CrisisVerdict {
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
    let mut evidence = evidence(m);
    if reply_key.is_none() {
        evidence.push_str("; no crisis reply: the sender is not a phone number that can be texted");
    }
    b.hit(
        &alert_id,
        m.severity.incident(),
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
        severity: Some(m.severity),
        rule: Some(m.rule.clone()),
        constructs: m.constructs.clone(),
    }
}
