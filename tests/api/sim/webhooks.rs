//! Webhooks: signing, retries and the webhook faults, and the test hooks that announce changes.

use std::collections::HashSet;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use giftrecon::sim::SimConfig;
use hmac::{Hmac, Mac};
use serde_json::{json, Value};
use sha2::Sha256;
use tokio::sync::oneshot;

use super::{eventually, json_of, order, TestSim};

const SECRET: &str = "whsec_sim_test_secret";

/// One webhook POST as received.
#[derive(Clone, Debug)]
struct Delivery {
    content_type: Option<String>,
    signature: Option<String>,
    body: Bytes,
}

impl Delivery {
    fn json(&self) -> Value {
        serde_json::from_slice(&self.body).expect("webhook body is JSON")
    }

    /// Verified independently of the simulator's own signing code.
    fn verifies_with(&self, secret: &str) -> bool {
        let Some(signature) = self.signature.as_deref().and_then(|s| hex::decode(s).ok()) else {
            return false;
        };
        let mut mac = Hmac::<Sha256>::new_from_slice(secret.as_bytes()).unwrap();
        mac.update(&self.body);
        mac.verify_slice(&signature).is_ok()
    }
}

#[derive(Clone, Default)]
struct Inbox {
    deliveries: Arc<Mutex<Vec<Delivery>>>,
    /// Answer 500 to this many POSTs before accepting.
    refuse_first: Arc<AtomicUsize>,
}

/// A tiny webhook receiver on an ephemeral port.
struct WebhookSink {
    url: String,
    inbox: Inbox,
    _stop: oneshot::Sender<()>,
}

impl WebhookSink {
    async fn start(refuse_first: usize) -> WebhookSink {
        async fn receive(
            State(inbox): State<Inbox>,
            headers: HeaderMap,
            body: Bytes,
        ) -> StatusCode {
            let header = |name: &str| {
                headers
                    .get(name)
                    .map(|v| v.to_str().unwrap_or_default().to_string())
            };
            inbox.deliveries.lock().unwrap().push(Delivery {
                content_type: header("content-type"),
                signature: header("x-signature-256"),
                body,
            });
            let refused =
                inbox
                    .refuse_first
                    .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| n.checked_sub(1));
            if refused.is_ok() {
                StatusCode::INTERNAL_SERVER_ERROR
            } else {
                StatusCode::NO_CONTENT
            }
        }
        let inbox = Inbox::default();
        inbox.refuse_first.store(refuse_first, Ordering::SeqCst);
        let app = axum::Router::new()
            .route("/hooks/vendor", axum::routing::post(receive))
            .with_state(inbox.clone());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}/hooks/vendor", listener.local_addr().unwrap());
        let (stop, stopped) = oneshot::channel::<()>();
        tokio::spawn(async move {
            axum::serve(listener, app)
                .with_graceful_shutdown(async {
                    let _ = stopped.await;
                })
                .await
        });
        WebhookSink {
            url,
            inbox,
            _stop: stop,
        }
    }

    fn deliveries(&self) -> Vec<Delivery> {
        self.inbox.deliveries.lock().unwrap().clone()
    }

    async fn wait_for(&self, count: usize) -> Vec<Delivery> {
        eventually(&format!("{count} webhook deliveries"), async || {
            let got = self.deliveries();
            (got.len() >= count).then_some(got)
        })
        .await
    }
}

/// A simulator sending webhooks to a fresh receiver.
async fn with_webhooks(fulfil_delay: Duration, refuse_first: usize) -> (TestSim, WebhookSink) {
    let sink = WebhookSink::start(refuse_first).await;
    let sim = TestSim::start(
        SimConfig {
            fulfil_delay,
            ..SimConfig::default()
        }
        .with_webhook(&sink.url, SECRET),
    )
    .await;
    (sim, sink)
}

#[tokio::test]
async fn webhooks_are_signed_over_the_exact_body() {
    let (sim, sink) = with_webhooks(Duration::from_millis(20), 0).await;
    let (_, placed) = json_of(sim.place(&order("key-12")).await).await;
    let got = sink.wait_for(2).await;
    let types: HashSet<String> = got
        .iter()
        .map(|d| d.json()["type"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(
        types,
        HashSet::from(["order.created".to_string(), "order.fulfilled".to_string()])
    );
    for delivery in &got {
        assert_eq!(delivery.content_type.as_deref(), Some("application/json"));
        let signature = delivery.signature.as_deref().unwrap();
        assert_eq!(signature, signature.to_lowercase());
        assert!(delivery.verifies_with(SECRET), "{delivery:?}");
        assert!(!delivery.verifies_with("another secret"));
        let event = delivery.json();
        assert_eq!(event["order"]["vendor_order_id"], placed["vendor_order_id"]);
        assert_eq!(event["order"]["idempotency_key"], "key-12");
        assert_eq!(event["order"]["amount"], "50.00");
        assert_eq!(event["order"]["currency"], "USD");
        chrono::DateTime::parse_from_rfc3339(event["created_at"].as_str().unwrap()).unwrap();
    }
    assert_ne!(got[0].json()["event_id"], got[1].json()["event_id"]);
    let (_, refunded) = json_of(
        sim.post(
            &format!(
                "/api/v1/orders/{}/refund",
                placed["vendor_order_id"].as_str().unwrap()
            ),
            &json!({}),
        )
        .await,
    )
    .await;
    let got = sink.wait_for(3).await;
    assert_eq!(got[2].json()["type"], "order.refunded");
    assert_eq!(got[2].json()["order"]["updated_at"], refunded["updated_at"]);
    let stats = eventually("three accepted deliveries", async || {
        let stats = sim.stats().await;
        (stats.webhooks_sent == 3).then_some(stats)
    })
    .await;
    assert_eq!(stats.webhook_events, 3);
}

#[tokio::test]
async fn a_refused_webhook_is_retried_with_the_same_event() {
    let (sim, sink) = with_webhooks(Duration::from_secs(600), 2).await;
    sim.place(&order("key-13")).await;
    let got = sink.wait_for(3).await;
    let ids: HashSet<String> = got
        .iter()
        .map(|d| d.json()["event_id"].to_string())
        .collect();
    assert_eq!(ids.len(), 1, "retries resend the same event");
    assert!(got
        .iter()
        .all(|d| d.body == got[0].body && d.verifies_with(SECRET)));
    let stats = eventually("the accepted delivery to be counted", async || {
        let stats = sim.stats().await;
        (stats.webhooks_sent == 1).then_some(stats)
    })
    .await;
    assert_eq!((stats.webhook_attempts, stats.webhooks_failed), (3, 0));
}

#[tokio::test]
async fn webhook_drop_rate_one_sends_nothing() {
    let (sim, sink) = with_webhooks(Duration::from_millis(20), 0).await;
    sim.faults(json!({"webhook_drop_rate": 1})).await;
    sim.place(&order("key-14")).await;
    let stats = eventually("both events to be dropped", async || {
        let stats = sim.stats().await;
        (stats.webhooks_dropped == 2).then_some(stats)
    })
    .await;
    assert_eq!(stats.webhook_attempts, 0);
    assert!(sink.deliveries().is_empty());
}

#[tokio::test]
async fn bad_signature_rate_one_signs_with_the_wrong_secret() {
    let (sim, sink) = with_webhooks(Duration::from_millis(20), 0).await;
    sim.faults(json!({"bad_signature_rate": 1})).await;
    sim.place(&order("key-15")).await;
    let got = sink.wait_for(2).await;
    for delivery in got {
        let signature = delivery.signature.clone().unwrap();
        assert_eq!(signature.len(), 64, "still looks like a signature");
        assert!(!delivery.verifies_with(SECRET), "{delivery:?}");
    }
    assert_eq!(sim.stats().await.webhooks_bad_signature, 2);
}

#[tokio::test]
async fn webhook_duplicate_rate_one_sends_each_event_twice() {
    let (sim, sink) = with_webhooks(Duration::from_secs(600), 0).await;
    sim.faults(json!({"webhook_duplicate_rate": 1})).await;
    sim.place(&order("key-16")).await;
    let got = sink.wait_for(2).await;
    assert_eq!(got[0].json()["event_id"], got[1].json()["event_id"]);
    assert_eq!(got[0].body, got[1].body);
    assert!(got[1].verifies_with(SECRET));
    let stats = eventually("both copies to be counted", async || {
        let stats = sim.stats().await;
        (stats.webhooks_sent == 2).then_some(stats)
    })
    .await;
    assert_eq!((stats.webhook_events, stats.webhooks_duplicated), (1, 1));
}

#[tokio::test]
async fn webhook_reorder_rate_one_lets_the_later_event_overtake() {
    let (sim, sink) = with_webhooks(Duration::from_millis(50), 0).await;
    sim.faults(json!({"webhook_reorder_rate": 1})).await;
    sim.place(&order("key-17")).await;
    let got = sink.wait_for(2).await;
    let types: Vec<Value> = got.iter().map(|d| d.json()["type"].clone()).collect();
    assert_eq!(types, [json!("order.fulfilled"), json!("order.created")]);
    assert!(sim.stats().await.webhooks_reordered >= 1);
}

#[tokio::test]
async fn test_hooks_insert_orders_and_change_status() {
    let (sim, sink) = with_webhooks(Duration::from_secs(600), 0).await;
    let quiet = json!({"brand_id": "b", "amount": "5", "currency": "EUR"});
    let (status, inserted) = json_of(sim.post("/sim/orders", &quiet).await).await;
    assert_eq!(status, 201);
    assert_eq!(inserted["status"], "fulfilled");
    assert_eq!(inserted["amount"], "5.00");
    assert_eq!(inserted["idempotency_key"], Value::Null);
    let loud = json!({"brand_id": "b", "amount": "5", "currency": "EUR", "status": "pending",
                      "idempotency_key": "key-18", "notify": true});
    let (_, announced) = json_of(sim.post("/sim/orders", &loud).await).await;
    let got = sink.wait_for(1).await;
    assert_eq!(got[0].json()["type"], "order.created");
    assert_eq!(
        got[0].json()["order"]["vendor_order_id"],
        announced["vendor_order_id"]
    );

    let id = inserted["vendor_order_id"].as_str().unwrap();
    let path = format!("/sim/orders/{id}/status");
    let (status, failed) = json_of(sim.post(&path, &json!({"status": "failed"})).await).await;
    assert_eq!(
        (status, &failed["status"]),
        (StatusCode::OK, &json!("failed"))
    );
    let got = sink.wait_for(2).await;
    assert_eq!(got[1].json()["type"], "order.failed");
    assert_eq!(got[1].json()["order"]["vendor_order_id"], id);
    let (_, processing) = json_of(sim.post(&path, &json!({"status": "processing"})).await).await;
    assert_eq!(processing["status"], "processing");
    assert_eq!(sink.wait_for(3).await[2].json()["type"], "order.updated");

    assert_eq!(
        sim.post(&path, &json!({"status": "done"})).await.status(),
        400
    );
    assert_eq!(
        sim.post(
            "/sim/orders/ord_missing/status",
            &json!({"status": "failed"})
        )
        .await
        .status(),
        404
    );
    // The key an inserted order carries is known to the API.
    let (status, _) = json_of(sim.get("/api/v1/orders?idempotency_key=key-18").await).await;
    assert_eq!(status, 200);
    let duplicate =
        json!({"vendor_order_id": id, "brand_id": "b", "amount": "5", "currency": "EUR"});
    assert_eq!(sim.post("/sim/orders", &duplicate).await.status(), 409);

    let stats = sim.stats().await;
    assert_eq!(stats.orders, 0, "only API placements count");
    assert_eq!(stats.webhook_events, 3, "the quiet insert sent nothing");
}
