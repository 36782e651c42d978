//! The simulated vendor's order book, in memory: orders indexed by id, by idempotency key and
//! by `(updated_at, vendor_order_id)` for reconciliation paging.
//!
//! All changes happen under one lock held by the caller, and every change takes its
//! `updated_at` from [`Store::tick`], which never repeats or goes back. So a created or changed
//! order always sorts after every order already in the index: a paging client that holds a
//! cursor sees each order that stays put exactly once, and sees a changed order again at its
//! new position (if that is still inside its window).

use std::collections::{BTreeSet, HashMap};
use std::ops::Bound;

use chrono::{DateTime, TimeDelta, Utc};

use super::order::{new_order_id, to_micros, Order, OrderRequest, OrderStatus};

/// The outcome of a placement.
#[derive(Debug)]
pub enum Placed {
    /// A new order (answer 201).
    Created(Order),
    /// The key was seen before with the same request: the existing order, as it is now (200).
    Replayed(Order),
}

#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum StoreError {
    #[error("idempotency key {0:?} was already used for a different order")]
    KeyReused(String),
    #[error("idempotency key {0:?} already belongs to order {1}")]
    KeyTaken(String, String),
    #[error("order {0} already exists")]
    DuplicateId(String),
    #[error("no order {0}")]
    NotFound(String),
    #[error(
        "order {id} is {status}; only fulfilled, completed or delivered orders can be refunded"
    )]
    NotRefundable { id: String, status: &'static str },
}

/// A position in the `(updated_at, vendor_order_id)` order: the last record of a page.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Cursor {
    pub updated_at: DateTime<Utc>,
    pub vendor_order_id: String,
}

const CURSOR_VERSION: &str = "v1";

impl Cursor {
    /// Opaque to clients: hex of `v1:<updated_at micros>:<vendor_order_id>`.
    pub fn encode(&self) -> String {
        hex::encode(format!(
            "{CURSOR_VERSION}:{}:{}",
            self.updated_at.timestamp_micros(),
            self.vendor_order_id
        ))
    }

    pub fn decode(input: &str) -> Result<Cursor, String> {
        let bad = || format!("cursor {input:?} was not issued by this vendor");
        let bytes = hex::decode(input).map_err(|_| bad())?;
        let text = String::from_utf8(bytes).map_err(|_| bad())?;
        let rest = text
            .strip_prefix(CURSOR_VERSION)
            .and_then(|r| r.strip_prefix(':'))
            .ok_or_else(bad)?;
        let (micros, id) = rest.split_once(':').ok_or_else(bad)?;
        let updated_at = micros
            .parse()
            .ok()
            .and_then(DateTime::from_timestamp_micros)
            .ok_or_else(bad)?;
        if id.is_empty() {
            return Err(bad());
        }
        Ok(Cursor {
            updated_at,
            vendor_order_id: id.to_string(),
        })
    }
}

/// `[from, to)` on `updated_at`; `None` is unbounded.
#[derive(Clone, Copy, Debug, Default)]
pub struct Window {
    pub from: Option<DateTime<Utc>>,
    pub to: Option<DateTime<Utc>>,
}

/// One page of reconciliation records.
#[derive(Debug)]
pub struct Page {
    pub records: Vec<Order>,
    /// Where the next page starts; `None` on the last page.
    pub next: Option<Cursor>,
}

/// The order book.
#[derive(Debug)]
pub struct Store {
    orders: HashMap<String, Order>,
    by_key: HashMap<String, String>,
    by_update: BTreeSet<(DateTime<Utc>, String)>,
    /// Orders created through the API, in total and per idempotency key.
    api_orders: u64,
    api_orders_per_key: HashMap<String, u64>,
    max_orders_per_key: u64,
    last_tick: DateTime<Utc>,
}

impl Default for Store {
    fn default() -> Self {
        Store {
            orders: HashMap::new(),
            by_key: HashMap::new(),
            by_update: BTreeSet::new(),
            api_orders: 0,
            api_orders_per_key: HashMap::new(),
            max_orders_per_key: 0,
            last_tick: DateTime::<Utc>::MIN_UTC,
        }
    }
}

impl Store {
    /// The time of a change: now, to the microsecond, strictly after every earlier tick.
    fn tick(&mut self) -> DateTime<Utc> {
        let now = to_micros(Utc::now());
        let next = if now > self.last_tick {
            now
        } else {
            self.last_tick + TimeDelta::microseconds(1)
        };
        self.last_tick = next;
        next
    }

    /// Places an order, or finds the one this key already placed.
    pub fn place(&mut self, request: &OrderRequest) -> Result<Placed, StoreError> {
        if let Some(existing) = self.get_by_key(&request.idempotency_key) {
            return if request.matches(existing) {
                Ok(Placed::Replayed(existing.clone()))
            } else {
                Err(StoreError::KeyReused(request.idempotency_key.clone()))
            };
        }
        let now = self.tick();
        let order = Order {
            vendor_order_id: new_order_id(),
            idempotency_key: Some(request.idempotency_key.clone()),
            customer_id: Some(request.customer_id.clone()),
            brand_id: request.brand_id.clone(),
            amount: request.amount,
            status: OrderStatus::Pending,
            created_at: now,
            updated_at: now,
        };
        let per_key = self
            .api_orders_per_key
            .entry(request.idempotency_key.clone())
            .or_default();
        *per_key += 1;
        self.max_orders_per_key = self.max_orders_per_key.max(*per_key);
        self.api_orders += 1;
        self.add(order.clone());
        Ok(Placed::Created(order))
    }

    /// Inserts an order made elsewhere (a test hook); missing times are now.
    pub fn insert(
        &mut self,
        mut order: Order,
        created_at: Option<DateTime<Utc>>,
        updated_at: Option<DateTime<Utc>>,
    ) -> Result<Order, StoreError> {
        if self.orders.contains_key(&order.vendor_order_id) {
            return Err(StoreError::DuplicateId(order.vendor_order_id));
        }
        if let Some(key) = &order.idempotency_key {
            if let Some(owner) = self.by_key.get(key) {
                return Err(StoreError::KeyTaken(key.clone(), owner.clone()));
            }
        }
        let now = self.tick();
        order.created_at = to_micros(created_at.unwrap_or(now));
        order.updated_at = to_micros(updated_at.unwrap_or(now));
        self.add(order.clone());
        Ok(order)
    }

    fn add(&mut self, order: Order) {
        if let Some(key) = &order.idempotency_key {
            self.by_key
                .insert(key.clone(), order.vendor_order_id.clone());
        }
        self.by_update.insert(order.index_key());
        self.orders.insert(order.vendor_order_id.clone(), order);
    }

    pub fn get(&self, vendor_order_id: &str) -> Option<&Order> {
        self.orders.get(vendor_order_id)
    }

    pub fn get_by_key(&self, idempotency_key: &str) -> Option<&Order> {
        self.by_key
            .get(idempotency_key)
            .and_then(|id| self.orders.get(id))
    }

    /// Sets the status, moving the order to its new place in the reconciliation order.
    pub fn set_status(
        &mut self,
        vendor_order_id: &str,
        status: OrderStatus,
    ) -> Result<Order, StoreError> {
        let tick = self.tick();
        let order = self
            .orders
            .get_mut(vendor_order_id)
            .ok_or_else(|| StoreError::NotFound(vendor_order_id.to_string()))?;
        self.by_update.remove(&order.index_key());
        order.status = status;
        // An order inserted with a future updated_at still moves forward.
        order.updated_at = tick.max(order.updated_at + TimeDelta::microseconds(1));
        self.by_update.insert(order.index_key());
        Ok(order.clone())
    }

    /// The vendor finishing a pending order: brands starting with `fail` fail, the rest are
    /// fulfilled. `None` if the order is gone or no longer pending.
    pub fn complete_pending(&mut self, vendor_order_id: &str) -> Option<Order> {
        let order = self.orders.get(vendor_order_id)?;
        if order.status != OrderStatus::Pending {
            return None;
        }
        let outcome = if order.brand_id.starts_with("fail") {
            OrderStatus::Failed
        } else {
            OrderStatus::Fulfilled
        };
        self.set_status(vendor_order_id, outcome).ok()
    }

    pub fn refund(&mut self, vendor_order_id: &str) -> Result<Order, StoreError> {
        let order = self
            .get(vendor_order_id)
            .ok_or_else(|| StoreError::NotFound(vendor_order_id.to_string()))?;
        if !order.status.is_refundable() {
            return Err(StoreError::NotRefundable {
                id: vendor_order_id.to_string(),
                status: order.status.as_str(),
            });
        }
        self.set_status(vendor_order_id, OrderStatus::Refunded)
    }

    /// Orders in `window` after `after`, in `(updated_at, vendor_order_id)` order.
    pub fn scan<'a>(
        &'a self,
        window: Window,
        after: Option<&Cursor>,
    ) -> impl Iterator<Item = &'a Order> + 'a {
        let from = window.from.map(|t| (t, String::new()));
        let after = after.map(|c| (c.updated_at, c.vendor_order_id.clone()));
        // Start at whichever is later: the window's start (inclusive) or the cursor (exclusive).
        let start = match (from, after) {
            (Some(from), Some(after)) if from > after => Bound::Included(from),
            (_, Some(after)) => Bound::Excluded(after),
            (Some(from), None) => Bound::Included(from),
            (None, None) => Bound::Unbounded,
        };
        let to = window.to;
        self.by_update
            .range((start, Bound::Unbounded))
            .take_while(move |(at, _)| to.is_none_or(|to| *at < to))
            .filter_map(|(_, id)| self.orders.get(id))
    }

    /// One page of at most `limit` (≥ 1) records.
    pub fn page(&self, window: Window, after: Option<&Cursor>, limit: usize) -> Page {
        let mut records: Vec<Order> = self.scan(window, after).take(limit + 1).cloned().collect();
        let more = records.len() > limit;
        records.truncate(limit);
        let next = more.then(|| records.last()).flatten().map(|last| Cursor {
            updated_at: last.updated_at,
            vendor_order_id: last.vendor_order_id.clone(),
        });
        Page { records, next }
    }

    /// `(orders created through the API, distinct keys they used, most orders sharing one key)`.
    pub fn api_counts(&self) -> (u64, u64, u64) {
        (
            self.api_orders,
            self.api_orders_per_key.len() as u64,
            self.max_orders_per_key,
        )
    }

    /// Forgets every order (the clock keeps running forward).
    pub fn clear(&mut self) {
        *self = Store {
            last_tick: self.last_tick,
            ..Store::default()
        };
    }
}

#[cfg(test)]
mod tests {
    use app::domain::{Currency, Money};

    use super::*;

    fn request(key: &str, amount: &str) -> OrderRequest {
        OrderRequest {
            idempotency_key: key.to_string(),
            customer_id: "cust".to_string(),
            brand_id: "amazon".to_string(),
            amount: Money::parse(amount, Currency::USD).unwrap(),
        }
    }

    fn at(seconds: i64) -> DateTime<Utc> {
        DateTime::from_timestamp(1_700_000_000 + seconds, 0).unwrap()
    }

    fn other_channel(store: &mut Store, id: &str, updated: i64) {
        let order = Order {
            vendor_order_id: id.to_string(),
            idempotency_key: None,
            customer_id: None,
            brand_id: "b".to_string(),
            amount: Money::from_minor(100, Currency::USD),
            status: OrderStatus::Fulfilled,
            created_at: at(0),
            updated_at: at(0),
        };
        store
            .insert(order, Some(at(updated)), Some(at(updated)))
            .unwrap();
    }

    #[test]
    fn cursors_round_trip_and_reject_anything_else() {
        let cursor = Cursor {
            updated_at: DateTime::from_timestamp_micros(1_700_000_000_123_456).unwrap(),
            vendor_order_id: "ord_1:2".to_string(),
        };
        let encoded = cursor.encode();
        assert!(encoded.bytes().all(|b| b.is_ascii_hexdigit()), "{encoded}");
        assert_eq!(Cursor::decode(&encoded), Ok(cursor));
        for bad in [
            "",
            "zz",
            &hex::encode("v2:1:ord"),
            &hex::encode("v1:x:ord"),
            &hex::encode("v1:1:"),
            &hex::encode("v1:1"),
        ] {
            let err = Cursor::decode(bad).unwrap_err();
            assert!(err.contains("not issued by this vendor"), "{bad}: {err}");
        }
    }

    #[test]
    fn a_key_replays_the_same_request_and_refuses_a_different_one() {
        let mut store = Store::default();
        let Placed::Created(first) = store.place(&request("k1", "50")).unwrap() else {
            panic!("first placement must create");
        };
        // 50 and 50.00 are the same amount.
        let Placed::Replayed(again) = store.place(&request("k1", "50.00")).unwrap() else {
            panic!("same request must replay");
        };
        assert_eq!(again.vendor_order_id, first.vendor_order_id);
        assert_eq!(
            store.place(&request("k1", "51")).unwrap_err(),
            StoreError::KeyReused("k1".to_string())
        );
        assert_eq!(store.api_counts(), (1, 1, 1));
    }

    #[test]
    fn every_change_gets_a_later_time() {
        let mut store = Store::default();
        let mut last = DateTime::<Utc>::MIN_UTC;
        for i in 0..1000 {
            let Placed::Created(order) = store.place(&request(&format!("k{i}"), "1")).unwrap()
            else {
                panic!("must create");
            };
            assert!(order.updated_at > last);
            last = order.updated_at;
        }
        let first = store.get_by_key("k0").unwrap().vendor_order_id.clone();
        let changed = store.set_status(&first, OrderStatus::Delivered).unwrap();
        assert!(changed.updated_at > last);
    }

    #[test]
    fn pages_cover_the_window_once_in_order_with_ties_broken_by_id() {
        let mut store = Store::default();
        // Three orders share one updated_at; two fall outside [10, 20).
        for (id, updated) in [
            ("a", 5),
            ("c", 12),
            ("b", 12),
            ("d", 12),
            ("e", 10),
            ("f", 19),
            ("g", 20),
        ] {
            other_channel(&mut store, id, updated);
        }
        let window = Window {
            from: Some(at(10)),
            to: Some(at(20)),
        };
        let mut seen = Vec::new();
        let mut cursor = None;
        loop {
            let page = store.page(window, cursor.as_ref(), 2);
            assert!(page.records.len() <= 2);
            seen.extend(page.records.iter().map(|o| o.vendor_order_id.clone()));
            match page.next {
                Some(next) => cursor = Some(next),
                None => break,
            }
        }
        assert_eq!(seen, ["e", "b", "c", "d", "f"]);
        // A cursor from before the window starts at the window.
        let early = Cursor {
            updated_at: at(0),
            vendor_order_id: "zzz".to_string(),
        };
        let page = store.page(window, Some(&early), 10);
        assert_eq!(page.records.len(), 5);
        assert!(page.next.is_none());
    }

    #[test]
    fn a_changed_order_moves_and_refunds_need_a_card() {
        let mut store = Store::default();
        let Placed::Created(order) = store.place(&request("k", "5")).unwrap() else {
            panic!("must create");
        };
        let id = order.vendor_order_id;
        assert!(matches!(
            store.refund(&id),
            Err(StoreError::NotRefundable {
                status: "pending",
                ..
            })
        ));
        let done = store.complete_pending(&id).unwrap();
        assert_eq!(done.status, OrderStatus::Fulfilled);
        assert!(store.complete_pending(&id).is_none());
        let refunded = store.refund(&id).unwrap();
        assert_eq!(refunded.status, OrderStatus::Refunded);
        let all: Vec<_> = store.scan(Window::default(), None).collect();
        assert_eq!(all.len(), 1, "the index holds each order once");
        assert_eq!(all[0].updated_at, refunded.updated_at);
    }
}
