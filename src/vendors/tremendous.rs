//! The Tremendous API (v2), as far as its public reference and official SDKs describe it.
//!
//! - `POST {base}/api/v2/orders` with `external_id` (our key), one reward of one product and a
//!   `denomination` (a JSON number, written exactly) → `{"order": {…}}`. Tremendous answers a
//!   repeated `external_id` with the original order (documented: "201", "fail to create any further
//!   orders"); a repeated `external_id` with a different payload gets 409, read as `KeyConflict`.
//! - `GET {base}/api/v2/orders?external_id=K`, `GET {base}/api/v2/orders/{id}`.
//! - `GET {base}/api/v2/orders?offset&limit&created_at[gte]&created_at[lte]` → `{orders,
//!   total_count}`, newest first; the cursor we hand out is the next offset.
//! - Webhooks `{event, uuid, created_utc, payload: {resource: {id, type}}}` carry no order, only its
//!   id, signed with `Tremendous-Webhook-Signature: sha256=<hex>` (HMAC-SHA256 of the raw body keyed
//!   with the webhook's private key; confirmed only by third-party code, no timestamp).
//! - Refunds: Tremendous has no order refund, only `POST /rewards/{id}/cancel`, which it allows for
//!   non-expired rewards whose delivery failed (redeemed rewards answer 422). `refund` cancels
//!   each reward of the order and returns the order as it then stands.
//!
//! Amounts: an order's amount is the sum of its rewards' `value.denomination` in
//! `value.currency_code` (the face value ordered), not `payment.total`, which adds fees and is
//! in the organisation's currency. Statuses are passed through unmapped (OPEN, EXECUTED, FAILED,
//! CANCELED, PENDING APPROVAL, PENDING INTERNAL PAYMENT APPROVAL, PENDING SETTLEMENT).
//! `base_url` is the host, e.g. `https://testflight.tremendous.com` (sandbox) or
//! `https://www.tremendous.com`; the API key is sent as a bearer token.

use axum::http::StatusCode;
use reqwest::Method;
use secrecy::ExposeSecret;
use serde::{Deserialize, Serialize};
use serde_json::value::RawValue;

use super::transport::{
    money_as_json_number, money_from_json, parse_currency, path_segment, rfc3339, Http, Reply,
};
use super::*;

/// Path prefix of the API under `base_url`.
pub const API_PREFIX: &str = "/api/v2";

/// The header carrying the webhook signature (`sha256=<hex>`).
pub const SIGNATURE_HEADER: &str = "tremendous-webhook-signature";

/// How orders are paid: `balance` is the account's prepaid balance. Unconfirmed for your account:
/// change it to a funding source id if orders must be paid otherwise.
pub const FUNDING_SOURCE_ID: &str = "balance";

/// How rewards are delivered: `LINK` returns a redemption link instead of emailing anyone, since
/// giftrecon delivers to its customers itself (no recipient needed: unconfirmed).
pub const DELIVERY_METHOD: &str = "LINK";

/// The status of an answer meaning "this external_id was used for a different order".
pub const KEY_CONFLICT_STATUS: u16 = 409;

/// Orders per listing page (Tremendous allows up to 500).
pub const LIST_PAGE_LIMIT: usize = 100;

pub struct TremendousAdapter {
    http: Http,
    api_key: Option<SecretString>,
}

impl TremendousAdapter {
    pub fn new(endpoint: VendorEndpoint) -> Self {
        TremendousAdapter {
            http: Http::new(&endpoint),
            api_key: endpoint.api_key,
        }
    }

    fn request(&self, method: Method, path: &str) -> reqwest::RequestBuilder {
        let request = self.http.request(method, &format!("{API_PREFIX}{path}"));
        match &self.api_key {
            Some(key) => request.bearer_auth(key.expose_secret()),
            None => request,
        }
    }

    async fn send_ok(&self, request: reqwest::RequestBuilder) -> Result<Reply, VendorError> {
        let reply = self.http.send(request).await?;
        if reply.is_success() {
            Ok(reply)
        } else {
            Err(reply.failure(Utc::now()))
        }
    }

    /// The raw order by Tremendous id, `None` on 404.
    async fn read_order(&self, id: &str) -> Result<Option<WireOrder>, VendorError> {
        let path = format!("/orders/{}", path_segment(id));
        let reply = self.http.send(self.request(Method::GET, &path)).await?;
        if reply.status == StatusCode::NOT_FOUND {
            return Ok(None);
        }
        if !reply.is_success() {
            return Err(reply.failure(Utc::now()));
        }
        Ok(Some(reply.json::<OrderEnvelope>()?.order))
    }

    /// Converts a listed order, fetching it in full if the listing left out its rewards.
    async fn complete(&self, order: WireOrder) -> Result<VendorOrder, VendorError> {
        if order.rewards.as_ref().is_some_and(|r| !r.is_empty()) {
            return order.into_order();
        }
        match self.read_order(&order.id).await? {
            Some(full) => full.into_order(),
            None => Err(VendorError::BadResponse {
                reason: format!("listed order {} cannot be read", order.id),
            }),
        }
    }
}

#[derive(Serialize)]
struct CreateOrder<'a> {
    external_id: &'a str,
    payment: Payment,
    reward: NewReward<'a>,
}

#[derive(Serialize)]
struct Payment {
    funding_source_id: &'static str,
}

#[derive(Serialize)]
struct NewReward<'a> {
    products: [&'a str; 1],
    value: NewValue,
    delivery: Delivery,
}

#[derive(Serialize)]
struct NewValue {
    denomination: Box<RawValue>,
    currency_code: &'static str,
}

#[derive(Serialize)]
struct Delivery {
    method: &'static str,
}

#[derive(Deserialize)]
struct OrderEnvelope {
    order: WireOrder,
}

#[derive(Deserialize)]
struct OrderList {
    orders: Vec<WireOrder>,
    #[serde(default)]
    total_count: Option<u64>,
}

#[derive(Deserialize)]
struct WireOrder {
    id: String,
    #[serde(default)]
    external_id: Option<String>,
    status: String,
    #[serde(default)]
    created_at: Option<DateTime<Utc>>,
    #[serde(default)]
    rewards: Option<Vec<WireReward>>,
}

#[derive(Deserialize)]
struct WireReward {
    #[serde(default)]
    id: Option<String>,
    #[serde(default)]
    value: Option<WireValue>,
}

#[derive(Deserialize)]
struct WireValue {
    denomination: Box<RawValue>,
    #[serde(default)]
    currency_code: Option<String>,
}

impl WireOrder {
    fn into_order(self) -> Result<VendorOrder, VendorError> {
        let bad = |reason: String| VendorError::BadResponse { reason };
        if self.id.is_empty() || self.status.is_empty() {
            return Err(bad("order without id or status".to_owned()));
        }
        let rewards = self.rewards.unwrap_or_default();
        let mut amount: Option<Money> = None;
        for reward in &rewards {
            let value = reward
                .value
                .as_ref()
                .ok_or_else(|| bad(format!("a reward of order {} has no value", self.id)))?;
            let code = value.currency_code.as_deref().ok_or_else(|| {
                bad(format!(
                    "a reward of order {} has no currency_code",
                    self.id
                ))
            })?;
            let money =
                money_from_json(&value.denomination, parse_currency(code)?, "denomination")?;
            amount = Some(match amount {
                None => money,
                Some(sum) => sum.checked_add(money).map_err(|e| bad(e.to_string()))?,
            });
        }
        let amount = amount.ok_or_else(|| bad(format!("order {} has no rewards", self.id)))?;
        Ok(VendorOrder {
            vendor_order_id: self.id,
            vendor_key: self.external_id,
            reference_id: None,
            brand_id: None,
            amount,
            status: self.status,
            created_at: self.created_at,
            updated_at: None,
        })
    }
}

#[derive(Deserialize)]
struct WireEvent {
    event: String,
    uuid: String,
    #[serde(default)]
    created_utc: Option<String>,
    payload: EventPayload,
}

#[derive(Deserialize)]
struct EventPayload {
    resource: Resource,
}

#[derive(Deserialize)]
struct Resource {
    id: String,
    #[serde(rename = "type", default)]
    resource_type: Option<String>,
}

/// `created_utc` as RFC 3339, or as a naive time that the field name says is UTC.
fn parse_created_utc(text: &str) -> Option<DateTime<Utc>> {
    if let Ok(at) = DateTime::parse_from_rfc3339(text) {
        return Some(at.with_timezone(&Utc));
    }
    chrono::NaiveDateTime::parse_from_str(text, "%Y-%m-%dT%H:%M:%S%.f")
        .ok()
        .map(|naive| naive.and_utc())
}

#[async_trait::async_trait]
impl VendorAdapter for TremendousAdapter {
    fn kind(&self) -> VendorKind {
        VendorKind::Tremendous
    }

    #[tracing::instrument(skip_all, fields(vendor = "tremendous", vendor_key = %order.vendor_key))]
    async fn place_order(&self, order: &PlaceOrder) -> Result<VendorOrder, VendorError> {
        let body = CreateOrder {
            external_id: &order.vendor_key,
            payment: Payment {
                funding_source_id: FUNDING_SOURCE_ID,
            },
            reward: NewReward {
                products: [&order.brand_id],
                value: NewValue {
                    denomination: money_as_json_number(&order.amount),
                    currency_code: order.amount.currency().code(),
                },
                delivery: Delivery {
                    method: DELIVERY_METHOD,
                },
            },
        };
        let reply = self
            .http
            .send(self.request(Method::POST, "/orders").json(&body))
            .await?;
        if reply.status.as_u16() == KEY_CONFLICT_STATUS {
            return Err(VendorError::KeyConflict);
        }
        if !reply.is_success() {
            return Err(reply.failure(Utc::now()));
        }
        let placed = reply.json::<OrderEnvelope>()?.order.into_order()?;
        if placed.vendor_key.as_deref() != Some(order.vendor_key.as_str()) {
            return Err(VendorError::BadResponse {
                reason: "the answer does not carry our external_id".to_owned(),
            });
        }
        Ok(placed)
    }

    #[tracing::instrument(skip_all, fields(vendor = "tremendous", vendor_key))]
    async fn get_order(&self, vendor_key: &str) -> Result<Option<VendorOrder>, VendorError> {
        let request = self
            .request(Method::GET, "/orders")
            .query(&[("external_id", vendor_key), ("limit", "1")]);
        let list: OrderList = self.send_ok(request).await?.json()?;
        match list.orders.into_iter().next() {
            Some(order) if order.external_id.as_deref() == Some(vendor_key) => {
                self.complete(order).await.map(Some)
            }
            Some(_) => Err(VendorError::BadResponse {
                reason: "the external_id filter returned another order".to_owned(),
            }),
            None => Ok(None),
        }
    }

    #[tracing::instrument(skip_all, fields(vendor = "tremendous", vendor_order_id))]
    async fn fetch_order(&self, vendor_order_id: &str) -> Result<Option<VendorOrder>, VendorError> {
        match self.read_order(vendor_order_id).await? {
            Some(order) => order.into_order().map(Some),
            None => Ok(None),
        }
    }

    /// Orders created in `[from, to)`. Tremendous filters on creation time only, so an order
    /// created earlier whose status changed in the window is not listed (webhooks cover those).
    #[tracing::instrument(skip_all, fields(vendor = "tremendous"))]
    async fn list_orders(
        &self,
        from: DateTime<Utc>,
        to: DateTime<Utc>,
        cursor: Option<&str>,
    ) -> Result<OrderPage, VendorError> {
        let offset: u64 = match cursor {
            None => 0,
            Some(c) => c.parse().map_err(|_| VendorError::Rejected {
                reason: format!("{c:?} is not a Tremendous listing cursor (an offset)"),
            })?,
        };
        let query = [
            ("offset", offset.to_string()),
            ("limit", LIST_PAGE_LIMIT.to_string()),
            ("created_at[gte]", rfc3339(from)),
            ("created_at[lte]", rfc3339(to)),
        ];
        let request = self.request(Method::GET, "/orders").query(&query);
        let list: OrderList = self.send_ok(request).await?.json()?;
        let listed = list.orders.len() as u64;
        let next = offset + listed;
        let more = listed > 0
            && match list.total_count {
                Some(total) => next < total,
                None => listed == LIST_PAGE_LIMIT as u64,
            };
        let mut orders = Vec::with_capacity(list.orders.len());
        for order in list.orders {
            // `created_at[lte]` is inclusive; our window is not.
            if order.created_at.is_some_and(|at| at >= to) {
                continue;
            }
            orders.push(self.complete(order).await?);
        }
        Ok(OrderPage {
            orders,
            next_cursor: more.then(|| next.to_string()),
        })
    }

    #[tracing::instrument(skip_all, fields(vendor = "tremendous", vendor_order_id))]
    async fn refund(&self, vendor_order_id: &str) -> Result<VendorOrder, VendorError> {
        let order =
            self.read_order(vendor_order_id)
                .await?
                .ok_or_else(|| VendorError::Rejected {
                    reason: format!("Tremendous has no order {vendor_order_id}"),
                })?;
        let reward_ids: Vec<String> = order
            .rewards
            .iter()
            .flatten()
            .filter_map(|r| r.id.clone())
            .collect();
        if reward_ids.is_empty() {
            return Err(VendorError::BadResponse {
                reason: format!("order {vendor_order_id} has no rewards to cancel"),
            });
        }
        for reward_id in reward_ids {
            let path = format!("/rewards/{}/cancel", path_segment(&reward_id));
            self.send_ok(self.request(Method::POST, &path)).await?;
        }
        self.read_order(vendor_order_id)
            .await?
            .ok_or_else(|| VendorError::BadResponse {
                reason: format!("order {vendor_order_id} vanished after its rewards were canceled"),
            })?
            .into_order()
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
                "not a Tremendous webhook event ({:?} error at line {} column {})",
                e.classify(),
                e.line(),
                e.column()
            ))
        })?;
        if event.uuid.is_empty() || event.payload.resource.id.is_empty() {
            return Err(WebhookError::Unparseable(
                "event without uuid or resource id".to_owned(),
            ));
        }
        let resource = event.payload.resource;
        let about_an_order = match resource.resource_type.as_deref() {
            Some(kind) => kind.eq_ignore_ascii_case("orders") || kind.eq_ignore_ascii_case("order"),
            None => event.event.starts_with("ORDERS."),
        };
        let subject = if about_an_order {
            WebhookSubject::OrderChanged {
                vendor_order_id: resource.id,
            }
        } else {
            WebhookSubject::Other {
                resource: Some(format!(
                    "{} {}",
                    resource.resource_type.as_deref().unwrap_or("resource"),
                    resource.id
                )),
            }
        };
        Ok(WebhookEvent {
            event_id: event.uuid,
            event_type: event.event,
            occurred_at: event.created_utc.as_deref().and_then(parse_created_utc),
            subject,
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

    /// A small Tremendous: external_id → (request, order), plus canceled rewards.
    #[derive(Clone, Default)]
    struct Mock {
        orders: Arc<Mutex<Vec<(Value, Value)>>>,
    }

    fn order_json(n: usize, request: &Value, status: &str) -> Value {
        json!({
            "id": format!("ORD{n}"),
            "external_id": request["external_id"],
            "campaign_id": null,
            "created_at": format!("2025-03-01T10:00:0{n}.245Z"),
            "status": status,
            "channel": "API",
            "payment": {"subtotal": 25.5, "total": 26.78, "fees": 1.28, "discount": 0, "currency_code": "USD"},
            "rewards": [{
                "id": format!("RWD{n}"),
                "order_id": format!("ORD{n}"),
                "created_at": "2025-03-01T10:00:00Z",
                "value": request["reward"]["value"],
                "delivery": {"method": "LINK", "status": "SUCCEEDED", "link": "https://redeem.example/secret"}
            }]
        })
    }

    async fn create(State(mock): State<Mock>, headers: HeaderMap, body: String) -> Response {
        assert_eq!(
            headers.get("authorization").unwrap(),
            "Bearer test-api-key",
            "bearer auth"
        );
        // The denomination must be an exact JSON number with the currency's two decimals, never
        // a string or a float artefact.
        let after = body.split(r#""denomination":"#).nth(1).unwrap();
        let text: String = after
            .chars()
            .take_while(|c| c.is_ascii_digit() || *c == '.')
            .collect();
        assert!(
            text.split_once('.')
                .is_some_and(|(_, decimals)| decimals.len() == 2),
            "{body}"
        );
        let request: Value = serde_json::from_str(&body).unwrap();
        assert_eq!(request["payment"]["funding_source_id"], "balance");
        assert_eq!(request["reward"]["products"], json!(["AMZN-US"]));
        let mut orders = mock.orders.lock().unwrap();
        if let Some((previous, order)) = orders
            .iter()
            .find(|(r, _)| r["external_id"] == request["external_id"])
        {
            return if *previous == request {
                (StatusCode::CREATED, Json(json!({"order": order}))).into_response()
            } else {
                (
                    StatusCode::CONFLICT,
                    Json(json!({"errors": {"message": "external_id already used"}})),
                )
                    .into_response()
            };
        }
        let order = order_json(orders.len() + 1, &request, "EXECUTED");
        orders.push((request, order.clone()));
        (StatusCode::OK, Json(json!({"order": order}))).into_response()
    }

    async fn list(State(mock): State<Mock>, Query(q): Query<HashMap<String, String>>) -> Response {
        let orders = mock.orders.lock().unwrap();
        if let Some(external_id) = q.get("external_id") {
            let found: Vec<Value> = orders
                .iter()
                .filter(|(_, o)| o["external_id"] == **external_id)
                .map(|(_, o)| o.clone())
                .collect();
            return Json(json!({"orders": found, "total_count": found.len()})).into_response();
        }
        assert_eq!(q["created_at[gte]"], "2025-03-01T00:00:00Z");
        assert_eq!(q["created_at[lte]"], "2025-03-02T00:00:00Z");
        assert_eq!(q["limit"], LIST_PAGE_LIMIT.to_string());
        let value = |d: Value| json!({"external_id": "k", "reward": {"value": {"denomination": d, "currency_code": "USD"}}});
        let all = [
            order_json(1, &value(json!(10)), "EXECUTED"),
            order_json(2, &value(json!(12.5)), "OPEN"),
            {
                // Listed without rewards: the adapter reads it in full.
                let mut o = order_json(3, &value(json!(0)), "PENDING APPROVAL");
                o.as_object_mut().unwrap().remove("rewards");
                o
            },
        ];
        let page: Vec<Value> = match q["offset"].as_str() {
            "0" => all[..2].to_vec(),
            "2" => all[2..].to_vec(),
            other => panic!("offset {other}"),
        };
        Json(json!({"orders": page, "total_count": 3})).into_response()
    }

    async fn by_id(State(mock): State<Mock>, Path(id): Path<String>) -> Response {
        if id == "ORD3" {
            let request = json!({"external_id": "k3", "reward": {"value": {"denomination": "7.25", "currency_code": "USD"}}});
            return Json(json!({"order": order_json(3, &request, "PENDING APPROVAL")}))
                .into_response();
        }
        let orders = mock.orders.lock().unwrap();
        match orders.iter().find(|(_, o)| o["id"] == id) {
            Some((_, order)) => Json(json!({"order": order})).into_response(),
            None => StatusCode::NOT_FOUND.into_response(),
        }
    }

    async fn cancel(State(mock): State<Mock>, Path(id): Path<String>) -> Response {
        let mut orders = mock.orders.lock().unwrap();
        match orders.iter_mut().find(|(_, o)| o["rewards"][0]["id"] == id) {
            Some((_, order)) if order["status"] != "CANCELED" => {
                order["status"] = json!("CANCELED");
                Json(json!({})).into_response()
            }
            _ => (
                StatusCode::UNPROCESSABLE_ENTITY,
                Json(json!({"errors": {"message": "cannot cancel"}})),
            )
                .into_response(),
        }
    }

    async fn mock_vendor() -> (TremendousAdapter, Mock) {
        let mock = Mock::default();
        let router = Router::new()
            .route("/api/v2/orders", post(create).get(list))
            .route("/api/v2/orders/{id}", get(by_id))
            .route("/api/v2/rewards/{id}/cancel", post(cancel))
            .with_state(mock.clone());
        (TremendousAdapter::new(endpoint(&serve(router).await)), mock)
    }

    fn place(key: &str, amount: &str) -> PlaceOrder {
        PlaceOrder {
            vendor_key: key.to_owned(),
            customer_id: "cust-1".to_owned(),
            brand_id: "AMZN-US".to_owned(),
            amount: usd(amount),
        }
    }

    #[tokio::test]
    async fn places_an_order_and_the_201_replay_is_the_same_order() {
        let (adapter, mock) = mock_vendor().await;
        let first = adapter.place_order(&place("key-1", "25.50")).await.unwrap();
        assert_eq!(first.vendor_order_id, "ORD1");
        assert_eq!(first.vendor_key.as_deref(), Some("key-1"));
        assert_eq!(first.amount, usd("25.50"), "face value, not payment.total");
        assert_eq!(first.status, "EXECUTED");
        assert_eq!(
            first.created_at,
            Some("2025-03-01T10:00:01.245Z".parse().unwrap())
        );
        let replay = adapter.place_order(&place("key-1", "25.50")).await.unwrap();
        assert_eq!(replay, first);
        assert_eq!(mock.orders.lock().unwrap().len(), 1);
    }

    #[tokio::test]
    async fn a_409_for_a_reused_external_id_is_a_key_conflict() {
        let (adapter, _mock) = mock_vendor().await;
        adapter.place_order(&place("key-1", "25.50")).await.unwrap();
        // Same key, different amount: Tremendous refuses with 409.
        assert_eq!(
            adapter.place_order(&place("key-1", "30.00")).await,
            Err(VendorError::KeyConflict)
        );
    }

    #[tokio::test]
    async fn an_answer_without_our_external_id_is_a_bad_response() {
        let body = r#"{"order":{"id":"ORD9","external_id":null,"status":"EXECUTED","rewards":[{"value":{"denomination":1,"currency_code":"USD"}}]}}"#;
        let adapter = TremendousAdapter::new(endpoint(&serve_fixed(200, &[], body).await));
        assert!(matches!(
            adapter.place_order(&place("k", "1.00")).await,
            Err(VendorError::BadResponse { .. })
        ));
        let exponent = r#"{"order":{"id":"ORD9","external_id":"k","status":"EXECUTED","rewards":[{"value":{"denomination":1e2,"currency_code":"USD"}}]}}"#;
        let adapter = TremendousAdapter::new(endpoint(&serve_fixed(200, &[], exponent).await));
        assert!(matches!(
            adapter.place_order(&place("k", "1.00")).await,
            Err(VendorError::BadResponse { .. })
        ));
    }

    #[tokio::test]
    async fn placement_failures_are_classified() {
        assert_failure_matrix(|endpoint| async move {
            TremendousAdapter::new(endpoint)
                .place_order(&place("k", "25.50"))
                .await
        })
        .await;
    }

    #[tokio::test]
    async fn lookups_by_external_id_and_by_id() {
        let (adapter, _mock) = mock_vendor().await;
        let placed = adapter.place_order(&place("key-1", "25.50")).await.unwrap();
        assert_eq!(
            adapter.get_order("key-1").await.unwrap(),
            Some(placed.clone())
        );
        assert_eq!(adapter.get_order("nope").await.unwrap(), None);
        assert_eq!(adapter.fetch_order("ORD1").await.unwrap(), Some(placed));
        assert_eq!(adapter.fetch_order("ORD404").await.unwrap(), None);
        assert_failure_matrix(|endpoint| async move {
            TremendousAdapter::new(endpoint).fetch_order("ORD1").await
        })
        .await;
    }

    #[tokio::test]
    async fn listing_pages_by_offset_and_completes_orders_listed_without_rewards() {
        let (adapter, _mock) = mock_vendor().await;
        let from = "2025-03-01T00:00:00Z".parse().unwrap();
        let to = "2025-03-02T00:00:00Z".parse().unwrap();
        let first = adapter.list_orders(from, to, None).await.unwrap();
        let amounts: Vec<Money> = first.orders.iter().map(|o| o.amount).collect();
        assert_eq!(amounts, [usd("10.00"), usd("12.50")]);
        assert_eq!(first.next_cursor.as_deref(), Some("2"));
        let second = adapter.list_orders(from, to, Some("2")).await.unwrap();
        assert_eq!(second.orders.len(), 1);
        assert_eq!(second.orders[0].amount, usd("7.25"));
        assert_eq!(second.orders[0].status, "PENDING APPROVAL");
        assert_eq!(second.next_cursor, None);
        assert!(matches!(
            adapter.list_orders(from, to, Some("page-2")).await,
            Err(VendorError::Rejected { .. })
        ));
    }

    #[tokio::test]
    async fn refund_cancels_the_rewards_and_returns_the_canceled_order() {
        let (adapter, _mock) = mock_vendor().await;
        adapter.place_order(&place("key-1", "25.50")).await.unwrap();
        let refunded = adapter.refund("ORD1").await.unwrap();
        assert_eq!(refunded.status, "CANCELED");
        // A second cancel is refused by Tremendous (422): rejected, not retried.
        assert!(matches!(
            adapter.refund("ORD1").await,
            Err(VendorError::Rejected { .. })
        ));
        assert!(matches!(
            adapter.refund("ORD404").await,
            Err(VendorError::Rejected { .. })
        ));
    }

    const SECRET: &str = "tremendous webhook private key";
    const ORDER_EVENT: &str = r#"{"event":"ORDERS.APPROVED","uuid":"0b0e2f8c-7f44-4b7e-9a33-5c1d2e3f4a5b","created_utc":"2025-03-01T12:00:00.123Z","payload":{"resource":{"id":"ORD1","type":"orders"},"meta":{}}}"#;

    fn signed(body: &str, secret: &str) -> Headers {
        let mut headers = Headers::new();
        let value = format!(
            "sha256={}",
            signature::sign_hex_hmac(secret, body.as_bytes())
        );
        headers.insert(SIGNATURE_HEADER, value.parse().unwrap());
        headers
    }

    #[test]
    fn order_webhooks_verify_and_name_the_order_to_fetch() {
        let adapter = TremendousAdapter::new(endpoint("http://127.0.0.1:9"));
        let secrets = [SecretString::from(SECRET)];
        let headers = signed(ORDER_EVENT, SECRET);
        adapter
            .verify_webhook(&headers, ORDER_EVENT.as_bytes(), &secrets, Utc::now())
            .unwrap();
        let event = adapter
            .parse_webhook(&headers, ORDER_EVENT.as_bytes())
            .unwrap();
        assert_eq!(event.event_id, "0b0e2f8c-7f44-4b7e-9a33-5c1d2e3f4a5b");
        assert_eq!(event.event_type, "ORDERS.APPROVED");
        assert_eq!(
            event.occurred_at,
            Some("2025-03-01T12:00:00.123Z".parse().unwrap())
        );
        assert_eq!(
            event.subject,
            WebhookSubject::OrderChanged {
                vendor_order_id: "ORD1".to_owned()
            }
        );
        assert_eq!(event.vendor_order_id(), Some("ORD1"));
        assert_eq!(event.order(), None);
    }

    #[test]
    fn reward_webhooks_are_other_events_and_naive_times_are_utc() {
        let adapter = TremendousAdapter::new(endpoint("http://127.0.0.1:9"));
        let body = r#"{"event":"REWARDS.DELIVERY.SUCCEEDED","uuid":"u-2","created_utc":"2025-03-01T12:00:00","payload":{"resource":{"id":"RWD1","type":"rewards"}}}"#;
        let event = adapter
            .parse_webhook(&Headers::new(), body.as_bytes())
            .unwrap();
        assert_eq!(
            event.subject,
            WebhookSubject::Other {
                resource: Some("rewards RWD1".to_owned())
            }
        );
        assert_eq!(
            event.occurred_at,
            Some("2025-03-01T12:00:00Z".parse().unwrap())
        );
        assert!(matches!(
            adapter.parse_webhook(&Headers::new(), br#"{"event":"X"}"#),
            Err(WebhookError::Unparseable(_))
        ));
    }

    #[test]
    fn forged_webhooks_are_rejected() {
        let adapter = TremendousAdapter::new(endpoint("http://127.0.0.1:9"));
        let secrets = [SecretString::from("old key"), SecretString::from(SECRET)];
        let forged = ORDER_EVENT.replace("ORD1", "ORD2");
        let headers = signed(ORDER_EVENT, SECRET);
        assert!(adapter
            .verify_webhook(&headers, forged.as_bytes(), &secrets, Utc::now())
            .is_err());
        let headers = signed(ORDER_EVENT, "attacker key");
        assert!(adapter
            .verify_webhook(&headers, ORDER_EVENT.as_bytes(), &secrets, Utc::now())
            .is_err());
        let mut headers = Headers::new();
        headers.insert(SIGNATURE_HEADER, "sha256=".parse().unwrap());
        assert!(adapter
            .verify_webhook(&headers, ORDER_EVENT.as_bytes(), &secrets, Utc::now())
            .is_err());
    }
}
