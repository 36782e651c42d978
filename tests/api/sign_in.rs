//! The sign-in form without JavaScript, and what a flood of guesses leaves in the audit trail.

use app::domain::Role;
use app::server::auth::SecurityPolicy;
use app::storage::audit::{self, AuditEvent, Verification};

use crate::audit_atomic::rows_of;
use crate::helpers::{TestApp, TestDb, PASSWORD};
use crate::on_both_backends;

on_both_backends!(
    a_failed_sign_in_shows_the_form_again_with_the_username,
    a_flood_of_guesses_is_audited_once_per_window,
);

/// The `value` of the username field of a sign-in page.
fn username_value(html: &str) -> Option<&str> {
    let field = &html[html.find("<input id=\"username\"")?..];
    let field = &field[..field.find('>')?];
    let value = &field[field.find("value=\"")? + 7..];
    Some(&value[..value.find('"')?])
}

async fn a_failed_sign_in_shows_the_form_again_with_the_username(db: TestDb) {
    let app = TestApp::spawn(db).await;
    app.add_user("ana", Role::Admin).await;
    let wrong = app.login("ana", "not the password").await;
    assert_eq!(wrong.status(), 401);
    assert!(wrong.headers()["content-type"]
        .to_str()
        .unwrap()
        .starts_with("text/html"));
    let html = wrong.text().await.unwrap();
    // The message, and a form that posts to the same place, ready for the password.
    for text in [
        "role=\"alert\"",
        "Wrong username or password.",
        "<form method=\"post\" action=\"/auth/login\"",
        "<label for=\"username\">Username</label>",
        "<label for=\"password\">Password</label>",
        ">Sign in</button>",
    ] {
        assert!(html.contains(text), "{text} missing: {html}");
    }
    assert_eq!(username_value(&html), Some("ana"));
    assert!(
        !html.contains("not the password"),
        "the password came back: {html}"
    );

    // A user who does not exist: the same message and form, for their name.
    let nobody = app.login("nobody", "not the password").await;
    assert_eq!(nobody.status(), 401);
    let other = nobody.text().await.unwrap();
    assert_eq!(username_value(&other), Some("nobody"));
    assert_eq!(html.replace("value=\"ana\"", "value=\"nobody\""), other);

    // Whatever is typed is shown back as text, never as markup.
    let hostile = "\"><script>alert(1)</script>";
    let page = app.login(hostile, "x").await.text().await.unwrap();
    assert!(!page.contains("<script>alert(1)"), "{page}");
    assert_eq!(
        username_value(&page),
        Some("&quot;&gt;&lt;script&gt;alert(1)&lt;/script&gt;")
    );

    // The form on that page signs in.
    assert_eq!(app.login("ana", PASSWORD).await.status(), 303);

    // Locked out: the same form, the lockout message, the username kept.
    for _ in 0..5 {
        app.login("ana", "wrong again and again").await;
    }
    let locked = app.login("ana", PASSWORD).await;
    assert_eq!(locked.status(), 429);
    let html = locked.text().await.unwrap();
    assert!(html.contains("Too many failed sign-ins"), "{html}");
    assert_eq!(username_value(&html), Some("ana"));
}

async fn a_flood_of_guesses_is_audited_once_per_window(db: TestDb) {
    let policy = SecurityPolicy {
        client_address_header: Some("x-forwarded-for".into()),
        ..Default::default()
    };
    let app = TestApp::spawn_with(db, policy).await;
    app.add_user("ana", Role::Admin).await;
    let guess = |addr: &'static str, name: String| {
        let request = app
            .client
            .post(app.url("/auth/login"))
            .header("origin", format!("http://{}", app.addr))
            .header("x-forwarded-for", addr)
            .form(&[
                ("username", name.as_str()),
                ("password", "guess guess guess"),
            ]);
        async move { request.send().await.unwrap().status() }
    };
    // One address guessing ana's password 40 times: five refusals are each recorded, then the
    // limiter engages and the rest make a single row.
    for attempt in 0..40 {
        let expected = if attempt < 5 { 401 } else { 429 };
        assert_eq!(guess("10.0.0.1", "ana".into()).await, expected, "{attempt}");
    }
    assert_eq!(rows_of(&app.db, "login_failed").await, 5);
    assert_eq!(rows_of(&app.db, "login_rate_limited").await, 1);
    // The same address spreading its guesses over other names: still one row for it.
    for n in 0..20 {
        assert_eq!(guess("10.0.0.1", format!("user{n}")).await, 429);
    }
    assert_eq!(rows_of(&app.db, "login_rate_limited").await, 1);
    // Other addresses guessing ana's password: refused by the per-user limit, one row for ana.
    for n in 0..20 {
        let addr: &'static str = Box::leak(format!("10.0.1.{n}").into_boxed_str());
        assert_eq!(guess(addr, "ana".into()).await, 429);
    }
    assert_eq!(rows_of(&app.db, "login_rate_limited").await, 1);
    assert_eq!(rows_of(&app.db, "login_failed").await, 5);
    // A second address reaching the limit on other names is a different client: its own row.
    for n in 0..10 {
        let expected = if n < 5 { 401 } else { 429 };
        assert_eq!(guess("10.0.0.2", format!("x{n}")).await, expected);
    }
    assert_eq!(rows_of(&app.db, "login_rate_limited").await, 2);

    // A new window records again, once: what a window is, is the limiter's.
    let event = AuditEvent::new("address:10.0.0.1", "login_rate_limited", "user:ana");
    let window_start = app::storage::now_utc() - chrono::Duration::minutes(15);
    assert!(
        !audit::record_once_since(&app.db, &event, window_start, true, true)
            .await
            .unwrap()
    );
    let next_window = app::storage::now_utc();
    assert!(
        audit::record_once_since(&app.db, &event, next_window, true, false)
            .await
            .unwrap()
    );
    assert!(
        !audit::record_once_since(&app.db, &event, next_window, true, false)
            .await
            .unwrap()
    );
    assert_eq!(rows_of(&app.db, "login_rate_limited").await, 3);
    assert!(matches!(
        audit::verify(&app.db).await.unwrap(),
        Verification::Intact { .. }
    ));
}
