//! The webhook inbox: every verified event, stored before it is acknowledged.
//!
//! The inbox row and the event's effects (vendor record, order state, order event, sync job) are
//! written in one transaction that starts with the inbox insert, so a repeat of an event
//! (same vendor and event id) conflicts at once and changes nothing.

use chrono::{DateTime, Utc};
use secrecy::SecretString;

use super::vendor_records::{record_observation, ObservedOrder, RecordSource};
use super::{now_utc, Db, StorageError};
use crate::domain::GlState;
use crate::on_db;

/// Inserts the inbox row unless (vendor, event id) exists; `Ok(true)` when inserted.
macro_rules! insert_inbox {
    ($conn:expr, $entry:expr, $state:expr, $error:expr, $now:expr) => {
        sqlx::query(
            "INSERT INTO webhook_inbox (vendor_id, event_id, event_type, headers, body, state, error, received_at)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8)
             ON CONFLICT (vendor_id, event_id) DO NOTHING",
        )
        .bind($entry.vendor_id)
        .bind($entry.event_id)
        .bind($entry.event_type)
        .bind(&$entry.headers)
        .bind($entry.body)
        .bind($state)
        .bind($error)
        .bind($now)
        .execute(&mut **$conn)
        .await
        .map(|done| done.rows_affected() == 1)
    };
}

/// A verified webhook delivery, as it is stored.
pub struct InboxEntry<'a> {
    pub vendor_id: &'a str,
    /// The vendor's event id (for an unparseable body: a hash of it).
    pub event_id: &'a str,
    pub event_type: Option<&'a str>,
    /// JSON object of the headers that matter.
    pub headers: String,
    pub body: &'a [u8],
}

/// What a verified, parsed event is about.
pub enum EventSubject {
    /// The event carries the order.
    Order(ObservedOrder),
    /// The event only names the order: a `sync_order` job reads it from the vendor.
    OrderChanged { vendor_order_id: String },
    /// Not about an order.
    Other,
}

/// What receiving an event did.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Received {
    /// Stored (and applied) now.
    Stored {
        state: &'static str,
        order_id: Option<String>,
        /// The order's GL state moved from/to.
        advanced: Option<(GlState, GlState)>,
        /// A `sync_order` job was queued (wake the outbox).
        sync_queued: bool,
    },
    /// This (vendor, event id) was stored before: nothing changed.
    Duplicate,
}

/// The secrets a vendor's webhooks may be signed with at `now`: not retired, or retired in the
/// future (a rotation's grace period).
pub async fn active_secrets(
    db: &Db,
    vendor_id: &str,
    now: DateTime<Utc>,
) -> Result<Vec<SecretString>, StorageError> {
    let rows: Vec<String> = on_db!(db, pool => {
        sqlx::query_scalar(
            "SELECT secret FROM vendor_webhook_secrets
              WHERE vendor_id = $1 AND (retired_at IS NULL OR retired_at > $2)
              ORDER BY id DESC",
        )
        .bind(vendor_id)
        .bind(now)
        .fetch_all(pool)
        .await
    })?;
    Ok(rows.into_iter().map(SecretString::from).collect())
}

/// A vendor's webhook secrets that are not retired at `now`, each with its retirement time (a
/// rotation's grace period), newest first: a cache may keep them a while and still drop each one
/// at its own retirement time ([`secret_is_active`]).
pub async fn webhook_secrets(
    db: &Db,
    vendor_id: &str,
    now: DateTime<Utc>,
) -> Result<Vec<(SecretString, Option<DateTime<Utc>>)>, StorageError> {
    let rows: Vec<(String, Option<DateTime<Utc>>)> = on_db!(db, pool => {
        sqlx::query_as(
            "SELECT secret, retired_at FROM vendor_webhook_secrets
              WHERE vendor_id = $1 AND (retired_at IS NULL OR retired_at > $2)
              ORDER BY id DESC",
        )
        .bind(vendor_id)
        .bind(now)
        .fetch_all(pool)
        .await
    })?;
    Ok(rows
        .into_iter()
        .map(|(secret, retired_at)| (SecretString::from(secret), retired_at))
        .collect())
}

/// Whether a secret retiring at `retired_at` still verifies at `now`.
pub fn secret_is_active(retired_at: Option<DateTime<Utc>>, now: DateTime<Utc>) -> bool {
    retired_at.is_none_or(|at| at > now)
}

/// Serializes this process's webhook transactions on SQLite.
static SQLITE_WEBHOOK_WRITER: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

/// Stores a verified event and applies it, in one transaction.
pub async fn receive(
    db: &Db,
    entry: &InboxEntry<'_>,
    subject: &EventSubject,
) -> Result<Received, StorageError> {
    let mut received = receive_batch(db, &[(entry, subject)]).await?;
    Ok(received.pop().expect("one answer per event"))
}

/// The inbox state an event is stored with.
fn state_of(subject: &EventSubject) -> &'static str {
    match subject {
        EventSubject::Order(_) => "applied",
        EventSubject::OrderChanged { .. } => "sync_queued",
        EventSubject::Other => "ignored",
    }
}

/// `($first, $first+1, …)` for `width` parameters, appended to `sql`.
fn push_params(sql: &mut String, first: usize, width: usize) {
    use std::fmt::Write;
    sql.push('(');
    for i in 0..width {
        let _ = write!(sql, "{}${}", if i == 0 { "" } else { ", " }, first + i);
    }
    sql.push(')');
}

/// Stores and applies several verified events in one transaction (a group commit: one commit
/// for many webhooks), answering for each in order. All or nothing: on an error nothing is
/// stored. A repeat of an event, even within the batch, is answered `Duplicate`.
///
/// The inbox rows go in first, in one multi-row statement, so a repeat conflicts at once and
/// changes nothing; then each new event is applied (`record_observation!`, one order at a time,
/// forward only); then the order history and the inbox rows' order ids, one statement each. On
/// SQLite the commit is `synchronous = FULL` (the WAL is synced before the answer: durable
/// against a power cut, not only a crash), which a group commit makes cheap.
pub async fn receive_batch(
    db: &Db,
    events: &[(&InboxEntry<'_>, &EventSubject)],
) -> Result<Vec<Received>, StorageError> {
    if events.is_empty() {
        return Ok(Vec::new());
    }
    let now = now_utc();
    let sqlite = matches!(db, Db::Sqlite(_));
    let lock = if sqlite { "" } else { " FOR UPDATE" };
    // SQLite has one writer at a time; waiting for it here, in order, is much faster than
    // SQLite's busy handler, which sleeps and retries when concurrent webhooks collide.
    let _writer = match sqlite {
        true => Some(SQLITE_WEBHOOK_WRITER.lock().await),
        false => None,
    };
    // One row per event: vendor, event id, type, headers, body, state ($1 is the time).
    let mut insert = String::from(
        "INSERT INTO webhook_inbox (vendor_id, event_id, event_type, headers, body, state, received_at) VALUES ",
    );
    for i in 0..events.len() {
        if i > 0 {
            insert.push_str(", ");
        }
        push_params(&mut insert, 2 + i * 6, 6);
        insert.insert_str(insert.len() - 1, ", $1");
    }
    insert.push_str(" ON CONFLICT (vendor_id, event_id) DO NOTHING RETURNING vendor_id, event_id");
    let received = on_db!(db, pool => {
        async {
            let mut conn = pool.acquire().await?;
            if sqlite {
                sqlx::query("PRAGMA synchronous = FULL").execute(&mut *conn).await?;
            }
            let result = async {
                let mut tx = sqlx::Connection::begin(&mut *conn).await?;
                // The first statement writes, so SQLite takes its write lock here rather than
                // failing to upgrade a read lock later.
                let mut query = sqlx::query(&insert).persistent(false).bind(now);
                for (entry, subject) in events {
                    query = query
                        .bind(entry.vendor_id)
                        .bind(entry.event_id)
                        .bind(entry.event_type)
                        .bind(&entry.headers)
                        .bind(entry.body)
                        .bind(state_of(subject));
                }
                let inserted: std::collections::HashSet<(String, String)> = {
                    use sqlx::Row;
                    query
                        .fetch_all(&mut *tx)
                        .await?
                        .iter()
                        .map(|row| Ok((row.try_get(0)?, row.try_get(1)?)))
                        .collect::<Result<_, sqlx::Error>>()?
                };
                let mut answers = Vec::with_capacity(events.len());
                // (order id, detail, vendor) for the order history; (vendor, event, order) for the inbox.
                let mut history: Vec<(String, String, &str)> = Vec::new();
                let mut matched: Vec<(&str, &str, String)> = Vec::new();
                let mut first_seen = std::collections::HashSet::new();
                for (entry, subject) in events {
                    let key = (entry.vendor_id, entry.event_id);
                    // Stored now only if inserted by this statement, and only its first copy.
                    if !first_seen.insert(key)
                        || !inserted.contains(&(entry.vendor_id.to_owned(), entry.event_id.to_owned()))
                    {
                        answers.push(Received::Duplicate);
                        continue;
                    }
                    let mut order_id = None;
                    let mut advanced = None;
                    let mut sync_queued = false;
                    match subject {
                        EventSubject::Order(observed) => {
                            let applied = record_observation!(&mut tx, lock, entry.vendor_id, observed, RecordSource::Webhook, now).await?;
                            if let Some(id) = &applied.order_id {
                                let detail = serde_json::json!({
                                    "event_id": entry.event_id,
                                    "event_type": entry.event_type,
                                    "vendor_order_id": observed.vendor_order_id,
                                    "vendor_status": observed.status,
                                    "gl_state": applied.advanced.map(|(_, next)| next.as_str()),
                                    "applied": applied.advanced.is_some(),
                                });
                                history.push((id.clone(), detail.to_string(), entry.vendor_id));
                            }
                            order_id = applied.order_id;
                            advanced = applied.advanced;
                        }
                        EventSubject::OrderChanged { vendor_order_id } => {
                            let found: Option<String> = sqlx::query_scalar(
                                "SELECT id FROM orders WHERE vendor_id = $1 AND vendor_order_id = $2 LIMIT 1",
                            )
                            .bind(entry.vendor_id)
                            .bind(vendor_order_id)
                            .fetch_optional(&mut *tx)
                            .await?;
                            let queued = match &found {
                                // One pending sync per order is enough: it reads the latest state.
                                Some(id) => sqlx::query(
                                    "INSERT INTO outbox_jobs (kind, order_id, state, attempts, run_at, created_at, updated_at)
                                     SELECT 'sync_order', $1, 'pending', 0, $2, $2, $2
                                      WHERE NOT EXISTS (SELECT 1 FROM outbox_jobs
                                                         WHERE order_id = $1 AND kind = 'sync_order' AND state = 'pending')",
                                )
                                .bind(id)
                                .bind(now)
                                .execute(&mut *tx)
                                .await?,
                                // An order giftrecon does not know: a job reads it from the vendor
                                // and records it as a vendor record (one pending job per order).
                                None => sqlx::query(
                                    "INSERT INTO vendor_fetch_jobs (vendor_id, vendor_order_id, state, attempts, run_at, created_at, updated_at)
                                     VALUES ($1, $2, 'pending', 0, $3, $3, $3)
                                     ON CONFLICT (vendor_id, vendor_order_id) WHERE state = 'pending' DO NOTHING",
                                )
                                .bind(entry.vendor_id)
                                .bind(vendor_order_id)
                                .bind(now)
                                .execute(&mut *tx)
                                .await?,
                            };
                            sync_queued = queued.rows_affected() > 0;
                            order_id = found;
                        }
                        EventSubject::Other => {}
                    }
                    if let Some(id) = &order_id {
                        matched.push((entry.vendor_id, entry.event_id, id.clone()));
                    }
                    answers.push(Received::Stored { state: state_of(subject), order_id, advanced, sync_queued });
                }
                if !history.is_empty() {
                    let mut sql = String::from(
                        "INSERT INTO order_events (order_id, kind, detail, actor, created_at) VALUES ",
                    );
                    for i in 0..history.len() {
                        if i > 0 {
                            sql.push_str(", ");
                        }
                        let p = 2 + i * 3;
                        sql.push_str(&format!("(${p}, 'webhook', ${}, ${}, $1)", p + 1, p + 2));
                    }
                    let mut query = sqlx::query(&sql).persistent(false).bind(now);
                    for (order_id, detail, actor) in &history {
                        query = query.bind(order_id).bind(detail).bind(*actor);
                    }
                    query.execute(&mut *tx).await?;
                }
                if !matched.is_empty() {
                    // VALUES columns are column1, column2, … on both engines.
                    let mut sql = String::from(
                        "UPDATE webhook_inbox SET order_id = v.column3 FROM (VALUES ",
                    );
                    for i in 0..matched.len() {
                        if i > 0 {
                            sql.push_str(", ");
                        }
                        push_params(&mut sql, 1 + i * 3, 3);
                    }
                    sql.push_str(
                        ") AS v WHERE webhook_inbox.vendor_id = v.column1 AND webhook_inbox.event_id = v.column2",
                    );
                    let mut query = sqlx::query(&sql).persistent(false);
                    for (vendor_id, event_id, order_id) in &matched {
                        query = query.bind(*vendor_id).bind(*event_id).bind(order_id);
                    }
                    query.execute(&mut *tx).await?;
                }
                tx.commit().await?;
                Ok::<Vec<Received>, sqlx::Error>(answers)
            }
            .await;
            if sqlite {
                // Other writers on this pooled connection keep the configured setting.
                let _ = sqlx::query("PRAGMA synchronous = NORMAL").execute(&mut *conn).await;
            }
            result
        }
        .await
    })?;
    Ok(received)
}

/// Stores a verified event that could not be understood, for inspection (state `rejected`).
pub async fn store_rejected(
    db: &Db,
    entry: &InboxEntry<'_>,
    error: &str,
) -> Result<Received, StorageError> {
    let now = now_utc();
    let inserted = on_db!(db, pool => {
        async {
            let mut conn = pool.acquire().await?;
            insert_inbox!(&mut conn, entry, "rejected", Some(error), now)
        }
        .await
    })?;
    Ok(if inserted {
        Received::Stored {
            state: "rejected",
            order_id: None,
            advanced: None,
            sync_queued: false,
        }
    } else {
        Received::Duplicate
    })
}

/// One stored inbox row, for tests and inspection.
#[derive(Clone, Debug, PartialEq, Eq, sqlx::FromRow)]
pub struct InboxRow {
    pub event_id: String,
    pub event_type: Option<String>,
    pub headers: String,
    pub body: Vec<u8>,
    pub state: String,
    pub error: Option<String>,
    pub order_id: Option<String>,
}

/// A vendor's inbox, oldest first.
pub async fn inbox(db: &Db, vendor_id: &str) -> Result<Vec<InboxRow>, StorageError> {
    Ok(on_db!(db, pool => {
        sqlx::query_as(
            "SELECT event_id, event_type, headers, body, state, error, order_id
               FROM webhook_inbox WHERE vendor_id = $1 ORDER BY id",
        )
        .bind(vendor_id)
        .fetch_all(pool)
        .await
    })?)
}
