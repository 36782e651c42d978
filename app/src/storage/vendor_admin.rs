//! What the Vendors page edits (a vendor's kind, base URL, poll interval, status mapping and GL
//! accounts) and what it shows about webhook secrets (never their values) and statuses seen but
//! unmapped.
//!
//! Every change takes the vendor's row first, compares, writes and appends its audit row in one
//! transaction. A change to what is already stored writes nothing and records nothing, so a
//! double-click, or two admins making the same change, does one thing.

use std::future::Future;

use chrono::{DateTime, Utc};
use serde_json::json;

use super::audit::{AuditAppend, AuditEvent};
use super::vendors::BaseUrl;
use super::{now_utc, Db, StorageError};
use crate::domain::journal::{GlAccount, VendorAccounts};
use crate::domain::{GlState, PollInterval, StatusMapping, VendorId, VendorKind};
use crate::on_db;

/// Whether a change was made, or everything already was as asked.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Change {
    Made,
    Unchanged,
}

/// A webhook secret as a page may show it: when it was added and when it stops verifying.
/// There is no field for the value: nothing here can leak it.
#[derive(Clone, Debug, PartialEq, Eq, sqlx::FromRow)]
pub struct SecretInfo {
    pub id: i64,
    pub created_at: DateTime<Utc>,
    pub retired_at: Option<DateTime<Utc>>,
}

/// Every webhook secret of a vendor, newest first, without values.
pub async fn webhook_secrets(db: &Db, id: &VendorId) -> Result<Vec<SecretInfo>, StorageError> {
    Ok(on_db!(db, pool => {
        sqlx::query_as(
            "SELECT id, created_at, retired_at FROM vendor_webhook_secrets
              WHERE vendor_id = $1 ORDER BY created_at DESC, id DESC",
        )
        .bind(id.as_str())
        .fetch_all(pool)
        .await
    })?)
}

/// A status word seen in a vendor's records that its mapping does not map.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct UnmappedStatus {
    /// As the vendor sent it.
    pub status: String,
    /// How many of the vendor's records have it.
    pub records: i64,
}

/// The statuses in the vendor's records that `mapping` leaves unmapped, most frequent first.
pub async fn unmapped_statuses(
    db: &Db,
    id: &VendorId,
    mapping: &StatusMapping,
) -> Result<Vec<UnmappedStatus>, StorageError> {
    let seen: Vec<(String, i64)> = on_db!(db, pool => {
        sqlx::query_as(
            "SELECT status, COUNT(*) FROM vendor_records WHERE vendor_id = $1 GROUP BY status",
        )
        .bind(id.as_str())
        .fetch_all(pool)
        .await
    })?;
    Ok(unmapped(mapping, seen))
}

/// The pure half of [`unmapped_statuses`]: which of `seen` the mapping misses.
pub fn unmapped(mapping: &StatusMapping, seen: Vec<(String, i64)>) -> Vec<UnmappedStatus> {
    let mut list: Vec<UnmappedStatus> = seen
        .into_iter()
        .filter(|(status, _)| mapping.gl_state_for(status).is_none())
        .map(|(status, records)| UnmappedStatus { status, records })
        .collect();
    list.sort_by(|a, b| b.records.cmp(&a.records).then(a.status.cmp(&b.status)));
    list
}

/// Takes a vendor's row for the rest of the transaction (on SQLite the write makes it the
/// writer; on PostgreSQL it locks the row), so what is read next stays true until commit.
trait VendorLock {
    /// Whether the vendor exists.
    fn lock_vendor(
        &mut self,
        id: &VendorId,
    ) -> impl Future<Output = Result<bool, sqlx::Error>> + Send;
}

macro_rules! impl_vendor_lock {
    ($conn:ty) => {
        impl VendorLock for $conn {
            async fn lock_vendor(&mut self, id: &VendorId) -> Result<bool, sqlx::Error> {
                let locked =
                    sqlx::query("UPDATE vendors SET updated_at = updated_at WHERE id = $1")
                        .bind(id.as_str())
                        .execute(&mut *self)
                        .await?;
                Ok(locked.rows_affected() == 1)
            }
        }
    };
}

impl_vendor_lock!(sqlx::SqliteConnection);
impl_vendor_lock!(sqlx::PgConnection);

fn not_found(id: &VendorId) -> StorageError {
    StorageError::NotFound {
        what: format!("vendor {:?}", id.as_str()),
    }
}

fn corrupt(id: &VendorId, what: &str, reason: impl std::fmt::Display) -> StorageError {
    StorageError::Database(sqlx::Error::Decode(
        format!(
            "vendor {:?}: stored {what} is invalid: {reason}",
            id.as_str()
        )
        .into(),
    ))
}

/// Sets a vendor's kind and base URL (`None` clears it). Audited as `vendor_set` with before and
/// after.
pub async fn update_settings(
    db: &Db,
    id: &VendorId,
    kind: VendorKind,
    base_url: Option<&BaseUrl>,
    actor: &str,
) -> Result<Change, StorageError> {
    let now = now_utc();
    let url = base_url.map(BaseUrl::as_str);
    on_db!(db, pool => {
        let mut tx = pool.begin().await?;
        if !tx.lock_vendor(id).await? {
            return Err(not_found(id));
        }
        let (old_kind, old_url): (String, Option<String>) =
            sqlx::query_as("SELECT kind, base_url FROM vendors WHERE id = $1")
                .bind(id.as_str())
                .fetch_one(&mut *tx)
                .await?;
        if old_kind == kind.as_str() && old_url.as_deref() == url {
            tx.rollback().await?;
            return Ok(Change::Unchanged);
        }
        sqlx::query("UPDATE vendors SET kind = $1, base_url = $2, updated_at = $3 WHERE id = $4")
            .bind(kind.as_str())
            .bind(url)
            .bind(now)
            .bind(id.as_str())
            .execute(&mut *tx)
            .await?;
        let event = AuditEvent::new(actor, "vendor_set", format!("vendor:{id}"))
            .before(json!({ "kind": old_kind, "base_url": old_url }))
            .after(json!({ "kind": kind.as_str(), "base_url": url }));
        tx.append_audit(&event).await?;
        tx.commit().await?;
        Ok(Change::Made)
    })
}

/// Sets a vendor's own poll interval (`None`: back to the server's schedule). Audited as
/// `vendor_poll_interval` with before and after, in seconds (`null` for the server's).
pub async fn set_poll_interval(
    db: &Db,
    id: &VendorId,
    interval: Option<PollInterval>,
    actor: &str,
) -> Result<Change, StorageError> {
    let now = now_utc();
    let secs = interval.map(|i| i64::from(i.secs()));
    on_db!(db, pool => {
        let mut tx = pool.begin().await?;
        if !tx.lock_vendor(id).await? {
            return Err(not_found(id));
        }
        let before: Option<i64> =
            sqlx::query_scalar("SELECT poll_interval_secs FROM vendors WHERE id = $1")
                .bind(id.as_str())
                .fetch_one(&mut *tx)
                .await?;
        if before == secs {
            tx.rollback().await?;
            return Ok(Change::Unchanged);
        }
        sqlx::query("UPDATE vendors SET poll_interval_secs = $1, updated_at = $2 WHERE id = $3")
            .bind(secs)
            .bind(now)
            .bind(id.as_str())
            .execute(&mut *tx)
            .await?;
        let event = AuditEvent::new(actor, "vendor_poll_interval", format!("vendor:{id}"))
            .before(json!({ "poll_interval_secs": before }))
            .after(json!({ "poll_interval_secs": secs }));
        tx.append_audit(&event).await?;
        tx.commit().await?;
        Ok(Change::Made)
    })
}

/// How to change a vendor's status mapping.
#[derive(Clone, Debug)]
pub enum MappingEdit {
    /// Replace the whole mapping (the editor's Save).
    Replace(StatusMapping),
    /// Map one more status (the one-click action on an unmapped status). A status already
    /// mapped to another state is refused, never overwritten.
    Add { status: String, state: GlState },
}

/// Changes a vendor's status mapping; audited as `vendor_status_mapping` with before and after.
/// The vendor's stored records whose status now maps to another state (or to none) take it in
/// the same transaction; reconciliation reads the mapping itself, so the next run agrees.
pub async fn edit_status_mapping(
    db: &Db,
    id: &VendorId,
    edit: &MappingEdit,
    actor: &str,
) -> Result<Change, StorageError> {
    let now = now_utc();
    on_db!(db, pool => {
        let mut tx = pool.begin().await?;
        if !tx.lock_vendor(id).await? {
            return Err(not_found(id));
        }
        let stored: String = sqlx::query_scalar("SELECT status_mapping FROM vendors WHERE id = $1")
            .bind(id.as_str())
            .fetch_one(&mut *tx)
            .await?;
        let before: StatusMapping = serde_json::from_str(&stored)
            .map_err(|e| corrupt(id, "status mapping", e))?;
        let after = match edit {
            MappingEdit::Replace(mapping) => mapping.clone(),
            MappingEdit::Add { status, state } => match before.with(status, *state) {
                Ok(mapping) => mapping,
                Err(err) => {
                    tx.rollback().await?;
                    return Err(StorageError::Conflict { what: err.to_string() });
                }
            },
        };
        if after == before {
            tx.rollback().await?;
            return Ok(Change::Unchanged);
        }
        let json = serde_json::to_value(&after).expect("a status mapping always serializes");
        sqlx::query("UPDATE vendors SET status_mapping = $1, updated_at = $2 WHERE id = $3")
            .bind(json.to_string())
            .bind(now)
            .bind(id.as_str())
            .execute(&mut *tx)
            .await?;
        // The vendor's records carry the state their status maps to: restate those whose
        // status now maps differently (statuses are few; records may be many).
        let statuses: Vec<String> =
            sqlx::query_scalar("SELECT DISTINCT status FROM vendor_records WHERE vendor_id = $1")
                .bind(id.as_str())
                .fetch_all(&mut *tx)
                .await?;
        for status in statuses {
            let state = after.gl_state_for(&status);
            if state == before.gl_state_for(&status) {
                continue;
            }
            sqlx::query(
                "UPDATE vendor_records SET gl_state = $1 WHERE vendor_id = $2 AND status = $3",
            )
            .bind(state.map(|s| s.as_str()))
            .bind(id.as_str())
            .bind(&status)
            .execute(&mut *tx)
            .await?;
        }
        let event = AuditEvent::new(actor, "vendor_status_mapping", format!("vendor:{id}"))
            .before(serde_json::to_value(&before).expect("a status mapping always serializes"))
            .after(json);
        tx.append_audit(&event).await?;
        tx.commit().await?;
        Ok(Change::Made)
    })
}

/// Which of a vendor's GL accounts to change; `None` keeps the current one.
#[derive(Clone, Debug, Default)]
pub struct AccountsEdit {
    pub clearing: Option<GlAccount>,
    pub payable: Option<GlAccount>,
    pub suspense: Option<GlAccount>,
}

type AccountsRow = (String, String, String, String, String, String);

/// Sets any of a vendor's GL accounts (until set, a vendor uses the defaults). Audited as
/// `vendor_gl_accounts` with before and after. Returns the accounts now in force.
pub async fn set_accounts(
    db: &Db,
    id: &VendorId,
    edit: &AccountsEdit,
    actor: &str,
) -> Result<(VendorAccounts, Change), StorageError> {
    let now = now_utc();
    on_db!(db, pool => {
        let mut tx = pool.begin().await?;
        if !tx.lock_vendor(id).await? {
            return Err(not_found(id));
        }
        let row: Option<AccountsRow> = sqlx::query_as(
            "SELECT clearing_code, clearing_name, payable_code, payable_name, suspense_code,
                    suspense_name FROM vendor_gl_accounts WHERE vendor_id = $1",
        )
        .bind(id.as_str())
        .fetch_optional(&mut *tx)
        .await?;
        let before = match row {
            None => VendorAccounts::default(),
            Some((cc, cn, pc, pn, sc, sn)) => {
                let account = |code: &str, name: &str| {
                    GlAccount::new(code, name).map_err(|e| corrupt(id, "GL account", e))
                };
                VendorAccounts {
                    clearing: account(&cc, &cn)?,
                    payable: account(&pc, &pn)?,
                    suspense: account(&sc, &sn)?,
                }
            }
        };
        let after = VendorAccounts {
            clearing: edit.clearing.clone().unwrap_or_else(|| before.clearing.clone()),
            payable: edit.payable.clone().unwrap_or_else(|| before.payable.clone()),
            suspense: edit.suspense.clone().unwrap_or_else(|| before.suspense.clone()),
        };
        if after == before {
            tx.rollback().await?;
            return Ok((after, Change::Unchanged));
        }
        sqlx::query(
            "INSERT INTO vendor_gl_accounts (vendor_id, clearing_code, clearing_name, payable_code,
                 payable_name, suspense_code, suspense_name, updated_at)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8)
             ON CONFLICT (vendor_id) DO UPDATE SET clearing_code = excluded.clearing_code,
                 clearing_name = excluded.clearing_name, payable_code = excluded.payable_code,
                 payable_name = excluded.payable_name, suspense_code = excluded.suspense_code,
                 suspense_name = excluded.suspense_name, updated_at = excluded.updated_at",
        )
        .bind(id.as_str())
        .bind(after.clearing.code())
        .bind(after.clearing.name())
        .bind(after.payable.code())
        .bind(after.payable.name())
        .bind(after.suspense.code())
        .bind(after.suspense.name())
        .bind(now)
        .execute(&mut *tx)
        .await?;
        let event = AuditEvent::new(actor, "vendor_gl_accounts", format!("vendor:{id}"))
            .before(serde_json::to_value(&before).expect("accounts always serialize"))
            .after(serde_json::to_value(&after).expect("accounts always serialize"));
        tx.append_audit(&event).await?;
        tx.commit().await?;
        Ok((after, Change::Made))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unmapped_keeps_only_what_the_mapping_misses_most_frequent_first() {
        let mapping = StatusMapping::generic_default();
        let seen = vec![
            ("COMPLETED".to_string(), 40),
            ("on_hold".to_string(), 2),
            ("Disputed".to_string(), 7),
            ("refunded".to_string(), 1),
            ("aaa".to_string(), 2),
        ];
        let list = unmapped(&mapping, seen);
        let names: Vec<(&str, i64)> = list
            .iter()
            .map(|u| (u.status.as_str(), u.records))
            .collect();
        assert_eq!(names, vec![("Disputed", 7), ("aaa", 2), ("on_hold", 2)]);
        let mapped = mapping.with("disputed", GlState::Failed).unwrap();
        assert!(unmapped(&mapped, vec![("DISPUTED".into(), 3)]).is_empty());
    }
}
