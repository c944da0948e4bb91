//! # Hearth
//!
//! A daemon that keeps mental-health support groups connected between
//! sessions by text message, driven by a directory of YAML rules and Rhai
//! scripts that clinical informatics staff write.
//!
//! # Layout
//!
//! Five layers; a module imports only from its own layer or below, and
//! never in a circle (`tests/it/layers.rs` checks every `use`).
//!
//! 0. Values, no I/O:
//!    - [`domain`]: values that parse rather than validate (phones,
//!      durations, timezones, local time, cron patterns, sessions, SMS
//!      length, text folding) and the records every layer shares
//!      (members, messages, incidents), the clock, and the rules of record
//!      a store applies ([`domain::bookkeeping`]).
//!    - [`text`]: `did_you_mean`, `sha256_hex`, `same_secret`.
//! 1. Rules and settings:
//!    - [`settings`]: `hearth.yaml` and `HEARTH_*` overrides; secret
//!      references.
//!    - [`rules`]: the compiled rule set and its evaluation (Rhai sandbox,
//!      templates, segments).
//!    - [`schedule`]: the one session calendar and fire computation.
//!    - [`config`]: the rules directory: parse, compile, validate, reload,
//!      watch.
//! 2. [`store`]: traits per aggregate, one [`store::Backend`] bound, the
//!    roster parser, and today's backend, encrypted SQLite under
//!    `store::sqlite`.
//! 3. Subsystems, generic over `S: Backend`:
//!    - [`timers`]: everything that fires at a time (schedules, survey
//!      reminders and expiry, scheduled alerts).
//!    - [`dispatch`]: the outbox worker, the last gate, the SMS gateways.
//!    - [`pipeline`]: the reply pipeline: crisis first, compliance
//!      keywords, surveys, alerts, incidents.
//!    - [`escalate`]: incidents' escalation policies, pages by SMS, email
//!      and signed webhooks, ACK/RESOLVE/ESC.
//! 4. Edges:
//!    - [`intake`]: the HTTP server: provider webhooks, status, the admin
//!      API.
//!    - [`cli`]: the `hearth` command line; every subcommand calls into
//!      here.
//!    - [`daemon`]: build the app on a backend, spawn subsystems, signals,
//!      systemd, shutdown.
//!    - [`telemetry`]: logging setup.

pub mod cli;
pub mod config;
pub mod daemon;
pub mod dispatch;
pub mod domain;
pub mod escalate;
pub mod intake;
pub mod pipeline;
pub mod rules;
pub mod schedule;
pub mod settings;
pub mod store;
pub(crate) mod telemetry;
pub(crate) mod text;
pub mod timers;

#[cfg(test)]
pub(crate) mod testing;
