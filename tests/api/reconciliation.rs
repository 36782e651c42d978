//! Vendor files in, days reconciled, discrepancies kept across runs, reports out — through the
//! CLI and the API, on both databases.

use serde_json::Value;

use crate::helpers::{assert_one_line_error, stderr, stdout, TestApp, TestDb};
use crate::on_both_backends;

on_both_backends!(
    vendor_files_import_exactly_and_idempotently,
    bad_vendor_files_are_refused_whole,
    every_class_lands_where_it_belongs,
    discrepancies_keep_their_lifecycle_across_runs,
    generated_days_reconcile_to_the_expected_classes,
    the_database_counts_agreeing_orders_as_the_classifier_would,
    business_days_follow_the_configured_time_zone,
    vendor_files_and_reports_over_the_api,
    a_closed_day_is_never_rewritten,
    a_vendor_with_no_status_mapping_agrees_on_nothing,
);

fn ok(db: &TestDb, args: &[&str]) -> String {
    let out = db.cli(args);
    assert!(out.status.success(), "{args:?}: {}", stderr(&out));
    stdout(&out)
}

fn write(db: &TestDb, name: &str, text: &str) {
    std::fs::write(db.dir.path().join(name), text).unwrap();
}

async fn scalar(db: &app::storage::Db, sql: &str) -> i64 {
    app::on_db!(db, p => sqlx::query_scalar(sql).fetch_one(p).await).unwrap()
}

const VENDOR_HEADER: &str =
    "vendor_order_id,idempotency_key,reference_id,brand_id,amount,currency,status,created_at,updated_at";

async fn vendor_files_import_exactly_and_idempotently(db: TestDb) {
    ok(&db, &["vendor", "add", "acme"]);
    // A spreadsheet export: byte-order mark, CRLF, columns in another order, an extra column,
    // quoted fields with commas, quotes and a line break, mixed-case statuses, 0/2/3 decimals.
    let text = "\u{feff}Status,Amount,Currency,Vendor_Order_ID,Created_At,Idempotency_Key,Note\r\n\
                Fulfilled,50,USD,V1,2026-12-01T10:00:00Z,k1,\"a, b\"\r\n\
                COMPLETED,50.5,USD,V2,2026-12-01 11:00:00,k2,\"say \"\"hi\"\"\r\nsecond line\"\r\n\
                delivered,5000,JPY,V3,2026-12-01,k3,\r\n\
                pending,1.234,KWD,V4,2026-12-01T00:00:00+03:00,k4,\r\n\
                fulfilled,50.00,USD,V5,2026-12-01T12:00:00Z,k5,\r\n";
    write(&db, "day.csv", text);
    let out = ok(&db, &["import", "vendor", "day.csv", "--vendor", "acme"]);
    assert!(
        out.contains("5 rows: 5 new, 0 updated, 0 unchanged"),
        "{out}"
    );

    let pool = db.connect().await;
    let records = app::storage::vendor_records::list(&pool, "acme")
        .await
        .unwrap();
    let seen: Vec<(String, i64, &str, String)> = records
        .iter()
        .map(|r| {
            (
                r.vendor_order_id.clone(),
                r.amount.minor_units(),
                r.amount.currency().code(),
                r.status.clone(),
            )
        })
        .collect();
    assert_eq!(
        seen,
        [
            ("V1".into(), 5000, "USD", "Fulfilled".into()),
            ("V2".into(), 5050, "USD", "COMPLETED".into()),
            ("V3".into(), 5000, "JPY", "delivered".into()),
            ("V4".into(), 1234, "KWD", "pending".into()),
            ("V5".into(), 5000, "USD", "fulfilled".into()),
        ]
    );
    assert_eq!(
        records[3].created_at.unwrap().to_rfc3339(),
        "2026-11-30T21:00:00+00:00"
    );

    // The same file again changes nothing.
    let again = ok(&db, &["import", "vendor", "day.csv", "--vendor", "acme"]);
    assert!(again.contains("0 new, 0 updated, 5 unchanged"), "{again}");
    assert_eq!(
        scalar(&pool, "SELECT COUNT(*) FROM vendor_record_history").await,
        0
    );
    let after = app::storage::vendor_records::list(&pool, "acme")
        .await
        .unwrap();
    assert_eq!(after, records);

    // A later file with one changed row updates it in place and keeps its history.
    let json = r#"[
        {"vendor_order_id": "V1", "idempotency_key": "k1", "amount": 50, "currency": "USD",
         "status": "refunded", "created_at": "2026-12-01T10:00:00Z", "updated_at": "2026-12-02T09:00:00Z"},
        {"vendor_order_id": "V6", "idempotency_key": "k6", "amount": "12.00", "currency": "EUR",
         "status": "fulfilled", "created_at": "2026-12-01T13:00:00Z"}
    ]"#;
    write(&db, "later.json", json);
    let out = ok(&db, &["import", "vendor", "later.json", "--vendor", "acme"]);
    assert!(
        out.contains("2 rows: 1 new, 1 updated, 0 unchanged"),
        "{out}"
    );
    let v1 = app::storage::vendor_records::get(&pool, "acme", "V1")
        .await
        .unwrap()
        .unwrap();
    assert_eq!(v1.status, "refunded");
    let history: Vec<(String, String)> = app::on_db!(&pool, p => sqlx::query_as(
        "SELECT vendor_order_id, status FROM vendor_record_history ORDER BY id").fetch_all(p).await)
    .unwrap();
    assert_eq!(history, [("V1".to_string(), "Fulfilled".to_string())]);

    // An older version of a record (by updated_at) does not overwrite a newer one.
    let stale = format!(
        "{VENDOR_HEADER}\nV1,k1,,,50,USD,fulfilled,2026-12-01T10:00:00Z,2026-12-01T11:00:00Z\n"
    );
    write(&db, "stale.csv", &stale);
    let out = ok(&db, &["import", "vendor", "stale.csv", "--vendor", "acme"]);
    assert!(out.contains("0 new, 0 updated, 1 unchanged"), "{out}");

    // Vendors whose files name columns differently: a stored mapping, or one for a single file.
    ok(
        &db,
        &[
            "vendor",
            "set",
            "acme",
            "--file-column",
            "vendor_order_id=Order ID",
            "--file-column",
            "amount=Face Value",
            "--file-column",
            "created_at=Date",
        ],
    );
    write(
        &db,
        "renamed.csv",
        "Order ID,Face Value,Currency,Status,Date\nR-1,10.00,EUR,fulfilled,2026-12-01\n",
    );
    let out = ok(
        &db,
        &["import", "vendor", "renamed.csv", "--vendor", "acme"],
    );
    assert!(out.contains("1 new"), "{out}");
    let bad_map = db.cli(&["vendor", "set", "acme", "--file-column", "price=Face Value"]);
    assert!(assert_one_line_error(&bad_map).contains("price"));
    assert_eq!(
        scalar(
            &pool,
            "SELECT COUNT(*) FROM imports WHERE kind = 'vendor_file'"
        )
        .await,
        5
    );
}

async fn bad_vendor_files_are_refused_whole(db: TestDb) {
    ok(&db, &["vendor", "add", "acme"]);
    let text = format!(
        "{VENDOR_HEADER}\n\
         V1,k1,,,50.00,USD,fulfilled,2026-12-01T10:00:00Z,\n\
         V2,k2,,,12.505,USD,fulfilled,2026-12-01T10:00:00Z,\n\
         V3,k3,,,5,XYZ,fulfilled,2026-12-01T10:00:00Z,\n\
         ,k4,,,5,USD,fulfilled,2026-12-01T10:00:00Z,\n\
         V5,k5,,,5,USD,fulfilled,yesterday,\n\
         V6,k6,,,1.5,JPY,fulfilled,2026-12-01T10:00:00Z,\n\
         V1,k1,,,60.00,USD,fulfilled,2026-12-01T10:00:00Z,\n"
    );
    write(&db, "bad.csv", &text);
    let out = db.cli(&["import", "vendor", "bad.csv", "--vendor", "acme"]);
    let err = assert_one_line_error(&out);
    assert!(
        err.contains("6 invalid row(s), nothing was imported"),
        "{err}"
    );
    for needle in [
        "line 3: amount",
        "line 4: currency",
        "line 5: vendor_order_id: is missing",
        "line 6: created_at",
        "line 7: amount",
        "line 8: vendor_order_id: \"V1\" is also on line 2",
    ] {
        assert!(err.contains(needle), "{needle} not in {err}");
    }
    // Many bad lines: the first 100 are named, the rest counted.
    let mut many = String::from(VENDOR_HEADER);
    many.push('\n');
    for i in 0..150 {
        many.push_str(&format!(
            "V{i},k{i},,,oops,USD,fulfilled,2026-12-01T10:00:00Z,\n"
        ));
    }
    write(&db, "many.csv", &many);
    let err = assert_one_line_error(&db.cli(&["import", "vendor", "many.csv", "--vendor", "acme"]));
    assert!(
        err.contains("150 invalid row(s)") && err.contains("and 50 more"),
        "{err}"
    );
    assert!(
        err.contains("line 101:") && !err.contains("line 102:"),
        "{err}"
    );
    // Not a file at all, an unknown vendor, a missing column: one clear line each.
    let err = assert_one_line_error(&db.cli(&["import", "vendor", "nope.csv", "--vendor", "acme"]));
    assert!(
        err.contains("nope.csv") && err.contains("cannot open"),
        "{err}"
    );
    write(
        &db,
        "ok.csv",
        &format!("{VENDOR_HEADER}\nV1,k1,,,5,USD,fulfilled,2026-12-01,\n"),
    );
    let err = assert_one_line_error(&db.cli(&["import", "vendor", "ok.csv", "--vendor", "ghost"]));
    assert!(err.contains("ghost"), "{err}");
    write(&db, "cols.csv", "vendor_order_id,amount\nV1,5\n");
    let err = assert_one_line_error(&db.cli(&["import", "vendor", "cols.csv", "--vendor", "acme"]));
    assert!(err.contains("currency") && err.contains("status"), "{err}");

    let pool = db.connect().await;
    assert_eq!(
        scalar(&pool, "SELECT COUNT(*) FROM vendor_records").await,
        0
    );
    assert_eq!(scalar(&pool, "SELECT COUNT(*) FROM imports").await, 0);
}

/// Orders (placed elsewhere, with their status) and the vendor's file for one day, with one
/// case of every class. Returns the id of the order the vendor echoes by reference only.
pub async fn seed_classes(db: &TestDb) -> String {
    ok(db, &["vendor", "add", "acme"]);
    let orders = "idempotency_key,customer_id,brand_id,amount,currency,status,created_at\n\
        k-match,c1,amazon-us,50.00,USD,fulfilled,2026-12-01T10:00:00Z\n\
        k-amount,c1,amazon-us,25.00,USD,fulfilled,2026-12-01T10:01:00Z\n\
        k-currency,c1,amazon-us,30.00,USD,fulfilled,2026-12-01T10:02:00Z\n\
        k-status,c1,amazon-us,10.00,USD,pending,2026-12-01T10:03:00Z\n\
        k-unmapped,c1,amazon-us,20.00,USD,fulfilled,2026-12-01T10:04:00Z\n\
        k-dup,c1,amazon-us,15.00,USD,fulfilled,2026-12-01T10:05:00Z\n\
        k-internal,c1,amazon-us,40.00,USD,fulfilled,2026-12-01T10:06:00Z\n\
        k-failed,c1,amazon-us,5.00,USD,failed,2026-12-01T10:07:00Z\n\
        k-jpy,c1,amazon-us,5000,JPY,fulfilled,2026-12-01T10:08:00Z\n\
        k-kwd,c1,amazon-us,1.234,KWD,fulfilled,2026-12-01T10:09:00Z\n\
        k-byref,c1,amazon-us,12.00,USD,fulfilled,2026-12-01T10:10:00Z\n\
        k-other-day,c1,amazon-us,99.00,USD,fulfilled,2026-12-02T10:00:00Z\n";
    write(db, "orders.csv", orders);
    ok(db, &["import", "orders", "orders.csv", "--vendor", "acme"]);
    let pool = db.connect().await;
    let byref: String = app::on_db!(&pool, p => sqlx::query_scalar(
        "SELECT id FROM orders WHERE idempotency_key = 'k-byref'").fetch_one(p).await)
    .unwrap();
    let vendor = format!(
        "{VENDOR_HEADER}\n\
         V1,k-match,,,50,USD,Fulfilled,2026-12-01T10:00:05Z,\n\
         V2,k-amount,,,25.01,USD,fulfilled,2026-12-01T10:01:05Z,\n\
         V3,k-currency,,,30.00,EUR,fulfilled,2026-12-01T10:02:05Z,\n\
         V4,k-status,,,10,USD,FULFILLED,2026-12-01T10:03:05Z,\n\
         V5,k-unmapped,,,20,USD,on hold,2026-12-01T10:04:05Z,\n\
         V6,k-dup,,,15,USD,fulfilled,2026-12-01T10:05:05Z,\n\
         V6b,k-dup,,,15,USD,fulfilled,2026-12-01T10:05:09Z,\n\
         V7,k-ghost,,,60,USD,fulfilled,2026-12-01T10:06:05Z,\n\
         V8,k-jpy,,,5000,JPY,completed,2026-12-01T10:08:05Z,\n\
         V9,k-kwd,,,1.234,KWD,delivered,2026-12-01T10:09:05Z,\n\
         V10,,{byref},,12,USD,fulfilled,2026-12-01T10:10:05Z,\n"
    );
    write(db, "vendor.csv", &vendor);
    ok(db, &["import", "vendor", "vendor.csv", "--vendor", "acme"]);
    byref
}

/// With no status mapped, no vendor status maps to a GL state: the database's count of agreeing
/// orders (its status CASE has no branch then) must count none, and every linked record whose
/// currency and amount agree is an unmapped status.
async fn a_vendor_with_no_status_mapping_agrees_on_nothing(db: TestDb) {
    seed_classes(&db).await;
    let pool = db.connect().await;
    app::on_db!(&pool, p => sqlx::query("UPDATE vendors SET status_mapping = '{}'")
        .execute(p).await.map(|_| ()))
    .unwrap();
    ok(
        &db,
        &["reconcile", "--vendor", "acme", "--date", "2026-12-01"],
    );
    let counts = &summary(&db)["counts"];
    let expected = [
        ("matched", 0),
        ("amount_mismatch", 1),
        ("currency_mismatch", 1),
        ("status_mismatch", 0),
        ("unmapped_status", 6),
        ("vendor_only", 1),
        ("internal_only", 1),
        ("duplicate", 1),
    ];
    for (class, n) in expected {
        assert_eq!(counts[class].as_u64(), Some(n), "{class}: {counts}");
    }
}

fn summary(db: &TestDb) -> Value {
    let out = ok(
        db,
        &[
            "report",
            "summary",
            "--vendor",
            "acme",
            "--date",
            "2026-12-01",
            "--format",
            "json",
        ],
    );
    serde_json::from_str(&out).unwrap()
}

async fn every_class_lands_where_it_belongs(db: TestDb) {
    let byref = seed_classes(&db).await;
    let before = db.cli(&[
        "report",
        "summary",
        "--vendor",
        "acme",
        "--date",
        "2026-12-01",
    ]);
    assert!(assert_one_line_error(&before)
        .contains("giftrecon reconcile --vendor acme --date 2026-12-01"));

    let out = ok(
        &db,
        &["reconcile", "--vendor", "acme", "--date", "2026-12-01"],
    );
    assert!(
        out.contains("11 orders, 11 vendor records; 4 matched, 7 discrepancies (7 new"),
        "{out}"
    );
    let raw = ok(
        &db,
        &[
            "report",
            "summary",
            "--vendor",
            "acme",
            "--date",
            "2026-12-01",
            "--format",
            "json",
        ],
    );
    // Exactly the documented shape, counts in the documented order.
    assert!(
        raw.starts_with(r#"{"vendor":"acme","date":"2026-12-01","#),
        "{raw}"
    );
    assert!(
        raw.contains(r#""counts":{"matched":4,"amount_mismatch":1,"currency_mismatch":1,"status_mismatch":1,"unmapped_status":1,"vendor_only":1,"internal_only":1,"duplicate":1}"#),
        "{raw}"
    );
    let s = summary(&db);
    let totals = &s["totals"];
    assert_eq!(
        totals["USD"],
        serde_json::json!({"internal_count": 7, "internal_amount": "192.00",
            "vendor_count": 7, "vendor_amount": "187.01", "variance": "-4.99"})
    );
    assert_eq!(totals["EUR"]["internal_amount"], "0.00");
    assert_eq!(totals["EUR"]["vendor_amount"], "30.00");
    assert_eq!(totals["JPY"]["vendor_amount"], "5000");
    assert_eq!(totals["KWD"]["internal_amount"], "1.234");

    let out = ok(
        &db,
        &[
            "report",
            "discrepancies",
            "--vendor",
            "acme",
            "--date",
            "2026-12-01",
            "--format",
            "json",
        ],
    );
    let items: Vec<Value> = serde_json::from_str(&out).unwrap();
    let by_class =
        |class: &str| -> Vec<&Value> { items.iter().filter(|i| i["class"] == class).collect() };
    assert_eq!(by_class("amount_mismatch")[0]["key"], "k-amount");
    assert_eq!(by_class("amount_mismatch")[0]["vendor_amount"], "25.01");
    assert_eq!(by_class("amount_mismatch")[0]["internal_amount"], "25.00");
    assert_eq!(by_class("currency_mismatch")[0]["vendor_currency"], "EUR");
    assert_eq!(by_class("status_mismatch")[0]["vendor_status"], "FULFILLED");
    assert_eq!(
        by_class("status_mismatch")[0]["internal_gl_state"],
        "pending"
    );
    assert_eq!(by_class("unmapped_status")[0]["vendor_status"], "on hold");
    assert_eq!(by_class("duplicate")[0]["vendor_order_ids"], "V6,V6b");
    assert_eq!(by_class("vendor_only")[0]["key"], "k-ghost");
    assert_eq!(by_class("vendor_only")[0]["order_id"], Value::Null);
    assert_eq!(by_class("internal_only")[0]["key"], "k-internal");
    assert!(items.iter().all(|i| i["state"] == "open"));
    assert!(!items
        .iter()
        .any(|i| i["key"] == "k-failed" || i["key"] == "k-match"));
    // The record that only echoed our order id was linked to it.
    let pool = db.connect().await;
    let v10 = app::storage::vendor_records::get(&pool, "acme", "V10")
        .await
        .unwrap()
        .unwrap();
    assert_eq!(v10.order_id.as_deref(), Some(byref.as_str()));

    // CSV reports: one row per class and currency, and control totals.
    let csv = ok(
        &db,
        &[
            "report",
            "summary",
            "--vendor",
            "acme",
            "--date",
            "2026-12-01",
            "--format",
            "csv",
        ],
    );
    assert!(
        csv.contains("acme,2026-12-01,class,matched,4,,,,,\n"),
        "{csv}"
    );
    assert!(
        csv.contains("acme,2026-12-01,currency,USD,,7,192.00,7,187.01,-4.99\n"),
        "{csv}"
    );
    assert!(
        csv.contains("acme,2026-12-01,control,outcomes,11,11,,11,,\n"),
        "{csv}"
    );
    let listed = ok(
        &db,
        &[
            "report",
            "discrepancies",
            "--vendor",
            "acme",
            "--date",
            "2026-12-01",
        ],
    );
    assert_eq!(listed.lines().count(), 1 + 7 + 1, "{listed}");
    assert!(
        listed.trim_end().ends_with(
            "# control: 7 discrepancies; vendor EUR 30.00; internal USD 140.00; vendor USD 130.01"
        ),
        "{listed}"
    );

    // The reports read the stored run: the same bytes every time.
    let again = ok(
        &db,
        &[
            "report",
            "summary",
            "--vendor",
            "acme",
            "--date",
            "2026-12-01",
            "--format",
            "csv",
        ],
    );
    assert_eq!(again, csv);
    // The next day holds only its own order.
    ok(
        &db,
        &["reconcile", "--vendor", "acme", "--date", "2026-12-02"],
    );
    let next: Value = serde_json::from_str(&ok(
        &db,
        &[
            "report",
            "summary",
            "--vendor",
            "acme",
            "--date",
            "2026-12-02",
        ],
    ))
    .unwrap();
    assert_eq!(next["counts"]["internal_only"], 1);
    assert_eq!(next["orders"], 1);
}

async fn discrepancies_keep_their_lifecycle_across_runs(db: TestDb) {
    seed_classes(&db).await;
    ok(
        &db,
        &["reconcile", "--vendor", "acme", "--date", "2026-12-01"],
    );
    let list = |db: &TestDb| -> Vec<Value> {
        serde_json::from_str(&ok(
            db,
            &[
                "report",
                "discrepancies",
                "--vendor",
                "acme",
                "--date",
                "2026-12-01",
                "--format",
                "json",
            ],
        ))
        .unwrap()
    };
    let amount = list(&db)
        .into_iter()
        .find(|i| i["class"] == "amount_mismatch")
        .unwrap();
    let id = amount["id"].as_i64().unwrap().to_string();
    let out = ok(
        &db,
        &[
            "discrepancy",
            "resolve",
            &id,
            "--how",
            "vendor credit note CN-7 expected",
        ],
    );
    assert!(out.contains("resolved"), "{out}");
    // Resolving twice is refused: a double click does one thing.
    let twice = db.cli(&["discrepancy", "resolve", &id, "--how", "again"]);
    assert!(assert_one_line_error(&twice).contains("not open"));

    // A rerun with the same data leaves it resolved.
    let out = ok(
        &db,
        &["reconcile", "--vendor", "acme", "--date", "2026-12-01"],
    );
    assert!(
        out.contains("(0 new, 0 reopened, 7 unchanged, 0 cleared)"),
        "{out}"
    );
    let item = list(&db)
        .into_iter()
        .find(|i| i["id"].as_i64() == amount["id"].as_i64())
        .unwrap();
    assert_eq!(item["state"], "resolved");
    assert_eq!(item["resolution"], "vendor credit note CN-7 expected");
    assert!(item["resolved_by"].as_str().unwrap().starts_with("cli:"));

    // The vendor's data changes: it opens again, with the new values.
    let changed =
        format!("{VENDOR_HEADER}\nV2,k-amount,,,25.02,USD,fulfilled,2026-12-01T10:01:05Z,\n");
    write(&db, "changed.csv", &changed);
    ok(
        &db,
        &["import", "vendor", "changed.csv", "--vendor", "acme"],
    );
    let out = ok(
        &db,
        &["reconcile", "--vendor", "acme", "--date", "2026-12-01"],
    );
    assert!(
        out.contains("(0 new, 1 reopened, 6 unchanged, 0 cleared)"),
        "{out}"
    );
    let item = list(&db)
        .into_iter()
        .find(|i| i["id"].as_i64() == amount["id"].as_i64())
        .unwrap();
    assert_eq!(
        (item["state"].as_str(), item["vendor_amount"].as_str()),
        (Some("open"), Some("25.02"))
    );

    // The vendor corrects it: the item clears itself; the day has one more match.
    let fixed =
        format!("{VENDOR_HEADER}\nV2,k-amount,,,25.00,USD,fulfilled,2026-12-01T10:01:05Z,\n");
    write(&db, "fixed.csv", &fixed);
    ok(&db, &["import", "vendor", "fixed.csv", "--vendor", "acme"]);
    let out = ok(
        &db,
        &["reconcile", "--vendor", "acme", "--date", "2026-12-01"],
    );
    assert!(
        out.contains("5 matched, 6 discrepancies (0 new, 0 reopened, 6 unchanged, 1 cleared)"),
        "{out}"
    );
    let item = list(&db)
        .into_iter()
        .find(|i| i["id"].as_i64() == amount["id"].as_i64())
        .unwrap();
    assert_eq!(item["state"], "cleared");
    let shown = ok(&db, &["discrepancy", "show", &id]);
    for kind in ["opened", "resolved", "reopened", "cleared"] {
        assert!(shown.contains(kind), "{kind} not in {shown}");
    }
    let pool = db.connect().await;
    assert_eq!(
        scalar(&pool, "SELECT COUNT(*) FROM reconciliation_runs").await,
        4
    );
}

/// A day of `orders` orders from `bench-data` (with `seed`) in `gen/`, vendor acme added and both
/// files imported. Returns what bench-data printed.
fn import_generated_day(db: &TestDb, orders: &str, seed: &str) -> String {
    let out = ok(
        db,
        &[
            "bench-data",
            "--orders",
            orders,
            "--out",
            "gen",
            "--seed",
            seed,
            "--date",
            "2026-12-01",
        ],
    );
    ok(db, &["vendor", "add", "acme"]);
    ok(
        db,
        &["import", "orders", "gen/orders.csv", "--vendor", "acme"],
    );
    ok(
        db,
        &["import", "vendor", "gen/vendor.csv", "--vendor", "acme"],
    );
    out
}

async fn generated_days_reconcile_to_the_expected_classes(db: TestDb) {
    let out = import_generated_day(&db, "3000", "7");
    assert!(out.contains(" orders and "), "{out}");
    ok(
        &db,
        &["reconcile", "--vendor", "acme", "--date", "2026-12-01"],
    );
    let expected: Value = serde_json::from_str(
        &std::fs::read_to_string(db.dir.path().join("gen/expected.json")).unwrap(),
    )
    .unwrap();
    let s = summary(&db);
    for class in app::domain::matching::Class::ALL {
        assert_eq!(
            s["counts"][class.as_str()].as_u64().unwrap_or(0),
            expected["expected"][class.as_str()].as_u64().unwrap_or(0),
            "{}",
            class.as_str()
        );
    }
    // Rerunning changes nothing.
    let out = ok(
        &db,
        &["reconcile", "--vendor", "acme", "--date", "2026-12-01"],
    );
    assert!(
        out.contains("(0 new, 0 reopened,") && out.contains(" 0 cleared)"),
        "{out}"
    );
}

/// A run counts the orders that agree with their one record in the database and streams only
/// the rest through the classifier. However the vendor spells its statuses, that must come to
/// exactly what the pure classifier says of every order and record one by one; and a day with
/// more discrepancies than one write statement holds is stored whole, and rerun unchanged.
async fn the_database_counts_agreeing_orders_as_the_classifier_would(db: TestDb) {
    use app::domain::matching::{reconcile, Class, InternalOrder, Tolerance, VendorRecord};
    use app::domain::{Currency, GlState, Money};

    import_generated_day(&db, "12000", "11");
    let pool = db.connect().await;
    if let app::storage::Db::Postgres(pg) = &pool {
        // Imports this large refresh the planner's statistics themselves (manual ANALYZE:
        // last_analyze, never set by autovacuum). The import's server process reports them
        // as it ends, so give it a moment.
        let mut analyzed = Vec::new();
        for _ in 0..50 {
            analyzed = sqlx::query_scalar::<_, String>(
                "SELECT relname::text FROM pg_stat_user_tables
                  WHERE relname IN ('orders', 'vendor_records') AND last_analyze IS NOT NULL
                  ORDER BY 1",
            )
            .fetch_all(pg)
            .await
            .unwrap();
            if analyzed.len() == 2 {
                break;
            }
            tokio::time::sleep(std::time::Duration::from_millis(100)).await;
        }
        assert_eq!(analyzed, ["orders", "vendor_records"]);
    }
    // Spellings from vendor portals: capitals the database compares as they are, and padded or
    // mixed-case ones only the classifier's normalising recognises.
    for (status, every) in [("COMPLETED", 5), (" completed ", 7), ("cOmPlEtEd", 11)] {
        let sql = format!(
            "UPDATE vendor_records SET status = '{status}'
              WHERE lower(status) IN ('fulfilled', 'completed') AND id % {every} = 0"
        );
        app::on_db!(&pool, p => sqlx::query(&sql).execute(p).await.map(|_| ())).unwrap();
    }
    let out = ok(
        &db,
        &["reconcile", "--vendor", "acme", "--date", "2026-12-01"],
    );
    let s = summary(&db);

    type Row<K> = (String, K, Option<String>, i64, String, String);
    let orders: Vec<Row<String>> = app::on_db!(&pool, p => {
        sqlx::query_as(
            "SELECT id, vendor_key, vendor_order_id, amount_minor, currency, gl_state FROM orders",
        )
        .fetch_all(p)
        .await
    })
    .unwrap();
    let records: Vec<Row<Option<String>>> = app::on_db!(&pool, p => {
        sqlx::query_as(
            "SELECT vendor_order_id, vendor_key, reference_id, amount_minor, currency, status
               FROM vendor_records",
        )
        .fetch_all(p)
        .await
    })
    .unwrap();
    let money = |minor: i64, c: &str| Money::from_minor(minor, Currency::parse(c).unwrap());
    let orders: Vec<InternalOrder> = orders
        .into_iter()
        .map(
            |(id, vendor_key, vendor_order_id, minor, c, gl)| InternalOrder {
                id,
                vendor_key,
                vendor_order_id,
                amount: money(minor, &c),
                gl_state: GlState::parse(&gl).unwrap(),
            },
        )
        .collect();
    let records: Vec<VendorRecord> = records
        .into_iter()
        .map(
            |(vendor_order_id, key, reference_id, minor, c, status)| VendorRecord {
                vendor_order_id,
                key,
                reference_id,
                amount: money(minor, &c),
                status,
            },
        )
        .collect();
    let vendor = app::storage::vendors::get_vendor(&pool, &"acme".parse().unwrap())
        .await
        .unwrap();
    let one_by_one = reconcile(
        &orders,
        &records,
        &vendor.status_mapping,
        Tolerance::default(),
    )
    .unwrap();

    let mut discrepancies = 0;
    for class in Class::ALL {
        let want = one_by_one.count(class) as u64;
        assert_eq!(
            s["counts"][class.as_str()].as_u64(),
            Some(want),
            "{}",
            class.as_str()
        );
        if class.is_discrepancy() {
            discrepancies += want;
        }
    }
    assert!(one_by_one.count(Class::Matched) > 10_000, "{out}");
    assert!(
        discrepancies > 250,
        "more than one statement's worth: {discrepancies}"
    );
    assert_eq!(
        s["totals"].as_object().unwrap().len(),
        one_by_one.totals.len()
    );
    for (currency, t) in &one_by_one.totals {
        let got = &s["totals"][currency.code()];
        assert_eq!(
            got["internal_count"].as_u64(),
            Some(t.internal.count),
            "{currency:?}"
        );
        assert_eq!(
            got["vendor_count"].as_u64(),
            Some(t.vendor.count),
            "{currency:?}"
        );
        assert_eq!(
            got["internal_amount"],
            t.internal.amount.amount_string().as_str()
        );
        assert_eq!(
            got["vendor_amount"],
            t.vendor.amount.amount_string().as_str()
        );
    }
    let stored = scalar(
        &pool,
        "SELECT COUNT(*) FROM discrepancies WHERE state = 'open' AND item_key NOT LIKE 'adj:%'",
    )
    .await;
    assert_eq!(stored as u64, discrepancies);
    assert_eq!(
        scalar(
            &pool,
            "SELECT COUNT(*) FROM discrepancy_events WHERE kind = 'opened'"
        )
        .await as u64,
        discrepancies
    );
    assert!(
        out.contains(&format!("({discrepancies} new, 0 reopened,")),
        "{out}"
    );

    let out = ok(
        &db,
        &["reconcile", "--vendor", "acme", "--date", "2026-12-01"],
    );
    assert!(
        out.contains(&format!(
            "(0 new, 0 reopened, {discrepancies} unchanged, 0 cleared)"
        )),
        "{out}"
    );
    assert_eq!(
        scalar(
            &pool,
            "SELECT COUNT(*) FROM discrepancies WHERE last_run = 2"
        )
        .await as u64,
        discrepancies
    );
}

async fn business_days_follow_the_configured_time_zone(db: TestDb) {
    ok(&db, &["vendor", "add", "acme"]);
    // 03:00 UTC on the 2nd is still the 1st in New York.
    write(
        &db,
        "orders.csv",
        "idempotency_key,customer_id,brand_id,amount,currency,status,created_at\n\
         k-late,c1,amazon-us,10.00,USD,fulfilled,2026-12-02T03:00:00Z\n",
    );
    ok(&db, &["import", "orders", "orders.csv", "--vendor", "acme"]);
    write(
        &db,
        "ny.toml",
        "[reconciliation]\ntime_zone = \"America/New_York\"\n",
    );
    ok(
        &db,
        &[
            "--config",
            "ny.toml",
            "reconcile",
            "--vendor",
            "acme",
            "--date",
            "2026-12-01",
        ],
    );
    let s = summary(&db);
    assert_eq!(
        (s["orders"].as_u64(), s["time_zone"].as_str()),
        (Some(1), Some("America/New_York"))
    );
    ok(
        &db,
        &[
            "reconcile",
            "--vendor",
            "acme",
            "--from",
            "2026-12-01",
            "--to",
            "2026-12-02",
        ],
    );
    assert_eq!(summary(&db)["orders"], 0);
    write(
        &db,
        "bad.toml",
        "[reconciliation]\ntime_zone = \"Mars/Olympus\"\n",
    );
    let err = assert_one_line_error(&db.cli(&[
        "--config",
        "bad.toml",
        "reconcile",
        "--vendor",
        "acme",
        "--date",
        "2026-12-01",
    ]));
    assert!(err.contains("reconciliation.time_zone"), "{err}");
}

async fn vendor_files_and_reports_over_the_api(db: TestDb) {
    ok(&db, &["vendor", "add", "acme"]);
    let app = TestApp::spawn(db).await;
    let token = app.token("finance-bot").await;
    let upload = |body: String, query: &'static str, token: Option<String>| {
        let mut request = app
            .client
            .post(app.url(&format!("/api/v1/vendors/acme/files{query}")))
            .header("content-type", "text/csv")
            .body(body);
        if let Some(t) = token {
            request = request.bearer_auth(t);
        }
        request.send()
    };
    let file = format!(
        "{VENDOR_HEADER}\nV1,k1,,,50.00,USD,fulfilled,2026-12-01T10:00:00Z,\nV2,k2,,,7,USD,fulfilled,2026-12-01T11:00:00Z,\n"
    );
    let response = upload(file.clone(), "", None).await.unwrap();
    assert_eq!(response.status(), 401);
    let response = upload(file.clone(), "?name=day1.csv", Some(token.clone()))
        .await
        .unwrap();
    assert_eq!(response.status(), 201);
    let body: Value = response.json().await.unwrap();
    assert_eq!(
        (body["rows"].as_i64(), body["inserted"].as_i64()),
        (Some(2), Some(2))
    );
    assert_eq!(body["file_name"], "day1.csv");
    let response = upload(file, "?name=day1.csv", Some(token.clone()))
        .await
        .unwrap();
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["unchanged"], 2);

    let bad = format!("{VENDOR_HEADER}\nV3,k3,,,1.001,USD,fulfilled,2026-12-01T10:00:00Z,\n");
    let response = upload(bad, "", Some(token.clone())).await.unwrap();
    assert_eq!(response.status(), 422);
    let problem: Value = response.json().await.unwrap();
    assert_eq!(problem["errors"][0]["field"], "line 2");
    assert!(problem["errors"][0]["reason"]
        .as_str()
        .unwrap()
        .starts_with("amount"));
    assert_eq!(app.count("vendor_records").await, 2);
    let response = app
        .client
        .post(app.url("/api/v1/vendors/ghost/files"))
        .bearer_auth(&token)
        .body("x")
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 404);

    let response = app
        .get_json(
            "/api/v1/reconciliation/summary?vendor=acme&date=2026-12-01",
            &token,
        )
        .await;
    assert_eq!(response.status(), 404);
    let problem: Value = response.json().await.unwrap();
    assert!(problem["detail"]
        .as_str()
        .unwrap()
        .contains("giftrecon reconcile"));
    let response = app
        .get_json("/api/v1/reconciliation/summary?vendor=acme", &token)
        .await;
    assert_eq!(response.status(), 400);
    let problem: Value = response.json().await.unwrap();
    assert_eq!(problem["errors"][0]["field"], "date");

    ok(
        &app.test_db,
        &["reconcile", "--vendor", "acme", "--date", "2026-12-01"],
    );
    let response = app
        .get_json(
            "/api/v1/reconciliation/summary?vendor=acme&date=2026-12-01",
            &token,
        )
        .await;
    assert_eq!(response.status(), 200);
    let api: Value = response.json().await.unwrap();
    assert_eq!(api, summary(&app.test_db));
    assert_eq!(api["counts"]["vendor_only"], 2);
    let response = app
        .get_json(
            "/api/v1/reconciliation/discrepancies?vendor=acme&date=2026-12-01&format=csv",
            &token,
        )
        .await;
    assert_eq!(response.status(), 200);
    let csv = response.text().await.unwrap();
    assert!(csv.starts_with("id,vendor,date,class"), "{csv}");
    assert_eq!(csv.lines().count(), 4, "{csv}");
    // An audit row for each import.
    let imports: i64 = app::on_db!(&app.db, p => sqlx::query_scalar(
        "SELECT COUNT(*) FROM audit_log WHERE action = 'vendor_file_imported'").fetch_one(p).await)
    .unwrap();
    assert_eq!(imports, 2);
}

async fn a_closed_day_is_never_rewritten(db: TestDb) {
    use app::domain::{Role, VendorId};
    use app::storage::journal::{self, Actor};
    ok(&db, &["vendor", "add", "acme"]);
    write(
        &db,
        "orders.csv",
        "idempotency_key,customer_id,brand_id,amount,currency,status,created_at\n\
         k1,c1,amazon-us,50.00,USD,fulfilled,2026-12-01T10:00:00Z\n\
         k2,c1,amazon-us,20.00,USD,fulfilled,2026-12-01T11:00:00Z\n",
    );
    ok(&db, &["import", "orders", "orders.csv", "--vendor", "acme"]);
    write(
        &db,
        "day.csv",
        &format!("{VENDOR_HEADER}\nV1,k1,,,50,USD,fulfilled,2026-12-01T10:00:01Z,\nV2,k2,,,20,USD,fulfilled,2026-12-01T11:00:01Z,\n"),
    );
    ok(&db, &["import", "vendor", "day.csv", "--vendor", "acme"]);
    ok(
        &db,
        &["reconcile", "--vendor", "acme", "--date", "2026-12-01"],
    );

    // Close the day: prepared by one person, approved and posted by another.
    let pool = db.connect().await;
    let (day, acme) = (
        chrono::NaiveDate::from_ymd_opt(2026, 12, 1).unwrap(),
        VendorId::parse("acme").unwrap(),
    );
    let pat = Actor {
        username: "pat".into(),
        role: Role::FinancePreparer,
    };
    let ann = Actor {
        username: "ann".into(),
        role: Role::FinanceApprover,
    };
    let totals = app::storage::reconciliation::day_totals(&pool, "acme", day)
        .await
        .unwrap()
        .unwrap();
    journal::propose(&pool, &acme, day, &totals, &pat)
        .await
        .unwrap();
    for entry in journal::list_day(&pool, "acme", day).await.unwrap() {
        let submitted = journal::submit(&pool, entry.id, &pat).await.unwrap();
        journal::approve(&pool, entry.id, &submitted.content_hash, &ann)
            .await
            .unwrap();
        journal::post(&pool, entry.id, &ann).await.unwrap();
    }
    assert!(journal::is_locked(&pool, "acme", day).await.unwrap());
    let report = |db: &TestDb| {
        (
            ok(
                db,
                &[
                    "report",
                    "summary",
                    "--vendor",
                    "acme",
                    "--date",
                    "2026-12-01",
                    "--format",
                    "csv",
                ],
            ),
            ok(
                db,
                &[
                    "report",
                    "discrepancies",
                    "--vendor",
                    "acme",
                    "--date",
                    "2026-12-01",
                ],
            ),
        )
    };
    let posted = report(&db);

    // The vendor's late file for the closed day: a record we never had.
    write(
        &db,
        "late.csv",
        &format!("{VENDOR_HEADER}\nV9,k-late,,,30,USD,fulfilled,2026-12-01T23:00:00Z,\n"),
    );
    ok(&db, &["import", "vendor", "late.csv", "--vendor", "acme"]);
    let out = ok(
        &db,
        &["reconcile", "--vendor", "acme", "--date", "2026-12-01"],
    );
    assert!(
        out.contains("2026-12-01 is closed") && out.contains("filed on 2026-12-02"),
        "{out}"
    );
    // Byte for byte what was posted.
    assert_eq!(report(&db), posted);
    // The open day carries it: its totals and its queue.
    let next = chrono::NaiveDate::from_ymd_opt(2026, 12, 2).unwrap();
    let carried = app::storage::reconciliation::day_totals(&pool, "acme", next)
        .await
        .unwrap()
        .unwrap();
    let usd = carried[&app::domain::Currency::USD];
    assert_eq!(
        (usd.vendor.count, usd.vendor.amount.minor_units()),
        (1, 3000)
    );
    assert_eq!(
        (usd.internal.count, usd.internal.amount.minor_units()),
        (0, 0)
    );
    ok(
        &db,
        &["reconcile", "--vendor", "acme", "--date", "2026-12-02"],
    );
    let queue = ok(
        &db,
        &[
            "report",
            "discrepancies",
            "--vendor",
            "acme",
            "--date",
            "2026-12-02",
            "--format",
            "json",
        ],
    );
    let items: Vec<Value> = serde_json::from_str(&queue).unwrap();
    assert_eq!(items.len(), 1, "{queue}");
    assert_eq!(
        (items[0]["class"].as_str(), items[0]["key"].as_str()),
        (Some("vendor_only"), Some("adj:2026-12-01:k-late"))
    );
    assert_eq!(items[0]["state"], "open");
    // Reconciling the closed day again files nothing twice.
    ok(
        &db,
        &["reconcile", "--vendor", "acme", "--date", "2026-12-01"],
    );
    assert_eq!(
        scalar(&pool, "SELECT COUNT(*) FROM reconciliation_adjustments").await,
        1
    );
    assert_eq!(report(&db), posted);
}
