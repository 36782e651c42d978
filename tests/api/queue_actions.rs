//! The queue actions through their server functions: Backfill, Retry, Refund, Sync status and
//! Write off (with a second person's approval), each once however often it is clicked, audited,
//! and tying out on the next run; bulk outcomes per item; assignment, notes and history; the
//! queue's filters; and Retry reaching the vendor simulator with the order's one vendor key.

use std::sync::Arc;
use std::time::{Duration, Instant};

use app::domain::Role;
use app::server::discrepancies::{
    ActOnDiscrepancies, AddDiscrepancyNote, AssignDiscrepancy, DiscrepancyHistory,
    ListDiscrepancies,
};
use leptos::server_fn::ServerFn;
use serde_json::{json, Value};

use crate::helpers::{TestApp, TestDb};
use crate::on_both_backends;
use crate::reconciliation::seed_classes;

on_both_backends!(
    each_action_does_its_work_once_and_ties_out,
    write_offs_need_a_second_person,
    bulk_actions_report_each_item,
    items_are_assigned_noted_and_filtered,
    retry_reaches_the_vendor_with_the_same_key,
);

async fn list(app: &TestApp, cookie: &str, filter: Value) -> Vec<Value> {
    let (status, body) = app
        .call_json(ListDiscrepancies::PATH, cookie, json!({ "filter": filter }))
        .await;
    assert_eq!(status, 200, "{body}");
    body["items"].as_array().unwrap().clone()
}

/// The open item of `class` on 2026-12-01 (there is one of each in the seed).
async fn item(app: &TestApp, cookie: &str, class: &str) -> Value {
    let items = list(
        app,
        cookie,
        json!({"vendor": "acme", "class": class, "state": "open"}),
    )
    .await;
    assert_eq!(items.len(), 1, "{class}: {items:?}");
    items[0].clone()
}

async fn act(app: &TestApp, cookie: &str, ids: &[i64], action: &str, reason: &str) -> (u16, Value) {
    app.call_json(
        ActOnDiscrepancies::PATH,
        cookie,
        json!({"ids": ids, "action": action, "reason": reason}),
    )
    .await
}

async fn scalar_i64(app: &TestApp, sql: &str) -> i64 {
    app::on_db!(&app.db, pool => sqlx::query_scalar::<_, i64>(sql).fetch_one(pool).await).unwrap()
}

async fn scalar_text(app: &TestApp, sql: &str) -> String {
    app::on_db!(&app.db, pool => sqlx::query_scalar::<_, String>(sql).fetch_one(pool).await)
        .unwrap()
}

fn reconcile(db: &TestDb) -> Value {
    let out = db.cli(&["reconcile", "--vendor", "acme", "--date", "2026-12-01"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let summary = db.cli(&[
        "report",
        "summary",
        "--vendor",
        "acme",
        "--date",
        "2026-12-01",
        "--format",
        "json",
    ]);
    serde_json::from_slice(&summary.stdout).unwrap()
}

/// The seeded day plus one more internal-only order (to refund), reconciled.
async fn seeded(db: TestDb) -> (TestApp, String, String, String) {
    seed_classes(&db).await;
    std::fs::write(
        db.dir.path().join("more.csv"),
        "idempotency_key,customer_id,brand_id,amount,currency,status,created_at\n\
         k-refund,c9,amazon-us,7.00,USD,fulfilled,2026-12-01T11:00:00Z\n",
    )
    .unwrap();
    let out = db.cli(&["import", "orders", "more.csv", "--vendor", "acme"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    reconcile(&db);
    let app = TestApp::spawn(db).await;
    let preparer = app.signed_in(Role::FinancePreparer).await;
    let approver = app.signed_in(Role::FinanceApprover).await;
    let support = app.signed_in(Role::Support).await;
    (app, preparer, approver, support)
}

async fn each_action_does_its_work_once_and_ties_out(db: TestDb) {
    let (app, preparer, _approver, support) = seeded(db).await;
    let before = reconcile(&app.test_db);
    assert_eq!(before["counts"]["vendor_only"], 1, "{before}");
    assert_eq!(before["counts"]["internal_only"], 2, "{before}");
    assert_eq!(before["counts"]["status_mismatch"], 1, "{before}");

    // The page offers what fits each class.
    let ghost = item(&app, &preparer, "vendor_only").await;
    assert_eq!(ghost["actions"], json!(["backfill"]));
    assert_eq!(ghost["at_stake"], "60.00 USD");
    let status = item(&app, &preparer, "status_mismatch").await;
    assert_eq!(status["actions"], json!(["sync_status"]));

    // Support looks but does not act: no buttons offered, and the server refuses anyway.
    let seen = item(&app, &support, "vendor_only").await;
    assert_eq!(
        (seen["actions"].clone(), seen["can_resolve"].clone()),
        (json!([]), json!(false))
    );
    assert_eq!(ghost["can_resolve"], true);
    let (code, body) = act(
        &app,
        &support,
        &[ghost["id"].as_i64().unwrap()],
        "backfill",
        "",
    )
    .await;
    assert_eq!(code, 403, "{body}");

    // Backfill, clicked twice at once: one order, one audit row, the second told it is done.
    let id = ghost["id"].as_i64().unwrap();
    let ids = [id];
    let (a, b) = tokio::join!(
        act(&app, &preparer, &ids, "backfill", ""),
        act(&app, &preparer, &ids, "backfill", "")
    );
    assert_eq!((a.0, b.0), (200, 200), "{a:?} {b:?}");
    let oks: Vec<bool> = [&a.1, &b.1]
        .iter()
        .map(|r| r[0]["ok"].as_bool().unwrap())
        .collect();
    assert_eq!(oks.iter().filter(|ok| **ok).count(), 1, "{a:?} {b:?}");
    let refused = if oks[0] { &b.1[0] } else { &a.1[0] };
    assert!(
        refused["message"]
            .as_str()
            .unwrap()
            .contains("already resolved"),
        "{refused}"
    );
    let done = if oks[0] { &a.1[0] } else { &b.1[0] };
    let order_id = done["order_id"].as_str().unwrap().to_string();
    assert_eq!(
        scalar_i64(
            &app,
            "SELECT COUNT(*) FROM orders WHERE source = 'backfill'"
        )
        .await,
        1
    );
    let order = app::storage::orders::get(&app.db, &order_id)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(order.amount.amount_string(), "60.00");
    assert_eq!(order.gl_state.as_str(), "fulfilled");
    assert_eq!(order.vendor_order_id.as_deref(), Some("V7"));
    assert_eq!(
        scalar_text(
            &app,
            "SELECT order_id FROM vendor_records WHERE vendor_order_id = 'V7'"
        )
        .await,
        order_id
    );
    assert_eq!(
        scalar_i64(
            &app,
            "SELECT COUNT(*) FROM audit_log WHERE action = 'discrepancy_backfilled'"
        )
        .await,
        1
    );
    let events = app::storage::orders::events(&app.db, &order_id)
        .await
        .unwrap();
    let kinds: Vec<&str> = events.iter().map(|e| e.kind.as_str()).collect();
    assert_eq!(kinds, ["created", "backfilled"]);

    // A wrong-class action changes nothing and says what the action is for.
    let amount = item(&app, &preparer, "amount_mismatch").await;
    let (_, r) = act(
        &app,
        &preparer,
        &[amount["id"].as_i64().unwrap()],
        "backfill",
        "",
    )
    .await;
    assert_eq!(r[0]["ok"], false);
    assert!(
        r[0]["message"]
            .as_str()
            .unwrap()
            .contains("it is for: vendor only"),
        "{r}"
    );

    // Sync status: the order takes the vendor's status.
    let (_, r) = act(
        &app,
        &preparer,
        &[status["id"].as_i64().unwrap()],
        "sync_status",
        "",
    )
    .await;
    assert_eq!(r[0]["ok"], true, "{r}");
    assert_eq!(
        scalar_text(
            &app,
            "SELECT gl_state FROM orders WHERE idempotency_key = 'k-status'"
        )
        .await,
        "fulfilled"
    );

    // Refund needs a reason, then ends the order failed and cancels nothing that is not there.
    let internal = list(
        &app,
        &preparer,
        json!({"vendor": "acme", "class": "internal_only"}),
    )
    .await;
    let by_key = |key: &str| {
        internal.iter().find(|i| i["key"] == key).unwrap()["id"]
            .as_i64()
            .unwrap()
    };
    let (code, body) = act(&app, &preparer, &[by_key("k-refund")], "refund", " ").await;
    assert_eq!(code, 400, "{body}");
    assert!(body.to_string().contains("reason"), "{body}");
    let (_, r) = act(
        &app,
        &preparer,
        &[by_key("k-refund")],
        "refund",
        "card never issued",
    )
    .await;
    assert_eq!(r[0]["ok"], true, "{r}");
    assert_eq!(
        scalar_text(
            &app,
            "SELECT gl_state FROM orders WHERE idempotency_key = 'k-refund'"
        )
        .await,
        "failed"
    );

    // Retry: one pending placement with the order's vendor key, however often it is clicked.
    let retry = by_key("k-internal");
    let (_, r) = act(&app, &preparer, &[retry], "retry", "").await;
    assert_eq!(r[0]["ok"], true, "{r}");
    let (_, r) = act(&app, &preparer, &[retry], "retry", "").await;
    assert_eq!(r[0]["ok"], false, "{r}");
    assert_eq!(
        scalar_i64(
            &app,
            "SELECT COUNT(*) FROM outbox_jobs j JOIN orders o ON o.id = j.order_id
              WHERE o.idempotency_key = 'k-internal' AND j.kind = 'place_order' AND j.state = 'pending'"
        )
        .await,
        1
    );
    assert_eq!(
        scalar_text(
            &app,
            "SELECT submission FROM orders WHERE idempotency_key = 'k-internal'"
        )
        .await,
        "queued"
    );

    // The next run ties out what the actions fixed, and keeps the acted-on items resolved.
    let after = reconcile(&app.test_db);
    assert_eq!(after["counts"]["vendor_only"], 0, "{after}");
    assert_eq!(after["counts"]["status_mismatch"], 0, "{after}");
    // k-refund is failed and absent at the vendor: it agrees. k-internal waits for the vendor.
    assert_eq!(after["counts"]["internal_only"], 1, "{after}");
    assert_eq!(
        after["counts"]["matched"].as_i64().unwrap(),
        before["counts"]["matched"].as_i64().unwrap() + 2,
        "{after}"
    );
    let resolved = list(
        &app,
        &preparer,
        json!({"vendor": "acme", "state": "resolved"}),
    )
    .await;
    assert_eq!(resolved.len(), 4, "{resolved:?}");
    for action in ["backfilled", "status_synced", "refunded", "retried"] {
        assert_eq!(
            scalar_i64(
                &app,
                &format!("SELECT COUNT(*) FROM audit_log WHERE action = 'discrepancy_{action}'")
            )
            .await,
            1,
            "{action}"
        );
    }
}

async fn write_offs_need_a_second_person(db: TestDb) {
    let (app, preparer, approver, _support) = seeded(db).await;
    let amount = item(&app, &preparer, "amount_mismatch").await["id"]
        .as_i64()
        .unwrap();
    let (code, _) = act(&app, &preparer, &[amount], "write_off", "").await;
    assert_eq!(code, 400);
    let (_, r) = act(
        &app,
        &preparer,
        &[amount],
        "write_off",
        "rounding at the vendor",
    )
    .await;
    assert_eq!(r[0]["ok"], true, "{r}");
    assert!(
        r[0]["message"].as_str().unwrap().contains("0.01 USD"),
        "{r}"
    );
    // Requested, not done: still open, now offering approval.
    let open = item(&app, &preparer, "amount_mismatch").await;
    assert_eq!(open["write_off_by"], "finance_preparer", "{open}");
    // Only an approver is offered the approval.
    assert_eq!(open["actions"], json!([]));
    let for_approver = item(&app, &approver, "amount_mismatch").await;
    assert_eq!(for_approver["actions"], json!(["approve_write_off"]));
    // A preparer cannot approve; asking twice is refused.
    let (code, _) = act(&app, &preparer, &[amount], "approve_write_off", "").await;
    assert_eq!(code, 403);
    let (_, r) = act(&app, &preparer, &[amount], "write_off", "again").await;
    assert_eq!(r[0]["ok"], false);
    // The approver approves: resolved, saying who asked and who approved.
    let (_, r) = act(&app, &approver, &[amount], "approve_write_off", "").await;
    assert_eq!(r[0]["ok"], true, "{r}");
    let done = list(
        &app,
        &approver,
        json!({"class": "amount_mismatch", "state": "resolved"}),
    )
    .await;
    let how = done[0]["resolution"].as_str().unwrap();
    assert!(
        how.contains("rounding at the vendor") && how.contains("requested by finance_preparer"),
        "{how}"
    );

    // An approver's own request needs another approver.
    let currency = item(&app, &approver, "currency_mismatch").await["id"]
        .as_i64()
        .unwrap();
    let (_, r) = act(
        &app,
        &approver,
        &[currency],
        "write_off",
        "EUR card by mistake",
    )
    .await;
    assert_eq!(r[0]["ok"], true, "{r}");
    let (_, r) = act(&app, &approver, &[currency], "approve_write_off", "").await;
    assert_eq!(r[0]["ok"], false);
    assert!(
        r[0]["message"]
            .as_str()
            .unwrap()
            .contains("another finance approver"),
        "{r}"
    );
    assert_eq!(
        scalar_i64(
            &app,
            "SELECT COUNT(*) FROM audit_log WHERE action = 'discrepancy_written_off'"
        )
        .await,
        1
    );
}

async fn bulk_actions_report_each_item(db: TestDb) {
    let (app, preparer, _approver, _support) = seeded(db).await;
    let all = list(&app, &preparer, json!({"vendor": "acme", "state": "open"})).await;
    let ids: Vec<i64> = all.iter().map(|i| i["id"].as_i64().unwrap()).collect();
    let (code, results) = act(&app, &preparer, &ids, "write_off", "month-end clean-up").await;
    assert_eq!(code, 200, "{results}");
    let results = results.as_array().unwrap();
    assert_eq!(results.len(), ids.len());
    // Write-offs fit amount, currency, unmapped and duplicate items; the rest say why not.
    let fits = [
        "amount_mismatch",
        "currency_mismatch",
        "unmapped_status",
        "duplicate",
    ];
    for (item, result) in all.iter().zip(results) {
        assert_eq!(item["id"], result["id"]);
        let expected = fits.contains(&item["class"].as_str().unwrap());
        assert_eq!(result["ok"].as_bool().unwrap(), expected, "{item} {result}");
    }
    let (code, body) = act(&app, &preparer, &[], "retry", "").await;
    assert_eq!(code, 400, "{body}");
    let (code, body) = act(&app, &preparer, &ids, "delete", "").await;
    assert_eq!(code, 400);
    assert!(body.to_string().contains("action"), "{body}");
}

async fn items_are_assigned_noted_and_filtered(db: TestDb) {
    let (app, preparer, approver, support) = seeded(db).await;
    let id = item(&app, &preparer, "duplicate").await["id"]
        .as_i64()
        .unwrap();
    let (code, view) = app
        .call_json(
            AssignDiscrepancy::PATH,
            &preparer,
            json!({"id": id, "assignee": "me"}),
        )
        .await;
    assert_eq!(code, 200, "{view}");
    assert_eq!(view["assignee"], "finance_preparer");
    let (code, body) = app
        .call_json(
            AssignDiscrepancy::PATH,
            &preparer,
            json!({"id": id, "assignee": "nobody-here"}),
        )
        .await;
    assert_eq!(code, 409, "{body}");
    assert!(body.to_string().contains("assignee"), "{body}");
    let (code, _) = app
        .call_json(
            AssignDiscrepancy::PATH,
            &support,
            json!({"id": id, "assignee": "me"}),
        )
        .await;
    assert_eq!(code, 403);
    let (code, _) = app
        .call_json(
            AddDiscrepancyNote::PATH,
            &preparer,
            json!({"id": id, "note": "asked the vendor about V6b"}),
        )
        .await;
    assert_eq!(code, 200);
    let (code, body) = app
        .call_json(
            AddDiscrepancyNote::PATH,
            &preparer,
            json!({"id": id, "note": "  "}),
        )
        .await;
    assert_eq!(code, 400, "{body}");
    let (code, history) = app
        .call_json(DiscrepancyHistory::PATH, &support, json!({"id": id}))
        .await;
    assert_eq!(code, 200);
    let kinds: Vec<&str> = history
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["kind"].as_str().unwrap())
        .collect();
    assert_eq!(kinds, ["opened", "assigned", "note"], "{history}");

    // Mine, nobody's, the approver's (none).
    let mine = list(&app, &preparer, json!({"assignee": "me"})).await;
    assert_eq!(mine.len(), 1);
    assert_eq!(mine[0]["id"], id);
    assert!(list(&app, &approver, json!({"assignee": "me"}))
        .await
        .is_empty());
    let nobody = list(
        &app,
        &preparer,
        json!({"assignee": "nobody", "vendor": "acme"}),
    )
    .await;
    let open = list(&app, &preparer, json!({"vendor": "acme"})).await;
    assert_eq!(nobody.len() + 1, open.len());

    // Currency and amount (the larger side, within the currency), sorting and bad values.
    let usd_over_25 = list(
        &app,
        &preparer,
        json!({"currency": "USD", "min_amount": "25.00", "sort": "amount"}),
    )
    .await;
    let keys: Vec<&str> = usd_over_25
        .iter()
        .map(|i| i["key"].as_str().unwrap())
        .collect();
    assert_eq!(
        keys,
        ["k-ghost", "k-internal", "k-currency", "k-amount"],
        "{usd_over_25:?}"
    );
    let jpy = list(&app, &preparer, json!({"currency": "jpy"})).await;
    assert!(jpy
        .iter()
        .all(|i| i["internal_currency"] == "JPY" || i["vendor_currency"] == "JPY"));
    for (filter, field) in [
        (json!({"min_amount": "5"}), "min_amount: choose a currency"),
        (
            json!({"currency": "USD", "max_amount": "1.234"}),
            "max_amount",
        ),
        (json!({"currency": "XYZ"}), "currency"),
        (json!({"min_age_days": "-1"}), "min_age_days"),
        (json!({"sort": "random"}), "sort"),
    ] {
        let (code, body) = app
            .call_json(
                ListDiscrepancies::PATH,
                &preparer,
                json!({ "filter": filter }),
            )
            .await;
        assert_eq!(code, 400, "{filter}: {body}");
        assert!(body.to_string().contains(field), "{filter}: {body}");
    }
    // Aging: nothing has been open a day yet.
    assert!(list(&app, &preparer, json!({"min_age_days": "1"}))
        .await
        .is_empty());
    assert_eq!(
        list(
            &app,
            &preparer,
            json!({"min_age_days": "0", "vendor": "acme"})
        )
        .await
        .len(),
        open.len()
    );
}

async fn retry_reaches_the_vendor_with_the_same_key(db: TestDb) {
    use giftrecon::config::OutboxSettings;
    use giftrecon::outbox::OutboxWorker;
    use giftrecon::sim::{self, SimConfig};

    let sim = sim::spawn(SimConfig {
        fulfil_delay: Duration::from_millis(30),
        seed: Some(11),
        ..SimConfig::default()
    })
    .await
    .expect("simulator");
    let app = TestApp::spawn(db).await;
    app.add_vendor("acme", &sim.base_url(), &["amazon-us"])
        .await;
    // Placed by another system, never at the vendor: internal-only.
    std::fs::write(
        app.test_db.dir.path().join("orders.csv"),
        "idempotency_key,customer_id,brand_id,amount,currency,status,created_at\n\
         k-lost,c1,amazon-us,25.00,USD,fulfilled,2026-12-01T09:00:00Z\n",
    )
    .unwrap();
    let out = app
        .test_db
        .cli(&["import", "orders", "orders.csv", "--vendor", "acme"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let summary = reconcile(&app.test_db);
    assert_eq!(summary["counts"]["internal_only"], 1, "{summary}");
    let preparer = app.signed_in(Role::FinancePreparer).await;
    let id = item(&app, &preparer, "internal_only").await["id"]
        .as_i64()
        .unwrap();
    let (_, r) = act(&app, &preparer, &[id], "retry", "").await;
    assert_eq!(r[0]["ok"], true, "{r}");

    let worker = OutboxWorker::new(
        app.db.clone(),
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
        },
        "test-worker".into(),
        Arc::default(),
    );
    let deadline = Instant::now() + Duration::from_secs(15);
    let order = loop {
        worker.run_once().await.unwrap();
        let order = app::storage::orders::find_by_key(&app.db, "import", "k-lost")
            .await
            .unwrap()
            .unwrap();
        if order.vendor_order_id.is_some() || Instant::now() > deadline {
            break order;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    assert!(order.vendor_order_id.is_some(), "never placed: {order:?}");
    assert_eq!(order.vendor_key, "k-lost");
    assert_eq!(sim.stats().orders, 1);
    let events = app::storage::orders::events(&app.db, &order.id)
        .await
        .unwrap();
    assert!(
        events.iter().any(|e| e.kind == "retry_requested"),
        "{events:?}"
    );
}
