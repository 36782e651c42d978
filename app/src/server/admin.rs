//! Server functions of the admin pages (users) and the audit trail view.

use leptos::prelude::*;
use leptos::server_fn::codec::Json;
use serde::{Deserialize, Serialize};

use crate::domain::Role;
#[cfg(feature = "ssr")]
use crate::server::{access, auth, state, AppState};
#[cfg(feature = "ssr")]
use crate::storage::audit::AuditEvent;

/// A user as the admin page shows them (never the password hash).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct UserView {
    pub username: String,
    pub role: Role,
    pub disabled: bool,
    pub created_at: String,
}

/// One audit row as the audit page shows it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct AuditView {
    pub id: i64,
    pub at: String,
    pub actor: String,
    pub action: String,
    pub subject: String,
    pub after: Option<String>,
}

#[server(input = Json)]
pub async fn list_users() -> Result<Vec<UserView>, ServerFnError> {
    auth::require(access::MANAGE_USERS, "list_users").await?;
    let state = AppState::from_context()?;
    let users = crate::storage::users::list_users(&state.db)
        .await
        .map_err(state::internal)?;
    Ok(users
        .into_iter()
        .map(|u| UserView {
            username: u.username,
            role: u.role,
            disabled: u.disabled,
            created_at: u.created_at.format("%Y-%m-%d %H:%M UTC").to_string(),
        })
        .collect())
}

/// Creates a user (admins only); recorded in the audit trail without the password.
#[server(input = Json)]
pub async fn add_user(username: String, role: Role, password: String) -> Result<(), ServerFnError> {
    let admin = auth::require(access::MANAGE_USERS, "add_user").await?;
    let state = AppState::from_context()?;
    let username = crate::domain::Username::parse(username.trim())
        .map_err(|e| auth::bad_request(&e.to_string()))?;
    let hash = tokio::task::spawn_blocking(move || crate::server::password::hash(&password))
        .await
        .map_err(state::internal)?
        .map_err(|e| auth::bad_request(&e.to_string()))?;
    let event = AuditEvent::new(
        &admin.username,
        "user_add",
        format!("user:{}", username.normalized()),
    )
    .after(serde_json::json!({ "username": username.as_str(), "role": role }));
    match crate::storage::users::insert_user(&state.db, &username, role, &hash, &event).await {
        Ok(_) => Ok(()),
        Err(crate::storage::StorageError::AlreadyExists { what }) => {
            Err(auth::bad_request(&format!("{what} already exists")))
        }
        Err(err) => Err(state::internal(err)),
    }
}

/// Disables a user and ends their sessions (admins only, never themselves).
#[server(input = Json)]
pub async fn disable_user(username: String) -> Result<(), ServerFnError> {
    let admin = auth::require(access::MANAGE_USERS, "disable_user").await?;
    let state = AppState::from_context()?;
    let username = crate::domain::Username::parse(username.trim())
        .map_err(|e| auth::bad_request(&e.to_string()))?;
    if username.normalized() == admin.username.to_ascii_lowercase() {
        return Err(auth::bad_request(
            "you cannot disable yourself; ask another admin",
        ));
    }
    let event = AuditEvent::new(
        &admin.username,
        "user_disable",
        format!("user:{}", username.normalized()),
    )
    .after(serde_json::json!({ "disabled": true }));
    match crate::storage::users::disable_user(&state.db, &username, &event).await {
        Ok(_) => Ok(()),
        Err(crate::storage::StorageError::NotFound { what }) => {
            Err(auth::bad_request(&format!("{what} not found")))
        }
        Err(err) => Err(state::internal(err)),
    }
}

/// The newest 200 audit rows.
#[server(input = Json)]
pub async fn list_audit_log() -> Result<Vec<AuditView>, ServerFnError> {
    auth::require(access::VIEW_AUDIT, "list_audit_log").await?;
    let state = AppState::from_context()?;
    let rows = crate::storage::audit::recent(&state.db, 200)
        .await
        .map_err(state::internal)?;
    Ok(rows
        .into_iter()
        .map(|r| AuditView {
            id: r.id,
            at: r.at.format("%Y-%m-%d %H:%M:%S UTC").to_string(),
            actor: r.actor,
            action: r.action,
            subject: r.subject,
            after: r.after_json,
        })
        .collect())
}
