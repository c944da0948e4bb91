//! Compliance keywords: opting out, opting back in, asking for help.
//!
//! The reply pipeline checks them right after the crisis check. The classification
//! follows `COMPLIANCE.md`: STOP, QUIT, END, REVOKE, OPT OUT, CANCEL,
//! UNSUBSCRIBE (and carriers' STOPALL, OPTOUT) alone are always an opt-out;
//! START, UNSTOP and YES opt back in; HELP and INFO ask for help. Case,
//! width, punctuation, spacing and repeated letters do not matter
//! (`Stop!!`, `ＳＴＯＰ`, `stopppp`).
//!
//! Beyond the bare words, a message that **starts** with an opt-out word
//! set off by punctuation (`STOP, I can't do this anymore`) is an opt-out,
//! and so are the common whole-message phrasings in [`STOP_PHRASES`]
//! (`please stop`, `stop texting me`). A keyword inside ordinary text
//! (`I can't stop crying`, `cancel my appointment`) is not: it is left to
//! the rest of the pipeline and to the people who read it.

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
pub(crate) const START_WORDS: &[&str] = &["start", "unstop"];
pub(crate) const HELP_WORDS: &[&str] = &["help", "info"];

/// Whole messages that mean "stop texting me".
pub(crate) const STOP_PHRASES: &[&str] = &[
    "please stop",
    "stop please",
    "stop it",
    "stop texting me",
    "stop texting",
    "stop messaging me",
    "stop sending me messages",
    "stop sending me texts",
    "unsubscribe me",
    "remove me",
    "remove me from this list",
    "take me off this list",
    "take me off the list",
    "opt me out",
    "no more texts",
    "no more messages",
];

/// The keyword sets, with a deployment's additions (Spanish `ALTO`,
/// `PARAR`, say). Additions extend the standard words, never replace them.
#[derive(Debug, Clone)]
pub(crate) struct Keywords {
    stop: Vec<Vec<String>>,
    stop_phrases: Vec<Vec<String>>,
    start: Vec<Vec<String>>,
    help: Vec<Vec<String>>,
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
            stop_phrases: words(STOP_PHRASES, &[]),
            start: words(START_WORDS, start),
            help: words(HELP_WORDS, help),
            yes: phrase_words("yes"),
        }
    }

    /// The keyword a text is, if it is one.
    pub(crate) fn classify(&self, text: &Normalized) -> Option<Keyword> {
        let words = &text.words;
        if self.stop.contains(words) || self.stop_phrases.contains(words) {
            return Some(Keyword::Stop);
        }
        if self.start.contains(words) {
            return Some(Keyword::Start);
        }
        if *words == self.yes {
            return Some(Keyword::Yes);
        }
        if self.help.contains(words) {
            return Some(Keyword::Help);
        }
        // `STOP, I can't do this anymore`: an opt-out word set off by
        // punctuation at the start of a longer message.
        let (first, rest) = first_word(&text.folded);
        let set_off = rest
            .trim_start()
            .starts_with([',', '.', '!', ';', ':', '-', '\u{2014}', '\u{2013}']);
        if set_off && self.stop.contains(&phrase_words(first)) {
            return Some(Keyword::Stop);
        }
        None
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
