//! Exports of the dashboard's tables (`GET /export/{table}.{csv|xlsx}`): exactly the rows the
//! filters select, exact control totals, formula text neutralized, the same in CSV and XLSX, the
//! same as the reconciliation API; roles as the pages', bad filters named, every export audited.

use std::io::Cursor;

use app::domain::Role;
use calamine::{Data, Reader, Xlsx};
use leptos::server_fn::ServerFn;
use serde_json::{json, Value};

use crate::helpers::{stderr, TestApp, TestDb};
use crate::on_both_backends;
use crate::reconciliation::seed_classes;

on_both_backends!(
    discrepancy_exports_follow_the_filters_and_agree_with_the_api,
    every_table_exports_for_its_roles_only,
    bad_filters_are_named_and_nothing_is_exported,
);

const DAY: &str = "2026-12-01";

/// The reconciled day of `seed_classes`, plus a vendor-only record whose text is all formulas.
async fn seed(db: &TestDb) {
    seed_classes(db).await;
    std::fs::write(
        db.dir.path().join("inject.csv"),
        "vendor_order_id,idempotency_key,reference_id,brand_id,amount,currency,status,created_at,updated_at\n\
         -V99,=2+3,,,60.10,USD,@fulfilled,2026-12-01T11:00:00Z,\n",
    )
    .unwrap();
    for args in [
        &["import", "vendor", "inject.csv", "--vendor", "acme"][..],
        &["reconcile", "--vendor", "acme", "--date", DAY][..],
    ] {
        let out = db.cli(args);
        assert!(out.status.success(), "{args:?}: {}", stderr(&out));
    }
}

struct Download {
    status: u16,
    content_type: String,
    disposition: String,
    bytes: Vec<u8>,
}

impl Download {
    fn text(&self) -> String {
        String::from_utf8(self.bytes.clone()).unwrap()
    }
}

async fn download(app: &TestApp, path: &str, cookie: Option<&str>) -> Download {
    let mut request = app.client.get(app.url(path));
    if let Some(cookie) = cookie {
        request = request.header("cookie", cookie);
    }
    let response = request.send().await.expect("request");
    let header = |name: &str| {
        response
            .headers()
            .get(name)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("")
            .to_string()
    };
    Download {
        status: response.status().as_u16(),
        content_type: header("content-type"),
        disposition: header("content-disposition"),
        bytes: response.bytes().await.unwrap().to_vec(),
    }
}

/// The CSV's data rows (header first) and its control line.
fn csv_parts(text: &str) -> (Vec<Vec<String>>, String) {
    let (body, control) = text.trim_end().rsplit_once('\n').unwrap();
    let mut reader = csv::ReaderBuilder::new()
        .has_headers(false)
        .from_reader(body.as_bytes());
    let rows = reader
        .records()
        .map(|r| r.unwrap().iter().map(str::to_string).collect())
        .collect();
    (rows, control.to_string())
}

/// A sheet's cells as text, amounts with their currency's decimals (the currency is the column
/// named by `currency_of`), integers without a decimal point.
fn sheet(bytes: &[u8], name: &str) -> Vec<Vec<Data>> {
    let mut workbook: Xlsx<_> = Xlsx::new(Cursor::new(bytes.to_vec())).expect("an XLSX file");
    let range = workbook.worksheet_range(name).expect("the sheet");
    range.rows().map(|r| r.to_vec()).collect()
}

fn places(currency: &str) -> usize {
    match currency {
        "JPY" => 0,
        "KWD" => 3,
        _ => 2,
    }
}

/// Each XLSX cell, written as the CSV writes it.
fn as_csv_text(cell: &Data, header: &str, row: &[Data], headers: &[Data]) -> String {
    match cell {
        Data::Empty => String::new(),
        Data::String(s) => s.clone(),
        Data::Float(f) if header.ends_with("amount") => {
            // The currency column beside it: internal_amount → internal_currency.
            let currency_column = header.replace("amount", "currency");
            let i = headers
                .iter()
                .position(|h| h.to_string() == currency_column)
                .expect("a currency column");
            format!("{:.*}", places(&row[i].to_string()), f)
        }
        Data::Float(f) => {
            assert_eq!(f.fract(), 0.0, "{header}: {f}");
            format!("{}", *f as i64)
        }
        Data::Int(n) => n.to_string(),
        other => panic!("unexpected cell {other:?} in {header}"),
    }
}

async fn discrepancy_exports_follow_the_filters_and_agree_with_the_api(db: TestDb) {
    seed(&db).await;
    let app = TestApp::spawn(db).await;
    let support = app.signed_in(Role::Support).await;
    let token = app.token("reports").await;

    // The whole day, every state: byte for byte what the API's CSV says.
    let export = download(
        &app,
        &format!("/export/discrepancies.csv?vendor=acme&from={DAY}&to={DAY}"),
        Some(&support),
    )
    .await;
    assert_eq!(export.status, 200, "{}", export.text());
    assert_eq!(export.content_type, "text/csv; charset=utf-8");
    assert!(
        export.disposition.starts_with(&format!(
            "attachment; filename=\"giftrecon-discrepancies-acme-{DAY}-{DAY}-"
        )) && export.disposition.ends_with("Z.csv\""),
        "{}",
        export.disposition
    );
    let api = app
        .get_json(
            &format!("/api/v1/reconciliation/discrepancies?vendor=acme&date={DAY}&format=csv"),
            &token,
        )
        .await;
    assert_eq!(api.status(), 200);
    let csv = export.text();
    assert_eq!(csv, api.text().await.unwrap());

    // Its control totals tie to the API's JSON items, summed exactly per currency and side.
    let items: Vec<Value> = app
        .get_json(
            &format!("/api/v1/reconciliation/discrepancies?vendor=acme&date={DAY}"),
            &token,
        )
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(items.len(), 8);
    let (rows, control) = csv_parts(&csv);
    assert_eq!(rows.len(), 1 + items.len());
    let mut sums = std::collections::BTreeMap::<(String, &str), i64>::new();
    for item in &items {
        for side in ["internal", "vendor"] {
            if let (Some(amount), Some(code)) = (
                item[format!("{side}_amount")].as_str(),
                item[format!("{side}_currency")].as_str(),
            ) {
                let c = app::domain::Currency::parse(code).unwrap();
                *sums.entry((code.to_string(), side)).or_default() +=
                    app::domain::Money::parse_signed(amount, c)
                        .unwrap()
                        .minor_units();
            }
        }
    }
    let mut expected = format!("# control: {} discrepancies", items.len());
    for ((code, side), minor) in &sums {
        let c = app::domain::Currency::parse(code).unwrap();
        expected.push_str(&format!(
            "; {side} {code} {}",
            app::domain::Money::from_minor(*minor, c).amount_string()
        ));
    }
    assert_eq!(control, expected);
    assert!(control.contains("vendor USD 190.11"), "{control}");

    // Formula text is neutralized: the key, the vendor's order id and status all start with '.
    let injected = rows
        .iter()
        .find(|r| r[10] == "'-V99")
        .expect("the injected row");
    assert!(
        injected[5] == "'=2+3" || injected[5] == "'-V99",
        "{injected:?}"
    );
    assert_eq!(injected[14], "'@fulfilled");
    assert_eq!(
        injected[12], "60.10",
        "amounts are numbers, never neutralized"
    );

    // The XLSX holds the same cells: text identical (neutralized alike), amounts as numbers
    // that read back to the exact decimal, and the same control totals on their own sheet.
    let xlsx = download(
        &app,
        &format!("/export/discrepancies.xlsx?vendor=acme&from={DAY}&to={DAY}"),
        Some(&support),
    )
    .await;
    assert_eq!(xlsx.status, 200);
    assert_eq!(
        xlsx.content_type,
        "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
    );
    assert!(
        xlsx.disposition.ends_with("Z.xlsx\""),
        "{}",
        xlsx.disposition
    );
    let cells = sheet(&xlsx.bytes, "Discrepancies");
    assert_eq!(cells.len(), rows.len());
    let headers = cells[0].clone();
    for (r, (sheet_row, csv_row)) in cells.iter().zip(&rows).enumerate() {
        let as_text: Vec<String> = sheet_row
            .iter()
            .zip(&headers)
            .map(|(cell, h)| as_csv_text(cell, &h.to_string(), sheet_row, &headers))
            .collect();
        assert_eq!(&as_text, csv_row, "row {r}");
    }
    let amount_column = headers
        .iter()
        .position(|h| matches!(h, Data::String(s) if s == "vendor_amount"))
        .unwrap();
    assert!(
        cells[1..]
            .iter()
            .any(|r| matches!(r[amount_column], Data::Float(_))),
        "amounts are numeric cells"
    );
    let control_sheet = sheet(&xlsx.bytes, "Control totals");
    let value_of = |label: &str| {
        control_sheet
            .iter()
            .find(|r| matches!(&r[0], Data::String(s) if s == label))
            .map(|r| r[1].clone())
            .unwrap_or_else(|| panic!("no {label} in {control_sheet:?}"))
    };
    assert_eq!(value_of("Rows (discrepancies)"), Data::Float(8.0));
    for ((code, side), minor) in &sums {
        let c = app::domain::Currency::parse(code).unwrap();
        assert_eq!(
            value_of(&format!("Sum {side} {code}")).to_string(),
            app::domain::Money::from_minor(*minor, c).amount_string()
        );
    }
    assert_eq!(value_of("Filter vendor").to_string(), "acme");

    // Filters select exactly what the queue shows: one class, open only.
    let one = download(
        &app,
        "/export/discrepancies.csv?vendor=acme&class=amount_mismatch&state=open",
        Some(&support),
    )
    .await
    .text();
    let (rows, control) = csv_parts(&one);
    assert_eq!(rows.len(), 2, "{one}");
    assert_eq!(rows[1][3], "amount_mismatch");
    assert_eq!(
        control,
        "# control: 1 discrepancies; internal USD 25.00; vendor USD 25.01"
    );
    let none = download(
        &app,
        "/export/discrepancies.csv?vendor=acme&from=2026-12-02",
        Some(&support),
    )
    .await
    .text();
    assert_eq!(csv_parts(&none).1, "# control: 0 discrepancies");

    // Every export is audited: who, which table, which filters, how many rows.
    let audited: Vec<(String, String, Option<String>)> = app::on_db!(&app.db, p => sqlx::query_as(
        "SELECT actor, subject, after_json FROM audit_log WHERE action = 'export' ORDER BY id")
        .fetch_all(p).await)
    .unwrap();
    assert_eq!(audited.len(), 4, "{audited:?}");
    assert_eq!(audited[0].0, "support");
    assert_eq!(audited[0].1, "export:discrepancies");
    let after: Value = serde_json::from_str(audited[2].2.as_deref().unwrap()).unwrap();
    assert_eq!(
        after,
        json!({"format": "csv", "rows": 1, "filters": {"vendor": "acme", "class": "amount_mismatch", "state": "open"}})
    );
}

async fn every_table_exports_for_its_roles_only(db: TestDb) {
    seed(&db).await;
    let app = TestApp::spawn(db).await;
    let support = app.signed_in(Role::Support).await;
    let preparer = app.signed_in(Role::FinancePreparer).await;
    let approver = app.signed_in(Role::FinanceApprover).await;
    let admin = app.signed_in(Role::Admin).await;
    let close = format!("/export/close.csv?vendor=acme&date={DAY}");
    let status = |path: String, cookie: Option<String>| {
        let app = &app;
        async move { download(app, &path, cookie.as_deref()).await.status }
    };

    // Roles as the server functions that show the same tables.
    for (path, refused, allowed) in [
        ("/export/discrepancies.csv", &admin, &support),
        ("/export/imports.csv", &support, &admin),
        (close.as_str(), &support, &preparer),
        (close.as_str(), &admin, &approver),
        ("/export/audit.xlsx", &preparer, &approver),
        ("/export/audit.csv", &support, &admin),
    ] {
        assert_eq!(
            status(path.into(), Some(refused.clone())).await,
            403,
            "{path}"
        );
        assert_eq!(
            status(path.into(), Some(allowed.clone())).await,
            200,
            "{path}"
        );
        assert_eq!(status(path.into(), None).await, 401, "{path}");
    }
    // Looking orders up is everyone's; signed in, that is.
    assert_eq!(
        status("/export/orders.csv?q=k-amount".into(), Some(admin.clone())).await,
        200
    );
    assert_eq!(
        status("/export/orders.csv?q=k-amount".into(), None).await,
        401
    );
    let denied: i64 = app::on_db!(&app.db, p => sqlx::query_scalar(
        "SELECT COUNT(*) FROM audit_log WHERE action = 'denied' AND subject = 'export_audit'")
        .fetch_one(p).await)
    .unwrap();
    assert_eq!(denied, 2);

    // Another site cannot start a download, even with the cookie.
    let cross = app
        .client
        .get(app.url("/export/imports.csv"))
        .header("cookie", &admin)
        .header("sec-fetch-site", "cross-site")
        .send()
        .await
        .unwrap();
    assert_eq!(cross.status(), 403);

    // The import log: every import the page lists, with the row count as its control.
    let imports = download(&app, "/export/imports.csv", Some(&preparer))
        .await
        .text();
    let (rows, control) = csv_parts(&imports);
    assert_eq!(rows[0][..5], ["id", "at", "kind", "vendor", "file_name"]);
    assert_eq!(rows.len() - 1, 3, "{imports}");
    assert_eq!(control, "# control: 3 imports");
    assert_eq!(rows[1][4], "inject.csv", "newest first");

    // The close: the day's totals per currency, as the close page shows them, with sums.
    let text = download(&app, &close, Some(&preparer)).await.text();
    let (rows, control) = csv_parts(&text);
    let page = app
        .call_with(
            app::server::close::ListClose::PATH,
            Some(&preparer),
            &json!({"vendor": "acme", "date": DAY}).to_string(),
        )
        .await;
    let page: Value = page.json().await.unwrap();
    let totals = page["totals"].as_array().unwrap();
    assert_eq!(rows.len() - 1, totals.len());
    for (row, t) in rows[1..].iter().zip(totals) {
        assert_eq!(row[2], t["currency"].as_str().unwrap());
        assert_eq!(row[4], t["internal_amount"].as_str().unwrap());
        assert_eq!(row[6], t["vendor_amount"].as_str().unwrap());
        assert_eq!(row[7], t["variance"].as_str().unwrap());
    }
    assert!(
        control.starts_with(&format!("# control: {} currencies", totals.len())),
        "{control}"
    );
    let usd = totals.iter().find(|t| t["currency"] == "USD").unwrap();
    assert!(
        control.contains(&format!(
            "variance USD {}",
            usd["variance"].as_str().unwrap()
        )),
        "{control}"
    );

    // Order search: what the search finds, amounts summed.
    let (rows, control) = csv_parts(
        &download(&app, "/export/orders.csv?q=k-amount", Some(&support))
            .await
            .text(),
    );
    assert_eq!(rows.len(), 2);
    assert_eq!(rows[1][1], "k-amount");
    assert_eq!(control, "# control: 1 orders; amount USD 25.00");

    // The audit log, newest first, including the exports just made.
    let (rows, _) = csv_parts(
        &download(&app, "/export/audit.csv", Some(&approver))
            .await
            .text(),
    );
    let ids: Vec<i64> = rows[1..].iter().map(|r| r[0].parse().unwrap()).collect();
    assert!(ids.windows(2).all(|w| w[0] > w[1]), "{ids:?}");
    assert!(rows
        .iter()
        .any(|r| r[3] == "export" && r[4] == "export:orders"));
    // With the page's filters: only what the page shows.
    let (filtered, control) = csv_parts(
        &download(
            &app,
            "/export/audit.csv?action=export&subject=orders",
            Some(&approver),
        )
        .await
        .text(),
    );
    assert!(filtered.len() > 1, "{filtered:?}");
    assert!(
        filtered[1..]
            .iter()
            .all(|r| r[3] == "export" && r[4] == "export:orders"),
        "{filtered:?}"
    );
    assert!(
        control.starts_with(&format!("# control: {} ", filtered.len() - 1)),
        "{control}"
    );
    let bad = download(
        &app,
        "/export/audit.csv?from=2026-12-05&to=2026-12-01",
        Some(&approver),
    )
    .await;
    assert_eq!(bad.status, 400);
    assert!(bad.text().starts_with("to:"), "{}", bad.text());
}

async fn bad_filters_are_named_and_nothing_is_exported(db: TestDb) {
    seed(&db).await;
    let app = TestApp::spawn(db).await;
    let preparer = app.signed_in(Role::FinancePreparer).await;
    for (path, field) in [
        ("/export/discrepancies.csv?class=matched", "class"),
        ("/export/discrepancies.xlsx?state=closed", "state"),
        ("/export/discrepancies.csv?from=yesterday", "from"),
        ("/export/discrepancies.csv?to=2026-02-30", "to"),
        (
            "/export/discrepancies.csv?vendor=Not%20A%20Vendor",
            "vendor",
        ),
        ("/export/discrepancies.csv?vendr=acme", "vendr"),
        ("/export/discrepancies.csv?sort=sideways", "sort"),
        ("/export/discrepancies.csv?min_amount=5", "min_amount"),
        (
            "/export/discrepancies.csv?currency=USD&max_amount=1.005",
            "max_amount",
        ),
        ("/export/close.csv?vendor=acme", "date"),
        ("/export/close.csv?date=2026-12-01", "vendor"),
        ("/export/orders.csv", "q"),
        ("/export/imports.csv?page=2", "page"),
    ] {
        let answer = download(&app, path, Some(&preparer)).await;
        assert_eq!(answer.status, 400, "{path}: {}", answer.text());
        assert!(
            answer.text().starts_with(&format!("{field}: ")),
            "{path}: {}",
            answer.text()
        );
        assert!(answer.disposition.is_empty(), "{path}");
    }
    assert_eq!(
        download(
            &app,
            "/export/close.csv?vendor=nobody&date=2026-12-01",
            Some(&preparer)
        )
        .await
        .status,
        404
    );
    assert_eq!(
        download(&app, "/export/secrets.csv", Some(&preparer))
            .await
            .status,
        404
    );
    assert_eq!(
        download(&app, "/export/imports.pdf", Some(&preparer))
            .await
            .status,
        404
    );
    let exports: i64 = app::on_db!(&app.db, p => sqlx::query_scalar(
        "SELECT COUNT(*) FROM audit_log WHERE action = 'export'").fetch_one(p).await)
    .unwrap();
    assert_eq!(exports, 0, "a refused export is not recorded as one");
}
