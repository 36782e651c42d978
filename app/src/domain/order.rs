//! An order request, validated: what the order API, bulk ordering and file imports all accept.

use sha2::{Digest, Sha256};

use super::{excerpt, IdempotencyKey, Money, VendorId};

/// Longest customer or brand id accepted.
pub const MAX_REFERENCE_LEN: usize = 255;

/// A problem with one named field of a request or file row.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct FieldError {
    pub field: String,
    pub reason: String,
}

impl FieldError {
    pub fn new(field: impl Into<String>, reason: impl Into<String>) -> FieldError {
        FieldError {
            field: field.into(),
            reason: reason.into(),
        }
    }
}

impl std::fmt::Display for FieldError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}: {}", self.field, self.reason)
    }
}

/// Checks a customer or brand id: 1–255 characters, no control characters, no surrounding
/// whitespace (a trailing space in a spreadsheet cell is a different id, so it is refused).
pub fn parse_reference(field: &str, value: &str) -> Result<String, FieldError> {
    if value.is_empty() {
        return Err(FieldError::new(field, "is empty"));
    }
    if value.trim() != value {
        return Err(FieldError::new(
            field,
            format!("{:?} has leading or trailing whitespace", excerpt(value)),
        ));
    }
    if value.chars().count() > MAX_REFERENCE_LEN {
        return Err(FieldError::new(
            field,
            format!("is longer than {MAX_REFERENCE_LEN} characters"),
        ));
    }
    if value.chars().any(char::is_control) {
        return Err(FieldError::new(field, "contains a control character"));
    }
    Ok(value.to_string())
}

/// A complete, valid request for one order.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct OrderRequest {
    pub idempotency_key: IdempotencyKey,
    pub customer_id: String,
    pub brand_id: String,
    pub amount: Money,
    pub vendor: VendorId,
}

impl OrderRequest {
    /// Builds a request; the amount must be positive.
    pub fn new(
        idempotency_key: IdempotencyKey,
        customer_id: &str,
        brand_id: &str,
        amount: Money,
        vendor: VendorId,
    ) -> Result<OrderRequest, Vec<FieldError>> {
        let mut errors = Vec::new();
        let customer_id = parse_reference("customer_id", customer_id)
            .map_err(|e| errors.push(e))
            .ok();
        let brand_id = parse_reference("brand_id", brand_id)
            .map_err(|e| errors.push(e))
            .ok();
        if !amount.is_positive() {
            errors.push(FieldError::new("amount", "must be greater than zero"));
        }
        match (customer_id, brand_id) {
            (Some(customer_id), Some(brand_id)) if errors.is_empty() => Ok(OrderRequest {
                idempotency_key,
                customer_id,
                brand_id,
                amount,
                vendor,
            }),
            _ => Err(errors),
        }
    }

    /// A digest of everything but the key: two requests with one key are "the same request"
    /// exactly when their fingerprints are equal (so `50` and `"50.00"` are the same amount).
    pub fn fingerprint(&self) -> String {
        let mut hasher = Sha256::new();
        for part in [
            self.vendor.as_str(),
            &self.customer_id,
            &self.brand_id,
            self.amount.currency().code(),
            &self.amount.minor_units().to_string(),
        ] {
            // Length-prefixed, so no choice of field values can collide with another.
            hasher.update((part.len() as u64).to_be_bytes());
            hasher.update(part.as_bytes());
        }
        // Into a fixed buffer: `hex::encode` builds its string a char at a time, and an import
        // computes one fingerprint per row.
        let mut hex = [0u8; 64];
        hex::encode_to_slice(hasher.finalize(), &mut hex).expect("32 bytes fill 64 hex digits");
        String::from_utf8(hex.to_vec()).expect("hex digits are ASCII")
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::Currency;

    fn request(amount: &str, customer: &str) -> Result<OrderRequest, Vec<FieldError>> {
        OrderRequest::new(
            IdempotencyKey::parse("key-1").unwrap(),
            customer,
            "amazon-us",
            Money::parse(amount, Currency::USD).unwrap(),
            VendorId::parse("acme").unwrap(),
        )
    }

    /// Stored fingerprints stay comparable across versions: SHA-256 over the length-prefixed
    /// fields, in lowercase hex (the value computed independently, with Python's hashlib).
    #[test]
    fn fingerprint_is_the_stored_format() {
        assert_eq!(
            request("50", "c1").unwrap().fingerprint(),
            "5ef0679ddfd7f51fe456a2c7bdaa789ce6e6f7b3b20a4c83125931ded14356ca"
        );
    }

    #[test]
    fn equal_amounts_written_differently_have_one_fingerprint() {
        let a = request("50", "c1").unwrap();
        let b = request("50.00", "c1").unwrap();
        assert_eq!(a.fingerprint(), b.fingerprint());
        assert_ne!(
            a.fingerprint(),
            request("50.01", "c1").unwrap().fingerprint()
        );
        assert_ne!(a.fingerprint(), request("50", "c2").unwrap().fingerprint());
    }

    #[test]
    fn fields_cannot_shift_into_each_other() {
        let a = OrderRequest::new(
            IdempotencyKey::parse("k").unwrap(),
            "ab",
            "c",
            Money::parse("1", Currency::USD).unwrap(),
            VendorId::parse("v").unwrap(),
        )
        .unwrap();
        let b = OrderRequest::new(
            IdempotencyKey::parse("k").unwrap(),
            "a",
            "bc",
            Money::parse("1", Currency::USD).unwrap(),
            VendorId::parse("v").unwrap(),
        )
        .unwrap();
        assert_ne!(a.fingerprint(), b.fingerprint());
    }

    #[test]
    fn zero_amount_and_bad_references_name_their_fields() {
        let errors = request("0", " c1").unwrap_err();
        let fields: Vec<&str> = errors.iter().map(|e| e.field.as_str()).collect();
        assert_eq!(fields, ["customer_id", "amount"]);
        assert_eq!(
            parse_reference("brand_id", "").unwrap_err().to_string(),
            "brand_id: is empty"
        );
        assert!(parse_reference("brand_id", &"x".repeat(256)).is_err());
        assert!(parse_reference("brand_id", "a\u{7}b").is_err());
        assert!(parse_reference("brand_id", "Amazon US €").is_ok());
    }
}
