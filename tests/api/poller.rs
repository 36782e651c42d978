//! The poller against the simulator: backfill, the cursor, the lease and its fencing token, and
//! webhooks under faults reconciled by one poll pass.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use app::domain::{GlState, PollInterval, VendorId};
use app::storage::orders;
use app::storage::poller as store;
use app::storage::vendor_records::{self, ObservedOrder};
use giftrecon::config::PollerSettings;
use giftrecon::poller::{Poller, Round};
use giftrecon::sim::{self, Faults, SimConfig, SimHandle};
use serde_json::json;

use crate::helpers::{TestApp, TestDb};
use crate::on_both_backends;
use crate::webhooks::{add_pending_orders, add_vendor, SECRET};

on_both_backends!(
    one_pass_backfills_missed_orders_and_records_vendor_only_ones,
    a_pass_cut_short_resumes_after_its_last_stored_page,
    a_stale_fencing_token_cannot_write,
    two_pollers_one_lease,
    the_leader_keeps_its_lease_between_passes_until_it_stops,
    a_thousand_orders_with_lossy_webhooks_match_the_vendor_after_one_pass,
    each_vendor_is_polled_when_its_own_interval_is_due,
);

fn settings() -> PollerSettings {
    PollerSettings {
        enabled: true,
        interval_secs: 1,
        overlap_secs: 60,
        page_limit: 1_000,
        lease_secs: 30,
        initial_lookback_secs: 3_600,
        vendor_timeout_ms: 5_000,
    }
}

fn keys(n: usize) -> Vec<String> {
    (0..n).map(|i| format!("key-{i:04}")).collect()
}

/// Inserts an order at the simulator as if placed there, optionally announced by webhook.
pub(crate) async fn sim_order(
    client: &reqwest::Client,
    sim: &SimHandle,
    key: &str,
    vendor_order_id: &str,
    status: &str,
    notify: bool,
) {
    let response = client
        .post(format!("{}/sim/orders", sim.base_url()))
        .json(&json!({
            "vendor_order_id": vendor_order_id,
            "idempotency_key": key,
            "brand_id": "amazon-us",
            "amount": "25.00",
            "currency": "USD",
            "status": status,
            "notify": notify,
        }))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 201, "{}", response.text().await.unwrap());
}

async fn sim_status(
    client: &reqwest::Client,
    sim: &SimHandle,
    vendor_order_id: &str,
    status: &str,
) {
    let response = client
        .post(format!(
            "{}/sim/orders/{vendor_order_id}/status",
            sim.base_url()
        ))
        .json(&json!({ "status": status }))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200, "{}", response.text().await.unwrap());
}

async fn gl_states(app: &TestApp, ids: &[String]) -> Vec<GlState> {
    let mut states = Vec::new();
    for id in ids {
        states.push(orders::get(&app.db, id).await.unwrap().unwrap().gl_state);
    }
    states
}

async fn one_pass_backfills_missed_orders_and_records_vendor_only_ones(db: TestDb) {
    let sim = sim::spawn(SimConfig::default()).await.unwrap();
    let app = TestApp::spawn(db).await;
    add_vendor(&app.db, "acme", Some(&sim.base_url()), &[SECRET]).await;
    let keys = keys(5);
    let ids = add_pending_orders(&app.db, "acme", &keys).await;
    let client = reqwest::Client::new();
    for (i, key) in keys.iter().enumerate() {
        let status = if i == 4 { "failed" } else { "fulfilled" };
        sim_order(&client, &sim, key, &format!("v-{i}"), status, false).await;
    }
    sim_order(&client, &sim, "not-ours", "v-x", "fulfilled", false).await;

    let poller = Poller::new(app.db.clone(), settings(), "a".into());
    let vendor = VendorId::parse("acme").unwrap();
    let report = poller.run_once(&vendor).await.unwrap();
    assert!(report.leader && report.complete, "{report:?}");
    assert_eq!(report.records, 6);
    assert_eq!(report.backfills, 5);
    assert_eq!(report.vendor_only, 1);
    let states = gl_states(&app, &ids).await;
    assert_eq!(&states[..4], &[GlState::Fulfilled; 4]);
    assert_eq!(states[4], GlState::Failed);
    let records = vendor_records::list(&app.db, "acme").await.unwrap();
    assert_eq!(records.len(), 6);
    let vendor_only: Vec<_> = records.iter().filter(|r| r.order_id.is_none()).collect();
    assert_eq!(vendor_only.len(), 1);
    assert_eq!(vendor_only[0].vendor_key.as_deref(), Some("not-ours"));
    assert!(records.iter().all(|r| r.source == "poll"));
    let cursor = store::cursor(&app.db, "acme").await.unwrap();
    assert!(
        cursor.synced_to.is_some() && cursor.pass_to.is_none(),
        "{cursor:?}"
    );

    // A second pass re-reads the overlap and changes nothing.
    let again = poller.run_once(&vendor).await.unwrap();
    assert_eq!(again.backfills, 0, "{again:?}");
    assert_eq!(app.count("vendor_records").await, 6);
    assert_eq!(app.count("order_events WHERE kind = 'poll'").await, 5);
}

async fn a_pass_cut_short_resumes_after_its_last_stored_page(db: TestDb) {
    let sim = sim::spawn(SimConfig::default()).await.unwrap();
    let app = TestApp::spawn(db).await;
    add_vendor(&app.db, "acme", Some(&sim.base_url()), &[SECRET]).await;
    let client = reqwest::Client::new();
    for i in 0..250 {
        sim_order(
            &client,
            &sim,
            &format!("k-{i}"),
            &format!("v-{i:03}"),
            "fulfilled",
            false,
        )
        .await;
    }
    let vendor = VendorId::parse("acme").unwrap();
    // One page per pass: the pass stops after the first page, as a crash after its commit would.
    let one_page = Poller::new(
        app.db.clone(),
        PollerSettings {
            page_limit: 1,
            ..settings()
        },
        "a".into(),
    );
    let first = one_page.run_once(&vendor).await.unwrap();
    assert_eq!(
        (first.pages, first.records, first.complete),
        (1, 100, false)
    );
    let cursor = store::cursor(&app.db, "acme").await.unwrap();
    assert!(
        cursor.synced_to.is_none(),
        "the pass is not done: {cursor:?}"
    );
    assert!(cursor.page_cursor.is_some() && cursor.pass_to.is_some());
    assert_eq!(cursor.pages, 1);
    assert_eq!(app.count("vendor_records").await, 100);

    let rest = Poller::new(app.db.clone(), settings(), "a".into());
    let second = rest.run_once(&vendor).await.unwrap();
    assert!(second.complete, "{second:?}");
    // Resumed where it stopped: the first page is not fetched again.
    assert_eq!(first.records + second.records, 250, "{second:?}");
    assert_eq!(app.count("vendor_records").await, 250);
    let cursor = store::cursor(&app.db, "acme").await.unwrap();
    assert!(
        cursor.synced_to.is_some() && cursor.pass_to.is_none() && cursor.page_cursor.is_none(),
        "{cursor:?}"
    );
    assert_eq!(cursor.pages, 3);
}

async fn a_stale_fencing_token_cannot_write(db: TestDb) {
    let app = TestApp::spawn(db).await;
    add_vendor(&app.db, "acme", Some("http://127.0.0.1:9"), &[SECRET]).await;
    let ttl = chrono::Duration::seconds(30);
    let old = store::acquire_lease(&app.db, "acme", "a", ttl)
        .await
        .unwrap()
        .unwrap();
    assert!(store::begin_pass(
        &app.db,
        &old,
        app::storage::now_utc(),
        app::storage::now_utc()
    )
    .await
    .unwrap());
    // The holder stalls past its lease; another replica takes over with a new token.
    app::on_db!(&app.db, pool => {
        sqlx::query("UPDATE poller_leases SET expires_at = $1")
            .bind(app::storage::now_utc() - chrono::Duration::seconds(1))
            .execute(pool)
            .await
            .map(|_| ())
    })
    .unwrap();
    let new = store::acquire_lease(&app.db, "acme", "b", ttl)
        .await
        .unwrap()
        .unwrap();
    assert!(new.fencing_token > old.fencing_token);
    let before = store::cursor(&app.db, "acme").await.unwrap();
    let record = ObservedOrder {
        vendor_order_id: "v-1".into(),
        vendor_key: Some("k".into()),
        reference_id: None,
        brand_id: None,
        amount: app::domain::Money::from_minor(100, app::domain::Currency::USD),
        status: "fulfilled".into(),
        gl_state: Some(GlState::Fulfilled),
        created_at: None,
        updated_at: None,
    };
    let stale = store::store_page(&app.db, &old, std::slice::from_ref(&record), None)
        .await
        .unwrap();
    assert_eq!(stale, None);
    assert_eq!(app.count("vendor_records").await, 0);
    assert_eq!(store::cursor(&app.db, "acme").await.unwrap(), before);
    assert!(!store::begin_pass(
        &app.db,
        &old,
        app::storage::now_utc(),
        app::storage::now_utc()
    )
    .await
    .unwrap());
    // The current holder writes.
    let stored = store::store_page(&app.db, &new, &[record], None)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(stored.records, 1);
    assert_eq!(app.count("vendor_records").await, 1);
}

async fn two_pollers_one_lease(db: TestDb) {
    let app = TestApp::spawn(db).await;
    add_vendor(&app.db, "acme", Some("http://127.0.0.1:9"), &[SECRET]).await;
    let ttl = chrono::Duration::seconds(30);
    let attempts = (0..8).map(|i| {
        let db = app.db.clone();
        async move {
            store::acquire_lease(&db, "acme", &format!("p{i}"), ttl)
                .await
                .unwrap()
        }
    });
    let won: Vec<_> = futures::future::join_all(attempts)
        .await
        .into_iter()
        .flatten()
        .collect();
    assert_eq!(won.len(), 1, "{won:?}");
    let leader = &won[0];
    // Renewal keeps the token; others still cannot take it.
    let renewed = store::acquire_lease(&app.db, "acme", &leader.holder, ttl)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(renewed.fencing_token, leader.fencing_token);
    let other = if leader.holder == "p0" { "p1" } else { "p0" };
    assert!(store::acquire_lease(&app.db, "acme", other, ttl)
        .await
        .unwrap()
        .is_none());
    // A follower's pass does nothing.
    let follower = Poller::new(app.db.clone(), settings(), other.into());
    let report = follower
        .run_once(&VendorId::parse("acme").unwrap())
        .await
        .unwrap();
    assert!(!report.leader);
    // Released: the other takes it with a new token.
    store::release_lease(&app.db, &renewed).await.unwrap();
    let next = store::acquire_lease(&app.db, "acme", other, ttl)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(next.fencing_token, leader.fencing_token + 1);
}

/// The vendor's lease row once `holder` has it (waiting up to `within`): (token, expires at).
async fn lease_held_by(
    app: &TestApp,
    holder: &str,
    within: Duration,
) -> (i64, chrono::DateTime<chrono::Utc>) {
    let deadline = Instant::now() + within;
    loop {
        if let Some((who, token, expires_at)) = store::lease_of(&app.db, "acme").await.unwrap() {
            if who == holder && expires_at > app::storage::now_utc() {
                return (token, expires_at);
            }
        }
        assert!(Instant::now() < deadline, "{holder} never held the lease");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

async fn the_leader_keeps_its_lease_between_passes_until_it_stops(db: TestDb) {
    let app = TestApp::spawn(db).await;
    let sim = sim::spawn(SimConfig::default()).await.unwrap();
    add_vendor(&app.db, "acme", Some(&sim.base_url()), &[SECRET]).await;
    // Passes 4 s apart with a 2 s lease: without renewal between passes the lease would lapse
    // for 2 s of every 4, and the follower (looking every 2 s) would take it.
    let settings = PollerSettings {
        interval_secs: 4,
        lease_secs: 2,
        ..settings()
    };
    let start = |holder: &str| {
        let poller =
            std::sync::Arc::new(Poller::new(app.db.clone(), settings.clone(), holder.into()));
        let (stop, stopped) = tokio::sync::watch::channel(false);
        (stop, tokio::spawn(poller.run(stopped)))
    };
    let (_stop_a, a) = start("a");
    let (token, _) = lease_held_by(&app, "a", Duration::from_secs(10)).await;
    let (stop_b, b) = start("b");
    // Across two pass intervals the leader keeps the lease, with the same token, never lapsed.
    let watch_until = Instant::now() + Duration::from_secs(9);
    while Instant::now() < watch_until {
        let (holder, now_token, expires_at) =
            store::lease_of(&app.db, "acme").await.unwrap().unwrap();
        assert_eq!((holder.as_str(), now_token), ("a", token));
        assert!(expires_at > app::storage::now_utc(), "the lease lapsed");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    // The leader dies without releasing: the follower takes over, but only after expiry.
    a.abort();
    let _ = a.await;
    let (_, _, last_expiry_of_a) = store::lease_of(&app.db, "acme").await.unwrap().unwrap();
    let (b_token, b_expires) = lease_held_by(&app, "b", Duration::from_secs(10)).await;
    assert_eq!(b_token, token + 1);
    let b_acquired = b_expires - chrono::Duration::seconds(settings.lease_secs as i64);
    assert!(
        b_acquired >= last_expiry_of_a,
        "b took the lease at {b_acquired} while a's ran to {last_expiry_of_a}"
    );
    // The old leader's token is fenced off.
    let stale = store::Lease {
        vendor_id: "acme".into(),
        holder: "a".into(),
        fencing_token: token,
        expires_at: last_expiry_of_a,
    };
    assert_eq!(
        store::store_page(&app.db, &stale, &[], None).await.unwrap(),
        None
    );
    assert!(!store::begin_pass(
        &app.db,
        &stale,
        app::storage::now_utc(),
        app::storage::now_utc()
    )
    .await
    .unwrap());
    // A leader that shuts down releases its lease: the next replica need not wait for expiry.
    stop_b.send(true).unwrap();
    b.await.unwrap();
    let ttl = chrono::Duration::seconds(settings.lease_secs as i64);
    let next = store::acquire_lease(&app.db, "acme", "c", ttl)
        .await
        .unwrap()
        .expect("released on shutdown");
    assert_eq!(next.fencing_token, token + 2);
}

/// Moves what is known of `vendor`'s last pass `secs` into the past, in the database and in
/// this replica's memory, as if that much time had gone by since.
async fn backdate_pass(app: &TestApp, round: &mut Round, vendor: &str, secs: i64) {
    let ago = chrono::Duration::seconds(secs);
    let synced = store::cursor(&app.db, vendor)
        .await
        .unwrap()
        .synced_to
        .unwrap();
    app::on_db!(&app.db, pool => {
        sqlx::query("UPDATE poller_cursors SET synced_to = $1 WHERE vendor_id = $2")
            .bind(synced - ago)
            .bind(vendor)
            .execute(pool)
            .await
            .map(|_| ())
    })
    .unwrap();
    if let Some(tried) = round.tried.get_mut(&VendorId::parse(vendor).unwrap()) {
        *tried -= ago;
    }
    round.passes.clear();
}

fn polled(round: &Round) -> Vec<&str> {
    for (vendor, result) in &round.passes {
        let report = result
            .as_ref()
            .unwrap_or_else(|e| panic!("{vendor}: {e:#}"));
        assert!(report.leader && report.complete, "{vendor}: {report:?}");
    }
    round.passes.iter().map(|(v, _)| v.as_str()).collect()
}

async fn each_vendor_is_polled_when_its_own_interval_is_due(db: TestDb) {
    let sim = sim::spawn(SimConfig::default()).await.unwrap();
    let app = TestApp::spawn(db).await;
    add_vendor(&app.db, "fast", Some(&sim.base_url()), &[SECRET]).await;
    add_vendor(&app.db, "hourly", Some(&sim.base_url()), &[SECRET]).await;
    add_vendor(&app.db, "no-api", None, &[SECRET]).await;
    let hourly = VendorId::parse("hourly").unwrap();
    app::storage::vendor_admin::set_poll_interval(
        &app.db,
        &hourly,
        Some(PollInterval::parse("1h").unwrap()),
        "ops",
    )
    .await
    .unwrap();
    // "fast" has no interval of its own: it follows the server's 20 s.
    let settings = PollerSettings {
        interval_secs: 20,
        ..settings()
    };
    let poller = Poller::new(app.db.clone(), settings, "a".into());

    // Never polled: both are due at once; the vendor without a base URL is never polled.
    let mut round = Round::default();
    let wait = poller.poll_due(&mut round).await;
    assert_eq!(polled(&round), ["fast", "hourly"]);
    assert!(
        wait > Duration::from_secs(15) && wait <= Duration::from_secs(20),
        "{wait:?}"
    );

    // A restarted replica (or another one) finds nothing due: the cursor says when each was
    // polled, and it sleeps until the first is due.
    let mut restarted = Round::default();
    let wait = poller.poll_due(&mut restarted).await;
    assert_eq!(polled(&restarted), Vec::<&str>::new());
    assert!(
        wait > Duration::from_secs(15) && wait <= Duration::from_secs(20),
        "{wait:?}"
    );

    // Half a minute on, the server's 20 s are up but the hour is not.
    backdate_pass(&app, &mut restarted, "fast", 30).await;
    backdate_pass(&app, &mut restarted, "hourly", 30).await;
    poller.poll_due(&mut restarted).await;
    assert_eq!(polled(&restarted), ["fast"]);

    // An hour on, the hourly vendor is due too.
    backdate_pass(&app, &mut restarted, "fast", 25).await;
    backdate_pass(&app, &mut restarted, "hourly", 3_600).await;
    poller.poll_due(&mut restarted).await;
    assert_eq!(polled(&restarted), ["fast", "hourly"]);

    // Back on the server's schedule, the hourly vendor is due 20 s after its pass.
    app::storage::vendor_admin::set_poll_interval(&app.db, &hourly, None, "ops")
        .await
        .unwrap();
    backdate_pass(&app, &mut restarted, "hourly", 21).await;
    poller.poll_due(&mut restarted).await;
    assert_eq!(polled(&restarted), ["hourly"]);
}

async fn the_poll_interval_is_set_from_the_cli(db: TestDb) {
    let ok = |out: std::process::Output| {
        assert!(out.status.success(), "{}", crate::helpers::stderr(&out));
        crate::helpers::stdout(&out)
    };
    ok(db.cli(&["vendor", "add", "acme", "--base-url", "http://127.0.0.1:9"]));
    let printed = ok(db.cli(&["vendor", "set", "acme", "--poll-interval", "90s"]));
    assert!(
        printed.contains("vendor acme is now polled every 1 min 30 s"),
        "{printed}"
    );
    let printed = ok(db.cli(&["vendor", "set", "acme", "--poll-interval", "90"]));
    assert!(printed.contains("nothing changed"), "{printed}");
    let listed = ok(db.cli(&["vendor", "list"]));
    assert!(listed.contains("1 min 30 s"), "{listed}");
    let conn = db.connect().await;
    let acme = VendorId::parse("acme").unwrap();
    let vendor = app::storage::vendors::get_vendor(&conn, &acme)
        .await
        .unwrap();
    assert_eq!(
        vendor.poll_interval,
        Some(PollInterval::from_secs(90).unwrap())
    );

    for (bad, says) in [
        ("5", "shorter than 10 seconds"),
        ("2d", "not a number of seconds"),
        ("25h", "longer than a day"),
    ] {
        let line = crate::helpers::assert_one_line_error(&db.cli(&[
            "vendor",
            "set",
            "acme",
            "--poll-interval",
            bad,
        ]));
        assert!(
            line.contains("--poll-interval") && line.contains(says),
            "{bad}: {line}"
        );
    }
    let vendor = app::storage::vendors::get_vendor(&conn, &acme)
        .await
        .unwrap();
    assert_eq!(
        vendor.poll_interval,
        Some(PollInterval::from_secs(90).unwrap())
    );

    let printed = ok(db.cli(&["vendor", "set", "acme", "--poll-interval", "default"]));
    assert!(
        printed.contains("now polled on the server's schedule"),
        "{printed}"
    );
    let vendor = app::storage::vendors::get_vendor(&conn, &acme)
        .await
        .unwrap();
    assert_eq!(vendor.poll_interval, None);
    let changes: Vec<_> = app::storage::audit::recent(&conn, 100)
        .await
        .unwrap()
        .into_iter()
        .filter(|r| r.action == "vendor_poll_interval")
        .collect();
    assert_eq!(changes.len(), 2, "{changes:?}");
    conn.close().await;
}

/// Waits until every delivery the simulator will make has ended (sent or given up).
async fn settled(sim: &SimHandle) -> giftrecon::sim::SimStats {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let s = sim.stats();
        if s.webhooks_dropped + s.webhooks_sent + s.webhooks_failed
            == s.webhook_events + s.webhooks_duplicated
        {
            return s;
        }
        assert!(Instant::now() < deadline, "deliveries never settled: {s:?}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

async fn a_thousand_orders_with_lossy_webhooks_match_the_vendor_after_one_pass(db: TestDb) {
    let app = TestApp::spawn(db).await;
    let sim = sim::spawn(
        SimConfig {
            seed: Some(42),
            faults: Faults {
                webhook_drop_rate: 0.30,
                webhook_duplicate_rate: 0.05,
                webhook_reorder_rate: 0.05,
                bad_signature_rate: 0.02,
                ..Faults::default()
            },
            ..SimConfig::default()
        }
        .with_webhook(app.url("/webhooks/acme"), SECRET),
    )
    .await
    .unwrap();
    add_vendor(&app.db, "acme", Some(&sim.base_url()), &[SECRET]).await;
    let keys = keys(1_000);
    let ids = add_pending_orders(&app.db, "acme", &keys).await;
    let client = reqwest::Client::new();
    let mut expected = HashMap::new();
    // Every order is announced as pending, then moves on; some are refunded later.
    for chunk in (0..keys.len()).collect::<Vec<_>>().chunks(100) {
        let inserts = chunk.iter().map(|&i| {
            let client = &client;
            let sim = &sim;
            let key = &keys[i];
            async move {
                let vid = format!("v-{i:04}");
                sim_order(client, sim, key, &vid, "pending", true).await;
                let status = if i % 10 == 0 { "failed" } else { "fulfilled" };
                sim_status(client, sim, &vid, status).await;
                if i % 7 == 1 && status == "fulfilled" {
                    sim_status(client, sim, &vid, "refunded").await;
                    return GlState::Refunded;
                }
                if status == "failed" {
                    GlState::Failed
                } else {
                    GlState::Fulfilled
                }
            }
        });
        let states = futures::future::join_all(inserts).await;
        for (&i, state) in chunk.iter().zip(states) {
            expected.insert(i, state);
        }
        // Let each burst be delivered before the next, as a vendor's steady trickle would be:
        // the test is about lost and disordered events, not about outlasting a flood.
        settled(&sim).await;
    }
    let stats = settled(&sim).await;
    assert!(
        stats.webhooks_dropped > 0
            && stats.webhooks_duplicated > 0
            && stats.webhooks_bad_signature > 0
            && stats.webhooks_reordered > 0,
        "{stats:?}"
    );
    let before = gl_states(&app, &ids).await;
    let wrong_before = before
        .iter()
        .enumerate()
        .filter(|(i, s)| **s != expected[i])
        .count();
    assert!(
        wrong_before > 0,
        "lost webhooks should have left some orders behind"
    );

    let poller = Poller::new(app.db.clone(), settings(), "a".into());
    let report = poller
        .run_once(&VendorId::parse("acme").unwrap())
        .await
        .unwrap();
    assert!(report.complete, "{report:?}");
    assert_eq!(report.records, 1_000);
    assert_eq!(report.backfills as usize, wrong_before, "{report:?}");
    let after = gl_states(&app, &ids).await;
    for (i, state) in after.iter().enumerate() {
        assert_eq!(*state, expected[&i], "order {i}");
    }
    // No event applied twice: one order event per stored event, and no event id twice.
    let inbox_rows = app.count("webhook_inbox").await;
    assert_eq!(
        app.count("order_events WHERE kind = 'webhook'").await,
        inbox_rows
    );
    // Bad signatures left nothing: every stored event verified and parsed.
    assert_eq!(app.count("webhook_inbox WHERE state <> 'applied'").await, 0);
    let delivered_events = (stats.webhook_events - stats.webhooks_dropped) as i64;
    assert!(
        inbox_rows <= delivered_events,
        "{inbox_rows} > {delivered_events}"
    );
    assert!(
        inbox_rows >= delivered_events - stats.webhooks_bad_signature as i64,
        "{inbox_rows} {stats:?}"
    );
    assert_eq!(app.count("vendor_records").await, 1_000);
}

on_both_backends!(
    vendor_set_and_rotate_secret_from_the_cli,
    poll_once_from_the_cli_prints_what_it_did,
    the_poll_interval_is_set_from_the_cli,
);

async fn active_secrets(db: &app::storage::Db) -> Vec<String> {
    use secrecy::ExposeSecret;
    let mut secrets: Vec<String> =
        app::storage::webhooks::active_secrets(db, "acme", app::storage::now_utc())
            .await
            .unwrap()
            .iter()
            .map(|s| s.expose_secret().to_string())
            .collect();
    secrets.sort();
    secrets
}

async fn vendor_set_and_rotate_secret_from_the_cli(db: TestDb) {
    let ok = |out: std::process::Output| {
        assert!(out.status.success(), "{}", crate::helpers::stderr(&out));
        crate::helpers::stdout(&out)
    };
    ok(db.cli(&["vendor", "add", "acme", "--webhook-secret", "s1"]));
    let printed = ok(db.cli(&[
        "vendor",
        "set",
        "acme",
        "--base-url",
        "http://127.0.0.1:9",
        "--webhook-secret",
        "s2",
        "--webhook-secret",
        "s3",
    ]));
    assert!(printed.contains("2 active webhook secret(s)"), "{printed}");
    assert!(!printed.contains("s2"), "{printed}");
    let conn = db.connect().await;
    assert_eq!(active_secrets(&conn).await, ["s2", "s3"]);
    let vendor = app::storage::vendors::get_vendor(&conn, &VendorId::parse("acme").unwrap())
        .await
        .unwrap();
    assert_eq!(vendor.base_url.as_deref(), Some("http://127.0.0.1:9"));

    let printed = ok(db.cli(&[
        "vendor",
        "rotate-secret",
        "acme",
        "--secret",
        "s4",
        "--grace-hours",
        "24",
    ]));
    assert!(printed.contains("stops verifying at"), "{printed}");
    // During the grace period the rotated-out secret still verifies.
    assert_eq!(active_secrets(&conn).await, ["s2", "s3", "s4"]);
    ok(db.cli(&[
        "vendor",
        "rotate-secret",
        "acme",
        "--secret",
        "s5",
        "--grace-hours",
        "0",
    ]));
    // The oldest secret without a retirement date (s3) retires at once.
    assert_eq!(active_secrets(&conn).await, ["s2", "s4", "s5"]);

    let line = crate::helpers::assert_one_line_error(&db.cli(&[
        "vendor",
        "set",
        "nobody",
        "--base-url",
        "http://127.0.0.1:9",
    ]));
    assert!(line.contains("not found"), "{line}");
    let line = crate::helpers::assert_one_line_error(&db.cli(&["vendor", "set", "acme"]));
    assert!(line.contains("nothing to change"), "{line}");
    conn.close().await;
}

async fn poll_once_from_the_cli_prints_what_it_did(db: TestDb) {
    let sim = sim::spawn(SimConfig::default()).await.unwrap();
    let conn = db.connect().await;
    add_vendor(&conn, "acme", Some(&sim.base_url()), &[SECRET]).await;
    let ids = add_pending_orders(&conn, "acme", &keys(3)).await;
    let client = reqwest::Client::new();
    for (i, key) in keys(3).iter().enumerate() {
        sim_order(&client, &sim, key, &format!("v-{i}"), "fulfilled", false).await;
    }
    sim_order(&client, &sim, "elsewhere", "v-x", "fulfilled", false).await;
    let out = db.cli(&["poll", "--vendor", "acme", "--once"]);
    assert!(out.status.success(), "{}", crate::helpers::stderr(&out));
    let printed = crate::helpers::stdout(&out);
    assert!(
        printed.contains("acme: pages=1 records=4 backfills=3 vendor_only=1"),
        "{printed}"
    );
    for id in &ids {
        let order = orders::get(&conn, id).await.unwrap().unwrap();
        assert_eq!(order.gl_state, GlState::Fulfilled);
    }
    let line = crate::helpers::assert_one_line_error(&db.cli(&["poll", "--vendor", "acme"]));
    assert!(line.contains("--once"), "{line}");
    let out = db.cli(&["poll", "--vendor", "nobody", "--once"]);
    let line = crate::helpers::assert_one_line_error(&out);
    assert!(line.contains("not found"), "{line}");
    conn.close().await;
}

/// Two `giftrecon serve` processes on one PostgreSQL database: one polls; SIGKILL it and the
/// other takes over within the lease time; no record is stored twice.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_serve_processes_one_polls_and_the_other_takes_over_after_sigkill() {
    use std::io::{BufRead, BufReader};
    use std::process::{Child, Command, Stdio};

    let db = TestDb::postgres().await;
    let sim = sim::spawn(SimConfig::default()).await.unwrap();
    let conn = db.connect().await;
    add_vendor(&conn, "acme", Some(&sim.base_url()), &[SECRET]).await;
    let client = reqwest::Client::new();
    for i in 0..20 {
        sim_order(
            &client,
            &sim,
            &format!("k-{i}"),
            &format!("v-{i:02}"),
            "fulfilled",
            false,
        )
        .await;
    }
    const LEASE_SECS: u64 = 2;
    std::fs::write(
        db.dir.path().join("giftrecon.toml"),
        format!("[outbox]\nworkers = 0\n[poller]\ninterval_secs = 1\nlease_secs = {LEASE_SECS}\noverlap_secs = 5\n"),
    )
    .unwrap();
    let start = || -> Child {
        let mut child = Command::new(env!("CARGO_BIN_EXE_giftrecon"))
            .args([
                "--config",
                "giftrecon.toml",
                "serve",
                "--addr",
                "127.0.0.1:0",
            ])
            .current_dir(db.dir.path())
            .env("DATABASE_URL", &db.url)
            .env_remove("GIFTRECON_FAILPOINT")
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let mut line = String::new();
        BufReader::new(child.stdout.take().unwrap())
            .read_line(&mut line)
            .unwrap();
        assert!(line.contains("http://"), "{line:?}");
        child
    };
    let mut first = start();
    let mut second = start();
    let holder_pid = |holder: &str| holder.split('-').next().unwrap().parse::<u32>().unwrap();

    // Wait for one of them to take the lease and finish a pass.
    let deadline = Instant::now() + Duration::from_secs(20);
    let (leader_pid, token) = loop {
        let lease = store::lease_of(&conn, "acme").await.unwrap();
        let synced = store::cursor(&conn, "acme")
            .await
            .unwrap()
            .synced_to
            .is_some();
        if let (Some((holder, token, _)), true) = (lease, synced) {
            break (holder_pid(&holder), token);
        }
        assert!(Instant::now() < deadline, "nobody polled");
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    assert!(leader_pid == first.id() || leader_pid == second.id());
    // The leader keeps it while it lives: the follower never takes it.
    for _ in 0..10 {
        tokio::time::sleep(Duration::from_millis(200)).await;
        let (holder, now_token, _) = store::lease_of(&conn, "acme").await.unwrap().unwrap();
        assert_eq!((holder_pid(&holder), now_token), (leader_pid, token));
    }
    let (leader, follower) = if leader_pid == first.id() {
        (&mut first, &mut second)
    } else {
        (&mut second, &mut first)
    };
    leader.kill().unwrap();
    leader.wait().unwrap();
    let killed_at = Instant::now();
    let deadline = killed_at + Duration::from_secs(LEASE_SECS + 5);
    loop {
        let (holder, new_token, _) = store::lease_of(&conn, "acme").await.unwrap().unwrap();
        if holder_pid(&holder) == follower.id() {
            assert!(new_token > token);
            break;
        }
        assert!(Instant::now() < deadline, "the follower never took over");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let took = killed_at.elapsed();
    assert!(
        took <= Duration::from_secs(LEASE_SECS + 2),
        "takeover took {took:?}"
    );
    // A new order shows up through the new leader; every record is stored once.
    sim_order(&client, &sim, "k-new", "v-new", "fulfilled", false).await;
    let deadline = Instant::now() + Duration::from_secs(15);
    while vendor_records::get(&conn, "acme", "v-new")
        .await
        .unwrap()
        .is_none()
    {
        assert!(Instant::now() < deadline, "the new leader does not poll");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let records: i64 = app::on_db!(&conn, pool => {
        sqlx::query_scalar("SELECT COUNT(*) FROM vendor_records").fetch_one(pool).await
    })
    .unwrap();
    assert_eq!(records, 21);
    let _ = follower.kill();
    let _ = follower.wait();
    conn.close().await;
}
