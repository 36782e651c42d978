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
    pub assignee: Option<String>,
    /// A write-off awaiting approval: the reason and who asked.
    pub write_off_reason: Option<String>,
    pub write_off_by: Option<String>,
    /// What the item puts at stake ("12.50 USD"), if either side has an amount.
    pub at_stake: Option<String>,
    /// The actions that fit it now and that the caller's role may take (none once it is not
    /// open), as `QueueAction` names.
    pub actions: Vec<crate::domain::queue::QueueAction>,
    /// Whether the caller may resolve it by hand (open, and a finance role).
    pub can_resolve: bool,
}

/// One entry of an item's history.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct HistoryEntry {
    pub at: String,
    pub kind: String,
    pub detail: String,
    pub actor: String,
}

/// What one action did to one item.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ActionResult {
    pub id: i64,
    pub ok: bool,
    /// What happened, or why nothing did.
    pub message: String,
    pub order_id: Option<String>,
}

/// What a queue shows: every field may be empty ("any"). The page sends it as typed; the
/// server parses it and names the field it cannot read. Exports take the same fields.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct QueueFilter {
    pub vendor: String,
    pub class: String,
    /// open (the page's default), resolved, cleared or all.
    pub state: String,
    pub from: String,
    pub to: String,
    /// ISO 4217; needed for an amount range (amounts compare within one currency).
    pub currency: String,
    /// Decimal amounts in `currency`, on the larger side.
    pub min_amount: String,
    pub max_amount: String,
    /// Open for at least this many days.
    pub min_age_days: String,
    /// A username, "me", or "nobody".
    pub assignee: String,
    /// day (default), oldest, newest or amount.
    pub sort: String,
    pub page: u32,
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
    use crate::domain::queue::QueueAction;
    use crate::storage::reconciliation::{Assignee, Discrepancy, DiscrepancyState, Filter, Sort};

    pub fn optional_date(field: &str, value: &str) -> Result<Option<NaiveDate>, ServerFnError> {
        crate::server::filters::optional_date(field, value)
            .map_err(|e| auth::bad_request(&e.to_string()))
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
        let open = d.state == DiscrepancyState::Open;
        let mut actions = if open {
            QueueAction::for_class(d.class)
        } else {
            Vec::new()
        };
        if open && d.write_off.is_some() {
            actions.retain(|a| *a != QueueAction::WriteOff);
            actions.push(QueueAction::ApproveWriteOff);
        }
        let at_stake =
            crate::domain::queue::amount_at_stake(d.class, d.internal_amount, d.vendor_amount)
                .ok()
                .flatten()
                .map(|m| format!("{} {}", m.amount_string(), m.currency().code()));
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
            assignee: d.assignee.clone(),
            write_off_reason: d.write_off.as_ref().map(|w| w.0.clone()),
            write_off_by: d.write_off.as_ref().map(|w| w.1.clone()),
            at_stake,
            actions,
            can_resolve: open,
        }
    }

    fn optional<T>(
        value: &str,
        parse: impl FnOnce(&str) -> Result<T, String>,
        field: &str,
    ) -> Result<Option<T>, ServerFnError> {
        let value = value.trim();
        if value.is_empty() {
            return Ok(None);
        }
        parse(value)
            .map(Some)
            .map_err(|e| auth::bad_request(&format!("{field}: {e}")))
    }

    /// The storage filter for `q`, for `username` ("me"); without paging.
    pub fn filter(q: &QueueFilter, username: &str) -> Result<Filter, ServerFnError> {
        let vendor = optional(
            &q.vendor,
            |v| {
                crate::domain::VendorId::parse(v)
                    .map(|v| v.to_string())
                    .map_err(|e| e.to_string())
            },
            "vendor",
        )?;
        let currency = optional(
            &q.currency,
            |c| crate::domain::Currency::parse(c).map_err(|e| e.to_string()),
            "currency",
        )?;
        let amount = |value: &str, field: &str| -> Result<Option<i64>, ServerFnError> {
            if value.trim().is_empty() {
                return Ok(None);
            }
            let Some(currency) = currency else {
                return Err(auth::bad_request(&format!(
                    "{field}: choose a currency first; amounts compare within one currency"
                )));
            };
            optional(
                value,
                |v| {
                    crate::domain::Money::parse(v, currency)
                        .map(|m| m.minor_units())
                        .map_err(|e| e.to_string())
                },
                field,
            )
        };
        let min_age = optional(
            &q.min_age_days,
            |v| {
                v.parse::<u32>().map_err(|_| {
                    format!(
                        "{:?} is not a whole number of days",
                        crate::domain::excerpt(v)
                    )
                })
            },
            "min_age_days",
        )?;
        let assignee = match q.assignee.trim() {
            "" => None,
            "nobody" => Some(Assignee::Nobody),
            "me" => Some(Assignee::User(username.to_string())),
            name => Some(Assignee::User(name.to_string())),
        };
        let sort = match q.sort.trim() {
            "" | "day" => Sort::Day,
            "oldest" => Sort::Oldest,
            "newest" => Sort::Newest,
            "amount" => Sort::Amount,
            other => {
                return Err(auth::bad_request(&format!(
                    "sort: {:?} is not day, oldest, newest or amount",
                    crate::domain::excerpt(other)
                )))
            }
        };
        Ok(Filter {
            vendor_id: vendor,
            from: optional_date("from", &q.from)?,
            to: optional_date("to", &q.to)?,
            class: class(&q.class)?,
            state: state(&q.state)?,
            min_minor: amount(&q.min_amount, "min_amount")?,
            max_minor: amount(&q.max_amount, "max_amount")?,
            currency,
            opened_before: min_age
                .map(|days| chrono::Utc::now() - chrono::Duration::days(i64::from(days))),
            assignee,
            sort,
            limit: None,
            offset: None,
        })
    }

    /// `view` narrowed to what `role` may do: support looks, finance acts, approvers approve.
    pub fn view_for(d: &Discrepancy, role: crate::domain::Role) -> DiscrepancyView {
        let mut v = view(d);
        v.actions.retain(|a| {
            let allowed = if *a == QueueAction::ApproveWriteOff {
                access::APPROVE_WRITE_OFF
            } else {
                access::ACT_ON_DISCREPANCY
            };
            allowed.contains(&role)
        });
        v.can_resolve &= access::RESOLVE_DISCREPANCY.contains(&role);
        v
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

/// A queue's fields as a storage filter without paging, parsed exactly as the page's (the
/// exports use it; errors name the field).
#[cfg(feature = "ssr")]
pub use ssr::filter as storage_filter;

/// A page of discrepancies matching `filter`.
#[server(input = Json)]
pub async fn list_discrepancies(filter: QueueFilter) -> Result<QueueView, ServerFnError> {
    let user = auth::require(access::VIEW_QUEUES, "list_discrepancies").await?;
    let app = AppState::from_context()?;
    let page = filter.page.min(100_000);
    let mut query = ssr::filter(&filter, &user.username)?;
    query.limit = Some(i64::from(PAGE_SIZE) + 1);
    query.offset = Some(i64::from(page) * i64::from(PAGE_SIZE));
    let mut items = crate::storage::reconciliation::list(&app.db, &query)
        .await
        .map_err(state::internal)?;
    let has_more = items.len() > PAGE_SIZE as usize;
    items.truncate(PAGE_SIZE as usize);
    Ok(QueueView {
        items: items.iter().map(|d| ssr::view_for(d, user.role)).collect(),
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
    Ok(ssr::view_for(&item, user.role))
}

/// Takes one action on each of `ids` (at most 500), each item on its own: the result says, per
/// item, what happened or why nothing did. A double click finds the items already done.
/// (A stable path, `/api/act_on_discrepancies`, for scripts and the browser tests.)
#[server(input = Json, endpoint = "act_on_discrepancies")]
pub async fn act_on_discrepancies(
    ids: Vec<i64>,
    action: String,
    reason: String,
) -> Result<Vec<ActionResult>, ServerFnError> {
    use crate::domain::queue::QueueAction;
    let Some(action) = QueueAction::parse(action.trim()) else {
        return Err(auth::bad_request(&format!(
            "action: {:?} is not one of backfill, retry, refund, sync_status, write_off, approve_write_off",
            crate::domain::excerpt(&action)
        )));
    };
    let allowed = if action == QueueAction::ApproveWriteOff {
        access::APPROVE_WRITE_OFF
    } else {
        access::ACT_ON_DISCREPANCY
    };
    let user = auth::require(allowed, "act_on_discrepancies").await?;
    let app = AppState::from_context()?;
    if ids.is_empty() || ids.len() > 500 {
        return Err(auth::bad_request("ids: choose between 1 and 500 items"));
    }
    let reason = reason.trim();
    if reason.chars().count() > 500 {
        return Err(auth::bad_request("reason: at most 500 characters"));
    }
    if action.needs_reason() && reason.is_empty() {
        return Err(auth::bad_request(&format!(
            "reason: {} needs a reason",
            action.label()
        )));
    }
    let mut results = Vec::with_capacity(ids.len());
    let mut seen = std::collections::HashSet::new();
    for id in ids {
        if !seen.insert(id) {
            continue;
        }
        let result = crate::storage::queue::act(&app.db, id, action, reason, &user.username).await;
        results.push(match result {
            Ok(acted) => ActionResult {
                id,
                ok: true,
                message: acted.outcome,
                order_id: acted.order_id,
            },
            Err(
                crate::storage::StorageError::Conflict { what }
                | crate::storage::StorageError::NotFound { what },
            ) => ActionResult {
                id,
                ok: false,
                message: what,
                order_id: None,
            },
            Err(other) => {
                tracing::error!(error = %other, id, "queue action failed");
                ActionResult {
                    id,
                    ok: false,
                    message: "could not be done; the error has been logged".into(),
                    order_id: None,
                }
            }
        });
    }
    Ok(results)
}

/// Assigns an item to a user ("" unassigns; "me" is the caller).
#[server(input = Json)]
pub async fn assign_discrepancy(
    id: i64,
    assignee: String,
) -> Result<DiscrepancyView, ServerFnError> {
    let user = auth::require(access::ACT_ON_DISCREPANCY, "assign_discrepancy").await?;
    let app = AppState::from_context()?;
    let assignee = match assignee.trim() {
        "" => None,
        "me" => Some(user.username.clone()),
        name => Some(
            crate::domain::Username::parse(name)
                .map_err(|e| auth::bad_request(&format!("assignee: {e}")))?
                .to_string(),
        ),
    };
    let item = crate::storage::queue::assign(&app.db, id, assignee.as_deref(), &user.username)
        .await
        .map_err(ssr::refusal)?;
    Ok(ssr::view_for(&item, user.role))
}

/// Adds a note to an item's history.
#[server(input = Json)]
pub async fn add_discrepancy_note(id: i64, note: String) -> Result<(), ServerFnError> {
    let user = auth::require(access::ACT_ON_DISCREPANCY, "add_discrepancy_note").await?;
    let app = AppState::from_context()?;
    let note = note.trim();
    if note.is_empty() || note.chars().count() > 2000 {
        return Err(auth::bad_request("note: write 1 to 2000 characters"));
    }
    crate::storage::queue::add_note(&app.db, id, note, &user.username)
        .await
        .map_err(ssr::refusal)
}

/// An item's history, oldest first: opened, reruns, actions, assignments and notes.
#[server(input = Json)]
pub async fn discrepancy_history(id: i64) -> Result<Vec<HistoryEntry>, ServerFnError> {
    auth::require(access::VIEW_QUEUES, "discrepancy_history").await?;
    let app = AppState::from_context()?;
    crate::storage::reconciliation::get(&app.db, id)
        .await
        .map_err(ssr::refusal)?;
    let events = crate::storage::reconciliation::events(&app.db, id)
        .await
        .map_err(state::internal)?;
    Ok(events
        .into_iter()
        .map(|e| HistoryEntry {
            at: e.at.format("%Y-%m-%d %H:%M:%S UTC").to_string(),
            kind: e.kind,
            detail: e.detail,
            actor: e.actor,
        })
        .collect())
}
