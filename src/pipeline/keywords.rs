//! Compliance keywords: opting out, opting back in, asking for help.
//!
//! The reply pipeline checks them right after the crisis check. The classification
//! follows `COMPLIANCE.md`: STOP, QUIT, END, REVOKE, OPT OUT, CANCEL,
//! UNSUBSCRIBE (and carriers' STOPALL, OPTOUT) alone are always an opt-out,
//! and so are the Spanish BAJA, ALTO, PARAR, CANCELAR and DETENER; START,
//! UNSTOP and YES opt back in; HELP, INFO and AYUDA ask for help. Case,
//! width, punctuation, spacing and repeated letters do not matter
//! (`Stop!!`, `ＳＴＯＰ`, `stopppp`).
//!
//! Beyond the bare words, a message that **starts** with an opt-out word
//! set off by punctuation (`STOP, I can't do this anymore`) is an opt-out,
//! and so is any sentence that asks, in English or Spanish, for the texts
//! to stop (`please stop texting me`, `no more texts`, `dejen de
//! escribirme`): the small grammar in [`optout`]. A keyword inside ordinary
//! text (`I can't stop crying`, `cancel my appointment`) is not: it is left
//! to the rest of the pipeline and to the people who read it.

mod optout;

use crate::domain::normalize::{Normalized, phrase_words};

#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub(crate) enum Keyword {
    /// Revoke consent.
    Stop,
    /// Opt back in: START or UNSTOP.
    Start,
    /// YES: opts back in a member who opted out; for anyone else it is an
    /// ordinary answer (to a yes/no question, say).
    Yes,
    Help,
}

pub(crate) const STOP_WORDS: &[&str] = &[
    "stop",
    "stopall",
    "stop all",
    "unsubscribe",
    "cancel",
    "end",
    "quit",
    "revoke",
    "optout",
    "opt out",
];
/// Spanish opt-out words, alone (carriers' and the MMA's practice:
/// docs/REPLIES.md names the sources).
pub(crate) const SPANISH_STOP_WORDS: &[&str] = &[
    "baja",
    "alto",
    "parar",
    "cancelar",
    "detener",
    "dar de baja",
    "darme de baja",
];
pub(crate) const START_WORDS: &[&str] = &["start", "unstop"];
pub(crate) const HELP_WORDS: &[&str] = &["help", "info"];
pub(crate) const SPANISH_HELP_WORDS: &[&str] = &["ayuda"];

/// Whole messages that mean "stop" without a texting verb; every other
/// sentence is the grammar's ([`optout`]).
pub(crate) const STOP_PHRASES: &[&str] = &[
    "please stop",
    "stop please",
    "stop it",
    "stop now",
    "just stop",
    "stop stop",
];

/// A compliance keyword as read from a text: which, and what the answer
/// to it needs to know.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Reading {
    pub(crate) keyword: Keyword,
    /// Written in Spanish (`BAJA`, `dejen de escribirme`, `AYUDA`): the
    /// answer to a sender whose language Hearth does not know is Spanish.
    pub(crate) spanish: bool,
    /// An opt-out that named one topic or kind of message ("stop texting
    /// me about the dentist"): it revokes everything, and its confirmation
    /// says so.
    pub(crate) scoped: bool,
}

impl Reading {
    fn plain(keyword: Keyword) -> Reading {
        Reading {
            keyword,
            spanish: false,
            scoped: false,
        }
    }
}

/// The keyword sets, with a deployment's additions (Spanish `ALTO`,
/// `PARAR`, say). Additions extend the standard words, never replace them.
#[derive(Debug, Clone)]
pub(crate) struct Keywords {
    stop: Vec<Vec<String>>,
    spanish_stop: Vec<Vec<String>>,
    stop_phrases: Vec<Vec<String>>,
    start: Vec<Vec<String>>,
    help: Vec<Vec<String>>,
    spanish_help: Vec<Vec<String>>,
    yes: Vec<String>,
}

impl Default for Keywords {
    fn default() -> Keywords {
        Keywords::with_additions(&[], &[], &[])
    }
}

impl Keywords {
    pub(crate) fn with_additions(stop: &[String], start: &[String], help: &[String]) -> Keywords {
        let words = |standard: &[&str], extra: &[String]| -> Vec<Vec<String>> {
            standard
                .iter()
                .map(|w| phrase_words(w))
                .chain(extra.iter().map(|w| phrase_words(w)))
                .filter(|w| !w.is_empty())
                .collect()
        };
        Keywords {
            stop: words(STOP_WORDS, stop),
            spanish_stop: words(SPANISH_STOP_WORDS, &[]),
            stop_phrases: words(STOP_PHRASES, &[]),
            start: words(START_WORDS, start),
            help: words(HELP_WORDS, help),
            spanish_help: words(SPANISH_HELP_WORDS, &[]),
            yes: phrase_words("yes"),
        }
    }

    /// The keyword a text is, if it is one.
    #[cfg(test)]
    pub(crate) fn classify(&self, text: &Normalized) -> Option<Keyword> {
        self.read(text).map(|r| r.keyword)
    }

    /// The keyword a text is, with its language and scope.
    pub(crate) fn read(&self, text: &Normalized) -> Option<Reading> {
        let words = &text.words;
        let spanish = |keyword| Reading {
            keyword,
            spanish: true,
            scoped: false,
        };
        if self.spanish_stop.contains(words) {
            return Some(spanish(Keyword::Stop));
        }
        if self.stop.contains(words) || self.stop_phrases.contains(words) {
            return Some(Reading::plain(Keyword::Stop));
        }
        if self.start.contains(words) {
            return Some(Reading::plain(Keyword::Start));
        }
        if *words == self.yes {
            return Some(Reading::plain(Keyword::Yes));
        }
        if self.spanish_help.contains(words) {
            return Some(spanish(Keyword::Help));
        }
        if self.help.contains(words) {
            return Some(Reading::plain(Keyword::Help));
        }
        // `STOP, I can't do this anymore`: an opt-out word set off by
        // punctuation at the start of a longer message.
        let (first, rest) = first_word(&text.folded);
        let set_off = rest
            .trim_start()
            .starts_with([',', '.', '!', ';', ':', '-', '\u{2014}', '\u{2013}']);
        if set_off {
            let first = phrase_words(first);
            if self.stop.contains(&first) {
                return Some(Reading::plain(Keyword::Stop));
            }
            if self.spanish_stop.contains(&first) {
                return Some(spanish(Keyword::Stop));
            }
        }
        optout::read(&text.folded).map(|o| Reading {
            keyword: Keyword::Stop,
            spanish: o.spanish,
            scoped: o.scoped,
        })
    }
}

/// The first run of letters and digits, and what follows it.
fn first_word(folded: &str) -> (&str, &str) {
    let start = folded.find(char::is_alphanumeric).unwrap_or(folded.len());
    let tail = &folded[start..];
    let end = tail
        .find(|c: char| !c.is_alphanumeric())
        .unwrap_or(tail.len());
    (&tail[..end], &tail[end..])
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::normalize::normalize;

    fn classify(text: &str) -> Option<Keyword> {
        Keywords::default().classify(&normalize(text))
    }

    #[test]
    fn the_standard_words_alone_in_any_case_spacing_or_punctuation() {
        for t in [
            "STOP",
            "stop",
            " Stop. ",
            "STOP!!!",
            "stopppp",
            "ＳＴＯＰ",
            "StopAll",
            "stop all",
            "UNSUBSCRIBE",
            "cancel",
            "End",
            "quit",
            "REVOKE",
            "optout",
            "opt out",
            "Opt-Out",
            "please stop",
            "Stop texting me.",
            "remove me",
            "no more texts",
        ] {
            assert_eq!(classify(t), Some(Keyword::Stop), "{t:?}");
        }
        for t in ["START", "start!", "Unstop"] {
            assert_eq!(classify(t), Some(Keyword::Start), "{t:?}");
        }
        for t in ["YES", "yes.", "Yesss"] {
            assert_eq!(classify(t), Some(Keyword::Yes), "{t:?}");
        }
        for t in ["HELP", "help?", "Info"] {
            assert_eq!(classify(t), Some(Keyword::Help), "{t:?}");
        }
    }

    #[test]
    fn an_opt_out_word_set_off_at_the_start_of_a_longer_message_counts() {
        assert_eq!(
            classify("STOP, I can't do this anymore, I want to die"),
            Some(Keyword::Stop)
        );
        assert_eq!(classify("Quit! leave me alone"), Some(Keyword::Stop));
        assert_eq!(classify("stop - not interested"), Some(Keyword::Stop));
    }

    #[test]
    fn keywords_inside_ordinary_text_are_not_keywords() {
        for t in [
            "I can't stop crying",
            "can you stop by later?",
            "cancel my appointment please",
            "the end of the session was hard",
            "yes please",
            "I need help with my homework",
            "stopping by the pharmacy",
            "Stopwatch",
            "4",
            "",
            "...",
        ] {
            assert_eq!(classify(t), None, "{t:?}");
        }
    }

    #[test]
    fn a_deployment_adds_words_and_keeps_the_standard_ones() {
        let k = Keywords::with_additions(
            &["alto".into(), "parar".into()],
            &["comenzar".into()],
            &["ayuda".into()],
        );
        assert_eq!(k.classify(&normalize("ALTO")), Some(Keyword::Stop));
        assert_eq!(k.classify(&normalize("Parar.")), Some(Keyword::Stop));
        assert_eq!(k.classify(&normalize("STOP")), Some(Keyword::Stop));
        assert_eq!(k.classify(&normalize("comenzar")), Some(Keyword::Start));
        assert_eq!(k.classify(&normalize("ayuda")), Some(Keyword::Help));
    }
}
