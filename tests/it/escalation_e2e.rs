//! Escalations end to end with the daemon binary: a member's crisis text
//! through Kannel and fakesmsc gets the 988 reply, the facilitator is
//! paged by SMS (fakesmsc), email (a real SMTP server with STARTTLS) and a
//! signed webhook, and an `ACK` texted from the facilitator's phone stops
//! the escalation and tells the others who has it. An ACK from a number
//! that is no contact is refused.
//!
//! Kannel, aiosmtpd or openssl missing is a printed skip, and a failure
//! under CI (see `support::components`).

use std::time::{Duration, Instant};

use hearth::domain::incident::IncidentState;
use hearth::store::prelude::*;
use hearth::store::traits::IncidentStore;

use crate::replies_e2e::{Rig, daytime, person};
use crate::support::smtp::Smtp;
use crate::support::webhook_receiver::Receiver;

const MARIA: &str = "+15555550201";
const FRAN: &str = "+15555550100";
const LEE: &str = "+15555550101";
const STRANGER: &str = "+15555550299";
const PATIENCE: Duration = Duration::from_secs(20);
const SECRET: &str = "webhook-test-secret";

fn rules(webhook: &str) -> String {
    format!(
        r#"templates:
  crisis-resources:
    body: "If you are in danger call 911. Call or text 988 any time (Suicide & Crisis Lifeline). A facilitator has been notified."
alerts:
  - id: crisis-language
    severity: critical
    keywords: ["end it all", "kill myself", "want to die"]
    reply: crisis-resources
    escalate: crisis
escalations:
  crisis:
    steps:
      - notify: [fran, lee]
        via: [sms, email, webhook]
        ack_within: 10m
      - notify: [lee]
        via: [sms]
        ack_within: 10m
    repeat: until_acknowledged
contacts:
  fran: {{ name: Fran Fields, sms: "{FRAN}", email: fran@clinic.example, webhook: "{webhook}/fran" }}
  lee: {{ name: Lee Lead, sms: "{LEE}", email: lee@clinic.example, webhook: "{webhook}/lee" }}
"#
    )
}

struct Channels {
    smtp: Smtp,
    receiver: Receiver,
    _secret: tempfile::TempDir,
}

async fn start() -> Option<(Rig, Channels)> {
    let smtp = Smtp::start().await?;
    let receiver = Receiver::start(&[]);
    let secret = tempfile::tempdir().unwrap();
    let secret_file = secret.path().join("webhook-secret");
    std::fs::write(&secret_file, format!("{SECRET}\n")).unwrap();
    let extra = format!(
        "{}  webhook:\n    secret: \"file:{}\"\n",
        smtp.settings_yaml(),
        secret_file.display()
    );
    let rig = Rig::start_with(
        &rules(&receiver.url("/hook")),
        &[person("M-1", MARIA, daytime())],
        &extra,
    )
    .await?;
    Some((
        rig,
        Channels {
            smtp,
            receiver,
            _secret: secret,
        },
    ))
}

async fn wait_incident_state(rig: &Rig, want: IncidentState) -> i64 {
    let deadline = Instant::now() + PATIENCE;
    loop {
        let all = rig.store.incidents(&Default::default()).await.unwrap();
        if let Some(i) = all.iter().find(|i| i.state == want) {
            return i.id;
        }
        assert!(
            Instant::now() < deadline,
            "no incident {want:?}: {all:#?}\n{}",
            rig.logs()
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn a_crisis_text_pages_by_sms_email_and_webhook_and_an_ack_by_sms_stops_it_and_tells_the_others()
 {
    let Some((mut rig, Channels { smtp, receiver, .. })) = start().await else {
        return;
    };
    rig.text(MARIA, "i just want to end it all").await;
    let reply = rig.wait_received_by(MARIA, 1).await;
    assert!(reply[0].body.contains("988"), "{reply:?}");
    let id = wait_incident_state(&rig, IncidentState::Open).await;

    // Step 1: SMS, email and a webhook to both.
    let fran = rig.wait_received_by(FRAN, 1).await;
    let page = &fran[0].body;
    assert!(
        page.contains(&format!("#{id}")) && page.contains(&format!("ACK {id}")),
        "{page}"
    );
    assert!(page.contains("Ann A."), "{page}");
    assert!(
        !page.contains("end it all") && !page.contains(MARIA),
        "minimum necessary: {page}"
    );
    rig.wait_received_by(LEE, 1).await;
    let mails = smtp.wait_for(2, PATIENCE).await;
    let mail = mails
        .iter()
        .find(|m| m.to.contains("fran@clinic.example"))
        .unwrap_or_else(|| panic!("no mail to Fran: {mails:#?}"));
    assert!(mail.subject.contains(&format!("#{id}")), "{}", mail.subject);
    assert!(mail.body.contains(&format!("ACK {id}")));
    assert!(!mail.body.contains("end it all") && !mail.body.contains("Avery"));
    let hook = receiver.wait_for(2, PATIENCE).await;
    hearth::escalate::webhook::verify(
        SECRET.as_bytes(),
        hook[0].header(hearth::escalate::webhook::TIMESTAMP_HEADER),
        hook[0].header(hearth::escalate::webhook::SIGNATURE_HEADER),
        &hook[0].body,
        chrono::Utc::now(),
        Duration::from_secs(300),
    )
    .expect("the webhook's signature verifies");
    let json = hook[0].json();
    assert_eq!(json["event"], "page");
    assert_eq!(json["incident"], id);

    // Fran acknowledges from her phone.
    rig.text(FRAN, &format!("ACK {id}")).await;
    let fran = rig.wait_received_by(FRAN, 2).await;
    assert!(
        fran[1].body.contains(&format!("you have #{id}")),
        "{:?}",
        fran[1]
    );
    wait_incident_state(&rig, IncidentState::Acknowledged).await;
    let lee = rig.wait_received_by(LEE, 2).await;
    assert!(
        lee[1].body.contains("acknowledged by Fran Fields"),
        "{:?}",
        lee[1]
    );
    // Lee is told on every channel he was paged on; Fran, who
    // acknowledged, is not.
    let hooks = receiver.wait_for(3, PATIENCE).await;
    let told: Vec<_> = hooks
        .iter()
        .filter(|h| h.json()["event"] == "acknowledged")
        .collect();
    assert_eq!(told.len(), 1, "{hooks:#?}");
    assert_eq!(told[0].path, "/hook/lee");
    let mails = smtp.wait_for(3, PATIENCE).await;
    assert!(
        mails[2].to.contains("lee@clinic.example")
            && mails[2].subject.contains("acknowledged by Fran Fields"),
        "{mails:#?}"
    );
    let inc = rig.store.incident(id).await.unwrap().unwrap();
    assert_eq!(inc.acknowledged_by.as_deref(), Some("contact:fran"));
    rig.wait_settled().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn an_ack_from_a_number_that_is_no_contact_is_refused_and_audited() {
    let Some((mut rig, _channels)) = start().await else {
        return;
    };
    rig.text(MARIA, "i want to die").await;
    let id = wait_incident_state(&rig, IncidentState::Open).await;
    rig.wait_received_by(FRAN, 1).await;
    rig.text(STRANGER, &format!("ACK {id}")).await;
    rig.wait_settled().await;
    assert!(rig.received_by(STRANGER).is_empty());
    let inc = rig.store.incident(id).await.unwrap().unwrap();
    assert_eq!(inc.state, IncidentState::Open);
    let audit = rig.store.audit_tail(100).await.unwrap();
    assert!(
        audit
            .iter()
            .any(|e| e.action == "incident.refused" && e.actor == "unknown-number"),
        "{audit:#?}"
    );
}
