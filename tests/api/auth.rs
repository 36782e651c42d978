//! Sign-in, sessions, timeouts, rate limits and the authorization matrix.

use app::domain::Role;
use app::server::auth::SecurityPolicy;
use leptos::server_fn::ServerFn;

use crate::helpers::{stderr, TestApp, TestDb, PASSWORD};
use crate::on_both_backends;

on_both_backends!(
    pages_send_visitors_to_the_sign_in_page,
    authorization_matrix,
    sign_in_sets_a_strict_cookie_and_stores_only_a_hash,
    secure_cookies_use_the_host_prefix,
    failed_sign_in_does_not_say_whether_the_user_exists,
    sign_out_ends_the_session_on_the_server,
    idle_and_absolute_timeouts_end_sessions,
    disabling_a_user_ends_their_sessions,
    failed_sign_ins_are_limited_per_user,
    failed_sign_ins_are_limited_per_address,
    behind_a_proxy_addresses_come_from_its_header,
    weaker_password_hashes_are_upgraded_at_sign_in,
    stale_sessions_and_failures_are_purged,
    sessions_and_api_tokens_do_not_open_each_other,
);

type ServerFnCase = (&'static str, &'static str, &'static str, &'static [Role]);

/// Every server function with valid arguments and the roles that may call it.
fn server_fns() -> [ServerFnCase; 19] {
    use app::server::access;
    use app::server::admin::{AddUser, DisableUser, ListUsers};
    use app::server::audit::{AuditChainStatus, ListAuditLog};
    use app::server::vendors::{
        AddVendor, MapVendorStatus, RotateVendorSecret, SaveStatusMapping, SetVendorAccounts,
        UpdateVendor, VendorDetail,
    };
    [
        (
            "system_status",
            app::server::SystemStatus::PATH,
            "{}",
            access::SYSTEM_STATUS,
        ),
        (
            "list_vendors",
            app::server::ListVendors::PATH,
            "{}",
            access::LIST_VENDORS,
        ),
        ("list_users", ListUsers::PATH, "{}", access::MANAGE_USERS),
        (
            "add_user",
            AddUser::PATH,
            r#"{"username":"newcomer","role":"support","password":"a long enough password"}"#,
            access::MANAGE_USERS,
        ),
        (
            "disable_user",
            DisableUser::PATH,
            r#"{"username":"target"}"#,
            access::MANAGE_USERS,
        ),
        (
            "vendor_detail",
            VendorDetail::PATH,
            r#"{"vendor":"acme"}"#,
            access::LIST_VENDORS,
        ),
        (
            "add_vendor",
            AddVendor::PATH,
            r#"{"vendor":"matrix","kind":"generic","base_url":"","webhook_secret":""}"#,
            access::MANAGE_VENDORS,
        ),
        (
            "update_vendor",
            UpdateVendor::PATH,
            r#"{"vendor":"acme","kind":"runa","base_url":"http://127.0.0.1:9"}"#,
            access::MANAGE_VENDORS,
        ),
        (
            "save_status_mapping",
            SaveStatusMapping::PATH,
            r#"{"vendor":"acme","mapping":[{"status":"pending","state":"pending"}]}"#,
            access::MANAGE_VENDORS,
        ),
        (
            "map_vendor_status",
            MapVendorStatus::PATH,
            r#"{"vendor":"acme","status":"on_hold","state":"pending"}"#,
            access::MANAGE_VENDORS,
        ),
        (
            "set_vendor_accounts",
            SetVendorAccounts::PATH,
            r#"{"vendor":"acme","clearing_code":"1191","clearing_name":"Clearing","payable_code":"2011","payable_name":"Payable","suspense_code":"1998","suspense_name":"Suspense"}"#,
            access::MANAGE_VENDORS,
        ),
        (
            "rotate_vendor_secret",
            RotateVendorSecret::PATH,
            r#"{"vendor":"acme","secret":"whsec_matrix_secret_1","overlap_hours":1}"#,
            access::MANAGE_VENDORS,
        ),
        (
            "list_audit_log",
            ListAuditLog::PATH,
            r#"{"actor":"","action":"","subject":"","from":"","to":"","page":0}"#,
            access::VIEW_AUDIT,
        ),
        (
            "audit_chain_status",
            AuditChainStatus::PATH,
            "{}",
            access::VIEW_AUDIT,
        ),
        // The other close functions change state; tests/api/close.rs has their matrix.
        (
            "list_close",
            app::server::close::ListClose::PATH,
            r#"{"vendor":"acme","date":"2026-12-03"}"#,
            access::VIEW_CLOSE,
        ),
        // resolve_discrepancy changes state; tests/api/queues.rs has its matrix.
        (
            "list_discrepancies",
            app::server::discrepancies::ListDiscrepancies::PATH,
            r#"{"filter":{"state":"open"}}"#,
            access::VIEW_QUEUES,
        ),
        (
            "lookup_order",
            app::server::lookup::LookupOrder::PATH,
            r#"{"query":"anything"}"#,
            access::LOOKUP_ORDERS,
        ),
        (
            "list_imports",
            app::server::imports::ListImports::PATH,
            "{}",
            access::VIEW_IMPORTS,
        ),
        (
            "reconciliation_overview",
            app::server::overview::ReconciliationOverview::PATH,
            "{}",
            access::VIEW_OVERVIEW,
        ),
    ]
}

async fn pages_send_visitors_to_the_sign_in_page(db: TestDb) {
    let app = TestApp::spawn(db).await;
    for page in ["/", "/vendors", "/audit", "/orders"] {
        let response = app.get(page).await;
        assert_eq!(response.status(), 303, "{page}");
        assert_eq!(response.headers()["location"], "/login", "{page}");
    }
    let login = app.get("/login").await;
    assert_eq!(login.status(), 200);
    let html = login.text().await.unwrap();
    for text in [
        "<label for=\"username\">Username</label>",
        "<label for=\"password\">Password</label>",
        ">Sign in</button>",
        "action=\"/auth/login\"",
    ] {
        assert!(html.contains(text), "{text} missing: {html}");
    }
    // No data leaks into the sign-in page.
    assert!(!html.contains("data-testid=\"database\""), "{html}");

    // Signed in, the sign-in page sends you home and pages render.
    let cookie = app.signed_in(Role::Support).await;
    let again = app.get_with("/login", &cookie).await;
    assert_eq!(again.status(), 303);
    assert_eq!(again.headers()["location"], "/");
    assert_eq!(app.get_with("/", &cookie).await.status(), 200);
}

async fn authorization_matrix(db: TestDb) {
    let app = TestApp::spawn(db).await;
    // Support may see the overview but not vendor configuration.
    assert!(!app::server::access::LIST_VENDORS.contains(&Role::Support));
    app.add_user("target", Role::Support).await;
    app.add_vendor("acme", "http://127.0.0.1:9", &[]).await;
    for (name, path, body, _) in server_fns() {
        let response = app.call_with(path, None, body).await;
        assert_eq!(response.status(), 401, "anonymous → {name}");
    }
    // Admin last: its successful add/disable then prove the others' calls changed nothing.
    for role in [
        Role::Support,
        Role::FinancePreparer,
        Role::FinanceApprover,
        Role::Admin,
    ] {
        let cookie = app.signed_in(role).await;
        for (name, path, body, allowed) in server_fns() {
            let response = app.call_with(path, Some(&cookie), body).await;
            let expected = if allowed.contains(&role) { 200 } else { 403 };
            let status = response.status();
            let body = response.text().await.unwrap();
            assert_eq!(status, expected, "{role} → {name}: {body}");
            if expected == 403 {
                assert!(body.contains("your role does not allow this"), "{body}");
            }
        }
    }
    let denied: i64 = app::on_db!(&app.db, pool => {
        sqlx::query_scalar("SELECT COUNT(*) FROM audit_log WHERE action = 'denied'")
            .fetch_one(pool)
            .await
    })
    .unwrap();
    // support: list_vendors, vendor_detail, the six vendor changes, list_users, add_user,
    // disable_user, list_audit_log, audit_chain_status, list_close, list_imports; the preparer
    // the six vendor changes and the five user/audit ones; the approver the six vendor changes
    // and the three user ones; the admin list_close and list_discrepancies.
    assert_eq!(denied, 15 + 11 + 9 + 2);
    // The admin's vendor changes were made, once each, by the admin alone.
    let acme = app::storage::vendors::get_vendor(&app.db, &"acme".parse().unwrap())
        .await
        .unwrap();
    assert_eq!(acme.kind, app::domain::VendorKind::Runa);
    assert_eq!(acme.status_mapping.len(), 2);
    assert_eq!(acme.active_secrets, 1);
    let changes: Vec<String> = app::on_db!(&app.db, pool => {
        sqlx::query_scalar(
            "SELECT actor FROM audit_log WHERE action IN ('vendor_add', 'vendor_set',
                 'vendor_status_mapping', 'vendor_gl_accounts', 'vendor_rotate_secret')
               AND actor <> 'test'",
        )
        .fetch_all(pool)
        .await
    })
    .unwrap();
    assert_eq!(changes, vec!["admin"; 6]);
}

async fn sign_in_sets_a_strict_cookie_and_stores_only_a_hash(db: TestDb) {
    let app = TestApp::spawn(db).await;
    app.add_user("Ana", Role::Admin).await;
    // Usernames are case-insensitive.
    let response = app.login("ana", PASSWORD).await;
    assert_eq!(response.status(), 303);
    assert_eq!(response.headers()["location"], "/");
    let set_cookie = response.headers()["set-cookie"]
        .to_str()
        .unwrap()
        .to_string();
    assert!(set_cookie.starts_with("giftrecon_session="), "{set_cookie}");
    for attribute in ["HttpOnly", "SameSite=Strict", "Path=/"] {
        assert!(set_cookie.contains(attribute), "{set_cookie}");
    }
    assert!(!set_cookie.contains("Secure"), "{set_cookie}");
    let token = set_cookie
        .split(';')
        .next()
        .unwrap()
        .trim_start_matches("giftrecon_session=")
        .to_string();
    assert_eq!(token.len(), 64);
    let ids: Vec<String> = app::on_db!(&app.db, pool => {
        sqlx::query_scalar("SELECT id FROM sessions").fetch_all(pool).await
    })
    .unwrap();
    assert_eq!(ids, vec![app::storage::sessions::session_id(&token)]);
    assert!(!ids.contains(&token));

    // A second sign-in in the same browser gets a new id, and the old one ends.
    let old_cookie = format!("giftrecon_session={token}");
    let again = app
        .client
        .post(app.url("/auth/login"))
        .header("origin", format!("http://{}", app.addr))
        .header("cookie", &old_cookie)
        .form(&[("username", "ana"), ("password", PASSWORD)])
        .send()
        .await
        .unwrap();
    assert_eq!(again.status(), 303);
    let new_cookie = again.headers()["set-cookie"]
        .to_str()
        .unwrap()
        .split(';')
        .next()
        .unwrap()
        .to_string();
    assert_ne!(new_cookie, old_cookie);
    let status = app::server::SystemStatus::PATH;
    assert_eq!(app.call(status, Some(&old_cookie)).await.status(), 401);
    assert_eq!(app.call(status, Some(&new_cookie)).await.status(), 200);
}

async fn secure_cookies_use_the_host_prefix(db: TestDb) {
    let policy = SecurityPolicy {
        secure_cookies: true,
        ..Default::default()
    };
    let app = TestApp::spawn_with(db, policy).await;
    app.add_user("ana", Role::Admin).await;
    let response = app.login("ana", PASSWORD).await;
    let set_cookie = response.headers()["set-cookie"]
        .to_str()
        .unwrap()
        .to_string();
    assert!(
        set_cookie.starts_with("__Host-giftrecon_session="),
        "{set_cookie}"
    );
    assert!(set_cookie.contains("; Secure"), "{set_cookie}");
    let cookie = set_cookie.split(';').next().unwrap();
    let status = app::server::SystemStatus::PATH;
    assert_eq!(app.call(status, Some(cookie)).await.status(), 200);
    // The unprefixed name is not accepted in its place.
    let unprefixed = cookie.trim_start_matches("__Host-");
    assert_eq!(app.call(status, Some(unprefixed)).await.status(), 401);
}

async fn failed_sign_in_does_not_say_whether_the_user_exists(db: TestDb) {
    let app = TestApp::spawn(db).await;
    app.add_user("ana", Role::Admin).await;
    let wrong_password = app.login("ana", "not the password at all").await;
    let no_such_user = app.login("nobody", "not the password at all").await;
    assert_eq!(wrong_password.status(), 401);
    assert_eq!(no_such_user.status(), 401);
    assert!(wrong_password.headers().get("set-cookie").is_none());
    let a = wrong_password.text().await.unwrap();
    let b = no_such_user.text().await.unwrap();
    // The same page but for the username typed, which is shown back.
    assert_eq!(a.replace("value=\"ana\"", "value=\"nobody\""), b);
    assert!(a.contains("Wrong username or password."), "{a}");
    assert_eq!(app.count("sessions").await, 0);
    // Oversized input is a failure like any other, and what is stored stays small.
    let huge = "x".repeat(10_000);
    assert_eq!(app.login(&huge, &huge).await.status(), 401);
    let longest: i64 = app::on_db!(&app.db, pool => {
        sqlx::query_scalar("SELECT CAST(MAX(LENGTH(username_key)) AS BIGINT) FROM login_failures")
            .fetch_one(pool)
            .await
    })
    .unwrap();
    assert!(longest <= 65, "{longest}");
}

async fn sign_out_ends_the_session_on_the_server(db: TestDb) {
    let app = TestApp::spawn(db).await;
    let cookie = app.signed_in(Role::Admin).await;
    let status = app::server::SystemStatus::PATH;
    assert_eq!(app.call(status, Some(&cookie)).await.status(), 200);
    let out = app
        .client
        .post(app.url("/auth/logout"))
        .header("origin", format!("http://{}", app.addr))
        .header("cookie", &cookie)
        .send()
        .await
        .unwrap();
    assert_eq!(out.status(), 303);
    assert_eq!(out.headers()["location"], "/login");
    assert!(out.headers()["set-cookie"]
        .to_str()
        .unwrap()
        .contains("Max-Age=0"));
    // The old cookie, replayed, no longer works anywhere.
    assert_eq!(app.call(status, Some(&cookie)).await.status(), 401);
    assert_eq!(app.get_with("/", &cookie).await.status(), 303);
}

async fn set_session_times(app: &TestApp, last_seen_ago_secs: i64, expires_in_secs: i64) {
    let now = app::storage::now_utc();
    app::on_db!(&app.db, pool => {
        sqlx::query("UPDATE sessions SET last_seen_at = $1, expires_at = $2")
            .bind(now - chrono::Duration::seconds(last_seen_ago_secs))
            .bind(now + chrono::Duration::seconds(expires_in_secs))
            .execute(pool)
            .await
            .map(|_| ())
    })
    .unwrap();
}

async fn idle_and_absolute_timeouts_end_sessions(db: TestDb) {
    let app = TestApp::spawn(db).await;
    let status = app::server::SystemStatus::PATH;
    let cookie = app.signed_in(Role::Admin).await;
    // Used 29 minutes ago: still live, and using it restarts the idle clock.
    set_session_times(&app, 29 * 60, 3600).await;
    assert_eq!(app.call(status, Some(&cookie)).await.status(), 200);
    let last_seen: chrono::DateTime<chrono::Utc> = app::on_db!(&app.db, pool => {
        sqlx::query_scalar("SELECT last_seen_at FROM sessions").fetch_one(pool).await
    })
    .unwrap();
    assert!(chrono::Utc::now() - last_seen < chrono::Duration::minutes(1));
    // Idle for 30 minutes: over.
    set_session_times(&app, 30 * 60, 3600).await;
    assert_eq!(app.call(status, Some(&cookie)).await.status(), 401);

    // Active, but past the absolute limit: over.
    let cookie = app.session("admin").await;
    set_session_times(&app, 0, 3600).await;
    assert_eq!(app.call(status, Some(&cookie)).await.status(), 200);
    set_session_times(&app, 0, -1).await;
    assert_eq!(app.call(status, Some(&cookie)).await.status(), 401);

    // A new session is created with the configured absolute limit (12 h by default).
    app.session("admin").await;
    let (created, expires): (chrono::DateTime<chrono::Utc>, chrono::DateTime<chrono::Utc>) =
        app::on_db!(&app.db, pool => {
            sqlx::query_as("SELECT created_at, expires_at FROM sessions ORDER BY created_at DESC LIMIT 1")
                .fetch_one(pool)
                .await
        })
        .unwrap();
    assert_eq!(expires - created, chrono::Duration::hours(12));
}

async fn disabling_a_user_ends_their_sessions(db: TestDb) {
    let app = TestApp::spawn(db).await;
    let status = app::server::SystemStatus::PATH;
    let ana = app.signed_in(Role::Admin).await;
    let ana_too = app.session("admin").await;
    let bo = app.signed_in(Role::Support).await;
    let out = app.test_db.cli(&["user", "disable", "admin"]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(app.call(status, Some(&ana)).await.status(), 401);
    assert_eq!(app.call(status, Some(&ana_too)).await.status(), 401);
    // Other users are untouched.
    assert_eq!(app.call(status, Some(&bo)).await.status(), 200);
    // And the disabled user cannot sign in again, with the same answer as a wrong password.
    assert_eq!(app.login("admin", PASSWORD).await.status(), 401);
    let unknown = app.test_db.cli(&["user", "disable", "nobody"]);
    assert!(!unknown.status.success());
}

async fn failed_sign_ins_are_limited_per_user(db: TestDb) {
    let app = TestApp::spawn(db).await;
    app.add_user("ana", Role::Admin).await;
    for attempt in 1..=5 {
        let response = app.login("ana", "wrong password number x").await;
        assert_eq!(response.status(), 401, "attempt {attempt}");
    }
    // Even the right password is refused now, without checking it.
    let limited = app.login("ana", PASSWORD).await;
    assert_eq!(limited.status(), 429);
    assert!(limited.headers().get("set-cookie").is_none());
    assert_eq!(app.count("sessions").await, 0);
    // Counted in the database, so every replica sees them; older failures stop counting.
    app::on_db!(&app.db, pool => {
        sqlx::query("UPDATE login_failures SET at = $1")
            .bind(app::storage::now_utc() - chrono::Duration::minutes(16))
            .execute(pool)
            .await
            .map(|_| ())
    })
    .unwrap();
    assert_eq!(app.login("ana", PASSWORD).await.status(), 303);
}

async fn failed_sign_ins_are_limited_per_address(db: TestDb) {
    let app = TestApp::spawn(db).await;
    app.add_user("ana", Role::Admin).await;
    // Guessing across many usernames from one address is limited too.
    for name in ["u1", "u2", "u3", "u4", "u5"] {
        assert_eq!(app.login(name, "guess guess guess").await.status(), 401);
    }
    assert_eq!(app.login("ana", PASSWORD).await.status(), 429);
}

async fn behind_a_proxy_addresses_come_from_its_header(db: TestDb) {
    let policy = SecurityPolicy {
        client_address_header: Some("x-forwarded-for".into()),
        ..Default::default()
    };
    let app = TestApp::spawn_with(db, policy).await;
    app.add_user("ana", Role::Admin).await;
    let login_from = |addr: &'static str, name: &'static str, password: &'static str| {
        app.client
            .post(app.url("/auth/login"))
            .header("origin", format!("http://{}", app.addr))
            // A client-supplied entry first, then what the proxy appended: the last one counts.
            .header("x-forwarded-for", format!("203.0.113.9, {addr}"))
            .form(&[("username", name), ("password", password)])
            .send()
    };
    for name in ["u1", "u2", "u3", "u4", "u5"] {
        let response = login_from("10.0.0.1", name, "guess guess guess")
            .await
            .unwrap();
        assert_eq!(response.status(), 401);
    }
    assert_eq!(
        login_from("10.0.0.1", "ana", PASSWORD)
            .await
            .unwrap()
            .status(),
        429
    );
    // Another client behind the same proxy is not locked out.
    assert_eq!(
        login_from("10.0.0.2", "ana", PASSWORD)
            .await
            .unwrap()
            .status(),
        303
    );
}

async fn weaker_password_hashes_are_upgraded_at_sign_in(db: TestDb) {
    use argon2::password_hash::{rand_core::OsRng, PasswordHasher, SaltString};
    let app = TestApp::spawn(db).await;
    let params = argon2::Params::new(8 * 1024, 1, 1, None).unwrap();
    let weak = argon2::Argon2::new(argon2::Algorithm::Argon2id, argon2::Version::V0x13, params)
        .hash_password(PASSWORD.as_bytes(), &SaltString::generate(&mut OsRng))
        .unwrap()
        .to_string();
    let ana = app::domain::Username::parse("ana").unwrap();
    app::storage::users::insert_user(
        &app.db,
        &ana,
        Role::Admin,
        &weak,
        &crate::helpers::by_test("user_add"),
    )
    .await
    .unwrap();
    assert_eq!(app.login("ana", PASSWORD).await.status(), 303);
    let stored = app::storage::users::password_hash_of(&app.db, &ana)
        .await
        .unwrap()
        .unwrap();
    assert!(
        stored.starts_with("$argon2id$v=19$m=19456,t=2,p=1$"),
        "{stored}"
    );
    assert!(app::server::password::verify(PASSWORD, &stored));
    // And the new hash works for the next sign-in.
    assert_eq!(app.login("ana", PASSWORD).await.status(), 303);
}

async fn stale_sessions_and_failures_are_purged(db: TestDb) {
    let app = TestApp::spawn(db).await;
    let live = app.signed_in(Role::Admin).await;
    let gone = app.session("admin").await;
    app.client
        .post(app.url("/auth/logout"))
        .header("origin", format!("http://{}", app.addr))
        .header("cookie", &gone)
        .send()
        .await
        .unwrap();
    assert_eq!(app.login("admin", "wrong wrong wrong").await.status(), 401);
    let now = app::storage::now_utc();
    let (sessions, failures) = app::storage::sessions::purge_stale(
        &app.db,
        now + chrono::Duration::minutes(1),
        chrono::Duration::minutes(30),
        chrono::Duration::minutes(15),
    )
    .await
    .unwrap();
    assert_eq!((sessions, failures), (1, 0));
    assert_eq!(app.count("sessions").await, 1);
    let status = app::server::SystemStatus::PATH;
    assert_eq!(app.call(status, Some(&live)).await.status(), 200);
    // Later, the failure leaves the window and the idle session times out: both go.
    let later = now + chrono::Duration::minutes(31);
    let (sessions, failures) = app::storage::sessions::purge_stale(
        &app.db,
        later,
        chrono::Duration::minutes(30),
        chrono::Duration::minutes(15),
    )
    .await
    .unwrap();
    assert_eq!((sessions, failures), (1, 1));
}

async fn sessions_and_api_tokens_do_not_open_each_other(db: TestDb) {
    let app = TestApp::spawn(db).await;
    let cookie = app.signed_in(Role::Admin).await;
    let token = app.token("checkout").await;
    // A browser session does not open the JSON API…
    let api = app
        .client
        .get(app.url("/api/v1/orders?idempotency_key=k-1"))
        .header("cookie", &cookie)
        .send()
        .await
        .unwrap();
    assert_eq!(api.status(), 401);
    // …and an API token opens neither server functions nor pages.
    let call = app
        .client
        .post(app.url(app::server::SystemStatus::PATH))
        .bearer_auth(&token)
        .header("content-type", "application/json")
        .body("{}")
        .send()
        .await
        .unwrap();
    assert_eq!(call.status(), 401);
    let page = app
        .client
        .get(app.url("/"))
        .bearer_auth(&token)
        .send()
        .await
        .unwrap();
    assert_eq!(page.status(), 303);
}
