//! The audit trail: append-only and hash-chained.
//!
//! Each row's `hash` is the SHA-256 of a canonical JSON array of the previous row's hash and this
//! row's fields, so editing any field, or removing a row, breaks the chain at that point.
//! Nothing here updates or deletes rows (and triggers refuse it). Callers never pass secrets.
//!
//! A row is appended in the same transaction as the action it records ([`AuditAppend`]), so
//! an action that rolls back leaves no row and an action that commits always has one. Appends
//! are serialized through the one-row `audit_chain_head` table, which each append updates first.

use std::future::Future;

use chrono::{DateTime, Utc};
use serde_json::Value;
use sha2::{Digest, Sha256};

use super::{now_utc, Db, StorageError};
use crate::on_db;

/// The `prev_hash` of the first row.
pub const GENESIS: &str = "0000000000000000000000000000000000000000000000000000000000000000";

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

    pub fn before(mut self, value: Value) -> Self {
        self.before = Some(value);
        self
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
    hex::encode(Sha256::digest(canonical.as_bytes()))
}

/// Appending to the chain inside an open transaction, so the row commits or rolls back with the
/// action it records. Implemented for both backends' connections; call it on the transaction
/// (`tx.append_audit(&event)`), as the last write before `commit`: from the append to the commit
/// every other appender waits.
pub trait AuditAppend {
    /// Takes the chain for this transaction: other appenders wait until it ends.
    fn lock_audit_chain(&mut self) -> impl Future<Output = Result<(), sqlx::Error>> + Send;

    /// Appends `event` after the last committed row; returns the new row's id.
    fn append_audit(
        &mut self,
        event: &AuditEvent,
    ) -> impl Future<Output = Result<i64, sqlx::Error>> + Send;

    /// Whether a row of `action` newer than `since` has this `actor` (when given) or this
    /// `subject` (when given). Call after [`AuditAppend::lock_audit_chain`] so the answer holds
    /// until commit.
    fn audited_since(
        &mut self,
        action: &str,
        since: DateTime<Utc>,
        actor: Option<&str>,
        subject: Option<&str>,
    ) -> impl Future<Output = Result<bool, sqlx::Error>> + Send;
}

macro_rules! impl_audit_append {
    ($conn:ty) => {
        impl AuditAppend for $conn {
            async fn lock_audit_chain(&mut self) -> Result<(), sqlx::Error> {
                // A write first: on SQLite it makes this transaction the writer, on PostgreSQL it
                // locks the row, and in both cases the SELECT below then sees the true end.
                let locked =
                    sqlx::query("UPDATE audit_chain_head SET appends = appends + 1 WHERE id = 1")
                        .execute(&mut *self)
                        .await?;
                if locked.rows_affected() != 1 {
                    return Err(sqlx::Error::Protocol(
                        "the audit_chain_head row is missing: the audit trail cannot be appended to"
                            .into(),
                    ));
                }
                Ok(())
            }

            async fn append_audit(&mut self, event: &AuditEvent) -> Result<i64, sqlx::Error> {
                self.lock_audit_chain().await?;
                let last: Option<String> =
                    sqlx::query_scalar("SELECT hash FROM audit_log ORDER BY id DESC LIMIT 1")
                        .fetch_optional(&mut *self)
                        .await?;
                let row = NewRow::after(last, event);
                sqlx::query_scalar(
                    "INSERT INTO audit_log (at, actor, action, subject, before_json, after_json, prev_hash, hash)
                     VALUES ($1, $2, $3, $4, $5, $6, $7, $8) RETURNING id",
                )
                .bind(row.at)
                .bind(&event.actor)
                .bind(&event.action)
                .bind(&event.subject)
                .bind(row.before.as_deref())
                .bind(row.after.as_deref())
                .bind(&row.prev_hash)
                .bind(&row.hash)
                .fetch_one(&mut *self)
                .await
            }

            async fn audited_since(
                &mut self,
                action: &str,
                since: DateTime<Utc>,
                actor: Option<&str>,
                subject: Option<&str>,
            ) -> Result<bool, sqlx::Error> {
                let found: Option<i64> = sqlx::query_scalar(
                    "SELECT id FROM audit_log
                      WHERE action = $1 AND at > $2 AND (actor = $3 OR subject = $4)
                      LIMIT 1",
                )
                .bind(action)
                .bind(since)
                .bind(actor)
                .bind(subject)
                .fetch_optional(&mut *self)
                .await?;
                Ok(found.is_some())
            }
        }
    };
}

impl_audit_append!(sqlx::SqliteConnection);
impl_audit_append!(sqlx::PgConnection);

/// The computed fields of a row about to be appended.
struct NewRow {
    at: DateTime<Utc>,
    before: Option<String>,
    after: Option<String>,
    prev_hash: String,
    hash: String,
}

impl NewRow {
    fn after(last_hash: Option<String>, event: &AuditEvent) -> NewRow {
        let at = now_utc();
        let before = event.before.as_ref().map(Value::to_string);
        let after = event.after.as_ref().map(Value::to_string);
        let prev_hash = last_hash.unwrap_or_else(|| GENESIS.to_string());
        let hash = chain_hash(
            &prev_hash,
            at,
            &event.actor,
            &event.action,
            &event.subject,
            before.as_deref(),
            after.as_deref(),
        );
        NewRow {
            at,
            before,
            after,
            prev_hash,
            hash,
        }
    }
}

/// Appends an event on its own (for something that changes nothing else, such as a denied
/// action); returns the new row's id. An action that writes should append in its own
/// transaction with [`AuditAppend::append_audit`] instead.
pub async fn record(db: &Db, event: &AuditEvent) -> Result<i64, StorageError> {
    Ok(on_db!(db, pool => {
        let mut tx = pool.begin().await?;
        let id = tx.append_audit(event).await?;
        tx.commit().await?;
        Ok::<_, sqlx::Error>(id)
    })?)
}

/// Appends `event` unless a row of the same action newer than `since` has its actor (when
/// `by_actor`) or its subject (when `by_subject`): at most one such row per key and window,
/// however many times it happens. Returns whether it appended.
pub async fn record_once_since(
    db: &Db,
    event: &AuditEvent,
    since: DateTime<Utc>,
    by_actor: bool,
    by_subject: bool,
) -> Result<bool, StorageError> {
    let actor = by_actor.then_some(event.actor.as_str());
    let subject = by_subject.then_some(event.subject.as_str());
    Ok(on_db!(db, pool => {
        let mut tx = pool.begin().await?;
        tx.lock_audit_chain().await?;
        if tx.audited_since(&event.action, since, actor, subject).await? {
            tx.rollback().await?;
            return Ok(false);
        }
        tx.append_audit(event).await?;
        tx.commit().await?;
        Ok::<_, sqlx::Error>(true)
    })?)
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

/// What the audit page filters by; `None` does not filter.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct AuditFilter {
    /// Exactly this actor.
    pub actor: Option<String>,
    /// Exactly this action.
    pub action: Option<String>,
    /// Subjects containing this, ignoring ASCII case.
    pub subject_contains: Option<String>,
    /// At or after.
    pub from: Option<DateTime<Utc>>,
    /// Strictly before.
    pub until: Option<DateTime<Utc>>,
}

/// `text` as a LIKE pattern that matches it anywhere, lowercased, with `%`, `_` and `\` escaped.
fn contains_pattern(text: &str) -> String {
    let mut pattern = String::from("%");
    for c in text.to_lowercase().chars() {
        if matches!(c, '%' | '_' | '\\') {
            pattern.push('\\');
        }
        pattern.push(c);
    }
    pattern.push('%');
    pattern
}

/// The rows matching `filter`, newest first: `limit` of them after skipping `offset`.
pub async fn search(
    db: &Db,
    filter: &AuditFilter,
    offset: i64,
    limit: i64,
) -> Result<Vec<AuditRow>, StorageError> {
    let subject = filter.subject_contains.as_deref().map(contains_pattern);
    Ok(on_db!(db, pool => {
        sqlx::query_as(
            "SELECT id, at, actor, action, subject, before_json, after_json, prev_hash, hash
             FROM audit_log
             WHERE ($1 IS NULL OR actor = $1)
               AND ($2 IS NULL OR action = $2)
               AND ($3 IS NULL OR LOWER(subject) LIKE $3 ESCAPE '\\')
               AND ($4 IS NULL OR at >= $4)
               AND ($5 IS NULL OR at < $5)
             ORDER BY id DESC LIMIT $6 OFFSET $7",
        )
        .bind(filter.actor.as_deref())
        .bind(filter.action.as_deref())
        .bind(subject.as_deref())
        .bind(filter.from)
        .bind(filter.until)
        .bind(limit)
        .bind(offset)
        .fetch_all(pool)
        .await
    })?)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn contains_patterns_escape_wildcards() {
        assert_eq!(contains_pattern("Vendor:ACME"), "%vendor:acme%");
        assert_eq!(contains_pattern("50%_off\\x"), "%50\\%\\_off\\\\x%");
    }
}
