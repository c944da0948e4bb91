//! Deciding never panics, whatever the text, sender and survey state.
use crate::testing::Rng;
use std::collections::BTreeMap;

use chrono::{DateTime, Utc};

use super::*;
use crate::domain::Phone;
use crate::domain::incident::Severity;
use crate::domain::member::ConsentAction;
use crate::domain::member::{ConsentEvent, ConsentSource, ConsentState, MemberStatus};
use crate::domain::message::Kind;
use crate::pipeline::crisis::CrisisMatcher;
use crate::store::traits::reply::{OpenCritical, OpenSurvey};
use crate::store::traits::schedule::SurveyRun;

const PIECES: &[&str] = &[
    "stop",
    "STOP",
    "start",
    "yes",
    "help",
    "4",
    "10",
    "-3",
    "4.5",
    "banana",
    "very",
    "not really",
    "i want to die",
    "end it all",
    "kms",
    "sui cide",
    "d i e",
    " ",
    "",
    "!!!",
    "\u{0}",
    "\u{202e}",
    "ＳＴＯＰ",
    "🙂",
    "ñ",
    "é",
    "1e308",
    "NaN",
    "999999999999999999999",
    "my self",
    "skill",
    "kill",
    "no",
    "yep",
    "\n",
    "'",
    "\"",
    "{{ member.first_name }}",
    "ALTO",
    "ayuda",
    "one",
    "seven out of 10",
    "7/10",
    "0x10",
];

fn member(opted_out: bool) -> Member {
    Member {
        id: 7,
        external_id: "M-7".into(),
        first_name: "Alex".into(),
        last_name: None,
        phone: Phone::parse("+15555550107").unwrap(),
        timezone: "America/New_York".into(),
        language: "en".into(),
        joined_on: chrono::NaiveDate::from_ymd_opt(2026, 1, 1).unwrap(),
        status: MemberStatus::Active,
        groups: vec!["weekly-support".into()],
        attributes: Default::default(),
        consent: ConsentState {
            last: Some(ConsentEvent {
                id: 1,
                action: if opted_out {
                    ConsentAction::Revoked
                } else {
                    ConsentAction::Granted
                },
                source: ConsentSource::Keyword,
                text: String::new(),
                actor: "test".into(),
                at: Utc::now(),
            }),
        },
    }
}

#[test]
fn no_text_from_any_sender_in_any_survey_state_makes_deciding_panic() {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("rules");
    let rules = crate::config::load_dir(&dir)
        .unwrap()
        .rules
        .expect("the starter rules compile");
    let crisis = CrisisMatcher::with_rules(Some(&rules));
    let settings = ReplySettings {
        stop_words: vec!["alto".into()],
        help_words: vec!["ayuda".into()],
        ..ReplySettings::default()
    };
    let keywords = Keywords::with_additions(&settings.stop_words, &[], &settings.help_words);
    // Every question of every survey, and no survey.
    let mut states: Vec<Option<(String, u32)>> = vec![None];
    for s in rules.surveys.values() {
        for i in 0..s.questions.len() {
            states.push(Some((s.id.clone(), i as u32)));
        }
    }
    let now = Utc::now();
    let mut rng = Rng::new(0x9e37_79b9_7f4a_7c15);
    for case in 0..3_000 {
        let words = 1 + rng.next() % 6;
        let body: String = (0..words)
            .map(|_| *rng.pick(PIECES))
            .collect::<Vec<_>>()
            .join(" ");
        let sender = rng.next() % 4;
        let state = &states[(rng.next() % states.len() as u64) as usize];
        let survey = match (sender < 3, state) {
            (true, Some(at)) => Some(open_survey(at, (rng.next() % 3) as u32, now)),
            _ => None,
        };
        let facts = ReplyFacts {
            member: (sender < 3).then(|| member(sender == 1)),
            contact: (sender == 3 && case % 2 == 0).then(|| "facilitator".to_owned()),
            survey,
            history: Vec::new(),
            engagement: Default::default(),
            open_critical: (case % 3 == 0).then(|| OpenCritical {
                incident: 9,
                acknowledged: case % 2 == 0,
                last_reply_at: (case % 5 == 0).then_some(now),
            }),
        };
        let mut row = stored_text(case, &body);
        row.received_at = now;
        if sender == 2 {
            row.sms.from = "SHORTCODE".into();
        }
        row.sms.keyword =
            (case % 17 == 0).then(|| (*rng.pick(&["STOP", "START", "HELP", "??"])).to_owned());
        let text = crate::domain::normalize::normalize(&body);
        let found = crisis.find(&text);
        let d = decide(&Input {
            rules: &rules,
            crisis: found.as_ref(),
            keywords: &keywords,
            settings: &settings,
            row: &row,
            text: &text,
            facts: &facts,
            now,
        });
        assert_what_holds_whatever_the_text(&d, &body);
    }
}

/// A survey run open at `(survey, question)`.
fn open_survey(
    (survey, question): &(String, u32),
    reprompts: u32,
    now: DateTime<Utc>,
) -> OpenSurvey {
    OpenSurvey {
        run: SurveyRun {
            id: 1,
            member_id: 7,
            survey: survey.clone(),
            schedule: None,
            outbox_id: 1,
            question: *question,
            opened_at: now,
            expires_at: Some(now + chrono::Duration::hours(1)),
        },
        answers: BTreeMap::new(),
        reprompts,
    }
}

/// A crisis match records a critical hit; a member who opted out gets
/// only crisis and compliance texts; STOP is confirmed once at most.
fn assert_what_holds_whatever_the_text(d: &Decision, body: &str) {
    if d.crisis.matched {
        assert!(
            d.effects
                .hits
                .iter()
                .any(|h| h.severity == Severity::Critical),
            "{body:?}"
        );
    }
    if d.sender.opted_out {
        assert!(
            d.replies
                .iter()
                .all(|r| matches!(r.kind, Kind::Crisis | Kind::Compliance)),
            "{body:?}: {:?}",
            d.replies
        );
    }
    let stops = d.replies.iter().filter(|r| r.purpose == "stop").count();
    assert!(stops <= 1, "{body:?}");
    // A text on an unresolved critical incident is followed up (unless a
    // contact's), gets at most one follow-up reply, and never beside a
    // keyword's answer or the crisis reply.
    let follow_ups = d
        .replies
        .iter()
        .filter(|r| r.purpose == "follow_up")
        .count();
    assert!(follow_ups <= 1, "{body:?}");
    if follow_ups == 1 {
        assert!(d.compliance.is_none() && !d.crisis.matched, "{body:?}");
        assert!(
            d.follow_up
                .as_ref()
                .is_some_and(|f| f.replied && f.evidence)
        );
    }
    if d.follow_up.is_some() {
        assert_ne!(d.sender.kind, "contact", "{body:?}");
        assert!(d.effects.follow_up.is_some());
    }
}

fn decide_text(
    body: &str,
    facts: &ReplyFacts,
    settings: &ReplySettings,
    now: DateTime<Utc>,
) -> Decision {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("rules");
    let rules = crate::config::load_dir(&dir).unwrap().rules.unwrap();
    let crisis = CrisisMatcher::with_rules(Some(&rules));
    let keywords = Keywords::with_additions(&[], &[], &[]);
    let text = crate::domain::normalize::normalize(body);
    let found = crisis.find(&text);
    let row = stored_text(40, body);
    decide(&Input {
        rules: &rules,
        crisis: found.as_ref(),
        keywords: &keywords,
        settings,
        row: &row,
        text: &text,
        facts,
        now,
    })
}

#[test]
fn a_text_on_an_open_critical_incident_is_kept_forwarded_and_answered_once_an_hour() {
    // Issue 17: "hello? is anyone there?" on an open crisis incident.
    let now = Utc::now();
    let settings = ReplySettings::default();
    let mut facts = ReplyFacts {
        member: Some(member(false)),
        open_critical: Some(OpenCritical {
            incident: 3,
            acknowledged: false,
            last_reply_at: None,
        }),
        ..ReplyFacts::default()
    };
    let body = "hello? is anyone there? nobody has called me";
    let d = decide_text(body, &facts, &settings, now);
    let f = d.effects.follow_up.clone().expect("a follow-up");
    assert_eq!(f.incident, 3);
    assert_eq!(
        f.evidence.as_deref(),
        Some("follow-up text: \"hello? is anyone there? nobody has called me\"")
    );
    let reply: Vec<_> = d
        .replies
        .iter()
        .filter(|r| r.purpose == "follow_up")
        .collect();
    assert_eq!(reply.len(), 1, "{:?}", d.replies);
    assert_eq!(reply[0].kind, Kind::Crisis);
    assert_eq!(
        follow_up_body(&d),
        "A person has been told. If you are in danger now, call 911 or call or text 988."
    );
    assert!(f.reply_key.is_some());
    assert!(
        d.outcome.contains("follow-up on incident 3"),
        "{}",
        d.outcome
    );

    // Within the hour of the last follow-up reply: kept, not answered.
    facts.open_critical.as_mut().unwrap().last_reply_at = Some(now - chrono::Duration::minutes(59));
    let d = decide_text("are you there", &facts, &settings, now);
    assert!(
        d.effects
            .follow_up
            .as_ref()
            .is_some_and(|f| f.evidence.is_some() && f.reply_key.is_none())
    );
    assert!(d.replies.iter().all(|r| r.purpose != "follow_up"));
    // An hour on: answered again, in Spanish for a Spanish speaker.
    facts.open_critical.as_mut().unwrap().last_reply_at = Some(now - chrono::Duration::minutes(61));
    facts.member.as_mut().unwrap().language = "es".into();
    let d = decide_text("hola?", &facts, &settings, now);
    assert_eq!(follow_up_body(&d), settings.follow_up("es"));
    assert!(follow_up_body(&d).starts_with("Ya le avisamos"));

    keywords_and_crisis_keep_their_own_answers(facts, &settings, now);
}

/// A crisis text and a keyword on an open critical incident: their own
/// answers, and the text still followed up.
fn keywords_and_crisis_keep_their_own_answers(
    mut facts: ReplyFacts,
    settings: &ReplySettings,
    now: DateTime<Utc>,
) {
    // A crisis text is the crisis stage's: the crisis reply, its hit
    // joins the incident; it is only forwarded from here.
    let d = decide_text("i want to die", &facts, settings, now);
    assert!(d.crisis.matched);
    let f = d.effects.follow_up.clone().expect("forwarded");
    assert!(f.evidence.is_none() && f.reply_key.is_none());
    assert!(d.replies.iter().any(|r| r.purpose == "crisis"));

    // STOP keeps its one confirmation; the text is still kept.
    facts.open_critical.as_mut().unwrap().last_reply_at = None;
    let d = decide_text("STOP", &facts, settings, now);
    assert!(
        d.effects
            .follow_up
            .as_ref()
            .is_some_and(|f| f.evidence.is_some() && f.reply_key.is_none())
    );
    assert!(d.replies.iter().all(|r| r.purpose != "follow_up"));

    // No open critical incident: nothing of the kind.
    facts.open_critical = None;
    let d = decide_text("hello?", &facts, settings, now);
    assert!(d.effects.follow_up.is_none() && d.follow_up.is_none());
}

#[test]
fn an_unknown_number_in_a_crisis_conversation_is_answered_and_not_told_the_number_is_unmonitored() {
    let now = Utc::now();
    let settings = ReplySettings {
        unknown_sender_reply: Some("This number is not monitored.".into()),
        ..ReplySettings::default()
    };
    let facts = ReplyFacts {
        open_critical: Some(OpenCritical {
            incident: 4,
            acknowledged: true,
            last_reply_at: None,
        }),
        ..ReplyFacts::default()
    };
    let d = decide_text("please answer", &facts, &settings, now);
    let purposes: Vec<&str> = d.replies.iter().map(|r| r.purpose.as_str()).collect();
    assert_eq!(purposes, vec!["follow_up"]);
    assert_eq!(d.effects.follow_up.as_ref().map(|f| f.incident), Some(4));
}

fn stored_text(id: i64, body: &str) -> InboundRow {
    InboundRow {
        id,
        sms: crate::domain::message::InboundSms {
            provider: "test".into(),
            provider_message_id: format!("p{id}"),
            from: "+15555550107".into(),
            to: String::new(),
            body: body.into(),
            keyword: None,
        },
        member_id: None,
        received_at: Utc::now(),
    }
}

/// How many times the crisis matcher has run on this thread.
fn finds() -> usize {
    crate::pipeline::crisis::FINDS.with(std::cell::Cell::get)
}

#[test]
fn the_crisis_matcher_runs_once_per_text_from_the_queue_to_the_decision() {
    use crate::pipeline::InboundHandler;
    let dir = tempfile::tempdir().unwrap();
    let (store, _) = crate::store::sqlite::SqliteStore::open_at(
        &dir.path().join("h.db"),
        &crate::store::sqlite::KeySource::Generated(dir.path().join("h.db.key")),
    )
    .unwrap();
    let rules = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("rules");
    let live = std::sync::Arc::new(crate::config::reload::LiveRules::load(&rules).unwrap());
    let pipeline =
        crate::pipeline::handler::ReplyPipeline::new(store, live, ReplySettings::default());

    // Screened to hand it over first (twice: a later page reads it
    // again), then decided: one run.
    let crisis = stored_text(1, "i want to die");
    let before = finds();
    assert!(pipeline.is_urgent(&crisis));
    assert!(pipeline.is_urgent(&crisis));
    let decided = pipeline.decide_row(&crisis, ReplyFacts::default());
    assert!(decided.crisis.matched);
    assert_eq!(finds() - before, 1, "screening and deciding ran it again");

    // A text decided without being screened first: one run too.
    let plain = stored_text(2, "feeling fine today");
    let before = finds();
    let decided = pipeline.decide_row(&plain, ReplyFacts::default());
    assert!(!decided.crisis.matched);
    assert_eq!(finds() - before, 1);
}

/// The body of the follow-up reply a decision queued (its key is the one
/// the follow-up effect names).
fn follow_up_body(d: &Decision) -> &str {
    let key = d
        .effects
        .follow_up
        .as_ref()
        .and_then(|f| f.reply_key.as_deref())
        .expect("a follow-up reply was queued");
    d.effects
        .messages
        .iter()
        .find(|m| m.idempotency_key.as_str() == key)
        .map(|m| m.body.as_str())
        .expect("the queued reply is among the decision's messages")
}
