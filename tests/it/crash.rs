use std::io::{BufRead, BufReader};
use std::process::{Child, Command};
use std::time::Duration;

use crate::harness::{find_body, post_find, Env};

/// The real binary, started on a config file, with its bound address read from its log.
pub struct Binary {
    pub child: Child,
    pub addr: std::net::SocketAddr,
}

impl Binary {
    fn start(env: &Env) -> Binary {
        Self::start_with(env, "[workers]\nmax_in_flight = 0\n", "https://127.0.0.1:9")
    }

    /// Starts the binary with a `[workers]` section (and anything after it) and a CAS; on the
    /// environment's PostgreSQL database when it has one.
    pub fn start_with(env: &Env, workers: &str, cas_base_url: &str) -> Binary {
        let key = env.config().crypto.data_key_file.unwrap();
        let mut child = env.spawn_serve(&env.serve_toml(&key, cas_base_url, workers));
        let stderr = child.stderr.take().unwrap();
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            let mut sent = false;
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                if !sent && line.contains("endpoint listening") {
                    let addr = line
                        .split("addr=")
                        .nth(1)
                        .and_then(|s| s.split_whitespace().next())
                        .map(|s| {
                            s.trim_matches(|c: char| !c.is_ascii_digit() && c != '.' && c != ':')
                        })
                        .map(|s| s.parse().unwrap());
                    let _ = tx.send(addr.unwrap());
                    sent = true;
                }
            }
        });
        let addr = rx
            .recv_timeout(Duration::from_secs(30))
            .expect("binary started");
        Binary { child, addr }
    }

    pub fn url(&self) -> String {
        format!("https://127.0.0.1:{}/find-requests", self.addr.port())
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_acked_find_survives_kill_9() {
    use pdp_provider::members::generate::{find_for, FindKind};
    use pdp_provider::store::{FindOutcome, FindState};

    const N: usize = 64;
    let env = Env::new();
    let members = env.with_members(200).await;
    let bin = Binary::start(&env);
    let pfs = env.pfs();
    let url = bin.url();
    // Half match (stored sealed, queued: no CAS work configured), half do not (stored at their
    // end, without their data).
    let bodies: Vec<serde_json::Value> = members
        .iter()
        .filter(|m| m.nino.is_some())
        .take(N / 2)
        .map(|m| find_for(m, FindKind::Yes, &uuid::Uuid::new_v4().to_string()))
        .chain((0..N / 2).map(|_| find_body()))
        .collect();
    let mut tasks = tokio::task::JoinSet::new();
    for body in bodies {
        let (pfs, url) = (pfs.clone(), url.clone());
        tasks.spawn(async move {
            let id = uuid::Uuid::new_v4().to_string();
            let status = post_find(&pfs, &url, &id, &body).await.status();
            (id, status, body)
        });
    }
    let mut acked = Vec::new();
    while let Some(r) = tasks.join_next().await {
        let (id, status, body) = r.unwrap();
        assert_eq!(status, 202);
        acked.push((id, body));
    }
    // SIGKILL right after the last ACK: no shutdown path runs.
    let mut child = bin.child;
    child.kill().unwrap();
    child.wait().unwrap();

    // Restart on the same store: it comes up, and every ACKed find is there: a matching one
    // queued with data that opens to what was sent, a no-match at its end without data.
    let bin = Binary::start(&env);
    let store = env.store();
    let sql = env.sql();
    let key = env.key();
    for (id, body) in &acked {
        let row = store
            .find_request(id)
            .await
            .unwrap()
            .unwrap_or_else(|| panic!("{id} lost"));
        if *body == find_body() {
            assert_eq!(row.state, FindState::Done);
            assert_eq!(row.outcome, Some(FindOutcome::NoMatch));
            assert!(!row.has_find_data);
            continue;
        }
        assert_eq!(row.state, FindState::Queued);
        let sealed: Vec<u8> = sql
            .query_row(
                "SELECT find_data FROM find_requests WHERE request_id = ?1",
                [id],
                |r| r.get(0),
            )
            .unwrap();
        let opened = key.open(id.as_bytes(), &sealed).unwrap();
        let stored: serde_json::Value = serde_json::from_slice(&opened).unwrap();
        assert_eq!(&stored, body);
    }
    // A PFS retry of an ACKed request after the restart is a duplicate, not a new find.
    let again = post_find(&pfs, &bin.url(), &acked[0].0, &acked[0].1).await;
    assert_eq!(again.status(), 202);
    assert_eq!(store.find_requests().await.unwrap().len(), N);

    // SIGTERM: drain and exit 0.
    let mut child = bin.child;
    let status = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(status.success());
    let exit = child.wait().unwrap();
    assert_eq!(exit.code(), Some(0), "{exit:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn finds_flowing_through_repeated_kill_9s_all_end_and_register_exactly_once() {
    use pdp_provider::members::generate::{find_for, FindKind};
    use pdp_provider::store::{FindOutcome, FindState, PeiState};

    const ROUNDS: usize = 3;
    const PER_WAVE: usize = 8;
    let env = Env::new();
    let members = env.with_members(600).await;
    let cas = crate::harness::cas_sim(&env).await;
    // Slow enough that each kill lands while registrations are in flight.
    cas.state.set_faults(pdp_sim::cas::Faults {
        latency_ms: 150,
        ..Default::default()
    });
    let workers = "[workers]
max_in_flight = 64
backoff_base_ms = 50
poll_interval_ms = 100
";
    let pfs = env.pfs();
    let mut chosen = members.iter().filter(|m| m.nino.is_some());
    let mut matching = Vec::new();
    let mut acked = Vec::new();
    let mut kills_mid_registration = 0;
    for _ in 0..ROUNDS {
        let bin = Binary::start_with(&env, workers, &cas.base_url());
        // Two waves of matching and no-match finds; the kill lands right after the second
        // wave's last ACK, while the first wave's registrations are under way.
        for wave in 0..2 {
            let mut tasks = tokio::task::JoinSet::new();
            for i in 0..PER_WAVE {
                let (pfs, url) = (pfs.clone(), bin.url());
                let body = if i % 4 == 3 {
                    find_body()
                } else {
                    let m = chosen.next().expect("enough members");
                    matching.push(m);
                    find_for(m, FindKind::Yes, &uuid::Uuid::new_v4().to_string())
                };
                tasks.spawn(async move {
                    let id = uuid::Uuid::new_v4().to_string();
                    let status = post_find(&pfs, &url, &id, &body).await.status();
                    (id, status)
                });
            }
            while let Some(r) = tasks.join_next().await {
                let (id, status) = r.unwrap();
                assert_eq!(status, 202);
                acked.push(id);
            }
            if wave == 0 {
                let before = cas.state.registrations().len();
                crate::harness::eventually(|| {
                    (cas.state.registrations().len() > before).then_some(())
                })
                .await;
            }
        }
        let mut child = bin.child;
        child.kill().unwrap();
        child.wait().unwrap();
        let expected_so_far: usize = matching.iter().map(|m| m.pensions.len()).sum();
        if cas.state.registrations().len() < expected_so_far {
            kills_mid_registration += 1;
        }
    }

    cas.state.set_faults(Default::default());
    let bin = Binary::start_with(&env, workers, &cas.base_url());
    for id in &acked {
        let f = env.ended(id).await;
        assert_eq!(f.state, FindState::Done, "{id}");
        assert!(
            matches!(
                f.outcome,
                Some(FindOutcome::MatchYes | FindOutcome::NoMatch)
            ),
            "{id}: {:?}",
            f.outcome
        );
        assert!(!f.has_find_data, "{id} kept its find data");
    }
    let expected: usize = matching.iter().map(|m| m.pensions.len()).sum();
    let regs = cas.state.registrations();
    let mut names: Vec<_> = regs.iter().map(|r| r.name.clone()).collect();
    names.sort();
    names.dedup();
    assert_eq!(names.len(), regs.len(), "a PeI has two resources");
    assert_eq!(regs.len(), expected);
    for m in &matching {
        for p in &m.pensions {
            let urn = pdp_provider::matching::pei(m.holdername, p.asset_guid);
            assert!(names.contains(&urn), "{urn} not registered");
        }
    }
    let store = env.store();
    let peis = store.peis().await.unwrap();
    assert_eq!(peis.len(), expected);
    assert!(peis.iter().all(|p| p.state == PeiState::Registered));
    assert!(
        kills_mid_registration > 0,
        "no kill landed mid-registration"
    );
    let mut child = bin.child;
    child.kill().unwrap();
    child.wait().unwrap();
}
