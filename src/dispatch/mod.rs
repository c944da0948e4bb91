//! Sending: the outbox worker, the last gate, and the SMS gateways.
//!
//! - [`provider`]: the adapter trait, error classification, the configured provider.
//! - [`providers`]: one file per gateway (console, Twilio, Kannel, webhook).
//! - [`gate`]: consent, status, expiry and quiet hours, right before sending.
//! - [`worker`]: the dispatcher loop, rate limit, retries with backoff.

pub mod gate;
pub mod provider;
pub mod providers;
pub mod worker;
