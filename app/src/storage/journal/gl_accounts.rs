//! The GL accounts each vendor's clearing entries use.

use super::*;

#[derive(sqlx::FromRow)]
struct AccountsRow {
    clearing_code: String,
    clearing_name: String,
    payable_code: String,
    payable_name: String,
    suspense_code: String,
    suspense_name: String,
}

/// The vendor's GL accounts (the defaults until someone sets them).
pub async fn accounts(db: &Db, vendor: &VendorId) -> Result<VendorAccounts, StorageError> {
    let row: Option<AccountsRow> = on_db!(db, pool => {
        sqlx::query_as(
            "SELECT clearing_code, clearing_name, payable_code, payable_name, suspense_code,
                    suspense_name FROM vendor_gl_accounts WHERE vendor_id = $1",
        )
        .bind(vendor.as_str())
        .fetch_optional(pool)
        .await
    })?;
    let Some(row) = row else {
        return Ok(VendorAccounts::default());
    };
    let account = |code: &str, name: &str| {
        GlAccount::new(code, name).map_err(|e| {
            corrupt(format!(
                "vendor {vendor}: stored GL account is invalid: {e}"
            ))
        })
    };
    Ok(VendorAccounts {
        clearing: account(&row.clearing_code, &row.clearing_name)?,
        payable: account(&row.payable_code, &row.payable_name)?,
        suspense: account(&row.suspense_code, &row.suspense_name)?,
    })
}

/// Sets any of the vendor's accounts; returns the accounts before and after. Records nothing in
/// the audit trail itself: the caller knows the actor.
pub async fn set_accounts(
    db: &Db,
    vendor: &VendorId,
    clearing: Option<GlAccount>,
    payable: Option<GlAccount>,
    suspense: Option<GlAccount>,
) -> Result<(VendorAccounts, VendorAccounts), StorageError> {
    let now = now_utc();
    let exists: Option<String> = on_db!(db, pool => {
        sqlx::query_scalar("SELECT id FROM vendors WHERE id = $1")
            .bind(vendor.as_str())
            .fetch_optional(pool)
            .await
    })?;
    if exists.is_none() {
        return Err(StorageError::NotFound {
            what: format!("vendor {:?}", vendor.as_str()),
        });
    }
    let before = accounts(db, vendor).await?;
    let after = VendorAccounts {
        clearing: clearing.unwrap_or_else(|| before.clearing.clone()),
        payable: payable.unwrap_or_else(|| before.payable.clone()),
        suspense: suspense.unwrap_or_else(|| before.suspense.clone()),
    };
    on_db!(db, pool => {
        sqlx::query(
            "INSERT INTO vendor_gl_accounts (vendor_id, clearing_code, clearing_name, payable_code,
                 payable_name, suspense_code, suspense_name, updated_at)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8)
             ON CONFLICT (vendor_id) DO UPDATE SET clearing_code = excluded.clearing_code,
                 clearing_name = excluded.clearing_name, payable_code = excluded.payable_code,
                 payable_name = excluded.payable_name, suspense_code = excluded.suspense_code,
                 suspense_name = excluded.suspense_name, updated_at = excluded.updated_at",
        )
        .bind(vendor.as_str())
        .bind(after.clearing.code())
        .bind(after.clearing.name())
        .bind(after.payable.code())
        .bind(after.payable.name())
        .bind(after.suspense.code())
        .bind(after.suspense.name())
        .bind(now)
        .execute(pool)
        .await
        .map(|_| ())
    })?;
    Ok((before, after))
}
