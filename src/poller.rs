//! The reconciliation poller: webhooks get lost, so every vendor's listing is read on a schedule
//! (its own poll interval, else `[poller] interval_secs`) and whatever was missed is backfilled.
//!
//! A pass reads `[synced_to − overlap, now)` page by page. Each page is stored, with the cursor
//! of the next page, in one transaction fenced by the vendor's poller lease (see
//! `app::storage::poller`): the cursor never runs ahead of what is stored, a crashed pass resumes
//! after its last stored page, and a poller that lost its lease cannot write. The vendor is
//! never called inside a transaction.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use app::domain::VendorId;
use app::storage::poller::{self as store, Lease, PollCursor};
use app::storage::vendors::{self, Vendor};
use app::storage::{now_utc, Db};
use chrono::{DateTime, Utc};
use tokio::sync::watch;

use crate::config::PollerSettings;
use crate::vendors::{adapter_for, VendorAdapter, VendorEndpoint};
use crate::webhooks::observed;

/// What one pass did.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct PassReport {
    /// False when another replica holds the vendor's lease (nothing was done).
    pub leader: bool,
    pub pages: u64,
    pub records: u64,
    pub backfills: u64,
    pub vendor_only: u64,
    /// The pass read its window to the end (false: page limit reached, lease lost or an error).
    pub complete: bool,
}

impl std::fmt::Display for PassReport {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        if !self.leader {
            return f.write_str("another replica holds the poller lease; nothing done");
        }
        write!(
            f,
            "pages={} records={} backfills={} vendor_only={}{}",
            self.pages,
            self.records,
            self.backfills,
            self.vendor_only,
            if self.complete { "" } else { " (incomplete)" }
        )
    }
}

/// What the scheduler remembers between rounds.
#[derive(Debug, Default)]
pub struct Round {
    /// Vendors whose lease this replica holds (renewed between passes).
    pub led: HashSet<VendorId>,
    /// When this replica last tried each vendor (a pass it led, or one that failed).
    pub tried: HashMap<VendorId, DateTime<Utc>>,
    /// The passes of the last round.
    pub passes: Vec<(VendorId, anyhow::Result<PassReport>)>,
}

/// When a vendor is next due (`None`: now). A vendor never polled, or whose pass was cut short,
/// is due now; otherwise `every` after its last complete pass began (`synced_to`). `not_before`
/// (this replica's last attempt plus the interval) can only make it later.
pub fn due_at(
    cursor: &PollCursor,
    every: chrono::Duration,
    not_before: Option<DateTime<Utc>>,
) -> Option<DateTime<Utc>> {
    let by_cursor = match (cursor.pass_from, cursor.synced_to) {
        (None, Some(synced)) => Some(synced + every),
        _ => None,
    };
    by_cursor.max(not_before)
}

pub struct Poller {
    db: Db,
    settings: PollerSettings,
    /// This replica's name in the lease table.
    holder: String,
}

impl Poller {
    pub fn new(db: Db, settings: PollerSettings, holder: String) -> Poller {
        Poller {
            db,
            settings,
            holder,
        }
    }

    pub fn holder(&self) -> &str {
        &self.holder
    }

    fn lease_ttl(&self) -> chrono::Duration {
        chrono::Duration::seconds(self.settings.lease_secs as i64)
    }

    /// How often a leader renews its leases between passes: a third of the lease, so two
    /// renewals may fail before it expires.
    pub fn heartbeat(&self) -> Duration {
        Duration::from_millis((self.settings.lease_secs.max(1) * 1000 / 3).max(100))
    }

    /// Renews the leases on `vendors`; returns the vendors still led. A renewal that fails for
    /// a database error is tried again at the next heartbeat (the lease may expire meanwhile,
    /// and then the fencing token keeps this replica from writing).
    pub async fn renew(&self, vendors: HashSet<VendorId>) -> HashSet<VendorId> {
        let mut still_led = HashSet::with_capacity(vendors.len());
        for vendor in vendors {
            match self.acquire(vendor.as_str()).await {
                Ok(Some(_)) => {
                    still_led.insert(vendor);
                }
                Ok(None) => {
                    tracing::warn!(vendor = %vendor, holder = %self.holder, "poller lease lost to another replica");
                }
                Err(err) => {
                    tracing::warn!(vendor = %vendor, error = %format!("{err:#}"), "poller lease not renewed; trying again");
                    still_led.insert(vendor);
                }
            }
        }
        still_led
    }

    /// Tries to take (or renew) the vendor's lease.
    pub async fn acquire(&self, vendor_id: &str) -> anyhow::Result<Option<Lease>> {
        Ok(store::acquire_lease(&self.db, vendor_id, &self.holder, self.lease_ttl()).await?)
    }

    /// One pass over one vendor, if this replica gets the lease.
    #[tracing::instrument(skip(self), fields(holder = %self.holder))]
    pub async fn run_once(&self, vendor_id: &VendorId) -> anyhow::Result<PassReport> {
        let vendor = vendors::get_vendor(&self.db, vendor_id).await?;
        let Some(lease) = self.acquire(vendor_id.as_str()).await? else {
            return Ok(PassReport::default());
        };
        let adapter = self.adapter(&vendor)?;
        self.pass(&vendor, adapter.as_ref(), lease).await
    }

    /// One pass with a given adapter and lease (tests use this to present a stale lease).
    pub async fn pass(
        &self,
        vendor: &Vendor,
        adapter: &dyn VendorAdapter,
        mut lease: Lease,
    ) -> anyhow::Result<PassReport> {
        let vendor_label = vendor.id.as_str().to_string();
        let mut report = PassReport {
            leader: true,
            ..PassReport::default()
        };
        let mut cursor = store::cursor(&self.db, vendor.id.as_str()).await?;
        let (from, to) = match (cursor.pass_from, cursor.pass_to) {
            // A pass was cut short: resume after its last stored page.
            (Some(from), Some(to)) => (from, to),
            _ => {
                let now = now_utc();
                let overlap = chrono::Duration::seconds(self.settings.overlap_secs as i64);
                let from = match cursor.synced_to {
                    Some(synced) => synced - overlap,
                    None => {
                        now - chrono::Duration::seconds(self.settings.initial_lookback_secs as i64)
                    }
                };
                if !store::begin_pass(&self.db, &lease, from, now).await? {
                    tracing::warn!(vendor = %vendor_label, "poller lease lost before the pass began");
                    return Ok(report);
                }
                cursor.page_cursor = None;
                (from, now)
            }
        };
        let mut page_cursor = cursor.page_cursor;
        for _ in 0..self.settings.page_limit {
            let page = adapter
                .list_orders(from, to, page_cursor.as_deref())
                .await
                .with_context(|| format!("listing orders of vendor {vendor_label}"))?;
            let records: Vec<_> = page
                .orders
                .iter()
                .map(|order| observed(order, &vendor.status_mapping))
                .collect();
            let Some(stored) =
                store::store_page(&self.db, &lease, &records, page.next_cursor.as_deref()).await?
            else {
                tracing::warn!(vendor = %vendor_label, token = lease.fencing_token, "poller lease lost; page not stored");
                metrics::counter!("giftrecon_poller_fenced_total", "vendor" => vendor_label.clone()).increment(1);
                return Ok(report);
            };
            report.pages += 1;
            report.records += stored.records;
            report.backfills += stored.backfills;
            report.vendor_only += stored.vendor_only;
            metrics::counter!("giftrecon_poller_pages_total", "vendor" => vendor_label.clone())
                .increment(1);
            metrics::counter!("giftrecon_poller_records_total", "vendor" => vendor_label.clone())
                .increment(stored.records);
            metrics::counter!("giftrecon_poller_backfills_total", "vendor" => vendor_label.clone())
                .increment(stored.backfills);
            if stored.finished {
                report.complete = true;
                let lag = (now_utc() - to).num_milliseconds().max(0) as f64 / 1000.0;
                metrics::gauge!("giftrecon_poller_lag_seconds", "vendor" => vendor_label.clone())
                    .set(lag);
                break;
            }
            page_cursor = page.next_cursor;
            // Keep the lease while paging; a lost lease shows at the next page's fence.
            if let Some(renewed) = self.acquire(vendor.id.as_str()).await? {
                lease = renewed;
            }
        }
        Ok(report)
    }

    fn adapter(&self, vendor: &Vendor) -> anyhow::Result<Box<dyn VendorAdapter>> {
        let base_url = vendor
            .base_url
            .clone()
            .with_context(|| format!("vendor {} has no base URL to poll", vendor.id))?;
        Ok(adapter_for(
            vendor.kind,
            VendorEndpoint {
                base_url,
                api_key: vendor.api_key.clone(),
                timeout: Duration::from_millis(self.settings.vendor_timeout_ms),
            },
        ))
    }

    /// Every vendor with a base URL, one pass each, due or not (`giftrecon poll --once`).
    pub async fn run_all_once(&self) -> Vec<(VendorId, anyhow::Result<PassReport>)> {
        let vendors = match vendors::list_vendors(&self.db).await {
            Ok(list) => list,
            Err(err) => {
                tracing::warn!(error = %err, "poller: cannot list vendors");
                return Vec::new();
            }
        };
        let mut results = Vec::new();
        for vendor in vendors.into_iter().filter(|v| v.base_url.is_some()) {
            let result = self.run_once(&vendor.id).await;
            if let Err(err) = &result {
                tracing::warn!(vendor = %vendor.id, error = %format!("{err:#}"), "poll pass failed");
            }
            results.push((vendor.id, result));
        }
        results
    }

    /// How often `vendor` is polled: its own interval, else the server's.
    pub fn every(&self, vendor: &Vendor) -> chrono::Duration {
        let secs = vendor
            .poll_interval
            .map_or(self.settings.interval_secs.max(1), |own| {
                u64::from(own.secs())
            });
        chrono::Duration::seconds(secs as i64)
    }

    /// One round of the schedule: polls each vendor that is due, and says how long until the
    /// next one is. A vendor is due once its interval has passed since the start of its last
    /// complete pass, by whichever replica (the cursor says), and since this replica last tried
    /// it (so a failing vendor is tried once per interval, not in a loop).
    pub async fn poll_due(&self, round: &mut Round) -> Duration {
        // Intervals changed on the Vendors page take effect within a minute.
        let longest = Duration::from_secs(self.settings.interval_secs.clamp(1, 60));
        // Another replica holds a due vendor's lease: look again within the lease time, so a
        // dead leader is replaced quickly.
        let retry = Duration::from_secs(self.settings.lease_secs.clamp(1, 60));
        let vendors = match vendors::list_vendors(&self.db).await {
            Ok(list) => list,
            Err(err) => {
                tracing::warn!(error = %err, "poller: cannot list vendors");
                return longest.min(retry);
            }
        };
        let mut wait = longest;
        for vendor in vendors.into_iter().filter(|v| v.base_url.is_some()) {
            let every = self.every(&vendor);
            let cursor = match store::cursor(&self.db, vendor.id.as_str()).await {
                Ok(cursor) => cursor,
                Err(err) => {
                    tracing::warn!(vendor = %vendor.id, error = %err, "poller: cannot read the cursor");
                    wait = wait.min(retry);
                    continue;
                }
            };
            let now = now_utc();
            let retried = round.tried.get(&vendor.id).map(|at| *at + every);
            let due = due_at(&cursor, every, retried);
            if let Some(at) = due.filter(|at| *at > now) {
                wait = wait.min((at - now).to_std().unwrap_or_default());
                continue;
            }
            let result = self.run_once(&vendor.id).await;
            let again = match &result {
                Ok(report) if !report.leader => {
                    round.led.remove(&vendor.id);
                    retry
                }
                Ok(_) => {
                    round.led.insert(vendor.id.clone());
                    round.tried.insert(vendor.id.clone(), now);
                    every.to_std().unwrap_or_default()
                }
                Err(err) => {
                    tracing::warn!(vendor = %vendor.id, error = %format!("{err:#}"), "poll pass failed");
                    round.tried.insert(vendor.id.clone(), now);
                    every.to_std().unwrap_or_default()
                }
            };
            wait = wait.min(again);
            round.passes.push((vendor.id, result));
        }
        wait.max(Duration::from_secs(1))
    }

    /// Polls each vendor when it is due (see [`Poller::poll_due`]) until `shutdown` turns true.
    ///
    /// Between passes the leader renews its leases every `lease_secs / 3` (a heartbeat), so
    /// leadership stays put however long the interval; it moves only when the leader stops
    /// renewing (it stopped, or cannot reach the database) and its lease expires, or when it
    /// shuts down and releases the lease.
    pub async fn run(self: Arc<Self>, mut shutdown: watch::Receiver<bool>) {
        let heartbeat = self.heartbeat();
        let mut round = Round::default();
        'passes: loop {
            if *shutdown.borrow() {
                break;
            }
            round.passes.clear();
            let wait = self.poll_due(&mut round).await;
            let next_pass = tokio::time::Instant::now() + wait;
            loop {
                let nap = if round.led.is_empty() {
                    next_pass
                } else {
                    (tokio::time::Instant::now() + heartbeat).min(next_pass)
                };
                tokio::select! {
                    _ = shutdown.changed() => break 'passes,
                    _ = tokio::time::sleep_until(nap) => {},
                }
                if tokio::time::Instant::now() >= next_pass {
                    break;
                }
                round.led = self.renew(std::mem::take(&mut round.led)).await;
            }
        }
        // Hand the leases over at once rather than making the next leader wait for expiry.
        if let Ok(list) = vendors::list_vendors(&self.db).await {
            for vendor in list {
                if let Ok(Some((holder, token, expires_at))) =
                    store::lease_of(&self.db, vendor.id.as_str()).await
                {
                    if holder == self.holder {
                        let lease = Lease {
                            vendor_id: vendor.id.to_string(),
                            holder,
                            fencing_token: token,
                            expires_at,
                        };
                        let _ = store::release_lease(&self.db, &lease).await;
                    }
                }
            }
        }
    }
}

/// A name for this replica in lease tables: host-unique and process-unique.
pub fn replica_name() -> String {
    format!(
        "{}-{}",
        std::process::id(),
        &uuid::Uuid::new_v4().simple().to_string()[..12]
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(secs: i64) -> DateTime<Utc> {
        DateTime::from_timestamp(1_800_000_000 + secs, 0).unwrap()
    }

    #[test]
    fn a_vendor_is_due_an_interval_after_its_last_complete_pass() {
        let every = chrono::Duration::seconds(300);
        let never = PollCursor::default();
        assert_eq!(due_at(&never, every, None), None, "never polled: due now");
        let synced = PollCursor {
            synced_to: Some(at(0)),
            ..PollCursor::default()
        };
        assert_eq!(due_at(&synced, every, None), Some(at(300)));
        // This replica's last attempt can only make it later.
        assert_eq!(due_at(&synced, every, Some(at(100))), Some(at(300)));
        assert_eq!(due_at(&synced, every, Some(at(400))), Some(at(400)));
        // A pass cut short resumes at once, unless this replica just tried.
        let cut_short = PollCursor {
            synced_to: Some(at(0)),
            pass_from: Some(at(-600)),
            pass_to: Some(at(0)),
            ..PollCursor::default()
        };
        assert_eq!(due_at(&cut_short, every, None), None);
        assert_eq!(due_at(&cut_short, every, Some(at(50))), Some(at(50)));
    }
}
