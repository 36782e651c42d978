//! Server functions of the Users page.

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
