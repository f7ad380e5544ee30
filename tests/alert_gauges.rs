//! The gauges the alerting rules (`deploy/prometheus/alerts.yml`) watch for quiet failures,
//! read from a running endpoint's `/metrics` while the fault they measure is made and mended:
//! a member record the data key does not open, a find left open, a store refusing connections,
//! a view signing key past its year. Its own test binary, so that the process-wide recorder holds
//! this file's servers only; its tests run one at a time (the gauges are one per process).

#[path = "it/harness.rs"]
mod harness;

use std::time::{Duration, SystemTime};

use harness::{post_find, Env, Server};
use pdp_provider::members::generate::{find_for, FindKind};
use pdp_provider::sealed::DataKey;
use pdp_provider::tls::pki::files;

/// One test at a time: the gauges are the process's, not a server's.
static SERIAL: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

/// The value of the sample `series` (a name without labels) in a scrape, if exported.
fn value(scrape: &str, series: &str) -> Option<f64> {
    scrape.lines().find_map(|l| {
        l.strip_prefix(series)?
            .strip_prefix(' ')?
            .trim()
            .parse()
            .ok()
    })
}

/// Scrapes `server` until `series` satisfies `ok`, for at most 20 s; its value.
async fn gauge_until(server: &Server, series: &str, ok: impl Fn(f64) -> bool) -> f64 {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    loop {
        let scrape = server.metrics().await;
        let v = value(&scrape, series);
        if let Some(v) = v.filter(|v| ok(*v)) {
            return v;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "{series} = {v:?} did not reach the value expected in 20 s"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn members_unreadable_and_stored_open_finds_reports_and_the_signing_key_are_exported() {
    let _serial = SERIAL.lock().await;
    let env = Env::new();
    let yesterday = |now: chrono::DateTime<chrono::Utc>| {
        pdp_provider::day_start(now.date_naive() - chrono::Days::new(1)) as f64 / 1e6
    };
    let before = yesterday(chrono::Utc::now());
    // No CAS work (the harness's default): a matching find stays queued.
    let mut config = env.config();
    config.matching.refresh_ms = 100;
    let server = Server::start(config).await;

    // At start: no member, no find open; nothing owed by a connection live since today, so
    // yesterday counts as submitted; a fresh signing key.
    gauge_until(&server, "pdp_members_stored", |v| v == 0.0).await;
    let scrape = server.metrics().await;
    assert_eq!(value(&scrape, "pdp_members_indexed"), Some(0.0));
    assert_eq!(value(&scrape, "pdp_members_unreadable"), Some(0.0));
    assert_eq!(value(&scrape, "pdp_store_up"), Some(1.0));
    gauge_until(&server, "pdp_find_oldest_open_seconds", |v| v == 0.0).await;
    let day = gauge_until(&server, "pdp_report_last_submitted_day_seconds", |_| true).await;
    let after = yesterday(chrono::Utc::now());
    assert!(day == before || day == after, "{day}: not yesterday");
    let year = 365.0 * 86_400.0;
    let key_left = gauge_until(&server, "pdp_signing_key_expiry_seconds", |_| true).await;
    assert!(key_left <= year && key_left > year - 86_400.0, "{key_left}");

    // A member sealed with a key this endpoint does not hold: stored, not indexed, unreadable.
    let schemes = pdp_provider::members::generate::schemes(harness::SEED);
    let members: Vec<_> = (0..20)
        .map(|i| pdp_provider::members::generate::member(harness::SEED, i, &schemes))
        .collect();
    let json: Vec<_> = members
        .iter()
        .map(|m| serde_json::to_value(m).unwrap())
        .collect();
    let other = DataKey::from_hex(&DataKey::generate_hex()).unwrap();
    env.import_sealed_with(other, &json[..1]).await;
    gauge_until(&server, "pdp_members_unreadable", |v| v == 1.0).await;
    let scrape = server.metrics().await;
    assert_eq!(value(&scrape, "pdp_members_stored"), Some(1.0));
    assert_eq!(value(&scrape, "pdp_members_indexed"), Some(0.0));
    // Imported under this endpoint's key (after the record it cannot open is removed, as
    // `members import` refuses a store its key does not open): indexed, nothing unreadable.
    let store = env.store();
    let removal = pdp_provider::model::MemberChange::Remove(members[0].member_id.clone());
    store.apply_members(vec![removal], false).await.unwrap();
    store.close().await;
    env.import_sealed_with(env.key(), &json).await;
    gauge_until(&server, "pdp_members_indexed", |v| v == 20.0).await;
    let scrape = server.metrics().await;
    assert_eq!(value(&scrape, "pdp_members_unreadable"), Some(0.0));
    assert_eq!(value(&scrape, "pdp_members_stored"), Some(20.0));

    // A matching find left queued ages from its ACK.
    let id = uuid::Uuid::new_v4().to_string();
    let with_nino = members.iter().find(|m| m.nino.is_some()).unwrap();
    let url = server.url("/find-requests");
    let find = find_for(with_nino, FindKind::Yes, &id);
    let resp = post_find(&env.pfs(), &url, &id, &find).await;
    assert_eq!(resp.status(), 202);
    gauge_until(&server, "pdp_find_oldest_open_seconds", |v| v > 0.0).await;

    // A signing key whose file was put in place 360 days ago has 5 days left.
    let key = std::fs::File::options()
        .write(true)
        .open(env.cert(files::VIEW_SIGNING_KEY))
        .unwrap();
    key.set_modified(SystemTime::now() - Duration::from_secs(360 * 86_400))
        .unwrap();
    let left = gauge_until(&server, "pdp_signing_key_expiry_seconds", |v| {
        v < 6.0 * 86_400.0
    })
    .await;
    assert!(left > 4.0 * 86_400.0, "{left}");
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn store_up_follows_a_postgres_database_that_refuses_connections() {
    let _serial = SERIAL.lock().await;
    let env = Env::postgres().await;
    let url = env.postgres.clone().unwrap();
    let name = url.rsplit("dbname=").next().unwrap().to_owned();
    let mut config = env.config();
    config.matching.refresh_ms = 100;
    let server = Server::start(config).await;
    gauge_until(&server, "pdp_store_up", |v| v == 1.0).await;

    // The database stops taking connections and its open ones are ended: the store is down.
    let base = std::env::var("PDP_TEST_DATABASE_URL").unwrap();
    let (admin, conn) = tokio_postgres::connect(&base, tokio_postgres::NoTls)
        .await
        .unwrap();
    tokio::spawn(conn);
    admin
        .batch_execute(&format!("ALTER DATABASE {name} ALLOW_CONNECTIONS false"))
        .await
        .unwrap();
    // Ended until none is left: a connection the pool was opening while the database stopped
    // taking them may have got in after the first round (then none can).
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    loop {
        admin
            .batch_execute(&format!(
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = '{name}'"
            ))
            .await
            .unwrap();
        tokio::time::sleep(Duration::from_millis(500)).await;
        if value(&server.metrics().await, "pdp_store_up") == Some(0.0) {
            break;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "pdp_store_up did not fall to 0 in 20 s"
        );
    }
    admin
        .batch_execute(&format!("ALTER DATABASE {name} ALLOW_CONNECTIONS true"))
        .await
        .unwrap();
    gauge_until(&server, "pdp_store_up", |v| v == 1.0).await;
    server.stop().await;
}
