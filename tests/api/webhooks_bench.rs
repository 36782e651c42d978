//! Webhook throughput: verified, durably stored (and applied) webhooks per second, with p50/p99
//! latency, from a load generator on loopback. Not a timed test (ignored by default); run with
//!
//! ```sh
//! cargo test --release --test api webhook_throughput -- --ignored --nocapture
//! ```

use std::time::{Duration, Instant};

use futures::StreamExt;
use giftrecon::vendors::signature::sign_hex_hmac;

use crate::helpers::{TestApp, TestDb};
use crate::webhooks::{add_pending_orders, add_vendor, event, SECRET};

const ORDERS: usize = 2_000;
const EVENTS: usize = 20_000;
const CONCURRENCY: usize = 64;

async fn webhook_throughput(db: TestDb, backend: &str) {
    let app = TestApp::spawn(db).await;
    add_vendor(&app.db, "acme", None, &[SECRET]).await;
    let keys: Vec<String> = (0..ORDERS).map(|i| format!("bench-{i}")).collect();
    add_pending_orders(&app.db, "acme", &keys).await;
    let statuses = [
        "pending",
        "processing",
        "fulfilled",
        "completed",
        "delivered",
    ];
    let requests: Vec<(String, String)> = (0..EVENTS)
        .map(|i| {
            let order = i % ORDERS;
            let status = statuses[(i / ORDERS) % statuses.len()];
            let body = event(
                &format!("evt-{i}"),
                &keys[order],
                &format!("v-{order}"),
                status,
                "2026-12-01T10:00:01Z",
            );
            let signature = sign_hex_hmac(SECRET, body.as_bytes());
            (body, signature)
        })
        .collect();
    let client = reqwest::Client::builder()
        .pool_max_idle_per_host(CONCURRENCY)
        .build()
        .unwrap();
    let url = app.url("/webhooks/acme");
    let started = Instant::now();
    let mut latencies: Vec<Duration> = futures::stream::iter(requests)
        .map(|(body, signature)| {
            let client = client.clone();
            let url = url.clone();
            async move {
                let sent = Instant::now();
                let response = client
                    .post(url)
                    .header("x-signature-256", signature)
                    .body(body)
                    .send()
                    .await
                    .unwrap();
                assert_eq!(response.status(), 200);
                sent.elapsed()
            }
        })
        .buffer_unordered(CONCURRENCY)
        .collect()
        .await;
    let elapsed = started.elapsed();
    latencies.sort();
    let at = |q: f64| latencies[((latencies.len() as f64 * q) as usize).min(latencies.len() - 1)];
    assert_eq!(app.count("webhook_inbox").await, EVENTS as i64);
    println!(
        "{backend}: {EVENTS} webhooks in {:.2} s = {:.0}/s; p50 {:.1} ms, p99 {:.1} ms (concurrency {CONCURRENCY})",
        elapsed.as_secs_f64(),
        EVENTS as f64 / elapsed.as_secs_f64(),
        at(0.50).as_secs_f64() * 1e3,
        at(0.99).as_secs_f64() * 1e3,
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "benchmark: run with --ignored --nocapture, in release"]
async fn webhook_throughput_sqlite() {
    webhook_throughput(TestDb::sqlite().await, "sqlite").await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "benchmark: run with --ignored --nocapture, in release"]
async fn webhook_throughput_postgres() {
    webhook_throughput(TestDb::postgres().await, "postgres").await
}
