//! The Vendors page's server functions: edits persist and are audited in the same transaction,
//! bad input is refused naming the field, only admins change anything, secrets never come back
//! out, and unmapped statuses are listed until mapped.

use app::domain::journal::GlAccount;
use app::domain::{GlState, Role, VendorId, VendorKind};
use app::server::vendors::{
    AddVendor, ListVendors, MapVendorStatus, RotateVendorSecret, SaveStatusMapping,
    SetVendorAccounts, SetVendorPollInterval, UpdateVendor, VendorDetail, VendorSettings,
    VendorView,
};
use app::storage::audit;
use app::storage::{journal, vendor_admin, vendors};
use leptos::server_fn::ServerFn;
use serde_json::{json, Value};

use crate::helpers::{TestApp, TestDb};
use crate::on_both_backends;

on_both_backends!(
    admins_edit_vendors_and_every_change_is_audited,
    bad_vendor_input_is_refused_naming_the_field,
    only_admins_change_vendors_and_finance_may_look,
    unmapped_statuses_are_listed_until_mapped,
    admins_set_a_vendors_poll_interval,
);

const FIRST_SECRET: &str = "whsec_first_secret_value_1";
const ROTATED_SECRET: &str = "whsec_rotated_secret_value_2";
const BETA_SECRET: &str = "whsec_beta_secret_value_3";

/// Calls a server function; the status and the body (JSON when it is JSON).
async fn call(app: &TestApp, path: &str, cookie: &str, body: Value) -> (u16, String) {
    let response = app.call_with(path, Some(cookie), &body.to_string()).await;
    (response.status().as_u16(), response.text().await.unwrap())
}

fn json_of(body: &str) -> Value {
    serde_json::from_str(body).unwrap_or_else(|e| panic!("{e}: {body}"))
}

async fn add_acme(app: &TestApp) {
    let out = app.test_db.cli(&[
        "vendor",
        "add",
        "acme",
        "--base-url",
        "http://127.0.0.1:9",
        "--webhook-secret",
        FIRST_SECRET,
    ]);
    assert!(out.status.success(), "{}", crate::helpers::stderr(&out));
}

async fn detail(app: &TestApp, cookie: &str, vendor: &str) -> (VendorSettings, String) {
    let (status, body) = call(app, VendorDetail::PATH, cookie, json!({ "vendor": vendor })).await;
    assert_eq!(status, 200, "{body}");
    (serde_json::from_str(&body).unwrap(), body)
}

async fn audit_rows(app: &TestApp, action: &str) -> Vec<audit::AuditRow> {
    audit::recent(&app.db, 10_000)
        .await
        .unwrap()
        .into_iter()
        .filter(|r| r.action == action)
        .collect()
}

async fn insert_record(app: &TestApp, vendor_order_id: &str, status: &str) {
    let now = app::storage::now_utc();
    app::on_db!(&app.db, pool => {
        sqlx::query(
            "INSERT INTO vendor_records (vendor_id, vendor_order_id, amount_minor, currency, status,
                 source, first_seen_at, last_seen_at)
             VALUES ('acme', $1, 2500, 'USD', $2, 'file', $3, $3)",
        )
        .bind(vendor_order_id)
        .bind(status)
        .bind(now)
        .execute(pool)
        .await
        .map(|_| ())
    })
    .unwrap();
}

async fn admins_edit_vendors_and_every_change_is_audited(db: TestDb) {
    let app = TestApp::spawn(db).await;
    add_acme(&app).await;
    let admin = app.signed_in(Role::Admin).await;
    let acme = VendorId::parse("acme").unwrap();
    let mut bodies = Vec::new();

    // Add a vendor; the same again is refused as a duplicate and changes nothing.
    let add = json!({"vendor": "beta", "kind": "tremendous", "base_url": "https://api.beta.example/", "webhook_secret": BETA_SECRET});
    let (status, body) = call(&app, AddVendor::PATH, &admin, add.clone()).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(json_of(&body)["changed"], true);
    bodies.push(body);
    let (status, body) = call(&app, AddVendor::PATH, &admin, add).await;
    assert_eq!(status, 409, "{body}");
    assert!(body.contains("vendor \"beta\" already exists"), "{body}");
    let beta = vendors::get_vendor(&app.db, &VendorId::parse("beta").unwrap())
        .await
        .unwrap();
    assert_eq!(
        (
            beta.kind,
            beta.base_url.as_deref(),
            beta.active_secrets,
            beta.status_mapping
        ),
        (
            VendorKind::Tremendous,
            Some("https://api.beta.example"),
            1,
            VendorKind::Tremendous.default_status_mapping()
        )
    );

    // Kind and base URL; the same again changes nothing and records nothing.
    let update =
        json!({"vendor": "acme", "kind": "runa", "base_url": " https://api.acme.example/v2/ "});
    let (status, body) = call(&app, UpdateVendor::PATH, &admin, update.clone()).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(json_of(&body)["changed"], true);
    bodies.push(body);
    let (status, body) = call(&app, UpdateVendor::PATH, &admin, update).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(json_of(&body)["changed"], false);
    let stored = vendors::get_vendor(&app.db, &acme).await.unwrap();
    assert_eq!(stored.kind, VendorKind::Runa);
    assert_eq!(
        stored.base_url.as_deref(),
        Some("https://api.acme.example/v2")
    );
    // The mapping is the vendor's own: changing the kind does not replace it.
    assert_eq!(
        stored.status_mapping,
        app::domain::StatusMapping::generic_default()
    );
    let set = audit_rows(&app, "vendor_set").await;
    assert_eq!(set.len(), 1);
    assert_eq!(set[0].actor, "admin");
    assert_eq!(set[0].subject, "vendor:acme");
    let before = json_of(set[0].before_json.as_deref().unwrap());
    let after = json_of(set[0].after_json.as_deref().unwrap());
    assert_eq!(
        (before["kind"].as_str(), before["base_url"].as_str()),
        (Some("generic"), Some("http://127.0.0.1:9"))
    );
    assert_eq!(
        (after["kind"].as_str(), after["base_url"].as_str()),
        (Some("runa"), Some("https://api.acme.example/v2"))
    );

    // The whole mapping: blank rows are skipped, statuses normalized.
    let mapping = json!({"vendor": "acme", "mapping": [
        {"status": " Completed ", "state": "fulfilled"},
        {"status": "", "state": ""},
        {"status": "on_hold", "state": "Pending"},
        {"status": "voided", "state": "refunded"},
    ]});
    let (status, body) = call(&app, SaveStatusMapping::PATH, &admin, mapping.clone()).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(json_of(&body)["changed"], true);
    let (_, again) = call(&app, SaveStatusMapping::PATH, &admin, mapping).await;
    assert_eq!(json_of(&again)["changed"], false);
    let stored = vendors::get_vendor(&app.db, &acme).await.unwrap();
    assert_eq!(stored.status_mapping.len(), 3);
    assert_eq!(
        stored.status_mapping.gl_state_for("COMPLETED"),
        Some(GlState::Fulfilled)
    );
    assert_eq!(stored.status_mapping.gl_state_for("pending"), None);
    let rows = audit_rows(&app, "vendor_status_mapping").await;
    assert_eq!(rows.len(), 1);
    assert_eq!(
        json_of(rows[0].after_json.as_deref().unwrap()),
        json!({"completed": "fulfilled", "on_hold": "pending", "voided": "refunded"})
    );
    assert!(rows[0]
        .before_json
        .as_deref()
        .unwrap()
        .contains("\"delivered\":\"fulfilled\""));

    // GL accounts.
    let accounts = json!({"vendor": "acme", "clearing_code": "1191", "clearing_name": "Acme clearing",
        "payable_code": "2011", "payable_name": "Acme payable", "suspense_code": "1999",
        "suspense_name": "Reconciliation suspense"});
    let (status, body) = call(&app, SetVendorAccounts::PATH, &admin, accounts.clone()).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(json_of(&body)["changed"], true);
    let (_, again) = call(&app, SetVendorAccounts::PATH, &admin, accounts).await;
    assert_eq!(json_of(&again)["changed"], false);
    let stored = journal::accounts(&app.db, &acme).await.unwrap();
    assert_eq!(
        stored.clearing,
        GlAccount::new("1191", "Acme clearing").unwrap()
    );
    assert_eq!(
        stored.payable,
        GlAccount::new("2011", "Acme payable").unwrap()
    );
    let rows = audit_rows(&app, "vendor_gl_accounts").await;
    assert_eq!(rows.len(), 1);
    assert!(rows[0].before_json.as_deref().unwrap().contains("\"1190\""));

    // Rotation: the old secret retires after the overlap; the same secret again does nothing.
    let rotate = json!({"vendor": "acme", "secret": ROTATED_SECRET, "overlap_hours": 24});
    let (status, body) = call(&app, RotateVendorSecret::PATH, &admin, rotate.clone()).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(json_of(&body)["changed"], true);
    assert!(body.contains("the oldest one stops verifying at"), "{body}");
    bodies.push(body);
    let (status, body) = call(&app, RotateVendorSecret::PATH, &admin, rotate).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(json_of(&body)["changed"], false);
    bodies.push(body);
    let secrets = vendor_admin::webhook_secrets(&app.db, &acme).await.unwrap();
    assert_eq!(secrets.len(), 2);
    let retires = secrets[1].retired_at.expect("the old secret retires");
    let in_a_day = app::storage::now_utc() + chrono::Duration::hours(24);
    assert!((retires - in_a_day).num_seconds().abs() < 120, "{retires}");
    assert_eq!(secrets[0].retired_at, None);
    let rows = audit_rows(&app, "vendor_rotate_secret").await;
    assert_eq!(rows.len(), 1);
    assert_eq!(rows[0].actor, "admin");

    // What the page shows: masked secrets, the webhook path, the accounts.
    let (shown, body) = detail(&app, &admin, "acme").await;
    bodies.push(body);
    assert_eq!(shown.webhook_path, "/webhooks/acme");
    assert_eq!(shown.active_secrets, 2);
    assert_eq!(shown.secrets.len(), 2);
    assert!(shown.secrets.iter().all(|s| s.active));
    assert!(shown.secrets[1].retires_at.is_some());
    assert_eq!(shown.kind, "runa");
    assert_eq!(shown.clearing.code, "1191");
    assert_eq!(shown.mapping.len(), 3);

    // Secrets never come back out: not in any answer, not in the trail.
    let (_, list) = call(&app, app::server::ListVendors::PATH, &admin, json!({})).await;
    bodies.push(list);
    let trail = format!("{:?}", audit::recent(&app.db, 10_000).await.unwrap());
    let (_, audit_page) = call(
        &app,
        app::server::audit::ListAuditLog::PATH,
        &admin,
        json!({"actor": "", "action": "", "subject": "", "from": "", "to": "", "page": 0}),
    )
    .await;
    bodies.push(audit_page);
    bodies.push(trail);
    for body in &bodies {
        for secret in [FIRST_SECRET, ROTATED_SECRET, BETA_SECRET] {
            assert!(!body.contains(secret), "{secret} leaked: {body}");
        }
    }
    assert!(matches!(
        audit::verify(&app.db).await.unwrap(),
        audit::Verification::Intact { .. }
    ));
}

async fn bad_vendor_input_is_refused_naming_the_field(db: TestDb) {
    let app = TestApp::spawn(db).await;
    add_acme(&app).await;
    let admin = app.signed_in(Role::Admin).await;
    let rows_before = app.count("audit_log").await;
    let add = |vendor: &str, kind: &str, base_url: &str, secret: &str| json!({"vendor": vendor, "kind": kind, "base_url": base_url, "webhook_secret": secret});
    let accounts = |clearing_code: &str, payable_name: &str| {
        json!({"vendor": "acme", "clearing_code": clearing_code, "clearing_name": "Clearing",
            "payable_code": "2010", "payable_name": payable_name, "suspense_code": "1999",
            "suspense_name": "Suspense"})
    };
    let cases: Vec<(&str, Value, u16, &str)> = vec![
        (
            AddVendor::PATH,
            add("Acme!", "generic", "", ""),
            400,
            "vendor id",
        ),
        (
            AddVendor::PATH,
            add("", "generic", "", ""),
            400,
            "vendor id is empty",
        ),
        (
            AddVendor::PATH,
            add("gamma", "bogus", "", ""),
            400,
            "kind: unknown vendor kind \"bogus\"",
        ),
        (
            AddVendor::PATH,
            add("gamma", "generic", "ftp://x", ""),
            400,
            "base URL \"ftp://x\"",
        ),
        (
            AddVendor::PATH,
            add("gamma", "generic", "", "short"),
            400,
            "webhook secret: it is 5 characters long",
        ),
        (
            AddVendor::PATH,
            add("gamma", "generic", "", " whsec_padded_secret_x "),
            400,
            "webhook secret: it starts or ends with a space",
        ),
        (
            UpdateVendor::PATH,
            json!({"vendor": "acme", "kind": "generic", "base_url": "api.acme.example"}),
            400,
            "base URL",
        ),
        (
            UpdateVendor::PATH,
            json!({"vendor": "ghost", "kind": "generic", "base_url": ""}),
            404,
            "vendor \"ghost\" not found",
        ),
        (
            SaveStatusMapping::PATH,
            json!({"vendor": "acme", "mapping": [{"status": "ok", "state": "fulfilled"}, {"status": "x", "state": "done"}]}),
            400,
            "status mapping, row 2: unknown GL state \"done\"",
        ),
        (
            SaveStatusMapping::PATH,
            json!({"vendor": "acme", "mapping": [{"status": "", "state": "failed"}]}),
            400,
            "status mapping, row 1: the vendor status is empty",
        ),
        (
            SaveStatusMapping::PATH,
            json!({"vendor": "acme", "mapping": [{"status": "Done", "state": "fulfilled"}, {"status": "DONE", "state": "failed"}]}),
            400,
            "status mapping: vendor status \"done\" is mapped to both",
        ),
        (
            MapVendorStatus::PATH,
            json!({"vendor": "acme", "status": "held", "state": "nope"}),
            400,
            "GL state: unknown GL state \"nope\"",
        ),
        (
            MapVendorStatus::PATH,
            json!({"vendor": "acme", "status": "  ", "state": "failed"}),
            400,
            "status: the vendor status is empty",
        ),
        (
            MapVendorStatus::PATH,
            json!({"vendor": "acme", "status": "completed", "state": "failed"}),
            409,
            "\"completed\" is mapped to both fulfilled and failed",
        ),
        (
            SetVendorAccounts::PATH,
            accounts("11 90", "Payable"),
            400,
            "clearing account: account code \"11 90\" contains a space",
        ),
        (
            SetVendorAccounts::PATH,
            accounts("1190", ""),
            400,
            "payable account: account name is empty",
        ),
        (
            RotateVendorSecret::PATH,
            json!({"vendor": "acme", "secret": "whsec_a_long_enough_one", "overlap_hours": 10000}),
            400,
            "overlap: 10000 hours",
        ),
        (
            RotateVendorSecret::PATH,
            json!({"vendor": "acme", "secret": "", "overlap_hours": 1}),
            400,
            "webhook secret",
        ),
    ];
    for (path, body, expected, message) in cases {
        let (status, answer) = call(&app, path, &admin, body.clone()).await;
        assert_eq!(status, expected, "{path} {body}: {answer}");
        assert!(answer.contains(message), "{path} {body}: {answer}");
    }
    // Nothing changed, nothing was recorded.
    assert_eq!(app.count("audit_log").await, rows_before);
    assert_eq!(app.count("vendors").await, 1);
    let acme = vendors::get_vendor(&app.db, &VendorId::parse("acme").unwrap())
        .await
        .unwrap();
    assert_eq!(acme.base_url.as_deref(), Some("http://127.0.0.1:9"));
    assert_eq!(
        acme.status_mapping,
        app::domain::StatusMapping::generic_default()
    );
    assert_eq!(acme.active_secrets, 1);
}

async fn only_admins_change_vendors_and_finance_may_look(db: TestDb) {
    let app = TestApp::spawn(db).await;
    add_acme(&app).await;
    insert_record(&app, "v-1", "on_hold").await;
    let changes = [
        (
            AddVendor::PATH,
            json!({"vendor": "beta", "kind": "generic", "base_url": "", "webhook_secret": ""}),
        ),
        (
            UpdateVendor::PATH,
            json!({"vendor": "acme", "kind": "runa", "base_url": "https://evil.example"}),
        ),
        (
            SaveStatusMapping::PATH,
            json!({"vendor": "acme", "mapping": []}),
        ),
        (
            MapVendorStatus::PATH,
            json!({"vendor": "acme", "status": "on_hold", "state": "fulfilled"}),
        ),
        (
            SetVendorAccounts::PATH,
            json!({"vendor": "acme", "clearing_code": "9", "clearing_name": "x", "payable_code": "9", "payable_name": "x", "suspense_code": "9", "suspense_name": "x"}),
        ),
        (
            RotateVendorSecret::PATH,
            json!({"vendor": "acme", "secret": "whsec_attacker_secret_9", "overlap_hours": 0}),
        ),
        (
            SetVendorPollInterval::PATH,
            json!({"vendor": "acme", "interval": "10s"}),
        ),
    ];
    for role in [Role::Support, Role::FinancePreparer, Role::FinanceApprover] {
        let cookie = app.signed_in(role).await;
        for (path, body) in &changes {
            let (status, answer) = call(&app, path, &cookie, body.clone()).await;
            assert_eq!(status, 403, "{role} → {path}: {answer}");
            assert!(answer.contains("your role does not allow this"), "{answer}");
        }
        let (status, answer) =
            call(&app, VendorDetail::PATH, &cookie, json!({"vendor": "acme"})).await;
        let may_look = role != Role::Support;
        assert_eq!(status, if may_look { 200 } else { 403 }, "{role}: {answer}");
        if !may_look {
            continue;
        }
        // The page is read-only for finance: the editor renders without its buttons.
        let page = app.get_with("/vendors?vendor=acme", &cookie).await;
        assert_eq!(page.status(), 200);
        let html = page.text().await.unwrap();
        assert!(html.contains("/webhooks/acme"), "{role}: {html}");
        assert!(html.contains("read-only view"), "{role}: {html}");
        assert!(!html.contains(">Rotate secret</button>"), "{role}: {html}");
        assert!(!html.contains(">Save mapping</button>"), "{role}: {html}");
    }
    // Nothing changed.
    assert_eq!(app.count("vendors").await, 1);
    assert_eq!(app.count("vendor_webhook_secrets").await, 1);
    assert_eq!(app.count("vendor_gl_accounts").await, 0);
    let acme = vendors::get_vendor(&app.db, &VendorId::parse("acme").unwrap())
        .await
        .unwrap();
    assert_eq!(acme.kind, VendorKind::Generic);
    assert_eq!(
        acme.status_mapping,
        app::domain::StatusMapping::generic_default()
    );
    // Each refusal is in the trail, naming what was attempted.
    let denied = audit_rows(&app, "denied").await;
    assert_eq!(denied.len(), 3 * changes.len() + 1);
    assert!(denied.iter().any(|r| r.subject == "rotate_vendor_secret"));

    // The admin's page has the editor's buttons.
    let admin = app.signed_in(Role::Admin).await;
    let html = app
        .get_with("/vendors?vendor=acme", &admin)
        .await
        .text()
        .await
        .unwrap();
    for button in [
        ">Save settings</button>",
        ">Rotate secret</button>",
        ">Save mapping</button>",
        ">Save accounts</button>",
        ">Add vendor</button>",
    ] {
        assert!(html.contains(button), "{button} missing");
    }
    assert!(!html.contains(FIRST_SECRET));
}

/// Each of acme's stored records and the GL state it carries.
async fn stored_states(app: &TestApp) -> Vec<(String, Option<String>)> {
    app::on_db!(&app.db, pool => {
        sqlx::query_as(
            "SELECT vendor_order_id, gl_state FROM vendor_records WHERE vendor_id = 'acme'
              ORDER BY vendor_order_id",
        )
        .fetch_all(pool)
        .await
    })
    .unwrap()
}

async fn unmapped_statuses_are_listed_until_mapped(db: TestDb) {
    let app = TestApp::spawn(db).await;
    add_acme(&app).await;
    let admin = app.signed_in(Role::Admin).await;
    for (id, status) in [
        ("v-1", "fulfilled"),
        ("v-2", "ON_HOLD"),
        ("v-3", "on_hold"),
        ("v-4", "on_hold"),
        ("v-5", "Disputed"),
    ] {
        insert_record(&app, id, status).await;
    }
    let (shown, _) = detail(&app, &admin, "acme").await;
    let unmapped: Vec<(&str, i64)> = shown
        .unmapped
        .iter()
        .map(|u| (u.status.as_str(), u.records))
        .collect();
    assert_eq!(
        unmapped,
        vec![("on_hold", 2), ("Disputed", 1), ("ON_HOLD", 1)]
    );

    // One click maps a status (in every spelling); the same click again does nothing.
    let map = json!({"vendor": "acme", "status": "ON_HOLD", "state": "pending"});
    let (status, body) = call(&app, MapVendorStatus::PATH, &admin, map.clone()).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(json_of(&body)["changed"], true);
    let (status, body) = call(&app, MapVendorStatus::PATH, &admin, map).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(json_of(&body)["changed"], false);
    let (shown, _) = detail(&app, &admin, "acme").await;
    let unmapped: Vec<&str> = shown.unmapped.iter().map(|u| u.status.as_str()).collect();
    assert_eq!(unmapped, vec!["Disputed"]);
    // The stored records with that status (in every spelling) take the state; the others keep
    // theirs.
    assert_eq!(
        stored_states(&app).await,
        [
            ("v-1", None),
            ("v-2", Some("pending")),
            ("v-3", Some("pending")),
            ("v-4", Some("pending")),
            ("v-5", None)
        ]
        .map(|(id, state)| (id.to_string(), state.map(str::to_string)))
    );
    assert!(shown
        .mapping
        .iter()
        .any(|m| m.status == "on_hold" && m.state == "pending"));
    let rows = audit_rows(&app, "vendor_status_mapping").await;
    assert_eq!(rows.len(), 1);
    assert!(rows[0]
        .after_json
        .as_deref()
        .unwrap()
        .contains("\"on_hold\":\"pending\""));
    assert!(!rows[0].before_json.as_deref().unwrap().contains("on_hold"));

    // A status already mapped elsewhere is not overwritten by a click.
    let (status, body) = call(
        &app,
        MapVendorStatus::PATH,
        &admin,
        json!({"vendor": "acme", "status": "on_hold", "state": "failed"}),
    )
    .await;
    assert_eq!(status, 409, "{body}");

    // Mapping the last one from the editor empties the list.
    let mut rows: Vec<Value> = shown
        .mapping
        .iter()
        .map(|m| json!({"status": m.status, "state": m.state}))
        .collect();
    rows.push(json!({"status": "disputed", "state": "failed"}));
    let (status, body) = call(
        &app,
        SaveStatusMapping::PATH,
        &admin,
        json!({"vendor": "acme", "mapping": rows}),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    let (shown, _) = detail(&app, &admin, "acme").await;
    assert!(shown.unmapped.is_empty(), "{:?}", shown.unmapped);
    let states = stored_states(&app).await;
    assert_eq!(states[4], ("v-5".to_string(), Some("failed".to_string())));
    // Unmapping a status clears the state of its records.
    let (status, body) = call(
        &app,
        SaveStatusMapping::PATH,
        &admin,
        json!({"vendor": "acme", "mapping": [{"status": "disputed", "state": "failed"}]}),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    let states = stored_states(&app).await;
    assert_eq!(states[1], ("v-2".to_string(), None));
    assert_eq!(states[4], ("v-5".to_string(), Some("failed".to_string())));

    // The page lists them too, with a labelled control and a button per status.
    insert_record(&app, "v-6", "lost").await;
    let html = app
        .get_with("/vendors?vendor=acme", &admin)
        .await
        .text()
        .await
        .unwrap();
    assert!(html.contains("aria-label=\"GL state for lost\""), "{html}");
    assert!(html.contains("aria-label=\"Map lost\""), "{html}");
}

async fn admins_set_a_vendors_poll_interval(db: TestDb) {
    let app = TestApp::spawn(db).await;
    add_acme(&app).await;
    let admin = app.signed_in(Role::Admin).await;
    let acme = VendorId::parse("acme").unwrap();
    // Until set, the server's schedule (300 s in the test server).
    let (shown, _) = detail(&app, &admin, "acme").await;
    assert_eq!(shown.poll_interval, None);
    assert_eq!(shown.polled, "Every 5 min (the server's schedule)");
    assert_eq!(shown.last_polled, None);

    let set = |interval: &str| json!({"vendor": "acme", "interval": interval});
    let (status, body) = call(&app, SetVendorPollInterval::PATH, &admin, set(" 90s ")).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(json_of(&body)["changed"], true);
    assert!(body.contains("now polled every 1 min 30 s"), "{body}");
    // The same interval written another way changes nothing and records nothing.
    let (status, body) = call(&app, SetVendorPollInterval::PATH, &admin, set("90")).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(json_of(&body)["changed"], false);
    let (shown, _) = detail(&app, &admin, "acme").await;
    assert_eq!(shown.poll_interval.as_deref(), Some("1 min 30 s"));
    assert_eq!(shown.polled, "Every 1 min 30 s");
    let (status, body) = call(&app, ListVendors::PATH, &admin, json!({})).await;
    assert_eq!(status, 200, "{body}");
    let listed: Vec<VendorView> = serde_json::from_str(&body).unwrap();
    assert_eq!(listed[0].polled, "Every 1 min 30 s");

    // Out of range or unreadable: refused, naming the field, and nothing changes.
    for (bad, says) in [
        ("9", "poll interval 9 s is shorter than 10 seconds"),
        (
            "2 days",
            "poll interval \"2 days\" is not a number of seconds",
        ),
        ("86401", "poll interval 86401 s is longer than a day"),
    ] {
        let (status, body) = call(&app, SetVendorPollInterval::PATH, &admin, set(bad)).await;
        assert_eq!(status, 400, "{bad}: {body}");
        assert!(body.contains(says), "{bad}: {body}");
    }
    let stored = vendors::get_vendor(&app.db, &acme).await.unwrap();
    assert_eq!(stored.poll_interval.map(|i| i.secs()), Some(90));

    // Empty puts it back on the server's schedule.
    let (status, body) = call(&app, SetVendorPollInterval::PATH, &admin, set("")).await;
    assert_eq!(status, 200, "{body}");
    assert!(
        body.contains("now polled on the server's schedule"),
        "{body}"
    );
    assert_eq!(
        vendors::get_vendor(&app.db, &acme)
            .await
            .unwrap()
            .poll_interval,
        None
    );

    let rows = audit_rows(&app, "vendor_poll_interval").await;
    assert_eq!(rows.len(), 2, "{rows:?}");
    let after: Vec<Value> = rows
        .iter()
        .map(|r| serde_json::from_str(r.after_json.as_deref().unwrap()).unwrap())
        .collect();
    assert!(
        after.contains(&json!({"poll_interval_secs": 90})),
        "{after:?}"
    );
    assert!(
        after.contains(&json!({"poll_interval_secs": null})),
        "{after:?}"
    );
    assert!(rows.iter().all(|r| r.subject == "vendor:acme"), "{rows:?}");
    // A vendor that does not exist.
    let (status, body) = call(
        &app,
        SetVendorPollInterval::PATH,
        &admin,
        json!({"vendor": "nobody", "interval": "5m"}),
    )
    .await;
    assert_eq!(status, 404, "{body}");
}
