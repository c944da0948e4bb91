//! `hearth preview` as staff run it: the real binary, with and without a
//! database.

use std::path::Path;
use std::process::{Command, Output};

use crate::support::{settings_yaml, write};

const RULES: &str = r#"groups:
  - id: monday
    name: Monday Group
    timezone: America/New_York
    sessions:
      cron: "0 18 * * MON"
      duration: 90m
      cancelled: ["2026-03-09"]
      extra:
        - { date: "2026-03-11", at: "18:00" }
templates:
  reminder:
    body: "Hi {{ member.first_name }}, {{ group.name }} meets {{ session.when }} at {{ session.starts_at | time }}."
  ping:
    body: "Hi {{ member.first_name }} {{ member.last_name }}, how are you?"
schedules:
  - id: day-before
    template: reminder
    groups: [monday]
    before_session: 1d
    at: "17:00"
  - id: own-noon
    template: ping
    cron: "0 12 * * TUE"
"#;

const ROSTER: &str = "external_id,first_name,last_name,phone,timezone,groups,consent
M-1,Annabelle,Quince,+15555550101,America/New_York,monday,yes
M-2,Bartholomew,Ruiz,+15555550102,America/Chicago,monday,yes
M-3,Cordelia,Stone,+15555550103,America/New_York,monday,no
";

fn deployment() -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    write(&dir.path().join("hearth.yaml"), &settings_yaml());
    write(&dir.path().join("rules/rules.yaml"), RULES);
    write(&dir.path().join("roster.csv"), ROSTER);
    dir
}

fn hearth(dir: &Path, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_hearth"))
        .arg("--settings")
        .arg(dir.join("hearth.yaml"))
        .args(args)
        .env_remove("HEARTH_SETTINGS")
        .output()
        .unwrap()
}

fn json(out: &Output) -> Vec<serde_json::Value> {
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).unwrap()
}

const WEEK: [&str; 4] = ["--from", "2026-03-07", "--to", "2026-03-14"];

#[test]
fn without_a_database_preview_lists_fires_cancelled_and_extra_sessions_and_no_recipients() {
    let dir = deployment();
    let rules = dir.path().join("rules");
    let mut args = vec!["preview", "--rules", rules.to_str().unwrap()];
    args.extend(WEEK);
    args.extend(["--timezone", "America/New_York", "--format", "json"]);
    // No database file exists, and none is created.
    let fires = json(&hearth(dir.path(), &args));
    assert!(!dir.path().join("state").exists());
    let short: Vec<(String, String, String)> = fires
        .iter()
        .map(|f| {
            (
                f["schedule"].as_str().unwrap().to_owned(),
                f["status"].as_str().unwrap().to_owned(),
                f["fire_local"].as_str().unwrap().to_owned(),
            )
        })
        .collect();
    assert_eq!(
        short
            .iter()
            .map(|(s, st, l)| (s.as_str(), st.as_str(), l.as_str()))
            .collect::<Vec<_>>(),
        [
            // Monday 03-09's session is cancelled: its reminder shows, not sent.
            ("day-before", "cancelled", "2026-03-08T17:00:00-04:00"),
            ("own-noon", "scheduled", "2026-03-10T12:00:00-04:00"),
            // Wednesday 03-11's extra session gets its reminder.
            ("day-before", "scheduled", "2026-03-10T17:00:00-04:00"),
        ]
    );
    let extra = &fires[2];
    assert_eq!(extra["extra_session"], true);
    assert_eq!(extra["group"], "monday");
    assert_eq!(extra["timezone"], "America/New_York");
    assert_eq!(extra["fire_utc"], "2026-03-10T21:00:00+00:00");
    assert_eq!(extra["session_utc"], "2026-03-11T22:00:00+00:00");
    assert!(extra["recipients"].is_null());
    assert!(extra["sample"].is_null());
    let own_noon = &fires[1];
    assert_eq!(own_noon["scope"], "tz:America/New_York");
    assert!(own_noon["group"].is_null());
    assert!(own_noon["session_utc"].is_null());
}

#[test]
fn with_the_database_preview_counts_recipients_and_masks_the_sample() {
    let dir = deployment();
    let out = hearth(
        dir.path(),
        &[
            "members",
            "import",
            dir.path().join("roster.csv").to_str().unwrap(),
            "--consent-text",
            "I agree.",
        ],
    );
    assert_eq!(out.status.code(), Some(0), "{out:?}");
    let mut args = vec!["preview"];
    args.extend(WEEK);
    args.extend(["--format", "json"]);
    let out = hearth(dir.path(), &args);
    let fires = json(&out);
    let text = String::from_utf8_lossy(&out.stdout);
    for name in ["Annabelle", "Quince", "Bartholomew", "Ruiz", "Cordelia"] {
        assert!(!text.contains(name), "{name} leaked: {text}");
    }
    let reminder = fires
        .iter()
        .find(|f| f["schedule"] == "day-before" && f["status"] == "scheduled")
        .unwrap();
    // M-3 has no consent.
    assert_eq!(reminder["recipients"], 2);
    assert_eq!(reminder["capped"], 0);
    assert_eq!(
        reminder["sample"],
        "Hi [first_name], Monday Group meets tomorrow at 6:00 PM."
    );
    // One fire per zone the members live in.
    let zones: Vec<&str> = fires
        .iter()
        .filter(|f| f["schedule"] == "own-noon")
        .map(|f| f["scope"].as_str().unwrap())
        .collect();
    assert_eq!(zones, ["tz:America/New_York", "tz:America/Chicago"]);
    let chicago = fires
        .iter()
        .find(|f| f["scope"] == "tz:America/Chicago")
        .unwrap();
    assert_eq!(chicago["recipients"], 1);
    assert_eq!(
        chicago["sample"],
        "Hi [first_name] [last_name], how are you?"
    );

    // One member: only the fires that reach them.
    let mut args = vec!["preview", "--member", "M-2"];
    args.extend(WEEK);
    args.extend(["--format", "json"]);
    let fires = json(&hearth(dir.path(), &args));
    assert!(
        fires
            .iter()
            .all(|f| f["recipients"] == 1 || f["status"] == "cancelled")
    );
    assert!(fires.iter().any(|f| f["scope"] == "tz:America/Chicago"));
    assert!(!fires.iter().any(|f| f["scope"] == "tz:America/New_York"));

    // Text names the scope and says the session is cancelled.
    let mut args = vec!["preview"];
    args.extend(WEEK);
    let out = hearth(dir.path(), &args);
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        text.contains("members in America/Chicago  recipients 1"),
        "{text}"
    );
    assert!(text.contains("CANCELLED"), "{text}");
    assert!(text.contains("(extra)"), "{text}");
}

#[test]
fn preview_refuses_unreadable_times_unknown_ids_and_a_member_without_a_database() {
    let dir = deployment();
    let rules = dir.path().join("rules");
    let rules = rules.to_str().unwrap();
    let cases: [(&[&str], &str, &str); 4] = [
        (
            &["preview", "--rules", rules, "--from", "next tuesday"],
            "error: --from `next tuesday` is not a time",
            "hint: write RFC 3339",
        ),
        (
            &["preview", "--rules", rules, "--schedule", "day-befor"],
            "error: unknown schedule `day-befor`",
            "day-before",
        ),
        (
            &["preview", "--rules", rules, "--member", "M-1"],
            "error: --member needs the database",
            "hint: drop --rules",
        ),
        (
            &[
                "preview",
                "--rules",
                rules,
                "--from",
                "2026-03-10",
                "--to",
                "2026-03-01",
            ],
            "is not after --from",
            "",
        ),
    ];
    for (args, error, hint) in cases {
        let out = hearth(dir.path(), args);
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(1), "{args:?}: {err}");
        assert!(err.contains(error), "{args:?}: {err}");
        assert!(err.contains(hint), "{args:?}: {err}");
    }
}
