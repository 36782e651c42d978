//! Server functions of the Audit log page: filtered pages of the trail, and whether its hash
//! chain is intact.

use leptos::prelude::*;
use leptos::server_fn::codec::Json;
use serde::{Deserialize, Serialize};

#[cfg(feature = "ssr")]
use crate::server::{access, auth, state, AppState};

/// Rows per page of the audit log.
pub const AUDIT_PAGE_SIZE: u32 = 50;

/// One audit row as the audit page shows it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct AuditView {
    pub id: i64,
    pub at: String,
    pub actor: String,
    pub action: String,
    pub subject: String,
    pub before: Option<String>,
    pub after: Option<String>,
}

/// A page of the audit log, newest first.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct AuditPage {
    pub rows: Vec<AuditView>,
    /// 0-based.
    pub page: u32,
    pub has_more: bool,
}

/// The result of walking the hash chain.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "status", rename_all = "snake_case")]
pub enum ChainStatus {
    Intact { rows: u64 },
    Broken { id: i64, reason: String },
}

impl ChainStatus {
    /// "Chain intact: 12 rows" or "Chain broken at row #7: …".
    pub fn sentence(&self) -> String {
        match self {
            ChainStatus::Intact { rows } => format!(
                "Chain intact: {rows} row{}",
                if *rows == 1 { "" } else { "s" }
            ),
            ChainStatus::Broken { id, reason } => format!("Chain broken at row #{id}: {reason}"),
        }
    }
}

#[cfg(feature = "ssr")]
mod ssr {
    use chrono::{Days, NaiveDate, NaiveTime};
    use leptos::prelude::ServerFnError;

    use super::*;
    use crate::storage::audit::AuditFilter;

    fn text(value: &str) -> Option<String> {
        let value = value.trim();
        (!value.is_empty()).then(|| value.to_string())
    }

    fn date(field: &str, value: &str) -> Result<Option<NaiveDate>, ServerFnError> {
        crate::server::filters::optional_date(field, value)
            .map_err(|e| auth::bad_request(&e.to_string()))
    }

    /// The filter of the page's fields; `from` and `to` are whole UTC days, both included.
    pub fn filter(
        actor: &str,
        action: &str,
        subject: &str,
        from: &str,
        to: &str,
    ) -> Result<AuditFilter, ServerFnError> {
        let from = date("from", from)?;
        let to = date("to", to)?;
        if let (Some(from), Some(to)) = (from, to) {
            if to < from {
                return Err(auth::bad_request(&format!(
                    "to: {to} is before from ({from})"
                )));
            }
        }
        let midnight = |d: NaiveDate| d.and_time(NaiveTime::MIN).and_utc();
        Ok(AuditFilter {
            actor: text(actor),
            action: text(action),
            subject_contains: text(subject),
            from: from.map(midnight),
            until: to
                .and_then(|d| d.checked_add_days(Days::new(1)))
                .map(midnight),
        })
    }
}

/// A page of the audit log matching the filters (empty ones match everything), newest first.
#[server(input = Json)]
pub async fn list_audit_log(
    actor: String,
    action: String,
    subject: String,
    from: String,
    to: String,
    page: u32,
) -> Result<AuditPage, ServerFnError> {
    auth::require(access::VIEW_AUDIT, "list_audit_log").await?;
    let state = AppState::from_context()?;
    let filter = ssr::filter(&actor, &action, &subject, &from, &to)?;
    let size = i64::from(AUDIT_PAGE_SIZE);
    let mut rows =
        crate::storage::audit::search(&state.db, &filter, i64::from(page) * size, size + 1)
            .await
            .map_err(state::internal)?;
    let has_more = rows.len() as i64 > size;
    rows.truncate(AUDIT_PAGE_SIZE as usize);
    Ok(AuditPage {
        rows: rows
            .into_iter()
            .map(|r| AuditView {
                id: r.id,
                at: r.at.format("%Y-%m-%d %H:%M:%S UTC").to_string(),
                actor: r.actor,
                action: r.action,
                subject: r.subject,
                before: r.before_json,
                after: r.after_json,
            })
            .collect(),
        page,
        has_more,
    })
}

/// Walks the whole hash chain: intact, or the first row that breaks it.
#[server(input = Json)]
pub async fn audit_chain_status() -> Result<ChainStatus, ServerFnError> {
    use crate::storage::audit::{verify, Verification};
    auth::require(access::VIEW_AUDIT, "audit_chain_status").await?;
    let state = AppState::from_context()?;
    Ok(match verify(&state.db).await.map_err(state::internal)? {
        Verification::Intact { rows } => ChainStatus::Intact { rows },
        Verification::Broken { id, reason } => ChainStatus::Broken { id, reason },
    })
}

/// The audit page's filter parsing, for exports that must select exactly what the page shows.
#[cfg(feature = "ssr")]
pub use ssr::filter as storage_filter;
