//! Sending: the outbox worker, the last gate, and the SMS gateways.
//!
//! - [`provider`]: the adapter trait, error classification (ambiguous
//!   included), reconciliation, the configured provider.
//! - [`providers`]: one file per gateway (console, Twilio, Kannel, webhook).
//! - [`gate`]: consent, status, expiry and quiet hours, right before sending.
//! - [`worker`]: the dispatcher type, its builder and its claim loop
//!   (`run_until_stopped`, `try_execute_task`).
//! - `lanes`: the two lanes of bounded concurrency (urgent and routine):
//!   which lane claims, which slot a message takes.
//! - `send`: one claimed message to its outcome (gate, rate, lease renewal,
//!   provider call, what the answer means).
//! - `caps`: the frequency caps, checked again at the last gate.
//! - `rate`: the shared rate limit, crisis first, then urgent, then routine.
//! - `breaker`: the provider-wide circuit breaker.
//! - `ambiguous`: sends that may have gone through (reconcile, resend once,
//!   possibly sent).
//! - `retry`: retries by time, until expiry or the retry horizon.
//! - `record`: outcomes into the outbox, store errors retried until stored.
//! - `counters`: the running counts `/status` shows.
//! - `setup_error`: why a provider could not be built from the settings.
//! - `fault`: fault injection for the crash tests (`fault-injection` only).

mod ambiguous;
mod breaker;
mod caps;
mod counters;
#[cfg(feature = "fault-injection")]
mod fault;
pub mod gate;
mod lanes;
pub mod provider;
pub mod providers;
mod rate;
mod record;
mod retry;
mod send;
mod setup_error;
pub mod worker;
