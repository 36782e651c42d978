//! Orders, their event history, and the transactions that create them.
//!
//! An order is committed, with its idempotency key, the vendor-side key and an outbox job, in
//! one transaction before any vendor is called. Workers then move it forward (see `outbox`).

use chrono::{DateTime, Utc};
use serde::Serialize;

use super::{now_utc, Db, StorageError};
use crate::domain::{Currency, GlState, Money, OrderRequest};
use crate::on_db;

/// Where an order is in its journey to the vendor.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Submission {
    /// Committed; a worker will send it to the vendor.
    Queued,
    /// The vendor has it (it answered with its order id).
    Placed,
    /// Retries are exhausted or the vendor refused it: a person must look.
    NeedsAttention,
    /// Placed by another system and recorded here for reconciliation.
    External,
}

impl Submission {
    pub fn as_str(self) -> &'static str {
        match self {
            Submission::Queued => "queued",
            Submission::Placed => "placed",
            Submission::NeedsAttention => "needs_attention",
            Submission::External => "external",
        }
    }

    fn parse(s: &str) -> Option<Submission> {
        [
            Submission::Queued,
            Submission::Placed,
            Submission::NeedsAttention,
            Submission::External,
        ]
        .into_iter()
        .find(|v| v.as_str() == s)
    }
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Order {
    pub id: String,
    pub owner: String,
    pub idempotency_key: String,
    pub request_hash: String,
    pub vendor_id: String,
    pub vendor_key: String,
    pub customer_id: String,
    pub brand_id: String,
    pub amount: Money,
    pub submission: Submission,
    pub gl_state: GlState,
    pub vendor_order_id: Option<String>,
    pub vendor_status: Option<String>,
    pub attention_reason: Option<String>,
    pub source: String,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

#[derive(sqlx::FromRow)]
struct OrderRow {
    id: String,
    owner: String,
    idempotency_key: String,
    request_hash: String,
    vendor_id: String,
    vendor_key: String,
    customer_id: String,
    brand_id: String,
    amount_minor: i64,
    currency: String,
    submission: String,
    gl_state: String,
    vendor_order_id: Option<String>,
    vendor_status: Option<String>,
    attention_reason: Option<String>,
    source: String,
    created_at: DateTime<Utc>,
    updated_at: DateTime<Utc>,
}

pub(crate) fn corrupt(what: String) -> StorageError {
    StorageError::Database(sqlx::Error::Decode(what.into()))
}

impl TryFrom<OrderRow> for Order {
    type Error = StorageError;
    fn try_from(r: OrderRow) -> Result<Order, StorageError> {
        let currency = Currency::parse(&r.currency)
            .map_err(|e| corrupt(format!("order {}: currency: {e}", r.id)))?;
        let gl_state = GlState::parse(&r.gl_state)
            .map_err(|e| corrupt(format!("order {}: GL state: {e}", r.id)))?;
        let submission = Submission::parse(&r.submission)
            .ok_or_else(|| corrupt(format!("order {}: submission {:?}", r.id, r.submission)))?;
        Ok(Order {
            amount: Money::from_minor(r.amount_minor, currency),
            gl_state,
            submission,
            id: r.id,
            owner: r.owner,
            idempotency_key: r.idempotency_key,
            request_hash: r.request_hash,
            vendor_id: r.vendor_id,
            vendor_key: r.vendor_key,
            customer_id: r.customer_id,
            brand_id: r.brand_id,
            vendor_order_id: r.vendor_order_id,
            vendor_status: r.vendor_status,
            attention_reason: r.attention_reason,
            source: r.source,
            created_at: r.created_at,
            updated_at: r.updated_at,
        })
    }
}

pub(crate) const ORDER_COLUMNS: &str = "id, owner, idempotency_key, request_hash, vendor_id, \
     vendor_key, customer_id, brand_id, amount_minor, currency, submission, gl_state, \
     vendor_order_id, vendor_status, attention_reason, source, created_at, updated_at";

/// One entry of an order's history.
#[derive(Clone, Debug, PartialEq, Serialize, sqlx::FromRow)]
pub struct OrderEvent {
    pub id: i64,
    pub kind: String,
    pub detail: String,
    pub actor: Option<String>,
    pub created_at: DateTime<Utc>,
}

/// A fresh order id and the vendor-side key that goes with it, both made before anything is
/// sent anywhere (time-ordered, so ids sort by creation).
pub fn new_ids() -> (String, String) {
    let hex = uuid::Uuid::now_v7().simple().to_string();
    (format!("ord_{hex}"), format!("gr{hex}"))
}

/// How a new order came in.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Source {
    Api,
    Bulk,
    Import,
}

/// An order placed by another system, recorded for reconciliation (no vendor call).
pub struct ExternalPlacement {
    pub vendor_status: String,
    pub gl_state: GlState,
    pub created_at: DateTime<Utc>,
}

impl Source {
    pub fn as_str(self) -> &'static str {
        match self {
            Source::Api => "api",
            Source::Bulk => "bulk",
            Source::Import => "import",
        }
    }
}

/// The response stored for an idempotency key together with the order, so a replay is exact.
pub struct StoredResponse {
    pub status: u16,
    pub body: String,
}

/// Builds the order that `create_order` will insert, without touching the database.
pub fn build_order(request: &OrderRequest, owner: &str, source: Source) -> Order {
    let (id, vendor_key) = new_ids();
    let now = now_utc();
    Order {
        id,
        owner: owner.to_string(),
        idempotency_key: request.idempotency_key.as_str().to_string(),
        request_hash: request.fingerprint(),
        vendor_id: request.vendor.as_str().to_string(),
        vendor_key,
        customer_id: request.customer_id.clone(),
        brand_id: request.brand_id.clone(),
        amount: request.amount,
        submission: Submission::Queued,
        gl_state: GlState::Pending,
        vendor_order_id: None,
        vendor_status: None,
        attention_reason: None,
        source: source.as_str().to_string(),
        created_at: now,
        updated_at: now,
    }
}

/// Builds the record of an order another system already placed with the vendor. Its vendor key
/// is the idempotency key that system sent, which is what the vendor echoes back.
pub fn build_external_order(
    request: &OrderRequest,
    owner: &str,
    placed: ExternalPlacement,
) -> Order {
    let mut order = build_order(request, owner, Source::Import);
    order.vendor_key = request.idempotency_key.as_str().to_string();
    order.submission = Submission::External;
    order.vendor_status = Some(placed.vendor_status);
    order.gl_state = placed.gl_state;
    order.created_at = placed.created_at;
    order
}

/// What happened to an attempt to create an order.
pub enum Created {
    /// Inserted with its outbox job (and its idempotency record completed, if one was claimed).
    New,
    /// An order with this owner and key already exists (from an earlier request or import).
    Exists(Box<Order>),
}

/// Inserts the order, its "created" event and its `place_order` job in one transaction. With
/// `response`, the claimed idempotency record is completed in the same transaction.
pub async fn create_order(
    db: &Db,
    order: &Order,
    actor: Option<&str>,
    response: Option<&StoredResponse>,
) -> Result<Created, StorageError> {
    let inserted = insert_orders(db, std::slice::from_ref(order), actor, response).await?;
    if inserted == 1 {
        return Ok(Created::New);
    }
    match find_by_key(db, &order.owner, &order.idempotency_key).await? {
        Some(existing) => Ok(Created::Exists(Box::new(existing))),
        None => Err(StorageError::AlreadyExists {
            what: format!("vendor key {:?}", order.vendor_key),
        }),
    }
}

/// Inserts one order and its "created" event inside the open transaction `$tx`, unless its
/// (owner, key) or (vendor, vendor key) is taken. Evaluates to `Result<bool, sqlx::Error>`:
/// whether it was inserted. Jobs are the caller's.
macro_rules! insert_order {
    ($tx:expr, $order:expr, $actor:expr) => {
        async {
            let order: &$crate::storage::orders::Order = $order;
            let done = sqlx::query(
                "INSERT INTO orders (id, owner, idempotency_key, request_hash, vendor_id, vendor_key,
                    customer_id, brand_id, amount_minor, currency, submission, gl_state,
                    vendor_order_id, vendor_status, attention_reason, source, created_at, updated_at)
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17, $18)
                 ON CONFLICT DO NOTHING",
            )
            .bind(&order.id)
            .bind(&order.owner)
            .bind(&order.idempotency_key)
            .bind(&order.request_hash)
            .bind(&order.vendor_id)
            .bind(&order.vendor_key)
            .bind(&order.customer_id)
            .bind(&order.brand_id)
            .bind(order.amount.minor_units())
            .bind(order.amount.currency().code())
            .bind(order.submission.as_str())
            .bind(order.gl_state.as_str())
            .bind(&order.vendor_order_id)
            .bind(&order.vendor_status)
            .bind(&order.attention_reason)
            .bind(&order.source)
            .bind(order.created_at)
            .bind(order.updated_at)
            .execute(&mut *$tx)
            .await?;
            if done.rows_affected() == 0 {
                return Ok::<bool, sqlx::Error>(false);
            }
            sqlx::query(
                "INSERT INTO order_events (order_id, kind, detail, actor, created_at)
                 VALUES ($1, 'created', $2, $3, $4)",
            )
            .bind(&order.id)
            .bind($crate::storage::orders::created_detail(order))
            .bind($actor)
            .bind(order.created_at)
            .execute(&mut *$tx)
            .await?;
            Ok(true)
        }
    };
}
pub(crate) use insert_order;

/// Inserts orders in one transaction, skipping any whose (owner, key) already exists; each new
/// order gets its "created" event and, when queued, its `place_order` job. `response` completes
/// the idempotency record of a single new order. Returns how many were inserted.
pub async fn insert_orders(
    db: &Db,
    new_orders: &[Order],
    actor: Option<&str>,
    response: Option<&StoredResponse>,
) -> Result<u64, StorageError> {
    let inserted = on_db!(db, pool => {
        async {
            let mut tx = pool.begin().await?;
            let mut inserted = 0u64;
            for order in new_orders {
                if !insert_order!(tx, order, actor).await? {
                    continue;
                }
                inserted += 1;
                if order.submission == Submission::Queued {
                    sqlx::query(
                        "INSERT INTO outbox_jobs (kind, order_id, state, attempts, run_at, created_at, updated_at)
                         VALUES ('place_order', $1, 'pending', 0, $2, $2, $2)",
                    )
                    .bind(&order.id)
                    .bind(order.created_at)
                    .execute(&mut *tx)
                    .await?;
                }
                if let (Some(response), [_]) = (response, new_orders) {
                    sqlx::query(
                        "UPDATE idempotency_keys
                            SET state = 'completed', response_status = $1, response_body = $2,
                                order_id = $3, locked_until = NULL
                          WHERE owner = $4 AND idem_key = $5",
                    )
                    .bind(i32::from(response.status))
                    .bind(&response.body)
                    .bind(&order.id)
                    .bind(&order.owner)
                    .bind(&order.idempotency_key)
                    .execute(&mut *tx)
                    .await?;
                }
            }
            tx.commit().await?;
            Ok::<u64, sqlx::Error>(inserted)
        }
        .await
    })?;
    Ok(inserted)
}

pub(crate) fn created_detail(order: &Order) -> String {
    /// The event's fields in the order `serde_json` wrote them when this was a `json!` map
    /// (sorted by name), so history written before and after reads the same. Borrowed: an
    /// import writes one per order, and a map of owned strings per row was a fifth of the
    /// importing task's time.
    #[derive(Serialize)]
    struct Created<'a> {
        amount: String,
        currency: &'a str,
        source: &'a str,
        submission: &'a str,
        vendor: &'a str,
        vendor_key: &'a str,
        vendor_status: Option<&'a str>,
    }
    serde_json::to_string(&Created {
        amount: order.amount.amount_string(),
        currency: order.amount.currency().code(),
        source: &order.source,
        submission: order.submission.as_str(),
        vendor: &order.vendor_id,
        vendor_key: &order.vendor_key,
        vendor_status: order.vendor_status.as_deref(),
    })
    .expect("strings always serialize")
}

/// The fingerprints of the orders that already exist for `owner` among `keys`.
pub async fn existing_fingerprints(
    db: &Db,
    owner: &str,
    keys: &[&str],
) -> Result<std::collections::HashMap<String, String>, StorageError> {
    let mut found = std::collections::HashMap::new();
    // Chunks keep every statement well under both engines' bind-parameter limits.
    for chunk in keys.chunks(500) {
        let placeholders = (2..chunk.len() + 2)
            .map(|i| format!("${i}"))
            .collect::<Vec<_>>()
            .join(", ");
        let sql = format!(
            "SELECT idempotency_key, request_hash FROM orders WHERE owner = $1 AND idempotency_key IN ({placeholders})"
        );
        let rows: Vec<(String, String)> = on_db!(db, pool => {
            let mut query = sqlx::query_as(&sql).bind(owner);
            for key in chunk {
                query = query.bind(*key);
            }
            query.fetch_all(pool).await
        })?;
        found.extend(rows);
    }
    Ok(found)
}

pub async fn get(db: &Db, id: &str) -> Result<Option<Order>, StorageError> {
    let sql = format!("SELECT {ORDER_COLUMNS} FROM orders WHERE id = $1");
    let row: Option<OrderRow> = on_db!(db, pool => {
        sqlx::query_as(&sql).bind(id).fetch_optional(pool).await
    })?;
    row.map(Order::try_from).transpose()
}

pub async fn find_by_key(db: &Db, owner: &str, key: &str) -> Result<Option<Order>, StorageError> {
    let sql =
        format!("SELECT {ORDER_COLUMNS} FROM orders WHERE owner = $1 AND idempotency_key = $2");
    let row: Option<OrderRow> = on_db!(db, pool => {
        sqlx::query_as(&sql).bind(owner).bind(key).fetch_optional(pool).await
    })?;
    row.map(Order::try_from).transpose()
}

/// Orders any id points at: our order id, an idempotency key (any owner), a customer id, the
/// vendor key, the vendor's order id (ours or on a vendor record). Newest first, at most `limit`.
/// Each branch is an indexed lookup.
pub async fn search(db: &Db, term: &str, limit: i64) -> Result<Vec<Order>, StorageError> {
    let sql = format!(
        "SELECT {ORDER_COLUMNS} FROM orders WHERE id IN (
            SELECT id FROM orders WHERE id = $1
            UNION SELECT id FROM orders WHERE idempotency_key = $1
            UNION SELECT id FROM orders WHERE customer_id = $1
            UNION SELECT id FROM orders
                   WHERE vendor_id IN (SELECT id FROM vendors) AND vendor_key = $1
            UNION SELECT id FROM orders
                   WHERE vendor_id IN (SELECT id FROM vendors) AND vendor_order_id = $1
            UNION SELECT order_id FROM vendor_records
                   WHERE vendor_id IN (SELECT id FROM vendors) AND vendor_order_id = $1
                     AND order_id IS NOT NULL)
          ORDER BY created_at DESC, id LIMIT $2"
    );
    let rows: Vec<OrderRow> = on_db!(db, pool => {
        sqlx::query_as(&sql).bind(term).bind(limit).fetch_all(pool).await
    })?;
    rows.into_iter().map(Order::try_from).collect()
}

pub async fn count(db: &Db) -> Result<i64, StorageError> {
    Ok(on_db!(db, pool => {
        sqlx::query_scalar("SELECT COUNT(*) FROM orders").fetch_one(pool).await
    })?)
}

pub async fn events(db: &Db, order_id: &str) -> Result<Vec<OrderEvent>, StorageError> {
    Ok(on_db!(db, pool => {
        sqlx::query_as(
            "SELECT id, kind, detail, actor, created_at FROM order_events
              WHERE order_id = $1 ORDER BY id",
        )
        .bind(order_id)
        .fetch_all(pool)
        .await
    })?)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::{IdempotencyKey, VendorId};

    /// History written by earlier versions (a `json!` map) and by this one reads the same.
    #[test]
    fn created_detail_is_the_map_it_always_was() {
        let request = OrderRequest::new(
            IdempotencyKey::parse("key-\"1\"").unwrap(),
            "c-1",
            "amazon",
            Money::parse("1.500", Currency::parse("KWD").unwrap()).unwrap(),
            VendorId::parse("acme").unwrap(),
        )
        .unwrap();
        let queued = build_order(&request, "import", Source::Import);
        let placed = build_external_order(
            &request,
            "import",
            ExternalPlacement {
                vendor_status: "Fulfilled".into(),
                gl_state: GlState::Fulfilled,
                created_at: now_utc(),
            },
        );
        for order in [queued, placed] {
            let map = serde_json::json!({
                "amount": order.amount.amount_string(),
                "currency": order.amount.currency().code(),
                "vendor": order.vendor_id,
                "vendor_key": order.vendor_key,
                "source": order.source,
                "submission": order.submission.as_str(),
                "vendor_status": order.vendor_status,
            })
            .to_string();
            assert_eq!(created_detail(&order), map);
        }
    }
}
