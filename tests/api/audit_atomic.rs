//! Audit rows are written in the transaction of the action they record: an action that rolls
//! back leaves no row, an action that commits always has one, and concurrent actions keep one
//! unbroken chain.

use app::domain::Role;
use app::storage::audit::{self, Verification};
use app::storage::Db;
use leptos::server_fn::ServerFn;

use crate::helpers::{stderr, TestApp, TestDb, PASSWORD};
use crate::on_both_backends;

on_both_backends!(
    when_the_audit_row_cannot_be_written_the_action_is_undone,
    a_refused_action_leaves_no_audit_row,
    every_audited_action_has_exactly_its_row,
    concurrent_audited_actions_keep_one_chain,
);

/// How many rows of `action` the trail holds.
pub async fn rows_of(db: &Db, action: &str) -> i64 {
    app::on_db!(db, pool => {
        sqlx::query_scalar("SELECT COUNT(*) FROM audit_log WHERE action = $1")
            .bind(action)
            .fetch_one(pool)
            .await
    })
    .unwrap()
}

/// Makes every insert of an audit row of `action` fail, as a full disk or a lost connection
/// would at that moment.
async fn break_audit_inserts_of(db: &Db, action: &str) {
    match db {
        Db::Sqlite(pool) => {
            sqlx::query(&format!(
                "CREATE TRIGGER test_break_{action} BEFORE INSERT ON audit_log
                 WHEN NEW.action = '{action}'
                 BEGIN SELECT RAISE(ABORT, 'injected audit failure'); END"
            ))
            .execute(pool)
            .await
            .unwrap();
        }
        Db::Postgres(pool) => {
            sqlx::query(&format!(
                "CREATE FUNCTION test_break_{action}() RETURNS trigger LANGUAGE plpgsql AS $$
                 BEGIN
                     IF NEW.action = '{action}' THEN RAISE EXCEPTION 'injected audit failure'; END IF;
                     RETURN NEW;
                 END $$"
            ))
            .execute(pool)
            .await
            .unwrap();
            sqlx::query(&format!(
                "CREATE TRIGGER test_break_{action} BEFORE INSERT ON audit_log
                 FOR EACH ROW EXECUTE FUNCTION test_break_{action}()"
            ))
            .execute(pool)
            .await
            .unwrap();
        }
    }
}

/// Undoes [`break_audit_inserts_of`] (a trigger name per action: on SQLite another pooled
/// connection may still hold a read snapshot from before the drop).
async fn repair_audit_inserts(db: &Db, action: &str) {
    let statement = match db {
        Db::Sqlite(_) => format!("DROP TRIGGER test_break_{action}"),
        Db::Postgres(_) => format!("DROP FUNCTION test_break_{action}() CASCADE"),
    };
    app::on_db!(db, pool => sqlx::query(&statement).execute(pool).await.map(|_| ())).unwrap();
}

async fn when_the_audit_row_cannot_be_written_the_action_is_undone(db: TestDb) {
    let app = TestApp::spawn(db).await;
    let status = app::server::SystemStatus::PATH;
    let ana = app.signed_in(Role::Support).await;
    let admin = app.signed_in(Role::Admin).await;
    for action in [
        "user_disable",
        "user_add",
        "token_create",
        "vendor_add",
        "login",
        "logout",
    ] {
        break_audit_inserts_of(&app.db, action).await;
        match action {
            "user_disable" => {
                // Through the CLI and through the admin page: refused, and ana keeps her session.
                let out = app.test_db.cli(&["user", "disable", "support"]);
                assert!(!out.status.success(), "{}", stderr(&out));
                let call = app
                    .call_with(
                        app::server::admin::DisableUser::PATH,
                        Some(&admin),
                        r#"{"username":"support"}"#,
                    )
                    .await;
                assert_eq!(call.status(), 500);
                assert_eq!(app.call(status, Some(&ana)).await.status(), 200);
            }
            "user_add" => {
                let call = app
                    .call_with(
                        app::server::admin::AddUser::PATH,
                        Some(&admin),
                        r#"{"username":"newcomer","role":"support","password":"a long enough password"}"#,
                    )
                    .await;
                assert_eq!(call.status(), 500);
                let out = app.test_db.cli_with_stdin(
                    &[
                        "user",
                        "add",
                        "other",
                        "--role",
                        "support",
                        "--password-stdin",
                    ],
                    Some("a long enough password\n"),
                );
                assert!(!out.status.success());
                assert_eq!(app.count("users").await, 2, "a user was added unaudited");
            }
            "token_create" => {
                let out = app.test_db.cli(&["token", "create", "--name", "svc"]);
                assert!(!out.status.success());
                assert_eq!(app.count("api_tokens").await, 0);
            }
            "vendor_add" => {
                let out = app.test_db.cli(&["vendor", "add", "acme"]);
                assert!(!out.status.success());
                assert_eq!(app.count("vendors").await, 0);
            }
            "login" => {
                let sessions = app.count("sessions").await;
                let response = app.login("support", PASSWORD).await;
                assert_eq!(response.status(), 500);
                assert!(response.headers().get("set-cookie").is_none());
                assert_eq!(app.count("sessions").await, sessions);
            }
            "logout" => {
                let out = app
                    .client
                    .post(app.url("/auth/logout"))
                    .header("origin", format!("http://{}", app.addr))
                    .header("cookie", &ana)
                    .send()
                    .await
                    .unwrap();
                assert_eq!(out.status(), 503);
                // Not signed out unrecorded: the session still works.
                assert_eq!(app.call(status, Some(&ana)).await.status(), 200);
            }
            _ => unreachable!(),
        }
        assert_eq!(rows_of(&app.db, action).await, initial_rows(action));
        repair_audit_inserts(&app.db, action).await;
    }
    assert!(matches!(
        audit::verify(&app.db).await.unwrap(),
        Verification::Intact { .. }
    ));
}

/// Rows of `action` the setup of the test above wrote (two users added, two signed in).
fn initial_rows(action: &str) -> i64 {
    match action {
        "user_add" | "login" => 2,
        _ => 0,
    }
}

async fn a_refused_action_leaves_no_audit_row(db: TestDb) {
    let app = TestApp::spawn(db).await;
    let admin = app.signed_in(Role::Admin).await;
    let before = app.count("audit_log").await;
    for args in [
        &[
            "vendor",
            "set",
            "nope",
            "--base-url",
            "https://api.vendor.example",
        ][..],
        &["vendor", "rotate-secret", "nope", "--secret", "whsec_x"][..],
        &["token", "revoke", "nope"][..],
        &["user", "disable", "nobody"][..],
    ] {
        let out = app.test_db.cli(args);
        assert!(!out.status.success(), "{args:?}");
    }
    // A duplicate user, through the CLI and the admin page.
    let out = app.test_db.cli_with_stdin(
        &[
            "user",
            "add",
            "ADMIN",
            "--role",
            "support",
            "--password-stdin",
        ],
        Some("a long enough password\n"),
    );
    assert!(!out.status.success());
    let call = app
        .call_with(
            app::server::admin::AddUser::PATH,
            Some(&admin),
            r#"{"username":"admin","role":"support","password":"a long enough password"}"#,
        )
        .await;
    assert_eq!(call.status(), 400);
    assert_eq!(app.count("audit_log").await, before);
}

async fn every_audited_action_has_exactly_its_row(db: TestDb) {
    let app = TestApp::spawn(db).await;
    let admin = app.signed_in(Role::Admin).await;
    let cli = |args: &[&str]| {
        let out = app.test_db.cli(args);
        assert!(out.status.success(), "{args:?}: {}", stderr(&out));
    };
    cli(&[
        "vendor",
        "add",
        "acme",
        "--webhook-secret",
        "whsec_first_secret",
    ]);
    cli(&[
        "vendor",
        "set",
        "acme",
        "--base-url",
        "https://api.acme.example",
        "--webhook-secret",
        "whsec_second_secret",
    ]);
    cli(&[
        "vendor",
        "rotate-secret",
        "acme",
        "--secret",
        "whsec_third_secret",
        "--grace-hours",
        "2",
    ]);
    cli(&["token", "create", "--name", "svc"]);
    cli(&["token", "revoke", "svc"]);
    let out = app.test_db.cli_with_stdin(
        &["user", "add", "bo", "--role", "support", "--password-stdin"],
        Some("a long enough password\n"),
    );
    assert!(out.status.success());
    cli(&["user", "disable", "bo"]);
    let call = app
        .call_with(
            app::server::admin::AddUser::PATH,
            Some(&admin),
            r#"{"username":"cy","role":"support","password":"a long enough password"}"#,
        )
        .await;
    assert_eq!(call.status(), 200);
    let call = app
        .call_with(
            app::server::admin::DisableUser::PATH,
            Some(&admin),
            r#"{"username":"cy"}"#,
        )
        .await;
    assert_eq!(call.status(), 200);
    assert_eq!(app.login("admin", "not the password").await.status(), 401);
    let out = app
        .client
        .post(app.url("/auth/logout"))
        .header("origin", format!("http://{}", app.addr))
        .header("cookie", &admin)
        .send()
        .await
        .unwrap();
    assert_eq!(out.status(), 303);

    for (action, expected) in [
        ("vendor_add", 1),
        ("vendor_set", 1),
        ("vendor_rotate_secret", 1),
        ("token_create", 1),
        ("token_revoke", 1),
        ("user_add", 3),
        ("user_disable", 2),
        ("login", 1),
        ("login_failed", 1),
        ("logout", 1),
    ] {
        assert_eq!(rows_of(&app.db, action).await, expected, "{action}");
    }
    // Before and after values, never the secrets.
    let rows = audit::recent(&app.db, 100).await.unwrap();
    let set = rows.iter().find(|r| r.action == "vendor_set").unwrap();
    let before: serde_json::Value =
        serde_json::from_str(set.before_json.as_deref().unwrap()).unwrap();
    let after: serde_json::Value =
        serde_json::from_str(set.after_json.as_deref().unwrap()).unwrap();
    assert_eq!(before["base_url"], serde_json::Value::Null);
    assert_eq!(after["base_url"], "https://api.acme.example");
    assert_eq!(after["webhook_secrets"], 1);
    let rotate = rows
        .iter()
        .find(|r| r.action == "vendor_rotate_secret")
        .unwrap();
    let after: serde_json::Value =
        serde_json::from_str(rotate.after_json.as_deref().unwrap()).unwrap();
    assert_eq!(after["grace_hours"], 2);
    assert!(after["oldest_secret_retires_at"].is_string(), "{after}");
    let everything = format!("{rows:?}");
    for secret in [
        "whsec_first_secret",
        "whsec_second_secret",
        "whsec_third_secret",
    ] {
        assert!(!everything.contains(secret), "{secret} leaked");
    }
    assert!(matches!(
        audit::verify(&app.db).await.unwrap(),
        Verification::Intact { .. }
    ));
}

async fn concurrent_audited_actions_keep_one_chain(db: TestDb) {
    let app = std::sync::Arc::new(TestApp::spawn(db).await);
    for n in 0..10 {
        app.add_user(&format!("u{n}"), Role::Support).await;
    }
    let before = app.count("audit_log").await;
    // Twenty at once: ten sign-ins over HTTP and ten token creations, all appending.
    let mut tasks = Vec::new();
    for n in 0..10 {
        let web = app.clone();
        tasks.push(tokio::spawn(async move {
            assert_eq!(web.login(&format!("u{n}"), PASSWORD).await.status(), 303);
        }));
        let db = app.db.clone();
        tasks.push(tokio::spawn(async move {
            let event = audit::AuditEvent::new("test", "token_create", format!("token:t{n}"));
            app::storage::tokens::create(&db, &format!("t{n}"), &event)
                .await
                .unwrap();
        }));
    }
    for task in tasks {
        task.await.unwrap();
    }
    assert_eq!(app.count("audit_log").await, before + 20);
    assert_eq!(
        audit::verify(&app.db).await.unwrap(),
        Verification::Intact {
            rows: (before + 20) as u64
        }
    );
}

/// PostgreSQL: a transaction that fails at COMMIT (a deferred constraint) takes its audit row
/// with it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_commit_that_fails_takes_the_audit_row_with_it() {
    let app = TestApp::spawn(TestDb::postgres().await).await;
    let admin = app.signed_in(Role::Admin).await;
    let Db::Postgres(pool) = &app.db else {
        unreachable!()
    };
    for statement in [
        "CREATE FUNCTION test_refuse_at_commit() RETURNS trigger LANGUAGE plpgsql AS $$
         BEGIN
             IF NEW.username = 'doomed' THEN RAISE EXCEPTION 'refused at commit'; END IF;
             RETURN NEW;
         END $$",
        "CREATE CONSTRAINT TRIGGER test_refuse_at_commit AFTER INSERT ON users
         DEFERRABLE INITIALLY DEFERRED FOR EACH ROW EXECUTE FUNCTION test_refuse_at_commit()",
    ] {
        sqlx::query(statement).execute(pool).await.unwrap();
    }
    let before = app.count("audit_log").await;
    let call = app
        .call_with(
            app::server::admin::AddUser::PATH,
            Some(&admin),
            r#"{"username":"doomed","role":"support","password":"a long enough password"}"#,
        )
        .await;
    assert_eq!(call.status(), 500);
    assert_eq!(app.count("audit_log").await, before);
    assert_eq!(app.count("users").await, 1);
    assert!(matches!(
        audit::verify(&app.db).await.unwrap(),
        Verification::Intact { .. }
    ));
}
