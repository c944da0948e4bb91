//! The crisis check: the built-in floor of crisis phrases, extended (never
//! reduced) by the rules' critical alerts, matched on normalised words.
//!
//! The reply pipeline runs it first on every inbound text, once: the
//! worker screens each text ([`Screened`]) to hand crisis texts over
//! first, and the decision ([`super::decide`]) reads that screening;
//! `docs/CRISIS.md` says where the floor comes from.
//!
//! Matching is deliberately generous, because a missed crisis costs more
//! than a false alert:
//! - phrases match whole words in order, after [`crate::domain::normalize`]
//!   (case, width, punctuation, spacing, letter repeats, leetspeak and
//!   text-speak do not matter);
//! - a phrase word of six letters or more also matches a word one edit
//!   away (`suicde`, `sucide`, `myslef`);
//! - negation, past tense and hypotheticals still match ("I'm not going to
//!   kill myself" is shown to a person, with the phrase).

use crate::domain::normalize::{Normalized, normalize, phrase_words};
use crate::rules::{RuleSet, Severity};

/// What kind of signal a floor phrase is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub(crate) enum Category {
    /// Suicidal intent or wish.
    Intent,
    SelfHarm,
    /// A plan or a means (pills, a gun, a bridge): the strongest signal.
    PlanOrMeans,
    /// Hopelessness or feeling a burden.
    Hopelessness,
    /// A farewell.
    Farewell,
}

/// The floor: phrases every deployment checks, whatever its rules say.
pub(crate) const FLOOR: &[(&str, Category)] = &[
    // Intent, in English and text-speak.
    ("suicide", Category::Intent),
    ("suicidal", Category::Intent),
    ("kill myself", Category::Intent),
    ("killing myself", Category::Intent),
    ("kill yourself", Category::Intent),
    ("end my life", Category::Intent),
    ("ending my life", Category::Intent),
    ("ended my life", Category::Intent),
    ("take my own life", Category::Intent),
    ("take my life", Category::Intent),
    ("end it all", Category::Intent),
    ("want to end it", Category::Intent),
    ("going to end it", Category::Intent),
    ("want to die", Category::Intent),
    ("ready to die", Category::Intent),
    ("deserve to die", Category::Intent),
    ("wish i was dead", Category::Intent),
    ("wish i were dead", Category::Intent),
    ("want to be dead", Category::Intent),
    ("better off dead", Category::Intent),
    ("do not want to live", Category::Intent),
    ("do not want to be alive", Category::Intent),
    ("do not want to be here anymore", Category::Intent),
    ("do not want to wake up", Category::Intent),
    ("never wake up", Category::Intent),
    ("off myself", Category::Intent),
    ("end myself", Category::Intent),
    ("ctb", Category::Intent),
    ("ending things", Category::Intent),
    ("sleep and not wake up", Category::Intent),
    ("sleep and never wake up", Category::Intent),
    ("done with life", Category::Intent),
    ("done with living", Category::Intent),
    ("done living", Category::Intent),
    // Self-harm.
    ("hurt myself", Category::SelfHarm),
    ("hurting myself", Category::SelfHarm),
    ("harm myself", Category::SelfHarm),
    ("self harm", Category::SelfHarm),
    ("cut myself", Category::SelfHarm),
    ("cutting myself", Category::SelfHarm),
    ("cutting again", Category::SelfHarm),
    ("burn myself", Category::SelfHarm),
    ("punish myself", Category::SelfHarm),
    // Plans and means.
    ("hang myself", Category::PlanOrMeans),
    ("shoot myself", Category::PlanOrMeans),
    ("drown myself", Category::PlanOrMeans),
    ("jump off a bridge", Category::PlanOrMeans),
    ("jump off the bridge", Category::PlanOrMeans),
    ("jump in front of", Category::PlanOrMeans),
    ("slit my wrists", Category::PlanOrMeans),
    ("cut my wrists", Category::PlanOrMeans),
    ("overdose", Category::PlanOrMeans),
    ("overdosed", Category::PlanOrMeans),
    ("took all my pills", Category::PlanOrMeans),
    ("take all my pills", Category::PlanOrMeans),
    ("all my sleeping pills", Category::PlanOrMeans),
    ("take all the pills", Category::PlanOrMeans),
    ("rope ready", Category::PlanOrMeans),
    ("rope is ready", Category::PlanOrMeans),
    ("took a bunch of pills", Category::PlanOrMeans),
    ("stockpiling pills", Category::PlanOrMeans),
    ("pills saved", Category::PlanOrMeans),
    ("saved up pills", Category::PlanOrMeans),
    ("saving up pills", Category::PlanOrMeans),
    ("saving my pills", Category::PlanOrMeans),
    ("bought a gun", Category::PlanOrMeans),
    ("loaded gun", Category::PlanOrMeans),
    ("noose", Category::PlanOrMeans),
    ("suicide note", Category::PlanOrMeans),
    ("plan to die", Category::PlanOrMeans),
    ("plan to end my life", Category::PlanOrMeans),
    // Hopelessness and burden.
    ("no reason to live", Category::Hopelessness),
    ("nothing to live for", Category::Hopelessness),
    ("not worth living", Category::Hopelessness),
    ("no point in living", Category::Hopelessness),
    ("no point living", Category::Hopelessness),
    ("tired of living", Category::Hopelessness),
    ("tired of being alive", Category::Hopelessness),
    ("sick of living", Category::Hopelessness),
    ("can not go on", Category::Hopelessness),
    ("can not do this anymore", Category::Hopelessness),
    ("can not take it anymore", Category::Hopelessness),
    ("can not take this anymore", Category::Hopelessness),
    ("no way out", Category::Hopelessness),
    ("hopeless", Category::Hopelessness),
    ("better off without me", Category::Hopelessness),
    ("nobody would miss me", Category::Hopelessness),
    ("no one would miss me", Category::Hopelessness),
    ("can not do this no more", Category::Hopelessness),
    ("can not take it no more", Category::Hopelessness),
    ("i am a burden", Category::Hopelessness),
    ("burden to everyone", Category::Hopelessness),
    ("want it all to stop", Category::Hopelessness),
    ("want it to be over", Category::Hopelessness),
    ("disappear forever", Category::Hopelessness),
    // Farewells.
    ("goodbye forever", Category::Farewell),
    ("this is goodbye", Category::Farewell),
    ("final goodbye", Category::Farewell),
    ("my last message", Category::Farewell),
    ("will not be around much longer", Category::Farewell),
    ("will not be here much longer", Category::Farewell),
    ("say goodbye to everyone", Category::Farewell),
    ("gave away all my", Category::Farewell),
    ("giving away all my", Category::Farewell),
    ("give away all my", Category::Farewell),
    // Spanish basics.
    ("suicidio", Category::Intent),
    ("suicidarme", Category::Intent),
    ("matarme", Category::Intent),
    ("quiero morir", Category::Intent),
    ("quiero morirme", Category::Intent),
    ("me quiero morir", Category::Intent),
    ("me voy a matar", Category::Intent),
    ("me quiero matar", Category::Intent),
    ("me voy a suicidar", Category::Intent),
    ("quiero desaparecer", Category::Hopelessness),
    ("cansado de vivir", Category::Hopelessness),
    ("cansada de vivir", Category::Hopelessness),
    ("no quiero vivir", Category::Intent),
    ("quitarme la vida", Category::Intent),
    ("acabar con mi vida", Category::Intent),
    ("mejor muerto", Category::Intent),
    ("mejor muerta", Category::Intent),
    ("hacerme daño", Category::SelfHarm),
    ("cortarme", Category::SelfHarm),
    ("no aguanto más", Category::Hopelessness),
    ("no aguanto mas", Category::Hopelessness),
    ("no vale la pena vivir", Category::Hopelessness),
    ("adiós para siempre", Category::Farewell),
];

/// Where a matched phrase comes from.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case", tag = "source")]
pub enum Source {
    /// The built-in floor.
    Floor { category: Category },
    /// A keyword of a critical alert in the rules.
    Rule { alert: String },
}

/// A crisis phrase found in a text.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub(crate) struct CrisisMatch {
    /// The phrase as the floor or the rule writes it.
    pub phrase: String,
    #[serde(flatten)]
    pub source: Source,
}

struct Phrase {
    text: String,
    words: Vec<String>,
    source: Source,
}

/// The floor plus one rule set's critical keywords, ready to match.
pub(crate) struct CrisisMatcher {
    /// Rule phrases first: a match names the alert (and its reply).
    phrases: Vec<Phrase>,
}

impl CrisisMatcher {
    /// The floor alone.
    pub(crate) fn floor() -> CrisisMatcher {
        CrisisMatcher::with_rules(None)
    }

    /// The floor extended by the keywords of `rules`' critical alerts.
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
                    source: Source::Rule {
                        alert: alert.id.clone(),
                    },
                });
            }
        }
        for (text, category) in FLOOR {
            phrases.push(Phrase {
                text: (*text).to_owned(),
                words: phrase_words(text),
                source: Source::Floor {
                    category: *category,
                },
            });
        }
        phrases.retain(|p| !p.words.is_empty());
        CrisisMatcher { phrases }
    }

    /// The first phrase found (a rule's before the floor's), if any.
    pub(crate) fn find(&self, text: &Normalized) -> Option<CrisisMatch> {
        #[cfg(test)]
        FINDS.with(|n| n.set(n.get() + 1));
        self.phrases
            .iter()
            .find(|p| contains(&text.words, &p.words))
            .map(|p| CrisisMatch {
                phrase: p.text.clone(),
                source: p.source.clone(),
            })
    }
}

#[cfg(test)]
thread_local! {
    /// How many times [`CrisisMatcher::find`] ran on this thread: tests
    /// check that a text is screened once.
    pub(crate) static FINDS: std::cell::Cell<usize> = const { std::cell::Cell::new(0) };
}

/// A text read once for crisis language: normalised, and the first crisis
/// phrase in it. The worker screens a text to hand crisis texts over
/// first; deciding it reads the same screening, so the matcher runs once
/// per text.
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

/// Whether `phrase` occurs in `words` as the same consecutive words (both
/// normalised): how a routine alert's keywords match, predictably, so
/// "kill" is in "I could kill for a coffee" but not in "skill" or
/// "killing time". The crisis check is more generous ([`contains`]).
pub(crate) fn contains_exactly(words: &[String], phrase: &[String]) -> bool {
    phrase.len() <= words.len() && words.windows(phrase.len()).any(|w| w == phrase)
}

/// Whether `phrase` occurs in `words` as consecutive words, allowing the
/// inflections and slips of [`same_word`].
fn contains(words: &[String], phrase: &[String]) -> bool {
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

fn one_edit(a: &str, b: &str) -> bool {
    let (a, b): (Vec<char>, Vec<char>) = (a.chars().collect(), b.chars().collect());
    if a.len().abs_diff(b.len()) > 1 {
        return false;
    }
    let prefix = a.iter().zip(&b).take_while(|(x, y)| x == y).count();
    let (ra, rb) = (&a[prefix..], &b[prefix..]);
    let suffix_eq = |x: &[char], y: &[char]| x == y;
    match (ra.len(), rb.len()) {
        (0, 0) => true,
        (la, lb) if la == lb => {
            suffix_eq(&ra[1..], &rb[1..])
                || (la >= 2 && ra[0] == rb[1] && ra[1] == rb[0] && suffix_eq(&ra[2..], &rb[2..]))
        }
        (la, lb) if la > lb => suffix_eq(&ra[1..], rb),
        _ => suffix_eq(ra, &rb[1..]),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::normalize::normalize;

    /// Crisis texts: every one must match the floor.
    const CRISIS: &[&str] = &[
        // Inflections, spaced letters, short-word slips, hoarded means.
        "I keep thinking about harming myself",
        "I burned myself last night",
        "I started self-harming again",
        "I have pills saved up and I'm going to take them all",
        "i wnt to die",
        "I want to d i e",
        "ending it all tonight",
        "I want to end it all",
        "i want to die",
        "I wanna die",
        "want 2 die",
        "I just want to dieeee",
        "im going to kill myself",
        "I'm going to kill my self tonight",
        "KILL MYSELF",
        "thinking about killing myself",
        "kms",
        "honestly kms",
        "i might unalive myself",
        "thinking about suicide",
        "I feel suicidal",
        "been feeling suicidle lately",
        "su1c1de",
        "sucide",
        "suicde thoughts again",
        "sewerslide",
        "I'm not going to kill myself but I think about it",
        "I used to want to die",
        "What if I just ended my life",
        "I want to end my life",
        "i wish i was dead",
        "wish I were dead",
        "everyone would be better off without me",
        "I'd be better off dead",
        "I don't want to live anymore",
        "dont want to be alive",
        "I don't want to wake up tomorrow",
        "I hope I never wake up",
        "no reason to live",
        "there is nothing to live for",
        "life is not worth living",
        "I can't go on like this",
        "I cant do this anymore",
        "i can't do this any more",
        "good bye forever",
        "i can't take it anymore",
        "there's no way out",
        "I feel hopeless",
        "I'm a burden to everyone",
        "I've been cutting myself again",
        "i cut myself last night",
        "I want to hurt myself",
        "self harm",
        "self-harm urges",
        "selfharm",
        "I took all my pills",
        "I've been stockpiling pills",
        "I bought a gun",
        "I'm going to hang myself",
        "I'm going to jump off a bridge",
        "I'm going to overdose",
        "I wrote a suicide note",
        "this is goodbye",
        "goodbye forever everyone",
        "this is my last message",
        "I won't be around much longer",
        "me quiero morir",
        "quiero morirme",
        "ya no quiero vivir",
        "voy a matarme",
        "pienso en el suicidio",
        "no aguanto más",
        "quiero quitarme la vida",
        "STOP, I can't do this anymore, I want to die",
    ];

    /// Look-alikes: none may match the floor.
    const BENIGN: &[&str] = &[
        "I want to make my life better",
        "I saved up for new shoes",
        "a b c, easy as 1 2 3",
        "this playlist is killer",
        "my car died on the highway",
        "I was dying of laughter",
        "that workout killed my legs",
        "I'm dead tired",
        "the battery is dead",
        "we killed it at the presentation",
        "I could kill for a coffee",
        "my plant died",
        "my phone died",
        "I'm killing time before group",
        "it's the end of the week",
        "let's end the call early",
        "I cut my hair",
        "I cut the grass",
        "I'm over the moon",
        "going to hang out with friends",
        "I'm hanging in there",
        "shoot me a text",
        "I jumped off the couch",
        "I took my pills this morning",
        "the movie was to die for",
        "I nearly died laughing",
        "this homework is killing me",
        "my feet are killing me",
        "it's a dead end job",
        "the deadline is Friday",
        "feeling hopeful today",
        "I can't wait for group",
        "I can't go out tonight",
        "better off without sugar",
        "bored to death",
        "my grandmother died last year",
        "I have a plan for the weekend",
        "my rent is overdue",
        "I'm skilled at cooking",
        "I climbed Kilimanjaro",
        "my self-esteem is better",
        "I hurt my back",
        "4",
        "10 out of 10",
        "doing great thanks",
        "estoy bien, gracias",
        "me muero de risa",
    ];

    #[test]
    fn every_crisis_phrasing_matches_the_floor() {
        let m = CrisisMatcher::floor();
        let missed: Vec<&&str> = CRISIS
            .iter()
            .filter(|t| m.find(&normalize(t)).is_none())
            .collect();
        assert!(missed.is_empty(), "missed: {missed:#?}");
        assert!(CRISIS.len() >= 60);
    }

    #[test]
    fn no_look_alike_matches_the_floor() {
        let m = CrisisMatcher::floor();
        let hits: Vec<(&&str, CrisisMatch)> = BENIGN
            .iter()
            .filter_map(|t| m.find(&normalize(t)).map(|h| (t, h)))
            .collect();
        assert!(hits.is_empty(), "false alerts: {hits:#?}");
        assert!(BENIGN.len() >= 40);
    }

    #[test]
    fn a_match_names_its_phrase_and_where_it_came_from() {
        let m = CrisisMatcher::floor();
        let hit = m.find(&normalize("I'm NOT going to k1ll myslef")).unwrap();
        assert_eq!(hit.phrase, "kill myself");
        assert_eq!(
            hit.source,
            Source::Floor {
                category: Category::Intent
            }
        );
    }

    #[test]
    fn rules_extend_the_floor_and_a_rule_match_names_its_alert() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(
            dir.path().join("alerts.yaml"),
            r#"templates:
  crisis-resources:
    body: "Call or text 988."
alerts:
  - id: means-at-hand
    severity: critical
    keywords: ["pills are ready", "kill myself"]
    reply: crisis-resources
  - id: mild
    severity: warning
    keywords: ["feeling low"]
"#,
        )
        .unwrap();
        let rules = crate::config::load_dir(dir.path()).unwrap().rules.unwrap();
        let m = CrisisMatcher::with_rules(Some(&rules));
        let hit = m.find(&normalize("the pills are ready")).unwrap();
        assert_eq!(
            hit.source,
            Source::Rule {
                alert: "means-at-hand".into()
            }
        );
        // A rule repeating a floor phrase names the rule's alert.
        let hit = m.find(&normalize("kill myself")).unwrap();
        assert_eq!(
            hit.source,
            Source::Rule {
                alert: "means-at-hand".into()
            }
        );
        // Warning alerts are not crisis phrases; the floor is still there.
        assert_eq!(m.find(&normalize("feeling low")), None);
        assert!(m.find(&normalize("i want to die")).is_some());
        assert_eq!(
            CrisisMatcher::floor().find(&normalize("the pills are ready")),
            None
        );
    }

    #[test]
    fn some_benign_sentences_match_on_purpose() {
        // The trade-off docs/CRISIS.md states: these reach a person.
        let m = CrisisMatcher::floor();
        for t in ["I cut myself a slice of cake", "no way out of this traffic"] {
            assert!(m.find(&normalize(t)).is_some(), "{t}");
        }
    }

    #[test]
    fn one_edit_means_one_letter_added_dropped_changed_or_two_swapped() {
        for (a, b) in [
            ("suicide", "suicide"),
            ("suicde", "suicide"),
            ("suiccide", "suicide"),
            ("suicdie", "suicide"),
            ("suicidx", "suicide"),
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
