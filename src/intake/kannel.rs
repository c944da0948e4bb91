//! Kannel MO and DLR endpoints (being written; placeholder with no routes).

use axum::Router;

use super::IntakeState;

pub fn routes() -> Router<IntakeState> {
    Router::new()
}
