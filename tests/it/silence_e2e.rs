//! Issue 17, "no crisis conversation left in silence", end to end with
//! the daemon binary through Kannel and fakesmsc: a member's further
//! texts on an open crisis incident reach the facilitator who
//! acknowledged it and are answered once an hour at most; a critical
//! incident nobody acknowledges keeps paging after its policy ran out.
//!
//! Every wait is on an event (a text reaching a phone, a text processed)
//! with a deadline; Kannel missing is a printed skip, and a failure under
//! CI (see `support::components`).

use std::time::{Duration, Instant};

use hearth::domain::incident::IncidentState;
use hearth::store::traits::IncidentStore;

use crate::replies_e2e::{Rig, daytime, person};

const MARIA: &str = "+15555550201";
const FRAN: &str = "+15555550100";
const LEE: &str = "+15555550101";
const PATIENCE: Duration = Duration::from_secs(20);

/// The crisis alert and a policy that runs out fast: Fran, then Lee,
/// `ack_within` a second each, no repeat. Fran may read members' words.
const RULES: &str = r#"templates:
  crisis-resources:
    body: "If you are in danger call 911. Call or text 988 any time (Suicide & Crisis Lifeline). A facilitator has been notified."
alerts:
  - id: crisis-language
    severity: critical
    keywords: ["end it all", "want to die"]
    reply: crisis-resources
    escalate: crisis
escalations:
  crisis:
    steps:
      - notify: [fran]
        via: [sms]
        ack_within: 1s
      - notify: [lee]
        via: [sms]
        ack_within: 1s
contacts:
  fran: { name: Fran Fields, sms: "+15555550100", phi: true }
  lee: { name: Lee Lead, sms: "+15555550101" }
"#;

async fn start(settings: &str) -> Option<Rig> {
    Rig::start_with(RULES, &[person("M-1", MARIA, daytime())], settings).await
}

async fn open_incident(rig: &Rig) -> i64 {
    let deadline = Instant::now() + PATIENCE;
    loop {
        let all = rig.store.incidents(&Default::default()).await.unwrap();
        if let Some(i) = all.first() {
            return i.id;
        }
        assert!(Instant::now() < deadline, "no incident\n{}", rig.logs());
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn issue_17_a_follow_up_on_an_open_crisis_incident_reaches_the_acknowledger_and_is_answered_once()
 {
    // A long repeat, so the only texts Fran gets are the page, the ACK's
    // confirmation and the follow-ups.
    let Some(mut rig) = start("notify:\n  critical_repeat: 1h\n").await else {
        return;
    };
    rig.text(MARIA, "i just want to end it all").await;
    let id = open_incident(&rig).await;
    rig.wait_received_by(MARIA, 1).await;
    rig.wait_received_by(FRAN, 1).await;
    rig.text(FRAN, &format!("ACK {id}")).await;
    let confirmed = rig.wait_received_by(FRAN, 2).await;
    assert!(
        confirmed[1].body.contains(&format!("you have #{id}")),
        "{confirmed:#?}"
    );

    rig.text(MARIA, "hello? is anyone there? nobody has called me")
        .await;
    let fran = rig.wait_received_by(FRAN, 3).await;
    let forwarded = &fran[2].body;
    assert!(forwarded.contains(&format!("#{id}")), "{forwarded}");
    assert!(
        forwarded.contains("hello? is anyone there? nobody has called me"),
        "Fran has phi: true: {forwarded}"
    );
    let maria = rig.wait_received_by(MARIA, 2).await;
    assert_eq!(
        maria[1].body,
        "A person has been told. If you are in danger now, call 911 or call or text 988."
    );

    // A second text at once: forwarded too, and not answered again.
    rig.text(MARIA, "please").await;
    let fran = rig.wait_received_by(FRAN, 4).await;
    assert!(fran[3].body.contains("\"please\""), "{}", fran[3].body);
    rig.wait_settled().await;
    assert_eq!(
        rig.received_by(MARIA).len(),
        2,
        "{:#?}",
        rig.received_by(MARIA)
    );
    assert!(
        rig.received_by(LEE)
            .iter()
            .all(|r| !r.body.contains("texted again")),
        "Lee is not the acknowledger: {:#?}",
        rig.received_by(LEE)
    );
    let inc = rig.store.incident(id).await.unwrap().unwrap();
    assert_eq!(inc.state, IncidentState::Acknowledged);
    assert_eq!(
        inc.evidence
            .iter()
            .filter(|e| e.kind == "follow_up")
            .count(),
        2
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn issue_17_an_unacknowledged_critical_incident_still_pages_after_its_policy_ran_out() {
    let Some(mut rig) = start("notify:\n  critical_repeat: 1s\n").await else {
        return;
    };
    rig.text(MARIA, "i want to die").await;
    let id = open_incident(&rig).await;
    // Fran, Lee, then Lee again and again, each saying it is a repeat.
    let deadline = Instant::now() + PATIENCE;
    let repeat = loop {
        let lee = rig.received_by(LEE);
        if let Some(r) = lee
            .iter()
            .find(|r| r.body.contains("still unacknowledged after"))
        {
            break r.body.clone();
        }
        assert!(
            Instant::now() < deadline,
            "no repeat page: {lee:#?}\n{}",
            rig.logs()
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    assert!(repeat.contains(&format!("ACK {id}")), "{repeat}");
    let inc = rig.store.incident(id).await.unwrap().unwrap();
    assert_eq!(inc.state, IncidentState::Open);
    // An ACK ends it.
    rig.text(LEE, &format!("ACK {id}")).await;
    let inc = rig.store.incident(id).await.unwrap().unwrap();
    assert_eq!(inc.state, IncidentState::Acknowledged);
}
