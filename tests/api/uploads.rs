//! Files uploaded from the dashboard (`POST /upload/vendor-file`, `/upload/orders-file`): the
//! same importers as the CLI and API, all or nothing with bad lines named, finance only, and
//! refused when another site sends them.

use app::domain::Role;
use serde_json::Value;

use crate::helpers::{TestApp, TestDb};
use crate::on_both_backends;

on_both_backends!(
    uploaded_files_are_imported_and_logged,
    rejected_uploads_store_nothing_and_name_their_lines,
    uploads_are_for_finance_from_this_site_only,
);

const VENDOR_FILE: &str = "vendor_order_id,idempotency_key,amount,currency,status,created_at\n\
    V1,k1,50.00,USD,fulfilled,2026-12-01T10:00:00Z\n\
    V2,k2,5000,JPY,completed,2026-12-01T11:00:00Z\n\
    V3,k3,1.234,KWD,pending,2026-12-01T12:00:00Z\n";

const ORDERS_FILE: &str =
    "idempotency_key,customer_id,brand_id,amount,currency,status,created_at\n\
    k1,c1,amazon-us,50.00,USD,fulfilled,2026-12-01T10:00:00Z\n\
    k2,c2,amazon-us,5000,JPY,fulfilled,2026-12-01T11:00:00Z\n";

/// Posts `body` as the Imports page does: same origin, `X-Requested-With`, the session cookie.
async fn upload(app: &TestApp, path: &str, cookie: Option<&str>, body: &str) -> (u16, Value) {
    let mut request = app
        .client
        .post(app.url(path))
        .header("origin", format!("http://{}", app.addr))
        .header("sec-fetch-site", "same-origin")
        .header("x-requested-with", "giftrecon")
        .header("content-type", "application/octet-stream")
        .body(body.to_string());
    if let Some(cookie) = cookie {
        request = request.header("cookie", cookie);
    }
    let response = request.send().await.expect("request");
    let status = response.status().as_u16();
    let text = response.text().await.unwrap();
    (
        status,
        serde_json::from_str(&text).unwrap_or(Value::String(text)),
    )
}

async fn app_with_vendor(db: TestDb) -> TestApp {
    let app = TestApp::spawn(db).await;
    app.add_vendor("acme", "http://127.0.0.1:9", &["amazon-us"])
        .await;
    app
}

async fn uploaded_files_are_imported_and_logged(db: TestDb) {
    let app = app_with_vendor(db).await;
    let preparer = app.signed_in(Role::FinancePreparer).await;

    let (status, outcome) = upload(
        &app,
        "/upload/vendor-file?vendor=acme&name=day%201.csv",
        Some(&preparer),
        VENDOR_FILE,
    )
    .await;
    assert_eq!(status, 201, "{outcome}");
    assert_eq!(outcome["imported"]["rows"], 3);
    assert_eq!(outcome["imported"]["inserted"], 3);
    assert_eq!(outcome["imported"]["file_name"], "day 1.csv");
    assert_eq!(outcome["rejected"].as_array().unwrap().len(), 0);
    assert!(
        outcome["message"].as_str().unwrap().contains("3 new"),
        "{outcome}"
    );
    assert_eq!(app.count("vendor_records").await, 3);
    let amounts = app::storage::vendor_records::list(&app.db, "acme")
        .await
        .unwrap();
    let mut amounts: Vec<String> = amounts.iter().map(|r| r.amount.amount_string()).collect();
    amounts.sort();
    assert_eq!(amounts, ["1.234", "50.00", "5000"]);

    // The same file again changes nothing, and says so.
    let (status, again) = upload(
        &app,
        "/upload/vendor-file?vendor=acme&name=day%201.csv",
        Some(&preparer),
        VENDOR_FILE,
    )
    .await;
    assert_eq!(status, 201, "{again}");
    assert_eq!(again["imported"]["unchanged"], 3);

    // An orders file, through the orders importer.
    let (status, orders) = upload(
        &app,
        "/upload/orders-file?vendor=acme&name=orders.csv",
        Some(&preparer),
        ORDERS_FILE,
    )
    .await;
    assert_eq!(status, 201, "{orders}");
    assert_eq!(orders["imported"]["rows"], 2);
    assert_eq!(orders["imported"]["inserted"], 2);
    assert_eq!(app.count("orders").await, 2);

    // The import log (the page's table) has all three, by the user who uploaded them.
    let log = app::storage::imports::recent(&app.db, 10).await.unwrap();
    let seen: Vec<(&str, &str, &str, i64)> = log
        .iter()
        .map(|r| {
            (
                r.kind.as_str(),
                r.file_name.as_str(),
                r.actor.as_str(),
                r.rows,
            )
        })
        .collect();
    assert_eq!(
        seen,
        [
            ("orders", "orders.csv", "finance_preparer", 2),
            ("vendor_file", "day 1.csv", "finance_preparer", 3),
            ("vendor_file", "day 1.csv", "finance_preparer", 3),
        ]
    );
}

async fn rejected_uploads_store_nothing_and_name_their_lines(db: TestDb) {
    let app = app_with_vendor(db).await;
    let approver = app.signed_in(Role::FinanceApprover).await;

    let bad_vendor = "vendor_order_id,idempotency_key,amount,currency,status,created_at\n\
        V1,k1,50.00,USD,fulfilled,2026-12-01T10:00:00Z\n\
        V2,k2,12.505,USD,fulfilled,2026-12-01T11:00:00Z\n\
        V3,k3,10.00,USD,fulfilled,not a time\n";
    let (status, outcome) = upload(
        &app,
        "/upload/vendor-file?vendor=acme&name=bad.csv",
        Some(&approver),
        bad_vendor,
    )
    .await;
    assert_eq!(status, 422, "{outcome}");
    assert!(outcome["imported"].is_null());
    let lines: Vec<(u64, String)> = outcome["rejected"]
        .as_array()
        .unwrap()
        .iter()
        .map(|l| {
            (
                l["line"].as_u64().unwrap(),
                l["reason"].as_str().unwrap().to_string(),
            )
        })
        .collect();
    assert_eq!(lines.len(), 2, "{outcome}");
    assert_eq!(lines[0].0, 3);
    assert!(lines[0].1.contains("amount"), "{lines:?}");
    assert_eq!(lines[1].0, 4);
    assert!(lines[1].1.contains("created_at"), "{lines:?}");
    assert!(
        outcome["message"]
            .as_str()
            .unwrap()
            .contains("2 invalid row(s), nothing was imported"),
        "{outcome}"
    );

    let bad_orders = "idempotency_key,customer_id,brand_id,amount,currency,status,created_at\n\
        k1,c1,amazon-us,50.00,USD,fulfilled,2026-12-01T10:00:00Z\n\
        k2,c2,amazon-us,50.00,XXX,fulfilled,2026-12-01T10:00:00Z\n";
    let (status, orders) = upload(
        &app,
        "/upload/orders-file?vendor=acme&name=orders.csv",
        Some(&approver),
        bad_orders,
    )
    .await;
    assert_eq!(status, 422, "{orders}");
    assert_eq!(orders["rejected"][0]["line"], 3);
    assert!(
        orders["rejected"][0]["reason"]
            .as_str()
            .unwrap()
            .contains("currency"),
        "{orders}"
    );

    // A file that is not a vendor file at all: refused whole, with why.
    let (status, whole) = upload(
        &app,
        "/upload/vendor-file?vendor=acme&name=notes.csv",
        Some(&approver),
        "hello,world\n1,2\n",
    )
    .await;
    assert_eq!(status, 422, "{whole}");
    assert!(
        whole["message"].as_str().unwrap().contains("notes.csv"),
        "{whole}"
    );

    for table in ["vendor_records", "orders", "imports"] {
        assert_eq!(app.count(table).await, 0, "{table}");
    }

    // Bad parameters are named; an unknown vendor is not found.
    let (status, missing) = upload(
        &app,
        "/upload/vendor-file?vendor=acme",
        Some(&approver),
        VENDOR_FILE,
    )
    .await;
    assert_eq!(status, 400);
    assert!(
        missing["message"].as_str().unwrap().starts_with("name: "),
        "{missing}"
    );
    let (status, format) = upload(
        &app,
        "/upload/vendor-file?vendor=acme&name=a.csv&format=xls",
        Some(&approver),
        VENDOR_FILE,
    )
    .await;
    assert_eq!(status, 400);
    assert!(
        format["message"].as_str().unwrap().starts_with("format: "),
        "{format}"
    );
    let (status, _) = upload(
        &app,
        "/upload/vendor-file?vendor=nobody&name=a.csv",
        Some(&approver),
        VENDOR_FILE,
    )
    .await;
    assert_eq!(status, 404);
    assert_eq!(app.count("vendor_records").await, 0);
}

async fn uploads_are_for_finance_from_this_site_only(db: TestDb) {
    let app = app_with_vendor(db).await;
    let support = app.signed_in(Role::Support).await;
    let admin = app.signed_in(Role::Admin).await;
    let preparer = app.signed_in(Role::FinancePreparer).await;
    let path = "/upload/vendor-file?vendor=acme&name=day.csv";

    for cookie in [&support, &admin] {
        let (status, outcome) = upload(&app, path, Some(cookie), VENDOR_FILE).await;
        assert_eq!(status, 403, "{outcome}");
        assert_eq!(outcome["message"], "your role does not allow this");
    }
    let (status, _) = upload(
        &app,
        "/upload/orders-file?vendor=acme&name=o.csv",
        Some(&support),
        ORDERS_FILE,
    )
    .await;
    assert_eq!(status, 403);
    let (status, _) = upload(&app, path, None, VENDOR_FILE).await;
    assert_eq!(status, 401);
    let denied: i64 = app::on_db!(&app.db, p => sqlx::query_scalar(
        "SELECT COUNT(*) FROM audit_log WHERE action = 'denied' AND subject LIKE 'upload_%'")
        .fetch_one(p).await)
    .unwrap();
    assert_eq!(denied, 3);

    // Another site's page posting the file with the victim's cookie is refused before anything
    // is read: by Sec-Fetch-Site, by Origin, and (a plain form post) without X-Requested-With.
    let forged = |site: &'static str, origin: &'static str, requested_with: bool| {
        let mut request = app
            .client
            .post(app.url(path))
            .header("cookie", &preparer)
            .header("sec-fetch-site", site)
            .header("origin", origin)
            .header("content-type", "text/plain")
            .body(VENDOR_FILE);
        if requested_with {
            request = request.header("x-requested-with", "giftrecon");
        }
        request.send()
    };
    let this_site = Box::leak(format!("http://{}", app.addr).into_boxed_str());
    for (site, origin, requested_with) in [
        ("cross-site", "https://evil.example", true),
        ("same-origin", "https://evil.example", true),
        ("same-site", &*this_site, true),
        ("same-origin", &*this_site, false),
    ] {
        let response = forged(site, origin, requested_with).await.unwrap();
        assert_eq!(response.status(), 403, "{site} {origin} {requested_with}");
    }
    assert_eq!(app.count("vendor_records").await, 0);
    assert_eq!(app.count("imports").await, 0);

    // The same request from this site goes through.
    let response = forged("same-origin", this_site, true).await.unwrap();
    assert_eq!(response.status(), 201);
    assert_eq!(app.count("vendor_records").await, 3);
}
