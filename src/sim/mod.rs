//! A fault-injecting simulator of the generic vendor API (`giftrecon vendor-sim`).
//!
//! It speaks the generic API the way giftrecon's generic adapter expects a vendor to:
//!
//! - `POST /api/v1/orders` places an order (201), or answers the order a key already placed
//!   (200, the order as it is now) when the same key comes with the same customer, brand and
//!   amount; the same key with anything else is 422 `idempotency_key_reused`. Checking and
//!   creating happen under one lock, so concurrent requests with one key create one order.
//! - Pending orders become `fulfilled` (brands starting with `fail`: `failed`) after the
//!   fulfilment delay; `POST /api/v1/orders/{id}/refund` refunds a fulfilled one (else 409).
//! - `GET /api/v1/reconciliation` pages through orders by `(updated_at, vendor_order_id)` with an
//!   opaque keyset cursor (the exact guarantee is on its handler in `api.rs`); `GET /api/v1/export.csv` is the
//!   same window as CSV.
//! - Every change is announced by a signed webhook from a background task, retried on failure.
//! - `/sim/...` are test hooks: insert orders as if placed elsewhere, change a status, read and
//!   set faults, read stats, reset.
//!
//! Faults: `latency_ms` delays every `/api/v1` answer; `error_rate` (500/502/503) and
//! `rate_limit_rate` (429, `Retry-After: 1`) answer instead of doing anything;
//! `drop_response_rate` does the work and then cuts the connection before the status line, so
//! the client gets an error at once (never a hang) while the order stays committed; the webhook
//! faults drop, duplicate (same event_id, same body), hold back (until the order's next event has
//! overtaken it, at most one second) or mis-sign events. Everything is in memory.

mod api;
mod faults;
mod hooks;
mod order;
mod state;
mod store;
mod webhooks;

use std::net::SocketAddr;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use anyhow::Context;
use secrecy::SecretString;
use tokio::sync::{mpsc, watch};
use tokio::task::JoinHandle;

pub use api::{ReconciliationPage, CSV_HEADER, DEFAULT_PAGE_LIMIT, MAX_PAGE_LIMIT};
pub use faults::{parse_rate, FaultError, Faults, FaultsPatch};
pub use order::OrderWire;
pub use state::SimStats;
pub use webhooks::{sign, WebhookConfig, HOLD_LIMIT, RETRY_DELAYS, SIGNATURE_HEADER};

/// Default fulfilment delay, in milliseconds.
pub const DEFAULT_FULFIL_DELAY_MS: u64 = 100;

/// How long `shutdown` waits for requests in flight.
const SHUTDOWN_GRACE: Duration = Duration::from_secs(5);

/// Command-line arguments of `giftrecon vendor-sim`.
#[derive(Debug, clap::Args)]
pub struct SimArgs {
    /// Address to listen on.
    #[arg(long, default_value = "127.0.0.1:4000", value_name = "HOST:PORT")]
    pub addr: SocketAddr,
    /// Where to POST webhook events (none are sent without it).
    #[arg(long, value_name = "URL", requires = "webhook_secret")]
    pub webhook_url: Option<String>,
    /// Secret the webhook signatures (x-signature-256) are made with.
    #[arg(
        long,
        value_name = "SECRET",
        env = "GIFTRECON_SIM_WEBHOOK_SECRET",
        hide_env_values = true,
        value_parser = parse_secret
    )]
    pub webhook_secret: Option<SecretString>,
    /// Milliseconds before a pending order is fulfilled (or failed).
    #[arg(long, default_value_t = DEFAULT_FULFIL_DELAY_MS, value_name = "MS")]
    pub fulfil_delay_ms: u64,
    /// Seed for the fault dice, to make a run reproducible.
    #[arg(long, value_name = "N")]
    pub seed: Option<u64>,
    #[command(flatten)]
    pub faults: Faults,
}

fn parse_secret(input: &str) -> Result<SecretString, String> {
    if input.is_empty() {
        return Err("the webhook secret cannot be empty".into());
    }
    Ok(SecretString::from(input.to_string()))
}

/// Settings of an in-process simulator ([`spawn`]).
#[derive(Clone, Debug)]
pub struct SimConfig {
    /// Address to listen on; port 0 picks a free one.
    pub addr: SocketAddr,
    /// Where webhooks go; `None` sends none.
    pub webhook: Option<WebhookConfig>,
    pub fulfil_delay: Duration,
    /// Seed for the fault dice; `None` seeds from the OS.
    pub seed: Option<u64>,
    pub faults: Faults,
}

impl Default for SimConfig {
    fn default() -> Self {
        SimConfig {
            addr: SocketAddr::from(([127, 0, 0, 1], 0)),
            webhook: None,
            fulfil_delay: Duration::from_millis(DEFAULT_FULFIL_DELAY_MS),
            seed: None,
            faults: Faults::default(),
        }
    }
}

impl SimConfig {
    /// Sends webhooks to `url`, signed with `secret`.
    pub fn with_webhook(mut self, url: impl Into<String>, secret: impl Into<String>) -> Self {
        self.webhook = Some(WebhookConfig {
            url: url.into(),
            secret: SecretString::from(secret.into()),
        });
        self
    }
}

impl From<SimArgs> for SimConfig {
    fn from(args: SimArgs) -> Self {
        SimConfig {
            addr: args.addr,
            webhook: args.webhook_url.map(|url| WebhookConfig {
                url,
                // clap enforces --webhook-secret with --webhook-url.
                secret: args
                    .webhook_secret
                    .unwrap_or_else(|| SecretString::from("")),
            }),
            fulfil_delay: Duration::from_millis(args.fulfil_delay_ms),
            seed: args.seed,
            faults: args.faults,
        }
    }
}

/// A running simulator. Dropping it stops it too (without waiting).
pub struct SimHandle {
    addr: SocketAddr,
    sim: Arc<state::Sim>,
    stop: watch::Sender<bool>,
    server: Option<JoinHandle<std::io::Result<()>>>,
}

impl SimHandle {
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// `http://127.0.0.1:PORT`, without a trailing slash.
    pub fn base_url(&self) -> String {
        format!("http://{}", self.addr)
    }

    pub fn stats(&self) -> SimStats {
        self.sim.stats()
    }

    pub fn faults(&self) -> Faults {
        self.sim.faults()
    }

    /// Replaces every fault setting.
    pub fn set_faults(&self, faults: Faults) -> Result<(), FaultError> {
        self.sim.set_faults(faults)
    }

    /// Changes only the settings `patch` names; answers the full settings.
    pub fn update_faults(&self, patch: &FaultsPatch) -> Result<Faults, FaultError> {
        self.sim.update_faults(patch)
    }

    /// Forgets every order and zeroes the counters (as `POST /sim/reset`).
    pub fn reset(&self) {
        self.sim.reset()
    }

    /// Stops serving, finishing requests in flight (for at most five seconds).
    pub async fn shutdown(mut self) -> anyhow::Result<()> {
        let _ = self.stop.send(true);
        let Some(server) = self.server.take() else {
            return Ok(());
        };
        match tokio::time::timeout(SHUTDOWN_GRACE, server).await {
            Ok(joined) => joined
                .context("the simulator's server task failed")?
                .context("the simulator's server stopped"),
            Err(_) => anyhow::bail!("the simulator did not stop within {SHUTDOWN_GRACE:?}"),
        }
    }
}

impl Drop for SimHandle {
    fn drop(&mut self) {
        let _ = self.stop.send(true);
    }
}

/// Starts a simulator on `config.addr` in this runtime.
pub async fn spawn(config: SimConfig) -> anyhow::Result<SimHandle> {
    config.faults.validate()?;
    let target = config
        .webhook
        .map(webhooks::WebhookTarget::new)
        .transpose()?
        .map(Arc::new);
    let listener = tokio::net::TcpListener::bind(config.addr)
        .await
        .with_context(|| format!("cannot listen on {}", config.addr))?;
    let addr = listener
        .local_addr()
        .context("cannot read the listening address")?;

    let (stop, stopped) = watch::channel(false);
    let (fulfil_tx, fulfil_rx) = mpsc::unbounded_channel();
    let (events_tx, events_rx) = mpsc::unbounded_channel();
    let sim = Arc::new(state::Sim::new(
        config.faults,
        config.seed,
        config.fulfil_delay,
        fulfil_tx,
        target.is_some().then_some(events_tx),
    ));
    tokio::spawn(state::fulfil_pending(
        sim.clone(),
        fulfil_rx,
        stopped.clone(),
    ));
    if let Some(target) = target {
        tokio::spawn(webhooks::dispatch(
            sim.clone(),
            target,
            events_rx,
            stopped.clone(),
        ));
    }
    let app = api::router(sim.clone());
    let mut until_stopped = stopped;
    let server = tokio::spawn(async move {
        axum::serve(listener, app)
            .with_graceful_shutdown(async move {
                let _ = until_stopped.wait_for(|stop| *stop).await;
            })
            .await
    });
    Ok(SimHandle {
        addr,
        sim,
        stop,
        server: Some(server),
    })
}

/// Runs the simulator until Ctrl-C or SIGTERM.
pub async fn run(args: SimArgs) -> anyhow::Result<()> {
    let handle = spawn(SimConfig::from(args)).await?;
    tracing::info!(addr = %handle.addr(), "vendor simulator is serving");
    println!("vendor simulator listening on http://{}", handle.addr());
    crate::commands::shutdown_signal().await;
    handle.shutdown().await
}

/// Locks a mutex, carrying on if a thread panicked while holding it: one failed request must not
/// take the whole simulator down.
fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}
