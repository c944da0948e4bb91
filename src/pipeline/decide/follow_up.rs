//! The follow-up stage: while the sender (a member, or a number that is
//! no member's) has an unresolved critical incident, every further text
//! of theirs is kept on that incident as evidence, forwarded to a person
//! (the handler does it once the store has applied the decision:
//! [`crate::escalate::follow_up`]), and answered at most once an hour per
//! incident with a short "a person has been told" reply, in the member's
//! language.
//!
//! A text that is itself a crisis match is the crisis stage's: its hit
//! joins the incident (so its evidence is there) and the crisis reply
//! goes, every time; this stage only has it forwarded. A compliance
//! keyword keeps its own answer (STOP's one confirmation, HELP) and gets
//! no follow-up reply; the text is still kept and forwarded.

use chrono::TimeDelta;

use super::builder::Builder;
use super::sender::Sender;
use super::verdict::{CrisisVerdict, FollowUpVerdict};
use crate::domain::message::Kind;
use crate::pipeline::keywords::Keyword;
use crate::store::traits::reply::FollowUp;

/// At most one follow-up reply per incident in this long.
pub(crate) const REPLY_EVERY: TimeDelta = TimeDelta::hours(1);

/// The most characters of the text the evidence keeps.
const EVIDENCE_CHARS: usize = 500;

pub(super) fn stage(
    b: &mut Builder<'_>,
    from: &Sender<'_>,
    crisis: &CrisisVerdict,
    keyword: Option<Keyword>,
    outcome: &mut Vec<String>,
) -> Option<(FollowUp, FollowUpVerdict)> {
    if matches!(from, Sender::Contact(_)) {
        return None;
    }
    let open = b.input.facts.open_critical.clone()?;
    let mut verdict = FollowUpVerdict {
        incident: open.incident,
        evidence: !crisis.matched,
        replied: false,
        no_reply: None,
    };
    let mut effect = FollowUp {
        incident: open.incident,
        evidence: None,
        reply_key: None,
    };
    outcome.push(format!("follow-up on incident {}", open.incident));
    if crisis.matched {
        verdict.no_reply = Some("the crisis reply answers it".into());
        return Some((effect, verdict));
    }
    let text: String = b.input.text.original.chars().take(EVIDENCE_CHARS).collect();
    effect.evidence = Some(format!("follow-up text: \"{text}\""));
    let recent = open
        .last_reply_at
        .is_some_and(|at| b.input.now - at < REPLY_EVERY);
    verdict.no_reply = if keyword.is_some() {
        Some("a keyword has its own answer".into())
    } else if recent {
        Some("a follow-up reply went within the hour".into())
    } else {
        let body = reply_text(b, from);
        effect.reply_key = b.reply("follow_up", Kind::Crisis, None, Some(&body), None);
        verdict.replied = effect.reply_key.is_some();
        (!verdict.replied).then(|| "the sender cannot be texted".into())
    };
    Some((effect, verdict))
}

/// The follow-up reply in the member's language (built in: English and
/// Spanish; more from `replies.languages`); English for an unknown number.
fn reply_text(b: &Builder<'_>, from: &Sender<'_>) -> String {
    let settings = b.input.settings;
    let language = from
        .member()
        .map_or_else(|| "en".to_owned(), |m| settings.language(&m.language));
    settings.follow_up(&language)
}
