//! Admins manage users through server functions, with the same rules as the CLI.

use app::domain::Role;
use app::server::admin::{AddUser, DisableUser, ListUsers, UserView};
use app::server::audit::{AuditPage, ListAuditLog};
use leptos::server_fn::ServerFn;

use crate::helpers::{TestApp, TestDb};
use crate::on_both_backends;

on_both_backends!(admins_add_and_disable_users, the_audit_page_shows_the_trail);

async fn admins_add_and_disable_users(db: TestDb) {
    let app = TestApp::spawn(db).await;
    let admin = app.signed_in(Role::Admin).await;
    let add = |body: &'static str| app.call_with(AddUser::PATH, Some(&admin), body);
    let ok =
        add(r#"{"username":"Fiona","role":"finance_approver","password":"fiona's long password"}"#)
            .await;
    assert_eq!(ok.status(), 200, "{}", ok.text().await.unwrap());
    // The new user can sign in.
    assert_eq!(
        app.login("fiona", "fiona's long password").await.status(),
        303
    );
    let fiona = app.session_with("fiona", "fiona's long password").await;

    for (body, message) in [
        (
            r#"{"username":"fiona","role":"support","password":"another long password"}"#,
            "already exists",
        ),
        (
            r#"{"username":"sam","role":"support","password":"short"}"#,
            "at least 12 characters",
        ),
        (
            r#"{"username":"bad name","role":"support","password":"a long enough password"}"#,
            "contains a space",
        ),
    ] {
        let response = add(body).await;
        assert_eq!(response.status(), 400, "{body}");
        let text = response.text().await.unwrap();
        assert!(text.contains(message), "{body}: {text}");
    }
    let unknown_role =
        add(r#"{"username":"sam","role":"root","password":"a long enough password"}"#).await;
    // Refused by argument decoding (Leptos answers those itself), and nothing is created.
    assert_ne!(unknown_role.status(), 200);
    assert_eq!(app.count("users").await, 2);

    // Admins cannot lock themselves out.
    let myself = app
        .call_with(DisableUser::PATH, Some(&admin), r#"{"username":"ADMIN"}"#)
        .await;
    assert_eq!(myself.status(), 400);
    let disabled = app
        .call_with(DisableUser::PATH, Some(&admin), r#"{"username":"fiona"}"#)
        .await;
    assert_eq!(disabled.status(), 200);
    assert_eq!(
        app.call(app::server::SystemStatus::PATH, Some(&fiona))
            .await
            .status(),
        401
    );
    let users: Vec<UserView> = app
        .call(ListUsers::PATH, Some(&admin))
        .await
        .json()
        .await
        .unwrap();
    let fiona_row = users.iter().find(|u| u.username == "Fiona").unwrap();
    assert!(fiona_row.disabled);
    assert_eq!(fiona_row.role, Role::FinanceApprover);

    let rows = app::storage::audit::recent(&app.db, 100).await.unwrap();
    let by_admin: Vec<&str> = rows
        .iter()
        .filter(|r| r.actor == "admin" && r.action.starts_with("user_"))
        .map(|r| r.action.as_str())
        .collect();
    assert_eq!(by_admin, ["user_disable", "user_add"]);
    assert!(!format!("{rows:?}").contains("fiona's long password"));
}

async fn the_audit_page_shows_the_trail(db: TestDb) {
    let app = TestApp::spawn(db).await;
    let approver = app.signed_in(Role::FinanceApprover).await;
    let page: AuditPage = app
        .call_with(
            ListAuditLog::PATH,
            Some(&approver),
            r#"{"actor":"","action":"","subject":"","from":"","to":"","page":0}"#,
        )
        .await
        .json()
        .await
        .unwrap();
    assert!(page
        .rows
        .iter()
        .any(|r| r.action == "login" && r.actor == "finance_approver"));
    let html = app
        .get_with("/audit", &approver)
        .await
        .text()
        .await
        .unwrap();
    assert!(html.contains("data-testid=\"audit-log\""), "{html}");
    assert!(html.contains("user:finance_approver"), "{html}");
}
