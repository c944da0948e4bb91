//! `hearth incidents`: the incidents alerts opened, for staff to read.
//!
//! Members are named by external id, never by phone number or name; an
//! incident about an unknown sender shows `unknown sender`. `show` lists
//! every piece of evidence, oldest first, including the notes that the
//! member could not be texted.

use std::path::Path;
use std::process::ExitCode;

use clap::Subcommand;

use super::staff::{block_on, fail, open};
use super::{EXIT_INVALID, Format, load_settings};
use crate::domain::incident::Incident;
use crate::store::OpenMode;
use crate::store::traits::IncidentStore;
use crate::store::traits::incident::IncidentFilter;

#[derive(Debug, Subcommand)]
pub enum IncidentsCommand {
    /// Incidents, newest first.
    List {
        /// Only open ones (not acknowledged or resolved).
        #[arg(long)]
        open: bool,
        /// Only this member's (external id).
        #[arg(long, value_name = "ID")]
        member: Option<String>,
        #[arg(long, default_value_t = 50)]
        limit: usize,
        #[arg(long, value_enum, default_value_t = Format::Text)]
        format: Format,
    },
    /// One incident with its evidence.
    Show {
        /// The incident's id.
        id: i64,
        #[arg(long, value_enum, default_value_t = Format::Text)]
        format: Format,
    },
}

fn who(i: &Incident) -> String {
    match (&i.member_external_id, i.member_id) {
        (Some(ext), _) => ext.clone(),
        (None, Some(id)) => format!("#{id}"),
        (None, None) => "unknown sender".into(),
    }
}

fn when(t: chrono::DateTime<chrono::Utc>) -> String {
    t.to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
}

/// JSON for one incident: its fields (no subject, which may be a number)
/// and who, by external id.
fn json(i: &Incident) -> serde_json::Value {
    let mut v = serde_json::to_value(i).unwrap_or(serde_json::Value::Null);
    if let Some(o) = v.as_object_mut() {
        o.insert("member".into(), who(i).into());
    }
    v
}

pub fn incidents(settings_path: &Path, cmd: IncidentsCommand) -> ExitCode {
    let settings = tri!(load_settings(settings_path));
    let store = tri!(open(&settings, OpenMode::Existing));
    match cmd {
        IncidentsCommand::List {
            open,
            member,
            limit,
            format,
        } => {
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
            let filter = IncidentFilter {
                open_only: open,
                unresolved: false,
                member,
                limit: Some(limit),
            };
            let rows = match block_on(store.incidents(&filter)) {
                Ok(r) => r,
                Err(e) => return fail(e),
            };
            match format {
                Format::Json => {
                    let all: Vec<_> = rows.iter().map(json).collect();
                    println!("{}", serde_json::Value::Array(all));
                }
                Format::Text => {
                    println!(
                        "{:>6} {:<12} {:<9} {:<16} {:<20} {:<20} {:>8}",
                        "ID", "STATE", "SEVERITY", "MEMBER", "ALERT", "OPENED", "EVIDENCE"
                    );
                    for i in &rows {
                        println!(
                            "{:>6} {:<12} {:<9} {:<16} {:<20} {:<20} {:>8}",
                            i.id,
                            i.state.as_str(),
                            i.severity.as_str(),
                            who(i),
                            i.alert,
                            when(i.opened_at),
                            i.evidence.len()
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
        IncidentsCommand::Show { id, format } => {
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
            match format {
                Format::Json => println!("{}", json(&i)),
                Format::Text => {
                    println!("incident #{}", i.id);
                    println!("  state:    {}", i.state.as_str());
                    println!("  severity: {}", i.severity.as_str());
                    println!("  alert:    {}", i.alert);
                    println!("  member:   {}", who(&i));
                    if let Some(policy) = &i.escalate {
                        println!("  escalate: {policy}");
                    }
                    println!("  opened:   {}", when(i.opened_at));
                    println!("  updated:  {}", when(i.updated_at));
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
            }
            ExitCode::SUCCESS
        }
    }
}
