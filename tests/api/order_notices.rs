//! A verified webhook that only names an order giftrecon does not know: a durable job reads the
//! order from the vendor (the simulator) after the answer, and records it as a vendor-only
//! vendor record.

use app::domain::GlState;
use app::storage::vendor_fetch::FetchOutcome;
use app::storage::{vendor_records, webhooks as inbox};
use giftrecon::config::OutboxSettings;
use giftrecon::outbox::OutboxWorker;
use giftrecon::sim::{self, SimConfig};
use giftrecon::vendors::signature::sign_hex_hmac;
use serde_json::{json, Value};

use crate::helpers::{TestApp, TestDb};
use crate::on_both_backends;
use crate::poller::sim_order;
use crate::webhooks::{add_pending_orders, add_vendor, SECRET};

on_both_backends!(
    a_notice_for_an_unknown_order_is_read_from_the_vendor_into_a_vendor_record,
    a_notice_for_an_order_the_vendor_does_not_know_is_retried_then_given_up,
);

/// A generic order-only notice: the order's id and nothing else.
fn notice(event_id: &str, vendor_order_id: &str) -> String {
    json!({
        "event_id": event_id,
        "type": "order.updated",
        "order": { "vendor_order_id": vendor_order_id },
    })
    .to_string()
}

async fn deliver(app: &TestApp, body: &str) -> (u16, Value) {
    let response = app
        .client
        .post(app.url("/webhooks/acme"))
        .header(
            "x-signature-256",
            format!("sha256={}", sign_hex_hmac(SECRET, body.as_bytes())),
        )
        .body(body.to_string())
        .send()
        .await
        .unwrap();
    let status = response.status().as_u16();
    (status, response.json().await.unwrap())
}

fn worker(app: &TestApp, settings: OutboxSettings) -> OutboxWorker {
    OutboxWorker::new(app.db.clone(), settings, "w1".into(), Default::default())
}

async fn a_notice_for_an_unknown_order_is_read_from_the_vendor_into_a_vendor_record(db: TestDb) {
    let app = TestApp::spawn(db).await;
    let sim = sim::spawn(SimConfig::default()).await.unwrap();
    add_vendor(&app.db, "acme", Some(&sim.base_url()), &[SECRET]).await;
    // An order giftrecon knows, to show the notice is not matched to it by accident.
    add_pending_orders(&app.db, "acme", &["ours-1".to_string()]).await;
    // An order placed at the vendor by someone else.
    sim_order(&app.client, &sim, "theirs-1", "V-77", "fulfilled", false).await;

    let (status, body) = deliver(&app, &notice("n1", "V-77")).await;
    assert_eq!(
        (status, body["status"].as_str()),
        (200, Some("sync_queued"))
    );
    // Answered before the vendor was asked: nothing recorded yet, one job queued.
    assert_eq!(app.count("vendor_records").await, 0);
    assert_eq!(
        app.count("vendor_fetch_jobs WHERE state = 'pending'").await,
        1
    );
    // Another notice for the same order while it waits: still one job; a repeat: nothing.
    assert_eq!(deliver(&app, &notice("n2", "V-77")).await.0, 200);
    let (status, body) = deliver(&app, &notice("n1", "V-77")).await;
    assert_eq!((status, body["status"].as_str()), (200, Some("duplicate")));
    assert_eq!(app.count("vendor_fetch_jobs").await, 1);
    assert_eq!(inbox::inbox(&app.db, "acme").await.unwrap().len(), 2);

    let worker = worker(&app, OutboxSettings::default());
    let report = worker.fetch_once().await.unwrap().expect("a due job");
    assert!(report.recorded);
    assert_eq!(report.job.vendor_order_id, "V-77");
    assert!(
        matches!(&report.outcome, FetchOutcome::Found(order) if order.status == "fulfilled"),
        "{report:?}"
    );
    let record = vendor_records::get(&app.db, "acme", "V-77")
        .await
        .unwrap()
        .expect("the vendor's order, recorded");
    assert_eq!(record.order_id, None, "vendor-only: a backfill candidate");
    assert_eq!(record.vendor_key.as_deref(), Some("theirs-1"));
    assert_eq!(record.gl_state, Some(GlState::Fulfilled));
    assert_eq!(record.amount.minor_units(), 2500);
    assert_eq!(app.count("vendor_records").await, 1);
    assert_eq!(app.count("vendor_fetch_jobs WHERE state = 'done'").await, 1);
    // Nothing else is due, and the vendor was asked once.
    assert!(worker.fetch_once().await.unwrap().is_none());
    assert_eq!(app.count("orders WHERE vendor_order_id = 'V-77'").await, 0);
}

async fn a_notice_for_an_order_the_vendor_does_not_know_is_retried_then_given_up(db: TestDb) {
    let app = TestApp::spawn(db).await;
    let sim = sim::spawn(SimConfig::default()).await.unwrap();
    add_vendor(&app.db, "acme", Some(&sim.base_url()), &[SECRET]).await;
    assert_eq!(deliver(&app, &notice("n1", "V-404")).await.0, 200);
    let settings = OutboxSettings {
        max_sync_attempts: 2,
        sync_delay_ms: 0,
        base_delay_ms: 0,
        ..OutboxSettings::default()
    };
    let worker = worker(&app, settings);
    let first = worker.fetch_once().await.unwrap().expect("a due job");
    assert!(
        matches!(first.outcome, FetchOutcome::Retry { .. }),
        "{first:?}"
    );
    assert_eq!(
        app.count("vendor_fetch_jobs WHERE state = 'pending'").await,
        1
    );
    let second = worker.fetch_once().await.unwrap().expect("due again");
    assert!(
        matches!(second.outcome, FetchOutcome::Dead { .. }),
        "{second:?}"
    );
    assert_eq!(app.count("vendor_fetch_jobs WHERE state = 'dead'").await, 1);
    assert_eq!(app.count("vendor_records").await, 0);
    // A later notice for it queues a fresh job (the dead one does not block it).
    assert_eq!(deliver(&app, &notice("n2", "V-404")).await.0, 200);
    assert_eq!(
        app.count("vendor_fetch_jobs WHERE state = 'pending'").await,
        1
    );
}
