//! Webhook delivery, like a real vendor: signed JSON events POSTed from a background task,
//! retried on failure, with the webhook faults (drop, duplicate, reorder, bad signature).

use std::collections::{HashMap, VecDeque};
use std::sync::Arc;
use std::time::Duration;

use anyhow::{bail, Context};
use axum::body::Bytes;
use axum::http::header::CONTENT_TYPE;
use chrono::{DateTime, Utc};
use hmac::{Hmac, Mac};
use secrecy::{ExposeSecret, SecretString};
use serde::Serialize;
use sha2::Sha256;
use tokio::sync::{mpsc, watch};
use tokio::time::Instant;

use super::order::{timestamp, Order};
use super::state::{bump, Sim};

/// The signature header: lowercase hex HMAC-SHA256 of the exact body bytes.
pub const SIGNATURE_HEADER: &str = "x-signature-256";

/// Waits before the retries that follow a failed first attempt (so four attempts in all).
pub const RETRY_DELAYS: [Duration; 3] = [
    Duration::from_millis(50),
    Duration::from_millis(200),
    Duration::from_secs(1),
];

/// Longest a held-back event waits for a later event of its order to overtake it.
pub const HOLD_LIMIT: Duration = Duration::from_secs(1);

/// Per-attempt timeout.
const ATTEMPT_TIMEOUT: Duration = Duration::from_secs(5);

/// Where webhooks go, and the secret they are signed with.
#[derive(Clone, Debug)]
pub struct WebhookConfig {
    /// `http://` or `https://` address of the receiver.
    pub url: String,
    pub secret: SecretString,
}

/// A checked [`WebhookConfig`] plus the HTTP client that delivers to it.
pub struct WebhookTarget {
    url: reqwest::Url,
    secret: SecretString,
    client: reqwest::Client,
}

impl WebhookTarget {
    pub fn new(config: WebhookConfig) -> anyhow::Result<WebhookTarget> {
        let url = reqwest::Url::parse(&config.url)
            .with_context(|| format!("webhook URL {:?} is not a valid URL", config.url))?;
        if !matches!(url.scheme(), "http" | "https") {
            bail!(
                "webhook URL {:?} must start with http:// or https://",
                config.url
            );
        }
        if config.secret.expose_secret().is_empty() {
            bail!("the webhook secret cannot be empty");
        }
        let client = reqwest::Client::builder()
            .timeout(ATTEMPT_TIMEOUT)
            .build()
            .context("cannot build the webhook HTTP client")?;
        Ok(WebhookTarget {
            url,
            secret: config.secret,
            client,
        })
    }
}

/// One change to one order, to be announced.
#[derive(Clone, Debug)]
pub struct Event {
    pub event_id: String,
    pub event_type: &'static str,
    pub created_at: DateTime<Utc>,
    /// The order as it was right after the change.
    pub order: Order,
}

#[derive(Serialize)]
struct EventBody<'a> {
    event_id: &'a str,
    #[serde(rename = "type")]
    event_type: &'a str,
    created_at: String,
    order: EventOrder<'a>,
}

#[derive(Serialize)]
struct EventOrder<'a> {
    vendor_order_id: &'a str,
    idempotency_key: Option<&'a str>,
    status: &'a str,
    amount: String,
    currency: &'a str,
    brand_id: &'a str,
    created_at: String,
    updated_at: String,
}

impl Event {
    pub fn new(event_type: &'static str, order: Order) -> Event {
        Event {
            event_id: format!("evt_{}", uuid::Uuid::now_v7().simple()),
            event_type,
            created_at: order.updated_at,
            order,
        }
    }

    /// The JSON body; the same bytes for every copy and retry of this event.
    pub fn body(&self) -> Bytes {
        let order = &self.order;
        let body = EventBody {
            event_id: &self.event_id,
            event_type: self.event_type,
            created_at: timestamp(self.created_at),
            order: EventOrder {
                vendor_order_id: &order.vendor_order_id,
                idempotency_key: order.idempotency_key.as_deref(),
                status: order.status.as_str(),
                amount: order.amount.amount_string(),
                currency: order.amount.currency().code(),
                brand_id: &order.brand_id,
                created_at: timestamp(order.created_at),
                updated_at: timestamp(order.updated_at),
            },
        };
        Bytes::from(serde_json::to_vec(&body).expect("an event always serializes"))
    }
}

/// Lowercase hex HMAC-SHA256 of `body` under `secret`.
pub fn sign(secret: &[u8], body: &[u8]) -> String {
    let mut mac = Hmac::<Sha256>::new_from_slice(secret).expect("HMAC accepts keys of any length");
    mac.update(body);
    hex::encode(mac.finalize().into_bytes())
}

/// Fault decisions for one event, made when it is dispatched.
#[derive(Clone, Copy, Debug)]
struct Mischief {
    duplicate: bool,
    bad_signature: bool,
}

type Outgoing = (Event, Mischief);

/// Reads events in the order the changes happened and hands each to a delivery task, applying
/// the webhook faults. A reordered event is held until the next event of the same order has
/// been delivered (which thereby overtakes it), or for [`HOLD_LIMIT`] if none comes.
pub async fn dispatch(
    sim: Arc<Sim>,
    target: Arc<WebhookTarget>,
    mut events: mpsc::UnboundedReceiver<Event>,
    mut shutdown: watch::Receiver<bool>,
) {
    let mut held: HashMap<String, Outgoing> = HashMap::new();
    // (release time, order id, event id), in release order: every hold lasts HOLD_LIMIT.
    let mut releases: VecDeque<(Instant, String, String)> = VecDeque::new();
    loop {
        let next_release = releases.front().map(|(at, _, _)| *at);
        tokio::select! {
            _ = shutdown.wait_for(|stop| *stop) => return,
            _ = tokio::time::sleep_until(next_release.unwrap_or_else(Instant::now)),
                if next_release.is_some() =>
            {
                let Some((_, order_id, event_id)) = releases.pop_front() else {
                    continue;
                };
                if held.get(&order_id).is_some_and(|(e, _)| e.event_id == event_id) {
                    let late = held.remove(&order_id).into_iter().collect();
                    tokio::spawn(deliver(sim.clone(), target.clone(), late));
                }
            }
            event = events.recv() => {
                let Some(event) = event else { return };
                let faults = sim.faults();
                if sim.dice.roll(faults.webhook_drop_rate) {
                    bump(&sim.counters.webhooks_dropped);
                    tracing::debug!(event_id = %event.event_id, "webhook dropped (fault)");
                    continue;
                }
                let mischief = Mischief {
                    duplicate: sim.dice.roll(faults.webhook_duplicate_rate),
                    bad_signature: sim.dice.roll(faults.bad_signature_rate),
                };
                let order_id = event.order.vendor_order_id.clone();
                if let Some(earlier) = held.remove(&order_id) {
                    // This event overtakes the one held back for the same order.
                    let batch = vec![(event, mischief), earlier];
                    tokio::spawn(deliver(sim.clone(), target.clone(), batch));
                } else if sim.dice.roll(faults.webhook_reorder_rate) {
                    bump(&sim.counters.webhooks_reordered);
                    releases.push_back((Instant::now() + HOLD_LIMIT, order_id.clone(), event.event_id.clone()));
                    held.insert(order_id, (event, mischief));
                } else {
                    tokio::spawn(deliver(sim.clone(), target.clone(), vec![(event, mischief)]));
                }
            }
        }
    }
}

/// Delivers events one after the other, each with its retries.
async fn deliver(sim: Arc<Sim>, target: Arc<WebhookTarget>, batch: Vec<Outgoing>) {
    for (event, mischief) in batch {
        let body = event.body();
        let secret = target.secret.expose_secret().as_bytes();
        let signature = if mischief.bad_signature {
            bump(&sim.counters.webhooks_bad_signature);
            // As if the vendor signed with a rotated secret the receiver does not know.
            sign(&[secret, b"-rotated"].concat(), &body)
        } else {
            sign(secret, &body)
        };
        let copies = if mischief.duplicate {
            bump(&sim.counters.webhooks_duplicated);
            2
        } else {
            1
        };
        for _ in 0..copies {
            post_with_retries(&sim, &target, &event, &body, &signature).await;
        }
    }
}

#[tracing::instrument(skip_all, fields(event_id = %event.event_id, event_type = event.event_type))]
async fn post_with_retries(
    sim: &Sim,
    target: &WebhookTarget,
    event: &Event,
    body: &Bytes,
    signature: &str,
) {
    let waits = std::iter::once(Duration::ZERO).chain(RETRY_DELAYS);
    for (attempt, wait) in waits.enumerate() {
        tokio::time::sleep(wait).await;
        bump(&sim.counters.webhook_attempts);
        let answer = target
            .client
            .post(target.url.clone())
            .header(CONTENT_TYPE, "application/json")
            .header(SIGNATURE_HEADER, signature)
            .body(body.clone())
            .send()
            .await;
        match answer {
            Ok(response) if response.status().is_success() => {
                bump(&sim.counters.webhooks_sent);
                return;
            }
            Ok(response) => {
                tracing::debug!(attempt, status = %response.status(), "webhook refused")
            }
            Err(err) => tracing::debug!(attempt, error = %err, "webhook not delivered"),
        }
    }
    bump(&sim.counters.webhooks_failed);
    tracing::warn!(
        attempts = RETRY_DELAYS.len() + 1,
        "webhook given up after the last retry"
    );
}

#[cfg(test)]
mod tests {
    use app::domain::{Currency, Money};

    use super::super::order::OrderStatus;
    use super::*;

    #[test]
    fn signatures_match_githubs_published_test_vector() {
        assert_eq!(
            sign(b"It's a Secret to Everybody", b"Hello, World!"),
            "757107ea0eb2509fc211221cce984b8a37570b6d7586c22c46f4379c8b043e17"
        );
    }

    #[test]
    fn event_bodies_carry_the_order_snapshot() {
        let at = DateTime::from_timestamp_micros(1_700_000_000_000_001).unwrap();
        let order = Order {
            vendor_order_id: "ord_1".into(),
            idempotency_key: Some("k1".into()),
            customer_id: Some("c1".into()),
            brand_id: "amazon".into(),
            amount: Money::from_minor(5000, Currency::USD),
            status: OrderStatus::Fulfilled,
            created_at: at,
            updated_at: at,
        };
        let event = Event::new("order.fulfilled", order);
        let body: serde_json::Value = serde_json::from_slice(&event.body()).unwrap();
        assert_eq!(body["event_id"], event.event_id.as_str());
        assert_eq!(body["type"], "order.fulfilled");
        assert_eq!(body["created_at"], "2023-11-14T22:13:20.000001Z");
        assert_eq!(body["order"]["amount"], "50.00");
        assert_eq!(body["order"]["currency"], "USD");
        assert_eq!(body["order"]["status"], "fulfilled");
        assert_eq!(body["order"]["idempotency_key"], "k1");
        assert!(body["order"].get("customer_id").is_none());
        assert_ne!(
            Event::new("order.created", event.order.clone()).event_id,
            event.event_id
        );
    }

    #[test]
    fn targets_must_be_http_with_a_secret() {
        let config = |url: &str, secret: &str| WebhookConfig {
            url: url.into(),
            secret: SecretString::from(secret.to_string()),
        };
        assert!(WebhookTarget::new(config("http://127.0.0.1:9/hook", "s")).is_ok());
        let err = WebhookTarget::new(config("ftp://x/hook", "s"))
            .err()
            .unwrap();
        assert!(err.to_string().contains("http://"), "{err}");
        assert!(WebhookTarget::new(config("not a url", "s")).is_err());
        assert!(WebhookTarget::new(config("http://x/hook", "")).is_err());
    }
}
