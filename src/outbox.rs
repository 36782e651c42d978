//! Outbox workers: take durable jobs, call vendors with the order's persisted key, record what
//! happened. The vendor call never runs inside a database transaction; a crash at any point
//! leaves the job to be leased again, and the vendor sees the same key again.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use anyhow::Context;
use app::domain::GlState;
use app::storage::orders::{self, Order, Submission};
use app::storage::outbox::{self, Job, JobKind, JobOutcome, VendorObservation};
use app::storage::vendor_fetch::{self, FetchJob, FetchOutcome};
use app::storage::vendors::{self, Vendor};
use app::storage::Db;
use chrono::Utc;
use rand::Rng;
use serde_json::json;
use tokio::sync::{watch, Notify};

use crate::config::OutboxSettings;
use crate::vendors::{
    adapter_for, PlaceOrder, VendorAdapter, VendorEndpoint, VendorError, VendorOrder,
};

/// Test-only crash points: `GIFTRECON_FAILPOINT=before_vendor_call|after_vendor_call` makes the
/// process kill itself with SIGKILL at that point, as a power cut would.
const FAILPOINT_ENV: &str = "GIFTRECON_FAILPOINT";

/// What one step did, for tests and logs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StepReport {
    pub job: Job,
    pub outcome: JobOutcome,
    /// False when the lease was lost before the outcome could be recorded.
    pub recorded: bool,
}

/// What one fetch step did (an order a webhook only named, read from its vendor).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FetchReport {
    pub job: FetchJob,
    pub outcome: FetchOutcome,
    /// False when the lease was lost before the outcome could be recorded.
    pub recorded: bool,
}

/// An adapter built for a vendor, with the settings it was built from (kind and base URL).
type CachedAdapter = (String, Arc<dyn VendorAdapter>);

pub struct OutboxWorker {
    db: Db,
    settings: OutboxSettings,
    name: String,
    wake: Arc<Notify>,
    adapters: Mutex<HashMap<String, CachedAdapter>>,
    failpoint: Option<String>,
}

impl OutboxWorker {
    pub fn new(db: Db, settings: OutboxSettings, name: String, wake: Arc<Notify>) -> OutboxWorker {
        OutboxWorker {
            db,
            settings,
            name,
            wake,
            adapters: Mutex::new(HashMap::new()),
            failpoint: std::env::var(FAILPOINT_ENV).ok(),
        }
    }

    /// Runs until `shutdown` is notified: steps while jobs are due, then sleeps until woken,
    /// until the next job falls due, or `idle_poll_ms`, whichever comes first.
    pub async fn run(self: Arc<Self>, mut shutdown: watch::Receiver<bool>) {
        let idle = Duration::from_millis(self.settings.idle_poll_ms);
        loop {
            if *shutdown.borrow() {
                return;
            }
            match self.run_once().await {
                Ok(Some(_)) => continue,
                Ok(None) => {}
                Err(err) => {
                    tracing::warn!(worker = %self.name, error = %format!("{err:#}"), "outbox step failed")
                }
            }
            match self.fetch_once().await {
                Ok(Some(_)) => continue,
                Ok(None) => {}
                Err(err) => {
                    tracing::warn!(worker = %self.name, error = %format!("{err:#}"), "vendor fetch step failed")
                }
            }
            let next_job = outbox::next_due_at(&self.db).await.ok().flatten();
            let next_fetch = vendor_fetch::next_due_at(&self.db).await.ok().flatten();
            let until_due = match next_job.into_iter().chain(next_fetch).min() {
                Some(at) => (at - Utc::now())
                    .to_std()
                    .unwrap_or(Duration::ZERO)
                    .min(idle),
                None => idle,
            };
            tokio::select! {
                _ = shutdown.changed() => {},
                _ = self.wake.notified() => {},
                _ = tokio::time::sleep(until_due.max(Duration::from_millis(5))) => {},
            }
        }
    }

    /// Leases one due job, runs it and records the outcome. `None` when nothing is due.
    #[tracing::instrument(skip(self), fields(worker = %self.name))]
    pub async fn run_once(&self) -> anyhow::Result<Option<StepReport>> {
        let lease = chrono::Duration::seconds(self.settings.lease_secs as i64);
        let Some(job) = outbox::claim_due(&self.db, &self.name, lease).await? else {
            return Ok(None);
        };
        let order = orders::get(&self.db, &job.order_id)
            .await?
            .with_context(|| format!("outbox job {} names a missing order", job.id))?;
        let vendor_id = app::domain::VendorId::parse(&order.vendor_id)?;
        let vendor = vendors::get_vendor(&self.db, &vendor_id).await?;
        let (outcome, event, detail) = match self.adapter(&vendor) {
            Ok(adapter) => match job.kind {
                JobKind::PlaceOrder => self.place(&job, &order, &vendor, adapter.as_ref()).await,
                JobKind::SyncOrder => self.sync(&job, &order, &vendor, adapter.as_ref()).await,
            },
            Err(reason) => (
                JobOutcome::Dead {
                    reason: reason.clone(),
                    gl_state: None,
                },
                "attempt_failed",
                json!({ "attempt": job.attempts, "error": reason }),
            ),
        };
        let recorded = outbox::finish(&self.db, &job, &self.name, &outcome, event, &detail).await?;
        if !recorded {
            tracing::warn!(
                job = job.id,
                "lease lost before the outcome was recorded; another worker has the job"
            );
        }
        metrics::counter!("giftrecon_outbox_steps_total", "kind" => job.kind.as_str(), "outcome" => outcome_label(&outcome)).increment(1);
        Ok(Some(StepReport {
            job,
            outcome,
            recorded,
        }))
    }

    /// Leases one due fetch job (an order a verified webhook only named, unknown to giftrecon),
    /// reads the order from the vendor with no transaction open, and records it as a vendor
    /// record. `None` when nothing is due.
    #[tracing::instrument(skip(self), fields(worker = %self.name))]
    pub async fn fetch_once(&self) -> anyhow::Result<Option<FetchReport>> {
        let lease = chrono::Duration::seconds(self.settings.lease_secs as i64);
        let Some(job) = vendor_fetch::claim_due(&self.db, &self.name, lease).await? else {
            return Ok(None);
        };
        let vendor_id = app::domain::VendorId::parse(&job.vendor_id)?;
        let vendor = vendors::get_vendor(&self.db, &vendor_id).await?;
        let give_up = job.attempts >= self.settings.max_sync_attempts;
        let later = |retry_after: Option<Duration>| {
            Utc::now()
                + self
                    .backoff(job.attempts, retry_after)
                    .max(ms(self.settings.sync_delay_ms))
        };
        let outcome = match self.adapter(&vendor) {
            Err(reason) => FetchOutcome::Dead { reason },
            Ok(adapter) => match adapter.fetch_order(&job.vendor_order_id).await {
                Ok(Some(found)) => {
                    FetchOutcome::Found(crate::webhooks::observed(&found, &vendor.status_mapping))
                }
                Ok(None) if !give_up => FetchOutcome::Retry {
                    run_at: later(None),
                    error: "the vendor does not know this order yet".into(),
                },
                Ok(None) => FetchOutcome::Dead {
                    reason: "the vendor does not know this order".into(),
                },
                // Nothing to retry; the poller's next pass reads every order the vendor has.
                Err(err @ VendorError::Unsupported { .. }) => FetchOutcome::Dead {
                    reason: err.to_string(),
                },
                Err(err) if give_up => FetchOutcome::Dead {
                    reason: err.to_string(),
                },
                Err(err) => FetchOutcome::Retry {
                    run_at: later(retry_after(&err)),
                    error: err.to_string(),
                },
            },
        };
        let recorded = vendor_fetch::finish(&self.db, &job, &self.name, &outcome)
            .await?
            .is_some();
        if !recorded {
            tracing::warn!(
                job = job.id,
                "lease lost before the fetch could be recorded; another worker has the job"
            );
        }
        let label = match &outcome {
            FetchOutcome::Found(_) => "found",
            FetchOutcome::Retry { .. } => "retry",
            FetchOutcome::Dead { .. } => "dead",
        };
        metrics::counter!("giftrecon_vendor_fetches_total", "vendor" => job.vendor_id.clone(), "outcome" => label)
            .increment(1);
        Ok(Some(FetchReport {
            job,
            outcome,
            recorded,
        }))
    }

    fn adapter(&self, vendor: &Vendor) -> Result<Arc<dyn VendorAdapter>, String> {
        let base_url = vendor
            .base_url
            .clone()
            .ok_or_else(|| format!("vendor {} has no base URL to send orders to", vendor.id))?;
        let fingerprint = format!("{}|{}", vendor.kind, base_url);
        let mut cache = self.adapters.lock().expect("adapter cache lock");
        if let Some((seen, adapter)) = cache.get(vendor.id.as_str()) {
            if *seen == fingerprint {
                return Ok(adapter.clone());
            }
        }
        let adapter: Arc<dyn VendorAdapter> = Arc::from(adapter_for(
            vendor.kind,
            VendorEndpoint {
                base_url,
                api_key: vendor.api_key.clone(),
                timeout: Duration::from_millis(self.settings.vendor_timeout_ms),
            },
        ));
        cache.insert(vendor.id.to_string(), (fingerprint, adapter.clone()));
        Ok(adapter)
    }

    async fn place(
        &self,
        job: &Job,
        order: &Order,
        vendor: &Vendor,
        adapter: &dyn VendorAdapter,
    ) -> (JobOutcome, &'static str, serde_json::Value) {
        self.failpoint("before_vendor_call");
        let result = adapter
            .place_order(&PlaceOrder {
                vendor_key: order.vendor_key.clone(),
                customer_id: order.customer_id.clone(),
                brand_id: order.brand_id.clone(),
                amount: order.amount,
            })
            .await;
        self.failpoint("after_vendor_call");
        match result {
            Ok(placed) => {
                let observation = observe(vendor, &placed);
                let follow_up = needs_sync(&observation).then(|| {
                    (
                        JobKind::SyncOrder,
                        Utc::now() + ms(self.settings.sync_delay_ms),
                    )
                });
                let detail = json!({
                    "attempt": job.attempts,
                    "vendor_key": order.vendor_key,
                    "vendor_order_id": placed.vendor_order_id,
                    "vendor_status": placed.status,
                });
                (
                    JobOutcome::Done {
                        observation,
                        submission: Some(Submission::Placed),
                        follow_up,
                    },
                    "attempt_succeeded",
                    detail,
                )
            }
            Err(err) => {
                let outcome = match &err {
                    VendorError::Rejected { .. } => JobOutcome::Dead {
                        reason: err.to_string(),
                        gl_state: Some(GlState::Failed),
                    },
                    VendorError::KeyConflict | VendorError::Unsupported { .. } => {
                        JobOutcome::Dead {
                            reason: err.to_string(),
                            gl_state: None,
                        }
                    }
                    _ if job.attempts >= self.settings.max_attempts => JobOutcome::Dead {
                        reason: format!(
                            "no definite answer after {} attempts; last: {err}",
                            job.attempts
                        ),
                        gl_state: None,
                    },
                    _ => JobOutcome::Retry {
                        run_at: Utc::now() + self.backoff(job.attempts, retry_after(&err)),
                        error: err.to_string(),
                    },
                };
                let detail = attempt_failed_detail(job, order, &err, &outcome);
                (outcome, "attempt_failed", detail)
            }
        }
    }

    async fn sync(
        &self,
        job: &Job,
        order: &Order,
        vendor: &Vendor,
        adapter: &dyn VendorAdapter,
    ) -> (JobOutcome, &'static str, serde_json::Value) {
        let give_up = job.attempts >= self.settings.max_sync_attempts;
        let later = || {
            Utc::now()
                + self
                    .backoff(job.attempts, None)
                    .max(ms(self.settings.sync_delay_ms))
        };
        let looked_up = match adapter.get_order(&order.vendor_key).await {
            // Vendors with no lookup by our key (Runa) are read by their own order id, which a
            // webhook that only names the order has given us.
            Err(VendorError::Unsupported { .. }) if order.vendor_order_id.is_some() => {
                let vendor_order_id = order.vendor_order_id.as_deref().unwrap_or_default();
                adapter.fetch_order(vendor_order_id).await
            }
            other => other,
        };
        match looked_up {
            Ok(Some(found)) => {
                let observation = observe(vendor, &found);
                let detail = json!({
                    "attempt": job.attempts,
                    "vendor_order_id": found.vendor_order_id,
                    "vendor_status": found.status,
                });
                // Not final yet: record what we saw and look again later.
                let follow_up =
                    (needs_sync(&observation) && !give_up).then(|| (JobKind::SyncOrder, later()));
                (
                    JobOutcome::Done {
                        observation,
                        submission: None,
                        follow_up,
                    },
                    "status_checked",
                    detail,
                )
            }
            Ok(None) if !give_up => (
                JobOutcome::Retry {
                    run_at: later(),
                    error: "the vendor does not know this order yet".into(),
                },
                "status_checked",
                json!({ "attempt": job.attempts, "error": "the vendor does not know this order yet" }),
            ),
            Ok(None) => (
                JobOutcome::Dead {
                    reason: "the vendor does not know this order".into(),
                    gl_state: None,
                },
                "status_checked",
                json!({ "attempt": job.attempts, "error": "the vendor does not know this order" }),
            ),
            Err(err) => {
                let outcome = if give_up {
                    JobOutcome::Dead {
                        reason: err.to_string(),
                        gl_state: None,
                    }
                } else {
                    JobOutcome::Retry {
                        run_at: Utc::now() + self.backoff(job.attempts, retry_after(&err)),
                        error: err.to_string(),
                    }
                };
                let detail = attempt_failed_detail(job, order, &err, &outcome);
                (outcome, "status_check_failed", detail)
            }
        }
    }

    /// Exponential backoff with full jitter, never shorter than the vendor's Retry-After.
    pub fn backoff(&self, attempt: i32, retry_after: Option<Duration>) -> chrono::Duration {
        let exponent = attempt.saturating_sub(1).clamp(0, 30) as u32;
        let ceiling = self
            .settings
            .base_delay_ms
            .saturating_mul(1u64 << exponent)
            .min(self.settings.max_delay_ms);
        let jittered = rand::thread_rng().gen_range(0..=ceiling);
        let floor = retry_after.map_or(0, |d| d.as_millis() as u64);
        ms(jittered.max(floor))
    }

    fn failpoint(&self, name: &str) {
        if self.failpoint.as_deref() == Some(name) {
            tracing::warn!(failpoint = name, "failpoint reached: killing the process");
            // SAFETY: sends a signal to this very process; nothing in Rust's memory is touched.
            unsafe {
                libc::kill(libc::getpid(), libc::SIGKILL);
            }
        }
    }
}

fn ms(millis: u64) -> chrono::Duration {
    chrono::Duration::milliseconds(millis.min(i64::MAX as u64) as i64)
}

fn retry_after(err: &VendorError) -> Option<Duration> {
    match err {
        VendorError::Throttled { retry_after, .. } => *retry_after,
        _ => None,
    }
}

/// The vendor's status, mapped through the vendor's own mapping (unmapped: no GL change).
fn observe(vendor: &Vendor, order: &VendorOrder) -> VendorObservation {
    VendorObservation {
        vendor_order_id: Some(order.vendor_order_id.clone()),
        vendor_status: Some(order.status.clone()),
        gl_state: vendor.status_mapping.gl_state_for(&order.status),
    }
}

fn needs_sync(observation: &VendorObservation) -> bool {
    matches!(observation.gl_state, None | Some(GlState::Pending))
}

fn attempt_failed_detail(
    job: &Job,
    order: &Order,
    err: &VendorError,
    outcome: &JobOutcome,
) -> serde_json::Value {
    let mut detail = json!({
        "attempt": job.attempts,
        "vendor_key": order.vendor_key,
        "error": err.to_string(),
    });
    match outcome {
        JobOutcome::Retry { run_at, .. } => detail["retry_at"] = json!(run_at),
        JobOutcome::Dead { reason, .. } => detail["gave_up"] = json!(reason),
        JobOutcome::Done { .. } => {}
    }
    if let VendorError::Throttled {
        retry_after: Some(d),
        ..
    } = err
    {
        detail["retry_after_ms"] = json!(d.as_millis() as u64);
    }
    detail
}

fn outcome_label(outcome: &JobOutcome) -> &'static str {
    match outcome {
        JobOutcome::Done { .. } => "done",
        JobOutcome::Retry { .. } => "retry",
        JobOutcome::Dead { .. } => "dead",
    }
}

/// Starts `settings.workers` workers; they stop when `shutdown` turns true.
pub fn spawn_workers(
    db: &Db,
    settings: &OutboxSettings,
    wake: &Arc<Notify>,
    shutdown: &watch::Receiver<bool>,
) -> Vec<tokio::task::JoinHandle<()>> {
    let host = uuid::Uuid::new_v4().simple().to_string();
    (0..settings.workers)
        .map(|i| {
            let worker = Arc::new(OutboxWorker::new(
                db.clone(),
                settings.clone(),
                format!("{}-{i}", &host[..12]),
                wake.clone(),
            ));
            tokio::spawn(worker.run(shutdown.clone()))
        })
        .collect()
}
