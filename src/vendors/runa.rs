//! The Runa payouts API (version 2024-02-05), as its public reference describes it.
//!
//! - `POST {base}/v2/order` with `X-Idempotency-Key` (our key), `X-Api-Key`, `X-Api-Version` and
//!   `X-Execution-Mode: sync`, one item of one product. Runa keeps the request body and answer for
//!   30 days and replays the answer for the same key and body; a duplicate that arrives while the
//!   first is still running gets `idempotency_in_progress` (documented as HTTP 102); a reused key
//!   with a different body gets 400 `idempotency_validation_error`.
//! - `GET {base}/v2/order/{id}`. There is no lookup by idempotency key: `get_order` is
//!   `Unsupported`; re-sending the placement with the same key is the lookup.
//! - `GET {base}/v2/order?limit&after` → `{items, pagination: {cursors: {after, before}}}`, with no
//!   date filter: the window is applied here, and listed orders are summaries without items, so
//!   each order in the window is read in full for its face value.
//! - Webhooks are Svix (Standard Webhooks): `svix-id`, `svix-timestamp`, `svix-signature`. The
//!   `order.completion` body is an order summary without items (a failed one is only `{id,
//!   status}`), so the event names the order to fetch.
//! - No refund or cancel endpoint: `refund` is `Unsupported`.
//!
//! Amounts: an order's amount is the sum of its items' `face_value` (decimal strings), the value
//! ordered, not `total_price`, which includes fees. Statuses: PROCESSING, COMPLETED, FAILED.
//! `base_url` is the host, e.g. `https://playground.runa.io` or `https://api.runa.io`.

use std::collections::{BTreeMap, HashMap};
use std::time::Duration;

use axum::http::StatusCode;
use reqwest::Method;
use secrecy::ExposeSecret;
use serde::{Deserialize, Serialize};
use serde_json::value::RawValue;

use super::transport::{money_as_json_number, money_from_json, parse_currency, path_segment, Http};
use super::*;

/// Path prefix of the API under `base_url`.
pub const API_PREFIX: &str = "/v2";

/// The dated API version these wire types follow.
pub const API_VERSION: &str = "2024-02-05";

/// `sync` answers with the finished order (single-item orders only, which is all we place).
pub const EXECUTION_MODE: &str = "sync";

/// How orders are paid.
pub const PAYMENT_METHOD: &str = "ACCOUNT_BALANCE";

/// How payouts are distributed: a link giftrecon hands to its customer.
pub const DISTRIBUTION_METHOD: &str = "PAYOUT_LINK";

/// Error `type` of a duplicate request while the first one is still running.
pub const IN_PROGRESS_ERROR: &str = "idempotency_in_progress";

/// Error `type` of a reused key with a different request body.
pub const KEY_REUSED_ERROR: &str = "idempotency_validation_error";

/// How long to wait after an in-progress answer without `Retry-After` (Runa: "a few seconds").
pub const IN_PROGRESS_RETRY_AFTER: Duration = Duration::from_secs(5);

/// Orders per listing page (Runa allows 1–500, default 100).
pub const LIST_PAGE_LIMIT: usize = 100;

/// Listing order. Unconfirmed: Runa does not document it; when newest-first, paging stops once a
/// page reaches orders created before the window (less [`COMPLETION_GRACE`]).
pub const LIST_NEWEST_FIRST: bool = true;

/// How long before the window an order may have been created and still complete inside it.
pub const COMPLETION_GRACE: chrono::Duration = chrono::Duration::hours(24);

/// Metadata keys giftrecon attaches to each order (echoed by Runa, invisible to the recipient).
pub const METADATA_KEY: &str = "giftrecon_key";
pub const METADATA_CUSTOMER: &str = "giftrecon_customer";

/// The event type reported for order completion webhooks.
pub const ORDER_COMPLETION_EVENT: &str = "order.completion";

pub struct RunaAdapter {
    http: Http,
    api_key: Option<SecretString>,
}

impl RunaAdapter {
    pub fn new(endpoint: VendorEndpoint) -> Self {
        RunaAdapter {
            http: Http::new(&endpoint),
            api_key: endpoint.api_key,
        }
    }

    fn request(&self, method: Method, path: &str) -> reqwest::RequestBuilder {
        let request = self
            .http
            .request(method, &format!("{API_PREFIX}{path}"))
            .header("x-api-version", API_VERSION);
        match &self.api_key {
            Some(key) => request.header("x-api-key", key.expose_secret()),
            None => request,
        }
    }

    async fn read_order(&self, id: &str) -> Result<Option<WireOrder>, VendorError> {
        let path = format!("/order/{}", path_segment(id));
        let reply = self.http.send(self.request(Method::GET, &path)).await?;
        if reply.status == StatusCode::NOT_FOUND {
            return Ok(None);
        }
        if !reply.is_success() {
            return Err(reply.failure(Utc::now()));
        }
        reply.json().map(Some)
    }

    /// Converts a listed summary, reading the order in full when the summary has no items.
    async fn complete(&self, order: WireOrder) -> Result<VendorOrder, VendorError> {
        if order.items.as_ref().is_some_and(|items| !items.is_empty()) {
            return order.into_order(None);
        }
        match self.read_order(&order.id).await? {
            Some(full) => full.into_order(None),
            None => Err(VendorError::BadResponse {
                reason: format!("listed order {} cannot be read", order.id),
            }),
        }
    }
}

#[derive(Serialize)]
struct CreateOrder<'a> {
    payment_method: PaymentMethod,
    items: [NewItem<'a>; 1],
    description: String,
    /// A BTreeMap so the body is byte-for-byte the same on every retry with the same key.
    metadata: BTreeMap<&'static str, &'a str>,
}

#[derive(Serialize)]
struct PaymentMethod {
    #[serde(rename = "type")]
    kind: &'static str,
    currency: &'static str,
}

#[derive(Serialize)]
struct NewItem<'a> {
    face_value: Box<RawValue>,
    distribution_method: Distribution,
    products: NewProducts<'a>,
}

#[derive(Serialize)]
struct Distribution {
    #[serde(rename = "type")]
    kind: &'static str,
}

#[derive(Serialize)]
struct NewProducts<'a> {
    #[serde(rename = "type")]
    kind: &'static str,
    value: &'a str,
}

#[derive(Deserialize)]
struct WireOrder {
    id: String,
    status: String,
    #[serde(default)]
    created_at: Option<DateTime<Utc>>,
    #[serde(default)]
    completed_at: Option<DateTime<Utc>>,
    #[serde(default)]
    currency: Option<String>,
    #[serde(default)]
    total_price: Option<Box<RawValue>>,
    #[serde(default)]
    items: Option<Vec<WireItem>>,
    #[serde(default)]
    metadata: Option<HashMap<String, serde_json::Value>>,
}

#[derive(Deserialize)]
struct WireItem {
    face_value: Box<RawValue>,
    #[serde(default)]
    currency: Option<String>,
    #[serde(default)]
    products: Option<WireProducts>,
}

#[derive(Deserialize)]
struct WireProducts {
    #[serde(default)]
    value: Option<String>,
}

#[derive(Deserialize)]
struct OrderList {
    items: Vec<WireOrder>,
    #[serde(default)]
    pagination: Option<Pagination>,
}

#[derive(Deserialize)]
struct Pagination {
    #[serde(default)]
    cursors: Option<Cursors>,
}

#[derive(Deserialize)]
struct Cursors {
    #[serde(default)]
    after: Option<String>,
}

impl WireOrder {
    /// The order's amount: the sum of its items' face values; without items (a PROCESSING order's
    /// partial body) `requested` when we know what we asked for, else `total_price`.
    fn amount(&self, requested: Option<Money>) -> Result<Money, VendorError> {
        let bad = |reason: String| VendorError::BadResponse { reason };
        let order_currency = self.currency.as_deref();
        let items = self.items.as_deref().unwrap_or_default();
        if !items.is_empty() {
            let mut sum: Option<Money> = None;
            for item in items {
                let code =
                    item.currency.as_deref().or(order_currency).ok_or_else(|| {
                        bad(format!("an item of order {} has no currency", self.id))
                    })?;
                let money = money_from_json(&item.face_value, parse_currency(code)?, "face_value")?;
                sum = Some(match sum {
                    None => money,
                    Some(total) => total.checked_add(money).map_err(|e| bad(e.to_string()))?,
                });
            }
            return sum.ok_or_else(|| bad("no items".to_owned()));
        }
        if let Some(requested) = requested {
            return Ok(requested);
        }
        match (&self.total_price, order_currency) {
            (Some(price), Some(code)) => {
                money_from_json(price, parse_currency(code)?, "total_price")
            }
            _ => Err(bad(format!(
                "order {} has neither items nor a total_price",
                self.id
            ))),
        }
    }

    fn into_order(self, requested: Option<Money>) -> Result<VendorOrder, VendorError> {
        if self.id.is_empty() || self.status.is_empty() {
            return Err(VendorError::BadResponse {
                reason: "order without id or status".to_owned(),
            });
        }
        let amount = self.amount(requested)?;
        let meta = |key: &str| {
            self.metadata
                .as_ref()
                .and_then(|m| m.get(key))
                .and_then(|v| v.as_str())
                .map(str::to_owned)
        };
        let brand_id = self
            .items
            .as_deref()
            .and_then(|items| items.first())
            .and_then(|item| item.products.as_ref())
            .and_then(|p| p.value.clone());
        Ok(VendorOrder {
            vendor_key: meta(METADATA_KEY),
            reference_id: None,
            brand_id,
            amount,
            vendor_order_id: self.id,
            status: self.status,
            created_at: self.created_at,
            updated_at: self.completed_at,
        })
    }

    fn touches(&self, from: DateTime<Utc>, to: DateTime<Utc>) -> bool {
        let within = |at: Option<DateTime<Utc>>| at.is_some_and(|at| from <= at && at < to);
        within(self.created_at) || within(self.completed_at)
    }
}

/// At most `max` characters of `text`, cut on a character boundary.
fn truncate(text: &str, max: usize) -> String {
    text.chars().take(max).collect()
}

#[async_trait::async_trait]
impl VendorAdapter for RunaAdapter {
    fn kind(&self) -> VendorKind {
        VendorKind::Runa
    }

    #[tracing::instrument(skip_all, fields(vendor = "runa", vendor_key = %order.vendor_key))]
    async fn place_order(&self, order: &PlaceOrder) -> Result<VendorOrder, VendorError> {
        let body = CreateOrder {
            payment_method: PaymentMethod {
                kind: PAYMENT_METHOD,
                currency: order.amount.currency().code(),
            },
            items: [NewItem {
                face_value: money_as_json_number(&order.amount),
                distribution_method: Distribution {
                    kind: DISTRIBUTION_METHOD,
                },
                products: NewProducts {
                    kind: "SINGLE",
                    value: &order.brand_id,
                },
            }],
            description: truncate(&format!("giftrecon {}", order.vendor_key), 128),
            metadata: BTreeMap::from([
                (METADATA_KEY, order.vendor_key.as_str()),
                (METADATA_CUSTOMER, order.customer_id.as_str()),
            ]),
        };
        let request = self
            .request(Method::POST, "/order")
            .header("x-idempotency-key", &order.vendor_key)
            .header("x-execution-mode", EXECUTION_MODE)
            .json(&body);
        let reply = self.http.send(request).await?;
        let now = Utc::now();
        match reply.error_code().as_deref() {
            Some(IN_PROGRESS_ERROR) if !reply.is_success() => {
                return Err(VendorError::Throttled {
                    retry_after: Some(reply.retry_after(now).unwrap_or(IN_PROGRESS_RETRY_AFTER)),
                    reason: format!(
                        "{}: the first request with this key is still running",
                        reply.describe()
                    ),
                })
            }
            Some(KEY_REUSED_ERROR) if reply.status.is_client_error() => {
                return Err(VendorError::KeyConflict)
            }
            _ => {}
        }
        if !reply.is_success() {
            return Err(reply.failure(now));
        }
        let placed = reply.json::<WireOrder>()?.into_order(Some(order.amount))?;
        if placed
            .vendor_key
            .as_deref()
            .is_some_and(|key| key != order.vendor_key)
        {
            return Err(VendorError::BadResponse {
                reason: "the answer carries another order's giftrecon key".to_owned(),
            });
        }
        Ok(placed)
    }

    async fn get_order(&self, _vendor_key: &str) -> Result<Option<VendorOrder>, VendorError> {
        Err(VendorError::Unsupported {
            operation: "order lookup by idempotency key (re-send the order with the same key)",
        })
    }

    #[tracing::instrument(skip_all, fields(vendor = "runa", vendor_order_id))]
    async fn fetch_order(&self, vendor_order_id: &str) -> Result<Option<VendorOrder>, VendorError> {
        match self.read_order(vendor_order_id).await? {
            Some(order) => order.into_order(None).map(Some),
            None => Ok(None),
        }
    }

    /// Orders created or completed in `[from, to)`; a page can be empty while more follow.
    #[tracing::instrument(skip_all, fields(vendor = "runa"))]
    async fn list_orders(
        &self,
        from: DateTime<Utc>,
        to: DateTime<Utc>,
        cursor: Option<&str>,
    ) -> Result<OrderPage, VendorError> {
        let mut query = vec![("limit", LIST_PAGE_LIMIT.to_string())];
        if let Some(cursor) = cursor {
            query.push(("after", cursor.to_owned()));
        }
        let reply = self
            .http
            .send(self.request(Method::GET, "/order").query(&query))
            .await?;
        if !reply.is_success() {
            return Err(reply.failure(Utc::now()));
        }
        let list: OrderList = reply.json()?;
        let past_the_window = LIST_NEWEST_FIRST
            && list
                .items
                .iter()
                .filter_map(|o| o.created_at)
                .any(|at| at < from - COMPLETION_GRACE);
        let after = list
            .pagination
            .and_then(|p| p.cursors)
            .and_then(|c| c.after)
            .filter(|c| !c.is_empty());
        let next_cursor = if list.items.is_empty() || past_the_window {
            None
        } else {
            after
        };
        let mut orders = Vec::new();
        for order in list.items {
            if order.touches(from, to) {
                orders.push(self.complete(order).await?);
            }
        }
        Ok(OrderPage {
            orders,
            next_cursor,
        })
    }

    async fn refund(&self, _vendor_order_id: &str) -> Result<VendorOrder, VendorError> {
        Err(VendorError::Unsupported {
            operation: "refunds",
        })
    }

    fn verify_webhook(
        &self,
        headers: &Headers,
        raw_body: &[u8],
        secrets: &[SecretString],
        now: DateTime<Utc>,
    ) -> Result<(), WebhookError> {
        signature::verify_standard_webhooks(headers, raw_body, secrets, now)
    }

    fn parse_webhook(
        &self,
        headers: &Headers,
        raw_body: &[u8],
    ) -> Result<WebhookEvent, WebhookError> {
        let header = |name: &str| signature::header_str(headers, name).ok();
        let event_id = header("webhook-id")
            .or_else(|| header("svix-id"))
            .ok_or_else(|| WebhookError::Unparseable("no svix-id header".to_owned()))?
            .to_owned();
        let sent_at = header("webhook-timestamp")
            .or_else(|| header("svix-timestamp"))
            .and_then(|t| t.parse::<i64>().ok())
            .and_then(|t| DateTime::from_timestamp(t, 0));
        let body: serde_json::Value = serde_json::from_slice(raw_body)
            .map_err(|_| WebhookError::Unparseable("the body is not JSON".to_owned()))?;
        let object = body
            .as_object()
            .ok_or_else(|| WebhookError::Unparseable("the body is not a JSON object".to_owned()))?;
        let text = |key: &str| object.get(key).and_then(|v| v.as_str());
        let (event_type, subject, occurred_at) = match (text("id"), text("status")) {
            (Some(id), Some(_)) if !id.is_empty() => (
                ORDER_COMPLETION_EVENT.to_owned(),
                WebhookSubject::OrderChanged {
                    vendor_order_id: id.to_owned(),
                },
                text("completed_at")
                    .and_then(|t| DateTime::parse_from_rfc3339(t).ok())
                    .map(|t| t.with_timezone(&Utc))
                    .or(sent_at),
            ),
            // product.update and anything new: not about an order.
            _ => (
                "other".to_owned(),
                WebhookSubject::Other {
                    resource: text("id").or(text("code")).map(str::to_owned),
                },
                sent_at,
            ),
        };
        Ok(WebhookEvent {
            event_id,
            event_type,
            occurred_at,
            subject,
        })
    }
}

#[cfg(test)]
mod tests {
    use std::sync::{Arc, Mutex};

    use axum::extract::{Path, Query, State};
    use axum::http::HeaderMap;
    use axum::response::{IntoResponse, Response};
    use axum::routing::get;
    use axum::{Json, Router};
    use base64::Engine as _;
    use serde_json::{json, Value};

    use super::super::testing::{assert_failure_matrix, endpoint, serve, serve_fixed, usd};
    use super::*;

    /// A small Runa: idempotency cache key → (request body, answer), like Runa's 30-day cache.
    #[derive(Clone, Default)]
    struct Mock {
        cache: Arc<Mutex<Vec<(String, Value, Value)>>>,
        in_progress: Arc<Mutex<Option<String>>>,
    }

    fn full_order(n: usize, face_value: &str, created: &str, metadata: Value) -> Value {
        json!({
            "id": format!("O-{n:02}"),
            "status": "COMPLETED",
            "created_at": created,
            "completed_at": created,
            "description": "giftrecon",
            "payment_method": {"type": "ACCOUNT_BALANCE", "currency": "USD"},
            "currency": "USD",
            "total_price": "99.99",
            "total_discount": "1",
            "items": [{
                "id": format!("E-{n}"),
                "distribution_method": {"type": "PAYOUT_LINK"},
                "products": {"type": "SINGLE", "value": "AMZ-US"},
                "face_value": face_value,
                "price": face_value,
                "payout": {"status": "ACTIVE", "url": "https://link.runa.example/secret"},
                "currency": "USD"
            }],
            "metadata": metadata
        })
    }

    async fn create(State(mock): State<Mock>, headers: HeaderMap, body: String) -> Response {
        assert_eq!(headers["x-api-key"], "test-api-key");
        assert_eq!(headers["x-api-version"], API_VERSION);
        assert_eq!(headers["x-execution-mode"], "sync");
        let key = headers["x-idempotency-key"].to_str().unwrap().to_owned();
        if mock.in_progress.lock().unwrap().as_deref() == Some(&key) {
            return (
                StatusCode::CONFLICT,
                Json(json!({"type": IN_PROGRESS_ERROR, "message": "in progress"})),
            )
                .into_response();
        }
        let request: Value = serde_json::from_str(&body).unwrap();
        let mut cache = mock.cache.lock().unwrap();
        if let Some((_, previous, answer)) = cache.iter().find(|(k, _, _)| *k == key) {
            return if *previous == request {
                (StatusCode::OK, Json(answer.clone())).into_response()
            } else {
                (
                    StatusCode::BAD_REQUEST,
                    Json(json!({"type": KEY_REUSED_ERROR, "message": "body differs"})),
                )
                    .into_response()
            };
        }
        let face_value = request["items"][0]["face_value"].to_string();
        let answer = full_order(
            cache.len() + 1,
            &face_value,
            "2025-03-01T10:00:00Z",
            request["metadata"].clone(),
        );
        cache.push((key, request, answer.clone()));
        (StatusCode::OK, Json(answer)).into_response()
    }

    /// Newest first: page 1 has an order in the window and one after it; page 2 has one in the
    /// window and one long before it, so paging stops there.
    async fn list(Query(q): Query<HashMap<String, String>>) -> Response {
        assert_eq!(q["limit"], LIST_PAGE_LIMIT.to_string());
        let summary = |n: usize, created: &str| {
            json!({"id": format!("O-{n:02}"), "status": "COMPLETED", "created_at": created,
                   "completed_at": created, "currency": "USD", "total_price": "99.99",
                   "total_discount": "0", "payment_method": {"type": "ACCOUNT_BALANCE"}})
        };
        let page = match q.get("after").map(String::as_str) {
            None => {
                json!({"items": [summary(12, "2025-03-02T08:00:00Z"), summary(11, "2025-03-01T20:00:00Z")],
                           "pagination": {"cursors": {"after": "A-11", "before": "A-12"}, "page": {"limit": 100}}})
            }
            Some("A-11") => {
                json!({"items": [summary(10, "2025-03-01T09:00:00+00:00"), summary(9, "2025-02-20T09:00:00Z")],
                                   "pagination": {"cursors": {"after": "A-9", "before": "A-10"}, "page": {"limit": 100}}})
            }
            Some(other) => panic!("cursor {other}"),
        };
        Json(page).into_response()
    }

    async fn by_id(Path(id): Path<String>) -> Response {
        let face = match id.as_str() {
            "O-11" => "20.00",
            "O-10" => "5",
            _ => {
                return (StatusCode::NOT_FOUND, Json(json!({"type": "not_found"}))).into_response()
            }
        };
        Json(full_order(
            id[2..].parse().unwrap(),
            face,
            "2025-03-01T09:00:00Z",
            json!({METADATA_KEY: format!("key-{id}")}),
        ))
        .into_response()
    }

    async fn mock_vendor() -> (RunaAdapter, Mock) {
        let mock = Mock::default();
        let router = Router::new()
            .route("/v2/order", get(list).post(create))
            .route("/v2/order/{id}", get(by_id))
            .with_state(mock.clone());
        (RunaAdapter::new(endpoint(&serve(router).await)), mock)
    }

    fn place(key: &str, amount: &str) -> PlaceOrder {
        PlaceOrder {
            vendor_key: key.to_owned(),
            customer_id: "cust-1".to_owned(),
            brand_id: "AMZ-US".to_owned(),
            amount: usd(amount),
        }
    }

    #[tokio::test]
    async fn places_an_order_and_a_replay_returns_the_same_order() {
        let (adapter, mock) = mock_vendor().await;
        let first = adapter.place_order(&place("key-1", "10.00")).await.unwrap();
        assert_eq!(first.vendor_order_id, "O-01");
        assert_eq!(first.vendor_key.as_deref(), Some("key-1"));
        assert_eq!(first.amount, usd("10.00"), "face value, not total_price");
        assert_eq!(first.status, "COMPLETED");
        assert_eq!(first.brand_id.as_deref(), Some("AMZ-US"));
        let replay = adapter.place_order(&place("key-1", "10.00")).await.unwrap();
        assert_eq!(replay, first);
        assert_eq!(mock.cache.lock().unwrap().len(), 1);
        let request = &mock.cache.lock().unwrap()[0].1;
        assert_eq!(request["metadata"][METADATA_CUSTOMER], "cust-1");
        assert_eq!(request["items"][0]["products"]["value"], "AMZ-US");
    }

    #[tokio::test]
    async fn a_reused_key_with_another_body_is_a_key_conflict() {
        let (adapter, _mock) = mock_vendor().await;
        adapter.place_order(&place("key-1", "10.00")).await.unwrap();
        assert_eq!(
            adapter.place_order(&place("key-1", "11.00")).await,
            Err(VendorError::KeyConflict)
        );
    }

    #[tokio::test]
    async fn a_duplicate_still_in_progress_is_throttled_with_the_same_key() {
        let (adapter, mock) = mock_vendor().await;
        *mock.in_progress.lock().unwrap() = Some("key-1".to_owned());
        assert!(matches!(
            adapter.place_order(&place("key-1", "10.00")).await,
            Err(VendorError::Throttled { retry_after: Some(d), .. }) if d == IN_PROGRESS_RETRY_AFTER
        ));
        // Other 400s are plain rejections.
        let url = serve_fixed(400, &[], r#"{"type":"validation_error"}"#).await;
        assert!(matches!(
            RunaAdapter::new(endpoint(&url))
                .place_order(&place("k", "1.00"))
                .await,
            Err(VendorError::Rejected { .. })
        ));
    }

    #[tokio::test]
    async fn a_literal_102_in_progress_answer_is_an_unknown_outcome() {
        // Runa documents its in-progress answer as HTTP 102. HTTP clients treat 1xx as interim
        // and wait for a final answer that never comes: the outcome is unknown and the order is
        // retried with the same key, which is what Runa asks for.
        let url = super::super::testing::serve_raw(
            b"HTTP/1.1 102 Processing\r\ncontent-type: application/json\r\n\r\n{\"type\":\"idempotency_in_progress\"}",
        )
        .await;
        assert!(matches!(
            RunaAdapter::new(endpoint(&url))
                .place_order(&place("k", "1.00"))
                .await,
            Err(VendorError::Unknown { .. })
        ));
    }

    #[tokio::test]
    async fn a_processing_answer_without_items_keeps_the_requested_amount() {
        let body = r#"{"id":"O-77","status":"PROCESSING","created_at":"2025-03-01T10:00:00Z"}"#;
        let adapter = RunaAdapter::new(endpoint(&serve_fixed(201, &[], body).await));
        let order = adapter.place_order(&place("k", "12.34")).await.unwrap();
        assert_eq!(order.status, "PROCESSING");
        assert_eq!(order.amount, usd("12.34"));
        // A fetched partial order falls back to total_price, and without it cannot be read.
        let body = r#"{"id":"O-77","status":"PROCESSING","currency":"USD","total_price":"12.34"}"#;
        let adapter = RunaAdapter::new(endpoint(&serve_fixed(200, &[], body).await));
        assert_eq!(
            adapter.fetch_order("O-77").await.unwrap().unwrap().amount,
            usd("12.34")
        );
        let adapter = RunaAdapter::new(endpoint(
            &serve_fixed(200, &[], r#"{"id":"O-77","status":"PROCESSING"}"#).await,
        ));
        assert!(matches!(
            adapter.fetch_order("O-77").await,
            Err(VendorError::BadResponse { .. })
        ));
    }

    #[tokio::test]
    async fn placement_failures_are_classified() {
        assert_failure_matrix(|endpoint| async move {
            RunaAdapter::new(endpoint)
                .place_order(&place("k", "10.00"))
                .await
        })
        .await;
    }

    #[tokio::test]
    async fn fetch_by_id_works_and_lookup_by_key_and_refunds_are_unsupported() {
        let (adapter, _mock) = mock_vendor().await;
        let order = adapter.fetch_order("O-11").await.unwrap().unwrap();
        assert_eq!(order.amount, usd("20.00"));
        assert_eq!(order.vendor_key.as_deref(), Some("key-O-11"));
        assert_eq!(adapter.fetch_order("O-404").await.unwrap(), None);
        assert!(matches!(
            adapter.get_order("key-1").await,
            Err(VendorError::Unsupported { .. })
        ));
        assert!(matches!(
            adapter.refund("O-11").await,
            Err(VendorError::Unsupported { .. })
        ));
        assert_failure_matrix(|endpoint| async move {
            RunaAdapter::new(endpoint).fetch_order("O-11").await
        })
        .await;
    }

    #[tokio::test]
    async fn listing_filters_the_window_reads_face_values_and_stops_past_it() {
        let (adapter, _mock) = mock_vendor().await;
        let from = "2025-03-01T00:00:00Z".parse().unwrap();
        let to = "2025-03-02T00:00:00Z".parse().unwrap();
        let first = adapter.list_orders(from, to, None).await.unwrap();
        let ids: Vec<&str> = first
            .orders
            .iter()
            .map(|o| o.vendor_order_id.as_str())
            .collect();
        assert_eq!(ids, ["O-11"], "O-12 was created after the window");
        assert_eq!(first.orders[0].amount, usd("20.00"));
        assert_eq!(first.next_cursor.as_deref(), Some("A-11"));
        let second = adapter.list_orders(from, to, Some("A-11")).await.unwrap();
        let ids: Vec<&str> = second
            .orders
            .iter()
            .map(|o| o.vendor_order_id.as_str())
            .collect();
        assert_eq!(ids, ["O-10"]);
        assert_eq!(second.orders[0].amount, usd("5.00"));
        assert_eq!(second.next_cursor, None, "O-09 is long before the window");
    }

    const SECRET_KEY: &[u8] = b"runa svix signing key, 32 bytes!";
    const COMPLETED: &str = r#"{"id":"O-01HK7VK8C3WM1MQ916GEXJGQ6P","status":"COMPLETED","created_at":"2024-01-04T14:19:07.882052+00:00","completed_at":"2024-01-04T14:19:17.882052+00:00","description":"This is an example order","payment_method":{"type":"CARD","card_payment_fee":"0.03"},"currency":"USD","total_price":"19.03","total_discount":"1.0"}"#;

    fn secret() -> String {
        format!(
            "whsec_{}",
            base64::engine::general_purpose::STANDARD.encode(SECRET_KEY)
        )
    }

    fn svix_headers(msg_id: &str, timestamp: i64, body: &str, secret: &str) -> Headers {
        let mut headers = Headers::new();
        headers.insert("svix-id", msg_id.parse().unwrap());
        headers.insert("svix-timestamp", timestamp.to_string().parse().unwrap());
        let signature =
            signature::sign_standard_webhooks(secret, msg_id, timestamp, body.as_bytes());
        headers.insert("svix-signature", signature.parse().unwrap());
        headers
    }

    #[test]
    fn svix_webhooks_verify_and_name_the_completed_order() {
        let adapter = RunaAdapter::new(endpoint("http://127.0.0.1:9"));
        let now = Utc::now();
        let headers = svix_headers("msg_2Kx", now.timestamp(), COMPLETED, &secret());
        let secrets = [
            SecretString::from("whsec_b2xkIHNlY3JldCBiZWluZyByb3RhdGVk"),
            SecretString::from(secret()),
        ];
        adapter
            .verify_webhook(&headers, COMPLETED.as_bytes(), &secrets, now)
            .unwrap();
        let event = adapter
            .parse_webhook(&headers, COMPLETED.as_bytes())
            .unwrap();
        assert_eq!(event.event_id, "msg_2Kx");
        assert_eq!(event.event_type, ORDER_COMPLETION_EVENT);
        assert_eq!(
            event.vendor_order_id(),
            Some("O-01HK7VK8C3WM1MQ916GEXJGQ6P")
        );
        assert_eq!(
            event.occurred_at,
            Some("2024-01-04T14:19:17.882052Z".parse().unwrap())
        );

        let failed = r#"{"id":"O-01HK7VK8C3WM1MQ916GEXJGQ6P","status":"FAILED"}"#;
        let headers = svix_headers("msg_3", now.timestamp(), failed, &secret());
        adapter
            .verify_webhook(&headers, failed.as_bytes(), &secrets, now)
            .unwrap();
        let event = adapter.parse_webhook(&headers, failed.as_bytes()).unwrap();
        assert_eq!(
            event.vendor_order_id(),
            Some("O-01HK7VK8C3WM1MQ916GEXJGQ6P")
        );
        assert_eq!(
            event.occurred_at,
            DateTime::from_timestamp(now.timestamp(), 0)
        );

        let product = r#"{"code":"AMZ-US","name":"Amazon"}"#;
        let event = adapter
            .parse_webhook(
                &svix_headers("msg_4", now.timestamp(), product, &secret()),
                product.as_bytes(),
            )
            .unwrap();
        assert_eq!(
            event.subject,
            WebhookSubject::Other {
                resource: Some("AMZ-US".to_owned())
            }
        );
    }

    #[test]
    fn forged_or_stale_svix_webhooks_are_rejected() {
        let adapter = RunaAdapter::new(endpoint("http://127.0.0.1:9"));
        let now = Utc::now();
        let secrets = [SecretString::from(secret())];
        let headers = svix_headers("msg_1", now.timestamp(), COMPLETED, &secret());
        let forged = COMPLETED.replace("COMPLETED", "FAILED");
        assert!(adapter
            .verify_webhook(&headers, forged.as_bytes(), &secrets, now)
            .is_err());
        let other_secret = format!(
            "whsec_{}",
            base64::engine::general_purpose::STANDARD.encode(b"an attacker's own signing key!!")
        );
        let headers = svix_headers("msg_1", now.timestamp(), COMPLETED, &other_secret);
        assert!(adapter
            .verify_webhook(&headers, COMPLETED.as_bytes(), &secrets, now)
            .is_err());
        let stale = svix_headers("msg_1", now.timestamp() - 301, COMPLETED, &secret());
        assert!(adapter
            .verify_webhook(&stale, COMPLETED.as_bytes(), &secrets, now)
            .is_err());
        assert!(matches!(
            adapter.parse_webhook(&Headers::new(), COMPLETED.as_bytes()),
            Err(WebhookError::Unparseable(_))
        ));
    }
}
