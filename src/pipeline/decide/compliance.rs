//! The compliance stage: STOP (and synonyms), START/UNSTOP, YES from a
//! member who opted out, HELP/INFO, and the provider's own reading
//! (Twilio's `OptOutType`). A keyword changes consent, sends the one
//! confirmation the carrier rules ask for, and ends the pipeline (after
//! crisis): it is never a survey answer.
//!
//! The answer is in the member's language (`member.language`, English when
//! Hearth has no texts in it); to a number that is no member's, in the
//! language the text was written in (a Spanish opt-out or AYUDA: Spanish).

use super::builder::Builder;
use super::sender::Sender;
use super::verdict::SurveyVerdict;
use crate::domain::member::{ConsentAction, Member};
use crate::domain::message::{InboundRow, Kind};
use crate::pipeline::keywords::{Keyword, Reading};
use crate::settings::Said;
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
    let ours = input.keywords.read(input.text);
    let reading = match (provider_said, ours) {
        // The provider's keyword, read with our own reading's language
        // and scope when both say the same.
        (Some(k), Some(r)) if r.keyword == k => Some(r),
        (Some(k), _) => Some(Reading {
            keyword: k,
            spanish: false,
            scoped: false,
        }),
        (None, r) => r,
    }
    .filter(|r| is_a_keyword_here(r.keyword, input.facts));
    let keyword = reading.map(|r| r.keyword);
    let Some(reading) = reading else {
        return Compliance {
            keyword: None,
            action: None,
            consent: None,
            survey: SurveyVerdict::none(),
            survey_update: None,
        };
    };
    let k = reading.keyword;
    let (action, consent) = act(b, reading, from.member(), provider_said.is_some());
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
    reading: Reading,
    member: Option<&Member>,
    answered_by_provider: bool,
) -> (String, Option<ConsentChange>) {
    let language = answer_language(b, &reading, member);
    match reading.keyword {
        Keyword::Stop => stop(b, &language, reading.scoped, member, answered_by_provider),
        Keyword::Start | Keyword::Yes => opt_in(b, &language, member, answered_by_provider),
        Keyword::Help => help(b, &language, answered_by_provider),
    }
}

/// The language of the answer: the member's (English when Hearth has no
/// texts in it); for anyone else, the text's own (Spanish or English).
fn answer_language(b: &Builder<'_>, reading: &Reading, member: Option<&Member>) -> String {
    let settings = b.input.settings;
    match member {
        Some(m) => settings.language(&m.language),
        None if reading.spanish => settings.language("es"),
        None => "en".into(),
    }
}

/// How the action names the answer's language, for people.
fn in_language(language: &str) -> String {
    if language == "en" {
        String::new()
    } else {
        format!(" (in `{language}`)")
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
    language: &str,
    scoped: bool,
    member: Option<&Member>,
    answered_by_provider: bool,
) -> (String, Option<ConsentChange>) {
    let said = if scoped { Said::StopTopic } else { Said::Stop };
    let scope = if scoped {
        "; the request named one topic, and the confirmation says every text stops"
    } else {
        ""
    };
    let Some(m) = member else {
        // Carriers' practice: an opt-out is confirmed whoever sends it.
        let sent = !answered_by_provider && {
            let text = b.input.settings.said(said, language);
            b.reply("stop", Kind::Compliance, None, Some(&text), None)
                .is_some()
        };
        let note = if sent {
            format!("; one confirmation{}", in_language(language))
        } else {
            String::new()
        };
        return (
            format!("opt-out from a number that is no member's: nothing to revoke{note}"),
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
        let text = b.input.settings.said(said, language);
        b.reply("stop", Kind::Compliance, None, Some(&text), None);
    }
    (
        format!(
            "consent revoked; one confirmation{}{scope}{}",
            in_language(language),
            provider_note(answered_by_provider)
        ),
        change(b, m, ConsentAction::Revoked),
    )
}

fn opt_in(
    b: &mut Builder<'_>,
    language: &str,
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
        let text = b.input.settings.said(Said::Start, language);
        b.reply("start", Kind::Compliance, None, Some(&text), None);
    }
    (
        format!(
            "consent granted again; one confirmation{}{}",
            in_language(language),
            provider_note(answered_by_provider)
        ),
        change(b, m, ConsentAction::Granted),
    )
}

fn help(
    b: &mut Builder<'_>,
    language: &str,
    answered_by_provider: bool,
) -> (String, Option<ConsentChange>) {
    if answered_by_provider {
        return (format!("help{}", provider_note(true)), None);
    }
    let text = b.input.settings.said(Said::Help, language);
    match b.reply("help", Kind::Compliance, None, Some(&text), None) {
        Some(_) => (format!("help text sent{}", in_language(language)), None),
        None => (
            "help asked by a sender that is not a phone number: no reply possible".into(),
            None,
        ),
    }
}
