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
    #[error("a {role} may not {action} journal entries")]
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

// ---- accounts -------------------------------------------------------------------------------

#[derive(sqlx::FromRow)]
struct AccountsRow {
    clearing_code: String,
    clearing_name: String,
    payable_code: String,
    payable_name: String,
    suspense_code: String,
    suspense_name: String,
}

/// The vendor's GL accounts (the defaults until someone sets them).
pub async fn accounts(db: &Db, vendor: &VendorId) -> Result<VendorAccounts, StorageError> {
    let row: Option<AccountsRow> = on_db!(db, pool => {
        sqlx::query_as(
            "SELECT clearing_code, clearing_name, payable_code, payable_name, suspense_code,
                    suspense_name FROM vendor_gl_accounts WHERE vendor_id = $1",
        )
        .bind(vendor.as_str())
        .fetch_optional(pool)
        .await
    })?;
    let Some(row) = row else {
        return Ok(VendorAccounts::default());
    };
    let account = |code: &str, name: &str| {
        GlAccount::new(code, name).map_err(|e| {
            corrupt(format!(
                "vendor {vendor}: stored GL account is invalid: {e}"
            ))
        })
    };
    Ok(VendorAccounts {
        clearing: account(&row.clearing_code, &row.clearing_name)?,
        payable: account(&row.payable_code, &row.payable_name)?,
        suspense: account(&row.suspense_code, &row.suspense_name)?,
    })
}

/// Sets any of the vendor's accounts; returns the accounts before and after. Records nothing in
/// the audit trail itself: the caller knows the actor.
pub async fn set_accounts(
    db: &Db,
    vendor: &VendorId,
    clearing: Option<GlAccount>,
    payable: Option<GlAccount>,
    suspense: Option<GlAccount>,
) -> Result<(VendorAccounts, VendorAccounts), StorageError> {
    let now = now_utc();
    let exists: Option<String> = on_db!(db, pool => {
        sqlx::query_scalar("SELECT id FROM vendors WHERE id = $1")
            .bind(vendor.as_str())
            .fetch_optional(pool)
            .await
    })?;
    if exists.is_none() {
        return Err(StorageError::NotFound {
            what: format!("vendor {:?}", vendor.as_str()),
        });
    }
    let before = accounts(db, vendor).await?;
    let after = VendorAccounts {
        clearing: clearing.unwrap_or_else(|| before.clearing.clone()),
        payable: payable.unwrap_or_else(|| before.payable.clone()),
        suspense: suspense.unwrap_or_else(|| before.suspense.clone()),
    };
    on_db!(db, pool => {
        sqlx::query(
            "INSERT INTO vendor_gl_accounts (vendor_id, clearing_code, clearing_name, payable_code,
                 payable_name, suspense_code, suspense_name, updated_at)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8)
             ON CONFLICT (vendor_id) DO UPDATE SET clearing_code = excluded.clearing_code,
                 clearing_name = excluded.clearing_name, payable_code = excluded.payable_code,
                 payable_name = excluded.payable_name, suspense_code = excluded.suspense_code,
                 suspense_name = excluded.suspense_name, updated_at = excluded.updated_at",
        )
        .bind(vendor.as_str())
        .bind(after.clearing.code())
        .bind(after.clearing.name())
        .bind(after.payable.code())
        .bind(after.payable.name())
        .bind(after.suspense.code())
        .bind(after.suspense.name())
        .bind(now)
        .execute(pool)
        .await
        .map(|_| ())
    })?;
    Ok((before, after))
}

// ---- propose --------------------------------------------------------------------------------

/// What proposing did to one currency's entry.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ProposeChange {
    Created,
    /// The content changed; the entry is a draft again (from `was`).
    Updated {
        was: EntryState,
    },
    Unchanged,
    /// Nothing to clear any more; the unposted entry was removed.
    Removed,
    /// Posted entries never change; the new totals differ and belong on an open day.
    PostedDiffers,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ProposeOutcome {
    pub currency: Currency,
    pub entry_id: Option<i64>,
    pub change: ProposeChange,
}

fn require_role(actor: &Actor, allowed: &[Role], action: &'static str) -> Result<(), CloseError> {
    if allowed.contains(&actor.role) {
        Ok(())
    } else {
        Err(CloseError::Role {
            role: actor.role,
            action,
        })
    }
}

const PREPARERS: &[Role] = &[Role::FinancePreparer, Role::FinanceApprover];
const APPROVERS: &[Role] = &[Role::FinanceApprover];

/// Creates or refreshes the day's draft entries from its totals. An unposted entry whose content
/// changes becomes a draft again (a submitted one must be resubmitted, an approved one
/// reapproved). A closed day is refused.
pub async fn propose(
    db: &Db,
    vendor: &VendorId,
    day: NaiveDate,
    totals: &BTreeMap<Currency, CurrencyTotals>,
    actor: &Actor,
) -> Result<Vec<ProposeOutcome>, CloseError> {
    require_role(actor, PREPARERS, "prepare")?;
    let accounts = accounts(db, vendor).await?;
    let mut proposals: BTreeMap<Currency, Option<ClearingEntry>> = BTreeMap::new();
    for (currency, t) in totals {
        proposals.insert(
            *currency,
            propose_clearing_entry(vendor, day, *currency, t, &accounts)?,
        );
    }
    let now = now_utc();
    let before: Vec<JournalEntry> = list_day(db, vendor.as_str(), day).await?;
    let outcomes = on_db!(db, pool => {
        let mut tx = pool.begin().await?;
        lock_vendor!(tx, vendor.as_str());
        let closed: Option<i64> = sqlx::query_scalar(
            "SELECT CAST(1 AS BIGINT) FROM closed_days WHERE vendor_id = $1 AND business_day = $2",
        )
        .bind(vendor.as_str())
        .bind(day)
        .fetch_optional(&mut *tx)
        .await?;
        if closed.is_some() {
            return Err(CloseError::DayClosed { vendor: vendor.to_string(), day });
        }
        let existing: Vec<(i64, String, String, String)> = sqlx::query_as(
            "SELECT id, currency, state, content_hash FROM journal_entries
              WHERE vendor_id = $1 AND business_day = $2",
        )
        .bind(vendor.as_str())
        .bind(day)
        .fetch_all(&mut *tx)
        .await?;
        let mut existing: BTreeMap<String, (i64, String, String)> = existing
            .into_iter()
            .map(|(id, currency, state, hash)| (currency, (id, state, hash)))
            .collect();
        let mut outcomes = Vec::new();
        for (currency, proposal) in &proposals {
            let current = existing.remove(currency.code());
            let t = &totals[currency];
            let change = match (current, proposal) {
                (None, None) => continue,
                (None, Some(entry)) => {
                    let id: i64 = sqlx::query_scalar(
                        "INSERT INTO journal_entries (vendor_id, business_day, currency, state,
                             memo, content_hash, internal_count, internal_minor, vendor_count,
                             vendor_minor, prepared_by, prepared_at)
                         VALUES ($1, $2, $3, 'draft', $4, $5, $6, $7, $8, $9, $10, $11)
                         RETURNING id",
                    )
                    .bind(vendor.as_str())
                    .bind(day)
                    .bind(currency.code())
                    .bind(&entry.memo)
                    .bind(entry.fingerprint())
                    .bind(count_i64(t.internal.count))
                    .bind(t.internal.amount.minor_units())
                    .bind(count_i64(t.vendor.count))
                    .bind(t.vendor.amount.minor_units())
                    .bind(&actor.username)
                    .bind(now)
                    .fetch_one(&mut *tx)
                    .await?;
                    insert_lines!(tx, id, entry);
                    ProposeOutcome { currency: *currency, entry_id: Some(id), change: ProposeChange::Created }
                }
                (Some((id, state, _)), _) if state == "posted" => {
                    let same = existing_hash_matches(&before, id, proposal.as_ref());
                    ProposeOutcome {
                        currency: *currency,
                        entry_id: Some(id),
                        change: if same { ProposeChange::Unchanged } else { ProposeChange::PostedDiffers },
                    }
                }
                (Some((id, _, _)), None) => {
                    sqlx::query("DELETE FROM journal_lines WHERE entry_id = $1")
                        .bind(id)
                        .execute(&mut *tx)
                        .await?;
                    sqlx::query("DELETE FROM journal_entries WHERE id = $1 AND state <> 'posted'")
                        .bind(id)
                        .execute(&mut *tx)
                        .await?;
                    ProposeOutcome { currency: *currency, entry_id: None, change: ProposeChange::Removed }
                }
                (Some((id, _, hash)), Some(entry)) if hash == entry.fingerprint() => {
                    ProposeOutcome { currency: *currency, entry_id: Some(id), change: ProposeChange::Unchanged }
                }
                (Some((id, state, _)), Some(entry)) => {
                    sqlx::query(
                        "UPDATE journal_entries SET state = 'draft', memo = $1, content_hash = $2,
                             internal_count = $3, internal_minor = $4, vendor_count = $5,
                             vendor_minor = $6, prepared_by = $7, prepared_at = $8,
                             submitted_by = NULL, submitted_at = NULL, submitted_hash = NULL,
                             approved_by = NULL, approved_at = NULL
                         WHERE id = $9 AND state <> 'posted'",
                    )
                    .bind(&entry.memo)
                    .bind(entry.fingerprint())
                    .bind(count_i64(t.internal.count))
                    .bind(t.internal.amount.minor_units())
                    .bind(count_i64(t.vendor.count))
                    .bind(t.vendor.amount.minor_units())
                    .bind(&actor.username)
                    .bind(now)
                    .bind(id)
                    .execute(&mut *tx)
                    .await?;
                    sqlx::query("DELETE FROM journal_lines WHERE entry_id = $1")
                        .bind(id)
                        .execute(&mut *tx)
                        .await?;
                    insert_lines!(tx, id, entry);
                    let was = EntryState::parse(&state).unwrap_or(EntryState::Draft);
                    ProposeOutcome { currency: *currency, entry_id: Some(id), change: ProposeChange::Updated { was } }
                }
            };
            outcomes.push(change);
        }
        // Currencies with an entry but no totals any more: nothing to clear.
        for (code, (id, state, _)) in existing {
            let currency = Currency::parse(&code)
                .map_err(|e| corrupt(format!("journal entry {id}: stored currency: {e}")))?;
            if state == "posted" {
                outcomes.push(ProposeOutcome { currency, entry_id: Some(id), change: ProposeChange::PostedDiffers });
                continue;
            }
            sqlx::query("DELETE FROM journal_lines WHERE entry_id = $1")
                .bind(id)
                .execute(&mut *tx)
                .await?;
            sqlx::query("DELETE FROM journal_entries WHERE id = $1 AND state <> 'posted'")
                .bind(id)
                .execute(&mut *tx)
                .await?;
            outcomes.push(ProposeOutcome { currency, entry_id: None, change: ProposeChange::Removed });
        }
        tx.commit().await?;
        Ok::<_, CloseError>(outcomes)
    })?;
    let after = list_day(db, vendor.as_str(), day).await?;
    let summarize = |entries: &[JournalEntry]| -> Value {
        entries
            .iter()
            .map(|e| {
                json!({
                    "id": e.id,
                    "currency": e.currency,
                    "state": e.state,
                    "content_hash": e.content_hash,
                    "lines": e.lines.iter().map(|l| json!({
                        "account": l.account.code(),
                        "side": l.side,
                        "amount": l.amount.amount_string(),
                    })).collect::<Vec<_>>(),
                })
            })
            .collect()
    };
    audit::record(
        db,
        &AuditEvent {
            actor: actor.username.clone(),
            action: "close_propose".into(),
            subject: format!("close:{vendor}:{day}"),
            before: Some(summarize(&before)),
            after: Some(summarize(&after)),
        },
    )
    .await?;
    Ok(outcomes)
}

fn existing_hash_matches(
    before: &[JournalEntry],
    id: i64,
    proposal: Option<&ClearingEntry>,
) -> bool {
    let current = before
        .iter()
        .find(|e| e.id == id)
        .map(|e| e.content_hash.as_str());
    match (current, proposal) {
        (Some(hash), Some(entry)) => hash == entry.fingerprint(),
        _ => false,
    }
}

fn count_i64(count: u64) -> i64 {
    i64::try_from(count).unwrap_or(i64::MAX)
}

// ---- submit, approve, post ------------------------------------------------------------------

async fn record_step(
    db: &Db,
    actor: &str,
    action: &str,
    before: &JournalEntry,
    after: Value,
) -> Result<(), StorageError> {
    audit::record(
        db,
        &AuditEvent {
            actor: actor.to_string(),
            action: action.to_string(),
            subject: format!("journal:{}", before.id),
            before: Some(before.audit_state()),
            after: Some(after),
        },
    )
    .await
    .map(|_| ())
}

fn wrong_state(entry: &JournalEntry, expected: EntryState, done: &'static str) -> CloseError {
    CloseError::WrongState {
        id: entry.id,
        state: entry.state,
        expected,
        done,
    }
}

/// Sends a draft for approval.
pub async fn submit(db: &Db, id: i64, actor: &Actor) -> Result<JournalEntry, CloseError> {
    require_role(actor, PREPARERS, "submit")?;
    let before = must_get(db, id).await?;
    let now = now_utc();
    let changed = on_db!(db, pool => {
        sqlx::query(
            "UPDATE journal_entries SET state = 'submitted', submitted_by = $1, submitted_at = $2,
                 submitted_hash = content_hash
             WHERE id = $3 AND state = 'draft' AND content_hash = $4",
        )
        .bind(&actor.username)
        .bind(now)
        .bind(id)
        .bind(&before.content_hash)
        .execute(pool)
        .await
        .map(|r| r.rows_affected())
    })?;
    if changed == 0 {
        let current = must_get(db, id).await?;
        if current.content_hash != before.content_hash {
            return Err(CloseError::ChangedAfterSubmission { id });
        }
        return Err(wrong_state(&current, EntryState::Draft, "submitted"));
    }
    let after = must_get(db, id).await?;
    record_step(
        db,
        &actor.username,
        "journal_submit",
        &before,
        after.audit_state(),
    )
    .await?;
    Ok(after)
}

fn same_person(a: &str, b: &str) -> bool {
    a.eq_ignore_ascii_case(b)
}

/// Why `actor` may not approve `entry` having reviewed `reviewed_hash`, if anything.
fn approval_refusal(
    entry: &JournalEntry,
    reviewed_hash: &str,
    actor: &Actor,
) -> Option<CloseError> {
    let id = entry.id;
    let submitted_by = entry.submitted_by.as_deref().unwrap_or_default();
    if same_person(&entry.prepared_by, &actor.username)
        || same_person(submitted_by, &actor.username)
    {
        return Some(CloseError::SelfApproval { id });
    }
    // The stored lines must still be what was hashed, and what was submitted and reviewed.
    let recomputed = entry.clearing_entry().fingerprint();
    let submitted = entry.submitted_hash.as_deref();
    let current = entry.content_hash.as_str();
    if recomputed != current
        || reviewed_hash != current
        || (entry.state == EntryState::Submitted && submitted != Some(current))
    {
        return Some(CloseError::ChangedAfterSubmission { id });
    }
    if entry.state != EntryState::Submitted {
        return Some(wrong_state(entry, EntryState::Submitted, "approved"));
    }
    None
}

/// Approves a submitted entry. Refused for whoever prepared or submitted it (whatever session
/// they use), when the entry changed after submission or after the approver reviewed it
/// (`reviewed_hash` is the content hash they saw), and when it is not submitted (approving
/// twice). Of two approvals racing, exactly one succeeds.
pub async fn approve(
    db: &Db,
    id: i64,
    reviewed_hash: &str,
    actor: &Actor,
) -> Result<JournalEntry, CloseError> {
    let result = try_approve(db, id, reviewed_hash, actor).await;
    // A refused approval is evidence too: who tried, and why it was refused.
    if let Err(
        err @ (CloseError::SelfApproval { .. }
        | CloseError::ChangedAfterSubmission { .. }
        | CloseError::WrongState { .. }),
    ) = &result
    {
        audit::record(
            db,
            &AuditEvent::new(
                &actor.username,
                "journal_approve_refused",
                format!("journal:{id}"),
            )
            .after(json!({ "reason": err.to_string(), "reviewed_hash": reviewed_hash })),
        )
        .await?;
    }
    result
}

async fn try_approve(
    db: &Db,
    id: i64,
    reviewed_hash: &str,
    actor: &Actor,
) -> Result<JournalEntry, CloseError> {
    require_role(actor, APPROVERS, "approve")?;
    let before = must_get(db, id).await?;
    if let Some(refusal) = approval_refusal(&before, reviewed_hash, actor) {
        return Err(refusal);
    }
    let now = now_utc();
    let changed = on_db!(db, pool => {
        sqlx::query(
            "UPDATE journal_entries SET state = 'approved', approved_by = $1, approved_at = $2
             WHERE id = $3 AND state = 'submitted' AND content_hash = $4 AND submitted_hash = $4
               AND lower(prepared_by) <> lower($1) AND lower(submitted_by) <> lower($1)",
        )
        .bind(&actor.username)
        .bind(now)
        .bind(id)
        .bind(reviewed_hash)
        .execute(pool)
        .await
        .map(|r| r.rows_affected())
    })?;
    if changed == 0 {
        // Someone else got there first (or the content moved): say which.
        let current = must_get(db, id).await?;
        return Err(approval_refusal(&current, reviewed_hash, actor)
            .unwrap_or_else(|| wrong_state(&current, EntryState::Submitted, "approved")));
    }
    let after = must_get(db, id).await?;
    record_step(
        db,
        &actor.username,
        "journal_approve",
        &before,
        after.audit_state(),
    )
    .await?;
    Ok(after)
}

/// The result of posting an entry.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Posted {
    pub entry: JournalEntry,
    /// Whether this was the day's last unposted entry, so the day is now closed.
    pub day_closed: bool,
}

fn sha256_hex(text: &str) -> String {
    Sha256::digest(text.as_bytes())
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// Posts an approved entry: writes and stores its three journal files, and closes the
/// (vendor, day) when every entry of it is posted. All or nothing.
pub async fn post(db: &Db, id: i64, actor: &Actor) -> Result<Posted, CloseError> {
    require_role(actor, APPROVERS, "post")?;
    let before = must_get(db, id).await?;
    if before.state != EntryState::Approved {
        return Err(wrong_state(&before, EntryState::Approved, "posted"));
    }
    let content = before.clearing_entry();
    if content.fingerprint() != before.content_hash {
        return Err(CloseError::ChangedAfterSubmission { id });
    }
    content.check_balanced()?;
    let journal_no = before.journal_no();
    let files: Vec<(ExportFormat, String)> = ExportFormat::ALL
        .into_iter()
        .map(|f| (f, f.render(&journal_no, &content)))
        .collect();
    let now = now_utc();
    let vendor = before.vendor.as_str();
    let day_closed = on_db!(db, pool => {
        let mut tx = pool.begin().await?;
        lock_vendor!(tx, vendor);
        let changed = sqlx::query(
            "UPDATE journal_entries SET state = 'posted', posted_by = $1, posted_at = $2
             WHERE id = $3 AND state = 'approved' AND content_hash = $4",
        )
        .bind(&actor.username)
        .bind(now)
        .bind(id)
        .bind(&before.content_hash)
        .execute(&mut *tx)
        .await?;
        if changed.rows_affected() == 0 {
            tx.rollback().await?;
            let current = must_get(db, id).await?;
            return Err(wrong_state(&current, EntryState::Approved, "posted"));
        }
        for (format, text) in &files {
            sqlx::query(
                "INSERT INTO journal_exports (entry_id, format, content, sha256, created_at)
                 VALUES ($1, $2, $3, $4, $5)",
            )
            .bind(id)
            .bind(format.as_str())
            .bind(text)
            .bind(sha256_hex(text))
            .bind(now)
            .execute(&mut *tx)
            .await?;
        }
        let open: i64 = sqlx::query_scalar(
            "SELECT COUNT(*) FROM journal_entries
              WHERE vendor_id = $1 AND business_day = $2 AND state <> 'posted'",
        )
        .bind(vendor)
        .bind(before.day)
        .fetch_one(&mut *tx)
        .await?;
        if open == 0 {
            sqlx::query(
                "INSERT INTO closed_days (vendor_id, business_day, closed_by, closed_at)
                 VALUES ($1, $2, $3, $4) ON CONFLICT (vendor_id, business_day) DO NOTHING",
            )
            .bind(vendor)
            .bind(before.day)
            .bind(&actor.username)
            .bind(now)
            .execute(&mut *tx)
            .await?;
        }
        tx.commit().await?;
        Ok::<_, CloseError>(open == 0)
    })?;
    let after = must_get(db, id).await?;
    let mut state = after.audit_state();
    state["exports"] = files
        .iter()
        .map(|(f, text)| (f.as_str().to_string(), Value::String(sha256_hex(text))))
        .collect::<serde_json::Map<_, _>>()
        .into();
    state["day_closed"] = day_closed.into();
    record_step(db, &actor.username, "journal_post", &before, state).await?;
    if day_closed {
        audit::record(
            db,
            &AuditEvent::new(
                &actor.username,
                "day_close",
                format!("close:{vendor}:{}", before.day),
            )
            .after(json!({ "locked": true })),
        )
        .await?;
    }
    Ok(Posted {
        entry: after,
        day_closed,
    })
}

// ---- exports --------------------------------------------------------------------------------

async fn stored_export(
    db: &Db,
    id: i64,
    format: ExportFormat,
) -> Result<Option<String>, StorageError> {
    Ok(on_db!(db, pool => {
        sqlx::query_scalar("SELECT content FROM journal_exports WHERE entry_id = $1 AND format = $2")
            .bind(id)
            .bind(format.as_str())
            .fetch_optional(pool)
            .await
    })?)
}

async fn record_export(
    db: &Db,
    actor: &str,
    subject: String,
    format: ExportFormat,
    text: &str,
) -> Result<(), StorageError> {
    audit::record(
        db,
        &AuditEvent::new(actor, "journal_export", subject)
            .after(json!({ "format": format, "sha256": sha256_hex(text), "bytes": text.len() })),
    )
    .await
    .map(|_| ())
}

/// The file written when the entry was posted, exactly as written. Only posted entries export.
/// The caller checks the actor's role; the export is recorded in the audit trail.
pub async fn export_entry(
    db: &Db,
    id: i64,
    format: ExportFormat,
    actor: &str,
) -> Result<String, CloseError> {
    let entry = must_get(db, id).await?;
    if entry.state != EntryState::Posted {
        return Err(wrong_state(&entry, EntryState::Posted, "exported"));
    }
    let text = stored_export(db, id, format).await?.ok_or_else(|| {
        corrupt(format!(
            "journal entry {id} is posted but has no {format} file"
        ))
    })?;
    record_export(db, actor, format!("journal:{id}"), format, &text).await?;
    Ok(text)
}

/// Every posted entry of the vendor's day in one file (by currency, one header).
pub async fn export_day(
    db: &Db,
    vendor: &VendorId,
    day: NaiveDate,
    format: ExportFormat,
    actor: &str,
) -> Result<String, CloseError> {
    let entries = list_day(db, vendor.as_str(), day).await?;
    let mut files = Vec::new();
    for entry in entries.iter().filter(|e| e.state == EntryState::Posted) {
        files.push(stored_export(db, entry.id, format).await?.ok_or_else(|| {
            corrupt(format!(
                "journal entry {} is posted but has no {format} file",
                entry.id
            ))
        })?);
    }
    if files.is_empty() {
        return Err(CloseError::NothingPosted {
            vendor: vendor.to_string(),
            day,
        });
    }
    let text = combine_exports(files.iter().map(String::as_str));
    record_export(db, actor, format!("close:{vendor}:{day}"), format, &text).await?;
    Ok(text)
}
