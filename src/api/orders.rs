//! `POST /api/v1/orders`, bulk ordering and order lookup, with IETF idempotency-key semantics.

use app::domain::{FieldError, OrderRequest};
use app::storage::idempotency::{self, Claim};
use app::storage::orders::{self, Created, Order, OrderEvent, Source, StoredResponse};
use app::storage::{brands, vendors, StorageError};
use axum::body::{to_bytes, Body};
use axum::extract::{Path, Query, State};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use serde_json::value::RawValue;
use serde_json::{json, Value};

use super::order_body::parse_order;
use super::problem::{internal, Problem};
use super::{authenticate, ApiState};

/// How long one request holds its key before another may take over (if it died).
const KEY_LOCK: chrono::Duration = chrono::Duration::seconds(30);
/// Most orders in one bulk request.
pub const MAX_BULK_ORDERS: usize = 1000;

/// The order as the API shows it.
pub fn order_json(order: &Order, events: Option<&[OrderEvent]>) -> Value {
    let mut value = json!({
        "id": order.id,
        "idempotency_key": order.idempotency_key,
        "vendor": order.vendor_id,
        "vendor_key": order.vendor_key,
        "customer_id": order.customer_id,
        "brand_id": order.brand_id,
        "amount": order.amount.amount_string(),
        "currency": order.amount.currency().code(),
        "status": order.submission,
        "gl_state": order.gl_state.as_str(),
        "vendor_order_id": order.vendor_order_id,
        "vendor_status": order.vendor_status,
        "attention_reason": order.attention_reason,
        "source": order.source,
        "created_at": order.created_at,
        "updated_at": order.updated_at,
    });
    if let Some(events) = events {
        value["events"] = events
            .iter()
            .map(|e| {
                json!({
                    "kind": e.kind,
                    "at": e.created_at,
                    "actor": e.actor,
                    "detail": serde_json::from_str::<Value>(&e.detail).unwrap_or(Value::Null),
                })
            })
            .collect();
    }
    value
}

async fn read_body(body: Body, limit: usize) -> Result<axum::body::Bytes, Problem> {
    to_bytes(body, limit).await.map_err(|_| {
        Problem::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            "/problems/body-too-large",
            "Request body too large",
            format!("the body must be at most {limit} bytes"),
        )
    })
}

fn not_json() -> Problem {
    Problem::invalid(
        StatusCode::BAD_REQUEST,
        vec![FieldError::new("body", "is not valid JSON")],
    )
}

/// Checks that vendor and brand exist (422 naming the field otherwise).
async fn check_catalog(state: &ApiState, request: &OrderRequest) -> Result<(), Problem> {
    match vendors::get_vendor(&state.db, &request.vendor).await {
        Ok(_) => {}
        Err(StorageError::NotFound { .. }) => {
            return Err(Problem::invalid(
                StatusCode::UNPROCESSABLE_ENTITY,
                vec![FieldError::new(
                    "vendor",
                    format!("unknown vendor {:?}", request.vendor.as_str()),
                )],
            ))
        }
        Err(e) => return Err(internal(e)),
    }
    if !brands::exists(&state.db, &request.vendor, &request.brand_id)
        .await
        .map_err(internal)?
    {
        return Err(Problem::invalid(
            StatusCode::UNPROCESSABLE_ENTITY,
            vec![FieldError::new(
                "brand_id",
                format!(
                    "unknown brand {:?} for vendor {:?}",
                    request.brand_id,
                    request.vendor.as_str()
                ),
            )],
        ));
    }
    Ok(())
}

/// An answer: status and JSON body, and whether it replays an earlier one.
struct Answer {
    status: StatusCode,
    body: String,
    replayed: bool,
    retry_after: Option<u64>,
}

impl Answer {
    fn problem(p: Problem) -> Answer {
        Answer {
            status: p.status_code(),
            body: p.to_json(),
            replayed: false,
            retry_after: p.retry_after,
        }
    }

    fn is_problem(&self) -> bool {
        !self.status.is_success()
    }

    fn into_response(self) -> Response {
        let content_type = if self.is_problem() {
            "application/problem+json"
        } else {
            "application/json"
        };
        let mut response = (self.status, self.body).into_response();
        let headers = response.headers_mut();
        headers.insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
        if self.replayed {
            headers.insert("idempotent-replayed", HeaderValue::from_static("true"));
        }
        if let Some(seconds) = self.retry_after {
            headers.insert(header::RETRY_AFTER, HeaderValue::from(seconds));
        }
        response
    }
}

/// Validates, claims the key and creates the order: the one path every order request takes.
async fn submit(
    state: &ApiState,
    owner: &str,
    raw: &RawValue,
    header_key: Option<&str>,
    source: Source,
) -> Answer {
    let request = match parse_order(raw, header_key) {
        Ok(r) => r,
        Err(p) => return Answer::problem(p),
    };
    if let Err(p) = check_catalog(state, &request).await {
        return Answer::problem(p);
    }
    let key = request.idempotency_key.as_str();
    let fingerprint = request.fingerprint();
    let retention = chrono::Duration::days(i64::from(state.settings.idempotency_retention_days));
    let claim =
        match idempotency::claim(&state.db, owner, key, &fingerprint, KEY_LOCK, retention).await {
            Ok(c) => c,
            Err(e) => return Answer::problem(internal(e)),
        };
    match claim {
        Claim::Replay { status, body } => Answer {
            status: StatusCode::from_u16(status).unwrap_or(StatusCode::OK),
            body,
            replayed: true,
            retry_after: None,
        },
        Claim::Mismatch => Answer::problem(key_reused()),
        Claim::InProgress => {
            let mut p = Problem::new(
                StatusCode::CONFLICT,
                "/problems/request-in-progress",
                "A request with this idempotency key is in progress",
                "retry shortly with the same key to get its response",
            );
            p.retry_after = Some(1);
            Answer::problem(p)
        }
        Claim::Acquired => create(state, owner, &request, &fingerprint, source).await,
    }
}

fn key_reused() -> Problem {
    Problem::new(
        StatusCode::UNPROCESSABLE_ENTITY,
        "/problems/idempotency-key-reused",
        "Idempotency key reused",
        "this idempotency key was already used for a different request; use a new key for a new order",
    )
}

async fn create(
    state: &ApiState,
    owner: &str,
    request: &OrderRequest,
    fingerprint: &str,
    source: Source,
) -> Answer {
    let key = request.idempotency_key.as_str();
    let order = orders::build_order(request, owner, source);
    let body = order_json(&order, None).to_string();
    let stored = StoredResponse {
        status: StatusCode::CREATED.as_u16(),
        body: body.clone(),
    };
    match orders::create_order(&state.db, &order, Some(owner), Some(&stored)).await {
        Ok(Created::New) => {
            metrics::counter!("giftrecon_orders_created_total", "source" => source.as_str())
                .increment(1);
            state.outbox_wake.notify_waiters();
            Answer {
                status: StatusCode::CREATED,
                body,
                replayed: false,
                retry_after: None,
            }
        }
        // The order outlived its idempotency record (past retention): answer from the order.
        Ok(Created::Exists(existing)) => {
            if existing.request_hash != fingerprint {
                let _ = idempotency::release(&state.db, owner, key).await;
                return Answer::problem(key_reused());
            }
            let body = order_json(&existing, None).to_string();
            if let Err(e) =
                idempotency::complete(&state.db, owner, key, 200, &body, Some(&existing.id)).await
            {
                return Answer::problem(internal(e));
            }
            Answer {
                status: StatusCode::OK,
                body,
                replayed: true,
                retry_after: None,
            }
        }
        Err(e) => {
            let _ = idempotency::release(&state.db, owner, key).await;
            Answer::problem(internal(e))
        }
    }
}

#[tracing::instrument(skip_all)]
pub async fn create_order(
    State(state): State<ApiState>,
    headers: HeaderMap,
    body: Body,
) -> Result<Response, Problem> {
    let owner = authenticate(&state.db, &headers).await?;
    let bytes = read_body(body, state.settings.max_body_bytes).await?;
    let raw: Box<RawValue> = serde_json::from_slice(&bytes).map_err(|_| not_json())?;
    let header_key = match headers.get("idempotency-key").map(|v| v.to_str()) {
        None => None,
        Some(Ok(v)) => Some(v),
        Some(Err(_)) => {
            return Err(Problem::invalid(
                StatusCode::BAD_REQUEST,
                vec![FieldError::new(
                    "idempotency_key",
                    "the Idempotency-Key header must be printable ASCII",
                )],
            ))
        }
    };
    Ok(submit(&state, &owner.name, &raw, header_key, Source::Api)
        .await
        .into_response())
}

/// `POST /api/v1/orders/bulk`: a JSON array of orders, each with its own key; every item is
/// handled exactly as a single request would be, and the answer lists each item's outcome.
#[tracing::instrument(skip_all)]
pub async fn create_orders_bulk(
    State(state): State<ApiState>,
    headers: HeaderMap,
    body: Body,
) -> Result<Response, Problem> {
    let owner = authenticate(&state.db, &headers).await?;
    let limit = state
        .settings
        .max_body_bytes
        .saturating_mul(MAX_BULK_ORDERS)
        .min(64 << 20);
    let bytes = read_body(body, limit).await?;
    let items: Vec<Box<RawValue>> = serde_json::from_slice(&bytes).map_err(|_| {
        Problem::invalid(
            StatusCode::BAD_REQUEST,
            vec![FieldError::new("body", "must be a JSON array of orders")],
        )
    })?;
    if items.len() > MAX_BULK_ORDERS {
        return Err(Problem::invalid(
            StatusCode::PAYLOAD_TOO_LARGE,
            vec![FieldError::new(
                "body",
                format!(
                    "holds {} orders; send at most {MAX_BULK_ORDERS} per request",
                    items.len()
                ),
            )],
        ));
    }
    let mut results = Vec::with_capacity(items.len());
    let (mut created, mut replayed, mut failed) = (0, 0, 0);
    for (index, item) in items.iter().enumerate() {
        let answer = submit(&state, &owner.name, item, None, Source::Bulk).await;
        match (answer.is_problem(), answer.replayed) {
            (true, _) => failed += 1,
            (false, true) => replayed += 1,
            (false, false) => created += 1,
        }
        results.push(json!({
            "index": index,
            "status": answer.status.as_u16(),
            "replayed": answer.replayed,
            "body": serde_json::from_str::<Value>(&answer.body).unwrap_or(Value::Null),
        }));
    }
    Ok(axum::Json(json!({
        "created": created,
        "replayed": replayed,
        "failed": failed,
        "results": results,
    }))
    .into_response())
}

#[derive(Deserialize)]
pub struct KeyQuery {
    idempotency_key: Option<String>,
}

/// `GET /api/v1/orders?idempotency_key=…`
pub async fn find_order(
    State(state): State<ApiState>,
    headers: HeaderMap,
    Query(query): Query<KeyQuery>,
) -> Result<Response, Problem> {
    let owner = authenticate(&state.db, &headers).await?;
    let Some(key) = query.idempotency_key.filter(|k| !k.is_empty()) else {
        return Err(Problem::invalid(
            StatusCode::BAD_REQUEST,
            vec![FieldError::new(
                "idempotency_key",
                "is required as a query parameter",
            )],
        ));
    };
    let order = orders::find_by_key(&state.db, &owner.name, &key)
        .await
        .map_err(internal)?
        .ok_or_else(|| Problem::not_found("order with this idempotency key"))?;
    with_events(&state, order).await
}

/// `GET /api/v1/orders/{id}`: callers see their own orders.
pub async fn get_order(
    State(state): State<ApiState>,
    headers: HeaderMap,
    Path(id): Path<String>,
) -> Result<Response, Problem> {
    let owner = authenticate(&state.db, &headers).await?;
    let order = orders::get(&state.db, &id)
        .await
        .map_err(internal)?
        .filter(|order| order.owner == owner.name)
        .ok_or_else(|| Problem::not_found("such order"))?;
    with_events(&state, order).await
}

async fn with_events(state: &ApiState, order: Order) -> Result<Response, Problem> {
    let events = orders::events(&state.db, &order.id)
        .await
        .map_err(internal)?;
    Ok(axum::Json(order_json(&order, Some(&events))).into_response())
}
