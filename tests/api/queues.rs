//! The discrepancy queues through their server functions: filters, pages, roles, and resolving
//! with a reason exactly once.

use app::domain::Role;
use leptos::server_fn::ServerFn;
use serde_json::{json, Value};

use crate::helpers::{TestApp, TestDb};
use crate::on_both_backends;
use crate::reconciliation::seed_classes;

on_both_backends!(
    queues_filter_and_resolve_by_role,
    orders_are_found_by_any_id_with_their_history,
    every_import_is_logged,
    the_overview_ties_to_the_stored_runs,
);

fn query(class: &str, state: &str) -> Value {
    json!({"filter": {"vendor": "acme", "class": class, "state": state, "from": "2026-12-01", "to": "2026-12-01", "page": 0}})
}

async fn queues_filter_and_resolve_by_role(db: TestDb) {
    use app::server::discrepancies::{ListDiscrepancies, ResolveDiscrepancy};
    seed_classes(&db).await;
    let out = db.cli(&["reconcile", "--vendor", "acme", "--date", "2026-12-01"]);
    assert!(out.status.success());
    let app = TestApp::spawn(db).await;
    let support = app.signed_in(Role::Support).await;
    let preparer = app.signed_in(Role::FinancePreparer).await;
    let admin = app.signed_in(Role::Admin).await;

    // Support sees the queue (read-only); admins do not work queues.
    let (status, all) = app
        .call_json(ListDiscrepancies::PATH, &support, query("", "open"))
        .await;
    assert_eq!(status, 200, "{all}");
    assert_eq!(all["items"].as_array().unwrap().len(), 7);
    assert_eq!(all["has_more"], false);
    let (status, _) = app
        .call_json(ListDiscrepancies::PATH, &admin, query("", "open"))
        .await;
    assert_eq!(status, 403);

    // Filters: one class; both sides shown, the differing field named.
    let (_, amount) = app
        .call_json(
            ListDiscrepancies::PATH,
            &support,
            query("amount_mismatch", "open"),
        )
        .await;
    let item = &amount["items"][0];
    assert_eq!(amount["items"].as_array().unwrap().len(), 1);
    assert_eq!(
        (
            item["internal_amount"].as_str(),
            item["vendor_amount"].as_str()
        ),
        (Some("25.00"), Some("25.01"))
    );
    assert_eq!(item["differs"], json!(["amount"]));
    let (status, bad) = app
        .call_json(ListDiscrepancies::PATH, &support, query("matched", "open"))
        .await;
    assert_eq!(status, 400, "{bad}");
    let (status, bad) = app.call_json(
        ListDiscrepancies::PATH,
        &support,
        json!({"filter": {"vendor": "acme", "class": "", "state": "open", "from": "yesterday", "to": "", "page": 0}}),
    )
    .await;
    assert_eq!(status, 400);
    assert!(bad.to_string().contains("from"), "{bad}");
    let (_, later) = app.call_json(ListDiscrepancies::PATH, &support, json!({"filter": {"vendor": "acme", "class": "", "state": "open", "from": "2026-12-02", "to": "", "page": 0}})).await;
    assert_eq!(later["items"].as_array().unwrap().len(), 0);

    // Resolving: finance only, with a reason, once.
    let id = item["id"].as_i64().unwrap();
    let (status, _) = app
        .call_json(
            ResolveDiscrepancy::PATH,
            &support,
            json!({"id": id, "how": "x"}),
        )
        .await;
    assert_eq!(status, 403);
    let (status, _) = app
        .call_json(
            ResolveDiscrepancy::PATH,
            &preparer,
            json!({"id": id, "how": "  "}),
        )
        .await;
    assert_eq!(status, 400);
    let (status, done) = app
        .call_json(
            ResolveDiscrepancy::PATH,
            &preparer,
            json!({"id": id, "how": "credit note CN-7 <b>expected</b>"}),
        )
        .await;
    assert_eq!(status, 200, "{done}");
    assert_eq!(done["state"], "resolved");
    assert!(
        done["resolved_by"]
            .as_str()
            .unwrap()
            .starts_with("finance_preparer"),
        "{done}"
    );
    let (status, again) = app
        .call_json(
            ResolveDiscrepancy::PATH,
            &preparer,
            json!({"id": id, "how": "again"}),
        )
        .await;
    assert_eq!(status, 409, "{again}");
    let (status, _) = app
        .call_json(
            ResolveDiscrepancy::PATH,
            &preparer,
            json!({"id": 999_999, "how": "x"}),
        )
        .await;
    assert_eq!(status, 404);
    let (_, open) = app
        .call_json(ListDiscrepancies::PATH, &support, query("", "open"))
        .await;
    assert_eq!(open["items"].as_array().unwrap().len(), 6);
    let (_, resolved) = app
        .call_json(ListDiscrepancies::PATH, &support, query("", "resolved"))
        .await;
    assert_eq!(
        resolved["items"][0]["resolution"],
        "credit note CN-7 <b>expected</b>"
    );
    // The resolution is audited in the same transaction.
    let audited: i64 = app::on_db!(&app.db, p => sqlx::query_scalar(
        "SELECT COUNT(*) FROM audit_log WHERE action = 'discrepancy_resolved'").fetch_one(p).await)
    .unwrap();
    assert_eq!(audited, 1);

    // The page renders the queue server-side, vendor text escaped.
    let html = app
        .get_with("/discrepancies", &preparer)
        .await
        .text()
        .await
        .unwrap();
    assert!(html.contains("<h1>Discrepancies</h1>"), "{html}");
}

async fn orders_are_found_by_any_id_with_their_history(db: TestDb) {
    use app::server::lookup::LookupOrder;
    let byref = seed_classes(&db).await;
    assert!(db
        .cli(&["reconcile", "--vendor", "acme", "--date", "2026-12-01"])
        .status
        .success());
    let app = TestApp::spawn(db).await;
    let support = app.signed_in(Role::Support).await;
    let find = |q: &str| json!({ "query": q });

    // By idempotency key: one order, with its history from creation to reconciliation.
    let (status, found) = app
        .call_json(LookupOrder::PATH, &support, find("k-amount"))
        .await;
    assert_eq!(status, 200, "{found}");
    assert_eq!(found["orders"].as_array().unwrap().len(), 1);
    let order_id = found["orders"][0]["id"].as_str().unwrap().to_string();
    let what: Vec<&str> = found["timeline"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["what"].as_str().unwrap())
        .collect();
    assert_eq!(what.first(), Some(&"created"), "{what:?}");
    assert!(what.contains(&"vendor record (file)"), "{what:?}");
    assert!(
        what.contains(&"reconciliation: amount mismatch"),
        "{what:?}"
    );
    // By our order id, by the vendor's order id, by a reference-only record.
    for q in [order_id.as_str(), "V2"] {
        let (_, again) = app.call_json(LookupOrder::PATH, &support, find(q)).await;
        assert_eq!(again["orders"][0]["id"], order_id.as_str(), "{q}");
    }
    let (_, by_ref) = app
        .call_json(LookupOrder::PATH, &support, find("V10"))
        .await;
    assert_eq!(by_ref["orders"][0]["id"], byref.as_str());
    // By customer id: many orders, no single timeline.
    let (_, many) = app.call_json(LookupOrder::PATH, &support, find("c1")).await;
    assert_eq!(many["orders"].as_array().unwrap().len(), 12);
    assert_eq!(many["timeline"].as_array().unwrap().len(), 0);
    // Nothing, and nonsense.
    let (_, none) = app
        .call_json(LookupOrder::PATH, &support, find("no-such-id"))
        .await;
    assert_eq!(none["orders"].as_array().unwrap().len(), 0);
    let (status, _) = app.call_json(LookupOrder::PATH, &support, find("  ")).await;
    assert_eq!(status, 400);
    let html = app
        .get_with("/orders", &support)
        .await
        .text()
        .await
        .unwrap();
    assert!(
        html.contains("<label for=\"order-search\">Search</label>"),
        "{html}"
    );
}

async fn every_import_is_logged(db: TestDb) {
    use app::server::imports::ListImports;
    seed_classes(&db).await;
    let app = TestApp::spawn(db).await;
    let preparer = app.signed_in(Role::FinancePreparer).await;
    let (status, list) = app.call_json(ListImports::PATH, &preparer, json!({})).await;
    assert_eq!(status, 200, "{list}");
    let list = list.as_array().unwrap().clone();
    // Newest first: the vendor file, then the orders file.
    let kinds: Vec<&str> = list.iter().map(|i| i["kind"].as_str().unwrap()).collect();
    assert_eq!(kinds, ["vendor file", "orders"]);
    assert_eq!(
        (list[1]["rows"].as_i64(), list[1]["inserted"].as_i64()),
        (Some(12), Some(12))
    );
    assert_eq!(list[1]["file_name"], "orders.csv");
    assert_eq!(list[0]["rows"], 11);
    assert!(list[0]["actor"].as_str().unwrap().starts_with("cli:"));
    assert_eq!(list[0]["sha256"].as_str().unwrap().len(), 64);
    let html = app
        .get_with("/imports", &preparer)
        .await
        .text()
        .await
        .unwrap();
    assert!(html.contains("<h1>Imports</h1>"), "{html}");
}

async fn the_overview_ties_to_the_stored_runs(db: TestDb) {
    use app::server::overview::ReconciliationOverview;
    seed_classes(&db).await;
    for day in ["2026-12-01", "2026-12-02"] {
        assert!(db
            .cli(&["reconcile", "--vendor", "acme", "--date", day])
            .status
            .success());
    }
    // A rerun replaces nothing in the overview: the latest run per day counts once.
    assert!(db
        .cli(&["reconcile", "--vendor", "acme", "--date", "2026-12-01"])
        .status
        .success());
    let app = TestApp::spawn(db).await;
    let support = app.signed_in(Role::Support).await;
    let (status, list) = app
        .call_json(ReconciliationOverview::PATH, &support, json!({}))
        .await;
    assert_eq!(status, 200, "{list}");
    let days = &list[0]["days"];
    assert_eq!(list[0]["vendor"], "acme");
    assert_eq!(days.as_array().unwrap().len(), 2);
    assert_eq!(days[0]["date"], "2026-12-02");
    let first = &days[1];
    assert_eq!(
        (first["matched"].as_u64(), first["outcomes"].as_u64()),
        (Some(4), Some(11))
    );
    assert_eq!(first["discrepancies"], 7);
    assert_eq!(first["match_basis_points"], 3636);
    assert_eq!(first["variances"], json!(["EUR 30.00", "USD -4.99"]));
    // No poller pass and no webhook yet: said plainly, not invented.
    assert_eq!(list[0]["polled_to"], Value::Null);
    assert_eq!(list[0]["last_webhook_at"], Value::Null);
    let html = app.get_with("/", &support).await.text().await.unwrap();
    assert!(html.contains("Reconciliation: acme"), "{html}");
    assert!(html.contains("<polyline"), "{html}");
    assert!(
        html.contains("Poller: not run yet. Last webhook: none yet."),
        "{html}"
    );
}
