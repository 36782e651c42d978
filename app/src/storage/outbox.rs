//! The durable outbox: jobs that call vendors, leased by workers.
//!
//! A worker claims a due job (a lease with its name and an expiry), calls the vendor with no
//! transaction open, then records the outcome in one transaction fenced by its lease: if the
//! lease was lost (the worker stalled past its expiry and another took the job over), the
//! outcome is dropped and the other worker's attempt counts. A crash anywhere leaves the job to
//! be claimed again once the lease expires, and the vendor sees the same key again.

use chrono::{DateTime, Utc};

use super::orders::Submission;
use super::{now_utc, Db, StorageError};
use crate::domain::GlState;
use crate::on_db;

/// What a job does.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum JobKind {
    /// Send the order to its vendor (same vendor key on every attempt).
    PlaceOrder,
    /// Ask the vendor for the order's current state until it is final.
    SyncOrder,
}

impl JobKind {
    pub fn as_str(self) -> &'static str {
        match self {
            JobKind::PlaceOrder => "place_order",
            JobKind::SyncOrder => "sync_order",
        }
    }

    fn parse(s: &str) -> Option<JobKind> {
        [JobKind::PlaceOrder, JobKind::SyncOrder]
            .into_iter()
            .find(|k| k.as_str() == s)
    }
}

/// A job leased to a worker.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Job {
    pub id: i64,
    pub kind: JobKind,
    pub order_id: String,
    /// Attempts including this one.
    pub attempts: i32,
}

/// Leases the next due job to `worker` until `now + lease`.
pub async fn claim_due(
    db: &Db,
    worker: &str,
    lease: chrono::Duration,
) -> Result<Option<Job>, StorageError> {
    let now = now_utc();
    // PostgreSQL: SKIP LOCKED lets replicas claim different jobs without waiting on each
    // other. SQLite serializes writers, so the plain subquery is already exclusive.
    let skip_locked = match db {
        Db::Postgres(_) => " FOR UPDATE SKIP LOCKED",
        Db::Sqlite(_) => "",
    };
    let sql = format!(
        "UPDATE outbox_jobs
            SET locked_by = $1, locked_until = $2, attempts = attempts + 1, updated_at = $3
          WHERE id = (SELECT id FROM outbox_jobs
                       WHERE state = 'pending' AND run_at <= $3
                         AND (locked_until IS NULL OR locked_until <= $3)
                       ORDER BY run_at, id LIMIT 1{skip_locked})
            AND state = 'pending' AND (locked_until IS NULL OR locked_until <= $3)
        RETURNING id, kind, order_id, attempts"
    );
    let row: Option<(i64, String, String, i32)> = on_db!(db, pool => {
        sqlx::query_as(&sql)
            .bind(worker)
            .bind(now + lease)
            .bind(now)
            .fetch_optional(pool)
            .await
    })?;
    row.map(|(id, kind, order_id, attempts)| {
        let kind = JobKind::parse(&kind)
            .ok_or_else(|| super::orders::corrupt(format!("outbox job {id}: kind {kind:?}")))?;
        Ok(Job {
            id,
            kind,
            order_id,
            attempts,
        })
    })
    .transpose()
}

/// When the next job falls due (for sleeping until then), if any is pending.
pub async fn next_due_at(db: &Db) -> Result<Option<DateTime<Utc>>, StorageError> {
    Ok(on_db!(db, pool => {
        sqlx::query_scalar(
            "SELECT MIN(CASE WHEN locked_until IS NOT NULL AND locked_until > run_at
                             THEN locked_until ELSE run_at END)
               FROM outbox_jobs WHERE state = 'pending'",
        )
        .fetch_one(pool)
        .await
    })?)
}

/// What a vendor said about an order, to be applied forward-only.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct VendorObservation {
    pub vendor_order_id: Option<String>,
    pub vendor_status: Option<String>,
    /// The GL state the vendor status maps to; `None` when unmapped (the state is kept).
    pub gl_state: Option<GlState>,
}

/// How a job ended.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum JobOutcome {
    /// Done; the order takes the observation; optionally schedule a follow-up job.
    Done {
        observation: VendorObservation,
        submission: Option<Submission>,
        follow_up: Option<(JobKind, DateTime<Utc>)>,
    },
    /// Try again at `run_at` (the same key will be sent).
    Retry {
        run_at: DateTime<Utc>,
        error: String,
    },
    /// Give up: the order needs a person. `gl_state` records a definite answer (a vendor that
    /// refused the order means it does not exist there: failed).
    Dead {
        reason: String,
        gl_state: Option<GlState>,
    },
}

/// Records a job's outcome with an order event, in one transaction fenced by the lease.
/// Returns `false` (and changes nothing) when `worker` no longer holds the job.
pub async fn finish(
    db: &Db,
    job: &Job,
    worker: &str,
    outcome: &JobOutcome,
    event_kind: &str,
    event_detail: &serde_json::Value,
) -> Result<bool, StorageError> {
    let now = now_utc();
    let lock_order = match db {
        Db::Postgres(_) => " FOR UPDATE",
        Db::Sqlite(_) => "",
    };
    let select_state = format!("SELECT gl_state FROM orders WHERE id = $1{lock_order}");
    let detail = event_detail.to_string();
    let held: bool = on_db!(db, pool => {
        async {
            let mut tx = pool.begin().await?;
            // The fence: only the lease holder may finish the job.
            let (state, run_at, last_error, clear_lock) = match outcome {
                JobOutcome::Done { .. } => ("done", None, None, true),
                JobOutcome::Retry { run_at, error } => ("pending", Some(*run_at), Some(error.as_str()), true),
                JobOutcome::Dead { reason, .. } => ("dead", None, Some(reason.as_str()), true),
            };
            let fenced = sqlx::query(
                "UPDATE outbox_jobs
                    SET state = $1, run_at = COALESCE($2, run_at), last_error = $3,
                        locked_by = CASE WHEN $4 THEN NULL ELSE locked_by END,
                        locked_until = CASE WHEN $4 THEN NULL ELSE locked_until END,
                        updated_at = $5
                  WHERE id = $6 AND locked_by = $7 AND state = 'pending'",
            )
            .bind(state)
            .bind(run_at)
            .bind(last_error)
            .bind(clear_lock)
            .bind(now)
            .bind(job.id)
            .bind(worker)
            .execute(&mut *tx)
            .await?;
            if fenced.rows_affected() != 1 {
                tx.rollback().await?;
                return Ok::<bool, sqlx::Error>(false);
            }
            match outcome {
                JobOutcome::Done { observation, submission, follow_up } => {
                    let current: String = sqlx::query_scalar(&select_state)
                        .bind(&job.order_id)
                        .fetch_one(&mut *tx)
                        .await?;
                    let next_gl = observation.gl_state.filter(|next| {
                        GlState::parse(&current).is_ok_and(|cur| cur.may_advance_to(*next))
                    });
                    sqlx::query(
                        "UPDATE orders
                            SET vendor_order_id = COALESCE($1, vendor_order_id),
                                vendor_status = COALESCE($2, vendor_status),
                                gl_state = COALESCE($3, gl_state),
                                submission = COALESCE($4, submission),
                                updated_at = $5
                          WHERE id = $6",
                    )
                    .bind(&observation.vendor_order_id)
                    .bind(&observation.vendor_status)
                    .bind(next_gl.map(|s| s.as_str()))
                    .bind(submission.map(|s| s.as_str()))
                    .bind(now)
                    .bind(&job.order_id)
                    .execute(&mut *tx)
                    .await?;
                    if let Some((kind, at)) = follow_up {
                        sqlx::query(
                            "INSERT INTO outbox_jobs (kind, order_id, state, attempts, run_at, created_at, updated_at)
                             VALUES ($1, $2, 'pending', 0, $3, $4, $4)",
                        )
                        .bind(kind.as_str())
                        .bind(&job.order_id)
                        .bind(*at)
                        .bind(now)
                        .execute(&mut *tx)
                        .await?;
                    }
                }
                JobOutcome::Dead { reason, gl_state } if job.kind == JobKind::PlaceOrder => {
                    sqlx::query(
                        "UPDATE orders SET submission = 'needs_attention', attention_reason = $1,
                                gl_state = COALESCE($2, gl_state), updated_at = $3
                          WHERE id = $4",
                    )
                    .bind(reason)
                    .bind(gl_state.map(|s| s.as_str()))
                    .bind(now)
                    .bind(&job.order_id)
                    .execute(&mut *tx)
                    .await?;
                }
                JobOutcome::Dead { .. } | JobOutcome::Retry { .. } => {}
            }
            sqlx::query(
                "INSERT INTO order_events (order_id, kind, detail, actor, created_at)
                 VALUES ($1, $2, $3, 'outbox', $4)",
            )
            .bind(&job.order_id)
            .bind(event_kind)
            .bind(&detail)
            .bind(now)
            .execute(&mut *tx)
            .await?;
            tx.commit().await?;
            Ok(true)
        }
        .await
    })?;
    Ok(held)
}

/// Counts of jobs by state, for metrics and tests.
pub async fn counts(db: &Db) -> Result<Vec<(String, String, i64)>, StorageError> {
    Ok(on_db!(db, pool => {
        sqlx::query_as("SELECT kind, state, COUNT(*) FROM outbox_jobs GROUP BY kind, state ORDER BY kind, state")
            .fetch_all(pool)
            .await
    })?)
}
