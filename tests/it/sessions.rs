//! The one session calendar as people meet it: `hearth send` naming the
//! session's day, refusing a member outside the group, and `hearth check`
//! judging session times the same whenever it runs.

use std::path::Path;
use std::process::{Command, Output};

use chrono::{Datelike, TimeDelta};
use hearth::store::traits::OutboxStore;
use hearth::store::traits::outbox::ListFilter;

use crate::support::*;

/// A deployment whose groups meet at 20:00 in a zone where it is now
/// about noon: `today-group` today, `tomorrow-group` tomorrow,
/// `cancelled-group` today too but with today cancelled.
struct Deployment {
    dir: tempfile::TempDir,
    tz: chrono_tz::Tz,
}

fn weekday(d: chrono::NaiveDate) -> String {
    d.weekday().to_string().to_uppercase()
}

impl Deployment {
    fn new() -> Deployment {
        let zone = timezone_where_it_is(12);
        let tz: chrono_tz::Tz = zone.parse().unwrap();
        let today = chrono::Utc::now().with_timezone(&tz).date_naive();
        let tomorrow = today + TimeDelta::days(1);
        let rules = format!(
            r#"groups:
  - id: today-group
    name: Today Group
    timezone: {zone}
    sessions: {{ cron: "0 20 * * {today_wd}", duration: 60m }}
  - id: tomorrow-group
    name: Tomorrow Group
    timezone: {zone}
    sessions: {{ cron: "0 20 * * {tomorrow_wd}", duration: 60m }}
  - id: cancelled-group
    name: Cancelled Group
    timezone: {zone}
    sessions: {{ cron: "0 20 * * {today_wd}", duration: 60m, cancelled: ["{today}"] }}
templates:
  reminder:
    body: "{{{{ group.name }}}} meets {{{{ session.when }}}} at {{{{ session.starts_at | time }}}}."
schedules:
  - {{ id: weekly, template: reminder, groups: [today-group, tomorrow-group, cancelled-group], cron: "0 12 * * THU" }}
"#,
            today_wd = weekday(today),
            tomorrow_wd = weekday(tomorrow),
        );
        let dir = tempfile::tempdir().unwrap();
        write(&dir.path().join("hearth.yaml"), &settings_yaml());
        write(&dir.path().join("rules/rules.yaml"), &rules);
        write(
            &dir.path().join("roster.csv"),
            "external_id,first_name,phone,timezone,groups,consent\n\
             M-1,Ann,+15555550101,America/New_York,today-group;tomorrow-group;cancelled-group,yes\n\
             M-2,Bo,+15555550102,America/New_York,tomorrow-group,yes\n",
        );
        let d = Deployment { dir, tz };
        let out = d.hearth(&[
            "members",
            "import",
            d.dir.path().join("roster.csv").to_str().unwrap(),
            "--consent-text",
            CONSENT_TEXT,
        ]);
        assert_eq!(out.status.code(), Some(0), "{}", text(&out));
        d
    }

    fn hearth(&self, args: &[&str]) -> Output {
        hearth_in(self.dir.path(), args)
    }

    /// `hearth send` of the reminder; returns the queued body.
    fn send(&self, member: &str, group: &str) -> String {
        let out = self.hearth(&[
            "send",
            "--member",
            member,
            "--template",
            "reminder",
            "--group",
            group,
        ]);
        assert_eq!(out.status.code(), Some(0), "{}", text(&out));
        last_body(self.dir.path())
    }
}

fn hearth_in(dir: &Path, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_hearth"))
        .arg("--settings")
        .arg(dir.join("hearth.yaml"))
        .args(["--actor", "staff-tester"])
        .args(args)
        .env_remove("HEARTH_SETTINGS")
        .output()
        .unwrap()
}

fn text(o: &Output) -> String {
    format!(
        "exit {:?}\nstdout:\n{}\nstderr:\n{}",
        o.status.code(),
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}

/// The body of the newest outbox message, read from the database file.
fn last_body(dir: &Path) -> String {
    let settings =
        hearth::settings::Settings::load(&dir.join("hearth.yaml"), std::iter::empty()).unwrap();
    let (store, _) = hearth::store::sqlite::SqliteStore::open(&settings.database).unwrap();
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let rows = rt
        .block_on(store.list_messages(ListFilter {
            state: None,
            kind: None,
            limit: 1,
        }))
        .unwrap();
    rows.into_iter().next().expect("a queued message").body
}

#[test]
fn a_send_on_the_session_day_says_today_not_tomorrow() {
    let d = Deployment::new();
    assert_eq!(
        d.send("M-1", "today-group"),
        "Today Group meets today at 8:00 PM."
    );
}

#[test]
fn a_send_the_day_before_the_session_says_tomorrow() {
    let d = Deployment::new();
    assert_eq!(
        d.send("M-1", "tomorrow-group"),
        "Tomorrow Group meets tomorrow at 8:00 PM."
    );
}

#[test]
fn a_send_on_a_cancelled_date_names_the_session_after_it() {
    let d = Deployment::new();
    let next_week = chrono::Utc::now().with_timezone(&d.tz).date_naive() + TimeDelta::days(7);
    assert_eq!(
        d.send("M-1", "cancelled-group"),
        format!(
            "Cancelled Group meets on {} at 8:00 PM.",
            next_week.format("%A, %B %-d")
        )
    );
}

#[test]
fn send_to_a_member_outside_the_group_is_refused_with_their_groups_as_a_hint() {
    let d = Deployment::new();
    let out = d.hearth(&[
        "send",
        "--member",
        "M-2",
        "--template",
        "reminder",
        "--group",
        "today-group",
    ]);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("error: member M-2 is not in group `today-group`\n  hint: member M-2 is in `tomorrow-group`"),
        "{stderr}"
    );
    let out = d.hearth(&["outbox", "list"]);
    assert!(
        String::from_utf8_lossy(&out.stdout).contains("0 messages"),
        "{}",
        text(&out)
    );
}

#[test]
fn check_judges_session_times_on_a_fixed_sample_week_not_the_clock() {
    // Sessions at 07:00 and 18:00 in New York: two hours after the 18:00
    // one ends is 21:30, quiet hours. Judged on "the next session" of the
    // wall clock, this warned only between 07:00 and 18:00 there; judged
    // on the calendar's sample week it always does.
    let dir = tempfile::tempdir().unwrap();
    write(
        &dir.path().join("rules.yaml"),
        r#"groups:
  - id: twice-daily
    name: Twice Daily
    timezone: America/New_York
    sessions: { cron: "0 7,18 * * *", duration: 90m }
templates:
  follow-up: { body: "How was {{ group.name }}?" }
schedules:
  - { id: after, template: follow-up, after_session: 2h }
"#,
    );
    let compiled = hearth::config::load_dir(dir.path()).unwrap();
    let warnings: Vec<String> = compiled.diagnostics.iter().map(|d| d.to_string()).collect();
    assert!(
        warnings
            .iter()
            .any(|w| w.contains("lands at 21:30 for group `twice-daily`")),
        "{warnings:#?}"
    );
}

#[test]
fn no_clock_is_read_on_the_path_check_compiles() {
    // `check` must say the same whenever it runs: nothing it compiles
    // with may read the wall clock (reload.rs stamps attempts; it is the
    // daemon's, not the compiler's: config/reload/).
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut offenders = Vec::new();
    for sub in ["config", "rules", "schedule"] {
        for entry in walk(&root.join(sub)) {
            if entry.starts_with(root.join("config/reload")) {
                continue;
            }
            let source = std::fs::read_to_string(&entry).unwrap();
            for (n, line) in source.lines().enumerate() {
                if ["Utc::now", "Local::now", "SystemTime::now"]
                    .iter()
                    .any(|c| line.contains(c))
                {
                    offenders.push(format!("{}:{}: {}", entry.display(), n + 1, line.trim()));
                }
            }
        }
    }
    assert!(offenders.is_empty(), "{offenders:#?}");
}

fn walk(dir: &Path) -> Vec<std::path::PathBuf> {
    let mut out = Vec::new();
    for e in std::fs::read_dir(dir).unwrap() {
        let p = e.unwrap().path();
        if p.is_dir() {
            out.extend(walk(&p));
        } else if p.extension().is_some_and(|x| x == "rs") {
            out.push(p);
        }
    }
    out
}
