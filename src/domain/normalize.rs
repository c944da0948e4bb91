//! Inbound text prepared for matching: Unicode NFKC, lower case, words
//! without punctuation, text-speak spelled out, letter repeats collapsed.
//!
//! The original text is kept beside it: matching uses [`Normalized::words`],
//! people and the audit trail see [`Normalized::original`].
//!
//! Every word goes through the same steps as every phrase it is compared
//! with ([`phrase_words`]), so `kiiill` matches `kill` and `feel` matches
//! `feeeel` because both become `kil` / `fel`: the collapsed forms are for
//! comparison only and never shown.

use unicode_normalization::UnicodeNormalization;

/// A text ready for matching.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Normalized {
    pub(crate) original: String,
    /// NFKC, lower case, typographic apostrophes and spaces made plain,
    /// whitespace collapsed: readable, for `explain` and keyword checks.
    pub(crate) folded: String,
    /// The words for phrase matching: punctuation dropped, leetspeak read
    /// as letters, text-speak spelled out, letter repeats collapsed.
    pub(crate) words: Vec<String>,
}

pub fn normalize(text: &str) -> Normalized {
    let folded = fold(text);
    let words = match_words(&folded);
    Normalized {
        original: text.to_owned(),
        folded,
        words,
    }
}

/// The words of a phrase from a rule or the crisis floor, prepared exactly
/// as a text's are.
pub(crate) fn phrase_words(phrase: &str) -> Vec<String> {
    match_words(&fold(phrase))
}

/// NFKC, lower case, plain apostrophes, one space between words.
fn fold(text: &str) -> String {
    let lower: String = text
        .nfkc()
        .flat_map(char::to_lowercase)
        .map(|c| match c {
            '\u{2018}' | '\u{2019}' | '\u{02bc}' | '`' | '\u{00b4}' => '\'',
            c if c.is_whitespace() => ' ',
            c => c,
        })
        .collect();
    lower.split_whitespace().collect::<Vec<_>>().join(" ")
}

fn match_words(folded: &str) -> Vec<String> {
    let mut raw: Vec<String> = Vec::new();
    for token in folded.split(|c: char| !(c.is_alphanumeric() || matches!(c, '\'' | '@' | '$'))) {
        let token: String = token.chars().filter(|c| *c != '\'').collect();
        if token.is_empty() {
            continue;
        }
        let token = unleet(&token);
        // `@` and `$` left over (not inside a word) separate words.
        for part in token.split(['@', '$']).filter(|p| !p.is_empty()) {
            raw.push(part.to_owned());
        }
    }
    let mut words = Vec::with_capacity(raw.len());
    for w in raw {
        match spelled_out(&w) {
            Some(expansion) => words.extend(expansion.iter().map(|s| (*s).to_owned())),
            None => words.push(w),
        }
    }
    // `my self`, `any more`, `good bye`: one word, as the phrases write it.
    let mut joined: Vec<String> = Vec::with_capacity(words.len());
    for w in words {
        if let Some(last) = joined.last_mut()
            && matches!(
                (last.as_str(), w.as_str()),
                ("my" | "your" | "him" | "her", "self") | ("any", "more") | ("good", "bye")
            )
        {
            last.push_str(&w);
            continue;
        }
        joined.push(w);
    }
    // `d i e`, `k i l l`: three or more single letters in a row are one
    // word spelled out.
    let mut spaced: Vec<String> = Vec::with_capacity(joined.len());
    let mut run: Vec<String> = Vec::new();
    let flush = |run: &mut Vec<String>, out: &mut Vec<String>| {
        if run.len() >= 3 {
            out.push(run.concat());
        } else {
            out.append(run);
        }
        run.clear();
    };
    for w in joined {
        let mut chars = w.chars();
        if matches!((chars.next(), chars.next()), (Some(c), None) if c.is_alphabetic()) {
            run.push(w);
        } else {
            flush(&mut run, &mut spaced);
            spaced.push(w);
        }
    }
    flush(&mut run, &mut spaced);
    spaced.iter().map(|w| collapse_repeats(w)).collect()
}

/// Digits and symbols inside a word that also has letters are read as the
/// letters they stand for (`su1c1de`, `k!ll` is punctuation, `@` → a):
/// a number alone (`4`, `10`) stays a number.
fn unleet(token: &str) -> String {
    let has_letter = token.chars().any(char::is_alphabetic);
    let has_other = token
        .chars()
        .any(|c| c.is_ascii_digit() || c == '@' || c == '$');
    if !has_letter || !has_other {
        return token.to_owned();
    }
    token
        .chars()
        .map(|c| match c {
            '@' => 'a',
            '$' => 's',
            c => leet_digit(c),
        })
        .collect()
}

/// The letter a digit stands for in leetspeak (`0` → `o`, `1` → `i`, `3`
/// → `e`, `4` → `a`, `5` → `s`, `7` → `t`); any other character as it is.
pub(crate) fn leet_digit(c: char) -> char {
    match c {
        '0' => 'o',
        '1' => 'i',
        '3' => 'e',
        '4' => 'a',
        '5' => 's',
        '7' => 't',
        c => c,
    }
}

/// Text-speak and contractions, spelled out the way the phrases are
/// written.
fn spelled_out(word: &str) -> Option<&'static [&'static str]> {
    Some(match word {
        "im" => &["i", "am"],
        "ive" => &["i", "have"],
        "ill" => &["i", "will"],
        "u" => &["you"],
        "ur" => &["your"],
        "r" => &["are"],
        "2" => &["to"],
        "wanna" => &["want", "to"],
        "gonna" => &["going", "to"],
        "gotta" => &["got", "to"],
        "dont" => &["do", "not"],
        "cant" | "cannot" => &["can", "not"],
        "wont" => &["will", "not"],
        "didnt" => &["did", "not"],
        "isnt" => &["is", "not"],
        "kms" => &["kill", "myself"],
        "kys" => &["kill", "yourself"],
        "unalive" => &["kill"],
        "unaliving" => &["killing"],
        "sewerslide" => &["suicide"],
        "selfharm" => &["self", "harm"],
        "bc" | "cuz" | "coz" => &["because"],
        "rn" => &["right", "now"],
        "idk" => &["i", "do", "not", "know"],
        "idc" => &["i", "do", "not", "care"],
        "ppl" => &["people"],
        "w" => &["with"],
        "pls" | "plz" => &["please"],
        _ => return None,
    })
}

/// `kiiilll` → `kil`: each run of one letter becomes one letter (digits
/// are left alone: `100` stays `100`).
fn collapse_repeats(word: &str) -> String {
    let mut out = String::with_capacity(word.len());
    let mut last: Option<char> = None;
    for c in word.chars() {
        if Some(c) == last && c.is_alphabetic() {
            continue;
        }
        out.push(c);
        last = Some(c);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn words(text: &str) -> Vec<String> {
        normalize(text).words
    }

    #[test]
    fn case_width_punctuation_and_spacing_do_not_matter() {
        assert_eq!(words("ＳＴＯＰ"), ["stop"]);
        assert_eq!(words("  I  WANT\tto   die!!! "), ["i", "want", "to", "die"]);
        assert_eq!(normalize("I’m   done…").folded, "i'm done...");
    }

    #[test]
    fn repeats_leetspeak_and_text_speak_are_read_as_words() {
        assert_eq!(words("I wanna diiieee"), ["i", "want", "to", "die"]);
        assert_eq!(words("su1c1de"), ["suicide"]);
        assert_eq!(words("kms"), ["kil", "myself"]);
        assert_eq!(words("kill my self"), ["kil", "myself"]);
        assert_eq!(words("any more, good bye"), ["anymore", "godbye"]);
        assert_eq!(
            words("im gonna end it"),
            ["i", "am", "going", "to", "end", "it"]
        );
        assert_eq!(words("i can't"), ["i", "can", "not"]);
        // Numbers stay numbers: a survey answer of 4 is not the letter a.
        assert_eq!(words("4"), ["4"]);
        assert_eq!(words("10 out of 10"), ["10", "out", "of", "10"]);
    }

    #[test]
    fn phrases_and_texts_are_prepared_alike() {
        assert_eq!(phrase_words("Kill myself"), words("KIIILL   MYSELF"));
        assert_eq!(phrase_words("want to die"), words("want 2 die"));
    }

    #[test]
    fn no_text_makes_normalising_panic() {
        let mut rng = crate::testing::Rng::new(0x2545_f491_4f6c_dd1d);
        let alphabet: Vec<char> = "aeiklmosty 0123456789'’!?.,@$ＳＴé\u{301}ß\u{fb01}\u{200b}\t\n"
            .chars()
            .collect();
        for _ in 0..20_000 {
            let x = rng.next();
            let len = (x % 40) as usize;
            let text: String = (0..len)
                .map(|i| alphabet[((x >> (i % 50)) as usize + i * 11) % alphabet.len()])
                .collect();
            let n = normalize(&text);
            assert!(n.words.iter().all(|w| !w.is_empty()), "{text:?}");
        }
    }
}
