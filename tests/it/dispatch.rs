//! The dispatcher and the last gate, against a real HTTP gateway on
//! loopback (the webhook provider) and a real encrypted database.

use std::collections::VecDeque;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use chrono::Utc;
use hearth::dispatch::provider::AnyProvider;
use hearth::dispatch::providers::webhook::{WebhookProvider, signature};
use hearth::dispatch::worker::{Dispatcher, ExecutionOutcome};
use hearth::domain::member::{ConsentAction, ConsentSource};
use hearth::domain::message::{InboundRow, InboundSms, Kind, NewMessage, OutState};
use hearth::pipeline::{Handled, InboundHandler, InboundWorker};
use hearth::settings::DispatchSettings;
use hearth::store::prelude::*;
use hearth::store::sqlite::{KeySource, SqliteStore};
use hearth::store::traits::OutboxStore;
use hearth::store::traits::outbox::ListFilter;

const KEY: &str = "gateway-signing-key";

/// What the fake gateway answers, request by request; then 200s.
#[derive(Clone)]
enum Answer {
    Status(u16),
    RetryAfter(u16, u64),
    Sleep(Duration),
    /// Waits for `release`, then answers with this status.
    Held(u16),
}

#[derive(Default)]
struct Gateway {
    script: Mutex<VecDeque<Answer>>,
    received: Mutex<Vec<(Instant, serde_json::Value)>>,
    forged: Mutex<usize>,
    /// While set, every request is answered 503 (an outage).
    down: std::sync::atomic::AtomicBool,
    /// Requests whose body contains this hang until `release` is notified.
    hang: Mutex<Option<String>>,
    release: tokio::sync::Notify,
    /// Notified on every request received.
    arrived: tokio::sync::Notify,
}

async fn gateway(State(gw): State<Arc<Gateway>>, headers: HeaderMap, body: Bytes) -> Response {
    let ts: i64 = headers["x-hearth-timestamp"]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    let sig = headers["x-hearth-signature"].to_str().unwrap();
    if sig != signature(KEY.as_bytes(), ts, &body) {
        *gw.forged.lock().unwrap() += 1;
        return StatusCode::UNAUTHORIZED.into_response();
    }
    let json: serde_json::Value = serde_json::from_slice(&body).unwrap();
    gw.received
        .lock()
        .unwrap()
        .push((Instant::now(), json.clone()));
    gw.arrived.notify_waiters();
    if gw.down.load(std::sync::atomic::Ordering::SeqCst) {
        return StatusCode::SERVICE_UNAVAILABLE.into_response();
    }
    let hang = gw.hang.lock().unwrap().clone();
    if let Some(h) = hang
        && json["body"].as_str().is_some_and(|b| b.contains(&h))
    {
        let released = gw.release.notified();
        released.await;
        return axum::Json(serde_json::json!({ "id": format!("gw-{}", json["id"]) }))
            .into_response();
    }
    let next = gw.script.lock().unwrap().pop_front();
    match next {
        Some(Answer::Status(code)) => StatusCode::from_u16(code).unwrap().into_response(),
        Some(Answer::RetryAfter(code, secs)) => (
            StatusCode::from_u16(code).unwrap(),
            [("retry-after", secs.to_string())],
        )
            .into_response(),
        Some(Answer::Held(code)) => {
            gw.release.notified().await;
            StatusCode::from_u16(code).unwrap().into_response()
        }
        Some(Answer::Sleep(d)) => {
            tokio::time::sleep(d).await;
            axum::Json(serde_json::json!({ "id": "late" })).into_response()
        }
        None => {
            axum::Json(serde_json::json!({ "id": format!("gw-{}", json["id"]) })).into_response()
        }
    }
}

struct Rig {
    _dir: tempfile::TempDir,
    store: SqliteStore,
    gw: Arc<Gateway>,
    dispatcher: Dispatcher<SqliteStore>,
}

fn settings() -> DispatchSettings {
    DispatchSettings {
        segments_per_second: 1000,
        burst: 1000,
        backoff_initial: Duration::from_millis(50),
        backoff_max: Duration::from_secs(5),
        timeout: Duration::from_millis(300),
        // The whole day, unless a test says otherwise.
        send_window: hearth::domain::SendWindow::new(
            chrono::NaiveTime::MIN,
            chrono::NaiveTime::MIN,
        ),
        ..DispatchSettings::default()
    }
}

async fn rig(script: Vec<Answer>, settings: DispatchSettings) -> Rig {
    let gw = Arc::new(Gateway {
        script: Mutex::new(script.into()),
        ..Gateway::default()
    });
    let app = axum::Router::new()
        .route("/send", axum::routing::post(gateway))
        .with_state(gw.clone());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await });

    let dir = tempfile::tempdir().unwrap();
    let (store, _) = SqliteStore::open_at(
        &dir.path().join("h.db"),
        &KeySource::Generated(dir.path().join("h.db.key")),
    )
    .unwrap();
    let csv = "external_id,first_name,phone,timezone,consent\nM-1,Ann,+15555550101,America/New_York,yes\nM-2,Bo,+15555550102,Pacific/Kiritimati,yes\n";
    crate::support::import_roster(&store, csv).await;
    let provider = WebhookProvider::new(
        &format!("http://{addr}/send"),
        KEY.to_owned().into(),
        settings.timeout,
    )
    .unwrap();
    let dispatcher = Dispatcher::new(
        store.clone(),
        Arc::new(AnyProvider::Webhook(provider)),
        settings,
    );
    Rig {
        _dir: dir,
        store,
        gw,
        dispatcher,
    }
}

impl Rig {
    async fn member_id(&self, ext: &str) -> i64 {
        self.store.member(ext).await.unwrap().unwrap().id
    }

    async fn enqueue(&self, key: &str, ext: &str, kind: Kind) -> i64 {
        let m = self.member_id(ext).await;
        self.store
            .enqueue(NewMessage {
                idempotency_key: key.into(),
                member_id: Some(m),
                to: None,
                body: format!("hello {key}"),
                kind,
                not_before: Utc::now(),
                expires_at: None,
                plan: None,
                suppressed: None,
            })
            .await
            .unwrap()
            .id()
    }

    /// Steps the dispatcher until the queue is empty, waiting for retries
    /// that fall due within `patience`.
    async fn drain(&self, patience: Duration) -> Vec<ExecutionOutcome> {
        let deadline = Instant::now() + patience;
        let mut out = Vec::new();
        loop {
            match self.dispatcher.try_execute_task().await.unwrap() {
                ExecutionOutcome::EmptyQueue => {
                    let pending = self
                        .store
                        .list_messages(ListFilter {
                            state: Some(OutState::Queued),
                            kind: None,
                            limit: 10,
                        })
                        .await
                        .unwrap();
                    if pending.is_empty() || Instant::now() > deadline {
                        return out;
                    }
                    tokio::time::sleep(Duration::from_millis(20)).await;
                }
                ExecutionOutcome::Paused { until } => {
                    if Instant::now() > deadline {
                        return out;
                    }
                    tokio::time::sleep_until(until.into()).await;
                }
                o => out.push(o),
            }
        }
    }

    fn requests(&self) -> usize {
        self.gw.received.lock().unwrap().len()
    }

    async fn state(&self, id: i64) -> (OutState, i64, Option<String>) {
        let r = self.store.message(id).await.unwrap().unwrap();
        (r.state, r.attempts, r.reason)
    }
}

#[tokio::test]
async fn a_message_to_a_consenting_member_is_sent_once_and_signed() {
    let r = rig(vec![], settings()).await;
    let id = r.enqueue("k1", "M-1", Kind::Scheduled).await;
    assert_eq!(
        r.drain(Duration::from_secs(2)).await,
        vec![ExecutionOutcome::Sent { id }]
    );
    assert_eq!(r.requests(), 1);
    assert_eq!(*r.gw.forged.lock().unwrap(), 0);
    let row = r.store.message(id).await.unwrap().unwrap();
    assert_eq!(row.state, OutState::Sent);
    assert_eq!(row.provider.as_deref(), Some("webhook"));
    assert_eq!(row.provider_message_id, Some(format!("gw-{id}")));
    let sent = r.gw.received.lock().unwrap()[0].1.clone();
    assert_eq!(sent["to"], "+15555550101");
    assert_eq!(sent["body"], "hello k1");
    let audit = r.store.audit_tail(1).await.unwrap();
    assert_eq!(audit[0].action, "sms.sent");
}

#[tokio::test]
async fn enqueueing_the_same_key_twice_sends_once() {
    let r = rig(vec![], settings()).await;
    let a = r.enqueue("same", "M-1", Kind::Scheduled).await;
    let b = r.enqueue("same", "M-1", Kind::Scheduled).await;
    assert_eq!(a, b);
    r.drain(Duration::from_secs(2)).await;
    assert_eq!(r.requests(), 1);
}

#[tokio::test]
async fn a_500_then_200_is_delivered_once_after_a_retry() {
    let r = rig(vec![Answer::Status(500)], settings()).await;
    let id = r.enqueue("k", "M-1", Kind::Scheduled).await;
    let outcomes = r.drain(Duration::from_secs(5)).await;
    assert!(
        matches!(outcomes[0], ExecutionOutcome::Retrying { .. }),
        "{outcomes:?}"
    );
    assert_eq!(outcomes.last(), Some(&ExecutionOutcome::Sent { id }));
    assert_eq!(r.requests(), 2);
    assert_eq!(r.state(id).await.0, OutState::Sent);
    assert_eq!(r.state(id).await.1, 2);
}

#[tokio::test]
async fn a_429_pauses_the_provider_for_as_long_as_retry_after_says() {
    let r = rig(vec![Answer::RetryAfter(429, 1)], settings()).await;
    let id = r.enqueue("k", "M-1", Kind::Scheduled).await;
    let before = Utc::now();
    let outcomes = r.drain(Duration::from_secs(5)).await;
    // Backoff alone would have retried after 50 ms; Retry-After says 1 s,
    // and it pauses the provider, not just this message.
    let ExecutionOutcome::Retrying { at, .. } = outcomes[0] else {
        panic!("{outcomes:?}")
    };
    assert!(
        at >= before + chrono::TimeDelta::seconds(1),
        "retry at {at}"
    );
    assert_eq!(
        r.dispatcher
            .counters()
            .breaker_opened
            .load(std::sync::atomic::Ordering::SeqCst),
        1
    );
    assert_eq!(outcomes.last(), Some(&ExecutionOutcome::Sent { id }));
    assert_eq!(r.state(id).await.0, OutState::Sent);
    assert_eq!(r.requests(), 2);
}

#[tokio::test]
async fn a_provider_that_times_out_is_retried() {
    let r = rig(vec![Answer::Sleep(Duration::from_secs(2))], settings()).await;
    let id = r.enqueue("k", "M-1", Kind::Scheduled).await;
    r.drain(Duration::from_secs(5)).await;
    let (state, attempts, _) = r.state(id).await;
    assert_eq!((state, attempts), (OutState::Sent, 2));
}

#[tokio::test]
async fn a_permanent_error_fails_at_once_and_transient_ones_fail_only_past_the_retry_horizon() {
    let mut script = vec![Answer::Status(400)];
    script.extend(std::iter::repeat_n(Answer::Status(503), 20));
    let r = rig(
        script,
        DispatchSettings {
            retry_horizon: Duration::from_millis(250),
            breaker_threshold: 100,
            ..settings()
        },
    )
    .await;
    let bad = r.enqueue("bad", "M-1", Kind::Scheduled).await;
    r.drain(Duration::from_secs(1)).await;
    let (state, attempts, reason) = r.state(bad).await;
    assert_eq!((state, attempts), (OutState::Failed, 1));
    assert!(reason.unwrap().contains("HTTP 400"));

    let flaky = r.enqueue("flaky", "M-1", Kind::Scheduled).await;
    r.drain(Duration::from_secs(5)).await;
    let (state, attempts, reason) = r.state(flaky).await;
    let reason = reason.unwrap();
    assert_eq!(state, OutState::Failed, "{reason}");
    assert!(attempts >= 2, "gave up after one attempt: {reason}");
    assert!(
        reason.starts_with(&format!(
            "gave up after {attempts} attempts over the retry horizon (250ms)"
        )),
        "{reason}"
    );
    assert_eq!(r.requests() as i64, 1 + attempts);
}

#[tokio::test]
async fn a_member_who_opted_out_after_queueing_is_suppressed_at_the_last_gate() {
    let r = rig(vec![], settings()).await;
    let routine = r.enqueue("routine", "M-1", Kind::Scheduled).await;
    let crisis = r.enqueue("crisis", "M-1", Kind::Crisis).await;
    r.store
        .record_consent(
            "M-1",
            ConsentAction::Revoked,
            ConsentSource::Keyword,
            "STOP",
            "member",
        )
        .await
        .unwrap();
    r.drain(Duration::from_secs(2)).await;
    let (state, _, reason) = r.state(routine).await;
    assert_eq!(state, OutState::Suppressed);
    assert!(reason.unwrap().contains("no current consent"));
    // Crisis resources still reach someone who opted out of routine texts.
    assert_eq!(r.state(crisis).await.0, OutState::Sent);
    assert_eq!(r.requests(), 1);
}

#[tokio::test]
async fn an_inactive_member_gets_nothing() {
    let r = rig(vec![], settings()).await;
    let id = r.enqueue("k", "M-1", Kind::Reply).await;
    r.store.deactivate("M-1", "staff").await.unwrap();
    r.drain(Duration::from_secs(1)).await;
    assert_eq!(r.state(id).await.0, OutState::Suppressed);
    assert_eq!(r.requests(), 0);
}

#[tokio::test]
async fn quiet_hours_defer_routine_messages_in_the_recipients_timezone_but_not_crisis() {
    let mut s = settings();
    s.send_window = hearth::domain::SendWindow::new(
        chrono::NaiveTime::from_hms_opt(8, 0, 0).unwrap(),
        chrono::NaiveTime::from_hms_opt(21, 0, 0).unwrap(),
    );
    let r = rig(vec![], s).await;
    // Put M-1 where it is now 03:00.
    let tz = crate::support::timezone_where_it_is(3);
    let csv =
        format!("external_id,first_name,phone,timezone,consent\nM-1,Ann,+15555550101,{tz},yes\n");
    crate::support::import_roster(&r.store, &csv).await;

    let routine = r.enqueue("routine", "M-1", Kind::Scheduled).await;
    let crisis = r.enqueue("crisis", "M-1", Kind::Crisis).await;
    let outcomes = r.drain(Duration::from_millis(200)).await;
    assert!(
        outcomes.contains(&ExecutionOutcome::Sent { id: crisis }),
        "{outcomes:?}"
    );
    let row = r.store.message(routine).await.unwrap().unwrap();
    assert_eq!(row.state, OutState::Queued, "{row:?}");
    assert_eq!(row.attempts, 0, "a deferral is not an attempt");
    assert!(row.reason.unwrap().contains("quiet hours"));
    let next = row.next_attempt_at;
    let local: chrono_tz::Tz = tz.parse().unwrap();
    assert_eq!(
        next.with_timezone(&local).format("%H:%M").to_string(),
        "08:00"
    );
    assert!(next > Utc::now());
}

#[tokio::test]
async fn a_time_bound_message_past_its_expiry_is_expired_with_a_record_not_sent() {
    let r = rig(vec![], settings()).await;
    let m = r.member_id("M-1").await;
    let id = r
        .store
        .enqueue(NewMessage {
            idempotency_key: "stale".into(),
            member_id: Some(m),
            to: None,
            body: "your group meets tomorrow".into(),
            kind: Kind::Scheduled,
            not_before: Utc::now() - chrono::TimeDelta::hours(2),
            expires_at: Some(Utc::now() - chrono::TimeDelta::minutes(1)),
            plan: None,
            suppressed: None,
        })
        .await
        .unwrap()
        .id();
    assert_eq!(
        r.drain(Duration::from_secs(1)).await,
        vec![ExecutionOutcome::Expired { id }]
    );
    assert_eq!(r.requests(), 0);
    assert_eq!(
        r.store.audit_tail(1).await.unwrap()[0].action,
        "sms.expired"
    );
}

#[tokio::test]
async fn crisis_goes_before_everything_already_queued() {
    let r = rig(vec![], settings()).await;
    for i in 0..5 {
        r.enqueue(&format!("routine-{i}"), "M-1", Kind::Scheduled)
            .await;
    }
    let crisis = r.enqueue("crisis", "M-1", Kind::Crisis).await;
    let first = r.dispatcher.try_execute_task().await.unwrap();
    assert_eq!(first, ExecutionOutcome::Sent { id: crisis });
}

#[tokio::test]
async fn delivery_reports_never_move_a_message_backwards() {
    use hearth::domain::message::{Report, ReportFor};
    let r = rig(vec![], settings()).await;
    let id = r.enqueue("k", "M-1", Kind::Scheduled).await;
    r.drain(Duration::from_secs(1)).await;
    let s = r
        .store
        .apply_report(ReportFor::Outbox(id), Report::Delivered, None)
        .await
        .unwrap();
    assert_eq!(s, Some(OutState::Delivered));
    let s = r
        .store
        .apply_report(ReportFor::Outbox(id), Report::Sent, None)
        .await
        .unwrap();
    assert_eq!(
        s,
        Some(OutState::Delivered),
        "a late `sent` must not undo `delivered`"
    );
    let none = r
        .store
        .apply_report(ReportFor::Outbox(9999), Report::Delivered, None)
        .await
        .unwrap();
    assert_eq!(none, None);
}

#[derive(Default)]
struct Recording(Mutex<Vec<String>>);

impl InboundHandler for Recording {
    fn handle<'a>(
        &'a self,
        row: &'a InboundRow,
    ) -> std::pin::Pin<Box<dyn std::future::Future<Output = Handled> + Send + 'a>> {
        Box::pin(async move {
            self.0.lock().unwrap().push(row.sms.body.clone());
            Handled::Processed("recorded".into())
        })
    }
}

#[tokio::test]
async fn inbound_texts_wait_in_the_store_until_a_handler_takes_them_even_across_restarts() {
    let dir = tempfile::tempdir().unwrap();
    let key = KeySource::Generated(dir.path().join("h.db.key"));
    let path = dir.path().join("h.db");
    {
        let (store, _) = SqliteStore::open_at(&path, &key).unwrap();
        for (i, text) in ["first", "second"].iter().enumerate() {
            store
                .record_inbound(InboundSms {
                    provider: "inject".into(),
                    provider_message_id: format!("m{i}"),
                    from: "+15555550199".into(),
                    to: "+15555550000".into(),
                    body: (*text).into(),
                    keyword: None,
                })
                .await
                .unwrap();
        }
        // While no pipeline exists, rows are held, not dropped.
        let held = InboundWorker::new(
            store.clone(),
            Arc::new(hearth::pipeline::Held),
            Default::default(),
        );
        assert_eq!(held.drain().await.unwrap(), 0);
    }
    // A restart: the rows are still queued and are handed over in order.
    let (store, _) = SqliteStore::open_at(&path, &key).unwrap();
    let recording = Arc::new(Recording::default());
    let worker = InboundWorker::new(store.clone(), recording.clone(), Default::default());
    assert_eq!(worker.drain().await.unwrap(), 2);
    assert_eq!(*recording.0.lock().unwrap(), vec!["first", "second"]);
    assert_eq!(
        worker.drain().await.unwrap(),
        0,
        "processed rows are not handed over again"
    );
}

#[tokio::test]
async fn queueing_a_message_wakes_an_idle_dispatcher() {
    let r = rig(vec![], settings()).await;
    let Rig {
        store,
        gw,
        dispatcher,
        _dir,
    } = r;
    // With an hour between polls, only the wake-up can send it.
    let dispatcher = dispatcher.with_poll(Duration::from_secs(3600));
    let shutdown = tokio_util::sync::CancellationToken::new();
    let task = tokio::spawn(dispatcher.run_until_stopped(shutdown.clone()));
    let m = store.member("M-1").await.unwrap().unwrap().id;
    // A first message, sent: the dispatcher has then found the queue empty
    // and is idle.
    let first = store
        .enqueue(NewMessage {
            idempotency_key: "first".into(),
            member_id: Some(m),
            to: None,
            body: "hi".into(),
            kind: Kind::Crisis,
            not_before: Utc::now(),
            expires_at: None,
            plan: None,
            suppressed: None,
        })
        .await
        .unwrap()
        .id();
    until("the first message to be sent", || {
        let store = store.clone();
        async move { store.message(first).await.unwrap().unwrap().state == OutState::Sent }
    })
    .await;
    let id = store
        .enqueue(NewMessage {
            idempotency_key: "wake".into(),
            member_id: Some(m),
            to: None,
            body: "hi".into(),
            kind: Kind::Crisis,
            not_before: Utc::now(),
            expires_at: None,
            plan: None,
            suppressed: None,
        })
        .await
        .unwrap()
        .id();
    let deadline = Instant::now() + Duration::from_secs(20);
    while store.message(id).await.unwrap().unwrap().state != OutState::Sent {
        assert!(Instant::now() < deadline, "the dispatcher never woke up");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert_eq!(gw.received.lock().unwrap().len(), 2);
    shutdown.cancel();
    task.await.unwrap();
}

#[tokio::test]
async fn a_report_that_outruns_the_recorded_send_is_applied_when_the_send_is_recorded() {
    use hearth::domain::message::{Report, ReportFor};
    let r = rig(vec![], settings()).await;
    let id = r.enqueue("k", "M-1", Kind::Scheduled).await;
    // The gateway will name it gw-{id}; its report arrives first.
    let early = ReportFor::ProviderId {
        provider: "webhook".into(),
        id: format!("gw-{id}"),
    };
    assert_eq!(
        r.store
            .apply_report(early, Report::Delivered, None)
            .await
            .unwrap(),
        None
    );
    r.drain(Duration::from_secs(2)).await;
    assert_eq!(r.state(id).await.0, OutState::Delivered);
}

#[tokio::test]
async fn an_opt_out_reported_by_callback_fails_the_message_and_revokes_consent() {
    use hearth::domain::message::{Report, ReportFor};
    let r = rig(vec![], settings()).await;
    let id = r.enqueue("k", "M-1", Kind::Scheduled).await;
    r.drain(Duration::from_secs(2)).await;
    let s = r
        .store
        .apply_report(
            ReportFor::Outbox(id),
            Report::OptedOut,
            Some("twilio error 21610".into()),
        )
        .await
        .unwrap();
    assert_eq!(s, Some(OutState::Failed));
    let m = r.store.member("M-1").await.unwrap().unwrap();
    assert!(!m.consent.granted());
    assert!(
        m.consent.revoked_by_member(),
        "only the member's START may undo it"
    );
}

#[tokio::test]
async fn a_report_that_overtakes_the_recorded_send_still_leaves_the_send_recorded() {
    use hearth::domain::message::{Report, ReportFor};
    use hearth::store::traits::outbox::{InstanceId, Outcome, Settled};
    let r = rig(vec![], settings()).await;
    let id = r.enqueue("k", "M-1", Kind::Scheduled).await;
    // The dispatcher has claimed it and the provider has taken it…
    let holder = InstanceId::new("dispatcher").unwrap();
    let claimed = r
        .store
        .claim(&holder, Utc::now(), chrono::TimeDelta::minutes(10))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(claimed.message.id, id);
    // …and Kannel's DLR arrives before the dispatcher records the answer.
    let s = r
        .store
        .apply_report(ReportFor::Outbox(id), Report::Delivered, None)
        .await
        .unwrap();
    assert_eq!(s, Some(OutState::Delivered));
    let settled = r
        .store
        .settle_claim(
            &claimed.lease,
            Outcome::Sent {
                provider: "kannel".into(),
                provider_message_id: None,
            },
        )
        .await
        .unwrap();
    let recorded = matches!(settled, Settled::Recorded(_));
    assert!(recorded);
    let row = r.store.message(id).await.unwrap().unwrap();
    assert_eq!(row.state, OutState::Delivered, "never backwards");
    assert_eq!(row.provider.as_deref(), Some("kannel"));
    assert_eq!(r.store.audit_tail(1).await.unwrap()[0].action, "sms.sent");
}

/// Polls `check` until it holds, failing with `what` after 20 s.
async fn until<F, Fut>(what: &str, mut check: F)
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let deadline = Instant::now() + Duration::from_secs(20);
    while !check().await {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

impl Rig {
    async fn enqueue_to_number(&self, key: &str, phone: &str, kind: Kind) -> i64 {
        self.store
            .enqueue(NewMessage {
                idempotency_key: key.into(),
                member_id: None,
                to: Some(phone.parse().unwrap()),
                body: format!("hello {key}"),
                kind,
                not_before: Utc::now(),
                expires_at: None,
                plan: None,
                suppressed: None,
            })
            .await
            .unwrap()
            .id()
    }
}

/// Queues a crisis text to member M-1 and waits until it is sent.
async fn send_crisis_to_m1(store: &SqliteStore) {
    let m = store.member("M-1").await.unwrap().unwrap().id;
    let crisis = store
        .enqueue(NewMessage {
            idempotency_key: "crisis".into(),
            member_id: Some(m),
            to: None,
            body: "crisis line".into(),
            kind: Kind::Crisis,
            not_before: Utc::now(),
            expires_at: None,
            plan: None,
            suppressed: None,
        })
        .await
        .unwrap()
        .id();
    until("the crisis message to be sent", || {
        let store = store.clone();
        async move { store.message(crisis).await.unwrap().unwrap().state == OutState::Sent }
    })
    .await;
}

#[tokio::test]
async fn an_outage_pauses_the_provider_without_burning_attempts_and_everything_goes_after_recovery()
{
    let r = rig(
        vec![],
        DispatchSettings {
            backoff_initial: Duration::from_millis(20),
            backoff_max: Duration::from_millis(200),
            breaker_threshold: 3,
            concurrency: 2,
            // Far shorter than the outage below: by attempts, every message
            // would have failed for good.
            retry_horizon: Duration::from_secs(60),
            ..settings()
        },
    )
    .await;
    r.gw.down.store(true, std::sync::atomic::Ordering::SeqCst);
    let mut ids = Vec::new();
    for i in 0..20 {
        ids.push(r.enqueue(&format!("k{i}"), "M-1", Kind::Scheduled).await);
    }
    let Rig {
        store,
        gw,
        dispatcher,
        _dir,
    } = r;
    let counters = dispatcher.counters();
    let shutdown = tokio_util::sync::CancellationToken::new();
    let task = tokio::spawn(
        dispatcher
            .with_poll(Duration::from_millis(50))
            .run_until_stopped(shutdown.clone()),
    );
    // The breaker opens, and re-opens after each failed probe.
    until("the breaker to open four times", || {
        let c = counters.clone();
        async move { c.breaker_opened.load(std::sync::atomic::Ordering::SeqCst) >= 4 }
    })
    .await;
    let during_outage = gw.received.lock().unwrap().len();
    gw.down.store(false, std::sync::atomic::Ordering::SeqCst);
    until("every message to be sent", || {
        let store = store.clone();
        async move {
            store
                .list_messages(ListFilter {
                    state: Some(OutState::Sent),
                    kind: None,
                    limit: 100,
                })
                .await
                .unwrap()
                .len()
                == 20
        }
    })
    .await;
    shutdown.cancel();
    task.await.unwrap();
    // A handful of requests during the outage (the threshold, the sends
    // already in flight, one probe per pause), not one per message.
    assert!(
        during_outage < 20,
        "{during_outage} requests while down: attempts were burned per message"
    );
    let mut attempts = 0;
    for id in &ids {
        let row = store.message(*id).await.unwrap().unwrap();
        assert_eq!(row.state, OutState::Sent, "{row:?}");
        attempts += row.attempts;
    }
    assert_eq!(attempts as usize, gw.received.lock().unwrap().len());
    assert_eq!(attempts as usize, 20 + during_outage);
}

#[tokio::test]
async fn a_crisis_message_goes_out_while_routine_sends_hang_and_stopping_finishes_them() {
    let r = rig(
        vec![],
        DispatchSettings {
            concurrency: 2,
            urgent_concurrency: 1,
            timeout: Duration::from_secs(60),
            ..settings()
        },
    )
    .await;
    *r.gw.hang.lock().unwrap() = Some("routine".into());
    let routine: Vec<i64> = [
        r.enqueue("routine-1", "M-1", Kind::Scheduled).await,
        r.enqueue("routine-2", "M-2", Kind::Scheduled).await,
        r.enqueue("routine-3", "M-1", Kind::Staff).await,
    ]
    .into();
    let Rig {
        store,
        gw,
        dispatcher,
        _dir,
    } = r;
    let shutdown = tokio_util::sync::CancellationToken::new();
    let task = tokio::spawn(dispatcher.run_until_stopped(shutdown.clone()));
    until("both routine slots to hang", || {
        let gw = gw.clone();
        async move { gw.received.lock().unwrap().len() == 2 }
    })
    .await;
    send_crisis_to_m1(&store).await;
    // The routine sends are still hanging: the crisis did not wait for them.
    let states = |ids: Vec<i64>| {
        let store = store.clone();
        async move {
            let mut out = Vec::new();
            for id in ids {
                out.push(store.message(id).await.unwrap().unwrap().state);
            }
            out
        }
    };
    let now = states(routine.clone()).await;
    assert_eq!(
        now.iter().filter(|s| **s == OutState::Sending).count(),
        2,
        "{now:?}"
    );
    assert_eq!(gw.received.lock().unwrap().len(), 3);

    // Stop while two sends are under way: they finish and are recorded;
    // the third routine message is never claimed.
    shutdown.cancel();
    gw.release.notify_waiters();
    task.await.unwrap();
    let after = states(routine.clone()).await;
    assert_eq!(
        after.iter().filter(|s| **s == OutState::Sent).count(),
        2,
        "{after:?}"
    );
    assert_eq!(
        after.iter().filter(|s| **s == OutState::Queued).count(),
        1,
        "{after:?}"
    );
    assert_eq!(gw.received.lock().unwrap().len(), 3);
}

#[tokio::test]
async fn a_store_error_while_recording_an_outcome_is_retried_until_it_is_stored() {
    let r = rig(vec![], settings()).await;
    let id = r.enqueue("k", "M-1", Kind::Scheduled).await;
    r.dispatcher.fail_next_records(3);
    let outcomes = r.drain(Duration::from_secs(5)).await;
    assert_eq!(outcomes, vec![ExecutionOutcome::Sent { id }]);
    let (state, attempts, _) = r.state(id).await;
    assert_eq!((state, attempts), (OutState::Sent, 1));
    assert_eq!(
        r.dispatcher
            .counters()
            .record_retries
            .load(std::sync::atomic::Ordering::SeqCst),
        3
    );
    assert_eq!(r.requests(), 1);
}

#[tokio::test]
async fn a_send_that_times_out_after_sending_goes_once_more_counted_and_never_a_third_time() {
    let r = rig(
        vec![
            Answer::Sleep(Duration::from_secs(2)),
            Answer::Sleep(Duration::from_secs(2)),
        ],
        settings(),
    )
    .await;
    let id = r.enqueue("k", "M-1", Kind::Scheduled).await;
    r.drain(Duration::from_secs(5)).await;
    let row = r.store.message(id).await.unwrap().unwrap();
    // Two requests, both possibly delivered: recorded as sent, not tried again.
    assert_eq!((row.state, row.attempts), (OutState::Sent, 2), "{row:?}");
    assert_eq!(row.provider_message_id, None);
    assert_eq!(r.requests(), 2);
    assert_eq!(
        r.dispatcher
            .counters()
            .ambiguous_resends
            .load(std::sync::atomic::Ordering::SeqCst),
        1
    );
}

#[tokio::test]
async fn a_message_to_a_bare_number_is_checked_against_the_member_who_has_it() {
    let r = rig(vec![], settings()).await;
    r.store
        .record_consent(
            "M-1",
            ConsentAction::Revoked,
            ConsentSource::Keyword,
            "STOP",
            "member",
        )
        .await
        .unwrap();
    let opted_out = r
        .enqueue_to_number("opted-out", "+15555550101", Kind::Reply)
        .await;
    let consenting = r
        .enqueue_to_number("consenting", "+15555550102", Kind::Reply)
        .await;
    let stranger = r
        .enqueue_to_number("stranger", "+15555550177", Kind::Reply)
        .await;
    let crisis = r
        .enqueue_to_number("crisis", "+15555550177", Kind::Crisis)
        .await;
    r.drain(Duration::from_secs(2)).await;
    let (state, _, reason) = r.state(opted_out).await;
    assert_eq!(state, OutState::Suppressed);
    assert!(reason.unwrap().contains("no current consent"));
    assert_eq!(r.state(consenting).await.0, OutState::Sent);
    let (state, _, reason) = r.state(stranger).await;
    assert_eq!(state, OutState::Suppressed);
    let reason = reason.unwrap();
    assert!(reason.contains("no member has this number"), "{reason}");
    // Crisis resources go to whoever texted, member or not.
    assert_eq!(r.state(crisis).await.0, OutState::Sent);
    assert_eq!(r.requests(), 2);
}

#[tokio::test]
async fn a_provider_error_after_a_delivery_report_never_takes_the_message_back_to_the_queue() {
    let r = rig(vec![Answer::Held(503)], settings()).await;
    let id = r.enqueue("k", "M-1", Kind::Scheduled).await;
    let Rig {
        store,
        gw,
        dispatcher,
        _dir,
    } = r;
    let shutdown = tokio_util::sync::CancellationToken::new();
    let task = tokio::spawn(dispatcher.run_until_stopped(shutdown.clone()));
    until("the send to be under way", || {
        let gw = gw.clone();
        async move { gw.received.lock().unwrap().len() == 1 }
    })
    .await;
    // The handset's delivery report overtakes the gateway's own answer…
    store
        .apply_report(
            hearth::domain::message::ReportFor::Outbox(id),
            hearth::domain::message::Report::Delivered,
            None,
        )
        .await
        .unwrap();
    // …which is then an error: the automatic retry must not rewind it.
    // (Stopping waits for the send under way and its record.)
    gw.release.notify_one();
    shutdown.cancel();
    task.await.unwrap();
    let row = store.message(id).await.unwrap().unwrap();
    assert_eq!(row.state, OutState::Delivered, "{row:?}");
    assert_eq!(row.attempts, 1);
    assert_eq!(gw.received.lock().unwrap().len(), 1, "sent again");
}

#[tokio::test]
async fn a_crisis_message_does_not_queue_behind_routine_sends_waiting_for_the_rate_limit() {
    let r = rig(
        vec![],
        DispatchSettings {
            segments_per_second: 5,
            burst: 1,
            concurrency: 4,
            ..settings()
        },
    )
    .await;
    for i in 0..8 {
        r.enqueue(&format!("routine-{i}"), "M-2", Kind::Scheduled)
            .await;
    }
    let Rig {
        store,
        gw,
        dispatcher,
        _dir,
    } = r;
    let shutdown = tokio_util::sync::CancellationToken::new();
    let task = tokio::spawn(dispatcher.run_until_stopped(shutdown.clone()));
    // The first routine text is out; three more wait for the rate limit.
    until("the first routine send", || {
        let gw = gw.clone();
        async move { !gw.received.lock().unwrap().is_empty() }
    })
    .await;
    send_crisis_to_m1(&store).await;
    let order: Vec<String> = gw
        .received
        .lock()
        .unwrap()
        .iter()
        .map(|(_, j)| j["body"].as_str().unwrap().to_owned())
        .collect();
    let at = order.iter().position(|b| b == "crisis line").unwrap();
    // It took the next slot of the rate (one routine text may have been
    // granted its slot already), not a place behind the waiting ones.
    assert!(at <= 2, "crisis went out {}th: {order:?}", at + 1);
    shutdown.cancel();
    task.await.unwrap();
}

#[tokio::test]
async fn a_two_segment_crisis_reply_is_not_overtaken_by_confirmations_a_segment_at_a_time() {
    // One segment every 100 ms, no burst: the crisis reply needs two.
    let r = rig(
        vec![],
        DispatchSettings {
            segments_per_second: 10,
            burst: 1,
            urgent_concurrency: 3,
            ..settings()
        },
    )
    .await;
    let m1 = r.member_id("M-1").await;
    // A crisis reply of two segments, then confirmations queued behind it.
    r.store
        .enqueue(NewMessage {
            idempotency_key: "crisis".into(),
            member_id: Some(m1),
            to: None,
            body: format!("crisis {}", "call or text 988 ".repeat(12)),
            kind: Kind::Crisis,
            not_before: Utc::now(),
            expires_at: None,
            plan: None,
            suppressed: None,
        })
        .await
        .unwrap();
    for i in 0..4 {
        r.enqueue(&format!("confirm-{i}"), "M-2", Kind::Compliance)
            .await;
    }
    let Rig {
        gw,
        dispatcher,
        _dir,
        ..
    } = r;
    let shutdown = tokio_util::sync::CancellationToken::new();
    let task = tokio::spawn(dispatcher.run_until_stopped(shutdown.clone()));
    until("all five sent", || {
        let gw = gw.clone();
        async move { gw.received.lock().unwrap().len() == 5 }
    })
    .await;
    shutdown.cancel();
    task.await.unwrap();
    let first = gw.received.lock().unwrap()[0].1["body"].clone();
    assert!(
        first.as_str().unwrap().starts_with("crisis"),
        "the crisis reply goes first: {first}"
    );
}
