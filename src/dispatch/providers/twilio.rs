//! Twilio: `POST {base}/2010-04-01/Accounts/{AccountSid}/Messages.json`.
//!
//! One form-encoded request per message, HTTP Basic auth with the account
//! SID and auth token: `To`, `Body`, exactly one of `From` or
//! `MessagingServiceSid`, and `StatusCallback` (our
//! `/webhooks/twilio/status`) when `public_url` is set. A 2xx answer is
//! acceptance; its JSON `sid` is the provider's message id that status
//! callbacks name.
//!
//! Refusals carry Twilio's JSON error (`code`, `message`, `more_info`):
//!
//! | answer | outcome |
//! | --- | --- |
//! | code 21610 (recipient replied STOP to this sender) | opted out: consent is revoked |
//! | code 63018, 20429, HTTP 429 (with `Retry-After`), 408, 5xx, no connection | transient: retried (a 429 or `Retry-After` pauses the provider) |
//! | a timeout after the request was sent | ambiguous: looked up before it is sent again |
//! | code 21211, 21614, any other 4xx | permanent |
//!
//! Twilio's own `message` often quotes the `To` number, so it never goes
//! into a reason: reasons name the HTTP status, the code, a fixed
//! description and Twilio's page for the code.
//!
//! A 2xx whose body cannot be read (the connection dropped mid-answer) is
//! still an acceptance, without a sid: sending again would text twice.
//! A request that timed out after it was sent is ambiguous; before it is
//! sent again, [`TwilioProvider::reconcile`] lists the account's Messages
//! to that number sent since the day of the attempt (`GET
//! Messages.json?To=…&DateSent>=YYYY-MM-DD`) and matches sender, body and
//! creation time.

use std::time::Duration;

use reqwest::StatusCode;
use reqwest::header::HeaderValue;
use secrecy::{ExposeSecret, SecretString};

use crate::dispatch::provider::{
    Accepted, Outgoing, Provider, Reconciled, SendError, SetupError, classify_http,
    classify_transport, http_client,
};
use crate::settings::{ProviderSettings, Settings};

/// Twilio's API host, used when the settings give no `base_url`.
pub(crate) const DEFAULT_BASE_URL: &str = "https://api.twilio.com";

/// The path, under `public_url`, Twilio posts delivery reports to.
pub(crate) const STATUS_CALLBACK_PATH: &str = "/webhooks/twilio/status";

/// Who the message comes from: a number (or alphanumeric sender id), or a
/// Messaging Service that picks one.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Sender {
    From(String),
    Service(String),
}

pub struct TwilioProvider {
    /// `…/2010-04-01/Accounts/{sid}/Messages.json`
    url: String,
    account_sid: String,
    token: SecretString,
    sender: Sender,
    status_callback: Option<String>,
    client: reqwest::Client,
}

/// `PREFIX` followed by 32 hex digits: the shape of Twilio SIDs.
fn is_sid(text: &str, prefix: &str) -> bool {
    text.len() == 34 && text.starts_with(prefix) && text[2..].bytes().all(|b| b.is_ascii_hexdigit())
}

impl TwilioProvider {
    /// Checks the settings and reads the auth token once.
    pub fn from_settings(
        p: &ProviderSettings,
        s: &Settings,
        timeout: Duration,
    ) -> Result<TwilioProvider, SetupError> {
        let ProviderSettings::Twilio {
            account_sid,
            auth_token,
            from,
            messaging_service_sid,
            base_url,
        } = p
        else {
            return Err(SetupError::NotTwilio);
        };
        if !is_sid(account_sid, "AC") {
            return Err(SetupError::TwilioAccountSid(account_sid.clone()));
        }
        let sender = match (
            from.as_deref().map(str::trim),
            messaging_service_sid.as_deref().map(str::trim),
        ) {
            (Some(f), None) if !f.is_empty() => Sender::From(f.to_owned()),
            (None, Some(m)) if is_sid(m, "MG") => Sender::Service(m.to_owned()),
            (None, Some(m)) => {
                return Err(SetupError::TwilioServiceSid(m.to_owned()));
            }
            (Some(_), Some(_)) => {
                return Err(SetupError::TwilioBothSenders);
            }
            _ => {
                return Err(SetupError::TwilioNoSender);
            }
        };
        let base = base_url
            .as_deref()
            .unwrap_or(DEFAULT_BASE_URL)
            .trim_end_matches('/');
        if !(base.starts_with("https://") || base.starts_with("http://")) {
            return Err(SetupError::TwilioBaseUrl(base.to_owned()));
        }
        let status_callback = s
            .public_url
            .as_deref()
            .map(|u| format!("{}{STATUS_CALLBACK_PATH}", u.trim_end_matches('/')));
        if status_callback.is_none() {
            tracing::warn!(
                "no public_url: Twilio will not send delivery reports, and inbound Twilio webhooks are refused"
            );
        }
        Ok(TwilioProvider {
            url: format!("{base}/2010-04-01/Accounts/{account_sid}/Messages.json"),
            account_sid: account_sid.clone(),
            token: auth_token.resolve()?,
            sender,
            status_callback,
            client: http_client(timeout)?,
        })
    }

    /// The form fields of one message, in the order sent.
    fn form<'a>(&'a self, msg: &'a Outgoing) -> Vec<(&'static str, &'a str)> {
        let mut form = vec![("To", msg.to.as_str())];
        match &self.sender {
            Sender::From(f) => form.push(("From", f.as_str())),
            Sender::Service(m) => form.push(("MessagingServiceSid", m.as_str())),
        }
        form.push(("Body", msg.body.as_str()));
        if let Some(cb) = &self.status_callback {
            form.push(("StatusCallback", cb.as_str()));
        }
        form
    }
}

/// What a Twilio code means, in words that never quote the request.
fn describe(code: i64) -> &'static str {
    match code {
        21610 => "the recipient unsubscribed from this sender (replied STOP)",
        63018 => "rate limit exceeded for the channel",
        20429 => "too many concurrent requests",
        21211 => "the `To` number is not a valid phone number",
        21614 => "the `To` number cannot receive SMS (not a mobile number)",
        21408 => "no permission to send to this region",
        21606 => "the `From` number cannot send SMS",
        20003 => "authentication failed (account SID or auth token)",
        20404 => "the account or resource was not found",
        _ => "see Twilio's page for the code",
    }
}

/// `Retry-After` in seconds (as Twilio sends it) or as an HTTP date.
fn retry_after_secs(v: Option<&HeaderValue>) -> Option<Duration> {
    v.and_then(|v| v.to_str().ok())
        .and_then(crate::dispatch::provider::parse_retry_after)
}

/// Classifies a refusal from its status, `Retry-After` and JSON body.
pub(crate) fn classify(
    status: StatusCode,
    retry_after: Option<&HeaderValue>,
    body: &[u8],
) -> SendError {
    let code = serde_json::from_slice::<serde_json::Value>(body)
        .ok()
        .and_then(|v| {
            let c = v.get("code")?;
            c.as_i64()
                .or_else(|| c.as_str().and_then(|s| s.trim().parse().ok()))
        });
    let Some(code) = code else {
        return classify_http(status, retry_after, "no Twilio error code in the answer");
    };
    let detail = format!(
        "twilio error {code}: {} (https://www.twilio.com/docs/errors/{code})",
        describe(code)
    );
    match code {
        21610 => SendError::OptedOut {
            reason: format!("HTTP {}: {detail}", status.as_u16()),
        },
        63018 | 20429 => SendError::Transient {
            reason: format!("HTTP {}: {detail}", status.as_u16()),
            retry_after: retry_after_secs(retry_after),
        },
        // 21211, 21614 and the rest: the status decides (4xx permanent;
        // 429 and 5xx transient).
        _ => classify_http(status, retry_after, &detail),
    }
}

impl Provider for TwilioProvider {
    fn name(&self) -> &'static str {
        "twilio"
    }

    async fn send(&self, msg: &Outgoing) -> Result<Accepted, SendError> {
        let resp = self
            .client
            .post(&self.url)
            .basic_auth(&self.account_sid, Some(self.token.expose_secret()))
            .header("accept", "application/json")
            .form(&self.form(msg))
            .send()
            .await
            .map_err(|e| classify_transport(&e))?;
        let status = resp.status();
        let retry_after = resp.headers().get("retry-after").cloned();
        if status.is_success() {
            // The status says Twilio took it; a body lost on the way back
            // (timeout, dropped connection) changes nothing about that.
            let body = match resp.bytes().await {
                Ok(body) => body,
                Err(e) => {
                    tracing::warn!(
                        http = status.as_u16(),
                        error = %classify_transport(&e),
                        "twilio accepted the message but its answer could not be read; recorded as sent without a sid"
                    );
                    return Ok(Accepted {
                        provider_message_id: None,
                    });
                }
            };
            let sid = serde_json::from_slice::<serde_json::Value>(&body)
                .ok()
                .and_then(|v| v.get("sid").and_then(|s| s.as_str()).map(str::to_owned));
            if sid.is_none() {
                // Accepted all the same: sending again would text the person twice.
                tracing::warn!(
                    http = status.as_u16(),
                    "twilio accepted the message without a sid; its delivery reports cannot be matched"
                );
            }
            return Ok(Accepted {
                provider_message_id: sid,
            });
        }
        let body = resp.bytes().await.unwrap_or_default();
        Err(classify(status, retry_after.as_ref(), &body))
    }
}

impl TwilioProvider {
    /// Looks for `msg` among the account's Messages to its number sent on
    /// or after `since`'s day, matching sender, body and a creation time no
    /// earlier than a minute before `since`.
    pub async fn reconcile(
        &self,
        msg: &Outgoing,
        since: chrono::DateTime<chrono::Utc>,
    ) -> Result<Reconciled, SendError> {
        let day = since.format("%Y-%m-%d").to_string();
        let mut query = vec![
            ("To", msg.to.as_str().to_owned()),
            ("DateSent>", day),
            ("PageSize", "50".to_owned()),
        ];
        if let Sender::From(f) = &self.sender {
            query.push(("From", f.clone()));
        }
        let resp = self
            .client
            .get(&self.url)
            .basic_auth(&self.account_sid, Some(self.token.expose_secret()))
            .header("accept", "application/json")
            .query(&query)
            .send()
            .await
            .map_err(|e| classify_transport(&e.without_url()))?;
        let status = resp.status();
        if !status.is_success() {
            let retry_after = resp.headers().get("retry-after").cloned();
            let body = resp.bytes().await.unwrap_or_default();
            return Err(classify(status, retry_after.as_ref(), &body));
        }
        let list: serde_json::Value = resp.json().await.map_err(|e| {
            SendError::transient(format!("cannot read the message list: {}", e.without_url()))
        })?;
        let earliest = since - chrono::TimeDelta::minutes(1);
        let found = list
            .get("messages")
            .and_then(|m| m.as_array())
            .into_iter()
            .flatten()
            .find(|m| {
                let field = |k: &str| m.get(k).and_then(|v| v.as_str());
                let sender_matches = match &self.sender {
                    Sender::From(f) => field("from") == Some(f.as_str()),
                    Sender::Service(s) => field("messaging_service_sid") == Some(s.as_str()),
                };
                let recent = field("date_created")
                    .and_then(|d| chrono::DateTime::parse_from_rfc2822(d).ok())
                    .is_none_or(|d| d >= earliest);
                field("to") == Some(msg.to.as_str())
                    && field("body") == Some(msg.body.as_str())
                    && sender_matches
                    && recent
            });
        Ok(match found {
            Some(m) => Reconciled::Found(Accepted {
                provider_message_id: m.get("sid").and_then(|s| s.as_str()).map(str::to_owned),
            }),
            None => Reconciled::NotFound,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::settings::SecretRef;

    fn settings(
        from: Option<&str>,
        service: Option<&str>,
        public_url: Option<&str>,
    ) -> (Settings, tempfile::TempDir) {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("token"), "tok\n").unwrap();
        let mut s = Settings::parse(
            "",
            std::path::Path::new("/x/hearth.yaml"),
            std::path::Path::new("/x"),
            std::iter::empty(),
        )
        .unwrap();
        s.public_url = public_url.map(str::to_owned);
        s.provider = ProviderSettings::Twilio {
            account_sid: format!("AC{}", "0a".repeat(16)),
            auth_token: SecretRef::File(dir.path().join("token")),
            from: from.map(str::to_owned),
            messaging_service_sid: service.map(str::to_owned),
            base_url: Some("http://127.0.0.1:9/".into()),
        };
        (s, dir)
    }

    fn build(s: &Settings) -> Result<TwilioProvider, String> {
        TwilioProvider::from_settings(&s.provider, s, Duration::from_secs(1))
            .map_err(|e| e.to_string())
    }

    fn outgoing() -> Outgoing {
        Outgoing {
            outbox_id: 1,
            member_id: None,
            to: "+15555550101".parse().unwrap(),
            body: "hello".into(),
            segments: 1,
        }
    }

    #[test]
    fn exactly_one_sender_must_be_configured() {
        let service = format!("MG{}", "1b".repeat(16));
        assert!(build(&settings(Some("+15555550000"), None, None).0).is_ok());
        assert!(build(&settings(None, Some(&service), None).0).is_ok());
        let both = build(&settings(Some("+15555550000"), Some(&service), None).0)
            .err()
            .unwrap();
        assert!(both.contains("both"), "{both}");
        let neither = build(&settings(None, None, None).0).err().unwrap();
        assert!(neither.contains("neither"), "{neither}");
        let bad = build(&settings(None, Some("MG123"), None).0).err().unwrap();
        assert!(bad.contains("not a Messaging Service SID"), "{bad}");
    }

    #[test]
    fn the_form_names_the_sender_and_the_status_callback_under_public_url() {
        let (s, _d) = settings(Some("+15555550000"), None, Some("https://hearth.example/"));
        let p = build(&s).unwrap();
        assert_eq!(
            p.url,
            format!(
                "http://127.0.0.1:9/2010-04-01/Accounts/AC{}/Messages.json",
                "0a".repeat(16)
            )
        );
        let msg = outgoing();
        assert_eq!(
            p.form(&msg),
            vec![
                ("To", "+15555550101"),
                ("From", "+15555550000"),
                ("Body", "hello"),
                (
                    "StatusCallback",
                    "https://hearth.example/webhooks/twilio/status"
                ),
            ]
        );
        let service = format!("MG{}", "1b".repeat(16));
        let (s, _d) = settings(None, Some(&service), None);
        let p = build(&s).unwrap();
        assert_eq!(
            p.form(&msg),
            vec![
                ("To", "+15555550101"),
                ("MessagingServiceSid", service.as_str()),
                ("Body", "hello")
            ]
        );
    }

    #[test]
    fn an_account_sid_of_the_wrong_shape_is_refused_at_start() {
        let (mut s, _d) = settings(Some("+15555550000"), None, None);
        if let ProviderSettings::Twilio { account_sid, .. } = &mut s.provider {
            *account_sid = "AC123".into();
        }
        assert!(build(&s).err().unwrap().contains("not an account SID"));
    }

    fn err(code: i64, message: &str) -> Vec<u8> {
        serde_json::to_vec(&serde_json::json!({
            "code": code, "message": message, "more_info": format!("https://www.twilio.com/docs/errors/{code}"), "status": 400
        }))
        .unwrap()
    }

    #[test]
    fn twilio_error_codes_are_classified_without_quoting_twilios_message() {
        let leaky = "The 'To' number +15555550101 is not a valid phone number.";
        let bad = StatusCode::BAD_REQUEST;
        let ra = HeaderValue::from_static("3");
        for (code, status) in [
            (21610, bad),
            (21211, bad),
            (21614, bad),
            (63018, StatusCode::TOO_MANY_REQUESTS),
            (20429, StatusCode::TOO_MANY_REQUESTS),
            (30001, bad),
        ] {
            let e = classify(status, Some(&ra), &err(code, leaky));
            let text = e.to_string();
            assert!(text.contains(&code.to_string()), "{text}");
            assert!(!text.contains("5555550101"), "quoted the number: {text}");
            match code {
                21610 => assert!(matches!(e, SendError::OptedOut { .. }), "{e:?}"),
                63018 | 20429 => assert_eq!(
                    e,
                    SendError::Transient {
                        reason: text.trim_start_matches("transient: ").to_owned(),
                        retry_after: Some(Duration::from_secs(3))
                    }
                ),
                _ => assert!(matches!(e, SendError::Permanent { .. }), "{code}: {e:?}"),
            }
        }
        // 63018 may come with a 400; it is still a rate limit.
        assert!(matches!(
            classify(bad, None, &err(63018, "x")),
            SendError::Transient {
                retry_after: None,
                ..
            }
        ));
    }

    #[test]
    fn answers_without_a_twilio_error_fall_back_to_the_http_status() {
        assert!(matches!(
            classify(StatusCode::BAD_GATEWAY, None, b"<html>"),
            SendError::Transient { .. }
        ));
        let ra = HeaderValue::from_static("1");
        assert_eq!(
            classify(StatusCode::TOO_MANY_REQUESTS, Some(&ra), b""),
            SendError::Transient {
                reason: "HTTP 429: no Twilio error code in the answer".into(),
                retry_after: Some(Duration::from_secs(1))
            }
        );
        assert!(matches!(
            classify(StatusCode::UNAUTHORIZED, None, &err(20003, "x")),
            SendError::Permanent { .. }
        ));
        assert!(matches!(
            classify(StatusCode::INTERNAL_SERVER_ERROR, None, &err(20500, "x")),
            SendError::Transient { .. }
        ));
    }
}
