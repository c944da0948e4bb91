//! `hearth incidents`: the incidents alerts opened, for staff to read and
//! act on.
//!
//! Members are named by external id, never by phone number or name; an
//! incident about an unknown sender shows `unknown sender`. Contacts are
//! named by id, never by number or address. `show` lists every piece of
//! evidence, oldest first, including the notes that the member could not
//! be texted; the escalation and its notices; and who acknowledged and
//! resolved it, how and when.
//!
//! `ack`, `resolve` and `escalate` act as `ACK 42` by text and the admin
//! API do ([`crate::escalate::act::act`]), by `cli:NAME`, writing
//! directly to the database; the notices they queue are delivered by the
//! daemon when it runs.

use std::path::Path;
use std::process::ExitCode;

use chrono::{DateTime, Utc};
use clap::{Subcommand, ValueEnum};

use super::staff::{block_on, fail, open};
use super::{EXIT_INVALID, Format, load_settings};
use crate::config;
use crate::domain::incident::{Incident, IncidentState};
use crate::escalate::act::{ActError, Acted, Action, Actor, act};
use crate::escalate::pinned::Pinned;
use crate::escalate::queries::{self, StateFilter};
use crate::settings::Settings;
use crate::store::Backend;
use crate::store::sqlite::OpenMode;
use crate::store::traits::escalation::{EscalationRow, Notice};

#[derive(Debug, Subcommand)]
pub enum IncidentsCommand {
    /// Incidents, newest first, with their state and escalation step.
    List {
        /// Only open ones (not acknowledged or resolved); the same as
        /// `--state open`.
        #[arg(long, conflicts_with = "state")]
        open: bool,
        /// Only those in this state (`unresolved`: open or acknowledged).
        #[arg(long, value_enum)]
        state: Option<StateArg>,
        /// Only this member's (external id).
        #[arg(long, value_name = "ID")]
        member: Option<String>,
        #[arg(long, default_value_t = 50)]
        limit: usize,
        #[arg(long, value_enum, default_value_t = Format::Text)]
        format: Format,
    },
    /// One incident with its evidence, escalation, notices, and who
    /// acknowledged and resolved it.
    Show {
        /// The incident's id.
        id: i64,
        #[arg(long, value_enum, default_value_t = Format::Text)]
        format: Format,
    },
    /// Acknowledge an incident: its escalation stops paging, and everyone
    /// already paged is told who has it. The notices are queued in the
    /// database; the daemon, if running, delivers them.
    Ack(ActArgs),
    /// Resolve an incident: its escalation stops for good. The daemon, if
    /// running, delivers any notices this queues.
    Resolve(ActArgs),
    /// Page the next step of an incident's escalation now (after an
    /// acknowledgement, this hands the incident back: open again). The
    /// daemon, if running, delivers the pages.
    Escalate(ActArgs),
}

#[derive(Debug, clap::Args)]
pub struct ActArgs {
    /// The incident's id.
    id: i64,
    /// Who acts, as recorded (`cli:NAME`); default: the global `--actor`,
    /// else $USER, else `unknown`.
    #[arg(long = "as", value_name = "NAME")]
    as_name: Option<String>,
}

#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum StateArg {
    Open,
    Acknowledged,
    Resolved,
    Unresolved,
}

impl From<StateArg> for StateFilter {
    fn from(s: StateArg) -> StateFilter {
        match s {
            StateArg::Open => StateFilter::Open,
            StateArg::Acknowledged => StateFilter::Acknowledged,
            StateArg::Resolved => StateFilter::Resolved,
            StateArg::Unresolved => StateFilter::Unresolved,
        }
    }
}

fn who(i: &Incident) -> String {
    match (&i.member_external_id, i.member_id) {
        (Some(ext), _) => ext.clone(),
        (None, Some(id)) => format!("#{id}"),
        (None, None) => "unknown sender".into(),
    }
}

fn when(t: DateTime<Utc>) -> String {
    t.to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
}

/// JSON for one incident: its fields (no subject, which may be a number),
/// who, by external id, and its escalation (null when none).
fn json(i: &Incident, escalation: Option<&EscalationRow>) -> serde_json::Value {
    let mut v = serde_json::to_value(i).unwrap_or(serde_json::Value::Null);
    if let Some(o) = v.as_object_mut() {
        o.insert("member".into(), who(i).into());
        o.insert(
            "escalation".into(),
            escalation
                .filter(|e| is_policy(e))
                .map(queries::escalation_json)
                .unwrap_or(serde_json::Value::Null),
        );
    }
    v
}

/// The step an escalation notifies next, as people read it: `step 2`,
/// `step 1 (round 2)`, `backup step`; `#N` (the position in the
/// sequence, 1-based) when there is no such step.
fn position(e: &EscalationRow) -> String {
    match queries::next_entry(e) {
        Some(x) if x.backup => "backup step".into(),
        Some(x) if x.round > 0 => {
            format!("step {} (round {})", Pinned::step_number(&x), x.round + 1)
        }
        Some(x) => format!("step {}", Pinned::step_number(&x)),
        None => format!("#{}", e.next_position + 1),
    }
}

/// Where an escalation stands, in a few words: `step 2 at …`, `paused`
/// (acknowledged), `exhausted`, `stopped before step 2` (resolved).
fn step(i: &Incident, e: Option<&EscalationRow>) -> String {
    let Some(e) = e.filter(|e| is_policy(e)) else {
        return "-".into();
    };
    if e.exhausted {
        return "exhausted".into();
    }
    match (i.state, e.next_due) {
        (IncidentState::Resolved, _) => {
            format!("stopped before {}", position(e))
        }
        (_, Some(due)) => format!("{} at {}", position(e), when(due)),
        (IncidentState::Acknowledged, None) => {
            let lapse = e
                .lapse_due
                .map(|t| format!(" until {}", when(t)))
                .unwrap_or_default();
            format!("paused{lapse}")
        }
        (_, None) => position(e),
    }
}

/// Whether an escalation row follows a policy (an incident without one
/// gets an empty row when someone acts on it).
fn is_policy(e: &EscalationRow) -> bool {
    !e.policy.is_empty()
}

/// Who acknowledged and who resolved an incident, how and when, as
/// `(what, by, how, at)`, for what has happened.
fn handled(i: &Incident) -> Vec<(&'static str, &str, &str, String)> {
    [
        (
            "acknowledged",
            &i.acknowledged_by,
            &i.acknowledged_how,
            i.acknowledged_at,
        ),
        ("resolved", &i.resolved_by, &i.resolved_how, i.resolved_at),
    ]
    .into_iter()
    .filter_map(|(what, by, how, at)| {
        Some((
            what,
            by.as_deref()?,
            how.as_deref().unwrap_or("-"),
            at.map(when).unwrap_or_else(|| "-".into()),
        ))
    })
    .collect()
}

/// The escalations of `rows`: the unresolved ones in one read, the
/// resolved ones each by its own.
fn escalations(
    store: &impl Backend,
    rows: &[Incident],
) -> Result<Vec<Option<EscalationRow>>, ExitCode> {
    let mut open: std::collections::HashMap<i64, EscalationRow> =
        match block_on(store.open_escalations()) {
            Ok(all) => all.into_iter().map(|e| (e.incident_id, e)).collect(),
            Err(e) => return Err(fail(e)),
        };
    let mut out = Vec::with_capacity(rows.len());
    for i in rows {
        out.push(match open.remove(&i.id) {
            Some(e) => Some(e),
            None if i.state == IncidentState::Resolved => {
                block_on(store.escalation(i.id)).map_err(fail)?
            }
            None => None,
        });
    }
    Ok(out)
}

pub(crate) fn incidents(
    settings_path: &Path,
    global_actor: Option<&str>,
    cmd: IncidentsCommand,
) -> ExitCode {
    let settings = tri!(load_settings(settings_path));
    let store = tri!(open(&settings, OpenMode::Existing));
    match cmd {
        IncidentsCommand::List {
            open,
            state,
            member,
            limit,
            format,
        } => list(&store, open, state, member, limit, format),
        IncidentsCommand::Show { id, format } => show(&store, id, format),
        IncidentsCommand::Ack(a) => act_on(&store, &settings, Action::Ack, a, global_actor),
        IncidentsCommand::Resolve(a) => act_on(&store, &settings, Action::Resolve, a, global_actor),
        IncidentsCommand::Escalate(a) => {
            act_on(&store, &settings, Action::Escalate, a, global_actor)
        }
    }
}

fn list(
    store: &impl Backend,
    open: bool,
    state: Option<StateArg>,
    member: Option<String>,
    limit: usize,
    format: Format,
) -> ExitCode {
    if let Some(ext) = &member {
        match block_on(store.member(ext)) {
            Ok(Some(_)) => {}
            Ok(None) => {
                eprintln!(
                    "error: --member: no member `{ext}`\n  hint: `hearth members list` shows members by external id"
                );
                return ExitCode::from(EXIT_INVALID);
            }
            Err(e) => return fail(e),
        }
    }
    let state = if open {
        Some(StateFilter::Open)
    } else {
        state.map(StateFilter::from)
    };
    let rows = match block_on(queries::list_incidents(store, state, member, limit)) {
        Ok(r) => r,
        Err(e) => return fail(e),
    };
    let escalations = tri!(escalations(store, &rows));
    match format {
        Format::Json => {
            let all: Vec<_> = rows
                .iter()
                .zip(&escalations)
                .map(|(i, e)| json(i, e.as_ref()))
                .collect();
            println!("{}", serde_json::Value::Array(all));
        }
        Format::Text => {
            println!(
                "{:>6} {:<12} {:<9} {:<16} {:<20} {:<20} {:>8}  ESCALATION",
                "ID", "STATE", "SEVERITY", "MEMBER", "ALERT", "OPENED", "EVIDENCE"
            );
            for (i, e) in rows.iter().zip(&escalations) {
                println!(
                    "{:>6} {:<12} {:<9} {:<16} {:<20} {:<20} {:>8}  {}",
                    i.id,
                    i.state.as_str(),
                    i.severity.as_str(),
                    who(i),
                    i.alert,
                    when(i.opened_at),
                    i.evidence.len(),
                    step(i, e.as_ref()),
                );
            }
            println!(
                "{} incident{}",
                rows.len(),
                if rows.len() == 1 { "" } else { "s" }
            );
        }
    }
    ExitCode::SUCCESS
}

fn show(store: &impl Backend, id: i64, format: Format) -> ExitCode {
    let found = match block_on(store.incident(id)) {
        Ok(i) => i,
        Err(e) => return fail(e),
    };
    let Some(i) = found else {
        eprintln!(
            "error: no incident #{id}\n  hint: `hearth incidents list` shows incidents and their ids"
        );
        return ExitCode::from(EXIT_INVALID);
    };
    let escalation = match block_on(store.escalation(id)) {
        Ok(e) => e,
        Err(e) => return fail(e),
    };
    let notices: Vec<Notice> = match block_on(store.notices(id)) {
        Ok(n) => n,
        Err(e) => return fail(e),
    };
    match format {
        Format::Json => {
            let mut v = json(&i, escalation.as_ref());
            v["notices"] = notices.iter().map(queries::notice_json).collect();
            println!("{v}");
        }
        Format::Text => {
            print_incident(&i);
            print_escalation(&i, escalation.as_ref());
            print_notices(&notices);
        }
    }
    ExitCode::SUCCESS
}

/// `show`'s text: the incident, who handled it, and its evidence.
fn print_incident(i: &Incident) {
    println!("incident #{}", i.id);
    println!("  state:    {}", i.state.as_str());
    println!("  severity: {}", i.severity.as_str());
    println!("  alert:    {}", i.alert);
    println!("  member:   {}", who(i));
    if let Some(policy) = &i.escalate {
        println!("  escalate: {policy}");
    }
    println!("  opened:   {}", when(i.opened_at));
    println!("  updated:  {}", when(i.updated_at));
    for (what, by, how, at) in handled(i) {
        println!("  {what}: by {by} ({how}) at {at}");
    }
    println!("  evidence ({}):", i.evidence.len());
    for e in &i.evidence {
        let inbound = e
            .inbound_id
            .map(|n| format!(" text #{n}"))
            .unwrap_or_default();
        println!(
            "    {} {:<10} {}{}: {}",
            when(e.at),
            e.kind,
            e.alert,
            inbound,
            e.text
        );
    }
}

/// `show`'s text: where the escalation stands.
fn print_escalation(i: &Incident, escalation: Option<&EscalationRow>) {
    match escalation.filter(|e| is_policy(e)) {
        None => println!("  escalation: none"),
        Some(e) => {
            println!("  escalation:");
            println!("    policy:    {} (version {})", e.policy, e.version);
            println!("    step:      {}", step(i, Some(e)));
            println!(
                "    next due:  {}",
                e.next_due.map(when).unwrap_or_else(|| "-".into())
            );
            println!("    rounds:    {}", e.seq);
            println!("    exhausted: {}", if e.exhausted { "yes" } else { "no" });
        }
    }
}

/// `show`'s text: the notices, by contact id and channel (never the
/// address).
fn print_notices(notices: &[Notice]) {
    println!("  notices ({}):", notices.len());
    if !notices.is_empty() {
        println!(
            "    {:<20} {:<8} {:<13} {:<10} {:>8}  ERROR",
            "CONTACT", "CHANNEL", "PURPOSE", "STATE", "ATTEMPTS"
        );
    }
    for n in notices {
        let channel = serde_json::to_value(n.channel)
            .ok()
            .and_then(|v| v.as_str().map(str::to_owned))
            .unwrap_or_default();
        println!(
            "    {:<20} {:<8} {:<13} {:<10} {:>8}  {}",
            n.contact,
            channel,
            n.purpose.as_str(),
            n.state,
            n.attempts,
            n.last_error.as_deref().unwrap_or("-")
        );
    }
}

/// `--as`, else the global `--actor`, else `$USER`, else `unknown`.
fn cli_actor(as_name: Option<String>, global: Option<&str>) -> Actor {
    let name = as_name
        .filter(|s| !s.trim().is_empty())
        .or_else(|| global.map(str::to_owned))
        .or_else(|| std::env::var("USER").ok().filter(|s| !s.is_empty()))
        .unwrap_or_else(|| "unknown".to_owned());
    Actor::Cli(name)
}

fn act_on(
    store: &impl Backend,
    settings: &Settings,
    action: Action,
    args: ActArgs,
    global: Option<&str>,
) -> ExitCode {
    let actor = cli_actor(args.as_name, global);
    let id = args.id;
    // The rules pin the incident's policy if the daemon's timer has not
    // started its escalation yet. Invalid rules do not block an action on
    // an escalation already running; `act` refuses only one that would
    // need them.
    let rules = match config::load_dir(&settings.rules_dir) {
        Ok(c) => c.rules,
        Err(_) => None,
    };
    match block_on(act(
        store,
        rules.as_ref(),
        Some(id),
        action,
        &actor,
        Utc::now(),
    )) {
        Ok(acted) => {
            println!("{}", acted_line(action, &actor, &acted));
            ExitCode::SUCCESS
        }
        Err(ActError::Store(e)) => fail(e),
        Err(ActError::NotFound(_)) => {
            eprintln!(
                "error: no incident #{id}\n  hint: `hearth incidents list --state unresolved` shows incidents and their ids"
            );
            ExitCode::from(EXIT_INVALID)
        }
        Err(ActError::Resolved(_)) => {
            eprintln!(
                "error: incident #{id} is resolved; it takes no more actions\n  hint: `hearth incidents show {id}` shows who resolved it"
            );
            ExitCode::from(EXIT_INVALID)
        }
        Err(ActError::NotStarted(_)) => {
            eprintln!(
                "error: incident #{id}'s escalation has not started yet, and the rules in {} cannot be read to pin its policy; nothing was changed\n  hint: fix the rules (`hearth check {}`) or start the daemon, which starts the escalation, then try again",
                settings.rules_dir.display(),
                settings.rules_dir.display()
            );
            ExitCode::from(EXIT_INVALID)
        }
        Err(other) => {
            eprintln!("error: incident #{id}: {other}");
            ExitCode::from(EXIT_INVALID)
        }
    }
}

/// The one line an action prints: `incident #42 acknowledged by cli:alex;
/// 3 contacts will be told`, `incident #42 was already acknowledged (by
/// contact:dana)`.
fn acted_line(action: Action, actor: &Actor, acted: &Acted) -> String {
    match acted {
        Acted::Done { incident, told, .. } => {
            let verb = match action {
                Action::Ack => "acknowledged",
                Action::Resolve => "resolved",
                Action::Escalate => "escalated",
            };
            let tell = match (action, told) {
                (Action::Escalate, _) => "; the next step is due now".to_owned(),
                (_, 0) => String::new(),
                (_, 1) => "; 1 contact will be told".to_owned(),
                (_, n) => format!("; {n} contacts will be told"),
            };
            format!("incident #{incident} {verb} by {}{tell}", actor.label())
        }
        Acted::Already {
            incident,
            state,
            by,
            ..
        } => {
            let by = by
                .as_deref()
                .map(|b| format!(" (by {b})"))
                .unwrap_or_default();
            format!("incident #{incident} was already {}{by}", state.as_str())
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_action_line_names_the_incident_the_actor_and_how_many_are_told() {
        let actor = Actor::Cli("alex".into());
        let done = |told| Acted::Done {
            incident: 42,
            state: IncidentState::Acknowledged,
            told,
        };
        assert_eq!(
            acted_line(Action::Ack, &actor, &done(3)),
            "incident #42 acknowledged by cli:alex; 3 contacts will be told"
        );
        assert_eq!(
            acted_line(Action::Ack, &actor, &done(1)),
            "incident #42 acknowledged by cli:alex; 1 contact will be told"
        );
        assert_eq!(
            acted_line(Action::Resolve, &actor, &done(0)),
            "incident #42 resolved by cli:alex"
        );
        assert_eq!(
            acted_line(Action::Escalate, &actor, &done(0)),
            "incident #42 escalated by cli:alex; the next step is due now"
        );
        assert_eq!(
            acted_line(
                Action::Ack,
                &actor,
                &Acted::Already {
                    incident: 42,
                    state: IncidentState::Acknowledged,
                    by: Some("contact:dana".into()),
                }
            ),
            "incident #42 was already acknowledged (by contact:dana)"
        );
    }

    #[test]
    fn the_actor_is_as_then_the_global_actor_then_user_then_unknown() {
        assert_eq!(
            cli_actor(Some("alex".into()), Some("root")),
            Actor::Cli("alex".into())
        );
        assert_eq!(cli_actor(None, Some("root")), Actor::Cli("root".into()));
        assert_eq!(
            cli_actor(Some("  ".into()), Some("root")),
            Actor::Cli("root".into())
        );
    }
}
