//! Vendor adapters: one trait, one implementation per vendor API format.
//!
//! Adapters translate between giftrecon's vendor-neutral types and a vendor's wire format, and
//! classify every failure so the outbox knows whether retrying with the same key is safe. They
//! never touch the database and are only ever called from durable jobs, never inside a database
//! transaction.

pub mod generic;
pub mod runa;
pub mod signature;
#[cfg(test)]
mod testing;
mod transport;
pub mod tremendous;

use std::time::Duration;

use app::domain::{Money, VendorKind};
use chrono::{DateTime, Utc};
use secrecy::SecretString;

/// What giftrecon asks a vendor to do. `vendor_key` is made once, before the first attempt,
/// persisted with the order, and sent unchanged on every retry.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PlaceOrder {
    pub vendor_key: String,
    pub customer_id: String,
    pub brand_id: String,
    pub amount: Money,
}

/// An order as the vendor reports it (answer to a placement, a lookup, a listing or a webhook).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct VendorOrder {
    pub vendor_order_id: String,
    /// The idempotency key / external id the vendor echoes back (our `vendor_key`), if any.
    pub vendor_key: Option<String>,
    /// A reference id echoed by the vendor, if it has one besides the key.
    pub reference_id: Option<String>,
    pub brand_id: Option<String>,
    pub amount: Money,
    /// The vendor's own status word, unmapped (mapping to GL states is the domain's job).
    pub status: String,
    pub created_at: Option<DateTime<Utc>>,
    pub updated_at: Option<DateTime<Utc>>,
}

/// One page of a vendor's order listing.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct OrderPage {
    pub orders: Vec<VendorOrder>,
    /// Opaque cursor for the next page; `None` when this was the last page.
    pub next_cursor: Option<String>,
}

/// A verified webhook, parsed.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct WebhookEvent {
    /// The vendor's event id (dedupe key with the vendor id).
    pub event_id: String,
    pub event_type: String,
    pub occurred_at: Option<DateTime<Utc>>,
    /// What the event is about.
    pub subject: WebhookSubject,
}

/// What a webhook tells us. Some vendors send the whole order, others only name it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum WebhookSubject {
    /// The event carries the order as the vendor now sees it.
    Order(VendorOrder),
    /// The event only says that this order changed (Tremendous, Runa): read its current state
    /// with [`VendorAdapter::fetch_order`].
    OrderChanged { vendor_order_id: String },
    /// A correctly signed event that is not about an order (a catalogue update, a reward-level
    /// notice, a test ping): record it and acknowledge it; reconciliation covers the rest.
    Other { resource: Option<String> },
}

impl WebhookEvent {
    /// The order carried by the event, if it carries one.
    pub fn order(&self) -> Option<&VendorOrder> {
        match &self.subject {
            WebhookSubject::Order(order) => Some(order),
            _ => None,
        }
    }

    /// The vendor's id of the order the event is about, whether carried or only named.
    pub fn vendor_order_id(&self) -> Option<&str> {
        match &self.subject {
            WebhookSubject::Order(order) => Some(&order.vendor_order_id),
            WebhookSubject::OrderChanged { vendor_order_id } => Some(vendor_order_id),
            WebhookSubject::Other { .. } => None,
        }
    }
}

/// Why a vendor call failed, classified for the retry policy.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum VendorError {
    /// The outcome is unknown (timeout, connection dropped, 5xx): retry with the same key.
    #[error("vendor outcome unknown: {reason}")]
    Unknown { reason: String },
    /// The vendor asked us to slow down (429, 503): retry with the same key after `retry_after`.
    #[error("vendor is throttling: {reason}")]
    Throttled {
        retry_after: Option<Duration>,
        reason: String,
    },
    /// The vendor refused the request for good (a 4xx that is not throttling, an in-progress
    /// answer or a key conflict): do not retry.
    #[error("vendor rejected the request: {reason}")]
    Rejected { reason: String },
    /// The key was already used at the vendor for a different order.
    #[error("vendor says this idempotency key was used for a different order")]
    KeyConflict,
    /// The vendor's answer could not be understood.
    #[error("vendor answer could not be read: {reason}")]
    BadResponse { reason: String },
    /// The adapter or vendor does not support this operation.
    #[error("{operation} is not supported by this vendor")]
    Unsupported { operation: &'static str },
}

/// Why a webhook was not accepted.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum WebhookError {
    /// Missing, malformed or wrong signature, or a stale timestamp: answer 401.
    #[error("webhook signature rejected: {0}")]
    Unauthenticated(String),
    /// Correctly signed, but not JSON or not an event we know: answer 400, keep the raw body.
    #[error("webhook payload not understood: {0}")]
    Unparseable(String),
}

/// The headers a webhook verifier may look at, lowercase names.
pub type Headers = axum::http::HeaderMap;

/// One vendor API.
#[async_trait::async_trait]
pub trait VendorAdapter: Send + Sync {
    fn kind(&self) -> VendorKind;

    /// Places an order; repeating the call with the same `vendor_key` must return the same order.
    async fn place_order(&self, order: &PlaceOrder) -> Result<VendorOrder, VendorError>;

    /// Looks an order up by our key; `Ok(None)` when the vendor has no such order.
    /// `Unsupported` where the vendor has no lookup by key (Runa): there, re-sending
    /// `place_order` with the same key is the lookup, since the vendor replays its answer.
    async fn get_order(&self, vendor_key: &str) -> Result<Option<VendorOrder>, VendorError>;

    /// Reads an order by the vendor's own id (e.g. after a webhook that only names it);
    /// `Ok(None)` when the vendor has no such order.
    async fn fetch_order(&self, vendor_order_id: &str) -> Result<Option<VendorOrder>, VendorError> {
        let _ = vendor_order_id;
        Err(VendorError::Unsupported {
            operation: "order lookup by vendor id",
        })
    }

    /// Lists orders created or updated in `[from, to)`, one page at a time.
    async fn list_orders(
        &self,
        from: DateTime<Utc>,
        to: DateTime<Utc>,
        cursor: Option<&str>,
    ) -> Result<OrderPage, VendorError>;

    /// Cancels or refunds an order where the vendor supports it.
    async fn refund(&self, vendor_order_id: &str) -> Result<VendorOrder, VendorError>;

    /// Verifies the signature over the exact raw body with any of the active secrets, in
    /// constant time, before anything is parsed.
    fn verify_webhook(
        &self,
        headers: &Headers,
        raw_body: &[u8],
        secrets: &[SecretString],
        now: DateTime<Utc>,
    ) -> Result<(), WebhookError>;

    /// Parses a verified body.
    fn parse_webhook(
        &self,
        headers: &Headers,
        raw_body: &[u8],
    ) -> Result<WebhookEvent, WebhookError>;
}

/// How adapters reach a vendor.
#[derive(Clone, Debug)]
pub struct VendorEndpoint {
    /// e.g. `https://api.vendor.example` (no trailing slash).
    pub base_url: String,
    /// API key or bearer token, if the vendor needs one.
    pub api_key: Option<SecretString>,
    /// Per-request timeout; a timeout is `VendorError::Unknown`.
    pub timeout: Duration,
}

/// Builds the adapter for a vendor kind.
pub fn adapter_for(kind: VendorKind, endpoint: VendorEndpoint) -> Box<dyn VendorAdapter> {
    match kind {
        VendorKind::Generic => Box::new(generic::GenericAdapter::new(endpoint)),
        VendorKind::Tremendous => Box::new(tremendous::TremendousAdapter::new(endpoint)),
        VendorKind::Runa => Box::new(runa::RunaAdapter::new(endpoint)),
    }
}

/// Reads `Retry-After` as delta-seconds or an HTTP date.
pub fn parse_retry_after(value: &str, now: DateTime<Utc>) -> Option<Duration> {
    let value = value.trim();
    if let Ok(seconds) = value.parse::<u64>() {
        return Some(Duration::from_secs(seconds));
    }
    let at = DateTime::parse_from_rfc2822(value)
        .ok()?
        .with_timezone(&Utc);
    Some((at - now).to_std().unwrap_or(Duration::ZERO))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn retry_after_reads_seconds_and_http_dates() {
        let now: DateTime<Utc> = "2015-10-21T07:27:00Z".parse().unwrap();
        assert_eq!(
            parse_retry_after("120", now),
            Some(Duration::from_secs(120))
        );
        assert_eq!(parse_retry_after(" 0 ", now), Some(Duration::ZERO));
        assert_eq!(
            parse_retry_after("Wed, 21 Oct 2015 07:28:00 GMT", now),
            Some(Duration::from_secs(60))
        );
        // A date in the past means "now".
        assert_eq!(
            parse_retry_after("Wed, 21 Oct 2015 07:00:00 GMT", now),
            Some(Duration::ZERO)
        );
        for garbage in ["", "soon", "-5", "1.5"] {
            assert_eq!(parse_retry_after(garbage, now), None, "{garbage:?}");
        }
    }

    #[test]
    fn webhook_events_name_their_order_whether_carried_or_not() {
        let order = VendorOrder {
            vendor_order_id: "ord_1".to_owned(),
            vendor_key: None,
            reference_id: None,
            brand_id: None,
            amount: Money::from_minor(100, app::domain::Currency::USD),
            status: "pending".to_owned(),
            created_at: None,
            updated_at: None,
        };
        let event = |subject| WebhookEvent {
            event_id: "e".to_owned(),
            event_type: "t".to_owned(),
            occurred_at: None,
            subject,
        };
        let carried = event(WebhookSubject::Order(order.clone()));
        assert_eq!(carried.order(), Some(&order));
        assert_eq!(carried.vendor_order_id(), Some("ord_1"));
        let named = event(WebhookSubject::OrderChanged {
            vendor_order_id: "ord_2".to_owned(),
        });
        assert_eq!(named.order(), None);
        assert_eq!(named.vendor_order_id(), Some("ord_2"));
        let other = event(WebhookSubject::Other { resource: None });
        assert_eq!(other.vendor_order_id(), None);
    }

    #[test]
    fn every_vendor_kind_has_an_adapter() {
        for kind in VendorKind::ALL {
            let endpoint = VendorEndpoint {
                base_url: "http://127.0.0.1:9".to_owned(),
                api_key: None,
                timeout: Duration::from_secs(1),
            };
            assert_eq!(adapter_for(kind, endpoint).kind(), kind);
        }
    }
}
