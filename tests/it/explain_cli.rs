//! `hearth explain` on the real binary: the crisis check and compliance
//! keywords it has so far, without a database.

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
    Command::new(env!("CARGO_BIN_EXE_hearth"))
        .args(["explain", "--format", "json", "--text", text, "--rules"])
        .arg(rules)
        .env_remove("HEARTH_SETTINGS")
        .output()
        .unwrap()
}

#[test]
fn explain_shows_the_crisis_match_its_source_and_the_compliance_keyword() {
    let dir = tempfile::tempdir().unwrap();
    crate::helpers::write(
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
    assert_eq!(
        benign["not_built"],
        serde_json::json!(["survey", "alerts", "replies"])
    );

    let bad = run(&dir.path().join("missing"), "hi");
    assert_eq!(bad.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&bad.stderr).contains("cannot read rules directory"));
}
