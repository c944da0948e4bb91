//! Kannel: one `GET` to smsbox's `sendsms` per message.
//!
//! The request carries `username`, `password`, `from`, `to` and `text`,
//! always with `charset=UTF-8`; a body outside the GSM 03.38 alphabet
//! ([`crate::domain::sms::measure`]) also carries `coding=2`, so Kannel
//! sends it as UCS-2 (an emoji arrives intact; a GSM body travels as
//! 7-bit). Every message asks for delivery reports (`dlr-mask=27`:
//! delivered, undelivered, accepted by the SMSC, rejected by the SMSC) at
//!
//! ```text
//! {public_url}/webhooks/kannel/dlr?secret=SECRET&id=OUTBOX_ID&type=%d
//! ```
//!
//! which [`crate::intake::kannel`] serves. Kannel replaces `%d` with the
//! report type, and would replace any other `%X` too, so the callback
//! secret must be URL-safe (letters, digits, `-._~`): it travels verbatim.
//! The report URL deliberately omits `%A` (the SMSC's raw answer), which
//! for SMPP carries the first characters of the body.
//!
//! Kannel's answers (smsbox `sendsms`): `202 0: Accepted for delivery` or
//! `202 3: Queued for later delivery` → accepted (Kannel returns no message
//! id: reports are matched by the outbox id in the URL); `4xx` (bad
//! credentials, a field Kannel rejects, "not routable") → permanent; `5xx`
//! (`503 Temporal failure`, `500 Sending failed`) and no connection →
//! transient; a request sent and not answered in time → ambiguous (Kannel
//! cannot be asked, so the dispatcher sends it once more and counts it;
//! Kannel's delivery report, which names the outbox id, may settle it
//! first). A 2xx whose body cannot be read is still an acceptance. No error
//! reason carries the number, the body or the password.
//!
//! Kannel's `sendsms-user` must allow long texts (`max-messages` at least
//! the longest message's segments, `concatenation = true`): with the
//! default of one message Kannel cuts a longer text short.

use std::time::Duration;

use secrecy::{ExposeSecret, SecretString};

use crate::dispatch::provider::{
    Accepted, Outgoing, Provider, SendError, SetupError, classify_http, classify_transport,
    http_client,
};
use crate::domain::sms::{Encoding, measure};
use crate::settings::{ProviderSettings, Settings};

/// Where Kannel reports delivery: the intake server serves this path, and
/// this adapter writes it into every `dlr-url` it hands Kannel.
pub const DLR_PATH: &str = "/webhooks/kannel/dlr";

/// Delivered (1) + undelivered (2) + accepted by the SMSC (8) + rejected by
/// the SMSC (16). "Buffered at the SMSC" (4) says nothing new.
pub(crate) const DLR_MASK: u32 = 27;

pub struct KannelProvider {
    sendsms_url: reqwest::Url,
    username: String,
    password: SecretString,
    from: String,
    /// `{public_url}/webhooks/kannel/dlr?secret=…`: holds the secret.
    dlr_base: SecretString,
    client: reqwest::Client,
}

impl KannelProvider {
    pub(crate) fn from_settings(
        p: &ProviderSettings,
        s: &Settings,
        timeout: Duration,
    ) -> Result<KannelProvider, SetupError> {
        let ProviderSettings::Kannel {
            sendsms_url,
            username,
            password,
            from,
            callback_secret,
        } = p
        else {
            return Err(SetupError::NotKannel);
        };
        let url = reqwest::Url::parse(sendsms_url)
            .ok()
            .filter(|u| matches!(u.scheme(), "http" | "https") && u.host().is_some())
            .ok_or_else(|| SetupError::KannelSendsmsUrl(sendsms_url.clone()))?;
        if url.query_pairs().any(|(k, _)| k == "password") {
            return Err(SetupError::KannelPasswordInUrl);
        }
        if username.trim().is_empty() {
            return Err(SetupError::KannelNoUsername);
        }
        if from.trim().is_empty() {
            return Err(SetupError::KannelNoSender);
        }
        let public_url = s
            .public_url
            .as_deref()
            .ok_or(SetupError::KannelNoPublicUrl)?;
        if public_url.contains('%') {
            return Err(SetupError::KannelPublicUrlPercent(public_url.to_owned()));
        }
        let password = password.resolve()?;
        let secret = callback_secret.resolve()?;
        check_callback_secret(secret.expose_secret())?;
        let dlr_base = format!(
            "{}{DLR_PATH}?secret={}",
            public_url.trim_end_matches('/'),
            secret.expose_secret()
        );
        Ok(KannelProvider {
            sendsms_url: url,
            username: username.clone(),
            password,
            from: from.clone(),
            dlr_base: SecretString::from(dlr_base),
            client: http_client(timeout)?,
        })
    }

    /// The report URL for one message; Kannel fills in `%d`.
    fn dlr_url(&self, outbox_id: i64) -> String {
        format!("{}&id={outbox_id}&type=%d", self.dlr_base.expose_secret())
    }
}

/// The callback secret travels verbatim inside URLs Kannel expands (`%`
/// starts an escape there), so it must be URL-safe; and long enough not to
/// be guessed.
pub(crate) fn check_callback_secret(secret: &str) -> Result<(), SetupError> {
    // Never echo the secret itself.
    if !secret
        .bytes()
        .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~'))
    {
        return Err(SetupError::CallbackSecretCharacters);
    }
    if secret.len() < 16 {
        return Err(SetupError::CallbackSecretTooShort(secret.len()));
    }
    Ok(())
}

/// What Kannel said, fit for a log line and the outbox's `reason`: first
/// line, bounded, with anything that looks like a phone number masked.
fn sanitize(answer: &str) -> String {
    let line: String = answer
        .lines()
        .next()
        .unwrap_or("")
        .trim()
        .chars()
        .take(120)
        .collect();
    let mut out = String::with_capacity(line.len());
    let mut digits = String::new();
    let flush = |digits: &mut String, out: &mut String| {
        let n = digits.trim_start_matches('+').len();
        if n >= 6 {
            out.push_str("<number>");
        } else {
            out.push_str(digits);
        }
        digits.clear();
    };
    for c in line.chars() {
        if c.is_ascii_digit() || (c == '+' && digits.is_empty()) {
            digits.push(c);
        } else {
            flush(&mut digits, &mut out);
            out.push(c);
        }
    }
    flush(&mut digits, &mut out);
    out
}

impl Provider for KannelProvider {
    fn name(&self) -> &'static str {
        "kannel"
    }

    async fn send(&self, msg: &Outgoing) -> Result<Accepted, SendError> {
        let coding = match measure(&msg.body).encoding {
            Encoding::Gsm7 => "0",
            Encoding::Ucs2 => "2",
        };
        let dlr_mask = DLR_MASK.to_string();
        let dlr_url = self.dlr_url(msg.outbox_id);
        let resp = self
            .client
            .get(self.sendsms_url.clone())
            .query(&[
                ("username", self.username.as_str()),
                ("password", self.password.expose_secret()),
                ("from", self.from.as_str()),
                ("to", msg.to.as_str()),
                ("text", msg.body.as_str()),
                ("charset", "UTF-8"),
                ("coding", coding),
                ("dlr-mask", dlr_mask.as_str()),
                ("dlr-url", dlr_url.as_str()),
            ])
            .send()
            .await
            // The URL holds the password, the number and the body.
            .map_err(|e| classify_transport(&e.without_url()))?;
        let status = resp.status();
        let retry_after = resp.headers().get("retry-after").cloned();
        let answer = resp.text().await.unwrap_or_default();
        let answer = sanitize(&answer);
        if status.is_success() {
            // 202 "0: Accepted for delivery" / "3: Queued for later
            // delivery" (or "Sent." with immediate-sendsms-reply).
            tracing::debug!(answer = %answer, "kannel accepted the message");
            return Ok(Accepted {
                provider_message_id: None,
            });
        }
        Err(classify_http(status, retry_after.as_ref(), &answer))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn answers_are_sanitized_of_numbers_and_cut_to_one_line() {
        assert_eq!(
            sanitize("Authorization failed for sendsms"),
            "Authorization failed for sendsms"
        );
        assert_eq!(
            sanitize("Sending failed. Failed receivers are: +15555550101\nmore"),
            "Sending failed. Failed receivers are: <number>"
        );
        assert_eq!(
            sanitize("0: Accepted for delivery"),
            "0: Accepted for delivery"
        );
        assert_eq!(sanitize(&"x".repeat(500)).len(), 120);
    }

    #[test]
    fn a_callback_secret_must_be_url_safe_and_long() {
        assert!(check_callback_secret("0123456789abcdef-._~").is_ok());
        let err = check_callback_secret("abc%41defghijklmnop")
            .unwrap_err()
            .to_string();
        assert!(!err.contains("abc%41"), "echoed the secret: {err}");
        assert!(check_callback_secret("a&b=cdefghijklmnop").is_err());
        assert!(check_callback_secret("short").is_err());
    }

    fn settings(public_url: Option<&str>, dir: &std::path::Path) -> (ProviderSettings, Settings) {
        std::fs::write(dir.join("pw"), "hunter2\n").unwrap();
        std::fs::write(dir.join("secret"), "0123456789abcdef\n").unwrap();
        let mut text = "provider:\n  kind: kannel\n  sendsms_url: http://127.0.0.1:9/cgi-bin/sendsms\n  username: hearth\n  password: file:pw\n  from: \"+15555550999\"\n  callback_secret: file:secret\n".to_owned();
        if let Some(u) = public_url {
            text.push_str(&format!("public_url: {u}\n"));
        }
        let s = Settings::parse(&text, &dir.join("hearth.yaml"), dir, std::iter::empty()).unwrap();
        (s.provider.clone(), s)
    }

    #[test]
    fn public_url_is_required() {
        let dir = tempfile::tempdir().unwrap();
        let (p, s) = settings(None, dir.path());
        let err = KannelProvider::from_settings(&p, &s, Duration::from_secs(1))
            .err()
            .unwrap()
            .to_string();
        assert!(err.contains("public_url"), "{err}");
    }

    #[test]
    fn the_report_url_names_the_message_and_leaves_the_type_to_kannel() {
        let dir = tempfile::tempdir().unwrap();
        let (p, s) = settings(Some("https://hearth.example/base/"), dir.path());
        let k = KannelProvider::from_settings(&p, &s, Duration::from_secs(1)).unwrap();
        assert_eq!(
            k.dlr_url(42),
            "https://hearth.example/base/webhooks/kannel/dlr?secret=0123456789abcdef&id=42&type=%d"
        );
    }

    #[tokio::test]
    async fn no_answer_is_transient_and_the_reason_leaks_nothing() {
        let dir = tempfile::tempdir().unwrap();
        // Nothing listens on loopback port 9 (discard) here.
        let (p, s) = settings(Some("http://127.0.0.1:1"), dir.path());
        let k = KannelProvider::from_settings(&p, &s, Duration::from_secs(2)).unwrap();
        let msg = Outgoing {
            outbox_id: 1,
            member_id: None,
            to: "+15555550101".parse().unwrap(),
            body: "secret body words".into(),
            segments: 1,
        };
        let err = k.send(&msg).await.unwrap_err();
        let SendError::Transient { reason, .. } = &err else {
            panic!("expected transient, got {err:?}")
        };
        for leak in ["5555550101", "hunter2", "body words", "0123456789abcdef"] {
            assert!(!reason.contains(leak), "reason leaks {leak}: {reason}");
        }
    }
}
