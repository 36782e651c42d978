//! Browser-facing protections: cross-site request refusal, security headers, the sign-in
//! gate for every method, and escaping of text that came from vendors.

use app::domain::Role;
use leptos::server_fn::ServerFn;

use crate::helpers::{TestApp, TestDb, PASSWORD};
use crate::on_both_backends;

on_both_backends!(
    cross_site_requests_are_refused,
    every_response_has_security_headers,
    vendor_text_is_rendered_escaped,
    head_requests_are_gated_too,
);

async fn cross_site_requests_are_refused(db: TestDb) {
    let app = TestApp::spawn(db).await;
    let cookie = app.signed_in(Role::Admin).await;
    let path = app::server::ListVendors::PATH;
    let here = format!("http://{}", app.addr);
    let send = |origin: Option<&str>, site: Option<&str>, json: bool| {
        let mut request = app
            .client
            .post(app.url(path))
            .header("cookie", &cookie)
            .body(if json { "{}" } else { "" });
        request = request.header(
            "content-type",
            if json {
                "application/json"
            } else {
                "application/x-www-form-urlencoded"
            },
        );
        if let Some(origin) = origin {
            request = request.header("origin", origin);
        }
        if let Some(site) = site {
            request = request.header("sec-fetch-site", site);
        }
        request.send()
    };
    // A cross-site HTML form (as a browser sends it, were the cookie even attached).
    let form = send(Some("https://evil.example"), Some("cross-site"), false)
        .await
        .unwrap();
    assert_eq!(form.status(), 403);
    // A forged Origin, even with a JSON body.
    let forged = send(Some("https://evil.example"), None, true)
        .await
        .unwrap();
    assert_eq!(forged.status(), 403);
    // Sec-Fetch-Site: cross-site alone.
    let cross = send(None, Some("cross-site"), true).await.unwrap();
    assert_eq!(cross.status(), 403);
    // A same-origin form post without the JSON body or custom header.
    let simple = send(Some(&here), Some("same-origin"), false).await.unwrap();
    assert_eq!(simple.status(), 403);
    // The real app's request passes.
    let ok = send(Some(&here), Some("same-origin"), true).await.unwrap();
    assert_eq!(ok.status(), 200);
    // Server functions are POST only.
    let get = app.get_with(path, &cookie).await;
    assert!(
        get.status() == 405 || get.status() == 404,
        "{}",
        get.status()
    );

    // Sign-in and sign-out forms from another site are refused too.
    let login = app
        .client
        .post(app.url("/auth/login"))
        .header("origin", "https://evil.example")
        .form(&[("username", "admin"), ("password", PASSWORD)])
        .send()
        .await
        .unwrap();
    assert_eq!(login.status(), 403);
    let logout = app
        .client
        .post(app.url("/auth/logout"))
        .header("cookie", &cookie)
        .header("sec-fetch-site", "cross-site")
        .send()
        .await
        .unwrap();
    assert_eq!(logout.status(), 403);
    assert_eq!(app.call(path, Some(&cookie)).await.status(), 200);
}

async fn every_response_has_security_headers(db: TestDb) {
    let app = TestApp::spawn(db).await;
    let cookie = app.signed_in(Role::Admin).await;
    for response in [
        app.get("/login").await,
        app.get_with("/", &cookie).await,
        app.get("/healthz").await,
        app.get("/no-such-page").await,
    ] {
        let headers = response.headers().clone();
        assert_eq!(headers["x-content-type-options"], "nosniff");
        assert_eq!(headers["referrer-policy"], "same-origin");
        assert_eq!(headers["x-frame-options"], "DENY");
        let csp = headers["content-security-policy"]
            .to_str()
            .unwrap()
            .to_string();
        assert!(csp.contains("frame-ancestors 'none'"), "{csp}");
        assert!(
            csp.contains("script-src 'self' 'wasm-unsafe-eval' 'nonce-"),
            "{csp}"
        );
        assert!(!csp.contains("unsafe-inline"), "{csp}");
    }
    // The page's inline scripts carry this response's nonce, and it changes per response.
    let page = app.get_with("/", &cookie).await;
    assert_eq!(page.headers()["cache-control"], "no-store");
    let csp = page.headers()["content-security-policy"]
        .to_str()
        .unwrap()
        .to_string();
    let nonce = csp
        .split("'nonce-")
        .nth(1)
        .unwrap()
        .split('\'')
        .next()
        .unwrap()
        .to_string();
    let html = page.text().await.unwrap();
    assert!(
        html.contains(&format!("nonce=\"{nonce}\"")),
        "{nonce}: {html}"
    );
    let inline_scripts = html.matches("<script").count();
    let with_nonce = html.matches(&format!("<script nonce=\"{nonce}\"")).count()
        + html.matches(&format!("nonce=\"{nonce}\">")).count();
    assert!(inline_scripts > 0 && with_nonce > 0, "{html}");
    let other = app.get_with("/", &cookie).await;
    assert!(!other.headers()["content-security-policy"]
        .to_str()
        .unwrap()
        .contains(&nonce));
}

async fn vendor_text_is_rendered_escaped(db: TestDb) {
    let app = TestApp::spawn(db).await;
    app.add_vendor("acme", "https://api.acme.example", &[])
        .await;
    // A base URL as a hostile file or vendor could deliver it, written straight to the table.
    let hostile = "https://x.example/<script>alert(1)</script>\"><img src=x onerror=alert(2)>";
    app::on_db!(&app.db, pool => {
        sqlx::query("UPDATE vendors SET base_url = $1").bind(hostile).execute(pool).await.map(|_| ())
    })
    .unwrap();
    let cookie = app.signed_in(Role::Admin).await;
    let html = app
        .get_with("/vendors", &cookie)
        .await
        .text()
        .await
        .unwrap();
    assert!(!html.contains("<script>alert(1)"), "{html}");
    assert!(!html.contains("<img src=x"), "{html}");
    assert!(
        html.contains("&lt;script&gt;alert(1)&lt;/script&gt;"),
        "{html}"
    );
}

async fn head_requests_are_gated_too(db: TestDb) {
    let app = TestApp::spawn(db).await;
    let head = app.client.head(app.url("/vendors")).send().await.unwrap();
    assert_eq!(head.status(), 303);
}
