//! Working the discrepancy queues: the one-click actions, assignment and notes.
//!
//! Every action is one transaction that first claims the item with a guarded update (open, and
//! for write-offs the right request state), so a double click or two people at once do the thing
//! once: the second finds the item taken and is told by whom. The item's history, the order's
//! history and the audit trail are written in the same transaction. Actions that must reach the
//! vendor (Retry) only enqueue a durable outbox job here; the outbox worker calls the vendor with
//! the order's one vendor key, outside any transaction.

use chrono::{DateTime, Utc};

use super::audit::{AuditAppend, AuditEvent};
use super::orders::{insert_order, Order, Submission};
use super::reconciliation::{event, get, Discrepancy, DiscrepancyState};
use super::{now_utc, Db, StorageError};
use crate::domain::matching::Class;
use crate::domain::queue::QueueAction;
use crate::domain::{GlState, Money};
use crate::on_db;

/// What an action did.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Acted {
    pub item: Discrepancy,
    /// One sentence for the person who clicked.
    pub outcome: String,
    /// The order it created or changed.
    pub order_id: Option<String>,
}

fn conflict(what: impl Into<String>) -> StorageError {
    StorageError::Conflict { what: what.into() }
}

/// Why `item` cannot take `action` now, if it cannot.
fn refusal(item: &Discrepancy, action: QueueAction, actor: &str) -> Option<String> {
    let id = item.id;
    if !action.applies_to(item.class) {
        let fits = Class::ALL
            .into_iter()
            .filter(|c| action.applies_to(*c))
            .map(|c| c.as_str().replace('_', " "))
            .collect::<Vec<_>>()
            .join(", ");
        return Some(format!(
            "{} does not apply to discrepancy {id}, a {}; it is for: {fits}",
            action.label(),
            item.class.as_str().replace('_', " ")
        ));
    }
    if item.state != DiscrepancyState::Open {
        let by = item
            .resolved_by
            .as_deref()
            .map(|b| format!(" by {b}"))
            .unwrap_or_default();
        return Some(format!(
            "discrepancy {id} is already {}{by}",
            item.state.as_str()
        ));
    }
    match (action, &item.write_off) {
        (QueueAction::WriteOff, Some((_, by, _))) => Some(format!(
            "a write-off of discrepancy {id} was already requested by {by}; it awaits approval"
        )),
        (QueueAction::ApproveWriteOff, None) => Some(format!(
            "no write-off of discrepancy {id} was requested; request one first"
        )),
        (QueueAction::ApproveWriteOff, Some((_, by, _))) if by == actor => Some(format!(
            "you requested the write-off of discrepancy {id}; another finance approver must approve it"
        )),
        _ => None,
    }
}

/// Takes `action` on discrepancy `id` for `actor`. `reason` is required by the actions that say
/// so ([`QueueAction::needs_reason`]) and kept with the item either way.
pub async fn act(
    db: &Db,
    id: i64,
    action: QueueAction,
    reason: &str,
    actor: &str,
) -> Result<Acted, StorageError> {
    let item = get(db, id).await?;
    if let Some(why) = refusal(&item, action, actor) {
        return Err(conflict(why));
    }
    if action.needs_reason() && reason.trim().is_empty() {
        return Err(conflict(format!("{} needs a reason", action.label())));
    }
    let done = match action {
        QueueAction::Backfill => backfill(db, &item, actor).await?,
        QueueAction::Retry => retry(db, &item, actor).await?,
        QueueAction::Refund => refund(db, &item, reason, actor).await?,
        QueueAction::SyncStatus => sync_status(db, &item, actor).await?,
        QueueAction::WriteOff => request_write_off(db, &item, reason, actor).await?,
        QueueAction::ApproveWriteOff => approve_write_off(db, &item, actor).await?,
    };
    let current = get(db, id).await?;
    match done {
        Some((outcome, order_id)) => Ok(Acted {
            item: current,
            outcome,
            order_id,
        }),
        // Someone else got there between the read and the claim.
        None => Err(conflict(refusal(&current, action, actor).unwrap_or_else(
            || format!("discrepancy {id} changed while this was being done; look again"),
        ))),
    }
}

/// The claim every resolving action starts with: open → resolved, once.
macro_rules! claim {
    ($tx:expr, $id:expr, $how:expr, $actor:expr, $now:expr) => {
        sqlx::query(
            "UPDATE discrepancies SET state = 'resolved', resolution = $1, resolved_by = $2,
                    resolved_at = $3, updated_at = $3
              WHERE id = $4 AND state = 'open'",
        )
        .bind($how)
        .bind($actor)
        .bind($now)
        .bind($id)
        .execute(&mut *$tx)
    };
}

/// Every action's last step: the item's history entry and the audit row, then commit. Evaluates
/// to the commit's result.
macro_rules! record_and_commit {
    ($tx:expr, $id:expr, $kind:expr, $detail:expr, $actor:expr, $now:expr, $audit:expr) => {
        async {
            event!($tx, $id, $kind, $detail, $actor, $now).await?;
            $tx.append_audit($audit).await?;
            $tx.commit().await
        }
    };
}

/// An order's history entry inside `$tx`.
macro_rules! order_event {
    ($tx:expr, $order_id:expr, $kind:expr, $detail:expr, $actor:expr, $now:expr) => {
        sqlx::query(
            "INSERT INTO order_events (order_id, kind, detail, actor, created_at)
             VALUES ($1, $2, $3, $4, $5)",
        )
        .bind($order_id)
        .bind($kind)
        .bind($detail)
        .bind($actor)
        .bind($now)
        .execute(&mut *$tx)
    };
}

/// The vendor record a single-record item is about.
async fn the_record(
    db: &Db,
    item: &Discrepancy,
) -> Result<(super::vendor_records::VendorRecord, DateTime<Utc>), StorageError> {
    let vendor_order_id = item
        .vendor_order_ids
        .as_deref()
        .and_then(|ids| ids.split(',').next())
        .ok_or_else(|| conflict(format!("discrepancy {} has no vendor record", item.id)))?;
    let record = super::vendor_records::get(db, &item.vendor_id, vendor_order_id)
        .await?
        .ok_or_else(|| StorageError::NotFound {
            what: format!("vendor record {vendor_order_id} of {}", item.vendor_id),
        })?;
    let occurred_at: DateTime<Utc> = on_db!(db, pool => {
        sqlx::query_scalar(
            "SELECT occurred_at FROM vendor_records WHERE vendor_id = $1 AND vendor_order_id = $2",
        )
        .bind(&item.vendor_id)
        .bind(vendor_order_id)
        .fetch_one(pool)
        .await
    })?;
    Ok((record, occurred_at))
}

/// The GL state a vendor record's status maps to under the vendor's mapping today.
async fn mapped_state(
    db: &Db,
    record: &super::vendor_records::VendorRecord,
) -> Result<GlState, StorageError> {
    if let Some(state) = record.gl_state {
        return Ok(state);
    }
    let vendor_id = crate::domain::VendorId::parse(&record.vendor_id)
        .map_err(|e| super::orders::corrupt(format!("vendor record vendor: {e}")))?;
    let vendor = super::vendors::get_vendor(db, &vendor_id).await?;
    vendor
        .status_mapping
        .gl_state_for(&record.status)
        .ok_or_else(|| {
            conflict(format!(
                "the vendor status {:?} maps to no GL state; map it on the Vendors page first",
                record.status
            ))
        })
}

type Done = Option<(String, Option<String>)>;

async fn backfill(db: &Db, item: &Discrepancy, actor: &str) -> Result<Done, StorageError> {
    let (record, occurred_at) = the_record(db, item).await?;
    if let Some(order_id) = &record.order_id {
        return Err(conflict(format!(
            "vendor record {} is already matched to order {order_id}; reconcile the day again",
            record.vendor_order_id
        )));
    }
    let gl_state = mapped_state(db, &record).await?;
    let (id, fresh_key) = super::orders::new_ids();
    let now = now_utc();
    // The vendor echoes the key it was sent; keeping it lets later vendor data find the order.
    let vendor_key = record.vendor_key.clone().unwrap_or(fresh_key);
    let order = Order {
        id: id.clone(),
        owner: "backfill".into(),
        idempotency_key: vendor_key.clone(),
        request_hash: format!("backfill:{}:{}", record.vendor_id, record.vendor_order_id),
        vendor_id: record.vendor_id.clone(),
        vendor_key,
        customer_id: String::new(),
        brand_id: record.brand_id.clone().unwrap_or_default(),
        amount: record.amount,
        submission: Submission::External,
        gl_state,
        vendor_order_id: Some(record.vendor_order_id.clone()),
        vendor_status: Some(record.status.clone()),
        attention_reason: None,
        source: "backfill".into(),
        // On the vendor record's day, so the order reconciles where the record was found.
        created_at: occurred_at,
        updated_at: now,
    };
    let outcome = format!(
        "Backfilled: order {id} created from vendor record {} ({} {}, {})",
        record.vendor_order_id,
        record.amount.amount_string(),
        record.amount.currency().code(),
        gl_state.as_str()
    );
    let audit = AuditEvent::new(
        actor,
        "discrepancy_backfilled",
        format!("discrepancy:{}", item.id),
    )
    .after(serde_json::json!({
        "order_id": id,
        "vendor_order_id": record.vendor_order_id,
        "amount": record.amount.amount_string(),
        "currency": record.amount.currency().code(),
        "gl_state": gl_state.as_str(),
    }));
    let detail =
        serde_json::json!({ "discrepancy": item.id, "vendor_order_id": record.vendor_order_id })
            .to_string();
    let claimed = on_db!(db, pool => {
        async {
            let mut tx = pool.begin().await?;
            if claim!(tx, item.id, &outcome, actor, now).await?.rows_affected() != 1 {
                return Ok::<Result<bool, StorageError>, sqlx::Error>(Ok(false));
            }
            if !insert_order!(tx, &order, Some(actor)).await? {
                tx.rollback().await?;
                return Ok(Err(conflict(format!(
                    "an order with vendor key {:?} already exists; reconcile the day again to match it",
                    order.vendor_key
                ))));
            }
            order_event!(tx, &order.id, "backfilled", &detail, actor, now).await?;
            sqlx::query(
                "UPDATE vendor_records SET order_id = $1
                  WHERE vendor_id = $2 AND vendor_order_id = $3 AND order_id IS NULL",
            )
            .bind(&order.id)
            .bind(&record.vendor_id)
            .bind(&record.vendor_order_id)
            .execute(&mut *tx)
            .await?;
            record_and_commit!(tx, item.id, "backfilled", &outcome, actor, now, &audit).await?;
            Ok(Ok(true))
        }
        .await
    })??;
    Ok(claimed.then_some((outcome, Some(id))))
}

async fn retry(db: &Db, item: &Discrepancy, actor: &str) -> Result<Done, StorageError> {
    let order = the_order(db, item).await?;
    let now = now_utc();
    let outcome = format!(
        "Retry queued: order {} goes to {} again with the same vendor key {}",
        order.id, order.vendor_id, order.vendor_key
    );
    let audit = AuditEvent::new(
        actor,
        "discrepancy_retried",
        format!("discrepancy:{}", item.id),
    )
    .after(serde_json::json!({ "order_id": order.id, "vendor_key": order.vendor_key }));
    let detail =
        serde_json::json!({ "discrepancy": item.id, "vendor_key": order.vendor_key }).to_string();
    let claimed = on_db!(db, pool => {
        async {
            let mut tx = pool.begin().await?;
            if claim!(tx, item.id, &outcome, actor, now).await?.rows_affected() != 1 {
                return Ok::<bool, sqlx::Error>(false);
            }
            // One pending placement per order: a job already waiting is the retry.
            sqlx::query(
                "INSERT INTO outbox_jobs (kind, order_id, state, attempts, run_at, created_at, updated_at)
                 SELECT 'place_order', $1, 'pending', 0, $2, $2, $2
                  WHERE NOT EXISTS (SELECT 1 FROM outbox_jobs
                                     WHERE order_id = $1 AND kind = 'place_order' AND state = 'pending')",
            )
            .bind(&order.id)
            .bind(now)
            .execute(&mut *tx)
            .await?;
            sqlx::query(
                "UPDATE orders SET submission = 'queued', attention_reason = NULL, updated_at = $1
                  WHERE id = $2",
            )
            .bind(now)
            .bind(&order.id)
            .execute(&mut *tx)
            .await?;
            order_event!(tx, &order.id, "retry_requested", &detail, actor, now).await?;
            record_and_commit!(tx, item.id, "retried", &outcome, actor, now, &audit).await?;
            Ok(true)
        }
        .await
    })?;
    Ok(claimed.then_some((outcome, Some(order.id))))
}

async fn refund(
    db: &Db,
    item: &Discrepancy,
    reason: &str,
    actor: &str,
) -> Result<Done, StorageError> {
    let order = the_order(db, item).await?;
    let now = now_utc();
    let outcome = format!(
        "Refund recorded: the customer of order {} is refunded {} {}; the order is failed (never issued by {})",
        order.id,
        order.amount.amount_string(),
        order.amount.currency().code(),
        order.vendor_id
    );
    let audit = AuditEvent::new(
        actor,
        "discrepancy_refunded",
        format!("discrepancy:{}", item.id),
    )
    .before(serde_json::json!({ "gl_state": order.gl_state.as_str() }))
    .after(serde_json::json!({ "order_id": order.id, "gl_state": "failed", "reason": reason }));
    let detail = serde_json::json!({
        "discrepancy": item.id,
        "reason": reason,
        "amount": order.amount.amount_string(),
        "currency": order.amount.currency().code(),
        "gl_state_before": order.gl_state.as_str(),
    })
    .to_string();
    let claimed = on_db!(db, pool => {
        async {
            let mut tx = pool.begin().await?;
            // A placement a worker holds right now may still reach the vendor: refunding the
            // customer then could pay twice. Refuse until it has finished.
            let in_flight: i64 = sqlx::query_scalar(
                "SELECT COUNT(*) FROM outbox_jobs
                  WHERE order_id = $1 AND kind = 'place_order' AND state = 'pending'
                    AND locked_until IS NOT NULL AND locked_until > $2",
            )
            .bind(&order.id)
            .bind(now)
            .fetch_one(&mut *tx)
            .await?;
            if in_flight > 0 {
                tx.rollback().await?;
                return Ok::<Result<bool, StorageError>, sqlx::Error>(Err(conflict(format!(
                    "order {} is being sent to {} right now; wait for that attempt to finish",
                    order.id, order.vendor_id
                ))));
            }
            if claim!(tx, item.id, &outcome, actor, now).await?.rows_affected() != 1 {
                return Ok(Ok(false));
            }
            // Nothing may place it after the customer has their money back.
            sqlx::query(
                "UPDATE outbox_jobs SET state = 'dead', last_error = 'cancelled: customer refunded',
                        updated_at = $1
                  WHERE order_id = $2 AND kind = 'place_order' AND state = 'pending'",
            )
            .bind(now)
            .bind(&order.id)
            .execute(&mut *tx)
            .await?;
            sqlx::query(
                "UPDATE orders SET gl_state = 'failed',
                        submission = CASE WHEN submission = 'queued' THEN 'needs_attention'
                                          ELSE submission END,
                        attention_reason = COALESCE(attention_reason, 'customer refunded'),
                        updated_at = $1
                  WHERE id = $2",
            )
            .bind(now)
            .bind(&order.id)
            .execute(&mut *tx)
            .await?;
            order_event!(tx, &order.id, "customer_refund", &detail, actor, now).await?;
            record_and_commit!(tx, item.id, "refunded", &outcome, actor, now, &audit).await?;
            Ok(Ok(true))
        }
        .await
    })??;
    Ok(claimed.then_some((outcome, Some(order.id))))
}

async fn sync_status(db: &Db, item: &Discrepancy, actor: &str) -> Result<Done, StorageError> {
    let order = the_order(db, item).await?;
    let (record, _) = the_record(db, item).await?;
    let gl_state = mapped_state(db, &record).await?;
    let now = now_utc();
    let outcome = format!(
        "Status synced: order {} takes {}'s status {:?} ({} → {})",
        order.id,
        order.vendor_id,
        record.status,
        order.gl_state.as_str(),
        gl_state.as_str()
    );
    let audit = AuditEvent::new(actor, "discrepancy_status_synced", format!("discrepancy:{}", item.id))
        .before(serde_json::json!({ "gl_state": order.gl_state.as_str(), "vendor_status": order.vendor_status }))
        .after(serde_json::json!({ "order_id": order.id, "gl_state": gl_state.as_str(), "vendor_status": record.status }));
    let detail = serde_json::json!({
        "discrepancy": item.id,
        "vendor_status": record.status,
        "gl_state_before": order.gl_state.as_str(),
        "gl_state": gl_state.as_str(),
    })
    .to_string();
    let claimed = on_db!(db, pool => {
        async {
            let mut tx = pool.begin().await?;
            if claim!(tx, item.id, &outcome, actor, now).await?.rows_affected() != 1 {
                return Ok::<bool, sqlx::Error>(false);
            }
            sqlx::query(
                "UPDATE orders SET gl_state = $1, vendor_status = $2, updated_at = $3 WHERE id = $4",
            )
            .bind(gl_state.as_str())
            .bind(&record.status)
            .bind(now)
            .bind(&order.id)
            .execute(&mut *tx)
            .await?;
            order_event!(tx, &order.id, "status_synced", &detail, actor, now).await?;
            record_and_commit!(tx, item.id, "status_synced", &outcome, actor, now, &audit).await?;
            Ok(true)
        }
        .await
    })?;
    Ok(claimed.then_some((outcome, Some(order.id))))
}

async fn request_write_off(
    db: &Db,
    item: &Discrepancy,
    reason: &str,
    actor: &str,
) -> Result<Done, StorageError> {
    let now = now_utc();
    let reason = reason.trim();
    let stake =
        crate::domain::queue::amount_at_stake(item.class, item.internal_amount, item.vendor_amount)
            .ok()
            .flatten()
            .map(|m: Money| format!(" of {} {}", m.amount_string(), m.currency().code()))
            .unwrap_or_default();
    let outcome =
        format!("Write-off{stake} requested: a finance approver other than you must approve it");
    let audit = AuditEvent::new(
        actor,
        "discrepancy_write_off_requested",
        format!("discrepancy:{}", item.id),
    )
    .after(serde_json::json!({ "reason": reason }));
    let claimed = on_db!(db, pool => {
        async {
            let mut tx = pool.begin().await?;
            let n = sqlx::query(
                "UPDATE discrepancies SET write_off_reason = $1, write_off_by = $2,
                        write_off_at = $3, updated_at = $3
                  WHERE id = $4 AND state = 'open' AND write_off_by IS NULL",
            )
            .bind(reason)
            .bind(actor)
            .bind(now)
            .bind(item.id)
            .execute(&mut *tx)
            .await?
            .rows_affected();
            if n != 1 {
                return Ok::<bool, sqlx::Error>(false);
            }
            record_and_commit!(tx, item.id, "write_off_requested", reason, actor, now, &audit).await?;
            Ok(true)
        }
        .await
    })?;
    Ok(claimed.then(|| (outcome, item.order_id.clone())))
}

async fn approve_write_off(db: &Db, item: &Discrepancy, actor: &str) -> Result<Done, StorageError> {
    let Some((reason, requested_by, _)) = &item.write_off else {
        return Ok(None);
    };
    let now = now_utc();
    let how = format!("Written off: {reason} (requested by {requested_by}, approved by {actor})");
    let audit = AuditEvent::new(
        actor,
        "discrepancy_written_off",
        format!("discrepancy:{}", item.id),
    )
    .after(serde_json::json!({ "reason": reason, "requested_by": requested_by }));
    let claimed = on_db!(db, pool => {
        async {
            let mut tx = pool.begin().await?;
            // Fenced on the request that was read: approving a request that was withdrawn or
            // replaced in the meantime changes nothing.
            let n = sqlx::query(
                "UPDATE discrepancies SET state = 'resolved', resolution = $1, resolved_by = $2,
                        resolved_at = $3, updated_at = $3
                  WHERE id = $4 AND state = 'open' AND write_off_by = $5 AND write_off_by <> $2
                    AND write_off_reason = $6",
            )
            .bind(&how)
            .bind(actor)
            .bind(now)
            .bind(item.id)
            .bind(requested_by)
            .bind(reason)
            .execute(&mut *tx)
            .await?
            .rows_affected();
            if n != 1 {
                return Ok::<bool, sqlx::Error>(false);
            }
            record_and_commit!(tx, item.id, "written_off", &how, actor, now, &audit).await?;
            Ok(true)
        }
        .await
    })?;
    Ok(claimed.then(|| (how, item.order_id.clone())))
}

async fn the_order(db: &Db, item: &Discrepancy) -> Result<Order, StorageError> {
    let id = item
        .order_id
        .as_deref()
        .ok_or_else(|| conflict(format!("discrepancy {} has no internal order", item.id)))?;
    super::orders::get(db, id)
        .await?
        .ok_or_else(|| StorageError::NotFound {
            what: format!("order {id}"),
        })
}

/// Assigns an item to a person (an existing, enabled user), or to nobody with `None`.
pub async fn assign(
    db: &Db,
    id: i64,
    assignee: Option<&str>,
    actor: &str,
) -> Result<Discrepancy, StorageError> {
    let before = get(db, id).await?;
    if let Some(name) = assignee {
        let known = super::users::list_users(db)
            .await?
            .into_iter()
            .any(|u| u.username == name && !u.disabled);
        if !known {
            return Err(conflict(format!(
                "assignee: {name:?} is not an active user"
            )));
        }
    }
    let now = now_utc();
    let detail = assignee.unwrap_or("nobody").to_string();
    let audit = AuditEvent::new(actor, "discrepancy_assigned", format!("discrepancy:{id}"))
        .before(serde_json::json!({ "assignee": before.assignee }))
        .after(serde_json::json!({ "assignee": assignee }));
    on_db!(db, pool => {
        async {
            let mut tx = pool.begin().await?;
            sqlx::query("UPDATE discrepancies SET assignee = $1, updated_at = $2 WHERE id = $3")
                .bind(assignee)
                .bind(now)
                .bind(id)
                .execute(&mut *tx)
                .await?;
            record_and_commit!(tx, id, "assigned", &detail, actor, now, &audit).await
        }
        .await
    })?;
    get(db, id).await
}

/// Adds a note to an item's history.
pub async fn add_note(db: &Db, id: i64, note: &str, actor: &str) -> Result<(), StorageError> {
    get(db, id).await?;
    let now = now_utc();
    let audit = AuditEvent::new(actor, "discrepancy_note_added", format!("discrepancy:{id}"))
        .after(serde_json::json!({ "note": note }));
    on_db!(db, pool => {
        async {
            let mut tx = pool.begin().await?;
            record_and_commit!(tx, id, "note", note, actor, now, &audit).await
        }
        .await
    })?;
    Ok(())
}

/// Open items by class and currency for a vendor and day (both optional): how many and what is
/// at stake, for the overview.
pub async fn open_by_class(
    db: &Db,
    vendor_id: Option<&str>,
    day: Option<chrono::NaiveDate>,
) -> Result<Vec<OpenClass>, StorageError> {
    let filter = super::reconciliation::Filter {
        vendor_id: vendor_id.map(str::to_string),
        from: day,
        to: day,
        state: Some(DiscrepancyState::Open),
        ..Default::default()
    };
    let mut out: std::collections::BTreeMap<(Class, &'static str), OpenClass> =
        std::collections::BTreeMap::new();
    for item in super::reconciliation::list(db, &filter).await? {
        let stake = crate::domain::queue::amount_at_stake(
            item.class,
            item.internal_amount,
            item.vendor_amount,
        )
        .map_err(|e| super::orders::corrupt(format!("discrepancy {}: {e}", item.id)))?;
        let currency = stake.map(|m| m.currency().code()).unwrap_or("");
        let entry = out.entry((item.class, currency)).or_insert(OpenClass {
            class: item.class,
            count: 0,
            at_stake: stake.map(|m| Money::zero(m.currency())),
        });
        entry.count += 1;
        if let (Some(total), Some(m)) = (entry.at_stake, stake) {
            entry.at_stake = Some(
                total
                    .checked_add(m)
                    .map_err(|e| super::orders::corrupt(format!("open totals: {e}")))?,
            );
        }
    }
    Ok(out.into_values().collect())
}

/// Open items of one class in one currency.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct OpenClass {
    pub class: Class,
    pub count: u64,
    pub at_stake: Option<Money>,
}

/// How many items are open per business day of a vendor, from `since` on.
pub async fn open_per_day(
    db: &Db,
    vendor_id: &str,
    since: chrono::NaiveDate,
) -> Result<std::collections::BTreeMap<chrono::NaiveDate, u64>, StorageError> {
    let rows: Vec<(chrono::NaiveDate, i64)> = on_db!(db, pool => {
        sqlx::query_as(
            "SELECT business_day, COUNT(*) FROM discrepancies
              WHERE vendor_id = $1 AND state = 'open' AND business_day >= $2
              GROUP BY business_day",
        )
        .bind(vendor_id)
        .bind(since)
        .fetch_all(pool)
        .await
    })?;
    Ok(rows
        .into_iter()
        .map(|(day, n)| (day, u64::try_from(n).unwrap_or(0)))
        .collect())
}
