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
use crate::store::traits::OutboxStore;
use crate::store::traits::outbox::{ListFilter, RetryFilter};

#[derive(Debug, clap::Args)]
pub struct SendArgs {
    /// The member's external id.
    #[arg(long)]
    member: String,
    /// The template to render for them.
    #[arg(long)]
    template: String,
    /// The group whose name and next session the template may use;
    /// defaults to the member's first group.
    #[arg(long)]
    group: Option<String>,
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
                return ExitCode::from(EXIT_INVALID);
            }
        },
        None => None,
    };
    let now = chrono::Utc::now();
    let session = group.and_then(|g| {
        let mut t = now.with_timezone(&g.timezone);
        // The next session that is not cancelled.
        for _ in 0..60 {
            t = g.sessions.next_after(&t)?;
            if !g.cancelled.contains(&t.date_naive()) {
                return Some(t);
            }
        }
        None
    });
    let ctx = template::member_context(&member.view(now.date_naive()), group, session);
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
        )
        .into(),
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

pub fn outbox(settings_path: &Path, actor: &str, cmd: OutboxCommand) -> ExitCode {
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
            let store = tri!(open(&settings));
            let rows = match block_on(store.list_messages(ListFilter { state, kind, limit })) {
                Ok(r) => r,
                Err(e) => return fail(e),
            };
            println!(
                "{:>6} {:<11} {:<10} {:<12} {:>4} {:>3} {:<24} REASON",
                "ID", "STATE", "KIND", "MEMBER", "TRY", "SEG", "NEXT/UPDATED"
            );
            for r in &rows {
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
        OutboxCommand::Retry {
            ids,
            state,
            kind,
            since,
        } => {
            let state = tri!(choice(
                "--state",
                state.as_deref(),
                OutState::parse,
                &OutState::names()
            ));
            if let Some(s) = state
                && !s.retryable()
            {
                eprintln!(
                    "error: --state {s}: {s} messages are never queued again\n  hint: retry failed, undelivered, expired or suppressed messages"
                );
                return ExitCode::from(EXIT_INVALID);
            }
            let kind = tri!(choice("--kind", kind.as_deref(), Kind::parse, &kinds()));
            let since = match since.as_deref().map(str::parse::<crate::domain::Duration>) {
                None => None,
                Some(Ok(d)) => Some(chrono::Utc::now() - d.chrono()),
                Some(Err(e)) => {
                    eprintln!("error: --since: {e}");
                    return ExitCode::from(EXIT_INVALID);
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
                return ExitCode::from(EXIT_INVALID);
            }
            let store = tri!(open(&settings));
            match block_on(store.retry(filter, actor)) {
                Ok(n) => {
                    println!("{n} message{} queued again", if n == 1 { "" } else { "s" });
                    ExitCode::SUCCESS
                }
                Err(e) => fail(e),
            }
        }
        OutboxCommand::Cancel { id } => {
            let store = tri!(open(&settings));
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
