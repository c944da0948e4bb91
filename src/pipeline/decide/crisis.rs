//! The crisis stage, before anything else: a match (found once by the
//! caller, [`super::super::crisis::Screened`]) queues the crisis reply at
//! crisis priority and records a critical hit under the alert it is filed
//! under, for members, opted-out members, contacts and unknown numbers
//! alike.

use super::super::crisis::{CrisisMatch, Source};
use super::builder::{Builder, HitSpec};
use super::verdict::CrisisVerdict;
use crate::domain::incident::{BUILTIN_CRISIS_ALERT, Severity};
use crate::domain::message::Kind;
use crate::rules::{Alert, RuleSet};

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
