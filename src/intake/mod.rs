//! The HTTP intake: provider webhooks in, status out.
//!
//! - [`twilio`]: `POST /webhooks/twilio/sms` and `/webhooks/twilio/status`,
//!   verified by `X-Twilio-Signature` before anything else.
//! - [`kannel`]: `/webhooks/kannel/mo` and `/webhooks/kannel/dlr`, verified by
//!   a shared secret and an address allow-list.
//! - [`admin`]: the admin API (incidents: list, show, ack, resolve,
//!   escalate), behind the admin bearer token.
//! - `GET /healthz` (open) and `GET /status` (admin token): liveness; the
//!   rule set's reload status, the dispatcher's and reply pipeline's
//!   counts, incidents by state and the escalating ones with their step.
//!
//! Every inbound text is stored before the answer goes back, so a 200 means
//! it is safe; a provider retrying the same message id stores nothing new.
//! Errors choose the status code; a 500 says nothing outside, everything in
//! the log.

pub(crate) mod admin;
pub(crate) mod kannel;
pub mod twilio;

use std::net::SocketAddr;
use std::sync::Arc;

use axum::extract::{DefaultBodyLimit, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use secrecy::SecretString;
use tokio::net::TcpListener;
use tokio::sync::Notify;
use tokio_util::sync::CancellationToken;

use crate::config::reload::LiveRules;
use crate::domain::message::{InboundSms, Received};
use crate::settings::Settings;
use crate::store::Backend;
use crate::store::StoreError;

/// What every handler can reach.
#[derive(Clone)]
pub struct IntakeState<S> {
    pub store: S,
    pub rules: Arc<LiveRules>,
    pub settings: Arc<Settings>,
    /// Woken after an inbound text is stored, for the pipeline.
    pub inbound_wake: Arc<Notify>,
    /// Each newly stored text, handed to the pipeline at once so a crisis
    /// text is decided ahead of any queue (`None`: the queue only).
    pub arrivals: Option<tokio::sync::mpsc::UnboundedSender<crate::domain::message::InboundRow>>,
    /// Bearer tokens for `/status` and the admin API.
    pub admin_tokens: Arc<Vec<SecretString>>,
    /// The dispatcher's counts (possible duplicates, breaker openings…),
    /// shown on `/status`.
    pub dispatch: Arc<crate::dispatch::worker::Counters>,
    /// Woken after an acknowledgement through the admin API, so the
    /// escalation engine delivers its notices at once.
    pub escalation_wake: Arc<Notify>,
}

/// Errors at the HTTP edge; the variant picks the status.
#[derive(Debug, thiserror::Error)]
pub(crate) enum IntakeError {
    /// Signature, secret or address check failed. Nothing is stored.
    #[error("forbidden: {0}")]
    Forbidden(&'static str),
    #[error("bad request: {0}")]
    BadRequest(String),
    #[error(transparent)]
    Store(#[from] StoreError),
}

impl IntoResponse for IntakeError {
    fn into_response(self) -> Response {
        match &self {
            IntakeError::Forbidden(why) => {
                tracing::warn!(reason = why, "intake request refused");
                (StatusCode::FORBIDDEN, "forbidden\n").into_response()
            }
            IntakeError::BadRequest(why) => {
                tracing::warn!(reason = %why, "intake request malformed");
                (StatusCode::BAD_REQUEST, format!("bad request: {why}\n")).into_response()
            }
            IntakeError::Store(e) => {
                tracing::error!(error.cause_chain = ?e, "intake request failed");
                (StatusCode::INTERNAL_SERVER_ERROR, "internal error\n").into_response()
            }
        }
    }
}

impl<S: Backend> IntakeState<S> {
    /// Stores an inbound text (idempotent on the provider's id) and wakes
    /// the pipeline. The one path for every provider and `hearth inject`.
    pub(crate) async fn receive(&self, sms: InboundSms) -> Result<Received, StoreError> {
        let provider = sms.provider.clone();
        let copy = self.arrivals.as_ref().map(|_| sms.clone());
        let received = self.store.record_inbound(sms).await?;
        match received {
            Received::New(id) => {
                tracing::info!(inbound_id = id, provider = %provider, "inbound text stored");
                if let (Some(tx), Some(sms)) = (&self.arrivals, copy) {
                    let _ = tx.send(crate::domain::message::InboundRow {
                        id,
                        sms,
                        member_id: None,
                        received_at: chrono::Utc::now(),
                    });
                }
                self.inbound_wake.notify_one();
            }
            Received::Duplicate(id) => {
                tracing::info!(inbound_id = id, provider = %provider, "inbound text already stored (provider retry)")
            }
        }
        Ok(received)
    }
}

async fn healthz() -> &'static str {
    "ok\n"
}

async fn status<S: Backend>(
    _: admin::Admin,
    State(state): State<IntakeState<S>>,
) -> Result<Json<serde_json::Value>, admin::ApiError> {
    Ok(Json(serde_json::json!({
        "rules": state.rules.status(),
        "dispatch": state.dispatch.snapshot(),
        "replies": { "script_failures": crate::pipeline::alerts::script_failures() },
        "incidents": admin::status_incidents(&state.store).await?,
    })))
}

/// The whole router.
pub fn router<S: Backend>(state: IntakeState<S>) -> Router {
    let limit = state.settings.intake.max_body;
    Router::new()
        .route("/healthz", get(healthz))
        .route("/status", get(status::<S>))
        .merge(twilio::routes())
        .merge(kannel::routes())
        .merge(admin::routes())
        .layer(DefaultBodyLimit::max(limit))
        .with_state(state)
}

/// Binds the listen address (port 0 picks a free port).
pub(crate) async fn bind(addr: SocketAddr) -> std::io::Result<TcpListener> {
    TcpListener::bind(addr).await
}

/// Serves until `shutdown`, then lets requests in flight finish.
pub(crate) async fn serve(
    listener: TcpListener,
    router: Router,
    shutdown: CancellationToken,
) -> std::io::Result<()> {
    axum::serve(
        listener,
        router.into_make_service_with_connect_info::<SocketAddr>(),
    )
    .with_graceful_shutdown(async move { shutdown.cancelled().await })
    .await
}
