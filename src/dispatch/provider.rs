//! The one shape every SMS gateway adapter has.
//!
//! An adapter turns an [`Outgoing`] message into one provider request and
//! classifies the answer: accepted (with the provider's message id),
//! transient (try again later, perhaps after `Retry-After`), opted out at
//! the provider (stop, and revoke consent), permanent (give up), or
//! ambiguous (the request went out and no answer came back: it may have
//! been sent). An ambiguous outcome is reconciled where the provider can
//! look a message up ([`AnyProvider::reconcile`]) before anything is sent
//! again.

use std::future::Future;
use std::time::Duration;

use crate::domain::Phone;
use crate::settings::{ProviderSettings, Settings};

use super::providers::{
    console::ConsoleProvider, kannel::KannelProvider, twilio::TwilioProvider,
    webhook::WebhookProvider,
};
pub use super::setup_error::SetupError;

/// A message on its way to a provider.
#[derive(Clone)]
pub struct Outgoing {
    pub outbox_id: i64,
    pub member_id: Option<i64>,
    pub to: Phone,
    pub body: String,
    pub segments: usize,
}

impl std::fmt::Debug for Outgoing {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Outgoing")
            .field("outbox_id", &self.outbox_id)
            .field("member_id", &self.member_id)
            .field("segments", &self.segments)
            .finish_non_exhaustive()
    }
}

/// The provider took the message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Accepted {
    /// Its id for the message, to match delivery reports by.
    pub provider_message_id: Option<String>,
}

/// Why a provider did not take a message. Reasons never carry the number
/// or the body.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SendError {
    /// Timeouts, connection errors, 5xx, 429, carrier throttling.
    #[error("transient: {reason}")]
    Transient {
        reason: String,
        retry_after: Option<Duration>,
    },
    /// The number opted out at the provider (Twilio 21610).
    #[error("opted out at the provider: {reason}")]
    OptedOut { reason: String },
    /// Invalid number, rejected content, bad credentials: retrying won't help.
    #[error("permanent: {reason}")]
    Permanent { reason: String },
    /// The request may have reached the provider but no answer came back
    /// (a timeout after sending, a connection dropped before the status):
    /// it may have been sent.
    #[error("ambiguous: {reason}")]
    Ambiguous { reason: String },
}

/// What a provider's records say about a message whose send was ambiguous.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Reconciled {
    /// The provider has it: it was sent.
    Found(Accepted),
    /// The provider looked and has no such message.
    NotFound,
    /// The provider cannot look messages up (Kannel, webhook, console).
    Unsupported,
}

impl SendError {
    pub(crate) fn transient(reason: impl Into<String>) -> SendError {
        SendError::Transient {
            reason: reason.into(),
            retry_after: None,
        }
    }

    pub(crate) fn permanent(reason: impl Into<String>) -> SendError {
        SendError::Permanent {
            reason: reason.into(),
        }
    }
}

/// An SMS gateway adapter. One file per adapter under `providers/`.
pub trait Provider: Send + Sync + 'static {
    /// `twilio`, `kannel`, `webhook`, `console`: stored with each message.
    fn name(&self) -> &'static str;

    fn send(&self, msg: &Outgoing) -> impl Future<Output = Result<Accepted, SendError>> + Send;
}

/// The configured provider (enum dispatch: the trait's async method is not
/// object-safe, and there are four of them).
pub enum AnyProvider {
    Console(ConsoleProvider),
    Twilio(TwilioProvider),
    Kannel(KannelProvider),
    Webhook(WebhookProvider),
}

impl AnyProvider {
    /// Builds the provider the settings name, resolving its secrets.
    pub(crate) fn from_settings(settings: &Settings) -> Result<AnyProvider, SetupError> {
        let timeout = settings.dispatch.timeout;
        Ok(match &settings.provider {
            ProviderSettings::Console { output } => {
                AnyProvider::Console(ConsoleProvider::new(output.clone())?)
            }
            p @ ProviderSettings::Twilio { .. } => {
                AnyProvider::Twilio(TwilioProvider::from_settings(p, settings, timeout)?)
            }
            p @ ProviderSettings::Kannel { .. } => {
                AnyProvider::Kannel(KannelProvider::from_settings(p, settings, timeout)?)
            }
            ProviderSettings::Webhook { url, signing_key } => {
                AnyProvider::Webhook(WebhookProvider::new(url, signing_key.resolve()?, timeout)?)
            }
        })
    }

    pub(crate) fn name(&self) -> &'static str {
        match self {
            AnyProvider::Console(p) => p.name(),
            AnyProvider::Twilio(p) => p.name(),
            AnyProvider::Kannel(p) => p.name(),
            AnyProvider::Webhook(p) => p.name(),
        }
    }

    pub(crate) async fn send(&self, msg: &Outgoing) -> Result<Accepted, SendError> {
        match self {
            AnyProvider::Console(p) => p.send(msg).await,
            AnyProvider::Twilio(p) => p.send(msg).await,
            AnyProvider::Kannel(p) => p.send(msg).await,
            AnyProvider::Webhook(p) => p.send(msg).await,
        }
    }

    /// Looks up a message whose send was ambiguous, sent no earlier than
    /// `since`. Only Twilio can; an error looking is `Err`.
    pub(crate) async fn reconcile(
        &self,
        msg: &Outgoing,
        since: chrono::DateTime<chrono::Utc>,
    ) -> Result<Reconciled, SendError> {
        match self {
            AnyProvider::Twilio(p) => p.reconcile(msg, since).await,
            _ => Ok(Reconciled::Unsupported),
        }
    }
}

/// Classifies an HTTP answer that is not a success the adapter understood:
/// 408, 425, 429 and 5xx are transient (honouring `Retry-After` seconds),
/// other 4xx permanent.
pub(crate) fn classify_http(
    status: reqwest::StatusCode,
    retry_after: Option<&reqwest::header::HeaderValue>,
    detail: &str,
) -> SendError {
    let reason = if detail.is_empty() {
        format!("HTTP {}", status.as_u16())
    } else {
        format!("HTTP {}: {detail}", status.as_u16())
    };
    let transient = status.is_server_error() || matches!(status.as_u16(), 408 | 425 | 429);
    if transient {
        SendError::Transient {
            reason,
            retry_after: retry_after
                .and_then(|v| v.to_str().ok())
                .and_then(parse_retry_after),
        }
    } else {
        SendError::Permanent { reason }
    }
}

/// `Retry-After` as seconds (`120`) or an HTTP date
/// (`Wed, 21 Oct 2026 07:28:00 GMT`).
pub(crate) fn parse_retry_after(value: &str) -> Option<Duration> {
    let v = value.trim();
    if let Ok(secs) = v.parse::<u64>() {
        return Some(Duration::from_secs(secs));
    }
    let at = httpdate::parse_http_date(v).ok()?;
    Some(
        at.duration_since(std::time::SystemTime::now())
            .unwrap_or(Duration::ZERO),
    )
}

/// Classifies a request that got no HTTP answer at all. Could not connect
/// is transient (nothing was sent); a timeout or a connection lost after
/// the request went out is ambiguous (it may have been sent).
pub(crate) fn classify_transport(e: &reqwest::Error) -> SendError {
    if e.is_connect() {
        return SendError::transient(format!("could not connect: {}", without_url(e)));
    }
    let what = if e.is_timeout() {
        "timed out"
    } else {
        "request failed"
    };
    SendError::Ambiguous {
        reason: format!("{what} after the request was sent: {}", without_url(e)),
    }
}

/// reqwest's messages include the URL, which for some gateways carries
/// credentials or the number in its query: drop it.
fn without_url(e: &reqwest::Error) -> String {
    let mut text = e.to_string();
    if let Some(url) = e.url() {
        text = text.replace(url.as_str(), "<url>");
    }
    text
}

/// A shared HTTP client with keep-alive and the dispatch timeout.
pub(crate) fn http_client(timeout: Duration) -> Result<reqwest::Client, SetupError> {
    reqwest::Client::builder()
        .timeout(timeout)
        .pool_idle_timeout(Duration::from_secs(90))
        .user_agent(concat!("hearth/", env!("CARGO_PKG_VERSION")))
        .build()
        .map_err(SetupError::HttpClient)
}

#[cfg(test)]
mod tests {
    use super::*;
    use reqwest::StatusCode;
    use reqwest::header::HeaderValue;

    #[test]
    fn http_answers_are_classified() {
        let ra = HeaderValue::from_static("7");
        assert_eq!(
            classify_http(StatusCode::TOO_MANY_REQUESTS, Some(&ra), ""),
            SendError::Transient {
                reason: "HTTP 429".into(),
                retry_after: Some(Duration::from_secs(7))
            }
        );
        assert!(matches!(
            classify_http(StatusCode::BAD_GATEWAY, None, "x"),
            SendError::Transient {
                retry_after: None,
                ..
            }
        ));
        let later = httpdate::fmt_http_date(std::time::SystemTime::now() + Duration::from_secs(30));
        let d = parse_retry_after(&later).unwrap();
        assert!(
            d > Duration::from_secs(25) && d <= Duration::from_secs(30),
            "{d:?}"
        );
        assert_eq!(
            parse_retry_after("Wed, 21 Oct 2015 07:28:00 GMT"),
            Some(Duration::ZERO)
        );
        assert!(matches!(
            classify_http(StatusCode::BAD_REQUEST, None, "x"),
            SendError::Permanent { .. }
        ));
        assert!(matches!(
            classify_http(StatusCode::UNAUTHORIZED, None, "x"),
            SendError::Permanent { .. }
        ));
    }
}
