//! Twilio webhooks: inbound texts and delivery reports.
//!
//! - `POST /webhooks/twilio/sms`: an inbound text. Stored through
//!   [`IntakeState::receive`] (idempotent on `MessageSid`), answered with
//!   empty TwiML so Twilio sends nothing back by itself.
//! - `POST /webhooks/twilio/status`: a delivery report for a message we
//!   sent (`StatusCallback`), applied to the outbox by `MessageSid`.
//!
//! Both verify `X-Twilio-Signature` before anything else: HMAC-SHA1, keyed
//! by the account's auth token, over the URL Twilio called (our
//! `public_url`, then the path and query string as received) followed by
//! every POST parameter sorted by name, each as name then value; base64.
//! A missing or wrong signature, or no `public_url` to rebuild the URL
//! from, is a 403 and nothing is stored. Only then is the form read: a
//! signed request that lacks a field we need is a 400.
//!
//! `public_url` must be written exactly as the webhook URLs in the Twilio
//! Console begin (scheme, host, any port or path prefix): a proxy in front
//! of Hearth changes what Hearth sees, not what Twilio signed.
//!
//! The auth token is resolved from its reference on every request rather
//! than cached: it is one small read, it follows a rotated token without a
//! restart, and a process-wide cache would be shared by every daemon in
//! one process (the tests run several, each with its own token).

use axum::Router;
use axum::body::Bytes;
use axum::extract::{OriginalUri, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use base64::Engine;
use hmac::{Hmac, KeyInit, Mac};
use secrecy::ExposeSecret;
use sha1::Sha1;

use super::{IntakeError, IntakeState};
use crate::domain::message::{InboundSms, Report, ReportFor};
use crate::settings::ProviderSettings;
use crate::store::Backend;
use crate::text::same_secret;

/// The empty TwiML answer: "nothing to send back".
pub const EMPTY_TWIML: &str = r#"<?xml version="1.0" encoding="UTF-8"?><Response></Response>"#;

pub(crate) const SMS_PATH: &str = "/webhooks/twilio/sms";
pub(crate) const STATUS_PATH: &str = "/webhooks/twilio/status";

pub(crate) fn routes<S: Backend>() -> Router<IntakeState<S>> {
    Router::new()
        .route(SMS_PATH, post(sms::<S>))
        .route(STATUS_PATH, post(status::<S>))
}

/// Twilio's request signature: base64 of HMAC-SHA1 keyed by the auth
/// token over `url` followed by each parameter, sorted by name (then by
/// value, for repeated names), as name then value with no separators.
pub fn expected_signature(auth_token: &[u8], url: &str, params: &[(String, String)]) -> String {
    let mut sorted: Vec<&(String, String)> = params.iter().collect();
    sorted.sort();
    let mut mac = Hmac::<Sha1>::new_from_slice(auth_token).expect("HMAC takes any key length");
    mac.update(url.as_bytes());
    for (name, value) in sorted {
        mac.update(name.as_bytes());
        mac.update(value.as_bytes());
    }
    base64::engine::general_purpose::STANDARD.encode(mac.finalize().into_bytes())
}

/// A request whose signature checked out, with its form.
struct Verified {
    params: Vec<(String, String)>,
}

impl Verified {
    fn get(&self, name: &str) -> Option<&str> {
        self.params
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }

    fn require(&self, name: &str) -> Result<&str, IntakeError> {
        match self.get(name) {
            Some(v) => Ok(v),
            None => Err(IntakeError::BadRequest(format!("missing `{name}`"))),
        }
    }

    fn require_nonempty(&self, name: &str) -> Result<&str, IntakeError> {
        match self.require(name)? {
            "" => Err(IntakeError::BadRequest(format!("empty `{name}`"))),
            v => Ok(v),
        }
    }
}

/// Checks `X-Twilio-Signature`, then parses the form strictly.
fn verify<S: Backend>(
    state: &IntakeState<S>,
    uri: &axum::http::Uri,
    headers: &HeaderMap,
    body: &[u8],
) -> Result<Verified, IntakeError> {
    let presented = headers
        .get("x-twilio-signature")
        .ok_or(IntakeError::Forbidden("missing X-Twilio-Signature"))?
        .as_bytes();
    let ProviderSettings::Twilio { auth_token, .. } = &state.settings.provider else {
        return Err(IntakeError::Forbidden(
            "twilio webhook, but the provider is not twilio",
        ));
    };
    let Some(public_url) = state.settings.public_url.as_deref() else {
        return Err(IntakeError::Forbidden(
            "twilio webhook, but no public_url to verify its signature against",
        ));
    };
    let token = auth_token.resolve().map_err(|e| {
        tracing::error!(error = %e, "cannot read the twilio auth token to verify a webhook");
        IntakeError::Forbidden("twilio auth token unreadable")
    })?;
    let url = match uri.path_and_query() {
        Some(pq) => format!("{}{pq}", public_url.trim_end_matches('/')),
        None => format!("{}{}", public_url.trim_end_matches('/'), uri.path()),
    };
    // Lenient decoding for the signature: Twilio signed decoded values.
    let lenient: Vec<(String, String)> = form_urlencoded::parse(body).into_owned().collect();
    let expected = expected_signature(token.expose_secret().as_bytes(), &url, &lenient);
    if !same_secret(expected.as_bytes(), presented) {
        return Err(IntakeError::Forbidden("wrong X-Twilio-Signature"));
    }
    let content_type = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    if !content_type
        .trim_start()
        .to_ascii_lowercase()
        .starts_with("application/x-www-form-urlencoded")
    {
        return Err(IntakeError::BadRequest(
            "expected an application/x-www-form-urlencoded body".into(),
        ));
    }
    let params = parse_form_strict(body).map_err(IntakeError::BadRequest)?;
    Ok(Verified { params })
}

/// `application/x-www-form-urlencoded`, refusing what lenient decoding
/// would paper over: bad percent escapes and invalid UTF-8.
fn parse_form_strict(body: &[u8]) -> Result<Vec<(String, String)>, String> {
    fn decode(part: &[u8]) -> Result<String, String> {
        // `percent-encoding` passes a malformed escape through as text;
        // refuse it instead, so a mangled body is never half-read.
        let mut escapes = part.iter().enumerate().filter(|(_, b)| **b == b'%');
        if escapes.any(|(at, _)| match part.get(at + 1..at + 3) {
            Some(hex) => !hex.iter().all(u8::is_ascii_hexdigit),
            None => true,
        }) {
            return Err("bad percent escape".into());
        }
        let spaced: Vec<u8> = part
            .iter()
            .map(|b| if *b == b'+' { b' ' } else { *b })
            .collect();
        let bytes: Vec<u8> = percent_encoding::percent_decode(&spaced).collect();
        String::from_utf8(bytes).map_err(|_| "a form field is not UTF-8".to_owned())
    }
    body.split(|b| *b == b'&')
        .filter(|pair| !pair.is_empty())
        .map(|pair| {
            let (k, v) = match pair.iter().position(|b| *b == b'=') {
                Some(at) => (&pair[..at], &pair[at + 1..]),
                None => (pair, &[][..]),
            };
            Ok((decode(k)?, decode(v)?))
        })
        .collect()
}

/// The text a signed inbound webhook carries.
fn inbound_of(form: &Verified) -> Result<InboundSms, IntakeError> {
    Ok(InboundSms {
        provider: "twilio".into(),
        provider_message_id: form.require_nonempty("MessageSid")?.to_owned(),
        from: form.require_nonempty("From")?.to_owned(),
        to: form.get("To").unwrap_or_default().to_owned(),
        // A media-only MMS has an empty body; an absent one is malformed.
        body: form.require("Body")?.to_owned(),
        // Twilio's Advanced Opt-Out names the keyword it acted on (STOP,
        // START, HELP) in `OptOutType`; kept so the ledger follows the
        // provider's reading.
        keyword: form
            .get("OptOutType")
            .map(|k| k.trim().to_ascii_uppercase())
            .filter(|k| !k.is_empty()),
    })
}

async fn sms<S: Backend>(
    State(state): State<IntakeState<S>>,
    OriginalUri(uri): OriginalUri,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, IntakeError> {
    let form = verify(&state, &uri, &headers, &body)?;
    let sms = inbound_of(&form)?;
    // New or a retry of one already stored: either way it is safe now.
    state.receive(sms).await?;
    Ok(([(header::CONTENT_TYPE, "text/xml")], EMPTY_TWIML).into_response())
}

/// What a Twilio `MessageStatus` means for the outbox; `None` for the
/// in-flight states that add nothing to `sent`.
fn report_for(status: &str) -> Option<Report> {
    match status {
        "sent" => Some(Report::Sent),
        "delivered" | "read" => Some(Report::Delivered),
        "undelivered" => Some(Report::Undelivered),
        "failed" | "canceled" => Some(Report::Failed),
        // queued, accepted, sending, scheduled, partially_delivered, and
        // whatever Twilio adds later.
        _ => None,
    }
}

async fn status<S: Backend>(
    State(state): State<IntakeState<S>>,
    OriginalUri(uri): OriginalUri,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, IntakeError> {
    let form = verify(&state, &uri, &headers, &body)?;
    let sid = form.require_nonempty("MessageSid")?.to_owned();
    let message_status = form.require_nonempty("MessageStatus")?;
    let opted_out = form.get("ErrorCode") == Some("21610");
    let Some(report) =
        report_for(message_status).map(|r| if opted_out { Report::OptedOut } else { r })
    else {
        tracing::debug!(message_sid = %sid, status = message_status, "twilio status ignored");
        return Ok(StatusCode::OK.into_response());
    };
    let detail = form
        .get("ErrorCode")
        .filter(|c| !c.is_empty())
        .map(|c| format!("twilio error {c}"));
    let target = ReportFor::ProviderId {
        provider: "twilio".into(),
        id: sid.clone(),
    };
    match state.store.apply_report(target, report, detail).await? {
        Some(now) => {
            tracing::info!(message_sid = %sid, status = message_status, state = %now, "twilio delivery report applied")
        }
        // Answered 200 all the same: Twilio retrying cannot make it match.
        None => {
            tracing::warn!(message_sid = %sid, status = message_status, "twilio delivery report for no message we know")
        }
    }
    Ok(StatusCode::OK.into_response())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pairs(list: &[(&str, &str)]) -> Vec<(String, String)> {
        list.iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn an_inbound_text_keeps_twilios_opt_out_type_upper_case_and_none_without_it() {
        let form = |extra: &[(&str, &str)]| {
            let mut p = pairs(&[
                ("MessageSid", "SM1"),
                ("From", "+15555550101"),
                ("To", "+15555550199"),
                ("Body", "stop"),
            ]);
            p.extend(pairs(extra));
            Verified { params: p }
        };
        let sms = inbound_of(&form(&[("OptOutType", "STOP")])).unwrap();
        assert_eq!(sms.keyword.as_deref(), Some("STOP"));
        assert_eq!(sms.body, "stop", "the body is kept as sent");
        let sms = inbound_of(&form(&[("OptOutType", "help")])).unwrap();
        assert_eq!(sms.keyword.as_deref(), Some("HELP"));
        assert_eq!(inbound_of(&form(&[])).unwrap().keyword, None);
        assert_eq!(
            inbound_of(&form(&[("OptOutType", " ")])).unwrap().keyword,
            None
        );
    }

    #[test]
    fn the_signature_matches_twilios_published_example() {
        // https://www.twilio.com/docs/usage/security#validating-requests
        let params = pairs(&[
            ("CallSid", "CA1234567890ABCDE"),
            ("Caller", "+14158675309"),
            ("Digits", "1234"),
            ("From", "+14158675309"),
            ("To", "+18005551212"),
        ]);
        let url = "https://mycompany.com/myapp.php?foo=1&bar=2";
        assert_eq!(
            expected_signature(b"12345", url, &params),
            "RSOYDt4T1cUTdK1PDd93/VVr8B8="
        );
        // Order of arrival does not matter; the sort does.
        let mut reversed = params.clone();
        reversed.reverse();
        assert_eq!(
            expected_signature(b"12345", url, &reversed),
            "RSOYDt4T1cUTdK1PDd93/VVr8B8="
        );
        // Anything else changes it.
        assert_ne!(
            expected_signature(b"12346", url, &params),
            "RSOYDt4T1cUTdK1PDd93/VVr8B8="
        );
        assert_ne!(
            expected_signature(
                b"12345",
                "https://mycompany.com/myapp.php?foo=1&bar=3",
                &params
            ),
            "RSOYDt4T1cUTdK1PDd93/VVr8B8="
        );
    }

    #[test]
    fn strict_form_parsing_refuses_bad_escapes_and_invalid_utf8() {
        assert_eq!(
            parse_form_strict(b"Body=Hi+there%21&From=%2B15555550101&Empty=&Bare").unwrap(),
            pairs(&[
                ("Body", "Hi there!"),
                ("From", "+15555550101"),
                ("Empty", ""),
                ("Bare", "")
            ])
        );
        assert!(parse_form_strict(b"Body=%E2%9C").is_err());
        assert!(parse_form_strict(b"Body=%ZZ").is_err());
        assert!(parse_form_strict(b"Body=%FF").is_err());
        assert!(parse_form_strict(b"Body=50%").is_err());
        assert!(parse_form_strict(b"Body=%4").is_err());
        assert_eq!(
            parse_form_strict(b"Body=%E2%9C%93+ok%2b1").unwrap(),
            pairs(&[("Body", "\u{2713} ok+1")])
        );
    }

    #[test]
    fn twilio_statuses_map_to_reports() {
        for s in [
            "queued",
            "accepted",
            "sending",
            "scheduled",
            "receiving",
            "partially_delivered",
        ] {
            assert_eq!(report_for(s), None, "{s}");
        }
        assert_eq!(report_for("sent"), Some(Report::Sent));
        assert_eq!(report_for("delivered"), Some(Report::Delivered));
        assert_eq!(report_for("read"), Some(Report::Delivered));
        assert_eq!(report_for("undelivered"), Some(Report::Undelivered));
        assert_eq!(report_for("failed"), Some(Report::Failed));
        assert_eq!(report_for("canceled"), Some(Report::Failed));
    }
}
