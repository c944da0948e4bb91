//! `hearth incidents` as staff run it: the real binary on a temp
//! deployment whose encrypted database holds incidents recorded through
//! the store.

use std::path::Path;
use std::process::{Command, Output};

use chrono::Utc;
use hearth::domain::incident::{AlertHit, Severity, Subject};
use hearth::domain::message::InboundSms;
use hearth::store::import::{self, ImportOptions};
use hearth::store::prelude::*;
use hearth::store::sqlite::{KeySource, SqliteStore};
use hearth::store::traits::IncidentStore;

use crate::support::{settings_yaml, write};

const ROSTER: &str = "external_id,first_name,phone,timezone,groups,consent
M-001,Annabelle,+15555550101,America/New_York,tuesday-anxiety,yes
M-002,Bartholomew,+15555550102,America/Chicago,tuesday-anxiety,yes
";

fn hearth(dir: &Path, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_hearth"))
        .arg("--settings")
        .arg(dir.join("hearth.yaml"))
        .args(args)
        .env_remove("HEARTH_SETTINGS")
        .output()
        .unwrap()
}

fn out(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

fn err(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

fn hit(alert: &str, severity: Severity, subject: Subject, evidence: &str) -> AlertHit {
    AlertHit {
        alert: alert.into(),
        severity,
        subject,
        inbound_id: None,
        evidence: evidence.into(),
        realert: None,
        escalate: None,
        reply_key: None,
        quote: None,
    }
}

/// A deployment with two members and three incidents: a critical one for
/// M-001 (with a low-mood hit grouped into it), a warning for M-002
/// (resolved), and one for an unknown sender. Returns the incident ids.
async fn deployment() -> (tempfile::TempDir, [i64; 3]) {
    let dir = tempfile::tempdir().unwrap();
    write(&dir.path().join("hearth.yaml"), &settings_yaml());
    write(
        &dir.path().join("rules/rules.yaml"),
        "groups:\n  - { id: tuesday-anxiety, name: Tuesday, timezone: America/New_York }\n",
    );
    let store = SqliteStore::open_at(
        &dir.path().join("state/hearth.db"),
        &KeySource::Generated(dir.path().join("state/hearth.db.key")),
    )
    .unwrap()
    .0;
    let groups = ["tuesday-anxiety"].iter().map(|s| s.to_string()).collect();
    let (rows, invalid) =
        import::parse(ROSTER.as_bytes(), &groups, Utc::now().date_naive()).unwrap();
    store
        .import_members(
            rows,
            invalid,
            ImportOptions {
                skip_invalid: false,
                consent_text: Some("I agree.".into()),
                actor: "test".into(),
                source_name: "roster.csv".into(),
            },
        )
        .await
        .unwrap();
    let m1 = store.member("M-001").await.unwrap().unwrap().id;
    let m2 = store.member("M-002").await.unwrap().unwrap().id;
    let stranger = match store
        .record_inbound(InboundSms {
            provider: "test".into(),
            provider_message_id: "x1".into(),
            from: "+15555550177".into(),
            to: "+15555550199".into(),
            body: "goodbye everyone".into(),
            keyword: None,
        })
        .await
        .unwrap()
    {
        hearth::domain::message::Received::New(id) => id,
        other => panic!("{other:?}"),
    };
    let mut unknown = hit(
        "crisis",
        Severity::Critical,
        Subject::Number("+15555550177".into()),
        "matched `goodbye everyone` (floor)",
    );
    unknown.inbound_id = Some(stranger);
    let out = store
        .record_hits(
            vec![
                hit(
                    "crisis",
                    Severity::Critical,
                    Subject::Member(m1),
                    "matched `end it all`",
                ),
                hit(
                    "low-mood",
                    Severity::Warning,
                    Subject::Member(m1),
                    "answer 2 to mood",
                ),
                hit(
                    "low-mood",
                    Severity::Warning,
                    Subject::Member(m2),
                    "answer 3 to mood",
                ),
                unknown,
            ],
            Utc::now(),
        )
        .await
        .unwrap();
    let ids = [out[0].incident, out[2].incident, out[3].incident];
    drop(store);
    // Resolve M-002's incident as the escalation engine will.
    let conn = crate::support::db::open(&dir.path().join("state/hearth.db"));
    conn.execute(
        "UPDATE incidents SET state = 'resolved' WHERE id = ?1",
        [ids[1]],
    )
    .unwrap();
    drop(conn);
    (dir, ids)
}

#[tokio::test]
async fn incidents_list_shows_newest_first_by_external_id_and_filters_by_open_and_member() {
    let (dir, [crisis, resolved, unknown]) = deployment().await;
    let all = hearth(dir.path(), &["incidents", "list"]);
    assert_eq!(all.status.code(), Some(0), "{}", err(&all));
    let text = out(&all);
    let lines: Vec<&str> = text.lines().collect();
    assert!(
        lines[0].contains("ID") && lines[0].contains("SEVERITY"),
        "{text}"
    );
    assert!(
        lines[1].trim_start().starts_with(&unknown.to_string()),
        "{text}"
    );
    assert!(lines[1].contains("unknown sender"), "{text}");
    assert!(
        lines[2].trim_start().starts_with(&resolved.to_string()),
        "{text}"
    );
    assert!(
        lines[2].contains("M-002") && lines[2].contains("resolved"),
        "{text}"
    );
    assert!(
        lines[3].contains("M-001") && lines[3].contains("critical"),
        "{text}"
    );
    assert!(text.ends_with("3 incidents\n"), "{text}");
    for phi in ["5555550177", "5555550101", "Annabelle"] {
        assert!(!text.contains(phi), "{phi} in {text}");
    }

    let open = out(&hearth(dir.path(), &["incidents", "list", "--open"]));
    assert!(!open.contains("resolved"), "{open}");
    assert!(open.ends_with("2 incidents\n"), "{open}");

    let json = hearth(
        dir.path(),
        &["incidents", "list", "--member", "M-001", "--format", "json"],
    );
    assert_eq!(json.status.code(), Some(0), "{}", err(&json));
    let v: serde_json::Value = serde_json::from_slice(&json.stdout).unwrap();
    let list = v.as_array().unwrap();
    assert_eq!(list.len(), 1);
    assert_eq!(list[0]["id"], serde_json::json!(crisis));
    assert_eq!(list[0]["member"], "M-001");
    assert_eq!(list[0]["state"], "open");
    assert_eq!(list[0]["evidence"].as_array().unwrap().len(), 2);
}

#[tokio::test]
async fn incidents_show_lists_every_piece_of_evidence_and_never_a_number() {
    let (dir, [crisis, _, unknown]) = deployment().await;
    let shown = hearth(dir.path(), &["incidents", "show", &crisis.to_string()]);
    assert_eq!(shown.status.code(), Some(0), "{}", err(&shown));
    let text = out(&shown);
    assert!(text.contains(&format!("incident #{crisis}")), "{text}");
    assert!(text.contains("member:   M-001"), "{text}");
    assert!(text.contains("evidence (2):"), "{text}");
    assert!(
        text.contains("opened") && text.contains("matched `end it all`"),
        "{text}"
    );
    assert!(
        text.contains("joined") && text.contains("answer 2 to mood"),
        "{text}"
    );

    let stranger = out(&hearth(
        dir.path(),
        &["incidents", "show", &unknown.to_string()],
    ));
    assert!(stranger.contains("member:   unknown sender"), "{stranger}");
    assert!(!stranger.contains("5555550177"), "{stranger}");
}

#[tokio::test]
async fn an_unknown_incident_or_member_is_a_clear_error_with_a_hint_and_exit_1() {
    let (dir, _) = deployment().await;
    let o = hearth(dir.path(), &["incidents", "show", "999"]);
    assert_eq!(o.status.code(), Some(1));
    assert!(err(&o).contains("error: no incident #999"), "{}", err(&o));
    assert!(
        err(&o).contains("  hint: `hearth incidents list`"),
        "{}",
        err(&o)
    );
    let o = hearth(dir.path(), &["incidents", "list", "--member", "M-404"]);
    assert_eq!(o.status.code(), Some(1));
    assert!(err(&o).contains("no member `M-404`"), "{}", err(&o));
    // Not a number: clap's usage error.
    let o = hearth(dir.path(), &["incidents", "show", "abc"]);
    assert_eq!(o.status.code(), Some(2));
    assert!(err(&o).contains("abc"), "{}", err(&o));
}

/// The binary with `USER` set to `user` (or unset), as staff run it.
fn hearth_as(dir: &Path, user: Option<&str>, args: &[&str]) -> Output {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_hearth"));
    cmd.arg("--settings")
        .arg(dir.join("hearth.yaml"))
        .args(args)
        .env_remove("HEARTH_SETTINGS")
        .env_remove("SUDO_USER")
        .env_remove("USER");
    if let Some(u) = user {
        cmd.env("USER", u);
    }
    cmd.output().unwrap()
}

#[tokio::test]
async fn incidents_ack_and_resolve_from_the_binary_change_the_state_print_one_line_and_record_who()
{
    let seeded = crate::admin_api::seed().await;
    let (dir, id) = (seeded.dir.path(), seeded.crisis.to_string());
    let o = hearth_as(dir, Some("alex"), &["incidents", "ack", &id]);
    assert_eq!(o.status.code(), Some(0), "{}", err(&o));
    // `lead` was paged by email, and is told who acknowledged.
    assert_eq!(
        out(&o),
        format!("incident #{id} acknowledged by cli:alex; 1 contact will be told\n")
    );
    let again = hearth_as(dir, None, &["incidents", "ack", &id, "--as", "dana"]);
    assert_eq!(again.status.code(), Some(0), "{}", err(&again));
    assert_eq!(
        out(&again),
        format!("incident #{id} was already acknowledged (by cli:alex)\n")
    );

    let shown = out(&hearth(dir, &["incidents", "show", &id]));
    assert!(shown.contains("state:    acknowledged"), "{shown}");
    assert!(
        shown.contains("acknowledged: by cli:alex (cli) at "),
        "{shown}"
    );

    let o = hearth_as(dir, None, &["incidents", "resolve", &id]);
    assert_eq!(o.status.code(), Some(0), "{}", err(&o));
    assert!(
        out(&o).starts_with(&format!("incident #{id} resolved by cli:unknown")),
        "{}",
        out(&o)
    );
    let shown = out(&hearth(dir, &["incidents", "show", &id]));
    assert!(shown.contains("state:    resolved"), "{shown}");
    assert!(
        shown.contains("resolved: by cli:unknown (cli) at "),
        "{shown}"
    );

    let json = hearth(dir, &["incidents", "show", &id, "--format", "json"]);
    let v: serde_json::Value = serde_json::from_slice(&json.stdout).unwrap();
    assert_eq!(v["acknowledged_by"], "cli:alex", "{v}");
    assert_eq!(v["resolved_by"], "cli:unknown", "{v}");
}

#[tokio::test]
async fn escalate_prints_one_line_and_acting_on_a_resolved_or_unknown_incident_is_refused_with_exit_1()
 {
    let seeded = crate::admin_api::seed().await;
    let dir = seeded.dir.path();
    let resolved = seeded.resolved.to_string();
    for action in ["ack", "escalate"] {
        let o = hearth_as(dir, Some("alex"), &["incidents", action, &resolved]);
        assert_eq!(o.status.code(), Some(1), "{action}: {}", out(&o));
        assert!(out(&o).is_empty(), "{}", out(&o));
        assert!(
            err(&o).contains(&format!("error: incident #{resolved} is resolved")),
            "{}",
            err(&o)
        );
        assert!(err(&o).contains("  hint: "), "{}", err(&o));
    }
    let o = hearth_as(
        dir,
        Some("alex"),
        &["incidents", "escalate", &seeded.low.to_string()],
    );
    assert_eq!(o.status.code(), Some(0), "{}", err(&o));
    assert_eq!(
        out(&o),
        format!(
            "incident #{} escalated by cli:alex; the next step is due now\n",
            seeded.low
        )
    );
    let o = hearth_as(dir, Some("alex"), &["incidents", "ack", "99999"]);
    assert_eq!(o.status.code(), Some(1));
    assert!(err(&o).contains("error: no incident #99999"), "{}", err(&o));
    let o = hearth_as(dir, Some("alex"), &["incidents", "ack", "abc"]);
    assert_eq!(o.status.code(), Some(2));
    assert!(err(&o).contains("abc"), "{}", err(&o));
    let help = out(&hearth(dir, &["incidents", "ack", "--help"]));
    assert!(help.contains("daemon"), "{help}");
}

#[tokio::test]
async fn incidents_list_filters_by_state_and_shows_the_escalation_step() {
    let seeded = crate::admin_api::seed().await;
    let dir = seeded.dir.path();
    let ids = |args: &[&str]| -> Vec<i64> {
        let o = hearth(
            dir,
            &[&["incidents", "list", "--format", "json"], args].concat(),
        );
        assert_eq!(o.status.code(), Some(0), "{}", err(&o));
        let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
        v.as_array()
            .unwrap()
            .iter()
            .map(|i| i["id"].as_i64().unwrap())
            .collect()
    };
    let (crisis, low, acked, resolved) = (seeded.crisis, seeded.low, seeded.acked, seeded.resolved);
    assert_eq!(ids(&[]), vec![resolved, acked, low, crisis]);
    assert_eq!(ids(&["--state", "open"]), vec![low, crisis]);
    assert_eq!(ids(&["--open"]), vec![low, crisis]);
    assert_eq!(ids(&["--state", "acknowledged"]), vec![acked]);
    assert_eq!(ids(&["--state", "resolved"]), vec![resolved]);
    assert_eq!(ids(&["--state", "unresolved"]), vec![acked, low, crisis]);
    let o = hearth(dir, &["incidents", "list", "--state", "closed"]);
    assert_eq!(o.status.code(), Some(2));
    assert!(err(&o).contains("closed"), "{}", err(&o));

    let text = out(&hearth(dir, &["incidents", "list", "--state", "open"]));
    assert!(
        text.lines().next().unwrap().contains("ESCALATION"),
        "{text}"
    );
    let line = text
        .lines()
        .find(|l| l.trim_start().starts_with(&format!("{crisis} ")))
        .unwrap();
    assert!(
        line.contains("open") && line.contains("step 2 at "),
        "{text}"
    );
    for phi in crate::admin_api::PHI {
        assert!(!text.contains(phi), "{phi} in {text}");
    }

    let json = hearth(dir, &["incidents", "list", "--format", "json"]);
    let v: serde_json::Value = serde_json::from_slice(&json.stdout).unwrap();
    let first = v.as_array().unwrap().last().unwrap();
    assert_eq!(first["escalation"]["policy"], "crisis", "{first}");
    assert_eq!(first["escalation"]["next_position"], 1, "{first}");
}

#[tokio::test]
async fn incidents_show_has_the_escalation_and_its_notices_but_no_address_or_body() {
    let seeded = crate::admin_api::seed().await;
    let dir = seeded.dir.path();
    let id = seeded.crisis.to_string();
    let o = hearth(dir, &["incidents", "show", &id]);
    assert_eq!(o.status.code(), Some(0), "{}", err(&o));
    let text = out(&o);
    assert!(text.contains("    policy:    crisis (version "), "{text}");
    assert!(text.contains("    step:      step 2 at "), "{text}");
    assert!(text.contains("    exhausted: no"), "{text}");
    assert!(text.contains("  notices (1):"), "{text}");
    let notice = text
        .lines()
        .find(|l| l.trim_start().starts_with("lead "))
        .unwrap_or_else(|| panic!("no notice line in {text}"));
    assert!(
        notice.contains("email") && notice.contains("page"),
        "{notice}"
    );
    for phi in crate::admin_api::PHI
        .iter()
        .chain(&["needs someone", "Hearth incident"])
    {
        assert!(!text.contains(phi), "{phi} in {text}");
    }
    let json = hearth(dir, &["incidents", "show", &id, "--format", "json"]);
    let v: serde_json::Value = serde_json::from_slice(&json.stdout).unwrap();
    assert_eq!(v["notices"][0]["contact"], "lead", "{v}");
    assert!(v["notices"][0].get("address").is_none(), "{v}");

    let plain = out(&hearth(
        dir,
        &["incidents", "show", &seeded.acked.to_string()],
    ));
    assert!(plain.contains("  escalation: none"), "{plain}");
    assert!(plain.contains("  notices (0):"), "{plain}");
}
