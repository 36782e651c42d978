//! An order at the simulated vendor, its statuses, and how the API shows it.

use app::domain::Money;
use chrono::{DateTime, SecondsFormat, Utc};
use serde::{Deserialize, Serialize};

/// Statuses of the generic vendor API.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum OrderStatus {
    Pending,
    Processing,
    Fulfilled,
    Completed,
    Delivered,
    Failed,
    Canceled,
    Refunded,
}

const STATUSES: [OrderStatus; 8] = [
    OrderStatus::Pending,
    OrderStatus::Processing,
    OrderStatus::Fulfilled,
    OrderStatus::Completed,
    OrderStatus::Delivered,
    OrderStatus::Failed,
    OrderStatus::Canceled,
    OrderStatus::Refunded,
];

impl OrderStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            OrderStatus::Pending => "pending",
            OrderStatus::Processing => "processing",
            OrderStatus::Fulfilled => "fulfilled",
            OrderStatus::Completed => "completed",
            OrderStatus::Delivered => "delivered",
            OrderStatus::Failed => "failed",
            OrderStatus::Canceled => "canceled",
            OrderStatus::Refunded => "refunded",
        }
    }

    pub fn parse(input: &str) -> Result<OrderStatus, String> {
        STATUSES
            .into_iter()
            .find(|s| s.as_str() == input)
            .ok_or_else(|| {
                let known: Vec<&str> = STATUSES.iter().map(|s| s.as_str()).collect();
                format!("status {input:?} is not one of {}", known.join(", "))
            })
    }

    /// Card issued: the only states a refund is accepted from.
    pub fn is_refundable(self) -> bool {
        matches!(
            self,
            OrderStatus::Fulfilled | OrderStatus::Completed | OrderStatus::Delivered
        )
    }

    /// The webhook event type announcing a change to this status.
    pub fn event_type(self) -> &'static str {
        match self {
            OrderStatus::Fulfilled => "order.fulfilled",
            OrderStatus::Failed => "order.failed",
            OrderStatus::Refunded => "order.refunded",
            _ => "order.updated",
        }
    }
}

/// One order at the vendor.
#[derive(Clone, Debug, PartialEq)]
pub struct Order {
    pub vendor_order_id: String,
    /// `None` for orders placed through another channel (inserted with `/sim/orders`).
    pub idempotency_key: Option<String>,
    pub customer_id: Option<String>,
    pub brand_id: String,
    pub amount: Money,
    pub status: OrderStatus,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

/// An order as the API shows it: amounts as decimal strings, RFC 3339 UTC times.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct OrderWire {
    pub vendor_order_id: String,
    pub idempotency_key: Option<String>,
    pub status: String,
    pub amount: String,
    pub currency: String,
    pub brand_id: String,
    pub customer_id: Option<String>,
    pub created_at: String,
    pub updated_at: String,
}

/// RFC 3339 in UTC with microseconds, the precision the simulator keeps.
pub fn timestamp(at: DateTime<Utc>) -> String {
    at.to_rfc3339_opts(SecondsFormat::Micros, true)
}

/// Drops anything finer than a microsecond, so what is shown is exactly what is stored.
pub fn to_micros(at: DateTime<Utc>) -> DateTime<Utc> {
    DateTime::from_timestamp_micros(at.timestamp_micros()).unwrap_or(at)
}

impl Order {
    pub fn wire(&self) -> OrderWire {
        OrderWire {
            vendor_order_id: self.vendor_order_id.clone(),
            idempotency_key: self.idempotency_key.clone(),
            status: self.status.as_str().to_string(),
            amount: self.amount.amount_string(),
            currency: self.amount.currency().code().to_string(),
            brand_id: self.brand_id.clone(),
            customer_id: self.customer_id.clone(),
            created_at: timestamp(self.created_at),
            updated_at: timestamp(self.updated_at),
        }
    }

    pub(super) fn index_key(&self) -> (DateTime<Utc>, String) {
        (self.updated_at, self.vendor_order_id.clone())
    }
}

/// A validated `POST /api/v1/orders` body.
#[derive(Clone, Debug, PartialEq)]
pub struct OrderRequest {
    pub idempotency_key: String,
    pub customer_id: String,
    pub brand_id: String,
    pub amount: Money,
}

impl OrderRequest {
    /// Whether `order` is what this request asks for (amounts compare exactly: 50 == "50.00").
    pub(super) fn matches(&self, order: &Order) -> bool {
        order.customer_id.as_deref() == Some(self.customer_id.as_str())
            && order.brand_id == self.brand_id
            && order.amount == self.amount
    }
}

/// `ord_` and a time-ordered UUID: unique, and sortable roughly by creation.
pub fn new_order_id() -> String {
    format!("ord_{}", uuid::Uuid::now_v7().simple())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn statuses_parse_by_their_wire_names() {
        for status in STATUSES {
            assert_eq!(OrderStatus::parse(status.as_str()), Ok(status));
        }
        assert!(OrderStatus::parse("done").unwrap_err().contains("pending"));
    }
}
