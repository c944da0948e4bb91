//! The integration tests: one binary, one module per capability.

mod support;

mod kannel;
mod twilio;

mod admin_api;
mod alert_scripts;
mod crisis_corpus;
mod crisis_table;
mod daemon;
mod dispatch;
mod escalation;
mod escalation_e2e;
mod escalation_store;
mod explain_cli;
mod fixtures;
mod hints;
mod incidents_cli;
mod instruments;
mod intake;
mod layers;
mod notify_email;
mod notify_webhook;
mod outbox;
mod pipeline;
mod preview_cli;
mod reload;
mod replies_e2e;
mod replies_store;
mod rules_fuzz;
mod schedule_store;
mod scheduler;
mod sessions;
mod silence_e2e;
mod staff_cli;
mod store;
mod systemd;
