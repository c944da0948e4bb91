//! The lexicons compiled once: every construct's entries (English and
//! Spanish), and the cues that change what a construct means — past
//! tense, questions about other people, denials and recovery, a return
//! named after a goodbye — and the idioms that silence their own words.

use std::collections::HashMap;
use std::sync::LazyLock;

use super::Construct;
use super::classes::CLASSES;
use super::pattern::{Pattern, Vocab};
use super::tokens::{Lang, Token};

/// Whether an entry stands alone or counts only in a combination.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Strength {
    /// Critical by itself in the first person, present.
    Alone,
    /// Counts only in a combination rule.
    Paired,
    /// Everyday means (medication, a blade, a drink): like `Paired`, but a
    /// time alone ("my meds now") does not make it critical.
    Weak,
    /// A construct named in a denial, a question or a report about someone
    /// else: always a warning.
    Warn,
}

/// One lexicon line: pattern, construct, strength.
pub(crate) type Entry = (&'static str, Construct, Strength);

/// What a cue does to the constructs around it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Cue {
    /// Past tense ("a year ago", "used to"): the sentence's constructs
    /// become warnings.
    Past,
    /// A question about someone else or a hypothetical: warnings.
    Question,
    /// A denial or a recovery step ("I'm safe", "threw away my blades").
    Recovery,
    /// A return named after a goodbye ("see you Tuesday", "moving to
    /// Ohio"): a goodbye that needs no finality is not one.
    Return,
    /// An idiom: its words fire no construct.
    Idiom,
}

const CUES: &[(&str, Cue)] = &[
    ("# year|years|yrs|yr|months|month|weeks ago", Cue::Past),
    ("a|one|two|few year|years|month|months ago", Cue::Past),
    (
        "years ago / used to / last year / last month / last spring / since spring / when i was / in high school / back in college / back in / its been years / been years / one year since / this time last year / its been # years / anniversary",
        Cue::Past,
    ),
    ("clean from / clean of", Cue::Past),
    (
        "hace # anos / hace un ano / hace dos anos / antes me / llevo # meses / llevo un ano / ya llevo / el mes pasado / hace un",
        Cue::Past,
    ),
    (
        "what if / hypothetically / what do you say / how do you know / if someone / do you think people / what do i do / asking for a friend / que le digo / a quien llamo / is it normal / how do i answer",
        Cue::Question,
    ),
    (
        "i am safe / im safe / still here / glad i never / proud to still / safety plan / threw away my / to hold / lock up my / did not trust myself / it passed / it passes / feel safer / no blades / feeling a bit better / still grateful / glad i am here / estoy mejor / no se preocupen / tranquilos / no se asusten / would never / not going to do anything / was the depression / ice and the rubber band / put 1",
        Cue::Recovery,
    ),
    (
        "see you / see yall / see everyone / next week / next tuesday / next thursday / for now / for the night / keep in touch / moving / move to / graduate / alumni / come back / nos vemos / me mudo / seguimos en contacto / wedding / before the holidays / in the fall / in january / retirement / semester / sliding scale / offline / i board / be there / for surgery / the program / ill keep / be back / catch up / my last group / last session / goodbye card / said goodbye to / outgrew / rehoming / selling / allergic / smaller place / new place / for the night / camping / night shift",
        Cue::Return,
    ),
    // Idioms: the words of the idiom fire nothing; the rest of the text is read as usual.
    ("is|are|was killing me", Cue::Idiom),
    ("killing|kill|killed it", Cue::Idiom),
    (
        "killing time / kill time / kill two birds / could kill for / to die for !weeks|months|days|years|a|so|the|hours|ages|long|my|me|it|this|that|real / dying to / dying laughing / died laughing / die of embarrassment / scared to death / bored to death / rather die than",
        Cue::Idiom,
    ),
    ("going to kill|murder me", Cue::Idiom),
    (
        "shaving cut / cut myself shaving / cut class / cutting class / cut the cord / cut back / end of my rope / knife edge / bridge the gap / shoot me a text / shoot the messenger / take a shot / tying the knot / tie the knot / hang out / hanging in there / hanging by a thread / overdosed on netflix / sugar overdose / drowning in paperwork / bleeding us dry / dead set / dead serious / dead tired / dead last / dead end",
        Cue::Idiom,
    ),
    (
        "me muero de / me muero por / muerta de / muerto de / me mata el / me va a matar / me esta matando / me mato / me mataste / a morir / jajaja me muero / jaja me muero / me muero jaja",
        Cue::Idiom,
    ),
    (
        "morir|muero|muerta|muerto|muriendo de risa|hambre|sueno|verguenza|cansancio|calor|frio|nervios|la",
        Cue::Idiom,
    ),
    ("the end of the season / the end of the week", Cue::Idiom),
    (
        "me corte el dedo|pelo / me queme con el sarten / no aguanto ... dolor / que me muero / no aguanto a",
        Cue::Idiom,
    ),
];

/// A compiled entry.
pub(crate) struct Compiled {
    pub(crate) pattern: Pattern,
    pub(crate) what: What,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum What {
    Construct(Construct, Strength),
    Cue(Cue),
}

/// Every entry of both languages and every cue, compiled, with the words
/// they use and, per word, the patterns that start with it.
pub(crate) struct Lexicon {
    vocab: Vocab,
    entries: Vec<Compiled>,
    /// Word id → the entries whose first element it is.
    starts: HashMap<u32, Vec<usize>>,
}

pub(crate) static LEXICON: LazyLock<Lexicon> = LazyLock::new(|| {
    compile().unwrap_or_else(|e| panic!("the built-in crisis lexicon does not compile: {e}"))
});

pub(crate) fn compile() -> Result<Lexicon, super::pattern::UnknownClass> {
    let mut vocab = Vocab::default();
    let mut entries = Vec::new();
    for (lang, list) in [
        (Lang::En, super::lexicon_en::EN),
        (Lang::En, super::lexicon_en_acts::EN_ACTS),
        (Lang::Es, super::lexicon_es::ES),
    ] {
        for (src, c, s) in list {
            for one in src.split(" / ") {
                entries.push(Compiled {
                    pattern: Pattern::compile(one, lang, CLASSES, &mut vocab)?,
                    what: What::Construct(*c, *s),
                });
            }
        }
    }
    for (src, cue) in CUES {
        for one in src.split(" / ") {
            entries.push(Compiled {
                pattern: Pattern::compile(one, Lang::En, CLASSES, &mut vocab)?,
                what: What::Cue(*cue),
            });
        }
    }
    let mut starts: HashMap<u32, Vec<usize>> = HashMap::new();
    for (i, e) in entries.iter().enumerate() {
        for id in e.pattern.first() {
            starts.entry(*id).or_default().push(i);
        }
    }
    Ok(Lexicon {
        vocab,
        entries,
        starts,
    })
}

impl Lexicon {
    #[cfg(test)]
    pub(crate) fn len(&self) -> usize {
        self.entries.len()
    }
}

/// Something the lexicon found: what, and which words.
#[derive(Debug, Clone)]
pub(crate) struct Found {
    pub(crate) what: What,
    pub(crate) at: Vec<usize>,
}

/// Everything the lexicon finds in `tokens` (each entry at most once per
/// word: a match resumes after its last word). Only the entries whose
/// first word is in the text are tried.
pub(crate) fn scan(tokens: &[Token]) -> Vec<Found> {
    let lex = &*LEXICON;
    let sets: Vec<Vec<u32>> = tokens.iter().map(|t| lex.vocab.matches(t)).collect();
    let mut tries: Vec<(usize, usize)> = Vec::new();
    for (i, set) in sets.iter().enumerate() {
        for id in set {
            if let Some(entries) = lex.starts.get(id) {
                tries.extend(entries.iter().map(|&e| (e, i)));
            }
        }
    }
    tries.sort_unstable();
    tries.dedup();
    let mut found = Vec::new();
    let mut next: Option<(usize, usize)> = None;
    for (e, start) in tries {
        if next.is_some_and(|(ne, at)| ne == e && start < at) {
            continue;
        }
        let entry = &lex.entries[e];
        if let Some(at) = entry.pattern.match_at(tokens, &sets, start) {
            next = Some((e, at.last().map_or(start + 1, |l| l + 1)));
            found.push(Found {
                what: entry.what,
                at,
            });
        }
    }
    found
}
