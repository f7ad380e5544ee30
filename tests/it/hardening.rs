//! What abuse of the listeners found, each over real sockets: the ops listener's limits, HTTP/2
//! idling, header limits under pipelining, request-ID forms, `Host`, access per endpoint, and
//! the view calls as MaPS' dashboard makes them (wire contract §3.2).

use std::time::Duration;

use pdp_provider::members::generate::FindKind;
use pdp_provider::tls::pki::files;
use serde_json::Value;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use crate::harness::{
    connect, connect_as_pfs, find_body, find_for, member_with, post_find, Env, Server,
};

fn new_id() -> String {
    uuid::Uuid::new_v4().to_string()
}

/// Reads until the peer closes (or `limit` passes: `None`).
async fn closed_within(
    stream: &mut (impl AsyncReadExt + Unpin),
    limit: Duration,
) -> Option<Vec<u8>> {
    let mut out = Vec::new();
    match tokio::time::timeout(limit, stream.read_to_end(&mut out)).await {
        Ok(_) => Some(out),
        Err(_) => None,
    }
}

#[tokio::test]
async fn the_ops_listener_cuts_slow_headers_idle_clients_and_caps_connections() {
    let env = Env::new();
    let mut config = env.config();
    config.server.header_read_timeout_ms = 300;
    config.server.idle_timeout_ms = 800;
    config.server.ops_max_connections = 3;
    let server = Server::start(config).await;

    // Headers dribbled: cut at the header-read time-out.
    let mut slow = TcpStream::connect(server.ops_addr).await.unwrap();
    slow.write_all(b"GET /metrics HTTP/1.1\r\nHo")
        .await
        .unwrap();
    assert!(
        closed_within(&mut slow, Duration::from_secs(5))
            .await
            .is_some(),
        "slow headers were not cut off"
    );

    // An idle keep-alive connection: closed once idle.
    let mut idle = TcpStream::connect(server.ops_addr).await.unwrap();
    idle.write_all(b"GET /health/live HTTP/1.1\r\nHost: x\r\n\r\n")
        .await
        .unwrap();
    let answer = closed_within(&mut idle, Duration::from_secs(5))
        .await
        .expect("idle connection closed");
    assert!(String::from_utf8_lossy(&answer).starts_with("HTTP/1.1 200"));

    // Three idle connections held: a fourth is served all the same (health checks always get
    // in), and the longest-idle held one is closed to make room.
    let mut held = Vec::new();
    for _ in 0..3 {
        held.push(TcpStream::connect(server.ops_addr).await.unwrap());
    }
    let mut fourth = TcpStream::connect(server.ops_addr).await.unwrap();
    fourth
        .write_all(b"GET /health/live HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        .await
        .unwrap();
    let answer = closed_within(&mut fourth, Duration::from_secs(5))
        .await
        .expect("served at the cap");
    assert!(String::from_utf8_lossy(&answer).starts_with("HTTP/1.1 200"));
    assert!(
        closed_within(&mut held[0], Duration::from_secs(5))
            .await
            .is_some(),
        "the longest-idle connection was not closed"
    );
    server.stop().await;
}

#[tokio::test]
async fn an_http2_connection_that_only_answers_pings_idles_out() {
    let env = Env::new();
    let mut config = env.config();
    config.server.idle_timeout_ms = 600;
    let server = Server::start(config).await;
    let mut cfg = (*env.rustls_client(
        Some((files::PFS, files::PFS_KEY)),
        &[&rustls::version::TLS13],
    ))
    .clone();
    cfg.alpn_protocols = vec![b"h2".to_vec()];
    let tls = connect(&server, std::sync::Arc::new(cfg)).await.unwrap();
    // The h2 client answers the server's keep-alive PINGs and sends nothing else.
    let (_send, conn) =
        hyper::client::conn::http2::handshake::<_, _, http_body_util::Empty<bytes::Bytes>>(
            hyper_util::rt::TokioExecutor::new(),
            hyper_util::rt::TokioIo::new(tls),
        )
        .await
        .unwrap();
    let ended = tokio::time::timeout(Duration::from_secs(10), conn).await;
    assert!(ended.is_ok(), "h2 connection still open after 10 s");
    server.stop().await;
}

#[tokio::test]
async fn a_repeat_request_id_in_other_letter_case_is_the_same_find() {
    let env = Env::new();
    let members = env.with_members(50).await;
    let server = Server::start(env.config()).await;
    let body = find_for(member_with(&members, 1), FindKind::Yes);
    let id = new_id();
    let url = server.url("/find-requests");
    for sent in [id.clone(), id.to_uppercase(), id.clone()] {
        let resp = post_find(&env.pfs(), &url, &sent, &body).await;
        assert_eq!(resp.status(), 202);
        assert_eq!(
            resp.headers()["x-request-id"],
            sent.as_str(),
            "echoed as sent"
        );
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
    assert_eq!(outcomes, ["ack", "duplicate", "duplicate"]);
    server.stop().await;
}

#[tokio::test]
async fn two_different_request_ids_and_a_missing_host_are_refused() {
    let env = Env::new();
    let server = Server::start(env.config()).await;
    let url = server.url("/find-requests");
    let resp = env
        .pfs()
        .post(&url)
        .header("X-Request-ID", new_id())
        .header("X-Request-ID", new_id())
        .json(&find_body())
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 400);
    let p: Value = resp.json().await.unwrap();
    assert_eq!(p["errors"][0]["code"], "INVALID_X_REQUEST_ID");
    // The same ID twice is one ID.
    let id = new_id();
    let resp = env
        .pfs()
        .post(&url)
        .header("X-Request-ID", &id)
        .header("X-Request-ID", id.to_uppercase())
        .json(&find_body())
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 202);

    let mut tls = connect_as_pfs(&env, &server).await;
    let body = serde_json::to_vec(&find_body()).unwrap();
    let head = format!(
        "POST /find-requests HTTP/1.1\r\nX-Request-ID: {}\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
        new_id(),
        body.len()
    );
    tls.write_all(head.as_bytes()).await.unwrap();
    tls.write_all(&body).await.unwrap();
    let answer = closed_within(&mut tls, Duration::from_secs(10))
        .await
        .unwrap();
    let answer = String::from_utf8_lossy(&answer);
    assert!(answer.starts_with("HTTP/1.1 400"), "{answer}");
    assert!(answer.contains("Host"), "{answer}");
    server.stop().await;
}

#[tokio::test]
async fn the_header_limit_holds_for_pipelined_requests_and_413_says_close() {
    let env = Env::new();
    let server = Server::start(env.config()).await;
    let body = serde_json::to_vec(&find_body()).unwrap();
    let request = |extra: &str| {
        format!(
            "POST /find-requests HTTP/1.1\r\nHost: localhost\r\nX-Request-ID: {}\r\nContent-Type: application/json\r\nContent-Length: {}\r\n{extra}\r\n{}",
            new_id(),
            body.len(),
            String::from_utf8_lossy(&body)
        )
    };
    let big = format!("X-Padding: {}\r\nConnection: close\r\n", "a".repeat(20_000));
    let mut tls = connect_as_pfs(&env, &server).await;
    tls.write_all(format!("{}{}", request(""), request(&big)).as_bytes())
        .await
        .unwrap();
    let answer = closed_within(&mut tls, Duration::from_secs(10))
        .await
        .unwrap();
    let answer = String::from_utf8_lossy(&answer);
    let statuses: Vec<&str> = answer
        .match_indices("HTTP/1.1 ")
        .map(|(i, _)| &answer[i + 9..i + 12])
        .collect();
    assert_eq!(
        statuses,
        ["202", "431"],
        "the pipelined request with 20,000 bytes of headers: {answer}"
    );

    // 413 on the declared length, before the body: the connection ends, and says so.
    let mut tls = connect_as_pfs(&env, &server).await;
    let head = format!(
        "POST /find-requests HTTP/1.1\r\nHost: localhost\r\nX-Request-ID: {}\r\nContent-Type: application/json\r\nContent-Length: 10000000\r\n\r\n",
        new_id()
    );
    tls.write_all(head.as_bytes()).await.unwrap();
    let answer = closed_within(&mut tls, Duration::from_secs(10))
        .await
        .unwrap();
    let answer = String::from_utf8_lossy(&answer).to_ascii_lowercase();
    assert!(answer.starts_with("http/1.1 413"), "{answer}");
    assert!(answer.contains("connection: close"), "{answer}");
    server.stop().await;
}

#[tokio::test]
async fn each_endpoint_admits_only_its_configured_identities() {
    let env = Env::new();
    let server = Server::start(env.config()).await;
    let dashboard = env.client(files::DASHBOARD, files::DASHBOARD_KEY);
    let resp = post_find(
        &dashboard,
        &server.url("/find-requests"),
        &new_id(),
        &find_body(),
    )
    .await;
    assert_eq!(resp.status(), 403);
    let p: Value = resp.json().await.unwrap();
    assert_eq!(p["errors"][0]["code"], "FORBIDDEN");
    let resp = env
        .pfs()
        .get(server.url(&format!("/view-data/{}?scope=owner", new_id())))
        .header("X-Request-ID", new_id())
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 403);
    let resp = env
        .pfs()
        .post(server.url("/pat-refresh"))
        .header("X-Request-ID", new_id())
        .json(&serde_json::json!({}))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 403);
    // Nothing was stored for the refused find; refusals are counted.
    assert!(env.store().find_requests().await.unwrap().is_empty());
    let metrics = server.metrics().await;
    assert!(
        metrics.contains("pdp_access_refused_total{endpoint=\"POST /find-requests\"}"),
        "{metrics}"
    );
    server.stop().await;
}

#[tokio::test]
async fn a_body_the_client_never_finishes_gets_408_not_a_shed() {
    let env = Env::new();
    let mut config = env.config();
    config.server.header_read_timeout_ms = 300;
    let server = Server::start(config).await;
    let mut tls = connect_as_pfs(&env, &server).await;
    let id = new_id();
    let head = format!(
        "POST /find-requests HTTP/1.1\r\nHost: localhost\r\nX-Request-ID: {id}\r\nContent-Type: application/json\r\nContent-Length: 500\r\n\r\n{{\"uat\""
    );
    tls.write_all(head.as_bytes()).await.unwrap();
    let mut buf = vec![0u8; 4096];
    let n = tokio::time::timeout(Duration::from_secs(10), tls.read(&mut buf))
        .await
        .unwrap()
        .unwrap();
    let answer = String::from_utf8_lossy(&buf[..n]);
    assert!(answer.starts_with("HTTP/1.1 408"), "{answer}");
    server.stop().await;
    // Audited as the client's time-out, not as load shed.
    let outcomes: Vec<String> = env
        .store()
        .audit_records(0, i64::MAX, None)
        .await
        .unwrap()
        .into_iter()
        .map(|a| a.outcome)
        .collect();
    assert_eq!(outcomes, ["client_timeout"]);
}
