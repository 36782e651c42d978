//! Server functions of the Vendors page: the list, one vendor's settings, and the changes an
//! admin makes to them. Finance may look; only admins change anything. Webhook secrets go in
//! and never come out: no wire type here has a field that could hold one.

use leptos::prelude::*;
use leptos::server_fn::codec::Json;
use serde::{Deserialize, Serialize};

#[cfg(feature = "ssr")]
use crate::server::{access, auth, state, AppState};

/// A vendor as the dashboard lists it. Secrets are never sent, only how many are active.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct VendorView {
    pub id: String,
    pub kind: String,
    pub base_url: Option<String>,
    pub active_secrets: i64,
    pub mapped_statuses: usize,
    pub created_at: String,
    /// How often it is polled, as a sentence ("Every 5 min (the server's schedule)").
    pub polled: String,
}

/// A webhook secret as the page shows it: when it was added and when it stops verifying.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct SecretView {
    /// A number to tell secrets apart by ("Secret 3"); not the secret.
    pub number: i64,
    pub added_at: String,
    /// When it stops (or stopped) verifying; `None` while it has no end.
    pub retires_at: Option<String>,
    /// Whether it verifies webhooks now.
    pub active: bool,
}

/// One line of a status mapping: a vendor status and the GL state it maps to.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct MappingRow {
    pub status: String,
    pub state: String,
}

/// A status seen in the vendor's records that its mapping does not map.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct UnmappedView {
    pub status: String,
    pub records: i64,
}

/// A GL account's code and name.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct AccountView {
    pub code: String,
    pub name: String,
}

/// Everything the Vendors page edits about one vendor.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct VendorSettings {
    pub id: String,
    pub kind: String,
    pub base_url: Option<String>,
    /// The path of this vendor's webhook on this server (the page puts its origin in front).
    pub webhook_path: String,
    /// Its own poll interval as the editor shows it ("5 min"); `None`: the server's schedule.
    pub poll_interval: Option<String>,
    /// How often it is polled, as a sentence.
    pub polled: String,
    /// When the last complete poll pass read up to, if one has.
    pub last_polled: Option<String>,
    pub active_secrets: usize,
    pub secrets: Vec<SecretView>,
    pub mapping: Vec<MappingRow>,
    pub unmapped: Vec<UnmappedView>,
    pub clearing: AccountView,
    pub payable: AccountView,
    pub suspense: AccountView,
}

/// What a change did: `changed` is false when everything already was as asked.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ChangeOutcome {
    pub changed: bool,
    /// One sentence for the page.
    pub message: String,
}

/// The webhook path of a vendor, as `src/webhooks.rs` routes it (`/webhooks/{vendor}`).
pub fn webhook_path(vendor: &str) -> String {
    format!("/webhooks/{vendor}")
}

/// Longest vendor status accepted in a mapping.
pub const MAX_STATUS_LEN: usize = 100;
/// Shortest and longest webhook secret accepted.
pub const MIN_SECRET_LEN: usize = 16;
pub const MAX_SECRET_LEN: usize = 512;
/// Longest overlap during which old and new secret both verify.
pub const MAX_OVERLAP_HOURS: u32 = 720;

#[cfg(feature = "ssr")]
mod ssr {
    use axum::http::StatusCode;
    use leptos::prelude::ServerFnError;
    use secrecy::SecretString;

    use super::*;
    use crate::domain::journal::{GlAccount, VendorAccounts};
    use crate::domain::poll::describe_secs;
    use crate::domain::{excerpt, GlState, PollInterval, StatusMapping, VendorId, VendorKind};
    use crate::storage::vendor_admin::Change;
    use crate::storage::vendors::{BaseUrl, Vendor};
    use crate::storage::StorageError;

    pub fn vendor_id(value: &str) -> Result<VendorId, ServerFnError> {
        VendorId::parse(value.trim()).map_err(|e| auth::bad_request(&e.to_string()))
    }

    pub fn kind(value: &str) -> Result<VendorKind, ServerFnError> {
        VendorKind::parse(value.trim()).map_err(|e| auth::bad_request(&format!("kind: {e}")))
    }

    /// Empty clears the base URL.
    pub fn base_url(value: &str) -> Result<Option<BaseUrl>, ServerFnError> {
        let value = value.trim();
        if value.is_empty() {
            return Ok(None);
        }
        BaseUrl::parse(value)
            .map(Some)
            .map_err(|e| auth::bad_request(&e.to_string()))
    }

    pub fn gl_state(field: &str, value: &str) -> Result<GlState, ServerFnError> {
        GlState::parse(value.trim()).map_err(|e| auth::bad_request(&format!("{field}: {e}")))
    }

    pub fn status(field: &str, value: &str) -> Result<String, ServerFnError> {
        let value = value.trim();
        if value.is_empty() {
            return Err(auth::bad_request(&format!(
                "{field}: the vendor status is empty"
            )));
        }
        if value.chars().count() > MAX_STATUS_LEN {
            return Err(auth::bad_request(&format!(
                "{field}: the vendor status {:?} is longer than {MAX_STATUS_LEN} characters",
                excerpt(value)
            )));
        }
        if value.chars().any(char::is_control) {
            return Err(auth::bad_request(&format!(
                "{field}: the vendor status {:?} contains a control character",
                excerpt(value)
            )));
        }
        Ok(value.to_string())
    }

    /// The editor's rows; rows with neither status nor state are blank lines and skipped.
    pub fn mapping(rows: &[MappingRow]) -> Result<StatusMapping, ServerFnError> {
        let mut pairs = Vec::new();
        for (i, row) in rows.iter().enumerate() {
            if row.status.trim().is_empty() && row.state.trim().is_empty() {
                continue;
            }
            let field = format!("status mapping, row {}", i + 1);
            pairs.push((status(&field, &row.status)?, gl_state(&field, &row.state)?));
        }
        StatusMapping::from_pairs(pairs)
            .map_err(|e| auth::bad_request(&format!("status mapping: {e}")))
    }

    pub fn account(field: &str, code: &str, name: &str) -> Result<GlAccount, ServerFnError> {
        GlAccount::new(code, name).map_err(|e| auth::bad_request(&format!("{field}: {e}")))
    }

    pub fn secret(value: &str) -> Result<SecretString, ServerFnError> {
        let length = value.chars().count();
        if value.trim() != value {
            return Err(auth::bad_request(
                "webhook secret: it starts or ends with a space; paste it exactly as the vendor shows it",
            ));
        }
        if !(MIN_SECRET_LEN..=MAX_SECRET_LEN).contains(&length) {
            return Err(auth::bad_request(&format!(
                "webhook secret: it is {length} characters long; use {MIN_SECRET_LEN} to {MAX_SECRET_LEN}"
            )));
        }
        if value.chars().any(char::is_control) {
            return Err(auth::bad_request(
                "webhook secret: it contains a control character",
            ));
        }
        Ok(SecretString::from(value.to_string()))
    }

    pub fn refusal(err: StorageError) -> ServerFnError {
        match err {
            StorageError::NotFound { what } => {
                auth::refuse(StatusCode::NOT_FOUND, &format!("{what} not found"))
            }
            StorageError::AlreadyExists { what } => {
                auth::refuse(StatusCode::CONFLICT, &format!("{what} already exists"))
            }
            StorageError::Conflict { what } => auth::refuse(StatusCode::CONFLICT, &what),
            other => state::internal(other),
        }
    }

    pub fn outcome(change: Change, made: String, vendor: &VendorId) -> ChangeOutcome {
        match change {
            Change::Made => ChangeOutcome {
                changed: true,
                message: made,
            },
            Change::Unchanged => ChangeOutcome {
                changed: false,
                message: format!("vendor {vendor} already had these settings: nothing changed"),
            },
        }
    }

    pub fn account_view(account: &GlAccount) -> AccountView {
        AccountView {
            code: account.code().to_string(),
            name: account.name().to_string(),
        }
    }

    pub fn accounts_view(accounts: &VendorAccounts) -> [AccountView; 3] {
        [
            account_view(&accounts.clearing),
            account_view(&accounts.payable),
            account_view(&accounts.suspense),
        ]
    }

    /// An empty field is the server's schedule.
    pub fn poll_interval(value: &str) -> Result<Option<PollInterval>, ServerFnError> {
        if value.trim().is_empty() {
            return Ok(None);
        }
        PollInterval::parse(value)
            .map(Some)
            .map_err(|e| auth::bad_request(&e.to_string()))
    }

    /// How often the poller reads `vendor`, given the server's schedule (`None`: it does not poll).
    pub fn polled(vendor: &Vendor, server_secs: Option<u64>) -> String {
        let Some(server_secs) = server_secs else {
            return "Not polled: the poller is off on this server ([poller] enabled)".into();
        };
        let interval = match vendor.poll_interval {
            Some(own) => own.to_string(),
            None => {
                let mut every = String::new();
                describe_secs(server_secs, &mut every).expect("writing to a String");
                format!("{every} (the server's schedule)")
            }
        };
        match vendor.base_url {
            Some(_) => format!("Every {interval}"),
            None => format!("Not polled: the vendor has no base URL (then every {interval})"),
        }
    }

    pub fn time(at: chrono::DateTime<chrono::Utc>) -> String {
        at.format("%Y-%m-%d %H:%M UTC").to_string()
    }
}

#[server(input = Json)]
pub async fn list_vendors() -> Result<Vec<VendorView>, ServerFnError> {
    auth::require(access::LIST_VENDORS, "list_vendors").await?;
    let state = AppState::from_context()?;
    let vendors = crate::storage::vendors::list_vendors(&state.db)
        .await
        .map_err(state::internal)?;
    Ok(vendors
        .into_iter()
        .map(|v| VendorView {
            polled: ssr::polled(&v, state.poll_default_secs),
            id: v.id.to_string(),
            kind: v.kind.to_string(),
            base_url: v.base_url,
            active_secrets: v.active_secrets,
            mapped_statuses: v.status_mapping.iter().count(),
            created_at: ssr::time(v.created_at),
        })
        .collect())
}

/// One vendor's settings, its secrets (masked), mapping, unmapped statuses and GL accounts.
#[server(input = Json)]
pub async fn vendor_detail(vendor: String) -> Result<VendorSettings, ServerFnError> {
    use crate::storage::{journal, vendor_admin, vendors};
    auth::require(access::LIST_VENDORS, "vendor_detail").await?;
    let state = AppState::from_context()?;
    let id = ssr::vendor_id(&vendor)?;
    let v = vendors::get_vendor(&state.db, &id)
        .await
        .map_err(ssr::refusal)?;
    let secrets = vendor_admin::webhook_secrets(&state.db, &id)
        .await
        .map_err(state::internal)?;
    let unmapped = vendor_admin::unmapped_statuses(&state.db, &id, &v.status_mapping)
        .await
        .map_err(state::internal)?;
    let accounts = journal::accounts(&state.db, &id)
        .await
        .map_err(state::internal)?;
    let cursor = crate::storage::poller::cursor(&state.db, id.as_str())
        .await
        .map_err(state::internal)?;
    let now = crate::storage::now_utc();
    let secrets: Vec<SecretView> = secrets
        .into_iter()
        .map(|s| SecretView {
            number: s.id,
            added_at: ssr::time(s.created_at),
            retires_at: s.retired_at.map(ssr::time),
            active: s.retired_at.is_none_or(|at| at > now),
        })
        .collect();
    let [clearing, payable, suspense] = ssr::accounts_view(&accounts);
    Ok(VendorSettings {
        webhook_path: webhook_path(id.as_str()),
        poll_interval: v.poll_interval.map(|i| i.to_string()),
        polled: ssr::polled(&v, state.poll_default_secs),
        last_polled: cursor.synced_to.map(ssr::time),
        id: id.to_string(),
        kind: v.kind.to_string(),
        base_url: v.base_url,
        active_secrets: secrets.iter().filter(|s| s.active).count(),
        secrets,
        mapping: v
            .status_mapping
            .iter()
            .map(|(status, state)| MappingRow {
                status: status.to_string(),
                state: state.as_str().to_string(),
            })
            .collect(),
        unmapped: unmapped
            .into_iter()
            .map(|u| UnmappedView {
                status: u.status,
                records: u.records,
            })
            .collect(),
        clearing,
        payable,
        suspense,
    })
}

/// Adds a vendor with its kind's default status mapping and, if given, one webhook secret.
#[server(input = Json)]
pub async fn add_vendor(
    vendor: String,
    kind: String,
    base_url: String,
    webhook_secret: String,
) -> Result<ChangeOutcome, ServerFnError> {
    use crate::storage::audit::AuditEvent;
    use crate::storage::vendors::{self, NewVendor};
    let admin = auth::require(access::MANAGE_VENDORS, "add_vendor").await?;
    let state = AppState::from_context()?;
    let id = ssr::vendor_id(&vendor)?;
    let kind = ssr::kind(&kind)?;
    let base_url = ssr::base_url(&base_url)?;
    let secrets = if webhook_secret.is_empty() {
        Vec::new()
    } else {
        vec![ssr::secret(&webhook_secret)?]
    };
    // Never the secret: how many there are.
    let event = AuditEvent::new(&admin.username, "vendor_add", format!("vendor:{id}")).after(
        serde_json::json!({
            "id": id.as_str(),
            "kind": kind.as_str(),
            "base_url": base_url.as_ref().map(|u| u.as_str()),
            "webhook_secrets": secrets.len(),
            "api_key": false,
        }),
    );
    let new = NewVendor {
        id: id.clone(),
        kind,
        base_url,
        webhook_secrets: secrets,
        api_key: None,
    };
    vendors::insert_vendor(&state.db, &new, &event)
        .await
        .map_err(ssr::refusal)?;
    Ok(ChangeOutcome {
        changed: true,
        message: format!("added vendor {id} ({kind})"),
    })
}

/// Sets a vendor's kind and base URL (empty clears it). The status mapping is kept.
#[server(input = Json)]
pub async fn update_vendor(
    vendor: String,
    kind: String,
    base_url: String,
) -> Result<ChangeOutcome, ServerFnError> {
    let admin = auth::require(access::MANAGE_VENDORS, "update_vendor").await?;
    let state = AppState::from_context()?;
    let id = ssr::vendor_id(&vendor)?;
    let kind = ssr::kind(&kind)?;
    let base_url = ssr::base_url(&base_url)?;
    let change = crate::storage::vendor_admin::update_settings(
        &state.db,
        &id,
        kind,
        base_url.as_ref(),
        &admin.username,
    )
    .await
    .map_err(ssr::refusal)?;
    Ok(ssr::outcome(change, format!("saved vendor {id}"), &id))
}

/// Sets how often the poller reads a vendor: seconds ("300") or with a unit ("90s", "5m",
/// "1h"), 10 s to a day; empty puts it back on the server's schedule.
#[server(input = Json)]
pub async fn set_vendor_poll_interval(
    vendor: String,
    interval: String,
) -> Result<ChangeOutcome, ServerFnError> {
    let admin = auth::require(access::MANAGE_VENDORS, "set_vendor_poll_interval").await?;
    let state = AppState::from_context()?;
    let id = ssr::vendor_id(&vendor)?;
    let interval = ssr::poll_interval(&interval)?;
    let change =
        crate::storage::vendor_admin::set_poll_interval(&state.db, &id, interval, &admin.username)
            .await
            .map_err(ssr::refusal)?;
    let made = match interval {
        Some(every) => format!("vendor {id} is now polled every {every}"),
        None => format!("vendor {id} is now polled on the server's schedule"),
    };
    Ok(ssr::outcome(change, made, &id))
}

/// Replaces a vendor's status mapping with the editor's rows.
#[server(input = Json)]
pub async fn save_status_mapping(
    vendor: String,
    mapping: Vec<MappingRow>,
) -> Result<ChangeOutcome, ServerFnError> {
    use crate::storage::vendor_admin::{self, MappingEdit};
    let admin = auth::require(access::MANAGE_VENDORS, "save_status_mapping").await?;
    let state = AppState::from_context()?;
    let id = ssr::vendor_id(&vendor)?;
    let mapping = ssr::mapping(&mapping)?;
    let count = mapping.len();
    let change = vendor_admin::edit_status_mapping(
        &state.db,
        &id,
        &MappingEdit::Replace(mapping),
        &admin.username,
    )
    .await
    .map_err(ssr::refusal)?;
    Ok(ssr::outcome(
        change,
        format!("saved the status mapping of vendor {id}: {count} statuses"),
        &id,
    ))
}

/// Maps one more status (the one-click action beside an unmapped status).
#[server(input = Json)]
pub async fn map_vendor_status(
    vendor: String,
    status: String,
    state: String,
) -> Result<ChangeOutcome, ServerFnError> {
    use crate::storage::vendor_admin::{self, MappingEdit};
    let admin = auth::require(access::MANAGE_VENDORS, "map_vendor_status").await?;
    let app = AppState::from_context()?;
    let id = ssr::vendor_id(&vendor)?;
    let status = ssr::status("status", &status)?;
    let gl = ssr::gl_state("GL state", &state)?;
    let edit = MappingEdit::Add {
        status: status.clone(),
        state: gl,
    };
    let change = vendor_admin::edit_status_mapping(&app.db, &id, &edit, &admin.username)
        .await
        .map_err(ssr::refusal)?;
    Ok(ssr::outcome(
        change,
        format!("vendor {id}: status {status:?} now maps to {gl}"),
        &id,
    ))
}

/// Sets a vendor's three GL accounts.
#[server(input = Json)]
pub async fn set_vendor_accounts(
    vendor: String,
    clearing_code: String,
    clearing_name: String,
    payable_code: String,
    payable_name: String,
    suspense_code: String,
    suspense_name: String,
) -> Result<ChangeOutcome, ServerFnError> {
    use crate::storage::vendor_admin::{self, AccountsEdit};
    let admin = auth::require(access::MANAGE_VENDORS, "set_vendor_accounts").await?;
    let state = AppState::from_context()?;
    let id = ssr::vendor_id(&vendor)?;
    let edit = AccountsEdit {
        clearing: Some(ssr::account(
            "clearing account",
            &clearing_code,
            &clearing_name,
        )?),
        payable: Some(ssr::account(
            "payable account",
            &payable_code,
            &payable_name,
        )?),
        suspense: Some(ssr::account(
            "suspense account",
            &suspense_code,
            &suspense_name,
        )?),
    };
    let (_, change) = vendor_admin::set_accounts(&state.db, &id, &edit, &admin.username)
        .await
        .map_err(ssr::refusal)?;
    Ok(ssr::outcome(
        change,
        format!("saved the GL accounts of vendor {id}"),
        &id,
    ))
}

/// Adds a webhook secret; the oldest active one keeps verifying for `overlap_hours`, then
/// retires. The same secret again changes nothing.
#[server(input = Json)]
pub async fn rotate_vendor_secret(
    vendor: String,
    secret: String,
    overlap_hours: u32,
) -> Result<ChangeOutcome, ServerFnError> {
    use crate::storage::audit::AuditEvent;
    use crate::storage::vendors::{self, Rotation};
    let admin = auth::require(access::MANAGE_VENDORS, "rotate_vendor_secret").await?;
    let state = AppState::from_context()?;
    let id = ssr::vendor_id(&vendor)?;
    let secret = ssr::secret(&secret)?;
    if overlap_hours > MAX_OVERLAP_HOURS {
        return Err(auth::bad_request(&format!(
            "overlap: {overlap_hours} hours is more than {MAX_OVERLAP_HOURS} (30 days)"
        )));
    }
    let event = AuditEvent::new(
        &admin.username,
        "vendor_rotate_secret",
        format!("vendor:{id}"),
    )
    .after(serde_json::json!({ "grace_hours": overlap_hours }));
    let grace = chrono::Duration::hours(i64::from(overlap_hours));
    let rotation = vendors::rotate_webhook_secret(&state.db, &id, &secret, grace, &event)
        .await
        .map_err(ssr::refusal)?;
    Ok(match rotation {
        Rotation::AlreadyActive => ChangeOutcome {
            changed: false,
            message: format!("vendor {id} already has that webhook secret: nothing changed"),
        },
        Rotation::Added {
            oldest_retires_at: Some(at),
        } => ChangeOutcome {
            changed: true,
            message: format!(
                "added a webhook secret to vendor {id}; the oldest one stops verifying at {}",
                ssr::time(at)
            ),
        },
        Rotation::Added {
            oldest_retires_at: None,
        } => ChangeOutcome {
            changed: true,
            message: format!("added a webhook secret to vendor {id}"),
        },
    })
}
