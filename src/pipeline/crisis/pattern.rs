//! The small pattern language the lexicons are written in, compiled once
//! and matched over a text's [`Token`]s within one sentence.
//!
//! A pattern is words separated by spaces:
//! - `pill` matches the word, any inflection of it (same Snowball stem in
//!   the entry's language), and, for words of six letters or more, a word
//!   one edit away (`seroquel` ~ `seraquel`);
//! - `=odd` matches that exact word only; `suicid*` any word it begins;
//! - `a|b|c` any of the words; `<med>` any word of a named class; `#`
//!   any count (`43`, `twenty`);
//! - `...` up to three words of anything in between;
//! - `!for|to` (consumes nothing) the next word is none of these;
//! - ` / ` between whole patterns: any of them (an entry's alternatives).

use std::collections::HashMap;

use super::tokens::{Lang, Token, stem};

#[derive(Debug, Clone)]
struct Word {
    form: String,
    stem: String,
    exact: bool,
    prefix: bool,
}

#[derive(Debug, Clone)]
enum Elem {
    Any(Vec<u32>),
    Gap(usize),
    Not(Vec<u32>),
}

/// One compiled lexicon pattern.
#[derive(Debug, Clone)]
pub(crate) struct Pattern {
    elems: Vec<Elem>,
}

/// The classes a pattern may name, as `(name, words)`.
pub(crate) type Classes = &'static [(&'static str, &'static [&'static str])];

/// A pattern that does not compile: a lexicon bug, caught by a unit test.
#[derive(Debug, thiserror::Error)]
#[error(
    "crisis lexicon pattern `{pattern}` names an unknown class `{class}`\n  hint: add it to the classes or fix the spelling"
)]
pub(crate) struct UnknownClass {
    pattern: String,
    class: String,
}

/// Every distinct lexicon word once, indexed so a text word finds the
/// lexicon words it matches by lookup rather than by comparing with each.
#[derive(Debug, Default)]
pub(crate) struct Vocab {
    words: Vec<Word>,
    ids: HashMap<(String, Lang, bool, bool), u32>,
    by_form: HashMap<String, Vec<u32>>,
    by_stem: HashMap<(Lang, String), Vec<u32>>,
    prefixes: Vec<u32>,
    /// Words of six letters or more by first letter, for one-edit slips.
    fuzzy: HashMap<char, Vec<u32>>,
    number: Vec<u32>,
}

impl Vocab {
    fn intern(&mut self, src: &str, lang: Lang) -> u32 {
        let w = word(src, lang);
        let key = (w.form.clone(), lang, w.exact, w.prefix);
        if let Some(id) = self.ids.get(&key) {
            return *id;
        }
        let id = u32::try_from(self.words.len()).unwrap_or(u32::MAX);
        if w.form == "#" {
            self.number.push(id);
        } else if w.prefix {
            self.prefixes.push(id);
        } else {
            self.by_form.entry(w.form.clone()).or_default().push(id);
            if !w.exact && w.stem.len() >= 3 {
                self.by_stem
                    .entry((lang, w.stem.clone()))
                    .or_default()
                    .push(id);
            }
            if !w.exact
                && w.form.len() >= 6
                && let Some(c) = w.form.chars().next()
            {
                self.fuzzy.entry(c).or_default().push(id);
            }
        }
        self.ids.insert(key, id);
        self.words.push(w);
        id
    }

    /// The lexicon words `t` matches, sorted.
    pub(crate) fn matches(&self, t: &Token) -> Vec<u32> {
        let mut out: Vec<u32> = Vec::new();
        let mut add = |ids: Option<&Vec<u32>>| out.extend(ids.into_iter().flatten());
        add(self.by_form.get(&t.form));
        add(self.by_stem.get(&(Lang::En, t.en.clone())));
        add(self.by_stem.get(&(Lang::Es, t.es.clone())));
        for &id in &self.prefixes {
            if t.form.starts_with(&self.words[id as usize].form) {
                out.push(id);
            }
        }
        if t.form.len() >= 5
            && let Some(ids) = t.form.chars().next().and_then(|c| self.fuzzy.get(&c))
        {
            out.extend(
                ids.iter()
                    .filter(|&&id| one_edit(&t.form, &self.words[id as usize].form)),
            );
        }
        if is_number(&t.form) {
            out.extend(&self.number);
        }
        out.sort_unstable();
        out.dedup();
        out
    }
}

impl Pattern {
    pub(crate) fn compile(
        src: &str,
        lang: Lang,
        classes: Classes,
        vocab: &mut Vocab,
    ) -> Result<Pattern, UnknownClass> {
        let mut elems = Vec::new();
        for part in src.split_whitespace() {
            if part == "..." {
                elems.push(Elem::Gap(3));
                continue;
            }
            let (neg, body) = match part.strip_prefix('!') {
                Some(b) => (true, b),
                None => (false, part),
            };
            let mut alts = Vec::new();
            for alt in body.split('|') {
                if let Some(name) = alt.strip_prefix('<').and_then(|a| a.strip_suffix('>')) {
                    let words = classes
                        .iter()
                        .find(|(n, _)| *n == name)
                        .ok_or_else(|| UnknownClass {
                            pattern: src.to_owned(),
                            class: name.to_owned(),
                        })?
                        .1;
                    alts.extend(words.iter().map(|w| vocab.intern(w, lang)));
                } else {
                    alts.push(vocab.intern(alt, lang));
                }
            }
            alts.sort_unstable();
            alts.dedup();
            elems.push(if neg {
                Elem::Not(alts)
            } else {
                Elem::Any(alts)
            });
        }
        Ok(Pattern { elems })
    }

    /// The lexicon words a match must start with (empty: any word).
    pub(crate) fn first(&self) -> &[u32] {
        match self.elems.first() {
            Some(Elem::Any(ids)) => ids,
            _ => &[],
        }
    }

    /// Where the pattern matches starting at `start`: the matched words'
    /// indices (gaps left out), all in `start`'s sentence. `sets[i]` is
    /// what [`Vocab::matches`] gave for `tokens[i]`.
    pub(crate) fn match_at(
        &self,
        tokens: &[Token],
        sets: &[Vec<u32>],
        start: usize,
    ) -> Option<Vec<usize>> {
        let mut got = Vec::with_capacity(self.elems.len());
        let sentence = tokens.get(start)?.sentence;
        let m = Matching {
            tokens,
            sets,
            s: sentence,
        };
        self.walk(&m, 0, start, &mut got).then_some(got)
    }

    fn walk(&self, m: &Matching<'_>, e: usize, at: usize, got: &mut Vec<usize>) -> bool {
        let Some(elem) = self.elems.get(e) else {
            return true;
        };
        let here = m.tokens.get(at).is_some_and(|t| t.sentence == m.s);
        match elem {
            Elem::Any(ids) => {
                if !here || !m.any(at, ids) {
                    return false;
                }
                got.push(at);
                if self.walk(m, e + 1, at + 1, got) {
                    return true;
                }
                got.pop();
                false
            }
            Elem::Not(ids) => (!here || !m.any(at, ids)) && self.walk(m, e + 1, at, got),
            Elem::Gap(n) => (0..=*n).any(|skip| {
                (0..skip).all(|k| m.tokens.get(at + k).is_some_and(|t| t.sentence == m.s))
                    && self.walk(m, e + 1, at + skip, got)
            }),
        }
    }
}

struct Matching<'a> {
    tokens: &'a [Token],
    sets: &'a [Vec<u32>],
    s: u16,
}

impl Matching<'_> {
    fn any(&self, at: usize, ids: &[u32]) -> bool {
        let set = &self.sets[at];
        set.iter().any(|id| ids.binary_search(id).is_ok())
    }
}

/// `43`, `60`, `twenty`: a count (a dose like `800mg` is not).
fn is_number(w: &str) -> bool {
    (!w.is_empty() && w.bytes().all(|b| b.is_ascii_digit()))
        || matches!(
            w,
            "two"
                | "three"
                | "four"
                | "ten"
                | "twenty"
                | "thirty"
                | "forty"
                | "fifty"
                | "hundred"
                | "dozen"
                | "veinte"
                | "treinta"
                | "cuarenta"
                | "cincuenta"
                | "cien"
        )
}

fn word(src: &str, lang: Lang) -> Word {
    let (exact, src) = match src.strip_prefix('=') {
        Some(s) => (true, s),
        None => (false, src),
    };
    let (prefix, src) = match src.strip_suffix('*') {
        Some(s) => (true, s),
        None => (false, src),
    };
    let src = super::tokens::strip_accents(src);
    Word {
        stem: stem(&src, lang),
        form: src,
        exact,
        prefix,
    }
}

/// One letter added, dropped, changed, or two neighbours swapped.
pub(crate) fn one_edit(a: &str, b: &str) -> bool {
    let (a, b) = (a.as_bytes(), b.as_bytes());
    if a.len().abs_diff(b.len()) > 1 {
        return false;
    }
    let prefix = a.iter().zip(b).take_while(|(x, y)| x == y).count();
    let (ra, rb) = (&a[prefix..], &b[prefix..]);
    match (ra.len(), rb.len()) {
        (0, 0) => true,
        (la, lb) if la == lb => {
            ra[1..] == rb[1..]
                || (la >= 2 && ra[0] == rb[1] && ra[1] == rb[0] && ra[2..] == rb[2..])
        }
        (la, lb) if la > lb => ra[1..] == *rb,
        _ => *ra == rb[1..],
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::pipeline::crisis::tokens::tokenize;

    const CLASSES: Classes = &[("med", &["pills", "seroquel"])];

    fn hit(p: &str, text: &str) -> Option<Vec<String>> {
        let toks = tokenize(&crate::domain::normalize::normalize(text).folded);
        let mut vocab = Vocab::default();
        let p = Pattern::compile(p, Lang::En, CLASSES, &mut vocab).unwrap();
        let sets: Vec<Vec<u32>> = toks.iter().map(|t| vocab.matches(t)).collect();
        (0..toks.len()).find_map(|i| {
            p.match_at(&toks, &sets, i)
                .map(|ix| ix.iter().map(|&i| toks[i].form.clone()).collect())
        })
    }

    #[test]
    fn words_classes_gaps_and_negatives_match_as_documented() {
        assert_eq!(
            hit("took ... <med>", "I took all of my pills").unwrap(),
            ["took", "pills"]
        );
        assert!(
            hit("took ... <med>", "I took the dog out. pills").is_none(),
            "sentence"
        );
        assert!(hit("took <med>", "took seraquel").is_some(), "one edit");
        assert!(hit("killing myself", "kill myself").is_some(), "stem");
        assert!(hit("=odd", "odds").is_none());
        assert!(hit("suicid*", "suicidality").is_some());
        assert!(hit("have a plan !for", "i have a plan for the weekend").is_none());
        assert!(hit("have a plan !for", "i have a plan").is_some());
    }

    #[test]
    fn an_unknown_class_is_an_error_naming_it() {
        let e = Pattern::compile("<nope> x", Lang::En, CLASSES, &mut Vocab::default()).unwrap_err();
        assert!(e.to_string().contains("`nope`"), "{e}");
    }

    #[test]
    fn one_edit_means_one_letter_added_dropped_changed_or_two_swapped() {
        for (a, b) in [
            ("suicde", "suicide"),
            ("suiccide", "suicide"),
            ("suicdie", "suicide"),
        ] {
            assert!(one_edit(a, b), "{a} {b}");
        }
        for (a, b) in [
            ("sucdie", "suicide"),
            ("hopeful", "hopeless"),
            ("overdue", "overdose"),
        ] {
            assert!(!one_edit(a, b), "{a} {b}");
        }
    }
}
