//! Webhook notices to a real HTTP receiver on loopback: signed so the
//! receiver can verify them, and failures sorted into retry or not.

use std::time::Duration;

use chrono::Utc;
use hearth::escalate::webhook::{
    SIGNATURE_HEADER, TIMESTAMP_HEADER, VerifyError, Webhooks, verify,
};
use hearth::settings::{SecretRef, WebhookSettings};

use crate::support::webhook_receiver::Receiver;

const WAIT: Duration = Duration::from_secs(10);
const WINDOW: Duration = Duration::from_secs(300);
const SECRET: &str = "whsec-0123456789abcdef";

/// A client whose secret is a `file:` reference in `dir`.
fn webhooks(dir: &std::path::Path) -> Webhooks {
    let path = dir.join("webhook.key");
    std::fs::write(&path, format!("{SECRET}\n")).unwrap();
    Webhooks::new(&WebhookSettings {
        secret: SecretRef::File(path),
        timeout: Duration::from_secs(5),
    })
    .expect("the secret resolves")
}

fn notice() -> serde_json::Value {
    serde_json::json!({
        "incident": 42,
        "alert": "crisis",
        "severity": "critical",
        "member": "Zoë R.",
        "group": "Maple",
        "acknowledge": "reply ACK 42",
    })
}

#[tokio::test]
async fn a_notice_arrives_as_signed_json_that_the_receiver_verifies_and_tampering_fails() {
    let dir = tempfile::tempdir().unwrap();
    let receiver = Receiver::start(&[]);
    let now = Utc::now();
    webhooks(dir.path())
        .post(&receiver.url("/hooks/hearth"), &notice(), now)
        .await
        .expect("delivered");
    let hits = receiver.wait_for(1, WAIT).await;
    let hit = &hits[0];
    assert_eq!(
        (hit.method.as_str(), hit.path.as_str()),
        ("POST", "/hooks/hearth")
    );
    assert_eq!(hit.header("content-type"), Some("application/json"));
    assert_eq!(
        hit.header("user-agent"),
        Some(concat!("hearth/", env!("CARGO_PKG_VERSION")))
    );
    assert_eq!(hit.json(), notice());
    let ts = hit.header(TIMESTAMP_HEADER);
    let sig = hit.header(SIGNATURE_HEADER);
    assert_eq!(ts, Some(now.timestamp().to_string().as_str()));
    assert!(sig.is_some_and(|s| s.starts_with("v1=")), "{sig:?}");

    let secret = SECRET.as_bytes();
    assert_eq!(
        verify(secret, ts, sig, &hit.body, Utc::now(), WINDOW),
        Ok(())
    );
    let mut tampered = hit.body.clone();
    let last = tampered.len() - 2;
    tampered[last] ^= 1;
    assert_eq!(
        verify(secret, ts, sig, &tampered, Utc::now(), WINDOW),
        Err(VerifyError::Mismatch)
    );
    assert_eq!(
        verify(b"not-the-secret", ts, sig, &hit.body, Utc::now(), WINDOW),
        Err(VerifyError::Mismatch)
    );
    let later = now + chrono::Duration::seconds(301);
    assert_eq!(
        verify(secret, ts, sig, &hit.body, later, WINDOW),
        Err(VerifyError::Stale),
        "a replay after the window"
    );
    assert_eq!(
        verify(secret, None, sig, &hit.body, Utc::now(), WINDOW),
        Err(VerifyError::Malformed(TIMESTAMP_HEADER))
    );
}

#[tokio::test]
async fn a_500_is_retryable_and_the_next_attempt_answered_200_is_delivered() {
    let dir = tempfile::tempdir().unwrap();
    let receiver = Receiver::start(&[500, 200]);
    let hooks = webhooks(dir.path());
    let url = receiver.url("/hook");
    let err = hooks.post(&url, &notice(), Utc::now()).await.unwrap_err();
    assert!(err.retryable, "{err:?}");
    assert!(err.message.contains("500"), "{}", err.message);
    hooks
        .post(&url, &notice(), Utc::now())
        .await
        .expect("the second attempt is delivered");
    let hits = receiver.hits();
    assert_eq!(
        hits.iter().map(|h| h.status).collect::<Vec<_>>(),
        [500, 200]
    );
}

#[tokio::test]
async fn a_4xx_is_permanent_except_408_and_429_and_a_redirect_is_not_followed() {
    let dir = tempfile::tempdir().unwrap();
    let receiver = Receiver::start(&[400, 404, 408, 429, 503, 302]);
    let hooks = webhooks(dir.path());
    let url = receiver.url("/hook?token=t0ps3cret");
    let mut outcomes = Vec::new();
    for _ in 0..6 {
        let err = hooks.post(&url, &notice(), Utc::now()).await.unwrap_err();
        assert!(!err.message.contains("t0ps3cret"), "{}", err.message);
        assert!(!err.message.contains("Zoë"), "{}", err.message);
        outcomes.push(err.retryable);
    }
    assert_eq!(outcomes, [false, false, true, true, true, false]);
    assert_eq!(
        receiver.hits().len(),
        6,
        "one request per attempt, no redirect followed"
    );
}

#[tokio::test]
async fn a_receiver_that_is_not_there_is_retryable_and_plain_http_off_loopback_is_refused_unsent() {
    let dir = tempfile::tempdir().unwrap();
    let hooks = webhooks(dir.path());
    let port = crate::support::ports::free_port();
    let err = hooks
        .post(
            &format!("http://127.0.0.1:{port}/hook"),
            &notice(),
            Utc::now(),
        )
        .await
        .unwrap_err();
    assert!(err.retryable, "{err:?}");
    assert!(err.message.contains("127.0.0.1"), "{}", err.message);

    let err = hooks
        .post("http://pager.clinic.example/hook", &notice(), Utc::now())
        .await
        .unwrap_err();
    assert!(!err.retryable, "{err:?}");
    assert!(err.message.contains("plain http"), "{}", err.message);
}

#[test]
fn a_missing_secret_is_an_error_naming_the_setting() {
    let err = Webhooks::new(&WebhookSettings {
        secret: SecretRef::Env("HEARTH_TEST_SURELY_UNSET_WEBHOOK".into()),
        timeout: Duration::from_secs(5),
    })
    .unwrap_err()
    .to_string();
    assert!(err.starts_with("notify.webhook.secret: "), "{err}");
    assert!(err.contains("HEARTH_TEST_SURELY_UNSET_WEBHOOK"), "{err}");
}

/// The receiver-side check OPERATIONS.md gives in Python, run as written
/// against a notice Hearth really sent.
#[tokio::test]
async fn the_python_check_in_the_operations_guide_accepts_a_real_notice_and_refuses_a_tampered_one()
{
    let has_python = std::process::Command::new("python3")
        .arg("--version")
        .output()
        .is_ok_and(|o| o.status.success());
    let hint = "apt-get install python3";
    if !crate::support::components::require(has_python, "python3", hint) {
        return;
    }
    let guide = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/docs/OPERATIONS.md"))
        .unwrap();
    let snippet = guide
        .split("```python\n")
        .nth(1)
        .and_then(|rest| rest.split("```").next())
        .expect("OPERATIONS.md has a python block");

    let dir = tempfile::tempdir().unwrap();
    let receiver = Receiver::start(&[]);
    webhooks(dir.path())
        .post(&receiver.url("/hook"), &notice(), Utc::now())
        .await
        .unwrap();
    let hit = receiver.wait_for(1, WAIT).await.remove(0);
    let mut tampered = hit.body.clone();
    tampered.push(b' ');
    let script = format!(
        "{snippet}\nimport sys\nh = {{'Hearth-Timestamp': sys.argv[1], 'Hearth-Signature': sys.argv[2]}}\nprint(verify(b'{SECRET}', h, open(sys.argv[3], 'rb').read()))\n"
    );
    for (body, want) in [(&hit.body, "True"), (&tampered, "False")] {
        let file = dir.path().join("body");
        std::fs::write(&file, body).unwrap();
        let out = std::process::Command::new("python3")
            .args(["-c", &script])
            .arg(hit.header(TIMESTAMP_HEADER).unwrap())
            .arg(hit.header(SIGNATURE_HEADER).unwrap())
            .arg(&file)
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        assert_eq!(String::from_utf8_lossy(&out.stdout).trim(), want);
    }
}
