//! `hearth members`: import a roster, list and show members, deactivate
//! one, record consent. Phone numbers are masked unless `--reveal` is
//! given, and every reveal is audited.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use clap::Subcommand;

use super::super::{EXIT_INVALID, load_settings};
use super::{block_on, fail, open, rules};
use crate::domain::member::{ConsentAction, ConsentSource, Member, Recorded};
use crate::settings::Settings;
use crate::store::Backend;
use crate::store::StoreError;
use crate::store::import::{self, ImportOptions, ImportReport, KeptRevoked};
use crate::store::prelude::*;
use crate::store::sqlite::OpenMode;

#[derive(Debug, Subcommand)]
pub enum MembersCommand {
    /// Import a roster CSV (upsert by external id; all or nothing).
    Import {
        file: PathBuf,
        /// Apply the valid rows even when some rows are invalid.
        #[arg(long)]
        skip_invalid: bool,
        /// The exact consent text members agreed to (needed when the
        /// roster's `consent` column grants consent).
        #[arg(long)]
        consent_text: Option<String>,
        /// Validate and report without changing anything.
        #[arg(long)]
        dry_run: bool,
    },
    /// List members (phones masked).
    List {
        #[arg(long)]
        group: Option<String>,
        /// Show full phone numbers (audited).
        #[arg(long)]
        reveal: bool,
    },
    /// Show one member by external id (phone masked).
    Show {
        id: String,
        /// Show the full phone number (audited).
        #[arg(long)]
        reveal: bool,
    },
    /// Mark a member inactive: no more messages.
    Deactivate { id: String },
    /// Record consent given or withdrawn.
    #[command(subcommand)]
    Consent(ConsentCommand),
}

#[derive(Debug, Subcommand)]
pub enum ConsentCommand {
    Grant(ConsentArgs),
    Revoke(ConsentArgs),
}

#[derive(Debug, clap::Args)]
pub struct ConsentArgs {
    /// The member's external id.
    id: String,
    /// Where the consent came from: staff, import or keyword.
    #[arg(long, default_value = "staff")]
    source: String,
    /// The exact consent text shown to (or words sent by) the member.
    #[arg(long)]
    text: String,
}

pub fn members(settings_path: &Path, actor: &str, cmd: MembersCommand) -> ExitCode {
    let settings = tri!(load_settings(settings_path));
    match cmd {
        MembersCommand::Import {
            file,
            skip_invalid,
            consent_text,
            dry_run,
        } => {
            let options = ImportOptions {
                skip_invalid,
                consent_text,
                actor: actor.to_owned(),
                source_name: import::source_name(&file),
            };
            import_roster(&settings, &file, options, dry_run)
        }
        MembersCommand::List { group, reveal } => list(&settings, actor, group, reveal),
        MembersCommand::Show { id, reveal } => show(&settings, actor, &id, reveal),
        MembersCommand::Deactivate { id } => deactivate(&settings, actor, &id),
        MembersCommand::Consent(c) => consent(&settings, actor, c),
    }
}

/// `members import`: the roster checked against the rules' groups, then
/// applied all or nothing (or the valid rows with `--skip-invalid`);
/// `--dry-run` only reports.
fn import_roster(settings: &Settings, file: &Path, opts: ImportOptions, dry_run: bool) -> ExitCode {
    let rules = tri!(rules(settings));
    let groups: BTreeSet<String> = rules.groups.keys().cloned().collect();
    let input = match std::fs::File::open(file) {
        Ok(f) => f,
        Err(e) => {
            eprintln!("error: cannot read {}: {e}", file.display());
            return ExitCode::from(EXIT_INVALID);
        }
    };
    let today = chrono::Utc::now().date_naive();
    let (rows, invalid) = match import::parse(std::io::BufReader::new(input), &groups, today) {
        Ok(parsed) => parsed,
        Err(e) => {
            eprintln!("{}: {e}", file.display());
            return ExitCode::from(EXIT_INVALID);
        }
    };
    if dry_run {
        for e in &invalid {
            println!("{}: {e}", file.display());
        }
        println!(
            "dry run: {} valid rows, {} invalid; nothing changed",
            rows.len(),
            invalid.len()
        );
        return if invalid.is_empty() {
            ExitCode::SUCCESS
        } else {
            ExitCode::from(EXIT_INVALID)
        };
    }
    let store = tri!(open(settings, OpenMode::Create));
    match block_on(store.import_members(rows, invalid, opts)) {
        Ok(report) => report_import(file, &report),
        Err(e) => fail(e),
    }
}

/// What an import did, row errors first.
fn report_import(file: &Path, report: &ImportReport) -> ExitCode {
    for e in &report.invalid {
        println!("{}: {e}", file.display());
    }
    if !report.applied {
        println!(
            "not imported: {} of {} rows are invalid; nothing changed\n  hint: fix them, or pass --skip-invalid to import the valid rows",
            report.invalid.len(),
            report.rows
        );
        return ExitCode::from(EXIT_INVALID);
    }
    println!(
        "imported {} rows: {} new, {} updated, {} unchanged, {} skipped as invalid; consent: {} granted, {} revoked",
        report.rows,
        report.inserted,
        report.updated,
        report.unchanged,
        report.invalid.len(),
        report.consent_granted,
        report.consent_revoked,
    );
    if let Some(line) = kept_revoked_line(&report.kept_revoked) {
        println!("{line}");
    }
    if report.invalid.is_empty() {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(EXIT_INVALID)
    }
}

/// The rows an import left revoked, and how each kind is granted again;
/// `None` when there are none.
fn kept_revoked_line(kept: &KeptRevoked) -> Option<String> {
    let total = kept.total();
    if total == 0 {
        return None;
    }
    let mut why = Vec::new();
    for (n, by) in [
        (kept.stop, "by STOP"),
        (kept.provider, "by the provider"),
        (kept.staff, "by staff"),
    ] {
        if n > 0 {
            why.push(format!("{n} {by}"));
        }
    }
    let mut hints = Vec::new();
    if kept.stop + kept.provider > 0 {
        hints.push(
            "a member who opted out by text or through the provider opts back in by texting START",
        );
    }
    if kept.staff > 0 {
        hints.push("record new consent with `hearth members consent grant ID --text \"…\"`");
    }
    Some(format!(
        "{total} {} consent yes but the member revoked consent ({}); left revoked\n  hint: {}",
        if total == 1 { "row says" } else { "rows say" },
        why.join(", "),
        hints.join("; ")
    ))
}

/// `members list`: one line each, phones masked unless revealed.
fn list(settings: &Settings, actor: &str, group: Option<String>, reveal: bool) -> ExitCode {
    let store = tri!(open(settings, OpenMode::Existing));
    let members = match block_on(store.members(group.as_deref())) {
        Ok(m) => m,
        Err(e) => return fail(e),
    };
    if reveal {
        let ids: Vec<String> = members.iter().map(|m| m.external_id.clone()).collect();
        if let Err(e) = block_on(reveal_audit(&store, actor, "members list --reveal", ids)) {
            return fail(e);
        }
    }
    println!(
        "{:<14} {:<14} {:<16} {:<16} {:<20} {:<9} {:<9} GROUPS",
        "EXTERNAL_ID", "FIRST", "LAST", "PHONE", "TIMEZONE", "STATUS", "CONSENT"
    );
    for m in &members {
        println!(
            "{:<14} {:<14} {:<16} {:<16} {:<20} {:<9} {:<9} {}",
            m.external_id,
            m.first_name,
            m.last_name.as_deref().unwrap_or(""),
            phone(m, reveal),
            m.timezone,
            m.status.as_str(),
            if m.consent.granted() { "yes" } else { "no" },
            m.groups.join(",")
        );
    }
    println!(
        "{} member{}",
        members.len(),
        if members.len() == 1 { "" } else { "s" }
    );
    ExitCode::SUCCESS
}

/// `members show`: every field and the consent history.
fn show(settings: &Settings, actor: &str, id: &str, reveal: bool) -> ExitCode {
    let store = tri!(open(settings, OpenMode::Existing));
    let m = match block_on(store.member(id)) {
        Ok(Some(m)) => m,
        Ok(None) => return fail(StoreError::NotFound(format!("member `{id}`"))),
        Err(e) => return fail(e),
    };
    if reveal
        && let Err(e) = block_on(reveal_audit(
            &store,
            actor,
            "members show --reveal",
            vec![m.external_id.clone()],
        ))
    {
        return fail(e);
    }
    let history = block_on(store.consent_history(id)).unwrap_or_default();
    println!("external id   {}", m.external_id);
    println!("internal id   {}", m.id);
    println!(
        "name          {} {}",
        m.first_name,
        m.last_name.as_deref().unwrap_or("")
    );
    println!("phone         {}", phone(&m, reveal));
    println!("timezone      {}", m.timezone);
    println!("language      {}", m.language);
    println!("joined        {}", m.joined_on);
    println!("status        {}", m.status.as_str());
    println!("groups        {}", m.groups.join(", "));
    println!(
        "attributes    {}",
        serde_json::Value::Object(m.attributes.clone())
    );
    println!("consent       {}", m.consent);
    for e in history {
        println!(
            "  {} {:?} via {:?} by {}: \"{}\"",
            e.at, e.action, e.source, e.actor, e.text
        );
    }
    ExitCode::SUCCESS
}

fn deactivate(settings: &Settings, actor: &str, id: &str) -> ExitCode {
    let store = tri!(open(settings, OpenMode::Existing));
    match block_on(store.deactivate(id, actor)) {
        Ok(true) => {
            println!("member {id} is now inactive");
            ExitCode::SUCCESS
        }
        Ok(false) => {
            println!("member {id} was already inactive");
            ExitCode::SUCCESS
        }
        Err(e) => fail(e),
    }
}

/// `members consent grant|revoke`: staff record a revocation (a request
/// by phone, in person) or new consent with its exact words; staff may not
/// opt back in a member who texted STOP.
fn consent(settings: &Settings, actor: &str, c: ConsentCommand) -> ExitCode {
    let (action, args) = match c {
        ConsentCommand::Grant(a) => (ConsentAction::Granted, a),
        ConsentCommand::Revoke(a) => (ConsentAction::Revoked, a),
    };
    let source = match ConsentSource::parse(&args.source) {
        Ok(s) => s,
        Err(e) => {
            eprintln!("error: {e}");
            return ExitCode::from(EXIT_INVALID);
        }
    };
    if action == ConsentAction::Granted && source == ConsentSource::Keyword {
        eprintln!(
            "error: only the member's own text (START) is a keyword grant\n  hint: record the consent they gave you with `--source staff` (the default) and its exact words in --text"
        );
        return ExitCode::from(EXIT_INVALID);
    }
    let store = tri!(open(settings, OpenMode::Existing));
    match block_on(store.record_consent(&args.id, action, source, &args.text, actor)) {
        Ok(Recorded::Changed) => {
            println!(
                "consent {} for member {}",
                if action == ConsentAction::Granted {
                    "granted"
                } else {
                    "revoked"
                },
                args.id
            );
            ExitCode::SUCCESS
        }
        Ok(Recorded::AlreadySo) => {
            println!(
                "consent for member {} already stood that way; nothing recorded",
                args.id
            );
            ExitCode::SUCCESS
        }
        Ok(Recorded::RefusedAfterOptOut) => {
            eprintln!(
                "error: member {} opted out by text (STOP, or through the provider); only the member can opt back in\n  hint: ask them to text START",
                args.id
            );
            ExitCode::from(EXIT_INVALID)
        }
        Ok(Recorded::RefusedAfterRevocation) => {
            eprintln!(
                "error: staff revoked consent for member {}; a roster import never grants it again\n  hint: record the new consent with `hearth members consent grant {} --text \"…\"`",
                args.id, args.id
            );
            ExitCode::from(EXIT_INVALID)
        }
        Err(e) => fail(e),
    }
}

fn phone(m: &Member, reveal: bool) -> String {
    if reveal {
        m.phone.to_string()
    } else {
        m.phone.masked()
    }
}

async fn reveal_audit(
    store: &impl Backend,
    actor: &str,
    command: &str,
    ids: Vec<String>,
) -> Result<i64, StoreError> {
    store
        .audit(
            actor,
            "phi.reveal",
            None,
            serde_json::json!({ "command": command, "members": ids, "fields": ["phone"] }),
        )
        .await
}
