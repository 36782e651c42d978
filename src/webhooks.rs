//! `POST /webhooks/{vendor}`: verify the signature over the raw bytes, store, then acknowledge.
//!
//! - body over [`MAX_WEBHOOK_BYTES`] → 413 (before anything else is read);
//! - unknown vendor → 404;
//! - missing, malformed or wrong signature, stale timestamp, no active secret → 401, nothing
//!   stored: only `giftrecon_webhooks_total{vendor,result="unauthenticated"}` and a log line
//!   (never the body or a secret);
//! - verified but not understood → 400, the raw event kept in the inbox as `rejected`;
//! - verified and understood → stored and applied in one transaction, then 200; a repeat of the
//!   same (vendor, event id) → 200 and nothing changes;
//! - the database unavailable → 503, so the vendor retries.

use std::collections::HashMap;
use std::sync::{Arc, OnceLock, RwLock};
use std::time::{Duration, Instant};

use app::domain::{GlState, StatusMapping, VendorId, VendorKind};
use app::storage::vendor_records::ObservedOrder;
use app::storage::webhooks::{self as inbox, EventSubject, InboxEntry, Received};
use app::storage::{now_utc, vendors, Db, StorageError};
use axum::body::Bytes;
use axum::extract::{DefaultBodyLimit, Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use axum::{Json, Router};
use chrono::{DateTime, Utc};
use secrecy::SecretString;
use serde_json::json;
use sha2::{Digest, Sha256};
use tokio::sync::{mpsc, oneshot};

use crate::api::ApiState;
use crate::vendors::{
    adapter_for, VendorAdapter, VendorEndpoint, VendorOrder, WebhookError, WebhookEvent,
    WebhookSubject,
};

/// Largest webhook body accepted.
pub const MAX_WEBHOOK_BYTES: usize = 256 * 1024;

/// Headers kept with an inbox event: the ones that identify, date or sign it.
const KEPT_HEADERS: &[&str] = &[
    "content-type",
    "user-agent",
    "x-signature-256",
    "tremendous-webhook-signature",
    "webhook-id",
    "webhook-timestamp",
    "webhook-signature",
    "svix-id",
    "svix-timestamp",
    "svix-signature",
    "stripe-signature",
];

pub fn router<S: Clone + Send + Sync + 'static>(state: ApiState) -> Router<S> {
    Router::new()
        .route("/webhooks/{vendor}", post(receive_webhook))
        .layer(DefaultBodyLimit::max(MAX_WEBHOOK_BYTES))
        .with_state(state)
}

/// The adapter of each vendor kind, for verifying and parsing only (they never call out here).
fn parser_for(kind: VendorKind) -> Arc<dyn VendorAdapter> {
    static PARSERS: OnceLock<HashMap<VendorKind, Arc<dyn VendorAdapter>>> = OnceLock::new();
    PARSERS
        .get_or_init(|| {
            VendorKind::ALL
                .into_iter()
                .map(|kind| {
                    let endpoint = VendorEndpoint {
                        base_url: "http://127.0.0.1:9".to_owned(),
                        api_key: None,
                        timeout: Duration::from_secs(1),
                    };
                    (kind, Arc::from(adapter_for(kind, endpoint)))
                })
                .collect()
        })
        .get(&kind)
        .expect("every vendor kind has an adapter")
        .clone()
}

fn count(vendor: &str, result: &'static str) {
    metrics::counter!("giftrecon_webhooks_total", "vendor" => vendor.to_string(), "result" => result)
        .increment(1);
}

fn answer(status: StatusCode, body: serde_json::Value) -> Response {
    (status, Json(body)).into_response()
}

fn unavailable(vendor: &str, err: &StorageError) -> Response {
    count(vendor, "unavailable");
    tracing::error!(vendor, error = %err, "webhook not stored: database unavailable");
    answer(
        StatusCode::SERVICE_UNAVAILABLE,
        json!({ "error": "database unavailable; retry later" }),
    )
}

#[tracing::instrument(skip(state, headers, body), fields(vendor = %vendor, bytes = body.len()))]
async fn receive_webhook(
    State(state): State<ApiState>,
    Path(vendor): Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let Ok(vendor_id) = VendorId::parse(&vendor) else {
        return answer(StatusCode::NOT_FOUND, json!({ "error": "unknown vendor" }));
    };
    let vendor_label = vendor_id.as_str();
    let now = now_utc();
    let mut keys = match state
        .webhook_keys
        .get(&state.db, &vendor_id, KEY_CACHE_TTL)
        .await
    {
        Ok(Some(keys)) => keys,
        Ok(None) => return answer(StatusCode::NOT_FOUND, json!({ "error": "unknown vendor" })),
        Err(err) => return unavailable(vendor_label, &err),
    };
    let adapter = parser_for(keys.kind);
    let mut verified = adapter.verify_webhook(&headers, &body, &keys.active_at(now), now);
    if verified.is_err() && keys.loaded.elapsed() >= KEY_RELOAD_ON_FAILURE_AFTER {
        // A secret added since the keys were read verifies at once, not after the cache's TTL.
        keys = match state
            .webhook_keys
            .get(&state.db, &vendor_id, KEY_RELOAD_ON_FAILURE_AFTER)
            .await
        {
            Ok(Some(keys)) => keys,
            Ok(None) => return answer(StatusCode::NOT_FOUND, json!({ "error": "unknown vendor" })),
            Err(err) => return unavailable(vendor_label, &err),
        };
        verified = adapter.verify_webhook(&headers, &body, &keys.active_at(now), now);
    }
    if let Err(err) = verified {
        count(vendor_label, "unauthenticated");
        // The reason names the header or check that failed; never the body or a secret.
        tracing::warn!(vendor = vendor_label, reason = %err, "webhook rejected: bad signature");
        return answer(
            StatusCode::UNAUTHORIZED,
            json!({ "error": "signature verification failed" }),
        );
    }
    let kept = kept_headers(&headers);
    let (result, status) = match adapter.parse_webhook(&headers, &body) {
        Ok(event) => {
            let subject = subject_of(&event, &keys.status_mapping);
            let entry = InboxEntry {
                vendor_id: vendor_label,
                event_id: &event.event_id,
                event_type: Some(&event.event_type),
                headers: kept,
                body: &body,
            };
            (
                state.webhooks.receive(&entry, body.clone(), subject).await,
                StatusCode::OK,
            )
        }
        Err(WebhookError::Unparseable(reason)) | Err(WebhookError::Unauthenticated(reason)) => {
            let event_id = format!("sha256:{}", hex::encode(Sha256::digest(&body)));
            let entry = InboxEntry {
                vendor_id: vendor_label,
                event_id: &event_id,
                event_type: None,
                headers: kept,
                body: &body,
            };
            tracing::warn!(vendor = vendor_label, %reason, "verified webhook not understood; kept as rejected");
            (
                inbox::store_rejected(&state.db, &entry, &reason).await,
                StatusCode::BAD_REQUEST,
            )
        }
    };
    match result {
        Err(err) => unavailable(vendor_label, &err),
        Ok(_) if status == StatusCode::BAD_REQUEST => {
            count(vendor_label, "rejected");
            answer(
                status,
                json!({ "error": "the event is not a known webhook event; it was kept for inspection" }),
            )
        }
        Ok(Received::Duplicate) => {
            count(vendor_label, "duplicate");
            answer(StatusCode::OK, json!({ "status": "duplicate" }))
        }
        Ok(Received::Stored {
            state: stored,
            sync_queued,
            advanced,
            ..
        }) => {
            count(vendor_label, "accepted");
            if sync_queued {
                state.outbox_wake.notify_one();
            }
            // Debug, not info: one line per delivery would be most of the log at volume, and
            // giftrecon_webhooks_total counts them.
            tracing::debug!(
                vendor = vendor_label,
                state = stored,
                advanced = advanced.is_some(),
                "webhook stored"
            );
            answer(StatusCode::OK, json!({ "status": stored }))
        }
    }
}

/// The headers worth keeping, as a JSON object.
fn kept_headers(headers: &HeaderMap) -> String {
    let kept: serde_json::Map<String, serde_json::Value> = KEPT_HEADERS
        .iter()
        .filter_map(|name| {
            let value = headers.get(*name)?.to_str().ok()?;
            Some((name.to_string(), json!(value)))
        })
        .collect();
    serde_json::Value::Object(kept).to_string()
}

fn subject_of(event: &WebhookEvent, mapping: &StatusMapping) -> EventSubject {
    match &event.subject {
        WebhookSubject::Order(order) => EventSubject::Order(observed(order, mapping)),
        WebhookSubject::OrderChanged { vendor_order_id } => EventSubject::OrderChanged {
            vendor_order_id: vendor_order_id.clone(),
        },
        WebhookSubject::Other { .. } => EventSubject::Other,
    }
}

/// A vendor's view of an order, with its status mapped through the vendor's mapping.
pub fn observed(order: &VendorOrder, mapping: &StatusMapping) -> ObservedOrder {
    let gl_state: Option<GlState> = mapping.gl_state_for(&order.status);
    ObservedOrder {
        vendor_order_id: order.vendor_order_id.clone(),
        vendor_key: order.vendor_key.clone(),
        reference_id: order.reference_id.clone(),
        brand_id: order.brand_id.clone(),
        amount: order.amount,
        status: order.status.clone(),
        gl_state,
        created_at: order.created_at,
        updated_at: order.updated_at,
    }
}

/// How long a vendor's kind, status mapping and webhook secrets are kept in memory: a secret
/// added, retired or removed in the database takes effect within this (a secret retiring at a
/// set time, at the end of a rotation's grace period, stops verifying exactly then).
pub const KEY_CACHE_TTL: Duration = Duration::from_secs(1);

/// A signature that fails against keys older than this re-reads them once (so a new secret
/// verifies at once), at most this often per vendor whatever a forger sends.
const KEY_RELOAD_ON_FAILURE_AFTER: Duration = Duration::from_millis(100);

/// What verifying and mapping a vendor's webhooks needs, as read from the database.
pub struct VendorKeys {
    pub kind: VendorKind,
    pub status_mapping: StatusMapping,
    /// Secrets not retired when read, newest first, with when each retires.
    secrets: Vec<(SecretString, Option<DateTime<Utc>>)>,
    /// The secrets alone, for the usual case that none has retired since.
    all: Vec<SecretString>,
    /// The earliest retirement among them.
    first_retirement: Option<DateTime<Utc>>,
    loaded: Instant,
}

impl VendorKeys {
    /// The secrets that verify at `now`.
    fn active_at(&self, now: DateTime<Utc>) -> std::borrow::Cow<'_, [SecretString]> {
        if self.first_retirement.is_none_or(|at| at > now) {
            return std::borrow::Cow::Borrowed(&self.all);
        }
        std::borrow::Cow::Owned(
            self.secrets
                .iter()
                .filter(|(_, retired_at)| inbox::secret_is_active(*retired_at, now))
                .map(|(secret, _)| secret.clone())
                .collect(),
        )
    }
}

/// Each vendor's [`VendorKeys`], read at most once per [`KEY_CACHE_TTL`]: a webhook costs no
/// database read before its signature is checked.
#[derive(Clone, Default)]
pub struct KeyCache {
    vendors: Arc<RwLock<HashMap<VendorId, Arc<VendorKeys>>>>,
}

impl KeyCache {
    /// The vendor's keys, read again when older than `max_age`; `None` for an unknown vendor.
    pub async fn get(
        &self,
        db: &Db,
        vendor_id: &VendorId,
        max_age: Duration,
    ) -> Result<Option<Arc<VendorKeys>>, StorageError> {
        let cached = self
            .vendors
            .read()
            .expect("key cache lock")
            .get(vendor_id)
            .cloned();
        if let Some(keys) = cached.filter(|k| k.loaded.elapsed() < max_age) {
            return Ok(Some(keys));
        }
        let vendor = match vendors::get_vendor(db, vendor_id).await {
            Ok(vendor) => vendor,
            Err(StorageError::NotFound { .. }) => {
                self.vendors
                    .write()
                    .expect("key cache lock")
                    .remove(vendor_id);
                return Ok(None);
            }
            Err(err) => return Err(err),
        };
        let secrets = inbox::webhook_secrets(db, vendor_id.as_str(), now_utc()).await?;
        let keys = Arc::new(VendorKeys {
            kind: vendor.kind,
            status_mapping: vendor.status_mapping,
            all: secrets.iter().map(|(secret, _)| secret.clone()).collect(),
            first_retirement: secrets.iter().filter_map(|(_, at)| *at).min(),
            secrets,
            loaded: Instant::now(),
        });
        self.vendors
            .write()
            .expect("key cache lock")
            .insert(vendor_id.clone(), keys.clone());
        Ok(Some(keys))
    }
}

/// Most events committed in one transaction.
const MAX_BATCH: usize = 128;

/// A verified event waiting for the group commit.
struct PendingEvent {
    vendor_id: String,
    event_id: String,
    event_type: String,
    headers: String,
    body: Bytes,
    subject: EventSubject,
    reply: oneshot::Sender<Result<Received, StorageError>>,
}

/// Group commit for verified webhooks: a task stores the events waiting at that moment in one
/// transaction and answers each only after the commit, so a 2xx still means durable while a
/// burst costs one commit instead of one per event.
///
/// SQLite has one writer, so one task commits. PostgreSQL commits concurrent transactions in
/// parallel, so there [`PG_COMMITTERS`] tasks take batches from the same queue (see README:
/// Performance for the measurements behind both).
#[derive(Clone)]
pub struct WebhookBatcher {
    db: Db,
    /// `None`: each event is its own transaction.
    queue: Option<mpsc::Sender<PendingEvent>>,
}

/// Tasks committing webhook batches at once on PostgreSQL.
pub const PG_COMMITTERS: usize = 4;

impl WebhookBatcher {
    /// Starts the committing tasks; they end when every clone of the batcher is dropped.
    pub fn spawn(db: Db) -> WebhookBatcher {
        let committers = match db {
            Db::Sqlite(_) => 1,
            Db::Postgres(_) => PG_COMMITTERS,
        };
        WebhookBatcher::spawn_with(db, committers)
    }

    /// With `committers` tasks (one on SQLite whatever is asked); 0 commits each event in its
    /// own transaction, in the request's task.
    pub fn spawn_with(db: Db, committers: usize) -> WebhookBatcher {
        let committers = match db {
            Db::Sqlite(_) => committers.min(1),
            Db::Postgres(_) => committers,
        };
        let queue = (committers > 0).then(|| {
            let (queue, pending) = mpsc::channel(4 * MAX_BATCH);
            let pending = Arc::new(tokio::sync::Mutex::new(pending));
            for _ in 0..committers {
                tokio::spawn(commit_batches(db.clone(), pending.clone()));
            }
            queue
        });
        WebhookBatcher { db, queue }
    }

    /// Stores and applies the event; returns once it is committed (or failed).
    pub async fn receive(
        &self,
        entry: &InboxEntry<'_>,
        body: Bytes,
        subject: EventSubject,
    ) -> Result<Received, StorageError> {
        let Some(queue) = &self.queue else {
            return inbox::receive(&self.db, entry, &subject).await;
        };
        let (reply, answer) = oneshot::channel();
        let pending = PendingEvent {
            vendor_id: entry.vendor_id.to_string(),
            event_id: entry.event_id.to_string(),
            event_type: entry.event_type.unwrap_or_default().to_string(),
            headers: entry.headers.clone(),
            body,
            subject,
            reply,
        };
        let gone = || StorageError::Database(sqlx::Error::PoolClosed);
        queue.send(pending).await.map_err(|_| gone())?;
        answer.await.map_err(|_| gone())?
    }
}

async fn commit_batches(db: Db, pending: Arc<tokio::sync::Mutex<mpsc::Receiver<PendingEvent>>>) {
    loop {
        let batch = {
            // One committer takes what is waiting; the others wait for the next events.
            let mut pending = pending.lock().await;
            let Some(first) = pending.recv().await else {
                return;
            };
            let mut batch = vec![first];
            while batch.len() < MAX_BATCH {
                match pending.try_recv() {
                    Ok(next) => batch.push(next),
                    Err(_) => break,
                }
            }
            batch
        };
        let answers = store_batch(&db, &batch).await;
        for (event, answer) in batch.into_iter().zip(answers) {
            // The sender may have gone (the vendor hung up): the event is stored all the same.
            let _ = event.reply.send(answer);
        }
    }
}

async fn store_batch(db: &Db, batch: &[PendingEvent]) -> Vec<Result<Received, StorageError>> {
    let entries: Vec<InboxEntry<'_>> = batch
        .iter()
        .map(|p| InboxEntry {
            vendor_id: &p.vendor_id,
            event_id: &p.event_id,
            event_type: Some(&p.event_type),
            headers: p.headers.clone(),
            body: &p.body,
        })
        .collect();
    let pairs: Vec<_> = entries
        .iter()
        .zip(batch)
        .map(|(entry, p)| (entry, &p.subject))
        .collect();
    match inbox::receive_batch(db, &pairs).await {
        Ok(answers) => answers.into_iter().map(Ok).collect(),
        // One event's failure (a deadlock, a bad row) must not fail the others: one by one.
        Err(_) if batch.len() > 1 => {
            let mut answers = Vec::with_capacity(batch.len());
            for (entry, subject) in &pairs {
                answers.push(inbox::receive(db, entry, subject).await);
            }
            answers
        }
        Err(err) => vec![Err(err)],
    }
}
