//! The giftrecon process: configuration, the HTTP server, background workers and the CLI.
//! The application itself (domain, storage, UI) lives in the `app` crate.

pub mod cli;
pub mod commands;
pub mod config;
pub mod http;
pub mod sim;
pub mod site;
pub mod telemetry;
pub mod vendors;
