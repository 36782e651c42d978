//! Webhook signature schemes, verified over the exact raw body in constant time.
//!
//! Pure functions: no I/O, no clock (the caller passes `now`). Every comparison goes through
//! [`Mac::verify_slice`], which checks the whole tag and rejects a tag of any other length, so an
//! empty or truncated signature can never match a prefix of the real one. Several secrets may be
//! active at once (rotation); any one of them verifying is enough.
//!
//! Three schemes:
//! - hex HMAC-SHA256 of the raw body (`x-signature-256`, GitHub, Tremendous), see
//!   [`verify_hex_hmac`];
//! - Standard Webhooks / Svix (`webhook-*` or `svix-*` headers, `v1,<base64>` over
//!   `id.timestamp.body`), see [`verify_standard_webhooks`];
//! - Stripe style (`t=<unix>,v1=<hex>` over `t.body`), see [`verify_stripe`].

use base64::engine::general_purpose::STANDARD as BASE64;
use base64::Engine as _;
use chrono::{DateTime, Utc};
use hmac::{Hmac, Mac};
use secrecy::{ExposeSecret, SecretString};
use sha2::Sha256;

use super::{Headers, WebhookError};

type HmacSha256 = Hmac<Sha256>;

/// How far a signed timestamp may be from `now`, in either direction, in seconds.
pub const TIMESTAMP_TOLERANCE_SECS: i64 = 300;

/// Prefix of Standard Webhooks secrets; the rest is the base64 of the key bytes.
pub const STANDARD_WEBHOOKS_SECRET_PREFIX: &str = "whsec_";

fn unauthenticated(reason: &str) -> WebhookError {
    WebhookError::Unauthenticated(reason.to_owned())
}

fn mac(key: &[u8]) -> HmacSha256 {
    // HMAC accepts keys of any length, so this cannot fail.
    HmacSha256::new_from_slice(key).expect("HMAC-SHA256 takes keys of any length")
}

/// `mac(key, parts…)` equals `tag`, compared in constant time over the full tag length.
fn tag_matches(key: &[u8], parts: &[&[u8]], tag: &[u8]) -> bool {
    let mut mac = mac(key);
    for part in parts {
        mac.update(part);
    }
    mac.verify_slice(tag).is_ok()
}

fn hmac_bytes(key: &[u8], parts: &[&[u8]]) -> Vec<u8> {
    let mut mac = mac(key);
    for part in parts {
        mac.update(part);
    }
    mac.finalize().into_bytes().to_vec()
}

/// The usable secrets (empty ones are a misconfiguration and never verify anything).
fn usable_secrets(secrets: &[SecretString]) -> Result<Vec<&str>, WebhookError> {
    let usable: Vec<&str> = secrets
        .iter()
        .map(|s| s.expose_secret())
        .filter(|s| !s.is_empty())
        .collect();
    if usable.is_empty() {
        return Err(unauthenticated("no webhook secret is configured"));
    }
    Ok(usable)
}

/// Reads one header as text; missing, empty or non-ASCII headers are rejected.
pub fn header_str<'a>(headers: &'a Headers, name: &str) -> Result<&'a str, WebhookError> {
    let value = headers
        .get(name)
        .ok_or_else(|| WebhookError::Unauthenticated(format!("missing {name} header")))?;
    let value = value
        .to_str()
        .map_err(|_| WebhookError::Unauthenticated(format!("{name} header is not text")))?
        .trim();
    if value.is_empty() {
        return Err(WebhookError::Unauthenticated(format!(
            "{name} header is empty"
        )));
    }
    Ok(value)
}

/// Checks that a signed unix timestamp is within [`TIMESTAMP_TOLERANCE_SECS`] of `now`.
fn check_timestamp(timestamp: &str, now: DateTime<Utc>) -> Result<(), WebhookError> {
    if timestamp.is_empty() || !timestamp.bytes().all(|b| b.is_ascii_digit()) {
        return Err(unauthenticated("signature timestamp is not a unix time"));
    }
    let at: i64 = timestamp
        .parse()
        .map_err(|_| unauthenticated("signature timestamp is out of range"))?;
    let skew = now.timestamp().checked_sub(at).map(i64::abs);
    match skew {
        Some(skew) if skew <= TIMESTAMP_TOLERANCE_SECS => Ok(()),
        _ => Err(unauthenticated(
            "signature timestamp is too far from the current time",
        )),
    }
}

// ---------------------------------------------------------------------------------------------
// Hex HMAC-SHA256 of the raw body.

/// Lowercase hex HMAC-SHA256 of `body` keyed with the bytes of `secret` (no `sha256=` prefix).
pub fn sign_hex_hmac(secret: &str, body: &[u8]) -> String {
    hex::encode(hmac_bytes(secret.as_bytes(), &[body]))
}

/// Verifies a hex HMAC-SHA256 header value such as `sha256=757107ea…` or `757107ea…`.
///
/// Hex case: uppercase hex is accepted. The hex is decoded and the 32 MAC bytes are compared in
/// constant time, so case carries no information and accepting it cannot weaken the check.
/// Rejected: an empty value, `sha256=` with nothing after it, non-hex text, and any length other
/// than 64 hex digits.
pub fn verify_hex_hmac(
    signature: &str,
    raw_body: &[u8],
    secrets: &[SecretString],
) -> Result<(), WebhookError> {
    let signature = signature.trim();
    let hex_digits = signature.strip_prefix("sha256=").unwrap_or(signature);
    if hex_digits.is_empty() {
        return Err(unauthenticated("signature is empty"));
    }
    let tag =
        hex::decode(hex_digits).map_err(|_| unauthenticated("signature is not hexadecimal"))?;
    let secrets = usable_secrets(secrets)?;
    if secrets
        .iter()
        .any(|secret| tag_matches(secret.as_bytes(), &[raw_body], &tag))
    {
        Ok(())
    } else {
        Err(unauthenticated("signature does not match"))
    }
}

// ---------------------------------------------------------------------------------------------
// Standard Webhooks / Svix.

/// The key bytes of a Standard Webhooks secret: `whsec_<base64>` (the prefix is optional, as in
/// the reference libraries). `None` when the rest is not valid base64 or is empty.
fn standard_webhooks_key(secret: &str) -> Option<Vec<u8>> {
    let encoded = secret
        .strip_prefix(STANDARD_WEBHOOKS_SECRET_PREFIX)
        .unwrap_or(secret);
    BASE64.decode(encoded).ok().filter(|key| !key.is_empty())
}

/// The `webhook-signature` header value (`v1,<base64>`) for `msg_id.timestamp.body`.
///
/// # Panics
/// If `secret` is not a Standard Webhooks secret (`whsec_` followed by base64). This helper is for
/// the simulator and tests, which make their own secrets.
pub fn sign_standard_webhooks(secret: &str, msg_id: &str, timestamp: i64, body: &[u8]) -> String {
    let key = standard_webhooks_key(secret)
        .expect("a Standard Webhooks secret is whsec_ followed by non-empty base64");
    let timestamp = timestamp.to_string();
    let tag = hmac_bytes(
        &key,
        &[msg_id.as_bytes(), b".", timestamp.as_bytes(), b".", body],
    );
    format!("v1,{}", BASE64.encode(tag))
}

/// Verifies a Standard Webhooks (or Svix-branded) delivery.
///
/// Headers: `webhook-id`, `webhook-timestamp`, `webhook-signature`, or the `svix-` versions of all
/// three when `webhook-id` is absent (never a mix). The signature header is a space-separated
/// list of `version,base64` entries; only `v1` entries are checked, other versions are ignored,
/// and an empty `v1,` never matches. The timestamp must be within 300 s of `now` either way.
/// Secrets are `whsec_<base64>`; a secret that does not decode is skipped.
pub fn verify_standard_webhooks(
    headers: &Headers,
    raw_body: &[u8],
    secrets: &[SecretString],
    now: DateTime<Utc>,
) -> Result<(), WebhookError> {
    let brand = if headers.contains_key("webhook-id") {
        "webhook"
    } else {
        "svix"
    };
    let msg_id = header_str(headers, &format!("{brand}-id"))?;
    let timestamp = header_str(headers, &format!("{brand}-timestamp"))?;
    let signatures = header_str(headers, &format!("{brand}-signature"))?;
    check_timestamp(timestamp, now)?;

    let keys: Vec<Vec<u8>> = usable_secrets(secrets)?
        .into_iter()
        .filter_map(standard_webhooks_key)
        .collect();
    if keys.is_empty() {
        return Err(unauthenticated(
            "no configured secret is a valid whsec_ secret",
        ));
    }
    let tags: Vec<Vec<u8>> = signatures
        .split_ascii_whitespace()
        .filter_map(|entry| entry.split_once(','))
        .filter(|(version, _)| *version == "v1")
        .filter_map(|(_, encoded)| BASE64.decode(encoded).ok())
        .filter(|tag| !tag.is_empty())
        .collect();
    if tags.is_empty() {
        return Err(unauthenticated("no v1 signature in the signature header"));
    }
    let signed: [&[u8]; 5] = [
        msg_id.as_bytes(),
        b".",
        timestamp.as_bytes(),
        b".",
        raw_body,
    ];
    let matched = keys
        .iter()
        .any(|key| tags.iter().any(|tag| tag_matches(key, &signed, tag)));
    if matched {
        Ok(())
    } else {
        Err(unauthenticated("signature does not match"))
    }
}

// ---------------------------------------------------------------------------------------------
// Stripe style.

/// The Stripe-style header value `t=<timestamp>,v1=<hex>` over `timestamp.body`.
pub fn sign_stripe(secret: &str, timestamp: i64, body: &[u8]) -> String {
    let t = timestamp.to_string();
    let tag = hmac_bytes(secret.as_bytes(), &[t.as_bytes(), b".", body]);
    format!("t={t},v1={}", hex::encode(tag))
}

/// Verifies a Stripe-style header `t=<unix>,v1=<hex>[,v1=<hex>…]` over `t.body`.
///
/// The timestamp must be within 300 s of `now` in either direction (Stripe's own libraries only
/// reject old timestamps; a far-future one is just as replayable, so it is rejected too). Entries
/// other than `t` and `v1` are ignored; exactly one `t` is required.
pub fn verify_stripe(
    header: &str,
    raw_body: &[u8],
    secrets: &[SecretString],
    now: DateTime<Utc>,
) -> Result<(), WebhookError> {
    let pairs: Vec<(&str, &str)> = header
        .split(',')
        .filter_map(|item| item.trim().split_once('='))
        .collect();
    let mut timestamps = pairs.iter().filter(|(k, _)| *k == "t").map(|(_, v)| *v);
    let timestamp = match (timestamps.next(), timestamps.next()) {
        (Some(t), None) => t,
        _ => return Err(unauthenticated("signature needs exactly one t= timestamp")),
    };
    check_timestamp(timestamp, now)?;
    let tags: Vec<Vec<u8>> = pairs
        .iter()
        .filter(|(k, _)| *k == "v1")
        .filter_map(|(_, v)| hex::decode(v).ok())
        .filter(|tag| !tag.is_empty())
        .collect();
    if tags.is_empty() {
        return Err(unauthenticated("no v1 signature in the signature header"));
    }
    let secrets = usable_secrets(secrets)?;
    let signed: [&[u8]; 3] = [timestamp.as_bytes(), b".", raw_body];
    let matched = secrets.iter().any(|secret| {
        tags.iter()
            .any(|tag| tag_matches(secret.as_bytes(), &signed, tag))
    });
    if matched {
        Ok(())
    } else {
        Err(unauthenticated("signature does not match"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::http::HeaderValue;
    use chrono::TimeZone;

    fn secrets(values: &[&str]) -> Vec<SecretString> {
        values.iter().map(|s| SecretString::from(*s)).collect()
    }

    fn at(unix: i64) -> DateTime<Utc> {
        Utc.timestamp_opt(unix, 0).single().unwrap()
    }

    // GitHub's documented test vector ("Validating webhook deliveries", docs.github.com).
    const GITHUB_SECRET: &str = "It's a Secret to Everybody";
    const GITHUB_BODY: &[u8] = b"Hello, World!";
    const GITHUB_SIGNATURE: &str =
        "757107ea0eb2509fc211221cce984b8a37570b6d7586c22c46f4379c8b043e17";

    #[test]
    fn hex_hmac_matches_githubs_documented_vector() {
        assert_eq!(sign_hex_hmac(GITHUB_SECRET, GITHUB_BODY), GITHUB_SIGNATURE);
        let s = secrets(&[GITHUB_SECRET]);
        assert_eq!(verify_hex_hmac(GITHUB_SIGNATURE, GITHUB_BODY, &s), Ok(()));
        let prefixed = format!("sha256={GITHUB_SIGNATURE}");
        assert_eq!(verify_hex_hmac(&prefixed, GITHUB_BODY, &s), Ok(()));
    }

    #[test]
    fn hex_hmac_accepts_uppercase_hex() {
        let s = secrets(&[GITHUB_SECRET]);
        let upper = GITHUB_SIGNATURE.to_ascii_uppercase();
        assert_eq!(verify_hex_hmac(&upper, GITHUB_BODY, &s), Ok(()));
    }

    #[test]
    fn hex_hmac_rejects_tampering_and_malformed_signatures() {
        let s = secrets(&[GITHUB_SECRET]);
        let reject = |sig: &str, body: &[u8], s: &[SecretString]| {
            assert!(
                matches!(
                    verify_hex_hmac(sig, body, s),
                    Err(WebhookError::Unauthenticated(_))
                ),
                "{sig:?} over {body:?} must be rejected"
            );
        };
        // A flipped body byte.
        reject(GITHUB_SIGNATURE, b"Hello, World?", &s);
        // A wrong secret.
        reject(GITHUB_SIGNATURE, GITHUB_BODY, &secrets(&["not the secret"]));
        // Truncated signatures, down to one byte and nothing.
        reject(&GITHUB_SIGNATURE[..62], GITHUB_BODY, &s);
        reject(&GITHUB_SIGNATURE[..2], GITHUB_BODY, &s);
        reject("sha256=", GITHUB_BODY, &s);
        reject("", GITHUB_BODY, &s);
        // Odd length, non-hex, an extra byte.
        reject(&GITHUB_SIGNATURE[..63], GITHUB_BODY, &s);
        reject(&GITHUB_SIGNATURE.replace('7', "g"), GITHUB_BODY, &s);
        reject(&format!("{GITHUB_SIGNATURE}00"), GITHUB_BODY, &s);
        // No usable secret at all.
        reject(GITHUB_SIGNATURE, GITHUB_BODY, &[]);
        reject(GITHUB_SIGNATURE, GITHUB_BODY, &secrets(&[""]));
    }

    #[test]
    fn hex_hmac_accepts_any_active_secret_during_rotation() {
        let s = secrets(&["old secret", GITHUB_SECRET]);
        assert_eq!(verify_hex_hmac(GITHUB_SIGNATURE, GITHUB_BODY, &s), Ok(()));
        let s = secrets(&[GITHUB_SECRET, "new secret"]);
        assert_eq!(verify_hex_hmac(GITHUB_SIGNATURE, GITHUB_BODY, &s), Ok(()));
    }

    // The reference example of the Standard Webhooks libraries: `test_sign_function` in
    // standard-webhooks/standard-webhooks, libraries/python/tests/test_webhooks.py (the same
    // values appear in the other languages' test suites of that repository).
    const SW_SECRET: &str = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";
    const SW_MSG_ID: &str = "msg_p5jXN8AQM9LWM0D4loKWxJek";
    const SW_TIMESTAMP: i64 = 1614265330;
    const SW_BODY: &[u8] = br#"{"test": 2432232314}"#;
    const SW_SIGNATURE: &str = "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=";

    fn sw_headers(brand: &str, id: &str, timestamp: i64, signature: &str) -> Headers {
        let mut headers = Headers::new();
        let mut put = |name: String, value: &str| {
            headers.insert(
                axum::http::HeaderName::try_from(name).unwrap(),
                HeaderValue::from_str(value).unwrap(),
            );
        };
        put(format!("{brand}-id"), id);
        put(format!("{brand}-timestamp"), &timestamp.to_string());
        put(format!("{brand}-signature"), signature);
        headers
    }

    fn sw_verify(headers: &Headers, body: &[u8], s: &[&str], now: i64) -> Result<(), WebhookError> {
        verify_standard_webhooks(headers, body, &secrets(s), at(now))
    }

    #[test]
    fn standard_webhooks_matches_the_reference_example() {
        assert_eq!(
            sign_standard_webhooks(SW_SECRET, SW_MSG_ID, SW_TIMESTAMP, SW_BODY),
            SW_SIGNATURE
        );
        for brand in ["webhook", "svix"] {
            let h = sw_headers(brand, SW_MSG_ID, SW_TIMESTAMP, SW_SIGNATURE);
            assert_eq!(sw_verify(&h, SW_BODY, &[SW_SECRET], SW_TIMESTAMP), Ok(()));
        }
        // The prefix is optional, as in the reference libraries.
        let h = sw_headers("webhook", SW_MSG_ID, SW_TIMESTAMP, SW_SIGNATURE);
        let bare = SW_SECRET.trim_start_matches("whsec_");
        assert_eq!(sw_verify(&h, SW_BODY, &[bare], SW_TIMESTAMP), Ok(()));
    }

    #[test]
    fn standard_webhooks_timestamp_tolerance_is_300_seconds_either_way() {
        let h = sw_headers("webhook", SW_MSG_ID, SW_TIMESTAMP, SW_SIGNATURE);
        for ok in [-300, -299, 0, 299, 300] {
            assert_eq!(
                sw_verify(&h, SW_BODY, &[SW_SECRET], SW_TIMESTAMP + ok),
                Ok(()),
                "{ok} s"
            );
        }
        // 301 s old (now is 301 s later) and 301 s ahead (now is 301 s earlier).
        for bad in [301, -301] {
            assert!(sw_verify(&h, SW_BODY, &[SW_SECRET], SW_TIMESTAMP + bad).is_err());
        }
    }

    #[test]
    fn standard_webhooks_rejects_tampering_and_malformed_headers() {
        let now = SW_TIMESTAMP;
        let ok = sw_headers("webhook", SW_MSG_ID, now, SW_SIGNATURE);
        // A flipped body byte, a wrong secret, a different message id.
        assert!(sw_verify(&ok, br#"{"test": 2432232315}"#, &[SW_SECRET], now).is_err());
        let other = format!("whsec_{}", BASE64.encode(b"another secret of enough bytes"));
        assert!(sw_verify(&ok, SW_BODY, &[&other], now).is_err());
        let h = sw_headers("webhook", "msg_other", now, SW_SIGNATURE);
        assert!(sw_verify(&h, SW_BODY, &[SW_SECRET], now).is_err());
        // Empty `v1,`, a truncated signature, only unknown versions.
        for sig in [
            "v1,",
            "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1O==",
            "v1,g0hM",
            "v2,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=",
            "v1a,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=",
            "g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=",
        ] {
            let h = sw_headers("webhook", SW_MSG_ID, now, sig);
            assert!(sw_verify(&h, SW_BODY, &[SW_SECRET], now).is_err(), "{sig}");
        }
        // Missing headers, a non-numeric timestamp.
        let mut h = ok.clone();
        h.remove("webhook-signature");
        assert!(sw_verify(&h, SW_BODY, &[SW_SECRET], now).is_err());
        let mut h = ok.clone();
        h.insert(
            "webhook-timestamp",
            HeaderValue::from_static("1614265330.0"),
        );
        assert!(sw_verify(&h, SW_BODY, &[SW_SECRET], now).is_err());
        // A webhook-id with svix-* for the rest is not mixed.
        let mut h = sw_headers("svix", SW_MSG_ID, now, SW_SIGNATURE);
        h.insert("webhook-id", HeaderValue::from_static(SW_MSG_ID));
        assert!(sw_verify(&h, SW_BODY, &[SW_SECRET], now).is_err());
        // A secret that is not base64 verifies nothing.
        assert!(sw_verify(&ok, SW_BODY, &["whsec_***"], now).is_err());
    }

    #[test]
    fn standard_webhooks_ignores_unknown_versions_and_tries_every_v1() {
        let now = SW_TIMESTAMP;
        let sig = format!(
            "v2,abc v1a,AAAA v1,Ceo5qEr07ixe2NLpvHk3FH9bwy/WavXrAFQ/9tdO6mc= {SW_SIGNATURE} v1,"
        );
        let h = sw_headers("webhook", SW_MSG_ID, now, &sig);
        assert_eq!(sw_verify(&h, SW_BODY, &[SW_SECRET], now), Ok(()));
    }

    #[test]
    fn standard_webhooks_accepts_any_active_secret_during_rotation() {
        let now = SW_TIMESTAMP;
        let old = format!("whsec_{}", BASE64.encode(b"the secret we are retiring now"));
        let h = sw_headers("webhook", SW_MSG_ID, now, SW_SIGNATURE);
        assert_eq!(sw_verify(&h, SW_BODY, &[&old, SW_SECRET], now), Ok(()));
        assert_eq!(sw_verify(&h, SW_BODY, &[SW_SECRET, &old], now), Ok(()));
        assert!(sw_verify(&h, SW_BODY, &[&old], now).is_err());
    }

    #[test]
    fn stripe_style_round_trips_and_checks_the_timestamp() {
        let now = 1_700_000_000;
        let body = br#"{"id":"evt_1"}"#;
        let header = sign_stripe("stripe secret", now, body);
        assert!(header.starts_with(&format!("t={now},v1=")));
        let s = secrets(&["stripe secret"]);
        assert_eq!(verify_stripe(&header, body, &s, at(now)), Ok(()));
        assert_eq!(verify_stripe(&header, body, &s, at(now + 299)), Ok(()));
        assert!(verify_stripe(&header, body, &s, at(now + 301)).is_err());
        assert!(verify_stripe(&header, body, &s, at(now - 301)).is_err());
        // A second, unrelated v1 (rotation on the sender side) does not hurt.
        let two = format!("{header},v1={}", "ab".repeat(32));
        assert_eq!(verify_stripe(&two, body, &s, at(now)), Ok(()));
    }

    #[test]
    fn stripe_style_rejects_tampering_and_malformed_headers() {
        let now = 1_700_000_000;
        let body = br#"{"id":"evt_1"}"#;
        let s = secrets(&["stripe secret"]);
        let header = sign_stripe("stripe secret", now, body);
        assert!(verify_stripe(&header, br#"{"id":"evt_2"}"#, &s, at(now)).is_err());
        assert!(verify_stripe(&header, body, &secrets(&["other"]), at(now)).is_err());
        let hex_sig = header.split("v1=").nth(1).unwrap();
        for bad in [
            format!("t={now},v1="),
            format!("t={now},v1={}", &hex_sig[..62]),
            format!("t={now}"),
            format!("v1={hex_sig}"),
            format!("t={now},t={now},v1={hex_sig}"),
            format!("t={},v1={hex_sig}", now + 1),
            format!("t={now},v0={hex_sig}"),
        ] {
            assert!(verify_stripe(&bad, body, &s, at(now)).is_err(), "{bad}");
        }
        // Rotation: either active secret.
        let s = secrets(&["old", "stripe secret"]);
        assert_eq!(verify_stripe(&header, body, &s, at(now)), Ok(()));
    }
}
