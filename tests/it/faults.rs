//! Faults an operator meets: a data key that does not open the stored members (at start and
//! while serving), a PostgreSQL server stopped under load, and the ops listener held at its
//! connection cap while an orchestrator polls health.

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use pdp_provider::members::generate::FindKind;
use pdp_provider::sealed::DataKey;
use pdp_provider::store::FindState;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use crate::harness::{eventually_for, find_body, find_for, member_with, post_find, Env, Server};

/// The real binary on a config file, its log lines collected as they come.
struct Binary {
    child: Child,
    lines: Arc<Mutex<Vec<String>>>,
}

impl Binary {
    /// Starts `serve` on `env`'s store (its PostgreSQL database when it has one) with the data
    /// key in `key_file`; does not wait for it to listen.
    fn spawn(env: &Env, key_file: &Path) -> Binary {
        let extra = "[workers]\nmax_in_flight = 0\n[matching]\nrefresh_ms = 200\n";
        let mut child = env.spawn_serve(&env.serve_toml(key_file, "https://127.0.0.1:9", extra));
        let stderr = child.stderr.take().unwrap();
        let lines = Arc::new(Mutex::new(Vec::new()));
        let sink = lines.clone();
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                sink.lock().unwrap().push(line);
            }
        });
        Binary { child, lines }
    }

    fn log(&self) -> Vec<String> {
        self.lines.lock().unwrap().clone()
    }

    /// Waits until it listens; its ecosystem and ops addresses.
    async fn listening(&self) -> (std::net::SocketAddr, std::net::SocketAddr) {
        let field = |line: &str, name: &str| {
            line.split(&format!(" {name}="))
                .nth(1)
                .and_then(|s| s.split_whitespace().next())
                .map(|s| s.trim_matches(|c: char| !c.is_ascii_digit() && c != '.' && c != ':'))
                .map(|s| s.parse().unwrap())
        };
        eventually_for(Duration::from_secs(30), || {
            let log = self.log();
            let line = log.iter().find(|l| l.contains("endpoint listening"))?;
            Some((field(line, "addr")?, field(line, "ops_addr")?))
        })
        .await
    }

    fn stop(mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A new data key in a file of `env`'s: the file, and the key.
fn other_key(env: &Env) -> (PathBuf, DataKey) {
    let hex = DataKey::generate_hex();
    let path = env.dir.path().join("other-data.key");
    std::fs::write(&path, &hex).unwrap();
    (path, DataKey::from_hex(&hex).unwrap())
}

/// One HTTP/1.1 GET on a new plain connection: the status and body.
async fn get(addr: std::net::SocketAddr, path: &str) -> std::io::Result<(u16, String)> {
    let mut tcp = tokio::net::TcpStream::connect(addr).await?;
    let req = format!("GET {path} HTTP/1.1\r\nHost: ops\r\nConnection: close\r\n\r\n");
    tcp.write_all(req.as_bytes()).await?;
    let mut out = String::new();
    tcp.read_to_string(&mut out).await?;
    let status = out
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(0);
    let body = out.split("\r\n\r\n").nth(1).unwrap_or("").to_owned();
    Ok((status, body))
}

async fn ready(ops: std::net::SocketAddr) -> (u16, String) {
    get(ops, "/health/ready")
        .await
        .unwrap_or((0, String::new()))
}

/// Polls `f` until it returns `Some`, for at most `limit`: waits on conditions, not sleeps.
async fn until<T, F, Fut>(limit: Duration, mut f: F) -> T
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Option<T>>,
{
    let deadline = tokio::time::Instant::now() + limit;
    loop {
        if let Some(v) = f().await {
            return v;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "condition not met in {limit:?}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// Waits until `/health/ready` answers `status`; its body.
async fn ready_is(ops: std::net::SocketAddr, status: u16, limit: Duration) -> String {
    until(limit, || async move {
        let (s, body) = ready(ops).await;
        (s == status).then_some(body)
    })
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn serve_refuses_a_store_its_data_key_does_not_open_and_starts_on_the_right_one() {
    let env = Env::new();
    let members = env.with_members(20).await;
    let (other_file, other) = other_key(&env);

    let mut wrong = Binary::spawn(&env, &other_file);
    let status = tokio::task::spawn_blocking(move || {
        let s = wrong.child.wait().unwrap();
        (s, wrong)
    });
    let (status, wrong) = tokio::time::timeout(Duration::from_secs(30), status)
        .await
        .expect("serve under the wrong key exits")
        .unwrap();
    assert_eq!(
        status.code(),
        Some(2),
        "serve under the wrong key: {status:?}"
    );
    // The reader thread drains what is left once the process has gone.
    let log = eventually_for(Duration::from_secs(5), || {
        let log = wrong.log().join("\n");
        log.contains("not started").then_some(log)
    })
    .await;
    assert!(
        log.contains("20 of 20 stored member records do not open"),
        "{log}"
    );
    assert!(log.contains("crypto.data_key_file"), "{log}");
    assert!(log.contains(&other_file.display().to_string()), "{log}");
    assert!(
        log.contains(&format!("key ID {}", hex::encode(other.active_id()))),
        "{log}"
    );
    let other_hex = std::fs::read_to_string(&other_file).unwrap();
    assert!(!log.contains(other_hex.trim()), "the key's value is logged");
    assert!(!log.contains("endpoint listening"), "{log}");

    // Restarted on the key that sealed them: every member is indexed and a find is matched.
    let right = Binary::spawn(&env, &env.cert(pdp_provider::tls::pki::files::DATA_KEY));
    let (addr, ops) = right.listening().await;
    assert_eq!(ready_is(ops, 200, Duration::from_secs(10)).await, "ready\n");
    let url = format!("https://127.0.0.1:{}/find-requests", addr.port());
    let member = member_with(&members, 1);
    let id = uuid::Uuid::new_v4().to_string();
    let resp = post_find(&env.pfs(), &url, &id, &find_for(member, FindKind::Yes)).await;
    assert_eq!(resp.status(), 202);
    let stored = env.store().find_request(&id).await.unwrap().unwrap();
    assert_eq!(
        stored.state,
        FindState::Queued,
        "matched, queued for the CAS"
    );
    assert!(stored.has_find_data);
    right.stop();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_member_sealed_with_another_key_while_serving_stops_finds_until_it_opens() {
    let env = Env::new();
    let schemes = pdp_provider::members::generate::schemes(crate::harness::SEED);
    let member = pdp_provider::members::generate::member(crate::harness::SEED, 0, &schemes);
    let json = serde_json::to_value(&member).unwrap();
    let mut config = env.config();
    config.matching.refresh_ms = 100;
    let server = Server::start(config).await;
    assert_eq!(ready(server.ops_addr).await.0, 200);
    let pfs = env.pfs();
    let url = server.url("/find-requests");

    // Another instance (or an import) seals the member with a key this one does not hold.
    let (_, other) = other_key(&env);
    env.import_sealed_with(other, std::slice::from_ref(&json))
        .await;
    let body = ready_is(server.ops_addr, 503, Duration::from_secs(10)).await;
    assert!(body.contains("1 member records do not open"), "{body}");
    assert!(body.contains("crypto.data_key_file"), "{body}");
    let id = uuid::Uuid::new_v4().to_string();
    let resp = post_find(&pfs, &url, &id, &find_for(&member, FindKind::Yes)).await;
    assert_eq!(resp.status(), 503);
    assert!(resp.headers().contains_key("retry-after"));
    assert!(
        env.store().find_request(&id).await.unwrap().is_none(),
        "a refused find is not stored"
    );

    // The record this endpoint cannot open is removed (`members import` refuses a store its key
    // does not open, so it cannot overwrite it): ready again; then it is imported under this
    // endpoint's key, and the member's find is matched.
    let store = env.store();
    let removal = pdp_provider::model::MemberChange::Remove(member.member_id.clone());
    store.apply_members(vec![removal], false).await.unwrap();
    store.close().await;
    ready_is(server.ops_addr, 200, Duration::from_secs(10)).await;
    env.import_sealed_with(env.key(), std::slice::from_ref(&json))
        .await;
    until(Duration::from_secs(10), || {
        let pfs = pfs.clone();
        let url = url.clone();
        let body = find_for(&member, FindKind::Yes);
        let env = &env;
        async move {
            let id = uuid::Uuid::new_v4().to_string();
            let resp = post_find(&pfs, &url, &id, &body).await;
            assert_eq!(resp.status(), 202);
            let stored = env.store().find_request(&id).await.unwrap().unwrap();
            (stored.state == FindState::Queued).then_some(())
        }
    })
    .await;
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn health_is_answered_while_idle_connections_hold_the_ops_listener_at_its_cap() {
    let env = Env::new();
    let config = env.config();
    let cap = config.server.ops_max_connections;
    let server = Server::start(config).await;
    // More idle connections than the cap, none sending a byte, as a careless monitor leaves.
    let mut idle = Vec::new();
    for _ in 0..cap + 6 {
        if let Ok(Ok(c)) = tokio::time::timeout(
            Duration::from_millis(500),
            tokio::net::TcpStream::connect(server.ops_addr),
        )
        .await
        {
            idle.push(c);
        }
    }
    assert!(
        idle.len() >= cap,
        "the cap's worth of idle connections is open"
    );
    for poll in 0..13 {
        // Reopened between polls, as the probe that found this did.
        for _ in 0..6 {
            if let Ok(c) = tokio::net::TcpStream::connect(server.ops_addr).await {
                idle.push(c);
            }
        }
        let answer = tokio::time::timeout(Duration::from_secs(10), ready(server.ops_addr))
            .await
            .unwrap_or_else(|_| panic!("health poll {poll} got no answer"));
        assert_eq!(answer.0, 200, "poll {poll}: {answer:?}");
        let live = tokio::time::timeout(
            Duration::from_secs(10),
            get(server.ops_addr, "/health/live"),
        )
        .await
        .expect("liveness answered")
        .unwrap();
        assert_eq!(live.0, 200);
    }
    drop(idle);
    server.stop().await;
}

/// A throw-away PostgreSQL cluster of this test's own, so it can be stopped and started.
struct Cluster {
    bin: PathBuf,
    dir: tempfile::TempDir,
    port: u16,
}

impl Cluster {
    fn as_owner(&self, program: &str) -> Command {
        let exe = self.bin.join(program);
        if is_root() {
            let mut c = Command::new("runuser");
            c.args(["-u", "postgres", "--"]).arg(exe);
            c
        } else {
            Command::new(exe)
        }
    }

    fn start_new() -> Option<Cluster> {
        let bin = std::fs::read_dir("/usr/lib/postgresql")
            .ok()?
            .filter_map(|e| e.ok().map(|e| e.path().join("bin")))
            .filter(|b| b.join("initdb").exists())
            .max()?;
        let dir = tempfile::tempdir().unwrap();
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let cluster = Cluster { bin, dir, port };
        if is_root() {
            let ok = Command::new("chown")
                .args(["-R", "postgres:"])
                .arg(cluster.dir.path())
                .status()
                .unwrap();
            assert!(ok.success());
        }
        let user = if is_root() { "postgres" } else { "" };
        let mut initdb = cluster.as_owner("initdb");
        initdb
            .arg("-D")
            .arg(cluster.data())
            .args(["-A", "trust", "--no-sync"]);
        if !user.is_empty() {
            initdb.args(["-U", user]);
        }
        let out = initdb.output().unwrap();
        assert!(out.status.success(), "initdb: {out:?}");
        cluster.start();
        Some(cluster)
    }

    fn data(&self) -> PathBuf {
        self.dir.path().join("data")
    }

    fn start(&self) {
        let opts = format!(
            "-k {} -p {} -c listen_addresses=127.0.0.1 -c max_connections=100",
            self.dir.path().display(),
            self.port
        );
        let out = self
            .as_owner("pg_ctl")
            .arg("-D")
            .arg(self.data())
            .arg("-l")
            .arg(self.dir.path().join("server.log"))
            .args(["-w", "-t", "60", "start", "-o", &opts])
            .output()
            .unwrap();
        assert!(out.status.success(), "pg_ctl start: {out:?}");
    }

    fn stop(&self) {
        let out = self
            .as_owner("pg_ctl")
            .arg("-D")
            .arg(self.data())
            .args(["-m", "fast", "-w", "stop"])
            .output()
            .unwrap();
        assert!(out.status.success(), "pg_ctl stop: {out:?}");
    }

    fn url(&self) -> String {
        let user = if is_root() {
            "postgres".to_owned()
        } else {
            std::env::var("USER").unwrap_or_else(|_| "postgres".into())
        };
        format!(
            "host=127.0.0.1 port={} user={user} dbname=postgres",
            self.port
        )
    }
}

impl Drop for Cluster {
    fn drop(&mut self) {
        let _ = self
            .as_owner("pg_ctl")
            .arg("-D")
            .arg(self.data())
            .args(["-m", "immediate", "stop"])
            .output();
    }
}

fn is_root() -> bool {
    Command::new("id")
        .arg("-u")
        .output()
        .is_ok_and(|o| o.stdout.trim_ascii() == b"0")
}

/// Answers counted by status (0: no answer).
type Counts = Arc<Mutex<BTreeMap<u16, u64>>>;

/// Posts finds from `clients` tasks until `stop`, counting the answers by status; every `503`
/// must carry `Retry-After`.
fn load(
    url: String,
    pfs: reqwest::Client,
    clients: usize,
    stop: Arc<std::sync::atomic::AtomicBool>,
) -> (Counts, Vec<tokio::task::JoinHandle<()>>) {
    let counts = Arc::new(Mutex::new(BTreeMap::new()));
    let tasks = (0..clients)
        .map(|_| {
            let (url, pfs, stop, counts) = (url.clone(), pfs.clone(), stop.clone(), counts.clone());
            tokio::spawn(async move {
                while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                    let id = uuid::Uuid::new_v4().to_string();
                    let Ok(resp) = pfs
                        .post(&url)
                        .header("X-Request-ID", &id)
                        .json(&find_body())
                        .send()
                        .await
                    else {
                        *counts.lock().unwrap().entry(0).or_default() += 1;
                        continue;
                    };
                    let status = resp.status().as_u16();
                    if status == 503 {
                        assert!(
                            resp.headers().contains_key("retry-after"),
                            "503 without Retry-After"
                        );
                    }
                    *counts.lock().unwrap().entry(status).or_default() += 1;
                    if status != 202 {
                        tokio::time::sleep(Duration::from_millis(5)).await;
                    }
                }
            })
        })
        .collect();
    (counts, tasks)
}

fn count(counts: &Mutex<BTreeMap<u16, u64>>, status: u16) -> u64 {
    counts.lock().unwrap().get(&status).copied().unwrap_or(0)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_postgres_outage_under_load_is_answered_503_and_readiness_follows_it() {
    let Some(cluster) = Cluster::start_new() else {
        panic!("PostgreSQL is not installed (/usr/lib/postgresql/*/bin/initdb)");
    };
    let env = Env {
        postgres: Some(cluster.url()),
        ..Env::new()
    };
    let server = Binary::spawn(&env, &env.cert(pdp_provider::tls::pki::files::DATA_KEY));
    let (addr, ops) = server.listening().await;
    let url = format!("https://127.0.0.1:{}/find-requests", addr.port());
    let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let (counts, tasks) = load(url, env.pfs(), 8, stop.clone());
    eventually_for(Duration::from_secs(20), || {
        (count(&counts, 202) >= 200).then_some(())
    })
    .await;

    let down_at = std::time::Instant::now();
    let lines_before = server.log().len();
    cluster.stop();
    let body = ready_is(ops, 503, Duration::from_secs(20)).await;
    assert!(body.contains("the store does not answer"), "{body}");
    let refused_before = count(&counts, 503);
    eventually_for(Duration::from_secs(20), || {
        (count(&counts, 503) >= refused_before + 1000).then_some(())
    })
    .await;
    cluster.start();
    let down_s = down_at.elapsed().as_secs() + 1;
    ready_is(ops, 200, Duration::from_secs(30)).await;
    let acked_after = count(&counts, 202);
    eventually_for(Duration::from_secs(20), || {
        (count(&counts, 202) >= acked_after + 200).then_some(())
    })
    .await;
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    for t in tasks {
        t.await.unwrap();
    }
    let counts = counts.lock().unwrap().clone();
    let other: Vec<_> = counts
        .iter()
        .filter(|(s, _)| **s != 202 && **s != 503)
        .collect();
    assert!(
        other.is_empty(),
        "answers other than 202 and 503: {counts:?}"
    );

    // The outage is a few lines a second at most, not one per failed batch.
    let log = server.log();
    let errors = log[lines_before..]
        .iter()
        .filter(|l| l.contains("ERROR"))
        .count() as u64;
    assert!(
        errors <= 3 * (down_s + 2),
        "{errors} ERROR lines in a {down_s} s outage (answers {counts:?})"
    );
    assert!(log.iter().any(|l| l.contains("commits succeed again")));
    server.stop();
}
