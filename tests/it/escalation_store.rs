//! The escalation store on real encrypted SQLite files: starting an
//! incident's policy once, the guarded write (a stale revision writes
//! nothing), transitions with who and how, timers and their order, SMS
//! notices in the outbox and email/webhook notices with their attempts,
//! and all of it across closing and reopening the file.

use std::path::Path;

use chrono::{DateTime, TimeDelta, Utc};
use hearth::domain::Channel;
use hearth::domain::Phone;
use hearth::domain::incident::{AlertHit, IncidentState, Severity, Subject};
use hearth::domain::message::{IdempotencyKey, Kind, NewMessage};
use hearth::store::prelude::*;
use hearth::store::sqlite::SqliteStore;
use hearth::store::traits::escalation::{
    EscalationWrite, NewNotice, NoticeState, Purpose, Transition,
};
use hearth::store::traits::incident::{IncidentCounts, IncidentFilter};
use hearth::store::traits::outbox::ListFilter;
use hearth::store::traits::{EscalationStore, IncidentStore, OutboxStore};
use serde_json::json;

fn open(dir: &Path) -> SqliteStore {
    crate::support::open_store(dir)
}

/// Runs SQL on the database file directly (a delivery report moving an
/// outbox row, a database from an earlier version).
fn sql(dir: &Path, statement: &str) {
    crate::support::db::sql(&dir.join("h.db"), statement);
}

fn at(minutes: i64) -> DateTime<Utc> {
    DateTime::from_timestamp(1_800_000_000, 0).unwrap() + TimeDelta::minutes(minutes)
}

fn hit(number: &str, alert: &str, severity: Severity, escalate: Option<&str>) -> AlertHit {
    AlertHit {
        alert: alert.into(),
        severity,
        subject: Subject::Number(number.into()),
        inbound_id: None,
        evidence: "matched".into(),
        realert: None,
        escalate: escalate.map(str::to_owned),
        reply_key: None,
        quote: None,
    }
}

/// Opens one incident (for an unknown sender, so no roster is needed) and
/// returns its id.
async fn incident(
    store: &SqliteStore,
    number: &str,
    escalate: Option<&str>,
    now: DateTime<Utc>,
) -> i64 {
    store
        .record_hits(
            vec![hit(number, "crisis-language", Severity::Critical, escalate)],
            now,
        )
        .await
        .unwrap()[0]
        .incident
}

async fn started(store: &SqliteStore, number: &str, now: DateTime<Utc>) -> i64 {
    let id = incident(store, number, Some("crisis"), now).await;
    assert!(
        store
            .start_escalation(id, "crisis", "v1", "{\"steps\":[]}", now, now)
            .await
            .unwrap()
    );
    id
}

/// A write that changes only the row (position 1, due in `due` minutes).
fn step(incident_id: i64, expect_rev: i64, now: DateTime<Utc>) -> EscalationWrite {
    EscalationWrite {
        incident_id,
        expect_rev,
        next_position: 1,
        next_due: Some(now + TimeDelta::minutes(10)),
        seq: 1,
        lapse_due: None,
        exhausted: false,
        transition: None,
        notices: vec![],
        audit: vec![],
        now,
    }
}

/// The outbox key of a page (as the engine spells it; built here from the
/// text so these tests do not depend on the engine's key function).
fn key(incident_id: i64, seq: u64, contact: &str) -> IdempotencyKey {
    IdempotencyKey::staff(Some(&format!(
        "escalation:{incident_id}:{seq}:page:{contact}"
    )))
    .unwrap()
}

fn sms_page(incident_id: i64, seq: u64, contact: &str, number: &str) -> NewNotice {
    NewNotice {
        purpose: Purpose::Page,
        seq,
        step: Some(0),
        round: Some(0),
        contact: contact.into(),
        channel: Channel::Sms,
        address: number.into(),
        subject: None,
        body: format!("incident {incident_id} needs someone: reply ACK {incident_id}"),
        message: Some(NewMessage {
            idempotency_key: key(incident_id, seq, contact),
            member_id: None,
            to: Some(Phone::parse(number).unwrap()),
            body: format!("incident {incident_id} needs someone: reply ACK {incident_id}"),
            kind: Kind::Escalation,
            not_before: at(0),
            expires_at: None,
            plan: None,
            suppressed: None,
        }),
    }
}

fn email_page(seq: u64, contact: &str) -> NewNotice {
    NewNotice {
        purpose: Purpose::Page,
        seq,
        step: Some(0),
        round: Some(0),
        contact: contact.into(),
        channel: Channel::Email,
        address: format!("{contact}@example.org"),
        subject: Some("incident needs someone".into()),
        body: "body".into(),
        message: None,
    }
}

fn ack(actor: &str) -> Transition {
    Transition {
        to: IncidentState::Acknowledged,
        actor: actor.into(),
        how: "sms".into(),
        action: "incident.acknowledged".into(),
    }
}

fn resolve(actor: &str) -> Transition {
    Transition {
        to: IncidentState::Resolved,
        actor: actor.into(),
        how: "api".into(),
        action: "incident.resolved".into(),
    }
}

async fn actions(store: &SqliteStore) -> Vec<(String, String, Option<String>, serde_json::Value)> {
    store
        .audit_tail(100)
        .await
        .unwrap()
        .into_iter()
        .map(|e| (e.actor, e.action, e.subject, e.detail))
        .collect()
}

#[tokio::test]
async fn an_escalation_starts_once_and_its_start_is_audited_with_policy_and_version() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(dir.path());
    let id = incident(&store, "+15555550101", Some("crisis"), at(0)).await;
    assert!(
        store
            .start_escalation(id, "crisis", "v1", "{}", at(1), at(0))
            .await
            .unwrap()
    );
    assert!(
        !store
            .start_escalation(id, "crisis", "v2", "{}", at(5), at(0))
            .await
            .unwrap(),
        "a second start writes nothing"
    );
    let row = store.escalation(id).await.unwrap().unwrap();
    assert_eq!(
        (
            row.version.as_str(),
            row.next_position,
            row.next_due,
            row.rev,
            row.seq
        ),
        ("v1", 0, Some(at(1)), 0, 0)
    );
    assert_eq!(row.state, IncidentState::Open);
    assert_eq!(row.severity, Severity::Critical);
    assert_eq!(row.alert, "crisis-language");
    let started: Vec<_> = actions(&store)
        .await
        .into_iter()
        .filter(|a| a.1 == "escalation.started")
        .collect();
    assert_eq!(started.len(), 1);
    assert_eq!(started[0].0, "system");
    assert_eq!(started[0].2.as_deref(), Some(&*format!("incident:{id}")));
    assert_eq!(started[0].3, json!({ "policy": "crisis", "version": "v1" }));
}

#[tokio::test]
async fn the_unstarted_list_holds_only_unresolved_incidents_with_a_policy_and_no_escalation() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(dir.path());
    let waiting = incident(&store, "+15555550101", Some("crisis"), at(0)).await;
    let _no_policy = incident(&store, "+15555550102", None, at(1)).await;
    let begun = started(&store, "+15555550103", at(2)).await;
    let resolved = started(&store, "+15555550104", at(3)).await;
    let mut w = step(resolved, 0, at(4));
    w.transition = Some(resolve("api:ops"));
    assert!(store.write_escalation(w).await.unwrap());
    let unstartable = incident(&store, "+15555550105", Some("gone"), at(5)).await;
    let later = incident(&store, "+15555550106", Some("crisis"), at(6)).await;

    let ids: Vec<i64> = store
        .unstarted_escalations(10)
        .await
        .unwrap()
        .iter()
        .map(|u| u.incident_id)
        .collect();
    assert_eq!(ids, vec![waiting, unstartable, later]);
    assert!(!ids.contains(&begun));

    assert!(
        store
            .mark_escalation_unstartable(unstartable, "gone", at(7))
            .await
            .unwrap()
    );
    assert!(
        !store
            .mark_escalation_unstartable(unstartable, "gone", at(8))
            .await
            .unwrap()
    );
    let first = store.unstarted_escalations(1).await.unwrap();
    assert_eq!(first.len(), 1);
    assert_eq!(first[0].incident_id, waiting);
    assert_eq!(first[0].policy, "crisis");
    assert_eq!(first[0].opened_at, at(0));
    assert_eq!(first[0].subject, Subject::Number("+15555550101".into()));
    let ids: Vec<i64> = store
        .unstarted_escalations(10)
        .await
        .unwrap()
        .iter()
        .map(|u| u.incident_id)
        .collect();
    assert_eq!(ids, vec![waiting, later]);
    let gone = store.escalation(unstartable).await.unwrap().unwrap();
    assert!(gone.exhausted);
    assert_eq!((gone.pinned.as_str(), gone.next_due), ("{}", None));
    assert!(
        actions(&store)
            .await
            .iter()
            .any(|a| a.1 == "escalation.no_policy" && a.3 == json!({ "policy": "gone" }))
    );
}

#[tokio::test]
async fn a_write_with_a_stale_revision_writes_nothing_and_a_fresh_one_applies() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(dir.path());
    let id = started(&store, "+15555550101", at(0)).await;
    let mut w = step(id, 0, at(1));
    w.notices = vec![email_page(0, "dana")];
    w.audit = vec![("escalation.paged".into(), json!({ "step": 0 }))];
    assert!(store.write_escalation(w.clone()).await.unwrap());
    let row = store.escalation(id).await.unwrap().unwrap();
    assert_eq!(
        (row.rev, row.next_position, row.seq, row.next_due),
        (1, 1, 1, Some(at(11)))
    );

    // The same write again (its reader saw rev 0): nothing changes.
    let before = actions(&store).await.len();
    let mut stale = w.clone();
    stale.next_position = 7;
    stale.notices = vec![email_page(0, "lee")];
    assert!(!store.write_escalation(stale).await.unwrap());
    assert_eq!(store.escalation(id).await.unwrap().unwrap(), row);
    assert_eq!(store.notices(id).await.unwrap().len(), 1);
    assert_eq!(actions(&store).await.len(), before);

    let mut fresh = step(id, 1, at(2));
    fresh.next_position = 2;
    assert!(store.write_escalation(fresh).await.unwrap());
    let row = store.escalation(id).await.unwrap().unwrap();
    assert_eq!((row.rev, row.next_position), (2, 2));
    assert_eq!(row.updated_at, at(2));

    // No row at all: false, not an error.
    assert!(
        !store
            .write_escalation(step(id + 100, 0, at(3)))
            .await
            .unwrap()
    );
}

#[tokio::test]
async fn an_acknowledgement_records_who_how_and_when_and_is_audited() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(dir.path());
    let id = started(&store, "+15555550101", at(0)).await;
    let mut w = step(id, 0, at(3));
    w.next_due = None;
    w.lapse_due = Some(at(63));
    w.transition = Some(ack("contact:dana"));
    assert!(store.write_escalation(w).await.unwrap());

    let row = store.escalation(id).await.unwrap().unwrap();
    assert_eq!(row.state, IncidentState::Acknowledged);
    assert_eq!(row.acknowledged_by.as_deref(), Some("contact:dana"));
    assert_eq!(row.acknowledged_at, Some(at(3)));
    assert_eq!((row.next_due, row.lapse_due), (None, Some(at(63))));
    let inc = store.incident(id).await.unwrap().unwrap();
    assert_eq!(inc.state, IncidentState::Acknowledged);
    assert_eq!(inc.acknowledged_by.as_deref(), Some("contact:dana"));
    assert_eq!(inc.acknowledged_how.as_deref(), Some("sms"));
    assert_eq!(inc.acknowledged_at, Some(at(3)));
    assert_eq!(inc.updated_at, at(3));
    let audited: Vec<_> = actions(&store)
        .await
        .into_iter()
        .filter(|a| a.1 == "incident.acknowledged")
        .collect();
    assert_eq!(audited.len(), 1);
    assert_eq!(audited[0].0, "contact:dana");
    assert_eq!(audited[0].2.as_deref(), Some(&*format!("incident:{id}")));
    assert_eq!(
        audited[0].3,
        json!({ "from": "open", "to": "acknowledged", "how": "sms" })
    );
    // It is still unresolved: listed among the open escalations.
    let open: Vec<i64> = store
        .open_escalations()
        .await
        .unwrap()
        .iter()
        .map(|r| r.incident_id)
        .collect();
    assert_eq!(open, vec![id]);

    // The acknowledgement lapses: back to open, the acknowledgement cleared.
    let mut w = step(id, 1, at(63));
    w.transition = Some(Transition {
        to: IncidentState::Open,
        actor: "system".into(),
        how: "timer".into(),
        action: "incident.reopened".into(),
    });
    assert!(store.write_escalation(w).await.unwrap());
    let inc = store.incident(id).await.unwrap().unwrap();
    assert_eq!(inc.state, IncidentState::Open);
    assert_eq!(
        (
            inc.acknowledged_by,
            inc.acknowledged_how,
            inc.acknowledged_at
        ),
        (None, None, None)
    );
}

#[tokio::test]
async fn resolving_stops_the_timers_and_the_incident_takes_no_more_writes() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(dir.path());
    let id = started(&store, "+15555550101", at(0)).await;
    let mut w = step(id, 0, at(4));
    w.lapse_due = Some(at(30));
    w.transition = Some(resolve("api:ops"));
    assert!(store.write_escalation(w).await.unwrap());

    let row = store.escalation(id).await.unwrap().unwrap();
    assert_eq!(row.state, IncidentState::Resolved);
    assert_eq!((row.next_due, row.lapse_due), (None, None));
    assert!(
        store
            .due_escalations(at(1000), 10)
            .await
            .unwrap()
            .is_empty()
    );
    assert_eq!(store.next_escalation_due().await.unwrap(), None);
    assert!(store.open_escalations().await.unwrap().is_empty());
    let inc = store.incident(id).await.unwrap().unwrap();
    assert_eq!(inc.resolved_by.as_deref(), Some("api:ops"));
    assert_eq!(inc.resolved_how.as_deref(), Some("api"));
    assert_eq!(inc.resolved_at, Some(at(4)));
    assert!(
        actions(&store)
            .await
            .iter()
            .any(|a| a.1 == "incident.resolved"
                && a.0 == "api:ops"
                && a.3 == json!({ "from": "open", "to": "resolved", "how": "api" }))
    );

    // Even with the right revision, a resolved incident takes no write.
    assert!(!store.write_escalation(step(id, 1, at(5))).await.unwrap());
    assert_eq!(store.escalation(id).await.unwrap().unwrap().rev, 1);

    // A new hit for the same alert opens a new incident.
    let again = incident(&store, "+15555550101", Some("crisis"), at(6)).await;
    assert_ne!(again, id);
}

#[tokio::test]
async fn due_escalations_come_earliest_first_and_the_next_due_covers_timers_and_pending_notices() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(dir.path());
    assert_eq!(store.next_escalation_due().await.unwrap(), None);
    let a = started(&store, "+15555550101", at(0)).await; // next_due at(0)
    let b = started(&store, "+15555550102", at(0)).await;
    let c = started(&store, "+15555550103", at(0)).await;
    // b: acknowledged, lapsing at 5; c: due at 20; a: due at 8.
    let mut w = step(b, 0, at(0));
    w.next_due = None;
    w.lapse_due = Some(at(5));
    w.transition = Some(ack("contact:dana"));
    assert!(store.write_escalation(w).await.unwrap());
    let mut w = step(c, 0, at(0));
    w.next_due = Some(at(20));
    assert!(store.write_escalation(w).await.unwrap());
    let mut w = step(a, 0, at(0));
    w.next_due = Some(at(8));
    w.notices = vec![email_page(0, "dana")]; // pending, next attempt at(0)
    assert!(store.write_escalation(w).await.unwrap());

    assert_eq!(store.next_escalation_due().await.unwrap(), Some(at(0)));
    let ids = |rows: Vec<hearth::store::traits::escalation::EscalationRow>| {
        rows.iter().map(|r| r.incident_id).collect::<Vec<_>>()
    };
    assert!(store.due_escalations(at(4), 10).await.unwrap().is_empty());
    assert_eq!(
        ids(store.due_escalations(at(5), 10).await.unwrap()),
        vec![b]
    );
    assert_eq!(
        ids(store.due_escalations(at(30), 10).await.unwrap()),
        vec![b, a, c]
    );
    assert_eq!(
        ids(store.due_escalations(at(30), 2).await.unwrap()),
        vec![b, a]
    );

    // The notice sent, the earliest is b's lapse.
    let notice = store.notices(a).await.unwrap()[0].id;
    store.settle_notice(notice, Ok(()), at(1)).await.unwrap();
    assert_eq!(store.next_escalation_due().await.unwrap(), Some(at(5)));
}

#[tokio::test]
async fn sms_notices_land_in_the_outbox_as_escalations_once_however_often_they_are_written() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(dir.path());
    let id = started(&store, "+15555550101", at(0)).await;
    let mut w = step(id, 0, at(1));
    w.notices = vec![
        sms_page(id, 0, "dana", "+15555550190"),
        email_page(0, "dana"),
    ];
    assert!(store.write_escalation(w).await.unwrap());
    // A second write (the next revision) with the same notice keys.
    let mut again = step(id, 1, at(2));
    again.notices = vec![
        sms_page(id, 0, "dana", "+15555550190"),
        email_page(0, "dana"),
    ];
    assert!(store.write_escalation(again).await.unwrap());

    let notices = store.notices(id).await.unwrap();
    assert_eq!(notices.len(), 2, "{notices:?}");
    let sms = &notices[0];
    assert_eq!((sms.channel, sms.purpose), (Channel::Sms, Purpose::Page));
    assert_eq!(sms.state, "queued");
    let outbox_id = sms.outbox_id.expect("an SMS notice names its outbox row");
    let m = store.message(outbox_id).await.unwrap().unwrap();
    assert_eq!(m.kind, Kind::Escalation);
    assert_eq!(m.idempotency_key.as_str(), key(id, 0, "dana").as_str());
    let outbox = store
        .list_messages(ListFilter {
            limit: 100,
            ..ListFilter::default()
        })
        .await
        .unwrap()
        .len();
    assert_eq!(outbox, 1);
    let email = &notices[1];
    assert_eq!(email.state, NoticeState::Pending.as_str());
    assert_eq!((email.outbox_id, email.next_attempt), (None, Some(at(1))));
    assert_eq!(email.subject.as_deref(), Some("incident needs someone"));

    // The SMS notice's state is the outbox row's.
    sql(
        dir.path(),
        &format!("UPDATE outbox SET state = 'delivered' WHERE id = {outbox_id}"),
    );
    assert_eq!(store.notices(id).await.unwrap()[0].state, "delivered");
}

#[tokio::test]
async fn a_notice_that_fails_is_retried_at_its_time_then_given_up_and_audited() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(dir.path());
    let id = started(&store, "+15555550101", at(0)).await;
    let mut w = step(id, 0, at(1));
    w.notices = vec![email_page(0, "dana"), email_page(0, "lee")];
    assert!(store.write_escalation(w).await.unwrap());
    let pending = store.pending_notices(at(1), 10).await.unwrap();
    assert_eq!(pending.len(), 2);
    assert!(store.pending_notices(at(0), 10).await.unwrap().is_empty());
    let (dana, lee) = (pending[0].id, pending[1].id);
    assert_eq!(pending[0].address, "dana@example.org");

    store
        .settle_notice(dana, Err(("connection refused".into(), Some(at(6)))), at(2))
        .await
        .unwrap();
    store.settle_notice(lee, Ok(()), at(2)).await.unwrap();
    let ids: Vec<i64> = store
        .pending_notices(at(5), 10)
        .await
        .unwrap()
        .iter()
        .map(|n| n.id)
        .collect();
    assert!(ids.is_empty());
    let retry = store.pending_notices(at(6), 10).await.unwrap();
    assert_eq!(retry.len(), 1);
    assert_eq!(
        (
            retry[0].id,
            retry[0].attempts,
            retry[0].last_error.as_deref()
        ),
        (dana, 1, Some("connection refused"))
    );
    assert_eq!(store.next_escalation_due().await.unwrap(), Some(at(6)));

    store
        .settle_notice(dana, Err(("550 no such user".into(), None)), at(6))
        .await
        .unwrap();
    let notices = store.notices(id).await.unwrap();
    let d = notices.iter().find(|n| n.id == dana).unwrap();
    assert_eq!(
        (
            d.state.as_str(),
            d.attempts,
            d.next_attempt,
            d.last_error.as_deref()
        ),
        ("failed", 2, None, Some("550 no such user"))
    );
    let l = notices.iter().find(|n| n.id == lee).unwrap();
    assert_eq!((l.state.as_str(), l.attempts), ("sent", 1));
    assert!(store.pending_notices(at(100), 10).await.unwrap().is_empty());
    let failed: Vec<_> = actions(&store)
        .await
        .into_iter()
        .filter(|a| a.1 == "escalation.notice_failed")
        .collect();
    assert_eq!(failed.len(), 1);
    assert_eq!(
        failed[0].3,
        json!({ "notice": dana, "channel": "email", "contact": "dana" })
    );
    // A late report on a settled notice changes nothing.
    store.settle_notice(dana, Ok(()), at(7)).await.unwrap();
    assert_eq!(store.notices(id).await.unwrap()[0].state, "failed");
}

#[tokio::test]
async fn hits_join_an_acknowledged_incident_and_after_resolution_open_a_new_one() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(dir.path());
    let id = started(&store, "+15555550101", at(0)).await;
    let mut w = step(id, 0, at(1));
    w.transition = Some(ack("contact:dana"));
    assert!(store.write_escalation(w).await.unwrap());

    // Acknowledged is still unresolved: the same alert and a lesser one join.
    let out = store
        .record_hits(
            vec![
                hit(
                    "+15555550101",
                    "crisis-language",
                    Severity::Critical,
                    Some("crisis"),
                ),
                hit(
                    "+15555550101",
                    "low-mood",
                    Severity::Warning,
                    Some("routine"),
                ),
            ],
            at(2),
        )
        .await
        .unwrap();
    assert_eq!(
        out.iter().map(|o| o.incident).collect::<Vec<_>>(),
        vec![id, id]
    );
    let facts = store
        .subject_incidents(&Subject::Number("+15555550101".into()))
        .await
        .unwrap();
    assert_eq!(
        facts.open,
        vec![(id, "crisis-language".to_owned(), Severity::Critical)]
    );

    let mut w = step(id, 1, at(3));
    w.transition = Some(resolve("cli:alex"));
    assert!(store.write_escalation(w).await.unwrap());
    let after = store
        .record_hits(
            vec![hit("+15555550101", "low-mood", Severity::Warning, None)],
            at(4),
        )
        .await
        .unwrap();
    assert_ne!(
        after[0].incident, id,
        "a resolved incident takes no more hits"
    );
}

#[tokio::test]
async fn counts_and_the_unresolved_filter_take_open_and_acknowledged_incidents_but_not_resolved_ones()
 {
    let dir = tempfile::tempdir().unwrap();
    let store = open(dir.path());
    let open_one = started(&store, "+15555550101", at(0)).await;
    let acked = started(&store, "+15555550102", at(0)).await;
    let resolved = started(&store, "+15555550103", at(0)).await;
    store
        .record_hits(
            vec![hit("+15555550104", "gone-quiet", Severity::Warning, None)],
            at(0),
        )
        .await
        .unwrap();
    let warning = store
        .subject_incidents(&Subject::Number("+15555550104".into()))
        .await
        .unwrap()
        .open[0]
        .0;
    let mut w = step(acked, 0, at(1));
    w.transition = Some(ack("api:ops"));
    assert!(store.write_escalation(w).await.unwrap());
    let mut w = step(resolved, 0, at(1));
    w.transition = Some(resolve("api:ops"));
    assert!(store.write_escalation(w).await.unwrap());

    assert_eq!(
        store.incident_counts().await.unwrap(),
        IncidentCounts {
            open: 2,
            acknowledged: 1,
            critical_unresolved: 2,
        }
    );
    // /status's older count: open ones only.
    assert_eq!(store.open_incident_counts().await.unwrap(), (2, 1));
    let ids =
        |v: Vec<hearth::domain::incident::Incident>| v.iter().map(|i| i.id).collect::<Vec<_>>();
    let unresolved = store
        .incidents(&IncidentFilter {
            unresolved: true,
            ..IncidentFilter::default()
        })
        .await
        .unwrap();
    assert_eq!(ids(unresolved), vec![warning, acked, open_one]);
    let open_only = store
        .incidents(&IncidentFilter {
            open_only: true,
            ..IncidentFilter::default()
        })
        .await
        .unwrap();
    assert_eq!(ids(open_only), vec![warning, open_one]);
    let open_rows: Vec<i64> = store
        .open_escalations()
        .await
        .unwrap()
        .iter()
        .map(|r| r.incident_id)
        .collect();
    assert_eq!(open_rows, vec![open_one, acked]);
}

#[tokio::test]
async fn escalations_notices_and_acknowledgements_survive_closing_and_reopening_the_store_file() {
    let dir = tempfile::tempdir().unwrap();
    let (id, row, notices) = {
        let store = open(dir.path());
        let id = started(&store, "+15555550101", at(0)).await;
        let mut w = step(id, 0, at(1));
        w.notices = vec![
            sms_page(id, 0, "dana", "+15555550190"),
            email_page(0, "lee"),
        ];
        assert!(store.write_escalation(w).await.unwrap());
        let mut w = step(id, 1, at(2));
        w.next_due = None;
        w.lapse_due = Some(at(62));
        w.transition = Some(ack("contact:dana"));
        assert!(store.write_escalation(w).await.unwrap());
        let notice = store.notices(id).await.unwrap()[1].id;
        store
            .settle_notice(notice, Err(("timed out".into(), Some(at(7)))), at(3))
            .await
            .unwrap();
        (
            id,
            store.escalation(id).await.unwrap().unwrap(),
            store.notices(id).await.unwrap(),
        )
    };
    let store = open(dir.path());
    assert_eq!(store.escalation(id).await.unwrap().unwrap(), row);
    assert_eq!(row.rev, 2);
    assert_eq!(row.acknowledged_by.as_deref(), Some("contact:dana"));
    assert_eq!(store.notices(id).await.unwrap(), notices);
    assert_eq!(notices.len(), 2);
    assert_eq!(store.next_escalation_due().await.unwrap(), Some(at(7)));
    assert_eq!(
        store
            .due_escalations(at(62), 10)
            .await
            .unwrap()
            .iter()
            .map(|r| r.incident_id)
            .collect::<Vec<_>>(),
        vec![id]
    );
    // The guard carries on from the stored revision.
    assert!(!store.write_escalation(step(id, 1, at(63))).await.unwrap());
    assert!(store.write_escalation(step(id, 2, at(63))).await.unwrap());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn of_writers_racing_on_one_revision_from_two_connections_exactly_one_applies() {
    let dir = tempfile::tempdir().unwrap();
    // Two handles on one file: two writer connections, as the daemon's
    // timer and a staff command's `hearth incidents ack` have.
    let daemon = open(dir.path());
    let staff = open(dir.path());
    let id = started(&daemon, "+15555550101", at(0)).await;
    let (mut paged, mut acked) = (0, 0);
    for rev in 0..6 {
        let mut page = step(id, rev, at(rev + 1));
        page.seq = u64::try_from(rev).unwrap() + 1;
        page.notices = vec![sms_page(id, page.seq, "dana", "+15555550190")];
        let mut ack_write = step(id, rev, at(rev + 1));
        ack_write.transition = Some(ack("cli:alex"));
        ack_write.audit = vec![("escalation.test".into(), json!({ "rev": rev }))];
        let (a, b) = tokio::join!(
            daemon.write_escalation(page),
            staff.write_escalation(ack_write)
        );
        let (a, b) = (a.unwrap(), b.unwrap());
        assert!(a ^ b, "rev {rev}: exactly one applies, got {a} and {b}");
        paged += usize::from(a);
        acked += usize::from(b);
        assert_eq!(staff.escalation(id).await.unwrap().unwrap().rev, rev + 1);
        // What the loser would have written is nowhere.
        assert_eq!(daemon.notices(id).await.unwrap().len(), paged);
        let outbox = daemon
            .list_messages(ListFilter {
                limit: 100,
                ..ListFilter::default()
            })
            .await
            .unwrap()
            .len();
        assert_eq!(outbox, paged);
        let audited = actions(&daemon).await;
        assert_eq!(
            audited.iter().filter(|e| e.1 == "escalation.test").count(),
            acked
        );
        assert_eq!(
            audited
                .iter()
                .filter(|e| e.1 == "incident.acknowledged")
                .count(),
            acked
        );
    }
}

#[tokio::test]
async fn a_write_whose_sms_notice_cannot_be_queued_fails_whole_and_writes_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(dir.path());
    let id = started(&store, "+15555550101", at(0)).await;
    let mut w = step(id, 0, at(1));
    let mut broken = sms_page(id, 1, "dana", "+15555550190");
    if let Some(m) = broken.message.as_mut() {
        m.to = None; // neither a member nor a number
    }
    w.notices = vec![email_page(1, "lee"), broken];
    w.transition = Some(ack("contact:dana"));
    let before = actions(&store).await.len();
    let err = store.write_escalation(w).await.unwrap_err();
    assert!(
        err.to_string().contains("needs a member or a number"),
        "{err}"
    );
    let row = store.escalation(id).await.unwrap().unwrap();
    assert_eq!((row.rev, row.state), (0, IncidentState::Open));
    assert!(store.notices(id).await.unwrap().is_empty());
    assert_eq!(actions(&store).await.len(), before);
}
