//! # Hearth
//!
//! A daemon that keeps mental-health support groups connected between
//! sessions by text message, driven by a directory of YAML rules and Rhai
//! scripts that clinical informatics staff write.
//!
//! # Layout
//!
//! - [`cli`]: the `hearth` command line; every subcommand calls into here.
//! - [`daemon`]: build the app, spawn subsystems, signals, systemd, shutdown.
//! - [`settings`]: `hearth.yaml` and `HEARTH_*` overrides; secret references.
//! - [`config`]: the rules directory — parse, compile, validate, reload, watch.
//! - [`engine`]: the compiled rule types, the Rhai sandbox, message
//!   templates, segments, SMS length (depends on `domain`, never on `config`).
//! - [`dispatch`]: the outbox worker, the last gate, the SMS gateways.
//! - [`intake`]: the HTTP server: provider webhooks, status, the admin API.
//! - [`escalate`]: incidents' escalation policies pinned, their timers in
//!   the database, pages by SMS, email and signed webhooks, ACK/RESOLVE/ESC.
//! - [`pipeline`]: the reply pipeline: the queue of stored inbound texts,
//!   crisis first, compliance keywords, surveys, alerts, incidents.
//! - [`store`]: traits per aggregate (members, consent, audit, outbox,
//!   inbound) and today's backend, encrypted SQLite under `store::sqlite`.
//! - [`schedule`]: cron in IANA timezones and the one session calendar.
//! - [`domain`]: values that parse rather than validate (durations, phones,
//!   timezones, addresses) and the records every layer shares (members,
//!   messages, idempotency keys); no I/O.
//! - [`telemetry`]: logging setup.
//! - [`text`]: `did_you_mean` and `sha256_hex`, a leaf every layer may use.

pub mod cli;
pub mod config;
pub mod daemon;
pub mod dispatch;
pub mod domain;
pub mod engine;
pub mod escalate;
pub mod intake;
pub mod pipeline;
pub mod schedule;
pub mod scheduler;
pub mod settings;
pub mod store;
pub mod telemetry;
pub mod text;

#[cfg(test)]
pub(crate) mod testing;
