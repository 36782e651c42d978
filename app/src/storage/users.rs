//! People who sign in to the dashboard.

use chrono::{DateTime, Utc};

use super::audit::{AuditAppend, AuditEvent};
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

/// Creates a user and records `audit` in the same transaction. `password_hash` is a PHC string
/// from [`crate::server::password::hash`].
pub async fn insert_user(
    db: &Db,
    username: &Username,
    role: Role,
    password_hash: &str,
    audit: &AuditEvent,
) -> Result<i64, StorageError> {
    let now = now_utc();
    let already = || format!("user {:?}", username.as_str());
    on_db!(db, pool => {
        let mut tx = pool.begin().await?;
        let id: i64 = sqlx::query_scalar(
            "INSERT INTO users (username, username_key, role, password_hash, created_at, updated_at)
             VALUES ($1, $2, $3, $4, $5, $5) RETURNING id",
        )
        .bind(username.as_str())
        .bind(username.normalized())
        .bind(role.as_str())
        .bind(password_hash)
        .bind(now)
        .fetch_one(&mut *tx)
        .await
        .map_err(|e| StorageError::unique_or(e, already))?;
        tx.append_audit(audit).await?;
        tx.commit().await?;
        Ok(id)
    })
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

/// What signing in needs to know about an enabled user. Not `Debug`: it holds the password hash.
pub struct Credentials {
    pub id: i64,
    pub username: String,
    pub role: Role,
    pub password_hash: String,
}

/// The credentials of an enabled user, looked up case-insensitively.
pub async fn credentials_of(
    db: &Db,
    username: &Username,
) -> Result<Option<Credentials>, StorageError> {
    let row: Option<(i64, String, String, String)> = on_db!(db, pool => {
        sqlx::query_as(
            "SELECT id, username, role, password_hash FROM users
             WHERE username_key = $1 AND NOT disabled",
        )
        .bind(username.normalized())
        .fetch_optional(pool)
        .await
    })?;
    let Some((id, username, role, password_hash)) = row else {
        return Ok(None);
    };
    let role = Role::parse(&role).map_err(|e| {
        StorageError::Database(sqlx::Error::Decode(
            format!("user {username:?}: stored role is invalid: {e}").into(),
        ))
    })?;
    Ok(Some(Credentials {
        id,
        username,
        role,
        password_hash,
    }))
}

/// Disables a user, ends every one of their sessions and records `audit`, in one transaction.
/// `NotFound` if no such user; disabling a disabled user is allowed (and ends nothing new).
pub async fn disable_user(
    db: &Db,
    username: &Username,
    audit: &AuditEvent,
) -> Result<i64, StorageError> {
    let now = now_utc();
    let id: Option<i64> = on_db!(db, pool => {
        let mut tx = pool.begin().await?;
        let id: Option<i64> = sqlx::query_scalar(
            "UPDATE users SET disabled = TRUE, updated_at = $1 WHERE username_key = $2 RETURNING id",
        )
        .bind(now)
        .bind(username.normalized())
        .fetch_optional(&mut *tx)
        .await?;
        if let Some(id) = id {
            sqlx::query("UPDATE sessions SET revoked = TRUE WHERE user_id = $1 AND NOT revoked")
                .bind(id)
                .execute(&mut *tx)
                .await?;
            tx.append_audit(audit).await?;
        }
        tx.commit().await?;
        Ok::<_, sqlx::Error>(id)
    })?;
    id.ok_or_else(|| StorageError::NotFound {
        what: format!("user {:?}", username.as_str()),
    })
}
