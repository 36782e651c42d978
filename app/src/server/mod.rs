//! Server functions: thin wrappers that authorize, call one storage or domain function, and map
//! the result to a wire type. They compile to HTTP stubs in the browser bundle.

use leptos::prelude::*;
use serde::{Deserialize, Serialize};

#[cfg(feature = "ssr")]
pub mod password;
#[cfg(feature = "ssr")]
mod state;
#[cfg(feature = "ssr")]
pub use state::AppState;

/// What the overview shows about the installation itself.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct InstallationSummary {
    pub version: String,
    pub database: String,
    pub vendors: usize,
    pub users: usize,
}

/// A vendor as the dashboard shows it. Secrets are never sent, only how many are active.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct VendorView {
    pub id: String,
    pub kind: String,
    pub base_url: Option<String>,
    pub active_secrets: i64,
    pub mapped_statuses: usize,
    pub created_at: String,
}

#[server]
pub async fn system_status() -> Result<InstallationSummary, ServerFnError> {
    let state = AppState::from_context()?;
    let vendors = crate::storage::vendors::list_vendors(&state.db)
        .await
        .map_err(state::internal)?;
    let users = crate::storage::users::list_users(&state.db)
        .await
        .map_err(state::internal)?;
    Ok(InstallationSummary {
        version: env!("CARGO_PKG_VERSION").to_string(),
        database: state.db.backend().label().to_string(),
        vendors: vendors.len(),
        users: users.len(),
    })
}

#[server]
pub async fn list_vendors() -> Result<Vec<VendorView>, ServerFnError> {
    let state = AppState::from_context()?;
    let vendors = crate::storage::vendors::list_vendors(&state.db)
        .await
        .map_err(state::internal)?;
    Ok(vendors
        .into_iter()
        .map(|v| VendorView {
            id: v.id.to_string(),
            kind: v.kind.to_string(),
            base_url: v.base_url,
            active_secrets: v.active_secrets,
            mapped_statuses: v.status_mapping.iter().count(),
            created_at: v.created_at.format("%Y-%m-%d %H:%M UTC").to_string(),
        })
        .collect())
}
