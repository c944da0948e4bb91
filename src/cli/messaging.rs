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
use crate::engine::template;
use crate::store::StoreError;
use crate::store::outbox::{InboundSms, Kind, NewMessage, OutState, Received};

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
}

#[derive(Debug, Subcommand)]
pub enum OutboxCommand {
    /// The newest messages, optionally in one state.
    List {
        #[arg(long)]
        state: Option<String>,
        #[arg(long, default_value_t = 50)]
        limit: usize,
    },
    /// Queue a failed, undelivered, expired or suppressed message again.
    Retry { id: i64 },
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

pub fn send(settings_path: &Path, actor: &str, args: SendArgs) -> ExitCode {
    let settings = tri!(load_settings(settings_path));
    let rules = tri!(rules(&settings));
    if !rules.templates.contains_key(&args.template) {
        eprintln!("error: unknown template `{}`", args.template);
        if let Some(h) = crate::config::diag::did_you_mean(
            &args.template,
            rules.templates.keys().map(String::as_str),
        ) {
            eprintln!("  hint: {h}");
        }
        return ExitCode::from(EXIT_INVALID);
    }
    let store = tri!(open(&settings));
    let member = match block_on(store.member(&args.member)) {
        Ok(Some(m)) => m,
        Ok(None) => return fail(StoreError::NotFound(format!("member `{}`", args.member))),
        Err(e) => return fail(e),
    };
    let group_id = args
        .group
        .clone()
        .or_else(|| member.groups.first().cloned());
    let group = match &group_id {
        Some(g) => match rules.groups.get(g) {
            Some(g) => Some(g),
            None => {
                eprintln!("error: unknown group `{g}`");
                if let Some(h) =
                    crate::text::did_you_mean(g, rules.groups.keys().map(String::as_str))
                {
                    eprintln!("  hint: {h}");
                }
                return ExitCode::from(EXIT_INVALID);
            }
        },
        None => None,
    };
    // A group's reminder to someone outside it would tell them when a
    // group they are not in meets.
    if let Some(g) = group
        && !member.groups.contains(&g.id)
    {
        eprintln!(
            "error: member {} is not in group `{}`",
            member.external_id, g.id
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
        return ExitCode::from(EXIT_INVALID);
    }
    let now = chrono::Utc::now();
    // The next session that has not started, from the one calendar.
    let session = group.and_then(|g| crate::schedule::sessions(g, now).next());
    let ctx =
        template::member_context(&member.view(now.date_naive()), group, session.as_ref(), now);
    let body = match rules.renderer.render(&args.template, &ctx) {
        Ok(b) => b,
        Err(e) => {
            eprintln!(
                "error: template `{}` cannot be rendered for member {}: {}",
                args.template, member.external_id, e.message
            );
            if let Some(h) = e.hint {
                eprintln!("  hint: {h}");
            }
            return ExitCode::from(EXIT_INVALID);
        }
    };
    let message = NewMessage {
        idempotency_key: format!(
            "staff:{actor}:{}:{}",
            member.id,
            now.timestamp_nanos_opt().unwrap_or_default()
        ),
        member_id: Some(member.id),
        to: None,
        body,
        kind: Kind::Staff,
        not_before: now,
        expires_at: None,
    };
    match block_on(store.enqueue(message)) {
        Ok(q) => {
            if let Err(e) = block_on(store.audit(
                actor,
                "sms.queue",
                Some(&format!("member:{}", member.id)),
                serde_json::json!({ "outbox": q.id(), "template": args.template }),
            )) {
                return fail(e);
            }
            println!(
                "queued message #{} for member {}; the running daemon sends it if they have consent and it is not quiet hours for them",
                q.id(),
                member.external_id
            );
            if !member.consent.granted() {
                eprintln!(
                    "warning: member {} has no current consent: the message will be suppressed",
                    member.external_id
                );
            }
            ExitCode::SUCCESS
        }
        Err(e) => fail(e),
    }
}

pub fn outbox(settings_path: &Path, actor: &str, cmd: OutboxCommand) -> ExitCode {
    let settings = tri!(load_settings(settings_path));
    let store = tri!(open(&settings));
    match cmd {
        OutboxCommand::List { state, limit } => {
            let state = match state.as_deref().map(|s| OutState::parse(s).ok_or(s)) {
                None => None,
                Some(Ok(s)) => Some(s),
                Some(Err(s)) => {
                    eprintln!(
                        "error: unknown state `{s}`\n  hint: queued, sending, sent, delivered, undelivered, failed, expired, suppressed"
                    );
                    return ExitCode::from(EXIT_INVALID);
                }
            };
            let rows = match block_on(store.outbox(state, limit)) {
                Ok(r) => r,
                Err(e) => return fail(e),
            };
            println!(
                "{:>6} {:<11} {:<10} {:>7} {:>4} {:>3} {:<24} REASON",
                "ID", "STATE", "KIND", "MEMBER", "TRY", "SEG", "NEXT/UPDATED"
            );
            for r in &rows {
                let when = if r.state == OutState::Queued {
                    &r.next_attempt_at
                } else {
                    &r.updated_at
                };
                println!(
                    "{:>6} {:<11} {:<10} {:>7} {:>4} {:>3} {:<24} {}",
                    r.id,
                    r.state.as_str(),
                    r.kind.as_str(),
                    r.member_id
                        .map(|m| m.to_string())
                        .unwrap_or_else(|| "-".into()),
                    r.attempts,
                    r.segments,
                    when,
                    r.reason.as_deref().unwrap_or("")
                );
            }
            println!(
                "{} message{}",
                rows.len(),
                if rows.len() == 1 { "" } else { "s" }
            );
            ExitCode::SUCCESS
        }
        OutboxCommand::Retry { id } => match block_on(store.outbox_retry(id, actor)) {
            Ok(()) => {
                println!("message #{id} queued again");
                ExitCode::SUCCESS
            }
            Err(e) => fail(e),
        },
        OutboxCommand::Cancel { id } => match block_on(store.outbox_cancel(id, actor)) {
            Ok(()) => {
                println!("message #{id} cancelled");
                ExitCode::SUCCESS
            }
            Err(e) => fail(e),
        },
    }
}

pub fn inject(settings_path: &Path, args: InjectArgs) -> ExitCode {
    let settings = tri!(load_settings(settings_path));
    if let Err(e) = args.from.parse::<Phone>() {
        eprintln!("error: --from: {e}");
        return ExitCode::from(EXIT_INVALID);
    }
    let store = tri!(open(&settings));
    let sms = InboundSms {
        provider: "inject".into(),
        provider_message_id: format!(
            "inject-{}",
            chrono::Utc::now().timestamp_nanos_opt().unwrap_or_default()
        ),
        from: args.from,
        to: args.to,
        body: args.text,
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
