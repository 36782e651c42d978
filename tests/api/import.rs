//! `giftrecon token create`, `brand add` and `import orders`, as an operator runs them.

use crate::helpers::{assert_one_line_error, stderr, stdout, TestDb};
use crate::on_both_backends;

on_both_backends!(
    token_create_prints_only_the_token,
    import_orders_is_idempotent_and_all_or_nothing,
    import_orders_handles_spreadsheet_quirks,
    a_large_import_leaves_the_indexes_as_they_were,
    imports_store_text_exactly_as_the_file_has_it,
    a_bad_row_after_many_good_ones_stores_nothing,
    an_import_keeps_its_transaction_while_others_write,
);

fn setup(db: &TestDb) {
    for args in [
        vec!["vendor", "add", "acme", "--base-url", "http://127.0.0.1:9"],
        vec!["brand", "add", "acme", "amazon-us"],
        vec!["brand", "add", "acme", "itunes"],
    ] {
        let out = db.cli(&args);
        assert!(out.status.success(), "{args:?}: {}", stderr(&out));
    }
}

async fn token_create_prints_only_the_token(db: TestDb) {
    let out = db.cli(&["token", "create", "--name", "checkout"]);
    assert!(out.status.success(), "{}", stderr(&out));
    let printed = stdout(&out);
    let token = printed.trim();
    assert_eq!(printed.lines().count(), 1);
    assert!(token.starts_with("grk_") && token.len() == 68, "{token}");
    let pool = db.connect().await;
    let owner = app::storage::tokens::authenticate(&pool, token)
        .await
        .unwrap();
    assert_eq!(owner.map(|o| o.name).as_deref(), Some("checkout"));
    // Only a hash is stored.
    let stored: Vec<String> = app::on_db!(&pool, p => sqlx::query_scalar("SELECT token_hash FROM api_tokens").fetch_all(p).await).unwrap();
    assert!(!stored.iter().any(|h| h.contains(&token[4..])));
    let again = db.cli(&["token", "create", "--name", "checkout"]);
    assert!(assert_one_line_error(&again).contains("already exists"));
    let listed = stdout(&db.cli(&["token", "list"]));
    assert!(
        listed.contains("checkout") && !listed.contains(token),
        "{listed}"
    );
    assert!(db.cli(&["token", "revoke", "checkout"]).status.success());
    assert!(app::storage::tokens::authenticate(&pool, token)
        .await
        .unwrap()
        .is_none());
}

async fn import_orders_is_idempotent_and_all_or_nothing(db: TestDb) {
    setup(&db);
    let good = "idempotency_key,customer_id,brand_id,amount,currency\n\
                k-1,c-1,amazon-us,50,USD\n\
                k-2,c-2,itunes,25.5,USD\n\
                k-3,c-3,amazon-us,5000,JPY\n";
    std::fs::write(db.dir.path().join("orders.csv"), good).unwrap();
    let out = db.cli(&["import", "orders", "orders.csv", "--vendor", "acme"]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(
        stdout(&out).contains("3 new orders (3 to place with the vendor"),
        "{}",
        stdout(&out)
    );
    let again = db.cli(&["import", "orders", "orders.csv", "--vendor", "acme"]);
    assert!(
        stdout(&again).contains("0 new orders") && stdout(&again).contains("3 already imported")
    );
    let pool = db.connect().await;
    assert_eq!(app::storage::orders::count(&pool).await.unwrap(), 3);
    let jobs: i64 = app::on_db!(&pool, p => sqlx::query_scalar("SELECT COUNT(*) FROM outbox_jobs").fetch_one(p).await).unwrap();
    assert_eq!(jobs, 3);

    // A file mixing orders imported before with new ones: only the new get an order, a
    // history and a job.
    let mixed = "idempotency_key,customer_id,brand_id,amount,currency\n\
                 k-2,c-2,itunes,25.5,USD\n\
                 k-4,c-4,itunes,7,USD\n";
    std::fs::write(db.dir.path().join("mixed.csv"), mixed).unwrap();
    let out = db.cli(&["import", "orders", "mixed.csv", "--vendor", "acme"]);
    assert!(
        stdout(&out).contains("1 new orders (1 to place with the vendor")
            && stdout(&out).contains("1 already imported"),
        "{}",
        stdout(&out)
    );
    let k4 = app::storage::orders::find_by_key(&pool, "import", "k-4")
        .await
        .unwrap()
        .expect("k-4 imported");
    let (events, jobs): (i64, i64) = app::on_db!(&pool, p => sqlx::query_as(
        "SELECT (SELECT COUNT(*) FROM order_events), (SELECT COUNT(*) FROM outbox_jobs WHERE order_id = $1)")
        .bind(&k4.id).fetch_one(p).await).unwrap();
    assert_eq!((events, jobs), (4, 1));

    // Any bad row: the whole file is refused, every bad line named, nothing stored.
    let bad = "idempotency_key,customer_id,brand_id,amount,currency\n\
               k-10,c-1,amazon-us,50,USD\n\
               k-11,c-1,amazon-us,12.505,USD\n\
               k-12,c-1,amazon-us,5,XXX\n\
               k-13,c-1,nope,5,USD\n\
               k-1,c-1,amazon-us,51,USD\n";
    std::fs::write(db.dir.path().join("bad.csv"), bad).unwrap();
    let line = assert_one_line_error(&db.cli(&["import", "orders", "bad.csv", "--vendor", "acme"]));
    for expected in [
        "line 3: amount",
        "line 4: currency",
        "line 5: brand_id",
        "line 6: idempotency_key",
        "nothing was imported",
    ] {
        assert!(line.contains(expected), "{expected} missing: {line}");
    }
    assert!(!line.contains("line 2"), "{line}");
    assert_eq!(app::storage::orders::count(&pool).await.unwrap(), 4);
}

async fn import_orders_handles_spreadsheet_quirks(db: TestDb) {
    setup(&db);
    // BOM, CRLF, columns in another order, an extra column, quoted fields, and rows placed by
    // another system (status + created_at), which get no outbox job.
    let csv = "\u{feff}Currency,Amount,Brand_ID,Customer_ID,Idempotency_Key,Note,status,created_at\r\n\
               USD,\"50.00\",amazon-us,\"Doe, Jane\",ext-1,\"said \"\"hi\"\"\",Delivered,2026-12-01T10:00:00Z\r\n\
               KWD,1.234,itunes,c-2,ext-2,,,\r\n";
    std::fs::write(db.dir.path().join("quirks.csv"), csv).unwrap();
    let out = db.cli(&["import", "orders", "quirks.csv", "--vendor", "acme"]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(
        stdout(&out)
            .contains("2 new orders (1 to place with the vendor, 1 recorded as placed elsewhere)"),
        "{}",
        stdout(&out)
    );
    let pool = db.connect().await;
    let external = app::storage::orders::find_by_key(&pool, "import", "ext-1")
        .await
        .unwrap()
        .unwrap();
    assert_eq!(external.customer_id, "Doe, Jane");
    assert_eq!(external.amount.minor_units(), 5000);
    assert_eq!(external.gl_state, app::domain::GlState::Fulfilled);
    assert_eq!(external.vendor_key, "ext-1");
    assert_eq!(
        external.created_at.to_rfc3339(),
        "2026-12-01T10:00:00+00:00"
    );
    let kwd = app::storage::orders::find_by_key(&pool, "import", "ext-2")
        .await
        .unwrap()
        .unwrap();
    assert_eq!(kwd.amount.minor_units(), 1234);
    let jobs: Vec<String> = app::on_db!(&pool, p => sqlx::query_scalar("SELECT order_id FROM outbox_jobs").fetch_all(p).await).unwrap();
    assert_eq!(jobs, vec![kwd.id]);
}

/// The index definitions of `orders` and `order_events`, sorted by name.
async fn index_definitions(db: &app::storage::Db) -> Vec<String> {
    app::on_db!(db, p => {
        sqlx::query_scalar(if matches!(db, app::storage::Db::Sqlite(_)) {
            "SELECT name || ': ' || COALESCE(sql, 'constraint') FROM sqlite_master
              WHERE type = 'index' AND tbl_name IN ('orders', 'order_events') ORDER BY name"
        } else {
            "SELECT indexname || ': ' || indexdef FROM pg_indexes
              WHERE tablename IN ('orders', 'order_events') ORDER BY indexname"
        })
        .fetch_all(p)
        .await
    })
    .unwrap()
}

/// On SQLite an import of `DEFER_INDEXES_FROM` orders or more into a table no larger drops the
/// secondary indexes of `orders` and `order_events` and builds them again after the rows.
/// Committed or rolled back, the indexes must be exactly as they were.
async fn a_large_import_leaves_the_indexes_as_they_were(db: TestDb) {
    let cli = |args: &[&str]| {
        let out = db.cli(args);
        assert!(out.status.success(), "{args:?}: {}", stderr(&out));
        stdout(&out)
    };
    cli(&["vendor", "add", "acme"]);
    let pool = db.connect().await;
    let before = index_definitions(&pool).await;
    assert!(before.len() >= 8, "{before:?}");
    let orders = |dir: &str| -> u64 {
        let expected = std::fs::read_to_string(db.dir.path().join(dir).join("expected.json"));
        let expected: serde_json::Value = serde_json::from_str(&expected.unwrap()).unwrap();
        expected["orders"].as_u64().unwrap()
    };
    let count = || async {
        app::on_db!(&pool, p => {
            sqlx::query_scalar::<_, i64>("SELECT COUNT(*) FROM orders").fetch_one(p).await
        })
        .unwrap() as u64
    };

    cli(&[
        "bench-data",
        "--orders",
        "10400",
        "--out",
        "big",
        "--seed",
        "1",
    ]);
    let big = orders("big");
    assert!(
        big >= app::storage::order_import::DEFER_INDEXES_FROM,
        "large enough to build the indexes afterwards: {big}"
    );
    let out = cli(&["import", "orders", "big/orders.csv", "--vendor", "acme"]);
    assert!(out.contains(&format!("{big} new orders")), "{out}");
    assert_eq!(index_definitions(&pool).await, before);
    assert_eq!(count().await, big);

    // Larger still, but its keys were imported for other orders: refused whole, rolled back.
    cli(&[
        "bench-data",
        "--orders",
        "11000",
        "--out",
        "clash",
        "--seed",
        "2",
    ]);
    assert!(orders("clash") >= big);
    let out = db.cli(&["import", "orders", "clash/orders.csv", "--vendor", "acme"]);
    assert!(!out.status.success());
    assert!(
        stderr(&out).contains("was already imported for a different order"),
        "{}",
        stderr(&out)
    );
    assert_eq!(index_definitions(&pool).await, before);
    assert_eq!(count().await, big);
}

/// Backslashes, a literal `\N`, tabs and line breaks inside fields reach the tables unchanged
/// (PostgreSQL imports stream rows in COPY's text format, where each of those is special).
async fn imports_store_text_exactly_as_the_file_has_it(db: TestDb) {
    setup(&db);
    let orders = "idempotency_key,customer_id,brand_id,amount,currency,status,created_at\n\
                  k\\N,c\\N,amazon-us,50,USD,Delivered,2026-12-01T10:00:00Z\n\
                  k\\\\t,back\\slash,itunes,5,USD,,\n";
    std::fs::write(db.dir.path().join("orders.csv"), orders).unwrap();
    let out = db.cli(&["import", "orders", "orders.csv", "--vendor", "acme"]);
    assert!(out.status.success(), "{}", stderr(&out));
    let pool = db.connect().await;
    let first = app::storage::orders::find_by_key(&pool, "import", "k\\N")
        .await
        .unwrap()
        .expect("k\\N stored under its own key");
    assert_eq!(
        (first.customer_id.as_str(), first.vendor_key.as_str()),
        ("c\\N", "k\\N")
    );
    let second = app::storage::orders::find_by_key(&pool, "import", "k\\\\t")
        .await
        .unwrap()
        .expect("k\\\\t stored under its own key");
    assert_eq!(second.customer_id, "back\\slash");
    // The history keeps the key inside its JSON detail, escaped once, by JSON.
    let detail: String = app::on_db!(&pool, p => sqlx::query_scalar(
        "SELECT detail FROM order_events WHERE order_id = $1").bind(&first.id).fetch_one(p).await)
    .unwrap();
    let detail: serde_json::Value = serde_json::from_str(&detail).unwrap();
    assert_eq!(detail["vendor_key"], "k\\N");

    let vendor =
        "vendor_order_id,idempotency_key,reference_id,brand_id,amount,currency,status,created_at\n\
                  V\\N,k\\N,,\"two\nlines\",50,USD,\"Deliv\tered\",2026-12-01T10:00:00Z\n\
                  V\\\\,,,,5,USD,Delivered,2026-12-01T11:00:00Z\n";
    std::fs::write(db.dir.path().join("vendor.csv"), vendor).unwrap();
    let out = db.cli(&["import", "vendor", "vendor.csv", "--vendor", "acme"]);
    assert!(out.status.success(), "{}", stderr(&out));
    type Stored = (
        String,
        Option<String>,
        Option<String>,
        String,
        Option<String>,
    );
    let mut stored: Vec<Stored> = app::on_db!(&pool, p => sqlx::query_as(
        "SELECT vendor_order_id, vendor_key, brand_id, status, order_id
           FROM vendor_records").fetch_all(p).await)
    .unwrap();
    stored.sort();
    assert_eq!(
        stored,
        vec![
            (
                "V\\N".to_string(),
                Some("k\\N".to_string()),
                Some("two\nlines".to_string()),
                "Deliv\tered".to_string(),
                Some(first.id.clone()),
            ),
            (
                "V\\\\".to_string(),
                None,
                None,
                "Delivered".to_string(),
                None
            ),
        ]
    );
}

/// Both imports write while they read: a bad last row, after more good rows than either
/// database takes per batch, must still leave nothing behind.
async fn a_bad_row_after_many_good_ones_stores_nothing(db: TestDb) {
    setup(&db);
    const GOOD: usize = 10_600;
    let mut orders =
        String::from("idempotency_key,customer_id,brand_id,amount,currency,status,created_at\n");
    let mut vendor =
        String::from("vendor_order_id,idempotency_key,amount,currency,status,created_at\n");
    for i in 0..GOOD {
        orders.push_str(&format!(
            "k-{i},c-{i},amazon-us,10,USD,completed,2026-12-01T10:00:00Z\n"
        ));
        vendor.push_str(&format!(
            "V-{i},k-{i},10,USD,completed,2026-12-01T10:00:00Z\n"
        ));
    }
    orders.push_str("k-last,c-1,amazon-us,ten,USD,completed,2026-12-01T10:00:00Z\n");
    vendor.push_str("V-last,k-last,10,USD,completed,yesterday\n");
    std::fs::write(db.dir.path().join("orders.csv"), orders).unwrap();
    std::fs::write(db.dir.path().join("vendor.csv"), vendor).unwrap();
    let bad_line = format!("line {}", GOOD + 2);

    let refused =
        assert_one_line_error(&db.cli(&["import", "orders", "orders.csv", "--vendor", "acme"]));
    assert!(
        refused.contains(&format!("{bad_line}: amount")),
        "{refused}"
    );
    let refused =
        assert_one_line_error(&db.cli(&["import", "vendor", "vendor.csv", "--vendor", "acme"]));
    assert!(
        refused.contains(&format!("{bad_line}: created_at")),
        "{refused}"
    );

    let pool = db.connect().await;
    let left: (i64, i64, i64, i64) = app::on_db!(&pool, p => sqlx::query_as(
        "SELECT (SELECT COUNT(*) FROM orders), (SELECT COUNT(*) FROM order_events),
                (SELECT COUNT(*) FROM vendor_records), (SELECT COUNT(*) FROM imports)")
        .fetch_one(p).await)
    .unwrap();
    assert_eq!(left, (0, 0, 0, 0));
}

/// An import reads before it first writes. On SQLite a transaction that has only read cannot
/// start writing once another writer has committed (busy, whatever the timeout), so an import
/// takes the write lock when it begins: a write from elsewhere waits for it instead.
async fn an_import_keeps_its_transaction_while_others_write(db: TestDb) {
    use app::domain::{Currency, IdempotencyKey, Money, OrderRequest, VendorId};
    use app::storage::order_import::{self, FileOrigin};
    use std::sync::atomic::AtomicBool;
    use std::sync::Arc;
    use std::time::Duration;

    setup(&db);
    let pool = db.connect().await;
    let (batches, received) = tokio::sync::mpsc::channel(4);
    let (verdict, sha256) = tokio::sync::oneshot::channel::<String>();
    let writing = Arc::new(AtomicBool::new(true));
    let import = {
        let (pool, writing) = (pool.clone(), Arc::clone(&writing));
        tokio::spawn(async move {
            let origin = FileOrigin {
                vendor_id: "acme".into(),
                file_name: "concurrent.csv".into(),
            };
            let sha256 = async { sha256.await.ok() };
            order_import::import_orders(
                &pool, "import", "test", received, 100, &writing, &origin, sha256,
            )
            .await
        })
    };
    // The import has begun before anyone else writes; then another writer commits a brand.
    tokio::time::sleep(Duration::from_millis(300)).await;
    let other = {
        let pool = pool.clone();
        tokio::spawn(async move {
            app::on_db!(&pool, p => sqlx::query(
                "INSERT INTO brands (vendor_id, brand_id, name, created_at)
                 VALUES ('acme', 'starbucks', NULL, '2026-12-05T00:00:00Z')")
                .execute(p).await.map(|_| ()))
        })
    };
    tokio::time::sleep(Duration::from_millis(300)).await;
    let request = OrderRequest::new(
        IdempotencyKey::parse("k-1").unwrap(),
        "c-1",
        "amazon-us",
        Money::parse("5", Currency::USD).unwrap(),
        VendorId::parse("acme").unwrap(),
    )
    .unwrap();
    let order =
        app::storage::orders::build_order(&request, "import", app::storage::orders::Source::Import);
    batches.send(vec![(2, order)]).await.unwrap();
    drop(batches);
    verdict.send("0".repeat(64)).unwrap();
    let imported = import.await.unwrap().expect("the import commits");
    assert_eq!(imported.created, 1);
    other
        .await
        .unwrap()
        .expect("the other write goes in after the import");
    assert_eq!(app::storage::orders::count(&pool).await.unwrap(), 1);
}
