//! The compliance stage: STOP (and synonyms), START/UNSTOP, YES from a
//! member who opted out, HELP/INFO, and the provider's own reading
//! (Twilio's `OptOutType`). A keyword changes consent, sends the one
//! confirmation the carrier rules ask for, and ends the pipeline (after
//! crisis): it is never a survey answer.

use super::builder::Builder;
use super::sender::Sender;
use super::verdict::SurveyVerdict;
use crate::domain::member::{ConsentAction, Member};
use crate::domain::message::{InboundRow, Kind};
use crate::pipeline::keywords::Keyword;
use crate::settings::ReplySettings;
use crate::store::traits::reply::{ConsentChange, ReplyFacts, SurveyClose, SurveyUpdate};

/// What the compliance stage found and did.
pub(super) struct Compliance {
    pub(super) keyword: Option<Keyword>,
    /// What the keyword did, for people; `None` without one.
    pub(super) action: Option<String>,
    pub(super) consent: Option<ConsentChange>,
    /// The open survey as the keyword leaves it (`none` without a keyword).
    pub(super) survey: SurveyVerdict,
    pub(super) survey_update: Option<SurveyUpdate>,
}

pub(super) fn stage(b: &mut Builder<'_>, from: &Sender<'_>) -> Compliance {
    let input = b.input;
    let provider_said = provider_reading(input.row).and_then(provider_keyword);
    let ours = input.keywords.classify(input.text);
    let keyword = provider_said
        .or(ours)
        .filter(|k| is_a_keyword_here(*k, input.facts));
    let Some(k) = keyword else {
        return Compliance {
            keyword: None,
            action: None,
            consent: None,
            survey: SurveyVerdict::none(),
            survey_update: None,
        };
    };
    let (action, consent) = act(b, k, from.member(), provider_said.is_some());
    let (survey, survey_update) = survey_after(k, from, input.facts);
    Compliance {
        keyword,
        action: Some(action),
        consent,
        survey,
        survey_update,
    }
}

/// YES only re-subscribes someone who opted out; otherwise it is an
/// ordinary answer. Every other keyword is one from anyone.
fn is_a_keyword_here(k: Keyword, facts: &ReplyFacts) -> bool {
    match k {
        Keyword::Yes => facts.member.as_ref().is_some_and(|m| {
            m.consent
                .last
                .as_ref()
                .is_some_and(|e| e.action == ConsentAction::Revoked)
        }),
        _ => true,
    }
}

/// What a keyword does to an open survey: STOP from a member closes it;
/// any other keyword pre-empts it (the question stays open).
fn survey_after(
    k: Keyword,
    from: &Sender<'_>,
    facts: &ReplyFacts,
) -> (SurveyVerdict, Option<SurveyUpdate>) {
    let mut survey = SurveyVerdict::none();
    let Some(open) = &facts.survey else {
        return (survey, None);
    };
    survey.survey = Some(open.run.survey.clone());
    if k == Keyword::Stop && matches!(from, Sender::Member(_)) {
        survey.state = "stopped";
        let update = SurveyUpdate {
            run_id: open.run.id,
            answer: None,
            question: open.run.question,
            reprompts: open.reprompts,
            close: Some(SurveyClose::Stopped),
            score: None,
            ask_key: None,
        };
        (survey, Some(update))
    } else {
        survey.state = "preempted";
        survey.reason = Some("a compliance keyword is never a survey answer".into());
        (survey, None)
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

/// The note on an action when the provider already confirmed it.
fn provider_note(answered_by_provider: bool) -> &'static str {
    if answered_by_provider {
        " (the provider already answered the member, so Hearth sends no confirmation of its own)"
    } else {
        ""
    }
}

/// STOP/START/YES/HELP: the consent change and the one confirmation.
fn act(
    b: &mut Builder<'_>,
    k: Keyword,
    member: Option<&Member>,
    answered_by_provider: bool,
) -> (String, Option<ConsentChange>) {
    match k {
        Keyword::Stop => stop(b, member, answered_by_provider),
        Keyword::Start | Keyword::Yes => opt_in(b, member, answered_by_provider),
        Keyword::Help => help(b, answered_by_provider),
    }
}

fn change(b: &Builder<'_>, m: &Member, action: ConsentAction) -> Option<ConsentChange> {
    Some(ConsentChange {
        external_id: m.external_id.clone(),
        action,
        text: b.input.text.original.clone(),
    })
}

fn stop(
    b: &mut Builder<'_>,
    member: Option<&Member>,
    answered_by_provider: bool,
) -> (String, Option<ConsentChange>) {
    let Some(m) = member else {
        return (
            "opt-out from a number that is no member's: nothing to revoke".into(),
            None,
        );
    };
    if !m.consent.granted() {
        return (
            "already opted out: no second confirmation".into(),
            change(b, m, ConsentAction::Revoked),
        );
    }
    if !answered_by_provider {
        let text = stop_text(b.input.settings);
        b.reply("stop", Kind::Compliance, None, Some(&text), None);
    }
    (
        format!(
            "consent revoked; one confirmation{}",
            provider_note(answered_by_provider)
        ),
        change(b, m, ConsentAction::Revoked),
    )
}

fn opt_in(
    b: &mut Builder<'_>,
    member: Option<&Member>,
    answered_by_provider: bool,
) -> (String, Option<ConsentChange>) {
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
        let text = start_text(b.input.settings);
        b.reply("start", Kind::Compliance, None, Some(&text), None);
    }
    (
        format!(
            "consent granted again; one confirmation{}",
            provider_note(answered_by_provider)
        ),
        change(b, m, ConsentAction::Granted),
    )
}

fn help(b: &mut Builder<'_>, answered_by_provider: bool) -> (String, Option<ConsentChange>) {
    if answered_by_provider {
        return (format!("help{}", provider_note(true)), None);
    }
    let text = help_text(b.input.settings);
    match b.reply("help", Kind::Compliance, None, Some(&text), None) {
        Some(_) => ("help text sent".into(), None),
        None => (
            "help asked by a sender that is not a phone number: no reply possible".into(),
            None,
        ),
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
