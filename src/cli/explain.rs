//! `hearth explain`: the reply pipeline's decision on one text, without a
//! database.
//!
//! It runs the daemon's own decision ([`decide_row`], what the pipeline's
//! worker calls for every text) on a made-up sender: a member
//! (`--member-attr` sets roster attributes, `--opted-out` revokes their
//! consent, `--answering SURVEY.QUESTION` puts them mid-survey), or, with
//! `--unknown-sender`, a number that is nobody's. Incident decisions
//! (join, grouping, realert) are folded against `--open-incident`
//! (nothing is open otherwise) exactly as the store folds them.

use std::collections::BTreeMap;
use std::io::Write;
use std::path::PathBuf;
use std::process::ExitCode;

use chrono::{DateTime, Utc};

use super::Format;
use super::staff::rules_in;
use crate::domain::Phone;
use crate::domain::incident::{Severity, SubjectIncidents, fold};
use crate::domain::member::{
    ConsentAction, ConsentEvent, ConsentSource, ConsentState, Member, MemberStatus,
};
use crate::domain::message::{InboundRow, InboundSms};
use crate::pipeline::crisis::{CrisisMatcher, Screened};
use crate::pipeline::decide::{Decision, Setup, decide_row};
use crate::pipeline::keywords::Keywords;
use crate::rules::RuleSet;
use crate::settings::ReplySettings;
use crate::store::traits::reply::{OpenSurvey, ReplyFacts};
use crate::store::traits::schedule::SurveyRun;

#[derive(Debug, clap::Args)]
pub struct ExplainArgs {
    /// The rules directory.
    #[arg(long, value_name = "DIR")]
    rules: PathBuf,
    /// The text, as a member would send it.
    #[arg(long)]
    text: String,
    /// A roster attribute of the made-up member (repeatable):
    /// `--member-attr progress_level=2`. `timezone`, `groups` (comma
    /// separated), `first_name` and `language` set those fields.
    #[arg(long = "member-attr", value_name = "KEY=VALUE")]
    member_attr: Vec<String>,
    /// The member is answering this survey question: `mood-checkin.mood`.
    #[arg(long, value_name = "SURVEY.QUESTION")]
    answering: Option<String>,
    /// Re-prompts already sent for that question.
    #[arg(long, default_value_t = 0)]
    reprompts: u32,
    /// The member has opted out (texted STOP).
    #[arg(long)]
    opted_out: bool,
    /// The sender is no member or contact.
    #[arg(long, conflicts_with_all = ["opted_out", "answering", "member_attr"])]
    unknown_sender: bool,
    /// An incident already open for the member: `crisis-language` or
    /// `low-mood:warning` (repeatable; severity defaults to the alert's).
    #[arg(long = "open-incident", value_name = "ALERT[:SEVERITY]")]
    open_incident: Vec<String>,
    /// When the text arrives (RFC 3339); now by default.
    #[arg(long, value_name = "TIME")]
    at: Option<String>,
    #[arg(long, value_enum, default_value_t = Format::Text)]
    format: Format,
}

/// A usage error: printed, exit 1.
fn usage(message: String) -> ExitCode {
    eprintln!("error: {message}");
    ExitCode::from(super::EXIT_INVALID)
}

/// `settings`: the global `--settings`, whose `replies:` (program details,
/// extra keywords, crisis text) apply when it was given or exists.
pub(crate) fn explain(settings: &std::path::Path, args: ExplainArgs) -> ExitCode {
    let rules = tri!(rules_in(&args.rules));
    let replies = tri!(super::optional_settings(settings))
        .map(|s| s.replies)
        .unwrap_or_default();
    let now = match &args.at {
        None => Utc::now(),
        Some(t) => tri!(
            DateTime::parse_from_rfc3339(t)
                .map(|t| t.with_timezone(&Utc))
                .map_err(|e| usage(format!(
                    "--at `{t}` is not a time: {e}\n  hint: write it like 2026-01-08T14:00:00-05:00"
                )))
        ),
    };
    let facts = tri!(made_up_facts(&args, &rules, now).map_err(usage));
    let open = tri!(open_incidents(&args.open_incident, &rules, now).map_err(usage));
    let decision = explain_text(&rules, &replies, &args.text, facts, &open, now);
    let mut out = std::io::stdout().lock();
    let written = match args.format {
        Format::Json => serde_json::to_writer_pretty(&mut out, &decision)
            .map_err(std::io::Error::other)
            .and_then(|_| writeln!(out)),
        Format::Text => write_text(&mut out, &decision),
    };
    match written {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: cannot write output: {e}");
            ExitCode::from(super::EXIT_INTERNAL)
        }
    }
}

/// The pipeline's decision on `text` from the sender `facts` describe,
/// with each hit's incident decision folded against `open`. What
/// `hearth explain` prints; tests call it directly.
pub(crate) fn explain_text(
    rules: &RuleSet,
    replies: &ReplySettings,
    text: &str,
    facts: ReplyFacts,
    open: &SubjectIncidents,
    now: DateTime<Utc>,
) -> Decision {
    let matcher = CrisisMatcher::with_rules(Some(rules));
    let keywords = Keywords::with_additions(
        &replies.stop_words,
        &replies.start_words,
        &replies.help_words,
    );
    let row = InboundRow {
        id: 0,
        sms: InboundSms {
            provider: "explain".into(),
            provider_message_id: "explain".into(),
            from: facts
                .member
                .as_ref()
                .map_or_else(|| SAMPLE_NUMBER.to_owned(), |m| m.phone.as_str().to_owned()),
            to: String::new(),
            body: text.to_owned(),
            keyword: None,
        },
        member_id: facts.member.as_ref().map(|m| m.id),
        received_at: now,
    };
    let setup = Setup {
        rules,
        keywords: &keywords,
        settings: replies,
    };
    let screened = Screened::new(&matcher, text);
    let mut decision = decide_row(&setup, &row, facts, &screened, now);
    for hit in &decision.effects.hits {
        let verdict = fold(hit, open, now).reason();
        if let Some(a) = decision
            .alerts
            .iter_mut()
            .find(|a| a.id == hit.alert && a.fired)
        {
            a.incident = Some(verdict);
        } else if decision.crisis.alert.as_deref() == Some(hit.alert.as_str()) {
            decision.crisis_incident = Some(verdict);
        }
    }
    decision
}

/// A number in the range reserved for fiction (555-01xx).
const SAMPLE_NUMBER: &str = "+15555550142";

fn made_up_facts(
    args: &ExplainArgs,
    rules: &RuleSet,
    now: DateTime<Utc>,
) -> Result<ReplyFacts, String> {
    if args.unknown_sender {
        return Ok(ReplyFacts::default());
    }
    let fields = member_fields(&args.member_attr, rules)?;
    let member = Member {
        id: 1,
        external_id: "explain".into(),
        first_name: fields.first_name,
        last_name: None,
        phone: Phone::parse(SAMPLE_NUMBER).map_err(|e| e.to_string())?,
        timezone: fields.timezone,
        language: fields.language,
        joined_on: (now - chrono::Duration::days(90)).date_naive(),
        status: MemberStatus::Active,
        groups: fields.groups,
        attributes: fields.attributes,
        consent: ConsentState {
            last: Some(consent_event(args.opted_out, now)),
        },
    };
    let survey = match &args.answering {
        None => None,
        Some(sq) => Some(open_survey(sq, args.reprompts, rules, now)?),
    };
    Ok(ReplyFacts {
        member: Some(member),
        contact: None,
        survey,
        history: Vec::new(),
        engagement: Default::default(),
        open_critical: None,
    })
}

/// The made-up member's fields from `--member-attr`.
struct MemberFields {
    timezone: String,
    groups: Vec<String>,
    first_name: String,
    language: String,
    attributes: serde_json::Map<String, serde_json::Value>,
}

/// `--member-attr KEY=VALUE`s over the defaults (the rules' first group
/// and its timezone, "Alex", English): `timezone`, `groups`, `first_name`
/// and `language` set those fields; any other key is a roster attribute
/// (JSON if it reads as a scalar, else a string).
fn member_fields(attrs: &[String], rules: &RuleSet) -> Result<MemberFields, String> {
    let mut f = MemberFields {
        timezone: rules
            .groups
            .values()
            .next()
            .map_or("UTC".to_owned(), |g| g.timezone.name().to_owned()),
        groups: rules.groups.keys().take(1).cloned().collect(),
        first_name: "Alex".to_owned(),
        language: "en".to_owned(),
        attributes: serde_json::Map::new(),
    };
    for kv in attrs {
        let Some((k, v)) = kv.split_once('=') else {
            return Err(format!(
                "--member-attr `{kv}` is not KEY=VALUE\n  hint: like --member-attr progress_level=2"
            ));
        };
        let (k, v) = (k.trim(), v.trim());
        match k {
            "timezone" => {
                crate::domain::parse_timezone(v)
                    .map_err(|e| format!("--member-attr timezone: {e}"))?;
                f.timezone = v.to_owned();
            }
            "groups" => {
                f.groups = v
                    .split(',')
                    .map(|g| g.trim().to_owned())
                    .filter(|g| !g.is_empty())
                    .collect()
            }
            "first_name" => f.first_name = v.to_owned(),
            "language" => f.language = v.to_owned(),
            _ => {
                let value = serde_json::from_str::<serde_json::Value>(v)
                    .ok()
                    .filter(|j| !j.is_object() && !j.is_array())
                    .unwrap_or_else(|| serde_json::Value::String(v.to_owned()));
                f.attributes.insert(k.to_owned(), value);
            }
        }
    }
    Ok(f)
}

/// The made-up member's last consent: granted at import, or revoked by
/// keyword with `--opted-out`.
fn consent_event(opted_out: bool, now: DateTime<Utc>) -> ConsentEvent {
    ConsentEvent {
        id: 1,
        action: if opted_out {
            ConsentAction::Revoked
        } else {
            ConsentAction::Granted
        },
        source: if opted_out {
            ConsentSource::Keyword
        } else {
            ConsentSource::Import
        },
        text: String::new(),
        actor: "explain".into(),
        at: now,
    }
}

fn open_survey(
    sq: &str,
    reprompts: u32,
    rules: &RuleSet,
    now: DateTime<Utc>,
) -> Result<OpenSurvey, String> {
    let Some((survey_id, question_id)) = sq.split_once('.') else {
        return Err(format!(
            "--answering `{sq}` is not SURVEY.QUESTION\n  hint: like --answering mood-checkin.mood"
        ));
    };
    let Some(survey) = rules.surveys.get(survey_id) else {
        let known: Vec<&str> = rules.surveys.keys().map(String::as_str).collect();
        return Err(format!(
            "--answering: no survey `{survey_id}` in the rules\n  hint: surveys are {}",
            if known.is_empty() {
                "none".to_owned()
            } else {
                known.join(", ")
            }
        ));
    };
    let Some(index) = survey.questions.iter().position(|q| q.id == question_id) else {
        let known: Vec<&str> = survey.questions.iter().map(|q| q.id.as_str()).collect();
        return Err(format!(
            "--answering: survey `{survey_id}` has no question `{question_id}`\n  hint: its questions are {}",
            known.join(", ")
        ));
    };
    Ok(OpenSurvey {
        run: SurveyRun {
            id: 1,
            member_id: 1,
            survey: survey_id.to_owned(),
            schedule: None,
            outbox_id: 1,
            question: index as u32,
            opened_at: now - chrono::Duration::minutes(10),
            expires_at: Some(now - chrono::Duration::minutes(10) + survey.expires_after.chrono()),
        },
        // Earlier questions' answers are not known here.
        answers: BTreeMap::new(),
        reprompts,
    })
}

fn open_incidents(
    specs: &[String],
    rules: &RuleSet,
    now: DateTime<Utc>,
) -> Result<SubjectIncidents, String> {
    let mut facts = SubjectIncidents::default();
    for (i, spec) in specs.iter().enumerate() {
        let (alert, severity) = match spec.split_once(':') {
            Some((a, s)) => (
                a.trim(),
                Some(Severity::parse(s.trim()).ok_or_else(|| {
                    format!(
                        "--open-incident `{spec}`: severity `{s}` is not info, warning or critical"
                    )
                })?),
            ),
            None => (spec.trim(), None),
        };
        let severity = match severity {
            Some(s) => s,
            None => rules
                .alerts
                .iter()
                .find(|a| a.id == alert)
                .map(|a| a.severity)
                .or_else(|| {
                    rules
                        .surveys
                        .values()
                        .flat_map(|s| &s.item_alerts)
                        .find(|a| a.id == alert)
                        .map(|a| a.severity)
                })
                .or_else(|| (alert == crate::domain::incident::BUILTIN_CRISIS_ALERT).then_some(Severity::Critical))
                .ok_or_else(|| format!("--open-incident: no alert `{alert}` in the rules\n  hint: give its severity too, like `{alert}:warning`"))?,
        };
        let id = i as i64 + 1;
        facts.open.push((id, alert.to_owned(), severity));
        facts
            .last_opened
            .push((alert.to_owned(), id, now - chrono::Duration::hours(1)));
    }
    Ok(facts)
}

fn write_text(out: &mut dyn Write, d: &Decision) -> std::io::Result<()> {
    writeln!(out, "normalised:  {}", d.normalised)?;
    writeln!(out, "words:       {}", d.words.join(" "))?;
    write_crisis(out, d)?;
    match (&d.compliance, &d.compliance_action) {
        (Some(k), action) => writeln!(
            out,
            "compliance:  {} — {}",
            format!("{k:?}").to_uppercase(),
            action.as_deref().unwrap_or("")
        )?,
        (None, _) => writeln!(out, "compliance:  none")?,
    }
    writeln!(
        out,
        "sender:      {}{}",
        d.sender.kind,
        if d.sender.opted_out {
            " (opted out)"
        } else {
            ""
        }
    )?;
    write_survey(out, d)?;
    write_alerts(out, d)?;
    if d.replies.is_empty() {
        writeln!(out, "replies:     none")?;
    }
    for r in &d.replies {
        writeln!(
            out,
            "reply:       {:<10} {} ({})",
            r.kind.as_str(),
            r.template.as_deref().unwrap_or("settings text"),
            r.purpose
        )?;
    }
    writeln!(out, "outcome:     {}", d.outcome)
}

/// The crisis line: the phrase, where it came from, the alert and what
/// the hit does to incidents.
fn write_crisis(out: &mut dyn Write, d: &Decision) -> std::io::Result<()> {
    let (Some(p), true) = (&d.crisis.phrase, d.crisis.matched) else {
        return writeln!(out, "crisis:      no match");
    };
    let from = match d.crisis.source {
        Some("rule") => "a rule keyword".to_owned(),
        _ => format!(
            "the built-in floor ({})",
            d.crisis
                .category
                .and_then(|c| serde_json::to_value(c).ok())
                .and_then(|v| v.as_str().map(str::to_owned))
                .unwrap_or_default()
        ),
    };
    writeln!(
        out,
        "crisis:      MATCHED `{p}` from {from}; incident under alert `{}`",
        d.crisis.alert.as_deref().unwrap_or("?")
    )?;
    if let Some(i) = &d.crisis_incident {
        writeln!(out, "             {i}")?;
    }
    Ok(())
}

/// The survey line: its state, question, answer, reason, next question
/// and score, as far as they go.
fn write_survey(out: &mut dyn Write, d: &Decision) -> std::io::Result<()> {
    let s = &d.survey;
    if s.state == "none" {
        return writeln!(out, "survey:      none open");
    }
    write!(
        out,
        "survey:      {} `{}`",
        s.state,
        s.survey.as_deref().unwrap_or("?")
    )?;
    if let Some(q) = &s.question {
        write!(out, " question `{q}`")?;
    }
    if let Some(a) = &s.answer {
        write!(out, ", answer {a}")?;
    }
    if let Some(r) = &s.reason {
        write!(out, " ({r})")?;
    }
    if let Some(n) = &s.next_question {
        write!(out, ", next `{n}`")?;
    }
    if let Some(sc) = &s.score {
        write!(out, ", score {sc}")?;
    }
    writeln!(out)
}

/// One line per alert considered, fired or not, and why.
fn write_alerts(out: &mut dyn Write, d: &Decision) -> std::io::Result<()> {
    if d.alerts.is_empty() {
        writeln!(out, "alerts:      none considered")?;
    }
    for a in &d.alerts {
        writeln!(
            out,
            "alert:       {:<24} {:<8} {} — {}{}",
            a.id,
            a.severity.as_str(),
            if a.fired { "FIRED" } else { "no" },
            a.reason,
            a.incident
                .as_ref()
                .map(|i| format!("; {i}"))
                .unwrap_or_default()
        )?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn explain_runs_the_crisis_matcher_once() {
        let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("rules");
        let rules = crate::config::load_dir(&dir).unwrap().rules.unwrap();
        let finds = || crate::pipeline::crisis::FINDS.with(std::cell::Cell::get);
        let before = finds();
        let d = explain_text(
            &rules,
            &ReplySettings::default(),
            "i want to die",
            ReplyFacts::default(),
            &SubjectIncidents::default(),
            Utc::now(),
        );
        assert!(d.crisis.matched);
        assert_eq!(finds() - before, 1);
    }
}
