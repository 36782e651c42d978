//! `giftrecon demo`'s data: users for every role, a simulator vendor and reconciled days in which
//! every discrepancy class shows up; seeding twice changes nothing but the simulator's address.

use app::domain::matching::Class;
use giftrecon::config::Config;
use giftrecon::demo;

use crate::helpers::TestDb;
use crate::on_both_backends;

on_both_backends!(the_demo_has_every_class_and_a_login_per_role);

async fn the_demo_has_every_class_and_a_login_per_role(test_db: TestDb) {
    let db = test_db.connect().await;
    let config = Config::default();
    demo::seed(&db, &config, "http://127.0.0.1:9", 2)
        .await
        .unwrap();

    let users = app::storage::users::list_users(&db).await.unwrap();
    for (name, role) in demo::USERS {
        assert!(
            users.iter().any(|u| u.username == name && u.role == role),
            "{name} missing"
        );
    }
    let classes: Vec<String> = app::on_db!(&db, pool => sqlx::query_scalar(
        "SELECT DISTINCT class FROM discrepancies WHERE state = 'open' ORDER BY class")
        .fetch_all(pool).await)
    .unwrap();
    let expected: Vec<&str> = {
        let mut c: Vec<&str> = Class::ALL
            .into_iter()
            .filter(|c| c.is_discrepancy())
            .map(Class::as_str)
            .collect();
        c.sort();
        c
    };
    assert_eq!(classes, expected);
    let runs: i64 = app::on_db!(&db, pool => sqlx::query_scalar(
        "SELECT COUNT(DISTINCT business_day) FROM reconciliation_runs").fetch_one(pool).await)
    .unwrap();
    assert_eq!(runs, 2);

    // A second start keeps the data and follows the simulator to its new port.
    let before = app::storage::orders::count(&db).await.unwrap();
    demo::seed(&db, &config, "http://127.0.0.1:10", 2)
        .await
        .unwrap();
    assert_eq!(app::storage::orders::count(&db).await.unwrap(), before);
    let vendor = app::storage::vendors::get_vendor(
        &db,
        &app::domain::VendorId::parse(demo::VENDOR).unwrap(),
    )
    .await
    .unwrap();
    assert_eq!(vendor.base_url.as_deref(), Some("http://127.0.0.1:10"));
}
