//! The reply pipeline's store on real encrypted SQLite files: hits folded
//! into incidents (open, join, grouping, realert) with every hit kept as
//! evidence and audited without its text; the one reply transaction (all
//! or nothing, idempotent); survey progress, reminders and expiry;
//! history and engagement; the provider's keyword; a crisis reply that
//! could not be sent noted on its incident.

use std::path::Path;

use chrono::{DateTime, TimeDelta, Utc};
use hearth::domain::Duration;
use hearth::domain::incident::{AlertHit, HitDecision, Severity, Subject};
use hearth::domain::member::{ConsentAction, Recorded};
use hearth::domain::message::{
    Enqueued, IdempotencyKey, InboundRow, InboundSms, Kind, NewMessage, OutState, Plan, Received,
    Report, ReportFor, SurveyStart,
};
use hearth::store::prelude::*;
use hearth::store::sqlite::SqliteStore;
use hearth::store::traits::incident::IncidentFilter;
use hearth::store::traits::outbox::{InstanceId, Outcome};
use hearth::store::traits::reply::{
    AnswerRecord, ConsentChange, ReplyEffects, SurveyClose, SurveyUpdate,
};
use hearth::store::traits::{IncidentStore, OutboxStore, ReplyStore};
use serde_json::json;

const ROSTER: &str = "external_id,first_name,phone,timezone,groups,consent
M-1,Ann,+15555550101,America/New_York,tuesday-anxiety,yes
M-2,Bo,+15555550102,America/Chicago,tuesday-anxiety,yes
";

fn open(dir: &Path) -> SqliteStore {
    crate::support::open_store(dir)
}

async fn with_roster() -> (tempfile::TempDir, SqliteStore) {
    let dir = tempfile::tempdir().unwrap();
    let store = open(dir.path());
    crate::support::import_roster_in(&store, ROSTER, &["tuesday-anxiety"]).await;
    (dir, store)
}

/// Runs SQL on the database file directly (what the escalation engine
/// will do through its own API: resolve an incident).
fn sql(dir: &Path, statement: &str) {
    crate::support::db::sql(&dir.join("h.db"), statement);
}

async fn id_of(store: &SqliteStore, external: &str) -> i64 {
    store.member(external).await.unwrap().unwrap().id
}

/// Whole seconds, as the store keeps instants (to the millisecond).
fn secs(t: DateTime<Utc>) -> DateTime<Utc> {
    DateTime::from_timestamp(t.timestamp(), 0).unwrap()
}

static NEXT: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(1);

/// Stores a text as a provider would and reads back its row.
async fn text(store: &SqliteStore, from: &str, body: &str, keyword: Option<&str>) -> InboundRow {
    let n = NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let received = store
        .record_inbound(InboundSms {
            provider: "test".into(),
            provider_message_id: format!("in-{n}"),
            from: from.into(),
            to: "+15555550199".into(),
            body: body.into(),
            keyword: keyword.map(str::to_owned),
        })
        .await
        .unwrap();
    let Received::New(id) = received else {
        panic!("a new text")
    };
    store.inbound(id).await.unwrap().unwrap()
}

fn hit(alert: &str, severity: Severity, subject: Subject, inbound: Option<i64>) -> AlertHit {
    AlertHit {
        alert: alert.into(),
        severity,
        subject,
        inbound_id: inbound,
        evidence: format!("matched `{alert}` evidence-text-{alert}"),
        realert: None,
        escalate: Some("clinicians".into()),
        reply_key: None,
        quote: None,
    }
}

fn reply(inbound: i64, purpose: &str, member: i64, kind: Kind, body: &str) -> NewMessage {
    NewMessage {
        idempotency_key: IdempotencyKey::reply(inbound, purpose),
        member_id: Some(member),
        to: None,
        body: body.into(),
        kind,
        not_before: Utc::now(),
        expires_at: None,
        plan: None,
        suppressed: None,
    }
}

fn effects(inbound: i64, outcome: &str) -> ReplyEffects {
    ReplyEffects {
        inbound_id: inbound,
        outcome: outcome.into(),
        consent: None,
        survey: None,
        messages: Vec::new(),
        hits: Vec::new(),
        follow_up: None,
        now: Utc::now(),
    }
}

/// A survey question planned for `member`, delivered, so its run is open.
async fn delivered_survey(
    store: &SqliteStore,
    member: i64,
    survey: &str,
    fire: DateTime<Utc>,
) -> i64 {
    let m = NewMessage {
        idempotency_key: IdempotencyKey::scheduled(survey, fire, member),
        member_id: Some(member),
        to: None,
        body: "How is your mood, 1-10?".into(),
        kind: Kind::Scheduled,
        not_before: fire,
        expires_at: None,
        plan: Some(Plan {
            schedule: survey.into(),
            fire,
            generation: 1,
            version: "v1".into(),
            survey: Some(SurveyStart {
                survey: survey.into(),
                expires_at: fire + TimeDelta::hours(4),
            }),
        }),
        suppressed: None,
    };
    let id = store.enqueue(m).await.unwrap().id();
    deliver(store, id).await;
    id
}

async fn deliver(store: &SqliteStore, outbox: i64) {
    let state = store
        .apply_report(ReportFor::Outbox(outbox), Report::Delivered, None)
        .await
        .unwrap();
    assert_eq!(state, Some(OutState::Delivered));
}

async fn outbox_count(store: &SqliteStore) -> usize {
    store
        .list_messages(hearth::store::traits::outbox::ListFilter {
            state: None,
            kind: None,
            limit: 1000,
        })
        .await
        .unwrap()
        .len()
}

#[tokio::test]
async fn a_hit_opens_an_incident_the_next_for_its_alert_joins_it_and_both_are_evidence() {
    let (_dir, store) = with_roster().await;
    let m1 = id_of(&store, "M-1").await;
    let t1 = text(&store, "+15555550101", "feeling low", None).await;
    let t2 = text(&store, "+15555550101", "still low", None).await;
    let now = Utc::now();
    let out = store
        .record_hits(
            vec![
                hit(
                    "low-mood",
                    Severity::Warning,
                    Subject::Member(m1),
                    Some(t1.id),
                ),
                hit(
                    "low-mood",
                    Severity::Warning,
                    Subject::Member(m1),
                    Some(t2.id),
                ),
            ],
            now,
        )
        .await
        .unwrap();
    assert_eq!(out[0].decision, HitDecision::Open);
    assert_eq!(
        out[1].decision,
        HitDecision::Join {
            incident: out[0].incident
        }
    );
    let i = store.incident(out[0].incident).await.unwrap().unwrap();
    assert_eq!(i.member_external_id.as_deref(), Some("M-1"));
    assert_eq!(i.severity, Severity::Warning);
    assert_eq!(i.escalate.as_deref(), Some("clinicians"));
    let kinds: Vec<_> = i.evidence.iter().map(|e| e.kind.as_str()).collect();
    assert_eq!(kinds, ["opened", "joined"]);
    assert_eq!(i.evidence[1].inbound_id, Some(t2.id));
    let facts = store.subject_incidents(&Subject::Member(m1)).await.unwrap();
    assert_eq!(
        facts.open,
        vec![(i.id, "low-mood".to_owned(), Severity::Warning)]
    );
    // Another member's hit is their own incident.
    let m2 = id_of(&store, "M-2").await;
    let other = store
        .record_hits(
            vec![hit(
                "low-mood",
                Severity::Warning,
                Subject::Member(m2),
                None,
            )],
            now,
        )
        .await
        .unwrap();
    assert_eq!(other[0].decision, HitDecision::Open);
    assert_ne!(other[0].incident, i.id);
}

#[tokio::test]
async fn several_alerts_for_one_member_group_into_one_incident_and_a_critical_never_joins_a_lesser_one()
 {
    let (_dir, store) = with_roster().await;
    let m1 = id_of(&store, "M-1").await;
    let m2 = id_of(&store, "M-2").await;
    let now = Utc::now();
    let out = store
        .record_hits(
            vec![
                hit("crisis", Severity::Critical, Subject::Member(m1), None),
                hit("low-mood", Severity::Warning, Subject::Member(m1), None),
                hit("phq9-item9", Severity::Critical, Subject::Member(m1), None),
                hit("gone-quiet", Severity::Warning, Subject::Member(m2), None),
                hit("low-mood", Severity::Warning, Subject::Member(m2), None),
                hit("crisis", Severity::Critical, Subject::Member(m2), None),
            ],
            now,
        )
        .await
        .unwrap();
    let crisis = out[0].incident;
    assert_eq!(out[1].decision, HitDecision::Join { incident: crisis });
    assert_eq!(out[2].decision, HitDecision::Join { incident: crisis });
    let quiet = out[3].incident;
    assert_eq!(out[4].decision, HitDecision::Join { incident: quiet });
    assert_eq!(
        out[5].decision,
        HitDecision::Open,
        "a critical hit opens its own incident rather than join a warning"
    );
    let i = store.incident(crisis).await.unwrap().unwrap();
    assert_eq!(i.evidence.len(), 3);
    assert_eq!(
        (i.evidence[1].kind.as_str(), i.evidence[1].alert.as_str()),
        ("joined", "low-mood")
    );
    assert_eq!(i.evidence[2].alert, "phq9-item9");
    let open = store
        .incidents(&IncidentFilter {
            open_only: true,
            ..IncidentFilter::default()
        })
        .await
        .unwrap();
    assert_eq!(open.len(), 3, "one page per member, plus M-2's crisis");
    assert!(open[0].id > open[1].id, "newest first");
}

#[tokio::test]
async fn realert_holds_back_a_new_incident_inside_its_window_after_the_last_one_closed() {
    let (dir, store) = with_roster().await;
    let m1 = id_of(&store, "M-1").await;
    let now = Utc::now();
    let mut h = hit("low-mood", Severity::Warning, Subject::Member(m1), None);
    h.realert = Some(Duration::from_secs(24 * 3600));
    let first = store.record_hits(vec![h.clone()], now).await.unwrap()[0].incident;
    sql(
        dir.path(),
        &format!("UPDATE incidents SET state = 'resolved' WHERE id = {first}"),
    );
    let inside = store
        .record_hits(vec![h.clone()], now + TimeDelta::hours(23))
        .await
        .unwrap();
    assert_eq!(inside[0].decision, HitDecision::Realert { incident: first });
    let i = store.incident(first).await.unwrap().unwrap();
    assert_eq!(
        i.evidence.last().map(|e| e.kind.as_str()),
        Some("realert"),
        "kept as evidence on the closed incident"
    );
    let after = store
        .record_hits(vec![h], now + TimeDelta::hours(25))
        .await
        .unwrap();
    assert_eq!(after[0].decision, HitDecision::Open);
    assert_ne!(after[0].incident, first);
}

#[tokio::test]
async fn audit_entries_for_hits_name_the_incident_and_member_id_but_never_the_evidence_or_a_number()
{
    let (_dir, store) = with_roster().await;
    let m1 = id_of(&store, "M-1").await;
    let stranger = text(&store, "+15555550177", "i want to die", None).await;
    let out = store
        .record_hits(
            vec![
                hit("crisis", Severity::Critical, Subject::Member(m1), None),
                hit("crisis", Severity::Critical, Subject::Member(m1), None),
                hit(
                    "crisis",
                    Severity::Critical,
                    Subject::Number("+15555550177".into()),
                    Some(stranger.id),
                ),
            ],
            Utc::now(),
        )
        .await
        .unwrap();
    let tail = store.audit_tail(3).await.unwrap();
    let actions: Vec<_> = tail.iter().map(|e| e.action.as_str()).collect();
    assert_eq!(
        actions,
        ["incident.opened", "incident.joined", "incident.opened"]
    );
    assert_eq!(
        tail[0].subject.as_deref(),
        Some(format!("incident:{}", out[0].incident).as_str())
    );
    assert_eq!(tail[0].detail["member"], json!(m1));
    assert_eq!(tail[0].detail["severity"], json!("critical"));
    assert_eq!(tail[2].detail["inbound"], json!(stranger.id));
    for e in &tail {
        let all = format!("{:?} {}", e.subject, e.detail);
        assert!(!all.contains("evidence-text"), "{all}");
        assert!(!all.contains("5555550177"), "{all}");
    }
    // The unknown sender's incident is listed without its number.
    let i = store.incident(out[2].incident).await.unwrap().unwrap();
    assert_eq!(i.member_id, None);
    assert_eq!(i.subject, Subject::Number("+15555550177".into()));
    assert!(
        !serde_json::to_string(&i).unwrap().contains("5555550177"),
        "serialised incidents carry no number"
    );
    assert!(matches!(
        store.audit_verify().await.unwrap(),
        hearth::domain::member::AuditVerified::Intact { .. }
    ));
}

#[tokio::test]
async fn apply_reply_writes_consent_replies_and_hits_together_and_a_second_apply_changes_nothing() {
    let (_dir, store) = with_roster().await;
    let m1 = id_of(&store, "M-1").await;
    let row = text(
        &store,
        "+15555550101",
        "STOP, I can't do this anymore, I want to die",
        None,
    )
    .await;
    let crisis_key = IdempotencyKey::reply(row.id, "crisis");
    let mut e = effects(row.id, "crisis");
    e.consent = Some(ConsentChange {
        external_id: "M-1".into(),
        action: ConsentAction::Revoked,
        text: row.sms.body.clone(),
    });
    e.messages = vec![
        reply(row.id, "crisis", m1, Kind::Crisis, "Call or text 988."),
        reply(
            row.id,
            "stop",
            m1,
            Kind::Compliance,
            "You are unsubscribed.",
        ),
    ];
    let mut h = hit(
        "crisis",
        Severity::Critical,
        Subject::Member(m1),
        Some(row.id),
    );
    h.reply_key = Some(crisis_key.as_str().to_owned());
    e.hits = vec![h];
    let before = outbox_count(&store).await;
    let applied = store.apply_reply(e.clone()).await.unwrap();
    assert_eq!(applied.consent, Some(Recorded::Changed));
    assert_eq!(applied.messages.len(), 2);
    assert!(
        applied
            .messages
            .iter()
            .all(|m| matches!(m, Enqueued::New(_)))
    );
    assert_eq!(applied.hits.len(), 1);
    assert_eq!(applied.hits[0].decision, HitDecision::Open);
    let history = store.consent_history("M-1").await.unwrap();
    let last = history.last().unwrap();
    assert_eq!(last.action, ConsentAction::Revoked);
    assert_eq!(last.actor, "member");
    assert_eq!(outbox_count(&store).await, before + 2);
    assert!(store.unprocessed_inbound(10).await.unwrap().is_empty());

    // The same decision again (a crash after commit): nothing changes.
    let again = store.apply_reply(e).await.unwrap();
    assert!(again.messages.is_empty() && again.hits.is_empty() && again.consent.is_none());
    assert_eq!(outbox_count(&store).await, before + 2);
    assert_eq!(
        store.consent_history("M-1").await.unwrap().len(),
        history.len()
    );
    let incidents = store.incidents(&IncidentFilter::default()).await.unwrap();
    assert_eq!(incidents.len(), 1);
    assert_eq!(incidents[0].evidence.len(), 1);
}

#[tokio::test]
async fn apply_reply_is_all_or_nothing_when_one_part_is_refused() {
    let (_dir, store) = with_roster().await;
    let m1 = id_of(&store, "M-1").await;
    let row = text(&store, "+15555550101", "STOP", None).await;
    let mut e = effects(row.id, "stop");
    e.consent = Some(ConsentChange {
        external_id: "M-1".into(),
        action: ConsentAction::Revoked,
        text: "STOP".into(),
    });
    e.hits = vec![hit("x", Severity::Info, Subject::Member(m1), Some(row.id))];
    let mut nowhere = reply(row.id, "stop", m1, Kind::Compliance, "bye");
    nowhere.member_id = None; // no member and no number: refused
    e.messages = vec![reply(row.id, "first", m1, Kind::Reply, "ok"), nowhere];
    let before = outbox_count(&store).await;
    let err = store.apply_reply(e).await.unwrap_err();
    assert!(
        err.to_string().contains("needs a member or a number"),
        "{err}"
    );
    assert_eq!(outbox_count(&store).await, before, "no message kept");
    let history = store.consent_history("M-1").await.unwrap();
    assert_eq!(
        history.last().unwrap().action,
        ConsentAction::Granted,
        "the revocation rolled back with the rest"
    );
    assert!(
        store
            .incidents(&IncidentFilter::default())
            .await
            .unwrap()
            .is_empty()
    );
    assert_eq!(
        store.unprocessed_inbound(10).await.unwrap().len(),
        1,
        "the text stays queued to be decided again"
    );
}

#[tokio::test]
async fn a_survey_answer_is_stored_the_run_moves_on_and_a_reminder_goes_once_per_question() {
    let (_dir, store) = with_roster().await;
    let m1 = id_of(&store, "M-1").await;
    let fire = secs(Utc::now() - TimeDelta::minutes(10));
    let first = delivered_survey(&store, m1, "mood-checkin", fire).await;
    let row = text(&store, "+15555550101", "4", None).await;
    let facts = store.reply_facts(&row, Utc::now()).await.unwrap();
    assert_eq!(facts.member.as_ref().unwrap().external_id, "M-1");
    let open = facts.survey.expect("an open survey");
    assert_eq!(open.run.outbox_id, first);
    assert_eq!(open.run.question, 0);
    assert!(open.answers.is_empty());
    assert_eq!(open.reprompts, 0);
    let run = open.run.id;

    // Waiting for an answer to the first question: remind once.
    let waiting = store.waiting_runs(0, 10).await.unwrap();
    assert_eq!(waiting.len(), 1);
    assert_eq!(waiting[0].run.id, run);
    assert!(waiting[0].asked_at.is_some() && !waiting[0].reminded);
    // Paged by run id: nothing after the last one seen.
    assert!(store.waiting_runs(run, 10).await.unwrap().is_empty());
    assert_eq!(store.waiting_runs(run - 1, 1).await.unwrap().len(), 1);
    let nudge = |purpose: &str| NewMessage {
        idempotency_key: IdempotencyKey::reply(-run, purpose),
        ..reply(row.id, purpose, m1, Kind::Reply, "Just checking in.")
    };
    assert!(store.remind_run(run, nudge("remind-0")).await.unwrap());
    assert!(!store.remind_run(run, nudge("remind-0b")).await.unwrap());
    assert!(store.waiting_runs(0, 10).await.unwrap()[0].reminded);

    // "4" answers question 0 and asks question 1.
    let ask = reply(row.id, "ask", m1, Kind::Reply, "And your sleep, 1-10?");
    let mut e = effects(row.id, "answer");
    e.survey = Some(SurveyUpdate {
        run_id: run,
        answer: Some(AnswerRecord {
            question: "mood".into(),
            position: 0,
            value: json!(4),
        }),
        question: 1,
        reprompts: 0,
        close: None,
        score: None,
        ask_key: Some(ask.idempotency_key.as_str().to_owned()),
    });
    e.messages = vec![ask];
    let applied = store.apply_reply(e).await.unwrap();
    let ask_id = applied.messages[0].id();
    assert_eq!(
        store.run_answers(run).await.unwrap(),
        vec![AnswerRecord {
            question: "mood".into(),
            position: 0,
            value: json!(4)
        }]
    );
    assert!(
        store.waiting_runs(0, 10).await.unwrap().is_empty(),
        "question 1 has not gone out yet"
    );
    deliver(&store, ask_id).await;
    let waiting = store.waiting_runs(0, 10).await.unwrap();
    assert_eq!(waiting[0].run.question, 1);
    assert!(!waiting[0].reminded, "a new question may be reminded again");
    assert!(store.remind_run(run, nudge("remind-1")).await.unwrap());

    // "7" answers question 1 and completes the run, with its score.
    let row2 = text(&store, "+15555550101", "7", None).await;
    let facts = store.reply_facts(&row2, Utc::now()).await.unwrap();
    let open = facts.survey.unwrap();
    assert_eq!(open.answers.get("mood"), Some(&json!(4)));
    let mut e = effects(row2.id, "answer");
    e.survey = Some(SurveyUpdate {
        run_id: run,
        answer: Some(AnswerRecord {
            question: "sleep".into(),
            position: 1,
            value: json!(7),
        }),
        question: 1,
        reprompts: 0,
        close: Some(SurveyClose::Completed),
        score: Some(json!({ "total": 11, "band": "ok" })),
        ask_key: None,
    });
    store.apply_reply(e).await.unwrap();
    assert_eq!(store.run_answers(run).await.unwrap().len(), 2);
    let row3 = text(&store, "+15555550101", "thanks", None).await;
    assert!(
        store
            .reply_facts(&row3, Utc::now())
            .await
            .unwrap()
            .survey
            .is_none()
    );
    assert!(store.waiting_runs(0, 10).await.unwrap().is_empty());
    assert!(!store.remind_run(run, nudge("remind-2")).await.unwrap());
}

#[tokio::test]
async fn an_update_for_a_run_that_closed_meanwhile_is_skipped_with_its_question_and_the_rest_applied()
 {
    let (_dir, store) = with_roster().await;
    let m1 = id_of(&store, "M-1").await;
    let fire = secs(Utc::now() - TimeDelta::hours(5));
    delivered_survey(&store, m1, "mood-checkin", fire).await;
    let row = text(&store, "+15555550101", "5", None).await;
    // Read while open (at the fire), then the run expires before applying.
    let facts = store
        .reply_facts(&row, fire + TimeDelta::minutes(1))
        .await
        .unwrap();
    let run = facts.survey.unwrap().run.id;
    assert_eq!(store.expire_runs(Utc::now()).await.unwrap(), 1);
    assert_eq!(store.expire_runs(Utc::now()).await.unwrap(), 0, "once");
    let ask = reply(row.id, "ask", m1, Kind::Reply, "Next?");
    let thanks = reply(row.id, "thanks", m1, Kind::Reply, "Thanks.");
    let mut e = effects(row.id, "answer");
    e.survey = Some(SurveyUpdate {
        run_id: run,
        answer: Some(AnswerRecord {
            question: "mood".into(),
            position: 0,
            value: json!(5),
        }),
        question: 1,
        reprompts: 0,
        close: None,
        score: None,
        ask_key: Some(ask.idempotency_key.as_str().to_owned()),
    });
    e.messages = vec![ask, thanks];
    let applied = store.apply_reply(e).await.unwrap();
    assert_eq!(applied.messages.len(), 1, "the next question is not asked");
    assert!(store.run_answers(run).await.unwrap().is_empty());
    assert!(store.unprocessed_inbound(10).await.unwrap().is_empty());
    let (_, engagement) = store.member_history(m1, Utc::now()).await.unwrap();
    assert_eq!(engagement.unanswered_in_a_row, 1, "the expired run");
}

#[tokio::test]
async fn history_holds_the_newest_ten_answers_per_question_oldest_first() {
    let (_dir, store) = with_roster().await;
    let m1 = id_of(&store, "M-1").await;
    let base = secs(Utc::now() - TimeDelta::hours(1));
    delivered_survey(&store, m1, "mood-checkin", base).await;
    let run = store
        .reply_facts(
            &text(&store, "+15555550101", "x", None).await,
            base + TimeDelta::seconds(1),
        )
        .await
        .unwrap()
        .survey
        .unwrap()
        .run
        .id;
    // Twelve answers to question 0 (the run stays there), then two to
    // another question, each a minute apart.
    for i in 0..14i64 {
        let row = text(&store, "+15555550101", &i.to_string(), None).await;
        let (question, position, next) = if i < 12 {
            ("mood", 0, 0)
        } else {
            ("sleep", 1, 1)
        };
        if i == 12 {
            // Move the run to question 1 first.
            let r = text(&store, "+15555550101", "move", None).await;
            let mut e = effects(r.id, "answer");
            e.survey = Some(SurveyUpdate {
                run_id: run,
                answer: None,
                question: 1,
                reprompts: 0,
                close: None,
                score: None,
                ask_key: None,
            });
            store.apply_reply(e).await.unwrap();
        }
        let mut e = effects(row.id, "answer");
        e.now = base + TimeDelta::minutes(i + 1);
        e.survey = Some(SurveyUpdate {
            run_id: run,
            answer: Some(AnswerRecord {
                question: question.into(),
                position,
                value: json!(i),
            }),
            question: next,
            reprompts: 0,
            close: None,
            score: None,
            ask_key: None,
        });
        store.apply_reply(e).await.unwrap();
    }
    let (history, _) = store.member_history(m1, Utc::now()).await.unwrap();
    let mood: Vec<_> = history
        .iter()
        .filter(|a| a.question == "mood")
        .map(|a| a.value.clone())
        .collect();
    assert_eq!(mood, (2..12).map(|i| json!(i)).collect::<Vec<_>>());
    assert_eq!(history.iter().filter(|a| a.question == "sleep").count(), 2);
    assert!(
        history.windows(2).all(|w| w[0].at <= w[1].at),
        "oldest first"
    );
    assert!(history.iter().all(|a| a.survey == "mood-checkin"));
    // History at an earlier instant holds only what was answered by then.
    let (early, _) = store
        .member_history(m1, base + TimeDelta::minutes(3))
        .await
        .unwrap();
    assert_eq!(early.len(), 3);
}

#[tokio::test]
async fn engagement_counts_days_since_the_previous_text_recent_texts_and_unanswered_runs() {
    let (_dir, store) = with_roster().await;
    let m1 = id_of(&store, "M-1").await;
    let first = text(&store, "+15555550101", "hi", None).await;
    let facts = store.reply_facts(&first, Utc::now()).await.unwrap();
    assert_eq!(facts.engagement.days_since_last_reply, None, "their first");
    assert_eq!(facts.engagement.replies_30d, 1, "this one included");
    let second = text(&store, "+15555550101", "hello", None).await;
    let later = Utc::now() + TimeDelta::days(2);
    let facts = store.reply_facts(&second, later).await.unwrap();
    let days = facts.engagement.days_since_last_reply.unwrap();
    assert!((1.99..2.01).contains(&days), "{days}");
    assert_eq!(facts.engagement.replies_30d, 2);
    let facts = store
        .reply_facts(&second, Utc::now() + TimeDelta::days(31))
        .await
        .unwrap();
    assert_eq!(facts.engagement.replies_30d, 0, "none in the last 30 days");

    // Runs, oldest first: answered, expired, waiting → two unanswered.
    let t0 = secs(Utc::now() - TimeDelta::hours(30));
    delivered_survey(&store, m1, "mood-checkin", t0).await;
    let row = text(&store, "+15555550101", "6", None).await;
    let run = store
        .reply_facts(&row, t0 + TimeDelta::minutes(1))
        .await
        .unwrap()
        .survey
        .unwrap()
        .run
        .id;
    let mut e = effects(row.id, "answer");
    e.survey = Some(SurveyUpdate {
        run_id: run,
        answer: Some(AnswerRecord {
            question: "mood".into(),
            position: 0,
            value: json!(6),
        }),
        question: 0,
        reprompts: 0,
        close: Some(SurveyClose::Completed),
        score: None,
        ask_key: None,
    });
    store.apply_reply(e).await.unwrap();
    delivered_survey(&store, m1, "mood-checkin", t0 + TimeDelta::hours(10)).await;
    assert_eq!(store.expire_runs(Utc::now()).await.unwrap(), 1);
    delivered_survey(&store, m1, "mood-checkin", secs(Utc::now())).await;
    let (_, engagement) = store.member_history(m1, Utc::now()).await.unwrap();
    assert_eq!(engagement.unanswered_in_a_row, 2);
    assert_eq!(engagement.replies_30d, 3, "hi, hello and 6");
}

#[tokio::test]
async fn a_sender_is_found_by_the_rows_member_else_by_number_and_otherwise_unknown() {
    let (_dir, store) = with_roster().await;
    let row = text(&store, "+15555550102", "hi", None).await;
    assert!(row.member_id.is_some());
    let facts = store.reply_facts(&row, Utc::now()).await.unwrap();
    assert_eq!(facts.member.unwrap().external_id, "M-2");
    assert!(facts.contact.is_none(), "contacts are the handler's");
    let mut by_number = row.clone();
    by_number.member_id = None;
    let facts = store.reply_facts(&by_number, Utc::now()).await.unwrap();
    assert_eq!(facts.member.unwrap().external_id, "M-2");
    for from in ["CARRIER", "+15555550177"] {
        let row = text(&store, from, "hi", None).await;
        let facts = store.reply_facts(&row, Utc::now()).await.unwrap();
        assert!(facts.member.is_none() && facts.survey.is_none());
        assert_eq!(facts.engagement, Default::default());
    }
}

#[tokio::test]
async fn the_providers_keyword_is_stored_with_the_text_and_read_back() {
    let (_dir, store) = with_roster().await;
    let stop = text(&store, "+15555550101", "stop", Some("STOP")).await;
    assert_eq!(stop.sms.keyword.as_deref(), Some("STOP"));
    let plain = text(&store, "+15555550101", "hello", None).await;
    assert_eq!(plain.sms.keyword, None);
    let queued = store.unprocessed_inbound(10).await.unwrap();
    assert_eq!(queued[0].sms.keyword.as_deref(), Some("STOP"));
    assert_eq!(queued[1].sms.keyword, None);
}

#[tokio::test]
async fn a_crisis_reply_the_provider_refuses_as_opted_out_is_noted_on_its_incident_without_the_number()
 {
    let (_dir, store) = with_roster().await;
    let m1 = id_of(&store, "M-1").await;
    let row = text(&store, "+15555550101", "i want to end it all", None).await;
    let crisis = reply(row.id, "crisis", m1, Kind::Crisis, "Call or text 988.");
    let mut h = hit(
        "crisis",
        Severity::Critical,
        Subject::Member(m1),
        Some(row.id),
    );
    h.reply_key = Some(crisis.idempotency_key.as_str().to_owned());
    let mut e = effects(row.id, "crisis");
    e.messages = vec![crisis];
    e.hits = vec![h];
    let applied = store.apply_reply(e).await.unwrap();
    let incident = applied.hits[0].incident;
    let claimed = store
        .claim(
            &InstanceId::new("daemon-a").unwrap(),
            Utc::now(),
            TimeDelta::seconds(60),
        )
        .await
        .unwrap()
        .expect("the crisis reply is due");
    assert_eq!(claimed.message.id, applied.messages[0].id());
    store
        .settle_claim(
            &claimed.lease,
            Outcome::OptedOut {
                reason: "HTTP 400: twilio error 21610: the number +15555550101 is unsubscribed"
                    .into(),
            },
        )
        .await
        .unwrap();
    let i = store.incident(incident).await.unwrap().unwrap();
    let note = i.evidence.last().unwrap();
    assert_eq!(note.kind, "not_texted");
    assert!(
        note.text.starts_with("the member could not be texted"),
        "{}",
        note.text
    );
    assert!(note.text.contains("21610"), "{}", note.text);
    assert!(!note.text.contains("5555550101"), "{}", note.text);
    assert_eq!(note.inbound_id, Some(row.id));
    let tail = store.audit_tail(5).await.unwrap();
    assert!(tail.iter().any(|e| e.action == "incident.not_texted"));

    // An ordinary reply that fails notes nothing anywhere.
    let other = text(&store, "+15555550102", "hi", None).await;
    let m2 = id_of(&store, "M-2").await;
    let mut e = effects(other.id, "reply");
    e.messages = vec![reply(other.id, "ack", m2, Kind::Reply, "Thanks.")];
    store.apply_reply(e).await.unwrap();
    let claimed = store
        .claim(
            &InstanceId::new("daemon-a").unwrap(),
            Utc::now(),
            TimeDelta::seconds(60),
        )
        .await
        .unwrap()
        .unwrap();
    store
        .settle_claim(
            &claimed.lease,
            Outcome::Failed {
                reason: "HTTP 400".into(),
            },
        )
        .await
        .unwrap();
    assert_eq!(
        store
            .incident(incident)
            .await
            .unwrap()
            .unwrap()
            .evidence
            .len(),
        2
    );
}

#[tokio::test]
async fn a_reprompt_is_counted_on_the_run_and_giving_up_closes_it_as_unanswered() {
    let (_dir, store) = with_roster().await;
    let m1 = id_of(&store, "M-1").await;
    let fire = secs(Utc::now() - TimeDelta::minutes(5));
    delivered_survey(&store, m1, "mood-checkin", fire).await;
    let banana = text(&store, "+15555550101", "banana", None).await;
    let run = store
        .reply_facts(&banana, Utc::now())
        .await
        .unwrap()
        .survey
        .unwrap()
        .run
        .id;
    let again = reply(
        banana.id,
        "reprompt",
        m1,
        Kind::Reply,
        "Please answer 1-10.",
    );
    let mut e = effects(banana.id, "reprompt");
    e.survey = Some(SurveyUpdate {
        run_id: run,
        answer: None,
        question: 0,
        reprompts: 1,
        close: None,
        score: None,
        ask_key: Some(again.idempotency_key.as_str().to_owned()),
    });
    e.messages = vec![again];
    let applied = store.apply_reply(e).await.unwrap();
    let cherry = text(&store, "+15555550101", "cherry", None).await;
    let open = store
        .reply_facts(&cherry, Utc::now())
        .await
        .unwrap()
        .survey
        .unwrap();
    assert_eq!(open.reprompts, 1);
    assert_eq!(open.run.question, 0);
    assert!(
        store.waiting_runs(0, 10).await.unwrap().is_empty(),
        "the re-prompt has not gone out: nothing to remind yet"
    );
    deliver(&store, applied.messages[0].id()).await;
    assert_eq!(store.waiting_runs(0, 10).await.unwrap()[0].run.id, run);

    let mut e = effects(cherry.id, "gave up");
    e.survey = Some(SurveyUpdate {
        run_id: run,
        answer: None,
        question: 0,
        reprompts: 1,
        close: Some(SurveyClose::GaveUp),
        score: None,
        ask_key: None,
    });
    store.apply_reply(e).await.unwrap();
    let after = text(&store, "+15555550101", "plum", None).await;
    let facts = store.reply_facts(&after, Utc::now()).await.unwrap();
    assert!(facts.survey.is_none(), "closed");
    assert_eq!(facts.engagement.unanswered_in_a_row, 1, "gave up counts");
    assert!(store.run_answers(run).await.unwrap().is_empty());
}
