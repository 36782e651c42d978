//! Reconciling vendor days and reporting on them: `giftrecon reconcile`, `giftrecon report`,
//! and the reconciliation API share these functions, so every surface prints the same numbers.

use std::collections::BTreeMap;
use std::fmt::Write as _;

use anyhow::{bail, Context};
use app::domain::matching::{Class, Tolerance};
use app::domain::{Currency, Money, VendorId};
use app::storage::reconciliation::{self, Changes, DayWindow, Discrepancy, RunSummary};
use app::storage::{vendors, Db};
use chrono::{NaiveDate, TimeZone};
use chrono_tz::Tz;
use serde::Serialize;

use crate::config::ReconciliationSettings;
use crate::export::csv_cell;

/// Parses an IANA time zone name.
pub fn business_zone(name: &str) -> Result<Tz, String> {
    name.trim().parse::<Tz>().map_err(|_| {
        format!("{name:?} is not a time zone; use an IANA name such as UTC or Europe/Berlin")
    })
}

/// The UTC instants a business day spans: from its first moment to the next day's, in `zone`.
/// On a day when the clocks change the day is 23 or 25 hours long.
pub fn day_window(day: NaiveDate, zone: &str) -> anyhow::Result<DayWindow> {
    let tz = business_zone(zone).map_err(anyhow::Error::msg)?;
    let start_of = |d: NaiveDate| {
        let midnight = d.and_hms_opt(0, 0, 0).expect("midnight exists");
        // A zone that skips midnight starts the day at the first instant that exists.
        tz.from_local_datetime(&midnight)
            .earliest()
            .or_else(|| {
                (1..=3).find_map(|h| {
                    tz.from_local_datetime(&(midnight + chrono::Duration::hours(h)))
                        .earliest()
                })
            })
            .map(|t| t.with_timezone(&chrono::Utc))
            .with_context(|| format!("{d} has no start in {zone}"))
    };
    let next = day.succ_opt().context("the date is out of range")?;
    Ok(DayWindow {
        day,
        time_zone: tz.name().to_string(),
        start: start_of(day)?,
        end: start_of(next)?,
    })
}

/// The days from `from` to `to`, both included; at most a year at a time.
pub fn days(from: NaiveDate, to: NaiveDate) -> anyhow::Result<Vec<NaiveDate>> {
    if to < from {
        bail!("--to {to} is before --from {from}");
    }
    let span = (to - from).num_days();
    if span > 366 {
        bail!(
            "--from/--to span {} days; reconcile at most 366 at a time",
            span + 1
        );
    }
    Ok(from.iter_days().take(span as usize + 1).collect())
}

/// Reconciles each day of one vendor, in order.
pub async fn reconcile_days(
    db: &Db,
    vendor: &str,
    days: &[NaiveDate],
    settings: &ReconciliationSettings,
    actor: &str,
) -> anyhow::Result<Vec<(RunSummary, Changes)>> {
    let vendor_id = VendorId::parse(vendor).context("--vendor")?;
    let vendor = vendors::get_vendor(db, &vendor_id).await?;
    let tolerance = Tolerance {
        amount_minor: settings.amount_tolerance_minor,
    };
    let mut runs = Vec::with_capacity(days.len());
    for day in days {
        let window = day_window(*day, &settings.time_zone)?;
        runs.push(reconciliation::run(db, &vendor, &window, tolerance, actor).await?);
    }
    Ok(runs)
}

/// The latest run of a vendor's day, or an error that says how to make one.
pub async fn summary_of(db: &Db, vendor: &str, day: NaiveDate) -> anyhow::Result<RunSummary> {
    let vendor_id = VendorId::parse(vendor).context("vendor")?;
    vendors::get_vendor(db, &vendor_id).await?;
    reconciliation::latest_run(db, vendor_id.as_str(), day)
        .await?
        .with_context(|| {
            format!(
                "vendor {vendor:?} has not been reconciled for {day}: run `giftrecon reconcile --vendor {vendor} --date {day}`"
            )
        })
}

/// Counts in the order finance reads them.
#[derive(Serialize)]
pub struct CountsJson {
    matched: u64,
    amount_mismatch: u64,
    currency_mismatch: u64,
    status_mismatch: u64,
    unmapped_status: u64,
    vendor_only: u64,
    internal_only: u64,
    duplicate: u64,
}

#[derive(Serialize)]
pub struct TotalJson {
    internal_count: u64,
    internal_amount: String,
    vendor_count: u64,
    vendor_amount: String,
    variance: String,
}

/// The summary of a day as the API and `report summary --format json` print it.
#[derive(Serialize)]
pub struct SummaryJson {
    vendor: String,
    date: NaiveDate,
    time_zone: String,
    run_id: i64,
    reconciled_at: String,
    orders: u64,
    vendor_records: u64,
    counts: CountsJson,
    totals: BTreeMap<&'static str, TotalJson>,
}

fn variance(internal: Money, vendor: Money) -> String {
    vendor
        .checked_sub(internal)
        .map(|m| m.amount_string())
        .unwrap_or_else(|_| "overflow".into())
}

pub fn summary_json(run: &RunSummary) -> SummaryJson {
    let n = |c: Class| run.counts.get(&c).copied().unwrap_or(0);
    SummaryJson {
        vendor: run.vendor_id.clone(),
        date: run.day,
        time_zone: run.time_zone.clone(),
        run_id: run.run_id,
        reconciled_at: run.finished_at.to_rfc3339(),
        orders: run.orders,
        vendor_records: run.records,
        counts: CountsJson {
            matched: n(Class::Matched),
            amount_mismatch: n(Class::AmountMismatch),
            currency_mismatch: n(Class::CurrencyMismatch),
            status_mismatch: n(Class::StatusMismatch),
            unmapped_status: n(Class::UnmappedStatus),
            vendor_only: n(Class::VendorOnly),
            internal_only: n(Class::InternalOnly),
            duplicate: n(Class::Duplicate),
        },
        totals: run
            .totals
            .iter()
            .map(|(c, t)| {
                (
                    c.code(),
                    TotalJson {
                        internal_count: t.internal.count,
                        internal_amount: t.internal.amount.amount_string(),
                        vendor_count: t.vendor.count,
                        vendor_amount: t.vendor.amount.amount_string(),
                        variance: variance(t.internal.amount, t.vendor.amount),
                    },
                )
            })
            .collect(),
    }
}

/// The summary as CSV: one row per class, one per currency, and a control row whose count is
/// the sum of the class counts (every vendor record and order lands in exactly one).
pub fn summary_csv(run: &RunSummary) -> String {
    let mut out = String::from(
        "vendor,date,section,item,count,internal_count,internal_amount,vendor_count,vendor_amount,variance\n",
    );
    let (vendor, day) = (csv_cell(&run.vendor_id), run.day);
    let mut total = 0;
    for class in Class::ALL {
        let n = run.counts.get(&class).copied().unwrap_or(0);
        total += n;
        let _ = writeln!(out, "{vendor},{day},class,{},{n},,,,,", class.as_str());
    }
    for (currency, t) in &run.totals {
        let _ = writeln!(
            out,
            "{vendor},{day},currency,{},,{},{},{},{},{}",
            currency.code(),
            t.internal.count,
            t.internal.amount.amount_string(),
            t.vendor.count,
            t.vendor.amount.amount_string(),
            variance(t.internal.amount, t.vendor.amount)
        );
    }
    let _ = writeln!(
        out,
        "{vendor},{day},control,outcomes,{total},{},,{},,",
        run.orders, run.records
    );
    out
}

/// A discrepancy as the reports print it.
#[derive(Serialize)]
pub struct DiscrepancyJson {
    id: i64,
    vendor: String,
    date: NaiveDate,
    class: &'static str,
    state: &'static str,
    key: String,
    order_id: Option<String>,
    internal_amount: Option<String>,
    internal_currency: Option<&'static str>,
    internal_gl_state: Option<&'static str>,
    vendor_order_ids: Option<String>,
    vendor_records: i64,
    vendor_amount: Option<String>,
    vendor_currency: Option<&'static str>,
    vendor_status: Option<String>,
    opened_at: String,
    resolution: Option<String>,
    resolved_by: Option<String>,
    resolved_at: Option<String>,
}

pub fn discrepancy_json(d: &Discrepancy) -> DiscrepancyJson {
    let code = |m: &Option<Money>| m.map(|m| currency_code(m.currency()));
    DiscrepancyJson {
        id: d.id,
        vendor: d.vendor_id.clone(),
        date: d.day,
        class: d.class.as_str(),
        state: d.state.as_str(),
        key: d.item_key.clone(),
        order_id: d.order_id.clone(),
        internal_amount: d.internal_amount.map(|m| m.amount_string()),
        internal_currency: code(&d.internal_amount),
        internal_gl_state: d.internal_gl_state.map(|g| g.as_str()),
        vendor_order_ids: d.vendor_order_ids.clone(),
        vendor_records: d.vendor_records,
        vendor_amount: d.vendor_amount.map(|m| m.amount_string()),
        vendor_currency: code(&d.vendor_amount),
        vendor_status: d.vendor_status.clone(),
        opened_at: d.opened_at.to_rfc3339(),
        resolution: d.resolution.clone(),
        resolved_by: d.resolved_by.clone(),
        resolved_at: d.resolved_at.map(|t| t.to_rfc3339()),
    }
}

fn currency_code(c: Currency) -> &'static str {
    c.code()
}

/// Discrepancies as CSV, with a control row: how many, and the sum of each side per currency.
/// The dashboard's export writes the same table.
pub fn discrepancies_csv(items: &[Discrepancy]) -> String {
    crate::export::tables::discrepancies(items, Vec::new()).csv()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn business_days_follow_the_zone_and_its_clock_changes() {
        let d = |s: &str| NaiveDate::parse_from_str(s, "%Y-%m-%d").unwrap();
        let utc = day_window(d("2026-12-01"), "UTC").unwrap();
        assert_eq!(utc.start.to_rfc3339(), "2026-12-01T00:00:00+00:00");
        assert_eq!(utc.end.to_rfc3339(), "2026-12-02T00:00:00+00:00");
        let ny = day_window(d("2026-12-01"), "America/New_York").unwrap();
        assert_eq!(ny.start.to_rfc3339(), "2026-12-01T05:00:00+00:00");
        // 2026-03-08: New York springs forward, a 23-hour day.
        let short = day_window(d("2026-03-08"), "America/New_York").unwrap();
        assert_eq!((short.end - short.start).num_hours(), 23);
        assert!(day_window(d("2026-12-01"), "Mars/Olympus").is_err());
    }

    #[test]
    fn ranges_are_inclusive_and_bounded() {
        let d = |s: &str| NaiveDate::parse_from_str(s, "%Y-%m-%d").unwrap();
        assert_eq!(days(d("2026-11-30"), d("2026-12-02")).unwrap().len(), 3);
        assert!(days(d("2026-12-02"), d("2026-11-30")).is_err());
        assert!(days(d("2025-01-01"), d("2026-12-02")).is_err());
    }
}
