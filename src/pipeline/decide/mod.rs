//! The reply pipeline's decision for one text, without I/O.
//!
//! [`decide`] takes the text, what the store knows about its sender
//! ([`ReplyFacts`]) and the live rules, and returns a [`Decision`]: every
//! stage's verdict, for people (`hearth explain` prints it), and the
//! [`ReplyEffects`] the store applies in one transaction. The daemon and
//! `hearth explain` both reach it through [`decide_row`], so explain shows
//! what the daemon does.
//!
//! The stages, in order (DESIGN §2), one file each:
//! 1. normalise (the original is kept) — done once with the crisis check,
//!    by the caller ([`Screened`]);
//! 2. **crisis** ([`crisis`]) — the rules' critical keywords and the
//!    built-in floor. A match queues the crisis reply (crisis priority:
//!    through quiet hours, caps and consent) and a critical hit, for
//!    members, opted-out members, contacts and unknown numbers alike;
//! 3. **compliance** ([`compliance`]) — STOP (and synonyms), START/UNSTOP,
//!    YES from a member who opted out, HELP/INFO; also the provider's own
//!    reading (Twilio's `OptOutType`). A keyword ends the pipeline (after
//!    crisis);
//! 4. **sender** ([`sender`]) — member, contact or unknown; only members
//!    go on;
//! 5. **survey** ([`survey`]) — an open survey's current question is
//!    answered, re-prompted or given up on; crisis and keywords pre-empt it;
//! 6. **alerts** ([`alerts`]) — every other alert, and the survey's
//!    per-item alerts;
//! 7. **follow-up** ([`follow_up`]) — a text from a sender with an
//!    unresolved critical incident is kept on it, forwarded to a person
//!    and answered (at most once an hour) that a person has been told.
//!
//! What the stages write (replies, hits) goes through one [`builder`]; the
//! verdict types are in [`verdict`].

mod alerts;
mod builder;
mod compliance;
mod crisis;
mod follow_up;
mod sender;
mod survey;
mod verdict;

#[cfg(test)]
mod tests;

use chrono::{DateTime, Utc};

use self::builder::Builder;
use self::compliance::Compliance;
use self::sender::Sender;
use super::crisis::{CrisisMatch, Screened};
use super::keywords::Keywords;
use crate::domain::member::Member;
use crate::domain::message::InboundRow;
use crate::domain::normalize::Normalized;
use crate::rules::RuleSet;
use crate::settings::ReplySettings;
use crate::store::traits::reply::{ReplyEffects, ReplyFacts, SurveyUpdate};

pub(crate) use self::crisis::evidence as crisis_evidence;
pub use self::verdict::{CrisisVerdict, Decision, SurveyVerdict};
pub use super::alerts::AlertVerdict;

/// What `decide` needs besides the facts.
pub(crate) struct Input<'a> {
    pub(crate) rules: &'a RuleSet,
    /// What the crisis check found in `text`: the caller runs it once
    /// ([`Screened`]), before the decision.
    pub(crate) crisis: Option<&'a CrisisMatch>,
    pub(crate) keywords: &'a Keywords,
    pub(crate) settings: &'a ReplySettings,
    pub(crate) row: &'a InboundRow,
    pub(crate) text: &'a Normalized,
    pub(crate) facts: &'a ReplyFacts,
    pub(crate) now: DateTime<Utc>,
}

/// The live configuration a decision reads besides the text and its
/// sender.
pub(crate) struct Setup<'a> {
    pub(crate) rules: &'a RuleSet,
    pub(crate) keywords: &'a Keywords,
    pub(crate) settings: &'a ReplySettings,
}

/// Decides one stored text, already screened for crisis language: what
/// the daemon's worker does with every text, and what `hearth explain`
/// shows. A number that is no member's is looked up among the rules'
/// contacts first.
pub(crate) fn decide_row(
    setup: &Setup<'_>,
    row: &InboundRow,
    mut facts: ReplyFacts,
    screened: &Screened,
    now: DateTime<Utc>,
) -> Decision {
    if facts.member.is_none() {
        facts.contact = sender::contact_for(setup.rules, &row.sms.from);
    }
    decide(&Input {
        rules: setup.rules,
        crisis: screened.crisis.as_ref(),
        keywords: setup.keywords,
        settings: setup.settings,
        row,
        text: &screened.text,
        facts: &facts,
        now,
    })
}

/// Decides what one text does. Pure: reads nothing but its input.
pub(crate) fn decide(input: &Input<'_>) -> Decision {
    let from = Sender::of(input.facts);
    let sender = from.verdict();
    let mut b = Builder::new(input, &from);
    let mut outcome: Vec<String> = Vec::new();

    let crisis = crisis::stage(&mut b, input.crisis);
    if crisis.matched {
        outcome.push("crisis".into());
    }
    let Compliance {
        keyword,
        action,
        consent,
        survey,
        survey_update,
    } = compliance::stage(&mut b, &from);
    let (survey, survey_update, alerts) = match (&from, keyword) {
        (_, Some(k)) => {
            outcome.push(format!("{k:?}").to_lowercase());
            (survey, survey_update, Vec::new())
        }
        (Sender::Contact(c), None) => {
            outcome.push(format!("from contact `{c}`"));
            (survey, survey_update, Vec::new())
        }
        (Sender::Unknown, None) => {
            outcome.push("unknown sender".into());
            sender::answer_unknown(&mut b, crisis.matched);
            (survey, survey_update, Vec::new())
        }
        (Sender::Member(m), None) => {
            let after = member_stages(&mut b, m, &crisis, sender.opted_out, &mut outcome);
            (after.survey, after.survey_update, after.alerts)
        }
    };
    let follow_up = follow_up::stage(&mut b, &from, &crisis, keyword, &mut outcome);

    let outcome = outcome.join("; ");
    let text = input.text;
    Decision {
        original: text.original.clone(),
        normalised: text.folded.clone(),
        words: text.words.clone(),
        crisis,
        crisis_incident: None,
        compliance: keyword,
        compliance_action: action,
        sender,
        survey,
        alerts,
        follow_up: follow_up.as_ref().map(|(_, v)| v.clone()),
        outcome: outcome.clone(),
        effects: ReplyEffects {
            inbound_id: input.row.id,
            outcome,
            consent,
            survey: survey_update,
            messages: b.messages,
            hits: b.hits,
            follow_up: follow_up.map(|(f, _)| f),
            now: input.now,
        },
        replies: b.replies,
    }
}

/// What the member-only stages decided.
struct MemberStages {
    survey: SurveyVerdict,
    survey_update: Option<SurveyUpdate>,
    alerts: Vec<AlertVerdict>,
}

/// The survey stage, then the alerts stage, for a member's text that is
/// no keyword; each adds its part of the outcome.
fn member_stages(
    b: &mut Builder<'_>,
    member: &Member,
    crisis: &CrisisVerdict,
    opted_out: bool,
    outcome: &mut Vec<String>,
) -> MemberStages {
    let step = survey::stage(b, crisis.matched, opted_out);
    outcome.push(match step.verdict.state {
        "none" | "not_in_rules" | "preempted" => "text".into(),
        s => format!("survey {s}"),
    });
    let alerts = alerts::stage(
        b,
        member,
        step.answered.as_ref(),
        crisis.alert.as_deref(),
        opted_out,
    );
    let fired: Vec<&str> = alerts
        .iter()
        .filter(|a| a.fired)
        .map(|a| a.id.as_str())
        .collect();
    if !fired.is_empty() {
        outcome.push(format!("alerts {}", fired.join(",")));
    }
    MemberStages {
        survey: step.verdict,
        survey_update: step.update,
        alerts,
    }
}
