//! The staff commands as people run them: the real binary on a temp
//! deployment (settings, rules, encrypted database).

use std::path::Path;
use std::process::{Command, Output};

use crate::support::*;

const RULES: &str = r#"
groups:
  - id: tuesday-anxiety
    name: Tuesday Anxiety Support
    timezone: America/New_York
    sessions: { cron: "0 18 * * TUE", duration: 90m }
  - id: thursday-grief
    name: Thursday Grief Circle
    timezone: America/Chicago
    sessions: { cron: "0 17 * * THU", duration: 60m }
segments:
  - id: high-support
    match: { progress_level: { lte: 2 } }
  - id: ptsd
    match: { diagnosis: { any_of: [PTSD, C-PTSD] } }
  - id: spanish
    match: { language: es }
  - id: both-diagnoses
    match: { diagnosis: { all_of: [PTSD, GAD] } }
  - id: mid-progress
    match: { progress_level: { gt: 1, lt: 4 } }
  - id: in-either-group
    match: { groups: { in: [thursday-grief] } }
  - id: joined-this-year
    match: { joined_on: { gte: JOINED_SINCE } }
  - id: has-cohort
    match: { cohort: { exists: true } }
  - id: no-cohort
    match: { cohort: { exists: false } }
  - id: veterans
    when: 'member.days_since_joined > 365'
  - id: nobody
    match: { progress_level: { gte: 99 } }
templates:
  hello: { body: "Hi {{ member.first_name }}" }
schedules:
  - { id: weekly, template: hello, cron: "0 12 * * THU" }
"#;

const ROSTER: &str = "external_id,first_name,last_name,phone,timezone,language,joined_on,groups,consent,diagnosis,progress_level,cohort
M-001,Annabelle,Quince,+15555550101,America/New_York,en,JOINED_1,tuesday-anxiety,yes,PTSD;GAD,2,A
M-002,Bartholomew,Ruiz,+15555550102,America/Chicago,es,JOINED_2,thursday-grief,yes,Grief,4,
M-003,Cordelia,Stone,+15555550103,America/New_York,en,JOINED_3,tuesday-anxiety;thursday-grief,no,C-PTSD,1,B
";

/// Join dates relative to today, so day counts hold whenever the test runs.
fn dated(text: &str) -> String {
    let today = chrono::Utc::now().date_naive();
    let ago = |days: i64| (today - chrono::TimeDelta::days(days)).to_string();
    text.replace("JOINED_SINCE", &ago(100))
        .replace("JOINED_1", &ago(30))
        .replace("JOINED_2", &ago(10))
        .replace("JOINED_3", &ago(900))
}

const CONSENT: &str = "I agree to receive text messages from Riverside Clinic support groups.";

struct Deployment {
    dir: tempfile::TempDir,
}

impl Deployment {
    fn new() -> Deployment {
        let dir = tempfile::tempdir().unwrap();
        // A 24-hour send window, so what is sent does not depend on the clock.
        let settings = format!(
            "{}dispatch: {{ send_window: {{ start: \"00:00\", end: \"23:59\" }} }}\n",
            settings_yaml()
        );
        write(&dir.path().join("hearth.yaml"), &settings);
        write(&dir.path().join("rules/rules.yaml"), &dated(RULES));
        write(&dir.path().join("roster.csv"), &dated(ROSTER));
        Deployment { dir }
    }

    fn path(&self, name: &str) -> std::path::PathBuf {
        self.dir.path().join(name)
    }

    fn hearth(&self, args: &[&str]) -> Output {
        hearth_in(self.dir.path(), args)
    }

    fn import(&self) -> Output {
        let out = self.hearth(&[
            "members",
            "import",
            self.path("roster.csv").to_str().unwrap(),
            "--consent-text",
            CONSENT,
        ]);
        assert_eq!(out.status.code(), Some(0), "{}", text(&out));
        out
    }
}

fn hearth_in(dir: &Path, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_hearth"))
        .arg("--settings")
        .arg(dir.join("hearth.yaml"))
        .args(["--actor", "staff-tester"])
        .args(args)
        .env_remove("HEARTH_SETTINGS")
        .env("HEARTH_LOG", "info")
        .output()
        .unwrap()
}

fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

fn text(o: &Output) -> String {
    format!(
        "status {:?}\nstdout:\n{}\nstderr:\n{}",
        o.status,
        stdout(o),
        stderr(o)
    )
}

#[test]
fn import_reports_counts_notes_the_new_key_once_and_is_idempotent() {
    let d = Deployment::new();
    let first = d.import();
    assert!(stdout(&first).contains("imported 3 rows: 3 new, 0 updated, 0 unchanged, 0 skipped as invalid; consent: 2 granted, 1 revoked"), "{}", text(&first));
    assert!(
        stderr(&first).contains("generated a new database key"),
        "{}",
        text(&first)
    );

    let again = d.import();
    assert!(
        stdout(&again).contains("3 rows: 0 new, 0 updated, 3 unchanged"),
        "{}",
        text(&again)
    );
    assert!(!stderr(&again).contains("generated a new database key"));
}

#[test]
fn a_bad_roster_is_rejected_whole_with_every_line_named() {
    let d = Deployment::new();
    let bad = format!(
        "{}M-004,Dora,Tate,555-0104,America/New_York,en,2026-01-01,,yes,,,\nM-005,Ezra,Uhl,+15555550105,America/New_York,en,2026-01-01,tuesday-anxeity,yes,,,\n",
        dated(ROSTER)
    );
    write(&d.path("bad.csv"), &bad);
    let out = d.hearth(&[
        "members",
        "import",
        d.path("bad.csv").to_str().unwrap(),
        "--consent-text",
        CONSENT,
    ]);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    let s = stdout(&out);
    assert!(
        s.contains("bad.csv: line 5 (M-004): invalid phone number"),
        "{s}"
    );
    assert!(s.contains("bad.csv: line 6 (M-005): unknown group `tuesday-anxeity` (did you mean `tuesday-anxiety`?)"), "{s}");
    assert!(
        s.contains("not imported: 2 of 5 rows are invalid; nothing changed"),
        "{s}"
    );
    let list = d.hearth(&["members", "list"]);
    assert!(stdout(&list).contains("0 members"), "{}", text(&list));

    let skip = d.hearth(&[
        "members",
        "import",
        d.path("bad.csv").to_str().unwrap(),
        "--consent-text",
        CONSENT,
        "--skip-invalid",
    ]);
    assert_eq!(
        skip.status.code(),
        Some(1),
        "invalid rows still fail the command: {}",
        text(&skip)
    );
    assert!(stdout(&skip).contains("3 new"), "{}", text(&skip));
}

#[test]
fn phones_are_masked_unless_revealed_and_every_reveal_is_audited() {
    let d = Deployment::new();
    d.import();
    let list = d.hearth(&["members", "list"]);
    let s = stdout(&list);
    assert!(s.contains("+1••••••0101"), "{s}");
    assert!(!s.contains("+15555550101"), "{s}");
    let show = d.hearth(&["members", "show", "M-002"]);
    assert!(
        stdout(&show).contains("phone         +1••••••0102"),
        "{}",
        text(&show)
    );
    assert!(stdout(&show).contains("granted"), "{}", text(&show));

    let before = stdout(&d.hearth(&["audit", "tail", "-n", "100"]))
        .lines()
        .count();
    let revealed = d.hearth(&["members", "show", "M-002", "--reveal"]);
    assert!(
        stdout(&revealed).contains("+15555550102"),
        "{}",
        text(&revealed)
    );
    let tail = stdout(&d.hearth(&["audit", "tail", "-n", "100"]));
    assert_eq!(tail.lines().count(), before + 1, "{tail}");
    let last = tail.lines().last().unwrap();
    assert!(
        last.contains("staff-tester")
            && last.contains("phi.reveal")
            && last.contains("members show --reveal")
            && last.contains("M-002"),
        "the reveal names the member by external id: {last}"
    );
}

#[test]
fn consent_commands_record_to_the_ledger_and_respect_a_members_stop() {
    let d = Deployment::new();
    d.import();
    let revoke = d.hearth(&[
        "members", "consent", "revoke", "M-001", "--source", "keyword", "--text", "STOP",
    ]);
    assert_eq!(revoke.status.code(), Some(0), "{}", text(&revoke));
    let regrant = d.hearth(&["members", "consent", "grant", "M-001", "--text", CONSENT]);
    assert_eq!(regrant.status.code(), Some(1), "{}", text(&regrant));
    assert!(
        stderr(&regrant).contains("only the member can opt back in"),
        "{}",
        text(&regrant)
    );
    let unknown = d.hearth(&["members", "consent", "grant", "M-404", "--text", CONSENT]);
    assert_eq!(unknown.status.code(), Some(1));
    assert!(
        stderr(&unknown).contains("not found: member `M-404`"),
        "{}",
        text(&unknown)
    );
    let show = stdout(&d.hearth(&["members", "show", "M-001"]));
    assert!(show.contains("consent       revoked (keyword"), "{show}");
}

#[test]
fn the_audit_trail_names_members_by_external_id_for_consent_and_deactivation() {
    let d = Deployment::new();
    d.import();
    let revoke = d.hearth(&[
        "members", "consent", "revoke", "M-001", "--source", "keyword", "--text", "STOP",
    ]);
    assert_eq!(revoke.status.code(), Some(0), "{}", text(&revoke));
    let off = d.hearth(&["members", "deactivate", "M-003"]);
    assert_eq!(off.status.code(), Some(0), "{}", text(&off));
    let tail = stdout(&d.hearth(&["audit", "tail", "-n", "2"]));
    let lines: Vec<&str> = tail.lines().collect();
    assert_eq!(lines.len(), 2, "{tail}");
    assert!(
        lines[0].contains("consent.revoke") && lines[0].contains("member:M-001"),
        "{tail}"
    );
    assert!(
        lines[1].contains("member.deactivate") && lines[1].contains("member:M-003"),
        "{tail}"
    );
}

#[test]
fn segments_show_counts_and_ids_for_every_operator() {
    let d = Deployment::new();
    d.import();
    let cases: &[(&str, &[&str])] = &[
        ("all", &["M-001", "M-002", "M-003"]),
        ("high-support", &["M-001", "M-003"]),
        ("ptsd", &["M-001", "M-003"]),
        ("spanish", &["M-002"]),
        ("both-diagnoses", &["M-001"]),
        ("mid-progress", &["M-001"]),
        ("in-either-group", &["M-002", "M-003"]),
        ("joined-this-year", &["M-001", "M-002"]),
        ("has-cohort", &["M-001", "M-003"]),
        ("no-cohort", &["M-002"]),
        ("veterans", &["M-003"]),
    ];
    for (seg, want) in cases {
        let out = d.hearth(&["segments", "show", seg]);
        assert_eq!(out.status.code(), Some(0), "{seg}: {}", text(&out));
        let s = stdout(&out);
        let ids: Vec<&str> = s.lines().skip(1).collect();
        assert_eq!(ids, *want, "{seg}: {s}");
        assert!(
            s.starts_with(&format!("segment {seg}: {} active members", want.len())),
            "{s}"
        );
    }
    let nobody = d.hearth(&["segments", "show", "nobody"]);
    assert_eq!(nobody.status.code(), Some(0));
    assert!(
        stderr(&nobody).contains("warning: segment `nobody` matches nobody"),
        "{}",
        text(&nobody)
    );
    let typo = d.hearth(&["segments", "show", "high-suport"]);
    assert_eq!(typo.status.code(), Some(1));
    assert!(
        stderr(&typo).contains("did you mean `high-support`?"),
        "{}",
        text(&typo)
    );

    // Deactivated members drop out.
    d.hearth(&["members", "deactivate", "M-003"]);
    let s = stdout(&d.hearth(&["segments", "show", "veterans"]));
    assert!(s.starts_with("segment veterans: 0 active members"), "{s}");
}

#[test]
fn audit_verify_passes_then_names_the_tampered_entry_with_exit_1() {
    let d = Deployment::new();
    d.import();
    d.hearth(&["members", "deactivate", "M-002"]);
    let ok = d.hearth(&["audit", "verify"]);
    assert_eq!(ok.status.code(), Some(0), "{}", text(&ok));
    assert!(
        stdout(&ok).starts_with("audit trail intact: "),
        "{}",
        text(&ok)
    );

    crate::support::db::sql(
        &d.path("state/hearth.db"),
        "DROP TRIGGER audit_append_only_update; UPDATE audit SET detail = '{\"rows\":0}' WHERE id = 1;",
    );

    let bad = d.hearth(&["audit", "verify"]);
    assert_eq!(bad.status.code(), Some(1), "{}", text(&bad));
    assert!(
        stdout(&bad).contains("audit trail BROKEN at entry 1"),
        "{}",
        text(&bad)
    );
}

#[test]
fn a_wrong_key_fails_the_command_with_a_clear_message() {
    let d = Deployment::new();
    d.import();
    std::fs::write(d.path("state/hearth.db.key"), "cd".repeat(32)).unwrap();
    let out = d.hearth(&["members", "list"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        stderr(&out).contains("the key does not decrypt it"),
        "{}",
        text(&out)
    );
    assert!(
        !stderr(&out).contains("file is not a database"),
        "{}",
        text(&out)
    );
}

/// A loopback stand-in for Twilio's Messages API: answers 201 with a sid
/// and keeps each request's form, which is where what is sent shows up.
struct FakeTwilio {
    url: String,
    sent: std::sync::Arc<std::sync::Mutex<Vec<String>>>,
    _runtime: tokio::runtime::Runtime,
}

impl FakeTwilio {
    fn start() -> FakeTwilio {
        use std::sync::{Arc, Mutex};
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .enable_all()
            .build()
            .unwrap();
        let sent: Arc<Mutex<Vec<String>>> = Arc::default();
        let router = axum::Router::new()
            .route(
                "/2010-04-01/Accounts/{sid}/Messages.json",
                axum::routing::post(
                    |axum::extract::State(sent): axum::extract::State<Arc<Mutex<Vec<String>>>>,
                     body: String| async move {
                        let mut sent = sent.lock().unwrap();
                        sent.push(body);
                        (
                            axum::http::StatusCode::CREATED,
                            axum::Json(serde_json::json!({
                                "sid": format!("SM{:032x}", sent.len()),
                                "status": "queued"
                            })),
                        )
                    },
                ),
            )
            .with_state(sent.clone());
        let listener = runtime
            .block_on(tokio::net::TcpListener::bind("127.0.0.1:0"))
            .unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        runtime.spawn(async move { axum::serve(listener, router).await.unwrap() });
        FakeTwilio {
            url,
            sent,
            _runtime: runtime,
        }
    }
}

const TWILIO_TOKEN: &str = "test-auth-token-0123456789";

#[test]
fn no_phone_number_name_or_body_reaches_a_log_line_through_a_real_send_and_a_real_inbound_text() {
    // The daemon logs JSON at its default level (info) to stderr; what it
    // sends goes to the provider (here a loopback Twilio), never to a log.
    // Every stderr line must parse as a JSON log record, so provider or
    // console output cannot be mistaken for a log line or hide in one.
    let twilio = FakeTwilio::start();
    let d = Deployment::new();
    let port = crate::support::ports::free_port();
    write(&d.path("twilio-token"), &format!("{TWILIO_TOKEN}\n"));
    write(
        &d.path("hearth.yaml"),
        &format!(
            "listen: 127.0.0.1:{port}
public_url: http://127.0.0.1:{port}
rules_dir: rules
database: {{ path: state/hearth.db }}
log_format: json
provider: {{ kind: twilio, account_sid: AC0123456789abcdef0123456789abcdef, auth_token: file:twilio-token, from: \"+15555550000\", base_url: \"{}\" }}
dispatch: {{ send_window: {{ start: \"00:00\", end: \"23:59\" }} }}
",
            twilio.url
        ),
    );
    let import = d.import();
    let socket = d.path("notify.sock");
    let notify = std::os::unix::net::UnixDatagram::bind(&socket).unwrap();
    let child = Command::new(env!("CARGO_BIN_EXE_hearth"))
        .args(["run", "--settings"])
        .arg(d.path("hearth.yaml"))
        .env("NOTIFY_SOCKET", &socket)
        .env_remove("HEARTH_LOG")
        .env_remove("HEARTH_SETTINGS")
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let mut daemon = Daemon::new(tempfile::tempdir().unwrap(), child, notify);
    daemon.wait_notify("READY=1", std::time::Duration::from_secs(20));

    // A real send: the CLI queues it, the daemon's dispatcher sends it.
    let send = d.hearth(&["send", "--member", "M-001", "--template", "hello"]);
    assert_eq!(send.status.code(), Some(0), "{}", text(&send));
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
    while twilio.sent.lock().unwrap().is_empty() {
        assert!(
            std::time::Instant::now() < deadline,
            "nothing reached the provider"
        );
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    let sent = twilio.sent.lock().unwrap()[0].clone();
    assert!(
        sent.contains("Hi+Annabelle") && sent.contains("5555550101"),
        "{sent}"
    );

    // A real inbound text: a signed Twilio webhook to the daemon.
    let params = [
        ("MessageSid", "SM00000000000000000000000000000001"),
        ("From", "+15555550101"),
        ("To", "+15555550000"),
        ("Body", "Feeling anxious about Tuesday"),
    ];
    let url = format!("http://127.0.0.1:{port}/webhooks/twilio/sms");
    let owned: Vec<(String, String)> = params
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    let signature =
        hearth::intake::twilio::expected_signature(TWILIO_TOKEN.as_bytes(), &url, &owned);
    let status = twilio._runtime.block_on(async {
        reqwest::Client::new()
            .post(&url)
            .header("x-twilio-signature", signature)
            .form(&params)
            .send()
            .await
            .unwrap()
            .status()
    });
    assert_eq!(status, 200);

    daemon.signal(libc::SIGTERM);
    daemon.wait_exit(std::time::Duration::from_secs(10));
    let logs = daemon.stderr();
    for line in logs.lines() {
        let record: serde_json::Value = serde_json::from_str(line)
            .unwrap_or_else(|e| panic!("not a JSON log line ({e}): {line}"));
        assert!(record.get("level").is_some(), "{line}");
    }
    for event in ["message sent", "inbound text stored"] {
        assert!(
            logs.contains(event),
            "`{event}` not logged at info:\n{logs}"
        );
    }
    let everything = format!("{}{}{logs}", stderr(&import), stderr(&send));
    for needle in [
        "5555550101",
        "5555550102",
        "Annabelle",
        "Bartholomew",
        "Quince",
        "Ruiz",
        "Hi Annabelle",
        "anxious",
        "Tuesday",
    ] {
        assert!(
            !everything.contains(needle),
            "`{needle}` in logs:\n{everything}"
        );
    }
}

fn spawn_daemon_in(d: &Deployment) -> Daemon {
    let socket = d.path("notify.sock");
    let notify = std::os::unix::net::UnixDatagram::bind(&socket).unwrap();
    let child = Command::new(env!("CARGO_BIN_EXE_hearth"))
        .args(["run", "--settings"])
        .arg(d.path("hearth.yaml"))
        .env("NOTIFY_SOCKET", &socket)
        .env("HEARTH_LOG", "info")
        .env_remove("HEARTH_SETTINGS")
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    Daemon::new(tempfile::tempdir().unwrap(), child, notify)
}

#[test]
fn send_queues_a_rendered_message_that_the_running_daemon_sends() {
    let d = Deployment::new();
    d.import();
    let out = d.hearth(&["send", "--member", "M-001", "--template", "hello"]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    assert!(
        stdout(&out).starts_with("queued message #1 for member M-001"),
        "{}",
        text(&out)
    );
    let queued = stdout(&d.hearth(&["outbox", "list", "--state", "queued"]));
    assert!(
        queued.contains("staff") && queued.contains("1 message\n"),
        "{queued}"
    );

    let mut daemon = spawn_daemon_in(&d);
    daemon.wait_notify("READY=1", std::time::Duration::from_secs(20));
    let console = d.path("console.jsonl");
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    let line = loop {
        if let Ok(t) = std::fs::read_to_string(&console)
            && let Some(l) = t.lines().next()
        {
            break l.to_owned();
        }
        assert!(
            std::time::Instant::now() < deadline,
            "nothing reached the console provider"
        );
        std::thread::sleep(std::time::Duration::from_millis(50));
    };
    let sent: serde_json::Value = serde_json::from_str(&line).unwrap();
    assert_eq!(sent["body"], "Hi Annabelle");
    assert_eq!(sent["to"], "+15555550101");
    daemon.signal(libc::SIGTERM);
    // A stop finishes and records the send under way before the daemon
    // exits; the deadline only catches a hang (a loaded CI machine is slow).
    let status = daemon.wait_exit(std::time::Duration::from_secs(30));
    assert!(
        status.is_some_and(|s| s.success()),
        "the daemon did not stop cleanly on SIGTERM: {status:?}"
    );
    let logs = daemon.stderr();
    assert!(logs.contains("message sent"), "{logs}");
    for needle in ["Annabelle", "5555550101", "Hi Annabelle"] {
        assert!(!logs.contains(needle), "`{needle}` in logs:\n{logs}");
    }
    let sent = stdout(&d.hearth(&["outbox", "list", "--state", "sent"]));
    assert!(sent.contains("1 message\n"), "{sent}");
}

#[test]
fn send_refuses_unknown_templates_and_warns_about_members_without_consent() {
    let d = Deployment::new();
    d.import();
    let typo = d.hearth(&["send", "--member", "M-001", "--template", "helo"]);
    assert_eq!(typo.status.code(), Some(1));
    assert!(
        stderr(&typo).contains("did you mean `hello`?"),
        "{}",
        text(&typo)
    );
    let nobody = d.hearth(&["send", "--member", "M-404", "--template", "hello"]);
    assert_eq!(nobody.status.code(), Some(1));
    let no_consent = d.hearth(&["send", "--member", "M-003", "--template", "hello"]);
    assert_eq!(no_consent.status.code(), Some(0));
    assert!(
        stderr(&no_consent).contains("has no current consent"),
        "{}",
        text(&no_consent)
    );
}

#[test]
fn outbox_cancel_and_retry_move_messages_and_are_audited() {
    let d = Deployment::new();
    d.import();
    d.hearth(&["send", "--member", "M-001", "--template", "hello"]);
    let bad_retry = d.hearth(&["outbox", "retry", "1"]);
    assert_eq!(bad_retry.status.code(), Some(1));
    assert!(
        stderr(&bad_retry).contains("only failed, undelivered, expired or suppressed"),
        "{}",
        text(&bad_retry)
    );
    let cancel = d.hearth(&["outbox", "cancel", "1"]);
    assert_eq!(cancel.status.code(), Some(0), "{}", text(&cancel));
    let list = stdout(&d.hearth(&["outbox", "list"]));
    assert!(
        list.contains("suppressed") && list.contains("cancelled by staff-tester"),
        "{list}"
    );
    let retry = d.hearth(&["outbox", "retry", "1"]);
    assert_eq!(retry.status.code(), Some(0), "{}", text(&retry));
    assert!(stdout(&d.hearth(&["outbox", "list", "--state", "queued"])).contains("1 message\n"));
    let tail = stdout(&d.hearth(&["audit", "tail", "-n", "3"]));
    assert!(
        tail.contains("outbox.cancel") && tail.contains("outbox.retry"),
        "{tail}"
    );
    let missing = d.hearth(&["outbox", "cancel", "99"]);
    assert_eq!(missing.status.code(), Some(1));
}

#[test]
fn inject_stores_a_text_on_the_inbound_path() {
    let d = Deployment::new();
    d.import();
    let out = d.hearth(&["inject", "--from", "+15555550101", "how do I join?"]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    assert!(
        stdout(&out).starts_with("stored inbound text #1"),
        "{}",
        text(&out)
    );
    let bad = d.hearth(&["inject", "--from", "555-0101", "hi"]);
    assert_eq!(bad.status.code(), Some(1));
    assert!(
        stderr(&bad).contains("invalid phone number"),
        "{}",
        text(&bad)
    );
    let tail = stdout(&d.hearth(&["audit", "tail", "-n", "1"]));
    assert!(
        tail.contains("sms.receive") && tail.contains("member:M-001"),
        "{tail}"
    );
}

/// What is wrong with the database, and how to make it so.
struct Fault {
    name: &'static str,
    make: fn(&Deployment),
    /// What the `error:` line must say.
    says: &'static str,
}

fn db_file(d: &Deployment) -> std::path::PathBuf {
    d.path("state/hearth.db")
}

const FAULTS: &[Fault] = &[
    Fault {
        name: "missing database",
        make: |d| std::fs::remove_file(db_file(d)).unwrap(),
        says: "does not exist",
    },
    Fault {
        name: "zero-byte database",
        make: |d| std::fs::write(db_file(d), b"").unwrap(),
        says: "is empty (zero bytes)",
    },
    Fault {
        name: "truncated mid-page",
        make: |d| {
            let f = std::fs::OpenOptions::new()
                .write(true)
                .open(db_file(d))
                .unwrap();
            let len = f.metadata().unwrap().len();
            f.set_len(len - 1000).unwrap();
        },
        says: "the file was cut short",
    },
    Fault {
        name: "truncated at a page boundary",
        make: |d| {
            let f = std::fs::OpenOptions::new()
                .write(true)
                .open(db_file(d))
                .unwrap();
            let len = f.metadata().unwrap().len();
            assert!(len >= 4 * 4096, "a database of {len} bytes");
            f.set_len((len / 4096 / 2) * 4096).unwrap();
        },
        says: "is damaged",
    },
    Fault {
        name: "a damaged page",
        make: |d| {
            use std::io::{Seek, Write};
            let mut f = std::fs::OpenOptions::new()
                .write(true)
                .open(db_file(d))
                .unwrap();
            let len = f.metadata().unwrap().len();
            f.seek(std::io::SeekFrom::Start(len - 4096 + 200)).unwrap();
            f.write_all(&[0x5a; 64]).unwrap();
        },
        says: "is damaged",
    },
    Fault {
        name: "wrong key",
        make: |d| std::fs::write(d.path("state/hearth.db.key"), "cd".repeat(32)).unwrap(),
        says: "the key does not decrypt it",
    },
    Fault {
        name: "missing key file",
        make: |d| std::fs::remove_file(d.path("state/hearth.db.key")).unwrap(),
        says: "its key file",
    },
];

const COMMANDS: &[&[&str]] = &[
    &["run"],
    &["members", "list"],
    &["members", "show", "M-001"],
    &["members", "deactivate", "M-002"],
    &["segments", "show", "high-support"],
    &["audit", "verify"],
    &["audit", "tail"],
    &["outbox", "list"],
    &["send", "--member", "M-001", "--template", "hello"],
    &["inject", "--from", "+15555550101", "hello"],
];

/// Runs a command that must exit; one still running after 30 s (a daemon
/// that started on a faulty database) is killed and fails the test.
fn bounded(d: &Deployment, args: &[&str], what: &str) -> Output {
    let mut child = Command::new(env!("CARGO_BIN_EXE_hearth"))
        .arg("--settings")
        .arg(d.path("hearth.yaml"))
        .args(["--actor", "staff-tester"])
        .args(args)
        .env_remove("HEARTH_SETTINGS")
        .env("HEARTH_LOG", "info")
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    while child.try_wait().unwrap().is_none() {
        if std::time::Instant::now() > deadline {
            child.kill().unwrap();
            let out = child.wait_with_output().unwrap();
            panic!("{what}: still running after 30 s: {}", text(&out));
        }
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    child.wait_with_output().unwrap()
}

/// The `error:` line and what follows it (the hint).
fn error_lines(o: &Output) -> String {
    let err = stderr(o);
    let start = err
        .find("error: ")
        .unwrap_or_else(|| panic!("no error line: {}", text(o)));
    err[start..]
        .lines()
        .take_while(|l| l.starts_with("error: ") || l.starts_with("  hint: "))
        .collect::<Vec<_>>()
        .join("\n")
}

#[test]
fn every_database_fault_exits_1_with_the_same_message_in_run_and_every_staff_command() {
    for fault in FAULTS {
        let d = Deployment::new();
        d.import();
        (fault.make)(&d);
        let before = std::fs::metadata(db_file(&d)).map(|m| m.len()).ok();
        let mut first: Option<String> = None;
        for cmd in COMMANDS {
            if fault.name == "missing database" && cmd[0] == "run" {
                // `run` creates the database on first start, by design.
                continue;
            }
            let what = format!("{} × `hearth {}`", fault.name, cmd.join(" "));
            let out = bounded(&d, cmd, &what);
            assert_eq!(out.status.code(), Some(1), "{what}: {}", text(&out));
            let lines = error_lines(&out);
            assert!(lines.contains(fault.says), "{what}: {lines}");
            assert!(lines.contains("hint: "), "{what}: {lines}");
            match &first {
                None => first = Some(lines),
                Some(f) => assert_eq!(&lines, f, "{what}: not the same message"),
            }
            // Only Hearth's own words on stderr: no SQLCipher log lines.
            for l in stderr(&out).lines() {
                assert!(
                    !l.contains("CORE") && !l.contains("sqlcipher") && !l.contains("hmac"),
                    "{what}: raw SQLCipher log line `{l}`"
                );
            }
            // Nothing was created or replaced.
            assert_eq!(
                std::fs::metadata(db_file(&d)).map(|m| m.len()).ok(),
                before,
                "{what}: the database file changed"
            );
        }
    }
}

#[test]
fn a_second_daemon_on_the_same_database_refuses_to_start_and_staff_commands_still_work() {
    let d = Deployment::new();
    d.import();
    let mut first = spawn_daemon_in(&d);
    first.wait_notify("READY=1", std::time::Duration::from_secs(20));

    let second = d.hearth(&["run"]);
    assert_eq!(second.status.code(), Some(1), "{}", text(&second));
    let lines = error_lines(&second);
    assert!(
        lines.contains("is in use by another hearth daemon") && lines.contains("hearth.db.lock"),
        "{lines}"
    );
    assert!(
        lines.contains("hint: stop the other daemon first"),
        "{lines}"
    );

    // Staff commands do not take the daemon's lock.
    let list = d.hearth(&["members", "list"]);
    assert_eq!(list.status.code(), Some(0), "{}", text(&list));
    let deactivate = d.hearth(&["members", "deactivate", "M-002"]);
    assert_eq!(deactivate.status.code(), Some(0), "{}", text(&deactivate));

    // The lock goes with the process: once the first daemon stops, the
    // next one starts.
    first.signal(libc::SIGTERM);
    first.wait_exit(std::time::Duration::from_secs(5));
    std::fs::remove_file(d.path("notify.sock")).unwrap();
    let mut again = spawn_daemon_in(&d);
    again.wait_notify("READY=1", std::time::Duration::from_secs(20));
    again.signal(libc::SIGTERM);
    again.wait_exit(std::time::Duration::from_secs(5));
}

fn queued_count(d: &Deployment) -> String {
    let out = d.hearth(&["outbox", "list", "--state", "queued", "--limit", "100"]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    stdout(&out)
}

#[test]
fn six_concurrent_sends_all_exit_0_and_queue_six_messages() {
    let d = Deployment::new();
    d.import();
    let children: Vec<_> = (0..6)
        .map(|_| {
            Command::new(env!("CARGO_BIN_EXE_hearth"))
                .arg("--settings")
                .arg(d.path("hearth.yaml"))
                .args(["--actor", "staff-tester"])
                .args(["send", "--member", "M-001", "--template", "hello"])
                .env_remove("HEARTH_SETTINGS")
                .stdout(std::process::Stdio::piped())
                .stderr(std::process::Stdio::piped())
                .spawn()
                .unwrap()
        })
        .collect();
    for child in children {
        let out = child.wait_with_output().unwrap();
        assert_eq!(out.status.code(), Some(0), "{}", text(&out));
        assert!(
            stdout(&out).starts_with("queued message #"),
            "{}",
            text(&out)
        );
    }
    let queued = queued_count(&d);
    assert!(queued.contains("6 messages\n"), "{queued}");
    // Each message has its audit entry: the pairs were written together.
    let tail = stdout(&d.hearth(&["audit", "tail", "-n", "50"]));
    assert_eq!(tail.matches("sms.queue").count(), 6, "{tail}");
}

#[test]
fn the_same_idempotency_key_twice_queues_one_message_and_says_so() {
    let d = Deployment::new();
    d.import();
    let send = |key: &str| {
        d.hearth(&[
            "send",
            "--member",
            "M-001",
            "--template",
            "hello",
            "--idempotency-key",
            key,
        ])
    };
    let first = send("job-42");
    assert_eq!(first.status.code(), Some(0), "{}", text(&first));
    assert!(
        stdout(&first).starts_with("queued message #1 for member M-001"),
        "{}",
        text(&first)
    );
    let retry = send("job-42");
    assert_eq!(retry.status.code(), Some(0), "{}", text(&retry));
    assert_eq!(
        stdout(&retry),
        "already queued as message #1 under idempotency key `job-42`; nothing new queued\n"
    );
    let queued = queued_count(&d);
    assert!(queued.contains("1 message\n"), "{queued}");
    let tail = stdout(&d.hearth(&["audit", "tail", "-n", "50"]));
    assert_eq!(tail.matches("sms.queue").count(), 1, "{tail}");

    let other = send("job-43");
    assert!(
        stdout(&other).starts_with("queued message #2"),
        "{}",
        text(&other)
    );
    let empty = send(" ");
    assert_eq!(empty.status.code(), Some(1), "{}", text(&empty));
}

#[test]
fn db_check_reports_integrity_and_the_whole_audit_chain_and_exits_1_on_a_problem() {
    let d = Deployment::new();
    d.import();
    let ok = d.hearth(&["db", "check"]);
    assert_eq!(ok.status.code(), Some(0), "{}", text(&ok));
    assert!(stdout(&ok).contains(": integrity ok\n"), "{}", text(&ok));
    assert!(
        stdout(&ok).contains("audit trail intact: "),
        "{}",
        text(&ok)
    );

    crate::support::db::sql(
        &db_file(&d),
        "DROP TRIGGER audit_append_only_update; UPDATE audit SET actor = 'x' WHERE id = 1;",
    );
    let broken = d.hearth(&["db", "check"]);
    assert_eq!(broken.status.code(), Some(1), "{}", text(&broken));
    assert!(
        stdout(&broken).contains("audit trail BROKEN at entry 1"),
        "{}",
        text(&broken)
    );

    // A damaged page: other commands refuse to open; `db check` reports.
    (FAULTS
        .iter()
        .find(|f| f.name == "a damaged page")
        .unwrap()
        .make)(&d);
    let damaged = d.hearth(&["db", "check"]);
    assert_eq!(damaged.status.code(), Some(1), "{}", text(&damaged));
    assert!(
        !stdout(&damaged).contains("integrity ok"),
        "{}",
        text(&damaged)
    );

    let missing = Deployment::new();
    let out = missing.hearth(&["db", "check"]);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    assert!(
        error_lines(&out).contains("does not exist"),
        "{}",
        text(&out)
    );
    assert!(!db_file(&missing).exists());
}

#[test]
fn a_staff_revocation_survives_a_re_import_until_staff_record_new_consent() {
    let d = Deployment::new();
    d.import();
    let revoke = d.hearth(&[
        "members",
        "consent",
        "revoke",
        "M-001",
        "--text",
        "Patient asked by phone",
    ]);
    assert_eq!(revoke.status.code(), Some(0), "{}", text(&revoke));

    let again = d.import();
    let out = stdout(&again);
    assert!(
        out.contains(
            "1 row says consent yes but the member revoked consent (1 by staff); left revoked"
        ),
        "{out}"
    );
    assert!(out.contains("hearth members consent grant"), "{out}");
    let show = stdout(&d.hearth(&["members", "show", "M-001"]));
    assert!(show.contains("consent       revoked (staff"), "{show}");
    assert!(show.contains("Patient asked by phone"), "{show}");

    // Only the member's own text is a keyword grant.
    let sneaky = d.hearth(&[
        "members", "consent", "grant", "M-001", "--source", "keyword", "--text", "START",
    ]);
    assert_eq!(sneaky.status.code(), Some(1), "{}", text(&sneaky));
    assert!(
        stderr(&sneaky).contains("only the member's own text (START)"),
        "{}",
        text(&sneaky)
    );

    let grant = d.hearth(&[
        "members",
        "consent",
        "grant",
        "M-001",
        "--text",
        "Patient agreed again in person",
    ]);
    assert_eq!(grant.status.code(), Some(0), "{}", text(&grant));
    let third = d.import();
    assert!(!stdout(&third).contains("left revoked"), "{}", text(&third));
    let show = stdout(&d.hearth(&["members", "show", "M-001"]));
    assert!(show.contains("consent       granted (staff"), "{show}");
}

#[test]
fn a_stop_texted_through_the_daemon_survives_a_re_import_and_is_confirmed_in_the_members_language()
{
    let d = Deployment::new();
    d.import();
    // M-001's roster language is English, M-002's Spanish.
    for (from, body) in [
        ("+15555550101", "pls stop txting me"),
        ("+15555550102", "dejen de escribirme por favor"),
    ] {
        let out = d.hearth(&["inject", "--from", from, body]);
        assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    }
    let mut daemon = spawn_daemon_in(&d);
    daemon.wait_notify("READY=1", std::time::Duration::from_secs(20));
    let console = d.path("console.jsonl");
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(15);
    let sent: Vec<serde_json::Value> = loop {
        let lines: Vec<serde_json::Value> = std::fs::read_to_string(&console)
            .unwrap_or_default()
            .lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect();
        if lines.len() >= 2 {
            break lines;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "two confirmations did not reach the console provider: {lines:?}"
        );
        std::thread::sleep(std::time::Duration::from_millis(50));
    };
    daemon.signal(libc::SIGTERM);
    assert!(
        daemon
            .wait_exit(std::time::Duration::from_secs(30))
            .is_some()
    );
    let body_to = |to: &str| {
        sent.iter()
            .find(|m| m["to"] == to)
            .and_then(|m| m["body"].as_str())
            .unwrap_or_default()
            .to_owned()
    };
    assert!(
        body_to("+15555550101").contains("you are unsubscribed"),
        "{sent:?}"
    );
    assert!(
        body_to("+15555550102").contains("se dio de baja"),
        "{sent:?}"
    );

    let again = d.import();
    let out = stdout(&again);
    assert!(
        out.contains(
            "2 rows say consent yes but the member revoked consent (2 by STOP); left revoked"
        ),
        "{out}"
    );
    assert!(out.contains("opts back in by texting START"), "{out}");
    for id in ["M-001", "M-002"] {
        let show = stdout(&d.hearth(&["members", "show", id]));
        assert!(
            show.contains("consent       revoked (keyword"),
            "{id}: {show}"
        );
    }
}
