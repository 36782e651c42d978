//! Server functions of the discrepancy queues: list with filters (paginated on the server) and
//! resolve with a reason. Roles are checked here; the lifecycle rules live in
//! `storage::reconciliation`.

use leptos::prelude::*;
use leptos::server_fn::codec::Json;
use serde::{Deserialize, Serialize};

#[cfg(feature = "ssr")]
use crate::server::{access, auth, state, AppState};

/// Rows per page.
pub const PAGE_SIZE: u32 = 50;

/// One discrepancy, both sides, and which fields differ.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct DiscrepancyView {
    pub id: i64,
    pub vendor: String,
    pub date: String,
    pub class: String,
    pub state: String,
    pub key: String,
    pub order_id: Option<String>,
    pub internal_amount: Option<String>,
    pub internal_currency: Option<String>,
    pub internal_gl_state: Option<String>,
    pub vendor_order_ids: Option<String>,
    pub vendor_amount: Option<String>,
    pub vendor_currency: Option<String>,
    pub vendor_status: Option<String>,
    pub opened_at: String,
    /// Whole days since it was first opened.
    pub age_days: i64,
    pub resolution: Option<String>,
    pub resolved_by: Option<String>,
    /// "amount", "currency", "status": what to highlight.
    pub differs: Vec<String>,
}

/// One page of a queue.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct QueueView {
    pub items: Vec<DiscrepancyView>,
    pub page: u32,
    pub has_more: bool,
}

#[cfg(feature = "ssr")]
mod ssr {
    use axum::http::StatusCode;
    use chrono::NaiveDate;
    use leptos::prelude::ServerFnError;

    use super::*;
    use crate::domain::matching::Class;
    use crate::storage::reconciliation::{Discrepancy, DiscrepancyState};

    pub fn optional_date(field: &str, value: &str) -> Result<Option<NaiveDate>, ServerFnError> {
        let value = value.trim();
        if value.is_empty() {
            return Ok(None);
        }
        NaiveDate::parse_from_str(value, "%Y-%m-%d")
            .map(Some)
            .map_err(|_| {
                auth::bad_request(&format!(
                    "{field}: {:?} is not a date; use YYYY-MM-DD",
                    crate::domain::excerpt(value)
                ))
            })
    }

    pub fn class(value: &str) -> Result<Option<Class>, ServerFnError> {
        let value = value.trim();
        if value.is_empty() {
            return Ok(None);
        }
        Class::ALL
            .into_iter()
            .find(|c| c.as_str() == value && c.is_discrepancy())
            .map(Some)
            .ok_or_else(|| {
                auth::bad_request(&format!(
                    "class: {:?} is not a discrepancy class",
                    crate::domain::excerpt(value)
                ))
            })
    }

    pub fn state(value: &str) -> Result<Option<DiscrepancyState>, ServerFnError> {
        match value.trim() {
            "" | "all" => Ok(None),
            "open" => Ok(Some(DiscrepancyState::Open)),
            "resolved" => Ok(Some(DiscrepancyState::Resolved)),
            "cleared" => Ok(Some(DiscrepancyState::Cleared)),
            other => Err(auth::bad_request(&format!(
                "state: {:?} is not open, resolved, cleared or all",
                crate::domain::excerpt(other)
            ))),
        }
    }

    pub fn view(d: &Discrepancy) -> DiscrepancyView {
        let differs: &[&str] = match d.class {
            Class::AmountMismatch => &["amount"],
            Class::CurrencyMismatch => &["currency"],
            Class::StatusMismatch | Class::UnmappedStatus => &["status"],
            _ => &[],
        };
        DiscrepancyView {
            id: d.id,
            vendor: d.vendor_id.clone(),
            date: d.day.to_string(),
            class: d.class.as_str().to_string(),
            state: d.state.as_str().to_string(),
            key: d.item_key.clone(),
            order_id: d.order_id.clone(),
            internal_amount: d.internal_amount.map(|m| m.amount_string()),
            internal_currency: d.internal_amount.map(|m| m.currency().code().to_string()),
            internal_gl_state: d.internal_gl_state.map(|g| g.as_str().to_string()),
            vendor_order_ids: d.vendor_order_ids.clone(),
            vendor_amount: d.vendor_amount.map(|m| m.amount_string()),
            vendor_currency: d.vendor_amount.map(|m| m.currency().code().to_string()),
            vendor_status: d.vendor_status.clone(),
            opened_at: d.opened_at.format("%Y-%m-%d %H:%M UTC").to_string(),
            age_days: (chrono::Utc::now() - d.opened_at).num_days(),
            resolution: d.resolution.clone(),
            resolved_by: d.resolved_by.clone(),
            differs: differs.iter().map(|s| s.to_string()).collect(),
        }
    }

    pub fn refusal(err: crate::storage::StorageError) -> ServerFnError {
        match err {
            crate::storage::StorageError::NotFound { what } => {
                auth::refuse(StatusCode::NOT_FOUND, &format!("{what} not found"))
            }
            crate::storage::StorageError::Conflict { what } => {
                auth::refuse(StatusCode::CONFLICT, &what)
            }
            other => state::internal(other),
        }
    }
}

/// A page of discrepancies. Empty filters mean "any"; `state` defaults to what the caller
/// sends ("open" from the page).
#[server(input = Json)]
pub async fn list_discrepancies(
    vendor: String,
    class: String,
    state: String,
    from: String,
    to: String,
    page: u32,
) -> Result<QueueView, ServerFnError> {
    auth::require(access::VIEW_QUEUES, "list_discrepancies").await?;
    let app = AppState::from_context()?;
    let vendor = vendor.trim();
    let vendor = if vendor.is_empty() {
        None
    } else {
        Some(
            crate::domain::VendorId::parse(vendor)
                .map_err(|e| auth::bad_request(&format!("vendor: {e}")))?
                .to_string(),
        )
    };
    let filter = crate::storage::reconciliation::Filter {
        vendor_id: vendor,
        from: ssr::optional_date("from", &from)?,
        to: ssr::optional_date("to", &to)?,
        class: ssr::class(&class)?,
        state: ssr::state(&state)?,
        limit: Some(i64::from(PAGE_SIZE) + 1),
        offset: Some(i64::from(page.min(100_000)) * i64::from(PAGE_SIZE)),
    };
    let mut items = crate::storage::reconciliation::list(&app.db, &filter)
        .await
        .map_err(state::internal)?;
    let has_more = items.len() > PAGE_SIZE as usize;
    items.truncate(PAGE_SIZE as usize);
    Ok(QueueView {
        items: items.iter().map(ssr::view).collect(),
        page,
        has_more,
    })
}

/// Resolves an open discrepancy, saying how (kept with who and when, and audited).
#[server(input = Json)]
pub async fn resolve_discrepancy(id: i64, how: String) -> Result<DiscrepancyView, ServerFnError> {
    let user = auth::require(access::RESOLVE_DISCREPANCY, "resolve_discrepancy").await?;
    let app = AppState::from_context()?;
    let how = how.trim();
    if how.is_empty() || how.chars().count() > 500 {
        return Err(auth::bad_request(
            "how: say how it was resolved (1 to 500 characters)",
        ));
    }
    let item = crate::storage::reconciliation::resolve(&app.db, id, how, &user.username)
        .await
        .map_err(ssr::refusal)?;
    Ok(ssr::view(&item))
}
