//! HTTP plumbing shared by the adapters: one client per adapter, answers read in full, the
//! classification of every failure into a [`VendorError`], and exact amounts in JSON.
//!
//! Error reasons never quote a vendor's body: successful answers can hold gift card codes or
//! redemption links. At most a short error code from an error answer is quoted.

use std::time::Duration;

use app::domain::{Currency, Money};
use axum::http::{HeaderMap, StatusCode};
use chrono::{DateTime, Utc};
use serde::de::DeserializeOwned;
use serde_json::value::RawValue;

use super::{parse_retry_after, VendorEndpoint, VendorError};

/// Answers longer than this are not read further (no real order answer comes close).
pub(crate) const MAX_BODY_BYTES: usize = 4 * 1024 * 1024;

/// Longest error code quoted from a vendor's error answer.
const ERROR_CODE_CHARS: usize = 80;

/// An HTTP client bound to one vendor endpoint. Redirects are not followed: a vendor API that
/// redirects is misconfigured, and a redirected POST would silently turn into a GET.
pub(crate) struct Http {
    client: reqwest::Client,
    base_url: String,
}

/// A complete answer: status, headers and the whole body.
#[derive(Debug)]
pub(crate) struct Reply {
    pub status: StatusCode,
    pub headers: HeaderMap,
    pub body: Vec<u8>,
    /// The body was longer than [`MAX_BODY_BYTES`] and was cut there.
    pub oversized: bool,
}

impl Http {
    pub fn new(endpoint: &VendorEndpoint) -> Http {
        let client = reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .timeout(endpoint.timeout)
            .build()
            // Only fails when the TLS backend cannot initialise, which is a broken build.
            .expect("the HTTP client (rustls) initialises");
        Http {
            client,
            base_url: endpoint.base_url.trim_end_matches('/').to_owned(),
        }
    }

    /// A request to `{base_url}{path}`; `path` starts with '/'. The endpoint's timeout covers
    /// the whole exchange, from connecting to the last byte of the answer.
    pub fn request(&self, method: reqwest::Method, path: &str) -> reqwest::RequestBuilder {
        self.client
            .request(method, format!("{}{path}", self.base_url))
    }

    /// Sends the request and reads the whole answer. Every failure to get a complete answer
    /// (timeout, refused or dropped connection, body cut off) is `Unknown`: the request may
    /// or may not have been acted on.
    pub async fn send(&self, request: reqwest::RequestBuilder) -> Result<Reply, VendorError> {
        let mut response = request.send().await.map_err(transport_error)?;
        let status = response.status();
        let headers = response.headers().clone();
        let mut body = Vec::new();
        let mut oversized = false;
        while let Some(chunk) = response.chunk().await.map_err(transport_error)? {
            if body.len() + chunk.len() > MAX_BODY_BYTES {
                oversized = true;
                break;
            }
            body.extend_from_slice(&chunk);
        }
        Ok(Reply {
            status,
            headers,
            body,
            oversized,
        })
    }
}

/// Classifies an error from reqwest (no complete answer was received).
fn transport_error(error: reqwest::Error) -> VendorError {
    if error.is_builder() {
        // Never sent, so certainly not acted on; retrying cannot help.
        return VendorError::Rejected {
            reason: "the request could not be built; check the vendor base URL".to_owned(),
        };
    }
    let what = if error.is_timeout() {
        "no complete answer within the timeout"
    } else if error.is_connect() {
        "could not connect to the vendor"
    } else if error.is_body() || error.is_decode() {
        "the answer was cut off"
    } else {
        "the connection failed before a complete answer"
    };
    VendorError::Unknown {
        reason: what.to_owned(),
    }
}

impl Reply {
    pub fn is_success(&self) -> bool {
        self.status.is_success()
    }

    /// Parses a successful answer; anything unreadable is `BadResponse`.
    pub fn json<T: DeserializeOwned>(&self) -> Result<T, VendorError> {
        if self.oversized {
            return Err(VendorError::BadResponse {
                reason: format!(
                    "{} answer is larger than {MAX_BODY_BYTES} bytes",
                    self.status
                ),
            });
        }
        serde_json::from_slice(&self.body).map_err(|e| VendorError::BadResponse {
            // serde's own message can quote values from the body; say only where and what kind.
            reason: format!(
                "{} answer is not the expected JSON ({:?} error at line {} column {})",
                self.status,
                e.classify(),
                e.line(),
                e.column()
            ),
        })
    }

    /// A short machine-readable error code from a JSON error answer: the first of the
    /// top-level string fields `error`, `type`, `code`.
    pub fn error_code(&self) -> Option<String> {
        let value: serde_json::Value = serde_json::from_slice(&self.body).ok()?;
        let object = value.as_object()?;
        ["error", "type", "code"]
            .iter()
            .find_map(|field| object.get(*field)?.as_str())
            .map(|code| code.chars().take(ERROR_CODE_CHARS).collect())
    }

    pub fn retry_after(&self, now: DateTime<Utc>) -> Option<Duration> {
        let value = self
            .headers
            .get(reqwest::header::RETRY_AFTER)?
            .to_str()
            .ok()?;
        parse_retry_after(value, now)
    }

    /// "HTTP 422 (idempotency_key_reused)" or "HTTP 500".
    pub fn describe(&self) -> String {
        match self.error_code() {
            Some(code) => format!("HTTP {} ({code})", self.status.as_u16()),
            None => format!("HTTP {}", self.status.as_u16()),
        }
    }

    /// The classification shared by all vendors for an answer that is not a success. Adapters
    /// handle their own idempotency answers (key conflict, in progress) before calling this.
    ///
    /// - 429, 503 and 425 (Too Early): `Throttled`, with `Retry-After` when given;
    /// - 408 and every other 5xx: `Unknown` (the vendor may have acted; retry with the same key);
    /// - other 4xx: `Rejected`;
    /// - 3xx (redirects are not followed): `Rejected`, the endpoint is misconfigured;
    /// - anything else: `Unknown`.
    pub fn failure(&self, now: DateTime<Utc>) -> VendorError {
        let reason = self.describe();
        match self.status.as_u16() {
            425 | 429 | 503 => VendorError::Throttled {
                retry_after: self.retry_after(now),
                reason,
            },
            408 | 500..=599 => VendorError::Unknown { reason },
            400..=499 => VendorError::Rejected { reason },
            300..=399 => VendorError::Rejected {
                reason: format!("{reason}: unexpected redirect; check the vendor base URL"),
            },
            _ => VendorError::Unknown { reason },
        }
    }
}

/// Percent-encodes one URL path segment (an id from a vendor or from us), leaving only the
/// unreserved characters of RFC 3986 as they are.
pub(crate) fn path_segment(segment: &str) -> String {
    let mut out = String::with_capacity(segment.len());
    for byte in segment.bytes() {
        if byte.is_ascii_alphanumeric() || b"-._~".contains(&byte) {
            out.push(char::from(byte));
        } else {
            out.push_str(&format!("%{byte:02X}"));
        }
    }
    out
}

/// RFC 3339 in UTC with a `Z`, as query parameters want it.
pub(crate) fn rfc3339(at: DateTime<Utc>) -> String {
    at.to_rfc3339_opts(chrono::SecondsFormat::AutoSi, true)
}

/// An ISO 4217 code from a vendor answer.
pub(crate) fn parse_currency(code: &str) -> Result<Currency, VendorError> {
    Currency::parse(code).map_err(|e| VendorError::BadResponse {
        reason: format!("currency: {e}"),
    })
}

/// Reads an amount in major units given either as a JSON string ("10.50") or as a JSON number
/// (10.50), exactly: the number's own text is parsed, never a float. Exponents ("1e3"), signs
/// and more decimals than the currency has are `BadResponse`.
pub(crate) fn money_from_json(
    raw: &RawValue,
    currency: Currency,
    field: &str,
) -> Result<Money, VendorError> {
    let text = raw.get().trim();
    let digits = if text.starts_with('"') {
        serde_json::from_str::<String>(text).map_err(|_| VendorError::BadResponse {
            reason: format!("{field} is not a string or a number"),
        })?
    } else if text.starts_with(|c: char| c == '-' || c.is_ascii_digit()) {
        text.to_owned()
    } else {
        return Err(VendorError::BadResponse {
            reason: format!("{field} is not a string or a number"),
        });
    };
    Money::parse(&digits, currency).map_err(|e| VendorError::BadResponse {
        reason: format!("{field}: {e}"),
    })
}

/// The amount as a JSON number with exactly the currency's decimals, e.g. `10.50`.
pub(crate) fn money_as_json_number(amount: &Money) -> Box<RawValue> {
    RawValue::from_string(amount.amount_string())
        .expect("a formatted amount is a valid JSON number")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn raw(json: &str) -> Box<RawValue> {
        serde_json::from_str(json).unwrap()
    }

    #[test]
    fn amounts_are_read_exactly_from_strings_and_numbers() {
        let usd = Currency::USD;
        let cents =
            |json: &str| money_from_json(&raw(json), usd, "amount").map(|m| m.minor_units());
        assert_eq!(cents("\"10.50\""), Ok(1050));
        assert_eq!(cents("10.50"), Ok(1050));
        assert_eq!(cents("10.5"), Ok(1050));
        assert_eq!(cents("10"), Ok(1000));
        // 0.1 + 0.2 style float artefacts cannot appear: the text is parsed.
        assert_eq!(cents("0.30"), Ok(30));
        assert_eq!(cents("92233720368547758.07"), Ok(i64::MAX));
        for bad in [
            "1e3", "1E3", "1.5e1", "10.505", "-1", "\"-1\"", "null", "true", "\"\"", "\"1,50\"",
        ] {
            assert!(
                matches!(cents(bad), Err(VendorError::BadResponse { .. })),
                "{bad} must be rejected"
            );
        }
        let jpy = money_from_json(&raw("500"), Currency::JPY, "amount").unwrap();
        assert_eq!(jpy.minor_units(), 500);
        assert!(money_from_json(&raw("500.5"), Currency::JPY, "amount").is_err());
    }

    #[test]
    fn path_segments_are_percent_encoded() {
        assert_eq!(path_segment("ord_1-A.b~"), "ord_1-A.b~");
        assert_eq!(path_segment("a/b?c#d e"), "a%2Fb%3Fc%23d%20e");
        assert_eq!(path_segment("é"), "%C3%A9");
    }

    #[test]
    fn amounts_are_written_as_exact_json_numbers() {
        let amount = Money::parse("10.5", Currency::USD).unwrap();
        let json = serde_json::to_string(&money_as_json_number(&amount)).unwrap();
        assert_eq!(json, "10.50");
    }
}
