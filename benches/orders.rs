//! Order intake and end-to-end placement throughput, on SQLite and PostgreSQL.
//!
//!     cargo bench --bench orders                      # both databases
//!     BENCH_DB=sqlite BENCH_ORDERS=20000 cargo bench --bench orders
//!
//! Intake: `POST /api/v1/orders` from `BENCH_CONCURRENCY` concurrent clients on loopback, workers
//! off (each accepted order is committed with its key and outbox job). Placement: then
//! `BENCH_WORKERS` outbox workers place them all with the vendor simulator (zero latency) until
//! the simulator holds every order once. Prints one line per database.

#[path = "common/mod.rs"]
mod common;
use common::{database, env_or};

use std::sync::Arc;
use std::time::{Duration, Instant};

use app::domain::{VendorId, VendorKind};
use app::server::AppState;
use app::storage::audit::AuditEvent;
use app::storage::vendors::{self, BaseUrl, NewVendor};
use app::storage::{brands, tokens, DatabaseUrl, Db};
use giftrecon::api::ApiState;
use giftrecon::config::OutboxSettings;
use giftrecon::outbox::OutboxWorker;
use giftrecon::sim::{self, SimConfig};
use tokio::sync::watch;

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    // `cargo bench` passes `--bench`; nothing else is expected.
    let orders: usize = env_or("BENCH_ORDERS", 5_000);
    let concurrency: usize = env_or("BENCH_CONCURRENCY", 32);
    let workers: usize = env_or("BENCH_WORKERS", 4);
    let which = std::env::var("BENCH_DB").unwrap_or_else(|_| "sqlite,postgres".into());
    println!("orders={orders} concurrency={concurrency} workers={workers}");
    for backend in which.split(',') {
        let (url, cleanup) = database(backend).await?;
        let result = run(&url, orders, concurrency, workers).await;
        cleanup.await;
        let r = result?;
        println!(
            "{backend:<9} intake {:>7.0} orders/s (p50 {:.1} ms, p99 {:.1} ms) | placement {:>7.0} orders/s | vendor orders {} for {} keys",
            r.intake_per_s, r.p50_ms, r.p99_ms, r.placement_per_s, r.vendor_orders, r.vendor_keys
        );
    }
    Ok(())
}

struct Figures {
    intake_per_s: f64,
    p50_ms: f64,
    p99_ms: f64,
    placement_per_s: f64,
    vendor_orders: u64,
    vendor_keys: u64,
}

async fn run(
    url: &str,
    orders: usize,
    concurrency: usize,
    workers: usize,
) -> anyhow::Result<Figures> {
    let db = Db::connect_and_migrate(&DatabaseUrl::parse(url)?).await?;
    let simulator = sim::spawn(SimConfig {
        fulfil_delay: Duration::from_secs(3600),
        ..SimConfig::default()
    })
    .await?;
    let vendor = VendorId::parse("bench")?;
    vendors::insert_vendor(
        &db,
        &NewVendor {
            id: vendor.clone(),
            kind: VendorKind::Generic,
            base_url: Some(BaseUrl::parse(&simulator.base_url())?),
            webhook_secrets: vec![],
            api_key: None,
        },
        &AuditEvent::new("bench", "vendor_add", "vendor:bench"),
    )
    .await?;
    brands::add(&db, &vendor, "gift-25", None).await?;
    let token = tokens::create(
        &db,
        "bench",
        &AuditEvent::new("bench", "token_create", "token:bench"),
    )
    .await?;

    let listener = giftrecon::http::bind("127.0.0.1:0".parse()?).await?;
    let addr = listener.local_addr()?;
    let state = AppState {
        db: db.clone(),
        leptos_options: giftrecon::http::leptos_options(None, addr),
        security: Default::default(),
        poll_default_secs: None,
    };
    let api = ApiState::new(db.clone(), Default::default(), Default::default());
    let (stop_tx, stop_rx) = tokio::sync::oneshot::channel::<()>();
    let server = tokio::spawn(giftrecon::http::serve(
        listener,
        giftrecon::http::router(state, api),
        async {
            let _ = stop_rx.await;
        },
    ));

    // Intake.
    let client = reqwest::Client::new();
    let next = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let started = Instant::now();
    let clients = (0..concurrency).map(|_| {
        let (client, next, token) = (client.clone(), next.clone(), token.clone());
        let endpoint = format!("http://{addr}/api/v1/orders");
        tokio::spawn(async move {
            let mut latencies = Vec::new();
            loop {
                let i = next.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                if i >= orders {
                    return Ok::<_, anyhow::Error>(latencies);
                }
                let body = format!(
                    r#"{{"idempotency_key":"bench-{i}","customer_id":"c-{i}","brand_id":"gift-25","amount":"25.00","currency":"USD","vendor":"bench"}}"#
                );
                let sent = Instant::now();
                let response = client.post(&endpoint).bearer_auth(&token).body(body).send().await?;
                anyhow::ensure!(response.status() == 201, "intake answered {}", response.status());
                latencies.push(sent.elapsed());
            }
        })
    });
    let mut latencies = Vec::with_capacity(orders);
    for handle in clients.collect::<Vec<_>>() {
        latencies.extend(handle.await??);
    }
    let intake = started.elapsed();
    latencies.sort();
    let percentile =
        |p: f64| latencies[((latencies.len() - 1) as f64 * p) as usize].as_secs_f64() * 1e3;

    // Placement.
    let settings = OutboxSettings {
        workers,
        sync_delay_ms: 3_600_000,
        idle_poll_ms: 50,
        ..OutboxSettings::default()
    };
    let (stop_workers, stopped) = watch::channel(false);
    let started = Instant::now();
    let handles: Vec<_> = (0..workers)
        .map(|i| {
            let worker = Arc::new(OutboxWorker::new(
                db.clone(),
                settings.clone(),
                format!("bench-{i}"),
                Default::default(),
            ));
            tokio::spawn(worker.run(stopped.clone()))
        })
        .collect();
    loop {
        let placed: i64 = app::on_db!(&db, pool => {
            sqlx::query_scalar("SELECT COUNT(*) FROM orders WHERE submission = 'placed'").fetch_one(pool).await
        })?;
        if placed as usize >= orders {
            break;
        }
        anyhow::ensure!(
            started.elapsed() < Duration::from_secs(600),
            "placement did not finish"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let placement = started.elapsed();
    let _ = stop_workers.send(true);
    for h in handles {
        let _ = h.await;
    }
    let stats = simulator.stats();
    let _ = stop_tx.send(());
    let _ = server.await;
    db.close().await;
    Ok(Figures {
        intake_per_s: orders as f64 / intake.as_secs_f64(),
        p50_ms: percentile(0.50),
        p99_ms: percentile(0.99),
        placement_per_s: orders as f64 / placement.as_secs_f64(),
        vendor_orders: stats.orders,
        vendor_keys: stats.keys,
    })
}
