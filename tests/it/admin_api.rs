//! The admin API (issue 10) over real loopback HTTP: the daemon in-process
//! on a temp deployment whose encrypted database holds incidents recorded,
//! escalated and paged through the store, as the engine does.

use std::path::Path;

use chrono::{TimeDelta, Utc};
use hearth::domain::Channel;
use hearth::domain::incident::{AlertHit, Severity, Subject};
use hearth::domain::message::{InboundSms, Received};
use hearth::escalate::pinned::Pinned;
use hearth::store::prelude::*;
use hearth::store::sqlite::{KeySource, SqliteStore};
use hearth::store::traits::escalation::{EscalationWrite, NewNotice, Purpose};
use hearth::store::traits::{EscalationStore, IncidentStore};
use serde_json::{Value, json};

use crate::support::*;

const ROSTER: &str = "external_id,first_name,phone,timezone,groups,consent
M-001,Annabelle,+15555550101,America/New_York,tuesday-anxiety,yes
M-002,Bartholomew,+15555550102,America/Chicago,tuesday-anxiety,yes
M-003,Cordelia,+15555550103,America/Denver,tuesday-anxiety,yes
";

/// The numbers and names the answers must never hold.
pub const PHI: [&str; 9] = [
    "5555550101",
    "5555550104",
    "5555550102",
    "5555550103",
    "5555550177",
    "5555550100",
    "lead@clinic.example",
    "Annabelle",
    "Bartholomew",
];

pub const RULES: &str = r#"groups:
  - id: tuesday-anxiety
    name: Tuesday Anxiety Support
    timezone: America/New_York
    sessions: { cron: "0 18 * * TUE", duration: 90m }
contacts:
  lead: { sms: "+15555550100", email: "lead@clinic.example" }
  clinical-lead: { sms: "+15555550104" }
escalations:
  crisis:
    steps:
      - notify: [lead]
        via: [sms, email]
        ack_within: 10m
      - notify: [clinical-lead]
        via: [sms]
        ack_within: 10m
alerts:
  - id: crisis-language
    severity: critical
    keywords: ["end it all"]
    escalate: crisis
  - id: low-mood
    severity: warning
    keywords: ["awful"]
    escalate: crisis
  - id: gone-quiet
    severity: warning
    keywords: ["whatever"]
"#;

/// A deployment's incidents, by what the seed made of them.
pub struct Seeded {
    pub dir: tempfile::TempDir,
    /// M-001, critical, escalating: step 0 paged `lead` by email, the next
    /// notification due in a day.
    pub crisis: i64,
    /// M-002, warning, escalating, nothing paged yet (due in two days).
    pub low: i64,
    /// M-003, warning, acknowledged, no escalation.
    pub acked: i64,
    /// An unknown sender, critical, resolved, no escalation.
    pub resolved: i64,
}

fn hit(alert: &str, severity: Severity, subject: Subject, escalate: Option<&str>) -> AlertHit {
    AlertHit {
        alert: alert.into(),
        severity,
        subject,
        inbound_id: None,
        evidence: format!("matched `{alert}`"),
        realert: None,
        escalate: escalate.map(str::to_owned),
        reply_key: None,
        quote: None,
    }
}

/// The `crisis` policy of the rules in `dir`, pinned as the engine pins
/// it when it starts an escalation: its version and JSON.
fn pinned(dir: &Path) -> (String, String) {
    let rules = hearth::config::load_dir(dir).unwrap().rules.unwrap();
    let p = Pinned::pin(&rules, "crisis", &["tuesday-anxiety".into()]).unwrap();
    (p.version.clone(), p.to_json())
}

/// Writes settings (admin token), RULES and a roster into a temp
/// directory, records four incidents through the store and moves them to
/// the states [`Seeded`] describes. The store is closed on return, so the
/// daemon or the binary can open the database.
pub async fn seed() -> Seeded {
    let dir = tempfile::tempdir().unwrap();
    let settings = settings_with_admin_token(dir.path());
    write(&dir.path().join("hearth.yaml"), &settings);
    write(&dir.path().join("rules/rules.yaml"), RULES);
    let store = SqliteStore::open_at(
        &dir.path().join("state/hearth.db"),
        &KeySource::Generated(dir.path().join("state/hearth.db.key")),
    )
    .unwrap()
    .0;
    import_roster_in(&store, ROSTER, &["tuesday-anxiety"]).await;
    let id = |ext: &'static str| {
        let store = store.clone();
        async move { store.member(ext).await.unwrap().unwrap().id }
    };
    let (m1, m2, m3) = (id("M-001").await, id("M-002").await, id("M-003").await);
    let stranger = match store
        .record_inbound(InboundSms {
            provider: "test".into(),
            provider_message_id: "x1".into(),
            from: "+15555550177".into(),
            to: "+15555550199".into(),
            body: "goodbye everyone".into(),
            keyword: None,
        })
        .await
        .unwrap()
    {
        Received::New(id) => id,
        other => panic!("{other:?}"),
    };
    // The seeded incident below is this text's: the daemon started on
    // this database must not take the text up again.
    store
        .mark_inbound_processed(stranger, "crisis")
        .await
        .unwrap();
    let mut unknown = hit(
        "crisis-language",
        Severity::Critical,
        Subject::Number("+15555550177".into()),
        None,
    );
    unknown.inbound_id = Some(stranger);
    let now = Utc::now();
    let out = store
        .record_hits(
            vec![
                hit(
                    "crisis-language",
                    Severity::Critical,
                    Subject::Member(m1),
                    Some("crisis"),
                ),
                hit(
                    "low-mood",
                    Severity::Warning,
                    Subject::Member(m2),
                    Some("crisis"),
                ),
                hit("gone-quiet", Severity::Warning, Subject::Member(m3), None),
                unknown,
            ],
            now,
        )
        .await
        .unwrap();
    let [crisis, low, acked, resolved] = [0, 1, 2, 3].map(|n| out[n].incident);
    let (version, pinned) = pinned(&dir.path().join("rules"));
    for (incident, due) in [(crisis, 1), (low, 2)] {
        assert!(
            store
                .start_escalation(
                    incident,
                    "crisis",
                    &version,
                    &pinned,
                    now + TimeDelta::days(due),
                    now
                )
                .await
                .unwrap()
        );
    }
    // Step 0 of the crisis incident: `lead` paged by email.
    assert!(
        store
            .write_escalation(EscalationWrite {
                incident_id: crisis,
                expect_rev: 0,
                next_position: 1,
                next_due: Some(now + TimeDelta::days(1)),
                seq: 1,
                lapse_due: None,
                exhausted: false,
                transition: None,
                notices: vec![NewNotice {
                    purpose: Purpose::Page,
                    seq: 0,
                    step: Some(0),
                    round: Some(0),
                    contact: "lead".into(),
                    channel: Channel::Email,
                    address: "lead@clinic.example".into(),
                    subject: Some("Hearth incident".into()),
                    body: "Annabelle needs someone".into(),
                    message: None,
                }],
                audit: vec![],
                now,
            })
            .await
            .unwrap()
    );
    drop(store);
    set_state(dir.path(), acked, "acknowledged");
    set_state(dir.path(), resolved, "resolved");
    Seeded {
        dir,
        crisis,
        low,
        acked,
        resolved,
    }
}

/// Moves an incident to `state` behind the store's back (as an older
/// daemon's engine would have left it).
fn set_state(dir: &Path, id: i64, state: &str) {
    crate::support::db::open(&dir.join("state/hearth.db"))
        .execute(
            "UPDATE incidents SET state = ?2 WHERE id = ?1",
            rusqlite::params![id, state],
        )
        .unwrap();
}

async fn app(seeded: Seeded) -> (TestApp, [i64; 4]) {
    let ids = [seeded.crisis, seeded.low, seeded.acked, seeded.resolved];
    let settings = std::fs::read_to_string(seeded.dir.path().join("hearth.yaml")).unwrap();
    (spawn_app_with_settings(seeded.dir, &settings).await, ids)
}

fn client() -> reqwest::Client {
    reqwest::Client::new()
}

/// `GET path` with the admin token: status and JSON body.
async fn get(app: &TestApp, path: &str) -> (u16, Value) {
    let resp = client()
        .get(format!("http://{}{path}", app.addr))
        .bearer_auth(TestApp::ADMIN_TOKEN)
        .send()
        .await
        .unwrap();
    let code = resp.status().as_u16();
    (code, resp.json().await.unwrap_or(Value::Null))
}

/// `POST path` with the admin token: status and JSON body.
async fn post(app: &TestApp, path: &str) -> (u16, Value) {
    let resp = client()
        .post(format!("http://{}{path}", app.addr))
        .bearer_auth(TestApp::ADMIN_TOKEN)
        .send()
        .await
        .unwrap();
    let code = resp.status().as_u16();
    (code, resp.json().await.unwrap_or(Value::Null))
}

fn ids(list: &Value) -> Vec<i64> {
    list["incidents"]
        .as_array()
        .unwrap_or_else(|| panic!("no incidents in {list}"))
        .iter()
        .map(|i| i["id"].as_i64().unwrap())
        .collect()
}

#[tokio::test]
async fn every_admin_route_refuses_a_missing_or_wrong_token_with_403_and_changes_nothing() {
    let (app, [crisis, ..]) = app(seed().await).await;
    let routes = [
        ("GET", "/status".to_owned()),
        ("GET", "/api/incidents".to_owned()),
        ("GET", format!("/api/incidents/{crisis}")),
        ("POST", format!("/api/incidents/{crisis}/ack")),
        ("POST", format!("/api/incidents/{crisis}/resolve")),
        ("POST", format!("/api/incidents/{crisis}/escalate")),
        ("POST", format!("/api/incidents/{crisis}/snooze")),
        ("GET", "/api/incidents/abc".to_owned()),
    ];
    for (method, path) in &routes {
        let url = format!("http://{}{path}", app.addr);
        let request = |auth: Option<&str>| {
            let r = if *method == "GET" {
                client().get(&url)
            } else {
                client().post(&url)
            };
            match auth {
                Some(a) => r.header("authorization", a),
                None => r,
            }
        };
        for auth in [
            None,
            Some("Bearer not-the-token"),
            Some("Bearer "),
            Some("test-admin-token"),
            Some("Basic dGVzdC1hZG1pbi10b2tlbg=="),
        ] {
            let resp = request(auth).send().await.unwrap();
            assert_eq!(resp.status(), 403, "{method} {path} with {auth:?}");
            let body: Value = resp.json().await.unwrap();
            assert!(
                body["error"].as_str().unwrap().starts_with("forbidden"),
                "{body}"
            );
        }
    }
    let (_, shown) = get(&app, &format!("/api/incidents/{crisis}")).await;
    assert_eq!(shown["state"], "open", "{shown}");
    app.stop().await;
}

#[tokio::test]
async fn the_incident_list_defaults_to_unresolved_newest_first_and_filters_by_state_member_and_limit()
 {
    let (app, [crisis, low, acked, resolved]) = app(seed().await).await;
    let (code, all) = get(&app, "/api/incidents").await;
    assert_eq!(code, 200, "{all}");
    assert_eq!(ids(&all), vec![acked, low, crisis]);
    let first = &all["incidents"][2];
    assert_eq!(first["member"], "M-001", "{first}");
    assert_eq!(first["alert"], "crisis-language");
    assert_eq!(first["severity"], "critical");
    assert_eq!(first["state"], "open");
    for key in [
        "opened_at",
        "updated_at",
        "acknowledged_by",
        "acknowledged_how",
        "acknowledged_at",
        "resolved_by",
        "resolved_how",
        "resolved_at",
    ] {
        assert!(first.get(key).is_some(), "{key} missing in {first}");
    }
    assert_eq!(first["escalation"]["policy"], "crisis", "{first}");
    assert_eq!(first["escalation"]["next_position"], 1, "{first}");
    assert_eq!(first["escalation"]["seq"], 1, "{first}");
    assert_eq!(first["escalation"]["exhausted"], false, "{first}");
    assert!(first["escalation"]["next_due"].is_string(), "{first}");
    assert_eq!(all["incidents"][0]["escalation"], Value::Null);

    let by = |q: &'static str| {
        let app = &app;
        async move {
            let (code, v) = get(app, &format!("/api/incidents?{q}")).await;
            assert_eq!(code, 200, "{q}: {v}");
            ids(&v)
        }
    };
    assert_eq!(by("state=unresolved").await, vec![acked, low, crisis]);
    assert_eq!(by("state=open").await, vec![low, crisis]);
    assert_eq!(by("state=acknowledged").await, vec![acked]);
    assert_eq!(by("state=resolved").await, vec![resolved]);
    assert_eq!(by("member=M-001").await, vec![crisis]);
    assert_eq!(by("state=open&member=M-003").await, Vec::<i64>::new());
    assert_eq!(by("limit=1").await, vec![acked]);
    assert_eq!(by("state=open&limit=1").await, vec![low]);

    // The unknown sender is null, never the number.
    let (_, gone) = get(&app, "/api/incidents?state=resolved").await;
    assert_eq!(gone["incidents"][0]["member"], Value::Null, "{gone}");
    let text = format!("{all}{gone}");
    for phi in PHI {
        assert!(!text.contains(phi), "{phi} in {text}");
    }
    app.stop().await;
}

#[tokio::test]
async fn a_bad_listing_parameter_is_400_naming_it_with_a_hint() {
    let (app, _) = app(seed().await).await;
    for (q, says) in [
        ("state=closed", "unknown state `closed`"),
        ("limit=0", "limit `0`"),
        ("limit=1001", "limit `1001`"),
        ("limit=ten", "limit `ten`"),
        ("member=M-404", "no member `M-404`"),
        ("colour=red", "unknown parameter `colour`"),
    ] {
        let (code, v) = get(&app, &format!("/api/incidents?{q}")).await;
        assert_eq!(code, 400, "{q}: {v}");
        assert!(v["error"].as_str().unwrap().contains(says), "{q}: {v}");
        assert!(v["hint"].is_string(), "{q}: {v}");
    }
    app.stop().await;
}

#[tokio::test]
async fn one_incident_shows_its_evidence_escalation_and_notices_without_addresses_or_bodies() {
    let (app, [crisis, ..]) = app(seed().await).await;
    let (code, v) = get(&app, &format!("/api/incidents/{crisis}")).await;
    assert_eq!(code, 200, "{v}");
    assert_eq!(v["id"], crisis);
    assert_eq!(v["member"], "M-001");
    assert_eq!(v["evidence"][0]["text"], "matched `crisis-language`", "{v}");
    assert_eq!(v["escalation"]["policy"], "crisis", "{v}");
    let notices = v["notices"].as_array().unwrap();
    assert_eq!(notices.len(), 1, "{v}");
    assert_eq!(notices[0]["contact"], "lead");
    assert_eq!(notices[0]["channel"], "email");
    assert_eq!(notices[0]["purpose"], "page");
    // The daemon may have tried it already (email is not configured).
    assert!(notices[0]["attempts"].is_u64(), "{v}");
    assert!(notices[0]["state"].is_string(), "{v}");
    assert!(notices[0].get("last_error").is_some(), "{v}");
    let text = v.to_string();
    for phi in PHI.iter().chain(&["needs someone", "Hearth incident"]) {
        assert!(!text.contains(phi), "{phi} in {text}");
    }
    app.stop().await;
}

#[tokio::test]
async fn an_unknown_incident_is_404_and_a_bad_id_or_action_is_400_naming_it() {
    let (app, [crisis, ..]) = app(seed().await).await;
    let (code, v) = get(&app, "/api/incidents/99999").await;
    assert_eq!(code, 404, "{v}");
    assert_eq!(v["error"], "no incident #99999");
    let (code, v) = post(&app, "/api/incidents/99999/ack").await;
    assert_eq!(code, 404, "{v}");
    assert_eq!(v["error"], "no incident #99999");
    for path in ["/api/incidents/abc", "/api/incidents/4x2"] {
        let (code, v) = get(&app, path).await;
        assert_eq!(code, 400, "{v}");
        let bad = path.rsplit('/').next().unwrap();
        assert!(
            v["error"].as_str().unwrap().contains(&format!("`{bad}`")),
            "{v}"
        );
    }
    let (code, v) = post(&app, "/api/incidents/abc/ack").await;
    assert_eq!(code, 400, "{v}");
    assert!(v["error"].as_str().unwrap().contains("`abc`"), "{v}");
    let (code, v) = post(&app, &format!("/api/incidents/{crisis}/snooze")).await;
    assert_eq!(code, 400, "{v}");
    assert_eq!(v["error"], "unknown action `snooze`");
    assert!(v["hint"].as_str().unwrap().contains("/ack"), "{v}");
    let (_, shown) = get(&app, &format!("/api/incidents/{crisis}")).await;
    assert_eq!(shown["state"], "open", "{shown}");
    app.stop().await;
}

#[tokio::test]
async fn ack_through_the_api_acknowledges_as_api_a_second_is_already_and_resolved_refuses_with_409()
{
    let (app, [crisis, ..]) = app(seed().await).await;
    let path = format!("/api/incidents/{crisis}");
    let (code, v) = post(&app, &format!("{path}/ack")).await;
    assert_eq!(code, 200, "{v}");
    assert_eq!(v["result"], "done", "{v}");
    assert_eq!(v["incident"], crisis);
    assert_eq!(v["state"], "acknowledged");
    // `lead` was paged, and is told who acknowledged.
    assert_eq!(v["told"], 1, "{v}");

    let (_, shown) = get(&app, &path).await;
    assert_eq!(shown["state"], "acknowledged", "{shown}");
    assert_eq!(shown["acknowledged_by"], "api", "{shown}");
    assert_eq!(shown["acknowledged_how"], "api", "{shown}");
    assert!(shown["acknowledged_at"].is_string(), "{shown}");
    assert_eq!(shown["escalation"]["next_due"], Value::Null, "{shown}");
    let told: Vec<&Value> = shown["notices"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|n| n["purpose"] == "acknowledged")
        .collect();
    assert_eq!(told.len(), 1, "{shown}");
    assert_eq!(told[0]["contact"], "lead");

    let (code, again) = post(&app, &format!("{path}/ack")).await;
    assert_eq!(code, 200, "{again}");
    assert_eq!(
        again,
        json!({"result": "already", "incident": crisis, "state": "acknowledged", "by": "api"})
    );

    let (code, v) = post(&app, &format!("{path}/resolve")).await;
    assert_eq!(code, 200, "{v}");
    assert_eq!(v["result"], "done", "{v}");
    assert_eq!(v["state"], "resolved");
    let (_, shown) = get(&app, &path).await;
    assert_eq!(shown["resolved_by"], "api", "{shown}");
    assert_eq!(shown["resolved_how"], "api", "{shown}");

    for action in ["ack", "escalate"] {
        let (code, v) = post(&app, &format!("{path}/{action}")).await;
        assert_eq!(code, 409, "{action}: {v}");
        assert_eq!(v["error"], format!("incident #{crisis} is resolved"));
    }
    let (code, v) = post(&app, &format!("{path}/resolve")).await;
    assert!(
        code == 200 && v["result"] == "already" || code == 409,
        "a second resolve: {code} {v}"
    );
    app.stop().await;
}

#[tokio::test]
async fn status_counts_incidents_by_state_and_lists_the_escalating_ones_oldest_first() {
    let (app, [crisis, low, ..]) = app(seed().await).await;
    let (code, body) = app.get_status().await;
    assert_eq!(code, 200, "{body}");
    let inc = &body["incidents"];
    assert_eq!(inc["open"], 2, "{body}");
    assert_eq!(inc["acknowledged"], 1, "{body}");
    // The resolved critical one does not count.
    assert_eq!(inc["open_critical"], 1, "{body}");
    let escalating = inc["escalating"].as_array().unwrap();
    let order: Vec<i64> = escalating
        .iter()
        .map(|e| e["id"].as_i64().unwrap())
        .collect();
    assert_eq!(order, vec![crisis, low], "{body}");
    assert_eq!(escalating[0]["alert"], "crisis-language");
    assert_eq!(escalating[0]["severity"], "critical");
    assert_eq!(escalating[0]["state"], "open");
    assert_eq!(escalating[0]["next_position"], 1);
    assert_eq!(escalating[0]["exhausted"], false);
    assert!(escalating[0]["next_due"].is_string(), "{body}");
    // The keys that were there before stay.
    assert_eq!(body["rules"]["last"]["ok"], true, "{body}");
    assert!(body["dispatch"].is_object(), "{body}");
    assert!(body["replies"]["script_failures"].is_u64(), "{body}");

    // Acknowledged: still escalating (paused), counted as acknowledged.
    let (code, _) = post(&app, &format!("/api/incidents/{crisis}/ack")).await;
    assert_eq!(code, 200);
    let (_, body) = app.get_status().await;
    assert_eq!(body["incidents"]["open"], 1, "{body}");
    assert_eq!(body["incidents"]["acknowledged"], 2, "{body}");
    assert_eq!(body["incidents"]["open_critical"], 1, "{body}");
    app.stop().await;
}

#[tokio::test]
async fn escalate_through_the_api_pages_the_next_step_at_once_and_hands_back_an_acknowledged_incident()
 {
    let (app, [crisis, ..]) = app(seed().await).await;
    let path = format!("/api/incidents/{crisis}");
    let (_, shown) = get(&app, &path).await;
    assert_eq!(shown["escalation"]["step"], 2, "{shown}");
    assert_eq!(shown["escalation"]["round"], 1, "{shown}");
    assert_eq!(shown["escalation"]["backup"], false, "{shown}");
    let (code, _) = post(&app, &format!("{path}/ack")).await;
    assert_eq!(code, 200);

    let (code, v) = post(&app, &format!("{path}/escalate")).await;
    assert_eq!(code, 200, "{v}");
    assert_eq!(v["result"], "done", "{v}");
    assert_eq!(v["state"], "open", "{v}");
    // Step 2 (clinical-lead, by SMS) falls due now; the engine, woken by
    // the API, pages it without waiting for its own timer (a day away)
    // or its longest sleep (30 s).
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    let shown = loop {
        let (_, shown) = get(&app, &path).await;
        let paged = shown["notices"].as_array().unwrap().iter().any(|n| {
            n["contact"] == "clinical-lead" && n["purpose"] == "page" && n["channel"] == "sms"
        });
        if paged {
            break shown;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "step 2 never paged: {shown}"
        );
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    };
    assert_eq!(shown["state"], "open", "{shown}");
    assert_eq!(shown["acknowledged_by"], Value::Null, "{shown}");
    let text = shown.to_string();
    for phi in PHI {
        assert!(!text.contains(phi), "{phi} in {text}");
    }
    app.stop().await;
}
