//! Idempotency-key records, as in the IETF `Idempotency-Key` draft: the first request with a key
//! claims it; a repeat with the same body gets the first response replayed; a repeat with a
//! different body is refused; a repeat while the first is still being handled is told to wait.

use chrono::{DateTime, Duration, Utc};

use super::{now_utc, Db, StorageError};
use crate::on_db;

/// The outcome of claiming a key for a request.
#[derive(Debug, PartialEq, Eq)]
pub enum Claim {
    /// This request owns the key: handle it, then complete or release the record.
    Acquired,
    /// The key was used before for the same request: replay this response.
    Replay { status: u16, body: String },
    /// The key was used before for a different request.
    Mismatch,
    /// A request with this key is being handled right now.
    InProgress,
}

#[derive(sqlx::FromRow)]
struct Row {
    request_hash: String,
    state: String,
    locked_until: Option<DateTime<Utc>>,
    response_status: Option<i32>,
    response_body: Option<String>,
}

/// Claims `(owner, key)` for a request with fingerprint `hash`. A claim whose holder died (its
/// lock expired) is taken over; expired records (older than `retention`) count as absent.
pub async fn claim(
    db: &Db,
    owner: &str,
    key: &str,
    hash: &str,
    lock: Duration,
    retention: Duration,
) -> Result<Claim, StorageError> {
    let now = now_utc();
    // Records past retention are forgotten (their orders are not: see orders' unique key).
    on_db!(db, pool => {
        sqlx::query("DELETE FROM idempotency_keys WHERE owner = $1 AND idem_key = $2 AND expires_at < $3")
            .bind(owner).bind(key).bind(now).execute(pool).await.map(|r| r.rows_affected())
    })?;
    let inserted = on_db!(db, pool => {
        sqlx::query(
            "INSERT INTO idempotency_keys (owner, idem_key, request_hash, state, locked_until, created_at, expires_at)
             VALUES ($1, $2, $3, 'in_progress', $4, $5, $6)
             ON CONFLICT (owner, idem_key) DO NOTHING",
        )
        .bind(owner)
        .bind(key)
        .bind(hash)
        .bind(now + lock)
        .bind(now)
        .bind(now + retention)
        .execute(pool)
        .await
        .map(|r| r.rows_affected())
    })?;
    if inserted == 1 {
        return Ok(Claim::Acquired);
    }
    let row: Option<Row> = on_db!(db, pool => {
        sqlx::query_as(
            "SELECT request_hash, state, locked_until, response_status, response_body
               FROM idempotency_keys WHERE owner = $1 AND idem_key = $2",
        )
        .bind(owner)
        .bind(key)
        .fetch_optional(pool)
        .await
    })?;
    let Some(row) = row else {
        // Deleted between our insert and read (expired): the caller may simply retry.
        return Ok(Claim::InProgress);
    };
    if row.request_hash != hash {
        return Ok(Claim::Mismatch);
    }
    if row.state == "completed" {
        return Ok(Claim::Replay {
            status: row.response_status.unwrap_or(200) as u16,
            body: row.response_body.unwrap_or_default(),
        });
    }
    if row.locked_until.is_some_and(|until| until > now) {
        return Ok(Claim::InProgress);
    }
    // The holder died mid-request: take the claim over, unless someone else just did.
    let taken = on_db!(db, pool => {
        sqlx::query(
            "UPDATE idempotency_keys SET locked_until = $1
              WHERE owner = $2 AND idem_key = $3 AND state = 'in_progress'
                AND (locked_until IS NULL OR locked_until <= $4)",
        )
        .bind(now + lock)
        .bind(owner)
        .bind(key)
        .bind(now)
        .execute(pool)
        .await
        .map(|r| r.rows_affected())
    })?;
    Ok(if taken == 1 {
        Claim::Acquired
    } else {
        Claim::InProgress
    })
}

/// Gives a claimed key back (the request failed before anything was stored), so a retry can
/// run it again.
pub async fn release(db: &Db, owner: &str, key: &str) -> Result<(), StorageError> {
    on_db!(db, pool => {
        sqlx::query("DELETE FROM idempotency_keys WHERE owner = $1 AND idem_key = $2 AND state = 'in_progress'")
            .bind(owner).bind(key).execute(pool).await.map(|r| r.rows_affected())
    })?;
    Ok(())
}

/// Completes a claimed key with a response that is not tied to a new order (for example the
/// replay of an order that already existed).
pub async fn complete(
    db: &Db,
    owner: &str,
    key: &str,
    status: u16,
    body: &str,
    order_id: Option<&str>,
) -> Result<(), StorageError> {
    on_db!(db, pool => {
        sqlx::query(
            "UPDATE idempotency_keys
                SET state = 'completed', response_status = $1, response_body = $2, order_id = $3,
                    locked_until = NULL
              WHERE owner = $4 AND idem_key = $5",
        )
        .bind(i32::from(status))
        .bind(body)
        .bind(order_id)
        .bind(owner)
        .bind(key)
        .execute(pool)
        .await
        .map(|r| r.rows_affected())
    })?;
    Ok(())
}

/// Deletes completed records past retention; returns how many.
pub async fn purge_expired(db: &Db, now: DateTime<Utc>) -> Result<u64, StorageError> {
    let done = on_db!(db, pool => {
        sqlx::query("DELETE FROM idempotency_keys WHERE expires_at < $1 AND state = 'completed'")
            .bind(now).execute(pool).await.map(|r| r.rows_affected())
    })?;
    Ok(done)
}
