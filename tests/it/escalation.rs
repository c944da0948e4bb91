//! The escalation engine on a real SQLite file with an injected clock:
//! a crisis text opens an incident, its policy pages step by step until
//! someone acknowledges by text, acknowledgements tell the others,
//! `resolve_within` re-notifies, `until_acknowledged` never stops, a
//! restart mid-escalation neither skips nor repeats a page, and a reload
//! never changes a running escalation.

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use chrono::{DateTime, TimeDelta, Utc};
use hearth::config::reload::{LiveRules, Trigger};
use hearth::domain::clock::ManualClock;
use hearth::domain::incident::IncidentState;
use hearth::domain::message::{InboundSms, Kind, OutboxMessage, Received};
use hearth::escalate::act::{Acted, Action, Actor, act};
use hearth::pipeline::InboundWorker;
use hearth::pipeline::handler::ReplyPipeline;
use hearth::settings::{NotifySettings, ReplySettings};
use hearth::store::prelude::*;
use hearth::store::sqlite::SqliteStore;
use hearth::store::traits::escalation::Purpose;
use hearth::store::traits::outbox::ListFilter;
use hearth::store::traits::{EscalationStore, IncidentStore, OutboxStore};
use hearth::timers::escalations::Escalator;

const ROSTER: &str = "external_id,first_name,last_name,phone,timezone,groups,consent
M-1,Maria,Gonzalez,+15555550201,America/New_York,weekly-support,yes
M-2,Bo,Brown,+15555550202,America/Chicago,weekly-support,yes
";
const MARIA: &str = "+15555550201";
const FRAN: &str = "+15555550100";
const LEE: &str = "+15555550101";
const OLI: &str = "+15555550102";
const STRANGER: &str = "+15555550299";

/// The starter rules with a test policy: the group's facilitator, then
/// the clinical lead, 10 minutes each, until acknowledged, resolve within
/// an hour. `on-call` is a contact on no chain.
pub(crate) const ESCALATIONS: &str = r#"
escalations:
  crisis:
    steps:
      - notify: [group.facilitators]
        via: [sms]
        ack_within: 10m
      - notify: [clinical-lead]
        via: [sms]
        ack_within: 10m
    repeat: until_acknowledged
    resolve_within: 1h
  facilitators:
    steps:
      - notify: [group.facilitators]
        via: [sms]
        ack_within: 2h
contacts:
  facilitator: { name: Fran Fields, sms: "+15555550100" }
  on-call: { name: Oli Call, sms: "+15555550102" }
  clinical-lead: { name: Lee Lead, sms: "+15555550101" }
"#;

/// A copy of the starter rules with `escalations.yaml` replaced.
pub(crate) fn rules_dir(into: &Path, escalations: &str) -> PathBuf {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("rules");
    let dst = into.join("rules");
    copy_dir(&src, &dst);
    std::fs::write(dst.join("escalations.yaml"), escalations).unwrap();
    dst
}

fn copy_dir(src: &Path, dst: &Path) {
    std::fs::create_dir_all(dst).unwrap();
    for e in std::fs::read_dir(src).unwrap() {
        let e = e.unwrap();
        let to = dst.join(e.file_name());
        if e.file_type().unwrap().is_dir() {
            copy_dir(&e.path(), &to);
        } else {
            std::fs::copy(e.path(), to).unwrap();
        }
    }
}

fn t0() -> DateTime<Utc> {
    // A Wednesday afternoon in New York: no quiet hours in the way.
    DateTime::parse_from_rfc3339("2026-12-02T19:00:00Z")
        .unwrap()
        .with_timezone(&Utc)
}

struct Rig {
    dir: tempfile::TempDir,
    store: SqliteStore,
    live: Arc<LiveRules>,
    clock: Arc<ManualClock>,
    pipeline: Arc<ReplyPipeline<SqliteStore>>,
    escalator: Escalator<SqliteStore>,
    next: Mutex<u64>,
}

async fn rig() -> Rig {
    rig_with(ESCALATIONS).await
}

/// The rig with another `escalations.yaml`.
async fn rig_with(escalations: &str) -> Rig {
    let dir = tempfile::tempdir().unwrap();
    let store = crate::support::open_store(dir.path());
    crate::support::import_roster_in(&store, ROSTER, &["weekly-support"]).await;
    let rules = rules_dir(dir.path(), escalations);
    let live = Arc::new(LiveRules::load(&rules).unwrap());
    Rig::build(dir, store, live, Arc::new(ManualClock::new(t0())))
}

impl Rig {
    fn build(
        dir: tempfile::TempDir,
        store: SqliteStore,
        live: Arc<LiveRules>,
        clock: Arc<ManualClock>,
    ) -> Rig {
        let pipeline = Arc::new(
            ReplyPipeline::new(store.clone(), live.clone(), ReplySettings::default())
                .with_clock(clock.clone()),
        );
        let escalator = Escalator::new(store.clone(), live.clone(), &NotifySettings::default())
            .unwrap()
            .with_clock(clock.clone());
        Rig {
            dir,
            store,
            live,
            clock,
            pipeline,
            escalator,
            next: Mutex::new(0),
        }
    }

    /// Closes the store and the engine and opens them again from the
    /// file, as a restarted daemon does; the clock goes on.
    fn restart(self) -> Rig {
        let Rig {
            dir,
            store,
            live,
            clock,
            pipeline,
            escalator,
            next: _,
        } = self;
        drop((escalator, pipeline, store));
        let store = crate::support::open_store(dir.path());
        Rig::build(dir, store, live, clock)
    }

    fn at(&self, minutes: i64) {
        self.clock.set(t0() + TimeDelta::minutes(minutes));
    }

    async fn text(&self, from: &str, body: &str) -> i64 {
        let n = {
            let mut next = self.next.lock().unwrap();
            *next += 1;
            *next
        };
        let sms = InboundSms {
            provider: "test".into(),
            provider_message_id: format!("esc-{n}-{}", self.clock_minutes()),
            from: from.into(),
            to: "+15555550000".into(),
            body: body.into(),
            keyword: None,
        };
        let id = match self.store.record_inbound(sms).await.unwrap() {
            Received::New(id) => id,
            other => panic!("{other:?}"),
        };
        InboundWorker::new(
            self.store.clone(),
            self.pipeline.clone(),
            Default::default(),
        )
        .drain()
        .await
        .unwrap();
        id
    }

    fn clock_minutes(&self) -> i64 {
        use hearth::domain::clock::Clock;
        (self.clock.now() - t0()).num_minutes()
    }

    async fn tick(&self) {
        self.escalator.tick().await.unwrap();
    }

    async fn outbox(&self) -> Vec<OutboxMessage> {
        let mut all = self
            .store
            .list_messages(ListFilter {
                state: None,
                kind: None,
                limit: 1000,
            })
            .await
            .unwrap();
        all.sort_by_key(|m| m.id);
        all
    }

    /// Escalation-kind messages whose key names this purpose, as
    /// `(contact, body)`, oldest first.
    async fn sent(&self, purpose: &str) -> Vec<(String, String)> {
        self.outbox()
            .await
            .into_iter()
            .filter(|m| m.kind == Kind::Escalation)
            .filter_map(|m| {
                let key = m.idempotency_key.as_str().to_owned();
                let parts: Vec<&str> = key.split(':').collect();
                (parts.first() == Some(&"escalation") && parts.get(3) == Some(&purpose))
                    .then(|| (parts[4].to_owned(), m.body.clone()))
            })
            .collect()
    }

    async fn pages(&self) -> Vec<String> {
        self.sent("page")
            .await
            .into_iter()
            .map(|(c, _)| c)
            .collect()
    }

    /// The reply to a text (`reply:<id>:command`).
    async fn reply_to(&self, inbound: i64) -> Option<String> {
        let key = format!("reply:{inbound}:command");
        self.outbox()
            .await
            .into_iter()
            .find(|m| m.idempotency_key.as_str() == key)
            .map(|m| m.body)
    }

    /// The one incident opened so far.
    async fn incident(&self) -> hearth::domain::incident::Incident {
        let all = self.store.incidents(&Default::default()).await.unwrap();
        assert_eq!(all.len(), 1, "{all:?}");
        all.into_iter().next().unwrap()
    }

    async fn crisis(&self) -> i64 {
        self.text(MARIA, "i want to kill myself").await;
        self.tick().await;
        self.incident().await.id
    }
}

#[tokio::test]
async fn without_an_ack_the_next_step_is_paged_after_ack_within_and_not_before() {
    let r = rig().await;
    let id = r.crisis().await;
    assert_eq!(r.pages().await, vec!["facilitator"], "step 1 at once");
    let (_, body) = &r.sent("page").await[0];
    assert!(body.contains(&format!("#{id}")) && body.contains(&format!("ACK {id}")));
    assert!(body.contains("Maria G."), "{body}");
    assert!(
        !body.contains("Gonzalez") && !body.contains("kill"),
        "minimum necessary: {body}"
    );

    r.at(9);
    r.tick().await;
    assert_eq!(
        r.pages().await,
        vec!["facilitator"],
        "not before ack_within"
    );
    r.at(10);
    r.tick().await;
    assert_eq!(r.pages().await, vec!["facilitator", "clinical-lead"]);
    let esc = r.store.escalation(id).await.unwrap().unwrap();
    assert_eq!(esc.next_position, 2);
    assert_eq!(esc.next_due, Some(t0() + TimeDelta::minutes(20)));
}

#[tokio::test]
async fn ack_by_text_stops_the_escalation_and_tells_everyone_already_paged() {
    let r = rig().await;
    let id = r.crisis().await;
    r.at(10);
    r.tick().await;
    assert_eq!(r.pages().await.len(), 2);

    r.at(12);
    let ack = r.text(LEE, &format!("ACK {id}")).await;
    let line = r.reply_to(ack).await.expect("a one-line confirmation");
    assert!(line.contains(&format!("you have #{id}")), "{line}");
    assert!(!line.contains('\n'));
    let inc = r.incident().await;
    assert_eq!(inc.state, IncidentState::Acknowledged);
    assert_eq!(
        inc.acknowledged_by.as_deref(),
        Some("contact:clinical-lead")
    );
    assert_eq!(inc.acknowledged_how.as_deref(), Some("sms"));

    r.tick().await;
    let told = r.sent("acknowledged").await;
    assert_eq!(told.len(), 1, "{told:?}");
    assert_eq!(told[0].0, "facilitator", "the acknowledger is not told");
    assert!(told[0].1.contains("Lee Lead"), "{}", told[0].1);

    // No more pages while acknowledged (before resolve_within).
    r.at(50);
    r.tick().await;
    assert_eq!(r.pages().await.len(), 2);
    // A second ACK changes nothing and says who has it.
    let again = r.text(FRAN, &format!("ack #{id}")).await;
    let line = r.reply_to(again).await.unwrap();
    assert!(line.contains("already acknowledged"), "{line}");
}

#[tokio::test]
async fn an_ack_from_an_unknown_number_a_member_or_a_contact_off_the_chain_is_refused_and_audited()
{
    let r = rig().await;
    let id = r.crisis().await;
    let stranger = r.text(STRANGER, &format!("ACK {id}")).await;
    let _member = r.text(MARIA, &format!("ACK {id}")).await;
    let oli = r.text(OLI, &format!("ACK {id}")).await;
    assert_eq!(r.incident().await.state, IncidentState::Open);
    assert_eq!(
        r.reply_to(stranger).await,
        None,
        "unknown numbers get nothing"
    );
    let line = r.reply_to(oli).await.unwrap();
    assert!(line.contains("not on"), "{line}");
    let audit = r.store.audit_tail(50).await.unwrap();
    let refused: Vec<&str> = audit
        .iter()
        .filter(|e| e.action == "incident.refused")
        .map(|e| e.actor.as_str())
        .collect();
    assert!(refused.contains(&"unknown-number"), "{refused:?}");
    assert!(
        refused.iter().any(|a| a.starts_with("member:")),
        "{refused:?}"
    );
    assert!(refused.contains(&"contact:on-call"), "{refused:?}");
    // Escalation goes on.
    r.at(10);
    r.tick().await;
    assert_eq!(r.pages().await.len(), 2);
}

#[tokio::test]
async fn a_bare_ack_takes_the_contacts_one_open_incident() {
    let r = rig().await;
    let id = r.crisis().await;
    let ack = r.text(FRAN, "ack").await;
    assert!(r.reply_to(ack).await.unwrap().contains(&format!("#{id}")));
    assert_eq!(r.incident().await.state, IncidentState::Acknowledged);
}

#[tokio::test]
async fn a_bare_ack_with_two_open_incidents_asks_which_and_changes_neither() {
    let r = rig().await;
    r.text(MARIA, "i want to kill myself").await;
    r.text("+15555550202", "i want to end it all").await;
    r.tick().await;
    let ack = r.text(FRAN, "ACK").await;
    let line = r.reply_to(ack).await.unwrap();
    assert!(line.contains("several open incidents"), "{line}");
    let all = r.store.incidents(&Default::default()).await.unwrap();
    assert_eq!(all.len(), 2);
    assert!(all.iter().all(|i| i.state == IncidentState::Open));
    // Lee has not been paged yet: a bare ACK from him has nothing to take.
    let lee = r.text(LEE, "ack").await;
    assert!(r.reply_to(lee).await.unwrap().contains("no open incident"));
}

#[tokio::test]
async fn resolve_within_reminds_the_acknowledger_then_escalates_again() {
    let r = rig().await;
    let id = r.crisis().await;
    r.at(2);
    r.text(FRAN, &format!("ACK {id}")).await;
    r.at(61);
    r.tick().await;
    assert!(
        r.sent("reminder").await.is_empty(),
        "not before resolve_within"
    );
    r.at(62);
    r.tick().await;
    assert_eq!(r.pages().await, vec!["facilitator"]);
    let reminders = r.sent("reminder").await;
    assert_eq!(reminders.len(), 1);
    assert_eq!(reminders[0].0, "facilitator");
    assert!(reminders[0].1.contains(&format!("RESOLVE {id}")));
    assert_eq!(r.incident().await.state, IncidentState::Acknowledged);

    // Nobody resolves: after the step's wait it is open again and pages on.
    r.at(71);
    r.tick().await;
    assert_eq!(r.incident().await.state, IncidentState::Acknowledged);
    r.at(72);
    r.tick().await;
    assert_eq!(r.incident().await.state, IncidentState::Open);
    assert_eq!(r.pages().await, vec!["facilitator", "clinical-lead"]);

    // Resolving stops everything.
    r.text(LEE, &format!("RESOLVE {id}")).await;
    let inc = r.incident().await;
    assert_eq!(inc.state, IncidentState::Resolved);
    assert_eq!(inc.resolved_by.as_deref(), Some("contact:clinical-lead"));
    r.at(500);
    r.tick().await;
    assert_eq!(r.pages().await.len(), 2);
}

#[tokio::test]
async fn an_ack_after_the_resolve_within_reminder_restarts_the_clock() {
    let r = rig().await;
    let id = r.crisis().await;
    r.at(2);
    r.text(FRAN, &format!("ACK {id}")).await;
    r.at(62);
    r.tick().await;
    assert_eq!(r.sent("reminder").await.len(), 1);
    r.at(65);
    let again = r.text(FRAN, &format!("ACK {id}")).await;
    assert!(
        r.reply_to(again)
            .await
            .unwrap()
            .contains(&format!("you have #{id}"))
    );
    // Past the old escalation time, nothing is paged; the next reminder
    // comes an hour after the second ACK.
    r.at(80);
    r.tick().await;
    assert_eq!(r.pages().await, vec!["facilitator"]);
    assert_eq!(r.incident().await.state, IncidentState::Acknowledged);
    r.at(125);
    r.tick().await;
    assert_eq!(r.sent("reminder").await.len(), 2);
}

#[tokio::test]
async fn until_acknowledged_pages_round_after_round() {
    let r = rig().await;
    r.crisis().await;
    for m in (10..=60).step_by(10) {
        r.at(m);
        r.tick().await;
    }
    assert_eq!(
        r.pages().await,
        vec![
            "facilitator",
            "clinical-lead",
            "facilitator",
            "clinical-lead",
            "facilitator",
            "clinical-lead",
            "facilitator"
        ]
    );
    let (_, again) = r.sent("page").await.pop().unwrap();
    assert!(again.contains("(again)"), "{again}");
}

#[tokio::test]
async fn a_restart_mid_escalation_makes_each_missed_page_once() {
    let r = rig().await;
    let id = r.crisis().await;
    assert_eq!(r.pages().await.len(), 1);
    // Down from minute 1 to minute 25: steps due at 10 and 20 were missed.
    let r = r.restart();
    r.at(25);
    r.tick().await;
    assert_eq!(
        r.pages().await,
        vec!["facilitator", "clinical-lead", "facilitator"]
    );
    r.tick().await;
    let r = r.restart();
    r.tick().await;
    assert_eq!(r.pages().await.len(), 3, "nothing repeated after a restart");
    let esc = r.store.escalation(id).await.unwrap().unwrap();
    assert_eq!(esc.next_position, 3);
    assert_eq!(esc.next_due, Some(t0() + TimeDelta::minutes(30)));
}

#[tokio::test]
async fn a_reload_never_changes_a_running_escalation() {
    let r = rig().await;
    let id = r.crisis().await;
    let changed = ESCALATIONS
        .replace("notify: [clinical-lead]", "notify: [on-call]")
        .replace("ack_within: 10m", "ack_within: 1m");
    std::fs::write(r.live.dir().join("escalations.yaml"), changed).unwrap();
    r.live.reload(Trigger::Signal);
    r.at(5);
    r.tick().await;
    assert_eq!(r.pages().await, vec!["facilitator"], "the pinned 10m holds");
    r.at(10);
    r.tick().await;
    assert_eq!(r.pages().await, vec!["facilitator", "clinical-lead"]);
    let esc = r.store.escalation(id).await.unwrap().unwrap();
    assert_eq!(esc.policy, "crisis");
}

#[tokio::test]
async fn the_api_and_cli_act_like_a_text_and_say_who() {
    let r = rig().await;
    let id = r.crisis().await;
    let rules = r.live.current();
    let done = act(
        &r.store,
        Some(&rules),
        Some(id),
        Action::Ack,
        &Actor::Cli("alex".into()),
        t0(),
    )
    .await
    .unwrap();
    assert!(
        matches!(
            done,
            Acted::Done {
                state: IncidentState::Acknowledged,
                told: 1,
                ..
            }
        ),
        "{done:?}"
    );
    let inc = r.incident().await;
    assert_eq!(inc.acknowledged_by.as_deref(), Some("cli:alex"));
    let notices = r.store.notices(id).await.unwrap();
    assert!(
        notices
            .iter()
            .any(|n| n.purpose == Purpose::Acknowledged && n.contact == "facilitator")
    );
    let again = act(
        &r.store,
        Some(&rules),
        Some(id),
        Action::Ack,
        &Actor::Api,
        t0(),
    )
    .await
    .unwrap();
    assert!(matches!(again, Acted::Already { .. }));
    act(
        &r.store,
        Some(&rules),
        Some(id),
        Action::Resolve,
        &Actor::Api,
        t0(),
    )
    .await
    .unwrap();
    assert!(
        act(
            &r.store,
            Some(&rules),
            Some(id),
            Action::Ack,
            &Actor::Api,
            t0()
        )
        .await
        .is_err()
    );
    assert!(
        act(
            &r.store,
            Some(&rules),
            Some(999),
            Action::Ack,
            &Actor::Api,
            t0()
        )
        .await
        .is_err()
    );
}

#[tokio::test]
async fn esc_hands_an_acknowledged_incident_on_at_once() {
    let r = rig().await;
    let id = r.crisis().await;
    r.at(1);
    r.text(FRAN, &format!("ACK {id}")).await;
    r.at(2);
    let esc = r.text(FRAN, &format!("ESC {id}")).await;
    assert!(r.reply_to(esc).await.unwrap().contains("passed on"));
    assert_eq!(r.incident().await.state, IncidentState::Open);
    r.tick().await;
    assert_eq!(r.pages().await, vec!["facilitator", "clinical-lead"]);
}

/// A finite policy: the facilitator, then the lead, once each.
const ONCE: &str = r#"
escalations:
  crisis:
    steps:
      - notify: [group.facilitators]
        via: [sms]
        ack_within: 10m
      - notify: [clinical-lead]
        via: [sms]
        ack_within: 10m
  facilitators:
    steps:
      - notify: [group.facilitators]
        via: [sms]
        ack_within: 10m
contacts:
  facilitator: { name: Fran Fields, sms: "+15555550100", phi: true }
  clinical-lead: { name: Lee Lead, sms: "+15555550101" }
"#;

#[tokio::test]
async fn issue_17_a_critical_incident_repeats_its_last_step_every_critical_repeat_after_its_policy_ran_out()
 {
    let r = rig_with(ONCE).await;
    let id = r.crisis().await;
    r.at(10);
    r.tick().await;
    assert_eq!(r.pages().await, vec!["facilitator", "clinical-lead"]);
    // The policy has run out: before, nothing more (a log warning).
    r.at(20);
    r.tick().await;
    let pages = r.sent("page").await;
    assert_eq!(pages.len(), 3, "{pages:?}");
    assert_eq!(pages[2].0, "clinical-lead");
    assert!(
        pages[2].1.contains("still unacknowledged after 20 min")
            && pages[2].1.contains(&format!("ACK {id}")),
        "{}",
        pages[2].1
    );
    let esc = r.store.escalation(id).await.unwrap().unwrap();
    assert!(!esc.exhausted);
    assert_eq!(esc.next_due, Some(t0() + TimeDelta::minutes(35)));
    // Every 15 minutes (the default), however long the daemon was away.
    r.at(34);
    r.tick().await;
    assert_eq!(r.pages().await.len(), 3);
    r.at(35);
    r.tick().await;
    let pages = r.sent("page").await;
    assert!(pages[3].1.contains("after 35 min"), "{}", pages[3].1);
    r.at(200);
    r.tick().await;
    assert_eq!(
        r.pages().await.len(),
        5,
        "one repeat at once after downtime"
    );
    // An ACK stops it.
    r.text(LEE, &format!("ACK {id}")).await;
    r.at(400);
    r.tick().await;
    assert_eq!(r.pages().await.len(), 5);
}

#[tokio::test]
async fn a_warning_incident_still_stops_paging_when_its_policy_runs_out() {
    let r = rig_with(ONCE).await;
    // Three low moods open a warning incident on `facilitators`.
    let inc = r
        .store
        .record_hits(
            vec![hearth::domain::incident::AlertHit {
                alert: "low-mood".into(),
                severity: hearth::domain::incident::Severity::Warning,
                subject: hearth::domain::incident::Subject::Member(1),
                inbound_id: None,
                evidence: "answer 2 to mood".into(),
                realert: None,
                escalate: Some("facilitators".into()),
                reply_key: None,
                quote: None,
            }],
            t0(),
        )
        .await
        .unwrap()[0]
        .incident;
    r.tick().await;
    r.at(10);
    r.tick().await;
    r.at(60);
    r.tick().await;
    assert_eq!(r.pages().await, vec!["facilitator"]);
    assert!(r.store.escalation(inc).await.unwrap().unwrap().exhausted);
}

#[tokio::test]
async fn issue_17_an_ack_or_esc_before_the_timer_pinned_the_policy_pins_it_and_the_escalation_runs()
{
    let r = rig().await;
    // The crisis text is decided; the timer has not run (the daemon was
    // stopped when it came, say).
    r.text(MARIA, "i want to kill myself").await;
    let id = r.incident().await.id;
    assert!(r.store.escalation(id).await.unwrap().is_none());
    let rules = r.live.current();
    act(
        &r.store,
        Some(&rules),
        Some(id),
        Action::Escalate,
        &Actor::Cli("alex".into()),
        t0(),
    )
    .await
    .unwrap();
    let esc = r.store.escalation(id).await.unwrap().unwrap();
    assert_eq!(esc.policy, "crisis", "pinned, not marked unstartable");
    assert!(!esc.exhausted);
    r.tick().await;
    assert_eq!(
        r.pages().await,
        vec!["facilitator"],
        "ESC had a policy to page"
    );

    // An ACK first: the escalation is pinned and paused, and
    // resolve_within runs.
    let r = rig().await;
    r.text(MARIA, "i want to kill myself").await;
    let id = r.incident().await.id;
    let rules = r.live.current();
    act(
        &r.store,
        Some(&rules),
        Some(id),
        Action::Ack,
        &Actor::Api,
        t0(),
    )
    .await
    .unwrap();
    let esc = r.store.escalation(id).await.unwrap().unwrap();
    assert_eq!(esc.policy, "crisis");
    assert_eq!(esc.lapse_due, Some(t0() + TimeDelta::hours(1)));
    r.at(61);
    r.tick().await;
    r.at(72);
    r.tick().await;
    assert_eq!(
        r.incident().await.state,
        IncidentState::Open,
        "the acknowledgement lapsed"
    );
    assert_eq!(r.pages().await, vec!["facilitator"]);
}

#[tokio::test]
async fn an_action_that_would_need_the_rules_to_start_an_escalation_is_refused_without_them_and_the_escalation_stays_startable()
 {
    let r = rig().await;
    r.text(MARIA, "i want to kill myself").await;
    let id = r.incident().await.id;
    let refused = act(
        &r.store,
        None,
        Some(id),
        Action::Ack,
        &Actor::Cli("alex".into()),
        t0(),
    )
    .await;
    assert!(
        matches!(refused, Err(hearth::escalate::act::ActError::NotStarted(n)) if n == id),
        "{refused:?}"
    );
    assert!(r.store.escalation(id).await.unwrap().is_none());
    assert_eq!(r.incident().await.state, IncidentState::Open);
    r.tick().await;
    assert_eq!(r.pages().await, vec!["facilitator"]);
}

#[tokio::test]
async fn issue_17_a_follow_up_text_is_kept_on_the_incident_forwarded_and_answered_once_an_hour() {
    let r = rig_with(ONCE).await;
    let id = r.crisis().await;
    // Nobody has acknowledged: the follow-up goes to the step paged last.
    r.at(3);
    let first = r
        .text(MARIA, "hello? is anyone there? nobody has called me")
        .await;
    let forwarded = r.sent("follow_up").await;
    assert_eq!(forwarded.len(), 1, "{forwarded:?}");
    assert_eq!(forwarded[0].0, "facilitator");
    assert!(
        forwarded[0].1.contains(&format!("#{id}")),
        "{}",
        forwarded[0].1
    );
    assert!(
        forwarded[0]
            .1
            .contains("They wrote: \"hello? is anyone there? nobody has called me\""),
        "a phi: true contact gets the words: {}",
        forwarded[0].1
    );
    let replies: Vec<String> = r
        .outbox()
        .await
        .into_iter()
        .filter(|m| m.idempotency_key.as_str().ends_with(":follow_up"))
        .map(|m| m.body)
        .collect();
    assert_eq!(
        replies,
        vec!["A person has been told. If you are in danger now, call 911 or call or text 988."]
    );
    let inc = r.incident().await;
    let kept: Vec<_> = inc
        .evidence
        .iter()
        .filter(|e| e.kind == "follow_up")
        .collect();
    assert_eq!(kept.len(), 1, "{:?}", inc.evidence);
    assert_eq!(kept[0].inbound_id, Some(first));
    assert!(kept[0].text.contains("nobody has called me"));

    // Acknowledged: the next goes to the acknowledger only, and within the
    // hour no second reply.
    r.at(10);
    r.tick().await;
    r.at(11);
    r.text(LEE, &format!("ACK {id}")).await;
    r.at(12);
    r.text(MARIA, "ok. still here").await;
    let forwarded = r.sent("follow_up").await;
    assert_eq!(forwarded.len(), 2, "{forwarded:?}");
    assert_eq!(forwarded[1].0, "clinical-lead");
    assert!(
        !forwarded[1].1.contains("still here"),
        "clinical-lead is not phi: {}",
        forwarded[1].1
    );
    let replies = r
        .outbox()
        .await
        .into_iter()
        .filter(|m| m.idempotency_key.as_str().ends_with(":follow_up"))
        .count();
    assert_eq!(replies, 1, "once an hour");
    assert_eq!(
        r.incident()
            .await
            .evidence
            .iter()
            .filter(|e| e.kind == "follow_up")
            .count(),
        2
    );
    // Resolved: an ordinary text again.
    r.text(LEE, &format!("RESOLVE {id}")).await;
    r.at(100);
    r.text(MARIA, "thanks for calling").await;
    assert_eq!(r.sent("follow_up").await.len(), 2);
}
