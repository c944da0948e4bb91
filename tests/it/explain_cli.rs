//! `hearth explain` on the real binary: the reply pipeline's decision on
//! one text, without a database.

use std::process::{Command, Output};

fn explain(rules: &std::path::Path, text: &str) -> serde_json::Value {
    let out = run(rules, text);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).unwrap()
}

fn run(rules: &std::path::Path, text: &str) -> Output {
    run_with(rules, text, &[])
}

fn run_with(rules: &std::path::Path, text: &str, extra: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_hearth"))
        .args(["explain", "--format", "json", "--text", text, "--rules"])
        .arg(rules)
        .args(extra)
        .env_remove("HEARTH_SETTINGS")
        .output()
        .unwrap()
}

fn explain_with(text: &str, extra: &[&str]) -> serde_json::Value {
    let rules = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("rules");
    let out = run_with(&rules, text, extra);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).unwrap()
}

#[test]
fn explain_answers_a_survey_question_fires_alerts_and_folds_incidents_on_the_starter_rules() {
    // A low mood answer: stored, the survey completes, low-mood fires.
    let low = explain_with("2", &["--answering", "mood-checkin.mood"]);
    assert_eq!(low["survey"]["state"], "completed", "{low:#}");
    assert_eq!(low["survey"]["answer"], 2);
    let fired: Vec<&str> = low["alerts"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|a| a["fired"] == true)
        .map(|a| a["id"].as_str().unwrap())
        .collect();
    assert_eq!(fired, vec!["low-mood"], "{low:#}");
    let templates: Vec<&str> = low["replies"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|r| r["template"].as_str())
        .collect();
    assert!(templates.contains(&"low-mood-support"), "{templates:?}");

    // With a critical incident open, low-mood joins it (one page, not two).
    let grouped = explain_with(
        "2",
        &[
            "--answering",
            "mood-checkin.mood",
            "--open-incident",
            "crisis-language",
        ],
    );
    let alert = grouped["alerts"]
        .as_array()
        .unwrap()
        .iter()
        .find(|a| a["id"] == "low-mood")
        .unwrap()
        .clone();
    assert!(
        alert["incident"]
            .as_str()
            .unwrap()
            .contains("joins open incident"),
        "{alert:#}"
    );

    // Not a number: re-prompted, and no alert.
    let banana = explain_with("banana", &["--answering", "mood-checkin.mood"]);
    assert_eq!(banana["survey"]["state"], "reprompted");
    assert!(banana["survey"]["reason"].as_str().unwrap().len() > 3);
    // Re-prompted enough: given up.
    let gave_up = explain_with(
        "banana",
        &["--answering", "mood-checkin.mood", "--reprompts", "1"],
    );
    assert_eq!(gave_up["survey"]["state"], "gave_up");

    // Crisis pre-empts the survey; STOP closes it.
    let crisis = explain_with(
        "I want to end it all",
        &["--answering", "mood-checkin.mood"],
    );
    assert_eq!(crisis["crisis"]["matched"], true);
    assert_eq!(crisis["crisis"]["alert"], "crisis-language");
    assert_eq!(crisis["survey"]["state"], "preempted");
    assert_eq!(crisis["compliance"], serde_json::Value::Null);
    let stop = explain_with("STOP", &["--answering", "mood-checkin.mood"]);
    assert_eq!(stop["survey"]["state"], "stopped");
    assert_eq!(stop["replies"][0]["kind"], "compliance");

    // An opted-out member: the crisis reply still goes, no other reply.
    let opted = explain_with("I want to die", &["--opted-out"]);
    let kinds: Vec<&str> = opted["replies"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["kind"].as_str().unwrap())
        .collect();
    assert_eq!(kinds, vec!["crisis"]);
    // An unknown sender: crisis only; plain text gets nothing.
    let unknown = explain_with("hello?", &["--unknown-sender"]);
    assert_eq!(unknown["sender"]["kind"], "unknown");
    assert_eq!(unknown["replies"], serde_json::json!([]));
}

#[test]
fn explain_refuses_bad_options_with_a_hint() {
    let rules = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("rules");
    for (extra, says) in [
        (vec!["--answering", "mood"], "SURVEY.QUESTION"),
        (vec!["--answering", "nosuch.q"], "no survey `nosuch`"),
        (
            vec!["--answering", "mood-checkin.feel"],
            "its questions are mood",
        ),
        (vec!["--member-attr", "level"], "KEY=VALUE"),
        (vec!["--open-incident", "nope"], "no alert `nope`"),
        (vec!["--at", "tuesday"], "--at `tuesday`"),
    ] {
        let out = run_with(&rules, "hi", &extra);
        assert_eq!(out.status.code(), Some(1), "{extra:?}");
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(err.contains(says), "{extra:?}: {err}");
        assert!(
            err.contains("hint:") || extra[0] == "--open-incident" || extra[0] == "--answering",
            "{extra:?}: {err}"
        );
    }
}

#[test]
fn explain_shows_the_crisis_match_its_source_and_the_compliance_keyword() {
    let dir = tempfile::tempdir().unwrap();
    crate::support::write(
        &dir.path().join("rules.yaml"),
        r#"templates:
  crisis-resources:
    body: "Call or text 988, or call 911."
  hello:
    body: "Hi {{ member.first_name }}"
alerts:
  - id: means
    severity: critical
    keywords: ["pills are ready"]
    reply: crisis-resources
schedules:
  - { id: weekly, template: hello, cron: "0 12 * * THU" }
"#,
    );
    let both = explain(dir.path(), "STOP, I can't do this anymore, I want to diiie");
    assert_eq!(both["crisis"]["matched"], true);
    assert_eq!(both["crisis"]["source"], "floor");
    assert_eq!(both["crisis"]["phrase"], "want to die");
    assert_eq!(both["compliance"], "stop");
    assert_eq!(
        both["normalised"],
        "stop, i can't do this anymore, i want to diiie"
    );

    let rule = explain(dir.path(), "The PILLS are ready.");
    assert_eq!(rule["crisis"]["source"], "rule");
    assert_eq!(rule["crisis"]["alert"], "means");
    assert!(rule["compliance"].is_null());

    let benign = explain(dir.path(), "this playlist is killer");
    assert_eq!(benign["crisis"]["matched"], false);
    assert_eq!(benign["survey"]["state"], "none");
    assert_eq!(benign["alerts"][0]["id"], "means");
    assert_eq!(benign["alerts"][0]["fired"], false);
    assert_eq!(benign["replies"], serde_json::json!([]));
    assert_eq!(
        rule["replies"][0]["template"], "crisis-resources",
        "the rule's reply: {rule:#}"
    );

    let bad = run(&dir.path().join("missing"), "hi");
    assert_eq!(bad.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&bad.stderr).contains("cannot read rules directory"));
}
