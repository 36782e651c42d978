//! Daily close: clearing journal entries, their maker-checker lifecycle, posted files and closed
//! days.
//!
//! Every state change is one conditional UPDATE (`... WHERE state = 'draft'`, `... AND
//! submitted_by <> $actor`), so the rules hold when two people act at once on either database:
//! exactly one of two racing approvals changes a row. Proposing and posting first take a write
//! lock on the vendor's row (a no-op UPDATE), which serializes them per vendor on both backends:
//! a day cannot gain a new draft while its last entry is being posted and the day closed.
//! Every step is recorded in the audit trail with actor, before and after.

use std::collections::BTreeMap;

use chrono::{DateTime, NaiveDate, Utc};
use serde_json::{json, Value};
use sha2::{Digest, Sha256};

use super::audit::{self, AuditEvent};
use super::{now_utc, Db, StorageError};
use crate::domain::journal::{
    combine_exports, propose_clearing_entry, ClearingEntry, EntryState, ExportFormat, GlAccount,
    JournalError, JournalLine, Side, VendorAccounts,
};
use crate::domain::matching::{CurrencyTotals, SideTotal};
use crate::domain::{Currency, Money, Role, VendorId};
use crate::on_db;

/// Inserts an entry's lines, numbered from 1, inside the open transaction.
macro_rules! insert_lines {
    ($tx:ident, $id:expr, $entry:expr) => {
        for (n, line) in $entry.lines.iter().enumerate() {
            sqlx::query(
                "INSERT INTO journal_lines (entry_id, line_no, side, account_code, account_name,
                     amount_minor, description)
                 VALUES ($1, $2, $3, $4, $5, $6, $7)",
            )
            .bind($id)
            .bind(i64::try_from(n + 1).unwrap_or(i64::MAX))
            .bind(line.side.as_str())
            .bind(line.account.code())
            .bind(line.account.name())
            .bind(line.amount.minor_units())
            .bind(&line.description)
            .execute(&mut *$tx)
            .await?;
        }
    };
}

/// Takes the write lock on the vendor's row for the rest of the transaction (a no-op UPDATE: a
/// row lock on PostgreSQL, the database write lock on SQLite, taken before anything is read).
macro_rules! lock_vendor {
    ($tx:ident, $vendor_id:expr) => {{
        let locked = sqlx::query("UPDATE vendors SET updated_at = updated_at WHERE id = $1")
            .bind($vendor_id)
            .execute(&mut *$tx)
            .await?;
        if locked.rows_affected() == 0 {
            return Err(CloseError::VendorNotFound {
                vendor: $vendor_id.to_string(),
            });
        }
    }};
}

mod files;
mod gl_accounts;
mod lifecycle;

pub use files::{export_day, export_entry};
pub use gl_accounts::accounts;
pub use lifecycle::{approve, post, propose, submit, Posted, ProposeChange, ProposeOutcome};

/// Who is acting, with the role their session carries.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Actor {
    pub username: String,
    pub role: Role,
}

/// Why a close step was refused. The messages are for finance users.
#[derive(Debug, thiserror::Error)]
pub enum CloseError {
    #[error("day {day} is closed for vendor {vendor}: its entries are posted, so later vendor data for it belongs on an open day as an adjustment")]
    DayClosed { vendor: String, day: NaiveDate },
    #[error("journal entry {id} not found")]
    NotFound { id: i64 },
    #[error("vendor {vendor:?} not found")]
    VendorNotFound { vendor: String },
    #[error("the {role} role may not {action} journal entries")]
    Role { role: Role, action: &'static str },
    #[error(
        "you prepared or submitted journal entry {id}: another finance approver must approve it"
    )]
    SelfApproval { id: i64 },
    #[error("journal entry {id} changed after it was submitted or after you reviewed it: review it again before approving")]
    ChangedAfterSubmission { id: i64 },
    #[error("journal entry {id} is {state}: only {expected} entries can be {done}")]
    WrongState {
        id: i64,
        state: EntryState,
        expected: EntryState,
        done: &'static str,
    },
    #[error("vendor {vendor} has no posted journal entries for {day}")]
    NothingPosted { vendor: String, day: NaiveDate },
    #[error("cannot build the clearing entry: {0}")]
    Journal(#[from] JournalError),
    #[error(transparent)]
    Storage(#[from] StorageError),
}

impl From<sqlx::Error> for CloseError {
    fn from(err: sqlx::Error) -> Self {
        CloseError::Storage(StorageError::Database(err))
    }
}

impl CloseError {
    /// Whether this is a refusal the user can act on (as opposed to an internal failure).
    pub fn is_refusal(&self) -> bool {
        !matches!(self, CloseError::Storage(_))
    }
}

/// A stored journal entry with its lines.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct JournalEntry {
    pub id: i64,
    pub vendor: VendorId,
    pub day: NaiveDate,
    pub currency: Currency,
    pub state: EntryState,
    pub memo: String,
    pub content_hash: String,
    /// The totals the entry was proposed from.
    pub totals: CurrencyTotals,
    pub lines: Vec<JournalLine>,
    pub prepared_by: String,
    pub prepared_at: DateTime<Utc>,
    pub submitted_by: Option<String>,
    pub submitted_at: Option<DateTime<Utc>>,
    pub submitted_hash: Option<String>,
    pub approved_by: Option<String>,
    pub approved_at: Option<DateTime<Utc>>,
    pub posted_by: Option<String>,
    pub posted_at: Option<DateTime<Utc>>,
}

impl JournalEntry {
    /// The number accounting tools group the entry's lines by, e.g. `GR-000012`.
    pub fn journal_no(&self) -> String {
        format!("GR-{:06}", self.id)
    }

    /// The entry's content as the domain sees it (for fingerprints and exports).
    pub fn clearing_entry(&self) -> ClearingEntry {
        ClearingEntry {
            vendor: self.vendor.clone(),
            day: self.day,
            currency: self.currency,
            lines: self.lines.clone(),
            memo: self.memo.clone(),
        }
    }

    fn audit_state(&self) -> Value {
        json!({
            "state": self.state,
            "content_hash": self.content_hash,
            "submitted_by": self.submitted_by,
            "approved_by": self.approved_by,
            "posted_by": self.posted_by,
        })
    }
}

#[derive(sqlx::FromRow)]
struct EntryRow {
    id: i64,
    vendor_id: String,
    business_day: NaiveDate,
    currency: String,
    state: String,
    memo: String,
    content_hash: String,
    internal_count: i64,
    internal_minor: i64,
    vendor_count: i64,
    vendor_minor: i64,
    prepared_by: String,
    prepared_at: DateTime<Utc>,
    submitted_by: Option<String>,
    submitted_at: Option<DateTime<Utc>>,
    submitted_hash: Option<String>,
    approved_by: Option<String>,
    approved_at: Option<DateTime<Utc>>,
    posted_by: Option<String>,
    posted_at: Option<DateTime<Utc>>,
}

#[derive(sqlx::FromRow)]
struct LineRow {
    entry_id: i64,
    side: String,
    account_code: String,
    account_name: String,
    amount_minor: i64,
    description: String,
}

const SELECT_ENTRIES: &str = "SELECT id, vendor_id, business_day, currency, state, memo,
    content_hash, internal_count, internal_minor, vendor_count, vendor_minor, prepared_by,
    prepared_at, submitted_by, submitted_at, submitted_hash, approved_by, approved_at, posted_by,
    posted_at FROM journal_entries";

fn corrupt(what: String) -> StorageError {
    StorageError::Database(sqlx::Error::Decode(what.into()))
}

fn entry_from_rows(row: EntryRow, lines: Vec<LineRow>) -> Result<JournalEntry, StorageError> {
    let id = row.id;
    let bad = |what: &str, reason: String| {
        corrupt(format!(
            "journal entry {id}: stored {what} is invalid: {reason}"
        ))
    };
    let currency = Currency::parse(&row.currency).map_err(|e| bad("currency", e.to_string()))?;
    let side_total = |count: i64, minor: i64| SideTotal {
        count: u64::try_from(count).unwrap_or(0),
        amount: Money::from_minor(minor, currency),
    };
    let lines = lines
        .into_iter()
        .map(|l| {
            Ok(JournalLine {
                account: GlAccount::new(&l.account_code, &l.account_name)
                    .map_err(|e| bad("account", e.to_string()))?,
                side: Side::parse(&l.side).ok_or_else(|| bad("side", l.side.clone()))?,
                amount: Money::from_minor(l.amount_minor, currency),
                description: l.description,
            })
        })
        .collect::<Result<Vec<_>, StorageError>>()?;
    Ok(JournalEntry {
        id,
        vendor: VendorId::parse(&row.vendor_id).map_err(|e| bad("vendor", e.to_string()))?,
        day: row.business_day,
        currency,
        state: EntryState::parse(&row.state).ok_or_else(|| bad("state", row.state.clone()))?,
        memo: row.memo,
        content_hash: row.content_hash,
        totals: CurrencyTotals {
            internal: side_total(row.internal_count, row.internal_minor),
            vendor: side_total(row.vendor_count, row.vendor_minor),
        },
        lines,
        prepared_by: row.prepared_by,
        prepared_at: row.prepared_at,
        submitted_by: row.submitted_by,
        submitted_at: row.submitted_at,
        submitted_hash: row.submitted_hash,
        approved_by: row.approved_by,
        approved_at: row.approved_at,
        posted_by: row.posted_by,
        posted_at: row.posted_at,
    })
}

/// Loads entries matching `filter` (a WHERE clause over `$1`, `$2`) with their lines.
async fn load_entries(
    db: &Db,
    filter: &str,
    vendor_or_id: EntryKey<'_>,
) -> Result<Vec<JournalEntry>, StorageError> {
    let sql = format!("{SELECT_ENTRIES} WHERE {filter} ORDER BY currency, id");
    let lines_sql = format!(
        "SELECT entry_id, side, account_code, account_name, amount_minor, description
           FROM journal_lines WHERE entry_id IN (SELECT id FROM journal_entries WHERE {filter})
          ORDER BY entry_id, line_no"
    );
    let (rows, lines): (Vec<EntryRow>, Vec<LineRow>) = on_db!(db, pool => {
        match vendor_or_id {
            EntryKey::Id(id) => (
                sqlx::query_as(&sql).bind(id).fetch_all(pool).await?,
                sqlx::query_as(&lines_sql).bind(id).fetch_all(pool).await?,
            ),
            EntryKey::Day(vendor, day) => (
                sqlx::query_as(&sql).bind(vendor).bind(day).fetch_all(pool).await?,
                sqlx::query_as(&lines_sql).bind(vendor).bind(day).fetch_all(pool).await?,
            ),
        }
    });
    let mut by_entry: BTreeMap<i64, Vec<LineRow>> = BTreeMap::new();
    for line in lines {
        by_entry.entry(line.entry_id).or_default().push(line);
    }
    rows.into_iter()
        .map(|row| {
            let lines = by_entry.remove(&row.id).unwrap_or_default();
            entry_from_rows(row, lines)
        })
        .collect()
}

#[derive(Clone, Copy)]
enum EntryKey<'a> {
    Id(i64),
    Day(&'a str, NaiveDate),
}

/// One entry with its lines, if it exists.
pub async fn get(db: &Db, id: i64) -> Result<Option<JournalEntry>, StorageError> {
    Ok(load_entries(db, "id = $1", EntryKey::Id(id))
        .await?
        .into_iter()
        .next())
}

async fn must_get(db: &Db, id: i64) -> Result<JournalEntry, CloseError> {
    get(db, id).await?.ok_or(CloseError::NotFound { id })
}

/// A vendor's entries for a day, by currency.
pub async fn list_day(
    db: &Db,
    vendor_id: &str,
    day: NaiveDate,
) -> Result<Vec<JournalEntry>, StorageError> {
    load_entries(
        db,
        "vendor_id = $1 AND business_day = $2",
        EntryKey::Day(vendor_id, day),
    )
    .await
}

/// Whether the vendor's day is closed: all its entries are posted and nothing may change it.
pub async fn is_locked(db: &Db, vendor_id: &str, day: NaiveDate) -> Result<bool, StorageError> {
    let found: Option<i64> = on_db!(db, pool => {
        sqlx::query_scalar("SELECT CAST(1 AS BIGINT) FROM closed_days WHERE vendor_id = $1 AND business_day = $2")
            .bind(vendor_id)
            .bind(day)
            .fetch_optional(pool)
            .await
    })?;
    Ok(found.is_some())
}

fn wrong_state(entry: &JournalEntry, expected: EntryState, done: &'static str) -> CloseError {
    CloseError::WrongState {
        id: entry.id,
        state: entry.state,
        expected,
        done,
    }
}

fn sha256_hex(text: &str) -> String {
    hex::encode(Sha256::digest(text.as_bytes()))
}
