//! The reconciliation overview: per vendor, its last 30 reconciled days — match rate, open
//! discrepancies and the variance per currency — from the stored runs, so every number here
//! ties to `giftrecon report summary`.

use leptos::prelude::*;
use leptos::server_fn::codec::Json;
use serde::{Deserialize, Serialize};

#[cfg(feature = "ssr")]
use crate::server::{access, auth, state, AppState};

/// Days shown per vendor.
pub const DAYS: i64 = 30;

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct DayView {
    pub date: String,
    pub outcomes: u64,
    pub matched: u64,
    pub discrepancies: u64,
    /// Matched outcomes per ten thousand (an integer: no float crosses the wire).
    pub match_basis_points: u64,
    /// "USD -4.99" per currency with a variance.
    pub variances: Vec<String>,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct VendorDays {
    pub vendor: String,
    /// Everything the vendor updated before this was read by the poller ("never" if not yet).
    pub polled_to: Option<String>,
    /// Minutes between then and now: how far the poller lags.
    pub poll_lag_minutes: Option<i64>,
    pub last_webhook_at: Option<String>,
    /// Newest first.
    pub days: Vec<DayView>,
}

/// Every vendor's recent reconciled days.
#[server(input = Json)]
pub async fn reconciliation_overview() -> Result<Vec<VendorDays>, ServerFnError> {
    use crate::domain::matching::Class;
    auth::require(access::VIEW_OVERVIEW, "reconciliation_overview").await?;
    let app = AppState::from_context()?;
    let vendors = crate::storage::vendors::list_vendors(&app.db)
        .await
        .map_err(state::internal)?;
    let mut out = Vec::with_capacity(vendors.len());
    for vendor in vendors {
        let runs = crate::storage::reconciliation::recent_days(&app.db, vendor.id.as_str(), DAYS)
            .await
            .map_err(state::internal)?;
        let days = runs
            .iter()
            .map(|run| {
                let outcomes: u64 = run.counts.values().sum();
                let matched = run.counts.get(&Class::Matched).copied().unwrap_or(0);
                DayView {
                    date: run.day.to_string(),
                    outcomes,
                    matched,
                    discrepancies: outcomes - matched,
                    match_basis_points: (matched * 10_000).checked_div(outcomes).unwrap_or(10_000),
                    variances: run
                        .totals
                        .iter()
                        .filter_map(|(c, t)| {
                            let v = t.variance().ok()?;
                            (v.minor_units() != 0)
                                .then(|| format!("{} {}", c.code(), v.amount_string()))
                        })
                        .collect(),
                }
            })
            .collect();
        let cursor = crate::storage::poller::cursor(&app.db, vendor.id.as_str())
            .await
            .map_err(state::internal)?;
        let last_webhook = crate::storage::webhooks::last_received(&app.db, vendor.id.as_str())
            .await
            .map_err(state::internal)?;
        let stamp = |t: chrono::DateTime<chrono::Utc>| t.format("%Y-%m-%d %H:%M UTC").to_string();
        out.push(VendorDays {
            vendor: vendor.id.to_string(),
            polled_to: cursor.synced_to.map(stamp),
            poll_lag_minutes: cursor
                .synced_to
                .map(|t| (chrono::Utc::now() - t).num_minutes().max(0)),
            last_webhook_at: last_webhook.map(stamp),
            days,
        });
    }
    Ok(out)
}
