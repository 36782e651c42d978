//! Who is asking, and may they: sign-in, session policy and the `require` check every server
//! function starts with.

use std::time::Duration;

use leptos::prelude::*;

use crate::domain::{Role, Username};
use crate::server::password;
use crate::storage::audit::{self, AuditEvent};
use crate::storage::sessions::{self, SessionUser};
use crate::storage::{now_utc, users, Db};

/// How sessions, cookies and sign-in throttling behave (`[security]` in the configuration).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SecurityPolicy {
    /// `Secure` cookies with the `__Host-` prefix: set when served over TLS (or behind a TLS proxy).
    pub secure_cookies: bool,
    /// A session unused this long ends.
    pub idle_timeout: Duration,
    /// A session ends this long after sign-in, however active.
    pub absolute_timeout: Duration,
    /// Failed sign-ins per username, and per client address, allowed within `failure_window`.
    pub max_login_failures: u32,
    pub failure_window: Duration,
    /// Behind a reverse proxy: the header it appends the client's address to (e.g.
    /// `x-forwarded-for`); the rightmost entry is used. `None`: the TCP peer's address.
    pub client_address_header: Option<String>,
}

impl Default for SecurityPolicy {
    fn default() -> Self {
        SecurityPolicy {
            secure_cookies: false,
            idle_timeout: Duration::from_secs(30 * 60),
            absolute_timeout: Duration::from_secs(12 * 60 * 60),
            max_login_failures: 5,
            failure_window: Duration::from_secs(15 * 60),
            client_address_header: None,
        }
    }
}

fn chrono(d: Duration) -> chrono::Duration {
    chrono::Duration::from_std(d).unwrap_or(chrono::Duration::MAX)
}

impl SecurityPolicy {
    /// The session cookie's name: `__Host-` prefixed when secure, which browsers only accept
    /// with `Secure`, `Path=/` and no `Domain`.
    pub fn cookie_name(&self) -> &'static str {
        if self.secure_cookies {
            "__Host-giftrecon_session"
        } else {
            "giftrecon_session"
        }
    }

    fn cookie_attributes(&self) -> &'static str {
        if self.secure_cookies {
            "HttpOnly; SameSite=Strict; Path=/; Secure"
        } else {
            "HttpOnly; SameSite=Strict; Path=/"
        }
    }

    /// `Set-Cookie` value carrying a new session token (a session cookie: no Max-Age, the
    /// server enforces the timeouts).
    pub fn session_cookie(&self, token: &str) -> String {
        format!(
            "{}={token}; {}",
            self.cookie_name(),
            self.cookie_attributes()
        )
    }

    /// `Set-Cookie` value that removes the session cookie.
    pub fn clear_cookie(&self) -> String {
        format!(
            "{}=; Max-Age=0; {}",
            self.cookie_name(),
            self.cookie_attributes()
        )
    }

    pub fn idle(&self) -> chrono::Duration {
        chrono(self.idle_timeout)
    }
}

/// The nonce of this response's Content-Security-Policy, put in the request by the server.
#[derive(Clone, Debug)]
pub struct CspNonce(pub String);

/// Why a sign-in failed. Deliberately does not say whether the user exists.
#[derive(Debug, thiserror::Error)]
pub enum LoginError {
    #[error("wrong username or password")]
    Invalid,
    #[error("too many failed sign-ins; wait a few minutes and try again")]
    RateLimited,
    #[error("sign-in failed: {0}")]
    Internal(String),
}

impl From<crate::storage::StorageError> for LoginError {
    fn from(err: crate::storage::StorageError) -> Self {
        LoginError::Internal(err.to_string())
    }
}

/// Checks a username and password and starts a new session (a fresh id: never one the client
/// proposed). Returns the token for the cookie and who signed in.
pub async fn login(
    db: &Db,
    policy: &SecurityPolicy,
    username: &str,
    password: &str,
    client_addr: &str,
) -> Result<(String, SessionUser), LoginError> {
    let now = now_utc();
    // Bounded: whatever is typed, a failure row stays small.
    let username_key: String = username
        .trim()
        .to_ascii_lowercase()
        .chars()
        .take(crate::domain::role::MAX_USERNAME_LEN + 1)
        .collect();
    let since = now - chrono(policy.failure_window);
    let (by_user, by_addr) =
        sessions::recent_login_failures(db, &username_key, client_addr, since).await?;
    // Who tried, as far as we know before checking: the address, and the name they typed (only
    // when it is a valid username, so a password typed into the wrong field is never recorded).
    let actor = format!("address:{client_addr}");
    let subject = match Username::parse(username.trim()) {
        Ok(name) => format!("user:{}", name.normalized()),
        Err(_) => "user:(not a valid username)".to_string(),
    };
    let limit = i64::from(policy.max_login_failures);
    let (user_limited, addr_limited) = (by_user >= limit, by_addr >= limit);
    if user_limited || addr_limited {
        // Refused unchecked. Recorded once per address (or username) and window, however many
        // more guesses come: a flood cannot grow the audit trail without bound.
        let limited_by = if addr_limited { "address" } else { "username" };
        let event = AuditEvent::new(actor, "login_rate_limited", subject)
            .after(serde_json::json!({ "limited_by": limited_by }));
        audit::record_once_since(db, &event, since, addr_limited, user_limited).await?;
        return Err(LoginError::RateLimited);
    }
    let credentials = match Username::parse(username.trim()) {
        Ok(name) => users::credentials_of(db, &name).await?,
        Err(_) => None,
    };
    // Absurdly long input is refused unread (still at the cost of one hash, like any failure).
    let password: String = if password.len() > 4 * password::MAX_LENGTH {
        String::new()
    } else {
        password.to_owned()
    };
    let checked = tokio::task::spawn_blocking(move || match credentials {
        Some(c) if password::verify(&password, &c.password_hash) => {
            let rehash = password::needs_rehash(&c.password_hash)
                .then(|| password::hash(&password).ok())
                .flatten();
            Some((c, rehash))
        }
        Some(_) => None,
        None => {
            password::verify_dummy(&password);
            None
        }
    })
    .await
    .map_err(|e| LoginError::Internal(e.to_string()))?;
    let Some((user, rehash)) = checked else {
        // Counted for the limiter and audited together: each refused guess until the limit.
        let event = AuditEvent::new(actor, "login_failed", subject);
        sessions::record_login_failure(db, &username_key, client_addr, now, &event).await?;
        return Err(LoginError::Invalid);
    };
    let mut events = Vec::with_capacity(2);
    if rehash.is_some() {
        events.push(AuditEvent::new(
            &user.username,
            "password_rehash",
            subject.clone(),
        ));
    }
    events.push(
        AuditEvent::new(&user.username, "login", subject)
            .after(serde_json::json!({ "address": client_addr, "role": user.role })),
    );
    let token = sessions::sign_in(
        db,
        &sessions::SignIn {
            user_id: user.id,
            now,
            absolute_timeout: chrono(policy.absolute_timeout),
            failures_key: &username_key,
            new_password_hash: rehash.as_deref(),
        },
        &events,
    )
    .await?;
    let session_id = sessions::session_id(&token);
    Ok((
        token,
        SessionUser {
            session_id,
            user_id: user.id,
            username: user.username,
            role: user.role,
        },
    ))
}

/// The signed-in user of the request being served, if any (set by the server's session layer).
pub fn current_user() -> Option<SessionUser> {
    use_context::<axum::http::request::Parts>()
        .and_then(|parts| parts.extensions.get::<SessionUser>().cloned())
}

fn fail_with(status: axum::http::StatusCode, message: &str) -> ServerFnError {
    if let Some(response) = use_context::<leptos_axum::ResponseOptions>() {
        response.set_status(status);
    }
    ServerFnError::new(message)
}

/// Why a request was not allowed: nobody is signed in, or their role may not do this.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Denied {
    SignIn,
    Role,
}

impl Denied {
    pub fn status(self) -> axum::http::StatusCode {
        match self {
            Denied::SignIn => axum::http::StatusCode::UNAUTHORIZED,
            Denied::Role => axum::http::StatusCode::FORBIDDEN,
        }
    }

    pub fn message(self) -> &'static str {
        match self {
            Denied::SignIn => "sign in to continue",
            Denied::Role => "your role does not allow this",
        }
    }
}

/// `user` if their role is one of `roles`; a refusal otherwise, recorded in the audit trail as
/// `denied` naming `action` (when `db` is given). Server functions call it through [`require`];
/// the dashboard's plain HTTP routes (exports, uploads) call it directly.
pub async fn authorize(
    db: Option<&Db>,
    user: Option<SessionUser>,
    roles: &[Role],
    action: &str,
) -> Result<SessionUser, Denied> {
    let Some(user) = user else {
        return Err(Denied::SignIn);
    };
    if !roles.contains(&user.role) {
        tracing::warn!(user = %user.username, role = %user.role, action, "denied");
        if let Some(db) = db {
            let event = AuditEvent::new(&user.username, "denied", action)
                .after(serde_json::json!({ "role": user.role }));
            if let Err(err) = audit::record(db, &event).await {
                tracing::error!(error = %err, "cannot record a denied action");
            }
        }
        return Err(Denied::Role);
    }
    Ok(user)
}

/// The signed-in user if their role is one of `roles`; otherwise 401 (not signed in) or 403
/// (recorded in the audit trail as `denied`, naming `action`).
/// Every server function calls this first: the UI hiding a button is never the protection.
pub async fn require(roles: &[Role], action: &str) -> Result<SessionUser, ServerFnError> {
    let state = use_context::<crate::server::AppState>();
    authorize(state.as_ref().map(|s| &s.db), current_user(), roles, action)
        .await
        .map_err(|denied| fail_with(denied.status(), denied.message()))
}

/// A refusal with this status and a message for the user (a rule said no; nothing internal).
pub fn refuse(status: axum::http::StatusCode, message: &str) -> ServerFnError {
    fail_with(status, message)
}

/// A 400 with a message for the user (their input was wrong; nothing internal is said).
pub fn bad_request(message: &str) -> ServerFnError {
    fail_with(axum::http::StatusCode::BAD_REQUEST, message)
}

/// Records what a signed-in user did, on its own; failing to record fails the request. An
/// action that writes should rather append its row in its own transaction
/// ([`crate::storage::audit::AuditAppend`]).
pub async fn record(
    actor: &str,
    action: &str,
    subject: String,
    after: serde_json::Value,
) -> Result<(), ServerFnError> {
    let state = crate::server::AppState::from_context()?;
    audit::record(
        &state.db,
        &AuditEvent::new(actor, action, subject).after(after),
    )
    .await
    .map(|_| ())
    .map_err(crate::server::state::internal)
}
