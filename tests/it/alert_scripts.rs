//! Alert evaluation on real rule directories compiled by the rules
//! compiler: the Rhai sandbox bounds what a script does to its own
//! evaluation, the context is what the documentation says, keywords match
//! on word boundaries, and `every:` alerts compile only when they can run.

use std::collections::BTreeMap;
use std::path::Path;

use chrono::{DateTime, TimeDelta, Utc};
use hearth::config::{Compiled, load_dir};
use hearth::domain::normalize::normalize;
use hearth::pipeline::alerts::{AlertContext, AlertVerdict, Trigger, evaluate, script_failures};
use hearth::rules::RuleSet;
use hearth::store::traits::reply::{Engagement, PastAnswer};
use serde_json::json;

/// Writes `files` (relative path, text) into a fresh directory and
/// compiles it.
fn compile(files: &[(&str, &str)]) -> Compiled {
    let dir = tempfile::tempdir().unwrap();
    for (path, text) in files {
        crate::support::write(&dir.path().join(path), text);
    }
    load_dir(dir.path()).unwrap()
}

fn rules(files: &[(&str, &str)]) -> RuleSet {
    let compiled = compile(files);
    let errors: Vec<String> = compiled
        .diagnostics
        .iter()
        .filter(|d| d.is_error())
        .map(ToString::to_string)
        .collect();
    assert!(errors.is_empty(), "{errors:#?}");
    compiled.rules.unwrap()
}

/// The errors, each as `path:line:column: error: message` and its hint.
fn errors(files: &[(&str, &str)]) -> Vec<String> {
    let compiled = compile(files);
    assert!(compiled.rules.is_none());
    compiled
        .diagnostics
        .iter()
        .filter(|d| d.is_error())
        .map(ToString::to_string)
        .collect()
}

/// Evaluates the reply alerts on `text`, with nothing else known.
fn on_reply(rules: &RuleSet, text: &str) -> Vec<AlertVerdict> {
    let reply = normalize(text);
    let cx = AlertContext {
        reply: Some(&reply),
        ..AlertContext::default()
    };
    evaluate(rules, &cx, Trigger::Reply, None, Some(7))
}

fn by_id<'a>(considered: &'a [AlertVerdict], id: &str) -> &'a AlertVerdict {
    considered
        .iter()
        .find(|c| c.id == id)
        .unwrap_or_else(|| panic!("alert `{id}` was not considered: {considered:#?}"))
}

/// Five alerts that misbehave only on the reply "boom", so `hearth check`
/// (which probes on sample values) lets them through, then one that fires.
const MISBEHAVING_ON_REAL_DATA: &str = r#"
alerts:
  - id: endless
    script: scripts/endless.rhai
  - id: deep
    script: scripts/deep.rhai
  - id: huge
    script: scripts/huge.rhai
  - id: divide
    when: 'reply == "boom" && 1 / 0 == 1'
  - id: property
    when: 'reply == "boom" && reply.nope == 1'
  - id: thrown
    script: scripts/thrown.rhai
  - id: not-a-bool
    when: 'if reply == "boom" { 42 } else { false }'
  - id: still-evaluated
    keywords: ["boom"]
"#;

fn misbehaving_rules() -> RuleSet {
    rules(&[
        ("alerts.yaml", MISBEHAVING_ON_REAL_DATA),
        (
            "scripts/endless.rhai",
            "let n = 0;\nif reply == \"boom\" { loop { n += 1; } }\nfalse\n",
        ),
        (
            "scripts/deep.rhai",
            "fn down(n) { down(n + 1) }\nif reply == \"boom\" { down(0) } else { false }\n",
        ),
        (
            "scripts/thrown.rhai",
            "if reply == \"boom\" { throw reply }\nfalse\n",
        ),
        (
            "scripts/huge.rhai",
            // Doubling 24 times would be 16 MB.
            "let s = \"x\";\nif reply == \"boom\" { for i in 0..24 { s += s; } }\ns.len() == 0\n",
        ),
    ])
}

#[test]
fn each_misbehaving_script_fails_only_its_own_alert_and_the_next_alert_still_runs() {
    let rules = misbehaving_rules();
    let before = script_failures();
    let considered = on_reply(&rules, "boom");
    for (id, wanted) in [
        ("endless", "more operations than the sandbox allows"),
        ("deep", "nested too deep"),
        ("huge", "too large"),
        ("divide", "division by zero"),
        ("property", "nope"),
        ("thrown", "runtime error"),
        ("not-a-bool", "where true or false was expected"),
    ] {
        let c = by_id(&considered, id);
        assert!(!c.fired, "{c:#?}");
        let error = c.error.as_deref().unwrap_or_else(|| panic!("{c:#?}"));
        assert!(
            error.to_lowercase().contains(wanted),
            "{id}: {error} lacks {wanted}"
        );
        assert!(c.reason.starts_with("script failed: "), "{c:#?}");
        assert!(c.evidence.is_none());
    }
    let last = by_id(&considered, "still-evaluated");
    assert!(last.fired, "{last:#?}");
    assert_eq!(last.evidence.as_deref(), Some("boom"));
    // Other tests evaluate too, so at least these seven.
    assert!(script_failures() >= before + 7);

    // On any other reply, the same scripts are quiet and fail nothing.
    let calm = on_reply(&rules, "a calm day");
    assert!(
        calm.iter().all(|c| !c.fired && c.error.is_none()),
        "{calm:#?}"
    );
}

#[test]
fn a_failed_evaluation_never_repeats_the_reply_text_in_its_error() {
    let rules = rules(&[
        (
            "alerts.yaml",
            "alerts:\n  - id: thrown\n    script: scripts/thrown.rhai\n",
        ),
        (
            "scripts/thrown.rhai",
            "if reply.len() > 20 { throw reply }\nfalse\n",
        ),
    ]);
    let considered = on_reply(&rules, "Sam here, the pills are in the drawer");
    let c = by_id(&considered, "thrown");
    let error = c.error.as_deref().unwrap();
    assert!(!error.contains("pills"), "{error}");
    assert!(!c.reason.contains("pills"), "{}", c.reason);
    assert!(error.contains("[redacted]"), "{error}");
}

#[test]
fn check_refuses_scripts_that_would_misbehave_on_every_evaluation() {
    for (script, wanted) in [
        (
            "let n = 0;\nloop { n += 1; }\ntrue\n",
            "scripts/s.rhai:2:8: error: alert `s`: script runs past the sandbox's limit of 50000 operations",
        ),
        (
            "fn down(n) { down(n + 1) }\ndown(0)\n",
            "scripts/s.rhai:2:1: error: alert `s`: script nests calls deeper than the sandbox's limit of 16",
        ),
        (
            "let s = \"x\";\nfor i in 0..24 { s += s; }\ntrue\n",
            "scripts/s.rhai:2:20: error: alert `s`: script builds a string larger than the sandbox allows",
        ),
    ] {
        let errors = errors(&[
            (
                "alerts.yaml",
                "alerts:\n  - id: s\n    script: scripts/s.rhai\n",
            ),
            ("scripts/s.rhai", script),
        ]);
        assert_eq!(errors.len(), 1, "{errors:#?}");
        assert!(errors[0].starts_with(wanted), "{}", errors[0]);
        assert!(errors[0].contains("\n  hint: "), "{}", errors[0]);
    }
}

fn starter_script() -> String {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("rules/scripts/declining_mood.rhai");
    std::fs::read_to_string(path).unwrap()
}

fn at(day: i64) -> DateTime<Utc> {
    DateTime::from_timestamp(1_800_000_000, 0).unwrap() + TimeDelta::days(day)
}

#[test]
fn the_starter_declining_mood_script_fires_on_the_third_low_mood_and_not_before() {
    let script = starter_script();
    let rules = rules(&[
        (
            "alerts.yaml",
            "alerts:\n  - id: declining-mood\n    script: scripts/declining_mood.rhai\n",
        ),
        ("scripts/declining_mood.rhai", &script),
    ]);
    // Answers as the store keeps them: every earlier answer, oldest first,
    // other questions and surveys between the moods.
    let mut history: Vec<PastAnswer> = Vec::new();
    let mut fired = Vec::new();
    for (day, mood) in [(0, 2), (2, 3), (4, 2)] {
        let answers = BTreeMap::from([("mood".to_owned(), json!(mood))]);
        let reply = normalize(&mood.to_string());
        let cx = AlertContext {
            reply: Some(&reply),
            survey: Some("mood-checkin"),
            answers: Some(&answers),
            history: &history,
            ..AlertContext::default()
        };
        let c = evaluate(&rules, &cx, Trigger::Reply, None, Some(1)).remove(0);
        assert!(c.error.is_none(), "{c:#?}");
        fired.push(c.fired);
        if c.fired {
            assert_eq!(
                c.evidence.as_deref(),
                Some("three low moods in a row: 2, 3, 2")
            );
        }
        history.push(PastAnswer {
            survey: "mood-checkin".into(),
            question: "mood".into(),
            value: json!(mood),
            at: at(day),
        });
        history.push(PastAnswer {
            survey: "post-session".into(),
            question: "helpful".into(),
            value: json!("yes"),
            at: at(day + 1),
        });
    }
    assert_eq!(fired, [false, false, true]);

    // A good mood in between breaks the run: 2, 8, then 3 does not fire.
    let broken: Vec<PastAnswer> = [2, 8]
        .iter()
        .enumerate()
        .map(|(i, m)| PastAnswer {
            survey: "mood-checkin".into(),
            question: "mood".into(),
            value: json!(m),
            at: at(i as i64),
        })
        .collect();
    let answers = BTreeMap::from([("mood".to_owned(), json!(3))]);
    let reply = normalize("3");
    let cx = AlertContext {
        reply: Some(&reply),
        survey: Some("mood-checkin"),
        answers: Some(&answers),
        history: &broken,
        ..AlertContext::default()
    };
    assert!(!evaluate(&rules, &cx, Trigger::Reply, None, Some(1))[0].fired);
}

#[test]
fn keywords_match_whole_words_so_skill_and_killer_are_not_kill() {
    let rules = rules(&[(
        "alerts.yaml",
        "alerts:\n  - id: kill\n    keywords: [\"kill\", \"hurt myself\"]\n",
    )]);
    for benign in [
        "I learned a new skill today",
        "that was a killer playlist",
        "killing time before group",
    ] {
        let c = on_reply(&rules, benign).remove(0);
        assert!(!c.fired, "{benign}: {c:#?}");
        assert_eq!(c.reason, "no keyword");
    }
    for (text, phrase) in [
        ("I could KILL for a coffee", "kill"),
        ("kiiill", "kill"),
        ("I want to hurt my self", "hurt myself"),
    ] {
        let c = on_reply(&rules, text).remove(0);
        assert!(c.fired, "{text}: {c:#?}");
        assert_eq!(c.evidence.as_deref(), Some(phrase), "{text}");
        assert_eq!(c.reason, format!("keyword `{phrase}`"));
    }
}

#[test]
fn an_alert_with_several_matchers_fires_when_any_does_and_says_which() {
    let rules = rules(&[
        (
            "alerts.yaml",
            r#"
alerts:
  - id: low
    keywords: ["awful"]
    when: 'answer("mood") <= 3'
    script: scripts/note.rhai
"#,
        ),
        (
            "scripts/note.rhai",
            "if answer(\"mood\") == 1 { #{ alert: true, note: \"lowest mood\" } } else { false }\n",
        ),
    ]);
    let eval = |text: &str, mood: i64| {
        let answers = BTreeMap::from([("mood".to_owned(), json!(mood))]);
        let reply = normalize(text);
        let cx = AlertContext {
            reply: Some(&reply),
            survey: Some("mood-checkin"),
            answers: Some(&answers),
            ..AlertContext::default()
        };
        evaluate(&rules, &cx, Trigger::Reply, None, None).remove(0)
    };
    let c = eval("fine", 7);
    assert!(!c.fired);
    assert_eq!(
        c.reason,
        "no keyword; when: false; script scripts/note.rhai: false"
    );

    let c = eval("fine", 2);
    assert!(c.fired);
    assert_eq!(c.reason, "when: true");
    assert_eq!(c.evidence.as_deref(), Some("when: true"));

    let c = eval("awful", 1);
    assert_eq!(
        c.reason,
        "keyword `awful` and when: true and script scripts/note.rhai: lowest mood"
    );
    assert_eq!(c.evidence.as_deref(), Some("awful"));

    // The crisis check's alert is skipped, not reported twice.
    let reply = normalize("awful");
    let cx = AlertContext {
        reply: Some(&reply),
        ..AlertContext::default()
    };
    assert!(evaluate(&rules, &cx, Trigger::Reply, Some("low"), None).is_empty());
}

#[test]
fn scripts_see_the_documented_context_and_notes_never_carry_names() {
    let rules = rules(&[
        (
            "alerts.yaml",
            "alerts:\n  - id: shape\n    script: scripts/shape.rhai\n  - id: named\n    when: '#{ alert: true, note: member.first_name + \" \" + member.last_name + \" is low\" }'\n",
        ),
        (
            "scripts/shape.rhai",
            r#"
let problems = [];
if type_of(member) != "map" || "phone" in member || member.first_name != "Robin" { problems.push("member"); }
if reply != "Feeling 2 today" { problems.push("reply"); }
if survey != "phq-2" { problems.push("survey"); }
if type_of(answers) != "map" || answers.mood != 2 || answer("mood") != 2 { problems.push("answers"); }
if score.total != 5 || score.band != "positive screen" || score.complete != true { problems.push("score"); }
if type_of(history) != "array" || history.len() != 2 { problems.push("history"); }
let first = history[0];
if first.survey != "mood-checkin" || first.question != "mood" || first.value != 4 || first.at != "2027-01-15T08:00:00Z" { problems.push("history entry"); }
if type_of(engagement.days_since_last_reply) != "f64" || engagement.unanswered_in_a_row != 2 || engagement.replies_30d != 9 { problems.push("engagement"); }
let n = 0;
for entry in history { n += entry.value; }
if n != 7 { problems.push("loop over history"); }
#{ alert: problems.is_empty(), note: if problems.is_empty() { "as documented" } else { problems.reduce(|s, p| s + " " + p, "") } }
"#,
        ),
    ]);
    let member = json!({
        "id": 3, "external_id": "M-3", "first_name": "Robin", "last_name": "Okafor",
        "timezone": "America/Chicago", "language": "en", "joined_on": "2026-11-02",
        "days_since_joined": 30, "status": "active", "groups": [], "attributes": {}
    });
    let answers = BTreeMap::from([("mood".to_owned(), json!(2))]);
    let score = json!({"total": 5, "band": "positive screen", "complete": true});
    let history = vec![
        PastAnswer {
            survey: "mood-checkin".into(),
            question: "mood".into(),
            value: json!(4),
            at: "2027-01-15T08:00:00Z".parse().unwrap(),
        },
        PastAnswer {
            survey: "mood-checkin".into(),
            question: "mood".into(),
            value: json!(3),
            at: "2027-01-16T08:00:00Z".parse().unwrap(),
        },
    ];
    let engagement = Engagement {
        days_since_last_reply: Some(1.5),
        unanswered_in_a_row: 2,
        replies_30d: 9,
    };
    let reply = normalize("Feeling 2 today");
    let cx = AlertContext {
        member: Some(&member),
        reply: Some(&reply),
        survey: Some("phq-2"),
        answers: Some(&answers),
        score: Some(&score),
        history: &history,
        engagement: Some(&engagement),
    };
    let considered = evaluate(&rules, &cx, Trigger::Reply, None, Some(3));
    let shape = by_id(&considered, "shape");
    assert_eq!(
        shape.evidence.as_deref(),
        Some("as documented"),
        "{shape:#?}"
    );
    let named = by_id(&considered, "named");
    assert!(named.fired);
    assert_eq!(
        named.evidence.as_deref(),
        Some("[redacted] [redacted] is low")
    );
}

const SCHEDULED: &str = r#"
alerts:
  - id: gone-quiet
    every: "0 9 * * *"
    when: 'reply == () && survey == () && engagement.days_since_last_reply > 14.0'
  - id: on-reply
    when: 'true'
"#;

#[test]
fn scheduled_alerts_run_only_on_the_schedule_and_see_no_reply() {
    let rules = rules(&[("alerts.yaml", SCHEDULED)]);
    let engagement = Engagement {
        days_since_last_reply: Some(20.0),
        ..Engagement::default()
    };
    let cx = AlertContext {
        engagement: Some(&engagement),
        ..AlertContext::default()
    };
    let scheduled = evaluate(&rules, &cx, Trigger::Scheduled, None, Some(1));
    assert_eq!(scheduled.len(), 1);
    assert!(scheduled[0].fired, "{scheduled:#?}");
    let replies = on_reply(&rules, "hello");
    assert_eq!(
        replies.iter().map(|c| c.id.as_str()).collect::<Vec<_>>(),
        ["on-reply"]
    );
}

#[test]
fn every_must_parse_and_must_not_take_keywords_or_a_reply_or_lack_a_matcher() {
    let errors = errors(&[(
        "alerts.yaml",
        r#"
templates:
  hello: { body: "hi" }
alerts:
  - id: bad-cron
    every: "0 25 * * *"
    when: 'true'
  - id: with-keywords
    every: "0 9 * * MON"
    keywords: ["sad"]
  - id: with-reply
    every: "0 9 * * MON"
    when: 'true'
    reply: hello
"#,
    )]);
    assert_eq!(
        errors,
        [
            "alerts.yaml:6:12: error: `every:` of alert `bad-cron`: invalid cron pattern `0 25 * * *`: hour `25` is out of range 0–23",
            "alerts.yaml:10:16: error: scheduled alert `with-keywords` (`every: \"0 9 * * MON\"`) has `keywords:`, but there is no reply to match them against\n  hint: a scheduled alert reads `history` and `engagement` in a `when:` or `script:`; put keywords in an alert without `every:`",
            "alerts.yaml:14:12: error: scheduled alert `with-reply` has `reply: hello`, but it answers no text, so nothing would be sent\n  hint: drop `reply:`; `escalate:` tells staff, who can reach the member",
        ]
    );
}

#[test]
fn the_shipped_gone_quiet_alert_fires_after_fourteen_quiet_days_or_none_since_joining() {
    let compiled = load_dir(&Path::new(env!("CARGO_MANIFEST_DIR")).join("rules")).unwrap();
    let rules = compiled.rules.expect("the shipped rules compile");
    let alert = rules.alerts.iter().find(|a| a.id == "gone-quiet").unwrap();
    assert_eq!(alert.every.as_ref().map(|e| e.pattern()), Some("0 9 * * *"));
    let member = |days_since_joined: i64| {
        json!({
            "id": 5, "external_id": "M-5", "first_name": "Kai", "last_name": null,
            "timezone": "America/New_York", "language": "en", "joined_on": "2026-10-01",
            "days_since_joined": days_since_joined, "status": "active", "groups": [],
            "attributes": {}
        })
    };
    let run = |view: &serde_json::Value, last_reply: Option<f64>| {
        let engagement = Engagement {
            days_since_last_reply: last_reply,
            ..Engagement::default()
        };
        let cx = AlertContext {
            member: Some(view),
            engagement: Some(&engagement),
            ..AlertContext::default()
        };
        evaluate(&rules, &cx, Trigger::Scheduled, None, Some(5))
            .into_iter()
            .find(|c| c.id == "gone-quiet")
            .unwrap()
    };
    let quiet = run(&member(60), Some(15.2));
    assert!(quiet.fired && quiet.error.is_none(), "{quiet:#?}");
    assert_eq!(quiet.evidence.as_deref(), Some("no reply in 15 days"));
    let recent = run(&member(60), Some(3.0));
    assert!(!recent.fired && recent.error.is_none(), "{recent:#?}");
    let never = run(&member(20), None);
    assert_eq!(
        never.evidence.as_deref(),
        Some("no reply since joining, over 14 days ago")
    );
    assert!(!run(&member(3), None).fired);
}

mod tick {
    use chrono::{DateTime, NaiveTime, TimeDelta, Utc};
    use hearth::domain::local_time::resolve_local;
    use hearth::domain::message::InboundSms;
    use hearth::store::prelude::*;
    use hearth::store::sqlite::{KeySource, SqliteStore};
    use hearth::store::traits::incident::IncidentFilter;
    use hearth::store::traits::{IncidentStore, ScheduleStore};
    use hearth::timers::alerts::{ScheduledTick, tick};

    const ROSTER: &str = "external_id,first_name,phone,timezone,consent
M-1,Ann,+15555550101,America/New_York,yes
M-2,Bo,+15555550102,America/Chicago,yes
";

    async fn store_with_roster(dir: &std::path::Path) -> SqliteStore {
        let store = SqliteStore::open_at(
            &dir.join("h.db"),
            &KeySource::Generated(dir.join("h.db.key")),
        )
        .unwrap()
        .0;
        crate::support::import_roster_in(&store, ROSTER, &[]).await;
        store
    }

    fn counts(evaluated: u64, fired: u64) -> ScheduledTick {
        ScheduledTick {
            evaluated,
            fired,
            failed: 0,
        }
    }

    /// 08:30 in New York 20 days from now: 09:00 there is half an hour
    /// later, 09:00 in Chicago an hour and a half later.
    fn morning_in_twenty_days() -> DateTime<Utc> {
        let ny = chrono_tz::America::New_York;
        let date = (Utc::now() + TimeDelta::days(20))
            .with_timezone(&ny)
            .date_naive();
        resolve_local(ny, date, NaiveTime::from_hms_opt(8, 30, 0).unwrap()).with_timezone(&Utc)
    }

    #[tokio::test]
    async fn tick_evaluates_each_member_once_per_fire_in_their_own_zone_and_files_incidents() {
        let rules = super::rules(&[
            (
                "alerts.yaml",
                "alerts:\n  - id: gone-quiet\n    severity: info\n    every: \"0 9 * * *\"\n    script: scripts/gone_quiet.rhai\n",
            ),
            (
                "scripts/gone_quiet.rhai",
                &std::fs::read_to_string(
                    std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
                        .join("rules/scripts/gone_quiet.rhai"),
                )
                .unwrap(),
            ),
        ]);
        let dir = tempfile::tempdir().unwrap();
        let store = store_with_roster(dir.path()).await;
        // Ann texts today; Bo never does.
        store
            .record_inbound(InboundSms {
                provider: "test".into(),
                provider_message_id: "in-1".into(),
                from: "+15555550101".into(),
                to: "+15555550199".into(),
                body: "hi".into(),
                keyword: None,
            })
            .await
            .unwrap();

        let t0 = morning_in_twenty_days();
        // First sight of the alert: the mark is set, nothing evaluated.
        assert_eq!(tick(&store, &rules, t0).await.unwrap(), counts(0, 0));
        let marks = store.schedule_marks().await.unwrap();
        let mark = marks
            .iter()
            .find(|m| m.schedule == "alert:gone-quiet")
            .unwrap();
        assert_eq!(mark.last_fire, t0);

        // 09:30 New York: Ann's 09:00 has passed, Bo's (Chicago) has not.
        let t1 = t0 + TimeDelta::hours(1);
        assert_eq!(tick(&store, &rules, t1).await.unwrap(), counts(1, 1));
        // Nothing new in between: nobody evaluated again.
        let t1b = t1 + TimeDelta::minutes(20);
        assert_eq!(tick(&store, &rules, t1b).await.unwrap(), counts(0, 0));
        // 10:30 New York is 09:30 in Chicago: Bo's turn.
        let t2 = t0 + TimeDelta::hours(2);
        assert_eq!(tick(&store, &rules, t2).await.unwrap(), counts(1, 1));

        let incidents = store.incidents(&IncidentFilter::default()).await.unwrap();
        assert_eq!(incidents.len(), 2, "{incidents:#?}");
        let mut evidence: Vec<(String, String)> = incidents
            .iter()
            .map(|i| {
                assert_eq!(i.alert, "gone-quiet");
                assert!(i.evidence.iter().all(|e| e.inbound_id.is_none()));
                (
                    i.member_external_id.clone().unwrap(),
                    i.evidence[0].text.clone(),
                )
            })
            .collect();
        evidence.sort();
        assert_eq!(evidence[0].0, "M-1");
        assert!(
            evidence[0].1.starts_with("no reply in 20 days")
                || evidence[0].1.starts_with("no reply in 19 days"),
            "{evidence:?}"
        );
        assert_eq!(
            evidence[1],
            (
                "M-2".to_owned(),
                "no reply since joining, over 14 days ago".to_owned()
            )
        );

        // A day later both fire again and join their open incidents.
        let t3 = t2 + TimeDelta::days(1);
        assert_eq!(tick(&store, &rules, t3).await.unwrap(), counts(2, 2));
        let incidents = store.incidents(&IncidentFilter::default()).await.unwrap();
        assert_eq!(incidents.len(), 2);
        assert!(
            incidents.iter().all(|i| i.evidence.len() == 2),
            "{incidents:#?}"
        );
    }

    #[tokio::test]
    async fn a_scheduled_alert_added_later_does_not_fire_for_the_past() {
        let dir = tempfile::tempdir().unwrap();
        let store = store_with_roster(dir.path()).await;
        let t0 = morning_in_twenty_days();
        let always = super::rules(&[(
            "alerts.yaml",
            "alerts:\n  - id: daily\n    every: \"0 9 * * *\"\n    when: 'true'\n",
        )]);
        // Days after the last mark, still nothing: the alert is new.
        assert_eq!(tick(&store, &always, t0).await.unwrap(), counts(0, 0));
        assert_eq!(
            tick(&store, &always, t0 + TimeDelta::days(3))
                .await
                .unwrap(),
            counts(2, 2),
            "three days of fires, one evaluation per member"
        );
        // A changed pattern starts again from now.
        let weekly = super::rules(&[(
            "alerts.yaml",
            "alerts:\n  - id: daily\n    every: \"0 9 * * MON\"\n    when: 'true'\n",
        )]);
        let t = t0 + TimeDelta::days(20);
        assert_eq!(tick(&store, &weekly, t).await.unwrap(), counts(0, 0));
        // Removed, its mark goes.
        let none = super::rules(&[("alerts.yaml", "alerts: []\n")]);
        tick(&store, &none, t).await.unwrap();
        assert!(
            store
                .schedule_marks()
                .await
                .unwrap()
                .iter()
                .all(|m| m.schedule != "alert:daily")
        );
    }

    #[tokio::test]
    async fn the_message_scheduler_leaves_scheduled_alert_marks_alone() {
        use hearth::config::reload::LiveRules;
        use hearth::domain::clock::ManualClock;
        use hearth::timers::schedules::Scheduler;
        use std::sync::Arc;

        let dir = tempfile::tempdir().unwrap();
        let store = store_with_roster(dir.path()).await;
        crate::support::write(
            &dir.path().join("rules/alerts.yaml"),
            "alerts:\n  - id: daily\n    every: \"0 9 * * *\"\n    when: 'true'\n",
        );
        let live = Arc::new(LiveRules::load(&dir.path().join("rules")).unwrap());
        let t0 = morning_in_twenty_days();
        tick(&store, &live.current(), t0).await.unwrap();
        let clock = Arc::new(ManualClock::new(t0));
        let scheduler = Scheduler::new(store.clone(), live.clone(), clock);
        scheduler.tick(t0 + TimeDelta::minutes(10)).await.unwrap();
        // Had the scheduler taken `alert:daily` for a removed schedule, the
        // next tick would start over and evaluate nobody.
        let t1 = t0 + TimeDelta::hours(3);
        assert_eq!(
            tick(&store, &live.current(), t1).await.unwrap(),
            counts(2, 2)
        );
    }
}

#[test]
fn a_scheduled_alert_reading_answer_is_warned_about_but_compiles() {
    let compiled = compile(&[
        (
            "alerts.yaml",
            "alerts:\n  - id: low\n    every: \"0 9 * * *\"\n    when: 'answer(\"mood\") <= 3'\n  - id: fine\n    every: \"0 9 * * *\"\n    script: scripts/s.rhai\n",
        ),
        (
            "scripts/s.rhai",
            "// answer(\"mood\") is () here\nhistory.len() > 3\n",
        ),
    ]);
    assert!(compiled.rules.is_some());
    let warnings: Vec<String> = compiled
        .diagnostics
        .iter()
        .map(ToString::to_string)
        .filter(|w| w.contains("scheduled alert"))
        .collect();
    // Not in `fine`: there `answer(` is in a comment.
    assert_eq!(
        warnings,
        [
            "alerts.yaml:4:12: warning: scheduled alert `low` (`every: \"0 9 * * *\"`) reads `answer(\"mood\")`, which is always `()` there: a scheduled run answers no survey\n  hint: read earlier answers from `history` (oldest first), like `history.filter(|h| h.question == \"mood\")`"
        ]
    );
}

#[test]
fn outside_a_survey_survey_answers_score_and_answer_are_unit_and_history_is_empty() {
    let rules = rules(&[(
        "alerts.yaml",
        "alerts:\n  - id: unit\n    when: 'survey == () && answers == () && score == () && answer(\"mood\") == () && history.len() == 0 && engagement == () && member == () && reply == \"hi\"'\n",
    )]);
    let c = on_reply(&rules, "hi").remove(0);
    assert!(c.fired, "{c:#?}");
}
