//! The crisis check as a table: crisis phrasings that must alert and
//! benign look-alikes that must not, each through the real `hearth explain`
//! binary (the pipeline's own normalisation and matcher, no database).
//!
//! A missed crisis costs more than a false alert, so a look-alike that the
//! matcher cannot tell from a crisis without missing one is pinned in
//! [`PINNED_FALSE_ALERTS`] with its reason instead of being "fixed".
//! Phrasings the matcher misses today are in [`KNOWN_MISSES`]: the test
//! fails the day one of them starts to match, so the list stays true.

use std::path::{Path, PathBuf};
use std::process::Command;

/// Crisis texts, grouped as the issue lists them. Every one must match.
const CRISIS: &[&str] = &[
    // Intent.
    "I want to kill myself",
    "i'm going to kill myself tonight",
    "I want to end it all",
    "I just want to die",
    "I wish I was dead",
    "I'd be better off dead",
    "I don't want to live anymore",
    "I don't want to be alive anymore",
    "I don't want to wake up tomorrow",
    "I hope I never wake up",
    "I'm thinking about suicide",
    "I've been feeling suicidal again",
    "I want to end my life",
    "I'm going to take my own life",
    "I'm ready to die",
    "I'm going to end it tonight",
    "i want to disappear forever",
    // Self-harm.
    "I've been cutting myself again",
    "I want to hurt myself",
    "I used to cut myself",
    "I keep thinking about harming myself",
    "I burned myself last night",
    "I started self-harming again",
    // Plans and means.
    "I took all my pills",
    "I overdosed last night",
    "I bought a gun",
    "there's a loaded gun on my table",
    "I'm going to hang myself",
    "I tied a noose",
    "I want to jump off a bridge",
    "I'm going to jump in front of a train",
    "I wrote a suicide note",
    "I have a plan to end my life",
    "I'm going to slit my wrists",
    "I have pills saved up and I'm going to take them all",
    "I'm planning to kill myself on Friday",
    // Hopelessness and burden.
    "there's no reason to live",
    "I have nothing to live for",
    "life is not worth living",
    "there's no point in living anymore",
    "I'm so tired of living",
    "I can't go on like this",
    "I can't do this anymore",
    "I can't take it anymore",
    "I feel hopeless",
    "I'm a burden to everyone",
    "everyone would be better off without me",
    "there is no way out",
    "I just want it all to stop",
    // Farewells.
    "this is goodbye",
    "goodbye forever, thank you for everything",
    "this is my last message to you",
    "I won't be around much longer",
    "I'm saying goodbye to everyone tonight",
    // Text-speak.
    "i wanna die",
    "i wanna kms",
    "kms",
    "i want to kys",
    "gonna ctb tonight",
    "i want 2 die",
    "i want to unalive myself",
    "I'm going to unalive myself",
    "i'm gonna end it",
    "ending it all tonight",
    "i want to die lol jk",
    // Misspellings, shouting, letter repeats.
    "im gonna kil myself",
    "i want to kil myself",
    "thinking about sucide",
    "i feel suicdal",
    "I WANT TO DIE!!!",
    "I want to diiiie",
    "i wnt to die",
    "I want to d i e",
    "su1c1de",
    "k1ll myself",
    // Spanish basics.
    "quiero morir",
    "me quiero morir",
    "no quiero vivir",
    "estoy pensando en el suicidio",
    "voy a matarme",
    "no aguanto más",
    "quiero quitarme la vida",
    "ya no quiero vivir",
    // Negated, past tense, hypothetical: still shown to a person.
    "I'm not going to kill myself, don't worry",
    "I don't want to die but I think about it",
    "I tried to kill myself last year",
    "I attempted suicide in 2019",
    "what if I just ended my life",
    // Both a crisis and an opt-out.
    "STOP, I can't do this anymore, I want to die",
    // Former known misses, caught since the floor grew.
    "I've been thinking of ending things",
    "I just want to go to sleep and not wake up",
    "nobody would miss me if I was gone",
    "I'm going to take all my sleeping pills",
    "I have the rope ready",
    "I gave away all my stuff",
    "i cant do this no more",
    "im done with life",
    "me voy a matar",
    "quiero desaparecer",
    "estoy cansado de vivir",
    "sui cide",
];

/// Crisis texts the matcher does not catch today (reported to the
/// coordinator; `src/pipeline/crisis.rs` is not this test's to change).
const KNOWN_MISSES: &[(&str, &str)] = &[];

/// Everyday texts with crisis-like words. None may match.
const BENIGN: &[&str] = &[
    "this is a killer playlist",
    "my car died on the highway",
    "I was dying of laughter",
    "I could kill for a coffee right now",
    "my phone died",
    "that workout killed me",
    "the plants died while I was away",
    "I'm dying to see the new movie",
    // Idioms: quiet through the detector's idiom list (issue 17).
    "my feet are killing me",
    "dying to see everyone thursday!!",
    "me muero de risa",
    "this heat is killing me",
    "you're killing it at group!",
    "I killed it at my job interview",
    "this heat is killing me lol",
    "my battery is dead",
    "the meeting was dead boring",
    "let's kill some time before group",
    "time to shoot some hoops",
    "I shot a great photo today",
    "she cut her hair short",
    "I cut my finger chopping onions",
    "the bridge was closed so I took the long way",
    "we crossed the bridge on our walk",
    "I took my pills this morning like the doctor said",
    "my doctor changed my pills",
    "I hung the picture on the wall",
    "hanging out with friends tonight",
    "I'm going to the gun show with my dad",
    "I'm so over this weather",
    "I can't wait for group on Tuesday",
    "I'm hopeful about next week",
    "I feel a lot better today",
    "the skill share was great",
    "I'm skilled at knitting",
    "overdue library book",
    "I'm tired but happy",
    "I could die of embarrassment",
    "the end of the movie was sad",
    "it's the end of the week finally",
    "goodbye for now, see you Tuesday",
    "see you later",
    "I'm feeling better after the session",
    "that joke killed",
    "I'm dead tired",
    "LOL I'm dead",
    "I nailed my presentation",
    "I'm done with my homework",
    "the battery is about to die",
    "I'm going to end the call now",
    "the series finale was the end of it all",
    "we hung out by the bridge",
    "I could just die, that cake was so good",
];

/// Look-alikes that do match, on purpose: not matching them would miss
/// a crisis. Each with the phrase it matches and why it stays.
const PINNED_FALSE_ALERTS: &[(&str, &str, &str)] = &[
    (
        "I cut myself a slice of cake",
        "cut myself",
        "a keyword of the shipped rules' crisis alert (rules add phrases, matched whole words in order); the detector alone is quiet on it",
    ),
    (
        "my last message was a typo",
        "last message",
        "`this is my last message` is a farewell; the detector cannot tell a typo from a goodbye without a return named",
    ),
];

fn shipped_rules() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("rules")
}

/// A rules directory with no critical alert: the built-in floor alone.
fn floor_only_rules() -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    crate::support::write(
        &dir.path().join("rules.yaml"),
        "templates:\n  hello:\n    body: \"Hi\"\nschedules:\n  - { id: weekly, template: hello, cron: \"0 12 * * THU\" }\n",
    );
    dir
}

/// `hearth explain --format json` on each text, a few processes at a time;
/// the JSON `crisis` object of each, in order.
fn crisis_of(rules: &Path, texts: &[&str]) -> Vec<serde_json::Value> {
    let chunks: Vec<&[&str]> = texts.chunks(texts.len().div_ceil(4).max(1)).collect();
    std::thread::scope(|s| {
        let handles: Vec<_> = chunks
            .into_iter()
            .map(|chunk| {
                s.spawn(move || {
                    chunk
                        .iter()
                        .map(|text| explain_crisis(rules, text))
                        .collect::<Vec<_>>()
                })
            })
            .collect();
        handles
            .into_iter()
            .flat_map(|h| h.join().unwrap())
            .collect()
    })
}

fn explain_crisis(rules: &Path, text: &str) -> serde_json::Value {
    let out = Command::new(env!("CARGO_BIN_EXE_hearth"))
        .args(["explain", "--format", "json", "--text", text, "--rules"])
        .arg(rules)
        .env_remove("HEARTH_SETTINGS")
        .output()
        .unwrap();
    assert_eq!(
        out.status.code(),
        Some(0),
        "explain failed on {text:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let json: serde_json::Value = serde_json::from_slice(&out.stdout)
        .unwrap_or_else(|e| panic!("explain printed no JSON for {text:?}: {e}"));
    json["crisis"].clone()
}

/// Every crisis text matches and names its phrase and where it came from.
fn assert_all_match(rules: &Path, what: &str) {
    let results = crisis_of(rules, CRISIS);
    let mut wrong = Vec::new();
    for (text, crisis) in CRISIS.iter().zip(&results) {
        let phrase_ok = crisis["phrase"].as_str().is_some_and(|p| !p.is_empty());
        let source_ok = match crisis["source"].as_str() {
            Some("rule") => crisis["alert"].as_str().is_some_and(|a| !a.is_empty()),
            Some("floor") => crisis["category"].is_string(),
            _ => false,
        };
        if crisis["matched"] != true || !phrase_ok || !source_ok {
            wrong.push(format!("{text:?} -> {crisis}"));
        }
    }
    assert!(
        wrong.is_empty(),
        "{} of {} crisis texts not matched (or matched without phrase and source) with {what}:\n{}",
        wrong.len(),
        CRISIS.len(),
        wrong.join("\n")
    );
}

#[test]
fn the_tables_are_as_large_as_the_issue_asks() {
    assert!(CRISIS.len() >= 60, "{} crisis phrasings", CRISIS.len());
    assert!(BENIGN.len() >= 40, "{} benign look-alikes", BENIGN.len());
}

#[test]
fn every_crisis_phrasing_matches_with_the_shipped_rules_naming_its_phrase_and_source() {
    assert_all_match(&shipped_rules(), "the shipped rules/");
}

#[test]
fn every_crisis_phrasing_matches_on_the_built_in_floor_alone() {
    // Configuration extends the floor but never replaces it: a rules
    // directory without any crisis alert still catches every one.
    let dir = floor_only_rules();
    assert_all_match(dir.path(), "the floor alone");
}

#[test]
fn a_negated_or_past_tense_mention_is_a_warning_naming_the_same_construct() {
    let pairs = [
        ("I want to kill myself", "I'm not going to kill myself"),
        ("I want to kill myself", "I tried to kill myself last year"),
        ("I want to hurt myself", "I don't want to hurt myself"),
    ];
    let texts: Vec<&str> = pairs.iter().flat_map(|(a, b)| [*a, *b]).collect();
    let dir = floor_only_rules();
    let results = crisis_of(dir.path(), &texts);
    for (i, (plain, other)) in pairs.iter().enumerate() {
        let (a, b) = (&results[2 * i], &results[2 * i + 1]);
        assert_eq!(b["matched"], true, "{other:?}: {b}");
        assert_eq!(a["severity"], "critical", "{plain:?}: {a}");
        assert_eq!(b["severity"], "warning", "{other:?}: {b}");
        assert_eq!(
            a["constructs"][0]["name"], b["constructs"][0]["name"],
            "{plain:?} vs {other:?}"
        );
    }
}

#[test]
fn no_benign_look_alike_matches() {
    let results = crisis_of(&shipped_rules(), BENIGN);
    let alerts: Vec<String> = BENIGN
        .iter()
        .zip(&results)
        .filter(|(_, c)| c["matched"] != false)
        .map(|(t, c)| format!("{t:?} -> {c}"))
        .collect();
    assert!(
        alerts.is_empty(),
        "benign texts raised a crisis (pin one in PINNED_FALSE_ALERTS only if avoiding it would miss a crisis):\n{}",
        alerts.join("\n")
    );
}

#[test]
fn the_pinned_false_alerts_still_match_the_phrase_they_are_pinned_for() {
    let texts: Vec<&str> = PINNED_FALSE_ALERTS.iter().map(|(t, _, _)| *t).collect();
    let results = crisis_of(&shipped_rules(), &texts);
    for ((text, phrase, why), crisis) in PINNED_FALSE_ALERTS.iter().zip(&results) {
        assert!(!why.is_empty());
        assert_eq!(
            crisis["matched"], true,
            "{text:?} no longer matches ({crisis}): move it to BENIGN"
        );
        assert!(
            crisis["phrase"]
                .as_str()
                .is_some_and(|p| p.contains(phrase)),
            "{text:?} no longer matches `{phrase}` ({crisis}): move it to BENIGN"
        );
    }
}

#[test]
fn the_known_misses_are_still_misses_so_the_list_stays_true() {
    let texts: Vec<&str> = KNOWN_MISSES.iter().map(|(t, _)| *t).collect();
    let results = crisis_of(&shipped_rules(), &texts);
    let caught: Vec<String> = KNOWN_MISSES
        .iter()
        .zip(&results)
        .filter(|(_, c)| c["matched"] == true)
        .map(|((t, _), c)| format!("{t:?} -> {c}"))
        .collect();
    assert!(
        caught.is_empty(),
        "the matcher now catches these: move them from KNOWN_MISSES to CRISIS\n{}",
        caught.join("\n")
    );
}
