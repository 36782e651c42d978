//! The JSON API for integration engineers: `/api/v1/…`, authenticated with bearer tokens.

mod order_body;
pub mod orders;
pub mod problem;
pub mod reconciliation;

use std::sync::Arc;

use app::storage::tokens::{self, TokenOwner};
use app::storage::Db;
use axum::http::{header, HeaderMap};
use axum::routing::{get, post};
use axum::Router;
use tokio::sync::Notify;

use crate::config::OrderSettings;
use problem::Problem;

/// What the API handlers share.
#[derive(Clone)]
pub struct ApiState {
    pub db: Db,
    pub settings: OrderSettings,
    /// Wakes outbox workers when a job is queued, so placement starts at once.
    pub outbox_wake: Arc<Notify>,
    /// Group commit for verified webhooks.
    pub webhooks: crate::webhooks::WebhookBatcher,
    /// Each vendor's webhook verification keys, read at most once a second.
    pub webhook_keys: crate::webhooks::KeyCache,
}

impl ApiState {
    /// The API's state over `db`; `outbox_wake` is shared with this process's outbox workers.
    pub fn new(db: Db, settings: OrderSettings, outbox_wake: Arc<Notify>) -> ApiState {
        ApiState {
            webhooks: crate::webhooks::WebhookBatcher::spawn(db.clone()),
            webhook_keys: Default::default(),
            db,
            settings,
            outbox_wake,
        }
    }
}

pub fn router<S: Clone + Send + Sync + 'static>(state: ApiState) -> Router<S> {
    Router::new()
        .route(
            "/api/v1/orders",
            post(orders::create_order).get(orders::find_order),
        )
        .route("/api/v1/orders/bulk", post(orders::create_orders_bulk))
        .route("/api/v1/orders/{id}", get(orders::get_order))
        .route(
            "/api/v1/vendors/{vendor}/files",
            post(reconciliation::upload_vendor_file),
        )
        .route(
            "/api/v1/reconciliation/summary",
            get(reconciliation::summary),
        )
        .route(
            "/api/v1/reconciliation/discrepancies",
            get(reconciliation::discrepancies),
        )
        .merge(crate::webhooks::router(state.clone()))
        .with_state(state)
}

/// The token's owner, or 401. API tokens only open the API; browser sessions are separate.
pub async fn authenticate(db: &Db, headers: &HeaderMap) -> Result<TokenOwner, Problem> {
    let token = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .map(str::trim)
        .ok_or_else(Problem::unauthorized)?;
    tokens::authenticate(db, token)
        .await
        .map_err(problem::internal)?
        .ok_or_else(Problem::unauthorized)
}
