//! Daily totals of a vendor's fulfilled business, ours beside the vendor's.

use std::collections::BTreeMap;

use chrono::{NaiveDate, TimeZone, Utc};

use super::{Db, StorageError};
use crate::domain::matching::{CurrencyTotals, SideTotal};
use crate::domain::{Currency, Money};
use crate::on_db;

/// Per currency, the count and amount of fulfilled orders (ours: `orders`) and fulfilled vendor
/// records (theirs: `vendor_records`) created on `day` (UTC). `None` when the day has no data on
/// either side yet, i.e. it cannot have been reconciled.
pub async fn day_totals(
    db: &Db,
    vendor_id: &str,
    day: NaiveDate,
) -> Result<Option<BTreeMap<Currency, CurrencyTotals>>, StorageError> {
    let from = Utc.from_utc_datetime(&day.and_hms_opt(0, 0, 0).expect("midnight exists"));
    let to = from + chrono::Duration::days(1);
    let any_data: i64 = on_db!(db, pool => {
        sqlx::query_scalar(
            "SELECT (SELECT COUNT(*) FROM orders
                      WHERE vendor_id = $1 AND created_at >= $2 AND created_at < $3)
                  + (SELECT COUNT(*) FROM vendor_records
                      WHERE vendor_id = $1 AND created_at >= $2 AND created_at < $3)",
        )
        .bind(vendor_id)
        .bind(from)
        .bind(to)
        .fetch_one(pool)
        .await
    })?;
    if any_data == 0 {
        return Ok(None);
    }
    let side = |table: &str| {
        format!(
            "SELECT currency, COUNT(*), CAST(SUM(amount_minor) AS BIGINT) FROM {table}
              WHERE vendor_id = $1 AND gl_state = 'fulfilled' AND created_at >= $2 AND created_at < $3
              GROUP BY currency"
        )
    };
    let mut totals: BTreeMap<Currency, CurrencyTotals> = BTreeMap::new();
    for (table, ours) in [("orders", true), ("vendor_records", false)] {
        let sql = side(table);
        let rows: Vec<(String, i64, i64)> = on_db!(db, pool => {
            sqlx::query_as(&sql)
                .bind(vendor_id)
                .bind(from)
                .bind(to)
                .fetch_all(pool)
                .await
        })?;
        for (code, count, minor) in rows {
            let currency = Currency::parse(&code).map_err(|e| {
                StorageError::Database(sqlx::Error::Decode(
                    format!("{table}: stored currency {code:?} is invalid: {e}").into(),
                ))
            })?;
            let zero = SideTotal {
                count: 0,
                amount: Money::zero(currency),
            };
            let entry = totals.entry(currency).or_insert(CurrencyTotals {
                internal: zero,
                vendor: zero,
            });
            let total = SideTotal {
                count: u64::try_from(count).unwrap_or(0),
                amount: Money::from_minor(minor, currency),
            };
            if ours {
                entry.internal = total;
            } else {
                entry.vendor = total;
            }
        }
    }
    Ok(Some(totals))
}
