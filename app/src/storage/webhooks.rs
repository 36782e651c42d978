//! The webhook inbox: every verified event, stored before it is acknowledged.
//!
//! The inbox row and the event's effects (vendor record, order state, order event, sync job) are
//! written in one transaction that starts with the inbox insert, so a repeat of an event
//! (same vendor and event id) conflicts at once and changes nothing.

use std::collections::{HashMap, HashSet};

use chrono::{DateTime, Utc};
use secrecy::SecretString;

use super::vendor_records::{ObservedOrder, RecordSource};
use super::{now_utc, Db, StorageError};
use crate::domain::GlState;
use crate::on_db;
use batch::{Change, KnownOrder, KnownOrders, Placeholders, UPSERT_VENDOR_RECORD};

mod batch;

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
    // One row per event: vendor, event id, type, headers, body, state, time.
    let mut insert = String::from(
        "INSERT INTO webhook_inbox (vendor_id, event_id, event_type, headers, body, state, received_at) VALUES ",
    );
    let mut params = Placeholders::new(db);
    for i in 0..events.len() {
        if i > 0 {
            insert.push_str(", ");
        }
        params.tuple(&mut insert, 7);
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
                let mut query = sqlx::query(&insert).persistent(false);
                for (entry, subject) in events {
                    query = query
                        .bind(entry.vendor_id)
                        .bind(entry.event_id)
                        .bind(entry.event_type)
                        .bind(&entry.headers)
                        .bind(entry.body)
                        .bind(state_of(subject))
                        .bind(now);
                }
                let inserted: HashSet<(String, String)> = {
                    use sqlx::Row;
                    query
                        .fetch_all(&mut *tx)
                        .await?
                        .iter()
                        .map(|row| Ok((row.try_get(0)?, row.try_get(1)?)))
                        .collect::<Result<_, sqlx::Error>>()?
                };
                // The new events (first copies of events this statement inserted), in order.
                let mut first_seen = HashSet::new();
                let new: Vec<bool> = events
                    .iter()
                    .map(|(entry, _)| {
                        first_seen.insert((entry.vendor_id, entry.event_id))
                            && inserted.contains(&(entry.vendor_id.to_owned(), entry.event_id.to_owned()))
                    })
                    .collect();
                // Every order the new events could name, read (and on PostgreSQL locked) in two
                // statements per vendor; the events are then applied to these rows in memory, in
                // order, exactly as `record_observation!` would one by one, and written back in
                // one statement per table.
                let mut wanted: HashMap<&str, (Vec<&str>, Vec<&str>)> = HashMap::new();
                for ((entry, subject), _) in events.iter().zip(&new).filter(|(_, is_new)| **is_new) {
                    let (keys, vendor_order_ids) = wanted.entry(entry.vendor_id).or_default();
                    match subject {
                        EventSubject::Order(observed) => {
                            keys.extend(observed.vendor_key.as_deref());
                            vendor_order_ids.push(&observed.vendor_order_id);
                        }
                        EventSubject::OrderChanged { vendor_order_id } => vendor_order_ids.push(vendor_order_id),
                        EventSubject::Other => {}
                    }
                }
                let mut known = KnownOrders::default();
                for (vendor_id, (keys, vendor_order_ids)) in &wanted {
                    for (column, values) in [("vendor_key", keys), ("vendor_order_id", vendor_order_ids)] {
                        if values.is_empty() {
                            continue;
                        }
                        let mut params = Placeholders::new(db);
                        let mut sql = String::from(
                            "SELECT id, gl_state, vendor_key, vendor_order_id FROM orders WHERE vendor_id = ",
                        );
                        params.push(&mut sql);
                        sql.push_str(&format!(" AND {column} IN "));
                        params.tuple(&mut sql, values.len());
                        sql.push_str(lock);
                        let mut query = sqlx::query_as(&sql).persistent(false).bind(*vendor_id);
                        for value in values.iter() {
                            query = query.bind(*value);
                        }
                        let rows: Vec<(String, String, Option<String>, Option<String>)> =
                            query.fetch_all(&mut *tx).await?;
                        for (id, gl_state, vendor_key, vendor_order_id) in rows {
                            known.add(vendor_id, id, gl_state, vendor_key, vendor_order_id);
                        }
                    }
                }
                let mut answers = Vec::with_capacity(events.len());
                // (order id, detail, vendor) for the order history; (vendor, event, order) for the inbox.
                let mut history: Vec<(String, String, &str)> = Vec::new();
                let mut matched: Vec<(&str, &str, String)> = Vec::new();
                // The vendor records to upsert, in order, with their order.
                let mut records: Vec<(&str, &ObservedOrder, Option<String>)> = Vec::new();
                for ((entry, subject), is_new) in events.iter().zip(&new) {
                    if !is_new {
                        answers.push(Received::Duplicate);
                        continue;
                    }
                    let mut order_id = None;
                    let mut advanced = None;
                    let mut sync_queued = false;
                    match subject {
                        EventSubject::Order(observed) => {
                            let found = known.find(entry.vendor_id, observed.vendor_key.as_deref(), &observed.vendor_order_id);
                            if let Some(i) = found {
                                advanced = known.observe(i, observed);
                                let id = known.rows[i].id.clone();
                                let detail = serde_json::json!({
                                    "event_id": entry.event_id,
                                    "event_type": entry.event_type,
                                    "vendor_order_id": observed.vendor_order_id,
                                    "vendor_status": observed.status,
                                    "gl_state": advanced.map(|(_, next): (GlState, GlState)| next.as_str()),
                                    "applied": advanced.is_some(),
                                });
                                history.push((id.clone(), detail.to_string(), entry.vendor_id));
                                order_id = Some(id);
                            }
                            records.push((entry.vendor_id, observed, order_id.clone()));
                        }
                        EventSubject::OrderChanged { vendor_order_id } => {
                            let found = known
                                .find(entry.vendor_id, None, vendor_order_id)
                                .map(|i| known.rows[i].id.clone());
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
                // Vendor records: one multi-row upsert per round, a round holding each vendor
                // order at most once (PostgreSQL refuses to update one row twice in a statement);
                // rows apply in order, so a stale observation changes nothing, as one by one.
                let mut rounds: Vec<Vec<&(&str, &ObservedOrder, Option<String>)>> = Vec::new();
                let mut seen: HashMap<(&str, &str), usize> = HashMap::new();
                for record in &records {
                    let round = seen.entry((record.0, &record.1.vendor_order_id)).or_insert(0);
                    if rounds.len() <= *round {
                        rounds.push(Vec::new());
                    }
                    rounds[*round].push(record);
                    *round += 1;
                }
                for round in rounds {
                    let mut sql = String::from(
                        "INSERT INTO vendor_records (vendor_id, vendor_order_id, vendor_key, reference_id,
                            brand_id, amount_minor, currency, status, gl_state, order_id,
                            created_at, updated_at, source, first_seen_at, last_seen_at,
                            occurred_at) VALUES ",
                    );
                    let mut params = Placeholders::new(db);
                    params.rows(&mut sql, round.len(), 16);
                    sql.push_str(UPSERT_VENDOR_RECORD);
                    let mut query = sqlx::query(&sql).persistent(false);
                    for (vendor_id, obs, order_id) in round {
                        query = query
                            .bind(*vendor_id)
                            .bind(&obs.vendor_order_id)
                            .bind(&obs.vendor_key)
                            .bind(&obs.reference_id)
                            .bind(&obs.brand_id)
                            .bind(obs.amount.minor_units())
                            .bind(obs.amount.currency().code())
                            .bind(&obs.status)
                            .bind(obs.gl_state.map(|s| s.as_str()))
                            .bind(order_id.as_deref())
                            .bind(obs.created_at)
                            .bind(obs.updated_at)
                            .bind(RecordSource::Webhook.as_str())
                            .bind(now)
                            .bind(now)
                            .bind(obs.created_at.unwrap_or(now));
                    }
                    query.execute(&mut *tx).await?;
                }
                // The orders the events moved forward, and those that only learnt the vendor's id.
                let (advanced_rows, id_only): (Vec<&KnownOrder>, Vec<&KnownOrder>) =
                    known.rows.iter().filter(|row| row.changed != Change::None).partition(|row| row.changed == Change::Advanced);
                if !advanced_rows.is_empty() {
                    let mut params = Placeholders::new(db);
                    let mut sql = String::from(
                        "UPDATE orders SET gl_state = v.column2, vendor_status = v.column3, vendor_order_id = v.column4, updated_at = ",
                    );
                    params.push(&mut sql);
                    sql.push_str(" FROM (VALUES ");
                    params.rows(&mut sql, advanced_rows.len(), 4);
                    sql.push_str(") AS v WHERE orders.id = v.column1");
                    let mut query = sqlx::query(&sql).persistent(false).bind(now);
                    for row in &advanced_rows {
                        query = query
                            .bind(&row.id)
                            .bind(&row.gl_state)
                            .bind(&row.vendor_status)
                            .bind(&row.vendor_order_id);
                    }
                    query.execute(&mut *tx).await?;
                }
                if !id_only.is_empty() {
                    let mut sql = String::from(
                        "UPDATE orders SET vendor_order_id = v.column2 FROM (VALUES ",
                    );
                    let mut params = Placeholders::new(db);
                    params.rows(&mut sql, id_only.len(), 2);
                    sql.push_str(") AS v WHERE orders.id = v.column1 AND orders.vendor_order_id IS NULL");
                    let mut query = sqlx::query(&sql).persistent(false);
                    for row in &id_only {
                        query = query.bind(&row.id).bind(&row.vendor_order_id);
                    }
                    query.execute(&mut *tx).await?;
                }
                if !history.is_empty() {
                    let mut sql = String::from(
                        "INSERT INTO order_events (order_id, kind, detail, actor, created_at) VALUES ",
                    );
                    Placeholders::new(db).rows(&mut sql, history.len(), 5);
                    let mut query = sqlx::query(&sql).persistent(false);
                    for (order_id, detail, actor) in &history {
                        query = query.bind(order_id).bind("webhook").bind(detail).bind(*actor).bind(now);
                    }
                    query.execute(&mut *tx).await?;
                }
                if !matched.is_empty() {
                    // VALUES columns are column1, column2, … on both engines.
                    let mut sql = String::from(
                        "UPDATE webhook_inbox SET order_id = v.column3 FROM (VALUES ",
                    );
                    let mut params = Placeholders::new(db);
                    params.rows(&mut sql, matched.len(), 3);
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

/// When the vendor's last verified webhook was stored, if ever.
pub async fn last_received(
    db: &Db,
    vendor_id: &str,
) -> Result<Option<chrono::DateTime<chrono::Utc>>, StorageError> {
    let at: Option<chrono::DateTime<chrono::Utc>> = on_db!(db, pool => {
        sqlx::query_scalar(
            "SELECT received_at FROM webhook_inbox WHERE vendor_id = $1
              ORDER BY received_at DESC LIMIT 1",
        )
        .bind(vendor_id)
        .fetch_optional(pool)
        .await
    })?;
    Ok(at)
}
