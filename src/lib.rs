//! The giftrecon process: configuration, the HTTP server, background workers and the CLI.
//! The application itself (domain, storage, UI) lives in the `app` crate.

pub mod api;
pub mod auth;
pub mod bench_data;
pub mod cli;
pub mod close;
pub mod commands;
pub mod config;
pub mod csv_input;
pub mod demo;
pub mod export;
pub mod file_import;
pub mod http;
pub mod import;
pub mod outbox;
pub mod poller;
pub mod reconcile;
pub mod server_fn_errors;
pub mod sim;
pub mod site;
pub mod telemetry;
pub mod upload;
pub mod vendor_file;
pub mod vendor_import;
pub mod vendors;
pub mod webhooks;
