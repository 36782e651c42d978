//! Reading an order request body exactly: every field named in its error, amounts taken from the
//! JSON text itself (never through a float), nothing stored until everything is valid.

use std::collections::BTreeMap;

use app::domain::{Currency, FieldError, IdempotencyKey, Money, OrderRequest, VendorId};
use axum::http::StatusCode;
use serde_json::value::RawValue;

use super::problem::Problem;

const FIELDS: [&str; 6] = [
    "idempotency_key",
    "customer_id",
    "brand_id",
    "amount",
    "currency",
    "vendor",
];

/// Parses one order object. `header_key` is the `Idempotency-Key` header, if any.
pub fn parse_order(raw: &RawValue, header_key: Option<&str>) -> Result<OrderRequest, Problem> {
    let object: BTreeMap<String, &RawValue> = serde_json::from_str(raw.get()).map_err(|_| {
        Problem::invalid(
            StatusCode::BAD_REQUEST,
            vec![FieldError::new("body", "must be a JSON object")],
        )
    })?;
    let mut type_errors = Vec::new();
    for name in object.keys() {
        if !FIELDS.contains(&name.as_str()) {
            type_errors.push(FieldError::new(name.clone(), "is not a field of an order"));
        }
    }
    let mut string_field = |name: &str| -> Option<String> {
        match object.get(name) {
            None => {
                type_errors.push(FieldError::new(name, "is required"));
                None
            }
            Some(raw) => match serde_json::from_str::<String>(raw.get()) {
                Ok(value) => Some(value),
                Err(_) => {
                    type_errors.push(FieldError::new(
                        name,
                        format!("must be a string, not {}", json_type(raw)),
                    ));
                    None
                }
            },
        }
    };

    // The key: from the body or the header; both present must agree.
    let body_key = match object.get("idempotency_key") {
        None => None,
        Some(_) => string_field("idempotency_key"),
    };
    let customer_id = string_field("customer_id");
    let brand_id = string_field("brand_id");
    let currency = string_field("currency");
    let vendor = string_field("vendor");
    let amount_text = match object.get("amount") {
        None => {
            type_errors.push(FieldError::new("amount", "is required"));
            None
        }
        Some(raw) => amount_text(raw).map_err(|e| type_errors.push(e)).ok(),
    };

    let key_text = match (body_key.as_deref(), header_key) {
        (Some(body), Some(header)) if body != header => {
            return Err(Problem::invalid(
                StatusCode::BAD_REQUEST,
                vec![FieldError::new(
                    "idempotency_key",
                    "differs from the Idempotency-Key header; send one key, or the same in both",
                )],
            ))
        }
        (Some(key), _) | (None, Some(key)) => Some(key.to_string()),
        (None, None) => {
            if !object.contains_key("idempotency_key") {
                type_errors.push(FieldError::new(
                    "idempotency_key",
                    "is required (in the body or the Idempotency-Key header)",
                ));
            }
            None
        }
    };
    if !type_errors.is_empty() {
        return Err(Problem::invalid(StatusCode::BAD_REQUEST, type_errors));
    }
    let (key_text, customer_id, brand_id, currency, vendor, amount_text) = (
        key_text.unwrap_or_default(),
        customer_id.unwrap_or_default(),
        brand_id.unwrap_or_default(),
        currency.unwrap_or_default(),
        vendor.unwrap_or_default(),
        amount_text.unwrap_or_default(),
    );

    // A missing or malformed key is a malformed request (400), as in the IETF draft.
    let key = IdempotencyKey::parse(&key_text).map_err(|e| {
        Problem::invalid(
            StatusCode::BAD_REQUEST,
            vec![FieldError::new("idempotency_key", e.to_string())],
        )
    })?;

    let mut errors = Vec::new();
    let currency = Currency::parse(&currency)
        .map_err(|e| errors.push(FieldError::new("currency", e.to_string())))
        .ok();
    let amount = currency.and_then(|c| {
        Money::parse(&amount_text, c)
            .map_err(|e| errors.push(FieldError::new("amount", e.to_string())))
            .ok()
    });
    let vendor = VendorId::parse(&vendor)
        .map_err(|e| errors.push(FieldError::new("vendor", e.to_string())))
        .ok();
    match (amount, vendor) {
        (Some(amount), Some(vendor)) if errors.is_empty() => {
            OrderRequest::new(key, &customer_id, &brand_id, amount, vendor)
                .map_err(|errors| Problem::invalid(StatusCode::UNPROCESSABLE_ENTITY, errors))
        }
        _ => {
            // Report the reference fields' problems too, in one answer.
            if let Err(more) = app::domain::parse_reference("customer_id", &customer_id) {
                errors.push(more);
            }
            if let Err(more) = app::domain::parse_reference("brand_id", &brand_id) {
                errors.push(more);
            }
            Err(Problem::invalid(StatusCode::UNPROCESSABLE_ENTITY, errors))
        }
    }
}

/// The amount as written: a JSON string's content, or a JSON number's literal text.
fn amount_text(raw: &RawValue) -> Result<String, FieldError> {
    let text = raw.get().trim();
    if text.starts_with('"') {
        return serde_json::from_str::<String>(text)
            .map_err(|_| FieldError::new("amount", "is not a valid JSON string"));
    }
    if text.starts_with(|c: char| c == '-' || c.is_ascii_digit()) {
        // The literal is already valid JSON; Money::parse applies the money rules to it (a
        // minus sign, an exponent or too many decimals are refused, with the reason).
        return Ok(text.to_string());
    }
    Err(FieldError::new(
        "amount",
        format!(
            "must be a number or a decimal string such as \"50.00\", not {}",
            json_type(raw)
        ),
    ))
}

fn json_type(raw: &RawValue) -> &'static str {
    match raw.get().trim().as_bytes().first() {
        Some(b'"') => "a string",
        Some(b'{') => "an object",
        Some(b'[') => "an array",
        Some(b't' | b'f') => "a boolean",
        Some(b'n') => "null",
        _ => "a number",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(body: &str, header: Option<&str>) -> Result<OrderRequest, Problem> {
        let raw: Box<RawValue> = serde_json::from_str(body).unwrap();
        parse_order(&raw, header)
    }

    fn fields(problem: &Problem) -> Vec<&str> {
        problem.errors.iter().map(|e| e.field.as_str()).collect()
    }

    const GOOD: &str = r#"{"idempotency_key":"k1","customer_id":"c1","brand_id":"b1","amount":50,"currency":"USD","vendor":"acme"}"#;

    #[test]
    fn numbers_and_strings_are_read_exactly() {
        let a = parse(GOOD, None).unwrap();
        assert_eq!(a.amount.minor_units(), 5000);
        let b = parse(&GOOD.replace("50", "\"50.00\""), None).unwrap();
        assert_eq!(a.fingerprint(), b.fingerprint());
        let c = parse(&GOOD.replace("50", "0.1"), None).unwrap();
        assert_eq!(c.amount.minor_units(), 10);
        let jpy = parse(&GOOD.replace("USD", "JPY").replace("50", "5000"), None).unwrap();
        assert_eq!(jpy.amount.minor_units(), 5000);
    }

    #[test]
    fn key_from_header_or_body_but_never_two_different() {
        let no_key = GOOD.replace(r#""idempotency_key":"k1","#, "");
        assert_eq!(
            parse(&no_key, Some("h1")).unwrap().idempotency_key.as_str(),
            "h1"
        );
        assert!(parse(GOOD, Some("k1")).is_ok());
        let both = parse(GOOD, Some("other")).unwrap_err();
        assert_eq!((both.status, fields(&both)), (400, vec!["idempotency_key"]));
        let missing = parse(&no_key, None).unwrap_err();
        assert_eq!(
            (missing.status, fields(&missing)),
            (400, vec!["idempotency_key"])
        );
        let bad = parse(&GOOD.replace("k1", "has space"), None).unwrap_err();
        assert_eq!((bad.status, fields(&bad)), (400, vec!["idempotency_key"]));
    }

    #[test]
    fn wrong_types_are_400_naming_each_field() {
        let p = parse(
            r#"{"idempotency_key":"k","customer_id":7,"brand_id":null,"amount":true,"currency":"USD","vendor":"acme","extra":1}"#,
            None,
        )
        .unwrap_err();
        assert_eq!(p.status, 400);
        let mut f = fields(&p);
        f.sort();
        assert_eq!(f, ["amount", "brand_id", "customer_id", "extra"]);
        let not_object = parse("[1,2]", None).unwrap_err();
        assert_eq!(fields(&not_object), ["body"]);
    }

    #[test]
    fn bad_values_are_422_naming_each_field() {
        for (from, to, field) in [
            ("50", "0", "amount"),
            ("50", "-5", "amount"),
            ("50", "\"12.505\"", "amount"),
            ("50", "1e3", "amount"),
            ("50", "\"1,000.00\"", "amount"),
            ("USD", "XYZ", "currency"),
            ("acme", "Not A Vendor", "vendor"),
            ("\"c1\"", "\"\"", "customer_id"),
        ] {
            let p = parse(&GOOD.replace(from, to), None).unwrap_err();
            assert_eq!(p.status, 422, "{from}->{to}");
            assert_eq!(fields(&p), [field], "{from}->{to}: {:?}", p.errors);
        }
    }
}
