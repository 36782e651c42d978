//! The tremendous vendor API. (Being written: every call answers Unsupported until then.)

use super::*;

pub struct TremendousAdapter {
    #[allow(dead_code)]
    endpoint: VendorEndpoint,
}

impl TremendousAdapter {
    pub fn new(endpoint: VendorEndpoint) -> Self {
        TremendousAdapter { endpoint }
    }
}

#[async_trait::async_trait]
impl VendorAdapter for TremendousAdapter {
    fn kind(&self) -> VendorKind {
        VendorKind::Tremendous
    }
    async fn place_order(&self, _order: &PlaceOrder) -> Result<VendorOrder, VendorError> {
        Err(VendorError::Unsupported {
            operation: "placing orders",
        })
    }
    async fn get_order(&self, _vendor_key: &str) -> Result<Option<VendorOrder>, VendorError> {
        Err(VendorError::Unsupported {
            operation: "order lookup",
        })
    }
    async fn list_orders(
        &self,
        _from: DateTime<Utc>,
        _to: DateTime<Utc>,
        _cursor: Option<&str>,
    ) -> Result<OrderPage, VendorError> {
        Err(VendorError::Unsupported {
            operation: "order listing",
        })
    }
    async fn refund(&self, _vendor_order_id: &str) -> Result<VendorOrder, VendorError> {
        Err(VendorError::Unsupported {
            operation: "refunds",
        })
    }
    fn verify_webhook(
        &self,
        _headers: &Headers,
        _raw_body: &[u8],
        _secrets: &[SecretString],
        _now: DateTime<Utc>,
    ) -> Result<(), WebhookError> {
        Err(WebhookError::Unauthenticated("not implemented".into()))
    }
    fn parse_webhook(
        &self,
        _headers: &Headers,
        _raw_body: &[u8],
    ) -> Result<WebhookEvent, WebhookError> {
        Err(WebhookError::Unparseable("not implemented".into()))
    }
}
