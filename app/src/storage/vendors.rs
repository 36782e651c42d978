//! Vendors and their webhook secrets.

use chrono::{DateTime, Utc};
use secrecy::{ExposeSecret, SecretString};

use super::audit::{AuditAppend, AuditEvent};
use super::{now_utc, Db, StorageError};
use crate::domain::{PollInterval, StatusMapping, VendorId, VendorKind};
use crate::on_db;

/// A vendor to create. Secrets are write-only: nothing reads them back out but the verifier.
pub struct NewVendor {
    pub id: VendorId,
    pub kind: VendorKind,
    pub base_url: Option<BaseUrl>,
    pub webhook_secrets: Vec<SecretString>,
    /// The key giftrecon presents to the vendor's API, if it needs one.
    pub api_key: Option<SecretString>,
}

/// A vendor as stored, without its webhook secrets. The API key prints as `[REDACTED]`.
#[derive(Clone, Debug)]
pub struct Vendor {
    pub id: VendorId,
    pub kind: VendorKind,
    pub base_url: Option<String>,
    pub api_key: Option<SecretString>,
    pub status_mapping: StatusMapping,
    pub active_secrets: i64,
    pub created_at: DateTime<Utc>,
    /// Its own poll interval; `None`: the server's (`[poller] interval_secs`).
    pub poll_interval: Option<PollInterval>,
}

#[derive(sqlx::FromRow)]
struct VendorRow {
    id: String,
    kind: String,
    base_url: Option<String>,
    api_key: Option<String>,
    status_mapping: String,
    active_secrets: i64,
    created_at: DateTime<Utc>,
    poll_interval_secs: Option<i64>,
}

impl TryFrom<VendorRow> for Vendor {
    type Error = StorageError;
    fn try_from(row: VendorRow) -> Result<Self, StorageError> {
        let corrupt = |what: &str, reason: String| {
            StorageError::Database(sqlx::Error::Decode(
                format!("vendor {:?}: stored {what} is invalid: {reason}", row.id).into(),
            ))
        };
        Ok(Vendor {
            id: VendorId::parse(&row.id).map_err(|e| corrupt("id", e.to_string()))?,
            kind: VendorKind::parse(&row.kind).map_err(|e| corrupt("kind", e.to_string()))?,
            status_mapping: serde_json::from_str(&row.status_mapping)
                .map_err(|e| corrupt("status mapping", e.to_string()))?,
            base_url: row.base_url.clone(),
            api_key: row.api_key.clone().map(SecretString::from),
            active_secrets: row.active_secrets,
            created_at: row.created_at,
            poll_interval: row
                .poll_interval_secs
                .map(|secs| PollInterval::from_secs(secs.max(0) as u64))
                .transpose()
                .map_err(|e| corrupt("poll interval", e.to_string()))?,
        })
    }
}

/// An http(s) URL with a host, the only kind of address a vendor adapter will call.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BaseUrl(String);

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[error("base URL {0:?} must be an http:// or https:// address with a host, such as https://api.vendor.example")]
pub struct BaseUrlError(String);

impl BaseUrl {
    pub fn parse(input: &str) -> Result<BaseUrl, BaseUrlError> {
        let rest = input
            .strip_prefix("https://")
            .or_else(|| input.strip_prefix("http://"));
        let host = rest
            .and_then(|r| r.split(['/', '?', '#']).next())
            .unwrap_or_default();
        let valid_host = !host.is_empty()
            && !host.starts_with(':')
            && host
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || "-.:[]_".contains(c));
        if !valid_host || input.chars().any(char::is_whitespace) {
            return Err(BaseUrlError(input.to_string()));
        }
        Ok(BaseUrl(input.trim_end_matches('/').to_string()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

const SELECT_VENDORS: &str =
    "SELECT v.id, v.kind, v.base_url, v.api_key, v.status_mapping, v.created_at, v.poll_interval_secs,
        (SELECT COUNT(*) FROM vendor_webhook_secrets s
          WHERE s.vendor_id = v.id AND s.retired_at IS NULL) AS active_secrets
     FROM vendors v";

/// Creates a vendor with its kind's default status mapping and any webhook secrets, and records
/// `audit`, atomically.
pub async fn insert_vendor(
    db: &Db,
    vendor: &NewVendor,
    audit: &AuditEvent,
) -> Result<(), StorageError> {
    let now = now_utc();
    let mapping = serde_json::to_string(&vendor.kind.default_status_mapping())
        .expect("a status mapping always serializes");
    let already = || format!("vendor {:?}", vendor.id.as_str());
    on_db!(db, pool => {
        let mut tx = pool.begin().await?;
        sqlx::query(
            "INSERT INTO vendors (id, kind, base_url, status_mapping, created_at, updated_at, api_key)
             VALUES ($1, $2, $3, $4, $5, $5, $6)",
        )
        .bind(vendor.id.as_str())
        .bind(vendor.kind.as_str())
        .bind(vendor.base_url.as_ref().map(BaseUrl::as_str))
        .bind(&mapping)
        .bind(now)
        .bind(vendor.api_key.as_ref().map(|k| k.expose_secret()))
        .execute(&mut *tx)
        .await
        .map_err(|e| StorageError::unique_or(e, already))?;
        for secret in &vendor.webhook_secrets {
            sqlx::query(
                "INSERT INTO vendor_webhook_secrets (vendor_id, secret, created_at) VALUES ($1, $2, $3)",
            )
            .bind(vendor.id.as_str())
            .bind(secret.expose_secret())
            .bind(now)
            .execute(&mut *tx)
            .await?;
        }
        tx.append_audit(audit).await?;
        tx.commit().await?;
        Ok(())
    })
}

pub async fn list_vendors(db: &Db) -> Result<Vec<Vendor>, StorageError> {
    let sql = format!("{SELECT_VENDORS} ORDER BY v.id");
    let rows: Vec<VendorRow> = on_db!(db, pool => sqlx::query_as(&sql).fetch_all(pool).await)?;
    rows.into_iter().map(Vendor::try_from).collect()
}

pub async fn get_vendor(db: &Db, id: &VendorId) -> Result<Vendor, StorageError> {
    let sql = format!("{SELECT_VENDORS} WHERE v.id = $1");
    let row: Option<VendorRow> = on_db!(db, pool => {
        sqlx::query_as(&sql).bind(id.as_str()).fetch_optional(pool).await
    })?;
    row.ok_or_else(|| StorageError::NotFound {
        what: format!("vendor {:?}", id.as_str()),
    })?
    .try_into()
}

/// Changes a vendor: `base_url` when given; `webhook_secrets` when given replace the active
/// secrets at once (the old ones are retired now). Records `audit`. Atomic.
pub async fn update_vendor(
    db: &Db,
    id: &VendorId,
    base_url: Option<&BaseUrl>,
    webhook_secrets: Option<&[SecretString]>,
    audit: &AuditEvent,
) -> Result<(), StorageError> {
    let now = now_utc();
    on_db!(db, pool => {
        let mut tx = pool.begin().await?;
        let found = sqlx::query(
            "UPDATE vendors SET base_url = COALESCE($1, base_url), updated_at = $2 WHERE id = $3",
        )
        .bind(base_url.map(BaseUrl::as_str))
        .bind(now)
        .bind(id.as_str())
        .execute(&mut *tx)
        .await?;
        if found.rows_affected() == 0 {
            tx.rollback().await?;
            return Err(StorageError::NotFound { what: format!("vendor {:?}", id.as_str()) });
        }
        if let Some(secrets) = webhook_secrets {
            sqlx::query(
                "UPDATE vendor_webhook_secrets SET retired_at = $1
                  WHERE vendor_id = $2 AND (retired_at IS NULL OR retired_at > $1)",
            )
            .bind(now)
            .bind(id.as_str())
            .execute(&mut *tx)
            .await?;
            for secret in secrets {
                sqlx::query(
                    "INSERT INTO vendor_webhook_secrets (vendor_id, secret, created_at) VALUES ($1, $2, $3)",
                )
                .bind(id.as_str())
                .bind(secret.expose_secret())
                .bind(now)
                .execute(&mut *tx)
                .await?;
            }
        }
        tx.append_audit(audit).await?;
        tx.commit().await?;
        Ok(())
    })
}

/// What a rotation did.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Rotation {
    /// The secret was added; the oldest active one (if any) stops verifying at this time.
    Added {
        oldest_retires_at: Option<DateTime<Utc>>,
    },
    /// That secret is already active: nothing changed (a repeated rotation does one thing).
    AlreadyActive,
}

/// Adds `secret` and retires the oldest secret that has no retirement date yet at
/// `now + grace` (during the grace period both verify). Records `audit`, with when the old
/// secret retires added to its `after`. A secret that is already active changes nothing and
/// records nothing. Atomic.
pub async fn rotate_webhook_secret(
    db: &Db,
    id: &VendorId,
    secret: &SecretString,
    grace: chrono::Duration,
    audit: &AuditEvent,
) -> Result<Rotation, StorageError> {
    let now = now_utc();
    let retire_at = now + grace;
    on_db!(db, pool => {
        let mut tx = pool.begin().await?;
        let exists = sqlx::query("UPDATE vendors SET updated_at = $1 WHERE id = $2")
            .bind(now)
            .bind(id.as_str())
            .execute(&mut *tx)
            .await?;
        if exists.rows_affected() == 0 {
            tx.rollback().await?;
            return Err(StorageError::NotFound { what: format!("vendor {:?}", id.as_str()) });
        }
        let active: Option<i64> = sqlx::query_scalar(
            "SELECT id FROM vendor_webhook_secrets
              WHERE vendor_id = $1 AND secret = $2 AND (retired_at IS NULL OR retired_at > $3)
              LIMIT 1",
        )
        .bind(id.as_str())
        .bind(secret.expose_secret())
        .bind(now)
        .fetch_optional(&mut *tx)
        .await?;
        if active.is_some() {
            tx.rollback().await?;
            return Ok(Rotation::AlreadyActive);
        }
        let oldest: Option<i64> = sqlx::query_scalar(
            "SELECT id FROM vendor_webhook_secrets
              WHERE vendor_id = $1 AND retired_at IS NULL ORDER BY created_at, id LIMIT 1",
        )
        .bind(id.as_str())
        .fetch_optional(&mut *tx)
        .await?;
        if let Some(old) = oldest {
            sqlx::query("UPDATE vendor_webhook_secrets SET retired_at = $1 WHERE id = $2")
                .bind(retire_at)
                .bind(old)
                .execute(&mut *tx)
                .await?;
        }
        sqlx::query(
            "INSERT INTO vendor_webhook_secrets (vendor_id, secret, created_at) VALUES ($1, $2, $3)",
        )
        .bind(id.as_str())
        .bind(secret.expose_secret())
        .bind(now)
        .execute(&mut *tx)
        .await?;
        let mut audit = audit.clone();
        let retires = oldest.map(|_| retire_at.to_rfc3339());
        match audit.after.as_mut().and_then(serde_json::Value::as_object_mut) {
            Some(after) => {
                after.insert("oldest_secret_retires_at".into(), retires.into());
            }
            None => audit.after = Some(serde_json::json!({ "oldest_secret_retires_at": retires })),
        }
        tx.append_audit(&audit).await?;
        tx.commit().await?;
        Ok(Rotation::Added { oldest_retires_at: oldest.map(|_| retire_at) })
    })
}

/// The column names of a vendor's files (a JSON object `{field: column}`), if set.
pub async fn file_columns(db: &Db, id: &VendorId) -> Result<Option<String>, StorageError> {
    let row: Option<(Option<String>,)> = on_db!(db, pool => {
        sqlx::query_as("SELECT file_columns FROM vendors WHERE id = $1")
            .bind(id.as_str())
            .fetch_optional(pool)
            .await
    })?;
    match row {
        Some((columns,)) => Ok(columns),
        None => Err(StorageError::NotFound {
            what: format!("vendor {:?}", id.as_str()),
        }),
    }
}

/// Sets (or with `None`, clears) the column names of a vendor's files, with its audit row.
pub async fn set_file_columns(
    db: &Db,
    id: &VendorId,
    columns: Option<&str>,
    event: &super::audit::AuditEvent,
) -> Result<(), StorageError> {
    use super::audit::AuditAppend;
    let done = on_db!(db, pool => {
        async {
            let mut tx = pool.begin().await?;
            let n = sqlx::query("UPDATE vendors SET file_columns = $1, updated_at = $2 WHERE id = $3")
                .bind(columns)
                .bind(now_utc())
                .bind(id.as_str())
                .execute(&mut *tx)
                .await?
                .rows_affected();
            if n == 1 {
                tx.append_audit(event).await?;
                tx.commit().await?;
            }
            Ok::<u64, sqlx::Error>(n)
        }
        .await
    })?;
    if done == 0 {
        return Err(StorageError::NotFound {
            what: format!("vendor {:?}", id.as_str()),
        });
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn base_urls() {
        assert_eq!(
            BaseUrl::parse("https://api.vendor.example/")
                .unwrap()
                .as_str(),
            "https://api.vendor.example"
        );
        assert!(BaseUrl::parse("http://127.0.0.1:4000").is_ok());
        assert!(BaseUrl::parse("http://[::1]:4000/v1").is_ok());
        for bad in [
            "",
            "ftp://x",
            "https://",
            "https://:80",
            "vendor.example",
            "https://a b",
        ] {
            assert!(BaseUrl::parse(bad).is_err(), "{bad:?} accepted");
        }
    }
}
