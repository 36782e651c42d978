//! The Audit log page's server functions: filters and pages computed on the server, and the
//! chain's verification status.

use app::domain::Role;
use app::server::audit::{AuditChainStatus, AuditPage, ChainStatus, ListAuditLog};
use app::storage::audit::{self, AuditEvent};
use leptos::server_fn::ServerFn;
use serde_json::{json, Value};

use crate::helpers::{TestApp, TestDb};
use crate::on_both_backends;

on_both_backends!(
    audit_log_filters_and_pages_on_the_server,
    the_chain_status_is_shown_and_names_a_broken_row,
);

fn filters(actor: &str, action: &str, subject: &str, from: &str, to: &str, page: u32) -> Value {
    json!({"actor": actor, "action": action, "subject": subject, "from": from, "to": to, "page": page})
}

async fn page(app: &TestApp, cookie: &str, body: Value) -> AuditPage {
    let response = app
        .call_with(ListAuditLog::PATH, Some(cookie), &body.to_string())
        .await;
    let status = response.status();
    let text = response.text().await.unwrap();
    assert_eq!(status, 200, "{body}: {text}");
    serde_json::from_str(&text).unwrap()
}

async fn audit_log_filters_and_pages_on_the_server(db: TestDb) {
    let app = TestApp::spawn(db).await;
    for n in 0..60 {
        let event = AuditEvent::new("robot", "bulk_step", format!("item:{n}"));
        audit::record(&app.db, &event).await.unwrap();
    }
    for (actor, action, subject) in [
        ("ana", "vendor_set", "vendor:acme"),
        ("ben", "vendor_set", "vendor:acme-eu"),
        ("ana", "vendor_rotate_secret", "vendor:ACME"),
        ("ana", "user_add", "user:50%_off"),
        ("ana", "user_add", "user:50xxoff"),
    ] {
        audit::record(&app.db, &AuditEvent::new(actor, action, subject))
            .await
            .unwrap();
    }
    let approver = app.signed_in(Role::FinanceApprover).await;
    let today = chrono::Utc::now().date_naive();
    let tomorrow = today.succ_opt().unwrap().to_string();
    let yesterday = today.pred_opt().unwrap().to_string();
    let today = today.to_string();

    let subjects =
        |p: &AuditPage| -> Vec<String> { p.rows.iter().map(|r| r.subject.clone()).collect() };
    let found = page(&app, &approver, filters("", "vendor_set", "", "", "", 0)).await;
    assert_eq!(subjects(&found), vec!["vendor:acme-eu", "vendor:acme"]);
    assert!(!found.has_more);
    let found = page(&app, &approver, filters("ana", "vendor_set", "", "", "", 0)).await;
    assert_eq!(subjects(&found), vec!["vendor:acme"]);
    // Subject: a substring, any case; wildcards are taken literally.
    let found = page(&app, &approver, filters("ana", "", "Acme", "", "", 0)).await;
    assert_eq!(subjects(&found), vec!["vendor:ACME", "vendor:acme"]);
    let found = page(&app, &approver, filters("", "", "%_", "", "", 0)).await;
    assert_eq!(subjects(&found), vec!["user:50%_off"]);
    // Days are whole UTC days, both ends included.
    let found = page(&app, &approver, filters("ana", "", "", &today, &today, 0)).await;
    assert_eq!(found.rows.len(), 4);
    let found = page(
        &app,
        &approver,
        filters("ana", "", "", &yesterday, &yesterday, 0),
    )
    .await;
    assert!(found.rows.is_empty());
    let found = page(&app, &approver, filters("ana", "", "", &tomorrow, "", 0)).await;
    assert!(found.rows.is_empty());
    let found = page(&app, &approver, filters("ana", "", "", "", &yesterday, 0)).await;
    assert!(found.rows.is_empty());

    // Pages of 50, newest first, without overlap or gaps.
    let first = page(&app, &approver, filters("robot", "", "", "", "", 0)).await;
    let second = page(&app, &approver, filters("robot", "", "", "", "", 1)).await;
    assert_eq!((first.rows.len(), first.has_more), (50, true));
    assert_eq!(
        (second.rows.len(), second.has_more, second.page),
        (10, false, 1)
    );
    let ids: Vec<i64> = first
        .rows
        .iter()
        .chain(&second.rows)
        .map(|r| r.id)
        .collect();
    assert!(ids.windows(2).all(|w| w[0] > w[1]), "{ids:?}");
    assert_eq!(first.rows[0].subject, "item:59");
    assert_eq!(second.rows[9].subject, "item:0");

    // Bad filters are refused naming the field.
    for (body, field) in [
        (
            filters("", "", "", "yesterday", "", 0),
            "from: \"yesterday\" is not a date",
        ),
        (
            filters("", "", "", "", "2026-13-01", 0),
            "to: \"2026-13-01\" is not a date",
        ),
        (filters("", "", "", &tomorrow, &today, 0), "to: "),
    ] {
        let response = app
            .call_with(ListAuditLog::PATH, Some(&approver), &body.to_string())
            .await;
        assert_eq!(response.status(), 400, "{body}");
        let text = response.text().await.unwrap();
        assert!(text.contains(field), "{body}: {text}");
    }

    // Preparers and support do not read the trail.
    for role in [Role::FinancePreparer, Role::Support] {
        let cookie = app.signed_in(role).await;
        let response = app
            .call_with(
                ListAuditLog::PATH,
                Some(&cookie),
                &filters("", "", "", "", "", 0).to_string(),
            )
            .await;
        assert_eq!(response.status(), 403, "{role}");
        assert_eq!(
            app.call(AuditChainStatus::PATH, Some(&cookie))
                .await
                .status(),
            403
        );
    }
}

async fn chain_status(app: &TestApp, cookie: &str) -> ChainStatus {
    let response = app.call(AuditChainStatus::PATH, Some(cookie)).await;
    assert_eq!(response.status(), 200);
    response.json::<ChainStatus>().await.unwrap()
}

async fn the_chain_status_is_shown_and_names_a_broken_row(db: TestDb) {
    let app = TestApp::spawn(db).await;
    let admin = app.signed_in(Role::Admin).await;
    let rows = app.count("audit_log").await as u64;
    let intact = chain_status(&app, &admin).await;
    assert_eq!(intact, ChainStatus::Intact { rows });
    assert_eq!(intact.sentence(), format!("Chain intact: {rows} rows"));
    // The page says so at the top.
    let html = app.get_with("/audit", &admin).await.text().await.unwrap();
    assert!(html.contains("Chain intact: "), "{html}");

    // Someone with the database owner's rights edits a row: the status names it.
    let victim = audit::record(
        &app.db,
        &AuditEvent::new("ana", "vendor_set", "vendor:acme"),
    )
    .await
    .unwrap();
    audit::record(
        &app.db,
        &AuditEvent::new("ana", "vendor_set", "vendor:beta"),
    )
    .await
    .unwrap();
    crate::audit::disable_guards(&app).await;
    app::on_db!(&app.db, pool => {
        sqlx::query("UPDATE audit_log SET actor = 'mallory' WHERE id = $1")
            .bind(victim)
            .execute(pool)
            .await
            .map(|_| ())
    })
    .unwrap();
    let broken = chain_status(&app, &admin).await;
    match &broken {
        ChainStatus::Broken { id, reason } => {
            assert_eq!(*id, victim);
            assert!(reason.contains("edited"), "{reason}");
        }
        other => panic!("{other:?}"),
    }
    assert!(broken
        .sentence()
        .starts_with(&format!("Chain broken at row #{victim}: ")));
    let html = app.get_with("/audit", &admin).await.text().await.unwrap();
    assert!(
        html.contains(&format!("Chain broken at row #{victim}")),
        "{html}"
    );
}
