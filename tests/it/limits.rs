//! Requests refused before their handler, limited per client identity: floods of an unknown
//! path and of a forbidden endpoint get `429` with `Retry-After` past the rate, the audit trail
//! grows by the rate and one aggregate record, not by the flood, and finds are still ACKed.

use std::time::Instant;

use futures_util::future::join_all;
use pdp_provider::audit::aggregate::requests_of;
use pdp_provider::audit::AuditRecord;
use pdp_provider::tls::pki::files;
use serde_json::Value;

use crate::harness::{find_body, post_find, Env, Server};

const PER_S: u32 = 1;
const BURST: u32 = 10;

fn new_id() -> String {
    uuid::Uuid::new_v4().to_string()
}

/// A config with a small rate and one window for the whole test (its records are written when
/// the server stops).
fn limited_config(env: &Env) -> pdp_provider::config::Config {
    let mut config = env.config();
    config.limits.refused_per_s = PER_S;
    config.limits.refused_burst = BURST;
    config.limits.summary_window_s = 3600;
    config
}

/// What a flood got back: statuses, and the `Retry-After` and code of each `429`.
#[derive(Default, Debug)]
struct Flood {
    answered: u64,
    limited: u64,
    other: Vec<u16>,
}

/// Sends `n` requests made by `send`, 100 at a time (a `429` is held for its `Retry-After`).
async fn flood<F, Fut>(n: usize, send: F) -> Flood
where
    F: Fn() -> Fut,
    Fut: std::future::Future<Output = reqwest::Response>,
{
    let mut out = Flood::default();
    for _ in 0..n / 100 {
        for resp in join_all((0..100).map(|_| send())).await {
            match resp.status().as_u16() {
                429 => {
                    let retry: u64 = resp.headers()["retry-after"]
                        .to_str()
                        .unwrap()
                        .parse()
                        .unwrap();
                    assert!(retry >= 1, "Retry-After {retry}");
                    let p: Value = resp.json().await.unwrap();
                    assert_eq!(p["errors"][0]["code"], "TOO_MANY_REQUESTS");
                    out.limited += 1;
                }
                s => {
                    out.other.push(s);
                    out.answered += 1;
                }
            }
        }
    }
    out
}

/// The most refusals one identity can have answered in `elapsed` seconds.
fn answered_bound(elapsed: f64) -> u64 {
    u64::from(BURST) + (elapsed.ceil() as u64 + 1) * u64::from(PER_S)
}

/// A counter's value in a scrape. The recorder is the test process's, shared by every server in
/// it: other tests add to it, so a test can only say it counted at least its own.
fn counter(metrics: &str, series: &str) -> u64 {
    let series = format!("{series} ");
    metrics
        .lines()
        .find_map(|l| l.strip_prefix(&series))
        .unwrap_or_else(|| panic!("no {series} in {metrics}"))
        .trim()
        .parse()
        .unwrap()
}

/// The audit records of the identity whose subject names `who`.
async fn audit_of(env: &Env, who: &str) -> Vec<AuditRecord> {
    env.store()
        .audit_records(0, i64::MAX, None)
        .await
        .unwrap()
        .into_iter()
        .filter(|a| a.party.contains(who))
        .collect()
}

#[tokio::test]
async fn a_flood_of_an_unknown_path_is_limited_per_identity_and_audited_in_aggregate() {
    let env = Env::new();
    let server = Server::start(limited_config(&env)).await;
    let dashboard = env.client(files::DASHBOARD, files::DASHBOARD_KEY);
    let pfs = env.pfs();
    let nope = server.url("/nope");

    let started = Instant::now();
    let dash = flood(300, || dashboard.get(&nope).send().map_ok()).await;
    let elapsed = started.elapsed().as_secs_f64();
    assert!(dash.other.iter().all(|s| *s == 404), "{:?}", dash.other);
    assert!(dash.limited > 0, "{dash:?}");
    assert!(
        dash.answered <= answered_bound(elapsed),
        "{dash:?} in {elapsed} s"
    );

    // Another identity has its own bucket, and a find is ACKed.
    let resp = pfs.get(&nope).send().await.unwrap();
    assert_eq!(resp.status(), 404);
    let find = server.url("/find-requests");
    assert_eq!(
        post_find(&pfs, &find, &new_id(), &find_body())
            .await
            .status(),
        202
    );

    // The same identity past its rate of refusals: its finds are still ACKed.
    let started = Instant::now();
    let own = flood(200, || pfs.get(&nope).send().map_ok()).await;
    let own_elapsed = started.elapsed().as_secs_f64();
    assert!(own.limited > 0, "{own:?}");
    for _ in 0..5 {
        assert_eq!(
            post_find(&pfs, &find, &new_id(), &find_body())
                .await
                .status(),
            202
        );
    }

    let limited = counter(
        &server.metrics().await,
        "pdp_requests_limited_total{endpoint=\"unknown\"}",
    );
    assert!(limited >= dash.limited + own.limited, "{limited}");
    server.stop().await;

    // The dashboard's trail: one record per answered 404, one aggregate for every 429.
    let records = audit_of(&env, "dashboard").await;
    let single: Vec<_> = records.iter().filter(|a| a.status == 404).collect();
    let aggregate: Vec<_> = records.iter().filter(|a| a.status == 429).collect();
    assert_eq!(single.len() as u64, dash.answered);
    assert!(single.iter().all(|a| a.endpoint == "* unknown"));
    assert_eq!(aggregate.len(), 1, "{aggregate:?}");
    assert_eq!(aggregate[0].endpoint, "* unknown (limited)");
    assert_eq!(
        aggregate[0].outcome,
        format!("rate_limited not_found x{}", dash.limited)
    );
    assert_eq!(records.len() as u64, dash.answered + 1);
    assert!(records.len() as u64 <= answered_bound(elapsed) + 1);
    assert_eq!(records.iter().map(requests_of).sum::<u64>(), 300);

    // The PFS's: its refusals bounded the same way, and every find.
    let records = audit_of(&env, "pension-finder-service").await;
    let acks = records.iter().filter(|a| a.status == 202).count();
    assert_eq!(acks, 6);
    let refused: u64 = records
        .iter()
        .filter(|a| a.endpoint.starts_with("* unknown"))
        .map(requests_of)
        .sum();
    assert_eq!(refused, 201);
    assert!(records.len() as u64 <= 6 + answered_bound(own_elapsed) + 1 + 1);
}

#[tokio::test]
async fn an_identity_flooding_an_endpoint_it_may_not_call_is_limited_and_finds_are_not() {
    let env = Env::new();
    let server = Server::start(limited_config(&env)).await;
    let dashboard = env.client(files::DASHBOARD, files::DASHBOARD_KEY);
    let pfs = env.pfs();
    let find = server.url("/find-requests");

    let body = find_body();
    let started = Instant::now();
    let dash = flood(300, || {
        dashboard
            .post(&find)
            .header("X-Request-ID", new_id())
            .json(&body)
            .send()
            .map_ok()
    })
    .await;
    let elapsed = started.elapsed().as_secs_f64();
    assert!(dash.other.iter().all(|s| *s == 403), "{:?}", dash.other);
    assert!(dash.limited > 0 && dash.answered <= answered_bound(elapsed));

    // Finds from the identity allowed to make them, in a flood of their own: never a 429.
    let (pfs, find, body) = (&pfs, &find, &body);
    let acks = flood(100, || {
        let id = new_id();
        async move { post_find(pfs, find, &id, body).await }
    })
    .await;
    assert_eq!(
        (acks.limited, acks.other.iter().all(|s| *s == 202)),
        (0, true)
    );
    let metrics = server.metrics().await;
    let limited = counter(&metrics, "pdp_requests_limited_total{endpoint=\"find\"}");
    assert!(limited >= dash.limited, "{limited}");
    let refused = counter(
        &metrics,
        "pdp_access_refused_total{endpoint=\"POST /find-requests\"}",
    );
    assert!(refused >= 300, "{refused}");
    server.stop().await;

    let records = audit_of(&env, "dashboard").await;
    let aggregate: Vec<_> = records.iter().filter(|a| a.status == 429).collect();
    assert_eq!(aggregate.len(), 1, "{aggregate:?}");
    assert_eq!(aggregate[0].endpoint, "POST /find-requests (limited)");
    assert_eq!(
        aggregate[0].outcome,
        format!("rate_limited forbidden x{}", dash.limited)
    );
    assert_eq!(records.iter().map(requests_of).sum::<u64>(), 300);
    assert_eq!(records.len() as u64, dash.answered + 1);
}

/// `send()`'s result, unwrapped: a refused request is still an answer.
trait MapOk {
    fn map_ok(self) -> impl std::future::Future<Output = reqwest::Response>;
}

impl<F> MapOk for F
where
    F: std::future::Future<Output = reqwest::Result<reqwest::Response>>,
{
    async fn map_ok(self) -> reqwest::Response {
        self.await.unwrap()
    }
}

/// The real binary at `RUST_LOG=warn` with the small rate; every line it logs is kept.
struct Logged {
    child: std::process::Child,
    addr: std::net::SocketAddr,
    lines: std::sync::mpsc::Receiver<String>,
}

fn start_logged(env: &Env) -> Logged {
    use std::io::{BufRead, BufReader};
    let extra = format!(
        "[workers]\nmax_in_flight = 0\n\
         [limits]\nrefused_per_s = {PER_S}\nrefused_burst = {BURST}\nsummary_window_s = 3600\n"
    );
    let key = env.config().crypto.data_key_file.unwrap();
    // At info, to read the bound address; the lines counted below are the WARNs.
    let mut child = env.spawn_serve(&env.serve_toml(&key, "https://127.0.0.1:9", &extra));
    let stderr = child.stderr.take().unwrap();
    let (tx, lines) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stderr).lines().map_while(Result::ok) {
            let _ = tx.send(line);
        }
    });
    let addr = loop {
        let line = lines
            .recv_timeout(std::time::Duration::from_secs(30))
            .expect("binary started");
        if let Some(rest) = line
            .split("addr=")
            .nth(1)
            .filter(|_| line.contains("listening"))
        {
            let addr = rest.split_whitespace().next().unwrap();
            break addr
                .trim_matches(|c: char| !c.is_ascii_digit() && c != '.' && c != ':')
                .parse()
                .unwrap();
        }
    };
    Logged { child, addr, lines }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn refusals_of_one_identity_are_logged_once_a_window_with_their_counts() {
    let env = Env::new();
    let mut bin = start_logged(&env);
    let url = format!("https://127.0.0.1:{}/find-requests", bin.addr.port());
    let dashboard = env.client(files::DASHBOARD, files::DASHBOARD_KEY);
    let body = find_body();
    let dash = flood(200, || {
        dashboard
            .post(&url)
            .header("X-Request-ID", new_id())
            .json(&body)
            .send()
            .map_ok()
    })
    .await;
    assert!(dash.limited > 0 && dash.answered > 1, "{dash:?}");

    // SIGTERM: the window's counts are written and logged as the endpoint stops.
    let status = std::process::Command::new("kill")
        .args(["-TERM", &bin.child.id().to_string()])
        .status()
        .unwrap();
    assert!(status.success());
    assert_eq!(bin.child.wait().unwrap().code(), Some(0));
    let warns: Vec<String> = bin
        .lines
        .try_iter()
        .filter(|l| l.contains("WARN"))
        .collect();
    let with = |text: &str| warns.iter().filter(|l| l.contains(text)).count();
    // 200 refusals: one line for the first 403, one for the first 429, one with the counts.
    assert_eq!(
        with("client identity not allowed on this endpoint"),
        1,
        "{warns:#?}"
    );
    assert_eq!(with("over its rate of refused requests"), 1, "{warns:#?}");
    let summary: Vec<_> = warns
        .iter()
        .filter(|l| l.contains("refused requests of one client identity in the last window"))
        .collect();
    assert_eq!(summary.len(), 1, "{warns:#?}");
    assert!(
        summary[0].contains(&format!("answered={}", dash.answered))
            && summary[0].contains(&format!("limited={}", dash.limited))
            && summary[0].contains("refusal=\"forbidden\""),
        "{}",
        summary[0]
    );
    assert!(warns.len() <= 4, "{warns:#?}");
}
