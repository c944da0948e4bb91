//! Webhook notices: JSON POSTed to a contact's URL, signed with
//! HMAC-SHA256 over the timestamp and the body so the receiver can check
//! both who sent it and that it is fresh (a replay window).
//!
//! Headers: `Hearth-Timestamp: <unix seconds>` and
//! `Hearth-Signature: v1=<hex of HMAC-SHA256(secret, "<timestamp>.<body>")>`.

use chrono::{DateTime, Utc};
use hmac::{Hmac, KeyInit, Mac};
use secrecy::{ExposeSecret, SecretString};
use sha2::Sha256;

use super::email::ChannelError;
use crate::settings::WebhookSettings;
use crate::settings::is_loopback_host;

pub const TIMESTAMP_HEADER: &str = "Hearth-Timestamp";
pub const SIGNATURE_HEADER: &str = "Hearth-Signature";

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
pub(crate) fn sign(secret: &[u8], timestamp: i64, body: &[u8]) -> String {
    format!("v1={}", hex::encode(mac(secret, timestamp, body)))
}

fn mac(secret: &[u8], timestamp: i64, body: &[u8]) -> Vec<u8> {
    let mut mac = Hmac::<Sha256>::new_from_slice(secret).expect("HMAC takes any key length");
    mac.update(timestamp.to_string().as_bytes());
    mac.update(b".");
    mac.update(body);
    mac.finalize().into_bytes().to_vec()
}

/// Checks a received webhook: the headers' values, the raw body, the
/// receiver's clock and the replay window (300 s is usual).
///
/// The signature header may hold several comma-separated `v1=` values
/// (one per secret while a key is rotated); one match is enough. Entries
/// of other versions are ignored. The signature is checked before the
/// timestamp, so `Stale` means an authentic but old (or replayed) call.
pub fn verify(
    secret: &[u8],
    timestamp_header: Option<&str>,
    signature_header: Option<&str>,
    body: &[u8],
    now: DateTime<Utc>,
    window: std::time::Duration,
) -> Result<(), VerifyError> {
    let timestamp: i64 = timestamp_header
        .map(str::trim)
        .and_then(|t| t.parse().ok())
        .ok_or(VerifyError::Malformed(TIMESTAMP_HEADER))?;
    let candidates: Vec<Vec<u8>> = signature_header
        .ok_or(VerifyError::Malformed(SIGNATURE_HEADER))?
        .split(',')
        .filter_map(|part| part.trim().strip_prefix("v1="))
        .map(|h| hex::decode(h.trim()).map_err(|_| VerifyError::Malformed(SIGNATURE_HEADER)))
        .collect::<Result<_, _>>()?;
    if candidates.is_empty() {
        return Err(VerifyError::Malformed(SIGNATURE_HEADER));
    }
    let expected = mac(secret, timestamp, body);
    // Compare with every candidate, without stopping at the first match.
    let matched = candidates
        .iter()
        .fold(false, |acc, c| acc | crate::text::same_secret(c, &expected));
    if !matched {
        return Err(VerifyError::Mismatch);
    }
    if now.timestamp().abs_diff(timestamp) > window.as_secs() {
        return Err(VerifyError::Stale);
    }
    Ok(())
}

/// A signing HTTP client built once from the settings.
pub struct Webhooks {
    secret: SecretString,
    client: reqwest::Client,
}

impl std::fmt::Debug for Webhooks {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Webhooks").finish_non_exhaustive()
    }
}

/// Where a notice may be POSTed: https anywhere, plain http only to
/// loopback (a relay on the same machine, a test receiver). The rules'
/// own URL checks apply first ([`crate::domain::parse_webhook_url`]).
pub(crate) fn check_url(url: &str) -> Result<reqwest::Url, String> {
    let parsed = crate::domain::parse_webhook_url(url).map_err(|e| match e.hint {
        Some(hint) => format!("{}\n  hint: {hint}", e.message),
        None => e.message,
    })?;
    let loopback = parsed.host_str().is_some_and(is_loopback_host);
    if parsed.scheme() == "http" && !loopback {
        let host = parsed.host_str().unwrap_or_default();
        return Err(format!(
            "webhook URL for `{host}` is plain http: notices go over https, or http only to loopback\n  hint: use `https://`"
        ));
    }
    Ok(parsed)
}

/// Why the webhook sender could not be built; the message names the
/// setting.
#[derive(Debug, thiserror::Error)]
pub enum WebhookSetupError {
    #[error("notify.webhook.secret: {0}")]
    Secret(#[source] crate::settings::SecretError),
    #[error("notify.webhook: cannot build the HTTP client: {0}")]
    Client(String),
}

impl Webhooks {
    /// Resolves the secret; an error names the setting.
    pub fn new(settings: &WebhookSettings) -> Result<Webhooks, WebhookSetupError> {
        let secret = settings
            .secret
            .resolve()
            .map_err(WebhookSetupError::Secret)?;
        let client = reqwest::Client::builder()
            .timeout(settings.timeout)
            .user_agent(concat!("hearth/", env!("CARGO_PKG_VERSION")))
            // A redirect would turn the POST into a GET or send the signed
            // notice somewhere the contact did not name.
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .map_err(|e| WebhookSetupError::Client(e.to_string()))?;
        Ok(Webhooks { secret, client })
    }

    /// One attempt: POSTs `body` (JSON) to `url`, signed at `now`. A 2xx is
    /// delivered; retries are the caller's (the notice keeps its attempts).
    ///
    /// Errors name the URL's host only: a webhook URL often carries a
    /// token in its path or query.
    pub async fn post(
        &self,
        url: &str,
        body: &serde_json::Value,
        now: DateTime<Utc>,
    ) -> Result<(), ChannelError> {
        let parsed = check_url(url).map_err(ChannelError::permanent)?;
        let host = parsed.host_str().unwrap_or_default().to_owned();
        let bytes = serde_json::to_vec(body).map_err(|e| {
            ChannelError::permanent(format!("webhook to {host}: cannot encode: {e}"))
        })?;
        let ts = now.timestamp();
        let signature = sign(self.secret.expose_secret().as_bytes(), ts, &bytes);
        let response = self
            .client
            .post(parsed)
            .header(reqwest::header::CONTENT_TYPE, "application/json")
            .header(TIMESTAMP_HEADER, ts.to_string())
            .header(SIGNATURE_HEADER, signature)
            .body(bytes)
            .send()
            .await
            .map_err(|e| {
                let what = if e.is_timeout() {
                    "timed out".to_owned()
                } else if e.is_connect() {
                    format!("cannot connect: {}", e.without_url())
                } else {
                    e.without_url().to_string()
                };
                ChannelError::retryable(format!("webhook to {host}: {what}"))
            })?;
        let status = response.status();
        if status.is_success() {
            return Ok(());
        }
        let message = format!("webhook to {host}: answered {status}");
        let retryable = status.is_server_error()
            || status == reqwest::StatusCode::REQUEST_TIMEOUT
            || status == reqwest::StatusCode::TOO_MANY_REQUESTS;
        Err(if retryable {
            ChannelError::retryable(message)
        } else if status.is_redirection() {
            ChannelError::permanent(format!(
                "{message}; notices do not follow redirects\n  hint: give the contact the final URL"
            ))
        } else {
            ChannelError::permanent(message)
        })
    }
}

/// The delay before attempt `attempt + 1` after `attempt` failures (1-based):
/// 30 s, 1 min, 2 min, 4 min, 8 min, 16 min; `None` after 6 (give up).
pub(crate) fn backoff(attempt: u32) -> Option<std::time::Duration> {
    (1..=6)
        .contains(&attempt)
        .then(|| std::time::Duration::from_secs(30 << (attempt - 1)))
}

#[cfg(test)]
mod tests {
    use super::*;

    const WINDOW: std::time::Duration = std::time::Duration::from_secs(300);

    fn at(ts: i64) -> DateTime<Utc> {
        DateTime::from_timestamp(ts, 0).unwrap()
    }

    #[test]
    fn a_signature_is_v1_and_lowercase_hex_of_hmac_sha256_over_timestamp_dot_body() {
        // Against the MAC computed by hand over "1700000000.{}".
        let sig = sign(b"key", 1_700_000_000, b"{}");
        assert!(sig.starts_with("v1="), "{sig}");
        let hexpart = &sig[3..];
        assert_eq!(hexpart.len(), 64);
        assert!(
            hexpart
                .chars()
                .all(|c| c.is_ascii_hexdigit() && !c.is_ascii_uppercase())
        );
        let mut mac = Hmac::<Sha256>::new_from_slice(b"key").unwrap();
        mac.update(b"1700000000.{}");
        assert_eq!(hexpart, hex::encode(mac.finalize().into_bytes()));
    }

    #[test]
    fn verify_accepts_a_fresh_signature_and_refuses_tampering_age_and_the_wrong_secret() {
        let body = br#"{"incident":42}"#;
        let ts = 1_700_000_000;
        let sig = sign(b"s3cret", ts, body);
        let tsh = ts.to_string();
        let ok = |secret: &[u8], t: &str, s: &str, b: &[u8], now: i64| {
            verify(secret, Some(t), Some(s), b, at(now), WINDOW)
        };
        assert_eq!(ok(b"s3cret", &tsh, &sig, body, ts + 299), Ok(()));
        assert_eq!(ok(b"s3cret", &tsh, &sig, body, ts - 299), Ok(()));
        assert_eq!(
            ok(b"s3cret", &tsh, &sig, br#"{"incident":43}"#, ts),
            Err(VerifyError::Mismatch)
        );
        assert_eq!(
            ok(b"other", &tsh, &sig, body, ts),
            Err(VerifyError::Mismatch)
        );
        assert_eq!(
            ok(b"s3cret", &(ts + 1).to_string(), &sig, body, ts),
            Err(VerifyError::Mismatch),
            "the timestamp is signed too"
        );
        assert_eq!(
            ok(b"s3cret", &tsh, &sig, body, ts + 301),
            Err(VerifyError::Stale)
        );
        assert_eq!(
            ok(b"s3cret", &tsh, &sig, body, ts - 301),
            Err(VerifyError::Stale)
        );
    }

    #[test]
    fn verify_takes_any_of_several_signatures_while_a_key_rotates() {
        let body = b"{}";
        let old = sign(b"old", 10, body);
        let new = sign(b"new", 10, body);
        let header = format!("{old}, v2=abcdef,{new}");
        for secret in [&b"old"[..], b"new"] {
            assert_eq!(
                verify(secret, Some("10"), Some(&header), body, at(10), WINDOW),
                Ok(())
            );
        }
        assert_eq!(
            verify(b"third", Some("10"), Some(&header), body, at(10), WINDOW),
            Err(VerifyError::Mismatch)
        );
    }

    #[test]
    fn verify_names_a_missing_or_malformed_header() {
        let sig = sign(b"k", 10, b"");
        let ts = Some("10");
        let now = at(10);
        for (t, s, which) in [
            (None, Some(sig.as_str()), TIMESTAMP_HEADER),
            (Some("ten"), Some(sig.as_str()), TIMESTAMP_HEADER),
            (
                Some("99999999999999999999999"),
                Some(sig.as_str()),
                TIMESTAMP_HEADER,
            ),
            (ts, None, SIGNATURE_HEADER),
            (ts, Some(""), SIGNATURE_HEADER),
            (ts, Some("sha256=00"), SIGNATURE_HEADER),
            (ts, Some("v1=zz"), SIGNATURE_HEADER),
        ] {
            assert_eq!(
                verify(b"k", t, s, b"", now, WINDOW),
                Err(VerifyError::Malformed(which)),
                "{t:?} {s:?}"
            );
        }
        // Extreme timestamps neither overflow nor pass.
        let sig = sign(b"k", i64::MIN, b"");
        assert_eq!(
            verify(
                b"k",
                Some(&i64::MIN.to_string()),
                Some(&sig),
                b"",
                now,
                WINDOW
            ),
            Err(VerifyError::Stale)
        );
    }

    #[test]
    fn notices_go_over_https_or_plain_http_only_to_loopback() {
        assert!(check_url("https://pager.clinic.example/hook").is_ok());
        assert!(check_url("http://127.0.0.1:9000/hook").is_ok());
        assert!(check_url("http://localhost/hook").is_ok());
        assert!(check_url("http://[::1]:8080/hook").is_ok());
        let err = check_url("http://pager.clinic.example/hook?token=abc").unwrap_err();
        assert!(
            err.contains("`pager.clinic.example` is plain http"),
            "{err}"
        );
        assert!(!err.contains("token=abc"), "{err}");
        assert!(err.contains("\n  hint: use `https://`"), "{err}");
        assert!(check_url("ftp://x.example/").is_err());
    }

    #[test]
    fn backoff_doubles_from_thirty_seconds_and_gives_up_after_six() {
        let secs: Vec<_> = (1..=7).map(|a| backoff(a).map(|d| d.as_secs())).collect();
        assert_eq!(
            secs,
            [
                Some(30),
                Some(60),
                Some(120),
                Some(240),
                Some(480),
                Some(960),
                None
            ]
        );
        assert_eq!(backoff(0), None);
    }
}
