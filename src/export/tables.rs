//! Each dashboard table as an export [`Table`]: the same rows, in the same order, as the page
//! (and, for discrepancies, the reconciliation API) shows them.

use app::domain::matching::CurrencyTotals;
use app::domain::{Currency, Money};
use app::storage::audit::AuditRow;
use app::storage::imports::ImportRecord;
use app::storage::orders::Order;
use app::storage::reconciliation::Discrepancy;

use super::{amount, integer, text, Cell, Column, Table};

fn stamp(t: chrono::DateTime<chrono::Utc>) -> String {
    t.to_rfc3339()
}

const DISCREPANCY_COLUMNS: &[Column] = &[
    integer("id"),
    text("vendor"),
    text("date"),
    text("class"),
    text("state"),
    text("key"),
    text("order_id"),
    amount("internal_amount", "internal"),
    text("internal_currency"),
    text("internal_gl_state"),
    text("vendor_order_ids"),
    integer("vendor_records"),
    amount("vendor_amount", "vendor"),
    text("vendor_currency"),
    text("vendor_status"),
    text("opened_at"),
    text("resolution"),
    text("resolved_by"),
    text("resolved_at"),
];

/// Discrepancies: the queue's export and `GET /api/v1/reconciliation/discrepancies?format=csv`.
pub fn discrepancies(items: &[Discrepancy], filters: Vec<(&'static str, String)>) -> Table {
    let code = |m: &Option<Money>| Cell::from(m.map(|m| m.currency().code()));
    let rows = items
        .iter()
        .map(|d| {
            vec![
                d.id.into(),
                d.vendor_id.as_str().into(),
                d.day.to_string().into(),
                d.class.as_str().into(),
                d.state.as_str().into(),
                d.item_key.as_str().into(),
                d.order_id.clone().into(),
                d.internal_amount.into(),
                code(&d.internal_amount),
                d.internal_gl_state.map(|g| g.as_str()).into(),
                d.vendor_order_ids.clone().into(),
                d.vendor_records.into(),
                d.vendor_amount.into(),
                code(&d.vendor_amount),
                d.vendor_status.clone().into(),
                stamp(d.opened_at).into(),
                d.resolution.clone().into(),
                d.resolved_by.clone().into(),
                d.resolved_at.map(stamp).into(),
            ]
        })
        .collect();
    Table {
        noun: "discrepancies",
        sheet: "Discrepancies",
        columns: DISCREPANCY_COLUMNS,
        rows,
        filters,
    }
}

const IMPORT_COLUMNS: &[Column] = &[
    integer("id"),
    text("at"),
    text("kind"),
    text("vendor"),
    text("file_name"),
    text("sha256"),
    integer("rows"),
    integer("inserted"),
    integer("updated"),
    integer("unchanged"),
    text("by"),
];

/// The import log, newest first.
pub fn imports(records: &[ImportRecord]) -> Table {
    let rows = records
        .iter()
        .map(|r| {
            vec![
                r.id.into(),
                stamp(r.created_at).into(),
                r.kind.as_str().into(),
                r.vendor_id.as_str().into(),
                r.file_name.as_str().into(),
                r.sha256.as_str().into(),
                r.rows.into(),
                r.inserted.into(),
                r.updated.into(),
                r.unchanged.into(),
                r.actor.as_str().into(),
            ]
        })
        .collect();
    Table {
        noun: "imports",
        sheet: "Imports",
        columns: IMPORT_COLUMNS,
        rows,
        filters: Vec::new(),
    }
}

const CLOSE_COLUMNS: &[Column] = &[
    text("vendor"),
    text("date"),
    text("currency"),
    integer("internal_count"),
    amount("internal_amount", "internal"),
    integer("vendor_count"),
    amount("vendor_amount", "vendor"),
    amount("variance", "variance"),
];

/// A vendor's day at the close: totals per currency, ours beside the vendor's, and the variance
/// (vendor minus ours).
pub fn close_totals(
    vendor: &str,
    date: chrono::NaiveDate,
    totals: &std::collections::BTreeMap<Currency, CurrencyTotals>,
) -> Table {
    let count = |n: u64| Cell::Integer(i64::try_from(n).unwrap_or(i64::MAX));
    let rows = totals
        .iter()
        .map(|(currency, t)| {
            vec![
                vendor.into(),
                date.to_string().into(),
                currency.code().into(),
                count(t.internal.count),
                Cell::Amount(t.internal.amount),
                count(t.vendor.count),
                Cell::Amount(t.vendor.amount),
                t.variance()
                    .map(Cell::Amount)
                    .unwrap_or_else(|_| "overflow".into()),
            ]
        })
        .collect();
    Table {
        noun: "currencies",
        sheet: "Daily close",
        columns: CLOSE_COLUMNS,
        rows,
        filters: vec![("vendor", vendor.to_string()), ("date", date.to_string())],
    }
}

const AUDIT_COLUMNS: &[Column] = &[
    integer("id"),
    text("at"),
    text("actor"),
    text("action"),
    text("subject"),
    text("before"),
    text("after"),
    text("hash"),
];

/// Audit rows, newest first.
pub fn audit(rows: &[AuditRow]) -> Table {
    let rows = rows
        .iter()
        .map(|r| {
            vec![
                r.id.into(),
                stamp(r.at).into(),
                r.actor.as_str().into(),
                r.action.as_str().into(),
                r.subject.as_str().into(),
                r.before_json.clone().into(),
                r.after_json.clone().into(),
                r.hash.as_str().into(),
            ]
        })
        .collect();
    Table {
        noun: "audit rows",
        sheet: "Audit log",
        columns: AUDIT_COLUMNS,
        rows,
        filters: Vec::new(),
    }
}

const ORDER_COLUMNS: &[Column] = &[
    text("id"),
    text("idempotency_key"),
    text("vendor"),
    text("customer_id"),
    amount("amount", "amount"),
    text("currency"),
    text("status"),
    text("gl_state"),
    text("vendor_order_id"),
    text("created_at"),
];

/// Orders found by a search.
pub fn orders(found: &[Order], query: &str) -> Table {
    let rows = found
        .iter()
        .map(|o| {
            vec![
                o.id.as_str().into(),
                o.idempotency_key.as_str().into(),
                o.vendor_id.as_str().into(),
                o.customer_id.as_str().into(),
                Cell::Amount(o.amount),
                o.amount.currency().code().into(),
                o.submission.as_str().into(),
                o.gl_state.as_str().into(),
                o.vendor_order_id.clone().into(),
                stamp(o.created_at).into(),
            ]
        })
        .collect();
    Table {
        noun: "orders",
        sheet: "Orders",
        columns: ORDER_COLUMNS,
        rows,
        filters: vec![("q", query.to_string())],
    }
}
