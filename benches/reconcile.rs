//! A day of N orders end to end, on SQLite and PostgreSQL, with time and peak memory of each
//! step, beside DuckDB and pandas doing the same join on the same files.
//!
//!     cargo bench --bench reconcile                             # N = 100k and 1M, both databases
//!     BENCH_N=100000 BENCH_DB=sqlite cargo bench --bench reconcile
//!
//! For each N, `giftrecon bench-data` writes `orders.csv` and `vendor.csv` (about 2.5%
//! discrepancies; not timed). Then, for each database, the release `giftrecon` binary runs
//! `import orders`, `import vendor` and `reconcile` as separate processes, each timed, with its
//! peak resident memory read from the kernel (wait4). The class counts are checked against the
//! generator's expected.json, so a fast wrong answer cannot pass. `benches/compare.py` times
//! DuckDB (in memory) and pandas on the same files, when python3 has them.

#[path = "common/mod.rs"]
mod common;
use common::database;

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Instant;

use anyhow::{bail, Context};

const BIN: &str = env!("CARGO_BIN_EXE_giftrecon");
const DAY: &str = "2026-12-01";

struct Step {
    seconds: f64,
    peak_mib: f64,
    stdout: String,
}

/// Runs the binary, waiting with wait4 for its resource usage.
fn run(dir: &Path, url: &str, args: &[&str]) -> anyhow::Result<Step> {
    let started = Instant::now();
    let child = Command::new(BIN)
        .args(args)
        .current_dir(dir)
        .env("DATABASE_URL", url)
        .env_remove("GIFTRECON_CONFIG")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .with_context(|| format!("cannot start {BIN}"))?;
    let pid = child.id() as libc::pid_t;
    let (mut out, mut err) = (child.stdout.expect("piped"), child.stderr.expect("piped"));
    let reader = std::thread::spawn(move || {
        let (mut o, mut e) = (String::new(), String::new());
        use std::io::Read;
        let _ = out.read_to_string(&mut o);
        let _ = err.read_to_string(&mut e);
        (o, e)
    });
    let mut status = 0;
    // SAFETY: rusage is plain data the kernel fills in; pid is our own child.
    let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
    let waited = unsafe { libc::wait4(pid, &mut status, 0, &mut usage) };
    let seconds = started.elapsed().as_secs_f64();
    let (stdout, stderr) = reader.join().expect("reader thread");
    if waited != pid || !libc::WIFEXITED(status) || libc::WEXITSTATUS(status) != 0 {
        bail!("giftrecon {args:?} failed: {stderr}");
    }
    Ok(Step {
        seconds,
        peak_mib: usage.ru_maxrss as f64 / 1024.0,
        stdout,
    })
}

fn env_list(name: &str, default: &str) -> Vec<String> {
    std::env::var(name)
        .unwrap_or_else(|_| default.into())
        .split(',')
        .map(|s| s.trim().to_string())
        .filter(|s| !s.is_empty())
        .collect()
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let sizes = env_list("BENCH_N", "100000,1000000");
    let backends = env_list("BENCH_DB", "sqlite,postgres");
    let work = tempfile::tempdir()?;
    println!("giftrecon reconciliation benchmark ({} cores)", num_cpus());
    for n in &sizes {
        let data: PathBuf = work.path().join(format!("n{n}"));
        let gen = run(
            work.path(),
            "sqlite://unused.db",
            &[
                "bench-data",
                "--orders",
                n,
                "--out",
                data.to_str().unwrap(),
                "--date",
                DAY,
            ],
        )?;
        print!("\nN = {n}: {}", gen.stdout);
        let expected: serde_json::Value =
            serde_json::from_str(&std::fs::read_to_string(data.join("expected.json"))?)?;
        for backend in &backends {
            let dir = tempfile::tempdir()?;
            let (url, cleanup) = database(backend).await?;
            let result = one(dir.path(), &url, &data, &expected).await;
            cleanup.await;
            let (orders, vendor, reconcile, queue) = result?;
            let total = orders.seconds + vendor.seconds + reconcile.seconds;
            let peak = orders.peak_mib.max(vendor.peak_mib).max(reconcile.peak_mib);
            println!(
                "  {backend:<8} total {total:>7.2} s | import orders {:>6.2} s ({:>4.0} MiB) | import vendor {:>6.2} s ({:>4.0} MiB) | reconcile {:>6.2} s ({:>4.0} MiB) | peak {peak:.0} MiB",
                orders.seconds, orders.peak_mib, vendor.seconds, vendor.peak_mib,
                reconcile.seconds, reconcile.peak_mib
            );
            println!("  {backend:<8} {queue}");
        }
        compare(&data);
    }
    Ok(())
}

async fn one(
    dir: &Path,
    url: &str,
    data: &Path,
    expected: &serde_json::Value,
) -> anyhow::Result<(Step, Step, Step, String)> {
    run(dir, url, &["vendor", "add", "acme"])?;
    let orders = data.join("orders.csv");
    let vendor = data.join("vendor.csv");
    let o = run(
        dir,
        url,
        &[
            "import",
            "orders",
            orders.to_str().unwrap(),
            "--vendor",
            "acme",
        ],
    )?;
    let v = run(
        dir,
        url,
        &[
            "import",
            "vendor",
            vendor.to_str().unwrap(),
            "--vendor",
            "acme",
        ],
    )?;
    let r = run(dir, url, &["reconcile", "--vendor", "acme", "--date", DAY])?;
    let summary = run(
        dir,
        url,
        &["report", "summary", "--vendor", "acme", "--date", DAY],
    )?;
    let got: serde_json::Value = serde_json::from_str(&summary.stdout)?;
    for class in app::domain::matching::Class::ALL {
        let (g, e) = (
            got["counts"][class.as_str()].as_u64().unwrap_or(0),
            expected["expected"][class.as_str()].as_u64().unwrap_or(0),
        );
        if g != e {
            bail!("{}: reconciled {g}, expected {e}", class.as_str());
        }
    }
    let queue = queue_pages(url).await?;
    Ok((o, v, r, queue))
}

/// What a finance user waits for in the queue after the run: the first and the last page of
/// the open items, the largest first, and the overview's open items by class.
async fn queue_pages(url: &str) -> anyhow::Result<String> {
    use app::storage::reconciliation::{list, DiscrepancyState, Filter, Sort};
    let db = app::storage::Db::connect(&app::storage::DatabaseUrl::parse(url)?).await?;
    let day = chrono::NaiveDate::parse_from_str(DAY, "%Y-%m-%d")?;
    let page = |offset: i64, sort: Sort| Filter {
        state: Some(DiscrepancyState::Open),
        sort,
        limit: Some(51),
        offset: Some(offset),
        ..Default::default()
    };
    let timed = |started: Instant| started.elapsed().as_secs_f64() * 1000.0;
    let t = Instant::now();
    let first = list(&db, &page(0, Sort::Day)).await?;
    let first_ms = timed(t);
    let open: i64 = app::on_db!(&db, pool => {
        sqlx::query_scalar("SELECT COUNT(*) FROM discrepancies WHERE state = 'open'")
            .fetch_one(pool)
            .await
    })?;
    let t = Instant::now();
    let last = list(&db, &page((open - 50).max(0), Sort::Day)).await?;
    let last_ms = timed(t);
    let t = Instant::now();
    list(&db, &page(0, Sort::Amount)).await?;
    let amount_ms = timed(t);
    let t = Instant::now();
    app::storage::queue::open_by_class(&db, Some("acme"), Some(day)).await?;
    let classes_ms = timed(t);
    db.close().await;
    if first.is_empty() || last.is_empty() {
        bail!("the queue is empty after the run");
    }
    Ok(format!(
        "queue of {open} open: first page {first_ms:.1} ms, last page {last_ms:.1} ms, largest first {amount_ms:.1} ms, open by class {classes_ms:.1} ms"
    ))
}

fn compare(data: &Path) {
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/benches/compare.py");
    let out = Command::new("python3")
        .arg(script)
        .arg(data)
        .stderr(Stdio::inherit())
        .output();
    match out {
        Ok(out) if out.status.success() => {
            let json: serde_json::Value =
                serde_json::from_slice(&out.stdout).unwrap_or(serde_json::Value::Null);
            for engine in ["duckdb", "pandas"] {
                match json[engine]["seconds"].as_f64() {
                    Some(s) => println!("  {engine:<8} total {s:>7.2} s (join in memory, same files)"),
                    None => println!("  {engine:<8} skipped: {}", json[engine]["skipped"]),
                }
            }
        }
        _ => println!("  duckdb/pandas skipped: python3 benches/compare.py did not run (pip install duckdb pandas)"),
    }
}

fn num_cpus() -> usize {
    std::thread::available_parallelism().map_or(1, |n| n.get())
}
