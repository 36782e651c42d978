//! Storage: one code path for SQLite and PostgreSQL, chosen at run time.
//!
//! Queries are written once in the SQL both engines accept (`$1` placeholders, `RETURNING`) and run
//! through [`on_db!`], which expands the body once per pool type. Money is stored as BIGINT minor
//! units beside an ISO 4217 code; timestamps as UTC (`TIMESTAMPTZ` on PostgreSQL, RFC 3339 text
//! on SQLite).

pub mod app_role;
pub mod audit;
pub mod brands;
pub mod idempotency;
pub mod imports;
pub mod journal;
pub mod order_import;
pub mod orders;
pub mod outbox;
pub mod poller;
pub mod queue;
pub mod reconciliation;
pub mod sessions;
pub mod tokens;
mod url;
pub mod users;
pub mod vendor_admin;
pub mod vendor_fetch;
pub mod vendor_records;
pub mod vendors;
pub mod webhooks;

use std::str::FromStr;
use std::time::Duration;

use sqlx::postgres::{PgConnectOptions, PgPool, PgPoolOptions};
use sqlx::sqlite::{
    SqliteConnectOptions, SqliteJournalMode, SqlitePool, SqlitePoolOptions, SqliteSynchronous,
};
use sqlx::{ConnectOptions, Connection};

pub use url::{redact, Backend, DatabaseUrl, DatabaseUrlError, DEFAULT_SQLITE_FILE};

/// Runs `$body` with `$pool` bound to the concrete pool of whichever backend `$db` holds.
#[macro_export]
macro_rules! on_db {
    ($db:expr, $pool:ident => $body:expr) => {
        match $db {
            $crate::storage::Db::Sqlite($pool) => $body,
            $crate::storage::Db::Postgres($pool) => $body,
        }
    };
}

/// A connection pool to the configured database.
#[derive(Clone, Debug)]
pub enum Db {
    Sqlite(SqlitePool),
    Postgres(PgPool),
}

/// Statements slower than this are logged at debug level only: bulk imports and reconciliation
/// runs are slow by nature, and a warning on every run would teach operators to ignore warnings.
const SLOW_STATEMENT: Duration = Duration::from_secs(1);
const SLOW_STATEMENT_LEVEL: log::LevelFilter = log::LevelFilter::Debug;

/// How long to wait for a database before saying it cannot be reached.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);

#[derive(Debug, thiserror::Error)]
pub enum ConnectError {
    #[error("cannot open {url}: {reason}")]
    Open { url: String, reason: String },
    #[error("cannot connect to {url}: {reason}")]
    Unreachable { url: String, reason: String },
    #[error("cannot apply database migrations to {url}: {reason}")]
    Migrate { url: String, reason: String },
}

impl Db {
    /// Connects (creating a SQLite file if missing) without touching the schema.
    pub async fn connect(url: &DatabaseUrl) -> Result<Db, ConnectError> {
        match url {
            DatabaseUrl::Sqlite { path, .. } => {
                let options = SqliteConnectOptions::new()
                    .filename(path)
                    .create_if_missing(true)
                    // 16 KiB pages for a new database (one made before keeps its own size): a
                    // quarter of the pages to write, find and checkpoint per row.
                    .page_size(SQLITE_PAGE_SIZE)
                    .journal_mode(SqliteJournalMode::Wal)
                    .synchronous(SqliteSynchronous::Normal)
                    .foreign_keys(true)
                    .busy_timeout(Duration::from_secs(5))
                    // 32 MiB of page cache per connection (SQLite's default is 2 MiB): a million
                    // rows' indexes stop thrashing the OS cache during imports and runs.
                    .pragma("cache_size", "-32768")
                    .log_slow_statements(SLOW_STATEMENT_LEVEL, SLOW_STATEMENT);
                let pool = SqlitePoolOptions::new()
                    .max_connections(8)
                    .acquire_timeout(CONNECT_TIMEOUT)
                    .connect_with(options)
                    .await
                    .map_err(|e| ConnectError::Open {
                        url: url.to_string(),
                        reason: describe(&e),
                    })?;
                Ok(Db::Sqlite(pool))
            }
            DatabaseUrl::Postgres { raw } => {
                let options = PgConnectOptions::from_str(raw)
                    .map_err(|e| ConnectError::Open {
                        url: url.to_string(),
                        reason: describe(&e),
                    })?
                    .log_slow_statements(SLOW_STATEMENT_LEVEL, SLOW_STATEMENT);
                // One direct connection first: a pool would only report "timed out", while the
                // driver says what is wrong (refused, unknown database, authentication).
                let probe = tokio::time::timeout(
                    CONNECT_TIMEOUT,
                    sqlx::PgConnection::connect_with(&options),
                )
                .await
                .map_err(|_| ConnectError::Unreachable {
                    url: url.to_string(),
                    reason: format!("no answer within {} s", CONNECT_TIMEOUT.as_secs()),
                })?
                .map_err(|e| ConnectError::Unreachable {
                    url: url.to_string(),
                    reason: describe(&e),
                })?;
                let _ = probe.close().await;
                let pool = PgPoolOptions::new()
                    .max_connections(16)
                    .acquire_timeout(CONNECT_TIMEOUT)
                    .connect_lazy_with(options);
                Ok(Db::Postgres(pool))
            }
        }
    }

    /// Connects and applies every pending migration for the backend.
    pub async fn connect_and_migrate(url: &DatabaseUrl) -> Result<Db, ConnectError> {
        let db = Db::connect(url).await?;
        db.migrate().await.map_err(|e| ConnectError::Migrate {
            url: url.to_string(),
            reason: describe_migrate(&e),
        })?;
        Ok(db)
    }

    pub async fn migrate(&self) -> Result<(), sqlx::migrate::MigrateError> {
        match self {
            Db::Sqlite(pool) => sqlx::migrate!("../migrations/sqlite").run(pool).await,
            Db::Postgres(pool) => {
                let migrator = sqlx::migrate!("../migrations/postgres");
                // An application role without rights on the schema (see `giftrecon db
                // grant-app-role`) cannot even run sqlx's CREATE TABLE IF NOT EXISTS: when every
                // migration is already applied, there is nothing to do and nothing is run.
                if all_applied(pool, &migrator).await? {
                    return Ok(());
                }
                migrator.run(pool).await
            }
        }
    }

    /// Whether the database answers a trivial query (for readiness checks).
    pub async fn ping(&self) -> Result<(), sqlx::Error> {
        on_db!(self, pool => sqlx::query("SELECT 1").execute(pool).await.map(|_| ()))
    }

    pub fn backend(&self) -> Backend {
        match self {
            Db::Sqlite(_) => Backend::Sqlite,
            Db::Postgres(_) => Backend::Postgres,
        }
    }

    pub async fn close(&self) {
        on_db!(self, pool => pool.close().await)
    }
}

/// Whether every migration of `migrator` is recorded as applied, with the same checksum.
async fn all_applied(
    pool: &PgPool,
    migrator: &sqlx::migrate::Migrator,
) -> Result<bool, sqlx::Error> {
    let table: Option<String> = sqlx::query_scalar("SELECT to_regclass('_sqlx_migrations')::text")
        .fetch_one(pool)
        .await?;
    if table.is_none() {
        return Ok(false);
    }
    let applied: Vec<(i64, Vec<u8>)> =
        sqlx::query_as("SELECT version, checksum FROM _sqlx_migrations WHERE success")
            .fetch_all(pool)
            .await?;
    Ok(migrator
        .iter()
        .filter(|m| !m.migration_type.is_down_migration())
        .all(|m| {
            applied
                .iter()
                .any(|(version, checksum)| *version == m.version && **checksum == *m.checksum)
        }))
}

/// A one-line description of a driver error, without the URL (which may carry a password).
pub fn describe(err: &sqlx::Error) -> String {
    match err {
        sqlx::Error::Io(io) => io.to_string(),
        sqlx::Error::Database(db) => db.message().to_string(),
        sqlx::Error::Configuration(c) => c.to_string(),
        sqlx::Error::Tls(t) => format!("TLS: {t}"),
        sqlx::Error::PoolTimedOut => "timed out waiting for a connection".into(),
        other => other.to_string(),
    }
    .replace('\n', " ")
}

fn describe_migrate(err: &sqlx::migrate::MigrateError) -> String {
    match err {
        sqlx::migrate::MigrateError::Execute(e) => describe(e),
        sqlx::migrate::MigrateError::VersionMissing(v) => format!(
            "the database has migration {v}, which this giftrecon does not know: is it older than the database?"
        ),
        other => other.to_string().replace('\n', " "),
    }
}

/// A failure of a storage operation that callers may want to tell apart.
#[derive(Debug, thiserror::Error)]
pub enum StorageError {
    /// A uniqueness rule was violated; `what` names it for the user.
    #[error("{what} already exists")]
    AlreadyExists { what: String },
    #[error("{what} not found")]
    NotFound { what: String },
    /// The change conflicts with the current state; `what` says how.
    #[error("{what}")]
    Conflict { what: String },
    #[error(transparent)]
    Database(#[from] sqlx::Error),
}

impl StorageError {
    /// Maps a unique-constraint violation to `AlreadyExists { what }`, anything else through.
    pub fn unique_or(err: sqlx::Error, what: impl FnOnce() -> String) -> StorageError {
        match &err {
            sqlx::Error::Database(db) if db.is_unique_violation() => {
                StorageError::AlreadyExists { what: what() }
            }
            _ => StorageError::Database(err),
        }
    }
}

/// The current time, truncated to microseconds so it survives both backends unchanged.
pub fn now_utc() -> chrono::DateTime<chrono::Utc> {
    use chrono::{SubsecRound, Utc};
    Utc::now().trunc_subsecs(6)
}

/// Rows a bulk import must have written before it refreshes PostgreSQL's planner statistics of
/// the tables it wrote, rather than leaving that to autovacuum's next pass.
const ANALYZE_AFTER_ROWS: u64 = 10_000;

/// After a committed bulk import of `rows` rows into `tables` (a comma-separated list of table
/// names): on PostgreSQL, `ANALYZE` them. Until then the planner takes a table grown by a
/// million rows for the few it knew, and plans the day's reconciliation over it accordingly
/// (at a million orders: 14.6 s before, 9.5 s after, for a sampling pass of under half a
/// second). SQLite plans by its indexes alone here, and its ANALYZE would read every row.
/// The import has committed by then: a failure here is logged, not reported as the import's.
pub(crate) async fn analyze_after_bulk(db: &Db, tables: &str, rows: u64) {
    if let Db::Postgres(pool) = db {
        if rows >= ANALYZE_AFTER_ROWS {
            if let Err(e) = sqlx::query(&format!("ANALYZE {tables}"))
                .execute(pool)
                .await
            {
                tracing::warn!(tables, error = %e, "could not refresh planner statistics");
            }
        }
    }
}

/// Page size of a new SQLite database. A million orders and then a million vendor records,
/// alternating runs of each: with 4 KiB pages the orders took 21.9 and 17.2 s and the vendor file
/// 13.6 and 12.0 s; with 16 KiB pages 14.6 and 14.9 s, and 11.2 and 8.3 s. 8 KiB pages took
/// 16.7 and 16.6 s for the orders, and 64 KiB pages slowed the reconciliation's index probes.
/// The price is in small commits: webhook intake measured 8,710/s on average over three runs
/// against 9,344/s with 4 KiB pages (`cargo bench --bench webhooks`).
pub const SQLITE_PAGE_SIZE: u32 = 16 * 1024;

/// SQLite page cache for a bulk import's connection. A million orders' seven indexes (or a
/// million vendor records' four) outgrow the pool's 32 MiB, and every page evicted
/// mid-transaction is written to the WAL and read back. With 128 MiB a 1M-order import took 37.5 s against 43.0 s (three alternating runs each; peak
/// RSS 174 MiB against 93 MiB); at 100k it makes no difference.
pub(crate) const BULK_CACHE_KIB: i64 = 128 * 1024;

/// A transaction for one bulk import (of orders or of a vendor file).
pub(crate) trait BulkBegin {
    type Database: sqlx::Database;
    async fn begin_bulk(&self) -> Result<sqlx::Transaction<'static, Self::Database>, sqlx::Error>;
    /// A read-only pass over a whole day (a reconciliation run): on SQLite a connection of its
    /// own with [`SORT_CACHE_KIB`] of cache, in a deferred transaction that takes no write lock.
    async fn begin_bulk_read(
        &self,
    ) -> Result<sqlx::Transaction<'static, Self::Database>, sqlx::Error>;
}

/// SQLite page cache, in KiB, for work that sorts a large set and then reads in index order: a
/// large import's deferred index builds and a reconciliation run. SQLite sorts in runs as large
/// as the page cache, then merges them; runs of a few MiB stay in the processor's caches, where
/// runs of the bulk cache's size do not (see the figures where each uses it).
pub(crate) const SORT_CACHE_KIB: i64 = 4 * 1024;

/// A pooled SQLite connection of its own with `cache_kib` of page cache, closed when dropped
/// rather than returned to the pool, so the setting goes with it.
async fn bulk_connection(
    pool: &sqlx::SqlitePool,
    cache_kib: i64,
) -> Result<sqlx::pool::PoolConnection<sqlx::Sqlite>, sqlx::Error> {
    let mut conn = pool.acquire().await?;
    conn.close_on_drop();
    sqlx::query(&format!("PRAGMA cache_size = -{cache_kib}"))
        .execute(&mut *conn)
        .await?;
    Ok(conn)
}

impl BulkBegin for sqlx::SqlitePool {
    type Database = sqlx::Sqlite;
    /// On a [`bulk_connection`]. `BEGIN IMMEDIATE` takes the write lock at once (waiting out
    /// another writer as any write does): an import reads before it first writes, and a
    /// deferred transaction whose snapshot another writer committed past in between could not
    /// start writing at all ("database is locked", whatever the busy timeout).
    async fn begin_bulk(&self) -> Result<sqlx::Transaction<'static, sqlx::Sqlite>, sqlx::Error> {
        let conn = bulk_connection(self, BULK_CACHE_KIB).await?;
        sqlx::Transaction::begin(conn, Some("BEGIN IMMEDIATE".into())).await
    }

    /// A run sorts the day's orders by id and then probes the vendor records' order index in
    /// that order (see `reconciliation::run`): a small cache serves both. The sort may use a
    /// second thread: the run's own task waits for the first row meanwhile. A 1M-order run
    /// took 2.95 s against 3.28 s (six alternating pairs, each faster), peak RSS 139–168 MiB
    /// against 132–150 MiB.
    async fn begin_bulk_read(
        &self,
    ) -> Result<sqlx::Transaction<'static, sqlx::Sqlite>, sqlx::Error> {
        let mut conn = bulk_connection(self, SORT_CACHE_KIB).await?;
        sqlx::query("PRAGMA threads = 2")
            .execute(&mut *conn)
            .await?;
        sqlx::Transaction::begin(conn, None).await
    }
}

impl BulkBegin for sqlx::PgPool {
    type Database = sqlx::Postgres;
    async fn begin_bulk(&self) -> Result<sqlx::Transaction<'static, sqlx::Postgres>, sqlx::Error> {
        self.begin().await
    }

    async fn begin_bulk_read(
        &self,
    ) -> Result<sqlx::Transaction<'static, sqlx::Postgres>, sqlx::Error> {
        self.begin().await
    }
}

/// Placeholders numbered in the order they appear, each bound once in that order: `?` on SQLite,
/// `$n` on PostgreSQL. (With `$n` SQLite looks every name up in a list while preparing and
/// binding: quadratic, and most of a large batch's cost.)
pub struct Placeholders {
    pub sqlite: bool,
    count: usize,
}

impl Placeholders {
    pub fn new(db: &Db) -> Placeholders {
        Placeholders {
            sqlite: matches!(db, Db::Sqlite(_)),
            count: 0,
        }
    }

    pub fn push(&mut self, sql: &mut String) {
        use std::fmt::Write;
        self.count += 1;
        if self.sqlite {
            sql.push('?');
        } else {
            let _ = write!(sql, "${}", self.count);
        }
    }

    /// `rows` tuples of `width` placeholders, comma-separated: the VALUES of a multi-row
    /// statement.
    pub fn rows(&mut self, sql: &mut String, rows: usize, width: usize) {
        for r in 0..rows {
            if r > 0 {
                sql.push(',');
            }
            self.tuple(sql, width);
        }
    }

    /// `(p, p, …)` of `width` placeholders.
    pub fn tuple(&mut self, sql: &mut String, width: usize) {
        sql.push('(');
        for i in 0..width {
            if i > 0 {
                sql.push_str(", ");
            }
            self.push(sql);
        }
        sql.push(')');
    }
}

/// Rows in PostgreSQL's `COPY … FROM STDIN` text format, built field by field: tab between
/// fields, newline after each row, `\N` for NULL, and backslash, tab, newline and carriage
/// return escaped inside a value.
#[derive(Default)]
pub(crate) struct CopyText {
    buf: Vec<u8>,
    row_open: bool,
}

impl CopyText {
    fn separate(&mut self) {
        if self.row_open {
            self.buf.push(b'\t');
        }
        self.row_open = true;
    }

    pub fn text(&mut self, value: &str) -> &mut Self {
        self.separate();
        for b in value.bytes() {
            match b {
                b'\\' => self.buf.extend_from_slice(b"\\\\"),
                b'\t' => self.buf.extend_from_slice(b"\\t"),
                b'\n' => self.buf.extend_from_slice(b"\\n"),
                b'\r' => self.buf.extend_from_slice(b"\\r"),
                _ => self.buf.push(b),
            }
        }
        self
    }

    pub fn opt(&mut self, value: Option<&str>) -> &mut Self {
        match value {
            Some(v) => self.text(v),
            None => {
                self.separate();
                self.buf.extend_from_slice(b"\\N");
                self
            }
        }
    }

    pub fn int(&mut self, value: i64) -> &mut Self {
        use std::io::Write;
        self.separate();
        let _ = write!(self.buf, "{value}");
        self
    }

    /// A UTC timestamp to the microsecond, as sqlx binds one.
    pub fn time(&mut self, value: chrono::DateTime<chrono::Utc>) -> &mut Self {
        use std::io::Write;
        self.separate();
        let _ = write!(self.buf, "{}", value.format("%Y-%m-%d %H:%M:%S%.6f+00"));
        self
    }

    pub fn opt_time(&mut self, value: Option<chrono::DateTime<chrono::Utc>>) -> &mut Self {
        match value {
            Some(t) => self.time(t),
            None => self.opt(None),
        }
    }

    pub fn end_row(&mut self) {
        self.buf.push(b'\n');
        self.row_open = false;
    }

    pub fn into_bytes(self) -> Vec<u8> {
        self.buf
    }
}

/// Bulk rows into a table by the engine's fastest path. PostgreSQL parses a multi-row INSERT of
/// thousands of placeholders anew for every batch (a 1M-order import spent most of its time in
/// PARSE); `COPY` streams the rows with no statement to parse at all. SQLite has no COPY: its
/// imports bind prepared multi-row statements, which it parses once.
pub(crate) trait CopyIn {
    /// Runs `statement`, a `COPY … FROM STDIN` in text format, with `data`; the rows copied, or
    /// `None` on an engine without COPY (nothing is run).
    async fn copy_in(&mut self, statement: &str, data: Vec<u8>)
        -> Result<Option<u64>, sqlx::Error>;
}

impl CopyIn for sqlx::SqliteConnection {
    async fn copy_in(&mut self, _: &str, _: Vec<u8>) -> Result<Option<u64>, sqlx::Error> {
        Ok(None)
    }
}

impl CopyIn for sqlx::PgConnection {
    async fn copy_in(
        &mut self,
        statement: &str,
        data: Vec<u8>,
    ) -> Result<Option<u64>, sqlx::Error> {
        let mut copy = self.copy_in_raw(statement).await?;
        copy.send(data).await?;
        copy.finish().await.map(Some)
    }
}

/// The batch read ahead if there is one, else the next from the channel (see [`next_rows`]).
pub(crate) async fn ahead_or_next<T>(
    ahead: &mut Option<Vec<T>>,
    batches: &mut tokio::sync::mpsc::Receiver<Vec<T>>,
    rows: usize,
) -> Option<Vec<T>> {
    match ahead.take() {
        Some(batch) => Some(batch),
        None => next_rows(batches, rows).await,
    }
}

/// Reads the next batch and, if it holds `full` rows, binds its statement with `bind`. A SQLite
/// import runs this while its last statement runs on the connection's own thread, so reading
/// and binding (and the copies sqlx makes of borrowed arguments, avoided by binding owned
/// ones) overlap SQLite's work instead of taking turns with it.
pub(crate) async fn read_ahead<T, Q>(
    batches: &mut tokio::sync::mpsc::Receiver<Vec<T>>,
    rows: usize,
    full: usize,
    bind: impl FnOnce(&[T]) -> Q,
) -> (Option<Vec<T>>, Option<Q>) {
    let next = next_rows(batches, rows).await;
    let bound = next.as_deref().filter(|b| b.len() == full).map(bind);
    (next, bound)
}

/// No statement yet, of the pool's engine: the empty slot for a statement bound ahead.
pub(crate) fn no_query<'q, DB: sqlx::Database>(
    _: &sqlx::Pool<DB>,
) -> Option<sqlx::query::Query<'q, DB, <DB as sqlx::Database>::Arguments<'q>>> {
    None
}

/// The next batch from a channel of batches, joined with the ones after it until it holds at
/// least `rows` rows or the channel ends.
pub(crate) async fn next_rows<T>(
    batches: &mut tokio::sync::mpsc::Receiver<Vec<T>>,
    rows: usize,
) -> Option<Vec<T>> {
    let mut joined = batches.recv().await?;
    while joined.len() < rows {
        match batches.recv().await {
            Some(batch) => joined.extend(batch),
            None => break,
        }
    }
    Some(joined)
}

#[cfg(test)]
mod copy_tests {
    use super::CopyText;

    #[test]
    fn copy_text_escapes_what_the_format_reserves() {
        let mut rows = CopyText::default();
        rows.text("a\tb\\c\nd\re").opt(None).int(-42);
        rows.end_row();
        rows.text("").time(
            chrono::DateTime::parse_from_rfc3339("2026-12-01T23:22:54.745123789Z")
                .unwrap()
                .to_utc(),
        );
        rows.end_row();
        assert_eq!(
            String::from_utf8(rows.into_bytes()).unwrap(),
            "a\\tb\\\\c\\nd\\re\t\\N\t-42\n\t2026-12-01 23:22:54.745123+00\n"
        );
    }
}
