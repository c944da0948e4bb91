//! Kannel end to end: a real bearerbox, smsbox and fakesmsc on loopback,
//! the daemon in-process or as the real binary.
//!
//! fakesmsc plays the phone network: one instance (the "sink") receives
//! every text Kannel delivers and logs `Got message N: <FROM TO TYPE DATA>`;
//! short-lived ones inject member texts through a second fake SMSC that
//! carries no outbound traffic.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use hearth::domain::message::{Kind, NewMessage, OutState};
use hearth::store::prelude::*;
use hearth::store::sqlite::SqliteStore;
use hearth::store::traits::OutboxStore;
use hearth::store::traits::outbox::ListFilter;

use crate::support::kannel::{self as harness, Kannel, MEMBER_PHONE, SECRET, SHORTCODE};
use crate::support::*;

/// A deployment directory whose provider is the Kannel at `sendsms_url`;
/// Hearth listens on `port`. `extra` is appended to the settings.
fn deployment(port: u16, sendsms_url: &str, extra: &str) -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    write(&dir.path().join("rules/main.yaml"), &rules_yaml("x"));
    write(
        &dir.path().join("kannel-password"),
        &format!("{}\n", harness::PASSWORD),
    );
    write(
        &dir.path().join("kannel-callback-secret"),
        &format!("{SECRET}\n"),
    );
    write(
        &dir.path().join("hearth.yaml"),
        &settings(port, sendsms_url, extra),
    );
    dir
}

/// Daemon settings for Kannel on `sendsms_url`, listening on `port`, with
/// `extra` settings lines appended.
pub(crate) fn settings(port: u16, sendsms_url: &str, extra: &str) -> String {
    format!(
        r#"listen: 127.0.0.1:{port}
public_url: http://127.0.0.1:{port}
rules_dir: rules
database: {{ path: state/hearth.db }}
reload_debounce: 100ms
provider:
  kind: kannel
  sendsms_url: {sendsms_url}
  username: {user}
  password: file:kannel-password
  from: "{SHORTCODE}"
  callback_secret: file:kannel-callback-secret
intake:
  kannel_allow: ["127.0.0.1"]
{extra}"#,
        user = harness::USER,
    )
}

/// The MO URL an operator writes in the sms-service's `get-url`.
/// The MO URL as an operator writes it in the sms-service's `get-url`.
pub(crate) fn mo_url(addr: SocketAddr) -> String {
    format!(
        "http://{addr}/webhooks/kannel/mo?secret={SECRET}&id=%I&from=%p&to=%P&text=%b&coding=%c&charset=%C"
    )
}

/// An IANA zone where it is now between 10:00 and 18:00, so a routine
/// text is inside the default 08:00–21:00 send window whenever this runs.
fn daytime_timezone() -> String {
    timezone_where_it_is(14)
}

/// Imports one member with recorded consent; returns their id.
async fn consenting_member(store: &SqliteStore, external_id: &str, phone: &str) -> i64 {
    let csv = format!(
        "external_id,first_name,phone,timezone,consent\n{external_id},Ann,{phone},{},yes\n",
        daytime_timezone()
    );
    import_roster(store, &csv).await;
    store.member(external_id).await.unwrap().unwrap().id
}

fn message_to_member(key: &str, member_id: i64, body: &str) -> NewMessage {
    NewMessage {
        idempotency_key: key.into(),
        member_id: Some(member_id),
        to: None,
        body: body.into(),
        kind: Kind::Scheduled,
        not_before: chrono::Utc::now(),
        expires_at: None,
        plan: None,
        suppressed: None,
    }
}

/// To a number, not a member: no consent gate, no quiet hours.
fn message_to_number(
    key: &str,
    phone: &str,
    body: &str,
    not_before: chrono::DateTime<chrono::Utc>,
) -> NewMessage {
    NewMessage {
        idempotency_key: key.into(),
        member_id: None,
        to: Some(phone.parse().unwrap()),
        body: body.into(),
        kind: Kind::Escalation,
        not_before,
        expires_at: None,
        plan: None,
        suppressed: None,
    }
}

async fn wait_state(
    store: &SqliteStore,
    id: i64,
    want: OutState,
    timeout: Duration,
    kannel: Option<&Kannel>,
) {
    let deadline = Instant::now() + timeout;
    loop {
        let row = store.message(id).await.unwrap().unwrap();
        if row.state == want {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "message #{id} is {:?}, not {want:?} ({:?}); logs:\n{}",
            row.state,
            row.reason,
            kannel.map(Kannel::logs).unwrap_or_default()
        );
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
}

/// The dispatcher polls every 2 s; the first pick-up can take that long.
const PATIENCE: Duration = Duration::from_secs(15);

const DISPATCH_FAST: &str = "dispatch: { segments_per_second: 20, burst: 5, backoff_initial: 200ms, backoff_max: 1s, timeout: 3s }\n";

/// A running Kannel and an in-process daemon sending through it (with
/// [`DISPATCH_FAST`]); `None` when Kannel is not installed and not required.
async fn kannel_and_app() -> Option<(Kannel, TestApp)> {
    if !harness::available() {
        return None;
    }
    let port = harness::free_port();
    let kannel = Kannel::start(&mo_url(([127, 0, 0, 1], port).into())).await;
    let app = spawn_app_with_settings(
        deployment(port, &kannel.sendsms_url(), DISPATCH_FAST),
        &settings(port, &kannel.sendsms_url(), DISPATCH_FAST),
    )
    .await;
    Some((kannel, app))
}

#[tokio::test(flavor = "multi_thread")]
async fn an_outbound_message_reaches_the_phone_through_kannel_intact_and_goes_sent_then_delivered()
{
    let Some((kannel, app)) = kannel_and_app().await else {
        return;
    };
    let member = consenting_member(&app.store, "M-1", MEMBER_PHONE).await;

    let gsm = "Hi Ann, your group meets tomorrow at 18:00 [room 2]. Reply STOP to opt out.";
    let unicode = "Thinking of you today 🙂 — café at 5?";
    let a = app
        .store
        .enqueue(message_to_member("t1:gsm", member, gsm))
        .await
        .unwrap()
        .id();
    let b = app
        .store
        .enqueue(message_to_member("t1:unicode", member, unicode))
        .await
        .unwrap()
        .id();

    let got = kannel.wait_received(2, PATIENCE).await;
    let by_body: BTreeMap<&str, &harness::Received> =
        got.iter().map(|r| (r.body.as_str(), r)).collect();
    let g = by_body
        .get(gsm)
        .unwrap_or_else(|| panic!("GSM text not received intact: {got:#?}"));
    assert_eq!(
        (g.from.as_str(), g.to.as_str(), g.kind.as_str()),
        (SHORTCODE, MEMBER_PHONE, "text")
    );
    let u = by_body
        .get(unicode)
        .unwrap_or_else(|| panic!("emoji text not received intact: {got:#?}"));
    assert_eq!(
        (u.to.as_str(), u.kind.as_str()),
        (MEMBER_PHONE, "ucs-2"),
        "sent as UCS-2"
    );

    for id in [a, b] {
        wait_state(&app.store, id, OutState::Delivered, PATIENCE, Some(&kannel)).await;
        // Kannel's report can overtake the dispatcher's record of the send;
        // the record still lands (naming the provider) a moment later.
        let deadline = Instant::now() + PATIENCE;
        let row = loop {
            let row = app.store.message(id).await.unwrap().unwrap();
            if row.provider.is_some() || Instant::now() > deadline {
                break row;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        };
        assert_eq!(
            row.provider.as_deref(),
            Some("kannel"),
            "the send was recorded: {row:?}"
        );
    }
    // `sent` was a state it passed through: the dispatcher recorded the
    // send (audited) before Kannel's report moved it on.
    let audit = app.store.audit_tail(50).await.unwrap();
    for id in [a, b] {
        assert!(
            audit
                .iter()
                .any(|e| e.action == "sms.sent" && e.detail["outbox"] == id),
            "no sms.sent audit entry for #{id}: {:?}",
            audit
                .iter()
                .map(|e| (&e.action, &e.detail))
                .collect::<Vec<_>>()
        );
    }
    assert_eq!(kannel.received().len(), 2, "each text went once");
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_member_text_from_kannel_is_stored_once_even_when_smsbox_retries_the_callback() {
    if !harness::available() {
        return;
    }
    let port = harness::free_port();
    // smsbox → hop → Hearth; the hop hangs up on the first callback after
    // Hearth stored it, so smsbox retries it.
    let hop = harness::FlakyHop::start(([127, 0, 0, 1], port).into(), 1).await;
    let mut kannel = Kannel::start(&mo_url(hop.addr)).await;
    let app = spawn_app_with_settings(
        deployment(port, &kannel.sendsms_url(), ""),
        &settings(port, &kannel.sendsms_url(), ""),
    )
    .await;

    kannel
        .inject(MEMBER_PHONE, "I feel  a bit better today", false)
        .await;
    let deadline = Instant::now() + PATIENCE;
    while hop.requests.lock().unwrap().len() < 2 {
        assert!(
            Instant::now() < deadline,
            "smsbox never retried: {:?}\n{}",
            hop.requests.lock().unwrap(),
            kannel.logs()
        );
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    let calls = hop.requests.lock().unwrap().clone();
    assert_eq!(hop.dropped(), 1);
    assert_eq!(
        calls[0], calls[1],
        "a retry repeats the same URL, id and all"
    );

    let rows: Vec<_> = app
        .store
        .inbound_texts(10)
        .await
        .unwrap()
        .into_iter()
        .map(|(row, _)| row)
        .collect();
    assert_eq!(rows.len(), 1, "stored once: {rows:?}");
    let sms = &rows[0].sms;
    assert_eq!(sms.provider, "kannel");
    assert_eq!(sms.from, MEMBER_PHONE);
    assert_eq!(sms.to, SHORTCODE);
    assert_eq!(
        sms.body, "I feel  a bit better today",
        "the text as sent, spaces and all"
    );
    assert_eq!(
        sms.provider_message_id.len(),
        36,
        "Kannel's UUID: {}",
        sms.provider_message_id
    );

    // A UCS-2 text (an emoji) arrives intact.
    kannel
        .inject("+15555550102", "still here 🙂 merci", true)
        .await;
    let deadline = Instant::now() + PATIENCE;
    loop {
        let rows = app.store.inbound_texts(10).await.unwrap();
        if let Some((r, _)) = rows.iter().find(|(r, _)| r.sms.from == "+15555550102") {
            assert_eq!(r.sms.body, "still here 🙂 merci");
            break;
        }
        assert!(
            Instant::now() < deadline,
            "UCS-2 text never stored; {}",
            kannel.logs()
        );
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    assert_eq!(app.store.inbound_texts(10).await.unwrap().len(), 2);
    app.stop().await;
}

/// A client that connects from `source` (any 127/8 address is loopback).
fn client_from(source: [u8; 4]) -> reqwest::Client {
    reqwest::Client::builder()
        .local_address(std::net::IpAddr::from(source))
        .build()
        .unwrap()
}

#[tokio::test(flavor = "multi_thread")]
async fn kannel_callbacks_without_the_secret_or_from_a_foreign_address_are_refused_and_store_nothing()
 {
    // No Kannel needed: these are the requests a forger would make.
    let port = harness::free_port();
    let sendsms = "http://127.0.0.1:9/cgi-bin/sendsms";
    let app =
        spawn_app_with_settings(deployment(port, sendsms, ""), &settings(port, sendsms, "")).await;
    let base = format!("http://127.0.0.1:{port}/webhooks/kannel");
    let good = "id=0b8c8f7e-4d6a-4a59-9d7e-1c2b3a4d5e6f&from=%2B15555550101&to=%2B15555550999&text=hello&coding=0&charset=UTF-8";
    let local = client_from([127, 0, 0, 1]);
    let foreign = client_from([127, 0, 0, 2]);

    for (client, url, why) in [
        (
            &local,
            format!("{base}/mo?secret=forged-0123456789abcdef&{good}"),
            "forged secret",
        ),
        (&local, format!("{base}/mo?{good}"), "no secret"),
        (
            &local,
            format!("{base}/mo?secret={}&{good}", &SECRET[..SECRET.len() - 1]),
            "secret prefix",
        ),
        (
            &foreign,
            format!("{base}/mo?secret={SECRET}&{good}"),
            "address not allowed",
        ),
        (
            &foreign,
            format!("{base}/dlr?secret={SECRET}&id=1&type=1"),
            "address not allowed (dlr)",
        ),
        (
            &local,
            format!("{base}/dlr?secret=nope&id=1&type=1"),
            "forged secret (dlr)",
        ),
    ] {
        let r = client.get(&url).send().await.unwrap();
        assert_eq!(r.status(), 403, "{why}");
    }
    let r = local
        .post(format!(
            "{base}/mo?secret=forged-0123456789abcdef&id=abc&from=%2B15555550101"
        ))
        .header("content-type", "text/plain; charset=\"UTF-8\"")
        .body("hello")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 403, "forged secret (post)");
    assert!(
        app.store.inbound_texts(10).await.unwrap().is_empty(),
        "nothing stored"
    );

    // The right secret from an allowed address is taken, with an empty
    // body (smsbox would text a body back to the member).
    let r = local
        .get(format!("{base}/mo?secret={SECRET}&{good}"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(r.text().await.unwrap(), "");
    assert_eq!(app.store.inbound_texts(10).await.unwrap().len(), 1);
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn malformed_kannel_callbacks_are_bad_requests_and_reports_for_unknown_messages_are_ignored()
{
    let port = harness::free_port();
    let sendsms = "http://127.0.0.1:9/cgi-bin/sendsms";
    let app =
        spawn_app_with_settings(deployment(port, sendsms, ""), &settings(port, sendsms, "")).await;
    let base = format!("http://127.0.0.1:{port}/webhooks/kannel");
    let c = reqwest::Client::new();
    let s = format!("secret={SECRET}");
    for (url, why) in [
        (
            format!("{base}/mo?{s}&from=%2B15555550101&text=hi"),
            "no id",
        ),
        (
            format!("{base}/mo?{s}&id=%25I&from=%2B15555550101&text=hi"),
            "an unexpanded %I",
        ),
        (format!("{base}/mo?{s}&id=abc&text=hi"), "no sender"),
        (
            format!("{base}/mo?{s}&id=abc&from=%2B15555550101"),
            "no text",
        ),
        (format!("{base}/dlr?{s}&id=abc&type=1"), "id not a number"),
        (format!("{base}/dlr?{s}&id=1"), "no type"),
        (format!("{base}/dlr?{s}&id=1&type=%25d"), "an unexpanded %d"),
    ] {
        let r = c.get(&url).send().await.unwrap();
        assert_eq!(r.status(), 400, "{why}");
    }
    assert!(app.store.inbound_texts(10).await.unwrap().is_empty());
    // Kannel would retry a refusal: an unknown message is answered 200.
    let r = c
        .get(format!("{base}/dlr?{s}&id=999999&type=1"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    // post-url: the text is the body, in the charset its Content-Type names.
    let utf16: Vec<u8> = "ok 🙂".encode_utf16().flat_map(u16::to_be_bytes).collect();
    let r = c
        .post(format!("{base}/mo?{s}&id=7e0c&from=%2B15555550101"))
        .header("content-type", "text/plain; charset=\"UTF-16BE\"")
        .header("x-kannel-to", SHORTCODE)
        .body(utf16)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let rows = app.store.inbound_texts(10).await.unwrap();
    assert_eq!(
        (rows[0].0.sms.body.as_str(), rows[0].0.sms.to.as_str()),
        ("ok 🙂", SHORTCODE)
    );
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn delivery_reports_out_of_order_leave_a_delivered_message_delivered() {
    let Some((kannel, app)) = kannel_and_app().await else {
        return;
    };
    let id = app
        .store
        .enqueue(message_to_number(
            "t3:late",
            MEMBER_PHONE,
            "Group moved to room 4.",
            chrono::Utc::now(),
        ))
        .await
        .unwrap()
        .id();
    wait_state(&app.store, id, OutState::Delivered, PATIENCE, Some(&kannel)).await;

    // Late (or replayed) reports: accepted by the SMSC, then undelivered.
    let c = reqwest::Client::new();
    for kind in [8, 4, 2] {
        let url = format!(
            "http://{}/webhooks/kannel/dlr?secret={SECRET}&id={id}&type={kind}",
            app.addr
        );
        assert_eq!(c.get(&url).send().await.unwrap().status(), 200);
    }
    let row = app.store.message(id).await.unwrap().unwrap();
    assert_eq!(row.state, OutState::Delivered, "{row:?}");
    app.stop().await;
}

/// What a crash test runs: the real binary on a directory whose outbox
/// already holds `count` messages, Kannel, and the bodies to count.
struct CrashRig {
    kannel: Kannel,
    dir: Option<tempfile::TempDir>,
    bodies: Vec<String>,
}

/// One send at a time in either lane (the batch is escalation-kind, so it
/// goes on the urgent lane), so "the seventh send" is one message.
const CRASH_DISPATCH: &str = "dispatch: { segments_per_second: 5, backoff_initial: 200ms, backoff_max: 1s, timeout: 3s, concurrency: 1, urgent_concurrency: 1 }\n";

impl CrashRig {
    async fn new(count: usize) -> Option<CrashRig> {
        CrashRig::with_dispatch(count, CRASH_DISPATCH).await
    }

    async fn with_dispatch(count: usize, dispatch: &str) -> Option<CrashRig> {
        if !harness::available() {
            return None;
        }
        let port = harness::free_port();
        let kannel = Kannel::start(&mo_url(([127, 0, 0, 1], port).into())).await;
        let dir = deployment(port, &kannel.sendsms_url(), dispatch);
        let settings =
            hearth::settings::Settings::load(&dir.path().join("hearth.yaml"), std::iter::empty())
                .unwrap();
        let (store, _) = SqliteStore::open(&settings.database).unwrap();
        // One instant for all: they go in id order.
        let now = chrono::Utc::now();
        let bodies: Vec<String> = (1..=count)
            .map(|i| format!("batch message {i:02}"))
            .collect();
        for (i, body) in bodies.iter().enumerate() {
            let phone = format!("+1555555{:04}", 2000 + i);
            store
                .enqueue(message_to_number(&format!("crash:{i}"), &phone, body, now))
                .await
                .unwrap();
        }
        drop(store);
        Some(CrashRig {
            kannel,
            dir: Some(dir),
            bodies,
        })
    }

    fn run(&mut self, env: &[(&str, &str)]) -> Daemon {
        let daemon = spawn_daemon_in(self.dir.take().unwrap(), env);
        daemon.wait_notify("READY=1", Duration::from_secs(20));
        daemon
    }

    fn keep(&mut self, daemon: Daemon) {
        self.dir = Some(daemon.kill_keep_dir());
    }

    /// How many times fakesmsc received each body.
    fn counts(&self) -> BTreeMap<String, usize> {
        let mut counts: BTreeMap<String, usize> =
            self.bodies.iter().map(|b| (b.clone(), 0)).collect();
        for r in self.kannel.received() {
            *counts.entry(r.body).or_default() += 1;
        }
        counts
    }

    /// Waits until every body arrived, stops the daemon (SIGTERM: it
    /// records what it has in flight), and waits for Kannel to pass on
    /// everything it took: the counts are then final.
    async fn wait_all(&mut self, mut daemon: Daemon) -> BTreeMap<String, usize> {
        let deadline = Instant::now() + Duration::from_secs(60);
        while self.counts().values().any(|&n| n == 0) {
            assert!(
                Instant::now() < deadline,
                "not all arrived: {:?}\n{}",
                self.counts()
                    .iter()
                    .filter(|(_, n)| **n != 1)
                    .collect::<Vec<_>>(),
                self.kannel.logs()
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        daemon.signal(libc::SIGTERM);
        let status = daemon.wait_exit(Duration::from_secs(30));
        assert!(
            status.is_some_and(|s| s.success()),
            "the daemon did not stop cleanly on SIGTERM: {status:?}"
        );
        self.keep(daemon);
        self.kannel.wait_idle().await;
        self.counts()
    }

    fn store(&self) -> SqliteStore {
        let dir = self.dir.as_ref().unwrap();
        let settings =
            hearth::settings::Settings::load(&dir.path().join("hearth.yaml"), std::iter::empty())
                .unwrap();
        SqliteStore::open(&settings.database).unwrap().0
    }

    /// After the daemon stopped: no message is left unsent.
    async fn outbox_settled(&self) {
        let store = self.store();
        for row in store
            .list_messages(ListFilter {
                state: None,
                kind: None,
                limit: 1000,
            })
            .await
            .unwrap()
        {
            assert!(
                matches!(row.state, OutState::Sent | OutState::Delivered),
                "{row:?}"
            );
        }
    }
}

fn wait_abort(daemon: &mut Daemon) {
    use std::os::unix::process::ExitStatusExt;
    let status = daemon
        .wait_exit(Duration::from_secs(20))
        .expect("the fault injection aborts the daemon");
    assert_eq!(status.signal(), Some(libc::SIGABRT), "{status:?}");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_daemon_aborted_right_after_recording_its_seventh_send_sends_every_message_exactly_once_after_restart()
 {
    let Some(mut rig) = CrashRig::new(20).await else {
        return;
    };
    let mut daemon = rig.run(&[("HEARTH_FAULT_ABORT_AFTER_SENT", "7")]);
    wait_abort(&mut daemon);
    rig.keep(daemon);
    rig.kannel.wait_idle().await;
    assert_eq!(
        rig.kannel.received().len(),
        7,
        "aborted mid-batch, after the seventh"
    );

    let daemon = rig.run(&[]);
    let counts = rig.wait_all(daemon).await;
    assert!(
        counts.values().all(|&n| n == 1),
        "every message exactly once: {counts:?}"
    );
    rig.outbox_settled().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_daemon_aborted_between_kannel_accepting_and_recording_sends_at_most_that_message_twice()
{
    let Some(mut rig) = CrashRig::new(20).await else {
        return;
    };
    let mut daemon = rig.run(&[("HEARTH_FAULT_ABORT_BEFORE_RECORD", "7")]);
    wait_abort(&mut daemon);
    rig.kannel.wait_received(7, PATIENCE).await;
    // One send at a time: the seventh text Kannel took is the one whose
    // record the abort cut off. Messages queued at the same instant may be
    // claimed in any order, so it is named by what Kannel received.
    let in_flight = rig.kannel.received()[6].body.clone();
    rig.keep(daemon);

    let daemon = rig.run(&[]);
    let counts = rig.wait_all(daemon).await;
    // The documented at-least-once window: the one message in flight is
    // sent again after the restart, unless Kannel's delivery report for it
    // reached the restarted daemon first (it names the outbox id).
    let not_once: Vec<(&String, &usize)> = counts.iter().filter(|(_, n)| **n != 1).collect();
    assert!(
        not_once.is_empty() || not_once == vec![(&in_flight, &2)],
        "only `{in_flight}` may go twice: {counts:?}"
    );
    rig.outbox_settled().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_daemon_killed_mid_batch_loses_nothing_and_sends_at_most_one_message_twice() {
    let Some(mut rig) = CrashRig::new(20).await else {
        return;
    };
    let daemon = rig.run(&[]);
    rig.kannel.wait_received(6, Duration::from_secs(60)).await;
    rig.keep(daemon); // SIGKILL, wherever the dispatcher is
    let at_kill = rig.kannel.received().len();
    assert!(
        at_kill < 20,
        "killed mid-batch, not after it ({at_kill} sent)"
    );

    let daemon = rig.run(&[]);
    let counts = rig.wait_all(daemon).await;
    let extra: usize = counts.values().map(|n| n - 1).sum();
    assert!(counts.values().all(|&n| n >= 1), "none lost: {counts:?}");
    assert!(extra <= 1, "at most one duplicate: {counts:?}");
    rig.outbox_settled().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn sigterm_during_a_500_message_drain_finishes_the_sends_under_way_and_a_restart_sends_each_exactly_once()
 {
    // Routine settings: four sends at once, as fast as Kannel takes them.
    let Some(mut rig) = CrashRig::with_dispatch(
        500,
        "dispatch: { segments_per_second: 200, burst: 20, concurrency: 4, timeout: 3s }\n",
    )
    .await
    else {
        return;
    };
    let mut daemon = rig.run(&[]);
    rig.kannel.wait_received(100, Duration::from_secs(60)).await;
    daemon.signal(libc::SIGTERM);
    let status = daemon
        .wait_exit(Duration::from_secs(30))
        .expect("the daemon stops on SIGTERM");
    assert!(status.success(), "{status:?}");
    rig.keep(daemon);
    rig.kannel.wait_idle().await;
    let at_stop = rig.kannel.received().len();
    assert!(
        at_stop < 500,
        "stopped mid-drain, not after it ({at_stop} sent)"
    );
    // Every send under way finished and was recorded: nothing is left
    // claimed, and what Kannel took is exactly what the outbox says went.
    {
        let store = rig.store();
        let rows = store
            .list_messages(ListFilter {
                state: None,
                kind: None,
                limit: 1000,
            })
            .await
            .unwrap();
        let sending: Vec<_> = rows
            .iter()
            .filter(|r| r.state == OutState::Sending)
            .collect();
        assert!(sending.is_empty(), "left mid-send: {sending:?}");
        let sent = rows
            .iter()
            .filter(|r| matches!(r.state, OutState::Sent | OutState::Delivered))
            .count();
        assert_eq!(sent, at_stop, "recorded sends vs texts Kannel passed on");
    }

    let daemon = rig.run(&[]);
    let counts = rig.wait_all(daemon).await;
    let wrong: Vec<_> = counts.iter().filter(|(_, n)| **n != 1).collect();
    assert!(wrong.is_empty(), "each member exactly one: {wrong:?}");
    assert_eq!(rig.kannel.received().len(), 500);
    rig.outbox_settled().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_message_waits_out_a_kannel_outage_and_goes_once_kannel_is_back() {
    if !harness::available() {
        return;
    }
    let port = harness::free_port();
    let mut kannel = Kannel::start(&mo_url(([127, 0, 0, 1], port).into())).await;
    let app = spawn_app_with_settings(
        deployment(port, &kannel.sendsms_url(), DISPATCH_FAST),
        &settings(port, &kannel.sendsms_url(), DISPATCH_FAST),
    )
    .await;
    kannel.kill_bearerbox();
    // smsbox stops taking texts once bearerbox is gone.
    let probe = reqwest::Client::builder()
        .timeout(Duration::from_millis(500))
        .build()
        .unwrap();
    let deadline = Instant::now() + PATIENCE;
    // (Up, it answers even a request without credentials; down, it
    // refuses the connection, hangs, or answers 5xx.)
    while probe
        .get(kannel.sendsms_url())
        .send()
        .await
        .is_ok_and(|r| !r.status().is_server_error())
    {
        assert!(Instant::now() < deadline, "smsbox still takes texts");
        tokio::time::sleep(Duration::from_millis(25)).await;
    }

    let id = app
        .store
        .enqueue(message_to_number(
            "t5:outage",
            MEMBER_PHONE,
            "Are you okay? Reply any time.",
            chrono::Utc::now(),
        ))
        .await
        .unwrap()
        .id();
    // Retried (transient), not failed.
    let deadline = Instant::now() + PATIENCE;
    loop {
        let row = app.store.message(id).await.unwrap().unwrap();
        assert_ne!(row.state, OutState::Failed, "{row:?}");
        if row.attempts >= 3 && row.state == OutState::Queued {
            assert!(row.reason.is_some(), "{row:?}");
            break;
        }
        assert!(Instant::now() < deadline, "not retried: {row:?}");
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    assert!(kannel.received().is_empty());

    kannel.restart().await;
    wait_state(&app.store, id, OutState::Delivered, PATIENCE, Some(&kannel)).await;
    let got = kannel.received();
    assert_eq!(got.len(), 1, "{got:#?}");
    assert_eq!(got[0].body, "Are you okay? Reply any time.");
    app.stop().await;
}

#[test]
fn the_documented_mo_url_carries_every_escape_hearth_reads() {
    // Pins the documented MO URL: id (%I), sender (%p), receiver (%P),
    // the text as received (%b), and its coding and charset.
    let url = mo_url(([127, 0, 0, 1], 8080).into());
    for part in [
        "id=%I",
        "from=%p",
        "to=%P",
        "text=%b",
        "coding=%c",
        "charset=%C",
        "/webhooks/kannel/mo?secret=",
    ] {
        assert!(url.contains(part), "{url}");
    }
}
