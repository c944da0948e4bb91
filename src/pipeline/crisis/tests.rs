//! Unit tests of the crisis detector: one per construct and per
//! combination rule, what becomes a warning, idioms, Spanish clitic
//! orders, emoji, rule phrases, and no-panic / determinism properties.

use super::*;

fn find(text: &str) -> Option<CrisisMatch> {
    CrisisMatcher::floor().find(&normalize(text))
}

fn critical(text: &str) -> CrisisMatch {
    let m = find(text).unwrap_or_else(|| panic!("{text:?}: no match"));
    assert_eq!(m.severity, CrisisSeverity::Critical, "{text:?}: {m:?}");
    m
}

fn warning(text: &str) -> CrisisMatch {
    let m = find(text).unwrap_or_else(|| panic!("{text:?}: no match"));
    assert_eq!(m.severity, CrisisSeverity::Warning, "{text:?}: {m:?}");
    m
}

fn names(m: &CrisisMatch) -> Vec<Construct> {
    m.constructs.iter().map(|f| f.name).collect()
}

#[test]
fn the_lexicon_compiles() {
    assert!(lexicon::compile().unwrap().len() > 300);
    assert!(lexicon::LEXICON.len() > 300);
}

#[test]
fn each_construct_standing_alone_is_critical_and_named_with_its_words() {
    for (text, construct, word) in [
        ("i wish i was dead", Construct::DeathWish, "dead"),
        ("I'm going to kill myself", Construct::Intent, "myself"),
        ("cutting again", Construct::SelfHarm, "cutting"),
        ("took 30 of my seroquel", Construct::Attempt, "30"),
        ("im a burden to everyone", Construct::Burden, "burden"),
        ("this is goodbye", Construct::Farewell, "goodbye"),
        ("i tied a noose", Construct::Means, "noose"),
        ("picked the date. the 14th", Construct::Readiness, "date"),
    ] {
        let m = critical(text);
        let f = m
            .constructs
            .iter()
            .find(|f| f.name == construct)
            .unwrap_or_else(|| panic!("{text:?}: {m:?}"));
        assert!(f.words.iter().any(|w| w == word), "{text:?}: {f:?}");
    }
}

#[test]
fn means_with_readiness_or_immediacy_is_critical_and_means_alone_is_quiet() {
    let m = critical("bought rope at home depot");
    assert!(names(&m).contains(&Construct::Means) && names(&m).contains(&Construct::Readiness));
    let m = critical("🌉 tonight");
    assert_eq!(m.rule, "means + immediacy");
    assert_eq!(
        find("bridge is closed for construction, taking the long way"),
        None
    );
    assert_eq!(find("picked up my pills on the way, be there soon"), None);
}

#[test]
fn a_farewell_with_finality_or_no_return_is_critical_and_with_a_return_is_quiet() {
    critical("thanks for the last 2 years. goodnight forever");
    critical("goodbye everyone");
    assert_eq!(find("goodbye for now, see yall next tuesday"), None);
}

#[test]
fn an_attempt_marker_with_a_substance_or_quantity_is_critical() {
    critical("swallowed like 40 advil idk");
    critical("mixing my benzos and vodka on purpose");
}

#[test]
fn burden_with_absence_is_critical() {
    critical("it would be easier for everyone if i wasnt here");
    critical("nobody would notice if i was gone");
}

#[test]
fn hopelessness_alone_is_a_warning_and_with_a_means_critical() {
    warning("theres no point to anything. nothing will ever get better");
}

#[test]
fn negation_past_third_person_and_questions_are_warnings_naming_the_construct() {
    for (text, why) in [
        ("I'm not going to kill myself", "negated"),
        ("a year ago i wanted to die", "in the past"),
        (
            "my son keeps saying he wants to kill himself",
            "about someone else",
        ),
        ("what if i said i was suicidal", "a question"),
    ] {
        let m = warning(text);
        assert!(m.rule.contains(why), "{text:?}: {}", m.rule);
        assert!(!m.constructs.is_empty());
    }
}

#[test]
fn idioms_stay_quiet_and_silence_only_their_own_words() {
    for text in [
        "my feet are killing me",
        "dying to see everyone thursday!!",
        "me muero de risa",
        "that cheesecake was to die for",
        "i could kill for a coffee rn",
    ] {
        assert_eq!(find(text), None, "{text:?}");
    }
    // The idiom's words are out; the rest of the text is still read.
    critical("my feet are killing me and i want to die");
    critical("ive wanted to die for weeks and im going to");
}

#[test]
fn both_spanish_clitic_orders_are_the_same_intent() {
    for text in [
        "me quiero matar",
        "quiero matarme",
        "me voy a matar",
        "voy a quitarme la vida",
    ] {
        assert!(
            names(&critical(text)).contains(&Construct::Intent),
            "{text:?}"
        );
    }
    warning("no me voy a matar no se preocupen");
    warning("mi hermano dice que se quiere morir");
}

#[test]
fn emoji_stand_for_constructs() {
    critical("⚰️ soon");
    critical("got the 🪢 ready");
    critical("🥃 + 💊 = goodnight");
    assert_eq!(find("💀💀💀"), None);
    assert_eq!(find("the printer jammed AGAIN 🔫🔫 i swear"), None);
}

#[test]
fn misspellings_and_spaced_letters_still_match() {
    critical("i want to d i e");
    critical("i'm gonna kill myslef");
    critical("been thinking about sucide");
}

#[test]
fn rules_add_phrases_that_are_critical_and_name_their_alert() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("alerts.yaml"),
        r#"templates:
  crisis-resources:
    body: "Call or text 988."
alerts:
  - id: means-at-hand
    severity: critical
    keywords: ["code purple"]
    reply: crisis-resources
  - id: mild
    severity: warning
    keywords: ["feeling low"]
"#,
    )
    .unwrap();
    let rules = crate::config::load_dir(dir.path()).unwrap().rules.unwrap();
    let m = CrisisMatcher::with_rules(Some(&rules));
    let hit = m.find(&normalize("it is code purple here")).unwrap();
    assert_eq!(
        hit.source,
        Source::Rule {
            alert: "means-at-hand".into()
        }
    );
    assert_eq!(hit.severity, CrisisSeverity::Critical);
    // A warning alert adds nothing; the detector is still there.
    assert_eq!(m.find(&normalize("feeling low")), None);
    assert!(m.find(&normalize("i want to die")).is_some());
    assert_eq!(find("it is code purple here"), None);
    // A rule cannot remove a construct: the detector's constructs ride along.
    let hit = m.find(&normalize("code purple, i want to die")).unwrap();
    assert!(
        hit.constructs
            .iter()
            .any(|f| f.name == Construct::DeathWish)
    );
}

#[test]
fn no_text_makes_the_detector_panic_and_it_is_deterministic() {
    let mut rng = crate::testing::Rng::new(0x5eed_c0de_1717);
    let alphabet: Vec<char> =
        "aeiklmnostdy 0123456789'’!?.,@$ ÁéñÑ\u{301}ß\u{fb01}\u{200b}\t\n⚰️🪢💊🔫🔪👋😂"
            .chars()
            .collect();
    let words = [
        "kill", "myself", "pills", "tonight", "me", "quiero", "matarme", "not", "a", "year", "ago",
    ];
    let m = CrisisMatcher::floor();
    for _ in 0..3_000 {
        let len = rng.below(40);
        let mut text = String::new();
        for _ in 0..len {
            if rng.below(3) == 0 {
                let w: &&str = rng.pick(&words[..]);
                text.push_str(w);
                text.push(' ');
            } else {
                text.push(*rng.pick(&alphabet));
            }
        }
        let n = normalize(&text);
        assert_eq!(m.find(&n), m.find(&n), "{text:?}");
    }
}
