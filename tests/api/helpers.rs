//! Test harness: a fresh database per test (a temporary SQLite file, or a new PostgreSQL
//! database), the app served in-process on an ephemeral port, and the CLI binary.

use std::net::SocketAddr;
use std::path::Path;
use std::process::{Command, Output, Stdio};

use app::server::AppState;
use app::storage::{DatabaseUrl, Db};
use tokio::sync::oneshot;

/// Generates `<name>::sqlite` and `<name>::postgres` tests from `async fn name(db: TestDb)`.
#[macro_export]
macro_rules! on_both_backends {
    ($($name:ident),+ $(,)?) => {$(
        mod $name {
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn sqlite() {
                super::$name($crate::helpers::TestDb::sqlite().await).await
            }
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn postgres() {
                super::$name($crate::helpers::TestDb::postgres().await).await
            }
        }
    )+};
}

/// The PostgreSQL server tests create their databases on (`GIFTRECON_TEST_PG` overrides).
pub fn postgres_server() -> String {
    std::env::var("GIFTRECON_TEST_PG")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432".to_string())
}

/// A database that exists for one test and is dropped after it.
pub struct TestDb {
    pub url: String,
    /// Working directory for the test (the SQLite file lives here).
    pub dir: tempfile::TempDir,
    pg_name: Option<String>,
}

impl TestDb {
    pub async fn sqlite() -> TestDb {
        let dir = tempfile::tempdir().expect("temporary directory");
        let url = format!("sqlite://{}", dir.path().join("test.db").display());
        TestDb {
            url,
            dir,
            pg_name: None,
        }
    }

    /// A new, empty PostgreSQL database. Fails the test if the server is unreachable: the test
    /// script decides up front whether PostgreSQL tests run at all.
    pub async fn postgres() -> TestDb {
        use sqlx::Connection;
        let name = format!("giftrecon_test_{}", uuid::Uuid::new_v4().simple());
        let admin_url = format!("{}/postgres", postgres_server());
        let mut conn = sqlx::PgConnection::connect(&admin_url)
            .await
            .unwrap_or_else(|e| panic!("PostgreSQL at {} is unreachable: {e}", postgres_server()));
        sqlx::query(&format!("CREATE DATABASE \"{name}\""))
            .execute(&mut conn)
            .await
            .expect("create test database");
        let _ = conn.close().await;
        TestDb {
            url: format!("{}/{name}", postgres_server()),
            dir: tempfile::tempdir().expect("temporary directory"),
            pg_name: Some(name),
        }
    }

    pub fn database_url(&self) -> DatabaseUrl {
        DatabaseUrl::parse(&self.url).expect("test URL parses")
    }

    pub async fn connect(&self) -> Db {
        Db::connect_and_migrate(&self.database_url())
            .await
            .expect("connect and migrate")
    }

    /// Runs the `giftrecon` binary against this database, in the test's directory.
    pub fn cli(&self, args: &[&str]) -> Output {
        self.cli_with_stdin(args, None)
    }

    pub fn cli_with_stdin(&self, args: &[&str], stdin: Option<&str>) -> Output {
        run_cli(self.dir.path(), Some(&self.url), args, stdin)
    }
}

impl Drop for TestDb {
    fn drop(&mut self) {
        let Some(name) = self.pg_name.take() else {
            return;
        };
        // Drop runs outside any async context we can rely on: use a thread with its own runtime.
        let admin_url = format!("{}/postgres", postgres_server());
        let _ = std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .expect("runtime");
            rt.block_on(async move {
                use sqlx::Connection;
                if let Ok(mut conn) = sqlx::PgConnection::connect(&admin_url).await {
                    let _ =
                        sqlx::query(&format!("DROP DATABASE IF EXISTS \"{name}\" WITH (FORCE)"))
                            .execute(&mut conn)
                            .await;
                    let _ = conn.close().await;
                }
            })
        })
        .join();
    }
}

/// The binary, in `dir`, with every variable giftrecon reads removed from its environment.
fn giftrecon_command(dir: &Path) -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_giftrecon"));
    command.current_dir(dir);
    for name in [
        "DATABASE_URL",
        "GIFTRECON_CONFIG",
        "GIFTRECON_ADDR",
        "GIFTRECON_LOG_FORMAT",
        "GIFTRECON_FAILPOINT",
        "GIFTRECON_SIM_WEBHOOK_SECRET",
        "RUST_LOG",
    ] {
        command.env_remove(name);
    }
    command
}

/// Runs the binary with a clean environment for the variables giftrecon reads.
pub fn run_cli(
    dir: &Path,
    database_url: Option<&str>,
    args: &[&str],
    stdin: Option<&str>,
) -> Output {
    use std::io::Write;
    let mut command = giftrecon_command(dir);
    command
        .args(args)
        .stdin(if stdin.is_some() {
            Stdio::piped()
        } else {
            Stdio::null()
        })
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    if let Some(url) = database_url {
        command.env("DATABASE_URL", url);
    }
    let mut child = command.spawn().expect("spawn giftrecon");
    if let Some(input) = stdin {
        child
            .stdin
            .take()
            .expect("stdin")
            .write_all(input.as_bytes())
            .expect("write stdin");
    }
    child.wait_with_output().expect("wait for giftrecon")
}

pub fn stdout(output: &Output) -> String {
    String::from_utf8_lossy(&output.stdout).into_owned()
}

pub fn stderr(output: &Output) -> String {
    String::from_utf8_lossy(&output.stderr).into_owned()
}

/// Asserts a command failed with exactly one `error:` line and no panic or backtrace.
pub fn assert_one_line_error(output: &Output) -> String {
    let err = stderr(output);
    assert!(
        !output.status.success(),
        "expected failure, got success; stderr: {err}"
    );
    assert!(
        !err.contains("panicked") && !err.contains("backtrace"),
        "{err}"
    );
    let lines: Vec<&str> = err.lines().filter(|l| !l.trim().is_empty()).collect();
    assert_eq!(lines.len(), 1, "expected one line, got: {err}");
    assert!(lines[0].starts_with("error: "), "{err}");
    lines[0].to_string()
}

/// The app served in-process on an ephemeral port.
pub struct TestApp {
    pub addr: SocketAddr,
    pub db: Db,
    pub client: reqwest::Client,
    shutdown: Option<oneshot::Sender<()>>,
    pub test_db: TestDb,
}

impl TestApp {
    pub async fn spawn(test_db: TestDb) -> TestApp {
        TestApp::spawn_with(test_db, Default::default()).await
    }

    pub async fn spawn_with(
        test_db: TestDb,
        security: app::server::auth::SecurityPolicy,
    ) -> TestApp {
        let db = test_db.connect().await;
        let listener = giftrecon::http::bind("127.0.0.1:0".parse().unwrap())
            .await
            .expect("bind");
        let addr = listener.local_addr().unwrap();
        let state = AppState {
            db: db.clone(),
            leptos_options: giftrecon::http::leptos_options(None, addr),
            security,
            poll_default_secs: Some(300),
        };
        giftrecon::telemetry::prometheus();
        let api = giftrecon::api::ApiState::new(db.clone(), Default::default(), Default::default());
        let (tx, rx) = oneshot::channel::<()>();
        tokio::spawn(giftrecon::http::serve(
            listener,
            giftrecon::http::router(state, api),
            async {
                let _ = rx.await;
            },
        ));
        TestApp {
            addr,
            db,
            // A stuck request fails its test with a message instead of hanging the whole run.
            client: reqwest::Client::builder()
                .redirect(reqwest::redirect::Policy::none())
                .timeout(std::time::Duration::from_secs(30))
                .build()
                .unwrap(),
            shutdown: Some(tx),
            test_db,
        }
    }

    pub fn url(&self, path: &str) -> String {
        format!("http://{}{}", self.addr, path)
    }

    pub async fn get(&self, path: &str) -> reqwest::Response {
        self.client
            .get(self.url(path))
            .send()
            .await
            .expect("request")
    }
}

impl Drop for TestApp {
    fn drop(&mut self) {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
    }
}

/// The audit event of something a test sets up directly in storage.
pub fn by_test(action: &str) -> app::storage::audit::AuditEvent {
    app::storage::audit::AuditEvent::new("test", action, "setup")
}

/// The password of every user the tests create.
pub const PASSWORD: &str = "correct horse battery staple";

/// One Argon2id hash of [`PASSWORD`], computed once per test process (hashing is slow).
fn password_hash() -> &'static str {
    static HASH: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    HASH.get_or_init(|| app::server::password::hash(PASSWORD).unwrap())
}

impl TestApp {
    /// A user with [`PASSWORD`]; returns their id.
    pub async fn add_user(&self, name: &str, role: app::domain::Role) -> i64 {
        let username = app::domain::Username::parse(name).unwrap();
        let hash = tokio::task::spawn_blocking(password_hash).await.unwrap();
        let event = app::storage::audit::AuditEvent::new(
            "test",
            "user_add",
            format!("user:{}", username.normalized()),
        );
        app::storage::users::insert_user(&self.db, &username, role, hash, &event)
            .await
            .unwrap()
    }

    /// Posts the sign-in form as a browser on this site would.
    pub async fn login(&self, name: &str, password: &str) -> reqwest::Response {
        self.client
            .post(self.url("/auth/login"))
            .header("origin", format!("http://{}", self.addr))
            .header("sec-fetch-site", "same-origin")
            .form(&[("username", name), ("password", password)])
            .send()
            .await
            .expect("request")
    }

    /// Signs in and returns the `Cookie` header value of the new session.
    pub async fn session(&self, name: &str) -> String {
        self.session_with(name, PASSWORD).await
    }

    /// Signs in with this password and returns the session's `Cookie` header value.
    pub async fn session_with(&self, name: &str, password: &str) -> String {
        let response = self.login(name, password).await;
        assert_eq!(response.status(), 303, "sign-in of {name} failed");
        let set_cookie = response.headers()["set-cookie"].to_str().unwrap();
        set_cookie.split(';').next().unwrap().to_string()
    }

    /// A user of `role` named after it, signed in: the session's `Cookie` header value.
    pub async fn signed_in(&self, role: app::domain::Role) -> String {
        self.add_user(role.as_str(), role).await;
        self.session(role.as_str()).await
    }

    /// Calls a server function the way the hydrated app does (JSON body, same origin).
    pub async fn call(&self, path: &str, cookie: Option<&str>) -> reqwest::Response {
        self.call_with(path, cookie, "{}").await
    }

    /// Calls a server function as the holder of `cookie`: the status and the body (JSON when
    /// it parses, else a string).
    pub async fn call_json(
        &self,
        path: &str,
        cookie: &str,
        body: serde_json::Value,
    ) -> (u16, serde_json::Value) {
        let response = self.call_with(path, Some(cookie), &body.to_string()).await;
        let status = response.status().as_u16();
        let text = response.text().await.unwrap();
        let value = serde_json::from_str(&text).unwrap_or(serde_json::Value::String(text));
        (status, value)
    }

    /// Calls a server function with these JSON arguments.
    pub async fn call_with(
        &self,
        path: &str,
        cookie: Option<&str>,
        body: &str,
    ) -> reqwest::Response {
        let mut request = self
            .client
            .post(self.url(path))
            .header("content-type", "application/json")
            .header("origin", format!("http://{}", self.addr))
            .header("sec-fetch-site", "same-origin")
            .body(body.to_string());
        if let Some(cookie) = cookie {
            request = request.header("cookie", cookie);
        }
        request.send().await.expect("request")
    }

    /// GET with a session cookie.
    pub async fn get_with(&self, path: &str, cookie: &str) -> reqwest::Response {
        self.client
            .get(self.url(path))
            .header("cookie", cookie)
            .send()
            .await
            .expect("request")
    }

    /// A vendor (generic, pointing at `base_url`) selling `brands`.
    pub async fn add_vendor(&self, id: &str, base_url: &str, brands: &[&str]) {
        use app::domain::{VendorId, VendorKind};
        use app::storage::vendors::{self, BaseUrl, NewVendor};
        let vendor = VendorId::parse(id).unwrap();
        vendors::insert_vendor(
            &self.db,
            &NewVendor {
                id: vendor.clone(),
                kind: VendorKind::Generic,
                base_url: Some(BaseUrl::parse(base_url).unwrap()),
                webhook_secrets: vec![],
                api_key: None,
            },
            &by_test("vendor_add"),
        )
        .await
        .unwrap();
        for brand in brands {
            app::storage::brands::add(&self.db, &vendor, brand, None)
                .await
                .unwrap();
        }
    }

    /// A fresh API token for `name`.
    pub async fn token(&self, name: &str) -> String {
        app::storage::tokens::create(&self.db, name, &by_test("token_create"))
            .await
            .unwrap()
    }

    pub async fn post_json(&self, path: &str, token: &str, body: &str) -> reqwest::Response {
        self.client
            .post(self.url(path))
            .bearer_auth(token)
            .header("content-type", "application/json")
            .body(body.to_string())
            .send()
            .await
            .expect("request")
    }

    pub async fn get_json(&self, path: &str, token: &str) -> reqwest::Response {
        self.client
            .get(self.url(path))
            .bearer_auth(token)
            .send()
            .await
            .expect("request")
    }

    /// Rows in a table (to prove that nothing was written).
    pub async fn count(&self, table: &str) -> i64 {
        let sql = format!("SELECT COUNT(*) FROM {table}");
        app::on_db!(&self.db, pool => sqlx::query_scalar(&sql).fetch_one(pool).await).unwrap()
    }
}

/// Starts the `giftrecon` binary in `dir` with a clean environment for the variables giftrecon
/// reads, plus `env`; returns the process and the first `http://` address it prints on stdout
/// (both `serve` and `vendor-sim` announce where they listen on their first line).
pub fn spawn_listening(
    dir: &Path,
    args: &[&str],
    env: &[(&str, &str)],
) -> (std::process::Child, String) {
    use std::io::{BufRead, BufReader};
    let mut command = giftrecon_command(dir);
    command
        .args(args)
        .envs(env.iter().copied())
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::null());
    let mut child = command.spawn().expect("spawn giftrecon");
    let mut line = String::new();
    BufReader::new(child.stdout.take().expect("stdout"))
        .read_line(&mut line)
        .expect("read the first line");
    let base = line
        .split_whitespace()
        .find(|w| w.starts_with("http://"))
        .unwrap_or_else(|| panic!("no address in {line:?}"))
        .to_string();
    (child, base)
}
