//! Kannel's callbacks: member texts (MO) and delivery reports (DLR).
//!
//! Both endpoints accept `GET` and `POST` and check, before anything else,
//! that the caller's address is in `intake.kannel_allow` and that it
//! presents the provider's `callback_secret` (`secret=`, compared in
//! constant time). A failed check is a 403 and stores nothing; a missing
//! or garbled parameter is a 400. Success is a 200 with an **empty body**:
//! smsbox would send a non-empty answer back to the member as a reply.
//!
//! ## `/webhooks/kannel/mo`
//!
//! For an `sms-service` with `max-messages = 0` (no reply) and
//!
//! ```text
//! get-url = "http://HEARTH/webhooks/kannel/mo?secret=SECRET&id=%I&from=%p&to=%P&text=%b&coding=%c&charset=%C"
//! ```
//!
//! or the same URL without `text=` as a `post-url` (smsbox then sends the
//! text as the request body, its charset in `Content-Type`). A form-encoded
//! `POST` body may carry any of the parameters too.
//!
//! - `id` is Kannel's message UUID (`%I`), assigned when bearerbox takes
//!   the message from the SMSC. smsbox retries a failed callback with the
//!   very same URL (`http-request-retry`), and bearerbox redelivers an
//!   unacknowledged message with the same UUID, so the id is stable across
//!   both; the store keeps the first copy and answers a repeat 200.
//!   (A carrier that submits the same text twice makes two messages with
//!   two UUIDs: two texts, as far as anyone can tell.) Required: no id, no
//!   idempotency, so a callback without one is refused rather than guessed.
//! - `from` (`%p`): the sender; a leading `00` becomes `+`.
//! - `text` (`%b`, the message as received: `%a` squeezes spaces) is
//!   decoded by `charset` (`%C`: `UTF-8`, or `UTF-16BE` for a UCS-2 text),
//!   else by `coding` (`%c`: 2 is UCS-2). Undecodable bytes become U+FFFD:
//!   a member's words are stored, never refused for their encoding.
//!
//! ## `/webhooks/kannel/dlr`
//!
//! The `dlr-url` the provider sends with every message:
//! `?secret=SECRET&id=OUTBOX_ID&type=%d`. Types: 1 delivered, 2
//! undelivered, 4 and 8 sent (buffered at / accepted by the SMSC), 16
//! failed (rejected by the SMSC). A report for an unknown message, or of a
//! type Hearth does not know, is logged and answered 200 (Kannel would only
//! retry it). Reports never move a message backwards; one that overtakes
//! the dispatcher's record of the send is applied at once, and the store
//! still records the send when it comes.

use std::net::{IpAddr, SocketAddr};

use axum::Router;
use axum::body::Bytes;
use axum::extract::{ConnectInfo, RawQuery, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use secrecy::ExposeSecret;

use super::{IntakeError, IntakeState};
pub use crate::dispatch::providers::kannel::DLR_PATH;
use crate::domain::message::{InboundSms, Report, ReportFor};
use crate::settings::ProviderSettings;
use crate::store::Backend;
use crate::text::same_secret;

pub(crate) const MO_PATH: &str = "/webhooks/kannel/mo";

pub(crate) fn routes<S: Backend>() -> Router<IntakeState<S>> {
    Router::new()
        .route(MO_PATH, get(mo_get::<S>).post(mo_post::<S>))
        .route(DLR_PATH, get(dlr_get::<S>).post(dlr_post::<S>))
}

/// Why a Kannel callback was not taken.
enum Refusal {
    Intake(IntakeError),
    /// The secret could not be read: the operator's problem, not Kannel's.
    Secret(String),
}

impl From<IntakeError> for Refusal {
    fn from(e: IntakeError) -> Refusal {
        Refusal::Intake(e)
    }
}

impl IntoResponse for Refusal {
    fn into_response(self) -> Response {
        match self {
            Refusal::Intake(e) => e.into_response(),
            Refusal::Secret(e) => {
                tracing::error!(error = %e, "cannot read the kannel callback secret");
                (StatusCode::INTERNAL_SERVER_ERROR, "internal error\n").into_response()
            }
        }
    }
}

/// The empty 200 that tells smsbox "taken, nothing to send back".
fn taken() -> Response {
    StatusCode::OK.into_response()
}

/// Decoded query (and form) parameters; values stay bytes, because `%b`
/// of a UCS-2 text is UTF-16 and not UTF-8.
#[derive(Default)]
struct Params(Vec<(String, Vec<u8>)>);

impl Params {
    fn parse(&mut self, encoded: &[u8]) {
        for pair in encoded.split(|&b| b == b'&').filter(|p| !p.is_empty()) {
            let (k, v) = match pair.iter().position(|&b| b == b'=') {
                Some(i) => (&pair[..i], &pair[i + 1..]),
                None => (pair, &[][..]),
            };
            self.0.push((
                String::from_utf8_lossy(&percent_decode(k)).into_owned(),
                percent_decode(v),
            ));
        }
    }

    /// The first value of `name`.
    fn bytes(&self, name: &str) -> Option<&[u8]> {
        self.0
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_slice())
    }

    /// The first value of `name` as (trimmed) UTF-8 text.
    fn text(&self, name: &str) -> Result<Option<String>, IntakeError> {
        match self.bytes(name) {
            None => Ok(None),
            Some(b) => std::str::from_utf8(b)
                .map(|s| Some(s.trim().to_owned()))
                .map_err(|_| IntakeError::BadRequest(format!("parameter `{name}` is not UTF-8"))),
        }
    }

    fn required(&self, name: &str, hint: &str) -> Result<String, IntakeError> {
        match self.text(name)? {
            Some(v) if !v.is_empty() => Ok(v),
            _ => Err(IntakeError::BadRequest(format!(
                "missing parameter `{name}` ({hint})"
            ))),
        }
    }
}

/// `application/x-www-form-urlencoded` decoding to bytes: `+` is a space.
fn percent_decode(input: &[u8]) -> Vec<u8> {
    fn hex(b: u8) -> Option<u8> {
        (b as char).to_digit(16).map(|d| d as u8)
    }
    let mut out = Vec::with_capacity(input.len());
    let mut i = 0;
    while i < input.len() {
        match input[i] {
            b'+' => out.push(b' '),
            b'%' if i + 2 < input.len() => match (hex(input[i + 1]), hex(input[i + 2])) {
                (Some(h), Some(l)) => {
                    out.push(h << 4 | l);
                    i += 2;
                }
                _ => out.push(b'%'),
            },
            b => out.push(b),
        }
        i += 1;
    }
    out
}

/// The caller is on the allow-list and knows the secret. Checked before
/// any parameter is looked at.
fn authenticate<S: Backend>(
    state: &IntakeState<S>,
    peer: SocketAddr,
    params: &Params,
) -> Result<(), Refusal> {
    let ip = match peer.ip() {
        IpAddr::V6(v6) => v6
            .to_ipv4_mapped()
            .map(IpAddr::V4)
            .unwrap_or(IpAddr::V6(v6)),
        v4 => v4,
    };
    if !state.settings.intake.kannel_allow.contains(&ip) {
        return Err(IntakeError::Forbidden(
            "kannel callback from an address not in intake.kannel_allow",
        )
        .into());
    }
    let ProviderSettings::Kannel {
        callback_secret, ..
    } = &state.settings.provider
    else {
        return Err(
            IntakeError::Forbidden("kannel callback, but the provider is not kannel").into(),
        );
    };
    // Read on each call: a rotated secret file takes effect at once.
    let expected = callback_secret
        .resolve()
        .map_err(|e| Refusal::Secret(e.to_string()))?;
    let presented = params
        .bytes("secret")
        .ok_or(IntakeError::Forbidden("kannel callback without a secret"))?;
    if !same_secret(expected.expose_secret().as_bytes(), presented) {
        return Err(IntakeError::Forbidden("kannel callback with a wrong secret").into());
    }
    Ok(())
}

/// Decodes a text by its declared charset (or coding), replacing what
/// cannot be decoded rather than refusing it.
fn decode_text(bytes: &[u8], charset: Option<&str>, coding: Option<&str>) -> String {
    let charset = charset
        .map(|c| c.trim().trim_matches('"').to_ascii_lowercase())
        .filter(|c| !c.is_empty());
    let utf16 = match charset.as_deref() {
        Some("utf-16be" | "utf-16" | "ucs-2" | "ucs2" | "utf16be") => true,
        Some(_) => false,
        None => coding.map(str::trim) == Some("2"),
    };
    if utf16 {
        let units = bytes
            .chunks(2)
            .map(|c| u16::from_be_bytes([c[0], *c.get(1).unwrap_or(&0)]));
        let text: String = char::decode_utf16(units)
            .map(|r| r.unwrap_or(char::REPLACEMENT_CHARACTER))
            .collect();
        if bytes.len() % 2 == 1 {
            tracing::warn!("kannel text in UTF-16 with an odd number of bytes; stored as decoded");
        }
        return text;
    }
    match charset.as_deref() {
        Some("iso-8859-1" | "latin1" | "latin-1") => bytes.iter().map(|&b| b as char).collect(),
        other => {
            if !matches!(other, None | Some("utf-8" | "utf8")) {
                tracing::warn!(
                    charset = other,
                    "kannel text in an unexpected charset; read as UTF-8"
                );
            }
            match std::str::from_utf8(bytes) {
                Ok(s) => s.to_owned(),
                Err(_) => {
                    tracing::warn!(
                        "kannel text is not valid in its charset; stored with replacement characters"
                    );
                    String::from_utf8_lossy(bytes).into_owned()
                }
            }
        }
    }
}

/// `%p` as the SMSC gave it; `00` international prefix → `+`.
fn normalize_sender(from: &str) -> String {
    match from.strip_prefix("00") {
        Some(rest) if !rest.is_empty() && rest.bytes().all(|b| b.is_ascii_digit()) => {
            format!("+{rest}")
        }
        _ => from.to_owned(),
    }
}

/// Kannel's `%I`: a UUID. Anything else is refused rather than stored as a key.
fn check_id(id: &str) -> Result<(), IntakeError> {
    if id.len() <= 64 && id.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-') {
        Ok(())
    } else {
        Err(IntakeError::BadRequest(
            "parameter `id` is not a Kannel message id (%I)".into(),
        ))
    }
}

/// The query string's parameters.
fn query_params(query: Option<String>) -> Params {
    let mut params = Params::default();
    params.parse(query.unwrap_or_default().as_bytes());
    params
}

/// The request's `Content-Type`, whole and as a lower-case MIME type.
fn content_type(headers: &HeaderMap) -> (&str, String) {
    let whole = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    let mime = whole
        .split(';')
        .next()
        .unwrap_or("")
        .trim()
        .to_ascii_lowercase();
    (whole, mime)
}

const FORM: &str = "application/x-www-form-urlencoded";

async fn mo_get<S: Backend>(
    State(state): State<IntakeState<S>>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    RawQuery(query): RawQuery,
) -> Response {
    mo(state, peer, query_params(query), None)
        .await
        .unwrap_or_else(IntoResponse::into_response)
}

async fn mo_post<S: Backend>(
    State(state): State<IntakeState<S>>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    RawQuery(query): RawQuery,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let mut params = query_params(query);
    let (content_type, mime) = content_type(&headers);
    let text = if mime == FORM {
        params.parse(&body);
        None
    } else {
        // smsbox's post-url: the text is the body.
        let charset = content_type
            .split(';')
            .skip(1)
            .filter_map(|p| p.trim().split_once('='))
            .find(|(k, _)| k.trim().eq_ignore_ascii_case("charset"))
            .map(|(_, v)| v.trim().trim_matches('"').to_owned());
        let charset =
            charset.or_else(|| (mime == "application/octet-stream").then(|| "binary".to_owned()));
        Some((body, charset))
    };
    let to_header = headers
        .get("x-kannel-to")
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned);
    mo(state, peer, params, text.map(|(b, c)| (b, c, to_header)))
        .await
        .unwrap_or_else(IntoResponse::into_response)
}

/// Stores one member text. `body` is a post-url body with its charset and
/// `X-Kannel-To`.
async fn mo<S: Backend>(
    state: IntakeState<S>,
    peer: SocketAddr,
    params: Params,
    body: Option<(Bytes, Option<String>, Option<String>)>,
) -> Result<Response, Refusal> {
    authenticate(&state, peer, &params)?;
    let id = params.required(
        "id",
        "Kannel's message id: add `id=%I` to the sms-service URL",
    )?;
    check_id(&id)?;
    let from = params.required("from", "the sender: add `from=%p`")?;
    let coding = params.text("coding")?;
    let (text, to) = match body {
        Some((bytes, charset, to_header)) if params.bytes("text").is_none() => {
            let charset = charset.or(params.text("charset")?);
            (
                decode_text(&bytes, charset.as_deref(), coding.as_deref()),
                params.text("to")?.or(to_header),
            )
        }
        _ => {
            let raw = params.bytes("text").ok_or_else(|| {
                IntakeError::BadRequest(
                    "missing parameter `text` (the message: add `text=%b`)".into(),
                )
            })?;
            (
                decode_text(raw, params.text("charset")?.as_deref(), coding.as_deref()),
                params.text("to")?,
            )
        }
    };
    let received = state
        .receive(InboundSms {
            provider: "kannel".into(),
            provider_message_id: id,
            from: normalize_sender(&from),
            to: to.unwrap_or_default(),
            body: text,
            keyword: None,
        })
        .await
        .map_err(IntakeError::from)?;
    tracing::debug!(?received, "kannel MO answered");
    Ok(taken())
}

async fn dlr_get<S: Backend>(
    State(state): State<IntakeState<S>>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    RawQuery(query): RawQuery,
) -> Response {
    dlr(state, peer, query_params(query))
        .await
        .unwrap_or_else(IntoResponse::into_response)
}

async fn dlr_post<S: Backend>(
    State(state): State<IntakeState<S>>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    RawQuery(query): RawQuery,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let mut params = query_params(query);
    if content_type(&headers).1 == FORM {
        params.parse(&body);
    }
    dlr(state, peer, params)
        .await
        .unwrap_or_else(IntoResponse::into_response)
}

/// What a Kannel report type (`%d`) means for the message.
pub(crate) fn report_for_type(t: u32) -> Option<(Report, &'static str)> {
    Some(match t {
        1 => (Report::Delivered, "kannel: delivered to the phone"),
        2 => (Report::Undelivered, "kannel: not delivered to the phone"),
        4 => (Report::Sent, "kannel: buffered at the SMSC"),
        8 => (Report::Sent, "kannel: accepted by the SMSC"),
        16 => (Report::Failed, "kannel: rejected by the SMSC"),
        _ => return None,
    })
}

async fn dlr<S: Backend>(
    state: IntakeState<S>,
    peer: SocketAddr,
    params: Params,
) -> Result<Response, Refusal> {
    authenticate(&state, peer, &params)?;
    let id: i64 = params
        .required("id", "the outbox id Hearth put in the dlr-url")?
        .parse()
        .ok()
        .filter(|id| *id > 0)
        .ok_or_else(|| IntakeError::BadRequest("parameter `id` is not an outbox id".into()))?;
    let kind: u32 = params
        .required("type", "the report type: `type=%d`")?
        .parse()
        .map_err(|_| IntakeError::BadRequest("parameter `type` is not a number".into()))?;
    let Some((report, detail)) = report_for_type(kind) else {
        tracing::warn!(
            outbox_id = id,
            dlr_type = kind,
            "kannel delivery report of an unknown type ignored"
        );
        return Ok(taken());
    };

    match state
        .store
        .apply_report(ReportFor::Outbox(id), report, Some(detail.to_owned()))
        .await
        .map_err(IntakeError::from)?
    {
        Some(now) => {
            tracing::info!(outbox_id = id, dlr_type = kind, state = %now, "kannel delivery report applied")
        }
        None => tracing::warn!(
            outbox_id = id,
            dlr_type = kind,
            "kannel delivery report for an unknown message ignored"
        ),
    }
    Ok(taken())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percent_decoding_keeps_bytes_and_reads_plus_as_space() {
        assert_eq!(percent_decode(b"a+b%20c"), b"a b c");
        assert_eq!(
            percent_decode(b"%00h%D8%3D%DEB"),
            [0, b'h', 0xD8, 0x3D, 0xDE, b'B']
        );
        assert_eq!(percent_decode(b"100%"), b"100%");
        assert_eq!(percent_decode(b"%4"), b"%4");
        assert_eq!(percent_decode(b"%zz"), b"%zz");
        assert_eq!(percent_decode(b"%41"), b"A");
    }

    #[test]
    fn texts_decode_by_charset_then_coding() {
        // What smsbox sends for a UCS-2 "hi 🙂 é" (%b with %C=UTF-16BE).
        let ucs2 = percent_decode(b"%00h%00i%00+%D8%3D%DEB%00+%00%E9");
        assert_eq!(decode_text(&ucs2, Some("UTF-16BE"), Some("2")), "hi 🙂 é");
        assert_eq!(decode_text(&ucs2, None, Some("2")), "hi 🙂 é");
        assert_eq!(
            decode_text("café".as_bytes(), Some("UTF-8"), Some("0")),
            "café"
        );
        assert_eq!(decode_text(b"caf\xe9", Some("ISO-8859-1"), None), "café");
        assert_eq!(decode_text(b"caf\xe9", Some("UTF-8"), None), "caf\u{fffd}");
    }

    #[test]
    fn report_types_map_to_states() {
        assert_eq!(report_for_type(1).unwrap().0, Report::Delivered);
        assert_eq!(report_for_type(2).unwrap().0, Report::Undelivered);
        assert_eq!(report_for_type(4).unwrap().0, Report::Sent);
        assert_eq!(report_for_type(8).unwrap().0, Report::Sent);
        assert_eq!(report_for_type(16).unwrap().0, Report::Failed);
        assert!(report_for_type(32).is_none());
    }

    #[test]
    fn an_international_prefix_becomes_plus() {
        assert_eq!(normalize_sender("0015555550101"), "+15555550101");
        assert_eq!(normalize_sender("+15555550101"), "+15555550101");
        assert_eq!(normalize_sender("CLINIC"), "CLINIC");
    }
}
