//! The generic vendor API (`/api/v1`), behind the request faults.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use app::domain::{Currency, IdempotencyKey, Money};
use axum::body::{Body, Bytes};
use axum::extract::rejection::QueryRejection;
use axum::extract::{Path, Query, Request, State};
use axum::http::{header, StatusCode};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::{json, Map, Value};

use super::lock;
use super::order::{Order, OrderRequest, OrderWire};
use super::state::{bump, Sim};
use super::store::{Cursor, Placed, StoreError, Window};

/// Default and largest `limit` of a reconciliation page.
pub const DEFAULT_PAGE_LIMIT: usize = 100;
pub const MAX_PAGE_LIMIT: usize = 1000;

/// Longest accepted customer or brand id.
const MAX_ID_LEN: usize = 255;

/// The CSV export's columns, in order.
pub const CSV_HEADER: [&str; 9] = crate::vendor_file::FIELDS;

/// One page of `GET /api/v1/reconciliation`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ReconciliationPage {
    pub records: Vec<OrderWire>,
    pub next_cursor: Option<String>,
}

/// An error answer: `{"error": code, "message": text}`.
#[derive(Debug)]
pub struct ApiError {
    pub status: StatusCode,
    pub code: &'static str,
    pub message: String,
}

impl ApiError {
    pub fn invalid(message: impl Into<String>) -> ApiError {
        ApiError {
            status: StatusCode::BAD_REQUEST,
            code: "invalid_request",
            message: message.into(),
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let body = json!({ "error": self.code, "message": self.message });
        (self.status, Json(body)).into_response()
    }
}

impl From<StoreError> for ApiError {
    fn from(err: StoreError) -> ApiError {
        let (status, code) = match &err {
            StoreError::KeyReused(_) => {
                (StatusCode::UNPROCESSABLE_ENTITY, "idempotency_key_reused")
            }
            StoreError::KeyTaken(..) => (StatusCode::CONFLICT, "idempotency_key_taken"),
            StoreError::DuplicateId(_) => (StatusCode::CONFLICT, "duplicate_order"),
            StoreError::NotFound(_) => (StatusCode::NOT_FOUND, "not_found"),
            StoreError::NotRefundable { .. } => (StatusCode::CONFLICT, "order_not_refundable"),
        };
        ApiError {
            status,
            code,
            message: err.to_string(),
        }
    }
}

/// `/api/v1` plus the `/sim` test hooks.
pub fn router(sim: Arc<Sim>) -> Router {
    let api = Router::new()
        .route("/api/v1/orders", post(place_order).get(find_order_by_key))
        .route("/api/v1/orders/{vendor_order_id}", get(get_order))
        .route(
            "/api/v1/orders/{vendor_order_id}/refund",
            post(refund_order),
        )
        .route("/api/v1/reconciliation", get(reconciliation))
        .route("/api/v1/export.csv", get(export_csv))
        .layer(middleware::from_fn_with_state(sim.clone(), inject_faults));
    api.merge(super::hooks::router())
        .fallback(not_found)
        .with_state(sim)
}

async fn not_found() -> ApiError {
    ApiError {
        status: StatusCode::NOT_FOUND,
        code: "not_found",
        message: "no such endpoint".into(),
    }
}

/// Latency first, then maybe an error or a 429 instead of the call (nothing done), then the call,
/// then maybe a cut connection instead of its answer (the work stays done).
async fn inject_faults(State(sim): State<Arc<Sim>>, request: Request, next: Next) -> Response {
    bump(&sim.counters.requests);
    let faults = sim.faults();
    if faults.latency_ms > 0 {
        tokio::time::sleep(Duration::from_millis(faults.latency_ms)).await;
    }
    if sim.dice.roll(faults.error_rate) {
        bump(&sim.counters.errors_injected);
        let (status, code) = sim.dice.pick(&[
            (StatusCode::INTERNAL_SERVER_ERROR, "internal_error"),
            (StatusCode::BAD_GATEWAY, "bad_gateway"),
            (StatusCode::SERVICE_UNAVAILABLE, "service_unavailable"),
        ]);
        let message = "simulated failure: nothing was done; retry later".into();
        return ApiError {
            status,
            code,
            message,
        }
        .into_response();
    }
    if sim.dice.roll(faults.rate_limit_rate) {
        bump(&sim.counters.rate_limited);
        let error = ApiError {
            status: StatusCode::TOO_MANY_REQUESTS,
            code: "rate_limited",
            message: "too many requests: nothing was done; retry after 1 second".into(),
        };
        return ([(header::RETRY_AFTER, "1")], error).into_response();
    }
    let response = next.run(request).await;
    if sim.dice.roll(faults.drop_response_rate) {
        bump(&sim.counters.responses_dropped);
        tracing::debug!(status = %response.status(), "answer dropped (fault)");
        return cut_connection();
    }
    response
}

/// A response whose body fails on its first read. Hyper then aborts the connection before it
/// has written even the status line, so the client sees "connection closed before message
/// completed" at once, as when a load balancer drops a connection after the vendor committed.
fn cut_connection() -> Response {
    let failing = futures::stream::once(async {
        Err::<Bytes, std::io::Error>(std::io::Error::new(
            std::io::ErrorKind::ConnectionAborted,
            "simulated dropped response",
        ))
    });
    Response::new(Body::from_stream(failing))
}

#[tracing::instrument(skip_all)]
async fn place_order(State(sim): State<Arc<Sim>>, body: Bytes) -> Result<Response, ApiError> {
    let request = parse_order_request(&body)?;
    Ok(match sim.place(&request)? {
        Placed::Created(order) => {
            tracing::debug!(vendor_order_id = %order.vendor_order_id, "order created");
            (StatusCode::CREATED, Json(order.wire())).into_response()
        }
        Placed::Replayed(order) => (StatusCode::OK, Json(order.wire())).into_response(),
    })
}

/// Validates a placement body, naming the first bad field.
pub fn parse_order_request(body: &[u8]) -> Result<OrderRequest, ApiError> {
    let value: Value = serde_json::from_slice(body)
        .map_err(|e| ApiError::invalid(format!("the body is not valid JSON: {e}")))?;
    let object = value
        .as_object()
        .ok_or_else(|| ApiError::invalid("the body must be a JSON object"))?;
    let key = text_field(object, "idempotency_key")?;
    IdempotencyKey::parse(key).map_err(|e| ApiError::invalid(format!("idempotency_key: {e}")))?;
    let customer_id = text_field(object, "customer_id")?;
    let brand_id = text_field(object, "brand_id")?;
    let currency = Currency::parse(text_field(object, "currency")?)
        .map_err(|e| ApiError::invalid(format!("currency: {e}")))?;
    let amount = parse_amount(object.get("amount"), currency).map_err(ApiError::invalid)?;
    Ok(OrderRequest {
        idempotency_key: key.to_string(),
        customer_id: customer_id.to_string(),
        brand_id: brand_id.to_string(),
        amount,
    })
}

/// A required, non-empty string field of at most 255 characters.
pub fn text_field<'a>(object: &'a Map<String, Value>, name: &str) -> Result<&'a str, ApiError> {
    match object.get(name) {
        None | Some(Value::Null) => Err(ApiError::invalid(format!("{name} is missing"))),
        Some(Value::String(s)) if s.trim().is_empty() => {
            Err(ApiError::invalid(format!("{name} is empty")))
        }
        Some(Value::String(s)) if s.chars().count() > MAX_ID_LEN => Err(ApiError::invalid(
            format!("{name} is longer than {MAX_ID_LEN} characters"),
        )),
        Some(Value::String(s)) => Ok(s),
        Some(_) => Err(ApiError::invalid(format!("{name} must be a string"))),
    }
}

/// A positive amount in major units, as a decimal string ("50.00") or a JSON number (50),
/// exactly: more decimals than the currency has is an error, never a rounding.
pub fn parse_amount(value: Option<&Value>, currency: Currency) -> Result<Money, String> {
    let text = match value {
        None | Some(Value::Null) => return Err("amount is missing".into()),
        Some(Value::String(s)) => s.clone(),
        Some(Value::Number(n)) => n.to_string(),
        Some(_) => {
            return Err("amount must be a decimal string such as \"50.00\" or a number".into())
        }
    };
    let amount = Money::parse(&text, currency).map_err(|e| e.to_string())?;
    if amount.is_zero() {
        return Err("amount must be greater than zero".into());
    }
    Ok(amount)
}

type Params = Result<Query<HashMap<String, String>>, QueryRejection>;

fn params(query: Params) -> Result<HashMap<String, String>, ApiError> {
    query
        .map(|Query(p)| p)
        .map_err(|e| ApiError::invalid(format!("bad query string: {e}")))
}

#[tracing::instrument(skip_all)]
async fn find_order_by_key(
    State(sim): State<Arc<Sim>>,
    query: Params,
) -> Result<Json<OrderWire>, ApiError> {
    let params = params(query)?;
    let key = params
        .get("idempotency_key")
        .filter(|k| !k.is_empty())
        .ok_or_else(|| ApiError::invalid("the idempotency_key query parameter is required"))?;
    let order = lock(&sim.store).get_by_key(key).map(Order::wire);
    order.map(Json).ok_or_else(|| {
        ApiError::from(StoreError::NotFound(format!(
            "with idempotency key {key:?}"
        )))
    })
}

#[tracing::instrument(skip_all, fields(vendor_order_id = %vendor_order_id))]
async fn get_order(
    State(sim): State<Arc<Sim>>,
    Path(vendor_order_id): Path<String>,
) -> Result<Json<OrderWire>, ApiError> {
    let order = lock(&sim.store).get(&vendor_order_id).map(Order::wire);
    order
        .map(Json)
        .ok_or_else(|| StoreError::NotFound(vendor_order_id).into())
}

#[tracing::instrument(skip_all, fields(vendor_order_id = %vendor_order_id))]
async fn refund_order(
    State(sim): State<Arc<Sim>>,
    Path(vendor_order_id): Path<String>,
) -> Result<Json<OrderWire>, ApiError> {
    Ok(Json(sim.refund(&vendor_order_id)?.wire()))
}

/// `from` and `to` (both optional, RFC 3339) as a `[from, to)` window.
fn window(params: &HashMap<String, String>) -> Result<Window, ApiError> {
    let time = |name: &str| -> Result<Option<DateTime<Utc>>, ApiError> {
        let Some(text) = params.get(name).filter(|t| !t.is_empty()) else {
            return Ok(None);
        };
        DateTime::parse_from_rfc3339(text)
            .map(|t| Some(t.with_timezone(&Utc)))
            .map_err(|_| {
                ApiError::invalid(format!(
                    "{name}: {text:?} is not an RFC 3339 time such as 2024-05-01T00:00:00Z \
                     (write a + offset as %2B in a URL)"
                ))
            })
    };
    let window = Window {
        from: time("from")?,
        to: time("to")?,
    };
    if let (Some(from), Some(to)) = (window.from, window.to) {
        if from > to {
            return Err(ApiError::invalid("from must not be after to"));
        }
    }
    Ok(window)
}

/// Keyset paging over `(updated_at, vendor_order_id)`: the cursor is the last record returned,
/// and the next page starts strictly after it. An order that does not change between page
/// fetches is returned exactly once; new and changed orders always sort after every existing
/// record, so they show up (again, for a changed one) on a later page if still inside `[from, to)`.
#[tracing::instrument(skip_all)]
async fn reconciliation(
    State(sim): State<Arc<Sim>>,
    query: Params,
) -> Result<Json<ReconciliationPage>, ApiError> {
    let params = params(query)?;
    let window = window(&params)?;
    let cursor = params
        .get("cursor")
        .filter(|c| !c.is_empty())
        .map(|c| Cursor::decode(c))
        .transpose()
        .map_err(ApiError::invalid)?;
    let limit = match params.get("limit") {
        None => DEFAULT_PAGE_LIMIT,
        Some(text) => text
            .parse::<usize>()
            .ok()
            .filter(|n| (1..=MAX_PAGE_LIMIT).contains(n))
            .ok_or_else(|| {
                ApiError::invalid(format!(
                    "limit: {text:?} is not a whole number from 1 to {MAX_PAGE_LIMIT}"
                ))
            })?,
    };
    let page = lock(&sim.store).page(window, cursor.as_ref(), limit);
    Ok(Json(ReconciliationPage {
        records: page.records.iter().map(Order::wire).collect(),
        next_cursor: page.next.map(|c| c.encode()),
    }))
}

#[tracing::instrument(skip_all)]
async fn export_csv(State(sim): State<Arc<Sim>>, query: Params) -> Result<Response, ApiError> {
    let params = params(query)?;
    let window = window(&params)?;
    let orders: Vec<OrderWire> = lock(&sim.store)
        .scan(window, None)
        .map(Order::wire)
        .collect();
    let csv = write_csv(&orders).map_err(|e| {
        tracing::error!(error = %e, "cannot write the CSV export");
        ApiError {
            status: StatusCode::INTERNAL_SERVER_ERROR,
            code: "internal_error",
            message: "the export could not be written".into(),
        }
    })?;
    Ok((
        [
            (header::CONTENT_TYPE, "text/csv; charset=utf-8"),
            (
                header::CONTENT_DISPOSITION,
                "attachment; filename=\"export.csv\"",
            ),
        ],
        csv,
    )
        .into_response())
}

/// The export: [`CSV_HEADER`], then one row per order, quoted where needed.
pub fn write_csv(orders: &[OrderWire]) -> Result<Vec<u8>, csv::Error> {
    let mut writer = csv::Writer::from_writer(Vec::new());
    writer.write_record(CSV_HEADER)?;
    for o in orders {
        writer.write_record([
            o.vendor_order_id.as_str(),
            o.idempotency_key.as_deref().unwrap_or(""),
            "",
            &o.brand_id,
            &o.amount,
            &o.currency,
            &o.status,
            &o.created_at,
            &o.updated_at,
        ])?;
    }
    writer
        .into_inner()
        .map_err(|e| csv::Error::from(e.into_error()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn field_error(body: &str) -> String {
        parse_order_request(body.as_bytes()).unwrap_err().message
    }

    #[test]
    fn amounts_are_exact_strings_or_numbers() {
        let usd = Currency::USD;
        let money = |v: Value| parse_amount(Some(&v), usd);
        assert_eq!(money(json!("50")).unwrap().minor_units(), 5000);
        assert_eq!(money(json!(50)).unwrap().minor_units(), 5000);
        assert_eq!(money(json!(12.5)).unwrap().minor_units(), 1250);
        assert!(money(json!("12.505"))
            .unwrap_err()
            .contains("decimal places"));
        assert!(money(json!(0)).unwrap_err().contains("greater than zero"));
        assert!(money(json!(-1)).is_err());
        assert!(money(json!(true)).unwrap_err().contains("decimal string"));
        assert_eq!(parse_amount(None, usd).unwrap_err(), "amount is missing");
    }

    #[test]
    fn placement_errors_name_the_field() {
        let ok = r#"{"idempotency_key":"k","customer_id":"c","brand_id":"b","amount":"5","currency":"usd"}"#;
        let request = parse_order_request(ok.as_bytes()).unwrap();
        assert_eq!(request.amount.currency(), Currency::USD);
        assert!(field_error("nope").contains("not valid JSON"));
        assert!(field_error("[]").contains("JSON object"));
        assert_eq!(
            field_error(r#"{"customer_id":"c"}"#),
            "idempotency_key is missing"
        );
        assert!(field_error(r#"{"idempotency_key":"a b"}"#).starts_with("idempotency_key:"));
        assert_eq!(
            field_error(r#"{"idempotency_key":"k","customer_id":7}"#),
            "customer_id must be a string"
        );
        assert_eq!(
            field_error(r#"{"idempotency_key":"k","customer_id":"c","brand_id":" "}"#),
            "brand_id is empty"
        );
        let bad_currency = r#"{"idempotency_key":"k","customer_id":"c","brand_id":"b","amount":"5","currency":"XYZ"}"#;
        assert!(field_error(bad_currency).starts_with("currency:"));
    }

    #[test]
    fn csv_quotes_fields_that_need_it() {
        let order = OrderWire {
            vendor_order_id: "ord_1".into(),
            idempotency_key: None,
            status: "fulfilled".into(),
            amount: "1.00".into(),
            currency: "USD".into(),
            brand_id: "a,\"b\"".into(),
            customer_id: None,
            created_at: "t1".into(),
            updated_at: "t2".into(),
        };
        let text = String::from_utf8(write_csv(&[order]).unwrap()).unwrap();
        assert_eq!(
            text,
            "vendor_order_id,idempotency_key,reference_id,brand_id,amount,currency,status,created_at,updated_at\n\
             ord_1,,,\"a,\"\"b\"\"\",1.00,USD,fulfilled,t1,t2\n"
        );
    }
}
