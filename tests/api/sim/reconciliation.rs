//! Reconciliation paging and the CSV export.

use std::collections::HashSet;

use giftrecon::sim;
use serde_json::json;

use super::{json_of, order, TestSim};

#[tokio::test]
async fn reconciliation_pages_have_no_gaps_or_repeats() {
    let sim = TestSim::idle().await;
    let t0 = chrono::DateTime::parse_from_rfc3339("2024-05-01T00:00:00Z").unwrap();
    let at = |seconds: i64| (t0 + chrono::TimeDelta::seconds(seconds)).to_rfc3339();
    let insert = async |updated_at: String| -> String {
        let body = json!({"brand_id": "b", "amount": "1.00", "currency": "USD",
                          "status": "fulfilled", "updated_at": updated_at});
        let (status, order) = json_of(sim.post("/sim/orders", &body).await).await;
        assert_eq!(status, 201, "{order}");
        order["vendor_order_id"].as_str().unwrap().to_string()
    };
    // 23 orders inside [t0, t0+1h), three at a time sharing one updated_at; two outside.
    let mut expected = HashSet::new();
    for i in 0..23 {
        expected.insert(insert(at(i / 3)).await);
    }
    insert(at(-1)).await;
    insert(at(3600)).await;

    let window = format!("from={}&to={}", urlencode(&at(0)), urlencode(&at(3600)));
    let mut seen: Vec<(String, String)> = Vec::new();
    let mut cursor: Option<String> = None;
    let mut pages = 0;
    loop {
        let mut path = format!("/api/v1/reconciliation?{window}&limit=5");
        if let Some(c) = &cursor {
            path.push_str(&format!("&cursor={c}"));
        }
        let (status, page) = json_of(sim.get(&path).await).await;
        assert_eq!(status, 200, "{page}");
        pages += 1;
        let records = page["records"].as_array().unwrap();
        assert!(records.len() <= 5);
        for r in records {
            seen.push((
                r["updated_at"].as_str().unwrap().to_string(),
                r["vendor_order_id"].as_str().unwrap().to_string(),
            ));
        }
        if pages == 1 {
            // Between pages: an order already returned changes (and leaves the window), a new
            // order appears ahead of the cursor, and an API order is placed (outside the window).
            let returned = &records[0]["vendor_order_id"];
            let moved = sim
                .post(
                    &format!("/sim/orders/{}/status", returned.as_str().unwrap()),
                    &json!({"status": "refunded"}),
                )
                .await;
            assert_eq!(moved.status(), 200);
            expected.insert(insert(at(1800)).await);
            assert_eq!(sim.place(&order("key-9")).await.status(), 201);
        }
        match page["next_cursor"].as_str() {
            Some(next) => cursor = Some(next.to_string()),
            None => break,
        }
    }
    let ids: Vec<&String> = seen.iter().map(|(_, id)| id).collect();
    let unique: HashSet<String> = ids.iter().map(|s| s.to_string()).collect();
    assert_eq!(ids.len(), unique.len(), "a record was repeated: {ids:?}");
    assert_eq!(unique, expected, "a record was skipped or strayed in");
    assert_eq!(pages, 5, "24 records in pages of 5, no empty last page");
    let mut sorted = seen.clone();
    sorted.sort();
    assert_eq!(seen, sorted, "stable (updated_at, vendor_order_id) order");

    for bad in ["cursor=abc", "limit=0", "limit=1001", "from=yesterday"] {
        let (status, body) = json_of(sim.get(&format!("/api/v1/reconciliation?{bad}")).await).await;
        assert_eq!(status, 400, "{bad}");
        assert_eq!(body["error"], "invalid_request");
    }
}

#[tokio::test]
async fn a_changed_order_shows_up_again_at_its_new_place() {
    let sim = TestSim::idle().await;
    let mut ids = Vec::new();
    for i in 0..3 {
        let (_, placed) = json_of(sim.place(&order(&format!("key-10-{i}"))).await).await;
        ids.push(placed["vendor_order_id"].as_str().unwrap().to_string());
    }
    let (_, first) = json_of(sim.get("/api/v1/reconciliation?limit=2").await).await;
    let first_ids: Vec<&str> = first["records"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["vendor_order_id"].as_str().unwrap())
        .collect();
    assert_eq!(first_ids, [ids[0].as_str(), ids[1].as_str()]);
    let moved = sim
        .post(
            &format!("/sim/orders/{}/status", ids[0]),
            &json!({"status": "processing"}),
        )
        .await;
    assert_eq!(moved.status(), 200);
    let cursor = first["next_cursor"].as_str().unwrap();
    let (_, rest) = json_of(
        sim.get(&format!("/api/v1/reconciliation?limit=2&cursor={cursor}"))
            .await,
    )
    .await;
    let rest: Vec<(&str, &str)> = rest["records"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| {
            (
                r["vendor_order_id"].as_str().unwrap(),
                r["status"].as_str().unwrap(),
            )
        })
        .collect();
    assert_eq!(
        rest,
        [
            (ids[2].as_str(), "pending"),
            (ids[0].as_str(), "processing")
        ]
    );
}

fn urlencode(text: &str) -> String {
    text.replace('+', "%2B").replace(':', "%3A")
}

#[tokio::test]
async fn the_csv_export_has_the_exact_header_and_quotes_fields() {
    let sim = TestSim::idle().await;
    let tricky = json!({"vendor_order_id": "ord_csv", "idempotency_key": "k,1", "brand_id": "Gift, \"Deluxe\"",
                        "amount": 12.5, "currency": "KWD", "status": "delivered",
                        "updated_at": "2024-05-01T10:00:00Z"});
    assert_eq!(sim.post("/sim/orders", &tricky).await.status(), 201);
    assert_eq!(sim.place(&order("key-11")).await.status(), 201);
    let response = sim
        .get("/api/v1/export.csv?from=2024-05-01T00:00:00Z&to=2024-05-02T00:00:00Z")
        .await;
    assert_eq!(response.status(), 200);
    assert!(response.headers()["content-type"]
        .to_str()
        .unwrap()
        .starts_with("text/csv"));
    let text = response.text().await.unwrap();
    assert!(
        text.starts_with("vendor_order_id,idempotency_key,reference_id,brand_id,amount,currency,status,created_at,updated_at\n"),
        "{text}"
    );
    let mut reader = csv::Reader::from_reader(text.as_bytes());
    assert_eq!(reader.headers().unwrap(), sim::CSV_HEADER.as_slice());
    let rows: Vec<csv::StringRecord> = reader.records().map(Result::unwrap).collect();
    assert_eq!(rows.len(), 1, "only the order inside the window: {text}");
    let row: Vec<&str> = rows[0].iter().collect();
    assert_eq!(
        row,
        [
            "ord_csv",
            "k,1",
            "",
            "Gift, \"Deluxe\"",
            "12.500",
            "KWD",
            "delivered",
            "2024-05-01T10:00:00.000000Z",
            "2024-05-01T10:00:00.000000Z"
        ]
    );
    let all = sim.get("/api/v1/export.csv").await.text().await.unwrap();
    assert_eq!(all.lines().count(), 3, "{all}");
}
