//! Support's order lookup: any id in, the matching orders out, and for a single match its whole
//! history — created, attempts, webhooks and polls (as order events), the vendor's records of
//! it, and its reconciliation classes with who resolved them.

use leptos::prelude::*;
use leptos::server_fn::codec::Json;
use serde::{Deserialize, Serialize};

#[cfg(feature = "ssr")]
use crate::server::{access, auth, state, AppState};

/// Most orders one search lists.
pub const MAX_RESULTS: i64 = 50;

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct OrderRowView {
    pub id: String,
    pub idempotency_key: String,
    pub vendor: String,
    pub customer_id: String,
    pub amount: String,
    pub currency: String,
    pub status: String,
    pub gl_state: String,
    pub vendor_order_id: Option<String>,
    pub created_at: String,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct TimelineEntry {
    pub at: String,
    pub what: String,
    pub detail: String,
    pub who: Option<String>,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct LookupView {
    pub query: String,
    pub orders: Vec<OrderRowView>,
    /// The one order's history, oldest first, when the search found exactly one.
    pub timeline: Vec<TimelineEntry>,
}

/// Finds orders by any id; with exactly one match, its timeline.
#[server(input = Json)]
pub async fn lookup_order(query: String) -> Result<LookupView, ServerFnError> {
    use crate::storage::{orders, reconciliation, vendor_records};
    auth::require(access::LOOKUP_ORDERS, "lookup_order").await?;
    let app = AppState::from_context()?;
    let query = query.trim().to_string();
    if query.is_empty() || query.chars().count() > 200 {
        return Err(auth::bad_request(
            "query: give an order id, idempotency key, customer id or vendor order id (at most 200 characters)",
        ));
    }
    let found = orders::search(&app.db, &query, MAX_RESULTS)
        .await
        .map_err(state::internal)?;
    let stamp = |t: chrono::DateTime<chrono::Utc>| t.format("%Y-%m-%d %H:%M:%S UTC").to_string();
    let mut timeline = Vec::new();
    if let [order] = found.as_slice() {
        for e in orders::events(&app.db, &order.id)
            .await
            .map_err(state::internal)?
        {
            timeline.push((
                e.created_at,
                TimelineEntry {
                    at: stamp(e.created_at),
                    what: e.kind.replace('_', " "),
                    detail: e.detail,
                    who: e.actor,
                },
            ));
        }
        for r in vendor_records::for_order(&app.db, &order.id)
            .await
            .map_err(state::internal)?
        {
            timeline.push((
                r.last_seen_at,
                TimelineEntry {
                    at: stamp(r.last_seen_at),
                    what: format!("vendor record ({})", r.source),
                    detail: format!(
                        "{}: {} {} {}",
                        r.vendor_order_id,
                        r.amount.amount_string(),
                        r.amount.currency().code(),
                        r.status
                    ),
                    who: None,
                },
            ));
        }
        for d in reconciliation::for_order(&app.db, &order.id)
            .await
            .map_err(state::internal)?
        {
            let resolved = match (&d.resolution, &d.resolved_by) {
                (Some(how), Some(by)) => format!("; resolved by {by}: {how}"),
                _ => String::new(),
            };
            timeline.push((
                d.opened_at,
                TimelineEntry {
                    at: stamp(d.opened_at),
                    what: format!("reconciliation: {}", d.class.as_str().replace('_', " ")),
                    detail: format!("day {}, {}{resolved}", d.day, d.state.as_str()),
                    who: None,
                },
            ));
        }
        timeline.sort_by_key(|entry| entry.0);
    }
    Ok(LookupView {
        query,
        orders: found
            .iter()
            .map(|o| OrderRowView {
                id: o.id.clone(),
                idempotency_key: o.idempotency_key.clone(),
                vendor: o.vendor_id.clone(),
                customer_id: o.customer_id.clone(),
                amount: o.amount.amount_string(),
                currency: o.amount.currency().code().to_string(),
                status: o.submission.as_str().to_string(),
                gl_state: o.gl_state.as_str().to_string(),
                vendor_order_id: o.vendor_order_id.clone(),
                created_at: stamp(o.created_at),
            })
            .collect(),
        timeline: timeline.into_iter().map(|(_, e)| e).collect(),
    })
}
