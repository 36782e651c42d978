//! API bearer tokens. Only a SHA-256 digest is stored: tokens are long random strings, so a fast
//! hash is enough and a stolen database does not hand out working tokens.

use rand::RngCore;
use sha2::{Digest, Sha256};

use super::audit::{AuditAppend, AuditEvent};
use super::{now_utc, Db, StorageError};
use crate::on_db;

/// Prefix that makes a leaked token easy to recognise (and to scan for).
const TOKEN_PREFIX: &str = "grk_";

/// The caller a token belongs to. Idempotency keys are scoped to `name`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TokenOwner {
    pub id: i64,
    pub name: String,
}

fn digest(token: &str) -> String {
    hex::encode(Sha256::digest(token.as_bytes()))
}

/// Checks a token name: 1–64 characters of letters, digits, '-', '_' and '.'.
pub fn valid_name(name: &str) -> bool {
    (1..=64).contains(&name.len())
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"-_.".contains(&b))
}

/// Creates a token and returns it (the only time it exists in clear); records `audit` in the
/// same transaction.
pub async fn create(db: &Db, name: &str, audit: &AuditEvent) -> Result<String, StorageError> {
    let mut bytes = [0u8; 32];
    rand::rngs::OsRng.fill_bytes(&mut bytes);
    let token = format!("{TOKEN_PREFIX}{}", hex::encode(bytes));
    let hash = digest(&token);
    let now = now_utc();
    on_db!(db, pool => {
        let mut tx = pool.begin().await?;
        sqlx::query("INSERT INTO api_tokens (name, token_hash, created_at) VALUES ($1, $2, $3)")
            .bind(name)
            .bind(&hash)
            .bind(now)
            .execute(&mut *tx)
            .await
            .map_err(|e| StorageError::unique_or(e, || format!("token {name:?}")))?;
        tx.append_audit(audit).await?;
        tx.commit().await?;
        Ok::<_, StorageError>(())
    })?;
    Ok(token)
}

/// The owner of a presented token, if it exists and is not revoked.
pub async fn authenticate(db: &Db, token: &str) -> Result<Option<TokenOwner>, StorageError> {
    if !token.starts_with(TOKEN_PREFIX) || token.len() > 200 {
        return Ok(None);
    }
    let hash = digest(token);
    let row: Option<(i64, String)> = on_db!(db, pool => {
        sqlx::query_as("SELECT id, name FROM api_tokens WHERE token_hash = $1 AND revoked_at IS NULL")
            .bind(&hash)
            .fetch_optional(pool)
            .await
    })?;
    Ok(row.map(|(id, name)| TokenOwner { id, name }))
}

/// Revokes a token by name and records `audit`, in one transaction; `NotFound` if there is no
/// active token of that name.
pub async fn revoke(db: &Db, name: &str, audit: &AuditEvent) -> Result<(), StorageError> {
    let now = now_utc();
    on_db!(db, pool => {
        let mut tx = pool.begin().await?;
        let done = sqlx::query(
            "UPDATE api_tokens SET revoked_at = $1 WHERE name = $2 AND revoked_at IS NULL",
        )
        .bind(now)
        .bind(name)
        .execute(&mut *tx)
        .await?
        .rows_affected();
        if done == 0 {
            tx.rollback().await?;
            return Err(StorageError::NotFound {
                what: format!("active token {name:?}"),
            });
        }
        tx.append_audit(audit).await?;
        tx.commit().await?;
        Ok(())
    })
}

/// (name, created, revoked) of every token, by name.
pub async fn list(
    db: &Db,
) -> Result<Vec<(String, chrono::DateTime<chrono::Utc>, bool)>, StorageError> {
    Ok(on_db!(db, pool => {
        sqlx::query_as(
            "SELECT name, created_at, revoked_at IS NOT NULL FROM api_tokens ORDER BY name",
        )
        .fetch_all(pool)
        .await
    })?)
}
