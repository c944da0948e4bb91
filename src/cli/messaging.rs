//! Staff messaging commands: `send`, `outbox`, `inject`.
//!
//! None of them calls a provider: `send` puts a message in the outbox and
//! the running daemon's dispatcher sends it through the same last gate as
//! everything else; `inject` stores a text on the same path a provider
//! webhook uses.

use std::path::Path;
use std::process::ExitCode;

use clap::Subcommand;

use super::staff::{block_on, fail, open, rules};
use super::{EXIT_INVALID, load_settings};
use crate::domain::Phone;
use crate::domain::member::Member;
use crate::domain::message::IdempotencyKey;
use crate::domain::message::{
    Enqueued, InboundSms, Kind, NewMessage, OutState, OutboxMessage, Received,
};
use crate::rules::template;
use crate::rules::{Group, RuleSet};
use crate::store::StoreError;
use crate::store::sqlite::OpenMode;
use crate::store::traits::outbox::{ListFilter, RetryFilter};
use crate::store::traits::{InboundStore, MemberStore, OutboxStore};

#[derive(Debug, clap::Args)]
pub struct SendArgs {
    /// The member's external id.
    #[arg(long)]
    member: String,
    /// The template to render for them.
    #[arg(long)]
    template: String,
    /// The group whose name and next session the template may use: one
    /// of the member's groups (another is refused); defaults to the
    /// member's first group. The session is the group's next one that has
    /// not started, cancelled dates skipped; `session.when` names its day
    /// (`today`, `tomorrow`, `on Thursday`).
    #[arg(long)]
    group: Option<String>,
    /// A key that makes a retry safe: a second send with the same key
    /// queues nothing and says so (exit 0).
    #[arg(long, value_name = "KEY")]
    idempotency_key: Option<String>,
}

#[derive(Debug, Subcommand)]
pub enum OutboxCommand {
    /// The newest messages, optionally of one state and kind.
    List {
        #[arg(long)]
        state: Option<String>,
        #[arg(long)]
        kind: Option<String>,
        #[arg(long, default_value_t = 50)]
        limit: usize,
    },
    /// Queue failed, undelivered, expired or suppressed messages again:
    /// by id, or by a filter (`--state failed --since 2h`, `--kind`).
    /// Sent and delivered messages are never queued again.
    Retry {
        /// Message ids (with a filter, only those that match it).
        ids: Vec<i64>,
        /// Only messages in this state (failed, undelivered, expired, suppressed).
        #[arg(long)]
        state: Option<String>,
        /// Only messages of this kind.
        #[arg(long)]
        kind: Option<String>,
        /// Only messages that reached their state within this long (`2h`, `1d`).
        #[arg(long)]
        since: Option<String>,
    },
    /// Stop a queued message from being sent.
    Cancel { id: i64 },
}

#[derive(Debug, clap::Args)]
pub struct InjectArgs {
    /// The sender's number (E.164).
    #[arg(long)]
    from: String,
    /// The number it was sent to.
    #[arg(long, default_value = "+10000000000")]
    to: String,
    /// The text.
    text: String,
}

pub(crate) fn send(settings_path: &Path, actor: &str, args: SendArgs) -> ExitCode {
    let settings = tri!(load_settings(settings_path));
    let rules = tri!(rules(&settings));
    tri!(known_template(&rules, &args.template));
    let store = tri!(open(&settings, OpenMode::Existing));
    let member = match block_on(store.member(&args.member)) {
        Ok(Some(m)) => m,
        Ok(None) => return fail(StoreError::NotFound(format!("member `{}`", args.member))),
        Err(e) => return fail(e),
    };
    let group = tri!(members_group(&rules, &member, args.group.clone()));
    let now = chrono::Utc::now();
    let body = tri!(render_for(&rules, &args.template, &member, group, now));
    // Without a key every send is new; with one, a retry finds the first.
    let idempotency_key = match IdempotencyKey::staff(args.idempotency_key.as_deref()) {
        Ok(k) => k,
        Err(e) => {
            eprintln!(
                "error: --idempotency-key: {e}\n  hint: pass a key unique to this send, e.g. a ticket or job id"
            );
            return ExitCode::from(EXIT_INVALID);
        }
    };
    let message = NewMessage {
        idempotency_key,
        member_id: Some(member.id),
        to: None,
        body,
        kind: Kind::Staff,
        not_before: now,
        expires_at: None,
        plan: None,
        suppressed: None,
    };
    // The message and its audit entry are one transaction: a send that
    // fails has queued nothing, so a retry cannot send twice.
    let queued = block_on(store.enqueue_audited(
        message,
        actor,
        "sms.queue",
        serde_json::json!({ "template": args.template }),
    ));
    match queued {
        Ok(q) => report_queued(q, &member, args.idempotency_key.as_deref()),
        Err(e) => fail(e),
    }
}

/// The template is in the rules, or exit 1 with the nearest name.
fn known_template(rules: &RuleSet, name: &str) -> Result<(), ExitCode> {
    if rules.templates.contains_key(name) {
        return Ok(());
    }
    eprintln!("error: unknown template `{name}`");
    if let Some(h) =
        crate::config::diag::did_you_mean(name, rules.templates.keys().map(String::as_str))
    {
        eprintln!("  hint: {h}");
    }
    Err(ExitCode::from(EXIT_INVALID))
}

/// The group a send speaks of: `--group`, else the member's first; one
/// the rules know and the member is in (a group's reminder to someone
/// outside it would tell them when a group they are not in meets).
fn members_group<'r>(
    rules: &'r RuleSet,
    member: &Member,
    asked: Option<String>,
) -> Result<Option<&'r Group>, ExitCode> {
    let Some(g) = asked.or_else(|| member.groups.first().cloned()) else {
        return Ok(None);
    };
    let Some(group) = rules.groups.get(&g) else {
        eprintln!("error: unknown group `{g}`");
        if let Some(h) = crate::text::did_you_mean(&g, rules.groups.keys().map(String::as_str)) {
            eprintln!("  hint: {h}");
        }
        return Err(ExitCode::from(EXIT_INVALID));
    };
    if member.groups.contains(&group.id) {
        return Ok(Some(group));
    }
    eprintln!(
        "error: member {} is not in group `{}`",
        member.external_id, group.id
    );
    if member.groups.is_empty() {
        eprintln!("  hint: member {} is in no group", member.external_id);
    } else {
        eprintln!(
            "  hint: member {} is in {}",
            member.external_id,
            member
                .groups
                .iter()
                .map(|g| format!("`{g}`"))
                .collect::<Vec<_>>()
                .join(", ")
        );
    }
    Err(ExitCode::from(EXIT_INVALID))
}

/// The template rendered for the member, with the group's next session
/// that has not started (from the one calendar); exit 1 naming why not.
fn render_for(
    rules: &RuleSet,
    template_id: &str,
    member: &Member,
    group: Option<&Group>,
    now: chrono::DateTime<chrono::Utc>,
) -> Result<String, ExitCode> {
    let session = group.and_then(|g| crate::schedule::sessions(g, now).next());
    let ctx =
        template::member_context(&member.view(now.date_naive()), group, session.as_ref(), now);
    rules.renderer.render(template_id, &ctx).map_err(|e| {
        eprintln!(
            "error: template `{}` cannot be rendered for member {}: {}",
            template_id, member.external_id, e.message
        );
        if let Some(h) = e.hint {
            eprintln!("  hint: {h}");
        }
        ExitCode::from(EXIT_INVALID)
    })
}

/// What `send` says of the message it queued (or found queued).
fn report_queued(queued: Enqueued, member: &Member, key: Option<&str>) -> ExitCode {
    match queued {
        Enqueued::New(id) => {
            println!(
                "queued message #{id} for member {}; the running daemon sends it if they have consent and it is not quiet hours for them",
                member.external_id
            );
            if !member.consent.granted() {
                eprintln!(
                    "warning: member {} has no current consent: the message will be suppressed",
                    member.external_id
                );
            }
        }
        Enqueued::Duplicate(id) => {
            println!(
                "already queued as message #{id} under idempotency key `{}`; nothing new queued",
                key.unwrap_or_default()
            );
        }
    }
    ExitCode::SUCCESS
}

/// Parses `--state`/`--kind` values, naming the flag and the choices.
fn choice<T>(
    flag: &str,
    value: Option<&str>,
    parse: fn(&str) -> Option<T>,
    names: &str,
) -> Result<Option<T>, ExitCode> {
    match value {
        None => Ok(None),
        Some(v) => parse(v).map(Some).ok_or_else(|| {
            eprintln!("error: {flag}: unknown value `{v}`\n  hint: one of {names}");
            ExitCode::from(EXIT_INVALID)
        }),
    }
}

fn kinds() -> String {
    Kind::ALL.map(Kind::as_str).join(", ")
}

pub(crate) fn outbox(settings_path: &Path, actor: &str, cmd: OutboxCommand) -> ExitCode {
    let settings = tri!(load_settings(settings_path));
    match cmd {
        OutboxCommand::List { state, kind, limit } => {
            let state = tri!(choice(
                "--state",
                state.as_deref(),
                OutState::parse,
                &OutState::names()
            ));
            let kind = tri!(choice("--kind", kind.as_deref(), Kind::parse, &kinds()));
            let store = tri!(open(&settings, OpenMode::Existing));
            match block_on(store.list_messages(ListFilter { state, kind, limit })) {
                Ok(rows) => print_outbox(&rows),
                Err(e) => fail(e),
            }
        }
        OutboxCommand::Retry {
            ids,
            state,
            kind,
            since,
        } => {
            let filter = tri!(retry_filter(ids, state, kind, since));
            let store = tri!(open(&settings, OpenMode::Existing));
            match block_on(store.retry(filter, actor)) {
                Ok(n) => {
                    println!("{n} message{} queued again", if n == 1 { "" } else { "s" });
                    ExitCode::SUCCESS
                }
                Err(e) => fail(e),
            }
        }
        OutboxCommand::Cancel { id } => {
            let store = tri!(open(&settings, OpenMode::Existing));
            match block_on(store.cancel(id, actor)) {
                Ok(()) => {
                    println!("message #{id} cancelled");
                    ExitCode::SUCCESS
                }
                Err(e) => fail(e),
            }
        }
    }
}

/// `outbox list`'s table: members by external id, never a number.
fn print_outbox(rows: &[OutboxMessage]) -> ExitCode {
    println!(
        "{:>6} {:<11} {:<10} {:<12} {:>4} {:>3} {:<24} REASON",
        "ID", "STATE", "KIND", "MEMBER", "TRY", "SEG", "NEXT/UPDATED"
    );
    for r in rows {
        let when = if r.state == OutState::Queued {
            r.next_attempt_at
        } else {
            r.updated_at
        };
        // Members by external id, as everywhere; a number-only
        // message shows `-` (never the number).
        let member = match (&r.member_external_id, r.member_id) {
            (Some(ext), _) => ext.clone(),
            (None, Some(id)) => format!("#{id}"),
            (None, None) => "-".into(),
        };
        let mut reason = r.reason.clone().unwrap_or_default();
        if r.possibly_sent {
            reason = format!("[possibly sent] {reason}");
        }
        if let Some(plan) = &r.plan {
            reason = format!("[schedule {}] {reason}", plan.schedule);
        }
        println!(
            "{:>6} {:<11} {:<10} {:<12} {:>4} {:>3} {:<24} {}",
            r.id,
            r.state.as_str(),
            r.kind.as_str(),
            member,
            r.attempts,
            r.segments,
            when.to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
            reason.trim_end()
        );
    }
    println!(
        "{} message{}",
        rows.len(),
        if rows.len() == 1 { "" } else { "s" }
    );
    ExitCode::SUCCESS
}

/// `outbox retry`'s ids and flags as a filter: a retryable state, a known
/// kind, a duration; ids or a filter at least.
fn retry_filter(
    ids: Vec<i64>,
    state: Option<String>,
    kind: Option<String>,
    since: Option<String>,
) -> Result<RetryFilter, ExitCode> {
    let state = choice(
        "--state",
        state.as_deref(),
        OutState::parse,
        &OutState::names(),
    )?;
    if let Some(s) = state
        && !s.retryable()
    {
        eprintln!(
            "error: --state {s}: {s} messages are never queued again\n  hint: retry failed, undelivered, expired or suppressed messages"
        );
        return Err(ExitCode::from(EXIT_INVALID));
    }
    let kind = choice("--kind", kind.as_deref(), Kind::parse, &kinds())?;
    let since = match since.as_deref().map(str::parse::<crate::domain::Duration>) {
        None => None,
        Some(Ok(d)) => Some(chrono::Utc::now() - d.chrono()),
        Some(Err(e)) => {
            eprintln!("error: --since: {e}");
            return Err(ExitCode::from(EXIT_INVALID));
        }
    };
    let filter = RetryFilter {
        ids,
        state,
        kind,
        since,
    };
    if filter.is_empty() {
        eprintln!(
            "error: outbox retry needs message ids or a filter\n  hint: `hearth outbox retry 12 13`, or `hearth outbox retry --state failed --since 2h`"
        );
        return Err(ExitCode::from(EXIT_INVALID));
    }
    Ok(filter)
}

pub(crate) fn inject(settings_path: &Path, args: InjectArgs) -> ExitCode {
    let settings = tri!(load_settings(settings_path));
    if let Err(e) = args.from.parse::<Phone>() {
        eprintln!("error: --from: {e}");
        return ExitCode::from(EXIT_INVALID);
    }
    let store = tri!(open(&settings, OpenMode::Existing));
    let sms = InboundSms {
        provider: "inject".into(),
        provider_message_id: format!(
            "inject-{}",
            chrono::Utc::now().timestamp_nanos_opt().unwrap_or_default()
        ),
        from: args.from,
        to: args.to,
        body: args.text,
        keyword: None,
    };
    match block_on(store.record_inbound(sms)) {
        Ok(Received::New(id)) | Ok(Received::Duplicate(id)) => {
            println!(
                "stored inbound text #{id}; the running daemon hands it to the reply pipeline"
            );
            ExitCode::SUCCESS
        }
        Err(e) => fail(e),
    }
}
