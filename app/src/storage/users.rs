//! People who sign in to the dashboard.

use chrono::{DateTime, Utc};

use super::{now_utc, Db, StorageError};
use crate::domain::{Role, Username};
use crate::on_db;

/// A user as stored, without the password hash.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct User {
    pub id: i64,
    pub username: String,
    pub role: Role,
    pub disabled: bool,
    pub created_at: DateTime<Utc>,
}

#[derive(sqlx::FromRow)]
struct UserRow {
    id: i64,
    username: String,
    role: String,
    disabled: bool,
    created_at: DateTime<Utc>,
}

/// Creates a user. `password_hash` is a PHC string from [`crate::server::password::hash`].
pub async fn insert_user(
    db: &Db,
    username: &Username,
    role: Role,
    password_hash: &str,
) -> Result<i64, StorageError> {
    let now = now_utc();
    let id: i64 = on_db!(db, pool => {
        sqlx::query_scalar(
            "INSERT INTO users (username, username_key, role, password_hash, created_at, updated_at)
             VALUES ($1, $2, $3, $4, $5, $5) RETURNING id",
        )
        .bind(username.as_str())
        .bind(username.normalized())
        .bind(role.as_str())
        .bind(password_hash)
        .bind(now)
        .fetch_one(pool)
        .await
    })
    .map_err(|e| StorageError::unique_or(e, || format!("user {:?}", username.as_str())))?;
    Ok(id)
}

pub async fn list_users(db: &Db) -> Result<Vec<User>, StorageError> {
    let rows: Vec<UserRow> = on_db!(db, pool => {
        sqlx::query_as("SELECT id, username, role, disabled, created_at FROM users ORDER BY username_key")
            .fetch_all(pool)
            .await
    })?;
    rows.into_iter()
        .map(|row| {
            let role = Role::parse(&row.role).map_err(|e| {
                StorageError::Database(sqlx::Error::Decode(
                    format!("user {:?}: stored role is invalid: {e}", row.username).into(),
                ))
            })?;
            Ok(User {
                id: row.id,
                username: row.username,
                role,
                disabled: row.disabled,
                created_at: row.created_at,
            })
        })
        .collect()
}

/// The stored password hash of an enabled user, looked up case-insensitively.
pub async fn password_hash_of(
    db: &Db,
    username: &Username,
) -> Result<Option<String>, StorageError> {
    Ok(on_db!(db, pool => {
        sqlx::query_scalar(
            "SELECT password_hash FROM users WHERE username_key = $1 AND NOT disabled",
        )
        .bind(username.normalized())
        .fetch_optional(pool)
        .await
    })?)
}
