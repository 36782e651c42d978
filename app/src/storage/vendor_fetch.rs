//! Jobs that read an order from its vendor because a verified webhook only named it (no status,
//! no amount) and giftrecon does not know it.
//!
//! The webhook's transaction queues the job (one pending job per vendor order); a worker claims
//! it with a lease, calls the vendor with no transaction open, then records what the vendor said
//! as a vendor record (vendor-only unless an order has since matched) in one transaction fenced
//! by its lease, like `outbox_jobs`.

use chrono::{DateTime, Utc};

use super::vendor_records::{record_observation, Applied, ObservedOrder, RecordSource};
use super::{now_utc, Db, StorageError};
use crate::on_db;

/// A fetch job leased to a worker.
#[derive(Clone, Debug, PartialEq, Eq, sqlx::FromRow)]
pub struct FetchJob {
    pub id: i64,
    pub vendor_id: String,
    pub vendor_order_id: String,
    /// Attempts including this one.
    pub attempts: i32,
}

/// How a fetch ended.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum FetchOutcome {
    /// The vendor answered with the order: record it.
    Found(ObservedOrder),
    /// Try again at `run_at` (the vendor did not answer, or does not know the order yet).
    Retry {
        run_at: DateTime<Utc>,
        error: String,
    },
    /// Give up; the poller's next pass still reads every order the vendor has.
    Dead { reason: String },
}

/// Leases the next due fetch job to `worker` until `now + lease`.
pub async fn claim_due(
    db: &Db,
    worker: &str,
    lease: chrono::Duration,
) -> Result<Option<FetchJob>, StorageError> {
    let now = now_utc();
    let skip_locked = match db {
        Db::Postgres(_) => " FOR UPDATE SKIP LOCKED",
        Db::Sqlite(_) => "",
    };
    let sql = format!(
        "UPDATE vendor_fetch_jobs
            SET locked_by = $1, locked_until = $2, attempts = attempts + 1, updated_at = $3
          WHERE id = (SELECT id FROM vendor_fetch_jobs
                       WHERE state = 'pending' AND run_at <= $3
                         AND (locked_until IS NULL OR locked_until <= $3)
                       ORDER BY run_at, id LIMIT 1{skip_locked})
            AND state = 'pending' AND (locked_until IS NULL OR locked_until <= $3)
        RETURNING id, vendor_id, vendor_order_id, attempts"
    );
    Ok(on_db!(db, pool => {
        sqlx::query_as(&sql)
            .bind(worker)
            .bind(now + lease)
            .bind(now)
            .fetch_optional(pool)
            .await
    })?)
}

/// When the next fetch job falls due, if any is pending.
pub async fn next_due_at(db: &Db) -> Result<Option<DateTime<Utc>>, StorageError> {
    Ok(on_db!(db, pool => {
        sqlx::query_scalar(
            "SELECT MIN(CASE WHEN locked_until IS NOT NULL AND locked_until > run_at
                             THEN locked_until ELSE run_at END)
               FROM vendor_fetch_jobs WHERE state = 'pending'",
        )
        .fetch_one(pool)
        .await
    })?)
}

/// Records a fetch's outcome in one transaction fenced by the lease: `Ok(None)` (nothing
/// changed) when `worker` no longer holds the job; for `Found`, what recording the order did.
pub async fn finish(
    db: &Db,
    job: &FetchJob,
    worker: &str,
    outcome: &FetchOutcome,
) -> Result<Option<Applied>, StorageError> {
    let now = now_utc();
    let lock = match db {
        Db::Postgres(_) => " FOR UPDATE",
        Db::Sqlite(_) => "",
    };
    let (state, run_at, last_error) = match outcome {
        FetchOutcome::Found(_) => ("done", None, None),
        FetchOutcome::Retry { run_at, error } => ("pending", Some(*run_at), Some(error.as_str())),
        FetchOutcome::Dead { reason } => ("dead", None, Some(reason.as_str())),
    };
    Ok(on_db!(db, pool => {
        async {
            let mut tx = pool.begin().await?;
            // The fence, and the first statement a write (SQLite takes its write lock here).
            let fenced = sqlx::query(
                "UPDATE vendor_fetch_jobs
                    SET state = $1, run_at = COALESCE($2, run_at), last_error = $3,
                        locked_by = NULL, locked_until = NULL, updated_at = $4
                  WHERE id = $5 AND locked_by = $6 AND state = 'pending'",
            )
            .bind(state)
            .bind(run_at)
            .bind(last_error)
            .bind(now)
            .bind(job.id)
            .bind(worker)
            .execute(&mut *tx)
            .await?;
            if fenced.rows_affected() != 1 {
                tx.rollback().await?;
                return Ok::<Option<Applied>, sqlx::Error>(None);
            }
            let applied = match outcome {
                FetchOutcome::Found(observed) => {
                    record_observation!(&mut tx, lock, &job.vendor_id, observed, RecordSource::Webhook, now).await?
                }
                _ => Applied::default(),
            };
            tx.commit().await?;
            Ok(Some(applied))
        }
        .await
    })?)
}

/// Counts of fetch jobs by state, for tests and metrics.
pub async fn counts(db: &Db) -> Result<Vec<(String, i64)>, StorageError> {
    Ok(on_db!(db, pool => {
        sqlx::query_as("SELECT state, COUNT(*) FROM vendor_fetch_jobs GROUP BY state ORDER BY state")
            .fetch_all(pool)
            .await
    })?)
}
