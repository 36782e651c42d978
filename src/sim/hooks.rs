//! Test hooks under `/sim`: not part of any real vendor. They let a test arrange what the vendor
//! knows (orders placed elsewhere, status changes), turn faults on and off, and read counters.
//! Faults never apply to them.

use std::sync::Arc;

use app::domain::Currency;
use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::routing::{get, post};
use axum::{Json, Router};
use chrono::{DateTime, Utc};
use serde::de::DeserializeOwned;
use serde::Deserialize;
use serde_json::Value;

use super::api::{parse_amount, ApiError};
use super::faults::{Faults, FaultsPatch};
use super::order::{new_order_id, Order, OrderStatus, OrderWire};
use super::state::{Sim, SimStats};

pub fn router() -> Router<Arc<Sim>> {
    Router::new()
        .route("/sim/orders", post(insert_order))
        .route("/sim/orders/{vendor_order_id}/status", post(change_status))
        .route("/sim/faults", get(get_faults).post(update_faults))
        .route("/sim/stats", get(stats))
        .route("/sim/reset", post(reset))
}

/// A body parsed strictly, with serde's one-line message as the 400.
fn parse_body<T: DeserializeOwned>(body: &[u8]) -> Result<T, ApiError> {
    serde_json::from_slice(body).map_err(|e| ApiError::invalid(e.to_string()))
}

/// An order as if placed through another channel. Only `brand_id`, `amount` and `currency` are
/// required; `status` defaults to `fulfilled`, times to now.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct InsertOrder {
    vendor_order_id: Option<String>,
    idempotency_key: Option<String>,
    customer_id: Option<String>,
    brand_id: String,
    amount: Value,
    currency: String,
    status: Option<String>,
    created_at: Option<DateTime<Utc>>,
    updated_at: Option<DateTime<Utc>>,
    /// Send an `order.created` webhook (default: no webhook).
    #[serde(default)]
    notify: bool,
}

fn non_empty(name: &str, value: Option<String>) -> Result<Option<String>, ApiError> {
    match value {
        Some(v) if v.trim().is_empty() => Err(ApiError::invalid(format!("{name} is empty"))),
        other => Ok(other),
    }
}

#[tracing::instrument(skip_all)]
async fn insert_order(
    State(sim): State<Arc<Sim>>,
    body: Bytes,
) -> Result<(StatusCode, Json<OrderWire>), ApiError> {
    let input: InsertOrder = parse_body(&body)?;
    let currency = Currency::parse(&input.currency)
        .map_err(|e| ApiError::invalid(format!("currency: {e}")))?;
    let amount = parse_amount(Some(&input.amount), currency).map_err(ApiError::invalid)?;
    let status = match &input.status {
        Some(s) => OrderStatus::parse(s).map_err(ApiError::invalid)?,
        None => OrderStatus::Fulfilled,
    };
    if input.brand_id.trim().is_empty() {
        return Err(ApiError::invalid("brand_id is empty"));
    }
    if let (Some(created), Some(updated)) = (input.created_at, input.updated_at) {
        if updated < created {
            return Err(ApiError::invalid(
                "updated_at must not be before created_at",
            ));
        }
    }
    let order = Order {
        vendor_order_id: non_empty("vendor_order_id", input.vendor_order_id)?
            .unwrap_or_else(new_order_id),
        idempotency_key: non_empty("idempotency_key", input.idempotency_key)?,
        customer_id: non_empty("customer_id", input.customer_id)?,
        brand_id: input.brand_id,
        amount,
        status,
        // Set by the store from the optional times below.
        created_at: DateTime::<Utc>::MIN_UTC,
        updated_at: DateTime::<Utc>::MIN_UTC,
    };
    // A missing created_at follows updated_at, so an order given only a past updated_at is
    // not created after it was last updated.
    let created_at = input.created_at.or(input.updated_at);
    let order = sim.insert(order, created_at, input.updated_at, input.notify)?;
    Ok((StatusCode::CREATED, Json(order.wire())))
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct ChangeStatus {
    status: String,
}

#[tracing::instrument(skip_all, fields(vendor_order_id = %vendor_order_id))]
async fn change_status(
    State(sim): State<Arc<Sim>>,
    Path(vendor_order_id): Path<String>,
    body: Bytes,
) -> Result<Json<OrderWire>, ApiError> {
    let input: ChangeStatus = parse_body(&body)?;
    let status = OrderStatus::parse(&input.status).map_err(ApiError::invalid)?;
    Ok(Json(sim.set_status(&vendor_order_id, status)?.wire()))
}

async fn get_faults(State(sim): State<Arc<Sim>>) -> Json<Faults> {
    Json(sim.faults())
}

/// Applies a partial update and answers the full settings.
#[tracing::instrument(skip_all)]
async fn update_faults(State(sim): State<Arc<Sim>>, body: Bytes) -> Result<Json<Faults>, ApiError> {
    let patch: FaultsPatch = parse_body(&body)?;
    let faults = sim
        .update_faults(&patch)
        .map_err(|e| ApiError::invalid(e.to_string()))?;
    tracing::info!(?faults, "fault settings changed");
    Ok(Json(faults))
}

async fn stats(State(sim): State<Arc<Sim>>) -> Json<SimStats> {
    Json(sim.stats())
}

async fn reset(State(sim): State<Arc<Sim>>) -> StatusCode {
    sim.reset();
    tracing::info!("orders and counters cleared");
    StatusCode::NO_CONTENT
}
