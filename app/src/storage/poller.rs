//! The poller's lease and cursor, per vendor.
//!
//! Leader election is a row per vendor in `poller_leases`, taken with one conditional upsert (no
//! advisory locks, so it works through any connection pool and on SQLite): a replica gets the
//! lease when nobody holds it, when the holder's lease has expired, or when it already holds it
//! (a renewal). Every acquisition by a new holder increments the fencing token; every write of a
//! page first checks, in its own transaction, that the token is still the current one, so a
//! poller that stalled past its lease and lost it cannot write anything.
//!
//! The cursor advances in the same transaction as the page it follows: a crash between pages
//! resumes after the last stored page, and a page stored twice changes nothing (upserts).

use chrono::{DateTime, Utc};

use super::vendor_records::{record_observation, ObservedOrder, RecordSource};
use super::{now_utc, Db, StorageError};
use crate::on_db;

/// A held lease: the fencing token to present on every write.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Lease {
    pub vendor_id: String,
    pub holder: String,
    pub fencing_token: i64,
    pub expires_at: DateTime<Utc>,
}

/// Takes or renews the lease on `vendor_id` for `holder` until `now + ttl`; `None` when another
/// holder has an unexpired lease.
pub async fn acquire_lease(
    db: &Db,
    vendor_id: &str,
    holder: &str,
    ttl: chrono::Duration,
) -> Result<Option<Lease>, StorageError> {
    let now = now_utc();
    let expires_at = now + ttl;
    let token: Option<i64> = on_db!(db, pool => {
        sqlx::query_scalar(
            "INSERT INTO poller_leases (vendor_id, holder, fencing_token, expires_at, renewed_at)
             VALUES ($1, $2, 1, $3, $4)
             ON CONFLICT (vendor_id) DO UPDATE
                SET fencing_token = CASE
                        WHEN poller_leases.holder = excluded.holder
                         AND poller_leases.expires_at > excluded.renewed_at
                        THEN poller_leases.fencing_token
                        ELSE poller_leases.fencing_token + 1 END,
                    holder = excluded.holder,
                    expires_at = excluded.expires_at,
                    renewed_at = excluded.renewed_at
              WHERE poller_leases.holder = excluded.holder
                 OR poller_leases.expires_at <= excluded.renewed_at
             RETURNING fencing_token",
        )
        .bind(vendor_id)
        .bind(holder)
        .bind(expires_at)
        .bind(now)
        .fetch_optional(pool)
        .await
    })?;
    Ok(token.map(|fencing_token| Lease {
        vendor_id: vendor_id.to_string(),
        holder: holder.to_string(),
        fencing_token,
        expires_at,
    }))
}

/// Gives the lease up (on shutdown) so another replica need not wait for it to expire.
pub async fn release_lease(db: &Db, lease: &Lease) -> Result<(), StorageError> {
    let now = now_utc();
    on_db!(db, pool => {
        sqlx::query(
            "UPDATE poller_leases SET expires_at = $1
              WHERE vendor_id = $2 AND holder = $3 AND fencing_token = $4",
        )
        .bind(now)
        .bind(&lease.vendor_id)
        .bind(&lease.holder)
        .bind(lease.fencing_token)
        .execute(pool)
        .await
        .map(|_| ())
    })?;
    Ok(())
}

/// The current lease row of a vendor: (holder, fencing token, expires at).
pub async fn lease_of(
    db: &Db,
    vendor_id: &str,
) -> Result<Option<(String, i64, DateTime<Utc>)>, StorageError> {
    Ok(on_db!(db, pool => {
        sqlx::query_as(
            "SELECT holder, fencing_token, expires_at FROM poller_leases WHERE vendor_id = $1",
        )
        .bind(vendor_id)
        .fetch_optional(pool)
        .await
    })?)
}

/// How far a vendor has been read.
#[derive(Clone, Debug, Default, PartialEq, Eq, sqlx::FromRow)]
pub struct PollCursor {
    /// Everything updated before this was read by a completed pass.
    pub synced_to: Option<DateTime<Utc>>,
    /// The window of the pass in progress, if one is.
    pub pass_from: Option<DateTime<Utc>>,
    pub pass_to: Option<DateTime<Utc>>,
    /// The next page of the pass in progress (`None`: its first page).
    pub page_cursor: Option<String>,
    /// Pages stored, ever.
    pub pages: i64,
}

pub async fn cursor(db: &Db, vendor_id: &str) -> Result<PollCursor, StorageError> {
    let row: Option<PollCursor> = on_db!(db, pool => {
        sqlx::query_as(
            "SELECT synced_to, pass_from, pass_to, page_cursor, pages
               FROM poller_cursors WHERE vendor_id = $1",
        )
        .bind(vendor_id)
        .fetch_optional(pool)
        .await
    })?;
    Ok(row.unwrap_or_default())
}

/// Checks the fence as the transaction's first statement (a write, so SQLite takes its write
/// lock and PostgreSQL locks the lease row until commit: a new holder waits for this page).
/// Evaluates to `Result<bool, sqlx::Error>`: false means the token is stale.
macro_rules! fence {
    ($tx:expr, $lease:expr) => {
        sqlx::query(
            "UPDATE poller_leases SET fencing_token = fencing_token
              WHERE vendor_id = $1 AND holder = $2 AND fencing_token = $3",
        )
        .bind(&$lease.vendor_id)
        .bind(&$lease.holder)
        .bind($lease.fencing_token)
        .execute(&mut **$tx)
        .await
        .map(|done| done.rows_affected() == 1)
    };
}

/// Starts a pass over `[from, to)`. `Ok(false)`: the lease was lost, nothing written.
pub async fn begin_pass(
    db: &Db,
    lease: &Lease,
    from: DateTime<Utc>,
    to: DateTime<Utc>,
) -> Result<bool, StorageError> {
    let now = now_utc();
    Ok(on_db!(db, pool => {
        async {
            let mut tx = pool.begin().await?;
            if !fence!(&mut tx, lease)? {
                tx.rollback().await?;
                return Ok::<bool, sqlx::Error>(false);
            }
            sqlx::query(
                "INSERT INTO poller_cursors (vendor_id, pass_from, pass_to, page_cursor, pages, updated_at)
                 VALUES ($1, $2, $3, NULL, 0, $4)
                 ON CONFLICT (vendor_id) DO UPDATE
                    SET pass_from = excluded.pass_from, pass_to = excluded.pass_to,
                        page_cursor = NULL, updated_at = excluded.updated_at",
            )
            .bind(&lease.vendor_id)
            .bind(from)
            .bind(to)
            .bind(now)
            .execute(&mut *tx)
            .await?;
            tx.commit().await?;
            Ok(true)
        }
        .await
    })?)
}

/// What storing a page did.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct PageStored {
    pub records: u64,
    /// Orders whose GL state the page moved forward (what webhooks had missed).
    pub backfills: u64,
    /// Records of orders giftrecon does not know.
    pub vendor_only: u64,
    /// The pass is complete (this was its last page).
    pub finished: bool,
}

/// Stores one page of the pass in progress and advances the cursor past it, in one transaction
/// fenced by the lease. `next_cursor = None` completes the pass: `synced_to` takes `pass_to`.
/// `Ok(None)`: the token is stale and nothing was written.
pub async fn store_page(
    db: &Db,
    lease: &Lease,
    records: &[ObservedOrder],
    next_cursor: Option<&str>,
) -> Result<Option<PageStored>, StorageError> {
    let now = now_utc();
    let lock = match db {
        Db::Postgres(_) => " FOR UPDATE",
        Db::Sqlite(_) => "",
    };
    Ok(on_db!(db, pool => {
        async {
            let mut tx = pool.begin().await?;
            if !fence!(&mut tx, lease)? {
                tx.rollback().await?;
                return Ok::<Option<PageStored>, sqlx::Error>(None);
            }
            let mut stored = PageStored::default();
            for observed in records {
                let applied = record_observation!(&mut tx, lock, &lease.vendor_id, observed, RecordSource::Poll, now).await?;
                stored.records += 1;
                match (&applied.order_id, applied.advanced) {
                    (Some(order_id), Some((from, to))) => {
                        stored.backfills += 1;
                        let detail = serde_json::json!({
                            "vendor_order_id": observed.vendor_order_id,
                            "vendor_status": observed.status,
                            "from": from.as_str(),
                            "gl_state": to.as_str(),
                        });
                        sqlx::query(
                            "INSERT INTO order_events (order_id, kind, detail, actor, created_at)
                             VALUES ($1, 'poll', $2, 'poller', $3)",
                        )
                        .bind(order_id)
                        .bind(detail.to_string())
                        .bind(now)
                        .execute(&mut *tx)
                        .await?;
                    }
                    (None, _) => stored.vendor_only += 1,
                    _ => {}
                }
            }
            stored.finished = next_cursor.is_none();
            sqlx::query(
                "UPDATE poller_cursors
                    SET page_cursor = $1,
                        synced_to = CASE WHEN $2 THEN pass_to ELSE synced_to END,
                        pass_from = CASE WHEN $2 THEN NULL ELSE pass_from END,
                        pass_to = CASE WHEN $2 THEN NULL ELSE pass_to END,
                        pages = pages + 1,
                        updated_at = $3
                  WHERE vendor_id = $4",
            )
            .bind(next_cursor)
            .bind(stored.finished)
            .bind(now)
            .bind(&lease.vendor_id)
            .execute(&mut *tx)
            .await?;
            tx.commit().await?;
            Ok(Some(stored))
        }
        .await
    })?)
}
