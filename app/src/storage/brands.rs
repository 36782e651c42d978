//! The brands each vendor sells.

use super::{now_utc, Db, StorageError};
use crate::domain::VendorId;
use crate::on_db;

pub async fn add(
    db: &Db,
    vendor: &VendorId,
    brand_id: &str,
    name: Option<&str>,
) -> Result<(), StorageError> {
    let now = now_utc();
    on_db!(db, pool => {
        sqlx::query("INSERT INTO brands (vendor_id, brand_id, name, created_at) VALUES ($1, $2, $3, $4)")
            .bind(vendor.as_str())
            .bind(brand_id)
            .bind(name)
            .bind(now)
            .execute(pool)
            .await
            .map(|r| r.rows_affected())
    })
    .map_err(|e| {
        StorageError::unique_or(e, || format!("brand {brand_id:?} of vendor {:?}", vendor.as_str()))
    })?;
    Ok(())
}

pub async fn exists(db: &Db, vendor: &VendorId, brand_id: &str) -> Result<bool, StorageError> {
    let found: Option<i32> = on_db!(db, pool => {
        sqlx::query_scalar("SELECT 1 FROM brands WHERE vendor_id = $1 AND brand_id = $2")
            .bind(vendor.as_str())
            .bind(brand_id)
            .fetch_optional(pool)
            .await
    })?;
    Ok(found.is_some())
}

/// (vendor, brand, name) rows, optionally for one vendor.
pub async fn list(
    db: &Db,
    vendor: Option<&VendorId>,
) -> Result<Vec<(String, String, Option<String>)>, StorageError> {
    Ok(on_db!(db, pool => {
        sqlx::query_as(
            "SELECT vendor_id, brand_id, name FROM brands
             WHERE $1 IS NULL OR vendor_id = $1 ORDER BY vendor_id, brand_id",
        )
        .bind(vendor.map(VendorId::as_str))
        .fetch_all(pool)
        .await
    })?)
}
