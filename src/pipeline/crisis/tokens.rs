//! A text cut into the words the crisis detector reads: sentence by
//! sentence, accents dropped, leetspeak and text-speak spelled out,
//! Spanish clitics moved in front of their verb, emoji kept as words,
//! and each word's English and Spanish Snowball stems beside it.
//!
//! It starts from [`crate::domain::normalize::Normalized::folded`] (NFKC,
//! lower case) rather than from its matching words, because those have
//! every letter repeat collapsed (`pills` → `pils`), which the stemmers
//! and the words a clinical lead reads in `explain` both need intact; only
//! runs of three or more (`dieeee`) are collapsed here.

use std::sync::LazyLock;

use rust_stemmers::{Algorithm, Stemmer};
use unicode_normalization::UnicodeNormalization;

static EN: LazyLock<Stemmer> = LazyLock::new(|| Stemmer::create(Algorithm::English));
static ES: LazyLock<Stemmer> = LazyLock::new(|| Stemmer::create(Algorithm::Spanish));

/// One word of a text, with where it sits.
#[derive(Debug, Clone)]
pub(crate) struct Token {
    /// The word as read: `pills`, `matar`, `⚰`.
    pub(crate) form: String,
    /// English stem, a final `e` dropped (`killing` and `kill` meet).
    pub(crate) en: String,
    /// Spanish stem.
    pub(crate) es: String,
    /// Which sentence of the text it is in.
    pub(crate) sentence: u16,
}

/// Which stemmer a lexicon word is compared with.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub(crate) enum Lang {
    En,
    Es,
}

/// The English key of a word: its Snowball stem without a final `e`
/// (the stemmer gives `kile` for `kiling` but `kill` for `kill`).
pub(crate) fn stem(word: &str, lang: Lang) -> String {
    match lang {
        Lang::En => {
            let s = EN.stem(word);
            s.trim_end_matches('e').to_owned()
        }
        Lang::Es => ES.stem(word).into_owned(),
    }
}

/// Emoji that stand for a construct, as the detector reads them (the
/// variation selector and skin tones are dropped).
pub(crate) const EMOJI: &[char] = &[
    '⚰', '🪦', '🔫', '💊', '🪢', '🔪', '🩸', '💉', '🌉', '🚂', '🥃', '🍷', '👋', '✌', '💔', '🖤',
    '🗑', '🔥', '🧊', '😵', '🥀',
];

/// The text's words, sentence by sentence.
pub(crate) fn tokenize(folded: &str) -> Vec<Token> {
    let mut out = Vec::new();
    let mut sentence: u16 = 0;
    let mut word = String::new();
    let flush = |word: &mut String, sentence: u16, out: &mut Vec<Token>| {
        if !word.is_empty() {
            push_word(word, sentence, out);
            word.clear();
        }
    };
    for c in folded.chars() {
        if c.is_alphanumeric() {
            word.push(c);
        } else if c == '\'' {
            // `don't` → `dont`, as people also type it.
        } else if EMOJI.contains(&c) {
            flush(&mut word, sentence, &mut out);
            out.push(Token {
                form: c.to_string(),
                en: c.to_string(),
                es: c.to_string(),
                sentence,
            });
        } else {
            flush(&mut word, sentence, &mut out);
            if matches!(c, '.' | '!' | '?' | ';' | '\n' | '¿' | '¡') {
                sentence = sentence.saturating_add(1);
            }
        }
    }
    flush(&mut word, sentence, &mut out);
    join_spelled(out)
}

/// `d i e`, `k i l l`: three or more single letters in a row, one word.
fn join_spelled(tokens: Vec<Token>) -> Vec<Token> {
    let single = |t: &Token| t.form.chars().count() == 1 && t.form.chars().all(char::is_alphabetic);
    let mut out: Vec<Token> = Vec::with_capacity(tokens.len());
    let mut run: Vec<Token> = Vec::new();
    let flush = |run: &mut Vec<Token>, out: &mut Vec<Token>| {
        if run.len() >= 3 {
            let form: String = run.iter().map(|t| t.form.as_str()).collect();
            let sentence = run[0].sentence;
            out.push(Token {
                en: stem(&form, Lang::En),
                es: stem(&form, Lang::Es),
                form,
                sentence,
            });
            run.clear();
        } else {
            out.append(run);
        }
    };
    for t in tokens {
        if single(&t) && run.last().is_none_or(|l| l.sentence == t.sentence) {
            run.push(t);
        } else {
            flush(&mut run, &mut out);
            if single(&t) {
                run.push(t);
            } else {
                out.push(t);
            }
        }
    }
    flush(&mut run, &mut out);
    out
}

fn push_word(raw: &str, sentence: u16, out: &mut Vec<Token>) {
    let word = collapse_runs(&unleet(&strip_accents(raw)));
    let mut push = |form: &str| {
        out.push(Token {
            en: stem(form, Lang::En),
            es: stem(form, Lang::Es),
            form: form.to_owned(),
            sentence,
        });
    };
    if let Some(expansion) = spelled_out(&word) {
        expansion.iter().for_each(|w| push(w));
    } else if let Some((verb, clitic)) = enclitic(&word) {
        push(clitic);
        push(verb);
    } else {
        push(&word);
    }
}

/// `matarme` → (`matar`, `me`): an infinitive or gerund with a clitic
/// pronoun attached reads as the pronoun before the verb, so "quiero
/// matarme" and "me quiero matar" meet the same lexicon entry.
fn enclitic(word: &str) -> Option<(&str, &'static str)> {
    for clitic in ["me", "te", "se", "nos"] {
        if let Some(verb) = word.strip_suffix(clitic)
            && verb.len() >= 4
            && ["ar", "er", "ir", "ando", "iendo"]
                .iter()
                .any(|e| verb.ends_with(e))
        {
            let clitic: &'static str = match clitic {
                "me" => "me",
                "te" => "te",
                "se" => "se",
                _ => "nos",
            };
            return Some((verb, clitic));
        }
    }
    None
}

pub(crate) fn strip_accents(word: &str) -> String {
    if word.is_ascii() {
        return word.to_owned();
    }
    word.nfd()
        .filter(|c| !unicode_normalization::char::is_combining_mark(*c))
        .collect()
}

/// Digits inside a word that also has letters are the letters they stand
/// for (`d1e`, `su1c1de`); `9mm` and `800mg` keep their number.
fn unleet(word: &str) -> String {
    let letters = word.chars().filter(|c| c.is_alphabetic()).count();
    let digits = word.chars().filter(char::is_ascii_digit).count();
    if letters == 0 || digits == 0 || word.starts_with(|c: char| c.is_ascii_digit()) {
        return word.to_owned();
    }
    word.chars()
        .map(crate::domain::normalize::leet_digit)
        .collect()
}

/// Runs of three or more of one letter become one (`dieeee`, `pleeease`);
/// doubles stay (`pills`, `kill`).
fn collapse_runs(word: &str) -> String {
    let chars: Vec<char> = word.chars().collect();
    let mut out = String::with_capacity(word.len());
    let mut i = 0;
    while i < chars.len() {
        let mut j = i;
        while j < chars.len() && chars[j] == chars[i] {
            j += 1;
        }
        let run = if j - i >= 3 && chars[i].is_alphabetic() {
            1
        } else {
            j - i
        };
        (0..run).for_each(|_| out.push(chars[i]));
        i = j;
    }
    out
}

/// Text-speak and contractions as the lexicons write them out.
fn spelled_out(word: &str) -> Option<&'static [&'static str]> {
    Some(match word {
        "im" => &["i", "am"],
        "ive" => &["i", "have"],
        "id" => &["i", "would"],
        "u" => &["you"],
        "ur" => &["your"],
        "wanna" => &["want", "to"],
        "gonna" | "gunna" | "finna" => &["going", "to"],
        "ima" | "imma" => &["i", "am", "going", "to"],
        "dont" => &["do", "not"],
        "cant" | "cannot" => &["can", "not"],
        "wont" => &["will", "not"],
        "didnt" => &["did", "not"],
        "isnt" => &["is", "not"],
        "wasnt" => &["was", "not"],
        "wouldnt" => &["would", "not"],
        "kms" | "kmys" => &["kill", "myself"],
        "kys" => &["kill", "yourself"],
        "ctb" => &["catch", "the", "bus"],
        "unalive" | "unalived" => &["kill"],
        "unaliving" => &["killing"],
        "sewerslide" | "suicde" | "sucide" | "suicid" => &["suicide"],
        "selfharm" | "sh" | "shd" => &["self", "harm"],
        "od" | "ods" | "oded" => &["overdose"],
        "rn" => &["right", "now"],
        "tn" | "tonite" | "2nite" => &["tonight"],
        "tmrw" | "tmr" | "tomoro" | "tmrow" => &["tomorrow"],
        "idk" => &["i", "do", "not", "know"],
        "idc" => &["i", "do", "not", "care"],
        "myself" | "myslef" | "mysef" => &["myself"],
        "pls" | "plz" => &["please"],
        "kiero" => &["quiero"],
        "q" => &["que"],
        "xq" | "pq" | "porq" => &["porque"],
        "nd" => &["nada"],
        "tmb" | "tb" => &["tambien"],
        _ => return None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn forms(text: &str) -> Vec<String> {
        tokenize(&crate::domain::normalize::normalize(text).folded)
            .into_iter()
            .map(|t| t.form)
            .collect()
    }

    #[test]
    fn words_keep_their_doubles_and_lose_accents_leet_and_stretching() {
        assert_eq!(
            forms("I wanna d1e, pills!!"),
            ["i", "want", "to", "die", "pills"]
        );
        assert_eq!(forms("dieeee"), ["die"]);
        assert_eq!(forms("Adiós, mamá"), ["adios", "mama"]);
    }

    #[test]
    fn both_clitic_orders_read_alike() {
        assert_eq!(forms("quiero matarme"), ["quiero", "me", "matar"]);
        assert_eq!(forms("me quiero matar"), ["me", "quiero", "matar"]);
    }

    #[test]
    fn emoji_are_words_and_sentences_are_counted() {
        let t = tokenize(&crate::domain::normalize::normalize("bye 👋⚰️. soon").folded);
        let f: Vec<&str> = t.iter().map(|t| t.form.as_str()).collect();
        assert_eq!(f, ["bye", "👋", "⚰", "soon"]);
        assert_eq!(t[3].sentence, 1);
    }

    #[test]
    fn inflections_share_a_stem() {
        for (a, b) in [("killing", "kill"), ("dying", "die"), ("pills", "pill")] {
            assert_eq!(stem(a, Lang::En), stem(b, Lang::En), "{a} {b}");
        }
        assert_eq!(stem("matando", Lang::Es), stem("matar", Lang::Es));
    }
}
