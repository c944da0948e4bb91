//! From what the lexicons found to a severity: idioms silence their own
//! words, each construct is read in its sentence (negated, past, someone
//! else's, a question, a denial), and the combination rules decide.
//!
//! Nothing here lowers a construct below a warning: a negated, past,
//! third-person or hypothetical construct is a `warning`, named.

use super::lexicon::{Cue, Found, Strength, What};
use super::tokens::Token;
use super::{Construct, CrisisSeverity};

/// Why a construct that fired is a warning rather than critical.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Mitigation {
    Negated,
    Past,
    ThirdPerson,
    Question,
    Recovery,
}

impl Mitigation {
    pub(crate) fn as_str(self) -> &'static str {
        match self {
            Mitigation::Negated => "negated",
            Mitigation::Past => "in the past",
            Mitigation::ThirdPerson => "about someone else",
            Mitigation::Question => "a question or hypothetical",
            Mitigation::Recovery => "with a denial or a safety step",
        }
    }
}

/// One construct that fired, read in its sentence.
#[derive(Debug, Clone)]
pub(crate) struct Hit {
    pub(crate) construct: Construct,
    pub(crate) strength: Strength,
    pub(crate) at: Vec<usize>,
    pub(crate) mitigation: Option<Mitigation>,
}

/// The verdict: severity, the rule that decided it, and the hits it rests on.
#[derive(Debug, Clone)]
pub(crate) struct Verdict {
    pub(crate) severity: CrisisSeverity,
    pub(crate) rule: String,
    pub(crate) hits: Vec<Hit>,
}

/// Pairs of constructs that are critical together (either order).
const COMBOS: &[(Construct, &[Construct])] = {
    use Construct::*;
    &[
        (
            Means,
            &[
                Readiness,
                Immediacy,
                Attempt,
                Intent,
                DeathWish,
                Finality,
                Farewell,
                Burden,
                Hopelessness,
            ],
        ),
        (
            Farewell,
            &[Finality, Farewell, Burden, Absence, DeathWish, Hopelessness],
        ),
        (
            Attempt,
            &[Means, Readiness, Immediacy, Finality, DeathWish, Attempt],
        ),
        (Burden, &[Absence, Burden, Finality, DeathWish]),
        (Absence, &[Finality, DeathWish, Hopelessness]),
        (Hopelessness, &[Readiness, Immediacy, Finality]),
        (DeathWish, &[Finality, Immediacy, Readiness]),
        (SelfHarm, &[Readiness, Immediacy, SelfHarm]),
        (Intent, &[Readiness, Immediacy, Finality]),
        (Readiness, &[Finality]),
    ]
};

/// Two hits combine within this many words of each other.
const WINDOW: usize = 14;

fn combines(a: Construct, b: Construct) -> bool {
    COMBOS
        .iter()
        .any(|(x, ys)| (*x == a && ys.contains(&b)) || (*x == b && ys.contains(&a)))
}

const NEGATORS: &[&str] = &["not", "never", "no", "nunca", "ni", "nothing"];
const FIRST: &[&str] = &["i", "me", "my", "mine", "myself", "yo", "mi", "mis"];
/// In a construct's own words: someone else's reflexive.
const THIRD_SELF: &[&str] = &["himself", "herself", "themselves", "yourself"];
/// Where a clause begins: a subject before it is not this construct's.
const CLAUSE: &[&str] = &["when", "before", "and", "but", "cuando", "y", "pero"];
/// Before a construct: someone else as its subject.
const THIRD: &[&str] = &[
    "he",
    "she",
    "they",
    "hes",
    "shes",
    "theyre",
    "himself",
    "herself",
    "themselves",
    "someone",
    "somebody",
    "people",
    "friend",
    "brother",
    "sister",
    "mom",
    "dad",
    "mother",
    "father",
    "son",
    "daughter",
    "husband",
    "wife",
    "cousin",
    "uncle",
    "aunt",
    "roommate",
    "ex",
    "guy",
    "teenager",
    "kid",
    "grandma",
    "grandpa",
    "el",
    "ella",
    "ellos",
    "hermano",
    "hermana",
    "hijo",
    "hija",
    "amigo",
    "amiga",
    "primo",
    "prima",
    "tia",
    "tio",
    "papa",
    "mama",
    "esposo",
    "esposa",
    "abuelo",
    "abuela",
    "compa",
    "sobrino",
    "sobrina",
    "se",
];

/// Read what the lexicon found: idioms out, constructs in context.
pub(crate) fn hits(tokens: &[Token], found: &[Found]) -> (Vec<Hit>, bool) {
    let mut idiom = vec![false; tokens.len()];
    let sentence_cue = |cue: Cue| -> Vec<u16> {
        found
            .iter()
            .filter(|f| f.what == What::Cue(cue))
            .filter_map(|f| f.at.first().map(|&i| tokens[i].sentence))
            .collect()
    };
    let (past, question, recovery) = (
        sentence_cue(Cue::Past),
        sentence_cue(Cue::Question),
        sentence_cue(Cue::Recovery),
    );
    let returned = found.iter().any(|f| f.what == What::Cue(Cue::Return));
    for f in found.iter().filter(|f| f.what == What::Cue(Cue::Idiom)) {
        f.at.iter().for_each(|&i| idiom[i] = true);
    }
    let mut out = Vec::new();
    for f in found {
        let What::Construct(construct, strength) = f.what else {
            continue;
        };
        if f.at.iter().any(|&i| idiom[i]) {
            continue;
        }
        let s = tokens[f.at[0]].sentence;
        let mitigation = if strength == Strength::Warn {
            Some(Mitigation::Recovery)
        } else if negated(tokens, &f.at) {
            Some(Mitigation::Negated)
        } else if past.contains(&s) {
            Some(Mitigation::Past)
        } else if question.contains(&s) {
            Some(Mitigation::Question)
        } else if personal(construct) && third_person(tokens, &f.at) {
            Some(Mitigation::ThirdPerson)
        } else if recovery.contains(&s) {
            Some(Mitigation::Recovery)
        } else {
            None
        };
        out.push(Hit {
            construct,
            strength,
            at: f.at.clone(),
            mitigation,
        });
    }
    (out, returned)
}

/// Constructs that are about the one who writes (whose gun, or who
/// would be better off, does not change the risk).
fn personal(c: Construct) -> bool {
    matches!(
        c,
        Construct::DeathWish | Construct::Intent | Construct::SelfHarm | Construct::Attempt
    )
}

/// A negator among the three words before the construct, same sentence,
/// with no new subject between ("I can't anymore, I want to die" is not a
/// negated wish) and not a question ("won't anyone let me die").
fn negated(tokens: &[Token], at: &[usize]) -> bool {
    let first = at[0];
    let s = tokens[first].sentence;
    for i in (first.saturating_sub(3)..first).rev() {
        let w = tokens[i].form.as_str();
        if tokens[i].sentence != s || matches!(w, "i" | "yo") {
            return false;
        }
        if NEGATORS.contains(&w) {
            return tokens
                .get(i + 1)
                .is_none_or(|n| !matches!(n.form.as_str(), "anyone" | "more"));
        }
    }
    false
}

/// The nearest person before the construct (or in it) is someone else.
fn third_person(tokens: &[Token], at: &[usize]) -> bool {
    if tokens[at[0]].form == "se" {
        return true;
    }
    for &i in at {
        let w = tokens[i].form.as_str();
        if FIRST.contains(&w) {
            return false;
        }
        if THIRD_SELF.contains(&w) {
            return true;
        }
    }
    let first = at[0];
    let s = tokens[first].sentence;
    for i in (first.saturating_sub(8)..first).rev() {
        let w = tokens[i].form.as_str();
        if tokens[i].sentence != s || CLAUSE.contains(&w) {
            break;
        }
        if FIRST.contains(&w) {
            return false;
        }
        if THIRD.contains(&w) {
            return true;
        }
    }
    false
}

/// The combination rules, over the hits of one text.
pub(crate) fn judge(hits: &[Hit], returned: bool) -> Option<Verdict> {
    let mut best: Option<Verdict> = None;
    let mut offer = |severity: CrisisSeverity, rule: String, used: Vec<Hit>| {
        if best.as_ref().is_none_or(|b| severity > b.severity) {
            best = Some(Verdict {
                severity,
                rule,
                hits: used,
            });
        } else if let Some(b) = best.as_mut().filter(|b| b.severity == severity) {
            for h in used {
                if !b
                    .hits
                    .iter()
                    .any(|x| x.at == h.at && x.construct == h.construct)
                {
                    b.hits.push(h);
                }
            }
        }
    };
    for h in hits {
        let level = match h.mitigation {
            Some(_) => CrisisSeverity::Warning,
            None => CrisisSeverity::Critical,
        };
        match (h.strength, h.construct) {
            (_, Construct::Hopelessness) if h.strength != Strength::Paired => {
                offer(
                    CrisisSeverity::Warning,
                    "hopelessness alone".into(),
                    vec![h.clone()],
                );
            }
            (Strength::Alone | Strength::Warn, c) => {
                offer(level, alone_rule(c, h.mitigation), vec![h.clone()]);
            }
            (Strength::Paired, Construct::Farewell) if !returned => {
                offer(
                    level,
                    "farewell with no return named".into(),
                    vec![h.clone()],
                );
            }
            _ => {}
        }
    }
    for (severity, rule, used) in pairs(hits, returned) {
        offer(severity, rule, used);
    }
    best
}

/// Every pair of hits a combination rule joins: (severity, rule, hits).
fn pairs(hits: &[Hit], returned: bool) -> Vec<(CrisisSeverity, String, Vec<Hit>)> {
    let mut out = Vec::new();
    for (i, a) in hits.iter().enumerate() {
        for b in &hits[i + 1..] {
            if !combines(a.construct, b.construct) || overlap(a, b) || far(a, b) {
                continue;
            }
            let weak_with_time = |x: &Hit, y: &Hit| {
                x.strength == Strength::Weak
                    && matches!(
                        y.construct,
                        Construct::Immediacy
                            | Construct::Finality
                            | Construct::Farewell
                            | Construct::SelfHarm
                    )
            };
            if weak_with_time(a, b) || weak_with_time(b, a) {
                continue;
            }
            if a.construct == Construct::Farewell && b.construct == Construct::Farewell && returned
            {
                continue;
            }
            let mitigation = a.mitigation.or(b.mitigation);
            let level = match mitigation {
                Some(_) => CrisisSeverity::Warning,
                None => CrisisSeverity::Critical,
            };
            let mut rule = format!("{} + {}", a.construct.as_str(), b.construct.as_str());
            if let Some(m) = mitigation {
                rule = format!("{rule}, {}", m.as_str());
            }
            out.push((level, rule, vec![a.clone(), b.clone()]));
        }
    }
    out
}

fn alone_rule(c: Construct, m: Option<Mitigation>) -> String {
    let base = match c {
        Construct::DeathWish => "death wish in the first person",
        Construct::Intent => "suicidal intent",
        Construct::SelfHarm => "self-harm act, current",
        Construct::Attempt => "attempt in progress or just made",
        Construct::Means => "lethal means at hand",
        Construct::Readiness => "a plan made",
        Construct::Burden => "burden in the first person",
        Construct::Absence => "absence: nobody would notice",
        Construct::Farewell => "farewell",
        Construct::Finality => "finality",
        Construct::Immediacy => "immediacy",
        Construct::Hopelessness => "hopelessness",
    };
    match m {
        Some(m) => format!("{base}, {}", m.as_str()),
        None => base.to_owned(),
    }
}

fn overlap(a: &Hit, b: &Hit) -> bool {
    a.at.iter().any(|i| b.at.contains(i))
}

fn far(a: &Hit, b: &Hit) -> bool {
    let (a0, a1) = (a.at[0], *a.at.last().unwrap_or(&a.at[0]));
    let (b0, b1) = (b.at[0], *b.at.last().unwrap_or(&b.at[0]));
    let gap = if a1 < b0 {
        b0 - a1
    } else {
        a0.saturating_sub(b1)
    };
    gap > WINDOW
}
