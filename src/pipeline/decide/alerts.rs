//! The alerts stage, for members: the answered question's per-item alerts,
//! then every reply alert ([`crate::pipeline::alerts::evaluate`]) but the
//! one the crisis stage already fired. Each that fires sends its reply
//! (not to a member who opted out) and records its hit.

use super::builder::{Builder, Fired};
use super::sender::local_today;
use super::survey::Answered;
use crate::domain::member::Member;
use crate::pipeline::alerts::{self, AlertContext, AlertVerdict, Trigger};
use crate::pipeline::answer;

pub(super) fn stage(
    b: &mut Builder<'_>,
    member: &Member,
    answered: Option<&Answered<'_>>,
    crisis_alert: Option<&str>,
    opted_out: bool,
) -> Vec<AlertVerdict> {
    let item_hits = answered.map_or_else(Vec::new, |a| fire_item_alerts(b, a, opted_out));
    let input = b.input;
    let rules = input.rules;
    let view = member.view(local_today(member, input.now));
    let cx = AlertContext {
        member: Some(&view),
        reply: Some(input.text),
        survey: answered.map(|a| a.survey),
        answers: answered.map(|a| &a.answers),
        score: answered.and_then(|a| a.score.as_ref()),
        history: &input.facts.history,
        engagement: Some(&input.facts.engagement),
    };
    let mut out = alerts::evaluate(rules, &cx, Trigger::Reply, crisis_alert, Some(member.id));
    for c in out.iter().filter(|c| c.fired) {
        if let Some(alert) = rules.alerts.iter().find(|a| a.id == c.id) {
            b.fired(
                Fired {
                    id: &alert.id,
                    severity: alert.severity,
                    reply: alert.reply.as_deref(),
                    realert: alert.realert,
                    escalate: alert.escalate.as_deref(),
                    quote: None,
                },
                c.evidence.clone().unwrap_or_else(|| c.reason.clone()),
                opted_out,
            );
        }
    }
    out.extend(item_hits);
    out
}

/// The survey's item alerts the answer sets off, each fired.
fn fire_item_alerts(
    b: &mut Builder<'_>,
    answered: &Answered<'_>,
    opted_out: bool,
) -> Vec<AlertVerdict> {
    let mut out = Vec::new();
    for (ia, evidence, quote) in
        answer::item_alerts(answered.def, &answered.question, &answered.value)
    {
        b.fired(
            Fired {
                id: &ia.id,
                severity: ia.severity,
                reply: ia.reply.as_deref(),
                realert: ia.realert,
                escalate: ia.escalate.as_deref(),
                quote,
            },
            evidence.clone(),
            opted_out,
        );
        out.push(AlertVerdict {
            id: ia.id.clone(),
            severity: ia.severity,
            fired: true,
            reason: format!("survey item alert: {evidence}"),
            evidence: Some(evidence),
            error: None,
            incident: None,
        });
    }
    out
}
