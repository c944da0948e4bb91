//! The outbox and the inbound queue at the store level, on real encrypted
//! SQLite files: leases, the transition rule, batches and idempotency keys,
//! staff's retry, and the inbound worker's paging.

use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use chrono::{DateTime, TimeDelta, Utc};
use hearth::domain::message::{
    IdempotencyKey, InboundRow, InboundSms, Kind, NewMessage, OutState, Report, ReportFor,
};
use hearth::pipeline::{Handled, InboundHandler, InboundWorker};
use hearth::store::prelude::*;
use hearth::store::sqlite::{KeySource, SqliteStore};
use hearth::store::traits::outbox::{InstanceId, ListFilter, Outcome, RetryFilter, Settled};
use hearth::store::traits::{InboundStore, OutboxStore};

use crate::support::rng::Rng;

const ROSTER: &str = "external_id,first_name,phone,timezone,consent\nM-1,Ann,+15555550101,America/New_York,yes\nM-2,Bo,+15555550102,America/New_York,no\n";

fn open(dir: &Path) -> SqliteStore {
    crate::support::open_store(dir)
}

async fn store_with_roster() -> (tempfile::TempDir, SqliteStore) {
    let dir = tempfile::tempdir().unwrap();
    let store = open(dir.path());
    crate::support::import_roster(&store, ROSTER).await;
    (dir, store)
}

async fn member_id(store: &SqliteStore, external: &str) -> i64 {
    store.member(external).await.unwrap().unwrap().id
}

fn to_member(key: IdempotencyKey, member: i64, kind: Kind, due: DateTime<Utc>) -> NewMessage {
    NewMessage {
        idempotency_key: key,
        member_id: Some(member),
        to: None,
        body: "See you Tuesday.".into(),
        kind,
        not_before: due,
        expires_at: None,
        plan: None,
        suppressed: None,
    }
}

fn to_number(key: &str, phone: &str, kind: Kind, due: DateTime<Utc>) -> NewMessage {
    NewMessage {
        idempotency_key: key.into(),
        member_id: None,
        to: Some(phone.parse().unwrap()),
        body: "Incident 4 needs you.".into(),
        kind,
        not_before: due,
        expires_at: None,
        plan: None,
        suppressed: None,
    }
}

fn a() -> InstanceId {
    InstanceId::new("daemon-a").unwrap()
}

fn b() -> InstanceId {
    InstanceId::new("daemon-b").unwrap()
}

const LEASE: TimeDelta = TimeDelta::seconds(30);

fn ago(minutes: i64) -> DateTime<Utc> {
    Utc::now() - TimeDelta::minutes(minutes)
}

/// Queues one message and takes it to `outcome` through a claim.
async fn settled(store: &SqliteStore, key: &str, outcome: Outcome) -> i64 {
    let id = store
        .enqueue(to_number(key, "+15555550199", Kind::Escalation, ago(1)))
        .await
        .unwrap()
        .id();
    let c = store.claim(&a(), Utc::now(), LEASE).await.unwrap().unwrap();
    assert_eq!(c.message.id, id, "the only due message");
    store.settle_claim(&c.lease, outcome).await.unwrap();
    id
}

async fn state(store: &SqliteStore, id: i64) -> OutState {
    OutboxStore::message(store, id)
        .await
        .unwrap()
        .unwrap()
        .state
}

async fn actions(store: &SqliteStore, n: usize) -> Vec<(String, Option<String>)> {
    store
        .audit_tail(n)
        .await
        .unwrap()
        .into_iter()
        .map(|e| (e.action, e.subject))
        .collect()
}

#[tokio::test]
async fn a_claim_is_a_lease_another_daemon_waits_out_and_a_lapse_is_recorded_as_possibly_sent() {
    let (_dir, store) = store_with_roster().await;
    let m1 = member_id(&store, "M-1").await;
    let id = store
        .enqueue(to_member(
            IdempotencyKey::scheduled("midweek", ago(5), m1),
            m1,
            Kind::Scheduled,
            ago(1),
        ))
        .await
        .unwrap()
        .id();
    let t0 = Utc::now();
    let held = store.claim(&a(), t0, LEASE).await.unwrap().unwrap();
    assert_eq!(held.lease.holder, a());
    assert_eq!(held.message.state, OutState::Sending);
    assert_eq!(held.message.attempts, 1);
    assert!(!held.message.possibly_sent);

    // While the lease runs, another daemon finds nothing to do.
    let during = t0 + TimeDelta::seconds(10);
    assert!(store.claim(&b(), during, LEASE).await.unwrap().is_none());

    // After it lapses, the row is back in the queue, possibly sent, and
    // the other daemon takes it over.
    let after = t0 + TimeDelta::minutes(1);
    let taken = store.claim(&b(), after, LEASE).await.unwrap().unwrap();
    assert_eq!(taken.message.id, id);
    assert_eq!(taken.lease.holder, b());
    assert!(taken.lease.token > held.lease.token);
    assert!(
        taken.message.possibly_sent,
        "the first send may have gone out"
    );
    assert!(
        taken
            .message
            .reason
            .as_deref()
            .is_some_and(|r| r.contains("daemon-a") && r.contains("may have been sent")),
        "{:?}",
        taken.message.reason
    );
    assert!(
        actions(&store, 5)
            .await
            .contains(&("outbox.lease_lapsed".into(), Some("member:M-1".into()))),
        "audited by the member's external id"
    );
}

#[tokio::test]
async fn renewing_a_lease_keeps_it_and_a_lapsed_one_cannot_be_renewed() {
    let (_dir, store) = store_with_roster().await;
    store
        .enqueue(to_number("k", "+15555550199", Kind::Escalation, ago(1)))
        .await
        .unwrap();
    let t0 = Utc::now();
    let held = store.claim(&a(), t0, LEASE).await.unwrap().unwrap();
    let renewed = store
        .renew(&held.lease, t0 + TimeDelta::minutes(5))
        .await
        .unwrap()
        .expect("still held");
    // Past the first lease, within the renewed one: still held.
    assert!(
        store
            .claim(&b(), t0 + TimeDelta::minutes(2), LEASE)
            .await
            .unwrap()
            .is_none()
    );
    assert_eq!(
        store
            .expire_leases(t0 + TimeDelta::minutes(6))
            .await
            .unwrap(),
        1
    );
    assert!(store.renew(&renewed, Utc::now()).await.unwrap().is_none());
}

#[tokio::test]
async fn settling_the_same_outcome_twice_records_it_once() {
    let (_dir, store) = store_with_roster().await;
    let m1 = member_id(&store, "M-1").await;
    store
        .enqueue(to_member("k".into(), m1, Kind::Staff, ago(1)))
        .await
        .unwrap();
    let c = store.claim(&a(), Utc::now(), LEASE).await.unwrap().unwrap();
    let sent = Outcome::Sent {
        provider: "kannel".into(),
        provider_message_id: Some("p-1".into()),
    };
    assert_eq!(
        store.settle_claim(&c.lease, sent.clone()).await.unwrap(),
        Settled::Recorded(OutState::Sent)
    );
    // A caller that saw an error retries; the second call changes nothing.
    assert_eq!(
        store.settle_claim(&c.lease, sent).await.unwrap(),
        Settled::AlreadyRecorded(OutState::Sent)
    );
    let audit = actions(&store, 10).await;
    let sends = audit.iter().filter(|(a, _)| a == "sms.sent").count();
    assert_eq!(sends, 1, "{audit:?}");
    assert!(audit.contains(&("sms.sent".into(), Some("member:M-1".into()))));

    // The same for a retry: queued once, the second call is a no-op.
    store
        .enqueue(to_member("k2".into(), m1, Kind::Staff, ago(1)))
        .await
        .unwrap();
    let c = store.claim(&a(), Utc::now(), LEASE).await.unwrap().unwrap();
    let retry = Outcome::Retry {
        at: Utc::now() + TimeDelta::hours(1),
        reason: "gateway down".into(),
    };
    assert_eq!(
        store.settle_claim(&c.lease, retry.clone()).await.unwrap(),
        Settled::Recorded(OutState::Queued)
    );
    assert_eq!(
        store.settle_claim(&c.lease, retry).await.unwrap(),
        Settled::AlreadyRecorded(OutState::Queued)
    );
}

#[tokio::test]
async fn a_send_recorded_after_its_lease_lapsed_still_counts_so_it_is_not_sent_again() {
    let (_dir, store) = store_with_roster().await;
    store
        .enqueue(to_number("k", "+15555550199", Kind::Escalation, ago(1)))
        .await
        .unwrap();
    let t0 = Utc::now();
    let c = store.claim(&a(), t0, LEASE).await.unwrap().unwrap();
    // The provider call outlived the lease; the row went back to the queue.
    assert_eq!(
        store
            .expire_leases(t0 + TimeDelta::minutes(1))
            .await
            .unwrap(),
        1
    );
    assert_eq!(state(&store, c.message.id).await, OutState::Queued);
    let s = store
        .settle_claim(
            &c.lease,
            Outcome::Sent {
                provider: "twilio".into(),
                provider_message_id: Some("SM1".into()),
            },
        )
        .await
        .unwrap();
    assert_eq!(s, Settled::Recorded(OutState::Sent));
    assert!(
        store
            .claim(&b(), t0 + TimeDelta::minutes(2), LEASE)
            .await
            .unwrap()
            .is_none(),
        "nothing left to send"
    );
}

#[tokio::test]
async fn a_holder_whose_lease_lapsed_cannot_requeue_or_fail_what_another_now_holds() {
    let (_dir, store) = store_with_roster().await;
    store
        .enqueue(to_number("k", "+15555550199", Kind::Escalation, ago(1)))
        .await
        .unwrap();
    let t0 = Utc::now();
    let old = store.claim(&a(), t0, LEASE).await.unwrap().unwrap();
    let new = store
        .claim(&b(), t0 + TimeDelta::minutes(1), LEASE)
        .await
        .unwrap()
        .unwrap();
    for outcome in [
        Outcome::Retry {
            at: t0,
            reason: "x".into(),
        },
        Outcome::Failed { reason: "x".into() },
        Outcome::Suppressed { reason: "x".into() },
    ] {
        assert_eq!(
            store.settle_claim(&old.lease, outcome).await.unwrap(),
            Settled::LeaseLost(OutState::Sending)
        );
    }
    assert_eq!(
        store
            .settle_claim(
                &new.lease,
                Outcome::Failed {
                    reason: "bad number".into()
                }
            )
            .await
            .unwrap(),
        Settled::Recorded(OutState::Failed)
    );
}

#[tokio::test]
async fn at_start_a_daemon_takes_back_only_its_own_claims() {
    let (_dir, store) = store_with_roster().await;
    for k in ["one", "two"] {
        store
            .enqueue(to_number(k, "+15555550199", Kind::Escalation, ago(1)))
            .await
            .unwrap();
    }
    let now = Utc::now();
    let mine = store.claim(&a(), now, LEASE).await.unwrap().unwrap();
    let theirs = store.claim(&b(), now, LEASE).await.unwrap().unwrap();
    assert_eq!(store.release_own_claims(&a()).await.unwrap(), 1);
    let m = OutboxStore::message(&store, mine.message.id)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(m.state, OutState::Queued);
    assert!(m.possibly_sent);
    assert_eq!(state(&store, theirs.message.id).await, OutState::Sending);
}

#[tokio::test]
async fn delivery_reports_and_settles_only_move_forward_in_the_store() {
    let (_dir, store) = store_with_roster().await;
    let id = settled(
        &store,
        "k",
        Outcome::Sent {
            provider: "kannel".into(),
            provider_message_id: None,
        },
    )
    .await;
    let report = |r| store.apply_report(ReportFor::Outbox(id), r, None);
    assert_eq!(
        report(Report::Delivered).await.unwrap(),
        Some(OutState::Delivered)
    );
    // A late "sent" or "failed" after "delivered" is kept as an event only.
    assert_eq!(
        report(Report::Sent).await.unwrap(),
        Some(OutState::Delivered)
    );
    assert_eq!(
        report(Report::Failed).await.unwrap(),
        Some(OutState::Delivered)
    );
    // Staff cannot rewind it either.
    let err = store
        .retry(
            RetryFilter {
                ids: vec![id],
                ..Default::default()
            },
            "staff",
        )
        .await
        .unwrap_err();
    assert!(err.to_string().contains("is delivered"), "{err}");
    assert_eq!(state(&store, id).await, OutState::Delivered);
}

#[tokio::test]
async fn retry_by_filter_requeues_only_matching_unsent_messages_and_audits_each() {
    let (_dir, store) = store_with_roster().await;
    let failed_a = settled(&store, "f1", Outcome::Failed { reason: "x".into() }).await;
    let failed_b = settled(&store, "f2", Outcome::Failed { reason: "x".into() }).await;
    let expired = settled(&store, "e1", Outcome::Expired { reason: "x".into() }).await;
    let sent = settled(
        &store,
        "s1",
        Outcome::Sent {
            provider: "kannel".into(),
            provider_message_id: None,
        },
    )
    .await;

    let failed_recently = RetryFilter {
        state: Some(OutState::Failed),
        since: Some(ago(60)),
        ..Default::default()
    };
    assert_eq!(store.retry(failed_recently, "staff-x").await.unwrap(), 2);
    for id in [failed_a, failed_b] {
        let m = OutboxStore::message(&store, id).await.unwrap().unwrap();
        assert_eq!(m.state, OutState::Queued);
        assert_eq!(m.reason.as_deref(), Some("retried by staff-x"));
    }
    assert_eq!(state(&store, expired).await, OutState::Expired);
    assert_eq!(state(&store, sent).await, OutState::Sent);
    let retries = actions(&store, 2).await;
    assert!(
        retries.iter().all(|(a, _)| a == "outbox.retry"),
        "{retries:?}"
    );

    // `since` in the future matches nothing; a kind filter matches all
    // retryable messages of that kind (the expired one), never the sent.
    let later = RetryFilter {
        since: Some(Utc::now() + TimeDelta::hours(1)),
        ..Default::default()
    };
    assert_eq!(store.retry(later, "staff-x").await.unwrap(), 0);
    let by_kind = RetryFilter {
        kind: Some(Kind::Escalation),
        ..Default::default()
    };
    assert_eq!(store.retry(by_kind, "staff-x").await.unwrap(), 1);
    assert_eq!(state(&store, expired).await, OutState::Queued);
    assert_eq!(state(&store, sent).await, OutState::Sent);

    let never = RetryFilter {
        state: Some(OutState::Sent),
        ..Default::default()
    };
    let err = store.retry(never, "staff-x").await.unwrap_err();
    assert!(err.to_string().contains("never retried"), "{err}");
    let err = store
        .retry(RetryFilter::default(), "staff-x")
        .await
        .unwrap_err();
    assert!(err.to_string().contains("name the messages"), "{err}");
}

#[tokio::test]
async fn a_retry_naming_one_sent_message_writes_nothing_at_all() {
    let (_dir, store) = store_with_roster().await;
    let failed = settled(&store, "f1", Outcome::Failed { reason: "x".into() }).await;
    let sent = settled(
        &store,
        "s1",
        Outcome::Sent {
            provider: "kannel".into(),
            provider_message_id: None,
        },
    )
    .await;
    let both = RetryFilter {
        ids: vec![failed, sent],
        ..Default::default()
    };
    let err = store.retry(both, "staff").await.unwrap_err();
    assert!(
        err.to_string().contains(&format!("#{sent} is sent")),
        "{err}"
    );
    assert_eq!(
        state(&store, failed).await,
        OutState::Failed,
        "one transaction"
    );
    let missing = RetryFilter {
        ids: vec![999],
        ..Default::default()
    };
    assert!(
        store
            .retry(missing, "staff")
            .await
            .unwrap_err()
            .to_string()
            .contains("#999")
    );
}

#[tokio::test]
async fn enqueue_batch_queues_thousands_at_once_and_skips_keys_already_there() {
    let (_dir, store) = store_with_roster().await;
    let fire = ago(0);
    let batch = |range: std::ops::Range<i64>| -> Vec<NewMessage> {
        range
            .map(|i| NewMessage {
                idempotency_key: IdempotencyKey::scheduled("fan-out", fire, i),
                member_id: None,
                to: Some(format!("+1555{i:07}").parse().unwrap()),
                body: "Reminder".into(),
                kind: Kind::Scheduled,
                not_before: fire,
                expires_at: None,
                plan: None,
                suppressed: None,
            })
            .collect()
    };
    assert_eq!(store.enqueue_batch(batch(0..5_000)).await.unwrap(), 5_000);
    // A fan-out retried after a crash half-way: only the new half counts.
    assert_eq!(
        store.enqueue_batch(batch(2_500..7_500)).await.unwrap(),
        2_500
    );
    let all = store
        .list_messages(ListFilter {
            limit: 100_000,
            ..Default::default()
        })
        .await
        .unwrap();
    assert_eq!(all.len(), 7_500);

    // One invalid message fails the whole batch; nothing of it is written.
    let mut bad = batch(7_500..7_600);
    bad[50].to = None;
    let err = store.enqueue_batch(bad).await.unwrap_err();
    assert!(
        err.to_string().contains("needs a member or a number"),
        "{err}"
    );
    let all = store
        .list_messages(ListFilter {
            limit: 100_000,
            ..Default::default()
        })
        .await
        .unwrap();
    assert_eq!(all.len(), 7_500);
}

#[tokio::test]
async fn the_same_idempotency_key_queues_one_message_whichever_way_it_comes() {
    let (_dir, store) = store_with_roster().await;
    let m1 = member_id(&store, "M-1").await;
    let fire = ago(0);
    let key = || IdempotencyKey::scheduled("midweek", fire, m1);
    let first = store
        .enqueue(to_member(key(), m1, Kind::Scheduled, fire))
        .await
        .unwrap();
    let again = store
        .enqueue(to_member(key(), m1, Kind::Scheduled, fire))
        .await
        .unwrap();
    assert_eq!(
        again,
        hearth::domain::message::Enqueued::Duplicate(first.id())
    );
    assert_eq!(
        store
            .enqueue_batch(vec![to_member(key(), m1, Kind::Scheduled, fire)])
            .await
            .unwrap(),
        0
    );
    let staff = IdempotencyKey::staff(Some("script-run-7")).unwrap();
    let one = store
        .enqueue(to_member(staff.clone(), m1, Kind::Staff, fire))
        .await
        .unwrap();
    let two = store
        .enqueue(to_member(staff, m1, Kind::Staff, fire))
        .await
        .unwrap();
    assert_eq!(one.id(), two.id());
}

#[tokio::test]
async fn claims_take_the_most_urgent_due_message_and_leave_tomorrows_alone() {
    let (_dir, store) = store_with_roster().await;
    let tomorrow = Utc::now() + TimeDelta::days(1);
    let later: Vec<NewMessage> = (0..1_000)
        .map(|i| {
            to_number(
                &format!("later-{i}"),
                "+15555550199",
                Kind::Crisis,
                tomorrow,
            )
        })
        .collect();
    store.enqueue_batch(later).await.unwrap();
    let routine = store
        .enqueue(to_number(
            "routine",
            "+15555550199",
            Kind::Scheduled,
            ago(10),
        ))
        .await
        .unwrap()
        .id();
    let crisis = store
        .enqueue(to_number("crisis", "+15555550199", Kind::Crisis, ago(1)))
        .await
        .unwrap()
        .id();
    let now = Utc::now();
    let first = store.claim(&a(), now, LEASE).await.unwrap().unwrap();
    let second = store.claim(&a(), now, LEASE).await.unwrap().unwrap();
    assert_eq!((first.message.id, second.message.id), (crisis, routine));
    assert!(store.claim(&a(), now, LEASE).await.unwrap().is_none());
    let due = store.next_due().await.unwrap().unwrap();
    assert!(
        (due - tomorrow).num_seconds().abs() <= 1,
        "{due} vs {tomorrow}"
    );
}

#[tokio::test]
async fn a_number_only_message_to_a_members_number_is_claimed_with_that_members_gate() {
    let (_dir, store) = store_with_roster().await;
    store
        .enqueue(to_number("to-bo", "+15555550102", Kind::Reply, ago(1)))
        .await
        .unwrap();
    let c = store.claim(&a(), Utc::now(), LEASE).await.unwrap().unwrap();
    let gate = c.member.expect("Bo holds that number");
    assert_eq!(gate.id, member_id(&store, "M-2").await);
    assert!(
        !gate.consent,
        "Bo never consented: the last gate can see it"
    );
    assert_eq!(c.to.unwrap().as_str(), "+15555550102");
}

#[tokio::test]
async fn outbox_listings_name_members_by_external_id_and_filter_by_kind() {
    let (_dir, store) = store_with_roster().await;
    let m2 = member_id(&store, "M-2").await;
    store
        .enqueue(to_member("m".into(), m2, Kind::Staff, ago(1)))
        .await
        .unwrap();
    store
        .enqueue(to_number("n", "+15555550199", Kind::Escalation, ago(1)))
        .await
        .unwrap();
    let staff = store
        .list_messages(ListFilter {
            kind: Some(Kind::Staff),
            limit: 10,
            ..Default::default()
        })
        .await
        .unwrap();
    assert_eq!(staff.len(), 1);
    assert_eq!(staff[0].member_external_id.as_deref(), Some("M-2"));
    let all = store
        .list_messages(ListFilter {
            limit: 10,
            ..Default::default()
        })
        .await
        .unwrap();
    assert_eq!(all.len(), 2);
    assert_eq!(all[0].member_external_id, None, "a number-only message");
}

#[tokio::test]
async fn two_daemons_claiming_from_one_database_never_take_the_same_message() {
    let dir = tempfile::tempdir().unwrap();
    let one = open(dir.path());
    let two = open(dir.path());
    const N: usize = 300;
    let batch = (0..N)
        .map(|i| to_number(&format!("m{i}"), "+15555550199", Kind::Escalation, ago(1)))
        .collect();
    one.enqueue_batch(batch).await.unwrap();
    let run = |store: SqliteStore, who: InstanceId| {
        tokio::spawn(async move {
            let mut ids = Vec::new();
            while let Some(c) = store.claim(&who, Utc::now(), LEASE).await.unwrap() {
                ids.push(c.message.id);
            }
            ids
        })
    };
    let (x, y) = tokio::join!(run(one, a()), run(two, b()));
    let (x, y) = (x.unwrap(), y.unwrap());
    let mut all: Vec<i64> = x.iter().chain(&y).copied().collect();
    all.sort();
    all.dedup();
    assert_eq!(x.len() + y.len(), N, "each message claimed once");
    assert_eq!(all.len(), N);
}

/// Holds every text whose body is `hold`; processes the rest.
struct HoldSome {
    seen: AtomicUsize,
}

impl InboundHandler for HoldSome {
    fn handle<'a>(
        &'a self,
        row: &'a InboundRow,
    ) -> std::pin::Pin<Box<dyn std::future::Future<Output = Handled> + Send + 'a>> {
        self.seen.fetch_add(1, Ordering::SeqCst);
        Box::pin(async move {
            if row.sms.body == "hold" {
                Handled::Held
            } else {
                Handled::Processed("answered".into())
            }
        })
    }
}

fn text(n: usize, body: &str) -> InboundSms {
    InboundSms {
        provider: "inject".into(),
        provider_message_id: format!("t-{n}"),
        from: "+15555550101".into(),
        to: "+10000000000".into(),
        body: body.into(),
        keyword: None,
    }
}

#[tokio::test]
async fn held_inbound_texts_never_starve_newer_ones() {
    let (_dir, store) = store_with_roster().await;
    // More held rows than a page: reading "the first page" again and again
    // would never reach the texts behind them.
    for n in 0..5 {
        store.record_inbound(text(n, "hold")).await.unwrap();
    }
    for n in 5..8 {
        store.record_inbound(text(n, "yes")).await.unwrap();
    }
    let handler = Arc::new(HoldSome {
        seen: AtomicUsize::new(0),
    });
    let worker =
        InboundWorker::new(store.clone(), handler.clone(), Default::default()).with_page(2);
    assert_eq!(worker.drain().await.unwrap(), 3);
    assert_eq!(
        handler.seen.load(Ordering::SeqCst),
        8,
        "every row seen once"
    );
    let left = store.unprocessed_after(0, 100).await.unwrap();
    assert_eq!(left.len(), 5);
    assert!(left.iter().all(|r| r.sms.body == "hold"));
    // Newer texts behind the held ones are still handled next time.
    store.record_inbound(text(9, "yes")).await.unwrap();
    assert_eq!(worker.drain().await.unwrap(), 1);
    // The cursor pages by id.
    let page = store.unprocessed_after(left[1].id, 2).await.unwrap();
    assert_eq!(
        page.iter().map(|r| r.id).collect::<Vec<_>>(),
        vec![left[2].id, left[3].id]
    );
}

#[tokio::test]
async fn an_inbound_text_is_audited_by_the_senders_external_id() {
    let (_dir, store) = store_with_roster().await;
    store.record_inbound(text(1, "hi")).await.unwrap();
    assert_eq!(
        actions(&store, 1).await,
        vec![("sms.receive".into(), Some("member:M-1".into()))]
    );
}

fn hearth(dir: &Path, args: &[&str]) -> std::process::Output {
    std::process::Command::new(env!("CARGO_BIN_EXE_hearth"))
        .arg("--settings")
        .arg(dir.join("hearth.yaml"))
        .args(["--actor", "staff-tester"])
        .args(args)
        .env_remove("HEARTH_SETTINGS")
        .env("HEARTH_LOG", "info")
        .output()
        .unwrap()
}

fn out(o: &std::process::Output) -> (Option<i32>, String, String) {
    (
        o.status.code(),
        String::from_utf8_lossy(&o.stdout).into_owned(),
        String::from_utf8_lossy(&o.stderr).into_owned(),
    )
}

#[tokio::test]
async fn outbox_retry_by_filter_says_how_many_and_list_names_members_by_external_id() {
    let dir = tempfile::tempdir().unwrap();
    crate::support::write(
        &dir.path().join("hearth.yaml"),
        &crate::support::settings_yaml(),
    );
    crate::support::write(
        &dir.path().join("rules/rules.yaml"),
        "templates:\n  hello: { body: \"Hi\" }\n",
    );
    {
        let db = dir.path().join("state/hearth.db");
        let (store, _) = SqliteStore::open_at(
            &db,
            &KeySource::Generated(hearth::store::sqlite::default_key_file(&db)),
        )
        .unwrap();
        crate::support::import_roster(&store, ROSTER).await;
        let m1 = member_id(&store, "M-1").await;
        store
            .enqueue(to_member("to-ann".into(), m1, Kind::Staff, ago(1)))
            .await
            .unwrap();
        let c = store.claim(&a(), Utc::now(), LEASE).await.unwrap().unwrap();
        store
            .settle_claim(
                &c.lease,
                Outcome::Failed {
                    reason: "bad".into(),
                },
            )
            .await
            .unwrap();
        settled(
            &store,
            "n1",
            Outcome::Failed {
                reason: "bad".into(),
            },
        )
        .await;
        settled(
            &store,
            "s1",
            Outcome::Sent {
                provider: "kannel".into(),
                provider_message_id: None,
            },
        )
        .await;
    }
    let d = dir.path();

    let (code, _, err) = out(&hearth(d, &["outbox", "retry", "--state", "sent"]));
    assert_eq!(code, Some(1));
    assert!(
        err.contains("sent messages are never queued again") && err.contains("\n  hint: "),
        "{err}"
    );
    let (code, _, err) = out(&hearth(d, &["outbox", "retry"]));
    assert_eq!(code, Some(1));
    assert!(err.contains("needs message ids or a filter"), "{err}");
    let (code, _, err) = out(&hearth(
        d,
        &["outbox", "retry", "--state", "failed", "--since", "2 hours"],
    ));
    assert_eq!(code, Some(1));
    assert!(
        err.contains("--since") && err.contains("`2 hours`"),
        "{err}"
    );

    let (code, stdout, err) = out(&hearth(
        d,
        &["outbox", "retry", "--state", "failed", "--since", "2h"],
    ));
    assert_eq!(code, Some(0), "{err}");
    assert_eq!(stdout, "2 messages queued again\n");

    let (code, list, _) = out(&hearth(d, &["outbox", "list", "--state", "queued"]));
    assert_eq!(code, Some(0));
    assert!(
        list.contains(" M-1 ") && list.ends_with("2 messages\n"),
        "{list}"
    );
    assert!(!list.contains("5555550"), "never a phone number:\n{list}");
    let (code, list, _) = out(&hearth(d, &["outbox", "list", "--state", "sent"]));
    assert_eq!(code, Some(0));
    assert!(list.ends_with("1 message\n"), "sent stays sent:\n{list}");

    let (code, _, err) = out(&hearth(d, &["outbox", "list", "--kind", "bogus"]));
    assert_eq!(code, Some(1));
    assert!(
        err.contains("--kind: unknown value `bogus`") && err.contains("hint: one of crisis"),
        "{err}"
    );

    let (_, tail, _) = out(&hearth(d, &["audit", "tail", "-n", "2"]));
    assert!(
        tail.contains("outbox.retry") && tail.contains("member:M-1"),
        "{tail}"
    );
}

async fn states(store: &SqliteStore) -> Vec<(i64, OutState)> {
    let mut all: Vec<(i64, OutState)> = store
        .list_messages(ListFilter {
            limit: 1_000,
            ..Default::default()
        })
        .await
        .unwrap()
        .into_iter()
        .map(|m| (m.id, m.state))
        .collect();
    all.sort_by_key(|(id, _)| *id);
    all
}

#[tokio::test]
async fn random_claims_settles_reports_retries_and_lapses_only_ever_make_allowed_moves() {
    let (_dir, store) = store_with_roster().await;
    for i in 0..8 {
        store
            .enqueue(to_number(
                &format!("m{i}"),
                "+15555550199",
                Kind::Escalation,
                ago(1),
            ))
            .await
            .unwrap();
    }
    let mut rng = Rng::new(0x9E37_79B9_7F4A_7C15);
    let mut clock = Utc::now();
    let mut leases = Vec::new();
    let mut moves = 0;
    for step in 0..400 {
        let before = states(&store).await;
        clock += TimeDelta::seconds(rng.below(20) as i64);
        let id = 1 + rng.below(8) as i64;
        let holder = if rng.below(2) == 0 { a() } else { b() };
        match rng.below(7) {
            0 | 1 => {
                if let Some(c) = store.claim(&holder, clock, LEASE).await.unwrap() {
                    leases.push(c.lease);
                }
            }
            2 | 3 if !leases.is_empty() => {
                let lease = leases.swap_remove(rng.below(leases.len()));
                let outcome = match rng.below(6) {
                    0 => Outcome::Sent {
                        provider: "p".into(),
                        provider_message_id: Some(format!("p{step}")),
                    },
                    1 => Outcome::Retry {
                        at: clock,
                        reason: "r".into(),
                    },
                    2 => Outcome::Defer {
                        until: clock,
                        reason: "d".into(),
                    },
                    3 => Outcome::Failed { reason: "f".into() },
                    4 => Outcome::Suppressed { reason: "s".into() },
                    _ => Outcome::Expired { reason: "e".into() },
                };
                store.settle_claim(&lease, outcome).await.unwrap();
            }
            4 => {
                let report = [
                    Report::Sent,
                    Report::Delivered,
                    Report::Undelivered,
                    Report::Failed,
                ][rng.below(4)];
                store
                    .apply_report(ReportFor::Outbox(id), report, None)
                    .await
                    .unwrap();
            }
            5 => {
                let filter = RetryFilter {
                    ids: vec![id],
                    ..Default::default()
                };
                let _ = store.retry(filter, "staff").await; // refused unless retryable
            }
            _ => {
                if rng.below(2) == 0 {
                    let _ = store.cancel(id, "staff").await; // refused unless queued
                } else {
                    store.expire_leases(clock).await.unwrap();
                }
            }
        }
        let after = states(&store).await;
        for ((id, from), (_, to)) in before.iter().zip(&after) {
            if from != to {
                assert!(
                    from.may_move(*to),
                    "step {step}: message #{id} moved {from} → {to}"
                );
                moves += 1;
            }
        }
    }
    assert!(moves > 100, "the walk exercised the states ({moves} moves)");
}

#[tokio::test]
async fn an_urgent_lane_claims_only_urgent_kinds_however_long_routine_ones_have_waited() {
    let (_dir, store) = store_with_roster().await;
    store
        .enqueue(to_number(
            "old-routine",
            "+15555550199",
            Kind::Scheduled,
            ago(60),
        ))
        .await
        .unwrap();
    let now = Utc::now();
    assert!(
        store
            .claim_of_kinds(&a(), now, LEASE, &Kind::URGENT)
            .await
            .unwrap()
            .is_none()
    );
    let crisis = store
        .enqueue(to_number("crisis", "+15555550199", Kind::Crisis, ago(1)))
        .await
        .unwrap()
        .id();
    let c = store
        .claim_of_kinds(&a(), now, LEASE, &Kind::URGENT)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(c.message.id, crisis);
    assert!(
        store
            .claim_of_kinds(&a(), now, LEASE, &[])
            .await
            .unwrap()
            .is_none()
    );
}
