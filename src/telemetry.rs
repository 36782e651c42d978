//! Logs (tracing, text or JSON on stderr) and Prometheus metrics.

use std::sync::OnceLock;

use metrics_exporter_prometheus::{Matcher, PrometheusBuilder, PrometheusHandle};
use tracing_subscriber::EnvFilter;

use crate::config::LogFormat;

/// Installs the global log subscriber. Safe to call more than once (later calls do nothing).
pub fn init_logging(format: LogFormat, filter: &str) {
    let filter = EnvFilter::try_new(filter).unwrap_or_else(|_| EnvFilter::new("info"));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    let _ = match format {
        LogFormat::Text => builder.try_init(),
        LogFormat::Json => builder.json().flatten_event(true).try_init(),
    };
}

/// The process-wide Prometheus recorder, installed on first use.
pub fn prometheus() -> &'static PrometheusHandle {
    static HANDLE: OnceLock<PrometheusHandle> = OnceLock::new();
    HANDLE.get_or_init(|| {
        let handle = PrometheusBuilder::new()
            .set_buckets_for_metric(
                Matcher::Suffix("_seconds".into()),
                &[
                    0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0,
                ],
            )
            .expect("non-empty buckets")
            .install_recorder()
            .expect("the Prometheus recorder is installed once");
        metrics::describe_counter!(
            "giftrecon_http_requests_total",
            "HTTP requests answered, by method, route and status"
        );
        metrics::describe_histogram!(
            "giftrecon_http_request_duration_seconds",
            metrics::Unit::Seconds,
            "Time to answer HTTP requests, by method and route"
        );
        metrics::gauge!("giftrecon_build_info", "version" => env!("CARGO_PKG_VERSION")).set(1.0);
        handle
    })
}
