//! PostgreSQL: the application role set up by `giftrecon db grant-app-role` runs the app but
//! cannot change the audit trail, not even by switching its guard triggers off.

use app::domain::Role;
use app::storage::audit::{self, Verification};
use leptos::server_fn::ServerFn;

use crate::helpers::{stderr, stdout, TestApp, TestDb, PASSWORD};

/// A login role that is dropped (with its grants) when the test ends.
struct PgRole {
    name: String,
    database: String,
}

impl PgRole {
    async fn create(database_url: &str) -> PgRole {
        use sqlx::Connection;
        let name = format!(
            "giftrecon_app_{}",
            &uuid::Uuid::new_v4().simple().to_string()[..12]
        );
        let mut conn = sqlx::PgConnection::connect(database_url).await.unwrap();
        sqlx::query(&format!("CREATE ROLE {name} LOGIN"))
            .execute(&mut conn)
            .await
            .unwrap();
        let database = database_url.rsplit('/').next().unwrap().to_string();
        PgRole { name, database }
    }

    /// The test database's URL, connecting as this role.
    fn url(&self) -> String {
        format!(
            "{}/{}",
            crate::helpers::postgres_server().replacen("postgres@", &format!("{}@", self.name), 1),
            self.database
        )
    }
}

impl Drop for PgRole {
    fn drop(&mut self) {
        let (name, database) = (self.name.clone(), self.database.clone());
        let server = crate::helpers::postgres_server();
        let _ = std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .unwrap();
            rt.block_on(async move {
                use sqlx::Connection;
                if let Ok(mut conn) =
                    sqlx::PgConnection::connect(&format!("{server}/{database}")).await
                {
                    let _ = sqlx::query(&format!("DROP OWNED BY {name}"))
                        .execute(&mut conn)
                        .await;
                    let _ = conn.close().await;
                }
                if let Ok(mut conn) =
                    sqlx::PgConnection::connect(&format!("{server}/postgres")).await
                {
                    let _ = sqlx::query(&format!("DROP ROLE IF EXISTS {name}"))
                        .execute(&mut conn)
                        .await;
                }
            })
        })
        .join();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_app_role_cannot_change_the_audit_trail_but_runs_the_app() {
    use sqlx::Connection;
    let owner_db = TestDb::postgres().await;
    // The tables are created by the owner (here the server's superuser), never the app role.
    let owner = owner_db.connect().await;
    let role = PgRole::create(&owner_db.url).await;

    // Refused for roles that could undo the protection, and for unknown ones.
    let superuser = owner_db.cli(&["db", "grant-app-role", "postgres"]);
    assert!(!superuser.status.success());
    assert!(
        stderr(&superuser).contains("superuser"),
        "{}",
        stderr(&superuser)
    );
    let unknown = owner_db.cli(&["db", "grant-app-role", "nobody_at_all"]);
    assert!(
        stderr(&unknown).contains("does not exist"),
        "{}",
        stderr(&unknown)
    );

    // A hardened database: no temporary tables for PUBLIC. The app role gets its own right.
    let database: String = app::on_db!(&owner, p => sqlx::query_scalar("SELECT current_database()::text").fetch_one(p).await).unwrap();
    app::on_db!(&owner, p => sqlx::query(&format!("REVOKE TEMPORARY ON DATABASE \"{database}\" FROM PUBLIC")).execute(p).await.map(|_| ())).unwrap();
    let out = owner_db.cli(&["db", "grant-app-role", &role.name]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(
        stdout(&out).contains("only SELECT and INSERT on audit_log"),
        "{}",
        stdout(&out)
    );
    // Idempotent: again after an upgrade.
    assert!(owner_db
        .cli(&["db", "grant-app-role", &role.name])
        .status
        .success());

    let seeded = audit::record(&owner, &audit::AuditEvent::new("ana", "login", "user:ana"))
        .await
        .unwrap();

    // As the app role: nothing that changes or hides rows, nor switches the guards off.
    let mut conn = sqlx::PgConnection::connect(&role.url()).await.unwrap();
    let sabotage = [
        format!("UPDATE audit_log SET actor = 'mallory' WHERE id = {seeded}"),
        format!("DELETE FROM audit_log WHERE id = {seeded}"),
        "TRUNCATE audit_log".to_string(),
        "ALTER TABLE audit_log DISABLE TRIGGER audit_log_no_update_or_delete".to_string(),
        "ALTER TABLE audit_log DISABLE TRIGGER ALL".to_string(),
        "DROP TRIGGER audit_log_no_update_or_delete ON audit_log".to_string(),
        "DROP TABLE audit_log".to_string(),
        "SET session_replication_role = replica".to_string(),
        "DELETE FROM audit_chain_head".to_string(),
        "DELETE FROM _sqlx_migrations".to_string(),
        "CREATE TABLE sneaky (id INT)".to_string(),
    ];
    for statement in &sabotage {
        let result = sqlx::query(statement).execute(&mut conn).await;
        let err = result.expect_err(statement);
        let message = err.to_string();
        assert!(
            message.contains("permission denied")
                || message.contains("must be owner")
                || message.contains("append-only"),
            "{statement}: {message}"
        );
    }
    let _ = conn.close().await;

    // The app itself, connecting as the role: sign-in, admin actions, sign-out, all audited.
    let mut app_db = TestDb::postgres().await;
    // (the second database is unused: the app runs on the first one as the role)
    app_db.url = role.url();
    let app = TestApp::spawn(app_db).await;
    app.add_user("admin", Role::Admin).await;
    let admin = app.session("admin").await;
    let call = app
        .call_with(
            app::server::admin::AddUser::PATH,
            Some(&admin),
            r#"{"username":"bo","role":"support","password":"a long enough password"}"#,
        )
        .await;
    assert_eq!(call.status(), 200, "{}", call.text().await.unwrap());
    let call = app
        .call_with(
            app::server::admin::DisableUser::PATH,
            Some(&admin),
            r#"{"username":"bo"}"#,
        )
        .await;
    assert_eq!(call.status(), 200);
    assert_eq!(app.login("admin", "wrong guess here").await.status(), 401);
    assert_eq!(app.login("admin", PASSWORD).await.status(), 303);
    assert_eq!(
        app.call(app::server::ListVendors::PATH, Some(&admin))
            .await
            .status(),
        200
    );
    let out = app
        .client
        .post(app.url("/auth/logout"))
        .header("origin", format!("http://{}", app.addr))
        .header("cookie", &admin)
        .send()
        .await
        .unwrap();
    assert_eq!(out.status(), 303);
    assert_eq!(
        app.call(app::server::ListVendors::PATH, Some(&admin))
            .await
            .status(),
        401
    );
    // The CLI as the role too (it finds the schema current and does not try to migrate).
    // Imports too: they copy their rows through temporary tables.
    let dir = app.test_db.dir.path();
    std::fs::write(
        dir.join("orders.csv"),
        "idempotency_key,customer_id,brand_id,amount,currency,status,created_at\n\
         k-1,c-1,amazon-us,50,USD,completed,2026-12-01T10:00:00Z\n",
    )
    .unwrap();
    std::fs::write(
        dir.join("vendor.csv"),
        "vendor_order_id,idempotency_key,amount,currency,status,created_at\n\
         V-1,k-1,50,USD,completed,2026-12-01T10:00:00Z\n",
    )
    .unwrap();
    for args in [
        &["token", "create", "--name", "svc"][..],
        &["vendor", "add", "acme"][..],
        &["import", "orders", "orders.csv", "--vendor", "acme"][..],
        &["import", "vendor", "vendor.csv", "--vendor", "acme"][..],
        &["audit", "verify"][..],
    ] {
        let out = crate::helpers::run_cli(dir, Some(&role.url()), args, None);
        assert!(out.status.success(), "{args:?}: {}", stderr(&out));
    }
    // Stale sessions and failures are purged as the role (DELETE on those tables).
    app::storage::sessions::purge_stale(
        &app.db,
        app::storage::now_utc(),
        chrono::Duration::zero(),
        chrono::Duration::zero(),
    )
    .await
    .unwrap();
    match audit::verify(&owner).await.unwrap() {
        Verification::Intact { rows } => assert!(rows >= 9, "{rows}"),
        broken => panic!("{broken:?}"),
    }
    drop(app);
    owner.close().await;
}
