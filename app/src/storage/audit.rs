//! The audit trail: append-only and hash-chained.
//!
//! Each row's `hash` is the SHA-256 of a canonical JSON array of the previous row's hash and this
//! row's fields, so editing any field, or removing a row, breaks the chain at that point.
//! Nothing here updates or deletes rows (and triggers refuse it). Callers never pass secrets.

use chrono::{DateTime, Utc};
use serde_json::Value;
use sha2::{Digest, Sha256};

use super::{now_utc, Db, StorageError};
use crate::on_db;

/// The `prev_hash` of the first row.
pub const GENESIS: &str = "0000000000000000000000000000000000000000000000000000000000000000";

/// How often an append retries when another writer took the same end of the chain.
const APPEND_ATTEMPTS: usize = 50;

/// Something that happened, as the caller describes it.
#[derive(Clone, Debug)]
pub struct AuditEvent {
    /// Who: a username, `cli:<os user>`, or `address:<ip>` for someone not signed in.
    pub actor: String,
    /// What, e.g. `login`, `login_failed`, `user_disable`, `vendor_add`.
    pub action: String,
    /// What it was done to, e.g. `user:ana`, `vendor:acme`.
    pub subject: String,
    pub before: Option<Value>,
    pub after: Option<Value>,
}

impl AuditEvent {
    pub fn new(actor: impl Into<String>, action: &str, subject: impl Into<String>) -> Self {
        AuditEvent {
            actor: actor.into(),
            action: action.to_string(),
            subject: subject.into(),
            before: None,
            after: None,
        }
    }

    pub fn after(mut self, value: Value) -> Self {
        self.after = Some(value);
        self
    }
}

/// A stored row.
#[derive(Clone, Debug, PartialEq, Eq, sqlx::FromRow)]
pub struct AuditRow {
    pub id: i64,
    pub at: DateTime<Utc>,
    pub actor: String,
    pub action: String,
    pub subject: String,
    pub before_json: Option<String>,
    pub after_json: Option<String>,
    pub prev_hash: String,
    pub hash: String,
}

/// The chain hash of a row's fields after `prev_hash`.
pub fn chain_hash(
    prev_hash: &str,
    at: DateTime<Utc>,
    actor: &str,
    action: &str,
    subject: &str,
    before_json: Option<&str>,
    after_json: Option<&str>,
) -> String {
    let canonical = serde_json::to_string(&(
        prev_hash,
        at.format("%Y-%m-%dT%H:%M:%S%.6fZ").to_string(),
        actor,
        action,
        subject,
        before_json,
        after_json,
    ))
    .expect("strings always serialize");
    Sha256::digest(canonical.as_bytes())
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// Appends an event to the end of the chain; returns the new row's id.
pub async fn record(db: &Db, event: &AuditEvent) -> Result<i64, StorageError> {
    let before = event.before.as_ref().map(Value::to_string);
    let after = event.after.as_ref().map(Value::to_string);
    let mut attempt = 0;
    loop {
        attempt += 1;
        let at = now_utc();
        let last: Option<String> = on_db!(db, pool => {
            sqlx::query_scalar("SELECT hash FROM audit_log ORDER BY id DESC LIMIT 1")
                .fetch_optional(pool)
                .await
        })?;
        let prev = last.unwrap_or_else(|| GENESIS.to_string());
        let hash = chain_hash(
            &prev,
            at,
            &event.actor,
            &event.action,
            &event.subject,
            before.as_deref(),
            after.as_deref(),
        );
        let inserted: Result<i64, sqlx::Error> = on_db!(db, pool => {
            sqlx::query_scalar(
                "INSERT INTO audit_log (at, actor, action, subject, before_json, after_json, prev_hash, hash)
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8) RETURNING id",
            )
            .bind(at)
            .bind(&event.actor)
            .bind(&event.action)
            .bind(&event.subject)
            .bind(before.as_deref())
            .bind(after.as_deref())
            .bind(&prev)
            .bind(&hash)
            .fetch_one(pool)
            .await
        });
        match inserted {
            Ok(id) => return Ok(id),
            // Another writer appended after `prev` first: go again from the new end.
            Err(sqlx::Error::Database(e))
                if e.is_unique_violation() && attempt < APPEND_ATTEMPTS =>
            {
                continue
            }
            Err(e) => return Err(e.into()),
        }
    }
}

/// The outcome of walking the chain.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Verification {
    /// Every row links to the one before and matches its hash.
    Intact { rows: u64 },
    /// The first row that does not; rows after it are not trusted either.
    Broken { id: i64, reason: String },
}

/// Walks the whole chain in id order.
pub async fn verify(db: &Db) -> Result<Verification, StorageError> {
    const PAGE: i64 = 1000;
    let mut expected_prev = GENESIS.to_string();
    let mut after_id = i64::MIN;
    let mut rows = 0u64;
    loop {
        let page: Vec<AuditRow> = on_db!(db, pool => {
            sqlx::query_as(
                "SELECT id, at, actor, action, subject, before_json, after_json, prev_hash, hash
                 FROM audit_log WHERE id > $1 ORDER BY id LIMIT $2",
            )
            .bind(after_id)
            .bind(PAGE)
            .fetch_all(pool)
            .await
        })?;
        let Some(last) = page.last() else {
            return Ok(Verification::Intact { rows });
        };
        after_id = last.id;
        for row in page {
            if row.prev_hash != expected_prev {
                return Ok(Verification::Broken {
                    id: row.id,
                    reason: "does not follow the row before it (a row was removed or reordered)"
                        .into(),
                });
            }
            let hash = chain_hash(
                &row.prev_hash,
                row.at,
                &row.actor,
                &row.action,
                &row.subject,
                row.before_json.as_deref(),
                row.after_json.as_deref(),
            );
            if hash != row.hash {
                return Ok(Verification::Broken {
                    id: row.id,
                    reason: "does not match its hash (it was edited)".into(),
                });
            }
            expected_prev = row.hash;
            rows += 1;
        }
    }
}

/// The newest rows first, for display.
pub async fn recent(db: &Db, limit: i64) -> Result<Vec<AuditRow>, StorageError> {
    Ok(on_db!(db, pool => {
        sqlx::query_as(
            "SELECT id, at, actor, action, subject, before_json, after_json, prev_hash, hash
             FROM audit_log ORDER BY id DESC LIMIT $1",
        )
        .bind(limit)
        .fetch_all(pool)
        .await
    })?)
}
