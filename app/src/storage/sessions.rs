//! Browser sessions and failed sign-ins.
//!
//! The cookie holds a random 256-bit token; the table holds only its SHA-256, so reading the
//! database does not let anyone take over a session. Validity (revocation, the user being
//! enabled, idle and absolute timeouts) is checked on every request, so logging out or disabling
//! a user ends their sessions on every replica at once.

use chrono::{DateTime, Duration, Utc};
use rand::RngCore;
use sha2::{Digest, Sha256};

use super::audit::{AuditAppend, AuditEvent};
use super::{Db, StorageError};
use crate::domain::Role;
use crate::on_db;

/// How long `last_seen_at` may lag before a request refreshes it (saves a write per request).
const TOUCH_INTERVAL_SECS: i64 = 15;

/// The signed-in user behind a valid session.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SessionUser {
    /// The stored session id (the token's digest), never the token itself.
    pub session_id: String,
    pub user_id: i64,
    pub username: String,
    pub role: Role,
}

/// The stored id of a session token.
pub fn session_id(token: &str) -> String {
    hex::encode(Sha256::digest(token.as_bytes()))
}

/// A successful sign-in, as stored.
pub struct SignIn<'a> {
    pub user_id: i64,
    pub now: DateTime<Utc>,
    pub absolute_timeout: Duration,
    /// The username key whose failed sign-ins are forgotten now.
    pub failures_key: &'a str,
    /// A stronger hash of the password just checked, to replace the stored one.
    pub new_password_hash: Option<&'a str>,
}

/// Starts a session and returns its token (the only time it exists in clear): forgets the
/// user's failed sign-ins, stores any re-hashed password and appends `audit`, in one transaction.
pub async fn sign_in(
    db: &Db,
    sign_in: &SignIn<'_>,
    audit: &[AuditEvent],
) -> Result<String, StorageError> {
    let mut bytes = [0u8; 32];
    rand::rngs::OsRng.fill_bytes(&mut bytes);
    let token = hex::encode(bytes);
    let id = session_id(&token);
    let now = sign_in.now;
    on_db!(db, pool => {
        let mut tx = pool.begin().await?;
        if let Some(hash) = sign_in.new_password_hash {
            sqlx::query("UPDATE users SET password_hash = $1, updated_at = $2 WHERE id = $3")
                .bind(hash)
                .bind(now)
                .bind(sign_in.user_id)
                .execute(&mut *tx)
                .await?;
        }
        sqlx::query("DELETE FROM login_failures WHERE username_key = $1")
            .bind(sign_in.failures_key)
            .execute(&mut *tx)
            .await?;
        sqlx::query(
            "INSERT INTO sessions (id, user_id, created_at, last_seen_at, expires_at)
             VALUES ($1, $2, $3, $3, $4)",
        )
        .bind(&id)
        .bind(sign_in.user_id)
        .bind(now)
        .bind(now + sign_in.absolute_timeout)
        .execute(&mut *tx)
        .await?;
        for event in audit {
            tx.append_audit(event).await?;
        }
        tx.commit().await?;
        Ok::<_, sqlx::Error>(())
    })?;
    Ok(token)
}

#[derive(sqlx::FromRow)]
struct SessionRow {
    user_id: i64,
    username: String,
    role: String,
    disabled: bool,
    revoked: bool,
    last_seen_at: DateTime<Utc>,
    expires_at: DateTime<Utc>,
}

/// The user of a presented token if the session is live at `now`; refreshes its idle timer.
pub async fn authenticate(
    db: &Db,
    token: &str,
    now: DateTime<Utc>,
    idle_timeout: Duration,
) -> Result<Option<SessionUser>, StorageError> {
    if token.len() != 64 || !token.bytes().all(|b| b.is_ascii_hexdigit()) {
        return Ok(None);
    }
    let id = session_id(token);
    let row: Option<SessionRow> = on_db!(db, pool => {
        sqlx::query_as(
            "SELECT s.user_id, u.username, u.role, u.disabled, s.revoked, s.last_seen_at, s.expires_at
             FROM sessions s JOIN users u ON u.id = s.user_id WHERE s.id = $1",
        )
        .bind(&id)
        .fetch_optional(pool)
        .await
    })?;
    let Some(row) = row else { return Ok(None) };
    if row.revoked
        || row.disabled
        || now >= row.expires_at
        || now - row.last_seen_at >= idle_timeout
    {
        return Ok(None);
    }
    let Ok(role) = Role::parse(&row.role) else {
        return Ok(None);
    };
    if now - row.last_seen_at >= Duration::seconds(TOUCH_INTERVAL_SECS) {
        on_db!(db, pool => {
            sqlx::query("UPDATE sessions SET last_seen_at = $1 WHERE id = $2 AND last_seen_at < $1")
                .bind(now)
                .bind(&id)
                .execute(pool)
                .await
                .map(|_| ())
        })?;
    }
    Ok(Some(SessionUser {
        session_id: id,
        user_id: row.user_id,
        username: row.username,
        role,
    }))
}

/// Ends one session (logout), appending `audit` in the same transaction when a live session
/// was ended. Returns whether one was.
pub async fn revoke(
    db: &Db,
    session_id: &str,
    audit: Option<&AuditEvent>,
) -> Result<bool, StorageError> {
    Ok(on_db!(db, pool => {
        let mut tx = pool.begin().await?;
        let done = sqlx::query("UPDATE sessions SET revoked = TRUE WHERE id = $1 AND NOT revoked")
            .bind(session_id)
            .execute(&mut *tx)
            .await?
            .rows_affected();
        if let (true, Some(event)) = (done > 0, audit) {
            tx.append_audit(event).await?;
        }
        tx.commit().await?;
        Ok::<_, sqlx::Error>(done > 0)
    })?)
}

/// Records a failed sign-in for rate limiting, and `audit`, in one transaction.
pub async fn record_login_failure(
    db: &Db,
    username_key: &str,
    client_addr: &str,
    now: DateTime<Utc>,
    audit: &AuditEvent,
) -> Result<(), StorageError> {
    on_db!(db, pool => {
        let mut tx = pool.begin().await?;
        sqlx::query("INSERT INTO login_failures (username_key, client_addr, at) VALUES ($1, $2, $3)")
            .bind(username_key)
            .bind(client_addr)
            .bind(now)
            .execute(&mut *tx)
            .await?;
        tx.append_audit(audit).await?;
        tx.commit().await?;
        Ok::<_, sqlx::Error>(())
    })?;
    Ok(())
}

/// Failed sign-ins since `since`: (for this username, from this client address).
pub async fn recent_login_failures(
    db: &Db,
    username_key: &str,
    client_addr: &str,
    since: DateTime<Utc>,
) -> Result<(i64, i64), StorageError> {
    let by_user: i64 = on_db!(db, pool => {
        sqlx::query_scalar("SELECT COUNT(*) FROM login_failures WHERE username_key = $1 AND at > $2")
            .bind(username_key)
            .bind(since)
            .fetch_one(pool)
            .await
    })?;
    let by_addr: i64 = on_db!(db, pool => {
        sqlx::query_scalar("SELECT COUNT(*) FROM login_failures WHERE client_addr = $1 AND at > $2")
            .bind(client_addr)
            .bind(since)
            .fetch_one(pool)
            .await
    })?;
    Ok((by_user, by_addr))
}

/// Deletes sessions that can no longer be used (revoked, past their absolute or idle timeout)
/// and failed sign-ins older than the rate-limit window. Returns (sessions, failures) removed.
pub async fn purge_stale(
    db: &Db,
    now: DateTime<Utc>,
    idle_timeout: Duration,
    failure_window: Duration,
) -> Result<(u64, u64), StorageError> {
    let sessions = on_db!(db, pool => {
        sqlx::query("DELETE FROM sessions WHERE revoked OR expires_at < $1 OR last_seen_at < $2")
            .bind(now)
            .bind(now - idle_timeout)
            .execute(pool)
            .await
            .map(|r| r.rows_affected())
    })?;
    let failures = on_db!(db, pool => {
        sqlx::query("DELETE FROM login_failures WHERE at < $1")
            .bind(now - failure_window)
            .execute(pool)
            .await
            .map(|r| r.rows_affected())
    })?;
    Ok((sessions, failures))
}
