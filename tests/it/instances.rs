//! Two instances of the real binary on one PostgreSQL database, as a provider runs them behind
//! a load balancer: finds to both at once, repeated X-Request-IDs to both, one instance killed
//! with SIGKILL while registrations are in flight. Every ACKed find reaches its end exactly once,
//! and no PeI is registered twice.

use pdp_provider::members::generate::{find_for, FindKind};
use pdp_provider::store::{FindOutcome, FindState, PeiState};

use crate::crash::Binary;
use crate::harness::{find_body, post_find, Env};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_instances_share_the_finds_and_one_killed_loses_none() {
    const PER_WAVE: usize = 12;
    let env = Env::postgres().await;
    let members = env.with_members(400).await;
    let cas = crate::harness::cas_sim(&env).await;
    // Slow enough that the kill lands while registrations are in flight.
    cas.state.set_faults(pdp_sim::cas::Faults {
        latency_ms: 150,
        ..Default::default()
    });
    // A short lease (renewed while a find is worked): the survivor takes over the killed
    // instance's claimed finds within a second or two, well inside their budget.
    let workers = "[workers]
max_in_flight = 64
backoff_base_ms = 50
poll_interval_ms = 100
lease_ms = 1500
";
    let (a, b) = (
        Binary::start_with(&env, workers, &cas.base_url()),
        Binary::start_with(&env, workers, &cas.base_url()),
    );
    let pfs = env.pfs();
    let mut chosen = members.iter().filter(|m| m.nino.is_some());
    let mut matching = Vec::new();
    let mut acked = Vec::new();
    // Two waves to both instances, every find sent to one of them and every fourth to both with
    // the same X-Request-ID (the PFS retrying through the load balancer).
    for wave in 0..2 {
        let mut tasks = tokio::task::JoinSet::new();
        for i in 0..PER_WAVE {
            let body = if i % 3 == 2 {
                find_body()
            } else {
                let m = chosen.next().expect("enough members");
                matching.push(m);
                find_for(m, FindKind::Yes, &uuid::Uuid::new_v4().to_string())
            };
            let id = uuid::Uuid::new_v4().to_string();
            let mut urls = vec![if i % 2 == 0 { a.url() } else { b.url() }];
            if i % 4 == 0 {
                urls = vec![a.url(), b.url()];
            }
            for url in urls {
                let (pfs, id, body) = (pfs.clone(), id.clone(), body.clone());
                tasks.spawn(async move {
                    let status = post_find(&pfs, &url, &id, &body).await.status();
                    (id, status)
                });
            }
            acked.push(id);
        }
        while let Some(r) = tasks.join_next().await {
            let (id, status) = r.unwrap();
            assert_eq!(status, 202, "{id}");
        }
        if wave == 0 {
            crate::harness::eventually(|| (!cas.state.registrations().is_empty()).then_some(()))
                .await;
        }
    }
    // SIGKILL one instance right after the last ACK, registrations under way.
    let mut killed = a.child;
    killed.kill().unwrap();
    killed.wait().unwrap();
    let expected: usize = matching.iter().map(|m| m.pensions.len()).sum();
    let at_kill = cas.state.registrations().len();

    // The survivor goes on taking finds, and ends the killed instance's once their leases run
    // out.
    for _ in 0..PER_WAVE / 2 {
        let m = chosen.next().expect("enough members");
        matching.push(m);
        let id = uuid::Uuid::new_v4().to_string();
        let body = find_for(m, FindKind::Yes, &uuid::Uuid::new_v4().to_string());
        assert_eq!(post_find(&pfs, &b.url(), &id, &body).await.status(), 202);
        acked.push(id);
    }
    cas.state.set_faults(Default::default());
    let store = env.open_store().await;
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
    // Each find stored once, whichever instance (or both) received it.
    assert_eq!(store.find_requests().await.unwrap().len(), acked.len());
    let expected_all: usize = matching.iter().map(|m| m.pensions.len()).sum();
    let regs = cas.state.registrations();
    let mut names: Vec<_> = regs.iter().map(|r| r.name.clone()).collect();
    names.sort();
    names.dedup();
    assert_eq!(names.len(), regs.len(), "a PeI has two resources");
    assert_eq!(regs.len(), expected_all);
    let peis = store.peis().await.unwrap();
    assert_eq!(peis.len(), expected_all);
    assert!(peis.iter().all(|p| p.state == PeiState::Registered));
    assert!(
        at_kill < expected,
        "the kill landed after every registration ({at_kill} of {expected})"
    );
    let mut survivor = b.child;
    survivor.kill().unwrap();
    survivor.wait().unwrap();
}
