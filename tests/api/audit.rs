//! The audit trail: what is recorded, that secrets never are, and that tampering is found.

use app::domain::Role;
use app::storage::audit::{self, AuditEvent, Verification};
use leptos::server_fn::ServerFn;

use crate::helpers::{assert_one_line_error, stderr, stdout, TestApp, TestDb, PASSWORD};
use crate::on_both_backends;

on_both_backends!(
    security_events_are_recorded_without_secrets,
    tampering_is_found_and_named,
    the_trail_refuses_updates_and_deletes,
    concurrent_appends_keep_one_chain,
);

async fn all_rows(app: &TestApp) -> Vec<audit::AuditRow> {
    let mut rows = audit::recent(&app.db, 1000).await.unwrap();
    rows.reverse();
    rows
}

async fn security_events_are_recorded_without_secrets(db: TestDb) {
    let app = TestApp::spawn(db).await;
    let user_password = "s3cret user password";
    let out = app.test_db.cli_with_stdin(
        &["user", "add", "ana", "--role", "admin", "--password-stdin"],
        Some(&format!("{user_password}\n")),
    );
    assert!(out.status.success(), "{}", stderr(&out));
    let out = app.test_db.cli(&[
        "vendor",
        "add",
        "acme",
        "--webhook-secret",
        "whsec_audit_secret_1",
        "--api-key",
        "vendor_api_key_secret_2",
    ]);
    assert!(out.status.success(), "{}", stderr(&out));
    let out = app.test_db.cli(&["token", "create", "--name", "checkout"]);
    assert!(out.status.success(), "{}", stderr(&out));
    let token = stdout(&out).trim().to_string();

    assert_eq!(
        app.login("ana", "a wrong password guess").await.status(),
        401
    );
    assert_eq!(app.login("ana", user_password).await.status(), 303);
    let support = app.signed_in(Role::Support).await;
    let denied = app
        .call(app::server::ListVendors::PATH, Some(&support))
        .await;
    assert_eq!(denied.status(), 403);
    let logout = app
        .client
        .post(app.url("/auth/logout"))
        .header("origin", format!("http://{}", app.addr))
        .header("cookie", &support)
        .send()
        .await
        .unwrap();
    assert_eq!(logout.status(), 303);
    let out = app.test_db.cli(&["user", "disable", "ana"]);
    assert!(out.status.success(), "{}", stderr(&out));

    let rows = all_rows(&app).await;
    let summary: Vec<(String, String)> = rows
        .iter()
        .map(|r| (r.action.clone(), r.subject.clone()))
        .collect();
    let expected = [
        ("user_add", "user:ana"),
        ("vendor_add", "vendor:acme"),
        ("token_create", "token:checkout"),
        ("login_failed", "user:ana"),
        ("login", "user:ana"),
        ("user_add", "user:support"),
        ("login", "user:support"),
        ("denied", "list_vendors"),
        ("logout", "user:support"),
        ("user_disable", "user:ana"),
    ];
    let expected: Vec<(String, String)> = expected
        .iter()
        .map(|(a, s)| (a.to_string(), s.to_string()))
        .collect();
    assert_eq!(summary, expected);
    // CLI changes name the operating system user; web actions the signed-in user or address.
    for row in &rows {
        match row.action.as_str() {
            // (the test's own setup is recorded as "test")
            "user_add" | "vendor_add" | "token_create" | "user_disable" if row.actor != "test" => {
                assert!(row.actor.starts_with("cli:"), "{row:?}")
            }
            "login_failed" => assert_eq!(row.actor, "address:127.0.0.1"),
            "denied" | "logout" => assert_eq!(row.actor, "support"),
            _ => {}
        }
    }
    let vendor = rows.iter().find(|r| r.action == "vendor_add").unwrap();
    let after: serde_json::Value =
        serde_json::from_str(vendor.after_json.as_deref().unwrap()).unwrap();
    assert_eq!(after["webhook_secrets"], 1);
    assert_eq!(after["api_key"], true);

    // No secret of any kind, anywhere in the trail.
    let everything = format!("{rows:?}");
    for secret in [
        user_password,
        "a wrong password guess",
        PASSWORD,
        "whsec_audit_secret_1",
        "vendor_api_key_secret_2",
        token.as_str(),
        "$argon2id$",
    ] {
        assert!(
            !everything.contains(secret),
            "{secret} leaked: {everything}"
        );
    }
    assert_eq!(
        audit::verify(&app.db).await.unwrap(),
        Verification::Intact {
            rows: rows.len() as u64
        }
    );
}

/// What someone with the database owner's rights could do: switch the guard triggers off.
pub(crate) async fn disable_guards(app: &TestApp) {
    match &app.db {
        app::storage::Db::Sqlite(pool) => {
            for trigger in ["audit_log_no_update", "audit_log_no_delete"] {
                sqlx::query(&format!("DROP TRIGGER {trigger}"))
                    .execute(pool)
                    .await
                    .unwrap();
            }
        }
        app::storage::Db::Postgres(pool) => {
            sqlx::query("ALTER TABLE audit_log DISABLE TRIGGER audit_log_no_update_or_delete")
                .execute(pool)
                .await
                .unwrap();
        }
    }
}

async fn tampering_is_found_and_named(db: TestDb) {
    let app = TestApp::spawn(db).await;
    let mut ids = Vec::new();
    for n in 0..5 {
        let event = AuditEvent::new("ana", "vendor_add", format!("vendor:v{n}"))
            .after(serde_json::json!({ "n": n }));
        ids.push(audit::record(&app.db, &event).await.unwrap());
    }
    let out = app.test_db.cli(&["audit", "verify"]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(stdout(&out).contains("5 row(s)"), "{}", stdout(&out));

    disable_guards(&app).await;
    let edit = |subject: &'static str, id: i64| {
        let db = app.db.clone();
        async move {
            app::on_db!(&db, pool => {
                sqlx::query("UPDATE audit_log SET subject = $1 WHERE id = $2")
                    .bind(subject)
                    .bind(id)
                    .execute(pool)
                    .await
                    .map(|_| ())
            })
            .unwrap()
        }
    };
    // Edit the third row: verify names it.
    edit("vendor:someone-else", ids[2]).await;
    let line = assert_one_line_error(&app.test_db.cli(&["audit", "verify"]));
    assert!(
        line.contains(&format!("row {}", ids[2])) && line.contains("edited"),
        "{line}"
    );
    // Put it back: intact again (the hash covers exactly the fields).
    edit("vendor:v2", ids[2]).await;
    assert!(app.test_db.cli(&["audit", "verify"]).status.success());
    // Remove the fourth row: the fifth no longer follows its predecessor.
    app::on_db!(&app.db, pool => {
        sqlx::query("DELETE FROM audit_log WHERE id = $1")
            .bind(ids[3])
            .execute(pool)
            .await
            .map(|_| ())
    })
    .unwrap();
    let line = assert_one_line_error(&app.test_db.cli(&["audit", "verify"]));
    assert!(
        line.contains(&format!("row {}", ids[4])) && line.contains("removed"),
        "{line}"
    );
}

async fn the_trail_refuses_updates_and_deletes(db: TestDb) {
    let app = TestApp::spawn(db).await;
    let id = audit::record(&app.db, &AuditEvent::new("ana", "login", "user:ana"))
        .await
        .unwrap();
    let update: Result<(), sqlx::Error> = app::on_db!(&app.db, pool => {
        sqlx::query("UPDATE audit_log SET actor = 'mallory' WHERE id = $1")
            .bind(id)
            .execute(pool)
            .await
            .map(|_| ())
    });
    let delete: Result<(), sqlx::Error> = app::on_db!(&app.db, pool => {
        sqlx::query("DELETE FROM audit_log").execute(pool).await.map(|_| ())
    });
    for result in [update, delete] {
        let err = result.expect_err("the audit trail must refuse changes");
        assert!(err.to_string().contains("append-only"), "{err}");
    }
    assert_eq!(all_rows(&app).await[0].actor, "ana");
}

async fn concurrent_appends_keep_one_chain(db: TestDb) {
    let app = TestApp::spawn(db).await;
    let tasks: Vec<_> = (0..20)
        .map(|n| {
            let db = app.db.clone();
            tokio::spawn(async move {
                audit::record(&db, &AuditEvent::new("ana", "login", format!("user:u{n}"))).await
            })
        })
        .collect();
    for task in tasks {
        task.await.unwrap().unwrap();
    }
    assert_eq!(
        audit::verify(&app.db).await.unwrap(),
        Verification::Intact { rows: 20 }
    );
}
