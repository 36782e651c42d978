//! A group commit has exactly the effects of its events received one by one: the same answers,
//! orders, vendor records, order history, inbox and jobs, whatever the batch mixes (repeats,
//! stale and out-of-order observations, an order found by the vendor id an earlier event of the
//! batch taught, unknown orders, order-only notices).

use app::domain::{Currency, GlState, Money};
use app::storage::vendor_records::ObservedOrder;
use app::storage::webhooks::{self as inbox, EventSubject, InboxEntry, Received};
use app::storage::Db;
use chrono::{DateTime, Utc};

use crate::helpers::TestDb;
use crate::on_both_backends;
use crate::webhooks::{add_pending_orders, add_vendor, SECRET};

on_both_backends!(a_batch_has_the_effects_of_its_events_one_by_one);

fn observed(key: Option<&str>, vendor_order_id: &str, status: &str, at: &str) -> EventSubject {
    let gl_state = match status {
        "pending" => Some(GlState::Pending),
        "fulfilled" => Some(GlState::Fulfilled),
        "refunded" => Some(GlState::Refunded),
        _ => None,
    };
    EventSubject::Order(ObservedOrder {
        vendor_order_id: vendor_order_id.into(),
        vendor_key: key.map(str::to_owned),
        reference_id: None,
        brand_id: Some("amazon-us".into()),
        amount: Money::from_minor(2500, Currency::USD),
        status: status.into(),
        gl_state,
        created_at: None,
        updated_at: Some(at.parse().unwrap()),
    })
}

fn events() -> Vec<(&'static str, EventSubject)> {
    let changed = |id: &str| EventSubject::OrderChanged {
        vendor_order_id: id.into(),
    };
    vec![
        (
            "e1",
            observed(Some("key-1"), "v-1", "pending", "2026-12-01T10:00:01Z"),
        ),
        (
            "e2",
            observed(Some("key-1"), "v-1", "fulfilled", "2026-12-01T10:00:02Z"),
        ),
        (
            "e1",
            observed(Some("key-1"), "v-1", "pending", "2026-12-01T10:00:01Z"),
        ),
        // Stale: older than what the record holds, and no step back for the order.
        (
            "e3",
            observed(Some("key-1"), "v-1", "pending", "2026-12-01T10:00:00Z"),
        ),
        // No key: found by the vendor id that e1 taught the order within this batch.
        (
            "e4",
            observed(None, "v-1", "refunded", "2026-12-01T10:00:03Z"),
        ),
        (
            "e5",
            observed(
                Some("someone-else"),
                "v-3",
                "fulfilled",
                "2026-12-01T10:00:01Z",
            ),
        ),
        // Unmapped status: no GL change, but the order learns its vendor id.
        (
            "e6",
            observed(Some("key-2"), "v-2", "processing", "2026-12-01T10:00:01Z"),
        ),
        ("e7", changed("v-2")),
        ("e8", changed("v-9")),
        ("e9", EventSubject::Other),
        ("e8", changed("v-9")),
    ]
}

/// The answers with order ids replaced by the orders' keys (ids are random per database).
async fn answers(db: &Db, received: Vec<Received>) -> Vec<String> {
    let mut out = Vec::new();
    for answer in received {
        let text = match answer {
            Received::Duplicate => "duplicate".to_string(),
            Received::Stored {
                state,
                order_id,
                advanced,
                sync_queued,
            } => {
                let key = match order_id {
                    Some(id) => Some(key_of(db, &id).await),
                    None => None,
                };
                format!("{state} {key:?} {advanced:?} {sync_queued}")
            }
        };
        out.push(text);
    }
    out
}

async fn key_of(db: &Db, order_id: &str) -> String {
    app::on_db!(db, pool => {
        sqlx::query_scalar("SELECT vendor_key FROM orders WHERE id = $1")
            .bind(order_id)
            .fetch_one(pool)
            .await
    })
    .unwrap()
}

type RecordRow = (
    String,
    Option<String>,
    String,
    Option<String>,
    i64,
    Option<String>,
    String,
    Option<DateTime<Utc>>,
);

/// Everything receiving events writes, keyed by order keys rather than ids.
async fn snapshot(db: &Db) -> String {
    app::on_db!(db, pool => {
        async {
            let orders: Vec<(String, String, Option<String>, Option<String>)> = sqlx::query_as(
                "SELECT vendor_key, gl_state, vendor_status, vendor_order_id FROM orders ORDER BY vendor_key",
            )
            .fetch_all(pool)
            .await?;
            let records: Vec<RecordRow> = sqlx::query_as(
                "SELECT r.vendor_order_id, r.vendor_key, r.status, r.gl_state, r.amount_minor,
                        (SELECT o.vendor_key FROM orders o WHERE o.id = r.order_id), r.source, r.updated_at
                   FROM vendor_records r ORDER BY r.vendor_order_id",
            )
            .fetch_all(pool)
            .await?;
            let history: Vec<(String, String, String, Option<String>)> = sqlx::query_as(
                "SELECT o.vendor_key, e.kind, e.detail, e.actor FROM order_events e
                   JOIN orders o ON o.id = e.order_id ORDER BY e.id",
            )
            .fetch_all(pool)
            .await?;
            let inbox: Vec<(String, String, Option<String>)> = sqlx::query_as(
                "SELECT i.event_id, i.state, (SELECT o.vendor_key FROM orders o WHERE o.id = i.order_id)
                   FROM webhook_inbox i ORDER BY i.event_id",
            )
            .fetch_all(pool)
            .await?;
            let jobs: Vec<(String, String, String)> = sqlx::query_as(
                "SELECT o.vendor_key, j.kind, j.state FROM outbox_jobs j
                   JOIN orders o ON o.id = j.order_id ORDER BY o.vendor_key",
            )
            .fetch_all(pool)
            .await?;
            let fetches: Vec<(String, String)> = sqlx::query_as(
                "SELECT vendor_order_id, state FROM vendor_fetch_jobs ORDER BY vendor_order_id",
            )
            .fetch_all(pool)
            .await?;
            Ok::<_, sqlx::Error>(format!(
                "orders {orders:#?}\nrecords {records:#?}\nhistory {history:#?}\ninbox {inbox:#?}\njobs {jobs:#?}\nfetches {fetches:#?}"
            ))
        }
        .await
    })
    .unwrap()
}

async fn a_batch_has_the_effects_of_its_events_one_by_one(db: TestDb) {
    let other = match db.url.starts_with("sqlite") {
        true => TestDb::sqlite().await,
        false => TestDb::postgres().await,
    };
    let (batched, single) = (db.connect().await, other.connect().await);
    for each in [&batched, &single] {
        add_vendor(each, "acme", None, &[SECRET]).await;
        add_pending_orders(each, "acme", &["key-1".to_string(), "key-2".to_string()]).await;
    }
    let events = events();
    let entries: Vec<InboxEntry<'_>> = events
        .iter()
        .map(|(event_id, _)| InboxEntry {
            vendor_id: "acme",
            event_id,
            event_type: Some("order.updated"),
            headers: "{}".into(),
            body: b"{}",
        })
        .collect();
    let pairs: Vec<_> = entries.iter().zip(events.iter().map(|(_, s)| s)).collect();
    let at_once = inbox::receive_batch(&batched, &pairs).await.unwrap();
    let mut one_by_one = Vec::new();
    for (entry, subject) in &pairs {
        one_by_one.push(inbox::receive(&single, entry, subject).await.unwrap());
    }
    let at_once = answers(&batched, at_once).await;
    assert_eq!(at_once, answers(&single, one_by_one).await);
    let snapshot_batched = snapshot(&batched).await;
    assert_eq!(snapshot_batched, snapshot(&single).await);
    // And what that is, in short.
    assert_eq!(at_once[2], "duplicate");
    assert_eq!(at_once[10], "duplicate");
    assert!(
        at_once[4].contains("Some(\"key-1\") Some((Fulfilled, Refunded))"),
        "{at_once:?}"
    );
    assert!(
        at_once[7].starts_with("sync_queued Some(\"key-2\")"),
        "{at_once:?}"
    );
    assert!(at_once[8].starts_with("sync_queued None"), "{at_once:?}");
    assert!(
        snapshot_batched.contains("\"refunded\""),
        "{snapshot_batched}"
    );
    assert!(snapshot_batched.contains("\"v-2\""), "{snapshot_batched}");
    batched.close().await;
    single.close().await;
}
