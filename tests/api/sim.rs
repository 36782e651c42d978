//! The vendor simulator, driven over HTTP like the generic adapter will drive it.

use std::collections::HashSet;
use std::time::{Duration, Instant};

use axum::http::StatusCode;
use giftrecon::sim::{self, SimConfig, SimHandle, SimStats};
use serde_json::{json, Value};

use crate::helpers::{run_cli, spawn_listening, stderr};

mod reconciliation;
mod webhooks;

/// A simulator in this process, plus a client for it.
struct TestSim {
    handle: SimHandle,
    client: reqwest::Client,
}

impl TestSim {
    async fn start(config: SimConfig) -> TestSim {
        TestSim {
            handle: sim::spawn(config).await.expect("start the simulator"),
            client: reqwest::Client::builder()
                .timeout(Duration::from_secs(10))
                .build()
                .unwrap(),
        }
    }

    /// A simulator whose orders stay pending for a long time (no fulfilment during the test).
    async fn idle() -> TestSim {
        TestSim::start(SimConfig {
            fulfil_delay: Duration::from_secs(600),
            ..SimConfig::default()
        })
        .await
    }

    fn url(&self, path: &str) -> String {
        format!("{}{path}", self.handle.base_url())
    }

    async fn get(&self, path: &str) -> reqwest::Response {
        self.client.get(self.url(path)).send().await.expect("GET")
    }

    async fn post(&self, path: &str, body: &Value) -> reqwest::Response {
        self.client
            .post(self.url(path))
            .json(body)
            .send()
            .await
            .expect("POST")
    }

    async fn place(&self, body: &Value) -> reqwest::Response {
        self.post("/api/v1/orders", body).await
    }

    async fn faults(&self, patch: Value) -> Value {
        let response = self.post("/sim/faults", &patch).await;
        assert_eq!(response.status(), 200);
        response.json().await.unwrap()
    }

    async fn stats(&self) -> SimStats {
        self.get("/sim/stats").await.json().await.unwrap()
    }
}

fn order(key: &str) -> Value {
    json!({
        "idempotency_key": key,
        "customer_id": "cust_1",
        "brand_id": "amazon-us",
        "amount": "50.00",
        "currency": "USD",
    })
}

async fn json_of(response: reqwest::Response) -> (StatusCode, Value) {
    let status = response.status();
    (status, response.json().await.expect("a JSON body"))
}

/// Polls `probe` until it answers, failing the test after ten seconds.
async fn eventually<T>(what: &str, mut probe: impl AsyncFnMut() -> Option<T>) -> T {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        if let Some(value) = probe().await {
            return value;
        }
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

#[tokio::test]
async fn a_repeated_key_replays_the_order_with_200() {
    let sim = TestSim::idle().await;
    let (status, first) = json_of(sim.place(&order("key-1")).await).await;
    assert_eq!(status, 201);
    assert_eq!(first["status"], "pending");
    assert_eq!(first["amount"], "50.00");
    assert_eq!(first["currency"], "USD");
    assert_eq!(first["idempotency_key"], "key-1");
    assert_eq!(first["brand_id"], "amazon-us");
    assert_eq!(first["customer_id"], "cust_1");
    let created = first["created_at"].as_str().unwrap();
    assert!(created.ends_with('Z'), "{created}");
    chrono::DateTime::parse_from_rfc3339(created).expect("RFC 3339");
    assert_eq!(first["updated_at"], first["created_at"]);

    // The same order with the amount as a JSON number is the same request.
    let mut again = order("key-1");
    again["amount"] = json!(50);
    let (status, replay) = json_of(sim.place(&again).await).await;
    assert_eq!(status, 200);
    assert_eq!(replay["vendor_order_id"], first["vendor_order_id"]);

    let id = first["vendor_order_id"].as_str().unwrap();
    let (status, by_id) = json_of(sim.get(&format!("/api/v1/orders/{id}")).await).await;
    assert_eq!((status, &by_id), (StatusCode::OK, &first));
    let (status, by_key) = json_of(sim.get("/api/v1/orders?idempotency_key=key-1").await).await;
    assert_eq!((status, &by_key), (StatusCode::OK, &first));
    assert_eq!(sim.get("/api/v1/orders/ord_missing").await.status(), 404);
    let (status, missing) = json_of(sim.get("/api/v1/orders?idempotency_key=nope").await).await;
    assert_eq!(status, 404);
    assert_eq!(missing["error"], "not_found");

    let stats = sim.stats().await;
    assert_eq!(
        (stats.orders, stats.keys, stats.max_orders_per_key),
        (1, 1, 1)
    );
}

#[tokio::test]
async fn a_key_reused_for_a_different_order_is_422() {
    let sim = TestSim::idle().await;
    assert_eq!(sim.place(&order("key-2")).await.status(), 201);
    for (field, value) in [
        ("amount", json!("50.01")),
        ("brand_id", json!("other")),
        ("customer_id", json!("cust_2")),
        ("currency", json!("EUR")),
    ] {
        let mut different = order("key-2");
        different[field] = value;
        let (status, body) = json_of(sim.place(&different).await).await;
        assert_eq!(status, 422, "changed {field}");
        assert_eq!(body["error"], "idempotency_key_reused");
        assert!(
            body["message"].as_str().unwrap().contains("key-2"),
            "{body}"
        );
    }
    assert_eq!(sim.stats().await.orders, 1);
}

#[tokio::test]
async fn invalid_placements_are_400_naming_the_field() {
    let sim = TestSim::idle().await;
    let mut cases = Vec::new();
    for field in [
        "idempotency_key",
        "customer_id",
        "brand_id",
        "amount",
        "currency",
    ] {
        let mut body = order("key-3");
        body.as_object_mut().unwrap().remove(field);
        cases.push((body, field));
    }
    let mut precise = order("key-3");
    precise["amount"] = json!("12.505");
    cases.push((precise, "amount"));
    let mut unknown = order("key-3");
    unknown["currency"] = json!("XYZ");
    cases.push((unknown, "currency"));
    let mut spaced = order("key 3");
    spaced["amount"] = json!("1");
    cases.push((spaced, "idempotency_key"));
    for (body, field) in cases {
        let (status, answer) = json_of(sim.place(&body).await).await;
        assert_eq!(status, 400, "{body}");
        assert_eq!(answer["error"], "invalid_request");
        let message = answer["message"].as_str().unwrap();
        assert!(message.starts_with(field), "{field}: {message}");
    }
    let raw = sim
        .client
        .post(sim.url("/api/v1/orders"))
        .body("not json")
        .send()
        .await
        .unwrap();
    assert_eq!(raw.status(), 400);
    assert_eq!(sim.get("/api/v1/orders").await.status(), 400);
    assert_eq!(sim.stats().await.orders, 0);
}

#[tokio::test]
async fn twenty_concurrent_identical_posts_create_one_order() {
    let sim = TestSim::idle().await;
    let body = order("key-concurrent");
    let answers =
        futures::future::join_all((0..20).map(|_| async { json_of(sim.place(&body).await).await }))
            .await;
    let created = answers.iter().filter(|(s, _)| *s == 201).count();
    let replayed = answers.iter().filter(|(s, _)| *s == 200).count();
    assert_eq!((created, replayed), (1, 19), "{answers:?}");
    let ids: HashSet<&str> = answers
        .iter()
        .map(|(_, b)| b["vendor_order_id"].as_str().unwrap())
        .collect();
    assert_eq!(ids.len(), 1);
    let stats = sim.stats().await;
    assert_eq!(
        (stats.orders, stats.keys, stats.max_orders_per_key),
        (1, 1, 1)
    );
    assert_eq!(stats.requests, 20);
}

#[tokio::test]
async fn orders_are_fulfilled_after_the_delay_and_can_be_refunded() {
    let sim = TestSim::start(SimConfig {
        fulfil_delay: Duration::from_millis(50),
        ..SimConfig::default()
    })
    .await;
    let (_, placed) = json_of(sim.place(&order("key-4")).await).await;
    let id = placed["vendor_order_id"].as_str().unwrap().to_string();
    let refund_path = format!("/api/v1/orders/{id}/refund");
    let (status, early) = json_of(sim.post(&refund_path, &json!({})).await).await;
    assert_eq!(status, 409, "a pending order cannot be refunded: {early}");
    assert_eq!(early["error"], "order_not_refundable");

    let fulfilled = eventually("fulfilment", async || {
        let (_, now) = json_of(sim.get(&format!("/api/v1/orders/{id}")).await).await;
        (now["status"] == "fulfilled").then_some(now)
    })
    .await;
    assert!(fulfilled["updated_at"].as_str() > placed["updated_at"].as_str());
    assert_eq!(fulfilled["created_at"], placed["created_at"]);
    // A replay answers the order as it is now.
    let (status, replay) = json_of(sim.place(&order("key-4")).await).await;
    assert_eq!(
        (status, &replay["status"]),
        (StatusCode::OK, &json!("fulfilled"))
    );

    let (status, refunded) = json_of(sim.post(&refund_path, &json!({})).await).await;
    assert_eq!(status, 200);
    assert_eq!(refunded["status"], "refunded");
    assert!(refunded["updated_at"].as_str() > fulfilled["updated_at"].as_str());
    assert_eq!(sim.post(&refund_path, &json!({})).await.status(), 409);
    assert_eq!(
        sim.post("/api/v1/orders/ord_missing/refund", &json!({}))
            .await
            .status(),
        404
    );

    let mut failing = order("key-5");
    failing["brand_id"] = json!("fail-card");
    let (_, placed) = json_of(sim.place(&failing).await).await;
    let id = placed["vendor_order_id"].as_str().unwrap().to_string();
    eventually("failure", async || {
        let (_, now) = json_of(sim.get(&format!("/api/v1/orders/{id}")).await).await;
        (now["status"] == "failed").then_some(())
    })
    .await;
}

#[tokio::test]
async fn error_rate_one_answers_5xx_and_creates_nothing() {
    let sim = TestSim::idle().await;
    sim.faults(json!({"error_rate": 1.0})).await;
    for _ in 0..6 {
        let (status, body) = json_of(sim.place(&order("key-6")).await).await;
        assert!(matches!(status.as_u16(), 500 | 502 | 503), "{status}");
        assert!(body["error"].is_string(), "{body}");
    }
    let stats = sim.stats().await;
    assert_eq!(
        (stats.orders, stats.errors_injected, stats.requests),
        (0, 6, 6)
    );
    assert_eq!(
        sim.get("/api/v1/orders?idempotency_key=key-6")
            .await
            .status()
            .as_u16()
            / 100,
        5
    );
    sim.faults(json!({"error_rate": 0})).await;
    assert_eq!(
        sim.get("/api/v1/orders?idempotency_key=key-6")
            .await
            .status(),
        404
    );
    assert_eq!(sim.place(&order("key-6")).await.status(), 201);
}

#[tokio::test]
async fn rate_limit_rate_one_answers_429_with_retry_after() {
    let sim = TestSim::idle().await;
    sim.handle
        .update_faults(&sim::FaultsPatch {
            rate_limit_rate: Some(1.0),
            ..Default::default()
        })
        .unwrap();
    let response = sim.place(&order("key-7")).await;
    assert_eq!(response.status(), 429);
    assert_eq!(response.headers()["retry-after"], "1");
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["error"], "rate_limited");
    let stats = sim.stats().await;
    assert_eq!((stats.orders, stats.rate_limited), (0, 1));
}

#[tokio::test]
async fn a_dropped_answer_is_a_client_error_but_the_order_exists() {
    let sim = TestSim::idle().await;
    sim.faults(json!({"drop_response_rate": 1})).await;
    let started = Instant::now();
    let outcome = sim
        .client
        .post(sim.url("/api/v1/orders"))
        .json(&order("key-8"))
        .send()
        .await;
    let err = outcome.expect_err("the connection is cut before any answer");
    assert!(
        started.elapsed() < Duration::from_secs(2),
        "not quick: {err}"
    );
    let stats = sim.stats().await;
    assert_eq!((stats.orders, stats.responses_dropped), (1, 1));

    sim.faults(json!({"drop_response_rate": 0})).await;
    let (status, retry) = json_of(sim.place(&order("key-8")).await).await;
    assert_eq!(status, 200, "the retry finds the committed order");
    let (_, by_key) = json_of(sim.get("/api/v1/orders?idempotency_key=key-8").await).await;
    assert_eq!(retry["vendor_order_id"], by_key["vendor_order_id"]);
    assert_eq!(sim.stats().await.orders, 1);
}

#[tokio::test]
async fn fault_settings_merge_validate_and_add_latency() {
    let sim = TestSim::idle().await;
    let (status, defaults) = json_of(sim.get("/sim/faults").await).await;
    assert_eq!(status, 200);
    assert_eq!(defaults["error_rate"], 0.0);
    assert_eq!(defaults["latency_ms"], 0);
    let all = sim
        .faults(json!({"latency_ms": 150, "webhook_drop_rate": 0.25}))
        .await;
    assert_eq!(all["latency_ms"], 150);
    assert_eq!(all["webhook_drop_rate"], 0.25);
    assert_eq!(
        all["bad_signature_rate"], 0.0,
        "unnamed settings stay: {all}"
    );
    assert_eq!(all.as_object().unwrap().len(), 8, "{all}");

    for (bad, field) in [
        (json!({"error_rate": 1.5}), "error_rate"),
        (
            json!({"webhook_reorder_rate": -0.1}),
            "webhook_reorder_rate",
        ),
        (json!({"eror_rate": 0.5}), "eror_rate"),
    ] {
        let (status, body) = json_of(sim.post("/sim/faults", &bad).await).await;
        assert_eq!(status, 400, "{bad}");
        assert!(body["message"].as_str().unwrap().contains(field), "{body}");
    }
    assert_eq!(
        sim.handle.faults().latency_ms,
        150,
        "a rejected update changes nothing"
    );

    let started = Instant::now();
    assert_eq!(sim.get("/api/v1/orders/ord_x").await.status(), 404);
    assert!(started.elapsed() >= Duration::from_millis(150));
    // The test hooks are never slowed down or faulted.
    sim.faults(json!({"error_rate": 1})).await;
    assert_eq!(sim.get("/sim/stats").await.status(), 200);
}

#[tokio::test]
async fn the_same_seed_makes_the_same_fault_choices() {
    async fn statuses(seed: u64) -> Vec<u16> {
        let sim = TestSim::start(SimConfig {
            seed: Some(seed),
            faults: sim::Faults {
                error_rate: 0.5,
                ..Default::default()
            },
            ..SimConfig::default()
        })
        .await;
        let mut seen = Vec::new();
        for _ in 0..30 {
            seen.push(sim.get("/api/v1/orders/ord_x").await.status().as_u16());
        }
        seen
    }
    let first = statuses(42).await;
    assert_eq!(first, statuses(42).await);
    assert!(
        first.contains(&404) && first.iter().any(|s| *s >= 500),
        "{first:?}"
    );
}

#[tokio::test]
async fn reset_clears_orders_and_counters() {
    let sim = TestSim::idle().await;
    let (_, placed) = json_of(sim.place(&order("key-19")).await).await;
    assert_eq!(sim.stats().await.orders, 1);
    let reset = sim.client.post(sim.url("/sim/reset")).send().await.unwrap();
    assert_eq!(reset.status(), 204);
    assert_eq!(sim.stats().await, SimStats::default());
    let id = placed["vendor_order_id"].as_str().unwrap();
    assert_eq!(sim.get(&format!("/api/v1/orders/{id}")).await.status(), 404);
    assert_eq!(sim.place(&order("key-19")).await.status(), 201);
    sim.handle.shutdown().await.unwrap();
}

#[test]
fn vendor_sim_flags_are_validated() {
    let dir = tempfile::tempdir().unwrap();
    let out = run_cli(
        dir.path(),
        None,
        &["vendor-sim", "--error-rate", "1.5"],
        None,
    );
    assert!(!out.status.success());
    let err = stderr(&out);
    assert!(
        err.contains("--error-rate") && err.contains("not a probability"),
        "{err}"
    );
    let out = run_cli(
        dir.path(),
        None,
        &["vendor-sim", "--webhook-url", "http://127.0.0.1:9/h"],
        None,
    );
    assert!(!out.status.success());
    assert!(
        stderr(&out).contains("--webhook-secret"),
        "{}",
        stderr(&out)
    );
    let help = run_cli(dir.path(), None, &["vendor-sim", "--help"], None);
    let help = String::from_utf8_lossy(&help.stdout);
    for flag in [
        "--latency-ms",
        "--error-rate",
        "--rate-limit-rate",
        "--drop-response-rate",
        "--webhook-drop-rate",
        "--webhook-duplicate-rate",
        "--webhook-reorder-rate",
        "--bad-signature-rate",
        "--seed",
        "--fulfil-delay-ms",
    ] {
        assert!(help.contains(flag), "{flag} missing from: {help}");
    }
}

#[cfg(unix)]
#[tokio::test]
async fn vendor_sim_command_serves_until_stopped() {
    let dir = tempfile::tempdir().unwrap();
    let (mut child, base) = spawn_listening(
        dir.path(),
        &["vendor-sim", "--addr", "127.0.0.1:0", "--latency-ms", "1"],
        &[],
    );
    let client = reqwest::Client::builder()
        .timeout(Duration::from_secs(10))
        .build()
        .unwrap();
    let placed = client
        .post(format!("{base}/api/v1/orders"))
        .json(&order("key-20"))
        .send()
        .await
        .unwrap();
    let faults: Value = client
        .get(format!("{base}/sim/faults"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    // SIGTERM stops it cleanly.
    let signalled = unsafe { libc::kill(child.id() as libc::pid_t, libc::SIGTERM) };
    let exit = child.wait().unwrap();
    assert_eq!(signalled, 0);
    assert_eq!(placed.status(), 201);
    assert_eq!(faults["latency_ms"], 1);
    assert!(exit.success(), "{exit:?}");
}
