//! The commands clinic staff use every day: members, segments, audit.
//!
//! Phone numbers are masked (`+1••••••0100`) unless `--reveal` is given,
//! and every reveal is written to the audit trail.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use clap::Subcommand;

use super::{EXIT_INTERNAL, EXIT_INVALID, load_settings};
use crate::config::{self, RuleSet};
use crate::domain::member::{
    AuditVerified as Verified, ConsentAction, ConsentSource, Member, MemberStatus, Recorded,
};
use crate::engine::segment;
use crate::settings::Settings;
use crate::store::StoreError;
use crate::store::import::{self, ImportOptions};
use crate::store::sqlite::{OpenMode, SqliteStore};
use crate::store::traits::{AuditStore, ConsentStore, MemberStore};

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

#[derive(Debug, Subcommand)]
pub enum SegmentsCommand {
    /// How many members, and which, a segment selects.
    Show { id: String },
}

#[derive(Debug, Subcommand)]
pub enum DbCommand {
    /// Full integrity check (every page and index) and the whole audit
    /// chain; exit 1 naming each problem.
    Check,
}

#[derive(Debug, Subcommand)]
pub enum AuditCommand {
    /// Walk the hash chain; exit 1 naming the first broken entry.
    Verify,
    /// The newest entries.
    Tail {
        #[arg(short = 'n', long, default_value_t = 20)]
        lines: usize,
    },
}

/// Opens the store for a command, saying once if a key was generated.
/// Only a command that may create the database passes `Create`; the rest
/// refuse a missing one, naming its path.
pub(super) fn open(settings: &Settings, mode: OpenMode) -> Result<SqliteStore, ExitCode> {
    match SqliteStore::open_as(&settings.database, mode) {
        Ok((store, report)) => {
            if let Some(key) = &report.generated_key {
                eprintln!(
                    "note: generated a new database key at {} (mode 0600); back it up: without it the database cannot be read",
                    key.display()
                );
            }
            Ok(store)
        }
        Err(e) => {
            eprintln!("error: {e}");
            Err(ExitCode::from(store_exit(&e)))
        }
    }
}

/// The exit code for a store error, the same in `run` and every staff
/// command: a fault in the database or its key, or bad input, is 1;
/// anything else (busy past the wait, disk full, a backend failure) is 2.
pub(crate) fn store_exit(e: &StoreError) -> u8 {
    if e.is_open_fault() || matches!(e, StoreError::Invalid(_) | StoreError::NotFound(_)) {
        EXIT_INVALID
    } else {
        EXIT_INTERNAL
    }
}

/// The live rules, for group ids and segments. Invalid rules are an error:
/// staff would otherwise act on rules the daemon refuses.
pub(super) fn rules(settings: &Settings) -> Result<RuleSet, ExitCode> {
    rules_in(&settings.rules_dir)
}

/// The rules of `dir`, valid or exit 1 (every error printed).
pub(super) fn rules_in(dir: &Path) -> Result<RuleSet, ExitCode> {
    match config::load_dir(dir) {
        Ok(c) => match c.rules {
            Some(r) => Ok(r),
            None => {
                for d in c.diagnostics.iter().filter(|d| d.is_error()) {
                    eprintln!("{d}");
                }
                eprintln!(
                    "error: rules directory {} is invalid; fix it first (`hearth check {}`)",
                    dir.display(),
                    dir.display()
                );
                Err(ExitCode::from(EXIT_INVALID))
            }
        },
        Err(e) => {
            eprintln!("error: cannot read rules directory {}: {e}", dir.display());
            Err(ExitCode::from(EXIT_INVALID))
        }
    }
}

pub(super) fn block_on<F: std::future::Future>(f: F) -> F::Output {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("a current-thread runtime")
        .block_on(f)
}

pub(super) fn fail(e: StoreError) -> ExitCode {
    eprintln!("error: {e}");
    ExitCode::from(store_exit(&e))
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
            let rules = tri!(rules(&settings));
            let groups: BTreeSet<String> = rules.groups.keys().cloned().collect();
            let input = match std::fs::File::open(&file) {
                Ok(f) => f,
                Err(e) => {
                    eprintln!("error: cannot read {}: {e}", file.display());
                    return ExitCode::from(EXIT_INVALID);
                }
            };
            let today = chrono::Utc::now().date_naive();
            let (rows, invalid) =
                match import::parse(std::io::BufReader::new(input), &groups, today) {
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
            let store = tri!(open(&settings, OpenMode::Create));
            let opts = ImportOptions {
                skip_invalid,
                consent_text,
                actor: actor.to_owned(),
                source_name: import::source_name(&file),
            };
            let report = match block_on(store.import_members(rows, invalid, opts)) {
                Ok(r) => r,
                Err(e) => return fail(e),
            };
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
                "imported {} rows: {} new, {} updated, {} unchanged, {} skipped as invalid; consent: {} granted, {} revoked{}",
                report.rows,
                report.inserted,
                report.updated,
                report.unchanged,
                report.invalid.len(),
                report.consent_granted,
                report.consent_revoked,
                if report.consent_kept_opted_out > 0 {
                    format!(
                        ", {} kept opted out (they texted STOP)",
                        report.consent_kept_opted_out
                    )
                } else {
                    String::new()
                }
            );
            if report.invalid.is_empty() {
                ExitCode::SUCCESS
            } else {
                ExitCode::from(EXIT_INVALID)
            }
        }
        MembersCommand::List { group, reveal } => {
            let store = tri!(open(&settings, OpenMode::Existing));
            let members = match block_on(store.members(group.as_deref())) {
                Ok(m) => m,
                Err(e) => return fail(e),
            };
            if reveal {
                let ids: Vec<String> = members.iter().map(|m| m.external_id.clone()).collect();
                if let Err(e) = block_on(reveal_audit(&store, actor, "members list --reveal", ids))
                {
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
        MembersCommand::Show { id, reveal } => {
            let store = tri!(open(&settings, OpenMode::Existing));
            let m = match block_on(store.member(&id)) {
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
            let history = block_on(store.consent_history(&id)).unwrap_or_default();
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
        MembersCommand::Deactivate { id } => {
            let store = tri!(open(&settings, OpenMode::Existing));
            match block_on(store.deactivate(&id, actor)) {
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
        MembersCommand::Consent(c) => {
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
            let store = tri!(open(&settings, OpenMode::Existing));
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
                        "error: member {} opted out by text (STOP); only the member can opt back in\n  hint: ask them to text START",
                        args.id
                    );
                    ExitCode::from(EXIT_INVALID)
                }
                Err(e) => fail(e),
            }
        }
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
    store: &SqliteStore,
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

pub fn segments(settings_path: &Path, cmd: SegmentsCommand) -> ExitCode {
    let settings = tri!(load_settings(settings_path));
    let SegmentsCommand::Show { id } = cmd;
    let rules = tri!(rules(&settings));
    if segment::is_all(&id) {
        return show_selected(&settings, &rules, None);
    }
    match rules.segments.get(&id) {
        Some(seg) => show_selected(&settings, &rules, Some(seg)),
        None => {
            eprintln!("error: unknown segment `{id}`");
            let names: Vec<&str> = rules
                .segments
                .keys()
                .map(String::as_str)
                .chain(["all"])
                .collect();
            if let Some(h) = crate::text::did_you_mean(&id, names) {
                eprintln!("  hint: {h}");
            }
            ExitCode::from(EXIT_INVALID)
        }
    }
}

fn show_selected(
    settings: &Settings,
    rules: &RuleSet,
    seg: Option<&config::rules::Segment>,
) -> ExitCode {
    let store = tri!(open(settings, OpenMode::Existing));
    let members = match block_on(store.members(None)) {
        Ok(m) => m,
        Err(e) => return fail(e),
    };
    let today = chrono::Utc::now().date_naive();
    let mut selected = Vec::new();
    let mut failures = 0;
    for m in members.iter().filter(|m| m.status == MemberStatus::Active) {
        let ok = match seg {
            None => Ok(true),
            Some(seg) => segment::matches(seg, &m.view(today), &rules.sandbox),
        };
        match ok {
            Ok(true) => selected.push(m),
            Ok(false) => {}
            Err(e) => {
                failures += 1;
                eprintln!("warning: member {}: {e}", m.external_id);
            }
        }
    }
    let name = seg.map_or("all", |s| s.id.as_str());
    let with_consent = selected.iter().filter(|m| m.consent.granted()).count();
    println!(
        "segment {name}: {} active members ({with_consent} with consent)",
        selected.len()
    );
    for m in &selected {
        println!("{}", m.external_id);
    }
    if selected.is_empty() {
        eprintln!("warning: segment `{name}` matches nobody");
    }
    if failures > 0 {
        eprintln!(
            "warning: the segment's `when:` failed for {failures} members; they are left out"
        );
    }
    ExitCode::SUCCESS
}

pub fn audit(settings_path: &Path, _actor: &str, cmd: AuditCommand) -> ExitCode {
    let settings = tri!(load_settings(settings_path));
    let store = tri!(open(&settings, OpenMode::Existing));
    match cmd {
        AuditCommand::Verify => match block_on(store.audit_verify()) {
            Ok(Verified::Intact { entries, head }) => {
                println!("audit trail intact: {entries} entries, head {head}");
                ExitCode::SUCCESS
            }
            Ok(Verified::Broken {
                entry,
                reason,
                checked,
            }) => {
                println!(
                    "audit trail BROKEN at entry {entry}: {reason} ({checked} entries before it check out)"
                );
                ExitCode::from(EXIT_INVALID)
            }
            Err(e) => fail(e),
        },
        AuditCommand::Tail { lines } => match block_on(store.audit_tail(lines)) {
            Ok(entries) => {
                for e in entries {
                    println!(
                        "{:>6} {} {:<12} {:<16} {:<14} {}",
                        e.id,
                        e.at,
                        e.actor,
                        e.action,
                        e.subject.as_deref().unwrap_or("-"),
                        e.detail
                    );
                }
                ExitCode::SUCCESS
            }
            Err(e) => fail(e),
        },
    }
}

/// `hearth db check`: `integrity_check` and the whole audit chain.
pub fn db(settings_path: &Path, cmd: DbCommand) -> ExitCode {
    let settings = tri!(load_settings(settings_path));
    let DbCommand::Check = cmd;
    let store = tri!(open(&settings, OpenMode::Inspect));
    let path = settings.database.path.display();
    let problems = match block_on(store.integrity_check()) {
        Ok(p) => p,
        Err(e) => {
            println!("database {path}: integrity check failed: {e}");
            return ExitCode::from(EXIT_INVALID);
        }
    };
    let mut ok = problems.is_empty();
    if ok {
        println!("database {path}: integrity ok");
    } else {
        println!(
            "database {path}: {} integrity problem{}:",
            problems.len(),
            if problems.len() == 1 { "" } else { "s" }
        );
        for p in &problems {
            println!("  {p}");
        }
    }
    match block_on(store.audit_verify()) {
        Ok(Verified::Intact { entries, head }) => {
            println!("audit trail intact: {entries} entries, head {head}")
        }
        Ok(Verified::Broken {
            entry,
            reason,
            checked,
        }) => {
            ok = false;
            println!(
                "audit trail BROKEN at entry {entry}: {reason} ({checked} entries before it check out)"
            );
        }
        Err(e) => {
            ok = false;
            println!("audit trail cannot be read: {e}");
        }
    }
    if ok {
        ExitCode::SUCCESS
    } else {
        println!("  hint: restore the database from a backup; keep this copy for investigation");
        ExitCode::from(EXIT_INVALID)
    }
}
