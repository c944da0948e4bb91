//! Webhook notices: JSON POSTed to a contact's URL, signed with
//! HMAC-SHA256 over the timestamp and the body so the receiver can check
//! both who sent it and that it is fresh (a replay window).
//!
//! Headers: `Hearth-Timestamp: <unix seconds>` and
//! `Hearth-Signature: v1=<hex of HMAC-SHA256(secret, "<timestamp>.<body>")>`.

use chrono::{DateTime, Utc};

use super::email::ChannelError;
use crate::settings::SecretRef;

pub const TIMESTAMP_HEADER: &str = "Hearth-Timestamp";
pub const SIGNATURE_HEADER: &str = "Hearth-Signature";

/// `notify.webhook:` in the settings.
#[derive(Debug, Clone)]
pub struct WebhookSettings {
    /// The signing secret (a secret reference).
    pub secret: SecretRef,
    /// Per attempt.
    pub timeout: std::time::Duration,
}

/// Why a signature check failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum VerifyError {
    #[error("missing or malformed {0} header")]
    Malformed(&'static str),
    #[error("timestamp outside the replay window")]
    Stale,
    #[error("signature does not match")]
    Mismatch,
}

/// The signature header's value for `body` sent at `timestamp`.
pub fn sign(secret: &[u8], timestamp: i64, body: &[u8]) -> String {
    let _ = (secret, timestamp, body);
    todo!("webhook helper")
}

/// Checks a received webhook: the headers' values, the raw body, the
/// receiver's clock and the replay window (300 s is usual).
pub fn verify(
    secret: &[u8],
    timestamp_header: Option<&str>,
    signature_header: Option<&str>,
    body: &[u8],
    now: DateTime<Utc>,
    window: std::time::Duration,
) -> Result<(), VerifyError> {
    let _ = (
        secret,
        timestamp_header,
        signature_header,
        body,
        now,
        window,
    );
    todo!("webhook helper")
}

/// A signing HTTP client built once from the settings.
pub struct Webhooks {
    _private: (),
}

impl Webhooks {
    /// Resolves the secret; an error names the setting.
    pub fn new(settings: &WebhookSettings) -> Result<Webhooks, String> {
        let _ = settings;
        todo!("webhook helper")
    }

    /// One attempt: POSTs `body` (JSON) to `url`, signed at `now`. A 2xx is
    /// delivered; retries are the caller's (the notice keeps its attempts).
    pub async fn post(
        &self,
        url: &str,
        body: &serde_json::Value,
        now: DateTime<Utc>,
    ) -> Result<(), ChannelError> {
        let _ = (url, body, now);
        todo!("webhook helper")
    }
}

/// The delay before attempt `attempt + 1` after `attempt` failures (1-based):
/// 30 s, 1 min, 2 min, 4 min, 8 min, 16 min; `None` after 6 (give up).
pub fn backoff(attempt: u32) -> Option<std::time::Duration> {
    (1..=6).contains(&attempt).then(|| std::time::Duration::from_secs(30 << (attempt - 1)))
}
