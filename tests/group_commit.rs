//! Group commit over real sockets. Its own test binary, so that the process-wide Prometheus
//! recorder counts this test's commits only (in `tests/it` other servers commit beside it).

#[path = "it/harness.rs"]
mod harness;

use harness::{find_body, post_find, Env, Server};

#[tokio::test]
async fn concurrent_finds_share_commits_and_all_land() {
    let env = Env::new();
    let server = Server::start(env.config()).await;
    let url = server.url("/find-requests");
    let pfs = env.pfs();
    let ids: Vec<String> = (0..200).map(|_| uuid::Uuid::new_v4().to_string()).collect();
    let mut tasks = tokio::task::JoinSet::new();
    for id in ids.clone() {
        let (pfs, url) = (pfs.clone(), url.clone());
        tasks.spawn(async move { post_find(&pfs, &url, &id, &find_body()).await.status() });
    }
    while let Some(status) = tasks.join_next().await {
        assert_eq!(status.unwrap(), 202);
    }
    assert_eq!(env.store().find_requests().await.unwrap().len(), 200);
    // Fewer commits than finds: group commit batched them.
    let metrics = server.metrics().await;
    let commits: f64 = metrics
        .lines()
        .find(|l| l.starts_with("pdp_journal_commit_seconds_count"))
        .and_then(|l| l.rsplit(' ').next())
        .unwrap()
        .parse()
        .unwrap();
    assert!(commits < 200.0, "{commits} commits for 200 finds");
    server.stop().await;
}
