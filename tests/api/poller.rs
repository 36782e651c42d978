//! The poller against the simulator: backfill, the cursor, the lease and its fencing token, and
//! webhooks under faults reconciled by one poll pass.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use app::domain::{GlState, VendorId};
use app::storage::orders;
use app::storage::poller as store;
use app::storage::vendor_records::{self, ObservedOrder};
use giftrecon::config::PollerSettings;
use giftrecon::poller::Poller;
use giftrecon::sim::{self, Faults, SimConfig, SimHandle};
use serde_json::json;

use crate::helpers::{TestApp, TestDb};
use crate::on_both_backends;
use crate::webhooks::{add_pending_orders, add_vendor, SECRET};

on_both_backends!(
    one_pass_backfills_missed_orders_and_records_vendor_only_ones,
    a_pass_cut_short_resumes_after_its_last_stored_page,
    a_stale_fencing_token_cannot_write,
    two_pollers_one_lease,
    a_thousand_orders_with_lossy_webhooks_match_the_vendor_after_one_pass,
);

fn settings() -> PollerSettings {
    PollerSettings {
        enabled: true,
        interval_secs: 1,
        overlap_secs: 60,
        page_limit: 1_000,
        lease_secs: 30,
        initial_lookback_secs: 3_600,
        vendor_timeout_ms: 5_000,
    }
}

fn keys(n: usize) -> Vec<String> {
    (0..n).map(|i| format!("key-{i:04}")).collect()
}

/// Inserts an order at the simulator as if placed there, optionally announced by webhook.
async fn sim_order(
    client: &reqwest::Client,
    sim: &SimHandle,
    key: &str,
    vendor_order_id: &str,
    status: &str,
    notify: bool,
) {
    let response = client
        .post(format!("{}/sim/orders", sim.base_url()))
        .json(&json!({
            "vendor_order_id": vendor_order_id,
            "idempotency_key": key,
            "brand_id": "amazon-us",
            "amount": "25.00",
            "currency": "USD",
            "status": status,
            "notify": notify,
        }))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 201, "{}", response.text().await.unwrap());
}

async fn sim_status(
    client: &reqwest::Client,
    sim: &SimHandle,
    vendor_order_id: &str,
    status: &str,
) {
    let response = client
        .post(format!(
            "{}/sim/orders/{vendor_order_id}/status",
            sim.base_url()
        ))
        .json(&json!({ "status": status }))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200, "{}", response.text().await.unwrap());
}

async fn gl_states(app: &TestApp, ids: &[String]) -> Vec<GlState> {
    let mut states = Vec::new();
    for id in ids {
        states.push(orders::get(&app.db, id).await.unwrap().unwrap().gl_state);
    }
    states
}

async fn one_pass_backfills_missed_orders_and_records_vendor_only_ones(db: TestDb) {
    let sim = sim::spawn(SimConfig::default()).await.unwrap();
    let app = TestApp::spawn(db).await;
    add_vendor(&app.db, "acme", Some(&sim.base_url()), &[SECRET]).await;
    let keys = keys(5);
    let ids = add_pending_orders(&app.db, "acme", &keys).await;
    let client = reqwest::Client::new();
    for (i, key) in keys.iter().enumerate() {
        let status = if i == 4 { "failed" } else { "fulfilled" };
        sim_order(&client, &sim, key, &format!("v-{i}"), status, false).await;
    }
    sim_order(&client, &sim, "not-ours", "v-x", "fulfilled", false).await;

    let poller = Poller::new(app.db.clone(), settings(), "a".into());
    let vendor = VendorId::parse("acme").unwrap();
    let report = poller.run_once(&vendor).await.unwrap();
    assert!(report.leader && report.complete, "{report:?}");
    assert_eq!(report.records, 6);
    assert_eq!(report.backfills, 5);
    assert_eq!(report.vendor_only, 1);
    let states = gl_states(&app, &ids).await;
    assert_eq!(&states[..4], &[GlState::Fulfilled; 4]);
    assert_eq!(states[4], GlState::Failed);
    let records = vendor_records::list(&app.db, "acme").await.unwrap();
    assert_eq!(records.len(), 6);
    let vendor_only: Vec<_> = records.iter().filter(|r| r.order_id.is_none()).collect();
    assert_eq!(vendor_only.len(), 1);
    assert_eq!(vendor_only[0].vendor_key.as_deref(), Some("not-ours"));
    assert!(records.iter().all(|r| r.source == "poll"));
    let cursor = store::cursor(&app.db, "acme").await.unwrap();
    assert!(
        cursor.synced_to.is_some() && cursor.pass_to.is_none(),
        "{cursor:?}"
    );

    // A second pass re-reads the overlap and changes nothing.
    let again = poller.run_once(&vendor).await.unwrap();
    assert_eq!(again.backfills, 0, "{again:?}");
    assert_eq!(app.count("vendor_records").await, 6);
    assert_eq!(app.count("order_events WHERE kind = 'poll'").await, 5);
}

async fn a_pass_cut_short_resumes_after_its_last_stored_page(db: TestDb) {
    let sim = sim::spawn(SimConfig::default()).await.unwrap();
    let app = TestApp::spawn(db).await;
    add_vendor(&app.db, "acme", Some(&sim.base_url()), &[SECRET]).await;
    let client = reqwest::Client::new();
    for i in 0..250 {
        sim_order(
            &client,
            &sim,
            &format!("k-{i}"),
            &format!("v-{i:03}"),
            "fulfilled",
            false,
        )
        .await;
    }
    let vendor = VendorId::parse("acme").unwrap();
    // One page per pass: the pass stops after the first page, as a crash after its commit would.
    let one_page = Poller::new(
        app.db.clone(),
        PollerSettings {
            page_limit: 1,
            ..settings()
        },
        "a".into(),
    );
    let first = one_page.run_once(&vendor).await.unwrap();
    assert_eq!(
        (first.pages, first.records, first.complete),
        (1, 100, false)
    );
    let cursor = store::cursor(&app.db, "acme").await.unwrap();
    assert!(
        cursor.synced_to.is_none(),
        "the pass is not done: {cursor:?}"
    );
    assert!(cursor.page_cursor.is_some() && cursor.pass_to.is_some());
    assert_eq!(cursor.pages, 1);
    assert_eq!(app.count("vendor_records").await, 100);

    let rest = Poller::new(app.db.clone(), settings(), "a".into());
    let second = rest.run_once(&vendor).await.unwrap();
    assert!(second.complete, "{second:?}");
    // Resumed where it stopped: the first page is not fetched again.
    assert_eq!(first.records + second.records, 250, "{second:?}");
    assert_eq!(app.count("vendor_records").await, 250);
    let cursor = store::cursor(&app.db, "acme").await.unwrap();
    assert!(
        cursor.synced_to.is_some() && cursor.pass_to.is_none() && cursor.page_cursor.is_none(),
        "{cursor:?}"
    );
    assert_eq!(cursor.pages, 3);
}

async fn a_stale_fencing_token_cannot_write(db: TestDb) {
    let app = TestApp::spawn(db).await;
    add_vendor(&app.db, "acme", Some("http://127.0.0.1:9"), &[SECRET]).await;
    let ttl = chrono::Duration::seconds(30);
    let old = store::acquire_lease(&app.db, "acme", "a", ttl)
        .await
        .unwrap()
        .unwrap();
    assert!(store::begin_pass(
        &app.db,
        &old,
        app::storage::now_utc(),
        app::storage::now_utc()
    )
    .await
    .unwrap());
    // The holder stalls past its lease; another replica takes over with a new token.
    app::on_db!(&app.db, pool => {
        sqlx::query("UPDATE poller_leases SET expires_at = $1")
            .bind(app::storage::now_utc() - chrono::Duration::seconds(1))
            .execute(pool)
            .await
            .map(|_| ())
    })
    .unwrap();
    let new = store::acquire_lease(&app.db, "acme", "b", ttl)
        .await
        .unwrap()
        .unwrap();
    assert!(new.fencing_token > old.fencing_token);
    let before = store::cursor(&app.db, "acme").await.unwrap();
    let record = ObservedOrder {
        vendor_order_id: "v-1".into(),
        vendor_key: Some("k".into()),
        reference_id: None,
        brand_id: None,
        amount: app::domain::Money::from_minor(100, app::domain::Currency::USD),
        status: "fulfilled".into(),
        gl_state: Some(GlState::Fulfilled),
        created_at: None,
        updated_at: None,
    };
    let stale = store::store_page(&app.db, &old, std::slice::from_ref(&record), None)
        .await
        .unwrap();
    assert_eq!(stale, None);
    assert_eq!(app.count("vendor_records").await, 0);
    assert_eq!(store::cursor(&app.db, "acme").await.unwrap(), before);
    assert!(!store::begin_pass(
        &app.db,
        &old,
        app::storage::now_utc(),
        app::storage::now_utc()
    )
    .await
    .unwrap());
    // The current holder writes.
    let stored = store::store_page(&app.db, &new, &[record], None)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(stored.records, 1);
    assert_eq!(app.count("vendor_records").await, 1);
}

async fn two_pollers_one_lease(db: TestDb) {
    let app = TestApp::spawn(db).await;
    add_vendor(&app.db, "acme", Some("http://127.0.0.1:9"), &[SECRET]).await;
    let ttl = chrono::Duration::seconds(30);
    let attempts = (0..8).map(|i| {
        let db = app.db.clone();
        async move {
            store::acquire_lease(&db, "acme", &format!("p{i}"), ttl)
                .await
                .unwrap()
        }
    });
    let won: Vec<_> = futures::future::join_all(attempts)
        .await
        .into_iter()
        .flatten()
        .collect();
    assert_eq!(won.len(), 1, "{won:?}");
    let leader = &won[0];
    // Renewal keeps the token; others still cannot take it.
    let renewed = store::acquire_lease(&app.db, "acme", &leader.holder, ttl)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(renewed.fencing_token, leader.fencing_token);
    let other = if leader.holder == "p0" { "p1" } else { "p0" };
    assert!(store::acquire_lease(&app.db, "acme", other, ttl)
        .await
        .unwrap()
        .is_none());
    // A follower's pass does nothing.
    let follower = Poller::new(app.db.clone(), settings(), other.into());
    let report = follower
        .run_once(&VendorId::parse("acme").unwrap())
        .await
        .unwrap();
    assert!(!report.leader);
    // Released: the other takes it with a new token.
    store::release_lease(&app.db, &renewed).await.unwrap();
    let next = store::acquire_lease(&app.db, "acme", other, ttl)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(next.fencing_token, leader.fencing_token + 1);
}

async fn a_thousand_orders_with_lossy_webhooks_match_the_vendor_after_one_pass(db: TestDb) {
    let app = TestApp::spawn(db).await;
    let sim = sim::spawn(
        SimConfig {
            seed: Some(42),
            faults: Faults {
                webhook_drop_rate: 0.30,
                webhook_duplicate_rate: 0.05,
                webhook_reorder_rate: 0.05,
                bad_signature_rate: 0.02,
                ..Faults::default()
            },
            ..SimConfig::default()
        }
        .with_webhook(app.url("/webhooks/acme"), SECRET),
    )
    .await
    .unwrap();
    add_vendor(&app.db, "acme", Some(&sim.base_url()), &[SECRET]).await;
    let keys = keys(1_000);
    let ids = add_pending_orders(&app.db, "acme", &keys).await;
    let client = reqwest::Client::new();
    let mut expected = HashMap::new();
    // Every order is announced as pending, then moves on; some are refunded later.
    for chunk in (0..keys.len()).collect::<Vec<_>>().chunks(50) {
        let inserts = chunk.iter().map(|&i| {
            let client = &client;
            let sim = &sim;
            let key = &keys[i];
            async move {
                let vid = format!("v-{i:04}");
                sim_order(client, sim, key, &vid, "pending", true).await;
                let status = if i % 10 == 0 { "failed" } else { "fulfilled" };
                sim_status(client, sim, &vid, status).await;
                if i % 7 == 1 && status == "fulfilled" {
                    sim_status(client, sim, &vid, "refunded").await;
                    return GlState::Refunded;
                }
                if status == "failed" {
                    GlState::Failed
                } else {
                    GlState::Fulfilled
                }
            }
        });
        let states = futures::future::join_all(inserts).await;
        for (&i, state) in chunk.iter().zip(states) {
            expected.insert(i, state);
        }
    }
    // Wait until every delivery the simulator will make has ended (sent or given up).
    let deadline = Instant::now() + Duration::from_secs(60);
    let stats = loop {
        let s = sim.stats();
        if s.webhooks_dropped + s.webhooks_sent + s.webhooks_failed
            == s.webhook_events + s.webhooks_duplicated
        {
            break s;
        }
        assert!(Instant::now() < deadline, "deliveries never settled: {s:?}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    assert!(
        stats.webhooks_dropped > 0
            && stats.webhooks_duplicated > 0
            && stats.webhooks_bad_signature > 0
            && stats.webhooks_reordered > 0,
        "{stats:?}"
    );
    let before = gl_states(&app, &ids).await;
    let wrong_before = before
        .iter()
        .enumerate()
        .filter(|(i, s)| **s != expected[i])
        .count();
    assert!(
        wrong_before > 0,
        "lost webhooks should have left some orders behind"
    );

    let poller = Poller::new(app.db.clone(), settings(), "a".into());
    let report = poller
        .run_once(&VendorId::parse("acme").unwrap())
        .await
        .unwrap();
    assert!(report.complete, "{report:?}");
    assert_eq!(report.records, 1_000);
    assert_eq!(report.backfills as usize, wrong_before, "{report:?}");
    let after = gl_states(&app, &ids).await;
    for (i, state) in after.iter().enumerate() {
        assert_eq!(*state, expected[&i], "order {i}");
    }
    // No event applied twice: one order event per stored event, and no event id twice.
    let inbox_rows = app.count("webhook_inbox").await;
    assert_eq!(
        app.count("order_events WHERE kind = 'webhook'").await,
        inbox_rows
    );
    // Bad signatures left nothing: every stored event verified and parsed.
    assert_eq!(app.count("webhook_inbox WHERE state <> 'applied'").await, 0);
    let delivered_events = (stats.webhook_events - stats.webhooks_dropped) as i64;
    assert!(
        inbox_rows <= delivered_events,
        "{inbox_rows} > {delivered_events}"
    );
    assert!(
        inbox_rows >= delivered_events - stats.webhooks_bad_signature as i64,
        "{inbox_rows} {stats:?}"
    );
    assert_eq!(app.count("vendor_records").await, 1_000);
}
