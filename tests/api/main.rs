//! Integration tests: every test runs once on SQLite and once on PostgreSQL.

mod audit;
mod auth;
mod browser_security;
mod cli;
mod helpers;
mod http;
mod import;
mod order_notices;
mod orders;
mod placement;
mod poller;
mod schema;
mod sim;
mod storage;
mod users;
mod webhook_batches;
mod webhooks;
