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
