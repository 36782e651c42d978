//! Vendor files and reconciliation over the JSON API:
//! `POST /api/v1/vendors/{vendor}/files`, `GET /api/v1/reconciliation/summary` and
//! `GET /api/v1/reconciliation/discrepancies`.

use app::domain::FieldError;
use app::storage::reconciliation::{self, DiscrepancyState, Filter};
use app::storage::StorageError;
use axum::body::Body;
use axum::extract::{Path, Query, State};
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use chrono::NaiveDate;
use serde::Deserialize;

use super::problem::{internal, Problem};
use super::{authenticate, ApiState};
use crate::file_import::ImportError;
use crate::upload::SpoolError;
use crate::vendor_import::{self, FileFormat};

pub use crate::upload::MAX_FILE_BYTES;

#[derive(Deserialize)]
pub struct FileParams {
    /// csv or json; otherwise from the Content-Type, else CSV.
    format: Option<String>,
    /// The file's name, for the import log.
    name: Option<String>,
}

fn bad_request(field: &str, reason: impl Into<String>) -> Problem {
    Problem::invalid(
        StatusCode::BAD_REQUEST,
        vec![FieldError::new(field, reason)],
    )
}

/// Streams the upload to a temporary file (the import reads it twice), then imports it.
pub async fn upload_vendor_file(
    State(state): State<ApiState>,
    Path(vendor): Path<String>,
    Query(params): Query<FileParams>,
    headers: HeaderMap,
    body: Body,
) -> Result<Response, Problem> {
    let owner = authenticate(&state.db, &headers).await?;
    let format = match params.format.as_deref() {
        Some(f) => FileFormat::parse(f).map_err(|e| bad_request("format", e))?,
        None => match headers
            .get(header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
        {
            Some(t) if t.starts_with("application/json") => FileFormat::Json,
            _ => FileFormat::Csv,
        },
    };
    let name = params
        .name
        .filter(|n| !n.trim().is_empty())
        .unwrap_or_else(|| {
            format!(
                "upload.{}",
                if format == FileFormat::Json {
                    "json"
                } else {
                    "csv"
                }
            )
        });
    if name.len() > 255 || name.chars().any(char::is_control) {
        return Err(bad_request(
            "name",
            "must be a file name of at most 255 characters",
        ));
    }

    let spool = crate::upload::spool(body, MAX_FILE_BYTES)
        .await
        .map_err(|e| match e {
            SpoolError::TooLarge => Problem::new(
                StatusCode::PAYLOAD_TOO_LARGE,
                "/problems/too-large",
                "File too large",
                format!("vendor files over the API may be at most {MAX_FILE_BYTES} bytes; import larger ones with `giftrecon import vendor`"),
            ),
            SpoolError::Read(reason) => bad_request("body", format!("could not be read: {reason}")),
            SpoolError::Io(e) => internal(e),
        })?;

    let actor = format!("token:{}", owner.name);
    match vendor_import::import_vendor_file(
        &state.db,
        &vendor,
        spool.path(),
        &name,
        format,
        None,
        &actor,
    )
    .await
    {
        Ok(summary) => Ok((StatusCode::CREATED, axum::Json(summary.0)).into_response()),
        Err(ImportError::Refused {
            file,
            reason,
            lines,
            bad_rows,
        }) => {
            let mut errors: Vec<FieldError> = lines
                .iter()
                .map(|l| FieldError::new(format!("line {}", l.line), l.reason.clone()))
                .collect();
            if let Some(reason) = &reason {
                errors.push(FieldError::new("file", reason.clone()));
            }
            let detail = ImportError::Refused {
                file,
                reason,
                lines,
                bad_rows,
            }
            .to_string();
            Err(Problem {
                detail,
                ..Problem::invalid(StatusCode::UNPROCESSABLE_ENTITY, errors)
            })
        }
        Err(ImportError::Other(e)) => Err(match e.downcast_ref::<StorageError>() {
            Some(StorageError::NotFound { what }) => Problem::not_found(what),
            _ if e.chain().any(|c| c.to_string().contains("vendor id")) => {
                bad_request("vendor", format!("{e:#}"))
            }
            _ => internal(format!("{e:#}")),
        }),
    }
}

#[derive(Deserialize)]
pub struct DayParams {
    vendor: Option<String>,
    date: Option<String>,
    format: Option<String>,
    class: Option<String>,
    state: Option<String>,
}

fn day_params(params: &DayParams) -> Result<(String, NaiveDate), Problem> {
    let mut errors = Vec::new();
    let vendor = params.vendor.clone().filter(|v| !v.trim().is_empty());
    if vendor.is_none() {
        errors.push(FieldError::new("vendor", "is required"));
    }
    let date = match params.date.as_deref() {
        None => {
            errors.push(FieldError::new("date", "is required (YYYY-MM-DD)"));
            None
        }
        Some(d) => NaiveDate::parse_from_str(d.trim(), "%Y-%m-%d")
            .map_err(|_| {
                errors.push(FieldError::new(
                    "date",
                    format!("{d:?} is not a date (YYYY-MM-DD)"),
                ))
            })
            .ok(),
    };
    match (vendor, date) {
        (Some(v), Some(d)) if errors.is_empty() => Ok((v, d)),
        _ => Err(Problem::invalid(StatusCode::BAD_REQUEST, errors)),
    }
}

fn not_reconciled(e: anyhow::Error) -> Problem {
    match e.downcast_ref::<StorageError>() {
        Some(StorageError::NotFound { what }) => Problem::not_found(what),
        Some(_) => internal(format!("{e:#}")),
        None => Problem::new(
            StatusCode::NOT_FOUND,
            "/problems/not-reconciled",
            "Not reconciled",
            format!("{e:#}"),
        ),
    }
}

/// `GET /api/v1/reconciliation/summary?vendor=V&date=D`
pub async fn summary(
    State(state): State<ApiState>,
    Query(params): Query<DayParams>,
    headers: HeaderMap,
) -> Result<Response, Problem> {
    authenticate(&state.db, &headers).await?;
    let (vendor, date) = day_params(&params)?;
    let run = crate::reconcile::summary_of(&state.db, &vendor, date)
        .await
        .map_err(not_reconciled)?;
    Ok(axum::Json(crate::reconcile::summary_json(&run)).into_response())
}

/// `GET /api/v1/reconciliation/discrepancies?vendor=V&date=D[&format=csv][&class=..][&state=..]`
pub async fn discrepancies(
    State(state): State<ApiState>,
    Query(params): Query<DayParams>,
    headers: HeaderMap,
) -> Result<Response, Problem> {
    authenticate(&state.db, &headers).await?;
    let (vendor, date) = day_params(&params)?;
    let class = params
        .class
        .as_deref()
        .map(|c| {
            app::domain::matching::Class::ALL
                .into_iter()
                .find(|k| k.as_str() == c)
                .ok_or_else(|| bad_request("class", format!("{c:?} is not a class")))
        })
        .transpose()?;
    let state_filter = params
        .state
        .as_deref()
        .map(|s| {
            [
                DiscrepancyState::Open,
                DiscrepancyState::Resolved,
                DiscrepancyState::Cleared,
            ]
            .into_iter()
            .find(|k| k.as_str() == s)
            .ok_or_else(|| bad_request("state", format!("{s:?} is not open, resolved or cleared")))
        })
        .transpose()?;
    let csv = match params.format.as_deref() {
        None | Some("json") => false,
        Some("csv") => true,
        Some(other) => return Err(bad_request("format", format!("{other:?}: use json or csv"))),
    };
    crate::reconcile::summary_of(&state.db, &vendor, date)
        .await
        .map_err(not_reconciled)?;
    let items = reconciliation::list(
        &state.db,
        &Filter {
            vendor_id: Some(vendor),
            from: Some(date),
            to: Some(date),
            class,
            state: state_filter,
            ..Default::default()
        },
    )
    .await
    .map_err(internal)?;
    if csv {
        return Ok((
            [(header::CONTENT_TYPE, "text/csv; charset=utf-8")],
            crate::reconcile::discrepancies_csv(&items),
        )
            .into_response());
    }
    let json: Vec<_> = items
        .iter()
        .map(crate::reconcile::discrepancy_json)
        .collect();
    Ok(axum::Json(json).into_response())
}
