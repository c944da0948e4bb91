//! The admin API: incidents to read and act on.
//!
//! - `GET /api/incidents?state=&member=&limit=`: incidents, newest first
//!   (default: the unresolved ones, 100 at most).
//! - `GET /api/incidents/{id}`: one, with its evidence, its escalation and
//!   the notices sent about it.
//! - `POST /api/incidents/{id}/ack|resolve|escalate`: the same action as
//!   `ACK 42` by text or `hearth incidents ack 42`, by the actor `api`.
//!
//! Every route here and `/status` takes a bearer token from
//! `admin_tokens`, checked by one function ([`authorize`], constant-time
//! per token). Answers and errors are JSON; an error is
//! `{"error": "...", "hint": "..."}` (the hint when there is one).
//! Members are named by external id and contacts by id: no phone number,
//! address or notice body leaves through this API.

use std::collections::{BTreeMap, HashMap};

use axum::extract::rejection::QueryRejection;
use axum::extract::{FromRequestParts, Path, Query, State};
use axum::http::request::Parts;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use chrono::Utc;
use secrecy::{ExposeSecret, SecretString};
use serde_json::{Value, json};

use super::IntakeState;
use crate::domain::incident::{Incident, IncidentState};
use crate::escalate::act::{ActError, Action, Actor, act};
use crate::escalate::queries::{
    StateFilter, escalation_json, list_incidents, next_step_json, notice_json,
};
use crate::store::Backend;
use crate::store::StoreError;
use crate::store::traits::escalation::EscalationRow;
use crate::text::same_secret;

/// The most incidents one listing returns.
pub(crate) const MAX_LIMIT: usize = 1000;
/// The listing's size when `limit` is not given.
pub(crate) const DEFAULT_LIMIT: usize = 100;
/// The most escalating incidents `/status` lists.
pub(crate) const STATUS_ESCALATING: usize = 50;

/// Checks the `Authorization: Bearer` header against every admin token,
/// each compared in constant time, all of them compared whatever matched.
/// The reason when refused (for the log; the answer is 403 either way).
pub(crate) fn authorize(tokens: &[SecretString], headers: &HeaderMap) -> Result<(), &'static str> {
    let presented = headers
        .get(axum::http::header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| {
            let (scheme, token) = v.split_once(' ')?;
            scheme.eq_ignore_ascii_case("bearer").then(|| token.trim())
        })
        .ok_or("missing admin token")?;
    let ok = tokens.iter().fold(false, |ok, t| {
        ok | same_secret(t.expose_secret().as_bytes(), presented.as_bytes())
    });
    if ok { Ok(()) } else { Err("wrong admin token") }
}

/// A request that presented an admin token: an extractor, so a handler
/// that takes it cannot forget the check.
pub(crate) struct Admin;

impl<S: Backend> FromRequestParts<IntakeState<S>> for Admin {
    type Rejection = ApiError;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &IntakeState<S>,
    ) -> Result<Self, Self::Rejection> {
        authorize(&state.admin_tokens, &parts.headers)
            .map(|()| Admin)
            .map_err(ApiError::Forbidden)
    }
}

/// Errors of the admin API; the variant picks the status, the body is
/// `{"error": ..., "hint": ...}`. A store error says nothing outside and
/// everything in the log.
#[derive(Debug, thiserror::Error)]
pub(crate) enum ApiError {
    #[error("forbidden: {0}")]
    Forbidden(&'static str),
    #[error("{message}")]
    BadRequest {
        message: String,
        hint: Option<String>,
    },
    #[error("{message}")]
    NotFound {
        message: String,
        hint: Option<String>,
    },
    #[error("{message}")]
    Conflict {
        message: String,
        hint: Option<String>,
    },
    #[error(transparent)]
    Store(#[from] StoreError),
}

impl ApiError {
    fn bad(message: String, hint: impl Into<String>) -> ApiError {
        ApiError::BadRequest {
            message,
            hint: Some(hint.into()),
        }
    }
}

impl From<ActError> for ApiError {
    fn from(e: ActError) -> ApiError {
        match e {
            ActError::NotFound(id) => ApiError::NotFound {
                message: format!("no incident #{id}"),
                hint: Some("GET /api/incidents?state=open lists incidents and their ids".into()),
            },
            ActError::Resolved(id) => ApiError::Conflict {
                message: format!("incident #{id} is resolved"),
                hint: Some(format!(
                    "a resolved incident takes no more actions; GET /api/incidents/{id} shows who resolved it"
                )),
            },
            ActError::Store(e) => ApiError::Store(e),
            // Not reachable with an incident id and the API actor; kept
            // as refusals rather than 500s.
            other => ApiError::Conflict {
                message: other.to_string(),
                hint: None,
            },
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let (status, message, hint) = match self {
            ApiError::Forbidden(why) => {
                tracing::warn!(reason = why, "admin request refused");
                (StatusCode::FORBIDDEN, format!("forbidden: {why}"), None)
            }
            ApiError::BadRequest { message, hint } => {
                tracing::info!(error = %message, "admin request malformed");
                (StatusCode::BAD_REQUEST, message, hint)
            }
            ApiError::NotFound { message, hint } => (StatusCode::NOT_FOUND, message, hint),
            ApiError::Conflict { message, hint } => (StatusCode::CONFLICT, message, hint),
            ApiError::Store(e) => {
                tracing::error!(error.cause_chain = ?e, "admin request failed");
                (
                    StatusCode::INTERNAL_SERVER_ERROR,
                    "internal error".to_owned(),
                    None,
                )
            }
        };
        let mut body = json!({ "error": message });
        if let Some(hint) = hint {
            body["hint"] = hint.into();
        }
        (status, Json(body)).into_response()
    }
}

/// The fields of an incident the API shows, in this order.
const INCIDENT_KEYS: [&str; 12] = [
    "id",
    "alert",
    "severity",
    "state",
    "opened_at",
    "updated_at",
    "acknowledged_by",
    "acknowledged_how",
    "acknowledged_at",
    "resolved_by",
    "resolved_how",
    "resolved_at",
];

/// An incident as the API shows it: [`INCIDENT_KEYS`], the member by
/// external id (null for an unknown sender: never the number), and its
/// escalation (null when it has none, or only the empty row an incident
/// without a policy gets when someone acts on it).
pub(crate) fn incident_json(i: &Incident, escalation: Option<&EscalationRow>) -> Value {
    let full = serde_json::to_value(i).unwrap_or(Value::Null);
    let mut out = serde_json::Map::new();
    for key in INCIDENT_KEYS {
        out.insert(key.into(), full.get(key).cloned().unwrap_or(Value::Null));
    }
    out.insert("member".into(), i.member_external_id.clone().into());
    out.insert(
        "escalation".into(),
        escalation
            .filter(|e| !e.policy.is_empty())
            .map(escalation_json)
            .unwrap_or(Value::Null),
    );
    Value::Object(out)
}

fn parse_id(raw: &str) -> Result<i64, ApiError> {
    raw.parse::<i64>().map_err(|_| {
        ApiError::bad(
            format!("incident id `{raw}` is not a number"),
            "incident ids are whole numbers, e.g. /api/incidents/42",
        )
    })
}

/// `GET /api/incidents`.
async fn list<S: Backend>(
    _: Admin,
    State(state): State<IntakeState<S>>,
    query: Result<Query<BTreeMap<String, String>>, QueryRejection>,
) -> Result<Json<Value>, ApiError> {
    let Query(params) = query.map_err(|e| {
        ApiError::bad(
            format!("cannot read the query string: {e}"),
            "parameters are state, member and limit",
        )
    })?;
    if let Some(unknown) = params
        .keys()
        .find(|k| !["state", "member", "limit"].contains(&k.as_str()))
    {
        return Err(ApiError::bad(
            format!("unknown parameter `{unknown}`"),
            "parameters are state, member and limit",
        ));
    }
    let filter = match params.get("state") {
        None => StateFilter::Unresolved,
        Some(s) => StateFilter::parse(s).ok_or_else(|| {
            ApiError::bad(
                format!("unknown state `{s}`"),
                format!("state is one of {}", StateFilter::NAMES),
            )
        })?,
    };
    let limit = match params.get("limit") {
        None => DEFAULT_LIMIT,
        Some(raw) => raw
            .parse::<usize>()
            .ok()
            .filter(|n| (1..=MAX_LIMIT).contains(n))
            .ok_or_else(|| {
                ApiError::bad(
                    format!("limit `{raw}` is not a number from 1 to {MAX_LIMIT}"),
                    format!("leave it out for {DEFAULT_LIMIT}"),
                )
            })?,
    };
    let member = params.get("member").cloned();
    if let Some(ext) = &member
        && state.store.member(ext).await?.is_none()
    {
        return Err(ApiError::bad(
            format!("no member `{ext}`"),
            "members are named by their external id, as in the roster",
        ));
    }
    let rows = list_incidents(&state.store, Some(filter), member, limit).await?;
    let mut escalations: HashMap<i64, EscalationRow> = state
        .store
        .open_escalations()
        .await?
        .into_iter()
        .map(|e| (e.incident_id, e))
        .collect();
    let mut out = Vec::with_capacity(rows.len());
    for i in &rows {
        // Resolved incidents are not among the open escalations.
        let escalation = match escalations.remove(&i.id) {
            Some(e) => Some(e),
            None if i.state == IncidentState::Resolved => state.store.escalation(i.id).await?,
            None => None,
        };
        out.push(incident_json(i, escalation.as_ref()));
    }
    Ok(Json(json!({ "incidents": out })))
}

/// `GET /api/incidents/{id}`.
async fn show<S: Backend>(
    _: Admin,
    State(state): State<IntakeState<S>>,
    Path(raw): Path<String>,
) -> Result<Json<Value>, ApiError> {
    let id = parse_id(&raw)?;
    let Some(incident) = state.store.incident(id).await? else {
        return Err(ActError::NotFound(id).into());
    };
    let escalation = state.store.escalation(id).await?;
    let notices = state.store.notices(id).await?;
    let mut v = incident_json(&incident, escalation.as_ref());
    v["evidence"] = serde_json::to_value(&incident.evidence).unwrap_or_default();
    v["notices"] = notices.iter().map(notice_json).collect();
    Ok(Json(v))
}

/// `POST /api/incidents/{id}/{action}`.
async fn action<S: Backend>(
    _: Admin,
    State(state): State<IntakeState<S>>,
    Path((raw, action)): Path<(String, String)>,
) -> Result<Json<Value>, ApiError> {
    let id = parse_id(&raw)?;
    let action = match action.as_str() {
        "ack" => Action::Ack,
        "resolve" => Action::Resolve,
        "escalate" => Action::Escalate,
        other => {
            return Err(ApiError::bad(
                format!("unknown action `{other}`"),
                format!("POST /api/incidents/{id}/ack, /resolve or /escalate"),
            ));
        }
    };
    // An action that comes before the timer has pinned the incident's
    // policy pins it from the live rules.
    let rules = state.rules.current();
    let acted = act(
        &state.store,
        Some(&rules),
        Some(id),
        action,
        &Actor::Api,
        Utc::now(),
    )
    .await?;
    tracing::info!(
        incident = id,
        action = action.as_str(),
        "incident action through the admin API"
    );
    // The engine delivers the notices the action queued at once.
    state.escalation_wake.notify_one();
    Ok(Json(serde_json::to_value(&acted).unwrap_or_default()))
}

/// `/status`'s `incidents`: counts by state, and the escalating incidents
/// (unresolved, with an escalation), oldest first, at most
/// [`STATUS_ESCALATING`].
pub(crate) async fn status_incidents(store: &impl Backend) -> Result<Value, StoreError> {
    let counts = store.incident_counts().await?;
    let mut escalating = store.open_escalations().await?;
    escalating.retain(|e| !e.policy.is_empty());
    escalating.sort_by_key(|e| (e.opened_at, e.incident_id));
    let escalating: Vec<Value> = escalating
        .iter()
        .take(STATUS_ESCALATING)
        .map(|e| {
            let mut v = json!({
                "id": e.incident_id,
                "alert": e.alert,
                "severity": e.severity,
                "state": e.state,
                "next_position": e.next_position,
                "next_due": e.next_due,
                "exhausted": e.exhausted,
            });
            for (k, x) in next_step_json(e) {
                v[k] = x;
            }
            v
        })
        .collect();
    Ok(json!({
        "open": counts.open,
        "acknowledged": counts.acknowledged,
        "open_critical": counts.critical_unresolved,
        "escalating": escalating,
    }))
}

/// The admin API's routes.
pub(crate) fn routes<S: Backend>() -> Router<IntakeState<S>> {
    Router::new()
        .route("/api/incidents", get(list::<S>))
        .route("/api/incidents/{id}", get(show::<S>))
        .route("/api/incidents/{id}/{action}", post(action::<S>))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(auth: &str) -> HeaderMap {
        let mut h = HeaderMap::new();
        h.insert(axum::http::header::AUTHORIZATION, auth.parse().unwrap());
        h
    }

    #[test]
    fn any_admin_token_is_accepted_by_bearer_and_nothing_else_is() {
        let tokens = [
            SecretString::from("first-token"),
            SecretString::from("second-token"),
        ];
        assert_eq!(authorize(&tokens, &headers("Bearer first-token")), Ok(()));
        assert_eq!(authorize(&tokens, &headers("bearer second-token")), Ok(()));
        assert_eq!(
            authorize(&tokens, &HeaderMap::new()),
            Err("missing admin token")
        );
        for wrong in [
            "Bearer third-token",
            "Bearer first-toke",
            "Bearer first-token2",
            "Bearer ",
            "Basic first-token",
            "first-token",
        ] {
            assert!(authorize(&tokens, &headers(wrong)).is_err(), "{wrong}");
        }
        assert!(authorize(&[], &headers("Bearer first-token")).is_err());
    }
}
