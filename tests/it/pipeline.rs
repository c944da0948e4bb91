//! The reply pipeline on a real SQLite file with the shipped starter
//! rules: crisis first, STOP/START/YES/HELP, unknown senders, surveys,
//! alerts and incidents, applied once however often a text is handled,
//! and crisis texts ahead of a long queue.

use std::path::Path;
use std::sync::{Arc, Mutex};

use chrono::{TimeDelta, Utc};
use hearth::config::reload::LiveRules;
use hearth::domain::incident::{IncidentState, Severity};
use hearth::domain::message::{
    IdempotencyKey, InboundRow, InboundSms, Kind, NewMessage, OutState, OutboxMessage, Plan,
    Received, SurveyStart,
};
use hearth::pipeline::handler::ReplyPipeline;
use hearth::pipeline::{Handled, InboundHandler, InboundWorker};
use hearth::settings::ReplySettings;
use hearth::store::prelude::*;
use hearth::store::sqlite::SqliteStore;
use hearth::store::traits::incident::IncidentFilter;
use hearth::store::traits::outbox::{InstanceId, ListFilter, Outcome};
use hearth::store::traits::{IncidentStore, OutboxStore, ReplyStore, ScheduleStore};

const ROSTER: &str = "external_id,first_name,phone,timezone,groups,consent
M-1,Ann,+15555550101,America/New_York,weekly-support,yes
M-2,Bo,+15555550102,America/Chicago,weekly-support,yes
";
const ANN: &str = "+15555550101";
const BO: &str = "+15555550102";
const STRANGER: &str = "+15555550199";

struct Rig {
    _dir: tempfile::TempDir,
    store: SqliteStore,
    pipeline: Arc<ReplyPipeline<SqliteStore>>,
    next: Mutex<u64>,
}

fn settings() -> ReplySettings {
    ReplySettings {
        program: "Maple Clinic group texts".into(),
        contact: "555-0100".into(),
        frequency: "up to 2 msgs/week".into(),
        stop_words: vec!["alto".into()],
        ..ReplySettings::default()
    }
}

async fn rig() -> Rig {
    rig_with(settings()).await
}

async fn rig_with(replies: ReplySettings) -> Rig {
    let dir = tempfile::tempdir().unwrap();
    let store = crate::support::open_store(dir.path());
    crate::support::import_roster_in(&store, ROSTER, &["weekly-support"]).await;
    let rules = Path::new(env!("CARGO_MANIFEST_DIR")).join("rules");
    let live = Arc::new(LiveRules::load(&rules).unwrap());
    let pipeline = Arc::new(ReplyPipeline::new(store.clone(), live, replies));
    Rig {
        _dir: dir,
        store,
        pipeline,
        next: Mutex::new(0),
    }
}

fn sms(n: u64, from: &str, body: &str) -> InboundSms {
    InboundSms {
        provider: "test".into(),
        provider_message_id: format!("m-{n}"),
        from: from.into(),
        to: "+15555550000".into(),
        body: body.into(),
        keyword: None,
    }
}

impl Rig {
    /// Stores a text and runs the queue once; the text's id.
    async fn text(&self, from: &str, body: &str) -> i64 {
        let id = self.store_text(from, body).await;
        self.drain().await;
        id
    }

    async fn store_text(&self, from: &str, body: &str) -> i64 {
        let n = {
            let mut next = self.next.lock().unwrap();
            *next += 1;
            *next
        };
        match self.store.record_inbound(sms(n, from, body)).await.unwrap() {
            Received::New(id) => id,
            other => panic!("{other:?}"),
        }
    }

    async fn drain(&self) -> usize {
        InboundWorker::new(
            self.store.clone(),
            self.pipeline.clone(),
            Default::default(),
        )
        .drain()
        .await
        .unwrap()
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

    /// Replies to one inbound text, oldest first.
    async fn replies_to(&self, inbound: i64) -> Vec<OutboxMessage> {
        let prefix = format!("reply:{inbound}:");
        self.outbox()
            .await
            .into_iter()
            .filter(|m| m.idempotency_key.as_str().starts_with(&prefix))
            .collect()
    }

    async fn member_id(&self, external: &str) -> i64 {
        self.store.member(external).await.unwrap().unwrap().id
    }

    async fn consenting(&self, external: &str) -> bool {
        self.store
            .member(external)
            .await
            .unwrap()
            .unwrap()
            .consent
            .granted()
    }

    async fn incidents(&self) -> Vec<hearth::domain::incident::Incident> {
        self.store
            .incidents(&IncidentFilter::default())
            .await
            .unwrap()
    }

    /// Opens `survey` for `member` as a schedule would: its first question
    /// enqueued with the plan, then sent.
    async fn open_survey(&self, member: i64, survey: &str) {
        self.open_survey_at(member, survey, 5).await
    }

    /// The same, for a fire `minutes_ago` (distinct fires, distinct runs).
    async fn open_survey_at(&self, member: i64, survey: &str, minutes_ago: i64) {
        let fire = Utc::now() - TimeDelta::minutes(minutes_ago);
        let m = NewMessage {
            idempotency_key: IdempotencyKey::scheduled("test-survey", fire, member),
            member_id: Some(member),
            to: None,
            body: "How is your mood today, from 1 to 10?".into(),
            kind: Kind::Scheduled,
            not_before: fire,
            expires_at: None,
            plan: Some(Plan {
                schedule: "test-survey".into(),
                fire,
                generation: 1,
                version: "v".into(),
                survey: Some(SurveyStart {
                    survey: survey.into(),
                    expires_at: Utc::now() + TimeDelta::hours(12),
                }),
            }),
            suppressed: None,
        };
        let id = self.store.enqueue(m).await.unwrap().id();
        self.send_all_due().await;
        assert_eq!(
            self.store.message(id).await.unwrap().unwrap().state,
            OutState::Sent
        );
    }

    /// Takes every due message through a claim to `sent`, as a dispatcher
    /// whose provider accepts everything would.
    async fn send_all_due(&self) {
        let holder = InstanceId::new("test").unwrap();
        while let Some(c) = self
            .store
            .claim(&holder, Utc::now(), TimeDelta::seconds(60))
            .await
            .unwrap()
        {
            self.store
                .settle_claim(
                    &c.lease,
                    Outcome::Sent {
                        provider: "test".into(),
                        provider_message_id: None,
                    },
                )
                .await
                .unwrap();
        }
    }
}

#[tokio::test]
async fn a_crisis_text_gets_the_crisis_reply_at_crisis_priority_and_a_critical_incident() {
    let rig = rig().await;
    let ann = rig.member_id("M-1").await;
    let id = rig.text(ANN, "honestly I just want to end it all").await;

    let replies = rig.replies_to(id).await;
    assert_eq!(replies.len(), 1, "{replies:?}");
    assert_eq!(replies[0].kind, Kind::Crisis);
    assert_eq!(replies[0].member_id, Some(ann));
    assert!(replies[0].body.contains("988"), "{}", replies[0].body);
    assert!(replies[0].body.contains("911"), "{}", replies[0].body);

    let incidents = rig.incidents().await;
    assert_eq!(incidents.len(), 1, "{incidents:?}");
    let i = &incidents[0];
    assert_eq!(i.alert, "crisis-language");
    assert_eq!(i.severity, Severity::Critical);
    assert_eq!(i.state, IncidentState::Open);
    assert_eq!(i.member_id, Some(ann));
    assert!(
        i.evidence[0].text.contains("end it all"),
        "the matched phrase is shown: {:?}",
        i.evidence
    );
    assert!(
        rig.consenting("M-1").await,
        "`end` inside a crisis text is not an opt-out"
    );
    assert_eq!(rig.store.open_incident_counts().await.unwrap(), (1, 1));
}

#[tokio::test]
async fn a_negated_mention_and_a_floor_phrase_still_alert_with_the_phrase_shown() {
    let rig = rig().await;
    let id = rig.text(ANN, "im not gonna kms dont worry").await;
    assert_eq!(rig.replies_to(id).await[0].kind, Kind::Crisis);
    let incidents = rig.incidents().await;
    assert_eq!(incidents.len(), 1);
    assert_eq!(incidents[0].severity, Severity::Critical);
    assert!(
        incidents[0].evidence[0].text.contains("kill myself")
            || incidents[0].evidence[0].text.contains("kms"),
        "{:?}",
        incidents[0].evidence
    );
}

#[tokio::test]
async fn stop_with_crisis_language_is_both_an_opt_out_and_a_crisis() {
    let rig = rig().await;
    let id = rig
        .text(ANN, "STOP, I can't do this anymore, I want to die")
        .await;
    let replies = rig.replies_to(id).await;
    let kinds: Vec<Kind> = replies.iter().map(|m| m.kind).collect();
    assert!(kinds.contains(&Kind::Crisis), "{kinds:?}");
    assert_eq!(
        replies
            .iter()
            .filter(|m| m.kind == Kind::Compliance)
            .count(),
        1,
        "one confirmation"
    );
    assert!(!rig.consenting("M-1").await);
    assert_eq!(rig.incidents().await.len(), 1);
}

#[tokio::test]
async fn a_crisis_text_from_an_unknown_number_is_answered_at_that_number_and_opens_an_incident() {
    let rig = rig().await;
    let id = rig.text(STRANGER, "i want to kill myself").await;
    let replies = rig.replies_to(id).await;
    assert_eq!(replies.len(), 1);
    assert_eq!(replies[0].kind, Kind::Crisis);
    assert_eq!(replies[0].member_id, None);
    let incidents = rig.incidents().await;
    assert_eq!(incidents.len(), 1);
    assert_eq!(incidents[0].member_id, None);
    assert_eq!(incidents[0].severity, Severity::Critical);
}

#[tokio::test]
async fn an_opted_out_member_in_crisis_gets_one_crisis_reply_and_an_incident() {
    let rig = rig().await;
    rig.text(ANN, "STOP").await;
    assert!(!rig.consenting("M-1").await);
    let id = rig.text(ANN, "there is no reason to live").await;
    let replies = rig.replies_to(id).await;
    assert_eq!(replies.len(), 1, "{replies:?}");
    assert_eq!(replies[0].kind, Kind::Crisis);
    assert_eq!(rig.incidents().await.len(), 1);
    assert!(
        !rig.consenting("M-1").await,
        "a crisis text never re-subscribes"
    );
}

#[tokio::test]
async fn stop_revokes_consent_with_exactly_one_confirmation_naming_the_program() {
    let rig = rig().await;
    let first = rig.text(ANN, "  Stop!! ").await;
    let replies = rig.replies_to(first).await;
    assert_eq!(replies.len(), 1);
    assert_eq!(replies[0].kind, Kind::Compliance);
    assert!(replies[0].body.contains("Maple Clinic group texts"));
    assert!(replies[0].body.contains("START"));
    assert!(!rig.consenting("M-1").await);
    let history = rig.store.consent_history("M-1").await.unwrap();
    let last = history.last().unwrap();
    assert_eq!(last.source.as_str(), "keyword");

    // Again, and in the clinic's Spanish word: nothing more is sent.
    let again = rig.text(ANN, "UNSUBSCRIBE").await;
    let alto = rig.text(ANN, "alto").await;
    assert!(rig.replies_to(again).await.is_empty());
    assert!(rig.replies_to(alto).await.is_empty());
    // Ordinary text afterwards does not re-subscribe and gets no reply.
    let plain = rig.text(ANN, "ok thanks, see you next week").await;
    assert!(rig.replies_to(plain).await.is_empty());
    assert!(!rig.consenting("M-1").await);
}

#[tokio::test]
async fn start_and_yes_re_subscribe_an_opted_out_member_and_yes_is_ordinary_otherwise() {
    let rig = rig().await;
    rig.text(ANN, "STOP").await;
    let start = rig.text(ANN, "start").await;
    assert!(rig.consenting("M-1").await);
    let r = rig.replies_to(start).await;
    assert_eq!(r.len(), 1);
    assert_eq!(r[0].kind, Kind::Compliance);

    rig.text(ANN, "quit").await;
    assert!(!rig.consenting("M-1").await);
    rig.text(ANN, "YES").await;
    assert!(rig.consenting("M-1").await, "YES re-subscribes after STOP");

    let yes = rig.text(BO, "yes").await;
    assert!(
        rig.replies_to(yes).await.is_empty(),
        "YES from a subscribed member is no keyword"
    );
    assert_eq!(rig.store.consent_history("M-2").await.unwrap().len(), 1);
}

#[tokio::test]
async fn help_answers_with_program_contact_frequency_rates_and_how_to_stop() {
    let rig = rig().await;
    let id = rig.text(ANN, "HELP").await;
    let r = rig.replies_to(id).await;
    assert_eq!(r.len(), 1);
    let body = &r[0].body;
    for part in [
        "Maple Clinic group texts",
        "555-0100",
        "up to 2 msgs/week",
        "Msg & data rates may apply",
        "STOP",
    ] {
        assert!(body.contains(part), "{part:?} missing from {body:?}");
    }
    assert!(rig.consenting("M-1").await);
}

#[tokio::test]
async fn an_unknown_sender_is_stored_and_not_answered_unless_configured() {
    let rig = rig().await;
    let id = rig.text(STRANGER, "who is this?").await;
    assert!(rig.replies_to(id).await.is_empty());
    assert!(rig.incidents().await.is_empty());

    let configured = rig_with(ReplySettings {
        unknown_sender_reply: Some("This number is not monitored.".into()),
        ..settings()
    })
    .await;
    let id = configured.text(STRANGER, "who is this?").await;
    let r = configured.replies_to(id).await;
    assert_eq!(r.len(), 1);
    assert_eq!(r[0].body, "This number is not monitored.");
}

#[tokio::test]
async fn a_survey_answer_is_validated_re_prompted_stored_and_the_next_question_asked() {
    let rig = rig().await;
    let ann = rig.member_id("M-1").await;
    rig.open_survey(ann, "post-session").await;

    // `helpful` expects Very / Somewhat / Not really.
    let banana = rig.text(ANN, "banana").await;
    let r = rig.replies_to(banana).await;
    assert_eq!(r.len(), 1, "one re-prompt: {r:?}");
    assert_eq!(r[0].kind, Kind::Reply);
    assert!(r[0].body.contains("did not understand"), "{}", r[0].body);

    let ok = rig.text(ANN, "somewhat").await;
    let r = rig.replies_to(ok).await;
    assert_eq!(r.len(), 1);
    assert!(
        r[0].body.contains("feel heard"),
        "next question: {}",
        r[0].body
    );
    let run = ScheduleStore::open_survey(&rig.store, ann, Utc::now())
        .await
        .unwrap()
        .expect("still open");
    assert_eq!(run.question, 1);

    rig.send_all_due().await;
    rig.text(ANN, "yep").await;
    rig.send_all_due().await;
    let mood = rig.text(ANN, "4").await;
    assert!(rig.replies_to(mood).await[0].body.contains("facilitator"));
    rig.send_all_due().await;
    let done = rig.text(ANN, "it was good").await;
    let thanks = rig.replies_to(done).await;
    assert_eq!(thanks.len(), 1);
    assert!(thanks[0].body.contains("Thank you"), "{}", thanks[0].body);

    let answers = rig.store.run_answers(run.id).await.unwrap();
    let values: Vec<(String, serde_json::Value)> =
        answers.into_iter().map(|a| (a.question, a.value)).collect();
    assert_eq!(
        values,
        vec![
            ("helpful".to_string(), serde_json::json!("Somewhat")),
            ("felt_heard".to_string(), serde_json::json!(true)),
            ("mood".to_string(), serde_json::json!(4)),
            ("comments".to_string(), serde_json::json!("it was good")),
        ]
    );
}

#[tokio::test]
async fn a_low_mood_answer_opens_a_warning_incident_with_its_reply_and_a_second_joins_it() {
    let rig = rig().await;
    let ann = rig.member_id("M-1").await;
    rig.open_survey(ann, "mood-checkin").await;
    let two = rig.text(ANN, "2").await;
    let keys: Vec<String> = rig
        .replies_to(two)
        .await
        .iter()
        .map(|m| m.idempotency_key.as_str().to_owned())
        .collect();
    for purpose in ["alert:low-mood", "survey:mood-checkin:thanks"] {
        let key = IdempotencyKey::reply(two, purpose);
        assert!(
            keys.contains(&key.as_str().to_owned()),
            "{purpose}: {keys:?}"
        );
    }
    let incidents = rig.incidents().await;
    assert_eq!(incidents.len(), 1, "{incidents:?}");
    assert_eq!(incidents[0].alert, "low-mood");
    assert_eq!(incidents[0].severity, Severity::Warning);
    assert_eq!(rig.store.open_incident_counts().await.unwrap(), (1, 0));

    // The next check-in, still low: the open incident gets the evidence.
    rig.send_all_due().await;
    rig.open_survey_at(ann, "mood-checkin", 60).await;
    rig.text(ANN, "1").await;
    let incidents = rig.incidents().await;
    assert_eq!(incidents.len(), 1, "{incidents:?}");
    assert_eq!(
        incidents[0].evidence.len(),
        2,
        "{:?}",
        incidents[0].evidence
    );
}

#[tokio::test]
async fn crisis_language_mid_survey_is_a_crisis_not_an_answer_and_the_question_stays_open() {
    let rig = rig().await;
    let ann = rig.member_id("M-1").await;
    rig.open_survey(ann, "mood-checkin").await;
    let id = rig.text(ANN, "there is no reason to live anymore").await;
    let r = rig.replies_to(id).await;
    assert_eq!(r.len(), 1, "no re-prompt: {r:?}");
    assert_eq!(r[0].kind, Kind::Crisis);
    let run = ScheduleStore::open_survey(&rig.store, ann, Utc::now())
        .await
        .unwrap()
        .expect("open");
    assert_eq!(run.question, 0);
    assert!(rig.store.run_answers(run.id).await.unwrap().is_empty());
}

#[tokio::test]
async fn stop_mid_survey_closes_it_with_one_confirmation_and_no_question() {
    let rig = rig().await;
    let ann = rig.member_id("M-1").await;
    rig.open_survey(ann, "post-session").await;
    let id = rig.text(ANN, "stop").await;
    let r = rig.replies_to(id).await;
    assert_eq!(r.len(), 1);
    assert_eq!(r[0].kind, Kind::Compliance);
    assert!(
        ScheduleStore::open_survey(&rig.store, ann, Utc::now())
            .await
            .unwrap()
            .is_none()
    );
}

#[tokio::test]
async fn a_text_handled_twice_is_applied_once() {
    let rig = rig().await;
    let id = rig.store_text(ANN, "I want to die").await;
    let row = InboundRow {
        id,
        sms: sms(999, ANN, "I want to die"),
        member_id: None,
        received_at: Utc::now(),
    };
    let first = rig.pipeline.handle(&row).await;
    let second = rig.pipeline.handle(&row).await;
    assert!(matches!(first, Handled::Recorded(_)), "{first:?}");
    assert!(matches!(second, Handled::Recorded(_)), "{second:?}");
    assert_eq!(rig.replies_to(id).await.len(), 1);
    let incidents = rig.incidents().await;
    assert_eq!(incidents.len(), 1);
    assert_eq!(
        incidents[0].evidence.len(),
        1,
        "{:?}",
        incidents[0].evidence
    );
}

/// Records the order texts are handed over in.
struct Recording {
    inner: Arc<ReplyPipeline<SqliteStore>>,
    order: Mutex<Vec<i64>>,
}

impl InboundHandler for Recording {
    fn handle<'a>(
        &'a self,
        row: &'a InboundRow,
    ) -> std::pin::Pin<Box<dyn std::future::Future<Output = Handled> + Send + 'a>> {
        self.order.lock().unwrap().push(row.id);
        self.inner.handle(row)
    }
    fn is_urgent(&self, row: &InboundRow) -> bool {
        self.inner.is_urgent(row)
    }
}

#[tokio::test]
async fn a_crisis_text_behind_a_long_queue_is_handled_first() {
    let rig = rig().await;
    for i in 0..300 {
        rig.store_text(BO, &format!("{}", i % 10)).await;
    }
    let crisis = rig.store_text(ANN, "i am going to overdose tonight").await;
    let recording = Arc::new(Recording {
        inner: rig.pipeline.clone(),
        order: Mutex::new(Vec::new()),
    });
    let done = InboundWorker::new(rig.store.clone(), recording.clone(), Default::default())
        .with_page(50)
        .drain()
        .await
        .unwrap();
    assert_eq!(done, 301);
    let order = recording.order.lock().unwrap().clone();
    assert_eq!(order[0], crisis, "crisis first");
    assert_eq!(order.len(), 301, "each text once");
}

/// Hands texts to the pipeline; after the tenth, a crisis text arrives
/// (stored, and passed on as the intake passes it).
struct ArrivesMidway {
    inner: Arc<ReplyPipeline<SqliteStore>>,
    store: SqliteStore,
    arrivals: tokio::sync::mpsc::UnboundedSender<InboundRow>,
    order: Mutex<Vec<i64>>,
    crisis: Mutex<Option<i64>>,
}

impl InboundHandler for ArrivesMidway {
    fn handle<'a>(
        &'a self,
        row: &'a InboundRow,
    ) -> std::pin::Pin<Box<dyn std::future::Future<Output = Handled> + Send + 'a>> {
        Box::pin(async move {
            let handled = {
                let mut order = self.order.lock().unwrap();
                order.push(row.id);
                order.len()
            };
            let outcome = self.inner.handle(row).await;
            if handled == 10 {
                let text = sms(10_000, ANN, "goodbye forever, i want to die");
                let Received::New(id) = self.store.record_inbound(text.clone()).await.unwrap()
                else {
                    panic!("stored before")
                };
                *self.crisis.lock().unwrap() = Some(id);
                self.arrivals
                    .send(InboundRow {
                        id,
                        sms: text,
                        member_id: None,
                        received_at: Utc::now(),
                    })
                    .unwrap();
            }
            outcome
        })
    }
    fn is_urgent(&self, row: &InboundRow) -> bool {
        self.inner.is_urgent(row)
    }
}

#[tokio::test]
async fn a_crisis_text_arriving_mid_drain_is_handled_next_not_after_the_queue() {
    let rig = rig().await;
    for i in 0..100 {
        rig.store_text(BO, &format!("fine {i}")).await;
    }
    let (tx, rx) = tokio::sync::mpsc::unbounded_channel();
    let handler = Arc::new(ArrivesMidway {
        inner: rig.pipeline.clone(),
        store: rig.store.clone(),
        arrivals: tx,
        order: Mutex::new(Vec::new()),
        crisis: Mutex::new(None),
    });
    let worker = InboundWorker::new(rig.store.clone(), handler.clone(), Default::default())
        .with_page(1000)
        .with_arrivals(rx);
    assert_eq!(worker.drain().await.unwrap(), 101);
    let crisis = handler.crisis.lock().unwrap().expect("it arrived");
    let order = handler.order.lock().unwrap().clone();
    assert_eq!(
        order.iter().position(|&i| i == crisis),
        Some(10),
        "handled right after the text under way"
    );
    assert_eq!(order.iter().filter(|&&i| i == crisis).count(), 1);
}

#[tokio::test]
async fn a_phq9_answered_by_text_is_recorded_scored_and_item_9_opens_a_critical_incident() {
    let rig = rig().await;
    let ann = rig.member_id("M-1").await;
    rig.open_survey(ann, "phq9").await;
    // Items 1-8, then item 9 = 1 ("several days").
    let answers = ["1", "2", "1", "3", "0", "2", "1", "0", "1"];
    let mut last = 0;
    for a in answers {
        last = rig.text(ANN, a).await;
        rig.send_all_due().await;
    }
    let incidents = rig.incidents().await;
    let item9: Vec<_> = incidents
        .iter()
        .filter(|i| i.alert == "phq9-item9")
        .collect();
    assert_eq!(item9.len(), 1, "{incidents:?}");
    assert_eq!(item9[0].severity, Severity::Critical);
    assert!(
        item9[0].evidence[0].text.contains("phq9_9"),
        "{:?}",
        item9[0].evidence
    );
    let follow_up = rig.replies_to(last).await;
    assert!(
        follow_up
            .iter()
            .any(|m| m.kind == Kind::Crisis && m.body.contains("988")),
        "{follow_up:?}"
    );

    // The recorded answers score as the PHQ-9 does: 11, moderate.
    let rules = LiveRules::load(&Path::new(env!("CARGO_MANIFEST_DIR")).join("rules")).unwrap();
    let rules = rules.current();
    let survey = &rules.surveys["phq9"];
    // The only run on this fresh database is run 1.
    let answers = rig.store.run_answers(1).await.unwrap();
    assert_eq!(answers.len(), 9, "{answers:?}");
    let recorded: std::collections::BTreeMap<String, serde_json::Value> =
        answers.into_iter().map(|a| (a.question, a.value)).collect();
    let scored = hearth::pipeline::answer::score(survey, &recorded).unwrap();
    assert_eq!(scored.total, 11.0);
    assert_eq!(scored.band.as_deref(), Some("moderate"));
    assert!(scored.complete);
}

/// Carla, whose roster language is Spanish, beside Ann and Bo.
const SPANISH_MEMBER: &str = "external_id,first_name,phone,timezone,language,groups,consent
M-3,Carla,+15555550103,America/Chicago,es,weekly-support,yes
";
const CARLA: &str = "+15555550103";

/// The one reply to a text, which must be a compliance reply.
async fn compliance_reply(rig: &Rig, inbound: i64) -> String {
    let r = rig.replies_to(inbound).await;
    assert_eq!(r.len(), 1, "{r:?}");
    assert_eq!(r[0].kind, Kind::Compliance, "{r:?}");
    r[0].body.clone()
}

#[tokio::test]
async fn help_and_stop_answer_in_the_members_language_and_help_gives_988() {
    let rig = rig().await;
    crate::support::import_roster_in(&rig.store, SPANISH_MEMBER, &["weekly-support"]).await;

    let help = compliance_reply(&rig, rig.text(CARLA, "HELP").await).await;
    for part in [
        "Ayuda: 555-0100",
        "555-0100",
        "tarifas de mensajes y datos",
        "BAJA",
        "988",
    ] {
        assert!(
            help.contains(part),
            "{part:?} missing from Carla's HELP: {help:?}"
        );
    }
    let help = compliance_reply(&rig, rig.text(ANN, "help").await).await;
    for part in [
        "Help: 555-0100",
        "Msg & data rates may apply",
        "STOP",
        "If you are in crisis, call or text 988",
    ] {
        assert!(
            help.contains(part),
            "{part:?} missing from Ann's HELP: {help:?}"
        );
    }

    let stop = compliance_reply(&rig, rig.text(CARLA, "STOP").await).await;
    assert!(
        stop.contains("se dio de baja") && stop.contains("START"),
        "{stop:?}"
    );
    assert!(!rig.consenting("M-3").await);
    let stop = compliance_reply(&rig, rig.text(ANN, "no more texts please").await).await;
    assert!(
        stop.contains("you are unsubscribed") && stop.contains("START"),
        "{stop:?}"
    );
    assert!(!rig.consenting("M-1").await);

    let start = compliance_reply(&rig, rig.text(CARLA, "START").await).await;
    assert!(start.contains("suscrito de nuevo"), "{start:?}");
    assert!(rig.consenting("M-3").await);
}

#[tokio::test]
async fn an_opt_out_sentence_revokes_with_one_confirmation_and_a_topic_is_said_to_cover_everything()
{
    let rig = rig().await;
    let id = rig.text(ANN, "pls stop txting me about the dentist").await;
    let body = compliance_reply(&rig, id).await;
    assert!(
        body.contains("all of this program's texts, not only that topic"),
        "{body:?}"
    );
    assert!(body.contains("Reply START"), "{body:?}");
    assert!(!rig.consenting("M-1").await);
    let history = rig.store.consent_history("M-1").await.unwrap();
    assert_eq!(
        history.last().unwrap().text,
        "pls stop txting me about the dentist"
    );

    // Ordinary texts with the same words change nothing.
    for t in [
        "I can't stop crying",
        "cancel my appointment",
        "stop by after group?",
    ] {
        rig.text(BO, t).await;
    }
    assert!(rig.consenting("M-2").await);
}

#[tokio::test]
async fn an_unknown_numbers_spanish_opt_out_is_confirmed_in_spanish() {
    let rig = rig().await;
    let body = compliance_reply(&rig, rig.text(STRANGER, "no me manden más mensajes").await).await;
    assert!(body.contains("se dio de baja"), "{body:?}");
    let body = compliance_reply(
        &rig,
        rig.text("+15555550198", "please stop texting me").await,
    )
    .await;
    assert!(body.contains("you are unsubscribed"), "{body:?}");
}

#[tokio::test]
async fn a_crisis_inside_an_opt_out_sentence_is_both() {
    let rig = rig().await;
    let id = rig
        .text(ANN, "i want to kill myself, stop texting me")
        .await;
    let replies = rig.replies_to(id).await;
    let kinds: Vec<Kind> = replies.iter().map(|m| m.kind).collect();
    assert!(kinds.contains(&Kind::Crisis), "{kinds:?}");
    assert_eq!(
        kinds.iter().filter(|k| **k == Kind::Compliance).count(),
        1,
        "{kinds:?}"
    );
    assert!(!rig.consenting("M-1").await, "the opt-out revoked consent");
    let incidents = rig.incidents().await;
    assert_eq!(incidents.len(), 1, "{incidents:?}");
    assert_eq!(incidents[0].severity, Severity::Critical);
}
