//! Browser security at the edge: sign-in and sign-out routes, the session layer, cross-site
//! request checks, the sign-in gate for pages, and the security headers of every response.
//!
//! API tokens (`/api/v1`) are separate: they are checked by the API itself and never open a
//! browser session, and a session cookie never opens the API.

use std::collections::HashSet;
use std::net::SocketAddr;
use std::sync::Arc;

use app::server::auth::{self, CspNonce, LoginError, SecurityPolicy};
use app::server::AppState;
use app::storage::audit::AuditEvent;
use app::storage::sessions::{self, SessionUser};
use app::storage::{now_utc, Db};
use axum::extract::{ConnectInfo, FromRequest, Request, State};
use axum::http::{header, HeaderMap, HeaderValue, Method, StatusCode};
use axum::middleware::Next;
use axum::response::{Html, IntoResponse, Redirect, Response};
use axum::routing::post;
use axum::{Form, Router};
use base64::Engine;
use rand::RngCore;
use serde::Deserialize;

/// The sign-in page; every other page sends visitors without a session here.
pub const LOGIN_PAGE: &str = "/login";

/// Where the dashboard's downloads live (`GET /export/…`, session-authenticated).
const EXPORTS: &str = "/export/";
/// Where the dashboard uploads files (`POST /upload/…`, session-authenticated and CSRF-checked
/// like server functions).
const UPLOADS: &str = "/upload/";

/// What the guard layer needs to know about the application.
#[derive(Clone)]
pub struct Guard {
    db: Db,
    policy: SecurityPolicy,
    /// Paths of the Leptos server functions (POST only, session and CSRF checked).
    server_fns: Arc<HashSet<String>>,
    /// Paths of the dashboard's pages (sign-in required, except the sign-in page).
    pages: Arc<HashSet<String>>,
}

impl Guard {
    pub fn new(state: &AppState, pages: impl IntoIterator<Item = String>) -> Guard {
        Guard {
            db: state.db.clone(),
            policy: state.security.clone(),
            server_fns: Arc::new(
                leptos::server_fn::axum::server_fn_paths()
                    .map(|(path, _)| path.to_string())
                    .collect(),
            ),
            pages: Arc::new(pages.into_iter().collect()),
        }
    }
}

pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/auth/login", post(login))
        .route("/auth/logout", post(logout))
}

/// The layer in front of everything: security headers always; for state-changing browser
/// requests the cross-site checks; the session behind the cookie; the sign-in gate for pages.
pub async fn guard(State(guard): State<Guard>, mut request: Request, next: Next) -> Response {
    let nonce = new_nonce();
    request.extensions_mut().insert(CspNonce(nonce.clone()));
    let (mut response, signed_in) = match check(&guard, &mut request).await {
        Ok(()) => {
            let signed_in = request.extensions().get::<SessionUser>().is_some();
            (next.run(request).await, signed_in)
        }
        Err(refusal) => (refusal, false),
    };
    add_security_headers(response.headers_mut(), &nonce);
    // What a signed-in user sees is theirs: no shared or back-button cache keeps it.
    if signed_in {
        response
            .headers_mut()
            .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    }
    response
}

async fn check(guard: &Guard, request: &mut Request) -> Result<(), Response> {
    let path = request.uri().path().to_string();
    let is_server_fn = guard.server_fns.contains(&path);
    let is_auth_route = path.starts_with("/auth/");
    let is_page = guard.pages.contains(&path);
    // The dashboard's own HTTP routes: downloads (GET) and file uploads (POST, like a server
    // function: same-origin and preflighted only).
    let is_export = path.starts_with(EXPORTS);
    let is_upload = path.starts_with(UPLOADS);
    let changes_state = !matches!(
        *request.method(),
        Method::GET | Method::HEAD | Method::OPTIONS
    );
    // A download is a read, but an audited one: another site may not start it either (the
    // SameSite=Strict cookie already keeps the session out of cross-site requests).
    if (changes_state && (is_server_fn || is_auth_route || is_upload)) || is_export {
        if let Err(reason) = same_origin(request.headers()) {
            tracing::warn!(%path, reason, "cross-site request refused");
            return Err(forbidden(reason));
        }
        if (is_server_fn || is_upload) && !preflighted(request.headers()) {
            tracing::warn!(%path, "call without a JSON body or X-Requested-With refused");
            return Err(forbidden(
                "server functions take application/json (or an X-Requested-With header)",
            ));
        }
    }
    if !(is_server_fn || is_auth_route || is_page || is_export || is_upload) {
        return Ok(());
    }
    if let Some(user) = session_of(guard, request.headers()).await? {
        request.extensions_mut().insert(user);
    }
    let signed_in = request.extensions().get::<SessionUser>().is_some();
    if matches!(*request.method(), Method::GET | Method::HEAD) && is_page {
        if path == LOGIN_PAGE && signed_in {
            return Err(Redirect::to("/").into_response());
        }
        if path != LOGIN_PAGE && !signed_in {
            return Err(Redirect::to(LOGIN_PAGE).into_response());
        }
    }
    Ok(())
}

/// Refuses requests a browser marks as coming from another site, or whose Origin is not this
/// host. Requests without these headers (non-browser clients) pass: they carry no ambient
/// cookies from a victim's browser.
fn same_origin(headers: &HeaderMap) -> Result<(), &'static str> {
    if let Some(site) = headers.get("sec-fetch-site") {
        if !matches!(site.to_str(), Ok("same-origin") | Ok("none")) {
            return Err("cross-site request refused");
        }
    }
    if let Some(origin) = headers.get(header::ORIGIN) {
        let host = headers.get(header::HOST).and_then(|h| h.to_str().ok());
        let origin_host = origin
            .to_str()
            .ok()
            .and_then(|o| o.split_once("://"))
            .map(|(_, authority)| authority.trim_end_matches('/'));
        match (origin_host, host) {
            (Some(o), Some(h)) if o.eq_ignore_ascii_case(h) => {}
            _ => return Err("request from another origin refused"),
        }
    }
    Ok(())
}

/// Whether the request carries something a cross-site page cannot send without a CORS
/// preflight: a JSON content type or an `X-Requested-With` header.
fn preflighted(headers: &HeaderMap) -> bool {
    let json = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|ct| {
            ct.split(';')
                .next()
                .is_some_and(|m| m.trim().eq_ignore_ascii_case("application/json"))
        });
    json || headers.contains_key("x-requested-with")
}

fn forbidden(reason: &'static str) -> Response {
    (StatusCode::FORBIDDEN, format!("{reason}\n")).into_response()
}

fn session_token<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(key, _)| *key == name)
        .map(|(_, value)| value)
}

async fn session_of(guard: &Guard, headers: &HeaderMap) -> Result<Option<SessionUser>, Response> {
    let Some(token) = session_token(headers, guard.policy.cookie_name()) else {
        return Ok(None);
    };
    sessions::authenticate(&guard.db, token, now_utc(), guard.policy.idle())
        .await
        .map_err(|err| {
            tracing::error!(error = %err, "cannot check a session");
            (StatusCode::SERVICE_UNAVAILABLE, "sessions unavailable\n").into_response()
        })
}

fn new_nonce() -> String {
    let mut bytes = [0u8; 16];
    rand::rngs::OsRng.fill_bytes(&mut bytes);
    base64::engine::general_purpose::STANDARD.encode(bytes)
}

fn add_security_headers(headers: &mut HeaderMap, nonce: &str) {
    let csp = format!(
        "default-src 'self'; script-src 'self' 'wasm-unsafe-eval' 'nonce-{nonce}'; \
         style-src 'self'; img-src 'self' data:; connect-src 'self'; object-src 'none'; \
         base-uri 'none'; form-action 'self'; frame-ancestors 'none'"
    );
    let set = |headers: &mut HeaderMap, name: &'static str, value: &str| {
        if let Ok(value) = HeaderValue::from_str(value) {
            headers.insert(name, value);
        }
    };
    set(headers, "content-security-policy", &csp);
    set(headers, "x-content-type-options", "nosniff");
    set(headers, "referrer-policy", "same-origin");
    set(headers, "x-frame-options", "DENY");
}

#[derive(Deserialize)]
pub struct LoginForm {
    username: String,
    password: String,
}

/// POST /auth/login (form): a new session and 303 to the overview; otherwise 401 or 429 with
/// the sign-in form again, saying why.
#[tracing::instrument(skip_all)]
async fn login(State(state): State<AppState>, request: Request) -> Response {
    let client = client_address(&state.security, &request);
    // A session id never survives a sign-in: whatever session the browser had ends here.
    if let Some(old) = request.extensions().get::<SessionUser>() {
        let _ = sessions::revoke(&state.db, &old.session_id, None).await;
    }
    let form = match Form::<LoginForm>::from_request(request, &()).await {
        Ok(Form(form)) => form,
        Err(rejection) => return rejection.into_response(),
    };
    match auth::login(
        &state.db,
        &state.security,
        &form.username,
        &form.password,
        &client,
    )
    .await
    {
        Ok((token, user)) => {
            tracing::info!(user = %user.username, "signed in");
            (
                StatusCode::SEE_OTHER,
                [
                    (header::SET_COOKIE, state.security.session_cookie(&token)),
                    (header::LOCATION, "/".to_string()),
                    (header::CACHE_CONTROL, "no-store".to_string()),
                ],
            )
                .into_response()
        }
        Err(err) => {
            let status = match &err {
                LoginError::Invalid => StatusCode::UNAUTHORIZED,
                LoginError::RateLimited => StatusCode::TOO_MANY_REQUESTS,
                LoginError::Internal(reason) => {
                    tracing::error!(%reason, "sign-in failed");
                    StatusCode::INTERNAL_SERVER_ERROR
                }
            };
            let message = match err {
                LoginError::Internal(_) => "Sign-in is unavailable; try again later.".to_string(),
                other => format!("{}.", capitalize(&other.to_string())),
            };
            (status, sign_in_again_page(&message, &form.username)).into_response()
        }
    }
}

/// The client's address for rate limiting: the rightmost entry of the configured proxy header
/// (what our own proxy appended), else the TCP peer.
fn client_address(policy: &SecurityPolicy, request: &Request) -> String {
    let from_proxy = policy.client_address_header.as_deref().and_then(|name| {
        request
            .headers()
            .get_all(name)
            .iter()
            .filter_map(|v| v.to_str().ok())
            .flat_map(|v| v.split(','))
            .map(str::trim)
            .rfind(|v| !v.is_empty())
            .map(|v| v.chars().take(64).collect::<String>())
    });
    from_proxy.unwrap_or_else(|| {
        request
            .extensions()
            .get::<ConnectInfo<SocketAddr>>()
            .map(|ConnectInfo(addr)| addr.ip().to_string())
            .unwrap_or_else(|| "unknown".into())
    })
}

fn capitalize(text: &str) -> String {
    let mut chars = text.chars();
    match chars.next() {
        Some(first) => first.to_uppercase().chain(chars).collect(),
        None => String::new(),
    }
}

/// The sign-in form again after a failed form sign-in (it works without JavaScript): the
/// message, which is one of ours and never says whether the user exists, and the username as
/// typed (escaped), so only the password needs typing again.
fn sign_in_again_page(message: &str, username: &str) -> Html<String> {
    let username: String = username.chars().take(MAX_ECHOED_USERNAME).collect();
    let username = escape_html(&username);
    Html(format!(
        "<!DOCTYPE html><html lang=\"en\"><head><meta charset=\"utf-8\">\
         <meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\
         <title>Sign in · giftrecon</title>\
         <link rel=\"stylesheet\" href=\"/pkg/giftrecon.css\"></head><body><main class=\"content\">\
         <h1>Sign in</h1><p class=\"notice error\" role=\"alert\" data-testid=\"sign-in-error\">{message}</p>\
         <form method=\"post\" action=\"/auth/login\" class=\"login\">\
         <label for=\"username\">Username</label>\
         <input id=\"username\" name=\"username\" type=\"text\" autocomplete=\"username\" required value=\"{username}\">\
         <label for=\"password\">Password</label>\
         <input id=\"password\" name=\"password\" type=\"password\" autocomplete=\"current-password\" required autofocus>\
         <button type=\"submit\">Sign in</button></form></main></body></html>"
    ))
}

/// How much of a typed username the sign-in page shows back (usernames are far shorter).
const MAX_ECHOED_USERNAME: usize = 256;

/// Text made safe for HTML content and quoted attribute values.
fn escape_html(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

/// POST /auth/logout: ends the session on the server (the cookie alone would not) and 303 to
/// the sign-in page.
async fn logout(State(state): State<AppState>, request: Request) -> Response {
    if let Some(user) = request.extensions().get::<SessionUser>() {
        let event = AuditEvent::new(
            &user.username,
            "logout",
            format!("user:{}", user.username.to_ascii_lowercase()),
        );
        // The session ends and the sign-out is recorded together, or neither happens.
        if let Err(err) = sessions::revoke(&state.db, &user.session_id, Some(&event)).await {
            tracing::error!(error = %err, "cannot end a session");
            return (StatusCode::SERVICE_UNAVAILABLE, "try again\n").into_response();
        }
        tracing::info!(user = %user.username, "signed out");
    }
    (
        StatusCode::SEE_OTHER,
        [
            (header::SET_COOKIE, state.security.clear_cookie()),
            (header::LOCATION, LOGIN_PAGE.to_string()),
        ],
    )
        .into_response()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(pairs: &[(&'static str, &str)]) -> HeaderMap {
        let mut map = HeaderMap::new();
        for (name, value) in pairs {
            map.append(*name, HeaderValue::from_str(value).unwrap());
        }
        map
    }

    #[test]
    fn cross_site_and_foreign_origins_are_refused() {
        let host = ("host", "app.example:3000");
        assert!(same_origin(&headers(&[host])).is_ok());
        assert!(same_origin(&headers(&[host, ("sec-fetch-site", "same-origin")])).is_ok());
        assert!(same_origin(&headers(&[host, ("origin", "http://app.example:3000")])).is_ok());
        assert!(same_origin(&headers(&[host, ("sec-fetch-site", "cross-site")])).is_err());
        assert!(same_origin(&headers(&[host, ("sec-fetch-site", "same-site")])).is_err());
        assert!(same_origin(&headers(&[host, ("origin", "https://evil.example")])).is_err());
        assert!(same_origin(&headers(&[host, ("origin", "null")])).is_err());
        assert!(same_origin(&headers(&[("origin", "http://app.example:3000")])).is_err());
    }

    #[test]
    fn only_preflighted_content_passes() {
        assert!(preflighted(&headers(&[(
            "content-type",
            "application/json; charset=utf-8"
        )])));
        assert!(preflighted(&headers(&[("x-requested-with", "giftrecon")])));
        assert!(!preflighted(&headers(&[(
            "content-type",
            "application/x-www-form-urlencoded"
        )])));
        assert!(!preflighted(&headers(&[("content-type", "text/plain")])));
    }

    #[test]
    fn typed_usernames_are_shown_back_escaped() {
        let page = sign_in_again_page("Wrong username or password.", "\"><script>x</script>&'").0;
        assert!(
            page.contains("value=\"&quot;&gt;&lt;script&gt;x&lt;/script&gt;&amp;&#39;\""),
            "{page}"
        );
        assert!(!page.contains("<script>"), "{page}");
    }

    #[test]
    fn the_session_cookie_is_found_among_others() {
        let map = headers(&[("cookie", "a=1; giftrecon_session=abc; b=2")]);
        assert_eq!(session_token(&map, "giftrecon_session"), Some("abc"));
        assert_eq!(session_token(&map, "__Host-giftrecon_session"), None);
    }
}
