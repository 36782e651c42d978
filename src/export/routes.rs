//! `GET /export/{table}.{csv|xlsx}?filters`: the dashboard's downloads, for the signed-in user
//! whose role may see that table (the same roles as the server function that shows it).
//!
//! | Table | Filters | Roles |
//! |---|---|---|
//! | `discrepancies` | the queue's: `vendor`, `class`, `state`, `from`, `to`, `currency`, `min_amount`, `max_amount`, `min_age_days`, `assignee`, `sort` | [`access::VIEW_QUEUES`] |
//! | `imports` | — (the log's newest [`LOG_ROWS`]) | [`access::VIEW_IMPORTS`] |
//! | `close` | `vendor`, `date` (both required) | [`access::VIEW_CLOSE`] |
//! | `audit` | actor, action, subject, from, to (the newest [`AUDIT_ROWS`]) | [`access::VIEW_AUDIT`] |
//! | `orders` | `q` (required, as the search) | [`access::LOOKUP_ORDERS`] |
//!
//! A bad or unknown filter is a 400 naming it. Every export is audited (`export`, with the
//! filters, format and row count) before a byte is sent.

use std::collections::BTreeMap;

use app::domain::{FieldError, Role};
use app::server::discrepancies::{storage_filter, QueueFilter};
use app::server::imports::LOG_ROWS;
use app::server::{access, auth, filters, AppState};
use app::storage::audit::{self, AuditEvent};
use app::storage::sessions::SessionUser;
use app::storage::{now_utc, Db, StorageError};
use axum::extract::{Path, Query, State};
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Extension, Router};

use super::{tables, Table};

/// The queue's filters, by query name (see `ui::export::queue_filters`).
const QUEUE_FILTERS: [&str; 11] = [
    "vendor",
    "class",
    "state",
    "from",
    "to",
    "currency",
    "min_amount",
    "max_amount",
    "min_age_days",
    "assignee",
    "sort",
];

/// The queue's fields from an export's query.
fn queue_filter(params: &BTreeMap<String, String>) -> QueueFilter {
    let p = |name: &str| param(params, name).to_string();
    QueueFilter {
        vendor: p("vendor"),
        class: p("class"),
        state: p("state"),
        from: p("from"),
        to: p("to"),
        currency: p("currency"),
        min_amount: p("min_amount"),
        max_amount: p("max_amount"),
        min_age_days: p("min_age_days"),
        assignee: p("assignee"),
        sort: p("sort"),
        page: 0,
    }
}

/// The most audit rows one export holds, newest first (narrow the filters for older ones).
pub const AUDIT_ROWS: i64 = 100_000;

pub fn routes() -> Router<AppState> {
    Router::new().route("/export/{file}", get(export))
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Format {
    Csv,
    Xlsx,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Kind {
    Discrepancies,
    Imports,
    Close,
    Audit,
    Orders,
}

impl Kind {
    fn parse(name: &str) -> Option<Kind> {
        Some(match name {
            "discrepancies" => Kind::Discrepancies,
            "imports" => Kind::Imports,
            "close" => Kind::Close,
            "audit" => Kind::Audit,
            "orders" => Kind::Orders,
            _ => return None,
        })
    }

    fn name(self) -> &'static str {
        match self {
            Kind::Discrepancies => "discrepancies",
            Kind::Imports => "imports",
            Kind::Close => "close",
            Kind::Audit => "audit",
            Kind::Orders => "orders",
        }
    }

    fn roles(self) -> &'static [Role] {
        match self {
            Kind::Discrepancies => access::VIEW_QUEUES,
            Kind::Imports => access::VIEW_IMPORTS,
            Kind::Close => access::VIEW_CLOSE,
            Kind::Audit => access::VIEW_AUDIT,
            Kind::Orders => access::LOOKUP_ORDERS,
        }
    }

    /// The query parameters this table takes, in the order its file name lists them.
    fn filters(self) -> &'static [&'static str] {
        match self {
            Kind::Discrepancies => &QUEUE_FILTERS,
            Kind::Imports => &[],
            Kind::Audit => &["actor", "action", "subject", "from", "to"],
            Kind::Close => &["vendor", "date"],
            Kind::Orders => &["q"],
        }
    }
}

/// Why an export was not made.
#[derive(Debug, thiserror::Error)]
enum ExportError {
    #[error("{0}")]
    BadFilter(FieldError),
    /// A filter the queue's own parsing refused; the message names the field.
    #[error("{0}")]
    Refused(String),
    #[error("{0} not found")]
    NotFound(String),
    #[error(transparent)]
    Internal(#[from] StorageError),
}

impl From<FieldError> for ExportError {
    fn from(e: FieldError) -> Self {
        ExportError::BadFilter(e)
    }
}

fn plain(status: StatusCode, message: &str) -> Response {
    (
        status,
        [(header::CONTENT_TYPE, "text/plain; charset=utf-8")],
        format!("{message}\n"),
    )
        .into_response()
}

impl IntoResponse for ExportError {
    fn into_response(self) -> Response {
        match self {
            ExportError::BadFilter(e) => plain(StatusCode::BAD_REQUEST, &e.to_string()),
            ExportError::Refused(message) => plain(StatusCode::BAD_REQUEST, &message),
            ExportError::NotFound(what) => {
                plain(StatusCode::NOT_FOUND, &format!("{what} not found"))
            }
            ExportError::Internal(e) => {
                tracing::error!(error = %e, "export failed");
                plain(
                    StatusCode::INTERNAL_SERVER_ERROR,
                    "the export could not be made; try again",
                )
            }
        }
    }
}

#[tracing::instrument(skip_all, fields(file = %file))]
async fn export(
    State(state): State<AppState>,
    Path(file): Path<String>,
    Query(params): Query<BTreeMap<String, String>>,
    user: Option<Extension<SessionUser>>,
) -> Response {
    let parsed = file.rsplit_once('.').and_then(|(name, ext)| {
        let format = match ext {
            "csv" => Format::Csv,
            "xlsx" => Format::Xlsx,
            _ => return None,
        };
        Kind::parse(name).map(|kind| (kind, format))
    });
    let Some((kind, format)) = parsed else {
        return plain(
            StatusCode::NOT_FOUND,
            "no such export: use /export/{discrepancies|imports|close|audit|orders}.{csv|xlsx}",
        );
    };
    let action = format!("export_{}", kind.name());
    let user =
        match auth::authorize(Some(&state.db), user.map(|u| u.0), kind.roles(), &action).await {
            Ok(user) => user,
            Err(denied) => return plain(denied.status(), denied.message()),
        };
    if let Some(unknown) = params
        .keys()
        .find(|k| !kind.filters().contains(&k.as_str()))
    {
        let known = match kind.filters() {
            [] => "it takes no filters".to_string(),
            names => format!("use {}", names.join(", ")),
        };
        return ExportError::BadFilter(FieldError::new(
            app::domain::excerpt(unknown),
            format!("is not a filter of this export; {known}"),
        ))
        .into_response();
    }
    let table = match load(&state.db, kind, &params, &user.username).await {
        Ok(table) => table,
        Err(e) => return e.into_response(),
    };

    let now = now_utc();
    let used: BTreeMap<&str, &str> = kind
        .filters()
        .iter()
        .map(|name| (*name, param(&params, name)))
        .filter(|(_, v)| !v.trim().is_empty())
        .collect();
    let event = AuditEvent::new(&user.username, "export", format!("export:{}", kind.name())).after(
        serde_json::json!({
            "format": if format == Format::Csv { "csv" } else { "xlsx" },
            "filters": used,
            "rows": table.rows.len(),
        }),
    );
    if let Err(e) = audit::record(&state.db, &event).await {
        // Nothing leaves unaudited.
        return ExportError::Internal(e).into_response();
    }

    let name = file_name(kind, &used, now, format);
    let disposition = format!("attachment; filename=\"{name}\"");
    match format {
        Format::Csv => (
            [
                (header::CONTENT_TYPE, "text/csv; charset=utf-8".to_string()),
                (header::CONTENT_DISPOSITION, disposition),
            ],
            table.csv(),
        )
            .into_response(),
        Format::Xlsx => match table.xlsx(&now.to_rfc3339()) {
            Ok(bytes) => (
                [
                    (
                        header::CONTENT_TYPE,
                        "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
                            .to_string(),
                    ),
                    (header::CONTENT_DISPOSITION, disposition),
                ],
                bytes,
            )
                .into_response(),
            Err(e) => {
                tracing::error!(error = %format!("{e:#}"), "cannot write a workbook");
                plain(
                    StatusCode::INTERNAL_SERVER_ERROR,
                    "the export could not be made; try again",
                )
            }
        },
    }
}

/// The table's rows, selected exactly as its page selects them.
async fn load(
    db: &Db,
    kind: Kind,
    params: &BTreeMap<String, String>,
    username: &str,
) -> Result<Table, ExportError> {
    let param = |name: &str| param(params, name).to_string();
    let with_filters = |names: &[&'static str]| -> Vec<(&'static str, String)> {
        names
            .iter()
            .map(|n| (*n, param(n).trim().to_string()))
            .filter(|(_, v)| !v.is_empty())
            .collect()
    };
    match kind {
        Kind::Discrepancies => {
            let filter = storage_filter(&queue_filter(params), username).map_err(|e| match e {
                leptos::prelude::ServerFnError::ServerError(message) => {
                    ExportError::Refused(message)
                }
                other => ExportError::Refused(other.to_string()),
            })?;
            let items = app::storage::reconciliation::list(db, &filter).await?;
            Ok(tables::discrepancies(&items, with_filters(kind.filters())))
        }
        Kind::Imports => Ok(tables::imports(
            &app::storage::imports::recent(db, LOG_ROWS).await?,
        )),
        Kind::Audit => {
            let filter = app::server::audit::storage_filter(
                &param("actor"),
                &param("action"),
                &param("subject"),
                &param("from"),
                &param("to"),
            )
            .map_err(|e| match e {
                leptos::prelude::ServerFnError::ServerError(message) => {
                    ExportError::Refused(message)
                }
                other => ExportError::Refused(other.to_string()),
            })?;
            Ok(tables::audit(
                &audit::search(db, &filter, 0, AUDIT_ROWS).await?,
            ))
        }
        Kind::Close => {
            let vendor = filters::vendor(&param("vendor"))?;
            let date = filters::date("date", &param("date"))?;
            match app::storage::vendors::get_vendor(db, &vendor).await {
                Ok(_) => {}
                Err(StorageError::NotFound { what }) => return Err(ExportError::NotFound(what)),
                Err(e) => return Err(e.into()),
            }
            let totals = app::storage::reconciliation::day_totals(db, vendor.as_str(), date)
                .await?
                .unwrap_or_default();
            Ok(tables::close_totals(vendor.as_str(), date, &totals))
        }
        Kind::Orders => {
            let q = param("q");
            let q = q.trim();
            if q.is_empty() || q.chars().count() > 200 {
                return Err(FieldError::new(
                    "q",
                    "give an order id, idempotency key, customer id or vendor order id (at most 200 characters)",
                )
                .into());
            }
            let found =
                app::storage::orders::search(db, q, app::server::lookup::MAX_RESULTS).await?;
            Ok(tables::orders(&found, q))
        }
    }
}

/// A query parameter's value; empty when absent.
pub(crate) fn param<'a>(params: &'a BTreeMap<String, String>, name: &str) -> &'a str {
    params.get(name).map(String::as_str).unwrap_or("")
}

/// `giftrecon-discrepancies-acme-open-2026-12-01-20261205T013000Z.csv`: what, which, when.
fn file_name(
    kind: Kind,
    used: &BTreeMap<&str, &str>,
    at: chrono::DateTime<chrono::Utc>,
    format: Format,
) -> String {
    let mut parts = vec![format!("giftrecon-{}", kind.name())];
    for name in kind.filters() {
        if let Some(value) = used.get(name) {
            let safe: String = value
                .trim()
                .chars()
                .take(40)
                .map(|c| {
                    if c.is_ascii_alphanumeric() || c == '-' || c == '_' {
                        c
                    } else {
                        '_'
                    }
                })
                .collect();
            parts.push(safe);
        }
    }
    parts.push(at.format("%Y%m%dT%H%M%SZ").to_string());
    let ext = match format {
        Format::Csv => "csv",
        Format::Xlsx => "xlsx",
    };
    format!("{}.{ext}", parts.join("-"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_queue_page_and_its_export_name_the_same_filters() {
        let q = QueueFilter {
            vendor: "acme".into(),
            class: "vendor_only".into(),
            state: "open".into(),
            from: "2026-12-01".into(),
            to: "2026-12-02".into(),
            currency: "USD".into(),
            min_amount: "1.00".into(),
            max_amount: "2.00".into(),
            min_age_days: "3".into(),
            assignee: "me".into(),
            sort: "amount".into(),
            page: 0,
        };
        let sent = app::ui::export::queue_filters(&q);
        let names: Vec<&str> = sent.iter().map(|(n, _)| *n).collect();
        assert_eq!(names, QUEUE_FILTERS);
        let params: BTreeMap<String, String> =
            sent.into_iter().map(|(n, v)| (n.to_string(), v)).collect();
        assert_eq!(queue_filter(&params), q);
    }

    #[test]
    fn file_names_say_what_which_and_when() {
        let at = chrono::DateTime::parse_from_rfc3339("2026-12-05T01:30:00Z")
            .unwrap()
            .with_timezone(&chrono::Utc);
        let used = BTreeMap::from([("vendor", "acme"), ("to", "2026-12-01"), ("state", "open")]);
        assert_eq!(
            file_name(Kind::Discrepancies, &used, at, Format::Csv),
            "giftrecon-discrepancies-acme-open-2026-12-01-20261205T013000Z.csv"
        );
        let odd = BTreeMap::from([("q", "a\"b/c d")]);
        assert_eq!(
            file_name(Kind::Orders, &odd, at, Format::Xlsx),
            "giftrecon-orders-a_b_c_d-20261205T013000Z.xlsx"
        );
    }
}
