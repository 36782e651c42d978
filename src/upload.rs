//! Files uploaded from the dashboard's Imports page, for a signed-in finance user:
//! `POST /upload/vendor-file?vendor=V&name=N[&format=csv|json]` and
//! `POST /upload/orders-file?vendor=V&name=N`, the body being the file itself.
//!
//! The body is streamed to a temporary file (never held in memory) and handed to the same
//! importers as the CLI and the API, so a file is refused whole with its bad lines named, and an
//! accepted one is written in one transaction with its import-log row and audit entry. Like the
//! server functions, these routes are cross-site checked at the edge ([`crate::auth`]): Origin
//! and Sec-Fetch-Site must be this site, and the request must carry `X-Requested-With`, which a
//! cross-site form cannot send.

use std::collections::BTreeMap;

use app::domain::FieldError;
use app::server::imports::{
    RejectedLine, UploadCounts, UploadOutcome, ORDERS_UPLOAD_PATH, VENDOR_UPLOAD_PATH,
};
use app::server::{access, auth, filters, AppState};
use app::storage::sessions::SessionUser;
use app::storage::StorageError;
use axum::body::Body;
use axum::extract::{Query, State};
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use axum::{Extension, Json, Router};
use futures::StreamExt;
use tokio::io::AsyncWriteExt;

use crate::export::routes::param;
use crate::file_import::ImportError;
use crate::vendor_import::{self, FileFormat};

/// Largest file accepted from the browser or the API (a million rows is about 150 MB).
pub const MAX_FILE_BYTES: u64 = 1 << 30;

/// The owner orders uploaded from the dashboard are keyed under: the same as
/// `giftrecon import orders` uses by default, so a file imported either way is one import.
pub const ORDERS_OWNER: &str = "import";

pub fn routes() -> Router<AppState> {
    Router::new()
        .route(VENDOR_UPLOAD_PATH, post(upload_vendor_file))
        .route(ORDERS_UPLOAD_PATH, post(upload_orders_file))
}

/// Why a body could not be kept.
#[derive(Debug, thiserror::Error)]
pub enum SpoolError {
    #[error("the file is larger than {MAX_FILE_BYTES} bytes")]
    TooLarge,
    #[error("the upload was interrupted: {0}")]
    Read(String),
    #[error("cannot store the upload: {0}")]
    Io(#[from] std::io::Error),
}

/// Streams a request body to a temporary file, at most `max` bytes; the file is removed when the
/// returned handle drops.
pub async fn spool(body: Body, max: u64) -> Result<tempfile::NamedTempFile, SpoolError> {
    let spool = tempfile::NamedTempFile::new()?;
    let mut file = tokio::fs::File::from_std(spool.reopen()?);
    let mut stream = body.into_data_stream();
    let mut size = 0u64;
    while let Some(chunk) = stream.next().await {
        let chunk = chunk.map_err(|e| SpoolError::Read(e.to_string()))?;
        size += chunk.len() as u64;
        if size > max {
            return Err(SpoolError::TooLarge);
        }
        file.write_all(&chunk).await?;
    }
    file.flush().await?;
    Ok(spool)
}

fn answer(status: StatusCode, outcome: UploadOutcome) -> Response {
    (status, Json(outcome)).into_response()
}

fn refusal(status: StatusCode, message: impl Into<String>) -> Response {
    answer(
        status,
        UploadOutcome {
            message: message.into(),
            ..UploadOutcome::default()
        },
    )
}

fn bad_field(e: FieldError) -> Response {
    refusal(StatusCode::BAD_REQUEST, e.to_string())
}

/// The checks both uploads share: who, which vendor, what name; then the body, spooled.
async fn receive(
    state: &AppState,
    user: Option<Extension<SessionUser>>,
    action: &str,
    params: &BTreeMap<String, String>,
    body: Body,
) -> Result<(SessionUser, String, String, tempfile::NamedTempFile), Response> {
    let user = auth::authorize(
        Some(&state.db),
        user.map(|u| u.0),
        access::IMPORT_FILES,
        action,
    )
    .await
    .map_err(|denied| refusal(denied.status(), denied.message()))?;
    let vendor = filters::vendor(param(params, "vendor")).map_err(bad_field)?;
    let name = param(params, "name").trim().to_string();
    if name.is_empty() || name.chars().count() > 255 || name.chars().any(char::is_control) {
        return Err(bad_field(FieldError::new(
            "name",
            "must be the file's name, 1 to 255 characters",
        )));
    }
    match app::storage::vendors::get_vendor(&state.db, &vendor).await {
        Ok(_) => {}
        Err(StorageError::NotFound { what }) => {
            return Err(refusal(StatusCode::NOT_FOUND, format!("{what} not found")))
        }
        Err(e) => {
            tracing::error!(error = %e, "upload: cannot read the vendor");
            return Err(refusal(
                StatusCode::SERVICE_UNAVAILABLE,
                "the upload could not be stored; try again",
            ));
        }
    }
    let file = spool(body, MAX_FILE_BYTES).await.map_err(|e| match e {
        SpoolError::TooLarge => refusal(
            StatusCode::PAYLOAD_TOO_LARGE,
            format!("{e}; import larger files with the giftrecon CLI"),
        ),
        SpoolError::Read(_) => refusal(StatusCode::BAD_REQUEST, e.to_string()),
        SpoolError::Io(_) => {
            tracing::error!(error = %e, "upload: cannot spool");
            refusal(
                StatusCode::INTERNAL_SERVER_ERROR,
                "the upload could not be stored; try again",
            )
        }
    })?;
    Ok((user, vendor.to_string(), name, file))
}

/// A refused or failed import as the page shows it.
fn import_failed(e: ImportError) -> Response {
    match e {
        ImportError::Refused {
            file,
            reason,
            lines,
            bad_rows,
        } => {
            let rejected: Vec<RejectedLine> = lines
                .iter()
                .map(|l| RejectedLine {
                    line: l.line,
                    reason: l.reason.clone(),
                })
                .collect();
            let more_rejected = bad_rows.saturating_sub(rejected.len() as u64);
            let message = ImportError::Refused {
                file,
                reason,
                lines,
                bad_rows,
            }
            .to_string();
            answer(
                StatusCode::UNPROCESSABLE_ENTITY,
                UploadOutcome {
                    message,
                    imported: None,
                    rejected,
                    more_rejected,
                },
            )
        }
        ImportError::Other(e) => {
            tracing::error!(error = %format!("{e:#}"), "upload: import failed");
            refusal(
                StatusCode::INTERNAL_SERVER_ERROR,
                "the file could not be imported; nothing was stored; try again",
            )
        }
    }
}

#[tracing::instrument(skip_all)]
async fn upload_vendor_file(
    State(state): State<AppState>,
    Query(params): Query<BTreeMap<String, String>>,
    user: Option<Extension<SessionUser>>,
    headers: HeaderMap,
    body: Body,
) -> Response {
    let format = match params.get("format").map(String::as_str) {
        Some(f) if !f.trim().is_empty() => match FileFormat::parse(f) {
            Ok(f) => Some(f),
            Err(e) => return bad_field(FieldError::new("format", e)),
        },
        _ => None,
    };
    let (user, vendor, name, file) =
        match receive(&state, user, "upload_vendor_file", &params, body).await {
            Ok(received) => received,
            Err(response) => return response,
        };
    let format = format.unwrap_or_else(|| {
        let json_type = headers
            .get(header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .is_some_and(|t| t.starts_with("application/json"));
        if json_type {
            FileFormat::Json
        } else {
            FileFormat::of_path(std::path::Path::new(&name))
        }
    });
    match vendor_import::import_vendor_file(
        &state.db,
        &vendor,
        file.path(),
        &name,
        format,
        None,
        &user.username,
    )
    .await
    {
        Ok(summary) => {
            let r = &summary.0;
            let count = |n: i64| u64::try_from(n).unwrap_or(0);
            answer(
                StatusCode::CREATED,
                UploadOutcome {
                    message: summary.to_string(),
                    imported: Some(UploadCounts {
                        file_name: r.file_name.clone(),
                        rows: count(r.rows),
                        inserted: count(r.inserted),
                        updated: count(r.updated),
                        unchanged: count(r.unchanged),
                    }),
                    ..UploadOutcome::default()
                },
            )
        }
        Err(e) => import_failed(e),
    }
}

#[tracing::instrument(skip_all)]
async fn upload_orders_file(
    State(state): State<AppState>,
    Query(params): Query<BTreeMap<String, String>>,
    user: Option<Extension<SessionUser>>,
    body: Body,
) -> Response {
    let (user, vendor, name, file) =
        match receive(&state, user, "upload_orders_file", &params, body).await {
            Ok(received) => received,
            Err(response) => return response,
        };
    match crate::import::import_orders(
        &state.db,
        file.path(),
        &name,
        &vendor,
        ORDERS_OWNER,
        &user.username,
    )
    .await
    {
        Ok(summary) => answer(
            StatusCode::CREATED,
            UploadOutcome {
                message: format!("{name}: {summary}"),
                imported: Some(UploadCounts {
                    file_name: name.clone(),
                    rows: summary.rows,
                    inserted: summary.created,
                    updated: 0,
                    unchanged: summary.already_imported,
                }),
                ..UploadOutcome::default()
            },
        ),
        Err(e) => import_failed(e),
    }
}
