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
use hearth::pipeline::{Handled, InboundHandler, InboundWorker};
use hearth::settings::DispatchSettings;
use hearth::store::consent::{ConsentAction, ConsentSource};
use hearth::store::outbox::{InboundRow, InboundSms, Kind, NewMessage, OutState};
use hearth::store::{KeySource, Store};

const KEY: &str = "gateway-signing-key";

/// What the fake gateway answers, request by request; then 200s.
#[derive(Clone)]
enum Answer {
    Status(u16),
    RetryAfter(u16, u64),
    Sleep(Duration),
}

#[derive(Default)]
struct Gateway {
    script: Mutex<VecDeque<Answer>>,
    received: Mutex<Vec<(Instant, serde_json::Value)>>,
    forged: Mutex<usize>,
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
    let next = gw.script.lock().unwrap().pop_front();
    match next {
        Some(Answer::Status(code)) => StatusCode::from_u16(code).unwrap().into_response(),
        Some(Answer::RetryAfter(code, secs)) => (
            StatusCode::from_u16(code).unwrap(),
            [("retry-after", secs.to_string())],
        )
            .into_response(),
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
    store: Store,
    gw: Arc<Gateway>,
    dispatcher: Dispatcher,
}

fn settings() -> DispatchSettings {
    DispatchSettings {
        segments_per_second: 1000,
        burst: 1000,
        backoff_initial: Duration::from_millis(50),
        backoff_max: Duration::from_secs(5),
        max_attempts: 3,
        timeout: Duration::from_millis(300),
        // Always inside the send window, unless a test says otherwise.
        send_window: (
            chrono::NaiveTime::MIN,
            chrono::NaiveTime::from_hms_opt(23, 59, 59).unwrap(),
        ),
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
    let (store, _) = Store::open_at(
        &dir.path().join("h.db"),
        &KeySource::Generated(dir.path().join("h.db.key")),
    )
    .unwrap();
    let csv = "external_id,first_name,phone,timezone,consent\nM-1,Ann,+15555550101,America/New_York,yes\nM-2,Bo,+15555550102,Pacific/Kiritimati,yes\n";
    crate::helpers::import_roster(&store, csv).await;
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
                    let pending = self.store.outbox(Some(OutState::Queued), 10).await.unwrap();
                    if pending.is_empty() || Instant::now() > deadline {
                        return out;
                    }
                    tokio::time::sleep(Duration::from_millis(20)).await;
                }
                o => out.push(o),
            }
        }
    }

    fn requests(&self) -> usize {
        self.gw.received.lock().unwrap().len()
    }

    async fn state(&self, id: i64) -> (OutState, i64, Option<String>) {
        let r = self.store.outbox_message(id).await.unwrap().unwrap();
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
    let row = r.store.outbox_message(id).await.unwrap().unwrap();
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
async fn a_429_waits_as_long_as_retry_after_says() {
    let r = rig(vec![Answer::RetryAfter(429, 1)], settings()).await;
    let id = r.enqueue("k", "M-1", Kind::Scheduled).await;
    r.drain(Duration::from_secs(5)).await;
    assert_eq!(r.state(id).await.0, OutState::Sent);
    let got = r.gw.received.lock().unwrap();
    assert_eq!(got.len(), 2);
    let gap = got[1].0 - got[0].0;
    // Backoff alone would have retried after 50 ms.
    assert!(
        gap >= Duration::from_millis(950),
        "retried after {gap:?}, before Retry-After"
    );
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
async fn a_permanent_error_fails_at_once_and_transient_ones_fail_after_max_attempts() {
    let r = rig(
        vec![
            Answer::Status(400),
            Answer::Status(503),
            Answer::Status(503),
            Answer::Status(503),
        ],
        settings(),
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
    assert_eq!((state, attempts), (OutState::Failed, 3));
    assert!(reason.unwrap().starts_with("gave up after 3 attempts"));
    assert_eq!(r.requests(), 4);
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
    s.send_window = (
        chrono::NaiveTime::from_hms_opt(8, 0, 0).unwrap(),
        chrono::NaiveTime::from_hms_opt(21, 0, 0).unwrap(),
    );
    let r = rig(vec![], s).await;
    // Put M-1 where it is now 03:00.
    let tz = crate::helpers::timezone_where_it_is(3);
    let csv =
        format!("external_id,first_name,phone,timezone,consent\nM-1,Ann,+15555550101,{tz},yes\n");
    crate::helpers::import_roster(&r.store, &csv).await;

    let routine = r.enqueue("routine", "M-1", Kind::Scheduled).await;
    let crisis = r.enqueue("crisis", "M-1", Kind::Crisis).await;
    let outcomes = r.drain(Duration::from_millis(200)).await;
    assert!(
        outcomes.contains(&ExecutionOutcome::Sent { id: crisis }),
        "{outcomes:?}"
    );
    let row = r.store.outbox_message(routine).await.unwrap().unwrap();
    assert_eq!(row.state, OutState::Queued, "{row:?}");
    assert_eq!(row.attempts, 0, "a deferral is not an attempt");
    assert!(row.reason.unwrap().contains("quiet hours"));
    let next = chrono::DateTime::parse_from_rfc3339(&row.next_attempt_at).unwrap();
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
    use hearth::store::outbox::{Report, ReportFor};
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
        let (store, _) = Store::open_at(&path, &key).unwrap();
        for (i, text) in ["first", "second"].iter().enumerate() {
            store
                .record_inbound(InboundSms {
                    provider: "inject".into(),
                    provider_message_id: format!("m{i}"),
                    from: "+15555550199".into(),
                    to: "+15555550000".into(),
                    body: (*text).into(),
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
    let (store, _) = Store::open_at(&path, &key).unwrap();
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
    tokio::time::sleep(Duration::from_millis(100)).await;
    let m = store.member("M-1").await.unwrap().unwrap().id;
    let id = store
        .enqueue(NewMessage {
            idempotency_key: "wake".into(),
            member_id: Some(m),
            to: None,
            body: "hi".into(),
            kind: Kind::Crisis,
            not_before: Utc::now(),
            expires_at: None,
        })
        .await
        .unwrap()
        .id();
    let deadline = Instant::now() + Duration::from_secs(20);
    while store.outbox_message(id).await.unwrap().unwrap().state != OutState::Sent {
        assert!(Instant::now() < deadline, "the dispatcher never woke up");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert_eq!(gw.received.lock().unwrap().len(), 1);
    shutdown.cancel();
    task.await.unwrap();
}

#[tokio::test]
async fn a_report_that_outruns_the_recorded_send_is_applied_when_the_send_is_recorded() {
    use hearth::store::outbox::{Report, ReportFor};
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
    use hearth::store::outbox::{Report, ReportFor};
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
    use hearth::store::outbox::{Report, ReportFor};
    let r = rig(vec![], settings()).await;
    let id = r.enqueue("k", "M-1", Kind::Scheduled).await;
    // The dispatcher has claimed it and the provider has taken it…
    let claimed = r.store.claim_next(Utc::now()).await.unwrap().unwrap();
    assert_eq!(claimed.row.id, id);
    // …and Kannel's DLR arrives before the dispatcher records the answer.
    let s = r
        .store
        .apply_report(ReportFor::Outbox(id), Report::Delivered, None)
        .await
        .unwrap();
    assert_eq!(s, Some(OutState::Delivered));
    let recorded = r
        .store
        .settle(
            id,
            OutState::Sent,
            None,
            Some(("kannel".into(), None)),
            None,
        )
        .await
        .unwrap();
    assert!(recorded);
    let row = r.store.outbox_message(id).await.unwrap().unwrap();
    assert_eq!(row.state, OutState::Delivered, "never backwards");
    assert_eq!(row.provider.as_deref(), Some("kannel"));
    assert_eq!(r.store.audit_tail(1).await.unwrap()[0].action, "sms.sent");
}
