//! The crisis check: a detector built on constructs (a death wish, intent,
//! self-harm, means, readiness, immediacy, an attempt, a farewell, burden,
//! hopelessness …) and the rules that combine them, extended (never
//! reduced) by the rules' critical keyword alerts.
//!
//! The reply pipeline runs it first on every inbound text, once: the
//! worker screens each text ([`Screened`]) to hand crisis texts over
//! first, and the decision ([`super::decide`]) reads that screening;
//! `docs/CRISIS.md` lists every construct, its sources and the figures.
//!
//! - [`tokens`]: the words, stemmed, with emoji and sentences;
//! - [`pattern`] and [`classes`]: the lexicons' pattern language;
//! - [`lexicon_en`], [`lexicon_en_acts`], [`lexicon_es`], [`lexicon`]: what each construct is
//!   in words, the cues (past, questions, denials, returns) and idioms;
//! - [`combine`]: context and the combination rules → severity;
//! - [`phrases`]: the rules' own phrases.
//!
//! Matching is deliberately generous, because a missed crisis costs more
//! than a false alert: a negated, past, third-person or hypothetical
//! construct is still a `warning`, shown to a person.

mod classes;
mod combine;
mod lexicon;
mod lexicon_en;
mod lexicon_en_acts;
mod lexicon_es;
mod pattern;
mod phrases;
mod tokens;

pub(crate) use phrases::contains_exactly;

use crate::domain::normalize::{Normalized, normalize, phrase_words};
use crate::rules::{RuleSet, Severity};

/// What a piece of crisis language is evidence of.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Construct {
    /// Wishing to be dead, passive included ("wish I wouldn't wake up").
    DeathWish,
    /// Suicidal intent or a decision ("going to end it").
    Intent,
    /// A self-harm act or urge, now.
    SelfHarm,
    /// A method or means: medication, a gun, a ligature, a blade, a height,
    /// a train, carbon monoxide, poison, alcohol or drugs as method.
    Means,
    /// Readiness and preparation: acquiring, counting, hoarding, at hand,
    /// a date chosen, asking what is lethal.
    Readiness,
    /// Tonight, now, this weekend, in my hand.
    Immediacy,
    /// An attempt in progress or just made, interrupted or aborted.
    Attempt,
    /// A goodbye, an apology to all, belongings or pets given away.
    Farewell,
    /// Forever, for good, "won't need it", "soon you won't have to".
    Finality,
    /// Being a burden ("better off without me").
    Burden,
    /// Absence not noticed ("nobody would notice if I was gone").
    Absence,
    /// No way out, no point, no future.
    Hopelessness,
}

impl Construct {
    pub fn as_str(self) -> &'static str {
        match self {
            Construct::DeathWish => "death_wish",
            Construct::Intent => "intent",
            Construct::SelfHarm => "self_harm",
            Construct::Means => "means",
            Construct::Readiness => "readiness",
            Construct::Immediacy => "immediacy",
            Construct::Attempt => "attempt",
            Construct::Farewell => "farewell",
            Construct::Finality => "finality",
            Construct::Burden => "burden",
            Construct::Absence => "absence",
            Construct::Hopelessness => "hopelessness",
        }
    }
}

/// How urgent a crisis match is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum CrisisSeverity {
    /// Shown to a person: negated, past, someone else's, a question, a
    /// denial, hopelessness alone.
    Warning,
    /// The crisis reply and a page.
    Critical,
}

impl CrisisSeverity {
    pub fn as_str(self) -> &'static str {
        match self {
            CrisisSeverity::Warning => "warning",
            CrisisSeverity::Critical => "critical",
        }
    }

    /// The incident severity it files.
    pub(crate) fn incident(self) -> Severity {
        match self {
            CrisisSeverity::Warning => Severity::Warning,
            CrisisSeverity::Critical => Severity::Critical,
        }
    }
}

/// Where a match comes from.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case", tag = "source")]
pub enum Source {
    /// The built-in detector; `category` is the first construct named.
    Floor { category: Construct },
    /// A keyword of a critical alert in the rules.
    Rule { alert: String },
}

/// One construct that fired and the words that fired it.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Fired {
    pub(crate) name: Construct,
    pub(crate) words: Vec<String>,
}

/// Crisis language found in a text.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct CrisisMatch {
    /// The words that decided it (a rule's phrase as the rule writes it).
    pub phrase: String,
    #[serde(flatten)]
    pub(crate) source: Source,
    pub severity: CrisisSeverity,
    /// The combination rule that decided it ("means + immediacy",
    /// "death wish in the first person, negated", "rule keyword").
    pub rule: String,
    /// Every construct that counted, with its words.
    pub(crate) constructs: Vec<Fired>,
}

struct Phrase {
    text: String,
    words: Vec<String>,
    alert: String,
}

/// The detector plus one rule set's critical keywords, ready to match.
pub struct CrisisMatcher {
    phrases: Vec<Phrase>,
}

impl CrisisMatcher {
    /// The detector alone.
    pub fn floor() -> CrisisMatcher {
        CrisisMatcher::with_rules(None)
    }

    /// The detector extended by the keywords of `rules`' critical alerts.
    pub(crate) fn with_rules(rules: Option<&RuleSet>) -> CrisisMatcher {
        let mut phrases = Vec::new();
        for alert in rules
            .map(|r| r.alerts.as_slice())
            .unwrap_or_default()
            .iter()
            .filter(|a| a.severity == Severity::Critical)
        {
            for k in &alert.keywords {
                phrases.push(Phrase {
                    text: k.clone(),
                    words: phrase_words(k),
                    alert: alert.id.clone(),
                });
            }
        }
        phrases.retain(|p| !p.words.is_empty());
        CrisisMatcher { phrases }
    }

    /// The crisis language in `text`, if any: a rule phrase is critical
    /// and names its alert; otherwise the detector decides.
    pub fn find(&self, text: &Normalized) -> Option<CrisisMatch> {
        #[cfg(test)]
        FINDS.with(|n| n.set(n.get() + 1));
        let detected = detect(&text.folded);
        let rule = self
            .phrases
            .iter()
            .find(|p| phrases::contains(&text.words, &p.words));
        match (rule, detected) {
            (Some(p), d) => Some(CrisisMatch {
                phrase: p.text.clone(),
                source: Source::Rule {
                    alert: p.alert.clone(),
                },
                severity: CrisisSeverity::Critical,
                rule: "rule keyword".into(),
                constructs: d.map(|d| d.constructs).unwrap_or_default(),
            }),
            (None, d) => d,
        }
    }
}

/// The detector on a folded text.
fn detect(folded: &str) -> Option<CrisisMatch> {
    let toks = tokens::tokenize(folded);
    let found = lexicon::scan(&toks);
    let (hits, returned) = combine::hits(&toks, &found);
    let verdict = combine::judge(&hits, returned)?;
    let constructs: Vec<Fired> = verdict
        .hits
        .iter()
        .map(|h| Fired {
            name: h.construct,
            words: h.at.iter().map(|&i| toks[i].form.clone()).collect(),
        })
        .collect();
    let phrase = constructs
        .iter()
        .map(|f| f.words.join(" "))
        .collect::<Vec<_>>()
        .join(" … ");
    Some(CrisisMatch {
        phrase,
        source: Source::Floor {
            category: constructs.first().map_or(Construct::Intent, |f| f.name),
        },
        severity: verdict.severity,
        rule: verdict.rule,
        constructs,
    })
}

#[cfg(test)]
thread_local! {
    /// How many times [`CrisisMatcher::find`] ran on this thread: tests
    /// check that a text is screened once.
    pub(crate) static FINDS: std::cell::Cell<usize> = const { std::cell::Cell::new(0) };
}

/// A text read once for crisis language: normalised, and what the
/// detector found in it. The worker screens a text to hand crisis texts
/// (warnings too) over first; deciding it reads the same screening, so
/// the detector runs once per text.
#[derive(Debug, Clone)]
pub(crate) struct Screened {
    pub(crate) text: Normalized,
    pub(crate) crisis: Option<CrisisMatch>,
}

impl Screened {
    pub(crate) fn new(matcher: &CrisisMatcher, body: &str) -> Screened {
        let text = normalize(body);
        let crisis = matcher.find(&text);
        Screened { text, crisis }
    }
}

#[cfg(test)]
mod tests;
