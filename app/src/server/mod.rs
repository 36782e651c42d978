//! Server functions: thin wrappers that authorize, call one storage or domain function, and map
//! the result to a wire type. They compile to HTTP stubs in the browser bundle.

use leptos::prelude::*;
use leptos::server_fn::codec::Json;
use serde::{Deserialize, Serialize};

use crate::domain::Role;

pub mod admin;
pub mod audit;
#[cfg(feature = "ssr")]
pub mod auth;
pub mod close;
pub mod discrepancies;
#[cfg(feature = "ssr")]
pub mod filters;
pub mod imports;
pub mod lookup;
pub mod overview;
#[cfg(feature = "ssr")]
pub mod password;
#[cfg(feature = "ssr")]
mod state;
pub mod vendors;
#[cfg(feature = "ssr")]
pub use state::AppState;
pub use vendors::{list_vendors, ListVendors, VendorView};

/// What the overview shows about the installation itself.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct InstallationSummary {
    pub version: String,
    pub database: String,
    pub vendors: usize,
    pub users: usize,
}

/// Who may call each server function. Checked on the server by [`auth::require`].
pub mod access {
    use crate::domain::Role;

    /// Every signed-in user: the overview.
    pub const SYSTEM_STATUS: &[Role] = &Role::ALL;
    /// Vendor configuration is for admins and finance; support only looks up orders and queues.
    pub const LIST_VENDORS: &[Role] = &[Role::Admin, Role::FinancePreparer, Role::FinanceApprover];
    /// Adding and changing vendors (settings, status mapping, GL accounts, webhook secrets):
    /// admins only; finance sees the result.
    pub const MANAGE_VENDORS: &[Role] = &[Role::Admin];
    /// Users are managed by admins only.
    pub const MANAGE_USERS: &[Role] = &[Role::Admin];
    /// The audit trail is read by admins and approvers (who oversee what preparers did).
    pub const VIEW_AUDIT: &[Role] = &[Role::Admin, Role::FinanceApprover];
    /// The daily close is finance's: preparers and approvers see totals and entries, propose,
    /// submit and export; support and admins do not (support exports no financial reports).
    pub const VIEW_CLOSE: &[Role] = &[Role::FinancePreparer, Role::FinanceApprover];
    pub const PREPARE_CLOSE: &[Role] = &[Role::FinancePreparer, Role::FinanceApprover];
    pub const SUBMIT_ENTRY: &[Role] = &[Role::FinancePreparer, Role::FinanceApprover];
    /// Approving and posting: finance approvers only (and never their own entries).
    pub const APPROVE_ENTRY: &[Role] = &[Role::FinanceApprover];
    pub const POST_ENTRY: &[Role] = &[Role::FinanceApprover];
    pub const EXPORT_ENTRY: &[Role] = &[Role::FinancePreparer, Role::FinanceApprover];
    /// The discrepancy queues: finance works them; support looks (read-only).
    pub const VIEW_QUEUES: &[Role] = &[Role::FinancePreparer, Role::FinanceApprover, Role::Support];
    pub const RESOLVE_DISCREPANCY: &[Role] = &[Role::FinancePreparer, Role::FinanceApprover];
    /// Backfill, Retry, Refund, Sync status, requesting a write-off, assigning and notes: finance.
    pub const ACT_ON_DISCREPANCY: &[Role] = &[Role::FinancePreparer, Role::FinanceApprover];
    /// A requested write-off is approved by a finance approver who did not request it.
    pub const APPROVE_WRITE_OFF: &[Role] = &[Role::FinanceApprover];
    /// Looking an order up is read-only: everyone signed in.
    pub const LOOKUP_ORDERS: &[Role] = &Role::ALL;
    /// Match rates and discrepancy counts on the overview: everyone signed in.
    pub const VIEW_OVERVIEW: &[Role] = &Role::ALL;
    /// The import log: finance and admins (support looks up orders, not files).
    pub const VIEW_IMPORTS: &[Role] = &[Role::Admin, Role::FinancePreparer, Role::FinanceApprover];
    /// Uploading vendor and orders files from the dashboard: finance (admins configure, they do
    /// not feed the books; integrations upload with API tokens).
    pub const IMPORT_FILES: &[Role] = &[Role::FinancePreparer, Role::FinanceApprover];
}

/// The signed-in user as the page shows them.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct SignedInUser {
    pub username: String,
    pub role: Role,
}

// Every server function takes JSON: a browser cannot send `Content-Type: application/json`
// cross-site without a CORS preflight (which giftrecon never grants), so together with the
// server's Origin / Sec-Fetch-Site check a forged form or link cannot call them.

/// The signed-in user, or `None` (the nav shows "Sign in"). Never fails for a visitor.
#[server(input = Json)]
pub async fn current_user() -> Result<Option<SignedInUser>, ServerFnError> {
    Ok(auth::current_user().map(|u| SignedInUser {
        username: u.username,
        role: u.role,
    }))
}

#[server(input = Json)]
pub async fn system_status() -> Result<InstallationSummary, ServerFnError> {
    auth::require(access::SYSTEM_STATUS, "system_status").await?;
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
