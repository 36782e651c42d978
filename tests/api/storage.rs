use app::domain::{Role, Username, VendorId, VendorKind};
use app::storage::vendors::{self, BaseUrl, NewVendor};
use app::storage::{users, StorageError};
use secrecy::SecretString;

use crate::helpers::{by_test, TestDb};
use crate::on_both_backends;

on_both_backends!(
    vendors_round_trip_with_default_mapping,
    duplicate_vendor_is_refused_and_nothing_half_written,
    usernames_are_unique_whatever_the_case,
    migrations_are_idempotent,
    lookups_by_vendor_order_id_use_its_partial_index,
);

fn vendor(id: &str, secrets: &[&str]) -> NewVendor {
    NewVendor {
        id: VendorId::parse(id).unwrap(),
        kind: VendorKind::Generic,
        base_url: Some(BaseUrl::parse("https://api.vendor.example/").unwrap()),
        webhook_secrets: secrets.iter().map(|s| SecretString::from(*s)).collect(),
        api_key: None,
    }
}

async fn vendors_round_trip_with_default_mapping(db: TestDb) {
    let db = db.connect().await;
    vendors::insert_vendor(&db, &vendor("acme", &["s1", "s2"]), &by_test("vendor_add"))
        .await
        .unwrap();
    let stored = vendors::get_vendor(&db, &VendorId::parse("acme").unwrap())
        .await
        .unwrap();
    assert_eq!(stored.kind, VendorKind::Generic);
    assert_eq!(
        stored.base_url.as_deref(),
        Some("https://api.vendor.example")
    );
    assert_eq!(stored.active_secrets, 2);
    assert_eq!(
        stored.status_mapping,
        VendorKind::Generic.default_status_mapping()
    );
    assert_eq!(
        stored.status_mapping.gl_state_for("Delivered"),
        Some(app::domain::GlState::Fulfilled)
    );
    let missing = vendors::get_vendor(&db, &VendorId::parse("nope").unwrap()).await;
    assert!(matches!(missing, Err(StorageError::NotFound { .. })));
}

async fn duplicate_vendor_is_refused_and_nothing_half_written(db: TestDb) {
    let db = db.connect().await;
    vendors::insert_vendor(&db, &vendor("acme", &["s1"]), &by_test("vendor_add"))
        .await
        .unwrap();
    let err = vendors::insert_vendor(&db, &vendor("acme", &["s2", "s3"]), &by_test("vendor_add"))
        .await
        .unwrap_err();
    assert_eq!(err.to_string(), "vendor \"acme\" already exists");
    let stored = vendors::list_vendors(&db).await.unwrap();
    assert_eq!(stored.len(), 1);
    assert_eq!(
        stored[0].active_secrets, 1,
        "secrets of the refused vendor were stored"
    );
}

async fn usernames_are_unique_whatever_the_case(db: TestDb) {
    let db = db.connect().await;
    users::insert_user(
        &db,
        &Username::parse("Alice").unwrap(),
        Role::Admin,
        "$argon2id$x",
        &by_test("user_add"),
    )
    .await
    .unwrap();
    let err = users::insert_user(
        &db,
        &Username::parse("alice").unwrap(),
        Role::Support,
        "$argon2id$y",
        &by_test("user_add"),
    )
    .await
    .unwrap_err();
    assert!(matches!(err, StorageError::AlreadyExists { .. }), "{err}");
    let all = users::list_users(&db).await.unwrap();
    assert_eq!(all.len(), 1);
    assert_eq!(all[0].username, "Alice");
    assert_eq!(all[0].role, Role::Admin);
}

async fn migrations_are_idempotent(db: TestDb) {
    let first = db.connect().await;
    first.migrate().await.unwrap();
    first.close().await;
    let second = db.connect().await;
    second.ping().await.unwrap();
}

/// `orders_vendor_order_id` leaves out orders without a vendor order id. A lookup by one
/// (`= $n`, `IN (…)`, or against another table's column) implies it is not null, so both
/// databases must still choose the index; were they to stop, every webhook and every link by
/// vendor order id would scan the vendor's orders.
async fn lookups_by_vendor_order_id_use_its_partial_index(db: TestDb) {
    let db = db.connect().await;
    let lookups = [
        "SELECT id FROM orders WHERE vendor_id = $1 AND vendor_order_id = $2",
        "SELECT id FROM orders WHERE vendor_id = $1 AND vendor_order_id IN ($2, $3)",
        "SELECT r.id FROM vendor_records r WHERE r.vendor_id = $1 AND EXISTS (
            SELECT 1 FROM orders o WHERE o.vendor_id = r.vendor_id
               AND o.vendor_order_id = r.vendor_order_id AND o.id <> $2 AND o.id <> $3)",
    ];
    for sql in lookups {
        let plan: Vec<String> = match &db {
            app::storage::Db::Sqlite(pool) => {
                let sql = sql
                    .replace("$1", "?1")
                    .replace("$2", "?2")
                    .replace("$3", "?3");
                sqlx::query_as::<_, (i64, i64, i64, String)>(&format!("EXPLAIN QUERY PLAN {sql}"))
                    .bind("acme")
                    .bind("V-1")
                    .bind("V-2")
                    .fetch_all(pool)
                    .await
                    .unwrap()
                    .into_iter()
                    .map(|row| row.3)
                    .collect()
            }
            app::storage::Db::Postgres(pool) => {
                // The tables are empty, where a scan is cheapest: rule scans out, so the plan
                // shows whether the index can serve the query at all.
                let mut conn = pool.acquire().await.unwrap();
                conn.close_on_drop();
                sqlx::query("SET enable_seqscan = off")
                    .execute(&mut *conn)
                    .await
                    .unwrap();
                sqlx::query_scalar(&format!("EXPLAIN {sql}"))
                    .bind("acme")
                    .bind("V-1")
                    .bind("V-2")
                    .fetch_all(&mut *conn)
                    .await
                    .unwrap()
            }
        };
        assert!(
            plan.iter()
                .any(|line| line.contains("orders_vendor_order_id")),
            "{sql}: {plan:#?}"
        );
    }
}

/// A new SQLite database gets the larger pages; one created with SQLite's default before keeps
/// its pages (the size of an existing file cannot change in place) and still opens and migrates.
#[tokio::test]
async fn new_sqlite_databases_get_larger_pages_and_old_ones_keep_theirs() {
    async fn page_size(db: &app::storage::Db) -> i64 {
        let app::storage::Db::Sqlite(pool) = db else {
            panic!("not SQLite")
        };
        sqlx::query_scalar("PRAGMA page_size")
            .fetch_one(pool)
            .await
            .unwrap()
    }
    let fresh = TestDb::sqlite().await;
    let db = fresh.connect().await;
    assert_eq!(
        page_size(&db).await,
        i64::from(app::storage::SQLITE_PAGE_SIZE)
    );
    assert_ne!(app::storage::SQLITE_PAGE_SIZE, 4096);

    let old = TestDb::sqlite().await;
    let app::storage::DatabaseUrl::Sqlite { path, .. } = old.database_url() else {
        panic!("not SQLite")
    };
    {
        use sqlx::ConnectOptions;
        let mut conn = sqlx::sqlite::SqliteConnectOptions::new()
            .filename(path)
            .create_if_missing(true)
            .page_size(4096)
            .connect()
            .await
            .unwrap();
        sqlx::query("CREATE TABLE made_before (x INTEGER)")
            .execute(&mut conn)
            .await
            .unwrap();
    }
    let db = old.connect().await;
    assert_eq!(page_size(&db).await, 4096);
    vendors::insert_vendor(&db, &vendor("acme", &["s1"]), &by_test("vendor_add"))
        .await
        .unwrap();
    assert_eq!(vendors::list_vendors(&db).await.unwrap().len(), 1);
}
