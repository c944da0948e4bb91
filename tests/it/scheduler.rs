//! The scheduler end to end on real SQLite files with an injected clock:
//! fire instants across daylight saving, session calendars, catch-up and
//! restarts, reloads, frequency caps, windows, surveys. Plus one crash of
//! the real binary in the middle of a fan-out.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;
use std::sync::Arc;

use chrono::{DateTime, NaiveTime, TimeDelta, Utc};
use hearth::config::reload::{LiveRules, Trigger};
use hearth::dispatch::gate::{self, Verdict};
use hearth::domain::clock::ManualClock;
use hearth::domain::message::{IdempotencyKey, Kind, NewMessage, OutState, OutboxMessage};
use hearth::store::prelude::*;
use hearth::store::sqlite::{KeySource, SqliteStore};
use hearth::store::traits::outbox::{InstanceId, ListFilter, Outcome};
use hearth::store::traits::schedule::{FireRecord, FireStatus};
use hearth::store::traits::{OutboxStore, ScheduleStore};
use hearth::timers::schedules::Scheduler;
use hearth::timers::schedules::TickReport;
use tempfile::TempDir;

fn t(s: &str) -> DateTime<Utc> {
    DateTime::parse_from_rfc3339(s)
        .unwrap_or_else(|e| panic!("{s}: {e}"))
        .with_timezone(&Utc)
}

const ROSTER: &str = "external_id,first_name,phone,timezone,groups,consent
M-1,Ann,+15555550101,America/New_York,monday,yes
M-2,Bo,+15555550102,America/New_York,monday,yes
M-3,Cy,+15555550103,Asia/Tokyo,monday,yes
M-4,Di,+15555550104,America/New_York,monday,no
";

/// The same people in no group.
const PLAIN_ROSTER: &str = "external_id,first_name,phone,timezone,consent
M-1,Ann,+15555550101,America/New_York,yes
M-2,Bo,+15555550102,America/New_York,yes
M-3,Cy,+15555550103,Asia/Tokyo,yes
M-4,Di,+15555550104,America/New_York,no
";

const MONDAY_GROUP: &str = r#"groups:
  - id: monday
    name: Monday Group
    timezone: America/New_York
    sessions: { cron: "0 18 * * MON", duration: 90m }
templates:
  reminder:
    body: "Hi {{ member.first_name }}, {{ group.name }} meets {{ session.when }} at {{ session.starts_at | time }}."
"#;

const DAY_BEFORE: &str = r#"schedules:
  - id: day-before
    template: reminder
    groups: [monday]
    before_session: 1d
    at: "17:00"
"#;

struct Fx {
    dir: TempDir,
    store: SqliteStore,
    rules: Arc<LiveRules>,
    scheduler: Scheduler<SqliteStore>,
}

fn open(dir: &Path) -> SqliteStore {
    crate::support::open_store(dir)
}

/// Imports `csv` (groups among `known`), consent where it says yes.
async fn import(store: &SqliteStore, csv: &str, known: BTreeSet<String>) {
    use hearth::store::import::{self, ImportOptions};
    let (rows, invalid) = import::parse(
        csv.as_bytes(),
        &known,
        t("2026-01-01T00:00:00Z").date_naive(),
    )
    .unwrap();
    assert!(invalid.is_empty(), "{invalid:?}");
    let report = store
        .import_members(
            rows,
            invalid,
            ImportOptions {
                skip_invalid: false,
                consent_text: Some(crate::support::CONSENT_TEXT.into()),
                actor: "test".into(),
                source_name: "roster.csv".into(),
            },
        )
        .await
        .unwrap();
    assert!(report.applied, "{report:?}");
}

impl Fx {
    async fn new(rules: &str, roster: &str) -> Fx {
        let dir = tempfile::tempdir().unwrap();
        crate::support::write(&dir.path().join("rules/rules.yaml"), rules);
        let store = open(dir.path());
        let rules = Arc::new(LiveRules::load(&dir.path().join("rules")).unwrap());
        import(
            &store,
            roster,
            rules.current().groups.keys().cloned().collect(),
        )
        .await;
        let scheduler = Scheduler::new(
            store.clone(),
            rules.clone(),
            Arc::new(ManualClock::new(t("2000-01-01T00:00:00Z"))),
        );
        Fx {
            dir,
            store,
            rules,
            scheduler,
        }
    }

    /// A daemon restart: new rules and a new scheduler on the same files.
    fn restart(&mut self) {
        self.rules = Arc::new(LiveRules::load(&self.dir.path().join("rules")).unwrap());
        self.scheduler = Scheduler::new(
            self.store.clone(),
            self.rules.clone(),
            Arc::new(ManualClock::new(t("2000-01-01T00:00:00Z"))),
        );
    }

    /// Rewrites the rules file and reloads, as an editor save does.
    fn rewrite(&self, rules: &str) {
        crate::support::write(&self.dir.path().join("rules/rules.yaml"), rules);
        let outcome = self.rules.reload(Trigger::Signal);
        assert!(
            matches!(
                outcome,
                hearth::config::reload::ReloadOutcome::Applied { .. }
            ),
            "{outcome:?}"
        );
    }

    async fn tick(&self, at: DateTime<Utc>) -> TickReport {
        self.scheduler.tick(at).await.unwrap()
    }

    /// Runs the scheduler from `from` to `to`, waking exactly at each fire
    /// (as the daemon does), and returns every fire record.
    async fn run(&self, from: &str, to: &str) -> Vec<FireRecord> {
        let to = t(to);
        let mut report = self.tick(t(from)).await;
        let mut fires = report.fires.clone();
        while let Some(next) = report.next.filter(|n| *n <= to) {
            report = self.tick(next).await;
            assert!(!report.fires.is_empty(), "woke at {next} for nothing");
            fires.extend(report.fires.clone());
        }
        fires
    }

    async fn messages(&self) -> Vec<OutboxMessage> {
        let mut all = self
            .store
            .list_messages(ListFilter {
                limit: 1_000_000,
                ..ListFilter::default()
            })
            .await
            .unwrap();
        all.sort_by_key(|m| m.id);
        all
    }
}

fn instants(fires: &[FireRecord], schedule: &str) -> Vec<String> {
    fires
        .iter()
        .filter(|f| f.schedule == schedule)
        .map(|f| f.fire.to_rfc3339())
        .collect()
}

#[tokio::test]
async fn the_day_before_reminder_goes_at_17_local_on_both_sides_of_both_2026_new_york_changes() {
    let fx = Fx::new(&format!("{MONDAY_GROUP}{DAY_BEFORE}"), ROSTER).await;
    // Spring forward: Sunday 2026-03-08. Sessions Monday 03-02, 03-09, 03-16.
    let spring = fx.run("2026-02-28T00:00:00Z", "2026-03-15T23:59:00Z").await;
    assert_eq!(
        instants(&spring, "day-before"),
        [
            "2026-03-01T22:00:00+00:00", // 17:00 EST
            "2026-03-08T21:00:00+00:00", // 17:00 EDT, on the day of the change
            "2026-03-15T21:00:00+00:00",
        ]
    );
    let mut messages = fx.messages().await;
    // Fall back: Sunday 2026-11-01 (a fresh deployment: this one would
    // record the months between as missed).
    let fx = Fx::new(&format!("{MONDAY_GROUP}{DAY_BEFORE}"), ROSTER).await;
    let fall = fx.run("2026-10-24T00:00:00Z", "2026-11-08T23:59:00Z").await;
    assert_eq!(
        instants(&fall, "day-before"),
        [
            "2026-10-25T21:00:00+00:00", // 17:00 EDT
            "2026-11-01T22:00:00+00:00", // 17:00 EST, on the day of the change
            "2026-11-08T22:00:00+00:00",
        ]
    );
    messages.extend(fx.messages().await);
    // Three members with consent (M-4 has none) × six fires.
    assert_eq!(messages.len(), 18);
    for m in &messages {
        assert_eq!(m.kind, Kind::Scheduled);
        assert_eq!(m.state, OutState::Queued);
        let plan = m
            .plan
            .as_ref()
            .expect("a scheduled message records its plan");
        assert_eq!(plan.schedule, "day-before");
        assert_eq!(m.not_before, plan.fire, "no window: sent at the fire");
        assert!(m.body.ends_with("meets tomorrow at 6:00 PM."), "{}", m.body);
    }
    for f in spring.iter().chain(&fall) {
        assert_eq!((f.status, f.enqueued), (FireStatus::Done, 3), "{f:?}");
    }
}

#[tokio::test]
async fn fixed_time_jobs_fire_once_across_a_change_and_hourly_jobs_fire_at_every_real_hour() {
    let rules = r#"templates:
  hello:
    body: "Hi {{ member.first_name }}"
schedules:
  - id: at-0230
    template: hello
    cron: "30 2 * * *"
    timezone: America/New_York
  - id: at-0130
    template: hello
    cron: "30 1 * * *"
    timezone: America/New_York
  - id: hourly
    template: hello
    cron: "0 * * * *"
    timezone: America/New_York
"#;
    let roster = "external_id,first_name,phone,timezone,consent\nM-1,Ann,+15555550101,America/New_York,yes\n";
    let fx = Fx::new(rules, roster).await;
    let spring = fx.run("2026-03-07T12:00:00Z", "2026-03-09T12:00:00Z").await;
    // 02:30 does not exist on 03-08: it fires once, at 03:00 EDT.
    assert_eq!(
        instants(&spring, "at-0230"),
        ["2026-03-08T07:00:00+00:00", "2026-03-09T06:30:00+00:00"]
    );
    let fx = Fx::new(rules, roster).await;
    let fall = fx.run("2026-10-31T12:00:00Z", "2026-11-02T12:00:00Z").await;
    // 01:30 happens twice on 11-01: it fires once, at the first (EDT).
    assert_eq!(
        instants(&fall, "at-0130"),
        ["2026-11-01T05:30:00+00:00", "2026-11-02T06:30:00+00:00"]
    );
    let on_local_day = |fires: &[FireRecord], from: &str, to: &str| {
        fires
            .iter()
            .filter(|f| f.schedule == "hourly" && f.fire >= t(from) && f.fire < t(to))
            .count()
    };
    // Local midnight to midnight: 23 real hours on 03-08, 25 on 11-01.
    assert_eq!(
        on_local_day(&spring, "2026-03-08T05:00:00Z", "2026-03-09T04:00:00Z"),
        23
    );
    assert_eq!(
        on_local_day(&fall, "2026-11-01T04:00:00Z", "2026-11-02T05:00:00Z"),
        25
    );
}

#[tokio::test]
async fn quiet_hours_follow_the_member_not_the_group() {
    let fx = Fx::new(&format!("{MONDAY_GROUP}{DAY_BEFORE}"), ROSTER).await;
    fx.run("2026-03-01T12:00:00Z", "2026-03-01T22:00:00Z").await;
    // 17:00 in New York is 07:00 the next morning in Tokyo.
    let fire = t("2026-03-01T22:00:00Z");
    let window = hearth::domain::SendWindow::new(
        NaiveTime::from_hms_opt(8, 0, 0).unwrap(),
        NaiveTime::from_hms_opt(21, 0, 0).unwrap(),
    );
    let holder = InstanceId::new("test").unwrap();
    let mut verdicts = BTreeMap::new();
    while let Some(c) = fx
        .store
        .claim(&holder, fire, TimeDelta::minutes(5))
        .await
        .unwrap()
    {
        verdicts.insert(
            c.message.member_external_id.clone().unwrap(),
            gate::decide(&c, fire, window),
        );
    }
    assert_eq!(verdicts["M-1"], Verdict::Send);
    assert_eq!(verdicts["M-2"], Verdict::Send);
    match &verdicts["M-3"] {
        Verdict::Defer { until, .. } => assert_eq!(*until, t("2026-03-01T23:00:00Z")),
        other => panic!("Tokyo member at 07:00 local: {other:?}"),
    }
}

#[tokio::test]
async fn a_cancelled_session_gets_no_reminder_and_an_extra_session_gets_one() {
    let group = MONDAY_GROUP.replace(
        r#"sessions: { cron: "0 18 * * MON", duration: 90m }"#,
        r#"sessions:
      cron: "0 18 * * MON"
      duration: 90m
      cancelled: ["2026-03-09"]
      extra:
        - { date: "2026-03-11", at: "18:00" }"#,
    );
    let fx = Fx::new(&format!("{group}{DAY_BEFORE}"), ROSTER).await;
    let fires = fx.run("2026-03-07T00:00:00Z", "2026-03-14T00:00:00Z").await;
    // Nothing on Sunday 03-08 (Monday's session is cancelled); Tuesday
    // 03-10 at 17:00 EDT for Wednesday's extra session.
    assert_eq!(
        instants(&fires, "day-before"),
        ["2026-03-10T21:00:00+00:00"]
    );
    let messages = fx.messages().await;
    assert_eq!(messages.len(), 3);
    assert!(
        messages[0].body.ends_with("meets tomorrow at 6:00 PM."),
        "{}",
        messages[0].body
    );
}

fn two_catch_ups() -> String {
    format!(
        "{MONDAY_GROUP}{DAY_BEFORE}  - id: day-before-patient
    template: reminder
    groups: [monday]
    before_session: 1d
    at: \"17:00\"
    catch_up: 6h
"
    )
}

#[tokio::test]
async fn a_restart_thirty_minutes_after_a_fire_processes_it_once() {
    let mut fx = Fx::new(&two_catch_ups(), ROSTER).await;
    // Running before the fire, then down across it.
    fx.tick(t("2026-03-01T12:00:00Z")).await;
    fx.restart();
    let report = fx.tick(t("2026-03-01T22:30:00Z")).await;
    assert_eq!(report.fires.len(), 2, "{:?}", report.fires);
    assert!(report.fires.iter().all(|f| f.status == FireStatus::Done));
    // Again, and after another restart: nothing more.
    assert!(fx.tick(t("2026-03-01T22:31:00Z")).await.fires.is_empty());
    fx.restart();
    assert!(fx.tick(t("2026-03-01T23:00:00Z")).await.fires.is_empty());
    assert_eq!(fx.messages().await.len(), 6);
}

#[tokio::test]
async fn a_restart_three_hours_after_a_fire_records_it_missed_unless_its_catch_up_allows() {
    let mut fx = Fx::new(&two_catch_ups(), ROSTER).await;
    fx.tick(t("2026-03-01T12:00:00Z")).await;
    fx.restart();
    let report = fx.tick(t("2026-03-02T01:00:00Z")).await;
    let by_schedule: BTreeMap<&str, &FireRecord> = report
        .fires
        .iter()
        .map(|f| (f.schedule.as_str(), f))
        .collect();
    let missed = by_schedule["day-before"];
    assert_eq!(missed.status, FireStatus::Missed);
    assert!(
        missed.note.as_deref().unwrap().contains("catch_up is 1h"),
        "{missed:?}"
    );
    assert_eq!(by_schedule["day-before-patient"].status, FireStatus::Done);
    let messages = fx.messages().await;
    assert_eq!(messages.len(), 3);
    assert!(
        messages
            .iter()
            .all(|m| m.plan.as_ref().unwrap().schedule == "day-before-patient")
    );
    // The miss is on record, and is not retried.
    let records = fx.store.fire_records(Some("day-before"), 10).await.unwrap();
    assert_eq!(records.len(), 1);
    assert_eq!(records[0].status, FireStatus::Missed);
    fx.restart();
    assert!(fx.tick(t("2026-03-02T01:05:00Z")).await.fires.is_empty());
}

const WINDOWED: &str = r#"templates:
  hello:
    body: "Hi {{ member.first_name }}"
  other:
    body: "Hello again {{ member.first_name }}"
schedules:
  - id: noon
    template: hello
    cron: "0 12 * * *"
    timezone: UTC
    window: { from: "12:00", to: "20:00" }
  - id: steady
    template: other
    cron: "0 11 * * *"
    timezone: UTC
    window: { from: "11:00", to: "20:00" }
"#;

#[tokio::test]
async fn a_reload_moves_future_fires_and_cancels_only_what_the_changed_schedule_queued() {
    let fx = Fx::new(WINDOWED, PLAIN_ROSTER).await;
    fx.tick(t("2026-03-01T00:00:00Z")).await;
    fx.tick(t("2026-03-01T11:00:00Z")).await;
    fx.tick(t("2026-03-01T12:00:00Z")).await;
    assert_eq!(fx.messages().await.len(), 6);
    // One of `noon`'s messages has gone out already.
    let holder = InstanceId::new("test").unwrap();
    let sent = loop {
        let c = fx
            .store
            .claim(&holder, t("2026-03-01T23:00:00Z"), TimeDelta::minutes(5))
            .await
            .unwrap()
            .unwrap();
        if c.message.plan.as_ref().unwrap().schedule == "noon" {
            let outcome = Outcome::Sent {
                provider: "console".into(),
                provider_message_id: None,
            };
            fx.store.settle_claim(&c.lease, outcome).await.unwrap();
            break c.message.id;
        }
        // Out of the way of the next claim.
        let outcome = Outcome::Defer {
            until: t("2026-03-10T12:00:00Z"),
            reason: "test".into(),
        };
        fx.store.settle_claim(&c.lease, outcome).await.unwrap();
    };

    fx.rewrite(&WINDOWED.replace("0 12 * * *", "0 14 * * *"));
    let report = fx.tick(t("2026-03-01T12:30:00Z")).await;
    assert_eq!(report.cancelled, 2);
    assert_eq!(report.next, Some(t("2026-03-01T14:00:00Z")));
    for m in fx.messages().await {
        let schedule = m.plan.as_ref().unwrap().schedule.clone();
        match (schedule.as_str(), m.id == sent) {
            ("noon", true) => assert_eq!(m.state, OutState::Sent),
            ("noon", false) => {
                assert_eq!(m.state, OutState::Suppressed);
                assert!(m.reason.as_deref().unwrap().contains("changed"), "{m:?}");
            }
            _ => assert_eq!(m.state, OutState::Queued, "unchanged `steady` keeps {m:?}"),
        }
    }
    // The moved fire goes at its new time.
    let report = fx.tick(t("2026-03-01T14:00:00Z")).await;
    assert_eq!(
        instants(&report.fires, "noon"),
        ["2026-03-01T14:00:00+00:00"]
    );
    assert_eq!(fx.messages().await.len(), 9);
}

#[tokio::test]
async fn removing_a_schedule_cancels_its_queued_messages() {
    let fx = Fx::new(WINDOWED, PLAIN_ROSTER).await;
    fx.tick(t("2026-03-01T00:00:00Z")).await;
    fx.tick(t("2026-03-01T12:00:00Z")).await;
    let without_noon = WINDOWED.replace(
        r#"  - id: noon
    template: hello
    cron: "0 12 * * *"
    timezone: UTC
    window: { from: "12:00", to: "20:00" }
"#,
        "",
    );
    fx.rewrite(&without_noon);
    let report = fx.tick(t("2026-03-01T12:01:00Z")).await;
    assert_eq!(report.cancelled, 3);
    for m in fx.messages().await {
        if m.plan.as_ref().unwrap().schedule == "noon" {
            assert_eq!(m.state, OutState::Suppressed);
            assert!(
                m.reason.as_deref().unwrap().contains("`noon` was removed"),
                "{m:?}"
            );
        } else {
            assert_eq!(m.state, OutState::Queued, "{m:?}");
        }
    }
}

#[tokio::test]
async fn a_session_cancelled_after_its_reminders_were_queued_takes_them_back() {
    let fx = Fx::new(&format!("{MONDAY_GROUP}{DAY_BEFORE}"), ROSTER).await;
    fx.run("2026-03-01T00:00:00Z", "2026-03-01T22:00:00Z").await;
    assert_eq!(fx.messages().await.len(), 3);
    let cancelled = MONDAY_GROUP.replace(
        r#"sessions: { cron: "0 18 * * MON", duration: 90m }"#,
        r#"sessions: { cron: "0 18 * * MON", duration: 90m, cancelled: ["2026-03-02"] }"#,
    );
    fx.rewrite(&format!("{cancelled}{DAY_BEFORE}"));
    let report = fx.tick(t("2026-03-01T22:10:00Z")).await;
    assert_eq!(report.cancelled, 3);
    for m in fx.messages().await {
        assert_eq!(m.state, OutState::Suppressed);
        assert!(
            m.reason
                .as_deref()
                .unwrap()
                .contains("a session cancelled or moved"),
            "{m:?}"
        );
    }
}

#[tokio::test]
async fn frequency_caps_suppress_at_fan_out_with_the_reason_and_exempt_other_kinds() {
    let rules = r#"limits: { per_day: 1, per_week: 3 }
templates:
  morning:
    body: "Good morning {{ member.first_name }}"
  afternoon:
    body: "Good afternoon {{ member.first_name }}"
schedules:
  - id: morning
    template: morning
    cron: "0 10 * * *"
    timezone: America/New_York
  - id: afternoon
    template: afternoon
    cron: "0 15 * * *"
    timezone: America/New_York
"#;
    let roster = "external_id,first_name,phone,timezone,consent\nM-1,Ann,+15555550101,America/New_York,yes\n";
    let fx = Fx::new(rules, roster).await;
    // A staff message that day does not count.
    let member = fx.store.member("M-1").await.unwrap().unwrap().id;
    fx.store
        .enqueue(NewMessage {
            idempotency_key: IdempotencyKey::staff(Some("k")).unwrap(),
            member_id: Some(member),
            to: None,
            body: "staff".into(),
            kind: Kind::Staff,
            not_before: t("2026-03-02T14:00:00Z"),
            expires_at: None,
            plan: None,
            suppressed: None,
        })
        .await
        .unwrap();
    fx.run("2026-03-02T00:00:00Z", "2026-03-05T23:00:00Z").await;
    let scheduled: Vec<OutboxMessage> = fx
        .messages()
        .await
        .into_iter()
        .filter(|m| m.kind == Kind::Scheduled)
        .collect();
    let got: Vec<(String, OutState)> = scheduled
        .iter()
        .map(|m| (m.plan.as_ref().unwrap().schedule.clone(), m.state))
        .collect();
    use OutState::{Queued, Suppressed};
    assert_eq!(
        got,
        [
            ("morning".to_owned(), Queued),
            ("afternoon".to_owned(), Suppressed),
            ("morning".to_owned(), Queued),
            ("afternoon".to_owned(), Suppressed),
            ("morning".to_owned(), Queued),
            ("afternoon".to_owned(), Suppressed),
            ("morning".to_owned(), Suppressed),
            ("afternoon".to_owned(), Suppressed),
        ]
    );
    assert!(
        scheduled[1]
            .reason
            .as_deref()
            .unwrap()
            .contains("limits.per_day is 1")
    );
    assert!(
        scheduled[6]
            .reason
            .as_deref()
            .unwrap()
            .contains("limits.per_week is 3")
    );
}

#[tokio::test]
async fn a_member_in_two_of_a_schedules_groups_gets_one_message_per_fire() {
    let rules = r#"groups:
  - id: a
    name: Group A
    timezone: America/New_York
    sessions: { cron: "0 18 * * MON", duration: 90m }
  - id: b
    name: Group B
    timezone: America/New_York
    sessions: { cron: "0 18 * * MON", duration: 60m }
templates:
  hello:
    body: "Hi {{ member.first_name }} from {{ group.name }}"
schedules:
  - id: weekly
    template: hello
    groups: [a, b]
    cron: "0 12 * * WED"
    timezone: America/New_York
  - id: day-before
    template: hello
    groups: [a, b]
    before_session: 1d
    at: "17:00"
"#;
    let roster = "external_id,first_name,phone,timezone,groups,consent\nM-1,Ann,+15555550101,America/New_York,a;b,yes\nM-2,Bo,+15555550102,America/New_York,b,yes\n";
    let fx = Fx::new(rules, roster).await;
    let fires = fx.run("2026-03-01T00:00:00Z", "2026-03-05T00:00:00Z").await;
    // Both groups' sessions start at one instant: one fire per group, one
    // message per member.
    assert_eq!(instants(&fires, "day-before").len(), 2);
    let messages = fx.messages().await;
    let per: BTreeMap<(String, String), usize> =
        messages.iter().fold(BTreeMap::new(), |mut acc, m| {
            *acc.entry((
                m.plan.as_ref().unwrap().schedule.clone(),
                m.member_external_id.clone().unwrap(),
            ))
            .or_default() += 1;
            acc
        });
    assert_eq!(per.values().copied().collect::<Vec<_>>(), [1, 1, 1, 1]);
}

#[tokio::test]
async fn a_window_spreads_messages_inside_it_the_same_way_on_every_run() {
    let roster: String =
        std::iter::once("external_id,first_name,phone,timezone,consent\n".to_owned())
            .chain(
                (0..60)
                    .map(|i| format!("M-{i},N{i},+1555555{:04},America/New_York,yes\n", 2000 + i)),
            )
            .collect();
    let rules = r#"templates:
  ping:
    body: "How are you, {{ member.first_name }}?"
schedules:
  - id: sampling
    template: ping
    cron: "0 9 * * *"
    window: { from: "10:00", to: "14:00" }
"#;
    let mut runs = Vec::new();
    for _ in 0..2 {
        let fx = Fx::new(rules, &roster).await;
        fx.run("2026-03-02T00:00:00Z", "2026-03-02T15:00:00Z").await;
        let times: BTreeMap<String, DateTime<Utc>> = fx
            .messages()
            .await
            .into_iter()
            .map(|m| (m.member_external_id.clone().unwrap(), m.not_before))
            .collect();
        runs.push(times);
    }
    assert_eq!(runs[0].len(), 60);
    assert_eq!(runs[0], runs[1], "a re-run picks the same instants");
    // 10:00–14:00 EST on 2026-03-02.
    let (from, to) = (t("2026-03-02T15:00:00Z"), t("2026-03-02T19:00:00Z"));
    assert!(runs[0].values().all(|at| *at >= from && *at < to));
    let distinct: BTreeSet<_> = runs[0].values().collect();
    assert!(
        distinct.len() > 30,
        "spread, not bunched: {}",
        distinct.len()
    );
}

#[tokio::test]
async fn a_survey_schedule_sends_the_first_question_and_opens_the_survey_once_it_is_sent() {
    let rules = r#"surveys:
  mood:
    questions:
      - id: mood
        ask: "Hi {{ member.first_name }}, how is your mood, 1 to 10?"
        expect: { number: { min: 1, max: 10 } }
    expires_after: 24h
schedules:
  - id: checkin
    survey: mood
    cron: "0 12 * * THU"
    timezone: America/New_York
"#;
    let roster = "external_id,first_name,phone,timezone,consent\nM-1,Ann,+15555550101,America/New_York,yes\n";
    let fx = Fx::new(rules, roster).await;
    fx.run("2026-03-01T00:00:00Z", "2026-03-06T00:00:00Z").await;
    let messages = fx.messages().await;
    assert_eq!(messages.len(), 1);
    assert_eq!(messages[0].body, "Hi Ann, how is your mood, 1 to 10?");
    let member = messages[0].member_id.unwrap();
    let fire = t("2026-03-05T17:00:00Z");
    assert_eq!(fx.store.open_survey(member, fire).await.unwrap(), None);
    let holder = InstanceId::new("test").unwrap();
    let c = fx
        .store
        .claim(&holder, fire, TimeDelta::minutes(5))
        .await
        .unwrap()
        .unwrap();
    let sent = Outcome::Sent {
        provider: "console".into(),
        provider_message_id: None,
    };
    fx.store.settle_claim(&c.lease, sent).await.unwrap();
    let open = fx.store.open_survey(member, fire).await.unwrap().unwrap();
    assert_eq!((open.survey.as_str(), open.question), ("mood", 0));
    assert_eq!(open.expires_at, Some(fire + TimeDelta::hours(24)));
    assert_eq!(
        fx.store
            .open_survey(member, fire + TimeDelta::hours(25))
            .await
            .unwrap(),
        None
    );
}

#[tokio::test]
async fn a_reminder_expires_after_its_window_and_never_after_the_session_starts() {
    let rules = format!(
        "{MONDAY_GROUP}{}",
        DAY_BEFORE.replace("at: \"17:00\"", "at: \"17:00\"\n    expires_after: 48h")
    );
    let fx = Fx::new(&rules, ROSTER).await;
    fx.run("2026-03-01T00:00:00Z", "2026-03-01T23:00:00Z").await;
    for m in fx.messages().await {
        // Monday 18:00 EST, not Sunday 17:00 + 48 h.
        assert_eq!(m.expires_at, Some(t("2026-03-02T23:00:00Z")));
    }
}

/// The real binary, killed (an abort, as SIGKILL) after the first of two
/// fan-out batches of one fire, then started again: every member ends up
/// with exactly one message for that fire.
#[tokio::test(flavor = "multi_thread")]
async fn a_crash_in_the_middle_of_a_10k_member_fan_out_leaves_every_member_enqueued_exactly_once() {
    let dir = tempfile::tempdir().unwrap();
    let rules = r#"templates:
  ping:
    body: "Hi {{ member.first_name }}"
schedules:
  - id: every-minute
    template: ping
    cron: "* * * * *"
    timezone: UTC
"#;
    crate::support::write(&dir.path().join("rules/rules.yaml"), rules);
    crate::support::write(
        &dir.path().join("hearth.yaml"),
        &crate::support::settings_yaml(),
    );
    let db = dir.path().join("state/hearth.db");
    std::fs::create_dir_all(db.parent().unwrap()).unwrap();
    {
        let store = SqliteStore::open_at(
            &db,
            &KeySource::Generated(hearth::store::sqlite::default_key_file(&db)),
        )
        .unwrap()
        .0;
        let roster: String =
            std::iter::once("external_id,first_name,phone,timezone,consent\n".to_owned())
                .chain(
                    (0..10_000).map(|i| format!("M-{i},N{i},+1555{:07},UTC,yes\n", 1_000_000 + i)),
                )
                .collect();
        crate::support::import_roster(&store, &roster).await;
    }

    let mut daemon = crate::support::spawn_daemon_in(
        dir,
        &[("HEARTH_FAULT_SCHEDULER_ABORT_AFTER_BATCHES", "1")],
    );
    let status = daemon
        .wait_exit(std::time::Duration::from_secs(90))
        .expect("the daemon aborts at the first fire's first batch");
    assert!(!status.success());
    let dir = daemon.kill_keep_dir();

    let store_at = |dir: &Path| {
        let db = dir.join("state/hearth.db");
        SqliteStore::open_at(
            &db,
            &KeySource::Generated(hearth::store::sqlite::default_key_file(&db)),
        )
        .unwrap()
        .0
    };
    let (fire, before) = {
        let store = store_at(dir.path());
        let records = store.fire_records(Some("every-minute"), 10).await.unwrap();
        assert_eq!(records.len(), 1, "{records:?}");
        assert_eq!(records[0].status, FireStatus::Started);
        let n = store
            .list_messages(ListFilter {
                limit: 100_000,
                ..ListFilter::default()
            })
            .await
            .unwrap()
            .len();
        (records[0].fire, n)
    };
    assert_eq!(
        before,
        hearth::timers::schedules::BATCH,
        "aborted after one batch"
    );

    let daemon = crate::support::spawn_daemon_in(dir, &[]);
    daemon.wait_notify("READY=1", std::time::Duration::from_secs(30));
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
    let dir = loop {
        // The daemon holds the database; read the record through a second
        // connection (readers never block on the daemon's writes).
        let done = {
            let store = store_at(daemon.dir.path());
            store
                .fire_records(Some("every-minute"), 10)
                .await
                .unwrap()
                .into_iter()
                .any(|r| r.fire == fire && r.status == FireStatus::Done)
        };
        if done {
            break daemon.kill_keep_dir();
        }
        assert!(
            std::time::Instant::now() < deadline,
            "the restart never finished the fire"
        );
        tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    };
    let store = store_at(dir.path());
    let of_fire: Vec<OutboxMessage> = store
        .list_messages(ListFilter {
            limit: 1_000_000,
            ..ListFilter::default()
        })
        .await
        .unwrap()
        .into_iter()
        .filter(|m| m.plan.as_ref().is_some_and(|p| p.fire == fire))
        .collect();
    let members: BTreeSet<i64> = of_fire.iter().filter_map(|m| m.member_id).collect();
    assert_eq!(of_fire.len(), 10_000);
    assert_eq!(members.len(), 10_000);
}

/// Messages that reached the outbox without the fan-out's caps (two
/// schedules' worth queued before `limits:` was added, say) meet the caps
/// again at the last gate, counted by what has actually gone out.
#[tokio::test]
async fn frequency_caps_are_checked_again_at_the_last_gate() {
    use hearth::dispatch::provider::AnyProvider;
    use hearth::dispatch::providers::console::ConsoleProvider;
    use hearth::dispatch::worker::{Dispatcher, ExecutionOutcome};
    use hearth::rules::Limits;

    let roster = "external_id,first_name,phone,timezone,consent\nM-1,Ann,+15555550101,UTC,yes\n";
    let fx = Fx::new(
        "templates:\n  hi:\n    body: \"Hi\"\nschedules:\n  - id: s\n    template: hi\n    cron: \"0 12 * * *\"\n",
        roster,
    )
    .await;
    let member = fx.store.member("M-1").await.unwrap().unwrap().id;
    let now = Utc::now();
    let message = |key: &str, kind: Kind| NewMessage {
        idempotency_key: IdempotencyKey::from(key),
        member_id: Some(member),
        to: None,
        body: format!("message {key}"),
        kind,
        not_before: now - TimeDelta::minutes(1),
        expires_at: None,
        plan: None,
        suppressed: None,
    };
    let batch = vec![
        message("first", Kind::Scheduled),
        message("second", Kind::Scheduled),
        message("staff", Kind::Staff),
    ];
    assert_eq!(fx.store.enqueue_batch(batch).await.unwrap(), 3);
    let settings = hearth::settings::DispatchSettings {
        send_window: hearth::domain::SendWindow::new(NaiveTime::MIN, NaiveTime::MIN),
        ..Default::default()
    };
    let console = ConsoleProvider::new(Some(fx.dir.path().join("console.jsonl"))).unwrap();
    let dispatcher = Dispatcher::new(
        fx.store.clone(),
        Arc::new(AnyProvider::Console(console)),
        settings,
    )
    .with_limits(Arc::new(|| {
        Some(Limits {
            per_day: Some(1),
            per_week: None,
        })
    }));
    let mut outcomes = Vec::new();
    loop {
        match dispatcher.try_execute_task().await.unwrap() {
            ExecutionOutcome::EmptyQueue => break,
            o => outcomes.push(o),
        }
    }
    assert_eq!(outcomes.len(), 3, "{outcomes:?}");
    let by_key: BTreeMap<String, OutboxMessage> = fx
        .messages()
        .await
        .into_iter()
        .map(|m| (m.idempotency_key.as_str().to_owned(), m))
        .collect();
    assert_eq!(
        by_key["staff"].state,
        OutState::Sent,
        "staff messages are not capped"
    );
    let mut states: Vec<&str> = ["first", "second"]
        .iter()
        .map(|k| by_key[*k].state.as_str())
        .collect();
    states.sort();
    assert_eq!(states, ["sent", "suppressed"]);
    let capped = by_key
        .values()
        .find(|m| m.state == OutState::Suppressed)
        .unwrap();
    assert!(
        capped
            .reason
            .as_deref()
            .unwrap()
            .contains("already sent 1 routine message today (limits.per_day is 1)"),
        "{capped:?}"
    );
}

/// A suspended VM or a clock step: the wall clock jumps past a fire while
/// the scheduler sleeps. It reads the clock again after every short sleep,
/// so it notices at once instead of sleeping out the hour it planned.
#[tokio::test(flavor = "multi_thread")]
async fn a_clock_that_jumps_past_a_fire_is_noticed_at_the_next_wake() {
    let fx = Fx::new(&format!("{MONDAY_GROUP}{DAY_BEFORE}"), ROSTER).await;
    let fire = t("2026-03-01T22:00:00Z");
    let clock = Arc::new(ManualClock::new(fire - TimeDelta::hours(1)));
    let scheduler = Scheduler::new(fx.store.clone(), fx.rules.clone(), clock.clone())
        .with_max_sleep(std::time::Duration::from_millis(100));
    let stop = tokio_util::sync::CancellationToken::new();
    let task = tokio::spawn(scheduler.run_until_stopped(stop.clone()));
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
    // The first pass marks the schedule, an hour before its fire.
    while fx.store.schedule_marks().await.unwrap().is_empty() {
        assert!(std::time::Instant::now() < deadline, "no first pass");
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    clock.set(fire + TimeDelta::minutes(1));
    loop {
        let records = fx.store.fire_records(Some("day-before"), 10).await.unwrap();
        if records
            .iter()
            .any(|r| r.fire == fire && r.status == FireStatus::Done)
        {
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "the jump went unnoticed"
        );
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    stop.cancel();
    task.await.unwrap();
    assert_eq!(fx.messages().await.len(), 3);
}
