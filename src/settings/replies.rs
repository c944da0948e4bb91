//! `replies:`: what the reply pipeline says on its own behalf (HELP, the
//! STOP/START confirmations, the crisis reply), with its defaults and
//! their checks. The texts in each language are in [`languages`].

mod languages;

use std::collections::BTreeMap;

use self::languages::{DEFAULT_CONTACT, DEFAULT_FREQUENCY, DEFAULT_PROGRAM};
pub use self::languages::{LanguageReplies, Said};
use super::raw::RawReplies;

/// What the reply pipeline says on its own behalf (`replies:`): the
/// program details HELP and the STOP/START confirmations carry, extra
/// compliance words, and whether unknown senders get an answer. Defaults,
/// not constants: the clinic's compliance officer sets them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReplySettings {
    /// The program's name, as confirmations and HELP name it.
    pub program: String,
    /// Who to reach, for HELP ("call 555-0100", a web address).
    pub contact: String,
    /// How often members get texts, for HELP ("up to 1 msg/day").
    pub frequency: String,
    /// Extra opt-out, opt-in and help words (`ALTO`, `PARAR`, `AYUDA`),
    /// added to the standard ones, never replacing them.
    pub stop_words: Vec<String>,
    pub start_words: Vec<String>,
    pub help_words: Vec<String>,
    /// Sent to a number that is not a member's or a contact's; none by
    /// default (such texts are stored and counted only).
    pub unknown_sender_reply: Option<String>,
    /// The crisis reply when the crisis check matched and the rules give
    /// no `reply:` template for it (or it cannot be rendered).
    pub crisis_text: String,
    /// HELP and the STOP/START confirmations per language
    /// (`replies.languages`), keyed by [`language_key`]; English and
    /// Spanish are built in.
    pub languages: BTreeMap<String, LanguageReplies>,
    /// The reply to a further text while the sender has an unresolved
    /// critical incident (at most one an hour per incident), in English
    /// and, for members whose `language` is Spanish, in Spanish.
    pub follow_up_text: String,
}

/// The follow-up reply's default (issue 17).
pub const DEFAULT_FOLLOW_UP_TEXT: &str =
    "A person has been told. If you are in danger now, call 911 or call or text 988.";

/// The crisis reply Hearth sends when the rules name none (COMPLIANCE.md:
/// 988, 911, Crisis Text Line).
pub const DEFAULT_CRISIS_TEXT: &str = "If you are in danger or may act on thoughts of hurting yourself, call 911 now. Call or text 988 any time, day or night, for the 988 Suicide & Crisis Lifeline, or text HOME to 741741. A person from your group has been told.";

impl Default for ReplySettings {
    fn default() -> Self {
        ReplySettings {
            program: DEFAULT_PROGRAM.into(),
            contact: DEFAULT_CONTACT.into(),
            frequency: DEFAULT_FREQUENCY.into(),
            stop_words: Vec::new(),
            start_words: Vec::new(),
            help_words: Vec::new(),
            unknown_sender_reply: None,
            crisis_text: DEFAULT_CRISIS_TEXT.into(),
            languages: BTreeMap::new(),
            follow_up_text: DEFAULT_FOLLOW_UP_TEXT.into(),
        }
    }
}

pub(super) fn reply_settings(raw: RawReplies) -> Result<ReplySettings, String> {
    let d = ReplySettings::default();
    let text = |key: &str, v: Option<String>, default: String| -> Result<String, String> {
        match v {
            None => Ok(default),
            Some(v) if v.trim().is_empty() => Err(format!(
                "replies.{key} is empty\n  hint: leave `{key}` out for the default `{default}`"
            )),
            Some(v) => Ok(v.trim().to_owned()),
        }
    };
    let words = |key: &str, v: Vec<String>| -> Result<Vec<String>, String> {
        v.into_iter()
            .map(|w| {
                let folded = crate::domain::normalize::phrase_words(&w).join(" ");
                if folded.is_empty() {
                    Err(format!(
                        "replies.{key}: `{w}` has no letters or digits to match\n  hint: write the word a member would text, like `ALTO`"
                    ))
                } else {
                    Ok(folded)
                }
            })
            .collect()
    };
    Ok(ReplySettings {
        program: text("program", raw.program, d.program)?,
        contact: text("contact", raw.contact, d.contact)?,
        frequency: text("frequency", raw.frequency, d.frequency)?,
        stop_words: words("stop_words", raw.stop_words)?,
        start_words: words("start_words", raw.start_words)?,
        help_words: words("help_words", raw.help_words)?,
        unknown_sender_reply: match raw.unknown_sender_reply {
            Some(t) if t.trim().is_empty() => {
                return Err("replies.unknown_sender_reply is empty\n  hint: leave it out to send unknown senders nothing".into());
            }
            t => t.map(|t| t.trim().to_owned()),
        },
        crisis_text: {
            let t = text("crisis_text", raw.crisis_text, d.crisis_text)?;
            if !t.contains("988") && !t.contains("911") {
                return Err(format!(
                    "replies.crisis_text does not give 988 or 911: `{t}`\n  hint: a crisis reply must say how to reach help now, like the default: {DEFAULT_CRISIS_TEXT}"
                ));
            }
            t
        },
        languages: languages::languages(raw.languages)?,
        follow_up_text: help_now(
            "follow_up_text",
            text("follow_up_text", raw.follow_up_text, d.follow_up_text)?,
        )?,
    })
}

/// A follow-up reply must say how to reach help now (988 or 911).
fn help_now(key: &str, t: String) -> Result<String, String> {
    if t.contains("988") || t.contains("911") {
        return Ok(t);
    }
    Err(format!(
        "replies.{key} does not give 988 or 911: `{t}`\n  hint: it answers someone in a crisis conversation; say how to reach help now, like the default: {DEFAULT_FOLLOW_UP_TEXT}"
    ))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::settings::testing::parse;

    #[test]
    fn replies_have_clinic_defaults_take_extra_words_and_refuse_what_cannot_work() {
        let d = parse("", &[]).unwrap().replies;
        assert_eq!(d, ReplySettings::default());
        assert!(d.crisis_text.contains("988") && d.crisis_text.contains("911"));
        assert_eq!(d.unknown_sender_reply, None);
        assert_eq!(
            d.follow_up_text,
            "A person has been told. If you are in danger now, call 911 or call or text 988."
        );
        let es = d.follow_up(&d.language("es-MX"));
        assert!(
            es.starts_with("Ya le avisamos") && es.contains("988"),
            "{es}"
        );
        assert_eq!(d.follow_up(&d.language("fr")), d.follow_up_text);
        let s = parse(
            "replies: { follow_up_text: \"We told Dana. Call 988 if you need to.\" }\n",
            &[],
        )
        .unwrap()
        .replies;
        assert_eq!(s.follow_up_text, "We told Dana. Call 988 if you need to.");

        let s = parse(
            "replies: { program: Maple texts, contact: call 555-0100, stop_words: [ALTO, \"Opt-Out Please\"], unknown_sender_reply: Not monitored. }\n",
            &[],
        )
        .unwrap()
        .replies;
        assert_eq!(s.program, "Maple texts");
        assert_eq!(s.contact, "call 555-0100");
        assert_eq!(s.frequency, ReplySettings::default().frequency);
        assert_eq!(s.stop_words, vec!["alto", "opt out please"]);
        assert_eq!(s.unknown_sender_reply.as_deref(), Some("Not monitored."));

        for (yaml, names) in [
            ("replies: { program: \"  \" }", "replies.program is empty"),
            (
                "replies: { stop_words: [\"!!\"] }",
                "replies.stop_words: `!!`",
            ),
            (
                "replies: { crisis_text: Please call us. }",
                "replies.crisis_text does not give 988 or 911",
            ),
            (
                "replies: { unknown_sender_reply: \"\" }",
                "unknown_sender_reply is empty",
            ),
            ("replies: { programme: x }", "programme"),
            (
                "replies: { follow_up_text: Someone will call. }",
                "replies.follow_up_text does not give 988 or 911",
            ),
            (
                "replies: { languages: { es: { follow_up: Alguien le llamará. } } }",
                "replies.languages.es.follow_up does not give 988 or 911",
            ),
        ] {
            let err = parse(&format!("{yaml}\n"), &[]).unwrap_err().to_string();
            assert!(err.contains(names), "{yaml}: {err}");
        }
    }
}
