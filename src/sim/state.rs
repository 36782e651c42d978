//! The simulator's shared state: the order book, the fault settings and dice, the counters, and
//! the queues feeding the fulfilment and webhook workers.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use tokio::sync::{mpsc, watch};
use tokio::time::Instant;

use super::faults::{Dice, FaultError, Faults, FaultsPatch};
use super::lock;
use super::order::{Order, OrderRequest, OrderStatus};
use super::store::{Placed, Store, StoreError};
use super::webhooks::Event;

/// What the simulator has seen and done since it started (or was reset).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct SimStats {
    /// Orders created through `POST /api/v1/orders` (orders inserted with `/sim/orders` are not
    /// counted).
    pub orders: u64,
    /// Distinct idempotency keys those orders used.
    pub keys: u64,
    /// The most orders sharing one idempotency key: 1 for a correct vendor, 0 before any order.
    pub max_orders_per_key: u64,
    /// `/api/v1` requests received, faulted ones included.
    pub requests: u64,
    /// Requests answered 500/502/503 by `error_rate`.
    pub errors_injected: u64,
    /// Requests answered 429 by `rate_limit_rate`.
    pub rate_limited: u64,
    /// Requests whose work was done but whose answer was cut off by `drop_response_rate`.
    pub responses_dropped: u64,
    /// Webhook events produced (one per order change while a webhook URL is set).
    pub webhook_events: u64,
    /// Deliveries the receiver accepted with a 2xx; a duplicated event counts twice.
    pub webhooks_sent: u64,
    /// HTTP POSTs made, retries included.
    pub webhook_attempts: u64,
    /// Deliveries abandoned after the last retry.
    pub webhooks_failed: u64,
    /// Events never sent, by `webhook_drop_rate`.
    pub webhooks_dropped: u64,
    /// Events sent twice, by `webhook_duplicate_rate`.
    pub webhooks_duplicated: u64,
    /// Events held back, by `webhook_reorder_rate`.
    pub webhooks_reordered: u64,
    /// Events signed with the wrong secret, by `bad_signature_rate`.
    pub webhooks_bad_signature: u64,
}

/// Counters behind [`SimStats`] that are not derived from the order book.
#[derive(Default)]
pub struct Counters {
    pub requests: AtomicU64,
    pub errors_injected: AtomicU64,
    pub rate_limited: AtomicU64,
    pub responses_dropped: AtomicU64,
    pub webhook_events: AtomicU64,
    pub webhooks_sent: AtomicU64,
    pub webhook_attempts: AtomicU64,
    pub webhooks_failed: AtomicU64,
    pub webhooks_dropped: AtomicU64,
    pub webhooks_duplicated: AtomicU64,
    pub webhooks_reordered: AtomicU64,
    pub webhooks_bad_signature: AtomicU64,
}

impl Counters {
    fn all(&self) -> [&AtomicU64; 12] {
        [
            &self.requests,
            &self.errors_injected,
            &self.rate_limited,
            &self.responses_dropped,
            &self.webhook_events,
            &self.webhooks_sent,
            &self.webhook_attempts,
            &self.webhooks_failed,
            &self.webhooks_dropped,
            &self.webhooks_duplicated,
            &self.webhooks_reordered,
            &self.webhooks_bad_signature,
        ]
    }
}

/// Adds one to a counter.
pub fn bump(counter: &AtomicU64) {
    counter.fetch_add(1, Ordering::Relaxed);
}

fn read(counter: &AtomicU64) -> u64 {
    counter.load(Ordering::Relaxed)
}

/// Everything the handlers and workers share.
pub struct Sim {
    pub store: Mutex<Store>,
    faults: Mutex<Faults>,
    pub dice: Dice,
    pub counters: Counters,
    fulfil_delay: Duration,
    /// Pending orders to complete, with when; read by [`fulfil_pending`].
    fulfil_queue: mpsc::UnboundedSender<(Instant, String)>,
    /// Webhook events, when a webhook URL is set; read by the webhook dispatcher.
    events: Option<mpsc::UnboundedSender<Event>>,
}

impl Sim {
    pub fn new(
        faults: Faults,
        seed: Option<u64>,
        fulfil_delay: Duration,
        fulfil_queue: mpsc::UnboundedSender<(Instant, String)>,
        events: Option<mpsc::UnboundedSender<Event>>,
    ) -> Sim {
        Sim {
            store: Mutex::new(Store::default()),
            faults: Mutex::new(faults),
            dice: Dice::new(seed),
            counters: Counters::default(),
            fulfil_delay,
            fulfil_queue,
            events,
        }
    }

    pub fn faults(&self) -> Faults {
        lock(&self.faults).clone()
    }

    /// Replaces the fault settings, if they are valid.
    pub fn set_faults(&self, faults: Faults) -> Result<(), FaultError> {
        faults.validate()?;
        *lock(&self.faults) = faults;
        Ok(())
    }

    /// Applies a partial update atomically; answers the full settings.
    pub fn update_faults(&self, patch: &FaultsPatch) -> Result<Faults, FaultError> {
        let mut faults = lock(&self.faults);
        *faults = faults.patched(patch)?;
        Ok(faults.clone())
    }

    /// Queues a webhook event for `order`. Called with the store locked, so the events of one
    /// order are queued in the order its changes happened.
    fn notify(&self, event_type: &'static str, order: &Order) {
        let Some(events) = &self.events else {
            return;
        };
        bump(&self.counters.webhook_events);
        let _ = events.send(Event::new(event_type, order.clone()));
    }

    pub fn place(&self, request: &OrderRequest) -> Result<Placed, StoreError> {
        let mut store = lock(&self.store);
        let placed = store.place(request)?;
        if let Placed::Created(order) = &placed {
            self.notify("order.created", order);
            let due = Instant::now() + self.fulfil_delay;
            let _ = self.fulfil_queue.send((due, order.vendor_order_id.clone()));
        }
        Ok(placed)
    }

    pub fn complete_pending(&self, vendor_order_id: &str) {
        let mut store = lock(&self.store);
        if let Some(order) = store.complete_pending(vendor_order_id) {
            tracing::debug!(
                vendor_order_id,
                status = order.status.as_str(),
                "order completed"
            );
            self.notify(order.status.event_type(), &order);
        }
    }

    pub fn refund(&self, vendor_order_id: &str) -> Result<Order, StoreError> {
        let mut store = lock(&self.store);
        let order = store.refund(vendor_order_id)?;
        self.notify("order.refunded", &order);
        Ok(order)
    }

    pub fn set_status(
        &self,
        vendor_order_id: &str,
        status: OrderStatus,
    ) -> Result<Order, StoreError> {
        let mut store = lock(&self.store);
        let order = store.set_status(vendor_order_id, status)?;
        self.notify(status.event_type(), &order);
        Ok(order)
    }

    /// Inserts an order placed through another channel; announces it only if `notify`.
    pub fn insert(
        &self,
        order: Order,
        created_at: Option<DateTime<Utc>>,
        updated_at: Option<DateTime<Utc>>,
        notify: bool,
    ) -> Result<Order, StoreError> {
        let mut store = lock(&self.store);
        let order = store.insert(order, created_at, updated_at)?;
        if notify {
            self.notify("order.created", &order);
        }
        Ok(order)
    }

    pub fn stats(&self) -> SimStats {
        let (orders, keys, max_orders_per_key) = lock(&self.store).api_counts();
        let c = &self.counters;
        SimStats {
            orders,
            keys,
            max_orders_per_key,
            requests: read(&c.requests),
            errors_injected: read(&c.errors_injected),
            rate_limited: read(&c.rate_limited),
            responses_dropped: read(&c.responses_dropped),
            webhook_events: read(&c.webhook_events),
            webhooks_sent: read(&c.webhooks_sent),
            webhook_attempts: read(&c.webhook_attempts),
            webhooks_failed: read(&c.webhooks_failed),
            webhooks_dropped: read(&c.webhooks_dropped),
            webhooks_duplicated: read(&c.webhooks_duplicated),
            webhooks_reordered: read(&c.webhooks_reordered),
            webhooks_bad_signature: read(&c.webhooks_bad_signature),
        }
    }

    /// Forgets every order and zeroes every counter; fault settings stay.
    pub fn reset(&self) {
        lock(&self.store).clear();
        for counter in self.counters.all() {
            counter.store(0, Ordering::Relaxed);
        }
    }
}

/// Completes pending orders once their delay is over. The delay is the same for every order,
/// so the queue is already in due order and one task serves any number of orders.
pub async fn fulfil_pending(
    sim: Arc<Sim>,
    mut queue: mpsc::UnboundedReceiver<(Instant, String)>,
    mut shutdown: watch::Receiver<bool>,
) {
    loop {
        let next = tokio::select! {
            next = queue.recv() => next,
            _ = shutdown.wait_for(|stop| *stop) => None,
        };
        let Some((due, vendor_order_id)) = next else {
            return;
        };
        tokio::select! {
            _ = tokio::time::sleep_until(due) => sim.complete_pending(&vendor_order_id),
            _ = shutdown.wait_for(|stop| *stop) => return,
        }
    }
}
