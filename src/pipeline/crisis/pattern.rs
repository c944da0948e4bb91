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
    Any(Vec<Word>),
    Gap(usize),
    Not(Vec<Word>),
}

/// One compiled lexicon pattern.
#[derive(Debug, Clone)]
pub(crate) struct Pattern {
    elems: Vec<Elem>,
    lang: Lang,
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

impl Pattern {
    pub(crate) fn compile(
        src: &str,
        lang: Lang,
        classes: Classes,
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
                    alts.extend(words.iter().map(|w| word(w, lang)));
                } else {
                    alts.push(word(alt, lang));
                }
            }
            elems.push(if neg {
                Elem::Not(alts)
            } else {
                Elem::Any(alts)
            });
        }
        Ok(Pattern { elems, lang })
    }

    /// Where the pattern matches starting at `start`: the matched words'
    /// indices (gaps left out), all in `start`'s sentence.
    pub(crate) fn match_at(&self, tokens: &[Token], start: usize) -> Option<Vec<usize>> {
        let mut got = Vec::with_capacity(self.elems.len());
        let sentence = tokens.get(start)?.sentence;
        self.walk(0, tokens, start, sentence, &mut got)
            .then_some(got)
    }

    fn walk(&self, e: usize, tokens: &[Token], at: usize, s: u16, got: &mut Vec<usize>) -> bool {
        let Some(elem) = self.elems.get(e) else {
            return true;
        };
        let here = tokens.get(at).filter(|t| t.sentence == s);
        match elem {
            Elem::Any(words) => {
                let Some(t) = here else { return false };
                if !words.iter().any(|w| self.same(t, w)) {
                    return false;
                }
                got.push(at);
                if self.walk(e + 1, tokens, at + 1, s, got) {
                    return true;
                }
                got.pop();
                false
            }
            Elem::Not(words) => {
                here.is_none_or(|t| !words.iter().any(|w| self.same(t, w)))
                    && self.walk(e + 1, tokens, at, s, got)
            }
            Elem::Gap(n) => (0..=*n).any(|skip| {
                (0..skip).all(|k| tokens.get(at + k).is_some_and(|t| t.sentence == s))
                    && self.walk(e + 1, tokens, at + skip, s, got)
            }),
        }
    }

    fn same(&self, t: &Token, w: &Word) -> bool {
        if t.form == w.form {
            return true;
        }
        if w.form == "#" {
            return is_number(&t.form);
        }
        if w.exact {
            return false;
        }
        if w.prefix {
            return t.form.starts_with(&w.form);
        }
        let stem = match self.lang {
            Lang::En => &t.en,
            Lang::Es => &t.es,
        };
        (w.stem.len() >= 3 && *stem == w.stem)
            || (w.form.len() >= 6 && t.form.len() >= 5 && one_edit(&t.form, &w.form))
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
        let p = Pattern::compile(p, Lang::En, CLASSES).unwrap();
        (0..toks.len()).find_map(|i| {
            p.match_at(&toks, i)
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
        let e = Pattern::compile("<nope> x", Lang::En, CLASSES).unwrap_err();
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
