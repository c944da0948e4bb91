//! The commands clinic staff use every day: members ([`members`]),
//! segments, audit, the database check; and what every staff command
//! shares: opening the store, loading the rules, exit codes.
//!
//! Phone numbers are masked (`+1••••••0100`) unless `--reveal` is given,
//! and every reveal is written to the audit trail.

use std::path::Path;
use std::process::ExitCode;

use clap::Subcommand;

mod members;

pub use members::{MembersCommand, members};

use super::{EXIT_INTERNAL, EXIT_INVALID, load_settings};
use crate::config::{self, RuleSet};
use crate::domain::member::{AuditVerified as Verified, MemberStatus};
use crate::rules::segment;
use crate::settings::Settings;
use crate::store::prelude::*;
use crate::store::sqlite::{OpenMode, SqliteStore};
use crate::store::{Backend, StoreError};

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
///
/// This is where the CLI chooses its backend, and the only place: the
/// commands see an `impl Backend`, so each command body compiles against
/// the store traits alone (what a second backend must provide).
pub(super) fn open(settings: &Settings, mode: OpenMode) -> Result<impl Backend, ExitCode> {
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

pub(crate) fn segments(settings_path: &Path, cmd: SegmentsCommand) -> ExitCode {
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
            if let Some(h) = config::diag::did_you_mean(&id, names) {
                eprintln!("  hint: {h}");
            }
            ExitCode::from(EXIT_INVALID)
        }
    }
}

fn show_selected(
    settings: &Settings,
    rules: &RuleSet,
    seg: Option<&crate::rules::Segment>,
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

pub(crate) fn audit(settings_path: &Path, _actor: &str, cmd: AuditCommand) -> ExitCode {
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
pub(crate) fn db(settings_path: &Path, cmd: DbCommand) -> ExitCode {
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
