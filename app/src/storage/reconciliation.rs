//! Reconciliation runs: one vendor's business day, matched and classified in the database's
//! company, with the discrepancies kept across runs.
//!
//! A run streams the day through the pure classifier ([`matching::classify`]) one group at a
//! time, so memory stays flat however large the day is:
//!
//! 1. link vendor records to orders (by vendor key, else vendor order id, else the echoed
//!    reference, which is our order id) where no link exists yet;
//! 2. the day's orders counted by currency and GL state, and those that do not agree exactly
//!    with their one linked record (same currency, amount and mapped GL state), each with the
//!    records linked to it, ordered by order id; the great majority that agree are the
//!    difference, and never leave the database one by one;
//! 3. the day's unlinked records, grouped by the key they carry.
//!
//! Steps 2 and 3 read one snapshot.
//!
//! Orders belong to the day of their `created_at`, unlinked records to the day of their
//! `occurred_at`; a record linked to an order counts on the order's day. The run's counts and
//! totals are stored, so a day's report reproduces exactly. Discrepancies are keyed by
//! (vendor, day, item key) and keep their lifecycle: open → resolved (who, when, how); a rerun
//! leaves a resolved item resolved unless its data changed (its fingerprint), and an open item the
//! data no longer shows becomes `cleared`.

use std::collections::{BTreeMap, HashMap};

use chrono::{DateTime, NaiveDate, Utc};
use futures_util::TryStreamExt;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use super::audit::{AuditAppend, AuditEvent};
use super::vendors::Vendor;
use super::{now_utc, BulkBegin, Db, StorageError};
use crate::domain::matching::{
    classify, Class, CurrencyTotals, InternalOrder, SideTotal, Tolerance, Totals, VendorRecord,
};
use crate::domain::{Currency, GlState, Money};
use crate::on_db;

/// Appends to a discrepancy's history inside the open transaction `$tx`.
macro_rules! event {
    ($tx:expr, $id:expr, $kind:expr, $detail:expr, $actor:expr, $at:expr) => {
        sqlx::query(
            "INSERT INTO discrepancy_events (discrepancy_id, kind, detail, actor, at)
             VALUES ($1, $2, $3, $4, $5)",
        )
        .bind($id)
        .bind($kind)
        .bind($detail)
        .bind($actor)
        .bind($at)
        .execute(&mut *$tx)
    };
}
pub(crate) use event;

/// Rows per multi-row statement when a run writes its discrepancies (19 values each).
const STORE_ROWS: usize = 250;

/// An upsert of `rows` discrepancies: each inserted open, or — when its key is already there —
/// opened again with the new values (any resolution cleared, first run kept). Returns each
/// row's id and item key.
fn upsert_discrepancies_sql(db: &Db, rows: usize) -> String {
    let mut params = super::Placeholders::new(db);
    let mut sql = String::from(
        "INSERT INTO discrepancies (vendor_id, business_day, item_key, class, state, order_id,
            internal_minor, internal_currency, internal_gl_state, vendor_order_ids,
            vendor_records, vendor_minor, vendor_currency, vendor_status, fingerprint,
            first_run, last_run, opened_at, updated_at)
         VALUES ",
    );
    params.rows(&mut sql, rows, 19);
    sql.push_str(
        " ON CONFLICT (vendor_id, business_day, item_key) DO UPDATE
            SET class = excluded.class, state = 'open', order_id = excluded.order_id,
                internal_minor = excluded.internal_minor,
                internal_currency = excluded.internal_currency,
                internal_gl_state = excluded.internal_gl_state,
                vendor_order_ids = excluded.vendor_order_ids,
                vendor_records = excluded.vendor_records,
                vendor_minor = excluded.vendor_minor,
                vendor_currency = excluded.vendor_currency,
                vendor_status = excluded.vendor_status,
                fingerprint = excluded.fingerprint,
                resolution = NULL, resolved_by = NULL, resolved_at = NULL,
                write_off_reason = NULL, write_off_by = NULL, write_off_at = NULL,
                last_run = excluded.last_run, updated_at = excluded.updated_at
         RETURNING id, item_key",
    );
    sql
}

/// `INSERT INTO discrepancy_events` of `rows` events.
fn events_sql(db: &Db, rows: usize) -> String {
    let mut params = super::Placeholders::new(db);
    let mut sql = String::from(
        "INSERT INTO discrepancy_events (discrepancy_id, kind, detail, actor, at) VALUES ",
    );
    params.rows(&mut sql, rows, 5);
    sql
}

/// Writes found discrepancies (at most [`STORE_ROWS`], item keys distinct) for `$day` inside
/// `$tx` with one upsert (see [`upsert_discrepancies_sql`]), then one history event each:
/// `$kind`, with the detail `$detail(found)` gives. Evaluates to
/// `Result<(), sqlx::Error>`.
macro_rules! write_discrepancies {
    ($tx:expr, $db:expr, $vendor_id:expr, $day:expr, $found:expr, $run_id:expr, $at:expr,
     $actor:expr, $kind:expr, $detail:expr) => {
        async {
            let found: &[&Found] = $found;
            let sql = upsert_discrepancies_sql($db, found.len());
            let mut query = sqlx::query_as::<_, (i64, String)>(&sql);
            for f in found {
                let order = f.order.as_ref();
                let first = f.records.first();
                query = query
                    .bind($vendor_id)
                    .bind($day)
                    .bind(&f.item_key)
                    .bind(f.class.as_str())
                    .bind("open")
                    .bind(order.map(|o| o.id.as_str()))
                    .bind(order.map(|o| o.amount.minor_units()))
                    .bind(order.map(|o| o.amount.currency().code()))
                    .bind(order.map(|o| o.gl_state.as_str()))
                    .bind(f.vendor_order_ids())
                    .bind(f.records.len() as i64)
                    .bind(first.map(|r| r.amount.minor_units()))
                    .bind(first.map(|r| r.amount.currency().code()))
                    .bind(first.map(|r| r.status.as_str()))
                    .bind(&f.fingerprint)
                    .bind($run_id)
                    .bind($run_id)
                    .bind($at)
                    .bind($at);
            }
            let ids: HashMap<String, i64> = query
                .fetch_all(&mut *$tx)
                .await?
                .into_iter()
                .map(|(id, key)| (key, id))
                .collect();
            let mut details: Vec<(i64, String)> = Vec::with_capacity(found.len());
            for f in found {
                let id = *ids.get(&f.item_key).ok_or_else(|| {
                    sqlx::Error::Protocol(format!("no id returned for discrepancy {}", f.item_key))
                })?;
                details.push((id, $detail(f)));
            }
            let sql = events_sql($db, details.len());
            let mut events = sqlx::query(&sql);
            for (id, detail) in &details {
                events = events
                    .bind(*id)
                    .bind($kind)
                    .bind(detail)
                    .bind($actor)
                    .bind($at);
            }
            events.execute(&mut *$tx).await.map(|_| ())
        }
    };
}

/// A business day and the UTC instants it spans in the business time zone.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DayWindow {
    pub day: NaiveDate,
    /// IANA name, e.g. "UTC" or "America/New_York".
    pub time_zone: String,
    pub start: DateTime<Utc>,
    pub end: DateTime<Utc>,
}

impl DayWindow {
    /// The day in UTC.
    pub fn utc(day: NaiveDate) -> DayWindow {
        let start = day.and_hms_opt(0, 0, 0).expect("midnight exists").and_utc();
        DayWindow {
            day,
            time_zone: "UTC".into(),
            start,
            end: start + chrono::Duration::days(1),
        }
    }
}

/// Counts per class, in the order the issue lists them, all classes present.
pub type Counts = BTreeMap<Class, u64>;

/// What one run found and did.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RunSummary {
    pub run_id: i64,
    pub vendor_id: String,
    pub day: NaiveDate,
    pub time_zone: String,
    pub orders: u64,
    pub records: u64,
    pub counts: Counts,
    pub totals: BTreeMap<Currency, CurrencyTotals>,
    pub actor: String,
    pub finished_at: DateTime<Utc>,
}

/// How the discrepancies of a day changed in a run.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Changes {
    pub opened: u64,
    pub reopened: u64,
    pub unchanged: u64,
    pub cleared: u64,
    /// The day was closed: what changed since was filed on this open day instead.
    pub adjusted_onto: Option<NaiveDate>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum DiscrepancyState {
    Open,
    Resolved,
    Cleared,
}

impl DiscrepancyState {
    pub fn as_str(self) -> &'static str {
        match self {
            DiscrepancyState::Open => "open",
            DiscrepancyState::Resolved => "resolved",
            DiscrepancyState::Cleared => "cleared",
        }
    }

    fn parse(s: &str) -> Result<DiscrepancyState, StorageError> {
        match s {
            "open" => Ok(DiscrepancyState::Open),
            "resolved" => Ok(DiscrepancyState::Resolved),
            "cleared" => Ok(DiscrepancyState::Cleared),
            other => Err(super::orders::corrupt(format!(
                "discrepancy state {other:?}"
            ))),
        }
    }
}

/// One side of a discrepancy: ours (the order) or the vendor's (its record(s)).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Discrepancy {
    pub id: i64,
    pub vendor_id: String,
    pub day: NaiveDate,
    pub item_key: String,
    pub class: Class,
    pub state: DiscrepancyState,
    pub order_id: Option<String>,
    pub internal_amount: Option<Money>,
    pub internal_gl_state: Option<GlState>,
    /// Every vendor order id in the group, comma-separated, sorted.
    pub vendor_order_ids: Option<String>,
    pub vendor_records: i64,
    /// The first record's amount (for duplicates, every record's amount is in the history).
    pub vendor_amount: Option<Money>,
    pub vendor_status: Option<String>,
    pub fingerprint: String,
    pub resolution: Option<String>,
    pub resolved_by: Option<String>,
    pub resolved_at: Option<DateTime<Utc>>,
    pub assignee: Option<String>,
    /// A write-off someone asked for, awaiting a second person: (reason, who, when).
    pub write_off: Option<(String, String, DateTime<Utc>)>,
    pub opened_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

/// One event in a discrepancy's life.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DiscrepancyEvent {
    pub kind: String,
    pub detail: String,
    pub actor: String,
    pub at: DateTime<Utc>,
}

/// A discrepancy as a run sees it, before it is stored.
struct Found {
    item_key: String,
    class: Class,
    order: Option<InternalOrder>,
    records: Vec<VendorRecord>,
    fingerprint: String,
}

impl Found {
    fn new(
        item_key: String,
        class: Class,
        order: Option<InternalOrder>,
        records: Vec<VendorRecord>,
    ) -> Found {
        let mut hash = Sha256::new();
        hash.update(class.as_str());
        if let Some(o) = &order {
            hash.update(format!(
                "|o:{}:{}:{}:{}",
                o.id,
                o.amount.minor_units(),
                o.amount.currency().code(),
                o.gl_state.as_str()
            ));
        }
        for r in &records {
            hash.update(format!(
                "|r:{}:{}:{}:{}",
                r.vendor_order_id,
                r.amount.minor_units(),
                r.amount.currency().code(),
                r.status
            ));
        }
        Found {
            item_key,
            class,
            order,
            records,
            fingerprint: hex::encode(hash.finalize()),
        }
    }
}

/// One finding per item key, the last where a key repeats (as when an order and a record no
/// order claimed yet carry one key): a multi-row upsert may touch each row once only.
fn distinct_keys(found: &[Found]) -> Vec<&Found> {
    let mut last: HashMap<&str, usize> = HashMap::with_capacity(found.len());
    for (i, f) in found.iter().enumerate() {
        last.insert(f.item_key.as_str(), i);
    }
    found
        .iter()
        .enumerate()
        .filter(|(i, f)| last.get(f.item_key.as_str()) == Some(i))
        .map(|(_, f)| f)
        .collect()
}

impl Found {
    /// Every vendor order id of the group, sorted, comma-separated; `None` without records.
    fn vendor_order_ids(&self) -> Option<String> {
        (!self.records.is_empty()).then(|| {
            self.records
                .iter()
                .map(|r| r.vendor_order_id.as_str())
                .collect::<Vec<_>>()
                .join(",")
        })
    }
}

/// Accumulates a run: counts, totals and discrepancies, one group at a time.
struct Accumulator<'a> {
    vendor: &'a Vendor,
    tolerance: Tolerance,
    counts: Counts,
    totals: Totals,
    orders: u64,
    records: u64,
    found: Vec<Found>,
}

impl Accumulator<'_> {
    /// `count` orders in `currency` and `state` that agree exactly with their one record,
    /// `minor` in all if fulfilled (see [`agrees_sql`]).
    fn agreed(
        &mut self,
        currency: &str,
        state: &str,
        count: i64,
        minor: i64,
    ) -> Result<(), StorageError> {
        let corrupt = |e: String| super::orders::corrupt(format!("agreed orders: {e}"));
        if minor < 0 {
            return Err(corrupt(format!("{currency} {state}: {minor} minor units")));
        }
        let count = u64::try_from(count).map_err(|e| corrupt(e.to_string()))?;
        let state = GlState::parse(state).map_err(|e| corrupt(e.to_string()))?;
        let amount = money(minor, currency, "agreed orders")?;
        self.orders += count;
        self.records += count;
        *self.counts.entry(Class::Matched).or_default() += count;
        self.totals
            .add_agreed(state, count, amount)
            .map_err(|e| corrupt(format!("totals: {e}")))
    }

    fn group(
        &mut self,
        item_key: String,
        order: Option<InternalOrder>,
        mut records: Vec<VendorRecord>,
    ) -> Result<(), StorageError> {
        let money = |e: crate::domain::MoneyError| super::orders::corrupt(format!("totals: {e}"));
        records.sort_by(|a, b| a.vendor_order_id.cmp(&b.vendor_order_id));
        if let Some(o) = &order {
            self.orders += 1;
            self.totals.add_order(o).map_err(money)?;
        }
        for r in &records {
            self.records += 1;
            self.totals
                .add_record(r, &self.vendor.status_mapping)
                .map_err(money)?;
        }
        let refs: Vec<&VendorRecord> = records.iter().collect();
        let Some(class) = classify(
            order.as_ref(),
            &refs,
            &self.vendor.status_mapping,
            self.tolerance,
        ) else {
            return Ok(());
        };
        *self.counts.entry(class).or_default() += 1;
        if class.is_discrepancy() {
            self.found.push(Found::new(item_key, class, order, records));
        }
        Ok(())
    }
}

/// `o` is one of the vendor's orders of the day: binds the vendor id, then the window's start
/// and end.
fn day_orders_sql(params: &mut super::Placeholders, sql: &mut String) {
    sql.push_str("o.vendor_id = ");
    params.push(sql);
    sql.push_str(" AND o.created_at >= ");
    params.push(sql);
    sql.push_str(" AND o.created_at < ");
    params.push(sql);
}

/// The GL state `status` (an SQL expression) maps to by `spellings`, else NULL (always NULL
/// with no spellings, where a CASE would have no branch). Binds each spelling's status in turn.
fn mapped_state_sql(
    params: &mut super::Placeholders,
    sql: &mut String,
    status: &str,
    spellings: &[(String, GlState)],
) {
    if spellings.is_empty() {
        sql.push_str("NULL");
        return;
    }
    sql.push_str("CASE ");
    sql.push_str(status);
    for (_, state) in spellings {
        sql.push_str(" WHEN ");
        params.push(sql);
        // A fixed word from the enum, never user input.
        sql.push_str(" THEN '");
        sql.push_str(state.as_str());
        sql.push('\'');
    }
    sql.push_str(" END");
}

/// True for an order `o` that agrees exactly with the one vendor record linked to it: same
/// currency, same amount, and a status spelt as in `spellings` that maps to the order's GL state
/// — exactly the orders [`classify`] calls matched with any tolerance, less those whose status
/// is spelt some other way (they take the long way, through the classifier). Binds each
/// spelling's status in turn.
fn agrees_sql(params: &mut super::Placeholders, sql: &mut String, spellings: &[(String, GlState)]) {
    sql.push_str(
        "EXISTS (SELECT 1 FROM vendor_records m
                  WHERE m.order_id = o.id AND m.currency = o.currency
                    AND m.amount_minor = o.amount_minor AND ",
    );
    mapped_state_sql(params, sql, "m.status", spellings);
    sql.push_str(
        " = o.gl_state
                    AND NOT EXISTS (SELECT 1 FROM vendor_records x
                                     WHERE x.order_id = o.id AND x.id <> m.id))",
    );
}

/// The same test as [`agrees_sql`] for a row `j` of an order joined to its records, which
/// carries the order's record count as `records`: true when that count is one and the record
/// agrees (never NULL, so `NOT` keeps every other order).
fn joined_agrees_sql(
    params: &mut super::Placeholders,
    sql: &mut String,
    spellings: &[(String, GlState)],
) {
    sql.push_str(
        "COALESCE(j.records = 1 AND j.r_currency = j.currency
                  AND j.r_amount_minor = j.amount_minor AND ",
    );
    mapped_state_sql(params, sql, "j.r_status", spellings);
    sql.push_str(" = j.gl_state, false)");
}

/// The columns of a [`JoinedRow`]: the order `o` (its keys from `full`, the alias its whole row
/// is read under) and its linked record `r`.
fn rest_select_sql(sql: &mut String, full: &str) {
    sql.push_str(&format!(
        "SELECT o.id, {full}.vendor_key, {full}.vendor_order_id AS order_vendor_order_id,
                o.amount_minor, o.currency, o.gl_state,
                r.vendor_order_id AS r_vendor_order_id, r.vendor_key AS r_vendor_key,
                r.reference_id AS r_reference_id, r.amount_minor AS r_amount_minor,
                r.currency AS r_currency, r.status AS r_status"
    ));
}

#[derive(sqlx::FromRow)]
struct JoinedRow {
    id: String,
    vendor_key: String,
    order_vendor_order_id: Option<String>,
    amount_minor: i64,
    currency: String,
    gl_state: String,
    r_vendor_order_id: Option<String>,
    r_vendor_key: Option<String>,
    r_reference_id: Option<String>,
    r_amount_minor: Option<i64>,
    r_currency: Option<String>,
    r_status: Option<String>,
}

#[derive(sqlx::FromRow)]
struct RecordRow {
    vendor_order_id: String,
    vendor_key: Option<String>,
    reference_id: Option<String>,
    amount_minor: i64,
    currency: String,
    status: String,
}

fn money(minor: i64, currency: &str, what: &str) -> Result<Money, StorageError> {
    let c = Currency::parse(currency)
        .map_err(|e| super::orders::corrupt(format!("{what}: currency: {e}")))?;
    Ok(Money::from_minor(minor, c))
}

impl JoinedRow {
    fn order(&self) -> Result<InternalOrder, StorageError> {
        Ok(InternalOrder {
            id: self.id.clone(),
            vendor_key: self.vendor_key.clone(),
            vendor_order_id: self.order_vendor_order_id.clone(),
            amount: money(self.amount_minor, &self.currency, &self.id)?,
            gl_state: GlState::parse(&self.gl_state)
                .map_err(|e| super::orders::corrupt(format!("order {}: {e}", self.id)))?,
        })
    }

    fn record(self) -> Result<Option<VendorRecord>, StorageError> {
        let (Some(vendor_order_id), Some(minor), Some(currency), Some(status)) = (
            self.r_vendor_order_id,
            self.r_amount_minor,
            self.r_currency,
            self.r_status,
        ) else {
            return Ok(None);
        };
        Ok(Some(VendorRecord {
            amount: money(minor, &currency, &vendor_order_id)?,
            vendor_order_id,
            key: self.r_vendor_key,
            reference_id: self.r_reference_id,
            status,
        }))
    }
}

impl RecordRow {
    fn record(self) -> Result<VendorRecord, StorageError> {
        Ok(VendorRecord {
            amount: money(self.amount_minor, &self.currency, &self.vendor_order_id)?,
            vendor_order_id: self.vendor_order_id,
            key: self.vendor_key,
            reference_id: self.reference_id,
            status: self.status,
        })
    }
}

/// Links vendor records without an order to the order they name: by vendor key, else by the
/// vendor's order id, else by the reference they echo (our order id). Returns how many it linked.
pub async fn link_records(db: &Db, vendor_id: &str) -> Result<u64, StorageError> {
    const BY: [&str; 3] = [
        "o.vendor_key = vendor_records.vendor_key",
        "o.vendor_order_id = vendor_records.vendor_order_id",
        "o.id = vendor_records.reference_id",
    ];
    let mut linked = 0;
    for condition in BY {
        let sql = format!(
            "UPDATE vendor_records SET order_id = (
                 SELECT o.id FROM orders o WHERE o.vendor_id = vendor_records.vendor_id AND {condition}
                  ORDER BY o.id LIMIT 1)
              WHERE vendor_id = $1 AND order_id IS NULL
                AND EXISTS (SELECT 1 FROM orders o
                             WHERE o.vendor_id = vendor_records.vendor_id AND {condition})"
        );
        linked += on_db!(db, pool => {
            sqlx::query(&sql).bind(vendor_id).execute(pool).await.map(|r| r.rows_affected())
        })?;
    }
    Ok(linked)
}

/// Reconciles one vendor's day: links, classifies, stores the run and updates the day's
/// discrepancies, all of the writes in one transaction.
pub async fn run(
    db: &Db,
    vendor: &Vendor,
    window: &DayWindow,
    tolerance: Tolerance,
    actor: &str,
) -> Result<(RunSummary, Changes), StorageError> {
    let started_at = now_utc();
    let vendor_id = vendor.id.as_str();
    link_records(db, vendor_id).await?;

    let mut acc = Accumulator {
        vendor,
        tolerance,
        counts: Class::ALL.iter().map(|c| (*c, 0)).collect(),
        totals: Totals::default(),
        orders: 0,
        records: 0,
        found: Vec::new(),
    };

    // One snapshot for every read, so an order is counted once even if a webhook lands
    // between the statements.
    let spellings = vendor.status_mapping.spellings();
    on_db!(db, pool => {
        async {
            let mut tx = pool.begin_bulk_read().await?;
            if matches!(db, Db::Postgres(_)) {
                sqlx::query("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ, READ ONLY")
                    .execute(&mut *tx)
                    .await?;
            }

            // Every order of the day, counted by currency and GL state (fulfilled amounts summed).
            // Those that agree exactly with their one record are what remains of these counts
            // once the rest have been streamed through the classifier below: the great majority,
            // which thus never cross to it one by one.
            let mut params = super::Placeholders::new(db);
            let mut sql = String::from(
                "SELECT o.currency, o.gl_state, COUNT(*),
                        CAST(SUM(CASE WHEN o.gl_state = 'fulfilled'
                                      THEN o.amount_minor ELSE 0 END) AS BIGINT)
                   FROM orders o WHERE ",
            );
            day_orders_sql(&mut params, &mut sql);
            sql.push_str(" GROUP BY o.currency, o.gl_state");
            let day: Vec<(String, String, i64, i64)> = sqlx::query_as(&sql)
                .bind(vendor_id)
                .bind(window.start)
                .bind(window.end)
                .fetch_all(&mut *tx)
                .await?;
            let mut agreed: HashMap<(String, String), (i64, i64)> = day
                .into_iter()
                .map(|(currency, state, count, minor)| ((currency, state), (count, minor)))
                .collect();

            // The rest of the day's orders, each with its linked records.
            let mut params = super::Placeholders::new(db);
            let mut sql = String::new();
            if params.sqlite {
                // SQLite walks the day in time order and probes the vendor records' order index
                // for each order, at random places in it: at a million orders most probes
                // missed the processor's caches (2.3 s). So the day's orders are sorted by id
                // first (in small runs, see SORT_CACHE_KIB), and the probes then walk the index
                // in its own order: 1.3 s in the `sqlite3` shell, on a cache of 4 MiB instead
                // of 128. Only the orders left over are read from the table (`t`).
                sql.push_str(
                    "WITH o AS MATERIALIZED (
                        SELECT o.id, o.amount_minor, o.currency, o.gl_state, o.created_at
                          FROM orders o WHERE ",
                );
                day_orders_sql(&mut params, &mut sql);
                sql.push_str(" ORDER BY o.id) ");
                rest_select_sql(&mut sql, "t");
                sql.push_str(
                    " FROM o CROSS JOIN orders t ON t.id = o.id
                       LEFT JOIN vendor_records r ON r.order_id = o.id
                      WHERE NOT ",
                );
                agrees_sql(&mut params, &mut sql, &spellings);
                sql.push_str(" ORDER BY o.created_at, o.id");
            } else {
                // PostgreSQL cannot flatten `agrees_sql`'s inner NOT EXISTS (it names the outer
                // record `m`), so it ran as a subplan per order: at a million orders the query
                // took 4.5 s. Joining each order to its records once and counting them per order
                // gives the same rows in 1.9 s (psql, same day, the rows' counts and sums alike).
                sql.push_str("SELECT j.* FROM (");
                rest_select_sql(&mut sql, "o");
                sql.push_str(
                    ", o.created_at, COUNT(r.id) OVER (PARTITION BY o.id) AS records
                       FROM orders o LEFT JOIN vendor_records r ON r.order_id = o.id WHERE ",
                );
                day_orders_sql(&mut params, &mut sql);
                sql.push_str(") j WHERE NOT ");
                joined_agrees_sql(&mut params, &mut sql, &spellings);
                sql.push_str(" ORDER BY j.created_at, j.id");
            }
            let mut query = sqlx::query_as::<_, JoinedRow>(&sql)
                .bind(vendor_id)
                .bind(window.start)
                .bind(window.end);
            for (status, _) in &spellings {
                query = query.bind(status);
            }
            let mut rows = query.fetch(&mut *tx);
            let mut current: Option<(InternalOrder, Vec<VendorRecord>)> = None;
            while let Some(row) = rows.try_next().await? {
                if current.as_ref().is_none_or(|(o, _)| o.id != row.id) {
                    if let Some((order, records)) = current.take() {
                        acc.group(order.vendor_key.clone(), Some(order), records)?;
                    }
                    let order = row.order()?;
                    let left = agreed
                        .get_mut(&(row.currency.clone(), row.gl_state.clone()))
                        .ok_or_else(|| {
                            super::orders::corrupt(format!(
                                "order {} is not among the day's orders counted",
                                row.id
                            ))
                        })?;
                    left.0 -= 1;
                    if order.gl_state == GlState::Fulfilled {
                        left.1 -= row.amount_minor;
                    }
                    current = Some((order, Vec::new()));
                }
                if let Some(record) = row.record()? {
                    current.as_mut().expect("set above").1.push(record);
                }
            }
            if let Some((order, records)) = current.take() {
                acc.group(order.vendor_key.clone(), Some(order), records)?;
            }
            drop(rows);
            for ((currency, state), (count, minor)) in agreed {
                acc.agreed(&currency, &state, count, minor)?;
            }

            // The day's records no order claims, grouped by the key they carry.
            let mut rows = sqlx::query_as::<_, RecordRow>(
                "SELECT vendor_order_id, vendor_key, reference_id, amount_minor, currency, status
                   FROM vendor_records
                  WHERE vendor_id = $1 AND order_id IS NULL
                    AND occurred_at >= $2 AND occurred_at < $3
                  ORDER BY vendor_key, vendor_order_id",
            )
            .bind(vendor_id)
            .bind(window.start)
            .bind(window.end)
            .fetch(&mut *tx);
            let mut current: Option<(String, Vec<VendorRecord>)> = None;
            while let Some(row) = rows.try_next().await? {
                let record = row.record()?;
                let key = record.key.clone();
                match (&mut current, key) {
                    (Some((k, records)), Some(key)) if *k == key => records.push(record),
                    (_, key) => {
                        if let Some((k, records)) = current.take() {
                            acc.group(k, None, records)?;
                        }
                        match key {
                            Some(key) => current = Some((key, vec![record])),
                            None => acc.group(
                                format!("vendor_order_id={}", record.vendor_order_id),
                                None,
                                vec![record],
                            )?,
                        }
                    }
                }
            }
            if let Some((k, records)) = current.take() {
                acc.group(k, None, records)?;
            }
            drop(rows);
            tx.rollback().await?;
            Ok::<(), StorageError>(())
        }
        .await
    })?;

    let Accumulator {
        counts,
        totals,
        orders,
        records,
        found,
        ..
    } = acc;
    let summary = RunSummary {
        run_id: 0,
        vendor_id: vendor_id.to_string(),
        day: window.day,
        time_zone: window.time_zone.clone(),
        orders,
        records,
        counts,
        totals: totals.into_map(),
        actor: actor.to_string(),
        finished_at: now_utc(),
    };
    if super::journal::is_locked(db, vendor_id, window.day).await? {
        return adjust_closed_day(db, summary, window, found).await;
    }
    store(db, summary, window, started_at, found).await
}

/// Signed differences of a closed day's totals, filed on an open day.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
struct TotalDelta {
    internal_count: i64,
    internal_minor: i64,
    vendor_count: i64,
    vendor_minor: i64,
}

type Deltas = BTreeMap<String, TotalDelta>;

fn add_delta(into: &mut Deltas, from: &Deltas) {
    for (code, d) in from {
        let t = into.entry(code.clone()).or_default();
        t.internal_count += d.internal_count;
        t.internal_minor += d.internal_minor;
        t.vendor_count += d.vendor_count;
        t.vendor_minor += d.vendor_minor;
    }
}

fn as_deltas(totals: &BTreeMap<Currency, CurrencyTotals>) -> Deltas {
    totals
        .iter()
        .map(|(c, t)| {
            (
                c.code().to_string(),
                TotalDelta {
                    internal_count: t.internal.count as i64,
                    internal_minor: t.internal.amount.minor_units(),
                    vendor_count: t.vendor.count as i64,
                    vendor_minor: t.vendor.amount.minor_units(),
                },
            )
        })
        .collect()
}

/// A closed (posted) day is never rewritten: its run, reports and discrepancies stay as they
/// were. What the data says now beyond them — totals that moved, discrepancies that are new or
/// changed — is filed on the first open day after it, as an adjustment that day's close carries.
async fn adjust_closed_day(
    db: &Db,
    summary: RunSummary,
    window: &DayWindow,
    found: Vec<Found>,
) -> Result<(RunSummary, Changes), StorageError> {
    let vendor_id = summary.vendor_id.clone();
    let closed = latest_run(db, &vendor_id, window.day).await?;
    let mut open_day = window.day;
    for _ in 0..=366 {
        open_day = open_day.succ_opt().unwrap_or(open_day);
        if !super::journal::is_locked(db, &vendor_id, open_day).await? {
            break;
        }
    }
    // What is already accounted for: the closed run plus every adjustment filed for it.
    let mut accounted = closed
        .as_ref()
        .map(|r| as_deltas(&r.totals))
        .unwrap_or_default();
    let filed: Vec<String> = on_db!(db, pool => {
        sqlx::query_scalar(
            "SELECT totals FROM reconciliation_adjustments WHERE vendor_id = $1 AND closed_day = $2",
        )
        .bind(&vendor_id)
        .bind(window.day)
        .fetch_all(pool)
        .await
    })?;
    for json in filed {
        let d: Deltas = serde_json::from_str(&json)
            .map_err(|e| super::orders::corrupt(format!("adjustment totals: {e}")))?;
        add_delta(&mut accounted, &d);
    }
    let now = as_deltas(&summary.totals);
    let mut delta = Deltas::new();
    for code in accounted.keys().chain(now.keys()) {
        let (a, n) = (
            accounted.get(code).cloned().unwrap_or_default(),
            now.get(code).cloned().unwrap_or_default(),
        );
        let d = TotalDelta {
            internal_count: n.internal_count - a.internal_count,
            internal_minor: n.internal_minor - a.internal_minor,
            vendor_count: n.vendor_count - a.vendor_count,
            vendor_minor: n.vendor_minor - a.vendor_minor,
        };
        if d != TotalDelta::default() {
            delta.insert(code.clone(), d);
        }
    }
    // Discrepancies the closed day does not hold (or holds with other data), and that no earlier
    // adjustment filed already.
    let known: Vec<(String, String)> = on_db!(db, pool => {
        sqlx::query_as(
            "SELECT item_key, fingerprint FROM discrepancies
              WHERE vendor_id = $1 AND (business_day = $2 OR item_key LIKE $3)",
        )
        .bind(&vendor_id)
        .bind(window.day)
        .bind(format!("adj:{}:%", window.day))
        .fetch_all(pool)
        .await
    })?;
    let known: std::collections::HashSet<String> = known
        .into_iter()
        .map(|(_, fingerprint)| fingerprint)
        .collect();
    let fresh: Vec<Found> = found
        .into_iter()
        .filter(|f| !known.contains(&f.fingerprint))
        .map(|f| Found {
            item_key: format!("adj:{}:{}", window.day, f.item_key),
            ..f
        })
        .collect();
    let mut changes = Changes {
        adjusted_onto: Some(open_day),
        ..Changes::default()
    };
    if delta.is_empty() && fresh.is_empty() {
        return Ok((closed.unwrap_or(summary), changes));
    }
    let at = now_utc();
    on_db!(db, pool => {
        async {
            let mut tx = pool.begin().await?;
            let fresh = distinct_keys(&fresh);
            for chunk in fresh.chunks(STORE_ROWS) {
                write_discrepancies!(tx, db, vendor_id.as_str(), open_day, chunk, 0i64, at,
                    summary.actor.as_str(), "opened", |f: &Found| {
                        format!("{} (after {} was closed)", f.class.as_str(), window.day)
                    })
                .await?;
            }
            changes.opened = fresh.len() as u64;
            let totals = serde_json::to_string(&delta).expect("numbers serialize");
            sqlx::query(
                "INSERT INTO reconciliation_adjustments (vendor_id, closed_day, open_day, totals,
                    discrepancies, actor, created_at)
                 VALUES ($1, $2, $3, $4, $5, $6, $7)",
            )
            .bind(&vendor_id)
            .bind(window.day)
            .bind(open_day)
            .bind(&totals)
            .bind(fresh.len() as i64)
            .bind(&summary.actor)
            .bind(at)
            .execute(&mut *tx)
            .await?;
            let event = AuditEvent::new(
                summary.actor.clone(),
                "reconciliation_adjustment",
                format!("vendor:{vendor_id}:{}", window.day),
            )
            .after(serde_json::json!({
                "open_day": open_day,
                "totals": delta,
                "discrepancies": fresh.len(),
            }));
            tx.append_audit(&event).await?;
            tx.commit().await?;
            Ok::<(), StorageError>(())
        }
        .await
    })?;
    Ok((closed.unwrap_or(summary), changes))
}

/// The stored shape of a run's totals: minor units, so they come back exactly.
#[derive(Serialize, Deserialize)]
struct StoredTotal {
    internal_count: u64,
    internal_minor: i64,
    vendor_count: u64,
    vendor_minor: i64,
}

fn counts_json(counts: &Counts) -> String {
    let map: BTreeMap<&str, u64> = counts.iter().map(|(c, n)| (c.as_str(), *n)).collect();
    serde_json::to_string(&map).expect("a map of numbers serializes")
}

fn totals_json(totals: &BTreeMap<Currency, CurrencyTotals>) -> String {
    let map: BTreeMap<&str, StoredTotal> = totals
        .iter()
        .map(|(c, t)| {
            (
                c.code(),
                StoredTotal {
                    internal_count: t.internal.count,
                    internal_minor: t.internal.amount.minor_units(),
                    vendor_count: t.vendor.count,
                    vendor_minor: t.vendor.amount.minor_units(),
                },
            )
        })
        .collect();
    serde_json::to_string(&map).expect("a map of numbers serializes")
}

struct Existing {
    id: i64,
    fingerprint: String,
    state: DiscrepancyState,
}

#[derive(sqlx::FromRow)]
struct ExistingRow {
    id: i64,
    item_key: String,
    fingerprint: String,
    state: String,
}

async fn store(
    db: &Db,
    mut summary: RunSummary,
    window: &DayWindow,
    started_at: DateTime<Utc>,
    found: Vec<Found>,
) -> Result<(RunSummary, Changes), StorageError> {
    let now = summary.finished_at;
    let mut changes = Changes::default();
    let run_id = on_db!(db, pool => {
        async {
            let mut tx = pool.begin().await?;
            let run_id: i64 = sqlx::query_scalar(
                "INSERT INTO reconciliation_runs (vendor_id, business_day, time_zone, window_start,
                    window_end, orders, records, counts, totals, actor, started_at, finished_at)
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12) RETURNING id",
            )
            .bind(&summary.vendor_id)
            .bind(window.day)
            .bind(&window.time_zone)
            .bind(window.start)
            .bind(window.end)
            .bind(summary.orders as i64)
            .bind(summary.records as i64)
            .bind(counts_json(&summary.counts))
            .bind(totals_json(&summary.totals))
            .bind(&summary.actor)
            .bind(started_at)
            .bind(now)
            .fetch_one(&mut *tx)
            .await?;

            let rows: Vec<ExistingRow> = sqlx::query_as(
                "SELECT id, item_key, fingerprint, state FROM discrepancies
                  WHERE vendor_id = $1 AND business_day = $2 AND item_key NOT LIKE 'adj:%'",
            )
            .bind(&summary.vendor_id)
            .bind(window.day)
            .fetch_all(&mut *tx)
            .await?;
            let mut existing: HashMap<String, Existing> = HashMap::with_capacity(rows.len());
            for r in rows {
                existing.insert(
                    r.item_key,
                    Existing {
                        id: r.id,
                        fingerprint: r.fingerprint,
                        state: DiscrepancyState::parse(&r.state)?,
                    },
                );
            }

            let mut opened: Vec<&Found> = Vec::new();
            let mut reopened: Vec<&Found> = Vec::new();
            let mut was: HashMap<&str, DiscrepancyState> = HashMap::new();
            let mut unchanged: Vec<i64> = Vec::new();
            for f in distinct_keys(&found) {
                match existing.remove(&f.item_key) {
                    None => opened.push(f),
                    Some(old)
                        if old.fingerprint == f.fingerprint
                            && old.state != DiscrepancyState::Cleared =>
                    {
                        unchanged.push(old.id)
                    }
                    // The data changed (or came back): open again, with the new values.
                    Some(old) => {
                        was.insert(&f.item_key, old.state);
                        reopened.push(f);
                    }
                }
            }
            let vendor_id = summary.vendor_id.as_str();
            let actor = summary.actor.as_str();
            for chunk in opened.chunks(STORE_ROWS) {
                write_discrepancies!(tx, db, vendor_id, window.day, chunk, run_id, now, actor,
                    "opened", |f: &Found| f.class.as_str().to_string())
                .await?;
            }
            for chunk in reopened.chunks(STORE_ROWS) {
                write_discrepancies!(tx, db, vendor_id, window.day, chunk, run_id, now, actor,
                    "reopened", |f: &Found| {
                        let state = was.get(f.item_key.as_str()).copied();
                        let state = state.unwrap_or(DiscrepancyState::Open);
                        format!("{} (was {})", f.class.as_str(), state.as_str())
                    })
                .await?;
            }
            for chunk in unchanged.chunks(STORE_ROWS) {
                let mut params = super::Placeholders::new(db);
                let mut sql = String::from("UPDATE discrepancies SET last_run = ");
                params.push(&mut sql);
                sql.push_str(" WHERE id IN ");
                params.tuple(&mut sql, chunk.len());
                let mut query = sqlx::query(&sql).bind(run_id);
                for id in chunk {
                    query = query.bind(*id);
                }
                query.execute(&mut *tx).await?;
            }
            // What the data no longer shows: open items clear themselves; resolved ones stay.
            let mut cleared: Vec<i64> = existing
                .values()
                .filter(|e| e.state == DiscrepancyState::Open)
                .map(|e| e.id)
                .collect();
            cleared.sort_unstable();
            for chunk in cleared.chunks(STORE_ROWS) {
                let mut params = super::Placeholders::new(db);
                let mut sql =
                    String::from("UPDATE discrepancies SET state = 'cleared', last_run = ");
                params.push(&mut sql);
                sql.push_str(", updated_at = ");
                params.push(&mut sql);
                sql.push_str(" WHERE id IN ");
                params.tuple(&mut sql, chunk.len());
                let mut query = sqlx::query(&sql).bind(run_id).bind(now);
                for id in chunk {
                    query = query.bind(*id);
                }
                query.execute(&mut *tx).await?;
                let sql = events_sql(db, chunk.len());
                let mut events = sqlx::query(&sql);
                for id in chunk {
                    events = events
                        .bind(*id)
                        .bind("cleared")
                        .bind("the data now ties out")
                        .bind(actor)
                        .bind(now);
                }
                events.execute(&mut *tx).await?;
            }
            changes.opened = opened.len() as u64;
            changes.reopened = reopened.len() as u64;
            changes.unchanged = unchanged.len() as u64;
            changes.cleared = cleared.len() as u64;
            let event = AuditEvent::new(
                summary.actor.clone(),
                "reconciliation_run",
                format!("vendor:{}:{}", summary.vendor_id, window.day),
            )
            .after(serde_json::json!({
                "run_id": run_id,
                "orders": summary.orders,
                "vendor_records": summary.records,
                "counts": serde_json::from_str::<serde_json::Value>(&counts_json(&summary.counts))
                    .unwrap_or_default(),
                "opened": changes.opened,
                "reopened": changes.reopened,
                "cleared": changes.cleared,
            }));
            tx.append_audit(&event).await?;
            tx.commit().await?;
            Ok::<i64, StorageError>(run_id)
        }
        .await
    })?;
    summary.run_id = run_id;
    Ok((summary, changes))
}

#[derive(sqlx::FromRow)]
struct RunRow {
    id: i64,
    vendor_id: String,
    business_day: NaiveDate,
    time_zone: String,
    orders: i64,
    records: i64,
    counts: String,
    totals: String,
    actor: String,
    finished_at: DateTime<Utc>,
}

impl TryFrom<RunRow> for RunSummary {
    type Error = StorageError;
    fn try_from(r: RunRow) -> Result<RunSummary, StorageError> {
        let corrupt = |what: String| super::orders::corrupt(format!("run {}: {what}", r.id));
        let by_name: BTreeMap<String, u64> =
            serde_json::from_str(&r.counts).map_err(|e| corrupt(format!("counts: {e}")))?;
        let counts = Class::ALL
            .iter()
            .map(|c| (*c, by_name.get(c.as_str()).copied().unwrap_or(0)))
            .collect();
        let stored: BTreeMap<String, StoredTotal> =
            serde_json::from_str(&r.totals).map_err(|e| corrupt(format!("totals: {e}")))?;
        let mut totals = BTreeMap::new();
        for (code, t) in stored {
            let c = Currency::parse(&code).map_err(|e| corrupt(format!("totals: {e}")))?;
            totals.insert(
                c,
                CurrencyTotals {
                    internal: SideTotal {
                        count: t.internal_count,
                        amount: Money::from_minor(t.internal_minor, c),
                    },
                    vendor: SideTotal {
                        count: t.vendor_count,
                        amount: Money::from_minor(t.vendor_minor, c),
                    },
                },
            );
        }
        Ok(RunSummary {
            run_id: r.id,
            vendor_id: r.vendor_id,
            day: r.business_day,
            time_zone: r.time_zone,
            orders: r.orders as u64,
            records: r.records as u64,
            counts,
            totals,
            actor: r.actor,
            finished_at: r.finished_at,
        })
    }
}

/// The latest run of a vendor's day, if the day has been reconciled.
pub async fn latest_run(
    db: &Db,
    vendor_id: &str,
    day: NaiveDate,
) -> Result<Option<RunSummary>, StorageError> {
    let row: Option<RunRow> = on_db!(db, pool => {
        sqlx::query_as(
            "SELECT id, vendor_id, business_day, time_zone, orders, records, counts, totals,
                    actor, finished_at
               FROM reconciliation_runs WHERE vendor_id = $1 AND business_day = $2
              ORDER BY id DESC LIMIT 1",
        )
        .bind(vendor_id)
        .bind(day)
        .fetch_optional(pool)
        .await
    })?;
    row.map(RunSummary::try_from).transpose()
}

/// The latest run of each of a vendor's most recent reconciled days, newest first.
pub async fn recent_days(
    db: &Db,
    vendor_id: &str,
    days: i64,
) -> Result<Vec<RunSummary>, StorageError> {
    let rows: Vec<RunRow> = on_db!(db, pool => {
        sqlx::query_as(
            "SELECT r.id, r.vendor_id, r.business_day, r.time_zone, r.orders, r.records, r.counts,
                    r.totals, r.actor, r.finished_at
               FROM reconciliation_runs r
              WHERE r.vendor_id = $1
                AND r.id = (SELECT MAX(l.id) FROM reconciliation_runs l
                             WHERE l.vendor_id = r.vendor_id AND l.business_day = r.business_day)
              ORDER BY r.business_day DESC LIMIT $2",
        )
        .bind(vendor_id)
        .bind(days)
        .fetch_all(pool)
        .await
    })?;
    rows.into_iter().map(RunSummary::try_from).collect()
}

/// The day's totals per currency from its latest run, plus the adjustments filed on it for
/// closed days before it; `None` if it has neither.
pub async fn day_totals(
    db: &Db,
    vendor_id: &str,
    day: NaiveDate,
) -> Result<Option<BTreeMap<Currency, CurrencyTotals>>, StorageError> {
    let run = latest_run(db, vendor_id, day).await?;
    let filed: Vec<String> = on_db!(db, pool => {
        sqlx::query_scalar(
            "SELECT totals FROM reconciliation_adjustments WHERE vendor_id = $1 AND open_day = $2
              ORDER BY id",
        )
        .bind(vendor_id)
        .bind(day)
        .fetch_all(pool)
        .await
    })?;
    if run.is_none() && filed.is_empty() {
        return Ok(None);
    }
    let mut sum = run.map(|r| as_deltas(&r.totals)).unwrap_or_default();
    for json in filed {
        let d: Deltas = serde_json::from_str(&json)
            .map_err(|e| super::orders::corrupt(format!("adjustment totals: {e}")))?;
        add_delta(&mut sum, &d);
    }
    let mut totals = BTreeMap::new();
    for (code, d) in sum {
        let c = Currency::parse(&code)
            .map_err(|e| super::orders::corrupt(format!("adjustment totals: {e}")))?;
        totals.insert(
            c,
            CurrencyTotals {
                internal: SideTotal {
                    count: d.internal_count.max(0) as u64,
                    amount: Money::from_minor(d.internal_minor, c),
                },
                vendor: SideTotal {
                    count: d.vendor_count.max(0) as u64,
                    amount: Money::from_minor(d.vendor_minor, c),
                },
            },
        );
    }
    Ok(Some(totals))
}

/// Which discrepancies to list. `None` means any.
#[derive(Clone, Debug, Default)]
pub struct Filter {
    pub vendor_id: Option<String>,
    pub from: Option<NaiveDate>,
    pub to: Option<NaiveDate>,
    pub class: Option<Class>,
    pub state: Option<DiscrepancyState>,
    /// Either side in this currency.
    pub currency: Option<Currency>,
    /// The larger side's amount, in minor units of `currency` (so only with a currency).
    pub min_minor: Option<i64>,
    pub max_minor: Option<i64>,
    /// Opened at or before this instant (aging).
    pub opened_before: Option<DateTime<Utc>>,
    pub assignee: Option<Assignee>,
    pub sort: Sort,
    pub limit: Option<i64>,
    pub offset: Option<i64>,
}

/// Whose items.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Assignee {
    Nobody,
    User(String),
}

/// The order of a queue.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Sort {
    /// By business day, class and key (the report's order).
    #[default]
    Day,
    /// Oldest first (longest open).
    Oldest,
    Newest,
    /// The larger side's amount, largest first.
    Amount,
}

impl Sort {
    fn order_by(self) -> &'static str {
        match self {
            Sort::Day => "business_day, class, item_key",
            Sort::Oldest => "opened_at, id",
            Sort::Newest => "opened_at DESC, id DESC",
            Sort::Amount => "larger_minor DESC, id",
        }
    }
}

#[derive(sqlx::FromRow)]
struct DiscrepancyRow {
    id: i64,
    vendor_id: String,
    business_day: NaiveDate,
    item_key: String,
    class: String,
    state: String,
    order_id: Option<String>,
    internal_minor: Option<i64>,
    internal_currency: Option<String>,
    internal_gl_state: Option<String>,
    vendor_order_ids: Option<String>,
    vendor_records: i64,
    vendor_minor: Option<i64>,
    vendor_currency: Option<String>,
    vendor_status: Option<String>,
    fingerprint: String,
    resolution: Option<String>,
    resolved_by: Option<String>,
    resolved_at: Option<DateTime<Utc>>,
    assignee: Option<String>,
    write_off_reason: Option<String>,
    write_off_by: Option<String>,
    write_off_at: Option<DateTime<Utc>>,
    opened_at: DateTime<Utc>,
    updated_at: DateTime<Utc>,
}

const DISCREPANCY_COLUMNS: &str = "id, vendor_id, business_day, item_key, class, state, order_id, \
     internal_minor, internal_currency, internal_gl_state, vendor_order_ids, vendor_records, \
     vendor_minor, vendor_currency, vendor_status, fingerprint, resolution, resolved_by, \
     resolved_at, assignee, write_off_reason, write_off_by, write_off_at, opened_at, updated_at";

fn parse_class(s: &str) -> Result<Class, StorageError> {
    Class::ALL
        .into_iter()
        .find(|c| c.as_str() == s)
        .ok_or_else(|| super::orders::corrupt(format!("discrepancy class {s:?}")))
}

impl TryFrom<DiscrepancyRow> for Discrepancy {
    type Error = StorageError;
    fn try_from(r: DiscrepancyRow) -> Result<Discrepancy, StorageError> {
        let side = |minor: Option<i64>, currency: &Option<String>| -> Result<_, StorageError> {
            match (minor, currency) {
                (Some(m), Some(c)) => Ok(Some(money(m, c, &r.item_key)?)),
                _ => Ok(None),
            }
        };
        Ok(Discrepancy {
            internal_amount: side(r.internal_minor, &r.internal_currency)?,
            vendor_amount: side(r.vendor_minor, &r.vendor_currency)?,
            internal_gl_state: r
                .internal_gl_state
                .as_deref()
                .map(GlState::parse)
                .transpose()
                .map_err(|e| super::orders::corrupt(format!("discrepancy {}: {e}", r.id)))?,
            class: parse_class(&r.class)?,
            state: DiscrepancyState::parse(&r.state)?,
            id: r.id,
            vendor_id: r.vendor_id,
            day: r.business_day,
            item_key: r.item_key,
            order_id: r.order_id,
            vendor_order_ids: r.vendor_order_ids,
            vendor_records: r.vendor_records,
            vendor_status: r.vendor_status,
            fingerprint: r.fingerprint,
            resolution: r.resolution,
            resolved_by: r.resolved_by,
            resolved_at: r.resolved_at,
            assignee: r.assignee,
            write_off: match (r.write_off_reason, r.write_off_by, r.write_off_at) {
                (Some(reason), Some(by), Some(at)) => Some((reason, by, at)),
                _ => None,
            },
            opened_at: r.opened_at,
            updated_at: r.updated_at,
        })
    }
}

/// Discrepancies matching `filter`, in its order.
pub async fn list(db: &Db, filter: &Filter) -> Result<Vec<Discrepancy>, StorageError> {
    // The larger of the two sides, for the amount filter and sort (one CASE for both engines).
    let larger = "CASE WHEN COALESCE(internal_minor, 0) >= COALESCE(vendor_minor, 0)
                       THEN COALESCE(internal_minor, 0) ELSE vendor_minor END";
    let mut sql = format!(
        "SELECT {DISCREPANCY_COLUMNS}, {larger} AS larger_minor FROM discrepancies
          WHERE ($1 IS NULL OR vendor_id = $1)
            AND ($2 IS NULL OR business_day >= $2) AND ($3 IS NULL OR business_day <= $3)
            AND ($4 IS NULL OR class = $4) AND ($5 IS NULL OR state = $5)
            AND ($6 IS NULL OR internal_currency = $6 OR vendor_currency = $6)
            AND ($7 IS NULL OR {larger} >= $7) AND ($8 IS NULL OR {larger} <= $8)
            AND ($9 IS NULL OR opened_at <= $9)
            AND ($10 IS NULL OR assignee = $10)
            AND ($11 = 0 OR assignee IS NULL)
          ORDER BY {}",
        filter.sort.order_by()
    );
    if let Some(limit) = filter.limit {
        sql.push_str(&format!(" LIMIT {}", limit.max(0)));
        if let Some(offset) = filter.offset {
            sql.push_str(&format!(" OFFSET {}", offset.max(0)));
        }
    }
    let class = filter.class.map(Class::as_str);
    let state = filter.state.map(DiscrepancyState::as_str);
    let currency = filter.currency.map(|c| c.code());
    let (assignee, unassigned) = match &filter.assignee {
        None => (None, 0i32),
        Some(Assignee::Nobody) => (None, 1),
        Some(Assignee::User(name)) => (Some(name.as_str()), 0),
    };
    let rows: Vec<DiscrepancyRow> = on_db!(db, pool => {
        sqlx::query_as(&sql)
            .bind(&filter.vendor_id)
            .bind(filter.from)
            .bind(filter.to)
            .bind(class)
            .bind(state)
            .bind(currency)
            .bind(filter.min_minor)
            .bind(filter.max_minor)
            .bind(filter.opened_before)
            .bind(assignee)
            .bind(unassigned)
            .fetch_all(pool)
            .await
    })?;
    rows.into_iter().map(Discrepancy::try_from).collect()
}

/// The discrepancies of one order, newest day first.
pub async fn for_order(db: &Db, order_id: &str) -> Result<Vec<Discrepancy>, StorageError> {
    let sql = format!(
        "SELECT {DISCREPANCY_COLUMNS} FROM discrepancies WHERE order_id = $1
          ORDER BY business_day DESC, id"
    );
    let rows: Vec<DiscrepancyRow> = on_db!(db, pool => {
        sqlx::query_as(&sql).bind(order_id).fetch_all(pool).await
    })?;
    rows.into_iter().map(Discrepancy::try_from).collect()
}

/// One discrepancy by id.
pub async fn get(db: &Db, id: i64) -> Result<Discrepancy, StorageError> {
    let sql = format!("SELECT {DISCREPANCY_COLUMNS} FROM discrepancies WHERE id = $1");
    let row: Option<DiscrepancyRow> = on_db!(db, pool => {
        sqlx::query_as(&sql).bind(id).fetch_optional(pool).await
    })?;
    row.ok_or_else(|| StorageError::NotFound {
        what: format!("discrepancy {id}"),
    })?
    .try_into()
}

/// Marks an open discrepancy resolved: who, when and how. Resolving one that is not open is
/// refused (so a double click resolves once).
pub async fn resolve(
    db: &Db,
    id: i64,
    how: &str,
    actor: &str,
) -> Result<Discrepancy, StorageError> {
    let now = now_utc();
    let done = on_db!(db, pool => {
        async {
            let mut tx = pool.begin().await?;
            let n = sqlx::query(
                "UPDATE discrepancies SET state = 'resolved', resolution = $1, resolved_by = $2,
                        resolved_at = $3, updated_at = $3
                  WHERE id = $4 AND state = 'open'",
            )
            .bind(how)
            .bind(actor)
            .bind(now)
            .bind(id)
            .execute(&mut *tx)
            .await?
            .rows_affected();
            if n == 1 {
                event!(tx, id, "resolved", how, actor, now).await?;
                let audit = AuditEvent::new(actor, "discrepancy_resolved", format!("discrepancy:{id}"))
                    .after(serde_json::json!({ "how": how }));
                tx.append_audit(&audit).await?;
            }
            tx.commit().await?;
            Ok::<bool, sqlx::Error>(n == 1)
        }
        .await
    })?;
    let current = get(db, id).await?;
    if !done {
        return Err(StorageError::Conflict {
            what: format!("discrepancy {id} is {}, not open", current.state.as_str()),
        });
    }
    Ok(current)
}

/// A discrepancy's history, oldest first.
pub async fn events(db: &Db, id: i64) -> Result<Vec<DiscrepancyEvent>, StorageError> {
    let rows: Vec<(String, String, String, DateTime<Utc>)> = on_db!(db, pool => {
        sqlx::query_as(
            "SELECT kind, detail, actor, at FROM discrepancy_events
              WHERE discrepancy_id = $1 ORDER BY id",
        )
        .bind(id)
        .fetch_all(pool)
        .await
    })?;
    Ok(rows
        .into_iter()
        .map(|(kind, detail, actor, at)| DiscrepancyEvent {
            kind,
            detail,
            actor,
            at,
        })
        .collect())
}
