//! Configuration: one typed struct from a TOML file, overridden by environment variables and flags.
//!
//! Precedence, highest first: command-line flag, environment variable, configuration file,
//! built-in default. Secrets (a password inside `database_url`) are redacted wherever the
//! configuration is shown.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use anyhow::Context;
use app::storage::DatabaseUrl;
use serde::Deserialize;

use crate::cli::GlobalArgs;

pub const DEFAULT_ADDR: &str = "127.0.0.1:3000";

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    #[default]
    Text,
    Json,
}

/// The configuration file as written by an operator. Every field is optional.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FileConfig {
    /// Address `serve` listens on.
    pub addr: Option<SocketAddr>,
    /// `postgres://…` or `sqlite://FILE`.
    pub database_url: Option<String>,
    pub log_format: Option<LogFormat>,
    /// A tracing filter such as `info` or `info,giftrecon=debug` (`RUST_LOG` overrides it).
    pub log_level: Option<String>,
    /// Where the built browser assets are (`LEPTOS_SITE_ROOT` overrides it).
    pub site_root: Option<PathBuf>,
    #[serde(default)]
    pub orders: OrderSettings,
    #[serde(default)]
    pub outbox: OutboxSettings,
    #[serde(default)]
    pub security: SecuritySettings,
    #[serde(default)]
    pub poller: PollerSettings,
    #[serde(default)]
    pub reconciliation: ReconciliationSettings,
}

/// `[security]`: browser sessions and sign-in.
#[derive(Clone, Debug, Deserialize, PartialEq, Eq)]
#[serde(default, deny_unknown_fields)]
pub struct SecuritySettings {
    /// `Secure` cookies with the `__Host-` prefix. Turn on when served over TLS, including
    /// behind a TLS-terminating proxy (`serve --secure-cookies` does the same).
    pub secure_cookies: bool,
    /// A session unused this long ends.
    pub session_idle_timeout_minutes: u64,
    /// A session ends this long after sign-in, however active.
    pub session_absolute_timeout_hours: u64,
    /// Failed sign-ins allowed per username and per client address within the window (then 429).
    pub max_login_failures: u32,
    pub login_failure_window_minutes: u64,
    /// Behind a reverse proxy, the header it appends the client address to (e.g.
    /// "x-forwarded-for"): sign-in limits per address then count real clients, not the proxy.
    /// Leave unset when clients connect directly (they could forge the header).
    pub client_address_header: Option<String>,
}

impl Default for SecuritySettings {
    fn default() -> Self {
        SecuritySettings {
            secure_cookies: false,
            session_idle_timeout_minutes: 30,
            session_absolute_timeout_hours: 12,
            max_login_failures: 5,
            login_failure_window_minutes: 15,
            client_address_header: None,
        }
    }
}

impl SecuritySettings {
    pub fn policy(&self) -> app::server::auth::SecurityPolicy {
        use std::time::Duration;
        app::server::auth::SecurityPolicy {
            secure_cookies: self.secure_cookies,
            idle_timeout: Duration::from_secs(self.session_idle_timeout_minutes.max(1) * 60),
            absolute_timeout: Duration::from_secs(
                self.session_absolute_timeout_hours.max(1) * 3600,
            ),
            max_login_failures: self.max_login_failures.max(1),
            failure_window: Duration::from_secs(self.login_failure_window_minutes.max(1) * 60),
            client_address_header: self
                .client_address_header
                .as_deref()
                .map(str::trim)
                .filter(|h| !h.is_empty())
                .map(str::to_ascii_lowercase),
        }
    }
}

/// `[orders]`: the order API.
#[derive(Clone, Debug, Deserialize, PartialEq, Eq)]
#[serde(default, deny_unknown_fields)]
pub struct OrderSettings {
    /// How long idempotency keys and their responses are kept (at least 30 days is advised).
    pub idempotency_retention_days: u32,
    /// Largest accepted body of a single order request (bigger: 413).
    pub max_body_bytes: usize,
}

impl Default for OrderSettings {
    fn default() -> Self {
        OrderSettings {
            idempotency_retention_days: 30,
            max_body_bytes: 64 * 1024,
        }
    }
}

/// `[outbox]`: the workers that place orders with vendors.
#[derive(Clone, Debug, Deserialize, PartialEq, Eq)]
#[serde(default, deny_unknown_fields)]
pub struct OutboxSettings {
    /// Concurrent workers in this process (0: this replica places no orders).
    pub workers: usize,
    /// Attempts before an order waits in "needs attention".
    pub max_attempts: i32,
    /// Backoff: attempt n waits a random time in [0, min(max_delay, base_delay × 2^(n-1))],
    /// and never less than a vendor's Retry-After.
    pub base_delay_ms: u64,
    pub max_delay_ms: u64,
    /// How long a worker holds a job; must exceed `vendor_timeout_ms`.
    pub lease_secs: u64,
    /// Per-call vendor timeout; a timeout is an unknown outcome, retried with the same key.
    pub vendor_timeout_ms: u64,
    /// After placement, when to first ask the vendor whether the order is final.
    pub sync_delay_ms: u64,
    /// How often to ask before leaving the order to webhooks and the poller.
    pub max_sync_attempts: i32,
    /// Longest sleep between looks for due jobs when nothing wakes the workers.
    pub idle_poll_ms: u64,
}

impl Default for OutboxSettings {
    fn default() -> Self {
        OutboxSettings {
            workers: 2,
            max_attempts: 8,
            base_delay_ms: 500,
            max_delay_ms: 300_000,
            lease_secs: 60,
            vendor_timeout_ms: 10_000,
            sync_delay_ms: 1_000,
            max_sync_attempts: 30,
            idle_poll_ms: 1_000,
        }
    }
}

/// `[poller]`: reading each vendor's reconciliation API on a schedule to backfill missed webhooks.
#[derive(Clone, Debug, Deserialize, PartialEq, Eq)]
#[serde(default, deny_unknown_fields)]
pub struct PollerSettings {
    /// Whether `serve` runs the poller (one replica per vendor polls at a time, by lease).
    pub enabled: bool,
    /// Seconds between passes.
    pub interval_secs: u64,
    /// Each pass starts this many seconds before the end of the last one, for late writes.
    pub overlap_secs: u64,
    /// Most pages read in one pass; the rest waits for the next pass (which resumes there).
    pub page_limit: u32,
    /// How long a replica's poller lease lasts without renewal; another replica takes over
    /// after it expires.
    pub lease_secs: u64,
    /// The first pass of a vendor reads this far back.
    pub initial_lookback_secs: u64,
    /// Per-request timeout for the vendor's listing.
    pub vendor_timeout_ms: u64,
}

impl Default for PollerSettings {
    fn default() -> Self {
        PollerSettings {
            enabled: true,
            interval_secs: 300,
            overlap_secs: 600,
            page_limit: 1_000,
            lease_secs: 60,
            initial_lookback_secs: 7 * 24 * 3600,
            vendor_timeout_ms: 10_000,
        }
    }
}

/// `[reconciliation]`: how a business day is cut and what counts as equal.
#[derive(Clone, Debug, Deserialize, PartialEq, Eq)]
#[serde(default, deny_unknown_fields)]
pub struct ReconciliationSettings {
    /// The business time zone, an IANA name such as `UTC` or `America/New_York`: a day runs from
    /// its midnight to the next.
    pub time_zone: String,
    /// The largest difference, in minor units of the order's currency, still called equal.
    pub amount_tolerance_minor: i64,
}

impl Default for ReconciliationSettings {
    fn default() -> Self {
        ReconciliationSettings {
            time_zone: "UTC".into(),
            amount_tolerance_minor: 0,
        }
    }
}

impl ReconciliationSettings {
    /// Checks the settings, naming the field at fault.
    pub fn validate(&self) -> anyhow::Result<()> {
        crate::reconcile::business_zone(&self.time_zone)
            .map_err(|e| anyhow::anyhow!("reconciliation.time_zone: {e}"))?;
        if self.amount_tolerance_minor < 0 {
            anyhow::bail!("reconciliation.amount_tolerance_minor: must be zero or more");
        }
        Ok(())
    }
}

/// The effective configuration of this process.
#[derive(Clone, Debug)]
pub struct Config {
    pub addr: SocketAddr,
    pub database: DatabaseUrl,
    pub log_format: LogFormat,
    pub log_level: String,
    pub site_root: Option<PathBuf>,
    pub orders: OrderSettings,
    pub outbox: OutboxSettings,
    pub security: SecuritySettings,
    pub poller: PollerSettings,
    pub reconciliation: ReconciliationSettings,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            addr: DEFAULT_ADDR.parse().expect("valid default address"),
            database: DatabaseUrl::default_sqlite(),
            log_format: LogFormat::Text,
            log_level: "info".into(),
            site_root: None,
            orders: OrderSettings::default(),
            outbox: OutboxSettings::default(),
            security: SecuritySettings::default(),
            poller: PollerSettings::default(),
            reconciliation: ReconciliationSettings::default(),
        }
    }
}

impl Config {
    /// Resolves the configuration from the global flags (which clap already merged with their
    /// environment variables), the configuration file they name, and the defaults.
    pub fn load(global: &GlobalArgs) -> anyhow::Result<Config> {
        let file = match &global.config {
            Some(path) => read_file(path)?,
            None => FileConfig::default(),
        };
        Config::resolve(global, file, |name| std::env::var(name).ok())
    }

    fn resolve(
        global: &GlobalArgs,
        file: FileConfig,
        env: impl Fn(&str) -> Option<String>,
    ) -> anyhow::Result<Config> {
        let defaults = Config::default();
        // An empty DATABASE_URL means unset, as in `DATABASE_URL= giftrecon serve`.
        let from_env = global
            .database_url
            .as_deref()
            .filter(|url| !url.trim().is_empty());
        let database = match from_env.or(file.database_url.as_deref()) {
            Some(url) => DatabaseUrl::parse(url)?,
            None => defaults.database,
        };
        Ok(Config {
            addr: file.addr.unwrap_or(defaults.addr),
            database,
            log_format: global
                .log_format
                .or(file.log_format)
                .unwrap_or(defaults.log_format),
            log_level: env("RUST_LOG")
                .or(file.log_level)
                .unwrap_or(defaults.log_level),
            site_root: env("LEPTOS_SITE_ROOT")
                .map(PathBuf::from)
                .or(file.site_root),
            orders: file.orders,
            outbox: file.outbox,
            security: file.security,
            poller: file.poller,
            reconciliation: {
                file.reconciliation.validate()?;
                file.reconciliation
            },
        })
    }
}

/// Reads and parses the file; any problem is one line naming the file, line and field.
pub fn read_file(path: &Path) -> anyhow::Result<FileConfig> {
    let text = std::fs::read_to_string(path)
        .with_context(|| format!("cannot read configuration file {}", path.display()))?;
    parse_file(&text).map_err(|reason| {
        anyhow::anyhow!("configuration file {} is invalid: {reason}", path.display())
    })
}

fn parse_file(text: &str) -> Result<FileConfig, String> {
    toml::from_str(text).map_err(|err| {
        let message = err.message().trim().replace('\n', " ");
        match err.span() {
            Some(span) => {
                let line = text[..span.start].matches('\n').count() + 1;
                format!("line {line}: {message}")
            }
            None => message,
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn global(database_url: Option<&str>) -> GlobalArgs {
        GlobalArgs {
            config: None,
            database_url: database_url.map(str::to_string),
            log_format: None,
        }
    }

    #[test]
    fn defaults_are_sqlite_on_localhost() {
        let config = Config::resolve(&global(None), FileConfig::default(), |_| None).unwrap();
        assert_eq!(config.addr.to_string(), "127.0.0.1:3000");
        assert_eq!(config.database, DatabaseUrl::default_sqlite());
        assert_eq!(config.log_format, LogFormat::Text);
    }

    #[test]
    fn flags_and_environment_override_the_file() {
        let file = parse_file(
            "addr = \"0.0.0.0:8080\"\ndatabase_url = \"sqlite://from-file.db\"\nlog_format = \"json\"\nlog_level = \"debug\"\n",
        )
        .unwrap();
        let config = Config::resolve(&global(Some("postgres://db/x")), file, |name| {
            (name == "RUST_LOG").then(|| "warn".to_string())
        })
        .unwrap();
        assert_eq!(config.addr.to_string(), "0.0.0.0:8080");
        assert_eq!(config.database.backend(), app::storage::Backend::Postgres);
        assert_eq!(config.log_format, LogFormat::Json);
        assert_eq!(config.log_level, "warn");
    }

    #[test]
    fn security_section_sets_the_session_policy() {
        let defaults = Config::resolve(&global(None), FileConfig::default(), |_| None).unwrap();
        let policy = defaults.security.policy();
        assert!(!policy.secure_cookies);
        assert_eq!(policy.idle_timeout.as_secs(), 30 * 60);
        assert_eq!(policy.absolute_timeout.as_secs(), 12 * 3600);
        assert_eq!(policy.max_login_failures, 5);
        let file = parse_file(
            "[security]\nsecure_cookies = true\nsession_idle_timeout_minutes = 5\nsession_absolute_timeout_hours = 1\n",
        )
        .unwrap();
        let policy = Config::resolve(&global(None), file, |_| None)
            .unwrap()
            .security
            .policy();
        assert!(policy.secure_cookies);
        assert_eq!(policy.cookie_name(), "__Host-giftrecon_session");
        assert!(policy.session_cookie("t").contains("; Secure"));
        assert_eq!(policy.idle_timeout.as_secs(), 300);
        assert_eq!(policy.absolute_timeout.as_secs(), 3600);
    }

    #[test]
    fn file_errors_name_the_line_and_field() {
        let err = parse_file("log_format = \"json\"\nadr = \"x\"\n").unwrap_err();
        assert!(err.starts_with("line 2:"), "{err}");
        assert!(err.contains("adr"), "{err}");
        let err = parse_file("addr = \"not an address\"\n").unwrap_err();
        assert!(err.starts_with("line 1:"), "{err}");
        assert!(!err.contains('\n'));
    }

    #[test]
    fn debug_output_never_shows_the_database_password() {
        let config = Config::resolve(
            &global(Some("postgres://app:hunter2@db/giftrecon")),
            FileConfig::default(),
            |_| None,
        )
        .unwrap();
        let shown = format!("{config:?}");
        assert!(!shown.contains("hunter2"), "{shown}");
    }
}
