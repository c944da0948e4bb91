//! The reply pipeline end to end: the real `hearth run` binary sending and
//! receiving through a real Kannel (bearerbox, smsbox) with fakesmsc
//! playing the members' phones.
//!
//! A member texts through fakesmsc (MO); the test asserts on what fakesmsc
//! receives back (MT) and on the store the daemon wrote (opened beside the
//! running daemon through the store's own API, plus one read-only SQL
//! count of processed texts). Every wait is on an event with a deadline:
//! a text arriving at fakesmsc, a text processed, a message reaching a
//! state, Kannel going idle; never a fixed sleep.
//!
//! Kannel missing is a printed skip, and a failure under CI (see
//! `support::components`).

use std::path::PathBuf;
use std::process::Command;
use std::time::{Duration, Instant};

use chrono::{DateTime, Timelike, Utc};
use hearth::domain::incident::{Incident, IncidentState, Severity};
use hearth::domain::message::{InboundRow, InboundSms};
use hearth::domain::message::{Kind, OutState, OutboxMessage};
use hearth::store::prelude::*;
use hearth::store::sqlite::{OpenMode, SqliteStore};
use hearth::store::traits::incident::IncidentFilter;
use hearth::store::traits::outbox::ListFilter;
use hearth::store::traits::reply::ReplyFacts;
use hearth::store::traits::{IncidentStore, OutboxStore, ReplyStore};

use crate::support::kannel::{self as harness, Kannel, Received};
use crate::support::*;

/// The clinic's short code (`from` of every outbound text).
const SHORTCODE: &str = "+15555550999";
const PROGRAM: &str = "Riverside Peer Support";
const CONTACT: &str = "call 555-0100";
const FREQUENCY: &str = "up to 2 msgs/week";

/// How long anything the daemon does through Kannel may take: the
/// dispatcher and the inbound worker poll every 2 s, so the first pick-up
/// can take that long on a busy machine.
const PATIENCE: Duration = Duration::from_secs(20);

/// The rules every case runs: the crisis alert with its 988 reply and a
/// staff template for `hearth send`. `extra` is appended (surveys).
fn rules(extra: &str) -> String {
    format!(
        r#"templates:
  crisis-resources:
    body: "If you are in danger call 911. Call or text 988 any time, day or night (Suicide & Crisis Lifeline). A facilitator has been notified."
  hello:
    body: "Hi {{{{ member.first_name }}}}, group meets Thursday at 6. Reply STOP to opt out."
alerts:
  - id: crisis-language
    severity: critical
    keywords: ["end it all", "kill myself", "want to die"]
    reply: crisis-resources
{extra}"#
    )
}

/// One member of a rig's roster.
pub(crate) struct Person {
    external_id: &'static str,
    phone: &'static str,
    timezone: String,
}

pub(crate) fn person(external_id: &'static str, phone: &'static str, timezone: String) -> Person {
    Person {
        external_id,
        phone,
        timezone,
    }
}

/// Kannel, the daemon binary on a deployment directory sending through
/// it, and the store beside it.
pub(crate) struct Rig {
    pub(crate) kannel: Kannel,
    pub(crate) daemon: Daemon,
    pub(crate) store: SqliteStore,
    db: PathBuf,
}

impl Rig {
    /// Starts Kannel, writes the deployment (settings with `replies:`,
    /// `rules`, a roster of `people` with consent), and starts `hearth
    /// run` on it; `None` when Kannel is not installed and not required.
    async fn start(rules: &str, people: &[Person]) -> Option<Rig> {
        Rig::start_with(rules, people, "").await
    }

    /// As [`Rig::start`], with `extra` appended to the settings (a
    /// `notify:` block).
    pub(crate) async fn start_with(rules: &str, people: &[Person], extra: &str) -> Option<Rig> {
        if !harness::available() {
            return None;
        }
        let port = harness::free_port();
        let kannel = Kannel::start(&mo_url(port)).await;
        let dir = tempfile::tempdir().unwrap();
        write(&dir.path().join("rules/main.yaml"), rules);
        write(
            &dir.path().join("kannel-password"),
            &format!("{}\n", harness::PASSWORD),
        );
        write(
            &dir.path().join("kannel-callback-secret"),
            &format!("{}\n", harness::SECRET),
        );
        let settings_path = dir.path().join("hearth.yaml");
        write(
            &settings_path,
            &format!("{}{extra}", settings(port, &kannel.sendsms_url())),
        );
        let settings =
            hearth::settings::Settings::load(&settings_path, std::iter::empty()).unwrap();
        let db = settings.database.path.clone();
        {
            // The roster goes in before the daemon starts, as an operator
            // would import it.
            let (store, _) = SqliteStore::open(&settings.database).unwrap();
            let mut csv = String::from("external_id,first_name,last_name,phone,timezone,consent\n");
            for p in people {
                csv.push_str(&format!(
                    "{},Ann,Avery,{},{},yes\n",
                    p.external_id, p.phone, p.timezone
                ));
            }
            import_roster(&store, &csv).await;
        }
        let daemon = spawn_daemon_in(dir, &[("RUST_LOG", "info")]);
        daemon.wait_notify("READY=1", Duration::from_secs(30));
        let (store, _) = SqliteStore::open_as(&settings.database, OpenMode::Existing).unwrap();
        Some(Rig {
            kannel,
            daemon,
            store,
            db,
        })
    }

    pub(crate) fn settings_path(&self) -> PathBuf {
        self.daemon.dir.path().join("hearth.yaml")
    }

    /// What went wrong, for a failure message: Kannel's and the daemon's logs.
    pub(crate) fn logs(&self) -> String {
        self.kannel.logs()
    }

    /// A member texts `text`; returns once the daemon has stored and
    /// processed it (its reply, if any, is then in the outbox: the
    /// pipeline queues replies in the transaction that marks the text
    /// processed).
    pub(crate) async fn text(&mut self, from: &str, text: &str) {
        let before = self.inbound_counts().0;
        self.kannel.inject(from, text, false).await;
        self.wait_processed(before + 1).await;
    }

    /// `(stored, processed)` inbound texts, read-only beside the daemon.
    fn inbound_counts(&self) -> (i64, i64) {
        let conn = crate::support::db::open_read_only(&self.db);
        conn.busy_timeout(Duration::from_secs(5)).unwrap();
        conn.query_row(
            "SELECT COUNT(*), COUNT(processed_at) FROM inbound",
            [],
            |r| Ok((r.get(0)?, r.get(1)?)),
        )
        .unwrap()
    }

    pub(crate) async fn wait_processed(&self, stored: i64) {
        let deadline = Instant::now() + PATIENCE;
        loop {
            let (n, done) = self.inbound_counts();
            if n >= stored && done == n {
                return;
            }
            assert!(
                Instant::now() < deadline,
                "{n} of {stored} texts stored, {done} processed\n{}",
                self.logs()
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// Texts fakesmsc received for `phone`, in order.
    pub(crate) fn received_by(&self, phone: &str) -> Vec<Received> {
        self.kannel
            .received()
            .into_iter()
            .filter(|r| r.to == phone)
            .collect()
    }

    /// Waits until fakesmsc received at least `n` texts for `phone`.
    pub(crate) async fn wait_received_by(&self, phone: &str, n: usize) -> Vec<Received> {
        let deadline = Instant::now() + PATIENCE;
        loop {
            let got = self.received_by(phone);
            if got.len() >= n {
                return got;
            }
            assert!(
                Instant::now() < deadline,
                "{phone} received {} of {n} texts: {got:#?}\noutbox: {:#?}\n{}",
                got.len(),
                self.outbox().await,
                self.logs()
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// Waits until nothing is queued or being sent, and Kannel has passed
    /// on every text it took: what fakesmsc holds is then final.
    pub(crate) async fn wait_settled(&self) {
        let deadline = Instant::now() + PATIENCE;
        loop {
            let busy: Vec<OutboxMessage> = self
                .outbox()
                .await
                .into_iter()
                .filter(|m| {
                    matches!(m.state, OutState::Queued | OutState::Sending)
                        && m.next_attempt_at <= Utc::now() + chrono::Duration::seconds(5)
                })
                .collect();
            if busy.is_empty() {
                break;
            }
            assert!(
                Instant::now() < deadline,
                "still sending: {busy:#?}\n{}",
                self.logs()
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        self.kannel.wait_idle().await;
    }

    pub(crate) async fn outbox(&self) -> Vec<OutboxMessage> {
        self.store
            .list_messages(ListFilter {
                state: None,
                kind: None,
                limit: 1000,
            })
            .await
            .unwrap()
    }

    async fn outbox_for(&self, external_id: &str) -> Vec<OutboxMessage> {
        self.outbox()
            .await
            .into_iter()
            .filter(|m| m.member_external_id.as_deref() == Some(external_id))
            .collect()
    }

    async fn wait_state(&self, id: i64, want: OutState) -> OutboxMessage {
        let deadline = Instant::now() + PATIENCE;
        loop {
            let row = self.store.message(id).await.unwrap().unwrap();
            if row.state == want {
                return row;
            }
            assert!(
                Instant::now() < deadline,
                "message #{id} is {:?}, not {want:?} ({:?})\n{}",
                row.state,
                row.reason,
                self.logs()
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    async fn incidents_of(&self, external_id: &str) -> Vec<Incident> {
        self.store
            .incidents(&IncidentFilter {
                open_only: false,
                unresolved: false,
                member: Some(external_id.into()),
                limit: None,
            })
            .await
            .unwrap()
    }

    async fn consent_granted(&self, external_id: &str) -> bool {
        self.store
            .member(external_id)
            .await
            .unwrap()
            .unwrap()
            .consent
            .granted()
    }

    /// What the pipeline would read about a text from `phone` now: the
    /// open survey and its answers, the answer history.
    async fn facts(&self, external_id: &str, phone: &str) -> ReplyFacts {
        let member = self.store.member(external_id).await.unwrap().unwrap();
        let row = InboundRow {
            id: i64::MAX,
            sms: InboundSms {
                provider: "test".into(),
                provider_message_id: "facts-probe".into(),
                from: phone.into(),
                to: SHORTCODE.into(),
                body: String::new(),
                keyword: None,
            },
            member_id: Some(member.id),
            received_at: Utc::now(),
        };
        self.store.reply_facts(&row, Utc::now()).await.unwrap()
    }

    /// `hearth send` (staff): queues `template` for the member; returns
    /// the outbox id it printed.
    fn staff_send(&self, external_id: &str, template: &str) -> i64 {
        let out = Command::new(env!("CARGO_BIN_EXE_hearth"))
            .arg("--settings")
            .arg(self.settings_path())
            .args(["send", "--member", external_id, "--template", template])
            .env_remove("HEARTH_SETTINGS")
            .output()
            .unwrap();
        let stdout = String::from_utf8_lossy(&out.stdout);
        assert!(
            out.status.success(),
            "hearth send failed: {stdout}{}",
            String::from_utf8_lossy(&out.stderr)
        );
        // `queued message #12 for member M-1; ...`
        let after = stdout
            .split("queued message #")
            .nth(1)
            .unwrap_or_else(|| panic!("no message id in {stdout:?}"));
        after
            .split(|c: char| !c.is_ascii_digit())
            .next()
            .unwrap()
            .parse()
            .unwrap()
    }
}

fn mo_url(port: u16) -> String {
    crate::kannel::mo_url(([127, 0, 0, 1], port).into())
}

fn settings(port: u16, sendsms_url: &str) -> String {
    crate::kannel::settings(
        port,
        sendsms_url,
        &format!(
            r#"dispatch: {{ segments_per_second: 20, burst: 5, backoff_initial: 200ms, backoff_max: 1s, timeout: 3s }}
replies:
  program: "{PROGRAM}"
  contact: "{CONTACT}"
  frequency: "{FREQUENCY}"
"#
        ),
    )
}

/// A zone where it is mid-afternoon: routine texts go at once.
pub(crate) fn daytime() -> String {
    timezone_where_it_is(14)
}

/// A zone where it is the middle of the night: routine texts wait.
fn night() -> String {
    timezone_where_it_is(3)
}

fn bodies(got: &[Received]) -> Vec<&str> {
    got.iter().map(|r| r.body.as_str()).collect()
}

fn assert_crisis_reply(got: &Received) {
    assert_eq!(got.from, SHORTCODE);
    assert!(got.body.contains("988"), "not the crisis reply: {got:?}");
    assert!(got.body.contains("911"), "not the crisis reply: {got:?}");
}

fn assert_critical_crisis_incident(incidents: &[Incident], text: &str) {
    let critical: Vec<&Incident> = incidents
        .iter()
        .filter(|i| i.severity == Severity::Critical)
        .collect();
    assert_eq!(critical.len(), 1, "one critical incident: {incidents:#?}");
    let i = critical[0];
    assert_eq!(i.state, IncidentState::Open, "{i:#?}");
    assert_eq!(i.alert, "crisis-language", "{i:#?}");
    assert!(
        !i.evidence.is_empty(),
        "the incident keeps the matched evidence of {text:?}: {i:#?}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_crisis_text_gets_the_988_reply_at_the_phone_and_opens_a_critical_incident() {
    let Some(mut rig) = Rig::start(&rules(""), &[person("M-1", "+15555550201", daytime())]).await
    else {
        return;
    };
    rig.text("+15555550201", "I want to end it all").await;

    let got = rig.wait_received_by("+15555550201", 1).await;
    assert_crisis_reply(&got[0]);
    let out = rig.outbox_for("M-1").await;
    assert_eq!(out.len(), 1, "the crisis reply and nothing else: {out:#?}");
    assert_eq!(out[0].kind, Kind::Crisis);
    assert_critical_crisis_incident(&rig.incidents_of("M-1").await, "I want to end it all");
    // "end" is an opt-out word; the crisis is not an opt-out.
    assert!(rig.consent_granted("M-1").await, "a crisis is not a STOP");
    rig.wait_settled().await;
    assert_eq!(
        rig.received_by("+15555550201").len(),
        1,
        "exactly one reply"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_crisis_text_in_the_members_quiet_hours_is_still_answered_at_once() {
    let Some(mut rig) = Rig::start(&rules(""), &[person("M-1", "+15555550202", night())]).await
    else {
        return;
    };
    // A routine message to the same member waits for morning ...
    let routine = rig.staff_send("M-1", "hello");
    rig.text("+15555550202", "I want to kill myself tonight")
        .await;

    // ... but the crisis reply goes through the night.
    let got = rig.wait_received_by("+15555550202", 1).await;
    assert_crisis_reply(&got[0]);
    assert_critical_crisis_incident(
        &rig.incidents_of("M-1").await,
        "I want to kill myself tonight",
    );
    rig.kannel.wait_idle().await;
    let held = rig.store.message(routine).await.unwrap().unwrap();
    assert_eq!(
        held.state,
        OutState::Queued,
        "the routine text still waits for the morning: {held:?}"
    );
    assert_eq!(
        bodies(&rig.received_by("+15555550202")).len(),
        1,
        "only the crisis reply went at night"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_crisis_text_from_an_opted_out_member_opens_an_incident_and_is_answered_once() {
    let phone = "+15555550203";
    let Some(mut rig) = Rig::start(&rules(""), &[person("M-1", phone, daytime())]).await else {
        return;
    };
    rig.text(phone, "STOP").await;
    rig.wait_received_by(phone, 1).await;
    assert!(!rig.consent_granted("M-1").await);

    rig.text(phone, "i want to die").await;
    let got = rig.wait_received_by(phone, 2).await;
    assert_crisis_reply(&got[1]);
    assert_critical_crisis_incident(&rig.incidents_of("M-1").await, "i want to die");
    let crisis: Vec<OutboxMessage> = rig
        .outbox_for("M-1")
        .await
        .into_iter()
        .filter(|m| m.kind == Kind::Crisis)
        .collect();
    assert_eq!(crisis.len(), 1, "one reply attempt: {crisis:#?}");
    let sent = rig
        .wait_state(crisis[0].id, OutState::Delivered)
        .await
        .attempts;
    assert_eq!(sent, 1, "one provider call");
    // Answering their own crisis text does not opt them back in.
    assert!(!rig.consent_granted("M-1").await);
    rig.wait_settled().await;
    assert_eq!(rig.received_by(phone).len(), 2);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_crisis_text_from_an_unknown_number_is_answered_and_opens_an_incident() {
    let stranger = "+15555550299";
    let Some(mut rig) = Rig::start(&rules(""), &[person("M-1", "+15555550208", daytime())]).await
    else {
        return;
    };
    rig.text(stranger, "i want to kill myself").await;
    let got = rig.wait_received_by(stranger, 1).await;
    assert_crisis_reply(&got[0]);
    let all = rig
        .store
        .incidents(&IncidentFilter {
            open_only: false,
            unresolved: false,
            member: None,
            limit: None,
        })
        .await
        .unwrap();
    assert_eq!(all.len(), 1, "{all:#?}");
    assert_eq!(all[0].member_id, None, "not a member's: {:#?}", all[0]);
    assert_critical_crisis_incident(&all, "i want to kill myself");
    rig.wait_settled().await;
    assert_eq!(rig.received_by(stranger).len(), 1);
}

#[tokio::test(flavor = "multi_thread")]
async fn stop_with_crisis_words_is_both_a_crisis_and_an_opt_out() {
    let phone = "+15555550209";
    let Some(mut rig) = Rig::start(&rules(""), &[person("M-1", phone, daytime())]).await else {
        return;
    };
    rig.text(phone, "STOP, I can't do this anymore, I want to die")
        .await;
    let got = rig.wait_received_by(phone, 1).await;
    assert!(
        got.iter().any(|r| r.body.contains("988")),
        "the crisis reply: {got:#?}"
    );
    assert_critical_crisis_incident(
        &rig.incidents_of("M-1").await,
        "STOP, I can't do this anymore, I want to die",
    );
    assert!(!rig.consent_granted("M-1").await, "and consent revoked");
    rig.wait_settled().await;
    let kinds: Vec<Kind> = rig.outbox_for("M-1").await.iter().map(|m| m.kind).collect();
    assert!(kinds.contains(&Kind::Crisis), "{kinds:?}");
    assert!(
        kinds
            .iter()
            .all(|k| matches!(k, Kind::Crisis | Kind::Compliance)),
        "nothing routine: {kinds:?}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn stop_sends_exactly_one_confirmation_naming_the_program_and_later_messages_are_suppressed_at_the_last_gate()
 {
    let phone = "+15555550204";
    let Some(mut rig) = Rig::start(&rules(""), &[person("M-1", phone, daytime())]).await else {
        return;
    };
    rig.text(phone, "Stop.").await;
    let got = rig.wait_received_by(phone, 1).await;
    assert!(
        got[0].body.contains(PROGRAM),
        "the confirmation names the program: {:?}",
        got[0].body
    );
    assert!(!rig.consent_granted("M-1").await, "consent revoked");
    let out = rig.outbox_for("M-1").await;
    assert_eq!(out.len(), 1, "{out:#?}");
    assert_eq!(out[0].kind, Kind::Compliance);

    // A staff message queued afterwards is stopped at the last gate.
    let later = rig.staff_send("M-1", "hello");
    let row = rig.wait_state(later, OutState::Suppressed).await;
    assert!(row.reason.is_some(), "{row:?}");

    // STOP again: consent is already revoked; nothing more is sent.
    rig.text(phone, "STOP").await;
    rig.wait_settled().await;
    assert_eq!(
        bodies(&rig.received_by(phone)),
        vec![got[0].body.as_str()],
        "one confirmation, nothing else"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn start_after_stop_resubscribes_with_a_confirmation_and_a_later_message_is_sent() {
    let phone = "+15555550205";
    let Some(mut rig) = Rig::start(&rules(""), &[person("M-1", phone, daytime())]).await else {
        return;
    };
    rig.text(phone, "STOP").await;
    rig.wait_received_by(phone, 1).await;
    rig.text(phone, "START").await;
    let got = rig.wait_received_by(phone, 2).await;
    assert!(rig.consent_granted("M-1").await, "re-subscribed");
    assert_ne!(got[1].body, got[0].body, "a START confirmation: {got:#?}");

    let later = rig.staff_send("M-1", "hello");
    rig.wait_state(later, OutState::Delivered).await;
    let got = rig.wait_received_by(phone, 3).await;
    assert!(got[2].body.starts_with("Hi Ann"), "{got:#?}");
}

#[tokio::test(flavor = "multi_thread")]
async fn plain_text_after_stop_does_not_resubscribe_and_gets_no_reply() {
    let phone = "+15555550206";
    let Some(mut rig) = Rig::start(&rules(""), &[person("M-1", phone, daytime())]).await else {
        return;
    };
    rig.text(phone, "STOP").await;
    rig.wait_received_by(phone, 1).await;
    rig.text(phone, "ok thanks, see you at group").await;
    rig.text(phone, "sure").await;
    assert!(!rig.consent_granted("M-1").await, "still opted out");
    let later = rig.staff_send("M-1", "hello");
    rig.wait_state(later, OutState::Suppressed).await;
    rig.wait_settled().await;
    assert_eq!(
        rig.received_by(phone).len(),
        1,
        "only the STOP confirmation: {:#?}",
        rig.received_by(phone)
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn help_answers_with_program_contact_frequency_rates_and_how_to_stop() {
    let phone = "+15555550207";
    let Some(mut rig) = Rig::start(&rules(""), &[person("M-1", phone, daytime())]).await else {
        return;
    };
    rig.text(phone, "help").await;
    let got = rig.wait_received_by(phone, 1).await;
    let body = &got[0].body;
    for part in [
        PROGRAM,
        CONTACT,
        FREQUENCY,
        "Msg & data rates may apply",
        "STOP",
    ] {
        assert!(body.contains(part), "HELP text lacks {part:?}: {body:?}");
    }
    assert!(rig.consent_granted("M-1").await, "HELP changes no consent");
    assert_eq!(rig.outbox_for("M-1").await[0].kind, Kind::Compliance);
}

/// Surveys that start at one fixed UTC minute, far enough ahead for the
/// daemon to be up (a new schedule never fires for the past), reaching the
/// members the segments name.
fn survey_rules(fire: DateTime<Utc>) -> String {
    let cron = format!("{} {} * * *", fire.minute(), fire.hour());
    rules(&format!(
        r#"surveys:
  checkin:
    questions:
      - id: mood
        ask: "How is your mood today, from 1 to 10? Reply STOP to opt out."
        expect: {{ number: {{ min: 1, max: 10, integer: true }} }}
      - id: slept
        ask: "Did you sleep well last night? Reply yes or no."
        expect: yes_no
    reprompt: "Sorry, please reply with a whole number from 1 to 10."
    max_reprompts: 2
    expires_after: 1h
  quick:
    questions:
      - id: energy
        ask: "Quick one: your energy today, from 1 to 10?"
        expect: {{ number: {{ min: 1, max: 10, integer: true }} }}
    expires_after: 20s
segments:
  - id: checkin-members
    match: {{ external_id: {{ in: [S-1, S-2] }} }}
  - id: quick-members
    match: {{ external_id: {{ in: [S-3] }} }}
schedules:
  - id: checkin-now
    segment: checkin-members
    survey: checkin
    cron: "{cron}"
    timezone: UTC
  - id: quick-now
    segment: quick-members
    survey: quick
    cron: "{cron}"
    timezone: UTC
"#
    ))
}

/// The first whole minute 40 s or more from now (at most 100 s).
fn next_fire() -> DateTime<Utc> {
    let t = Utc::now() + chrono::Duration::seconds(100);
    t.with_second(0).unwrap().with_nanosecond(0).unwrap()
}

async fn wait_received_until(rig: &Rig, phone: &str, n: usize, until: Instant) -> Vec<Received> {
    loop {
        let got = rig.received_by(phone);
        if got.len() >= n {
            return got;
        }
        assert!(
            Instant::now() < until,
            "{phone} received {} of {n}: {got:#?}\n{}",
            got.len(),
            rig.logs()
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn a_survey_reprompts_banana_stores_4_and_asks_the_next_question_expires_and_closes_on_stop()
{
    let fire = next_fire();
    let (s1, s2, s3) = ("+15555550301", "+15555550302", "+15555550303");
    let Some(mut rig) = Rig::start(
        &survey_rules(fire),
        &[
            person("S-1", s1, daytime()),
            person("S-2", s2, daytime()),
            person("S-3", s3, daytime()),
        ],
    )
    .await
    else {
        return;
    };
    // The fire is at most 100 s away; then the dispatcher's pick-up.
    let until =
        Instant::now() + (fire - Utc::now()).to_std().unwrap_or_default() + Duration::from_secs(30);
    for phone in [s1, s2, s3] {
        wait_received_until(&rig, phone, 1, until).await;
    }
    assert!(rig.received_by(s1)[0].body.contains("mood today"));
    assert!(rig.received_by(s3)[0].body.contains("energy today"));
    // The survey is open once its first question went out.
    let deadline = Instant::now() + PATIENCE;
    while rig.facts("S-1", s1).await.survey.is_none() {
        assert!(Instant::now() < deadline, "the check-in never opened");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }

    // S-1: an invalid answer is re-prompted, a valid one stored and the
    // next question asked.
    rig.text(s1, "banana").await;
    let got = rig.wait_received_by(s1, 2).await;
    assert!(
        got[1].body.contains("whole number from 1 to 10"),
        "the re-prompt: {got:#?}"
    );
    let facts = rig.facts("S-1", s1).await;
    let open = facts.survey.expect("still open after an invalid answer");
    assert!(open.answers.is_empty(), "banana is no answer: {open:?}");
    assert_eq!(open.reprompts, 1);

    rig.text(s1, "4").await;
    let got = rig.wait_received_by(s1, 3).await;
    assert!(
        got[2].body.contains("sleep well"),
        "the next question: {got:#?}"
    );
    let open = rig
        .facts("S-1", s1)
        .await
        .survey
        .expect("open for the second question");
    assert_eq!(open.answers.get("mood"), Some(&serde_json::json!(4)));
    assert_eq!(open.run.question, 1);

    // S-2: STOP mid-survey opts out and closes the survey; one
    // confirmation, no further question, a later answer is not taken.
    rig.text(s2, "STOP").await;
    let got = rig.wait_received_by(s2, 2).await;
    assert!(got[1].body.contains(PROGRAM), "{got:#?}");
    assert!(!rig.consent_granted("S-2").await);
    assert!(
        rig.facts("S-2", s2).await.survey.is_none(),
        "STOP closed the survey"
    );
    rig.text(s2, "5").await;
    let history = rig.facts("S-2", s2).await.history;
    assert!(history.is_empty(), "no answer after STOP: {history:?}");

    // S-3: the quick survey expires 20 s after it opened; an answer after
    // that is not taken and asks nothing.
    let deadline = Instant::now() + Duration::from_secs(60);
    while rig.facts("S-3", s3).await.survey.is_some() {
        assert!(Instant::now() < deadline, "the quick survey never expired");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    rig.text(s3, "7").await;
    let facts = rig.facts("S-3", s3).await;
    assert!(
        facts.history.iter().all(|a| a.survey != "quick"),
        "an answer after expiry is not stored: {:?}",
        facts.history
    );

    rig.wait_settled().await;
    assert_eq!(rig.received_by(s2).len(), 2, "{:#?}", rig.received_by(s2));
    assert_eq!(rig.received_by(s3).len(), 1, "{:#?}", rig.received_by(s3));
    assert_eq!(rig.received_by(s1).len(), 3, "{:#?}", rig.received_by(s1));
}

/// Issue 17: texts that name no listed phrase — a means in hand with a
/// time and a goodbye, an attempt under way, a goodbye — each get the
/// crisis reply and a critical incident from the built-in detector.
#[tokio::test(flavor = "multi_thread")]
async fn issue_17_plans_attempts_and_goodbyes_get_the_crisis_reply_and_a_critical_incident() {
    let cases = [
        (
            "M-1",
            "+15555550211",
            "I have the pills in my hand and I'm going to take them all tonight. goodbye",
        ),
        ("M-2", "+15555550212", "took all my seroquel 20 min ago"),
        (
            "M-3",
            "+15555550213",
            "this is my last message. thank you all for everything. take care of my cat",
        ),
    ];
    let people: Vec<Person> = cases
        .iter()
        .map(|(id, phone, _)| person(id, phone, daytime()))
        .collect();
    let Some(mut rig) = Rig::start(&rules(""), &people).await else {
        return;
    };
    for (_, phone, text) in cases {
        rig.text(phone, text).await;
    }
    for (id, phone, text) in cases {
        let got = rig.wait_received_by(phone, 1).await;
        assert_crisis_reply(&got[0]);
        let incidents = rig.incidents_of(id).await;
        assert_critical_crisis_incident(&incidents, text);
        assert!(
            incidents[0]
                .evidence
                .iter()
                .any(|e| e.text.contains("constructs:")),
            "the evidence names the constructs: {incidents:#?}"
        );
    }
}

/// Issue 17: a denial is a warning incident, not silence, and the crisis
/// reply still goes (a person has been told, which the incident makes true).
#[tokio::test(flavor = "multi_thread")]
async fn issue_17_a_denial_gets_the_crisis_reply_and_a_warning_incident() {
    let Some(mut rig) = Rig::start(&rules(""), &[person("M-1", "+15555550221", daytime())]).await
    else {
        return;
    };
    rig.text("+15555550221", "a year ago i tried to overdose")
        .await;
    let got = rig.wait_received_by("+15555550221", 1).await;
    assert_crisis_reply(&got[0]);
    let incidents = rig.incidents_of("M-1").await;
    assert_eq!(incidents.len(), 1, "{incidents:#?}");
    assert_eq!(incidents[0].severity, Severity::Warning, "{incidents:#?}");
    assert_eq!(incidents[0].alert, "crisis-language");
    assert!(
        incidents[0]
            .evidence
            .iter()
            .any(|e| e.text.contains("attempt")),
        "{incidents:#?}"
    );
}
