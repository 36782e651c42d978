//! Vendor adapters: one trait, one implementation per vendor API format.
//!
//! Adapters translate between giftrecon's vendor-neutral types and a vendor's wire format, and
//! classify every failure so the outbox knows whether retrying with the same key is safe. They
//! never touch the database and are only ever called from durable jobs, never inside a database
//! transaction.

pub mod generic;
pub mod runa;
pub mod signature;
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
    pub order: VendorOrder,
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
    /// The vendor refused the request for good (4xx other than 409/429): do not retry.
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
    async fn get_order(&self, vendor_key: &str) -> Result<Option<VendorOrder>, VendorError>;

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
