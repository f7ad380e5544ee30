//! The zero-loss set-up on PostgreSQL's own replication (`scripts/pg-standby`, as
//! deploy/README.md describes it): a primary with a synchronous streaming standby, and two
//! instances of the real binary whose `store.url` names both hosts with
//! `target_session_attrs=read-write`. Under load the primary is killed (`pg_ctl stop -m
//! immediate`), the standby promoted and its `synchronous_standby_names` cleared. The instances
//! carry on without a restart; while there is no primary they answer `503` with `Retry-After`
//! and nothing else, and once an instance has ACKed on the new primary it answers no more `503`s;
//! every ACKed find reaches its end, and every PeI is registered exactly once. The longest pause
//! between ACKs is printed (BENCHMARKS.md).

use std::collections::BTreeMap;
use std::path::Path;
use std::process::Command;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use pdp_provider::members::generate::{find_for, FindKind};
use pdp_provider::store::{FindOutcome, FindState, PeiState};

use crate::crash::Binary;
use crate::harness::Env;

/// `scripts/pg-standby <command>` on this test's directory and ports; its output.
fn pg_standby(dir: &Path, ports: (u16, u16), command: &str) -> String {
    let out = Command::new(concat!(env!("CARGO_MANIFEST_DIR"), "/scripts/pg-standby"))
        .arg(command)
        .env("PDP_PG_STANDBY_DIR", dir)
        .env("PDP_PG_PRIMARY_PORT", ports.0.to_string())
        .env("PDP_PG_STANDBY_PORT", ports.1.to_string())
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "scripts/pg-standby {command}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap().trim().to_owned()
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// Both servers stopped when the test ends, however it ends.
struct Pair {
    dir: tempfile::TempDir,
    ports: (u16, u16),
}

impl Drop for Pair {
    fn drop(&mut self) {
        pg_standby(self.dir.path(), self.ports, "stop");
    }
}

/// One answer: the instance, when it was answered, and its status.
#[derive(Debug, Clone, Copy)]
struct Answer {
    instance: usize,
    at: Instant,
    status: u16,
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_synchronous_standby_promoted_under_load_loses_no_acked_find() {
    let pair = Pair {
        dir: tempfile::tempdir().unwrap(),
        ports: (free_port(), free_port()),
    };
    let url = pg_standby(pair.dir.path(), pair.ports, "start");
    assert!(url.contains("target_session_attrs=read-write"), "{url}");
    let env = Env {
        postgres: Some(url),
        ..Env::new()
    };
    let members = env.with_members(500).await;
    let cas = crate::harness::cas_sim(&env).await;
    cas.state.set_faults(pdp_sim::cas::Faults {
        latency_ms: 50,
        ..Default::default()
    });
    let workers = "[workers]
max_in_flight = 32
backoff_base_ms = 50
backoff_cap_ms = 500
poll_interval_ms = 100
lease_ms = 3000
";
    let instances = [
        Binary::start_with(&env, workers, &cas.base_url()),
        Binary::start_with(&env, workers, &cas.base_url()),
    ];
    let urls: Vec<String> = instances.iter().map(Binary::url).collect();

    // Each member's find is sent once, to one instance, and repeated with its X-Request-ID
    // (as the PFS does) until it is ACKed.
    let queue: Arc<Mutex<Vec<serde_json::Value>>> = Arc::new(Mutex::new(
        members
            .iter()
            .filter(|m| m.nino.is_some())
            .map(|m| find_for(m, FindKind::Yes, &uuid::Uuid::new_v4().to_string()))
            .collect(),
    ));
    let sent = queue.lock().unwrap().len();
    let answers = Arc::new(Mutex::new(Vec::<Answer>::new()));
    let acked = Arc::new(Mutex::new(Vec::<String>::new()));
    // A third of the finds are sent before the failover begins, the rest from when it begins:
    // some in flight as the primary dies, most after.
    let failing_over = Arc::new(AtomicBool::new(false));
    let mut load = tokio::task::JoinSet::new();
    for lane in 0..8 {
        let (pfs, urls) = (env.pfs(), urls.clone());
        let (queue, answers, acked, failing_over) = (
            queue.clone(),
            answers.clone(),
            acked.clone(),
            failing_over.clone(),
        );
        load.spawn(async move {
            let instance = lane % 2;
            loop {
                while acked.lock().unwrap().len() >= sent / 3
                    && !failing_over.load(Ordering::Relaxed)
                {
                    tokio::time::sleep(Duration::from_millis(5)).await;
                }
                let Some(body) = queue.lock().unwrap().pop() else {
                    break;
                };
                let id = uuid::Uuid::new_v4().to_string();
                let since = Instant::now();
                loop {
                    assert!(
                        since.elapsed() < Duration::from_secs(120),
                        "{id} not ACKed in 120 s: the instances did not carry on"
                    );
                    let resp = pfs
                        .post(&urls[instance])
                        .header("X-Request-ID", &id)
                        .json(&body)
                        .send()
                        .await
                        .expect("the instance answers");
                    let status = resp.status().as_u16();
                    if status == 503 {
                        assert!(resp.headers().contains_key("retry-after"), "{id}");
                    }
                    answers.lock().unwrap().push(Answer {
                        instance,
                        at: Instant::now(),
                        status,
                    });
                    if status == 202 {
                        acked.lock().unwrap().push(id);
                        break;
                    }
                    tokio::time::sleep(Duration::from_millis(20)).await;
                }
            }
        });
    }

    // A third of the finds in, the primary dies and the standby takes over.
    crate::harness::eventually_for(Duration::from_secs(60), || {
        (acked.lock().unwrap().len() >= sent / 3).then_some(())
    })
    .await;
    let killed = Instant::now();
    failing_over.store(true, Ordering::Relaxed);
    let dir = pair.dir.path().to_owned();
    let ports = pair.ports;
    tokio::task::spawn_blocking(move || pg_standby(&dir, ports, "failover"))
        .await
        .unwrap();
    let promoted = Instant::now();
    while let Some(r) = load.join_next().await {
        r.unwrap();
    }

    let answers = answers.lock().unwrap().clone();
    let acked = acked.lock().unwrap().clone();
    assert_eq!(acked.len(), sent, "every find ACKed in the end");
    let by_status: BTreeMap<u16, usize> = answers.iter().fold(BTreeMap::new(), |mut m, a| {
        *m.entry(a.status).or_default() += 1;
        m
    });
    // Nothing but ACKs and 503s, and no 503 while the primary was up.
    assert!(
        by_status.keys().all(|s| *s == 202 || *s == 503),
        "{by_status:?}"
    );
    assert!(
        answers.iter().all(|a| a.status == 202 || a.at >= killed),
        "a 503 before the primary was lost"
    );
    // Both instances ACK on the new primary, without a restart, and then answer no more 503s.
    for instance in 0..2 {
        let mine: Vec<&Answer> = answers.iter().filter(|a| a.instance == instance).collect();
        let first_ack_after = mine
            .iter()
            .position(|a| a.status == 202 && a.at > promoted)
            .unwrap_or_else(|| panic!("instance {instance} ACKed nothing after the promotion"));
        assert!(
            mine[first_ack_after..].iter().all(|a| a.status == 202),
            "instance {instance} answered 503 after ACKing on the new primary"
        );
    }
    let mut ack_times: Vec<Instant> = answers
        .iter()
        .filter(|a| a.status == 202)
        .map(|a| a.at)
        .collect();
    ack_times.sort();
    let longest = ack_times
        .windows(2)
        .map(|w| w[1] - w[0])
        .max()
        .unwrap_or_default();
    eprintln!(
        "standby failover: {} finds ACKed, answers {by_status:?}, failover script {:.2} s, \
         longest pause between ACKs {:.3} s",
        acked.len(),
        (promoted - killed).as_secs_f64(),
        longest.as_secs_f64()
    );

    // Every ACKed find reaches its end, on the promoted server.
    cas.state.set_faults(Default::default());
    for id in &acked {
        let f = env.ended(id).await;
        assert_eq!(f.state, FindState::Done, "{id}");
        assert_eq!(f.outcome, Some(FindOutcome::MatchYes), "{id}");
        assert!(!f.has_find_data, "{id} kept its find data");
    }
    // Every PeI registered exactly once.
    let expected: usize = members
        .iter()
        .filter(|m| m.nino.is_some())
        .map(|m| m.pensions.len())
        .sum();
    let regs = cas.state.registrations();
    let mut names: Vec<_> = regs.iter().map(|r| r.name.clone()).collect();
    names.sort();
    names.dedup();
    assert_eq!(names.len(), regs.len(), "a PeI has two resources");
    assert_eq!(regs.len(), expected);
    let store = env.open_store().await;
    assert_eq!(store.find_requests().await.unwrap().len(), acked.len());
    let peis = store.peis().await.unwrap();
    assert_eq!(peis.len(), expected);
    assert!(peis.iter().all(|p| p.state == PeiState::Registered));
    store.close().await;
    for i in instances {
        let mut child = i.child;
        child.kill().unwrap();
        child.wait().unwrap();
    }
}
