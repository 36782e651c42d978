//! The order API without a vendor in the loop: validation, authentication, idempotency.

use serde_json::{json, Value};

use crate::helpers::{TestApp, TestDb};
use crate::on_both_backends;

on_both_backends!(
    order_is_created_queued_with_its_key_and_history,
    same_key_same_body_replays_the_first_response,
    same_key_different_body_is_422,
    key_in_header_and_body_must_agree,
    bad_bodies_are_refused_naming_the_field_and_nothing_is_written,
    body_over_64_kib_is_413,
    requests_without_a_valid_token_are_401,
    keys_are_scoped_to_the_token_owner,
    bulk_orders_report_each_item,
    lookup_by_key_and_by_id,
    same_key_while_the_first_is_in_flight_is_409,
);

fn order(key: &str, amount: Value) -> String {
    json!({
        "idempotency_key": key,
        "customer_id": "cust-1",
        "brand_id": "amazon-us",
        "amount": amount,
        "currency": "USD",
        "vendor": "acme",
    })
    .to_string()
}

async fn app_with_vendor(db: TestDb) -> (TestApp, String) {
    let app = TestApp::spawn(db).await;
    app.add_vendor("acme", "http://127.0.0.1:9", &["amazon-us"])
        .await;
    let token = app.token("checkout").await;
    (app, token)
}

async fn order_is_created_queued_with_its_key_and_history(db: TestDb) {
    let (app, token) = app_with_vendor(db).await;
    let response = app
        .post_json("/api/v1/orders", &token, &order("k-1", json!(50)))
        .await;
    assert_eq!(response.status(), 201);
    assert_eq!(response.headers()["content-type"], "application/json");
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["amount"], "50.00");
    assert_eq!(body["currency"], "USD");
    assert_eq!(body["status"], "queued");
    assert_eq!(body["gl_state"], "pending");
    let vendor_key = body["vendor_key"].as_str().unwrap();
    assert!(
        vendor_key.starts_with("gr") && vendor_key.len() == 34,
        "{vendor_key}"
    );
    // Committed with its outbox job before any vendor call.
    assert_eq!(app.count("orders").await, 1);
    assert_eq!(app.count("outbox_jobs").await, 1);
    let id = body["id"].as_str().unwrap();
    let full: Value = app
        .get_json(&format!("/api/v1/orders/{id}"), &token)
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(full["events"][0]["kind"], "created");
    assert_eq!(full["events"][0]["detail"]["vendor_key"], vendor_key);
}

async fn same_key_same_body_replays_the_first_response(db: TestDb) {
    let (app, token) = app_with_vendor(db).await;
    let first = app
        .post_json("/api/v1/orders", &token, &order("k-1", json!(50)))
        .await;
    assert_eq!(first.status(), 201);
    let first_body = first.text().await.unwrap();
    // "50.00" is the same amount as 50: the same request.
    let again = app
        .post_json("/api/v1/orders", &token, &order("k-1", json!("50.00")))
        .await;
    assert_eq!(again.status(), 201);
    assert_eq!(again.headers()["idempotent-replayed"], "true");
    assert_eq!(again.text().await.unwrap(), first_body);
    assert_eq!(app.count("orders").await, 1);
    assert_eq!(app.count("outbox_jobs").await, 1);
}

async fn same_key_different_body_is_422(db: TestDb) {
    let (app, token) = app_with_vendor(db).await;
    app.post_json("/api/v1/orders", &token, &order("k-1", json!(50)))
        .await;
    let other = app
        .post_json("/api/v1/orders", &token, &order("k-1", json!(51)))
        .await;
    assert_eq!(other.status(), 422);
    assert_eq!(other.headers()["content-type"], "application/problem+json");
    let problem: Value = other.json().await.unwrap();
    assert_eq!(problem["type"], "/problems/idempotency-key-reused");
    assert_eq!(app.count("orders").await, 1);
}

async fn key_in_header_and_body_must_agree(db: TestDb) {
    let (app, token) = app_with_vendor(db).await;
    let send = |key: &'static str, body: String| {
        app.client
            .post(app.url("/api/v1/orders"))
            .bearer_auth(&token)
            .header("idempotency-key", key)
            .body(body)
            .send()
    };
    let without_body_key = json!({"customer_id":"c","brand_id":"amazon-us","amount":"5","currency":"USD","vendor":"acme"}).to_string();
    assert_eq!(send("h-1", without_body_key).await.unwrap().status(), 201);
    assert_eq!(
        send("k-2", order("k-2", json!(5))).await.unwrap().status(),
        201
    );
    let conflict = send("h-9", order("k-9", json!(5))).await.unwrap();
    assert_eq!(conflict.status(), 400);
    let problem: Value = conflict.json().await.unwrap();
    assert_eq!(problem["errors"][0]["field"], "idempotency_key");
    assert_eq!(app.count("orders").await, 2);
}

async fn bad_bodies_are_refused_naming_the_field_and_nothing_is_written(db: TestDb) {
    let (app, token) = app_with_vendor(db).await;
    let cases: Vec<(String, u16, &str)> = vec![
        ("not json".into(), 400, "body"),
        (
            order("k", json!("50")).replace("\"idempotency_key\":\"k\",", ""),
            400,
            "idempotency_key",
        ),
        (order("bad key", json!(5)), 400, "idempotency_key"),
        (order("k", json!(true)), 400, "amount"),
        (
            order("k", json!(5)).replace("\"cust-1\"", "12"),
            400,
            "customer_id",
        ),
        (order("k", json!(0)), 422, "amount"),
        (order("k", json!(-5)), 422, "amount"),
        (order("k", json!("12.505")), 422, "amount"),
        (order("k", json!(5)).replace("USD", "ZZZ"), 422, "currency"),
        (
            order("k", json!(5)).replace("\"acme\"", "\"nobody\""),
            422,
            "vendor",
        ),
        (
            order("k", json!(5)).replace("amazon-us", "unknown-brand"),
            422,
            "brand_id",
        ),
    ];
    for (body, status, field) in cases {
        let response = app.post_json("/api/v1/orders", &token, &body).await;
        assert_eq!(response.status(), status, "{body}");
        assert_eq!(
            response.headers()["content-type"],
            "application/problem+json"
        );
        let problem: Value = response.json().await.unwrap();
        let fields: Vec<&str> = problem["errors"]
            .as_array()
            .unwrap()
            .iter()
            .map(|e| e["field"].as_str().unwrap())
            .collect();
        assert_eq!(fields, [field], "{body}: {problem}");
    }
    for table in ["orders", "outbox_jobs", "order_events", "idempotency_keys"] {
        assert_eq!(app.count(table).await, 0, "{table} was written");
    }
}

async fn body_over_64_kib_is_413(db: TestDb) {
    let (app, token) = app_with_vendor(db).await;
    let huge = order("k", json!(5)).replace("cust-1", &"x".repeat(70 * 1024));
    let response = app.post_json("/api/v1/orders", &token, &huge).await;
    assert_eq!(response.status(), 413);
    assert_eq!(
        response.headers()["content-type"],
        "application/problem+json"
    );
    assert_eq!(app.count("orders").await, 0);
}

async fn requests_without_a_valid_token_are_401(db: TestDb) {
    let (app, _token) = app_with_vendor(db).await;
    let anonymous = app
        .client
        .post(app.url("/api/v1/orders"))
        .body(order("k", json!(5)))
        .send()
        .await
        .unwrap();
    assert_eq!(anonymous.status(), 401);
    let forged = app
        .post_json("/api/v1/orders", "grk_0000", &order("k", json!(5)))
        .await;
    assert_eq!(forged.status(), 401);
    let revoked = app.token("old-service").await;
    app::storage::tokens::revoke(
        &app.db,
        "old-service",
        &crate::helpers::by_test("token_revoke"),
    )
    .await
    .unwrap();
    assert_eq!(
        app.post_json("/api/v1/orders", &revoked, &order("k", json!(5)))
            .await
            .status(),
        401
    );
    assert_eq!(
        app.get_json("/api/v1/orders?idempotency_key=k", &revoked)
            .await
            .status(),
        401
    );
    assert_eq!(app.count("orders").await, 0);
}

async fn keys_are_scoped_to_the_token_owner(db: TestDb) {
    let (app, checkout) = app_with_vendor(db).await;
    let rewards = app.token("rewards").await;
    let a: Value = app
        .post_json("/api/v1/orders", &checkout, &order("k-1", json!(5)))
        .await
        .json()
        .await
        .unwrap();
    let b = app
        .post_json("/api/v1/orders", &rewards, &order("k-1", json!(7)))
        .await;
    assert_eq!(b.status(), 201, "another owner's key is a different key");
    let b: Value = b.json().await.unwrap();
    assert_ne!(a["id"], b["id"]);
    assert_ne!(a["vendor_key"], b["vendor_key"]);
    // Owners see only their own orders.
    let id = a["id"].as_str().unwrap();
    assert_eq!(
        app.get_json(&format!("/api/v1/orders/{id}"), &rewards)
            .await
            .status(),
        404
    );
}

async fn bulk_orders_report_each_item(db: TestDb) {
    let (app, token) = app_with_vendor(db).await;
    let items: Vec<Value> = vec![
        serde_json::from_str(&order("b-1", json!(5))).unwrap(),
        serde_json::from_str(&order("b-2", json!("0"))).unwrap(),
        serde_json::from_str(&order("b-3", json!("7.25"))).unwrap(),
    ];
    let body = Value::Array(items).to_string();
    let first: Value = app
        .post_json("/api/v1/orders/bulk", &token, &body)
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(
        (first["created"].as_i64(), first["failed"].as_i64()),
        (Some(2), Some(1)),
        "{first}"
    );
    assert_eq!(first["results"][1]["status"], 422);
    assert_eq!(first["results"][1]["body"]["errors"][0]["field"], "amount");
    let again: Value = app
        .post_json("/api/v1/orders/bulk", &token, &body)
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(
        (again["created"].as_i64(), again["replayed"].as_i64()),
        (Some(0), Some(2)),
        "{again}"
    );
    assert_eq!(app.count("orders").await, 2);
    let not_array = app.post_json("/api/v1/orders/bulk", &token, "{}").await;
    assert_eq!(not_array.status(), 400);
}

async fn lookup_by_key_and_by_id(db: TestDb) {
    let (app, token) = app_with_vendor(db).await;
    let created: Value = app
        .post_json("/api/v1/orders", &token, &order("look-1", json!(9)))
        .await
        .json()
        .await
        .unwrap();
    let by_key: Value = app
        .get_json("/api/v1/orders?idempotency_key=look-1", &token)
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(by_key["id"], created["id"]);
    assert!(by_key["events"].as_array().is_some_and(|e| !e.is_empty()));
    assert_eq!(
        app.get_json("/api/v1/orders?idempotency_key=none", &token)
            .await
            .status(),
        404
    );
    assert_eq!(
        app.get_json("/api/v1/orders/ord_missing", &token)
            .await
            .status(),
        404
    );
    assert_eq!(app.get_json("/api/v1/orders", &token).await.status(), 400);
}

async fn same_key_while_the_first_is_in_flight_is_409(db: TestDb) {
    let (app, token) = app_with_vendor(db).await;
    let body = order("k-busy", json!(5));
    // Another request holds the key right now (claimed, not completed).
    let fingerprint = app::domain::OrderRequest::new(
        app::domain::IdempotencyKey::parse("k-busy").unwrap(),
        "cust-1",
        "amazon-us",
        app::domain::Money::parse("5", app::domain::Currency::USD).unwrap(),
        app::domain::VendorId::parse("acme").unwrap(),
    )
    .unwrap()
    .fingerprint();
    let claim = app::storage::idempotency::claim(
        &app.db,
        "checkout",
        "k-busy",
        &fingerprint,
        chrono::Duration::seconds(30),
        chrono::Duration::days(30),
    )
    .await
    .unwrap();
    assert_eq!(claim, app::storage::idempotency::Claim::Acquired);
    let busy = app.post_json("/api/v1/orders", &token, &body).await;
    assert_eq!(busy.status(), 409);
    assert_eq!(busy.headers()["retry-after"], "1");
    assert_eq!(app.count("orders").await, 0);
    // Once the holder gives the key back, the same request goes through.
    app::storage::idempotency::release(&app.db, "checkout", "k-busy")
        .await
        .unwrap();
    assert_eq!(
        app.post_json("/api/v1/orders", &token, &body)
            .await
            .status(),
        201
    );
}
