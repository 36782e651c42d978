use crate::helpers::{TestApp, TestDb};
use crate::on_both_backends;

on_both_backends!(
    health_and_readiness,
    readiness_fails_when_the_database_is_gone,
    metrics_are_prometheus_text,
    shell_is_server_rendered_with_navigation,
    unknown_pages_are_404,
    server_functions_answer_json,
);

async fn health_and_readiness(db: TestDb) {
    let app = TestApp::spawn(db).await;
    let health = app.get("/healthz").await;
    assert_eq!(health.status(), 200);
    assert_eq!(health.text().await.unwrap(), "ok\n");
    let ready = app.get("/readyz").await;
    assert_eq!(ready.status(), 200);
}

async fn readiness_fails_when_the_database_is_gone(db: TestDb) {
    let app = TestApp::spawn(db).await;
    app.db.close().await;
    let ready = app.get("/readyz").await;
    assert_eq!(ready.status(), 503);
    assert_eq!(ready.text().await.unwrap(), "database unavailable\n");
    // The process itself is still healthy.
    assert_eq!(app.get("/healthz").await.status(), 200);
}

async fn metrics_are_prometheus_text(db: TestDb) {
    let app = TestApp::spawn(db).await;
    app.get("/healthz").await;
    let metrics = app.get("/metrics").await;
    assert_eq!(metrics.status(), 200);
    assert!(metrics.headers()["content-type"]
        .to_str()
        .unwrap()
        .starts_with("text/plain"));
    let body = metrics.text().await.unwrap();
    assert!(
        body.contains("# TYPE giftrecon_http_requests_total counter"),
        "{body}"
    );
    assert!(
        body.lines()
            .any(|l| l.starts_with("giftrecon_http_requests_total{")
                && l.contains("route=\"/healthz\"")
                && l.contains("status=\"200\"")),
        "{body}"
    );
    assert!(
        body.contains("giftrecon_http_request_duration_seconds_bucket"),
        "{body}"
    );
}

async fn shell_is_server_rendered_with_navigation(db: TestDb) {
    let app = TestApp::spawn(db).await;
    let cookie = app.signed_in(app::domain::Role::Support).await;
    let page = app.get_with("/", &cookie).await;
    assert_eq!(page.status(), 200);
    let html = page.text().await.unwrap();
    for label in [
        "Overview",
        "Discrepancies",
        "Daily close",
        "Orders",
        "Imports",
        "Vendors",
        "Audit log",
    ] {
        assert!(
            html.contains(&format!(">{label}</a>")),
            "no nav link {label}: {html}"
        );
    }
    // Server-rendered, not yet hydrated; the hydration script is referenced.
    assert!(html.contains("data-hydrated=\"false\""), "{html}");
    assert!(html.contains("/pkg/giftrecon.js"), "{html}");
    // The overview's data was rendered on the server, and the nav shows who is signed in.
    assert!(html.contains("data-testid=\"database\""), "{html}");
    assert!(html.contains("Sign out"), "{html}");
    assert!(html.contains("data-testid=\"whoami\""), "{html}");
}

async fn unknown_pages_are_404(db: TestDb) {
    let app = TestApp::spawn(db).await;
    let page = app.get("/no-such-page").await;
    assert_eq!(page.status(), 404);
    assert!(page.text().await.unwrap().contains("Page not found"));
}

async fn server_functions_answer_json(db: TestDb) {
    use leptos::server_fn::ServerFn;
    let app = TestApp::spawn(db).await;
    app.test_db
        .cli(&[
            "vendor",
            "add",
            "acme",
            "--webhook-secret",
            "whsec_test_123",
        ])
        .status
        .success()
        .then_some(())
        .expect("vendor add");
    let cookie = app.signed_in(app::domain::Role::FinancePreparer).await;
    let response = app
        .call(app::server::ListVendors::PATH, Some(&cookie))
        .await;
    assert_eq!(response.status(), 200);
    let body = response.text().await.unwrap();
    let vendors: Vec<app::server::VendorView> = serde_json::from_str(&body).unwrap();
    assert_eq!(vendors.len(), 1);
    assert_eq!(vendors[0].id, "acme");
    assert_eq!(vendors[0].active_secrets, 1);
    assert!(!body.contains("whsec_test_123"), "secret leaked: {body}");

    let summary = app
        .call(app::server::SystemStatus::PATH, Some(&cookie))
        .await
        .json::<app::server::InstallationSummary>()
        .await
        .unwrap();
    assert_eq!(summary.vendors, 1);
    let expected = match app.db.backend() {
        app::storage::Backend::Sqlite => "SQLite",
        app::storage::Backend::Postgres => "PostgreSQL",
    };
    assert_eq!(summary.database, expected);
}
