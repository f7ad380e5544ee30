//! Unit tests of the parent module, against a listener with the dev PKI answering as told.

use std::path::PathBuf;
use std::sync::atomic::{AtomicUsize, Ordering::SeqCst};

use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
use tokio::net::TcpListener;
use tokio_rustls::TlsAcceptor;

use super::*;
use crate::failure::{Connect, Tls};
use pdp_provider::tls::pki::files;

const BODY: &[u8] = br#"{"find":1}"#;
const ID: &str = "0f8fad5b-d9cb-469f-a165-70867728950e";

/// How the test listener answers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Serve {
    /// `202` to every well-formed find, `400` otherwise, keeping the connection.
    Keep,
    /// As `Keep`, with `Connection: close` and then closing.
    CloseAfterEach,
    /// `202`, then closes the connection a moment later without saying so.
    CloseWhenIdle,
    /// Reads the request and never answers.
    Silent,
    /// `202` to the first request, then reads on without answering.
    AnswerOnce,
}

struct Server {
    url: String,
    certs: PathBuf,
    connections: Arc<AtomicUsize>,
    /// Connections the server has closed (`CloseWhenIdle`).
    closed: Arc<AtomicUsize>,
    _dir: tempfile::TempDir,
}

impl Server {
    async fn connector(&self, timeout: Duration) -> Connector {
        Connector::new(
            &self.url,
            &self.certs.join(files::CA),
            &self.certs.join(files::PFS),
            &self.certs.join(files::PFS_KEY),
            timeout,
        )
        .await
        .unwrap()
    }
}

fn well_formed(req: &Request<hyper::body::Incoming>) -> bool {
    let h = req.headers();
    req.method() == http::Method::POST
        && req.uri() == "/find-requests"
        && h.get("x-request-id")
            .and_then(|v| v.to_str().ok())
            .is_some_and(|v| v.len() == 36 && uuid::Uuid::try_parse(v).is_ok())
        && h.get(CONTENT_TYPE).is_some_and(|v| v == "application/json")
        && h.get(HOST).is_some()
}

/// A find as the load tool writes it.
fn is_find(body: &[u8]) -> bool {
    serde_json::from_slice::<serde_json::Value>(body)
        .is_ok_and(|v| v["findData"]["names"].is_array() && v["uat"].is_string())
}

async fn server(serve: Serve) -> Server {
    let dir = tempfile::tempdir().unwrap();
    let certs = dir.path().join("certs");
    pdp_provider::keys::init_dev(&certs).unwrap();
    let acceptor = TlsAcceptor::from(
        pdp_provider::tls::server::server_config(&pdp_sim::tls::sim_tls(&certs)).unwrap(),
    );
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!(
        "https://127.0.0.1:{}/find-requests",
        listener.local_addr().unwrap().port()
    );
    let connections = Arc::new(AtomicUsize::new(0));
    let counted = connections.clone();
    let closed = Arc::new(AtomicUsize::new(0));
    let closes = closed.clone();
    tokio::spawn(async move {
        while let Ok((tcp, _)) = listener.accept().await {
            counted.fetch_add(1, SeqCst);
            // As nginx and the endpoint do: otherwise an answer can wait for a delayed ACK.
            tcp.set_nodelay(true).unwrap();
            let (acceptor, closes) = (acceptor.clone(), closes.clone());
            tokio::spawn(async move {
                let Ok(mut tls) = acceptor.accept(tcp).await else {
                    return;
                };
                match serve {
                    Serve::Keep | Serve::CloseAfterEach => {
                        let svc = hyper::service::service_fn(|req| async move {
                            let ok = well_formed(&req);
                            let body = req.into_body().collect().await?.to_bytes();
                            let status = if ok && (body == BODY || is_find(&body)) {
                                202
                            } else {
                                400
                            };
                            Ok::<_, hyper::Error>(
                                hyper::Response::builder()
                                    .status(status)
                                    .body(Full::new(Bytes::from_static(b"{}")))
                                    .unwrap(),
                            )
                        });
                        let _ = hyper::server::conn::http1::Builder::new()
                            .keep_alive(serve == Serve::Keep)
                            .serve_connection(TokioIo::new(tls), svc)
                            .await;
                    }
                    Serve::CloseWhenIdle | Serve::AnswerOnce => {
                        let mut seen = Vec::new();
                        let mut buf = [0u8; 4096];
                        while !seen.ends_with(BODY) {
                            match tls.read(&mut buf).await {
                                Ok(0) | Err(_) => return,
                                Ok(n) => seen.extend_from_slice(&buf[..n]),
                            }
                        }
                        let answer = b"HTTP/1.1 202 Accepted\r\ncontent-length: 0\r\n\r\n";
                        let _ = tls.write_all(answer).await;
                        let _ = tls.flush().await;
                        if serve == Serve::CloseWhenIdle {
                            tokio::time::sleep(Duration::from_millis(20)).await;
                            let _ = tls.shutdown().await;
                            drop(tls);
                            closes.fetch_add(1, SeqCst);
                        } else {
                            while matches!(tls.read(&mut buf).await, Ok(n) if n > 0) {}
                        }
                    }
                    Serve::Silent => {
                        let mut buf = [0u8; 4096];
                        while matches!(tls.read(&mut buf).await, Ok(n) if n > 0) {}
                    }
                }
            });
        }
    });
    Server {
        url,
        certs,
        connections,
        closed,
        _dir: dir,
    }
}

#[tokio::test]
async fn answers_are_read_and_one_connection_serves_them_all() {
    let s = server(Serve::Keep).await;
    let c = s.connector(Duration::from_secs(5)).await;
    let mut slot = Slot::new();
    for _ in 0..50 {
        assert_eq!(slot.send(&c, ID, BODY.to_vec()).await, Outcome::Status(202));
    }
    assert_eq!(s.connections.load(SeqCst), 1);
    // What the server refuses is its status, not a transport error.
    assert_eq!(
        slot.send(&c, ID, b"{}".to_vec()).await,
        Outcome::Status(400)
    );
    assert_eq!(s.connections.load(SeqCst), 1);
}

#[tokio::test]
async fn a_server_closing_after_each_answer_costs_no_error() {
    let s = server(Serve::CloseAfterEach).await;
    let c = s.connector(Duration::from_secs(5)).await;
    let mut slot = Slot::new();
    for _ in 0..10 {
        assert_eq!(slot.send(&c, ID, BODY.to_vec()).await, Outcome::Status(202));
    }
    assert_eq!(s.connections.load(SeqCst), 10);
}

#[tokio::test]
async fn a_kept_connection_the_server_closed_while_idle_is_replaced() {
    let s = server(Serve::CloseWhenIdle).await;
    let c = s.connector(Duration::from_secs(5)).await;
    let mut slot = Slot::new();
    for n in 1..=5 {
        assert_eq!(slot.send(&c, ID, BODY.to_vec()).await, Outcome::Status(202));
        // The server has closed the connection, unseen by the slot, before the next request.
        let waited = std::time::Instant::now();
        while s.closed.load(SeqCst) < n {
            assert!(
                waited.elapsed() < Duration::from_secs(5),
                "the server never closed"
            );
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert_eq!(s.connections.load(SeqCst), 5);
}

#[tokio::test]
async fn no_answer_in_time_is_a_timeout_and_the_connection_is_not_reused() {
    let s = server(Serve::Silent).await;
    let c = s.connector(Duration::from_millis(200)).await;
    let mut slot = Slot::new();
    for n in 1..=2 {
        assert_eq!(
            slot.send(&c, ID, BODY.to_vec()).await,
            Outcome::Transport(Transport::Timeout)
        );
        assert_eq!(s.connections.load(SeqCst), n);
    }
}

#[tokio::test]
async fn no_request_times_out_early_however_long_the_slot_lives() {
    let s = server(Serve::Keep).await;
    let c = s.connector(Duration::from_millis(100)).await;
    let mut slot = Slot::new();
    // Over three time-out periods: the slot's one timer fires before the request under way
    // is due, more than once, and is moved on each time.
    for _ in 0..15 {
        assert_eq!(slot.send(&c, ID, BODY.to_vec()).await, Outcome::Status(202));
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
}

#[tokio::test]
async fn each_request_gets_the_whole_time_out() {
    let s = server(Serve::AnswerOnce).await;
    let timeout = Duration::from_millis(150);
    let c = s.connector(timeout).await;
    let mut slot = Slot::new();
    assert_eq!(slot.send(&c, ID, BODY.to_vec()).await, Outcome::Status(202));
    // The first request's deadline passes while the slot is idle.
    tokio::time::sleep(Duration::from_millis(300)).await;
    let started = std::time::Instant::now();
    assert_eq!(
        slot.send(&c, ID, BODY.to_vec()).await,
        Outcome::Transport(Transport::Timeout)
    );
    let took = started.elapsed();
    assert!(took >= timeout && took < Duration::from_secs(2), "{took:?}");
}

#[tokio::test]
async fn nobody_listening_is_connect_refused() {
    let s = server(Serve::Keep).await;
    let port = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap().port()
    };
    let c = Connector::new(
        &format!("https://127.0.0.1:{port}/find-requests"),
        &s.certs.join(files::CA),
        &s.certs.join(files::PFS),
        &s.certs.join(files::PFS_KEY),
        Duration::from_secs(5),
    )
    .await
    .unwrap();
    assert_eq!(
        Slot::new().send(&c, ID, BODY.to_vec()).await,
        Outcome::Transport(Transport::Connect(Connect::Refused))
    );
}

#[tokio::test]
async fn a_server_the_client_does_not_trust_is_an_unknown_issuer() {
    let s = server(Serve::Keep).await;
    // Another PKI's CA: the server's certificate chains to nothing the client trusts.
    let other = tempfile::tempdir().unwrap();
    pdp_provider::keys::init_dev(other.path()).unwrap();
    let c = Connector::new(
        &s.url,
        &other.path().join(files::CA),
        &s.certs.join(files::PFS),
        &s.certs.join(files::PFS_KEY),
        Duration::from_secs(5),
    )
    .await
    .unwrap();
    let outcome = Slot::new().send(&c, ID, BODY.to_vec()).await;
    assert_eq!(
        outcome,
        Outcome::Transport(Transport::Tls(Tls::UnknownIssuer))
    );
    let Outcome::Transport(t) = outcome else {
        unreachable!()
    };
    assert_eq!(t.reason(), "tls: unknown issuer");
}

#[tokio::test]
async fn a_server_that_does_not_trust_the_client_is_a_tls_refusal() {
    let s = server(Serve::Keep).await;
    // Another PKI's identity: the server refuses it in the handshake.
    let other = tempfile::tempdir().unwrap();
    pdp_provider::keys::init_dev(other.path()).unwrap();
    let c = Connector::new(
        &s.url,
        &s.certs.join(files::CA),
        &other.path().join(files::PFS),
        &other.path().join(files::PFS_KEY),
        Duration::from_secs(5),
    )
    .await
    .unwrap();
    let outcome = Slot::new().send(&c, ID, BODY.to_vec()).await;
    // TLS 1.3: the client finishes its side before the server's refusal arrives, which then
    // ends the first request instead, as an alert (or, if the server's close overtakes it,
    // a reset).
    assert!(
        matches!(
            outcome,
            Outcome::Transport(Transport::Tls(Tls::Alert(_)) | Transport::Reset)
        ),
        "{outcome:?}"
    );
}

#[tokio::test]
async fn only_https_urls() {
    let s = server(Serve::Keep).await;
    for url in ["http://127.0.0.1:1/find-requests", "not a url"] {
        let e = Connector::new(
            url,
            &s.certs.join(files::CA),
            &s.certs.join(files::PFS),
            &s.certs.join(files::PFS_KEY),
            Duration::from_secs(5),
        )
        .await;
        assert!(matches!(e, Err(LoadError::Client(_))), "{url}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_closed_loop_run_counts_every_answer_on_a_connection_per_task() {
    let s = server(Serve::Keep).await;
    let out = s._dir.path().join("out");
    let args = crate::LoadArgs {
        target: Some(s.url.trim_end_matches("/find-requests").to_owned()),
        certs: s.certs.clone(),
        closed_loop: true,
        concurrency: Some(8),
        duration: Some(1.0),
        member_count: Some(50),
        out: Some(out.clone()),
        name: Some("closed".into()),
        quiet: true,
        ..crate::LoadArgs::default()
    };
    let code = crate::run_until(args, tokio_util::sync::CancellationToken::new())
        .await
        .unwrap();
    let result: serde_json::Value =
        serde_json::from_slice(&std::fs::read(out.join("result.json")).unwrap()).unwrap();
    let main = &result["phases"][0];
    let sent = main["sent"].as_u64().unwrap();
    assert!(sent > 8, "{main:#}");
    assert_eq!(main["mode"], "closed", "{main:#}");
    assert_eq!(main["attempted"], sent, "{main:#}");
    assert_eq!(main["acked"], sent, "{main:#}");
    assert_eq!(main["ack"]["count"], sent, "{main:#}");
    assert_eq!(main["errors"], 0, "{main:#}");
    assert_eq!(code, 0, "{result:#}");
    assert_eq!(s.connections.load(SeqCst), 8, "one connection per task");
}
