//! Server functions of the daily close: totals side by side, clearing entries and their
//! maker-checker steps, and the journal files. Each checks the caller's role first; the rules
//! themselves (who may approve what, locked days) live in `storage::journal`.

use leptos::prelude::*;
use leptos::server_fn::codec::Json;
use serde::{Deserialize, Serialize};

use crate::domain::journal::EntryState;
#[cfg(feature = "ssr")]
use crate::server::{access, auth, state, AppState};

/// One currency's totals for the day, ours beside the vendor's.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct TotalsView {
    pub currency: String,
    pub internal_count: u64,
    pub internal_amount: String,
    pub vendor_count: u64,
    pub vendor_amount: String,
    /// Vendor minus ours.
    pub variance: String,
}

impl TotalsView {
    /// One currency's stored totals as the pages show them.
    pub fn of(
        currency: crate::domain::Currency,
        t: &crate::domain::matching::CurrencyTotals,
    ) -> TotalsView {
        TotalsView {
            currency: currency.code().to_string(),
            internal_count: t.internal.count,
            internal_amount: t.internal.amount.amount_string(),
            vendor_count: t.vendor.count,
            vendor_amount: t.vendor.amount.amount_string(),
            variance: t
                .variance()
                .map(|v| v.amount_string())
                .unwrap_or_else(|_| "overflow".into()),
        }
    }
}

/// One journal line; exactly one of debit and credit is set.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct LineView {
    pub account_code: String,
    pub account_name: String,
    pub debit: Option<String>,
    pub credit: Option<String>,
    pub description: String,
}

/// A clearing entry as finance reviews it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct EntryView {
    pub id: i64,
    pub journal_no: String,
    pub currency: String,
    pub state: EntryState,
    pub memo: String,
    /// What the approver reviewed; sent back with the approval.
    pub content_hash: String,
    pub lines: Vec<LineView>,
    pub debit_total: String,
    pub credit_total: String,
    pub prepared_by: String,
    pub submitted_by: Option<String>,
    pub submitted_at: Option<String>,
    pub approved_by: Option<String>,
    pub approved_at: Option<String>,
    pub posted_by: Option<String>,
    pub posted_at: Option<String>,
}

/// A vendor's day: totals, entries and whether it is closed.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct CloseView {
    pub vendor: String,
    pub date: String,
    /// Whether the day's reconciliation has produced totals.
    pub reconciled: bool,
    /// Every entry is posted: nothing about the day may change.
    pub locked: bool,
    pub totals: Vec<TotalsView>,
    pub entries: Vec<EntryView>,
}

#[cfg(feature = "ssr")]
mod ssr {
    use axum::http::StatusCode;
    use chrono::NaiveDate;
    use leptos::prelude::ServerFnError;

    use super::*;
    use crate::domain::journal::{JournalLine, Side};
    use crate::domain::VendorId;
    use crate::storage::journal::{self, Actor, CloseError, JournalEntry};
    use crate::storage::sessions::SessionUser;
    use crate::storage::{reconciliation, Db};

    pub fn actor(user: &SessionUser) -> Actor {
        Actor {
            username: user.username.clone(),
            role: user.role,
        }
    }

    pub fn parse_vendor(vendor: &str) -> Result<VendorId, ServerFnError> {
        VendorId::parse(vendor.trim()).map_err(|e| auth::bad_request(&format!("vendor: {e}")))
    }

    pub fn parse_date(date: &str) -> Result<NaiveDate, ServerFnError> {
        NaiveDate::parse_from_str(date.trim(), "%Y-%m-%d").map_err(|_| {
            auth::bad_request(&format!(
                "date: {:?} is not a date; use YYYY-MM-DD",
                crate::domain::excerpt(date)
            ))
        })
    }

    /// Maps a refusal to its status and message; internal failures are logged, not shown.
    pub fn refusal(err: CloseError) -> ServerFnError {
        let status = match &err {
            CloseError::NotFound { .. } | CloseError::VendorNotFound { .. } => {
                StatusCode::NOT_FOUND
            }
            CloseError::Role { .. } | CloseError::SelfApproval { .. } => StatusCode::FORBIDDEN,
            CloseError::DayClosed { .. }
            | CloseError::ChangedAfterSubmission { .. }
            | CloseError::WrongState { .. } => StatusCode::CONFLICT,
            CloseError::NothingPosted { .. } | CloseError::Journal(_) => StatusCode::BAD_REQUEST,
            CloseError::Storage(_) => return state::internal(err),
        };
        auth::refuse(status, &err.to_string())
    }

    fn line_view(line: &JournalLine) -> LineView {
        let amount = Some(line.amount.amount_string());
        LineView {
            account_code: line.account.code().to_string(),
            account_name: line.account.name().to_string(),
            debit: (line.side == Side::Debit).then(|| amount.clone()).flatten(),
            credit: (line.side == Side::Credit).then_some(amount).flatten(),
            description: line.description.clone(),
        }
    }

    fn when(at: Option<chrono::DateTime<chrono::Utc>>) -> Option<String> {
        at.map(|t| t.format("%Y-%m-%d %H:%M:%S UTC").to_string())
    }

    pub fn entry_view(entry: &JournalEntry) -> EntryView {
        let content = entry.clearing_entry();
        let total = |r: Result<crate::domain::Money, _>| {
            r.map(|m: crate::domain::Money| m.amount_string())
                .unwrap_or_else(|_: crate::domain::MoneyError| "overflow".into())
        };
        EntryView {
            id: entry.id,
            journal_no: entry.journal_no(),
            currency: entry.currency.to_string(),
            state: entry.state,
            memo: entry.memo.clone(),
            content_hash: entry.content_hash.clone(),
            lines: entry.lines.iter().map(line_view).collect(),
            debit_total: total(content.debits()),
            credit_total: total(content.credits()),
            prepared_by: entry.prepared_by.clone(),
            submitted_by: entry.submitted_by.clone(),
            submitted_at: when(entry.submitted_at),
            approved_by: entry.approved_by.clone(),
            approved_at: when(entry.approved_at),
            posted_by: entry.posted_by.clone(),
            posted_at: when(entry.posted_at),
        }
    }

    /// The day as the close page shows it.
    pub async fn close_view(
        db: &Db,
        vendor: &VendorId,
        day: NaiveDate,
    ) -> Result<CloseView, ServerFnError> {
        let totals = reconciliation::day_totals(db, vendor.as_str(), day)
            .await
            .map_err(state::internal)?;
        let entries = journal::list_day(db, vendor.as_str(), day)
            .await
            .map_err(state::internal)?;
        let locked = journal::is_locked(db, vendor.as_str(), day)
            .await
            .map_err(state::internal)?;
        Ok(CloseView {
            vendor: vendor.to_string(),
            date: day.to_string(),
            reconciled: totals.is_some(),
            locked,
            totals: totals
                .unwrap_or_default()
                .into_iter()
                .map(|(currency, t)| TotalsView::of(currency, &t))
                .collect(),
            entries: entries.iter().map(entry_view).collect(),
        })
    }

    pub async fn vendor_exists(db: &Db, vendor: &VendorId) -> Result<(), ServerFnError> {
        match crate::storage::vendors::get_vendor(db, vendor).await {
            Ok(_) => Ok(()),
            Err(crate::storage::StorageError::NotFound { what }) => Err(auth::refuse(
                StatusCode::NOT_FOUND,
                &format!("{what} not found"),
            )),
            Err(e) => Err(state::internal(e)),
        }
    }
}

/// The vendor's day: totals per currency with variance, and the entries with lines and states.
#[server(input = Json)]
pub async fn list_close(vendor: String, date: String) -> Result<CloseView, ServerFnError> {
    auth::require(access::VIEW_CLOSE, "list_close").await?;
    let state = AppState::from_context()?;
    let vendor = ssr::parse_vendor(&vendor)?;
    let day = ssr::parse_date(&date)?;
    ssr::vendor_exists(&state.db, &vendor).await?;
    ssr::close_view(&state.db, &vendor, day).await
}

/// Proposes (or refreshes) the day's clearing entries from its reconciled totals.
#[server(input = Json)]
pub async fn propose_close(vendor: String, date: String) -> Result<CloseView, ServerFnError> {
    let user = auth::require(access::PREPARE_CLOSE, "propose_close").await?;
    let state = AppState::from_context()?;
    let vendor = ssr::parse_vendor(&vendor)?;
    let day = ssr::parse_date(&date)?;
    ssr::vendor_exists(&state.db, &vendor).await?;
    let totals = crate::storage::reconciliation::day_totals(&state.db, vendor.as_str(), day)
        .await
        .map_err(state::internal)?
        .ok_or_else(|| {
            auth::refuse(
                axum::http::StatusCode::CONFLICT,
                &format!("reconcile vendor {vendor} for {day} first"),
            )
        })?;
    crate::storage::journal::propose(&state.db, &vendor, day, &totals, &ssr::actor(&user))
        .await
        .map_err(ssr::refusal)?;
    ssr::close_view(&state.db, &vendor, day).await
}

/// Sends a draft entry for approval.
#[server(input = Json)]
pub async fn submit_entry(id: i64) -> Result<EntryView, ServerFnError> {
    let user = auth::require(access::SUBMIT_ENTRY, "submit_entry").await?;
    let state = AppState::from_context()?;
    let entry = crate::storage::journal::submit(&state.db, id, &ssr::actor(&user))
        .await
        .map_err(ssr::refusal)?;
    Ok(ssr::entry_view(&entry))
}

/// Approves a submitted entry; `reviewed_hash` is the content hash the approver looked at.
#[server(input = Json)]
pub async fn approve_entry(id: i64, reviewed_hash: String) -> Result<EntryView, ServerFnError> {
    let user = auth::require(access::APPROVE_ENTRY, "approve_entry").await?;
    let state = AppState::from_context()?;
    let entry =
        crate::storage::journal::approve(&state.db, id, reviewed_hash.trim(), &ssr::actor(&user))
            .await
            .map_err(ssr::refusal)?;
    Ok(ssr::entry_view(&entry))
}

/// Posts an approved entry, writing its journal files; the day closes with its last entry.
#[server(input = Json)]
pub async fn post_entry(id: i64) -> Result<EntryView, ServerFnError> {
    let user = auth::require(access::POST_ENTRY, "post_entry").await?;
    let state = AppState::from_context()?;
    let posted = crate::storage::journal::post(&state.db, id, &ssr::actor(&user))
        .await
        .map_err(ssr::refusal)?;
    Ok(ssr::entry_view(&posted.entry))
}

/// A posted entry's journal file (`generic`, `qbo` or `xero`), exactly as written at posting.
#[server(input = Json)]
pub async fn export_entry(id: i64, format: String) -> Result<String, ServerFnError> {
    let user = auth::require(access::EXPORT_ENTRY, "export_entry").await?;
    let state = AppState::from_context()?;
    let format = crate::domain::journal::ExportFormat::parse(format.trim())
        .map_err(|e| auth::bad_request(&format!("format: {e}")))?;
    crate::storage::journal::export_entry(&state.db, id, format, &user.username)
        .await
        .map_err(ssr::refusal)
}
