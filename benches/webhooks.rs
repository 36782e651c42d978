//! Webhook intake throughput: verified, durably stored and applied webhooks per second, with p50
//! and p99 latency, on SQLite and PostgreSQL.
//!
//!     cargo bench --bench webhooks                    # both databases (PostgreSQL if reachable)
//!     BENCH_DB=sqlite BENCH_EVENTS=50000 cargo bench --bench webhooks
//!     BENCH_DB=postgres BENCH_COMMITTERS=0 cargo bench --bench webhooks   # no group commit
//!
//! The server is the whole application router (middleware included) on loopback. The load
//! generator runs on its own OS thread with a single-threaded runtime and writes plain HTTP/1.1
//! over `BENCH_CONCURRENCY` keep-alive connections, each sending its next webhook when the last
//! one was answered; every request is signed before the clock starts, so the figures are the
//! server's, not the client's. Every answer must be 200, and afterwards the inbox must hold
//! every event once and every order must be in the state its last event says.

#[path = "common/mod.rs"]
mod common;
use common::{database, env_or};

use std::time::{Duration, Instant};

use anyhow::Context;
use app::domain::{Currency, GlState, Money, VendorId, VendorKind};
use app::server::AppState;
use app::storage::orders::{self, Order, Submission};
use app::storage::vendors::{self, NewVendor};
use app::storage::{now_utc, DatabaseUrl, Db};
use giftrecon::api::ApiState;
use giftrecon::vendors::signature::sign_hex_hmac;
use secrecy::SecretString;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

const SECRET: &str = "whsec_bench_secret";

fn main() -> anyhow::Result<()> {
    // `cargo bench` passes `--bench`; nothing else is expected.
    let events: usize = env_or("BENCH_EVENTS", 20_000);
    let orders: usize = env_or("BENCH_ORDERS", 2_000);
    let concurrency: usize = env_or("BENCH_CONCURRENCY", 64);
    let explicit = std::env::var("BENCH_DB").ok();
    let which = explicit.clone().unwrap_or_else(|| "sqlite,postgres".into());
    println!("webhooks: events={events} orders={orders} concurrency={concurrency}");
    // The server gets the machine's two cores as tokio workers; the load generator has its own
    // thread (see `load`).
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()?;
    for backend in which.split(',') {
        let (url, cleanup) = match runtime.block_on(database(backend)) {
            Ok(found) => found,
            // Both by default: PostgreSQL only when it answers.
            Err(err) if explicit.is_none() && backend == "postgres" => {
                println!("{backend:<9} skipped: {err:#}");
                continue;
            }
            Err(err) => return Err(err),
        };
        let result = runtime.block_on(run(&url, events, orders, concurrency));
        runtime.block_on(cleanup);
        let r = result?;
        println!(
            "{backend:<9} {:>7.0} webhooks/s (p50 {:.1} ms, p99 {:.1} ms, max {:.1} ms) | {events} events in {:.2} s",
            r.per_s, r.p50_ms, r.p99_ms, r.max_ms, r.seconds
        );
    }
    Ok(())
}

struct Figures {
    per_s: f64,
    p50_ms: f64,
    p99_ms: f64,
    max_ms: f64,
    seconds: f64,
}

/// The statuses each order goes through, one round of events each: the last one wins.
const ROUNDS: [(&str, GlState); 5] = [
    ("pending", GlState::Pending),
    ("processing", GlState::Pending),
    ("fulfilled", GlState::Fulfilled),
    ("delivered", GlState::Fulfilled),
    ("refunded", GlState::Refunded),
];

/// One signed webhook as raw HTTP/1.1 request bytes.
fn request(addr: std::net::SocketAddr, i: usize, orders: usize) -> Vec<u8> {
    let order = i % orders;
    let round = (i / orders).min(ROUNDS.len() - 1);
    let (status, _) = ROUNDS[round];
    let at = format!("2026-12-01T10:{:02}:{:02}Z", round, (i / orders) % 60);
    let body = serde_json::json!({
        "event_id": format!("evt-{i}"),
        "type": format!("order.{status}"),
        "created_at": at,
        "order": {
            "vendor_order_id": format!("v-{order}"),
            "idempotency_key": format!("bench-{order}"),
            "status": status,
            "amount": "25.00",
            "currency": "USD",
            "brand_id": "amazon-us",
            "created_at": "2026-12-01T10:00:00Z",
            "updated_at": at,
        }
    })
    .to_string();
    let signature = sign_hex_hmac(SECRET, body.as_bytes());
    let mut bytes = format!(
        "POST /webhooks/bench HTTP/1.1\r\nhost: {addr}\r\ncontent-type: application/json\r\n\
         user-agent: giftrecon-bench\r\nx-signature-256: sha256={signature}\r\n\
         content-length: {}\r\n\r\n",
        body.len()
    )
    .into_bytes();
    bytes.extend_from_slice(body.as_bytes());
    bytes
}

async fn run(
    url: &str,
    events: usize,
    order_count: usize,
    concurrency: usize,
) -> anyhow::Result<Figures> {
    let db = Db::connect_and_migrate(&DatabaseUrl::parse(url)?).await?;
    let vendor = VendorId::parse("bench")?;
    vendors::insert_vendor(
        &db,
        &NewVendor {
            id: vendor.clone(),
            kind: VendorKind::Generic,
            base_url: None,
            webhook_secrets: vec![SecretString::from(SECRET.to_string())],
            api_key: None,
        },
        &app::storage::audit::AuditEvent::new("bench", "vendor_add", "vendor:bench"),
    )
    .await?;
    let ids = add_pending_orders(&db, &vendor, order_count).await?;

    let listener = giftrecon::http::bind("127.0.0.1:0".parse()?).await?;
    let addr = listener.local_addr()?;
    let state = AppState {
        db: db.clone(),
        leptos_options: giftrecon::http::leptos_options(None, addr),
        security: Default::default(),
        poll_default_secs: None,
    };
    let mut api = ApiState::new(db.clone(), Default::default(), Default::default());
    // BENCH_COMMITTERS: batches committed at once (PostgreSQL; 0 = a transaction per webhook).
    if let Ok(committers) = std::env::var("BENCH_COMMITTERS") {
        api.webhooks =
            giftrecon::webhooks::WebhookBatcher::spawn_with(db.clone(), committers.parse()?);
    }
    let (stop_tx, stop_rx) = tokio::sync::oneshot::channel::<()>();
    let server = tokio::spawn(giftrecon::http::serve(
        listener,
        giftrecon::http::router(state, api),
        async {
            let _ = stop_rx.await;
        },
    ));

    let requests: Vec<Vec<u8>> = (0..events).map(|i| request(addr, i, order_count)).collect();
    let load = std::thread::spawn(move || load(addr, requests, concurrency));
    let (elapsed, mut latencies) = tokio::task::spawn_blocking(move || load.join())
        .await?
        .map_err(|_| anyhow::anyhow!("the load generator panicked"))??;

    // Every event stored once, every order where its last event puts it.
    let stored: i64 = app::on_db!(&db, pool => {
        sqlx::query_scalar("SELECT COUNT(*) FROM webhook_inbox").fetch_one(pool).await
    })?;
    anyhow::ensure!(
        stored as usize == events,
        "{stored} of {events} events stored"
    );
    for (n, id) in ids.iter().enumerate().step_by(97) {
        // Order n got events n, n + orders, n + 2 orders, …: its state is the last one's.
        let received = if n < events {
            (events - n - 1) / order_count + 1
        } else {
            0
        };
        let expected = match received {
            0 => GlState::Pending,
            r => ROUNDS[(r - 1).min(ROUNDS.len() - 1)].1,
        };
        let order = orders::get(&db, id).await?.context("a bench order")?;
        anyhow::ensure!(
            order.gl_state == expected,
            "order {n} is {:?}, expected {expected:?}",
            order.gl_state
        );
    }
    let _ = stop_tx.send(());
    let _ = server.await;
    db.close().await;

    latencies.sort();
    let at = |p: f64| latencies[((latencies.len() - 1) as f64 * p) as usize].as_secs_f64() * 1e3;
    Ok(Figures {
        per_s: events as f64 / elapsed.as_secs_f64(),
        p50_ms: at(0.50),
        p99_ms: at(0.99),
        max_ms: at(1.0),
        seconds: elapsed.as_secs_f64(),
    })
}

async fn add_pending_orders(db: &Db, vendor: &VendorId, n: usize) -> anyhow::Result<Vec<String>> {
    let now = now_utc();
    let orders: Vec<Order> = (0..n)
        .map(|i| {
            let (id, _) = orders::new_ids();
            Order {
                id,
                owner: "bench".into(),
                idempotency_key: format!("bench-{i}"),
                request_hash: "h".into(),
                vendor_id: vendor.to_string(),
                vendor_key: format!("bench-{i}"),
                customer_id: "cust-1".into(),
                brand_id: "amazon-us".into(),
                amount: Money::from_minor(2500, Currency::USD),
                submission: Submission::Placed,
                gl_state: GlState::Pending,
                vendor_order_id: None,
                vendor_status: None,
                attention_reason: None,
                source: "api".into(),
                created_at: now,
                updated_at: now,
            }
        })
        .collect();
    for chunk in orders.chunks(200) {
        orders::insert_orders(db, chunk, None, None).await?;
    }
    Ok(orders.into_iter().map(|o| o.id).collect())
}

/// Sends every request over `concurrency` keep-alive connections; the time from the first
/// request to the last answer, and each request's latency.
fn load(
    addr: std::net::SocketAddr,
    requests: Vec<Vec<u8>>,
    concurrency: usize,
) -> anyhow::Result<(Duration, Vec<Duration>)> {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    runtime.block_on(async move {
        let mut connections = Vec::with_capacity(concurrency);
        for _ in 0..concurrency {
            let stream = tokio::net::TcpStream::connect(addr).await?;
            stream.set_nodelay(true)?;
            connections.push(stream);
        }
        let requests = std::sync::Arc::new(requests);
        let next = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
        let started = Instant::now();
        let tasks: Vec<_> = connections
            .into_iter()
            .map(|stream| {
                let (requests, next) = (requests.clone(), next.clone());
                tokio::spawn(send_all(stream, requests, next))
            })
            .collect();
        let mut latencies = Vec::with_capacity(requests.len());
        for task in tasks {
            latencies.extend(task.await??);
        }
        Ok((started.elapsed(), latencies))
    })
}

/// One connection: sends the next request once the previous one is answered.
async fn send_all(
    mut stream: tokio::net::TcpStream,
    requests: std::sync::Arc<Vec<Vec<u8>>>,
    next: std::sync::Arc<std::sync::atomic::AtomicUsize>,
) -> anyhow::Result<Vec<Duration>> {
    let mut latencies = Vec::new();
    let mut buffer = Vec::with_capacity(4096);
    loop {
        let i = next.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let Some(request) = requests.get(i) else {
            return Ok(latencies);
        };
        let sent = Instant::now();
        stream.write_all(request).await?;
        let status = read_response(&mut stream, &mut buffer).await?;
        latencies.push(sent.elapsed());
        anyhow::ensure!(status == 200, "webhook {i} answered {status}");
    }
}

/// Reads one response (headers and a `content-length` body); returns its status code.
async fn read_response(
    stream: &mut tokio::net::TcpStream,
    buffer: &mut Vec<u8>,
) -> anyhow::Result<u16> {
    buffer.clear();
    let mut chunk = [0u8; 4096];
    loop {
        if let Some(end) = buffer.windows(4).position(|w| w == b"\r\n\r\n") {
            let head = std::str::from_utf8(&buffer[..end])?;
            let status: u16 = head
                .split(' ')
                .nth(1)
                .and_then(|s| s.parse().ok())
                .context("no status line")?;
            let length: usize = head
                .lines()
                .find_map(|line| {
                    let (name, value) = line.split_once(':')?;
                    name.eq_ignore_ascii_case("content-length")
                        .then(|| value.trim().parse().ok())?
                })
                .context("no content-length")?;
            let total = end + 4 + length;
            while buffer.len() < total {
                let n = stream.read(&mut chunk).await?;
                anyhow::ensure!(n > 0, "connection closed mid-body");
                buffer.extend_from_slice(&chunk[..n]);
            }
            return Ok(status);
        }
        let n = stream.read(&mut chunk).await?;
        anyhow::ensure!(n > 0, "connection closed before the answer");
        buffer.extend_from_slice(&chunk[..n]);
    }
}
