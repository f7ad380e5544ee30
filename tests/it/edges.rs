//! Smaller edges of the wire, each over real sockets: a repeated `Authorization`, content and
//! transfer codings, a kept-alive HTTP/1.1 connection between requests, TLS 1.0 and 1.1
//! refusals in the metrics, and an access list nobody is on.

use std::io::{BufRead, BufReader};
use std::time::Duration;

use pdp_provider::tls::pki::files;
use serde_json::Value;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use crate::harness::{connect_as_pfs, find_body, Env, Server, Tls};
use crate::validity::{config_file, refused_start};

fn new_id() -> String {
    uuid::Uuid::new_v4().to_string()
}

/// Sends `request` on a new connection as the PFS (it ends with `Connection: close`) and
/// returns the whole answer.
async fn exchange(env: &Env, server: &Server, request: &[u8]) -> String {
    let mut tls = connect_as_pfs(env, server).await;
    tls.write_all(request).await.unwrap();
    let mut out = Vec::new();
    tokio::time::timeout(Duration::from_secs(10), tls.read_to_end(&mut out))
        .await
        .expect("answered and closed")
        .unwrap();
    String::from_utf8_lossy(&out).into_owned()
}

/// The problem body of an HTTP/1.1 answer.
fn problem(answer: &str) -> Value {
    let body = answer.split("\r\n\r\n").nth(1).unwrap_or_default();
    serde_json::from_str(body).unwrap_or_else(|_| panic!("{answer}"))
}

#[tokio::test]
async fn two_authorization_headers_are_refused_like_two_request_ids() {
    let env = Env::new();
    let server = Server::start(env.config()).await;
    let id = new_id();
    let dashboard = env.client(files::DASHBOARD, files::DASHBOARD_KEY);
    let resp = dashboard
        .get(server.url(&format!("/view-data/{}", uuid::Uuid::new_v4())))
        .header("X-Request-ID", &id)
        .header("Authorization", "Bearer a.b.c")
        .header("Authorization", "Bearer d.e.f")
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 400);
    assert_eq!(resp.headers()["x-request-id"], id.as_str());
    let p: Value = resp.json().await.unwrap();
    assert_eq!(p["errors"][0]["code"], "INVALID_REQUEST");
    assert_eq!(p["request_id"], id.as_str());
    assert!(
        p["detail"].as_str().unwrap().contains("Authorization"),
        "{p}"
    );
    // One is a challenge as before (no valid RPT).
    let resp = dashboard
        .get(server.url(&format!("/view-data/{}", uuid::Uuid::new_v4())))
        .header("X-Request-ID", new_id())
        .header("Authorization", "Bearer a.b.c")
        .send()
        .await
        .unwrap();
    assert_ne!(resp.status(), 400);
    server.stop().await;
}

#[tokio::test]
async fn a_content_coding_gets_415_and_a_transfer_coding_but_chunked_501() {
    let env = Env::new();
    let server = Server::start(env.config()).await;
    let body = serde_json::to_vec(&find_body()).unwrap();
    let head = |id: &str, framing: &str| {
        format!(
            "POST /find-requests HTTP/1.1\r\nHost: localhost\r\nX-Request-ID: {id}\r\n\
             Content-Type: application/json\r\n{framing}Connection: close\r\n\r\n"
        )
    };
    let chunked = |b: &[u8]| {
        let mut out = format!("{:x}\r\n", b.len()).into_bytes();
        out.extend_from_slice(b);
        out.extend_from_slice(b"\r\n0\r\n\r\n");
        out
    };
    // Plain JSON sent as if gzipped: refused, never read as JSON.
    let id = new_id();
    let mut req = head(
        &id,
        &format!(
            "Content-Encoding: gzip\r\nContent-Length: {}\r\n",
            body.len()
        ),
    )
    .into_bytes();
    req.extend_from_slice(&body);
    let answer = exchange(&env, &server, &req).await;
    assert!(answer.starts_with("HTTP/1.1 415"), "{answer}");
    assert_eq!(problem(&answer)["request_id"], id.as_str());
    assert_eq!(
        problem(&answer)["errors"][0]["code"],
        "INVALID_CONTENT_TYPE"
    );

    // gzip under chunked: hyper takes the chunks off and would pass the rest on raw.
    let id = new_id();
    let mut req = head(&id, "Transfer-Encoding: gzip, chunked\r\n").into_bytes();
    req.extend(chunked(&body));
    let answer = exchange(&env, &server, &req).await;
    assert!(answer.starts_with("HTTP/1.1 501"), "{answer}");
    assert_eq!(problem(&answer)["request_id"], id.as_str());
    assert!(answer.contains("Transfer-Encoding"), "{answer}");

    // `identity` and plain `chunked` are what they always were.
    let mut req = head(
        &new_id(),
        &format!(
            "Content-Encoding: identity\r\nContent-Length: {}\r\n",
            body.len()
        ),
    )
    .into_bytes();
    req.extend_from_slice(&body);
    let answer = exchange(&env, &server, &req).await;
    assert!(answer.starts_with("HTTP/1.1 202"), "{answer}");
    let mut req = head(&new_id(), "Transfer-Encoding: chunked\r\n").into_bytes();
    req.extend(chunked(&body));
    let answer = exchange(&env, &server, &req).await;
    assert!(answer.starts_with("HTTP/1.1 202"), "{answer}");
    server.stop().await;
}

/// Reads one HTTP/1.1 answer without a body worth reading (a 404): its status line.
async fn read_answer(tls: &mut Tls) -> String {
    let mut got = Vec::new();
    let mut buf = [0u8; 4096];
    while !String::from_utf8_lossy(&got).contains("}") {
        let n = tokio::time::timeout(Duration::from_secs(10), tls.read(&mut buf))
            .await
            .expect("an answer")
            .unwrap();
        assert!(n > 0, "closed: {}", String::from_utf8_lossy(&got));
        got.extend_from_slice(&buf[..n]);
    }
    String::from_utf8_lossy(&got).into_owned()
}

#[tokio::test]
async fn a_kept_alive_connection_waits_for_its_next_request_until_the_idle_time_out() {
    let env = Env::new();
    let mut config = env.config();
    config.server.header_read_timeout_ms = 200;
    config.server.idle_timeout_ms = 60_000;
    let server = Server::start(config).await;
    let mut tls = connect_as_pfs(&env, &server).await;
    let request = b"GET /nowhere HTTP/1.1\r\nHost: x\r\n\r\n";
    tls.write_all(request).await.unwrap();
    assert!(read_answer(&mut tls).await.starts_with("HTTP/1.1 404"));
    // Many header-read time-outs later the connection still takes a request.
    tokio::time::sleep(Duration::from_millis(1_500)).await;
    tls.write_all(request).await.unwrap();
    assert!(read_answer(&mut tls).await.starts_with("HTTP/1.1 404"));

    // A head that starts and does not finish is still cut at the header-read time-out.
    tls.write_all(b"GET /nowhere HTTP/1.1\r\nHo").await.unwrap();
    let mut out = Vec::new();
    let read = tokio::time::timeout(Duration::from_secs(10), tls.read_to_end(&mut out)).await;
    assert!(read.is_ok(), "a dribbled head was not cut");
    assert!(out.is_empty(), "{}", String::from_utf8_lossy(&out));
    server.stop().await;
}

/// A TLS ClientHello offering only `version` (0x0301 TLS 1.0, 0x0302 TLS 1.1) and otherwise
/// what a real client of that time sends, so that the version is what is refused.
fn old_client_hello(version: u16) -> Vec<u8> {
    let mut body = version.to_be_bytes().to_vec();
    body.extend_from_slice(&[0x42; 32]); // random
    body.push(0); // session id
                  // ECDHE-ECDSA/RSA AES-GCM and CBC suites.
    let suites: [u16; 4] = [0xc02b, 0xc02f, 0xc013, 0x002f];
    body.extend_from_slice(&((suites.len() * 2) as u16).to_be_bytes());
    for s in suites {
        body.extend_from_slice(&s.to_be_bytes());
    }
    body.extend_from_slice(&[0x01, 0x00]); // null compression
    let ext = |kind: u16, data: &[u8]| {
        let mut e = kind.to_be_bytes().to_vec();
        e.extend_from_slice(&(data.len() as u16).to_be_bytes());
        e.extend_from_slice(data);
        e
    };
    let mut exts = Vec::new();
    exts.extend(ext(0x000a, &[0x00, 0x04, 0x00, 0x1d, 0x00, 0x17])); // x25519, P-256
    exts.extend(ext(0x000b, &[0x01, 0x00])); // uncompressed points
    exts.extend(ext(
        0x000d,
        &[0x00, 0x06, 0x04, 0x03, 0x08, 0x04, 0x04, 0x01],
    ));
    exts.extend(ext(0x0017, &[])); // extended master secret
    body.extend_from_slice(&(exts.len() as u16).to_be_bytes());
    body.extend(exts);
    let mut hs = vec![0x01, 0x00, (body.len() >> 8) as u8, body.len() as u8];
    hs.extend(body);
    let mut rec = vec![0x16, 0x03, 0x01, (hs.len() >> 8) as u8, hs.len() as u8];
    rec.extend(hs);
    rec
}

/// The value of the Prometheus series `series` in `metrics` (0 when absent).
fn series(metrics: &str, series: &str) -> f64 {
    metrics
        .lines()
        .find(|l| l.starts_with(series))
        .and_then(|l| l.rsplit(' ').next()?.parse().ok())
        .unwrap_or(0.0)
}

#[test]
fn tls10_and_tls11_refusals_are_counted_as_protocol_version() {
    // The real binary: its metrics count its own handshakes only.
    let env = Env::new();
    let config = config_file(
        &env,
        &env.cert(files::SERVER),
        &env.cert(files::SERVER_KEY),
        "",
        "",
    );
    let mut child = crate::harness::serve(&config);
    let line = BufReader::new(child.stderr.take().unwrap())
        .lines()
        .map_while(Result::ok)
        .find(|l| l.contains("endpoint listening"))
        .expect("started");
    let field = |name: &str| -> std::net::SocketAddr {
        line.split(&format!(" {name}="))
            .nth(1)
            .and_then(|s| s.split_whitespace().next())
            .map(|s| s.trim_matches(|c: char| !c.is_ascii_digit() && c != '.' && c != ':'))
            .unwrap()
            .parse()
            .unwrap()
    };
    let (addr, ops) = (field("addr"), field("ops_addr"));
    let rt = tokio::runtime::Runtime::new().unwrap();
    let metrics = rt.block_on(async {
        for version in [0x0301, 0x0302] {
            let mut tcp = TcpStream::connect(addr).await.unwrap();
            tcp.write_all(&old_client_hello(version)).await.unwrap();
            let mut out = Vec::new();
            tokio::time::timeout(Duration::from_secs(10), tcp.read_to_end(&mut out))
                .await
                .unwrap()
                .unwrap();
            // A fatal protocol_version alert.
            assert_eq!(out.get(5..7), Some(&[2u8, 70][..]), "{out:?}");
        }
        reqwest::get(format!("http://{ops}/metrics"))
            .await
            .unwrap()
            .text()
            .await
            .unwrap()
    });
    let failures = "pdp_tls_handshake_failures_total";
    assert_eq!(
        series(
            &metrics,
            &format!("{failures}{{reason=\"protocol_version\"}}")
        ),
        2.0,
        "{metrics}"
    );
    assert_eq!(
        series(&metrics, &format!("{failures}{{reason=\"other\"}}")),
        0.0,
        "{metrics}"
    );
    child.kill().unwrap();
    let _ = child.wait();
}

#[test]
fn an_access_list_nobody_is_on_is_refused_at_start() {
    let env = Env::new();
    for (list, more) in [
        ("access.find", "[access]\nfind = []\n"),
        ("access.view", "[access]\nview = []\n"),
        ("access.pat_refresh", "[access]\npat_refresh = [\"\"]\n"),
    ] {
        let config = config_file(
            &env,
            &env.cert(files::SERVER),
            &env.cert(files::SERVER_KEY),
            "",
            more,
        );
        let (code, stderr) = refused_start(&config);
        assert_eq!(code, 64, "{list}: {stderr}");
        assert!(stderr.contains(list), "{stderr}");
    }
}

#[tokio::test]
async fn an_http2_connection_is_not_cut_at_the_header_read_time_out_between_requests() {
    let env = Env::new();
    let mut config = env.config();
    config.server.header_read_timeout_ms = 200;
    config.server.idle_timeout_ms = 60_000;
    let server = Server::start(config).await;
    let mut cfg = (*env.rustls_client(
        Some((files::PFS, files::PFS_KEY)),
        &[&rustls::version::TLS13],
    ))
    .clone();
    cfg.alpn_protocols = vec![b"h2".to_vec()];
    let tls = crate::harness::connect(&server, std::sync::Arc::new(cfg))
        .await
        .unwrap();
    let (mut send, conn) =
        hyper::client::conn::http2::handshake::<_, _, http_body_util::Empty<bytes::Bytes>>(
            hyper_util::rt::TokioExecutor::new(),
            hyper_util::rt::TokioIo::new(tls),
        )
        .await
        .unwrap();
    tokio::spawn(conn);
    for _ in 0..2 {
        let req = http::Request::get(server.url("/nowhere"))
            .body(http_body_util::Empty::new())
            .unwrap();
        let resp = send.send_request(req).await.unwrap();
        assert_eq!(resp.status(), 404);
        // Many header-read time-outs with no request in progress.
        tokio::time::sleep(Duration::from_millis(1_000)).await;
    }
    server.stop().await;
}
