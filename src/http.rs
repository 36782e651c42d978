//! The HTTP server: Leptos pages and server functions, health, readiness and metrics.

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use anyhow::Context;
use app::server::AppState;
use app::{shell, App};
use axum::extract::{MatchedPath, Request, State};
use axum::http::{header, StatusCode};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::Router;
use leptos::prelude::LeptosOptions;
use leptos_axum::{generate_route_list, LeptosRoutes};
use tokio::net::TcpListener;
use tower_http::trace::TraceLayer;

use crate::api::ApiState;
use crate::telemetry;

/// How long readiness waits for the database before answering 503.
const READINESS_TIMEOUT: Duration = Duration::from_secs(2);

/// Leptos options for a site root (the output name must match cargo-leptos' `name`).
pub fn leptos_options(site_root: Option<&std::path::Path>, addr: SocketAddr) -> LeptosOptions {
    let root = site_root
        .map(|p| p.to_string_lossy().into_owned())
        .unwrap_or_else(|| "target/site".into());
    LeptosOptions::builder()
        .output_name("giftrecon")
        .site_root(root)
        .site_pkg_dir("pkg")
        .site_addr(addr)
        .build()
}

/// The app's page routes, found once per process.
///
/// Finding them renders the app with resource loading switched off, and that switch is one flag
/// for the whole process (`leptos::server::SuppressResourceLoad`): a page rendered meanwhile on
/// another thread creates resources that never load, and its response stops short and hangs.
/// A server builds its router once, before it serves anything; the integration tests build one
/// per test while other tests' pages render, and a page now and then stopped mid-body with every
/// thread idle (8 of 47 runs of the page tests in a loop; 0 of 50 since). Found once, before any
/// router exists, the switch is never flipped while a page renders.
fn page_routes() -> Vec<leptos_axum::AxumRouteListing> {
    static ROUTES: std::sync::OnceLock<Vec<leptos_axum::AxumRouteListing>> =
        std::sync::OnceLock::new();
    ROUTES.get_or_init(|| generate_route_list(App)).clone()
}

/// The whole application router: pages and server functions, the JSON API, operations.
pub fn router(state: AppState, api: ApiState) -> Router {
    let routes = page_routes();
    let guard = crate::auth::Guard::new(&state, routes.iter().map(|r| r.path().to_string()));
    Router::new()
        .route("/healthz", get(healthz))
        .route("/readyz", get(readyz))
        .route("/metrics", get(metrics_text))
        .merge(crate::api::router(api))
        .merge(crate::auth::routes())
        .merge(crate::export::routes::routes())
        .merge(crate::upload::routes())
        .leptos_routes(&state, routes, {
            let options = state.leptos_options.clone();
            move || shell(options.clone())
        })
        .fallback(leptos_axum::file_and_error_handler::<AppState, _>(shell))
        .layer(middleware::from_fn_with_state(
            crate::server_fn_errors::ServerFnPaths::of_this_app(),
            crate::server_fn_errors::readable_argument_errors,
        ))
        .layer(middleware::from_fn_with_state(guard, crate::auth::guard))
        .layer(middleware::from_fn(track_metrics))
        .layer(TraceLayer::new_for_http())
        .with_state(state)
}

/// Binds the address, with an error that says which address could not be used.
pub async fn bind(addr: SocketAddr) -> anyhow::Result<TcpListener> {
    TcpListener::bind(addr)
        .await
        .with_context(|| format!("cannot listen on {addr}"))
}

/// Serves until `shutdown` resolves, finishing requests in flight.
pub async fn serve(
    listener: TcpListener,
    router: Router,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> anyhow::Result<()> {
    axum::serve(
        listener,
        router.into_make_service_with_connect_info::<SocketAddr>(),
    )
    .with_graceful_shutdown(shutdown)
    .await
    .context("the HTTP server stopped")
}

/// The process is up (it answers); says nothing about the database.
async fn healthz() -> &'static str {
    "ok\n"
}

/// The database answers: load balancers send traffic only to ready replicas.
async fn readyz(State(state): State<AppState>) -> Response {
    match tokio::time::timeout(READINESS_TIMEOUT, state.db.ping()).await {
        Ok(Ok(())) => (StatusCode::OK, "ready\n").into_response(),
        Ok(Err(err)) => {
            tracing::warn!(error = %app::storage::describe(&err), "readiness: database unavailable");
            (StatusCode::SERVICE_UNAVAILABLE, "database unavailable\n").into_response()
        }
        Err(_) => {
            tracing::warn!("readiness: database did not answer in time");
            (StatusCode::SERVICE_UNAVAILABLE, "database unavailable\n").into_response()
        }
    }
}

async fn metrics_text() -> Response {
    let handle = telemetry::prometheus();
    handle.run_upkeep();
    (
        [(
            header::CONTENT_TYPE,
            "text/plain; version=0.0.4; charset=utf-8",
        )],
        handle.render(),
    )
        .into_response()
}

/// Counts requests and their latency by route template (never the raw path: bounded labels).
async fn track_metrics(request: Request, next: Next) -> Response {
    let route = request
        .extensions()
        .get::<MatchedPath>()
        .map(|p| p.as_str().to_string())
        .unwrap_or_else(|| "unmatched".into());
    let method = request.method().to_string();
    let started = Instant::now();
    let response = next.run(request).await;
    let status = response.status().as_u16().to_string();
    metrics::counter!("giftrecon_http_requests_total", "method" => method.clone(), "route" => route.clone(), "status" => status).increment(1);
    metrics::histogram!("giftrecon_http_request_duration_seconds", "method" => method, "route" => route)
        .record(started.elapsed().as_secs_f64());
    response
}
