//! Orders placed through the outbox against the vendor simulator, with faults and crashes. The
//! proof of "never twice" is at the far side: the simulator's count of orders per key.

use std::process::Child;
use std::sync::Arc;
use std::time::{Duration, Instant};

use giftrecon::config::OutboxSettings;
use giftrecon::outbox::OutboxWorker;
use giftrecon::sim::{self, FaultsPatch, SimConfig, SimHandle};
use serde_json::{json, Value};

use crate::helpers::{spawn_listening, stderr, TestApp, TestDb};
use crate::on_both_backends;

on_both_backends!(
    twenty_concurrent_identical_requests_make_one_vendor_order,
    dropped_responses_are_retried_with_the_same_key,
    rate_limits_are_honoured,
    exhausted_retries_wait_in_needs_attention,
    crash_before_and_after_the_vendor_call_still_orders_once,
);

fn fast_outbox() -> OutboxSettings {
    OutboxSettings {
        workers: 1,
        max_attempts: 4,
        base_delay_ms: 10,
        max_delay_ms: 50,
        lease_secs: 5,
        vendor_timeout_ms: 2_000,
        sync_delay_ms: 20,
        max_sync_attempts: 50,
        idle_poll_ms: 20,
    }
}

async fn simulator() -> SimHandle {
    sim::spawn(SimConfig {
        fulfil_delay: Duration::from_millis(30),
        seed: Some(7),
        ..SimConfig::default()
    })
    .await
    .expect("simulator")
}

fn order_body(key: &str) -> String {
    json!({
        "idempotency_key": key,
        "customer_id": "cust-1",
        "brand_id": "amazon-us",
        "amount": "25.00",
        "currency": "USD",
        "vendor": "acme",
    })
    .to_string()
}

fn worker(app: &TestApp, settings: OutboxSettings) -> OutboxWorker {
    OutboxWorker::new(
        app.db.clone(),
        settings,
        "test-worker".into(),
        Arc::default(),
    )
}

/// Runs outbox steps until `done` holds for the order (checked via the API) or 15 s pass.
async fn drive_until(
    app: &TestApp,
    worker: &OutboxWorker,
    token: &str,
    order_id: &str,
    done: impl Fn(&Value) -> bool,
) -> Value {
    let deadline = Instant::now() + Duration::from_secs(15);
    loop {
        let order: Value = app
            .get_json(&format!("/api/v1/orders/{order_id}"), token)
            .await
            .json()
            .await
            .unwrap();
        if done(&order) {
            return order;
        }
        assert!(
            Instant::now() < deadline,
            "order never got there: {order:#}"
        );
        if worker.run_once().await.unwrap().is_none() {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
}

fn fulfilled(order: &Value) -> bool {
    order["gl_state"] == "fulfilled"
}

async fn setup(db: TestDb, sim: &SimHandle) -> (TestApp, String) {
    let app = TestApp::spawn(db).await;
    app.add_vendor("acme", &sim.base_url(), &["amazon-us"])
        .await;
    let token = app.token("checkout").await;
    (app, token)
}

async fn twenty_concurrent_identical_requests_make_one_vendor_order(db: TestDb) {
    let sim = simulator().await;
    let (app, token) = setup(db, &sim).await;
    let body = order_body("same-key");
    let requests = (0..20).map(|_| app.post_json("/api/v1/orders", &token, &body));
    let responses = futures::future::join_all(requests).await;
    let mut ids = Vec::new();
    for response in responses {
        let status = response.status().as_u16();
        assert!(status == 201 || status == 409, "unexpected {status}");
        if status == 201 {
            let order: Value = response.json().await.unwrap();
            ids.push(order["id"].as_str().unwrap().to_string());
        }
    }
    assert!(!ids.is_empty());
    ids.dedup();
    assert_eq!(ids.len(), 1, "every success names the same order: {ids:?}");
    assert_eq!(app.count("orders").await, 1);
    let worker = worker(&app, fast_outbox());
    let order = drive_until(&app, &worker, &token, &ids[0], fulfilled).await;
    assert_eq!(order["status"], "placed");
    let stats = sim.stats();
    assert_eq!(
        (stats.orders, stats.keys, stats.max_orders_per_key),
        (1, 1, 1)
    );
}

async fn dropped_responses_are_retried_with_the_same_key(db: TestDb) {
    let sim = simulator().await;
    let (app, token) = setup(db, &sim).await;
    sim.update_faults(&FaultsPatch {
        drop_response_rate: Some(1.0),
        ..Default::default()
    })
    .unwrap();
    let created: Value = app
        .post_json("/api/v1/orders", &token, &order_body("drop-1"))
        .await
        .json()
        .await
        .unwrap();
    let id = created["id"].as_str().unwrap();
    let worker = worker(&app, fast_outbox());
    // The vendor took the order but the answer was lost: the outcome is unknown, so retry.
    let step = worker.run_once().await.unwrap().expect("a job was due");
    assert!(
        matches!(step.outcome, app::storage::outbox::JobOutcome::Retry { .. }),
        "{step:?}"
    );
    assert_eq!(sim.stats().orders, 1);
    sim.update_faults(&FaultsPatch {
        drop_response_rate: Some(0.0),
        ..Default::default()
    })
    .unwrap();
    let order = drive_until(&app, &worker, &token, id, fulfilled).await;
    let stats = sim.stats();
    assert_eq!(
        (stats.orders, stats.max_orders_per_key),
        (1, 1),
        "ordered twice: {stats:?}"
    );
    // Every attempt carried the key made before the first one.
    let attempts: Vec<&Value> = order["events"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["kind"].as_str().unwrap().starts_with("attempt_"))
        .collect();
    assert!(attempts.len() >= 2, "{order:#}");
    assert!(attempts
        .iter()
        .all(|e| e["detail"]["vendor_key"] == created["vendor_key"]));
    assert_eq!(attempts[0]["kind"], "attempt_failed");
    assert_eq!(attempts.last().unwrap()["kind"], "attempt_succeeded");
}

async fn rate_limits_are_honoured(db: TestDb) {
    let sim = simulator().await;
    let (app, token) = setup(db, &sim).await;
    sim.update_faults(&FaultsPatch {
        rate_limit_rate: Some(1.0),
        ..Default::default()
    })
    .unwrap();
    let created: Value = app
        .post_json("/api/v1/orders", &token, &order_body("rl-1"))
        .await
        .json()
        .await
        .unwrap();
    let worker = worker(&app, fast_outbox());
    let before = chrono::Utc::now();
    let step = worker.run_once().await.unwrap().expect("a job was due");
    let app::storage::outbox::JobOutcome::Retry { run_at, .. } = step.outcome else {
        panic!("expected a retry: {step:?}");
    };
    // The simulator says Retry-After: 1; the backoff alone would be at most 10 ms.
    assert!(
        run_at - before >= chrono::Duration::milliseconds(1000),
        "retry at {run_at}"
    );
    // Nothing is attempted before then: the storm gets no more requests.
    let requests = sim.stats().requests;
    assert!(worker.run_once().await.unwrap().is_none());
    assert_eq!(sim.stats().requests, requests);
    sim.update_faults(&FaultsPatch {
        rate_limit_rate: Some(0.0),
        ..Default::default()
    })
    .unwrap();
    let order = drive_until(
        &app,
        &worker,
        &token,
        created["id"].as_str().unwrap(),
        fulfilled,
    )
    .await;
    let limited = order["events"]
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["kind"] == "attempt_failed")
        .unwrap();
    assert_eq!(limited["detail"]["retry_after_ms"], 1000);
    assert_eq!(sim.stats().orders, 1);
}

async fn exhausted_retries_wait_in_needs_attention(db: TestDb) {
    let sim = simulator().await;
    let (app, token) = setup(db, &sim).await;
    sim.update_faults(&FaultsPatch {
        error_rate: Some(1.0),
        ..Default::default()
    })
    .unwrap();
    let created: Value = app
        .post_json("/api/v1/orders", &token, &order_body("err-1"))
        .await
        .json()
        .await
        .unwrap();
    let worker = worker(&app, fast_outbox());
    let order = drive_until(
        &app,
        &worker,
        &token,
        created["id"].as_str().unwrap(),
        |o| o["status"] == "needs_attention",
    )
    .await;
    // The vendor never said yes or no: the GL state stays pending, with the reason kept.
    assert_eq!(order["gl_state"], "pending");
    assert!(
        order["attention_reason"]
            .as_str()
            .unwrap()
            .contains("after 4 attempts"),
        "{order:#}"
    );
    assert_eq!(sim.stats().orders, 0);
    // Nothing more is attempted.
    assert!(worker.run_once().await.unwrap().is_none());
}

/// A `giftrecon serve` process with one outbox worker and a short lease.
fn start_server(db: &TestDb, failpoint: Option<&str>) -> (Child, String) {
    std::fs::write(
        db.dir.path().join("giftrecon.toml"),
        "[outbox]\nworkers = 1\nlease_secs = 2\nbase_delay_ms = 10\nmax_delay_ms = 100\nvendor_timeout_ms = 1000\nsync_delay_ms = 20\nidle_poll_ms = 50\n",
    )
    .unwrap();
    let mut env = vec![("DATABASE_URL", db.url.as_str())];
    if let Some(point) = failpoint {
        env.push(("GIFTRECON_FAILPOINT", point));
    }
    spawn_listening(
        db.dir.path(),
        &[
            "--config",
            "giftrecon.toml",
            "serve",
            "--addr",
            "127.0.0.1:0",
        ],
        &env,
    )
}

/// Waits for the process to die by SIGKILL (the failpoint), or fails after 15 s.
async fn wait_for_sigkill(child: &mut Child) {
    use std::os::unix::process::ExitStatusExt;
    let deadline = Instant::now() + Duration::from_secs(15);
    loop {
        if let Some(status) = child.try_wait().unwrap() {
            assert_eq!(
                status.signal(),
                Some(9),
                "exited with {status:?}, not SIGKILL"
            );
            return;
        }
        assert!(Instant::now() < deadline, "the failpoint never fired");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

async fn place(base: &str, token: &str, key: &str) -> Value {
    let response = reqwest::Client::new()
        .post(format!("{base}/api/v1/orders"))
        .bearer_auth(token)
        .body(order_body(key))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 201);
    response.json().await.unwrap()
}

async fn wait_fulfilled(base: &str, token: &str, id: &str) -> Value {
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let order: Value = reqwest::Client::new()
            .get(format!("{base}/api/v1/orders/{id}"))
            .bearer_auth(token)
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        if fulfilled(&order) {
            return order;
        }
        assert!(
            Instant::now() < deadline,
            "not fulfilled after restart: {order:#}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

async fn crash_before_and_after_the_vendor_call_still_orders_once(db: TestDb) {
    let sim = simulator().await;
    for args in [
        vec![
            "vendor",
            "add",
            "acme",
            "--base-url",
            sim.base_url().as_str(),
        ],
        vec!["brand", "add", "acme", "amazon-us"],
    ] {
        let out = db.cli(&args);
        assert!(out.status.success(), "{}", stderr(&out));
    }
    let token_out = db.cli(&["token", "create", "--name", "checkout"]);
    let token = String::from_utf8(token_out.stdout)
        .unwrap()
        .trim()
        .to_string();

    // 1. Killed after the order was committed, before the vendor was called.
    let (mut server, base) = start_server(&db, Some("before_vendor_call"));
    let first = place(&base, &token, "crash-1").await;
    wait_for_sigkill(&mut server).await;
    assert_eq!(
        sim.stats().orders,
        0,
        "the vendor was called before the crash point"
    );

    // 2. Killed after the vendor answered, before the answer was recorded. (The restarted
    //    process also resumes order 1, past its lease, and dies right after placing it.)
    let (mut server, base) = start_server(&db, Some("after_vendor_call"));
    wait_for_sigkill(&mut server).await;
    assert_eq!(sim.stats().orders, 1);

    // 3. A healthy restart finishes everything, sending the same keys again.
    let (mut server, base2) = start_server(&db, None);
    let _ = base;
    let order = wait_fulfilled(&base2, &token, first["id"].as_str().unwrap()).await;
    assert_eq!(order["vendor_key"], first["vendor_key"]);
    let second = place(&base2, &token, "crash-2").await;
    wait_fulfilled(&base2, &token, second["id"].as_str().unwrap()).await;
    let _ = server.kill();
    let _ = server.wait();
    let stats = sim.stats();
    assert_eq!(
        (stats.orders, stats.keys, stats.max_orders_per_key),
        (2, 2, 1),
        "{stats:?}"
    );
}
