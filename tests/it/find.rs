use pdp_provider::members::generate::FindKind;
use pdp_provider::store::{FindOutcome, FindState};
use pdp_provider::tls::pki::files;
use serde_json::{json, Value};

use crate::harness::{find_body, find_for, member_with, post_find, Env, Server};

fn new_id() -> String {
    uuid::Uuid::new_v4().to_string()
}

async fn problem(resp: reqwest::Response) -> (u16, Value) {
    let status = resp.status().as_u16();
    assert_eq!(
        resp.headers()["content-type"],
        "application/problem+json",
        "status {status}"
    );
    assert!(resp.headers().contains_key("x-request-id"));
    (status, resp.json().await.unwrap())
}

#[tokio::test]
async fn a_no_match_find_is_acked_at_its_end_and_its_data_never_stored() {
    let env = Env::new();
    env.with_members(20).await;
    let server = Server::start(env.config()).await;
    let id = new_id();
    let body = find_body();
    let resp = post_find(&env.pfs(), &server.url("/find-requests"), &id, &body).await;
    assert_eq!(resp.status(), 202);
    assert_eq!(resp.headers()["x-request-id"], id.as_str());
    let ack: Value = resp.json().await.unwrap();
    assert_eq!(ack["message"], "ACCEPTED");
    let ts = ack["datetimestamp"].as_str().unwrap();
    assert!(
        chrono::DateTime::parse_from_rfc3339(ts).is_ok() && ts.ends_with('Z'),
        "{ts}"
    );

    // Decided before the commit: stored already at its end, as its ACK's audit record.
    let store = env.store();
    let stored = store
        .find_request(&id)
        .await
        .unwrap()
        .expect("stored before ACK");
    assert_eq!(stored.state, FindState::Done);
    assert_eq!(stored.outcome, Some(FindOutcome::NoMatch));
    assert!(!stored.has_find_data);
    assert_eq!(stored.completed_at, Some(stored.acked_at));
    // Nothing of the find data anywhere in the database file or its WAL.
    server.stop().await;
    for file in ["pdp.sqlite", "pdp.sqlite-wal"] {
        let path = env.store_path().with_file_name(file);
        if let Ok(bytes) = std::fs::read(&path) {
            assert!(
                !bytes.windows(9).any(|w| w == b"QQ123456C")
                    && !bytes.windows(7).any(|w| w == b"DONNELL"),
                "find data in {file}"
            );
        }
    }

    // Audited in the same commit, with the client certificate's subject.
    let audit = store
        .audit_records(0, i64::MAX, Some(id.clone()))
        .await
        .unwrap();
    assert_eq!(audit.len(), 1);
    assert_eq!(audit[0].status, 202);
    assert_eq!(audit[0].endpoint, "POST /find-requests");
    assert!(
        audit[0].party.contains("pension-finder-service"),
        "{}",
        audit[0].party
    );
    assert!(audit[0].responded_at >= audit[0].received_at);
}

#[tokio::test]
async fn a_matching_find_is_acked_only_once_stored_sealed_and_queued() {
    let env = Env::new();
    let members = env.with_members(50).await;
    let server = Server::start(env.config()).await;
    let member = member_with(&members, 1);
    let id = new_id();
    let body = find_for(member, FindKind::Yes);
    let resp = post_find(&env.pfs(), &server.url("/find-requests"), &id, &body).await;
    assert_eq!(resp.status(), 202);
    let stored = env
        .store()
        .find_request(&id)
        .await
        .unwrap()
        .expect("stored before ACK");
    // No CAS work configured: it waits, queued, for the pipeline.
    assert_eq!(stored.state, FindState::Queued);
    assert!(stored.has_find_data);
    let sealed: Vec<u8> = env
        .sql()
        .query_row(
            "SELECT find_data FROM find_requests WHERE request_id = ?1",
            [&id],
            |r| r.get(0),
        )
        .unwrap();
    let family = member.names[0].family_name.as_bytes();
    assert!(
        !sealed.windows(family.len()).any(|w| w == family),
        "find data stored in the clear"
    );
    let opened: Value =
        serde_json::from_slice(&env.key().open(id.as_bytes(), &sealed).unwrap()).unwrap();
    assert_eq!(opened, body);
    let metrics = server.metrics().await;
    assert!(metrics.contains("pdp_find_queue_depth 1"), "{metrics}");
    server.stop().await;
}

#[tokio::test]
async fn a_repeat_request_id_is_acked_without_a_second_enqueue() {
    let env = Env::new();
    let server = Server::start(env.config()).await;
    let id = new_id();
    let url = server.url("/find-requests");
    for _ in 0..3 {
        let resp = post_find(&env.pfs(), &url, &id, &find_body()).await;
        assert_eq!(resp.status(), 202);
    }
    let store = env.store();
    assert_eq!(store.find_requests().await.unwrap().len(), 1);
    let outcomes: Vec<String> = store
        .audit_records(0, i64::MAX, Some(id.clone()))
        .await
        .unwrap()
        .into_iter()
        .map(|a| a.outcome)
        .collect();
    // The find matches no member: its ACK's record is the find, and says so.
    assert_eq!(outcomes, ["no-match", "duplicate", "duplicate"]);
    let metrics = server.metrics().await;
    assert!(
        metrics.contains("pdp_find_requests_total{outcome=\"duplicate\"}"),
        "{metrics}"
    );
    server.stop().await;
}

#[tokio::test]
async fn every_error_is_a_problem_with_a_code_and_no_personal_data() {
    let env = Env::new();
    let server = Server::start(env.config()).await;
    let pfs = env.pfs();
    let url = server.url("/find-requests");

    // X-Request-ID missing, then not a UUID.
    let (status, p) = problem(pfs.post(&url).json(&find_body()).send().await.unwrap()).await;
    assert_eq!(
        (status, p["errors"][0]["code"].as_str()),
        (400, Some("INVALID_X_REQUEST_ID"))
    );
    assert!(uuid::Uuid::parse_str(p["request_id"].as_str().unwrap()).is_ok());
    let (status, p) = problem(post_find(&pfs, &url, "not-a-uuid", &find_body()).await).await;
    assert_eq!(
        (status, p["errors"][0]["code"].as_str()),
        (400, Some("INVALID_X_REQUEST_ID"))
    );
    // Only the hyphenated form; and what is accepted is echoed exactly as sent.
    let simple = uuid::Uuid::new_v4().simple().to_string();
    let (status, _) = problem(post_find(&pfs, &url, &simple, &find_body()).await).await;
    assert_eq!(status, 400);
    let upper = uuid::Uuid::new_v4().to_string().to_uppercase();
    let resp = post_find(&pfs, &url, &upper, &find_body()).await;
    assert_eq!(resp.status(), 202);
    assert_eq!(resp.headers()["x-request-id"], upper.as_str());

    // Not JSON.
    let id = new_id();
    let resp = pfs
        .post(&url)
        .header("X-Request-ID", &id)
        .header("Content-Type", "application/json")
        .body("{\"uat\": ")
        .send()
        .await
        .unwrap();
    let (status, p) = problem(resp).await;
    assert_eq!(
        (status, p["errors"][0]["code"].as_str()),
        (400, Some("INVALID_JSON"))
    );
    assert_eq!(p["request_id"], id.as_str());
    assert_eq!(p["type"], "about:blank");
    assert_eq!(p["title"], "Bad Request");
    assert_eq!(p["status"], 400);

    // Bad find data: the path, never the value.
    let mut body = find_body();
    body["findData"]["dateOfBirth"]["value"] = json!("21/04/1970");
    let (status, p) = problem(post_find(&pfs, &url, &new_id(), &body).await).await;
    assert_eq!(
        (status, p["errors"][0]["code"].as_str()),
        (400, Some("INVALID_FIND_DATA"))
    );
    assert_eq!(
        p["detail"],
        "findData.dateOfBirth.value: not a date (YYYY-MM-DD)"
    );
    assert!(!p.to_string().contains("1970"));

    // Bad UAT.
    let mut body = find_body();
    body["uat"] = json!("only.two");
    let (status, p) = problem(post_find(&pfs, &url, &new_id(), &body).await).await;
    assert_eq!(
        (status, p["errors"][0]["code"].as_str()),
        (400, Some("INVALID_UAT"))
    );

    // Too large, by declared length and by streamed length.
    let big = "x".repeat(70 * 1024);
    let resp = pfs
        .post(&url)
        .header("X-Request-ID", new_id())
        .header("Content-Type", "application/json")
        .body(big.clone())
        .send()
        .await
        .unwrap();
    let (status, p) = problem(resp).await;
    assert_eq!(
        (status, p["errors"][0]["code"].as_str()),
        (413, Some("CONTENT_TOO_LARGE"))
    );
    let stream = futures_stream(big.into_bytes());
    let resp = pfs
        .post(&url)
        .header("X-Request-ID", new_id())
        .header("Content-Type", "application/json")
        .body(reqwest::Body::wrap_stream(stream))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 413);

    // Wrong content type.
    let resp = pfs
        .post(&url)
        .header("X-Request-ID", new_id())
        .header("Content-Type", "text/plain")
        .body(find_body().to_string())
        .send()
        .await
        .unwrap();
    let (status, p) = problem(resp).await;
    assert_eq!(
        (status, p["errors"][0]["code"].as_str()),
        (415, Some("INVALID_CONTENT_TYPE"))
    );

    // Wrong method, unknown path.
    let resp = pfs
        .get(&url)
        .header("X-Request-ID", new_id())
        .send()
        .await
        .unwrap();
    assert_eq!(resp.headers()["allow"], "POST");
    let (status, p) = problem(resp).await;
    assert_eq!(
        (status, p["errors"][0]["code"].as_str()),
        (405, Some("METHOD_NOT_ALLOWED"))
    );
    let (status, _) = problem(pfs.get(server.url("/nope")).send().await.unwrap()).await;
    assert_eq!(status, 404);

    // Nothing else was enqueued, and every refusal was audited.
    assert_eq!(env.store().find_requests().await.unwrap().len(), 1);
    server.stop().await;
    let refused = env
        .store()
        .audit_records(0, i64::MAX, None)
        .await
        .unwrap()
        .into_iter()
        .filter(|a| a.status >= 400)
        .count();
    assert_eq!(refused, 11);
}

/// A body with no Content-Length: the limit must hold while streaming.
fn futures_stream(
    bytes: Vec<u8>,
) -> impl futures_util::Stream<Item = Result<Vec<u8>, std::io::Error>> {
    let chunks: Vec<_> = bytes.chunks(8192).map(|c| Ok(c.to_vec())).collect();
    futures_util::stream::iter(chunks)
}

#[tokio::test]
async fn a_full_queue_sheds_with_503_and_retry_after() {
    let env = Env::new();
    let members = env.with_members(50).await;
    let member = member_with(&members, 1);
    let mut config = env.config();
    config.store.queue_max_pending = 2;
    config.store.retry_after_s = 7;
    let server = Server::start(config).await;
    let url = server.url("/find-requests");
    for _ in 0..2 {
        assert_eq!(
            post_find(
                &env.pfs(),
                &url,
                &new_id(),
                &find_for(member, FindKind::Yes)
            )
            .await
            .status(),
            202
        );
    }
    // A no-match is at its end as soon as it is stored: it takes no room in the queue.
    assert_eq!(
        post_find(&env.pfs(), &url, &new_id(), &find_body())
            .await
            .status(),
        202
    );
    let resp = post_find(
        &env.pfs(),
        &url,
        &new_id(),
        &find_for(member, FindKind::Yes),
    )
    .await;
    assert_eq!(resp.headers()["retry-after"], "7");
    let (status, p) = problem(resp).await;
    assert_eq!(
        (status, p["errors"][0]["code"].as_str()),
        (503, Some("SERVICE_UNAVAILABLE"))
    );
    assert_eq!(env.store().find_requests().await.unwrap().len(), 3);
    let metrics = server.metrics().await;
    assert!(
        metrics.contains("pdp_find_requests_total{outcome=\"shed\"}"),
        "{metrics}"
    );
    server.stop().await;
}

#[tokio::test]
async fn ops_listener_serves_health_and_metrics() {
    let env = Env::new();
    let server = Server::start(env.config()).await;
    let ops = format!("http://{}", server.ops_addr);
    assert_eq!(
        reqwest::get(format!("{ops}/health/live"))
            .await
            .unwrap()
            .status(),
        200
    );
    assert_eq!(
        reqwest::get(format!("{ops}/health/ready"))
            .await
            .unwrap()
            .status(),
        200
    );
    post_find(
        &env.pfs(),
        &server.url("/find-requests"),
        &new_id(),
        &find_body(),
    )
    .await;
    let metrics = server.metrics().await;
    assert!(
        metrics.contains("pdp_find_ack_seconds_bucket{le=\"0.25\"}"),
        "{metrics}"
    );
    assert!(
        metrics.contains("pdp_find_ack_seconds_bucket{le=\"2\"}"),
        "{metrics}"
    );
    // A dashboard certificate is also from the ecosystem CA: it reaches the endpoint.
    let dash = env.client(files::DASHBOARD, files::DASHBOARD_KEY);
    assert_eq!(
        dash.get(server.url("/x")).send().await.unwrap().status(),
        404
    );
    server.stop().await;
}

#[tokio::test]
async fn shutdown_finishes_in_flight_finds_and_flushes() {
    let env = Env::new();
    let server = Server::start(env.config()).await;
    let url = server.url("/find-requests");
    let pfs = env.pfs();
    let id = new_id();
    assert_eq!(post_find(&pfs, &url, &id, &find_body()).await.status(), 202);
    let bad = pfs.post(&url).json(&find_body()).send().await.unwrap();
    assert_eq!(bad.status(), 400);
    server.stop().await;
    // After stop the journal is flushed: the refusal's audit record is stored too.
    let n = env
        .store()
        .audit_records(0, i64::MAX, None)
        .await
        .unwrap()
        .len();
    assert_eq!(n, 2);
}
