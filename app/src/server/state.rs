use leptos::prelude::*;

use crate::storage::Db;

/// What every request handler and server function shares.
#[derive(Clone, Debug, axum::extract::FromRef)]
pub struct AppState {
    pub db: Db,
    pub leptos_options: LeptosOptions,
    pub security: super::auth::SecurityPolicy,
    /// How often the poller reads a vendor without its own interval (`[poller] interval_secs`);
    /// `None` when this server does not poll.
    pub poll_default_secs: Option<u64>,
}

impl AppState {
    /// The state provided to server functions by the router.
    pub fn from_context() -> Result<AppState, ServerFnError> {
        use_context::<AppState>()
            .ok_or_else(|| ServerFnError::new("the server is not fully started; try again"))
    }
}

/// Logs an internal failure and gives the user a message without internals.
pub(crate) fn internal(err: impl std::fmt::Display) -> ServerFnError {
    tracing::error!(error = %err, "server function failed");
    ServerFnError::new("giftrecon could not complete this request; the error has been logged")
}
