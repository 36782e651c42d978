//! The reconciliation overview: per vendor, its last 30 reconciled days — match rate, open
//! discrepancies and the variance per currency — from the stored runs, so every number here
//! ties to `giftrecon report summary`.

use leptos::prelude::*;
use leptos::server_fn::codec::Json;
use serde::{Deserialize, Serialize};

pub use crate::server::close::TotalsView;

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
    /// Of those, still open now (not resolved, not cleared).
    pub open: u64,
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
        let open = match runs.last() {
            Some(oldest) => {
                crate::storage::queue::open_per_day(&app.db, vendor.id.as_str(), oldest.day)
                    .await
                    .map_err(state::internal)?
            }
            None => Default::default(),
        };
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
                    open: open.get(&run.day).copied().unwrap_or(0),
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

/// One class's open items on the chosen day, in one currency.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct OpenClassView {
    pub class: String,
    pub count: u64,
    /// What they put at stake, e.g. "60.00" (with `currency`); empty without amounts.
    pub amount: String,
    pub currency: String,
}

/// A vendor's day at a glance: what its last run counted, what is still open, and the totals.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct DayFigures {
    pub vendor: String,
    pub date: String,
    /// Whether the day has been reconciled at all.
    pub reconciled: bool,
    pub match_basis_points: u64,
    /// Every class the run counts (matched included), as the summary report has them.
    pub counts: Vec<(String, u64)>,
    pub open: Vec<OpenClassView>,
    pub totals: Vec<TotalsView>,
}

/// The chosen vendor's chosen day (`date` as YYYY-MM-DD).
#[server(input = Json)]
pub async fn day_overview(vendor: String, date: String) -> Result<DayFigures, ServerFnError> {
    use crate::domain::matching::Class;
    auth::require(access::VIEW_OVERVIEW, "day_overview").await?;
    let app = AppState::from_context()?;
    let vendor = crate::domain::VendorId::parse(vendor.trim())
        .map_err(|e| auth::bad_request(&format!("vendor: {e}")))?;
    let day = chrono::NaiveDate::parse_from_str(date.trim(), "%Y-%m-%d").map_err(|_| {
        auth::bad_request(&format!(
            "date: {:?} is not a date; use YYYY-MM-DD",
            crate::domain::excerpt(&date)
        ))
    })?;
    let run = crate::storage::reconciliation::latest_run(&app.db, vendor.as_str(), day)
        .await
        .map_err(state::internal)?;
    let totals = crate::storage::reconciliation::day_totals(&app.db, vendor.as_str(), day)
        .await
        .map_err(state::internal)?
        .unwrap_or_default();
    let open = crate::storage::queue::open_by_class(&app.db, Some(vendor.as_str()), Some(day))
        .await
        .map_err(state::internal)?;
    let (outcomes, matched) = run.as_ref().map_or((0, 0), |r| {
        (
            r.counts.values().sum::<u64>(),
            r.counts.get(&Class::Matched).copied().unwrap_or(0),
        )
    });
    Ok(DayFigures {
        vendor: vendor.to_string(),
        date: day.to_string(),
        reconciled: run.is_some(),
        match_basis_points: (matched * 10_000).checked_div(outcomes).unwrap_or(10_000),
        counts: run
            .map(|r| {
                Class::ALL
                    .into_iter()
                    .map(|c| {
                        (
                            c.as_str().to_string(),
                            r.counts.get(&c).copied().unwrap_or(0),
                        )
                    })
                    .collect()
            })
            .unwrap_or_default(),
        open: open
            .into_iter()
            .map(|o| OpenClassView {
                class: o.class.as_str().to_string(),
                count: o.count,
                amount: o.at_stake.map(|m| m.amount_string()).unwrap_or_default(),
                currency: o
                    .at_stake
                    .map(|m| m.currency().code().to_string())
                    .unwrap_or_default(),
            })
            .collect(),
        totals: totals.iter().map(|(c, t)| TotalsView::of(*c, t)).collect(),
    })
}
