//! Command-line interface. Every command works against `DATABASE_URL` or the default SQLite file.

use std::net::SocketAddr;
use std::path::PathBuf;

use clap::{Args, Parser, Subcommand};

use crate::config::LogFormat;

#[derive(Debug, Parser)]
#[command(
    name = "giftrecon",
    version,
    about = "Gift card orders that are never placed twice, webhooks you can trust, and reconciliation finance can sign off",
    propagate_version = true
)]
pub struct Cli {
    #[command(flatten)]
    pub global: GlobalArgs,
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Args)]
pub struct GlobalArgs {
    /// TOML configuration file (see README: Configuration).
    #[arg(long, global = true, env = "GIFTRECON_CONFIG", value_name = "FILE")]
    pub config: Option<PathBuf>,
    /// Database: postgres://HOST/DB or sqlite://FILE [default: sqlite://giftrecon.db].
    #[arg(
        long,
        global = true,
        env = "DATABASE_URL",
        hide_env_values = true,
        value_name = "URL"
    )]
    pub database_url: Option<String>,
    /// Log format on stderr.
    #[arg(long, global = true, env = "GIFTRECON_LOG_FORMAT", value_enum)]
    pub log_format: Option<LogFormat>,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run the web server: dashboard, JSON API, webhooks, health and metrics.
    Serve(ServeArgs),
    /// Create or upgrade the database schema, then exit.
    Migrate,
    /// Manage vendors.
    #[command(subcommand)]
    Vendor(VendorCommand),
    /// Manage dashboard users.
    #[command(subcommand)]
    User(UserCommand),
    /// Manage API tokens for services that call the JSON API.
    #[command(subcommand)]
    Token(TokenCommand),
    /// Manage the brands each vendor sells.
    #[command(subcommand)]
    Brand(BrandCommand),
    /// Import files.
    #[command(subcommand)]
    Import(ImportCommand),
    /// Write a realistic day of orders and the vendor's file for it (about 2.5% discrepancies):
    /// orders.csv, vendor.csv and expected.json, for benchmarks and demos.
    BenchData {
        /// How many orders.
        #[arg(long)]
        orders: u64,
        /// Folder to write into (created if missing).
        #[arg(long)]
        out: std::path::PathBuf,
        /// Random seed (the same seed writes the same files).
        #[arg(long, default_value_t = 1)]
        seed: u64,
        /// The business day of the orders.
        #[arg(long, default_value = "2026-12-01")]
        date: chrono::NaiveDate,
    },
    /// Match a vendor's records to our orders for a business day (or a range of days), classify
    /// what does not tie out, and keep the day's counts, totals and discrepancies.
    Reconcile(ReconcileArgs),
    /// Print a reconciled day: its summary or its discrepancies.
    #[command(subcommand)]
    Report(ReportCommand),
    /// Look at and resolve discrepancies.
    #[command(subcommand)]
    Discrepancy(DiscrepancyCommand),
    /// Database administration.
    #[command(subcommand)]
    Db(DbCommand),
    /// Inspect the audit trail.
    #[command(subcommand)]
    Audit(AuditCommand),
    /// The daily close: totals and clearing entries, and the journal files of posted days.
    /// (Proposing, submitting, approving and posting happen in the dashboard, signed in.)
    #[command(subcommand)]
    Close(CloseCommand),
    /// Read vendors' reconciliation APIs and backfill what webhooks missed.
    Poll(PollArgs),
    /// Run a simulator of the generic vendor API, with faults on request (for tests and demos).
    VendorSim(crate::sim::SimArgs),
    /// Try giftrecon: the dashboard with a vendor simulator, a few reconciled days with every
    /// kind of discrepancy, and a login per role (in its own giftrecon-demo.db).
    Demo(crate::demo::DemoArgs),
}

#[derive(Debug, Args)]
pub struct ServeArgs {
    /// Address to listen on [default: 127.0.0.1:3000].
    #[arg(long, env = "GIFTRECON_ADDR", value_name = "HOST:PORT")]
    pub addr: Option<SocketAddr>,
    /// Mark session cookies `Secure` (with the `__Host-` prefix): for TLS, or behind a TLS proxy.
    #[arg(long, env = "GIFTRECON_SECURE_COOKIES")]
    pub secure_cookies: bool,
}

#[derive(Debug, Subcommand)]
pub enum VendorCommand {
    /// Add a vendor.
    Add {
        /// Short identifier used in URLs and files, e.g. `acme` (lowercase letters, digits, - and _).
        id: String,
        /// API and webhook format: generic, tremendous or runa.
        #[arg(long, default_value = "generic")]
        kind: String,
        /// The vendor API's base address, e.g. https://api.vendor.example.
        #[arg(long, value_name = "URL")]
        base_url: Option<String>,
        /// A webhook signing secret; repeat for several active secrets.
        #[arg(long = "webhook-secret", value_name = "SECRET")]
        webhook_secrets: Vec<String>,
        /// The API key giftrecon presents to the vendor, if it needs one.
        #[arg(long, value_name = "KEY")]
        api_key: Option<String>,
    },
    /// Change a vendor. `--webhook-secret` (repeatable) replaces the active secrets at once;
    /// to change secrets without dropping deliveries signed with the old one, use `rotate-secret`.
    Set {
        /// The vendor's id.
        id: String,
        /// The vendor API's new base address.
        #[arg(long, value_name = "URL")]
        base_url: Option<String>,
        /// A webhook signing secret; repeat for several active secrets.
        #[arg(long = "webhook-secret", value_name = "SECRET")]
        webhook_secrets: Vec<String>,
        /// The column of the vendor's files that holds a field, as FIELD=COLUMN (repeatable),
        /// for vendors whose files do not use the generic names; replaces the stored mapping.
        #[arg(long = "file-column", value_name = "FIELD=COLUMN")]
        file_columns: Vec<String>,
        /// Forget the stored file column names (back to the generic ones).
        #[arg(long, conflicts_with = "file_columns")]
        clear_file_columns: bool,
        /// How often the poller reads this vendor: seconds or with a unit (90s, 5m, 1h), 10 s
        /// to a day; `default` puts it back on the server's schedule ([poller] interval_secs).
        #[arg(long, value_name = "INTERVAL")]
        poll_interval: Option<String>,
        /// GL account debited with fulfilled gift cards [default: 1190:Gift card clearing].
        #[arg(long, value_name = "CODE[:NAME]")]
        clearing_account: Option<String>,
        /// GL account credited with what the vendor billed [default: 2010:Vendor payable].
        #[arg(long, value_name = "CODE[:NAME]")]
        payable_account: Option<String>,
        /// GL account that takes the variance [default: 1999:Reconciliation suspense].
        #[arg(long, value_name = "CODE[:NAME]")]
        suspense_account: Option<String>,
    },
    /// Add a new webhook secret and retire the oldest active one after a grace period, during
    /// which events signed with either verify.
    RotateSecret {
        /// The vendor's id.
        id: String,
        /// The new secret.
        #[arg(long, value_name = "SECRET")]
        secret: String,
        /// Hours the old secret keeps verifying.
        #[arg(long, default_value_t = 24, value_name = "HOURS")]
        grace_hours: u32,
    },
    /// List vendors (secrets are never shown).
    List,
}

#[derive(Debug, Args)]
pub struct PollArgs {
    /// The vendor to poll (default: every vendor with a base URL).
    #[arg(long)]
    pub vendor: Option<String>,
    /// Run one pass and exit (required: `serve` runs the poller continuously).
    #[arg(long)]
    pub once: bool,
}

#[derive(Debug, Subcommand)]
pub enum UserCommand {
    /// Add a user; the password is prompted for, or read from standard input.
    Add {
        /// Login name.
        name: String,
        /// admin, finance_preparer, finance_approver or support.
        #[arg(long)]
        role: String,
        /// Read the password from the first line of standard input instead of prompting.
        #[arg(long)]
        password_stdin: bool,
    },
    /// List users.
    List,
    /// Disable a user: they cannot sign in, and their open sessions end at once.
    Disable {
        /// Login name.
        name: String,
    },
}

#[derive(Debug, Subcommand)]
pub enum CloseCommand {
    /// A vendor's day: totals ours beside the vendor's, and the clearing entries with their lines.
    Show {
        #[arg(long)]
        vendor: String,
        /// The business day, YYYY-MM-DD.
        #[arg(long)]
        date: chrono::NaiveDate,
    },
    /// The journal file of a day's posted entries, exactly as written when they were posted.
    Export {
        #[arg(long)]
        vendor: String,
        /// The business day, YYYY-MM-DD.
        #[arg(long)]
        date: chrono::NaiveDate,
        /// generic, qbo (QuickBooks Online) or xero.
        #[arg(long)]
        format: String,
        /// Write to this file instead of standard output.
        #[arg(long, value_name = "FILE")]
        out: Option<std::path::PathBuf>,
    },
}

#[derive(Debug, Subcommand)]
pub enum AuditCommand {
    /// Walk the hash chain; fails naming the first row that was edited or follows a removed row.
    Verify,
}

#[derive(Debug, Subcommand)]
pub enum DbCommand {
    /// PostgreSQL: give an existing role what `serve` needs and no more. Run it as the role that
    /// owns the tables (the one `giftrecon migrate` runs as), again after every upgrade. The app
    /// role may read and write the tables but only SELECT and INSERT the audit trail; not being
    /// its owner, it cannot disable the triggers that keep the trail append-only.
    GrantAppRole {
        /// The role `serve` connects as (create it first: CREATE ROLE name LOGIN PASSWORD '…').
        name: String,
    },
}

#[derive(Debug, Subcommand)]
pub enum TokenCommand {
    /// Create a token; prints the token alone on stdout (it is stored only as a hash).
    Create {
        /// Who uses it, e.g. `checkout-service`; idempotency keys are scoped to this name.
        #[arg(long)]
        name: String,
    },
    /// List tokens (names and dates; tokens themselves cannot be shown).
    List,
    /// Revoke a token at once.
    Revoke {
        /// The token's name.
        name: String,
    },
}

#[derive(Debug, Subcommand)]
pub enum BrandCommand {
    /// Allow orders for a brand of a vendor.
    Add {
        /// Vendor id.
        vendor: String,
        /// The brand id as the vendor knows it.
        brand_id: String,
        /// A readable name.
        #[arg(long)]
        name: Option<String>,
    },
    /// List brands.
    List {
        /// Only this vendor's brands.
        #[arg(long)]
        vendor: Option<String>,
    },
}

#[derive(Debug, Subcommand)]
pub enum ImportCommand {
    /// Import orders from CSV (header: idempotency_key,customer_id,brand_id,amount,currency;
    /// any order, extra columns ignored). Rows with status and created_at are recorded as
    /// placed by another system; the others are placed with the vendor.
    Orders {
        /// The CSV file.
        file: std::path::PathBuf,
        /// The vendor of every row.
        #[arg(long)]
        vendor: String,
        /// Idempotency keys of the file are scoped to this owner.
        #[arg(long, default_value = "import")]
        owner: String,
    },
    /// Import a vendor's reconciliation file (CSV or a JSON array) into vendor records, all or
    /// nothing. Generic columns, by header name in any order: vendor_order_id, idempotency_key,
    /// reference_id, brand_id, amount, currency, status, created_at, updated_at.
    Vendor {
        /// The file.
        file: std::path::PathBuf,
        /// The vendor it came from.
        #[arg(long)]
        vendor: String,
        /// csv or json [default: from the file name, else csv].
        #[arg(long)]
        format: Option<String>,
        /// A column name for this file only, as FIELD=COLUMN (repeatable); otherwise the
        /// vendor's stored names (`vendor set --file-column`), else the generic ones.
        #[arg(long = "column", value_name = "FIELD=COLUMN")]
        columns: Vec<String>,
    },
}

#[derive(Debug, Args)]
pub struct ReconcileArgs {
    /// The vendor.
    #[arg(long)]
    pub vendor: String,
    /// The business day, YYYY-MM-DD (in the configured business time zone).
    #[arg(long, required_unless_present = "from", conflicts_with_all = ["from", "to"])]
    pub date: Option<chrono::NaiveDate>,
    /// The first day of a range (with --to).
    #[arg(long, requires = "to")]
    pub from: Option<chrono::NaiveDate>,
    /// The last day of a range, included.
    #[arg(long, requires = "from")]
    pub to: Option<chrono::NaiveDate>,
}

#[derive(Clone, Copy, Debug, clap::ValueEnum)]
pub enum ReportFormat {
    Json,
    Csv,
}

#[derive(Debug, Subcommand)]
pub enum ReportCommand {
    /// Counts per class and totals per currency (ours beside the vendor's) of a reconciled day.
    Summary {
        #[arg(long)]
        vendor: String,
        #[arg(long)]
        date: chrono::NaiveDate,
        #[arg(long, value_enum, default_value = "json")]
        format: ReportFormat,
    },
    /// The discrepancies of a reconciled day.
    Discrepancies {
        #[arg(long)]
        vendor: String,
        #[arg(long)]
        date: chrono::NaiveDate,
        #[arg(long, value_enum, default_value = "csv")]
        format: ReportFormat,
        /// Only this class (amount_mismatch, vendor_only, ...).
        #[arg(long)]
        class: Option<String>,
        /// Only this state: open, resolved or cleared.
        #[arg(long)]
        state: Option<String>,
    },
}

#[derive(Debug, Subcommand)]
pub enum DiscrepancyCommand {
    /// One discrepancy with its history.
    Show { id: i64 },
    /// Mark an open discrepancy resolved, saying how.
    Resolve {
        id: i64,
        /// How it was resolved (kept with who and when).
        #[arg(long)]
        how: String,
    },
}
