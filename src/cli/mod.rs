//! The `hearth` command line.
//!
//! Exit codes: 0 ok; 1 invalid input (rules, settings) or a database
//! fault (missing, empty, damaged, wrong key, in use by another daemon),
//! the same in `run` and every staff command; 2 usage or internal error
//! (clap's own usage errors exit 2 as well).

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use clap::{Parser, Subcommand, ValueEnum};
use tokio_util::sync::CancellationToken;

use crate::config::{self, Compiled};
use crate::daemon::{App, BuildError};
use crate::settings::{LogFormat, Settings};

/// `Ok` value, or return the exit code.
macro_rules! tri {
    ($e:expr) => {
        match $e {
            Ok(v) => v,
            Err(code) => return code,
        }
    };
}

mod explain;
mod incidents;
mod messaging;
mod preview;
mod staff;

/// Hearth: text messaging for support groups between sessions.
#[derive(Debug, Parser)]
#[command(name = "hearth", version)]
pub struct Args {
    /// The settings file (database, rules directory, provider).
    #[arg(
        long,
        global = true,
        env = "HEARTH_SETTINGS",
        default_value = "/etc/hearth/hearth.yaml"
    )]
    pub(crate) settings: PathBuf,
    /// Who is acting, for the audit trail; defaults to $SUDO_USER or $USER.
    #[arg(long, global = true)]
    pub(crate) actor: Option<String>,
    #[command(subcommand)]
    pub(crate) command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run the daemon.
    Run {
        /// Log format; overrides the settings file.
        #[arg(long, value_enum)]
        log_format: Option<Format>,
    },
    /// Validate a rules directory without running it; print every problem.
    Check {
        /// The rules directory.
        dir: PathBuf,
        #[arg(long, value_enum, default_value_t = Format::Text)]
        format: Format,
    },
    /// Members: import the roster, list, show, deactivate, record consent.
    #[command(subcommand)]
    Members(staff::MembersCommand),
    /// Segments: who the live rules' segments select.
    #[command(subcommand)]
    Segments(staff::SegmentsCommand),
    /// The audit trail: verify its hash chain, show its newest entries.
    #[command(subcommand)]
    Audit(staff::AuditCommand),
    /// The database itself: a full integrity check.
    #[command(subcommand)]
    Db(staff::DbCommand),
    /// Queue a message to one member through the same last gate as
    /// every other send (consent, quiet hours).
    Send(messaging::SendArgs),
    /// The outbox: list messages, retry a failed one, cancel a queued one.
    #[command(subcommand)]
    Outbox(messaging::OutboxCommand),
    /// Feed a text into the inbound path as if a member had sent it.
    Inject(messaging::InjectArgs),
    /// The schedules' upcoming fires: when, for whom, what (a masked sample).
    Preview(preview::PreviewArgs),
    /// What the reply pipeline's first stages (normalising, the crisis
    /// check, STOP/START/HELP) make of one text; no database.
    Explain(explain::ExplainArgs),
    /// Incidents alerts opened: list them, show one with its evidence and
    /// escalation; acknowledge, resolve or escalate one.
    #[command(subcommand)]
    Incidents(incidents::IncidentsCommand),
}

#[derive(Debug, Clone, Copy, ValueEnum, PartialEq, Eq)]
pub enum Format {
    Text,
    Json,
}

/// Invalid input: exit 1.
pub(crate) const EXIT_INVALID: u8 = 1;
/// Usage or internal error: exit 2.
pub(crate) const EXIT_INTERNAL: u8 = 2;

pub fn run(args: Args) -> ExitCode {
    let actor = args.actor.clone().unwrap_or_else(default_actor);
    if !matches!(args.command, Command::Run { .. }) {
        // `run` picks its format from the settings; the others log as text.
        crate::telemetry::init(LogFormat::Text, "warn");
    }
    match args.command {
        Command::Check { dir, format } => {
            let options = tri!(check_options(&args.settings));
            check_with(&dir, format, &options, &mut std::io::stdout().lock())
        }
        Command::Run { log_format } => run_daemon(&args.settings, log_format),
        Command::Members(cmd) => staff::members(&args.settings, &actor, cmd),
        Command::Segments(cmd) => staff::segments(&args.settings, cmd),
        Command::Audit(cmd) => staff::audit(&args.settings, &actor, cmd),
        Command::Db(cmd) => staff::db(&args.settings, cmd),
        Command::Send(a) => messaging::send(&args.settings, &actor, a),
        Command::Outbox(cmd) => messaging::outbox(&args.settings, &actor, cmd),
        Command::Inject(a) => messaging::inject(&args.settings, a),
        Command::Preview(a) => preview::preview(&args.settings, a),
        Command::Explain(a) => explain::explain(&args.settings, a),
        Command::Incidents(cmd) => incidents::incidents(&args.settings, args.actor.as_deref(), cmd),
    }
}

/// `$SUDO_USER`, then `$USER`, then `cli`.
fn default_actor() -> String {
    ["SUDO_USER", "USER"]
        .iter()
        .find_map(|v| std::env::var(v).ok().filter(|s| !s.is_empty()))
        .unwrap_or_else(|| "cli".to_owned())
}

/// Loads the settings file for a command, reporting failure as exit 1.
fn load_settings(path: &Path) -> Result<Settings, ExitCode> {
    Settings::load(path, std::env::vars()).map_err(|e| {
        eprintln!("error: {e}");
        if matches!(&e, crate::settings::SettingsError::Read { source, .. } if source.kind() == std::io::ErrorKind::NotFound) {
            eprintln!("  hint: pass --settings FILE (or set HEARTH_SETTINGS); to try Hearth, use --settings examples/clinic/hearth.yaml");
        }
        ExitCode::from(EXIT_INVALID)
    })
}

/// The settings file `--settings` names by default.
const DEFAULT_SETTINGS: &str = "/etc/hearth/hearth.yaml";

/// What `check` judges the rules against: the settings' send window when
/// settings are given (`--settings`, `HEARTH_SETTINGS`) or the default
/// file exists; 08:00–21:00 otherwise. Given settings that cannot be
/// loaded are an error (exit 1).
/// The settings, unless none were asked for (the default path, unset
/// `HEARTH_SETTINGS`) and the default file does not exist.
fn optional_settings(settings: &Path) -> Result<Option<Settings>, ExitCode> {
    let implicit =
        settings == Path::new(DEFAULT_SETTINGS) && std::env::var_os("HEARTH_SETTINGS").is_none();
    if implicit && !settings.exists() {
        return Ok(None);
    }
    load_settings(settings).map(Some)
}

fn check_options(settings: &Path) -> Result<config::CompileOptions, ExitCode> {
    let Some(s) = optional_settings(settings)? else {
        return Ok(config::CompileOptions::default());
    };
    Ok(config::CompileOptions {
        send_window: s.dispatch.send_window,
    })
}

/// `hearth check DIR` with the default options: prints every diagnostic,
/// then a summary line.
pub fn check(dir: &Path, format: Format, out: &mut dyn Write) -> ExitCode {
    check_with(dir, format, &config::CompileOptions::default(), out)
}

/// `hearth check DIR [--settings FILE]`: prints every diagnostic, then a
/// summary line. Exit 0 valid, 1 invalid, 2 unreadable.
pub(crate) fn check_with(
    dir: &Path,
    format: Format,
    options: &config::CompileOptions,
    out: &mut dyn Write,
) -> ExitCode {
    let compiled = match config::load_dir_with(dir, options) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("error: cannot read rules directory {}: {e}", dir.display());
            return ExitCode::from(EXIT_INTERNAL);
        }
    };
    let written = match format {
        Format::Text => write_text(&compiled, out),
        Format::Json => write_json(&compiled, out),
    };
    if let Err(e) = written {
        eprintln!("error: cannot write output: {e}");
        return ExitCode::from(EXIT_INTERNAL);
    }
    if compiled.errors() > 0 {
        ExitCode::from(EXIT_INVALID)
    } else {
        ExitCode::SUCCESS
    }
}

fn plural(n: usize, word: &str) -> String {
    format!("{n} {word}{}", if n == 1 { "" } else { "s" })
}

fn write_text(c: &Compiled, out: &mut dyn Write) -> std::io::Result<()> {
    for d in &c.diagnostics {
        writeln!(out, "{d}")?;
    }
    let problems = format!(
        "{}, {}",
        plural(c.errors(), "error"),
        plural(c.warnings(), "warning")
    );
    match &c.rules {
        Some(rules) => {
            let counts: Vec<String> = rules
                .counts()
                .into_iter()
                .filter(|(_, n)| *n > 0)
                .map(|(kind, n)| {
                    if n == 1 {
                        format!("1 {}", kind.trim_end_matches('s'))
                    } else {
                        format!("{n} {kind}")
                    }
                })
                .collect();
            writeln!(
                out,
                "ok: {} ({}); {problems}",
                plural(c.files.len(), "file"),
                if counts.is_empty() {
                    "no rules".to_owned()
                } else {
                    counts.join(", ")
                }
            )
        }
        None => writeln!(
            out,
            "invalid: {}; {problems}",
            plural(c.files.len(), "file")
        ),
    }
}

fn write_json(c: &Compiled, out: &mut dyn Write) -> std::io::Result<()> {
    let counts: serde_json::Map<String, serde_json::Value> = c
        .rules
        .as_ref()
        .map(|r| {
            r.counts()
                .into_iter()
                .map(|(k, n)| (k.to_owned(), n.into()))
                .collect()
        })
        .unwrap_or_default();
    let doc = serde_json::json!({
        "ok": c.rules.is_some(),
        "errors": c.errors(),
        "warnings": c.warnings(),
        "diagnostics": c.diagnostics,
        "files": c.files,
        "counts": counts,
    });
    serde_json::to_writer_pretty(&mut *out, &doc)?;
    writeln!(out)
}

fn run_daemon(settings_path: &Path, log_format: Option<Format>) -> ExitCode {
    let settings = match load_settings(settings_path) {
        Ok(s) => s,
        Err(code) => return code,
    };
    let format = match log_format {
        Some(Format::Json) => LogFormat::Json,
        Some(Format::Text) => LogFormat::Text,
        None => settings.log_format,
    };
    crate::telemetry::init(format, "info");

    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(r) => r,
        Err(e) => {
            eprintln!("error: cannot start the async runtime: {e}");
            return ExitCode::from(EXIT_INTERNAL);
        }
    };
    let app = match runtime.block_on(App::build(settings)) {
        Ok(app) => app,
        Err(e) => {
            if let BuildError::Rules(crate::config::reload::StartupError::Invalid {
                errors, ..
            }) = &e
            {
                for d in errors {
                    eprintln!("{d}");
                }
            }
            eprintln!("error: {e}");
            tracing::error!("cannot start: {e}");
            // A store fault exits as it does in every staff command.
            return ExitCode::from(match &e {
                BuildError::Store(e) => staff::store_exit(e),
                _ => EXIT_INVALID,
            });
        }
    };
    match runtime.block_on(app.run_until_stopped(CancellationToken::new())) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            tracing::error!(error.cause_chain = ?e, "hearth stopped with an error");
            ExitCode::from(EXIT_INTERNAL)
        }
    }
}
