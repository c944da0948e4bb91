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
//! - [`engine`]: the Rhai sandbox, message templates, SMS length.
//! - [`dispatch`]: the outbox worker, the last gate, the SMS gateways.
//! - [`intake`]: the HTTP server: provider webhooks, status.
//! - [`pipeline`]: the queue of stored inbound texts and its worker.
//! - [`store`]: the encrypted database: members, consent, audit trail.
//! - [`schedule`]: cron in IANA timezones and session-relative timing.
//! - [`domain`]: values that parse rather than validate (durations, phones).
//! - [`telemetry`]: logging setup.
//! - [`text`]: `did_you_mean` and `sha256_hex`, a leaf every layer may use.

pub mod cli;
pub mod config;
pub mod daemon;
pub mod dispatch;
pub mod domain;
pub mod engine;
pub mod intake;
pub mod pipeline;
pub mod schedule;
pub mod settings;
pub mod store;
pub mod telemetry;
pub mod text;
