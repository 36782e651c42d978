use std::time::Duration;

use crate::helpers::{assert_one_line_error, run_cli, spawn_listening, stderr, stdout, TestDb};
use crate::on_both_backends;

on_both_backends!(
    vendor_add_and_list,
    vendor_add_rejects_bad_input_naming_the_field,
    user_add_hashes_the_password,
    user_add_rejects_bad_input,
    serve_answers_health_and_pages,
);

#[test]
fn help_lists_every_command() {
    let dir = tempfile::tempdir().unwrap();
    let out = run_cli(dir.path(), None, &["--help"], None);
    assert!(out.status.success());
    let help = stdout(&out);
    for command in ["serve", "migrate", "vendor", "user"] {
        assert!(
            help.lines().any(|l| l.trim_start().starts_with(command)),
            "{command} missing from: {help}"
        );
    }
    let vendor_help = stdout(&run_cli(dir.path(), None, &["vendor", "--help"], None));
    assert!(vendor_help.contains("add") && vendor_help.contains("list"));
    // --help must not have touched a database.
    assert!(!dir.path().join("giftrecon.db").exists());
}

#[test]
fn default_is_a_wal_sqlite_file_in_the_working_directory() {
    let dir = tempfile::tempdir().unwrap();
    let out = run_cli(dir.path(), None, &["migrate"], None);
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(stdout(&out).contains("giftrecon.db is up to date"));
    let file = dir.path().join("giftrecon.db");
    assert!(file.is_file());
    let header = std::fs::read(&file).unwrap();
    // SQLite header bytes 18 and 19 are 2 when the database is in WAL mode.
    assert_eq!(&header[..16], b"SQLite format 3\0");
    assert_eq!((header[18], header[19]), (2, 2), "not in WAL mode");
    // Running again applies nothing new and still succeeds.
    assert!(run_cli(dir.path(), None, &["vendor", "list"], None)
        .status
        .success());
}

#[test]
fn malformed_database_url_is_one_clear_line() {
    let dir = tempfile::tempdir().unwrap();
    for (url, expect) in [
        (
            "mysql://root:hunter2@localhost/x",
            "mysql://root:***@localhost/x",
        ),
        ("postgres://u:pw@host:notaport/db", "port"),
        ("giftrecon.db", "not a database URL"),
    ] {
        let out = run_cli(dir.path(), Some(url), &["migrate"], None);
        let line = assert_one_line_error(&out);
        assert!(line.contains("DATABASE_URL"), "{line}");
        assert!(line.contains(expect), "{line}");
        assert!(
            !line.contains("hunter2") && !line.contains(":pw@"),
            "{line}"
        );
    }
}

#[test]
fn unreachable_database_is_one_clear_line() {
    let dir = tempfile::tempdir().unwrap();
    let out = run_cli(
        dir.path(),
        Some("postgres://app:secretpw@127.0.0.1:1/giftrecon"),
        &["vendor", "list"],
        None,
    );
    let line = assert_one_line_error(&out);
    assert!(line.contains("cannot connect to PostgreSQL"), "{line}");
    assert!(line.contains("127.0.0.1:1"), "{line}");
    assert!(!line.contains("secretpw"), "{line}");

    let out = run_cli(
        dir.path(),
        Some("sqlite:///nonexistent-dir/sub/giftrecon.db"),
        &["migrate"],
        None,
    );
    let line = assert_one_line_error(&out);
    assert!(line.contains("cannot open SQLite file"), "{line}");
}

#[test]
fn bad_config_file_is_one_clear_line() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("bad.toml"),
        "addr = \"127.0.0.1:3000\"\nlisten = 1\n",
    )
    .unwrap();
    let out = run_cli(dir.path(), None, &["--config", "bad.toml", "migrate"], None);
    let line = assert_one_line_error(&out);
    assert!(
        line.contains("bad.toml") && line.contains("line 2") && line.contains("listen"),
        "{line}"
    );

    let out = run_cli(
        dir.path(),
        None,
        &["--config", "missing.toml", "migrate"],
        None,
    );
    let line = assert_one_line_error(&out);
    assert!(line.contains("missing.toml"), "{line}");

    std::fs::write(
        dir.path().join("good.toml"),
        "database_url = \"sqlite://from-config.db\"\n",
    )
    .unwrap();
    let out = run_cli(
        dir.path(),
        None,
        &["--config", "good.toml", "migrate"],
        None,
    );
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(dir.path().join("from-config.db").is_file());
}

async fn vendor_add_and_list(db: TestDb) {
    let out = db.cli(&[
        "vendor",
        "add",
        "acme",
        "--base-url",
        "https://api.acme.example",
        "--webhook-secret",
        "whsec_first_secret",
        "--webhook-secret",
        "whsec_second_secret",
    ]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(stdout(&out).contains("added vendor acme (generic, 2 webhook secret(s))"));
    let out = db.cli(&["vendor", "add", "tango-2", "--kind", "Runa"]);
    assert!(out.status.success(), "{}", stderr(&out));

    let out = db.cli(&["vendor", "list"]);
    assert!(out.status.success(), "{}", stderr(&out));
    let list = stdout(&out);
    let acme = list.lines().find(|l| l.starts_with("acme ")).expect(&list);
    assert!(
        acme.contains("generic")
            && acme.contains(" 2 ")
            && acme.contains("https://api.acme.example"),
        "{acme}"
    );
    assert!(
        list.lines()
            .any(|l| l.starts_with("tango-2 ") && l.contains("runa")),
        "{list}"
    );
    assert!(!list.contains("whsec_"), "secrets shown: {list}");

    let again = db.cli(&["vendor", "add", "acme"]);
    let line = assert_one_line_error(&again);
    assert!(line.contains("vendor \"acme\" already exists"), "{line}");
}

async fn vendor_add_rejects_bad_input_naming_the_field(db: TestDb) {
    for (args, field) in [
        (vec!["vendor", "add", "Bad Id"], "vendor id"),
        (vec!["vendor", "add", "acme", "--kind", "paypal"], "--kind"),
        (
            vec!["vendor", "add", "acme", "--base-url", "ftp://x"],
            "--base-url",
        ),
        (
            vec!["vendor", "add", "acme", "--webhook-secret", ""],
            "--webhook-secret",
        ),
    ] {
        let out = db.cli(&args);
        let line = assert_one_line_error(&out);
        assert!(line.contains(field), "{args:?}: {line}");
    }
    assert!(stdout(&db.cli(&["vendor", "list"])).contains("no vendors yet"));
}

async fn user_add_hashes_the_password(db: TestDb) {
    let out = db.cli_with_stdin(
        &[
            "user",
            "add",
            "fiona",
            "--role",
            "finance_approver",
            "--password-stdin",
        ],
        Some("a long enough passphrase\n"),
    );
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(stdout(&out).contains("added user fiona (finance_approver)"));

    let pool = db.connect().await;
    let hash = app::storage::users::password_hash_of(
        &pool,
        &app::domain::Username::parse("FIONA").unwrap(),
    )
    .await
    .unwrap()
    .expect("user stored");
    assert!(
        hash.starts_with("$argon2id$v=19$m=19456,t=2,p=1$"),
        "{hash}"
    );
    assert!(app::server::password::verify(
        "a long enough passphrase",
        &hash
    ));

    let list = stdout(&db.cli(&["user", "list"]));
    assert!(
        list.lines()
            .any(|l| l.starts_with("fiona") && l.contains("finance_approver")),
        "{list}"
    );
    assert!(!list.contains("passphrase") && !list.contains("argon2"));
}

async fn user_add_rejects_bad_input(db: TestDb) {
    let out = db.cli_with_stdin(
        &[
            "user",
            "add",
            "sam",
            "--role",
            "superuser",
            "--password-stdin",
        ],
        Some("a long enough passphrase\n"),
    );
    let line = assert_one_line_error(&out);
    assert!(
        line.contains("--role") && line.contains("finance_preparer"),
        "{line}"
    );

    let out = db.cli_with_stdin(
        &[
            "user",
            "add",
            "sam",
            "--role",
            "support",
            "--password-stdin",
        ],
        Some("short\n"),
    );
    let line = assert_one_line_error(&out);
    assert!(
        line.contains("password") && line.contains("at least"),
        "{line}"
    );

    // No terminal and no --password-stdin: say how to do it instead of hanging.
    let out = db.cli(&["user", "add", "sam", "--role", "support"]);
    let line = assert_one_line_error(&out);
    assert!(line.contains("--password-stdin"), "{line}");
    assert!(!stdout(&db.cli(&["user", "list"])).contains("sam"));
}

/// The real binary, as an operator runs it: picks a port, serves pages, health and readiness.
async fn serve_answers_health_and_pages(db: TestDb) {
    let added = db.cli_with_stdin(
        &["user", "add", "ana", "--role", "admin", "--password-stdin"],
        Some("correct horse battery staple\n"),
    );
    assert!(added.status.success(), "{}", stderr(&added));
    let (mut child, base) = spawn_listening(
        db.dir.path(),
        &["serve", "--addr", "127.0.0.1:0"],
        &[("DATABASE_URL", db.url.as_str())],
    );
    let client = reqwest::Client::builder()
        .timeout(Duration::from_secs(10))
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    let health = client.get(format!("{base}/healthz")).send().await.unwrap();
    let ready = client.get(format!("{base}/readyz")).send().await.unwrap();
    // Pages need a session: sign in through the form as a browser would.
    let signed_in = client
        .post(format!("{base}/auth/login"))
        .header("origin", base.trim_end_matches('/'))
        .form(&[
            ("username", "ana"),
            ("password", "correct horse battery staple"),
        ])
        .send()
        .await
        .unwrap();
    let cookie = signed_in.headers()["set-cookie"]
        .to_str()
        .unwrap()
        .split(';')
        .next()
        .unwrap()
        .to_string();
    let page = client
        .get(format!("{base}/vendors"))
        .header("cookie", cookie)
        .send()
        .await
        .unwrap();
    let page_status = page.status();
    let page_html = page.text().await.unwrap();
    let _ = child.kill();
    let _ = child.wait();
    assert_eq!(health.status(), 200);
    assert_eq!(ready.status(), 200);
    assert_eq!(page_status, 200);
    assert!(page_html.contains("No vendors yet"), "{page_html}");
}

#[test]
fn bench_data_writes_both_files_and_the_expected_classes() {
    let dir = tempfile::tempdir().unwrap();
    let out = run_cli(
        dir.path(),
        None,
        &[
            "bench-data",
            "--orders",
            "500",
            "--out",
            "data",
            "--seed",
            "3",
        ],
        None,
    );
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(
        stdout(&out).contains("vendor records to data"),
        "{}",
        stdout(&out)
    );
    let expected: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(dir.path().join("data/expected.json")).unwrap(),
    )
    .unwrap();
    let orders = std::fs::read_to_string(dir.path().join("data/orders.csv")).unwrap();
    assert_eq!(
        orders.lines().count() as u64 - 1,
        expected["orders"].as_u64().unwrap()
    );
    assert!(orders
        .starts_with("idempotency_key,customer_id,brand_id,amount,currency,status,created_at\n"));
    // The same seed writes the same files.
    run_cli(
        dir.path(),
        None,
        &[
            "bench-data",
            "--orders",
            "500",
            "--out",
            "again",
            "--seed",
            "3",
        ],
        None,
    );
    assert_eq!(
        orders,
        std::fs::read_to_string(dir.path().join("again/orders.csv")).unwrap()
    );
    let bad = run_cli(
        dir.path(),
        None,
        &[
            "bench-data",
            "--orders",
            "5",
            "--out",
            "x",
            "--date",
            "12/01/2026",
        ],
        None,
    );
    assert!(!bad.status.success());
}
