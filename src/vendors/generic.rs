//! The generic vendor API: giftrecon's reference shape, also spoken by the simulator.
//!
//! - `POST /api/v1/orders` `{idempotency_key, customer_id, brand_id, amount, currency}` → 201 (new)
//!   or 200 (replay of the same key and request) with the order; 422
//!   `{"error":"idempotency_key_reused"}` when the key was used for a different request;
//! - `GET /api/v1/orders?idempotency_key=K` and `GET /api/v1/orders/{vendor_order_id}` (404: none);
//! - `POST /api/v1/orders/{vendor_order_id}/refund`;
//! - `GET /api/v1/reconciliation?from=&to=&cursor=` → `{records, next_cursor}`;
//! - webhooks `{event_id, type, created_at, order}` signed with hex HMAC-SHA256 of the raw body in
//!   `x-signature-256`.
//!
//! An order is `{vendor_order_id, idempotency_key, status, amount, currency, brand_id, created_at,
//! updated_at}`, amounts in major units as a decimal string or number, times in RFC 3339.
//! `Authorization: Bearer <api_key>` is sent when an API key is configured.

use axum::http::StatusCode;
use reqwest::Method;
use secrecy::ExposeSecret;
use serde::{Deserialize, Serialize};
use serde_json::value::RawValue;

use super::transport::{money_from_json, parse_currency, path_segment, rfc3339, Http, Reply};
use super::*;

/// The header carrying the webhook signature.
pub const SIGNATURE_HEADER: &str = "x-signature-256";

/// The error code of a 422 meaning "this key was already used for a different request".
pub const KEY_REUSED_ERROR: &str = "idempotency_key_reused";

pub struct GenericAdapter {
    http: Http,
    api_key: Option<SecretString>,
}

impl GenericAdapter {
    pub fn new(endpoint: VendorEndpoint) -> Self {
        GenericAdapter {
            http: Http::new(&endpoint),
            api_key: endpoint.api_key,
        }
    }

    fn request(&self, method: Method, path: &str) -> reqwest::RequestBuilder {
        let request = self.http.request(method, path);
        match &self.api_key {
            Some(key) => request.bearer_auth(key.expose_secret()),
            None => request,
        }
    }

    /// A single order, or `None` on 404.
    async fn read_order(
        &self,
        request: reqwest::RequestBuilder,
    ) -> Result<Option<VendorOrder>, VendorError> {
        let reply = self.http.send(request).await?;
        if reply.status == StatusCode::NOT_FOUND {
            return Ok(None);
        }
        expect_order(&reply).map(Some)
    }
}

/// The order in a successful answer, or the classified failure.
fn expect_order(reply: &Reply) -> Result<VendorOrder, VendorError> {
    if !reply.is_success() {
        return Err(reply.failure(Utc::now()));
    }
    reply.json::<WireOrder>()?.into_order()
}

#[derive(Serialize)]
struct CreateOrder<'a> {
    idempotency_key: &'a str,
    customer_id: &'a str,
    brand_id: &'a str,
    amount: String,
    currency: &'static str,
}

#[derive(Deserialize)]
struct WireOrder {
    vendor_order_id: String,
    #[serde(default)]
    idempotency_key: Option<String>,
    #[serde(default)]
    reference_id: Option<String>,
    status: String,
    amount: Box<RawValue>,
    currency: String,
    #[serde(default)]
    brand_id: Option<String>,
    #[serde(default)]
    created_at: Option<DateTime<Utc>>,
    #[serde(default)]
    updated_at: Option<DateTime<Utc>>,
}

impl WireOrder {
    fn into_order(self) -> Result<VendorOrder, VendorError> {
        if self.vendor_order_id.is_empty() || self.status.is_empty() {
            return Err(VendorError::BadResponse {
                reason: "order without vendor_order_id or status".to_owned(),
            });
        }
        let currency = parse_currency(&self.currency)?;
        Ok(VendorOrder {
            amount: money_from_json(&self.amount, currency, "amount")?,
            vendor_order_id: self.vendor_order_id,
            vendor_key: self.idempotency_key,
            reference_id: self.reference_id,
            brand_id: self.brand_id,
            status: self.status,
            created_at: self.created_at,
            updated_at: self.updated_at,
        })
    }
}

#[derive(Deserialize)]
struct ReconciliationPage {
    records: Vec<WireOrder>,
    #[serde(default)]
    next_cursor: Option<String>,
}

#[derive(Deserialize)]
struct WireEvent {
    event_id: String,
    #[serde(rename = "type")]
    event_type: String,
    #[serde(default)]
    created_at: Option<DateTime<Utc>>,
    order: WireEventOrder,
}

/// The order in a webhook: the whole order, or only its id (a notice that it changed, to be
/// read from the vendor).
#[derive(Deserialize)]
struct WireEventOrder {
    vendor_order_id: String,
    #[serde(default)]
    idempotency_key: Option<String>,
    #[serde(default)]
    reference_id: Option<String>,
    #[serde(default)]
    status: Option<String>,
    #[serde(default)]
    amount: Option<Box<RawValue>>,
    #[serde(default)]
    currency: Option<String>,
    #[serde(default)]
    brand_id: Option<String>,
    #[serde(default)]
    created_at: Option<DateTime<Utc>>,
    #[serde(default)]
    updated_at: Option<DateTime<Utc>>,
}

impl WireEventOrder {
    fn into_subject(self) -> Result<WebhookSubject, WebhookError> {
        if self.vendor_order_id.is_empty() {
            return Err(WebhookError::Unparseable(
                "order.vendor_order_id is empty".to_owned(),
            ));
        }
        let (status, amount, currency) = match (self.status, self.amount, self.currency) {
            (None, None, None) => {
                return Ok(WebhookSubject::OrderChanged {
                    vendor_order_id: self.vendor_order_id,
                })
            }
            (Some(status), Some(amount), Some(currency)) => (status, amount, currency),
            (status, amount, _) => {
                let missing = if status.is_none() {
                    "order.status"
                } else if amount.is_none() {
                    "order.amount"
                } else {
                    "order.currency"
                };
                return Err(WebhookError::Unparseable(format!(
                    "{missing} is missing (an order-only notice carries vendor_order_id alone)"
                )));
            }
        };
        let order = WireOrder {
            vendor_order_id: self.vendor_order_id,
            idempotency_key: self.idempotency_key,
            reference_id: self.reference_id,
            status,
            amount,
            currency,
            brand_id: self.brand_id,
            created_at: self.created_at,
            updated_at: self.updated_at,
        }
        .into_order()
        .map_err(|e| WebhookError::Unparseable(e.to_string()))?;
        Ok(WebhookSubject::Order(order))
    }
}

#[async_trait::async_trait]
impl VendorAdapter for GenericAdapter {
    fn kind(&self) -> VendorKind {
        VendorKind::Generic
    }

    #[tracing::instrument(skip_all, fields(vendor = "generic", vendor_key = %order.vendor_key))]
    async fn place_order(&self, order: &PlaceOrder) -> Result<VendorOrder, VendorError> {
        let body = CreateOrder {
            idempotency_key: &order.vendor_key,
            customer_id: &order.customer_id,
            brand_id: &order.brand_id,
            amount: order.amount.amount_string(),
            currency: order.amount.currency().code(),
        };
        let request = self.request(Method::POST, "/api/v1/orders").json(&body);
        let reply = self.http.send(request).await?;
        match reply.status.as_u16() {
            422 if reply.error_code().as_deref() == Some(KEY_REUSED_ERROR) => {
                return Err(VendorError::KeyConflict)
            }
            // The reference shape answers a concurrent request with the same key with 409:
            // the first one is still being processed, so come back later with the same key.
            409 => {
                return Err(VendorError::Throttled {
                    retry_after: reply.retry_after(Utc::now()),
                    reason: format!(
                        "{}: a request with this key is in progress",
                        reply.describe()
                    ),
                })
            }
            _ => {}
        }
        let placed = expect_order(&reply)?;
        if placed
            .vendor_key
            .as_deref()
            .is_some_and(|k| k != order.vendor_key)
        {
            return Err(VendorError::BadResponse {
                reason: "the answer is for a different idempotency key".to_owned(),
            });
        }
        Ok(placed)
    }

    #[tracing::instrument(skip_all, fields(vendor = "generic", vendor_key))]
    async fn get_order(&self, vendor_key: &str) -> Result<Option<VendorOrder>, VendorError> {
        let request = self
            .request(Method::GET, "/api/v1/orders")
            .query(&[("idempotency_key", vendor_key)]);
        self.read_order(request).await
    }

    #[tracing::instrument(skip_all, fields(vendor = "generic", vendor_order_id))]
    async fn fetch_order(&self, vendor_order_id: &str) -> Result<Option<VendorOrder>, VendorError> {
        let path = format!("/api/v1/orders/{}", path_segment(vendor_order_id));
        self.read_order(self.request(Method::GET, &path)).await
    }

    #[tracing::instrument(skip_all, fields(vendor = "generic"))]
    async fn list_orders(
        &self,
        from: DateTime<Utc>,
        to: DateTime<Utc>,
        cursor: Option<&str>,
    ) -> Result<OrderPage, VendorError> {
        let mut query = vec![("from", rfc3339(from)), ("to", rfc3339(to))];
        if let Some(cursor) = cursor {
            query.push(("cursor", cursor.to_owned()));
        }
        let request = self
            .request(Method::GET, "/api/v1/reconciliation")
            .query(&query);
        let reply = self.http.send(request).await?;
        if !reply.is_success() {
            return Err(reply.failure(Utc::now()));
        }
        let page: ReconciliationPage = reply.json()?;
        Ok(OrderPage {
            orders: page
                .records
                .into_iter()
                .map(WireOrder::into_order)
                .collect::<Result<_, _>>()?,
            next_cursor: page.next_cursor.filter(|c| !c.is_empty()),
        })
    }

    #[tracing::instrument(skip_all, fields(vendor = "generic", vendor_order_id))]
    async fn refund(&self, vendor_order_id: &str) -> Result<VendorOrder, VendorError> {
        let path = format!("/api/v1/orders/{}/refund", path_segment(vendor_order_id));
        let reply = self.http.send(self.request(Method::POST, &path)).await?;
        expect_order(&reply)
    }

    fn verify_webhook(
        &self,
        headers: &Headers,
        raw_body: &[u8],
        secrets: &[SecretString],
        _now: DateTime<Utc>,
    ) -> Result<(), WebhookError> {
        let signature = signature::header_str(headers, SIGNATURE_HEADER)?;
        signature::verify_hex_hmac(signature, raw_body, secrets)
    }

    fn parse_webhook(
        &self,
        _headers: &Headers,
        raw_body: &[u8],
    ) -> Result<WebhookEvent, WebhookError> {
        let event: WireEvent = serde_json::from_slice(raw_body).map_err(|e| {
            WebhookError::Unparseable(format!(
                "not a generic webhook event ({:?} error at line {} column {})",
                e.classify(),
                e.line(),
                e.column()
            ))
        })?;
        if event.event_id.is_empty() {
            return Err(WebhookError::Unparseable("event_id is empty".to_owned()));
        }
        Ok(WebhookEvent {
            subject: event.order.into_subject()?,
            event_id: event.event_id,
            event_type: event.event_type,
            occurred_at: event.created_at,
        })
    }
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;
    use std::sync::{Arc, Mutex};

    use axum::extract::{Path, Query, State};
    use axum::http::HeaderMap;
    use axum::response::{IntoResponse, Response};
    use axum::routing::{get, post};
    use axum::{Json, Router};
    use serde_json::{json, Value};

    use super::super::testing::{assert_failure_matrix, endpoint, serve, serve_fixed, usd};
    use super::*;

    /// A tiny in-memory generic vendor: keys → (request, order).
    #[derive(Clone, Default)]
    struct Mock {
        orders: Arc<Mutex<HashMap<String, (Value, Value)>>>,
    }

    fn authorized(headers: &HeaderMap) -> bool {
        headers.get("authorization").and_then(|v| v.to_str().ok()) == Some("Bearer test-api-key")
    }

    async fn create(
        State(mock): State<Mock>,
        headers: HeaderMap,
        Json(body): Json<Value>,
    ) -> Response {
        if !authorized(&headers) {
            return StatusCode::UNAUTHORIZED.into_response();
        }
        let key = body["idempotency_key"].as_str().unwrap().to_owned();
        let mut orders = mock.orders.lock().unwrap();
        if let Some((request, order)) = orders.get(&key) {
            return if *request == body {
                (StatusCode::OK, Json(order.clone())).into_response()
            } else {
                (
                    StatusCode::UNPROCESSABLE_ENTITY,
                    Json(json!({"error": "idempotency_key_reused"})),
                )
                    .into_response()
            };
        }
        let order = json!({
            "vendor_order_id": format!("ord_{}", orders.len() + 1),
            "idempotency_key": key,
            "status": "pending",
            "amount": body["amount"],
            "currency": body["currency"],
            "brand_id": body["brand_id"],
            "created_at": "2025-03-01T10:00:00Z",
            "updated_at": "2025-03-01T10:00:00Z",
        });
        orders.insert(key, (body, order.clone()));
        (StatusCode::CREATED, Json(order)).into_response()
    }

    async fn by_key(
        State(mock): State<Mock>,
        Query(q): Query<HashMap<String, String>>,
    ) -> Response {
        let orders = mock.orders.lock().unwrap();
        match orders.get(&q["idempotency_key"]) {
            Some((_, order)) => Json(order.clone()).into_response(),
            None => StatusCode::NOT_FOUND.into_response(),
        }
    }

    fn find(mock: &Mock, id: &str) -> Option<Value> {
        let orders = mock.orders.lock().unwrap();
        orders
            .values()
            .find(|(_, o)| o["vendor_order_id"] == id)
            .map(|(_, o)| o.clone())
    }

    async fn by_id(State(mock): State<Mock>, Path(id): Path<String>) -> Response {
        match find(&mock, &id) {
            Some(order) => Json(order).into_response(),
            None => StatusCode::NOT_FOUND.into_response(),
        }
    }

    async fn refund(State(mock): State<Mock>, Path(id): Path<String>) -> Response {
        match find(&mock, &id) {
            Some(mut order) => {
                order["status"] = json!("refunded");
                Json(order).into_response()
            }
            None => (StatusCode::NOT_FOUND, Json(json!({"error": "not_found"}))).into_response(),
        }
    }

    async fn reconciliation(Query(q): Query<HashMap<String, String>>) -> Response {
        assert_eq!(q["from"], "2025-03-01T00:00:00Z");
        assert_eq!(q["to"], "2025-03-02T00:00:00Z");
        let record = |id: &str, amount: Value| {
            json!({"vendor_order_id": id, "idempotency_key": format!("key-{id}"),
                   "status": "fulfilled", "amount": amount, "currency": "USD",
                   "brand_id": "amazon-us", "created_at": "2025-03-01T10:00:00Z",
                   "updated_at": "2025-03-01T11:00:00+01:00"})
        };
        match q.get("cursor").map(String::as_str) {
            None => Json(
                json!({"records": [record("ord_1", json!("10.00")), record("ord_2", json!(25.5))],
                                "next_cursor": "page-2"}),
            ),
            Some("page-2") => {
                Json(json!({"records": [record("ord_3", json!(7))], "next_cursor": null}))
            }
            Some(other) => panic!("unexpected cursor {other}"),
        }
        .into_response()
    }

    async fn mock_vendor() -> (GenericAdapter, Mock) {
        let mock = Mock::default();
        let router = Router::new()
            .route("/api/v1/orders", post(create).get(by_key))
            .route("/api/v1/orders/{id}", get(by_id))
            .route("/api/v1/orders/{id}/refund", post(refund))
            .route("/api/v1/reconciliation", get(reconciliation))
            .with_state(mock.clone());
        (GenericAdapter::new(endpoint(&serve(router).await)), mock)
    }

    fn place(key: &str, amount: &str) -> PlaceOrder {
        PlaceOrder {
            vendor_key: key.to_owned(),
            customer_id: "cust-1".to_owned(),
            brand_id: "amazon-us".to_owned(),
            amount: usd(amount),
        }
    }

    #[tokio::test]
    async fn places_an_order_and_a_replay_returns_the_same_order() {
        let (adapter, mock) = mock_vendor().await;
        let first = adapter.place_order(&place("key-1", "25.50")).await.unwrap();
        assert_eq!(first.vendor_order_id, "ord_1");
        assert_eq!(first.vendor_key.as_deref(), Some("key-1"));
        assert_eq!(first.amount, usd("25.50"));
        assert_eq!(first.status, "pending");
        assert_eq!(first.brand_id.as_deref(), Some("amazon-us"));
        assert!(first.created_at.is_some());

        let replay = adapter.place_order(&place("key-1", "25.50")).await.unwrap();
        assert_eq!(replay, first);
        assert_eq!(
            mock.orders.lock().unwrap().len(),
            1,
            "one vendor order per key"
        );
    }

    #[tokio::test]
    async fn a_key_reused_for_a_different_order_is_a_key_conflict() {
        let (adapter, _mock) = mock_vendor().await;
        adapter.place_order(&place("key-1", "25.50")).await.unwrap();
        let other = adapter.place_order(&place("key-1", "30.00")).await;
        assert_eq!(other, Err(VendorError::KeyConflict));
    }

    #[tokio::test]
    async fn other_422_answers_are_rejections_and_409_means_in_progress() {
        let url = serve_fixed(422, &[], r#"{"error":"invalid_brand"}"#).await;
        let adapter = GenericAdapter::new(endpoint(&url));
        match adapter.place_order(&place("k", "1.00")).await {
            Err(VendorError::Rejected { reason }) => assert!(reason.contains("invalid_brand")),
            other => panic!("{other:?}"),
        }
        let url = serve_fixed(409, &[("retry-after", "2")], "").await;
        let adapter = GenericAdapter::new(endpoint(&url));
        assert!(matches!(
            adapter.place_order(&place("k", "1.00")).await,
            Err(VendorError::Throttled { retry_after: Some(d), .. }) if d.as_secs() == 2
        ));
    }

    #[tokio::test]
    async fn an_answer_for_another_key_is_a_bad_response() {
        let body = r#"{"vendor_order_id":"ord_9","idempotency_key":"someone-else","status":"pending","amount":"1.00","currency":"USD"}"#;
        let adapter = GenericAdapter::new(endpoint(&serve_fixed(201, &[], body).await));
        assert!(matches!(
            adapter.place_order(&place("k", "1.00")).await,
            Err(VendorError::BadResponse { .. })
        ));
    }

    #[tokio::test]
    async fn amounts_with_exponents_or_extra_decimals_are_bad_responses() {
        for amount in ["1e1", "10.001", "\"10.001\"", "-5"] {
            let body = format!(
                r#"{{"vendor_order_id":"o","idempotency_key":"k","status":"pending","amount":{amount},"currency":"USD"}}"#
            );
            let adapter = GenericAdapter::new(endpoint(&serve_fixed(201, &[], &body).await));
            assert!(
                matches!(
                    adapter.place_order(&place("k", "1.00")).await,
                    Err(VendorError::BadResponse { .. })
                ),
                "{amount}"
            );
        }
    }

    #[tokio::test]
    async fn placement_failures_are_classified() {
        assert_failure_matrix(|endpoint| async move {
            GenericAdapter::new(endpoint)
                .place_order(&place("k", "1.00"))
                .await
        })
        .await;
    }

    #[tokio::test]
    async fn lookups_find_orders_by_key_and_by_id_and_none_on_404() {
        let (adapter, _mock) = mock_vendor().await;
        let placed = adapter
            .place_order(&place("key/1 ?&", "5.00"))
            .await
            .unwrap();
        assert_eq!(
            adapter.get_order("key/1 ?&").await.unwrap(),
            Some(placed.clone())
        );
        assert_eq!(adapter.get_order("missing").await.unwrap(), None);
        assert_eq!(adapter.fetch_order("ord_1").await.unwrap(), Some(placed));
        assert_eq!(adapter.fetch_order("ord/../x").await.unwrap(), None);
        assert_failure_matrix(|endpoint| async move {
            GenericAdapter::new(endpoint).get_order("k").await
        })
        .await;
    }

    #[tokio::test]
    async fn refunds_return_the_updated_order() {
        let (adapter, _mock) = mock_vendor().await;
        adapter.place_order(&place("key-1", "5.00")).await.unwrap();
        let refunded = adapter.refund("ord_1").await.unwrap();
        assert_eq!(refunded.status, "refunded");
        assert!(matches!(
            adapter.refund("ord_404").await,
            Err(VendorError::Rejected { .. })
        ));
    }

    #[tokio::test]
    async fn listing_follows_the_cursor_over_two_pages() {
        let (adapter, _mock) = mock_vendor().await;
        let from = "2025-03-01T00:00:00Z".parse().unwrap();
        let to = "2025-03-02T00:00:00Z".parse().unwrap();
        let first = adapter.list_orders(from, to, None).await.unwrap();
        assert_eq!(first.orders.len(), 2);
        assert_eq!(first.orders[1].amount, usd("25.50"));
        assert_eq!(
            first.orders[0].updated_at,
            Some("2025-03-01T10:00:00Z".parse().unwrap())
        );
        assert_eq!(first.next_cursor.as_deref(), Some("page-2"));
        let second = adapter
            .list_orders(from, to, first.next_cursor.as_deref())
            .await
            .unwrap();
        assert_eq!(second.orders.len(), 1);
        assert_eq!(second.orders[0].amount, usd("7.00"));
        assert_eq!(second.next_cursor, None);
        assert_failure_matrix(|endpoint| async move {
            GenericAdapter::new(endpoint)
                .list_orders(from, to, None)
                .await
        })
        .await;
    }

    const WEBHOOK_SECRET: &str = "generic webhook secret";
    const EVENT: &str = r#"{"event_id":"evt_1","type":"order.updated","created_at":"2025-03-01T12:00:00Z","order":{"vendor_order_id":"ord_1","idempotency_key":"key-1","status":"fulfilled","amount":"25.50","currency":"USD","brand_id":"amazon-us","created_at":"2025-03-01T10:00:00Z","updated_at":"2025-03-01T12:00:00Z"}}"#;

    fn signed(signature: &str) -> Headers {
        let mut headers = Headers::new();
        headers.insert(SIGNATURE_HEADER, signature.parse().unwrap());
        headers
    }

    #[test]
    fn webhooks_verify_with_real_signatures_and_parse_the_order() {
        let adapter = GenericAdapter::new(endpoint("http://127.0.0.1:9"));
        let secrets = [
            SecretString::from("retired"),
            SecretString::from(WEBHOOK_SECRET),
        ];
        let signature = format!(
            "sha256={}",
            signature::sign_hex_hmac(WEBHOOK_SECRET, EVENT.as_bytes())
        );
        let headers = signed(&signature);
        adapter
            .verify_webhook(&headers, EVENT.as_bytes(), &secrets, Utc::now())
            .unwrap();
        let event = adapter.parse_webhook(&headers, EVENT.as_bytes()).unwrap();
        assert_eq!(event.event_id, "evt_1");
        assert_eq!(event.event_type, "order.updated");
        assert_eq!(
            event.occurred_at,
            Some("2025-03-01T12:00:00Z".parse().unwrap())
        );
        let order = event.order().unwrap();
        assert_eq!(order.status, "fulfilled");
        assert_eq!(order.amount, usd("25.50"));
        assert_eq!(event.vendor_order_id(), Some("ord_1"));
    }

    #[test]
    fn forged_or_unsigned_webhooks_are_rejected() {
        let adapter = GenericAdapter::new(endpoint("http://127.0.0.1:9"));
        let secrets = [SecretString::from(WEBHOOK_SECRET)];
        let forged_body = EVENT.replace("25.50", "2550.00");
        let signature = signature::sign_hex_hmac(WEBHOOK_SECRET, EVENT.as_bytes());
        let headers = signed(&signature);
        assert!(matches!(
            adapter.verify_webhook(&headers, forged_body.as_bytes(), &secrets, Utc::now()),
            Err(WebhookError::Unauthenticated(_))
        ));
        let forged_signature = signature::sign_hex_hmac("guessed secret", EVENT.as_bytes());
        assert!(adapter
            .verify_webhook(
                &signed(&forged_signature),
                EVENT.as_bytes(),
                &secrets,
                Utc::now()
            )
            .is_err());
        assert!(adapter
            .verify_webhook(&Headers::new(), EVENT.as_bytes(), &secrets, Utc::now())
            .is_err());
    }

    #[test]
    fn unparseable_webhooks_are_reported() {
        let adapter = GenericAdapter::new(endpoint("http://127.0.0.1:9"));
        for body in [
            "not json",
            r#"{"event_id":"e","type":"t"}"#,
            &EVENT.replace("\"25.50\"", "1e3"),
            // A status without an amount is neither a whole order nor an order-only notice.
            r#"{"event_id":"e","type":"t","order":{"vendor_order_id":"o","status":"fulfilled"}}"#,
            r#"{"event_id":"e","type":"t","order":{"vendor_order_id":""}}"#,
        ] {
            assert!(matches!(
                adapter.parse_webhook(&Headers::new(), body.as_bytes()),
                Err(WebhookError::Unparseable(_))
            ));
        }
    }

    #[test]
    fn a_webhook_naming_only_the_order_is_a_notice_to_read_it() {
        let adapter = GenericAdapter::new(endpoint("http://127.0.0.1:9"));
        let body = r#"{"event_id":"e","type":"order.updated","order":{"vendor_order_id":"ord_9"}}"#;
        let event = adapter
            .parse_webhook(&Headers::new(), body.as_bytes())
            .unwrap();
        assert_eq!(
            event.subject,
            WebhookSubject::OrderChanged {
                vendor_order_id: "ord_9".to_owned()
            }
        );
    }
}
