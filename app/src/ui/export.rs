//! "Export CSV" and "Export XLSX" for any dashboard table: links to the server's
//! `/export/{table}.{csv|xlsx}` with the page's current filters, so the file holds exactly the
//! rows the filters select (every page of them), with control totals.

use leptos::prelude::*;

use crate::server::discrepancies::QueueFilter;

/// The queue's filters by the names the discrepancy export takes (every field but the page).
pub fn queue_filters(q: &QueueFilter) -> Vec<(&'static str, String)> {
    vec![
        ("vendor", q.vendor.clone()),
        ("class", q.class.clone()),
        ("state", q.state.clone()),
        ("from", q.from.clone()),
        ("to", q.to.clone()),
        ("currency", q.currency.clone()),
        ("min_amount", q.min_amount.clone()),
        ("max_amount", q.max_amount.clone()),
        ("min_age_days", q.min_age_days.clone()),
        ("assignee", q.assignee.clone()),
        ("sort", q.sort.clone()),
    ]
}

/// The two download links of a table. `table` is `discrepancies`, `imports`, `close`, `audit`
/// or `orders`; `filters` are the page's current filter values by query name (empty ones are
/// left out, meaning "any", as on the page).
#[component]
pub fn ExportLinks(
    table: &'static str,
    #[prop(into)] filters: Signal<Vec<(&'static str, String)>>,
) -> impl IntoView {
    let href = move |ext: &'static str| export_href(table, ext, &filters.get());
    view! {
        <p class="exports" data-testid=format!("export-{table}")>
            // `download` and `rel="external"`: a file, not a page of the app's router.
            <a href=move || href("csv") download="" rel="external">"Export CSV"</a>
            " "
            <a href=move || href("xlsx") download="" rel="external">"Export XLSX"</a>
        </p>
    }
}

/// `/export/discrepancies.csv?vendor=acme&state=open`
pub fn export_href(table: &str, ext: &str, filters: &[(&'static str, String)]) -> String {
    let query: Vec<String> = filters
        .iter()
        .filter(|(_, value)| !value.trim().is_empty())
        .map(|(name, value)| format!("{name}={}", query_encode(value.trim())))
        .collect();
    if query.is_empty() {
        format!("/export/{table}.{ext}")
    } else {
        format!("/export/{table}.{ext}?{}", query.join("&"))
    }
}

/// Percent-encodes everything but the unreserved characters of RFC 3986.
pub fn query_encode(value: &str) -> String {
    let mut out = String::with_capacity(value.len());
    for byte in value.bytes() {
        if byte.is_ascii_alphanumeric() || matches!(byte, b'-' | b'_' | b'.' | b'~') {
            out.push(byte as char);
        } else {
            out.push_str(&format!("%{byte:02X}"));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn links_carry_the_filters_encoded_and_skip_empty_ones() {
        let filters = vec![
            ("vendor", "acme".to_string()),
            ("class", String::new()),
            ("q", "a b&c=d/é".to_string()),
        ];
        assert_eq!(
            export_href("orders", "csv", &filters),
            "/export/orders.csv?vendor=acme&q=a%20b%26c%3Dd%2F%C3%A9"
        );
        assert_eq!(export_href("imports", "xlsx", &[]), "/export/imports.xlsx");
    }
}
