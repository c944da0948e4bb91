//! Phrase matching for the rules' critical keywords: whole words in
//! order, allowing inflections and one-letter slips in long words
//! (`suicde`), after [`crate::domain::normalize`]. A rule's phrase adds to
//! the detector; it never removes a construct.

use super::pattern::one_edit;

/// Whether `phrase` occurs in `words` as the same consecutive words (both
/// normalised): how a routine alert's keywords match, predictably, so
/// "kill" is in "I could kill for a coffee" but not in "skill" or
/// "killing time". The crisis check is more generous ([`contains`]).
pub(crate) fn contains_exactly(words: &[String], phrase: &[String]) -> bool {
    phrase.len() <= words.len() && words.windows(phrase.len()).any(|w| w == phrase)
}

/// Whether `phrase` occurs in `words` as consecutive words, allowing the
/// inflections and slips of [`same_word`].
pub(crate) fn contains(words: &[String], phrase: &[String]) -> bool {
    // `sui cide`: a long single-word phrase split in two.
    if let [one] = phrase
        && one.chars().count() >= 6
        && words.windows(2).any(|w| {
            let joined = format!("{}{}", w[0], w[1]);
            joined == *one || one_edit(&joined, one)
        })
    {
        return true;
    }
    let long = phrase.len() >= 3;
    phrase.len() <= words.len()
        && words
            .windows(phrase.len())
            .any(|w| w.iter().zip(phrase).all(|(a, b)| same_word(a, b, long)))
}

/// Equal; or an inflection of the phrase word (`harming`, `burned`,
/// `ending`, `dying`); or, for a phrase word of six letters or more, one
/// edit away (a letter added, dropped, changed, or two swapped); or, in a
/// phrase of three words or more, a word of four or five letters with a
/// letter added, dropped or two swapped (`wnt to die`) — not changed, so
/// "make my life" is not "take my life".
fn same_word(text: &str, phrase: &str, long_phrase: bool) -> bool {
    let n = phrase.chars().count();
    text == phrase
        || inflected(text, phrase)
        || (n >= 6 && one_edit(text, phrase))
        || (long_phrase
            && (4..=5).contains(&n)
            && text.chars().count() != n
            && one_edit(text, phrase))
        || (long_phrase && (4..=5).contains(&n) && swapped(text, phrase))
}

/// `text` is `phrase` with a regular ending: -s, -es, -d, -ed, -ing; a
/// final `e` dropped before -ing/-ed (`stockpiling`); `ie` → `ying`
/// (`dying`). Texts and phrases are compared with letter repeats
/// collapsed, so `cutting` is `cuting` and needs no doubling rule.
fn inflected(text: &str, phrase: &str) -> bool {
    if phrase.chars().count() < 3 {
        return false;
    }
    if let Some(rest) = text.strip_prefix(phrase) {
        return matches!(rest, "s" | "es" | "d" | "ed" | "ing");
    }
    if let Some(stem) = phrase.strip_suffix("ie")
        && text.strip_prefix(stem) == Some("ying")
    {
        return true;
    }
    if let Some(stem) = phrase.strip_suffix('e')
        && let Some(rest) = text.strip_prefix(stem)
    {
        return matches!(rest, "ing" | "ed");
    }
    false
}

/// Same letters with two neighbours swapped.
fn swapped(a: &str, b: &str) -> bool {
    let (a, b): (Vec<char>, Vec<char>) = (a.chars().collect(), b.chars().collect());
    if a.len() != b.len() || a == b {
        return false;
    }
    let diff: Vec<usize> = (0..a.len()).filter(|&i| a[i] != b[i]).collect();
    diff.len() == 2
        && diff[1] == diff[0] + 1
        && a[diff[0]] == b[diff[1]]
        && a[diff[1]] == b[diff[0]]
}
