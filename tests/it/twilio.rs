//! Twilio: the adapter against Prism serving Twilio's own OpenAPI spec
//! (every request validated; a request that breaks the spec fails the
//! test with Prism's explanation), the webhooks against the running
//! daemon's HTTP endpoint, and Twilio's refusals against a loopback server
//! that answers as Twilio does.

use std::collections::VecDeque;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use chrono::Utc;
use hearth::dispatch::provider::{Outgoing, Provider};
use hearth::dispatch::providers::twilio::TwilioProvider;
use hearth::domain::message::{Kind, NewMessage, OutState, OutboxMessage};
use hearth::intake::twilio::{EMPTY_TWIML, expected_signature};
use hearth::settings::Settings;
use hearth::store::prelude::*;
use hearth::store::sqlite::SqliteStore;
use hearth::store::traits::OutboxStore;
use hearth::store::traits::outbox::ListFilter;

use crate::support::ports::free_port;
use crate::support::*;

const SPEC: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/../shared/contracts/twilio/twilio_api_v2010.yaml"
);

/// Twilio's spec: `$TWILIO_SPEC` when set (a checkout whose `shared/`
/// lives elsewhere, like a git worktree), else [`SPEC`].
fn spec() -> String {
    std::env::var("TWILIO_SPEC")
        .ok()
        .filter(|p| !p.is_empty())
        .unwrap_or_else(|| SPEC.to_owned())
}
const ACCOUNT_SID: &str = "AC0123456789abcdef0123456789abcdef";
const TOKEN: &str = "test-auth-token-0123456789";
const FROM: &str = "+15555550000";
const MEMBER_PHONE: &str = "+15555550123";

/// A Prism mock server serving Twilio's spec, killed on drop.
mod prism {
    use std::io::{BufRead, BufReader};
    use std::path::PathBuf;
    use std::process::{Child, Command, Stdio};
    use std::sync::{Arc, Mutex};
    use std::time::{Duration, Instant};

    pub struct Prism {
        child: Child,
        pub port: u16,
        log: Arc<Mutex<Vec<String>>>,
    }

    /// `$PRISM_BIN`, else `prism` on `PATH`, else where `.ci/run` installs it.
    fn find() -> Option<PathBuf> {
        if let Some(p) = std::env::var_os("PRISM_BIN").filter(|p| !p.is_empty()) {
            return Some(PathBuf::from(p)).filter(|p| p.is_file());
        }
        let on_path = std::env::var_os("PATH")
            .into_iter()
            .flat_map(|p| std::env::split_paths(&p).collect::<Vec<_>>())
            .map(|d| d.join("prism"))
            .find(|p| p.is_file());
        on_path.or_else(|| {
            let home = std::env::var_os("HOME")?;
            Some(PathBuf::from(home).join(".cache/hearth-ci/prism/node_modules/.bin/prism"))
                .filter(|p| p.is_file())
        })
    }

    impl Prism {
        /// Starts Prism on a free loopback port and waits until it answers;
        /// `None` (skipped, see [`components::require`]) when Prism is
        /// not installed.
        ///
        /// [`components::require`]: crate::support::components::require
        pub fn start() -> Option<Prism> {
            let bin = find();
            let hint = ".ci/run installs it; or set PRISM_BIN";
            if !crate::support::components::require(bin.is_some(), "Prism", hint) {
                return None;
            }
            let bin = bin?;
            let spec = super::spec();
            assert!(
                std::path::Path::new(&spec).is_file(),
                "Twilio's spec is missing at {spec}\n  hint: set TWILIO_SPEC to its path"
            );
            // A port freed a moment ago can be taken by another test; try again.
            let mut last = String::new();
            for _ in 0..3 {
                match Prism::try_start(&bin) {
                    Ok(p) => return Some(p),
                    Err(e) => last = e,
                }
            }
            panic!("Prism did not start: {last}");
        }

        fn try_start(bin: &std::path::Path) -> Result<Prism, String> {
            let port = super::free_port();
            let mut child = Command::new(bin)
                .args([
                    "mock",
                    "-h",
                    "127.0.0.1",
                    "-p",
                    &port.to_string(),
                    "--errors",
                    &super::spec(),
                ])
                .stdin(Stdio::null())
                .stdout(Stdio::piped())
                .stderr(Stdio::piped())
                .spawn()
                .map_err(|e| format!("cannot run {}: {e}", bin.display()))?;
            let log = Arc::new(Mutex::new(Vec::new()));
            for stream in [
                child
                    .stdout
                    .take()
                    .map(|s| Box::new(s) as Box<dyn std::io::Read + Send>),
                child
                    .stderr
                    .take()
                    .map(|s| Box::new(s) as Box<dyn std::io::Read + Send>),
            ]
            .into_iter()
            .flatten()
            {
                let log = log.clone();
                std::thread::spawn(move || {
                    for line in BufReader::new(stream).lines().map_while(Result::ok) {
                        log.lock().unwrap().push(line);
                    }
                });
            }
            let mut prism = Prism { child, port, log };
            // Prism listens only once the 1.5 MB spec is loaded.
            let deadline = Instant::now() + Duration::from_secs(90);
            loop {
                if std::net::TcpStream::connect(("127.0.0.1", port)).is_ok() {
                    return Ok(prism);
                }
                if let Ok(Some(status)) = prism.child.try_wait() {
                    return Err(format!("prism exited ({status}):\n{}", prism.log_text()));
                }
                if Instant::now() > deadline {
                    return Err(format!(
                        "prism did not listen within 90s:\n{}",
                        prism.log_text()
                    ));
                }
                std::thread::sleep(Duration::from_millis(50));
            }
        }

        pub fn base_url(&self) -> String {
            format!("http://127.0.0.1:{}", self.port)
        }

        /// Waits until Prism's log has been quiet for a moment, so lines
        /// about requests already answered have been read.
        fn settle_log(&self) {
            let deadline = Instant::now() + Duration::from_secs(3);
            let mut seen = self.log.lock().unwrap().len();
            loop {
                std::thread::sleep(Duration::from_millis(150));
                let now = self.log.lock().unwrap().len();
                if now == seen || Instant::now() > deadline {
                    return;
                }
                seen = now;
            }
        }

        fn log_text(&self) -> String {
            self.log.lock().unwrap().join("\n")
        }

        /// Prism's request-validation failures and refused requests, as it
        /// logged them.
        pub fn violations(&self) -> Vec<String> {
            self.settle_log();
            self.log
                .lock()
                .unwrap()
                .iter()
                .filter(|l| {
                    (l.contains("[VALIDATOR]") && l.contains("error"))
                        || l.contains("Request terminated with error")
                })
                .cloned()
                .collect()
        }

        /// Fails the test with Prism's explanation if any request broke the spec.
        pub fn assert_no_violations(&self) {
            let v = self.violations();
            assert!(
                v.is_empty(),
                "Prism says a request broke Twilio's spec:\n{}",
                v.join("\n")
            );
        }

        /// How many requests Prism received whose path contains `path`.
        pub fn received(&self, path: &str) -> usize {
            self.settle_log();
            self.log
                .lock()
                .unwrap()
                .iter()
                .filter(|l| l.contains("Request received") && l.contains(path))
                .count()
        }
    }

    impl Drop for Prism {
        fn drop(&mut self) {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

/// A deployment directory with the auth token file and one rules file.
fn deployment() -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    write(&dir.path().join("twilio-token"), &format!("{TOKEN}\n"));
    write(&dir.path().join("rules/main.yaml"), &rules_yaml("x"));
    dir
}

/// A Twilio adapter sending from `FROM` to `base_url`, as the daemon builds it.
fn twilio_provider(dir: &std::path::Path, base_url: &str, timeout: Duration) -> TwilioProvider {
    let yaml = format!(
        "provider: {{ kind: twilio, account_sid: {ACCOUNT_SID}, auth_token: file:twilio-token, from: \"{FROM}\", base_url: \"{base_url}\" }}\n"
    );
    let settings =
        Settings::parse(&yaml, &dir.join("hearth.yaml"), dir, std::iter::empty()).unwrap();
    TwilioProvider::from_settings(&settings.provider, &settings, timeout).unwrap()
}

/// Settings for a daemon on `port` that sends through Twilio at `base_url`.
fn twilio_settings(port: u16, base_url: &str, dispatch: &str) -> String {
    format!(
        "listen: 127.0.0.1:{port}
public_url: http://127.0.0.1:{port}
rules_dir: rules
database: {{ path: state/hearth.db }}
reload_debounce: 100ms
provider: {{ kind: twilio, account_sid: {ACCOUNT_SID}, auth_token: file:twilio-token, from: \"{FROM}\", base_url: \"{base_url}\" }}
dispatch: {{ segments_per_second: 20, burst: 20, {dispatch} }}
"
    )
}

/// The daemon with Twilio settings, and its public URL.
async fn spawn_twilio_app(base_url: &str, dispatch: &str) -> (TestApp, String) {
    let port = free_port();
    let app =
        spawn_app_with_settings(deployment(), &twilio_settings(port, base_url, dispatch)).await;
    assert_eq!(app.addr.port(), port);
    (app, format!("http://127.0.0.1:{port}"))
}

fn escalation(key: &str, to: &str, body: &str) -> NewMessage {
    NewMessage {
        idempotency_key: key.into(),
        member_id: None,
        to: Some(to.parse().unwrap()),
        body: body.into(),
        kind: Kind::Escalation,
        not_before: Utc::now(),
        expires_at: None,
        plan: None,
        suppressed: None,
    }
}

/// Queues an escalation-kind message to `to` and returns its outbox id.
async fn queue(app: &TestApp, key: &str, to: &str, body: &str) -> i64 {
    app.store
        .enqueue(escalation(key, to, body))
        .await
        .unwrap()
        .id()
}

/// An IANA zone where it is now 12:00, inside the default send window.
fn midday_timezone() -> String {
    crate::support::timezone_where_it_is(12)
}

/// Imports one consenting member; returns their id.
async fn import_member(store: &SqliteStore, external_id: &str, phone: &str) -> i64 {
    let csv = format!(
        "external_id,first_name,phone,timezone,consent\n{external_id},Annabelle,{phone},{},yes\n",
        midday_timezone()
    );
    let report = crate::support::import_roster(store, &csv).await;
    assert_eq!(report.consent_granted, 1, "{report:?}");
    let member = store.member(external_id).await.unwrap().unwrap();
    assert!(member.consent.granted());
    member.id
}

/// Waits until the outbox row satisfies `done`; returns it.
async fn wait_for_row(
    store: &SqliteStore,
    id: i64,
    what: &str,
    done: impl Fn(&OutboxMessage) -> bool,
) -> OutboxMessage {
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let row = store.message(id).await.unwrap().unwrap();
        if done(&row) {
            return row;
        }
        assert!(
            Instant::now() < deadline,
            "outbox #{id} never became {what}: {row:?}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

fn settled(row: &OutboxMessage) -> bool {
    !matches!(row.state, OutState::Queued | OutState::Sending)
}

/// Posts a form to the daemon, signed (or not) as Twilio would sign it.
async fn post_signed(
    app_url: &str,
    path: &str,
    params: &[(&str, &str)],
    signature: Option<String>,
) -> reqwest::Response {
    let mut req = reqwest::Client::new()
        .post(format!("{app_url}{path}"))
        .form(params);
    if let Some(sig) = signature {
        req = req.header("x-twilio-signature", sig);
    }
    req.send().await.unwrap()
}

fn sign(url: &str, params: &[(&str, &str)]) -> String {
    let owned: Vec<(String, String)> = params
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    expected_signature(TOKEN.as_bytes(), url, &owned)
}

/// Posts a status callback signed for the daemon's public URL.
async fn status_callback(public_url: &str, params: &[(&str, &str)]) {
    let url = format!("{public_url}/webhooks/twilio/status");
    let resp = post_signed(
        public_url,
        "/webhooks/twilio/status",
        params,
        Some(sign(&url, params)),
    )
    .await;
    assert_eq!(resp.status(), 200, "{}", resp.text().await.unwrap());
}

#[tokio::test]
async fn the_adapters_request_passes_prisms_validation_against_twilios_spec_and_the_201_sid_is_captured()
 {
    let Some(prism) = prism::Prism::start() else {
        return;
    };
    let dir = deployment();
    let service = "MG0123456789abcdef0123456789abcdef";
    for sender in [
        format!("from: \"{FROM}\""),
        format!("messaging_service_sid: {service}"),
    ] {
        let yaml = format!(
            "public_url: https://hearth.example/\nprovider: {{ kind: twilio, account_sid: {ACCOUNT_SID}, auth_token: file:twilio-token, {sender}, base_url: \"{}\" }}\n",
            prism.base_url()
        );
        let settings = Settings::parse(
            &yaml,
            &dir.path().join("hearth.yaml"),
            dir.path(),
            std::iter::empty(),
        )
        .unwrap();
        let provider =
            TwilioProvider::from_settings(&settings.provider, &settings, Duration::from_secs(10))
                .unwrap();
        let msg = Outgoing {
            outbox_id: 1,
            member_id: Some(7),
            to: MEMBER_PHONE.parse().unwrap(),
            body: "Hi Annabelle, group meets tomorrow at 18:00 — reply STOP to opt out. 👍".into(),
            segments: 2,
        };
        let result = provider.send(&msg).await;
        prism.assert_no_violations();
        let accepted = result
            .unwrap_or_else(|e| panic!("Prism refused the adapter's request ({sender}): {e}"));
        // The sid of the spec's first 201 example, read from the answer.
        assert_eq!(
            accepted.provider_message_id.as_deref(),
            Some("SMaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa")
        );
    }
    assert_eq!(prism.received("/Messages.json"), 2);

    // Prism does validate: a request without `To` is refused with 422 and
    // the reason, and the harness sees it as a violation.
    let resp = reqwest::Client::new()
        .post(format!(
            "{}/2010-04-01/Accounts/{ACCOUNT_SID}/Messages.json",
            prism.base_url()
        ))
        .basic_auth(ACCOUNT_SID, Some(TOKEN))
        .form(&[("From", FROM), ("Body", "no recipient")])
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 422);
    let problem: serde_json::Value = resp.json().await.unwrap();
    assert_eq!(
        problem["type"], "https://stoplight.io/prism/errors#UNPROCESSABLE_ENTITY",
        "{problem}"
    );
    assert!(
        problem["validation"]
            .to_string()
            .contains("required property 'To'"),
        "{problem}"
    );
    let violations = prism.violations().join("\n");
    assert!(
        violations.contains("required property 'To'"),
        "{violations}"
    );
    // So does the adapter's error path: a wrong account SID in the URL.
    let raw = reqwest::Client::new()
        .post(format!(
            "{}/2010-04-01/Accounts/AC123/Messages.json",
            prism.base_url()
        ))
        .basic_auth(ACCOUNT_SID, Some(TOKEN))
        .form(&[("To", MEMBER_PHONE), ("From", FROM), ("Body", "x")])
        .send()
        .await
        .unwrap();
    assert_eq!(raw.status(), 422);
}

#[tokio::test]
async fn a_queued_message_goes_through_the_daemon_to_prism_and_is_recorded_sent_with_twilios_sid() {
    let Some(prism) = prism::Prism::start() else {
        return;
    };
    let (app, _) = spawn_twilio_app(&prism.base_url(), "retry_horizon: 1m").await;
    let id = queue(
        &app,
        "e2e:1",
        "+15555550199",
        "Crisis line for group Tuesday: a facilitator will call you.",
    )
    .await;
    let row = wait_for_row(&app.store, id, "settled", settled).await;
    prism.assert_no_violations();
    assert_eq!(
        row.state,
        OutState::Sent,
        "{row:?}: reason {:?}",
        row.reason
    );
    assert_eq!(row.provider.as_deref(), Some("twilio"));
    assert_eq!(
        row.provider_message_id.as_deref(),
        Some("SMaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa")
    );
    assert_eq!(row.attempts, 1);
    assert_eq!(
        prism.received(&format!("/2010-04-01/Accounts/{ACCOUNT_SID}/Messages.json")),
        1
    );
    app.stop().await;
}

#[tokio::test]
async fn inbound_webhooks_are_stored_only_with_a_valid_twilio_signature() {
    let (app, public) = spawn_twilio_app("http://127.0.0.1:9", "retry_horizon: 1m").await;
    let sms_url = format!("{public}/webhooks/twilio/sms");
    let inbound = |sid: &'static str, body: &'static str| {
        vec![
            ("ToCountry", "US"),
            ("SmsMessageSid", sid),
            ("NumMedia", "0"),
            ("MessageSid", sid),
            ("AccountSid", ACCOUNT_SID),
            ("From", MEMBER_PHONE),
            ("To", FROM),
            ("Body", body),
            ("NumSegments", "1"),
            ("ApiVersion", "2010-04-01"),
        ]
    };
    let rows = || async {
        app.store
            .inbound_texts(100)
            .await
            .unwrap()
            .into_iter()
            .map(|(row, _)| row)
            .collect::<Vec<_>>()
    };

    // Valid: 200, empty TwiML, one row.
    let p = inbound(
        "SM00000000000000000000000000000001",
        "I'm ok & you? 100% + fine = good",
    );
    let resp = post_signed(
        &public,
        "/webhooks/twilio/sms",
        &p,
        Some(sign(&sms_url, &p)),
    )
    .await;
    assert_eq!(resp.status(), 200);
    assert_eq!(resp.headers()["content-type"], "text/xml");
    assert_eq!(resp.text().await.unwrap(), EMPTY_TWIML);
    let stored = rows().await;
    assert_eq!(stored.len(), 1);
    assert_eq!(stored[0].sms.provider, "twilio");
    assert_eq!(
        stored[0].sms.provider_message_id,
        "SM00000000000000000000000000000001"
    );
    assert_eq!(stored[0].sms.from, MEMBER_PHONE);
    assert_eq!(stored[0].sms.to, FROM);
    assert_eq!(stored[0].sms.body, "I'm ok & you? 100% + fine = good");

    // Tampered body: signed for one text, carrying another.
    let signed = inbound("SM00000000000000000000000000000002", "see you tuesday");
    let tampered = inbound("SM00000000000000000000000000000002", "STOP");
    let resp = post_signed(
        &public,
        "/webhooks/twilio/sms",
        &tampered,
        Some(sign(&sms_url, &signed)),
    )
    .await;
    assert_eq!(resp.status(), 403);

    // Signed for another URL (the status endpoint; another host).
    let p = inbound("SM00000000000000000000000000000003", "hello");
    for url in [
        format!("{public}/webhooks/twilio/status"),
        "https://evil.example/webhooks/twilio/sms".to_owned(),
    ] {
        let resp = post_signed(&public, "/webhooks/twilio/sms", &p, Some(sign(&url, &p))).await;
        assert_eq!(resp.status(), 403, "signed for {url}");
    }

    // No signature at all; an empty one.
    let p = inbound("SM00000000000000000000000000000004", "hello");
    assert_eq!(
        post_signed(&public, "/webhooks/twilio/sms", &p, None)
            .await
            .status(),
        403
    );
    assert_eq!(
        post_signed(&public, "/webhooks/twilio/sms", &p, Some(String::new()))
            .await
            .status(),
        403
    );
    assert_eq!(rows().await.len(), 1, "a refused request stored something");

    // The query string is part of the signed URL.
    let p = inbound("SM00000000000000000000000000000005", "with a query");
    let resp = post_signed(
        &public,
        "/webhooks/twilio/sms?clinic=north&x=1",
        &p,
        Some(sign(&format!("{sms_url}?clinic=north&x=1"), &p)),
    )
    .await;
    assert_eq!(resp.status(), 200);
    let resp = post_signed(
        &public,
        "/webhooks/twilio/sms?clinic=south&x=1",
        &p,
        Some(sign(&format!("{sms_url}?clinic=north&x=1"), &p)),
    )
    .await;
    assert_eq!(resp.status(), 403);
    assert_eq!(rows().await.len(), 2);

    // Twilio retrying the same MessageSid: answered 200 both times, stored once.
    let p = inbound("SM00000000000000000000000000000006", "sent twice");
    for _ in 0..2 {
        let resp = post_signed(
            &public,
            "/webhooks/twilio/sms",
            &p,
            Some(sign(&sms_url, &p)),
        )
        .await;
        assert_eq!(resp.status(), 200);
        assert_eq!(resp.text().await.unwrap(), EMPTY_TWIML);
    }
    let stored = rows().await;
    assert_eq!(stored.len(), 3);
    assert_eq!(
        stored
            .iter()
            .filter(|r| r.sms.provider_message_id == "SM00000000000000000000000000000006")
            .count(),
        1
    );

    // Correctly signed but without MessageSid: malformed, 400, nothing stored.
    let p = vec![("From", MEMBER_PHONE), ("To", FROM), ("Body", "no sid")];
    let resp = post_signed(
        &public,
        "/webhooks/twilio/sms",
        &p,
        Some(sign(&sms_url, &p)),
    )
    .await;
    assert_eq!(resp.status(), 400);
    assert_eq!(rows().await.len(), 3);
    app.stop().await;
}

#[tokio::test]
async fn webhooks_are_refused_when_no_public_url_is_configured() {
    let dir = deployment();
    let settings = format!(
        "listen: 127.0.0.1:0\nrules_dir: rules\ndatabase: {{ path: state/hearth.db }}\nprovider: {{ kind: twilio, account_sid: {ACCOUNT_SID}, auth_token: file:twilio-token, from: \"{FROM}\", base_url: \"http://127.0.0.1:9\" }}\n"
    );
    let app = spawn_app_with_settings(dir, &settings).await;
    let addr = format!("http://{}", app.addr);
    let p = [
        ("MessageSid", "SM00000000000000000000000000000009"),
        ("From", MEMBER_PHONE),
        ("To", FROM),
        ("Body", "hi"),
    ];
    // Signed for the address it was reached at: still no URL to check it by.
    let sig = sign(&format!("{addr}/webhooks/twilio/sms"), &p);
    let resp = post_signed(&addr, "/webhooks/twilio/sms", &p, Some(sig)).await;
    assert_eq!(resp.status(), 403);
    assert!(app.store.inbound_texts(10).await.unwrap().is_empty());
    app.stop().await;
}

/// One planned answer of the fake Twilio.
#[derive(Clone)]
struct Answer {
    status: u16,
    body: serde_json::Value,
    retry_after: Option<&'static str>,
    delay: Duration,
}

fn twilio_error(status: u16, code: i64) -> Answer {
    Answer {
        status,
        body: serde_json::json!({
            "code": code,
            // Twilio's messages do quote numbers: they must not reach our reasons.
            "message": format!("The 'To' number {MEMBER_PHONE} is not valid"),
            "more_info": format!("https://www.twilio.com/docs/errors/{code}"),
            "status": status,
        }),
        retry_after: None,
        delay: Duration::ZERO,
    }
}

/// A loopback server answering `Messages.json` as Twilio does: planned
/// answers first, then 201 with a fresh sid.
struct FakeTwilio {
    addr: SocketAddr,
    state: Arc<FakeState>,
    _shutdown: tokio::sync::oneshot::Sender<()>,
}

#[derive(Default)]
struct FakeState {
    plan: Mutex<VecDeque<Answer>>,
    /// When each request arrived, and whether it carried Basic auth.
    requests: Mutex<Vec<(Instant, bool)>>,
    accepted: Mutex<Vec<String>>,
    /// Every message the fake took, as its Messages list shows them.
    messages: Mutex<Vec<serde_json::Value>>,
    /// The queries of `GET Messages.json` (the lookups).
    lookups: Mutex<Vec<String>>,
}

impl FakeState {
    /// Takes a message: a fresh sid, and a row in the Messages list.
    fn take(&self, form: &[(String, String)]) -> String {
        let field = |k: &str| {
            form.iter()
                .find(|(n, _)| n == k)
                .map(|(_, v)| v.clone())
                .unwrap_or_default()
        };
        let mut accepted = self.accepted.lock().unwrap();
        let sid = format!("SM{:032x}", accepted.len() + 1);
        accepted.push(sid.clone());
        self.messages.lock().unwrap().push(serde_json::json!({
            "sid": sid,
            "to": field("To"),
            "from": field("From"),
            "body": field("Body"),
            "status": "sent",
            "date_created": Utc::now().to_rfc2822(),
        }));
        sid
    }
}

/// `GET Messages.json?To=…`: the messages the fake took, to that number.
async fn fake_list(
    State(state): State<Arc<FakeState>>,
    axum::extract::RawQuery(query): axum::extract::RawQuery,
) -> Response {
    let query = query.unwrap_or_default();
    state.lookups.lock().unwrap().push(query.clone());
    let to = form_urlencoded::parse(query.as_bytes())
        .find(|(k, _)| k == "To")
        .map(|(_, v)| v.into_owned())
        .unwrap_or_default();
    let messages: Vec<serde_json::Value> = state
        .messages
        .lock()
        .unwrap()
        .iter()
        .filter(|m| m["to"] == to.as_str())
        .cloned()
        .collect();
    axum::Json(serde_json::json!({ "messages": messages, "page": 0, "page_size": 50 }))
        .into_response()
}

async fn fake_messages(
    State(state): State<Arc<FakeState>>,
    headers: HeaderMap,
    body: String,
) -> Response {
    let authed = headers
        .get("authorization")
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("Basic "));
    state
        .requests
        .lock()
        .unwrap()
        .push((Instant::now(), authed));
    let planned = state.plan.lock().unwrap().pop_front();
    let form: Vec<(String, String)> = form_urlencoded::parse(body.as_bytes())
        .into_owned()
        .collect();
    match planned {
        Some(a) => {
            // A planned success is taken at once, however late the answer.
            let mut body = a.body;
            if (200..300).contains(&a.status) {
                body["sid"] = state.take(&form).into();
            }
            tokio::time::sleep(a.delay).await;
            let mut resp =
                (StatusCode::from_u16(a.status).unwrap(), axum::Json(body)).into_response();
            if let Some(ra) = a.retry_after {
                resp.headers_mut()
                    .insert("retry-after", ra.parse().unwrap());
            }
            resp
        }
        None => {
            assert!(form.iter().any(|(k, _)| k == "To"), "no To in {form:?}");
            let sid = state.take(&form);
            (
                StatusCode::CREATED,
                axum::Json(serde_json::json!({ "sid": sid, "status": "queued" })),
            )
                .into_response()
        }
    }
}

impl FakeTwilio {
    async fn start(plan: Vec<Answer>) -> FakeTwilio {
        let state = Arc::new(FakeState {
            plan: Mutex::new(plan.into()),
            ..FakeState::default()
        });
        let router = axum::Router::new()
            .route(
                "/2010-04-01/Accounts/{sid}/Messages.json",
                axum::routing::post(fake_messages).get(fake_list),
            )
            .with_state(state.clone());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let (tx, rx) = tokio::sync::oneshot::channel::<()>();
        tokio::spawn(async move {
            axum::serve(listener, router)
                .with_graceful_shutdown(async move {
                    let _ = rx.await;
                })
                .await
                .unwrap();
        });
        FakeTwilio {
            addr,
            state,
            _shutdown: tx,
        }
    }

    fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    fn requests(&self) -> Vec<Instant> {
        let requests = self.state.requests.lock().unwrap();
        assert!(
            requests.iter().all(|(_, authed)| *authed),
            "a request without Basic auth"
        );
        requests.iter().map(|(at, _)| *at).collect()
    }

    fn accepted(&self) -> Vec<String> {
        self.state.accepted.lock().unwrap().clone()
    }

    fn lookups(&self) -> Vec<String> {
        self.state.lookups.lock().unwrap().clone()
    }
}

#[tokio::test]
async fn status_callbacks_out_of_order_never_move_a_message_backwards() {
    let twilio = FakeTwilio::start(vec![]).await;
    let (app, public) = spawn_twilio_app(&twilio.url(), "retry_horizon: 1m").await;
    let a = queue(&app, "status:a", "+15555550198", "first").await;
    let b = queue(&app, "status:b", "+15555550197", "second").await;
    let row_a = wait_for_row(&app.store, a, "sent", |r| r.state == OutState::Sent).await;
    let row_b = wait_for_row(&app.store, b, "sent", |r| r.state == OutState::Sent).await;
    let sid_a = row_a.provider_message_id.clone().unwrap();
    let sid_b = row_b.provider_message_id.clone().unwrap();
    assert_ne!(sid_a, sid_b);
    assert!(twilio.accepted().contains(&sid_a) && twilio.accepted().contains(&sid_b));

    let report = |sid: &str, status: &'static str| {
        vec![
            ("MessageSid".to_owned(), sid.to_owned()),
            ("MessageStatus".to_owned(), status.to_owned()),
            ("AccountSid".to_owned(), ACCOUNT_SID.to_owned()),
            ("From".to_owned(), FROM.to_owned()),
            ("ApiVersion".to_owned(), "2010-04-01".to_owned()),
        ]
    };
    let send = |params: Vec<(String, String)>| {
        let public = public.clone();
        async move {
            let borrowed: Vec<(&str, &str)> = params
                .iter()
                .map(|(k, v)| (k.as_str(), v.as_str()))
                .collect();
            status_callback(&public, &borrowed).await;
        }
    };

    // In-flight states add nothing.
    send(report(&sid_a, "sending")).await;
    assert_eq!(
        app.store.message(a).await.unwrap().unwrap().state,
        OutState::Sent
    );
    // delivered, then a late `sent`: stays delivered.
    send(report(&sid_a, "delivered")).await;
    send(report(&sid_a, "sent")).await;
    let row = app.store.message(a).await.unwrap().unwrap();
    assert_eq!(row.state, OutState::Delivered, "{row:?}");

    // sent, then failed with ErrorCode 30003 (unreachable handset): failed.
    send(report(&sid_b, "sent")).await;
    let mut failed = report(&sid_b, "failed");
    failed.push(("ErrorCode".into(), "30003".into()));
    send(failed).await;
    let row = app.store.message(b).await.unwrap().unwrap();
    assert_eq!(row.state, OutState::Failed, "{row:?}");
    assert!(
        row.reason.as_deref().is_some_and(|r| r.contains("30003")),
        "{:?}",
        row.reason
    );

    // A report for a sid we never sent is answered 200 and changes nothing.
    send(report("SMffffffffffffffffffffffffffffffff", "delivered")).await;

    // An unsigned report is refused.
    let p = [
        ("MessageSid", sid_b.as_str()),
        ("MessageStatus", "delivered"),
    ];
    let resp = post_signed(&public, "/webhooks/twilio/status", &p, None).await;
    assert_eq!(resp.status(), 403);
    assert_eq!(
        app.store.message(b).await.unwrap().unwrap().state,
        OutState::Failed
    );
    app.stop().await;
}

#[tokio::test]
async fn twilio_21610_fails_the_message_and_revokes_the_members_consent() {
    let twilio = FakeTwilio::start(vec![twilio_error(400, 21610)]).await;
    let (app, _) = spawn_twilio_app(&twilio.url(), "backoff_initial: 100ms, backoff_max: 2s").await;
    let member = import_member(&app.store, "M-001", MEMBER_PHONE).await;
    let id = app
        .store
        .enqueue(NewMessage {
            idempotency_key: "schedule:weekly:now:member:1".into(),
            member_id: Some(member),
            to: None,
            body: "How is your week going?".into(),
            kind: Kind::Scheduled,
            not_before: Utc::now(),
            expires_at: None,
            plan: None,
            suppressed: None,
        })
        .await
        .unwrap()
        .id();
    let row = wait_for_row(&app.store, id, "settled", settled).await;
    assert_eq!(row.state, OutState::Failed, "{row:?}");
    assert_eq!(row.attempts, 1);
    let reason = row.reason.unwrap_or_default();
    assert!(reason.contains("21610"), "{reason}");
    assert!(
        !reason.contains("5555550123"),
        "the number leaked into the reason: {reason}"
    );
    let m = app.store.member("M-001").await.unwrap().unwrap();
    assert!(!m.consent.granted(), "consent still granted: {}", m.consent);
    let last = m.consent.last.unwrap();
    assert!(
        last.text.contains("provider reported the number opted out") && last.text.contains("21610"),
        "{}",
        last.text
    );
    // Nothing further goes to them: nothing is left queued to go.
    assert!(
        app.store
            .list_messages(ListFilter {
                state: Some(OutState::Queued),
                kind: None,
                limit: 10
            })
            .await
            .unwrap()
            .is_empty()
    );
    assert_eq!(twilio.requests().len(), 1);
    app.stop().await;
}

#[tokio::test]
async fn a_429_is_retried_after_its_retry_after_and_the_message_sent_once() {
    let mut throttled = twilio_error(429, 20429);
    throttled.retry_after = Some("1");
    let twilio = FakeTwilio::start(vec![throttled]).await;
    let (app, _) = spawn_twilio_app(&twilio.url(), "backoff_initial: 100ms, backoff_max: 2s").await;
    let id = queue(&app, "retry:429", "+15555550196", "hello").await;
    let row = wait_for_row(&app.store, id, "sent", settled).await;
    assert_eq!(row.state, OutState::Sent, "{row:?}");
    assert_eq!(row.attempts, 2);
    let at = twilio.requests();
    assert_eq!(at.len(), 2);
    // Retry-After (1s) won over the 100ms backoff.
    assert!(
        at[1] - at[0] >= Duration::from_millis(900),
        "retried after {:?}",
        at[1] - at[0]
    );
    assert_eq!(twilio.accepted().len(), 1);
    assert_eq!(
        row.provider_message_id.as_deref(),
        Some(twilio.accepted()[0].as_str())
    );
    app.stop().await;
}

#[tokio::test]
async fn a_500_is_retried_and_the_message_sent_once() {
    let twilio = FakeTwilio::start(vec![twilio_error(500, 20500)]).await;
    let (app, _) = spawn_twilio_app(&twilio.url(), "backoff_initial: 100ms, backoff_max: 2s").await;
    let id = queue(&app, "retry:500", "+15555550195", "hello").await;
    let row = wait_for_row(&app.store, id, "sent", settled).await;
    assert_eq!(row.state, OutState::Sent, "{row:?}");
    assert_eq!(row.attempts, 2);
    assert_eq!(twilio.requests().len(), 2);
    assert_eq!(twilio.accepted().len(), 1);
    app.stop().await;
}

#[tokio::test]
async fn a_request_that_times_out_unanswered_is_looked_up_and_then_sent_again() {
    let mut slow = twilio_error(500, 20500);
    slow.delay = Duration::from_secs(2);
    let twilio = FakeTwilio::start(vec![slow]).await;
    let (app, _) = spawn_twilio_app(
        &twilio.url(),
        "timeout: 300ms, backoff_initial: 100ms, backoff_max: 2s",
    )
    .await;
    let id = queue(&app, "retry:timeout", "+15555550194", "hello").await;
    let row = wait_for_row(&app.store, id, "sent", settled).await;
    assert_eq!(row.state, OutState::Sent, "{row:?}");
    // The timeout was ambiguous: Twilio's list was asked (by number, since
    // the day of the attempt) before the message went again.
    let lookups = twilio.lookups();
    assert_eq!(lookups.len(), 1, "{lookups:?}");
    assert!(lookups[0].contains("To=%2B15555550194"), "{lookups:?}");
    assert!(lookups[0].contains("DateSent%3E="), "{lookups:?}");
    assert_eq!(row.attempts, 2);
    assert_eq!(twilio.requests().len(), 2, "two POSTs");
    assert_eq!(twilio.accepted().len(), 1);
    app.stop().await;
}

#[tokio::test]
async fn a_request_that_times_out_after_twilio_took_it_is_found_by_the_lookup_and_not_sent_again() {
    let slow_success = Answer {
        status: 201,
        body: serde_json::json!({ "status": "queued" }),
        retry_after: None,
        delay: Duration::from_secs(2),
    };
    let twilio = FakeTwilio::start(vec![slow_success]).await;
    let (app, _) = spawn_twilio_app(
        &twilio.url(),
        "timeout: 300ms, backoff_initial: 100ms, backoff_max: 2s",
    )
    .await;
    let id = queue(&app, "timeout:taken", "+15555550193", "hello").await;
    let row = wait_for_row(&app.store, id, "sent", settled).await;
    assert_eq!(row.state, OutState::Sent, "{row:?}");
    assert_eq!(twilio.accepted().len(), 1);
    assert_eq!(
        row.provider_message_id.as_deref(),
        Some(twilio.accepted()[0].as_str()),
        "the sid found by the lookup"
    );
    assert_eq!(row.attempts, 1);
    // One POST and one lookup: never sent twice.
    assert_eq!(twilio.lookups().len(), 1);
    assert_eq!(twilio.requests().len(), 1);
    app.stop().await;
}

#[tokio::test]
async fn a_2xx_whose_body_is_cut_off_is_an_acceptance_without_a_sid_not_a_retry() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let hits = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let counter = hits.clone();
    tokio::spawn(async move {
        loop {
            let (mut conn, _) = listener.accept().await.unwrap();
            counter.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
            // Read the request, answer 201 with half a body, hang up.
            let mut buf = vec![0u8; 16 * 1024];
            let _ = conn.read(&mut buf).await;
            let _ = conn
                .write_all(
                    b"HTTP/1.1 201 Created\r\nContent-Type: application/json\r\nContent-Length: 400\r\n\r\n{\"sid\": \"SMaaaa",
                )
                .await;
            let _ = conn.shutdown().await;
        }
    });
    let dir = deployment();
    let provider = twilio_provider(
        dir.path(),
        &format!("http://{addr}"),
        Duration::from_secs(5),
    );
    let msg = Outgoing {
        outbox_id: 1,
        member_id: None,
        to: MEMBER_PHONE.parse().unwrap(),
        body: "hello".into(),
        segments: 1,
    };
    let accepted = provider
        .send(&msg)
        .await
        .expect("a 2xx is an acceptance even when its body is lost");
    assert_eq!(accepted.provider_message_id, None);
    assert_eq!(hits.load(std::sync::atomic::Ordering::SeqCst), 1);
}

#[tokio::test]
async fn the_lookup_after_an_ambiguous_send_passes_prisms_validation_against_twilios_spec() {
    let Some(prism) = prism::Prism::start() else {
        return;
    };
    let dir = deployment();
    let provider = twilio_provider(dir.path(), &prism.base_url(), Duration::from_secs(10));
    let msg = Outgoing {
        outbox_id: 1,
        member_id: None,
        to: MEMBER_PHONE.parse().unwrap(),
        body: "a body none of the spec's examples has".into(),
        segments: 1,
    };
    let _ = provider.reconcile(&msg, Utc::now()).await;
    // The spec's own example list answer breaks its `format: uri`, which
    // Prism reports (and answers 500); the request itself must break
    // nothing.
    let request_side: Vec<String> = prism
        .violations()
        .into_iter()
        .filter(|l| !l.contains("Response body") && !l.contains("errors#VIOLATIONS"))
        .collect();
    assert!(
        request_side.is_empty(),
        "Prism says the lookup broke Twilio's spec:\n{}",
        request_side.join("\n")
    );
    // Prism does check the lookup's query: a bad PageSize is named.
    let resp = reqwest::Client::new()
        .get(format!(
            "{}/2010-04-01/Accounts/{ACCOUNT_SID}/Messages.json?To=%2B15555550123&PageSize=many",
            prism.base_url()
        ))
        .basic_auth(ACCOUNT_SID, Some(TOKEN))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 422);
    assert!(
        prism.violations().join("\n").contains("pagesize"),
        "{:?}",
        prism.violations()
    );
    assert_eq!(prism.received("/Messages.json"), 2);
}

#[tokio::test]
async fn twilio_21211_fails_the_message_without_a_retry() {
    let twilio = FakeTwilio::start(vec![twilio_error(400, 21211)]).await;
    let (app, _) = spawn_twilio_app(&twilio.url(), "backoff_initial: 100ms, backoff_max: 2s").await;
    let id = queue(&app, "fail:21211", MEMBER_PHONE, "hello").await;
    let row = wait_for_row(&app.store, id, "settled", settled).await;
    assert_eq!(row.state, OutState::Failed, "{row:?}");
    assert_eq!(row.attempts, 1);
    let reason = row.reason.unwrap_or_default();
    assert!(
        reason.starts_with("HTTP 400: twilio error 21211"),
        "{reason}"
    );
    assert!(
        !reason.contains("5555550123"),
        "the number leaked into the reason: {reason}"
    );
    // Not retried: nothing is left queued to go.
    assert!(
        app.store
            .list_messages(ListFilter {
                state: Some(OutState::Queued),
                kind: None,
                limit: 10
            })
            .await
            .unwrap()
            .is_empty()
    );
    assert_eq!(twilio.requests().len(), 1);
    assert_eq!(app.store.message(id).await.unwrap().unwrap().attempts, 1);
    app.stop().await;
}

#[tokio::test]
async fn a_message_left_mid_send_by_a_crash_is_found_at_twilio_after_the_restart_and_not_sent_again()
 {
    use hearth::dispatch::provider::AnyProvider;
    use hearth::dispatch::worker::{Dispatcher, ExecutionOutcome};
    use hearth::store::traits::outbox::InstanceId;

    let twilio = FakeTwilio::start(vec![]).await;
    let dir = deployment();
    let yaml = format!(
        "provider: {{ kind: twilio, account_sid: {ACCOUNT_SID}, auth_token: file:twilio-token, from: \"{FROM}\", base_url: \"{}\" }}\n",
        twilio.url()
    );
    let settings = Settings::parse(
        &yaml,
        &dir.path().join("hearth.yaml"),
        dir.path(),
        std::iter::empty(),
    )
    .unwrap();
    let (store, _) = SqliteStore::open_at(
        &dir.path().join("h.db"),
        &hearth::store::sqlite::KeySource::Generated(dir.path().join("h.db.key")),
    )
    .unwrap();
    let id = queue_in(&store, "crash:1", "+15555550192", "see you tonight").await;
    // The last run claimed it and Twilio took it; then the process died
    // before recording the send.
    let host = InstanceId::new("clinic-host").unwrap();
    store
        .claim(&host, Utc::now(), chrono::TimeDelta::minutes(1))
        .await
        .unwrap()
        .expect("claimed");
    let resp = reqwest::Client::new()
        .post(format!(
            "{}/2010-04-01/Accounts/{ACCOUNT_SID}/Messages.json",
            twilio.url()
        ))
        .basic_auth(ACCOUNT_SID, Some(TOKEN))
        .form(&[
            ("To", "+15555550192"),
            ("From", FROM),
            ("Body", "see you tonight"),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 201);

    // The restart takes its claim back (possibly sent) and asks Twilio.
    let provider =
        TwilioProvider::from_settings(&settings.provider, &settings, Duration::from_secs(5))
            .unwrap();
    let dispatcher = Dispatcher::new(
        store.clone(),
        Arc::new(AnyProvider::Twilio(provider)),
        settings.dispatch.clone(),
    )
    .with_instance(host);
    assert_eq!(dispatcher.recover().await.unwrap(), 1);
    assert!(store.message(id).await.unwrap().unwrap().possibly_sent);
    assert_eq!(
        dispatcher.try_execute_task().await.unwrap(),
        ExecutionOutcome::Sent { id }
    );
    let row = store.message(id).await.unwrap().unwrap();
    assert_eq!(row.state, OutState::Sent, "{row:?}");
    assert_eq!(
        row.provider_message_id.as_deref(),
        Some(twilio.accepted()[0].as_str())
    );
    assert_eq!(twilio.requests().len(), 1, "sent again");
    assert_eq!(twilio.lookups().len(), 1);
    assert_eq!(
        dispatcher
            .counters()
            .reconciled_sent
            .load(std::sync::atomic::Ordering::SeqCst),
        1
    );
}

/// Queues an escalation-kind message straight into `store`.
async fn queue_in(store: &SqliteStore, key: &str, to: &str, body: &str) -> i64 {
    store.enqueue(escalation(key, to, body)).await.unwrap().id()
}
