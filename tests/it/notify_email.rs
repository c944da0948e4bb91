//! Email notices to a real SMTP server (aiosmtpd on loopback, STARTTLS
//! required), read back from its Maildir: what arrives, and which
//! failures are worth a retry.

use std::time::Duration;

use hearth::escalate::email::Mailer;
use hearth::settings::SecretRef;
use hearth::settings::{EmailSettings, EmailTls};

use crate::support::smtp::{FROM, Mode, Smtp, make_ca};

const WAIT: Duration = Duration::from_secs(15);
const BODY: &str =
    "Incident 42 (crisis, severity critical)\nZoë R. — Maple group\n¿Estás bien? Reply ACK 42.";

/// Settings for `smtp`'s port with the given TLS mode and CA, no login.
fn settings_for(smtp: &Smtp, tls: EmailTls, ca_file: Option<std::path::PathBuf>) -> EmailSettings {
    EmailSettings {
        host: "localhost".into(),
        port: smtp.port,
        from: FROM.into(),
        username: None,
        password: None,
        tls,
        ca_file,
        timeout: Duration::from_secs(10),
    }
}

#[tokio::test]
async fn an_email_goes_over_starttls_and_reads_back_with_its_recipient_subject_and_utf8_body() {
    let Some(smtp) = Smtp::start().await else {
        return;
    };
    let mailer =
        Mailer::new(&smtp.email_settings()).expect("the harness's settings build a mailer");
    mailer
        .send("dana@clinic.example", "Hearth incident 42 — crisis", BODY)
        .await
        .expect("delivered");
    let mails = smtp.wait_for(1, WAIT).await;
    assert_eq!(mails.len(), 1, "{mails:#?}");
    let mail = &mails[0];
    assert_eq!(mail.to, "dana@clinic.example");
    assert_eq!(mail.from, FROM);
    assert_eq!(mail.subject, "Hearth incident 42 — crisis");
    assert_eq!(mail.body.trim_end(), BODY);
    assert_eq!(mail.content_type, "text/plain");
    assert_eq!(mail.charset.as_deref(), Some("utf-8"));
}

#[tokio::test]
async fn a_login_from_a_file_reference_is_used_and_a_wrong_password_is_a_permanent_refusal() {
    let Some(smtp) = Smtp::start_with(Mode::Starttls, Some(("hearth", "pw-0123"))).await else {
        return;
    };
    let good = smtp.email_settings();
    assert!(matches!(good.password, Some(SecretRef::File(_))));
    Mailer::new(&good)
        .unwrap()
        .send("dana@clinic.example", "one", "first body")
        .await
        .unwrap_or_else(|e| panic!("the right login is refused: {e:?}\n{}", smtp.log()));

    let wrong_file = smtp.dir.path().join("wrong-password");
    std::fs::write(&wrong_file, "not-it\n").unwrap();
    let mut bad = good.clone();
    bad.password = Some(SecretRef::File(wrong_file));
    let err = Mailer::new(&bad)
        .unwrap()
        .send("dana@clinic.example", "two", "second body")
        .await
        .unwrap_err();
    assert!(!err.retryable, "{err:?}");
    assert!(err.message.contains("535"), "{}", err.message);
    assert!(!err.message.contains("second body"), "{}", err.message);
    let mails = smtp.wait_for(1, WAIT).await;
    assert_eq!(
        mails.iter().map(|m| m.subject.as_str()).collect::<Vec<_>>(),
        ["one"]
    );
}

/// Decision: a server that does not offer STARTTLS when it is required is
/// not retried (`retryable: false`). It is a setting to fix, or a
/// connection being tampered with; neither passes in the minutes a retry
/// waits, and failing at once puts the failure on the notice's record.
#[tokio::test]
async fn a_server_without_starttls_is_refused_permanently_when_starttls_is_required_and_gets_nothing()
 {
    let Some(plain) = Smtp::start_plain().await else {
        return;
    };
    let settings = settings_for(&plain, EmailTls::Starttls, Some(plain.ca_file.clone()));
    let err = Mailer::new(&settings)
        .unwrap()
        .send("dana@clinic.example", "subject", BODY)
        .await
        .unwrap_err();
    assert!(!err.retryable, "{err:?}");
    assert!(err.message.contains("STARTTLS"), "{}", err.message);
    assert!(!err.message.contains("Zoë"), "{}", err.message);
    assert!(plain.mails().is_empty(), "{:#?}", plain.mails());

    // The same server is fine as a loopback relay with `tls: none`.
    Mailer::new(&plain.email_settings())
        .unwrap()
        .send("dana@clinic.example", "subject", BODY)
        .await
        .expect("plain SMTP to loopback");
    assert_eq!(plain.wait_for(1, WAIT).await.len(), 1);
}

#[tokio::test]
async fn a_certificate_from_an_authority_not_trusted_is_refused_and_nothing_is_delivered() {
    let Some(smtp) = Smtp::start().await else {
        return;
    };
    let other = tempfile::tempdir().unwrap();
    let wrong_ca = make_ca(other.path(), "other");
    for ca_file in [Some(wrong_ca), None] {
        let settings = settings_for(&smtp, EmailTls::Starttls, ca_file.clone());
        let err = Mailer::new(&settings)
            .unwrap()
            .send("dana@clinic.example", "subject", BODY)
            .await
            .unwrap_err();
        assert!(!err.retryable, "{ca_file:?}: {err:?}");
        assert!(
            err.message.to_lowercase().contains("certificate"),
            "{ca_file:?}: {}",
            err.message
        );
        assert!(!err.message.contains("Zoë"), "{}", err.message);
    }
    assert!(smtp.mails().is_empty(), "{:#?}", smtp.mails());
}

#[tokio::test]
async fn a_server_that_is_not_there_is_a_retryable_error() {
    let port = crate::support::ports::free_port();
    let settings = EmailSettings {
        host: "127.0.0.1".into(),
        port,
        from: FROM.into(),
        username: None,
        password: None,
        tls: EmailTls::Starttls,
        ca_file: None,
        timeout: Duration::from_secs(5),
    };
    let err = Mailer::new(&settings)
        .unwrap()
        .send("dana@clinic.example", "subject", BODY)
        .await
        .unwrap_err();
    assert!(err.retryable, "{err:?}");
    assert!(
        err.message.contains(&format!("127.0.0.1:{port}")),
        "{}",
        err.message
    );
}
