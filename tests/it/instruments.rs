//! Scored instruments: `rules/instruments.yaml` (PHQ-2, PHQ-9, GAD-2,
//! GAD-7) compiles with the starter rules and scores as documented in
//! `docs/INSTRUMENTS.md`; the `score:`, `remind_after:` and survey
//! `alerts:` keys are checked with diagnostics that name the survey, the
//! key and the value.

use std::collections::BTreeMap;
use std::path::Path;

use hearth::config::diag::{Diagnostic, Level};
use hearth::config::load_dir;
use hearth::domain::sms::{Encoding, measure};
use hearth::pipeline::answer::{item_alerts, score};
use hearth::rules::template::sample_context;
use hearth::rules::{Content, RuleSet, Severity, Survey};
use serde_json::json;

use crate::support::write;

fn starter_rules() -> RuleSet {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("rules");
    let compiled = load_dir(&dir).expect("rules/ is readable");
    let problems: Vec<String> = compiled.diagnostics.iter().map(|d| d.to_string()).collect();
    assert!(problems.is_empty(), "{}", problems.join("\n"));
    compiled.rules.expect("the starter rules compile")
}

fn answers(survey: &Survey, each: i64) -> BTreeMap<String, serde_json::Value> {
    survey
        .questions
        .iter()
        .map(|q| (q.id.clone(), json!(each)))
        .collect()
}

/// Published item wording (Kroenke, Spitzer & Williams 2001; Spitzer et
/// al. 2006), a dash written as ` - ` for GSM-7.
const PHQ9_ITEMS: [&str; 9] = [
    "Little interest or pleasure in doing things",
    "Feeling down, depressed, or hopeless",
    "Trouble falling or staying asleep, or sleeping too much",
    "Feeling tired or having little energy",
    "Poor appetite or overeating",
    "Feeling bad about yourself - or that you are a failure or have let yourself or your family down",
    "Trouble concentrating on things, such as reading the newspaper or watching television",
    "Moving or speaking so slowly that other people could have noticed? Or the opposite - being so fidgety or restless that you have been moving around a lot more than usual",
    "Thoughts that you would be better off dead or of hurting yourself in some way",
];
const GAD7_ITEMS: [&str; 7] = [
    "Feeling nervous, anxious or on edge",
    "Not being able to stop or control worrying",
    "Worrying too much about different things",
    "Trouble relaxing",
    "Being so restless that it is hard to sit still",
    "Becoming easily annoyed or irritable",
    "Feeling afraid as if something awful might happen",
];
const REPLY: &str =
    "Reply 0 (not at all), 1 (several days), 2 (more than half the days) or 3 (nearly every day).";

#[test]
fn the_instruments_compile_clean_with_the_starter_rules_and_none_is_scheduled() {
    let rules = starter_rules();
    for id in ["phq2", "phq9", "gad2", "gad7"] {
        assert!(rules.surveys.contains_key(id), "{id} is shipped");
        assert!(
            !rules
                .schedules
                .values()
                .any(|s| s.content == Content::Survey(id.into())),
            "{id} must not be scheduled out of the box"
        );
    }
    let phq9 = &rules.surveys["phq9"];
    assert_eq!(phq9.questions.len(), 9);
    assert_eq!(rules.surveys["gad7"].questions.len(), 7);
    assert_eq!(
        phq9.remind_after.map(|d| d.as_secs()),
        Some(4 * 3600),
        "remind_after: 4h"
    );
}

#[test]
fn the_commented_example_schedule_switches_the_phq9_on_without_a_warning() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("rules");
    let dir = tempfile::tempdir().expect("a temp dir");
    for entry in std::fs::read_dir(&root).expect("rules/ is readable") {
        let path = entry.expect("an entry").path();
        if path.extension().is_some_and(|e| e == "yaml") {
            let mut text = std::fs::read_to_string(&path).expect("readable");
            if path.ends_with("instruments.yaml") {
                let example: Vec<&str> = text
                    .lines()
                    .skip_while(|l| *l != "#   schedules:")
                    .take_while(|l| l.starts_with("#  "))
                    .collect();
                assert!(example.len() > 3, "the example schedule is in the file");
                let uncommented: Vec<&str> = example.iter().map(|l| &l[4..]).collect();
                text.push_str(&format!("\n{}\n", uncommented.join("\n")));
            }
            write(&dir.path().join(path.file_name().expect("a name")), &text);
        }
    }
    std::fs::create_dir_all(dir.path().join("scripts")).expect("mkdir");
    for entry in std::fs::read_dir(root.join("scripts")).expect("scripts/ is readable") {
        let path = entry.expect("an entry").path();
        let text = std::fs::read_to_string(&path).expect("readable");
        write(
            &dir.path()
                .join("scripts")
                .join(path.file_name().expect("a name")),
            &text,
        );
    }
    let compiled = load_dir(dir.path()).expect("readable");
    let problems: Vec<String> = compiled.diagnostics.iter().map(|d| d.to_string()).collect();
    assert!(problems.is_empty(), "{}", problems.join("\n"));
    let rules = compiled.rules.expect("compiles");
    assert_eq!(
        rules.schedules["monthly-phq9"].content,
        Content::Survey("phq9".into())
    );
}

#[test]
fn every_instrument_question_is_the_published_stem_and_item_in_at_most_three_gsm7_segments() {
    let rules = starter_rules();
    let ctx = sample_context();
    let cases: [(&str, &str, &[&str]); 4] = [
        (
            "phq2",
            "Over the last 2 weeks, how often have you been bothered by any of the following problems?",
            &PHQ9_ITEMS[..2],
        ),
        (
            "phq9",
            "Over the last 2 weeks, how often have you been bothered by any of the following problems?",
            &PHQ9_ITEMS,
        ),
        (
            "gad2",
            "Over the last 2 weeks, how often have you been bothered by the following problems?",
            &GAD7_ITEMS[..2],
        ),
        (
            "gad7",
            "Over the last 2 weeks, how often have you been bothered by the following problems?",
            &GAD7_ITEMS,
        ),
    ];
    for (id, stem, items) in cases {
        let survey = &rules.surveys[id];
        assert_eq!(survey.questions.len(), items.len(), "{id}");
        for (q, item) in survey.questions.iter().zip(items) {
            let text = rules.renderer.render(&q.ask, &ctx).expect("renders");
            assert!(
                text.contains(&format!("{stem} {item}")),
                "{id}/{}: published wording not found in {text:?}",
                q.id
            );
            assert!(text.ends_with(REPLY), "{id}/{}: {text:?}", q.id);
            let len = measure(&text);
            assert_eq!(len.encoding, Encoding::Gsm7, "{id}/{}", q.id);
            assert!(len.segments <= 3, "{id}/{}: {len:?}", q.id);
        }
    }
}

#[test]
fn phq9_scores_into_its_published_bands() {
    let rules = starter_rules();
    let phq9 = &rules.surveys["phq9"];
    let total_band = |a: &BTreeMap<String, serde_json::Value>| {
        let s = score(phq9, a).expect("phq9 is scored");
        assert!(s.complete);
        (s.total, s.band.expect("a band"))
    };
    assert_eq!(total_band(&answers(phq9, 1)), (9.0, "mild".into()));
    assert_eq!(total_band(&answers(phq9, 3)), (27.0, "severe".into()));
    assert_eq!(total_band(&answers(phq9, 0)), (0.0, "minimal".into()));
    let mut a = answers(phq9, 1);
    for (q, v) in [("phq9_1", 2), ("phq9_2", 2), ("phq9_3", 3)] {
        a.insert(q.into(), json!(v));
    }
    assert_eq!(total_band(&a), (13.0, "moderate".into()));
    a.insert("phq9_4".into(), json!(3));
    a.insert("phq9_5".into(), json!(3));
    assert_eq!(total_band(&a), (17.0, "moderately severe".into()));
    assert_eq!(
        score(phq9, &answers(phq9, 2)).map(|s| s.to_json()),
        Some(json!({"total": 18, "band": "moderately severe", "complete": true}))
    );
}

#[test]
fn gad7_and_the_two_item_screens_score_as_documented() {
    let rules = starter_rules();
    let band = |id: &str, each: i64| {
        let s = &rules.surveys[id];
        score(s, &answers(s, each)).and_then(|x| x.band)
    };
    assert_eq!(band("gad7", 0).as_deref(), Some("minimal"));
    assert_eq!(band("gad7", 1).as_deref(), Some("mild"));
    assert_eq!(band("gad7", 2).as_deref(), Some("moderate"));
    assert_eq!(band("gad7", 3).as_deref(), Some("severe"));
    assert_eq!(band("phq2", 1).as_deref(), Some("negative screen"));
    assert_eq!(
        band("phq2", 2).as_deref(),
        Some("positive screen: offer the PHQ-9")
    );
    let gad2 = &rules.surveys["gad2"];
    let mut a = answers(gad2, 1);
    a.insert("gad2_2".into(), json!(2));
    assert_eq!(
        score(gad2, &a).and_then(|x| x.band).as_deref(),
        Some("positive screen: offer the GAD-7")
    );
}

#[test]
fn phq9_item_9_above_zero_opens_a_critical_alert_that_escalates_to_crisis() {
    let rules = starter_rules();
    let phq9 = &rules.surveys["phq9"];
    for v in 1..=3 {
        let fired = item_alerts(phq9, "phq9_9", &json!(v));
        assert_eq!(fired.len(), 1, "answer {v}");
        let (alert, evidence, quote) = &fired[0];
        assert_eq!(alert.id, "phq9-item9");
        assert_eq!(alert.severity, Severity::Critical);
        assert_eq!(alert.escalate.as_deref(), Some("crisis"));
        // Issue 17: the page says what was answered, in the published
        // wording of the item and of the answer.
        let label = [
            "several days",
            "more than half the days",
            "nearly every day",
        ][v - 1];
        let want = format!(
            "item 9 — Thoughts that you would be better off dead or of hurting yourself in some way: '{label}'"
        );
        assert_eq!(quote.as_deref(), Some(want.as_str()));
        assert_eq!(evidence, &format!("{want} (answer {v} to phq9_9, above 0)"));
        let reply = alert.reply.as_deref().expect("a reply to the member");
        let text = rules
            .renderer
            .render(reply, &sample_context())
            .expect("renders");
        assert!(text.contains("988") && text.contains("911"), "{text}");
    }
    assert!(item_alerts(phq9, "phq9_9", &json!(0)).is_empty());
    for q in 1..=8 {
        assert!(item_alerts(phq9, &format!("phq9_{q}"), &json!(3)).is_empty());
    }
    assert!(rules.escalations.contains_key("crisis"));
}

/// A survey with every new key, valid; each test below breaks one thing.
const VALID: &str = r#"
templates:
  followup:
    body: "Someone will call you. Call or text 988, or 911 in danger."
escalations:
  crisis:
    steps:
      - notify: [lead]
        via: [sms]
        ack_within: 10m
contacts:
  lead:
    sms: "+15555550100"
alerts:
  - id: low
    keywords: [awful]
surveys:
  scale:
    questions:
      - id: q1
        ask: "One? Reply 0-3."
        expect: { number: { min: 0, max: 3, integer: true } }
      - id: q2
        ask: "Two? Reply 0-3."
        expect: { number: { min: 0, max: 3, integer: true } }
      - id: ok
        ask: "Fine?"
        expect: yes_no
    remind_after: 2h
    expires_after: 12h
    score:
      reverse: [q2]
      bands:
        - { from: 0, label: low }
        - { from: 4, label: high }
    alerts:
      - id: q1-high
        question: q1
        above: 2
        severity: critical
        reply: followup
        escalate: crisis
        realert: 24h
"#;

fn compile(yaml: &str) -> (Option<RuleSet>, Vec<Diagnostic>) {
    let dir = tempfile::tempdir().expect("a temp dir");
    write(&dir.path().join("rules.yaml"), yaml);
    let compiled = load_dir(dir.path()).expect("readable");
    (compiled.rules, compiled.diagnostics)
}

/// The one diagnostic of `level` whose message contains `needle`.
fn find(diags: &[Diagnostic], level: Level, needle: &str) -> Diagnostic {
    let found: Vec<&Diagnostic> = diags
        .iter()
        .filter(|d| d.level == level && d.message.contains(needle))
        .collect();
    assert_eq!(
        found.len(),
        1,
        "one {level} containing {needle:?} in:\n{}",
        diags
            .iter()
            .map(|d| d.to_string())
            .collect::<Vec<_>>()
            .join("\n")
    );
    found[0].clone()
}

fn broken(from: &str, to: &str) -> Vec<Diagnostic> {
    assert!(VALID.contains(from), "{from:?} is in the valid rules");
    let (rules, diags) = compile(&VALID.replacen(from, to, 1));
    assert!(rules.is_none(), "{to:?} must not compile");
    diags
}

#[test]
fn a_survey_with_a_score_a_reminder_and_an_item_alert_compiles_to_what_it_says() {
    let (rules, diags) = compile(VALID);
    let problems: Vec<String> = diags.iter().map(|d| d.to_string()).collect();
    assert!(problems.is_empty(), "{}", problems.join("\n"));
    let rules = rules.expect("compiles");
    let s = &rules.surveys["scale"];
    assert_eq!(s.remind_after.map(|d| d.as_secs()), Some(7200));
    let scoring = s.score.as_ref().expect("scored");
    // Every number question when `items` is left out; not the yes/no.
    assert_eq!(scoring.items, ["q1", "q2"]);
    assert_eq!(scoring.reverse, ["q2"]);
    assert_eq!(scoring.bands.len(), 2);
    let a = BTreeMap::from([("q1".into(), json!(3)), ("q2".into(), json!(0))]);
    let scored = score(s, &a).expect("scored");
    assert_eq!((scored.total, scored.band.as_deref()), (6.0, Some("high")));
    assert_eq!(s.item_alerts.len(), 1);
    assert_eq!(item_alerts(s, "q1", &json!(3)).len(), 1);
    assert!(item_alerts(s, "q1", &json!(2)).is_empty());
}

#[test]
fn an_unknown_scored_question_is_an_error_with_a_did_you_mean_hint() {
    let diags = broken("    score:\n", "    score:\n      items: [q2, q1x]\n");
    let d = find(&diags, Level::Error, "unknown question");
    assert_eq!(
        d.message,
        "survey `scale`: `score.items` names unknown question `q1x`"
    );
    assert_eq!(d.hint.as_deref(), Some("did you mean `q1`?"));
    assert_eq!(d.rule.as_deref(), Some("survey scale"));

    let diags = broken("reverse: [q2]", "reverse: [q2s]");
    let d = find(&diags, Level::Error, "unknown question");
    assert!(d.message.contains("`score.reverse`") && d.message.contains("`q2s`"));
    assert_eq!(d.hint.as_deref(), Some("did you mean `q2`?"));

    let diags = broken("question: q1", "question: nothing");
    let d = find(&diags, Level::Error, "unknown question");
    assert_eq!(
        d.message,
        "survey `scale`: alert `q1-high` names unknown question `nothing`"
    );
    assert_eq!(
        d.hint.as_deref(),
        Some("the questions of `scale` are: q1, q2, ok")
    );
}

#[test]
fn a_scored_or_alerted_yes_no_question_is_an_error() {
    let diags = broken("    score:\n", "    score:\n      items: [q1, ok]\n");
    let d = find(&diags, Level::Error, "a yes_no question");
    assert!(d.message.contains("`score.items` names `ok`"), "{d}");
    assert!(d.hint.is_some());
    let diags = broken("question: q1", "question: ok");
    find(
        &diags,
        Level::Error,
        "alert `q1-high` names `ok`, a yes_no question",
    );
}

#[test]
fn bands_out_of_order_or_without_a_label_are_errors() {
    let diags = broken("{ from: 4, label: high }", "{ from: -1, label: high }");
    let d = find(&diags, Level::Error, "must ascend");
    assert_eq!(
        d.message,
        "survey `scale`: `score.bands` must ascend by `from`, but `from: -1` (`high`) follows `from: 0` (`low`)"
    );
    assert!(d.hint.is_some());
    let diags = broken("{ from: 4, label: high }", "{ from: 4, label: \"  \" }");
    let d = find(&diags, Level::Error, "empty label");
    assert!(d.message.contains("from 4"), "{d}");
}

#[test]
fn a_reverse_item_must_be_scored_and_have_a_range() {
    let diags = broken("    score:\n", "    score:\n      items: [q1]\n");
    let d = find(&diags, Level::Error, "not one of `score.items`");
    assert_eq!(d.hint.as_deref(), Some("add `q2` to `score.items`"));
    let diags = broken(
        "ask: \"Two? Reply 0-3.\"\n        expect: { number: { min: 0, max: 3, integer: true } }",
        "ask: \"Two? Reply 0-3.\"\n        expect: { number: { min: 0, integer: true } }",
    );
    find(
        &diags,
        Level::Error,
        "reverse item `q2` has no `min` and `max`",
    );
}

#[test]
fn a_reminder_after_the_survey_closes_is_a_warning() {
    let (rules, diags) = compile(&VALID.replacen("remind_after: 2h", "remind_after: 1d", 1));
    assert!(rules.is_some(), "a warning does not stop the rules");
    let d = find(&diags, Level::Warning, "remind_after");
    assert_eq!(
        d.message,
        "survey `scale`: `remind_after: 1d` is not shorter than `expires_after: 12h`; the reminder is never sent"
    );
    assert_eq!(
        d.hint.as_deref(),
        Some("remind before the survey closes, e.g. `remind_after: 6h`")
    );
}

#[test]
fn an_item_alert_id_taken_by_another_alert_is_an_error() {
    let diags = broken("- id: q1-high", "- id: low");
    let d = find(&diags, Level::Error, "duplicate alert id `low`");
    assert!(
        d.hint
            .as_deref()
            .is_some_and(|h| h.starts_with("first defined at")),
        "{d}"
    );
}

#[test]
fn an_item_alert_with_an_unknown_template_or_escalation_is_an_error() {
    let diags = broken("reply: followup", "reply: folowup");
    let d = find(&diags, Level::Error, "unknown template `folowup`");
    assert_eq!(d.hint.as_deref(), Some("did you mean `followup`?"));
    let diags = broken("escalate: crisis", "escalate: crises");
    let d = find(&diags, Level::Error, "unknown escalation `crises`");
    assert_eq!(d.hint.as_deref(), Some("did you mean `crisis`?"));
}

#[test]
fn an_item_alert_reply_counts_as_a_used_template() {
    let (_, diags) = compile(VALID);
    assert!(
        !diags.iter().any(|d| d.message.contains("not used")),
        "{diags:?}"
    );
}

// --- Survey housekeeping on a real SQLite file ----------------------------

mod housekeeping {
    use chrono::{DateTime, TimeDelta, Utc};
    use hearth::config::load_dir;
    use hearth::domain::message::{
        IdempotencyKey, Kind, NewMessage, OutState, Plan, Report, ReportFor, SurveyStart,
    };
    use hearth::rules::RuleSet;
    use hearth::store::prelude::*;
    use hearth::store::sqlite::{KeySource, SqliteStore};
    use hearth::store::traits::outbox::ListFilter;
    use hearth::store::traits::{OutboxStore, ReplyStore};
    use hearth::timers::surveys::{SurveyTick, tick};

    use crate::support::write;

    const ROSTER: &str = "external_id,first_name,phone,timezone,groups,consent
M-1,Ann,+15555550101,America/New_York,tuesday,yes
M-2,Bo,+15555550102,America/Chicago,tuesday,yes
";

    const RULES: &str = r#"
groups:
  - id: tuesday
    name: Tuesday Group
    timezone: America/New_York
    sessions: { cron: "0 17 * * TUE", duration: 90m }
surveys:
  mood-checkin:
    questions:
      - id: mood
        ask: "Hi {{ member.first_name }}, {{ group.name }} here: your mood, 1-10?"
        expect: { number: { min: 1, max: 10, integer: true } }
    remind_after: 1h
    expires_after: 4h
"#;

    async fn setup() -> (tempfile::TempDir, SqliteStore, RuleSet) {
        let dir = tempfile::tempdir().unwrap();
        write(&dir.path().join("rules/rules.yaml"), RULES);
        let compiled = load_dir(&dir.path().join("rules")).unwrap();
        let rules = compiled
            .rules
            .unwrap_or_else(|| panic!("{:?}", compiled.diagnostics));
        let store = SqliteStore::open_at(
            &dir.path().join("h.db"),
            &KeySource::Generated(dir.path().join("h.db.key")),
        )
        .unwrap()
        .0;
        crate::support::import_roster_in(&store, ROSTER, &["tuesday"]).await;
        (dir, store, rules)
    }

    /// The first question of `survey` sent to `member` and delivered, so
    /// its run is open and waiting; expires four hours after `fire`.
    async fn asked(store: &SqliteStore, member: i64, survey: &str, fire: DateTime<Utc>) -> i64 {
        let m = NewMessage {
            idempotency_key: IdempotencyKey::scheduled(survey, fire, member),
            member_id: Some(member),
            to: None,
            body: "Your mood, 1-10?".into(),
            kind: Kind::Scheduled,
            not_before: fire,
            expires_at: None,
            plan: Some(Plan {
                schedule: format!("{survey}-schedule"),
                fire,
                generation: 1,
                version: "v1".into(),
                survey: Some(SurveyStart {
                    survey: survey.into(),
                    expires_at: fire + TimeDelta::hours(4),
                }),
            }),
            suppressed: None,
        };
        let id = store.enqueue(m).await.unwrap().id();
        let state = store
            .apply_report(ReportFor::Outbox(id), Report::Delivered, None)
            .await
            .unwrap();
        assert_eq!(state, Some(OutState::Delivered));
        id
    }

    async fn replies(store: &SqliteStore) -> Vec<(String, Option<i64>, String)> {
        store
            .list_messages(ListFilter {
                state: None,
                kind: Some(Kind::Reply),
                limit: 100,
            })
            .await
            .unwrap()
            .into_iter()
            .map(|m| (m.idempotency_key.to_string(), m.member_id, m.body))
            .collect()
    }

    async fn member_id(store: &SqliteStore, external: &str) -> i64 {
        store.member(external).await.unwrap().unwrap().id
    }

    #[tokio::test]
    async fn the_tick_reminds_a_silent_member_once_and_expires_the_run_after_its_window() {
        let (_dir, store, rules) = setup().await;
        let ann = member_id(&store, "M-1").await;
        let now = Utc::now();
        asked(&store, ann, "mood-checkin", now - TimeDelta::minutes(5)).await;
        let run = store.waiting_runs(0, 10).await.unwrap()[0].run.id;

        let quiet = tick(&store, &rules, now + TimeDelta::minutes(30))
            .await
            .unwrap();
        assert_eq!(quiet, SurveyTick::default(), "not an hour yet");
        assert!(replies(&store).await.is_empty());

        let due = tick(&store, &rules, now + TimeDelta::minutes(61))
            .await
            .unwrap();
        assert_eq!(
            due,
            SurveyTick {
                reminded: 1,
                expired: 0
            }
        );
        assert_eq!(
            replies(&store).await,
            [(
                format!("survey-reminder:{run}:0"),
                Some(ann),
                "Hi Ann, Tuesday Group here: your mood, 1-10?".to_owned()
            )]
        );

        let again = tick(&store, &rules, now + TimeDelta::minutes(90))
            .await
            .unwrap();
        assert_eq!(again, SurveyTick::default(), "one reminder per question");
        assert_eq!(replies(&store).await.len(), 1);

        let closed = tick(&store, &rules, now + TimeDelta::hours(4))
            .await
            .unwrap();
        assert_eq!(
            closed,
            SurveyTick {
                reminded: 0,
                expired: 1
            }
        );
        assert!(store.waiting_runs(0, 10).await.unwrap().is_empty());
    }

    #[tokio::test]
    async fn a_run_of_a_survey_gone_from_the_rules_gets_no_reminder_but_still_expires() {
        let (_dir, store, rules) = setup().await;
        let bo = member_id(&store, "M-2").await;
        let now = Utc::now();
        asked(&store, bo, "retired-survey", now - TimeDelta::minutes(5)).await;
        let later = tick(&store, &rules, now + TimeDelta::hours(2))
            .await
            .unwrap();
        assert_eq!(later, SurveyTick::default());
        assert!(replies(&store).await.is_empty());
        let closed = tick(&store, &rules, now + TimeDelta::hours(5))
            .await
            .unwrap();
        assert_eq!(closed.expired, 1);
        assert!(store.waiting_runs(0, 10).await.unwrap().is_empty());
    }
}
