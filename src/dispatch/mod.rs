//! Sending: the outbox worker, the last gate, and the SMS gateways.
//!
//! - [`provider`]: the adapter trait, error classification (ambiguous
//!   included), reconciliation, the configured provider.
//! - [`providers`]: one file per gateway (console, Twilio, Kannel, webhook).
//! - [`gate`]: consent, status, expiry and quiet hours, right before sending.
//! - [`worker`]: the dispatcher: two lanes of bounded concurrency (urgent
//!   and routine), leases, the rate limit, retries by time, the
//!   provider-wide circuit breaker, ambiguous sends, a graceful stop.

pub mod gate;
pub mod provider;
pub mod providers;
pub mod worker;
