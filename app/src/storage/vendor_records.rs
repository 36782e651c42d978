//! Vendor records: every order a vendor has told us about, by webhook, poll or file.
//!
//! One row per (vendor, vendor order id), upserted idempotently; the row keeps the vendor's
//! latest view (a stale observation, older by the vendor's `updated_at`, changes nothing).
//! Matching to orders is by `vendor_key = orders.vendor_key` (then by the vendor's order id);
//! a record with no order is vendor-only, a backfill candidate for reconciliation.
//!
//! Observations also move the matched order's GL state, forward only
//! ([`GlState::may_advance_to`]), in the caller's transaction: see [`record_observation!`].

use chrono::{DateTime, Utc};

use super::{Db, StorageError};
use crate::domain::{Currency, GlState, Money};
use crate::on_db;

/// An order as a vendor reported it, with its status already mapped to a GL state.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ObservedOrder {
    pub vendor_order_id: String,
    pub vendor_key: Option<String>,
    pub reference_id: Option<String>,
    pub brand_id: Option<String>,
    pub amount: Money,
    pub status: String,
    /// `None` when the vendor's status is not in the vendor's mapping (no GL change).
    pub gl_state: Option<GlState>,
    pub created_at: Option<DateTime<Utc>>,
    pub updated_at: Option<DateTime<Utc>>,
}

/// Where an observation came from.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RecordSource {
    Webhook,
    Poll,
    File,
}

impl RecordSource {
    pub fn as_str(self) -> &'static str {
        match self {
            RecordSource::Webhook => "webhook",
            RecordSource::Poll => "poll",
            RecordSource::File => "file",
        }
    }
}

/// What recording one observation did.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Applied {
    /// The matched order, if giftrecon knows it.
    pub order_id: Option<String>,
    /// The order's GL state before and after, when the observation moved it forward.
    pub advanced: Option<(GlState, GlState)>,
}

/// Upserts the vendor record and applies it to the matched order, forward only, inside an open
/// transaction `$tx` (`&mut Transaction`). `$lock` is `" FOR UPDATE"` on PostgreSQL, `""` on
/// SQLite (which has one writer at a time). Evaluates to `Result<Applied, sqlx::Error>`.
///
/// A macro rather than a function because the one SQL text runs on both pool types.
macro_rules! record_observation {
    ($tx:expr, $lock:expr, $vendor_id:expr, $obs:expr, $source:expr, $now:expr) => {
        async {
            let obs: &$crate::storage::vendor_records::ObservedOrder = $obs;
            let vendor_id: &str = $vendor_id;
            let now: chrono::DateTime<chrono::Utc> = $now;
            // By our key first, then by the vendor's order id: two indexed lookups. (One query
            // with `vendor_key = $2 OR vendor_order_id = $3` made SQLite scan every order of
            // the vendor.)
            let by_key = format!(
                "SELECT id, gl_state FROM orders WHERE vendor_id = $1 AND vendor_key = $2{}",
                $lock
            );
            let by_vendor_order_id = format!(
                "SELECT id, gl_state FROM orders WHERE vendor_id = $1 AND vendor_order_id = $2 LIMIT 1{}",
                $lock
            );
            let mut order: Option<(String, String)> = None;
            if let Some(key) = &obs.vendor_key {
                order = sqlx::query_as(&by_key)
                    .bind(vendor_id)
                    .bind(key)
                    .fetch_optional(&mut **$tx)
                    .await?;
            }
            if order.is_none() {
                order = sqlx::query_as(&by_vendor_order_id)
                    .bind(vendor_id)
                    .bind(&obs.vendor_order_id)
                    .fetch_optional(&mut **$tx)
                    .await?;
            }
            sqlx::query(
                "INSERT INTO vendor_records (vendor_id, vendor_order_id, vendor_key, reference_id,
                    brand_id, amount_minor, currency, status, gl_state, order_id, source,
                    created_at, updated_at, first_seen_at, last_seen_at, occurred_at)
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $14,
                    COALESCE($12, $14))
                 ON CONFLICT (vendor_id, vendor_order_id) DO UPDATE
                    SET vendor_key = COALESCE(vendor_records.vendor_key, excluded.vendor_key),
                        reference_id = COALESCE(excluded.reference_id, vendor_records.reference_id),
                        brand_id = COALESCE(excluded.brand_id, vendor_records.brand_id),
                        amount_minor = excluded.amount_minor,
                        currency = excluded.currency,
                        status = excluded.status,
                        gl_state = excluded.gl_state,
                        order_id = COALESCE(vendor_records.order_id, excluded.order_id),
                        source = excluded.source,
                        created_at = COALESCE(vendor_records.created_at, excluded.created_at),
                        updated_at = COALESCE(excluded.updated_at, vendor_records.updated_at),
                        last_seen_at = excluded.last_seen_at,
                        occurred_at = COALESCE(vendor_records.created_at, excluded.created_at,
                            vendor_records.occurred_at)
                  WHERE vendor_records.updated_at IS NULL OR excluded.updated_at IS NULL
                     OR excluded.updated_at >= vendor_records.updated_at",
            )
            .bind(vendor_id)
            .bind(&obs.vendor_order_id)
            .bind(&obs.vendor_key)
            .bind(&obs.reference_id)
            .bind(&obs.brand_id)
            .bind(obs.amount.minor_units())
            .bind(obs.amount.currency().code())
            .bind(&obs.status)
            .bind(obs.gl_state.map(|s| s.as_str()))
            .bind(order.as_ref().map(|(id, _)| id.as_str()))
            .bind($source.as_str())
            .bind(obs.created_at)
            .bind(obs.updated_at)
            .bind(now)
            .execute(&mut **$tx)
            .await?;
            let mut applied = $crate::storage::vendor_records::Applied::default();
            if let Some((order_id, current)) = order {
                let current = $crate::domain::GlState::parse(&current).ok();
                let advanced = match (current, obs.gl_state) {
                    (Some(cur), Some(next)) if cur.may_advance_to(next) => Some((cur, next)),
                    _ => None,
                };
                if let Some((_, next)) = advanced {
                    sqlx::query(
                        "UPDATE orders SET gl_state = $1, vendor_status = $2,
                                vendor_order_id = COALESCE(vendor_order_id, $3), updated_at = $4
                          WHERE id = $5",
                    )
                    .bind(next.as_str())
                    .bind(&obs.status)
                    .bind(&obs.vendor_order_id)
                    .bind(now)
                    .bind(&order_id)
                    .execute(&mut **$tx)
                    .await?;
                } else {
                    sqlx::query(
                        "UPDATE orders SET vendor_order_id = $1 WHERE id = $2 AND vendor_order_id IS NULL",
                    )
                    .bind(&obs.vendor_order_id)
                    .bind(&order_id)
                    .execute(&mut **$tx)
                    .await?;
                }
                applied.order_id = Some(order_id);
                applied.advanced = advanced;
            }
            Ok::<$crate::storage::vendor_records::Applied, sqlx::Error>(applied)
        }
    };
}
pub(crate) use record_observation;

/// A vendor record as stored.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct VendorRecord {
    pub vendor_id: String,
    pub vendor_order_id: String,
    pub vendor_key: Option<String>,
    pub reference_id: Option<String>,
    pub brand_id: Option<String>,
    pub amount: Money,
    pub status: String,
    pub gl_state: Option<GlState>,
    pub order_id: Option<String>,
    pub source: String,
    pub created_at: Option<DateTime<Utc>>,
    pub updated_at: Option<DateTime<Utc>>,
    pub first_seen_at: DateTime<Utc>,
    pub last_seen_at: DateTime<Utc>,
}

#[derive(sqlx::FromRow)]
struct VendorRecordRow {
    vendor_id: String,
    vendor_order_id: String,
    vendor_key: Option<String>,
    reference_id: Option<String>,
    brand_id: Option<String>,
    amount_minor: i64,
    currency: String,
    status: String,
    gl_state: Option<String>,
    order_id: Option<String>,
    source: String,
    created_at: Option<DateTime<Utc>>,
    updated_at: Option<DateTime<Utc>>,
    first_seen_at: DateTime<Utc>,
    last_seen_at: DateTime<Utc>,
}

impl TryFrom<VendorRecordRow> for VendorRecord {
    type Error = StorageError;
    fn try_from(r: VendorRecordRow) -> Result<Self, StorageError> {
        let corrupt = |what: String| super::orders::corrupt(what);
        let currency = Currency::parse(&r.currency).map_err(|e| {
            corrupt(format!(
                "vendor record {}: currency: {e}",
                r.vendor_order_id
            ))
        })?;
        let gl_state = r
            .gl_state
            .as_deref()
            .map(GlState::parse)
            .transpose()
            .map_err(|e| {
                corrupt(format!(
                    "vendor record {}: GL state: {e}",
                    r.vendor_order_id
                ))
            })?;
        Ok(VendorRecord {
            amount: Money::from_minor(r.amount_minor, currency),
            gl_state,
            vendor_id: r.vendor_id,
            vendor_order_id: r.vendor_order_id,
            vendor_key: r.vendor_key,
            reference_id: r.reference_id,
            brand_id: r.brand_id,
            status: r.status,
            order_id: r.order_id,
            source: r.source,
            created_at: r.created_at,
            updated_at: r.updated_at,
            first_seen_at: r.first_seen_at,
            last_seen_at: r.last_seen_at,
        })
    }
}

const RECORD_COLUMNS: &str = "vendor_id, vendor_order_id, vendor_key, reference_id, brand_id, \
     amount_minor, currency, status, gl_state, order_id, source, created_at, updated_at, \
     first_seen_at, last_seen_at";

/// Every record of a vendor, by vendor order id.
pub async fn list(db: &Db, vendor_id: &str) -> Result<Vec<VendorRecord>, StorageError> {
    let sql = format!(
        "SELECT {RECORD_COLUMNS} FROM vendor_records WHERE vendor_id = $1 ORDER BY vendor_order_id"
    );
    let rows: Vec<VendorRecordRow> = on_db!(db, pool => {
        sqlx::query_as(&sql).bind(vendor_id).fetch_all(pool).await
    })?;
    rows.into_iter().map(VendorRecord::try_from).collect()
}

/// One record, by the vendor's order id.
pub async fn get(
    db: &Db,
    vendor_id: &str,
    vendor_order_id: &str,
) -> Result<Option<VendorRecord>, StorageError> {
    let sql = format!(
        "SELECT {RECORD_COLUMNS} FROM vendor_records WHERE vendor_id = $1 AND vendor_order_id = $2"
    );
    let row: Option<VendorRecordRow> = on_db!(db, pool => {
        sqlx::query_as(&sql).bind(vendor_id).bind(vendor_order_id).fetch_optional(pool).await
    })?;
    row.map(VendorRecord::try_from).transpose()
}

/// The records matched to one order, by vendor order id.
pub async fn for_order(db: &Db, order_id: &str) -> Result<Vec<VendorRecord>, StorageError> {
    let sql = format!(
        "SELECT {RECORD_COLUMNS} FROM vendor_records WHERE order_id = $1 ORDER BY vendor_order_id"
    );
    let rows: Vec<VendorRecordRow> = on_db!(db, pool => {
        sqlx::query_as(&sql).bind(order_id).fetch_all(pool).await
    })?;
    rows.into_iter().map(VendorRecord::try_from).collect()
}
