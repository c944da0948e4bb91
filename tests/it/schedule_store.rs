//! The scheduler's store on real encrypted SQLite files: schedule marks,
//! fire records, planned and capped messages, cancelling a schedule's
//! queued messages, survey runs, the frequency-cap counts, and the
//! fan-out's recipients.

use std::path::Path;

use chrono::{DateTime, TimeDelta, Utc};
use hearth::domain::member::AuditVerified as Verified;
use hearth::domain::member::{ConsentAction, ConsentSource};
use hearth::domain::message::{
    Enqueued, IdempotencyKey, Kind, NewMessage, OutState, Plan, Report, ReportFor, SurveyStart,
};
use hearth::store::prelude::*;
use hearth::store::sqlite::{KeySource, SqliteStore};
use hearth::store::traits::outbox::{InstanceId, Outcome};
use hearth::store::traits::schedule::{FireRecord, FireStatus, ScheduleMark};
use hearth::store::traits::{OutboxStore, ScheduleStore};

const ROSTER: &str = "external_id,first_name,phone,timezone,groups,consent
M-1,Ann,+15555550101,America/New_York,tuesday-anxiety;thursday-grief,yes
M-2,Bo,+15555550102,America/Chicago,thursday-grief,yes
M-3,Cy,+15555550103,Europe/London,tuesday-anxiety,no
M-4,Di,+15555550104,Asia/Kolkata,,yes
M-5,Ed,+15555550105,Australia/Adelaide,tuesday-anxiety,yes
";

fn open(dir: &Path) -> SqliteStore {
    crate::support::open_store(dir)
}

async fn import_roster(store: &SqliteStore, csv: &str) {
    crate::support::import_roster_in(store, csv, &["tuesday-anxiety", "thursday-grief"]).await;
}

async fn with_roster() -> (tempfile::TempDir, SqliteStore) {
    let dir = tempfile::tempdir().unwrap();
    let store = open(dir.path());
    import_roster(&store, ROSTER).await;
    (dir, store)
}

async fn id_of(store: &SqliteStore, external: &str) -> i64 {
    store.member(external).await.unwrap().unwrap().id
}

fn t(s: &str) -> DateTime<Utc> {
    DateTime::parse_from_rfc3339(s).unwrap().with_timezone(&Utc)
}

/// Whole seconds, as the store keeps instants (to the millisecond).
fn secs(t: DateTime<Utc>) -> DateTime<Utc> {
    DateTime::from_timestamp(t.timestamp(), 0).unwrap()
}

fn ago(minutes: i64) -> DateTime<Utc> {
    secs(Utc::now() - TimeDelta::minutes(minutes))
}

fn plan(schedule: &str, fire: DateTime<Utc>, version: &str) -> Plan {
    Plan {
        schedule: schedule.into(),
        fire,
        generation: 3,
        version: version.into(),
        survey: None,
    }
}

/// A message `schedule` planned for `member` at `fire`, due at `due`.
fn planned(
    schedule: &str,
    version: &str,
    fire: DateTime<Utc>,
    member: i64,
    due: DateTime<Utc>,
) -> NewMessage {
    NewMessage {
        idempotency_key: IdempotencyKey::scheduled(schedule, fire, member),
        member_id: Some(member),
        to: None,
        body: "Group meets tomorrow at 6.".into(),
        kind: Kind::Scheduled,
        not_before: due,
        expires_at: None,
        plan: Some(plan(schedule, fire, version)),
        suppressed: None,
    }
}

fn staff(key: &str, member: i64, due: DateTime<Utc>) -> NewMessage {
    NewMessage {
        idempotency_key: IdempotencyKey::staff(Some(key)).unwrap(),
        member_id: Some(member),
        to: None,
        body: "Call us back.".into(),
        kind: Kind::Staff,
        not_before: due,
        expires_at: None,
        plan: None,
        suppressed: None,
    }
}

fn holder() -> InstanceId {
    InstanceId::new("daemon-a").unwrap()
}

/// Enqueues `m` (which must be the only due message) and takes it
/// through a claim to `outcome`, as the dispatcher does; `None` leaves it
/// `sending`.
async fn through(store: &SqliteStore, m: NewMessage, outcome: Option<Outcome>) -> i64 {
    let id = store.enqueue(m).await.unwrap().id();
    let c = store
        .claim(&holder(), Utc::now(), TimeDelta::seconds(60))
        .await
        .unwrap()
        .expect("a due message");
    assert_eq!(c.message.id, id, "the only due message");
    if let Some(outcome) = outcome {
        store.settle_claim(&c.lease, outcome).await.unwrap();
    }
    id
}

fn sent() -> Option<Outcome> {
    Some(Outcome::Sent {
        provider: "kannel".into(),
        provider_message_id: None,
    })
}

async fn row(store: &SqliteStore, id: i64) -> hearth::domain::message::OutboxMessage {
    OutboxStore::message(store, id).await.unwrap().unwrap()
}

#[tokio::test]
async fn schedule_marks_are_replaced_removed_and_survive_reopening_the_file() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(dir.path());
    assert!(store.schedule_marks().await.unwrap().is_empty());
    let mark = |s: &str, v: &str, at: &str| ScheduleMark {
        schedule: s.into(),
        version: v.into(),
        last_fire: t(at),
    };
    store
        .set_schedule_mark(mark("weekly", "v1", "2026-03-08T07:00:00Z"))
        .await
        .unwrap();
    store
        .set_schedule_mark(mark("daily", "v1", "2026-03-08T14:30:00Z"))
        .await
        .unwrap();
    store
        .set_schedule_mark(mark("weekly", "v2", "2026-03-15T07:00:00Z"))
        .await
        .unwrap();
    store.remove_schedule_mark("daily").await.unwrap();
    store.remove_schedule_mark("never-existed").await.unwrap();
    drop(store);

    let store = open(dir.path());
    assert_eq!(
        store.schedule_marks().await.unwrap(),
        vec![mark("weekly", "v2", "2026-03-15T07:00:00Z")]
    );
}

#[tokio::test]
async fn a_fire_record_is_updated_in_place_per_schedule_fire_and_scope_and_listed_newest_first() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(dir.path());
    let rec = |s: &str, fire: &str, scope: &str, status, enqueued| FireRecord {
        schedule: s.into(),
        fire: t(fire),
        scope: scope.into(),
        status,
        enqueued,
        suppressed: 0,
        generation: 7,
        version: "v1".into(),
        note: None,
    };
    let f1 = "2026-11-01T05:30:00Z";
    let f2 = "2026-11-01T06:30:00Z";
    store
        .record_fire(rec(
            "hourly",
            f1,
            "tz:America/New_York",
            FireStatus::Started,
            0,
        ))
        .await
        .unwrap();
    let mut done = rec("hourly", f1, "tz:America/New_York", FireStatus::Done, 40);
    done.suppressed = 2;
    done.note = Some("2 capped".into());
    store.record_fire(done.clone()).await.unwrap();
    store
        .record_fire(rec("hourly", f1, "tz:America/Chicago", FireStatus::Done, 3))
        .await
        .unwrap();
    let missed = rec("daily", f2, "all", FireStatus::Missed, 0);
    store.record_fire(missed.clone()).await.unwrap();
    drop(store);

    let store = open(dir.path());
    let all = store.fire_records(None, 10).await.unwrap();
    assert_eq!(all.len(), 3, "the started record was updated, not added");
    assert_eq!(all[0], missed, "newest fire first");
    assert_eq!(
        store.fire_records(Some("hourly"), 10).await.unwrap(),
        vec![
            rec("hourly", f1, "tz:America/Chicago", FireStatus::Done, 3),
            done
        ]
    );
    assert_eq!(store.fire_records(None, 1).await.unwrap(), vec![missed]);
    assert!(
        store
            .fire_records(Some("nope"), 10)
            .await
            .unwrap()
            .is_empty()
    );
}

#[tokio::test]
async fn a_planned_message_reads_back_its_plan_and_the_schedule_that_planned_it() {
    let (_dir, store) = with_roster().await;
    let m1 = id_of(&store, "M-1").await;
    let fire = t("2026-03-07T22:00:00Z");
    let id = store
        .enqueue(planned("day-before", "v9", fire, m1, ago(-60)))
        .await
        .unwrap()
        .id();
    let r = row(&store, id).await;
    assert_eq!(r.state, OutState::Queued);
    assert_eq!(r.plan, Some(plan("day-before", fire, "v9")));
    let unplanned = store.enqueue(staff("k1", m1, ago(-60))).await.unwrap().id();
    assert_eq!(row(&store, unplanned).await.plan, None);
}

#[tokio::test]
async fn a_message_capped_at_fan_out_is_stored_suppressed_never_claimed_and_holds_its_key() {
    let (_dir, store) = with_roster().await;
    let (m1, m2) = (id_of(&store, "M-1").await, id_of(&store, "M-2").await);
    let fire = ago(5);
    let mut capped = planned("checkin", "v1", fire, m1, ago(5));
    capped.suppressed = Some("frequency cap: 1 routine message a day".into());
    let other = planned("checkin", "v1", fire, m2, ago(-600));
    assert_eq!(
        store
            .enqueue_batch(vec![capped.clone(), other.clone()])
            .await
            .unwrap(),
        2
    );
    assert!(
        store
            .claim(&holder(), Utc::now(), TimeDelta::seconds(60))
            .await
            .unwrap()
            .is_none(),
        "the capped message is due but never claimable"
    );

    // The fire runs again (a restart): nothing new, the cap stands.
    assert_eq!(
        store
            .enqueue_batch(vec![capped.clone(), other])
            .await
            .unwrap(),
        0
    );
    let mut uncapped = capped.clone();
    uncapped.suppressed = None;
    let Enqueued::Duplicate(id) = store.enqueue(uncapped).await.unwrap() else {
        panic!("the key is taken");
    };
    let r = row(&store, id).await;
    assert_eq!(r.state, OutState::Suppressed);
    assert_eq!(
        r.reason.as_deref(),
        Some("frequency cap: 1 routine message a day")
    );
    assert!(r.plan.is_some());
}

#[tokio::test]
async fn cancel_planned_suppresses_only_that_schedules_queued_rows_of_other_versions_with_one_audit_entry()
 {
    let (_dir, store) = with_roster().await;
    let (m1, m2, m4) = (
        id_of(&store, "M-1").await,
        id_of(&store, "M-2").await,
        id_of(&store, "M-4").await,
    );
    let f1 = t("2026-03-01T14:00:00Z");
    let f2 = t("2026-03-02T14:00:00Z");
    let later = ago(-24 * 60);
    // Already with a provider (or on its way): never touched.
    let at_provider = through(&store, planned("daily", "v1", f1, m1, ago(5)), sent()).await;
    let sending = through(&store, planned("daily", "v1", f1, m2, ago(5)), None).await;
    // Queued for later under the old version, the new one, and another schedule.
    let old = store
        .enqueue(planned("daily", "v1", f2, m1, later))
        .await
        .unwrap()
        .id();
    let old2 = store
        .enqueue(planned("daily", "v1", f2, m4, later))
        .await
        .unwrap()
        .id();
    let kept = store
        .enqueue(planned("daily", "v2", f2, m2, later))
        .await
        .unwrap()
        .id();
    let other = store
        .enqueue(planned("weekly", "v1", f2, m1, later))
        .await
        .unwrap()
        .id();
    let audit_before = store.audit_tail(1000).await.unwrap().len();

    assert_eq!(
        store.planned_versions().await.unwrap(),
        vec![
            ("daily".to_string(), "v1".to_string(), 2),
            ("daily".to_string(), "v2".to_string(), 1),
            ("weekly".to_string(), "v1".to_string(), 1),
        ],
        "queued planned rows only"
    );

    let n = store
        .cancel_planned("daily", Some("v2"), "schedule daily changed")
        .await
        .unwrap();
    assert_eq!(n, 2);
    for id in [old, old2] {
        let r = row(&store, id).await;
        assert_eq!(r.state, OutState::Suppressed);
        assert_eq!(r.reason.as_deref(), Some("schedule daily changed"));
    }
    assert_eq!(row(&store, kept).await.state, OutState::Queued);
    assert_eq!(row(&store, other).await.state, OutState::Queued);
    assert_eq!(row(&store, at_provider).await.state, OutState::Sent);
    assert_eq!(row(&store, sending).await.state, OutState::Sending);

    let audit = store.audit_tail(1000).await.unwrap();
    assert_eq!(audit.len(), audit_before + 1, "one entry for the lot");
    let entry = audit.last().unwrap();
    assert_eq!(entry.action, "schedule.cancel");
    assert_eq!(entry.detail["schedule"], "daily");
    assert_eq!(entry.detail["count"], 2);
    assert_eq!(entry.detail["reason"], "schedule daily changed");
    assert!(
        matches!(store.audit_verify().await.unwrap(), Verified::Intact { .. }),
        "the chain is intact"
    );

    // Removing the schedule cancels every version; nothing left, no entry.
    assert_eq!(
        store
            .cancel_planned("daily", None, "schedule daily removed")
            .await
            .unwrap(),
        1
    );
    assert_eq!(row(&store, kept).await.state, OutState::Suppressed);
    assert_eq!(
        store
            .cancel_planned("daily", None, "schedule daily removed")
            .await
            .unwrap(),
        0
    );
    assert_eq!(
        store.audit_tail(1000).await.unwrap().len(),
        audit_before + 2
    );
    assert_eq!(
        store.planned_versions().await.unwrap(),
        vec![("weekly".to_string(), "v1".to_string(), 1)]
    );
}

fn with_survey(mut m: NewMessage, survey: &str, expires_at: DateTime<Utc>) -> NewMessage {
    m.plan.as_mut().unwrap().survey = Some(SurveyStart {
        survey: survey.into(),
        expires_at,
    });
    m
}

#[tokio::test]
async fn a_survey_run_is_opened_for_a_new_row_only_and_is_open_once_its_message_is_sent() {
    let (_dir, store) = with_roster().await;
    let m1 = id_of(&store, "M-1").await;
    let fire = ago(2);
    let expires = ago(-240);
    let first = with_survey(
        planned("mood", "v1", fire, m1, ago(2)),
        "mood-checkin",
        expires,
    );
    let id = store.enqueue(first.clone()).await.unwrap().id();
    assert_eq!(
        row(&store, id).await.plan.unwrap().survey,
        Some(SurveyStart {
            survey: "mood-checkin".into(),
            expires_at: expires
        })
    );
    assert_eq!(
        store.open_survey(m1, Utc::now()).await.unwrap(),
        None,
        "not open while the question is only queued"
    );

    // The same fire again, even with another survey: no second run.
    let again = with_survey(planned("mood", "v1", fire, m1, ago(2)), "other", expires);
    assert_eq!(store.enqueue_batch(vec![again]).await.unwrap(), 0);
    assert_eq!(
        row(&store, id).await.plan.unwrap().survey.unwrap().survey,
        "mood-checkin"
    );

    let c = store
        .claim(&holder(), Utc::now(), TimeDelta::seconds(60))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(c.message.id, id);
    assert_eq!(
        c.message
            .plan
            .as_ref()
            .unwrap()
            .survey
            .as_ref()
            .unwrap()
            .survey,
        "mood-checkin",
        "the dispatcher sees the plan"
    );
    assert_eq!(store.open_survey(m1, Utc::now()).await.unwrap(), None);
    store.settle_claim(&c.lease, sent().unwrap()).await.unwrap();

    let run = store
        .open_survey(m1, Utc::now())
        .await
        .unwrap()
        .expect("open once sent");
    assert_eq!(run.survey, "mood-checkin");
    assert_eq!(run.outbox_id, id);
    assert_eq!(run.member_id, m1);
    assert_eq!(run.schedule.as_deref(), Some("mood"));
    assert_eq!(run.question, 0);
    assert_eq!(run.expires_at, Some(expires));
    assert_eq!(run.opened_at, row(&store, id).await.not_before);
    assert_eq!(
        store
            .open_survey(m1, expires + TimeDelta::seconds(1))
            .await
            .unwrap(),
        None,
        "expired"
    );
    assert_eq!(
        store
            .open_survey(id_of(&store, "M-2").await, Utc::now())
            .await
            .unwrap(),
        None,
        "another member's"
    );
}

#[tokio::test]
async fn a_delivery_report_for_a_queued_survey_question_opens_its_survey_and_the_newest_open_one_wins()
 {
    let (_dir, store) = with_roster().await;
    let m2 = id_of(&store, "M-2").await;
    let expires = ago(-240);
    let older = store
        .enqueue(with_survey(
            planned("mood", "v1", ago(60), m2, ago(60)),
            "mood-checkin",
            expires,
        ))
        .await
        .unwrap()
        .id();
    let newer = store
        .enqueue(with_survey(
            planned("sleep", "v1", ago(30), m2, ago(30)),
            "sleep-diary",
            expires,
        ))
        .await
        .unwrap()
        .id();
    // A report that overtook a lapsed lease: queued → delivered.
    for id in [older, newer] {
        let state = store
            .apply_report(ReportFor::Outbox(id), Report::Delivered, None)
            .await
            .unwrap();
        assert_eq!(state, Some(OutState::Delivered));
    }
    let run = store.open_survey(m2, Utc::now()).await.unwrap().unwrap();
    assert_eq!(run.survey, "sleep-diary");
    assert_eq!(run.outbox_id, newer);
}

#[tokio::test]
async fn routine_counts_take_only_scheduled_messages_that_went_or_may_still_go_out() {
    let (_dir, store) = with_roster().await;
    let (m1, m2) = (id_of(&store, "M-1").await, id_of(&store, "M-2").await);
    let since = ago(60);
    let fire = |minutes| ago(minutes);
    // Due two hours ago but sent now: counts at its send time.
    let sent_late = through(&store, planned("a", "v1", fire(120), m1, ago(120)), sent()).await;
    let delivered = through(&store, planned("b", "v1", fire(50), m1, ago(50)), sent()).await;
    store
        .apply_report(ReportFor::Outbox(delivered), Report::Delivered, None)
        .await
        .unwrap();
    let sending = through(&store, planned("c", "v1", fire(40), m1, ago(40)), None).await;
    // Not counted: failed, expired, suppressed at the gate, capped at fan-out.
    let failed = through(
        &store,
        planned("d", "v1", fire(30), m1, ago(30)),
        Some(Outcome::Failed {
            reason: "bad number".into(),
        }),
    )
    .await;
    let expired = through(
        &store,
        planned("e", "v1", fire(30), m1, ago(30)),
        Some(Outcome::Expired {
            reason: "too late".into(),
        }),
    )
    .await;
    let gated = through(
        &store,
        planned("f", "v1", fire(30), m1, ago(30)),
        Some(Outcome::Suppressed {
            reason: "no consent".into(),
        }),
    )
    .await;
    let mut capped = planned("g", "v1", fire(30), m1, ago(30));
    capped.suppressed = Some("capped".into());
    store.enqueue(capped).await.unwrap();
    // Not routine: a staff message, sent.
    through(&store, staff("s1", m1, ago(20)), sent()).await;
    // Queued for later: counts at fan-out (planned time), not at the gate.
    let queued_at = ago(-120);
    store
        .enqueue(planned("h", "v1", fire(10), m1, queued_at))
        .await
        .unwrap();
    // m2: one queued row planned after `since`, one before it.
    store
        .enqueue(planned("i", "v1", fire(90), m2, ago(-30)))
        .await
        .unwrap();
    store
        .enqueue(planned("j", "v1", fire(200), m2, ago(200)))
        .await
        .unwrap();

    let times = store.routine_times(since).await.unwrap();
    let mine = &times[&m1];
    assert_eq!(
        mine.len(),
        4,
        "sent late, delivered, sending, queued; the late one at its send time: {mine:?}"
    );
    assert!(mine.contains(&queued_at));
    assert!(mine.contains(&row(&store, sending).await.not_before));
    assert!(mine.iter().all(|t| *t >= since));
    assert_eq!(
        times.get(&m2).map(Vec::len),
        Some(1),
        "only m2's row planned after `since`"
    );
    for (id, state) in [
        (failed, OutState::Failed),
        (expired, OutState::Expired),
        (gated, OutState::Suppressed),
    ] {
        assert_eq!(row(&store, id).await.state, state);
    }

    let to = Utc::now() + TimeDelta::minutes(1);
    assert_eq!(
        store.routine_sent(m1, since, to, 0).await.unwrap(),
        3,
        "sent (late), delivered, sending"
    );
    assert_eq!(store.routine_sent(m1, since, to, sending).await.unwrap(), 2);
    assert_eq!(
        store
            .routine_sent(m1, to, to + TimeDelta::hours(1), 0)
            .await
            .unwrap(),
        0,
        "`to` is exclusive and nothing is later"
    );
    assert_eq!(store.routine_sent(m2, since, to, 0).await.unwrap(), 0);
    let late = row(&store, sent_late).await;
    assert!(late.not_before < since && late.updated_at >= since);
}

async fn grant_by_keyword(store: &SqliteStore, external: &str) {
    store
        .record_consent(
            external,
            ConsentAction::Granted,
            ConsentSource::Keyword,
            "START",
            "member",
        )
        .await
        .unwrap();
}

#[tokio::test]
async fn recipients_are_the_active_consenting_members_exactly_as_members_lists_them() {
    let (_dir, store) = with_roster().await;
    // M-2 stops; M-5 stops and starts again; M-4 is deactivated.
    store
        .record_consent(
            "M-2",
            ConsentAction::Revoked,
            ConsentSource::Keyword,
            "STOP",
            "member",
        )
        .await
        .unwrap();
    store
        .record_consent(
            "M-5",
            ConsentAction::Revoked,
            ConsentSource::Keyword,
            "STOP",
            "member",
        )
        .await
        .unwrap();
    grant_by_keyword(&store, "M-5").await;
    store.deactivate("M-4", "staff-1").await.unwrap();

    let recipients = store.recipients().await.unwrap();
    let mut expected: Vec<_> = store
        .members(None)
        .await
        .unwrap()
        .into_iter()
        .filter(|m| m.status == hearth::domain::member::MemberStatus::Active && m.consent.granted())
        .collect();
    expected.sort_by_key(|m| m.id);
    let ids = |ms: &[hearth::domain::member::Member]| {
        ms.iter().map(|m| m.external_id.clone()).collect::<Vec<_>>()
    };
    assert_eq!(ids(&recipients), vec!["M-1", "M-5"]);
    assert_eq!(recipients, expected, "groups, attributes and consent alike");
    assert_eq!(
        recipients[0].groups,
        vec!["thursday-grief".to_string(), "tuesday-anxiety".to_string()]
    );
    assert_eq!(
        recipients[1].consent.last.as_ref().unwrap().text,
        "START",
        "the newest consent event"
    );
    assert_eq!(store.sendable_member_ids().await.unwrap(), {
        recipients.iter().map(|m| m.id).collect::<Vec<_>>()
    });
}

#[tokio::test]
async fn recipient_pages_filter_by_group_and_timezone_and_resume_after_an_id() {
    use hearth::store::traits::schedule::RecipientFilter;
    let (_dir, store) = with_roster().await;
    let page = |filter: RecipientFilter, after: i64, limit: usize| {
        let store = store.clone();
        async move {
            store
                .recipients_page(&filter, after, limit)
                .await
                .unwrap()
                .into_iter()
                .map(|m| m.external_id)
                .collect::<Vec<_>>()
        }
    };
    let all = RecipientFilter::default();
    // M-3 has no consent.
    assert_eq!(page(all.clone(), 0, 10).await, ["M-1", "M-2", "M-4", "M-5"]);
    assert_eq!(page(all.clone(), 0, 2).await, ["M-1", "M-2"]);
    let m2 = id_of(&store, "M-2").await;
    assert_eq!(page(all.clone(), m2, 2).await, ["M-4", "M-5"]);
    let tuesday = RecipientFilter {
        groups: vec!["tuesday-anxiety".into()],
        timezones: vec![],
    };
    assert_eq!(page(tuesday.clone(), 0, 10).await, ["M-1", "M-5"]);
    let zoned = RecipientFilter {
        groups: vec!["tuesday-anxiety".into(), "thursday-grief".into()],
        timezones: vec!["America/Chicago".into(), "Australia/Adelaide".into()],
    };
    assert_eq!(page(zoned, 0, 10).await, ["M-2", "M-5"]);
    // A page holds exactly what the full list holds for those members.
    let full = store.recipients().await.unwrap();
    let paged = store.recipients_page(&all, 0, 10).await.unwrap();
    assert_eq!(full, paged);
}

#[tokio::test]
async fn member_zones_are_the_distinct_zones_of_active_members() {
    let (_dir, store) = with_roster().await;
    import_roster(
        &store,
        "external_id,first_name,phone,timezone,consent\nM-6,Fay,+15555550106,America/New_York,yes\n",
    )
    .await;
    store.deactivate("M-4", "staff-1").await.unwrap();
    assert_eq!(
        store.member_zones().await.unwrap(),
        vec![
            "America/Chicago",
            "America/New_York",
            "Australia/Adelaide",
            "Europe/London"
        ],
        "M-3 has no consent but is active; M-4 (Kolkata) is not"
    );
}

#[tokio::test]
async fn outbox_list_names_the_schedule_that_planned_a_message() {
    let dir = tempfile::tempdir().unwrap();
    crate::support::write(
        &dir.path().join("hearth.yaml"),
        &crate::support::settings_yaml(),
    );
    let store = SqliteStore::open_at(
        &dir.path().join("state/hearth.db"),
        &KeySource::Generated(dir.path().join("state/hearth.db.key")),
    )
    .unwrap()
    .0;
    import_roster(&store, ROSTER).await;
    let m1 = id_of(&store, "M-1").await;
    store
        .enqueue(planned(
            "day-before",
            "v1",
            t("2026-03-07T22:00:00Z"),
            m1,
            ago(-60),
        ))
        .await
        .unwrap();
    store.enqueue(staff("k1", m1, ago(-60))).await.unwrap();
    drop(store);

    let out = std::process::Command::new(env!("CARGO_BIN_EXE_hearth"))
        .arg("--settings")
        .arg(dir.path().join("hearth.yaml"))
        .args(["outbox", "list"])
        .env_remove("HEARTH_SETTINGS")
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let lines: Vec<&str> = stdout.lines().collect();
    let scheduled = lines.iter().find(|l| l.contains(" scheduled ")).unwrap();
    assert!(scheduled.contains("[schedule day-before]"), "{stdout}");
    let staff_line = lines.iter().find(|l| l.contains(" staff ")).unwrap();
    assert!(!staff_line.contains("[schedule"), "{stdout}");
}

#[tokio::test]
async fn cancel_planned_fire_suppresses_only_that_fires_queued_rows_with_one_audit_entry() {
    let (_dir, store) = with_roster().await;
    let (m1, m2) = (id_of(&store, "M-1").await, id_of(&store, "M-2").await);
    let f1 = t("2026-03-09T21:00:00Z");
    let f2 = t("2026-03-16T21:00:00Z");
    let later = ago(-24 * 60);
    let gone = through(&store, planned("day-before", "v1", f1, m1, ago(5)), sent()).await;
    let queued = store
        .enqueue(planned("day-before", "v1", f1, m2, later))
        .await
        .unwrap()
        .id();
    let next_week = store
        .enqueue(planned("day-before", "v1", f2, m2, later))
        .await
        .unwrap()
        .id();
    let other = store
        .enqueue(planned("check-in", "v1", f1, m2, later))
        .await
        .unwrap()
        .id();
    assert_eq!(
        store.planned_fires().await.unwrap(),
        vec![
            ("check-in".to_string(), f1),
            ("day-before".to_string(), f1),
            ("day-before".to_string(), f2),
        ]
    );
    let before = store.audit_tail(1000).await.unwrap().len();

    let reason = "the session of 2026-03-10 was cancelled";
    assert_eq!(
        store
            .cancel_planned_fire("day-before", f1, reason)
            .await
            .unwrap(),
        1
    );
    let r = row(&store, queued).await;
    assert_eq!(r.state, OutState::Suppressed);
    assert_eq!(r.reason.as_deref(), Some(reason));
    assert_eq!(row(&store, gone).await.state, OutState::Sent);
    assert_eq!(row(&store, next_week).await.state, OutState::Queued);
    assert_eq!(row(&store, other).await.state, OutState::Queued);
    let audit = store.audit_tail(1000).await.unwrap();
    assert_eq!(audit.len(), before + 1);
    let entry = audit.last().unwrap();
    assert_eq!(entry.action, "schedule.cancel");
    assert_eq!(entry.subject.as_deref(), Some("schedule:day-before"));
    assert_eq!(entry.detail["count"], 1);
    assert!(matches!(
        store.audit_verify().await.unwrap(),
        Verified::Intact { .. }
    ));
    assert_eq!(
        store
            .cancel_planned_fire("day-before", f1, reason)
            .await
            .unwrap(),
        0,
        "nothing left to cancel, and no second entry"
    );
    assert_eq!(store.audit_tail(1000).await.unwrap().len(), before + 1);
    assert_eq!(
        store.planned_fires().await.unwrap(),
        vec![("check-in".to_string(), f1), ("day-before".to_string(), f2),]
    );
}
