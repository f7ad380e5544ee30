use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use crate::harness::{find_body, post_find, Env};

/// The real binary, started on a config file, with its bound address read from its log.
struct Binary {
    child: Child,
    addr: std::net::SocketAddr,
}

impl Binary {
    fn start(env: &Env) -> Binary {
        Self::start_with(env, "[workers]\nconcurrency = 0\n", "https://127.0.0.1:9")
    }

    fn start_with(env: &Env, workers: &str, cas_base_url: &str) -> Binary {
        let config_path = env.dir.path().join("crash.toml");
        let c = env.config();
        let toml = format!(
            "[server]\nlisten = \"127.0.0.1:0\"\nops_listen = \"127.0.0.1:0\"\n\
             [tls]\ncert = {:?}\nkey = {:?}\nclient_ca = {:?}\n\
             [store]\npath = {:?}\n[crypto]\ndata_key_file = {:?}\n\
             [view]\nsigning_key = {:?}\ncalendar = {:?}\n\
             [cas]\nbase_url = {cas_base_url:?}\nclient_cert = {:?}\nclient_key = {:?}\nca = {:?}\n{workers}",
            c.tls.cert,
            c.tls.key,
            c.tls.client_ca,
            c.store.path,
            c.crypto.data_key_file.unwrap(),
            c.view.signing_key,
            c.view.calendar,
            c.cas.client_cert,
            c.cas.client_key,
            c.cas.ca
        );
        std::fs::write(&config_path, toml).unwrap();
        let mut child = Command::new(env!("CARGO_BIN_EXE_pdp-provider"))
            .args(["serve", "--config"])
            .arg(&config_path)
            .env("RUST_LOG", "info")
            .env("NO_COLOR", "1")
            .stderr(Stdio::piped())
            .stdout(Stdio::null())
            .spawn()
            .unwrap();
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

    fn url(&self) -> String {
        format!("https://127.0.0.1:{}/find-requests", self.addr.port())
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_acked_find_survives_kill_9() {
    const N: usize = 64;
    let env = Env::new();
    let bin = Binary::start(&env);
    let pfs = env.pfs();
    let url = bin.url();
    let mut tasks = tokio::task::JoinSet::new();
    for _ in 0..N {
        let (pfs, url) = (pfs.clone(), url.clone());
        tasks.spawn(async move {
            let id = uuid::Uuid::new_v4().to_string();
            let status = post_find(&pfs, &url, &id, &find_body()).await.status();
            (id, status)
        });
    }
    let mut acked = Vec::new();
    while let Some(r) = tasks.join_next().await {
        let (id, status) = r.unwrap();
        assert_eq!(status, 202);
        acked.push(id);
    }
    // SIGKILL right after the last ACK: no shutdown path runs.
    let mut child = bin.child;
    child.kill().unwrap();
    child.wait().unwrap();

    // Restart on the same store: it comes up, and every ACKed find is there and opens.
    let bin = Binary::start(&env);
    let store = env.store();
    let key = env.key();
    for id in &acked {
        let row = store
            .find_request(id)
            .unwrap()
            .unwrap_or_else(|| panic!("{id} lost"));
        let opened = key
            .open(id.as_bytes(), row.find_data.as_deref().unwrap())
            .unwrap();
        let body: serde_json::Value = serde_json::from_slice(&opened).unwrap();
        assert_eq!(body, find_body());
    }
    // A PFS retry of an ACKed request after the restart is a duplicate, not a new find.
    let again = post_find(&pfs, &bin.url(), &acked[0], &find_body()).await;
    assert_eq!(again.status(), 202);
    assert_eq!(store.find_requests().unwrap().len(), N);

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
async fn every_acked_matching_find_is_registered_exactly_once_after_kill_9() {
    use pdp_provider::members::generate::{find_for, FindKind};

    const N: usize = 24;
    let env = Env::new();
    let members = env.with_members(400);
    let cas = crate::harness::cas_sim(&env).await;
    // Slow enough that the kill lands while registrations are in flight.
    cas.state.set_faults(pdp_provider::sim::cas::Faults {
        latency_ms: 40,
        ..Default::default()
    });
    let workers = "[workers]\nconcurrency = 2\nbackoff_base_ms = 50\npoll_interval_ms = 100\n";
    let bin = Binary::start_with(&env, workers, &cas.base_url());
    let pfs = env.pfs();
    let chosen: Vec<_> = members
        .iter()
        .filter(|m| m.nino.is_some())
        .take(N)
        .collect();
    let mut acked = Vec::new();
    // Two waves: the kill lands right after the second wave's last ACK, while the first wave's
    // registrations are under way.
    for (wave, ms) in chosen.chunks(N / 2).enumerate() {
        let mut tasks = tokio::task::JoinSet::new();
        for m in ms {
            let (pfs, url) = (pfs.clone(), bin.url());
            let body = find_for(m, FindKind::Yes, &uuid::Uuid::new_v4().to_string());
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
            crate::harness::eventually(|| (cas.state.registrations().len() >= 4).then_some(()))
                .await;
        }
    }
    let mut child = bin.child;
    child.kill().unwrap();
    child.wait().unwrap();
    let registered_before = cas.state.registrations().len();

    cas.state.set_faults(Default::default());
    let bin = Binary::start_with(&env, workers, &cas.base_url());
    for id in &acked {
        let f = env.ended(id).await;
        assert_eq!(
            (f.state.as_str(), f.outcome.as_deref()),
            ("done", Some("match-yes")),
            "{id}"
        );
    }
    let expected: usize = chosen.iter().map(|m| m.pensions.len()).sum();
    let regs = cas.state.registrations();
    let mut names: Vec<_> = regs.iter().map(|r| r.name.clone()).collect();
    names.sort();
    names.dedup();
    assert_eq!(names.len(), regs.len(), "a PeI has two resources");
    assert_eq!(regs.len(), expected);
    for m in &chosen {
        for p in &m.pensions {
            let urn = pdp_provider::matching::pei(m.holdername, p.asset_guid);
            assert!(names.contains(&urn), "{urn} not registered");
        }
    }
    let queue = env.queue();
    assert!(queue
        .peis()
        .unwrap()
        .iter()
        .all(|p| p.state == "registered"));
    assert!(
        registered_before > 0 && registered_before < expected,
        "the kill should land mid-registration: {registered_before} of {expected}"
    );
    let mut child = bin.child;
    child.kill().unwrap();
    child.wait().unwrap();
}
