//! The import log: every vendor file and orders file imported, newest first.

use leptos::prelude::*;
use leptos::server_fn::codec::Json;
use serde::{Deserialize, Serialize};

#[cfg(feature = "ssr")]
use crate::server::{access, auth, state, AppState};

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ImportView {
    pub id: i64,
    pub kind: String,
    pub vendor: String,
    pub file_name: String,
    pub sha256: String,
    pub rows: i64,
    pub inserted: i64,
    pub updated: i64,
    pub unchanged: i64,
    pub actor: String,
    pub at: String,
}

/// How many imports the log shows (and exports).
pub const LOG_ROWS: i64 = 200;

/// Where the dashboard uploads files (session-authenticated, finance only): the body is the file.
/// `?vendor=V&name=N` (and `&format=csv|json` for vendor files).
pub const VENDOR_UPLOAD_PATH: &str = "/upload/vendor-file";
pub const ORDERS_UPLOAD_PATH: &str = "/upload/orders-file";

/// What the server answers to an upload: what was imported, or why nothing was.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct UploadOutcome {
    /// One sentence for the page: what the import did, or why nothing was imported.
    pub message: String,
    /// The counts when the file was imported.
    pub imported: Option<UploadCounts>,
    /// Each rejected line with its reason (the first 100); nothing was stored.
    pub rejected: Vec<RejectedLine>,
    /// Bad rows beyond those listed.
    pub more_rejected: u64,
}

/// What an accepted file did, in the import log's terms.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct UploadCounts {
    pub file_name: String,
    pub rows: u64,
    pub inserted: u64,
    pub updated: u64,
    pub unchanged: u64,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct RejectedLine {
    pub line: u64,
    pub reason: String,
}

/// The most recent imports (at most [`LOG_ROWS`]).
#[server(input = Json)]
pub async fn list_imports() -> Result<Vec<ImportView>, ServerFnError> {
    auth::require(access::VIEW_IMPORTS, "list_imports").await?;
    let app = AppState::from_context()?;
    let rows = crate::storage::imports::recent(&app.db, LOG_ROWS)
        .await
        .map_err(state::internal)?;
    Ok(rows
        .into_iter()
        .map(|r| ImportView {
            id: r.id,
            kind: r.kind.replace('_', " "),
            vendor: r.vendor_id,
            file_name: r.file_name,
            sha256: r.sha256,
            rows: r.rows,
            inserted: r.inserted,
            updated: r.updated,
            unchanged: r.unchanged,
            actor: r.actor,
            at: r.created_at.format("%Y-%m-%d %H:%M:%S UTC").to_string(),
        })
        .collect())
}
