//! What each CLI command does.

use std::io::{BufRead, IsTerminal};

use anyhow::{bail, Context};
use app::domain::{PollInterval, Role, Username, VendorId, VendorKind};
use app::server::{password, AppState};
use app::storage::audit::{self, AuditEvent, Verification};
use app::storage::vendors::{BaseUrl, NewVendor};
use app::storage::{brands, tokens, users, vendor_admin, vendors, Db};
use secrecy::SecretString;

use crate::cli::{
    AuditCommand, BrandCommand, Cli, Command, DbCommand, ImportCommand, TokenCommand, UserCommand,
    VendorCommand,
};
use crate::config::Config;
use std::sync::Arc;

use tokio::sync::{watch, Notify};

use crate::api::ApiState;
use crate::{http, outbox, poller, site, telemetry};

pub async fn run(cli: Cli) -> anyhow::Result<()> {
    let mut config = Config::load(&cli.global)?;
    let quiet = !matches!(
        cli.command,
        Command::Serve(_) | Command::VendorSim(_) | Command::Demo(_)
    );
    // One-shot commands keep stderr for warnings and errors; the server logs at info.
    let level = if quiet && std::env::var_os("RUST_LOG").is_none() {
        "warn".to_string()
    } else {
        config.log_level.clone()
    };
    telemetry::init_logging(config.log_format, &level);

    match cli.command {
        Command::Serve(args) => {
            if let Some(addr) = args.addr {
                config.addr = addr;
            }
            if args.secure_cookies {
                config.security.secure_cookies = true;
            }
            serve(config).await
        }
        Command::Migrate => {
            let db = open(&config).await?;
            println!("{} is up to date", config.database);
            db.close().await;
            Ok(())
        }
        Command::Vendor(command) => {
            with_db(&config, |db| async move { vendor(&db, command).await }).await
        }
        Command::VendorSim(args) => crate::sim::run(args).await,
        Command::Demo(args) => crate::demo::run(config, args).await,
        Command::BenchData {
            orders,
            out,
            seed,
            date,
        } => {
            let generated = crate::bench_data::generate(orders, &out, seed, date)?;
            println!(
                "wrote {} orders and {} vendor records to {} (expected classes in expected.json)",
                generated.orders,
                generated.vendor_records,
                out.display()
            );
            Ok(())
        }
        Command::Poll(args) => {
            let settings = config.poller.clone();
            with_db(&config, |db| async move { poll(&db, settings, args).await }).await
        }
        Command::User(command) => {
            with_db(&config, |db| async move { user(&db, command).await }).await
        }
        Command::Token(command) => {
            with_db(&config, |db| async move { token(&db, command).await }).await
        }
        Command::Brand(command) => {
            with_db(&config, |db| async move { brand(&db, command).await }).await
        }
        Command::Db(DbCommand::GrantAppRole { name }) => {
            with_db(&config, |db| async move {
                let tables = app::storage::app_role::grant_app_role(&db, &name).await?;
                println!(
                    "role {name} may now run giftrecon: read and write on {tables} tables, \
                     but only SELECT and INSERT on audit_log"
                );
                Ok(())
            })
            .await
        }
        Command::Close(command) => {
            with_db(&config, |db| async move {
                crate::close::run(&db, command, &cli_actor()).await
            })
            .await
        }
        Command::Audit(AuditCommand::Verify) => {
            with_db(&config, |db| async move {
                match audit::verify(&db).await? {
                    Verification::Intact { rows } => {
                        println!("audit trail intact: {rows} row(s) verified");
                        Ok(())
                    }
                    Verification::Broken { id, reason } => {
                        bail!("audit trail broken at row {id}: it {reason}")
                    }
                }
            })
            .await
        }
        Command::Import(ImportCommand::Vendor {
            file,
            vendor,
            format,
            columns,
        }) => {
            with_db(&config, |db| async move {
                use crate::vendor_import::{self as vi, FileFormat};
                let format = match format {
                    Some(f) => {
                        FileFormat::parse(&f).map_err(|e| anyhow::anyhow!("--format: {e}"))?
                    }
                    None => FileFormat::of_path(&file),
                };
                let columns = vi::parse_columns(&columns).map_err(anyhow::Error::msg)?;
                let name = file.display().to_string();
                let summary = vi::import_vendor_file(
                    &db,
                    &vendor,
                    &file,
                    &name,
                    format,
                    columns,
                    &cli_actor(),
                )
                .await?;
                println!("{summary}");
                Ok(())
            })
            .await
        }
        Command::Reconcile(args) => {
            let settings = config.reconciliation.clone();
            with_db(&config, |db| async move {
                reconcile(&db, &settings, args).await
            })
            .await
        }
        Command::Report(command) => {
            with_db(&config, |db| async move { report(&db, command).await }).await
        }
        Command::Discrepancy(command) => {
            with_db(&config, |db| async move { discrepancy(&db, command).await }).await
        }
        Command::Import(ImportCommand::Orders {
            file,
            vendor,
            owner,
        }) => {
            with_db(&config, |db| async move {
                let name = file.display().to_string();
                let summary =
                    crate::import::import_orders(&db, &file, &name, &vendor, &owner, &cli_actor())
                        .await?;
                println!("{summary}");
                Ok(())
            })
            .await
        }
    }
}

/// The actor of CLI commands in the audit trail: `cli:<operating system user>`.
fn cli_actor() -> String {
    let user = std::env::var("USER")
        .or_else(|_| std::env::var("LOGNAME"))
        .unwrap_or_else(|_| "unknown".into());
    format!("cli:{user}")
}

/// What a CLI command did, as the audit trail records it (appended in the command's own
/// transaction: no change without its row, no row without its change).
fn cli_event(action: &str, subject: String, after: serde_json::Value) -> AuditEvent {
    AuditEvent::new(cli_actor(), action, subject).after(after)
}

/// Runs a one-shot command against the database, closing it cleanly afterwards.
async fn with_db<F, Fut>(config: &Config, command: F) -> anyhow::Result<()>
where
    F: FnOnce(Db) -> Fut,
    Fut: std::future::Future<Output = anyhow::Result<()>>,
{
    let db = open(config).await?;
    let result = command(db.clone()).await;
    db.close().await;
    result
}

/// Connects to the configured database and brings its schema up to date.
pub async fn open(config: &Config) -> anyhow::Result<Db> {
    Ok(Db::connect_and_migrate(&config.database).await?)
}

pub async fn serve(config: Config) -> anyhow::Result<()> {
    let db = open(&config).await?;
    let site_root = site::locate(config.site_root.as_deref());
    if site_root.is_none() {
        tracing::warn!(
            "browser assets not found (looked beside the executable and in target/site): pages \
             render but are not interactive. Build them with `cargo leptos build --release` or set \
             LEPTOS_SITE_ROOT"
        );
    }
    let listener = http::bind(config.addr).await?;
    let addr = listener
        .local_addr()
        .context("cannot read the listening address")?;
    let state = AppState {
        db: db.clone(),
        leptos_options: http::leptos_options(site_root.as_deref(), addr),
        security: config.security.policy(),
        poll_default_secs: config
            .poller
            .enabled
            .then_some(config.poller.interval_secs.max(1)),
    };
    let outbox_wake = Arc::new(Notify::new());
    let api = ApiState::new(db.clone(), config.orders.clone(), outbox_wake.clone());
    telemetry::prometheus();
    let (stop_workers, workers_stopped) = watch::channel(false);
    let mut workers = outbox::spawn_workers(&db, &config.outbox, &outbox_wake, &workers_stopped);
    let outbox_workers = workers.len();
    workers.push(tokio::spawn(purge_idempotency_records(
        db.clone(),
        workers_stopped.clone(),
    )));
    workers.push(tokio::spawn(purge_stale_sessions(
        db.clone(),
        config.security.policy(),
        workers_stopped.clone(),
    )));
    if config.poller.enabled {
        let poller = Arc::new(poller::Poller::new(
            db.clone(),
            config.poller.clone(),
            poller::replica_name(),
        ));
        tracing::info!(holder = poller.holder(), "poller started");
        workers.push(tokio::spawn(poller.run(workers_stopped.clone())));
    }
    tracing::info!(%addr, database = %config.database, outbox_workers, poller = config.poller.enabled, "giftrecon is serving");
    println!(
        "giftrecon is running at http://{addr} ({})",
        config.database
    );
    let served = http::serve(listener, http::router(state, api), shutdown_signal()).await;
    let _ = stop_workers.send(true);
    for worker in workers {
        let _ = worker.await;
    }
    db.close().await;
    served
}

/// Forgets idempotency records past retention, hourly (their orders stay).
async fn purge_idempotency_records(db: Db, mut stop: watch::Receiver<bool>) {
    loop {
        match app::storage::idempotency::purge_expired(&db, chrono::Utc::now()).await {
            Ok(0) => {}
            Ok(n) => tracing::info!(purged = n, "expired idempotency records removed"),
            Err(err) => tracing::warn!(error = %err, "could not purge idempotency records"),
        }
        tokio::select! {
            _ = stop.changed() => return,
            _ = tokio::time::sleep(std::time::Duration::from_secs(3600)) => {},
        }
    }
}

/// Forgets dead sessions and old failed sign-ins, hourly (the audit trail keeps the history).
async fn purge_stale_sessions(
    db: Db,
    policy: app::server::auth::SecurityPolicy,
    mut stop: watch::Receiver<bool>,
) {
    let window = chrono::Duration::from_std(policy.failure_window).unwrap_or(chrono::Duration::MAX);
    loop {
        let now = app::storage::now_utc();
        match app::storage::sessions::purge_stale(&db, now, policy.idle(), window).await {
            Ok((0, 0)) => {}
            Ok((sessions, failures)) => {
                tracing::info!(
                    sessions,
                    failures,
                    "stale sessions and sign-in failures removed"
                )
            }
            Err(err) => tracing::warn!(error = %err, "could not purge stale sessions"),
        }
        tokio::select! {
            _ = stop.changed() => return,
            _ = tokio::time::sleep(std::time::Duration::from_secs(3600)) => {},
        }
    }
}

pub(crate) async fn shutdown_signal() {
    let interrupt = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut signal) => {
                signal.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let terminate = std::future::pending::<()>();
    tokio::select! {
        _ = interrupt => {},
        _ = terminate => {},
    }
    tracing::info!("shutting down");
}

async fn vendor(db: &Db, command: VendorCommand) -> anyhow::Result<()> {
    match command {
        VendorCommand::Add {
            id,
            kind,
            base_url,
            webhook_secrets,
            api_key,
        } => {
            let id = VendorId::parse(&id).context("vendor id")?;
            let kind = VendorKind::parse(&kind).context("--kind")?;
            let (base_url, webhook_secrets) = vendor_options(base_url, webhook_secrets)?;
            let secrets = webhook_secrets.len();
            let event = cli_event(
                "vendor_add",
                format!("vendor:{id}"),
                // Never the secrets themselves: how many, and whether there is an API key.
                serde_json::json!({
                    "id": id.as_str(),
                    "kind": kind.as_str(),
                    "base_url": base_url.as_ref().map(BaseUrl::as_str),
                    "webhook_secrets": secrets,
                    "api_key": api_key.is_some(),
                }),
            );
            vendors::insert_vendor(
                db,
                &NewVendor {
                    id: id.clone(),
                    kind,
                    base_url: base_url.clone(),
                    webhook_secrets,
                    api_key: api_key.map(SecretString::from),
                },
                &event,
            )
            .await?;
            println!("added vendor {id} ({kind}, {secrets} webhook secret(s))");
            Ok(())
        }
        VendorCommand::Set {
            id,
            base_url,
            webhook_secrets,
            file_columns,
            clear_file_columns,
            poll_interval,
            clearing_account,
            payable_account,
            suspense_account,
        } => {
            let id = VendorId::parse(&id).context("vendor id")?;
            let (base_url, secrets) = vendor_options(base_url, webhook_secrets)?;
            let columns =
                crate::vendor_import::parse_columns(&file_columns).map_err(anyhow::Error::msg)?;
            let accounts = crate::close::AccountOptions::parse(
                clearing_account,
                payable_account,
                suspense_account,
            )?;
            let change_columns = columns.is_some() || clear_file_columns;
            let poll_interval = poll_interval
                .map(|text| match text.trim() {
                    "default" => Ok(None),
                    _ => PollInterval::parse(&text).map(Some),
                })
                .transpose()
                .context("--poll-interval")?;
            if base_url.is_none()
                && secrets.is_empty()
                && accounts.is_empty()
                && !change_columns
                && poll_interval.is_none()
            {
                bail!(
                    "nothing to change: give --base-url, --webhook-secret, --file-column, --poll-interval or an --*-account"
                );
            }
            if let Some(interval) = poll_interval {
                let change =
                    vendor_admin::set_poll_interval(db, &id, interval, &cli_actor()).await?;
                let now = match interval {
                    Some(every) => format!("every {every}"),
                    None => "on the server's schedule".into(),
                };
                match change {
                    vendor_admin::Change::Made => println!("vendor {id} is now polled {now}"),
                    vendor_admin::Change::Unchanged => {
                        println!("vendor {id} was already polled {now}: nothing changed")
                    }
                }
            }
            if change_columns {
                let json = columns
                    .map(|c| serde_json::to_string(&c))
                    .transpose()
                    .context("file columns")?;
                let event = AuditEvent::new(
                    cli_actor(),
                    "vendor_file_columns_set",
                    format!("vendor:{id}"),
                )
                .after(serde_json::json!({ "file_columns": json }));
                vendors::set_file_columns(db, &id, json.as_deref(), &event).await?;
                println!("updated the file column names of vendor {id}");
            }
            if base_url.is_some() || !secrets.is_empty() {
                let replace = (!secrets.is_empty()).then_some(secrets.as_slice());
                let before = vendors::get_vendor(db, &id).await?;
                // Never the secrets: how many replace the active ones.
                let mut event = cli_event(
                    "vendor_set",
                    format!("vendor:{id}"),
                    serde_json::json!({
                        "base_url": base_url.as_ref().map_or(before.base_url.as_deref(), |u| Some(u.as_str())),
                        "webhook_secrets": replace.map_or(before.active_secrets, |s| s.len() as i64),
                    }),
                );
                event.before = Some(serde_json::json!({
                    "base_url": before.base_url,
                    "webhook_secrets": before.active_secrets,
                }));
                vendors::update_vendor(db, &id, base_url.as_ref(), replace, &event).await?;
                match replace {
                    Some(s) => {
                        println!("updated vendor {id}: {} active webhook secret(s)", s.len())
                    }
                    None => println!("updated vendor {id}"),
                }
            }
            if !accounts.is_empty() {
                crate::close::set_accounts(db, &id, accounts, &cli_actor()).await?;
            }
            Ok(())
        }
        VendorCommand::RotateSecret {
            id,
            secret,
            grace_hours,
        } => {
            let id = VendorId::parse(&id).context("vendor id")?;
            if secret.trim().is_empty() {
                bail!("--secret: a webhook secret cannot be empty");
            }
            let grace = chrono::Duration::hours(i64::from(grace_hours));
            let event = cli_event(
                "vendor_rotate_secret",
                format!("vendor:{id}"),
                serde_json::json!({ "grace_hours": grace_hours }),
            );
            let retires =
                vendors::rotate_webhook_secret(db, &id, &SecretString::from(secret), grace, &event)
                    .await?;
            match retires {
                vendors::Rotation::Added {
                    oldest_retires_at: Some(at),
                } => println!(
                    "added a webhook secret to vendor {id}; the oldest one stops verifying at {}",
                    at.format("%Y-%m-%d %H:%M:%S UTC")
                ),
                vendors::Rotation::Added {
                    oldest_retires_at: None,
                } => println!("added a webhook secret to vendor {id}"),
                vendors::Rotation::AlreadyActive => {
                    println!("vendor {id} already has that webhook secret active: nothing changed")
                }
            }
            Ok(())
        }
        VendorCommand::List => {
            let list = vendors::list_vendors(db).await?;
            if list.is_empty() {
                println!("no vendors yet: add one with `giftrecon vendor add ID`");
                return Ok(());
            }
            println!(
                "{:<24} {:<12} {:<8} {:<12} BASE URL",
                "ID", "KIND", "SECRETS", "POLLED EVERY"
            );
            for v in list {
                let every = v
                    .poll_interval
                    .map_or_else(|| "default".to_string(), |i| i.to_string());
                println!(
                    "{:<24} {:<12} {:<8} {:<12} {}",
                    v.id.as_str(),
                    v.kind.as_str(),
                    v.active_secrets,
                    every,
                    v.base_url.as_deref().unwrap_or("-")
                );
            }
            Ok(())
        }
    }
}

/// Checks the `--base-url` and `--webhook-secret` options shared by `vendor add` and `vendor set`.
fn vendor_options(
    base_url: Option<String>,
    webhook_secrets: Vec<String>,
) -> anyhow::Result<(Option<BaseUrl>, Vec<SecretString>)> {
    let base_url = base_url
        .as_deref()
        .map(BaseUrl::parse)
        .transpose()
        .context("--base-url")?;
    if webhook_secrets.iter().any(|s| s.trim().is_empty()) {
        bail!("--webhook-secret: a webhook secret cannot be empty");
    }
    Ok((
        base_url,
        webhook_secrets
            .into_iter()
            .map(SecretString::from)
            .collect(),
    ))
}

async fn user(db: &Db, command: UserCommand) -> anyhow::Result<()> {
    match command {
        UserCommand::Add {
            name,
            role,
            password_stdin,
        } => {
            let username = Username::parse(&name).context("user name")?;
            let role = Role::parse(&role).context("--role")?;
            let password = read_password(password_stdin)?;
            let hash = password::hash(&password).context("password")?;
            let event = cli_event(
                "user_add",
                format!("user:{}", username.normalized()),
                serde_json::json!({ "username": username.as_str(), "role": role }),
            );
            users::insert_user(db, &username, role, &hash, &event).await?;
            println!("added user {username} ({role})");
            Ok(())
        }
        UserCommand::Disable { name } => {
            let username = Username::parse(&name).context("user name")?;
            let event = cli_event(
                "user_disable",
                format!("user:{}", username.normalized()),
                serde_json::json!({ "disabled": true }),
            );
            users::disable_user(db, &username, &event).await?;
            println!("disabled user {username}; their sessions have ended");
            Ok(())
        }
        UserCommand::List => {
            println!("{:<32} {:<18} STATUS", "USER", "ROLE");
            for u in users::list_users(db).await? {
                let status = if u.disabled { "disabled" } else { "active" };
                println!("{:<32} {:<18} {status}", u.username, u.role.as_str());
            }
            Ok(())
        }
    }
}

fn read_password(from_stdin: bool) -> anyhow::Result<String> {
    if from_stdin {
        let mut line = String::new();
        std::io::stdin()
            .lock()
            .read_line(&mut line)
            .context("cannot read the password from standard input")?;
        return Ok(line.trim_end_matches(['\r', '\n']).to_string());
    }
    if !std::io::stdin().is_terminal() {
        bail!("no terminal to ask for a password: pass --password-stdin and pipe it in");
    }
    let first = rpassword::prompt_password("Password: ").context("cannot read the password")?;
    let second =
        rpassword::prompt_password("Repeat password: ").context("cannot read the password")?;
    if first != second {
        bail!("the two passwords differ");
    }
    Ok(first)
}

async fn token(db: &Db, command: TokenCommand) -> anyhow::Result<()> {
    match command {
        TokenCommand::Create { name } => {
            if !tokens::valid_name(&name) {
                bail!("--name: {name:?} must be 1-64 letters, digits, '-', '_' or '.'");
            }
            let event = cli_event(
                "token_create",
                format!("token:{name}"),
                serde_json::json!({ "name": name }),
            );
            let token = tokens::create(db, &name, &event).await?;
            println!("{token}");
        }
        TokenCommand::List => {
            println!("{:<32} {:<26} STATUS", "NAME", "CREATED");
            for (name, created, revoked) in tokens::list(db).await? {
                let status = if revoked { "revoked" } else { "active" };
                println!(
                    "{name:<32} {:<26} {status}",
                    created.format("%Y-%m-%d %H:%M:%S UTC")
                );
            }
        }
        TokenCommand::Revoke { name } => {
            let event = cli_event(
                "token_revoke",
                format!("token:{name}"),
                serde_json::json!({ "revoked": true }),
            );
            tokens::revoke(db, &name, &event).await?;
            println!("revoked token {name}");
        }
    }
    Ok(())
}

async fn brand(db: &Db, command: BrandCommand) -> anyhow::Result<()> {
    match command {
        BrandCommand::Add {
            vendor,
            brand_id,
            name,
        } => {
            let vendor = VendorId::parse(&vendor).context("vendor")?;
            vendors::get_vendor(db, &vendor).await?;
            let brand_id = app::domain::parse_reference("brand_id", &brand_id)
                .map_err(|e| anyhow::anyhow!("{e}"))?;
            brands::add(db, &vendor, &brand_id, name.as_deref()).await?;
            println!("added brand {brand_id} to vendor {vendor}");
        }
        BrandCommand::List { vendor } => {
            let vendor = vendor
                .as_deref()
                .map(VendorId::parse)
                .transpose()
                .context("--vendor")?;
            println!("{:<24} {:<32} NAME", "VENDOR", "BRAND");
            for (vendor, brand, name) in brands::list(db, vendor.as_ref()).await? {
                println!(
                    "{vendor:<24} {brand:<32} {}",
                    name.as_deref().unwrap_or("-")
                );
            }
        }
    }
    Ok(())
}

async fn poll(
    db: &Db,
    settings: crate::config::PollerSettings,
    args: crate::cli::PollArgs,
) -> anyhow::Result<()> {
    if !args.once {
        bail!("--once is required: `poll` runs one pass and exits (`serve` polls continuously)");
    }
    let poller = poller::Poller::new(db.clone(), settings, poller::replica_name());
    let results = match &args.vendor {
        Some(vendor) => {
            let id = VendorId::parse(vendor).context("--vendor")?;
            let report = poller.run_once(&id).await?;
            vec![(id, Ok(report))]
        }
        None => poller.run_all_once().await,
    };
    let mut failed = None;
    for (vendor, result) in results {
        match result {
            Ok(report) => println!("{vendor}: {report}"),
            Err(err) => {
                eprintln!("error: {vendor}: {err:#}");
                failed = Some(vendor);
            }
        }
    }
    match failed {
        Some(vendor) => bail!("polling vendor {vendor} failed"),
        None => Ok(()),
    }
}

async fn reconcile(
    db: &Db,
    settings: &crate::config::ReconciliationSettings,
    args: crate::cli::ReconcileArgs,
) -> anyhow::Result<()> {
    let days = match (args.date, args.from, args.to) {
        (Some(d), _, _) => vec![d],
        (None, Some(from), Some(to)) => crate::reconcile::days(from, to)?,
        _ => bail!("give --date, or --from and --to"),
    };
    let runs =
        crate::reconcile::reconcile_days(db, &args.vendor, &days, settings, &cli_actor()).await?;
    for (run, changes) in &runs {
        if let Some(open_day) = changes.adjusted_onto {
            println!(
                "{} {} is closed: its reports stay as posted; {} changed discrepancies filed on {open_day} as an adjustment",
                run.vendor_id, run.day, changes.opened
            );
            continue;
        }
        let open: u64 = run
            .counts
            .iter()
            .filter(|(c, _)| c.is_discrepancy())
            .map(|(_, n)| n)
            .sum();
        println!(
            "{} {} ({}): {} orders, {} vendor records; {} matched, {} discrepancies ({} new, {} reopened, {} unchanged, {} cleared)",
            run.vendor_id,
            run.day,
            run.time_zone,
            run.orders,
            run.records,
            run.counts.get(&app::domain::matching::Class::Matched).copied().unwrap_or(0),
            open,
            changes.opened,
            changes.reopened,
            changes.unchanged,
            changes.cleared
        );
    }
    Ok(())
}

fn parse_class(name: &str) -> anyhow::Result<app::domain::matching::Class> {
    use app::domain::matching::Class;
    Class::ALL
        .into_iter()
        .find(|c| c.as_str() == name.trim())
        .with_context(|| {
            let names: Vec<&str> = Class::ALL.iter().map(|c| c.as_str()).collect();
            format!(
                "--class: {name:?} is not a class; classes are {}",
                names.join(", ")
            )
        })
}

fn parse_state(name: &str) -> anyhow::Result<app::storage::reconciliation::DiscrepancyState> {
    use app::storage::reconciliation::DiscrepancyState as S;
    [S::Open, S::Resolved, S::Cleared]
        .into_iter()
        .find(|s| s.as_str() == name.trim())
        .with_context(|| format!("--state: {name:?} is not a state; use open, resolved or cleared"))
}

async fn report(db: &Db, command: crate::cli::ReportCommand) -> anyhow::Result<()> {
    use crate::cli::{ReportCommand, ReportFormat};
    use app::storage::reconciliation::{self, Filter};
    match command {
        ReportCommand::Summary {
            vendor,
            date,
            format,
        } => {
            let run = crate::reconcile::summary_of(db, &vendor, date).await?;
            match format {
                ReportFormat::Json => println!(
                    "{}",
                    serde_json::to_string(&crate::reconcile::summary_json(&run))?
                ),
                ReportFormat::Csv => print!("{}", crate::reconcile::summary_csv(&run)),
            }
        }
        ReportCommand::Discrepancies {
            vendor,
            date,
            format,
            class,
            state,
        } => {
            // The day must have been reconciled, or an empty list would mislead.
            crate::reconcile::summary_of(db, &vendor, date).await?;
            let filter = Filter {
                vendor_id: Some(vendor),
                from: Some(date),
                to: Some(date),
                class: class.as_deref().map(parse_class).transpose()?,
                state: state.as_deref().map(parse_state).transpose()?,
                ..Default::default()
            };
            let items = reconciliation::list(db, &filter).await?;
            match format {
                ReportFormat::Json => {
                    let json: Vec<_> = items
                        .iter()
                        .map(crate::reconcile::discrepancy_json)
                        .collect();
                    println!("{}", serde_json::to_string(&json)?);
                }
                ReportFormat::Csv => print!("{}", crate::reconcile::discrepancies_csv(&items)),
            }
        }
    }
    Ok(())
}

async fn discrepancy(db: &Db, command: crate::cli::DiscrepancyCommand) -> anyhow::Result<()> {
    use crate::cli::DiscrepancyCommand;
    use app::storage::reconciliation;
    match command {
        DiscrepancyCommand::Show { id } => {
            let item = reconciliation::get(db, id).await?;
            println!(
                "{}",
                serde_json::to_string_pretty(&crate::reconcile::discrepancy_json(&item))?
            );
            for e in reconciliation::events(db, id).await? {
                println!(
                    "{}  {:<9} {}  ({})",
                    e.at.to_rfc3339(),
                    e.kind,
                    e.detail,
                    e.actor
                );
            }
        }
        DiscrepancyCommand::Resolve { id, how } => {
            if how.trim().is_empty() {
                bail!("--how: say how the discrepancy was resolved");
            }
            let item = reconciliation::resolve(db, id, how.trim(), &cli_actor()).await?;
            println!("resolved discrepancy {id} ({})", item.class.as_str());
        }
    }
    Ok(())
}
