//! Daily close: clearing entries, maker-checker, locked days and the journal files.

use app::domain::journal::ExportFormat;
use app::domain::Role;
use app::server::close::{
    ApproveEntry, ExportEntry, ListClose, PostEntry, ProposeClose, SubmitEntry,
};
use app::storage::Db;
use chrono::NaiveDate;
use leptos::server_fn::ServerFn;
use serde_json::{json, Value};

use crate::helpers::{assert_one_line_error, stdout, TestApp};
use crate::on_both_backends;

on_both_backends!(
    lifecycle_with_two_people_closes_and_locks_the_day,
    self_approval_is_refused_even_from_a_second_session,
    approval_of_an_entry_changed_after_submission_is_refused,
    approving_twice_is_refused,
    concurrent_approvals_by_two_approvers_post_once,
    close_authorization_matrix,
    a_day_must_be_reconciled_and_input_is_checked,
    account_settings_reach_the_files_neutralized,
    daily_close_page_renders_for_finance,
    a_posted_entry_never_changes_while_the_rest_of_its_day_is_open,
);

const VENDOR: &str = "acme";

fn day(n: u32) -> NaiveDate {
    NaiveDate::from_ymd_opt(2026, 12, n).unwrap()
}

/// Everything a day needs before its close. For each `(currency, ours, theirs)`: one fulfilled
/// order of ours of `ours` minor units and one fulfilled vendor record of `theirs` (none for 0),
/// created at noon UTC on `day`. Call again to add late data.
pub async fn seed_day(db: &Db, vendor: &str, day: NaiveDate, rows: &[(&str, i64, i64)]) {
    let at = day.and_hms_opt(12, 0, 0).unwrap().and_utc();
    for (currency, ours, theirs) in rows {
        let key = uuid::Uuid::new_v4().simple().to_string();
        if *ours > 0 {
            app::on_db!(db, pool => {
                sqlx::query(
                    "INSERT INTO orders (id, owner, idempotency_key, request_hash, vendor_id,
                         vendor_key, customer_id, brand_id, amount_minor, currency, submission,
                         gl_state, vendor_order_id, vendor_status, source, created_at, updated_at)
                     VALUES ($1, 'test', $1, 'h', $2, $1, 'c1', 'b1', $3, $4, 'external',
                         'fulfilled', $5, 'fulfilled', 'import', $6, $6)",
                )
                .bind(&key)
                .bind(vendor)
                .bind(ours)
                .bind(currency)
                .bind(format!("v-{key}"))
                .bind(at)
                .execute(pool)
                .await
                .map(|_| ())
            })
            .unwrap();
        }
        if *theirs > 0 {
            app::on_db!(db, pool => {
                sqlx::query(
                    "INSERT INTO vendor_records (vendor_id, vendor_order_id, vendor_key, brand_id,
                         amount_minor, currency, status, gl_state, source, created_at, updated_at,
                         first_seen_at, last_seen_at, occurred_at)
                     VALUES ($1, $2, $3, 'b1', $4, $5, 'fulfilled', 'fulfilled', 'file', $6, $6,
                         $6, $6, $6)",
                )
                .bind(vendor)
                .bind(format!("v-{key}"))
                .bind(&key)
                .bind(theirs)
                .bind(currency)
                .bind(at)
                .execute(pool)
                .await
                .map(|_| ())
            })
            .unwrap();
        }
    }
    // Close reads the day's reconciled totals: reconcile it, as finance would after new data.
    let vendor_id = app::domain::VendorId::parse(vendor).unwrap();
    let vendor = app::storage::vendors::get_vendor(db, &vendor_id)
        .await
        .unwrap();
    app::storage::reconciliation::run(
        db,
        &vendor,
        &app::storage::reconciliation::DayWindow::utc(day),
        Default::default(),
        "test",
    )
    .await
    .unwrap();
}

async fn app_with_vendor(db: crate::helpers::TestDb) -> TestApp {
    let app = TestApp::spawn(db).await;
    app.add_vendor(VENDOR, "http://127.0.0.1:9", &[]).await;
    app
}

async fn ok(app: &TestApp, path: &str, cookie: &str, body: Value) -> Value {
    let (status, value) = app.call_json(path, cookie, body.clone()).await;
    assert_eq!(status, 200, "{path} {body}: {value}");
    value
}

/// Asserts a refusal with `status` whose message contains `text`.
async fn refused(app: &TestApp, path: &str, cookie: &str, body: Value, status: u16, text: &str) {
    let (got, value) = app.call_json(path, cookie, body.clone()).await;
    assert_eq!(got, status, "{path} {body}: {value}");
    assert!(
        value.to_string().contains(text),
        "{path}: {value} lacks {text:?}"
    );
}

fn day_body(d: NaiveDate) -> Value {
    json!({"vendor": VENDOR, "date": d.to_string()})
}

async fn propose(app: &TestApp, cookie: &str, d: NaiveDate) -> Value {
    ok(app, ProposeClose::PATH, cookie, day_body(d)).await
}

fn entry<'a>(view: &'a Value, currency: &str) -> &'a Value {
    view["entries"]
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["currency"] == currency)
        .unwrap_or_else(|| panic!("no {currency} entry in {view}"))
}

fn id_of(entry: &Value) -> i64 {
    entry["id"].as_i64().unwrap()
}

fn hash_of(entry: &Value) -> String {
    entry["content_hash"].as_str().unwrap().to_string()
}

async fn audit_count(app: &TestApp, action: &str) -> i64 {
    app::on_db!(&app.db, pool => {
        sqlx::query_scalar("SELECT COUNT(*) FROM audit_log WHERE action = $1")
            .bind(action)
            .fetch_one(pool)
            .await
    })
    .unwrap()
}

/// Two people, three currencies (2, 3 and 0 decimals): propose, submit, approve, post; the day
/// closes, refuses further proposals, and its files reproduce byte for byte.
async fn lifecycle_with_two_people_closes_and_locks_the_day(db: crate::helpers::TestDb) {
    let app = app_with_vendor(db).await;
    let d = day(3);
    seed_day(
        &app.db,
        VENDOR,
        d,
        &[
            ("USD", 10000, 10000),
            ("USD", 5000, 7500),
            ("KWD", 10500, 10000),
            ("JPY", 5000, 5000),
        ],
    )
    .await;
    let preparer = app.signed_in(Role::FinancePreparer).await;
    let approver = app.signed_in(Role::FinanceApprover).await;

    let view = propose(&app, &preparer, d).await;
    assert_eq!(view["reconciled"], true);
    assert_eq!(view["locked"], false);
    let totals = view["totals"].as_array().unwrap();
    let usd = totals.iter().find(|t| t["currency"] == "USD").unwrap();
    assert_eq!(
        usd,
        &json!({"currency": "USD", "internal_count": 2, "internal_amount": "150.00",
                "vendor_count": 2, "vendor_amount": "175.00", "variance": "25.00"})
    );
    let kwd = totals.iter().find(|t| t["currency"] == "KWD").unwrap();
    assert_eq!(kwd["variance"], "-0.500");
    let usd_entry = entry(&view, "USD");
    assert_eq!(usd_entry["state"], "draft");
    assert_eq!(usd_entry["prepared_by"], "finance_preparer");
    assert_eq!(usd_entry["debit_total"], "175.00");
    assert_eq!(usd_entry["credit_total"], "175.00");
    let lines = usd_entry["lines"].as_array().unwrap();
    assert_eq!(lines.len(), 3);
    assert_eq!(lines[2]["account_code"], "1999");
    assert_eq!(lines[2]["debit"], "25.00");
    assert_eq!(entry(&view, "KWD")["lines"][2]["credit"], "0.500");
    assert_eq!(entry(&view, "JPY")["lines"].as_array().unwrap().len(), 2);

    // The approver sees the same thing.
    let seen = ok(&app, ListClose::PATH, &approver, day_body(d)).await;
    assert_eq!(seen["entries"], view["entries"]);

    let entries: Vec<(i64, String)> = view["entries"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| (id_of(e), hash_of(e)))
        .collect();
    // Not yet posted: no files.
    refused(
        &app,
        ExportEntry::PATH,
        &preparer,
        json!({"id": entries[0].0, "format": "qbo"}),
        409,
        "only posted entries can be exported",
    )
    .await;
    for (i, (id, hash)) in entries.iter().enumerate() {
        let submitted = ok(&app, SubmitEntry::PATH, &preparer, json!({"id": id})).await;
        assert_eq!(submitted["state"], "submitted");
        assert_eq!(submitted["submitted_by"], "finance_preparer");
        // Posting before approval is refused.
        refused(
            &app,
            PostEntry::PATH,
            &approver,
            json!({"id": id}),
            409,
            "only approved entries can be posted",
        )
        .await;
        let approved = ok(
            &app,
            ApproveEntry::PATH,
            &approver,
            json!({"id": id, "reviewed_hash": hash}),
        )
        .await;
        assert_eq!(approved["state"], "approved");
        assert_eq!(approved["approved_by"], "finance_approver");
        let posted = ok(&app, PostEntry::PATH, &approver, json!({"id": id})).await;
        assert_eq!(posted["state"], "posted");
        let locked = app::storage::journal::is_locked(&app.db, VENDOR, d)
            .await
            .unwrap();
        assert_eq!(locked, i == entries.len() - 1, "after posting entry {i}");
    }
    let view = ok(&app, ListClose::PATH, &preparer, day_body(d)).await;
    assert_eq!(view["locked"], true);

    // Each file is what the domain writes for the entry, and comes back identical every time.
    let mut files = Vec::new();
    for (id, _) in &entries {
        let stored = app::storage::journal::get(&app.db, *id)
            .await
            .unwrap()
            .unwrap();
        for format in ExportFormat::ALL {
            let text = ok(
                &app,
                ExportEntry::PATH,
                &preparer,
                json!({"id": id, "format": format.as_str()}),
            )
            .await;
            let text = text.as_str().unwrap().to_string();
            assert_eq!(
                text,
                format.render(&stored.journal_no(), &stored.clearing_entry())
            );
            files.push((*id, format, text));
        }
    }
    let xero_usd = &files
        .iter()
        .find(|(id, f, _)| *id == id_of(entry(&view, "USD")) && *f == ExportFormat::Xero)
        .unwrap()
        .2;
    assert!(xero_usd.contains(",2010,Tax Exempt,-175.00,"), "{xero_usd}");

    // A locked day refuses proposals, even with late vendor data, and changes nothing.
    seed_day(&app.db, VENDOR, d, &[("USD", 0, 999)]).await;
    refused(
        &app,
        ProposeClose::PATH,
        &preparer,
        day_body(d),
        409,
        "day 2026-12-03 is closed for vendor acme",
    )
    .await;
    for (id, format, text) in &files {
        let again = ok(
            &app,
            ExportEntry::PATH,
            &approver,
            json!({"id": id, "format": format.as_str()}),
        )
        .await;
        assert_eq!(again.as_str().unwrap(), text, "{format} of {id} changed");
    }

    // The CLI shows the closed day and writes the day's file from the stored ones.
    let show = app
        .test_db
        .cli(&["close", "show", "--vendor", VENDOR, "--date", "2026-12-03"]);
    assert!(show.status.success(), "{}", crate::helpers::stderr(&show));
    let shown = stdout(&show);
    assert!(shown.contains("closed (every entry posted)"), "{shown}");
    assert!(
        shown.contains("USD") && shown.contains("25.00") && shown.contains("posted"),
        "{shown}"
    );
    let out = app.test_db.dir.path().join("qbo.csv");
    let export = app.test_db.cli(&[
        "close",
        "export",
        "--vendor",
        VENDOR,
        "--date",
        "2026-12-03",
        "--format",
        "qbo",
        "--out",
        out.to_str().unwrap(),
    ]);
    assert!(
        export.status.success(),
        "{}",
        crate::helpers::stderr(&export)
    );
    let written = std::fs::read_to_string(&out).unwrap();
    let qbo: Vec<&str> = files
        .iter()
        .filter(|(_, f, _)| *f == ExportFormat::Qbo)
        .map(|(_, _, t)| t.as_str())
        .collect();
    // Entries are listed by currency, as their files are combined.
    assert_eq!(written, app::domain::journal::combine_exports(qbo));
    let printed = app.test_db.cli(&[
        "close",
        "export",
        "--vendor",
        VENDOR,
        "--date",
        "2026-12-03",
        "--format",
        "qbo",
    ]);
    assert_eq!(stdout(&printed), written);

    // Every step is in the audit trail.
    assert_eq!(audit_count(&app, "close_propose").await, 1);
    assert_eq!(audit_count(&app, "journal_submit").await, 3);
    assert_eq!(audit_count(&app, "journal_approve").await, 3);
    assert_eq!(audit_count(&app, "journal_post").await, 3);
    assert_eq!(audit_count(&app, "day_close").await, 1);
    assert!(audit_count(&app, "journal_export").await >= 20);
    // The stored files cannot be rewritten.
    let rewrite = app::on_db!(&app.db, pool => {
        sqlx::query("UPDATE journal_exports SET content = 'x'").execute(pool).await.map(|_| ())
    });
    assert!(rewrite.is_err());
}

async fn self_approval_is_refused_even_from_a_second_session(db: crate::helpers::TestDb) {
    let app = app_with_vendor(db).await;
    let d = day(4);
    seed_day(
        &app.db,
        VENDOR,
        d,
        &[("USD", 1000, 1200), ("EUR", 500, 500)],
    )
    .await;
    let preparer = app.signed_in(Role::FinancePreparer).await;
    app.add_user("ana", Role::FinanceApprover).await;
    app.add_user("ben", Role::FinanceApprover).await;
    let ana = app.session("ana").await;
    let ben = app.session("ben").await;

    // The preparer proposes; ana (an approver) submits; ana may then not approve it.
    let view = propose(&app, &preparer, d).await;
    let usd = entry(&view, "USD");
    ok(&app, SubmitEntry::PATH, &ana, json!({"id": id_of(usd)})).await;
    let approve = json!({"id": id_of(usd), "reviewed_hash": hash_of(usd)});
    refused(
        &app,
        ApproveEntry::PATH,
        &ana,
        approve.clone(),
        403,
        "another finance approver must approve it",
    )
    .await;
    // Nor from a second session of hers (another browser), nor spelled in capitals.
    let ana_again = app.session("ANA").await;
    assert_ne!(ana_again, ana);
    refused(
        &app,
        ApproveEntry::PATH,
        &ana_again,
        approve.clone(),
        403,
        "another finance approver",
    )
    .await;
    // Nobody else approved in the meantime.
    let stored = app::storage::journal::get(&app.db, id_of(usd))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(stored.state.as_str(), "submitted");
    let approved = ok(&app, ApproveEntry::PATH, &ben, approve).await;
    assert_eq!(approved["approved_by"], "ben");
    // Both refusals are on record, naming who tried.
    let refusals: Vec<String> = app::on_db!(&app.db, pool => {
        sqlx::query_scalar("SELECT actor FROM audit_log WHERE action = 'journal_approve_refused'")
            .fetch_all(pool)
            .await
    })
    .unwrap();
    assert_eq!(refusals, vec!["ana".to_string(), "ana".to_string()]);

    // An approver who prepared an entry may not approve it either, whoever submitted it.
    seed_day(&app.db, VENDOR, day(5), &[("USD", 700, 700)]).await;
    let view = propose(&app, &ben, day(5)).await;
    let usd = entry(&view, "USD");
    ok(
        &app,
        SubmitEntry::PATH,
        &preparer,
        json!({"id": id_of(usd)}),
    )
    .await;
    let approve = json!({"id": id_of(usd), "reviewed_hash": hash_of(usd)});
    refused(
        &app,
        ApproveEntry::PATH,
        &ben,
        approve.clone(),
        403,
        "you prepared or submitted",
    )
    .await;
    ok(&app, ApproveEntry::PATH, &ana, approve).await;

    // The storage rule holds without the server in front of it.
    let err = app::storage::journal::approve(
        &app.db,
        id_of(entry(&propose(&app, &preparer, d).await, "EUR")),
        "x",
        &app::storage::journal::Actor {
            username: "FINANCE_PREPARER".into(),
            role: Role::FinanceApprover,
        },
    )
    .await
    .unwrap_err();
    assert!(
        err.to_string().contains("you prepared or submitted"),
        "{err}"
    );
}

async fn approval_of_an_entry_changed_after_submission_is_refused(db: crate::helpers::TestDb) {
    let app = app_with_vendor(db).await;
    let d = day(6);
    seed_day(
        &app.db,
        VENDOR,
        d,
        &[("USD", 1000, 1000), ("GBP", 300, 400)],
    )
    .await;
    let preparer = app.signed_in(Role::FinancePreparer).await;
    let approver = app.signed_in(Role::FinanceApprover).await;
    let view = propose(&app, &preparer, d).await;
    let usd = entry(&view, "USD");
    let (id, reviewed) = (id_of(usd), hash_of(usd));
    ok(&app, SubmitEntry::PATH, &preparer, json!({"id": id})).await;

    // Late vendor data arrives; proposing again changes the submitted entry: back to draft.
    seed_day(&app.db, VENDOR, d, &[("USD", 0, 250)]).await;
    let view = propose(&app, &preparer, d).await;
    let changed = entry(&view, "USD");
    assert_eq!(changed["state"], "draft");
    assert_eq!(changed["submitted_by"], Value::Null);
    assert_ne!(hash_of(changed), reviewed);
    refused(
        &app,
        ApproveEntry::PATH,
        &approver,
        json!({"id": id, "reviewed_hash": reviewed}),
        409,
        "changed after it was submitted",
    )
    .await;
    // Resubmitted, it still cannot be approved on the strength of the old review.
    ok(&app, SubmitEntry::PATH, &preparer, json!({"id": id})).await;
    refused(
        &app,
        ApproveEntry::PATH,
        &approver,
        json!({"id": id, "reviewed_hash": reviewed}),
        409,
        "changed after",
    )
    .await;
    let approved = ok(
        &app,
        ApproveEntry::PATH,
        &approver,
        json!({"id": id, "reviewed_hash": hash_of(changed)}),
    )
    .await;
    assert_eq!(approved["state"], "approved");
    // Proposing an unchanged day leaves approved entries alone.
    let again = propose(&app, &preparer, d).await;
    assert_eq!(entry(&again, "USD")["state"], "approved");

    // A line edited behind the application's back is caught too.
    let gbp = entry(&again, "GBP");
    ok(
        &app,
        SubmitEntry::PATH,
        &preparer,
        json!({"id": id_of(gbp)}),
    )
    .await;
    app::on_db!(&app.db, pool => {
        sqlx::query("UPDATE journal_lines SET amount_minor = amount_minor + 1 WHERE entry_id = $1 AND line_no = 1")
            .bind(id_of(gbp))
            .execute(pool)
            .await
            .map(|_| ())
    })
    .unwrap();
    refused(
        &app,
        ApproveEntry::PATH,
        &approver,
        json!({"id": id_of(gbp), "reviewed_hash": hash_of(gbp)}),
        409,
        "changed after",
    )
    .await;
}

async fn approving_twice_is_refused(db: crate::helpers::TestDb) {
    let app = app_with_vendor(db).await;
    let d = day(7);
    seed_day(&app.db, VENDOR, d, &[("USD", 1000, 900)]).await;
    let preparer = app.signed_in(Role::FinancePreparer).await;
    let approver = app.signed_in(Role::FinanceApprover).await;
    app.add_user("ben", Role::FinanceApprover).await;
    let ben = app.session("ben").await;
    let usd = entry(&propose(&app, &preparer, d).await, "USD").clone();
    let body = json!({"id": id_of(&usd), "reviewed_hash": hash_of(&usd)});
    refused(
        &app,
        ApproveEntry::PATH,
        &approver,
        body.clone(),
        409,
        "is draft: only submitted entries can be approved",
    )
    .await;
    ok(
        &app,
        SubmitEntry::PATH,
        &preparer,
        json!({"id": id_of(&usd)}),
    )
    .await;
    ok(&app, ApproveEntry::PATH, &approver, body.clone()).await;
    refused(
        &app,
        ApproveEntry::PATH,
        &approver,
        body.clone(),
        409,
        "is approved: only submitted entries can be approved",
    )
    .await;
    refused(&app, ApproveEntry::PATH, &ben, body, 409, "is approved").await;
    refused(
        &app,
        SubmitEntry::PATH,
        &preparer,
        json!({"id": id_of(&usd)}),
        409,
        "only draft entries can be submitted",
    )
    .await;
    assert_eq!(audit_count(&app, "journal_approve").await, 1);
    refused(
        &app,
        ApproveEntry::PATH,
        &ben,
        json!({"id": 999_999, "reviewed_hash": "x"}),
        404,
        "journal entry 999999 not found",
    )
    .await;
}

async fn concurrent_approvals_by_two_approvers_post_once(db: crate::helpers::TestDb) {
    let app = app_with_vendor(db).await;
    let d = day(8);
    seed_day(
        &app.db,
        VENDOR,
        d,
        &[("USD", 1000, 1100), ("EUR", 2000, 2000), ("JPY", 300, 200)],
    )
    .await;
    let preparer = app.signed_in(Role::FinancePreparer).await;
    app.add_user("ana", Role::FinanceApprover).await;
    app.add_user("ben", Role::FinanceApprover).await;
    let ana = app.session("ana").await;
    let ben = app.session("ben").await;
    let view = propose(&app, &preparer, d).await;
    for e in view["entries"].as_array().unwrap() {
        let id = id_of(e);
        ok(&app, SubmitEntry::PATH, &preparer, json!({"id": id})).await;
        let body = json!({"id": id, "reviewed_hash": hash_of(e)});
        let (a, b) = tokio::join!(
            app.call_json(ApproveEntry::PATH, &ana, body.clone()),
            app.call_json(ApproveEntry::PATH, &ben, body.clone()),
        );
        let mut statuses = [a.0, b.0];
        statuses.sort();
        assert_eq!(statuses, [200, 409], "{a:?} {b:?}");
        let (a, b) = tokio::join!(
            app.call_json(PostEntry::PATH, &ana, json!({"id": id})),
            app.call_json(PostEntry::PATH, &ben, json!({"id": id})),
        );
        let mut statuses = [a.0, b.0];
        statuses.sort();
        assert_eq!(statuses, [200, 409], "{a:?} {b:?}");
        let files: i64 = app::on_db!(&app.db, pool => {
            sqlx::query_scalar("SELECT COUNT(*) FROM journal_exports WHERE entry_id = $1")
                .bind(id)
                .fetch_one(pool)
                .await
        })
        .unwrap();
        assert_eq!(files, 3);
    }
    assert_eq!(audit_count(&app, "journal_approve").await, 3);
    assert_eq!(audit_count(&app, "journal_post").await, 3);
    assert_eq!(audit_count(&app, "day_close").await, 1);
    assert_eq!(app.count("closed_days").await, 1);
}

/// Each role × each close function: allowed (200) or 403, with every allowed call really doing
/// its step. Each role works on its own day, with helpers doing the steps a role may not.
async fn close_authorization_matrix(db: crate::helpers::TestDb) {
    let app = app_with_vendor(db).await;
    app.add_user("helper_prep", Role::FinancePreparer).await;
    app.add_user("helper_appr", Role::FinanceApprover).await;
    let helper_prep = app.session("helper_prep").await;
    let helper_appr = app.session("helper_appr").await;
    let allowed = |access: &[Role], role: Role| if access.contains(&role) { 200 } else { 403 };
    use app::server::access;
    for (n, role) in [
        Role::Support,
        Role::FinancePreparer,
        Role::FinanceApprover,
        Role::Admin,
    ]
    .into_iter()
    .enumerate()
    {
        let cookie = app.signed_in(role).await;
        let d = day(10 + n as u32);
        seed_day(
            &app.db,
            VENDOR,
            d,
            &[("USD", 1000, 1500), ("EUR", 800, 800)],
        )
        .await;
        let view = propose(&app, &helper_prep, d).await;
        let (usd, eur) = (entry(&view, "USD").clone(), entry(&view, "EUR").clone());
        let expect = async |name: &str, path: &str, body: Value, access: &[Role]| {
            let (status, value) = app.call_json(path, &cookie, body).await;
            let want = allowed(access, role);
            assert_eq!(status, want, "{role} → {name}: {value}");
            if want == 403 {
                assert!(
                    value.to_string().contains("your role does not allow this"),
                    "{value}"
                );
            }
            status == 200
        };
        expect(
            "list_close",
            ListClose::PATH,
            day_body(d),
            access::VIEW_CLOSE,
        )
        .await;
        expect(
            "propose_close",
            ProposeClose::PATH,
            day_body(d),
            access::PREPARE_CLOSE,
        )
        .await;
        // Submit is tried on EUR; USD is submitted by the helper so the role can approve it.
        if !expect(
            "submit_entry",
            SubmitEntry::PATH,
            json!({"id": id_of(&eur)}),
            access::SUBMIT_ENTRY,
        )
        .await
        {
            ok(
                &app,
                SubmitEntry::PATH,
                &helper_prep,
                json!({"id": id_of(&eur)}),
            )
            .await;
        }
        ok(
            &app,
            SubmitEntry::PATH,
            &helper_prep,
            json!({"id": id_of(&usd)}),
        )
        .await;
        let approve = json!({"id": id_of(&usd), "reviewed_hash": hash_of(&usd)});
        if !expect(
            "approve_entry",
            ApproveEntry::PATH,
            approve.clone(),
            access::APPROVE_ENTRY,
        )
        .await
        {
            ok(&app, ApproveEntry::PATH, &helper_appr, approve).await;
        }
        if !expect(
            "post_entry",
            PostEntry::PATH,
            json!({"id": id_of(&usd)}),
            access::POST_ENTRY,
        )
        .await
        {
            ok(
                &app,
                PostEntry::PATH,
                &helper_appr,
                json!({"id": id_of(&usd)}),
            )
            .await;
        }
        expect(
            "export_entry",
            ExportEntry::PATH,
            json!({"id": id_of(&usd), "format": "xero"}),
            access::EXPORT_ENTRY,
        )
        .await;
    }
    // Support may not export financial files; approving and posting are for approvers only.
    assert!(!access::EXPORT_ENTRY.contains(&Role::Support));
    assert_eq!(access::APPROVE_ENTRY, &[Role::FinanceApprover]);
    // Anonymous callers are asked to sign in.
    let anonymous = app
        .call_with(ListClose::PATH, None, &day_body(day(10)).to_string())
        .await;
    assert_eq!(anonymous.status(), 401);
}

async fn a_day_must_be_reconciled_and_input_is_checked(db: crate::helpers::TestDb) {
    let app = app_with_vendor(db).await;
    let preparer = app.signed_in(Role::FinancePreparer).await;
    refused(
        &app,
        ProposeClose::PATH,
        &preparer,
        day_body(day(20)),
        409,
        "reconcile vendor acme for 2026-12-20 first",
    )
    .await;
    let view = ok(&app, ListClose::PATH, &preparer, day_body(day(20))).await;
    assert_eq!(view["reconciled"], false);
    assert_eq!(view["entries"], json!([]));
    refused(
        &app,
        ProposeClose::PATH,
        &preparer,
        json!({"vendor": VENDOR, "date": "2026-13-01"}),
        400,
        "is not a date; use YYYY-MM-DD",
    )
    .await;
    refused(
        &app,
        ListClose::PATH,
        &preparer,
        json!({"vendor": "nobody", "date": "2026-12-01"}),
        404,
        "nobody",
    )
    .await;
    refused(
        &app,
        ExportEntry::PATH,
        &preparer,
        json!({"id": 1, "format": "pdf"}),
        400,
        "format: unknown export format",
    )
    .await;
    let show = app
        .test_db
        .cli(&["close", "show", "--vendor", VENDOR, "--date", "2026-12-20"]);
    assert!(
        stdout(&show).contains("not reconciled yet: reconcile vendor acme for 2026-12-20 first"),
        "{}",
        stdout(&show)
    );
    let export = app.test_db.cli(&[
        "close",
        "export",
        "--vendor",
        VENDOR,
        "--date",
        "2026-12-20",
        "--format",
        "xero",
    ]);
    let line = assert_one_line_error(&export);
    assert!(
        line.contains("vendor acme has no posted journal entries for 2026-12-20"),
        "{line}"
    );
    let export = app.test_db.cli(&[
        "close",
        "export",
        "--vendor",
        VENDOR,
        "--date",
        "2026-12-20",
        "--format",
        "csv",
    ]);
    assert!(assert_one_line_error(&export).contains("--format"));
}

/// Accounts set on the CLI (audited) are used by the next proposal; hostile account names end up
/// neutralized in the files while amounts stay numbers.
async fn account_settings_reach_the_files_neutralized(db: crate::helpers::TestDb) {
    let app = app_with_vendor(db).await;
    let bad = app
        .test_db
        .cli(&["vendor", "set", VENDOR, "--clearing-account", "11 90"]);
    assert!(assert_one_line_error(&bad).contains("--clearing-account"));
    let set = app.test_db.cli(&[
        "vendor",
        "set",
        VENDOR,
        "--clearing-account",
        "1200:=HYPERLINK(\"http://evil.example\",\"click\")",
        "--suspense-account",
        "1998:@SUM(A1:A9)",
    ]);
    assert!(set.status.success(), "{}", crate::helpers::stderr(&set));
    assert_eq!(audit_count(&app, "vendor_gl_accounts").await, 1);
    let accounts =
        app::storage::journal::accounts(&app.db, &app::domain::VendorId::parse(VENDOR).unwrap())
            .await
            .unwrap();
    assert_eq!(accounts.payable.code(), "2010");
    assert_eq!(accounts.suspense.name(), "@SUM(A1:A9)");

    let d = day(21);
    seed_day(&app.db, VENDOR, d, &[("USD", 1000, 900)]).await;
    let preparer = app.signed_in(Role::FinancePreparer).await;
    let approver = app.signed_in(Role::FinanceApprover).await;
    let usd = entry(&propose(&app, &preparer, d).await, "USD").clone();
    assert_eq!(usd["lines"][0]["account_code"], "1200");
    ok(
        &app,
        SubmitEntry::PATH,
        &preparer,
        json!({"id": id_of(&usd)}),
    )
    .await;
    ok(
        &app,
        ApproveEntry::PATH,
        &approver,
        json!({"id": id_of(&usd), "reviewed_hash": hash_of(&usd)}),
    )
    .await;
    ok(&app, PostEntry::PATH, &approver, json!({"id": id_of(&usd)})).await;
    let qbo = ok(
        &app,
        ExportEntry::PATH,
        &preparer,
        json!({"id": id_of(&usd), "format": "qbo"}),
    )
    .await;
    let qbo = qbo.as_str().unwrap();
    assert!(
        qbo.contains(",\"'=HYPERLINK(\"\"http://evil.example\"\",\"\"click\"\")\",10.00,,"),
        "{qbo}"
    );
    assert!(qbo.contains(",'@SUM(A1:A9),,1.00,"), "{qbo}");
    let xero = ok(
        &app,
        ExportEntry::PATH,
        &preparer,
        json!({"id": id_of(&usd), "format": "xero"}),
    )
    .await;
    let xero = xero.as_str().unwrap();
    assert!(xero.contains(",2010,Tax Exempt,-9.00,"), "{xero}");
    assert!(xero.contains(",1998,Tax Exempt,-1.00,"), "{xero}");
}

async fn daily_close_page_renders_for_finance(db: crate::helpers::TestDb) {
    let app = app_with_vendor(db).await;
    let preparer = app.signed_in(Role::FinancePreparer).await;
    let response = app.get_with("/close", &preparer).await;
    assert_eq!(response.status(), 200);
    let html = response.text().await.unwrap();
    for text in [
        "<h1>Daily close</h1>",
        "<label for=\"close-vendor\">Vendor</label>",
        "<label for=\"close-date\">Business day</label>",
        ">Propose</button>",
        "Choose a vendor and a day.",
    ] {
        assert!(html.contains(text), "{text} missing: {html}");
    }
    assert!(!html.contains("not available in this version"), "{html}");
}

async fn a_posted_entry_never_changes_while_the_rest_of_its_day_is_open(
    db: crate::helpers::TestDb,
) {
    use app::storage::journal::{self, Actor, ProposeChange};
    let app = app_with_vendor(db).await;
    let d = day(22);
    seed_day(
        &app.db,
        VENDOR,
        d,
        &[("USD", 1000, 1000), ("EUR", 500, 600)],
    )
    .await;
    let preparer = app.signed_in(Role::FinancePreparer).await;
    let approver = app.signed_in(Role::FinanceApprover).await;
    let view = propose(&app, &preparer, d).await;
    let usd = entry(&view, "USD").clone();
    ok(
        &app,
        SubmitEntry::PATH,
        &preparer,
        json!({"id": id_of(&usd)}),
    )
    .await;
    ok(
        &app,
        ApproveEntry::PATH,
        &approver,
        json!({"id": id_of(&usd), "reviewed_hash": hash_of(&usd)}),
    )
    .await;
    ok(&app, PostEntry::PATH, &approver, json!({"id": id_of(&usd)})).await;
    let files = ok(
        &app,
        ExportEntry::PATH,
        &preparer,
        json!({"id": id_of(&usd), "format": "generic"}),
    )
    .await;
    // EUR is still open, so the day is too.
    assert!(!journal::is_locked(&app.db, VENDOR, d).await.unwrap());

    // Late data for both currencies: EUR's draft follows it, the posted USD entry does not.
    seed_day(&app.db, VENDOR, d, &[("USD", 0, 300), ("EUR", 0, 100)]).await;
    let totals = app::storage::reconciliation::day_totals(&app.db, VENDOR, d)
        .await
        .unwrap()
        .unwrap();
    let actor = Actor {
        username: "finance_preparer".into(),
        role: Role::FinancePreparer,
    };
    let vendor = app::domain::VendorId::parse(VENDOR).unwrap();
    let outcomes = journal::propose(&app.db, &vendor, d, &totals, &actor)
        .await
        .unwrap();
    let change = |code: &str| {
        outcomes
            .iter()
            .find(|o| o.currency.code() == code)
            .map(|o| o.change)
            .unwrap()
    };
    assert_eq!(change("USD"), ProposeChange::PostedDiffers);
    assert!(matches!(change("EUR"), ProposeChange::Updated { .. }));
    let after = journal::get(&app.db, id_of(&usd)).await.unwrap().unwrap();
    assert_eq!(after.state.as_str(), "posted");
    assert_eq!(after.content_hash, hash_of(&usd));
    let again = ok(
        &app,
        ExportEntry::PATH,
        &preparer,
        json!({"id": id_of(&usd), "format": "generic"}),
    )
    .await;
    assert_eq!(again, files);
    // The EUR entry is a draft with the new totals (vendor 7.00 against our 5.00).
    let eur = entry(
        &ok(&app, ListClose::PATH, &preparer, day_body(d)).await,
        "EUR",
    )
    .clone();
    assert_eq!(eur["state"], "draft");
    assert_eq!(eur["credit_total"], "7.00");
    // Only a finance role may propose, even calling storage directly.
    let support = Actor {
        username: "support".into(),
        role: Role::Support,
    };
    let err = journal::propose(&app.db, &vendor, d, &totals, &support)
        .await
        .unwrap_err();
    assert_eq!(
        err.to_string(),
        "the support role may not prepare journal entries"
    );
}
