//! Integration tests: every test runs once on SQLite and once on PostgreSQL.

mod app_role;
mod audit;
mod audit_atomic;
mod auth;
mod browser_security;
mod cli;
mod close;
mod demo;
mod helpers;
mod http;
mod import;
mod order_notices;
mod orders;
mod placement;
mod poller;
mod queue_actions;
mod queues;
mod reconciliation;
mod schema;
mod server_fn_args;
mod sign_in;
mod sim;
mod storage;
mod users;
mod webhook_batches;
mod webhooks;
