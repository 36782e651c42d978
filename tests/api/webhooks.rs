//! `POST /webhooks/{vendor}`: signatures over the raw body, the inbox, dedupe, forward-only
//! application, rotation, and the answer for every failure.

use app::domain::{Currency, GlState, Money, VendorId, VendorKind};
use app::storage::orders::{self, Order, Submission};
use app::storage::vendors::{self, BaseUrl, NewVendor};
use app::storage::{now_utc, vendor_records, webhooks as inbox, Db};
use giftrecon::vendors::signature::sign_hex_hmac;
use secrecy::SecretString;
use serde_json::{json, Value};

use crate::helpers::{by_test, TestApp, TestDb};
use crate::on_both_backends;

on_both_backends!(
    a_valid_webhook_moves_the_order_forward,
    bad_signatures_are_401_and_store_nothing,
    githubs_vector_verifies_and_a_non_json_body_is_kept_as_rejected,
    bodies_over_256_kib_are_413,
    repeats_have_one_effect_sequentially_and_concurrently,
    a_late_pending_does_not_regress_and_refunded_follows_fulfilled,
    rotation_keeps_old_and_new_during_grace_then_drops_the_old,
    an_unknown_order_becomes_a_vendor_record,
    unknown_vendors_are_404_and_a_lost_database_is_503,
    a_runa_event_that_only_names_the_order_queues_one_sync,
);

pub const SECRET: &str = "whsec_test_secret_1";

/// A generic vendor with `secrets`, optionally pointing at `base_url`.
pub async fn add_vendor(db: &Db, id: &str, base_url: Option<&str>, secrets: &[&str]) {
    vendors::insert_vendor(
        db,
        &NewVendor {
            id: VendorId::parse(id).unwrap(),
            kind: VendorKind::Generic,
            base_url: base_url.map(|u| BaseUrl::parse(u).unwrap()),
            webhook_secrets: secrets
                .iter()
                .map(|s| SecretString::from(s.to_string()))
                .collect(),
            api_key: None,
        },
        &by_test("vendor_add"),
    )
    .await
    .unwrap();
}

/// Orders giftrecon placed (pending) with these vendor keys, without outbox jobs.
pub async fn add_pending_orders(db: &Db, vendor: &str, keys: &[String]) -> Vec<String> {
    let now = now_utc();
    let orders: Vec<Order> = keys
        .iter()
        .map(|key| {
            let (id, _) = orders::new_ids();
            Order {
                id,
                owner: "test".into(),
                idempotency_key: key.clone(),
                request_hash: "h".into(),
                vendor_id: vendor.into(),
                vendor_key: key.clone(),
                customer_id: "cust-1".into(),
                brand_id: "amazon-us".into(),
                amount: Money::from_minor(2500, Currency::USD),
                submission: Submission::Placed,
                gl_state: GlState::Pending,
                vendor_order_id: None,
                vendor_status: None,
                attention_reason: None,
                source: "api".into(),
                created_at: now,
                updated_at: now,
            }
        })
        .collect();
    for chunk in orders.chunks(200) {
        orders::insert_orders(db, chunk, None, None).await.unwrap();
    }
    orders.into_iter().map(|o| o.id).collect()
}

/// A generic webhook event body about the order with `key`.
pub fn event(event_id: &str, key: &str, vendor_order_id: &str, status: &str, at: &str) -> String {
    json!({
        "event_id": event_id,
        "type": format!("order.{status}"),
        "created_at": at,
        "order": {
            "vendor_order_id": vendor_order_id,
            "idempotency_key": key,
            "status": status,
            "amount": "25.00",
            "currency": "USD",
            "brand_id": "amazon-us",
            "created_at": "2026-12-01T10:00:00Z",
            "updated_at": at,
        }
    })
    .to_string()
}

async fn post(app: &TestApp, vendor: &str, body: &[u8], signature: Option<&str>) -> u16 {
    let mut request = app
        .client
        .post(app.url(&format!("/webhooks/{vendor}")))
        .header("content-type", "application/json")
        .body(body.to_vec());
    if let Some(signature) = signature {
        request = request.header("x-signature-256", signature);
    }
    request.send().await.expect("request").status().as_u16()
}

async fn post_signed(app: &TestApp, body: &str, secret: &str) -> u16 {
    let signature = format!("sha256={}", sign_hex_hmac(secret, body.as_bytes()));
    post(app, "acme", body.as_bytes(), Some(&signature)).await
}

async fn gl_state(app: &TestApp, order_id: &str) -> GlState {
    orders::get(&app.db, order_id)
        .await
        .unwrap()
        .unwrap()
        .gl_state
}

async fn webhook_events(app: &TestApp, order_id: &str) -> Vec<Value> {
    orders::events(&app.db, order_id)
        .await
        .unwrap()
        .into_iter()
        .filter(|e| e.kind == "webhook")
        .map(|e| serde_json::from_str(&e.detail).unwrap())
        .collect()
}

async fn setup(db: TestDb, secrets: &[&str]) -> (TestApp, String) {
    let app = TestApp::spawn(db).await;
    add_vendor(&app.db, "acme", None, secrets).await;
    let ids = add_pending_orders(&app.db, "acme", &["key-1".to_string()]).await;
    (app, ids[0].clone())
}

async fn a_valid_webhook_moves_the_order_forward(db: TestDb) {
    let (app, order_id) = setup(db, &[SECRET]).await;
    let body = event("evt_1", "key-1", "v-1", "fulfilled", "2026-12-01T10:00:01Z");
    assert_eq!(post_signed(&app, &body, SECRET).await, 200);
    assert_eq!(gl_state(&app, &order_id).await, GlState::Fulfilled);
    let order = orders::get(&app.db, &order_id).await.unwrap().unwrap();
    assert_eq!(order.vendor_order_id.as_deref(), Some("v-1"));
    assert_eq!(order.vendor_status.as_deref(), Some("fulfilled"));
    let events = webhook_events(&app, &order_id).await;
    assert_eq!(events.len(), 1);
    assert_eq!(events[0]["event_id"], "evt_1");
    // The raw bytes and the signature header are kept exactly.
    let stored = inbox::inbox(&app.db, "acme").await.unwrap();
    assert_eq!(stored.len(), 1);
    assert_eq!(stored[0].body, body.as_bytes());
    assert_eq!(stored[0].state, "applied");
    assert_eq!(stored[0].order_id.as_deref(), Some(order_id.as_str()));
    let headers: Value = serde_json::from_str(&stored[0].headers).unwrap();
    assert!(headers["x-signature-256"]
        .as_str()
        .unwrap()
        .starts_with("sha256="));
    // Every record seen lands in vendor_records, matched to its order.
    let record = vendor_records::get(&app.db, "acme", "v-1")
        .await
        .unwrap()
        .unwrap();
    assert_eq!(record.order_id.as_deref(), Some(order_id.as_str()));
    assert_eq!(record.source, "webhook");
    assert_eq!(record.amount.minor_units(), 2500);
}

async fn bad_signatures_are_401_and_store_nothing(db: TestDb) {
    let (app, order_id) = setup(db, &[SECRET]).await;
    let body = event("evt_1", "key-1", "v-1", "fulfilled", "2026-12-01T10:00:01Z");
    let good = sign_hex_hmac(SECRET, body.as_bytes());
    let mut flipped = body.clone().into_bytes();
    flipped[10] ^= 0x01;
    let cases: Vec<(&str, Vec<u8>, Option<String>)> = vec![
        ("flipped byte", flipped, Some(good.clone())),
        (
            "wrong secret",
            body.clone().into_bytes(),
            Some(sign_hex_hmac("not-the-secret", body.as_bytes())),
        ),
        ("missing header", body.clone().into_bytes(), None),
        (
            "empty sha256=",
            body.clone().into_bytes(),
            Some("sha256=".into()),
        ),
        (
            "truncated",
            body.clone().into_bytes(),
            Some(good[..40].to_string()),
        ),
        (
            "signed as sent, verified after re-serializing",
            body.clone().into_bytes(),
            Some(sign_hex_hmac(
                SECRET,
                serde_json::to_string_pretty(&serde_json::from_str::<Value>(&body).unwrap())
                    .unwrap()
                    .as_bytes(),
            )),
        ),
    ];
    for (name, bytes, signature) in cases {
        let status = post(&app, "acme", &bytes, signature.as_deref()).await;
        assert_eq!(status, 401, "{name}");
    }
    assert_eq!(app.count("webhook_inbox").await, 0);
    assert_eq!(app.count("vendor_records").await, 0);
    assert!(webhook_events(&app, &order_id).await.is_empty());
    assert_eq!(gl_state(&app, &order_id).await, GlState::Pending);
    let metrics = app.get("/metrics").await.text().await.unwrap();
    assert!(
        metrics.contains("giftrecon_webhooks_total{vendor=\"acme\",result=\"unauthenticated\"}"),
        "{metrics}"
    );
    // The good signature still verifies afterwards.
    assert_eq!(post_signed(&app, &body, SECRET).await, 200);
}

async fn githubs_vector_verifies_and_a_non_json_body_is_kept_as_rejected(db: TestDb) {
    let (app, _) = setup(db, &["It's a Secret to Everybody"]).await;
    let signature = "sha256=757107ea0eb2509fc211221cce984b8a37570b6d7586c22c46f4379c8b043e17";
    // Verified (so not 401), but not an event: 400, and the raw bytes are kept.
    assert_eq!(
        post(&app, "acme", b"Hello, World!", Some(signature)).await,
        400
    );
    let stored = inbox::inbox(&app.db, "acme").await.unwrap();
    assert_eq!(stored.len(), 1);
    assert_eq!(stored[0].state, "rejected");
    assert_eq!(stored[0].body, b"Hello, World!");
    assert!(stored[0].error.is_some());
    // One byte different: 401, and nothing more is stored.
    assert_eq!(
        post(&app, "acme", b"Hello, World?", Some(signature)).await,
        401
    );
    // Valid JSON that is no known event: also 400 and kept.
    let other = br#"{"hello":"world"}"#;
    let signed = sign_hex_hmac("It's a Secret to Everybody", other);
    assert_eq!(post(&app, "acme", other, Some(&signed)).await, 400);
    assert_eq!(app.count("webhook_inbox").await, 2);
    assert_eq!(app.count("vendor_records").await, 0);
}

async fn bodies_over_256_kib_are_413(db: TestDb) {
    let (app, _) = setup(db, &[SECRET]).await;
    let big = vec![b' '; 256 * 1024 + 1];
    let signature = sign_hex_hmac(SECRET, &big);
    assert_eq!(post(&app, "acme", &big, Some(&signature)).await, 413);
    assert_eq!(app.count("webhook_inbox").await, 0);
    // Exactly 256 KiB is read (and, being no event, rejected with 400).
    let limit = vec![b' '; 256 * 1024];
    let signature = sign_hex_hmac(SECRET, &limit);
    assert_eq!(post(&app, "acme", &limit, Some(&signature)).await, 400);
}

async fn repeats_have_one_effect_sequentially_and_concurrently(db: TestDb) {
    let (app, order_id) = setup(db, &[SECRET]).await;
    let first = event(
        "evt_seq",
        "key-1",
        "v-1",
        "fulfilled",
        "2026-12-01T10:00:01Z",
    );
    assert_eq!(post_signed(&app, &first, SECRET).await, 200);
    assert_eq!(post_signed(&app, &first, SECRET).await, 200);
    assert_eq!(webhook_events(&app, &order_id).await.len(), 1);

    let refund = event(
        "evt_conc",
        "key-1",
        "v-1",
        "refunded",
        "2026-12-01T10:00:02Z",
    );
    let deliveries = (0..10).map(|_| post_signed(&app, &refund, SECRET));
    let statuses = futures::future::join_all(deliveries).await;
    assert!(statuses.iter().all(|s| *s == 200), "{statuses:?}");
    let events = webhook_events(&app, &order_id).await;
    assert_eq!(events.len(), 2, "{events:?}");
    assert_eq!(
        events
            .iter()
            .filter(|e| e["event_id"] == "evt_conc")
            .count(),
        1
    );
    assert_eq!(app.count("webhook_inbox").await, 2);
    assert_eq!(app.count("vendor_records").await, 1);
    assert_eq!(gl_state(&app, &order_id).await, GlState::Refunded);
}

async fn a_late_pending_does_not_regress_and_refunded_follows_fulfilled(db: TestDb) {
    let (app, order_id) = setup(db, &[SECRET]).await;
    let fulfilled = event("e2", "key-1", "v-1", "fulfilled", "2026-12-01T10:00:02Z");
    let pending = event("e1", "key-1", "v-1", "pending", "2026-12-01T10:00:01Z");
    let refunded = event("e3", "key-1", "v-1", "refunded", "2026-12-01T10:00:03Z");
    assert_eq!(post_signed(&app, &fulfilled, SECRET).await, 200);
    assert_eq!(post_signed(&app, &pending, SECRET).await, 200);
    assert_eq!(gl_state(&app, &order_id).await, GlState::Fulfilled);
    // The vendor record keeps the vendor's latest view too.
    let record = vendor_records::get(&app.db, "acme", "v-1")
        .await
        .unwrap()
        .unwrap();
    assert_eq!(record.status, "fulfilled");
    let events = webhook_events(&app, &order_id).await;
    assert_eq!(events.len(), 2);
    assert_eq!(events[1]["applied"], false);
    assert_eq!(post_signed(&app, &refunded, SECRET).await, 200);
    assert_eq!(gl_state(&app, &order_id).await, GlState::Refunded);
}

async fn rotation_keeps_old_and_new_during_grace_then_drops_the_old(db: TestDb) {
    let (app, order_id) = setup(db, &["old-secret"]).await;
    let vendor = VendorId::parse("acme").unwrap();
    vendors::rotate_webhook_secret(
        &app.db,
        &vendor,
        &SecretString::from("new-secret".to_string()),
        chrono::Duration::hours(24),
        &by_test("vendor_rotate_secret"),
    )
    .await
    .unwrap();
    let e1 = event("r1", "key-1", "v-1", "pending", "2026-12-01T10:00:01Z");
    let e2 = event("r2", "key-1", "v-1", "fulfilled", "2026-12-01T10:00:02Z");
    assert_eq!(post_signed(&app, &e1, "old-secret").await, 200);
    assert_eq!(post_signed(&app, &e2, "new-secret").await, 200);
    assert_eq!(gl_state(&app, &order_id).await, GlState::Fulfilled);
    // The grace period passes.
    let past = now_utc() - chrono::Duration::seconds(1);
    app::on_db!(&app.db, pool => {
        sqlx::query("UPDATE vendor_webhook_secrets SET retired_at = $1 WHERE retired_at IS NOT NULL")
            .bind(past)
            .execute(pool)
            .await
            .map(|_| ())
    })
    .unwrap();
    // Verification keys are cached for at most KEY_CACHE_TTL: a change made in the database
    // (here, by hand) takes effect within it.
    tokio::time::sleep(giftrecon::webhooks::KEY_CACHE_TTL).await;
    let e3 = event("r3", "key-1", "v-1", "refunded", "2026-12-01T10:00:03Z");
    assert_eq!(post_signed(&app, &e3, "old-secret").await, 401);
    assert_eq!(gl_state(&app, &order_id).await, GlState::Fulfilled);
    assert_eq!(post_signed(&app, &e3, "new-secret").await, 200);
    assert_eq!(gl_state(&app, &order_id).await, GlState::Refunded);
}

async fn an_unknown_order_becomes_a_vendor_record(db: TestDb) {
    let (app, _) = setup(db, &[SECRET]).await;
    let body = event(
        "evt_x",
        "someone-elses-key",
        "v-9",
        "fulfilled",
        "2026-12-01T10:00:01Z",
    );
    assert_eq!(post_signed(&app, &body, SECRET).await, 200);
    let record = vendor_records::get(&app.db, "acme", "v-9")
        .await
        .unwrap()
        .expect("a vendor-only record");
    assert_eq!(record.order_id, None);
    assert_eq!(record.vendor_key.as_deref(), Some("someone-elses-key"));
    assert_eq!(record.gl_state, Some(GlState::Fulfilled));
    assert_eq!(record.source, "webhook");
    assert_eq!(app.count("order_events WHERE kind = 'webhook'").await, 0);
}

async fn unknown_vendors_are_404_and_a_lost_database_is_503(db: TestDb) {
    let (app, _) = setup(db, &[SECRET]).await;
    let body = event("e", "key-1", "v-1", "fulfilled", "2026-12-01T10:00:01Z");
    let signature = sign_hex_hmac(SECRET, body.as_bytes());
    assert_eq!(
        post(&app, "nobody", body.as_bytes(), Some(&signature)).await,
        404
    );
    app.db.close().await;
    assert_eq!(post_signed(&app, &body, SECRET).await, 503);
}

async fn a_runa_event_that_only_names_the_order_queues_one_sync(db: TestDb) {
    use giftrecon::vendors::signature::sign_standard_webhooks;
    const RUNA_SECRET: &str = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";
    let app = TestApp::spawn(db).await;
    vendors::insert_vendor(
        &app.db,
        &NewVendor {
            id: VendorId::parse("runa").unwrap(),
            kind: VendorKind::Runa,
            base_url: None,
            webhook_secrets: vec![SecretString::from(RUNA_SECRET.to_string())],
            api_key: None,
        },
        &by_test("vendor_add"),
    )
    .await
    .unwrap();
    let ids = add_pending_orders(&app.db, "runa", &["rk-1".to_string()]).await;
    app::on_db!(&app.db, pool => {
        sqlx::query("UPDATE orders SET vendor_order_id = 'R-1' WHERE id = $1")
            .bind(&ids[0])
            .execute(pool)
            .await
            .map(|_| ())
    })
    .unwrap();
    let deliver = |msg_id: &'static str, age_secs: i64| {
        let app = &app;
        async move {
            let body = br#"{"id":"R-1","status":"COMPLETED"}"#;
            let timestamp = chrono::Utc::now().timestamp() - age_secs;
            app.client
                .post(app.url("/webhooks/runa"))
                .header("svix-id", msg_id)
                .header("svix-timestamp", timestamp.to_string())
                .header(
                    "svix-signature",
                    sign_standard_webhooks(RUNA_SECRET, msg_id, timestamp, body),
                )
                .body(body.to_vec())
                .send()
                .await
                .unwrap()
        }
    };
    // Too old or too far ahead: 401, nothing stored.
    assert_eq!(deliver("msg_old", 301).await.status(), 401);
    assert_eq!(deliver("msg_ahead", -301).await.status(), 401);
    assert_eq!(app.count("webhook_inbox").await, 0);
    let first = deliver("msg_1", 299).await;
    assert_eq!(first.status(), 200);
    assert_eq!(
        first.json::<Value>().await.unwrap()["status"],
        "sync_queued"
    );
    assert_eq!(deliver("msg_2", 0).await.status(), 200);
    // The order is read from the vendor by a job (never inside the request); one is enough.
    assert_eq!(
        app.count("outbox_jobs WHERE kind = 'sync_order' AND state = 'pending'")
            .await,
        1
    );
    let stored = inbox::inbox(&app.db, "runa").await.unwrap();
    assert_eq!(stored.len(), 2);
    assert!(stored
        .iter()
        .all(|row| row.order_id.as_deref() == Some(ids[0].as_str())));
    let headers: Value = serde_json::from_str(&stored[0].headers).unwrap();
    assert_eq!(headers["svix-id"], "msg_1");
    // Nothing about the order changed yet: the job will tell.
    assert_eq!(gl_state(&app, &ids[0]).await, GlState::Pending);
}
