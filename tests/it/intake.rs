//! The intake's own endpoints and limits, over real loopback HTTP.

use crate::support::*;

/// A daemon with an admin token and a 1 KiB body limit.
async fn app() -> TestApp {
    let dir = tempfile::tempdir().unwrap();
    write(&dir.path().join("rules/main.yaml"), &rules_yaml("x"));
    write(&dir.path().join("admin-token"), "s3cret-admin-token\n");
    let settings = format!(
        "{}admin_tokens: [file:admin-token]\nintake: {{ max_body: 1024 }}\n",
        settings_yaml()
    );
    spawn_app_with_settings(dir, &settings).await
}

#[tokio::test]
async fn healthz_answers_without_credentials() {
    let app = app().await;
    let resp = reqwest::get(format!("http://{}/healthz", app.addr))
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    assert_eq!(resp.text().await.unwrap(), "ok\n");
    app.stop().await;
}

#[tokio::test]
async fn status_needs_an_admin_token_and_reports_the_live_rules() {
    let app = app().await;
    let url = format!("http://{}/status", app.addr);
    let c = reqwest::Client::new();
    assert_eq!(c.get(&url).send().await.unwrap().status(), 403);
    let wrong = c
        .get(&url)
        .bearer_auth("not-the-token")
        .send()
        .await
        .unwrap();
    assert_eq!(wrong.status(), 403);
    let ok = c
        .get(&url)
        .bearer_auth("s3cret-admin-token")
        .send()
        .await
        .unwrap();
    assert_eq!(ok.status(), 200);
    let body: serde_json::Value = ok.json().await.unwrap();
    assert_eq!(body["rules"]["generation"], 1);
    assert_eq!(body["rules"]["last"]["ok"], true);
    assert_eq!(
        body["rules"]["files"]["main.yaml"].as_str().unwrap().len(),
        64
    );
    // The dispatcher's counts: possible duplicates sent, and the rest.
    assert_eq!(body["dispatch"]["ambiguous_resends"], 0, "{body}");
    assert_eq!(body["dispatch"]["breaker_opened"], 0, "{body}");
    // The reply pipeline's: failed script evaluations, open incidents.
    assert!(body["replies"]["script_failures"].is_u64(), "{body}");
    assert_eq!(body["incidents"]["open"], 0, "{body}");
    assert_eq!(body["incidents"]["open_critical"], 0, "{body}");
    app.stop().await;
}

#[tokio::test]
async fn a_body_over_the_limit_is_refused_with_413_and_nothing_is_stored() {
    let app = app().await;
    let resp = reqwest::Client::new()
        .post(format!("http://{}/webhooks/twilio/sms", app.addr))
        .header("x-twilio-signature", "irrelevant")
        .header("content-type", "application/x-www-form-urlencoded")
        .body(format!("Body={}", "a".repeat(4096)))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 413);
    assert!(app.store.inbound_texts(10).await.unwrap().is_empty());
    app.stop().await;
}
