//! `giftrecon demo`: the dashboard with a vendor simulator and a few days of realistic data,
//! every discrepancy class present, and a user for each role — to look around in a minute.
//!
//! The demo keeps its own SQLite file (`giftrecon-demo.db` in the working folder, unless
//! `--database` names another), so its well-known passwords never reach a real installation.
//! Seeding happens once: a second start serves what is there.

use std::net::SocketAddr;
use std::path::PathBuf;

use anyhow::Context;
use app::domain::{Role, Username, VendorId, VendorKind};
use app::server::password;
use app::storage::audit::AuditEvent;
use app::storage::vendors::{self, BaseUrl, NewVendor};
use app::storage::DatabaseUrl;
use app::storage::{brands, users, Db};
use chrono::{Duration, NaiveDate, Utc};
use secrecy::SecretString;

use crate::config::Config;
use crate::sim::{self, SimConfig};

/// The demo's vendor, served by the simulator.
pub const VENDOR: &str = "demo-vendor";
/// Every demo user's password (the demo is for looking around, never for real data).
pub const PASSWORD: &str = "giftrecon-demo";
const WEBHOOK_SECRET: &str = "demo-webhook-secret";
/// Orders per demo day: enough for every class to show up, small enough to seed in seconds.
const ORDERS_PER_DAY: u64 = 1_000;

/// One demo login per role.
pub const USERS: [(&str, Role); 4] = [
    ("demo-preparer", Role::FinancePreparer),
    ("demo-approver", Role::FinanceApprover),
    ("demo-support", Role::Support),
    ("demo-admin", Role::Admin),
];

#[derive(Debug, clap::Args)]
pub struct DemoArgs {
    /// Address for the dashboard [default: 127.0.0.1:3000].
    #[arg(long, env = "GIFTRECON_ADDR", value_name = "HOST:PORT")]
    pub addr: Option<SocketAddr>,
    /// The demo's database [default: sqlite://giftrecon-demo.db]; never your real one.
    #[arg(long = "database", value_name = "URL")]
    pub database: Option<String>,
    /// How many days of data, ending yesterday (UTC).
    #[arg(long, default_value_t = 3, value_parser = clap::value_parser!(u16).range(1..=30))]
    pub days: u16,
}

/// Seeds (once) and serves the demo until Ctrl-C.
pub async fn run(mut config: Config, args: DemoArgs) -> anyhow::Result<()> {
    config.database = DatabaseUrl::parse(
        args.database
            .as_deref()
            .unwrap_or("sqlite://giftrecon-demo.db"),
    )
    .context("--database")?;
    if let Some(addr) = args.addr {
        config.addr = addr;
    }
    // The simulator sends its webhooks to the dashboard's own webhook route.
    let sim = sim::spawn(
        SimConfig {
            fulfil_delay: std::time::Duration::from_millis(500),
            ..SimConfig::default()
        }
        .with_webhook(
            format!("http://{}/webhooks/{VENDOR}", config.addr),
            WEBHOOK_SECRET,
        ),
    )
    .await
    .context("cannot start the vendor simulator")?;
    let db = crate::commands::open(&config).await?;
    let seeded = seed(&db, &config, &sim.base_url(), args.days).await;
    db.close().await;
    seeded?;
    config.poller.enabled = true;
    println!(
        "giftrecon demo: vendor {VENDOR} is a simulator at {}",
        sim.base_url()
    );
    println!(
        "Sign in at http://{} as any of (password {PASSWORD:?}):",
        config.addr
    );
    for (name, role) in USERS {
        println!("  {name:<16} {}", role.label());
    }
    let served = crate::commands::serve(config).await;
    let _ = sim.shutdown().await;
    served
}

/// Creates the users, the vendor and `days` reconciled days, unless the vendor exists already
/// (then points it at this run's simulator).
pub async fn seed(db: &Db, config: &Config, sim_url: &str, days: u16) -> anyhow::Result<()> {
    let vendor_id = VendorId::parse(VENDOR).expect("a valid vendor id");
    let base_url = BaseUrl::parse(sim_url).context("simulator address")?;
    let audit = |action: &str, subject: String| {
        AuditEvent::new("demo", action, subject).after(serde_json::json!({ "demo": true }))
    };
    if vendors::get_vendor(db, &vendor_id).await.is_ok() {
        // The simulator listens on a new port each start.
        vendors::update_vendor(
            db,
            &vendor_id,
            Some(&base_url),
            None,
            &audit("vendor_update", format!("vendor:{VENDOR}")),
        )
        .await?;
        return Ok(());
    }
    let hash = password::hash(PASSWORD).context("password")?;
    for (name, role) in USERS {
        let username = Username::parse(name).expect("a valid user name");
        users::insert_user(
            db,
            &username,
            role,
            &hash,
            &audit("user_add", format!("user:{name}")),
        )
        .await?;
    }
    vendors::insert_vendor(
        db,
        &NewVendor {
            id: vendor_id.clone(),
            kind: VendorKind::Generic,
            base_url: Some(base_url),
            webhook_secrets: vec![SecretString::from(WEBHOOK_SECRET)],
            api_key: None,
        },
        &audit("vendor_add", format!("vendor:{VENDOR}")),
    )
    .await?;
    for brand in crate::bench_data::BRANDS {
        brands::add(db, &vendor_id, brand, None).await?;
    }
    let folder = tempfile::tempdir().context("cannot make a scratch folder")?;
    let today = Utc::now().date_naive();
    let mut reconciled: Vec<NaiveDate> = Vec::new();
    for back in (1..=i64::from(days)).rev() {
        let day = today - Duration::days(back);
        let dir: PathBuf = folder.path().join(day.to_string());
        let prefix = format!("{}-", day.format("%m%d"));
        crate::bench_data::generate_named(ORDERS_PER_DAY, &dir, back as u64, day, &prefix)?;
        crate::import::import_orders(
            db,
            &dir.join("orders.csv"),
            "orders.csv",
            VENDOR,
            "demo",
            "demo",
        )
        .await?;
        crate::vendor_import::import_vendor_file(
            db,
            VENDOR,
            &dir.join("vendor.csv"),
            "vendor.csv",
            crate::vendor_import::FileFormat::Csv,
            None,
            "demo",
        )
        .await
        .map_err(|e| anyhow::anyhow!("{e}"))?;
        reconciled.push(day);
    }
    crate::reconcile::reconcile_days(db, VENDOR, &reconciled, &config.reconciliation, "demo")
        .await?;
    Ok(())
}
